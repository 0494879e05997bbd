/*
 * UDP hole punching, the host's side.  See upunch.h; the punch itself is
 * common/nat/udp.h.  Here: the budgets, the routing of the registration
 * socket's datagrams, and the session a punch starts.  Punches are linked
 * from struct host until they end; each owns one struct hd_nat_udp.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "host/session.h"
#include "host/upunch.h"
#include "log.h"
#include "nat/nat.h"
#include "nat/udp.h"
#include "rendezvous.pb-c.h"
#include "rudp.h"
#include "uprobe.h"

#define MOD "upunch"

struct upunch {
    struct upunch *next;
    struct host *h;
    uv_udp_t *reg_sock;
    struct hd_nat_udp *nat;
    char viewer_s[HD_ADDR_STRLEN];
    int fan;
};

/* Stop and free u (its sockets close on the loop). */
static void upunch_end(struct upunch *u)
{
    struct upunch **pp;

    for (pp = &u->h->upunches; *pp != NULL; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    hd_nat_udp_free(u->nat);
    free(u);
}

static void on_expired(struct hd_nat_udp *nat, void *ud)
{
    struct upunch *u = ud;
    struct hd_nat_udp_stats st;

    hd_nat_udp_stats(nat, &st);
    hd_info(MOD,
            "udp punch to %s: no probe from the viewer in %llu ms (%u "
            "probes%s, %u to guessed ports)",
            u->viewer_s, (unsigned long long)st.ms, st.probes,
            st.fan ? " from each of our sockets" : "", st.guesses);
    upunch_end(u);
}

/*
 * The viewer's probe reached sock: answer it and start the session there,
 * with the address it came from.  A fan socket gives the session a
 * descriptor of its own, connected to the viewer.
 */
static void on_found(struct hd_nat_udp *nat, uv_udp_t *sock,
                     const struct sockaddr *from, uint32_t conv,
                     const uint8_t *d, size_t n, void *ud)
{
    struct upunch *u = ud;
    struct host *h = u->h;
    struct session *s = NULL;
    char fs[HD_ADDR_STRLEN];
    struct hd_nat_udp_stats st;
    int fd = -1, e;

    (void)d;
    (void)n;
    hd_nat_udp_stats(nat, &st);
    hd_addr_format(from, fs, sizeof(fs));
    hd_nat_udp_answer(sock, from, h->ident.id, conv);
    if ((e = session_new(h, SESSION_UDP, &s)) != 0)
        goto fail;
    if (sock != u->reg_sock &&
        (fd = hd_nat_dup_connected((uv_handle_t *)sock, from, &e)) < 0)
        goto fail;
    hd_info(MOD, "udp punch to %s: the viewer's probe came from %s%s (%llu ms)",
            u->viewer_s, fs,
            sock == u->reg_sock ? "" : ", on one of our extra sockets",
            (unsigned long long)st.ms);
    e = session_begin_udp(s, conv, sock == u->reg_sock ? sock : NULL, from, fd);
    upunch_end(u);
    if (e != 0)
        hd_warn(MOD, "udp punch to %s: no session: %s", fs, hd_strerror(e));
    return;
fail:
    hd_warn(MOD, "udp punch to %s: no session for %s: %s", u->viewer_s, fs,
            hd_strerror(e));
    if (s != NULL)
        session_close(s, "cannot start it");
    upunch_end(u);
}

int upunch_datagram(struct host *h, uv_udp_t *sock, const struct sockaddr *from,
                    const uint8_t *d, size_t n)
{
    struct hd_uprobe p;
    struct upunch *u;
    uint32_t conv;

    if (hd_uprobe_is(d, n)) {
        if (hd_uprobe_parse(d, n, &p) != 0 || p.type != HD_UPROBE_PROBE ||
            p.role != HD_UPROBE_VIEWER || p.conv == 0 ||
            strcmp(p.id, h->ident.id) != 0)
            return 1;
        /* a repeated probe (our answer was lost): answer again */
        if (session_udp_find(h, sock, from, p.conv)) {
            hd_nat_udp_answer(sock, from, h->ident.id, p.conv);
            return 1;
        }
        for (u = h->upunches; u != NULL; u = u->next)
            if (hd_nat_udp_input(u->nat, sock, from, d, n))
                return 1;
        char fs[HD_ADDR_STRLEN];

        hd_debug(MOD, "probe from %s: no punch towards it",
                 hd_addr_format(from, fs, sizeof(fs)));
        return 1;
    }
    if ((conv = hd_rudp_peek_conv(d, n)) != 0) {
        session_udp_input(h, sock, from, conv, d, n);
        return 1;
    }
    return 0;
}

int upunch_start(struct host *h, uv_udp_t *reg_sock,
                 const struct sockaddr *viewer, int viewer_nat)
{
    static const struct hd_nat_udp_cb cb = { on_found, on_expired };
    int me_sym = h->nat_type == HBB__NAT_TYPE__SYMMETRIC;
    int v_sym = viewer_nat == HBB__NAT_TYPE__SYMMETRIC;
    uint64_t now = uv_now(h->loop);
    struct hd_nat_udp_cfg cfg;
    struct upunch *u, *last, *o;
    int n, r;

    if (me_sym && v_sym)
        return 1;
    if ((u = calloc(1, sizeof(*u))) == NULL)
        return -ENOMEM;
    hd_addr_format(viewer, u->viewer_s, sizeof(u->viewer_s));
    /* at most UPUNCH_MAX_ACTIVE: the oldest (the list's tail) gives way */
    for (n = 0, last = h->upunches; last != NULL && last->next != NULL;
         last = last->next)
        n++;
    if (last != NULL && n + 1 >= UPUNCH_MAX_ACTIVE) {
        hd_info(MOD, "udp punch to %s: ended for a newer one (%d at a time)",
                last->viewer_s, UPUNCH_MAX_ACTIVE);
        upunch_end(last);
    }
    /* one spray per UPUNCH_SPRAY_GAP_MS for the whole host */
    if (v_sym && h->upunch_spray_ms != 0 &&
        now - h->upunch_spray_ms < UPUNCH_SPRAY_GAP_MS) {
        hd_info(MOD,
                "udp punch to %s: no guessed ports (another spray %llu ms "
                "ago)",
                u->viewer_s, (unsigned long long)(now - h->upunch_spray_ms));
        v_sym = 0;
    } else if (v_sym) {
        h->upunch_spray_ms = now ? now : 1;
    }
    /* one fan at a time: 256 descriptors per punch would run a host that
     * many viewers call at once out of them */
    for (o = h->upunches; o != NULL && !o->fan; o = o->next)
        ;
    if (me_sym && o != NULL) {
        hd_info(MOD,
                "udp punch to %s: another punch holds the fan; "
                "plain probes only",
                u->viewer_s);
        me_sym = 0;
    }
    u->h = h;
    u->reg_sock = reg_sock;
    u->fan = me_sym;
    cfg = (struct hd_nat_udp_cfg){ .role = HD_UPROBE_HOST,
                                   .id = h->ident.id,
                                   .peer = viewer,
                                   .sock = reg_sock,
                                   .fan = me_sym,
                                   .spray = v_sym,
                                   .fan_probe_ms = UPUNCH_PROBE_MS,
                                   .ms = UPUNCH_MS };
    u->next = h->upunches;
    h->upunches = u;
    hd_info(MOD, "udp punch to %s%s", u->viewer_s,
            u->fan  ? " from a fan of our sockets (we are behind a symmetric "
                      "NAT)"
            : v_sym ? " and to guessed ports (the viewer is behind a "
                      "symmetric NAT)"
                    : "");
    if ((r = hd_nat_udp_start(h->loop, &cfg, &cb, u, &u->nat)) != 0) {
        upunch_end(u);
        return r;
    }
    return 0;
}

void upunch_stop_all(struct host *h)
{
    while (h->upunches != NULL)
        upunch_end(h->upunches);
}

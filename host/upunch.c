/*
 * UDP hole punching, the host's side.  See upunch.h.  Memory: a punch
 * owns a timer and its fan sockets (each a separate allocation holding
 * its uv_udp_t); it is freed when the last of those handles has closed.
 * Punches are linked from struct host until they end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "host/session.h"
#include "host/upunch.h"
#include "log.h"
#include "net.h"
#include "rendezvous.pb-c.h"
#include "rudp.h"
#include "uprobe.h"

#define MOD "upunch"

#define FAN_BUF 2048

struct fan;

struct upunch {
    struct upunch *next;
    struct host *h;
    uv_udp_t *reg_sock;
    uv_timer_t timer;
    struct fan **fan;
    int n_fan;
    struct sockaddr_storage viewer; /* its public IP : reported UDP port */
    char viewer_s[HD_ADDR_STRLEN];
    uint64_t start_ms, probe_at;
    unsigned probes, sprayed;
    int spray, handles, done, linked;
    uint8_t probe[HD_UPROBE_MAX]; /* ours, the same every time */
    size_t probe_len;
    uint8_t buf[FAN_BUF]; /* receive buffer of the fan sockets */
};

struct fan {
    struct upunch *u;
    uv_udp_t udp;
};

static void upunch_closed(uv_handle_t *hd)
{
    struct upunch *u = hd->data;

    if (--u->handles == 0) {
        free(u->fan);
        free(u);
    }
}

static void fan_closed(uv_handle_t *hd)
{
    struct fan *f = hd->data;
    struct upunch *u = f->u;

    free(f);
    if (--u->handles == 0) {
        free(u->fan);
        free(u);
    }
}

static void unlink_upunch(struct upunch *u)
{
    struct upunch **pp;

    if (!u->linked)
        return;
    for (pp = &u->h->upunches; *pp != NULL; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    u->linked = 0;
}

/* Stop; u is freed once its handles have closed. */
static void upunch_end(struct upunch *u)
{
    if (u->done)
        return;
    u->done = 1;
    unlink_upunch(u);
    for (int i = 0; i < u->n_fan; i++)
        hd_net_close((uv_handle_t *)&u->fan[i]->udp, fan_closed);
    hd_net_close((uv_handle_t *)&u->timer, upunch_closed);
}

static uint64_t elapsed(const struct upunch *u)
{
    return uv_now(u->h->loop) - u->start_ms;
}

static void send_on(uv_udp_t *sock, const struct sockaddr *to, const uint8_t *d,
                    size_t n)
{
    uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);

    /* best effort: a probe that finds the socket busy is simply lost */
    uv_udp_try_send(sock, &b, 1, to);
}

static size_t pack(const struct host *h, int type, uint32_t conv, uint8_t *buf)
{
    struct hd_uprobe p = { type, HD_UPROBE_HOST, conv, "" };

    snprintf(p.id, sizeof(p.id), "%s", h->ident.id);
    return hd_uprobe_pack(&p, buf);
}

static void on_timer(uv_timer_t *t)
{
    struct upunch *u = t->data;
    uint64_t now = elapsed(u);

    if (u->done)
        return;
    if (now >= UPUNCH_MS) {
        hd_info(MOD,
                "udp punch to %s: no probe from the viewer in %llu ms (%u "
                "probes%s, %u to guessed ports)",
                u->viewer_s, (unsigned long long)now, u->probes,
                u->n_fan ? " from each of our sockets" : "", u->sprayed);
        upunch_end(u);
        return;
    }
    if (now >= u->probe_at) {
        u->probe_at = now + UPUNCH_PROBE_MS;
        u->probes++;
        send_on(u->reg_sock, (struct sockaddr *)&u->viewer, u->probe,
                u->probe_len);
        for (int i = 0; i < u->n_fan; i++)
            send_on(&u->fan[i]->udp, (struct sockaddr *)&u->viewer, u->probe,
                    u->probe_len);
    }
    if (u->spray && now >= UPUNCH_SPRAY_AFTER_MS &&
        u->sprayed < UPUNCH_SPRAY_MAX) {
        struct sockaddr_storage to = u->viewer;

        for (int i = 0; i < UPUNCH_SPRAY_BURST; i++) {
            hd_addr_set_port((struct sockaddr *)&to, hd_uprobe_guess_port());
            send_on(u->reg_sock, (struct sockaddr *)&to, u->probe,
                    u->probe_len);
        }
        u->sprayed += UPUNCH_SPRAY_BURST;
        if (u->sprayed >= UPUNCH_SPRAY_MAX)
            uv_timer_set_repeat(&u->timer, UPUNCH_PROBE_MS);
    }
}

/*
 * The viewer's probe reached sock: answer it and start the session there,
 * with the address it came from.  A fan socket gives the session a
 * descriptor of its own, connected to the viewer.
 */
static void take(struct upunch *u, uv_udp_t *sock, const struct sockaddr *from,
                 uint32_t conv)
{
    struct host *h = u->h;
    struct session *s = NULL;
    uint8_t ans[HD_UPROBE_MAX];
    char fs[HD_ADDR_STRLEN];
    uv_os_fd_t ofd;
    int fd = -1, e;
    size_t n;

    hd_addr_format(from, fs, sizeof(fs));
    if ((n = pack(h, HD_UPROBE_ANSWER, conv, ans)) > 0)
        send_on(sock, from, ans, n);
    if ((e = session_new(h, SESSION_UDP, &s)) != 0)
        goto fail;
    if (sock != u->reg_sock) {
        os_sock d = OS_SOCK_BAD;

        if (uv_fileno((uv_handle_t *)sock, &ofd) != 0 ||
            (d = os_sock_dup((os_sock)(uintptr_t)ofd)) == OS_SOCK_BAD) {
            e = d == OS_SOCK_BAD ? os_sock_error() : -EBADF;
            goto fail;
        }
        fd = (int)d; /* Windows' socket handles fit in an int */
        if (connect(d, from, hd_addr_len(from)) != 0) {
            e = os_sock_error();
            goto fail;
        }
    }
    hd_info(MOD, "udp punch to %s: the viewer's probe came from %s%s (%llu ms)",
            u->viewer_s, fs,
            sock == u->reg_sock ? "" : ", on one of our extra sockets",
            (unsigned long long)elapsed(u));
    e = session_begin_udp(s, conv, sock == u->reg_sock ? sock : NULL, from, fd);
    upunch_end(u);
    if (e != 0)
        hd_warn(MOD, "udp punch to %s: no session: %s", u->viewer_s,
                hd_strerror(e));
    return;
fail:
    hd_warn(MOD, "udp punch to %s: no session for %s: %s", u->viewer_s, fs,
            hd_strerror(e));
    if (fd >= 0)
        os_sock_close((os_sock)fd);
    if (s != NULL)
        session_close(s, "cannot start it");
    upunch_end(u);
}

/* sock is u's registration socket or one of its fan. */
static int owns(const struct upunch *u, const uv_udp_t *sock)
{
    if (sock == u->reg_sock)
        return 1;
    for (int i = 0; i < u->n_fan; i++)
        if (&u->fan[i]->udp == sock)
            return 1;
    return 0;
}

static void on_probe(struct host *h, uv_udp_t *sock,
                     const struct sockaddr *from, const struct hd_uprobe *p)
{
    struct upunch *u;
    uint8_t ans[HD_UPROBE_MAX];
    size_t n;

    if (p->type != HD_UPROBE_PROBE || p->role != HD_UPROBE_VIEWER ||
        p->conv == 0 || strcmp(p->id, h->ident.id) != 0)
        return;
    /* a repeated probe (our answer was lost): answer again */
    if (session_udp_find(h, sock, from, p->conv)) {
        if ((n = pack(h, HD_UPROBE_ANSWER, p->conv, ans)) > 0)
            send_on(sock, from, ans, n);
        return;
    }
    for (u = h->upunches; u != NULL; u = u->next)
        if (!u->done && hd_addr_same_ip(from, (struct sockaddr *)&u->viewer) &&
            owns(u, sock))
            break;
    if (u == NULL) {
        char fs[HD_ADDR_STRLEN];

        hd_debug(MOD, "probe from %s: no punch towards it",
                 hd_addr_format(from, fs, sizeof(fs)));
        return;
    }
    take(u, sock, from, p->conv);
}

int upunch_datagram(struct host *h, uv_udp_t *sock, const struct sockaddr *from,
                    const uint8_t *d, size_t n)
{
    struct hd_uprobe p;
    uint32_t conv;

    if (hd_uprobe_is(d, n)) {
        if (hd_uprobe_parse(d, n, &p) == 0)
            on_probe(h, sock, from, &p);
        return 1;
    }
    if ((conv = hd_rudp_peek_conv(d, n)) != 0) {
        session_udp_input(h, sock, from, conv, d, n);
        return 1;
    }
    return 0;
}

static void fan_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct fan *f = hd->data;

    (void)sz;
    buf->base = (char *)f->u->buf;
    buf->len = sizeof(f->u->buf);
}

static void fan_recv(uv_udp_t *sock, ssize_t n, const uv_buf_t *buf,
                     const struct sockaddr *from, unsigned flags)
{
    struct fan *f = sock->data;
    struct sockaddr_storage ss;

    if (n <= 0 || from == NULL || f->u->done || (flags & UV_UDP_PARTIAL))
        return;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, from, hd_addr_len(from));
    hd_addr_normalize(&ss);
    upunch_datagram(f->u->h, sock, (struct sockaddr *)&ss,
                    (const uint8_t *)buf->base, (size_t)n);
}

/* Open the fan: as many sockets as the system gives, up to UPUNCH_FAN. */
static void open_fan(struct upunch *u)
{
    struct sockaddr_storage any;
    struct fan *f;

    if ((u->fan = calloc(UPUNCH_FAN, sizeof(*u->fan))) == NULL)
        return;
    hd_addr_parse(u->viewer.ss_family == AF_INET6 ? "::" : "0.0.0.0", 0, &any);
    while (u->n_fan < UPUNCH_FAN) {
        if ((f = calloc(1, sizeof(*f))) == NULL)
            break;
        f->u = u;
        uv_udp_init(u->h->loop, &f->udp);
        f->udp.data = f;
        u->handles++;
        if (uv_udp_bind(&f->udp, (struct sockaddr *)&any, 0) != 0 ||
            uv_udp_recv_start(&f->udp, fan_alloc, fan_recv) != 0) {
            /* out of descriptors or ports: punch with what we have */
            hd_net_close((uv_handle_t *)&f->udp, fan_closed);
            break;
        }
        u->fan[u->n_fan++] = f;
    }
}

int upunch_start(struct host *h, uv_udp_t *reg_sock,
                 const struct sockaddr *viewer, int viewer_nat)
{
    int me_sym = h->nat_type == HBB__NAT_TYPE__SYMMETRIC;
    int v_sym = viewer_nat == HBB__NAT_TYPE__SYMMETRIC;
    uint64_t now = uv_now(h->loop);
    struct upunch *u, *last;
    int n;

    if (me_sym && v_sym)
        return 1;
    if ((u = calloc(1, sizeof(*u))) == NULL)
        return -ENOMEM;
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
                hd_addr_format(viewer, u->viewer_s, sizeof(u->viewer_s)),
                (unsigned long long)(now - h->upunch_spray_ms));
        v_sym = 0;
    } else if (v_sym) {
        h->upunch_spray_ms = now ? now : 1;
    }
    if ((u->probe_len = pack(h, HD_UPROBE_PROBE, 0, u->probe)) == 0) {
        free(u);
        return -EINVAL; /* an ID longer than a probe holds */
    }
    u->h = h;
    u->reg_sock = reg_sock;
    memcpy(&u->viewer, viewer, hd_addr_len(viewer));
    hd_addr_format(viewer, u->viewer_s, sizeof(u->viewer_s));
    u->start_ms = now;
    u->spray = v_sym;
    uv_timer_init(h->loop, &u->timer);
    u->timer.data = u;
    u->handles = 1;
    u->next = h->upunches;
    h->upunches = u;
    u->linked = 1;
    if (me_sym) {
        /* one fan at a time: 256 descriptors per punch would run a host
         * that many viewers call at once out of them */
        struct upunch *o;

        for (o = u->next; o != NULL && o->n_fan == 0; o = o->next)
            ;
        if (o == NULL)
            open_fan(u);
        else
            hd_info(MOD,
                    "udp punch to %s: another punch holds the fan; "
                    "plain probes only",
                    u->viewer_s);
    }
    hd_info(MOD, "udp punch to %s%s", u->viewer_s,
            me_sym
                ? " from a fan of our sockets (we are behind a symmetric NAT)"
            : v_sym ? " and to guessed ports (the viewer is behind a symmetric "
                      "NAT)"
                    : "");
    on_timer(&u->timer);
    if (!u->done)
        uv_timer_start(&u->timer, on_timer,
                       u->spray ? UPUNCH_SPRAY_TICK_MS : UPUNCH_PROBE_MS,
                       u->spray ? UPUNCH_SPRAY_TICK_MS : UPUNCH_PROBE_MS);
    return 0;
}

void upunch_stop_all(struct host *h)
{
    while (h->upunches != NULL)
        upunch_end(h->upunches);
}

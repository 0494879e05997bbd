/*
 * The UDP punch.  See nat/udp.h.  Memory: a punch owns a timer and its
 * fan sockets (each a separate allocation holding its uv_udp_t); it is
 * freed when the last of those handles has closed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "nat/nat.h"
#include "nat/udp.h"
#include "net.h"
#include "os.h"
#include "rudp.h"

#define FAN_BUF 2048

struct fan {
    struct hd_nat_udp *u;
    uv_udp_t udp;
};

struct hd_nat_udp {
    uv_loop_t *loop;
    struct hd_nat_udp_cb cb;
    void *ud;
    int role;
    char id[HD_UPROBE_ID_MAX + 1];
    uint32_t conv;
    uv_udp_t *sock;
    uv_timer_t timer;
    struct fan **fan;
    int n_fan;
    int spray, handles, done;
    unsigned fan_probe_ms;
    struct sockaddr_storage peer;
    uint64_t start_ms, until_ms, probe_at, fan_probe_at;
    unsigned probes, sprayed;
    uint8_t probe[HD_UPROBE_MAX]; /* ours, the same every time */
    size_t probe_len;
    uint8_t buf[FAN_BUF]; /* receive buffer of the fan sockets */
};

int hd_nat_dup_connected(uv_handle_t *sock, const struct sockaddr *to, int *err)
{
    uv_os_fd_t ofd;
    os_sock d;

    *err = 0;
    if (uv_fileno(sock, &ofd) != 0) {
        *err = -EBADF;
        return -1;
    }
    if ((d = os_sock_dup((os_sock)(uintptr_t)ofd)) == OS_SOCK_BAD) {
        *err = os_sock_error();
        return -1;
    }
    if (connect(d, to, hd_addr_len(to)) != 0) {
        *err = os_sock_error();
        os_sock_close(d);
        return -1;
    }
    return (int)d; /* Windows' socket handles fit in an int */
}

static void release(struct hd_nat_udp *u)
{
    if (--u->handles == 0) {
        free(u->fan);
        free(u);
    }
}

static void timer_closed(uv_handle_t *hd)
{
    release(hd->data);
}

static void fan_closed(uv_handle_t *hd)
{
    struct fan *f = hd->data;
    struct hd_nat_udp *u = f->u;

    free(f);
    release(u);
}

/* Stop probing (the fan stays until free: found() may be on it). */
static void stop(struct hd_nat_udp *u)
{
    u->done = 1;
    uv_timer_stop(&u->timer);
}

void hd_nat_udp_free(struct hd_nat_udp *u)
{
    if (u == NULL)
        return;
    stop(u);
    for (int i = 0; i < u->n_fan; i++)
        hd_net_close((uv_handle_t *)&u->fan[i]->udp, fan_closed);
    u->n_fan = 0;
    hd_net_close((uv_handle_t *)&u->timer, timer_closed);
}

static void send_on(uv_udp_t *sock, const struct sockaddr *to, const uint8_t *d,
                    size_t n)
{
    uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);

    /* best effort: a probe that finds the socket busy is simply lost */
    uv_udp_try_send(sock, &b, 1, to);
}

static size_t pack(int type, int role, const char *id, uint32_t conv,
                   uint8_t *buf)
{
    struct hd_uprobe p = { type, role, conv, "" };

    snprintf(p.id, sizeof(p.id), "%s", id);
    return hd_uprobe_pack(&p, buf);
}

void hd_nat_udp_answer(uv_udp_t *sock, const struct sockaddr *to,
                       const char *id, uint32_t conv)
{
    uint8_t ans[HD_UPROBE_MAX];
    size_t n;

    if ((n = pack(HD_UPROBE_ANSWER, HD_UPROBE_HOST, id, conv, ans)) > 0)
        send_on(sock, to, ans, n);
}

static void on_timer(uv_timer_t *t)
{
    struct hd_nat_udp *u = t->data;
    uint64_t now = uv_now(u->loop) - u->start_ms;

    if (u->done)
        return;
    if (now >= u->until_ms) {
        stop(u);
        u->cb.expired(u, u->ud);
        return;
    }
    if (now >= u->probe_at) {
        u->probe_at = now + HD_NAT_UDP_PROBE_MS;
        u->probes++;
        send_on(u->sock, (struct sockaddr *)&u->peer, u->probe, u->probe_len);
    }
    if (u->n_fan > 0 && now >= u->fan_probe_at) {
        u->fan_probe_at = now + u->fan_probe_ms;
        for (int i = 0; i < u->n_fan; i++)
            send_on(&u->fan[i]->udp, (struct sockaddr *)&u->peer, u->probe,
                    u->probe_len);
    }
    if (u->spray && now >= HD_NAT_UDP_SPRAY_AFTER_MS &&
        u->sprayed < HD_NAT_UDP_SPRAY_MAX) {
        struct sockaddr_storage to = u->peer;

        for (int i = 0; i < HD_NAT_UDP_SPRAY_BURST; i++) {
            hd_addr_set_port((struct sockaddr *)&to, hd_uprobe_guess_port());
            send_on(u->sock, (struct sockaddr *)&to, u->probe, u->probe_len);
        }
        u->sprayed += HD_NAT_UDP_SPRAY_BURST;
        if (u->sprayed >= HD_NAT_UDP_SPRAY_MAX)
            uv_timer_set_repeat(&u->timer, HD_NAT_UDP_PROBE_MS);
    }
}

int hd_nat_udp_owns(const struct hd_nat_udp *u, const uv_udp_t *sock)
{
    if (sock == u->sock)
        return 1;
    for (int i = 0; i < u->n_fan; i++)
        if (&u->fan[i]->udp == sock)
            return 1;
    return 0;
}

static void found(struct hd_nat_udp *u, uv_udp_t *sock,
                  const struct sockaddr *from, uint32_t conv, const uint8_t *d,
                  size_t n)
{
    stop(u);
    u->cb.found(u, sock, from, conv, d, n, u->ud);
}

int hd_nat_udp_input(struct hd_nat_udp *u, uv_udp_t *sock,
                     const struct sockaddr *from, const uint8_t *d, size_t n)
{
    int peer_role =
        u->role == HD_UPROBE_HOST ? HD_UPROBE_VIEWER : HD_UPROBE_HOST;
    struct hd_uprobe p;

    if (u->done || !hd_nat_udp_owns(u, sock) ||
        !hd_addr_same_ip(from, (struct sockaddr *)&u->peer))
        return 0;
    if (hd_uprobe_is(d, n)) {
        if (hd_uprobe_parse(d, n, &p) != 0 || p.role != peer_role ||
            strcmp(p.id, u->id) != 0)
            return 0;
        if (u->role == HD_UPROBE_HOST) {
            /* the viewer's probe reached us: that is the path */
            if (p.type != HD_UPROBE_PROBE || p.conv == 0)
                return 0;
            found(u, sock, from, p.conv, NULL, 0);
        } else if (p.type == HD_UPROBE_PROBE) {
            /* the host found one of our mappings: answer from there */
            send_on(sock, from, u->probe, u->probe_len);
        } else if (p.conv == u->conv) {
            found(u, sock, from, u->conv, NULL, 0);
        }
        return 1;
    }
    /* the viewer's side: the answer was lost, but the host's stream is
     * here */
    if (u->role == HD_UPROBE_VIEWER && hd_rudp_peek_conv(d, n) == u->conv) {
        found(u, sock, from, u->conv, d, n);
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
    hd_nat_udp_input(f->u, sock, (struct sockaddr *)&ss,
                     (const uint8_t *)buf->base, (size_t)n);
}

/* Open the fan: as many sockets as the system gives, up to HD_NAT_UDP_FAN. */
static void open_fan(struct hd_nat_udp *u)
{
    struct sockaddr_storage any;
    struct fan *f;

    if ((u->fan = calloc(HD_NAT_UDP_FAN, sizeof(*u->fan))) == NULL)
        return;
    hd_addr_parse(u->peer.ss_family == AF_INET6 ? "::" : "0.0.0.0", 0, &any);
    while (u->n_fan < HD_NAT_UDP_FAN) {
        if ((f = calloc(1, sizeof(*f))) == NULL)
            break;
        f->u = u;
        uv_udp_init(u->loop, &f->udp);
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

int hd_nat_udp_start(uv_loop_t *loop, const struct hd_nat_udp_cfg *cfg,
                     const struct hd_nat_udp_cb *cb, void *ud,
                     struct hd_nat_udp **out)
{
    struct hd_nat_udp *u;
    unsigned tick;

    *out = NULL;
    if (cfg->role != HD_UPROBE_HOST && cfg->role != HD_UPROBE_VIEWER)
        return -EINVAL;
    if ((u = calloc(1, sizeof(*u))) == NULL)
        return -ENOMEM;
    u->loop = loop;
    u->cb = *cb;
    u->ud = ud;
    u->role = cfg->role;
    snprintf(u->id, sizeof(u->id), "%s", cfg->id);
    u->conv = cfg->conv;
    u->sock = cfg->sock;
    if ((u->probe_len =
             pack(HD_UPROBE_PROBE, u->role, cfg->id, u->conv, u->probe)) == 0) {
        free(u);
        return -EINVAL; /* an ID longer than a probe holds */
    }
    memcpy(&u->peer, cfg->peer, hd_addr_len(cfg->peer));
    u->spray = cfg->spray;
    u->fan_probe_ms =
        cfg->fan_probe_ms ? cfg->fan_probe_ms : HD_NAT_UDP_PROBE_MS;
    u->start_ms = uv_now(loop);
    u->until_ms = cfg->ms;
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    u->handles = 1;
    if (cfg->fan)
        open_fan(u);
    *out = u;
    on_timer(&u->timer);
    tick = u->spray ? HD_NAT_UDP_SPRAY_TICK_MS
                    : (u->n_fan > 0 && u->fan_probe_ms < HD_NAT_UDP_PROBE_MS
                           ? u->fan_probe_ms
                           : HD_NAT_UDP_PROBE_MS);
    if (!u->done)
        uv_timer_start(&u->timer, on_timer, tick, tick);
    return 0;
}

const struct sockaddr *hd_nat_udp_peer(const struct hd_nat_udp *u)
{
    return (const struct sockaddr *)&u->peer;
}

void hd_nat_udp_stats(const struct hd_nat_udp *u, struct hd_nat_udp_stats *st)
{
    st->probes = u->probes;
    st->guesses = u->sprayed;
    st->fan = u->n_fan;
    st->ms = uv_now(u->loop) - u->start_ms;
}

/*
 * Hole punching and the NAT type test, the host's side.  See punch.h; the
 * techniques are common/nat/tcp.h.  Here: the budget of punches, the
 * session a punched connection starts, the host's NAT type.  Punches are
 * linked from struct host until they end.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "host/punch.h"
#include "host/session.h"
#include "log.h"
#include "nat/tcp.h"
#include "rendezvous.pb-c.h"

#define MOD "punch"

struct punch {
    struct punch *next;
    struct host *h;
    struct hd_nat_tcp *nat;
    char peer_s[HD_ADDR_STRLEN];
    uint16_t port;
};

/* Stop and free p (its handles close on the loop). */
static void punch_end(struct punch *p)
{
    struct punch **pp;

    for (pp = &p->h->punches; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    hd_nat_tcp_free(p->nat);
    free(p);
}

static void on_connected(struct hd_nat_tcp *nat, int fd, int accepted, void *ud)
{
    struct punch *p = ud;
    struct hd_nat_tcp_stats st;
    struct session *s;
    int r;

    hd_nat_tcp_stats(nat, &st);
    if ((r = session_new(p->h, SESSION_DIRECT, &s)) != 0) {
        os_sock_close(fd);
        hd_warn(MOD, "punch to %s: connection refused: %s", p->peer_s,
                hd_strerror(r));
        punch_end(p);
        return;
    }
    if ((r = uv_tcp_open(session_tcp(s), fd)) != 0) {
        os_sock_close(fd);
        session_close(s, "cannot take over the punched connection");
        hd_warn(MOD, "punch to %s: connected but no session: %s", p->peer_s,
                hd_strerror(r));
        punch_end(p);
        return;
    }
    if (accepted)
        hd_info(MOD, "punch to %s: accepted on port %u (%llu ms)", p->peer_s,
                (unsigned)p->port, (unsigned long long)st.ms);
    else
        hd_info(MOD,
                "punch to %s: connected from port %u by simultaneous open "
                "(%d attempt%s, %llu ms)",
                p->peer_s, (unsigned)p->port, st.attempts,
                st.attempts == 1 ? "" : "s", (unsigned long long)st.ms);
    session_begin(s, NULL, 0);
    punch_end(p);
}

static void on_expired(struct hd_nat_tcp *nat, void *ud)
{
    struct punch *p = ud;
    struct hd_nat_tcp_stats st;

    hd_nat_tcp_stats(nat, &st);
    hd_info(MOD,
            "punch to %s: no direct connection in %llu ms (%d "
            "attempt%s, last: %s)",
            p->peer_s, (unsigned long long)st.ms, st.attempts,
            st.attempts == 1 ? "" : "s",
            st.last_err ? hd_strerror(st.last_err) : "no answer");
    punch_end(p);
}

int punch_start(struct host *h, const struct sockaddr *viewer, int viewer_nat,
                uint16_t port)
{
    static const struct hd_nat_tcp_cb cb = { on_connected, on_expired };
    struct hd_nat_tcp_cfg cfg = { .peer = viewer,
                                  .port = port,
                                  .listen_fd = -1,
                                  .retry_ms = PUNCH_RETRY_MS,
                                  .connect_ms = PUNCH_CONNECT_MS,
                                  .listen_ms = PUNCH_LISTEN_MS,
                                  .max_attempts = PUNCH_MAX_ATTEMPTS };
    struct hd_nat_tcp_stats st;
    struct punch *p, *last;
    int r, n;

    if (viewer_nat == HBB__NAT_TYPE__SYMMETRIC &&
        h->nat_type == HBB__NAT_TYPE__SYMMETRIC)
        return 1;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return -ENOMEM;
    /* at most PUNCH_MAX_ACTIVE: the oldest (the list's tail) gives way */
    for (n = 0, last = h->punches; last != NULL && last->next != NULL;
         last = last->next)
        n++;
    if (last != NULL && n + 1 >= PUNCH_MAX_ACTIVE) {
        hd_info(MOD, "punch to %s: ended for a newer one (%d at a time)",
                last->peer_s, PUNCH_MAX_ACTIVE);
        punch_end(last);
    }
    p->h = h;
    hd_addr_format(viewer, p->peer_s, sizeof(p->peer_s));
    p->port = port;
    if ((r = hd_nat_tcp_start(h->loop, &cfg, &cb, p, &p->nat)) != 0) {
        free(p);
        return r;
    }
    p->next = h->punches;
    h->punches = p;
    hd_nat_tcp_stats(p->nat, &st);
    if (st.listen_err != 0)
        hd_warn(MOD, "punch to %s: cannot listen on port %u: %s", p->peer_s,
                (unsigned)port, hd_strerror(st.listen_err));
    hd_debug(MOD, "punching towards %s from port %u", p->peer_s,
             (unsigned)port);
    return 0;
}

/* Our source address towards to (a UDP connect() sends nothing: it only
 * picks the route): 0 when it is a global unicast IPv6 address (2000::/3:
 * link-local and ULA addresses do not reach another home). */
static int v6_source(const struct sockaddr *to, struct sockaddr_in6 *out)
{
    socklen_t len = sizeof(*out);
    os_sock fd;
    int r = 0;

    memset(out, 0, sizeof(*out));
    if ((fd = os_socket(AF_INET6, SOCK_DGRAM)) == OS_SOCK_BAD)
        return os_sock_error();
    if (connect(fd, to, sizeof(struct sockaddr_in6)) != 0 ||
        getsockname(fd, (struct sockaddr *)out, &len) != 0)
        r = os_sock_error();
    os_sock_close(fd);
    if (r == 0 && (out->sin6_addr.s6_addr[0] & 0xe0) != 0x20)
        r = -EADDRNOTAVAIL;
    return r;
}

int punch_start_v6(struct host *h, const struct sockaddr *viewer,
                   struct sockaddr_storage *mine)
{
    struct sockaddr_in6 src;
    uint16_t port = 0;
    int fd, r;

    memset(mine, 0, sizeof(*mine));
    if (viewer->sa_family != AF_INET6)
        return -EAFNOSUPPORT;
    if ((r = v6_source(viewer, &src)) != 0)
        return r;
    /* the port stays ours while punch_start binds its own sockets to it */
    if ((fd = hd_nat_tcp_socket(AF_INET6, 0, &port)) < 0)
        return fd;
    r = punch_start(h, viewer, HBB__NAT_TYPE__UNKNOWN_NAT, port);
    os_sock_close(fd);
    if (r != 0)
        return r < 0 ? r : -EAGAIN;
    src.sin6_port = htons(port);
    memcpy(mine, &src, sizeof(src));
    return 0;
}

/* ---- NAT type test ------------------------------------------------------- */

static void on_natt(struct hd_nat_natt *t, int status, int port0, int port1,
                    void *ud)
{
    struct host *h = ud;
    int nat;

    if (h->natt == t)
        h->natt = NULL;
    hd_nat_natt_free(t);
    if (status != 0) {
        hd_debug(MOD, "NAT type test failed: %s", hd_strerror(status));
        return;
    }
    nat = port0 == port1 ? HBB__NAT_TYPE__ASYMMETRIC : HBB__NAT_TYPE__SYMMETRIC;
    if (nat != h->nat_type)
        hd_info(MOD, "NAT type: %s (the server saw ports %d and %d)",
                nat == HBB__NAT_TYPE__SYMMETRIC ? "symmetric"
                                                : "cone (asymmetric)",
                port0, port1);
    h->nat_type = nat;
}

int punch_nat_test(struct host *h, const struct sockaddr *server)
{
    int r;

    if (h->natt != NULL || h->stopping)
        return 0;
    if ((r = hd_nat_natt_start(h->loop, server, on_natt, h, &h->natt)) != 0)
        hd_debug(MOD, "NAT type test failed: %s", hd_strerror(r));
    return 0;
}

long punch_raise_fd_limit(void)
{
    return os_raise_fd_limit();
}

void punch_stop_all(struct host *h)
{
    while (h->punches != NULL)
        punch_end(h->punches);
    hd_nat_natt_free(h->natt);
    h->natt = NULL;
}

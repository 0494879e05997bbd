/*
 * Hole punching and the NAT type test.  See punch.h.  Memory: a punch
 * owns a timer, a listener and at most one connecting attempt (each a
 * separate allocation with its own handle); it is freed when the last of
 * its handles has closed.  A NAT test owns two connections and a timer,
 * likewise.  Both are linked from struct host until they end.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "frame.h"
#include "host/punch.h"
#include "host/session.h"
#include "log.h"
#include "net.h"
#include "rendezvous.pb-c.h"

#define MOD "punch"

#define NATT_MAX_MSG (64u * 1024)

int punch_socket(int family, uint16_t port, uint16_t *bound)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd, one = 1, r;
    os_sock s;

    if (bound != NULL)
        *bound = 0;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (sa_family_t)family;
    hd_addr_set_port((struct sockaddr *)&ss, port);
    if ((s = os_socket(family, SOCK_STREAM)) == OS_SOCK_BAD)
        return os_sock_error();
    fd = (int)s; /* Windows' socket handles fit in an int */
    if (os_sock_reuse(s) != 0 ||
        bind(s, (struct sockaddr *)&ss, hd_addr_len((struct sockaddr *)&ss)) !=
            0) {
        r = os_sock_error();
        goto fail;
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
    if (bound != NULL) {
        if (getsockname(s, (struct sockaddr *)&ss, &len) != 0) {
            r = os_sock_error();
            goto fail;
        }
        *bound = hd_addr_port((struct sockaddr *)&ss);
    }
    return fd;
fail:
    os_sock_close(fd);
    return r;
}

/* ---- punching ------------------------------------------------------------ */

struct attempt;

struct punch {
    struct punch *next;
    struct host *h;
    uv_timer_t timer;
    uv_tcp_t lis;
    struct attempt *att; /* the connect() in flight, or NULL */
    struct sockaddr_storage peer;
    char peer_s[HD_ADDR_STRLEN];
    uint16_t port;
    uint64_t start_ms, retry_at, connect_until, listen_until;
    int handles, lis_open, done, attempts, last_err, linked;
};

struct attempt {
    struct punch *p;
    uv_tcp_t tcp;
    uv_connect_t req;
};

static void punch_handle_closed(uv_handle_t *hd)
{
    struct punch *p = hd->data;

    if (--p->handles == 0)
        free(p);
}

static void attempt_closed(uv_handle_t *hd)
{
    struct attempt *a = hd->data;
    struct punch *p = a->p;

    free(a);
    if (--p->handles == 0)
        free(p);
}

static void attempt_drop(struct punch *p)
{
    if (p->att == NULL)
        return;
    hd_net_close((uv_handle_t *)&p->att->tcp, attempt_closed);
    p->att = NULL;
}

static void unlink_punch(struct punch *p)
{
    struct punch **pp;

    if (!p->linked)
        return;
    for (pp = &p->h->punches; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    p->linked = 0;
}

/* Stop everything; p is freed once its handles have closed. */
static void punch_end(struct punch *p)
{
    if (p->done)
        return;
    p->done = 1;
    unlink_punch(p);
    attempt_drop(p);
    if (p->lis_open)
        hd_net_close((uv_handle_t *)&p->lis, punch_handle_closed);
    p->lis_open = 0;
    hd_net_close((uv_handle_t *)&p->timer, punch_handle_closed);
}

static uint64_t elapsed(struct punch *p)
{
    return uv_now(p->h->loop) - p->start_ms;
}

static void on_attempt(uv_connect_t *req, int status);

static void attempt_start(struct punch *p)
{
    struct attempt *a;
    int fd, r;

    if ((fd = punch_socket(p->peer.ss_family, p->port, NULL)) < 0) {
        p->last_err = fd;
        return;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        os_sock_close(fd);
        return;
    }
    a->p = p;
    uv_tcp_init(p->h->loop, &a->tcp);
    a->tcp.data = a->req.data = a;
    p->handles++;
    p->att = a;
    p->attempts++;
    if ((r = uv_tcp_open(&a->tcp, fd)) != 0) {
        os_sock_close(fd);
        p->last_err = r;
        attempt_drop(p);
        return;
    }
    if ((r = uv_tcp_connect(&a->req, &a->tcp, (struct sockaddr *)&p->peer,
                            on_attempt)) != 0) {
        p->last_err = r;
        attempt_drop(p);
    }
}

/* A session on a connected descriptor (dup'ed: the caller closes its
 * handle).  Returns 0 or an error (nothing to clean up). */
static int session_on_fd(struct punch *p, int fd)
{
    struct session *s;
    int dfd, r;

    if ((r = session_new(p->h, SESSION_DIRECT, &s)) != 0)
        return r;
    if ((dfd = (int)os_sock_dup(fd)) == (int)OS_SOCK_BAD) {
        r = os_sock_error();
        session_close(s, "cannot take over the punched connection");
        return r;
    }
    if ((r = uv_tcp_open(session_tcp(s), dfd)) != 0) {
        os_sock_close(dfd);
        session_close(s, "cannot take over the punched connection");
        return r;
    }
    session_begin(s, NULL, 0);
    return 0;
}

static void on_attempt(uv_connect_t *req, int status)
{
    struct attempt *a = req->data;
    struct punch *p = a->p;
    uv_os_fd_t fd;
    int r = -EBADF;

    if (status == UV_ECANCELED || p->done)
        return;
    if (status != 0) {
        /* refused (a full cone forwarded our SYN before the viewer
         * listened) or unreachable: try again from the timer */
        p->last_err = status;
        attempt_drop(p);
        p->retry_at = elapsed(p) + PUNCH_RETRY_MS;
        return;
    }
    if (uv_fileno((uv_handle_t *)&a->tcp, &fd) != 0 ||
        (r = session_on_fd(p, (int)(intptr_t)fd)) != 0) {
        hd_warn(MOD, "punch to %s: connected but no session: %s", p->peer_s,
                hd_strerror(r));
    } else {
        hd_info(MOD,
                "punch to %s: connected from port %u by simultaneous open "
                "(%d attempt%s, %llu ms)",
                p->peer_s, (unsigned)p->port, p->attempts,
                p->attempts == 1 ? "" : "s", (unsigned long long)elapsed(p));
    }
    punch_end(p);
}

static void on_accept(uv_stream_t *lis, int status)
{
    struct punch *p = lis->data;
    struct session *s;
    int r;

    if (p->done || status != 0)
        return;
    if ((r = session_new(p->h, SESSION_DIRECT, &s)) != 0) {
        /* closing the listener resets what waits in its queue */
        hd_warn(MOD, "punch to %s: connection refused: %s", p->peer_s,
                hd_strerror(r));
        punch_end(p);
        return;
    }
    if ((r = uv_accept(lis, (uv_stream_t *)session_tcp(s))) != 0) {
        session_close(s, "accept failed");
        return;
    }
    hd_info(MOD, "punch to %s: accepted on port %u (%llu ms)", p->peer_s,
            (unsigned)p->port, (unsigned long long)elapsed(p));
    session_begin(s, NULL, 0);
    punch_end(p);
}

static void on_punch_timer(uv_timer_t *t)
{
    struct punch *p = t->data;
    uint64_t now = elapsed(p);

    if (p->done)
        return;
    if (now >= p->listen_until) {
        hd_info(MOD,
                "punch to %s: no direct connection in %llu ms (%d "
                "attempt%s, last: %s)",
                p->peer_s, (unsigned long long)now, p->attempts,
                p->attempts == 1 ? "" : "s",
                p->last_err ? uv_strerror(p->last_err) : "no answer");
        punch_end(p);
        return;
    }
    if (now >= p->connect_until) {
        attempt_drop(p); /* the listener stays for late connects */
        return;
    }
    if (p->att == NULL && now >= p->retry_at &&
        p->attempts < PUNCH_MAX_ATTEMPTS)
        attempt_start(p);
}

static int listen_on(struct punch *p)
{
    int fd, r;

    if ((fd = punch_socket(p->peer.ss_family, p->port, NULL)) < 0)
        return fd;
    if (listen(fd, 8) != 0) {
        r = os_sock_error();
        os_sock_close(fd);
        return r;
    }
    uv_tcp_init(p->h->loop, &p->lis);
    p->lis.data = p;
    p->handles++;
    p->lis_open = 1;
    if ((r = uv_tcp_open(&p->lis, fd)) != 0) {
        os_sock_close(fd);
        return r;
    }
    return uv_listen((uv_stream_t *)&p->lis, 8, on_accept);
}

int punch_start(struct host *h, const struct sockaddr *viewer, int viewer_nat,
                uint16_t port)
{
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
    memcpy(&p->peer, viewer, hd_addr_len(viewer));
    hd_addr_format(viewer, p->peer_s, sizeof(p->peer_s));
    p->port = port;
    p->start_ms = uv_now(h->loop);
    p->connect_until = PUNCH_CONNECT_MS;
    p->listen_until = PUNCH_LISTEN_MS;
    uv_timer_init(h->loop, &p->timer);
    p->timer.data = p;
    p->handles = 1;
    p->next = h->punches;
    h->punches = p;
    p->linked = 1;
    /* the SYN first (it opens our NAT for the viewer's), then listen */
    attempt_start(p);
    if ((r = listen_on(p)) != 0)
        hd_warn(MOD, "punch to %s: cannot listen on port %u: %s", p->peer_s,
                (unsigned)port, uv_strerror(r));
    uv_timer_start(&p->timer, on_punch_timer, PUNCH_RETRY_MS, PUNCH_RETRY_MS);
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
    if ((fd = punch_socket(AF_INET6, 0, &port)) < 0)
        return fd;
    r = punch_start(h, viewer, HBB__NAT_TYPE__UNKNOWN_NAT, port);
    os_sock_close(fd);
    if (r != 0)
        return r < 0 ? r : -EAGAIN;
    src.sin6_port = htons(port);
    memcpy(mine, &src, sizeof(src));
    return 0;
}

/* ---- NAT type test ---------------------------------------------------------
 */

struct natt_conn {
    struct natt *t;
    uv_tcp_t tcp;
    uv_connect_t req;
    struct hd_frame_decoder dec;
    int port; /* the answer, 0 before */
};

struct natt {
    struct host *h;
    struct natt_conn c[2];
    uv_timer_t timer;
    int handles, done;
};

static void natt_release(struct natt *t)
{
    if (--t->handles == 0) {
        hd_frame_decoder_cleanup(&t->c[0].dec);
        hd_frame_decoder_cleanup(&t->c[1].dec);
        free(t);
    }
}

static void natt_timer_closed(uv_handle_t *hd)
{
    natt_release(hd->data);
}

static void natt_conn_closed(uv_handle_t *hd)
{
    struct natt_conn *c = hd->data;

    natt_release(c->t);
}

static void natt_end(struct natt *t, const char *why)
{
    int nat;

    if (t->done)
        return;
    t->done = 1;
    if (t->h->natt == t)
        t->h->natt = NULL;
    if (why != NULL) {
        hd_debug(MOD, "NAT type test failed: %s", why);
    } else {
        nat = t->c[0].port == t->c[1].port ? HBB__NAT_TYPE__ASYMMETRIC
                                           : HBB__NAT_TYPE__SYMMETRIC;
        if (nat != t->h->nat_type)
            hd_info(MOD, "NAT type: %s (the server saw ports %d and %d)",
                    nat == HBB__NAT_TYPE__SYMMETRIC ? "symmetric"
                                                    : "cone (asymmetric)",
                    t->c[0].port, t->c[1].port);
        t->h->nat_type = nat;
    }
    hd_net_close((uv_handle_t *)&t->c[0].tcp, natt_conn_closed);
    hd_net_close((uv_handle_t *)&t->c[1].tcp, natt_conn_closed);
    hd_net_close((uv_handle_t *)&t->timer, natt_timer_closed);
}

static void natt_timeout(uv_timer_t *tm)
{
    natt_end(tm->data, "timed out");
}

static void natt_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct natt_conn *c = hd->data;

    hd_net_frame_buf(&c->dec, 0, buf);
}

static void natt_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct natt_conn *c = s->data;
    struct natt *t = c->t;
    Hbb__RendezvousMessage *m;
    const uint8_t *p;
    size_t len;
    int r;

    if (t->done)
        return;
    if (n < 0) {
        natt_end(t, n == UV_EOF ? "server closed" : uv_strerror((int)n));
        return;
    }
    hd_frame_decoder_commit(&c->dec, (size_t)n);
    while ((r = hd_frame_decoder_next(&c->dec, &p, &len)) == 1) {
        /* a KeyExchange offer may come first: skip what is not ours */
        if ((m = hbb__rendezvous_message__unpack(NULL, len, p)) == NULL)
            continue;
        if (m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_RESPONSE &&
            m->test_nat_response->port > 0 &&
            m->test_nat_response->port < 65536)
            c->port = m->test_nat_response->port;
        hbb__rendezvous_message__free_unpacked(m, NULL);
        if (c->port)
            break;
    }
    if (r < 0) {
        natt_end(t, hd_strerror(r));
        return;
    }
    if (c->port)
        uv_read_stop(s);
    if (t->c[0].port && t->c[1].port)
        natt_end(t, NULL);
}

static void natt_connected(uv_connect_t *req, int status)
{
    struct natt_conn *c = req->data;
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__TestNatRequest tr = HBB__TEST_NAT_REQUEST__INIT;
    uint8_t buf[64];
    int n;

    if (status == UV_ECANCELED || c->t->done)
        return;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST;
    m.test_nat_request = &tr;
    if (status != 0 ||
        (n = hd_frame_pack_into(&m.base, buf, sizeof(buf))) < 0 ||
        hd_net_write((uv_stream_t *)&c->tcp, buf, (size_t)n, NULL) != 0) {
        natt_end(c->t, status ? uv_strerror(status) : "cannot send");
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, natt_alloc, natt_read);
}

int punch_nat_test(struct host *h, const struct sockaddr *server)
{
    struct sockaddr_storage to;
    struct natt *t;
    uint16_t port = 0;
    int i, fd, r = 0;

    if (h->natt != NULL || h->stopping)
        return 0;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return -ENOMEM;
    t->h = h;
    uv_timer_init(h->loop, &t->timer);
    t->timer.data = t;
    for (i = 0; i < 2; i++) {
        t->c[i].t = t;
        hd_frame_decoder_init(&t->c[i].dec, NATT_MAX_MSG);
        uv_tcp_init(h->loop, &t->c[i].tcp);
        t->c[i].tcp.data = t->c[i].req.data = &t->c[i];
    }
    t->handles = 3; /* two connections and the timer */
    h->natt = t;
    uv_timer_start(&t->timer, natt_timeout, PUNCH_NATT_MS, 0);
    memcpy(&to, server, hd_addr_len(server));
    for (i = 0; i < 2 && r == 0; i++) {
        if ((fd = punch_socket(server->sa_family, port,
                               i == 0 ? &port : NULL)) < 0) {
            r = fd;
            break;
        }
        if ((r = uv_tcp_open(&t->c[i].tcp, fd)) != 0) {
            os_sock_close(fd);
            break;
        }
        if (i == 1)
            hd_addr_set_port((struct sockaddr *)&to,
                             (uint16_t)(hd_addr_port(server) - 1));
        r = uv_tcp_connect(&t->c[i].req, &t->c[i].tcp, (struct sockaddr *)&to,
                           natt_connected);
    }
    if (r != 0)
        natt_end(t, hd_strerror(r));
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
    if (h->natt != NULL)
        natt_end(h->natt, "host stopping");
}

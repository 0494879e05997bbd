/*
 * The TCP punch and the NAT type test.  See nat/tcp.h.  Memory: a punch
 * owns a timer, a listener and at most one connecting attempt (each a
 * separate allocation with its own handle); it is freed when the last of
 * its handles has closed.  A NAT test owns two connections and a timer,
 * likewise.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "frame.h"
#include "nat/tcp.h"
#include "net.h"
#include "os.h"
#include "rendezvous.pb-c.h"

#define NATT_MAX_MSG (64u * 1024)

int hd_nat_tcp_socket(int family, uint16_t port, uint16_t *bound)
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

int hd_nat_tcp_listener(int family, uint16_t port, uint16_t *bound)
{
    int fd, r;

    if ((fd = hd_nat_tcp_socket(family, port, bound)) < 0)
        return fd;
    if (listen(fd, 8) != 0) {
        r = os_sock_error();
        os_sock_close(fd);
        return r;
    }
    return fd;
}

/* ---- punching ------------------------------------------------------------ */

struct attempt;

struct hd_nat_tcp {
    uv_loop_t *loop;
    struct hd_nat_tcp_cb cb;
    void *ud;
    uv_timer_t timer;
    uv_tcp_t lis;
    struct attempt *att; /* the connect() in flight, or NULL */
    struct sockaddr_storage peer;
    uint16_t port;
    unsigned retry_ms;
    uint64_t start_ms, retry_at, connect_until, listen_until;
    int handles, lis_open, done, paused, attempts, max_attempts, last_err,
        listen_err;
};

struct attempt {
    struct hd_nat_tcp *p;
    uv_tcp_t tcp;
    uv_connect_t req;
};

static void release(struct hd_nat_tcp *p)
{
    if (--p->handles == 0)
        free(p);
}

static void handle_closed(uv_handle_t *hd)
{
    release(hd->data);
}

static void attempt_closed(uv_handle_t *hd)
{
    struct attempt *a = hd->data;
    struct hd_nat_tcp *p = a->p;

    free(a);
    release(p);
}

static void attempt_drop(struct hd_nat_tcp *p)
{
    if (p->att == NULL)
        return;
    hd_net_close((uv_handle_t *)&p->att->tcp, attempt_closed);
    p->att = NULL;
}

void hd_nat_tcp_free(struct hd_nat_tcp *p)
{
    if (p == NULL || p->done)
        return;
    p->done = 1;
    attempt_drop(p);
    if (p->lis_open)
        hd_net_close((uv_handle_t *)&p->lis, handle_closed);
    p->lis_open = 0;
    hd_net_close((uv_handle_t *)&p->timer, handle_closed);
}

static uint64_t elapsed(const struct hd_nat_tcp *p)
{
    return uv_now(p->loop) - p->start_ms;
}

static void on_attempt(uv_connect_t *req, int status);

static void attempt_start(struct hd_nat_tcp *p)
{
    struct attempt *a;
    int fd, r;

    if ((fd = hd_nat_tcp_socket(p->peer.ss_family, p->port, NULL)) < 0) {
        p->last_err = fd;
        p->retry_at = elapsed(p) + p->retry_ms;
        return;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        os_sock_close(fd);
        return;
    }
    a->p = p;
    uv_tcp_init(p->loop, &a->tcp);
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
        p->retry_at = elapsed(p) + p->retry_ms;
        attempt_drop(p);
    }
}

/* A descriptor of the caller's for the connection on tcp, whose handle
 * closes: >= 0, or a negative error. */
static int take_fd(uv_tcp_t *tcp)
{
    uv_os_fd_t fd;
    os_sock d;

    if (uv_fileno((uv_handle_t *)tcp, &fd) != 0)
        return -EBADF;
    if ((d = os_sock_dup((os_sock)(uintptr_t)fd)) == OS_SOCK_BAD)
        return os_sock_error();
    os_sock_nonblock(d);
    return (int)d;
}

static void on_attempt(uv_connect_t *req, int status)
{
    struct attempt *a = req->data;
    struct hd_nat_tcp *p = a->p;
    int fd;

    if (status == UV_ECANCELED || p->done)
        return;
    if (status != 0) {
        /* refused (a full cone forwarded our SYN before the peer
         * listened) or unreachable: try again from the timer */
        p->last_err = status;
        attempt_drop(p);
        p->retry_at = elapsed(p) + p->retry_ms;
        return;
    }
    fd = take_fd(&a->tcp);
    attempt_drop(p);
    if (fd < 0) {
        p->last_err = fd;
        p->retry_at = elapsed(p) + p->retry_ms;
        return;
    }
    p->paused = 1;
    p->cb.connected(p, fd, 0, p->ud);
}

static void accepted_closed(uv_handle_t *hd)
{
    free(hd);
}

static void on_accept(uv_stream_t *lis, int status)
{
    struct hd_nat_tcp *p = lis->data;
    uv_tcp_t *c;
    int fd = -ENOMEM;

    if (p->done || status != 0)
        return;
    if ((c = malloc(sizeof(*c))) == NULL)
        return;
    uv_tcp_init(p->loop, c);
    if (uv_accept(lis, (uv_stream_t *)c) == 0)
        fd = take_fd(c);
    hd_net_close((uv_handle_t *)c, accepted_closed);
    if (fd >= 0)
        p->cb.connected(p, fd, 1, p->ud);
}

void hd_nat_tcp_resume(struct hd_nat_tcp *p)
{
    p->paused = 0;
}

int hd_nat_tcp_trying(const struct hd_nat_tcp *p)
{
    return !p->done && elapsed(p) < p->connect_until &&
           (p->max_attempts == 0 || p->attempts < p->max_attempts ||
            p->att != NULL);
}

static void on_timer(uv_timer_t *t)
{
    struct hd_nat_tcp *p = t->data;
    uint64_t now = elapsed(p);

    if (p->done)
        return;
    if (now >= p->connect_until && now >= p->listen_until) {
        p->cb.expired(p, p->ud);
        return;
    }
    if (now >= p->connect_until) {
        attempt_drop(p); /* the listener stays for late connects */
        if (!p->lis_open) {
            p->cb.expired(p, p->ud);
            return;
        }
        return;
    }
    if (p->att == NULL && !p->paused && now >= p->retry_at &&
        (p->max_attempts == 0 || p->attempts < p->max_attempts))
        attempt_start(p);
}

static int listen_on(struct hd_nat_tcp *p, int fd)
{
    int r;

    if (fd == -1 &&
        (fd = hd_nat_tcp_listener(p->peer.ss_family, p->port, NULL)) < 0)
        return fd;
    uv_tcp_init(p->loop, &p->lis);
    p->lis.data = p;
    p->handles++;
    p->lis_open = 1;
    if ((r = uv_tcp_open(&p->lis, fd)) != 0) {
        os_sock_close(fd);
        return r;
    }
    return uv_listen((uv_stream_t *)&p->lis, 8, on_accept);
}

int hd_nat_tcp_start(uv_loop_t *loop, const struct hd_nat_tcp_cfg *cfg,
                     const struct hd_nat_tcp_cb *cb, void *ud,
                     struct hd_nat_tcp **out)
{
    struct hd_nat_tcp *p;
    unsigned tick;

    *out = NULL;
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        if (cfg->listen_fd >= 0)
            os_sock_close(cfg->listen_fd);
        return -ENOMEM;
    }
    p->loop = loop;
    p->cb = *cb;
    p->ud = ud;
    memcpy(&p->peer, cfg->peer, hd_addr_len(cfg->peer));
    p->port = cfg->port;
    p->retry_ms = cfg->retry_ms ? cfg->retry_ms : HD_NAT_TCP_RETRY_MS;
    p->max_attempts = cfg->max_attempts;
    p->start_ms = uv_now(loop);
    p->connect_until = cfg->connect_ms;
    p->listen_until = cfg->listen_fd == -2 ? 0 : cfg->listen_ms;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->handles = 1;
    /* the SYN first (it opens our NAT for the peer's), then listen */
    attempt_start(p);
    if (cfg->listen_fd != -2)
        p->listen_err = listen_on(p, cfg->listen_fd);
    /* the timer's granularity: retries land within a tenth of retry_ms */
    tick = p->retry_ms / 10 ? p->retry_ms / 10 : 1;
    uv_timer_start(&p->timer, on_timer, tick, tick);
    *out = p;
    return 0;
}

void hd_nat_tcp_stats(const struct hd_nat_tcp *p, struct hd_nat_tcp_stats *st)
{
    st->attempts = p->attempts;
    st->last_err = p->last_err;
    st->listen_err = p->listen_err;
    st->ms = elapsed(p);
}

/* ---- NAT type test ------------------------------------------------------- */

struct natt_conn {
    struct hd_nat_natt *t;
    uv_tcp_t tcp;
    uv_connect_t req;
    struct hd_frame_decoder dec;
    int port; /* the answer, 0 before */
};

struct hd_nat_natt {
    hd_nat_natt_cb cb;
    void *ud;
    struct natt_conn c[2];
    uv_timer_t timer;
    int handles, done, err;
};

static void natt_release(struct hd_nat_natt *t)
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

void hd_nat_natt_free(struct hd_nat_natt *t)
{
    if (t == NULL || t->done)
        return;
    t->done = 1;
    hd_net_close((uv_handle_t *)&t->c[0].tcp, natt_conn_closed);
    hd_net_close((uv_handle_t *)&t->c[1].tcp, natt_conn_closed);
    hd_net_close((uv_handle_t *)&t->timer, natt_timer_closed);
}

/* The outcome: stop everything, then tell the caller (once). */
static void natt_end(struct hd_nat_natt *t, int status)
{
    hd_nat_natt_cb cb = t->cb;

    if (t->done || cb == NULL)
        return;
    t->cb = NULL;
    uv_timer_stop(&t->timer);
    uv_read_stop((uv_stream_t *)&t->c[0].tcp);
    uv_read_stop((uv_stream_t *)&t->c[1].tcp);
    if (status != 0)
        cb(t, status, 0, 0, t->ud);
    else
        cb(t, 0, t->c[0].port, t->c[1].port, t->ud);
}

static void natt_timeout(uv_timer_t *tm)
{
    natt_end(tm->data, -ETIMEDOUT);
}

static void natt_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct natt_conn *c = hd->data;

    (void)sz;
    hd_net_frame_buf(&c->dec, 0, buf);
}

static void natt_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct natt_conn *c = s->data;
    struct hd_nat_natt *t = c->t;
    Hbb__RendezvousMessage *m;
    const uint8_t *p;
    size_t len;
    int r;

    (void)buf;
    if (t->done || t->cb == NULL)
        return;
    if (n < 0) {
        natt_end(t, n == UV_EOF ? -ECONNRESET : (int)n);
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
        natt_end(t, r);
        return;
    }
    if (c->port)
        uv_read_stop(s);
    if (t->c[0].port && t->c[1].port)
        natt_end(t, 0);
}

static void natt_connected(uv_connect_t *req, int status)
{
    struct natt_conn *c = req->data;
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__TestNatRequest tr = HBB__TEST_NAT_REQUEST__INIT;
    uint8_t buf[64];
    int n;

    if (status == UV_ECANCELED || c->t->done || c->t->cb == NULL)
        return;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST;
    m.test_nat_request = &tr;
    if (status != 0 ||
        (n = hd_frame_pack_into(&m.base, buf, sizeof(buf))) < 0 ||
        hd_net_write((uv_stream_t *)&c->tcp, buf, (size_t)n, NULL) != 0) {
        natt_end(c->t, status ? status : -EIO);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, natt_alloc, natt_read);
}

static void natt_fail_later(uv_timer_t *tm)
{
    struct hd_nat_natt *t = tm->data;

    natt_end(t, t->err);
}

int hd_nat_natt_start(uv_loop_t *loop, const struct sockaddr *server,
                      hd_nat_natt_cb cb, void *ud, struct hd_nat_natt **out)
{
    struct sockaddr_storage to;
    struct hd_nat_natt *t;
    uint16_t port = 0;
    int i, fd, r = 0;

    *out = NULL;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return -ENOMEM;
    t->cb = cb;
    t->ud = ud;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    for (i = 0; i < 2; i++) {
        t->c[i].t = t;
        hd_frame_decoder_init(&t->c[i].dec, NATT_MAX_MSG);
        uv_tcp_init(loop, &t->c[i].tcp);
        t->c[i].tcp.data = t->c[i].req.data = &t->c[i];
    }
    t->handles = 3; /* two connections and the timer */
    memcpy(&to, server, hd_addr_len(server));
    for (i = 0; i < 2 && r == 0; i++) {
        /* a port of its own, the same for both */
        if ((fd = hd_nat_tcp_socket(server->sa_family, port,
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
    *out = t;
    if (r != 0) {
        /* the callback comes from the loop, never from here */
        t->err = r;
        uv_timer_start(&t->timer, natt_fail_later, 0, 0);
    } else {
        uv_timer_start(&t->timer, natt_timeout, HD_NAT_NATT_MS, 0);
    }
    return 0;
}

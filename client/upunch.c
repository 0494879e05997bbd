/*
 * UDP hole punching, the viewer's side.  See upunch.h.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "client/upunch.h"
#include "frame.h"
#include "log.h"
#include "nat/nat.h"
#include "net.h"
#include "os.h"
#include "rendezvous.pb-c.h"
#include "rudp.h"

#define MOD "rv"

void up_init(struct up *u)
{
    memset(u, 0, sizeof(*u));
}

static void send_to(uv_udp_t *sock, const struct sockaddr *to, const uint8_t *d,
                    size_t n)
{
    uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);

    /* best effort, like every datagram */
    uv_udp_try_send(sock, &b, 1, to);
}

static void send_query(struct up *u)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__TestNatRequest t = HBB__TEST_NAT_REQUEST__INIT;
    uint8_t buf[64], pad[16] = { 0 };
    int n;

    /* a large serial and padding: the server never answers with more than
     * it got, and its answer carries the cookie */
    t.serial = 0x7fffffff;
    t.hd_pad.data = pad;
    t.hd_pad.len = sizeof(pad);
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST;
    m.test_nat_request = &t;
    if ((n = hd_msg_pack_into(&m.base, buf, sizeof(buf))) > 0)
        send_to(&u->sock, (struct sockaddr *)&u->srv, buf, (size_t)n);
    u->queries++;
}

static void up_closed(uv_handle_t *hd)
{
    struct up *u = hd->data;

    u->handles--;
}

static void close_sock(struct up *u)
{
    if (u->sock_open)
        hd_net_close((uv_handle_t *)&u->sock, up_closed);
    u->sock_open = 0;
}

void up_close(struct up *u)
{
    hd_nat_udp_free(u->nat);
    u->nat = NULL;
    close_sock(u);
    if (u->path_open)
        hd_net_close((uv_handle_t *)&u->path, up_closed);
    u->path_open = 0;
    if (u->timer_open)
        hd_net_close((uv_handle_t *)&u->timer, up_closed);
    u->timer_open = 0;
    hd_rudp_free(u->rudp);
    u->rudp = NULL;
}

static void fail(struct up *u, const char *why)
{
    char hs[HD_ADDR_STRLEN];

    u->err = why;
    hd_info(MOD, "%s: udp path to %s failed: %s", u->id,
            hd_addr_format((struct sockaddr *)&u->host, hs, sizeof(hs)), why);
    up_close(u);
}

static void on_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct up *u = hd->data;

    (void)sz;
    buf->base = (char *)u->buf;
    buf->len = sizeof(u->buf);
}

static int is_server(const struct up *u, const struct sockaddr *from)
{
    return hd_addr_same_ip(from, (const struct sockaddr *)&u->srv) &&
           hd_addr_port(from) == hd_addr_port((const struct sockaddr *)&u->srv);
}

/* The server's answer to our query: U's public port, and the cookie that
 * proves it to the server. */
static void server_answer(struct up *u, const uint8_t *d, size_t n)
{
    Hbb__RendezvousMessage *m = hbb__rendezvous_message__unpack(NULL, n, d);

    if (m != NULL &&
        m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_RESPONSE &&
        m->test_nat_response->port > 0 && m->test_nat_response->port <= 65535) {
        const ProtobufCBinaryData *ck = &m->test_nat_response->hd_cookie;

        u->pub_port = (uint16_t)m->test_nat_response->port;
        u->cookie_len = ck->len <= sizeof(u->cookie) ? ck->len : 0;
        if (u->cookie_len > 0)
            memcpy(u->cookie, ck->data, u->cookie_len);
    }
    if (m != NULL)
        hbb__rendezvous_message__free_unpacked(m, NULL);
}

/* The stream delivered more: is the host's first frame complete? */
static void hello_more(struct up *u, uint64_t now)
{
    size_t hlen, plen, k;

    while (u->hello_len < sizeof(u->hello) &&
           (k = hd_rudp_recv(u->rudp, u->hello + u->hello_len,
                             sizeof(u->hello) - u->hello_len)) > 0)
        u->hello_len += k;
    hd_rudp_update(u->rudp, now); /* acknowledge at once */
    if (hd_frame_parse_header(u->hello, u->hello_len, &hlen, &plen) == 1) {
        if (hlen + plen <= u->hello_len) {
            u->ready = 1;
            return;
        }
        if (hlen + plen > sizeof(u->hello)) {
            fail(u, "the host's first frame is too large");
            return;
        }
    }
    if (hd_rudp_error(u->rudp) != 0)
        fail(u, "the stream failed before SignedId");
}

static void on_recv(uv_udp_t *sock, ssize_t n, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags)
{
    struct up *u = sock->data;
    struct sockaddr_storage ss;
    const uint8_t *d = (const uint8_t *)buf->base;

    if (n <= 0 || from == NULL || (flags & UV_UDP_PARTIAL))
        return; /* ICMP errors (ECONNREFUSED) are not fatal */
    if (sock == &u->path) {
        if (u->rudp != NULL && !u->ready) {
            hd_rudp_input(u->rudp, d, (size_t)n, uv_now(u->loop));
            hello_more(u, uv_now(u->loop));
        }
        return;
    }
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, from, hd_addr_len(from));
    hd_addr_normalize(&ss);
    if (u->nat == NULL && u->pub_port == 0 &&
        is_server(u, (struct sockaddr *)&ss) && !hd_uprobe_is(d, (size_t)n)) {
        server_answer(u, d, (size_t)n);
        return;
    }
    if (u->nat != NULL)
        hd_nat_udp_input(u->nat, sock, (struct sockaddr *)&ss, d, (size_t)n);
}

static void on_timer(uv_timer_t *t)
{
    struct up *u = t->data;
    uint64_t now = uv_now(u->loop);

    if (u->rudp != NULL) {
        if (now >= u->hello_until) {
            fail(u, "no SignedId in time");
            return;
        }
        hd_rudp_update(u->rudp, now);
        if (hd_rudp_error(u->rudp) != 0)
            fail(u, "the stream failed before SignedId");
        return;
    }
    if (u->nat == NULL && u->pub_port == 0 && u->queries < UP_QUERIES)
        send_query(u);
    else
        uv_timer_stop(t);
}

int up_open(struct up *u, uv_loop_t *loop, const struct sockaddr *srv)
{
    struct sockaddr_storage any;
    int r;

    up_init(u);
    u->loop = loop;
    memcpy(&u->srv, srv, hd_addr_len(srv));
    hd_addr_parse(srv->sa_family == AF_INET6 ? "::" : "0.0.0.0", 0, &any);
    uv_udp_init(loop, &u->sock);
    u->sock.data = u;
    u->sock_open = 1;
    u->handles++;
    if ((r = uv_udp_bind(&u->sock, (struct sockaddr *)&any, 0)) != 0 ||
        (r = uv_udp_recv_start(&u->sock, on_alloc, on_recv)) != 0) {
        up_close(u);
        return r;
    }
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    u->timer_open = 1;
    u->handles++;
    send_query(u);
    uv_timer_start(&u->timer, on_timer, UP_QUERY_MS, UP_QUERY_MS);
    return 0;
}

static void out_path(const uint8_t *d, size_t n, void *ud)
{
    struct up *u = ud;

    /* connected: best effort, losses are repaired */
    send_to(&u->path, NULL, d, n);
}

/* The host answered on sock from `from`: that is the path.  d[0..n): its
 * stream's first datagram, when that came before the answer. */
static void on_found(struct hd_nat_udp *nat, uv_udp_t *sock,
                     const struct sockaddr *from, uint32_t conv,
                     const uint8_t *d, size_t n, void *ud)
{
    struct hd_rudp_cb cb = { out_path };
    struct up *u = ud;
    uint64_t now = uv_now(u->loop);
    struct hd_nat_udp_stats st;
    char fs[HD_ADDR_STRLEN];
    int fd, e;

    (void)conv;
    hd_nat_udp_stats(nat, &st);
    if ((fd = hd_nat_dup_connected((uv_handle_t *)sock, from, &e)) < 0) {
        fail(u, "cannot use the answered socket");
        return;
    }
    uv_udp_init(u->loop, &u->path);
    u->path.data = u;
    u->path_open = 1;
    u->handles++;
    if (uv_udp_open(&u->path, (uv_os_sock_t)fd) != 0) {
        close(fd);
        fail(u, "cannot use the answered socket");
        return;
    }
    if (uv_udp_recv_start(&u->path, on_alloc, on_recv) != 0 ||
        hd_rudp_new(u->conv, now, &cb, u, &u->rudp) != 0) {
        fail(u, "cannot use the answered socket");
        return;
    }
    hd_info(MOD,
            "%s: udp: the host answered from %s%s (%llu ms, %u probes, "
            "%u guesses)",
            u->id, hd_addr_format(from, fs, sizeof(fs)),
            sock == &u->sock ? "" : " on one of our extra sockets",
            (unsigned long long)(now - u->t0), st.probes, st.guesses);
    hd_nat_udp_free(u->nat);
    u->nat = NULL;
    close_sock(u);
    u->hello_until = now + UP_HELLO_MS;
    uv_timer_start(&u->timer, on_timer, 10, 10);
    if (n > 0) {
        hd_rudp_input(u->rudp, d, n, now);
        hello_more(u, now);
    }
}

static void on_expired(struct hd_nat_udp *nat, void *ud)
{
    struct up *u = ud;
    struct hd_nat_udp_stats st;

    hd_nat_udp_stats(nat, &st);
    fail(u,
         st.guesses || st.fan ? "no answer (guessed ports too)" : "no answer");
}

int up_start(struct up *u, const struct sockaddr *host, const char *id,
             int me_sym, int host_sym, uint64_t ms)
{
    static const struct hd_nat_udp_cb cb = { on_found, on_expired };
    struct hd_nat_udp_cfg cfg;

    if (!u->sock_open)
        return -EBADF;
    if (me_sym && host_sym)
        return -EHOSTUNREACH;
    memcpy(&u->host, host, hd_addr_len(host));
    snprintf(u->id, sizeof(u->id), "%s", id);
    do
        u->conv = randombytes_random();
    while (u->conv == 0);
    u->t0 = uv_now(u->loop);
    uv_timer_stop(&u->timer); /* no more queries */
    cfg = (struct hd_nat_udp_cfg){ .role = HD_UPROBE_VIEWER,
                                   .id = id,
                                   .conv = u->conv,
                                   .peer = host,
                                   .sock = &u->sock,
                                   .fan = me_sym,
                                   .spray = host_sym,
                                   .fan_probe_ms = UP_FAN_PROBE_MS,
                                   .ms = ms };
    return hd_nat_udp_start(u->loop, &cfg, &cb, u, &u->nat);
}

int up_alive(const struct up *u)
{
    return u->nat != NULL || u->rudp != NULL;
}

static void out_fd(const uint8_t *d, size_t n, void *ud)
{
    /* connected: best effort, losses are repaired */
    if (send((int)(intptr_t)ud, d, n, MSG_DONTWAIT) < 0) {
    }
}

void up_take(struct up *u, int *fd, struct hd_rudp **r)
{
    static const struct hd_rudp_cb cb = { out_fd };
    uv_os_fd_t ofd;
    os_sock d = OS_SOCK_BAD;

    *fd = -1;
    *r = NULL;
    if (u->path_open && uv_fileno((uv_handle_t *)&u->path, &ofd) == 0)
        d = os_sock_dup((os_sock)ofd);
    if (d != OS_SOCK_BAD) {
        *fd = (int)d;
        *r = u->rudp;
        hd_rudp_set_output(*r, &cb, (void *)(intptr_t)*fd);
        u->rudp = NULL;
    }
    up_close(u);
}

/*
 * Unit tests for common/net, on a real libuv loop over loopback with
 * ephemeral ports: 1 MB through hd_net_write, a slow peer caught by
 * hd_net_backlogged, UDP both ways, dual-stack listeners and sockets, and
 * a port already in use.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "net.h"
#include "os.h"
#include "tests/harness.h"

#define BIG      (1 << 20)
#define GUARD_MS 10000

static void close_one(uv_handle_t *h, void *arg)
{
    hd_net_close(h, NULL);
}

static void on_guard(uv_timer_t *t)
{
    ht_fail(__FILE__, __LINE__, "timed out after %d ms", GUARD_MS);
    uv_walk(t->loop, close_one, NULL);
}

static void start_guard(uv_loop_t *loop, uv_timer_t *guard)
{
    uv_timer_init(loop, guard);
    uv_timer_start(guard, on_guard, GUARD_MS, 0);
    uv_unref((uv_handle_t *)guard);
}

/* Close whatever is left and check that nothing leaked into the loop. */
static void finish(uv_loop_t *loop)
{
    uv_walk(loop, close_one, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    HT_EQ_INT(uv_loop_close(loop), 0);
}

/* The accept side may close everything before the connect completes. */
static void any_connected(uv_connect_t *req, int status)
{
    HT_CHECK(status == 0 || status == UV_ECANCELED);
}

static void ip(const char *s, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(s, ':') != NULL)
        uv_ip6_addr(s, port, (struct sockaddr_in6 *)ss);
    else
        uv_ip4_addr(s, port, (struct sockaddr_in *)ss);
}

static int local_port(void *handle)
{
    struct sockaddr_storage ss;

    if (hd_net_local_addr(handle, &ss) != 0)
        return -1;
    return hd_net_port((struct sockaddr *)&ss);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* ---- 1 MB over TCP ---- */

struct bulk {
    uv_loop_t loop;
    uv_tcp_t server, accepted, client;
    uv_connect_t conn;
    uv_timer_t guard;
    uint8_t *sent, *got, *stage;
    size_t ngot;
    int writes, writes_done, close_cbs;
    char rbuf[65536];
};

static void bulk_written(uv_stream_t *s, int status)
{
    struct bulk *b = s->data;

    HT_EQ_INT(status, 0);
    b->writes_done++;
}

static void bulk_accept(uv_stream_t *server, int status)
{
    static const size_t chunks[] = { 1, 7, 1000, 65536, 300000 };
    struct bulk *b = server->data;
    size_t off = 0;

    HT_EQ_INT(status, 0);
    uv_tcp_init(&b->loop, &b->accepted);
    b->accepted.data = b;
    HT_EQ_INT(uv_accept(server, (uv_stream_t *)&b->accepted), 0);
    for (size_t i = 0; off < BIG; i++) {
        size_t n = chunks[i % 5];
        if (n > BIG - off)
            n = BIG - off;
        /* hd_net_write copies: the staging buffer is reused at once */
        memcpy(b->stage, b->sent + off, n);
        HT_EQ_INT(hd_net_write((uv_stream_t *)&b->accepted, b->stage, n,
                               bulk_written),
                  0);
        memset(b->stage, 0xee, n);
        off += n;
        b->writes++;
    }
}

static void bulk_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct bulk *b = h->data;

    buf->base = b->rbuf;
    buf->len = sizeof(b->rbuf);
}

static void bulk_closed(uv_handle_t *h)
{
    struct bulk *b = h->data;

    b->close_cbs++;
}

static void bulk_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct bulk *b = s->data;

    if (nread < 0) {
        ht_fail(__FILE__, __LINE__, "read: %s", hd_strerror((int)nread));
        uv_walk(&b->loop, close_one, NULL);
        return;
    }
    if ((size_t)nread > BIG - b->ngot) {
        ht_fail(__FILE__, __LINE__, "more than %d bytes arrived", BIG);
        uv_walk(&b->loop, close_one, NULL);
        return;
    }
    memcpy(b->got + b->ngot, buf->base, (size_t)nread);
    b->ngot += (size_t)nread;
    if (b->ngot == BIG) {
        /* closing twice is harmless: the callback runs once */
        hd_net_close((uv_handle_t *)s, bulk_closed);
        hd_net_close((uv_handle_t *)s, bulk_closed);
        uv_walk(&b->loop, close_one, NULL);
    }
}

static void bulk_connected(uv_connect_t *req, int status)
{
    struct bulk *b = req->data;

    HT_EQ_INT(status, 0);
    if (status == 0)
        uv_read_start((uv_stream_t *)&b->client, bulk_alloc, bulk_read);
}

static void tcp_one_megabyte(void)
{
    struct bulk *b = calloc(1, sizeof(*b));
    struct sockaddr_storage addr;

    b->sent = malloc(BIG);
    b->got = malloc(BIG);
    b->stage = malloc(BIG);
    fill(b->sent, BIG, 42);
    uv_loop_init(&b->loop);
    start_guard(&b->loop, &b->guard);
    b->server.data = b->client.data = b->conn.data = b;
    ip("127.0.0.1", 0, &addr);
    HT_EQ_INT(hd_net_listen_tcp(&b->loop, &b->server, (struct sockaddr *)&addr,
                                16, bulk_accept),
              0);
    ip("127.0.0.1", local_port(&b->server), &addr);
    HT_CHECK(hd_net_port((struct sockaddr *)&addr) > 0);
    uv_tcp_init(&b->loop, &b->client);
    uv_tcp_connect(&b->conn, &b->client, (struct sockaddr *)&addr,
                   bulk_connected);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    finish(&b->loop);

    HT_CHECK(b->writes > 10);
    HT_EQ_INT(b->writes_done, b->writes);
    HT_EQ_INT(b->ngot, BIG);
    HT_EQ_MEM(b->got, b->sent, BIG);
    HT_EQ_INT(b->close_cbs, 1);
    free(b->sent);
    free(b->got);
    free(b->stage);
    free(b);
}

/* ---- a peer that never reads ---- */

struct slow {
    uv_loop_t loop;
    uv_tcp_t server, accepted, client;
    uv_connect_t conn;
    uv_timer_t guard;
    size_t queued;
    int writes, ok, canceled, other;
    uint8_t chunk[65536];
};

static void slow_written(uv_stream_t *s, int status)
{
    struct slow *w = s->data;

    if (status == 0)
        w->ok++;
    else if (status == UV_ECANCELED)
        w->canceled++;
    else
        w->other++;
}

static void slow_accept(uv_stream_t *server, int status)
{
    struct slow *w = server->data;
    uv_stream_t *s = (uv_stream_t *)&w->accepted;

    HT_EQ_INT(status, 0);
    uv_tcp_init(&w->loop, &w->accepted);
    w->accepted.data = w;
    HT_EQ_INT(uv_accept(server, s), 0);
    /* The documented pattern: write, check the backlog, close. */
    while (w->queued < (64u << 20)) {
        HT_EQ_INT(hd_net_write(s, w->chunk, sizeof(w->chunk), slow_written), 0);
        w->writes++;
        w->queued += sizeof(w->chunk);
        if (hd_net_backlogged(s, 256 << 10))
            break;
    }
    HT_CHECK(hd_net_backlogged(s, 256 << 10));
    hd_net_close((uv_handle_t *)s, NULL);
    /* writing to a closing stream is refused, not queued */
    HT_EQ_INT(hd_net_write(s, w->chunk, 1, slow_written), UV_EPIPE);
    uv_walk(&w->loop, close_one, NULL);
}

static void slow_peer_backlog(void)
{
    struct slow *w = calloc(1, sizeof(*w));
    struct sockaddr_storage addr;

    uv_loop_init(&w->loop);
    start_guard(&w->loop, &w->guard);
    w->server.data = w;
    ip("127.0.0.1", 0, &addr);
    HT_EQ_INT(hd_net_listen_tcp(&w->loop, &w->server, (struct sockaddr *)&addr,
                                0, slow_accept),
              0);
    ip("127.0.0.1", local_port(&w->server), &addr);
    uv_tcp_init(&w->loop, &w->client);
    uv_tcp_connect(&w->conn, &w->client, (struct sockaddr *)&addr,
                   any_connected);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    finish(&w->loop);

    HT_CHECK(w->queued < (64u << 20)); /* caught well before 64 MB */
    HT_EQ_INT(w->ok + w->canceled + w->other, w->writes);
    HT_CHECK(w->canceled > 0);
    HT_EQ_INT(w->other, 0);
    free(w);
}

/* ---- UDP ---- */

#define DGRAMS 20

struct dgram {
    uv_loop_t loop;
    uv_udp_t a, b;
    uv_timer_t guard;
    int a_port, received, replies;
    bool v4_from_dual; /* b is dual-stack, a is IPv4 */
    char buf[2048];
};

static void dgram_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct dgram *d = h->data;

    buf->base = d->buf;
    buf->len = sizeof(d->buf);
}

/* The test's own v4-mapped -> v4 conversion, independent of net.c. */
static void unmap(const struct sockaddr *in, struct sockaddr_storage *out)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)in;
    struct sockaddr_in *s4 = (struct sockaddr_in *)out;

    memset(out, 0, sizeof(*out));
    if (in->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
        s4->sin_family = AF_INET;
        s4->sin_port = s6->sin6_port;
        memcpy(&s4->sin_addr, s6->sin6_addr.s6_addr + 12, 4);
    } else {
        memcpy(out, in,
               in->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                         : sizeof(struct sockaddr_in));
    }
}

/* b receives the numbered datagrams and answers each with "ack". */
static void b_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                   const struct sockaddr *from, unsigned flags)
{
    struct dgram *d = h->data;
    struct sockaddr_storage to;
    uint8_t want[1000];

    if (nread == 0 && from == NULL)
        return;
    HT_EQ_INT(nread, sizeof(want));
    HT_CHECK(from != NULL);
    if (nread != sizeof(want) || from == NULL)
        return;
    if (d->v4_from_dual)
        HT_EQ_INT(from->sa_family, AF_INET6); /* ::ffff:127.0.0.1 */
    unmap(from, &to);
    HT_EQ_INT(to.ss_family, AF_INET);
    HT_EQ_INT(hd_net_port((struct sockaddr *)&to), d->a_port);
    fill(want, sizeof(want), (uint32_t)(uint8_t)buf->base[0]);
    HT_EQ_MEM(buf->base + 1, want + 1, sizeof(want) - 1);
    d->received++;
    HT_EQ_INT(
        hd_net_udp_send(h, (struct sockaddr *)&to, (const uint8_t *)"ack", 3),
        0);
}

static void a_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                   const struct sockaddr *from, unsigned flags)
{
    struct dgram *d = h->data;

    if (nread == 0 && from == NULL)
        return;
    HT_EQ_INT(nread, 3);
    if (nread == 3)
        HT_EQ_MEM(buf->base, "ack", 3);
    if (++d->replies == DGRAMS)
        uv_walk(&d->loop, close_one, NULL);
}

static void udp_exchange(const char *a_ip, const char *b_ip)
{
    struct dgram *d = calloc(1, sizeof(*d));
    struct sockaddr_storage addr;
    uint8_t msg[1000];

    uv_loop_init(&d->loop);
    start_guard(&d->loop, &d->guard);
    d->a.data = d->b.data = d;
    d->v4_from_dual = strchr(b_ip, ':') != NULL;
    ip(a_ip, 0, &addr);
    HT_EQ_INT(hd_net_bind_udp(&d->loop, &d->a, (struct sockaddr *)&addr, 0), 0);
    ip(b_ip, 0, &addr);
    HT_EQ_INT(hd_net_bind_udp(&d->loop, &d->b, (struct sockaddr *)&addr, 0), 0);
    d->a_port = local_port(&d->a);
    HT_CHECK(d->a_port > 0);
    uv_udp_recv_start(&d->a, dgram_alloc, a_recv);
    uv_udp_recv_start(&d->b, dgram_alloc, b_recv);
    ip("127.0.0.1", local_port(&d->b), &addr);
    for (int i = 0; i < DGRAMS; i++) {
        fill(msg, sizeof(msg), (uint32_t)i);
        msg[0] = (uint8_t)i;
        HT_EQ_INT(
            hd_net_udp_send(&d->a, (struct sockaddr *)&addr, msg, sizeof(msg)),
            0);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    finish(&d->loop);
    HT_EQ_INT(d->received, DGRAMS);
    HT_EQ_INT(d->replies, DGRAMS);
    free(d);
}

static void udp_loopback(void)
{
    udp_exchange("127.0.0.1", "127.0.0.1");
}

/* ---- dual stack ---- */

static bool have_ipv6_loopback(void)
{
    struct sockaddr_in6 a;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    bool ok;

    if (fd < 0)
        return false;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

struct dual {
    uv_loop_t loop;
    uv_tcp_t server, accepted, client;
    uv_connect_t conn;
    uv_timer_t guard;
    struct sockaddr_storage peer;
    int accepts;
};

static void dual_accept(uv_stream_t *server, int status)
{
    struct dual *d = server->data;

    HT_EQ_INT(status, 0);
    uv_tcp_init(&d->loop, &d->accepted);
    HT_EQ_INT(uv_accept(server, (uv_stream_t *)&d->accepted), 0);
    HT_EQ_INT(hd_net_peer_addr(&d->accepted, &d->peer), 0);
    d->accepts++;
    uv_walk(&d->loop, close_one, NULL);
}

/* Listen on "::", connect from client_ip; check the peer as reported. */
static void dual_one(const char *client_ip, int want_family)
{
    struct dual *d = calloc(1, sizeof(*d));
    struct sockaddr_storage addr, client_local;
    char text[64] = "";
    int port;

    uv_loop_init(&d->loop);
    start_guard(&d->loop, &d->guard);
    d->server.data = d;
    ip("::", 0, &addr);
    HT_EQ_INT(hd_net_listen_tcp(&d->loop, &d->server, (struct sockaddr *)&addr,
                                16, dual_accept),
              0);
    port = local_port(&d->server);
    HT_CHECK(port > 0);
    ip(client_ip, port, &addr);
    uv_tcp_init(&d->loop, &d->client);
    HT_EQ_INT(uv_tcp_connect(&d->conn, &d->client, (struct sockaddr *)&addr,
                             any_connected),
              0);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    HT_EQ_INT(d->accepts, 1);
    HT_EQ_INT(d->peer.ss_family, want_family);
    if (want_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&d->peer, text, sizeof(text));
    else
        uv_ip6_name((struct sockaddr_in6 *)&d->peer, text, sizeof(text));
    HT_EQ_STR(text, client_ip);
    /* the client's own port, seen from both ends */
    if (hd_net_local_addr((uv_handle_t *)&d->client, &client_local) == 0)
        HT_EQ_INT(hd_net_port((struct sockaddr *)&d->peer),
                  hd_net_port((struct sockaddr *)&client_local));
    finish(&d->loop);
    free(d);
}

static void dual_stack_tcp(void)
{
    dual_one("127.0.0.1", AF_INET);
    dual_one("::1", AF_INET6);
}

static void dual_stack_udp(void)
{
    udp_exchange("127.0.0.1", "::");
}

/* ---- errors ---- */

static void no_accept(uv_stream_t *server, int status)
{
    ht_fail(__FILE__, __LINE__, "unexpected connection");
}

static void address_in_use(void)
{
    uv_loop_t loop;
    uv_tcp_t t1, t2;
    uv_udp_t u1, u2;
    struct sockaddr_storage addr;
    int r;

    uv_loop_init(&loop);
    ip("127.0.0.1", 0, &addr);
    HT_EQ_INT(
        hd_net_listen_tcp(&loop, &t1, (struct sockaddr *)&addr, 0, no_accept),
        0);
    ip("127.0.0.1", local_port(&t1), &addr);
    r = hd_net_listen_tcp(&loop, &t2, (struct sockaddr *)&addr, 0, no_accept);
    HT_EQ_INT(r, UV_EADDRINUSE);
    HT_EQ_STR(hd_strerror(r), "address already in use");

    ip("127.0.0.1", 0, &addr);
    HT_EQ_INT(hd_net_bind_udp(&loop, &u1, (struct sockaddr *)&addr, 0), 0);
    ip("127.0.0.1", local_port(&u1), &addr);
    r = hd_net_bind_udp(&loop, &u2, (struct sockaddr *)&addr, 0);
    HT_EQ_INT(r, UV_EADDRINUSE);
    HT_EQ_STR(hd_strerror(r), "address already in use");

    /* a failed handle is already closing: hd_net_close is a no-op on it */
    hd_net_close((uv_handle_t *)&t2, NULL);
    hd_net_close((uv_handle_t *)&u2, NULL);
    finish(&loop);
}

static void local_addr_types(void)
{
    uv_loop_t loop;
    uv_timer_t t;
    struct sockaddr_storage ss;

    uv_loop_init(&loop);
    uv_timer_init(&loop, &t);
    memset(&ss, 0xaa, sizeof(ss));
    HT_EQ_INT(hd_net_local_addr((uv_handle_t *)&t, &ss), UV_EINVAL);
    HT_EQ_INT(ss.ss_family, 0); /* cleared on entry */
    finish(&loop);
}

int main(void)
{
    ht_init("net");
    HT_RUN(tcp_one_megabyte);
    HT_RUN(slow_peer_backlog);
    HT_RUN(udp_loopback);
    if (have_ipv6_loopback()) {
        HT_RUN(dual_stack_tcp);
        HT_RUN(dual_stack_udp);
    } else {
        ht_skip("dual_stack_tcp", "no IPv6 loopback on this machine");
        ht_skip("dual_stack_udp", "no IPv6 loopback on this machine");
    }
    HT_RUN(address_in_use);
    HT_RUN(local_addr_types);
    return ht_finish();
}

/*
 * Unit tests for server/ws: the RFC 6455 handshake vector, client frames
 * built and masked by hand, the server's frames parsed by hand.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "server/ws.h"
#include "tests/harness.h"

#define OUT_MAX (256 * 1024)

struct conn {
    uint8_t *out; /* everything on_write produced */
    size_t out_len;
    size_t out_read; /* how far the test has parsed it */
    int msgs;
    uint8_t *last;
    size_t last_len;
    int closed;
    int reason;
    int fail_writes; /* on_write returns -EPIPE when set */
    struct ws *echo; /* on_message sends every message back on it */
    int echo_r;
};

static int on_write(void *ud, const uint8_t *data, size_t n)
{
    struct conn *c = ud;

    if (c->fail_writes)
        return -EPIPE;
    if (c->out_len + n > OUT_MAX)
        return -ENOSPC;
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    return 0;
}

static void on_message(void *ud, const uint8_t *data, size_t n)
{
    struct conn *c = ud;

    free(c->last);
    c->last = malloc(n ? n : 1);
    memcpy(c->last, data, n);
    c->last_len = n;
    c->msgs++;
    if (c->echo != NULL)
        c->echo_r = ws_send_binary(c->echo, data, n);
}

static void on_close(void *ud, int reason)
{
    struct conn *c = ud;

    c->closed++;
    c->reason = reason;
}

static const struct ws_callbacks cbs = { on_write, on_message, on_close };

static const char rfc_request[] =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

static struct ws *conn_new(struct conn *c, size_t max_message)
{
    struct ws_config cfg = { max_message, "test" };
    struct ws *ws = NULL;

    memset(c, 0, sizeof(*c));
    c->out = malloc(OUT_MAX);
    HT_EQ_INT(ws_new(&cfg, &cbs, c, &ws), 0);
    return ws;
}

static void conn_free(struct conn *c, struct ws *ws)
{
    ws_free(ws);
    free(c->out);
    free(c->last);
}

/* A connection that has completed the RFC example handshake. */
static struct ws *open_conn(struct conn *c, size_t max_message)
{
    struct ws *ws = conn_new(c, max_message);

    if (ws == NULL)
        return NULL;
    HT_EQ_INT(
        ws_feed(ws, (const uint8_t *)rfc_request, sizeof(rfc_request) - 1), 0);
    HT_CHECK(ws_is_open(ws));
    c->out_read = c->out_len; /* skip the 101 response */
    return ws;
}

/* Build one client frame, masked with mask. */
static size_t frame(uint8_t *buf, int fin, int op, const void *payload,
                    size_t n, const uint8_t mask[4])
{
    size_t h = 0;

    buf[h++] = (uint8_t)((fin ? 0x80 : 0) | op);
    if (n < 126) {
        buf[h++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        buf[h++] = 0x80 | 126;
        buf[h++] = (uint8_t)(n >> 8);
        buf[h++] = (uint8_t)n;
    } else {
        buf[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            buf[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memcpy(buf + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        buf[h + i] = ((const uint8_t *)payload)[i] ^ mask[i & 3];
    return h + n;
}

static const uint8_t mask1[4] = { 0x37, 0xfa, 0x21, 0x3d };

/*
 * Parse the next server frame in c->out: must be unmasked and final.
 * Returns the opcode (or -1) and points *payload and *n at its payload.
 */
static int next_frame(struct conn *c, const uint8_t **payload, size_t *n)
{
    const uint8_t *p = c->out + c->out_read;
    size_t avail = c->out_len - c->out_read, h = 2, len;

    *payload = NULL;
    *n = 0;
    if (avail < 2 || (p[1] & 0x80) != 0 || (p[0] & 0x80) == 0)
        return -1;
    len = p[1] & 0x7f;
    if (len == 126) {
        if (avail < 4)
            return -1;
        len = (size_t)p[2] << 8 | p[3];
        h = 4;
    } else if (len == 127) {
        if (avail < 10)
            return -1;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        h = 10;
    }
    if (avail < h + len)
        return -1;
    *payload = p + h;
    *n = len;
    c->out_read += h + len;
    return p[0] & 0x0f;
}

static void feed_bytewise(struct ws *ws, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        HT_EQ_INT(ws_feed(ws, p + i, 1), 0);
}

/* ---- cases ------------------------------------------------------------ */

static void accept_key_rfc_vector(void)
{
    char out[32];

    HT_EQ_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out, sizeof(out)), 0);
    HT_EQ_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    HT_EQ_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out, 10), -ENOSPC);
}

static void handshake_bytewise(void)
{
    struct conn c;
    struct ws *ws = conn_new(&c, 0);
    const char *resp = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                       "\r\n\r\n";

    if (ws == NULL)
        return;
    HT_EQ_INT(ws_send_binary(ws, (const uint8_t *)"x", 1), -ENOTCONN);
    feed_bytewise(ws, (const uint8_t *)rfc_request, sizeof(rfc_request) - 2);
    HT_CHECK(!ws_is_open(ws));
    HT_EQ_INT(c.out_len, 0);
    HT_EQ_INT(ws_feed(ws, (const uint8_t *)"\n", 1), 0);
    HT_CHECK(ws_is_open(ws));
    HT_EQ_STR(ws_path(ws), "/chat");
    HT_EQ_INT(c.out_len, strlen(resp));
    HT_EQ_MEM(c.out, resp, strlen(resp));
    HT_CHECK(ws_forwarded_ip(ws) == NULL);
    HT_EQ_INT(c.closed, 0);
    conn_free(&c, ws);
}

static void masked_messages(void)
{
    struct conn c;
    struct ws *ws = conn_new(&c, 128 * 1024);
    uint8_t *buf = malloc(OUT_MAX), *big = malloc(100000);
    size_t n;

    if (ws == NULL || buf == NULL || big == NULL)
        goto out;
    /* handshake and first frame in one read, as a browser may send */
    n = sizeof(rfc_request) - 1;
    memcpy(buf, rfc_request, n);
    n += frame(buf + n, 1, 2, "hello", 5, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), 0);
    HT_EQ_INT(c.msgs, 1);
    HT_EQ_INT(c.last_len, 5);
    HT_EQ_MEM(c.last, "hello", 5);

    /* 16-bit and 64-bit lengths */
    for (size_t i = 0; i < 100000; i++)
        big[i] = (uint8_t)(i * 31 + 7);
    n = frame(buf, 1, 2, big, 300, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), 0);
    HT_EQ_INT(c.msgs, 2);
    HT_EQ_INT(c.last_len, 300);
    HT_EQ_MEM(c.last, big, 300);
    n = frame(buf, 1, 2, big, 100000, mask1);
    HT_EQ_INT(ws_feed(ws, buf, 5000), 0); /* in pieces */
    HT_EQ_INT(ws_feed(ws, buf + 5000, n - 5000), 0);
    HT_EQ_INT(c.msgs, 3);
    HT_EQ_INT(c.last_len, 100000);
    HT_EQ_MEM(c.last, big, 100000);

    /* text is not for us: ignored, connection stays */
    n = frame(buf, 1, 1, "text", 4, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), 0);
    HT_EQ_INT(c.msgs, 3);
    HT_EQ_INT(c.closed, 0);
out:
    free(buf);
    free(big);
    conn_free(&c, ws);
}

static void server_frames(void)
{
    struct conn c;
    struct ws *ws = open_conn(&c, 0);
    uint8_t msg[300];
    const uint8_t *p;
    size_t n;

    if (ws == NULL)
        return;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    HT_EQ_INT(ws_send_binary(ws, msg, 10), 0);
    HT_EQ_INT(ws_send_binary(ws, msg, sizeof(msg)), 0);
    HT_EQ_INT(next_frame(&c, &p, &n), 2);
    HT_EQ_INT(n, 10);
    HT_EQ_MEM(p, msg, 10);
    HT_EQ_INT(next_frame(&c, &p, &n), 2);
    HT_EQ_INT(n, 300);
    HT_EQ_MEM(p, msg, 300);
    HT_EQ_INT(c.out_read, c.out_len);
    conn_free(&c, ws);
}

static void echo_from_callback(void)
{
    struct conn c;
    struct ws *ws = open_conn(&c, 0);
    uint8_t buf[64];
    const uint8_t *p;
    size_t n = 0;

    if (ws == NULL)
        return;
    c.echo = ws;
    c.echo_r = 1;
    n += frame(buf + n, 1, 2, "one", 3, mask1);
    n += frame(buf + n, 1, 2, "two", 3, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), 0);
    HT_EQ_INT(c.echo_r, 0);
    HT_EQ_INT(next_frame(&c, &p, &n), 2);
    HT_CHECK(n == 3 && memcmp(p, "one", 3) == 0);
    HT_EQ_INT(next_frame(&c, &p, &n), 2);
    HT_CHECK(n == 3 && memcmp(p, "two", 3) == 0);
    conn_free(&c, ws);
}

static void fragmented_with_ping(void)
{
    struct conn c;
    struct ws *ws = open_conn(&c, 0);
    uint8_t buf[256];
    const uint8_t *p;
    size_t n = 0;

    if (ws == NULL)
        return;
    n += frame(buf + n, 0, 2, "abc", 3, mask1);
    n += frame(buf + n, 1, 9, "p!", 2, mask1); /* control between fragments */
    n += frame(buf + n, 0, 0, "def", 3, mask1);
    n += frame(buf + n, 1, 0, "gh", 2, mask1);
    feed_bytewise(ws, buf, n);
    HT_EQ_INT(c.msgs, 1);
    HT_EQ_INT(c.last_len, 8);
    HT_EQ_MEM(c.last, "abcdefgh", 8);
    HT_EQ_INT(next_frame(&c, &p, &n), 0xa); /* the pong */
    HT_EQ_INT(n, 2);
    HT_EQ_MEM(p, "p!", 2);
    HT_EQ_INT(c.closed, 0);
    conn_free(&c, ws);
}

static void ping_pong(void)
{
    struct conn c;
    struct ws *ws = open_conn(&c, 0);
    uint8_t buf[64];
    const uint8_t *p;
    size_t n;

    if (ws == NULL)
        return;
    n = frame(buf, 1, 9, "xyz", 3, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), 0);
    HT_EQ_INT(next_frame(&c, &p, &n), 0xa);
    HT_EQ_INT(n, 3);
    HT_EQ_MEM(p, "xyz", 3);
    /* an unsolicited pong needs no answer */
    n = frame(buf, 1, 0xa, "", 0, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), 0);
    HT_EQ_INT(c.out_read, c.out_len);
    HT_EQ_INT(c.msgs, 0);
    conn_free(&c, ws);
}

static void close_by_client(void)
{
    struct conn c;
    struct ws *ws = open_conn(&c, 0);
    uint8_t buf[64];
    const uint8_t *p;
    size_t n;

    if (ws == NULL)
        return;
    n = frame(buf, 1, 8,
              "\x03\xe8"
              "bye",
              5, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), 0);
    HT_EQ_INT(c.closed, 1);
    HT_EQ_INT(c.reason, 0);
    HT_EQ_INT(next_frame(&c, &p, &n), 8); /* the echoed close */
    HT_CHECK(n >= 2 && p[0] == 0x03 && p[1] == 0xe8);
    n = frame(buf, 1, 2, "late", 4, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), -EPIPE);
    HT_EQ_INT(ws_send_binary(ws, buf, 1), -EPIPE);
    HT_EQ_INT(c.msgs, 0);
    HT_EQ_INT(c.closed, 1);
    conn_free(&c, ws);
}

static void close_by_server(void)
{
    struct conn c;
    struct ws *ws = open_conn(&c, 0);
    uint8_t buf[64];
    const uint8_t *p;
    size_t n;

    if (ws == NULL)
        return;
    HT_EQ_INT(ws_close(ws, 1001), 0);
    HT_EQ_INT(next_frame(&c, &p, &n), 8);
    HT_CHECK(n == 2 && p[0] == 0x03 && p[1] == 0xe9);
    HT_EQ_INT(ws_send_binary(ws, buf, 1), -EPIPE);
    HT_EQ_INT(ws_close(ws, 1000), -EPIPE);
    HT_EQ_INT(c.closed, 0);
    n = frame(buf, 1, 8, "\x03\xe9", 2, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), 0);
    HT_EQ_INT(c.closed, 1);
    HT_EQ_INT(c.reason, 0);
    HT_EQ_INT(c.out_read, c.out_len); /* nothing more was sent */
    conn_free(&c, ws);
}

static void oversize_rejected(void)
{
    struct conn c;
    struct ws *ws = open_conn(&c, 0);
    uint8_t *buf = malloc(2 * WS_RENDEZVOUS_MSG_MAX), *msg = calloc(1, 70000);
    const uint8_t *p;
    size_t n;

    if (ws == NULL || buf == NULL || msg == NULL)
        goto out;
    /* exactly the limit passes */
    n = frame(buf, 1, 2, msg, WS_RENDEZVOUS_MSG_MAX, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), 0);
    HT_EQ_INT(c.msgs, 1);
    HT_EQ_INT(c.last_len, WS_RENDEZVOUS_MSG_MAX);
    /* one more byte is refused as soon as the frame starts (wslay
     * decides with the header and the first payload byte in hand) */
    n = frame(buf, 1, 2, msg, WS_RENDEZVOUS_MSG_MAX + 1, mask1);
    HT_EQ_INT(ws_feed(ws, buf, 15), HD_ETOOBIG);
    HT_EQ_INT(c.closed, 1);
    HT_EQ_INT(c.reason, HD_ETOOBIG);
    HT_EQ_INT(next_frame(&c, &p, &n), 8);
    HT_CHECK(n >= 2 && p[0] == 0x03 && p[1] == 0xf1); /* 1009 */
    HT_EQ_INT(c.msgs, 1);
    conn_free(&c, ws);

    /* the limit is on the message, not the frame */
    ws = open_conn(&c, 0);
    if (ws == NULL)
        goto out;
    n = frame(buf, 0, 2, msg, 40000, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), 0);
    n = frame(buf, 1, 0, msg, 40000, mask1);
    HT_EQ_INT(ws_feed(ws, buf, n), HD_ETOOBIG);
    HT_EQ_INT(c.reason, HD_ETOOBIG);
    HT_EQ_INT(c.msgs, 0);
out:
    free(buf);
    free(msg);
    conn_free(&c, ws);
}

/* The RFC request padded with an X-Pad header to exactly total bytes. */
static size_t padded_request(char *req, size_t total)
{
    size_t n = sizeof(rfc_request) - 5; /* without the closing CRLFs */

    memcpy(req, rfc_request, n);
    n += (size_t)sprintf(req + n, "\r\nX-Pad: ");
    memset(req + n, 'a', total - 4 - n);
    memcpy(req + total - 4, "\r\n\r\n", 4);
    return total;
}

static void header_limit(void)
{
    struct conn c;
    struct ws *ws = conn_new(&c, 0);
    char *req = malloc(WS_HEADER_MAX + 100);
    size_t n;

    if (ws == NULL || req == NULL)
        goto out;
    /* exactly WS_HEADER_MAX bytes, terminator included: accepted */
    n = padded_request(req, WS_HEADER_MAX);
    HT_EQ_INT(ws_feed(ws, (const uint8_t *)req, n), 0);
    HT_CHECK(ws_is_open(ws));
    conn_free(&c, ws);

    /* one byte more: 431 and closed once the limit is reached */
    ws = conn_new(&c, 0);
    if (ws == NULL)
        goto out;
    n = padded_request(req, WS_HEADER_MAX + 1);
    HT_EQ_INT(ws_feed(ws, (const uint8_t *)req, 100), 0);
    HT_EQ_INT(ws_feed(ws, (const uint8_t *)req + 100, n - 100), HD_ETOOBIG);
    HT_EQ_INT(c.closed, 1);
    HT_EQ_INT(c.reason, HD_ETOOBIG);
    HT_CHECK(c.out_len > 13 && memcmp(c.out, "HTTP/1.1 431 ", 13) == 0);
    HT_CHECK(!ws_is_open(ws));
out:
    free(req);
    conn_free(&c, ws);
}

static int try_request(const char *req, const char *status)
{
    struct conn c;
    struct ws *ws = conn_new(&c, 0);
    int r, ok;

    if (ws == NULL)
        return 0;
    r = ws_feed(ws, (const uint8_t *)req, strlen(req));
    ok = r == HD_EPROTO && c.closed == 1 && c.reason == HD_EPROTO &&
         c.out_len > strlen(status) &&
         memcmp(c.out, status, strlen(status)) == 0 && !ws_is_open(ws);
    conn_free(&c, ws);
    return ok;
}

static void bad_requests(void)
{
    struct conn c;
    struct ws *ws;
    uint8_t buf[64];
    const uint8_t *p;
    size_t n;

    HT_CHECK(try_request("POST / HTTP/1.1\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: "
                         "dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         "HTTP/1.1 405 "));
    HT_CHECK(try_request("GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         "HTTP/1.1 400 "));
    HT_CHECK(try_request("GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: "
                         "c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
                         "HTTP/1.1 400 "));
    HT_CHECK(try_request("GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: "
                         "dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 8\r\n\r\n",
                         "HTTP/1.1 426 "));
    HT_CHECK(try_request("GET / HTTP/1.1\r\nConnection: keep-alive\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         "HTTP/1.1 400 "));
    HT_CHECK(try_request("GET /\r\n\r\n", "HTTP/1.1 400 "));
    HT_CHECK(
        try_request("GET / HTTP/1.1\r\n folded: x\r\n\r\n", "HTTP/1.1 400 "));
    /* a sanity check that try_request can say no */
    HT_CHECK(!try_request(rfc_request, "HTTP/1.1 400 "));

    /* an unmasked client frame is a protocol error: close 1002 */
    ws = open_conn(&c, 0);
    if (ws == NULL)
        return;
    buf[0] = 0x82;
    buf[1] = 0x02;
    buf[2] = 'h';
    buf[3] = 'i';
    HT_EQ_INT(ws_feed(ws, buf, 4), HD_EPROTO);
    HT_EQ_INT(c.reason, HD_EPROTO);
    HT_EQ_INT(c.msgs, 0);
    HT_EQ_INT(next_frame(&c, &p, &n), 8);
    HT_CHECK(n >= 2 && p[0] == 0x03 && p[1] == 0xea); /* 1002 */
    conn_free(&c, ws);
}

static void sa4(struct sockaddr_in *s, const char *ip)
{
    memset(s, 0, sizeof(*s));
    s->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &s->sin_addr);
}

static struct ws *open_with(struct conn *c, const char *extra)
{
    char req[1024];
    struct ws *ws = conn_new(c, 0);

    snprintf(req, sizeof(req),
             "GET /ws/id HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n"
             "Connection: keep-alive, Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n%s"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             extra);
    if (ws != NULL)
        HT_EQ_INT(ws_feed(ws, (const uint8_t *)req, strlen(req)), 0);
    return ws;
}

static void forwarded_only_from_trusted_proxy(void)
{
    struct conn c;
    struct ws *ws;
    struct sockaddr_in proxy, other;
    struct sockaddr_in6 mapped;
    char ip[WS_IP_MAX];

    sa4(&proxy, "127.0.0.1");
    sa4(&other, "192.0.2.50");
    memset(&mapped, 0, sizeof(mapped));
    mapped.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr);

    /* rightmost X-Forwarded-For entry: the one the proxy appended */
    ws = open_with(&c, "X-Forwarded-For: 203.0.113.9, 198.51.100.2\r\n");
    if (ws == NULL)
        return;
    HT_EQ_STR(ws_path(ws), "/ws/id");
    HT_EQ_STR(ws_forwarded_ip(ws), "198.51.100.2");
    HT_EQ_INT(ws_client_ip(ws, (struct sockaddr *)&proxy, "127.0.0.1", ip,
                           sizeof(ip)),
              0);
    HT_EQ_STR(ip, "198.51.100.2");
    HT_EQ_INT(ws_client_ip(ws, (struct sockaddr *)&mapped, "127.0.0.1", ip,
                           sizeof(ip)),
              0);
    HT_EQ_STR(ip, "198.51.100.2");
    /* not from the proxy, or no proxy configured: the TCP peer */
    HT_EQ_INT(ws_client_ip(ws, (struct sockaddr *)&other, "127.0.0.1", ip,
                           sizeof(ip)),
              0);
    HT_EQ_STR(ip, "192.0.2.50");
    HT_EQ_INT(ws_client_ip(ws, (struct sockaddr *)&proxy, NULL, ip, sizeof(ip)),
              0);
    HT_EQ_STR(ip, "127.0.0.1");
    HT_EQ_INT(ws_client_ip(ws, (struct sockaddr *)&proxy, "", ip, sizeof(ip)),
              0);
    HT_EQ_STR(ip, "127.0.0.1");
    HT_EQ_INT(ws_client_ip(ws, (struct sockaddr *)&proxy, "127.0.0.1", ip, 4),
              -ENOSPC);
    conn_free(&c, ws);

    /* X-Real-IP wins; IPv6 forms are canonicalised */
    ws = open_with(&c, "X-Forwarded-For: 10.9.9.9\r\n"
                       "X-Real-IP:  [2001:DB8:0:0::7] \r\n");
    if (ws == NULL)
        return;
    HT_EQ_STR(ws_forwarded_ip(ws), "2001:db8::7");
    HT_EQ_INT(ws_client_ip(ws, (struct sockaddr *)&proxy, "::ffff:127.0.0.1",
                           ip, sizeof(ip)),
              0);
    HT_EQ_STR(ip, "2001:db8::7");
    conn_free(&c, ws);

    /* garbage is no address */
    ws = open_with(&c, "X-Real-IP: evil\r\nX-Forwarded-For: 1.2.3.4:80\r\n");
    if (ws == NULL)
        return;
    HT_EQ_STR(ws_forwarded_ip(ws), "1.2.3.4");
    conn_free(&c, ws);
    ws = open_with(&c, "X-Forwarded-For: 1.2.3.4, not-an-ip\r\n");
    if (ws == NULL)
        return;
    HT_CHECK(ws_forwarded_ip(ws) == NULL);
    conn_free(&c, ws);

    HT_CHECK(ws_proxy_trusted((struct sockaddr *)&proxy, "127.0.0.1"));
    HT_CHECK(!ws_proxy_trusted((struct sockaddr *)&other, "127.0.0.1"));
    HT_CHECK(!ws_proxy_trusted((struct sockaddr *)&proxy, "not an ip"));
    HT_CHECK(!ws_proxy_trusted((struct sockaddr *)&proxy, NULL));
}

static void write_failure_closes(void)
{
    struct conn c;
    struct ws *ws = open_conn(&c, 0);

    if (ws == NULL)
        return;
    c.fail_writes = 1;
    HT_EQ_INT(ws_send_binary(ws, (const uint8_t *)"abc", 3), -EPIPE);
    HT_EQ_INT(c.closed, 1);
    HT_EQ_INT(c.reason, -EPIPE);
    HT_EQ_INT(ws_send_binary(ws, (const uint8_t *)"abc", 3), -EPIPE);
    HT_EQ_INT(c.closed, 1);
    conn_free(&c, ws);
}

int main(void)
{
    ht_init("srv_ws");
    HT_RUN(accept_key_rfc_vector);
    HT_RUN(handshake_bytewise);
    HT_RUN(masked_messages);
    HT_RUN(server_frames);
    HT_RUN(echo_from_callback);
    HT_RUN(fragmented_with_ping);
    HT_RUN(ping_pong);
    HT_RUN(close_by_client);
    HT_RUN(close_by_server);
    HT_RUN(oversize_rejected);
    HT_RUN(header_limit);
    HT_RUN(bad_requests);
    HT_RUN(forwarded_only_from_trusted_proxy);
    HT_RUN(write_failure_closes);
    return ht_finish();
}

/*
 * The relay's WebSocket transport (server/ws.c on the connection's
 * uv_tcp_t): the first message is the relay request; after pairing each
 * message is kept in the side's buffer as a TCP frame (header + message),
 * complete ones only, so that a TCP partner takes the buffer raw.
 */
#include "server/relay_int.h"

/* ---- WebSocket transport ---- */

static void ws_write_done(uv_stream_t *s, int status)
{
    struct relay_conn *c = s->data;

    c->wq--;
    if (c->wq == 0 && c->peer && c->peer->wpending) {
        relay_conn_write_done(c->peer, status == UV_ECANCELED ? 0 : status);
    } else if (status < 0 && status != UV_ECANCELED && !c->closing) {
        hd_debug(MOD, "write to %s: %s", c->name, hd_strerror(status));
        if (c->pair)
            relay_pair_close(c->pair, "write error");
        else
            relay_conn_close(c);
    }
}

/* ws.c hands us bytes for the peer: to the kernel now, or queued (copied). */
int relay_ws_on_write(void *ud, const uint8_t *data, size_t n)
{
    struct relay_conn *c = ud;
    uv_buf_t b;
    int r = 0, e;

    if (c->closing)
        return -EPIPE;
    if (c->wq == 0) {
        b = uv_buf_init((char *)data, (unsigned)n);
        r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r == UV_EAGAIN)
            r = 0;
        if (r < 0 || (size_t)r == n)
            return r < 0 ? r : 0;
    }
    if ((e = hd_net_write((uv_stream_t *)&c->tcp, data + r, n - (size_t)r,
                          ws_write_done)) != 0)
        return e;
    c->wq++;
    return 0;
}

/*
 * A WebSocket peer's first message: its bare RequestRelay.  Behind the
 * trusted proxy the client's own address replaces the proxy's first (for
 * the lists and the log lines).
 */
static void ws_hello(struct relay_conn *c, const uint8_t *data, size_t n)
{
    struct relay *r = c->relay;
    struct sockaddr_storage ss;
    char ip[INET6_ADDRSTRLEN];
    uint8_t bin[16];
    int len = sizeof(ss), why;

    memset(&ss, 0, sizeof(ss));
    if (r->trusted_proxy && ws_forwarded_ip(c->ws) &&
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 &&
        ws_client_ip(c->ws, (struct sockaddr *)&ss, r->trusted_proxy, ip,
                     sizeof(ip)) == 0 &&
        relay_parse_ip(ip, bin) == 0) {
        memcpy(c->ip, bin, 16);
        snprintf(c->ipstr, sizeof(c->ipstr), "%s", ip);
        if (strchr(ip, ':'))
            snprintf(c->name, sizeof(c->name), "[%s]", ip);
        else
            snprintf(c->name, sizeof(c->name), "%s", ip);
        if (relay_iplist_has(&r->block, c->ip)) {
            hd_info(MOD, "blocked %s", c->ipstr);
            relay_conn_reject(c, RELAY_REJECT_BLOCKED);
            return;
        }
    }
    if ((why = relay_hello_check(c, data, n)) != 0) {
        relay_conn_reject(c, (enum relay_reject)(why - 1));
        return;
    }
    c->hello_ok = 1;
    /* the message limit stays HD_RELAY_MAX_FIRST_FRAME until paired */
}

/* Keep one relayed message, framed, at the end of c's buffer. */
static int ws_buffer_message(struct relay_conn *c, const uint8_t *data,
                             size_t n)
{
    uint8_t hdr[HD_FRAME_HDR_MAX];
    size_t hl = hd_frame_header(hdr, n), need = c->end + hl + n;
    char *nb;

    if (hl == 0 || need > WS_BUF_MAX) {
        hd_info(MOD, "%s: more than %d bytes of messages waiting", c->name,
                WS_BUF_MAX);
        return HD_ETOOBIG;
    }
    if (need > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : c->relay->cfg.buf_size;

        while (ncap < need)
            ncap *= 2;
        if (ncap > WS_BUF_MAX)
            ncap = WS_BUF_MAX;
        if (!(nb = realloc(c->buf, ncap))) {
            hd_error(MOD, "out of memory buffering %s", c->name);
            return -ENOMEM;
        }
        c->buf = nb;
        c->cap = ncap;
    }
    memcpy(c->buf + c->end, hdr, hl);
    if (n > 0) /* an empty message may come as NULL */
        memcpy(c->buf + c->end + hl, data, n);
    c->end = need;
    return 0;
}

void relay_ws_on_message(void *ud, const uint8_t *data, size_t n)
{
    struct relay_conn *c = ud;
    int r;

    if (c->closing || c->ws_ended)
        return;
    if (c->state == CONN_HELLO && !c->hello_ok) {
        ws_hello(c, data, n);
        return;
    }
    if ((r = ws_buffer_message(c, data, n)) != 0) {
        if (c->pair)
            relay_pair_close(c->pair, hd_strerror(r));
        else
            relay_conn_reject(c, RELAY_REJECT_OVERLOAD);
    }
}

/* The WebSocket ended (close handshake, bad frame, oversized message or
 * failed write): acted upon by the read callback, after the feed. */
void relay_ws_on_close(void *ud, int reason)
{
    struct relay_conn *c = ud;

    c->ws_ended = 1;
    c->ws_reason = reason;
}

static void ws_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct relay_conn *c = h->data;

    (void)hint;
    if (!c->rbuf)
        c->rbuf = malloc(WS_READ_CHUNK);
    *buf = uv_buf_init((char *)c->rbuf, c->rbuf ? WS_READ_CHUNK : 0);
}

static void ws_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct relay_conn *c = s->data;
    size_t before = c->end;

    (void)buf;
    if (nread < 0) {
        relay_conn_on_eof(c, (int)nread);
        return;
    }
    if (nread == 0 || c->ws_ended)
        return;
    ws_feed(c->ws, c->rbuf, (size_t)nread); /* errors come as on_close */
    if (c->closing)
        return;
    if (c->state == CONN_HELLO && c->hello_ok) {
        relay_hello_done(c); /* a pair forwards what followed the request */
    } else if (c->state == CONN_PAIRED && c->end > before) {
        relay_account(c, c->end - before);
        relay_forward(c);
    } else if (c->state == CONN_WAITING) {
        relay_unpaired_update(c);
        if (!c->closing)
            relay_conn_update_reading(c);
    } else if (c->state == CONN_HELLO) {
        relay_unpaired_update(c);
    }
    if (c->closing || !c->ws_ended)
        return;
    if (c->state == CONN_PAIRED || c->ws_reason == 0)
        relay_conn_on_eof(c, UV_EOF); /* ws.c logged an error reason */
    else
        relay_conn_reject(c, c->ws_reason == HD_ETOOBIG ? RELAY_REJECT_TOOBIG
                                                        : RELAY_REJECT_PROTO);
}

static int ws_send(struct relay_conn *dst, struct relay_conn *src,
                   const char *buf, size_t n)
{
    int r;

    (void)src;
    if (dst->ws_ended)
        return -EPIPE;
    r = ws_send_binary(dst->ws, (const uint8_t *)buf, n);
    return r < 0 ? r : (int)n;
}

static void ws_pause(struct relay_conn *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static int ws_resume(struct relay_conn *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, ws_alloc_cb, ws_read_cb);
}

static size_t ws_queued(const struct relay_conn *c)
{
    return c->wq; /* writes whose callback has not run yet */
}

const struct relay_transport relay_ws_transport = {
    .name = "ws",
    .message_based = 1,
    .send = ws_send,
    .pause = ws_pause,
    .resume = ws_resume,
    .close = relay_tcp_close,
    .queued = ws_queued,
};

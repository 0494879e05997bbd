/*
 * The relay's TCP transport (struct relay_transport, see relay_int.h),
 * and splice mode for a TCP <-> TCP pair: socket -> pipe -> socket with
 * splice(2), no copy through user space, driven by a uv_poll on a dup of
 * each socket.  A pair that cannot splice copies through its buffers.
 */
#include "server/relay_int.h"

static void splice_poll_cb(uv_poll_t *h, int status, int events);

/* ---- TCP transport ---- */

static void tcp_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct relay_conn *c = h->data;

    if (c->cap == 0) {
        size_t cap =
            c->state == CONN_HELLO ? HELLO_INITIAL_CAP : c->relay->cfg.buf_size;
        if ((c->buf = malloc(cap)) != NULL)
            c->cap = cap;
    }
    *buf = uv_buf_init(c->buf + c->end, (unsigned)(c->cap - c->end));
}

static void tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct relay_conn *c = s->data;

    if (nread > 0)
        relay_conn_on_read(c, (size_t)nread);
    else if (nread < 0)
        relay_conn_on_eof(c, (int)nread);
}

static void tcp_write_cb(uv_write_t *req, int status)
{
    relay_conn_write_done(req->data, status);
}

static int tcp_send(struct relay_conn *dst, struct relay_conn *src,
                    const char *buf, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)n);
    int r;

    r = uv_try_write((uv_stream_t *)&dst->tcp, &b, 1);
    if (r == UV_EAGAIN)
        r = 0;
    if (r < 0 || (size_t)r == n)
        return r;
    b = uv_buf_init((char *)buf + r, (unsigned)(n - (size_t)r));
    src->wreq.data = src;
    int e = uv_write(&src->wreq, (uv_stream_t *)&dst->tcp, &b, 1, tcp_write_cb);
    return e < 0 ? e : r;
}

static void tcp_pause(struct relay_conn *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static int tcp_resume(struct relay_conn *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc_cb, tcp_read_cb);
}

void relay_tcp_close(struct relay_conn *c)
{
    uv_close((uv_handle_t *)&c->tcp, relay_conn_handle_closed);
}

const struct relay_transport relay_tcp_transport = {
    .name = "tcp",
    .message_based = 0,
    .send = tcp_send,
    .pause = tcp_pause,
    .resume = tcp_resume,
    .close = relay_tcp_close,
};

/* ---- splice mode (TCP <-> TCP): socket -> pipe -> socket, no copy ---- */

/*
 * Give c a pipe and a poll handle on a dup of its socket (libuv keeps the
 * original fd, idle, for the bytes read before pairing).  Returns 0 or a
 * negative errno; the pair then copies instead.
 */
int relay_splice_setup(struct relay_conn *c)
{
    struct relay *r = c->relay;
    uv_os_fd_t fd;
    int ret, sz;

    if ((ret = uv_fileno((uv_handle_t *)&c->tcp, &fd)) != 0)
        return ret;
    if ((c->sfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0 ||
        pipe2(c->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        ret = -errno;
        goto fail;
    }
    sz = r->cfg.pipe_size > (1u << 20) ? (1 << 20) : (int)r->cfg.pipe_size;
    fcntl(c->pipe[1], F_SETPIPE_SZ, sz);
    if ((sz = fcntl(c->pipe[1], F_GETPIPE_SZ)) <= 0) {
        ret = -errno;
        goto fail;
    }
    c->pipe_cap = (size_t)sz;
    if ((ret = uv_poll_init(r->loop, &c->poll, c->sfd)) != 0)
        goto fail;
    c->poll.data = c;
    c->poll_init = 1;
    c->open++;
    return 0;
fail:
    hd_debug(MOD, "%s: no splice (%s), copying", c->name, hd_strerror(ret));
    relay_splice_close_fds(c);
    return ret;
}

/* Move c's pipe into its peer's socket.  Returns 0, or -1 after closing. */
static int splice_drain(struct relay_conn *c)
{
    while (c->piped) {
        ssize_t n = splice(c->pipe[0], NULL, c->peer->sfd, NULL, c->piped,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            c->piped -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else if (!(n < 0 && errno == EINTR)) {
            hd_debug(MOD, "write to %s: %s", c->peer->name,
                     n < 0 ? strerror(errno) : "closed");
            relay_pair_close(c->pair, "write error");
            return -1;
        }
    }
    return 0;
}

/* Read from c's socket into its pipe, and on to the peer, while it flows. */
static void splice_fill(struct relay_conn *c)
{
    struct relay_pair *p = c->pair;
    struct relay *r = c->relay;
    size_t len = c->pipe_cap;
    int i;

    /* Under a limit, take no more than a burst at a time: one big read
     * would run ahead of the rate and then stall. */
    if (p->bucket.rate && p->bucket.burst < (double)len)
        len = (size_t)p->bucket.burst;
    if (r->total.rate && r->total.burst < (double)len)
        len = (size_t)r->total.burst;
    for (i = 0; i < 16 && !c->piped && !c->throttled; i++) {
        ssize_t n = splice(c->sfd, NULL, c->pipe[1], NULL, len,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            c->piped = (size_t)n;
            relay_account(c, (size_t)n);
            if (splice_drain(c) < 0)
                return;
            /* a short read emptied the socket: poll again rather than
             * spend a splice() on EAGAIN (level-triggered, nothing lost) */
            if ((size_t)n < len)
                return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0)
            hd_debug(MOD, "read from %s: %s", c->name, strerror(errno));
        c->eof = 1;
        p->draining = 1;
        return;
    }
}

/* Poll for what c needs now: reading it, and writing its peer's pipe. */
void relay_splice_update(struct relay_conn *c)
{
    int ev = 0, ret;

    if (!c->poll_init || c->closing)
        return;
    if (c->buf && c->start == c->end) {
        /* what was read before pairing is out: splice needs no buffer */
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    if (c->start == c->end && !c->piped && !c->throttled && !c->eof &&
        !c->pair->draining)
        ev |= UV_READABLE;
    if (c->peer->piped)
        ev |= UV_WRITABLE;
    if (ev == c->poll_events)
        return;
    ret = ev ? uv_poll_start(&c->poll, ev, splice_poll_cb)
             : uv_poll_stop(&c->poll);
    c->poll_events = ev;
    if (ret < 0)
        relay_pair_close(c->pair, "poll error");
}

static void splice_poll_cb(uv_poll_t *h, int status, int events)
{
    struct relay_conn *c = h->data;
    struct relay_pair *p = c->pair;

    if (status < 0) {
        c->poll_events = 0; /* libuv stopped the handle */
        relay_pair_close(p, "socket error");
        return;
    }
    if (events & UV_WRITABLE) {
        struct relay_conn *src = c->peer;
        if (splice_drain(src) < 0)
            return;
        /* its pipe is empty: read on without waiting for another poll */
        if (!src->piped && !src->throttled && !src->eof && !p->draining &&
            src->start == src->end)
            splice_fill(src);
        if (p->closing)
            return;
    }
    if (events & UV_READABLE)
        splice_fill(c);
    if (p->closing)
        return;
    relay_splice_update(p->a);
    relay_splice_update(p->b);
    relay_pair_maybe_finish(p);
}

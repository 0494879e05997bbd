/*
 * Connections of the race on its loop (rv_int.h): a framed link to the
 * rendezvous server (the punch request's, from our port Q, and the relay
 * request's), which KeyExchange secures as the server offers it, and the
 * plain TCP connect of rv_connect_direct.  Name lookups (DNS blocks) run
 * on libuv's thread pool.  rv_connect_id and rv_connect_direct wait for
 * a link with rv_link_wait, which runs the loop (so the NAT test, the UDP
 * socket and the user's cancel are served meanwhile); the relay request
 * takes its messages through callbacks.  Nothing here blocks the thread
 * but the loop itself.
 */
#include "client/rv_int.h"
#include "nat/tcp.h"
#include "net.h"
#include "rvsec.h"

static void link_closed(uv_handle_t *hd)
{
    struct rv_link *l = hd->data;

    l->rc->handles--;
}

void rv_link_close(struct rv_link *l)
{
    if (l->open)
        hd_net_close((uv_handle_t *)&l->tcp, link_closed);
    l->open = 0;
    if (l->dec_init)
        hd_frame_decoder_cleanup(&l->dec);
    l->dec_init = 0;
    hd_secure_cleanup(&l->sec);
    l->secure = 0;
}

/* The link failed with r (the first failure counts). */
static void link_error(struct rv_link *l, int r)
{
    if (l->err == 0)
        l->err = r;
    if (l->cb != NULL && l->cb->on_error != NULL)
        l->cb->on_error(l, r);
}

static void link_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct rv_link *l = hd->data;

    (void)sz;
    hd_net_frame_buf(&l->dec, 0, buf);
}

int rv_link_next(struct rv_link *l, Hbb__RendezvousMessage **m)
{
    const uint8_t *p;
    size_t len;
    int r;

    *m = NULL;
    if (!l->dec_init)
        return 0;
    if ((r = hd_frame_decoder_next(&l->dec, &p, &len)) != 1)
        return r;
    r = rv_unpack(l->secure ? &l->sec : NULL, (uint8_t *)p, len, m);
    return r == 0 ? 1 : r;
}

static void link_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct rv_link *l = s->data;
    Hbb__RendezvousMessage *m;
    int r = 0;

    (void)buf;
    if (!l->open || l->err != 0 || n == 0)
        return;
    if (n < 0) {
        link_error(l, n == UV_EOF ? -ECONNRESET : (int)n);
        return;
    }
    hd_frame_decoder_commit(&l->dec, (size_t)n);
    if (l->cb == NULL || l->cb->on_message == NULL)
        return; /* rv_link_wait takes the frames */
    while (l->open && (r = rv_link_next(l, &m)) == 1) {
        l->cb->on_message(l, m);
        hbb__rendezvous_message__free_unpacked(m, NULL);
    }
    if (r < 0 && l->open)
        link_error(l, r);
}

static void link_connected(uv_connect_t *req, int status)
{
    struct rv_link *l = req->data;

    if (status == UV_ECANCELED || !l->open)
        return;
    if (status == 0 && (status = uv_read_start((uv_stream_t *)&l->tcp,
                                               link_alloc, link_read)) == 0)
        l->connected = 1;
    else if (l->err == 0)
        l->err = status;
    if (l->cb != NULL && l->cb->on_connected != NULL)
        l->cb->on_connected(l, status);
}

int rv_link_open(struct race *rc, struct rv_link *l, int fd,
                 const struct sockaddr_storage *to, const struct rv_link_cb *cb)
{
    int r;

    memset(l, 0, sizeof(*l));
    l->rc = rc;
    l->cb = cb;
    if ((r = uv_tcp_init(rc->loop, &l->tcp)) != 0) {
        if (fd >= 0)
            close(fd);
        return r;
    }
    l->tcp.data = l->creq.data = l;
    l->open = 1;
    rc->handles++;
    hd_frame_decoder_init(&l->dec, RV_MAX_FRAME + HD_SECURE_OVERHEAD);
    l->dec_init = 1;
    if (fd >= 0 && (r = uv_tcp_open(&l->tcp, fd)) != 0) {
        close(fd);
        rv_link_close(l);
        return r;
    }
    uv_tcp_nodelay(&l->tcp, 1);
    if ((r = uv_tcp_connect(&l->creq, &l->tcp, (const struct sockaddr *)to,
                            link_connected)) != 0)
        rv_link_close(l);
    return r;
}

int rv_stream_send(uv_stream_t *s, struct hd_secure *sec,
                   const Hbb__RendezvousMessage *m)
{
    uint8_t buf[RV_FRAME_BUF];
    uv_buf_t b;
    int n, w;

    if ((n = rv_pack(sec, m, buf)) < 0)
        return n;
    /* a few hundred bytes on a fresh connection: the kernel takes them */
    b = uv_buf_init((char *)buf, (unsigned)n);
    w = uv_try_write(s, &b, 1);
    return w == n ? 0 : w < 0 ? w : -EAGAIN;
}

int rv_link_send(struct rv_link *l, const Hbb__RendezvousMessage *m, int seal)
{
    return rv_stream_send((uv_stream_t *)&l->tcp,
                          seal && l->secure ? &l->sec : NULL, m);
}

int rv_link_answer(struct rv_link *l, const Hbb__RendezvousMessage *m,
                   struct rv_result *res)
{
    const struct rv_request *req = l->rc->req;
    struct hd_rv_kx_answer ans;
    int r;

    if ((r = rv_offer_answer(req, m, l->rc->spk, &l->sec, &ans, res)) != 0)
        return r;
    if ((r = rv_link_send(l, &ans.msg, 0)) != 0) {
        rv_set_err(res, "server %s: secure channel failed: %s", req->server,
                   hd_strerror(r));
        return r;
    }
    l->secure = 1;
    return 0;
}

int rv_link_wait(struct rv_link *l, unsigned ms, Hbb__RendezvousMessage **m)
{
    struct race *rc = l->rc;
    uint64_t until = rv_now(rc) + ms;
    int r;

    if (m != NULL)
        *m = NULL;
    for (;;) {
        if (m != NULL && (r = rv_link_next(l, m)) != 0)
            return r == 1 ? 0 : r;
        if (m == NULL && l->connected)
            return 0;
        if (l->err != 0)
            return l->err;
        if (rc->cancelled)
            return -ECANCELED;
        if (rv_now(rc) >= until)
            return -ETIMEDOUT;
        rv_run_once(rc, until);
    }
}

int rv_take_fd(uv_handle_t *h)
{
    uv_os_fd_t fd;
    int d;

    if (uv_fileno(h, &fd) != 0)
        return -EBADF;
    if ((d = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -errno;
    rv_set_blocking(d);
    return d;
}

/* ---- name lookups on the thread pool ------------------------------------- */

static void resolve_work(uv_work_t *w)
{
    struct rv_resolve *rs = w->data;

    rs->r = hd_addr_resolve(rs->name, rs->port, &rs->ss);
}

static void resolve_done(uv_work_t *w, int status)
{
    struct rv_resolve *rs = w->data;

    rs->busy = 0;
    rs->rc->handles--; /* the race waits for the work as for a handle */
    if (status != 0)
        rs->r = status;
}

int rv_resolve_wait(struct race *rc, const char *name, uint16_t port,
                    struct sockaddr_storage *ss)
{
    struct rv_resolve *rs = &rc->rs;
    int r;

    if (rs->busy)
        return -EBUSY;
    rs->rc = rc;
    rs->name = name;
    rs->port = port;
    rs->work.data = rs;
    if ((r = uv_queue_work(rc->loop, &rs->work, resolve_work, resolve_done)) !=
        0)
        return r;
    rs->busy = 1;
    rc->handles++;
    while (rs->busy && !rc->cancelled)
        rv_run_once(rc, rv_now(rc) + 1000);
    if (rs->busy) { /* cancelled: the lookup ends on its own, or now */
        uv_cancel((uv_req_t *)&rs->work);
        return -ECANCELED;
    }
    if (rs->r == 0)
        *ss = rs->ss;
    return rs->r;
}

/* ---- the server ---------------------------------------------------------- */

int rv_link_server(struct race *rc, struct rv_link *l, uint16_t *local,
                   struct sockaddr_storage *srv)
{
    const struct rv_request *req = rc->req;
    Hbb__RendezvousMessage *m = NULL;
    int r, fd = -1;

    memset(l, 0, sizeof(*l));
    if ((r = rv_resolve_wait(rc, req->server, RV_DEFAULT_PORT, srv)) != 0) {
        if (r == -ECANCELED)
            return r;
        rv_set_err(rc->out, "cannot resolve the server '%s': %s", req->server,
                   hd_strerror(r));
        return r < 0 && r > -4096 ? r : -EHOSTUNREACH;
    }
    /* from a reusable port Q (*local): the host will punch towards it */
    if ((local != NULL &&
         (r = fd = hd_nat_tcp_socket(srv->ss_family, 0, local)) < 0) ||
        (r = rv_link_open(rc, l, fd, srv, NULL)) != 0 ||
        (r = rv_link_wait(l, RV_CONNECT_MS, NULL)) != 0) {
        rv_set_err(rc->out, "server unreachable: cannot connect to %s: %s",
                   req->server, rv_reason(r));
        goto fail;
    }
    if (rc->spk == NULL)
        return 0; /* no key: nothing to verify an offer with; skip it */
    /* the server's KeyExchange offer comes at once (rv_no_offer) */
    r = rv_link_wait(l, rv_offer_ms(req), &m);
    if (r == -ETIMEDOUT) {
        if ((r = rv_no_offer(req, rc->out)) == 0)
            return 0;
        goto fail;
    }
    if (r != 0) {
        rv_set_err(rc->out, "server %s: %s", req->server, rv_reason(r));
        goto fail;
    }
    if ((r = rv_link_answer(l, m, rc->out)) != 0)
        goto fail;
    hbb__rendezvous_message__free_unpacked(m, NULL);
    return 0;
fail:
    if (m != NULL)
        hbb__rendezvous_message__free_unpacked(m, NULL);
    rv_link_close(l);
    return r;
}

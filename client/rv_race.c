/*
 * Racing every path to the host (see rv_int.h) on a libuv loop: the
 * candidates (punched, accepted, LAN, mapped port, IPv6, relay), the
 * punches and the NAT type test of common/nat/tcp.h, the relay request
 * (rv_relay.c), the UDP punch (upunch.h), until the first SignedId of the
 * host that verifies.
 */
#include "client/rv_int.h"
#include "nat/tcp.h"
#include "net.h"

uint64_t rv_now(struct race *rc)
{
    uv_update_time(rc->loop); /* the loop may have waited on the server */
    return uv_now(rc->loop);
}

static void rc_closed(uv_handle_t *hd)
{
    struct race *rc = hd->data;

    rc->handles--;
}

static void finish(struct race *rc, int r)
{
    if (rc->done)
        return;
    rc->done = 1;
    rc->result = r;
}

static void on_cancel(uv_poll_t *p, int status, int events)
{
    struct race *rc = p->data;

    (void)status;
    (void)events;
    rc->cancelled = 1;
    uv_poll_stop(p);
    finish(rc, -ECANCELED);
}

int rv_race_init(struct race *rc, const struct rv_request *req,
                 struct rv_result *out)
{
    int r;

    memset(rc, 0, sizeof(*rc));
    rc->req = req;
    rc->out = out;
    rc->lis = rc->lis6 = -1;
    up_init(&rc->up);
    if ((rc->loop = req->loop) == NULL) {
        if ((r = uv_loop_init(&rc->own_loop)) != 0)
            return r;
        rc->loop = &rc->own_loop;
    }
    rc->loop_ready = 1;
    uv_timer_init(rc->loop, &rc->timer);
    rc->timer.data = rc;
    rc->handles = 1;
    if (req->cancel_fd >= 0 &&
        uv_poll_init(rc->loop, &rc->cancel, req->cancel_fd) == 0) {
        rc->cancel.data = rc;
        rc->handles++;
        rc->cancel_open = 1;
        uv_poll_start(&rc->cancel, UV_READABLE, on_cancel);
    }
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    (void)t; /* it only wakes the loop: rv_race_run looks again */
}

void rv_run_once(struct race *rc, uint64_t at)
{
    uint64_t now = rv_now(rc);

    uv_timer_start(&rc->timer, on_timer, at > now ? at - now : 0, 0);
    uv_run(rc->loop, UV_RUN_ONCE);
}

/* ---- candidates ---------------------------------------------------------- */

static const char *cand_name(const struct cand *c)
{
    switch (c->kind) {
    case CK_PUNCH:
        return "direct (punched)";
    case CK_LAN:
        return "lan";
    case CK_ACCEPTED:
        return "direct (accepted)";
    case CK_UPNP:
        return "direct (mapped port)";
    case CK_PUNCH6:
        return "direct (IPv6)";
    default:
        return "relay";
    }
}

static void cand_closed(uv_handle_t *hd)
{
    struct cand *c = hd->data;

    c->used = 0;
    c->rc->handles--;
}

static void cand_drop(struct race *rc, struct cand *c, const char *why)
{
    if (!c->live)
        return;
    if (why != NULL) {
        char hs[HD_ADDR_STRLEN];

        hd_addr_format((struct sockaddr *)(c->addr ? c->addr : &rc->host), hs,
                       sizeof(hs));
        hd_info("rv", "%s: %s path to %s failed: %s", rc->req->id, cand_name(c),
                c->kind == CK_RELAY ? "the relay" : hs, why);
        if (c->kind != CK_RELAY)
            snprintf(rc->direct_err, sizeof(rc->direct_err), "%s", why);
    }
    c->live = 0;
    hd_net_close((uv_handle_t *)&c->tcp, cand_closed);
    /* the punch goes on: that connection was not the host */
    if (c->kind == CK_PUNCH && rc->tp != NULL)
        hd_nat_tcp_resume(rc->tp);
    if (c->kind == CK_PUNCH6 && rc->tp6 != NULL)
        hd_nat_tcp_resume(rc->tp6);
}

static struct cand *cand_new(struct race *rc, enum cand_kind kind,
                             uint64_t deadline)
{
    for (int i = 0; i < RV_MAX_CANDS; i++) {
        struct cand *c = &rc->c[i];

        if (c->used)
            continue;
        memset(c, 0, sizeof(*c));
        c->rc = rc;
        c->used = c->live = 1;
        c->kind = kind;
        c->deadline = deadline;
        uv_tcp_init(rc->loop, &c->tcp);
        c->tcp.data = c->req.data = c;
        rc->handles++;
        return c;
    }
    return NULL;
}

/*
 * The first frame in buf[0..n): 1 when it is a SignedId of our host that
 * verifies, 0 when it is not complete yet, or a negative error.
 */
static int check_hello(struct race *rc, const uint8_t *buf, size_t n,
                       size_t cap)
{
    uint8_t box[64];
    size_t hlen, plen, klen;
    char id[128];
    Hbb__Message *m;
    int r;

    if (hd_frame_parse_header(buf, n, &hlen, &plen) != 1)
        return 0;
    if (plen > cap - hlen)
        return HD_EPROTO;
    if (hlen + plen > n)
        return 0;
    if ((m = hbb__message__unpack(NULL, plen, buf + hlen)) == NULL)
        return HD_EPROTO;
    r = HD_EPROTO;
    if (m->union_case == HBB__MESSAGE__UNION_SIGNED_ID) {
        r = hd_idpk_verify(m->signed_id->id.data, m->signed_id->id.len,
                           rc->out->host_pk, id, sizeof(id), box, sizeof(box),
                           &klen);
        if (r == 0 && strcmp(id, rc->req->id) != 0)
            r = HD_EAUTH;
    }
    hbb__message__free_unpacked(m, NULL);
    return r == 0 ? 1 : r;
}

/* c's SignedId verified: it wins (rc->out gets a descriptor of its own
 * and what c read so far). */
static void cand_win(struct race *rc, struct cand *c)
{
    int d = rv_take_fd((uv_handle_t *)&c->tcp);

    if (d < 0) {
        cand_drop(rc, c, hd_strerror(d));
        return;
    }
    rc->out->fd = d;
    memcpy(rc->out->pending, c->buf, c->len);
    rc->out->pending_len = c->len;
    rc->out->path = c->kind == CK_RELAY ? RV_PATH_RELAY
                    : c->kind == CK_LAN ? RV_PATH_LAN
                                        : RV_PATH_DIRECT;
    hd_info("rv", "%s: %s path won in %llu ms", rc->req->id, cand_name(c),
            (unsigned long long)(rv_now(rc) - rc->t0));
    c->live = 0;
    hd_net_close((uv_handle_t *)&c->tcp, cand_closed);
    finish(rc, 0);
}

static void cand_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct cand *c = hd->data;

    (void)sz;
    buf->base = (char *)c->buf + c->len;
    buf->len = sizeof(c->buf) - c->len;
}

static void cand_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct cand *c = s->data;
    struct race *rc = c->rc;
    int r;

    (void)buf;
    if (!c->live || rc->done || n == 0)
        return;
    if (n < 0) {
        cand_drop(rc, c,
                  n == UV_EOF ? "closed before SignedId" : uv_strerror((int)n));
        return;
    }
    c->len += (size_t)n;
    r = check_hello(rc, c->buf, c->len, sizeof(c->buf));
    if (r == 0 && c->len == sizeof(c->buf))
        r = HD_EPROTO;
    if (r < 0)
        cand_drop(rc, c,
                  r == HD_EAUTH ? "SignedId does not verify" : hd_strerror(r));
    else if (r == 1)
        cand_win(rc, c);
}

/* c is connected: wait for SignedId. */
static void cand_opened(struct race *rc, struct cand *c)
{
    c->open = 1;
    c->deadline = rv_now(rc) + RV_HELLO_MS;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, cand_alloc, cand_read) != 0)
        cand_drop(rc, c, "cannot read");
}

/* A connected descriptor (ours) becomes a candidate: 0, or a negative
 * error (fd closed). */
int rv_cand_fd(struct race *rc, int fd, enum cand_kind kind)
{
    struct cand *c = cand_new(rc, kind, 0);
    int r;

    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    if ((r = uv_tcp_open(&c->tcp, fd)) != 0) {
        close(fd);
        c->kind = CK_LAN; /* (no punch to resume) */
        cand_drop(rc, c, NULL);
        return r;
    }
    cand_opened(rc, c);
    return 0;
}

static void on_cand_connect(uv_connect_t *req, int status)
{
    struct cand *c = req->data;
    struct race *rc = c->rc;

    if (status == UV_ECANCELED || !c->live || rc->done)
        return;
    if (status != 0) {
        cand_drop(rc, c, uv_strerror(status));
        return;
    }
    hd_debug("rv", "%s: %s connected (%llu ms)", rc->req->id, cand_name(c),
             (unsigned long long)(rv_now(rc) - rc->t0));
    cand_opened(rc, c);
}

/* Connect to dst (the LAN address, the mapped port); adds a candidate. */
int rv_cand_connect(struct race *rc, enum cand_kind kind, uint64_t deadline,
                    const struct sockaddr_storage *dst)
{
    struct cand *c = cand_new(rc, kind, deadline);
    int r;

    if (c == NULL)
        return -ENOMEM;
    c->addr = dst;
    if ((r = uv_tcp_connect(&c->req, &c->tcp, (const struct sockaddr *)dst,
                            on_cand_connect)) != 0) {
        cand_drop(rc, c, NULL);
        return r;
    }
    return 0;
}

/* ---- punches and the NAT type test --------------------------------------- */

static void punch_connected(struct hd_nat_tcp *p, int fd, int accepted,
                            void *ud)
{
    struct race *rc = ud;
    int v6 = p == rc->tp6;

    if (accepted && !v6)
        hd_debug("rv", "%s: accepted a connection on port %u", rc->req->id,
                 (unsigned)rc->port);
    else if (!accepted)
        hd_debug("rv", "%s: %s connected (%llu ms)", rc->req->id,
                 v6 ? "direct (IPv6)" : "direct (punched)",
                 (unsigned long long)(rv_now(rc) - rc->t0));
    if (rv_cand_fd(rc, fd,
                   accepted ? CK_ACCEPTED
                   : v6     ? CK_PUNCH6
                            : CK_PUNCH) != 0 &&
        !accepted)
        hd_nat_tcp_resume(p); /* no room: the punch goes on */
}

/* Free a punch, keeping what the log needs. */
static void punch_free(struct race *rc, struct hd_nat_tcp **p)
{
    struct hd_nat_tcp_stats st;

    if (*p == NULL)
        return;
    if (*p == rc->tp) {
        hd_nat_tcp_stats(*p, &st);
        rc->punch_attempts = st.attempts;
        rc->punch_err = st.last_err;
    }
    hd_nat_tcp_free(*p);
    *p = NULL;
}

static void punch_expired(struct hd_nat_tcp *p, void *ud)
{
    struct race *rc = ud;

    punch_free(rc, p == rc->tp ? &rc->tp : &rc->tp6);
}

/* Punch from Q to rc->host (v6: from Q6 to rc->host6), the listener
 * opened before the request taken over.  0 or a negative error. */
int rv_punch_start(struct race *rc, int v6)
{
    static const struct hd_nat_tcp_cb cb = { punch_connected, punch_expired };
    struct hd_nat_tcp_cfg cfg = {
        .peer = (struct sockaddr *)(v6 ? &rc->host6 : &rc->host),
        .port = v6 ? rc->port6 : rc->port,
        .listen_fd = v6 ? rc->lis6 : rc->lis,
        .retry_ms = RV_RETRY_MS,
        .connect_ms = RV_PUNCH_MS,
        .listen_ms = RV_PUNCH_MS,
    };

    if (cfg.listen_fd < 0)
        cfg.listen_fd = -2; /* none */
    if (v6)
        rc->lis6 = -1;
    else
        rc->lis = -1;
    return hd_nat_tcp_start(rc->loop, &cfg, &cb, rc, v6 ? &rc->tp6 : &rc->tp);
}

static void on_natt(struct hd_nat_natt *t, int status, int port0, int port1,
                    void *ud)
{
    struct race *rc = ud;

    hd_nat_natt_free(t);
    rc->natt = NULL;
    rc->nat_done = rv_now(rc);
    if (status != 0) {
        hd_debug("rv", "NAT type test: %s", hd_strerror(status));
        return;
    }
    rc->nat_port[0] = port0;
    rc->nat_port[1] = port1;
    rc->me_sym = port0 != port1;
    hd_debug("rv", "our NAT: %s (ports %d, %d)",
             rc->me_sym ? "symmetric" : "cone", port0, port1);
}

/* Start the NAT type test against the server at srv. */
void rv_nat_test(struct race *rc, const struct sockaddr_storage *srv)
{
    if (hd_nat_natt_start(rc->loop, (const struct sockaddr *)srv, on_natt, rc,
                          &rc->natt) != 0)
        rc->nat_done = rv_now(rc);
}

/* ---- the race ------------------------------------------------------------ */

/* Can a direct (or LAN) connection still come up? */
static int direct_alive(const struct race *rc)
{
    for (int i = 0; i < RV_MAX_CANDS; i++)
        if (rc->c[i].live && rc->c[i].kind != CK_RELAY)
            return 1;
    if (rc->tp6 != NULL && hd_nat_tcp_trying(rc->tp6))
        return 1;
    if (up_alive(&rc->up))
        return 1;
    return rc->tp != NULL && hd_nat_tcp_trying(rc->tp) &&
           !(rc->host_sym && rc->me_sym);
}

/* When the relay starts, in ms after the race began. */
static uint64_t relay_head(const struct race *rc)
{
    if (rc->req->force_relay || !direct_alive(rc))
        return 0;
    if (rc->host_sym && rc->me_sym) /* only a mapped port or IPv6 left */
        return rc->extra ? RV_HEAD_SYM_MS : 0;
    if (rc->local)
        return RV_LOCAL_MS;
    /* one side symmetric, the other not: the UDP birthday search (the
     * host's guesses meet one of our fan's mappings, or ours the host's)
     * takes a few hundred ms at most; the TCP paths rarely work there */
    if ((rc->host_sym || rc->me_sym) && up_alive(&rc->up))
        return RV_HEAD_MS;
    if (rc->host_sym || rc->me_sym)
        return RV_HEAD_SYM_MS;
    return RV_HEAD_MS;
}

/* The UDP path's first frame is complete: it wins or fails. */
static void race_udp(struct race *rc, uint64_t now)
{
    int r;

    r = check_hello(rc, rc->up.hello, rc->up.hello_len, sizeof(rc->up.hello));
    if (r < 0) {
        hd_info("rv", "%s: udp path failed: %s", rc->req->id,
                r == HD_EAUTH ? "SignedId does not verify" : hd_strerror(r));
        up_close(&rc->up);
        return;
    }
    if (r == 0)
        return;
    up_take(&rc->up, &rc->out->fd, &rc->out->rudp);
    if (rc->out->fd < 0) {
        hd_info("rv", "%s: udp path failed: cannot take the socket",
                rc->req->id);
        return;
    }
    memcpy(rc->out->pending, rc->up.hello, rc->up.hello_len);
    rc->out->pending_len = rc->up.hello_len;
    rc->out->path = RV_PATH_UDP;
    hd_info("rv", "%s: udp path won in %llu ms", rc->req->id,
            (unsigned long long)(now - rc->t0));
    finish(rc, 0);
}

/*
 * One look at the race after the loop ran: the UDP path's frame, the
 * candidates past their deadline, the relay once its head start is over,
 * the end when nothing is left.  Returns when the loop must wake next.
 */
static uint64_t race_step(struct race *rc)
{
    uint64_t now = rv_now(rc), next = now + 1000, head;
    int busy = 0;

    if (rc->up.ready && !rc->done)
        race_udp(rc, now);
    for (int i = 0; i < RV_MAX_CANDS && !rc->done; i++) {
        struct cand *c = &rc->c[i];

        if (!c->live)
            continue;
        if (c->deadline != 0 && now >= c->deadline) {
            cand_drop(rc, c, c->open ? "no SignedId in time" : "timed out");
            continue;
        }
        busy = 1;
        if (c->deadline != 0 && c->deadline < next)
            next = c->deadline;
    }
    if (rc->done)
        return now;
    head = rc->t0 + relay_head(rc);
    if (!rc->rl.started && !rc->relay_failed && now >= head &&
        rv_relay_start(rc, NULL) != 0)
        rc->relay_failed = 1;
    if (!rc->rl.started && !rc->relay_failed && head < next)
        next = head;
    /* the end: nothing left that could still connect */
    if (!busy && (rc->relay_failed || rc->rl.done) && !direct_alive(rc))
        finish(rc, rc->out->err[0] ? -ECONNREFUSED : -ETIMEDOUT);
    return next;
}

int rv_race_run(struct race *rc)
{
    for (;;) {
        uint64_t next = race_step(rc);

        if (rc->done)
            return rc->result;
        rv_run_once(rc, next);
    }
}

void rv_race_cleanup(struct race *rc)
{
    int i;

    if (!rc->loop_ready)
        return;
    rc->done = 1;
    for (i = 0; i < RV_MAX_CANDS; i++)
        cand_drop(rc, &rc->c[i], NULL);
    punch_free(rc, &rc->tp);
    punch_free(rc, &rc->tp6);
    if (rc->punch && rc->out->fd >= 0 && rc->out->path == RV_PATH_RELAY) {
        char hs[HD_ADDR_STRLEN];

        hd_addr_format((struct sockaddr *)&rc->host, hs, sizeof(hs));
        hd_info("rv", "%s: direct path to %s failed: %s (%d attempts)",
                rc->req->id, hs,
                rc->direct_err[0] ? rc->direct_err
                : rc->punch_err   ? rv_reason(rc->punch_err)
                                  : "no answer before the relay",
                rc->punch_attempts);
    }
    if (rc->lis >= 0)
        close(rc->lis);
    rc->lis = -1;
    if (rc->lis6 >= 0)
        close(rc->lis6);
    rc->lis6 = -1;
    hd_nat_natt_free(rc->natt);
    rc->natt = NULL;
    up_close(&rc->up);
    rv_relay_cleanup(rc);
    rv_link_close(&rc->lk);
    hd_net_close((uv_handle_t *)&rc->timer, rc_closed);
    if (rc->cancel_open)
        hd_net_close((uv_handle_t *)&rc->cancel, rc_closed);
    rc->cancel_open = 0;
    /* every handle in rc closed before rc goes */
    while (rc->handles > 0 || rc->up.handles > 0)
        uv_run(rc->loop, UV_RUN_ONCE);
    if (rc->loop == &rc->own_loop) {
        uv_run(rc->loop, UV_RUN_DEFAULT);
        uv_loop_close(rc->loop);
    }
    rc->loop_ready = 0;
}

/*
 * Before the punch request: the NAT type test (so the host learns our
 * NAT kind from PunchHole.nat_type) and our public UDP port, for at most
 * RV_PRELUDE_MS (a server whose NAT test port is not forwarded costs
 * that much, once per connection; the NAT type then goes out unknown);
 * the UDP answer gets RV_UDP_WAIT_MS more once the NAT test is done (a
 * server that is not homedesk-server never answers it).
 */
int rv_prelude(struct race *rc)
{
    uint64_t now, until = rv_now(rc) + RV_PRELUDE_MS, next;

    for (;;) {
        if (rc->cancelled)
            return -ECANCELED;
        now = rv_now(rc);
        if (rc->natt == NULL && rc->nat_done == 0)
            rc->nat_done = now;
        if (now >= until ||
            (rc->nat_done && (!rc->up.sock_open || rc->up.pub_port != 0 ||
                              now >= rc->nat_done + RV_UDP_WAIT_MS)))
            return 0;
        next = until;
        if (rc->nat_done && rc->nat_done + RV_UDP_WAIT_MS < next)
            next = rc->nat_done + RV_UDP_WAIT_MS;
        rv_run_once(rc, next);
    }
}

/*
 * Racing every path to the host (see rv_int.h): the candidates (punch,
 * LAN, accepted, mapped port, IPv6, relay), the relay on a thread of its
 * own, the NAT type test, the UDP punch (upunch.h), and the poll loop that
 * runs them all until the first SignedId of the host that verifies.
 */
#include "client/rv_int.h"

uint64_t rv_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

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

static void cand_drop(struct race *rc, struct cand *c, const char *why)
{
    if (c->fd < 0)
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
    close(c->fd);
    c->fd = -1;
}

static struct cand *cand_add(struct race *rc, int fd, enum cand_kind kind,
                             int open, uint64_t deadline)
{
    for (int i = 0; i < RV_MAX_CANDS; i++) {
        if (rc->c[i].fd < 0) {
            rc->c[i] = (struct cand){ fd, kind, open, deadline, 0, NULL };
            return &rc->c[i];
        }
    }
    close(fd);
    return NULL;
}

/* Start a non-blocking connect to dst (from the shared port from_port,
 * else any); adds a candidate. */
int rv_cand_connect(struct race *rc, enum cand_kind kind, uint16_t from_port,
                    uint64_t deadline, const struct sockaddr_storage *dst)
{
    const struct sockaddr *to = (const struct sockaddr *)dst;
    struct cand *c;
    int fd;

    if ((fd = rv_tcp_socket(to->sa_family, from_port != 0, from_port, NULL)) <
        0)
        return fd;
    if (connect(fd, to, hd_addr_len(to)) != 0 && errno != EINPROGRESS) {
        int r = -errno;

        close(fd);
        return r;
    }
    if ((c = cand_add(rc, fd, kind, 0, deadline)) == NULL)
        return -ENOMEM;
    c->addr = dst;
    return 0;
}

/*
 * The first frame on c, peeked (left for the session to read): 1 when it
 * is a SignedId of our host that verifies, 0 when it is not complete yet,
 * or a negative error.
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

static int peek_signed_id(struct race *rc, struct cand *c)
{
    uint8_t buf[RV_PEEK_MAX];
    ssize_t n;

    n = recv(c->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return -ECONNRESET;
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    return check_hello(rc, buf, (size_t)n, sizeof(buf));
}

static void *relay_main(void *arg)
{
    struct relay_job *j = arg;
    char b = 1;

    j->r = rv_via_relay(&j->req, j->have_spk ? j->spk : NULL,
                        j->hint[0] ? j->hint : NULL,
                        j->given_uuid ? j->uuid : NULL, &j->res);
    if (write(j->notify[1], &b, 1) < 0) {
        /* the race polls notify; nothing else to do */
    }
    return NULL;
}

int rv_relay_start(struct race *rc, const uint8_t *spk, const char *hint,
                   const char *uuid)
{
    struct relay_job *j = &rc->job;

    if (j->started)
        return 0;
    if (pipe2(j->notify, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(j->stop, O_CLOEXEC) != 0) {
        close(j->notify[0]);
        close(j->notify[1]);
        return -errno;
    }
    j->req = *rc->req;
    j->req.cancel_fd = j->stop[0];
    if (spk != NULL) {
        memcpy(j->spk, spk, sizeof(j->spk));
        j->have_spk = 1;
    }
    snprintf(j->hint, sizeof(j->hint), "%s", hint ? hint : "");
    if (uuid != NULL) {
        snprintf(j->uuid, sizeof(j->uuid), "%s", uuid);
        j->given_uuid = 1;
    }
    memset(&j->res, 0, sizeof(j->res));
    j->res.fd = -1;
    memcpy(j->res.host_pk, rc->out->host_pk, sizeof(j->res.host_pk));
    if (pthread_create(&j->th, NULL, relay_main, j) != 0) {
        close(j->notify[0]);
        close(j->notify[1]);
        close(j->stop[0]);
        close(j->stop[1]);
        return -EAGAIN;
    }
    j->started = 1;
    hd_debug("rv", "%s: asking for the relay (%llu ms)", rc->req->id,
             (unsigned long long)(rv_mono_ms() - rc->t0));
    return 0;
}

/* The relay thread is done: its connection becomes a candidate. */
static void relay_collect(struct race *rc)
{
    struct relay_job *j = &rc->job;

    if (!j->started || j->joined)
        return;
    pthread_join(j->th, NULL);
    j->joined = 1;
    if (j->r == 0 && j->res.fd >= 0) {
        fcntl(j->res.fd, F_SETFL, fcntl(j->res.fd, F_GETFL) | O_NONBLOCK);
        memcpy(rc->out->host_pk, j->res.host_pk, sizeof(rc->out->host_pk));
        if (cand_add(rc, j->res.fd, CK_RELAY, 1, rv_mono_ms() + RV_HELLO_MS) ==
            NULL)
            rc->relay_failed = 1;
        j->res.fd = -1;
    } else {
        rc->relay_failed = 1;
        hd_info("rv", "%s: relay path failed: %s", rc->req->id, j->res.err);
        snprintf(rc->out->err, sizeof(rc->out->err), "%s", j->res.err);
    }
}

static void relay_cleanup(struct race *rc)
{
    struct relay_job *j = &rc->job;
    char b = 1;

    if (!j->started)
        return;
    if (!j->joined) {
        if (write(j->stop[1], &b, 1) < 0) {
            /* the thread ends at its own timeouts */
        }
        pthread_join(j->th, NULL);
        if (j->res.fd >= 0)
            close(j->res.fd);
    }
    close(j->notify[0]);
    close(j->notify[1]);
    close(j->stop[0]);
    close(j->stop[1]);
    j->started = 0;
}

/* NAT test socket i (0: server port, 1: port - 1) is ready for events. */
static void nat_step(struct race *rc, int i, short revents)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *a = NULL;
    Hbb__TestNatRequest t = HBB__TEST_NAT_REQUEST__INIT;
    struct rvc c = { .fd = rc->nat_fd[i], .cancel_fd = -1 };
    int err = 0, r;
    socklen_t len = sizeof(err);

    if (!rc->nat_sent[i]) {
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST;
        m.test_nat_request = &t;
        if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err ||
            rvc_send_secure(&c, &m, 0) != 0)
            goto fail;
        rc->nat_sent[i] = 1;
        return;
    }
    if (!(revents & (POLLIN | POLLHUP | POLLERR)))
        return;
    /* a KeyExchange offer may come first; the answer follows at once */
    while ((r = rvc_recv(&c, 200, &a)) == 0) {
        if (a->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_RESPONSE)
            break;
        hbb__rendezvous_message__free_unpacked(a, NULL);
        a = NULL;
    }
    if (r != 0 || a == NULL)
        goto fail;
    rc->nat_port[i] = a->test_nat_response->port;
    hbb__rendezvous_message__free_unpacked(a, NULL);
    close(rc->nat_fd[i]);
    rc->nat_fd[i] = -1;
    if (rc->nat_port[0] > 0 && rc->nat_port[1] > 0) {
        rc->me_sym = rc->nat_port[0] != rc->nat_port[1];
        hd_debug("rv", "our NAT: %s (ports %d, %d)",
                 rc->me_sym ? "symmetric" : "cone", rc->nat_port[0],
                 rc->nat_port[1]);
    }
    return;
fail:
    close(rc->nat_fd[i]);
    rc->nat_fd[i] = -1;
}

/* Can a direct (or LAN) connection still come up? */
static int direct_alive(const struct race *rc, uint64_t now)
{
    for (int i = 0; i < RV_MAX_CANDS; i++)
        if (rc->c[i].fd >= 0 && rc->c[i].kind != CK_RELAY)
            return 1;
    if (rc->punch6 && now < rc->punch6_until)
        return 1;
    if (up_alive(&rc->up))
        return 1;
    return rc->punch && now < rc->punch_until && !(rc->host_sym && rc->me_sym);
}

/* When the relay starts, in ms after the race began. */
static uint64_t relay_head(const struct race *rc, uint64_t now)
{
    if (rc->req->force_relay || !direct_alive(rc, now))
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

/* Start what is due: a punch connect from Q (again after each failure),
 * the same over IPv6 from Q6, the relay once its head start is over. */
static void race_start_due(struct race *rc, uint64_t now, const uint8_t *spk,
                           const char *hint)
{
    int i, r, busy = 0;

    /* punch: (re)connect from Q until punch_until */
    for (i = 0; i < RV_MAX_CANDS; i++)
        busy |= rc->c[i].fd >= 0 && rc->c[i].kind == CK_PUNCH;
    if (rc->punch && !busy && now < rc->punch_until &&
        now >= rc->punch_retry_at && !(rc->host_sym && rc->me_sym)) {
        rc->punch_attempts++;
        if ((r = rv_cand_connect(rc, CK_PUNCH, rc->port, rc->punch_until,
                                 &rc->host)) != 0) {
            rc->punch_err = r;
            rc->punch_retry_at = now + RV_RETRY_MS;
        }
    }
    /* IPv6: the same from Q6, while the host does it towards Q6 */
    busy = 0;
    for (i = 0; i < RV_MAX_CANDS; i++)
        busy |= rc->c[i].fd >= 0 && rc->c[i].kind == CK_PUNCH6;
    if (rc->punch6 && !busy && now < rc->punch6_until &&
        now >= rc->punch6_retry_at) {
        rc->punch6_attempts++;
        if (rv_cand_connect(rc, CK_PUNCH6, rc->port6, rc->punch6_until,
                            &rc->host6) != 0)
            rc->punch6_retry_at = now + RV_RETRY_MS;
    }
    if (!rc->job.started && !rc->relay_failed &&
        now >= rc->t0 + relay_head(rc, now) &&
        rv_relay_start(rc, spk, hint, NULL) != 0)
        rc->relay_failed = 1;
}

/*
 * The poll set: the UDP punch's loop, cancel_fd, the listeners, the relay
 * thread's notification, the NAT tests and the candidates (those past
 * their deadline are dropped here).  Returns how many entries p and map
 * got; *busy: a candidate is still under way; *next is lowered to the
 * candidates' deadlines.
 */
static int race_pollset(struct race *rc, uint64_t now, struct pollfd *p,
                        int *map, int *busy, uint64_t *next)
{
    int n = 0, i, k;

    /* the loop of the UDP punch (upunch.h), embedded in this poll() */
    p[n] = (struct pollfd){ uv_backend_fd(&rc->loop), POLLIN, 0 };
    map[n++] = -10;
    if (rc->req->cancel_fd >= 0) {
        p[n] = (struct pollfd){ rc->req->cancel_fd, POLLIN, 0 };
        map[n++] = -1;
    }
    if (rc->lis >= 0) {
        p[n] = (struct pollfd){ rc->lis, POLLIN, 0 };
        map[n++] = -2;
    }
    if (rc->lis6 >= 0) {
        p[n] = (struct pollfd){ rc->lis6, POLLIN, 0 };
        map[n++] = -6;
    }
    if (rc->job.started && !rc->job.joined) {
        p[n] = (struct pollfd){ rc->job.notify[0], POLLIN, 0 };
        map[n++] = -3;
    }
    for (k = 0; k < 2; k++) {
        if (rc->nat_fd[k] >= 0) {
            p[n] = (struct pollfd){ rc->nat_fd[k],
                                    rc->nat_sent[k] ? POLLIN : POLLOUT, 0 };
            map[n++] = -4 - k;
        }
    }
    *busy = 0;
    for (i = 0; i < RV_MAX_CANDS; i++) {
        struct cand *c = &rc->c[i];

        if (c->fd < 0)
            continue;
        if (now >= c->deadline) {
            cand_drop(rc, c, c->open ? "no SignedId in time" : "timed out");
            continue;
        }
        *busy = 1;
        if (c->deadline < *next)
            *next = c->deadline;
        if (c->open && c->peek_at > now) {
            if (c->peek_at < *next)
                *next = c->peek_at;
            continue;
        }
        p[n] = (struct pollfd){ c->fd, c->open ? POLLIN : POLLOUT, 0 };
        map[n++] = i;
    }
    return n;
}

/* When the race must look again at the latest (punch retries, the punch
 * window's end, the relay's start), given next so far. */
static uint64_t race_next(const struct race *rc, uint64_t now, int busy,
                          uint64_t next)
{
    if (rc->punch && now < rc->punch_until) {
        uint64_t due = busy ? rc->punch_until : rc->punch_retry_at;

        if (due < next)
            next = due;
    }
    if (rc->punch6 && now < rc->punch6_until && rc->punch6_retry_at < next)
        next = rc->punch6_retry_at > now ? rc->punch6_retry_at : now;
    if (!rc->job.started && !rc->relay_failed &&
        rc->t0 + relay_head(rc, now) < next)
        next = rc->t0 + relay_head(rc, now);
    return next;
}

/* A connection on the listener *lis becomes a candidate; a listener that
 * fails otherwise than for the moment (EMFILE...) is closed, never spun
 * on.  log: say so at debug level. */
static void race_accept(struct race *rc, int *lis, uint16_t port, int log,
                        uint64_t now)
{
    int afd = accept4(*lis, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (afd >= 0) {
        if (log)
            hd_debug("rv", "%s: accepted a connection on port %u", rc->req->id,
                     (unsigned)port);
        cand_add(rc, afd, CK_ACCEPTED, 1, now + RV_HELLO_MS);
    } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        close(*lis);
        *lis = -1;
    }
}

/* When the UDP punch's loop wants to run next (at most a second on). */
static uint64_t loop_next(struct race *rc, uint64_t now)
{
    int t;

    if (!uv_loop_alive(&rc->loop) || (t = uv_backend_timeout(&rc->loop)) < 0 ||
        t > 1000)
        return now + 1000;
    return now + (uint64_t)t;
}

/* Run the UDP punch's loop for what is due.  1 when the UDP path won
 * (rc->out is filled), else 0. */
static int race_udp(struct race *rc, uint64_t now)
{
    int r;

    uv_run(&rc->loop, UV_RUN_NOWAIT);
    if (!rc->up.ready)
        return 0;
    r = check_hello(rc, rc->up.hello, rc->up.hello_len, sizeof(rc->up.hello));
    if (r < 0) {
        hd_info("rv", "%s: udp path failed: %s", rc->req->id,
                r == HD_EAUTH ? "SignedId does not verify" : hd_strerror(r));
        up_close(&rc->up);
        return 0;
    }
    if (r == 0)
        return 0;
    up_take(&rc->up, &rc->out->fd, &rc->out->rudp);
    memcpy(rc->out->pending, rc->up.hello, rc->up.hello_len);
    rc->out->pending_len = rc->up.hello_len;
    rc->out->path = RV_PATH_UDP;
    hd_info("rv", "%s: udp path won in %llu ms", rc->req->id,
            (unsigned long long)(now - rc->t0));
    return 1;
}

/* Candidate c connected or failed to. */
static void cand_connected(struct race *rc, struct cand *c, uint64_t now)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0) {
        c->open = 1;
        c->deadline = now + RV_HELLO_MS;
        hd_debug("rv", "%s: %s connected (%llu ms)", rc->req->id, cand_name(c),
                 (unsigned long long)(now - rc->t0));
    } else if (c->kind == CK_PUNCH) {
        /* refused or unreachable: again, quietly */
        rc->punch_err = -err;
        rc->punch_retry_at = now + RV_RETRY_MS;
        close(c->fd);
        c->fd = -1;
    } else if (c->kind == CK_PUNCH6) {
        rc->punch6_retry_at = now + RV_RETRY_MS;
        close(c->fd);
        c->fd = -1;
    } else {
        cand_drop(rc, c, strerror(err));
    }
}

/* Events on candidate c.  1 when it won (rc->out is filled), else 0. */
static int cand_event(struct race *rc, struct cand *c, uint64_t now)
{
    int r;

    if (c->fd < 0)
        return 0;
    if (!c->open) {
        cand_connected(rc, c, now);
        return 0;
    }
    r = peek_signed_id(rc, c);
    if (r == 0) {
        c->peek_at = now + 10;
        return 0;
    }
    if (r < 0) {
        cand_drop(rc, c,
                  r == -ECONNRESET ? "closed before SignedId"
                  : r == HD_EAUTH  ? "SignedId does not verify"
                                   : hd_strerror(r));
        return 0;
    }
    /* the winner */
    rv_set_blocking(c->fd);
    rc->out->fd = c->fd;
    rc->out->path = c->kind == CK_RELAY ? RV_PATH_RELAY
                    : c->kind == CK_LAN ? RV_PATH_LAN
                                        : RV_PATH_DIRECT;
    c->fd = -1;
    hd_info("rv", "%s: %s path won in %llu ms", rc->req->id, cand_name(c),
            (unsigned long long)(now - rc->t0));
    return 1;
}

int rv_race_run(struct race *rc, const uint8_t *spk, const char *hint)
{
    struct pollfd p[RV_MAX_CANDS + 8];
    int map[RV_MAX_CANDS + 8];
    int n, k, r, busy, wait;
    uint64_t now, next;

    for (;;) {
        now = rv_mono_ms();
        race_start_due(rc, now, spk, hint);
        /* UDP: probes, guesses, the stream's timers */
        if (race_udp(rc, now))
            return 0;
        next = loop_next(rc, now);
        n = race_pollset(rc, now, p, map, &busy, &next);
        /* the end: nothing left that could still connect */
        if (!busy && (rc->relay_failed || rc->job.joined) &&
            !direct_alive(rc, now))
            return rc->out->err[0] ? -ECONNREFUSED : -ETIMEDOUT;
        next = race_next(rc, now, busy, next);
        wait = next > now ? (int)(next - now) : 0;
        do {
            r = poll(p, (nfds_t)n, wait);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return -errno;
        now = rv_mono_ms();
        for (k = 0; k < n; k++) {
            if (p[k].revents == 0)
                continue;
            if (map[k] == -1)
                return -ECANCELED;
            if (map[k] == -2)
                race_accept(rc, &rc->lis, rc->port, 1, now);
            else if (map[k] == -3)
                relay_collect(rc);
            else if (map[k] == -6)
                race_accept(rc, &rc->lis6, rc->port6, 0, now);
            else if (map[k] == -10 && race_udp(rc, now))
                return 0;
            else if (map[k] <= -4 && map[k] != -10)
                nat_step(rc, -4 - map[k], p[k].revents);
            else if (map[k] >= 0 && cand_event(rc, &rc->c[map[k]], now))
                return 0;
        }
    }
}

void rv_race_cleanup(struct race *rc)
{
    int i;

    for (i = 0; i < RV_MAX_CANDS; i++)
        if (rc->c[i].fd >= 0) {
            close(rc->c[i].fd);
            rc->c[i].fd = -1;
        }
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
    for (i = 0; i < 2; i++)
        if (rc->nat_fd[i] >= 0) {
            close(rc->nat_fd[i]);
            rc->nat_fd[i] = -1;
        }
    up_close(&rc->up);
    relay_cleanup(rc);
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
    struct pollfd p[4];
    int map[4], n, k, r;
    uint64_t now, until = rv_mono_ms() + RV_PRELUDE_MS, nat_done = 0, next;

    for (;;) {
        uv_run(&rc->loop, UV_RUN_NOWAIT); /* the UDP port query */
        now = rv_mono_ms();
        if (rc->nat_fd[0] < 0 && rc->nat_fd[1] < 0 && nat_done == 0)
            nat_done = now;
        if (now >= until ||
            (nat_done && (!rc->up.sock_open || rc->up.pub_port != 0 ||
                          now >= nat_done + RV_UDP_WAIT_MS)))
            return 0;
        next = loop_next(rc, now);
        if (nat_done && nat_done + RV_UDP_WAIT_MS < next)
            next = nat_done + RV_UDP_WAIT_MS;
        if (until < next)
            next = until;
        n = 0;
        if (rc->req->cancel_fd >= 0) {
            p[n] = (struct pollfd){ rc->req->cancel_fd, POLLIN, 0 };
            map[n++] = -1;
        }
        for (k = 0; k < 2; k++)
            if (rc->nat_fd[k] >= 0) {
                p[n] = (struct pollfd){ rc->nat_fd[k],
                                        rc->nat_sent[k] ? POLLIN : POLLOUT, 0 };
                map[n++] = k;
            }
        p[n] = (struct pollfd){ uv_backend_fd(&rc->loop), POLLIN, 0 };
        map[n++] = -10;
        do {
            r = poll(p, (nfds_t)n, next > now ? (int)(next - now) : 0);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return -errno;
        now = rv_mono_ms();
        for (k = 0; k < n; k++) {
            if (p[k].revents == 0)
                continue;
            if (map[k] == -1)
                return -ECANCELED;
            if (map[k] == -10)
                continue; /* run at the top */
            else
                nat_step(rc, map[k], p[k].revents);
        }
    }
}

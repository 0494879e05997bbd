/*
 * The relay path of the race (rv_int.h), on the race's loop: ask the
 * server for a relay (RequestRelay -> RelayResponse, over a connection
 * of its own, secured as rv_open_server does), then join the relay with
 * the framed RequestRelay{uuid, licence_key}; with a uuid given (the host
 * chose the relay: a RelayResponse answered our punch request) only the
 * joining.  The server connection is an rv_link (rv_link.c) driven by its
 * callbacks.  The relay's name is resolved on libuv's thread pool (DNS
 * blocks); nothing else leaves the loop.  The joined connection becomes
 * the race's relay candidate; a failure sets rc->relay_failed, with the
 * user's message in rc->out->err.
 */
#include "client/rv_int.h"
#include "net.h"
#include "rvsec.h"

enum { RL_SERVER, RL_OFFER, RL_ANSWER, RL_RESOLVE, RL_RELAY };

/*
 * The relay address: relay (the user's, or the one the host or server
 * named), else the server's host with its port + 1.  A named relay that
 * does not resolve here (a name only the server's compose network knows)
 * gives way to the server's address with the relay's port, said in one
 * log line.
 */
static int relay_addr(const struct rv_request *req, const char *relay,
                      struct sockaddr_storage *ss)
{
    struct sockaddr_storage srv;
    char alt[300];
    int r;

    if (relay != NULL && relay[0] != '\0') {
        r = hd_addr_resolve(relay, HD_RELAY_PORT, ss);
        if (r == -EINVAL || r == 0 ||
            hd_relay_fallback(relay, req->server, alt, sizeof(alt)) != 0)
            return r;
        hd_info("rv",
                "relay %s does not resolve here (%s): using the "
                "server's address, %s",
                relay, hd_strerror(r), alt);
        return hd_addr_resolve(alt, HD_RELAY_PORT, ss);
    }
    if ((r = hd_addr_resolve(req->server, RV_DEFAULT_PORT, &srv)) != 0)
        return r;
    *ss = srv;
    hd_addr_set_port((struct sockaddr *)ss,
                     (uint16_t)(hd_addr_port((struct sockaddr *)&srv) +
                                RV_RELAY_PORT_DELTA));
    return 0;
}

static void rl_closed(uv_handle_t *hd)
{
    struct race *rc = hd->data;

    rc->handles--;
}

static void rl_close(struct race *rc)
{
    struct rv_relay *rl = &rc->rl;

    rv_link_close(&rl->lk);
    if (rl->rel_open)
        hd_net_close((uv_handle_t *)&rl->rel, rl_closed);
    if (rl->timer_open)
        hd_net_close((uv_handle_t *)&rl->timer, rl_closed);
    rl->rel_open = rl->timer_open = 0;
}

/* The relay path failed: rl->res->err says why (r when it says nothing). */
static void rl_fail(struct race *rc, int r)
{
    struct rv_relay *rl = &rc->rl;

    if (rl->done)
        return;
    rl->done = 1;
    if (rl->res->err[0] == '\0')
        rv_set_err(rl->res, "relay: %s", rv_reason(r));
    rc->relay_failed = 1;
    hd_info("rv", "%s: relay path failed: %s", rc->req->id, rl->res->err);
    snprintf(rc->out->err, sizeof(rc->out->err), "%s", rl->res->err);
    rl_close(rc);
}

static void rl_timeout(uv_timer_t *t);

static void rl_timer_start(struct race *rc, uint64_t ms)
{
    uv_timer_start(&rc->rl.timer, rl_timeout, ms, 0);
}

static void rl_send_request(struct race *rc)
{
    struct rv_relay *rl = &rc->rl;
    const struct rv_request *req = rc->req;
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RequestRelay rr = HBB__REQUEST_RELAY__INIT;
    int r;

    rr.id = (char *)req->id;
    rr.uuid = rl->uuid;
    rr.relay_server = rl->name;
    rr.licence_key = (char *)(req->key_b64 ? req->key_b64 : "");
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = &rr;
    rl->step = RL_ANSWER;
    if ((r = rv_link_send(&rl->lk, &m, 1)) != 0) {
        rv_set_err(rl->res, "no relay answer from the server %s: %s",
                   req->server, rv_reason(r));
        rl_fail(rc, r);
        return;
    }
    rl_timer_start(rc, RV_ANSWER_MS);
}

static void rl_resolve(struct race *rc);

/* The server's RelayResponse. */
static void rl_answer(struct race *rc, const Hbb__RelayResponse *resp)
{
    struct rv_relay *rl = &rc->rl;
    const struct rv_request *req = rc->req;
    int r;

    if (resp->refuse_reason != NULL && resp->refuse_reason[0] != '\0') {
        rv_set_err(rl->res, "relay refused: %s", resp->refuse_reason);
        rl_fail(rc, -ECONNREFUSED);
        return;
    }
    if (resp->union_case == HBB__RELAY_RESPONSE__UNION_PK) {
        if ((r = rv_check_signed_pk(&resp->pk, req->id, rc->spk, rl->res)) !=
            0) {
            rl_fail(rc, r);
            return;
        }
        if (sodium_memcmp(rc->out->host_pk, rl->res->host_pk,
                          HD_SIGN_PK_BYTES) != 0) {
            rv_set_err(rl->res,
                       "the server vouched for two different keys of %s",
                       req->id);
            rl_fail(rc, HD_EAUTH);
            return;
        }
    }
    if (req->relay == NULL && resp->relay_server && resp->relay_server[0])
        snprintf(rl->name, sizeof(rl->name), "%s", resp->relay_server);
    rv_link_close(&rl->lk);
    rl_resolve(rc);
}

/* One message from the server. */
static void rl_message(struct rv_link *l, Hbb__RendezvousMessage *m)
{
    struct race *rc = l->rc;
    struct rv_relay *rl = &rc->rl;
    int r;

    if (rl->done)
        return;
    if (rl->step == RL_OFFER) {
        if ((r = rv_link_answer(l, m, rl->res)) != 0) {
            rl_fail(rc, r);
            return;
        }
        rl_send_request(rc);
    } else if (m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE) {
        rl_answer(rc, m->relay_response);
    } else {
        hd_debug("rv", "ignoring server message %d", (int)m->union_case);
    }
}

/* The server connection broke (or sent what does not open or parse). */
static void rl_link_error(struct rv_link *l, int r)
{
    struct race *rc = l->rc;
    struct rv_relay *rl = &rc->rl;

    if (rl->done)
        return;
    if (rl->step == RL_OFFER)
        rv_set_err(rl->res, "server %s: %s", rc->req->server, rv_reason(r));
    else
        rv_set_err(rl->res, "no relay answer from the server %s: %s",
                   rc->req->server, rv_reason(r));
    rl_fail(rc, r);
}

static void rl_relay_connected(uv_connect_t *req, int status)
{
    struct race *rc = req->data;
    struct rv_relay *rl = &rc->rl;
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RequestRelay rr = HBB__REQUEST_RELAY__INIT;
    int r, d;

    if (status == UV_ECANCELED || rl->done)
        return;
    if (status != 0) {
        rv_set_err(rl->res, "relay unreachable: cannot connect to %s: %s",
                   rl->as, rv_reason(status));
        rl_fail(rc, status);
        return;
    }
    rr.uuid = rl->uuid;
    rr.licence_key = (char *)(rc->req->key_b64 ? rc->req->key_b64 : "");
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = &rr;
    if ((r = rv_stream_send((uv_stream_t *)&rl->rel, NULL, &m)) != 0) {
        rv_set_err(rl->res, "relay %s: %s", rl->as, rv_reason(r));
        rl_fail(rc, r);
        return;
    }
    if ((d = rv_take_fd((uv_handle_t *)&rl->rel)) < 0) {
        rv_set_err(rl->res, "relay %s: %s", rl->as, hd_strerror(d));
        rl_fail(rc, d);
        return;
    }
    hd_info("rv", "connected to %s through the relay %s", rc->req->id, rl->as);
    rl->done = 1;
    memcpy(rc->out->host_pk, rl->res->host_pk, HD_SIGN_PK_BYTES);
    rl_close(rc);
    if (rv_cand_fd(rc, d, CK_RELAY) != 0)
        rc->relay_failed = 1;
}

/* Open the relay connection and connect it: 0 or an error. */
static int rl_connect(struct race *rc)
{
    struct rv_relay *rl = &rc->rl;

    uv_tcp_init(rc->loop, &rl->rel);
    rl->rel.data = rl->creq.data = rc;
    rl->rel_open = 1;
    rc->handles++;
    return uv_tcp_connect(&rl->creq, &rl->rel,
                          (const struct sockaddr *)&rl->addr,
                          rl_relay_connected);
}

static void rl_resolve_work(uv_work_t *w)
{
    struct race *rc = w->data;

    rc->rl.addr_r = relay_addr(rc->req, rc->rl.name, &rc->rl.addr);
}

static void rl_resolved(uv_work_t *w, int status)
{
    struct race *rc = w->data;
    struct rv_relay *rl = &rc->rl;
    int r;

    rc->handles--; /* the work is over */
    if (rl->done)
        return;
    if (status != 0 || rl->addr_r != 0) {
        rv_set_err(rl->res, "bad relay address '%s'", rl->name);
        rl_fail(rc, status ? status : rl->addr_r);
        return;
    }
    hd_addr_format((struct sockaddr *)&rl->addr, rl->as, sizeof(rl->as));
    rl->step = RL_RELAY;
    if ((r = rl_connect(rc)) != 0) {
        rv_set_err(rl->res, "relay unreachable: cannot connect to %s: %s",
                   rl->as, rv_reason(r));
        rl_fail(rc, r);
        return;
    }
    rl_timer_start(rc, RV_CONNECT_MS);
}

/* Resolve the relay's name (DNS: on the thread pool), then join it. */
static void rl_resolve(struct race *rc)
{
    struct rv_relay *rl = &rc->rl;
    int r;

    rl->step = RL_RESOLVE;
    uv_timer_stop(&rl->timer);
    rl->work.data = rc;
    if ((r = uv_queue_work(rc->loop, &rl->work, rl_resolve_work,
                           rl_resolved)) != 0) {
        rl_fail(rc, r);
        return;
    }
    rc->handles++; /* the race waits for the work as for a handle */
}

static void rl_server_connected(struct rv_link *l, int status)
{
    struct race *rc = l->rc;
    struct rv_relay *rl = &rc->rl;

    if (rl->done)
        return;
    if (status != 0) {
        rv_set_err(rl->res, "server unreachable: cannot connect to %s: %s",
                   rc->req->server, rv_reason(status));
        rl_fail(rc, status);
        return;
    }
    if (rc->spk == NULL) { /* no key: nothing to verify an offer with */
        rl_send_request(rc);
        return;
    }
    rl->step = RL_OFFER;
    rl_timer_start(rc, rv_offer_ms(rc->req));
}

static void rl_timeout(uv_timer_t *t)
{
    struct race *rc = t->data;
    struct rv_relay *rl = &rc->rl;
    const char *srv = rc->req->server;
    int r;

    if (rl->done)
        return;
    switch (rl->step) {
    case RL_SERVER:
        rv_set_err(rl->res, "server unreachable: cannot connect to %s: %s", srv,
                   rv_reason(-ETIMEDOUT));
        break;
    case RL_OFFER:
        if ((r = rv_no_offer(rc->req, rl->res)) == 0) {
            rl_send_request(rc);
            return;
        }
        rl_fail(rc, r);
        return;
    case RL_ANSWER:
        rv_set_err(rl->res, "no relay answer from the server %s: %s", srv,
                   rv_reason(-ETIMEDOUT));
        break;
    default:
        rv_set_err(rl->res, "relay unreachable: cannot connect to %s: %s",
                   rl->as, rv_reason(-ETIMEDOUT));
        break;
    }
    rl_fail(rc, -ETIMEDOUT);
}

int rv_relay_start(struct race *rc, const char *uuid)
{
    static const struct rv_link_cb cb = { rl_server_connected, rl_message,
                                          rl_link_error };
    struct rv_relay *rl = &rc->rl;
    const char *hint = rc->req->relay != NULL ? rc->req->relay : rc->hint;
    int r;

    if (rl->started)
        return 0;
    if ((rl->res = calloc(1, sizeof(*rl->res))) == NULL)
        return -ENOMEM;
    rl->started = 1;
    rl->res->fd = -1;
    memcpy(rl->res->host_pk, rc->out->host_pk, HD_SIGN_PK_BYTES);
    uv_timer_init(rc->loop, &rl->timer);
    rl->timer.data = rc;
    rl->timer_open = 1;
    rc->handles++;
    hd_debug("rv", "%s: asking for the relay (%llu ms)", rc->req->id,
             (unsigned long long)(rv_now(rc) - rc->t0));
    if (uuid != NULL) { /* the host chose the relay: join it */
        snprintf(rl->uuid, sizeof(rl->uuid), "%s", uuid);
        snprintf(rl->name, sizeof(rl->name), "%s", rc->hint ? rc->hint : "");
        rl_resolve(rc);
        return 0;
    }
    /* the user's relay first, as RustDesk's apps; the host meets us there */
    hd_uuid_random(rl->uuid);
    snprintf(rl->name, sizeof(rl->name), "%s", hint ? hint : "");
    rl->step = RL_SERVER;
    if ((r = rv_link_open(rc, &rl->lk, -1, &rc->srv, &cb)) != 0) {
        rv_set_err(rl->res, "server unreachable: cannot connect to %s: %s",
                   rc->req->server, rv_reason(r));
        rl_fail(rc, r);
        return 0;
    }
    rl_timer_start(rc, RV_CONNECT_MS);
    return 0;
}

void rv_relay_cleanup(struct race *rc)
{
    struct rv_relay *rl = &rc->rl;

    if (!rl->started)
        return;
    rl->done = 1;
    rl_close(rc);
    if (rl->step == RL_RESOLVE)
        uv_cancel((uv_req_t *)&rl->work); /* or it ends on its own */
    free(rl->res);
    rl->res = NULL;
}

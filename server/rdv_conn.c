/*
 * Rendezvous connections: struct rdv_conn on TCP (the main port and the
 * NAT test port) or WebSocket, each with a TCP handle and a timer, freed
 * when both are closed; bounded write queues; the secure channel
 * (KeyExchange); the dispatch of each message to its handler.
 */
#include "server/rdv_int.h"

/* ---- connections -------------------------------------------------------- */

static void conn_handle_closed(uv_handle_t *h)
{
    struct rdv_conn *c = h->data;

    if (--c->handles > 0)
        return;
    hd_frame_decoder_cleanup(&c->dec);
    ws_free(c->ws);
    if (c->kx_pending)
        hd_box_key_cleanup(&c->kx);
    hd_secure_cleanup(&c->sec);
    free(c);
}

void rdv_conn_close(struct rdv_conn *c, const char *why)
{
    struct rdv *r = c->rdv;

    if (c->closing)
        return;
    c->closing = 1;
    if (why != NULL)
        hd_info("rdv", "closing %s: %s", c->name, why);
    if (c->in_punch) {
        hmap_del(&r->punch, c->key, sizeof(c->key));
        c->in_punch = 0;
    }
    if (c->peer != NULL && c->peer->conn == c) {
        c->peer->conn = NULL;
        c->peer->conn_secure = 0;
    }
    c->peer = NULL;
    if (c->counted)
        limit_count_del(&r->per_ip, c->ipkey, c->ipkey_len);
    c->counted = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->stats.conns_active--;
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void conn_write_raw(struct rdv_conn *c, const uint8_t *data, size_t n)
{
    int rc;

    if (c->closing)
        return;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >
        RDV_MAX_WRITE_QUEUE) {
        c->rdv->stats.rej_slow++;
        rdv_reject(c->rdv, &c->addr.sa, "does not read its replies", NULL);
        rdv_conn_close(c, "peer does not read its replies");
        return;
    }
    if ((rc = hd_net_write((uv_stream_t *)&c->tcp, data, n, NULL)) != 0)
        rdv_conn_close(c, hd_strerror(rc));
}

/* ws callback: bytes to put on the wire. */
static int conn_ws_write(void *ud, const uint8_t *data, size_t n)
{
    struct rdv_conn *c = ud;

    conn_write_raw(c, data, n);
    return c->closing ? -EPIPE : 0;
}

/* Send one message on a connection: framed (and sealed) or WebSocket. */
void rdv_conn_send(struct rdv_conn *c, const Hbb__RendezvousMessage *m)
{
    uint8_t buf[4 + RDV_MAX_FRAME + crypto_secretbox_MACBYTES];
    uint8_t plain[RDV_MAX_FRAME];
    size_t n, hdr;
    uint8_t *payload = buf + 4;

    if (c->closing)
        return;
    if ((n = rdv_pack_msg(m, plain, sizeof(plain))) == 0) {
        hd_error("rdv", "reply to %s too large; dropped", c->name);
        return;
    }
    if (c->kind == CONN_WS) {
        ws_send_binary(c->ws, plain, n);
        return;
    }
    if (c->secured && n > 1) {
        hd_secure_seal(&c->sec, plain, n, payload);
        n += crypto_secretbox_MACBYTES;
    } else {
        memcpy(payload, plain, n);
    }
    hdr = hd_frame_header(buf, n); /* writes 1-4 bytes at buf */
    if (hdr != 4)
        memmove(buf + hdr, payload, n);
    conn_write_raw(c, buf, hdr + n);
}

/* Deliver m to the waiting connection of address a (the viewer). */
int rdv_send_to_waiting(struct rdv *r, const struct sockaddr *a,
                        const Hbb__RendezvousMessage *m)
{
    uint8_t key[18];
    struct rdv_conn *c;

    rdv_addr_key(a, key);
    c = hmap_del(&r->punch, key, sizeof(key));
    if (c == NULL)
        return -ENOENT;
    c->in_punch = 0;
    rdv_conn_send(c, m);
    return 0;
}

/* A datagram to a registered host (its address came with its key). */
static void udp_send(struct rdv *r, const struct sockaddr *to,
                     const Hbb__RendezvousMessage *m)
{
    uint8_t buf[RDV_MAX_FRAME];
    size_t n = rdv_pack_msg(m, buf, sizeof(buf));

    if (n > 0)
        hd_net_udp_send(&r->udp, to, buf, n);
}

/*
 * A reply to the source of the datagram being handled.  UDP sources are
 * unverified (spoofable), so a reply is never larger than the request:
 * the server cannot be used to amplify traffic towards a victim.
 */
void rdv_udp_reply(struct rdv *r, const struct sockaddr *to,
                   const Hbb__RendezvousMessage *m)
{
    uint8_t buf[RDV_MAX_FRAME];
    size_t n = rdv_pack_msg(m, buf, sizeof(buf));

    if (n == 0)
        return;
    if (n > r->udp_request_len) {
        r->stats.udp_replies_suppressed++;
        return;
    }
    hd_net_udp_send(&r->udp, to, buf, n);
}

/* Send to a registered host: over UDP while its heartbeats come that way,
 * else over its TCP registration. */
void rdv_send_to_peer(struct rdv *r, struct peer *p,
                      const Hbb__RendezvousMessage *m)
{
    if (peer_prefers_tcp(p, uv_now(r->loop)))
        rdv_conn_send(p->conn, m);
    else
        udp_send(r, &p->addr.sa, m);
}

void rdv_wait_for_answer(struct rdv_conn *c, const char *id)
{
    struct rdv *r = c->rdv;
    struct rdv_conn *old;

    snprintf(c->want_id, sizeof(c->want_id), "%s", id != NULL ? id : "");
    if (c->in_punch)
        return;
    /* A newer attempt from the same address replaces the older one. */
    old = hmap_del(&r->punch, c->key, sizeof(c->key));
    if (old != NULL)
        old->in_punch = 0;
    if (hmap_put(&r->punch, c) == 0)
        c->in_punch = 1;
}

/* Signed IdPk for the viewer, or an empty buffer (see PROTOCOL.md). */
void rdv_signed_pk(struct rdv *r, const char *version, const char *id,
                   ProtobufCBinaryData *out, uint8_t **to_free)
{
    struct peer *p;

    out->data = NULL;
    out->len = 0;
    *to_free = NULL;
    if (version == NULL || version[0] == '\0' || r->cfg->key == NULL)
        return;
    if ((p = peer_find(&r->peers, id)) == NULL || p->pk_len == 0)
        return;
    /* hd_kx: the signer (we) offers per-direction keys on the rendezvous
     * channel, which a man in the middle cannot strip from here; a
     * homedesk viewer that got a legacy channel then knows it was
     * downgraded (RustDesk apps ignore the field) */
    if (hd_idpk_sign_kx(r->cfg->key, id, p->pk, p->pk_len,
                        r->cfg->key_exchange ? HD_KX_SPLIT : 0, to_free,
                        &out->len) == 0)
        out->data = *to_free;
}

/*
 * One info line per second at most for each kind of refused request (a
 * flood must not flood the log): what was refused, from where, the quoted
 * ID, and how many of that kind since the last line.
 */
void rdv_log_refused(struct rdv *r, struct logcap *cap, const char *what,
                     const char *from_s, const char *id_q)
{
    uint64_t now = uv_now(r->loop);

    cap->since++;
    if (cap->logged_ms != 0 && now - cap->logged_ms < 1000)
        return;
    hd_info("rdv", "%s %s (id %s; %llu refused like this since the last line)",
            what, from_s, id_q, (unsigned long long)cap->since);
    cap->logged_ms = now;
    cap->since = 0;
}

/* ---- secure channel (KeyExchange) ------------------------------------- */

/*
 * Offer the channel: KeyExchange{keys = [sign(our box pk)], hd_kx = the
 * signed offer of split keys (RustDesk clients ignore it and answer in
 * the legacy mode)}.
 */
static int conn_offer_key_exchange(struct rdv_conn *c)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__KeyExchange kx = HBB__KEY_EXCHANGE__INIT;
    ProtobufCBinaryData key;
    uint8_t rdv_signed_pk[crypto_sign_BYTES + 32], offer[HD_SIGNATURE_BYTES];
    unsigned long long slen;
    int rc;

    if ((rc = hd_box_key_generate(&c->kx)) != 0)
        return rc;
    c->kx_pending = 1;
    crypto_sign(rdv_signed_pk, &slen, c->kx.pk, 32, c->rdv->cfg->key->sk);
    hd_kx_offer_sign(c->rdv->cfg->key, c->kx.pk, offer);
    key.data = rdv_signed_pk;
    key.len = (size_t)slen;
    kx.n_keys = 1;
    kx.keys = &key;
    kx.hd_kx.data = offer;
    kx.hd_kx.len = sizeof(offer);
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE;
    m.key_exchange = &kx;
    rdv_conn_send(c, &m);
    return 0;
}

static int on_key_exchange(struct rdv_conn *c, const Hbb__KeyExchange *kx)
{
    int rc;

    if (!c->kx_pending || c->got_frame || kx->n_keys != 2)
        return HD_EPROTO;
    rc = hd_secure_host_accept(&c->kx, kx->keys[0].data, kx->keys[0].len,
                               kx->keys[1].data, kx->keys[1].len, &c->sec);
    hd_box_key_cleanup(&c->kx);
    c->kx_pending = 0;
    if (rc != 0)
        return rc;
    c->secured = 1;
    c->rdv->stats.secure_channels++;
    hd_debug("rdv", "secure channel with %s (%s)", c->name,
             c->sec.legacy ? "legacy encryption: a RustDesk app"
                           : "per-direction keys");
    return 0;
}

/* ---- dispatch ----------------------------------------------------------- */

/* One message on a TCP or WebSocket connection.  Returns 0 or an error
 * that closes the connection. */
static int conn_handle_msg(struct rdv_conn *c, const uint8_t *data, size_t n)
{
    struct rdv *r = c->rdv;
    uint8_t plain[RDV_MAX_FRAME];
    Hbb__RendezvousMessage *m;
    int rc = 0;

    if (c->secured && n > 1) {
        if (n < crypto_secretbox_MACBYTES ||
            hd_secure_open(&c->sec, data, n, plain) != 0) {
            r->stats.rej_bad_proto++;
            rdv_reject(r, &c->addr.sa, "undecryptable message", NULL);
            return HD_ECRYPTO;
        }
        data = plain;
        n -= crypto_secretbox_MACBYTES;
    }
    m = hbb__rendezvous_message__unpack(NULL, n, data);
    if (m == NULL) {
        r->stats.rej_bad_proto++;
        rdv_reject(r, &c->addr.sa, "not a rendezvous message", NULL);
        return HD_EPROTO;
    }
    if (c->kind == CONN_NAT) {
        /* one request per connection */
        if (m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST)
            rdv_on_test_nat(r, c);
        else if (m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_ONLINE_REQUEST)
            rdv_on_online_request(r, c, m->online_request);
        else
            rc = HD_EPROTO;
        goto out;
    }
    switch (m->union_case) {
    case HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE:
        rc = on_key_exchange(c, m->key_exchange);
        if (rc != 0) {
            r->stats.rej_key_exchange++;
            rdv_reject(r, &c->addr.sa, "failed key exchange", NULL);
        }
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST:
        rdv_on_punch_request(r, c, &c->addr.sa, m->punch_hole_request);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY:
        rdv_on_request_relay(r, c, m->request_relay);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE:
        rdv_on_relay_response(r, c, m->relay_response);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_SENT: {
        Hbb__PunchHoleSent *s = m->punch_hole_sent;
        rdv_on_host_ready(r, c, &c->addr.sa, &s->socket_addr, NULL, s->id,
                          s->relay_server, s->version, s->nat_type,
                          s->upnp_port, &s->socket_addr_v6);
        break;
    }
    case HBB__RENDEZVOUS_MESSAGE__UNION_LOCAL_ADDR: {
        Hbb__LocalAddr *la = m->local_addr;
        rdv_on_host_ready(r, c, &c->addr.sa, &la->socket_addr, &la->local_addr,
                          la->id, la->relay_server, la->version, 0, 0, NULL);
        break;
    }
    case HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST:
        rdv_on_test_nat(r, c);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_ONLINE_REQUEST:
        rdv_on_online_request(r, c, m->online_request);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER:
        rdv_on_register_peer(r, c, &c->addr.sa, m->register_peer);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK:
        rdv_on_register_pk(r, c, &c->addr.sa, m->register_pk);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_HC:
        break; /* health check: the connection is alive */
    default: {
        char why[64];

        r->stats.rej_unexpected++;
        rdv_reject(r, &c->addr.sa, "unexpected message", NULL);
        snprintf(why, sizeof(why), "unexpected message %d", (int)m->union_case);
        rdv_conn_close(c, why); /* logs the precise reason once */
        rc = HD_EPROTO;
        break;
    }
    }
out:
    c->got_frame = 1;
    hbb__rendezvous_message__free_unpacked(m, NULL);
    return rc;
}

static void conn_timeout(uv_timer_t *t)
{
    struct rdv_conn *c = t->data;

    c->rdv->stats.rej_timeout++;
    if (!c->got_frame) /* an idle client going quiet is normal */
        rdv_reject(c->rdv, &c->addr.sa, "no request in time", NULL);
    rdv_conn_close(c, c->got_frame ? "idle timeout" : "no request in time");
}

static void conn_touch(struct rdv_conn *c)
{
    uv_timer_start(&c->timer, conn_timeout, c->rdv->cfg->idle_ms, 0);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct rdv_conn *c = h->data;

    if (c->kind == CONN_WS) {
        buf->base = (char *)c->rdv->udp_buf;
        buf->len = sizeof(c->rdv->udp_buf);
        return;
    }
    hd_net_frame_buf(&c->dec, suggested, buf);
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct rdv_conn *c = s->data;
    const uint8_t *payload;
    size_t len;
    int rc;

    if (nread < 0) {
        if (nread == UV_ENOBUFS) {
            c->rdv->stats.rej_too_big++;
            rdv_reject(c->rdv, &c->addr.sa, "message too large", NULL);
            rdv_conn_close(c, "message too large");
        } else {
            /* a peer going away is normal: not worth an info line */
            hd_debug("rdv", "%s: %s", c->name, uv_strerror((int)nread));
            rdv_conn_close(c, NULL);
        }
        return;
    }
    if (nread == 0)
        return;
    conn_touch(c);
    if (c->kind == CONN_WS) {
        if ((rc = ws_feed(c->ws, (const uint8_t *)buf->base, (size_t)nread)) !=
            0) {
            c->rdv->stats.rej_bad_frame++;
            rdv_reject(c->rdv, &c->addr.sa, "bad WebSocket frame", NULL);
            rdv_conn_close(c, hd_strerror(rc));
        }
        return;
    }
    hd_frame_decoder_commit(&c->dec, (size_t)nread);
    while (!c->closing &&
           (rc = hd_frame_decoder_next(&c->dec, &payload, &len)) == 1) {
        if ((rc = conn_handle_msg(c, payload, len)) != 0) {
            rdv_conn_close(c, hd_strerror(rc));
            return;
        }
        if (c->kind == CONN_NAT) {
            uv_read_stop(s); /* one request per connection */
            return;
        }
    }
    if (rc < 0 && !c->closing) {
        if (rc == HD_ETOOBIG)
            c->rdv->stats.rej_too_big++;
        else
            c->rdv->stats.rej_bad_frame++;
        rdv_reject(c->rdv, &c->addr.sa,
                   rc == HD_ETOOBIG ? "message too large" : "bad frame", NULL);
        rdv_conn_close(c, hd_strerror(rc));
    }
}

/* ws callbacks */
static void conn_ws_message(void *ud, const uint8_t *data, size_t n)
{
    struct rdv_conn *c = ud;
    int rc;

    if (c->closing)
        return;
    if (!c->got_frame && c->rdv->cfg->trusted_proxy != NULL) {
        /* behind a trusted reverse proxy: the client is who it says */
        char ip[HD_ADDR_STRLEN];
        struct sockaddr_storage ss;
        uint16_t port = hd_addr_port(&c->addr.sa);

        if (ws_client_ip(c->ws, &c->addr.sa, c->rdv->cfg->trusted_proxy, ip,
                         sizeof(ip)) == 0 &&
            hd_addr_parse(ip, port, &ss) == 0) {
            rdv_set_from_storage(&c->addr, (struct sockaddr *)&ss);
            rdv_addr_key(&c->addr.sa, c->key);
            hd_addr_format(&c->addr.sa, c->name, sizeof(c->name));
        }
    }
    if ((rc = conn_handle_msg(c, data, n)) != 0)
        rdv_conn_close(c, hd_strerror(rc));
}

static void conn_ws_close(void *ud, int reason)
{
    rdv_conn_close(ud, reason ? hd_strerror(reason) : NULL);
}

static void on_accept(uv_stream_t *lis, int status, enum conn_kind kind)
{
    struct rdv *r = lis->data;
    struct rdv_conn *c;
    struct sockaddr_storage ss;
    int rc;

    if (status != 0) {
        hd_warn("rdv", "accept: %s", uv_strerror(status));
        return;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->rdv = r;
    c->kind = kind;
    uv_tcp_init(r->loop, &c->tcp);
    uv_timer_init(r->loop, &c->timer);
    c->handles = 2;
    c->tcp.data = c->timer.data = c;
    hd_frame_decoder_init(&c->dec, RDV_MAX_FRAME);
    c->next = r->conns;
    if (r->conns)
        r->conns->prev = c;
    r->conns = c;
    r->stats.conns_active++;
    if ((rc = uv_accept(lis, (uv_stream_t *)&c->tcp)) != 0) {
        rdv_conn_close(c, NULL);
        return;
    }
    hd_net_peer_addr(&c->tcp, &ss);
    rdv_set_from_storage(&c->addr, (struct sockaddr *)&ss);
    rdv_addr_key(&c->addr.sa, c->key);
    hd_addr_format(&c->addr.sa, c->name, sizeof(c->name));
    if (r->stats.conns_active > r->cfg->max_conns) {
        r->stats.rej_too_many_conns++;
        rdv_reject(r, &c->addr.sa, "too many connections", NULL);
        rdv_conn_close(c, "too many connections");
        return;
    }
    /* per source address (but for a trusted reverse proxy: its WebSocket
     * clients all come from its address) */
    if (!(kind == CONN_WS && r->cfg->trusted_proxy != NULL)) {
        c->ipkey_len = (uint8_t)limit_addr_key(&c->addr.sa, c->ipkey);
        if (!limit_count_add(&r->per_ip, c->ipkey, c->ipkey_len)) {
            r->stats.rej_too_many_conns++;
            rdv_reject(r, &c->addr.sa, "too many connections from there", NULL);
            rdv_conn_close(c, "too many connections from this address");
            return;
        }
        c->counted = 1;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, conn_timeout, r->cfg->first_frame_ms, 0);
    if (kind == CONN_WS) {
        struct ws_config wc = { .max_message = RDV_MAX_FRAME,
                                .peer_desc = c->name };
        struct ws_callbacks cb = { .on_write = conn_ws_write,
                                   .on_message = conn_ws_message,
                                   .on_close = conn_ws_close };

        if ((rc = ws_new(&wc, &cb, c, &c->ws)) != 0) {
            rdv_conn_close(c, hd_strerror(rc));
            return;
        }
    }
    if ((rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read)) !=
        0) {
        rdv_conn_close(c, uv_strerror(rc));
        return;
    }
    hd_debug("rdv", "connection from %s on %s", c->name,
             kind == CONN_MAIN  ? "tcp"
             : kind == CONN_NAT ? "nat"
                                : "ws");
    if (kind == CONN_MAIN && r->cfg->key_exchange && r->cfg->key != NULL &&
        conn_offer_key_exchange(c) != 0)
        rdv_conn_close(c, "key exchange setup failed");
}

void rdv_on_accept_main(uv_stream_t *s, int status)
{
    on_accept(s, status, CONN_MAIN);
}

void rdv_on_accept_nat(uv_stream_t *s, int status)
{
    on_accept(s, status, CONN_NAT);
}

void rdv_on_accept_ws(uv_stream_t *s, int status)
{
    on_accept(s, status, CONN_WS);
}

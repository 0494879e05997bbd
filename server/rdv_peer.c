/*
 * Rendezvous peers: RegisterPeer (heartbeats), RegisterPk, the NAT type
 * test (TCP and UDP) and OnlineRequest (budgeted per source).
 */
#include "server/rdv_int.h"

void rdv_on_test_nat(struct rdv *r, struct rdv_conn *c)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__TestNatResponse t = HBB__TEST_NAT_RESPONSE__INIT;
    Hbb__ConfigUpdate cu = HBB__CONFIG_UPDATE__INIT;

    r->stats.nat_tests++;
    cu.serial = r->cfg->serial;
    cu.n_rendezvous_servers = r->cfg->n_rendezvous_servers;
    cu.rendezvous_servers = (char **)r->cfg->rendezvous_servers;
    t.port = ntohs(c->addr.sa.sa_family == AF_INET ? c->addr.in.sin_port
                                                   : c->addr.in6.sin6_port);
    t.cu = &cu;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_RESPONSE;
    m.test_nat_response = &t;
    rdv_conn_send(c, &m);
}

/*
 * TestNatRequest over UDP (homedesk extension): the port this datagram
 * came from, so a viewer learns its public UDP port for UDP punching (a
 * STUN binding request, in effect), and the return-routability cookie
 * for it (rdv_int.h) when the request is large enough.  The answer carries
 * no ConfigUpdate and, like every UDP answer, is never larger than the
 * request.
 */
void rdv_on_udp_test_nat(struct rdv *r, const struct sockaddr *from)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__TestNatResponse t = HBB__TEST_NAT_RESPONSE__INIT;
    uint8_t cookie[RDV_COOKIE_LEN];

    r->stats.nat_tests++;
    t.port = hd_addr_port(from);
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_RESPONSE;
    m.test_nat_response = &t;
    /* the cookie when the request made room for it (hd_pad) */
    rdv_udp_cookie(r, from, cookie);
    t.hd_cookie.data = cookie;
    t.hd_cookie.len = sizeof(cookie);
    if (hbb__rendezvous_message__get_packed_size(&m) > r->udp_request_len)
        t.hd_cookie.len = 0;
    rdv_udp_reply(r, from, &m);
}

/*
 * OnlineRequest: one bit per ID asked about.  With a server key, a request
 * that names it (licence_key, homedesk extension) gets the budget of
 * RDV_ONLINE_BURST IDs; one without (RustDesk apps cannot send it) the
 * smaller keyless budget and at most RDV_ONLINE_KEYLESS_MAX IDs looked up
 * (the rest answered offline); a wrong key is refused as a punch request
 * with one is.  The answer always has a bit for every ID asked about:
 * RustDesk's client reads as many as it asked for.
 */
void rdv_on_online_request(struct rdv *r, struct rdv_conn *c,
                           const Hbb__OnlineRequest *req)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__OnlineResponse resp = HBB__ONLINE_RESPONSE__INIT;
    /* a frame of RDV_MAX_FRAME holds fewer IDs than it has bits */
    uint8_t states[RDV_MAX_FRAME / 8], src_key[17];
    size_t n = req->n_peers, look;
    uint64_t now = uv_now(r->loop);
    const char *key = r->cfg->licence_key;
    int keyed = key == NULL || key[0] == '\0';
    char id_q[HD_LOG_QUOTE_MAX];

    r->stats.online_requests++;
    if (n > sizeof(states) * 8)
        n = sizeof(states) * 8;
    if (!keyed && req->licence_key != NULL && req->licence_key[0] != '\0') {
        if (strcmp(req->licence_key, key) != 0) {
            r->stats.punch_key_mismatch++;
            rdv_reject(r, &c->addr.sa, "online query with a wrong key", NULL);
            hd_info("rdv", "online query with a wrong key from %s", c->name);
            rdv_conn_close(c, NULL);
            return;
        }
        keyed = 1;
    }
    look = keyed ? RDV_MAX_ONLINE_QUERY : RDV_ONLINE_KEYLESS_MAX;
    if (look > n)
        look = n;
    if (!limit_take(keyed ? &r->online_src : &r->online_keyless, src_key,
                    limit_addr_key(&c->addr.sa, src_key),
                    (double)(look + RDV_ONLINE_REQ_COST), now)) {
        r->stats.rej_online_budget++;
        rdv_reject(r, &c->addr.sa,
                   keyed ? "online queries over budget"
                         : "online queries (no key) over budget",
                   NULL);
        rdv_log_refused(r,
                        keyed ? &r->log_online_budget : &r->log_online_keyless,
                        keyed ? "online query over budget from"
                              : "online query (no key) over budget from",
                        c->name, hd_log_quote(req->id, id_q, sizeof(id_q)));
        rdv_conn_close(c, NULL);
        return;
    }
    memset(states, 0, (n + 7) / 8);
    for (size_t i = 0; i < look; i++) {
        struct peer *p = peer_find(&r->peers, req->peers[i]);
        if (p != NULL && peer_is_online(p, now))
            states[i / 8] |= (uint8_t)(1u << (7 - i % 8));
    }
    resp.states.data = states;
    resp.states.len = (n + 7) / 8;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_ONLINE_RESPONSE;
    m.online_response = &resp;
    rdv_conn_send(c, &m);
}

static void reply_register_peer(struct rdv *r, struct rdv_conn *c,
                                const struct sockaddr *from, int request_pk,
                                int client_serial)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPeerResponse resp = HBB__REGISTER_PEER_RESPONSE__INIT;

    resp.request_pk = request_pk;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER_RESPONSE;
    m.register_peer_response = &resp;
    if (c != NULL)
        rdv_conn_send(c, &m);
    else
        rdv_udp_reply(r, from, &m);
    if (r->cfg->serial > client_serial && c != NULL) {
        /* Over UDP a ConfigUpdate may be larger than the request: only
         * sent on a connection, never to an unverified source. */
        Hbb__RendezvousMessage u = HBB__RENDEZVOUS_MESSAGE__INIT;
        Hbb__ConfigUpdate cu = HBB__CONFIG_UPDATE__INIT;

        cu.serial = r->cfg->serial;
        cu.n_rendezvous_servers = r->cfg->n_rendezvous_servers;
        cu.rendezvous_servers = (char **)r->cfg->rendezvous_servers;
        u.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_CONFIGURE_UPDATE;
        u.configure_update = &cu;
        rdv_conn_send(c, &u);
    }
}

void rdv_on_register_peer(struct rdv *r, struct rdv_conn *c,
                          const struct sockaddr *from,
                          const Hbb__RegisterPeer *rp)
{
    int request_pk, tcp_extra;
    struct peer *p, *known;
    uint64_t now;

    if (rp->id == NULL || rp->id[0] == '\0')
        return;
    r->stats.heartbeats++;
    now = uv_now(r->loop);
    /* over TCP while UDP works: a keepalive only, the UDP address stays;
     * over the connection that registered the key: proven already */
    known = c != NULL ? peer_find(&r->peers, rp->id) : NULL;
    tcp_extra = known != NULL && known->last_udp_ms != 0 &&
                now - known->last_udp_ms < PEER_REG_TIMEOUT_MS;
    if (known != NULL && known->conn == c)
        from = &known->addr.sa;
    p = peer_heartbeat(&r->peers, rp->id, from, now, tcp_extra, &request_pk);
    if (p != NULL && c == NULL && !request_pk)
        p->last_udp_ms = now;
    /* A heartbeat never takes over the TCP link of an ID: only a
     * RegisterPk (with the uuid) does, in rdv_on_register_pk. */
    reply_register_peer(r, c, from, request_pk, rp->serial);
}

void rdv_on_register_pk(struct rdv *r, struct rdv_conn *c,
                        const struct sockaddr *from, const Hbb__RegisterPk *rk)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPkResponse resp = HBB__REGISTER_PK_RESPONSE__INIT;
    enum peer_pk_result res;
    struct peer *known;

    r->stats.register_pk++;
    /* On a secure link, a host proving itself again (same uuid and key):
     * the link becomes the ID's, with no change to its address (its UDP
     * one, to punch to) and without counting toward the per-ID rate. */
    if (c != NULL && c->secured &&
        (known = peer_same_owner(&r->peers, rk->id, rk->uuid.data, rk->uuid.len,
                                 rk->pk.data, rk->pk.len)) != NULL) {
        res = PEER_PK_OK;
        goto bind;
    }
    /* over a host's TCP link from the IP it registered from: the address
     * known (its UDP one, to punch to) stays */
    if (c != NULL && rk->id != NULL &&
        (known = peer_find(&r->peers, rk->id)) != NULL &&
        known->addr.sa.sa_family != 0 && rdv_same_ip(&known->addr.sa, from))
        from = &known->addr.sa;
    res = peer_register_pk(&r->peers, rk->id ? rk->id : "", rk->uuid.data,
                           rk->uuid.len, rk->pk.data, rk->pk.len, from,
                           uv_now(r->loop));
    if (res == PEER_PK_IGNORE)
        return;
    if (res == PEER_PK_UUID_MISMATCH) { /* someone else's ID */
        char id_q[HD_LOG_QUOTE_MAX];

        rdv_reject(r, from, "ID registered by another device",
                   hd_log_quote(rk->id ? rk->id : "", id_q, sizeof(id_q)));
    }
    if (res == PEER_PK_OK && c == NULL &&
        (known = peer_find(&r->peers, rk->id)) != NULL)
        known->last_udp_ms = uv_now(r->loop); /* its UDP address, proven */
bind:
    if (res == PEER_PK_OK && c != NULL) {
        struct peer *p = peer_find(&r->peers, rk->id);
        if (p != NULL) {
            if (p->conn != NULL && p->conn != c)
                p->conn->peer = NULL;
            p->conn = c;
            p->conn_secure = c->secured;
            c->peer = p;
        }
    }
    resp.result = (Hbb__RegisterPkResponse__Result)res;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK_RESPONSE;
    m.register_pk_response = &resp;
    if (c != NULL)
        rdv_conn_send(c, &m);
    else
        rdv_udp_reply(r, from, &m);
}

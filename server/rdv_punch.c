/*
 * Rendezvous punch hole and relay requests.  A connection that asked for
 * a punch hole or a relay waits in the punch map, keyed by its address,
 * until the host's answer comes back (PunchHoleSent, LocalAddr,
 * RelayResponse carry that address mangled).  Messages to a host go by UDP
 * to the address its heartbeats come from, or over its TCP connection
 * when it registered over TCP.  Requests are budgeted per source and per
 * target ID (rdv_int.h).
 */
#include "server/rdv_int.h"

/* ---- message handlers ------------------------------------------------- */

/* Note a refused punch request of c (its ID asked for) for the admin
 * page. */
static void punch_note(struct rdv_conn *c, const char *reason)
{
    char id_q[HD_LOG_QUOTE_MAX];

    rdv_reject(c->rdv, &c->addr.sa, reason,
               hd_log_quote(c->want_id, id_q, sizeof(id_q)));
}

static void punch_failure(struct rdv *r, struct rdv_conn *c,
                          const struct sockaddr *udp_from,
                          Hbb__PunchHoleResponse__Failure failure)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__PunchHoleResponse ph = HBB__PUNCH_HOLE_RESPONSE__INIT;

    ph.failure = failure;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE;
    m.punch_hole_response = &ph;
    /* for the admin page; a UDP source is unproven: not listed */
    if (c != NULL &&
        failure == HBB__PUNCH_HOLE_RESPONSE__FAILURE__LICENSE_MISMATCH)
        punch_note(c, "wrong key");
    if (c != NULL)
        rdv_conn_send(c, &m);
    else
        rdv_udp_reply(r, udp_from, &m);
}

/* Over budget: the viewer is told to come back later (clients show
 * other_failure as the reason). */
static void punch_busy(struct rdv_conn *c)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__PunchHoleResponse ph = HBB__PUNCH_HOLE_RESPONSE__INIT;

    ph.failure = HBB__PUNCH_HOLE_RESPONSE__FAILURE__OFFLINE;
    ph.other_failure = "Too many connection attempts; try again in a minute";
    punch_note(c, "punch requests over budget");
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE;
    m.punch_hole_response = &ph;
    rdv_conn_send(c, &m);
}

/*
 * The addresses a PunchHoleRequest gives besides the one the server sees,
 * copied into the host's PunchHole only when proven: udp_port with the
 * cookie our UDP TestNatResponse gave for (the viewer's IP, udp_port)
 * (rdv_int.h), socket_addr_v6 only when the request came over IPv6 from
 * that same address.  Unproven, the host would aim its probes and SYNs at
 * whoever the viewer named (issue 11 finding 1): they are dropped, with
 * one rate-limited log line; the session then takes another path.
 */
static void punch_addr_proven(struct rdv *r, const struct sockaddr *from,
                              const Hbb__PunchHoleRequest *ph,
                              Hbb__PunchHole *hole)
{
    struct sockaddr_storage v6, udp;
    const char *dropped = NULL;

    if (ph->udp_port > 0 && ph->udp_port <= 65535) {
        memcpy(&udp, from, hd_addr_len(from));
        hd_addr_set_port((struct sockaddr *)&udp, (uint16_t)ph->udp_port);
        if (rdv_udp_cookie_ok(r, (struct sockaddr *)&udp,
                              ph->hd_udp_cookie.data, ph->hd_udp_cookie.len))
            hole->udp_port = ph->udp_port;
        else
            dropped = "udp_port without its cookie";
    }
    if (ph->socket_addr_v6.len > 0) {
        if (from->sa_family == AF_INET6 &&
            hd_addr_unmangle(ph->socket_addr_v6.data, ph->socket_addr_v6.len,
                             &v6) == 0 &&
            v6.ss_family == AF_INET6 &&
            memcmp(&((struct sockaddr_in6 *)&v6)->sin6_addr,
                   &((const struct sockaddr_in6 *)from)->sin6_addr, 16) == 0)
            hole->socket_addr_v6 = ph->socket_addr_v6;
        else
            dropped = dropped ? "udp_port and socket_addr_v6 unproven"
                              : "socket_addr_v6 not the address seen";
    }
    if (dropped != NULL) {
        char from_s[HD_ADDR_STRLEN], id_q[HD_LOG_QUOTE_MAX], what[96];

        r->stats.dropped_unproven++;
        hd_log_quote(ph->id, id_q, sizeof(id_q));
        rdv_reject(r, from, dropped, id_q);
        snprintf(what, sizeof(what), "punch request: %s (not passed on) from",
                 dropped);
        rdv_log_refused(r, &r->log_unproven, what,
                        hd_addr_format(from, from_s, sizeof(from_s)), id_q);
    }
}

/*
 * PunchHoleRequest from viewer A (connection c, or UDP from `from`):
 * check the key and the host, then ask the host to punch or to tell its
 * LAN address.
 */
void rdv_on_punch_request(struct rdv *r, struct rdv_conn *c,
                          const struct sockaddr *from,
                          const Hbb__PunchHoleRequest *ph)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__PunchHole hole = HBB__PUNCH_HOLE__INIT;
    Hbb__FetchLocalAddr fla = HBB__FETCH_LOCAL_ADDR__INIT;
    uint8_t mangled[HD_ADDR_MANGLED_MAX];
    uint64_t now = uv_now(r->loop);
    const char *key = r->cfg->licence_key;
    char from_s[HD_ADDR_STRLEN], id_q[HD_LOG_QUOTE_MAX];
    uint8_t src_key[17];
    struct peer *p;
    int peer_lan, me_lan, same_intranet, ws = c && c->kind == CONN_WS;
    Hbb__NatType nat = ph->nat_type;
    const char *relay;
    int ex, forced_relay;

    hd_addr_format(from, from_s, sizeof(from_s));
    hd_log_quote(ph->id, id_q, sizeof(id_q));
    if (c != NULL)
        rdv_wait_for_answer(c, ph->id);
    if (key != NULL && key[0] != '\0' &&
        (ph->licence_key == NULL || strcmp(ph->licence_key, key) != 0)) {
        r->stats.punch_key_mismatch++;
        if (c != NULL) /* fixed format for fail2ban (packaging/fail2ban/):
                        * only for a source TCP has verified */
            hd_warn("rdv", "key mismatch from %s (punch to id %s)", from_s,
                    id_q);
        else
            hd_debug("rdv", "key mismatch in a UDP punch request (to id %s)",
                     id_q);
        punch_failure(r, c, from,
                      HBB__PUNCH_HOLE_RESPONSE__FAILURE__LICENSE_MISMATCH);
        return;
    }
    if (c == NULL) {
        /* Over UDP the source address is unproven (spoofable): a host told
         * to punch towards it would flood whoever owns it.  Clients ask
         * over TCP (RustDesk apps always do), where the server sees the
         * real address. */
        r->stats.rej_udp_punch++;
        rdv_log_refused(r, &r->log_udp_punch,
                        "punch request over UDP (unverified source) from",
                        from_s, id_q);
        return;
    }
    if (!limit_take(&r->punch_src, src_key, limit_addr_key(from, src_key), 1,
                    now) ||
        !limit_take(&r->punch_id, ph->id, strlen(ph->id), 1, now)) {
        r->stats.rej_punch_budget++;
        rdv_log_refused(r, &r->log_punch_budget,
                        "punch request over budget from", from_s, id_q);
        punch_busy(c);
        return;
    }
    p = peer_find(&r->peers, ph->id);
    if (p == NULL || !peer_is_online(p, now)) {
        ex = p != NULL ? 1 : peer_exists(&r->peers, ph->id);
        if (ex > 0) {
            r->stats.punch_offline++;
            hd_info("rdv", "punch %s -> %s: host offline", from_s, id_q);
            punch_failure(r, c, from,
                          HBB__PUNCH_HOLE_RESPONSE__FAILURE__OFFLINE);
        } else {
            r->stats.punch_id_not_exist++;
            hd_info("rdv", "punch %s -> %s: no such id", from_s, id_q);
            punch_failure(r, c, from,
                          HBB__PUNCH_HOLE_RESPONSE__FAILURE__ID_NOT_EXIST);
        }
        return;
    }
    peer_lan = rdv_is_lan(r, &p->addr.sa);
    me_lan = rdv_is_lan(r, from);
    relay = rdv_relay_for(r);
    forced_relay = r->cfg->always_use_relay || (peer_lan ^ me_lan);
    if (forced_relay) {
        if (peer_lan && r->cfg->local_ip != NULL && r->cfg->local_ip[0])
            relay = r->cfg->local_ip;
        nat = HBB__NAT_TYPE__SYMMETRIC; /* makes both sides relay */
    }
    same_intranet =
        !ws && ((peer_lan && me_lan) || rdv_same_ip(&p->addr.sa, from));
    if (same_intranet && p->addr.sa.sa_family == AF_INET6 &&
        from->sa_family == AF_INET6) {
        /* IPv6: the same /64 counts as the same LAN */
        same_intranet =
            memcmp(&p->addr.in6.sin6_addr,
                   &((const struct sockaddr_in6 *)from)->sin6_addr, 8) == 0;
    }
    if (same_intranet) {
        fla.socket_addr.data = mangled;
        fla.socket_addr.len = hd_addr_mangle(from, hd_addr_now_us(), mangled);
        fla.relay_server = (char *)relay;
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_FETCH_LOCAL_ADDR;
        m.fetch_local_addr = &fla;
        r->stats.punch_local++;
    } else {
        hole.socket_addr.data = mangled;
        hole.socket_addr.len = hd_addr_mangle(from, hd_addr_now_us(), mangled);
        hole.nat_type = nat;
        hole.relay_server = (char *)relay;
        hole.upnp_port = ph->upnp_port;
        hole.force_relay = ph->force_relay;
        /* the viewer's public UDP port and IPv6 address, for a host that
         * punches UDP or IPv6 too: only where the viewer proved it
         * receives (punch_addr_proven) */
        if (!forced_relay)
            punch_addr_proven(r, from, ph, &hole);
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE;
        m.punch_hole = &hole;
    }
    r->stats.punch_ok++;
    hd_info("rdv", "punch %s -> %s (%s)%s", from_s, id_q,
            same_intranet ? "same LAN: fetch local address" : "punch hole",
            nat == HBB__NAT_TYPE__SYMMETRIC ? ", relay" : "");
    rdv_send_to_peer(r, p, &m);
}

/*
 * The viewer waiting at `viewer` for an answer, when the answer comes from
 * the registered host of the ID that viewer asked for: over the host's TCP
 * registration (from_c), from its registered IP over TCP (RustDesk hosts
 * answer over a fresh connection from their public address), or over UDP
 * from its exact registered address; and when the answer names an ID
 * (named_id non-empty), it is that one.  Else NULL, with one log line (the
 * answer is dropped; the viewer keeps waiting for the real host).
 */
static struct rdv_conn *answer_target(struct rdv *r, struct rdv_conn *from_c,
                                      const struct sockaddr *from,
                                      const struct sockaddr *viewer,
                                      const char *named_id, const char *what)
{
    uint8_t key[18];
    struct rdv_conn *w;
    struct peer *p;
    char from_s[HD_ADDR_STRLEN], id_q[HD_LOG_QUOTE_MAX];
    int owner;

    rdv_addr_key(viewer, key);
    if ((w = hmap_get(&r->punch, key, sizeof(key))) == NULL) {
        hd_debug("rdv", "%s from %s: no viewer waits there", what,
                 hd_addr_format(from, from_s, sizeof(from_s)));
        return NULL;
    }
    p = peer_find(&r->peers, w->want_id);
    if (p == NULL || (named_id != NULL && named_id[0] != '\0' &&
                      strcmp(named_id, w->want_id) != 0))
        owner = 0;
    else if (from_c != NULL)
        owner = p->conn == from_c || rdv_same_ip(&p->addr.sa, from);
    else
        owner = rdv_same_ip(&p->addr.sa, from) &&
                hd_addr_port(&p->addr.sa) == hd_addr_port(from);
    if (!owner) {
        char what_s[80];

        r->stats.rej_not_owner++;
        rdv_reject(r, from, "answer for an ID from elsewhere", NULL);
        snprintf(what_s, sizeof(what_s),
                 "%s refused (not the registered "
                 "host of the id) from",
                 what);
        rdv_log_refused(r, &r->log_not_owner, what_s,
                        hd_addr_format(from, from_s, sizeof(from_s)),
                        hd_log_quote(w->want_id, id_q, sizeof(id_q)));
        return NULL;
    }
    return w;
}

/* The host's PunchHoleSent or LocalAddr: answer the waiting viewer. */
void rdv_on_host_ready(struct rdv *r, struct rdv_conn *from_c,
                       const struct sockaddr *host_addr,
                       const ProtobufCBinaryData *viewer_mangled,
                       const ProtobufCBinaryData *local_addr, const char *id,
                       const char *relay_server, const char *version,
                       int nat_type, int upnp_port,
                       const ProtobufCBinaryData *v6)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__PunchHoleResponse ph = HBB__PUNCH_HOLE_RESPONSE__INIT;
    struct sockaddr_storage viewer;
    uint8_t mangled[HD_ADDR_MANGLED_MAX], umangled[HD_ADDR_MANGLED_MAX];
    uint8_t *sig = NULL;
    struct rdv_conn *w;
    struct peer *p;
    char vs[HD_ADDR_STRLEN];

    if (hd_addr_unmangle(viewer_mangled->data, viewer_mangled->len, &viewer) !=
        0) {
        r->stats.rej_bad_proto++;
        return;
    }
    w = answer_target(r, from_c, host_addr, (struct sockaddr *)&viewer, id,
                      local_addr != NULL ? "LocalAddr" : "PunchHoleSent");
    if (w == NULL)
        return;
    id = w->want_id; /* what the viewer asked for, and what we sign */
    if (local_addr != NULL) {
        ph.socket_addr = *local_addr;
        ph.union_case = HBB__PUNCH_HOLE_RESPONSE__UNION_IS_LOCAL;
        ph.is_local = 1;
    } else {
        ph.socket_addr.data = mangled;
        ph.socket_addr.len =
            hd_addr_mangle(host_addr, hd_addr_now_us(), mangled);
        ph.union_case = HBB__PUNCH_HOLE_RESPONSE__UNION_NAT_TYPE;
        ph.nat_type = nat_type;
        /* where the host's UDP heartbeats come from: its UDP punch socket
         * (homedesk extension, see rendezvous.proto) */
        p = peer_find(&r->peers, id);
        if (p != NULL && nat_type >= 0 && nat_type < 256) {
            p->nat_known = 1; /* for the admin page */
            p->nat_type = (uint8_t)nat_type;
        }
        if (p != NULL && peer_udp_live(p, uv_now(r->loop))) {
            ph.udp_socket_addr.data = umangled;
            ph.udp_socket_addr.len =
                hd_addr_mangle(&p->addr.sa, hd_addr_now_us(), umangled);
        }
    }
    rdv_signed_pk(r, version, id, &ph.pk, &sig);
    ph.relay_server = (char *)(relay_server ? relay_server : "");
    ph.upnp_port = upnp_port;
    if (v6 != NULL && v6->len <= HD_ADDR_MANGLED_MAX)
        ph.socket_addr_v6 = *v6; /* the host's IPv6 punch address */
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE;
    m.punch_hole_response = &ph;
    hd_addr_format((struct sockaddr *)&viewer, vs, sizeof(vs));
    if (rdv_send_to_waiting(r, (struct sockaddr *)&viewer, &m) != 0)
        hd_debug("rdv", "answer for %s from %s: viewer gone", vs, id);
    else
        hd_debug("rdv", "punch answer %s -> %s", id, vs);
    free(sig);
}

/* RequestRelay from viewer A: forward to host B with A's address. */
void rdv_on_request_relay(struct rdv *r, struct rdv_conn *c,
                          const Hbb__RequestRelay *req)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    uint8_t mangled[HD_ADDR_MANGLED_MAX];
    struct peer *p = peer_find(&r->peers, req->id);
    /* a shallow copy to edit: the unpacked message keeps its pointers */
    Hbb__RequestRelay fwd = *req, *rr = &fwd;
    uint8_t src_key[17];
    int busy;

    /* forward only what we understand: unknown fields from one peer must
     * not reach another (protobuf-c repacks some it cannot read back) */
    fwd.base.n_unknown_fields = 0;
    fwd.base.unknown_fields = NULL;
    fwd.control_permissions = NULL;
    fwd.controlled_context = NULL;

    r->stats.relay_requests++;
    rdv_wait_for_answer(c, req->id);
    /* each makes the host connect out: the punch budget of the source */
    busy =
        !limit_take(&r->punch_src, src_key,
                    limit_addr_key(&c->addr.sa, src_key), 1, uv_now(r->loop));
    if (busy || p == NULL || !peer_is_online(p, uv_now(r->loop))) {
        Hbb__RelayResponse resp = HBB__RELAY_RESPONSE__INIT;

        resp.uuid = rr->uuid;
        resp.refuse_reason =
            busy ? "Too many connection attempts; try again in a minute"
            : p  ? "Remote desktop is offline"
                 : "ID does not exist";
        if (busy) {
            char id_q[HD_LOG_QUOTE_MAX];

            r->stats.rej_punch_budget++;
            hd_log_quote(req->id, id_q, sizeof(id_q));
            rdv_reject(r, &c->addr.sa, "relay requests over budget", id_q);
            rdv_log_refused(r, &r->log_punch_budget,
                            "relay request over budget from", c->name, id_q);
        }
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE;
        m.relay_response = &resp;
        if (!busy)
            hd_info("rdv", "relay request %s -> %s: %s", c->name, rr->id,
                    resp.refuse_reason);
        rdv_send_to_waiting(r, &c->addr.sa, &m);
        return;
    }
    rr->socket_addr.data = mangled;
    rr->socket_addr.len =
        hd_addr_mangle(&c->addr.sa, hd_addr_now_us(), mangled);
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = rr;
    hd_info("rdv", "relay request %s -> %s via %s", c->name, rr->id,
            rr->relay_server[0] ? rr->relay_server : "(default)");
    rdv_send_to_peer(r, p, &m);
}

/* RelayResponse from host B: route to viewer A with the signed key. */
void rdv_on_relay_response(struct rdv *r, struct rdv_conn *c,
                           const Hbb__RelayResponse *resp)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    struct sockaddr_storage viewer;
    struct rdv_conn *w;
    uint8_t *sig = NULL;
    ProtobufCBinaryData pk;
    /* a shallow copy to edit: the unpacked message keeps its pointers */
    Hbb__RelayResponse fwd = *resp, *rr = &fwd;

    fwd.base.n_unknown_fields = 0; /* see rdv_on_request_relay */
    fwd.base.unknown_fields = NULL;

    r->stats.relay_responses++;
    if (hd_addr_unmangle(rr->socket_addr.data, rr->socket_addr.len, &viewer) !=
        0) {
        r->stats.rej_bad_proto++;
        hd_info("rdv", "relay response from %s with a bad address", c->name);
        return;
    }
    w = answer_target(r, c, &c->addr.sa, (struct sockaddr *)&viewer,
                      rr->union_case == HBB__RELAY_RESPONSE__UNION_ID ? rr->id
                                                                      : NULL,
                      "RelayResponse");
    if (w == NULL)
        return;
    rr->socket_addr.data = NULL;
    rr->socket_addr.len = 0;
    if (rr->union_case == HBB__RELAY_RESPONSE__UNION_ID && rr->id[0]) {
        /* the ID the viewer asked for (answer_target checked they agree) */
        rdv_signed_pk(r, rr->version, w->want_id, &pk, &sig);
        rr->union_case = HBB__RELAY_RESPONSE__UNION_PK;
        rr->pk = pk;
    }
    if (rr->relay_server != NULL && rr->relay_server[0]) {
        const char *lip = r->cfg->local_ip ? r->cfg->local_ip : "";

        if (rdv_is_lan(r, (struct sockaddr *)&viewer) && lip[0])
            rr->relay_server = (char *)lip;
        else if (lip[0] && strcmp(rr->relay_server, lip) == 0)
            rr->relay_server = (char *)rdv_relay_for(r);
    }
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE;
    m.relay_response = rr;
    if (rdv_send_to_waiting(r, (struct sockaddr *)&viewer, &m) != 0)
        hd_debug("rdv", "relay response from %s: viewer gone", c->name);
    free(sig);
}

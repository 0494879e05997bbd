/*
 * rv_connect_id (rendezvous.h): the punch request and what the host's
 * answer offers.  Opens what the race needs before the request (a
 * listener on our rendezvous port, the NAT test, IPv6, UDP), sends the
 * PunchHoleRequest, and races the paths of the PunchHoleResponse (or the
 * relay alone when the host chose it).
 */
#include "client/rv_int.h"
#include "nat/tcp.h"

/*
 * Our global IPv6 address (port 0): the source address of the route to the
 * server when it is reached over IPv6, else towards 2001:db8:: (any
 * global address picks the default route; connect() on a UDP socket
 * sends nothing).  0, or a negative errno (no IPv6 route, or no global
 * unicast source: link-local and ULA addresses do not reach another
 * home).
 */
static int v6_self(const struct sockaddr_storage *srv,
                   struct sockaddr_storage *out)
{
    struct sockaddr_in6 to, *me = (struct sockaddr_in6 *)out;
    socklen_t len = sizeof(*out);
    int fd, r = 0;

    memset(out, 0, sizeof(*out));
    if (srv->ss_family == AF_INET6) {
        memcpy(&to, srv, sizeof(to));
    } else {
        memset(&to, 0, sizeof(to));
        to.sin6_family = AF_INET6;
        to.sin6_port = htons(9);
        to.sin6_addr.s6_addr[0] = 0x20; /* 2001:db8:: */
        to.sin6_addr.s6_addr[1] = 0x01;
        to.sin6_addr.s6_addr[2] = 0x0d;
        to.sin6_addr.s6_addr[3] = 0xb8;
    }
    if ((fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0 ||
        getsockname(fd, (struct sockaddr *)out, &len) != 0)
        r = -errno;
    close(fd);
    if (r == 0 && (out->ss_family != AF_INET6 ||
                   (me->sin6_addr.s6_addr[0] & 0xe0) != 0x20))
        r = -EADDRNOTAVAIL;
    me->sin6_port = 0;
    return r;
}

/*
 * Before the punch request: a listener on Q (the host may reach it), the
 * NAT type test (answered during the prelude and the race), IPv6 (our
 * global address and a listener on Q6, put into ph) and the UDP socket.
 * Whatever fails is left out of the race.
 */
static void race_open(struct race *rc, const struct sockaddr_storage *srv,
                      Hbb__PunchHoleRequest *ph, uint8_t *mangled6)
{
    const struct rv_request *req = rc->req;
    int r;

    /* listen on Q; the NAT type test (answered during the race) */
    rc->lis = hd_nat_tcp_listener(srv->ss_family, rc->port, NULL);
    if (!req->force_relay)
        rv_nat_test(rc, srv);
    /* IPv6: our own address and a listener on Q6 for the host to punch to */
    if (!req->force_relay && v6_self(srv, &rc->me6) == 0 &&
        (rc->lis6 = hd_nat_tcp_listener(AF_INET6, 0, &rc->port6)) >= 0) {
        hd_addr_set_port((struct sockaddr *)&rc->me6, rc->port6);
        ph->socket_addr_v6.data = mangled6;
        ph->socket_addr_v6.len = hd_addr_mangle((struct sockaddr *)&rc->me6,
                                                hd_addr_now_us(), mangled6);
    }
    /* our public UDP port (homedesk-server answers over UDP) and our NAT
     * kind, for the host */
    if (!req->force_relay && !req->no_udp &&
        (r = up_open(&rc->up, rc->loop, (struct sockaddr *)srv)) != 0)
        hd_debug("rv", "no UDP socket: %s", hd_strerror(r));
}

/* Send the PunchHoleRequest (ph has its IPv6 address already).  0 or a
 * negative code (rc->out->err says it). */
static int send_punch_request(struct race *rc, Hbb__PunchHoleRequest *ph)
{
    const struct rv_request *req = rc->req;
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    int r;

    ph->id = (char *)req->id;
    ph->nat_type = rc->nat_port[0] > 0 && rc->nat_port[1] > 0
                       ? (rc->me_sym ? HBB__NAT_TYPE__SYMMETRIC
                                     : HBB__NAT_TYPE__ASYMMETRIC)
                       : HBB__NAT_TYPE__UNKNOWN_NAT;
    if (req->force_relay) { /* as RustDesk: the host goes to the relay */
        ph->nat_type = HBB__NAT_TYPE__SYMMETRIC;
        ph->force_relay = 1;
    }
    ph->udp_port = rc->up.pub_port;
    ph->hd_udp_cookie.data = rc->up.cookie;
    ph->hd_udp_cookie.len = rc->up.pub_port ? rc->up.cookie_len : 0;
    ph->licence_key = (char *)(req->key_b64 ? req->key_b64 : "");
    ph->conn_type = HBB__CONN_TYPE__DEFAULT_CONN;
    ph->version = (char *)req->version;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST;
    m.punch_hole_request = ph;
    rc->t0 = rv_now(rc);
    if ((r = rv_link_send(&rc->lk, &m, 1)) != 0)
        rv_set_err(rc->out, "server %s: %s", req->server, rv_reason(r));
    return r;
}

/* PunchHoleResponse, or a RelayResponse when the host (a RustDesk one
 * behind a symmetric NAT) chose the relay itself: 0 and *ans, or a
 * negative code (rc->out->err says it). */
static int wait_answer(struct race *rc, Hbb__RendezvousMessage **ans)
{
    const struct rv_request *req = rc->req;
    int r, answer_ms = req->answer_ms > 0 ? req->answer_ms : RV_ANSWER_MS;

    for (;;) {
        if ((r = rv_link_wait(&rc->lk, (unsigned)answer_ms, ans)) != 0) {
            if (r == -ECANCELED)
                rv_set_err(rc->out, "cancelled");
            else if (r == -ETIMEDOUT) /* the server is there: it answered
                                       * the NAT test and kept the line */
                rv_set_err(rc->out,
                           "host %s offline or not answering: the server %s "
                           "passed the request on, but the host did not "
                           "answer in %d s (a host that stopped moments ago "
                           "is marked offline after about 30 s)",
                           req->id, req->server, answer_ms / 1000);
            else
                rv_set_err(rc->out,
                           "the server %s dropped the request about %s: %s",
                           req->server, req->id, rv_reason(r));
            return r;
        }
        if ((*ans)->union_case ==
                HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE ||
            (*ans)->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE)
            return 0;
        hd_debug("rv", "ignoring server message %d", (int)(*ans)->union_case);
        hbb__rendezvous_message__free_unpacked(*ans, NULL);
        *ans = NULL;
    }
}

/* The host chose the relay: check its key, start the relay with its
 * uuid and race (the relay alone).  0 or a negative code. */
static int race_relay_chosen(struct race *rc, const Hbb__RelayResponse *rr,
                             const uint8_t *spk, char *hint, size_t hint_cap)
{
    const struct rv_request *req = rc->req;
    int r;

    if (rr->refuse_reason != NULL && rr->refuse_reason[0] != '\0') {
        rv_set_err(rc->out, "relay refused: %s", rr->refuse_reason);
        return -ECONNREFUSED;
    }
    if (rr->union_case != HBB__RELAY_RESPONSE__UNION_PK || rr->uuid == NULL ||
        strlen(rr->uuid) >= sizeof(rc->rl.uuid)) {
        rv_set_err(rc->out, "the server's relay answer for %s is incomplete",
                   req->id);
        return HD_EPROTO;
    }
    if ((r = rv_check_signed_pk(&rr->pk, req->id, spk, rc->out)) != 0)
        return r;
    if (rr->relay_server != NULL)
        snprintf(hint, hint_cap, "%s", rr->relay_server);
    hd_info("rv", "%s: the host chose the relay", req->id);
    if ((r = rv_relay_start(rc, rr->uuid)) != 0) {
        rv_set_err(rc->out, "cannot start the relay: %s", hd_strerror(r));
        return r;
    }
    return rv_race_run(rc);
}

/* The TCP paths the PunchHoleResponse offers: the host's LAN address, a
 * punch to its public address, the router's mapping of its port. */
static void race_tcp_paths(struct race *rc, const Hbb__PunchHoleResponse *resp,
                           const struct sockaddr_storage *srv)
{
    const struct rv_request *req = rc->req;
    char hs[HD_ADDR_STRLEN];
    int r;

    if (req->force_relay || req->no_tcp ||
        hd_addr_unmangle(resp->socket_addr.data, resp->socket_addr.len,
                         &rc->host) != 0)
        return;
    hd_addr_normalize(&rc->host);
    hd_addr_format((struct sockaddr *)&rc->host, hs, sizeof(hs));
    if (rc->local) {
        hd_info("rv", "%s: trying %s (same LAN)", req->id, hs);
        if ((r = rv_cand_connect(rc, CK_LAN, rc->t0 + RV_LOCAL_MS,
                                 &rc->host)) != 0)
            hd_info("rv", "%s: lan path to %s failed: %s", req->id, hs,
                    rv_reason(r));
    } else if (rc->host.ss_family == srv->ss_family) {
        hd_info("rv", "%s: punching to %s from port %u%s", req->id, hs,
                (unsigned)rc->port,
                rc->host_sym ? " (the host is behind a symmetric NAT)" : "");
        rc->punch = 1;
        if (!(rc->host_sym && rc->me_sym) && (r = rv_punch_start(rc, 0)) != 0)
            hd_info("rv", "%s: cannot punch to %s: %s", req->id, hs,
                    rv_reason(r));
    }
    /* the router's mapping of the host's --listen port (nat/map.h) */
    if (!rc->local && resp->upnp_port > 0 && resp->upnp_port < 65536) {
        rc->upnp = rc->host;
        hd_addr_set_port((struct sockaddr *)&rc->upnp,
                         (uint16_t)resp->upnp_port);
        hd_addr_format((struct sockaddr *)&rc->upnp, hs, sizeof(hs));
        hd_info("rv", "%s: trying %s (the host's mapped port)", req->id, hs);
        if ((r = rv_cand_connect(rc, CK_UPNP, rc->t0 + RV_PUNCH_MS,
                                 &rc->upnp)) != 0)
            hd_info("rv", "%s: mapped port %s failed: %s", req->id, hs,
                    rv_reason(r));
        else
            rc->extra = 1;
    }
}

/* The UDP and IPv6 paths the PunchHoleResponse offers; listeners no path
 * needs are closed. */
static void race_other_paths(struct race *rc,
                             const Hbb__PunchHoleResponse *resp,
                             const struct sockaddr_storage *srv)
{
    const struct rv_request *req = rc->req;
    char hs[HD_ADDR_STRLEN];

    /* UDP: the host's registration socket, as the server sees it */
    if (!req->force_relay && !rc->local && rc->up.sock_open &&
        resp->udp_socket_addr.len > 0) {
        struct sockaddr_storage hu;

        if (hd_addr_unmangle(resp->udp_socket_addr.data,
                             resp->udp_socket_addr.len, &hu) == 0 &&
            hu.ss_family == srv->ss_family &&
            up_start(&rc->up, (struct sockaddr *)&hu, req->id, rc->me_sym,
                     rc->host_sym, RV_PUNCH_MS) == 0) {
            hd_addr_format((struct sockaddr *)&hu, hs, sizeof(hs));
            hd_info("rv", "%s: punching to %s over UDP%s", req->id, hs,
                    rc->me_sym     ? " from a fan of sockets (we are behind a "
                                     "symmetric NAT)"
                    : rc->host_sym ? " and to guessed ports (the host is "
                                     "behind a symmetric NAT)"
                                   : "");
        }
    }
    if (!up_alive(&rc->up))
        up_close(&rc->up);
    if (!req->force_relay && !req->no_tcp && rc->lis6 >= 0 &&
        resp->socket_addr_v6.len > 0 &&
        hd_addr_unmangle(resp->socket_addr_v6.data, resp->socket_addr_v6.len,
                         &rc->host6) == 0 &&
        rc->host6.ss_family == AF_INET6) {
        hd_addr_format((struct sockaddr *)&rc->host6, hs, sizeof(hs));
        hd_info("rv", "%s: punching to %s over IPv6 from port %u", req->id, hs,
                (unsigned)rc->port6);
        if (rv_punch_start(rc, 1) == 0)
            rc->extra = 1;
    }
    /* listeners no punch took */
    if (rc->lis >= 0) {
        close(rc->lis);
        rc->lis = -1;
    }
    if (rc->lis6 >= 0) {
        close(rc->lis6);
        rc->lis6 = -1;
    }
}

/* The host answered with its addresses: check its key, set up every path
 * and race them.  0 or a negative code. */
static int race_punched(struct race *rc, const Hbb__PunchHoleResponse *resp,
                        const uint8_t *spk, const struct sockaddr_storage *srv,
                        char *hint, size_t hint_cap)
{
    int r;

    if (resp->socket_addr.len == 0)
        return rv_punch_failure(resp, rc->req->id, rc->out);
    if ((r = rv_check_signed_pk(&resp->pk, rc->req->id, spk, rc->out)) != 0)
        return r;
    if (resp->relay_server != NULL)
        snprintf(hint, hint_cap, "%s", resp->relay_server);
    rc->local = resp->union_case == HBB__PUNCH_HOLE_RESPONSE__UNION_IS_LOCAL &&
                resp->is_local;
    rc->host_sym =
        !rc->local &&
        resp->union_case == HBB__PUNCH_HOLE_RESPONSE__UNION_NAT_TYPE &&
        resp->nat_type == HBB__NAT_TYPE__SYMMETRIC;
    race_tcp_paths(rc, resp, srv);
    race_other_paths(rc, resp, srv);
    return rv_race_run(rc);
}

/* The server public key of --key into pk: 0 (*spk = pk, or NULL without
 * a key) or -EINVAL (out->err says it). */
static int server_key(const struct rv_request *req, uint8_t *pk,
                      const uint8_t **spk, struct rv_result *out)
{
    size_t len;

    *spk = NULL;
    if (req->key_b64 == NULL || req->key_b64[0] == '\0')
        return 0;
    if (hd_base64_decode(req->key_b64, strlen(req->key_b64), pk,
                         HD_SIGN_PK_BYTES, &len) != 0 ||
        len != HD_SIGN_PK_BYTES) {
        rv_set_err(out, "--key: not a base64 Ed25519 public key");
        return -EINVAL;
    }
    *spk = pk;
    return 0;
}

int rv_connect_id(const struct rv_request *req, struct rv_result *out)
{
    Hbb__RendezvousMessage *ans = NULL;
    Hbb__PunchHoleRequest ph = HBB__PUNCH_HOLE_REQUEST__INIT;
    uint8_t server_pk[HD_SIGN_PK_BYTES];
    const uint8_t *spk;
    struct sockaddr_storage srv;
    struct race rc;
    char relay_hint[256] = "";
    uint8_t mangled6[HD_ADDR_MANGLED_MAX];
    int r;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if ((r = server_key(req, server_pk, &spk, out)) != 0)
        return r;
    if ((r = rv_race_init(&rc, req, out)) != 0) {
        rv_set_err(out, "cannot start an event loop: %s", hd_strerror(r));
        return r;
    }
    rc.spk = spk;
    rc.hint = relay_hint;
    /* from a reusable port Q: the host will punch towards it */
    if ((r = rv_link_server(&rc, &rc.lk, &rc.port, &srv)) != 0)
        goto out;
    rc.srv = srv; /* the relay request connects there too */
    race_open(&rc, &srv, &ph, mangled6);
    if (!req->force_relay && (r = rv_prelude(&rc)) != 0) {
        if (r == -ECANCELED)
            rv_set_err(out, "cancelled");
        else
            rv_set_err(out, "cannot wait for the NAT test: %s", hd_strerror(r));
        goto out;
    }
    if (rc.up.sock_open && rc.up.pub_port == 0) {
        hd_debug("rv", "the server did not tell our UDP port: no UDP path");
        up_close(&rc.up);
    }
    if ((r = send_punch_request(&rc, &ph)) != 0 ||
        (r = wait_answer(&rc, &ans)) != 0)
        goto out;
    rv_link_close(&rc.lk);
    rc.t0 = rv_now(&rc);
    if (ans->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE)
        r = race_relay_chosen(&rc, ans->relay_response, spk, relay_hint,
                              sizeof(relay_hint));
    else
        r = race_punched(&rc, ans->punch_hole_response, spk, &srv, relay_hint,
                         sizeof(relay_hint));
    if (r == -ECANCELED)
        rv_set_err(out, "cancelled");
    else if (r != 0 && out->err[0] == '\0')
        rv_set_err(out, "cannot reach %s: %s", req->id,
                   rc.direct_err[0] ? rc.direct_err : rv_reason(r));
out:
    rv_race_cleanup(&rc);
    if (ans != NULL)
        hbb__rendezvous_message__free_unpacked(ans, NULL);
    sodium_memzero(server_pk, sizeof(server_pk));
    return r;
}

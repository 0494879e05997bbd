/*
 * The rendezvous server's requests to the host: our LAN address
 * (FetchLocalAddr), a punch hole (PunchHole: TCP and UDP punching, or the
 * relay at once when the viewer's NAT and ours call for it), and relay
 * requests (connect to the relay, reg_resolve it if need be, and begin a
 * session on the paired connection).
 */
#include "host/reg_int.h"

/* ---- requests from the server -------------------------------------------- */

/* Our address on the interface that reaches the server, port = listen. */
static int lan_addr(struct reg *g, struct sockaddr_storage *out)
{
    socklen_t len = sizeof(*out);
    os_sock fd;
    int r = -1;

    memset(out, 0, sizeof(*out));
    fd = os_socket(g->server.ss_family, SOCK_DGRAM);
    if (fd == OS_SOCK_BAD)
        return os_sock_error();
    if (connect(fd, (struct sockaddr *)&g->server,
                hd_addr_len((struct sockaddr *)&g->server)) == 0 &&
        getsockname(fd, (struct sockaddr *)out, &len) == 0)
        r = 0;
    os_sock_close(fd);
    if (r == 0) {
        hd_addr_normalize(out);
        hd_addr_set_port((struct sockaddr *)out, g->h->listen_port);
    }
    return r;
}

void reg_on_fetch_local_addr(struct reg *g, const Hbb__FetchLocalAddr *f)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__LocalAddr la = HBB__LOCAL_ADDR__INIT;
    struct sockaddr_storage me;
    uint8_t mangled[HD_ADDR_MANGLED_MAX];
    char s[HD_ADDR_STRLEN];

    if (lan_addr(g, &me) != 0)
        return;
    la.socket_addr = f->socket_addr;
    la.local_addr.data = mangled;
    la.local_addr.len =
        hd_addr_mangle((struct sockaddr *)&me, hd_addr_now_us(), mangled);
    la.relay_server = f->relay_server;
    la.id = g->h->ident.id;
    la.version = HOST_WIRE_VERSION;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_LOCAL_ADDR;
    m.local_addr = &la;
    hd_info(MOD, "viewer on our LAN: telling it %s",
            hd_addr_format((struct sockaddr *)&me, s, sizeof(s)));
    reg_send_oneshot(g, &m, "LocalAddr");
}

static void relay_begin(struct reg *g, const ProtobufCBinaryData *socket_addr,
                        const char *relay, const char *mine, const char *uuid);

/*
 * RustDesk's host decision (rendezvous_mediator.rs, handle_punch_hole):
 * straight to the relay, without punching, when the viewer asks for it
 * (force_relay), or reports a symmetric NAT (RustDesk's web client always
 * does: it can only use a relay, and takes nothing but a RelayResponse),
 * or we are behind one (unless our router forwards a port to us: the
 * viewer can connect to it).  A viewer that gave its public UDP port
 * (udp_port: a homedesk viewer, or a RustDesk one that punches UDP) keeps
 * our punching in those NAT cases: UDP, birthday search included, gets
 * through where RustDesk's host gives up (a RustDesk viewer that cannot
 * use it asks for the relay itself).  Returns the reason, or NULL.
 */
static const char *relay_at_once(const struct reg *g, const Hbb__PunchHole *ph)
{
    if (ph->force_relay)
        return "the viewer asks for the relay";
    if (ph->udp_port > 0)
        return NULL;
    if (ph->nat_type == HBB__NAT_TYPE__SYMMETRIC)
        return "the viewer is behind a symmetric NAT or is a web client";
    if (g->h->nat_type == HBB__NAT_TYPE__SYMMETRIC && g->h->upnp_port == 0)
        return "we are behind a symmetric NAT";
    return NULL;
}

/*
 * PunchHole (step 3): from a new local port P, fire connect() towards the
 * viewer and listen (punch.h), and send PunchHoleSent from P too, so the
 * server hands the viewer the public address of P.  Or, as RustDesk's
 * host (relay_at_once), the relay at once: RelayResponse with a uuid of
 * ours.
 */
void reg_on_punch_hole(struct reg *g, const Hbb__PunchHole *ph)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__PunchHoleSent s = HBB__PUNCH_HOLE_SENT__INIT;
    struct sockaddr_storage viewer = { 0 }, viewer6, me6;
    uint8_t mangled6[HD_ADDR_MANGLED_MAX];
    char vs[HD_ADDR_STRLEN] = "?", ms[HD_ADDR_STRLEN];
    uint16_t port = 0;
    int fd = -1, r = -EAFNOSUPPORT;
    const char *why = relay_at_once(g, ph);

    if (why != NULL) {
        char uuid[HD_UUID_LEN];

        hd_uuid_random(uuid);
        hd_info(MOD, "punch hole request: %s: going to the relay", why);
        relay_begin(g, &ph->socket_addr,
                    ph->relay_server && ph->relay_server[0] ? ph->relay_server
                                                            : NULL,
                    g->h->o->relay, uuid);
        return;
    }
    if (hd_addr_unmangle(ph->socket_addr.data, ph->socket_addr.len, &viewer) ==
        0) {
        hd_addr_normalize(&viewer);
        hd_addr_format((struct sockaddr *)&viewer, vs, sizeof(vs));
        if (viewer.ss_family == g->server.ss_family &&
            (fd = hd_nat_tcp_socket(g->server.ss_family, 0, &port)) >= 0)
            r = punch_start(g->h, (struct sockaddr *)&viewer, (int)ph->nat_type,
                            port);
        else if (fd < 0)
            r = fd;
    }
    if (r < 0)
        hd_info(MOD, "punch hole request from %s: no punching (%s)", vs,
                hd_strerror(r));
    else if (r == 1)
        hd_info(MOD,
                "punch hole request from %s: both behind symmetric NATs, "
                "leaving it to the relay",
                vs);
    else
        hd_info(MOD, "punch hole request from %s: punching from port %u", vs,
                (unsigned)port);
    /* UDP (a homedesk viewer gave its public UDP port): probes from our
     * registration socket, whose address the server gave the viewer */
    if (ph->udp_port > 0 && ph->udp_port <= 65535 && g->udp_open &&
        viewer.ss_family == g->server.ss_family) {
        struct sockaddr_storage vu = viewer;

        hd_addr_set_port((struct sockaddr *)&vu, (uint16_t)ph->udp_port);
        if ((r = upunch_start(g->h, &g->udp, (struct sockaddr *)&vu,
                              (int)ph->nat_type)) < 0)
            hd_info(MOD, "punch hole request from %s: no UDP punching (%s)", vs,
                    hd_strerror(r));
    }
    /* IPv6 where both have it: the viewer's own address, no NAT */
    if (ph->socket_addr_v6.len > 0 &&
        hd_addr_unmangle(ph->socket_addr_v6.data, ph->socket_addr_v6.len,
                         &viewer6) == 0 &&
        viewer6.ss_family == AF_INET6) {
        hd_addr_format((struct sockaddr *)&viewer6, vs, sizeof(vs));
        if ((r = punch_start_v6(g->h, (struct sockaddr *)&viewer6, &me6)) ==
            0) {
            s.socket_addr_v6.data = mangled6;
            s.socket_addr_v6.len = hd_addr_mangle((struct sockaddr *)&me6,
                                                  hd_addr_now_us(), mangled6);
            hd_info(MOD, "punch hole request: punching to %s over IPv6 from %s",
                    vs,
                    hd_addr_format((struct sockaddr *)&me6, ms, sizeof(ms)));
        } else {
            hd_info(MOD, "punch hole request: no IPv6 punching to %s (%s)", vs,
                    hd_strerror(r));
        }
    }
    s.socket_addr = ph->socket_addr;
    s.id = g->h->ident.id;
    s.relay_server = ph->relay_server;
    s.nat_type = (Hbb__NatType)g->h->nat_type;
    s.version = HOST_WIRE_VERSION;
    s.upnp_port = g->h->upnp_port;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_SENT;
    m.punch_hole_sent = &s;
    reg_send_oneshot_fd(g, &m, "PunchHoleSent", fd);
}

/* One relay request in progress: reg_resolve, connect, then a session. */
struct relay_req {
    struct reg *g;
    struct host *h;
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    struct session *s;
    char host[RELAY_MAX], port[8], relay_server[RELAY_MAX], uuid[RELAY_MAX];
    uint8_t socket_addr[HD_ADDR_MANGLED_MAX];
    size_t socket_addr_len;
    int named; /* the relay was named by the viewer or the server (not by
                * our --relay): it may fall back to the server's address */
};

static int relay_resolve(struct relay_req *q);

int reg_split_host_port(const char *s, unsigned def_port, char *host,
                        size_t cap, char *port)
{
    const char *colon = strrchr(s, ':');
    size_t n;

    snprintf(port, 8, "%u", def_port);
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || (size_t)(end - s - 1) >= cap)
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        if (end[1] == ':')
            snprintf(port, 8, "%s", end + 2);
        return 0;
    }
    if (colon != NULL && strchr(s, ':') == colon) { /* one colon: port */
        n = (size_t)(colon - s);
        if (n >= cap)
            return -EINVAL;
        memcpy(host, s, n);
        host[n] = '\0';
        snprintf(port, 8, "%s", colon + 1);
        return 0;
    }
    if (strlen(s) >= cap)
        return -EINVAL;
    snprintf(host, cap, "%s", s);
    return 0;
}

static void relay_connected(uv_connect_t *req, int status)
{
    struct relay_req *q = req->data;
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RequestRelay rr = HBB__REQUEST_RELAY__INIT;
    Hbb__RelayResponse resp = HBB__RELAY_RESPONSE__INIT;
    uint8_t *buf = NULL;
    size_t n;
    int r;

    if (status == UV_ECANCELED) { /* the session was closed meanwhile */
        free(q);
        return;
    }
    if (status != 0) {
        hd_warn(MOD, "cannot reach relay %s:%s: %s", q->host, q->port,
                uv_strerror(status));
        session_close(q->s, "relay unreachable");
        free(q);
        return;
    }
    rr.uuid = q->uuid;
    rr.licence_key = (char *)(q->h->o->key ? q->h->o->key : "");
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = &rr;
    if ((r = reg_pack(&m, &buf, &n)) != 0 ||
        (r = session_send_plain(q->s, buf, n)) != 0) {
        free(buf);
        session_close(q->s, hd_strerror(r));
        free(q);
        return;
    }
    free(buf);
    if (q->g != NULL) {
        Hbb__RendezvousMessage a = HBB__RENDEZVOUS_MESSAGE__INIT;

        resp.socket_addr.data = q->socket_addr;
        resp.socket_addr.len = q->socket_addr_len;
        resp.uuid = q->uuid;
        resp.relay_server = q->relay_server;
        resp.union_case = HBB__RELAY_RESPONSE__UNION_ID;
        resp.id = q->h->ident.id;
        resp.version = HOST_WIRE_VERSION;
        resp.upnp_port = q->h->upnp_port;
        a.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE;
        a.relay_response = &resp;
        reg_send_oneshot(q->g, &a, "RelayResponse");
    }
    session_begin(q->s, NULL, 0);
    free(q);
}

static void relay_resolved(uv_getaddrinfo_t *req, int status,
                           struct addrinfo *ai)
{
    struct relay_req *q = req->data;
    struct sockaddr_storage viewer;
    int r;

    if ((status != 0 || ai == NULL) && q->named && !q->h->stopping &&
        q->h->server_host[0]) {
        char alt[RELAY_MAX + 16];

        /* e.g. "rustdesk-hbbr:21117", known only inside a compose
         * network: the server's own address with the relay's port */
        q->named = 0;
        if (hd_relay_fallback(q->relay_server[0] ? q->relay_server : q->host,
                              q->h->server_host, alt, sizeof(alt)) == 0 &&
            reg_split_host_port(alt, HD_RELAY_PORT, q->host, sizeof(q->host),
                                q->port) == 0) {
            hd_info(MOD,
                    "relay %s does not resolve here (%s): using the "
                    "server's address, %s",
                    q->relay_server[0] ? q->relay_server : q->host,
                    uv_strerror(status ? status : UV_EAI_NONAME), alt);
            uv_freeaddrinfo(ai);
            if (relay_resolve(q) == 0)
                return;
            free(q);
            return;
        }
    }
    if (status != 0 || ai == NULL) {
        hd_warn(MOD, "cannot resolve relay %s: %s", q->host,
                uv_strerror(status ? status : UV_EAI_NONAME));
        goto fail;
    }
    if (q->h->stopping)
        goto fail;
    if ((r = session_new_relay(
             q->h,
             hd_addr_unmangle(q->socket_addr, q->socket_addr_len, &viewer) == 0
                 ? (struct sockaddr *)&viewer
                 : NULL,
             &q->s)) != 0) {
        hd_warn(MOD, "relay request refused: %s", hd_strerror(r));
        goto fail;
    }
    q->conn.data = q;
    if ((r = uv_tcp_connect(&q->conn, session_tcp(q->s), ai->ai_addr,
                            relay_connected)) != 0) {
        hd_warn(MOD, "cannot reach relay %s: %s", q->host, uv_strerror(r));
        session_close(q->s, "relay unreachable");
        goto fail;
    }
    uv_freeaddrinfo(ai);
    return;
fail:
    uv_freeaddrinfo(ai);
    free(q);
}

/* Resolve q->host (then connect, then a session).  0, or an error with
 * a log line (the caller frees q). */
static int relay_resolve(struct relay_req *q)
{
    struct addrinfo hints;
    int r;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    q->gai.data = q;
    if ((r = uv_getaddrinfo(q->h->loop, &q->gai, relay_resolved, q->host,
                            q->port, &hints)) != 0)
        hd_warn(MOD, "cannot resolve relay %s: %s", q->host, uv_strerror(r));
    return r;
}

/*
 * Go to a relay for the viewer at socket_addr (mangled) with uuid.  relay
 * is the one the viewer asked for (RequestRelay) or the server handed out
 * (PunchHole); mine is ours (--relay): RustDesk's host answers a
 * RequestRelay at the relay it names, and picks its own "Relay server"
 * first when it starts the relay itself.  Neither: the server's host,
 * port + 1.
 */
static void relay_begin(struct reg *g, const ProtobufCBinaryData *socket_addr,
                        const char *relay, const char *mine, const char *uuid)
{
    struct relay_req *q;
    const char *use = mine != NULL ? mine : relay;
    int r;

    if (uuid == NULL || uuid[0] == '\0' || strlen(uuid) >= RELAY_MAX ||
        socket_addr->len == 0 || socket_addr->len > HD_ADDR_MANGLED_MAX ||
        (use && strlen(use) >= RELAY_MAX)) {
        hd_info(MOD, "malformed relay request ignored");
        return;
    }
    if ((q = calloc(1, sizeof(*q))) == NULL)
        return;
    q->g = g;
    q->h = g->h;
    snprintf(q->uuid, sizeof(q->uuid), "%s", uuid);
    memcpy(q->socket_addr, socket_addr->data, socket_addr->len);
    q->socket_addr_len = socket_addr->len;
    if (use != NULL && use[0]) {
        snprintf(q->relay_server, sizeof(q->relay_server), "%s", use);
        q->named = mine == NULL;
        r = reg_split_host_port(use, HD_RELAY_PORT, q->host, sizeof(q->host),
                                q->port);
    } else {
        r = 0;
        snprintf(q->host, sizeof(q->host), "%s", g->h->server_host);
        snprintf(q->port, sizeof(q->port), "%u",
                 (unsigned)g->h->server_port + 1);
    }
    if (r != 0) {
        hd_info(MOD, "relay request with a bad relay address ignored");
        free(q);
        return;
    }
    hd_info(MOD, "relay request: connecting to %s:%s", q->host, q->port);
    if (relay_resolve(q) != 0)
        free(q);
}

void reg_on_request_relay(struct reg *g, const Hbb__RequestRelay *rr)
{
    const char *relay = rr->relay_server;

    /* the relay the viewer named; ours only when it named none */
    relay_begin(g, &rr->socket_addr, relay && relay[0] ? relay : NULL,
                relay && relay[0] ? NULL : g->h->o->relay, rr->uuid);
}

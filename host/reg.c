/*
 * Rendezvous client of the host.  See reg.h.  Memory: struct reg embeds
 * its UDP socket and timer and is freed when both have closed; the TCP
 * registration link, one-shot answers and relay requests are separate
 * allocations, each freed by its own close callbacks (reg_link.c,
 * reg_serve.c; reg_int.h says which file does what).
 */
#include "host/reg_int.h"

/* ---- sending ------------------------------------------------------------ */

int reg_pack(const Hbb__RendezvousMessage *m, uint8_t **out, size_t *len)
{
    return hd_msg_pack(&m->base, out, len);
}

void reg_send_udp(struct reg *g, const Hbb__RendezvousMessage *m)
{
    uint8_t buf[1024];
    int n;

    if (!g->udp_open || !g->have_server)
        return;
    if ((n = hd_msg_pack_into(&m->base, buf, sizeof(buf))) < 0)
        return;
    hd_net_udp_send(&g->udp, (struct sockaddr *)&g->server, buf, (size_t)n);
}

/* ---- registration ------------------------------------------------------- */

void reg_register_peer(struct reg *g)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPeer rp = HBB__REGISTER_PEER__INIT;

    rp.id = g->h->ident.id;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER;
    m.register_peer = &rp;
    reg_send_rdv(g, &m);
}

void reg_register_pk(struct reg *g)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPk rk = HBB__REGISTER_PK__INIT;
    struct ident *id = &g->h->ident;

    if (uv_now(g->loop) < g->pk_backoff_until)
        return;
    rk.id = id->id;
    rk.uuid.data = (uint8_t *)id->uuid;
    rk.uuid.len = strlen(id->uuid);
    rk.pk.data = id->key.pk;
    rk.pk.len = HD_SIGN_PK_BYTES;
    rk.old_id = g->old_id;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK;
    m.register_pk = &rk;
    reg_send_rdv(g, &m);
}

static void new_id(struct reg *g, const char *why)
{
    uint64_t now = uv_now(g->loop);
    int r;

    if (g->last_new_id_ms != 0 && now - g->last_new_id_ms < NEW_ID_MIN_MS) {
        hd_warn(MOD, "server refuses ID %s (%s); waiting before a new one",
                g->h->ident.id, why);
        return;
    }
    g->last_new_id_ms = now;
    if ((r = ident_new_id(&g->h->ident, g->old_id)) != 0)
        return;
    hd_warn(MOD,
            "server refuses ID %s (%s: registered to another machine); "
            "switching to the new ID %s",
            g->old_id, why, g->h->ident.id);
    printf("id: %s\n", g->h->ident.id);
    fflush(stdout);
    g->registered = 0;
    reg_register_pk(g);
}

static void on_pk_response(struct reg *g, const Hbb__RegisterPkResponse *r)
{
    switch (r->result) {
    case HBB__REGISTER_PK_RESPONSE__RESULT__OK:
        if (!g->registered)
            hd_info(MOD, "registered ID %s with %s", g->h->ident.id,
                    g->server_name);
        g->registered = 1;
        g->old_id[0] = '\0';
        break;
    case HBB__REGISTER_PK_RESPONSE__RESULT__UUID_MISMATCH:
        new_id(g, "UUID_MISMATCH");
        break;
    case HBB__REGISTER_PK_RESPONSE__RESULT__ID_EXISTS:
        new_id(g, "ID_EXISTS");
        break;
    case HBB__REGISTER_PK_RESPONSE__RESULT__INVALID_ID_FORMAT:
        new_id(g, "INVALID_ID_FORMAT");
        break;
    case HBB__REGISTER_PK_RESPONSE__RESULT__TOO_FREQUENT:
        hd_warn(MOD, "server says registrations are too frequent; "
                     "backing off for 30 s");
        g->pk_backoff_until = uv_now(g->loop) + TOO_FREQUENT_MS;
        break;
    default:
        hd_warn(MOD, "server refused our key (result %d)", (int)r->result);
        break;
    }
}

/* ---- dispatch ------------------------------------------------------------ */

/* A request by UDP "from the server" that we do not carry out: logged
 * at once, then at most every REG_IGNORED_LOG_MS with a count. */
static void udp_ignored(struct reg *g, int what)
{
    uint64_t now = uv_now(g->loop);

    g->ignored++;
    if (g->ignored_logged_ms != 0 &&
        now - g->ignored_logged_ms < REG_IGNORED_LOG_MS)
        return;
    hd_warn(MOD,
            "ignored %llu request(s) by UDP from %s's address (last: "
            "message %d): %s",
            (unsigned long long)g->ignored, g->server_name, what,
            g->key_mismatch ? "the server does not hold --key"
            : g->udp_trust == UDP_REFUSED
                ? "this server sends them over its secure link (forged?)"
                : "the secure link to the server is not up yet");
    g->ignored = 0;
    g->ignored_logged_ms = now;
}

void reg_handle(struct reg *g, const uint8_t *data, size_t n, int via_tcp)
{
    Hbb__RendezvousMessage *m;

    if ((m = hbb__rendezvous_message__unpack(NULL, n, data)) == NULL) {
        hd_debug(MOD, "undecodable message from the server");
        return;
    }
    if (!via_tcp && g->udp_trust != UDP_TRUSTED &&
        m->union_case !=
            HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER_RESPONSE) {
        /* the answer to our RegisterPk by UDP: the one over the link is
         * the one that counts */
        if (m->union_case !=
            HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK_RESPONSE)
            udp_ignored(g, m->union_case);
        hbb__rendezvous_message__free_unpacked(m, NULL);
        return;
    }
    if (m->union_case != HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE) {
        g->unanswered = 0;
        if (g->silent) {
            hd_info(MOD, "server %s answers again%s", g->server_name,
                    via_tcp ? " (over TCP)" : "");
            g->silent = 0;
        }
    }
    switch (m->union_case) {
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER_RESPONSE:
        if (!via_tcp && g->tcp == NULL && reg_link_wanted(g))
            reg_tcp_start(g); /* the server is back: the link too, at once */
        if (!via_tcp && g->tcp != NULL && !reg_link_wanted(g)) {
            reg_tcp_drop(g, "UDP works again");
            /* a RegisterPeer the link carried may have given the server
             * the link's address for us: the UDP one again, at once */
            reg_register_peer(g);
        }
        if (m->register_peer_response->request_pk) {
            if (g->registered)
                hd_info(MOD, "server asks for our key again: registering");
            g->registered = 0;
            reg_register_pk(g);
        } else if (!g->registered) {
            hd_info(MOD, "registered ID %s with %s", g->h->ident.id,
                    g->server_name);
            g->registered = 1;
            g->probe_err = 0;
        }
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK_RESPONSE:
        on_pk_response(g, m->register_pk_response);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_FETCH_LOCAL_ADDR:
        reg_on_fetch_local_addr(g, m->fetch_local_addr);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE:
        reg_on_punch_hole(g, m->punch_hole);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY:
        reg_on_request_relay(g, m->request_relay);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE:
        break; /* a late offer on a link that did not wait for one */
    default:
        hd_debug(MOD, "message %d from the server ignored", (int)m->union_case);
        break;
    }
    hbb__rendezvous_message__free_unpacked(m, NULL);
}

static void udp_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct reg *g = hd->data;

    buf->base = (char *)g->rbuf;
    buf->len = sizeof(g->rbuf);
}

static void udp_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
                     const struct sockaddr *from, unsigned flags)
{
    struct reg *g = u->data;
    struct sockaddr_storage ss;

    if (n <= 0 || from == NULL || g->closing)
        return;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, from, hd_addr_len(from));
    hd_addr_normalize(&ss);
    if (!g->have_server ||
        !hd_addr_same_ip((struct sockaddr *)&ss,
                         (struct sockaddr *)&g->server) ||
        hd_addr_port((struct sockaddr *)&ss) !=
            hd_addr_port((struct sockaddr *)&g->server)) {
        /* a viewer's UDP punch probe or session data (upunch.h) */
        if (!(flags & UV_UDP_PARTIAL))
            upunch_datagram(g->h, u, (struct sockaddr *)&ss,
                            (const uint8_t *)buf->base, (size_t)n);
        return;
    }
    reg_handle(g, (const uint8_t *)buf->base, (size_t)n, 0);
}

static int open_udp(struct reg *g)
{
    struct sockaddr_storage any;
    int r;

    if (g->udp_open)
        return 0;
    hd_addr_parse(g->server.ss_family == AF_INET6 ? "::" : "0.0.0.0", 0, &any);
    if ((r = hd_net_bind_udp(g->loop, &g->udp, (struct sockaddr *)&any, 0)) !=
        0) {
        hd_error(MOD, "cannot open a UDP socket: %s", uv_strerror(r));
        return r;
    }
    g->udp.data = g;
    g->udp_open = 1;
    g->handles++;
    uv_udp_recv_start(&g->udp, udp_alloc, udp_recv);
    return 0;
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    struct reg *g = req->data;
    struct sockaddr_storage ss;

    g->resolving = 0;
    if (status == UV_ECANCELED || g->closing) {
        uv_freeaddrinfo(ai);
        if (g->closing && g->handles == 0)
            free(g);
        return;
    }
    if (status != 0 || ai == NULL) {
        if (!g->silent)
            hd_warn(MOD, "cannot resolve %s: %s (will retry)",
                    g->h->server_host, uv_strerror(status));
        uv_freeaddrinfo(ai);
        return;
    }
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    uv_freeaddrinfo(ai);
    hd_addr_normalize(&ss);
    if (g->have_server && ss.ss_family != g->server.ss_family && g->udp_open) {
        /* another family: a new socket (closed one is not reused) */
        return;
    }
    g->server = ss;
    g->have_server = 1;
    hd_addr_format((struct sockaddr *)&ss, g->server_name,
                   sizeof(g->server_name));
    if (open_udp(g) == 0)
        reg_register_peer(g);
    if (reg_link_wanted(g))
        reg_tcp_start(g);
    punch_nat_test(g->h, (struct sockaddr *)&g->server);
    g->natt_at = uv_now(g->loop) + REG_NAT_TEST_MS;
}

void reg_resolve(struct reg *g)
{
    struct addrinfo hints;
    char port[8];
    int r;

    if (g->resolving)
        return;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    snprintf(port, sizeof(port), "%u", (unsigned)g->h->server_port);
    g->gai.data = g;
    if ((r = uv_getaddrinfo(g->loop, &g->gai, resolved, g->h->server_host, port,
                            &hints)) == 0)
        g->resolving = 1;
    else
        hd_warn(MOD, "cannot resolve %s: %s", g->h->server_host,
                uv_strerror(r));
}

static void on_tick(uv_timer_t *t)
{
    struct reg *g = t->data;
    unsigned interval = (unsigned)g->h->o->reg_interval_ms;

    if (!g->have_server) {
        reg_resolve(g);
        return;
    }
    /* the first tick comes after REG_FIRST_ANSWER_MS; then while silent */
    if (!g->registered && g->probe != NULL)
        reg_probe_say(g, UV_ETIMEDOUT); /* a whole interval without a SYN-ACK */
    if (!g->registered && (g->ticks++ == 0 || g->silent))
        reg_probe_start(g);
    if (++g->unanswered >= REG_SILENT_ROUNDS) {
        if (!g->silent) {
            hd_warn(MOD,
                    "no answer from the rendezvous server %s for %u s; "
                    "still trying",
                    g->server_name, g->unanswered * interval / 1000);
            g->silent = 1;
            g->registered = 0;
        }
        reg_resolve(g); /* the name may point elsewhere now */
        if (g->h->o->reg_tcp == 0 && g->tcp == NULL)
            reg_tcp_start(g);
    }
    if (reg_link_wanted(g) && g->tcp == NULL)
        reg_tcp_start(g);
    reg_link_tick(g);
    reg_register_peer(g);
    if (uv_now(g->loop) >= g->natt_at) { /* the network may have changed */
        punch_nat_test(g->h, (struct sockaddr *)&g->server);
        g->natt_at = uv_now(g->loop) + REG_NAT_TEST_MS;
    }
}

int reg_start(struct host *h, struct reg **out)
{
    struct reg *g;
    size_t len = 0;

    *out = NULL;
    if ((g = calloc(1, sizeof(*g))) == NULL)
        return -ENOMEM;
    g->udp_trust = UDP_TRUSTED;
    if (h->o->key != NULL && h->o->key[0] != '\0') {
        if (hd_base64_decode(h->o->key, strlen(h->o->key), g->server_pk,
                             sizeof(g->server_pk), &len) != 0 ||
            len != HD_SIGN_PK_BYTES) {
            hd_error(MOD,
                     "--key '%s' is not a server key (the 44 characters of "
                     "the server's id_ed25519.pub)",
                     h->o->key);
            free(g);
            return -EINVAL;
        }
        g->have_pk = 1;
        if (h->o->reg_tcp != -1)
            g->udp_trust = UDP_UNDECIDED;
    }
    g->h = h;
    g->loop = h->loop;
    uv_timer_init(h->loop, &g->timer);
    g->timer.data = g;
    g->handles = 1;
    snprintf(g->server_name, sizeof(g->server_name), "%s", h->server_host);
    reg_resolve(g);
    uv_timer_start(&g->timer, on_tick,
                   (uint64_t)(h->o->reg_interval_ms < REG_FIRST_ANSWER_MS
                                  ? h->o->reg_interval_ms
                                  : REG_FIRST_ANSWER_MS),
                   (uint64_t)h->o->reg_interval_ms);
    *out = g;
    return 0;
}

static void reg_closed(uv_handle_t *hd)
{
    struct reg *g = hd->data;

    if (--g->handles == 0 && !g->resolving)
        free(g);
}

void reg_stop(struct reg *g)
{
    if (g == NULL)
        return;
    g->closing = 1;
    if (g->resolving)
        uv_cancel((uv_req_t *)&g->gai);
    reg_tcp_drop(g, NULL);
    if (g->probe != NULL) { /* its close callback frees it */
        g->probe->g = NULL;
        hd_net_close((uv_handle_t *)&g->probe->tcp, reg_probe_closed);
        g->probe = NULL;
    }
    punch_stop_all(g->h);
    upunch_stop_all(g->h);
    if (g->udp_open)
        hd_net_close((uv_handle_t *)&g->udp, reg_closed);
    hd_net_close((uv_handle_t *)&g->timer, reg_closed);
}

/*
 * Rendezvous role (see rdv.h): helpers, the UDP socket and the life
 * cycle.  Connections, punch and relay requests and peer registration are
 * in the files beside it (rdv_int.h says which does what).
 */
#include "server/rdv_int.h"
#include "server/rejects.h"

/* ---- helpers ---------------------------------------------------------- */

void rdv_addr_key(const struct sockaddr *sa, uint8_t key[18])
{
    memset(key, 0, 18);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &in->sin_addr, 4);
        memcpy(key + 16, &in->sin_port, 2);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(key, &in6->sin6_addr, 16);
        memcpy(key + 16, &in6->sin6_port, 2);
    }
}

static void cookie_at(const struct rdv *r, const struct sockaddr *sa,
                      uint64_t slot, uint8_t out[RDV_COOKIE_LEN])
{
    uint8_t in[18 + 8];

    rdv_addr_key(sa, in);
    for (int i = 0; i < 8; i++)
        in[18 + i] = (uint8_t)(slot >> (8 * i));
    crypto_shorthash(out, in, sizeof(in), r->cookie_key);
}

void rdv_udp_cookie(const struct rdv *r, const struct sockaddr *sa,
                    uint8_t out[RDV_COOKIE_LEN])
{
    cookie_at(r, sa, uv_now(r->loop) / RDV_COOKIE_SLOT_MS, out);
}

int rdv_udp_cookie_ok(const struct rdv *r, const struct sockaddr *sa,
                      const uint8_t *cookie, size_t len)
{
    uint64_t slot = uv_now(r->loop) / RDV_COOKIE_SLOT_MS;
    uint8_t want[RDV_COOKIE_LEN];

    if (cookie == NULL || len != RDV_COOKIE_LEN)
        return 0;
    cookie_at(r, sa, slot, want);
    if (sodium_memcmp(want, cookie, RDV_COOKIE_LEN) == 0)
        return 1;
    if (slot == 0)
        return 0;
    cookie_at(r, sa, slot - 1, want);
    return sodium_memcmp(want, cookie, RDV_COOKIE_LEN) == 0;
}

static const void *conn_key(const void *item, size_t *len)
{
    *len = 18;
    return ((const struct rdv_conn *)item)->key;
}

int rdv_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
    uint8_t ka[18], kb[18];

    rdv_addr_key(a, ka);
    rdv_addr_key(b, kb);
    return memcmp(ka, kb, 16) == 0;
}

int rdv_is_lan(const struct rdv *r, const struct sockaddr *sa)
{
    return r->cfg->has_mask && hd_cidr_contains(&r->cfg->mask, sa);
}

const char *rdv_relay_for(struct rdv *r)
{
    const struct rdv_config *c = r->cfg;

    if (c->n_relay_servers == 0)
        return "";
    if (c->n_relay_servers == 1)
        return c->relay_servers[0];
    return c->relay_servers[r->relay_rr++ % c->n_relay_servers];
}

void rdv_set_from_storage(union peer_addr *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET)
        memcpy(&a->in, sa, sizeof(a->in));
    else if (sa->sa_family == AF_INET6)
        memcpy(&a->in6, sa, sizeof(a->in6));
}

/*
 * Pack m into buf (cap bytes).  Returns the length, or 0 if it does not
 * fit (never the case for the small messages the server builds).
 */
size_t rdv_pack_msg(const Hbb__RendezvousMessage *m, uint8_t *buf, size_t cap)
{
    size_t n = hbb__rendezvous_message__get_packed_size(m);

    if (n > cap)
        return 0;
    return hbb__rendezvous_message__pack(m, buf);
}

/* ---- UDP ------------------------------------------------------------------
 */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct rdv *r = h->data;

    buf->base = (char *)r->udp_buf;
    buf->len = sizeof(r->udp_buf);
}

static void udp_garbage(struct rdv *r, const struct sockaddr *from)
{
    uint64_t now = uv_now(r->loop);
    char s[HD_ADDR_STRLEN];

    r->stats.rej_udp_garbage++;
    rdv_reject(r, from, "bad UDP datagram", NULL);
    r->garbage_since_log++;
    /* one line per second at most: a flood must not flood the log */
    if (now - r->garbage_logged_ms >= 1000) {
        hd_addr_format(from, s, sizeof(s));
        hd_info("rdv", "ignored %llu bad UDP datagram(s), last from %s",
                (unsigned long long)r->garbage_since_log, s);
        r->garbage_logged_ms = now;
        r->garbage_since_log = 0;
    }
}

static void udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                     const struct sockaddr *addr, unsigned flags)
{
    struct rdv *r = u->data;
    struct sockaddr_storage from;
    Hbb__RendezvousMessage *m;

    if (nread <= 0 || addr == NULL)
        return;
    memset(&from, 0, sizeof(from));
    memcpy(&from, addr,
           addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
    hd_addr_normalize(&from);
    if (flags & UV_UDP_PARTIAL) {
        udp_garbage(r, (struct sockaddr *)&from);
        return;
    }
    r->udp_request_len = (size_t)nread;
    m = hbb__rendezvous_message__unpack(NULL, (size_t)nread,
                                        (const uint8_t *)buf->base);
    if (m == NULL) {
        udp_garbage(r, (struct sockaddr *)&from);
        return;
    }
    switch (m->union_case) {
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER:
        rdv_on_register_peer(r, NULL, (struct sockaddr *)&from,
                             m->register_peer);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK:
        rdv_on_register_pk(r, NULL, (struct sockaddr *)&from, m->register_pk);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST:
        rdv_on_punch_request(r, NULL, (struct sockaddr *)&from,
                             m->punch_hole_request);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_SENT: {
        Hbb__PunchHoleSent *s = m->punch_hole_sent;
        rdv_on_host_ready(r, NULL, (struct sockaddr *)&from, &s->socket_addr,
                          NULL, s->id, s->relay_server, s->version, s->nat_type,
                          s->upnp_port, &s->socket_addr_v6);
        break;
    }
    case HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST:
        rdv_on_udp_test_nat(r, (struct sockaddr *)&from);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_LOCAL_ADDR: {
        Hbb__LocalAddr *la = m->local_addr;
        rdv_on_host_ready(r, NULL, (struct sockaddr *)&from, &la->socket_addr,
                          &la->local_addr, la->id, la->relay_server,
                          la->version, 0, 0, NULL);
        break;
    }
    default:
        udp_garbage(r, (struct sockaddr *)&from);
        break;
    }
    hbb__rendezvous_message__free_unpacked(m, NULL);
}

/* ---- life cycle ---------------------------------------------------------- */

static void on_sweep(uv_timer_t *t)
{
    struct rdv *r = t->data;
    uint64_t now = uv_now(r->loop);
    size_t n = peer_table_sweep(&r->peers, now, r->cfg->evict_ms);

    limit_sweep(&r->punch_src, now);
    limit_sweep(&r->punch_id, now);
    limit_sweep(&r->online_src, now);
    limit_sweep(&r->online_keyless, now);

    if (n > 0)
        hd_info("rdv", "dropped %zu silent peer(s) from memory", n);
}

void rdv_config_defaults(struct rdv_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->bind_ip = "::";
    cfg->port = 21116;
    cfg->enable_ws = 1;
    cfg->licence_key = "";
    cfg->key_exchange = 1;
    cfg->first_frame_ms = 30000;
    cfg->idle_ms = 30000;
    cfg->max_conns = 10000;
    cfg->evict_ms = 3600 * 1000;
}

int rdv_new(uv_loop_t *loop, const struct rdv_config *cfg, struct db *db,
            struct rdv **out)
{
    struct rdv *r;

    *out = NULL;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return -ENOMEM;
    r->loop = loop;
    r->cfg = cfg;
    peer_table_init(&r->peers, db);
    hmap_init(&r->punch, conn_key);
    limit_init(&r->punch_src, RDV_PUNCH_BURST, RDV_PUNCH_PER_S, RDV_LIMIT_KEYS);
    limit_init(&r->punch_id, RDV_PUNCH_BURST, RDV_PUNCH_PER_S, RDV_LIMIT_KEYS);
    limit_init(&r->online_src, RDV_ONLINE_BURST, RDV_ONLINE_PER_S,
               RDV_LIMIT_KEYS);
    limit_init(&r->online_keyless, RDV_ONLINE_KEYLESS_BURST,
               RDV_ONLINE_KEYLESS_PER_S, RDV_LIMIT_KEYS);
    randombytes_buf(r->cookie_key, sizeof(r->cookie_key));
    limit_count_init(&r->per_ip, RDV_CONNS_PER_IP);
    *out = r;
    return 0;
}

static int listen_on(struct rdv *r, uv_tcp_t *t, uint16_t port,
                     uv_connection_cb cb)
{
    struct sockaddr_storage ss;
    int rc;

    if ((rc = hd_addr_parse(r->cfg->bind_ip, port, &ss)) != 0)
        return rc;
    t->data = r;
    return hd_net_listen_tcp(r->loop, t, (struct sockaddr *)&ss, 512, cb);
}

int rdv_start(struct rdv *r, uint16_t *failed_port)
{
    const struct rdv_config *c = r->cfg;
    struct sockaddr_storage ss;
    int rc;

    *failed_port = c->port;
    if ((rc = hd_addr_parse(c->bind_ip, c->port, &ss)) != 0)
        return rc;
    r->udp.data = r;
    if ((rc = hd_net_bind_udp(r->loop, &r->udp, (struct sockaddr *)&ss, 0)) !=
        0)
        return rc;
    r->started = 1;
    if (c->rmem > 0) {
        int size = c->rmem > INT32_MAX ? INT32_MAX : (int)c->rmem;
        uv_recv_buffer_size((uv_handle_t *)&r->udp, &size);
    }
    if ((rc = uv_udp_recv_start(&r->udp, udp_alloc, udp_recv)) != 0)
        return rc;
    if ((rc = listen_on(r, &r->lis_main, c->port, rdv_on_accept_main)) != 0)
        return rc;
    *failed_port = (uint16_t)(c->port - 1);
    if ((rc = listen_on(r, &r->lis_nat, (uint16_t)(c->port - 1),
                        rdv_on_accept_nat)) != 0)
        return rc;
    if (c->enable_ws) {
        *failed_port = (uint16_t)(c->port + 2);
        if ((rc = listen_on(r, &r->lis_ws, (uint16_t)(c->port + 2),
                            rdv_on_accept_ws)) != 0)
            return rc;
    }
    uv_timer_init(r->loop, &r->sweep);
    r->sweep.data = r;
    uv_timer_start(&r->sweep, on_sweep, RDV_SWEEP_MS, RDV_SWEEP_MS);
    *failed_port = 0;
    return 0;
}

static void close_if_open(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h))
        uv_close(h, NULL);
}

void rdv_stop(struct rdv *r)
{
    while (r->conns != NULL)
        rdv_conn_close(r->conns, NULL);
    close_if_open((uv_handle_t *)&r->udp);
    close_if_open((uv_handle_t *)&r->lis_main);
    close_if_open((uv_handle_t *)&r->lis_nat);
    close_if_open((uv_handle_t *)&r->lis_ws);
    close_if_open((uv_handle_t *)&r->sweep);
}

void rdv_free(struct rdv *r)
{
    if (r == NULL)
        return;
    peer_table_cleanup(&r->peers);
    hmap_cleanup(&r->punch);
    limit_cleanup(&r->punch_src);
    limit_cleanup(&r->punch_id);
    limit_cleanup(&r->online_src);
    limit_cleanup(&r->online_keyless);
    limit_count_cleanup(&r->per_ip);
    free(r);
}

void rdv_reject(struct rdv *r, const struct sockaddr *from, const char *reason,
                const char *id_q)
{
    rejects_add(r->cfg->rejects, "rendezvous", reason, from, id_q);
}

void rdv_foreach_peer(struct rdv *r,
                      void (*fn)(void *ud, const struct rdv_peer_info *pi),
                      void *ud)
{
    uint64_t now = uv_now(r->loop);
    struct peer *p;
    size_t i = 0;

    while ((p = hmap_next(&r->peers.peers, &i)) != NULL) {
        struct rdv_peer_info pi = {
            .id = p->id,
            .addr = &p->addr.sa,
            .idle_ms = p->last_reg_ms ? now - p->last_reg_ms : UINT64_MAX,
            .online = peer_is_online(p, now),
            .nat_type = p->nat_known ? p->nat_type : -1,
            .tcp = p->conn != NULL && peer_prefers_tcp(p, now),
            .secure = p->conn != NULL && p->conn_secure,
        };

        fn(ud, &pi);
    }
}

void rdv_get_stats(struct rdv *r, struct rdv_stats *out, uint64_t *registered,
                   uint64_t *online)
{
    *out = r->stats;
    *registered = r->peers.peers.count;
    *online = peer_table_online(&r->peers, uv_now(r->loop));
}

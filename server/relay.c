/*
 * Relay role (hbbr replacement): the listeners (TCP and WebSocket) and the
 * public functions of relay.h.  The work is done in the files beside it
 * (see relay_int.h for which does what).
 */
#include "server/relay_int.h"

/* ---- small helpers ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- listener ---- */

static void on_connection_common(uv_stream_t *srv, int status, int is_ws)
{
    struct relay *r = srv->data;
    struct relay_conn *c;
    struct sockaddr_storage ss;
    int len = sizeof(ss), ret;

    if (status < 0) {
        hd_warn(MOD, "accept: %s", hd_strerror(status));
        return;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        hd_error(MOD, "accept: out of memory");
        return;
    }
    c->relay = r;
    c->tp = is_ws ? &relay_ws_transport : &relay_tcp_transport;
    c->state = CONN_HELLO;
    snprintf(c->name, sizeof(c->name), "?");
    snprintf(c->ipstr, sizeof(c->ipstr), "?");
    uv_tcp_init(r->loop, &c->tcp);
    uv_timer_init(r->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open = 2;
    c->sfd = c->pipe[0] = c->pipe[1] = -1;
    c->next = r->conns;
    if (r->conns)
        r->conns->prev = c;
    r->conns = c;
    r->nconns++;
    r->st.conns_active++;
    if ((ret = uv_accept(srv, (uv_stream_t *)&c->tcp)) != 0) {
        hd_warn(MOD, "accept: %s", hd_strerror(ret));
        relay_conn_close(c);
        return;
    }
    memset(&ss, 0, sizeof(ss));
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);
    relay_ip_from_sockaddr(&ss, c->ip, c->ipstr, sizeof(c->ipstr), c->name,
                           sizeof(c->name));
    if (relay_iplist_has(&r->block, c->ip)) {
        hd_info(MOD, "blocked %s", c->ipstr);
        relay_conn_reject(c, RELAY_REJECT_BLOCKED);
        return;
    }
    if (r->cfg.max_conns && r->nconns > r->cfg.max_conns) {
        hd_warn(MOD, "refused %s: %u connections open", c->name,
                r->cfg.max_conns);
        relay_conn_reject(c, RELAY_REJECT_OVERLOAD);
        return;
    }
    /* unpaired ones per source (behind a trusted proxy, WebSocket clients
     * share its address: not counted) */
    if (!(is_ws && r->trusted_proxy)) {
        struct sockaddr_storage key_ss;

        memcpy(&key_ss, &ss, sizeof(ss));
        hd_addr_normalize(&key_ss);
        c->ipkey_len =
            (uint8_t)limit_addr_key((struct sockaddr *)&key_ss, c->ipkey);
        if (!limit_count_add(&r->unpaired_ip, c->ipkey, c->ipkey_len)) {
            hd_info(MOD, "refused %s: %d unpaired connections from %s", c->name,
                    RELAY_UNPAIRED_PER_IP, c->ipstr);
            relay_conn_reject(c, RELAY_REJECT_OVERLOAD);
            return;
        }
        c->counted = 1;
    }
    if (is_ws) {
        struct ws_config wc = { .max_message = HD_RELAY_MAX_FIRST_FRAME,
                                .peer_desc = c->name };
        struct ws_callbacks cb = { .on_write = relay_ws_on_write,
                                   .on_message = relay_ws_on_message,
                                   .on_close = relay_ws_on_close };

        if ((ret = ws_new(&wc, &cb, c, &c->ws)) != 0) {
            hd_error(MOD, "accept: %s", hd_strerror(ret));
            relay_conn_reject(c, RELAY_REJECT_OVERLOAD);
            return;
        }
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, relay_deadline_cb, r->cfg.first_frame_ms, 0);
    relay_conn_update_reading(c);
}

static void on_connection(uv_stream_t *srv, int status)
{
    on_connection_common(srv, status, 0);
}

static void on_connection_ws(uv_stream_t *srv, int status)
{
    on_connection_common(srv, status, 1);
}

static void relay_handle_closed(uv_handle_t *h)
{
    struct relay *r = h->data;

    r->open_handles--;
    relay_maybe_free(r);
}

/* Bind and listen on port with h; *bound = the port bound. */
static int bind_listener(struct relay *r, uv_tcp_t *h, int *init, int port,
                         uv_connection_cb cb, int *bound)
{
    struct sockaddr_storage ss;
    const char *addr = r->bind_addr;
    int ret, fd, off = 0;
    int len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (!addr || !addr[0]) {
        /* Dual-stack "::" with V6ONLY off; IPv4 only when no IPv6. */
        uv_ip6_addr("::", port, (struct sockaddr_in6 *)&ss);
        ret = uv_tcp_init_ex(r->loop, h, AF_INET6);
        if (ret == UV_EAFNOSUPPORT) {
            uv_ip4_addr("0.0.0.0", port, (struct sockaddr_in *)&ss);
            ret = uv_tcp_init_ex(r->loop, h, AF_INET);
        } else if (ret == 0 && uv_fileno((uv_handle_t *)h, &fd) == 0) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        }
    } else if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) == 0) {
        ret = uv_tcp_init_ex(r->loop, h, AF_INET);
    } else if (uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) == 0) {
        ret = uv_tcp_init_ex(r->loop, h, AF_INET6);
    } else {
        hd_error(MOD, "bad bind address %s", addr);
        return HD_ECONFIG;
    }
    if (ret != 0) {
        hd_error(MOD, "relay socket: %s", hd_strerror(ret));
        return ret;
    }
    *init = 1;
    r->open_handles++;
    h->data = r;
    if ((ret = uv_tcp_bind(h, (struct sockaddr *)&ss, 0)) != 0 ||
        (ret = uv_listen((uv_stream_t *)h, 1024, cb)) != 0) {
        hd_error(MOD, "cannot listen on TCP port %d: %s", port,
                 hd_strerror(ret));
        return ret;
    }
    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len) == 0)
        *bound = ntohs(ss.ss_family == AF_INET6
                           ? ((struct sockaddr_in6 *)&ss)->sin6_port
                           : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* ---- public ---- */

void relay_config_defaults(struct relay_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = 21117;
    cfg->single_mbps = 128;
    cfg->total_mbps = 1024;
    cfg->limit_mbps = 32;
    cfg->downgrade_threshold = 0.66;
    cfg->downgrade_start_ms = 1800 * 1000;
    cfg->first_frame_ms = 30000;
    cfg->pair_wait_ms = 30000;
    cfg->idle_ms = 30000;
    cfg->list_check_ms = 5000;
    cfg->buf_size = 32 * 1024;
    cfg->max_conns = 20000;
    cfg->pipe_size = 1024 * 1024;
}

int relay_new(uv_loop_t *loop, const struct relay_config *cfg,
              struct relay **out)
{
    struct relay *r = NULL;
    int ret;

    *out = NULL;
    if (cfg->port < 0 || cfg->port > 65535 || cfg->ws_port < -1 ||
        cfg->ws_port > 65535 || (cfg->ws_port == 0 && cfg->port > 65533) ||
        cfg->single_mbps < 0 || cfg->total_mbps < 0 || cfg->limit_mbps < 0 ||
        cfg->downgrade_threshold < 0 || cfg->buf_size < 1024 ||
        cfg->buf_size > (1u << 30) || cfg->pipe_size > (1u << 20) ||
        cfg->first_frame_ms == 0 || cfg->pair_wait_ms == 0 || cfg->idle_ms == 0)
        return HD_ECONFIG;
    if (sodium_init() < 0)
        return HD_ECRYPTO;
    if (!(r = calloc(1, sizeof(*r))))
        return -ENOMEM;
    r->loop = loop;
    r->cfg = *cfg;
    limit_count_init(&r->unpaired_ip, RELAY_UNPAIRED_PER_IP);
    r->key = dup_or_null(cfg->key ? cfg->key : "");
    r->data_dir = dup_or_null(cfg->data_dir);
    r->bind_addr = dup_or_null(cfg->bind_addr);
    if (cfg->trusted_proxy && cfg->trusted_proxy[0])
        r->trusted_proxy = strdup(cfg->trusted_proxy);
    if (!r->key || (cfg->data_dir && !r->data_dir) ||
        (cfg->bind_addr && !r->bind_addr) ||
        (cfg->trusted_proxy && cfg->trusted_proxy[0] && !r->trusted_proxy)) {
        ret = -ENOMEM;
        goto out;
    }
    r->key_len = strlen(r->key);
    r->cfg.key = r->key;
    r->cfg.data_dir = r->data_dir;
    r->cfg.bind_addr = r->bind_addr;
    r->cfg.trusted_proxy = r->trusted_proxy;
    r->tick_ms = cfg->idle_ms / 4;
    if (r->tick_ms > 1000)
        r->tick_ms = 1000;
    if (r->tick_ms < 10)
        r->tick_ms = 10;
    randombytes_buf(r->hash_key, sizeof(r->hash_key));
    relay_bucket_set(&r->total, cfg->total_mbps, cfg->buf_size, uv_now(loop));
    r->total.tokens = r->total.burst;
    *out = r;
    r = NULL;
    ret = 0;
out:
    if (r) {
        free(r->key);
        free(r->data_dir);
        free(r->bind_addr);
        free(r->trusted_proxy);
        free(r);
    }
    return ret;
}

int relay_start(struct relay *r)
{
    int ret;

    relay_lists_load(r, 1);
    if ((ret = bind_listener(r, &r->listener, &r->listener_init, r->cfg.port,
                             on_connection, &r->port)) != 0)
        return ret;
    if (r->cfg.ws_port >= 0) {
        int wp = r->cfg.ws_port ? r->cfg.ws_port
                 : r->cfg.port  ? r->cfg.port + 2
                                : 0;
        if ((ret = bind_listener(r, &r->ws_listener, &r->ws_listener_init, wp,
                                 on_connection_ws, &r->ws_port)) != 0)
            return ret;
    }
    if (r->data_dir && r->cfg.list_check_ms) {
        uv_timer_init(r->loop, &r->list_timer);
        r->list_timer.data = r;
        r->timer_init = 1;
        r->open_handles++;
        uv_timer_start(&r->list_timer, relay_list_timer_cb,
                       r->cfg.list_check_ms, r->cfg.list_check_ms);
    }
    if (r->ws_port)
        hd_info(MOD, "listening on TCP port %d, WebSocket port %d%s", r->port,
                r->ws_port, r->key_len ? "" : " (no key check)");
    else
        hd_info(MOD, "listening on TCP port %d%s", r->port,
                r->key_len ? "" : " (no key check)");
    return 0;
}

int relay_port(const struct relay *r)
{
    return r->port;
}

int relay_ws_port(const struct relay *r)
{
    return r->ws_port;
}

void relay_stop(struct relay *r)
{
    struct relay_conn *c;

    if (r->stopped)
        return;
    r->stopped = 1;
    if (r->listener_init)
        uv_close((uv_handle_t *)&r->listener, relay_handle_closed);
    if (r->ws_listener_init)
        uv_close((uv_handle_t *)&r->ws_listener, relay_handle_closed);
    if (r->timer_init)
        uv_close((uv_handle_t *)&r->list_timer, relay_handle_closed);
    for (c = r->conns; c; c = c->next) {
        if (c->pair)
            relay_pair_close(c->pair, "shutdown");
        else
            relay_conn_close(c);
    }
}

void relay_maybe_free(struct relay *r)
{
    if (!r->free_pending || r->open_handles > 0 || r->conns)
        return;
    free(r->black.ips);
    free(r->block.ips);
    free(r->map);
    free(r->key);
    free(r->data_dir);
    free(r->bind_addr);
    free(r->trusted_proxy);
    limit_count_cleanup(&r->unpaired_ip);
    free(r);
}

void relay_free(struct relay *r)
{
    if (!r)
        return;
    relay_stop(r);
    r->free_pending = 1;
    relay_maybe_free(r);
}

int relay_reload_lists(struct relay *r)
{
    return relay_lists_load(r, 1);
}

void relay_get_stats(const struct relay *r, struct relay_stats *out)
{
    *out = r->st;
    out->blacklist_size = r->black.n;
    out->blocklist_size = r->block.n;
}

const char *relay_reject_name(enum relay_reject why)
{
    static const char *const names[RELAY_REJECT_COUNT] = {
        [RELAY_REJECT_BLOCKED] = "blocked",
        [RELAY_REJECT_KEY] = "key",
        [RELAY_REJECT_PROTO] = "protocol",
        [RELAY_REJECT_TOOBIG] = "too_big",
        [RELAY_REJECT_TIMEOUT] = "timeout",
        [RELAY_REJECT_UNPAIRED] = "unpaired",
        [RELAY_REJECT_EOF] = "eof",
        [RELAY_REJECT_OVERLOAD] = "overload",
    };

    if ((unsigned)why >= RELAY_REJECT_COUNT)
        return "unknown";
    return names[why];
}

void relay_foreach_pair(struct relay *r,
                        void (*fn)(void *ud, const struct relay_pair_info *pi),
                        void *ud)
{
    uint64_t now = uv_now(r->loop);

    /* r->conns starts with the newest; a pair is listed once, at its
     * first side */
    for (struct relay_conn *c = r->conns; c != NULL; c = c->next) {
        struct relay_pair *p = c->pair;
        struct relay_pair_info pi;

        if (c->state != CONN_PAIRED || p == NULL || p->closing || p->a != c)
            continue;
        memset(&pi, 0, sizeof(pi));
        relay_uuid_tag(p->a->uuid ? p->a->uuid : "", pi.hash);
        relay_conn_addr(p->a, &pi.a);
        relay_conn_addr(p->b, &pi.b);
        pi.a_ws = p->a->tp->message_based;
        pi.b_ws = p->b->tp->message_based;
        pi.age_ms = now - p->started;
        pi.idle_ms = now - p->last_active;
        pi.bytes = p->bytes;
        pi.limited = p->limited;
        pi.downgraded = p->downgraded;
        fn(ud, &pi);
    }
}

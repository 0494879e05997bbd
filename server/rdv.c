/*
 * Rendezvous role (see rdv.h).  Connections are struct rdv_conn; each has
 * a TCP handle and a timer, and is freed when both are closed.  A
 * connection that asked for a punch hole or a relay waits in the punch
 * map, keyed by its address, until the host's answer comes back
 * (PunchHoleSent, LocalAddr, RelayResponse carry that address mangled).
 * Messages to a host go by UDP to the address its heartbeats come from,
 * or over its TCP connection when it registered over TCP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "frame.h"
#include "log.h"
#include "net.h"
#include "rendezvous.pb-c.h"
#include "server/limit.h"
#include "server/peer.h"
#include "server/rdv.h"
#include "server/ws.h"

#define RDV_MAX_FRAME        (64 * 1024)
#define RDV_MAX_WRITE_QUEUE  (256 * 1024)
#define RDV_MAX_ONLINE_QUERY 512 /* peers in one OnlineRequest */
#define RDV_SWEEP_MS         (60 * 1000)

/*
 * Budgets (DESIGN.md section 8).  Punch requests: per source (IPv4
 * address or IPv6 /64) and per target ID, each a burst of
 * RDV_PUNCH_BURST then RDV_PUNCH_PER_S a second; a viewer makes one per
 * connection attempt.  OnlineRequest: RDV_ONLINE_BURST IDs then
 * RDV_ONLINE_PER_S IDs a second per source, each request costing
 * RDV_ONLINE_REQ_COST more (4 million IDs took 10.6 s before; now about
 * 9 hours).  At most RDV_LIMIT_KEYS sources or IDs are tracked per budget.
 */
#define RDV_PUNCH_BURST     30
#define RDV_PUNCH_PER_S     1.0
#define RDV_ONLINE_BURST    2048
#define RDV_ONLINE_PER_S    128.0
#define RDV_ONLINE_REQ_COST 4
#define RDV_LIMIT_KEYS      65536
#define RDV_CONNS_PER_IP    256 /* open connections per source address */

enum conn_kind { CONN_MAIN, CONN_NAT, CONN_WS };

/* One log line per second at most for one kind of refusal. */
struct logcap {
    uint64_t logged_ms, since;
};

struct rdv_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    int handles; /* open handles; freed at 0 */
    struct rdv *rdv;
    enum conn_kind kind;
    unsigned closing : 1, secured : 1, got_frame : 1, in_punch : 1;
    unsigned counted : 1; /* in rdv->per_ip under ipkey */
    uint8_t ipkey[17], ipkey_len;
    union peer_addr addr; /* the peer as seen (or as a trusted proxy says) */
    uint8_t key[18];      /* punch-map key: ip16 + port */
    /* while in the punch map: the ID it asked about; only that ID's
     * registered host may answer, and the signed IdPk names it */
    char want_id[PEER_ID_MAX + 1];
    char name[HD_ADDR_STRLEN];
    struct hd_frame_decoder dec;
    struct ws *ws;
    struct hd_box_key kx; /* our ephemeral key until the client answers */
    int kx_pending;
    struct hd_secure sec;
    struct peer *peer; /* registered over this connection */
    struct rdv_conn *prev, *next;
};

struct rdv {
    uv_loop_t *loop;
    const struct rdv_config *cfg;
    struct peer_table peers;
    struct hmap punch; /* struct rdv_conn by key, waiting for an answer */
    struct limit punch_src, punch_id, online_src; /* budgets, see above */
    struct limit_count per_ip; /* open connections per source address */
    /* rate limits of the "refused" log lines, one per kind */
    struct logcap log_udp_punch, log_punch_budget, log_online_budget;
    struct logcap log_not_owner;
    uv_udp_t udp;
    uv_tcp_t lis_main, lis_nat, lis_ws;
    uv_timer_t sweep;
    int started;
    struct rdv_conn *conns;
    size_t relay_rr; /* round robin over relay servers */
    uint64_t garbage_logged_ms;
    uint64_t garbage_since_log;
    size_t udp_request_len; /* size of the datagram being handled */
    uint8_t udp_buf[RDV_MAX_FRAME];
    struct rdv_stats stats;
};

/* ---- helpers ---------------------------------------------------------- */

static void addr_key(const struct sockaddr *sa, uint8_t key[18])
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

static const void *conn_key(const void *item, size_t *len)
{
    *len = 18;
    return ((const struct rdv_conn *)item)->key;
}

static int same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
    uint8_t ka[18], kb[18];

    addr_key(a, ka);
    addr_key(b, kb);
    return memcmp(ka, kb, 16) == 0;
}

static int is_lan(const struct rdv *r, const struct sockaddr *sa)
{
    return r->cfg->has_mask && hd_cidr_contains(&r->cfg->mask, sa);
}

static const char *relay_for(struct rdv *r)
{
    const struct rdv_config *c = r->cfg;

    if (c->n_relay_servers == 0)
        return "";
    if (c->n_relay_servers == 1)
        return c->relay_servers[0];
    return c->relay_servers[r->relay_rr++ % c->n_relay_servers];
}

static void set_from_storage(union peer_addr *a, const struct sockaddr *sa)
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
static size_t pack_msg(const Hbb__RendezvousMessage *m, uint8_t *buf,
                       size_t cap)
{
    size_t n = hbb__rendezvous_message__get_packed_size(m);

    if (n > cap)
        return 0;
    return hbb__rendezvous_message__pack(m, buf);
}

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

static void conn_close(struct rdv_conn *c, const char *why)
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
    if (c->peer != NULL && c->peer->conn == c)
        c->peer->conn = NULL;
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
        conn_close(c, "peer does not read its replies");
        return;
    }
    if ((rc = hd_net_write((uv_stream_t *)&c->tcp, data, n, NULL)) != 0)
        conn_close(c, hd_strerror(rc));
}

/* ws callback: bytes to put on the wire. */
static int conn_ws_write(void *ud, const uint8_t *data, size_t n)
{
    struct rdv_conn *c = ud;

    conn_write_raw(c, data, n);
    return c->closing ? -EPIPE : 0;
}

/* Send one message on a connection: framed (and sealed) or WebSocket. */
static void conn_send(struct rdv_conn *c, const Hbb__RendezvousMessage *m)
{
    uint8_t buf[4 + RDV_MAX_FRAME + crypto_secretbox_MACBYTES];
    uint8_t plain[RDV_MAX_FRAME];
    size_t n, hdr;
    uint8_t *payload = buf + 4;

    if (c->closing)
        return;
    if ((n = pack_msg(m, plain, sizeof(plain))) == 0) {
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
static int send_to_waiting(struct rdv *r, const struct sockaddr *a,
                           const Hbb__RendezvousMessage *m)
{
    uint8_t key[18];
    struct rdv_conn *c;

    addr_key(a, key);
    c = hmap_del(&r->punch, key, sizeof(key));
    if (c == NULL)
        return -ENOENT;
    c->in_punch = 0;
    conn_send(c, m);
    return 0;
}

/* A datagram to a registered host (its address came with its key). */
static void udp_send(struct rdv *r, const struct sockaddr *to,
                     const Hbb__RendezvousMessage *m)
{
    uint8_t buf[RDV_MAX_FRAME];
    size_t n = pack_msg(m, buf, sizeof(buf));

    if (n > 0)
        hd_net_udp_send(&r->udp, to, buf, n);
}

/*
 * A reply to the source of the datagram being handled.  UDP sources are
 * unverified (spoofable), so a reply is never larger than the request:
 * the server cannot be used to amplify traffic towards a victim.
 */
static void udp_reply(struct rdv *r, const struct sockaddr *to,
                      const Hbb__RendezvousMessage *m)
{
    uint8_t buf[RDV_MAX_FRAME];
    size_t n = pack_msg(m, buf, sizeof(buf));

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
static void send_to_peer(struct rdv *r, struct peer *p,
                         const Hbb__RendezvousMessage *m)
{
    if (peer_prefers_tcp(p, uv_now(r->loop)))
        conn_send(p->conn, m);
    else
        udp_send(r, &p->addr.sa, m);
}

static void wait_for_answer(struct rdv_conn *c, const char *id)
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
static void signed_pk(struct rdv *r, const char *version, const char *id,
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
    if (hd_idpk_sign(r->cfg->key, id, p->pk, p->pk_len, to_free, &out->len) ==
        0)
        out->data = *to_free;
}

/*
 * One info line per second at most for each kind of refused request (a
 * flood must not flood the log): what was refused, from where, the quoted
 * ID, and how many of that kind since the last line.
 */
static void log_refused(struct rdv *r, struct logcap *cap, const char *what,
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

/* ---- message handlers ------------------------------------------------- */

static void punch_failure(struct rdv *r, struct rdv_conn *c,
                          const struct sockaddr *udp_from,
                          Hbb__PunchHoleResponse__Failure failure)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__PunchHoleResponse ph = HBB__PUNCH_HOLE_RESPONSE__INIT;

    ph.failure = failure;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE;
    m.punch_hole_response = &ph;
    if (c != NULL)
        conn_send(c, &m);
    else
        udp_reply(r, udp_from, &m);
}

/* Over budget: the viewer is told to come back later (clients show
 * other_failure as the reason). */
static void punch_busy(struct rdv_conn *c)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__PunchHoleResponse ph = HBB__PUNCH_HOLE_RESPONSE__INIT;

    ph.failure = HBB__PUNCH_HOLE_RESPONSE__FAILURE__OFFLINE;
    ph.other_failure = "Too many connection attempts; try again in a minute";
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE;
    m.punch_hole_response = &ph;
    conn_send(c, &m);
}

/*
 * PunchHoleRequest from viewer A (connection c, or UDP from `from`):
 * check the key and the host, then ask the host to punch or to tell its
 * LAN address.
 */
static void on_punch_request(struct rdv *r, struct rdv_conn *c,
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
        wait_for_answer(c, ph->id);
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
        log_refused(r, &r->log_udp_punch,
                    "punch request over UDP (unverified source) from", from_s,
                    id_q);
        return;
    }
    if (!limit_take(&r->punch_src, src_key, limit_addr_key(from, src_key), 1,
                    now) ||
        !limit_take(&r->punch_id, ph->id, strlen(ph->id), 1, now)) {
        r->stats.rej_punch_budget++;
        log_refused(r, &r->log_punch_budget, "punch request over budget from",
                    from_s, id_q);
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
    peer_lan = is_lan(r, &p->addr.sa);
    me_lan = is_lan(r, from);
    relay = relay_for(r);
    forced_relay = r->cfg->always_use_relay || (peer_lan ^ me_lan);
    if (forced_relay) {
        if (peer_lan && r->cfg->local_ip != NULL && r->cfg->local_ip[0])
            relay = r->cfg->local_ip;
        nat = HBB__NAT_TYPE__SYMMETRIC; /* makes both sides relay */
    }
    same_intranet = !ws && ((peer_lan && me_lan) || same_ip(&p->addr.sa, from));
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
        /* the viewer's public UDP port (it asked us over UDP), for a host
         * that punches UDP too */
        if (!forced_relay && ph->udp_port > 0 && ph->udp_port <= 65535)
            hole.udp_port = ph->udp_port;
        /* the viewer's own IPv6 address for the host to punch to, unless
         * the relay is imposed */
        if (!forced_relay && ph->socket_addr_v6.len <= HD_ADDR_MANGLED_MAX)
            hole.socket_addr_v6 = ph->socket_addr_v6;
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE;
        m.punch_hole = &hole;
    }
    r->stats.punch_ok++;
    hd_info("rdv", "punch %s -> %s (%s)%s", from_s, id_q,
            same_intranet ? "same LAN: fetch local address" : "punch hole",
            nat == HBB__NAT_TYPE__SYMMETRIC ? ", relay" : "");
    send_to_peer(r, p, &m);
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

    addr_key(viewer, key);
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
        owner = p->conn == from_c || same_ip(&p->addr.sa, from);
    else
        owner = same_ip(&p->addr.sa, from) &&
                hd_addr_port(&p->addr.sa) == hd_addr_port(from);
    if (!owner) {
        char what_s[80];

        r->stats.rej_not_owner++;
        snprintf(what_s, sizeof(what_s),
                 "%s refused (not the registered "
                 "host of the id) from",
                 what);
        log_refused(r, &r->log_not_owner, what_s,
                    hd_addr_format(from, from_s, sizeof(from_s)),
                    hd_log_quote(w->want_id, id_q, sizeof(id_q)));
        return NULL;
    }
    return w;
}

/* The host's PunchHoleSent or LocalAddr: answer the waiting viewer. */
static void on_host_ready(struct rdv *r, struct rdv_conn *from_c,
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
        if (p != NULL && !peer_prefers_tcp(p, uv_now(r->loop))) {
            ph.udp_socket_addr.data = umangled;
            ph.udp_socket_addr.len =
                hd_addr_mangle(&p->addr.sa, hd_addr_now_us(), umangled);
        }
    }
    signed_pk(r, version, id, &ph.pk, &sig);
    ph.relay_server = (char *)(relay_server ? relay_server : "");
    ph.upnp_port = upnp_port;
    if (v6 != NULL && v6->len <= HD_ADDR_MANGLED_MAX)
        ph.socket_addr_v6 = *v6; /* the host's IPv6 punch address */
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE;
    m.punch_hole_response = &ph;
    hd_addr_format((struct sockaddr *)&viewer, vs, sizeof(vs));
    if (send_to_waiting(r, (struct sockaddr *)&viewer, &m) != 0)
        hd_debug("rdv", "answer for %s from %s: viewer gone", vs, id);
    else
        hd_debug("rdv", "punch answer %s -> %s", id, vs);
    free(sig);
}

/* RequestRelay from viewer A: forward to host B with A's address. */
static void on_request_relay(struct rdv *r, struct rdv_conn *c,
                             const Hbb__RequestRelay *req)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    uint8_t mangled[HD_ADDR_MANGLED_MAX];
    struct peer *p = peer_find(&r->peers, req->id);
    /* a shallow copy to edit: the unpacked message keeps its pointers */
    Hbb__RequestRelay fwd = *req, *rr = &fwd;

    /* forward only what we understand: unknown fields from one peer must
     * not reach another (protobuf-c repacks some it cannot read back) */
    fwd.base.n_unknown_fields = 0;
    fwd.base.unknown_fields = NULL;
    fwd.control_permissions = NULL;
    fwd.controlled_context = NULL;

    r->stats.relay_requests++;
    wait_for_answer(c, req->id);
    if (p == NULL || !peer_is_online(p, uv_now(r->loop))) {
        Hbb__RelayResponse resp = HBB__RELAY_RESPONSE__INIT;

        resp.uuid = rr->uuid;
        resp.refuse_reason =
            p ? "Remote desktop is offline" : "ID does not exist";
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE;
        m.relay_response = &resp;
        hd_info("rdv", "relay request %s -> %s: %s", c->name, rr->id,
                resp.refuse_reason);
        send_to_waiting(r, &c->addr.sa, &m);
        return;
    }
    rr->socket_addr.data = mangled;
    rr->socket_addr.len =
        hd_addr_mangle(&c->addr.sa, hd_addr_now_us(), mangled);
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = rr;
    hd_info("rdv", "relay request %s -> %s via %s", c->name, rr->id,
            rr->relay_server[0] ? rr->relay_server : "(default)");
    send_to_peer(r, p, &m);
}

/* RelayResponse from host B: route to viewer A with the signed key. */
static void on_relay_response(struct rdv *r, struct rdv_conn *c,
                              const Hbb__RelayResponse *resp)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    struct sockaddr_storage viewer;
    struct rdv_conn *w;
    uint8_t *sig = NULL;
    ProtobufCBinaryData pk;
    /* a shallow copy to edit: the unpacked message keeps its pointers */
    Hbb__RelayResponse fwd = *resp, *rr = &fwd;

    fwd.base.n_unknown_fields = 0; /* see on_request_relay */
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
        signed_pk(r, rr->version, w->want_id, &pk, &sig);
        rr->union_case = HBB__RELAY_RESPONSE__UNION_PK;
        rr->pk = pk;
    }
    if (rr->relay_server != NULL && rr->relay_server[0]) {
        const char *lip = r->cfg->local_ip ? r->cfg->local_ip : "";

        if (is_lan(r, (struct sockaddr *)&viewer) && lip[0])
            rr->relay_server = (char *)lip;
        else if (lip[0] && strcmp(rr->relay_server, lip) == 0)
            rr->relay_server = (char *)relay_for(r);
    }
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE;
    m.relay_response = rr;
    if (send_to_waiting(r, (struct sockaddr *)&viewer, &m) != 0)
        hd_debug("rdv", "relay response from %s: viewer gone", c->name);
    free(sig);
}

static void on_test_nat(struct rdv *r, struct rdv_conn *c)
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
    conn_send(c, &m);
}

/*
 * TestNatRequest over UDP (homedesk extension): the port this datagram
 * came from, so a viewer learns its public UDP port for UDP punching (a
 * STUN binding request, in effect).  The answer carries no ConfigUpdate
 * and, like every UDP answer, is never larger than the request.
 */
static void on_udp_test_nat(struct rdv *r, const struct sockaddr *from)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__TestNatResponse t = HBB__TEST_NAT_RESPONSE__INIT;

    r->stats.nat_tests++;
    t.port = hd_addr_port(from);
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_RESPONSE;
    m.test_nat_response = &t;
    udp_reply(r, from, &m);
}

static void on_online_request(struct rdv *r, struct rdv_conn *c,
                              const Hbb__OnlineRequest *req)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__OnlineResponse resp = HBB__ONLINE_RESPONSE__INIT;
    uint8_t states[RDV_MAX_ONLINE_QUERY / 8], src_key[17];
    size_t n = req->n_peers;
    uint64_t now = uv_now(r->loop);
    char id_q[HD_LOG_QUOTE_MAX];

    r->stats.online_requests++;
    if (n > RDV_MAX_ONLINE_QUERY)
        n = RDV_MAX_ONLINE_QUERY;
    if (!limit_take(&r->online_src, src_key,
                    limit_addr_key(&c->addr.sa, src_key),
                    (double)(n + RDV_ONLINE_REQ_COST), now)) {
        r->stats.rej_online_budget++;
        log_refused(r, &r->log_online_budget, "online query over budget from",
                    c->name, hd_log_quote(req->id, id_q, sizeof(id_q)));
        conn_close(c, NULL);
        return;
    }
    memset(states, 0, sizeof(states));
    for (size_t i = 0; i < n; i++) {
        struct peer *p = peer_find(&r->peers, req->peers[i]);
        if (p != NULL && peer_is_online(p, now))
            states[i / 8] |= (uint8_t)(1u << (7 - i % 8));
    }
    resp.states.data = states;
    resp.states.len = (n + 7) / 8;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_ONLINE_RESPONSE;
    m.online_response = &resp;
    conn_send(c, &m);
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
        conn_send(c, &m);
    else
        udp_reply(r, from, &m);
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
        conn_send(c, &u);
    }
}

static void on_register_peer(struct rdv *r, struct rdv_conn *c,
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
     * RegisterPk (with the uuid) does, in on_register_pk. */
    reply_register_peer(r, c, from, request_pk, rp->serial);
}

static void on_register_pk(struct rdv *r, struct rdv_conn *c,
                           const struct sockaddr *from,
                           const Hbb__RegisterPk *rk)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPkResponse resp = HBB__REGISTER_PK_RESPONSE__INIT;
    enum peer_pk_result res;

    r->stats.register_pk++;
    res = peer_register_pk(&r->peers, rk->id ? rk->id : "", rk->uuid.data,
                           rk->uuid.len, rk->pk.data, rk->pk.len, from,
                           uv_now(r->loop));
    if (res == PEER_PK_IGNORE)
        return;
    if (res == PEER_PK_OK && c != NULL) {
        struct peer *p = peer_find(&r->peers, rk->id);
        if (p != NULL) {
            if (p->conn != NULL && p->conn != c)
                p->conn->peer = NULL;
            p->conn = c;
            c->peer = p;
        }
    }
    resp.result = (Hbb__RegisterPkResponse__Result)res;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK_RESPONSE;
    m.register_pk_response = &resp;
    if (c != NULL)
        conn_send(c, &m);
    else
        udp_reply(r, from, &m);
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
    uint8_t signed_pk[crypto_sign_BYTES + 32], offer[HD_SIGNATURE_BYTES];
    unsigned long long slen;
    int rc;

    if ((rc = hd_box_key_generate(&c->kx)) != 0)
        return rc;
    c->kx_pending = 1;
    crypto_sign(signed_pk, &slen, c->kx.pk, 32, c->rdv->cfg->key->sk);
    hd_kx_offer_sign(c->rdv->cfg->key, c->kx.pk, offer);
    key.data = signed_pk;
    key.len = (size_t)slen;
    kx.n_keys = 1;
    kx.keys = &key;
    kx.hd_kx.data = offer;
    kx.hd_kx.len = sizeof(offer);
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE;
    m.key_exchange = &kx;
    conn_send(c, &m);
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
            return HD_ECRYPTO;
        }
        data = plain;
        n -= crypto_secretbox_MACBYTES;
    }
    m = hbb__rendezvous_message__unpack(NULL, n, data);
    if (m == NULL) {
        r->stats.rej_bad_proto++;
        return HD_EPROTO;
    }
    if (c->kind == CONN_NAT) {
        /* one request per connection */
        if (m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST)
            on_test_nat(r, c);
        else if (m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_ONLINE_REQUEST)
            on_online_request(r, c, m->online_request);
        else
            rc = HD_EPROTO;
        goto out;
    }
    switch (m->union_case) {
    case HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE:
        rc = on_key_exchange(c, m->key_exchange);
        if (rc != 0)
            r->stats.rej_key_exchange++;
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST:
        on_punch_request(r, c, &c->addr.sa, m->punch_hole_request);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY:
        on_request_relay(r, c, m->request_relay);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE:
        on_relay_response(r, c, m->relay_response);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_SENT: {
        Hbb__PunchHoleSent *s = m->punch_hole_sent;
        on_host_ready(r, c, &c->addr.sa, &s->socket_addr, NULL, s->id,
                      s->relay_server, s->version, s->nat_type, s->upnp_port,
                      &s->socket_addr_v6);
        break;
    }
    case HBB__RENDEZVOUS_MESSAGE__UNION_LOCAL_ADDR: {
        Hbb__LocalAddr *la = m->local_addr;
        on_host_ready(r, c, &c->addr.sa, &la->socket_addr, &la->local_addr,
                      la->id, la->relay_server, la->version, 0, 0, NULL);
        break;
    }
    case HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST:
        on_test_nat(r, c);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_ONLINE_REQUEST:
        on_online_request(r, c, m->online_request);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER:
        on_register_peer(r, c, &c->addr.sa, m->register_peer);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK:
        on_register_pk(r, c, &c->addr.sa, m->register_pk);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_HC:
        break; /* health check: the connection is alive */
    default: {
        char why[64];

        r->stats.rej_unexpected++;
        snprintf(why, sizeof(why), "unexpected message %d", (int)m->union_case);
        conn_close(c, why); /* logs the precise reason once */
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
    conn_close(c, c->got_frame ? "idle timeout" : "no request in time");
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
            conn_close(c, "message too large");
        } else {
            /* a peer going away is normal: not worth an info line */
            hd_debug("rdv", "%s: %s", c->name, uv_strerror((int)nread));
            conn_close(c, NULL);
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
            conn_close(c, hd_strerror(rc));
        }
        return;
    }
    hd_frame_decoder_commit(&c->dec, (size_t)nread);
    while (!c->closing &&
           (rc = hd_frame_decoder_next(&c->dec, &payload, &len)) == 1) {
        if ((rc = conn_handle_msg(c, payload, len)) != 0) {
            conn_close(c, hd_strerror(rc));
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
        conn_close(c, hd_strerror(rc));
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
            set_from_storage(&c->addr, (struct sockaddr *)&ss);
            addr_key(&c->addr.sa, c->key);
            hd_addr_format(&c->addr.sa, c->name, sizeof(c->name));
        }
    }
    if ((rc = conn_handle_msg(c, data, n)) != 0)
        conn_close(c, hd_strerror(rc));
}

static void conn_ws_close(void *ud, int reason)
{
    conn_close(ud, reason ? hd_strerror(reason) : NULL);
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
        conn_close(c, NULL);
        return;
    }
    hd_net_peer_addr(&c->tcp, &ss);
    set_from_storage(&c->addr, (struct sockaddr *)&ss);
    addr_key(&c->addr.sa, c->key);
    hd_addr_format(&c->addr.sa, c->name, sizeof(c->name));
    if (r->stats.conns_active > r->cfg->max_conns) {
        r->stats.rej_too_many_conns++;
        conn_close(c, "too many connections");
        return;
    }
    /* per source address (but for a trusted reverse proxy: its WebSocket
     * clients all come from its address) */
    if (!(kind == CONN_WS && r->cfg->trusted_proxy != NULL)) {
        c->ipkey_len = (uint8_t)limit_addr_key(&c->addr.sa, c->ipkey);
        if (!limit_count_add(&r->per_ip, c->ipkey, c->ipkey_len)) {
            r->stats.rej_too_many_conns++;
            conn_close(c, "too many connections from this address");
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
            conn_close(c, hd_strerror(rc));
            return;
        }
    }
    if ((rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read)) !=
        0) {
        conn_close(c, uv_strerror(rc));
        return;
    }
    hd_debug("rdv", "connection from %s on %s", c->name,
             kind == CONN_MAIN  ? "tcp"
             : kind == CONN_NAT ? "nat"
                                : "ws");
    if (kind == CONN_MAIN && r->cfg->key_exchange && r->cfg->key != NULL &&
        conn_offer_key_exchange(c) != 0)
        conn_close(c, "key exchange setup failed");
}

static void on_accept_main(uv_stream_t *s, int status)
{
    on_accept(s, status, CONN_MAIN);
}

static void on_accept_nat(uv_stream_t *s, int status)
{
    on_accept(s, status, CONN_NAT);
}

static void on_accept_ws(uv_stream_t *s, int status)
{
    on_accept(s, status, CONN_WS);
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
        on_register_peer(r, NULL, (struct sockaddr *)&from, m->register_peer);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK:
        on_register_pk(r, NULL, (struct sockaddr *)&from, m->register_pk);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST:
        on_punch_request(r, NULL, (struct sockaddr *)&from,
                         m->punch_hole_request);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_SENT: {
        Hbb__PunchHoleSent *s = m->punch_hole_sent;
        on_host_ready(r, NULL, (struct sockaddr *)&from, &s->socket_addr, NULL,
                      s->id, s->relay_server, s->version, s->nat_type,
                      s->upnp_port, &s->socket_addr_v6);
        break;
    }
    case HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST:
        on_udp_test_nat(r, (struct sockaddr *)&from);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_LOCAL_ADDR: {
        Hbb__LocalAddr *la = m->local_addr;
        on_host_ready(r, NULL, (struct sockaddr *)&from, &la->socket_addr,
                      &la->local_addr, la->id, la->relay_server, la->version, 0,
                      0, NULL);
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
    if ((rc = listen_on(r, &r->lis_main, c->port, on_accept_main)) != 0)
        return rc;
    *failed_port = (uint16_t)(c->port - 1);
    if ((rc = listen_on(r, &r->lis_nat, (uint16_t)(c->port - 1),
                        on_accept_nat)) != 0)
        return rc;
    if (c->enable_ws) {
        *failed_port = (uint16_t)(c->port + 2);
        if ((rc = listen_on(r, &r->lis_ws, (uint16_t)(c->port + 2),
                            on_accept_ws)) != 0)
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
        conn_close(r->conns, NULL);
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
    limit_count_cleanup(&r->per_ip);
    free(r);
}

void rdv_get_stats(struct rdv *r, struct rdv_stats *out, uint64_t *registered,
                   uint64_t *online)
{
    *out = r->stats;
    *registered = r->peers.peers.count;
    *online = peer_table_online(&r->peers, uv_now(r->loop));
}

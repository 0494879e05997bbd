/*
 * The rendezvous role's insides, shared by its files (other modules use
 * rdv.h).  rdv.c: helpers, UDP and the life cycle (rdv.h's functions);
 * rdv_conn.c: TCP and WebSocket connections, the secure channel and the
 * dispatch of their messages; rdv_punch.c: punch hole and relay requests
 * and the host's answers; rdv_peer.c: registration, NAT test and online
 * queries.
 *
 * Threads: all of it on the loop thread.
 */
#ifndef HD_SERVER_RDV_INT_H
#define HD_SERVER_RDV_INT_H

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
/* OnlineRequest without the server's key (RustDesk apps send none): a
 * smaller budget per source, and no more than RDV_ONLINE_KEYLESS_MAX IDs
 * looked up per request (the rest answered offline). */
#define RDV_ONLINE_KEYLESS_BURST 256
#define RDV_ONLINE_KEYLESS_PER_S 16.0
#define RDV_ONLINE_KEYLESS_MAX   128

/*
 * Return-routability cookies (a WireGuard cookie reply, in effect): the
 * answer to a UDP TestNatRequest carries a cookie for its source address,
 * SipHash under a key drawn at start over the address and a time slot of
 * RDV_COOKIE_SLOT_MS.  A PunchHoleRequest's udp_port is passed to the host
 * only with the cookie of (the viewer's address, udp_port), this slot's
 * or the last one's: only who receives at that port can have it, so a
 * host is never aimed at someone else's port.
 */
#define RDV_COOKIE_LEN     8
#define RDV_COOKIE_SLOT_MS 30000

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
    struct limit online_keyless;
    struct limit_count per_ip; /* open connections per source address */
    /* rate limits of the "refused" log lines, one per kind */
    struct logcap log_udp_punch, log_punch_budget, log_online_budget;
    struct logcap log_online_keyless;
    struct logcap log_not_owner, log_unproven;
    uint8_t cookie_key[16]; /* crypto_shorthash key, drawn at start */
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

/* rdv_conn.c */
void rdv_conn_close(struct rdv_conn *c, const char *why);
void rdv_conn_send(struct rdv_conn *c, const Hbb__RendezvousMessage *m);
int rdv_send_to_waiting(struct rdv *r, const struct sockaddr *a,
                        const Hbb__RendezvousMessage *m);
void rdv_udp_reply(struct rdv *r, const struct sockaddr *to,
                   const Hbb__RendezvousMessage *m);
void rdv_send_to_peer(struct rdv *r, struct peer *p,
                      const Hbb__RendezvousMessage *m);
void rdv_wait_for_answer(struct rdv_conn *c, const char *id);
void rdv_signed_pk(struct rdv *r, const char *version, const char *id,
                   ProtobufCBinaryData *out, uint8_t **to_free);
void rdv_log_refused(struct rdv *r, struct logcap *cap, const char *what,
                     const char *from_s, const char *id_q);
void rdv_on_accept_main(uv_stream_t *s, int status);
void rdv_on_accept_nat(uv_stream_t *s, int status);
void rdv_on_accept_ws(uv_stream_t *s, int status);

/* rdv_punch.c */
void rdv_on_punch_request(struct rdv *r, struct rdv_conn *c,
                          const struct sockaddr *from,
                          const Hbb__PunchHoleRequest *ph);
void rdv_on_host_ready(struct rdv *r, struct rdv_conn *from_c,
                       const struct sockaddr *host_addr,
                       const ProtobufCBinaryData *viewer_mangled,
                       const ProtobufCBinaryData *local_addr, const char *id,
                       const char *relay_server, const char *version,
                       int nat_type, int upnp_port,
                       const ProtobufCBinaryData *v6);
void rdv_on_request_relay(struct rdv *r, struct rdv_conn *c,
                          const Hbb__RequestRelay *req);
void rdv_on_relay_response(struct rdv *r, struct rdv_conn *c,
                           const Hbb__RelayResponse *resp);

/* rdv_peer.c */
void rdv_on_test_nat(struct rdv *r, struct rdv_conn *c);
void rdv_on_udp_test_nat(struct rdv *r, const struct sockaddr *from);
void rdv_on_online_request(struct rdv *r, struct rdv_conn *c,
                           const Hbb__OnlineRequest *req);
void rdv_on_register_peer(struct rdv *r, struct rdv_conn *c,
                          const struct sockaddr *from,
                          const Hbb__RegisterPeer *rp);
void rdv_on_register_pk(struct rdv *r, struct rdv_conn *c,
                        const struct sockaddr *from, const Hbb__RegisterPk *rk);

/* rdv.c */
/* Note a refusal for the admin page (rejects.h); id_q as hd_log_quote
 * wrote it, or NULL. */
void rdv_reject(struct rdv *r, const struct sockaddr *from, const char *reason,
                const char *id_q);
void rdv_addr_key(const struct sockaddr *sa, uint8_t key[18]);
int rdv_same_ip(const struct sockaddr *a, const struct sockaddr *b);
int rdv_is_lan(const struct rdv *r, const struct sockaddr *sa);
const char *rdv_relay_for(struct rdv *r);
void rdv_set_from_storage(union peer_addr *a, const struct sockaddr *sa);
/* The cookie for UDP source sa now (RDV_COOKIE_LEN bytes into out). */
void rdv_udp_cookie(const struct rdv *r, const struct sockaddr *sa,
                    uint8_t out[RDV_COOKIE_LEN]);
/* 1 when cookie (len bytes) is sa's of this slot or the last one. */
int rdv_udp_cookie_ok(const struct rdv *r, const struct sockaddr *sa,
                      const uint8_t *cookie, size_t len);
size_t rdv_pack_msg(const Hbb__RendezvousMessage *m, uint8_t *buf, size_t cap);

#endif

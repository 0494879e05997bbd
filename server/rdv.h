/*
 * The rendezvous role of homedesk-server (the hbbs replacement): UDP
 * registration on the base port, TCP punch-hole and relay requests on the
 * base port, the NAT test and online queries on base-1, and the WebSocket
 * flavour of the base port on base+2 (PROTOCOL.md section 4).
 *
 * One struct rdv owns its listeners, its UDP socket and every connection;
 * all of it runs on the loop thread.  Every peer input is bounded: a frame
 * is at most 64 KiB, a connection must send its first frame within
 * first_frame_ms and is closed after idle_ms of silence, at most max_conns
 * connections are open at once, and a peer whose replies pile up unread
 * beyond a write-queue cap is closed.  A bad input closes only that
 * connection, with one log line.
 *
 * Files: rdv.c (helpers, the UDP socket, this header's functions),
 * rdv_conn.c (TCP and WebSocket connections, KeyExchange, dispatch),
 * rdv_punch.c (punch hole and relay requests, the host's answers),
 * rdv_peer.c (registration, NAT test, online queries); their shared state
 * in rdv_int.h.  May call peer.h and db.h (the peer table), ws.h, limit.h
 * and common/; nothing of the relay role.
 */
#ifndef HD_SERVER_RDV_H
#define HD_SERVER_RDV_H

#include <stdint.h>

#include <uv.h>

#include "addr.h"
#include "crypto.h"

struct db;
struct rdv;
struct rejects;

struct rdv_config {
    const char *bind_ip; /* "::" (dual-stack, default) or an address */
    uint16_t port;       /* base port: UDP+TCP; NAT test port-1; WS port+2 */
    int enable_ws;       /* listen on port+2 */
    /* Server identity: signs IdPk and the KeyExchange (borrowed). */
    const struct hd_sign_key *key;
    /* Base64 public key clients must present; "" = no check. */
    const char *licence_key;
    const char *const *relay_servers; /* handed to clients; may be empty */
    size_t n_relay_servers;
    const char *const *rendezvous_servers; /* for ConfigUpdate */
    size_t n_rendezvous_servers;
    int serial;
    int always_use_relay;
    int has_mask;
    struct hd_cidr mask; /* LAN of the server, with local_ip */
    const char *local_ip;
    const char *trusted_proxy; /* honour X-Forwarded-For from it, or NULL */
    int key_exchange;          /* offer the secure TCP channel (default 1) */
    uint32_t first_frame_ms;   /* default 30000 */
    uint32_t idle_ms;          /* default 30000 */
    uint32_t max_conns;        /* default 10000 */
    uint64_t evict_ms;         /* drop silent peers from memory; 3600000 */
    uint64_t rmem;             /* UDP receive buffer, 0 = default */
    /* Refusals to note for the admin page (borrowed), or NULL. */
    struct rejects *rejects;
};

/* Fill cfg with the defaults above. */
void rdv_config_defaults(struct rdv_config *cfg);

struct rdv_stats {
    uint64_t conns_active;
    uint64_t punch_ok, punch_id_not_exist, punch_offline, punch_key_mismatch;
    uint64_t punch_local;
    uint64_t relay_requests, relay_responses;
    uint64_t heartbeats, register_pk;
    uint64_t secure_channels;
    uint64_t nat_tests, online_requests;
    /* rejected inputs by reason */
    uint64_t rej_bad_frame, rej_too_big, rej_bad_proto, rej_unexpected;
    uint64_t rej_timeout, rej_key_exchange, rej_too_many_conns, rej_slow;
    uint64_t rej_udp_garbage;
    uint64_t rej_udp_punch;    /* punch requests over UDP (not forwarded) */
    uint64_t rej_punch_budget; /* over the per-source or per-ID budget */
    uint64_t rej_online_budget;
    uint64_t rej_not_owner; /* answers for an ID from another address */
    /* udp_port / socket_addr_v6 of punch requests not passed on unproven */
    uint64_t dropped_unproven;
    uint64_t udp_replies_suppressed; /* would have been larger than asked */
};

/*
 * Create the role; cfg and every string it points to must outlive it.
 * db (borrowed) is the peer store.  Returns 0 or a negative error.
 */
int rdv_new(uv_loop_t *loop, const struct rdv_config *cfg, struct db *db,
            struct rdv **out);

/*
 * Bind and listen on every port.  On failure returns the negative error
 * and sets *failed_port to the port that could not be bound.
 */
int rdv_start(struct rdv *r, uint16_t *failed_port);

/*
 * Close every handle and connection; the loop must then run until it has
 * no more handles before rdv_free.
 */
void rdv_stop(struct rdv *r);

/* Free after rdv_stop and the loop drained.  Accepts NULL. */
void rdv_free(struct rdv *r);

/* Counters, and the peer table's size and online count. */
void rdv_get_stats(struct rdv *r, struct rdv_stats *out, uint64_t *registered,
                   uint64_t *online);

/* A peer in memory, as the admin page lists it.  Pointers valid only
 * during the callback. */
struct rdv_peer_info {
    const char *id;
    const struct sockaddr *addr; /* where its registrations come from */
    uint64_t idle_ms;            /* since its last accepted heartbeat */
    int online;                  /* heard within the online window */
    int nat_type; /* NatType from its last punch answer; -1: not known yet */
    int tcp;      /* takes messages over its TCP registration */
    int secure;   /* and that link is secure (KeyExchange) */
};

/* Call fn for every peer in memory, in no order; fn must not change r. */
void rdv_foreach_peer(struct rdv *r,
                      void (*fn)(void *ud, const struct rdv_peer_info *pi),
                      void *ud);

#endif

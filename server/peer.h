/*
 * The rendezvous server's view of registered peers: an in-memory table of
 * the peers heard from recently, backed by the SQLite store (db.h) that
 * keeps every ID and key across restarts.  Implements the registration
 * rules of PROTOCOL.md section 4 (RegisterPeer / RegisterPk, the per-IP
 * and per-ID rate limits, the UUID checks that stop ID hijacking).
 *
 * Memory: a peer costs one allocation of about 150 bytes plus one hash
 * slot; peers silent for longer than the eviction age are dropped from
 * memory (they stay in the database and come back on their next
 * RegisterPk).  Times are milliseconds of the loop's monotonic clock.
 * Loop thread only.
 */
#ifndef HD_SERVER_PEER_H
#define HD_SERVER_PEER_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/hmap.h"

#define PEER_ID_MAX         100
#define PEER_PK_MAX         32
#define PEER_REG_TIMEOUT_MS 30000 /* online = heard within this */

struct db;
struct rdv_conn;

union peer_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct peer {
    union peer_addr addr; /* where its registrations come from */
    uint64_t last_reg_ms; /* last accepted heartbeat; 0 = never */
    uint64_t last_udp_ms; /* last heartbeat over UDP; 0 = never */
    uint64_t reg_pk_ms;   /* last counted RegisterPk */
    uint8_t reg_pk_count; /* RegisterPk within 6 s of each other */
    uint8_t pk_len;
    uint8_t id_len;
    uint8_t conn_secure; /* conn is a secure link its RegisterPk came on */
    uint8_t nat_known;   /* nat_type was reported (a punch answer) */
    uint8_t nat_type;    /* Hbb NatType of its last PunchHoleSent */
    uint8_t guid[16];
    uint8_t uuid_hash[16]; /* BLAKE2b-128 of the stored uuid */
    uint8_t ip[16];        /* info.ip of the store, v4 as ::ffff:a.b.c.d */
    uint8_t pk[PEER_PK_MAX];
    struct rdv_conn *conn; /* registered over TCP, or NULL for UDP */
    char id[];             /* NUL-terminated */
};

/* RegisterPkResponse results (values of the wire enum). */
enum peer_pk_result {
    PEER_PK_OK = 0,
    PEER_PK_UUID_MISMATCH = 2,
    PEER_PK_TOO_FREQUENT = 4,
    PEER_PK_SERVER_ERROR = 7,
    PEER_PK_IGNORE = -1 /* empty uuid or pk: no answer, as the reference */
};

struct peer_table_stats {
    uint64_t registered;  /* peers in memory */
    uint64_t reg_changes; /* new IDs or key/uuid/IP changes stored */
    uint64_t uuid_mismatch;
    uint64_t too_frequent;
    uint64_t evicted;
    uint64_t db_errors;
};

struct peer_table {
    struct hmap peers;   /* struct peer by id */
    struct hmap blocker; /* per-IP registration counters */
    struct db *db;       /* may be NULL in unit tests */
    struct peer_table_stats stats;
};

/* Initialise; db (borrowed) may be NULL for a memory-only table. */
void peer_table_init(struct peer_table *t, struct db *db);

/* Free every peer and counter (db is not closed). */
void peer_table_cleanup(struct peer_table *t);

/* The peer with this ID in memory, or NULL. */
struct peer *peer_find(struct peer_table *t, const char *id);

/*
 * Does the ID exist at all (memory or database)?  Returns 1, 0, or a
 * negative error if the database failed.
 */
int peer_exists(struct peer_table *t, const char *id);

/* 1 when p was heard within PEER_REG_TIMEOUT_MS of now. */
int peer_is_online(const struct peer *p, uint64_t now);

/*
 * A RegisterPeer heartbeat from `from`.  Sets *request_pk as the
 * reference does when the server holds no key for the ID (not in memory)
 * or the peer's IP changed, and also when its port changed (unless
 * keep_addr): a heartbeat proves nothing, so an address change waits for
 * a RegisterPk with the right uuid (RustDesk hosts send one when asked,
 * as hbbs expects).  Otherwise refreshes its time (it is online).  No
 * address is exempt (loopback neither).  Returns the peer, or NULL if
 * unknown.
 */
struct peer *peer_heartbeat(struct peer_table *t, const char *id,
                            const struct sockaddr *from, uint64_t now,
                            int keep_addr, int *request_pk);

/*
 * Does p take messages over its TCP registration (p->conn) rather than
 * UDP?  Always when that link is secure (the host checked our key on it
 * and registered its key there: it takes requests only from there, as
 * UDP cannot be authenticated); else only while no UDP heartbeat came
 * within PEER_REG_TIMEOUT_MS: a host whose UDP works again drops a plain
 * TCP link, and a message sent into that closing link would be lost.
 */
int peer_prefers_tcp(const struct peer *p, uint64_t now);

/* Did p's UDP heartbeats come within PEER_REG_TIMEOUT_MS (so p->addr is
 * its UDP socket's address, to punch to)? */
int peer_udp_live(const struct peer *p, uint64_t now);

/*
 * The stored peer id when uuid and pk are exactly the ones it registered
 * (a host proving itself again, e.g. on its secure link), else NULL.
 * Loads it from the database when needed; changes nothing.
 */
struct peer *peer_same_owner(struct peer_table *t, const char *id,
                             const uint8_t *uuid, size_t uuid_len,
                             const uint8_t *pk, size_t pk_len);

/*
 * A RegisterPk from `from`: runs the checks of PROTOCOL.md in order and,
 * when they pass, stores the peer (insert or update in the database) and
 * marks it online.  Returns the result to answer with.
 */
enum peer_pk_result peer_register_pk(struct peer_table *t, const char *id,
                                     const uint8_t *uuid, size_t uuid_len,
                                     const uint8_t *pk, size_t pk_len,
                                     const struct sockaddr *from, uint64_t now);

/*
 * Drop peers silent for more than idle_ms, and per-IP counters older than
 * a day.  Peers with a live TCP registration stay.  Returns how many peers
 * were dropped.
 */
size_t peer_table_sweep(struct peer_table *t, uint64_t now, uint64_t idle_ms);

/* Number of peers online now (walks the table: for metrics, not hot). */
size_t peer_table_online(struct peer_table *t, uint64_t now);

#endif

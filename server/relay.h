/*
 * The relay role of homedesk-server (the hbbr replacement, TCP port 21117).
 *
 * Each accepted connection must send, within first_frame_ms, one framed
 * RendezvousMessage{request_relay{uuid, licence_key}} of at most 64 KiB.
 * Two connections with the same uuid are paired (the first waits up to
 * pair_wait_ms); from then on the relay copies bytes both ways, raw, first
 * forwarding whatever the peers sent after their first frame.  A pair with
 * no traffic for idle_ms is closed; when one side ends, the bytes already
 * read from it are flushed to the other side and both are closed.
 *
 * Invariants: memory per connection is bounded (one buffer of buf_size per
 * direction, 64 KiB + 4 for the first frame; TCP <-> TCP pairs splice(2)
 * through a pipe of pipe_size per direction instead, with no user-space
 * buffer once the bytes sent before pairing are out); a side is not read while
 * its bytes are still queued towards the other side (backpressure) or while it
 * is over its bandwidth budget (token buckets: per pair, per blacklisted
 * or downgraded pair, and one for the whole relay).  Bad peer input costs
 * one log line and that connection, never the process.
 *
 * Threads: every function here runs on the thread of the uv_loop_t given to
 * relay_new (the loop thread), unless its contract says otherwise.  The
 * process must ignore SIGPIPE (writes to a closed peer return EPIPE).
 *
 * The WebSocket flavour (ws_port, 21119 by default) follows the same rules
 * (key, pairing, timeouts, limits, lists): the upgrade request and one
 * binary message holding the bare RequestRelay (at most 64 KiB) must arrive
 * within first_frame_ms; until paired, messages stay within 64 KiB too; once
 * paired every binary message is one relayed message of at most
 * HD_RELAY_WS_MAX_MESSAGE bytes.  WebSocket <-> TCP
 * pairs convert message by message: the TCP side gets each message behind
 * a frame header (PROTOCOL.md section 1) and each of its frames goes out as
 * one message (a frame above HD_RELAY_WS_MAX_MESSAGE closes the pair);
 * WebSocket <-> WebSocket pairs pass messages through.  Memory of a
 * paired WebSocket side is bounded by about twice HD_RELAY_WS_MAX_MESSAGE
 * (the message being received, and one complete message queued).
 *
 * Memory before pairing (what anyone may open): an unpaired connection,
 * TCP or WebSocket, holds under 300 KiB (request, read buffer, one 64 KiB
 * message, early data); at most 64 unpaired connections per source address
 * (IPv4, IPv6 /64); all unpaired connections together at most 64 MiB of
 * buffers, the newest closed first beyond that.  So a flood from one
 * address costs at most ~19 MiB, and from anywhere 64 MiB plus ~1 KiB of
 * state per connection (max_conns bounds those).
 *
 * Files: relay.c (listeners, this header's functions), relay_core.c
 * (waiting map, lifetimes, forwarding, handshake), relay_tcp.c (TCP and
 * splice mode), relay_ws.c (WebSocket, on ws.h), relay_limits.c (token
 * buckets, downgrade, the pair tick), relay_lists.c (addresses, black and
 * block lists); their shared state in relay_int.h.  May call ws.h, limit.h
 * and common/ (framing, addresses); nothing of the rendezvous role.
 */
#ifndef HD_SERVER_RELAY_H
#define HD_SERVER_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* Maximum payload of the first frame (RequestRelay). */
#define HD_RELAY_MAX_FIRST_FRAME (64 * 1024)
/* Largest relayed message on the WebSocket port, and largest TCP frame
 * relayed to a WebSocket peer: video key frames of a 4K screen fit. */
#define HD_RELAY_WS_MAX_MESSAGE (16 * 1024 * 1024)

struct relay_config {
    /* Address to bind; NULL or "" = dual-stack any (falls back to
     * 0.0.0.0 when IPv6 is unavailable). */
    const char *bind_addr;
    int port; /* TCP port, 0 = ephemeral (see relay_port) */
    /* WebSocket port: -1 = none, 0 = port + 2 (ephemeral when port is 0),
     * else that port (see relay_ws_port).  Default 0. */
    int ws_port;
    /* On the WebSocket port, believe X-Real-IP / X-Forwarded-For from this
     * proxy address only (lists, logs); NULL = never.  Copied. */
    const char *trusted_proxy;
    /* Base64 server public key compared with RequestRelay.licence_key;
     * NULL or "" = no check (as hbbr without -k).  Copied. */
    const char *key;
    /* Folder holding blacklist.txt and blocklist.txt; NULL = no lists.
     * Copied. */
    const char *data_dir;
    /* Bandwidth in Mb/s (1 Mb/s = 1024*1024 bit/s), 0 = unlimited:
     * per pair (both directions together), the whole relay, and pairs
     * with a blacklisted IP or downgraded. */
    double single_mbps; /* SINGLE_BANDWIDTH, default 128 */
    double total_mbps;  /* TOTAL_BANDWIDTH, default 1024 */
    double limit_mbps;  /* LIMIT_SPEED, default 32 */
    /* Downgrade (as the reference): once a pair has lived longer than
     * downgrade_start_ms and its average rate since pairing exceeds
     * downgrade_threshold * single_mbps, it is capped at limit_mbps for
     * the rest of its life. */
    double downgrade_threshold;  /* DOWNGRADE_THRESHOLD, default 0.66 */
    uint64_t downgrade_start_ms; /* DOWNGRADE_START_CHECK * 1000,
                                  * default 1800 s */
    unsigned first_frame_ms;     /* default 30000 */
    unsigned pair_wait_ms;       /* default 30000 */
    unsigned idle_ms;            /* default 30000 */
    unsigned list_check_ms;      /* list mtime poll, default 5000 */
    size_t buf_size;             /* per direction, default 32 KiB */
    unsigned max_conns;          /* default 20000, 0 = unlimited */
    /* Copy through buffers even for TCP <-> TCP (default: splice(2) via
     * a pipe per direction, no copy to user space; 3 more fds per side). */
    int no_splice;
    /* Pipe capacity per direction in splice mode, default 256 KiB: kernel
     * pages moved from the socket, not copied; larger = fewer syscalls. */
    size_t pipe_size;
    /* Refusals to note for the admin page (borrowed), or NULL. */
    struct rejects *rejects;
};

/* Why connections were refused or dropped before pairing. */
enum relay_reject {
    RELAY_REJECT_BLOCKED = 0, /* IP in blocklist.txt */
    RELAY_REJECT_KEY,         /* licence_key mismatch */
    RELAY_REJECT_PROTO,       /* garbage, wrong message, empty uuid */
    RELAY_REJECT_TOOBIG,      /* first frame above 64 KiB */
    RELAY_REJECT_TIMEOUT,     /* no first frame in time */
    RELAY_REJECT_UNPAIRED,    /* no partner in time */
    RELAY_REJECT_EOF,         /* peer left before pairing */
    RELAY_REJECT_OVERLOAD,    /* max_conns reached */
    RELAY_REJECT_COUNT
};

struct relay_stats {
    uint64_t conns_active; /* accepted, not yet closed (incl. paired) */
    uint64_t waiting;      /* sent RequestRelay, no partner yet */
    uint64_t pairs_active;
    uint64_t pairs_total;
    uint64_t pairs_downgraded; /* total pairs ever downgraded */
    uint64_t bytes_relayed;    /* both directions, after pairing */
    uint64_t blacklist_size, blocklist_size;
    uint64_t rejected[RELAY_REJECT_COUNT];
};

struct relay;
struct rejects;

/* Fill cfg with the defaults above (port 21117). */
void relay_config_defaults(struct relay_config *cfg);

/*
 * Create a relay on loop with a copy of cfg (nothing is bound yet).
 * Returns 0 and *out, HD_ECONFIG for an invalid value, or -ENOMEM.
 */
int relay_new(uv_loop_t *loop, const struct relay_config *cfg,
              struct relay **out);

/*
 * Load the lists, bind and listen (TCP, then the WebSocket port unless
 * disabled; dual-stack unless bind_addr says otherwise).  Returns 0, or a
 * negative libuv error (e.g. UV_EADDRINUSE) after logging one line; then
 * relay_port() is 0 when the TCP port failed, non-zero when the WebSocket
 * port did.
 */
int relay_start(struct relay *r);

/* The bound TCP port (after relay_start), or 0. */
int relay_port(const struct relay *r);

/* The bound WebSocket port (after relay_start), or 0 when none. */
int relay_ws_port(const struct relay *r);

/*
 * Stop listening and close every connection and pair now (no flush).
 * Handles finish closing when the loop runs again.  Idempotent.
 */
void relay_stop(struct relay *r);

/*
 * Stop (if needed) and free r; memory is released once the loop has run
 * the close callbacks of every handle (the caller keeps running the loop).
 * NULL is accepted.
 */
void relay_free(struct relay *r);

/*
 * Re-read blacklist.txt and blocklist.txt now (they are also re-read when
 * their mtime changes, checked every list_check_ms).  Lines: an IPv4 or
 * IPv6 address, then anything after a space or '#'.  Returns 0, or a
 * negative errno when a file exists but cannot be read (the old list is
 * kept).
 */
int relay_reload_lists(struct relay *r);

/* Copy the counters into *out (cleared first). */
void relay_get_stats(const struct relay *r, struct relay_stats *out);

/* Short lower-case label of a reject reason for /metrics ("key", ...). */
const char *relay_reject_name(enum relay_reject why);

/* A live relayed pair, as the admin page lists it.  Valid only during the
 * callback. */
struct relay_pair_info {
    char hash[17]; /* the uuid's short hash, as the log lines print it */
    struct sockaddr_storage a, b; /* the two sides (first one first) */
    int a_ws, b_ws;               /* that side came over WebSocket */
    uint64_t age_ms, idle_ms, bytes;
    int limited;    /* a blacklisted side: at the limit speed */
    int downgraded; /* over the downgrade threshold: at the limit speed */
};

/* Call fn for every live pair, newest first; fn must not change r. */
void relay_foreach_pair(struct relay *r,
                        void (*fn)(void *ud, const struct relay_pair_info *pi),
                        void *ud);

#endif

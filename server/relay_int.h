/*
 * The relay's insides, shared by its files (not for other modules: they use
 * relay.h).  relay.c: the listeners and the public functions;
 * relay_core.c: the waiting map, connection and pair lifetime, forwarding
 * and the handshake; relay_tcp.c and relay_ws.c: the two transports (and
 * splice mode for TCP <-> TCP); relay_limits.c: token buckets, downgrade
 * and the pair tick; relay_lists.c: peer addresses and the black/block
 * lists.  Memory, lifetime and transport rules are in relay_core.c's
 * opening comment.
 *
 * Threads: all of it on the loop thread.
 */
#ifndef HD_SERVER_RELAY_INT_H
#define HD_SERVER_RELAY_INT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "net.h"
#include "rendezvous.pb-c.h"
#include "server/limit.h"
#include "server/relay.h"
#include "server/ws.h"

#define MOD               "relay"
#define HELLO_INITIAL_CAP 512
#define HELLO_MAX_CAP     (HD_RELAY_MAX_FIRST_FRAME + 4)
#define MAX_UUID_LEN      128
#define MAX_LIST_FILE     (64 * 1024 * 1024)
#define BURST_MS          50
#define BYTES_PER_MBPS_MS (1024.0 * 1024.0 / 8.0 / 1000.0)
#define WS_READ_CHUNK     (64 * 1024)
/* A WebSocket side's buffer: one message being completed by the last read
 * plus the small ones of that read (each with a header): never more. */
#define WS_BUF_MAX (HD_RELAY_WS_MAX_MESSAGE + 4 + 3 * WS_READ_CHUNK)
/* A decoder that held a frame above this is freed once empty. */
#define DEC_KEEP_MAX (1024 * 1024)

/*
 * Unpaired connections (waiting for their request or their partner) are
 * what anyone can open: at most RELAY_UNPAIRED_PER_IP per source address
 * (IPv4, IPv6 /64), and their buffers together at most
 * RELAY_UNPAIRED_BUDGET bytes (when over, the newest unpaired connections
 * are closed first).  Each holds at most about 64 KiB of request, 64 KiB
 * of WebSocket read buffer, one 64 KiB WebSocket message in assembly and
 * buf_size + 64 KiB of early data: under 300 KiB (see relay.h).
 */
#define RELAY_UNPAIRED_PER_IP 64
#define RELAY_UNPAIRED_BUDGET (64u * 1024 * 1024)

enum conn_state { CONN_HELLO, CONN_WAITING, CONN_PAIRED };

struct relay_conn;

/*
 * One peer's transport, as seen by the relay core.  Contract of each entry:
 * - send: write n bytes at buf (buf belongs to src, the partner) to dst.
 *   Returns n when all was written at once; 0..n-1 when the rest was
 *   queued (buf stays valid; the transport calls relay_conn_write_done(src,
 *   status) when it completes or is cancelled); or a negative error.
 *   A message-based transport sends one message per call, takes it whole
 *   (copied) and returns n; the caller then asks queued() whether the
 *   socket still holds bytes, and if so marks src wpending: the transport
 *   calls relay_conn_write_done(src, status) once its queue is empty.
 * - pause / resume: stop / start delivering read data (relay_conn_on_read,
 *   relay_conn_on_eof).  resume returns 0 or a negative error.
 * - close: close the transport's handles; each calls relay_conn_handle_closed.
 */
struct relay_transport {
    const char *name;
    int message_based;
    int (*send)(struct relay_conn *dst, struct relay_conn *src, const char *buf,
                size_t n);
    void (*pause)(struct relay_conn *c);
    int (*resume)(struct relay_conn *c);
    void (*close)(struct relay_conn *c);
    /* message-based only: non-zero while writes are in flight */
    size_t (*queued)(const struct relay_conn *c);
};

struct relay_bucket {
    double rate;   /* bytes per ms; 0 = unlimited */
    double burst;  /* most tokens kept */
    double tokens; /* may go negative: a read is taken whole */
    uint64_t last; /* ms (uv_now) of the last refill */
};

struct relay_conn {
    struct relay *relay;
    const struct relay_transport *tp;
    uv_tcp_t tcp;     /* TCP transport */
    uv_timer_t timer; /* hello / pairing deadline, then throttle wake-up */
    uv_write_t wreq;  /* this side's buffer, being written to the peer */
    uv_poll_t poll;   /* splice mode: readiness of sfd */
    int sfd;          /* splice mode: dup of the socket (libuv owns the fd) */
    int pipe[2];      /* splice mode: bytes read from this side */
    size_t piped, pipe_cap;
    int poll_events;
    struct relay_conn *prev, *next; /* relay->conns */
    struct relay_conn *map_next;    /* waiting map chain */
    struct relay_conn *peer;
    struct relay_pair *pair;
    char *buf; /* bytes read from this side: [start, end) not yet sent */
    size_t cap, start, end;
    char *uuid;
    uint64_t uuid_hash;
    struct ws *ws;               /* WebSocket transport */
    uint8_t *rbuf;               /* WebSocket: socket bytes for ws_feed */
    struct hd_frame_decoder dec; /* TCP side of a WebSocket pair */
    unsigned wq;                 /* WebSocket: uv_writes not completed */
    int ws_reason;               /* WebSocket: on_close reason, once ended */
    uint8_t ip[16];              /* IPv4 as ::ffff:a.b.c.d */
    char name[INET6_ADDRSTRLEN + 8]; /* "1.2.3.4:5" / "[::1]:5" */
    char ipstr[INET6_ADDRSTRLEN];    /* for fail2ban lines */
    enum conn_state state;
    int open; /* handles not yet closed */
    unsigned reading : 1, wpending : 1, throttled : 1, eof : 1, closing : 1,
        poll_init : 1, hello_ok : 1, ws_ended : 1, dec_init : 1;
    unsigned counted : 1; /* unpaired, in relay->unpaired_ip */
    size_t held;          /* unpaired: bytes counted in unpaired_bytes */
    uint8_t ipkey[17], ipkey_len;
};

struct relay_pair {
    struct relay *relay;
    struct relay_conn *a, *b;
    uv_timer_t timer; /* tick: idle, lists, downgrade */
    struct relay_bucket bucket;
    uint64_t started, last_active, bytes;
    int refs;
    unsigned draining : 1, closing : 1, downgraded : 1, limited : 1, splice : 1;
};

struct relay_iplist {
    uint8_t (*ips)[16]; /* sorted */
    size_t n;
    int present;
    struct timespec mtime;
    off_t size;
    ino_t ino;
};

struct relay {
    uv_loop_t *loop;
    struct relay_config cfg; /* strings below are our copies */
    char *key, *data_dir, *bind_addr, *trusted_proxy;
    size_t key_len;
    uv_tcp_t listener, ws_listener;
    uv_timer_t list_timer;
    int open_handles;
    int listener_init, ws_listener_init; /* not bit-fields: bind_listener */
    unsigned timer_init : 1, stopped : 1, free_pending : 1;
    int port, ws_port;
    struct relay_conn *conns;
    uint64_t nconns;
    struct relay_conn **map;
    size_t map_size, map_count;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    struct relay_bucket total;
    struct relay_iplist black, block;
    struct relay_stats st;
    unsigned tick_ms;
    struct limit_count unpaired_ip; /* unpaired connections per address */
    size_t unpaired_bytes;          /* buffers of unpaired connections */
};

extern const struct relay_transport relay_tcp_transport;
extern const struct relay_transport relay_ws_transport;

/* relay_limits.c */
void relay_bucket_set(struct relay_bucket *b, double mbps, size_t min_burst,
                      uint64_t now);
void relay_pair_apply_limits(struct relay_pair *p, int force);
void relay_pair_tick(uv_timer_t *t);
void relay_account(struct relay_conn *c, size_t n);

/* relay_lists.c */
void relay_ip_from_sockaddr(const struct sockaddr_storage *ss, uint8_t ip[16],
                            char *str, size_t strcap, char *name,
                            size_t namecap);
int relay_iplist_has(const struct relay_iplist *l, const uint8_t ip[16]);
int relay_parse_ip(const char *s, uint8_t ip[16]);
int relay_lists_load(struct relay *r, int force);
void relay_list_timer_cb(uv_timer_t *t);

/* relay_tcp.c */
void relay_tcp_close(struct relay_conn *c);
int relay_splice_setup(struct relay_conn *c);
void relay_splice_update(struct relay_conn *c);

/* relay_ws.c */
int relay_ws_on_write(void *ud, const uint8_t *data, size_t n);
void relay_ws_on_message(void *ud, const uint8_t *data, size_t n);
void relay_ws_on_close(void *ud, int reason);

/* relay_core.c */
void relay_conn_handle_closed(uv_handle_t *h);
void relay_splice_close_fds(struct relay_conn *c);
void relay_conn_close(struct relay_conn *c);
void relay_conn_reject(struct relay_conn *c, enum relay_reject why);
const char *relay_uuid_tag(const char *uuid, char out[17]);
void relay_conn_addr(const struct relay_conn *c, struct sockaddr_storage *ss);
void relay_unpaired_update(struct relay_conn *c);
void relay_conn_update_reading(struct relay_conn *c);
void relay_pair_close(struct relay_pair *p, const char *why);
void relay_pair_maybe_finish(struct relay_pair *p);
void relay_forward(struct relay_conn *c);
void relay_conn_write_done(struct relay_conn *src, int status);
void relay_deadline_cb(uv_timer_t *t);
int relay_hello_check(struct relay_conn *c, const uint8_t *p, size_t n);
void relay_hello_done(struct relay_conn *c);
void relay_conn_on_read(struct relay_conn *c, size_t n);
void relay_conn_on_eof(struct relay_conn *c, int err);

/* relay.c */
void relay_maybe_free(struct relay *r);

#endif

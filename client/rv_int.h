/*
 * The rendezvous client's insides, shared by its files (other modules use
 * rendezvous.h).  rendezvous.c: messages, KeyExchange, the checks of the
 * server's answers, rv_connect_direct; rv_link.c: connections on the
 * race's loop (to the server, framed and secured; direct) and name
 * lookups; rv_id.c: rv_connect_id, from the punch request to the race;
 * rv_race.c: racing every path to the host (see the comment below);
 * rv_relay.c: the relay path of the race.
 *
 * Threads: the caller's (the viewer's session thread, whose libuv loop
 * runs everything here, the server conversation included); names are
 * resolved on libuv's thread pool.
 */
#ifndef HD_CLIENT_RV_INT_H
#define HD_CLIENT_RV_INT_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <uv.h>

#include "addr.h"
#include "client/rendezvous.h"
#include "client/upunch.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "message.pb-c.h"
#include "rendezvous.pb-c.h"
#include "rudp.h"

#define RV_MAX_FRAME        (64u * 1024)
#define RV_CONNECT_MS       5000
#define RV_LOCAL_MS         1000
#define RV_KEY_EXCHANGE_MS  1500
#define RV_ANSWER_MS        20000
#define RV_RELAY_PORT_DELTA 1

struct race;
struct rv_link;

/* What a link tells its owner (rv_link.c); a NULL table, or NULL
 * members, leave it to rv_link_wait. */
struct rv_link_cb {
    /* connected (status 0), or not (a negative error) */
    void (*on_connected)(struct rv_link *l, int status);
    /* a message from the server (freed after the call; the callback may
     * close the link) */
    void (*on_message)(struct rv_link *l, Hbb__RendezvousMessage *m);
    /* the connection broke after it was made: a read error, the server
     * closed it (-ECONNRESET), a frame that does not open or parse */
    void (*on_error)(struct rv_link *l, int r);
};

/* A TCP connection of the race, framed (rendezvous messages), secured
 * once rv_link_answer answered the server's KeyExchange offer. */
struct rv_link {
    struct race *rc;
    const struct rv_link_cb *cb;
    uv_tcp_t tcp;
    uv_connect_t creq;
    int open, dec_init, secure, connected;
    int err; /* the first failure, 0 before */
    struct hd_frame_decoder dec;
    struct hd_secure sec;
};

/* A name lookup on the thread pool (rv_resolve_wait). */
struct rv_resolve {
    struct race *rc;
    uv_work_t work;
    const char *name;
    uint16_t port;
    struct sockaddr_storage ss;
    int r, busy;
};

/* ---- racing the paths ------------------------------------------------------
 *
 * After PunchHoleResponse, every way to the host runs at once on a libuv
 * loop (the caller's, rv_request.loop, on the caller's thread) and the
 * first connection whose first frame is a SignedId of this host that
 * verifies (with the key the server vouched for) wins:
 * - punch (common/nat/tcp.h): connect() from our rendezvous port Q to the
 *   host's public address, again after each failure, while the host
 *   connects to us from its port (simultaneous open); plus the listener
 *   on Q, opened before the request, for the host's SYN when our NAT
 *   lets it in (full cone); the same over IPv6 from Q6;
 * - lan: the host's LAN address (is_local answers); upnp: the router's
 *   mapping of the host's port;
 * - udp (upunch.h, common/nat/udp.h);
 * - relay (rv_relay.c: the request to the server, then the relay),
 *   started after a head start of the direct path: none when both sides are
 * behind symmetric NATs, RV_HEAD_SYM_MS when one is, RV_HEAD_MS else. Our NAT
 * type comes from the NAT type test (common/nat/tcp.h), started before the
 * request and answered during the prelude or the race.  One log line per failed
 * path.  Every connection is read (not peeked): what the winner got so far goes
 * to the session as rv_result.pending.
 */

#define RV_MAX_CANDS   8
#define RV_PUNCH_MS    6000 /* direct attempts, unless both symmetric */
#define RV_RETRY_MS    200  /* between refused punch attempts */
#define RV_HEAD_MS     1000 /* the direct path's head start over the relay */
#define RV_HEAD_SYM_MS 300  /* ... when one side is behind a symmetric NAT */
#define RV_HELLO_MS    5000 /* from connected to SignedId */
#define RV_PEEK_MAX    4096
#define RV_PRELUDE_MS  400 /* NAT test and UDP port before the request */
#define RV_UDP_WAIT_MS 120 /* the UDP port after the NAT test, at most */

enum cand_kind { CK_PUNCH, CK_LAN, CK_ACCEPTED, CK_RELAY, CK_UPNP, CK_PUNCH6 };

struct cand {
    struct race *rc;
    uv_tcp_t tcp;
    uv_connect_t req;
    int used; /* the slot holds a handle (until it has closed) */
    int live; /* not dropped */
    enum cand_kind kind;
    int open;          /* connected: waiting for SignedId */
    uint64_t deadline; /* connecting or waiting: give up then */
    const struct sockaddr_storage *addr; /* where it connects, or NULL */
    uint8_t buf[RV_PEEK_MAX];            /* what it delivered so far */
    size_t len;
};

/* The relay request (rv_relay.c), on the race's loop. */
struct rv_relay {
    int started, done; /* done: its connection handed over, or failed */
    int step;
    struct rv_link lk; /* to the server */
    uv_tcp_t rel;      /* then to the relay */
    uv_connect_t creq;
    uv_timer_t timer;
    uv_work_t work; /* resolving the relay's name */
    int rel_open, timer_open;
    char uuid[128], name[256], as[HD_ADDR_STRLEN];
    struct sockaddr_storage addr;
    int addr_r;
    struct rv_result *res; /* its error message and the host key */
};

struct hd_nat_tcp;
struct hd_nat_natt;

struct race {
    const struct rv_request *req;
    struct rv_result *out;
    uv_loop_t *loop, own_loop;
    int handles;      /* ours on the loop not closed yet */
    uv_timer_t timer; /* wakes the loop for the next deadline */
    uv_poll_t cancel; /* req->cancel_fd */
    uv_async_t relay_wake;
    int loop_ready, cancel_open, done, result, cancelled;
    const uint8_t *spk;
    const char *hint;
    struct cand c[RV_MAX_CANDS];
    uint64_t t0;
    int lis;                      /* listener on Q, until the punch takes it */
    uint16_t port;                /* Q */
    struct sockaddr_storage host; /* where to punch / the LAN address */
    struct sockaddr_storage upnp; /* host's public IP : its upnp_port */
    /* IPv6: our global address : port Q6 (listened on), the host's */
    struct sockaddr_storage me6, host6;
    int lis6;
    uint16_t port6;
    struct hd_nat_tcp *tp, *tp6; /* the punches (IPv4 from Q, IPv6) */
    int extra;                   /* direct paths beyond the punch */
    int local, punch, punch_attempts, punch_err;
    struct hd_nat_natt *natt; /* the NAT type test, while it runs */
    int nat_port[2], me_sym, host_sym;
    uint64_t nat_done;           /* when the NAT test ended, 0 before */
    struct sockaddr_storage srv; /* the rendezvous server */
    struct rv_relay rl;
    int relay_failed;
    char direct_err[128];
    struct up up;         /* UDP punching (upunch.h) */
    struct rv_link lk;    /* to the server (the punch request), or direct */
    struct rv_resolve rs; /* the server's (or --direct's) name */
};

/* rv_race.c */
uint64_t rv_now(struct race *rc);
/* Run the loop once, woken at `at` (ms, loop time) at the latest. */
void rv_run_once(struct race *rc, uint64_t at);
int rv_race_init(struct race *rc, const struct rv_request *req,
                 struct rv_result *out);
int rv_cand_connect(struct race *rc, enum cand_kind kind, uint64_t deadline,
                    const struct sockaddr_storage *dst);
int rv_punch_start(struct race *rc, int v6);
void rv_nat_test(struct race *rc, const struct sockaddr_storage *srv);
int rv_cand_fd(struct race *rc, int fd, enum cand_kind kind);

/* rv_relay.c */
int rv_relay_start(struct race *rc, const char *uuid);
void rv_relay_cleanup(struct race *rc);
int rv_race_run(struct race *rc);
void rv_race_cleanup(struct race *rc);
int rv_prelude(struct race *rc);

/* rendezvous.c */
void rv_set_err(struct rv_result *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rv_set_blocking(int fd);
#define RV_FRAME_BUF (HD_FRAME_HDR_MAX + RV_MAX_FRAME + HD_SECURE_OVERHEAD)
int rv_pack(struct hd_secure *sec, const Hbb__RendezvousMessage *m,
            uint8_t *buf);
int rv_unpack(struct hd_secure *sec, uint8_t *buf, size_t n,
              Hbb__RendezvousMessage **out);
unsigned rv_offer_ms(const struct rv_request *req);
int rv_no_offer(const struct rv_request *req, struct rv_result *out);
struct hd_rv_kx_answer;
int rv_offer_answer(const struct rv_request *req,
                    const Hbb__RendezvousMessage *m, const uint8_t *server_pk,
                    struct hd_secure *sec, struct hd_rv_kx_answer *ans,
                    struct rv_result *out);
const char *rv_reason(int r);
int rv_check_signed_pk(const ProtobufCBinaryData *pk, const char *id,
                       const uint8_t *server_pk, struct rv_result *out);
int rv_punch_failure(const Hbb__PunchHoleResponse *ph, const char *id,
                     struct rv_result *out);

/* rv_link.c (on the race's loop, rc->loop) */
/* Connect l to `to` (from fd when >= 0: taken, closed on failure), the
 * events to cb (NULL: rv_link_wait).  0, or a negative error (l closed). */
int rv_link_open(struct race *rc, struct rv_link *l, int fd,
                 const struct sockaddr_storage *to,
                 const struct rv_link_cb *cb);
/* Close l (its handle goes in the loop's time; safe on a closed link). */
void rv_link_close(struct rv_link *l);
/* Send m framed, sealed when seal is set and l is secure; 0 or an
 * error. */
int rv_link_send(struct rv_link *l, const Hbb__RendezvousMessage *m, int seal);
/* The same on any stream, sealed with sec unless NULL. */
int rv_stream_send(uv_stream_t *s, struct hd_secure *sec,
                   const Hbb__RendezvousMessage *m);
/* The next message received: 1 (*m set, the caller frees it), 0 none yet,
 * or a negative error. */
int rv_link_next(struct rv_link *l, Hbb__RendezvousMessage **m);
/* Answer the server's KeyExchange offer m (rv_offer_answer) and secure l:
 * 0, or a negative error with res->err set. */
int rv_link_answer(struct rv_link *l, const Hbb__RendezvousMessage *m,
                   struct rv_result *res);
/* Run the loop until l is connected (m NULL) or has a message for *m,
 * for ms at most: 0, -ETIMEDOUT, -ECANCELED (the user gave up), or l's
 * error. */
int rv_link_wait(struct rv_link *l, unsigned ms, Hbb__RendezvousMessage **m);
/* The server's link for the punch request (resolved, connected from a
 * reusable port whose number goes to *local, secured as the server
 * offers): 0, or a negative error with rc->out->err set; srv gets the
 * server's address. */
int rv_link_server(struct race *rc, struct rv_link *l, uint16_t *local,
                   struct sockaddr_storage *srv);
/* A blocking descriptor of its own for h's socket, or a negative errno. */
int rv_take_fd(uv_handle_t *h);
/* Resolve name (port when it names none) on the thread pool, running the
 * loop meanwhile: 0 (*ss set), -ECANCELED, or hd_addr_resolve's error. */
int rv_resolve_wait(struct race *rc, const char *name, uint16_t port,
                    struct sockaddr_storage *ss);

#endif

/*
 * The rendezvous client's insides, shared by its files (other modules use
 * rendezvous.h).  rendezvous.c: the blocking connection to the server
 * (KeyExchange, messages), the relay request and rv_connect_direct;
 * rv_id.c: rv_connect_id, from the punch request to the race;
 * rv_race.c: racing every path to the host (see the comment below).
 *
 * Threads: the caller's (the viewer's connect thread), and the relay job's
 * thread during a race.
 */
#ifndef HD_CLIENT_RV_INT_H
#define HD_CLIENT_RV_INT_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
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

/* One connection to the rendezvous server. */
struct rvc {
    int fd;
    int cancel_fd;
    int secure;
    struct hd_secure sec;
};

/* ---- racing the paths ------------------------------------------------------
 *
 * After PunchHoleResponse, every way to the host runs at once and the
 * first connection whose first frame is a SignedId of this host that
 * verifies (with the key the server vouched for) wins:
 * - punch: connect() from our rendezvous port Q to the host's public
 *   address, again after each failure, while the host connects to us from
 *   its port (simultaneous open); plus a listener on Q for the host's SYN
 *   when our NAT lets it in (full cone);
 * - lan: the host's LAN address (is_local answers);
 * - relay: on a thread (it blocks on the server and the relay), started
 *   after a head start of the direct path: none when both sides are
 *   behind symmetric NATs, RV_HEAD_SYM_MS when one is, RV_HEAD_MS else.
 * Our NAT type comes from two TestNatRequests (server port and port - 1)
 * from one local port, answered while the race runs.  One log line per failed
 * path.
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
    int fd; /* -1: slot free */
    enum cand_kind kind;
    int open;          /* connected: waiting for SignedId */
    uint64_t deadline; /* connecting or waiting: give up then */
    uint64_t peek_at;  /* a partial frame: look again then */
    const struct sockaddr_storage *addr; /* where it connects, or NULL */
};

struct relay_job {
    pthread_t th;
    int started, joined;
    int notify[2]; /* the thread writes a byte when it is done */
    int stop[2];   /* we write a byte: give up */
    struct rv_request req;
    uint8_t spk[HD_SIGN_PK_BYTES];
    int have_spk;
    char hint[256], uuid[128];
    int given_uuid;
    struct rv_result res;
    int r;
};

struct race {
    const struct rv_request *req;
    struct rv_result *out;
    struct cand c[RV_MAX_CANDS];
    uint64_t t0;
    int lis;                      /* listener on Q, or -1 */
    uint16_t port;                /* Q */
    struct sockaddr_storage host; /* where to punch / the LAN address */
    struct sockaddr_storage upnp; /* host's public IP : its upnp_port */
    /* IPv6: our global address : port Q6 (listened on), the host's */
    struct sockaddr_storage me6, host6;
    int lis6, punch6, punch6_attempts;
    uint16_t port6;
    uint64_t punch6_until, punch6_retry_at;
    int extra; /* direct paths beyond the punch */
    int local, punch, punch_attempts, punch_err;
    uint64_t punch_until, punch_retry_at;
    int nat_fd[2], nat_sent[2], nat_port[2], me_sym, host_sym;
    struct relay_job job;
    int relay_failed;
    char direct_err[128];
    struct up up; /* UDP punching (upunch.h) */
    /* the UDP punch's loop; its backend descriptor is in every poll() of
     * the race (until the race itself moves onto it) */
    uv_loop_t loop;
};

/* rv_race.c */
uint64_t rv_mono_ms(void);
int rv_cand_connect(struct race *rc, enum cand_kind kind, uint16_t from_port,
                    uint64_t deadline, const struct sockaddr_storage *dst);
int rv_relay_start(struct race *rc, const uint8_t *spk, const char *hint,
                   const char *uuid);
int rv_race_run(struct race *rc, const uint8_t *spk, const char *hint);
void rv_race_cleanup(struct race *rc);
int rv_prelude(struct race *rc);

/* rendezvous.c */
void rv_set_err(struct rv_result *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int rv_tcp_socket(int family, int reuse, uint16_t port, uint16_t *bound);
void rv_set_blocking(int fd);
int rvc_send_secure(struct rvc *c, const Hbb__RendezvousMessage *m,
                    int may_seal);
int rvc_send(struct rvc *c, const Hbb__RendezvousMessage *m);
int rvc_recv(struct rvc *c, int ms, Hbb__RendezvousMessage **out);
void rvc_close(struct rvc *c);
const char *rv_reason(int r);
int rv_open_server(const struct rv_request *req, const uint8_t *server_pk,
                   struct rvc *c, struct rv_result *out, uint16_t *local,
                   struct sockaddr_storage *srv);
int rv_check_signed_pk(const ProtobufCBinaryData *pk, const char *id,
                       const uint8_t *server_pk, struct rv_result *out);
int rv_via_relay(const struct rv_request *req, const uint8_t *server_pk,
                 const char *relay_hint, const char *given_uuid,
                 struct rv_result *out);
int rv_punch_failure(const Hbb__PunchHoleResponse *ph, const char *id,
                     struct rv_result *out);

#endif

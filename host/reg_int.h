/*
 * The host's rendezvous client's insides, shared by its files (other
 * modules use reg.h).  reg.c: sending, registration, the dispatch of the
 * server's messages, the UDP socket, the tick, start and stop;
 * reg_link.c: the TCP links to the server (one-shot messages, TCP
 * registration when UDP gets no answer, the probe that finds out why);
 * reg_serve.c: the server's requests (local address, punch hole, relay).
 *
 * Threads: all of it on the loop thread.
 */
#ifndef HD_HOST_REG_INT_H
#define HD_HOST_REG_INT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "crypto.h"
#include "err.h"
#include "frame.h"
#include "host/punch.h"
#include "host/upunch.h"
#include "host/reg.h"
#include "host/session.h"
#include "log.h"
#include "net.h"
#include "os.h"
#include "rendezvous.pb-c.h"
#include "rvsec.h"

#define MOD "reg"

#define REG_MAX_MSG         (64u * 1024)
#define ONESHOT_TIMEOUT_MS  5000
#define NEW_ID_MIN_MS       60000
#define TOO_FREQUENT_MS     30000
#define RELAY_MAX           256
#define REG_NAT_TEST_MS     (10u * 60 * 1000) /* NAT type test again */
#define REG_FIRST_ANSWER_MS 3000 /* no answer by then: find out why */
#define REG_KX_WAIT_MS      5000 /* a server with a key offers at once */
#define REG_IGNORED_LOG_MS  10000

/* Whether requests that arrive by UDP (unauthenticated: anyone can forge
 * the server's source address) are carried out. */
enum udp_trust {
    UDP_UNDECIDED, /* --key set, the secure link not settled yet: no */
    UDP_TRUSTED,   /* no --key, or a server without our secure link */
    UDP_REFUSED,   /* homedesk-server proved its key: only the link counts */
};

struct reg_tcp;

struct reg {
    struct host *h;
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int udp_open, resolving, closing, handles;
    struct sockaddr_storage server;
    int have_server;
    char server_name[300];
    unsigned unanswered;
    int silent, registered;
    struct reg_probe *probe; /* a TCP connect to see why nothing answers */
    int probe_err;           /* its last error logged (0: none) */
    int ticks;
    uint64_t last_new_id_ms, pk_backoff_until, natt_at;
    char old_id[IDENT_ID_MAX];
    struct reg_tcp *tcp;
    /* the server's key (--key) and what its TCP link proved */
    uint8_t server_pk[HD_SIGN_PK_BYTES];
    int have_pk, key_mismatch;
    enum udp_trust udp_trust;
    uint64_t ignored, ignored_logged_ms;
    uint8_t rbuf[REG_MAX_MSG];
};

struct reg_probe {
    uv_tcp_t tcp;
    uv_connect_t conn;
    struct reg *g; /* NULL once reg_stop let go of it */
};

/* reg_link.c */
void reg_send_oneshot_fd(struct reg *g, const Hbb__RendezvousMessage *m,
                         const char *what, int fd);
void reg_send_oneshot(struct reg *g, const Hbb__RendezvousMessage *m,
                      const char *what);
void reg_tcp_drop(struct reg *g, const char *why);
void reg_tcp_start(struct reg *g);
void reg_probe_closed(uv_handle_t *hd);
void reg_probe_say(struct reg *g, int err);
void reg_probe_start(struct reg *g);
void reg_send_rdv(struct reg *g, const Hbb__RendezvousMessage *m);
int reg_link_wanted(const struct reg *g);
void reg_link_tick(struct reg *g);

/* reg_serve.c */
void reg_on_fetch_local_addr(struct reg *g, const Hbb__FetchLocalAddr *f);
void reg_on_punch_hole(struct reg *g, const Hbb__PunchHole *ph);
void reg_on_request_relay(struct reg *g, const Hbb__RequestRelay *rr);

/* reg.c */
int reg_pack(const Hbb__RendezvousMessage *m, uint8_t **out, size_t *len);
void reg_send_udp(struct reg *g, const Hbb__RendezvousMessage *m);
void reg_register_peer(struct reg *g);
void reg_register_pk(struct reg *g);
void reg_handle(struct reg *g, const uint8_t *data, size_t n, int via_tcp);
void reg_resolve(struct reg *g);

#endif

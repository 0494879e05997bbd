/*
 * The UDP punch (nat.h; issue 5, DESIGN.md section 5: "UDP where both
 * sides are ours"), one implementation for the host and the viewer.  The
 * viewer puts its public UDP port in PunchHoleRequest.udp_port; the
 * server hands it to the host (PunchHole.udp_port) and hands the viewer
 * the host's registration socket.  Both sides then probe each other
 * (common/uprobe.h) and the first probe that reaches one side, from
 * wherever it really comes from (the peer-reflexive address: a symmetric
 * NAT gives another port towards the peer than towards the server),
 * fixes the path; the session then runs on it (common/rudp.h).
 *
 * Who does what, by NAT kind (unknown counts as cone):
 * - neither symmetric: probes from the main socket to the peer's public
 *   UDP address every HD_NAT_UDP_PROBE_MS;
 * - the peer symmetric, we not (spray): the same, and from
 *   HD_NAT_UDP_SPRAY_AFTER_MS on probes to random ports of the peer's IP
 *   (HD_NAT_UDP_SPRAY_MAX at most, HD_NAT_UDP_SPRAY_BURST per
 *   HD_NAT_UDP_SPRAY_TICK_MS) while the peer probes us from a fan: one
 *   of our guesses meets one of its mappings (a birthday search: 256
 *   mappings, ~4000 guesses, success > 99.99 %);
 * - we symmetric, the peer not (fan): up to HD_NAT_UDP_FAN sockets of
 *   our own, each probing the peer's public address (every
 *   cfg.fan_probe_ms) while the peer sprays;
 * - both symmetric: nothing (the caller does not start; the relay).
 *
 * Probes: the viewer's carry its conv (the session number); the host's
 * carry 0.  The host's side finds the viewer when a viewer probe reaches
 * it (found(), then the host answers with hd_nat_udp_answer and starts a
 * session); the viewer's side answers a host probe with its own probe
 * from the socket that heard it (so the host finds it), and finds the
 * host when the host's answer, or the host's first stream datagram
 * (the answer was lost), reaches it.
 *
 * Loop thread only (nat.h).
 */
#ifndef HD_NAT_UDP_H
#define HD_NAT_UDP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "uprobe.h"

#define HD_NAT_UDP_PROBE_MS       100
#define HD_NAT_UDP_FAN            256
#define HD_NAT_UDP_SPRAY_AFTER_MS 50
#define HD_NAT_UDP_SPRAY_MAX      4096
#define HD_NAT_UDP_SPRAY_BURST    32
#define HD_NAT_UDP_SPRAY_TICK_MS  5

struct hd_nat_udp;

struct hd_nat_udp_cfg {
    int role;       /* who we are: HD_UPROBE_HOST or HD_UPROBE_VIEWER */
    const char *id; /* the host's ID, in every probe */
    uint32_t conv;  /* the viewer's session number; 0 on the host */
    /* the peer's public UDP address (the host's registration socket, or
     * the viewer's IP and the UDP port it reported); copied */
    const struct sockaddr *peer;
    /* our main socket, borrowed: its owner reads it and passes what is
     * not its own to hd_nat_udp_input */
    uv_udp_t *sock;
    int fan;               /* probe from a fan too (we are symmetric) */
    int spray;             /* probe guessed ports (the peer is symmetric) */
    unsigned fan_probe_ms; /* between two rounds of the fan's probes */
    uint64_t ms;           /* expire after this long */
};

struct hd_nat_udp_cb {
    /*
     * The peer is found on sock (cfg.sock, or one of the fan: open until
     * hd_nat_udp_free), at from (its peer-reflexive address).  conv: the
     * viewer's (the host learns it here).  d[0..n): the peer's stream
     * datagram that found it (the viewer's side, when the host's answer
     * was lost: feed it to the stream), else n is 0.  Probing has
     * stopped; the callback may free u.
     */
    void (*found)(struct hd_nat_udp *u, uv_udp_t *sock,
                  const struct sockaddr *from, uint32_t conv, const uint8_t *d,
                  size_t n, void *ud);
    /* cfg.ms passed without found(); the callback may free u. */
    void (*expired)(struct hd_nat_udp *u, void *ud);
};

/*
 * Start punching towards cfg->peer on loop: the first probes go out
 * now.  Returns 0 and *out, or a negative error (-EINVAL: an ID longer
 * than a probe holds, or a role that is not one).  A fan opens as many
 * sockets as the system gives (out of descriptors: probes with fewer).
 */
int hd_nat_udp_start(uv_loop_t *loop, const struct hd_nat_udp_cfg *cfg,
                     const struct hd_nat_udp_cb *cb, void *ud,
                     struct hd_nat_udp **out);

/*
 * A datagram d[0..n) that reached sock (cfg.sock; the fan's own are read
 * here) from `from`.  Returns 1 when it was for this punch (a probe or
 * answer of our peer: answered or found() called; or, on the viewer's
 * side, the host's stream with our conv: found()), else 0.  u may be
 * freed by the time it returns 1.
 */
int hd_nat_udp_input(struct hd_nat_udp *u, uv_udp_t *sock,
                     const struct sockaddr *from, const uint8_t *d, size_t n);

/* 1 when sock is cfg.sock or one of u's fan. */
int hd_nat_udp_owns(const struct hd_nat_udp *u, const uv_udp_t *sock);

/* The peer's public address as given (cfg.peer). */
const struct sockaddr *hd_nat_udp_peer(const struct hd_nat_udp *u);

/* How it went, for the log. */
struct hd_nat_udp_stats {
    unsigned probes;  /* rounds of probes sent */
    unsigned guesses; /* probes to guessed ports */
    int fan;          /* sockets in the fan */
    uint64_t ms;      /* since the start */
};
void hd_nat_udp_stats(const struct hd_nat_udp *u, struct hd_nat_udp_stats *st);

/*
 * Send our answer (the host's side: HD_UPROBE_ANSWER with conv) to `to`
 * from sock; also for a repeated probe after the punch ended (u may
 * then be NULL: role and id are given).  Best effort.
 */
void hd_nat_udp_answer(uv_udp_t *sock, const struct sockaddr *to,
                       const char *id, uint32_t conv);

/* Stop at once (no callback after this) and free u once its fan has
 * closed; accepts NULL.  cfg.sock stays open (the caller's). */
void hd_nat_udp_free(struct hd_nat_udp *u);

#endif

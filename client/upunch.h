/*
 * UDP hole punching, the viewer's side (issue 5; the host's side and the
 * strategy by NAT kind are in host/upunch.h).  Blocking-style like the
 * rest of rendezvous.h: the race in rendezvous.c polls our descriptors
 * and calls in here; no threads, no event loop.
 *
 * Steps:
 * 1. up_open, before PunchHoleRequest: a UDP socket U, and a UDP
 *    TestNatRequest to the rendezvous server (homedesk-server answers
 *    with the port it saw: U's public port, for PunchHoleRequest.udp_port;
 *    other servers stay silent and UDP is simply not tried);
 * 2. up_start, with PunchHoleResponse.udp_socket_addr (the host's
 *    registration socket): probes from U every UP_PROBE_MS; when the host
 *    is behind a symmetric NAT and we are not, probes to guessed ports of
 *    its IP as well; when we are and it is not, a fan of UP_FAN sockets
 *    that probe it too (their mappings are what the host's guesses can
 *    meet).  A probe from the host is answered from the socket it
 *    reached, to the address it came from (peer-reflexive);
 * 3. the host's answer (or its first session datagram) on any socket
 *    fixes the path: that socket is connected to where the answer came
 *    from, the rest close, and a reliable stream (rudp.h) with our conv
 *    runs on it until the host's first frame (SignedId) is complete in
 *    up->hello; rendezvous.c verifies it like a TCP path's;
 * 4. up_take hands the socket and the stream to the session.
 *
 * Session thread only; every call is non-blocking.
 */
#ifndef VIEW_UPUNCH_H
#define VIEW_UPUNCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "uprobe.h"

#define UP_FAN            256
#define UP_PROBE_MS       100
#define UP_FAN_PROBE_MS   500
#define UP_SPRAY_AFTER_MS 50
#define UP_SPRAY_MAX      4096
#define UP_SPRAY_BURST    32
#define UP_SPRAY_TICK_MS  5
#define UP_QUERY_MS       50 /* the server's answer, asked again after */
#define UP_QUERIES        8 /* ... this many times at most (datagrams get lost) */
#define UP_HELLO_MAX      4096

struct hd_rudp;

struct up {
    int fd; /* U, then the socket of the path; -1 */
    int fan[UP_FAN];
    int n_fan;
    struct sockaddr_storage srv;
    uint16_t pub_port; /* U's public port as the server saw it; 0 unknown */
    uint64_t query_at;
    int queries;
    /* punching */
    int active;
    struct sockaddr_storage host; /* the host's registration socket */
    char id[65];
    uint32_t conv;
    int spray;
    uint8_t probe[HD_UPROBE_MAX]; /* ours, packed once */
    size_t probe_len;
    unsigned probes, sprayed;
    uint64_t t0, until, probe_at, fan_probe_at, spray_at;
    /* the path, once the host answered */
    struct hd_rudp *rudp;
    struct sockaddr_storage peer;
    uint64_t hello_until;
    uint8_t hello[UP_HELLO_MAX]; /* what the stream delivered so far */
    size_t hello_len;
    const char *err; /* why the path failed, for the log */
};

/* Clear u (no descriptors). */
void up_init(struct up *u);

/*
 * Open U for the family of srv and ask the server at srv (its rendezvous
 * port, where it takes UDP) for U's public port.  Returns 0, or a
 * negative errno (no UDP then).
 */
int up_open(struct up *u, const struct sockaddr *srv, uint64_t now);

/*
 * Punch towards host (PunchHoleResponse.udp_socket_addr) for id, until
 * now + ms.  me_sym / host_sym: the NAT kinds.  Returns 0, or a negative
 * errno (nothing running then).
 */
int up_start(struct up *u, const struct sockaddr *host, const char *id,
             int me_sym, int host_sym, uint64_t now, uint64_t ms);

/* 1 while the UDP path may still come up (punching or waiting for the
 * first frame). */
int up_alive(const struct up *u);

/*
 * Timers: queries, probes, guesses, the stream's retransmissions, the
 * deadlines (a path that ends sets u->err and closes).  Returns the next
 * time it wants to run (ms, same clock as now).
 */
uint64_t up_step(struct up *u, uint64_t now);

/*
 * Our descriptors to poll for input: at most 1 + UP_FAN entries written
 * to fds.  Returns the count.
 */
int up_fds(const struct up *u, int *fds, int cap);

/*
 * fd is readable: take every datagram on it.  Returns 1 when the first
 * frame of the host is complete in u->hello (the caller verifies it), 0
 * otherwise; the path's failure closes it (u->err set, up_alive 0).
 */
int up_input(struct up *u, int fd, uint64_t now);

/*
 * Hand over the path: *fd (connected to the host) and *r (the stream;
 * its output still sends on *fd).  u keeps nothing.
 */
void up_take(struct up *u, int *fd, struct hd_rudp **r);

/* Close everything (accepts a cleared or already closed u). */
void up_close(struct up *u);

#endif

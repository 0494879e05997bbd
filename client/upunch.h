/*
 * UDP hole punching, the viewer's side (issue 5): the punch itself is
 * common/nat/udp.h (shared with the host, which also says the strategy
 * by NAT kind); here the viewer's own parts, on the race's libuv loop
 * (rv_int.h):
 * 1. up_open, before PunchHoleRequest: a UDP socket U, and a UDP
 *    TestNatRequest to the rendezvous server (homedesk-server answers
 *    with the port it saw: U's public port, for PunchHoleRequest.udp_port;
 *    other servers stay silent and UDP is simply not tried), asked again
 *    every UP_QUERY_MS, UP_QUERIES times at most;
 * 2. up_start, with PunchHoleResponse.udp_socket_addr (the host's
 *    registration socket): the punch (nat/udp.h) from U, with a fan of
 *    sockets when we are behind a symmetric NAT, to guessed ports when
 *    the host is;
 * 3. the host found (its answer, or its first stream datagram): that
 *    socket, connected to where the host answered from, becomes the path
 *    (the rest close), and a reliable stream (rudp.h) with our conv runs
 *    on it until the host's first frame (SignedId) is complete in
 *    up->hello (up->ready); the race verifies it like a TCP path's;
 * 4. up_take hands the socket and the stream to the session.
 *
 * Loop thread (the race's) only; nothing blocks.
 */
#ifndef VIEW_UPUNCH_H
#define VIEW_UPUNCH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "nat/udp.h"

#define UP_FAN_PROBE_MS 500
#define UP_QUERY_MS     50 /* the server's answer, asked again after */
#define UP_QUERIES      8 /* ... this many times at most (datagrams get lost) */
#define UP_HELLO_MS     5000
#define UP_HELLO_MAX    4096

struct hd_rudp;

struct up {
    uv_loop_t *loop;
    uv_udp_t sock;    /* U, until the path is found */
    uv_udp_t path;    /* the socket the host answered on, connected to it */
    uv_timer_t timer; /* queries; the stream's timers, the hello deadline */
    int sock_open, path_open, timer_open;
    int handles; /* not closed yet (the owner waits for 0) */
    struct sockaddr_storage srv;
    uint16_t pub_port; /* U's public port as the server saw it; 0 unknown */
    /* the server's return-routability cookie for it, sent with udp_port in
     * the PunchHoleRequest (without it the server drops udp_port) */
    uint8_t cookie[8];
    size_t cookie_len;
    int queries;
    /* punching */
    struct hd_nat_udp *nat;       /* while punching */
    struct sockaddr_storage host; /* the host's registration socket */
    char id[65];
    uint32_t conv;
    uint64_t t0;
    /* the path, once the host answered */
    struct hd_rudp *rudp;
    uint64_t hello_until;
    uint8_t hello[UP_HELLO_MAX]; /* what the stream delivered so far */
    size_t hello_len;
    int ready;       /* the host's first frame is complete in hello */
    const char *err; /* why the path failed, for the log */
    uint8_t buf[2048];
};

/* Clear u (nothing open). */
void up_init(struct up *u);

/*
 * Open U on loop for the family of srv and ask the server at srv (its
 * rendezvous port, where it takes UDP) for U's public port.  Returns 0,
 * or a negative error (no UDP then).
 */
int up_open(struct up *u, uv_loop_t *loop, const struct sockaddr *srv);

/*
 * Punch towards host (PunchHoleResponse.udp_socket_addr) for id, for ms
 * from now.  me_sym / host_sym: the NAT kinds.  Returns 0, or a negative
 * error (nothing running then).
 */
int up_start(struct up *u, const struct sockaddr *host, const char *id,
             int me_sym, int host_sym, uint64_t ms);

/* 1 while the UDP path may still come up (punching or waiting for the
 * first frame). */
int up_alive(const struct up *u);

/*
 * Hand over the path (u->ready): *fd (a descriptor connected to the
 * host) and *r (the stream; its output sends on *fd until its new owner
 * sets its own).  u keeps nothing but handles closing on the loop.
 */
void up_take(struct up *u, int *fd, struct hd_rudp **r);

/* Close everything (the handles close on the loop; accepts a cleared or
 * already closed u). */
void up_close(struct up *u);

#endif

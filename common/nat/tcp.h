/*
 * The TCP punch and the NAT type test (nat.h; PROTOCOL.md section 4,
 * punch step 3 and the NAT test), one implementation for the host and
 * the viewer.
 *
 * Punch (struct hd_nat_tcp): from our port P (bound with SO_REUSEADDR
 * and SO_REUSEPORT beside the socket the server saw, so the server told
 * the peer P's public address), connect() towards the peer's public
 * address, again cfg.retry_ms after each failed attempt, until
 * cfg.connect_ms, while the peer does the same towards us: whichever SYN
 * passes its peer's NAT first forms the connection, a simultaneous open
 * on our connecting socket, or an accept on the listener on P (where SYNs
 * through a full-cone NAT land, and RustDesk clients, which connect to P
 * after PunchHoleResponse), open until cfg.listen_ms.  Each connection
 * goes to the caller (connected()); attempts then pause until
 * hd_nat_tcp_resume (the viewer: that connection did not prove to be
 * the host), the listener goes on.
 *
 * NAT type test (struct hd_nat_natt): TestNatRequest to the server's
 * port and port - 1 from one local port; equal answers = ASYMMETRIC
 * (cone), different = SYMMETRIC.
 *
 * Loop thread only (nat.h).
 */
#ifndef HD_NAT_TCP_H
#define HD_NAT_TCP_H

#include <stdint.h>

#include <uv.h>

#define HD_NAT_TCP_RETRY_MS 200
#define HD_NAT_NATT_MS      5000

/*
 * A TCP socket of family with SO_REUSEADDR, SO_REUSEPORT and TCP_NODELAY,
 * bound to port (0: any; *bound, when not NULL, gets the port).  Returns
 * the descriptor (the caller owns it) or a negative error.
 */
int hd_nat_tcp_socket(int family, uint16_t port, uint16_t *bound);

/* hd_nat_tcp_socket listening on port: the descriptor or a negative
 * error. */
int hd_nat_tcp_listener(int family, uint16_t port, uint16_t *bound);

struct hd_nat_tcp;

struct hd_nat_tcp_cfg {
    const struct sockaddr *peer; /* its public address; copied */
    uint16_t port;               /* our P */
    /* a descriptor already listening on P (the viewer opens it before
     * its request: taken over, closed with the punch), -1 to open one
     * here, -2 for no listener */
    int listen_fd;
    unsigned retry_ms;   /* after a failed attempt */
    uint64_t connect_ms; /* attempts until then (from start) */
    uint64_t listen_ms;  /* the listener until then; the punch expires at
                          * the later of the two */
    int max_attempts;    /* connect()s at most; 0 no limit */
};

struct hd_nat_tcp_cb {
    /*
     * A connection: fd (connected, non-blocking; the callback owns it).
     * accepted: it came in on the listener, else our connect() met the
     * peer's.  The callback may free p.
     */
    void (*connected)(struct hd_nat_tcp *p, int fd, int accepted, void *ud);
    /* Past connect_ms and listen_ms with nothing more to do; may free p. */
    void (*expired)(struct hd_nat_tcp *p, void *ud);
};

struct hd_nat_tcp_stats {
    int attempts;   /* connect()s started */
    int last_err;   /* the last attempt's failure (negative), or 0 */
    int listen_err; /* why there is no listener (negative), or 0 */
    uint64_t ms;    /* since the start */
};

/*
 * Start punching: the first SYN goes out now (it opens our NAT for the
 * peer's), then the listener (when asked; failing to listen is no error:
 * see the stats).  Returns 0 and *out, or a negative error (nothing
 * running; cfg.listen_fd closed).
 */
int hd_nat_tcp_start(uv_loop_t *loop, const struct hd_nat_tcp_cfg *cfg,
                     const struct hd_nat_tcp_cb *cb, void *ud,
                     struct hd_nat_tcp **out);

/* Attempts go on (after a connected() whose connection the caller
 * dropped), while connect_ms lasts. */
void hd_nat_tcp_resume(struct hd_nat_tcp *p);

/* 1 while attempts may still be made (before connect_ms). */
int hd_nat_tcp_trying(const struct hd_nat_tcp *p);

void hd_nat_tcp_stats(const struct hd_nat_tcp *p, struct hd_nat_tcp_stats *st);

/* Stop at once (no callback after this), close the attempt and the
 * listener; p is freed once they have closed.  Accepts NULL. */
void hd_nat_tcp_free(struct hd_nat_tcp *p);

struct hd_nat_natt;

/*
 * The test's outcome: 0 with the two ports the server saw (equal: cone),
 * or a negative error (port0 and port1 are 0).  t is finished: free it
 * (here or later).
 */
typedef void (*hd_nat_natt_cb)(struct hd_nat_natt *t, int status, int port0,
                               int port1, void *ud);

/*
 * Run the NAT type test against the rendezvous server at server (its TCP
 * port; the test port is one below), for HD_NAT_NATT_MS at most.
 * Returns 0 and *out (cb comes later, never from here), or a negative
 * error.
 */
int hd_nat_natt_start(uv_loop_t *loop, const struct sockaddr *server,
                      hd_nat_natt_cb cb, void *ud, struct hd_nat_natt **out);

/* Stop (no callback after this); freed once its handles closed.  Accepts
 * NULL. */
void hd_nat_natt_free(struct hd_nat_natt *t);

#endif

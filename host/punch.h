/*
 * TCP hole punching and the NAT type test: the host's side of reaching a
 * viewer behind NAT (PROTOCOL.md section 4, punch step 3 and the NAT
 * test; DESIGN.md section 5).
 *
 * The techniques are common/nat/tcp.h (shared with the viewer); here the
 * budgets, the sessions and the host's NAT type.
 *
 * Punching (one struct punch per PunchHole from the server):
 * - hd_nat_tcp_socket gives a TCP socket with SO_REUSEADDR and
 *   SO_REUSEPORT bound to a local port P; PunchHoleSent goes out from it, so
 * the server tells the viewer the public address of P;
 * - punch_start, from the same P: connect() towards the viewer's public
 *   address, again after each failed attempt (every PUNCH_RETRY_MS, for
 *   PUNCH_CONNECT_MS), and a listener on P (for PUNCH_LISTEN_MS).  The
 *   viewer connects from its rendezvous port at the same time, so
 *   whichever SYN passes its peer's NAT first forms the connection: a
 *   simultaneous open on our connecting socket, or an accept on the
 *   listener (where RustDesk clients, which connect to P after
 *   PunchHoleResponse, and SYNs through a full-cone NAT land).  The
 *   first connection becomes a direct session (session.h, which sends
 *   SignedId: the viewer keeps the first path whose SignedId verifies);
 *   the punch then stops.  One log line per outcome.
 * - When both sides are behind symmetric NATs nothing is attempted: the
 *   viewer takes the relay.
 *
 * NAT type test (punch_nat_test, for HD_NAT_NATT_MS at most):
 * TestNatRequest to the server's port and port - 1 from one local port;
 * equal answers = ASYMMETRIC (cone), different = SYMMETRIC.  The result goes to
 * h->nat_type (and into our PunchHoleSent); a failed test keeps the previous
 * value.
 *
 * Everything is freed when it ends; punch_stop_all ends whatever is in
 * progress (shutdown).  Loop thread only.
 */
#ifndef HD_HOST_PUNCH_H
#define HD_HOST_PUNCH_H

#include <stdint.h>

#include "os.h"

#include "host/host.h"
#include "nat/tcp.h"

#define PUNCH_RETRY_MS   200 /* HD_NAT_TCP_RETRY_MS */
#define PUNCH_CONNECT_MS 6000
#define PUNCH_LISTEN_MS  15000

/*
 * Budgets (a flood of PunchHoles, or one forged address, must cost little
 * and reach no one): at most PUNCH_MAX_ACTIVE punches at a time, the
 * oldest ended for a new one (each holds two descriptors); at most
 * PUNCH_MAX_ATTEMPTS connect()s per punch (SYNs towards an address only
 * the server vouches for).
 */
#define PUNCH_MAX_ACTIVE   16
#define PUNCH_MAX_ATTEMPTS 8

/*
 * Punch towards the viewer at viewer (its public address as the server
 * saw it) from local port (bound by hd_nat_tcp_socket, still open); viewer_nat
 * is PunchHole.nat_type.  Returns 0 (the punch runs on its own and frees
 * itself), 1 when nothing was attempted (both symmetric), or a negative
 * errno.
 */
int punch_start(struct host *h, const struct sockaddr *viewer, int viewer_nat,
                uint16_t port);

/*
 * IPv6 (no NAT, a stateful firewall at most): punch towards the viewer's
 * own IPv6 address (PunchHole.socket_addr_v6) from a new port, as
 * punch_start does; *mine gets our IPv6 address on the route to the viewer
 * with that port, for PunchHoleSent.socket_addr_v6.  Returns 0, or a
 * negative errno (-EADDRNOTAVAIL: no global IPv6 address towards it).
 */
int punch_start_v6(struct host *h, const struct sockaddr *viewer,
                   struct sockaddr_storage *mine);

/*
 * Run the NAT type test against the rendezvous server at server (its
 * TCP port; the test port is one below).  At most one test at a time:
 * returns 0 (started or already running) or a negative errno.
 */
int punch_nat_test(struct host *h, const struct sockaddr *server);

/*
 * Raise the soft limit of open descriptors to the hard one (at start), so
 * bursts of punches and sessions do not run the host out of them.
 * Returns the soft limit now in force, or a negative errno.
 */
long punch_raise_fd_limit(void);

/* End every punch and NAT test in progress (handles close on the loop). */
void punch_stop_all(struct host *h);

#endif

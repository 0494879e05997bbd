/*
 * UDP hole punching, the host's side (issue 5; DESIGN.md section 5: "UDP
 * where both sides are ours").  A homedesk viewer puts its public UDP
 * port in PunchHoleRequest.udp_port (learned from the server with a UDP
 * TestNatRequest); the server hands it to us in PunchHole.udp_port and
 * hands the viewer the address of our registration socket (the one whose
 * heartbeats it hears).  Both sides then send probes (common/uprobe.h);
 * the first viewer probe that reaches one of our sockets, from wherever
 * it really comes from (the peer-reflexive address: a symmetric NAT
 * gives the viewer another port towards us than towards the server),
 * is answered and starts a session over a reliable UDP stream
 * (common/rudp.h) on that socket, with that address.
 *
 * Who does what, by NAT kind (the host's from its NAT test, the viewer's
 * from PunchHole.nat_type; unknown counts as cone):
 * - neither symmetric: probes from the registration socket to the
 *   viewer's public UDP address every UPUNCH_PROBE_MS;
 * - the viewer symmetric, we not: the same, and from UPUNCH_SPRAY_AFTER_MS
 *   on probes to random ports of the viewer's IP (UPUNCH_SPRAY_MAX at
 *   most, UPUNCH_SPRAY_BURST per UPUNCH_SPRAY_TICK_MS), while the viewer
 *   probes us from UPUNCH_FAN sockets: one of our probes meets one of
 *   its mappings (a birthday search: 256 mappings, ~4000 guesses,
 *   success > 99.99 %);
 * - we symmetric, the viewer not: UPUNCH_FAN sockets of our own, each
 *   probing the viewer's public UDP address, while the viewer sprays;
 *   the socket that hears the viewer takes the session (its descriptor,
 *   connected to the viewer) and the others close (one punch at a time
 *   has a fan; another one meanwhile only probes);
 * - both symmetric: nothing (the relay).
 * A punch ends at its first session or after UPUNCH_MS, with one log
 * line either way.  Sessions on the registration socket get their
 * datagrams through upunch_datagram (reg.c routes every datagram that
 * does not come from the server here).
 *
 * Loop thread only.
 */
#ifndef HD_HOST_UPUNCH_H
#define HD_HOST_UPUNCH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "host/host.h"
#include "os.h"

#define UPUNCH_MS             6000
#define UPUNCH_PROBE_MS       100
#define UPUNCH_FAN            256
#define UPUNCH_SPRAY_AFTER_MS 50
#define UPUNCH_SPRAY_MAX      4096
#define UPUNCH_SPRAY_BURST    32
#define UPUNCH_SPRAY_TICK_MS  5

/*
 * Budgets: at most UPUNCH_MAX_ACTIVE punches at a time (the oldest ends
 * for a new one), and one spray of guessed ports per UPUNCH_SPRAY_GAP_MS
 * for the whole host (a later punch meanwhile probes the reported port
 * only): a flood of PunchHoles cannot multiply the guesses.
 */
#define UPUNCH_MAX_ACTIVE   8
#define UPUNCH_SPRAY_GAP_MS 30000

/*
 * Punch towards viewer (its public IP and the UDP port it reported) from
 * reg_sock (our registration socket) and, when we are behind a
 * symmetric NAT, from a fan of new sockets.  viewer_nat is
 * PunchHole.nat_type.  Returns 0 (running; frees itself), 1 when nothing
 * was attempted (both symmetric), or a negative error.
 */
int upunch_start(struct host *h, uv_udp_t *reg_sock,
                 const struct sockaddr *viewer, int viewer_nat);

/*
 * A datagram that reached sock (the registration socket) from someone
 * other than the server.  Returns 1 when it was ours (a probe, or session
 * data, taken or dropped), 0 when it is not a homedesk peer datagram.
 */
int upunch_datagram(struct host *h, uv_udp_t *sock, const struct sockaddr *from,
                    const uint8_t *d, size_t n);

/* End every punch in progress (sessions stay). */
void upunch_stop_all(struct host *h);

#endif

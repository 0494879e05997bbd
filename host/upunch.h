/*
 * UDP hole punching, the host's side (issue 5; the punch itself, and the
 * strategy by NAT kind, are common/nat/udp.h, shared with the viewer).  A
 * homedesk viewer puts its public UDP port in PunchHoleRequest.udp_port;
 * the server hands it to us in PunchHole.udp_port and hands the viewer
 * the address of our registration socket.  The first viewer probe that
 * reaches one of our sockets, from wherever it really comes from, is
 * answered and starts a session over a reliable UDP stream
 * (common/rudp.h) on that socket, with that address (a fan socket: a
 * descriptor of its own, connected to the viewer).
 *
 * Here: the budgets (below), the routing of the registration socket's
 * datagrams (reg.c passes every datagram that does not come from the
 * server to upunch_datagram: probes to the punches, session data to the
 * sessions), and the session a punch starts.  A punch ends at its first
 * session or after UPUNCH_MS, with one log line either way.
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

#define UPUNCH_MS       6000
#define UPUNCH_PROBE_MS 100 /* the fan's probes too */

/*
 * Budgets: at most UPUNCH_MAX_ACTIVE punches at a time (the oldest ends
 * for a new one), one fan at a time (256 descriptors; a later punch
 * behind our symmetric NAT meanwhile only probes), and one spray of guessed
 * ports per UPUNCH_SPRAY_GAP_MS for the whole host (a later punch meanwhile
 * probes the reported port only): a flood of PunchHoles cannot multiply the
 * guesses.
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

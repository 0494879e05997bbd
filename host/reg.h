/*
 * Registration with the rendezvous server and what it asks of the host
 * (PROTOCOL.md section 4), the host side of RustDesk's rendezvous
 * mediator:
 * - UDP RegisterPeer{id} every interval (12 s by default); a reply with
 *   request_pk gets RegisterPk{id, uuid, pk}.  RegisterPkResponse:
 *   UUID_MISMATCH / ID_EXISTS / INVALID_ID_FORMAT mean the ID belongs to
 *   another machine: like RustDesk we pick a new random ID, save it, print
 *   "id: N" again and register it (with old_id); at most once a minute.
 *   TOO_FREQUENT backs off RegisterPk for 30 s.
 * - No answer for 3 intervals: one warning, the server name is resolved
 *   again, and registration also runs over a TCP connection to the same
 *   port (the server routes its requests over it), until UDP answers.
 *   When the server comes back (restart, network change), its reply asks
 *   for the key again and we register it: no restart of the host needed.
 * - FetchLocalAddr (same LAN as the viewer) -> LocalAddr{local_addr =
 *   our LAN address : --listen port} over a fresh TCP connection.
 * - PunchHole -> hole punching from a new local port P (punch.h) and
 *   PunchHoleSent{nat_type = ours} over TCP from P, so the viewer learns
 *   the public address of P; the viewer races that with the relay.
 * - The NAT type test (punch.h) once the server is resolved and every
 *   10 minutes; its result goes into PunchHoleSent.
 * - RequestRelay -> connect to its relay (default: the server's host,
 *   port + 1), send RequestRelay{uuid, licence_key = --key} there, answer
 *   RelayResponse{socket_addr, uuid, relay_server, id, version} to the
 *   server over TCP, and run a session on the relayed stream.
 * Only datagrams from the server's address are accepted, and with --key
 * only the answer to RegisterPeer among them until the TCP link settles
 * whom to trust (anyone can forge a datagram's source address):
 * - With --key the host keeps a TCP link to the server (unless
 *   --register-tcp=never), checks the server's KeyExchange offer with the
 *   key and seals the link.  homedesk-server signs an offer of
 *   per-direction keys (hd_kx): its requests then come only over the
 *   link, RegisterPk goes over it (binding our ID to it), and requests by
 *   UDP are ignored with a warning, for the life of the process (a later
 *   offer without hd_kx, or none, is reported as a possible downgrade).
 *   RustDesk's hbbs offers legacy keys and sends its requests by UDP:
 *   they are carried out, and the log says they cannot be authenticated.
 *   An offer signed by another key: an error naming the server, and
 *   nothing it asks is done.
 * - Without --key (or a server that offers no KeyExchange): requests by
 *   UDP are carried out, as RustDesk's host does.
 *
 * Loop thread only.
 *
 * Files: reg.c (registration, dispatch, the UDP socket, the tick),
 * reg_link.c (TCP links to the server: one-shot messages, TCP
 * registration, the probe), reg_serve.c (FetchLocalAddr, PunchHole,
 * RequestRelay); their shared state in reg_int.h.  May call: punch.h and
 * upunch.h (hole punching), session.h (a session on a relayed or punched
 * stream), the mapped port (common/nat/map.h); nothing of the display.
 */
#ifndef HD_HOST_REG_H
#define HD_HOST_REG_H

#include <stddef.h>

#include "host/host.h"

#define REG_INTERVAL_MS   12000
#define REG_SILENT_ROUNDS 3

/* Start registering (first RegisterPeer at once).  0 or an error. */
int reg_start(struct host *h, struct reg **out);

/*
 * Split "host", "host:port", "[v6]:port" or a bare IPv6 address into host
 * (cap bytes) and port text (8 bytes; def_port when absent).  Returns 0
 * or -EINVAL (too long, unclosed bracket).
 */
int reg_split_host_port(const char *s, unsigned def_port, char *host,
                        size_t cap, char *port);

/* Stop and free (handles close on the loop).  Accepts NULL. */
void reg_stop(struct reg *g);

#endif

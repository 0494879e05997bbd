/*
 * NAT traversal, shared by the host and the viewer (issue 13 item 3;
 * PROTOCOL.md section 4, DESIGN.md section 5).  One implementation of
 * each technique, on libuv; each side keeps only what is its own (the
 * host: budgets against floods, sessions; the viewer: the path race).
 *
 * What it owns:
 * - nat/udp.h: the UDP punch: probes from a socket the caller owns (the
 *   host's registration socket, the viewer's rendezvous UDP socket), the
 *   peer-reflexive learning (a probe is answered where it came from, not
 *   where the server saw the peer), the birthday search towards a
 *   symmetric NAT (a fan of sockets on the symmetric side, guessed ports
 *   from the other);
 * - nat/tcp.h: the TCP simultaneous-open punch (connect() again and again
 *   from one reusable port, and a listener on it) and the NAT type test
 *   (TestNatRequest to the server's port and port - 1 from one port).
 * The path race is the viewer's (client/rv_race.c: it races these with
 * the LAN address, the mapped port, IPv6 and the relay, on the session's
 * loop); keepalives of a punched path are the session stream's
 * (common/rudp.h for UDP; the host's registration heartbeats keep its
 * UDP mapping open).
 * - nat/map.h: port mapping (NAT-PMP, then UPnP-IGD with libminiupnpc)
 *   on libuv's worker threads, kept alive on the loop; in a library of
 *   its own (libhdnatmap.a), so the server links none of it.  The host
 *   maps its --listen port; the viewer tries the mapped port the server
 *   hands it, as one more TCP path of its race.
 *
 * Which thread: the thread running the loop given at start; every handle
 * lives on that loop.  Nothing here blocks.
 *
 * What it may call: common/ (addr, uprobe, frame, net, os, log, the
 * rendezvous protobuf) and libuv; nothing of host/ or client/: outcomes
 * go back through callbacks, which may free the punch that calls them.
 *
 * Ownership (as libuv): hd_nat_X_start allocates, hd_nat_X_free stops
 * at once (no callback after it) and frees once the handles have closed
 * on the loop; free accepts NULL.
 */
#ifndef HD_NAT_H
#define HD_NAT_H

#include <stdint.h>

#include <uv.h>

/* The same descriptor (a new handle to the same socket) connected to to:
 * a punched UDP path handed to a session of its own.  Returns it (the
 * caller owns it) or -1 with *err a negative error. */
int hd_nat_dup_connected(uv_handle_t *sock, const struct sockaddr *to,
                         int *err);

#endif

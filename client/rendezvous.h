/*
 * Reaching a host, the blocking way, before the session's event loop
 * starts (on the session thread): ask the rendezvous server for the host,
 * learn its Ed25519 key from the server-signed IdPk, and open a TCP
 * connection to it: directly (LAN address, or the address the server saw)
 * or through the relay.  The connected socket is then handed to libuv
 * (uv_tcp_open) for the session.
 *
 * What this does (issue 4) and what it does not yet (issue 5):
 * - the server's KeyExchange offer is completed when a server key is
 *   known (the rendezvous frames are then sealed), skipped otherwise;
 * - PunchHoleRequest -> PunchHoleResponse: with is_local, connect to the
 *   host's LAN address (1 s timeout); with a public address and a
 *   non-symmetric NAT, a plain connect (3 s) to the address the server
 *   saw, which works when the host is reachable (port forwarded, same
 *   network, or its NAT already opened by the host's punch towards us);
 * - otherwise or on failure: RequestRelay on a new server connection,
 *   RelayResponse, then the relay (relay_server, or the server's host at
 *   port + 1) with the framed RequestRelay{uuid, licence_key}.
 * No simultaneous open from the socket that talked to the server, no
 * racing of candidates, no UDP, no UPnP: those are issue 5.
 *
 * Every wait also watches cancel_fd (readable = give up), so the user can
 * quit while connecting.  Errors fill a one-line message for the user.
 * Only the session thread calls these; they block (DNS included).
 */
#ifndef VIEW_RENDEZVOUS_H
#define VIEW_RENDEZVOUS_H

#include <stdint.h>

#include "crypto.h"

#define RV_DEFAULT_PORT 21116

enum rv_path { RV_PATH_LAN = 0, RV_PATH_DIRECT, RV_PATH_RELAY };

struct rv_request {
    const char *server;  /* "HOST[:PORT]" of the rendezvous server */
    const char *key_b64; /* the server's public key (base64), or NULL */
    const char *id;      /* the host's ID */
    const char *version; /* ours, sent in PunchHoleRequest */
    int cancel_fd;       /* readable when the user gives up; -1 for none */
    int force_relay;     /* skip the direct attempt (tests, --relay) */
};

struct rv_result {
    int fd; /* connected to the host or paired at the relay; -1 on error */
    enum rv_path path;
    uint8_t host_pk[HD_SIGN_PK_BYTES]; /* verified with the server key */
    char err[256];                     /* the user's message on failure */
};

/*
 * Find the host req->id through the server and connect to it (see the top
 * of this file).  Returns 0 with out->fd open (the caller closes it), or a
 * negative error with out->err set: HD_EAUTH (key mismatch, a signature
 * that does not verify), -ENOENT (ID not found), -EHOSTDOWN (host
 * offline), -ECONNREFUSED/-ETIMEDOUT (server or host unreachable),
 * -ECANCELED, HD_EPROTO.
 */
int rv_connect_id(const struct rv_request *req, struct rv_result *out);

/*
 * Direct TCP connection to "HOST:PORT" (timeout 5 s), no server: the host
 * key is not known here (known_hosts decides).  Same contract.
 */
int rv_connect_direct(const char *hostport, int cancel_fd,
                      struct rv_result *out);

/* "lan", "direct" or "relay". */
const char *rv_path_name(enum rv_path p);

#endif

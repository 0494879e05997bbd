/*
 * Reaching a host before the session starts (on the session thread): ask
 * the rendezvous server for the host, learn its Ed25519 key from the
 * server-signed IdPk, and race every path to it on the session's libuv
 * loop: directly (LAN address, punched, the router's mapped port, IPv6,
 * UDP) or through the relay.  The winning connection is then the
 * session's (uv_tcp_open, or hd_channel_open_udp).
 *
 * How (issue 5, PROTOCOL.md section 4 punch steps 1-5):
 * - the server's KeyExchange offer is completed when a server key is
 *   known (the rendezvous frames are then sealed), skipped otherwise;
 * - PunchHoleRequest goes out from a socket with address and port reuse
 *   bound to port Q, with a listener on Q; our NAT type is tested in
 *   parallel (common/nat/tcp.h);
 * - PunchHoleResponse starts a race: with is_local, the host's LAN
 *   address; otherwise the TCP punch from Q to the host's public address
 *   (common/nat/tcp.h, for up to 6 s, while the host does the same
 *   towards Q: simultaneous open; a SYN let in by a full-cone NAT lands on
 *   the listener); the relay (RequestRelay, RelayResponse, then the relay
 *   with the framed RequestRelay{uuid, licence_key}) joins after a head
 *   start: at once when both NATs are symmetric, after 300 ms when one is,
 *   after 1 s otherwise (1 s for a LAN address), and at once when no
 *   direct attempt is left.  The first connection whose first frame is a
 *   SignedId of the host that verifies with the key the server vouched
 *   for wins (what was read of it goes to the session in
 *   rv_result.pending); one log line per path that failed;
 * - a RelayResponse in answer to the punch request (a RustDesk host that
 *   chose the relay) goes straight to that relay;
 * - UDP, when the server is homedesk-server and the host ours
 *   (client/upunch.h, common/nat/udp.h): our public UDP port is asked for
 *   before the punch request, which waits for the NAT type test too (so
 *   the host knows our NAT kind), and the UDP punch races with the TCP
 *   paths; when one side is behind a symmetric NAT and the other not, its
 *   birthday search gets the full head start over the relay.
 * The host's mapped port (UPnP/NAT-PMP, upnp_port) and IPv6 join too.
 *
 * Every wait also watches cancel_fd (readable = give up), so the user can
 * quit while connecting.  Errors fill a one-line message for the user.
 * Only the session thread calls these.  Everything runs on the caller's
 * libuv loop (rv_request.loop): the conversation with the server up to
 * its answer, the race, the relay request, rv_connect_direct; names are
 * resolved on libuv's thread pool.  The calls return when it is over (the
 * loop runs inside them), every handle of theirs closed.
 *
 * Files: rendezvous.c (messages, KeyExchange, the checks of the server's
 * answers, rv_connect_direct), rv_link.c (connections on the loop: the
 * server's, framed and secured, and the direct one; name lookups),
 * rv_id.c (rv_connect_id: the punch request and setting up the race),
 * rv_race.c (the race on the loop: candidates, the punches and NAT test
 * of common/nat/tcp.h, the UDP punch of upunch.h), rv_relay.c (the relay
 * path of the race); their shared state in rv_int.h.  May call upunch.h,
 * common/ (framing, crypto, rudp, nat/) and nothing of SDL.
 */
#ifndef VIEW_RENDEZVOUS_H
#define VIEW_RENDEZVOUS_H

#include <stdint.h>

#include <uv.h>

#include "crypto.h"

#define RV_DEFAULT_PORT 21116

enum rv_path { RV_PATH_LAN = 0, RV_PATH_DIRECT, RV_PATH_RELAY, RV_PATH_UDP };

struct rv_request {
    const char *server;  /* "HOST[:PORT]" of the rendezvous server */
    const char *key_b64; /* the server's public key (base64), or NULL */
    const char *id;      /* the host's ID */
    const char *version; /* ours, sent in PunchHoleRequest */
    int cancel_fd;       /* readable when the user gives up; -1 for none */
    int force_relay;     /* skip the direct attempt (--force-relay) */
    /* the user's relay "HOST[:PORT]" (--relay), used before the one the
     * server hands out, as RustDesk's "Relay server" setting; or NULL */
    const char *relay;
    int no_udp; /* skip UDP punching (--no-udp) */
    int no_tcp; /* skip the direct TCP paths (--no-tcp) */
    /* with key_b64: accept a server that offers no KeyExchange (old
     * hbbs; --allow-plain-server); otherwise its absence is an error */
    int allow_plain_server;
    int answer_ms; /* wait for the host's answer (0: 20 s) */
    /* known_hosts (client/known_hosts.h), where servers that offered
     * per-direction keys are remembered: a legacy offer from one of them
     * is then refused as a downgrade.  NULL: nothing remembered. */
    const char *known_hosts;
    /* the loop the race runs on (the caller's, on the caller's thread:
     * run here until the race is over, every handle of the race closed
     * before rv_connect_id returns); NULL: a loop of its own */
    uv_loop_t *loop;
};

struct hd_rudp;

struct rv_result {
    int fd; /* connected to the host or paired at the relay; -1 on error */
    enum rv_path path;
    /* RV_PATH_UDP: fd is a UDP socket connected to the host, and rudp the
     * reliable stream on it (the caller takes it: hd_channel_open_udp, or
     * hd_rudp_free), which already delivered the bytes in pending (the
     * host's SignedId frame, to be read first: hd_channel_start) */
    struct hd_rudp *rudp;
    uint8_t pending[4096];
    size_t pending_len;
    uint8_t host_pk[HD_SIGN_PK_BYTES]; /* verified with the server key */
    /* the rendezvous channel has legacy keys (one key both ways): a signed
     * IdPk that says the server offers per-direction keys then means the
     * offer was stripped (rv_check_signed_pk refuses it) */
    int server_legacy;
    char err[256]; /* the user's message on failure */
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

#define RV_DIRECT_PORT 21120 /* the host's default --listen port */

/*
 * Direct TCP connection to "HOST[:PORT]" (port RV_DIRECT_PORT when none;
 * timeout 5 s), no server: the host key is not known here (known_hosts
 * decides).  Runs on loop (NULL: a loop of its own) as rv_connect_id.
 * Same contract.
 */
int rv_connect_direct(uv_loop_t *loop, const char *hostport, int cancel_fd,
                      struct rv_result *out);

/* "lan", "direct", "relay" or "udp". */
const char *rv_path_name(enum rv_path p);

#endif

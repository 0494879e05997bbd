/*
 * One viewer session (PROTOCOL.md section 5), on a direct (LAN or
 * --listen) or relayed TCP stream, or a reliable stream over a UDP hole
 * punch (upunch.h):
 *   host -> SignedId; viewer -> PublicKey (empty = unencrypted: refused
 *   unless --allow-unencrypted); host -> Hash{salt, challenge};
 *   viewer -> LoginRequest; host -> LoginResponse{error | PeerInfo};
 *   then video frames out, input in, TestDelay both ways.
 * Failed logins log "login failed from IP" (a fixed, fail2ban-friendly
 * format) and count in the per-IP throttle; a throttled address gets an
 * error without its password being checked.  An empty password (RustDesk's
 * client sends one first when it has none saved) is not a failure: it is
 * answered "Empty Password" and the session waits for the real one.  30 s
 * (--idle) with nothing from the viewer ends the session, as does a protocol
 * error.  One log line per event: connect (from where, which path), login
 * ok/failed, end (with the reason).  Never a secret.
 *
 * Lifecycle: session_new creates the session and its channel; the caller
 * connects or accepts into session_tcp(), then session_begin.  The
 * session frees itself when it ends (session_close or by itself).
 * Loop thread only.
 *
 * Files: session.c (life cycle, channel, tick, TCP/UDP beginnings),
 * session_login.c (handshake to LoginResponse), session_live.c (a live
 * session's messages and the broadcasts of video, audio, cursor and
 * clipboard); their shared state in session_int.h.  May call the
 * backends' frameworks (input/, clipboard/, audio/ through host.h's
 * handles), video.h, xfer.h and the channel (common/channel.h); never a
 * backend directly.
 */
#ifndef HD_HOST_SESSION_H
#define HD_HOST_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "host/host.h"

enum session_path {
    SESSION_DIRECT = 0,
    SESSION_LAN,
    SESSION_RELAY,
    SESSION_UDP
};

/* A new session on h (linked into h->sessions).  0 or -ENOMEM/-EBUSY
 * (too many that have not logged in, or dropped early: host.h). */
int session_new(struct host *h, enum session_path path, struct session **out);

/*
 * A new relayed session for the viewer at viewer (the address the server
 * reported, or NULL), with its origin set (session_origin): also -EBUSY
 * when that address has HOST_PRELOGIN_PER_IP relayed sessions not logged
 * in yet or made HOST_RELAY_PER_SRC relay connects this minute (host.h).
 */
int session_new_relay(struct host *h, const struct sockaddr *viewer,
                      struct session **out);

/*
 * A relayed session: viewer is the viewer's address the server reported
 * in RequestRelay.  Logins are then throttled and failed ones logged by
 * it ("login failed from VIEWER (via relay, ...)"), not by the relay's
 * address that every relayed viewer shares.  Before session_begin;
 * ignored on other paths.
 */
void session_origin(struct session *s, const struct sockaddr *viewer);

/* The stream to connect or accept into. */
uv_tcp_t *session_tcp(struct session *s);

/*
 * The stream is connected: send SignedId and start reading (leftover:
 * bytes already read from it, may be NULL).  On error the session is
 * closed (and freed) with the reason logged; returns that error.
 */
int session_begin(struct session *s, const uint8_t *leftover, size_t n);

/*
 * Begin on a UDP path (upunch.h): a reliable stream (rudp.h) with conv to
 * peer, either over sock, a socket shared with others (the registration
 * socket; its datagrams for this session come through
 * session_udp_input), or over fd (sock NULL), a UDP socket of our own
 * connected to peer, which the session takes.  Then as session_begin.
 * On error the session is closed (fd too); returns that error.
 */
int session_begin_udp(struct session *s, uint32_t conv, uv_udp_t *sock,
                      const struct sockaddr *peer, int fd);

/*
 * The UDP session with conv from `from` (on sock, or on any socket when
 * sock is NULL), or NULL.
 */
struct session *session_udp_find(struct host *h, const uv_udp_t *sock,
                                 const struct sockaddr *from, uint32_t conv);

/*
 * A session datagram that reached the shared socket sock: handed to its
 * session.  Returns 1 when one took it, 0 when none is on sock with that
 * peer and conv (the datagram is dropped).
 */
int session_udp_input(struct host *h, uv_udp_t *sock,
                      const struct sockaddr *from, uint32_t conv,
                      const uint8_t *d, size_t n);

/* Send one plain frame before session_begin (the relay's request). */
int session_send_plain(struct session *s, const uint8_t *data, size_t n);

/* End the session: one log line with reason, input released, freed. */
void session_close(struct session *s, const char *reason);

/* An encoded frame from the video thread, for every logged-in session. */
struct video_frame;
void session_broadcast_video(struct host *h, const struct video_frame *f);

/* An Opus frame of the desktop's sound, for every viewer that wants it. */
void session_broadcast_audio(struct host *h, const uint8_t *opus, size_t n);

/*
 * The pointer moved, or (shape) changed its shape: keep it in h and tell
 * every viewer as RustDesk's host does: CursorData{id = the shape's
 * serial, hotspot, size, colors = zstd(RGBA)} the first time a viewer
 * sees a shape, CursorId when it has seen it, and CursorPosition (not to
 * a viewer whose own mouse input moved the pointer: SESSION_ECHO_MS).  A
 * viewer that logs in later is told the current shape and position.
 */
struct video_cursor;
void session_broadcast_cursor(struct host *h, const struct video_cursor *c,
                              int shape);

/* Text copied on the desktop, for every logged-in viewer sharing theirs. */
void session_broadcast_clipboard(struct host *h, const char *text, size_t n);

/* Close every session (shutdown). */
void session_close_all(struct host *h, const char *reason);

#endif

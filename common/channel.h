/*
 * A peer-to-peer session stream (PROTOCOL.md section 5): length-framed
 * `hbb.Message`s over a libuv TCP stream, sealed with secretbox once the
 * handshake has agreed a key.  Used by the host and the viewer, on direct
 * and relayed connections alike (the relay copies bytes, so it sees only
 * ciphertext).
 *
 * The channel owns its uv_tcp_t: create it, connect or accept into
 * hd_channel_tcp(), then hd_channel_start() to read.  Every message from
 * the peer is bounded by max_msg; a frame that does not decrypt, does not
 * parse or is too large ends the channel with on_close(reason).  After
 * on_close, or whenever the owner is done, hd_channel_close() releases it
 * (memory is freed once libuv has closed the handle; no callback runs
 * after hd_channel_close).
 *
 * Handshake: the host sends SignedId (hd_channel_host_hello) and switches
 * to sealed frames when the viewer's PublicKey arrives
 * (hd_channel_host_accept); the viewer verifies the SignedId against the
 * host key it learned from the server or pinned, sends PublicKey and
 * switches (hd_channel_viewer_accept).  Until then frames are plain.
 *
 * UDP transport.  After a hole punch the session runs over a reliable
 * stream on UDP datagrams (rudp.h) instead: hd_channel_use_rudp (the
 * owner demultiplexes its socket and feeds hd_channel_datagram) or
 * hd_channel_open_udp (the channel reads a connected socket itself),
 * before hd_channel_start.  Framing, sealing and limits are the same; the
 * TCP handle then stays unused.  The stream's end reaches on_close like a
 * TCP one: UV_EOF after the peer's FIN and all its data, -ETIMEDOUT for a
 * silent peer.  hd_channel_close sends a FIN (best effort).
 *
 * Loop thread only.
 */
#ifndef HD_CHANNEL_H
#define HD_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "crypto.h"
#include "message.pb-c.h"

#define HD_CHANNEL_MAX_MSG (16u * 1024 * 1024)

struct hd_channel;
struct hd_rudp;

struct hd_channel_cb {
    /*
     * One message from the peer.  m is freed when this returns.  The
     * callback may send, and may call hd_channel_close (then it must not
     * touch ch again).
     */
    void (*on_message)(struct hd_channel *ch, const Hbb__Message *m, void *ud);
    /*
     * The channel ended by itself: the peer closed (UV_EOF), an I/O error,
     * or bad input (HD_EPROTO, HD_ETOOBIG, HD_ECRYPTO).  Called once; the
     * owner then calls hd_channel_close.
     */
    void (*on_close)(struct hd_channel *ch, int reason, void *ud);
};

/*
 * A new channel on loop with an initialised TCP handle.  max_msg 0 means
 * HD_CHANNEL_MAX_MSG.  Returns 0 or -ENOMEM.
 */
int hd_channel_new(uv_loop_t *loop, size_t max_msg,
                   const struct hd_channel_cb *cb, void *ud,
                   struct hd_channel **out);

/* The TCP handle, to uv_tcp_connect or uv_accept into. */
uv_tcp_t *hd_channel_tcp(struct hd_channel *ch);

/*
 * Start reading.  leftover (may be NULL) holds bytes already read from
 * this socket (or out of the rudp stream) by someone else (e.g. after a
 * relay's pairing), processed first.  Returns 0 or a negative error.
 */
int hd_channel_start(struct hd_channel *ch, const uint8_t *leftover, size_t n);

/*
 * Switch ch to a reliable stream over UDP, before hd_channel_start.  The
 * channel takes ownership of r (whose clock must be uv_now of the
 * channel's loop, or CLOCK_MONOTONIC ms: the same base), sends its
 * datagrams with send(send_ud, dgram, n) (the return value is ignored:
 * losses are repaired; send must not call back into the channel) and gets
 * the peer's datagrams from the owner through hd_channel_datagram.  peer
 * (may be NULL) is the remote address, copied, for hd_channel_peer.  The
 * channel runs its own uv_timer for hd_rudp_update.  Returns 0, -EINVAL
 * (r or send NULL), -EALREADY (already switched or started); on error r
 * stays the caller's.
 */
int hd_channel_use_rudp(
    struct hd_channel *ch, struct hd_rudp *r, const struct sockaddr *peer,
    int (*send)(void *send_ud, const uint8_t *dgram, size_t n), void *send_ud);

/*
 * A datagram from the peer for this channel (the owner demultiplexed it
 * by source address and conv, see hd_rudp_peek_conv).  Foreign or
 * malformed ones are dropped (and counted by rudp).  Messages it
 * completes are delivered from inside this call (after hd_channel_start;
 * before, the bytes wait).  Ignored once the channel ended or closed, or
 * on a TCP channel.
 */
void hd_channel_datagram(struct hd_channel *ch, const uint8_t *dgram, size_t n);

/*
 * For an owner with a socket of its own: fd is a UDP socket connect()ed
 * to the peer.  The channel takes fd in every case (uv_udp_open; closed
 * by hd_channel_close, or at once when it cannot be opened), reads it
 * from hd_channel_start on, feeds itself, sends with uv_udp_try_send (a
 * datagram the kernel will not take now is dropped and repaired) and
 * asks for HD_NET_UDP_SOCKBUF socket buffers.  Returns 0 (r is the
 * channel's), or a negative libuv error or -EALREADY (r stays the
 * caller's).
 */
int hd_channel_open_udp(struct hd_channel *ch, int fd, struct hd_rudp *r);

/*
 * Send one message: framed, and sealed once the channel is secure.
 * Returns 0, or a negative error (the channel is then closing).  On the
 * UDP transport a message that would take the queue past
 * HD_RUDP_MAX_QUEUE is refused with -ENOBUFS before anything is sealed or
 * queued, and the channel stays usable (a video sender watches
 * hd_channel_backlog and drops frames long before).
 */
int hd_channel_send(struct hd_channel *ch, const Hbb__Message *m);

/* Send an already packed payload as one frame (sealed when secure). */
int hd_channel_send_payload(struct hd_channel *ch, const uint8_t *data,
                            size_t n);

/* Send one plain framed RendezvousMessage (the relay's RequestRelay). */
int hd_channel_send_plain(struct hd_channel *ch, const uint8_t *data, size_t n);

/*
 * Change the bound on messages both ways (0: HD_CHANNEL_MAX_MSG), e.g.
 * raise it once the peer has logged in.  Frames already under way keep
 * the bound they were checked against.
 */
void hd_channel_set_max_msg(struct hd_channel *ch, size_t max_msg);

/*
 * Bytes queued for the peer and not yet taken by the kernel (TCP), or
 * queued and not yet acknowledged by the peer (UDP transport).
 */
size_t hd_channel_backlog(const struct hd_channel *ch);

/* 1 once frames are sealed. */
int hd_channel_is_secure(const struct hd_channel *ch);

/*
 * 1 once sealed in RustDesk's legacy mode (one key both ways: the peer
 * is a RustDesk app); 0 for per-direction keys or before the handshake.
 */
int hd_channel_is_legacy(const struct hd_channel *ch);

/* The session's binding key (crypto.h hd_secure_binding), NULL when
 * legacy or not sealed. */
const uint8_t *hd_channel_binding(const struct hd_channel *ch);

/* The peer's address (normalised), for logs; 0 or a negative error. */
int hd_channel_peer(const struct hd_channel *ch, struct sockaddr_storage *ss);

/* Release; accepts NULL; no callback runs afterwards. */
void hd_channel_close(struct hd_channel *ch);

/*
 * Host side: send SignedId{id = sign(IdPk{id, ephemeral box key,
 * hd_kx = HD_KX_SPLIT}), sign_pk = key->pk}.  The viewer's PublicKey then
 * picks the mode: split keys from a homedesk viewer, legacy from a
 * RustDesk app.
 *
 * sign_pk is a homedesk extension (SignedId field 101, bytes, the host's
 * 32-byte Ed25519 public key; RustDesk apps ignore the unknown field).  A
 * viewer that connects without a rendezvous server (homedesk-viewer
 * --direct HOST:PORT) has no server-signed IdPk to learn the host key
 * from; it pins sign_pk on first use (known_hosts, like ssh), refuses a
 * changed one, and then verifies id with it as usual.  A viewer that
 * learned the key from the server ignores sign_pk.
 */
int hd_channel_host_hello(struct hd_channel *ch, const struct hd_sign_key *key,
                          const char *id);

/*
 * Host side: the viewer's PublicKey.  Returns 0 (now sealed), HD_EPROTO
 * for an empty one (a request for an unencrypted session), HD_ECRYPTO if
 * the key does not open.
 */
int hd_channel_host_accept(struct hd_channel *ch, const Hbb__PublicKey *pk);

/*
 * Viewer side: verify the host's SignedId with host_pk, check it names
 * expected_id, answer with PublicKey and switch to sealed frames: split
 * keys when the signed IdPk offers them (a homedesk host), legacy
 * otherwise (a RustDesk host; hd_channel_is_legacy says so).
 * Returns 0, HD_EAUTH (bad signature or another ID: a possible
 * man-in-the-middle), HD_EPROTO.
 */
int hd_channel_viewer_accept(struct hd_channel *ch, const Hbb__SignedId *sid,
                             const uint8_t host_pk[HD_SIGN_PK_BYTES],
                             const char *expected_id);

#endif

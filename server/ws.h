/*
 * WebSocket (RFC 6455) server side of one connection, for the WebSocket
 * flavours of the rendezvous (21118) and relay (21119) ports.  It knows no
 * sockets: the caller feeds the bytes it read with ws_feed() and writes
 * out, in order, whatever the on_write callback hands it.  First comes
 * the HTTP upgrade request (any path, at most WS_HEADER_MAX bytes of
 * header), answered with "101 Switching Protocols"; after that frames are
 * parsed by libwslay, and every complete binary message reaches
 * on_message.  Pings are answered, close handshakes completed, text
 * messages ignored (RustDesk speaks binary only).
 *
 * Invariants: no buffer grows past its maximum (WS_HEADER_MAX for the
 * request, max_message for one incoming message, which wslay checks from
 * the frame headers before buffering); a violation costs one log line, a
 * close frame or HTTP error status to the peer, and on_close with the
 * reason.  on_close is called exactly once; nothing is delivered after it.
 *
 * X-Real-IP / X-Forwarded-For are parsed but only believed when the TCP
 * peer is the configured trusted proxy (ws_client_ip), so a client cannot
 * choose the address the server records for it.
 *
 * Threads: one connection belongs to one thread (the loop thread).
 * Callbacks run inside ws_feed/ws_send_binary/ws_close; they may call
 * ws_send_binary and ws_close (sending is then deferred to the end of the
 * outer call), never ws_free.
 */
#ifndef HD_SERVER_WS_H
#define HD_SERVER_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define WS_HEADER_MAX         8192 /* upgrade request, CRLFCRLF included */
#define WS_RENDEZVOUS_MSG_MAX (64 * 1024) /* PROTOCOL.md section 4 */
#define WS_IP_MAX             46          /* INET6_ADDRSTRLEN */

struct ws;

struct ws_config {
    /* Largest incoming message in bytes; 0 means WS_RENDEZVOUS_MSG_MAX.
     * The relay sets more. */
    size_t max_message;
    /* Names the peer in log lines ("1.2.3.4:5678"); may be NULL.  Copied. */
    const char *peer_desc;
};

struct ws_callbacks {
    /*
     * Bytes for the peer, to be written in order (copy them: data is only
     * valid during the call).  Return 0, or a negative code when they
     * cannot be sent; the connection then ends with on_close(that code).
     */
    int (*on_write)(void *ud, const uint8_t *data, size_t n);
    /* One complete binary message; data is valid during the call only. */
    void (*on_message)(void *ud, const uint8_t *data, size_t n);
    /*
     * The connection is over: after this the caller flushes what on_write
     * gave it, closes the socket and frees the ws.  reason: 0 after a
     * close handshake (either side began it), HD_ETOOBIG (request header
     * or message over its limit), HD_EPROTO (bad request or frame), or
     * the negative code on_write returned.
     */
    void (*on_close)(void *ud, int reason);
};

/*
 * Create the state of one accepted connection.  cfg and cbs are copied
 * (all three callbacks are required); ud is passed to every callback.
 * Returns 0 and *out, -EINVAL, or -ENOMEM.  *out is NULL on failure.
 */
int ws_new(const struct ws_config *cfg, const struct ws_callbacks *cbs,
           void *ud, struct ws **out);

/* Free the connection state (no callbacks run).  Accepts NULL. */
void ws_free(struct ws *ws);

/*
 * Process n bytes read from the peer: handshake bytes, then frames.
 * Returns 0 while the connection is fine or after an orderly close, a
 * negative code when it ended in error (the same value on_close got; one
 * line was logged), -EPIPE when called after on_close.
 */
int ws_feed(struct ws *ws, const uint8_t *data, size_t n);

/*
 * Queue one binary message (copied) and hand its frame to on_write.
 * Returns 0, -ENOTCONN before the handshake completed, -EPIPE once a
 * close frame was sent or received or after on_close, -ENOMEM, or the
 * error on_write returned (on_close has then run).
 */
int ws_send_binary(struct ws *ws, const uint8_t *data, size_t n);

/*
 * Begin a close handshake with status code (1000 normal, 1001 going away,
 * ...).  on_close(0) follows when the peer's close frame arrives; a caller
 * that will not wait just closes the socket.  Returns 0, -ENOTCONN before
 * the handshake, -EPIPE when closing already.
 */
int ws_close(struct ws *ws, uint16_t code);

/*
 * Change the largest incoming message from now on (the relay raises it once
 * a peer's RequestRelay was accepted); 0 means WS_RENDEZVOUS_MSG_MAX.  A
 * message already being received is held to the new limit.  Any state.
 */
void ws_set_max_message(struct ws *ws, size_t max_message);

/* True once the 101 response has been produced. */
int ws_is_open(const struct ws *ws);

/* The request target of the upgrade ("/" ...), "" before the handshake. */
const char *ws_path(const struct ws *ws);

/*
 * The client address a proxy announced (X-Real-IP, else the rightmost
 * X-Forwarded-For entry, which is the one the proxy itself appended),
 * validated and in canonical numeric form, or NULL when absent or not an
 * IP address.  Not to be believed by itself: see ws_client_ip.
 */
const char *ws_forwarded_ip(const struct ws *ws);

/*
 * Whether headers from this TCP peer may be believed: true only when
 * trusted_proxy is a non-empty IP literal equal to peer's address (an
 * IPv4-mapped IPv6 peer equals its IPv4 form).  Any thread.
 */
int ws_proxy_trusted(const struct sockaddr *peer, const char *trusted_proxy);

/*
 * The address to use for this client, numeric, into out: the forwarded one
 * when ws_proxy_trusted(peer, trusted_proxy) and a valid header was sent,
 * else peer's own (IPv4-mapped shown as IPv4).  Returns 0, -EINVAL for a
 * peer that is not AF_INET/AF_INET6, -ENOSPC when cap is too small.
 */
int ws_client_ip(const struct ws *ws, const struct sockaddr *peer,
                 const char *trusted_proxy, char *out, size_t cap);

/* Sec-WebSocket-Accept for a client key: base64(SHA-1(key + GUID)) into
 * out (29 bytes with the NUL).  Returns 0 or -ENOSPC. */
int ws_accept_key(const char *key, char *out, size_t cap);

#endif

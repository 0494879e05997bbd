/*
 * libuv helpers shared by the server, the host and the viewer: listening
 * and binding (dual-stack), copying writes, bounded queues, peer addresses
 * and a close that may be called twice.
 *
 * Ownership follows libuv: the caller embeds the handles in its own
 * structs and frees that memory only in its close callback.  Errors are
 * negative libuv codes (UV_EADDRINUSE, ...), which hd_strerror() turns into
 * text.  Everything here runs on the thread that runs the handle's loop.
 *
 * Bounded buffering.  libuv queues whatever a program writes, so a peer
 * that reads slowly (or never) makes the queue grow without limit.  The
 * rule in homedesk: after queueing data for a peer, check the bytes still
 * waiting and act when they pass a maximum:
 *
 *     if ((r = hd_net_write(s, buf, n, NULL)) != 0 ||
 *         hd_net_backlogged(s, HD_NET_MAX_BACKLOG)) {
 *         hd_warn("rdv", "closing slow peer %s", addr);
 *         hd_net_close((uv_handle_t *)s, on_closed);
 *     }
 *
 * A relay that forwards from stream A to stream B pauses instead: when B
 * is backlogged it calls uv_read_stop(A) and resumes reading A from the
 * write callback of B once hd_net_backlogged(B, max / 2) is false.  A
 * video sender drops frames rather than queue them.  UDP sends are bounded
 * by hd_net_udp_send itself (a datagram is dropped when the queue is full).
 */
#ifndef HD_NET_H
#define HD_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* A sensible cap on the bytes waiting in one stream's write queue. */
#define HD_NET_MAX_BACKLOG (4u << 20)
/* UDP datagrams waiting in one socket's send queue, in bytes, at most. */
#define HD_NET_UDP_MAX_QUEUE (1u << 20)
/* Socket buffers asked for on UDP sockets (the kernel may cap them). */
#define HD_NET_UDP_SOCKBUF (4 << 20)

/*
 * Initialise tcp on loop, bind it to addr and listen with the given backlog
 * (e.g. 128; SOMAXCONN when <= 0).  SO_REUSEADDR is set (so a restart does
 * not wait for TIME_WAIT); an IPv6 address, "::" included, accepts IPv4
 * clients too (dual-stack), so one listener serves both.  Returns 0, or a
 * negative libuv error: UV_EADDRINUSE (port busy), UV_EACCES (port below
 * 1024), UV_EADDRNOTAVAIL (no such local address), UV_EAFNOSUPPORT (no
 * IPv6 here).  On failure the handle has already been handed to uv_close
 * (the caller does not close it); its memory must stay valid until the
 * loop has run once more, or the process exits.
 */
int hd_net_listen_tcp(uv_loop_t *loop, uv_tcp_t *tcp,
                      const struct sockaddr *addr, int backlog,
                      uv_connection_cb cb);

/*
 * Initialise udp on loop and bind it to addr; IPv6 addresses are
 * dual-stack unless flags has UV_UDP_IPV6ONLY.  flags are uv_udp_bind's;
 * without UV_UDP_REUSEADDR a port in use is UV_EADDRINUSE (which is what
 * a server wants: two servers must not split one port's datagrams).
 * Receive and send buffers are raised to HD_NET_UDP_SOCKBUF where the
 * system allows (best effort).  Returns 0 or a negative libuv error, with
 * the same failure contract as hd_net_listen_tcp.
 */
int hd_net_bind_udp(uv_loop_t *loop, uv_udp_t *udp, const struct sockaddr *addr,
                    unsigned flags);

/* Ask for HD_NET_UDP_SOCKBUF receive and send buffers on an open UDP
 * handle (best effort: the kernel may cap them). */
void hd_net_udp_buffers(uv_udp_t *udp);

/*
 * Called once per hd_net_write, from the loop, when the data has gone to
 * the kernel (status 0) or failed (status < 0; UV_ECANCELED when the
 * stream was closed first, before its close callback).
 */
typedef void (*hd_write_done_cb)(uv_stream_t *stream, int status);

/*
 * Queue a write of the n bytes at data on stream.  The bytes are copied
 * into one allocation (request and buffer together) freed after the write
 * completes, so the caller's buffer may be reused at once.  cb may be NULL.
 * Returns 0 (cb will be called), or a negative error (cb will not be
 * called): UV_ENOMEM, UV_EPIPE (stream closing or not writable), UV_EBADF.
 * Check hd_net_backlogged afterwards (see the top of this file).
 */
int hd_net_write(uv_stream_t *stream, const uint8_t *data, size_t n,
                 hd_write_done_cb cb);

/* As hd_net_write, for nbufs pieces sent as one write (header + body). */
int hd_net_writev(uv_stream_t *stream, const uv_buf_t *bufs, unsigned nbufs,
                  hd_write_done_cb cb);

/* True when more than max bytes wait in stream's write queue. */
bool hd_net_backlogged(const uv_stream_t *stream, size_t max);

/*
 * Send one datagram: first straight to the kernel (uv_udp_try_send, no
 * copy), and only if the socket would block, queued with a copy of data.
 * An IPv4 destination on a dual-stack IPv6 socket is sent as v4-mapped
 * where the system needs that.  Returns 0 (sent or queued), UV_ENOBUFS
 * when HD_NET_UDP_MAX_QUEUE bytes are already queued (the datagram is
 * dropped: UDP callers resend), or another negative libuv error.
 */
int hd_net_udp_send(uv_udp_t *udp, const struct sockaddr *to,
                    const uint8_t *data, size_t n);

/*
 * The peer address of a connected TCP handle into *out (cleared on entry),
 * normalised: an IPv4 client of a dual-stack listener (::ffff:a.b.c.d)
 * comes back as plain AF_INET.  Returns 0 or a negative libuv error
 * (UV_ENOTCONN).
 */
int hd_net_peer_addr(const uv_tcp_t *tcp, struct sockaddr_storage *out);

/*
 * The local address of a TCP or UDP handle (e.g. the port picked when
 * binding port 0) into *out (cleared on entry), normalised as above.
 * Returns 0, UV_EINVAL for another handle type, or a libuv error.
 */
int hd_net_local_addr(const uv_handle_t *handle, struct sockaddr_storage *out);

/* The port of an AF_INET/AF_INET6 address, in host order; 0 otherwise. */
int hd_net_port(const struct sockaddr *addr);

/*
 * uv_close(handle, cb) unless the handle is already closing or closed, so
 * every error path may call it.  cb runs once, from the loop, after the
 * first call only; free the memory holding the handle there.
 */
void hd_net_close(uv_handle_t *handle, uv_close_cb cb);

struct hd_frame_decoder;

/*
 * For a libuv alloc_cb reading framed messages: point buf at room in the
 * decoder for the next read (zero-copy; commit with
 * hd_frame_decoder_commit in the read callback).  When the decoder
 * refuses (a frame above its maximum), buf is empty and libuv reports
 * UV_ENOBUFS to the read callback.  `want` as hd_frame_decoder_reserve.
 */
void hd_net_frame_buf(struct hd_frame_decoder *d, size_t want, uv_buf_t *buf);

#endif

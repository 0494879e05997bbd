/*
 * A reliable, ordered byte stream over UDP datagrams between two homedesk
 * peers (a host and a viewer after a hole punch), without I/O: no
 * sockets, timers or threads inside.  The owner feeds every datagram from
 * the peer to hd_rudp_input, calls hd_rudp_update at the time it asks
 * for, and sends the datagrams handed to its output callback.  Times are
 * a monotonic clock in milliseconds, the same base for every call on one
 * object (uv_now() of a libuv loop and CLOCK_MONOTONIC ms agree, so an
 * object may move from a blocking poll loop to a libuv loop).
 *
 * Design (QUIC loss recovery / KCP nodelay, in our own words):
 * - The stream is cut into segments of at most HD_RUDP_MSS bytes with
 *   32-bit sequence numbers (sn, wrapping).  A retransmission keeps its sn
 *   but gets a fresh transmission number (tx) and send time (ts), so acks
 *   are unambiguous for RTT samples and loss detection.
 * - The receiver acks cumulatively (una: every sn below it arrived) with up
 *   to HD_RUDP_MAX_RANGES SACK ranges above it, its window, and an echo of
 *   the tx/ts of the newest transmission it got with the ms it held it.
 *   Acks go out for every second data segment, at once for a segment out
 *   of order or a duplicate, else after HD_RUDP_ACK_DELAY_MS.
 * - The sender keeps RFC 6298 srtt/rttvar, an RTO within
 *   [HD_RUDP_MIN_RTO_MS, HD_RUDP_MAX_RTO_MS] doubled on every expiry, and
 *   declares a segment lost when a transmission 3 tx later was acked
 *   (fast retransmit on SACK evidence) or one sent after it was acked and
 *   9/8 RTT passed (QUIC's time threshold), or at RTO.  A loss found to
 *   be spurious (the segment is acked while its retransmission cannot
 *   have arrived yet) turns the count off, widens the time threshold (up
 *   to 2 RTT) and undoes the window cut (RACK's adaptive reordering
 *   window, RFC 8985).
 * - Congestion window in segments: slow start from HD_RUDP_INIT_CWND,
 *   NewReno halving once per loss episode (at most once per round trip),
 *   1 segment per window in congestion avoidance, back to
 *   HD_RUDP_MIN_CWND (never lower) after an RTO.  No pacing: a burst is at
 *   most the window.
 * - Flow control: the receiver holds at most HD_RUDP_RCV_WND segments
 *   (about 4 MiB) counted from the first byte the owner has not read;
 *   out-of-order segments are stored only inside that window.  The sender
 *   never sends past the advertised right edge and probes with pings
 *   while it is closed.
 * - Keepalive: a ping when nothing was sent for HD_RUDP_KEEPALIVE_MS (NAT
 *   mappings stay open); a ping is answered with an ack.  The peer is dead
 *   (-ETIMEDOUT) after HD_RUDP_DEAD_MS without a valid datagram from it, or
 *   when a segment stays unacked HD_RUDP_GIVEUP_MS after its first send.
 * - FIN carries the sn after the last segment of the stream; the reader
 *   sees UV_EOF once it has read everything before it.
 *
 * Wire format (integers big-endian).  Every datagram starts with
 *     0xD7 (HD_UDP_MAGIC), type, conv[4]
 * conv (!= 0) names the session; types:
 *   'D' data  sn[4] tx[4] ts[4] payload[1..HD_RUDP_MSS]
 *   'K' ack   una[4] wnd[4] flags[1] tx_echo[4] ts_echo[4] delay[2]
 *             nranges[1] nranges x (start[4] count[2])
 *             wnd: segments the receiver accepts from una on (right edge
 *             una + wnd); flags bit 0: the echo fields are valid (tx_echo
 *             and ts_echo of the highest tx received, delay: ms it was
 *             held); ranges: received runs [start, start + count) above
 *             una, lowest first, count >= 1.
 *   'G' ping  (no body; answered with an ack)
 *   'F' fin   end_sn[4]: the stream ends before segment end_sn.
 * Types 'P' and 'A' are the punch probes of the UDP signalling (not
 * ours): hd_rudp_peek_conv returns 0 for them.  A datagram is at most
 * HD_RUDP_MTU bytes.
 *
 * Every field from the peer is checked (lengths, sn within the window,
 * acks only of what was sent, echoes of real transmissions); a datagram
 * that fails is dropped whole, counted in bad_pkts and leaves the state
 * as it was.  Memory is bounded: HD_RUDP_RCV_WND stored segments on the
 * receive side, HD_RUDP_MAX_QUEUE bytes queued or in flight on the send
 * side.
 *
 * Single-threaded: one object is used by one thread at a time.  The
 * output callback runs from inside hd_rudp_send, hd_rudp_input,
 * hd_rudp_update and hd_rudp_close; it must not call back into the same
 * object.
 */
#ifndef HD_RUDP_H
#define HD_RUDP_H

#include <stddef.h>
#include <stdint.h>

/* First byte of every homedesk peer datagram (0xD7 can never start a
 * protobuf message: field 26, wire type 7 does not exist). */
#define HD_UDP_MAGIC 0xD7
/* Largest datagram sent, and accepted. */
#define HD_RUDP_MTU      1200
#define HD_RUDP_HDR      6                  /* magic, type, conv */
#define HD_RUDP_DATA_HDR (HD_RUDP_HDR + 12) /* + sn, tx, ts */
#define HD_RUDP_MSS      (HD_RUDP_MTU - HD_RUDP_DATA_HDR)
/* Bytes queued by hd_rudp_send and not yet acknowledged, at most. */
#define HD_RUDP_MAX_QUEUE (8u << 20)
/* Segments the receiver buffers beyond what the owner read (~4 MiB). */
#define HD_RUDP_RCV_WND      3500u
#define HD_RUDP_MAX_RANGES   32
#define HD_RUDP_ACK_DELAY_MS 2
#define HD_RUDP_INIT_RTO_MS  200
#define HD_RUDP_MIN_RTO_MS   40
#define HD_RUDP_MAX_RTO_MS   3000
#define HD_RUDP_INIT_CWND    16
#define HD_RUDP_MIN_CWND     4
#define HD_RUDP_KEEPALIVE_MS 5000
#define HD_RUDP_DEAD_MS      20000
#define HD_RUDP_GIVEUP_MS    10000

struct hd_rudp;

struct hd_rudp_cb {
    /* Send one datagram of n <= HD_RUDP_MTU bytes to the peer (dgram is
     * valid during the call only).  Losses are fine: they are repaired. */
    void (*output)(const uint8_t *dgram, size_t n, void *ud);
};

struct hd_rudp_stats {
    uint64_t sent_pkts;     /* every datagram output */
    uint64_t retrans_pkts;  /* data segments sent again */
    uint64_t recv_pkts;     /* valid datagrams taken by input */
    uint64_t dup_pkts;      /* data segments that had arrived already */
    uint64_t bad_pkts;      /* malformed or foreign datagrams dropped */
    uint64_t spurious_pkts; /* declared lost, then found to have arrived */
    uint32_t srtt_ms;       /* smoothed round trip time */
    uint32_t cwnd;          /* congestion window, segments */
};

/*
 * A new stream for session conv (!= 0) at time now_ms; output datagrams
 * go to cb->output(.., ud) (cb is copied).  Returns 0, -EINVAL (conv 0 or
 * no output), -ENOMEM.  *out is NULL on error.
 */
int hd_rudp_new(uint32_t conv, uint64_t now_ms, const struct hd_rudp_cb *cb,
                void *ud, struct hd_rudp **out);

/* Free r and everything queued; accepts NULL.  Sends nothing. */
void hd_rudp_free(struct hd_rudp *r);

/* Hand r to a new owner: later datagrams go to cb->output(.., ud). */
void hd_rudp_set_output(struct hd_rudp *r, const struct hd_rudp_cb *cb,
                        void *ud);

/*
 * The conv of a datagram of this protocol ('D', 'K', 'G', 'F' with at
 * least its fixed fields), or 0 when it is not one (wrong magic, a punch
 * probe 'P'/'A', unknown type, too short or too long, conv 0).  For
 * demultiplexing; hd_rudp_input checks the rest.
 */
uint32_t hd_rudp_peek_conv(const uint8_t *dgram, size_t n);

/*
 * One datagram from the peer at now_ms.  Returns 0 when taken, HD_EPROTO
 * when malformed or foreign (another conv, a probe, a field out of range:
 * dropped, counted in bad_pkts, state unchanged).  May output acks and
 * data.  Failures of the stream itself are read with hd_rudp_error.
 */
int hd_rudp_input(struct hd_rudp *r, const uint8_t *dgram, size_t n,
                  uint64_t now_ms);

/*
 * Queue n bytes (copied) for the peer; sends at once what the windows
 * allow.  Returns 0, -ENOBUFS when hd_rudp_backlog + n would pass
 * HD_RUDP_MAX_QUEUE (nothing queued), -EPIPE after hd_rudp_close or an
 * error, -ENOMEM.
 */
int hd_rudp_send(struct hd_rudp *r, const uint8_t *data, size_t n,
                 uint64_t now_ms);

/*
 * Copy up to cap in-order bytes into buf and release them (which opens
 * the window: the ack that says so goes out with the next
 * hd_rudp_update).  Returns the number of bytes copied.
 */
size_t hd_rudp_recv(struct hd_rudp *r, uint8_t *buf, size_t cap);

/* In-order bytes ready for hd_rudp_recv. */
size_t hd_rudp_readable(const struct hd_rudp *r);

/*
 * Do what is due at now_ms: delayed acks, data the windows now allow,
 * retransmissions (RTO, loss timer), window probes, keepalive, FIN
 * repeats, dead-peer detection.  Returns the absolute time in ms at which
 * it wants to be called again (> now_ms, at most now_ms +
 * HD_RUDP_KEEPALIVE_MS); call it earlier after input or send if
 * convenient, never needed.
 */
uint64_t hd_rudp_update(struct hd_rudp *r, uint64_t now_ms);

/* Bytes queued or in flight and not yet acknowledged by the peer. */
size_t hd_rudp_backlog(const struct hd_rudp *r);

/*
 * 0 while the stream lives; UV_EOF once the peer's FIN arrived and every
 * byte before it was read; -ETIMEDOUT when the peer was silent for
 * HD_RUDP_DEAD_MS or a segment stayed unacked for HD_RUDP_GIVEUP_MS.
 */
int hd_rudp_error(const struct hd_rudp *r);

/*
 * Close our direction: later sends fail; queued data still goes out while
 * the owner keeps calling update; FIN now and twice more from update
 * (best effort: a peer that misses all three times the peer finds out by
 * HD_RUDP_DEAD_MS).  Idempotent.
 */
void hd_rudp_close(struct hd_rudp *r, uint64_t now_ms);

/* Counters and estimates into *st (cleared on entry). */
void hd_rudp_get_stats(const struct hd_rudp *r, struct hd_rudp_stats *st);

#endif

/*
 * The reliable UDP stream's insides, shared by its files (users include
 * rudp.h): rudp.c holds the send side, output, congestion control and
 * timers; rudp_in.c the input (acks, data, fin) and reading.  The
 * invariants are in rudp.c's opening comment.
 *
 * Threads: one at a time per stream (the caller's).
 */
#ifndef HD_RUDP_INT_H
#define HD_RUDP_INT_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "err.h"
#include "log.h"
#include "rudp.h"

#define SLOTS             4096u /* ring size, power of 2, > HD_RUDP_RCV_WND */
#define SLOT_MASK         (SLOTS - 1)
#define FREE_MAX          256 /* spare MTU blocks kept */
#define PKT_THRESHOLD     3   /* reordering tolerated at first, transmissions */
#define PKT_THRESHOLD_OFF (1u << 30) /* reordering seen: time only */
#define REO_SHIFT         3  /* time threshold rtt + rtt >> shift (9/8 RTT) */
#define ACK_BODY          20 /* una wnd flags tx ts delay nranges */
#define FIN_REPEATS       3

enum { SEG_NONE, SEG_FLIGHT, SEG_LOST, SEG_ACKED };

struct snd_seg {
    uint8_t *buf;
    uint16_t len;
    uint8_t state;
    uint32_t xmits;
    uint64_t tx;       /* number of the last transmission */
    uint64_t sent_ms;  /* time of the last transmission */
    uint64_t first_ms; /* time of the first */
};

struct rcv_seg {
    uint8_t *buf; /* NULL: slot empty */
    uint16_t len;
};

struct hd_rudp {
    uint32_t conv;
    struct hd_rudp_cb cb;
    void *ud;
    uint64_t now;
    int err;

    /* send side */
    uint8_t *q; /* bytes not yet in segments: q[q_head .. q_head+q_len) */
    size_t q_head, q_len, q_cap;
    size_t flight_bytes; /* bytes in segments not yet acknowledged */
    uint32_t snd_una, snd_nxt, peer_right;
    struct snd_seg *snd;
    uint32_t *rtx; /* FIFO of sns to send again (may hold stale ones) */
    uint32_t rtx_head, rtx_len;
    uint64_t tx_next, largest_acked_tx, sampled_tx;
    uint32_t inflight, cwnd, ssthresh, cwnd_acc;
    uint32_t prior_cwnd, prior_ssthresh; /* before the last loss episode */
    uint32_t reo_pkts, reo_shift;        /* reordering tolerance */
    uint64_t recovery_tx;
    uint32_t srtt8, rttvar4, latest_rtt, rto;
    unsigned backoff;
    int have_rtt;
    uint64_t rto_at, loss_at, probe_at, last_send, last_recv;

    /* receive side */
    struct rcv_seg *rcv;
    uint32_t rd_sn, rd_off, rcv_nxt, rcv_max, adv_right;
    size_t avail;
    unsigned ack_count;
    int ack_now, echo_valid;
    uint64_t ack_at, echo_at;
    uint32_t echo_tx, echo_ts;
    int fin_rcvd;
    uint32_t fin_sn;

    /* closing */
    int closing, fin_left;
    uint32_t fin_end;
    uint64_t fin_at;

    uint8_t *spare[FREE_MAX];
    int nspare;
    uint64_t bad_logged;
    struct hd_rudp_stats st;
};

static inline int32_t sdiff(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b);
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint64_t min_at(uint64_t a, uint64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

/* rudp.c */
uint8_t *rudp_blk_get(struct hd_rudp *r);
void rudp_blk_put(struct hd_rudp *r, uint8_t *b);
uint32_t rudp_cur_rto(const struct hd_rudp *r);
void rudp_spurious(struct hd_rudp *r);
void rudp_ack_seg(struct hd_rudp *r, struct snd_seg *s, uint64_t echo_tx);
void rudp_detect_loss(struct hd_rudp *r);
void rudp_flush(struct hd_rudp *r);

#endif

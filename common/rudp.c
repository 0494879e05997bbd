/*
 * Reliable ordered stream over datagrams: see rudp.h for the design and
 * the wire format.
 *
 * Invariants.  Send side: segments [snd_una, snd_nxt) live in the ring
 * snd (slot sn & SLOT_MASK), each FLIGHT (sent, counted in inflight),
 * LOST (waiting in the rtx queue) or ACKED (SACKed, freed when una passes
 * it); bytes not yet cut into segments wait in q.  Receive side:
 * rd_sn <= rcv_nxt <= rcv_max, segments [rd_sn, rcv_nxt) are complete and
 * unread (avail bytes, the first one read up to rd_off), segments
 * stored above rcv_nxt are out of order, and nothing is stored at or past
 * rd_sn + HD_RUDP_RCV_WND.  Sequence numbers wrap: compare with sdiff.
 */
#include "common/rudp_int.h"

uint8_t *rudp_blk_get(struct hd_rudp *r)
{
    return r->nspare > 0 ? r->spare[--r->nspare] : malloc(HD_RUDP_MTU);
}

void rudp_blk_put(struct hd_rudp *r, uint8_t *b)
{
    if (b == NULL)
        return;
    if (r->nspare < FREE_MAX)
        r->spare[r->nspare++] = b;
    else
        free(b);
}

int hd_rudp_new(uint32_t conv, uint64_t now_ms, const struct hd_rudp_cb *cb,
                void *ud, struct hd_rudp **out)
{
    struct hd_rudp *r;

    *out = NULL;
    if (conv == 0 || cb == NULL || cb->output == NULL)
        return -EINVAL;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return -ENOMEM;
    r->snd = calloc(SLOTS, sizeof(*r->snd));
    r->rcv = calloc(SLOTS, sizeof(*r->rcv));
    r->rtx = calloc(SLOTS, sizeof(*r->rtx));
    if (r->snd == NULL || r->rcv == NULL || r->rtx == NULL) {
        hd_rudp_free(r);
        return -ENOMEM;
    }
    r->conv = conv;
    r->cb = *cb;
    r->ud = ud;
    r->now = now_ms;
    r->peer_right = HD_RUDP_RCV_WND; /* both ends use the same window */
    r->adv_right = HD_RUDP_RCV_WND;
    r->tx_next = 1;
    r->cwnd = HD_RUDP_INIT_CWND;
    r->ssthresh = UINT32_MAX;
    r->reo_pkts = PKT_THRESHOLD;
    r->reo_shift = REO_SHIFT;
    r->rto = HD_RUDP_INIT_RTO_MS;
    r->last_send = now_ms;
    r->last_recv = now_ms;
    *out = r;
    return 0;
}

void hd_rudp_free(struct hd_rudp *r)
{
    if (r == NULL)
        return;
    if (r->snd != NULL)
        for (unsigned i = 0; i < SLOTS; i++)
            free(r->snd[i].buf);
    if (r->rcv != NULL)
        for (unsigned i = 0; i < SLOTS; i++)
            free(r->rcv[i].buf);
    for (int i = 0; i < r->nspare; i++)
        free(r->spare[i]);
    free(r->snd);
    free(r->rcv);
    free(r->rtx);
    free(r->q);
    free(r);
}

void hd_rudp_set_output(struct hd_rudp *r, const struct hd_rudp_cb *cb,
                        void *ud)
{
    r->cb = *cb;
    r->ud = ud;
}

uint32_t hd_rudp_peek_conv(const uint8_t *d, size_t n)
{
    size_t min;

    if (d == NULL || n < HD_RUDP_HDR || n > HD_RUDP_MTU || d[0] != HD_UDP_MAGIC)
        return 0;
    switch (d[1]) {
    case 'D':
        min = HD_RUDP_DATA_HDR + 1;
        break;
    case 'K':
        min = HD_RUDP_HDR + ACK_BODY;
        break;
    case 'G':
        min = HD_RUDP_HDR;
        break;
    case 'F':
        min = HD_RUDP_HDR + 4;
        break;
    default: /* 'P' and 'A' are punch probes, anything else is foreign */
        return 0;
    }
    return n < min ? 0 : get32(d + 2);
}

/* ---- output ---- */

static void emit(struct hd_rudp *r, const uint8_t *d, size_t n)
{
    r->st.sent_pkts++;
    r->last_send = r->now;
    r->cb.output(d, n, r->ud);
}

static void put_hdr(struct hd_rudp *r, uint8_t *d, uint8_t type)
{
    d[0] = HD_UDP_MAGIC;
    d[1] = type;
    put32(d + 2, r->conv);
}

uint32_t rudp_cur_rto(const struct hd_rudp *r)
{
    uint64_t v = (uint64_t)r->rto << r->backoff;

    return v > HD_RUDP_MAX_RTO_MS ? HD_RUDP_MAX_RTO_MS : (uint32_t)v;
}

static void send_ack(struct hd_rudp *r)
{
    uint8_t d[HD_RUDP_MTU], *p = d + HD_RUDP_HDR;
    uint32_t sn, start, right = r->rd_sn + HD_RUDP_RCV_WND;
    uint64_t held = r->now - r->echo_at;
    unsigned nr = 0;

    put_hdr(r, d, 'K');
    put32(p, r->rcv_nxt);
    put32(p + 4, right - r->rcv_nxt);
    p[8] = r->echo_valid ? 1 : 0;
    put32(p + 9, r->echo_valid ? r->echo_tx : 0);
    put32(p + 13, r->echo_valid ? r->echo_ts : 0);
    put16(p + 17,
          (uint16_t)(r->echo_valid ? (held > 65535 ? 65535 : held) : 0));
    p += ACK_BODY;
    /* runs above the first hole, lowest first (the ones that block) */
    for (sn = r->rcv_nxt + 1;
         sdiff(r->rcv_max, sn) > 0 && nr < HD_RUDP_MAX_RANGES;) {
        if (r->rcv[sn & SLOT_MASK].buf == NULL) {
            sn++;
            continue;
        }
        start = sn;
        while (sdiff(r->rcv_max, sn) > 0 && sn - start < 65535 &&
               r->rcv[sn & SLOT_MASK].buf != NULL)
            sn++;
        put32(p, start);
        put16(p + 4, (uint16_t)(sn - start));
        p += 6;
        nr++;
    }
    d[HD_RUDP_HDR + ACK_BODY - 1] = (uint8_t)nr;
    r->adv_right = right;
    r->ack_count = 0;
    r->ack_now = 0;
    r->ack_at = 0;
    emit(r, d, (size_t)(p - d));
}

static void send_ping(struct hd_rudp *r)
{
    uint8_t d[HD_RUDP_HDR];

    put_hdr(r, d, 'G');
    emit(r, d, sizeof(d));
}

static void send_fin(struct hd_rudp *r)
{
    uint8_t d[HD_RUDP_HDR + 4];

    put_hdr(r, d, 'F');
    put32(d + HD_RUDP_HDR, r->fin_end);
    emit(r, d, sizeof(d));
}

static void send_seg(struct hd_rudp *r, uint32_t sn)
{
    struct snd_seg *s = &r->snd[sn & SLOT_MASK];
    uint8_t d[HD_RUDP_MTU];

    put_hdr(r, d, 'D');
    put32(d + 6, sn);
    put32(d + 10, (uint32_t)r->tx_next);
    put32(d + 14, (uint32_t)r->now);
    memcpy(d + HD_RUDP_DATA_HDR, s->buf, s->len);
    s->tx = r->tx_next++;
    s->sent_ms = r->now;
    if (s->xmits++ == 0)
        s->first_ms = r->now;
    else
        r->st.retrans_pkts++;
    s->state = SEG_FLIGHT;
    r->inflight++;
    if (r->rto_at == 0)
        r->rto_at = r->now + rudp_cur_rto(r);
    emit(r, d, HD_RUDP_DATA_HDR + (size_t)s->len);
}

/* ---- congestion control ---- */

static void cc_loss(struct hd_rudp *r, uint64_t tx)
{
    if (tx < r->recovery_tx)
        return; /* sent before this episode began: already reacted */
    r->prior_cwnd = r->cwnd;
    r->prior_ssthresh = r->ssthresh;
    r->ssthresh =
        r->cwnd / 2 > HD_RUDP_MIN_CWND ? r->cwnd / 2 : HD_RUDP_MIN_CWND;
    r->cwnd = r->ssthresh;
    r->cwnd_acc = 0;
    r->recovery_tx = r->tx_next;
}

static void cc_acked(struct hd_rudp *r, uint64_t tx)
{
    if (tx < r->recovery_tx || r->cwnd >= SLOTS)
        return;
    if (r->cwnd < r->ssthresh) {
        r->cwnd++;
    } else if (++r->cwnd_acc >= r->cwnd) {
        r->cwnd++;
        r->cwnd_acc = 0;
    }
}

/* ---- send side ---- */

static void rtx_push(struct hd_rudp *r, uint32_t sn)
{
    if (r->rtx_len == SLOTS) {
        /* full of stale entries (acked while queued): keep the live ones */
        uint32_t n = 0;

        for (uint32_t i = 0; i < r->rtx_len; i++) {
            uint32_t v = r->rtx[(r->rtx_head + i) & SLOT_MASK];

            if (sdiff(v, r->snd_una) >= 0 && sdiff(r->snd_nxt, v) > 0 &&
                r->snd[v & SLOT_MASK].state == SEG_LOST)
                r->rtx[(r->rtx_head + n++) & SLOT_MASK] = v;
        }
        r->rtx_len = n;
        if (n == SLOTS)
            return; /* cannot happen: fewer than SLOTS segments live */
    }
    r->rtx[(r->rtx_head + r->rtx_len++) & SLOT_MASK] = sn;
}

static void mark_lost(struct hd_rudp *r, uint32_t sn, int cc)
{
    struct snd_seg *s = &r->snd[sn & SLOT_MASK];

    s->state = SEG_LOST;
    r->inflight--;
    rtx_push(r, sn);
    if (cc)
        cc_loss(r, s->tx);
}

/*
 * A segment we declared lost was not: it is acknowledged while still
 * waiting to go again, or while the peer has not yet received our
 * retransmission of it (echo_tx, the newest transmission the peer got, is
 * older).  The path reorders: as RACK does (RFC 8985), stop counting
 * transmissions (a fast sender sees thousands go by in a few ms of
 * jitter), widen the time threshold towards 2 RTT, and undo the window
 * cut that the false loss caused.
 */
void rudp_spurious(struct hd_rudp *r)
{
    r->st.spurious_pkts++;
    r->reo_pkts = PKT_THRESHOLD_OFF;
    if (r->reo_shift > 0)
        r->reo_shift--;
    if (r->prior_cwnd > r->cwnd) {
        r->cwnd = r->prior_cwnd;
        r->ssthresh = r->prior_ssthresh;
        r->prior_cwnd = 0;
    }
}

void rudp_ack_seg(struct hd_rudp *r, struct snd_seg *s, uint64_t echo_tx)
{
    if (s->state == SEG_LOST || (s->xmits > 1 && echo_tx < s->tx))
        rudp_spurious(r);
    if (s->state == SEG_FLIGHT)
        r->inflight--;
    s->state = SEG_ACKED;
    r->flight_bytes -= s->len;
    cc_acked(r, s->tx);
}

/*
 * Declare lost what a later acknowledged transmission shows missing, by
 * count (PKT_THRESHOLD transmissions) or time (9/8 RTT), and arm loss_at
 * for the earliest one not yet due.  Segments are in sn order; first
 * transmissions have rising tx, so the scan stops at the first one not
 * sent before the largest acked (retransmissions only have larger tx).
 */
void rudp_detect_loss(struct hd_rudp *r)
{
    uint32_t rtt, delay, sn;

    r->loss_at = 0;
    if (r->largest_acked_tx == 0)
        return;
    rtt = r->srtt8 / 8 > r->latest_rtt ? r->srtt8 / 8 : r->latest_rtt;
    delay = rtt + (rtt >> r->reo_shift);
    if (delay < 2)
        delay = 2;
    for (sn = r->snd_una; sn != r->snd_nxt; sn++) {
        struct snd_seg *s = &r->snd[sn & SLOT_MASK];

        if (s->state != SEG_FLIGHT)
            continue;
        if (s->tx + r->reo_pkts <= r->largest_acked_tx) {
            mark_lost(r, sn, 1);
        } else if (s->tx < r->largest_acked_tx) {
            if (r->now >= s->sent_ms + delay)
                mark_lost(r, sn, 1);
            else
                r->loss_at = min_at(r->loss_at, s->sent_ms + delay);
        } else if (s->xmits == 1) {
            break;
        }
    }
}

/* Cut the next segment from q; returns 0 or -ENOMEM. */
static int new_seg(struct hd_rudp *r)
{
    struct snd_seg *s = &r->snd[r->snd_nxt & SLOT_MASK];
    size_t len = r->q_len < HD_RUDP_MSS ? r->q_len : HD_RUDP_MSS;

    if ((s->buf = rudp_blk_get(r)) == NULL)
        return -ENOMEM;
    memcpy(s->buf, r->q + r->q_head, len);
    s->len = (uint16_t)len;
    s->xmits = 0;
    r->q_head += len;
    r->q_len -= len;
    if (r->q_len == 0)
        r->q_head = 0;
    r->flight_bytes += len;
    send_seg(r, r->snd_nxt++);
    return 0;
}

/* Send what the windows allow, then an ack if one is due. */
void rudp_flush(struct hd_rudp *r)
{
    if (r->err)
        return;
    while (r->inflight < r->cwnd && r->rtx_len > 0) {
        uint32_t sn = r->rtx[r->rtx_head];

        r->rtx_head = (r->rtx_head + 1) & SLOT_MASK;
        r->rtx_len--;
        if (sdiff(sn, r->snd_una) >= 0 && sdiff(r->snd_nxt, sn) > 0 &&
            r->snd[sn & SLOT_MASK].state == SEG_LOST)
            send_seg(r, sn);
    }
    while (r->inflight < r->cwnd && r->q_len > 0 &&
           r->snd_nxt - r->snd_una < SLOTS - 1 &&
           sdiff(r->peer_right, r->snd_nxt) > 0)
        if (new_seg(r) != 0)
            break;
    if (r->q_len > 0 && sdiff(r->peer_right, r->snd_nxt) <= 0) {
        if (r->probe_at == 0) /* window closed: ask for news */
            r->probe_at = r->now + rudp_cur_rto(r);
    } else {
        r->probe_at = 0;
    }
    if (r->inflight == 0)
        r->rto_at = 0;
    if (r->ack_now || r->ack_count >= 2)
        send_ack(r);
}

int hd_rudp_send(struct hd_rudp *r, const uint8_t *data, size_t n,
                 uint64_t now_ms)
{
    r->now = now_ms;
    if (r->closing || r->err)
        return -EPIPE;
    if (n > HD_RUDP_MAX_QUEUE || hd_rudp_backlog(r) + n > HD_RUDP_MAX_QUEUE)
        return -ENOBUFS;
    if (n == 0)
        return 0;
    if (r->q_head + r->q_len + n > r->q_cap) {
        if (r->q_head > 0) {
            memmove(r->q, r->q + r->q_head, r->q_len);
            r->q_head = 0;
        }
        if (r->q_len + n > r->q_cap) {
            size_t cap = r->q_cap ? r->q_cap : 64 * 1024;
            uint8_t *q;

            while (cap < r->q_len + n)
                cap *= 2;
            if ((q = realloc(r->q, cap)) == NULL)
                return -ENOMEM;
            r->q = q;
            r->q_cap = cap;
        }
    }
    memcpy(r->q + r->q_head + r->q_len, data, n);
    r->q_len += n;
    rudp_flush(r);
    return 0;
}

size_t hd_rudp_backlog(const struct hd_rudp *r)
{
    return r->q_len + r->flight_bytes;
}

/* ---- timers ---- */

static void on_rto(struct hd_rudp *r)
{
    for (uint32_t sn = r->snd_una; sn != r->snd_nxt; sn++)
        if (r->snd[sn & SLOT_MASK].state == SEG_FLIGHT)
            mark_lost(r, sn, 0);
    r->ssthresh =
        r->cwnd / 2 > HD_RUDP_MIN_CWND ? r->cwnd / 2 : HD_RUDP_MIN_CWND;
    r->cwnd = HD_RUDP_MIN_CWND;
    r->cwnd_acc = 0;
    r->recovery_tx = r->tx_next;
    if (r->backoff < 16)
        r->backoff++;
    r->rto_at = 0;
    r->loss_at = 0;
}

uint64_t hd_rudp_update(struct hd_rudp *r, uint64_t now_ms)
{
    uint64_t next = 0;

    r->now = now_ms;
    if (r->err)
        return now_ms + HD_RUDP_KEEPALIVE_MS;
    if (now_ms >= r->last_recv + HD_RUDP_DEAD_MS ||
        (r->snd_una != r->snd_nxt &&
         now_ms >=
             r->snd[r->snd_una & SLOT_MASK].first_ms + HD_RUDP_GIVEUP_MS)) {
        hd_debug("rudp", "conv %08x: peer timed out", r->conv);
        r->err = -ETIMEDOUT;
        return now_ms + HD_RUDP_KEEPALIVE_MS;
    }
    if (r->ack_at != 0 && now_ms >= r->ack_at)
        r->ack_now = 1;
    if (r->rto_at != 0 && now_ms >= r->rto_at)
        on_rto(r);
    else if (r->loss_at != 0 && now_ms >= r->loss_at)
        rudp_detect_loss(r);
    rudp_flush(r);
    if (r->probe_at != 0 && now_ms >= r->probe_at) {
        send_ping(r);
        r->probe_at =
            now_ms + (rudp_cur_rto(r) < 1000 ? rudp_cur_rto(r) : 1000);
    }
    if (r->fin_left > 0 && now_ms >= r->fin_at) {
        send_fin(r);
        r->fin_left--;
        r->fin_at = now_ms + (rudp_cur_rto(r) > 100 ? rudp_cur_rto(r) : 100);
    }
    if (now_ms >= r->last_send + HD_RUDP_KEEPALIVE_MS)
        send_ping(r);

    next = r->last_send + HD_RUDP_KEEPALIVE_MS;
    next = min_at(next, r->last_recv + HD_RUDP_DEAD_MS);
    next = min_at(next, r->ack_at);
    next = min_at(next, r->rto_at);
    next = min_at(next, r->loss_at);
    next = min_at(next, r->probe_at);
    if (r->fin_left > 0)
        next = min_at(next, r->fin_at);
    if (r->snd_una != r->snd_nxt)
        next = min_at(next, r->snd[r->snd_una & SLOT_MASK].first_ms +
                                HD_RUDP_GIVEUP_MS);
    return next > now_ms ? next : now_ms + 1;
}

int hd_rudp_error(const struct hd_rudp *r)
{
    if (r->err)
        return r->err;
    if (r->fin_rcvd && r->rcv_nxt == r->fin_sn && r->avail == 0)
        return UV_EOF;
    return 0;
}

void hd_rudp_close(struct hd_rudp *r, uint64_t now_ms)
{
    r->now = now_ms;
    if (r->closing)
        return;
    r->closing = 1;
    r->fin_end =
        r->snd_nxt + (uint32_t)((r->q_len + HD_RUDP_MSS - 1) / HD_RUDP_MSS);
    if (r->err)
        return;
    send_fin(r);
    r->fin_left = FIN_REPEATS - 1;
    r->fin_at = now_ms + (rudp_cur_rto(r) > 100 ? rudp_cur_rto(r) : 100);
}

void hd_rudp_get_stats(const struct hd_rudp *r, struct hd_rudp_stats *st)
{
    memset(st, 0, sizeof(*st));
    *st = r->st;
    st->srtt_ms = r->srtt8 / 8;
    st->cwnd = r->cwnd;
}

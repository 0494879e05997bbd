/*
 * Input side of the reliable UDP stream (see rudp.c for the invariants):
 * acks with SACK ranges, RTT samples and loss detection on them, data
 * segments stored in order or out of order within the receive window,
 * fin, and reading what is complete.
 */
#include "common/rudp_int.h"

/* ---- input ---- */

static int bad(struct hd_rudp *r, const char *why)
{
    r->st.bad_pkts++;
    if (r->bad_logged++ == 0)
        hd_warn("rudp", "conv %08x: dropped datagram: %s", r->conv, why);
    else
        hd_debug("rudp", "conv %08x: dropped datagram: %s", r->conv, why);
    return HD_EPROTO;
}

static void rtt_sample(struct hd_rudp *r, uint32_t ts_echo, uint32_t delay)
{
    int32_t s = (int32_t)((uint32_t)r->now - ts_echo);
    uint32_t v, dev;

    if (s < 0 || s > 60000)
        return; /* not a time we sent */
    v = (uint32_t)s;
    if (v > delay)
        v -= delay;
    r->latest_rtt = v;
    if (!r->have_rtt) {
        r->srtt8 = v * 8;
        r->rttvar4 = v * 2;
        r->have_rtt = 1;
    } else {
        dev = v > r->srtt8 / 8 ? v - r->srtt8 / 8 : r->srtt8 / 8 - v;
        r->rttvar4 = r->rttvar4 - r->rttvar4 / 4 + dev;
        r->srtt8 = r->srtt8 - r->srtt8 / 8 + v;
    }
    v = r->srtt8 / 8 + (r->rttvar4 > 1 ? r->rttvar4 : 1) + HD_RUDP_ACK_DELAY_MS;
    if (v < HD_RUDP_MIN_RTO_MS)
        v = HD_RUDP_MIN_RTO_MS;
    if (v > HD_RUDP_MAX_RTO_MS)
        v = HD_RUDP_MAX_RTO_MS;
    r->rto = v;
}

static int input_ack(struct hd_rudp *r, const uint8_t *d, size_t n)
{
    const uint8_t *p = d + HD_RUDP_HDR, *rg;
    uint32_t una = get32(p), wnd = get32(p + 4), sn, end;
    uint32_t flight = r->snd_nxt - r->snd_una;
    unsigned nr = p[19];
    uint64_t tx = 0, echo, before = r->flight_bytes;
    int progress;

    if (n < HD_RUDP_HDR + ACK_BODY + (size_t)nr * 6)
        return bad(r, "short ack");
    if (sdiff(una, r->snd_una) > 0 && una - r->snd_una > flight)
        return bad(r, "ack of data never sent");
    if (wnd > HD_RUDP_RCV_WND * 4u)
        return bad(r, "absurd window");
    rg = p + ACK_BODY;
    for (unsigned i = 0; i < nr; i++) {
        sn = get32(rg + 6 * i);
        end = sn + get16(rg + 6 * i + 4);
        if (end == sn || sdiff(end, r->snd_nxt) > 0 || sdiff(end, sn) < 0)
            return bad(r, "bad sack range");
    }
    if (p[8] & 1) {
        tx = (r->tx_next & ~(uint64_t)0xffffffff) | get32(p + 9);
        if (tx >= r->tx_next)
            tx -= (uint64_t)1 << 32;
        if (tx == 0 || tx >= r->tx_next || tx > ((uint64_t)1 << 62))
            return bad(r, "echo of a transmission never sent");
    }

    /* without an echo, no retransmission counts as rudp_spurious */
    echo = tx != 0 ? tx : UINT64_MAX;
    if (tx > r->largest_acked_tx)
        r->largest_acked_tx = tx;
    if (tx > r->sampled_tx) {
        r->sampled_tx = tx;
        rtt_sample(r, get32(p + 13), get16(p + 17));
    }
    while (sdiff(una, r->snd_una) > 0) {
        struct snd_seg *s = &r->snd[r->snd_una & SLOT_MASK];

        if (s->state != SEG_ACKED)
            rudp_ack_seg(r, s, echo);
        rudp_blk_put(r, s->buf);
        s->buf = NULL;
        s->state = SEG_NONE;
        r->snd_una++;
    }
    for (unsigned i = 0; i < nr; i++) {
        sn = get32(rg + 6 * i);
        end = sn + get16(rg + 6 * i + 4);
        if (sdiff(sn, r->snd_una) < 0)
            sn = r->snd_una;
        for (; sdiff(end, sn) > 0; sn++) {
            struct snd_seg *s = &r->snd[sn & SLOT_MASK];

            if (s->state == SEG_FLIGHT || s->state == SEG_LOST)
                rudp_ack_seg(r, s, echo);
        }
    }
    if (sdiff(una + wnd, r->peer_right) > 0)
        r->peer_right = una + wnd;
    progress = r->flight_bytes != before;
    if (progress)
        r->backoff = 0;
    if (r->inflight == 0)
        r->rto_at = 0;
    else if (progress)
        r->rto_at = r->now + rudp_cur_rto(r);
    rudp_detect_loss(r);
    return 0;
}

static int input_data(struct hd_rudp *r, const uint8_t *d, size_t n)
{
    uint32_t sn = get32(d + 6), tx = get32(d + 10), ts = get32(d + 14);
    size_t len = n - HD_RUDP_DATA_HDR;
    struct rcv_seg *slot = &r->rcv[sn & SLOT_MASK];
    uint32_t old = r->rcv_nxt;

    if (sdiff(sn, r->rcv_nxt) >= 0) {
        if (sn - r->rd_sn >= HD_RUDP_RCV_WND)
            return bad(r, "data beyond the window");
        if (r->fin_rcvd && sdiff(sn, r->fin_sn) >= 0)
            return bad(r, "data after fin");
    }
    if (!r->echo_valid || sdiff(tx, r->echo_tx) > 0) {
        r->echo_valid = 1;
        r->echo_tx = tx;
        r->echo_ts = ts;
        r->echo_at = r->now;
    }
    if (sdiff(sn, r->rcv_nxt) < 0 || slot->buf != NULL) {
        r->st.dup_pkts++;
        r->ack_now = 1; /* our ack may have been lost */
        return 0;
    }
    if ((slot->buf = rudp_blk_get(r)) == NULL)
        return 0; /* as if lost */
    memcpy(slot->buf, d + HD_RUDP_DATA_HDR, len);
    slot->len = (uint16_t)len;
    if (sdiff(sn + 1, r->rcv_max) > 0)
        r->rcv_max = sn + 1;
    while (r->rcv[r->rcv_nxt & SLOT_MASK].buf != NULL &&
           r->rcv_nxt - r->rd_sn < HD_RUDP_RCV_WND) {
        r->avail += r->rcv[r->rcv_nxt & SLOT_MASK].len;
        r->rcv_nxt++;
    }
    if (sn != old || r->rcv_max != r->rcv_nxt)
        r->ack_now = 1; /* a hole: tell the sender now */
    if (++r->ack_count < 2 && r->ack_at == 0)
        r->ack_at = r->now + HD_RUDP_ACK_DELAY_MS;
    return 0;
}

static int input_fin(struct hd_rudp *r, const uint8_t *d)
{
    uint32_t end = get32(d + HD_RUDP_HDR);

    if (sdiff(end, r->rcv_max) < 0 || end - r->rd_sn > (1u << 30))
        return bad(r, "fin before received data or absurd");
    if (r->fin_rcvd && end != r->fin_sn)
        return bad(r, "second fin elsewhere");
    r->fin_rcvd = 1;
    r->fin_sn = end;
    return 0;
}

int hd_rudp_input(struct hd_rudp *r, const uint8_t *d, size_t n,
                  uint64_t now_ms)
{
    int ret;

    r->now = now_ms;
    if (hd_rudp_peek_conv(d, n) != r->conv)
        return bad(r, "not ours");
    if (r->err)
        return 0;
    switch (d[1]) {
    case 'D':
        ret = input_data(r, d, n);
        break;
    case 'K':
        ret = input_ack(r, d, n);
        break;
    case 'F':
        ret = input_fin(r, d);
        break;
    default: /* 'G' */
        r->ack_now = 1;
        ret = 0;
        break;
    }
    if (ret != 0)
        return ret;
    r->st.recv_pkts++;
    r->last_recv = now_ms;
    rudp_flush(r);
    return 0;
}

/* ---- reading ---- */

size_t hd_rudp_recv(struct hd_rudp *r, uint8_t *buf, size_t cap)
{
    size_t got = 0;

    while (got < cap && r->rd_sn != r->rcv_nxt) {
        struct rcv_seg *s = &r->rcv[r->rd_sn & SLOT_MASK];
        size_t take = s->len - r->rd_off;

        if (take > cap - got)
            take = cap - got;
        memcpy(buf + got, s->buf + r->rd_off, take);
        got += take;
        r->rd_off += (uint32_t)take;
        if (r->rd_off == s->len) {
            rudp_blk_put(r, s->buf);
            s->buf = NULL;
            r->rd_sn++;
            r->rd_off = 0;
        }
    }
    r->avail -= got;
    /* the window moved a good deal: say so with the next update */
    if (r->rd_sn + HD_RUDP_RCV_WND - r->adv_right >= HD_RUDP_RCV_WND / 4)
        r->ack_now = 1;
    return got;
}

size_t hd_rudp_readable(const struct hd_rudp *r)
{
    return r->avail;
}

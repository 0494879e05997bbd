/*
 * Unit tests for common/rudp: two streams joined by a simulated link (a
 * heap of datagrams ordered by delivery time, with seeded loss,
 * duplication and jitter that reorders) on a simulated clock; forged and
 * foreign datagrams; the queue cap; timeouts, keepalive and FIN.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "err.h"
#include "rudp.h"
#include "tests/harness.h"

#define CONV 0x1234abcdu

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* ---- the simulated link ---- */

struct pkt {
    uint64_t at, seq;
    size_t n;
    uint8_t d[HD_RUDP_MTU];
};

struct link {
    struct pkt **heap;
    size_t len, cap;
    uint64_t seq;
    unsigned loss_pct, dup_pct, delay, jitter;
    uint64_t *now;
};

static int pkt_before(const struct pkt *a, const struct pkt *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void link_push(struct link *l, const uint8_t *d, size_t n)
{
    struct pkt *p = malloc(sizeof(*p));
    size_t i;

    if (p == NULL)
        abort();
    p->at = *l->now + l->delay + (l->jitter ? rnd() % (l->jitter + 1) : 0);
    p->seq = l->seq++;
    p->n = n;
    memcpy(p->d, d, n);
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->heap = realloc(l->heap, l->cap * sizeof(*l->heap));
        if (l->heap == NULL)
            abort();
    }
    for (i = l->len++; i > 0 && pkt_before(p, l->heap[(i - 1) / 2]);
         i = (i - 1) / 2)
        l->heap[i] = l->heap[(i - 1) / 2];
    l->heap[i] = p;
}

static struct pkt *link_pop(struct link *l, uint64_t now)
{
    struct pkt *top, *last;
    size_t i = 0, c;

    if (l->len == 0 || l->heap[0]->at > now)
        return NULL;
    top = l->heap[0];
    last = l->heap[--l->len];
    while ((c = 2 * i + 1) < l->len) {
        if (c + 1 < l->len && pkt_before(l->heap[c + 1], l->heap[c]))
            c++;
        if (!pkt_before(l->heap[c], last))
            break;
        l->heap[i] = l->heap[c];
        i = c;
    }
    if (l->len > 0)
        l->heap[i] = last;
    return top;
}

static void link_free(struct link *l)
{
    while (l->len > 0)
        free(l->heap[--l->len]);
    free(l->heap);
    memset(l, 0, sizeof(*l));
}

static void on_output(const uint8_t *d, size_t n, void *ud)
{
    struct link *l = ud;

    HT_CHECK(n <= HD_RUDP_MTU && n >= HD_RUDP_HDR && d[0] == HD_UDP_MAGIC);
    if (l->loss_pct && rnd() % 100 < l->loss_pct)
        return;
    link_push(l, d, n);
    if (l->dup_pct && rnd() % 100 < l->dup_pct)
        link_push(l, d, n);
}

static const struct hd_rudp_cb out_cb = { on_output };

/* ---- a transfer both ways ---- */

struct end {
    struct hd_rudp *r;
    struct link *out;
    uint64_t gen; /* PRNG state of the bytes we send */
    size_t sent, got, total;
    crypto_generichash_state hs, hr;
    uint64_t next;
    uint8_t chunk[65536];
};

static void fill(uint64_t *s, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(*s >> 56);
    }
}

static void end_init(struct end *e, struct link *out, uint64_t seed,
                     size_t total, uint64_t now)
{
    e->out = out;
    e->gen = seed;
    e->sent = e->got = 0;
    e->total = total;
    e->next = 0;
    crypto_generichash_init(&e->hs, NULL, 0, 32);
    crypto_generichash_init(&e->hr, NULL, 0, 32);
    HT_EQ_INT(hd_rudp_new(CONV, now, &out_cb, out, &e->r), 0);
}

/* Queue more of our stream while the queue takes it; read all we can. */
static void end_app(struct end *e, uint64_t now)
{
    size_t n;

    while (e->sent < e->total && hd_rudp_backlog(e->r) < (2u << 20)) {
        n = 1 + rnd() % sizeof(e->chunk);
        if (n > e->total - e->sent)
            n = e->total - e->sent;
        fill(&e->gen, e->chunk, n);
        if (hd_rudp_send(e->r, e->chunk, n, now) != 0) {
            HT_CHECK(0);
            break;
        }
        crypto_generichash_update(&e->hs, e->chunk, n);
        e->sent += n;
    }
    while ((n = hd_rudp_recv(e->r, e->chunk, 1 + rnd() % 20000)) > 0) {
        crypto_generichash_update(&e->hr, e->chunk, n);
        e->got += n;
    }
}

static void deliver(struct link *l, struct hd_rudp *to, uint64_t now)
{
    struct pkt *p;

    while ((p = link_pop(l, now)) != NULL) {
        hd_rudp_input(to, p->d, p->n, now);
        free(p);
    }
}

/*
 * Move total bytes each way; returns the simulated ms it took, with stats
 * of each side in sa/sb (-1 on a stall past limit_ms).
 */
static long transfer(unsigned loss, unsigned dup, unsigned jitter, size_t total,
                     uint64_t seed, struct hd_rudp_stats *sa,
                     struct hd_rudp_stats *sb)
{
    static struct end a, b;
    struct link ab = { 0 }, ba = { 0 };
    uint64_t now = 1000, limit = 1000 + 900000;
    uint8_t ha[32], hb[32], ra[32], rb[32];
    long took = -1;

    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    ab.now = ba.now = &now;
    ab.loss_pct = ba.loss_pct = loss;
    ab.dup_pct = ba.dup_pct = dup;
    ab.delay = ba.delay = 5;
    ab.jitter = ba.jitter = jitter;
    end_init(&a, &ab, seed + 1, total, now);
    end_init(&b, &ba, seed + 2, total, now);
    for (; now < limit; now++) {
        deliver(&ab, b.r, now);
        deliver(&ba, a.r, now);
        end_app(&a, now);
        end_app(&b, now);
        if (now >= a.next)
            a.next = hd_rudp_update(a.r, now);
        if (now >= b.next)
            b.next = hd_rudp_update(b.r, now);
        HT_CHECK(a.next > now && b.next > now);
        HT_EQ_INT(hd_rudp_error(a.r), 0);
        HT_EQ_INT(hd_rudp_error(b.r), 0);
        if (ht_case_failures())
            break;
        if (a.got == total && b.got == total && hd_rudp_backlog(a.r) == 0 &&
            hd_rudp_backlog(b.r) == 0) {
            took = (long)(now - 1000);
            break;
        }
    }
    HT_EQ_INT(a.got, total);
    HT_EQ_INT(b.got, total);
    crypto_generichash_final(&a.hs, ha, 32);
    crypto_generichash_final(&b.hs, hb, 32);
    crypto_generichash_final(&a.hr, ra, 32);
    crypto_generichash_final(&b.hr, rb, 32);
    HT_EQ_MEM(ha, rb, 32);
    HT_EQ_MEM(hb, ra, 32);
    hd_rudp_get_stats(a.r, sa);
    hd_rudp_get_stats(b.r, sb);
    hd_rudp_free(a.r);
    hd_rudp_free(b.r);
    link_free(&ab);
    link_free(&ba);
    return took;
}

#define TEN_MB (10u << 20)

static void clean_link_no_retransmissions(void)
{
    struct hd_rudp_stats sa, sb;
    long ms = transfer(0, 0, 0, TEN_MB, 1, &sa, &sb);

    HT_CHECK(ms > 0);
    HT_EQ_INT(sa.retrans_pkts, 0);
    HT_EQ_INT(sb.retrans_pkts, 0);
    HT_EQ_INT(sa.dup_pkts + sb.dup_pkts, 0);
    HT_EQ_INT(sa.bad_pkts + sb.bad_pkts, 0);
    /* 10 ms round trip: the estimate must be near it */
    HT_CHECK(sa.srtt_ms >= 9 && sa.srtt_ms <= 14);
    HT_CHECK(sa.cwnd > HD_RUDP_INIT_CWND);
    /* at least TEN_MB / MSS data segments each way, acks fewer than data */
    HT_CHECK(sa.sent_pkts >= TEN_MB / HD_RUDP_MSS);
    HT_CHECK(sa.recv_pkts < sa.sent_pkts + sa.sent_pkts / 2);
    /* 3.6 MB window per 10 ms: well under a second of simulated time */
    HT_CHECK(ms < 1000);
    printf("# clean: %ld ms, %llu pkts sent, cwnd %u, srtt %u\n", ms,
           (unsigned long long)sa.sent_pkts, sa.cwnd, sa.srtt_ms);
}

static void reordered_duplicated(void)
{
    struct hd_rudp_stats sa, sb;
    long ms = transfer(0, 5, 8, TEN_MB, 2, &sa, &sb);

    HT_CHECK(ms > 0);
    HT_CHECK(sa.dup_pkts + sb.dup_pkts > 0);
    /* no loss: once the reordering is learned (spurious losses widen the
     * thresholds and undo the window cuts) the transfer runs near the
     * clean link's speed (it took 36 s of simulated time without that) */
    HT_CHECK(sa.spurious_pkts > 0);
    HT_CHECK(ms < 2000);
    printf("# reorder+dup: %ld ms, retrans %llu/%llu, spurious %llu, cwnd %u\n",
           ms, (unsigned long long)sa.retrans_pkts,
           (unsigned long long)sa.sent_pkts,
           (unsigned long long)sa.spurious_pkts, sa.cwnd);
}

static void loss_10_percent(void)
{
    struct hd_rudp_stats sa, sb;
    long ms = transfer(10, 2, 4, TEN_MB, 3, &sa, &sb);

    HT_CHECK(ms > 0);
    HT_CHECK(sa.retrans_pkts > 0 && sb.retrans_pkts > 0);
    /* repairs stay in proportion to the loss (no flood of resends) */
    HT_CHECK(sa.retrans_pkts < sa.sent_pkts / 4);
    HT_CHECK(sa.cwnd >= HD_RUDP_MIN_CWND);
    printf("# 10%% loss: %ld ms, retrans %llu/%llu, cwnd %u\n", ms,
           (unsigned long long)sa.retrans_pkts,
           (unsigned long long)sa.sent_pkts, sa.cwnd);
}

static void loss_30_percent(void)
{
    struct hd_rudp_stats sa, sb;
    long ms = transfer(30, 2, 4, TEN_MB, 4, &sa, &sb);

    HT_CHECK(ms > 0);
    HT_CHECK(sa.retrans_pkts < sa.sent_pkts / 2);
    HT_CHECK(sa.cwnd >= HD_RUDP_MIN_CWND);
    printf("# 30%% loss: %ld ms, retrans %llu/%llu, cwnd %u\n", ms,
           (unsigned long long)sa.retrans_pkts,
           (unsigned long long)sa.sent_pkts, sa.cwnd);
}

/* ---- single-object tests with a captured output ---- */

struct cap {
    int n, pings, acks, data, fins;
    uint8_t last[HD_RUDP_MTU];
    size_t last_n;
};

static void cap_output(const uint8_t *d, size_t n, void *ud)
{
    struct cap *c = ud;

    c->n++;
    c->pings += d[1] == 'G';
    c->acks += d[1] == 'K';
    c->data += d[1] == 'D';
    c->fins += d[1] == 'F';
    memcpy(c->last, d, n);
    c->last_n = n;
}

static const struct hd_rudp_cb cap_cb = { cap_output };

static size_t mk_data(uint8_t *d, uint32_t conv, uint32_t sn, uint32_t tx,
                      const void *payload, size_t n)
{
    d[0] = HD_UDP_MAGIC;
    d[1] = 'D';
    d[2] = (uint8_t)(conv >> 24);
    d[3] = (uint8_t)(conv >> 16);
    d[4] = (uint8_t)(conv >> 8);
    d[5] = (uint8_t)conv;
    for (int i = 0; i < 4; i++) {
        d[6 + i] = (uint8_t)(sn >> (24 - 8 * i));
        d[10 + i] = (uint8_t)(tx >> (24 - 8 * i));
        d[14 + i] = 0;
    }
    memcpy(d + HD_RUDP_DATA_HDR, payload, n);
    return HD_RUDP_DATA_HDR + n;
}

static void peek_conv_rejects_probes_and_garbage(void)
{
    uint8_t d[HD_RUDP_MTU + 10] = { 0 };
    size_t n = mk_data(d, CONV, 0, 1, "x", 1);

    HT_EQ_INT(hd_rudp_peek_conv(d, n), CONV);
    HT_EQ_INT(hd_rudp_peek_conv(d, n - 1), 0); /* no payload */
    HT_EQ_INT(hd_rudp_peek_conv(d, 3), 0);
    HT_EQ_INT(hd_rudp_peek_conv(NULL, 0), 0);
    HT_EQ_INT(hd_rudp_peek_conv(d, HD_RUDP_MTU + 1), 0);
    d[1] = 'P';
    HT_EQ_INT(hd_rudp_peek_conv(d, n), 0);
    d[1] = 'A';
    HT_EQ_INT(hd_rudp_peek_conv(d, n), 0);
    d[1] = 'G';
    HT_EQ_INT(hd_rudp_peek_conv(d, HD_RUDP_HDR), CONV);
    d[1] = 'F';
    HT_EQ_INT(hd_rudp_peek_conv(d, HD_RUDP_HDR + 4), CONV);
    HT_EQ_INT(hd_rudp_peek_conv(d, HD_RUDP_HDR + 3), 0);
    d[1] = 'K';
    HT_EQ_INT(hd_rudp_peek_conv(d, HD_RUDP_HDR + 19), 0);
    d[1] = 'z';
    HT_EQ_INT(hd_rudp_peek_conv(d, n), 0);
    d[1] = 'D';
    d[0] = 0x08; /* a protobuf field tag */
    HT_EQ_INT(hd_rudp_peek_conv(d, n), 0);
    /* a pure-garbage sweep never claims more than the 4 types */
    rng_state = 77;
    for (int i = 0; i < 100000; i++) {
        uint8_t g[32];
        size_t gn = rnd() % sizeof(g);

        for (size_t j = 0; j < gn; j++)
            g[j] = (uint8_t)rnd();
        if (hd_rudp_peek_conv(g, gn) != 0)
            HT_CHECK(g[0] == HD_UDP_MAGIC && strchr("DKGF", g[1]) != NULL &&
                     g[1] != 0);
    }
}

static void forged_and_foreign_ignored(void)
{
    struct cap c = { 0 };
    struct hd_rudp *r;
    struct hd_rudp_stats st;
    uint8_t d[HD_RUDP_MTU], buf[16];
    size_t n, before = 0, after = 0;
    uint64_t bad = 0;

    HT_EQ_INT(hd_rudp_new(CONV, 0, &cap_cb, &c, &r), 0);
    n = mk_data(d, CONV + 1, 0, 1, "hello", 5); /* another conv */
    HT_EQ_INT(hd_rudp_input(r, d, n, 1), HD_EPROTO);
    bad++;
    n = mk_data(d, CONV, 0, 1, "hello", 5);
    HT_EQ_INT(hd_rudp_input(r, d, 10, 1), HD_EPROTO); /* truncated */
    bad++;
    d[1] = 'P';
    HT_EQ_INT(hd_rudp_input(r, d, n, 1), HD_EPROTO);
    d[1] = 'A';
    HT_EQ_INT(hd_rudp_input(r, d, n, 1), HD_EPROTO);
    bad += 2;
    /* beyond the receive window, and the absurd far end */
    n = mk_data(d, CONV, HD_RUDP_RCV_WND, 1, "x", 1);
    HT_EQ_INT(hd_rudp_input(r, d, n, 1), HD_EPROTO);
    n = mk_data(d, CONV, 0x7fffffff, 1, "x", 1);
    HT_EQ_INT(hd_rudp_input(r, d, n, 1), HD_EPROTO);
    bad += 2;
    /* an ack of data never sent, and a SACK range past what was sent */
    memset(d, 0, sizeof(d));
    d[0] = HD_UDP_MAGIC;
    d[1] = 'K';
    d[2] = 0x12, d[3] = 0x34, d[4] = 0xab, d[5] = 0xcd;
    d[HD_RUDP_HDR + 3] = 5; /* una 5 */
    HT_EQ_INT(hd_rudp_input(r, d, HD_RUDP_HDR + 20, 1), HD_EPROTO);
    d[HD_RUDP_HDR + 3] = 0;
    d[HD_RUDP_HDR + 19] = 1; /* one range, [0, 0 + 0): empty */
    HT_EQ_INT(hd_rudp_input(r, d, HD_RUDP_HDR + 26, 1), HD_EPROTO);
    HT_EQ_INT(hd_rudp_input(r, d, HD_RUDP_HDR + 20, 1), HD_EPROTO); /* short */
    d[HD_RUDP_HDR + 19] = 0;
    d[HD_RUDP_HDR + 8] = 1; /* an echo of a tx we never sent */
    d[HD_RUDP_HDR + 12] = 9;
    HT_EQ_INT(hd_rudp_input(r, d, HD_RUDP_HDR + 20, 1), HD_EPROTO);
    bad += 4;
    hd_rudp_get_stats(r, &st);
    HT_EQ_INT(st.bad_pkts, bad);
    HT_EQ_INT(st.recv_pkts, 0);
    HT_EQ_INT(hd_rudp_readable(r), 0);
    HT_EQ_INT(c.n, 0);

    /* the stream itself is intact: the real first segment is taken */
    n = mk_data(d, CONV, 0, 1, "hello", 5);
    HT_EQ_INT(hd_rudp_input(r, d, n, 2), 0);
    HT_EQ_INT(hd_rudp_readable(r), 5);

    /* a flood of forged sequence numbers allocates within the window */
    before = mallinfo2().uordblks;
    rng_state = 99;
    for (int i = 0; i < 200000; i++) {
        uint8_t p[HD_RUDP_MSS];

        n = mk_data(d, CONV, rnd() << 1 | (rnd() & 1), rnd(), p,
                    1 + rnd() % HD_RUDP_MSS);
        hd_rudp_input(r, d, n, 3);
    }
    after = mallinfo2().uordblks;
    HT_CHECK(after < before + (size_t)HD_RUDP_RCV_WND * (HD_RUDP_MTU + 64));
    hd_rudp_get_stats(r, &st);
    /* half of them are behind the stream (duplicates), half beyond */
    HT_CHECK(st.bad_pkts > bad + 90000);
    HT_CHECK(st.dup_pkts + st.bad_pkts - bad >= 200000 - 10);
    HT_EQ_INT(hd_rudp_recv(r, buf, sizeof(buf)), 5);
    HT_EQ_MEM(buf, "hello", 5);
    hd_rudp_free(r);
}

static void queue_cap_enobufs(void)
{
    struct cap c = { 0 };
    struct hd_rudp *r;
    uint8_t *big = calloc(1, HD_RUDP_MAX_QUEUE);
    size_t bl;

    HT_CHECK(big != NULL);
    HT_EQ_INT(hd_rudp_new(CONV, 0, &cap_cb, &c, &r), 0);
    HT_EQ_INT(hd_rudp_send(r, big, HD_RUDP_MAX_QUEUE - 10, 0), 0);
    HT_EQ_INT(c.data, HD_RUDP_INIT_CWND); /* the initial window went out */
    bl = hd_rudp_backlog(r);
    HT_EQ_INT(bl, HD_RUDP_MAX_QUEUE - 10);
    HT_EQ_INT(hd_rudp_send(r, big, 11, 0), -ENOBUFS);
    HT_EQ_INT(hd_rudp_backlog(r), bl);
    HT_EQ_INT(hd_rudp_send(r, big, 10, 0), 0);
    HT_EQ_INT(hd_rudp_send(r, big, 1, 0), -ENOBUFS);
    hd_rudp_close(r, 0);
    HT_EQ_INT(hd_rudp_send(r, big, 0, 0), -EPIPE);
    hd_rudp_free(r);
    free(big);
}

static void dead_peer_times_out_keepalive_sent(void)
{
    struct cap c = { 0 };
    struct hd_rudp *r;
    uint64_t now = 50, next, died = 0;
    int pings_at_6s = -1;

    HT_EQ_INT(hd_rudp_new(CONV, now, &cap_cb, &c, &r), 0);
    while (hd_rudp_error(r) == 0 && now < 60000) {
        if (now >= 6000 && pings_at_6s < 0)
            pings_at_6s = c.pings;
        next = hd_rudp_update(r, now);
        HT_CHECK(next > now && next <= now + HD_RUDP_KEEPALIVE_MS);
        died = now;
        now = next;
    }
    HT_EQ_INT(hd_rudp_error(r), -ETIMEDOUT);
    HT_EQ_INT(pings_at_6s, 1); /* one after 5 s idle */
    HT_EQ_INT(died, 50 + HD_RUDP_DEAD_MS);
    HT_EQ_INT(c.pings, 3); /* at 5, 10 and 15 s */
    HT_EQ_INT(hd_rudp_send(r, (const uint8_t *)"x", 1, now), -EPIPE);
    hd_rudp_free(r);
}

/* The peer answers pings (alive) but never acks our data. */
static void unacked_segment_gives_up(void)
{
    struct cap c = { 0 };
    struct hd_rudp *r;
    uint8_t ping[HD_RUDP_HDR] = { HD_UDP_MAGIC, 'G', 0x12, 0x34, 0xab, 0xcd };
    uint64_t now = 0, next = 0;

    HT_EQ_INT(hd_rudp_new(CONV, now, &cap_cb, &c, &r), 0);
    HT_EQ_INT(hd_rudp_send(r, (const uint8_t *)"data", 4, now), 0);
    for (; hd_rudp_error(r) == 0 && now < 30000; now += 10) {
        if (now % 1000 == 0)
            HT_EQ_INT(hd_rudp_input(r, ping, sizeof(ping), now), 0);
        if (now >= next)
            next = hd_rudp_update(r, now);
    }
    HT_EQ_INT(hd_rudp_error(r), -ETIMEDOUT);
    HT_CHECK(now >= HD_RUDP_GIVEUP_MS && now < HD_RUDP_GIVEUP_MS + 100);
    /* retransmitted with backoff: several, but not a flood */
    HT_CHECK(c.data >= 5 && c.data <= 20);
    hd_rudp_free(r);
}

static void fin_eof_after_data(void)
{
    struct link ab = { 0 }, ba = { 0 };
    struct hd_rudp *a, *b;
    uint64_t now = 10, na = 0, nb = 0;
    uint8_t msg[5000], got[6000];
    size_t n = 0;

    ab.now = ba.now = &now;
    ab.delay = ba.delay = 3;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7);
    HT_EQ_INT(hd_rudp_new(CONV, now, &out_cb, &ab, &a), 0);
    HT_EQ_INT(hd_rudp_new(CONV, now, &out_cb, &ba, &b), 0);
    HT_EQ_INT(hd_rudp_send(a, msg, sizeof(msg), now), 0);
    hd_rudp_close(a, now);
    for (; now < 2000; now++) {
        deliver(&ab, b, now);
        deliver(&ba, a, now);
        if (now >= na)
            na = hd_rudp_update(a, now);
        if (now >= nb)
            nb = hd_rudp_update(b, now);
        /* read slowly: EOF only once everything was read */
        if (hd_rudp_readable(b) > 0) {
            HT_EQ_INT(hd_rudp_error(b), 0);
            n += hd_rudp_recv(b, got + n, 100);
        }
    }
    HT_EQ_INT(n, sizeof(msg));
    HT_EQ_MEM(got, msg, sizeof(msg));
    HT_EQ_INT(hd_rudp_error(b), UV_EOF);
    HT_EQ_INT(hd_rudp_error(a), 0);
    HT_EQ_INT(hd_rudp_backlog(a), 0);
    hd_rudp_free(a);
    hd_rudp_free(b);
    link_free(&ab);
    link_free(&ba);
}

/* A reader that does not read stops the sender at the window. */
static void window_stops_sender_until_read(void)
{
    struct link ab = { 0 }, ba = { 0 };
    struct hd_rudp *a, *b;
    uint64_t now = 10, na = 0, nb = 0, s = 5, s2 = 5;
    size_t total = 6u << 20, n, got = 0;
    uint8_t *data = malloc(total), *buf = malloc(65536), *want = malloc(65536);

    ab.now = ba.now = &now;
    ab.delay = ba.delay = 2;
    fill(&s, data, total);
    HT_EQ_INT(hd_rudp_new(CONV, now, &out_cb, &ab, &a), 0);
    HT_EQ_INT(hd_rudp_new(CONV, now, &out_cb, &ba, &b), 0);
    HT_EQ_INT(hd_rudp_send(a, data, total, now), 0);
    for (; now < 3000; now++) {
        deliver(&ab, b, now);
        deliver(&ba, a, now);
        if (now >= na)
            na = hd_rudp_update(a, now);
        if (now >= nb)
            nb = hd_rudp_update(b, now);
    }
    HT_CHECK(hd_rudp_readable(b) <= (size_t)HD_RUDP_RCV_WND * HD_RUDP_MSS);
    HT_CHECK(hd_rudp_readable(b) >=
             (size_t)(HD_RUDP_RCV_WND - 1) * HD_RUDP_MSS);
    HT_EQ_INT(hd_rudp_backlog(a), total - hd_rudp_readable(b));
    for (; now < 20000 && got < total; now++) {
        deliver(&ab, b, now);
        deliver(&ba, a, now);
        while ((n = hd_rudp_recv(b, buf, 65536)) > 0) {
            fill(&s2, want, n);
            HT_EQ_MEM(buf, want, n);
            got += n;
        }
        if (now >= na)
            na = hd_rudp_update(a, now);
        if (now >= nb)
            nb = hd_rudp_update(b, now);
    }
    HT_EQ_INT(got, total);
    HT_EQ_INT(hd_rudp_error(a), 0);
    HT_EQ_INT(hd_rudp_error(b), 0);
    hd_rudp_free(a);
    hd_rudp_free(b);
    link_free(&ab);
    link_free(&ba);
    free(data);
    free(buf);
    free(want);
}

int main(void)
{
    ht_init("rudp");
    if (sodium_init() < 0)
        return 1;
    HT_RUN(peek_conv_rejects_probes_and_garbage);
    HT_RUN(forged_and_foreign_ignored);
    HT_RUN(queue_cap_enobufs);
    HT_RUN(dead_peer_times_out_keepalive_sent);
    HT_RUN(unacked_segment_gives_up);
    HT_RUN(fin_eof_after_data);
    HT_RUN(window_stops_sender_until_read);
    HT_RUN(clean_link_no_retransmissions);
    HT_RUN(reordered_duplicated);
    HT_RUN(loss_10_percent);
    HT_RUN(loss_30_percent);
    return ht_finish();
}

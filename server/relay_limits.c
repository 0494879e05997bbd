/*
 * Relay bandwidth limits: token buckets (one per pair, one for the whole
 * relay), the downgrade of a pair that averages above its share, the
 * blacklist's limit speed, and the pair tick that applies them.  A read is
 * taken whole, so a bucket may go negative; reading stops until it refills.
 */
#include "server/relay_int.h"

void relay_bucket_set(struct relay_bucket *b, double mbps, size_t min_burst,
                      uint64_t now)
{
    b->rate = mbps > 0 ? mbps * BYTES_PER_MBPS_MS : 0;
    b->burst = b->rate * BURST_MS;
    if (b->burst < (double)min_burst)
        b->burst = (double)min_burst;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last = now;
}

static void bucket_take(struct relay_bucket *b, size_t n, uint64_t now)
{
    if (b->rate == 0)
        return;
    if (now > b->last) {
        b->tokens += (double)(now - b->last) * b->rate;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last = now;
    }
    b->tokens -= (double)n;
}

/* Milliseconds until the bucket is out of debt (0 = may read now). */
static uint64_t bucket_wait(const struct relay_bucket *b, uint64_t now)
{
    double t;

    if (b->rate == 0)
        return 0;
    t = b->tokens + (double)(now > b->last ? now - b->last : 0) * b->rate;
    if (t >= 0)
        return 0;
    return (uint64_t)(-t / b->rate) + 1;
}

void relay_pair_apply_limits(struct relay_pair *p, int force)
{
    struct relay *r = p->relay;
    int limited = p->downgraded || relay_iplist_has(&r->black, p->a->ip) ||
                  relay_iplist_has(&r->black, p->b->ip);

    if (!force && limited == (int)p->limited)
        return;
    p->limited = limited;
    relay_bucket_set(&p->bucket,
                     limited ? r->cfg.limit_mbps : r->cfg.single_mbps,
                     r->cfg.buf_size, uv_now(r->loop));
}

void relay_pair_tick(uv_timer_t *t)
{
    struct relay_pair *p = t->data;
    struct relay *r = p->relay;
    uint64_t now = uv_now(r->loop), elapsed = now - p->started;

    if (now - p->last_active >= r->cfg.idle_ms) {
        relay_pair_close(p, "idle");
        return;
    }
    if (relay_iplist_has(&r->block, p->a->ip) ||
        relay_iplist_has(&r->block, p->b->ip)) {
        relay_pair_close(p, "blocked");
        return;
    }
    /* The reference's rule: after downgrade_start_ms, a pair whose average
     * since pairing is above threshold * single speed is capped for good. */
    if (!p->downgraded && r->cfg.single_mbps > 0 &&
        elapsed > r->cfg.downgrade_start_ms &&
        (double)p->bytes * 8.0 >
            (double)elapsed * (r->cfg.single_mbps * 1024 * 1024 *
                               r->cfg.downgrade_threshold / 1000.0)) {
        p->downgraded = 1;
        r->st.pairs_downgraded++;
        hd_info(MOD, "pair %s <-> %s downgraded to %g Mb/s after %llu ms",
                p->a->name, p->b->name, r->cfg.limit_mbps,
                (unsigned long long)elapsed);
    }
    relay_pair_apply_limits(p, 0);
}

static void throttle_cb(uv_timer_t *t)
{
    struct relay_conn *c = t->data;
    struct relay *r = c->relay;
    uint64_t now = uv_now(r->loop), w1, w2;

    w1 = bucket_wait(&c->pair->bucket, now);
    w2 = bucket_wait(&r->total, now);
    if (w1 || w2) {
        uv_timer_start(&c->timer, throttle_cb, w1 > w2 ? w1 : w2, 0);
        return;
    }
    c->throttled = 0;
    relay_conn_update_reading(c);
}

/* n new bytes from c are ready to go: count them and take tokens. */
void relay_account(struct relay_conn *c, size_t n)
{
    struct relay_pair *p = c->pair;
    struct relay *r = c->relay;
    uint64_t now = uv_now(r->loop), w1, w2;

    p->bytes += n;
    p->last_active = now;
    r->st.bytes_relayed += n;
    bucket_take(&p->bucket, n, now);
    bucket_take(&r->total, n, now);
    w1 = bucket_wait(&p->bucket, now);
    w2 = bucket_wait(&r->total, now);
    if (w1 || w2) {
        c->throttled = 1;
        uv_timer_start(&c->timer, throttle_cb, w1 > w2 ? w1 : w2, 0);
    }
}

/*
 * Token buckets by key, for the server's abuse budgets: punch requests per
 * source address and per target ID, IDs asked about per source in
 * OnlineRequests (DESIGN.md section 8).  Each key (an IP prefix, an ID;
 * up to LIMIT_KEY_MAX bytes) has a bucket of `burst` tokens refilled at
 * `per_sec` tokens a second; a request takes its cost or is refused.
 *
 * Memory: one allocation of about 60 bytes per key seen within the time a
 * bucket takes to refill (idle full buckets are dropped by limit_sweep),
 * and at most `max_keys` keys: when the table is full, new keys are
 * refused (fail closed: a flood of fresh sources cannot grow memory, and
 * known sources keep their budgets).  Loop thread only.
 */
#ifndef HD_SERVER_LIMIT_H
#define HD_SERVER_LIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/hmap.h"

#define LIMIT_KEY_MAX 104

struct limit {
    struct hmap map;
    double burst, per_sec;
    size_t max_keys;
};

/* An empty table; burst and per_sec > 0.  No allocation until used. */
void limit_init(struct limit *l, double burst, double per_sec, size_t max_keys);

/* Free every bucket. */
void limit_cleanup(struct limit *l);

/*
 * Take cost tokens from the bucket of key (len <= LIMIT_KEY_MAX bytes) at
 * time now (ms).  Returns 1 when allowed, 0 when the budget is spent (or
 * the table is full, or out of memory).  A cost above burst is never
 * allowed.
 */
int limit_take(struct limit *l, const void *key, size_t len, double cost,
               uint64_t now);

/* The key of a source address for budgets: the IPv4 address, or the /64
 * of an IPv6 one (one home or one host gets one budget).  Fills key[17]
 * and returns its length. */
size_t limit_addr_key(const struct sockaddr *sa, uint8_t key[17]);

/* Drop buckets that have refilled completely.  Returns how many. */
size_t limit_sweep(struct limit *l, uint64_t now);

/*
 * Counts by key (open connections per source address): an entry lives
 * while its count is above zero.  One allocation of about 30 bytes per
 * key counted.
 */
struct limit_count {
    struct hmap map;
    unsigned max; /* most per key */
};

void limit_count_init(struct limit_count *lc, unsigned max);
void limit_count_cleanup(struct limit_count *lc);

/* Count one more for key (len <= 17 bytes).  Returns 1, or 0 (nothing
 * counted) when the key is at max already or out of memory. */
int limit_count_add(struct limit_count *lc, const void *key, size_t len);

/* Count one less (after a successful limit_count_add). */
void limit_count_del(struct limit_count *lc, const void *key, size_t len);

#endif

/*
 * Token buckets by key (see limit.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "server/limit.h"

struct bucket {
    double tokens;
    uint64_t at_ms; /* time of the last refill */
    uint8_t len;
    uint8_t key[LIMIT_KEY_MAX];
};

static const void *bucket_key(const void *item, size_t *len)
{
    const struct bucket *b = item;

    *len = b->len;
    return b->key;
}

void limit_init(struct limit *l, double burst, double per_sec, size_t max_keys)
{
    memset(l, 0, sizeof(*l));
    hmap_init(&l->map, bucket_key);
    l->burst = burst;
    l->per_sec = per_sec;
    l->max_keys = max_keys;
}

void limit_cleanup(struct limit *l)
{
    size_t i = 0;
    void *it;

    while ((it = hmap_next(&l->map, &i)) != NULL)
        free(it);
    hmap_cleanup(&l->map);
}

static void refill(const struct limit *l, struct bucket *b, uint64_t now)
{
    if (now > b->at_ms) {
        b->tokens += (double)(now - b->at_ms) * l->per_sec / 1000.0;
        if (b->tokens > l->burst)
            b->tokens = l->burst;
    }
    b->at_ms = now;
}

int limit_take(struct limit *l, const void *key, size_t len, double cost,
               uint64_t now)
{
    struct bucket *b;

    if (len > LIMIT_KEY_MAX || cost > l->burst)
        return 0;
    if ((b = hmap_get(&l->map, key, len)) == NULL) {
        if (l->map.count >= l->max_keys || (b = calloc(1, sizeof(*b))) == NULL)
            return 0;
        b->len = (uint8_t)len;
        memcpy(b->key, key, len);
        b->tokens = l->burst;
        b->at_ms = now;
        if (hmap_put(&l->map, b) != 0) {
            free(b);
            return 0;
        }
    }
    refill(l, b, now);
    if (b->tokens < cost)
        return 0;
    b->tokens -= cost;
    return 1;
}

size_t limit_addr_key(const struct sockaddr *sa, uint8_t key[17])
{
    memset(key, 0, 17);
    if (sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 5;
    }
    if (sa->sa_family == AF_INET6) {
        key[0] = 6;
        memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 8);
        return 9;
    }
    return 1;
}

size_t limit_sweep(struct limit *l, uint64_t now)
{
    size_t i = 0, n = 0;
    struct bucket *b;

    while ((b = hmap_next(&l->map, &i)) != NULL) {
        refill(l, b, now);
        if (b->tokens >= l->burst) {
            hmap_del(&l->map, b->key, b->len);
            free(b);
            n++;
            i--; /* hmap_del shifted a later item into this slot */
        }
    }
    return n;
}

struct counted {
    unsigned n;
    uint8_t len;
    uint8_t key[17];
};

static const void *counted_key(const void *item, size_t *len)
{
    const struct counted *c = item;

    *len = c->len;
    return c->key;
}

void limit_count_init(struct limit_count *lc, unsigned max)
{
    memset(lc, 0, sizeof(*lc));
    hmap_init(&lc->map, counted_key);
    lc->max = max;
}

void limit_count_cleanup(struct limit_count *lc)
{
    size_t i = 0;
    void *it;

    while ((it = hmap_next(&lc->map, &i)) != NULL)
        free(it);
    hmap_cleanup(&lc->map);
}

int limit_count_add(struct limit_count *lc, const void *key, size_t len)
{
    struct counted *c;

    if (len > sizeof(c->key))
        return 0;
    if ((c = hmap_get(&lc->map, key, len)) == NULL) {
        if ((c = calloc(1, sizeof(*c))) == NULL)
            return 0;
        c->len = (uint8_t)len;
        memcpy(c->key, key, len);
        if (hmap_put(&lc->map, c) != 0) {
            free(c);
            return 0;
        }
    }
    if (c->n >= lc->max) {
        if (c->n == 0)
            free(hmap_del(&lc->map, key, len));
        return 0;
    }
    c->n++;
    return 1;
}

void limit_count_del(struct limit_count *lc, const void *key, size_t len)
{
    struct counted *c = hmap_get(&lc->map, key, len);

    if (c != NULL && c->n > 0 && --c->n == 0)
        free(hmap_del(&lc->map, key, len));
}

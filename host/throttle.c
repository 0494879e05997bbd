/*
 * Per-IP login throttle.  See throttle.h.  A linear scan of 256 slots
 * per login attempt is cheaper than any index at this size.
 */
#include <netinet/in.h>
#include <string.h>

#include "host/throttle.h"

void throttle_init(struct throttle *t)
{
    memset(t, 0, sizeof(*t));
}

static void ip_key(const struct sockaddr *sa, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        /* a mapped IPv4 address stays whole; real IPv6 counts by /64 */
        if (!IN6_IS_ADDR_V4MAPPED(
                &((const struct sockaddr_in6 *)sa)->sin6_addr))
            memset(key + 8, 0, 8);
    }
}

static struct throttle_slot *find(struct throttle *t, const struct sockaddr *sa,
                                  uint64_t now, int create)
{
    struct throttle_slot *s, *stalest = NULL;
    uint8_t key[16];

    ip_key(sa, key);
    for (int i = 0; i < THROTTLE_SLOTS; i++) {
        s = &t->slot[i];
        if (s->used && now - s->last_ms > THROTTLE_FORGET_MS &&
            now >= s->until_ms)
            s->used = 0;
        if (s->used && memcmp(s->ip, key, 16) == 0)
            return s;
        if (s->used && s->until_ms > now)
            continue; /* a live lockout is never given up */
        if (stalest == NULL || !s->used ||
            (stalest->used && s->last_ms < stalest->last_ms))
            stalest = s;
    }
    if (!create || stalest == NULL)
        return NULL;
    memset(stalest, 0, sizeof(*stalest));
    memcpy(stalest->ip, key, 16);
    stalest->used = 1;
    return stalest;
}

uint64_t throttle_wait(struct throttle *t, const struct sockaddr *sa,
                       uint64_t now_ms)
{
    struct throttle_slot *s = find(t, sa, now_ms, 0);

    return s != NULL && s->until_ms > now_ms ? s->until_ms - now_ms : 0;
}

uint64_t throttle_global_wait(const struct throttle *t, uint64_t now_ms)
{
    uint64_t allowed =
        now_ms + (uint64_t)(THROTTLE_GLOBAL_BURST - 1) * THROTTLE_GLOBAL_MS;

    return t->global_tat > allowed ? t->global_tat - allowed : 0;
}

unsigned throttle_fail(struct throttle *t, const struct sockaddr *sa,
                       uint64_t now_ms)
{
    struct throttle_slot *s = find(t, sa, now_ms, 1);

    t->global_tat =
        (t->global_tat > now_ms ? t->global_tat : now_ms) + THROTTLE_GLOBAL_MS;
    if (s == NULL)
        return 1;
    s->fails++;
    s->last_ms = now_ms;
    if (s->fails >= THROTTLE_FREE) {
        unsigned shift = s->fails - THROTTLE_FREE;
        uint64_t d =
            shift > 16 ? THROTTLE_MAX_MS : (uint64_t)THROTTLE_BASE_MS << shift;

        s->until_ms = now_ms + (d > THROTTLE_MAX_MS ? THROTTLE_MAX_MS : d);
    }
    return s->fails;
}

void throttle_ok(struct throttle *t, const struct sockaddr *sa, uint64_t now_ms)
{
    struct throttle_slot *s = find(t, sa, now_ms, 0);

    if (s != NULL)
        s->used = 0;
}

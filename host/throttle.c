/*
 * Per-IP login throttle.  See throttle.h.  A linear scan of 256 slots
 * per login attempt is cheaper than any index at this size.
 */
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

/* The /48 record of a real IPv6 source (key with the low 80 bits 0 and
 * a marker in the last byte, which no /64 key has); 0 when sa has none. */
static int key48(const struct sockaddr *sa, uint8_t key[16])
{
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

    if (sa->sa_family != AF_INET6 || IN6_IS_ADDR_V4MAPPED(a))
        return 0;
    memset(key, 0, 16);
    memcpy(key, a, 6);
    key[15] = 0x48;
    return 1;
}

static struct throttle_slot *find_key(struct throttle *t, const uint8_t key[16],
                                      uint64_t now, int create)
{
    struct throttle_slot *s, *stalest = NULL;

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

static struct throttle_slot *find(struct throttle *t, const struct sockaddr *sa,
                                  uint64_t now, int create)
{
    uint8_t key[16];

    ip_key(sa, key);
    return find_key(t, key, now, create);
}

/* Count one failure in s; lock it out past free_fails. */
static unsigned count_fail(struct throttle_slot *s, unsigned free_fails,
                           uint64_t now_ms)
{
    s->fails++;
    s->last_ms = now_ms;
    if (s->fails >= free_fails) {
        unsigned shift = s->fails - free_fails;
        uint64_t d =
            shift > 16 ? THROTTLE_MAX_MS : (uint64_t)THROTTLE_BASE_MS << shift;

        s->until_ms = now_ms + (d > THROTTLE_MAX_MS ? THROTTLE_MAX_MS : d);
    }
    return s->fails;
}

uint64_t throttle_wait(struct throttle *t, const struct sockaddr *sa,
                       uint64_t now_ms)
{
    struct throttle_slot *s = find(t, sa, now_ms, 0), *s48 = NULL;
    uint64_t w = s != NULL && s->until_ms > now_ms ? s->until_ms - now_ms : 0;
    uint8_t key[16];

    if (key48(sa, key))
        s48 = find_key(t, key, now_ms, 0);
    if (s48 != NULL && s48->until_ms > now_ms && s48->until_ms - now_ms > w)
        w = s48->until_ms - now_ms;
    return w;
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
    struct throttle_slot *s = find(t, sa, now_ms, 1), *s48;
    uint8_t key[16];

    t->global_tat =
        (t->global_tat > now_ms ? t->global_tat : now_ms) + THROTTLE_GLOBAL_MS;
    /* an IPv6 source also counts toward its /48, which has a larger
     * allowance: one site spreading its guesses over many /64s */
    if (key48(sa, key) && (s48 = find_key(t, key, now_ms, 1)) != NULL)
        count_fail(s48, THROTTLE_FREE_48, now_ms);
    if (s == NULL)
        return 1;
    return count_fail(s, THROTTLE_FREE, now_ms);
}

void throttle_ok(struct throttle *t, const struct sockaddr *sa, uint64_t now_ms)
{
    struct throttle_slot *s = find(t, sa, now_ms, 0);

    if (s != NULL)
        s->used = 0;
}

/*
 * Login throttling per source IP address.  After THROTTLE_FREE failures
 * an address is locked out for a delay that doubles with every further
 * failure (THROTTLE_BASE_MS, 2x, 4x, ... up to THROTTLE_MAX_MS); while
 * locked, logins from it are refused without checking the password (so
 * guessing gets no answer), and a success resets its count.  Failures are
 * forgotten THROTTLE_FORGET_MS after the last one.  The table is bounded
 * (THROTTLE_SLOTS addresses; the stalest entry is reused), so a flood of
 * addresses cannot grow memory, at worst it evicts the oldest records.
 *
 * Loop thread only; times are the caller's monotonic milliseconds.
 */
#ifndef HD_HOST_THROTTLE_H
#define HD_HOST_THROTTLE_H

#include <stdint.h>
#include <sys/socket.h>

#define THROTTLE_SLOTS     256
#define THROTTLE_FREE      3
#define THROTTLE_BASE_MS   2000
#define THROTTLE_MAX_MS    (5 * 60 * 1000)
#define THROTTLE_FORGET_MS (60 * 60 * 1000)

struct throttle_slot {
    uint8_t ip[16]; /* IPv4 as ::ffff:a.b.c.d */
    unsigned fails;
    uint64_t last_ms, until_ms;
    int used;
};

struct throttle {
    struct throttle_slot slot[THROTTLE_SLOTS];
};

void throttle_init(struct throttle *t);

/* Milliseconds sa must still wait before its next attempt (0: go ahead). */
uint64_t throttle_wait(struct throttle *t, const struct sockaddr *sa,
                       uint64_t now_ms);

/* Record a failure; returns the failures counted for sa so far. */
unsigned throttle_fail(struct throttle *t, const struct sockaddr *sa,
                       uint64_t now_ms);

/* A successful login from sa: forget its failures. */
void throttle_ok(struct throttle *t, const struct sockaddr *sa,
                 uint64_t now_ms);

#endif

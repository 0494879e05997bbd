/*
 * Login throttling.  Per source: after THROTTLE_FREE failures a source is
 * locked out for a delay that doubles with every further failure
 * (THROTTLE_BASE_MS, 2x, 4x, ... up to THROTTLE_MAX_MS); while locked,
 * logins from it are refused without checking the password (so guessing
 * gets no answer), and a success resets its count.  Failures are
 * forgotten THROTTLE_FORGET_MS after the last one.  A source is an IPv4
 * address or an IPv6 /64 (one subscriber's prefix, which it can fill with
 * addresses at will); an IPv6 failure also counts toward its /48 (a
 * site, which can use many /64s), locked out alike after
 * THROTTLE_FREE_48 failures.  The table is bounded (THROTTLE_SLOTS sources; the
 * stalest record that is not locked out is reused), so a flood of
 * addresses cannot grow memory nor free a locked source by eviction.
 *
 * Over all sources: a budget of THROTTLE_GLOBAL_BURST failures, one more
 * every THROTTLE_GLOBAL_MS (a token bucket).  Spent, every login waits
 * (throttle_global_wait) whatever its source, so many addresses together
 * guess no faster than THROTTLE_GLOBAL_BURST plus 30 a minute; the price
 * is that during such an attack an honest viewer waits too.
 *
 * Relayed logins all arrive from the relay's address: the session keys
 * them by the viewer's address the server reported instead (session.c),
 * so one attacker behind the relay does not lock out every relayed user.
 *
 * Loop thread only; times are the caller's monotonic milliseconds.
 */
#ifndef HD_HOST_THROTTLE_H
#define HD_HOST_THROTTLE_H

#include <stdint.h>

#include "os.h"

#define THROTTLE_SLOTS        256
#define THROTTLE_FREE         3
#define THROTTLE_FREE_48      12 /* four /64s' worth */
#define THROTTLE_BASE_MS      2000
#define THROTTLE_MAX_MS       (5 * 60 * 1000)
#define THROTTLE_FORGET_MS    (60 * 60 * 1000)
#define THROTTLE_GLOBAL_BURST 30
#define THROTTLE_GLOBAL_MS    2000

struct throttle_slot {
    uint8_t ip[16]; /* IPv4 as ::ffff:a.b.c.d; IPv6 with the low 64 bits 0 */
    unsigned fails;
    uint64_t last_ms, until_ms;
    int used;
};

struct throttle {
    struct throttle_slot slot[THROTTLE_SLOTS];
    uint64_t global_tat; /* token bucket: when the budget is whole again */
};

void throttle_init(struct throttle *t);

/* Milliseconds sa must still wait before its next attempt (0: go ahead). */
uint64_t throttle_wait(struct throttle *t, const struct sockaddr *sa,
                       uint64_t now_ms);

/* Milliseconds every source must wait: the global budget is spent. */
uint64_t throttle_global_wait(const struct throttle *t, uint64_t now_ms);

/*
 * Record a failure (for sa and in the global budget); returns the
 * failures counted for sa so far (1 when every record is a live lockout
 * and sa got none).
 */
unsigned throttle_fail(struct throttle *t, const struct sockaddr *sa,
                       uint64_t now_ms);

/* A successful login from sa: forget its failures. */
void throttle_ok(struct throttle *t, const struct sockaddr *sa,
                 uint64_t now_ms);

#endif

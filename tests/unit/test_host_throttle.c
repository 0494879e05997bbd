/*
 * Unit tests for host/throttle: per-source lockout, IPv6 counted by /64,
 * live lockouts never evicted by a flood of other sources, and the global
 * budget that bounds guessing from many addresses together.  (test_host
 * runs the same attacks against the real host.)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "host/throttle.h"
#include "tests/harness.h"

static struct throttle t;

static const struct sockaddr *addr(const char *ip)
{
    static struct sockaddr_storage ss;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    return (const struct sockaddr *)&ss;
}

static void lockout_per_source(void)
{
    throttle_init(&t);
    for (int i = 0; i < THROTTLE_FREE - 1; i++)
        throttle_fail(&t, addr("192.0.2.1"), 1000);
    HT_EQ_INT(throttle_wait(&t, addr("192.0.2.1"), 1000), 0);
    throttle_fail(&t, addr("192.0.2.1"), 1000);
    HT_EQ_INT(throttle_wait(&t, addr("192.0.2.1"), 1000), THROTTLE_BASE_MS);
    HT_EQ_INT(throttle_wait(&t, addr("192.0.2.2"), 1000), 0);
    /* the lockout runs out; a success forgets */
    HT_EQ_INT(throttle_wait(&t, addr("192.0.2.1"), 1000 + THROTTLE_BASE_MS), 0);
    throttle_ok(&t, addr("192.0.2.1"), 4000);
    HT_EQ_INT(throttle_fail(&t, addr("192.0.2.1"), 4000), 1);
}

/* one subscriber's /64 is one source; a mapped IPv4 address stays whole */
static void ipv6_by_64(void)
{
    char ip[64];

    throttle_init(&t);
    for (int i = 1; i <= THROTTLE_FREE; i++) {
        snprintf(ip, sizeof(ip), "2001:db8:1:2::%x", i * 4099);
        throttle_fail(&t, addr(ip), 1000);
    }
    HT_CHECK(throttle_wait(&t, addr("2001:db8:1:2:ffff::1"), 1000) > 0);
    HT_EQ_INT(throttle_wait(&t, addr("2001:db8:1:3::1"), 1000), 0);
    for (int i = 1; i <= THROTTLE_FREE; i++) {
        snprintf(ip, sizeof(ip), "::ffff:198.51.100.%d", i);
        throttle_fail(&t, addr(ip), 1000);
    }
    HT_EQ_INT(throttle_wait(&t, addr("::ffff:198.51.100.1"), 1000), 0);
}

/* a /48 spreading its guesses over many /64s is locked out as a whole
 * once it has failed THROTTLE_FREE_48 times; its neighbours are not */
static void ipv6_escalates_to_48(void)
{
    char ip[64];

    throttle_init(&t);
    for (int i = 1; i < THROTTLE_FREE_48; i++) {
        snprintf(ip, sizeof(ip), "2001:db8:7:%x::1", i); /* a /64 each */
        throttle_fail(&t, addr(ip), 1000);
        HT_EQ_INT(throttle_wait(&t, addr("2001:db8:7:ffff::9"), 1000), 0);
    }
    throttle_fail(&t, addr("2001:db8:7:abcd::1"), 1000);
    HT_CHECK(throttle_wait(&t, addr("2001:db8:7:ffff::9"), 1000) > 0);
    HT_EQ_INT(throttle_wait(&t, addr("2001:db8:8::1"), 1000), 0);
    HT_EQ_INT(throttle_wait(&t, addr("192.0.2.7"), 1000), 0);
}

/* 300 other sources, one failure each, do not free a locked one */
static void lockouts_never_evicted(void)
{
    char ip[32];

    throttle_init(&t);
    for (int i = 0; i < THROTTLE_FREE + 4; i++)
        throttle_fail(&t, addr("203.0.113.9"), 1000);
    HT_CHECK(throttle_wait(&t, addr("203.0.113.9"), 1000) > 0);
    for (int i = 0; i < 300; i++) {
        snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250 + 1);
        throttle_fail(&t, addr(ip), 2000 + (uint64_t)i);
    }
    HT_CHECK(throttle_wait(&t, addr("203.0.113.9"), 3000) > 0);
}

/* many addresses together: the global budget */
static void global_budget(void)
{
    char ip[32];
    uint64_t now = 5000, w;

    throttle_init(&t);
    for (int i = 0; i < THROTTLE_GLOBAL_BURST - 1; i++) {
        snprintf(ip, sizeof(ip), "10.2.0.%d", i + 1);
        throttle_fail(&t, addr(ip), now);
    }
    HT_EQ_INT(throttle_global_wait(&t, now), 0);
    throttle_fail(&t, addr("10.2.1.1"), now);
    w = throttle_global_wait(&t, now);
    HT_EQ_INT(w, THROTTLE_GLOBAL_MS);
    /* then one more failure allowed per THROTTLE_GLOBAL_MS */
    HT_EQ_INT(throttle_global_wait(&t, now + w), 0);
    throttle_fail(&t, addr("10.2.1.2"), now + w);
    HT_CHECK(throttle_global_wait(&t, now + w) > 0);
    /* a quiet spell gives the whole budget back */
    now += w + (uint64_t)THROTTLE_GLOBAL_BURST * THROTTLE_GLOBAL_MS;
    HT_EQ_INT(throttle_global_wait(&t, now), 0);
}

int main(void)
{
    ht_init("host_throttle");
    HT_RUN(lockout_per_source);
    HT_RUN(ipv6_by_64);
    HT_RUN(ipv6_escalates_to_48);
    HT_RUN(lockouts_never_evicted);
    HT_RUN(global_budget);
    return ht_finish();
}

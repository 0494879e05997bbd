/*
 * Unit tests for host/upnp (the NAT-PMP side of port mapping) against a
 * fake NAT-PMP gateway (RFC 6886) on port 5351 of a loopback address of
 * this run's own (127.X.Y.Z, picked at random: the port is fixed, and a
 * gateway on 127.0.0.1 met another run of this test on the same machine,
 * each taking the other's requests) in a thread: the
 * request on the wire (opcode, ports, lifetime), a public port other than
 * the one asked for, the granted lease, removal (lifetime 0), an error
 * answer, no gateway at all, and on a libuv loop the whole cycle: mapping
 * on a worker, h->upnp_port, renewal at half the lease, removal at
 * upnp_stop.  UPnP-IGD is not exercised here (no SSDP multicast from
 * unit tests); tests/nat/test_upnp.sh runs it against miniupnpd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "host/host.h"
#include "host/upnp.h"
#include "tests/harness.h"

#define GW_PUBLIC "198.51.100.7"
#define MAX_REQS  32

struct req {
    uint8_t op;
    uint16_t in_port, want;
    uint32_t life;
};

static struct {
    pthread_t th;
    int fd;
    atomic_int stop;
    pthread_mutex_t mu;
    struct req reqs[MAX_REQS];
    int n;
    uint16_t ext;      /* the public port we grant */
    uint32_t max_life; /* the lifetime we grant at most */
    uint16_t error;    /* result code for map requests (0 ok) */
} gw = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* The fake gateway's address: see the top. */
static char gw_ip[INET_ADDRSTRLEN];

static void gw_pick(void)
{
    srand((unsigned)time(NULL) ^ (unsigned)getpid() << 8);
    snprintf(gw_ip, sizeof(gw_ip), "127.%u.%u.%u", 1 + (unsigned)rand() % 254,
             (unsigned)rand() % 256, 1 + (unsigned)rand() % 254);
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void *gw_main(void *arg)
{
    uint8_t q[64], a[16];
    struct sockaddr_in from;

    while (!atomic_load(&gw.stop)) {
        struct pollfd p = { gw.fd, POLLIN, 0 };
        socklen_t flen = sizeof(from);
        ssize_t n;
        size_t alen = 8;

        if (poll(&p, 1, 50) <= 0)
            continue;
        n = recvfrom(gw.fd, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);
        if (n < 2)
            continue;
        memset(a, 0, sizeof(a));
        a[1] = (uint8_t)(q[1] + 128);
        put16(a + 4, 0);
        put16(a + 6, 42); /* seconds since epoch */
        pthread_mutex_lock(&gw.mu);
        if (q[1] == 0) {
            inet_pton(AF_INET, GW_PUBLIC, a + 8);
            alen = 12;
        } else if (q[1] == 2 && n >= 12) {
            struct req r = { q[1], (uint16_t)(q[4] << 8 | q[5]),
                             (uint16_t)(q[6] << 8 | q[7]),
                             (uint32_t)q[8] << 24 | (uint32_t)q[9] << 16 |
                                 (uint32_t)q[10] << 8 | q[11] };
            uint32_t life = r.life < gw.max_life ? r.life : gw.max_life;

            if (gw.n < MAX_REQS)
                gw.reqs[gw.n++] = r;
            put16(a + 2, gw.error);
            memcpy(a + 8, q + 4, 2);
            if (!gw.error && r.life) {
                put16(a + 10, gw.ext);
                put16(a + 12, life >> 16);
                put16(a + 14, life & 0xffff);
            }
            alen = 16;
        }
        pthread_mutex_unlock(&gw.mu);
        sendto(gw.fd, a, alen, 0, (struct sockaddr *)&from, flen);
    }
    return NULL;
}

static int gw_start(uint16_t ext, uint32_t max_life, uint16_t error)
{
    struct sockaddr_in me;

    memset(&me, 0, sizeof(me));
    me.sin_family = AF_INET;
    me.sin_port = htons(5351);
    inet_pton(AF_INET, gw_ip, &me.sin_addr);
    if ((gw.fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
        return -errno;
    /* no SO_REUSEADDR: a second gateway here must fail, not share */
    if (bind(gw.fd, (struct sockaddr *)&me, sizeof(me)) != 0) {
        int r = -errno;

        close(gw.fd);
        return r;
    }
    gw.n = 0;
    gw.ext = ext;
    gw.max_life = max_life;
    gw.error = error;
    atomic_store(&gw.stop, 0);
    return pthread_create(&gw.th, NULL, gw_main, NULL) == 0 ? 0 : -EAGAIN;
}

static void gw_stop(void)
{
    atomic_store(&gw.stop, 1);
    pthread_join(gw.th, NULL);
    close(gw.fd);
}

static int gw_count(void)
{
    int n;

    pthread_mutex_lock(&gw.mu);
    n = gw.n;
    pthread_mutex_unlock(&gw.mu);
    return n;
}

static const struct upnp_cfg cfg = { .natpmp_gateway = gw_ip,
                                     .natpmp_ms = 800,
                                     .no_igd = 1 };

static void test_map_and_unmap(void)
{
    struct upnp_lease l;
    char why[256];

    if (gw_start(40001, 7200, 0) != 0) {
        ht_fail(__FILE__, __LINE__, "cannot bind %s:5351", gw_ip);
        return;
    }
    HT_EQ_INT(upnp_map(&cfg, 21120, 0, NULL, &l, why, sizeof(why)), 0);
    HT_EQ_INT(l.method, UPNP_NATPMP);
    HT_EQ_INT(l.internal_port, 21120);
    HT_EQ_INT(l.external_port, 40001); /* the router's choice wins */
    HT_EQ_INT(l.lifetime_s, UPNP_LEASE_S);
    HT_EQ_STR(l.external_ip, GW_PUBLIC);
    HT_EQ_INT(gw_count(), 1);
    HT_EQ_INT(gw.reqs[0].op, 2); /* TCP */
    HT_EQ_INT(gw.reqs[0].in_port, 21120);
    HT_EQ_INT(gw.reqs[0].want, 21120); /* the same port suggested */
    HT_EQ_INT(gw.reqs[0].life, UPNP_LEASE_S);
    HT_EQ_INT(upnp_unmap(&cfg, &l), 0);
    HT_EQ_INT(gw_count(), 2);
    HT_EQ_INT(gw.reqs[1].in_port, 21120);
    HT_EQ_INT(gw.reqs[1].want, 0);
    HT_EQ_INT(gw.reqs[1].life, 0);
    gw_stop();
}

static void test_refused(void)
{
    struct upnp_lease l;
    char why[256];

    if (gw_start(0, 7200, 2 /* not authorized */) != 0) {
        ht_fail(__FILE__, __LINE__, "cannot bind %s:5351", gw_ip);
        return;
    }
    HT_EQ_INT(upnp_map(&cfg, 21120, 0, NULL, &l, why, sizeof(why)), -EPERM);
    HT_EQ_INT(l.method, UPNP_NONE);
    HT_CHECK(strstr(why, "NAT-PMP: refused") != NULL);
    gw_stop();
}

static void test_no_gateway(void)
{
    struct timespec t0, t1;
    struct upnp_lease l;
    char why[256];
    long ms;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = upnp_map(&cfg, 21120, 0, NULL, &l, why, sizeof(why));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    HT_CHECK(r < 0);
    HT_EQ_INT(l.method, UPNP_NONE);
    HT_CHECK(strncmp(why, "NAT-PMP: ", 9) == 0);
    HT_CHECK(ms <= cfg.natpmp_ms + 300); /* bounded, whatever happens */
}

/* ---- on a loop: map, renew, remove ---- */

static struct host h;
static uv_timer_t poll_t;
static int phase;

static void on_poll(uv_timer_t *t)
{
    if (phase == 0 && h.upnp_port == 40002)
        phase = 1;
    if (phase == 1 && gw_count() >= 2) { /* renewed after ~1 s */
        phase = 2;
        upnp_stop(&h);
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
    }
}

static void on_guard(uv_timer_t *t)
{
    ht_fail(__FILE__, __LINE__, "timed out in phase %d", phase);
    upnp_stop(&h);
    if (!uv_is_closing((uv_handle_t *)&poll_t))
        uv_close((uv_handle_t *)&poll_t, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_lease_cycle(void)
{
    static const struct upnp_cfg c = { .natpmp_gateway = gw_ip,
                                       .natpmp_ms = 800,
                                       .no_igd = 1 };
    uv_loop_t loop;
    uv_timer_t guard;

    if (gw_start(40002, 2 /* s: renew after 1 s */, 0) != 0) {
        ht_fail(__FILE__, __LINE__, "cannot bind %s:5351", gw_ip);
        return;
    }
    memset(&h, 0, sizeof(h));
    uv_loop_init(&loop);
    h.loop = &loop;
    h.listen_port = 21120;
    phase = 0;
    HT_EQ_INT(upnp_start(&h, &c), 0);
    uv_timer_init(&loop, &poll_t);
    uv_timer_start(&poll_t, on_poll, 20, 20);
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, on_guard, 8000, 0);
    uv_unref((uv_handle_t *)&guard);
    uv_run(&loop, UV_RUN_DEFAULT); /* ends once the removal has run */
    if (!uv_is_closing((uv_handle_t *)&guard))
        uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    HT_EQ_INT(phase, 2);
    HT_EQ_INT(h.upnp_port, 0);
    HT_CHECK(h.upnp == NULL);
    HT_EQ_INT(gw_count(), 3);
    HT_EQ_INT(gw.reqs[1].want, 40002); /* renewal keeps the public port */
    HT_EQ_INT(gw.reqs[1].life, UPNP_LEASE_S);
    HT_EQ_INT(gw.reqs[2].life, 0); /* removed */
    HT_EQ_INT(uv_loop_close(&loop), 0);
    gw_stop();
}

int main(void)
{
    ht_init("host_upnp");
    gw_pick();
    printf("# the fake gateway: %s:5351\n", gw_ip);
    HT_RUN(test_map_and_unmap);
    HT_RUN(test_refused);
    HT_RUN(test_no_gateway);
    HT_RUN(test_lease_cycle);
    return ht_finish();
}

/*
 * Unit tests for common/nat/map (the NAT-PMP side of port mapping) against a
 * fake NAT-PMP gateway (RFC 6886) on 127.0.0.1 in a thread, on a port of
 * its own (hd_nat_map_cfg.natpmp_port; not 5351, where another run of
 * this test on the same machine would hear our requests): the
 * request on the wire (opcode, ports, lifetime), a public port other than
 * the one asked for, the granted lease, removal (lifetime 0), an error
 * answer, no gateway at all, and on a libuv loop the whole cycle: mapping
 * on a worker, the public port told, renewal at half the lease, removal
 * at hd_nat_map_stop.  UPnP-IGD is not exercised here (no SSDP multicast from
 * unit tests); tests/nat/test_upnp.sh runs it against miniupnpd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nat/map.h"
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
    uint16_t port;     /* where it listens */
} gw = { .mu = PTHREAD_MUTEX_INITIALIZER };

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

/* (natpmp_port: the fake gateway's, set by gw_start) */
static struct hd_nat_map_cfg cfg = { .natpmp_gateway = "127.0.0.1",
                                     .natpmp_ms = 800,
                                     .no_igd = 1 };

static int gw_start(uint16_t ext, uint32_t max_life, uint16_t error)
{
    struct sockaddr_in me;
    socklen_t len = sizeof(me);

    memset(&me, 0, sizeof(me));
    me.sin_family = AF_INET;
    me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((gw.fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
        return -errno;
    if (bind(gw.fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
        getsockname(gw.fd, (struct sockaddr *)&me, &len) != 0) {
        int r = -errno;

        close(gw.fd);
        return r;
    }
    gw.port = ntohs(me.sin_port);
    cfg.natpmp_port = gw.port;
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

static void test_map_and_unmap(void)
{
    struct hd_nat_lease l;
    char why[256];

    if (gw_start(40001, 7200, 0) != 0) {
        ht_fail(__FILE__, __LINE__, "cannot bind a UDP port on 127.0.0.1");
        return;
    }
    HT_EQ_INT(hd_nat_map(&cfg, 21120, 0, NULL, &l, why, sizeof(why)), 0);
    HT_EQ_INT(l.method, HD_NAT_MAP_NATPMP);
    HT_EQ_INT(l.internal_port, 21120);
    HT_EQ_INT(l.external_port, 40001); /* the router's choice wins */
    HT_EQ_INT(l.lifetime_s, HD_NAT_MAP_LEASE_S);
    HT_EQ_STR(l.external_ip, GW_PUBLIC);
    HT_EQ_INT(gw_count(), 1);
    HT_EQ_INT(gw.reqs[0].op, 2); /* TCP */
    HT_EQ_INT(gw.reqs[0].in_port, 21120);
    HT_EQ_INT(gw.reqs[0].want, 21120); /* the same port suggested */
    HT_EQ_INT(gw.reqs[0].life, HD_NAT_MAP_LEASE_S);
    HT_EQ_INT(hd_nat_unmap(&cfg, &l), 0);
    HT_EQ_INT(gw_count(), 2);
    HT_EQ_INT(gw.reqs[1].in_port, 21120);
    HT_EQ_INT(gw.reqs[1].want, 0);
    HT_EQ_INT(gw.reqs[1].life, 0);
    gw_stop();
}

static void test_refused(void)
{
    struct hd_nat_lease l;
    char why[256];

    if (gw_start(0, 7200, 2 /* not authorized */) != 0) {
        ht_fail(__FILE__, __LINE__, "cannot bind a UDP port on 127.0.0.1");
        return;
    }
    HT_EQ_INT(hd_nat_map(&cfg, 21120, 0, NULL, &l, why, sizeof(why)), -EPERM);
    HT_EQ_INT(l.method, HD_NAT_MAP_NONE);
    HT_CHECK(strstr(why, "NAT-PMP: refused") != NULL);
    gw_stop();
}

static void test_no_gateway(void)
{
    struct timespec t0, t1;
    struct hd_nat_lease l;
    char why[256];
    long ms;
    int r;

    /* a port nobody listens on: the gateway's own, closed again */
    if (gw_start(0, 0, 0) != 0) {
        ht_fail(__FILE__, __LINE__, "cannot bind a UDP port on 127.0.0.1");
        return;
    }
    gw_stop();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = hd_nat_map(&cfg, 21120, 0, NULL, &l, why, sizeof(why));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    HT_CHECK(r < 0);
    HT_EQ_INT(l.method, HD_NAT_MAP_NONE);
    HT_CHECK(strncmp(why, "NAT-PMP: ", 9) == 0);
    HT_CHECK(ms <= cfg.natpmp_ms + 300); /* bounded, whatever happens */
}

/* ---- on a loop: map, renew, remove ---- */

static struct hd_nat_mapper *mapper;
static uint16_t told; /* the public port the mapper told */
static int n_told, phase;
static uv_timer_t poll_t;

static void on_mapped(struct hd_nat_mapper *m, uint16_t port, void *ud)
{
    HT_CHECK(m == mapper);
    HT_CHECK(ud == &told);
    told = port;
    n_told++;
}

static void stop_mapper(void)
{
    hd_nat_map_stop(mapper);
    mapper = NULL;
}

static void on_poll(uv_timer_t *t)
{
    if (phase == 0 && told == 40002)
        phase = 1;
    if (phase == 1 && gw_count() >= 2) { /* renewed after ~1 s */
        phase = 2;
        stop_mapper();
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
    }
}

static void on_guard(uv_timer_t *t)
{
    ht_fail(__FILE__, __LINE__, "timed out in phase %d", phase);
    stop_mapper();
    if (!uv_is_closing((uv_handle_t *)&poll_t))
        uv_close((uv_handle_t *)&poll_t, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_lease_cycle(void)
{
    uv_loop_t loop;
    uv_timer_t guard;

    if (gw_start(40002, 2 /* s: renew after 1 s */, 0) != 0) {
        ht_fail(__FILE__, __LINE__, "cannot bind a UDP port on 127.0.0.1");
        return;
    }
    uv_loop_init(&loop);
    phase = 0;
    HT_EQ_INT(
        hd_nat_map_start(&loop, 21120, "", &cfg, on_mapped, &told, &mapper), 0);
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
    HT_EQ_INT(n_told, 1); /* the port once; a renewal that keeps it, and
                           * the removal after the stop, tell nothing */
    HT_EQ_INT(told, 40002);
    HT_EQ_INT(gw_count(), 3);
    HT_EQ_INT(gw.reqs[1].want, 40002); /* renewal keeps the public port */
    HT_EQ_INT(gw.reqs[1].life, HD_NAT_MAP_LEASE_S);
    HT_EQ_INT(gw.reqs[2].life, 0); /* removed */
    HT_EQ_INT(uv_loop_close(&loop), 0);
    gw_stop();
}

int main(void)
{
    ht_init("nat_map");
    HT_RUN(test_map_and_unmap);
    HT_RUN(test_refused);
    HT_RUN(test_no_gateway);
    HT_RUN(test_lease_cycle);
    return ht_finish();
}

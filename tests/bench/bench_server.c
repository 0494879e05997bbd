/*
 * Server benchmarks (make bench): each figure is printed next to a
 * baseline measured in the same run on the same machine.
 *
 *   rendezvous: heartbeats per server CPU-second with 100k registered
 *     peers, against a bare recvfrom/sendto UDP echo process (the
 *     kernel's cost per datagram pair, i.e. the ceiling); resident memory
 *     per registered peer.
 *   relay: bytes relayed per relay CPU-second, against a splice() copy
 *     process moving the same bytes between two sockets; resident memory
 *     per idle relayed pair.
 *
 * Usage: bench_server [all|rdv|relay] [PEERS]\n *\n * CPU time is read from
 * /proc/PID/stat (utime + stime) of the measured process only, so the load
 * generator's own cost does not count.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "rendezvous.pb-c.h"
#include "tests/integration/support.h"

#define GROUP 25
#define RELAY_RUNS                                                         \
    7 /* alternating relay / splice() transfers */ /* peers per source IP: \
                                                      under the RegisterPk \
                                                      rate limits */

/*
 * CPU time of every thread of pid, in seconds, from the scheduler's own
 * nanosecond accounting (/proc/PID/task/TID/schedstat); utime and stime
 * are sampled at the clock tick, too coarse for short bursts.
 */
static double cpu_seconds(pid_t pid)
{
    char path[64];
    unsigned long long total = 0;
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char p2[320];
        unsigned long long ns;
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(p2, sizeof(p2), "/proc/%d/task/%s/schedstat", (int)pid,
                 e->d_name);
        if ((f = fopen(p2, "r")) == NULL)
            continue;
        if (fscanf(f, "%llu", &ns) == 1)
            total += ns;
        fclose(f);
    }
    closedir(d);
    return (double)total / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void group_ip(int g, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.1.%d.%d", g / 256, g % 256);
}

static uint64_t metric(const struct srv *s, const char *name)
{
    static char body[1 << 16];
    char *p;

    if (http_get("127.0.0.1", s->http_port, "/metrics", body, sizeof(body)) !=
        200)
        return 0;
    for (p = body; (p = strstr(p, name)) != NULL; p++) {
        if ((p == body || p[-1] == '\n') && p[strlen(name)] == ' ')
            return strtoull(p + strlen(name) + 1, NULL, 10);
    }
    return 0;
}

/* Fill the store with n peers in one transaction (as a migrated hbbs
 * directory would be), with the IPs they will register from. */
static int populate(const char *dir, int n)
{
    char cmd[2048];

    snprintf(cmd, sizeof(cmd),
             "sqlite3 %s/db_v2.sqlite3 \"BEGIN; WITH RECURSIVE c(i) AS "
             "(SELECT 0 UNION ALL SELECT i+1 FROM c WHERE i < %d) "
             "INSERT INTO peer(guid, id, uuid, pk, info) SELECT "
             "randomblob(16), printf('%%09d', 100000000 + i), "
             "CAST('u' || i AS BLOB), zeroblob(32), "
             "'{\\\"ip\\\":\\\"127.1.' || (i / %d / 256) || '.' || "
             "((i / %d) %% 256) || '\\\"}' FROM c; COMMIT;\"",
             dir, n - 1, GROUP, GROUP);
    return system(cmd) == 0 ? 0 : -1;
}

static size_t pack_register_pk(int i, uint8_t *buf)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPk rk = HBB__REGISTER_PK__INIT;
    static uint8_t zero[32];
    char id[16], uuid[16];

    snprintf(id, sizeof(id), "%09d", 100000000 + i);
    snprintf(uuid, sizeof(uuid), "u%d", i);
    rk.id = id;
    rk.uuid.data = (uint8_t *)uuid;
    rk.uuid.len = strlen(uuid);
    rk.pk.data = zero;
    rk.pk.len = 32;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK;
    m.register_pk = &rk;
    return hbb__rendezvous_message__pack(&m, buf);
}

static size_t pack_heartbeat(int i, uint8_t *buf)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPeer rp = HBB__REGISTER_PEER__INIT;
    char id[16];

    snprintf(id, sizeof(id), "%09d", 100000000 + i);
    rp.id = id;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER;
    m.register_peer = &rp;
    return hbb__rendezvous_message__pack(&m, buf);
}

static void drain(int fd)
{
    uint8_t buf[512];

    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

/* Send `rounds` heartbeats for every peer to port; returns datagrams sent. */
static uint64_t heartbeat_load(const int *fds, int groups, int rounds,
                               uint16_t port)
{
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
    uint8_t pkt[GROUP][64];
    size_t len[GROUP];
    uint64_t sent = 0;

    to.sin_addr.s_addr = htonl(0x7f000001);
    for (int r = 0; r < rounds; r++) {
        for (int g = 0; g < groups; g++) {
            for (int k = 0; k < GROUP; k++) {
                len[k] = pack_heartbeat(g * GROUP + k, pkt[k]);
                if (sendto(fds[g], pkt[k], len[k], 0, (struct sockaddr *)&to,
                           sizeof(to)) > 0)
                    sent++;
            }
            drain(fds[g]);
            /* pace a little so the server's socket buffer keeps up */
            if ((g & 15) == 15)
                usleep(200);
        }
    }
    return sent;
}

/* The baseline: a process answering each datagram with a small one. */
static pid_t udp_echo(uint16_t *port)
{
    int fd = udp_open("127.0.0.1");
    pid_t pid;

    *port = sock_port(fd);
    if ((pid = fork()) != 0) {
        close(fd);
        return pid;
    }
    for (;;) {
        uint8_t buf[2048];
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t n =
            recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
        static const uint8_t reply[4] = { 0x3a, 0x02, 0x10, 0x00 };
        if (n > 0)
            sendto(fd, reply, sizeof(reply), 0, (struct sockaddr *)&from, flen);
    }
}

static int bench_rendezvous(int peers, int rounds)
{
    struct srv s;
    int groups = peers / GROUP, *fds, registered = 0;
    long rss0, rss1;
    double cpu0, cpu1, echo_cpu;
    uint64_t hb0, hb1, sent;
    uint16_t echo_port;
    pid_t echo;

    if (srv_start(&s, NULL, NULL) != 0)
        return -1;
    srv_stop(&s);
    if (populate(s.dir, peers) != 0 || srv_start(&s, s.dir, NULL) != 0) {
        fprintf(stderr, "bench: could not prepare the server\n");
        srv_cleanup(&s);
        return -1;
    }
    fds = calloc((size_t)groups, sizeof(*fds));
    usleep(200000);
    rss0 = rss_kib(s.pid);
    for (int g = 0; g < groups; g++) {
        char ip[32];
        uint8_t buf[128];
        size_t n;
        struct sockaddr_in to = { .sin_family = AF_INET,
                                  .sin_port = htons(s.port) };

        to.sin_addr.s_addr = htonl(0x7f000001);
        group_ip(g, ip, sizeof(ip));
        fds[g] = udp_open(ip);
        for (int k = 0; k < GROUP; k++) {
            n = pack_register_pk(g * GROUP + k, buf);
            sendto(fds[g], buf, n, 0, (struct sockaddr *)&to, sizeof(to));
        }
        for (int k = 0; k < GROUP; k++) {
            struct pollfd p = { .fd = fds[g], .events = POLLIN };
            uint8_t in[128];
            ssize_t r;
            if (poll(&p, 1, 2000) <= 0)
                break;
            r = recv(fds[g], in, sizeof(in), 0);
            /* RegisterPkResponse{result OK} packs to 2 bytes: 82 01 00 */
            if (r > 0)
                registered++;
        }
    }
    usleep(300000);
    rss1 = rss_kib(s.pid);
    printf("rendezvous: %d peers registered from %d addresses; resident "
           "memory %+ld KiB = %.0f bytes per peer (target <= 256)\n",
           registered, groups, rss1 - rss0,
           (double)(rss1 - rss0) * 1024.0 / (double)peers);

    hb0 = metric(&s, "homedesk_heartbeats_total");
    cpu0 = cpu_seconds(s.pid);
    sent = heartbeat_load(fds, groups, rounds, s.port);
    usleep(300000);
    cpu1 = cpu_seconds(s.pid);
    hb1 = metric(&s, "homedesk_heartbeats_total");
    printf("rendezvous: %llu heartbeats sent, %llu handled in %.2f CPU-s = "
           "%.0f heartbeats per CPU-second (target >= 100000)\n",
           (unsigned long long)sent, (unsigned long long)(hb1 - hb0),
           cpu1 - cpu0, (double)(hb1 - hb0) / (cpu1 - cpu0));

    /* baseline: the same datagrams to a bare echo process */
    echo = udp_echo(&echo_port);
    usleep(100000);
    cpu0 = cpu_seconds(echo);
    sent = heartbeat_load(fds, groups, rounds, echo_port);
    usleep(300000);
    echo_cpu = cpu_seconds(echo) - cpu0;
    kill(echo, SIGKILL);
    waitpid(echo, NULL, 0);
    printf("rendezvous: baseline udp echo: %.0f datagrams per CPU-second; "
           "homedesk-server at %.2fx of it\n",
           (double)sent / echo_cpu,
           ((double)(hb1 - hb0) / (cpu1 - cpu0)) / ((double)sent / echo_cpu));
    for (int g = 0; g < groups; g++)
        close(fds[g]);
    free(fds);
    srv_cleanup(&s);
    return 0;
}

/* ---- relay ----------------------------------------------------------------
 */

static int relay_hello(int fd, const char *uuid, const char *key)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RequestRelay rr = HBB__REQUEST_RELAY__INIT;

    rr.uuid = (char *)uuid;
    rr.licence_key = (char *)key;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = &rr;
    return send_msg(fd, &m);
}

/* Push `bytes` from a to b (b reads everything).  Returns 0 or -1. */
static int pump(int a, int b, uint64_t bytes)
{
    static uint8_t out[256 * 1024], in[256 * 1024];
    uint64_t sent = 0, got = 0;

    fcntl(a, F_SETFL, O_NONBLOCK);
    fcntl(b, F_SETFL, O_NONBLOCK);
    while (got < bytes) {
        struct pollfd p[2] = { { .fd = a, .events = POLLOUT },
                               { .fd = b, .events = POLLIN } };
        if (sent >= bytes)
            p[0].events = 0;
        if (poll(p, 2, 5000) <= 0)
            return -1;
        if (p[0].revents & POLLOUT) {
            size_t n = bytes - sent < sizeof(out) ? bytes - sent : sizeof(out);
            ssize_t w = send(a, out, n, MSG_NOSIGNAL);
            if (w > 0)
                sent += (uint64_t)w;
        }
        if (p[1].revents & POLLIN) {
            ssize_t r = recv(b, in, sizeof(in), 0);
            if (r <= 0)
                return -1;
            got += (uint64_t)r;
        }
    }
    return 0;
}

/* The baseline: a process that splices one socket into the other, with
 * blocking calls (no event loop), through a 1 MiB pipe. */
static pid_t splice_copier(uint16_t *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int lis = socket(AF_INET, SOCK_STREAM, 0), p[2];
    pid_t pid;

    sa.sin_addr.s_addr = htonl(0x7f000001);
    bind(lis, (struct sockaddr *)&sa, sizeof(sa));
    listen(lis, 4);
    getsockname(lis, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    if ((pid = fork()) != 0) {
        close(lis);
        return pid;
    }
    {
        int a = accept(lis, NULL, NULL), b = accept(lis, NULL, NULL);
        if (pipe(p) != 0)
            _exit(1);
        /* the same pipe size as the relay's, for a like-for-like copy */
        fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
        for (;;) {
            ssize_t n = splice(a, NULL, p[1], NULL, 1 << 20, SPLICE_F_MOVE);
            if (n <= 0)
                _exit(0);
            while (n > 0) {
                ssize_t w =
                    splice(p[0], NULL, b, NULL, (size_t)n, SPLICE_F_MOVE);
                if (w <= 0)
                    _exit(1);
                n -= w;
            }
        }
    }
}

static int bench_relay(uint64_t bytes, int idle_pairs)
{
    struct srv s;
    int a, b, *fds;
    double best, base, relay_cpu[RELAY_RUNS], base_cpu[RELAY_RUNS];
    double lo = 1e9, hi = 0;
    long rss0, rss1;
    uint16_t port;
    pid_t cp;

    /* no bandwidth limits: this measures the copy path, not the limiter */
    if (srv_start(&s, NULL,
                  (const char *const[]){ "--single-bandwidth", "0",
                                         "--total-bandwidth", "0", NULL }) != 0)
        return -1;
    /* alternating runs, medians: a single run of either varies by +-40 %
     * with how the bytes happen to batch per wakeup */
    for (int run = 0; run < RELAY_RUNS; run++) {
        char uuid[32];
        double cpu0, cpu1;

        snprintf(uuid, sizeof(uuid), "bench-pair-%d", run);
        a = tcp_connect("127.0.0.1", s.relay_port);
        b = tcp_connect("127.0.0.1", s.relay_port);
        relay_hello(a, uuid, s.pk_b64);
        relay_hello(b, uuid, s.pk_b64);
        usleep(100000);
        cpu0 = cpu_seconds(s.pid);
        if (pump(a, b, bytes) != 0)
            fprintf(stderr, "bench: relay transfer stalled\n");
        cpu1 = cpu_seconds(s.pid);
        close(a);
        close(b);
        relay_cpu[run] = cpu1 - cpu0;

        cp = splice_copier(&port);
        a = tcp_connect("127.0.0.1", port);
        b = tcp_connect("127.0.0.1", port);
        usleep(50000);
        cpu0 = cpu_seconds(cp);
        if (pump(a, b, bytes) != 0)
            fprintf(stderr, "bench: splice transfer stalled\n");
        cpu1 = cpu_seconds(cp);
        close(a);
        close(b);
        kill(cp, SIGKILL);
        waitpid(cp, NULL, 0);
        base_cpu[run] = cpu1 - cpu0;
    }
    for (int i = 0; i < RELAY_RUNS; i++) { /* per run, before sorting */
        double q = relay_cpu[i] > 0 ? base_cpu[i] / relay_cpu[i] : 0;
        lo = q < lo ? q : lo;
        hi = q > hi ? q : hi;
    }
    best = median(relay_cpu, RELAY_RUNS);
    base = median(base_cpu, RELAY_RUNS);
    if (best <= 0 || base <= 0) {
        fprintf(stderr, "bench: no CPU time measured\n");
        return -1;
    }
    printf("relay: %.0f MB in %.2f relay CPU-s = %.0f MB per CPU-second; "
           "splice() baseline %.0f MB per CPU-second; ratio %.2f (target >= "
           "0.8; medians of %d alternating runs, ratios %.2f-%.2f)\n",
           (double)bytes / 1e6, best, (double)bytes / 1e6 / best,
           (double)bytes / 1e6 / base, base / best, RELAY_RUNS, lo, hi);

    /* memory per idle relayed pair */
    fds = calloc((size_t)idle_pairs * 2, sizeof(*fds));
    rss0 = rss_kib(s.pid);
    for (int i = 0; i < idle_pairs; i++) {
        char uuid[32];
        snprintf(uuid, sizeof(uuid), "idle-%d", i);
        fds[2 * i] = tcp_connect("127.0.0.1", s.relay_port);
        fds[2 * i + 1] = tcp_connect("127.0.0.1", s.relay_port);
        relay_hello(fds[2 * i], uuid, s.pk_b64);
        relay_hello(fds[2 * i + 1], uuid, s.pk_b64);
        /* one message each way, so both directions' buffers are used */
        send_all(fds[2 * i], "x", 1);
        send_all(fds[2 * i + 1], "y", 1);
    }
    usleep(500000);
    rss1 = rss_kib(s.pid);
    printf("relay: %d idle pairs: resident memory %+ld KiB = %.1f KiB per "
           "pair (target <= 64)\n",
           idle_pairs, rss1 - rss0, (double)(rss1 - rss0) / (double)idle_pairs);
    for (int i = 0; i < 2 * idle_pairs; i++)
        close(fds[i]);
    free(fds);
    srv_cleanup(&s);
    return 0;
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    const char *which = argc > 1 ? argv[1] : "all";
    int peers = argc > 2 ? atoi(argv[2]) : 100000;

    if (sodium_init() < 0)
        return 1;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(which, "relay") != 0 && bench_rendezvous(peers, 10) != 0)
        return 1;
    if (strcmp(which, "rdv") != 0 &&
        bench_relay(4000ULL * 1000 * 1000, 1000) != 0)
        return 1;
    return 0;
}

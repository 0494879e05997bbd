/*
 * Server benchmarks (make bench): each figure is printed next to a
 * baseline measured in the same run on the same machine.
 *
 *   rendezvous: heartbeats per server CPU-second with 100k registered
 *     peers, against a bare recvfrom/sendto UDP echo process (the
 *     kernel's cost per datagram pair, i.e. the ceiling); resident memory
 *     per registered peer.
 *   relay: bytes relayed per relay CPU-second, against a blocking
 *     splice() copier (socket -> pipe -> socket, a pipe of the relay's
 *     size, no event loop) moving the same bytes; resident memory per idle
 *     relayed pair.
 *
 * Usage: bench_server [all|rdv|relay] [PEERS]
 *
 * CPU time is the scheduler's nanosecond accounting of every thread of the
 * measured process only (/proc/PID/task/TID/schedstat), so the load
 * generator's own cost does not count.
 *
 * Relay method.  Most of a relay's cost is the kernel's (splice, TCP and
 * loopback work per skb, wakeups), and on loopback the receive side of a
 * segment is charged to whichever process sent it, or held the socket
 * lock.  So the figure per byte depends on how many bytes each wakeup
 * finds, which depends on the scheduling of sender, copier and receiver,
 * and on what else the machine runs.  Measured one after the other, the
 * relay and the baseline saw different conditions: single runs differed by
 * up to 3x (ratios 0.4-1.5).  Hence:
 * - each run moves the same bytes through a relay pair and a baseline
 *   pair at the same time, so both see the same background load;
 * - the relay, the copier and the load generator (a sender and a
 *   receiver process per pair, fixed 64 KiB blocking send()s and
 *   recv()s) share one CPU, so neither side's batching depends on how
 *   fast the other CPU happens to be; HD_BENCH_PIN=split gives that CPU
 *   to relay and copier alone (the load on the others: smaller batches,
 *   more wakeups per byte, noisier), HD_BENCH_PIN=none pins nothing;
 * - one unmeasured warm-up run, then RELAY_RUNS runs; printed: each run
 *   (CPU-s, KiB per wakeup, i.e. bytes per time the process was given a
 *   CPU, and the ksoftirqd CPU-s of the run, network work charged to
 *   neither), the medians' ratio with the per-run range, and the ratio of
 *   all runs' CPU-s.
 * On the 2-core machine with load average 5 from other work, five runs
 * each: default, medians 0.92-0.97, single runs 0.89-1.00; split, medians
 * 0.84-1.13, single runs 0.66-1.36 (before: medians 0.61-0.80, single runs
 * 0.42-1.51).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
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

#define GROUP       25 /* peers per source IP: under the RegisterPk rate limits */
#define RELAY_RUNS  7           /* alternating relay / splice() transfers */
#define RELAY_CHUNK (64 * 1024) /* every send() and recv() of the load */
#define RELAY_PIPE  (1 << 20)   /* the relay's default pipe_size */

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
    rss0 = proc_rss_kib(s.pid);
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
    rss1 = proc_rss_kib(s.pid);
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

/* CPU placement of the relay runs (see the top comment). */
struct relay_pin {
    int on;             /* 0: HD_BENCH_PIN=none, nothing pinned */
    cpu_set_t measured; /* the relay or the splice() copier */
    cpu_set_t load;     /* the sender and the receiver */
};

/* Pin every thread of pid (0 = this process) to set; 0 or -1. */
static int pin_all(pid_t pid, const cpu_set_t *set)
{
    char path[64];
    struct dirent *e;
    DIR *d;
    int ret = 0;

    if (pid == 0)
        pid = getpid();
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' &&
            sched_setaffinity((pid_t)atoi(e->d_name), sizeof(*set), set) != 0)
            ret = -1;
    closedir(d);
    return ret;
}

/*
 * Default placement: everything on one CPU (the last one allowed), so
 * every wakeup finds a full pipe's worth for relay and copier alike;
 * HD_BENCH_PIN=split leaves that CPU to the relay and the copier and puts
 * the load generator on the others (smaller batches: more wakeups per
 * byte, the harsher test of the event loop's cost per wakeup, and a
 * noisier one); HD_BENCH_PIN=none pins nothing.
 */
static void relay_pin_init(struct relay_pin *pin)
{
    const char *mode = getenv("HD_BENCH_PIN");
    cpu_set_t all;
    int last = -1, n = 0;

    memset(pin, 0, sizeof(*pin));
    if ((mode && strcmp(mode, "none") == 0) ||
        sched_getaffinity(0, sizeof(all), &all) != 0)
        return;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &all)) {
            last = i;
            n++;
        }
    CPU_ZERO(&pin->measured);
    CPU_SET(last, &pin->measured);
    pin->load = all;
    if (n > 1 && mode && strcmp(mode, "split") == 0)
        CPU_CLR(last, &pin->load);
    else
        pin->load = pin->measured;
    pin->on = 1;
}

/* Scheduler figures of a process, summed over its threads: CPU time from
 * its own nanosecond accounting (utime and stime are sampled at the clock
 * tick, too coarse), and how many times it was given a CPU (wakeups). */
struct sched_sample {
    double cpu;
    unsigned long long runs;
};

static int sched_sample(pid_t pid, struct sched_sample *out)
{
    char path[64];
    struct dirent *e;
    DIR *d;

    memset(out, 0, sizeof(*out));
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char p2[320];
        unsigned long long ns, wait, runs;
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(p2, sizeof(p2), "/proc/%d/task/%s/schedstat", (int)pid,
                 e->d_name);
        if ((f = fopen(p2, "r")) == NULL)
            continue;
        if (fscanf(f, "%llu %llu %llu", &ns, &wait, &runs) == 3) {
            out->cpu += (double)ns / 1e9;
            out->runs += runs;
        }
        fclose(f);
    }
    closedir(d);
    return 0;
}

/* CPU seconds of the ksoftirqd threads: network work deferred there is
 * charged to no measured process (see the top comment). */
static double ksoftirqd_cpu(void)
{
    double total = 0;
    struct dirent *e;
    DIR *d;

    if ((d = opendir("/proc")) == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], comm[64] = "";
        struct sched_sample s;
        FILE *f;

        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(comm, sizeof(comm), f) &&
            strncmp(comm, "ksoftirqd/", 10) == 0 &&
            sched_sample((pid_t)atoi(e->d_name), &s) == 0)
            total += s.cpu;
        fclose(f);
    }
    closedir(d);
    return total;
}

/*
 * Push `bytes` from a to b: a child process writes fixed RELAY_CHUNK
 * blocking send()s to a while this one reads b with fixed RELAY_CHUNK
 * blocking recv()s (both on the load CPUs, inherited).  Returns 0 or -1.
 */
static int pump(int a, int b, uint64_t bytes)
{
    static uint8_t in[RELAY_CHUNK];
    uint64_t got = 0;
    int status;
    pid_t tx;

    if ((tx = fork()) < 0)
        return -1;
    if (tx == 0) {
        static uint8_t out[RELAY_CHUNK];
        uint64_t sent = 0;

        close(b);
        while (sent < bytes) {
            size_t n = bytes - sent < sizeof(out) ? bytes - sent : sizeof(out);
            if (send_all(a, out, n) != 0)
                _exit(1);
            sent += n;
        }
        _exit(0);
    }
    while (got < bytes) {
        struct pollfd p = { .fd = b, .events = POLLIN };
        ssize_t r;

        /* a stall (a bug in the relay) must not hang the bench */
        if (poll(&p, 1, 5000) <= 0)
            break;
        if ((r = recv(b, in, sizeof(in), 0)) <= 0)
            break;
        got += (uint64_t)r;
    }
    if (got < bytes)
        kill(tx, SIGKILL);
    waitpid(tx, &status, 0);
    return got == bytes && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0
                                                                         : -1;
}

/* The baseline: a process that splices one socket into the other, with
 * blocking calls (no event loop), through a pipe of the relay's size. */
static pid_t splice_copier(uint16_t *port, const struct relay_pin *pin)
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
    if (pin->on)
        pin_all(0, &pin->measured);
    {
        int a = accept(lis, NULL, NULL), b = accept(lis, NULL, NULL);
        if (pipe(p) != 0)
            _exit(1);
        /* the same pipe size as the relay's, for a like-for-like copy */
        fcntl(p[1], F_SETPIPE_SZ, RELAY_PIPE);
        for (;;) {
            ssize_t n = splice(a, NULL, p[1], NULL, RELAY_PIPE, SPLICE_F_MOVE);
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

/* One transfer's figures for the measured process. */
struct relay_run {
    double cpu;
    unsigned long long runs;
};

/* Connect a pair through port (a relay pair when uuid is set). */
static int relay_connect(uint16_t port, const char *uuid, const char *key,
                         int fd[2])
{
    fd[0] = tcp_connect("127.0.0.1", port);
    fd[1] = tcp_connect("127.0.0.1", port);
    if (fd[0] < 0 || fd[1] < 0)
        return -1;
    if (uuid && (relay_hello(fd[0], uuid, key) != 0 ||
                 relay_hello(fd[1], uuid, key) != 0))
        return -1;
    return 0;
}

/*
 * Pump `bytes` through the relay pair rfd and the baseline pair bfd at the
 * same time (each from its own process), and measure relay and copier.
 * Returns 0 or -1.
 */
static int relay_transfer(pid_t relay, const int rfd[2], pid_t copier,
                          const int bfd[2], uint64_t bytes,
                          struct relay_run *rr, struct relay_run *br,
                          double *softirq)
{
    struct sched_sample r0, r1, b0, b1;
    pid_t kid[2];
    int ret = 0;
    double k0;

    usleep(100000); /* paired (or accepted), idle */
    sched_sample(relay, &r0);
    sched_sample(copier, &b0);
    k0 = ksoftirqd_cpu();
    for (int i = 0; i < 2; i++) {
        const int *fd = i ? bfd : rfd;
        if ((kid[i] = fork()) == 0)
            _exit(pump(fd[0], fd[1], bytes) == 0 ? 0 : 1);
    }
    for (int i = 0; i < 2; i++) {
        int status;
        if (kid[i] < 0 || waitpid(kid[i], &status, 0) != kid[i] ||
            !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            ret = -1;
    }
    sched_sample(relay, &r1);
    sched_sample(copier, &b1);
    *softirq = ksoftirqd_cpu() - k0;
    rr->cpu = r1.cpu - r0.cpu;
    rr->runs = r1.runs - r0.runs;
    br->cpu = b1.cpu - b0.cpu;
    br->runs = b1.runs - b0.runs;
    return ret;
}

static int bench_relay(uint64_t bytes, int idle_pairs)
{
    struct srv s;
    struct relay_pin pin;
    struct relay_run rr = { 0 }, br = { 0 };
    int *fds, ret = -1;
    double rcpu[RELAY_RUNS], bcpu[RELAY_RUNS], rsum = 0, bsum = 0, ksum = 0;
    double rmed, bmed, lo = 1e9, hi = 0, q;
    unsigned long long rruns = 0, bruns = 0;
    long rss0, rss1;
    uint16_t port;
    pid_t cp;

    relay_pin_init(&pin);
    /* no bandwidth limits: this measures the copy path, not the limiter */
    if (srv_start(&s, NULL,
                  (const char *const[]){ "--single-bandwidth", "0",
                                         "--total-bandwidth", "0", NULL }) != 0)
        return -1;
    if (pin.on &&
        (pin_all(s.pid, &pin.measured) != 0 || pin_all(0, &pin.load) != 0))
        fprintf(stderr, "bench: could not pin CPUs: %s\n", strerror(errno));
    for (int run = -1; run < RELAY_RUNS; run++) { /* run -1: warm-up */
        char uuid[32];
        int rfd[2] = { -1, -1 }, bfd[2] = { -1, -1 };
        double softirq = 0;

        snprintf(uuid, sizeof(uuid), "bench-pair-%d", run);
        cp = splice_copier(&port, &pin);
        if (relay_connect(s.relay_port, uuid, s.pk_b64, rfd) != 0 ||
            relay_connect(port, NULL, NULL, bfd) != 0 ||
            relay_transfer(s.pid, rfd, cp, bfd, bytes, &rr, &br, &softirq) != 0)
            fprintf(stderr, "bench: transfer %d failed or stalled\n", run);
        for (int i = 0; i < 2; i++) {
            if (rfd[i] >= 0)
                close(rfd[i]);
            if (bfd[i] >= 0)
                close(bfd[i]);
        }
        kill(cp, SIGKILL);
        waitpid(cp, NULL, 0);
        if (run < 0)
            continue;
        q = rr.cpu > 0 ? br.cpu / rr.cpu : 0;
        printf("relay: run %d: relay %.3f CPU-s, %.0f KiB per wakeup; "
               "splice() %.3f CPU-s, %.0f KiB per wakeup; ratio %.2f; "
               "ksoftirqd %.3f CPU-s\n",
               run + 1, rr.cpu, (double)bytes / 1024.0 / (double)(rr.runs + 1),
               br.cpu, (double)bytes / 1024.0 / (double)(br.runs + 1), q,
               softirq);
        rcpu[run] = rr.cpu;
        bcpu[run] = br.cpu;
        rsum += rr.cpu;
        bsum += br.cpu;
        rruns += rr.runs;
        bruns += br.runs;
        ksum += softirq;
        lo = q < lo ? q : lo;
        hi = q > hi ? q : hi;
    }
    rmed = median(rcpu, RELAY_RUNS);
    bmed = median(bcpu, RELAY_RUNS);
    if (rmed <= 0 || bmed <= 0 || rsum <= 0) {
        fprintf(stderr, "bench: no CPU time measured\n");
        goto out;
    }
    printf("relay: %.0f MB per run in %.3f relay CPU-s = %.0f MB per "
           "CPU-second; splice() baseline %.0f MB per CPU-second; ratio %.2f "
           "(target >= 0.8; medians of %d alternating runs, per run "
           "%.2f-%.2f; all runs' CPU %.2f)\n",
           (double)bytes / 1e6, rmed, (double)bytes / 1e6 / rmed,
           (double)bytes / 1e6 / bmed, bmed / rmed, RELAY_RUNS, lo, hi,
           bsum / rsum);
    printf("relay: wakeups per run: relay %llu, splice() %llu; ksoftirqd "
           "%.3f CPU-s per run pair; CPUs %s\n",
           rruns / RELAY_RUNS, bruns / RELAY_RUNS, ksum / RELAY_RUNS,
           !pin.on ? "not pinned"
           : CPU_EQUAL(&pin.measured, &pin.load)
               ? "all on one"
               : "relay and copier on one, load on the others");
    if (pin.on) { /* the memory figure below needs no placement */
        cpu_set_t all;
        CPU_ZERO(&all);
        for (int i = 0; i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &pin.measured) || CPU_ISSET(i, &pin.load))
                CPU_SET(i, &all);
        pin_all(0, &all);
    }

    /* memory per idle relayed pair */
    fds = calloc((size_t)idle_pairs * 2, sizeof(*fds));
    rss0 = proc_rss_kib(s.pid);
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
    rss1 = proc_rss_kib(s.pid);
    printf("relay: %d idle pairs: resident memory %+ld KiB = %.1f KiB per "
           "pair (target <= 64)\n",
           idle_pairs, rss1 - rss0, (double)(rss1 - rss0) / (double)idle_pairs);
    for (int i = 0; i < 2 * idle_pairs; i++)
        close(fds[i]);
    free(fds);
    ret = 0;
out:
    srv_cleanup(&s);
    return ret;
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

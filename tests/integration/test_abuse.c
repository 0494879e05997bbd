/*
 * Abuse of the server and the host's punching, run against the real
 * homedesk-server and homedesk-host on loopback (issue 11 finding 1,
 * issue 10 item 3):
 * - amplification: one forged UDP PunchHoleRequest "from" a victim
 *   address (a raw socket writes the source; root only, skipped
 *   otherwise); every byte that then reaches the victim's address is
 *   counted on the loopback interface (a packet socket) and must not
 *   exceed the attacker's bytes;
 * - a punch flood on the host: 1,500 PunchHoles, as if from its server
 *   (the test plays the server the host registers with), then a direct
 *   viewer must still get the host's first message at once, and the host
 *   must hold few descriptors.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr.h"
#include "crypto.h"
#include "tests/harness.h"
#include "tests/integration/support.h"

#define T      5000
#define VICTIM "127.0.0.9"

static struct srv srv;
static int srv_ok;

/* ---- the host process ---------------------------------------------------- */

struct hostp {
    pid_t pid;
    char dir[128], cfg[160], log[160], id[16];
    uint16_t port;
};

/* The text after the last occurrence of prefix in the host's log. */
static int log_value(const struct hostp *h, const char *prefix, char *out,
                     size_t cap)
{
    static char buf[1 << 20];
    FILE *f = fopen(h->log, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    char *p, *last = NULL;

    if (f)
        fclose(f);
    buf[n] = '\0';
    for (p = buf; (p = strstr(p, prefix)) != NULL; p++)
        last = p;
    if (last == NULL)
        return -1;
    last += strlen(prefix);
    n = strcspn(last, " \r\n");
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, last, n);
    out[n] = '\0';
    return 0;
}

/* homedesk-host with fake capture, registered with server (host:port). */
static int host_start(struct hostp *h, const char *server, const char *key)
{
    char prog[300], port[16];
    const char *argv[] = {
        prog,   "--config-dir", h->cfg,    "--capture", "fake", "--input",
        "fake", "--listen",     "0",       "--server",  server, "--key",
        key,    "--password",   "pw-9f3k", "--no-upnp", "-v",   NULL
    };

    memset(h, 0, sizeof(*h));
    snprintf(h->dir, sizeof(h->dir), "/tmp/hd-abuse-XXXXXX");
    if (mkdtemp(h->dir) == NULL)
        return -1;
    snprintf(h->cfg, sizeof(h->cfg), "%s/cfg", h->dir);
    snprintf(h->log, sizeof(h->log), "%s/host.log", h->dir);
    prog_path("homedesk-host", prog, sizeof(prog));
    if ((h->pid = spawn_in(NULL, argv, NULL, h->log)) < 0)
        return -1;
    if (!file_has(h->log, "listening on port ", T) ||
        log_value(h, "id: ", h->id, sizeof(h->id)) != 0 ||
        log_value(h, "listening on port ", port, sizeof(port)) != 0)
        return -1;
    h->port = (uint16_t)atoi(port);
    return 0;
}

static void host_stop(struct hostp *h, int dump)
{
    char line[512];
    FILE *f;

    if (h->pid > 0) {
        kill(h->pid, SIGTERM);
        if (wait_exit(h->pid, T) < 0) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, NULL, 0);
        }
        h->pid = 0;
    }
    if (dump && (f = fopen(h->log, "r")) != NULL) {
        while (fgets(line, sizeof(line), f))
            printf("# host: %s", line);
        fclose(f);
    }
    if (h->dir[0]) {
        snprintf(line, sizeof(line), "rm -rf '%s'", h->dir);
        if (system(line) != 0)
            printf("# cannot remove %s\n", h->dir);
    }
}

/* Open descriptors of a process. */
static int count_fds(pid_t pid)
{
    char path[64];
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 2;
}

/* ---- amplification ------------------------------------------------------- */

/* A packet socket on lo seeing every IPv4 packet once (as received). */
static int victim_counter_open(void)
{
    struct sockaddr_ll sll = { .sll_family = AF_PACKET,
                               .sll_protocol = htons(ETH_P_IP) };
    int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK, htons(ETH_P_IP));

    if (fd < 0)
        return -1;
    sll.sll_ifindex = (int)if_nametoindex("lo");
    if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Count bytes (IP length) and packets to VICTIM for ms milliseconds. */
static void victim_count(int fd, int ms, size_t *bytes, size_t *packets)
{
    uint8_t buf[65536];
    uint64_t end = now_ms() + (uint64_t)ms;
    struct in_addr victim;

    inet_pton(AF_INET, VICTIM, &victim);
    while (now_ms() < end) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        struct sockaddr_ll from;
        socklen_t flen = sizeof(from);
        ssize_t n;

        if (poll(&p, 1, 50) <= 0)
            continue;
        while ((n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from,
                             &flen)) > 0) {
            const struct iphdr *ip = (const struct iphdr *)buf;

            flen = sizeof(from);
            if (from.sll_pkttype == PACKET_OUTGOING ||
                (size_t)n < sizeof(*ip) || ip->daddr != victim.s_addr)
                continue;
            *bytes += ntohs(ip->tot_len);
            (*packets)++;
        }
    }
}

/* One UDP datagram from a forged source; its size on the wire (IP). */
static ssize_t send_forged(const char *src, uint16_t sport, const char *dst,
                           uint16_t dport, const uint8_t *payload, size_t n)
{
    uint8_t pkt[2048];
    struct iphdr *ip = (struct iphdr *)pkt;
    struct udphdr *udp = (struct udphdr *)(pkt + sizeof(*ip));
    struct sockaddr_in to = { .sin_family = AF_INET };
    size_t len = sizeof(*ip) + sizeof(*udp) + n;
    int fd;
    ssize_t r;

    if (len > sizeof(pkt) || (fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW)) < 0)
        return -1;
    memset(pkt, 0, sizeof(*ip) + sizeof(*udp));
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->tot_len = htons((uint16_t)len);
    inet_pton(AF_INET, src, &ip->saddr);
    inet_pton(AF_INET, dst, &ip->daddr);
    udp->source = htons(sport);
    udp->dest = htons(dport);
    udp->len = htons((uint16_t)(sizeof(*udp) + n));
    memcpy(pkt + sizeof(*ip) + sizeof(*udp), payload, n);
    to.sin_addr.s_addr = ip->daddr;
    r = sendto(fd, pkt, len, 0, (struct sockaddr *)&to, sizeof(to));
    close(fd);
    return r == (ssize_t)len ? r : -1;
}

/*
 * One forged PunchHoleRequest "from" the victim, for a real registered
 * host, asking for TCP and UDP punching: the victim must receive no more
 * than the attacker sent (before: ~2000x, the host's SYNs, probes and
 * port guesses).
 */
static void forged_punch_no_amplification(void)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__PunchHoleRequest ph = HBB__PUNCH_HOLE_REQUEST__INIT;
    struct hostp h;
    char server[64];
    uint8_t payload[512];
    size_t n, bytes = 0, packets = 0;
    ssize_t sent;
    int cfd;

    snprintf(server, sizeof(server), "127.0.0.1:%u", srv.port);
    HT_CHECK(host_start(&h, server, srv.pk_b64) == 0);
    HT_CHECK(file_has(h.log, "registered ID", T));
    cfd = victim_counter_open();
    HT_CHECK(cfd >= 0);
    ph.id = h.id;
    ph.licence_key = srv.pk_b64;
    ph.nat_type = HBB__NAT_TYPE__SYMMETRIC; /* asks for port guessing too */
    ph.udp_port = 40001;
    ph.version = "1.4.0";
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST;
    m.punch_hole_request = &ph;
    n = hbb__rendezvous_message__pack(&m, payload);
    sent = send_forged(VICTIM, 40000, "127.0.0.1", srv.port, payload, n);
    HT_CHECK(sent > 0);
    if (cfd >= 0)
        victim_count(cfd, 4000, &bytes, &packets);
    printf("# attacker sent %zd bytes; the victim received %zu bytes in %zu "
           "packets\n",
           sent, bytes, packets);
    HT_CHECK(sent > 0 && bytes <= (size_t)sent);
    HT_CHECK(
        srv_log_has(&srv, "punch request over UDP (unverified source)", 500));
    if (cfd >= 0)
        close(cfd);
    host_stop(&h, ht_case_failures() > 0);
}

/* ---- punch flood on the host -------------------------------------------- */

/*
 * 1,500 PunchHoles reach the host from its server (this test plays the
 * server: the host registers with a UDP socket of ours), each towards a
 * different address, TCP and UDP.  Then a direct viewer connects: the
 * host's first message (SignedId) must come at once, and the host must
 * hold a bounded number of descriptors (before: 949 descriptors, viewers
 * refused for ~15 s).
 */
static void punch_flood_host_serves(void)
{
    enum { FLOOD = 1500 };
    struct hostp h;
    char server[64];
    uint8_t buf[512], frame[4096];
    int u = udp_open("127.0.0.1"), fds, vfd;
    struct sockaddr_storage hs;
    socklen_t hl = sizeof(hs);
    struct rlimit saved, lim;
    uint64_t t0;
    ssize_t got;
    int r;

    HT_CHECK(u >= 0);
    snprintf(server, sizeof(server), "127.0.0.1:%u", sock_port(u));
    /* the usual soft limit of a desktop session (the host inherits it) */
    getrlimit(RLIMIT_NOFILE, &saved);
    lim = saved;
    if (lim.rlim_cur > 1024)
        lim.rlim_cur = 1024;
    setrlimit(RLIMIT_NOFILE, &lim);
    r = host_start(&h, server, srv.pk_b64);
    setrlimit(RLIMIT_NOFILE, &saved);
    HT_CHECK(r == 0);
    /* the host's first heartbeat tells us where it listens */
    {
        struct pollfd p = { .fd = u, .events = POLLIN };

        HT_CHECK(poll(&p, 1, T) == 1 &&
                 recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&hs, &hl) >
                     0);
    }
    for (int i = 0; i < FLOOD; i++) {
        Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
        Hbb__PunchHole ph = HBB__PUNCH_HOLE__INIT;
        struct sockaddr_storage v;
        char ip[32];
        uint8_t mangled[HD_ADDR_MANGLED_MAX];
        size_t n;

        snprintf(ip, sizeof(ip), "127.0.%d.%d", 1 + i / 250, 1 + i % 250);
        hd_addr_parse(ip, (uint16_t)(30000 + i), &v);
        ph.socket_addr.data = mangled;
        ph.socket_addr.len =
            hd_addr_mangle((struct sockaddr *)&v, hd_addr_now_us(), mangled);
        ph.nat_type = HBB__NAT_TYPE__ASYMMETRIC;
        ph.udp_port = 30000 + i;
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE;
        m.punch_hole = &ph;
        n = hbb__rendezvous_message__pack(&m, buf);
        sendto(u, buf, n, 0, (struct sockaddr *)&hs, hl);
        if (i % 100 == 99)
            usleep(5000); /* let the host's socket buffer drain */
    }
    /* the host has seen them all when its log names the last one */
    HT_CHECK(file_has(h.log, "127.0.6.250:31499", 10000));
    fds = count_fds(h.pid);
    printf("# the host holds %d descriptors after %d punch requests\n", fds,
           FLOOD);
    HT_CHECK(fds >= 0 && fds < 200);
    t0 = now_ms();
    vfd = tcp_connect("127.0.0.1", h.port);
    HT_CHECK(vfd >= 0);
    got = vfd >= 0 ? recv_frame(vfd, frame, sizeof(frame), 2000) : -1;
    printf("# a direct viewer got the host's first message after %llu ms\n",
           (unsigned long long)(now_ms() - t0));
    HT_CHECK(got > 0);
    HT_CHECK(now_ms() - t0 < 2000);
    if (vfd >= 0)
        close(vfd);
    close(u);
    host_stop(&h, ht_case_failures() > 0);
}

int main(void)
{
    ht_init("abuse");
    if (hd_crypto_init() != 0)
        return 1;
    srv_ok = srv_start(&srv, NULL, NULL) == 0;
    if (!srv_ok) {
        ht_fail(__FILE__, __LINE__, "homedesk-server did not start");
        return ht_finish() || 1;
    }
    if (geteuid() == 0)
        HT_RUN(forged_punch_no_amplification);
    else
        ht_skip("forged_punch_no_amplification", "needs root (raw sockets)");
    HT_RUN(punch_flood_host_serves);
    if (ht_case_failures() > 0 || getenv("HD_TEST_VERBOSE"))
        srv_dump_log(&srv);
    srv_cleanup(&srv);
    return ht_finish();
}

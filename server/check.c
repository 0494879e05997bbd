/*
 * The reachability check (see check.h).  Each probe speaks the protocol
 * of its port and expects the answer only a homedesk or hbbs/hbbr server
 * gives: a TestNatResponse with the port it saw, a RegisterPeerResponse
 * over UDP, a relay that pairs (or refuses a wrong key), a WebSocket
 * upgrade.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "err.h"
#include "frame.h"
#include "rendezvous.pb-c.h"
#include "server/check.h"

struct probe {
    const char *what;
    int ok;
    int err; /* the connect error (negative errno), 0 when it connected */
    char detail[200];
};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Connect with a timeout; fd or a negative errno. */
static int tcp_to(const struct sockaddr_storage *base, uint16_t port,
                  int timeout_ms)
{
    struct sockaddr_storage sa = *base;
    struct pollfd p;
    int fd, err = 0, one = 1;
    socklen_t len = sizeof(err);

    hd_addr_set_port((struct sockaddr *)&sa, port);
    if ((fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa,
                hd_addr_len((struct sockaddr *)&sa)) != 0 &&
        errno != EINPROGRESS) {
        err = -errno;
        close(fd);
        return err;
    }
    p.fd = fd;
    p.events = POLLOUT;
    if (poll(&p, 1, timeout_ms) <= 0) {
        close(fd);
        return -ETIMEDOUT;
    }
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        close(fd);
        return -err;
    }
    return fd;
}

static void cannot_connect(struct probe *pr, int err)
{
    pr->err = err;
    snprintf(pr->detail, sizeof(pr->detail), "cannot connect: %s",
             err == -ETIMEDOUT ? "timed out" : strerror(-err));
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                struct pollfd pf = { .fd = fd, .events = POLLOUT };
                poll(&pf, 1, 1000);
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Bytes read from a connection, possibly more than one frame. */
struct rbuf {
    uint8_t data[4096];
    size_t have;
};

/*
 * The next frame's payload (copied into out) within the deadline; its
 * length, or -1.  Bytes after the frame stay in b for the next call.
 */
static ssize_t recv_frame(int fd, struct rbuf *b, uint8_t *out, size_t cap,
                          uint64_t deadline)
{
    size_t hlen, plen;

    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint64_t now = mono_ms();
        ssize_t r;

        if (hd_frame_parse_header(b->data, b->have, &hlen, &plen) == 1 &&
            b->have >= hlen + plen) {
            if (plen > cap)
                return -1;
            memcpy(out, b->data + hlen, plen);
            b->have -= hlen + plen;
            memmove(b->data, b->data + hlen + plen, b->have);
            return (ssize_t)plen;
        }
        if (now >= deadline || b->have == sizeof(b->data) ||
            poll(&p, 1, (int)(deadline - now)) <= 0)
            return -1;
        r = recv(fd, b->data + b->have, sizeof(b->data) - b->have, 0);
        if (r <= 0)
            return -1;
        b->have += (size_t)r;
    }
}

static int send_msg(int fd, const Hbb__RendezvousMessage *m)
{
    uint8_t buf[1024];
    int n = hd_frame_pack_into(&m->base, buf, sizeof(buf));

    return n < 0 ? -1 : send_all(fd, buf, (size_t)n);
}

/* TestNatRequest on a TCP port; the answer must carry our source port. */
static void probe_nat(const struct sockaddr_storage *sa, uint16_t port,
                      int timeout_ms, struct probe *pr)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *in = NULL;
    Hbb__TestNatRequest t = HBB__TEST_NAT_REQUEST__INIT;
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    uint8_t buf[4096];
    struct rbuf rb = { .have = 0 };
    int fd = tcp_to(sa, port, timeout_ms);

    if (fd < 0) {
        cannot_connect(pr, fd);
        return;
    }
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST;
    m.test_nat_request = &t;
    if (send_msg(fd, &m) != 0) {
        snprintf(pr->detail, sizeof(pr->detail), "connection dropped");
        close(fd);
        return;
    }
    /* the rendezvous port may first offer a KeyExchange: skip it */
    for (;;) {
        ssize_t n = recv_frame(fd, &rb, buf, sizeof(buf), deadline);

        if (n < 0)
            break;
        in = hbb__rendezvous_message__unpack(NULL, (size_t)n, buf);
        if (in == NULL ||
            in->union_case != HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE)
            break;
        hbb__rendezvous_message__free_unpacked(in, NULL);
        in = NULL;
    }
    if (in != NULL &&
        in->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_RESPONSE) {
        pr->ok = 1;
        snprintf(pr->detail, sizeof(pr->detail),
                 "answered (it sees your port %d)",
                 in->test_nat_response->port);
    } else {
        snprintf(pr->detail, sizeof(pr->detail),
                 "connected, but no rendezvous answer: the port reaches "
                 "something else");
    }
    if (in)
        hbb__rendezvous_message__free_unpacked(in, NULL);
    close(fd);
}

/* RegisterPeer for an ID nobody has: the server must ask for its key. */
static void probe_udp(const struct sockaddr_storage *base, uint16_t port,
                      int timeout_ms, struct probe *pr)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *in;
    Hbb__RegisterPeer rp = HBB__REGISTER_PEER__INIT;
    struct sockaddr_storage sa = *base;
    uint8_t buf[256];
    char id[32];
    size_t n;
    int fd, tries;

    hd_addr_set_port((struct sockaddr *)&sa, port);
    snprintf(id, sizeof(id), "check%u", randombytes_random());
    rp.id = id;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER;
    m.register_peer = &rp;
    n = hbb__rendezvous_message__pack(&m, buf);
    if ((fd = socket(sa.ss_family, SOCK_DGRAM, 0)) < 0) {
        snprintf(pr->detail, sizeof(pr->detail), "socket: %s", strerror(errno));
        return;
    }
    /* UDP may lose a datagram: three tries */
    for (tries = 0; tries < 3 && !pr->ok; tries++) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t r;

        sendto(fd, buf, n, 0, (struct sockaddr *)&sa,
               hd_addr_len((struct sockaddr *)&sa));
        if (poll(&p, 1, timeout_ms / 3) <= 0)
            continue;
        r = recv(fd, buf + 128, 128, 0);
        if (r <= 0)
            continue;
        in = hbb__rendezvous_message__unpack(NULL, (size_t)r, buf + 128);
        if (in && in->union_case ==
                      HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER_RESPONSE)
            pr->ok = 1;
        if (in)
            hbb__rendezvous_message__free_unpacked(in, NULL);
    }
    close(fd);
    snprintf(pr->detail, sizeof(pr->detail), "%s",
             pr->ok ? "registration answered"
                    : "no answer: hosts cannot register over UDP");
}

static void relay_hello(Hbb__RendezvousMessage *m, Hbb__RequestRelay *rr,
                        const char *uuid, const char *key)
{
    hbb__rendezvous_message__init(m);
    hbb__request_relay__init(rr);
    rr->uuid = (char *)uuid;
    rr->licence_key = (char *)key;
    m->union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m->request_relay = rr;
}

/*
 * With the key: two connections with one uuid must be paired and carry
 * bytes.  Without: a wrong key must make the relay hang up on us.
 */
static void probe_relay(const struct sockaddr_storage *sa, uint16_t port,
                        const char *key, int timeout_ms, struct probe *pr)
{
    Hbb__RendezvousMessage m;
    Hbb__RequestRelay rr;
    char uuid[48];
    uint8_t buf[16];
    int a = tcp_to(sa, port, timeout_ms), b = -1;

    if (a < 0) {
        cannot_connect(pr, a);
        return;
    }
    snprintf(uuid, sizeof(uuid), "homedesk-check-%08x%08x",
             randombytes_random(), randombytes_random());
    if (key != NULL) {
        relay_hello(&m, &rr, uuid, key);
        b = tcp_to(sa, port, timeout_ms);
        if (b >= 0 && send_msg(a, &m) == 0 && send_msg(b, &m) == 0 &&
            send_all(a, (const uint8_t *)"check", 5) == 0) {
            struct pollfd p = { .fd = b, .events = POLLIN };
            if (poll(&p, 1, timeout_ms) > 0 &&
                recv(b, buf, 5, MSG_WAITALL) == 5 &&
                memcmp(buf, "check", 5) == 0)
                pr->ok = 1;
        }
        snprintf(pr->detail, sizeof(pr->detail), "%s",
                 pr->ok ? "relayed bytes between two test connections"
                        : "connected, but did not relay (wrong --key, or "
                          "not a relay)");
    } else {
        struct pollfd p = { .fd = a, .events = POLLIN };

        relay_hello(&m, &rr, uuid, "homedesk-check-not-the-key");
        if (send_msg(a, &m) == 0 && poll(&p, 1, timeout_ms) > 0 &&
            recv(a, buf, sizeof(buf), 0) <= 0)
            pr->ok = 1;
        snprintf(pr->detail, sizeof(pr->detail), "%s",
                 pr->ok ? "a relay answered (give --key to test relaying)"
                        : "connected, but no relay behaviour seen");
    }
    close(a);
    if (b >= 0)
        close(b);
}

/* A WebSocket upgrade must be answered with 101. */
static void probe_ws(const struct sockaddr_storage *sa, uint16_t port,
                     int timeout_ms, struct probe *pr)
{
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: check\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    char resp[512];
    int fd = tcp_to(sa, port, timeout_ms);
    struct pollfd p;
    ssize_t n;

    if (fd < 0) {
        cannot_connect(pr, fd);
        return;
    }
    p.fd = fd;
    p.events = POLLIN;
    if (send_all(fd, (const uint8_t *)req, sizeof(req) - 1) == 0 &&
        poll(&p, 1, timeout_ms) > 0 &&
        (n = recv(fd, resp, sizeof(resp) - 1, 0)) > 12) {
        resp[n] = '\0';
        pr->ok = strncmp(resp, "HTTP/1.1 101", 12) == 0;
    }
    snprintf(pr->detail, sizeof(pr->detail), "%s",
             pr->ok ? "WebSocket upgrade answered"
                    : "no WebSocket answer (only web clients need it)");
    close(fd);
}

/*
 * Nothing answered on any TCP port: say that first, with what it usually
 * means, rather than a router rule per port.  1 when it said so.
 */
static int nothing_answers(const struct check_opts *o, const char *addr,
                           const struct probe *pr, int n)
{
    int refused = 0, timed_out = 0, tcp = 0;

    for (int i = 0; i < n; i++) {
        if (i == 2) /* UDP: no connect to fail */
            continue;
        tcp++;
        if (pr[i].err == -ECONNREFUSED)
            refused++;
        else if (pr[i].err == -ETIMEDOUT)
            timed_out++;
        else
            return 0;
    }
    if (tcp == 0 || pr[2].ok)
        return 0;
    if (refused == tcp)
        printf("nothing answers at %s (%s): every port refused the "
               "connection.\n  Usually the server is not running there, or "
               "the address is wrong, or the router has no forwarding for "
               "these ports (or forwards them to a machine without the "
               "server).\n",
               o->host, addr);
    else
        printf("nothing answers at %s (%s): the connections %s.\n  Usually "
               "the address is wrong, a firewall drops the packets, or the "
               "router does not forward these ports (is the server running?)."
               "\n",
               o->host, addr,
               timed_out == tcp ? "timed out" : "were refused or timed out");
    return 1;
}

int check_run(const struct check_opts *o)
{
    struct sockaddr_storage sa;
    struct probe pr[7];
    const char *proto[7] = { "TCP", "TCP", "UDP", "TCP", "TCP", "TCP" };
    char addr[HD_ADDR_STRLEN];
    uint16_t ports[7], port, relay_port;
    int n = 0, failed = 0, t = o->timeout_ms > 0 ? o->timeout_ms : 3000;
    int r;

    /* HOST may carry the port: name:P, 1.2.3.4:P, [v6]:P */
    if ((r = hd_addr_resolve(o->host, o->port, &sa)) != 0) {
        printf("homedesk-server check: cannot resolve %s: %s\n", o->host,
               r == -EINVAL ? "not HOST, HOST:PORT or [IPv6]:PORT"
                            : hd_strerror(r));
        return 2;
    }
    port = hd_addr_port((struct sockaddr *)&sa);
    if (port < 2 || port > 65533) {
        printf("homedesk-server check: %s: the rendezvous port must be "
               "2-65533 (its NAT test port is one below)\n",
               o->host);
        return 2;
    }
    relay_port = o->relay_port ? o->relay_port : (uint16_t)(port + 1);
    hd_addr_format_ip((struct sockaddr *)&sa, addr, sizeof(addr));
    memset(pr, 0, sizeof(pr));
    ports[n] = (uint16_t)(port - 1);
    pr[n].what = "NAT test";
    probe_nat(&sa, ports[n], t, &pr[n]);
    n++;
    ports[n] = port;
    pr[n].what = "rendezvous";
    probe_nat(&sa, ports[n], t, &pr[n]);
    n++;
    ports[n] = port;
    pr[n].what = "registration";
    probe_udp(&sa, ports[n], t, &pr[n]);
    n++;
    ports[n] = relay_port;
    pr[n].what = "relay";
    probe_relay(&sa, ports[n], o->key, t, &pr[n]);
    n++;
    if (o->ws) {
        ports[n] = (uint16_t)(port + 2);
        pr[n].what = "WebSocket";
        probe_ws(&sa, ports[n], t, &pr[n]);
        n++;
        ports[n] = (uint16_t)(relay_port + 2);
        pr[n].what = "WebSocket relay";
        probe_ws(&sa, ports[n], t, &pr[n]);
        n++;
    }
    printf("homedesk-server check %s (%s): rendezvous port %u, relay port "
           "%u\n",
           o->host, addr, port, relay_port);
    if (nothing_answers(o, addr, pr, n)) {
        for (int i = 0; i < n; i++)
            printf("  [FAIL] %s %-5u %-16s %s\n", proto[i], ports[i],
                   pr[i].what, pr[i].detail);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int optional = i >= 4; /* WebSocket: web clients only */

        printf("  [%s] %s %-5u %-16s %s\n",
               pr[i].ok   ? " ok "
               : optional ? "warn"
                          : "FAIL",
               proto[i], ports[i], pr[i].what, pr[i].detail);
        if (!pr[i].ok && !optional)
            failed++;
    }
    for (int i = 0; i < n; i++) {
        if (!pr[i].ok)
            printf("  missing router rule? forward %s port %u to the "
                   "server's LAN address, port %u\n",
                   proto[i], ports[i], ports[i]);
    }
    if (failed == 0)
        printf("all required ports reach the server\n");
    return failed ? 1 : 0;
}

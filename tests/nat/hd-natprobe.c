/*
 * hd-natprobe: the peer side of the NAT lab (tests/nat/).  Each subcommand
 * plays one part of a RustDesk peer against a real homedesk-server, with
 * plain blocking sockets, and prints what it saw as "key=value" lines on
 * stdout for the lab scripts to check:
 *
 *   nat-type SERVER            the NAT type test of PROTOCOL.md section 4
 *   register SERVER ID SECS INTERVAL
 *                              a host's UDP RegisterPeer/RegisterPk loop;
 *                              answers PunchHole as a host does (step 3)
 *   punch SERVER ID KEY [MS]   a viewer's PunchHoleRequest
 *   relay-pair RELAY UUID KEY [BYTES]
 *                              one side of a relayed pair: send and check
 *                              BYTES (default 1 MiB) each way
 *   simopen SERVER MYFILE PEERFILE SECS [connect|both|late|listen]
 *                              TCP hole punching from the port that talked
 *                              to the server: both sides connect at once
 *                              (connect; both = connect and listen on the
 *                              port too), or one fires a SYN then listens
 *                              (listen) while the other connects a little
 *                              later (late)
 *   listen PORT SECS / connect IP:PORT
 *                              a plain TCP accept or connect (hairpin)
 *
 * SERVER and RELAY are IP[:PORT] (21116 / 21117 by default).  Every wait is
 * bounded; the exit status is 0 when the step succeeded, 1 when not, 2 on
 * a usage error.  A test tool: it trusts the lab's server, but never reads
 * past its buffers whatever comes in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "crypto.h"
#include "rendezvous.pb-c.h"
#include "tests/integration/support.h"

#define PROBE_VERSION   "1.4.0"
#define PROBE_RDV_PORT  21116
#define PROBE_RELAY_PRT 21117
#define PROBE_IO_MS     5000

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static int usage(void)
{
    fprintf(stderr, "usage: hd-natprobe nat-type SERVER\n"
                    "       hd-natprobe register SERVER ID SECS INTERVAL\n"
                    "       hd-natprobe punch SERVER ID KEY [TIMEOUT_MS]\n"
                    "       hd-natprobe relay-pair RELAY UUID KEY [BYTES]\n"
                    "       hd-natprobe simopen SERVER MYFILE PEERFILE SECS "
                    "[connect|both|late|listen]\n"
                    "       hd-natprobe listen PORT SECS\n"
                    "       hd-natprobe connect IP:PORT\n");
    return 2;
}

static int parse_addr(const char *s, uint16_t def, struct sockaddr_storage *ss)
{
    if (hd_addr_parse(s, def, ss) != 0) {
        fprintf(stderr, "hd-natprobe: bad address %s\n", s);
        return -1;
    }
    return 0;
}

static const char *fmt_addr(const struct sockaddr_storage *ss, char *buf)
{
    return hd_addr_format((const struct sockaddr *)ss, buf, HD_ADDR_STRLEN);
}

/* TCP socket bound to local_port (0 = any) with address and port reuse,
 * so several sockets can share the port that talked to the server. */
static int tcp_bound(int family, uint16_t local_port)
{
    struct sockaddr_storage ss;
    int fd, one = 1;

    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (sa_family_t)family;
    hd_addr_set_port((struct sockaddr *)&ss, local_port);
    if ((fd = socket(family, SOCK_STREAM, 0)) < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, hd_addr_len((struct sockaddr *)&ss)) !=
        0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* connect() within ms.  Returns 0, or a negative errno (-ETIMEDOUT). */
static int connect_within(int fd, const struct sockaddr_storage *to, int ms)
{
    int fl = fcntl(fd, F_GETFL), err = 0, r;
    socklen_t elen = sizeof(err);
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };

    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    r = connect(fd, (const struct sockaddr *)to,
                hd_addr_len((const struct sockaddr *)to));
    if (r != 0 && errno != EINPROGRESS) {
        r = -errno;
        goto out;
    }
    if (r != 0) {
        if ((r = poll(&pfd, 1, ms)) <= 0) {
            r = r == 0 ? -ETIMEDOUT : -errno;
            goto out;
        }
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        r = err ? -err : 0;
    }
out:
    fcntl(fd, F_SETFL, fl);
    return r;
}

/*
 * As connect_within on *fd, while also watching listener lfd: when a
 * connection arrives there first, *fd is replaced by the accepted one and
 * *accepted set.  Returns 0 or a negative errno.
 */
static int connect_or_accept(int *fd, int lfd,
                             const struct sockaddr_storage *to, int ms,
                             int *accepted)
{
    int fl = fcntl(*fd, F_GETFL), err = 0, r, afd;
    socklen_t elen = sizeof(err);
    struct pollfd pfd[2] = { { .fd = *fd, .events = POLLOUT },
                             { .fd = lfd, .events = POLLIN } };

    *accepted = 0;
    /* a connection from the peer may be waiting already (then our own
     * connect would fail: the address pair is taken) */
    if (poll(&pfd[1], 1, 0) == 1 && (afd = accept(lfd, NULL, NULL)) >= 0) {
        close(*fd);
        *fd = afd;
        *accepted = 1;
        return 0;
    }
    fcntl(*fd, F_SETFL, fl | O_NONBLOCK);
    r = connect(*fd, (const struct sockaddr *)to,
                hd_addr_len((const struct sockaddr *)to));
    if (r != 0 && errno != EINPROGRESS) {
        r = -errno;
        goto out;
    }
    if (r != 0) {
        if ((r = poll(pfd, 2, ms)) <= 0) {
            r = r == 0 ? -ETIMEDOUT : -errno;
            goto out;
        }
        if ((pfd[1].revents & POLLIN) && (afd = accept(lfd, NULL, NULL)) >= 0) {
            close(*fd);
            *fd = afd;
            *accepted = 1;
            return 0;
        }
        getsockopt(*fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        r = err ? -err : 0;
    }
out:
    fcntl(*fd, F_SETFL, fl);
    return r;
}

/* Connect from local_port to `to`: the fd, or -1. */
static int tcp_dial(const struct sockaddr_storage *to, uint16_t local_port,
                    int ms)
{
    int fd = tcp_bound(to->ss_family, local_port);

    if (fd < 0)
        return -1;
    if (connect_within(fd, to, ms) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* TestNatRequest on fd; the port the server saw, or -1. */
static int test_nat(int fd)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *r;
    Hbb__TestNatRequest t = HBB__TEST_NAT_REQUEST__INIT;
    int port = -1;

    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST;
    m.test_nat_request = &t;
    if (send_msg(fd, &m) != 0)
        return -1;
    if ((r = recv_msg(fd, PROBE_IO_MS, 1)) == NULL)
        return -1;
    if (r->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_RESPONSE)
        port = r->test_nat_response->port;
    hbb__rendezvous_message__free_unpacked(r, NULL);
    return port;
}

/* ---- nat-type ----------------------------------------------------------- */

static int cmd_nat_type(const char *server)
{
    struct sockaddr_storage srv;
    int fd1 = -1, fd2 = -1, p1, p2, rc = 1;
    uint16_t local;

    if (parse_addr(server, PROBE_RDV_PORT, &srv) != 0)
        return 2;
    /* 1: the rendezvous port, from any local port */
    if ((fd1 = tcp_dial(&srv, 0, PROBE_IO_MS)) < 0) {
        say("error=connect-rendezvous");
        goto out;
    }
    local = sock_port(fd1);
    p1 = test_nat(fd1);
    /* 2: the NAT test port (rendezvous - 1), from the same local port */
    hd_addr_set_port((struct sockaddr *)&srv,
                     (uint16_t)(hd_addr_port((struct sockaddr *)&srv) - 1));
    if ((fd2 = tcp_dial(&srv, local, PROBE_IO_MS)) < 0) {
        say("error=connect-nat-test");
        goto out;
    }
    p2 = test_nat(fd2);
    if (p1 <= 0 || p2 <= 0) {
        say("error=no-test-nat-response");
        goto out;
    }
    say("local=%u port1=%d port2=%d nat_type=%s", local, p1, p2,
        p1 == p2 ? "ASYMMETRIC" : "SYMMETRIC");
    rc = 0;
out:
    if (fd1 >= 0)
        close(fd1);
    if (fd2 >= 0)
        close(fd2);
    return rc;
}

/* ---- register (a host) ----------------------------------------------------
 */

struct host {
    int udp;
    struct sockaddr_storage srv;
    const char *id;
    uint8_t uuid[16];
    uint8_t pk[32];
    int punches, registered, said_port;
};

static int host_udp_send(struct host *h, const Hbb__RendezvousMessage *m)
{
    uint8_t buf[1024];
    size_t n = hbb__rendezvous_message__get_packed_size(m);

    if (n > sizeof(buf))
        return -1;
    hbb__rendezvous_message__pack(m, buf);
    return sendto(h->udp, buf, n, 0, (struct sockaddr *)&h->srv,
                  hd_addr_len((struct sockaddr *)&h->srv)) == (ssize_t)n
               ? 0
               : -1;
}

static void host_heartbeat(struct host *h)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPeer rp = HBB__REGISTER_PEER__INIT;

    rp.id = (char *)h->id;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER;
    m.register_peer = &rp;
    host_udp_send(h, &m);
}

static void host_register_pk(struct host *h)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPk rk = HBB__REGISTER_PK__INIT;

    rk.id = (char *)h->id;
    rk.uuid.data = h->uuid;
    rk.uuid.len = sizeof(h->uuid);
    rk.pk.data = h->pk;
    rk.pk.len = sizeof(h->pk);
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK;
    m.register_pk = &rk;
    host_udp_send(h, &m);
}

/*
 * Host step 3 of the punch flow: a new TCP connection to the server from
 * port P, a connect from P towards the viewer (opens our NAT), then
 * PunchHoleSent on the server connection.
 */
static void host_punch(struct host *h, const Hbb__PunchHole *ph)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__PunchHoleSent s = HBB__PUNCH_HOLE_SENT__INIT;
    struct sockaddr_storage viewer, srv = h->srv;
    char vs[HD_ADDR_STRLEN];
    int fd, fd2 = -1;
    uint16_t p;

    if (hd_addr_unmangle(ph->socket_addr.data, ph->socket_addr.len, &viewer) !=
        0) {
        say("punch_hole bad_address=1");
        return;
    }
    h->punches++;
    say("punch_hole peer=%s nat_type=%d relay=%s", fmt_addr(&viewer, vs),
        (int)ph->nat_type, ph->relay_server ? ph->relay_server : "");
    if ((fd = tcp_dial(&srv, 0, PROBE_IO_MS)) < 0) {
        say("punch_hole_sent error=connect");
        return;
    }
    p = sock_port(fd);
    if ((fd2 = tcp_bound(viewer.ss_family, p)) >= 0) {
        fcntl(fd2, F_SETFL, O_NONBLOCK);
        (void)connect(fd2, (struct sockaddr *)&viewer,
                      hd_addr_len((struct sockaddr *)&viewer));
    }
    s.socket_addr = ph->socket_addr;
    s.id = (char *)h->id;
    s.relay_server = ph->relay_server;
    s.nat_type = HBB__NAT_TYPE__ASYMMETRIC;
    s.version = PROBE_VERSION;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_SENT;
    m.punch_hole_sent = &s;
    say("punch_hole_sent local=%u ok=%d", p, send_msg(fd, &m) == 0);
    usleep(200 * 1000); /* let the server read it before our FIN */
    close(fd);
    if (fd2 >= 0)
        close(fd2);
}

/* FetchLocalAddr (viewer behind the same public IP): tell our LAN
 * address over a new TCP connection, as a host does. */
static void host_local_addr(struct host *h, const Hbb__FetchLocalAddr *fla)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__LocalAddr la = HBB__LOCAL_ADDR__INIT;
    struct sockaddr_storage viewer, mine;
    socklen_t mlen = sizeof(mine);
    uint8_t mangled[HD_ADDR_MANGLED_MAX];
    char vs[HD_ADDR_STRLEN], ms[HD_ADDR_STRLEN];
    int fd;

    if (hd_addr_unmangle(fla->socket_addr.data, fla->socket_addr.len,
                         &viewer) != 0) {
        say("fetch_local_addr bad_address=1");
        return;
    }
    h->punches++;
    if ((fd = tcp_dial(&h->srv, 0, PROBE_IO_MS)) < 0 ||
        getsockname(fd, (struct sockaddr *)&mine, &mlen) != 0) {
        say("fetch_local_addr peer=%s error=connect", fmt_addr(&viewer, vs));
        if (fd >= 0)
            close(fd);
        return;
    }
    la.socket_addr = fla->socket_addr;
    la.local_addr.data = mangled;
    la.local_addr.len =
        hd_addr_mangle((struct sockaddr *)&mine, hd_addr_now_us(), mangled);
    la.relay_server = fla->relay_server;
    la.id = (char *)h->id;
    la.version = PROBE_VERSION;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_LOCAL_ADDR;
    m.local_addr = &la;
    say("fetch_local_addr peer=%s local_addr=%s ok=%d", fmt_addr(&viewer, vs),
        fmt_addr(&mine, ms), send_msg(fd, &m) == 0);
    usleep(200 * 1000);
    close(fd);
}

static void host_on_message(struct host *h, Hbb__RendezvousMessage *m)
{
    switch (m->union_case) {
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER_RESPONSE:
        say("register_peer_response request_pk=%d",
            (int)m->register_peer_response->request_pk);
        if (m->register_peer_response->request_pk)
            host_register_pk(h);
        else
            h->registered = 1;
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK_RESPONSE:
        say("register_pk_response result=%d keep_alive=%d",
            (int)m->register_pk_response->result,
            m->register_pk_response->keep_alive);
        if (m->register_pk_response->result ==
            HBB__REGISTER_PK_RESPONSE__RESULT__OK)
            h->registered = 1;
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE:
        host_punch(h, m->punch_hole);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_FETCH_LOCAL_ADDR:
        host_local_addr(h, m->fetch_local_addr);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY:
        say("request_relay uuid=%s relay=%s", m->request_relay->uuid,
            m->request_relay->relay_server);
        break;
    default:
        say("udp_message case=%d", (int)m->union_case);
        break;
    }
}

static int cmd_register(const char *server, const char *id, double secs,
                        double interval)
{
    struct host h;
    struct sockaddr_storage from;
    uint64_t end, next_hb;
    int rc = 1;

    memset(&h, 0, sizeof(h));
    h.udp = -1;
    h.id = id;
    if (parse_addr(server, PROBE_RDV_PORT, &h.srv) != 0)
        return 2;
    if (secs <= 0 || secs > 600 || interval <= 0)
        return usage();
    randombytes_buf(h.uuid, sizeof(h.uuid));
    randombytes_buf(h.pk, sizeof(h.pk));
    if ((h.udp = socket(h.srv.ss_family, SOCK_DGRAM, 0)) < 0)
        goto out;
    end = now_ms() + (uint64_t)(secs * 1000);
    next_hb = now_ms();
    for (;;) {
        uint64_t now = now_ms();
        Hbb__RendezvousMessage *m;
        int wait;

        if (now >= end)
            break;
        if (now >= next_hb) {
            host_heartbeat(&h);
            next_hb = now + (uint64_t)(interval * 1000);
            if (!h.said_port && sock_port(h.udp) != 0) {
                say("heartbeat local=%u", sock_port(h.udp));
                h.said_port = 1;
            }
        }
        wait = (int)((next_hb < end ? next_hb : end) - now);
        if ((m = udp_recv_msg(h.udp, wait, &from)) == NULL)
            continue;
        host_on_message(&h, m);
        hbb__rendezvous_message__free_unpacked(m, NULL);
    }
    say("done registered=%d punches=%d", h.registered, h.punches);
    rc = h.registered ? 0 : 1;
out:
    if (h.udp >= 0)
        close(h.udp);
    return rc;
}

/* ---- punch (a viewer) ------------------------------------------------------
 */

static void check_signed_pk(const ProtobufCBinaryData *pk, const char *key,
                            const char *id)
{
    uint8_t server_pk[32], host_pk[64];
    char sid[64];
    size_t len = 0, pklen;

    if (pk->len == 0) {
        say("signed_pk=none");
        return;
    }
    if (hd_base64_decode(key, strlen(key), server_pk, sizeof(server_pk),
                         &len) != 0 ||
        len != 32) {
        say("signed_pk=no-server-key");
        return;
    }
    if (hd_idpk_verify(pk->data, pk->len, server_pk, sid, sizeof(sid), host_pk,
                       sizeof(host_pk), &pklen) != 0 ||
        strcmp(sid, id) != 0) {
        say("signed_pk=bad");
        return;
    }
    say("signed_pk=ok id=%s pk_len=%zu", sid, pklen);
}

static int cmd_punch(const char *server, const char *id, const char *key,
                     int ms)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *r = NULL;
    Hbb__PunchHoleRequest req = HBB__PUNCH_HOLE_REQUEST__INIT;
    struct sockaddr_storage srv, host;
    char hs[HD_ADDR_STRLEN];
    int fd, rc = 1;

    if (parse_addr(server, PROBE_RDV_PORT, &srv) != 0)
        return 2;
    if ((fd = tcp_dial(&srv, 0, PROBE_IO_MS)) < 0) {
        say("error=connect");
        return 1;
    }
    req.id = (char *)id;
    req.nat_type = HBB__NAT_TYPE__ASYMMETRIC;
    req.licence_key = (char *)key;
    req.version = PROBE_VERSION;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST;
    m.punch_hole_request = &req;
    say("punch_request local=%u", sock_port(fd));
    if (send_msg(fd, &m) != 0 || (r = recv_msg(fd, ms, 1)) == NULL) {
        say("punch_hole_response none=1");
        goto out;
    }
    if (r->union_case != HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE) {
        say("unexpected case=%d", (int)r->union_case);
        goto out;
    }
    if (r->punch_hole_response->socket_addr.len == 0) {
        say("punch_hole_response failure=%d",
            (int)r->punch_hole_response->failure);
        goto out;
    }
    if (hd_addr_unmangle(r->punch_hole_response->socket_addr.data,
                         r->punch_hole_response->socket_addr.len, &host) != 0) {
        say("punch_hole_response bad_address=1");
        goto out;
    }
    say("punch_hole_response host=%s nat_type=%d is_local=%d relay=%s",
        fmt_addr(&host, hs),
        r->punch_hole_response->union_case ==
                HBB__PUNCH_HOLE_RESPONSE__UNION_NAT_TYPE
            ? (int)r->punch_hole_response->nat_type
            : -1,
        r->punch_hole_response->union_case ==
                HBB__PUNCH_HOLE_RESPONSE__UNION_IS_LOCAL
            ? (int)r->punch_hole_response->is_local
            : 0,
        r->punch_hole_response->relay_server);
    check_signed_pk(&r->punch_hole_response->pk, key, id);
    rc = 0;
out:
    if (r != NULL)
        hbb__rendezvous_message__free_unpacked(r, NULL);
    close(fd);
    return rc;
}

/* ---- relay-pair ------------------------------------------------------------
 */

static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 131u + (i >> 11)) & 0xff);
}

static int cmd_relay_pair(const char *relay, const char *uuid, const char *key,
                          size_t total)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RequestRelay rr = HBB__REQUEST_RELAY__INIT;
    struct sockaddr_storage to;
    uint8_t out[16384], in[16384];
    size_t sent = 0, got = 0, bad = 0;
    uint64_t start, end;
    int fd, rc = 1;

    if (parse_addr(relay, PROBE_RELAY_PRT, &to) != 0)
        return 2;
    if ((fd = tcp_dial(&to, 0, PROBE_IO_MS)) < 0) {
        say("error=connect");
        return 1;
    }
    rr.uuid = (char *)uuid;
    rr.licence_key = (char *)key;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = &rr;
    if (send_msg(fd, &m) != 0) {
        say("error=send");
        goto out;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    start = now_ms();
    end = start + 30000;
    while ((sent < total || got < total) && now_ms() < end) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (sent < total)
            pfd.events |= POLLOUT;
        if (poll(&pfd, 1, 500) <= 0)
            continue;
        if (pfd.revents & POLLIN) {
            n = recv(fd, in, sizeof(in), 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
            for (ssize_t i = 0; i < n; i++)
                bad += in[i] != pattern(got + (size_t)i);
            if (n > 0)
                got += (size_t)n;
        }
        if ((pfd.revents & POLLOUT) && sent < total) {
            size_t k = total - sent < sizeof(out) ? total - sent : sizeof(out);

            for (size_t i = 0; i < k; i++)
                out[i] = pattern(sent + i);
            n = send(fd, out, k, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                break;
            if (n > 0)
                sent += (size_t)n;
        }
    }
    say("relay sent=%zu received=%zu corrupt=%zu ms=%llu", sent, got, bad,
        (unsigned long long)(now_ms() - start));
    rc = sent == total && got == total && bad == 0 ? 0 : 1;
    /* keep the pair up until the peer has read everything we sent */
    if (rc == 0) {
        shutdown(fd, SHUT_WR);
        wait_closed(fd, 5000);
    }
out:
    close(fd);
    return rc;
}

/* ---- simopen ---------------------------------------------------------------
 */

static int read_peer(const char *path, struct sockaddr_storage *peer, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    char line[128];

    while (now_ms() < end) {
        FILE *f = fopen(path, "r");

        if (f != NULL) {
            int ok = fgets(line, sizeof(line), f) != NULL;

            fclose(f);
            line[strcspn(line, "\r\n")] = '\0';
            if (ok && hd_addr_parse(line, 0, peer) == 0)
                return 0;
        }
        usleep(20 * 1000);
    }
    return -1;
}

static int write_atomic(const char *path, const char *text)
{
    char tmp[512];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((f = fopen(tmp, "w")) == NULL)
        return -1;
    fputs(text, f);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

/* Exchange one line with the peer on a punched connection. */
static int simopen_hello(int fd, uint16_t local)
{
    char msg[32], buf[32];
    int n = snprintf(msg, sizeof(msg), "hello %05u\n", local);
    uint64_t end = now_ms() + 3000;
    size_t got = 0;

    if (send_all(fd, msg, (size_t)n) != 0)
        return -1;
    while (got < (size_t)n && now_ms() < end) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t r;

        if (poll(&pfd, 1, 200) <= 0)
            continue;
        if ((r = recv(fd, buf + got, (size_t)n - got, 0)) <= 0)
            return -1;
        got += (size_t)r;
    }
    return got == (size_t)n && memcmp(buf, "hello ", 6) == 0 ? 0 : -1;
}

/*
 * The reference host's way (PROTOCOL.md punch step 3): fire a connect
 * from the port towards the peer to open our NAT, close it, listen on the
 * port.  Returns the accepted connection, or -1.
 */
static int listen_after_syn(const struct sockaddr_storage *peer, uint16_t local,
                            double secs)
{
    struct pollfd pfd;
    int fd, lfd, afd = -1;

    if ((fd = tcp_bound(peer->ss_family, local)) >= 0) {
        fcntl(fd, F_SETFL, O_NONBLOCK);
        (void)connect(fd, (const struct sockaddr *)peer,
                      hd_addr_len((const struct sockaddr *)peer));
        usleep(100 * 1000);
        close(fd);
    }
    if ((lfd = tcp_bound(peer->ss_family, local)) < 0 || listen(lfd, 4) != 0)
        goto out;
    pfd.fd = lfd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, (int)(secs * 1000)) == 1)
        afd = accept(lfd, NULL, NULL);
out:
    if (lfd >= 0)
        close(lfd);
    return afd;
}

static int cmd_simopen(const char *server, const char *myfile,
                       const char *peerfile, double secs, const char *mode)
{
    struct sockaddr_storage srv, peer;
    char ps[HD_ADDR_STRLEN], line[32];
    int sfd, fd = -1, lfd = -1, mapped, attempts = 0, rc = 1, last = 0;
    int accepted = 0;
    uint16_t local;
    uint64_t start, end;

    if (parse_addr(server, PROBE_RDV_PORT, &srv) != 0)
        return 2;
    if ((sfd = tcp_dial(&srv, 0, PROBE_IO_MS)) < 0) {
        say("error=connect-server");
        return 1;
    }
    local = sock_port(sfd);
    if ((mapped = test_nat(sfd)) <= 0) {
        say("error=test-nat");
        goto out;
    }
    snprintf(line, sizeof(line), "%d\n", mapped);
    if (write_atomic(myfile, line) != 0 || read_peer(peerfile, &peer, 10000)) {
        say("error=no-peer-address");
        goto out;
    }
    say("simopen local=%u mapped=%d peer=%s", local, mapped,
        fmt_addr(&peer, ps));
    start = now_ms();
    end = start + (uint64_t)(secs * 1000);
    if (strcmp(mode, "listen") == 0) {
        fd = listen_after_syn(&peer, local, secs);
        attempts = 1;
        last = -ETIMEDOUT;
        end = 0;
    } else if (strcmp(mode, "late") == 0) {
        usleep(500 * 1000); /* the listening side's SYN goes first */
    } else if (strcmp(mode, "both") == 0) {
        /* also listen on the port: a SYN that arrives before ours left
         * (a full-cone NAT forwards it) is accepted, not reset */
        if ((lfd = tcp_bound(peer.ss_family, local)) < 0 ||
            listen(lfd, 4) != 0) {
            say("error=listen");
            goto out;
        }
    }
    /* From the port the server saw (the server connection stays open):
     * connect until the two SYNs cross or time runs out. */
    while (now_ms() < end) {
        uint64_t left = end - now_ms();

        attempts++;
        fd = tcp_bound(peer.ss_family, local);
        if (fd < 0) {
            last = -errno;
            break;
        }
        if (lfd >= 0)
            last = connect_or_accept(&fd, lfd, &peer,
                                     left < 1500 ? (int)left : 1500, &accepted);
        else
            last = connect_within(fd, &peer, left < 1500 ? (int)left : 1500);
        if (last == 0)
            break;
        close(fd);
        fd = -1;
        usleep(100 * 1000);
    }
    if (fd >= 0 && simopen_hello(fd, local) == 0) {
        say("simopen result=ok attempts=%d via=%s ms=%llu", attempts,
            accepted || strcmp(mode, "listen") == 0 ? "accept" : "connect",
            (unsigned long long)(now_ms() - start));
        rc = 0;
    } else {
        say("simopen result=fail attempts=%d last=%s", attempts,
            fd >= 0 ? "no-hello" : strerror(-last));
    }
out:
    if (fd >= 0)
        close(fd);
    if (lfd >= 0)
        close(lfd);
    close(sfd);
    return rc;
}

/* ---- listen / connect ------------------------------------------------------
 */

static int cmd_listen(uint16_t port, double secs)
{
    struct sockaddr_storage from;
    socklen_t flen = sizeof(from);
    struct pollfd pfd;
    char fs[HD_ADDR_STRLEN];
    int lfd, fd;

    if ((lfd = tcp_bound(AF_INET, port)) < 0 || listen(lfd, 4) != 0) {
        say("error=listen");
        return 1;
    }
    say("listening port=%u", port);
    pfd.fd = lfd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, (int)(secs * 1000)) <= 0 ||
        (fd = accept(lfd, (struct sockaddr *)&from, &flen)) < 0) {
        say("accepted none=1");
        close(lfd);
        return 1;
    }
    say("accepted from=%s", fmt_addr(&from, fs));
    close(fd);
    close(lfd);
    return 0;
}

static int cmd_connect(const char *to_s)
{
    struct sockaddr_storage to;
    int fd;

    if (parse_addr(to_s, 0, &to) != 0)
        return 2;
    if ((fd = tcp_dial(&to, 0, 3000)) < 0) {
        say("connected=0");
        return 1;
    }
    say("connected=1 local=%u", sock_port(fd));
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (sodium_init() < 0)
        return 1;
    if (strcmp(cmd, "nat-type") == 0 && argc == 3)
        return cmd_nat_type(argv[2]);
    if (strcmp(cmd, "register") == 0 && argc == 6)
        return cmd_register(argv[2], argv[3], atof(argv[4]), atof(argv[5]));
    if (strcmp(cmd, "punch") == 0 && (argc == 5 || argc == 6))
        return cmd_punch(argv[2], argv[3], argv[4],
                         argc == 6 ? atoi(argv[5]) : 10000);
    if (strcmp(cmd, "relay-pair") == 0 && (argc == 5 || argc == 6))
        return cmd_relay_pair(argv[2], argv[3], argv[4],
                              argc == 6 ? strtoul(argv[5], NULL, 10)
                                        : 1024 * 1024);
    if (strcmp(cmd, "simopen") == 0 && (argc == 6 || argc == 7))
        return cmd_simopen(argv[2], argv[3], argv[4], atof(argv[5]),
                           argc == 7 ? argv[6] : "connect");
    if (strcmp(cmd, "listen") == 0 && argc == 4)
        return cmd_listen((uint16_t)atoi(argv[2]), atof(argv[3]));
    if (strcmp(cmd, "connect") == 0 && argc == 3)
        return cmd_connect(argv[2]);
    return usage();
}

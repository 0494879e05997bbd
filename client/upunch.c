/*
 * UDP hole punching, the viewer's side.  See upunch.h.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "client/upunch.h"
#include "frame.h"
#include "log.h"
#include "rendezvous.pb-c.h"
#include "rudp.h"
#include "uprobe.h"

#define MOD         "rv"
#define UP_RX_MAX   2048
#define UP_RX_LOOP  512 /* datagrams per up_input, at most */
#define UP_HELLO_MS 5000

void up_init(struct up *u)
{
    memset(u, 0, sizeof(*u));
    u->fd = -1;
}

static int udp_socket(int family)
{
    struct sockaddr_storage any;
    int fd;

    memset(&any, 0, sizeof(any));
    any.ss_family = (sa_family_t)family;
    if ((fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&any,
             hd_addr_len((struct sockaddr *)&any)) != 0) {
        int r = -errno;

        close(fd);
        return r;
    }
    return fd;
}

static void send_to(int fd, const struct sockaddr *to, const uint8_t *d,
                    size_t n)
{
    /* best effort, like every datagram */
    if (sendto(fd, d, n, MSG_DONTWAIT, to, hd_addr_len(to)) < 0) {
    }
}

static void send_query(struct up *u)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__TestNatRequest t = HBB__TEST_NAT_REQUEST__INIT;
    uint8_t buf[64];
    int n;

    /* a large serial: the server never answers with more than it got */
    t.serial = 0x7fffffff;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST;
    m.test_nat_request = &t;
    if ((n = hd_msg_pack_into(&m.base, buf, sizeof(buf))) > 0)
        send_to(u->fd, (struct sockaddr *)&u->srv, buf, (size_t)n);
    u->queries++;
}

int up_open(struct up *u, const struct sockaddr *srv, uint64_t now)
{
    int fd;

    up_init(u);
    if ((fd = udp_socket(srv->sa_family)) < 0)
        return fd;
    u->fd = fd;
    memcpy(&u->srv, srv, hd_addr_len(srv));
    send_query(u);
    u->query_at = now + UP_QUERY_MS;
    return 0;
}

static void close_fan(struct up *u, int keep)
{
    for (int i = 0; i < u->n_fan; i++)
        if (u->fan[i] >= 0 && u->fan[i] != keep)
            close(u->fan[i]);
    u->n_fan = 0;
}

void up_close(struct up *u)
{
    close_fan(u, -1);
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    hd_rudp_free(u->rudp);
    u->rudp = NULL;
    u->active = 0;
}

static void fail(struct up *u, const char *why)
{
    char hs[HD_ADDR_STRLEN];

    u->err = why;
    hd_info(MOD, "%s: udp path to %s failed: %s", u->id,
            hd_addr_format((struct sockaddr *)&u->host, hs, sizeof(hs)), why);
    up_close(u);
}

static size_t pack(const struct up *u, uint8_t *buf)
{
    struct hd_uprobe p = { HD_UPROBE_PROBE, HD_UPROBE_VIEWER, u->conv, "" };

    snprintf(p.id, sizeof(p.id), "%s", u->id);
    return hd_uprobe_pack(&p, buf);
}

int up_start(struct up *u, const struct sockaddr *host, const char *id,
             int me_sym, int host_sym, uint64_t now, uint64_t ms)
{
    int fd;

    if (u->fd < 0)
        return -EBADF;
    if (me_sym && host_sym)
        return -EHOSTUNREACH;
    memcpy(&u->host, host, hd_addr_len(host));
    snprintf(u->id, sizeof(u->id), "%s", id);
    do
        u->conv = randombytes_random();
    while (u->conv == 0);
    if ((u->probe_len = pack(u, u->probe)) == 0)
        return -EINVAL; /* an ID longer than a probe holds */
    u->spray = host_sym;
    u->t0 = u->probe_at = u->fan_probe_at = now;
    u->spray_at = now + UP_SPRAY_AFTER_MS;
    u->until = now + ms;
    u->active = 1;
    if (me_sym) {
        while (u->n_fan < UP_FAN && (fd = udp_socket(host->sa_family)) >= 0)
            u->fan[u->n_fan++] = fd;
    }
    return 0;
}

int up_alive(const struct up *u)
{
    return u->active || u->rudp != NULL;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t up_step(struct up *u, uint64_t now)
{
    uint64_t next = now + 1000;

    if (!u->active && u->rudp == NULL && u->fd >= 0 && u->pub_port == 0 &&
        u->queries < UP_QUERIES) {
        if (now >= u->query_at) {
            send_query(u);
            u->query_at = now + UP_QUERY_MS;
        }
        next = min64(next, u->query_at);
    }
    if (u->active) {
        if (now >= u->until) {
            fail(u, u->spray || u->n_fan ? "no answer (guessed ports too)"
                                         : "no answer");
            return next;
        }
        if (now >= u->probe_at) {
            send_to(u->fd, (struct sockaddr *)&u->host, u->probe, u->probe_len);
            u->probes++;
            u->probe_at = now + UP_PROBE_MS;
        }
        if (u->n_fan > 0 && now >= u->fan_probe_at) {
            for (int i = 0; i < u->n_fan; i++)
                send_to(u->fan[i], (struct sockaddr *)&u->host, u->probe,
                        u->probe_len);
            u->fan_probe_at = now + UP_FAN_PROBE_MS;
        }
        if (u->spray && u->sprayed < UP_SPRAY_MAX && now >= u->spray_at) {
            struct sockaddr_storage to = u->host;

            for (int i = 0; i < UP_SPRAY_BURST; i++) {
                hd_addr_set_port((struct sockaddr *)&to,
                                 hd_uprobe_guess_port());
                send_to(u->fd, (struct sockaddr *)&to, u->probe, u->probe_len);
            }
            u->sprayed += UP_SPRAY_BURST;
            u->spray_at = now + UP_SPRAY_TICK_MS;
        }
        next = min64(next, min64(u->until, u->probe_at));
        if (u->n_fan > 0)
            next = min64(next, u->fan_probe_at);
        if (u->spray && u->sprayed < UP_SPRAY_MAX)
            next = min64(next, u->spray_at);
    }
    if (u->rudp != NULL) {
        if (now >= u->hello_until) {
            fail(u, "no SignedId in time");
            return next;
        }
        next = min64(next, min64(hd_rudp_update(u->rudp, now), u->hello_until));
        if (hd_rudp_error(u->rudp) != 0)
            fail(u, "the stream failed before SignedId");
    }
    return next;
}

int up_fds(const struct up *u, int *fds, int cap)
{
    int n = 0;

    if (u->fd >= 0 && n < cap)
        fds[n++] = u->fd;
    for (int i = 0; i < u->n_fan && n < cap; i++)
        fds[n++] = u->fan[i];
    return n;
}

static void out_fd(const uint8_t *d, size_t n, void *ud)
{
    /* connected: best effort, losses are repaired */
    if (send((int)(intptr_t)ud, d, n, MSG_DONTWAIT) < 0) {
    }
}

/* The host answered on fd from `from`: that is the path. */
static int adopt(struct up *u, int fd, const struct sockaddr *from,
                 uint64_t now)
{
    struct hd_rudp_cb cb = { out_fd };
    char fs[HD_ADDR_STRLEN];

    if (connect(fd, from, hd_addr_len(from)) != 0 ||
        hd_rudp_new(u->conv, now, &cb, (void *)(intptr_t)fd, &u->rudp) != 0) {
        fail(u, "cannot use the answered socket");
        return -1;
    }
    hd_info(MOD,
            "%s: udp: the host answered from %s%s (%llu ms, %u probes, "
            "%u guesses)",
            u->id, hd_addr_format(from, fs, sizeof(fs)),
            fd == u->fd ? "" : " on one of our extra sockets",
            (unsigned long long)(now - u->t0), u->probes, u->sprayed);
    memcpy(&u->peer, from, hd_addr_len(from));
    close_fan(u, fd);
    if (fd != u->fd) {
        close(u->fd);
        u->fd = fd;
    }
    u->active = 0;
    u->hello_until = now + UP_HELLO_MS;
    return 0;
}

static int is_server(const struct up *u, const struct sockaddr *from)
{
    return hd_addr_same_ip(from, (const struct sockaddr *)&u->srv) &&
           hd_addr_port(from) == hd_addr_port((const struct sockaddr *)&u->srv);
}

/* One datagram d[0..n) on fd from `from`. */
static void datagram(struct up *u, int fd, const struct sockaddr *from,
                     const uint8_t *d, size_t n, uint64_t now)
{
    struct hd_uprobe p;

    if (u->rudp != NULL) {
        if (fd == u->fd)
            hd_rudp_input(u->rudp, d, n, now);
        return;
    }
    if (fd == u->fd && u->pub_port == 0 && is_server(u, from) &&
        !hd_uprobe_is(d, n)) {
        Hbb__RendezvousMessage *m = hbb__rendezvous_message__unpack(NULL, n, d);

        if (m != NULL &&
            m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_RESPONSE &&
            m->test_nat_response->port > 0 &&
            m->test_nat_response->port <= 65535)
            u->pub_port = (uint16_t)m->test_nat_response->port;
        if (m != NULL)
            hbb__rendezvous_message__free_unpacked(m, NULL);
        return;
    }
    if (!u->active || !hd_addr_same_ip(from, (const struct sockaddr *)&u->host))
        return;
    if (hd_uprobe_parse(d, n, &p) == 0) {
        if (p.role != HD_UPROBE_HOST || strcmp(p.id, u->id) != 0)
            return;
        if (p.type == HD_UPROBE_PROBE) {
            /* the host found one of our mappings: answer from there */
            send_to(fd, from, u->probe, u->probe_len);
        } else if (p.conv == u->conv) {
            adopt(u, fd, from, now);
        }
        return;
    }
    /* the answer was lost, but the host's stream is here */
    if (hd_rudp_peek_conv(d, n) == u->conv && adopt(u, fd, from, now) == 0)
        hd_rudp_input(u->rudp, d, n, now);
}

int up_input(struct up *u, int fd, uint64_t now)
{
    uint8_t buf[UP_RX_MAX];
    struct sockaddr_storage from;
    socklen_t len;
    size_t hlen, plen, k;
    ssize_t n;
    int i;

    for (i = 0; i < UP_RX_LOOP && (fd == u->fd || u->active); i++) {
        len = sizeof(from);
        n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
                     (struct sockaddr *)&from, &len);
        if (n < 0)
            break; /* EAGAIN; ICMP errors (ECONNREFUSED) are not fatal */
        hd_addr_normalize(&from);
        datagram(u, fd, (struct sockaddr *)&from, buf, (size_t)n, now);
    }
    if (u->rudp == NULL)
        return 0;
    while (u->hello_len < sizeof(u->hello) &&
           (k = hd_rudp_recv(u->rudp, u->hello + u->hello_len,
                             sizeof(u->hello) - u->hello_len)) > 0)
        u->hello_len += k;
    hd_rudp_update(u->rudp, now); /* acknowledge at once */
    if (hd_frame_parse_header(u->hello, u->hello_len, &hlen, &plen) == 1) {
        if (hlen + plen <= u->hello_len)
            return 1;
        if (hlen + plen > sizeof(u->hello)) {
            fail(u, "the host's first frame is too large");
            return 0;
        }
    }
    if (hd_rudp_error(u->rudp) != 0)
        fail(u, "the stream failed before SignedId");
    return 0;
}

void up_take(struct up *u, int *fd, struct hd_rudp **r)
{
    *fd = u->fd;
    *r = u->rudp;
    u->fd = -1;
    u->rudp = NULL;
    close_fan(u, -1);
    u->active = 0;
}

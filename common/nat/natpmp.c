/*
 * NAT-PMP (RFC 6886), the part of port mapping that asks the default
 * gateway over UDP port 5351: the public address (opcode 0), then a TCP
 * mapping (opcode 2; lifetime 0 removes it).  A request is sent again
 * after 250 ms, then after twice as long each time (section 3.1), until
 * an answer of the right opcode comes or the deadline passes.  The
 * socket is connected to the gateway: a port-unreachable answer (no
 * NAT-PMP there) fails the next receive at once.  Written here, on the
 * OS layer's sockets, so Windows has it too (libnatpmp was not to be had
 * for it).  See map.h.  Any thread (a worker's).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "err.h"
#include "nat/map.h"
#include "os.h"

#define NATPMP_PORT     5351
#define NATPMP_FIRST_MS 250
#define NATPMP_OP_ADDR  0
#define NATPMP_OP_TCP   2
#define NATPMP_ANSWER   128     /* added to the request's opcode */
#define NATPMP_NO_PORT  (-1000) /* no NAT-PMP service: port unreachable */

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static int gateway(const struct hd_nat_map_cfg *cfg, struct sockaddr_in *gw)
{
    uint32_t a;

    memset(gw, 0, sizeof(*gw));
    gw->sin_family = AF_INET;
    gw->sin_port = htons(cfg != NULL && cfg->natpmp_port != 0 ? cfg->natpmp_port
                                                              : NATPMP_PORT);
    if (cfg != NULL && cfg->natpmp_gateway != NULL)
        return inet_pton(AF_INET, cfg->natpmp_gateway, &gw->sin_addr) == 1
                   ? 0
                   : -EINVAL;
    if (os_default_gateway4(&a) != 0)
        return -EHOSTUNREACH;
    gw->sin_addr.s_addr = a;
    return 0;
}

/*
 * Send req (n bytes) to the gateway until an answer to it of at least
 * want bytes arrives (into ans) or deadline: 0, -ETIMEDOUT, NATPMP_NO_PORT
 * or another negative code.  A non-zero result code in the answer is the
 * caller's to read.
 */
static int exchange(const struct sockaddr_in *gw, const uint8_t *req, size_t n,
                    uint8_t *ans, size_t want, uint64_t deadline)
{
    os_sock s = os_socket(AF_INET, SOCK_DGRAM);
    uint64_t now, next = 0;
    int wait = NATPMP_FIRST_MS, r = -ETIMEDOUT;
    uint8_t buf[64];

    if (s == OS_SOCK_BAD)
        return os_sock_error();
    /* non-blocking: a poll that reports an error condition (Wine, after
     * an ICMP port unreachable) must not leave recv waiting for ever */
    if (os_sock_nonblock(s) != 0 ||
        connect(s, (const struct sockaddr *)gw, sizeof(*gw)) != 0) {
        os_sock_close(s);
        return -EHOSTUNREACH;
    }
    while ((now = mono_ms()) < deadline) {
        long got;

        if (now >= next) {
            if (send(s, (const void *)req, (int)n, 0) < 0) {
                r = NATPMP_NO_PORT;
                break;
            }
            next = now + (uint64_t)wait;
            wait *= 2;
        }
        if (os_wait_readable(
                s, (int)((next < deadline ? next : deadline) - now)) <= 0)
            continue;
        if ((got = (long)recv(s, (void *)buf, sizeof(buf), 0)) < 0) {
            if (os_sock_error() == UV_EAGAIN)
                continue;
            r = NATPMP_NO_PORT; /* port unreachable: nobody listens */
            break;
        }
        if ((size_t)got >= want && buf[0] == 0 &&
            buf[1] == NATPMP_ANSWER + req[1]) {
            memcpy(ans, buf, want);
            r = 0;
            break;
        }
    }
    os_sock_close(s);
    return r;
}

static const char *result_text(int code)
{
    switch (code) {
    case 1:
        return "the gateway does not speak this NAT-PMP version";
    case 2:
        return "refused (not authorized)";
    case 3:
        return "the router has no public address";
    case 4:
        return "the router is out of mappings";
    default:
        return "the gateway does not support this request";
    }
}

static const char *error_text(int r)
{
    return r == -ETIMEDOUT       ? "no answer"
           : r == NATPMP_NO_PORT ? "no NAT-PMP service (port unreachable)"
                                 : "error";
}

int hd_nat_pmp_map(const struct hd_nat_map_cfg *cfg, uint16_t in, uint16_t want,
                   uint32_t life, struct hd_nat_lease *out, char *why,
                   size_t cap)
{
    int ms = cfg != NULL && cfg->natpmp_ms > 0 ? cfg->natpmp_ms
                                               : HD_NAT_MAP_NATPMP_MS;
    uint64_t deadline = mono_ms() + (uint64_t)ms;
    struct sockaddr_in gw;
    uint8_t req[12] = { 0, NATPMP_OP_ADDR }, ans[16];
    struct in_addr pub;
    int r, code;

    if ((r = gateway(cfg, &gw)) != 0) {
        snprintf(why, cap, "NAT-PMP: no gateway");
        return r;
    }
    /* the public address first (logged; a router without one says so) */
    if ((r = exchange(&gw, req, 2, ans, 12, deadline)) != 0) {
        snprintf(why, cap, "NAT-PMP: %s", error_text(r));
        return r == -ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
    }
    if ((code = get16(ans + 2)) != 0) {
        snprintf(why, cap, "NAT-PMP: %s", result_text(code));
        return -EHOSTUNREACH;
    }
    memcpy(&pub, ans + 8, 4);
    inet_ntop(AF_INET, &pub, out->external_ip, sizeof(out->external_ip));
    req[1] = NATPMP_OP_TCP;
    put16(req + 4, in);
    put16(req + 6, want);
    put32(req + 8, life);
    if ((r = exchange(&gw, req, 12, ans, 16, deadline)) != 0) {
        snprintf(why, cap, "NAT-PMP: %s", error_text(r));
        return r == -ETIMEDOUT ? -ETIMEDOUT : -EPERM;
    }
    if ((code = get16(ans + 2)) != 0) {
        snprintf(why, cap, "NAT-PMP: %s", result_text(code));
        return -EPERM;
    }
    if (get16(ans + 8) != in || get16(ans + 10) == 0 || get32(ans + 12) == 0) {
        snprintf(why, cap, "NAT-PMP: unexpected answer");
        return HD_EPROTO;
    }
    out->method = HD_NAT_MAP_NATPMP;
    out->internal_port = in;
    out->external_port = get16(ans + 10);
    out->lifetime_s = get32(ans + 12);
    return 0;
}

int hd_nat_pmp_unmap(const struct hd_nat_map_cfg *cfg,
                     const struct hd_nat_lease *l)
{
    struct sockaddr_in gw;
    /* section 3.4: lifetime 0 and suggested external port 0 */
    uint8_t req[12] = { 0, NATPMP_OP_TCP }, ans[16];
    int r;

    if ((r = gateway(cfg, &gw)) != 0)
        return r;
    put16(req + 4, l->internal_port);
    r = exchange(&gw, req, 12, ans, 16, mono_ms() + 500);
    return r == 0 ? 0 : r == -ETIMEDOUT ? -ETIMEDOUT : -EIO;
}

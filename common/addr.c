/*
 * Address helpers.  The mangling follows the reference (RustDesk
 * AddrMangle) bit for bit; the decoder is stricter than the reference,
 * which panics or wraps on values no encoder produces: those are refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "addr.h"
#include "err.h"

typedef unsigned __int128 addr_u128;

/* Longest host part accepted in text: a DNS name (253) with margin. */
#define ADDR_HOST_MAX 256

uint64_t hd_addr_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

socklen_t hd_addr_len(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    switch (sa->sa_family) {
    case AF_INET:
        return sizeof(struct sockaddr_in);
    case AF_INET6:
        return sizeof(struct sockaddr_in6);
    }
    return 0;
}

int hd_addr_normalize(struct sockaddr_storage *ss)
{
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    struct sockaddr_in s4;

    if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return 0;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = s6->sin6_port;
    memcpy(&s4.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &s4, sizeof(s4));
    return 1;
}

/* Copy sa into ss as its IPv4 form if mapped.  Returns 0 or -EAFNOSUPPORT. */
static int addr_copy_normal(const struct sockaddr *sa,
                            struct sockaddr_storage *ss)
{
    socklen_t len = hd_addr_len(sa);

    memset(ss, 0, sizeof(*ss));
    if (len == 0)
        return -EAFNOSUPPORT;
    memcpy(ss, sa, len);
    hd_addr_normalize(ss);
    return 0;
}

size_t hd_addr_mangle(const struct sockaddr *sa, uint64_t now_us,
                      uint8_t out[HD_ADDR_MANGLED_MAX])
{
    struct sockaddr_storage ss;
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
    const uint8_t *o;
    uint32_t tm = (uint32_t)now_us, ip;
    uint16_t port;
    addr_u128 v;
    size_t n;

    if (addr_copy_normal(sa, &ss) != 0)
        return 0;
    if (ss.ss_family == AF_INET6) {
        port = ntohs(s6->sin6_port);
        memcpy(out, s6->sin6_addr.s6_addr, 16);
        out[16] = (uint8_t)port;
        out[17] = (uint8_t)(port >> 8);
        return 18;
    }
    o = (const uint8_t *)&s4->sin_addr;
    ip = (uint32_t)o[0] | (uint32_t)o[1] << 8 | (uint32_t)o[2] << 16 |
         (uint32_t)o[3] << 24;
    port = ntohs(s4->sin_port);
    v = ((addr_u128)ip + tm) << 49 | (addr_u128)tm << 17 |
        ((addr_u128)port + (tm & 0xFFFF));
    for (n = 0; n < 16; n++)
        out[n] = (uint8_t)(v >> (8 * n));
    while (n > 1 && out[n - 1] == 0)
        n--;
    return n;
}

int hd_addr_unmangle(const uint8_t *in, size_t n, struct sockaddr_storage *out)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
    addr_u128 v = 0, hi, lo, tm;
    uint8_t o[4];
    uint32_t ip;

    memset(out, 0, sizeof(*out));
    if (n == 0 || n == 17 || n > HD_ADDR_MANGLED_MAX)
        return HD_EPROTO;
    if (n == 18) {
        s6->sin6_family = AF_INET6;
        memcpy(s6->sin6_addr.s6_addr, in, 16);
        s6->sin6_port = htons((uint16_t)(in[16] | in[17] << 8));
        hd_addr_normalize(out);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        v |= (addr_u128)in[i] << (8 * i);
    /* ip + tm < 2^33, so an encoder never sets bits 82 and up. */
    if ((v >> 82) != 0)
        return HD_EPROTO;
    tm = (v >> 17) & 0xFFFFFFFFu;
    hi = v >> 49;
    lo = v & 0x1FFFF;
    if (hi < tm || hi - tm > 0xFFFFFFFFu || lo < (tm & 0xFFFF) ||
        lo - (tm & 0xFFFF) > 0xFFFF)
        return HD_EPROTO;
    ip = (uint32_t)(hi - tm);
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)(lo - (tm & 0xFFFF)));
    o[0] = (uint8_t)ip;
    o[1] = (uint8_t)(ip >> 8);
    o[2] = (uint8_t)(ip >> 16);
    o[3] = (uint8_t)(ip >> 24);
    memcpy(&s4->sin_addr, o, 4);
    return 0;
}

uint16_t hd_addr_port(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

void hd_addr_set_port(struct sockaddr *sa, uint16_t port)
{
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons(port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

int hd_addr_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
    struct sockaddr_storage x, y;

    if (addr_copy_normal(a, &x) != 0 || addr_copy_normal(b, &y) != 0 ||
        x.ss_family != y.ss_family)
        return 0;
    if (x.ss_family == AF_INET)
        return memcmp(&((struct sockaddr_in *)&x)->sin_addr,
                      &((struct sockaddr_in *)&y)->sin_addr, 4) == 0;
    return memcmp(&((struct sockaddr_in6 *)&x)->sin6_addr,
                  &((struct sockaddr_in6 *)&y)->sin6_addr, 16) == 0;
}

/* Text of the address (IPv4 form if mapped), scope included; "?" else. */
static void addr_ip_text(const struct sockaddr_storage *ss, char *out,
                         size_t cap, int *v6)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    char ip[INET6_ADDRSTRLEN], ifname[IF_NAMESIZE];

    *v6 = 0;
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out,
                  (socklen_t)cap);
        return;
    }
    if (ss->ss_family != AF_INET6) {
        snprintf(out, cap, "?");
        return;
    }
    *v6 = 1;
    inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
    if (s6->sin6_scope_id == 0)
        snprintf(out, cap, "%s", ip);
    else if (if_indextoname(s6->sin6_scope_id, ifname) != NULL)
        snprintf(out, cap, "%s%%%s", ip, ifname);
    else
        snprintf(out, cap, "%s%%%u", ip, (unsigned)s6->sin6_scope_id);
}

/* The address as text: "ip:port" ("[ip]:port" for IPv6) or the IP alone. */
static const char *addr_text(const struct sockaddr *sa, char *buf, size_t cap,
                             int with_port)
{
    struct sockaddr_storage ss;
    char ip[HD_ADDR_STRLEN];
    int v6;

    if (cap == 0)
        return buf;
    if (addr_copy_normal(sa, &ss) != 0) {
        snprintf(buf, cap, "?");
        return buf;
    }
    addr_ip_text(&ss, ip, sizeof(ip), &v6);
    if (!with_port)
        snprintf(buf, cap, "%s", ip);
    else
        snprintf(buf, cap, v6 ? "[%s]:%u" : "%s:%u", ip,
                 (unsigned)hd_addr_port((struct sockaddr *)&ss));
    return buf;
}

const char *hd_addr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
    return addr_text(sa, buf, cap, 1);
}

const char *hd_addr_format_ip(const struct sockaddr *sa, char *buf, size_t cap)
{
    return addr_text(sa, buf, cap, 0);
}

/* Decimal 0..65535, digits only.  Returns 0 or -EINVAL. */
static int parse_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 5)
            return -EINVAL;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (i == 0 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/*
 * Numeric host (no brackets, no port) into ss: a dotted quad, or IPv6
 * with an optional %scope (interface name or number).  Returns 0/-EINVAL.
 */
static int parse_numeric_host(const char *host, struct sockaddr_storage *ss)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    char ip[ADDR_HOST_MAX];
    const char *pct;
    size_t len;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        return 0;
    }
    pct = strchr(host, '%');
    len = pct ? (size_t)(pct - host) : strlen(host);
    if (len >= sizeof(ip))
        return -EINVAL;
    memcpy(ip, host, len);
    ip[len] = '\0';
    if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1) {
        memset(ss, 0, sizeof(*ss));
        return -EINVAL;
    }
    s6->sin6_family = AF_INET6;
    if (pct != NULL) {
        const char *scope = pct + 1;
        char *end;
        unsigned long idx;

        if (*scope == '\0' || strlen(scope) >= IF_NAMESIZE)
            goto bad;
        errno = 0;
        idx = strtoul(scope, &end, 10);
        if (*scope >= '0' && *scope <= '9' && *end == '\0') {
            if (errno != 0 || idx > UINT32_MAX)
                goto bad;
            s6->sin6_scope_id = (uint32_t)idx;
        } else if ((s6->sin6_scope_id = if_nametoindex(scope)) == 0)
            goto bad;
    }
    return 0;
bad:
    memset(ss, 0, sizeof(*ss));
    return -EINVAL;
}

/*
 * Split "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 (two or
 * more colons) into host and port.  Returns 0 or -EINVAL.
 */
static int split_host_port(const char *s, char host[ADDR_HOST_MAX],
                           uint16_t *port, int *bracketed)
{
    const char *h = s, *colon, *p = NULL;
    size_t hlen;

    *bracketed = 0;
    if (s == NULL || *s == '\0')
        return -EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL)
            return -EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        if (close[1] == ':')
            p = close + 2;
        else if (close[1] != '\0')
            return -EINVAL;
        *bracketed = 1;
    } else if ((colon = strchr(s, ':')) != NULL &&
               strchr(colon + 1, ':') == NULL) {
        hlen = (size_t)(colon - s);
        p = colon + 1;
    } else {
        hlen = strlen(s);
    }
    if (hlen == 0 || hlen >= ADDR_HOST_MAX)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (p != NULL && parse_port(p, port) != 0)
        return -EINVAL;
    return 0;
}

int hd_relay_fallback(const char *relay, const char *server, char *out,
                      size_t cap)
{
    char host[ADDR_HOST_MAX], rhost[ADDR_HOST_MAX];
    uint16_t port = HD_RELAY_PORT, sport = 0;
    int bracketed, n;

    if (relay == NULL || split_host_port(relay, rhost, &port, &bracketed) != 0)
        port = HD_RELAY_PORT;
    if (split_host_port(server, host, &sport, &bracketed) != 0)
        return -EINVAL;
    n = snprintf(out, cap, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
                 (unsigned)port);
    return n > 0 && (size_t)n < cap ? 0 : -EINVAL;
}

int hd_addr_parse(const char *s, uint16_t default_port,
                  struct sockaddr_storage *out)
{
    char host[ADDR_HOST_MAX];
    uint16_t port = default_port;
    int bracketed, r;

    memset(out, 0, sizeof(*out));
    if ((r = split_host_port(s, host, &port, &bracketed)) != 0)
        return r;
    if ((r = parse_numeric_host(host, out)) != 0)
        return r;
    if (bracketed && out->ss_family != AF_INET6) {
        memset(out, 0, sizeof(*out));
        return -EINVAL;
    }
    hd_addr_normalize(out);
    hd_addr_set_port((struct sockaddr *)out, port);
    return 0;
}

/* Map a getaddrinfo error to a libuv code (they pass through err.h). */
static int addr_gai_error(int e)
{
    switch (e) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
        return UV_EAI_NONAME;
    case EAI_AGAIN:
        return UV_EAI_AGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return UV_EAI_FAMILY;
#ifdef EAI_SYSTEM
    case EAI_SYSTEM:
        return errno > 0 ? -errno : UV_EAI_FAIL;
#endif
    }
    return UV_EAI_FAIL;
}

int hd_addr_resolve(const char *s, uint16_t default_port,
                    struct sockaddr_storage *out)
{
    char host[ADDR_HOST_MAX];
    uint16_t port = default_port;
    struct addrinfo hints, *res = NULL, *ai;
    int bracketed, r;

    memset(out, 0, sizeof(*out));
    if ((r = split_host_port(s, host, &port, &bracketed)) != 0)
        return r;
    if (parse_numeric_host(host, out) == 0) {
        if (bracketed && out->ss_family != AF_INET6) {
            r = -EINVAL;
            goto out;
        }
        hd_addr_normalize(out);
        hd_addr_set_port((struct sockaddr *)out, port);
        return 0;
    }
    if (bracketed) {
        r = -EINVAL;
        goto out;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((r = getaddrinfo(host, NULL, &hints, &res)) != 0) {
        r = addr_gai_error(r);
        goto out;
    }
    r = UV_EAI_NONAME;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            (size_t)ai->ai_addrlen <= sizeof(*out) &&
            (size_t)ai->ai_addrlen >= (size_t)hd_addr_len(ai->ai_addr)) {
            memcpy(out, ai->ai_addr, hd_addr_len(ai->ai_addr));
            hd_addr_normalize(out);
            hd_addr_set_port((struct sockaddr *)out, port);
            r = 0;
            break;
        }
    }
out:
    if (res != NULL)
        freeaddrinfo(res);
    if (r != 0)
        memset(out, 0, sizeof(*out));
    return r;
}

/* Clear the bits after prefix in a (len bytes). */
static void cidr_mask(uint8_t *a, size_t len, unsigned prefix)
{
    for (size_t i = 0; i < len; i++) {
        unsigned keep = prefix >= 8 * (i + 1) ? 8
                        : prefix > 8 * i      ? prefix - 8 * (unsigned)i
                                              : 0;

        a[i] &= (uint8_t)(0xFF00u >> keep);
    }
}

int hd_cidr_parse(const char *s, struct hd_cidr *c)
{
    char host[ADDR_HOST_MAX];
    const char *slash;
    struct sockaddr_storage ss;
    size_t len;
    unsigned max, prefix;
    uint16_t p16;

    memset(c, 0, sizeof(*c));
    if (s == NULL)
        return -EINVAL;
    slash = strchr(s, '/');
    len = slash ? (size_t)(slash - s) : strlen(s);
    if (len == 0 || len >= sizeof(host) || memchr(s, '%', len) != NULL)
        return -EINVAL;
    memcpy(host, s, len);
    host[len] = '\0';
    if (parse_numeric_host(host, &ss) != 0)
        return -EINVAL;
    max = ss.ss_family == AF_INET ? 32 : 128;
    prefix = max;
    if (slash != NULL) {
        if (parse_port(slash + 1, &p16) != 0 || p16 > max)
            return -EINVAL;
        prefix = p16;
    }
    if (ss.ss_family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr) &&
        prefix >= 96) {
        hd_addr_normalize(&ss);
        prefix -= 96;
    }
    c->family = ss.ss_family;
    c->prefix = prefix;
    if (c->family == AF_INET)
        memcpy(c->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    else
        memcpy(c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    cidr_mask(c->addr, c->family == AF_INET ? 4 : 16, c->prefix);
    return 0;
}

int hd_cidr_contains(const struct hd_cidr *c, const struct sockaddr *sa)
{
    struct sockaddr_storage ss;
    uint8_t a[16];
    size_t len;

    if (addr_copy_normal(sa, &ss) != 0 || ss.ss_family != c->family)
        return 0;
    if (c->family == AF_INET) {
        len = 4;
        memcpy(a, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else {
        len = 16;
        memcpy(a, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
    cidr_mask(a, len, c->prefix);
    return memcmp(a, c->addr, len) == 0;
}

int hd_addr_in_cidr(const struct sockaddr *sa, const char *cidr)
{
    struct hd_cidr c;
    int r;

    if ((r = hd_cidr_parse(cidr, &c)) != 0)
        return r;
    return hd_cidr_contains(&c, sa);
}

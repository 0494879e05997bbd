/* Unit tests for common/addr: mangling vectors, text forms, CIDR masks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"

#include "addr.h"
#include "err.h"
#include "tests/harness.h"

static uint64_t rng_state = 0xD1B54A32D192ED03ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;

    memset(&ss, 0, sizeof(ss));
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    if (inet_pton(AF_INET, ip, &s->sin_addr) != 1)
        abort();
    return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip, &s->sin6_addr) != 1)
        abort();
    return ss;
}

#define SA(ss) ((struct sockaddr *)&(ss))

struct mvec {
    const char *ip;
    uint16_t port;
    uint64_t now_us;
    size_t n;
    uint8_t bytes[16];
};

/*
 * Computed with Python integers from the formula in PROTOCOL.md section 2:
 * v = ((ip + tm) << 49) | (tm << 17) | (port + (tm & 0xFFFF)), LE, trimmed.
 */
static const struct mvec mvectors[] = {
    /* tm = 1700000000123456 mod 2^32 = 0x18202240 */
    { "203.0.113.7",
      21116,
      1700000000123456ull,
      10,
      { 0xbc, 0x74, 0x80, 0x44, 0x40, 0x30, 0x16, 0x46, 0x22, 0x3f } },
    { "10.0.0.1",
      0,
      0,
      10,
      { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x02 } },
    { "1.0.0.0", 0, 0, 7, { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02 } },
    { "255.255.255.255",
      65535,
      0xFFFFFFFFull,
      11,
      { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, 0xff, 0xff, 0xff, 0x03 } },
    /* all zero: the reference sends nothing, we keep one byte */
    { "0.0.0.0", 0, 0, 1, { 0x00 } },
};

static void mangle_known_vectors(void)
{
    for (size_t i = 0; i < sizeof(mvectors) / sizeof(mvectors[0]); i++) {
        const struct mvec *v = &mvectors[i];
        struct sockaddr_storage a = v4(v->ip, v->port), back;
        uint8_t out[HD_ADDR_MANGLED_MAX];
        char hex[64], txt[HD_ADDR_STRLEN];
        size_t n;

        n = hd_addr_mangle(SA(a), v->now_us, out);
        if (n != v->n || memcmp(out, v->bytes, n) != 0) {
            ht_hex(hex, out, n);
            ht_fail(__FILE__, __LINE__, "%s:%u: got %zu bytes %s", v->ip,
                    v->port, n, hex);
        }
        HT_EQ_INT(hd_addr_unmangle(v->bytes, v->n, &back), 0);
        hd_addr_format(SA(back), txt, sizeof(txt));
        HT_EQ_INT(back.ss_family, AF_INET);
        HT_EQ_INT(hd_addr_port(SA(back)), v->port);
        HT_CHECK(hd_addr_same_ip(SA(a), SA(back)));
    }
    /* only the low 32 bits of the time matter (u32 truncation) */
    {
        struct sockaddr_storage a = v4("203.0.113.7", 21116);
        uint8_t x[HD_ADDR_MANGLED_MAX], y[HD_ADDR_MANGLED_MAX];
        size_t nx = hd_addr_mangle(SA(a), 0x18202240ull, x);
        size_t ny = hd_addr_mangle(SA(a), 0x718202240ull, y);

        HT_EQ_INT(nx, 10);
        HT_EQ_INT(ny, nx);
        HT_EQ_MEM(x, mvectors[0].bytes, 10);
        HT_EQ_MEM(y, mvectors[0].bytes, 10);
    }
}

static void mangle_v6_and_mapped(void)
{
    static const uint8_t want6[18] = { 0x20, 0x01, 0x0d, 0xb8, 0,    0,
                                       0,    0,    0,    0,    0,    0,
                                       0,    0,    0,    1,    0xbb, 0x01 };
    struct sockaddr_storage a = v6("2001:db8::1", 443), back;
    struct sockaddr_storage m = v6("::ffff:203.0.113.7", 21116);
    uint8_t out[HD_ADDR_MANGLED_MAX];
    size_t n;

    HT_EQ_INT(hd_addr_mangle(SA(a), 12345, out), 18);
    HT_EQ_MEM(out, want6, 18);
    HT_EQ_INT(hd_addr_unmangle(out, 18, &back), 0);
    HT_EQ_INT(back.ss_family, AF_INET6);
    HT_EQ_INT(hd_addr_port(SA(back)), 443);
    HT_CHECK(hd_addr_same_ip(SA(a), SA(back)));

    /* an IPv4 peer seen on a dual-stack socket is sent in the v4 form */
    n = hd_addr_mangle(SA(m), mvectors[0].now_us, out);
    HT_EQ_INT(n, mvectors[0].n);
    HT_EQ_MEM(out, mvectors[0].bytes, mvectors[0].n);

    /* and an 18-byte v4-mapped form from a peer comes back as AF_INET */
    {
        uint8_t mapped[18] = { 0, 0,    0,    0,   0, 0,   0, 0,    0,
                               0, 0xff, 0xff, 203, 0, 113, 7, 0x7c, 0x52 };
        struct sockaddr_storage want = v4("203.0.113.7", 21116);

        HT_EQ_INT(hd_addr_unmangle(mapped, 18, &back), 0);
        HT_EQ_INT(back.ss_family, AF_INET);
        HT_EQ_INT(hd_addr_port(SA(back)), 21116);
        HT_CHECK(hd_addr_same_ip(SA(back), SA(want)));
    }

    /* unsupported family */
    {
        struct sockaddr_storage u;

        memset(&u, 0, sizeof(u));
        u.ss_family = AF_UNIX;
        HT_EQ_INT(hd_addr_mangle(SA(u), 1, out), 0);
    }
}

static void mangle_round_trips(void)
{
    uint8_t out[HD_ADDR_MANGLED_MAX];
    int bad = 0;

    for (int i = 0; i < 20000 && bad < 5; i++) {
        struct sockaddr_storage a, back;
        uint64_t r = rng(), now = rng();
        uint16_t port = (uint16_t)(r >> 32);
        size_t n;

        memset(&a, 0, sizeof(a));
        if (i % 2 == 0) {
            struct sockaddr_in *s = (struct sockaddr_in *)&a;
            uint32_t ip = (uint32_t)r;

            s->sin_family = AF_INET;
            memcpy(&s->sin_addr, &ip, 4);
            s->sin_port = htons(port);
        } else {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a;
            uint64_t hi = rng(), lo = rng();

            s->sin6_family = AF_INET6;
            memcpy(s->sin6_addr.s6_addr, &hi, 8);
            memcpy(s->sin6_addr.s6_addr + 8, &lo, 8);
            s->sin6_addr.s6_addr[0] |= 0x20; /* never v4-mapped */
            s->sin6_port = htons(port);
        }
        /* small times and ports too, where trimming matters most */
        if (i % 7 == 0)
            now &= 0xFF;
        if (i % 11 == 0)
            hd_addr_set_port(SA(a), (uint16_t)(port & 0x3));
        n = hd_addr_mangle(SA(a), now, out);
        if (i % 2 == 0) {
            /* trimmed: never a trailing zero unless the whole value is 0 */
            if (n < 1 || n > 11 || (n > 1 && out[n - 1] == 0))
                bad++;
        } else if (n != 18) {
            bad++;
        }
        if (hd_addr_unmangle(out, n, &back) != 0 ||
            back.ss_family != a.ss_family ||
            !hd_addr_same_ip(SA(a), SA(back)) ||
            hd_addr_port(SA(a)) != hd_addr_port(SA(back))) {
            char t[HD_ADDR_STRLEN];

            ht_fail(__FILE__, __LINE__, "round trip of %s at %llu failed",
                    hd_addr_format(SA(a), t, sizeof(t)),
                    (unsigned long long)now);
            bad++;
        }
    }
    HT_EQ_INT(bad, 0);
}

static void unmangle_bad_input(void)
{
    struct sockaddr_storage out;
    uint8_t buf[20];

    memset(buf, 0xFF, sizeof(buf));
    HT_EQ_INT(hd_addr_unmangle(buf, 0, &out), HD_EPROTO);
    HT_EQ_INT(out.ss_family, 0);
    HT_EQ_INT(hd_addr_unmangle(buf, 17, &out), HD_EPROTO);
    HT_EQ_INT(hd_addr_unmangle(buf, 19, &out), HD_EPROTO);
    /* bits 82 and up can only come from a broken or hostile encoder */
    HT_EQ_INT(hd_addr_unmangle(buf, 16, &out), HD_EPROTO);
    HT_EQ_INT(hd_addr_unmangle(buf, 11, &out), HD_EPROTO);
    /* ip + tm smaller than tm: 2 bytes with tm bits but no ip bits */
    {
        const uint8_t x[5] = { 0, 0, 0x02, 0, 0 }; /* tm = 1, hi = 0 */

        HT_EQ_INT(hd_addr_unmangle(x, 5, &out), HD_EPROTO);
    }
    /* port field below (tm & 0xFFFF) */
    {
        const uint8_t x[7] = { 0, 0, 0x02, 0, 0, 0, 0x02 }; /* tm 1, lo 0 */

        HT_EQ_INT(hd_addr_unmangle(x, 7, &out), HD_EPROTO);
    }
    /* untrimmed trailing zeros are still a valid encoding */
    {
        uint8_t x[16];

        memset(x, 0, sizeof(x));
        memcpy(x, mvectors[0].bytes, mvectors[0].n);
        HT_EQ_INT(hd_addr_unmangle(x, 16, &out), 0);
        HT_EQ_INT(hd_addr_port(SA(out)), 21116);
    }
}

static void format_addresses(void)
{
    struct sockaddr_storage a = v4("1.2.3.4", 5), b = v6("::1", 5);
    struct sockaddr_storage m = v6("::ffff:10.1.2.3", 80), u;
    char buf[HD_ADDR_STRLEN], tiny[6];

    HT_EQ_STR(hd_addr_format(SA(a), buf, sizeof(buf)), "1.2.3.4:5");
    HT_EQ_STR(hd_addr_format(SA(b), buf, sizeof(buf)), "[::1]:5");
    HT_EQ_STR(hd_addr_format(SA(m), buf, sizeof(buf)), "10.1.2.3:80");
    HT_EQ_STR(hd_addr_format_ip(SA(a), buf, sizeof(buf)), "1.2.3.4");
    HT_EQ_STR(hd_addr_format_ip(SA(b), buf, sizeof(buf)), "::1");
    HT_EQ_STR(hd_addr_format_ip(SA(m), buf, sizeof(buf)), "10.1.2.3");
    {
        struct sockaddr_storage l = v6("fe80::1", 21116);

        ((struct sockaddr_in6 *)&l)->sin6_scope_id = 999999;
        HT_EQ_STR(hd_addr_format(SA(l), buf, sizeof(buf)),
                  "[fe80::1%999999]:21116");
    }
    /* truncated, still terminated */
    HT_EQ_STR(hd_addr_format(SA(a), tiny, sizeof(tiny)), "1.2.3");
    memset(&u, 0, sizeof(u));
    u.ss_family = AF_UNIX;
    HT_EQ_STR(hd_addr_format(SA(u), buf, sizeof(buf)), "?");
    HT_EQ_STR(hd_addr_format(NULL, buf, sizeof(buf)), "?");
    HT_EQ_INT(hd_addr_len(SA(a)), sizeof(struct sockaddr_in));
    HT_EQ_INT(hd_addr_len(SA(b)), sizeof(struct sockaddr_in6));
    HT_EQ_INT(hd_addr_len(SA(u)), 0);
    HT_EQ_INT(hd_addr_port(SA(u)), 0);
}

struct pvec {
    const char *in;
    const char *out; /* hd_addr_format of the result; NULL = must fail */
};

static const struct pvec pvectors[] = {
    { "1.2.3.4", "1.2.3.4:21116" },
    { "1.2.3.4:5", "1.2.3.4:5" },
    { "1.2.3.4:65535", "1.2.3.4:65535" },
    { "0.0.0.0:0", "0.0.0.0:0" },
    { "::1", "[::1]:21116" },
    { "[::1]", "[::1]:21116" },
    { "[::1]:5", "[::1]:5" },
    { "2001:db8::7", "[2001:db8::7]:21116" },
    { "[2001:db8::7]:443", "[2001:db8::7]:443" },
    { "::ffff:1.2.3.4", "1.2.3.4:21116" },
    { "[fe80::1%999999]:9", "[fe80::1%999999]:9" },
    { "", NULL },
    { ":5", NULL },
    { "1.2.3.4:", NULL },
    { "1.2.3.4:65536", NULL },
    { "1.2.3.4:-1", NULL },
    { "1.2.3.4:5x", NULL },
    { "1.2.3.4:000005", NULL },
    { "1.2.3", NULL },
    { "1.2.3.256", NULL },
    { "127.1", NULL },
    { "0x7f.0.0.1", NULL },
    { "1.2.3.4 ", NULL },
    { "[1.2.3.4]:5", NULL },
    { "[::1", NULL },
    { "[::1]5", NULL },
    { "[::1]:", NULL },
    { "[]:5", NULL },
    { "::1::2", NULL },
    { "fe80::1%", NULL },
    { "localhost", NULL },
    { "localhost:80", NULL },
};

static void parse_and_format(void)
{
    for (size_t i = 0; i < sizeof(pvectors) / sizeof(pvectors[0]); i++) {
        const struct pvec *v = &pvectors[i];
        struct sockaddr_storage ss, again;
        char buf[HD_ADDR_STRLEN];
        int r = hd_addr_parse(v->in, 21116, &ss);

        if (v->out == NULL) {
            if (r != -EINVAL)
                ht_fail(__FILE__, __LINE__, "\"%s\" accepted (%d)", v->in, r);
            HT_EQ_INT(ss.ss_family, 0);
            continue;
        }
        if (r != 0) {
            ht_fail(__FILE__, __LINE__, "\"%s\" refused: %d", v->in, r);
            continue;
        }
        HT_EQ_STR(hd_addr_format(SA(ss), buf, sizeof(buf)), v->out);
        /* what format writes, parse reads back to the same address */
        HT_EQ_INT(hd_addr_parse(buf, 1, &again), 0);
        HT_EQ_INT(memcmp(&ss, &again, sizeof(ss)), 0);
    }
}

static void resolve_names(void)
{
    struct sockaddr_storage ss, lo4 = v4("127.0.0.1", 0), lo6 = v6("::1", 0);
    int r;

    HT_EQ_INT(hd_addr_resolve("1.2.3.4:5", 9, &ss), 0);
    HT_EQ_INT(hd_addr_port(SA(ss)), 5);
    HT_EQ_INT(hd_addr_resolve("[::1]", 9, &ss), 0);
    HT_EQ_INT(hd_addr_port(SA(ss)), 9);
    HT_EQ_INT(hd_addr_resolve("[localhost]:5", 9, &ss), -EINVAL);
    HT_EQ_INT(hd_addr_resolve("[1.2.3.4]:5", 9, &ss), -EINVAL);
    HT_EQ_INT(hd_addr_resolve("localhost:99999", 9, &ss), -EINVAL);
    r = hd_addr_resolve("localhost:80", 9, &ss);
    HT_EQ_INT(r, 0);
    if (r == 0) {
        HT_EQ_INT(hd_addr_port(SA(ss)), 80);
        HT_CHECK(hd_addr_same_ip(SA(ss), SA(lo4)) ||
                 hd_addr_same_ip(SA(ss), SA(lo6)));
    }
}

static void ports_and_same_ip(void)
{
    struct sockaddr_storage a = v4("192.0.2.1", 1), b = v4("192.0.2.1", 2);
    struct sockaddr_storage c = v4("192.0.2.2", 1);
    struct sockaddr_storage m = v6("::ffff:192.0.2.1", 3);
    struct sockaddr_storage x = v6("2001:db8::1", 4), y = v6("2001:db8::1", 5);
    struct sockaddr_storage z = v6("2001:db8::2", 4);

    HT_CHECK(hd_addr_same_ip(SA(a), SA(b)));
    HT_CHECK(!hd_addr_same_ip(SA(a), SA(c)));
    HT_CHECK(hd_addr_same_ip(SA(a), SA(m)));
    HT_CHECK(hd_addr_same_ip(SA(m), SA(b)));
    HT_CHECK(hd_addr_same_ip(SA(x), SA(y)));
    HT_CHECK(!hd_addr_same_ip(SA(x), SA(z)));
    HT_CHECK(!hd_addr_same_ip(SA(a), SA(x)));
    hd_addr_set_port(SA(a), 65535);
    HT_EQ_INT(hd_addr_port(SA(a)), 65535);
    hd_addr_set_port(SA(x), 21117);
    HT_EQ_INT(hd_addr_port(SA(x)), 21117);
    HT_EQ_INT(hd_addr_normalize(&m), 1);
    HT_EQ_INT(m.ss_family, AF_INET);
    HT_EQ_INT(hd_addr_port(SA(m)), 3);
    HT_EQ_INT(hd_addr_normalize(&m), 0);
    HT_EQ_INT(hd_addr_normalize(&x), 0);
    HT_EQ_INT(x.ss_family, AF_INET6);
    {
        uint64_t t = hd_addr_now_us();

        HT_CHECK(t > 1600000000ull * 1000000u); /* after 2020 */
    }
}

/* A handed-out relay that does not resolve: the server's host, the
 * relay's port (hbbs -r rustdesk-hbbr:21117 seen from outside). */
static void relay_fallback(void)
{
    char out[64];

    HT_EQ_INT(hd_relay_fallback("rustdesk-hbbr:21117", "nas.example.org", out,
                                sizeof(out)),
              0);
    HT_EQ_STR(out, "nas.example.org:21117");
    HT_EQ_INT(
        hd_relay_fallback("hbbr.lan:4000", "192.0.2.7:21116", out, sizeof(out)),
        0);
    HT_EQ_STR(out, "192.0.2.7:4000");
    HT_EQ_INT(
        hd_relay_fallback("hbbr", "[2001:db8::1]:21116", out, sizeof(out)), 0);
    HT_EQ_STR(out, "[2001:db8::1]:21117");
    HT_EQ_INT(hd_relay_fallback("hbbr", "2001:db8::1", out, sizeof(out)), 0);
    HT_EQ_STR(out, "[2001:db8::1]:21117");
    HT_EQ_INT(hd_relay_fallback("hbbr:21117", "", out, sizeof(out)), -EINVAL);
    HT_EQ_INT(hd_relay_fallback("hbbr", "nas.example.org", out, 8), -EINVAL);
}

static void cidr_masks(void)
{
    struct hd_cidr c;
    struct sockaddr_storage in1 = v4("192.168.5.4", 1);
    struct sockaddr_storage out1 = v4("192.169.0.1", 1);
    struct sockaddr_storage mapped = v6("::ffff:192.168.200.1", 1);
    struct sockaddr_storage six = v6("fd12::1", 1);
    static const char *const bad[] = {
        "",           "/8",  "1.2.3.4/", "1.2.3.4/33",  "::/129",
        "1.2.3.4/-1", "abc", "1.2.3/8",  "1.2.3.4/8/8", "1.2.3.4/x",
        "fe80::%1/64"
    };

    HT_EQ_INT(hd_cidr_parse("192.168.0.0/16", &c), 0);
    HT_EQ_INT(c.family, AF_INET);
    HT_EQ_INT(c.prefix, 16);
    HT_EQ_INT(hd_cidr_contains(&c, SA(in1)), 1);
    HT_EQ_INT(hd_cidr_contains(&c, SA(out1)), 0);
    HT_EQ_INT(hd_cidr_contains(&c, SA(mapped)), 1);
    HT_EQ_INT(hd_cidr_contains(&c, SA(six)), 0);

    /* host bits are cleared */
    HT_EQ_INT(hd_cidr_parse("192.168.77.9/16", &c), 0);
    HT_EQ_INT(c.addr[2], 0);
    HT_EQ_INT(c.addr[3], 0);
    HT_EQ_INT(hd_cidr_contains(&c, SA(in1)), 1);

    /* odd prefix: 10.0.0.0/9 holds 10.127.x but not 10.128.x */
    HT_EQ_INT(hd_addr_in_cidr(SA(in1), "10.0.0.0/9"), 0);
    {
        struct sockaddr_storage p = v4("10.127.255.255", 0);
        struct sockaddr_storage q = v4("10.128.0.0", 0);

        HT_EQ_INT(hd_addr_in_cidr(SA(p), "10.0.0.0/9"), 1);
        HT_EQ_INT(hd_addr_in_cidr(SA(q), "10.0.0.0/9"), 0);
        HT_EQ_INT(hd_addr_in_cidr(SA(q), "10.128.0.0"), 1); /* /32 */
        HT_EQ_INT(hd_addr_in_cidr(SA(p), "10.128.0.0"), 0);
        HT_EQ_INT(hd_addr_in_cidr(SA(p), "0.0.0.0/0"), 1);
        HT_EQ_INT(hd_addr_in_cidr(SA(six), "0.0.0.0/0"), 0);
        /* a v4-mapped mask is an IPv4 mask */
        HT_EQ_INT(hd_addr_in_cidr(SA(p), "::ffff:10.0.0.0/104"), 1);
        HT_EQ_INT(hd_addr_in_cidr(SA(q), "::ffff:10.0.0.0/105"), 0);
    }
    HT_EQ_INT(hd_addr_in_cidr(SA(six), "fd00::/8"), 1);
    HT_EQ_INT(hd_addr_in_cidr(SA(six), "fd00::/16"), 0);
    HT_EQ_INT(hd_addr_in_cidr(SA(six), "::/0"), 1);
    HT_EQ_INT(hd_addr_in_cidr(SA(in1), "::/0"), 0);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (hd_cidr_parse(bad[i], &c) != -EINVAL)
            ht_fail(__FILE__, __LINE__, "mask \"%s\" accepted", bad[i]);
        HT_EQ_INT(c.family, 0);
        HT_EQ_INT(hd_addr_in_cidr(SA(in1), bad[i]), -EINVAL);
    }
}

int main(void)
{
    ht_init("addr");
    HT_RUN(mangle_known_vectors);
    HT_RUN(mangle_v6_and_mapped);
    HT_RUN(mangle_round_trips);
    HT_RUN(unmangle_bad_input);
    HT_RUN(format_addresses);
    HT_RUN(parse_and_format);
    HT_RUN(resolve_names);
    HT_RUN(ports_and_same_ip);
    HT_RUN(cidr_masks);
    HT_RUN(relay_fallback);
    return ht_finish();
}

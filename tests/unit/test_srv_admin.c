/*
 * Unit tests of the admin port's own code (the HTTP itself is
 * libmicrohttpd's; tests/integration/test_admin runs the real server):
 * the text buffer and its JSON strings, the Prometheus writer, the ring of
 * refusals, the address redaction, and the Host and token checks.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "server/admin.h"
#include "server/metrics.h"
#include "server/rejects.h"
#include "server/textbuf.h"
#include "tests/harness.h"

static void json_strings(void)
{
    struct textbuf t;

    textbuf_init(&t, 0);
    textbuf_json_str(&t, "a\"b\\c\nd\te\x01\x1f\x7f"
                         "é");
    textbuf_puts(&t, ",");
    textbuf_json_str(&t, NULL);
    textbuf_puts(&t, ",");
    textbuf_json_str(&t, "");
    HT_EQ_INT(t.err, 0);
    HT_EQ_STR(t.buf, "\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f\\u007f"
                     "é\",null,\"\"");
    textbuf_cleanup(&t);

    /* bounded: the error sticks and the text stays within max */
    textbuf_init(&t, 10);
    textbuf_printf(&t, "%s", "0123456789");
    HT_EQ_INT(t.err, 0);
    textbuf_puts(&t, "x");
    HT_EQ_INT(t.err, HD_ETOOBIG);
    textbuf_puts(&t, "");
    HT_EQ_INT(t.len, 10);
    textbuf_cleanup(&t);

    /* printf beyond its small buffer */
    textbuf_init(&t, 0);
    textbuf_printf(&t, "%0600d|", 7);
    HT_EQ_INT(t.len, 601);
    HT_CHECK(t.buf[599] == '7' && t.buf[600] == '|');
    textbuf_cleanup(&t);
}

static void metrics_format(void)
{
    struct textbuf t;
    const struct metrics_label l[] = { { "v", "a\"b\\c\nd" } };
    const struct metrics_label two[] = { { "port", "21116" },
                                         { "proto", "udp" } };

    textbuf_init(&t, 0);
    metrics_family(&t, "hd_packets_total", "counter", "Packets \\ in.\nAll.");
    metrics_sample_u64(&t, "hd_packets_total", two, 2, 12345);
    metrics_sample(&t, "m", NULL, 0, 0.1);
    metrics_sample(&t, "m", NULL, 0, -2.5e-7);
    metrics_sample(&t, "m", NULL, 0, 1e21);
    metrics_sample(&t, "m", NULL, 0, 1.0 / 3.0);
    metrics_sample(&t, "m", NULL, 0, NAN);
    metrics_sample(&t, "m", NULL, 0, INFINITY);
    metrics_sample(&t, "m", NULL, 0, -INFINITY);
    metrics_sample_u64(&t, "m", l, 1, UINT64_MAX);
    metrics_sample(&t, "ns:m_sum", NULL, 0, 0);
    HT_EQ_INT(t.err, 0);
    HT_EQ_STR(t.buf, "# HELP hd_packets_total Packets \\\\ in.\\nAll.\n"
                     "# TYPE hd_packets_total counter\n"
                     "hd_packets_total{port=\"21116\",proto=\"udp\"} 12345\n"
                     "m 0.1\n"
                     "m -2.5e-07\n"
                     "m 1e+21\n"
                     "m 0.3333333333333333\n"
                     "m NaN\n"
                     "m +Inf\n"
                     "m -Inf\n"
                     "m{v=\"a\\\"b\\\\c\\nd\"} 18446744073709551615\n"
                     "ns:m_sum 0\n");
    textbuf_cleanup(&t);
}

static void metrics_errors(void)
{
    struct textbuf t;
    const struct metrics_label bad1[] = { { "__reserved", "x" } };
    const struct metrics_label bad2[] = { { "a:b", "x" } };

    textbuf_init(&t, 0);
    metrics_family(&t, "ok_name", "gauge", "h");
    metrics_family(&t, "ok_name", "gaugy", "h");
    HT_EQ_INT(t.err, HD_ECONFIG);
    metrics_sample(&t, "ok_name", NULL, 0, 1); /* ignored now */
    HT_EQ_STR(t.buf, "# HELP ok_name h\n# TYPE ok_name gauge\n");
    textbuf_cleanup(&t);

    textbuf_init(&t, 0);
    metrics_sample(&t, "9lives", NULL, 0, 1);
    HT_EQ_INT(t.err, HD_ECONFIG);
    textbuf_cleanup(&t);
    textbuf_init(&t, 0);
    metrics_sample(&t, "m", bad1, 1, 1);
    HT_EQ_INT(t.err, HD_ECONFIG);
    textbuf_cleanup(&t);
    textbuf_init(&t, 0);
    metrics_sample(&t, "m", bad2, 1, 1);
    HT_EQ_INT(t.err, HD_ECONFIG);
    HT_EQ_INT(t.len, 0);
    textbuf_cleanup(&t);

    /* bounded: the text stops below max and the error sticks */
    textbuf_init(&t, 100);
    for (int i = 0; i < 50; i++)
        metrics_sample_u64(&t, "counter_x", NULL, 0, (uint64_t)i);
    HT_EQ_INT(t.err, HD_ETOOBIG);
    HT_CHECK(t.len <= 100);
    textbuf_cleanup(&t);
}

static void sa4(struct sockaddr_in *s, const char *ip, uint16_t port)
{
    memset(s, 0, sizeof(*s));
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    inet_pton(AF_INET, ip, &s->sin_addr);
}

static void sa6(struct sockaddr_in6 *s, const char *ip, uint16_t port)
{
    memset(s, 0, sizeof(*s));
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &s->sin6_addr);
}

static const char *redact4(const char *ip, uint16_t port)
{
    static char out[REJECTS_ADDR_MAX];
    struct sockaddr_in s;

    sa4(&s, ip, port);
    return rejects_redact((struct sockaddr *)&s, out, sizeof(out));
}

static const char *redact6(const char *ip, uint16_t port)
{
    static char out[REJECTS_ADDR_MAX];
    struct sockaddr_in6 s;

    sa6(&s, ip, port);
    return rejects_redact((struct sockaddr *)&s, out, sizeof(out));
}

static void redaction(void)
{
    char out[REJECTS_ADDR_MAX];

    HT_EQ_STR(redact4("203.0.113.77", 50123), "203.0.113.x");
    HT_EQ_STR(redact4("8.8.8.8", 53), "8.8.8.x");
    HT_EQ_STR(redact4("192.168.1.20", 50123), "192.168.1.20:50123");
    HT_EQ_STR(redact4("10.1.2.3", 1), "10.1.2.3:1");
    HT_EQ_STR(redact4("172.20.0.5", 2), "172.20.0.5:2");
    HT_EQ_STR(redact4("172.32.0.5", 2), "172.32.0.x");
    HT_EQ_STR(redact4("127.0.0.1", 4000), "127.0.0.1:4000");
    HT_EQ_STR(redact4("100.64.1.1", 9), "100.64.1.1:9"); /* CGNAT */
    HT_EQ_STR(redact6("2001:db8:1:2:3:4:5:6", 443), "2001:db8:1::/48");
    HT_EQ_STR(redact6("::1", 4000), "[::1]:4000");
    HT_EQ_STR(redact6("fd00::5", 7), "[fd00::5]:7");
    HT_EQ_STR(redact6("fe80::1", 7), "[fe80::1]:7");
    /* IPv4 clients of a dual-stack socket are IPv4 */
    HT_EQ_STR(redact6("::ffff:198.51.100.9", 5), "198.51.100.x");
    HT_EQ_STR(redact6("::ffff:192.168.0.9", 5), "192.168.0.9:5");
    HT_EQ_STR(rejects_redact(NULL, out, sizeof(out)), "?");
}

static void ring(void)
{
    static struct rejects r;
    struct sockaddr_in a, b;
    const struct reject *e;
    char detail[16];

    rejects_init(&r);
    rejects_add(NULL, "relay", "wrong key", NULL, NULL); /* no-op */
    HT_CHECK(rejects_get(&r, 0) == NULL);
    sa4(&a, "203.0.113.5", 1000);
    sa4(&b, "203.0.113.6", 1001); /* the same /24 once redacted */
    rejects_add(&r, "rendezvous", "wrong key", (struct sockaddr *)&a, "123");
    rejects_add(&r, "rendezvous", "wrong key", (struct sockaddr *)&b, "123");
    HT_EQ_INT(r.n, 1); /* folded: same place, same reason, same ID */
    e = rejects_get(&r, 0);
    HT_EQ_INT(e->count, 2);
    HT_EQ_STR(e->addr, "203.0.113.x");
    HT_EQ_STR(e->detail, "123");
    rejects_add(&r, "relay", "wrong key", (struct sockaddr *)&a, "123");
    rejects_add(&r, "rendezvous", "wrong key", (struct sockaddr *)&a, "123");
    HT_EQ_INT(r.n, 3); /* only the newest entry folds */
    HT_EQ_STR(rejects_get(&r, 1)->role, "relay");
    HT_EQ_STR(rejects_get(&r, 2)->role, "rendezvous");
    HT_CHECK(rejects_get(&r, 3) == NULL);
    /* a private address is shown in full, but without the port, so the
     * same client's next connection folds too */
    sa4(&a, "192.168.1.5", 1000);
    sa4(&b, "192.168.1.5", 1001);
    rejects_add(&r, "admin", "no valid admin token", (struct sockaddr *)&a,
                "/");
    rejects_add(&r, "admin", "no valid admin token", (struct sockaddr *)&b,
                "/");
    HT_EQ_INT(r.n, 4);
    HT_EQ_STR(rejects_get(&r, 0)->addr, "192.168.1.5");
    HT_EQ_INT(rejects_get(&r, 0)->count, 2);

    /* bounded: the oldest go, newest first */
    for (int i = 0; i < REJECTS_MAX + 10; i++) {
        snprintf(detail, sizeof(detail), "id%d", i);
        rejects_add(&r, "admin", "no valid admin token", NULL, detail);
    }
    HT_EQ_INT(r.n, REJECTS_MAX);
    HT_EQ_INT(r.total, REJECTS_MAX + 16);
    HT_EQ_STR(rejects_get(&r, 0)->detail, "id73");
    HT_EQ_STR(rejects_get(&r, REJECTS_MAX - 1)->detail, "id10");
    HT_EQ_STR(rejects_get(&r, 0)->addr, "?");
    HT_CHECK(rejects_get(&r, REJECTS_MAX) == NULL);
    /* a long detail is cut, not overrun */
    rejects_add(&r, "admin", "x", NULL,
                "0123456789012345678901234567890123456789012345678901234");
    HT_EQ_INT(strlen(rejects_get(&r, 0)->detail), REJECTS_DETAIL_MAX - 1);
}

static void host_check(void)
{
    const char *const allowed[] = { "nas.home.arpa", NULL };

    HT_CHECK(admin_host_allowed("127.0.0.1:21114", NULL));
    HT_CHECK(admin_host_allowed("127.0.0.1", NULL));
    HT_CHECK(admin_host_allowed("localhost:21114", NULL));
    HT_CHECK(admin_host_allowed("LOCALHOST", NULL));
    HT_CHECK(admin_host_allowed("[::1]:21114", NULL));
    HT_CHECK(admin_host_allowed("[::1]", NULL));
    HT_CHECK(admin_host_allowed("", NULL)); /* HTTP/1.0, no Host */
    HT_CHECK(admin_host_allowed(NULL, NULL));
    HT_CHECK(admin_host_allowed("NAS.home.arpa:80", allowed));
    HT_CHECK(!admin_host_allowed("nas.home.arpa", NULL));
    HT_CHECK(!admin_host_allowed("evil.example", allowed));
    HT_CHECK(!admin_host_allowed("evil.example:21114", allowed));
    HT_CHECK(!admin_host_allowed("127.0.0.1.evil.example", allowed));
    HT_CHECK(!admin_host_allowed("[::1", NULL));
    HT_CHECK(!admin_host_allowed("[::1]x", NULL));
    HT_CHECK(!admin_host_allowed("[evil.example]", NULL));
}

static void token_check(void)
{
    const char *tok = "0123456789abcdef0123";

    HT_CHECK(admin_bearer_ok("Bearer 0123456789abcdef0123", tok));
    HT_CHECK(admin_bearer_ok("bearer 0123456789abcdef0123 \t", tok));
    HT_CHECK(!admin_bearer_ok("Bearer 0123456789abcdef012", tok));
    HT_CHECK(!admin_bearer_ok("Bearer 0123456789abcdef01234", tok));
    HT_CHECK(!admin_bearer_ok("Basic 0123456789abcdef0123", tok));
    HT_CHECK(!admin_bearer_ok("0123456789abcdef0123", tok));
    HT_CHECK(!admin_bearer_ok(NULL, tok));
    HT_CHECK(!admin_bearer_ok("Bearer x", NULL));
}

int main(void)
{
    ht_init("srv_admin");
    HT_RUN(json_strings);
    HT_RUN(metrics_format);
    HT_RUN(metrics_errors);
    HT_RUN(redaction);
    HT_RUN(ring);
    HT_RUN(host_check);
    HT_RUN(token_check);
    return ht_finish();
}

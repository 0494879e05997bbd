/* Unit tests for server/http: the admin responder and the metrics writer. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "server/http.h"
#include "tests/harness.h"

struct conn {
    char out[HTTP_HEADER_MAX * 2];
    size_t out_len;
    int done;
    int reason;
};

static int on_write(void *ud, const uint8_t *data, size_t n)
{
    struct conn *c = ud;

    if (c->out_len + n >= sizeof(c->out))
        return -ENOSPC;
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    c->out[c->out_len] = '\0';
    return 0;
}

static void on_done(void *ud, int reason)
{
    struct conn *c = ud;

    c->done++;
    c->reason = reason;
}

static const struct http_callbacks cbs = { on_write, on_done };

static void fill_metrics(struct http_metrics_writer *w, void *ud)
{
    const struct http_label l[] = { { "port", "21116" }, { "proto", "udp" } };

    http_metrics_family(w, "hd_packets_total", "counter", (const char *)ud);
    http_metrics_sample_u64(w, "hd_packets_total", l, 2, 12345);
    http_metrics_family(w, "hd_peers", "gauge", "Peers online.");
    http_metrics_sample(w, "hd_peers", NULL, 0, 3);
}

static void bad_metrics(struct http_metrics_writer *w, void *ud)
{
    (void)ud;
    http_metrics_family(w, "hd-bad-name", "counter", "x");
}

/*
 * Feed req (in chunks of step bytes, 0 = all at once) to a new responder;
 * returns http_feed's last result.
 */
static int serve(struct conn *c, const char *req, size_t len, size_t step,
                 const struct http_config *cfg_in)
{
    struct http_config cfg = { .metrics = fill_metrics,
                               .metrics_ud = "Packets \\ received.\nAll.",
                               .peer_desc = "test" };
    struct http *h = NULL;
    int r = 0;

    memset(c, 0, sizeof(*c));
    if (cfg_in != NULL)
        cfg = *cfg_in;
    HT_EQ_INT(http_new(&cfg, &cbs, c, &h), 0);
    if (h == NULL)
        return -1;
    if (step == 0)
        step = len;
    for (size_t off = 0; off < len && r == 0 && !c->done; off += step)
        r = http_feed(h, (const uint8_t *)req + off,
                      len - off < step ? len - off : step);
    if (c->done)
        HT_EQ_INT(http_feed(h, (const uint8_t *)"x", 1), -EPIPE);
    http_free(h);
    return r;
}

/* Split c->out into status line, headers, body; check Content-Length. */
static const char *body_of(struct conn *c, const char *status)
{
    char *end = strstr(c->out, "\r\n\r\n"), *cl;
    size_t want;

    if (strncmp(c->out, status, strlen(status)) != 0 || end == NULL) {
        ht_fail(__FILE__, __LINE__, "response: %.40s", c->out);
        return "";
    }
    cl = strstr(c->out, "\r\nContent-Length: ");
    if (cl == NULL || cl > end ||
        strstr(c->out, "\r\nConnection: close\r\n") == NULL) {
        ht_fail(__FILE__, __LINE__, "missing Content-Length/Connection");
        return "";
    }
    want = strtoul(cl + 18, NULL, 10);
    if (strlen(end + 4) != want)
        ht_fail(__FILE__, __LINE__, "body %zu bytes, header says %zu",
                strlen(end + 4), want);
    return end + 4;
}

static void health(void)
{
    struct conn c;
    static const char req[] = "GET /health HTTP/1.1\r\nHost: localhost\r\n"
                              "User-Agent: t\r\n\r\n";

    HT_EQ_INT(serve(&c, req, sizeof(req) - 1, 1, NULL), 0);
    HT_EQ_STR(body_of(&c, "HTTP/1.1 200 OK\r\n"), "ok\n");
    HT_EQ_INT(c.done, 1);
    HT_EQ_INT(c.reason, 0);

    /* query string ignored, HTTP/1.0 fine, HEAD has no body */
    HT_EQ_INT(serve(&c, "HEAD /health?verbose=1 HTTP/1.0\r\n\r\n", 36, 0, NULL),
              0);
    HT_CHECK(strncmp(c.out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    HT_CHECK(strstr(c.out, "Content-Length: 3\r\n") != NULL);
    HT_CHECK(strcmp(c.out + c.out_len - 4, "\r\n\r\n") == 0);

    /* a body and pipelined bytes are ignored: one response */
    HT_EQ_INT(serve(&c,
                    "GET /health HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
                    "helloGET /metrics HTTP/1.1\r\n\r\n",
                    72, 0, NULL),
              0);
    HT_EQ_STR(body_of(&c, "HTTP/1.1 200 OK\r\n"), "ok\n");
    HT_EQ_INT(c.done, 1);
}

static void metrics(void)
{
    struct conn c;
    static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
    struct http_config none = { .metrics = NULL };
    struct http_config bad = { .metrics = bad_metrics };

    HT_EQ_INT(serve(&c, req, sizeof(req) - 1, 7, NULL), 0);
    HT_EQ_STR(body_of(&c, "HTTP/1.1 200 OK\r\n"),
              "# HELP hd_packets_total Packets \\\\ received.\\nAll.\n"
              "# TYPE hd_packets_total counter\n"
              "hd_packets_total{port=\"21116\",proto=\"udp\"} 12345\n"
              "# HELP hd_peers Peers online.\n"
              "# TYPE hd_peers gauge\n"
              "hd_peers 3\n");
    HT_CHECK(strstr(c.out, "\r\nContent-Type: " HTTP_METRICS_TYPE "\r\n") !=
             NULL);

    HT_EQ_INT(serve(&c, req, sizeof(req) - 1, 0, &none), 0);
    HT_EQ_STR(body_of(&c, "HTTP/1.1 200 OK\r\n"), "");

    HT_EQ_INT(serve(&c, req, sizeof(req) - 1, 0, &bad), 0);
    body_of(&c, "HTTP/1.1 500 ");
    HT_CHECK(strstr(c.out, "hd-bad") == NULL);
}

static void other_paths(void)
{
    struct conn c;

    HT_EQ_INT(serve(&c, "GET / HTTP/1.1\r\n\r\n", 18, 0, NULL), 0);
    body_of(&c, "HTTP/1.1 404 ");
    HT_EQ_INT(c.reason, 0);
    HT_EQ_INT(serve(&c, "GET /healthz HTTP/1.1\r\n\r\n", 25, 0, NULL), 0);
    body_of(&c, "HTTP/1.1 404 ");
    HT_EQ_INT(serve(&c, "POST /health HTTP/1.1\r\n\r\n", 25, 0, NULL), 0);
    body_of(&c, "HTTP/1.1 405 ");
    HT_CHECK(strstr(c.out, "\r\nAllow: GET, HEAD\r\n") != NULL);
}

static void bad_requests(void)
{
    static const char *const reqs[] = {
        "garbage\r\n\r\n",
        "GET /health HTTP/2.0\r\n\r\n",
        "GET /health\r\n\r\n",
        "GET  /health HTTP/1.1\r\n\r\n",
        "GET /health HTTP/1.1\r\nno colon here\r\n\r\n",
        "GET /health HTTP/1.1\r\n folded: x\r\n\r\n",
        "\r\n\r\n",
    };
    static const char nul[] = "GET /health HTTP/1.1\r\nA: \0b\r\n\r\n";
    struct conn c;

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        HT_EQ_INT(serve(&c, reqs[i], strlen(reqs[i]), 0, NULL), HD_EPROTO);
        body_of(&c, "HTTP/1.1 400 ");
        HT_EQ_INT(c.reason, HD_EPROTO);
        HT_EQ_INT(c.done, 1);
    }
    /* a NUL byte inside the request */
    HT_EQ_INT(serve(&c, nul, sizeof(nul) - 1, 0, NULL), HD_EPROTO);
    body_of(&c, "HTTP/1.1 400 ");
}

static void header_limit(void)
{
    static char req[HTTP_HEADER_MAX + 8];
    struct conn c;
    size_t n = (size_t)sprintf(req, "GET /health HTTP/1.1\r\nX-Pad: ");

    /* exactly HTTP_HEADER_MAX bytes with the blank line: served */
    memset(req + n, 'a', HTTP_HEADER_MAX - 4 - n);
    memcpy(req + HTTP_HEADER_MAX - 4, "\r\n\r\n", 4);
    HT_EQ_INT(serve(&c, req, HTTP_HEADER_MAX, 1000, NULL), 0);
    HT_EQ_STR(body_of(&c, "HTTP/1.1 200 OK\r\n"), "ok\n");

    /* one more byte: 431 */
    memset(req + n, 'a', HTTP_HEADER_MAX - 3 - n);
    memcpy(req + HTTP_HEADER_MAX - 3, "\r\n\r\n", 4);
    HT_EQ_INT(serve(&c, req, HTTP_HEADER_MAX + 1, 1000, NULL), HD_ETOOBIG);
    body_of(&c, "HTTP/1.1 431 ");
    HT_EQ_INT(c.reason, HD_ETOOBIG);
}

static void writer_format(void)
{
    struct http_metrics_writer w;
    const struct http_label l[] = { { "v", "a\"b\\c\nd" } };

    http_metrics_init(&w, 0);
    http_metrics_sample(&w, "m", NULL, 0, 0.1);
    http_metrics_sample(&w, "m", NULL, 0, -2.5e-7);
    http_metrics_sample(&w, "m", NULL, 0, 1e21);
    http_metrics_sample(&w, "m", NULL, 0, 1.0 / 3.0);
    http_metrics_sample(&w, "m", NULL, 0, NAN);
    http_metrics_sample(&w, "m", NULL, 0, INFINITY);
    http_metrics_sample(&w, "m", NULL, 0, -INFINITY);
    http_metrics_sample_u64(&w, "m", l, 1, UINT64_MAX);
    http_metrics_sample(&w, "ns:m_sum", NULL, 0, 0);
    HT_EQ_INT(w.err, 0);
    HT_EQ_STR(w.buf, "m 0.1\n"
                     "m -2.5e-07\n"
                     "m 1e+21\n"
                     "m 0.3333333333333333\n"
                     "m NaN\n"
                     "m +Inf\n"
                     "m -Inf\n"
                     "m{v=\"a\\\"b\\\\c\\nd\"} 18446744073709551615\n"
                     "ns:m_sum 0\n");
    http_metrics_cleanup(&w);
}

static void writer_errors(void)
{
    struct http_metrics_writer w;
    const struct http_label bad1[] = { { "__reserved", "x" } };
    const struct http_label bad2[] = { { "a:b", "x" } };

    http_metrics_init(&w, 0);
    http_metrics_family(&w, "ok_name", "gauge", "h");
    http_metrics_family(&w, "ok_name", "gaugy", "h");
    HT_EQ_INT(w.err, HD_ECONFIG);
    http_metrics_sample(&w, "ok_name", NULL, 0, 1); /* ignored now */
    HT_EQ_STR(w.buf, "# HELP ok_name h\n# TYPE ok_name gauge\n");
    http_metrics_cleanup(&w);

    http_metrics_init(&w, 0);
    http_metrics_sample(&w, "9lives", NULL, 0, 1);
    HT_EQ_INT(w.err, HD_ECONFIG);
    http_metrics_cleanup(&w);
    http_metrics_init(&w, 0);
    http_metrics_sample(&w, "m", bad1, 1, 1);
    HT_EQ_INT(w.err, HD_ECONFIG);
    http_metrics_cleanup(&w);
    http_metrics_init(&w, 0);
    http_metrics_sample(&w, "m", bad2, 1, 1);
    HT_EQ_INT(w.err, HD_ECONFIG);
    HT_EQ_INT(w.len, 0);
    http_metrics_cleanup(&w);

    /* bounded: the text stops below max and the error sticks */
    http_metrics_init(&w, 100);
    for (int i = 0; i < 50; i++)
        http_metrics_sample_u64(&w, "counter_x", NULL, 0, (uint64_t)i);
    HT_EQ_INT(w.err, HD_ETOOBIG);
    HT_CHECK(w.len <= 100);
    http_metrics_cleanup(&w);
}

int main(void)
{
    ht_init("srv_http");
    HT_RUN(health);
    HT_RUN(metrics);
    HT_RUN(other_paths);
    HT_RUN(bad_requests);
    HT_RUN(header_limit);
    HT_RUN(writer_format);
    HT_RUN(writer_errors);
    return ht_finish();
}

/*
 * libFuzzer target for server/http.c, the request parser of the admin
 * port.  The first input byte seeds the chunk sizes; the rest is the
 * connection's bytes, fed in random chunks.  Checks the contract of
 * http.h: on_done exactly once, no write after it, an error return equal
 * to the reason on_done got, -EPIPE afterwards; /metrics output comes from
 * a small writer so that path runs too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct st {
    int done, reason;
};

static int on_write(void *ud, const uint8_t *d, size_t n)
{
    struct st *s = ud;

    if (s->done || (n > 0 && d == NULL))
        abort();
    return 0;
}

static void on_done(void *ud, int reason)
{
    struct st *s = ud;

    if (s->done)
        abort();
    s->done = 1;
    s->reason = reason;
}

static void metrics(struct http_metrics_writer *w, void *ud)
{
    struct http_label l = { "reason", "a\"b\\c\n" };

    (void)ud;
    http_metrics_family(w, "fuzz_total", "counter", "Help with \\ and\n.");
    http_metrics_sample_u64(w, "fuzz_total", &l, 1, 42);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_callbacks cbs = { on_write, on_done };
    static const char *const hosts[] = { "nas.home.arpa", NULL };
    struct http_config cfg = { .metrics = metrics,
                               .peer_desc = "fuzz",
                               .allowed_hosts = hosts,
                               /* the token check runs on half the inputs */
                               .token = size > 1 && (data[0] & 1)
                                            ? "0123456789abcdef"
                                            : NULL };
    struct http *h;
    struct st s = { 0, 0 };
    uint32_t rnd;
    size_t off = 0;
    int r;

    if (size < 1)
        return 0;
    hd_log_set_level(HD_LOG_ERROR);
    rnd = data[0] * 2654435761u + 1;
    data++;
    size--;
    if (http_new(&cfg, &cbs, &s, &h) != 0)
        return 0;
    while (off < size && !s.done) {
        size_t n;

        rnd ^= rnd << 13;
        rnd ^= rnd >> 17;
        rnd ^= rnd << 5;
        n = 1 + rnd % 700;
        if (n > size - off)
            n = size - off;
        r = http_feed(h, data + off, n);
        off += n;
        if (r != 0 && (!s.done || r != s.reason))
            abort();
    }
    if (s.done && http_feed(h, data, size ? 1 : 0) != -EPIPE)
        abort();
    http_free(h);
    return 0;
}

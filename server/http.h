/*
 * A tiny HTTP/1.1 responder for the admin port (21114): GET /health and
 * GET /metrics (Prometheus text exposition format 0.0.4), 404 for any
 * other path; a Host allow-list and an optional bearer token (see
 * struct http_config).  Like ws.h it knows no sockets: the caller feeds what it
 * read with http_feed() and writes out what on_write hands it.  One
 * request per connection: the response says "Connection: close", and
 * on_done tells the caller to close once the bytes are written.
 *
 * Invariants: the request header is bounded (HTTP_HEADER_MAX, else 431),
 * the metrics body too (HTTP_METRICS_MAX, else 500); a malformed request
 * costs one log line and a 400; any request body or pipelined bytes are
 * ignored.  on_done runs exactly once.
 *
 * Metrics: the caller supplies a function that fills a struct
 * http_metrics_writer with families (# HELP / # TYPE) and samples; the
 * writer escapes help text and label values and formats numbers, so the
 * output is always valid exposition text.
 *
 * Threads: a struct http and a writer belong to one thread (the loop
 * thread).  Callbacks run inside http_feed and must not call http_free.
 */
#ifndef HD_SERVER_HTTP_H
#define HD_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_HEADER_MAX   8192          /* request line + headers + CRLF */
#define HTTP_METRICS_MAX  (1024 * 1024) /* largest /metrics body */
#define HTTP_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- metrics writer --------------------------------------------------- */

/* Embedded object: http_metrics_init / http_metrics_cleanup. */
struct http_metrics_writer {
    char *buf; /* the text so far, NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    size_t max; /* len never exceeds it */
    int err;    /* first error: HD_ETOOBIG, HD_ECONFIG (bad name), -ENOMEM */
};

struct http_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting "__" */
    const char *value; /* any UTF-8; escaped on output */
};

/* Start an empty writer whose text may grow to max bytes (0: default). */
void http_metrics_init(struct http_metrics_writer *w, size_t max);

/* Free the text.  The writer may be initialised again. */
void http_metrics_cleanup(struct http_metrics_writer *w);

/*
 * Begin a metric family: "# HELP name help" (help escaped) and
 * "# TYPE name type".  type is counter, gauge, histogram, summary or
 * untyped; a bad name or type sets w->err = HD_ECONFIG (a programming
 * error, reported as 500, never half-written).  No-op once w->err is set.
 */
void http_metrics_family(struct http_metrics_writer *w, const char *name,
                         const char *type, const char *help);

/*
 * One sample line: name{l1="v1",...} value.  labels may be NULL when
 * nlabels is 0.  The double is written in the shortest form that reads
 * back exactly (NaN, +Inf, -Inf as Prometheus spells them).
 */
void http_metrics_sample(struct http_metrics_writer *w, const char *name,
                         const struct http_label *labels, size_t nlabels,
                         double value);

/* The same for a counter kept as an integer (exact above 2^53). */
void http_metrics_sample_u64(struct http_metrics_writer *w, const char *name,
                             const struct http_label *labels, size_t nlabels,
                             uint64_t value);

/* ---- responder -------------------------------------------------------- */

struct http;

struct http_config {
    /* Fills the /metrics body; NULL serves an empty body.  Called once per
     * /metrics request with metrics_ud. */
    void (*metrics)(struct http_metrics_writer *w, void *metrics_ud);
    void *metrics_ud;
    /* Names the peer in log lines; may be NULL.  Copied. */
    const char *peer_desc;
    /*
     * DNS rebinding: a request whose Host header names something other
     * than an IP literal, "localhost" or one of allowed_hosts (a
     * NULL-terminated list, may be NULL; compared without case) is
     * refused with 403.  A request without Host (HTTP/1.0) is served.
     * Borrowed: must outlive the struct http.
     */
    const char *const *allowed_hosts;
    /* When not NULL: every path but /health needs "Authorization: Bearer
     * <token>" (else 401).  Borrowed. */
    const char *token;
};

struct http_callbacks {
    /* Bytes for the peer, in order; copy them.  0, or a negative code. */
    int (*on_write)(void *ud, const uint8_t *data, size_t n);
    /*
     * The response is complete (or writing failed): close the connection
     * once the bytes are out.  reason: 0 for a served request (any status
     * from 200 to 405), HD_EPROTO after a 400, HD_ETOOBIG after a 431,
     * or the error on_write returned.
     */
    void (*on_done)(void *ud, int reason);
};

/*
 * State of one accepted connection.  cfg and cbs are copied; both
 * callbacks are required.  Returns 0 and *out, -EINVAL, -ENOMEM.
 */
int http_new(const struct http_config *cfg, const struct http_callbacks *cbs,
             void *ud, struct http **out);

/* Free it (no callbacks run).  Accepts NULL. */
void http_free(struct http *h);

/*
 * Process n bytes from the peer.  Returns 0 while the request is
 * incomplete or after it was served, the negative reason on_done got for
 * a refused one (one line logged), -EPIPE when called after on_done.
 */
int http_feed(struct http *h, const uint8_t *data, size_t n);

#endif

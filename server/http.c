/*
 * The admin HTTP responder and the Prometheus text writer; see http.h.
 * Parsing is strict where it costs nothing (CRLF line ends, a request
 * line of exactly three parts, no folded headers) and ignores every header
 * it does not need, which is all of them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "err.h"
#include "log.h"
#include "server/http.h"

#define MOD "http"

/* ---- metrics writer --------------------------------------------------- */

void http_metrics_init(struct http_metrics_writer *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->max = max ? max : HTTP_METRICS_MAX;
}

void http_metrics_cleanup(struct http_metrics_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

static void mw_put(struct http_metrics_writer *w, const char *s, size_t n)
{
    if (w->err != 0)
        return;
    if (n > w->max - w->len) {
        w->err = HD_ETOOBIG;
        return;
    }
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 1024;
        char *nb;

        while (cap < w->len + n + 1)
            cap *= 2;
        if ((nb = realloc(w->buf, cap)) == NULL) {
            w->err = -ENOMEM;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void mw_puts(struct http_metrics_writer *w, const char *s)
{
    mw_put(w, s, strlen(s));
}

/* Write s escaping backslash and newline, and '"' when quote is set. */
static void mw_escaped(struct http_metrics_writer *w, const char *s, int quote)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *esc = NULL;

        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote)
            esc = "\\\"";
        if (esc != NULL) {
            mw_put(w, run, (size_t)(s - run));
            mw_puts(w, esc);
            run = s + 1;
        }
    }
    mw_put(w, run, (size_t)(s - run));
}

static int name_ok(const char *s, int colons)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s != '\0'; s++) {
        int c = (unsigned char)*s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || (colons && c == ':')))
            return 0;
    }
    return 1;
}

void http_metrics_family(struct http_metrics_writer *w, const char *name,
                         const char *type, const char *help)
{
    static const char *const types[] = { "counter", "gauge", "histogram",
                                         "summary", "untyped" };
    int type_ok = 0;

    if (w->err != 0)
        return;
    for (size_t i = 0; type != NULL && i < sizeof(types) / sizeof(types[0]);
         i++)
        type_ok |= strcmp(type, types[i]) == 0;
    if (!name_ok(name, 1) || !type_ok) {
        hd_error(MOD, "metrics: bad family %s (%s)", name ? name : "(null)",
                 type ? type : "(null)");
        w->err = HD_ECONFIG;
        return;
    }
    mw_puts(w, "# HELP ");
    mw_puts(w, name);
    mw_puts(w, " ");
    mw_escaped(w, help ? help : "", 0);
    mw_puts(w, "\n# TYPE ");
    mw_puts(w, name);
    mw_puts(w, " ");
    mw_puts(w, type);
    mw_puts(w, "\n");
}

static void mw_sample_head(struct http_metrics_writer *w, const char *name,
                           const struct http_label *labels, size_t nlabels)
{
    if (w->err != 0)
        return;
    if (!name_ok(name, 1)) {
        hd_error(MOD, "metrics: bad metric name %s", name ? name : "(null)");
        w->err = HD_ECONFIG;
        return;
    }
    for (size_t i = 0; i < nlabels; i++) {
        if (!name_ok(labels[i].name, 0) ||
            strncmp(labels[i].name, "__", 2) == 0 || labels[i].value == NULL) {
            hd_error(MOD, "metrics: bad label on %s", name);
            w->err = HD_ECONFIG;
            return;
        }
    }
    mw_puts(w, name);
    for (size_t i = 0; i < nlabels; i++) {
        mw_puts(w, i == 0 ? "{" : ",");
        mw_puts(w, labels[i].name);
        mw_puts(w, "=\"");
        mw_escaped(w, labels[i].value, 1);
        mw_puts(w, "\"");
    }
    mw_puts(w, nlabels > 0 ? "} " : " ");
}

void http_metrics_sample(struct http_metrics_writer *w, const char *name,
                         const struct http_label *labels, size_t nlabels,
                         double value)
{
    char num[40];

    mw_sample_head(w, name, labels, nlabels);
    if (isnan(value)) {
        snprintf(num, sizeof(num), "NaN");
    } else if (isinf(value)) {
        snprintf(num, sizeof(num), value > 0 ? "+Inf" : "-Inf");
    } else {
        /* the shortest %g that reads back as the same double */
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(num, sizeof(num), "%.*g", prec, value);
            if (strtod(num, NULL) == value)
                break;
        }
    }
    mw_puts(w, num);
    mw_puts(w, "\n");
}

void http_metrics_sample_u64(struct http_metrics_writer *w, const char *name,
                             const struct http_label *labels, size_t nlabels,
                             uint64_t value)
{
    char num[24];

    mw_sample_head(w, name, labels, nlabels);
    snprintf(num, sizeof(num), "%" PRIu64 "\n", value);
    mw_puts(w, num);
}

/* ---- responder -------------------------------------------------------- */

struct http {
    struct http_config cfg;
    struct http_callbacks cbs;
    void *ud;
    char desc[64];
    int done;
    size_t len;
    char req[HTTP_HEADER_MAX + 1];
};

int http_new(const struct http_config *cfg, const struct http_callbacks *cbs,
             void *ud, struct http **out)
{
    struct http *h;

    *out = NULL;
    if (cfg == NULL || cbs == NULL || cbs->on_write == NULL ||
        cbs->on_done == NULL)
        return -EINVAL;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return -ENOMEM;
    h->cfg = *cfg;
    h->cfg.peer_desc = NULL;
    h->cbs = *cbs;
    h->ud = ud;
    snprintf(h->desc, sizeof(h->desc), "%s",
             cfg->peer_desc ? cfg->peer_desc : "peer");
    *out = h;
    return 0;
}

void http_free(struct http *h)
{
    free(h);
}

static int http_finish(struct http *h, int reason)
{
    if (h->done)
        return reason;
    h->done = 1;
    h->cbs.on_done(h->ud, reason);
    return reason;
}

/* Write one complete response; returns reason, or the write error. */
static int http_respond(struct http *h, const char *status, const char *extra,
                        const char *type, const char *body, size_t body_len,
                        int head, int reason)
{
    char hdr[512];
    int n, r;

    n = snprintf(hdr, sizeof(hdr),
                 "HTTP/1.1 %s\r\n%sContent-Type: %s\r\n"
                 "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                 "Connection: close\r\n\r\n",
                 status, extra, type, body_len);
    r = h->cbs.on_write(h->ud, (const uint8_t *)hdr, (size_t)n);
    if (r == 0 && !head && body_len > 0)
        r = h->cbs.on_write(h->ud, (const uint8_t *)body, body_len);
    if (r != 0) {
        hd_debug(MOD, "%s: write failed: %s", h->desc, hd_strerror(r));
        return http_finish(h, r < 0 ? r : -EIO);
    }
    return http_finish(h, reason);
}

static int http_text(struct http *h, const char *status, const char *extra,
                     const char *body, int head, int reason)
{
    return http_respond(h, status, extra, "text/plain; charset=utf-8", body,
                        strlen(body), head, reason);
}

static int http_metrics(struct http *h, int head)
{
    struct http_metrics_writer w;
    int r;

    http_metrics_init(&w, 0);
    if (h->cfg.metrics != NULL)
        h->cfg.metrics(&w, h->cfg.metrics_ud);
    if (w.err != 0) {
        if (w.err != HD_ECONFIG) /* a bad name was logged when written */
            hd_error(MOD, "metrics: %s", hd_strerror(w.err));
        r = http_text(h, "500 Internal Server Error", "",
                      "metrics unavailable\n", head, 0);
    } else {
        r = http_respond(h, "200 OK", "", HTTP_METRICS_TYPE, w.buf ? w.buf : "",
                         w.len, head, 0);
    }
    http_metrics_cleanup(&w);
    return r;
}

/* Is the Host header value (port included) one we answer to? */
static int host_allowed(const struct http *h, const char *v, size_t n)
{
    char name[256];
    struct in6_addr a6;
    struct in_addr a4;
    const char *colon;

    if (n >= sizeof(name))
        return 0;
    memcpy(name, v, n);
    name[n] = '\0';
    if (name[0] == '[') { /* [v6]:port */
        char *end = strchr(name, ']');

        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return 0;
        *end = '\0';
        return inet_pton(AF_INET6, name + 1, &a6) == 1;
    }
    if ((colon = strchr(name, ':')) != NULL)
        name[colon - name] = '\0';
    if (inet_pton(AF_INET, name, &a4) == 1 ||
        strcasecmp(name, "localhost") == 0)
        return 1;
    for (size_t i = 0; h->cfg.allowed_hosts && h->cfg.allowed_hosts[i]; i++)
        if (strcasecmp(name, h->cfg.allowed_hosts[i]) == 0)
            return 1;
    return 0;
}

/* Does the header value carry "Bearer <our token>"? */
static int token_ok(const struct http *h, const char *v, size_t n)
{
    size_t tlen = strlen(h->cfg.token);

    if (n < 7 || strncasecmp(v, "Bearer ", 7) != 0)
        return 0;
    v += 7;
    n -= 7;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n == tlen && sodium_memcmp(v, h->cfg.token, tlen) == 0;
}

/* The request in h->req (len bytes through the blank line) is complete. */
static int http_process(struct http *h, size_t len)
{
    char *line = h->req, *eol, *sp1, *sp2, *path, *q;
    int head, bad_host = 0, authorized = 0;

    if (strlen(h->req) != len)
        goto bad;
    eol = strstr(line, "\r\n");
    *eol = '\0';
    sp1 = strchr(line, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 ||
        strchr(sp2 + 1, ' ') != NULL ||
        (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0))
        goto bad;
    for (char *p = eol + 2; *p != '\0'; p = eol + 2) {
        char *colon, *v;
        size_t vn;

        eol = strstr(p, "\r\n");
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p || *p == ' ' || *p == '\t')
            goto bad;
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
            ;
        vn = (size_t)(eol - v);
        if (colon - p == 4 && strncasecmp(p, "Host", 4) == 0) {
            if (!host_allowed(h, v, vn))
                bad_host = 1;
        } else if (colon - p == 13 &&
                   strncasecmp(p, "Authorization", 13) == 0 &&
                   h->cfg.token != NULL) {
            authorized = token_ok(h, v, vn);
        }
    }
    *sp1 = '\0';
    *sp2 = '\0';
    path = sp1 + 1;
    if ((q = strchr(path, '?')) != NULL)
        *q = '\0';
    head = strcmp(line, "HEAD") == 0;
    hd_debug(MOD, "%s: %s %s", h->desc, line, path);
    if (bad_host) {
        hd_info(MOD,
                "%s: Host header not allowed (a DNS rebinding page?): "
                "refused",
                h->desc);
        return http_text(h, "403 Forbidden", "",
                         "host name not allowed: use the server's IP address, "
                         "or add the name with --http-allow-host\n",
                         head, 0);
    }
    if (h->cfg.token != NULL && !authorized && strcmp(path, "/health") != 0) {
        hd_info(MOD, "%s: %s without the bearer token: refused", h->desc,
                path[0] == '/' && strlen(path) < 64 ? path : "request");
        return http_text(h, "401 Unauthorized", "WWW-Authenticate: Bearer\r\n",
                         "this server wants Authorization: Bearer <token> "
                         "(--http-token-file)\n",
                         head, 0);
    }
    if (strcmp(path, "/health") == 0 || strcmp(path, "/metrics") == 0) {
        if (!head && strcmp(line, "GET") != 0)
            return http_text(h, "405 Method Not Allowed",
                             "Allow: GET, HEAD\r\n", "method not allowed\n", 0,
                             0);
        if (path[1] == 'h')
            return http_text(h, "200 OK", "", "ok\n", head, 0);
        return http_metrics(h, head);
    }
    return http_text(h, "404 Not Found", "", "not found\n", head, 0);
bad:
    hd_info(MOD, "%s: malformed HTTP request", h->desc);
    return http_text(h, "400 Bad Request", "", "bad request\n", 0, HD_EPROTO);
}

int http_feed(struct http *h, const uint8_t *data, size_t n)
{
    size_t old = h->len, take, from;
    char *hit;

    if (h->done)
        return -EPIPE;
    take = HTTP_HEADER_MAX - old < n ? HTTP_HEADER_MAX - old : n;
    memcpy(h->req + old, data, take);
    h->len += take;
    h->req[h->len] = '\0';
    from = old > 3 ? old - 3 : 0;
    hit = memmem(h->req + from, h->len - from, "\r\n\r\n", 4);
    if (hit == NULL) {
        if (h->len < HTTP_HEADER_MAX)
            return 0;
        hd_info(MOD, "%s: request header over %d bytes", h->desc,
                HTTP_HEADER_MAX);
        return http_text(h, "431 Request Header Fields Too Large", "",
                         "request header too large\n", 0, HD_ETOOBIG);
    }
    hit[2] = '\0'; /* keep the last header's CRLF, drop the body */
    return http_process(h, (size_t)(hit - h->req) + 2);
}

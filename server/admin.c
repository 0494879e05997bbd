/*
 * The admin port on libmicrohttpd, driven by the libuv loop (admin.h
 * explains the thread contract): the listening socket is ours (so a busy
 * port is a plain EADDRINUSE), libmicrohttpd accepts and parses on it,
 * and on_request routes each request after the Host and token checks.
 * The page's three files are built into the program (admin_page.c is
 * generated from server/admin/ at build time).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "addr.h"
#include "err.h"
#include "log.h"
#include "server/admin_int.h"
#include "server/admin_page.h"
#include "server/metrics.h"
#include "server/rejects.h"

#define MOD           "admin"
#define ADMIN_TIMEOUT 10          /* seconds a connection may live */
#define ADMIN_MEM     (32 * 1024) /* per connection: the request header */
#define ADMIN_PER_IP  32          /* connections from one address */
#define ADMIN_COOKIE  "homedesk_admin"
#define ADMIN_CSP                                                   \
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; " \
    "form-action 'none'"

/* ---- Host and token checks -------------------------------------------- */

int admin_host_allowed(const char *host, const char *const *allowed)
{
    char name[256];
    struct in6_addr a6;
    struct in_addr a4;
    char *colon;

    if (host == NULL || host[0] == '\0')
        return 1; /* HTTP/1.0 without Host: nothing to rebind */
    if (strlen(host) >= sizeof(name))
        return 0;
    snprintf(name, sizeof(name), "%s", host);
    if (name[0] == '[') { /* [v6]:port */
        char *end = strchr(name, ']');

        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return 0;
        *end = '\0';
        return inet_pton(AF_INET6, name + 1, &a6) == 1;
    }
    if ((colon = strchr(name, ':')) != NULL)
        *colon = '\0';
    if (inet_pton(AF_INET, name, &a4) == 1 ||
        strcasecmp(name, "localhost") == 0)
        return 1;
    for (size_t i = 0; allowed != NULL && allowed[i] != NULL; i++)
        if (strcasecmp(name, allowed[i]) == 0)
            return 1;
    return 0;
}

/* v and token as the same length and bytes, in time independent of v. */
static int token_eq(const char *v, size_t n, const char *token)
{
    size_t tlen = strlen(token);

    return n == tlen && sodium_memcmp(v, token, tlen) == 0;
}

int admin_bearer_ok(const char *value, const char *token)
{
    size_t n;

    if (value == NULL || token == NULL || strncasecmp(value, "Bearer ", 7))
        return 0;
    value += 7;
    n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    return token_eq(value, n, token);
}

/* ---- responses -------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *type, const void *body, size_t n,
                               const char *hdr, const char *hdr_value)
{
    struct MHD_Response *resp;
    enum MHD_Result ok;

    resp =
        MHD_create_response_from_buffer(n, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_SECURITY_POLICY,
                            ADMIN_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (hdr != NULL)
        MHD_add_response_header(resp, hdr, hdr_value);
    ok = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status,
                            const char *body)
{
    return respond(conn, status, "text/plain; charset=utf-8", body,
                   strlen(body), NULL, NULL);
}

/* A body built by fill (JSON or metrics), or 500 if it failed. */
static enum MHD_Result generated(struct MHD_Connection *conn, struct admin *a,
                                 void (*fill)(struct admin *, struct textbuf *),
                                 const char *type)
{
    struct textbuf t;
    enum MHD_Result ok;

    textbuf_init(&t, 0);
    fill(a, &t);
    if (t.err != 0) {
        if (t.err != HD_ECONFIG) /* a bad name was logged when written */
            hd_error(MOD, "building the response: %s", hd_strerror(t.err));
        ok = text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "unavailable\n");
    } else {
        ok = respond(conn, MHD_HTTP_OK, type, t.buf ? t.buf : "", t.len, NULL,
                     NULL);
    }
    textbuf_cleanup(&t);
    return ok;
}

/* ---- routing ---------------------------------------------------------- */

static const struct sockaddr *client_addr(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    return ci != NULL ? ci->client_addr : NULL;
}

static void refused(struct admin *a, struct MHD_Connection *conn,
                    const char *why, const char *path)
{
    const struct sockaddr *sa = client_addr(conn);
    char name[HD_ADDR_STRLEN] = "?", q[REJECTS_DETAIL_MAX];
    size_t i;

    if (sa != NULL)
        hd_addr_format(sa, name, sizeof(name));
    /* the path as sent, but only printable ASCII and cut short */
    for (i = 0; path[i] != '\0' && i + 1 < sizeof(q); i++)
        q[i] =
            path[i] > ' ' && path[i] < 0x7f && path[i] != '"' && path[i] != '\\'
                ? path[i]
                : '?';
    q[i] = '\0';
    hd_info(MOD, "%s: %s (%s): refused", name, why, q);
    rejects_add(a->cfg->rejects, "admin", why, sa, q);
}

/* Is the token there, as a bearer header, a cookie or (for the page) a
 * query argument?  *from_query tells which. */
static int authorized(struct admin *a, struct MHD_Connection *conn,
                      int *from_query)
{
    const char *tok = a->cfg->token, *v;

    *from_query = 0;
    if (tok == NULL)
        return 1;
    v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_AUTHORIZATION);
    if (admin_bearer_ok(v, tok))
        return 1;
    v = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, ADMIN_COOKIE);
    if (v != NULL && token_eq(v, strlen(v), tok))
        return 1;
    v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
    if (v != NULL && token_eq(v, strlen(v), tok)) {
        *from_query = 1;
        return 1;
    }
    return 0;
}

/* The page came with ?token=: keep it in a cookie, drop it from the
 * address bar (and from the browser's history). */
static enum MHD_Result token_redirect(struct admin *a,
                                      struct MHD_Connection *conn)
{
    struct MHD_Response *resp;
    char cookie[400];
    enum MHD_Result ok;

    snprintf(cookie, sizeof(cookie),
             ADMIN_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict",
             a->cfg->token);
    resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    ok = MHD_queue_response(conn, MHD_HTTP_SEE_OTHER, resp);
    MHD_destroy_response(resp);
    return ok;
}

static const char unauthorized_text[] =
    "this server wants its admin token: open /?token=TOKEN once in the "
    "browser, or send Authorization: Bearer TOKEN (the token is in the file "
    "--http-token-file names)\n";

/* The built-in file at url ("/" is the page), or NULL. */
static const struct admin_page_file *page_find(const char *url)
{
    for (size_t i = 0; i < admin_page_nfiles; i++)
        if (strcmp(url, admin_page_files[i].path) == 0)
            return &admin_page_files[i];
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct admin *a = cls;
    const struct admin_page_file *f;
    const char *host;
    int from_query;

    host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_HOST);
    if (!admin_host_allowed(host, a->cfg->allowed_hosts)) {
        refused(a, conn, "Host header not allowed (a DNS rebinding page?)",
                url);
        return text(conn, MHD_HTTP_FORBIDDEN,
                    "host name not allowed: use the server's IP address, "
                    "or add the name with --http-allow-host\n");
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                       "text/plain; charset=utf-8", "method not allowed\n", 20,
                       MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    hd_debug(MOD, "%s %s", method, url);
    if (strcmp(url, "/health") == 0)
        return text(conn, MHD_HTTP_OK, "ok\n");
    if (!authorized(a, conn, &from_query)) {
        refused(a, conn, "no valid admin token", url);
        return respond(conn, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8",
                       unauthorized_text, strlen(unauthorized_text),
                       MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    }
    if (from_query && strcmp(url, "/") == 0)
        return token_redirect(a, conn);
    if (strcmp(url, "/metrics") == 0)
        return generated(conn, a, admin_metrics_text, METRICS_TYPE);
    if (strcmp(url, "/api/status") == 0) {
        admin_probe_start(a); /* results show in the next poll */
        return generated(conn, a, admin_status_json,
                         "application/json; charset=utf-8");
    }
    if ((f = page_find(url)) != NULL)
        return respond(conn, MHD_HTTP_OK, f->type, f->data, f->len, NULL, NULL);
    return text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* ---- libmicrohttpd on the loop ------------------------------------------ */

static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    size_t n;

    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    hd_info(MOD, "libmicrohttpd: %s", line);
}

static void mhd_kick(struct admin *a);

static void on_tick(uv_timer_t *t)
{
    mhd_kick(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    mhd_kick(p->data);
}

/* Let libmicrohttpd work, then wake again when it asks to. */
static void mhd_kick(struct admin *a)
{
    MHD_UNSIGNED_LONG_LONG ms;

    if (a->stopped || a->mhd == NULL)
        return;
    MHD_run(a->mhd);
    if (MHD_get_timeout(a->mhd, &ms) == MHD_YES)
        uv_timer_start(&a->tick, on_tick, ms > 60000 ? 60000 : (uint64_t)ms, 0);
    else
        uv_timer_stop(&a->tick);
}

/* Our listening socket, so that a busy port is reported as such. */
static int listen_socket(const struct admin_config *cfg, int *fd_out)
{
    struct sockaddr_storage ss;
    int fd, one = 1, zero = 0, r;

    *fd_out = -1;
    if ((r = hd_addr_parse(cfg->bind_ip, cfg->port, &ss)) != 0)
        return r;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, (struct sockaddr *)&ss, hd_addr_len((struct sockaddr *)&ss)) !=
            0 ||
        listen(fd, 64) != 0) {
        r = -errno;
        close(fd);
        return r;
    }
    *fd_out = fd;
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    struct admin *a = h->data;

    a->handles--;
}

int admin_new(uv_loop_t *loop, const struct admin_config *cfg, struct rdv *rdv,
              struct relay *relay, struct admin **out)
{
    const union MHD_DaemonInfo *info;
    struct admin *a;
    int r, fd;

    *out = NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return -ENOMEM;
    a->loop = loop;
    a->cfg = cfg;
    a->rdv = rdv;
    a->relay = relay;
    a->started_s = (uint64_t)time(NULL);
    a->started_ms = uv_now(loop);
    for (size_t i = 0; i < cfg->nports && i < ADMIN_MAX_PORTS; i++)
        a->ports[a->nports++] = cfg->ports[i];
    a->ports[a->nports++] = (struct admin_port){ "admin (this page)", "tcp",
                                                 cfg->bind_ip, cfg->port };
    uv_timer_init(loop, &a->tick);
    a->tick.data = a;
    a->handles = 1;
    *out = a;
    if ((r = listen_socket(cfg, &fd)) != 0)
        return r;
    a->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, a,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a, /* first: see its doc */
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)ADMIN_MAX_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)ADMIN_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)ADMIN_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)ADMIN_MEM, MHD_OPTION_END);
    if (a->mhd == NULL) {
        close(fd);
        hd_error(MOD, "libmicrohttpd did not start on %s port %u", cfg->bind_ip,
                 cfg->port);
        return HD_ECONFIG;
    }
    info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL || uv_poll_init(loop, &a->poll, info->epoll_fd) != 0) {
        hd_error(MOD, "cannot watch libmicrohttpd's epoll descriptor");
        return HD_ECONFIG;
    }
    a->poll.data = a;
    a->handles++;
    uv_poll_start(&a->poll, UV_READABLE, on_poll);
    mhd_kick(a);
    return 0;
}

void admin_stop(struct admin *a)
{
    if (a == NULL || a->stopped)
        return;
    a->stopped = 1;
    admin_probe_cancel(a);
    /* stop watching the epoll descriptor before libmicrohttpd closes it */
    if (a->handles > 1)
        uv_close((uv_handle_t *)&a->poll, handle_closed);
    uv_close((uv_handle_t *)&a->tick, handle_closed);
    if (a->mhd != NULL)
        MHD_stop_daemon(a->mhd);
    a->mhd = NULL;
}

void admin_free(struct admin *a)
{
    free(a);
}

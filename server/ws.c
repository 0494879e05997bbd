/*
 * WebSocket server side on libwslay's event API.  wslay reads from and
 * writes to our two callbacks, which are wired to the bytes ws_feed()
 * was given and to the caller's on_write: no socket in sight.  The
 * upgrade request is parsed here; SHA-1 comes from nettle (libsodium has
 * none), base64 from libsodium.  See ws.h for the contract.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nettle/sha1.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "err.h"
#include "log.h"
#include "server/ws.h"

#define MOD "ws"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

enum ws_state { WS_HANDSHAKE, WS_OPEN, WS_DONE };

struct ws {
    struct ws_config cfg;
    struct ws_callbacks cbs;
    void *ud;
    char desc[64];
    enum ws_state state;
    /* handshake: the request header so far (NUL-terminated) */
    char *hdr;
    size_t hdr_len;
    char *path;
    char fwd_ip[WS_IP_MAX];
    /* open: wslay and the bytes it reads from during ws_feed */
    wslay_event_context_ptr ctx;
    const uint8_t *in;
    size_t in_len;
    int in_callback; /* inside wslay_event_recv: defer sending */
    int write_err;   /* what on_write returned, when it failed */
};

/* ---- helpers ---------------------------------------------------------- */

int ws_accept_key(const char *key, char *out, size_t cap)
{
    struct sha1_ctx sha;
    uint8_t digest[SHA1_DIGEST_SIZE];

    if (cap < sodium_base64_ENCODED_LEN(SHA1_DIGEST_SIZE,
                                        sodium_base64_VARIANT_ORIGINAL)) {
        if (cap > 0)
            out[0] = '\0';
        return -ENOSPC;
    }
    sha1_init(&sha);
    sha1_update(&sha, strlen(key), (const uint8_t *)key);
    sha1_update(&sha, sizeof(ws_guid) - 1, (const uint8_t *)ws_guid);
    sha1_digest(&sha, sizeof(digest), digest);
    sodium_bin2base64(out, cap, digest, sizeof(digest),
                      sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

/* Does the comma-separated list value contain token (any case)? */
static int has_token(const char *value, const char *token)
{
    size_t tl = strlen(token);
    const char *p = value;

    while (*p != '\0') {
        const char *end;
        size_t n;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        end = p;
        while (*end != '\0' && *end != ',')
            end++;
        n = (size_t)(end - p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == tl && strncasecmp(p, token, tl) == 0)
            return 1;
        p = end;
    }
    return 0;
}

/*
 * Canonical numeric form of an IP written as s[0..n): optional spaces,
 * "[v6]" brackets, a ":port" after IPv4 (some proxies add it).  An
 * IPv4-mapped IPv6 address is shown as IPv4.  Returns 0 or -EINVAL.
 */
static int ip_canon(const char *s, size_t n, char out[WS_IP_MAX])
{
    char buf[WS_IP_MAX + 8];
    struct in6_addr a6;
    struct in_addr a4;
    char *colon;

    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n > 2 && s[0] == '[') {
        const char *close = memchr(s, ']', n);

        if (close == NULL)
            return -EINVAL;
        n = (size_t)(close - s - 1);
        s++;
    }
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    colon = strchr(buf, ':');
    if (colon != NULL && strchr(buf, '.') != NULL &&
        strchr(colon + 1, ':') == NULL)
        *colon = '\0'; /* "1.2.3.4:5678" */
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return inet_ntop(AF_INET, &a4, out, WS_IP_MAX) ? 0 : -EINVAL;
    if (inet_pton(AF_INET6, buf, &a6) != 1)
        return -EINVAL;
    if (IN6_IS_ADDR_V4MAPPED(&a6))
        return inet_ntop(AF_INET, &a6.s6_addr[12], out, WS_IP_MAX) ? 0
                                                                   : -EINVAL;
    return inet_ntop(AF_INET6, &a6, out, WS_IP_MAX) ? 0 : -EINVAL;
}

/* ---- lifecycle -------------------------------------------------------- */

int ws_new(const struct ws_config *cfg, const struct ws_callbacks *cbs,
           void *ud, struct ws **out)
{
    struct ws *ws;

    *out = NULL;
    if (cfg == NULL || cbs == NULL || cbs->on_write == NULL ||
        cbs->on_message == NULL || cbs->on_close == NULL)
        return -EINVAL;
    if ((ws = calloc(1, sizeof(*ws))) == NULL)
        return -ENOMEM;
    if ((ws->hdr = malloc(WS_HEADER_MAX + 1)) == NULL) {
        free(ws);
        return -ENOMEM;
    }
    ws->hdr[0] = '\0';
    ws->cfg = *cfg;
    ws->cfg.peer_desc = NULL;
    if (ws->cfg.max_message == 0)
        ws->cfg.max_message = WS_RENDEZVOUS_MSG_MAX;
    snprintf(ws->desc, sizeof(ws->desc), "%s",
             cfg->peer_desc ? cfg->peer_desc : "peer");
    ws->cbs = *cbs;
    ws->ud = ud;
    ws->state = WS_HANDSHAKE;
    *out = ws;
    return 0;
}

void ws_free(struct ws *ws)
{
    if (ws == NULL)
        return;
    if (ws->ctx != NULL)
        wslay_event_context_free(ws->ctx);
    free(ws->hdr);
    free(ws->path);
    free(ws);
}

void ws_set_max_message(struct ws *ws, size_t max_message)
{
    ws->cfg.max_message = max_message ? max_message : WS_RENDEZVOUS_MSG_MAX;
    if (ws->ctx != NULL)
        wslay_event_config_set_max_recv_msg_length(ws->ctx,
                                                   ws->cfg.max_message);
}

int ws_is_open(const struct ws *ws)
{
    return ws->state == WS_OPEN;
}

const char *ws_path(const struct ws *ws)
{
    return ws->path ? ws->path : "";
}

const char *ws_forwarded_ip(const struct ws *ws)
{
    return ws->fwd_ip[0] ? ws->fwd_ip : NULL;
}

/* End the connection once; returns reason for the caller to pass on. */
static int ws_finish(struct ws *ws, int reason)
{
    if (ws->state == WS_DONE)
        return reason;
    ws->state = WS_DONE;
    ws->cbs.on_close(ws->ud, reason);
    return reason;
}

static int ws_write(struct ws *ws, const void *data, size_t n)
{
    int r = ws->cbs.on_write(ws->ud, data, n);

    if (r != 0) {
        ws->write_err = r < 0 ? r : -EIO;
        hd_debug(MOD, "%s: write failed: %s", ws->desc,
                 hd_strerror(ws->write_err));
    }
    return r != 0 ? ws->write_err : 0;
}

/* ---- wslay callbacks -------------------------------------------------- */

static ssize_t cb_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *user_data)
{
    struct ws *ws = user_data;
    size_t n = ws->in_len < len ? ws->in_len : len;

    (void)flags;
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static ssize_t cb_send(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *user_data)
{
    struct ws *ws = user_data;

    (void)flags;
    if (ws_write(ws, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void cb_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg,
                   void *user_data)
{
    struct ws *ws = user_data;

    (void)ctx;
    if (ws->state != WS_OPEN)
        return;
    if (arg->opcode == WSLAY_BINARY_FRAME)
        ws->cbs.on_message(ws->ud, arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_TEXT_FRAME)
        hd_debug(MOD, "%s: text message of %zu bytes ignored", ws->desc,
                 arg->msg_length);
}

/* Hand queued frames to on_write.  0 or the write error. */
static int ws_flush(struct ws *ws)
{
    if (ws->in_callback || ws->ctx == NULL)
        return 0;
    if (wslay_event_send(ws->ctx) != 0)
        return ws->write_err ? ws->write_err : -ENOMEM;
    return 0;
}

/* ---- handshake -------------------------------------------------------- */

static int hs_reply(struct ws *ws, const char *status, const char *extra)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %s\r\n%sConnection: close\r\n"
                     "Content-Length: 0\r\n\r\n",
                     status, extra);

    return ws_write(ws, buf, (size_t)n);
}

/*
 * Parse the complete request in ws->hdr (len bytes, ending CRLFCRLF) and
 * answer it.  Returns 0 when upgraded, else an error after replying.
 */
/* The client's address as a trusted proxy gives it: X-Real-IP, else the
 * rightmost X-Forwarded-For entry (either may be NULL). */
static void hs_forwarded(struct ws *ws, const char *xri, const char *xff)
{
    if (xri != NULL && ip_canon(xri, strlen(xri), ws->fwd_ip) != 0)
        ws->fwd_ip[0] = '\0';
    if (ws->fwd_ip[0] == '\0' && xff != NULL) {
        const char *last = strrchr(xff, ',');

        last = last ? last + 1 : xff;
        if (ip_canon(last, strlen(last), ws->fwd_ip) != 0)
            ws->fwd_ip[0] = '\0';
    }
}

/* A valid upgrade request with Sec-WebSocket-Key key: start wslay and
 * answer 101.  0 or a negative code. */
static int hs_accept(struct ws *ws, const char *key)
{
    struct wslay_event_callbacks wcb = { 0 };
    char accept[32], resp[256];
    int n;

    wcb.recv_callback = cb_recv;
    wcb.send_callback = cb_send;
    wcb.on_msg_recv_callback = cb_msg;
    if (wslay_event_context_server_init(&ws->ctx, &wcb, ws) != 0) {
        ws->ctx = NULL;
        hs_reply(ws, "500 Internal Server Error", "");
        return -ENOMEM;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->cfg.max_message);

    ws_accept_key(key, accept, sizeof(accept));
    n = snprintf(resp, sizeof(resp),
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n\r\n",
                 accept);
    ws->state = WS_OPEN;
    hd_debug(MOD, "%s: upgraded on %s", ws->desc, ws->path);
    return ws_write(ws, resp, (size_t)n);
}

static int hs_process(struct ws *ws, size_t len)
{
    char *p = ws->hdr, *end = ws->hdr + len, *line_end, *sp1, *sp2;
    const char *key = NULL, *xri = NULL, *xff = NULL;
    int upgrade = 0, connection = 0, version = 0, keys = 0;
    uint8_t keybin[16];
    size_t keybin_len = 0;

    if (strlen(ws->hdr) != len) {
        hd_info(MOD, "%s: NUL byte in upgrade request", ws->desc);
        goto bad;
    }
    /* request line: GET SP target SP HTTP/1.1 */
    line_end = strstr(p, "\r\n");
    *line_end = '\0';
    sp1 = strchr(p, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp2 == sp1 + 1 ||
        strcmp(sp2 + 1, "HTTP/1.1") != 0 || strchr(sp2 + 1, ' ') != NULL) {
        hd_info(MOD, "%s: malformed request line", ws->desc);
        goto bad;
    }
    if ((size_t)(sp1 - p) != 3 || memcmp(p, "GET", 3) != 0) {
        hd_info(MOD, "%s: method %.*s is not GET", ws->desc,
                (int)(sp1 - p < 16 ? sp1 - p : 16), p);
        hs_reply(ws, "405 Method Not Allowed", "Allow: GET\r\n");
        return HD_EPROTO;
    }
    *sp2 = '\0';
    if ((ws->path = strdup(sp1 + 1)) == NULL) {
        hs_reply(ws, "500 Internal Server Error", "");
        return -ENOMEM;
    }

    for (p = line_end + 2; p < end; p = line_end + 2) {
        char *colon, *v, *ve;

        line_end = strstr(p, "\r\n");
        if (line_end == p)
            break; /* the empty line */
        *line_end = '\0';
        colon = strchr(p, ':');
        if (colon == NULL || colon == p || *p == ' ' || *p == '\t') {
            hd_info(MOD, "%s: malformed header line", ws->desc);
            goto bad;
        }
        for (char *c = p; c < colon; c++) {
            if (!isgraph((unsigned char)*c)) {
                hd_info(MOD, "%s: malformed header name", ws->desc);
                goto bad;
            }
        }
        *colon = '\0';
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            *--ve = '\0';
        if (strcasecmp(p, "Upgrade") == 0)
            upgrade |= has_token(v, "websocket");
        else if (strcasecmp(p, "Connection") == 0)
            connection |= has_token(v, "upgrade");
        else if (strcasecmp(p, "Sec-WebSocket-Version") == 0)
            version = strcmp(v, "13") == 0 ? 1 : -1;
        else if (strcasecmp(p, "Sec-WebSocket-Key") == 0)
            key = v, keys++;
        else if (strcasecmp(p, "X-Real-IP") == 0)
            xri = v;
        else if (strcasecmp(p, "X-Forwarded-For") == 0)
            xff = v; /* the last header holds the rightmost entries */
    }
    if (!upgrade || !connection) {
        hd_info(MOD, "%s: not a WebSocket upgrade request", ws->desc);
        goto bad;
    }
    if (version != 1) {
        hd_info(MOD, "%s: unsupported or missing WebSocket version", ws->desc);
        hs_reply(ws, "426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n");
        return HD_EPROTO;
    }
    if (keys != 1 || strlen(key) != 24 ||
        sodium_base642bin(keybin, sizeof(keybin), key, 24, NULL, &keybin_len,
                          NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        keybin_len != 16) {
        hd_info(MOD, "%s: bad Sec-WebSocket-Key", ws->desc);
        goto bad;
    }

    hs_forwarded(ws, xri, xff);
    return hs_accept(ws, key);
bad:
    hs_reply(ws, "400 Bad Request", "");
    return HD_EPROTO;
}

/* ---- frames ----------------------------------------------------------- */

static int ws_frames(struct ws *ws, const uint8_t *data, size_t n)
{
    int rr, r;

    ws->in = data;
    ws->in_len = n;
    ws->in_callback = 1;
    rr = wslay_event_recv(ws->ctx);
    ws->in_callback = 0;
    ws->in = NULL;
    ws->in_len = 0;
    /* send what is queued (pongs, replies, a close) whatever happened */
    r = ws_flush(ws);
    if (ws->write_err != 0)
        return ws_finish(ws, ws->write_err);
    if (r != 0)
        return ws_finish(ws, r);
    if (rr != 0) {
        hd_info(MOD, "%s: malformed WebSocket frame", ws->desc);
        return ws_finish(ws, HD_EPROTO);
    }
    if (wslay_event_get_close_received(ws->ctx)) {
        hd_debug(MOD, "%s: closed by peer (%u)", ws->desc,
                 wslay_event_get_status_code_received(ws->ctx));
        return ws_finish(ws, 0);
    }
    if (!wslay_event_get_read_enabled(ws->ctx)) {
        /* wslay refused the input and queued a close with the reason */
        uint16_t code = wslay_event_get_status_code_sent(ws->ctx);

        if (code == WSLAY_CODE_MESSAGE_TOO_BIG) {
            hd_info(MOD, "%s: message over %zu bytes, closing", ws->desc,
                    ws->cfg.max_message);
            return ws_finish(ws, HD_ETOOBIG);
        }
        hd_info(MOD, "%s: WebSocket protocol violation (%u), closing", ws->desc,
                code);
        return ws_finish(ws, HD_EPROTO);
    }
    return 0;
}

int ws_feed(struct ws *ws, const uint8_t *data, size_t n)
{
    size_t take, old, end;
    char *hit;
    int r;

    if (ws->state == WS_DONE)
        return -EPIPE;
    if (ws->state == WS_OPEN)
        return ws_frames(ws, data, n);

    old = ws->hdr_len;
    take = WS_HEADER_MAX - old < n ? WS_HEADER_MAX - old : n;
    memcpy(ws->hdr + old, data, take);
    ws->hdr_len += take;
    ws->hdr[ws->hdr_len] = '\0';
    /* the terminator may straddle the previous chunk */
    hit = memmem(ws->hdr + (old > 3 ? old - 3 : 0),
                 ws->hdr_len - (old > 3 ? old - 3 : 0), "\r\n\r\n", 4);
    if (hit == NULL) {
        if (ws->hdr_len < WS_HEADER_MAX)
            return 0;
        hd_info(MOD, "%s: upgrade request header over %d bytes", ws->desc,
                WS_HEADER_MAX);
        hs_reply(ws, "431 Request Header Fields Too Large", "");
        return ws_finish(ws, ws->write_err ? ws->write_err : HD_ETOOBIG);
    }
    end = (size_t)(hit - ws->hdr) + 4;
    /* bytes after the header were sent early: they are frames */
    {
        size_t early_hdr = ws->hdr_len - end;
        uint8_t *early = NULL;

        if (early_hdr > 0) {
            if ((early = malloc(early_hdr)) == NULL)
                return ws_finish(ws, -ENOMEM);
            memcpy(early, ws->hdr + end, early_hdr);
        }
        ws->hdr[end] = '\0';
        r = hs_process(ws, end);
        free(ws->hdr);
        ws->hdr = NULL;
        if (r != 0) {
            free(early);
            return ws_finish(ws, r);
        }
        if (early_hdr > 0)
            r = ws_frames(ws, early, early_hdr);
        free(early);
    }
    if (r == 0 && ws->state == WS_OPEN && take < n)
        r = ws_frames(ws, data + take, n - take);
    return r;
}

int ws_send_binary(struct ws *ws, const uint8_t *data, size_t n)
{
    struct wslay_event_msg msg = { WSLAY_BINARY_FRAME, data, n };
    int r;

    if (ws->state == WS_HANDSHAKE)
        return -ENOTCONN;
    if (ws->state == WS_DONE)
        return -EPIPE;
    r = wslay_event_queue_msg(ws->ctx, &msg);
    if (r == WSLAY_ERR_NO_MORE_MSG)
        return -EPIPE;
    if (r != 0)
        return r == WSLAY_ERR_NOMEM ? -ENOMEM : -EINVAL;
    if ((r = ws_flush(ws)) != 0)
        return ws_finish(ws, r);
    return 0;
}

int ws_close(struct ws *ws, uint16_t code)
{
    int r;

    if (ws->state == WS_HANDSHAKE)
        return -ENOTCONN;
    if (ws->state == WS_DONE)
        return -EPIPE;
    r = wslay_event_queue_close(ws->ctx, code, NULL, 0);
    if (r == WSLAY_ERR_NO_MORE_MSG)
        return -EPIPE;
    if (r != 0)
        return r == WSLAY_ERR_NOMEM ? -ENOMEM : -EINVAL;
    if ((r = ws_flush(ws)) != 0)
        return ws_finish(ws, r);
    return 0;
}

/* ---- client address --------------------------------------------------- */

/* The IP of a sockaddr in canonical text.  0 or -EINVAL. */
static int sa_ip(const struct sockaddr *sa, char out[WS_IP_MAX])
{
    if (sa == NULL)
        return -EINVAL;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

        return inet_ntop(AF_INET, &s4->sin_addr, out, WS_IP_MAX) ? 0 : -EINVAL;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            return inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out,
                             WS_IP_MAX)
                       ? 0
                       : -EINVAL;
        return inet_ntop(AF_INET6, &s6->sin6_addr, out, WS_IP_MAX) ? 0
                                                                   : -EINVAL;
    }
    return -EINVAL;
}

int ws_proxy_trusted(const struct sockaddr *peer, const char *trusted_proxy)
{
    char a[WS_IP_MAX], b[WS_IP_MAX];

    if (trusted_proxy == NULL || trusted_proxy[0] == '\0')
        return 0;
    if (sa_ip(peer, a) != 0 ||
        ip_canon(trusted_proxy, strlen(trusted_proxy), b) != 0)
        return 0;
    return strcmp(a, b) == 0;
}

int ws_client_ip(const struct ws *ws, const struct sockaddr *peer,
                 const char *trusted_proxy, char *out, size_t cap)
{
    char ip[WS_IP_MAX];
    int r;

    if (cap > 0)
        out[0] = '\0';
    if ((r = sa_ip(peer, ip)) != 0)
        return r;
    if (ws->fwd_ip[0] != '\0') {
        if (ws_proxy_trusted(peer, trusted_proxy))
            memcpy(ip, ws->fwd_ip, sizeof(ip));
        else
            hd_debug(MOD, "%s: forwarded address ignored (untrusted %s)",
                     ws->desc, ip);
    }
    if (strlen(ip) >= cap)
        return -ENOSPC;
    memcpy(out, ip, strlen(ip) + 1);
    return 0;
}

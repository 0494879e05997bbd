/*
 * Blocking rendezvous client: server connection (with the optional
 * KeyExchange), punch request, relay request, and the TCP connects.  See
 * rendezvous.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "client/rendezvous.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "rendezvous.pb-c.h"

#define RV_MAX_FRAME        (64u * 1024)
#define RV_CONNECT_MS       5000
#define RV_LOCAL_MS         1000
#define RV_DIRECT_MS        3000
#define RV_KEY_EXCHANGE_MS  1500
#define RV_ANSWER_MS        20000
#define RV_RELAY_PORT_DELTA 1

/* One connection to the rendezvous server. */
struct rvc {
    int fd;
    int cancel_fd;
    int secure;
    struct hd_secure sec;
};

const char *rv_path_name(enum rv_path p)
{
    return p == RV_PATH_LAN ? "lan" : p == RV_PATH_RELAY ? "relay" : "direct";
}

static void set_err(struct rv_result *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_err(struct rv_result *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out->err, sizeof(out->err), fmt, ap);
    va_end(ap);
}

/*
 * Wait until fd has events (or cancel_fd is readable).  Returns 1 ready,
 * 0 timeout, -ECANCELED, or a negative errno.
 */
static int wait_fd(int fd, short events, int cancel_fd, int ms)
{
    struct pollfd p[2] = { { fd, events, 0 }, { cancel_fd, POLLIN, 0 } };
    int n;

    do {
        n = poll(p, cancel_fd >= 0 ? 2 : 1, ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (cancel_fd >= 0 && (p[1].revents & POLLIN))
        return -ECANCELED;
    return n > 0;
}

/* Connect with a timeout; returns a blocking fd or a negative errno. */
static int connect_timeout(const struct sockaddr *sa, int ms, int cancel_fd)
{
    int fd, r, err = 0, one = 1;
    socklen_t len = sizeof(err);

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, sa, hd_addr_len(sa)) != 0) {
        if (errno != EINPROGRESS) {
            r = -errno;
            goto fail;
        }
        if ((r = wait_fd(fd, POLLOUT, cancel_fd, ms)) <= 0) {
            r = r == 0 ? -ETIMEDOUT : r;
            goto fail;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
            r = err ? -err : -errno;
            goto fail;
        }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
fail:
    close(fd);
    return r;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EPIPE;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read exactly n bytes, all within ms overall. */
static int read_exact(struct rvc *c, uint8_t *p, size_t n, int ms)
{
    ssize_t got;
    int r;

    while (n > 0) {
        if ((r = wait_fd(c->fd, POLLIN, c->cancel_fd, ms)) <= 0)
            return r == 0 ? -ETIMEDOUT : r;
        got = recv(c->fd, p, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? -errno : -ECONNRESET;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Send one framed message, sealed once the channel is secure. */
static int rvc_send_secure(struct rvc *c, const Hbb__RendezvousMessage *m,
                           int may_seal)
{
    uint8_t buf[HD_FRAME_HDR_MAX + RV_MAX_FRAME + HD_SECURE_OVERHEAD];
    uint8_t plain[RV_MAX_FRAME];
    size_t n = hbb__rendezvous_message__get_packed_size(m), hdr;
    uint8_t *payload = buf + HD_FRAME_HDR_MAX;

    if (n > sizeof(plain))
        return HD_ETOOBIG;
    hbb__rendezvous_message__pack(m, plain);
    if (may_seal && c->secure && n > 1) {
        if (hd_secure_seal(&c->sec, plain, n, payload) != 0)
            return HD_ECRYPTO;
        n += HD_SECURE_OVERHEAD;
    } else {
        memcpy(payload, plain, n);
    }
    hdr = hd_frame_header(buf, n);
    memmove(buf + hdr, payload, n);
    return write_all(c->fd, buf, hdr + n);
}

static int rvc_send(struct rvc *c, const Hbb__RendezvousMessage *m)
{
    return rvc_send_secure(c, m, 1);
}

/* Receive one framed message within ms; opened if secure. */
static int rvc_recv(struct rvc *c, int ms, Hbb__RendezvousMessage **out)
{
    uint8_t hdr[HD_FRAME_HDR_MAX], *buf = NULL;
    size_t have = 0, hlen, plen;
    int r;

    *out = NULL;
    for (;;) {
        if ((r = read_exact(c, hdr + have, 1, ms)) != 0)
            return r;
        have++;
        if (hd_frame_parse_header(hdr, have, &hlen, &plen) == 1)
            break;
        if (have == sizeof(hdr))
            return HD_EPROTO;
    }
    if (plen > RV_MAX_FRAME + HD_SECURE_OVERHEAD)
        return HD_ETOOBIG;
    if ((buf = malloc(plen ? plen : 1)) == NULL)
        return -ENOMEM;
    if ((r = read_exact(c, buf, plen, ms)) != 0)
        goto out;
    if (c->secure && plen > 1) {
        if (plen < HD_SECURE_OVERHEAD ||
            hd_secure_open(&c->sec, buf, plen, buf) != 0) {
            r = HD_ECRYPTO;
            goto out;
        }
        plen -= HD_SECURE_OVERHEAD;
    }
    *out = hbb__rendezvous_message__unpack(NULL, plen, buf);
    r = *out ? 0 : HD_EPROTO;
out:
    free(buf);
    return r;
}

static void rvc_close(struct rvc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    hd_secure_cleanup(&c->sec);
}

/*
 * The server's KeyExchange offer: keys[0] = crypto_sign(its box key) by the
 * server key.  Answer KeyExchange{our box key, sealed secretbox key} in
 * the clear; from then on frames are sealed.
 */
static int complete_key_exchange(struct rvc *c, const Hbb__KeyExchange *kx,
                                 const uint8_t server_pk[HD_SIGN_PK_BYTES])
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__KeyExchange ans = HBB__KEY_EXCHANGE__INIT;
    uint8_t box_pk[64], my_pk[HD_BOX_PK_BYTES], sealed[HD_SEALED_KEY_BYTES];
    unsigned long long len;
    ProtobufCBinaryData keys[2];
    int r;

    if (kx->n_keys != 1 || kx->keys[0].len > sizeof(box_pk) + 64 ||
        kx->keys[0].len < crypto_sign_BYTES)
        return HD_EPROTO;
    if (crypto_sign_open(box_pk, &len, kx->keys[0].data, kx->keys[0].len,
                         server_pk) != 0)
        return HD_EAUTH;
    if (len != HD_BOX_PK_BYTES)
        return HD_EPROTO;
    if ((r = hd_secure_client_start(box_pk, my_pk, sealed, &c->sec)) != 0)
        return r;
    keys[0].data = my_pk;
    keys[0].len = sizeof(my_pk);
    keys[1].data = sealed;
    keys[1].len = sizeof(sealed);
    ans.n_keys = 2;
    ans.keys = keys;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE;
    m.key_exchange = &ans;
    if ((r = rvc_send_secure(c, &m, 0)) != 0)
        return r;
    c->secure = 1;
    return 0;
}

static const char *reason(int r)
{
    return r == -ETIMEDOUT ? "timed out" : hd_strerror(r);
}

/* Open a connection to the rendezvous server (and secure it if we can). */
static int open_server(const struct rv_request *req, const uint8_t *server_pk,
                       struct rvc *c, struct rv_result *out)
{
    struct sockaddr_storage ss;
    Hbb__RendezvousMessage *m = NULL;
    int r;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->cancel_fd = req->cancel_fd;
    if ((r = hd_addr_resolve(req->server, RV_DEFAULT_PORT, &ss)) != 0) {
        set_err(out, "cannot resolve the server '%s': %s", req->server,
                hd_strerror(r));
        return r < 0 && r > -4096 ? r : -EHOSTUNREACH;
    }
    if ((r = connect_timeout((struct sockaddr *)&ss, RV_CONNECT_MS,
                             req->cancel_fd)) < 0) {
        set_err(out, "server unreachable: cannot connect to %s: %s",
                req->server, reason(r));
        return r;
    }
    c->fd = r;
    if (server_pk == NULL)
        return 0; /* no key: nothing to verify an offer with; skip it */
    /* The server offers its KeyExchange at once, if it has one. */
    r = wait_fd(c->fd, POLLIN, req->cancel_fd, RV_KEY_EXCHANGE_MS);
    if (r == 0)
        return 0; /* a server without the secure channel (reference hbbs) */
    if (r < 0 || (r = rvc_recv(c, RV_CONNECT_MS, &m)) != 0) {
        set_err(out, "server %s: %s", req->server, reason(r));
        goto fail;
    }
    if (m->union_case != HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE) {
        set_err(out, "server %s: unexpected message %d", req->server,
                (int)m->union_case);
        r = HD_EPROTO;
        goto fail;
    }
    if ((r = complete_key_exchange(c, m->key_exchange, server_pk)) != 0) {
        if (r == HD_EAUTH)
            set_err(out, "key mismatch: the server's key differs from --key");
        else
            set_err(out, "server %s: secure channel failed: %s", req->server,
                    hd_strerror(r));
        goto fail;
    }
    hd_debug("rv", "secure channel with the server %s", req->server);
    hbb__rendezvous_message__free_unpacked(m, NULL);
    return 0;
fail:
    if (m != NULL)
        hbb__rendezvous_message__free_unpacked(m, NULL);
    rvc_close(c);
    return r;
}

/* Wait for a message of type want, ignoring others (e.g. a late offer). */
static int wait_for(struct rvc *c, int want, int ms,
                    Hbb__RendezvousMessage **out)
{
    int r;

    for (;;) {
        if ((r = rvc_recv(c, ms, out)) != 0)
            return r;
        if ((int)(*out)->union_case == want)
            return 0;
        hd_debug("rv", "ignoring server message %d", (int)(*out)->union_case);
        hbb__rendezvous_message__free_unpacked(*out, NULL);
        *out = NULL;
    }
}

/* Verify a server-signed IdPk for id and take the host key from it. */
static int check_signed_pk(const ProtobufCBinaryData *pk, const char *id,
                           const uint8_t *server_pk, struct rv_result *out)
{
    char got_id[128];
    uint8_t key[64];
    size_t len;
    int r;

    if (pk->len == 0) {
        set_err(out,
                "the server did not vouch for the key of host %s "
                "(an old host, or a server without a key)",
                id);
        return HD_EAUTH;
    }
    if (server_pk == NULL) {
        set_err(out, "no server key to verify the host with: pass --key "
                     "(the server's public key)");
        return HD_EAUTH;
    }
    r = hd_idpk_verify(pk->data, pk->len, server_pk, got_id, sizeof(got_id),
                       key, sizeof(key), &len);
    if (r != 0 || strcmp(got_id, id) != 0 || len != HD_SIGN_PK_BYTES) {
        set_err(out,
                "the host key for %s is not signed by the server's "
                "key (wrong --key, or an attack)",
                id);
        return HD_EAUTH;
    }
    memcpy(out->host_pk, key, HD_SIGN_PK_BYTES);
    return 0;
}

static void random_uuid(char out[37])
{
    uint8_t b[16];

    randombytes_buf(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

/* The relay address: given by the host/server, else server host:port+1. */
static int relay_addr(const struct rv_request *req, const char *relay,
                      struct sockaddr_storage *ss)
{
    struct sockaddr_storage srv;
    int r;

    if (relay != NULL && relay[0] != '\0')
        return hd_addr_resolve(relay, RV_DEFAULT_PORT + RV_RELAY_PORT_DELTA,
                               ss);
    if ((r = hd_addr_resolve(req->server, RV_DEFAULT_PORT, &srv)) != 0)
        return r;
    *ss = srv;
    hd_addr_set_port((struct sockaddr *)ss,
                     (uint16_t)(hd_addr_port((struct sockaddr *)&srv) +
                                RV_RELAY_PORT_DELTA));
    return 0;
}

static int via_relay(const struct rv_request *req, const uint8_t *server_pk,
                     const char *relay_hint, struct rv_result *out)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *ans = NULL;
    Hbb__RequestRelay rr = HBB__REQUEST_RELAY__INIT;
    Hbb__RelayResponse *resp;
    struct sockaddr_storage ss;
    struct rvc c = { .fd = -1 }, relay = { .fd = -1 };
    char uuid[37], as[HD_ADDR_STRLEN];
    const char *relay_name;
    uint8_t pk_before[HD_SIGN_PK_BYTES];
    int r;

    memcpy(pk_before, out->host_pk, sizeof(pk_before));
    if ((r = open_server(req, server_pk, &c, out)) != 0)
        return r;
    random_uuid(uuid);
    rr.id = (char *)req->id;
    rr.uuid = uuid;
    rr.relay_server = (char *)(relay_hint ? relay_hint : "");
    rr.licence_key = (char *)(req->key_b64 ? req->key_b64 : "");
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = &rr;
    if ((r = rvc_send(&c, &m)) != 0 ||
        (r = wait_for(&c, HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE,
                      RV_ANSWER_MS, &ans)) != 0) {
        set_err(out, "no relay answer from the server %s: %s", req->server,
                reason(r));
        goto out;
    }
    resp = ans->relay_response;
    if (resp->refuse_reason != NULL && resp->refuse_reason[0] != '\0') {
        set_err(out, "relay refused: %s", resp->refuse_reason);
        r = -ECONNREFUSED;
        goto out;
    }
    if (resp->union_case == HBB__RELAY_RESPONSE__UNION_PK) {
        if ((r = check_signed_pk(&resp->pk, req->id, server_pk, out)) != 0)
            goto out;
        if (sodium_memcmp(pk_before, out->host_pk, sizeof(pk_before)) != 0) {
            set_err(out, "the server vouched for two different keys of %s",
                    req->id);
            r = HD_EAUTH;
            goto out;
        }
    }
    relay_name = resp->relay_server && resp->relay_server[0]
                     ? resp->relay_server
                     : relay_hint;
    if ((r = relay_addr(req, relay_name, &ss)) != 0) {
        set_err(out, "bad relay address '%s'", relay_name ? relay_name : "");
        goto out;
    }
    hd_addr_format((struct sockaddr *)&ss, as, sizeof(as));
    if ((r = connect_timeout((struct sockaddr *)&ss, RV_CONNECT_MS,
                             req->cancel_fd)) < 0) {
        set_err(out, "relay unreachable: cannot connect to %s: %s", as,
                reason(r));
        goto out;
    }
    relay.fd = r;
    rr = (Hbb__RequestRelay)HBB__REQUEST_RELAY__INIT;
    rr.uuid = uuid;
    rr.licence_key = (char *)(req->key_b64 ? req->key_b64 : "");
    if ((r = rvc_send(&relay, &m)) != 0) {
        set_err(out, "relay %s: %s", as, reason(r));
        goto out;
    }
    hd_info("rv", "connected to %s through the relay %s", req->id, as);
    out->fd = relay.fd;
    relay.fd = -1;
    out->path = RV_PATH_RELAY;
    r = 0;
out:
    if (ans != NULL)
        hbb__rendezvous_message__free_unpacked(ans, NULL);
    rvc_close(&c);
    rvc_close(&relay);
    return r;
}

static int punch_failure(const Hbb__PunchHoleResponse *ph, const char *id,
                         struct rv_result *out)
{
    if (ph->other_failure != NULL && ph->other_failure[0] != '\0') {
        set_err(out, "the server refused: %s", ph->other_failure);
        return -ECONNREFUSED;
    }
    switch (ph->failure) {
    case HBB__PUNCH_HOLE_RESPONSE__FAILURE__ID_NOT_EXIST:
        set_err(out, "ID not found: %s is not registered with this server", id);
        return -ENOENT;
    case HBB__PUNCH_HOLE_RESPONSE__FAILURE__OFFLINE:
        set_err(out, "host offline: %s is not connected to the server", id);
        return -EHOSTDOWN;
    case HBB__PUNCH_HOLE_RESPONSE__FAILURE__LICENSE_MISMATCH:
        set_err(out, "key mismatch: the server's key differs from --key");
        return HD_EAUTH;
    default:
        set_err(out, "the server refused the connection to %s (failure %d)", id,
                (int)ph->failure);
        return -ECONNREFUSED;
    }
}

int rv_connect_id(const struct rv_request *req, struct rv_result *out)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *ans = NULL;
    Hbb__PunchHoleRequest ph = HBB__PUNCH_HOLE_REQUEST__INIT;
    Hbb__PunchHoleResponse *resp;
    uint8_t server_pk[HD_SIGN_PK_BYTES], *spk = NULL;
    struct sockaddr_storage host;
    struct rvc c = { .fd = -1 };
    char hs[HD_ADDR_STRLEN], relay_hint[256] = "";
    size_t len;
    int r, local, fd;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (req->key_b64 != NULL && req->key_b64[0] != '\0') {
        if (hd_base64_decode(req->key_b64, strlen(req->key_b64), server_pk,
                             sizeof(server_pk), &len) != 0 ||
            len != HD_SIGN_PK_BYTES) {
            set_err(out, "--key: not a base64 Ed25519 public key");
            return -EINVAL;
        }
        spk = server_pk;
    }
    if ((r = open_server(req, spk, &c, out)) != 0)
        return r;
    ph.id = (char *)req->id;
    ph.nat_type = HBB__NAT_TYPE__UNKNOWN_NAT;
    ph.licence_key = (char *)(req->key_b64 ? req->key_b64 : "");
    ph.conn_type = HBB__CONN_TYPE__DEFAULT_CONN;
    ph.version = (char *)req->version;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST;
    m.punch_hole_request = &ph;
    if ((r = rvc_send(&c, &m)) != 0 ||
        (r = wait_for(&c, HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE,
                      RV_ANSWER_MS, &ans)) != 0) {
        if (r == -ECANCELED)
            set_err(out, "cancelled");
        else
            set_err(out, "no answer from the server %s about %s: %s",
                    req->server, req->id, reason(r));
        goto out;
    }
    rvc_close(&c);
    resp = ans->punch_hole_response;
    if (resp->socket_addr.len == 0) {
        r = punch_failure(resp, req->id, out);
        goto out;
    }
    if ((r = check_signed_pk(&resp->pk, req->id, spk, out)) != 0)
        goto out;
    if (resp->relay_server != NULL)
        snprintf(relay_hint, sizeof(relay_hint), "%s", resp->relay_server);
    local = resp->union_case == HBB__PUNCH_HOLE_RESPONSE__UNION_IS_LOCAL &&
            resp->is_local;
    if (req->force_relay ||
        (!local &&
         resp->union_case == HBB__PUNCH_HOLE_RESPONSE__UNION_NAT_TYPE &&
         resp->nat_type == HBB__NAT_TYPE__SYMMETRIC) ||
        hd_addr_unmangle(resp->socket_addr.data, resp->socket_addr.len,
                         &host) != 0) {
        hd_info("rv", "%s: going through the relay", req->id);
    } else {
        hd_addr_format((struct sockaddr *)&host, hs, sizeof(hs));
        hd_info("rv", "%s: trying %s (%s)", req->id, hs,
                local ? "same LAN" : "direct");
        fd =
            connect_timeout((struct sockaddr *)&host,
                            local ? RV_LOCAL_MS : RV_DIRECT_MS, req->cancel_fd);
        if (fd >= 0) {
            out->fd = fd;
            out->path = local ? RV_PATH_LAN : RV_PATH_DIRECT;
            r = 0;
            goto out;
        }
        if (fd == -ECANCELED) {
            r = fd;
            set_err(out, "cancelled");
            goto out;
        }
        hd_info("rv", "%s: %s failed (%s); trying the relay", req->id, hs,
                reason(fd));
    }
    r = via_relay(req, spk, relay_hint[0] ? relay_hint : NULL, out);
out:
    if (ans != NULL)
        hbb__rendezvous_message__free_unpacked(ans, NULL);
    rvc_close(&c);
    sodium_memzero(server_pk, sizeof(server_pk));
    return r;
}

int rv_connect_direct(const char *hostport, int cancel_fd,
                      struct rv_result *out)
{
    struct sockaddr_storage ss;
    int r;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if ((r = hd_addr_resolve(hostport, 0, &ss)) != 0 ||
        hd_addr_port((struct sockaddr *)&ss) == 0) {
        set_err(out, "--direct: '%s' is not HOST:PORT", hostport);
        return -EINVAL;
    }
    if ((r = connect_timeout((struct sockaddr *)&ss, RV_CONNECT_MS,
                             cancel_fd)) < 0) {
        set_err(out, "host unreachable: cannot connect to %s: %s", hostport,
                reason(r));
        return r;
    }
    out->fd = r;
    out->path = RV_PATH_DIRECT;
    return 0;
}

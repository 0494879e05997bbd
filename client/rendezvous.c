/*
 * Blocking rendezvous client: the connection to the server (with the
 * optional KeyExchange), the relay request, the TCP connects, and
 * rv_connect_direct.  See rendezvous.h; rv_id.c and rv_race.c hold
 * rv_connect_id and the race (rv_int.h says which does what).
 */
#include <poll.h>

#include "client/rv_int.h"
#include "nat/tcp.h"
#include "rvsec.h"
#include "client/known_hosts.h"

const char *rv_path_name(enum rv_path p)
{
    return p == RV_PATH_LAN     ? "lan"
           : p == RV_PATH_RELAY ? "relay"
           : p == RV_PATH_UDP   ? "udp"
                                : "direct";
}

void rv_set_err(struct rv_result *out, const char *fmt, ...)
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

/*
 * A non-blocking TCP socket of family with TCP_NODELAY; with reuse, also
 * SO_REUSEADDR and SO_REUSEPORT and bound to port (0: any; *bound gets
 * it: common/nat/tcp.h), so that several sockets share the port that
 * talked to the server.  Returns the descriptor or a negative errno.
 */
int rv_tcp_socket(int family, int reuse, uint16_t port, uint16_t *bound)
{
    int fd, one = 1;

    if (reuse) {
        if ((fd = hd_nat_tcp_socket(family, port, bound)) >= 0)
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        return fd;
    }
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

void rv_set_blocking(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

/* Connect the non-blocking fd with a timeout; 0 (fd now blocking) or a
 * negative errno (fd left open). */
static int connect_fd(int fd, const struct sockaddr *sa, int ms, int cancel_fd)
{
    int r, err = 0;
    socklen_t len = sizeof(err);

    if (connect(fd, sa, hd_addr_len(sa)) != 0) {
        if (errno != EINPROGRESS)
            return -errno;
        if ((r = wait_fd(fd, POLLOUT, cancel_fd, ms)) <= 0)
            return r == 0 ? -ETIMEDOUT : r;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err)
            return err ? -err : -errno;
    }
    rv_set_blocking(fd);
    return 0;
}

/* Connect with a timeout; returns a blocking fd or a negative errno. */
static int connect_timeout(const struct sockaddr *sa, int ms, int cancel_fd)
{
    int fd, r;

    if ((fd = rv_tcp_socket(sa->sa_family, 0, 0, NULL)) < 0)
        return fd;
    if ((r = connect_fd(fd, sa, ms, cancel_fd)) != 0) {
        close(fd);
        return r;
    }
    return fd;
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

/* Pack m framed into buf (RV_FRAME_BUF bytes), sealed with sec unless
 * NULL: its length, or a negative error. */
int rv_pack(struct hd_secure *sec, const Hbb__RendezvousMessage *m,
            uint8_t *buf)
{
    uint8_t plain[RV_MAX_FRAME];
    size_t n = hbb__rendezvous_message__get_packed_size(m), hdr;
    uint8_t *payload = buf + HD_FRAME_HDR_MAX;

    if (n > sizeof(plain))
        return HD_ETOOBIG;
    hbb__rendezvous_message__pack(m, plain);
    if (sec != NULL && n > 1) {
        if (hd_secure_seal(sec, plain, n, payload) != 0)
            return HD_ECRYPTO;
        n += HD_SECURE_OVERHEAD;
    } else {
        memcpy(payload, plain, n);
    }
    hdr = hd_frame_header(buf, n);
    memmove(buf + hdr, payload, n);
    return (int)(hdr + n);
}

/* Send one framed message, sealed once the channel is secure. */
int rvc_send_secure(struct rvc *c, const Hbb__RendezvousMessage *m,
                    int may_seal)
{
    uint8_t buf[RV_FRAME_BUF];
    int n = rv_pack(may_seal && c->secure ? &c->sec : NULL, m, buf);

    return n < 0 ? n : write_all(c->fd, buf, (size_t)n);
}

int rvc_send(struct rvc *c, const Hbb__RendezvousMessage *m)
{
    return rvc_send_secure(c, m, 1);
}

/* Receive one framed message within ms; opened if secure. */
int rvc_recv(struct rvc *c, int ms, Hbb__RendezvousMessage **out)
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
    if ((r = read_exact(c, buf, plen, ms)) == 0)
        r = rv_unpack(c->secure ? &c->sec : NULL, buf, plen, out);
    free(buf);
    return r;
}

/* The payload buf[0..n) of a frame, opened with sec unless NULL (in
 * place), unpacked into *out: 0 or a negative error. */
int rv_unpack(struct hd_secure *sec, uint8_t *buf, size_t n,
              Hbb__RendezvousMessage **out)
{
    *out = NULL;
    if (sec != NULL && n > 1) {
        if (n < HD_SECURE_OVERHEAD || hd_secure_open(sec, buf, n, buf) != 0)
            return HD_ECRYPTO;
        n -= HD_SECURE_OVERHEAD;
    }
    *out = hbb__rendezvous_message__unpack(NULL, n, buf);
    return *out ? 0 : HD_EPROTO;
}

void rvc_close(struct rvc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    hd_secure_cleanup(&c->sec);
}

unsigned rv_offer_ms(const struct rv_request *req)
{
    return req->allow_plain_server ? RV_KEY_EXCHANGE_MS : RV_CONNECT_MS;
}

/*
 * The server offers its KeyExchange at once, if it has one.  With a key
 * it must (as RustDesk's clients require it): a man in the middle who
 * drops the offer would otherwise get a plain connection.  Only
 * --allow-plain-server (old hbbs without it) accepts none.
 */
int rv_no_offer(const struct rv_request *req, struct rv_result *out)
{
    if (req->allow_plain_server) {
        hd_warn("rv",
                "server %s offers no secure channel: continuing in plain "
                "text (--allow-plain-server)",
                req->server);
        return 0;
    }
    rv_set_err(out,
               "server %s offered no secure channel (KeyExchange) within "
               "%d s although --key is set: someone may be stripping it; "
               "for an old hbbs without it, add --allow-plain-server",
               req->server, RV_CONNECT_MS / 1000);
    return HD_EAUTH;
}

/* The known_hosts name under which a server key's offer of per-direction
 * keys is remembered (KH_KX_SPLIT_PREFIX + base64 key). */
static int kx_split_name(const uint8_t server_pk[HD_SIGN_PK_BYTES], char *out,
                         size_t cap)
{
    char b64[HD_BASE64_ENCODED_LEN(HD_SIGN_PK_BYTES)];

    hd_base64_encode(server_pk, HD_SIGN_PK_BYTES, b64, sizeof(b64));
    return snprintf(out, cap, "%s%s", KH_KX_SPLIT_PREFIX, b64) < (int)cap
               ? 0
               : -ENAMETOOLONG;
}

/*
 * The server's KeyExchange offer m: keys[0] = crypto_sign(its box key) by
 * the server key, and from homedesk-server hd_kx, its signed offer of
 * split keys.  The answer KeyExchange{our box key, sealed secretbox key}
 * (split when offered) goes out in the clear: ans->msg; from then on
 * frames are sealed with *sec.
 */
int rv_offer_answer(const struct rv_request *req,
                    const Hbb__RendezvousMessage *m, const uint8_t *server_pk,
                    struct hd_secure *sec, struct hd_rv_kx_answer *ans,
                    struct rv_result *out)
{
    char name[sizeof(KH_KX_SPLIT_PREFIX) + 64];
    int r, split;

    if (m->union_case != HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE) {
        rv_set_err(out, "server %s: unexpected message %d", req->server,
                   (int)m->union_case);
        return HD_EPROTO;
    }
    if ((r = hd_rv_kx_answer(m->key_exchange, server_pk, sec, &split, ans)) !=
        0) {
        if (r == HD_EAUTH)
            rv_set_err(out,
                       "key mismatch: the server's key differs from --key");
        else
            rv_set_err(out, "server %s: secure channel failed: %s", req->server,
                       hd_strerror(r));
        return r;
    }
    if (req->known_hosts != NULL &&
        kx_split_name(server_pk, name, sizeof(name)) == 0) {
        /* a server that offered per-direction keys once always does:
         * remember it, and take a legacy offer from it for a downgrade */
        r = split ? kh_check(req->known_hosts, name, "server", server_pk)
                  : kh_find(req->known_hosts, name, server_pk);
        if (!split && r == KH_MATCH) {
            hd_secure_cleanup(sec);
            rv_set_err(out,
                       "server %s offered only legacy keys (one key both "
                       "ways), but it offered per-direction keys before "
                       "(%s): someone between you and the server may be "
                       "stripping the offer; refusing to go on (if the "
                       "server was really replaced by one without them, "
                       "remove its %s line there)",
                       req->server, req->known_hosts, KH_KX_SPLIT_PREFIX);
            return HD_EAUTH;
        }
        if (r < 0)
            hd_warn("rv", "%s: %s", req->known_hosts, hd_strerror(r));
    }
    if (!split) {
        out->server_legacy = 1;
        hd_info("rv",
                "legacy encryption with the rendezvous server (one key both "
                "ways: it does not offer per-direction keys)");
    }
    hd_debug("rv", "secure channel with the server %s", req->server);
    return 0;
}

const char *rv_reason(int r)
{
    return r == -ETIMEDOUT ? "timed out" : hd_strerror(r);
}

/*
 * Open a connection to the rendezvous server (and secure it if we can).
 * With local != NULL, from a socket with address and port reuse, whose
 * port goes to *local (hole punching reuses it); srv, when not NULL,
 * gets the server's address.
 */
int rv_open_server(const struct rv_request *req, const uint8_t *server_pk,
                   struct rvc *c, struct rv_result *out, uint16_t *local,
                   struct sockaddr_storage *srv)
{
    struct sockaddr_storage ss;
    Hbb__RendezvousMessage *m = NULL;
    struct hd_rv_kx_answer ans;
    int r, fd;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->cancel_fd = req->cancel_fd;
    if ((r = hd_addr_resolve(req->server, RV_DEFAULT_PORT, &ss)) != 0) {
        rv_set_err(out, "cannot resolve the server '%s': %s", req->server,
                   hd_strerror(r));
        return r < 0 && r > -4096 ? r : -EHOSTUNREACH;
    }
    if (srv != NULL)
        *srv = ss;
    if ((fd = rv_tcp_socket(ss.ss_family, local != NULL, 0, local)) < 0 ||
        (r = connect_fd(fd, (struct sockaddr *)&ss, RV_CONNECT_MS,
                        req->cancel_fd)) != 0) {
        r = fd < 0 ? fd : r;
        if (fd >= 0)
            close(fd);
        rv_set_err(out, "server unreachable: cannot connect to %s: %s",
                   req->server, rv_reason(r));
        return r;
    }
    c->fd = fd;
    if (server_pk == NULL)
        return 0; /* no key: nothing to verify an offer with; skip it */
    /* the server's KeyExchange offer comes at once (rv_no_offer) */
    r = wait_fd(c->fd, POLLIN, req->cancel_fd, rv_offer_ms(req));
    if (r == 0) {
        r = rv_no_offer(req, out);
        if (r == 0)
            return 0;
        goto fail;
    }
    if (r < 0 || (r = rvc_recv(c, RV_CONNECT_MS, &m)) != 0) {
        rv_set_err(out, "server %s: %s", req->server, rv_reason(r));
        goto fail;
    }
    if ((r = rv_offer_answer(req, m, server_pk, &c->sec, &ans, out)) != 0)
        goto fail;
    if ((r = rvc_send_secure(c, &ans.msg, 0)) != 0) {
        rv_set_err(out, "server %s: secure channel failed: %s", req->server,
                   hd_strerror(r));
        goto fail;
    }
    c->secure = 1;
    hbb__rendezvous_message__free_unpacked(m, NULL);
    return 0;
fail:
    if (m != NULL)
        hbb__rendezvous_message__free_unpacked(m, NULL);
    rvc_close(c);
    return r;
}

/* Verify a server-signed IdPk for id and take the host key from it. */
int rv_check_signed_pk(const ProtobufCBinaryData *pk, const char *id,
                       const uint8_t *server_pk, struct rv_result *out)
{
    char got_id[128];
    uint8_t key[64];
    size_t len;
    int r;

    if (pk->len == 0) {
        rv_set_err(out,
                   "the server did not vouch for the key of host %s "
                   "(an old host, or a server without a key)",
                   id);
        return HD_EAUTH;
    }
    if (server_pk == NULL) {
        rv_set_err(out, "no server key to verify the host with: pass --key "
                        "(the server's public key)");
        return HD_EAUTH;
    }
    r = hd_idpk_verify(pk->data, pk->len, server_pk, got_id, sizeof(got_id),
                       key, sizeof(key), &len);
    if (r != 0 || strcmp(got_id, id) != 0 || len != HD_SIGN_PK_BYTES) {
        rv_set_err(out,
                   "the host key for %s is not signed by the server's "
                   "key (wrong --key, or an attack)",
                   id);
        return HD_EAUTH;
    }
    /* homedesk-server signs into the IdPk that it offers per-direction
     * keys: on a legacy channel, someone stripped that offer */
    if (out->server_legacy &&
        (hd_idpk_kx(pk->data, pk->len) & HD_KX_SPLIT) != 0) {
        rv_set_err(out,
                   "the server signs that it offers per-direction keys, but "
                   "this connection to it got only legacy ones (one key both "
                   "ways): someone between you and the server stripped the "
                   "offer; refusing to go on");
        return HD_EAUTH;
    }
    memcpy(out->host_pk, key, HD_SIGN_PK_BYTES);
    return 0;
}

int rv_punch_failure(const Hbb__PunchHoleResponse *ph, const char *id,
                     struct rv_result *out)
{
    if (ph->other_failure != NULL && ph->other_failure[0] != '\0') {
        rv_set_err(out, "the server refused: %s", ph->other_failure);
        return -ECONNREFUSED;
    }
    switch (ph->failure) {
    case HBB__PUNCH_HOLE_RESPONSE__FAILURE__ID_NOT_EXIST:
        rv_set_err(out, "ID not found: %s is not registered with this server",
                   id);
        return -ENOENT;
    case HBB__PUNCH_HOLE_RESPONSE__FAILURE__OFFLINE:
        rv_set_err(out, "host offline: %s is not connected to the server", id);
        return -EHOSTDOWN;
    case HBB__PUNCH_HOLE_RESPONSE__FAILURE__LICENSE_MISMATCH:
        rv_set_err(out, "key mismatch: the server's key differs from --key");
        return HD_EAUTH;
    default:
        rv_set_err(out, "the server refused the connection to %s (failure %d)",
                   id, (int)ph->failure);
        return -ECONNREFUSED;
    }
}

int rv_connect_direct(const char *hostport, int cancel_fd,
                      struct rv_result *out)
{
    struct sockaddr_storage ss;
    int r;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if ((r = hd_addr_resolve(hostport, RV_DIRECT_PORT, &ss)) != 0) {
        if (r == -EINVAL)
            rv_set_err(out, "--direct: '%s' is not HOST[:PORT]", hostport);
        else
            rv_set_err(out, "--direct: cannot resolve %s: %s", hostport,
                       rv_reason(r));
        return r;
    }
    if (hd_addr_port((struct sockaddr *)&ss) == 0) {
        rv_set_err(out, "--direct: '%s': port 0", hostport);
        return -EINVAL;
    }
    if ((r = connect_timeout((struct sockaddr *)&ss, RV_CONNECT_MS,
                             cancel_fd)) < 0) {
        rv_set_err(out, "host unreachable: cannot connect to %s: %s", hostport,
                   rv_reason(r));
        return r;
    }
    out->fd = r;
    out->path = RV_PATH_DIRECT;
    return 0;
}

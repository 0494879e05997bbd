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
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "client/rendezvous.h"
#include "client/upunch.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "message.pb-c.h"
#include "rendezvous.pb-c.h"
#include "rudp.h"

#define RV_MAX_FRAME        (64u * 1024)
#define RV_CONNECT_MS       5000
#define RV_LOCAL_MS         1000
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
    return p == RV_PATH_LAN     ? "lan"
           : p == RV_PATH_RELAY ? "relay"
           : p == RV_PATH_UDP   ? "udp"
                                : "direct";
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

/*
 * A non-blocking TCP socket of family with TCP_NODELAY; with reuse, also
 * SO_REUSEADDR and SO_REUSEPORT and bound to port (0: any; *bound gets
 * it), so that several sockets share the port that talked to the server.
 * Returns the descriptor or a negative errno.
 */
static int tcp_socket(int family, int reuse, uint16_t port, uint16_t *bound)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd, one = 1, r;

    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!reuse)
        return fd;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = (sa_family_t)family;
    hd_addr_set_port((struct sockaddr *)&ss, port);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, hd_addr_len((struct sockaddr *)&ss)) !=
            0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        r = -errno;
        close(fd);
        return r;
    }
    if (bound != NULL)
        *bound = hd_addr_port((struct sockaddr *)&ss);
    return fd;
}

static void set_blocking(int fd)
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
    set_blocking(fd);
    return 0;
}

/* Connect with a timeout; returns a blocking fd or a negative errno. */
static int connect_timeout(const struct sockaddr *sa, int ms, int cancel_fd)
{
    int fd, r;

    if ((fd = tcp_socket(sa->sa_family, 0, 0, NULL)) < 0)
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
 * server key, and from homedesk-server hd_kx, its signed offer of split
 * keys.  Answer KeyExchange{our box key, sealed secretbox key} in the
 * clear (split when offered); from then on frames are sealed.
 */
static int complete_key_exchange(struct rvc *c, const Hbb__KeyExchange *kx,
                                 const uint8_t server_pk[HD_SIGN_PK_BYTES])
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__KeyExchange ans = HBB__KEY_EXCHANGE__INIT;
    uint8_t box_pk[64], my_pk[HD_BOX_PK_BYTES], sealed[HD_SEALED_KEY2_BYTES];
    unsigned long long len;
    ProtobufCBinaryData keys[2];
    size_t sealed_len;
    int r, split;

    if (kx->n_keys != 1 || kx->keys[0].len > sizeof(box_pk) + 64 ||
        kx->keys[0].len < crypto_sign_BYTES)
        return HD_EPROTO;
    if (crypto_sign_open(box_pk, &len, kx->keys[0].data, kx->keys[0].len,
                         server_pk) != 0)
        return HD_EAUTH;
    if (len != HD_BOX_PK_BYTES)
        return HD_EPROTO;
    split =
        hd_kx_offer_verify(server_pk, box_pk, kx->hd_kx.data, kx->hd_kx.len);
    if ((r = hd_secure_client_start(box_pk, split, my_pk, sealed, &sealed_len,
                                    &c->sec)) != 0)
        return r;
    if (!split)
        hd_info("rv",
                "legacy encryption with the rendezvous server (one key both "
                "ways: it does not offer per-direction keys)");
    keys[0].data = my_pk;
    keys[0].len = sizeof(my_pk);
    keys[1].data = sealed;
    keys[1].len = sealed_len;
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

/*
 * Open a connection to the rendezvous server (and secure it if we can).
 * With local != NULL, from a socket with address and port reuse, whose
 * port goes to *local (hole punching reuses it); srv, when not NULL,
 * gets the server's address.
 */
static int open_server(const struct rv_request *req, const uint8_t *server_pk,
                       struct rvc *c, struct rv_result *out, uint16_t *local,
                       struct sockaddr_storage *srv)
{
    struct sockaddr_storage ss;
    Hbb__RendezvousMessage *m = NULL;
    int r, fd;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->cancel_fd = req->cancel_fd;
    if ((r = hd_addr_resolve(req->server, RV_DEFAULT_PORT, &ss)) != 0) {
        set_err(out, "cannot resolve the server '%s': %s", req->server,
                hd_strerror(r));
        return r < 0 && r > -4096 ? r : -EHOSTUNREACH;
    }
    if (srv != NULL)
        *srv = ss;
    if ((fd = tcp_socket(ss.ss_family, local != NULL, 0, local)) < 0 ||
        (r = connect_fd(fd, (struct sockaddr *)&ss, RV_CONNECT_MS,
                        req->cancel_fd)) != 0) {
        r = fd < 0 ? fd : r;
        if (fd >= 0)
            close(fd);
        set_err(out, "server unreachable: cannot connect to %s: %s",
                req->server, reason(r));
        return r;
    }
    c->fd = fd;
    if (server_pk == NULL)
        return 0; /* no key: nothing to verify an offer with; skip it */
    /*
     * The server offers its KeyExchange at once, if it has one.  With a
     * key it must (as RustDesk's clients require it): a man in the middle
     * who drops the offer would otherwise get a plain connection.  Only
     * --allow-plain-server (old hbbs without it) accepts none.
     */
    r = wait_fd(c->fd, POLLIN, req->cancel_fd,
                req->allow_plain_server ? RV_KEY_EXCHANGE_MS : RV_CONNECT_MS);
    if (r == 0 && req->allow_plain_server) {
        hd_warn("rv",
                "server %s offers no secure channel: continuing in plain "
                "text (--allow-plain-server)",
                req->server);
        return 0;
    }
    if (r == 0) {
        set_err(out,
                "server %s offered no secure channel (KeyExchange) within "
                "%d s although --key is set: someone may be stripping it; "
                "for an old hbbs without it, add --allow-plain-server",
                req->server, RV_CONNECT_MS / 1000);
        r = HD_EAUTH;
        goto fail;
    }
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

/*
 * The relay address: relay (the user's, or the one the host or server
 * named), else the server's host with its port + 1.  A named relay that
 * does not resolve here (a name only the server's compose network knows)
 * gives way to the server's address with the relay's port, said in one
 * log line.
 */
static int relay_addr(const struct rv_request *req, const char *relay,
                      struct sockaddr_storage *ss)
{
    struct sockaddr_storage srv;
    char alt[300];
    int r;

    if (relay != NULL && relay[0] != '\0') {
        r = hd_addr_resolve(relay, HD_RELAY_PORT, ss);
        if (r == -EINVAL || r == 0 ||
            hd_relay_fallback(relay, req->server, alt, sizeof(alt)) != 0)
            return r;
        hd_info("rv",
                "relay %s does not resolve here (%s): using the "
                "server's address, %s",
                relay, hd_strerror(r), alt);
        return hd_addr_resolve(alt, HD_RELAY_PORT, ss);
    }
    if ((r = hd_addr_resolve(req->server, RV_DEFAULT_PORT, &srv)) != 0)
        return r;
    *ss = srv;
    hd_addr_set_port((struct sockaddr *)ss,
                     (uint16_t)(hd_addr_port((struct sockaddr *)&srv) +
                                RV_RELAY_PORT_DELTA));
    return 0;
}

/*
 * Ask the server for a relay (RequestRelay -> RelayResponse), then join
 * it; with given_uuid (the host already chose the relay: a RelayResponse
 * answered our punch request) only join relay_hint with that uuid.
 */
static int via_relay(const struct rv_request *req, const uint8_t *server_pk,
                     const char *relay_hint, const char *given_uuid,
                     struct rv_result *out)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *ans = NULL;
    Hbb__RequestRelay rr = HBB__REQUEST_RELAY__INIT;
    Hbb__RelayResponse *resp;
    struct sockaddr_storage ss;
    struct rvc c = { .fd = -1 }, relay = { .fd = -1 };
    char uuid[128], as[HD_ADDR_STRLEN];
    const char *relay_name;
    uint8_t pk_before[HD_SIGN_PK_BYTES];
    int r;

    memcpy(pk_before, out->host_pk, sizeof(pk_before));
    if (given_uuid != NULL) {
        snprintf(uuid, sizeof(uuid), "%s", given_uuid);
        relay_name = relay_hint;
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
        m.request_relay = &rr;
        goto join;
    }
    if ((r = open_server(req, server_pk, &c, out, NULL, NULL)) != 0)
        return r;
    hd_uuid_random(uuid);
    /* the user's relay first, as RustDesk's apps; the host meets us there */
    if (req->relay != NULL)
        relay_hint = req->relay;
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
    relay_name =
        req->relay == NULL && resp->relay_server && resp->relay_server[0]
            ? resp->relay_server
            : relay_hint;
join:
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

/* ---- racing the paths ------------------------------------------------------
 *
 * After PunchHoleResponse, every way to the host runs at once and the
 * first connection whose first frame is a SignedId of this host that
 * verifies (with the key the server vouched for) wins:
 * - punch: connect() from our rendezvous port Q to the host's public
 *   address, again after each failure, while the host connects to us from
 *   its port (simultaneous open); plus a listener on Q for the host's SYN
 *   when our NAT lets it in (full cone);
 * - lan: the host's LAN address (is_local answers);
 * - relay: on a thread (it blocks on the server and the relay), started
 *   after a head start of the direct path: none when both sides are
 *   behind symmetric NATs, RV_HEAD_SYM_MS when one is, RV_HEAD_MS else.
 * Our NAT type comes from two TestNatRequests (server port and port - 1)
 * from one local port, answered while the race runs.  One log line per failed
 * path.
 */

#define RV_MAX_CANDS   8
#define RV_PUNCH_MS    6000 /* direct attempts, unless both symmetric */
#define RV_RETRY_MS    200  /* between refused punch attempts */
#define RV_HEAD_MS     1000 /* the direct path's head start over the relay */
#define RV_HEAD_SYM_MS 300  /* ... when one side is behind a symmetric NAT */
#define RV_HELLO_MS    5000 /* from connected to SignedId */
#define RV_PEEK_MAX    4096
#define RV_PRELUDE_MS  400 /* NAT test and UDP port before the request */
#define RV_UDP_WAIT_MS 120 /* the UDP port after the NAT test, at most */

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

enum cand_kind { CK_PUNCH, CK_LAN, CK_ACCEPTED, CK_RELAY, CK_UPNP, CK_PUNCH6 };

struct cand {
    int fd; /* -1: slot free */
    enum cand_kind kind;
    int open;          /* connected: waiting for SignedId */
    uint64_t deadline; /* connecting or waiting: give up then */
    uint64_t peek_at;  /* a partial frame: look again then */
    const struct sockaddr_storage *addr; /* where it connects, or NULL */
};

struct relay_job {
    pthread_t th;
    int started, joined;
    int notify[2]; /* the thread writes a byte when it is done */
    int stop[2];   /* we write a byte: give up */
    struct rv_request req;
    uint8_t spk[HD_SIGN_PK_BYTES];
    int have_spk;
    char hint[256], uuid[128];
    int given_uuid;
    struct rv_result res;
    int r;
};

struct race {
    const struct rv_request *req;
    struct rv_result *out;
    struct cand c[RV_MAX_CANDS];
    uint64_t t0;
    int lis;                      /* listener on Q, or -1 */
    uint16_t port;                /* Q */
    struct sockaddr_storage host; /* where to punch / the LAN address */
    struct sockaddr_storage upnp; /* host's public IP : its upnp_port */
    /* IPv6: our global address : port Q6 (listened on), the host's */
    struct sockaddr_storage me6, host6;
    int lis6, punch6, punch6_attempts;
    uint16_t port6;
    uint64_t punch6_until, punch6_retry_at;
    int extra; /* direct paths beyond the punch */
    int local, punch, punch_attempts, punch_err;
    uint64_t punch_until, punch_retry_at;
    int nat_fd[2], nat_sent[2], nat_port[2], me_sym, host_sym;
    struct relay_job job;
    int relay_failed;
    char direct_err[128];
    struct up up; /* UDP punching (upunch.h) */
};

static const char *cand_name(const struct cand *c)
{
    switch (c->kind) {
    case CK_PUNCH:
        return "direct (punched)";
    case CK_LAN:
        return "lan";
    case CK_ACCEPTED:
        return "direct (accepted)";
    case CK_UPNP:
        return "direct (mapped port)";
    case CK_PUNCH6:
        return "direct (IPv6)";
    default:
        return "relay";
    }
}

static void cand_drop(struct race *rc, struct cand *c, const char *why)
{
    if (c->fd < 0)
        return;
    if (why != NULL) {
        char hs[HD_ADDR_STRLEN];

        hd_addr_format((struct sockaddr *)(c->addr ? c->addr : &rc->host), hs,
                       sizeof(hs));
        hd_info("rv", "%s: %s path to %s failed: %s", rc->req->id, cand_name(c),
                c->kind == CK_RELAY ? "the relay" : hs, why);
        if (c->kind != CK_RELAY)
            snprintf(rc->direct_err, sizeof(rc->direct_err), "%s", why);
    }
    close(c->fd);
    c->fd = -1;
}

static struct cand *cand_add(struct race *rc, int fd, enum cand_kind kind,
                             int open, uint64_t deadline)
{
    for (int i = 0; i < RV_MAX_CANDS; i++) {
        if (rc->c[i].fd < 0) {
            rc->c[i] = (struct cand){ fd, kind, open, deadline, 0, NULL };
            return &rc->c[i];
        }
    }
    close(fd);
    return NULL;
}

/* Start a non-blocking connect to dst (from the shared port from_port,
 * else any); adds a candidate. */
static int cand_connect(struct race *rc, enum cand_kind kind,
                        uint16_t from_port, uint64_t deadline,
                        const struct sockaddr_storage *dst)
{
    const struct sockaddr *to = (const struct sockaddr *)dst;
    struct cand *c;
    int fd;

    if ((fd = tcp_socket(to->sa_family, from_port != 0, from_port, NULL)) < 0)
        return fd;
    if (connect(fd, to, hd_addr_len(to)) != 0 && errno != EINPROGRESS) {
        int r = -errno;

        close(fd);
        return r;
    }
    if ((c = cand_add(rc, fd, kind, 0, deadline)) == NULL)
        return -ENOMEM;
    c->addr = dst;
    return 0;
}

/*
 * The first frame on c, peeked (left for the session to read): 1 when it
 * is a SignedId of our host that verifies, 0 when it is not complete yet,
 * or a negative error.
 */
static int check_hello(struct race *rc, const uint8_t *buf, size_t n,
                       size_t cap)
{
    uint8_t box[64];
    size_t hlen, plen, klen;
    char id[128];
    Hbb__Message *m;
    int r;

    if (hd_frame_parse_header(buf, n, &hlen, &plen) != 1)
        return 0;
    if (plen > cap - hlen)
        return HD_EPROTO;
    if (hlen + plen > n)
        return 0;
    if ((m = hbb__message__unpack(NULL, plen, buf + hlen)) == NULL)
        return HD_EPROTO;
    r = HD_EPROTO;
    if (m->union_case == HBB__MESSAGE__UNION_SIGNED_ID) {
        r = hd_idpk_verify(m->signed_id->id.data, m->signed_id->id.len,
                           rc->out->host_pk, id, sizeof(id), box, sizeof(box),
                           &klen);
        if (r == 0 && strcmp(id, rc->req->id) != 0)
            r = HD_EAUTH;
    }
    hbb__message__free_unpacked(m, NULL);
    return r == 0 ? 1 : r;
}

static int peek_signed_id(struct race *rc, struct cand *c)
{
    uint8_t buf[RV_PEEK_MAX];
    ssize_t n;

    n = recv(c->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return -ECONNRESET;
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    return check_hello(rc, buf, (size_t)n, sizeof(buf));
}

static void *relay_main(void *arg)
{
    struct relay_job *j = arg;
    char b = 1;

    j->r = via_relay(&j->req, j->have_spk ? j->spk : NULL,
                     j->hint[0] ? j->hint : NULL,
                     j->given_uuid ? j->uuid : NULL, &j->res);
    if (write(j->notify[1], &b, 1) < 0) {
        /* the race polls notify; nothing else to do */
    }
    return NULL;
}

static int relay_start(struct race *rc, const uint8_t *spk, const char *hint,
                       const char *uuid)
{
    struct relay_job *j = &rc->job;

    if (j->started)
        return 0;
    if (pipe2(j->notify, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(j->stop, O_CLOEXEC) != 0) {
        close(j->notify[0]);
        close(j->notify[1]);
        return -errno;
    }
    j->req = *rc->req;
    j->req.cancel_fd = j->stop[0];
    if (spk != NULL) {
        memcpy(j->spk, spk, sizeof(j->spk));
        j->have_spk = 1;
    }
    snprintf(j->hint, sizeof(j->hint), "%s", hint ? hint : "");
    if (uuid != NULL) {
        snprintf(j->uuid, sizeof(j->uuid), "%s", uuid);
        j->given_uuid = 1;
    }
    memset(&j->res, 0, sizeof(j->res));
    j->res.fd = -1;
    memcpy(j->res.host_pk, rc->out->host_pk, sizeof(j->res.host_pk));
    if (pthread_create(&j->th, NULL, relay_main, j) != 0) {
        close(j->notify[0]);
        close(j->notify[1]);
        close(j->stop[0]);
        close(j->stop[1]);
        return -EAGAIN;
    }
    j->started = 1;
    hd_debug("rv", "%s: asking for the relay (%llu ms)", rc->req->id,
             (unsigned long long)(mono_ms() - rc->t0));
    return 0;
}

/* The relay thread is done: its connection becomes a candidate. */
static void relay_collect(struct race *rc)
{
    struct relay_job *j = &rc->job;

    if (!j->started || j->joined)
        return;
    pthread_join(j->th, NULL);
    j->joined = 1;
    if (j->r == 0 && j->res.fd >= 0) {
        fcntl(j->res.fd, F_SETFL, fcntl(j->res.fd, F_GETFL) | O_NONBLOCK);
        memcpy(rc->out->host_pk, j->res.host_pk, sizeof(rc->out->host_pk));
        if (cand_add(rc, j->res.fd, CK_RELAY, 1, mono_ms() + RV_HELLO_MS) ==
            NULL)
            rc->relay_failed = 1;
        j->res.fd = -1;
    } else {
        rc->relay_failed = 1;
        hd_info("rv", "%s: relay path failed: %s", rc->req->id, j->res.err);
        snprintf(rc->out->err, sizeof(rc->out->err), "%s", j->res.err);
    }
}

static void relay_cleanup(struct race *rc)
{
    struct relay_job *j = &rc->job;
    char b = 1;

    if (!j->started)
        return;
    if (!j->joined) {
        if (write(j->stop[1], &b, 1) < 0) {
            /* the thread ends at its own timeouts */
        }
        pthread_join(j->th, NULL);
        if (j->res.fd >= 0)
            close(j->res.fd);
    }
    close(j->notify[0]);
    close(j->notify[1]);
    close(j->stop[0]);
    close(j->stop[1]);
    j->started = 0;
}

/* NAT test socket i (0: server port, 1: port - 1) is ready for events. */
static void nat_step(struct race *rc, int i, short revents)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *a = NULL;
    Hbb__TestNatRequest t = HBB__TEST_NAT_REQUEST__INIT;
    struct rvc c = { .fd = rc->nat_fd[i], .cancel_fd = -1 };
    int err = 0, r;
    socklen_t len = sizeof(err);

    if (!rc->nat_sent[i]) {
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST;
        m.test_nat_request = &t;
        if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err ||
            rvc_send_secure(&c, &m, 0) != 0)
            goto fail;
        rc->nat_sent[i] = 1;
        return;
    }
    if (!(revents & (POLLIN | POLLHUP | POLLERR)))
        return;
    /* a KeyExchange offer may come first; the answer follows at once */
    while ((r = rvc_recv(&c, 200, &a)) == 0) {
        if (a->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_RESPONSE)
            break;
        hbb__rendezvous_message__free_unpacked(a, NULL);
        a = NULL;
    }
    if (r != 0 || a == NULL)
        goto fail;
    rc->nat_port[i] = a->test_nat_response->port;
    hbb__rendezvous_message__free_unpacked(a, NULL);
    close(rc->nat_fd[i]);
    rc->nat_fd[i] = -1;
    if (rc->nat_port[0] > 0 && rc->nat_port[1] > 0) {
        rc->me_sym = rc->nat_port[0] != rc->nat_port[1];
        hd_debug("rv", "our NAT: %s (ports %d, %d)",
                 rc->me_sym ? "symmetric" : "cone", rc->nat_port[0],
                 rc->nat_port[1]);
    }
    return;
fail:
    close(rc->nat_fd[i]);
    rc->nat_fd[i] = -1;
}

/* Can a direct (or LAN) connection still come up? */
static int direct_alive(const struct race *rc, uint64_t now)
{
    for (int i = 0; i < RV_MAX_CANDS; i++)
        if (rc->c[i].fd >= 0 && rc->c[i].kind != CK_RELAY)
            return 1;
    if (rc->punch6 && now < rc->punch6_until)
        return 1;
    if (up_alive(&rc->up))
        return 1;
    return rc->punch && now < rc->punch_until && !(rc->host_sym && rc->me_sym);
}

/* When the relay starts, in ms after the race began. */
static uint64_t relay_head(const struct race *rc, uint64_t now)
{
    if (rc->req->force_relay || !direct_alive(rc, now))
        return 0;
    if (rc->host_sym && rc->me_sym) /* only a mapped port or IPv6 left */
        return rc->extra ? RV_HEAD_SYM_MS : 0;
    if (rc->local)
        return RV_LOCAL_MS;
    /* one side symmetric, the other not: the UDP birthday search (the
     * host's guesses meet one of our fan's mappings, or ours the host's)
     * takes a few hundred ms at most; the TCP paths rarely work there */
    if ((rc->host_sym || rc->me_sym) && up_alive(&rc->up))
        return RV_HEAD_MS;
    if (rc->host_sym || rc->me_sym)
        return RV_HEAD_SYM_MS;
    return RV_HEAD_MS;
}

static int race_run(struct race *rc, const uint8_t *spk, const char *hint)
{
    struct pollfd p[RV_MAX_CANDS + 7 + UP_FAN];
    int map[RV_MAX_CANDS + 7 + UP_FAN], ufds[1 + UP_FAN];
    int n, i, k, r, busy, wait, nu;
    uint64_t now, next, unext;

    for (;;) {
        now = mono_ms();
        /* punch: (re)connect from Q until punch_until */
        busy = 0;
        for (i = 0; i < RV_MAX_CANDS; i++)
            busy |= rc->c[i].fd >= 0 && rc->c[i].kind == CK_PUNCH;
        if (rc->punch && !busy && now < rc->punch_until &&
            now >= rc->punch_retry_at && !(rc->host_sym && rc->me_sym)) {
            rc->punch_attempts++;
            if ((r = cand_connect(rc, CK_PUNCH, rc->port, rc->punch_until,
                                  &rc->host)) != 0) {
                rc->punch_err = r;
                rc->punch_retry_at = now + RV_RETRY_MS;
            }
        }
        /* IPv6: the same from Q6, while the host does it towards Q6 */
        busy = 0;
        for (i = 0; i < RV_MAX_CANDS; i++)
            busy |= rc->c[i].fd >= 0 && rc->c[i].kind == CK_PUNCH6;
        if (rc->punch6 && !busy && now < rc->punch6_until &&
            now >= rc->punch6_retry_at) {
            rc->punch6_attempts++;
            if (cand_connect(rc, CK_PUNCH6, rc->port6, rc->punch6_until,
                             &rc->host6) != 0)
                rc->punch6_retry_at = now + RV_RETRY_MS;
        }
        if (!rc->job.started && !rc->relay_failed &&
            now >= rc->t0 + relay_head(rc, now) &&
            relay_start(rc, spk, hint, NULL) != 0)
            rc->relay_failed = 1;
        /* UDP: probes, guesses, the stream's timers */
        unext = up_step(&rc->up, now);
        /* the poll set */
        n = 0;
        next = now + 1000;
        if (unext < next)
            next = unext;
        nu = up_fds(&rc->up, ufds, 1 + UP_FAN);
        for (k = 0; k < nu; k++) {
            p[n] = (struct pollfd){ ufds[k], POLLIN, 0 };
            map[n++] = -10;
        }
        if (rc->req->cancel_fd >= 0) {
            p[n] = (struct pollfd){ rc->req->cancel_fd, POLLIN, 0 };
            map[n++] = -1;
        }
        if (rc->lis >= 0) {
            p[n] = (struct pollfd){ rc->lis, POLLIN, 0 };
            map[n++] = -2;
        }
        if (rc->lis6 >= 0) {
            p[n] = (struct pollfd){ rc->lis6, POLLIN, 0 };
            map[n++] = -6;
        }
        if (rc->job.started && !rc->job.joined) {
            p[n] = (struct pollfd){ rc->job.notify[0], POLLIN, 0 };
            map[n++] = -3;
        }
        for (k = 0; k < 2; k++) {
            if (rc->nat_fd[k] >= 0) {
                p[n] = (struct pollfd){ rc->nat_fd[k],
                                        rc->nat_sent[k] ? POLLIN : POLLOUT, 0 };
                map[n++] = -4 - k;
            }
        }
        busy = 0;
        for (i = 0; i < RV_MAX_CANDS; i++) {
            struct cand *c = &rc->c[i];

            if (c->fd < 0)
                continue;
            if (now >= c->deadline) {
                cand_drop(rc, c, c->open ? "no SignedId in time" : "timed out");
                continue;
            }
            busy = 1;
            if (c->deadline < next)
                next = c->deadline;
            if (c->open && c->peek_at > now) {
                if (c->peek_at < next)
                    next = c->peek_at;
                continue;
            }
            p[n] = (struct pollfd){ c->fd, c->open ? POLLIN : POLLOUT, 0 };
            map[n++] = i;
        }
        /* the end: nothing left that could still connect */
        if (!busy && (rc->relay_failed || rc->job.joined) &&
            !direct_alive(rc, now))
            return rc->out->err[0] ? -ECONNREFUSED : -ETIMEDOUT;
        if (rc->punch && now < rc->punch_until) {
            uint64_t due = busy ? rc->punch_until : rc->punch_retry_at;

            if (due < next)
                next = due;
        }
        if (rc->punch6 && now < rc->punch6_until && rc->punch6_retry_at < next)
            next = rc->punch6_retry_at > now ? rc->punch6_retry_at : now;
        if (!rc->job.started && !rc->relay_failed &&
            rc->t0 + relay_head(rc, now) < next)
            next = rc->t0 + relay_head(rc, now);
        wait = next > now ? (int)(next - now) : 0;
        do {
            r = poll(p, (nfds_t)n, wait);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return -errno;
        now = mono_ms();
        for (k = 0; k < n; k++) {
            short ev = p[k].revents;

            if (ev == 0)
                continue;
            if (map[k] == -1)
                return -ECANCELED;
            if (map[k] == -2) {
                int afd =
                    accept4(rc->lis, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (afd >= 0) {
                    hd_debug("rv", "%s: accepted a connection on port %u",
                             rc->req->id, (unsigned)rc->port);
                    cand_add(rc, afd, CK_ACCEPTED, 1, now + RV_HELLO_MS);
                } else if (errno != EAGAIN && errno != EINTR &&
                           errno != ECONNABORTED) {
                    close(rc->lis); /* (EMFILE...) never spin on it */
                    rc->lis = -1;
                }
                continue;
            }
            if (map[k] == -3) {
                relay_collect(rc);
                continue;
            }
            if (map[k] == -6) {
                int afd =
                    accept4(rc->lis6, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (afd >= 0)
                    cand_add(rc, afd, CK_ACCEPTED, 1, now + RV_HELLO_MS);
                else if (errno != EAGAIN && errno != EINTR &&
                         errno != ECONNABORTED) {
                    close(rc->lis6);
                    rc->lis6 = -1;
                }
                continue;
            }
            if (map[k] == -10) {
                if (up_input(&rc->up, p[k].fd, now) != 1)
                    continue;
                r = check_hello(rc, rc->up.hello, rc->up.hello_len,
                                sizeof(rc->up.hello));
                if (r < 0) {
                    hd_info("rv", "%s: udp path failed: %s", rc->req->id,
                            r == HD_EAUTH ? "SignedId does not verify"
                                          : hd_strerror(r));
                    up_close(&rc->up);
                    continue;
                }
                if (r == 0)
                    continue;
                up_take(&rc->up, &rc->out->fd, &rc->out->rudp);
                memcpy(rc->out->pending, rc->up.hello, rc->up.hello_len);
                rc->out->pending_len = rc->up.hello_len;
                rc->out->path = RV_PATH_UDP;
                hd_info("rv", "%s: udp path won in %llu ms", rc->req->id,
                        (unsigned long long)(now - rc->t0));
                return 0;
            }
            if (map[k] <= -4) {
                nat_step(rc, -4 - map[k], ev);
                continue;
            }
            struct cand *c = &rc->c[map[k]];
            if (c->fd < 0)
                continue;
            if (!c->open) {
                int err = 0;
                socklen_t len = sizeof(err);

                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                    err = errno;
                if (err != 0) {
                    if (c->kind == CK_PUNCH) {
                        /* refused or unreachable: again, quietly */
                        rc->punch_err = -err;
                        rc->punch_retry_at = now + RV_RETRY_MS;
                        close(c->fd);
                        c->fd = -1;
                    } else if (c->kind == CK_PUNCH6) {
                        rc->punch6_retry_at = now + RV_RETRY_MS;
                        close(c->fd);
                        c->fd = -1;
                    } else {
                        cand_drop(rc, c, strerror(err));
                    }
                    continue;
                }
                c->open = 1;
                c->deadline = now + RV_HELLO_MS;
                hd_debug("rv", "%s: %s connected (%llu ms)", rc->req->id,
                         cand_name(c), (unsigned long long)(now - rc->t0));
                continue;
            }
            r = peek_signed_id(rc, c);
            if (r == 0) {
                c->peek_at = now + 10;
                continue;
            }
            if (r < 0) {
                cand_drop(rc, c,
                          r == -ECONNRESET ? "closed before SignedId"
                          : r == HD_EAUTH  ? "SignedId does not verify"
                                           : hd_strerror(r));
                continue;
            }
            /* the winner */
            set_blocking(c->fd);
            rc->out->fd = c->fd;
            rc->out->path = c->kind == CK_RELAY ? RV_PATH_RELAY
                            : c->kind == CK_LAN ? RV_PATH_LAN
                                                : RV_PATH_DIRECT;
            c->fd = -1;
            hd_info("rv", "%s: %s path won in %llu ms", rc->req->id,
                    cand_name(c), (unsigned long long)(now - rc->t0));
            return 0;
        }
    }
}

static void race_cleanup(struct race *rc)
{
    int i;

    for (i = 0; i < RV_MAX_CANDS; i++)
        if (rc->c[i].fd >= 0) {
            close(rc->c[i].fd);
            rc->c[i].fd = -1;
        }
    if (rc->punch && rc->out->fd >= 0 && rc->out->path == RV_PATH_RELAY) {
        char hs[HD_ADDR_STRLEN];

        hd_addr_format((struct sockaddr *)&rc->host, hs, sizeof(hs));
        hd_info("rv", "%s: direct path to %s failed: %s (%d attempts)",
                rc->req->id, hs,
                rc->direct_err[0] ? rc->direct_err
                : rc->punch_err   ? reason(rc->punch_err)
                                  : "no answer before the relay",
                rc->punch_attempts);
    }
    if (rc->lis >= 0)
        close(rc->lis);
    rc->lis = -1;
    if (rc->lis6 >= 0)
        close(rc->lis6);
    rc->lis6 = -1;
    for (i = 0; i < 2; i++)
        if (rc->nat_fd[i] >= 0) {
            close(rc->nat_fd[i]);
            rc->nat_fd[i] = -1;
        }
    up_close(&rc->up);
    relay_cleanup(rc);
}

/*
 * Before the punch request: the NAT type test (so the host learns our
 * NAT kind from PunchHole.nat_type) and our public UDP port, for at most
 * RV_PRELUDE_MS (a server whose NAT test port is not forwarded costs
 * that much, once per connection; the NAT type then goes out unknown);
 * the UDP answer gets RV_UDP_WAIT_MS more once the NAT test is done (a
 * server that is not homedesk-server never answers it).
 */
static int prelude(struct race *rc)
{
    struct pollfd p[4];
    int map[4], n, k, r, ufd;
    uint64_t now, until = mono_ms() + RV_PRELUDE_MS, nat_done = 0, next;

    for (;;) {
        now = mono_ms();
        if (rc->nat_fd[0] < 0 && rc->nat_fd[1] < 0 && nat_done == 0)
            nat_done = now;
        if (now >= until ||
            (nat_done && (rc->up.fd < 0 || rc->up.pub_port != 0 ||
                          now >= nat_done + RV_UDP_WAIT_MS)))
            return 0;
        next = up_step(&rc->up, now);
        if (nat_done && nat_done + RV_UDP_WAIT_MS < next)
            next = nat_done + RV_UDP_WAIT_MS;
        if (until < next)
            next = until;
        n = 0;
        if (rc->req->cancel_fd >= 0) {
            p[n] = (struct pollfd){ rc->req->cancel_fd, POLLIN, 0 };
            map[n++] = -1;
        }
        for (k = 0; k < 2; k++)
            if (rc->nat_fd[k] >= 0) {
                p[n] = (struct pollfd){ rc->nat_fd[k],
                                        rc->nat_sent[k] ? POLLIN : POLLOUT, 0 };
                map[n++] = k;
            }
        if (up_fds(&rc->up, &ufd, 1) == 1) {
            p[n] = (struct pollfd){ ufd, POLLIN, 0 };
            map[n++] = -10;
        }
        do {
            r = poll(p, (nfds_t)n, next > now ? (int)(next - now) : 0);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return -errno;
        now = mono_ms();
        for (k = 0; k < n; k++) {
            if (p[k].revents == 0)
                continue;
            if (map[k] == -1)
                return -ECANCELED;
            if (map[k] == -10)
                up_input(&rc->up, p[k].fd, now);
            else
                nat_step(rc, map[k], p[k].revents);
        }
    }
}

/*
 * Our global IPv6 address (port 0): the source address of the route to the
 * server when it is reached over IPv6, else towards 2001:db8:: (any
 * global address picks the default route; connect() on a UDP socket
 * sends nothing).  0, or a negative errno (no IPv6 route, or no global
 * unicast source: link-local and ULA addresses do not reach another
 * home).
 */
static int v6_self(const struct sockaddr_storage *srv,
                   struct sockaddr_storage *out)
{
    struct sockaddr_in6 to, *me = (struct sockaddr_in6 *)out;
    socklen_t len = sizeof(*out);
    int fd, r = 0;

    memset(out, 0, sizeof(*out));
    if (srv->ss_family == AF_INET6) {
        memcpy(&to, srv, sizeof(to));
    } else {
        memset(&to, 0, sizeof(to));
        to.sin6_family = AF_INET6;
        to.sin6_port = htons(9);
        to.sin6_addr.s6_addr[0] = 0x20; /* 2001:db8:: */
        to.sin6_addr.s6_addr[1] = 0x01;
        to.sin6_addr.s6_addr[2] = 0x0d;
        to.sin6_addr.s6_addr[3] = 0xb8;
    }
    if ((fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0 ||
        getsockname(fd, (struct sockaddr *)out, &len) != 0)
        r = -errno;
    close(fd);
    if (r == 0 && (out->ss_family != AF_INET6 ||
                   (me->sin6_addr.s6_addr[0] & 0xe0) != 0x20))
        r = -EADDRNOTAVAIL;
    me->sin6_port = 0;
    return r;
}

int rv_connect_id(const struct rv_request *req, struct rv_result *out)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *ans = NULL;
    Hbb__PunchHoleRequest ph = HBB__PUNCH_HOLE_REQUEST__INIT;
    Hbb__PunchHoleResponse *resp;
    uint8_t server_pk[HD_SIGN_PK_BYTES], *spk = NULL;
    struct sockaddr_storage srv, to;
    struct rvc c = { .fd = -1 };
    struct race rc;
    char hs[HD_ADDR_STRLEN], relay_hint[256] = "";
    uint8_t mangled6[HD_ADDR_MANGLED_MAX];
    const char *given_uuid = NULL;
    uint16_t nat_port = 0;
    size_t len;
    int r, i, answer_ms = req->answer_ms > 0 ? req->answer_ms : RV_ANSWER_MS;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    memset(&rc, 0, sizeof(rc));
    rc.req = req;
    rc.out = out;
    rc.lis = rc.lis6 = rc.nat_fd[0] = rc.nat_fd[1] = -1;
    for (i = 0; i < RV_MAX_CANDS; i++)
        rc.c[i].fd = -1;
    up_init(&rc.up);
    if (req->key_b64 != NULL && req->key_b64[0] != '\0') {
        if (hd_base64_decode(req->key_b64, strlen(req->key_b64), server_pk,
                             sizeof(server_pk), &len) != 0 ||
            len != HD_SIGN_PK_BYTES) {
            set_err(out, "--key: not a base64 Ed25519 public key");
            return -EINVAL;
        }
        spk = server_pk;
    }
    /* from a reusable port Q: the host will punch towards it */
    if ((r = open_server(req, spk, &c, out, &rc.port, &srv)) != 0)
        return r;
    /* listen on Q; the NAT type test (answered during the race) */
    if ((rc.lis = tcp_socket(srv.ss_family, 1, rc.port, NULL)) >= 0 &&
        listen(rc.lis, 8) != 0) {
        close(rc.lis);
        rc.lis = -1;
    }
    for (i = 0; i < 2 && !req->force_relay; i++) {
        to = srv;
        hd_addr_set_port((struct sockaddr *)&to,
                         (uint16_t)(hd_addr_port((struct sockaddr *)&srv) - i));
        /* a port of its own (Q's connection to the server is taken) */
        if ((rc.nat_fd[i] = tcp_socket(srv.ss_family, 1, nat_port,
                                       i == 0 ? &nat_port : NULL)) >= 0 &&
            connect(rc.nat_fd[i], (struct sockaddr *)&to,
                    hd_addr_len((struct sockaddr *)&to)) != 0 &&
            errno != EINPROGRESS) {
            close(rc.nat_fd[i]);
            rc.nat_fd[i] = -1;
        }
    }
    /* IPv6: our own address and a listener on Q6 for the host to punch to */
    if (!req->force_relay && v6_self(&srv, &rc.me6) == 0 &&
        (rc.lis6 = tcp_socket(AF_INET6, 1, 0, &rc.port6)) >= 0) {
        if (listen(rc.lis6, 8) != 0) {
            close(rc.lis6);
            rc.lis6 = -1;
        } else {
            hd_addr_set_port((struct sockaddr *)&rc.me6, rc.port6);
            ph.socket_addr_v6.data = mangled6;
            ph.socket_addr_v6.len = hd_addr_mangle((struct sockaddr *)&rc.me6,
                                                   hd_addr_now_us(), mangled6);
        }
    }
    /* our public UDP port (homedesk-server answers over UDP) and our NAT
     * kind, for the host */
    if (!req->force_relay && !req->no_udp &&
        (r = up_open(&rc.up, (struct sockaddr *)&srv, mono_ms())) != 0)
        hd_debug("rv", "no UDP socket: %s", hd_strerror(r));
    if (!req->force_relay && (r = prelude(&rc)) != 0) {
        if (r == -ECANCELED)
            set_err(out, "cancelled");
        else
            set_err(out, "cannot wait for the NAT test: %s", hd_strerror(r));
        goto out;
    }
    if (rc.up.fd >= 0 && rc.up.pub_port == 0) {
        hd_debug("rv", "the server did not tell our UDP port: no UDP path");
        up_close(&rc.up);
    }
    ph.id = (char *)req->id;
    ph.nat_type =
        rc.nat_port[0] > 0 && rc.nat_port[1] > 0
            ? (rc.me_sym ? HBB__NAT_TYPE__SYMMETRIC : HBB__NAT_TYPE__ASYMMETRIC)
            : HBB__NAT_TYPE__UNKNOWN_NAT;
    if (req->force_relay) { /* as RustDesk: the host goes to the relay */
        ph.nat_type = HBB__NAT_TYPE__SYMMETRIC;
        ph.force_relay = 1;
    }
    ph.udp_port = rc.up.pub_port;
    ph.licence_key = (char *)(req->key_b64 ? req->key_b64 : "");
    ph.conn_type = HBB__CONN_TYPE__DEFAULT_CONN;
    ph.version = (char *)req->version;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST;
    m.punch_hole_request = &ph;
    rc.t0 = mono_ms();
    if ((r = rvc_send(&c, &m)) != 0) {
        set_err(out, "server %s: %s", req->server, reason(r));
        goto out;
    }
    /* PunchHoleResponse, or a RelayResponse when the host (a RustDesk
     * one behind a symmetric NAT) chose the relay itself */
    for (;;) {
        if ((r = rvc_recv(&c, answer_ms, &ans)) != 0) {
            if (r == -ECANCELED)
                set_err(out, "cancelled");
            else if (r == -ETIMEDOUT) /* the server is there: it answered
                                       * the NAT test and kept the line */
                set_err(out,
                        "host %s offline or not answering: the server %s "
                        "passed the request on, but the host did not "
                        "answer in %d s (a host that stopped moments ago is "
                        "marked offline after about 30 s)",
                        req->id, req->server, answer_ms / 1000);
            else
                set_err(out, "the server %s dropped the request about %s: %s",
                        req->server, req->id, reason(r));
            goto out;
        }
        if (ans->union_case ==
                HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE ||
            ans->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE)
            break;
        hd_debug("rv", "ignoring server message %d", (int)ans->union_case);
        hbb__rendezvous_message__free_unpacked(ans, NULL);
        ans = NULL;
    }
    rvc_close(&c);
    rc.t0 = mono_ms();
    if (ans->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE) {
        Hbb__RelayResponse *rr = ans->relay_response;

        if (rr->refuse_reason != NULL && rr->refuse_reason[0] != '\0') {
            set_err(out, "relay refused: %s", rr->refuse_reason);
            r = -ECONNREFUSED;
            goto out;
        }
        if (rr->union_case != HBB__RELAY_RESPONSE__UNION_PK ||
            rr->uuid == NULL || strlen(rr->uuid) >= sizeof(rc.job.uuid)) {
            set_err(out, "the server's relay answer for %s is incomplete",
                    req->id);
            r = HD_EPROTO;
            goto out;
        }
        if ((r = check_signed_pk(&rr->pk, req->id, spk, out)) != 0)
            goto out;
        given_uuid = rr->uuid;
        if (rr->relay_server != NULL)
            snprintf(relay_hint, sizeof(relay_hint), "%s", rr->relay_server);
        hd_info("rv", "%s: the host chose the relay", req->id);
        if ((r = relay_start(&rc, spk, relay_hint, given_uuid)) != 0) {
            set_err(out, "cannot start the relay: %s", hd_strerror(r));
            goto out;
        }
        r = race_run(&rc, spk, relay_hint);
        goto raced;
    }
    resp = ans->punch_hole_response;
    if (resp->socket_addr.len == 0) {
        r = punch_failure(resp, req->id, out);
        goto out;
    }
    if ((r = check_signed_pk(&resp->pk, req->id, spk, out)) != 0)
        goto out;
    if (resp->relay_server != NULL)
        snprintf(relay_hint, sizeof(relay_hint), "%s", resp->relay_server);
    rc.local = resp->union_case == HBB__PUNCH_HOLE_RESPONSE__UNION_IS_LOCAL &&
               resp->is_local;
    rc.host_sym =
        !rc.local &&
        resp->union_case == HBB__PUNCH_HOLE_RESPONSE__UNION_NAT_TYPE &&
        resp->nat_type == HBB__NAT_TYPE__SYMMETRIC;
    if (!req->force_relay && !req->no_tcp &&
        hd_addr_unmangle(resp->socket_addr.data, resp->socket_addr.len,
                         &rc.host) == 0) {
        hd_addr_normalize(&rc.host);
        hd_addr_format((struct sockaddr *)&rc.host, hs, sizeof(hs));
        if (rc.local) {
            hd_info("rv", "%s: trying %s (same LAN)", req->id, hs);
            if ((r = cand_connect(&rc, CK_LAN, 0, rc.t0 + RV_LOCAL_MS,
                                  &rc.host)) != 0)
                hd_info("rv", "%s: lan path to %s failed: %s", req->id, hs,
                        reason(r));
        } else if (rc.host.ss_family == srv.ss_family) {
            hd_info("rv", "%s: punching to %s from port %u%s", req->id, hs,
                    (unsigned)rc.port,
                    rc.host_sym ? " (the host is behind a symmetric NAT)" : "");
            rc.punch = 1;
            rc.punch_until = rc.t0 + RV_PUNCH_MS;
        }
        /* the router's mapping of the host's --listen port (upnp.h) */
        if (!rc.local && resp->upnp_port > 0 && resp->upnp_port < 65536) {
            rc.upnp = rc.host;
            hd_addr_set_port((struct sockaddr *)&rc.upnp,
                             (uint16_t)resp->upnp_port);
            hd_addr_format((struct sockaddr *)&rc.upnp, hs, sizeof(hs));
            hd_info("rv", "%s: trying %s (the host's mapped port)", req->id,
                    hs);
            if ((r = cand_connect(&rc, CK_UPNP, 0, rc.t0 + RV_PUNCH_MS,
                                  &rc.upnp)) != 0)
                hd_info("rv", "%s: mapped port %s failed: %s", req->id, hs,
                        reason(r));
            else
                rc.extra = 1;
        }
    }
    /* UDP: the host's registration socket, as the server sees it */
    if (!req->force_relay && !rc.local && rc.up.fd >= 0 &&
        resp->udp_socket_addr.len > 0) {
        struct sockaddr_storage hu;

        if (hd_addr_unmangle(resp->udp_socket_addr.data,
                             resp->udp_socket_addr.len, &hu) == 0 &&
            hu.ss_family == srv.ss_family &&
            up_start(&rc.up, (struct sockaddr *)&hu, req->id, rc.me_sym,
                     rc.host_sym, rc.t0, RV_PUNCH_MS) == 0) {
            hd_addr_format((struct sockaddr *)&hu, hs, sizeof(hs));
            hd_info("rv", "%s: punching to %s over UDP%s", req->id, hs,
                    rc.me_sym     ? " from a fan of sockets (we are behind a "
                                    "symmetric NAT)"
                    : rc.host_sym ? " and to guessed ports (the host is "
                                    "behind a symmetric NAT)"
                                  : "");
        }
    }
    if (!up_alive(&rc.up))
        up_close(&rc.up);
    if (!req->force_relay && !req->no_tcp && rc.lis6 >= 0 &&
        resp->socket_addr_v6.len > 0 &&
        hd_addr_unmangle(resp->socket_addr_v6.data, resp->socket_addr_v6.len,
                         &rc.host6) == 0 &&
        rc.host6.ss_family == AF_INET6) {
        hd_addr_format((struct sockaddr *)&rc.host6, hs, sizeof(hs));
        hd_info("rv", "%s: punching to %s over IPv6 from port %u", req->id, hs,
                (unsigned)rc.port6);
        rc.punch6 = 1;
        rc.punch6_until = rc.t0 + RV_PUNCH_MS;
        rc.extra = 1;
    }
    if (!rc.punch && rc.lis >= 0) {
        close(rc.lis);
        rc.lis = -1;
    }
    if (!rc.punch6 && rc.lis6 >= 0) {
        close(rc.lis6);
        rc.lis6 = -1;
    }
    r = race_run(&rc, spk, relay_hint);
raced:
    if (r == -ECANCELED)
        set_err(out, "cancelled");
    else if (r != 0 && out->err[0] == '\0')
        set_err(out, "cannot reach %s: %s", req->id,
                rc.direct_err[0] ? rc.direct_err : reason(r));
out:
    race_cleanup(&rc);
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
    if ((r = hd_addr_resolve(hostport, RV_DIRECT_PORT, &ss)) != 0) {
        if (r == -EINVAL)
            set_err(out, "--direct: '%s' is not HOST[:PORT]", hostport);
        else
            set_err(out, "--direct: cannot resolve %s: %s", hostport,
                    reason(r));
        return r;
    }
    if (hd_addr_port((struct sockaddr *)&ss) == 0) {
        set_err(out, "--direct: '%s': port 0", hostport);
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

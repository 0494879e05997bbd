/*
 * The rendezvous client's messages: framing and sealing, the answer to
 * the server's KeyExchange offer, the checks of its answers (the host key
 * it vouches for, the failures it reports), and rv_connect_direct.  See
 * rendezvous.h; the connections themselves run on the race's loop
 * (rv_link.c), rv_id.c and rv_race.c hold rv_connect_id and the race
 * (rv_int.h says which does what).
 */
#include "client/rv_int.h"
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

void rv_set_blocking(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
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

int rv_connect_direct(uv_loop_t *loop, const char *hostport, int cancel_fd,
                      struct rv_result *out)
{
    struct rv_request req = {
        .server = hostport, .id = hostport, .cancel_fd = cancel_fd, .loop = loop
    };
    struct sockaddr_storage ss;
    struct race rc;
    int r;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if ((r = rv_race_init(&rc, &req, out)) != 0) {
        rv_set_err(out, "cannot start an event loop: %s", hd_strerror(r));
        return r;
    }
    if ((r = rv_resolve_wait(&rc, hostport, RV_DIRECT_PORT, &ss)) != 0) {
        if (r == -EINVAL)
            rv_set_err(out, "--direct: '%s' is not HOST[:PORT]", hostport);
        else
            rv_set_err(out, "--direct: cannot resolve %s: %s", hostport,
                       rv_reason(r));
        goto out;
    }
    if (hd_addr_port((struct sockaddr *)&ss) == 0) {
        rv_set_err(out, "--direct: '%s': port 0", hostport);
        r = -EINVAL;
        goto out;
    }
    if ((r = rv_link_open(&rc, &rc.lk, -1, &ss, NULL)) != 0 ||
        (r = rv_link_wait(&rc.lk, RV_CONNECT_MS, NULL)) != 0 ||
        (r = rv_take_fd((uv_handle_t *)&rc.lk.tcp)) < 0) {
        rv_set_err(out, "host unreachable: cannot connect to %s: %s", hostport,
                   rv_reason(r));
        goto out;
    }
    out->fd = r;
    out->path = RV_PATH_DIRECT;
    r = 0;
out:
    rv_race_cleanup(&rc);
    return r;
}

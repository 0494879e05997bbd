/*
 * Session stream: framing (frame.h), sealing (crypto.h) and Message
 * packing over one libuv TCP handle, or over a reliable stream on UDP
 * (rudp.h) driven by a uv_timer.  See channel.h.
 *
 * Closing: every handle the channel initialised (tcp always, the timer
 * and the udp socket on the UDP transport) is closed by hd_channel_close;
 * the memory goes with the last close callback (`handles` counts them).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "channel.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "net.h"
#include "os.h"
#include "rudp.h"

struct hd_channel {
    uv_tcp_t tcp;
    struct hd_channel_cb cb;
    void *ud;
    struct hd_frame_decoder dec;
    size_t max_msg;
    struct hd_secure sec;
    struct hd_box_key box; /* host: ours, until the viewer answers */
    unsigned secure : 1, box_set : 1, closed : 1, reading : 1, notified : 1;
    uint8_t *plain; /* scratch for opened frames */
    size_t plain_cap;
    unsigned handles; /* initialised handles not yet closed */

    /* UDP transport (rudp != NULL) */
    struct hd_rudp *rudp;
    uv_timer_t timer;
    uv_udp_t udp;
    int (*dsend)(void *send_ud, const uint8_t *dgram, size_t n);
    void *dsend_ud;
    struct sockaddr_storage peer;
    unsigned udp_init : 1, started : 1;
    int rudp_err; /* a send that broke the stream, reported by the timer */
    uint8_t dgram[2048]; /* one datagram read from udp */
};

int hd_channel_new(uv_loop_t *loop, size_t max_msg,
                   const struct hd_channel_cb *cb, void *ud,
                   struct hd_channel **out)
{
    struct hd_channel *ch;

    *out = NULL;
    if ((ch = calloc(1, sizeof(*ch))) == NULL)
        return -ENOMEM;
    ch->cb = *cb;
    ch->ud = ud;
    ch->max_msg = max_msg ? max_msg : HD_CHANNEL_MAX_MSG;
    hd_frame_decoder_init(&ch->dec, ch->max_msg + HD_SECURE_OVERHEAD);
    uv_tcp_init(loop, &ch->tcp);
    ch->tcp.data = ch;
    ch->handles = 1;
    *out = ch;
    return 0;
}

uv_tcp_t *hd_channel_tcp(struct hd_channel *ch)
{
    return &ch->tcp;
}

static void freed(uv_handle_t *h)
{
    struct hd_channel *ch = h->data;

    if (--ch->handles > 0)
        return;
    hd_rudp_free(ch->rudp);
    hd_frame_decoder_cleanup(&ch->dec);
    hd_secure_cleanup(&ch->sec);
    if (ch->box_set)
        hd_box_key_cleanup(&ch->box);
    free(ch->plain);
    free(ch);
}

void hd_channel_close(struct hd_channel *ch)
{
    if (ch == NULL || ch->closed)
        return;
    ch->closed = 1;
    if (ch->rudp != NULL) {
        /* FIN now, while the socket is still open; nothing runs later */
        hd_rudp_close(ch->rudp, uv_now(ch->tcp.loop));
        hd_net_close((uv_handle_t *)&ch->timer, freed);
        if (ch->udp_init)
            hd_net_close((uv_handle_t *)&ch->udp, freed);
    }
    hd_net_close((uv_handle_t *)&ch->tcp, freed);
}

/* End by itself: tell the owner once. */
static void fail(struct hd_channel *ch, int reason)
{
    if (ch->notified || ch->closed)
        return;
    ch->notified = 1;
    if (ch->reading)
        uv_read_stop((uv_stream_t *)&ch->tcp);
    if (ch->rudp != NULL) {
        uv_timer_stop(&ch->timer);
        if (ch->udp_init)
            uv_udp_recv_stop(&ch->udp);
    }
    ch->cb.on_close(ch, reason, ch->ud);
}

static int handle_frame(struct hd_channel *ch, const uint8_t *data, size_t n)
{
    Hbb__Message *m;

    if (ch->secure && n > 1) {
        if (n < HD_SECURE_OVERHEAD)
            return HD_ECRYPTO;
        if (ch->plain_cap < n) {
            uint8_t *p = realloc(ch->plain, n);
            if (p == NULL)
                return -ENOMEM;
            ch->plain = p;
            ch->plain_cap = n;
        }
        if (hd_secure_open(&ch->sec, data, n, ch->plain) != 0)
            return HD_ECRYPTO;
        data = ch->plain;
        n -= HD_SECURE_OVERHEAD;
    }
    if (n > ch->max_msg)
        return HD_ETOOBIG;
    if ((m = hbb__message__unpack(NULL, n, data)) == NULL)
        return HD_EPROTO;
    ch->cb.on_message(ch, m, ch->ud);
    hbb__message__free_unpacked(m, NULL);
    return 0;
}

/* Take every complete frame; stops when the owner closed the channel. */
static void drain(struct hd_channel *ch)
{
    const uint8_t *p;
    size_t n;
    int r;

    while (!ch->closed && !ch->notified &&
           (r = hd_frame_decoder_next(&ch->dec, &p, &n)) == 1) {
        if ((r = handle_frame(ch, p, n)) != 0) {
            fail(ch, r);
            return;
        }
    }
    if (!ch->closed && !ch->notified && r < 0)
        fail(ch, r);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct hd_channel *ch = h->data;

    hd_net_frame_buf(&ch->dec, 0, buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hd_channel *ch = s->data;

    if (nread < 0) {
        fail(ch, nread == UV_ENOBUFS ? HD_ETOOBIG : (int)nread);
        return;
    }
    if (nread == 0)
        return;
    if (hd_frame_decoder_commit(&ch->dec, (size_t)nread) != 0) {
        fail(ch, HD_EPROTO);
        return;
    }
    drain(ch);
}

/* ---- UDP transport ---- */

static void on_rudp_timer(uv_timer_t *t);

static void rudp_output(const uint8_t *dgram, size_t n, void *ud)
{
    struct hd_channel *ch = ud;

    (void)ch->dsend(ch->dsend_ud, dgram, n); /* losses are repaired */
}

/* Move what rudp has in order into the decoder and take the frames. */
static void rudp_pump(struct hd_channel *ch)
{
    uint8_t *p;
    size_t avail, got;
    int r;

    while (!ch->closed && !ch->notified && hd_rudp_readable(ch->rudp) > 0) {
        if ((r = hd_frame_decoder_reserve(&ch->dec, hd_rudp_readable(ch->rudp),
                                          &p, &avail)) != 0) {
            fail(ch, r);
            return;
        }
        got = hd_rudp_recv(ch->rudp, p, avail);
        if ((r = hd_frame_decoder_commit(&ch->dec, got)) != 0) {
            fail(ch, r);
            return;
        }
        drain(ch);
    }
}

/* Let rudp do what is due, report its end, and re-arm the timer. */
static void rudp_tick(struct hd_channel *ch)
{
    uint64_t now = uv_now(ch->tcp.loop), next;
    int r;

    if (ch->closed || ch->notified)
        return;
    next = hd_rudp_update(ch->rudp, now);
    if ((r = ch->rudp_err) != 0 || (r = hd_rudp_error(ch->rudp)) != 0) {
        fail(ch, r);
        return;
    }
    uv_timer_start(&ch->timer, on_rudp_timer, next > now ? next - now : 1, 0);
}

static void on_rudp_timer(uv_timer_t *t)
{
    rudp_tick(t->data);
}

int hd_channel_use_rudp(
    struct hd_channel *ch, struct hd_rudp *r, const struct sockaddr *peer,
    int (*send)(void *send_ud, const uint8_t *dgram, size_t n), void *send_ud)
{
    struct hd_rudp_cb cb = { rudp_output };

    if (ch->rudp != NULL || ch->started || ch->closed)
        return -EALREADY;
    if (r == NULL || send == NULL)
        return -EINVAL;
    memset(&ch->peer, 0, sizeof(ch->peer));
    if (peer != NULL)
        memcpy(&ch->peer, peer, hd_addr_len(peer));
    uv_timer_init(ch->tcp.loop, &ch->timer);
    ch->timer.data = ch;
    ch->handles++;
    ch->rudp = r;
    ch->dsend = send;
    ch->dsend_ud = send_ud;
    hd_rudp_set_output(r, &cb, ch);
    return 0;
}

void hd_channel_datagram(struct hd_channel *ch, const uint8_t *dgram, size_t n)
{
    if (ch->rudp == NULL || ch->closed || ch->notified)
        return;
    if (hd_rudp_input(ch->rudp, dgram, n, uv_now(ch->tcp.loop)) != 0)
        return; /* foreign or malformed: counted and logged by rudp */
    if (!ch->started)
        return; /* bytes wait in rudp, after the owner's leftover */
    rudp_pump(ch);
    rudp_tick(ch);
}

static int udp_send(void *ud, const uint8_t *dgram, size_t n)
{
    struct hd_channel *ch = ud;
    uv_buf_t b = uv_buf_init((char *)dgram, (unsigned)n);
    int r;

    if (ch->closed && uv_is_closing((uv_handle_t *)&ch->udp))
        return UV_EBADF;
    r = uv_udp_try_send(&ch->udp, &b, 1, NULL);
    return r < 0 ? r : 0;
}

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct hd_channel *ch = h->data;

    buf->base = (char *)ch->dgram;
    buf->len = sizeof(ch->dgram);
}

static void on_udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
    struct hd_channel *ch = u->data;

    /*
     * Errors (ICMP refusals while the other side is not up yet) are not
     * fatal: a dead peer is rudp's to find.
     */
    if (nread <= 0 || (flags & UV_UDP_PARTIAL))
        return;
    hd_channel_datagram(ch, (const uint8_t *)buf->base, (size_t)nread);
}

int hd_channel_open_udp(struct hd_channel *ch, int fd, struct hd_rudp *r)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss), rc;

    if (ch->rudp != NULL || ch->udp_init || ch->started || ch->closed) {
        os_sock_close((os_sock)fd);
        return -EALREADY;
    }
    if ((rc = uv_udp_init(ch->tcp.loop, &ch->udp)) != 0) {
        os_sock_close((os_sock)fd);
        return rc;
    }
    ch->udp.data = ch;
    ch->udp_init = 1;
    ch->handles++;
    if ((rc = uv_udp_open(&ch->udp, (uv_os_sock_t)fd)) != 0) {
        os_sock_close((os_sock)fd); /* ours in every case */
        return rc;
    }
    /* from here fd belongs to the handle, closed with the channel */
    if ((rc = uv_udp_getpeername(&ch->udp, (struct sockaddr *)&ss, &len)) != 0)
        return rc;
    hd_net_udp_buffers(&ch->udp);
    return hd_channel_use_rudp(ch, r, (struct sockaddr *)&ss, udp_send, ch);
}

int hd_channel_start(struct hd_channel *ch, const uint8_t *leftover, size_t n)
{
    int r;

    if (n > 0 && (r = hd_frame_decoder_feed(&ch->dec, leftover, n)) != 0)
        return r;
    if (ch->rudp != NULL) {
        if (ch->udp_init &&
            (r = uv_udp_recv_start(&ch->udp, on_udp_alloc, on_udp_recv)) != 0)
            return r;
        ch->started = 1;
        if (n > 0)
            drain(ch);
        rudp_pump(ch);
        rudp_tick(ch);
        return 0;
    }
    if ((r = uv_read_start((uv_stream_t *)&ch->tcp, on_alloc, on_read)) != 0)
        return r;
    ch->reading = 1;
    if (n > 0)
        drain(ch);
    return 0;
}

/* Frame (and seal) payload[0..n) and write it in one go. */
static int write_frame(struct hd_channel *ch, const uint8_t *data, size_t n,
                       int seal)
{
    uint8_t hdr[HD_FRAME_HDR_MAX], *sealed = NULL;
    uv_buf_t bufs[2];
    size_t total = n;
    int r;

    if (ch->closed || ch->notified)
        return -EPIPE;
    /*
     * On rudp, refuse before sealing (a frame sealed and not sent would
     * break the nonce sequence): the channel stays usable.
     */
    if (ch->rudp != NULL && hd_rudp_backlog(ch->rudp) + HD_FRAME_HDR_MAX + n +
                                    (seal ? HD_SECURE_OVERHEAD : 0) >
                                HD_RUDP_MAX_QUEUE)
        return -ENOBUFS;
    if (seal && n > 1) {
        if ((sealed = malloc(n + HD_SECURE_OVERHEAD)) == NULL)
            return -ENOMEM;
        if ((r = hd_secure_seal(&ch->sec, data, n, sealed)) != 0) {
            free(sealed);
            return r;
        }
        data = sealed;
        total = n + HD_SECURE_OVERHEAD;
    }
    bufs[0] = uv_buf_init((char *)hdr, (unsigned)hd_frame_header(hdr, total));
    bufs[1] = uv_buf_init((char *)data, (unsigned)total);
    if (bufs[0].len == 0) {
        r = HD_ETOOBIG;
    } else if (ch->rudp != NULL) {
        uint64_t now = uv_now(ch->tcp.loop);

        if ((r = hd_rudp_send(ch->rudp, (uint8_t *)bufs[0].base, bufs[0].len,
                              now)) == 0 &&
            (r = hd_rudp_send(ch->rudp, data, total, now)) != 0) {
            /* half a frame went (-ENOMEM): the stream is broken; the
             * owner hears it from the timer, not from inside this send */
            ch->rudp_err = r;
            uv_timer_start(&ch->timer, on_rudp_timer, 0, 0);
        }
        if (r == 0 && ch->started)
            rudp_tick(ch);
    } else {
        r = hd_net_writev((uv_stream_t *)&ch->tcp, bufs, 2, NULL);
    }
    free(sealed);
    return r;
}

int hd_channel_send_payload(struct hd_channel *ch, const uint8_t *data,
                            size_t n)
{
    return write_frame(ch, data, n, ch->secure);
}

int hd_channel_send_plain(struct hd_channel *ch, const uint8_t *data, size_t n)
{
    return write_frame(ch, data, n, 0);
}

void hd_channel_set_max_msg(struct hd_channel *ch, size_t max_msg)
{
    ch->max_msg = max_msg ? max_msg : HD_CHANNEL_MAX_MSG;
    ch->dec.max_payload = ch->max_msg + HD_SECURE_OVERHEAD;
    if (ch->dec.max_payload > HD_FRAME_MAX_LEN)
        ch->dec.max_payload = HD_FRAME_MAX_LEN;
}

int hd_channel_send(struct hd_channel *ch, const Hbb__Message *m)
{
    size_t n = hbb__message__get_packed_size(m);
    uint8_t stackbuf[1024], *buf = stackbuf;
    int r;

    if (n > ch->max_msg)
        return HD_ETOOBIG;
    if (n > sizeof(stackbuf) && (buf = malloc(n)) == NULL)
        return -ENOMEM;
    hbb__message__pack(m, buf);
    r = hd_channel_send_payload(ch, buf, n);
    if (buf != stackbuf)
        free(buf);
    return r;
}

size_t hd_channel_backlog(const struct hd_channel *ch)
{
    if (ch->rudp != NULL)
        return hd_rudp_backlog(ch->rudp);
    return uv_stream_get_write_queue_size((const uv_stream_t *)&ch->tcp);
}

int hd_channel_is_secure(const struct hd_channel *ch)
{
    return ch->secure;
}

int hd_channel_is_legacy(const struct hd_channel *ch)
{
    return ch->secure && ch->sec.legacy;
}

const uint8_t *hd_channel_binding(const struct hd_channel *ch)
{
    return ch->secure ? hd_secure_binding(&ch->sec) : NULL;
}

int hd_channel_peer(const struct hd_channel *ch, struct sockaddr_storage *ss)
{
    if (ch->rudp != NULL) {
        *ss = ch->peer;
        return ch->peer.ss_family == AF_UNSPEC ? UV_ENOTCONN : 0;
    }
    return hd_net_peer_addr((uv_tcp_t *)&ch->tcp, ss);
}

int hd_channel_host_hello(struct hd_channel *ch, const struct hd_sign_key *key,
                          const char *id)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__SignedId sid = HBB__SIGNED_ID__INIT;
    uint8_t *signed_idpk = NULL;
    size_t len;
    int r;

    if (ch->box_set)
        return -EALREADY;
    if ((r = hd_box_key_generate(&ch->box)) != 0)
        return r;
    ch->box_set = 1;
    if ((r = hd_idpk_sign_kx(key, id, ch->box.pk, HD_BOX_PK_BYTES, HD_KX_SPLIT,
                             &signed_idpk, &len)) != 0)
        return r;
    sid.id.data = signed_idpk;
    sid.id.len = len;
    sid.sign_pk.data = (uint8_t *)key->pk; /* extension: see channel.h */
    sid.sign_pk.len = HD_SIGN_PK_BYTES;
    m.union_case = HBB__MESSAGE__UNION_SIGNED_ID;
    m.signed_id = &sid;
    r = hd_channel_send(ch, &m);
    free(signed_idpk);
    return r;
}

int hd_channel_host_accept(struct hd_channel *ch, const Hbb__PublicKey *pk)
{
    int r;

    if (!ch->box_set || ch->secure)
        return HD_EPROTO;
    if (pk->asymmetric_value.len == 0 && pk->symmetric_value.len == 0)
        return HD_EPROTO; /* the peer asks for no encryption */
    r = hd_secure_host_accept(
        &ch->box, pk->asymmetric_value.data, pk->asymmetric_value.len,
        pk->symmetric_value.data, pk->symmetric_value.len, &ch->sec);
    hd_box_key_cleanup(&ch->box);
    ch->box_set = 0;
    if (r != 0)
        return r;
    ch->secure = 1;
    return 0;
}

int hd_channel_viewer_accept(struct hd_channel *ch, const Hbb__SignedId *sid,
                             const uint8_t host_pk[HD_SIGN_PK_BYTES],
                             const char *expected_id)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__PublicKey pk = HBB__PUBLIC_KEY__INIT;
    uint8_t box_pk[64], my_pk[HD_BOX_PK_BYTES], sealed[HD_SEALED_KEY2_BYTES];
    char id[128];
    size_t box_len, sealed_len;
    int r, split;

    if (ch->secure)
        return HD_EPROTO;
    r = hd_idpk_verify(sid->id.data, sid->id.len, host_pk, id, sizeof(id),
                       box_pk, sizeof(box_pk), &box_len);
    if (r != 0)
        return r == HD_EAUTH ? HD_EAUTH : HD_EPROTO;
    if (strcmp(id, expected_id) != 0)
        return HD_EAUTH;
    if (box_len != HD_BOX_PK_BYTES)
        return HD_EPROTO;
    /* the host's offer of split keys is inside what it signed */
    split = (hd_idpk_kx(sid->id.data, sid->id.len) & HD_KX_SPLIT) != 0;
    if ((r = hd_secure_client_start(box_pk, split, my_pk, sealed, &sealed_len,
                                    &ch->sec)) != 0)
        return r;
    pk.asymmetric_value.data = my_pk;
    pk.asymmetric_value.len = sizeof(my_pk);
    pk.symmetric_value.data = sealed;
    pk.symmetric_value.len = sealed_len;
    m.union_case = HBB__MESSAGE__UNION_PUBLIC_KEY;
    m.public_key = &pk;
    if ((r = hd_channel_send(ch, &m)) != 0)
        return r;
    ch->secure = 1;
    return 0;
}

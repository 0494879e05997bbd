/*
 * The viewer session's handshake and login (session_int.h): the host's
 * SignedId checked against the key the server vouched for (or pinned in
 * known_hosts for --direct), the password hash, the login answer, and the
 * file transfer a login starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "channel.h"
#include "clip.h"
#include "client/known_hosts.h"
#include "client/session_int.h"
#include "crypto.h"
#include "err.h"
#include "log.h"
#include "net.h"
#include "rudp.h"

/*
 * Pin s->host_pk under name in known_hosts, as ssh does: by address for
 * --direct, "id:ID@SERVER" by ID (the key the server vouched for: the
 * server, or whoever holds its key, could otherwise swap the host).  A
 * changed key is refused.  Records the key's fingerprint for the stats.
 * Returns 0, or -1 after failf.
 */
int sess_pin_host_key(struct sess *s, const char *name)
{
    char fp[HD_FINGERPRINT_LEN];
    int r;

    hd_key_fingerprint(s->host_pk, fp);
    pthread_mutex_lock(&s->mu);
    snprintf(s->st.host_fp, sizeof(s->st.host_fp), "%s", fp);
    pthread_mutex_unlock(&s->mu);
    r = kh_check(s->cfg.known_hosts, name, s->host_id, s->host_pk);
    if (r == KH_CHANGED) {
        sess_failf(s,
                   "host key changed for %s (now %s): refusing to connect "
                   "(possible man-in-the-middle); if the host was reinstalled, "
                   "remove the line for %s from %s",
                   name, fp, name, s->cfg.known_hosts);
        return -1;
    }
    if (r < 0) {
        sess_failf(s, "%s: %s", s->cfg.known_hosts, hd_strerror(r));
        return -1;
    }
    hd_info("session", "host %s key %s (%s %s)", s->host_id, fp,
            r == KH_NEW ? "first seen: pinned in" : "as pinned in",
            s->cfg.known_hosts);
    return 0;
}

/*
 * --direct: take the host key from the sign_pk extension, pin or check it
 * (known_hosts), and find the host's ID inside the signed IdPk.
 */
static int direct_host_key(struct sess *s, const Hbb__SignedId *sid)
{
    uint8_t box[64];
    size_t len;

    if (sid->sign_pk.len != HD_SIGN_PK_BYTES) {
        sess_failf(s,
                   "host %s did not send its key (not a homedesk host?): "
                   "--direct needs one; connect by ID through a server instead",
                   s->cfg.direct);
        return -1;
    }
    memcpy(s->host_pk, sid->sign_pk.data, HD_SIGN_PK_BYTES);
    if (hd_idpk_verify(sid->id.data, sid->id.len, s->host_pk, s->host_id,
                       sizeof(s->host_id), box, sizeof(box), &len) != 0) {
        sess_failf(s, "host %s: its SignedId does not verify with its own key",
                   s->cfg.direct);
        return -1;
    }
    return sess_pin_host_key(s, s->cfg.direct);
}

void sess_on_signed_id(struct sess *s, const Hbb__SignedId *sid)
{
    int r;

    if (s->state != ST_SIGNED_ID) {
        sess_failf(s, "host sent SignedId twice");
        return;
    }
    if (s->cfg.direct != NULL && direct_host_key(s, sid) != 0)
        return;
    r = hd_channel_viewer_accept(s->ch, sid, s->host_pk, s->host_id);
    if (r == HD_EAUTH) {
        sess_failf(s,
                   "host identity check failed: %s did not prove it holds the "
                   "key %s (possible man-in-the-middle)",
                   s->host_id,
                   s->cfg.direct ? "pinned for it" : "the server vouched for");
        return;
    }
    if (r != 0) {
        sess_failf(s, "handshake with the host failed: %s", hd_strerror(r));
        return;
    }
    if (hd_channel_is_legacy(s->ch)) {
        /* a RustDesk host: it speaks nothing else */
        hd_warn("session",
                "legacy encryption with host %s: it is a RustDesk app, one "
                "key both ways (whoever relays the session can XOR the "
                "directions)",
                s->host_id);
        pthread_mutex_lock(&s->mu);
        s->st.legacy = 1;
        pthread_mutex_unlock(&s->mu);
    } else {
        hd_debug("session", "channel sealed (per-direction keys)");
    }
    s->state = ST_HASH;
}

void sess_on_hash(struct sess *s, const Hbb__Hash *h)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__LoginRequest lr = HBB__LOGIN_REQUEST__INIT;
    Hbb__OptionMessage opt = HBB__OPTION_MESSAGE__INIT;
    Hbb__SupportedDecoding sd = HBB__SUPPORTED_DECODING__INIT;
    Hbb__CodecAbility i444 = HBB__CODEC_ABILITY__INIT;
    Hbb__FileTransfer ft = HBB__FILE_TRANSFER__INIT;
    uint8_t proof[HD_SHA256_BYTES];
    crypto_hash_sha256_state hs;
    const char *ch = h->challenge ? h->challenge : "";

    if (s->state != ST_HASH) {
        sess_failf(s, "host sent Hash %s",
                   s->state < ST_HASH ? "before the secure channel" : "twice");
        return;
    }
    if (s->cfg.salted != NULL)
        memcpy(s->salted, s->cfg.salted, sizeof(s->salted));
    else
        hd_login_salted(s->cfg.password, h->salt ? h->salt : "", s->salted);
    /* proof = SHA256(salted || challenge), as hd_login_hash */
    crypto_hash_sha256_init(&hs);
    crypto_hash_sha256_update(&hs, s->salted, sizeof(s->salted));
    crypto_hash_sha256_update(&hs, (const uint8_t *)ch, strlen(ch));
    crypto_hash_sha256_final(&hs, proof);
    if (hd_channel_binding(s->ch) != NULL) /* our host: bound to the session */
        hd_login_bind(hd_channel_binding(s->ch), proof);
    dec_abilities(&sd, &i444);
    opt.supported_decoding = &sd;
    if (s->cfg.no_clipboard)
        opt.disable_clipboard = HBB__OPTION_MESSAGE__BOOL_OPTION__Yes;
    if (s->cfg.no_audio)
        opt.disable_audio = HBB__OPTION_MESSAGE__BOOL_OPTION__Yes;
    if (s->cfg.xfer != NULL) {
        ft.dir = (char *)(s->cfg.xfer->mode == VXFER_PUT ? s->cfg.xfer->to
                                                         : s->cfg.xfer->path);
        lr.union_case = HBB__LOGIN_REQUEST__UNION_FILE_TRANSFER;
        lr.file_transfer = &ft;
    }
    lr.username = s->host_id;
    lr.password.data = proof;
    lr.password.len = sizeof(proof);
    lr.my_id = (char *)s->cfg.my_id;
    lr.my_name = (char *)s->cfg.my_name;
    lr.option = &opt;
    /* an ack per frame (Misc.video_received): the host keeps only a few
     * frames in flight, so a slow link skips frames at their source */
    lr.video_ack_required = 1;
    lr.version = HD_VERSION;
    lr.my_platform = "Linux";
    m.union_case = HBB__MESSAGE__UNION_LOGIN_REQUEST;
    m.login_request = &lr;
    sess_send_msg(s, &m);
    sodium_memzero(proof, sizeof(proof));
    if (!s->ended)
        s->state = ST_LOGIN;
}

static int xfer_send(void *ud, const Hbb__Message *m)
{
    struct sess *s = ud;
    int r = s->ch != NULL ? hd_channel_send(s->ch, m) : -ENOTCONN;

    if (r != 0)
        sess_failf(s, "connection to the host lost: %s", hd_strerror(r));
    return r;
}

static size_t xfer_backlog(void *ud)
{
    struct sess *s = ud;

    return s->ch != NULL ? hd_channel_backlog(s->ch) : 0;
}

static void xfer_progress(void *ud, uint64_t done, uint64_t total)
{
    struct sess *s = ud;

    pthread_mutex_lock(&s->mu);
    s->st.xfer_done = done;
    s->st.xfer_total = total;
    pthread_mutex_unlock(&s->mu);
}

static void xfer_end(void *ud, int status, const char *msg)
{
    struct sess *s = ud;

    if (status != 0)
        sess_failf(s, "%s", msg ? msg : "file transfer failed");
    else
        sess_finish(s, 0, NULL);
}

/* Logged in for a file transfer: run it. */
static void start_xfer(struct sess *s, const Hbb__PeerInfo *pi)
{
    struct vxfer_io io = { &s->loop, xfer_send,     xfer_backlog,
                           xfer_end, xfer_progress, s };
    int r;

    s->state = ST_LIVE;
    pthread_mutex_lock(&s->mu);
    s->st.connect_ms = (double)(mono_ms() - s->t0_ms);
    pthread_mutex_unlock(&s->mu);
    hd_info("session", "logged in to %s (%s) for a file transfer", s->host_id,
            pi->hostname ? pi->hostname : "?");
    if ((r = vxfer_new(s->cfg.xfer, &io, &s->xf)) != 0) {
        sess_failf(s, "file transfer: %s", hd_strerror(r));
        return;
    }
    vxfer_start(s->xf);
}

void sess_on_login_response(struct sess *s, const Hbb__LoginResponse *lr)
{
    const Hbb__PeerInfo *pi;
    const Hbb__DisplayInfo *d = NULL;
    int w = 0, h = 0, cur = 0;

    if (s->state != ST_LOGIN) {
        sess_failf(s, "host sent LoginResponse out of turn");
        return;
    }
    if (lr->union_case == HBB__LOGIN_RESPONSE__UNION_ERROR) {
        if (strcmp(lr->error, "Wrong Password") == 0)
            sess_failf(s, "wrong password for %s", s->host_id);
        else
            sess_failf(s, "host refused the login: %s", lr->error);
        return;
    }
    if (lr->union_case != HBB__LOGIN_RESPONSE__UNION_PEER_INFO) {
        sess_failf(s, "host refused the login (no reason given)");
        return;
    }
    pi = lr->peer_info;
    if (s->cfg.xfer != NULL) {
        start_xfer(s, pi);
        return;
    }
    if (pi->n_displays > 0) {
        cur = pi->current_display >= 0 &&
                      (size_t)pi->current_display < pi->n_displays
                  ? pi->current_display
                  : 0;
        d = pi->displays[cur];
        w = d->width;
        h = d->height;
    }
    if (w <= 0 || h <= 0 || w > PIC_MAX_DIM || h > PIC_MAX_DIM) {
        sess_failf(s, "host reports no usable display (%dx%d)", w, h);
        return;
    }
    s->state = ST_LIVE;
    pthread_mutex_lock(&s->mu);
    s->st.width = w;
    s->st.height = h;
    s->st.disp_x = d != NULL ? d->x : 0;
    s->st.disp_y = d != NULL ? d->y : 0;
    s->st.display = cur;
    s->st.n_displays = (int)pi->n_displays;
    s->st.connect_ms = (double)(mono_ms() - s->t0_ms);
    s->logged_in = 1;
    snprintf(s->peer_name, sizeof(s->peer_name), "%s%s%s",
             pi->username && pi->username[0] ? pi->username : "",
             pi->username && pi->username[0] ? "@" : "",
             pi->hostname ? pi->hostname : "");
    pthread_mutex_unlock(&s->mu);
    hd_info("session", "logged in to %s (%s %s, display %dx%d)", s->host_id,
            pi->hostname ? pi->hostname : "?",
            pi->platform ? pi->platform : "?", w, h);
    s->cb.on_ready(w, h, s->ud);
}

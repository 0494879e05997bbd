/*
 * The session thread: connect (blocking), then a libuv loop around one
 * hd_channel.  See session.h.
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
#include "client/session.h"
#include "crypto.h"
#include "err.h"
#include "log.h"
#include "net.h"
#include "rudp.h"

enum sess_state { ST_SIGNED_ID = 0, ST_HASH, ST_LOGIN, ST_LIVE, ST_DONE };

struct sess_input {
    uint8_t *data;
    size_t n;
};

struct sess {
    struct sess_config cfg;
    struct sess_cb cb;
    void *ud;
    struct dec *dec;
    pthread_t thread;
    int started;
    int cancel[2]; /* pipe: readable once sess_stop was called */

    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t idle;
    struct hd_channel *ch;
    enum sess_state state;
    int ended;
    uint64_t t0_ms;
    char host_id[128]; /* the ID we log in to */
    uint8_t host_pk[HD_SIGN_PK_BYTES];
    int codec_warned;
    uint8_t salted[HD_SHA256_BYTES]; /* for sess_get_login */
    struct vxfer *xf; /* file transfer (cfg.xfer), once logged in */

    pthread_mutex_t mu; /* guards what follows */
    int stop;
    int loop_done;
    int logged_in;
    char peer_name[128];
    struct sess_input in[SESS_INPUT_MAX];
    int in_head, in_count;
    struct sess_stats st;
};

/* Monotonic milliseconds. */
#define mono_ms() (uv_hrtime() / 1000000u)

static void close_noop(uv_handle_t *h)
{
    (void)h;
}

/* The session is over: tell the owner once, then let the loop wind down. */
static void finish(struct sess *s, int status, const char *msg)
{
    char clean[400];

    if (s->ended)
        return;
    if (msg != NULL) {
        /* it may quote the host or the server: no terminal escapes */
        snprintf(clean, sizeof(clean), "%s", msg);
        hd_log_printable(clean, strlen(clean));
        msg = clean;
    }
    s->ended = 1;
    s->state = ST_DONE;
    pthread_mutex_lock(&s->mu);
    s->loop_done = 1; /* no more uv_async_send from other threads */
    pthread_mutex_unlock(&s->mu);
    /* main prints msg for the user; keep the log free of duplicates */
    hd_debug("session", "ended: %s", status != 0 ? msg : "stopped");
    hd_channel_close(s->ch);
    s->ch = NULL;
    vxfer_free(s->xf);
    s->xf = NULL;
    hd_net_close((uv_handle_t *)&s->idle, close_noop);
    hd_net_close((uv_handle_t *)&s->wake, close_noop);
    s->cb.on_end(status, msg, s->ud);
}

static void failf(struct sess *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void failf(struct sess *s, const char *fmt, ...)
{
    char msg[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    finish(s, 1, msg);
}

static void send_or_fail(struct sess *s, const Hbb__Message *m)
{
    int r;

    if (s->ch != NULL && (r = hd_channel_send(s->ch, m)) != 0)
        failf(s, "connection lost: %s", hd_strerror(r));
}

/* A Misc message with one bool set: refresh_video, video_received. */
static void send_misc_flag(struct sess *s, Hbb__Misc__UnionCase which)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Misc misc = HBB__MISC__INIT;

    misc.union_case = which;
    if (which == HBB__MISC__UNION_REFRESH_VIDEO)
        misc.refresh_video = 1;
    else
        misc.video_received = 1;
    m.union_case = HBB__MESSAGE__UNION_MISC;
    m.misc = &misc;
    send_or_fail(s, &m);
}

static void send_refresh(struct sess *s)
{
    hd_debug("session", "asking for a key frame");
    send_misc_flag(s, HBB__MISC__UNION_REFRESH_VIDEO);
}

/* ---- handshake and login ------------------------------------------------ */

/*
 * Pin s->host_pk under name in known_hosts, as ssh does: by address for
 * --direct, "id:ID@SERVER" by ID (the key the server vouched for: the
 * server, or whoever holds its key, could otherwise swap the host).  A
 * changed key is refused.  Records the key's fingerprint for the stats.
 * Returns 0, or -1 after failf.
 */
static int pin_host_key(struct sess *s, const char *name)
{
    char fp[HD_FINGERPRINT_LEN];
    int r;

    hd_key_fingerprint(s->host_pk, fp);
    pthread_mutex_lock(&s->mu);
    snprintf(s->st.host_fp, sizeof(s->st.host_fp), "%s", fp);
    pthread_mutex_unlock(&s->mu);
    r = kh_check(s->cfg.known_hosts, name, s->host_id, s->host_pk);
    if (r == KH_CHANGED) {
        failf(s,
              "host key changed for %s (now %s): refusing to connect "
              "(possible man-in-the-middle); if the host was reinstalled, "
              "remove the line for %s from %s",
              name, fp, name, s->cfg.known_hosts);
        return -1;
    }
    if (r < 0) {
        failf(s, "%s: %s", s->cfg.known_hosts, hd_strerror(r));
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
        failf(s,
              "host %s did not send its key (not a homedesk host?): "
              "--direct needs one; connect by ID through a server instead",
              s->cfg.direct);
        return -1;
    }
    memcpy(s->host_pk, sid->sign_pk.data, HD_SIGN_PK_BYTES);
    if (hd_idpk_verify(sid->id.data, sid->id.len, s->host_pk, s->host_id,
                       sizeof(s->host_id), box, sizeof(box), &len) != 0) {
        failf(s, "host %s: its SignedId does not verify with its own key",
              s->cfg.direct);
        return -1;
    }
    return pin_host_key(s, s->cfg.direct);
}

static void on_signed_id(struct sess *s, const Hbb__SignedId *sid)
{
    int r;

    if (s->state != ST_SIGNED_ID) {
        failf(s, "host sent SignedId twice");
        return;
    }
    if (s->cfg.direct != NULL && direct_host_key(s, sid) != 0)
        return;
    r = hd_channel_viewer_accept(s->ch, sid, s->host_pk, s->host_id);
    if (r == HD_EAUTH) {
        failf(s,
              "host identity check failed: %s did not prove it holds the "
              "key %s (possible man-in-the-middle)",
              s->host_id,
              s->cfg.direct ? "pinned for it" : "the server vouched for");
        return;
    }
    if (r != 0) {
        failf(s, "handshake with the host failed: %s", hd_strerror(r));
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

static void on_hash(struct sess *s, const Hbb__Hash *h)
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
        failf(s, "host sent Hash %s",
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
    send_or_fail(s, &m);
    sodium_memzero(proof, sizeof(proof));
    if (!s->ended)
        s->state = ST_LOGIN;
}

static int xfer_send(void *ud, const Hbb__Message *m)
{
    struct sess *s = ud;
    int r = s->ch != NULL ? hd_channel_send(s->ch, m) : -ENOTCONN;

    if (r != 0)
        failf(s, "connection to the host lost: %s", hd_strerror(r));
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
        failf(s, "%s", msg ? msg : "file transfer failed");
    else
        finish(s, 0, NULL);
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
        failf(s, "file transfer: %s", hd_strerror(r));
        return;
    }
    vxfer_start(s->xf);
}

static void on_login_response(struct sess *s, const Hbb__LoginResponse *lr)
{
    const Hbb__PeerInfo *pi;
    const Hbb__DisplayInfo *d = NULL;
    int w = 0, h = 0, cur = 0;

    if (s->state != ST_LOGIN) {
        failf(s, "host sent LoginResponse out of turn");
        return;
    }
    if (lr->union_case == HBB__LOGIN_RESPONSE__UNION_ERROR) {
        if (strcmp(lr->error, "Wrong Password") == 0)
            failf(s, "wrong password for %s", s->host_id);
        else
            failf(s, "host refused the login: %s", lr->error);
        return;
    }
    if (lr->union_case != HBB__LOGIN_RESPONSE__UNION_PEER_INFO) {
        failf(s, "host refused the login (no reason given)");
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
        failf(s, "host reports no usable display (%dx%d)", w, h);
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

/* ---- the live session ---------------------------------------------------- */

/* The host now shows another of its displays (our pick, menu.h). */
static void on_switch_display(struct sess *s, const Hbb__SwitchDisplay *sd)
{
    if (s->state != ST_LIVE || sd->width <= 0 || sd->height <= 0 ||
        sd->width > PIC_MAX_DIM || sd->height > PIC_MAX_DIM) {
        hd_warn("session", "host sent a display switch to %dx%d: ignored",
                sd->width, sd->height);
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->st.width = sd->width;
    s->st.height = sd->height;
    s->st.disp_x = sd->x;
    s->st.disp_y = sd->y;
    s->st.display = sd->display;
    pthread_mutex_unlock(&s->mu);
    hd_info("session", "showing display %d of %s: %dx%d at %d,%d", sd->display,
            s->host_id, sd->width, sd->height, sd->x, sd->y);
    s->cb.on_ready(sd->width, sd->height, s->ud);
}

static void on_video(struct sess *s, const Hbb__VideoFrame *vf)
{
    const Hbb__EncodedVideoFrames *ef;
    uint64_t bytes = 0;
    size_t i;
    int r, want_key = 0;

    if (s->state != ST_LIVE)
        return;
    if (vf->union_case != HBB__VIDEO_FRAME__UNION_VP9S) {
        if (!s->codec_warned)
            hd_warn("session",
                    "host sends codec %d; this viewer decodes "
                    "VP9 only",
                    (int)vf->union_case);
        s->codec_warned = 1;
        return;
    }
    ef = vf->vp9s;
    for (i = 0; i < ef->n_frames; i++) {
        const Hbb__EncodedVideoFrame *f = ef->frames[i];

        bytes += f->data.len;
        r = dec_push(s->dec, f->data.data, f->data.len, f->key,
                     (uint64_t)f->pts);
        if (r == 1)
            want_key = 1;
        else if (r < 0)
            hd_warn("session", "video frame dropped: %s", hd_strerror(r));
    }
    pthread_mutex_lock(&s->mu);
    s->st.video_bytes += bytes;
    s->st.video_frames += ef->n_frames;
    pthread_mutex_unlock(&s->mu);
    send_misc_flag(s, HBB__MISC__UNION_VIDEO_RECEIVED);
    if (want_key)
        send_refresh(s);
}

static void on_test_delay(struct sess *s, const Hbb__TestDelay *td)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__TestDelay echo = *td;

    if (td->from_client)
        return; /* an answer to a probe of ours (we send none) */
    echo.base.n_unknown_fields = 0;
    echo.base.unknown_fields = NULL;
    m.union_case = HBB__MESSAGE__UNION_TEST_DELAY;
    m.test_delay = &echo;
    send_or_fail(s, &m);
    if (td->last_delay > 0) {
        pthread_mutex_lock(&s->mu);
        s->st.rtt_ms = td->last_delay;
        pthread_mutex_unlock(&s->mu);
    }
}

/* Text the host copied: for the window to put on our clipboard. */
static void on_clipboard(struct sess *s, const Hbb__Clipboard *cb)
{
    char *text;
    size_t n;
    int r;

    if (cb == NULL || s->state != ST_LIVE || s->cfg.no_clipboard ||
        s->cb.on_clipboard == NULL)
        return;
    if ((r = hd_clip_unpack(cb, &text, &n)) == -EBADMSG) {
        failf(s, "host sent a broken clipboard message");
        return;
    }
    if (r == -EMSGSIZE)
        hd_warn("session", "clipboard from the host above %u bytes ignored",
                HD_CLIP_MAX);
    if (r != 0)
        return;
    s->cb.on_clipboard(text, n, s->ud);
    free(text);
}

static void on_message(struct hd_channel *ch, const Hbb__Message *m, void *ud)
{
    struct sess *s = ud;

    uv_timer_again(&s->idle);
    switch (m->union_case) {
    case HBB__MESSAGE__UNION_SIGNED_ID:
        on_signed_id(s, m->signed_id);
        break;
    case HBB__MESSAGE__UNION_HASH:
        on_hash(s, m->hash);
        break;
    case HBB__MESSAGE__UNION_LOGIN_RESPONSE:
        on_login_response(s, m->login_response);
        break;
    case HBB__MESSAGE__UNION_VIDEO_FRAME:
        on_video(s, m->video_frame);
        break;
    case HBB__MESSAGE__UNION_TEST_DELAY:
        on_test_delay(s, m->test_delay);
        break;
    case HBB__MESSAGE__UNION_CLIPBOARD:
        on_clipboard(s, m->clipboard);
        break;
    case HBB__MESSAGE__UNION_FILE_RESPONSE:
    case HBB__MESSAGE__UNION_FILE_ACTION:
        if (s->state == ST_LIVE && s->xf != NULL)
            vxfer_on_message(s->xf, m);
        break;
    case HBB__MESSAGE__UNION_CURSOR_DATA:
    case HBB__MESSAGE__UNION_CURSOR_ID:
    case HBB__MESSAGE__UNION_CURSOR_POSITION:
        if (s->state == ST_LIVE && s->cb.on_cursor)
            s->cb.on_cursor(m, s->ud);
        break;
    case HBB__MESSAGE__UNION_AUDIO_FRAME:
        if (s->state == ST_LIVE && !s->cfg.no_audio && s->cb.on_audio)
            s->cb.on_audio(m->audio_frame->data.data, m->audio_frame->data.len,
                           s->ud);
        break;
    case HBB__MESSAGE__UNION_MULTI_CLIPBOARDS:
        on_clipboard(s, hd_clip_pick(m->multi_clipboards));
        break;
    case HBB__MESSAGE__UNION_MISC:
        if (m->misc->union_case == HBB__MISC__UNION_CLOSE_REASON)
            failf(s, "host closed the session: %s", m->misc->close_reason);
        else if (m->misc->union_case == HBB__MISC__UNION_SWITCH_DISPLAY)
            on_switch_display(s, m->misc->switch_display);
        else if (m->misc->union_case == HBB__MISC__UNION_AUDIO_FORMAT)
            hd_info("session", "host sound: Opus, %u Hz, %u channel(s)",
                    m->misc->audio_format->sample_rate,
                    m->misc->audio_format->channels);
        break;
    case HBB__MESSAGE__UNION_MESSAGE_BOX:
        hd_info("session", "host says: %s: %s",
                m->message_box->title ? m->message_box->title : "",
                m->message_box->text ? m->message_box->text : "");
        if (s->state < ST_LIVE && m->message_box->msgtype &&
            strstr(m->message_box->msgtype, "error") != NULL)
            failf(s, "host refused: %s", m->message_box->text);
        break;
    default:
        if (s->state < ST_HASH && m->union_case != HBB__MESSAGE__UNION__NOT_SET)
            failf(s, "host sent message %d before the secure channel",
                  (int)m->union_case);
        break; /* cursor, audio...: not used yet */
    }
}

static void on_channel_close(struct hd_channel *ch, int reason, void *ud)
{
    struct sess *s = ud;

    if (s->state == ST_LIVE)
        failf(s, "connection to the host lost: %s", hd_strerror(reason));
    else if (reason == UV_EOF || reason == UV_ECONNRESET)
        failf(s, "host refused the connection (closed it before login)");
    else
        failf(s, "connection to the host failed: %s", hd_strerror(reason));
}

static void on_idle(uv_timer_t *t)
{
    struct sess *s = t->data;

    failf(s, "no data from the host for %d s; giving up", SESS_IDLE_MS / 1000);
}

/* Woken by sess_send or sess_stop. */
static void on_wake(uv_async_t *a)
{
    struct sess *s = a->data;
    struct sess_input in;
    int stop;

    for (;;) {
        pthread_mutex_lock(&s->mu);
        stop = s->stop;
        if (s->in_count == 0) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        in = s->in[s->in_head];
        s->in_head = (s->in_head + 1) % SESS_INPUT_MAX;
        s->in_count--;
        pthread_mutex_unlock(&s->mu);
        if (!stop && s->state == ST_LIVE && s->ch != NULL) {
            int r = hd_channel_send_payload(s->ch, in.data, in.n);
            if (r != 0)
                failf(s, "connection lost: %s", hd_strerror(r));
        }
        free(in.data);
    }
    if (stop)
        finish(s, 0, NULL);
}

/* ---- thread ------------------------------------------------------------ */

static void *sess_main(void *arg)
{
    struct sess *s = arg;
    struct rv_request req = { .loop = &s->loop }; /* the race runs on it */
    struct rv_result res;
    char pin[320];
    int r;

    s->t0_ms = mono_ms();
    if (s->cfg.direct != NULL) {
        r = rv_connect_direct(s->cfg.direct, s->cancel[0], &res);
    } else {
        req.server = s->cfg.server;
        req.key_b64 = s->cfg.key_b64;
        req.id = s->cfg.id;
        req.version = HD_VERSION;
        req.cancel_fd = s->cancel[0];
        req.force_relay = s->cfg.force_relay;
        req.allow_plain_server = s->cfg.allow_plain_server;
        req.relay = s->cfg.relay;
        req.no_udp = s->cfg.no_udp;
        req.no_tcp = s->cfg.no_tcp;
        req.answer_ms = s->cfg.answer_ms;
        r = rv_connect_id(&req, &res);
        snprintf(s->host_id, sizeof(s->host_id), "%s", s->cfg.id);
        memcpy(s->host_pk, res.host_pk, sizeof(s->host_pk));
    }
    if (r != 0) {
        finish(s, r == -ECANCELED ? 0 : 1, r == -ECANCELED ? NULL : res.err);
        goto run;
    }
    snprintf(pin, sizeof(pin), "id:%s@%s", s->cfg.id ? s->cfg.id : "",
             s->cfg.server ? s->cfg.server : "");
    if (s->cfg.direct == NULL && pin_host_key(s, pin) != 0) {
        hd_rudp_free(res.rudp);
        close(res.fd);
        goto run;
    }
    pthread_mutex_lock(&s->mu);
    s->st.path = (int)res.path;
    pthread_mutex_unlock(&s->mu);
    hd_info("session", "connected (%s) in %llu ms", rv_path_name(res.path),
            (unsigned long long)(mono_ms() - s->t0_ms));
    if (res.rudp != NULL) {
        /* UDP (client/upunch.h): the channel takes the socket and the
         * stream, and reads the SignedId frame the race already got */
        if ((r = hd_channel_open_udp(s->ch, res.fd, res.rudp)) != 0) {
            hd_rudp_free(res.rudp); /* the channel took only the socket */
            failf(s, "cannot use the connection: %s", hd_strerror(r));
            goto run;
        }
    } else if ((r = uv_tcp_open(hd_channel_tcp(s->ch), res.fd)) != 0) {
        close(res.fd);
        failf(s, "cannot use the connection: %s", hd_strerror(r));
        goto run;
    }
    if ((r = hd_channel_start(s->ch, res.pending, res.pending_len)) != 0) {
        failf(s, "cannot read from the host: %s", hd_strerror(r));
        goto run;
    }
    uv_timer_start(&s->idle, on_idle, SESS_IDLE_MS, SESS_IDLE_MS);
run:
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static const struct hd_channel_cb channel_cb = {
    .on_message = on_message,
    .on_close = on_channel_close,
};

int sess_new(const struct sess_config *cfg, struct dec *dec,
             const struct sess_cb *cb, void *ud, struct sess **out)
{
    struct sess *s;
    int r;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return -ENOMEM;
    s->cfg = *cfg;
    s->cb = *cb;
    s->ud = ud;
    s->dec = dec;
    s->st.path = -1;
    s->cancel[0] = s->cancel[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    if (pipe2(s->cancel, O_CLOEXEC) != 0) {
        r = -errno;
        goto fail;
    }
    if ((r = uv_loop_init(&s->loop)) != 0)
        goto fail;
    uv_async_init(&s->loop, &s->wake, on_wake);
    s->wake.data = s;
    uv_timer_init(&s->loop, &s->idle);
    s->idle.data = s;
    if ((r = hd_channel_new(&s->loop, 0, &channel_cb, s, &s->ch)) != 0) {
        uv_close((uv_handle_t *)&s->idle, NULL);
        uv_close((uv_handle_t *)&s->wake, NULL);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (s->cancel[0] >= 0) {
        close(s->cancel[0]);
        close(s->cancel[1]);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
    return r;
}

int sess_start(struct sess *s)
{
    if (pthread_create(&s->thread, NULL, sess_main, s) != 0)
        return -EAGAIN;
    s->started = 1;
    return 0;
}

int sess_send(struct sess *s, const Hbb__Message *m)
{
    size_t n = hbb__message__get_packed_size(m);
    uint8_t *buf;

    if ((buf = malloc(n ? n : 1)) == NULL)
        return -ENOMEM;
    hbb__message__pack(m, buf);
    pthread_mutex_lock(&s->mu);
    if (s->in_count == SESS_INPUT_MAX || s->stop) {
        pthread_mutex_unlock(&s->mu);
        free(buf);
        return -ENOBUFS;
    }
    s->in[(s->in_head + s->in_count) % SESS_INPUT_MAX] =
        (struct sess_input){ buf, n };
    s->in_count++;
    if (!s->loop_done)
        uv_async_send(&s->wake);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sess_stop(struct sess *s)
{
    char c = 1;
    int first;

    pthread_mutex_lock(&s->mu);
    first = !s->stop;
    s->stop = 1;
    if (first && !s->loop_done)
        uv_async_send(&s->wake);
    pthread_mutex_unlock(&s->mu);
    if (first && write(s->cancel[1], &c, 1) < 0)
        hd_debug("session", "cancel pipe: %s", strerror(errno));
}

void sess_get_stats(struct sess *s, struct sess_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

int sess_get_login(struct sess *s, char *name, size_t cap, uint8_t *salted)
{
    int r = -EAGAIN;

    pthread_mutex_lock(&s->mu);
    if (s->logged_in) {
        snprintf(name, cap, "%s", s->peer_name);
        memcpy(salted, s->salted, HD_SHA256_BYTES);
        r = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

void sess_free(struct sess *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        sess_stop(s);
        pthread_join(s->thread, NULL);
    } else {
        /* never ran: close the handles here */
        s->cb.on_end = NULL;
        if (!s->ended) {
            s->ended = 1;
            hd_channel_close(s->ch);
            hd_net_close((uv_handle_t *)&s->idle, close_noop);
            hd_net_close((uv_handle_t *)&s->wake, close_noop);
        }
        uv_run(&s->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&s->loop);
    while (s->in_count > 0) {
        free(s->in[s->in_head].data);
        s->in_head = (s->in_head + 1) % SESS_INPUT_MAX;
        s->in_count--;
    }
    close(s->cancel[0]);
    close(s->cancel[1]);
    pthread_mutex_destroy(&s->mu);
    sodium_memzero(s->salted, sizeof(s->salted));
    free(s);
}

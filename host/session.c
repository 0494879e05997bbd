/*
 * Viewer sessions.  See session.h.  Memory: a session owns its channel
 * (freed by hd_channel_close) and an embedded timer; the struct is freed
 * in the timer's close callback, after the channel was closed, so no
 * callback can reach a freed session.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "channel.h"
#include "err.h"
#include "host/inject.h"
#include "host/input/input.h"
#include "clip.h"
#include "host/audio/audio.h"
#include "host/clipboard/clipboard.h"
#include "host/ident.h"
#include "host/session.h"
#include "host/xfer.h"
#include "host/video.h"
#include "log.h"
#include "net.h"
#include "rudp.h"
#include "squeeze.h"

#define MOD "session"

#define SESSION_TICK_MS  1000
#define SESSION_LOGIN_MS 10000 /* from connect to the first LoginRequest */
/* after "Empty Password" a person types the password */
#define SESSION_PASSWORD_MS 60000
#define SESSION_LINGER_MS   300 /* flush a last error before closing */
#define SESSION_MAX_MSG     (1u << 20)
/* once logged in: room for a whole clipboard (HD_CLIP_MAX, even if zstd
 * could not shrink it) in one message */
#define SESSION_LIVE_MAX_MSG  (HD_CLIP_MAX + 64u * 1024)
#define SESSION_VIDEO_BACKLOG (512u * 1024)
/*
 * Flow control by acknowledgement (issue 12): a viewer that asks for it
 * (LoginRequest.video_ack_required: RustDesk's web client, our viewer)
 * sends Misc.video_received for each frame it got.  At most
 * SESSION_IN_FLIGHT frames go unacknowledged; while every live viewer is
 * at that limit the capture thread is held (video_set_active 0), so a
 * slow link skips frames at the source (the screen's damage accumulates
 * and the next frame carries it) instead of queueing seconds of video.
 * No ack for SESSION_ACK_TIMEOUT_MS (RustDesk's host waits as long)
 * counts the frames as lost.
 */
#define SESSION_CURSOR_IDS     16 /* pointer shapes a viewer is known to have */
#define SESSION_IN_FLIGHT      2
#define SESSION_ACK_TIMEOUT_MS 3000
/* audio waits behind at most this much: past it, frames are dropped */
#define SESSION_AUDIO_BACKLOG (1024u * 1024)

enum state { ST_HELLO, ST_LOGIN, ST_LIVE, ST_CLOSING };

struct session {
    struct session *next, *prev;
    struct host *h;
    struct hd_channel *ch;
    uv_timer_t timer;
    enum session_path path;
    enum state state;
    struct sockaddr_storage peer_ss;
    char peer[HD_ADDR_STRLEN], ip[HD_ADDR_STRLEN];
    /* relayed: the viewer's address the server reported (session_origin),
     * for throttling and the failed-login line; src_ip: that or ip */
    struct sockaddr_storage origin;
    int has_origin;
    char src_ip[HD_ADDR_STRLEN];
    char challenge[8];
    char viewer[64];
    uint64_t started_ms, last_rx_ms, delay_sent_ms;
    uint32_t last_delay;
    uint64_t frames_sent, frames_dropped, bytes_sent;
    int acks;           /* the viewer acknowledges frames (video_received) */
    unsigned in_flight; /* frames sent and not acknowledged */
    uint64_t last_ack_ms, acks_timed_out;
    uint64_t cursor_ids[SESSION_CURSOR_IDS]; /* shapes sent (a ring) */
    unsigned n_cursor_ids;
    int need_key, unencrypted, linked, input_errors, lingering;
    int asked; /* a LoginRequest came (wrong or empty): the longer deadline */
    int clipboard;      /* the viewer shares its clipboard (not disabled) */
    int audio;          /* the viewer wants the desktop's sound */
    struct hxfer *xfer; /* a file transfer session (no video), or NULL */
    uint64_t audio_sent, audio_dropped;
    const char *end_reason;
    /* a UDP session on a shared socket (the registration socket): its
     * datagrams come through session_udp_input; conv for any UDP one */
    uv_udp_t *usock;
    uint32_t conv;
};

static const char *path_name(enum session_path p)
{
    return p == SESSION_RELAY ? "relay"
           : p == SESSION_LAN ? "lan"
           : p == SESSION_UDP ? "udp"
                              : "direct";
}

static uint64_t now_ms(struct session *s)
{
    return uv_now(s->h->loop);
}

/*
 * Sessions logged in (live 1) or not yet (live 0), other than self;
 * with ip, only those from ip; with relay, only relayed ones.
 */
static int count_sessions(struct host *h, int live, const char *ip, int relay,
                          const struct session *self)
{
    int n = 0;

    for (struct session *o = h->sessions; o; o = o->next)
        n += o != self && (o->state == ST_LIVE) == live &&
             (ip == NULL || strcmp(o->ip, ip) == 0) &&
             (!relay || o->path == SESSION_RELAY);
    return n;
}

static void on_timer_closed(uv_handle_t *t)
{
    free(t->data);
}

/* Capture sound while some logged-in viewer wants it. */
static void audio_recount(struct host *h)
{
    int n = 0;

    for (struct session *o = h->sessions; o; o = o->next)
        n += o->state == ST_LIVE && o->audio && !o->lingering;
    audio_set_active(h->audio, n > 0);
}

/* May this session be sent a frame now (see SESSION_IN_FLIGHT)? */
static int video_room(const struct session *s)
{
    return !s->acks || s->in_flight < SESSION_IN_FLIGHT;
}

/* The capture thread runs while some live viewer can take a frame. */
static void video_recount(struct host *h)
{
    int room = 0;

    for (struct session *o = h->sessions; o; o = o->next)
        room += o->state == ST_LIVE && o->xfer == NULL && !o->lingering &&
                video_room(o);
    if (h->video)
        video_set_active(h->video, room > 0);
}

void session_close(struct session *s, const char *reason)
{
    struct host *h = s->h;

    if (s->state == ST_CLOSING && s->ch == NULL)
        return;
    if (s->linked) {
        if (s->prev)
            s->prev->next = s->next;
        else
            h->sessions = s->next;
        if (s->next)
            s->next->prev = s->prev;
        s->linked = 0;
        h->n_sessions--;
    }
    if (s->state == ST_LIVE) {
        video_recount(h);
        audio_recount(h);
        if (h->input)
            input_release_all(h->input);
        hxfer_free(s->xfer);
        s->xfer = NULL;
        hd_info(MOD,
                "session with %s (%s) ended: %s (%llu frames sent, %llu "
                "dropped, %llu KiB; %llu audio frames sent, %llu dropped)",
                s->peer, path_name(s->path), reason,
                (unsigned long long)s->frames_sent,
                (unsigned long long)s->frames_dropped,
                (unsigned long long)(s->bytes_sent / 1024),
                (unsigned long long)s->audio_sent,
                (unsigned long long)s->audio_dropped);
    } else {
        hd_info(MOD, "connection from %s (%s) ended before login: %s", s->peer,
                path_name(s->path), reason);
    }
    s->state = ST_CLOSING;
    s->usock = NULL;
    hd_channel_close(s->ch);
    s->ch = NULL;
    hd_net_close((uv_handle_t *)&s->timer, on_timer_closed);
}

static void linger_done(uv_timer_t *t)
{
    struct session *s = t->data;

    session_close(s, s->end_reason ? s->end_reason : "closed");
}

/* Close after a short delay so a last message reaches the peer. */
static void close_soon(struct session *s, const char *reason)
{
    s->end_reason = reason;
    s->lingering = 1; /* ignore everything from now on */
    uv_timer_start(&s->timer, linger_done, SESSION_LINGER_MS, 0);
}

static int send_msg(struct session *s, Hbb__Message *m)
{
    int r = hd_channel_send(s->ch, m);

    if (r != 0 && r != -EPIPE)
        hd_debug(MOD, "send to %s: %s", s->peer, hd_strerror(r));
    return r;
}

static void send_login_error(struct session *s, const char *text)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__LoginResponse lr = HBB__LOGIN_RESPONSE__INIT;

    lr.union_case = HBB__LOGIN_RESPONSE__UNION_ERROR;
    lr.error = (char *)text;
    m.union_case = HBB__MESSAGE__UNION_LOGIN_RESPONSE;
    m.login_response = &lr;
    send_msg(s, &m);
}

static void send_hash(struct session *s)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Hash hash = HBB__HASH__INIT;

    ident_random_text(s->challenge, 6);
    hash.salt = s->h->ident.salt;
    hash.challenge = s->challenge;
    m.union_case = HBB__MESSAGE__UNION_HASH;
    m.hash = &hash;
    send_msg(s, &m);
    s->state = ST_LOGIN;
}

static void send_peer_info(struct session *s)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__LoginResponse lr = HBB__LOGIN_RESPONSE__INIT;
    Hbb__PeerInfo pi = HBB__PEER_INFO__INIT;
    Hbb__DisplayInfo di = HBB__DISPLAY_INFO__INIT, *dis[1] = { &di };
    Hbb__Features feat = HBB__FEATURES__INIT;
    Hbb__SupportedEncoding enc = HBB__SUPPORTED_ENCODING__INIT;
    struct passwd *pw = getpwuid(getuid());
    char host[256] = "", user[64] = "";
    const char *disp = s->h->o->display;
    int w = 0, hgt = 0;

    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "homedesk");
    snprintf(user, sizeof(user), "%s", pw && pw->pw_name ? pw->pw_name : "");
    if (s->h->video)
        video_size(s->h->video, &w, &hgt);
    di.width = w;
    di.height = hgt;
    di.name = (char *)(disp && disp[0] ? disp : ":0");
    di.online = 1;
    pi.username = user;
    pi.hostname = host;
    pi.platform = "Linux";
    pi.n_displays = 1;
    pi.displays = dis;
    pi.current_display = 0;
    pi.version = HOST_WIRE_VERSION;
    pi.features = &feat;
    pi.encoding = &enc; /* VP9 is implied; nothing else offered */
    lr.union_case = HBB__LOGIN_RESPONSE__UNION_PEER_INFO;
    lr.peer_info = &pi;
    m.union_case = HBB__MESSAGE__UNION_LOGIN_RESPONSE;
    m.login_response = &lr;
    send_msg(s, &m);
}

static void send_test_delay(struct session *s)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__TestDelay td = HBB__TEST_DELAY__INIT;

    td.time = (int64_t)(hd_addr_now_us() / 1000);
    td.from_client = 0;
    td.last_delay = s->last_delay;
    m.union_case = HBB__MESSAGE__UNION_TEST_DELAY;
    m.test_delay = &td;
    if (send_msg(s, &m) == 0)
        s->delay_sent_ms = now_ms(s);
}

static void send_cursor_shape(struct session *s);
static void send_cursor_position(struct session *s);

static void on_tick(uv_timer_t *t)
{
    struct session *s = t->data;
    uint64_t now = now_ms(s);

    if (now - s->last_rx_ms > (uint64_t)s->h->o->idle_ms) {
        session_close(s, "no data from the viewer (timeout)");
        return;
    }
    if (s->state != ST_LIVE) {
        if (now - s->started_ms >
            (uint64_t)(s->asked ? SESSION_PASSWORD_MS : SESSION_LOGIN_MS)) {
            hd_info(MOD, "%s: no login within %d s: closed", s->peer,
                    (s->asked ? SESSION_PASSWORD_MS : SESSION_LOGIN_MS) / 1000);
            session_close(s, "no login in time");
        }
        return;
    }
    if (s->acks && s->in_flight > 0 &&
        now - s->last_ack_ms > SESSION_ACK_TIMEOUT_MS) {
        /* acknowledgements lost (or a viewer that asked and never
         * sends them): go on, as RustDesk's host does after its wait */
        if (s->acks_timed_out++ < 3)
            hd_debug(MOD,
                     "%s: no frame acknowledged for %u ms: %u frames "
                     "taken as lost",
                     s->peer, SESSION_ACK_TIMEOUT_MS, s->in_flight);
        s->in_flight = 0;
        s->last_ack_ms = now;
        video_recount(s->h);
    }
    /* one TestDelay outstanding at a time; re-send a lost one after 5 s */
    if (s->delay_sent_ms == 0 || now - s->delay_sent_ms > 5000)
        send_test_delay(s);
}

static void on_public_key(struct session *s, const Hbb__Message *m)
{
    int r;

    if (m->union_case == HBB__MESSAGE__UNION_PUBLIC_KEY &&
        (m->public_key->asymmetric_value.len > 0 ||
         m->public_key->symmetric_value.len > 0)) {
        if ((r = hd_channel_host_accept(s->ch, m->public_key)) != 0) {
            hd_warn(MOD, "bad key exchange from %s: %s", s->peer,
                    hd_strerror(r));
            session_close(s, "key exchange failed");
            return;
        }
        if (hd_channel_is_legacy(s->ch))
            hd_info(MOD,
                    "legacy encryption with %s: a RustDesk app (one key "
                    "both ways)",
                    s->peer);
        send_hash(s);
        return;
    }
    if (m->union_case != HBB__MESSAGE__UNION_PUBLIC_KEY &&
        m->union_case != HBB__MESSAGE__UNION__NOT_SET) {
        session_close(s, "protocol error: expected PublicKey");
        return;
    }
    /* an empty PublicKey or an empty Message: no encryption wanted */
    if (!s->h->o->allow_unencrypted) {
        hd_warn(MOD,
                "refused unencrypted session from %s (the viewer has no "
                "key for this host; see --allow-unencrypted)",
                s->peer);
        send_login_error(s, "Encrypted connection required: set the server "
                            "key in the client");
        close_soon(s, "unencrypted session refused");
        return;
    }
    hd_warn(MOD, "UNENCRYPTED session from %s (allowed by --allow-unencrypted)",
            s->peer);
    s->unencrypted = 1;
    send_hash(s);
}

/* Before the first AudioFrame: what the Opus stream is. */
static void send_audio_format(struct session *s)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Misc misc = HBB__MISC__INIT;
    Hbb__AudioFormat af = HBB__AUDIO_FORMAT__INIT;

    af.sample_rate = AUDIO_RATE;
    af.channels = AUDIO_CHANNELS;
    misc.union_case = HBB__MISC__UNION_AUDIO_FORMAT;
    misc.audio_format = &af;
    m.union_case = HBB__MESSAGE__UNION_MISC;
    m.misc = &misc;
    send_msg(s, &m);
}

static int xfer_send(void *ud, const Hbb__Message *m)
{
    return send_msg(ud, (Hbb__Message *)m);
}

static size_t xfer_backlog(void *ud)
{
    struct session *s = ud;

    return s->ch != NULL ? hd_channel_backlog(s->ch) : 0;
}

/* A file transfer session: file actions only, no video, sound, input. */
static void begin_file_transfer(struct session *s, const Hbb__FileTransfer *ft)
{
    struct hxfer_io io = { s->h->loop, xfer_send, xfer_backlog, s, s->peer };

    /* a directory listing of 100000 files is larger than a clipboard */
    hd_channel_set_max_msg(s->ch, HD_CHANNEL_MAX_MSG);
    if (hxfer_new(&io, &s->xfer) != 0) {
        close_soon(s, "out of memory");
        return;
    }
    hd_info(MOD, "%s: file transfer session", s->peer);
    hxfer_hello(s->xfer, ft ? ft->dir : NULL, ft ? ft->show_hidden : 0);
    send_test_delay(s);
}

/*
 * A new one-time password (the old one was used, or guessed at too
 * often), on stdout where the first one was shown; never in the log.
 */
static void otp_rotate(struct host *h, const char *why)
{
    h->otp_fails = 0;
    if (h->ident.otp == NULL || ident_new_otp(&h->ident) != 0)
        return;
    printf("one-time password: %s\n", h->ident.otp);
    fflush(stdout);
    hd_info(MOD, "new one-time password (%s), shown on the host's output", why);
}

static void on_login(struct session *s, const Hbb__LoginRequest *lr)
{
    struct host *h = s->h;
    uint64_t now = now_ms(s), wait;
    struct sockaddr *src;
    unsigned fails;
    int which;

    snprintf(s->viewer, sizeof(s->viewer), "%s",
             lr->my_id && lr->my_id[0] ? lr->my_id : "?");
    s->asked = 1;
    if (lr->union_case != HBB__LOGIN_REQUEST__UNION__NOT_SET &&
        (lr->union_case != HBB__LOGIN_REQUEST__UNION_FILE_TRANSFER ||
         h->o->no_file_transfer)) {
        hd_info(MOD, "refused %s from %s: not offered by this host",
                lr->union_case == HBB__LOGIN_REQUEST__UNION_FILE_TRANSFER
                    ? "file transfer"
                    : "a session of another kind",
                s->peer);
        send_login_error(s, "Not supported by this host");
        close_soon(s, "session type not supported");
        return;
    }
    if (lr->password.len == 0) {
        /*
         * RustDesk's client asks first without a password when it has
         * none saved.  Not a failed login: answer as RustDesk's hosts do
         * ("Empty Password": the client asks its user) and wait for the
         * real one on this connection.  Nothing is checked or counted.
         */
        hd_info(MOD, "%s (viewer %s) asked without a password: waiting for it",
                s->peer, s->viewer);
        send_login_error(s, "Empty Password");
        return;
    }
    /* relayed: the viewer's own address as the server saw it, not the
     * relay's, which every relayed viewer shares */
    src = (struct sockaddr *)(s->has_origin ? &s->origin : &s->peer_ss);
    if ((wait = throttle_wait(&h->throttle, src, now)) > 0 ||
        (wait = throttle_global_wait(&h->throttle, now)) > 0) {
        hd_warn(MOD, "login throttled from %s%s%s (retry in %llu s%s)",
                s->src_ip, s->has_origin ? " via relay " : "",
                s->has_origin ? s->ip : "",
                (unsigned long long)((wait + 999) / 1000),
                throttle_wait(&h->throttle, src, now) > 0
                    ? ""
                    : "; too many failures from everywhere");
        send_login_error(s, "Please try 1 minute later");
        return;
    }
    which = ident_check(&h->ident, s->challenge, hd_channel_binding(s->ch),
                        lr->password.data, lr->password.len);
    if (which == 0) {
        fails = throttle_fail(&h->throttle, src, now);
        /* fixed format for fail2ban: "login failed from <ip>" */
        hd_warn(MOD, "login failed from %s (%sviewer %s, %u failures)",
                s->src_ip, s->has_origin ? "via relay, " : "", s->viewer,
                fails);
        send_login_error(s, "Wrong Password");
        if (h->ident.otp != NULL && ++h->otp_fails >= HOST_OTP_MAX_FAILS)
            otp_rotate(h, "after repeated failed logins");
        return;
    }
    throttle_ok(&h->throttle, src, now);
    if (count_sessions(h, 1, NULL, 0, s) >= HOST_MAX_SESSIONS) {
        hd_warn(MOD, "login from %s refused: %d sessions already", s->peer,
                HOST_MAX_SESSIONS);
        send_login_error(s, "Too many sessions on this host, try later");
        close_soon(s, "too many sessions");
        return;
    }
    hd_info(MOD, "login ok from %s (viewer %s, %s password, path %s%s)",
            s->peer, s->viewer, which == 1 ? "permanent" : "one-time",
            path_name(s->path), s->unencrypted ? ", UNENCRYPTED" : "");
    if (which == 2)
        otp_rotate(h, "the previous one was used");
    send_peer_info(s);
    s->state = ST_LIVE;
    hd_channel_set_max_msg(s->ch, SESSION_LIVE_MAX_MSG);
    if (lr->union_case == HBB__LOGIN_REQUEST__UNION_FILE_TRANSFER) {
        begin_file_transfer(s, lr->file_transfer);
        return;
    }
    s->clipboard =
        h->clip != NULL &&
        !(lr->option != NULL && lr->option->disable_clipboard ==
                                    HBB__OPTION_MESSAGE__BOOL_OPTION__Yes);
    s->audio = h->audio != NULL && !(lr->option != NULL &&
                                     lr->option->disable_audio ==
                                         HBB__OPTION_MESSAGE__BOOL_OPTION__Yes);
    if (s->audio)
        send_audio_format(s);
    audio_recount(h);
    s->need_key = 1;
    s->acks = lr->video_ack_required;
    s->last_ack_ms = now_ms(s);
    if (s->acks)
        hd_debug(MOD, "%s acknowledges frames: at most %u in flight", s->peer,
                 SESSION_IN_FLIGHT);
    video_recount(h);
    if (h->video)
        video_request_key(h->video);
    send_cursor_shape(s);
    if (h->cursor_colors != NULL)
        send_cursor_position(s);
    send_test_delay(s);
}

static void on_test_delay(struct session *s, const Hbb__TestDelay *td)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__TestDelay echo;

    if (td->from_client) { /* the viewer measures: echo it */
        echo = *td;
        m.union_case = HBB__MESSAGE__UNION_TEST_DELAY;
        m.test_delay = &echo;
        send_msg(s, &m);
        return;
    }
    if (s->delay_sent_ms == 0)
        return;
    s->last_delay = (uint32_t)(now_ms(s) - s->delay_sent_ms);
    s->delay_sent_ms = 0;
    hd_trace(MOD, "%s: round trip %u ms", s->peer, s->last_delay);
    if (s->h->video) {
        /* a crude controller: slower frames when the path is slow */
        int fps = s->last_delay > 400   ? 5
                  : s->last_delay > 200 ? 10
                  : s->last_delay > 100 ? 20
                                        : 0;
        video_set_rate(s->h->video, fps, 0);
    }
}

static void on_input_error(struct session *s, const char *what, int r)
{
    if (r == 0)
        return;
    if (s->input_errors++ < 5)
        hd_debug(MOD, "%s from %s not injected: %s", what, s->peer,
                 hd_strerror(r));
}

/* The viewer turns the clipboard or the sound off or on mid-session. */
static void on_option(struct session *s, const Hbb__OptionMessage *o)
{
    struct host *h = s->h;

    if (o->disable_clipboard != HBB__OPTION_MESSAGE__BOOL_OPTION__NotSet)
        s->clipboard =
            h->clip != NULL &&
            o->disable_clipboard != HBB__OPTION_MESSAGE__BOOL_OPTION__Yes;
    if (o->disable_audio != HBB__OPTION_MESSAGE__BOOL_OPTION__NotSet) {
        int want = h->audio != NULL &&
                   o->disable_audio != HBB__OPTION_MESSAGE__BOOL_OPTION__Yes;

        if (want && !s->audio)
            send_audio_format(s);
        s->audio = want;
        audio_recount(h);
    }
}

/* Text the viewer copied: the desktop's clipboard now. */
static void on_clipboard(struct session *s, const Hbb__Clipboard *cb)
{
    char *text;
    size_t n;
    int r;

    if (cb == NULL || !s->clipboard)
        return;
    r = hd_clip_unpack(cb, &text, &n);
    if (r == -EBADMSG) {
        hd_warn(MOD, "%s sent a broken clipboard message: closing", s->peer);
        close_soon(s, "bad clipboard message");
        return;
    }
    if (r == -EMSGSIZE)
        hd_warn(MOD, "clipboard from %s above %u bytes ignored", s->peer,
                HD_CLIP_MAX);
    if (r != 0)
        return; /* also a format other than text: nothing to paste here */
    clip_set(s->h->clip, text, n);
    free(text);
}

/* The pointer's shape: CursorId when this viewer has it, else CursorData. */
static void send_cursor_shape(struct session *s)
{
    struct host *h = s->h;
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__CursorData cd = HBB__CURSOR_DATA__INIT;
    unsigned i, n = s->n_cursor_ids < SESSION_CURSOR_IDS ? s->n_cursor_ids
                                                         : SESSION_CURSOR_IDS;

    if (h->cursor_colors == NULL)
        return;
    for (i = 0; i < n; i++)
        if (s->cursor_ids[i] == h->cursor_id) {
            m.union_case = HBB__MESSAGE__UNION_CURSOR_ID;
            m.cursor_id = h->cursor_id;
            send_msg(s, &m);
            return;
        }
    cd.id = h->cursor_id;
    cd.hotx = h->cursor_hot_x;
    cd.hoty = h->cursor_hot_y;
    cd.width = h->cursor_w;
    cd.height = h->cursor_h;
    cd.colors.data = h->cursor_colors;
    cd.colors.len = h->cursor_colors_len;
    m.union_case = HBB__MESSAGE__UNION_CURSOR_DATA;
    m.cursor_data = &cd;
    if (send_msg(s, &m) == 0)
        s->cursor_ids[s->n_cursor_ids++ % SESSION_CURSOR_IDS] = h->cursor_id;
}

static void send_cursor_position(struct session *s)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__CursorPosition cp = HBB__CURSOR_POSITION__INIT;

    cp.x = s->h->cursor_x;
    cp.y = s->h->cursor_y;
    m.union_case = HBB__MESSAGE__UNION_CURSOR_POSITION;
    m.cursor_position = &cp;
    send_msg(s, &m);
}

/* Keep a new pointer shape in h, as RustDesk sends it: premultiplied ARGB
 * turned into R, G, B, A bytes (fully transparent pixels all zero), zstd.
 * 0 or -ENOMEM. */
static int cursor_keep_shape(struct host *h, const struct video_cursor *c)
{
    size_t n = (size_t)c->width * (size_t)c->height, len;
    uint8_t *rgba = malloc(n * 4 + 1), *z = NULL;
    int r;

    if (rgba == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = c->argb[i], a = p >> 24;

        rgba[4 * i] = a ? (uint8_t)(p >> 16) : 0;
        rgba[4 * i + 1] = a ? (uint8_t)(p >> 8) : 0;
        rgba[4 * i + 2] = a ? (uint8_t)p : 0;
        rgba[4 * i + 3] = (uint8_t)a;
    }
    r = hd_squeeze(rgba, n * 4, 3, SIZE_MAX, &z, &len);
    free(rgba);
    if (r != 1)
        return r < 0 ? r : -ENOMEM;
    free(h->cursor_colors);
    h->cursor_colors = z;
    h->cursor_colors_len = len;
    h->cursor_id = c->serial;
    h->cursor_hot_x = c->hot_x;
    h->cursor_hot_y = c->hot_y;
    h->cursor_w = c->width;
    h->cursor_h = c->height;
    return 0;
}

void session_broadcast_cursor(struct host *h, const struct video_cursor *c,
                              int shape)
{
    struct session *s;

    if (shape && c->width > 0 && cursor_keep_shape(h, c) != 0)
        shape = 0;
    h->cursor_x = c->x;
    h->cursor_y = c->y;
    for (s = h->sessions; s != NULL; s = s->next) {
        if (s->state != ST_LIVE || s->lingering || s->xfer != NULL)
            continue;
        if (shape)
            send_cursor_shape(s);
        send_cursor_position(s);
    }
}

/* Misc.video_received: one frame less in flight. */
static void on_video_ack(struct session *s)
{
    if (!s->acks || s->in_flight == 0)
        return; /* unasked, or more acks than frames: nothing to free */
    s->in_flight--;
    s->last_ack_ms = now_ms(s);
    if (s->need_key && s->h->video)
        video_request_key(s->h->video);
    video_recount(s->h);
}

static void on_live(struct session *s, const Hbb__Message *m)
{
    struct host *h = s->h;

    switch (m->union_case) {
    case HBB__MESSAGE__UNION_TEST_DELAY:
        on_test_delay(s, m->test_delay);
        break;
    case HBB__MESSAGE__UNION_MOUSE_EVENT:
        if (h->input && s->xfer == NULL)
            on_input_error(s, "mouse event",
                           inject_mouse(h->input, m->mouse_event));
        break;
    case HBB__MESSAGE__UNION_KEY_EVENT:
        if (h->input && s->xfer == NULL)
            on_input_error(s, "key event", inject_key(h->input, m->key_event));
        break;
    case HBB__MESSAGE__UNION_MISC:
        if (m->misc->union_case == HBB__MISC__UNION_REFRESH_VIDEO ||
            m->misc->union_case == HBB__MISC__UNION_REFRESH_VIDEO_DISPLAY) {
            s->need_key = 1;
            if (h->video)
                video_request_key(h->video);
        } else if (m->misc->union_case == HBB__MISC__UNION_VIDEO_RECEIVED) {
            on_video_ack(s);
        } else if (m->misc->union_case == HBB__MISC__UNION_CLOSE_REASON) {
            hd_info(MOD, "%s closes: %s", s->peer, m->misc->close_reason);
        } else if (m->misc->union_case == HBB__MISC__UNION_OPTION) {
            on_option(s, m->misc->option);
        }
        break;
    case HBB__MESSAGE__UNION_CLIPBOARD:
        on_clipboard(s, m->clipboard);
        break;
    case HBB__MESSAGE__UNION_FILE_ACTION:
        if (s->xfer != NULL)
            hxfer_action(s->xfer, m->file_action);
        break;
    case HBB__MESSAGE__UNION_FILE_RESPONSE:
        if (s->xfer != NULL)
            hxfer_response(s->xfer, m->file_response);
        break;
    case HBB__MESSAGE__UNION_MULTI_CLIPBOARDS:
        on_clipboard(s, hd_clip_pick(m->multi_clipboards));
        break;
    default:
        hd_trace(MOD, "%s: message %d ignored", s->peer, (int)m->union_case);
        break;
    }
}

static void on_message(struct hd_channel *ch, const Hbb__Message *m, void *ud)
{
    struct session *s = ud;

    if (s->lingering)
        return;
    s->last_rx_ms = now_ms(s);
    switch (s->state) {
    case ST_HELLO:
        on_public_key(s, m);
        break;
    case ST_LOGIN:
        if (m->union_case == HBB__MESSAGE__UNION_LOGIN_REQUEST)
            on_login(s, m->login_request);
        else if (m->union_case == HBB__MESSAGE__UNION_TEST_DELAY)
            on_test_delay(s, m->test_delay);
        break;
    case ST_LIVE:
        on_live(s, m);
        break;
    case ST_CLOSING:
        break;
    }
}

static void on_close(struct hd_channel *ch, int reason, void *ud)
{
    struct session *s = ud;

    /* a peer that closes with our frames still unread in its socket sends
     * a reset, not a FIN: that is the viewer closing too */
    session_close(s, reason == UV_EOF ? "viewer closed the connection"
                     : reason == UV_ECONNRESET
                         ? "viewer closed the connection (reset: it left "
                           "frames unread)"
                         : hd_strerror(reason));
}

int session_new(struct host *h, enum session_path path, struct session **out)
{
    static const struct hd_channel_cb cb = { on_message, on_close };
    uint64_t now = uv_now(h->loop);
    struct session *s;
    int r;

    *out = NULL;
    if (count_sessions(h, 0, NULL, 0, NULL) >= HOST_MAX_PRELOGIN)
        return -EBUSY;
    if (path == SESSION_RELAY) {
        if (now - h->relay_window_ms >= 60000) {
            h->relay_window_ms = now;
            h->relay_connects = 0;
        }
        if (h->relay_connects >= HOST_RELAY_PER_MIN ||
            count_sessions(h, 0, NULL, 1, NULL) >= HOST_PRELOGIN_RELAY)
            return -EBUSY;
        h->relay_connects++;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return -ENOMEM;
    if ((r = hd_channel_new(h->loop, SESSION_MAX_MSG, &cb, s, &s->ch)) != 0) {
        free(s);
        return r;
    }
    s->h = h;
    s->path = path;
    uv_timer_init(h->loop, &s->timer);
    s->timer.data = s;
    snprintf(s->peer, sizeof(s->peer), "?");
    snprintf(s->ip, sizeof(s->ip), "?");
    s->next = h->sessions;
    if (h->sessions)
        h->sessions->prev = s;
    h->sessions = s;
    h->n_sessions++;
    s->linked = 1;
    s->started_ms = s->last_rx_ms = uv_now(h->loop);
    *out = s;
    return 0;
}

void session_origin(struct session *s, const struct sockaddr *viewer)
{
    if (s->path != SESSION_RELAY || viewer == NULL ||
        (viewer->sa_family != AF_INET && viewer->sa_family != AF_INET6))
        return;
    memcpy(&s->origin, viewer, hd_addr_len(viewer));
    s->has_origin = 1;
}

uv_tcp_t *session_tcp(struct session *s)
{
    return hd_channel_tcp(s->ch);
}

int session_send_plain(struct session *s, const uint8_t *data, size_t n)
{
    return hd_channel_send_plain(s->ch, data, n);
}

/* Private, loopback and link-local addresses count as the LAN. */
static int is_lan(const struct sockaddr *sa)
{
    static const char *const nets[] = { "10.0.0.0/8",     "172.16.0.0/12",
                                        "192.168.0.0/16", "127.0.0.0/8",
                                        "169.254.0.0/16", "100.64.0.0/10",
                                        "fc00::/7",       "fe80::/10",
                                        "::1/128" };

    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
        if (hd_addr_in_cidr(sa, nets[i]) == 1)
            return 1;
    return 0;
}

/* The stream is up and s->peer_ss known: SignedId, then read. */
static int begin(struct session *s, const uint8_t *leftover, size_t n)
{
    int r;

    hd_addr_format((struct sockaddr *)&s->peer_ss, s->peer, sizeof(s->peer));
    hd_addr_format_ip((struct sockaddr *)&s->peer_ss, s->ip, sizeof(s->ip));
    if (s->has_origin)
        hd_addr_format_ip((struct sockaddr *)&s->origin, s->src_ip,
                          sizeof(s->src_ip));
    else
        snprintf(s->src_ip, sizeof(s->src_ip), "%s", s->ip);
    if (s->path == SESSION_DIRECT && is_lan((struct sockaddr *)&s->peer_ss))
        s->path = SESSION_LAN;
    hd_info(MOD, "connection from %s (%s)", s->peer, path_name(s->path));
    if (s->path != SESSION_RELAY &&
        count_sessions(s->h, 0, s->ip, 0, s) >= HOST_PRELOGIN_PER_IP) {
        hd_warn(MOD,
                "refused %s: already %d connections from %s that have not "
                "logged in",
                s->peer, HOST_PRELOGIN_PER_IP, s->ip);
        session_close(s, "too many unauthenticated connections");
        return -EBUSY;
    }
    if ((r = hd_channel_host_hello(s->ch, &s->h->ident.key, s->h->ident.id)) !=
            0 ||
        (r = hd_channel_start(s->ch, leftover, n)) != 0) {
        session_close(s, hd_strerror(r));
        return r;
    }
    uv_timer_start(&s->timer, on_tick, SESSION_TICK_MS, SESSION_TICK_MS);
    return 0;
}

int session_begin(struct session *s, const uint8_t *leftover, size_t n)
{
    uv_tcp_nodelay(session_tcp(s), 1);
    hd_channel_peer(s->ch, &s->peer_ss);
    return begin(s, leftover, n);
}

/* The rudp output of a session on a shared socket. */
static int send_shared(void *ud, const uint8_t *d, size_t n)
{
    struct session *s = ud;
    uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);

    if (s->usock == NULL)
        return -EPIPE;
    /* a datagram the socket cannot take now is lost and repaired */
    return uv_udp_try_send(s->usock, &b, 1, (struct sockaddr *)&s->peer_ss);
}

/* Until the channel takes the stream over (it sets its own output). */
static void no_output(const uint8_t *d, size_t n, void *ud)
{
    (void)d;
    (void)n;
    (void)ud;
}

int session_begin_udp(struct session *s, uint32_t conv, uv_udp_t *sock,
                      const struct sockaddr *peer, int fd)
{
    static const struct hd_rudp_cb cb = { no_output };
    struct hd_rudp *r = NULL;
    int e;

    memcpy(&s->peer_ss, peer, hd_addr_len(peer));
    s->conv = conv;
    if ((e = hd_rudp_new(conv, uv_now(s->h->loop), &cb, NULL, &r)) != 0)
        goto fail;
    if (fd >= 0) {
        e = hd_channel_open_udp(s->ch, fd, r);
        fd = -1; /* the channel took it, whatever the outcome */
        if (e != 0)
            goto fail;
    } else {
        if ((e = hd_channel_use_rudp(s->ch, r, peer, send_shared, s)) != 0)
            goto fail;
        s->usock = sock;
    }
    return begin(s, NULL, 0);
fail:
    hd_rudp_free(r);
    if (fd >= 0)
        close(fd);
    session_close(s, hd_strerror(e));
    return e;
}

struct session *session_udp_find(struct host *h, const uv_udp_t *sock,
                                 const struct sockaddr *from, uint32_t conv)
{
    for (struct session *s = h->sessions; s != NULL; s = s->next)
        if (s->conv == conv && s->path == SESSION_UDP &&
            (sock == NULL || s->usock == sock) &&
            hd_addr_same_ip(from, (struct sockaddr *)&s->peer_ss) &&
            hd_addr_port(from) == hd_addr_port((struct sockaddr *)&s->peer_ss))
            return s;
    return NULL;
}

int session_udp_input(struct host *h, uv_udp_t *sock,
                      const struct sockaddr *from, uint32_t conv,
                      const uint8_t *d, size_t n)
{
    struct session *s = session_udp_find(h, sock, from, conv);

    if (s == NULL || s->ch == NULL)
        return 0;
    hd_channel_datagram(s->ch, d, n);
    return 1;
}

void session_broadcast_video(struct host *h, const struct video_frame *f)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__VideoFrame vf = HBB__VIDEO_FRAME__INIT;
    Hbb__EncodedVideoFrames evfs = HBB__ENCODED_VIDEO_FRAMES__INIT;
    Hbb__EncodedVideoFrame evf = HBB__ENCODED_VIDEO_FRAME__INIT, *fr[1];
    struct session *s, *next;
    int want_key = 0;

    evf.data.data = f->data;
    evf.data.len = f->len;
    evf.key = f->key;
    evf.pts = f->pts;
    fr[0] = &evf;
    evfs.n_frames = 1;
    evfs.frames = fr;
    vf.union_case = HBB__VIDEO_FRAME__UNION_VP9S;
    vf.vp9s = &evfs;
    vf.display = 0;
    m.union_case = HBB__MESSAGE__UNION_VIDEO_FRAME;
    m.video_frame = &vf;
    for (s = h->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->state != ST_LIVE || s->lingering || s->xfer != NULL)
            continue;
        if (s->need_key && !f->key) {
            s->frames_dropped++;
            want_key = 1;
            continue;
        }
        if (!video_room(s)) {
            /* another viewer took it; this one restarts from a key frame
             * once it has acknowledged what it has */
            s->frames_dropped++;
            s->need_key = 1;
            continue;
        }
        if (hd_channel_backlog(s->ch) > SESSION_VIDEO_BACKLOG) {
            /* the network is behind: drop, and restart from a key frame
             * once it has caught up */
            s->frames_dropped++;
            s->need_key = 1;
            want_key = 1;
            continue;
        }
        if (send_msg(s, &m) == 0) {
            s->frames_sent++;
            s->bytes_sent += f->len;
            if (f->key)
                s->need_key = 0;
            if (s->acks && s->in_flight++ == 0)
                s->last_ack_ms = now_ms(s);
        }
    }
    if (want_key && h->video)
        video_request_key(h->video);
    video_recount(h);
}

void session_broadcast_audio(struct host *h, const uint8_t *opus, size_t n)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__AudioFrame af = HBB__AUDIO_FRAME__INIT;
    struct session *s, *next;

    af.data.data = (uint8_t *)opus;
    af.data.len = n;
    m.union_case = HBB__MESSAGE__UNION_AUDIO_FRAME;
    m.audio_frame = &af;
    for (s = h->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->state != ST_LIVE || s->lingering || !s->audio)
            continue;
        if (hd_channel_backlog(s->ch) > SESSION_AUDIO_BACKLOG)
            s->audio_dropped++;
        else if (send_msg(s, &m) == 0)
            s->audio_sent++;
    }
}

void session_broadcast_clipboard(struct host *h, const char *text, size_t n)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Clipboard cb;
    struct session *s, *next;
    uint8_t *buf;
    int r;

    if ((r = hd_clip_pack(text, n, &cb, &buf)) != 0) {
        hd_warn(MOD, "clipboard of %zu bytes not sent: %s", n, hd_strerror(r));
        return;
    }
    m.union_case = HBB__MESSAGE__UNION_CLIPBOARD;
    m.clipboard = &cb;
    for (s = h->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->state == ST_LIVE && !s->lingering && s->clipboard)
            send_msg(s, &m);
    }
    free(buf);
}

void session_close_all(struct host *h, const char *reason)
{
    while (h->sessions != NULL)
        session_close(h->sessions, reason);
}

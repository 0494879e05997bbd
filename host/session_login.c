/*
 * A viewer session from the first message to logged in: the key
 * exchange (PublicKey), the salt and challenge (Hash), the password and
 * one-time password checks with their budgets, the LoginResponse with
 * PeerInfo, and a file transfer session's start.
 */
#include "host/session_int.h"

static void send_login_error(struct session *s, const char *text)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__LoginResponse lr = HBB__LOGIN_RESPONSE__INIT;

    lr.union_case = HBB__LOGIN_RESPONSE__UNION_ERROR;
    lr.error = (char *)text;
    m.union_case = HBB__MESSAGE__UNION_LOGIN_RESPONSE;
    m.login_response = &lr;
    session_send_msg(s, &m);
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
    session_send_msg(s, &m);
    s->state = ST_LOGIN;
}

static void send_peer_info(struct session *s)
{
    struct host *h = s->h;
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__LoginResponse lr = HBB__LOGIN_RESPONSE__INIT;
    Hbb__PeerInfo pi = HBB__PEER_INFO__INIT;
    Hbb__DisplayInfo di[MONITORS_MAX], *dis[MONITORS_MAX];
    Hbb__Features feat = HBB__FEATURES__INIT;
    Hbb__SupportedEncoding enc = HBB__SUPPORTED_ENCODING__INIT;
    Hbb__CodecAbility ability = HBB__CODEC_ABILITY__INIT;
    char host[256] = "", user[64] = "";
    const char *disp = h->o->display;
    int w = 0, hgt = 0, i;

    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "homedesk");
    os_user_name(user, sizeof(user));
    if (h->video)
        video_size(h->video, &w, &hgt);
    /* the monitors the capture knows (wlr: the outputs), else RandR's
     * with the X11 capture (or auto: RandR answers only on X11), else the
     * one screen */
    if (h->video && (h->n_monitors = video_monitors(h->video, h->monitors)) > 0)
        ;
    else if (h->o->capture <= 1 && w > 0 && hgt > 0) /* auto or x11 */
        h->n_monitors = monitors_list(disp, w, hgt, h->monitors);
    else {
        h->monitors[0] = (struct monitor){ 0, 0, w, hgt, "" };
        h->n_monitors = 1;
    }
    if (h->n_sessions <= 1 || h->cur_monitor >= h->n_monitors)
        session_share_monitor(h, h->n_monitors > 1 ? 0 : -1); /* primary */
    if (h->n_sessions <= 1 && h->video)
        video_set_quality(h->video, 100, 0); /* an earlier viewer's preset */
    for (i = 0; i < h->n_monitors; i++) {
        const struct monitor *mo = &h->monitors[i];

        hbb__display_info__init(&di[i]);
        dis[i] = &di[i];
        di[i].x = mo->x;
        di[i].y = mo->y;
        di[i].width = mo->width;
        di[i].height = mo->height;
        di[i].name = (char *)(mo->name[0]       ? mo->name
                              : disp && disp[0] ? disp
                                                : ":0");
        di[i].online = 1;
    }
    pi.username = user;
    pi.hostname = host;
    pi.platform = (char *)os_platform();
    pi.n_displays = (size_t)h->n_monitors;
    pi.displays = dis;
    pi.current_display = h->cur_monitor > 0 ? h->cur_monitor : 0;
    pi.version = HOST_WIRE_VERSION;
    pi.features = &feat;
    ability.vp9 = 1;
    enc.i444 = &ability; /* VP9 (implied) in 4:4:4 too, where asked */
    pi.encoding = &enc;
    lr.union_case = HBB__LOGIN_RESPONSE__UNION_PEER_INFO;
    lr.peer_info = &pi;
    m.union_case = HBB__MESSAGE__UNION_LOGIN_RESPONSE;
    m.login_response = &lr;
    session_send_msg(s, &m);
}

void session_on_public_key(struct session *s, const Hbb__Message *m)
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
        session_close_soon(s, "unencrypted session refused");
        return;
    }
    hd_warn(MOD, "UNENCRYPTED session from %s (allowed by --allow-unencrypted)",
            s->peer);
    s->unencrypted = 1;
    send_hash(s);
}

/* Before the first AudioFrame: what the Opus stream is. */
void session_send_audio_format(struct session *s)
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
    session_send_msg(s, &m);
}

static int xfer_send(void *ud, const Hbb__Message *m)
{
    return session_send_msg(ud, (Hbb__Message *)m);
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
        session_close_soon(s, "out of memory");
        return;
    }
    hd_info(MOD, "%s: file transfer session", s->peer);
    hxfer_hello(s->xfer, ft ? ft->dir : NULL, ft ? ft->show_hidden : 0);
    session_send_test_delay(s);
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

void session_on_login(struct session *s, const Hbb__LoginRequest *lr)
{
    struct host *h = s->h;
    uint64_t now = session_now_ms(s), wait;
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
        session_close_soon(s, "session type not supported");
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
    if (session_count_sessions(h, 1, NULL, 0, s) >= HOST_MAX_SESSIONS) {
        hd_warn(MOD, "login from %s refused: %d sessions already", s->peer,
                HOST_MAX_SESSIONS);
        send_login_error(s, "Too many sessions on this host, try later");
        session_close_soon(s, "too many sessions");
        return;
    }
    hd_info(MOD, "login ok from %s (viewer %s, %s password, path %s%s)",
            s->peer, s->viewer, which == 1 ? "permanent" : "one-time",
            session_path_name(s->path), s->unencrypted ? ", UNENCRYPTED" : "");
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
        session_send_audio_format(s);
    session_audio_recount(h);
    s->need_key = 1;
    s->i444 = session_wants_i444(lr->option);
    s->tiles = session_wants_tiles(lr->option);
    s->acks = lr->video_ack_required;
    s->last_ack_ms = session_now_ms(s);
    if (s->acks)
        hd_debug(MOD, "%s acknowledges frames: at most %u in flight", s->peer,
                 SESSION_IN_FLIGHT);
    session_video_recount(h);
    if (h->video)
        video_request_key(h->video);
    session_send_cursor_shape(s);
    if (h->cursor_colors != NULL)
        session_send_cursor_position(s);
    session_send_test_delay(s);
}

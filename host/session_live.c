/*
 * A live session's messages (input, clipboard, options, test delay,
 * video acks) and the broadcasts to every live session: video frames
 * within each viewer's window of frames in flight, Opus audio, the pointer
 * shape and position, the desktop's clipboard.
 */
#include "host/session_int.h"

void session_on_test_delay(struct session *s, const Hbb__TestDelay *td)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__TestDelay echo;

    if (td->from_client) { /* the viewer measures: echo it */
        echo = *td;
        m.union_case = HBB__MESSAGE__UNION_TEST_DELAY;
        m.test_delay = &echo;
        session_send_msg(s, &m);
        return;
    }
    if (s->delay_sent_ms == 0)
        return;
    s->last_delay = (uint32_t)(session_now_ms(s) - s->delay_sent_ms);
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

void session_share_monitor(struct host *h, int i)
{
    const struct monitor *m;

    h->cur_monitor = i >= 0 && i < h->n_monitors ? i : -1;
    if (h->video == NULL)
        return;
    if (h->cur_monitor < 0 || h->n_monitors < 2) {
        video_set_region(h->video, 0, 0, 0, 0);
        return;
    }
    m = &h->monitors[h->cur_monitor];
    video_set_region(h->video, m->x, m->y, m->width, m->height);
}

/*
 * The viewer picks a monitor (display index, or -1 / one past the last
 * for the whole screen): share it and tell the viewer where it is.
 */
static void on_switch_display(struct session *s, const Hbb__SwitchDisplay *sd)
{
    struct host *h = s->h;
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Misc misc = HBB__MISC__INIT;
    Hbb__SwitchDisplay r = HBB__SWITCH_DISPLAY__INIT;
    int w = 0, hgt = 0;

    session_share_monitor(h, sd->display);
    if (h->video)
        video_size(h->video, &w, &hgt);
    r.display = h->cur_monitor;
    if (h->cur_monitor >= 0 && h->n_monitors > 1) {
        r.x = h->monitors[h->cur_monitor].x;
        r.y = h->monitors[h->cur_monitor].y;
        r.width = h->monitors[h->cur_monitor].width;
        r.height = h->monitors[h->cur_monitor].height;
    } else {
        r.width = w;
        r.height = hgt;
    }
    hd_info(MOD, "%s switches to display %d (%dx%d at %d,%d)", s->peer,
            r.display, r.width, r.height, r.x, r.y);
    misc.union_case = HBB__MISC__UNION_SWITCH_DISPLAY;
    misc.switch_display = &r;
    m.union_case = HBB__MESSAGE__UNION_MISC;
    m.misc = &misc;
    session_send_msg(s, &m);
}

/* The viewer turns the clipboard or the sound off or on mid-session, or
 * picks a quality preset. */
static void on_option(struct session *s, const Hbb__OptionMessage *o)
{
    struct host *h = s->h;

    if (o->image_quality != HBB__IMAGE_QUALITY__NotSet && h->video != NULL) {
        /* RustDesk's presets: Best, Balanced (its 0.67 factor is our
         * default bitrate) and Low ("fast": half the bits, 15 fps) */
        int pct = o->image_quality == HBB__IMAGE_QUALITY__Best  ? 150
                  : o->image_quality == HBB__IMAGE_QUALITY__Low ? 50
                                                                : 100;
        int fps = o->custom_fps > 0                             ? o->custom_fps
                  : o->image_quality == HBB__IMAGE_QUALITY__Low ? 15
                                                                : 0;

        video_set_quality(h->video, pct, fps);
        hd_info(MOD, "%s asks for quality %d: bitrate %d%%, %d fps at most",
                s->peer, (int)o->image_quality, pct, fps);
    }
    if (o->supported_decoding != NULL) {
        s->i444 = session_wants_i444(o);
        s->tiles = session_wants_tiles(o);
        session_video_recount(h);
    }
    if (o->disable_clipboard != HBB__OPTION_MESSAGE__BOOL_OPTION__NotSet)
        s->clipboard =
            h->clip != NULL &&
            o->disable_clipboard != HBB__OPTION_MESSAGE__BOOL_OPTION__Yes;
    if (o->disable_audio != HBB__OPTION_MESSAGE__BOOL_OPTION__NotSet) {
        int want = h->audio != NULL &&
                   o->disable_audio != HBB__OPTION_MESSAGE__BOOL_OPTION__Yes;

        if (want && !s->audio)
            session_send_audio_format(s);
        s->audio = want;
        session_audio_recount(h);
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
        session_close_soon(s, "bad clipboard message");
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
void session_send_cursor_shape(struct session *s)
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
            session_send_msg(s, &m);
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
    if (session_send_msg(s, &m) == 0)
        s->cursor_ids[s->n_cursor_ids++ % SESSION_CURSOR_IDS] = h->cursor_id;
}

void session_send_cursor_position(struct session *s)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__CursorPosition cp = HBB__CURSOR_POSITION__INIT;

    cp.x = s->h->cursor_x;
    cp.y = s->h->cursor_y;
    m.union_case = HBB__MESSAGE__UNION_CURSOR_POSITION;
    m.cursor_position = &cp;
    session_send_msg(s, &m);
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
            session_send_cursor_shape(s);
        if (s->mouse_ms == 0 ||
            session_now_ms(s) - s->mouse_ms >= SESSION_ECHO_MS)
            session_send_cursor_position(s);
    }
}

/* Misc.video_received: one frame less in flight. */
static void on_video_ack(struct session *s)
{
    if (!s->acks || s->in_flight == 0)
        return; /* unasked, or more acks than frames: nothing to free */
    s->in_flight--;
    s->last_ack_ms = session_now_ms(s);
    if (s->need_key && s->h->video)
        video_request_key(s->h->video);
    session_video_recount(s->h);
}

void session_on_live(struct session *s, const Hbb__Message *m)
{
    struct host *h = s->h;

    switch (m->union_case) {
    case HBB__MESSAGE__UNION_TEST_DELAY:
        session_on_test_delay(s, m->test_delay);
        break;
    case HBB__MESSAGE__UNION_MOUSE_EVENT:
        s->mouse_ms = session_now_ms(s);
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
        } else if (m->misc->union_case == HBB__MISC__UNION_SWITCH_DISPLAY &&
                   s->xfer == NULL) {
            on_switch_display(s, m->misc->switch_display);
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
    evf.hd_release.data = (uint8_t *)f->release;
    fr[0] = &evf;
    evfs.n_frames = 1;
    evfs.frames = fr;
    if (f->tiles) {
        vf.union_case = HBB__VIDEO_FRAME__UNION_HD_TILES;
        vf.hd_tiles.data = f->data;
        vf.hd_tiles.len = f->len;
    } else {
        vf.union_case = HBB__VIDEO_FRAME__UNION_VP9S;
        vf.vp9s = &evfs;
    }
    vf.display = 0;
    m.union_case = HBB__MESSAGE__UNION_VIDEO_FRAME;
    m.video_frame = &vf;
    for (s = h->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->state != ST_LIVE || s->lingering || s->xfer != NULL)
            continue;
        /* tiles only to viewers that decode them (one queued before a
         * viewer without joined), and only over a picture it has */
        if (f->tiles && (!s->tiles || s->need_key))
            continue;
        if (s->need_key && !f->key) {
            s->frames_dropped++;
            want_key = 1;
            continue;
        }
        if (s->acks && s->in_flight >= SESSION_IN_FLIGHT_MAX) {
            /* another viewer keeps the capture going; this one restarts
             * from a key frame once it has acknowledged what it has */
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
        /* a homedesk extension: to viewers that have it only */
        evf.hd_release.len = s->tiles && f->release ? f->release_len : 0;
        if (session_send_msg(s, &m) == 0) {
            s->frames_sent++;
            s->bytes_sent += f->len;
            if (f->key)
                s->need_key = 0;
            if (s->acks && s->in_flight++ == 0)
                s->last_ack_ms = session_now_ms(s);
        }
    }
    if (want_key && h->video)
        video_request_key(h->video);
    session_video_recount(h);
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
        else if (session_send_msg(s, &m) == 0)
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
            session_send_msg(s, &m);
    }
    free(buf);
}

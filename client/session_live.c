/*
 * The live session's messages (session_int.h): video frames to the decode
 * thread, the host's display switches, TestDelay echoed, the clipboard,
 * and everything else the host sends, dispatched by sess_on_message.
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
    if (vf->union_case == HBB__VIDEO_FRAME__UNION_HD_TILES) {
        if (!s->tiles_seen)
            hd_info("session",
                    "still areas come as lossless tiles (%zu "
                    "bytes the first)",
                    vf->hd_tiles.len);
        s->tiles_seen = 1;
        r = dec_push_tiles(s->dec, vf->hd_tiles.data, vf->hd_tiles.len);
        if (r < 0)
            hd_warn("session", "still tiles dropped: %s", hd_strerror(r));
        pthread_mutex_lock(&s->mu);
        s->st.video_bytes += vf->hd_tiles.len;
        pthread_mutex_unlock(&s->mu);
        sess_send_misc_flag(s, HBB__MISC__UNION_VIDEO_RECEIVED);
        if (r == 1)
            sess_send_refresh(s);
        return;
    }
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
                     (uint64_t)f->pts, f->hd_release.data, f->hd_release.len);
        if (r == 1)
            want_key = 1;
        else if (r < 0)
            hd_warn("session", "video frame dropped: %s", hd_strerror(r));
    }
    pthread_mutex_lock(&s->mu);
    s->st.video_bytes += bytes;
    s->st.video_frames += ef->n_frames;
    pthread_mutex_unlock(&s->mu);
    sess_send_misc_flag(s, HBB__MISC__UNION_VIDEO_RECEIVED);
    if (want_key)
        sess_send_refresh(s);
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
    sess_send_msg(s, &m);
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
        sess_failf(s, "host sent a broken clipboard message");
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

void sess_on_message(struct hd_channel *ch, const Hbb__Message *m, void *ud)
{
    struct sess *s = ud;

    uv_timer_again(&s->idle);
    switch (m->union_case) {
    case HBB__MESSAGE__UNION_SIGNED_ID:
        sess_on_signed_id(s, m->signed_id);
        break;
    case HBB__MESSAGE__UNION_HASH:
        sess_on_hash(s, m->hash);
        break;
    case HBB__MESSAGE__UNION_LOGIN_RESPONSE:
        sess_on_login_response(s, m->login_response);
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
            sess_failf(s, "host closed the session: %s", m->misc->close_reason);
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
            sess_failf(s, "host refused: %s", m->message_box->text);
        break;
    default:
        if (s->state < ST_HASH && m->union_case != HBB__MESSAGE__UNION__NOT_SET)
            sess_failf(s, "host sent message %d before the secure channel",
                       (int)m->union_case);
        break; /* cursor, audio...: not used yet */
    }
}

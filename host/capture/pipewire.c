/*
 * Capture on GNOME (mutter, Wayland): a PipeWire video stream from
 * mutter's ScreenCast API (host/gnome/mutter.h), one monitor, the pointer
 * as metadata (SPA_META_Cursor: its position and, when it changes, its
 * image), not in the pictures: the viewer draws it, as with XFixes on
 * X11, and a moving pointer costs no video.  Driven like the wlr backend: the
 * PipeWire loop is not a thread of its own but runs inside grab(), which sleeps
 * in poll() on the loop's fd, the session bus and the wake-up fd.
 *
 * Buffers are shared memory (MemFd or MemPtr: mutter falls back to them
 * when the consumer names no DMA-BUF modifier), in a 32-bit format:
 * BGRx/BGRA are our BGRA byte for byte, RGBx/RGBA are swapped.  Every
 * buffer dequeued is given back at once: its damage (SPA_META_VideoDamage
 * when mutter sends it, else the whole picture) is added up, and the
 * newest buffer's pixels are compared with the persistent frame inside
 * that damage, in bands of BAND rows: only the rows and columns that really
 * changed are copied and reported, so a typed letter is a small
 * rectangle whether or not mutter says where it is.  mutter sends a buffer
 * only when the monitor changes (a still screen costs nothing) and, with
 * no buffer free, drops that picture: never keeping one is what keeps the
 * last picture of a burst from being lost.
 *
 * The frame follows the stream's negotiated size: a new size reallocates
 * it and reports it whole (RESIZED).  The monitor is published as the
 * host's one monitor (capture_set_monitors).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pipewire/pipewire.h>
#include <spa/param/video/format-utils.h>
#include <spa/utils/result.h>

#include "host/capture/capture.h"
#include "host/gnome/mutter.h"
#include "log.h"

#define MOD        "capture-pipewire"
#define BAND       16   /* rows compared and reported together */
#define OPEN_MS    5000 /* for the stream to reach STREAMING */
#define MAX_DAMAGE 32   /* damage regions asked for per buffer */
/* the cursor metadata's size for a w x h image */
#define CURSOR_META(w, h)                                                    \
    ((int)(sizeof(struct spa_meta_cursor) + sizeof(struct spa_meta_bitmap) + \
           (size_t)(w) * (size_t)(h)*4))

struct pwcap {
    struct capture *cap;
    struct mutter m;
    int pw_inited;
    struct pw_loop *loop;
    struct pw_context *ctx;
    struct pw_core *core;
    struct spa_hook core_listener;
    struct pw_stream *stream;
    struct spa_hook stream_listener;
    enum pw_stream_state state;
    int failed; /* the stream or the core reported an error */

    /* the negotiated format */
    uint32_t format;
    int fw, fh;

    /* the persistent BGRA frame */
    uint8_t *frame, *row;
    int width, height, stride;
    int first, resized, whole, fresh, had_damage_meta, said_damage;
    struct capture_rect dmg[CAPTURE_MAX_RECTS]; /* pending, from buffers */
    int n_dmg;
    struct capture_rect rects[CAPTURE_MAX_RECTS]; /* the next frame's */
    int n_rects;

    /* the pointer, from the cursor metadata */
    struct capture_cursor cursor;
    unsigned cursor_flags; /* CAPTURE_F_CURSOR_* not yet reported */
    uint32_t cursor_argb[CAPTURE_CURSOR_MAX * CAPTURE_CURSOR_MAX];
};

/* ---- the stream's events ------------------------------------------------ */

static void on_state(void *data, enum pw_stream_state old,
                     enum pw_stream_state state, const char *error)
{
    struct pwcap *p = data;

    p->state = state;
    if (state == PW_STREAM_STATE_ERROR) {
        hd_error(MOD, "the PipeWire stream of node %u failed: %s", p->m.node,
                 error != NULL ? error : "(no reason)");
        p->failed = 1;
    } else if (state == PW_STREAM_STATE_UNCONNECTED && old != state &&
               p->fw > 0) {
        hd_error(MOD, "the PipeWire stream of node %u was disconnected",
                 p->m.node);
        p->failed = 1;
    }
}

/* Tell mutter which buffers we take, once the format is agreed. */
static void on_param(void *data, uint32_t id, const struct spa_pod *param)
{
    struct pwcap *p = data;
    struct spa_video_info_raw raw;
    uint8_t buf[1024];
    struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof(buf));
    const struct spa_pod *params[4];

    if (id != SPA_PARAM_Format || param == NULL)
        return;
    memset(&raw, 0, sizeof(raw));
    if (spa_format_video_raw_parse(param, &raw) < 0) {
        hd_error(MOD, "mutter's video format is not raw video");
        p->failed = 1;
        return;
    }
    p->format = raw.format;
    p->fw = (int)raw.size.width;
    p->fh = (int)raw.size.height;
    hd_info(MOD, "stream format %s, %dx%d",
            raw.format == SPA_VIDEO_FORMAT_BGRx   ? "BGRx"
            : raw.format == SPA_VIDEO_FORMAT_BGRA ? "BGRA"
            : raw.format == SPA_VIDEO_FORMAT_RGBx ? "RGBx"
                                                  : "RGBA",
            p->fw, p->fh);
    params[0] = spa_pod_builder_add_object(
        &b, SPA_TYPE_OBJECT_ParamBuffers, SPA_PARAM_Buffers,
        SPA_PARAM_BUFFERS_dataType,
        SPA_POD_CHOICE_FLAGS_Int((1 << SPA_DATA_MemFd) |
                                 (1 << SPA_DATA_MemPtr)));
    params[1] = spa_pod_builder_add_object(
        &b, SPA_TYPE_OBJECT_ParamMeta, SPA_PARAM_Meta, SPA_PARAM_META_type,
        SPA_POD_Id(SPA_META_Header), SPA_PARAM_META_size,
        SPA_POD_Int(sizeof(struct spa_meta_header)));
    params[2] = spa_pod_builder_add_object(
        &b, SPA_TYPE_OBJECT_ParamMeta, SPA_PARAM_Meta, SPA_PARAM_META_type,
        SPA_POD_Id(SPA_META_VideoDamage), SPA_PARAM_META_size,
        SPA_POD_CHOICE_RANGE_Int(sizeof(struct spa_meta_region) * MAX_DAMAGE,
                                 sizeof(struct spa_meta_region),
                                 sizeof(struct spa_meta_region) * MAX_DAMAGE));
    params[3] = spa_pod_builder_add_object(
        &b, SPA_TYPE_OBJECT_ParamMeta, SPA_PARAM_Meta, SPA_PARAM_META_type,
        SPA_POD_Id(SPA_META_Cursor), SPA_PARAM_META_size,
        /* the room mutter fills: its size is mutter's choice (43: a
         * fixed 384x384; a range that misses it loses the metadata) */
        SPA_POD_CHOICE_RANGE_Int(CURSOR_META(64, 64), CURSOR_META(1, 1),
                                 CURSOR_META(1024, 1024)));
    pw_stream_update_params(p->stream, params, 4);
}

static int format_ok(uint32_t f)
{
    return f == SPA_VIDEO_FORMAT_BGRx || f == SPA_VIDEO_FORMAT_BGRA ||
           f == SPA_VIDEO_FORMAT_RGBx || f == SPA_VIDEO_FORMAT_RGBA;
}

/* The frame at the stream's size (reallocated, RESIZED reported, when it
 * changes).  0 or -ENOMEM. */
static int frame_size(struct pwcap *p)
{
    uint8_t *f, *row;
    struct monitor mon = { 0, 0, p->fw, p->fh, "" };
    const char *conn = getenv("HOMEDESK_WAYLAND_OUTPUT");

    if (p->frame != NULL && p->width == p->fw && p->height == p->fh)
        return 0;
    f = calloc((size_t)p->fw * 4, (size_t)p->fh);
    row = malloc((size_t)p->fw * 4);
    if (f == NULL || row == NULL) {
        free(f);
        free(row);
        return -ENOMEM;
    }
    free(p->frame);
    free(p->row);
    p->frame = f;
    p->row = row;
    p->resized = p->width != 0;
    p->width = p->fw;
    p->height = p->fh;
    p->stride = p->fw * 4;
    p->whole = 1;
    snprintf(mon.name, sizeof(mon.name), "%s",
             conn != NULL && conn[0] ? conn : "primary");
    capture_set_monitors(p->cap, &mon, 1);
    return 0;
}

/* Where the two rows of n pixels first and last differ: 1 with *a, *b,
 * or 0 when they are equal. */
static int row_diff(const uint32_t *x, const uint32_t *y, int n, int *a, int *b)
{
    int i = 0, j = n - 1;

    while (i < n && x[i] == y[i])
        i++;
    if (i == n)
        return 0;
    while (j > i && x[j] == y[j])
        j--;
    *a = i;
    *b = j;
    return 1;
}

/*
 * Copy area r of the picture src (stride sstride, the stream's format)
 * into the frame where it differs (all of it: every row), BAND rows at a
 * time, and add what changed to p->rects.
 */
static void copy_changed(struct pwcap *p, const uint8_t *src, int sstride,
                         struct capture_rect r, int all)
{
    int swap = p->format == SPA_VIDEO_FORMAT_RGBx ||
               p->format == SPA_VIDEO_FORMAT_RGBA;

    for (int y0 = r.y; y0 < r.y + r.h; y0 += BAND) {
        int y1 = y0 + BAND < r.y + r.h ? y0 + BAND : r.y + r.h;
        int lo = r.w, hi = -1, a, b;

        for (int y = y0; y < y1; y++) {
            const uint8_t *s = src + (size_t)y * sstride + (size_t)r.x * 4;
            uint8_t *d = p->frame + (size_t)y * p->stride + (size_t)r.x * 4;

            if (swap) {
                for (int x = 0; x < r.w; x++) {
                    p->row[x * 4] = s[x * 4 + 2];
                    p->row[x * 4 + 1] = s[x * 4 + 1];
                    p->row[x * 4 + 2] = s[x * 4];
                    p->row[x * 4 + 3] = s[x * 4 + 3];
                }
                s = p->row;
            }
            if (all) {
                a = 0;
                b = r.w - 1;
            } else if (!row_diff((const uint32_t *)s, (const uint32_t *)d, r.w,
                                 &a, &b)) {
                continue;
            }
            memcpy(d + a * 4, s + a * 4, (size_t)(b - a + 1) * 4);
            p->cap->stats.bytes_copied += (uint64_t)(b - a + 1) * 4;
            lo = a < lo ? a : lo;
            hi = b > hi ? b : hi;
        }
        if (hi >= 0)
            capture_rects_add(
                p->rects, &p->n_rects, p->width, p->height,
                (struct capture_rect){ r.x + lo, y0, hi - lo + 1, y1 - y0 });
    }
}

/* A buffer's damage into p->dmg (the whole picture without the meta). */
static void add_damage(struct pwcap *p, struct spa_buffer *buf)
{
    struct spa_meta *dm = spa_buffer_find_meta(buf, SPA_META_VideoDamage);
    struct spa_meta_region *reg;
    int any = 0;

    if (buf->n_datas < 1 || buf->datas[0].chunk->size == 0)
        return; /* the pointer alone changed */
    if (dm != NULL) {
        p->had_damage_meta = 1;
        spa_meta_for_each(reg, dm)
        {
            if (!spa_meta_region_is_valid(reg))
                break;
            capture_rects_add(
                p->dmg, &p->n_dmg, p->fw, p->fh,
                (struct capture_rect){ reg->region.position.x,
                                       reg->region.position.y,
                                       (int)reg->region.size.width,
                                       (int)reg->region.size.height });
            any = 1;
        }
    }
    if (!any)
        capture_rects_add(p->dmg, &p->n_dmg, p->fw, p->fh,
                          (struct capture_rect){ 0, 0, p->fw, p->fh });
}

/*
 * A buffer's cursor metadata into p->cursor: its place (mutter's position
 * is the pointer's; we report it) and, with a bitmap, its image as
 * premultiplied ARGB words (mutter sends premultiplied RGBA).  An image
 * larger than CAPTURE_CURSOR_MAX a side, or of another format, is kept
 * out (the viewer keeps the previous one).
 */
static void take_cursor(struct pwcap *p, struct spa_buffer *buf)
{
    struct spa_meta_cursor *mc =
        spa_buffer_find_meta_data(buf, SPA_META_Cursor, sizeof(*mc));
    struct spa_meta *meta = spa_buffer_find_meta(buf, SPA_META_Cursor);
    struct spa_meta_bitmap *bm;
    struct capture_cursor *c = &p->cursor;
    int w, h, swap;

    if (mc == NULL || !spa_meta_cursor_is_valid(mc))
        return;
    if (mc->position.x != c->x || mc->position.y != c->y) {
        c->x = mc->position.x;
        c->y = mc->position.y;
        p->cursor_flags |= CAPTURE_F_CURSOR_MOVED;
    }
    if (mc->bitmap_offset < sizeof(*mc) ||
        (size_t)mc->bitmap_offset + sizeof(*bm) > meta->size)
        return;
    bm = SPA_PTROFF(mc, mc->bitmap_offset, struct spa_meta_bitmap);
    if (!spa_meta_bitmap_is_valid(bm))
        return;
    w = (int)bm->size.width;
    h = (int)bm->size.height;
    swap = bm->format == SPA_VIDEO_FORMAT_RGBA;
    if ((!swap && bm->format != SPA_VIDEO_FORMAT_BGRA) || w <= 0 || h <= 0 ||
        w > CAPTURE_CURSOR_MAX || h > CAPTURE_CURSOR_MAX ||
        bm->stride < w * 4 ||
        (size_t)mc->bitmap_offset + bm->offset + (size_t)bm->stride * h >
            meta->size)
        return;
    for (int y = 0; y < h; y++) {
        const uint8_t *s =
            SPA_PTROFF(bm, bm->offset + (size_t)bm->stride * y, const uint8_t);
        for (int x = 0; x < w; x++, s += 4)
            p->cursor_argb[y * w + x] =
                (uint32_t)s[3] << 24 | (uint32_t)s[swap ? 0 : 2] << 16 |
                (uint32_t)s[1] << 8 | (uint32_t)s[swap ? 2 : 0];
    }
    c->width = w;
    c->height = h;
    c->hot_x = mc->hotspot.x;
    c->hot_y = mc->hotspot.y;
    c->serial++;
    c->argb = p->cursor_argb;
    p->cursor_flags |= CAPTURE_F_CURSOR_SHAPE;
    if (c->serial == 1)
        hd_info(MOD, "pointer image %dx%d (hotspot %d,%d) from mutter", w, h,
                c->hot_x, c->hot_y);
}

/* The newest buffer's picture into the frame. */
static void take(struct pwcap *p, struct spa_buffer *buf)
{
    struct spa_data *d = &buf->datas[0];
    struct spa_meta_header *h =
        spa_buffer_find_meta_data(buf, SPA_META_Header, sizeof(*h));
    int sstride;

    if (buf->n_datas < 1 || d->data == NULL || d->chunk->size == 0 ||
        (d->chunk->flags & SPA_CHUNK_FLAG_CORRUPTED) ||
        (h != NULL && (h->flags & SPA_META_HEADER_FLAG_CORRUPTED)))
        return; /* a cursor-only update, or nothing usable */
    if (!format_ok(p->format) || p->fw <= 0 || p->fh <= 0 ||
        p->fw > CAPTURE_MAX_SIDE || p->fh > CAPTURE_MAX_SIDE) {
        hd_error(MOD,
                 "mutter sends %dx%d pictures of format %u: not a "
                 "32-bit format we read",
                 p->fw, p->fh, p->format);
        p->failed = 1;
        return;
    }
    sstride = d->chunk->stride > 0 ? d->chunk->stride : p->fw * 4;
    if (sstride < p->fw * 4 ||
        (uint64_t)d->chunk->offset + (uint64_t)sstride * (uint64_t)p->fh >
            d->maxsize) {
        hd_error(MOD,
                 "a buffer of %u bytes (stride %d) is short of a %dx%d "
                 "picture",
                 d->maxsize, sstride, p->fw, p->fh);
        p->failed = 1;
        return;
    }
    if (frame_size(p) != 0) {
        p->failed = 1;
        return;
    }
    if (p->whole) {
        p->n_dmg = 0;
        capture_rects_add(p->dmg, &p->n_dmg, p->fw, p->fh,
                          (struct capture_rect){ 0, 0, p->fw, p->fh });
    }
    for (int i = 0; i < p->n_dmg; i++)
        copy_changed(p, (const uint8_t *)d->data + d->chunk->offset, sstride,
                     p->dmg[i], p->whole);
    p->n_dmg = 0;
    p->whole = 0;
    p->fresh = 1;
    if (!p->said_damage) {
        hd_info(MOD, "damage: %s",
                p->had_damage_meta ? "mutter's regions (SPA_META_VideoDamage)"
                                   : "mutter sends no damage regions: "
                                     "found by comparing rows");
        p->said_damage = 1;
    }
    p->cap->stats.reads++;
}

/* Every buffer waiting: damage added up, the newest one's pixels taken,
 * all given back at once. */
static void on_process(void *data)
{
    struct pwcap *p = data;
    struct pw_buffer *b, *last = NULL;

    while ((b = pw_stream_dequeue_buffer(p->stream)) != NULL) {
        take_cursor(p, b->buffer);
        add_damage(p, b->buffer);
        if (last != NULL)
            pw_stream_queue_buffer(p->stream, last);
        last = b;
    }
    if (last == NULL)
        return;
    take(p, last->buffer);
    pw_stream_queue_buffer(p->stream, last);
}

static const struct pw_stream_events stream_events = {
    PW_VERSION_STREAM_EVENTS,
    .state_changed = on_state,
    .param_changed = on_param,
    .process = on_process,
};

static void on_core_error(void *data, uint32_t id, int seq, int res,
                          const char *message)
{
    struct pwcap *p = data;

    if (id != PW_ID_CORE)
        return;
    hd_error(MOD, "PipeWire: %s (%s)", message != NULL ? message : "error",
             spa_strerror(res));
    p->failed = 1;
}

static const struct pw_core_events core_events = {
    PW_VERSION_CORE_EVENTS,
    .error = on_core_error,
};

/* ---- open / close ------------------------------------------------------ */

static void pw_close_(struct capture *cap)
{
    struct pwcap *p = cap->priv;

    if (p->loop != NULL)
        pw_loop_enter(p->loop);
    if (p->stream != NULL) {
        spa_hook_remove(&p->stream_listener); /* no "disconnected" now */
        pw_stream_destroy(p->stream);
    }
    if (p->core != NULL)
        pw_core_disconnect(p->core);
    if (p->ctx != NULL)
        pw_context_destroy(p->ctx);
    if (p->loop != NULL) {
        pw_loop_leave(p->loop);
        pw_loop_destroy(p->loop);
    }
    if (p->pw_inited)
        pw_deinit();
    mutter_close(&p->m);
    free(p->frame);
    free(p->row);
    memset(p, 0, sizeof(*p));
}

static int pw_open_(struct capture *cap, const struct capture_opts *opts)
{
    struct pwcap *p = cap->priv;
    uint8_t buf[1024];
    struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof(buf));
    const struct spa_pod *params[1];
    const char *rt = getenv("XDG_RUNTIME_DIR");
    uint64_t end;

    p->cap = cap;
    if (mutter_open(&p->m, MUTTER_CAPTURE, MUTTER_CURSOR_METADATA, MOD) != 0)
        return -ENODEV;
    pw_init(NULL, NULL);
    p->pw_inited = 1;
    if ((p->loop = pw_loop_new(NULL)) == NULL ||
        (p->ctx = pw_context_new(p->loop, NULL, 0)) == NULL)
        goto fail;
    /* the loop is this thread's while a call runs (open and close run on
     * the host's loop thread, grab on the capture thread) */
    pw_loop_enter(p->loop);
    if ((p->core = pw_context_connect(p->ctx, NULL, 0)) == NULL) {
        hd_error(MOD,
                 "cannot reach the PipeWire daemon (%s/pipewire-0): %s; "
                 "mutter's screen cast needs it running in the session",
                 rt != NULL ? rt : "$XDG_RUNTIME_DIR", strerror(errno));
        goto fail;
    }
    pw_core_add_listener(p->core, &p->core_listener, &core_events, p);
    p->stream = pw_stream_new(
        p->core, "homedesk-host",
        pw_properties_new(PW_KEY_MEDIA_TYPE, "Video", PW_KEY_MEDIA_CATEGORY,
                          "Capture", PW_KEY_MEDIA_ROLE, "Screen", NULL));
    if (p->stream == NULL)
        goto fail;
    pw_stream_add_listener(p->stream, &p->stream_listener, &stream_events, p);
    params[0] = spa_pod_builder_add_object(
        &b, SPA_TYPE_OBJECT_Format, SPA_PARAM_EnumFormat, SPA_FORMAT_mediaType,
        SPA_POD_Id(SPA_MEDIA_TYPE_video), SPA_FORMAT_mediaSubtype,
        SPA_POD_Id(SPA_MEDIA_SUBTYPE_raw), SPA_FORMAT_VIDEO_format,
        SPA_POD_CHOICE_ENUM_Id(5, SPA_VIDEO_FORMAT_BGRx, SPA_VIDEO_FORMAT_BGRx,
                               SPA_VIDEO_FORMAT_BGRA, SPA_VIDEO_FORMAT_RGBx,
                               SPA_VIDEO_FORMAT_RGBA),
        SPA_FORMAT_VIDEO_size,
        SPA_POD_CHOICE_RANGE_Rectangle(
            &SPA_RECTANGLE(1920, 1080), &SPA_RECTANGLE(1, 1),
            &SPA_RECTANGLE(CAPTURE_MAX_SIDE, CAPTURE_MAX_SIDE)),
        SPA_FORMAT_VIDEO_framerate,
        SPA_POD_CHOICE_RANGE_Fraction(&SPA_FRACTION(60, 1), &SPA_FRACTION(0, 1),
                                      &SPA_FRACTION(1000, 1)));
    if (pw_stream_connect(p->stream, PW_DIRECTION_INPUT, p->m.node,
                          PW_STREAM_FLAG_AUTOCONNECT |
                              PW_STREAM_FLAG_MAP_BUFFERS,
                          params, 1) < 0) {
        hd_error(MOD, "cannot connect to PipeWire node %u", p->m.node);
        goto fail;
    }
    end = capture_now_us() + OPEN_MS * 1000ull;
    while (!p->failed && p->state != PW_STREAM_STATE_STREAMING &&
           capture_now_us() < end)
        pw_loop_iterate(p->loop, 100);
    if (p->state != PW_STREAM_STATE_STREAMING) {
        if (!p->failed)
            hd_error(MOD,
                     "the PipeWire stream of node %u is not streaming after "
                     "%d s (state %s; is a session manager such as "
                     "wireplumber running?)",
                     p->m.node, OPEN_MS / 1000,
                     pw_stream_state_as_string(p->state));
        goto fail;
    }
    pw_loop_leave(p->loop);
    p->first = 1;
    p->whole = 1;
    hd_info(MOD,
            "GNOME screen cast: mutter's monitor %dx%d at %d,%d, PipeWire "
            "node %u",
            p->m.w, p->m.h, p->m.x, p->m.y, p->m.node);
    return 0;
fail:
    if (p->loop != NULL && p->ctx != NULL)
        pw_loop_leave(p->loop);
    pw_close_(cap);
    return -ENODEV;
}

/* ---- grab -------------------------------------------------------------- */

static int produce(struct pwcap *p, struct capture_frame *out)
{
    out->data = p->frame;
    out->stride = p->stride;
    out->width = p->width;
    out->height = p->height;
    out->flags =
        p->n_rects > 0 || p->first || p->resized ? CAPTURE_F_PIXELS : 0;
    out->flags |= p->cursor_flags;
    if (p->first)
        out->flags |= CAPTURE_F_CURSOR_MOVED | CAPTURE_F_CURSOR_SHAPE;
    out->cursor = p->cursor;
    p->cursor_flags = 0;
    if (p->resized) {
        out->flags |= CAPTURE_F_RESIZED;
        hd_info(MOD, "the picture is now %dx%d", p->width, p->height);
    }
    if (p->first || p->resized) {
        p->n_rects = 0;
        p->rects[p->n_rects++] =
            (struct capture_rect){ 0, 0, p->width, p->height };
    }
    out->n_rects = p->n_rects;
    out->rects = p->rects;
    out->time_us = capture_now_us();
    p->first = p->resized = p->fresh = 0;
    p->n_rects = 0;
    return 1;
}

static int pw_grab_(struct capture *cap, struct capture_frame *out,
                    int timeout_ms)
{
    struct pwcap *p = cap->priv;
    struct pollfd fds[3] = {
        { .fd = pw_loop_get_fd(p->loop), .events = POLLIN },
        { .fd = os_wake_fd(&cap->wake), .events = POLLIN },
        { .fd = mutter_fd(&p->m), .events = POLLIN },
    };
    uint64_t deadline = timeout_ms < 0
                            ? UINT64_MAX
                            : capture_now_us() + (uint64_t)timeout_ms * 1000;
    int left, r;

    if (atomic_exchange(&cap->refresh, 0) && p->frame != NULL) {
        /* the frame is always the whole current picture: report it all */
        p->n_rects = 0;
        p->rects[p->n_rects++] =
            (struct capture_rect){ 0, 0, p->width, p->height };
        p->fresh = 1;
    }
    pw_loop_enter(p->loop);
    for (;;) {
        pw_loop_iterate(p->loop, 0);
        if (p->failed) {
            r = -EIO;
            break;
        }
        if (mutter_pump(&p->m) != 0) {
            hd_error(MOD, "mutter ended the screen cast (session %s)", p->m.sc);
            r = -EIO;
            break;
        }
        if (p->frame != NULL &&
            ((p->fresh && (p->n_rects > 0 || p->first)) || p->cursor_flags)) {
            r = produce(p, out);
            break;
        }
        p->fresh = 0;
        left = deadline == UINT64_MAX ? -1
               : capture_now_us() >= deadline
                   ? 0
                   : (int)((deadline - capture_now_us() + 999) / 1000);
        if (poll(fds, 3, left) <= 0 || (fds[1].revents & POLLIN)) {
            r = 0;
            break;
        }
    }
    pw_loop_leave(p->loop);
    return r;
}

const struct capture_driver capture_driver_pipewire = {
    .name = "pipewire",
    .description = "GNOME (mutter) on Wayland: its ScreenCast API, PipeWire",
    .priv_size = sizeof(struct pwcap),
    .open = pw_open_,
    .grab = pw_grab_,
    .close = pw_close_,
};

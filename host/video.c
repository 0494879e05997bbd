/*
 * Capture+encode thread.  See video.h.  Shared between the two threads,
 * under v->lock: the queue, active, stop, fps/kbps; want_key is atomic.
 * The struct is freed in the uv_async close callback, after the thread
 * has been joined.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "host/video.h"
#include "log.h"
#include "net.h"
#include "venc.h"

#define MOD "video"

/*
 * Pacing: a token bucket of frames.  A change after a quiet moment is
 * encoded as soon as its damage arrives (no waiting for a frame slot);
 * only sustained change is paced, at fps frames per second once
 * VIDEO_BURST frames have gone out at once.  The bucket is checked before
 * the grab, so a paced frame carries the newest pixels.
 */
#define VIDEO_BURST 3

/*
 * Refinement: every area coded since the screen was last still (and the
 * whole screen after a key frame: a viewer joining a still desktop) is
 * coded again once nothing has changed for VIDEO_REFINE_DELAY_MS, in
 * VP9's lossless mode, so still text ends pixel-exact where its first,
 * fast pass was coarse.  At most VIDEO_REFINE_PARTS-th of the screen per
 * frame (a large area takes a few frames, one burst per frame stays
 * bounded); any change preempts it.  A still screen then goes quiet.
 * Refinement frames wait until every viewer can take a frame
 * (video_set_refine_ok): one sent while a slow viewer is at its limit of
 * frames in flight is dropped for it, that viewer then needs a key frame,
 * and a key frame starts the refinement of the whole screen over, for
 * everyone (seen under load: a second viewer never got a sharp picture).
 */
#define VIDEO_REFINE_DELAY_MS 100
#define VIDEO_REFINE_PARTS    4

struct video {
    uv_async_t async;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    video_frame_cb cb;
    void *ud;
    struct video_opts o;
    struct capture *cap;
    /* under lock */
    struct video_frame queue[VIDEO_QUEUE];
    int n_queued;
    int active, stop, started, start_error, fps, kbps;
    int q_pct, q_fps; /* the viewer's quality preset (video_set_quality) */
    struct capture_rect region; /* video_set_region; w 0 = the screen */
    uint64_t dropped;
    /* any thread */
    atomic_int want_key;
    atomic_int refine_ok; /* every viewer has room for a frame */
    atomic_int i444;      /* video_set_i444 */
    atomic_int tiles;     /* video_set_tiles */
    atomic_int width, height;
    /* capture thread only */
    struct capture_frame last;
    int have_last;
    uint64_t t0_us;
    struct hd_venc *enc;
    int enc_w, enc_h, enc_fps, enc_kbps, enc_i444;
    struct hd_venc_rect rects[CAPTURE_MAX_RECTS];
    struct capture_rect crop_rects[CAPTURE_MAX_RECTS];
    /* areas changed since the screen was last still, to refine */
    struct capture_rect refine[CAPTURE_MAX_RECTS];
    int n_refine;
    struct capture_rect refine_now[CAPTURE_MAX_RECTS];
    uint64_t changed_us; /* when the screen last changed (or a key frame) */
    double tokens;       /* frames that may go out at once (pacing) */
    uint64_t tokens_us;  /* when tokens was last refilled */
    /* the pointer: cur (its pixels in cur_argb) under lock, cur_pending
     * the CAPTURE_F_CURSOR_* flags not yet handed over; loop_argb is the
     * loop thread's copy */
    struct video_cursor cur;
    unsigned cur_pending;
    uint32_t cur_argb[CAPTURE_CURSOR_MAX * CAPTURE_CURSOR_MAX];
    uint32_t loop_argb[CAPTURE_CURSOR_MAX * CAPTURE_CURSOR_MAX];
};

/* Capture thread: keep the frame's pointer for the loop (on_async). */
static void cursor_take(struct video *v, const struct capture_frame *f)
{
    unsigned fl = f->flags & (CAPTURE_F_CURSOR_MOVED | CAPTURE_F_CURSOR_SHAPE);
    const struct capture_cursor *c = &f->cursor;

    if (fl == 0 || v->o.on_cursor == NULL)
        return;
    pthread_mutex_lock(&v->lock);
    v->cur.x = c->x;
    v->cur.y = c->y;
    if ((fl & CAPTURE_F_CURSOR_SHAPE) && c->argb != NULL && c->width > 0 &&
        c->height > 0 && c->width <= CAPTURE_CURSOR_MAX &&
        c->height <= CAPTURE_CURSOR_MAX) {
        v->cur.hot_x = c->hot_x;
        v->cur.hot_y = c->hot_y;
        v->cur.width = c->width;
        v->cur.height = c->height;
        v->cur.serial = c->serial;
        memcpy(v->cur_argb, c->argb,
               (size_t)c->width * (size_t)c->height * sizeof(uint32_t));
    } else {
        fl &= ~(unsigned)CAPTURE_F_CURSOR_SHAPE;
    }
    v->cur_pending |= fl;
    pthread_mutex_unlock(&v->lock);
    uv_async_send(&v->async);
}

/* Default bitrate for a screen: about 1 kbit/s per 1000 pixels (2073 at
 * 1080p, RustDesk's baseline before its quality factor). */
static int default_kbps(int w, int h)
{
    long k = (long)w * h / 1000;

    return k < 200 ? 200 : k > 8000 ? 8000 : (int)k;
}

int video_has_encoder(void)
{
    return 1;
}

/*
 * Encode the current screen (f: the whole frame is valid, f->rects what
 * changed).  Returns 1 with *out filled (malloc'd data), 0 when the
 * encoder produced nothing (rate control dropped it), or an error.
 */
/*
 * The part of f in the region (one monitor): *c points into f's pixels,
 * its changed rectangles clipped and moved to the region's origin.
 * Returns 0 with c filled, or 1 when the region is the whole frame (use
 * f as it is).
 */
static int crop(struct video *v, const struct capture_frame *f,
                struct capture_frame *c)
{
    struct capture_rect g;
    int n = 0;

    pthread_mutex_lock(&v->lock);
    g = v->region;
    pthread_mutex_unlock(&v->lock);
    if (g.w <= 0 || g.h <= 0 || g.x < 0 || g.y < 0 || g.x + g.w > f->width ||
        g.y + g.h > f->height || (g.w == f->width && g.h == f->height))
        return 1;
    *c = *f;
    c->data = f->data + (size_t)g.y * (size_t)f->stride + (size_t)g.x * 4;
    c->width = g.w;
    c->height = g.h;
    c->cursor.x -= g.x;
    c->cursor.y -= g.y;
    for (int i = 0; i < f->n_rects; i++) {
        int x0 = f->rects[i].x > g.x ? f->rects[i].x : g.x;
        int y0 = f->rects[i].y > g.y ? f->rects[i].y : g.y;
        int x1 = f->rects[i].x + f->rects[i].w,
            y1 = f->rects[i].y + f->rects[i].h;

        x1 = x1 < g.x + g.w ? x1 : g.x + g.w;
        y1 = y1 < g.y + g.h ? y1 : g.y + g.h;
        if (x1 > x0 && y1 > y0)
            v->crop_rects[n++] =
                (struct capture_rect){ x0 - g.x, y0 - g.y, x1 - x0, y1 - y0 };
    }
    c->rects = v->crop_rects;
    c->n_rects = n;
    return 0;
}

static void push(struct video *v, struct video_frame *f);

/* Queue a still tiles message (a copy of msg) for a picture like f. */
static int push_tiles(struct video *v, const uint8_t *msg, size_t n,
                      int64_t pts, const struct capture_frame *f)
{
    struct video_frame out;

    memset(&out, 0, sizeof(out));
    if ((out.data = malloc(n)) == NULL)
        return -ENOMEM;
    memcpy(out.data, msg, n);
    out.len = n;
    out.tiles = 1;
    out.pts = pts;
    out.width = f->width;
    out.height = f->height;
    hd_debug(MOD, "frame %zu bytes (tiles first)", n);
    push(v, &out);
    return 0;
}

static int encode(struct video *v, const struct capture_frame *full, int key,
                  struct video_frame *out)
{
    struct capture_frame part;
    const struct capture_frame *f = crop(v, full, &part) == 0 ? &part : full;
    struct hd_venc_input in;
    struct hd_venc_packet pkt;
    int r, fps, kbps, i444 = atomic_load(&v->i444);

    memset(out, 0, sizeof(*out));
    if (f == &part && f->n_rects == 0 && !key &&
        !(f->flags & CAPTURE_F_RESIZED) && v->enc != NULL &&
        v->enc_w == f->width && v->enc_h == f->height)
        return 0; /* nothing changed on this monitor */
    pthread_mutex_lock(&v->lock);
    fps = v->fps;
    kbps = v->kbps;
    if (kbps <= 0)
        kbps = default_kbps(f->width, f->height) * v->q_pct / 100;
    pthread_mutex_unlock(&v->lock);
    if (v->enc != NULL && (v->enc_w != f->width || v->enc_h != f->height ||
                           v->enc_i444 != i444)) {
        hd_venc_free(v->enc);
        v->enc = NULL;
    }
    if (v->enc == NULL) {
        struct hd_venc_config cfg;

        hd_venc_config_default(&cfg, f->width, f->height, fps, kbps);
        cfg.i444 = i444;
        /* 4:4:4 codes twice the chroma: one speed step up keeps the CPU
         * of 4:2:0 (bench_venc 720p, 60 frames a phase, load 14: CPU
         * 6.2-7.2 ms a frame at cpu-used 8, 4.8-5.5 at 9, 4:2:0 at 8:
         * 5.0; PSNR-Y 53.5 -> 50.6 dB in the lossy frames, which the
         * lossless refinement makes exact once still) */
        if (i444 && cfg.cpu_used < 9)
            cfg.cpu_used++;
        if ((r = hd_venc_new(&cfg, &v->enc)) != 0)
            return r;
        v->enc_w = f->width;
        v->enc_h = f->height;
        v->enc_i444 = i444;
        v->enc_fps = fps;
        v->enc_kbps = kbps;
        key = 1;
        hd_info(MOD, "encoding %dx%d VP9 (%s) at up to %d fps, %d kbit/s",
                f->width, f->height, i444 ? "4:4:4" : "4:2:0", fps, kbps);
    } else if (fps != v->enc_fps || kbps != v->enc_kbps) {
        if (hd_venc_set_rate(v->enc, kbps, fps) == 0) {
            hd_debug(MOD, "rate now %d fps, %d kbit/s", fps, kbps);
            v->enc_fps = fps;
            v->enc_kbps = kbps;
        }
    }
    memset(&in, 0, sizeof(in));
    in.bgra = f->data;
    in.stride = (size_t)f->stride;
    in.pts_ms = (int64_t)((f->time_us - v->t0_us) / 1000);
    if (key || (f->flags & CAPTURE_F_RESIZED)) {
        hd_venc_request_keyframe(v->enc);
        in.rects = NULL; /* the whole picture */
    } else {
        for (int i = 0; i < f->n_rects; i++) {
            v->rects[i].x = f->rects[i].x;
            v->rects[i].y = f->rects[i].y;
            v->rects[i].w = f->rects[i].w;
            v->rects[i].h = f->rects[i].h;
        }
        in.rects = v->rects;
        in.n_rects = (size_t)f->n_rects;
    }
    hd_venc_tile_first(v->enc, atomic_load(&v->tiles));
    if ((r = hd_venc_encode(v->enc, &in, &pkt)) != 0)
        return r;
    if (pkt.tiles != NULL &&
        (r = push_tiles(v, pkt.tiles, pkt.tiles_n, pkt.pts_ms, f)) != 0)
        return r;
    if (pkt.size == 0)
        return 0;
    if ((out->data = malloc(pkt.size + pkt.release_n)) == NULL)
        return -ENOMEM;
    memcpy(out->data, pkt.data, pkt.size);
    out->len = pkt.size;
    if (pkt.release_n > 0) {
        memcpy(out->data + pkt.size, pkt.release, pkt.release_n);
        out->release = out->data + pkt.size;
        out->release_len = pkt.release_n;
    }
    out->key = pkt.key;
    out->pts = pkt.pts_ms;
    out->width = f->width;
    out->height = f->height;
    return 1;
}

static void push(struct video *v, struct video_frame *f)
{
    pthread_mutex_lock(&v->lock);
    if (v->n_queued == VIDEO_QUEUE) {
        /* the loop is behind: drop the oldest; the stream then needs a
         * key frame to stay decodable */
        free(v->queue[0].data);
        memmove(&v->queue[0], &v->queue[1],
                sizeof(v->queue[0]) * (VIDEO_QUEUE - 1));
        v->n_queued--;
        v->dropped++;
        atomic_store(&v->want_key, 1);
    }
    v->queue[v->n_queued++] = *f;
    pthread_mutex_unlock(&v->lock);
    uv_async_send(&v->async);
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = { (time_t)(us / 1000000),
                           (long)(us % 1000000) * 1000L };

    nanosleep(&ts, NULL);
}

static void sleep_ms(int ms)
{
    sleep_us((uint64_t)ms * 1000);
}

/* Refill the bucket; when no frame may go out yet, sleep until one may. */
static void pace(struct video *v, int fps)
{
    uint64_t now = capture_now_us();

    v->tokens += (double)(now - v->tokens_us) * fps / 1e6;
    if (v->tokens > VIDEO_BURST)
        v->tokens = VIDEO_BURST;
    v->tokens_us = now;
    if (v->tokens < 1) {
        sleep_us((uint64_t)((1 - v->tokens) * 1e6 / fps) + 1);
        v->tokens = 1;
        v->tokens_us = capture_now_us();
    }
}

/* Remember an area coded since the screen was last still. */
static void refine_add(struct video *v, struct capture_rect r)
{
    capture_rects_add(v->refine, &v->n_refine, v->last.width, v->last.height,
                      r);
}

/*
 * Move up to a VIDEO_REFINE_PARTS-th of the screen's pixels from the
 * areas to refine into v->refine_now (whole rectangles, the last one cut
 * by rows); returns how many rectangles.
 */
static int refine_take(struct video *v)
{
    long budget = (long)v->last.width * v->last.height / VIDEO_REFINE_PARTS + 1;
    int n = 0, i = 0;

    while (i < v->n_refine && budget > 0) {
        struct capture_rect *r = &v->refine[i];
        long px = (long)r->w * r->h;

        if (px <= budget) {
            v->refine_now[n++] = *r;
            budget -= px;
            i++;
            continue;
        }
        /* a band of whole rows (even, as the conversion aligns) */
        int rows = (int)(budget / (r->w > 0 ? r->w : 1)) & ~1;

        if (rows < 2)
            rows = 2;
        v->refine_now[n] = *r;
        v->refine_now[n++].h = rows;
        r->y += rows;
        r->h -= rows;
        break;
    }
    memmove(&v->refine[0], &v->refine[i],
            sizeof(v->refine[0]) * (size_t)(v->n_refine - i));
    v->n_refine -= i;
    return n;
}

/*
 * Refine with still tiles: every area to refine is offered to the tile
 * coder at once (a few bytes a block of text); what it refuses stays in
 * v->refine for VP9's lossless mode.  Returns how many areas are left.
 */
static int refine_tiles(struct video *v, uint64_t now)
{
    struct capture_frame all = v->last, part;
    const struct capture_frame *f = &all;
    struct capture_rect g = { 0, 0, 0, 0 };
    struct hd_venc_rect fb[CAPTURE_MAX_RECTS];
    struct video_frame out;
    size_t n_fb = 0;
    uint8_t *msg;
    size_t len;
    int r;

    all.rects = v->refine;
    all.n_rects = v->n_refine;
    if (crop(v, &all, &part) == 0) {
        f = &part;
        pthread_mutex_lock(&v->lock);
        g = v->region;
        pthread_mutex_unlock(&v->lock);
    }
    if (v->enc == NULL || v->enc_w != f->width || v->enc_h != f->height)
        return v->n_refine; /* a new encoder first (VP9) */
    for (int i = 0; i < f->n_rects; i++)
        v->rects[i] = (struct hd_venc_rect){ f->rects[i].x, f->rects[i].y,
                                             f->rects[i].w, f->rects[i].h };
    if ((r = hd_venc_tiles(v->enc, v->rects, (size_t)f->n_rects, &msg, &len, fb,
                           &n_fb, CAPTURE_MAX_RECTS)) != 0) {
        hd_error(MOD, "still tiles failed: %s", hd_strerror(r));
        return v->n_refine;
    }
    v->n_refine = 0;
    for (size_t i = 0; i < n_fb; i++)
        v->refine[v->n_refine++] =
            (struct capture_rect){ fb[i].x + g.x, fb[i].y + g.y, fb[i].w,
                                   fb[i].h };
    if (msg != NULL) {
        memset(&out, 0, sizeof(out));
        out.data = msg;
        out.len = len;
        out.tiles = 1;
        out.pts = (int64_t)((now - v->t0_us) / 1000);
        out.width = f->width;
        out.height = f->height;
        hd_debug(MOD, "frame %zu bytes (tiles), %d areas, %d left for VP9", len,
                 f->n_rects, v->n_refine);
        push(v, &out);
    }
    return v->n_refine;
}

static void *run(void *arg)
{
    struct video *v = arg;
    struct capture_frame f;
    struct video_frame out;
    int r, fps, key, stop, timeout, refining;
    uint64_t now, due;

    r = capture_open(v->o.capture, &v->o.copts, &v->cap);
    if (r == 0 && (r = capture_grab(v->cap, &f, 2000)) == 1) {
        atomic_store(&v->width, f.width);
        atomic_store(&v->height, f.height);
        v->last = f;
        v->have_last = 1;
        cursor_take(v, &f);
        r = 0;
    } else if (r == 0) {
        r = -EIO;
        hd_error(MOD, "capture gave no first frame");
    }
    pthread_mutex_lock(&v->lock);
    v->started = 1;
    v->start_error = r;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
    if (r != 0)
        return NULL;
    v->t0_us = capture_now_us();
    v->tokens = VIDEO_BURST;
    v->tokens_us = v->t0_us;
    for (;;) {
        pthread_mutex_lock(&v->lock);
        while (!v->active && !v->stop)
            pthread_cond_wait(&v->cond, &v->lock);
        stop = v->stop;
        fps = v->fps;
        pthread_mutex_unlock(&v->lock);
        if (stop)
            break;
        pace(v, fps);
        /* sleeps until damage: a static screen costs nothing (but for
         * the refinement of what changed last) */
        timeout = 1000;
        if (v->n_refine > 0 && atomic_load(&v->refine_ok)) {
            now = capture_now_us();
            due = v->changed_us + VIDEO_REFINE_DELAY_MS * 1000;
            timeout = now >= due ? 0 : (int)((due - now + 999) / 1000);
        }
        r = capture_grab(v->cap, &f, timeout);
        if (r < 0) {
            hd_error(MOD, "capture failed: %s", hd_strerror(r));
            sleep_ms(1000);
            continue;
        }
        now = capture_now_us();
        if (r == 1) {
            v->last = f;
            atomic_store(&v->width, f.width);
            atomic_store(&v->height, f.height);
            if (f.flags & CAPTURE_F_RESIZED)
                atomic_store(&v->want_key, 1);
            cursor_take(v, &f);
            /* only the pointer moved: nothing to encode */
            if (!(f.flags & (CAPTURE_F_PIXELS | CAPTURE_F_RESIZED)))
                r = 0;
        }
        key = atomic_exchange(&v->want_key, 0);
        refining = r == 0 && !key && v->n_refine > 0 &&
                   atomic_load(&v->refine_ok) &&
                   now >= v->changed_us + VIDEO_REFINE_DELAY_MS * 1000;
        if ((r == 0 && !key && !refining) || !video_has_encoder())
            continue;
        if (key) {
            /* the whole screen (a viewer joining a still desktop gets
             * it sharp too, not only what changes later) */
            f = v->last;
            f.n_rects = 0;
            v->n_refine = 0;
            refine_add(v, (struct capture_rect){ 0, 0, f.width, f.height });
            v->changed_us = now;
        } else if (r == 1) {
            /* remember what changed, to sharpen it once things are still */
            for (int i = 0; i < f.n_rects; i++)
                refine_add(v, f.rects[i]);
            v->changed_us = now;
        } else { /* still: code a part of the changed areas losslessly */
            if (atomic_load(&v->tiles) && refine_tiles(v, now) == 0) {
                v->tokens -= 1;
                continue; /* all of it went as tiles */
            }
            f = v->last;
            f.n_rects = refine_take(v);
            f.rects = v->refine_now;
        }
        if (v->enc != NULL)
            hd_venc_refine(v->enc, refining ? HD_VENC_REFINE_LOSSLESS
                                            : HD_VENC_REFINE_OFF);
        v->tokens -= 1;
        r = encode(v, &f, key, &out);
        if (r < 0) {
            if (key)
                atomic_store(&v->want_key, 1);
            hd_error(MOD, "encode failed: %s", hd_strerror(r));
            sleep_ms(1000);
            continue;
        }
        if (r == 1) {
            hd_debug(MOD, "frame %zu bytes%s%s, %d areas, %zu release", out.len,
                     out.key ? " key" : "", refining ? " (refining)" : "",
                     f.n_rects, out.release_len);
            push(v, &out);
        }
    }
    return NULL;
}

static void on_async(uv_async_t *a)
{
    struct video *v = a->data;
    struct video_frame batch[VIDEO_QUEUE];
    struct video_cursor cur;
    unsigned cur_flags;
    int n;

    pthread_mutex_lock(&v->lock);
    n = v->n_queued;
    memcpy(batch, v->queue, sizeof(batch[0]) * (size_t)n);
    v->n_queued = 0;
    cur = v->cur;
    cur_flags = v->cur_pending;
    v->cur_pending = 0;
    if (cur_flags & CAPTURE_F_CURSOR_SHAPE)
        memcpy(v->loop_argb, v->cur_argb,
               (size_t)cur.width * (size_t)cur.height * sizeof(uint32_t));
    pthread_mutex_unlock(&v->lock);
    cur.argb = v->loop_argb;
    if (cur_flags != 0)
        v->o.on_cursor(v->ud, &cur, (cur_flags & CAPTURE_F_CURSOR_SHAPE) != 0);
    for (int i = 0; i < n; i++) {
        v->cb(v->ud, &batch[i]);
        free(batch[i].data);
    }
}

static void on_async_closed(uv_handle_t *h)
{
    struct video *v = h->data;

    for (int i = 0; i < v->n_queued; i++)
        free(v->queue[i].data);
    pthread_mutex_destroy(&v->lock);
    pthread_cond_destroy(&v->cond);
    free(v);
}

/* The thread is gone (or never ran): release the rest. */
static void release(struct video *v)
{
    hd_net_close((uv_handle_t *)&v->async, on_async_closed);
}

int video_start(uv_loop_t *loop, const struct video_opts *o, video_frame_cb cb,
                void *ud, struct video **out)
{
    struct video *v;
    int r;

    *out = NULL;
    if ((v = calloc(1, sizeof(*v))) == NULL)
        return -ENOMEM;
    v->o = *o;
    v->cb = cb;
    v->ud = ud;
    v->fps = o->fps > 0 && o->fps <= VIDEO_MAX_FPS ? o->fps : VIDEO_DEFAULT_FPS;
    v->o.fps = v->fps;
    v->q_pct = 100;
    atomic_store(&v->refine_ok, 1);
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    if ((r = uv_async_init(loop, &v->async, on_async)) != 0) {
        free(v);
        return r;
    }
    v->async.data = v;
    if ((r = pthread_create(&v->thread, NULL, run, v)) != 0) {
        r = -r;
        goto fail;
    }
    pthread_mutex_lock(&v->lock);
    while (!v->started)
        pthread_cond_wait(&v->cond, &v->lock);
    r = v->start_error;
    pthread_mutex_unlock(&v->lock);
    if (r != 0) {
        pthread_join(v->thread, NULL);
        goto fail;
    }
    *out = v;
    return 0;
fail:
    capture_close(v->cap);
    v->cap = NULL;
    release(v);
    return r;
}

void video_stop(struct video *v)
{
    if (v == NULL)
        return;
    pthread_mutex_lock(&v->lock);
    v->stop = 1;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
    capture_wakeup(v->cap);
    pthread_join(v->thread, NULL);
    hd_venc_free(v->enc);
    v->enc = NULL;
    capture_close(v->cap);
    v->cap = NULL;
    release(v);
}

void video_set_active(struct video *v, int active)
{
    pthread_mutex_lock(&v->lock);
    v->active = active;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
}

void video_set_refine_ok(struct video *v, int ok)
{
    if (atomic_exchange(&v->refine_ok, ok) == ok || !ok)
        return;
    if (v->cap)
        capture_wakeup(v->cap); /* refinement may be due now */
}

void video_set_i444(struct video *v, int on)
{
    if (atomic_exchange(&v->i444, on != 0) != (on != 0))
        video_request_key(v); /* a new encoder, from a key frame */
}

void video_set_tiles(struct video *v, int on)
{
    atomic_store(&v->tiles, on != 0);
}

void video_request_key(struct video *v)
{
    atomic_store(&v->want_key, 1);
    if (v->cap)
        capture_wakeup(v->cap);
}

void video_set_rate(struct video *v, int fps, int kbps)
{
    pthread_mutex_lock(&v->lock);
    if (fps <= 0 || fps > v->o.fps)
        fps = v->o.fps > 0 ? v->o.fps : VIDEO_DEFAULT_FPS;
    v->fps = v->q_fps > 0 && fps > v->q_fps ? v->q_fps : fps;
    v->kbps = kbps;
    pthread_mutex_unlock(&v->lock);
}

void video_set_region(struct video *v, int x, int y, int w, int h)
{
    pthread_mutex_lock(&v->lock);
    v->region = (struct capture_rect){ x, y, w > 0 ? w : 0, h > 0 ? h : 0 };
    pthread_mutex_unlock(&v->lock);
    video_request_key(v);
}

void video_set_quality(struct video *v, int percent, int max_fps)
{
    pthread_mutex_lock(&v->lock);
    v->q_pct = percent < 10 ? 10 : percent > 400 ? 400 : percent;
    v->q_fps = max_fps > 0 && max_fps <= VIDEO_MAX_FPS ? max_fps : 0;
    /* from the top of the new range; TestDelay lowers it as before */
    v->fps = v->q_fps > 0 && v->q_fps < v->o.fps ? v->q_fps : v->o.fps;
    pthread_mutex_unlock(&v->lock);
}

int video_monitors(struct video *v, struct monitor *out)
{
    return v->cap != NULL ? capture_monitors(v->cap, out) : 0;
}

void video_size(struct video *v, int *width, int *height)
{
    *width = atomic_load(&v->width);
    *height = atomic_load(&v->height);
}

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
 * After the screen stops changing, the last changed areas are coded again
 * this many times (at the frame rate): the first pass of new text is
 * coarse at a screen-sharing bitrate, and with no further damage nothing
 * would ever sharpen it.  Bounded, so a static screen still goes quiet.
 */
#define VIDEO_REFINE_FRAMES 6

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
    uint64_t dropped;
    /* any thread */
    atomic_int want_key;
    atomic_int width, height;
    /* capture thread only */
    struct capture_frame last;
    int have_last;
    uint64_t t0_us;
    struct hd_venc *enc;
    int enc_w, enc_h, enc_fps, enc_kbps;
    struct hd_venc_rect rects[CAPTURE_MAX_RECTS];
    /* areas changed since the screen was last still, to refine */
    struct capture_rect refine[CAPTURE_MAX_RECTS];
    int n_refine, refine_left;
};

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
static int encode(struct video *v, const struct capture_frame *f, int key,
                  struct video_frame *out)
{
    struct hd_venc_input in;
    struct hd_venc_packet pkt;
    int r, fps, kbps;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&v->lock);
    fps = v->fps;
    kbps = v->kbps;
    pthread_mutex_unlock(&v->lock);
    if (kbps <= 0)
        kbps = default_kbps(f->width, f->height);
    if (v->enc != NULL && (v->enc_w != f->width || v->enc_h != f->height)) {
        hd_venc_free(v->enc);
        v->enc = NULL;
    }
    if (v->enc == NULL) {
        struct hd_venc_config cfg;

        hd_venc_config_default(&cfg, f->width, f->height, fps, kbps);
        if ((r = hd_venc_new(&cfg, &v->enc)) != 0)
            return r;
        v->enc_w = f->width;
        v->enc_h = f->height;
        v->enc_fps = fps;
        v->enc_kbps = kbps;
        key = 1;
        hd_info(MOD, "encoding %dx%d VP9 at up to %d fps, %d kbit/s", f->width,
                f->height, fps, kbps);
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
    if ((r = hd_venc_encode(v->enc, &in, &pkt)) != 0)
        return r;
    if (pkt.size == 0)
        return 0;
    if ((out->data = malloc(pkt.size)) == NULL)
        return -ENOMEM;
    memcpy(out->data, pkt.data, pkt.size);
    out->len = pkt.size;
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

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void *run(void *arg)
{
    struct video *v = arg;
    struct capture_frame f;
    struct video_frame out;
    int r, fps, key, active, stop;
    uint64_t start;

    r = capture_open(v->o.capture, &v->o.copts, &v->cap);
    if (r == 0 && (r = capture_grab(v->cap, &f, 2000)) == 1) {
        atomic_store(&v->width, f.width);
        atomic_store(&v->height, f.height);
        v->last = f;
        v->have_last = 1;
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
    for (;;) {
        pthread_mutex_lock(&v->lock);
        while (!v->active && !v->stop)
            pthread_cond_wait(&v->cond, &v->lock);
        stop = v->stop;
        fps = v->fps;
        active = v->active;
        pthread_mutex_unlock(&v->lock);
        if (stop)
            break;
        (void)active;
        start = capture_now_us();
        /* sleeps until damage: a static screen costs nothing (but for a
         * few refinement frames); pacing is the sleep after each frame */
        r = capture_grab(v->cap, &f, v->refine_left > 0 ? 1000 / fps : 1000);
        if (r < 0) {
            hd_error(MOD, "capture failed: %s", hd_strerror(r));
            sleep_ms(1000);
            continue;
        }
        if (r == 1) {
            v->last = f;
            atomic_store(&v->width, f.width);
            atomic_store(&v->height, f.height);
            if (f.flags & CAPTURE_F_RESIZED)
                atomic_store(&v->want_key, 1);
        }
        key = atomic_exchange(&v->want_key, 0);
        if ((r == 0 && !key && v->refine_left == 0) || !video_has_encoder())
            continue;
        if (r == 1) {
            /* remember what changed, to sharpen it once things are still */
            for (int i = 0; i < f.n_rects; i++)
                capture_rects_add(v->refine, &v->n_refine, f.width, f.height,
                                  f.rects[i]);
            v->refine_left = VIDEO_REFINE_FRAMES;
        } else if (key) { /* a key frame of the unchanged screen */
            f = v->last;
            f.n_rects = 0;
        } else { /* still: code the recently changed areas once more */
            f = v->last;
            f.rects = v->refine;
            f.n_rects = v->n_refine;
            if (--v->refine_left == 0)
                v->n_refine = 0;
        }
        /* finer quantizer while refining, the normal range otherwise */
        if (v->enc != NULL)
            hd_venc_refine(v->enc, r == 0 && !key);
        r = encode(v, &f, key, &out);
        if (r < 0) {
            if (key)
                atomic_store(&v->want_key, 1);
            hd_error(MOD, "encode failed: %s", hd_strerror(r));
            sleep_ms(1000);
            continue;
        }
        if (r == 1)
            push(v, &out);
        /* pace: at most fps frames per second */
        {
            uint64_t spent = (capture_now_us() - start) / 1000;
            if (spent < (uint64_t)(1000 / fps))
                sleep_ms((int)(1000 / fps - spent));
        }
    }
    return NULL;
}

static void on_async(uv_async_t *a)
{
    struct video *v = a->data;
    struct video_frame batch[VIDEO_QUEUE];
    int n;

    pthread_mutex_lock(&v->lock);
    n = v->n_queued;
    memcpy(batch, v->queue, sizeof(batch[0]) * (size_t)n);
    v->n_queued = 0;
    pthread_mutex_unlock(&v->lock);
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
    v->fps = fps;
    v->kbps = kbps;
    pthread_mutex_unlock(&v->lock);
}

void video_size(struct video *v, int *width, int *height)
{
    *width = atomic_load(&v->width);
    *height = atomic_load(&v->height);
}

/*
 * VP9 decoding (common/vdec.h, libvpx) on its own thread, fed by a
 * bounded queue.  See decode.h.
 *
 * The picture shown (last) is the VP9 picture with the still tiles drawn
 * over it: owned marks the 16x16 blocks drawn from tiles, which VP9
 * pictures leave alone until the host releases them (a VP9 frame's
 * hd_release list, common/tiles.h); a key frame or a new size releases
 * all.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/decode.h"
#include "err.h"
#include "log.h"
#include "tiles.h"
#include "vdec.h"

#define KEY_REQUEST_GAP_US 500000

struct dec_item {
    uint8_t *data;
    size_t n;
    uint64_t pts;
    int tiles;          /* a still tiles message, not VP9 */
    const uint8_t *rel; /* VP9: its release list (in data's allocation) */
    size_t rel_n;
};

struct dec {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct dec_item q[DEC_QUEUE_MAX];
    int head, count;
    int stop;
    int need_key;         /* skipping until a key frame */
    int want_key;         /* decoder asked for a key frame */
    uint64_t last_req_us; /* last key frame request reported */
    dec_picture_cb cb;
    void *ud;
    struct hd_vdec *vdec;
    struct dec_stats st;
    struct pic *last; /* decode thread: the picture handed over last */
    uint8_t *owned;   /* decode thread: blocks of last drawn from tiles */
    long blocks;      /* ... how many blocks last has */
};

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void drop_queue(struct dec *d)
{
    while (d->count > 0) {
        free(d->q[d->head].data);
        d->head = (d->head + 1) % DEC_QUEUE_MAX;
        d->count--;
        d->st.dropped++;
    }
}

/* A copy of the decoder's picture that we own. */
static struct pic *copy_picture(const struct hd_vdec_picture *img)
{
    struct pic *p;
    int pl, y, w, h;

    if ((p = pic_new(img->width, img->height, img->cs)) == NULL)
        return NULL;
    for (pl = 0; pl < 3; pl++) {
        w = pl ? (p->w + p->cs) >> p->cs : p->w;
        h = pl ? (p->h + p->cs) >> p->cs : p->h;
        for (y = 0; y < h; y++)
            memcpy(p->plane[pl] + (size_t)y * p->stride[pl],
                   img->planes[pl] + (size_t)y * img->stride[pl], (size_t)w);
    }
    return p;
}

/* A copy of picture s (planes, size; not its dirty area). */
static struct pic *clone_pic(const struct pic *s)
{
    struct hd_vdec_picture v = { .width = s->w, .height = s->h, .cs = s->cs };

    for (int pl = 0; pl < 3; pl++) {
        v.planes[pl] = s->plane[pl];
        v.stride[pl] = s->stride[pl];
    }
    return copy_picture(&v);
}

/* Plane pl's samples of block (bx, by): x0, y0, w, h. */
static void block_box(const struct pic *p, int pl, int bx, int by, int *x0,
                      int *y0, int *w, int *h)
{
    int sh = pl ? p->cs : 0, pw = (p->w + sh) >> sh, ph = (p->h + sh) >> sh;

    *x0 = (bx * 16) >> sh;
    *y0 = (by * 16) >> sh;
    *w = ((bx * 16 + 16) >> sh) < pw ? 16 >> sh : pw - *x0;
    *h = ((by * 16 + 16) >> sh) < ph ? 16 >> sh : ph - *y0;
}

/* Bring block (bx, by) of the picture shown up to img; 1 when it
 * changed. */
static int block_take(struct dec *d, const struct hd_vdec_picture *img, int bx,
                      int by)
{
    struct pic *l = d->last;
    int x0, y0, w, h, changed = 0;

    for (int pl = 0; pl < 3; pl++) {
        block_box(l, pl, bx, by, &x0, &y0, &w, &h);
        for (int y = y0; y < y0 + h; y++) {
            uint8_t *dst = l->plane[pl] + (size_t)y * l->stride[pl] + x0;
            const uint8_t *src =
                img->planes[pl] + (size_t)y * img->stride[pl] + x0;

            if (memcmp(dst, src, (size_t)w) != 0) {
                memcpy(dst, src, (size_t)w);
                changed = 1;
            }
        }
    }
    return changed;
}

/*
 * The picture to show after VP9 picture img with release list rel: the
 * blocks not drawn from tiles brought up to img; the whole of img for a
 * key frame or a new size.  NULL: no memory.
 */
static struct pic *compose(struct dec *d, const struct hd_vdec_picture *img,
                           const uint8_t *rel, size_t rel_n)
{
    struct pic_rect dirty = { 0, 0, 0, 0 };
    struct pic *p;
    int cols = (img->width + 15) / 16, rows = (img->height + 15) / 16;

    if (img->key || d->last == NULL || d->owned == NULL ||
        d->last->w != img->width || d->last->h != img->height ||
        d->last->cs != img->cs) {
        if ((p = copy_picture(img)) == NULL)
            return NULL;
        pic_diff(&d->last, p); /* what the window must redraw */
        free(d->owned);
        d->blocks = (long)cols * rows;
        d->owned = calloc((size_t)d->blocks, 1); /* NULL: whole again */
        return p;
    }
    if (rel_n > 0)
        hd_tiles_release(rel, rel_n, d->blocks, d->owned); /* logs */
    for (int by = 0; by < rows; by++)
        for (int bx = 0; bx < cols; bx++) {
            struct pic_rect b = { bx * 16, by * 16, 16, 16 };

            if (d->owned[(size_t)by * cols + bx] || !block_take(d, img, bx, by))
                continue;
            if (b.x + b.w > img->width)
                b.w = img->width - b.x;
            if (b.y + b.h > img->height)
                b.h = img->height - b.y;
            pic_rect_union(&dirty, &b);
        }
    if ((p = clone_pic(d->last)) != NULL)
        p->dirty = dirty;
    return p;
}

/* Draw a still tiles message over the picture shown, hand it over. */
static void tiles_one(struct dec *d, struct dec_item *it)
{
    struct hd_tiles_pic tp;
    struct hd_tiles_rect dr;
    struct pic *p = NULL;
    int r;

    if (d->last == NULL || d->owned == NULL) {
        hd_warn("decode", "still tiles before any picture: ignored");
        return;
    }
    for (int pl = 0; pl < 3; pl++) {
        tp.plane[pl] = d->last->plane[pl];
        tp.stride[pl] = d->last->stride[pl];
    }
    tp.w = d->last->w;
    tp.h = d->last->h;
    tp.cs = d->last->cs;
    /* logs what is wrong */
    r = hd_tiles_decode(it->data, it->n, &tp, &dr, d->owned);
    if (dr.w > 0 && (p = clone_pic(d->last)) != NULL) {
        p->dirty = (struct pic_rect){ dr.x, dr.y, dr.w, dr.h };
        p->pts = it->pts;
    }
    pthread_mutex_lock(&d->mu);
    if (r != 0)
        d->st.errors++;
    pthread_mutex_unlock(&d->mu);
    if (p != NULL)
        d->cb(p, d->ud);
}

static void decode_one(struct dec *d, struct dec_item *it)
{
    struct hd_vdec_picture img;
    uint64_t t0 = now_us(), dt;
    struct pic *p = NULL;
    int r;

    if ((r = hd_vdec_decode(d->vdec, it->data, it->n, &img)) != 0) {
        /* vdec logged the reason */
        pthread_mutex_lock(&d->mu);
        d->st.errors++;
        d->need_key = 1;
        d->want_key = 1;
        pthread_mutex_unlock(&d->mu);
        return;
    }
    if (img.width > 0)
        p = compose(d, &img, it->rel, it->rel_n);
    dt = now_us() - t0;
    pthread_mutex_lock(&d->mu);
    if (p != NULL) {
        d->st.decoded++;
        /* exponential mean, weight 1/8 per frame */
        d->st.decode_ms = d->st.decoded == 1
                              ? dt / 1000.0
                              : d->st.decode_ms * 0.875 + dt / 8000.0;
    }
    pthread_mutex_unlock(&d->mu);
    if (p != NULL) {
        p->pts = it->pts;
        p->decode_us = dt;
        d->cb(p, d->ud);
    }
}

static void *dec_main(void *arg)
{
    struct dec *d = arg;
    struct dec_item it;

    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->stop && d->count == 0)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->stop)
            break;
        it = d->q[d->head];
        d->head = (d->head + 1) % DEC_QUEUE_MAX;
        d->count--;
        pthread_mutex_unlock(&d->mu);
        if (it.tiles)
            tiles_one(d, &it);
        else
            decode_one(d, &it);
        free(it.data);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

int dec_new(dec_picture_cb cb, void *ud, struct dec **out)
{
    struct dec *d;
    int r;

    *out = NULL;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return -ENOMEM;
    d->cb = cb;
    d->ud = ud;
    d->need_key = 1; /* nothing decodes before the first key frame */
    if ((r = hd_vdec_new(2, &d->vdec)) != 0) {
        hd_error("decode", "cannot start the VP9 decoder: %s", hd_strerror(r));
        free(d);
        return r;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (pthread_create(&d->thread, NULL, dec_main, d) != 0) {
        hd_vdec_free(d->vdec);
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->cv);
        free(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

void dec_abilities(Hbb__SupportedDecoding *sd, Hbb__CodecAbility *i444)
{
    sd->ability_vp9 = 1;
    sd->prefer = HBB__SUPPORTED_DECODING__PREFER_CODEC__VP9;
    i444->vp9 = 1;
    sd->i444 = i444;
    sd->prefer_chroma = HBB__CHROMA__I444;
    sd->hd_tiles = 1; /* version 1 (common/tiles.h) */
}

/* Under d->mu: report a key frame request unless one went out lately. */
static int key_request(struct dec *d)
{
    uint64_t now = now_us();

    if (d->last_req_us != 0 && now - d->last_req_us < KEY_REQUEST_GAP_US)
        return 0;
    d->last_req_us = now;
    d->want_key = 0;
    return 1;
}

/* Under d->mu: queue a copy of data (it->n bytes) and of rel (it->rel_n)
 * as *it.  0 or -ENOMEM. */
static int enqueue(struct dec *d, struct dec_item *it, const uint8_t *data,
                   const uint8_t *rel)
{
    if ((it->data = malloc(it->n + it->rel_n + 1)) == NULL)
        return -ENOMEM;
    memcpy(it->data, data, it->n);
    if (it->rel_n > 0) {
        memcpy(it->data + it->n, rel, it->rel_n);
        it->rel = it->data + it->n;
    }
    d->q[(d->head + d->count) % DEC_QUEUE_MAX] = *it;
    d->count++;
    pthread_cond_signal(&d->cv);
    return 0;
}

int dec_push(struct dec *d, const uint8_t *data, size_t n, int key,
             uint64_t pts, const uint8_t *rel, size_t rel_n)
{
    struct dec_item it = { .n = n, .pts = pts, .rel_n = rel_n };
    int r = 0;

    if (n > DEC_FRAME_MAX || rel_n > DEC_FRAME_MAX)
        return HD_ETOOBIG;
    pthread_mutex_lock(&d->mu);
    d->st.pushed++;
    if (key) {
        d->need_key = 0;
        d->want_key = 0;
        /* answered: a loss after it is asked about at once (a request
         * held back by the gap would never go out on a still screen,
         * where no frame comes to retry it) */
        d->last_req_us = 0;
        if (d->count == DEC_QUEUE_MAX)
            drop_queue(d); /* the key frame replaces them all */
    } else if (d->count == DEC_QUEUE_MAX) {
        drop_queue(d);
        d->need_key = 1;
    }
    if (d->need_key && !key) {
        d->st.dropped++;
        r = key_request(d);
        goto out;
    }
    if (d->want_key)
        r = key_request(d);
    r = enqueue(d, &it, data, rel) != 0 ? -ENOMEM : r;
out:
    pthread_mutex_unlock(&d->mu);
    return r;
}

int dec_push_tiles(struct dec *d, const uint8_t *data, size_t n)
{
    struct dec_item it = { .n = n, .tiles = 1 };
    int r = 0;

    if (n > DEC_FRAME_MAX)
        return HD_ETOOBIG;
    pthread_mutex_lock(&d->mu);
    if (d->count == DEC_QUEUE_MAX) {
        drop_queue(d);
        d->need_key = 1;
    }
    if (d->need_key) { /* no picture to draw them on yet */
        d->st.dropped++;
        r = key_request(d);
        goto out;
    }
    r = enqueue(d, &it, data, NULL);
out:
    pthread_mutex_unlock(&d->mu);
    return r;
}

void dec_get_stats(struct dec *d, struct dec_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->st;
    pthread_mutex_unlock(&d->mu);
}

void dec_free(struct dec *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    drop_queue(d);
    hd_vdec_free(d->vdec);
    pic_free(d->last);
    free(d->owned);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

/*
 * VP9 decoding (common/vdec.h, libvpx) on its own thread, fed by a
 * bounded queue.  See decode.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/decode.h"
#include "err.h"
#include "log.h"
#include "vdec.h"

#define KEY_REQUEST_GAP_US 500000

struct dec_item {
    uint8_t *data;
    size_t n;
    uint64_t pts;
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
    if (img.width > 0 && (p = copy_picture(&img)) != NULL)
        pic_diff(&d->last, p); /* what the window must redraw */
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

int dec_push(struct dec *d, const uint8_t *data, size_t n, int key,
             uint64_t pts)
{
    struct dec_item it = { .n = n, .pts = pts };
    int r = 0;

    if (n > DEC_FRAME_MAX)
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
    if ((it.data = malloc(n ? n : 1)) == NULL) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(it.data, data, n);
    d->q[(d->head + d->count) % DEC_QUEUE_MAX] = it;
    d->count++;
    pthread_cond_signal(&d->cv);
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
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

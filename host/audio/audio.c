/*
 * The audio framework: backend PCM -> Opus -> the loop thread.  See
 * audio.h.  Shared between the two threads under a->lock: the queue,
 * active, stop.  The struct is freed in the uv_async close callback,
 * after the thread has been joined.  Threads, locks and clocks are
 * libuv's, so this file builds wherever libuv does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opus.h>

#include "host/audio/audio.h"
#include "log.h"
#include "net.h"

#define MOD "audio"

/* A frame whose samples all stay within this is digital silence. */
#define SILENCE 2

static const struct audio_driver *const drivers[] = {
#ifdef _WIN32
    &audio_driver_wasapi,
#else
    &audio_driver_pulse,
#endif
    &audio_driver_fake,
};
#define N_DRIVERS (sizeof(drivers) / sizeof(drivers[0]))

static const char *const names[N_DRIVERS + 1] = {
#ifndef _WIN32
    "pulse",
#endif
    "fake", NULL
};

const char *const *audio_list(void)
{
    return names;
}

struct packet {
    uint8_t data[AUDIO_MAX_PACKET];
    size_t n;
};

struct audio {
    uv_async_t async;
    uv_thread_t thread;
    int thread_ok;
    uv_mutex_t lock;
    uv_cond_t cond;
    audio_frame_cb cb;
    void *ud;
    const struct audio_driver *want; /* NULL: auto */
    char *source;
    /* under lock */
    struct packet queue[AUDIO_QUEUE];
    int head, n_queued, active, stop;
    uint64_t dropped;
    /* the thread's */
    const struct audio_driver *drv; /* the open stream's (NULL: none) */
    void *priv;
    OpusEncoder *enc;
    int silent_run; /* silent frames in a row */
    uint64_t sent, failed_at_ms;
    int warned;
};

/* Milliseconds on libuv's monotonic clock (any thread). */
static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void push(struct audio *a, const uint8_t *d, size_t n)
{
    struct packet *p;

    uv_mutex_lock(&a->lock);
    if (a->n_queued == AUDIO_QUEUE) { /* the loop is behind: oldest goes */
        a->head = (a->head + 1) % AUDIO_QUEUE;
        a->n_queued--;
        a->dropped++;
    }
    p = &a->queue[(a->head + a->n_queued) % AUDIO_QUEUE];
    memcpy(p->data, d, n);
    p->n = n;
    a->n_queued++;
    uv_mutex_unlock(&a->lock);
    uv_async_send(&a->async);
}

static const char *source_name(const struct audio *a,
                               const struct audio_driver *d)
{
    return a->source ? a->source : d->default_source;
}

/* Open d's stream: 0, or negative with the reason in why. */
static int open_driver(struct audio *a, const struct audio_driver *d, char *why,
                       size_t why_n)
{
    int r;

    if (d->priv_size > 0 && (a->priv = calloc(1, d->priv_size)) == NULL) {
        snprintf(why, why_n, "out of memory");
        return -ENOMEM;
    }
    if ((r = d->open(a->priv, a->source, why, why_n)) != 0) {
        free(a->priv);
        a->priv = NULL;
        return r;
    }
    a->drv = d;
    return 0;
}

/* The wanted backend, or the first that opens. */
static int open_any(struct audio *a, const struct audio_driver **tried,
                    char *why, size_t why_n)
{
    int r = -ENOENT;

    if (a->want != NULL) {
        *tried = a->want;
        return open_driver(a, a->want, why, why_n);
    }
    for (size_t i = 0; i < N_DRIVERS; i++) {
        if (drivers[i] == &audio_driver_fake)
            continue;
        *tried = drivers[i];
        if ((r = open_driver(a, drivers[i], why, why_n)) == 0)
            break;
    }
    return r;
}

static void close_stream(struct audio *a)
{
    if (a->drv == NULL)
        return;
    a->drv->close(a->priv);
    a->drv = NULL;
    free(a->priv);
    a->priv = NULL;
    hd_info(MOD, "capture stopped (%llu frames sent)",
            (unsigned long long)a->sent);
}

/* Open the stream and the encoder; 0, or -1 (logged once per streak). */
static int open_stream(struct audio *a)
{
    const struct audio_driver *d = drivers[0];
    char why[256] = "";
    int err = 0;

    if (open_any(a, &d, why, sizeof(why)) != 0) {
        if (!a->warned)
            hd_warn(MOD,
                    "no sound from %s: %s (audio off; retrying every "
                    "%d s while a viewer wants it)",
                    source_name(a, d), why, AUDIO_RETRY_MS / 1000);
        a->warned = 1;
        a->failed_at_ms = now_ms();
        return -1;
    }
    if (a->enc == NULL) {
        a->enc =
            opus_encoder_create(AUDIO_RATE, AUDIO_CHANNELS,
                                OPUS_APPLICATION_RESTRICTED_LOWDELAY, &err);
        if (a->enc == NULL) {
            hd_error(MOD, "opus: %s", opus_strerror(err));
            close_stream(a);
            a->failed_at_ms = now_ms();
            return -1;
        }
        opus_encoder_ctl(a->enc, OPUS_SET_BITRATE(AUDIO_BITRATE));
    }
    a->warned = 0;
    a->failed_at_ms = 0;
    a->silent_run = AUDIO_TAIL_FRAMES; /* nothing sent until sound */
    hd_info(MOD, "capturing %s (%s; Opus %d Hz stereo, %d ms frames)",
            source_name(a, a->drv), a->drv->name, AUDIO_RATE, AUDIO_FRAME_MS);
    return 0;
}

static int is_silent(const int16_t *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] > SILENCE || s[i] < -SILENCE)
            return 0;
    return 1;
}

/* Read, code and pass on one frame. */
static int one_frame(struct audio *a)
{
    int16_t pcm[AUDIO_FRAME * AUDIO_CHANNELS];
    uint8_t out[AUDIO_MAX_PACKET];
    int n;

    if (a->drv->read(a->priv, pcm) != 0)
        return -1;
    if (is_silent(pcm, AUDIO_FRAME * AUDIO_CHANNELS)) {
        if (a->silent_run >= AUDIO_TAIL_FRAMES)
            return 0;
        a->silent_run++;
    } else {
        a->silent_run = 0;
    }
    n = opus_encode(a->enc, pcm, AUDIO_FRAME, out, sizeof(out));
    if (n < 0) {
        hd_warn(MOD, "opus: %s", opus_strerror(n));
        return -1;
    }
    if (n > 1) { /* 1 byte: nothing to play (DTX) */
        push(a, out, (size_t)n);
        a->sent++;
    }
    return 0;
}

static void run(void *arg)
{
    struct audio *a = arg;
    int stop;

    for (;;) {
        uv_mutex_lock(&a->lock);
        while (!a->stop && !a->active) {
            if (a->drv != NULL) { /* nobody listens: let the stream go */
                uv_mutex_unlock(&a->lock);
                close_stream(a);
                uv_mutex_lock(&a->lock);
                continue;
            }
            uv_cond_wait(&a->cond, &a->lock);
        }
        stop = a->stop;
        if (!stop && a->drv == NULL && a->failed_at_ms != 0 &&
            now_ms() - a->failed_at_ms < AUDIO_RETRY_MS) {
            /* until the next attempt (a timeout is not an error) */
            (void)uv_cond_timedwait(&a->cond, &a->lock, 250 * 1000000ull);
            uv_mutex_unlock(&a->lock);
            continue;
        }
        uv_mutex_unlock(&a->lock);
        if (stop)
            break;
        if (a->drv == NULL && open_stream(a) != 0)
            continue;
        if (one_frame(a) != 0) {
            close_stream(a);
            a->failed_at_ms = now_ms();
        }
    }
    close_stream(a);
}

static void on_async(uv_async_t *h)
{
    struct audio *a = h->data;
    struct packet batch[AUDIO_QUEUE];
    int n, i;

    uv_mutex_lock(&a->lock);
    n = a->n_queued;
    for (i = 0; i < n; i++)
        batch[i] = a->queue[(a->head + i) % AUDIO_QUEUE];
    a->head = (a->head + n) % AUDIO_QUEUE;
    a->n_queued = 0;
    uv_mutex_unlock(&a->lock);
    for (i = 0; i < n; i++)
        a->cb(a->ud, batch[i].data, batch[i].n);
}

static void free_all(struct audio *a)
{
    if (a->enc != NULL)
        opus_encoder_destroy(a->enc);
    uv_mutex_destroy(&a->lock);
    uv_cond_destroy(&a->cond);
    free(a->source);
    free(a);
}

static void on_async_closed(uv_handle_t *h)
{
    free_all(h->data);
}

/* The driver called name (NULL for auto), or -ENOENT after a log line. */
static int find_driver(const char *name, const struct audio_driver **out)
{
    *out = NULL;
    if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0)
        return 0;
    for (size_t i = 0; i < N_DRIVERS; i++) {
        if (strcmp(name, drivers[i]->name) == 0) {
            *out = drivers[i];
            return 0;
        }
    }
    hd_error(MOD, "unknown audio backend '%s' (try %s, fake)", name,
             drivers[0]->name);
    return -ENOENT;
}

int audio_probe(const char *name, const char *source, char *why, size_t why_n)
{
    struct audio a = { .source = (char *)source }; /* only read here */
    const struct audio_driver *tried = NULL;
    int16_t pcm[AUDIO_FRAME * AUDIO_CHANNELS];
    int r;

    snprintf(why, why_n, "no backend");
    if ((r = find_driver(name, &a.want)) != 0)
        return r;
    if ((r = open_any(&a, &tried, why, why_n)) != 0)
        return r;
    if ((r = a.drv->read(a.priv, pcm)) != 0)
        snprintf(why, why_n, "%s: opened, but reading failed", a.drv->name);
    else
        snprintf(why, why_n, "%s: read a frame of %s", a.drv->name,
                 source_name(&a, a.drv));
    a.drv->close(a.priv);
    free(a.priv);
    return r;
}

int audio_start(uv_loop_t *loop, const char *name, const char *source,
                audio_frame_cb cb, void *ud, struct audio **out)
{
    struct audio *a;
    int r;

    *out = NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return -ENOMEM;
    a->cb = cb;
    a->ud = ud;
    if ((r = find_driver(name, &a->want)) != 0) {
        free(a);
        return r;
    }
    if (source != NULL && (a->source = strdup(source)) == NULL) {
        free(a);
        return -ENOMEM;
    }
    uv_mutex_init(&a->lock);
    uv_cond_init(&a->cond);
    if ((r = uv_async_init(loop, &a->async, on_async)) != 0) {
        free_all(a);
        return r;
    }
    a->async.data = a;
    if ((r = uv_thread_create(&a->thread, run, a)) != 0) {
        hd_net_close((uv_handle_t *)&a->async, on_async_closed);
        return r;
    }
    a->thread_ok = 1;
    *out = a;
    return 0;
}

void audio_stop(struct audio *a)
{
    if (a == NULL)
        return;
    uv_mutex_lock(&a->lock);
    a->stop = 1;
    uv_cond_broadcast(&a->cond);
    uv_mutex_unlock(&a->lock);
    if (a->thread_ok)
        uv_thread_join(&a->thread);
    hd_net_close((uv_handle_t *)&a->async, on_async_closed);
}

void audio_set_active(struct audio *a, int active)
{
    if (a == NULL)
        return;
    uv_mutex_lock(&a->lock);
    a->active = active;
    uv_cond_broadcast(&a->cond);
    uv_mutex_unlock(&a->lock);
}

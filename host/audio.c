/*
 * Desktop audio: sound server monitor -> Opus.  See audio.h.  Shared
 * between the two threads under a->lock: the queue, active, stop.  The
 * struct is freed in the uv_async close callback, after the thread has
 * been joined.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opus.h>
#include <pulse/error.h>
#include <pulse/simple.h>

#include "host/audio.h"
#include "log.h"
#include "net.h"

#define MOD "audio"

/* A frame whose samples all stay within this is digital silence. */
#define SILENCE 2

struct packet {
    uint8_t data[AUDIO_MAX_PACKET];
    size_t n;
};

struct audio {
    uv_async_t async;
    pthread_t thread;
    int thread_ok;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    audio_frame_cb cb;
    void *ud;
    char *source;
    /* under lock */
    struct packet queue[AUDIO_QUEUE];
    int head, n_queued, active, stop;
    uint64_t dropped;
    /* the thread's */
    pa_simple *pa;
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

    pthread_mutex_lock(&a->lock);
    if (a->n_queued == AUDIO_QUEUE) { /* the loop is behind: oldest goes */
        a->head = (a->head + 1) % AUDIO_QUEUE;
        a->n_queued--;
        a->dropped++;
    }
    p = &a->queue[(a->head + a->n_queued) % AUDIO_QUEUE];
    memcpy(p->data, d, n);
    p->n = n;
    a->n_queued++;
    pthread_mutex_unlock(&a->lock);
    uv_async_send(&a->async);
}

/* Open the stream and the encoder; 0, or -1 (logged once per streak). */
static int open_stream(struct audio *a)
{
    pa_sample_spec ss = { PA_SAMPLE_S16LE, AUDIO_RATE, AUDIO_CHANNELS };
    pa_buffer_attr ba;
    int err = 0;

    memset(&ba, 0xff, sizeof(ba)); /* (uint32_t)-1: the server's choice */
    ba.fragsize = AUDIO_FRAME * AUDIO_CHANNELS * 2;
    a->pa = pa_simple_new(NULL, "homedesk-host", PA_STREAM_RECORD,
                          a->source ? a->source : "@DEFAULT_MONITOR@",
                          "desktop audio for viewers", &ss, NULL, &ba, &err);
    if (a->pa == NULL) {
        if (!a->warned)
            hd_warn(MOD,
                    "no sound from %s: %s (audio off; retrying every "
                    "%d s while a viewer wants it)",
                    a->source ? a->source : "the default sink's monitor",
                    pa_strerror(err), AUDIO_RETRY_MS / 1000);
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
            pa_simple_free(a->pa);
            a->pa = NULL;
            a->failed_at_ms = now_ms();
            return -1;
        }
        opus_encoder_ctl(a->enc, OPUS_SET_BITRATE(AUDIO_BITRATE));
    }
    a->warned = 0;
    a->failed_at_ms = 0;
    a->silent_run = AUDIO_TAIL_FRAMES; /* nothing sent until sound */
    hd_info(MOD, "capturing %s (Opus %d Hz stereo, %d ms frames)",
            a->source ? a->source : "the default sink's monitor", AUDIO_RATE,
            AUDIO_FRAME_MS);
    return 0;
}

static void close_stream(struct audio *a)
{
    if (a->pa == NULL)
        return;
    pa_simple_free(a->pa);
    a->pa = NULL;
    hd_info(MOD, "capture stopped (%llu frames sent)",
            (unsigned long long)a->sent);
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
    int err = 0, n;

    if (pa_simple_read(a->pa, pcm, sizeof(pcm), &err) < 0) {
        hd_warn(MOD, "reading sound: %s", pa_strerror(err));
        return -1;
    }
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

/* Wait on the condition for at most ms (lock held). */
static void wait_ms(struct audio *a, int ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&a->cond, &a->lock, &ts);
}

static void *run(void *arg)
{
    struct audio *a = arg;
    int stop;

    for (;;) {
        pthread_mutex_lock(&a->lock);
        while (!a->stop && !a->active) {
            if (a->pa != NULL) { /* nobody listens: let the stream go */
                pthread_mutex_unlock(&a->lock);
                close_stream(a);
                pthread_mutex_lock(&a->lock);
                continue;
            }
            pthread_cond_wait(&a->cond, &a->lock);
        }
        stop = a->stop;
        if (!stop && a->pa == NULL && a->failed_at_ms != 0 &&
            now_ms() - a->failed_at_ms < AUDIO_RETRY_MS) {
            wait_ms(a, 250); /* until the next attempt */
            pthread_mutex_unlock(&a->lock);
            continue;
        }
        pthread_mutex_unlock(&a->lock);
        if (stop)
            break;
        if (a->pa == NULL && open_stream(a) != 0)
            continue;
        if (one_frame(a) != 0) {
            close_stream(a);
            a->failed_at_ms = now_ms();
        }
    }
    close_stream(a);
    return NULL;
}

static void on_async(uv_async_t *h)
{
    struct audio *a = h->data;
    struct packet batch[AUDIO_QUEUE];
    int n, i;

    pthread_mutex_lock(&a->lock);
    n = a->n_queued;
    for (i = 0; i < n; i++)
        batch[i] = a->queue[(a->head + i) % AUDIO_QUEUE];
    a->head = (a->head + n) % AUDIO_QUEUE;
    a->n_queued = 0;
    pthread_mutex_unlock(&a->lock);
    for (i = 0; i < n; i++)
        a->cb(a->ud, batch[i].data, batch[i].n);
}

static void on_async_closed(uv_handle_t *h)
{
    struct audio *a = h->data;

    if (a->enc != NULL)
        opus_encoder_destroy(a->enc);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a->source);
    free(a);
}

int audio_start(uv_loop_t *loop, const char *source, audio_frame_cb cb,
                void *ud, struct audio **out)
{
    struct audio *a;
    int r;

    *out = NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return -ENOMEM;
    a->cb = cb;
    a->ud = ud;
    if (source != NULL && (a->source = strdup(source)) == NULL) {
        free(a);
        return -ENOMEM;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    if ((r = uv_async_init(loop, &a->async, on_async)) != 0) {
        pthread_mutex_destroy(&a->lock);
        pthread_cond_destroy(&a->cond);
        free(a->source);
        free(a);
        return r;
    }
    a->async.data = a;
    if ((r = pthread_create(&a->thread, NULL, run, a)) != 0) {
        hd_net_close((uv_handle_t *)&a->async, on_async_closed);
        return -r;
    }
    a->thread_ok = 1;
    *out = a;
    return 0;
}

void audio_stop(struct audio *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (a->thread_ok)
        pthread_join(a->thread, NULL);
    hd_net_close((uv_handle_t *)&a->async, on_async_closed);
}

void audio_set_active(struct audio *a, int active)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->active = active;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

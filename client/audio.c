/*
 * Opus -> SDL audio queue.  See audio.h.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>
#include <opus.h>

#include "client/audio.h"
#include "log.h"

#define MOD "audio"

/* The longest Opus frame: 120 ms. */
#define MAX_FRAME (VAUDIO_RATE * 120 / 1000)
#define BYTES_MS  (VAUDIO_RATE * VAUDIO_CHANNELS * 2 / 1000)

struct vaudio {
    SDL_AudioDeviceID dev;
    OpusDecoder *dec;
    int playing;
    uint64_t played, bad, cut, cut_ms;
};

/* ALSA's own error printer (a dozen "ALSA lib ..." lines on stderr when
 * there is no sound card) replaced by one that keeps quiet: our single
 * line says it.  ALSA is loaded here first so that SDL, which dlopens it
 * too, gets the same copy; without ALSA there is nothing to quiet. */
static void alsa_quiet_handler(const char *file, int line, const char *fn,
                               int err, const char *fmt, ...)
{
}

static void alsa_quiet(void)
{
    typedef void (*handler_fn)(const char *, int, const char *, int,
                               const char *, ...);
    static void *lib;
    int (*set)(handler_fn);

    if (lib == NULL && (lib = dlopen("libasound.so.2", RTLD_NOW)) == NULL)
        return;
    *(void **)&set = dlsym(lib, "snd_lib_error_set_handler");
    if (set != NULL)
        set(alsa_quiet_handler);
}

static void no_output(const char *why)
{
    hd_warn(MOD,
            "no sound output (%s): the host's sound stays off (--no-audio "
            "says so without trying)",
            why && why[0] ? why : "no device");
}

int vaudio_open(struct vaudio **out)
{
    struct vaudio *a;
    SDL_AudioSpec want, have;
    int err;

    *out = NULL;
    alsa_quiet();
    if (SDL_InitSubSystem(SDL_INIT_AUDIO) != 0) {
        no_output(SDL_GetError());
        return -1;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL)
        goto fail;
    a->dec = opus_decoder_create(VAUDIO_RATE, VAUDIO_CHANNELS, &err);
    if (a->dec == NULL) {
        hd_warn(MOD, "opus: %s", opus_strerror(err));
        goto fail;
    }
    SDL_zero(want);
    want.freq = VAUDIO_RATE;
    want.format = AUDIO_S16SYS;
    want.channels = VAUDIO_CHANNELS;
    want.samples = 512; /* ~11 ms per device buffer */
    a->dev = SDL_OpenAudioDevice(NULL, 0, &want, &have, 0);
    if (a->dev == 0) {
        no_output(SDL_GetError());
        goto fail;
    }
    hd_info(MOD, "playing on %s", SDL_GetCurrentAudioDriver());
    *out = a;
    return 0;
fail:
    if (a != NULL && a->dec != NULL)
        opus_decoder_destroy(a->dec);
    free(a);
    SDL_QuitSubSystem(SDL_INIT_AUDIO);
    return -1;
}

void vaudio_play(struct vaudio *a, const uint8_t *opus, size_t n)
{
    int16_t pcm[MAX_FRAME * VAUDIO_CHANNELS];
    Uint32 queued;
    int got;

    if (a == NULL || n == 0 || n > 4000)
        return;
    got = opus_decode(a->dec, opus, (opus_int32)n, pcm, MAX_FRAME, 0);
    if (got < 0) {
        if (a->bad++ < 5)
            hd_warn(MOD, "a sound frame of %zu bytes does not decode: %s", n,
                    opus_strerror(got));
        return;
    }
    queued = SDL_GetQueuedAudioSize(a->dev);
    if (queued == 0 && a->playing) {
        /* ran dry (the host sends nothing while its desktop is silent):
         * build up AUDIO_START_MS again before playing, or the jitter of
         * the first frames after a pause would make gaps */
        SDL_PauseAudioDevice(a->dev, 1);
        a->playing = 0;
    }
    if (queued > AUDIO_MAX_MS * BYTES_MS) {
        /* behind: drop what waits rather than play it late */
        SDL_ClearQueuedAudio(a->dev);
        a->cut++;
        a->cut_ms += queued / BYTES_MS;
        queued = 0;
    }
    if (SDL_QueueAudio(a->dev, pcm,
                       (Uint32)got * VAUDIO_CHANNELS * sizeof(int16_t)) != 0)
        return;
    a->played++;
    if (!a->playing && queued + (Uint32)got * VAUDIO_CHANNELS * 2 >=
                           AUDIO_START_MS * BYTES_MS) {
        SDL_PauseAudioDevice(a->dev, 0);
        a->playing = 1;
    }
}

void vaudio_counts(struct vaudio *a, uint64_t *played, uint64_t *bad)
{
    *played = a ? a->played : 0;
    *bad = a ? a->bad : 0;
}

void vaudio_close(struct vaudio *a)
{
    if (a == NULL)
        return;
    SDL_CloseAudioDevice(a->dev);
    opus_decoder_destroy(a->dec);
    if (a->played > 0 || a->bad > 0)
        hd_info(MOD,
                "%llu sound frames played, %llu did not decode, queue "
                "cut %llu times (%llu ms dropped)",
                (unsigned long long)a->played, (unsigned long long)a->bad,
                (unsigned long long)a->cut, (unsigned long long)a->cut_ms);
    free(a);
    SDL_QuitSubSystem(SDL_INIT_AUDIO);
}

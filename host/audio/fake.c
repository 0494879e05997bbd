/*
 * The fake audio backend, for unit tests: a 440 Hz tone at half scale,
 * paced in real time (one frame per AUDIO_FRAME_MS), for as many frames
 * as the source names (NULL: without end), then digital silence.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "host/audio/audio.h"

struct fake {
    long tone_frames; /* <0: without end */
    long frame;       /* frames read so far */
    uint64_t next_ms; /* when the next frame is due */
};

static int fake_open(void *priv, const char *source, char *why, size_t why_n)
{
    struct fake *f = priv;
    char *end;

    f->tone_frames = -1;
    if (source != NULL) {
        f->tone_frames = strtol(source, &end, 10);
        if (end == source || *end != '\0' || f->tone_frames < 0) {
            snprintf(why, why_n, "fake source '%s' is not a frame count",
                     source);
            return -EINVAL;
        }
    }
    f->next_ms = uv_hrtime() / 1000000;
    return 0;
}

static int fake_read(void *priv, int16_t *pcm)
{
    struct fake *f = priv;
    uint64_t now = uv_hrtime() / 1000000;
    int tone = f->tone_frames < 0 || f->frame < f->tone_frames;

    if (f->next_ms > now)
        uv_sleep((unsigned)(f->next_ms - now));
    f->next_ms += AUDIO_FRAME_MS;
    for (int i = 0; i < AUDIO_FRAME; i++) {
        long t = f->frame * AUDIO_FRAME + i;
        int16_t v = 0;

        if (tone)
            v = (int16_t)(16384 * sin(2 * M_PI * 440 * t / AUDIO_RATE));
        for (int ch = 0; ch < AUDIO_CHANNELS; ch++)
            pcm[i * AUDIO_CHANNELS + ch] = v;
    }
    f->frame++;
    return 0;
}

static void fake_close(void *priv)
{
}

const struct audio_driver audio_driver_fake = {
    .name = "fake",
    .description = "a 440 Hz tone, then silence (unit tests)",
    .priv_size = sizeof(struct fake),
    .default_source = "the fake tone",
    .open = fake_open,
    .read = fake_read,
    .close = fake_close,
};

/*
 * The pulse audio backend: the sound server's monitor source through
 * libpulse-simple (PulseAudio, or PipeWire's pulse server).  See audio.h.
 * pa_simple_read blocks until a whole frame is there, which is the pacing
 * the audio thread wants.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <pulse/error.h>
#include <pulse/simple.h>

#include "host/audio/audio.h"
#include "log.h"

#define MOD "audio"

struct pulse {
    pa_simple *pa;
};

static int pulse_open(void *priv, const char *source, char *why, size_t why_n)
{
    struct pulse *p = priv;
    pa_sample_spec ss = { PA_SAMPLE_S16NE, AUDIO_RATE, AUDIO_CHANNELS };
    pa_buffer_attr ba;
    int err = 0;

    memset(&ba, 0xff, sizeof(ba)); /* (uint32_t)-1: the server's choice */
    ba.fragsize = AUDIO_FRAME * AUDIO_CHANNELS * 2;
    p->pa = pa_simple_new(NULL, "homedesk-host", PA_STREAM_RECORD,
                          source ? source : "@DEFAULT_MONITOR@",
                          "desktop audio for viewers", &ss, NULL, &ba, &err);
    if (p->pa == NULL) {
        snprintf(why, why_n, "%s", pa_strerror(err));
        return -ENODEV;
    }
    return 0;
}

static int pulse_read(void *priv, int16_t *pcm)
{
    struct pulse *p = priv;
    int err = 0;

    if (pa_simple_read(p->pa, pcm, AUDIO_FRAME * AUDIO_CHANNELS * 2, &err) <
        0) {
        hd_warn(MOD, "reading sound: %s", pa_strerror(err));
        return -EIO;
    }
    return 0;
}

static void pulse_close(void *priv)
{
    struct pulse *p = priv;

    pa_simple_free(p->pa);
    p->pa = NULL;
}

const struct audio_driver audio_driver_pulse = {
    .name = "pulse",
    .description = "PulseAudio / PipeWire-pulse monitor source",
    .priv_size = sizeof(struct pulse),
    .default_source = "the default sink's monitor",
    .open = pulse_open,
    .read = pulse_read,
    .close = pulse_close,
};

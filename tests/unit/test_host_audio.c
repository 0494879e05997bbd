/*
 * Unit tests for the audio framework (host/audio/) with its fake backend
 * (a 440 Hz tone for N frames, then silence, in real time): nothing is
 * read until a viewer wants sound, every tone frame arrives on the loop
 * thread as Opus that decodes to the tone, silence is sent for
 * AUDIO_TAIL_FRAMES frames and then no more, and names pick backends (an
 * unknown one is refused).  The pulse backend runs against a real sound
 * server in tests/e2e/e2e_audio.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <opus.h>
#include <uv.h>

#include "host/audio/audio.h"
#include "tests/harness.h"

#define TONE_FRAMES 20
#define T_MS        5000

static struct {
    int n;
    int peak_first; /* largest sample of the first frame, decoded */
    OpusDecoder *dec;
} got;

static void on_frame(void *ud, const uint8_t *opus, size_t n)
{
    int16_t pcm[AUDIO_FRAME * AUDIO_CHANNELS];
    int k;

    if (got.n++ == 0 && got.dec != NULL) {
        k = opus_decode(got.dec, opus, (int)n, pcm, AUDIO_FRAME, 0);
        for (int i = 0; i < k * AUDIO_CHANNELS; i++)
            if (abs(pcm[i]) > got.peak_first)
                got.peak_first = abs(pcm[i]);
    }
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Run the loop until `want` frames came, or for ms when want is 0. */
static void run_until(uv_loop_t *loop, int want, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;

    /* a 20 ms timer on the loop bounds each wait */
    while ((want == 0 || got.n < want) && now_ms() < end)
        uv_run(loop, UV_RUN_ONCE);
}

static void on_tick(uv_timer_t *t)
{
}

static void test_tone_then_silence(void)
{
    uv_loop_t loop;
    uv_timer_t tick;
    struct audio *a = NULL;
    char frames[16];
    int err;

    memset(&got, 0, sizeof(got));
    got.dec = opus_decoder_create(AUDIO_RATE, AUDIO_CHANNELS, &err);
    HT_CHECK(got.dec != NULL);
    HT_EQ_INT(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 20);
    snprintf(frames, sizeof(frames), "%d", TONE_FRAMES);
    HT_EQ_INT(audio_start(&loop, "fake", frames, on_frame, NULL, &a), 0);
    if (a == NULL)
        return;

    /* no viewer wants sound: nothing is read */
    run_until(&loop, 0, 100);
    HT_EQ_INT(got.n, 0);

    audio_set_active(a, 1);
    run_until(&loop, TONE_FRAMES + AUDIO_TAIL_FRAMES, T_MS);
    HT_EQ_INT(got.n, TONE_FRAMES + AUDIO_TAIL_FRAMES);
    HT_CHECK(got.peak_first > 4000); /* the tone is at 16384 */
    /* silence goes on being read (10 frames more) and is not sent */
    run_until(&loop, 0, 10 * AUDIO_FRAME_MS);
    HT_EQ_INT(got.n, TONE_FRAMES + AUDIO_TAIL_FRAMES);

    audio_set_active(a, 0);
    audio_stop(a);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    HT_EQ_INT(uv_loop_close(&loop), 0);
    opus_decoder_destroy(got.dec);
}

static void test_names(void)
{
    uv_loop_t loop;
    struct audio *a = (struct audio *)&loop;

    HT_EQ_STR(audio_list()[0], "pulse");
    HT_EQ_INT(uv_loop_init(&loop), 0);
    HT_EQ_INT(audio_start(&loop, "nope", NULL, on_frame, NULL, &a), -ENOENT);
    HT_CHECK(a == NULL);
    audio_stop(NULL);
    HT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    ht_init("host_audio");
    HT_RUN(test_tone_then_silence);
    HT_RUN(test_names);
    return ht_finish();
}

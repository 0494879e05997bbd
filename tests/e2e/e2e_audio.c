/*
 * End-to-end desktop sound (run by tests/e2e/test_audio.sh): a private
 * PulseAudio whose default output is a null sink, homedesk-host sharing
 * display A and that sink's monitor, homedesk-viewer in a window on
 * display B playing through SDL's "disk" audio driver (every sample it
 * plays goes to a file, in real time).  Cases:
 *  - a 1 kHz tone played on the host's desktop (pacat) is heard by the
 *    viewer: the file holds about as much tone as was played, and at 1 kHz
 *    (Goertzel: 1 kHz far above 500 Hz, 1.5 kHz and 3 kHz);
 *  - silence costs nothing: the host stops sending a few frames after
 *    the sound ends (its count of audio frames for the session stays
 *    near the tone's length though the session lasts longer);
 *  - a viewer started with --no-audio gets no sound frames at all.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "tests/e2e/desk.h"
#include "tests/e2e/tone.h"
#include "tests/harness.h"

#define PASSWORD "e2e-audio-Pa55"

static char tmpdir[256], pulse[512], tone[300];
static struct srv srv;
static struct desk_screen A, B;
static struct desk_host host;
static struct desk_viewer viewer;
static pid_t pulse_pid = -1;
static int up;
static int tone_heard_ms = -1;

/* The audio frames the host sent to the session that ended last. */
static long last_audio_sent(void)
{
    char buf[65536], *p, *last = NULL;
    long n = -1;

    desk_slurp(host.log, buf, sizeof(buf));
    for (p = buf; (p = strstr(p, " audio frames sent")) != NULL; p++)
        last = p;
    if (last != NULL) {
        while (last > buf && last[-1] >= '0' && last[-1] <= '9')
            last--;
        n = atol(last);
    }
    return n;
}

static int start_viewer(struct desk_viewer *v, const char *name,
                        const char *const *extra)
{
    char file[400];

    snprintf(file, sizeof(file), "%s/%s.raw", tmpdir, name);
    setenv("SDL_AUDIODRIVER", "disk", 1);
    setenv("SDL_DISKAUDIOFILE", file, 1);
    if (desk_viewer_start(v, tmpdir, name, &srv, &B, PASSWORD, host.id,
                          extra) != 0 ||
        !file_has(v->err, "first frame shown", 20000)) {
        desk_viewer_dump(v);
        return -1;
    }
    return 0;
}

static void set_up(void)
{
    snprintf(tone, sizeof(tone), "%s/tone.raw", tmpdir);
    up = tone_write(tone) == 0 && srv_start(&srv, NULL, NULL) == 0 &&
         desk_screen_open(&A) == 0 && desk_screen_open(&B) == 0 &&
         (pulse_pid = desk_pulse_start(tmpdir, pulse, sizeof(pulse))) > 0;
    if (up) {
        setenv("PULSE_SERVER", pulse, 1);
        up = desk_host_start(&host, tmpdir, &srv, &A, PASSWORD, NULL) == 0 &&
             start_viewer(&viewer, "viewer", NULL) == 0;
    }
    HT_CHECK(up);
    if (!up)
        desk_dump("host log", host.log);
}

/* A tone on the host's desktop is heard by the viewer, at its pitch. */
static void tone_is_heard(void)
{
    char file[400];
    struct tone_heard h;

    HT_CHECK(file_has(host.log, "capturing", 5000));
    HT_EQ_INT(tone_play(pulse, tone), 0);
    usleep(700000); /* the last frames through the network and the device */
    snprintf(file, sizeof(file), "%s/viewer.raw", tmpdir);
    HT_EQ_INT(tone_listen(file, &h), 0);
    printf("# viewer played %d ms of the %d ms tone; loudest 10 ms: RMS %.0f "
           "(tone %.0f), 1 kHz %.1f dB above the other probes (median)\n",
           h.loud_ms, TONE_MS, h.rms, TONE_AMP / 1.414, h.ratio_db);
    /* no more than was played; "about all of it" once the viewer has
     * said what it dropped on purpose (silence_costs_nothing) */
    tone_heard_ms = h.loud_ms;
    HT_CHECK(h.loud_ms <= TONE_MS * 12 / 10);
    HT_CHECK(h.rms > TONE_AMP / 1.414 / 2);
    HT_CHECK(h.ratio_db >= 30);
}

/* After the tone the desktop is silent: the host sends nothing more. */
static void silence_costs_nothing(void)
{
    long sent;

    long dropped;

    usleep(1500000); /* silence, while the session goes on */
    desk_viewer_stop(&viewer);
    /* The tone was heard whole, but for what the viewer dropped on
     * purpose when a busy machine let its queue grow past AUDIO_MAX_MS. */
    dropped = desk_viewer_dropped_ms(&viewer);
    printf("# the viewer dropped %ld ms of late sound; heard %d ms\n", dropped,
           tone_heard_ms);
    HT_CHECK(dropped >= 0 && tone_heard_ms >= 0);
    HT_CHECK(tone_heard_ms + dropped >= TONE_MS * 8 / 10);
    HT_CHECK(file_has(host.log, "audio frames sent", 5000));
    sent = last_audio_sent();
    printf("# audio frames the host sent in the session: %ld (tone %d)\n", sent,
           TONE_MS / 10);
    HT_CHECK(sent >= TONE_MS / 10 * 8 / 10);
    HT_CHECK(sent <= TONE_MS / 10 + 30);
}

/* A viewer that asks for no sound gets none. */
static void no_audio_viewer(void)
{
    const char *extra[] = { "--no-audio", NULL };
    struct desk_viewer v;
    char before[65536], after[65536];

    desk_slurp(host.log, before, sizeof(before));
    HT_EQ_INT(start_viewer(&v, "quiet", extra), 0);
    HT_EQ_INT(tone_play(pulse, tone), 0);
    desk_viewer_stop(&v);
    HT_CHECK(file_has(host.log, "audio frames sent", 5000));
    usleep(200000);
    desk_slurp(host.log, after, sizeof(after));
    HT_CHECK(strlen(after) > strlen(before));
    HT_EQ_INT((int)last_audio_sent(), 0);
    /* and the host did not even open the sound server for it */
    HT_CHECK(strstr(after + strlen(before), "capturing") == NULL);
}

int main(void)
{
    ht_init("e2e-audio");
    signal(SIGPIPE, SIG_IGN);
    hd_crypto_init();
    if (!xvfb_have("Xvfb") || !xvfb_have("pulseaudio") || !xvfb_have("pacat")) {
        ht_skip("all", "Xvfb, pulseaudio or pacat missing");
        return ht_finish();
    }
    if (desk_tmp_make(tmpdir, sizeof(tmpdir), "e2e-audio") != 0)
        return 1;
    HT_RUN(set_up);
    if (up) {
        HT_RUN(tone_is_heard);
        HT_RUN(silence_costs_nothing);
        HT_RUN(no_audio_viewer);
    }
    if (ht_failures() > 0 || getenv("HD_TEST_VERBOSE")) {
        desk_dump("host log", host.log);
        desk_viewer_dump(&viewer);
    }
    if (viewer.pid > 0)
        desk_viewer_stop(&viewer);
    desk_host_stop(&host);
    if (pulse_pid > 0)
        desk_stop(pulse_pid, 2000);
    desk_screen_close(&A);
    desk_screen_close(&B);
    srv_cleanup(&srv);
    desk_tmp_done(tmpdir);
    return ht_finish();
}

/*
 * Desktop audio (DESIGN.md section 3): what the desktop plays, taken from
 * the sound server's monitor source (PulseAudio, or PipeWire's pulse
 * server) and coded as Opus, 48 kHz stereo in 10 ms frames
 * (PROTOCOL.md: Misc.audio_format, then AudioFrame).
 *
 * A thread of its own reads the source only while a viewer that wants
 * audio is logged in (audio_set_active); otherwise it holds no stream and
 * sleeps.  Digital silence is not sent: after AUDIO_TAIL_FRAMES silent
 * frames the thread stops passing frames on until sound comes back (a
 * quiet desktop costs no bandwidth).  Frames go to the loop thread through
 * a bounded queue (AUDIO_QUEUE; when the loop is behind, the oldest
 * frame is dropped) and uv_async, which calls on_frame for each.
 *
 * No sound server: one log line when a viewer first wants audio, a new
 * attempt every AUDIO_RETRY_MS while one still does; video goes on.
 *
 * Threads: audio_start, audio_stop and on_frame on the loop thread;
 * audio_set_active from any thread.
 */
#ifndef HD_HOST_AUDIO_H
#define HD_HOST_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define AUDIO_RATE        48000
#define AUDIO_CHANNELS    2
#define AUDIO_FRAME_MS    10
#define AUDIO_FRAME       (AUDIO_RATE * AUDIO_FRAME_MS / 1000) /* samples */
#define AUDIO_BITRATE     96000
#define AUDIO_MAX_PACKET  1500
#define AUDIO_QUEUE       32 /* 320 ms */
#define AUDIO_TAIL_FRAMES 5  /* silent frames still sent after sound */
#define AUDIO_RETRY_MS    5000

struct audio;

typedef void (*audio_frame_cb)(void *ud, const uint8_t *opus, size_t n);

/*
 * Start the thread (it opens nothing until audio_set_active).  source:
 * the sound server's source name, NULL for the default sink's monitor.
 * Returns 0 and *out, or a negative errno.
 */
int audio_start(uv_loop_t *loop, const char *source, audio_frame_cb cb,
                void *ud, struct audio **out);

/* Stop the thread and free everything (loop thread).  Accepts NULL. */
void audio_stop(struct audio *a);

/* 1 while some logged-in viewer wants audio. */
void audio_set_active(struct audio *a, int active);

#endif

/*
 * Desktop audio (DESIGN.md section 3): what the desktop plays, read by a
 * backend ("pulse": the sound server's monitor source, PulseAudio or
 * PipeWire's pulse server; "fake") and coded here as Opus, 48 kHz stereo
 * in 10 ms frames (PROTOCOL.md: Misc.audio_format, then AudioFrame).
 *
 * Backends are a table of function pointers (struct audio_driver, as
 * mpv's struct vo_driver), listed in audio.c in order of preference
 * ("auto" opens the first that opens, each time a stream is needed;
 * "fake" is for unit tests and never picked automatically); the framework
 * allocates each backend's private state (priv_size bytes, zeroed) and
 * frees it after close.  A backend only delivers PCM: the thread, the
 * encoder, silence, the queue and the retries are the framework's, so a
 * Windows backend (win32.c: WASAPI loopback) is one more file here and
 * one more line in the table.
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
 * audio_set_active from any thread; a backend's functions on the audio
 * thread only.
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

struct audio_driver {
    const char *name;
    const char *description;
    /* Bytes of private state (priv below) allocated zeroed before each
     * open, freed after close or a failed open. */
    size_t priv_size;
    /* What a NULL source means, for log lines ("the default sink's
     * monitor"). */
    const char *default_source;
    /*
     * Open a stream of what the desktop plays: AUDIO_RATE Hz,
     * AUDIO_CHANNELS channels, signed 16-bit native-endian samples
     * interleaved.  source: the backend's name for a source (NULL: its
     * default_source).  Returns 0, or a negative code with the reason in
     * why[why_n] (not logged: the framework logs once per streak of
     * failures).  On failure open has released all it acquired.
     */
    int (*open)(void *priv, const char *source, char *why, size_t why_n);
    /*
     * Wait for the next AUDIO_FRAME samples per channel and store them in
     * pcm (AUDIO_FRAME * AUDIO_CHANNELS values).  Returns 0, or a negative
     * code after one log line (the framework then closes the stream and
     * retries after AUDIO_RETRY_MS).
     */
    int (*read)(void *priv, int16_t *pcm);
    /* Release everything open acquired.  Once, after a good open. */
    void (*close)(void *priv);
};

struct audio;

typedef void (*audio_frame_cb)(void *ud, const uint8_t *opus, size_t n);

/*
 * Start the thread (it opens nothing until audio_set_active).  name: the
 * backend ("pulse", "fake"; NULL or "auto": the first in order of
 * preference that opens).  source: the backend's source name, NULL for
 * its default (fake: the number of 10 ms frames of tone before silence;
 * NULL: tone without end).  Returns 0 and *out, -ENOENT for an unknown
 * name (logged), or a negative errno.
 */
int audio_start(uv_loop_t *loop, const char *name, const char *source,
                audio_frame_cb cb, void *ud, struct audio **out);

/* Stop the thread and free everything (loop thread).  Accepts NULL. */
void audio_stop(struct audio *a);

/*
 * Open the backend (name as for audio_start) on source, read one frame
 * and close it, for --selftest: 0 with what was read in why (or the
 * reason it failed, and a negative code).  Any thread but the audio
 * thread's while one runs.
 */
int audio_probe(const char *name, const char *source, char *why, size_t why_n);

/* 1 while some logged-in viewer wants audio. */
void audio_set_active(struct audio *a, int active);

/* Backend names in order of preference, NULL-terminated. */
const char *const *audio_list(void);

extern const struct audio_driver audio_driver_pulse;
extern const struct audio_driver audio_driver_wasapi;
extern const struct audio_driver audio_driver_fake;

#endif

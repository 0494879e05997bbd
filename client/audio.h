/*
 * The host's sound, played (DESIGN.md section 4): Opus frames from the
 * session decoded to 48 kHz stereo and queued on an SDL audio device.
 *
 * Latency stays low: playback starts once AUDIO_START_MS are queued (a
 * little room for jitter), and when more than AUDIO_MAX_MS pile up (the
 * device is slower than the host, or the network delivered a burst) the
 * queue is cut back instead of playing late.  A frame that does not
 * decode is one log line (at most a few) and is skipped.
 *
 * Threads: vaudio_open and vaudio_close on the main thread (SDL),
 * vaudio_play from the session thread.
 */
#ifndef VIEW_AUDIO_H
#define VIEW_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#define VAUDIO_RATE     48000
#define VAUDIO_CHANNELS 2
#define AUDIO_START_MS  30
#define AUDIO_MAX_MS    150

struct vaudio;

/* Open the default output.  Returns 0 and *out, or -1 (logged). */
int vaudio_open(struct vaudio **out);

/* Decode one Opus frame and queue it. */
void vaudio_play(struct vaudio *a, const uint8_t *opus, size_t n);

/* Frames played and frames that did not decode, so far. */
void vaudio_counts(struct vaudio *a, uint64_t *played, uint64_t *bad);

/* Close the device and free.  Accepts NULL. */
void vaudio_close(struct vaudio *a);

#endif

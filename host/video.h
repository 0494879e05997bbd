/*
 * The capture+encode thread (DESIGN.md section 3) and its hand-off to the
 * loop thread.  The thread owns the struct capture and the encoder: it
 * sleeps while no viewer is logged in (video_set_active), otherwise waits
 * for damage and encodes what changed at once (a key frame when asked;
 * only sustained change is paced to the frame rate; once the screen is
 * still, what changed is coded again losslessly), and puts the encoded
 * frame in a bounded queue
 * (VIDEO_QUEUE frames; when full, the oldest is dropped and a key frame
 * is forced so the stream stays decodable: newest wins), then wakes the
 * loop with uv_async_send.  The loop calls on_frame for each queued frame,
 * in order.  The pointer (position, and its shape when that changed) is
 * handed over the same way to on_cursor, newest only; a frame that moved
 * only the pointer is not encoded (viewers draw the pointer themselves).  A
 * static screen costs nothing: grab sleeps until damage, no frame is encoded or
 * sent.
 *
 * Without an encoder built in (video_has_encoder() == 0) the thread still
 * captures (so PeerInfo knows the screen) but produces no frames.
 *
 * Threads: video_start/video_stop and on_frame run on the loop thread;
 * video_set_active, video_request_key, video_set_rate, video_size and
 * video_monitors may
 * be called from any thread.
 */
#ifndef HD_HOST_VIDEO_H
#define HD_HOST_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "host/capture/capture.h"

#define VIDEO_QUEUE       3
#define VIDEO_DEFAULT_FPS 30
#define VIDEO_MAX_FPS     60

struct video_frame {
    uint8_t *data;
    size_t len;
    int key;
    int64_t pts; /* milliseconds since the stream started */
    int width, height;
    int tiles; /* 1: data is a still tiles message (common/tiles.h, sent
                * as VideoFrame.hd_tiles), not VP9 */
    const uint8_t *release; /* VP9: EncodedVideoFrame.hd_release (inside
                             * data's allocation), or NULL */
    size_t release_len;
};

/* The pointer as captured: position on the screen, and its shape. */
struct video_cursor {
    int x, y;
    int hot_x, hot_y, width, height; /* width 0: no shape known */
    uint32_t serial;                 /* changes with the shape */
    const uint32_t *argb;            /* width * height premultiplied ARGB */
};

typedef void (*video_frame_cb)(void *ud, const struct video_frame *f);
/* shape: 1 when the shape changed since the last call (else only the
 * position).  c and its pixels are valid during the call only. */
typedef void (*video_cursor_cb)(void *ud, const struct video_cursor *c,
                                int shape);

struct video_opts {
    const char *capture; /* backend name */
    struct capture_opts copts;
    int fps;
    video_cursor_cb on_cursor; /* or NULL; called with the frame's ud */
};

struct video;

/*
 * Start the thread, which opens the capture; waits for that to succeed
 * or fail.  Returns 0 and *out, or the capture's error (logged).
 */
int video_start(uv_loop_t *loop, const struct video_opts *o, video_frame_cb cb,
                void *ud, struct video **out);

/* Stop the thread and free everything (loop thread).  Accepts NULL. */
void video_stop(struct video *v);

/* 1 when frames are produced: a logged-in viewer wants video. */
void video_set_active(struct video *v, int active);

/* 1 while every viewer can take a frame now: refinement frames (not
 * urgent) wait for it.  Any thread. */
void video_set_refine_ok(struct video *v, int ok);

/*
 * 1 while every viewer decodes and prefers 4:4:4 chroma (VP9 profile 1:
 * coloured text stays sharp); 0 for 4:2:0 (profile 0), what RustDesk's
 * clients decode unless they ask for "true colour".  A change restarts
 * the stream with a key frame.  Any thread.
 */
void video_set_i444(struct video *v, int on);

/*
 * 1 while every viewer decodes still tiles (SupportedDecoding.hd_tiles):
 * still areas are then refined with tiles where they fit (text, flat
 * areas: a few bytes a block) and with VP9's lossless mode elsewhere.
 * Tiles frames already queued when it goes to 0 are the caller's to
 * hold back from viewers without it.  Any thread.
 */
void video_set_tiles(struct video *v, int on);

/* Make the next frame a key frame (whole screen). */
void video_request_key(struct video *v);

/* Adapt: frames per second (1..VIDEO_MAX_FPS) and kbit/s (0 = auto). */
void video_set_rate(struct video *v, int fps, int kbps);

/*
 * Encode only the part x, y, w x h of the screen (one monitor; w or h 0:
 * the whole screen, as at start); a key frame follows.  A region that
 * does not fit the screen counts as the whole screen.
 */
void video_set_region(struct video *v, int x, int y, int w, int h);

/*
 * The viewer's quality preset: the automatic bitrate scaled by percent
 * (100 = the default), frames per second at most max_fps (0: --fps).
 * video_set_rate's later changes stay within it.
 */
void video_set_quality(struct video *v, int percent, int max_fps);

/*
 * The monitors the capture backend lists (wlr: the outputs) into
 * out[MONITORS_MAX]: how many, 0 when it lists none.  Any thread.
 */
int video_monitors(struct video *v, struct monitor *out);

/* The screen size as last captured. */
void video_size(struct video *v, int *width, int *height);

/* 1 when this build encodes VP9. */
int video_has_encoder(void);

#endif

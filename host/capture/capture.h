/*
 * Screen capture: the first stage of the host pipeline (DESIGN.md section
 * 3).  A backend ("x11", "wlr", "pipewire", "dxgi", "gdi", "fake")
 * delivers the screen as one persistent BGRA frame plus what changed
 * since the previous grab: the damaged rectangles (the encoder converts
 * only those rows to I420 and feeds them
 * to VP9's active map), the cursor position and shape, a timestamp.
 *
 * Backends are a table of function pointers (struct capture_driver, as
 * mpv's struct vo_driver), listed in capture.c in order of preference; the
 * framework allocates each backend's private state (priv_size bytes,
 * zeroed) and frees it after close.
 *
 * Invariants:
 * - The frame buffer always holds the whole current screen: pixels outside
 *   the damaged rectangles are those of the previous frame, unchanged.
 * - A static screen costs nothing: grab() sleeps in poll() until the
 *   display reports damage (XDamage), a cursor change, the timeout, or
 *   capture_wakeup(); it then returns 0 without copying a pixel.
 * - Damaged rectangles lie inside the frame, never overlap, and are at
 *   most CAPTURE_MAX_RECTS (more are merged into their bounding box).
 *
 * Threads: a struct capture belongs to the capture thread (capture and
 * encode share it, DESIGN.md section 3): capture_open, capture_grab,
 * capture_close and the stats are called from that thread only.
 * capture_wakeup() and capture_refresh() may be called from any thread.
 */
#ifndef HD_HOST_CAPTURE_H
#define HD_HOST_CAPTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "host/monitors.h"
#include "os.h"

#define CAPTURE_MAX_RECTS 64
/* Largest screen accepted (each side), and largest cursor image kept. */
#define CAPTURE_MAX_SIDE   16384
#define CAPTURE_CURSOR_MAX 256
#define CAPTURE_WHY_MAX    256

struct capture;

struct capture_opts {
    const char *display; /* X display ":N"; NULL or "" = $DISPLAY */
    int no_shm;          /* x11: 1 = plain GetImage even if MIT-SHM works */
    /* x11: how often the pointer position is polled (X reports shape
     * changes, not motion); 0 = CAPTURE_CURSOR_POLL_MS, <0 = never. */
    int cursor_poll_ms;
    /* fake: screen size (0 = 640x360), time between changes (0 = a new
     * frame on every grab), frames that change before the screen stays
     * static (0 = no limit). */
    int width, height;
    int fake_interval_ms;
    int fake_frames;
};
#define CAPTURE_CURSOR_POLL_MS 50

struct capture_rect {
    int x, y, w, h;
};

/* Frame flags: what this frame changes compared with the previous one. */
enum {
    CAPTURE_F_PIXELS = 1 << 0,       /* rects[] lists changed pixels */
    CAPTURE_F_CURSOR_MOVED = 1 << 1, /* cursor.x/y changed */
    CAPTURE_F_CURSOR_SHAPE = 1 << 2, /* cursor image changed */
    CAPTURE_F_RESIZED = 1 << 3       /* new size; rects cover everything */
};

struct capture_cursor {
    int x, y;             /* pointer position on the screen */
    int hot_x, hot_y;     /* hotspot inside the image */
    int width, height;    /* image size, at most CAPTURE_CURSOR_MAX */
    uint32_t serial;      /* changes with the shape (XFixes serial) */
    const uint32_t *argb; /* width*height premultiplied ARGB, or NULL */
};

/*
 * One grabbed frame.  Everything it points to is owned by the capture and
 * stays valid and unchanged until the next capture_grab() or
 * capture_close() on the same struct capture.
 */
struct capture_frame {
    const uint8_t *data; /* BGRA (B at the lowest address), alpha undefined */
    int stride;          /* bytes per row, >= width * 4 */
    int width, height;
    unsigned flags; /* CAPTURE_F_* */
    int n_rects;    /* damaged rectangles since the previous frame */
    const struct capture_rect *rects;
    struct capture_cursor cursor;
    uint64_t time_us; /* CLOCK_MONOTONIC when the pixels were read */
    uint64_t seq;     /* 1 for the first frame, +1 per frame returned */
};

/* Counters kept by every backend (read on the capture thread). */
struct capture_stats {
    uint64_t frames;       /* grabs that returned a frame */
    uint64_t idle;         /* grabs that returned 0 (no change) */
    uint64_t reads;        /* image reads issued to the display */
    uint64_t bytes_copied; /* pixel bytes read into the frame */
};

struct capture_driver {
    const char *name;
    const char *description;
    /* Bytes of private state allocated (zeroed) into cap->priv before
     * open and freed after close. */
    size_t priv_size;
    /*
     * Connect, learn the screen, allocate the frame.  Returns 0 or a
     * negative code (-ENODEV: display unreachable or a required extension
     * missing, -ENOMEM, ...) after one log line, or with the reason
     * written into cap->why instead: the framework logs that, as the
     * reason it falls back to the next backend when picking one (auto).
     * On failure open has released all it acquired; close is not called.
     */
    int (*open)(struct capture *cap, const struct capture_opts *opts);
    /*
     * Wait up to timeout_ms (0 = do not wait, <0 = no limit) for a change
     * and fill *out.  Returns 1 with a frame (the first grab after open
     * returns the whole screen with every CAPTURE_F_* flag but RESIZED
     * set), 0 when nothing changed (timeout, or capture_wakeup(); no pixel
     * is copied), or a negative code (-EIO: display connection lost).
     * Must check and clear cap->refresh (repaint everything) and return
     * early when cap->wake is signalled (os_wake_fd readable, or
     * os_wake_wait; it drains nothing: the framework does).
     */
    int (*grab)(struct capture *cap, struct capture_frame *out, int timeout_ms);
    /* Release everything open acquired.  Called once, after a good open. */
    void (*close)(struct capture *cap);
};

/*
 * The framework's object, shared with backends.  Users treat it as
 * opaque and go through the functions below.
 */
struct capture {
    const struct capture_driver *driver;
    void *priv;          /* driver->priv_size bytes */
    struct os_wake wake; /* signalled by capture_wakeup() */
    int wake_open;
    atomic_int refresh; /* set by capture_refresh(), cleared by grab */
    struct capture_stats stats;
    /* why open failed, for the framework to log ("" = logged already) */
    char why[CAPTURE_WHY_MAX];
    /* auto: why the backends preferred to this one did not open */
    char fallback[CAPTURE_WHY_MAX + 16];
    /* the monitors the backend lists (capture_set_monitors), any thread */
    pthread_mutex_t mon_lock;
    struct monitor monitors[MONITORS_MAX];
    int n_monitors;
};

/*
 * Open the backend called name ("x11", "fake"), or the first in order of
 * preference that opens when name is NULL or "auto" (when that is not the
 * first, one warning says why: "falling back to gdi: dxgi unavailable:
 * IDXGIOutput1::DuplicateOutput ... returned 0x80004001 E_NOTIMPL ...").
 * Returns 0 and *out, or -ENOENT for an unknown name, or the backend's error
 * (*out NULL).
 */
int capture_open(const char *name, const struct capture_opts *opts,
                 struct capture **out);

/* auto: why the preferred backends did not open ("dxgi: reason"), or ""
 * when the first one did or a backend was named.  Any thread. */
const char *capture_fallback(const struct capture *cap);

/* See struct capture_driver.grab.  *out is cleared on entry. */
int capture_grab(struct capture *cap, struct capture_frame *out,
                 int timeout_ms);

/* Close the backend and free everything.  Accepts NULL. */
void capture_close(struct capture *cap);

/*
 * Make a grab that is waiting (or the next one) return 0 at once, e.g. to
 * stop the capture thread.  Any thread; async-signal-safe.
 */
void capture_wakeup(struct capture *cap);

/*
 * Ask the next grab to re-read and report the whole screen (recovery when
 * damage may have been missed; key frames need no refresh since the frame
 * is always whole).  Any thread.
 */
void capture_refresh(struct capture *cap);

/*
 * The monitors inside the frame, for backends that know them (wlr: the
 * outputs; x11 asks RandR elsewhere, host/monitors.h): a backend calls
 * capture_set_monitors from its thread when it opens and whenever they
 * change; capture_monitors copies them into out[MONITORS_MAX] from any
 * thread and returns how many (0: the backend lists none).
 */
void capture_set_monitors(struct capture *cap, const struct monitor *m, int n);
int capture_monitors(struct capture *cap, struct monitor *out);

/* The backend's name. */
const char *capture_name(const struct capture *cap);

/* A copy of the counters. */
void capture_get_stats(const struct capture *cap, struct capture_stats *out);

/* Backend names in order of preference, NULL-terminated. */
const char *const *capture_list(void);

/*
 * Helpers for backends.  capture_now_us: CLOCK_MONOTONIC in microseconds.
 * capture_rects_add: add r (clipped to width x height) to rects[*n]
 * (CAPTURE_MAX_RECTS entries), merging everything into the bounding box
 * when full; empty rectangles are ignored.
 */
uint64_t capture_now_us(void);
void capture_rects_add(struct capture_rect *rects, int *n, int width,
                       int height, struct capture_rect r);

/*
 * The fake backend's picture, for tests: frame number n (1-based) shows
 * the background capture_fake_background(x, y) (a BGRA word), the box
 * capture_fake_box(n) filled with CAPTURE_FAKE_BOX_BGRA, and at the top
 * left 32 cells of CAPTURE_FAKE_COUNTER_H pixels, cell i white
 * (0xffffffff) when bit i of n is set, else black (0xff000000).
 */
#define CAPTURE_FAKE_BOX       32
#define CAPTURE_FAKE_COUNTER_H 8
#define CAPTURE_FAKE_CURSOR    8
#define CAPTURE_FAKE_BOX_BGRA  0xffff8020u
void capture_fake_box(uint64_t n, int width, int height,
                      struct capture_rect *box);
uint32_t capture_fake_background(int x, int y);

extern const struct capture_driver capture_driver_dxgi;
extern const struct capture_driver capture_driver_gdi;
extern const struct capture_driver capture_driver_x11;
extern const struct capture_driver capture_driver_wlr;
extern const struct capture_driver capture_driver_pipewire;
extern const struct capture_driver capture_driver_fake;

#endif

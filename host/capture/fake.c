/*
 * Synthetic capture for tests: a fixed background pattern, a box that
 * moves by a fixed step each frame, and a frame counter drawn as a strip
 * of 32 cells (bit i of the frame number in cell i, least significant
 * first).  Everything is a pure function of the frame number, so damage
 * is deterministic: the first frame is whole, then each frame damages the
 * box's old and new places and the counter strip.  Frames are produced
 * every fake_interval_ms (or on every grab), for fake_frames frames, after
 * which the screen is static and grab() sleeps until its timeout.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/capture/capture.h"
#include "log.h"

struct fake {
    int width, height, stride;
    uint8_t *frame;
    int interval_ms, max_frames;
    uint64_t start_us;
    uint64_t n;   /* frame number on screen (0 before the first) */
    uint64_t seq; /* frames returned so far */
    struct capture_rect rects[CAPTURE_MAX_RECTS];
    uint32_t cursor_argb[CAPTURE_FAKE_CURSOR * CAPTURE_FAKE_CURSOR];
};

void capture_fake_box(uint64_t n, int width, int height,
                      struct capture_rect *box)
{
    int span_x = width - CAPTURE_FAKE_BOX, span_y = height - CAPTURE_FAKE_BOX;

    box->x = span_x > 0 ? (int)((n * 8) % (uint64_t)span_x) : 0;
    box->y = span_y > 0
                 ? (int)(CAPTURE_FAKE_COUNTER_H +
                         (n * 4) % (uint64_t)(span_y - CAPTURE_FAKE_COUNTER_H))
                 : 0;
    box->w = CAPTURE_FAKE_BOX < width ? CAPTURE_FAKE_BOX : width;
    box->h = CAPTURE_FAKE_BOX < height ? CAPTURE_FAKE_BOX : height;
}

uint32_t capture_fake_background(int x, int y)
{
    /* B = x, G = y, R = 0x40, as a little-endian BGRA word. */
    return 0xff400000u | ((uint32_t)(y & 0xff) << 8) | (uint32_t)(x & 0xff);
}

static void fill(struct fake *f, struct capture_rect r, int background,
                 uint32_t colour)
{
    int x, y;

    for (y = r.y; y < r.y + r.h && y < f->height; y++) {
        uint32_t *row = (uint32_t *)(f->frame + (size_t)y * f->stride);
        for (x = r.x; x < r.x + r.w && x < f->width; x++)
            row[x] = background ? capture_fake_background(x, y) : colour;
    }
}

/* Paint frame number n (1-based) over frame n-1, adding its damage. */
static void paint(struct capture *cap, struct fake *f, uint64_t n, int full,
                  int *nr)
{
    struct capture_rect old, box, cell;
    int i;

    if (full) {
        fill(f, (struct capture_rect){ 0, 0, f->width, f->height }, 1, 0);
        capture_rects_add(f->rects, nr, f->width, f->height,
                          (struct capture_rect){ 0, 0, f->width, f->height });
    } else {
        capture_fake_box(n - 1, f->width, f->height, &old);
        fill(f, old, 1, 0);
        capture_rects_add(f->rects, nr, f->width, f->height, old);
    }
    capture_fake_box(n, f->width, f->height, &box);
    fill(f, box, 0, CAPTURE_FAKE_BOX_BGRA);
    capture_rects_add(f->rects, nr, f->width, f->height, box);
    for (i = 0; i < 32; i++) {
        cell = (struct capture_rect){ i * CAPTURE_FAKE_COUNTER_H, 0,
                                      CAPTURE_FAKE_COUNTER_H,
                                      CAPTURE_FAKE_COUNTER_H };
        fill(f, cell, 0, (n >> i) & 1 ? 0xffffffffu : 0xff000000u);
    }
    capture_rects_add(f->rects, nr, f->width, f->height,
                      (struct capture_rect){ 0, 0, 32 * CAPTURE_FAKE_COUNTER_H,
                                             CAPTURE_FAKE_COUNTER_H });
    for (i = 0; i < *nr; i++)
        cap->stats.bytes_copied += (uint64_t)f->rects[i].w * f->rects[i].h * 4;
}

static int fake_open(struct capture *cap, const struct capture_opts *opts)
{
    struct fake *f = cap->priv;
    int i;

    f->width = opts->width != 0 ? opts->width : 640;
    f->height = opts->height != 0 ? opts->height : 360;
    /* The box moves below the counter strip: keep room for both. */
    if (f->width < 64 || f->height < 64 || f->width > CAPTURE_MAX_SIDE ||
        f->height > CAPTURE_MAX_SIDE) {
        hd_error("capture-fake", "bad size %dx%d", opts->width, opts->height);
        return -EINVAL;
    }
    f->stride = f->width * 4;
    f->frame = calloc((size_t)f->height, (size_t)f->stride);
    if (f->frame == NULL)
        return -ENOMEM;
    f->interval_ms = opts->fake_interval_ms > 0 ? opts->fake_interval_ms : 0;
    f->max_frames = opts->fake_frames > 0 ? opts->fake_frames : 0;
    f->start_us = capture_now_us();
    for (i = 0; i < CAPTURE_FAKE_CURSOR * CAPTURE_FAKE_CURSOR; i++)
        f->cursor_argb[i] =
            i % (CAPTURE_FAKE_CURSOR + 1) == 0 ? 0xffffffffu : 0;
    return 0;
}

static int fake_grab(struct capture *cap, struct capture_frame *out,
                     int timeout_ms)
{
    struct fake *f = cap->priv;
    uint64_t now, deadline, due, wait_us;
    int nr = 0, full;

    now = capture_now_us();
    deadline = timeout_ms < 0 ? UINT64_MAX : now + (uint64_t)timeout_ms * 1000;
    full = atomic_exchange(&cap->refresh, 0) || f->n == 0;
    for (;;) {
        int more = f->max_frames == 0 || f->n < (uint64_t)f->max_frames;
        due = more ? f->start_us + f->n * (uint64_t)f->interval_ms * 1000
                   : UINT64_MAX;
        if (full || now >= due)
            break;
        if (now >= deadline)
            return 0;
        wait_us = (due < deadline ? due : deadline) - now;
        if (os_wake_wait(&cap->wake, wait_us / 1000 >= INT_MAX
                                         ? INT_MAX
                                         : (int)((wait_us + 999) / 1000)))
            return 0;
        now = capture_now_us();
    }

    /* A refresh when no new frame is due repaints the current one. */
    if (f->n == 0 || now >= due)
        f->n++;
    paint(cap, f, f->n, full, &nr);
    cap->stats.reads++;

    out->data = f->frame;
    out->stride = f->stride;
    out->width = f->width;
    out->height = f->height;
    out->flags = CAPTURE_F_PIXELS;
    if (f->seq == 0)
        out->flags |= CAPTURE_F_CURSOR_MOVED | CAPTURE_F_CURSOR_SHAPE;
    out->n_rects = nr;
    out->rects = f->rects;
    out->cursor = (struct capture_cursor){
        f->width / 2,        f->height / 2,       0, 0,
        CAPTURE_FAKE_CURSOR, CAPTURE_FAKE_CURSOR, 1, f->cursor_argb
    };
    out->time_us = capture_now_us();
    out->seq = ++f->seq;
    return 1;
}

static void fake_close(struct capture *cap)
{
    struct fake *f = cap->priv;

    free(f->frame);
    f->frame = NULL;
}

const struct capture_driver capture_driver_fake = {
    .name = "fake",
    .description = "synthetic moving box and counter (tests)",
    .priv_size = sizeof(struct fake),
    .open = fake_open,
    .grab = fake_grab,
    .close = fake_close,
};

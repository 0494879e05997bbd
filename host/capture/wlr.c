/*
 * Capture on a wlroots compositor (sway, river, Hyprland, ...) through
 * wlr-screencopy (zwlr_screencopy_manager_v1, version 2 or 3), on the
 * capture thread's own connection, driven like the x11 backend: grab()
 * sleeps in poll() on the Wayland fd and the wake-up fd.
 *
 * One frame request is kept in flight.  It is answered with the buffer
 * the compositor wants (format, size, stride); we copy into a wl_shm
 * buffer that is reused while those stay the same, with copy_with_damage:
 * the compositor holds the request until the output changes, then copies
 * and lists the damaged rectangles since our previous copy.  A still
 * screen therefore answers nothing at all and costs no CPU (never block
 * waiting for it: the timeout and wake-up fd end every wait).  Those
 * rectangles (flipped when the frame is y-inverted) are the frame's
 * damage, the same as XDamage gives the x11 backend, so the encoder
 * converts and codes only them.
 *
 * The persistent frame is BGRA: the 32-bit wl_shm formats XRGB8888 and
 * ARGB8888 are BGRA in memory and copied row by row, XBGR8888/ABGR8888
 * are swapped; any other format is refused (one log line).  Sizes are
 * output pixels (scale applied), so a scale or mode change shows as a new
 * buffer size: the frame is reallocated and reported whole (RESIZED).
 * The pointer is drawn into the picture by the compositor
 * (overlay_cursor): screencopy reports no cursor position or shape.
 *
 * The output is the first wl_output the compositor lists, or the one
 * whose name (wl_output v4) is HOMEDESK_WAYLAND_OUTPUT.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <wayland-client.h>

#include "host/capture/capture.h"
#include "log.h"
#include "wlr-screencopy-unstable-v1.h"

#define MOD "capture-wlr"

struct wlr {
    struct wl_display *d;
    struct wl_registry *reg;
    struct wl_shm *shm;
    struct zwlr_screencopy_manager_v1 *mgr;
    uint32_t mgr_version;
    struct wl_output *output;
    char output_name[64];
    const char *want_output;

    /* the frame request in flight */
    struct zwlr_screencopy_frame_v1 *req;
    uint32_t fmt;
    int bw, bh, bstride, have_buffer, copying, ready, failed, y_invert;
    int offers_done; /* version 3: buffer_done seen (or version 2) */
    struct capture_rect dmg[CAPTURE_MAX_RECTS];
    int n_dmg;

    /* the shm buffer the compositor copies into, reused */
    struct wl_buffer *buf;
    uint8_t *map;
    size_t map_size;
    uint32_t buf_fmt;
    int buf_w, buf_h, buf_stride;

    /* the persistent BGRA frame */
    uint8_t *frame;
    int width, height, stride;
    int first, resized;
    struct capture_rect rects[CAPTURE_MAX_RECTS];
};

/* ---- registry ----------------------------------------------------------- */

static void out_geometry(void *data, struct wl_output *o, int32_t x, int32_t y,
                         int32_t pw, int32_t ph, int32_t sub, const char *make,
                         const char *model, int32_t tr)
{
}

static void out_mode(void *data, struct wl_output *o, uint32_t flags, int32_t w,
                     int32_t h, int32_t refresh)
{
}

static void out_done(void *data, struct wl_output *o)
{
}

static void out_scale(void *data, struct wl_output *o, int32_t f)
{
}

static void out_name(void *data, struct wl_output *o, const char *name)
{
    struct wlr *w = data;

    if (o == w->output)
        snprintf(w->output_name, sizeof(w->output_name), "%s", name);
}

static void out_description(void *data, struct wl_output *o, const char *s)
{
}

static const struct wl_output_listener out_listener = {
    out_geometry, out_mode, out_done, out_scale, out_name, out_description,
};

static void reg_global(void *data, struct wl_registry *reg, uint32_t name,
                       const char *iface, uint32_t version)
{
    struct wlr *w = data;

    if (strcmp(iface, wl_shm_interface.name) == 0) {
        w->shm = wl_registry_bind(reg, name, &wl_shm_interface, 1);
    } else if (strcmp(iface, zwlr_screencopy_manager_v1_interface.name) == 0 &&
               version >= 2) {
        w->mgr_version = version < 3 ? version : 3;
        w->mgr = wl_registry_bind(
            reg, name, &zwlr_screencopy_manager_v1_interface, w->mgr_version);
    } else if (strcmp(iface, wl_output_interface.name) == 0 &&
               w->output == NULL) {
        w->output = wl_registry_bind(reg, name, &wl_output_interface,
                                     version < 4 ? version : 4);
        wl_output_add_listener(w->output, &out_listener, w);
    }
}

static void reg_remove(void *data, struct wl_registry *reg, uint32_t name)
{
}

static const struct wl_registry_listener reg_listener = { reg_global,
                                                          reg_remove };

/* ---- the frame request ----------------------------------------------------
 */

static int buffer_format_ok(uint32_t f)
{
    return f == WL_SHM_FORMAT_XRGB8888 || f == WL_SHM_FORMAT_ARGB8888 ||
           f == WL_SHM_FORMAT_XBGR8888 || f == WL_SHM_FORMAT_ABGR8888;
}

static void drop_buffer(struct wlr *w)
{
    if (w->buf != NULL)
        wl_buffer_destroy(w->buf);
    if (w->map != NULL)
        munmap(w->map, w->map_size);
    w->buf = NULL;
    w->map = NULL;
    w->map_size = 0;
}

/* A wl_shm buffer for the format the compositor asked for (reused when
 * it asks for the same again).  0 or a negative errno. */
static int make_buffer(struct wlr *w)
{
    struct wl_shm_pool *pool;
    size_t size = (size_t)w->bstride * (size_t)w->bh;
    int fd, r = 0;

    if (w->buf != NULL && w->buf_fmt == w->fmt && w->buf_w == w->bw &&
        w->buf_h == w->bh && w->buf_stride == w->bstride)
        return 0;
    drop_buffer(w);
    if ((fd = memfd_create("homedesk-capture", MFD_CLOEXEC)) < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) != 0) {
        r = -errno;
        goto out;
    }
    w->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (w->map == MAP_FAILED) {
        w->map = NULL;
        r = -errno;
        goto out;
    }
    w->map_size = size;
    pool = wl_shm_create_pool(w->shm, fd, (int32_t)size);
    w->buf =
        wl_shm_pool_create_buffer(pool, 0, w->bw, w->bh, w->bstride, w->fmt);
    wl_shm_pool_destroy(pool);
    w->buf_fmt = w->fmt;
    w->buf_w = w->bw;
    w->buf_h = w->bh;
    w->buf_stride = w->bstride;
out:
    close(fd);
    return r;
}

/* The compositor has said which buffer it wants: copy into one. */
static void start_copy(struct wlr *w, int with_damage)
{
    if (w->copying || !w->have_buffer || !w->offers_done)
        return;
    if (!buffer_format_ok(w->fmt) || w->bw <= 0 || w->bh <= 0 ||
        w->bw > CAPTURE_MAX_SIDE || w->bh > CAPTURE_MAX_SIDE ||
        w->bstride < w->bw * 4) {
        hd_error(MOD,
                 "the compositor offers only a %dx%d buffer of wl_shm "
                 "format 0x%08x (stride %d): not a 32-bit format we read",
                 w->bw, w->bh, w->fmt, w->bstride);
        w->failed = 1;
        return;
    }
    if (make_buffer(w) != 0) {
        hd_error(MOD, "cannot make a %dx%d shared memory buffer", w->bw, w->bh);
        w->failed = 1;
        return;
    }
    w->copying = 1;
    if (with_damage)
        zwlr_screencopy_frame_v1_copy_with_damage(w->req, w->buf);
    else
        zwlr_screencopy_frame_v1_copy(w->req, w->buf);
}

static void fr_buffer(void *data, struct zwlr_screencopy_frame_v1 *f,
                      uint32_t format, uint32_t width, uint32_t height,
                      uint32_t stride)
{
    struct wlr *w = data;

    w->fmt = format;
    w->bw = (int)width;
    w->bh = (int)height;
    w->bstride = (int)stride;
    w->have_buffer = 1;
    if (w->mgr_version < 3)
        w->offers_done = 1;
}

static void fr_flags(void *data, struct zwlr_screencopy_frame_v1 *f,
                     uint32_t flags)
{
    struct wlr *w = data;

    w->y_invert = (flags & ZWLR_SCREENCOPY_FRAME_V1_FLAGS_Y_INVERT) != 0;
}

static void fr_ready(void *data, struct zwlr_screencopy_frame_v1 *f,
                     uint32_t sec_hi, uint32_t sec_lo, uint32_t nsec)
{
    struct wlr *w = data;

    w->ready = 1;
}

static void fr_failed(void *data, struct zwlr_screencopy_frame_v1 *f)
{
    struct wlr *w = data;

    w->failed = 1;
}

static void fr_damage(void *data, struct zwlr_screencopy_frame_v1 *f,
                      uint32_t x, uint32_t y, uint32_t width, uint32_t height)
{
    struct wlr *w = data;

    capture_rects_add(
        w->dmg, &w->n_dmg, w->bw, w->bh,
        (struct capture_rect){ (int)x, (int)y, (int)width, (int)height });
}

static void fr_linux_dmabuf(void *data, struct zwlr_screencopy_frame_v1 *f,
                            uint32_t format, uint32_t width, uint32_t height)
{
}

static void fr_buffer_done(void *data, struct zwlr_screencopy_frame_v1 *f)
{
    struct wlr *w = data;

    w->offers_done = 1; /* version 3: every buffer type offered */
}

static const struct zwlr_screencopy_frame_v1_listener fr_listener = {
    fr_buffer, fr_flags,        fr_ready,       fr_failed,
    fr_damage, fr_linux_dmabuf, fr_buffer_done,
};

static void request(struct wlr *w)
{
    w->req = zwlr_screencopy_manager_v1_capture_output(w->mgr, 1, w->output);
    w->have_buffer = w->copying = w->ready = w->failed = 0;
    w->offers_done = 0;
    w->y_invert = 0;
    w->n_dmg = 0;
    zwlr_screencopy_frame_v1_add_listener(w->req, &fr_listener, w);
}

static void end_request(struct wlr *w)
{
    if (w->req != NULL)
        zwlr_screencopy_frame_v1_destroy(w->req);
    w->req = NULL;
}

/* ---- open / close ---------------------------------------------------------
 */

static void wlr_close(struct capture *cap)
{
    struct wlr *w = cap->priv;

    end_request(w);
    drop_buffer(w);
    free(w->frame);
    if (w->mgr != NULL)
        zwlr_screencopy_manager_v1_destroy(w->mgr);
    if (w->output != NULL)
        wl_output_destroy(w->output);
    if (w->shm != NULL)
        wl_shm_destroy(w->shm);
    if (w->reg != NULL)
        wl_registry_destroy(w->reg);
    if (w->d != NULL)
        wl_display_disconnect(w->d);
}

static int wlr_open(struct capture *cap, const struct capture_opts *opts)
{
    struct wlr *w = cap->priv;
    const char *name = getenv("WAYLAND_DISPLAY");

    if (name == NULL || name[0] == '\0') {
        hd_debug(MOD, "WAYLAND_DISPLAY is not set");
        return -ENODEV;
    }
    if ((w->d = wl_display_connect(NULL)) == NULL) {
        hd_error(MOD, "cannot connect to the Wayland compositor on %s", name);
        return -ENODEV;
    }
    w->reg = wl_display_get_registry(w->d);
    wl_registry_add_listener(w->reg, &reg_listener, w);
    if (wl_display_roundtrip(w->d) < 0 || wl_display_roundtrip(w->d) < 0) {
        hd_error(MOD, "the Wayland compositor on %s went away", name);
        goto fail;
    }
    if (w->mgr == NULL || w->shm == NULL || w->output == NULL) {
        hd_error(MOD,
                 "the Wayland compositor on %s offers no %s: not a wlroots "
                 "desktop (GNOME and KDE need the portal, not done yet)",
                 name,
                 w->mgr == NULL   ? "wlr-screencopy (version 2 or later)"
                 : w->shm == NULL ? "wl_shm"
                                  : "output");
        goto fail;
    }
    w->first = 1;
    request(w);
    wl_display_flush(w->d);
    hd_info(MOD, "Wayland display %s, output %s, wlr-screencopy v%u", name,
            w->output_name[0] ? w->output_name : "(first)", w->mgr_version);
    return 0;
fail:
    wlr_close(cap);
    memset(w, 0, sizeof(*w));
    return -ENODEV;
}

/* ---- grab -----------------------------------------------------------------
 */

/* Copy rectangle r of the shm buffer into the BGRA frame. */
static void copy_rect(struct wlr *w, struct capture_rect r)
{
    int swap = w->buf_fmt == WL_SHM_FORMAT_XBGR8888 ||
               w->buf_fmt == WL_SHM_FORMAT_ABGR8888;

    for (int y = r.y; y < r.y + r.h; y++) {
        int sy = w->y_invert ? w->bh - 1 - y : y;
        const uint8_t *s = w->map + (size_t)sy * w->buf_stride + r.x * 4;
        uint8_t *d = w->frame + (size_t)y * w->stride + r.x * 4;

        if (!swap) {
            memcpy(d, s, (size_t)r.w * 4);
            continue;
        }
        for (int x = 0; x < r.w; x++, s += 4, d += 4) {
            d[0] = s[2];
            d[1] = s[1];
            d[2] = s[0];
            d[3] = s[3];
        }
    }
}

/* The copy is done: update the frame and fill *out.  1, or -ENOMEM. */
static int produce(struct capture *cap, struct wlr *w,
                   struct capture_frame *out, int whole)
{
    struct capture_rect all = { 0, 0, w->bw, w->bh };
    int n = 0, resized = 0;

    if (w->frame == NULL || w->width != w->bw || w->height != w->bh) {
        uint8_t *f = malloc((size_t)w->bw * 4 * (size_t)w->bh);

        if (f == NULL)
            return -ENOMEM;
        free(w->frame);
        w->frame = f;
        resized = w->width != 0;
        if (w->width != 0)
            hd_info(MOD, "output now %dx%d", w->bw, w->bh);
        w->width = w->bw;
        w->height = w->bh;
        w->stride = w->bw * 4;
        whole = 1;
    }
    if (whole || w->n_dmg == 0) {
        w->rects[n++] = all;
    } else {
        for (int i = 0; i < w->n_dmg; i++) {
            struct capture_rect r = w->dmg[i];

            if (w->y_invert)
                r.y = w->bh - r.y - r.h;
            capture_rects_add(w->rects, &n, w->width, w->height, r);
        }
    }
    for (int i = 0; i < n; i++) {
        copy_rect(w, w->rects[i]);
        cap->stats.bytes_copied += (uint64_t)w->rects[i].w * w->rects[i].h * 4;
    }
    cap->stats.reads++;
    out->data = w->frame;
    out->stride = w->stride;
    out->width = w->width;
    out->height = w->height;
    out->flags = CAPTURE_F_PIXELS;
    if (w->first)
        out->flags |= CAPTURE_F_CURSOR_MOVED | CAPTURE_F_CURSOR_SHAPE;
    if (resized)
        out->flags |= CAPTURE_F_RESIZED;
    w->first = 0;
    out->n_rects = n;
    out->rects = w->rects;
    out->time_us = capture_now_us();
    return 1;
}

static int wlr_grab(struct capture *cap, struct capture_frame *out,
                    int timeout_ms)
{
    struct wlr *w = cap->priv;
    struct pollfd p[2] = {
        { .fd = wl_display_get_fd(w->d), .events = POLLIN },
        { .fd = os_wake_fd(&cap->wake), .events = POLLIN },
    };
    uint64_t deadline = timeout_ms < 0
                            ? UINT64_MAX
                            : capture_now_us() + (uint64_t)timeout_ms * 1000;
    int whole = atomic_exchange(&cap->refresh, 0) || w->first, r, left;

    if (whole && w->copying && !w->ready) {
        /* waiting for damage: ask for a copy now instead */
        end_request(w);
        request(w);
    }
    for (;;) {
        if (w->req == NULL)
            request(w);
        /* version 3 lists every buffer type, then buffer_done; version 2
         * only sends buffer */
        start_copy(w, !whole);
        if (w->failed) {
            end_request(w);
            return -EIO;
        }
        if (w->ready) {
            r = produce(cap, w, out, whole);
            end_request(w);
            request(w); /* the next one waits for damage */
            wl_display_flush(w->d);
            return r;
        }
        while (wl_display_prepare_read(w->d) != 0)
            if (wl_display_dispatch_pending(w->d) < 0)
                goto lost;
        if (wl_display_flush(w->d) < 0 && errno != EAGAIN) {
            wl_display_cancel_read(w->d);
            goto lost;
        }
        left = deadline == UINT64_MAX ? -1
               : capture_now_us() >= deadline
                   ? 0
                   : (int)((deadline - capture_now_us() + 999) / 1000);
        if (poll(p, 2, left) <= 0 || (p[1].revents & POLLIN)) {
            wl_display_cancel_read(w->d);
            return 0;
        }
        if (wl_display_read_events(w->d) < 0 ||
            wl_display_dispatch_pending(w->d) < 0)
            goto lost;
    }
lost:
    hd_error(MOD, "lost the Wayland connection");
    return -EIO;
}

const struct capture_driver capture_driver_wlr = {
    .name = "wlr",
    .description = "wlroots Wayland compositors: wlr-screencopy with damage",
    .priv_size = sizeof(struct wlr),
    .open = wlr_open,
    .grab = wlr_grab,
    .close = wlr_close,
};

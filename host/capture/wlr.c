/*
 * Capture on a wlroots compositor (sway, river, Hyprland, ...) through
 * wlr-screencopy (zwlr_screencopy_manager_v1, version 2 or 3), on the
 * capture thread's own connection, driven like the x11 backend: grab()
 * sleeps in poll() on the Wayland fd and the wake-up fd.
 *
 * The picture is the host's outputs laid out as host/wayland/outputs.h
 * says (all of them side by side when they share a scale, else one), and
 * they are its monitors (capture_set_monitors: PeerInfo's displays).
 * Each output has one frame request in flight.  It is answered with the
 * buffer the compositor wants (format, size, stride); we copy into a
 * wl_shm buffer that is reused while those stay the same, with
 * copy_with_damage: the compositor holds the request until the output
 * changes, then copies and lists the damaged rectangles since our
 * previous copy.  A still screen therefore answers nothing at all and
 * costs no CPU (never block waiting for it: the timeout and wake-up fd
 * end every wait).  Those rectangles (flipped when the frame is
 * y-inverted, moved to the output's place) are the frame's damage, the
 * same as XDamage gives the x11 backend, so the encoder converts and
 * codes only them.
 *
 * The persistent frame is BGRA: the 32-bit wl_shm formats XRGB8888 and
 * ARGB8888 are BGRA in memory and copied row by row, XBGR8888/ABGR8888
 * are swapped; any other format is refused (one log line).  Sizes are
 * output pixels (scale applied), so a scale or mode change, or an output
 * that comes or goes, lays the picture out again: the frame is
 * reallocated and reported whole (RESIZED).  The pointer is drawn into
 * the picture by the compositor (overlay_cursor): screencopy reports no
 * cursor position or shape.
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
#include "host/wayland/outputs.h"
#include "log.h"
#include "wlr-screencopy-unstable-v1.h"

#define MOD "capture-wlr"

struct wlr;

/* One output of the picture: its frame request and shm buffer. */
struct shot {
    struct wlr *w;
    struct wlout_place pl;
    struct wl_output *output;

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
    int mismatch; /* the buffer's size is not the place's: said once */
    char name[64];
};

struct wlr {
    struct capture *cap;
    struct wl_display *d;
    struct wl_registry *reg;
    struct wl_shm *shm;
    struct zwlr_screencopy_manager_v1 *mgr;
    uint32_t mgr_version;
    struct wlout_set outs;

    struct shot shots[WLOUT_MAX];
    int n_shots;

    /* the persistent BGRA frame */
    uint8_t *frame;
    int width, height, stride;
    int first, resized;
    struct capture_rect rects[CAPTURE_MAX_RECTS];
};

/* ---- registry ----------------------------------------------------------- */

static void reg_global(void *data, struct wl_registry *reg, uint32_t name,
                       const char *iface, uint32_t version)
{
    struct wlr *w = data;

    if (wlout_global(&w->outs, reg, name, iface, version))
        return;
    if (strcmp(iface, wl_shm_interface.name) == 0) {
        w->shm = wl_registry_bind(reg, name, &wl_shm_interface, 1);
    } else if (strcmp(iface, zwlr_screencopy_manager_v1_interface.name) == 0 &&
               version >= 2) {
        w->mgr_version = version < 3 ? version : 3;
        w->mgr = wl_registry_bind(
            reg, name, &zwlr_screencopy_manager_v1_interface, w->mgr_version);
    }
}

static void reg_remove(void *data, struct wl_registry *reg, uint32_t name)
{
    struct wlr *w = data;

    wlout_remove(&w->outs, name);
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

static void drop_buffer(struct shot *sh)
{
    if (sh->buf != NULL)
        wl_buffer_destroy(sh->buf);
    if (sh->map != NULL)
        munmap(sh->map, sh->map_size);
    sh->buf = NULL;
    sh->map = NULL;
    sh->map_size = 0;
}

/* A wl_shm buffer for the format the compositor asked for (reused when
 * it asks for the same again).  0 or a negative errno. */
static int make_buffer(struct shot *sh)
{
    struct wl_shm_pool *pool;
    size_t size = (size_t)sh->bstride * (size_t)sh->bh;
    int fd, r = 0;

    if (sh->buf != NULL && sh->buf_fmt == sh->fmt && sh->buf_w == sh->bw &&
        sh->buf_h == sh->bh && sh->buf_stride == sh->bstride)
        return 0;
    drop_buffer(sh);
    if ((fd = memfd_create("homedesk-capture", MFD_CLOEXEC)) < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) != 0) {
        r = -errno;
        goto out;
    }
    sh->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (sh->map == MAP_FAILED) {
        sh->map = NULL;
        r = -errno;
        goto out;
    }
    sh->map_size = size;
    pool = wl_shm_create_pool(sh->w->shm, fd, (int32_t)size);
    sh->buf = wl_shm_pool_create_buffer(pool, 0, sh->bw, sh->bh, sh->bstride,
                                        sh->fmt);
    wl_shm_pool_destroy(pool);
    sh->buf_fmt = sh->fmt;
    sh->buf_w = sh->bw;
    sh->buf_h = sh->bh;
    sh->buf_stride = sh->bstride;
out:
    close(fd);
    return r;
}

/* The compositor has said which buffer it wants: copy into one. */
static void start_copy(struct shot *sh, int with_damage)
{
    if (sh->req == NULL || sh->copying || !sh->have_buffer || !sh->offers_done)
        return;
    if (!buffer_format_ok(sh->fmt) || sh->bw <= 0 || sh->bh <= 0 ||
        sh->bw > CAPTURE_MAX_SIDE || sh->bh > CAPTURE_MAX_SIDE ||
        sh->bstride < sh->bw * 4) {
        hd_error(MOD,
                 "the compositor offers only a %dx%d buffer of wl_shm "
                 "format 0x%08x (stride %d): not a 32-bit format we read",
                 sh->bw, sh->bh, sh->fmt, sh->bstride);
        sh->failed = 1;
        return;
    }
    if (make_buffer(sh) != 0) {
        hd_error(MOD, "cannot make a %dx%d shared memory buffer", sh->bw,
                 sh->bh);
        sh->failed = 1;
        return;
    }
    sh->copying = 1;
    if (with_damage)
        zwlr_screencopy_frame_v1_copy_with_damage(sh->req, sh->buf);
    else
        zwlr_screencopy_frame_v1_copy(sh->req, sh->buf);
}

static void fr_buffer(void *data, struct zwlr_screencopy_frame_v1 *f,
                      uint32_t format, uint32_t width, uint32_t height,
                      uint32_t stride)
{
    struct shot *sh = data;

    sh->fmt = format;
    sh->bw = (int)width;
    sh->bh = (int)height;
    sh->bstride = (int)stride;
    sh->have_buffer = 1;
    if (sh->w->mgr_version < 3)
        sh->offers_done = 1;
}

static void fr_flags(void *data, struct zwlr_screencopy_frame_v1 *f,
                     uint32_t flags)
{
    struct shot *sh = data;

    sh->y_invert = (flags & ZWLR_SCREENCOPY_FRAME_V1_FLAGS_Y_INVERT) != 0;
}

static void fr_ready(void *data, struct zwlr_screencopy_frame_v1 *f,
                     uint32_t sec_hi, uint32_t sec_lo, uint32_t nsec)
{
    struct shot *sh = data;

    sh->ready = 1;
}

static void fr_failed(void *data, struct zwlr_screencopy_frame_v1 *f)
{
    struct shot *sh = data;

    sh->failed = 1;
}

static void fr_damage(void *data, struct zwlr_screencopy_frame_v1 *f,
                      uint32_t x, uint32_t y, uint32_t width, uint32_t height)
{
    struct shot *sh = data;

    capture_rects_add(
        sh->dmg, &sh->n_dmg, sh->bw, sh->bh,
        (struct capture_rect){ (int)x, (int)y, (int)width, (int)height });
}

static void fr_linux_dmabuf(void *data, struct zwlr_screencopy_frame_v1 *f,
                            uint32_t format, uint32_t width, uint32_t height)
{
}

static void fr_buffer_done(void *data, struct zwlr_screencopy_frame_v1 *f)
{
    struct shot *sh = data;

    sh->offers_done = 1; /* version 3: every buffer type offered */
}

static const struct zwlr_screencopy_frame_v1_listener fr_listener = {
    fr_buffer, fr_flags,        fr_ready,       fr_failed,
    fr_damage, fr_linux_dmabuf, fr_buffer_done,
};

static void request(struct shot *sh)
{
    sh->req =
        zwlr_screencopy_manager_v1_capture_output(sh->w->mgr, 1, sh->output);
    sh->have_buffer = sh->copying = sh->ready = sh->failed = 0;
    sh->offers_done = 0;
    sh->y_invert = 0;
    sh->n_dmg = 0;
    zwlr_screencopy_frame_v1_add_listener(sh->req, &fr_listener, sh);
}

static void end_request(struct shot *sh)
{
    if (sh->req != NULL)
        zwlr_screencopy_frame_v1_destroy(sh->req);
    sh->req = NULL;
}

/* ---- the layout ------------------------------------------------------------
 */

static void drop_shots(struct wlr *w)
{
    for (int i = 0; i < w->n_shots; i++) {
        end_request(&w->shots[i]);
        drop_buffer(&w->shots[i]);
    }
    w->n_shots = 0;
}

/* The frame at fw x fh (reallocated, black, RESIZED reported, when the
 * size changes).  1 when it changed, 0, or -ENOMEM. */
static int frame_size(struct wlr *w, int fw, int fh)
{
    uint8_t *f;

    if (w->frame != NULL && w->width == fw && w->height == fh)
        return 0;
    if ((f = calloc((size_t)fw * 4, (size_t)fh)) == NULL)
        return -ENOMEM;
    free(w->frame);
    w->frame = f;
    w->resized = w->width != 0;
    w->width = fw;
    w->height = fh;
    w->stride = fw * 4;
    return 1;
}

/* The placed outputs are the host's monitors. */
static void publish(struct wlr *w)
{
    struct monitor mon[WLOUT_MAX];

    for (int i = 0; i < w->n_shots; i++) {
        const struct shot *sh = &w->shots[i];

        mon[i] = (struct monitor){ sh->pl.x, sh->pl.y, sh->pl.w, sh->pl.h, "" };
        snprintf(mon[i].name, sizeof(mon[i].name), "%s", sh->name);
        hd_info(MOD, "output %s: %dx%d at %d,%d of a %dx%d picture",
                sh->name[0] ? sh->name : "(unnamed)", sh->pl.w, sh->pl.h,
                sh->pl.x, sh->pl.y, w->width, w->height);
    }
    capture_set_monitors(w->cap, mon, w->n_shots);
}

/* One output whose buffer is not its mode's size: the picture follows
 * the buffer.  0 or -ENOMEM. */
static int fit_frame(struct wlr *w, struct shot *sh)
{
    sh->pl.w = sh->bw;
    sh->pl.h = sh->bh;
    if (frame_size(w, sh->bw, sh->bh) < 0)
        return -ENOMEM;
    publish(w);
    return 0;
}

/*
 * Lay the outputs out (again): a shot per placed output, the frame at the
 * picture's size, the monitors published.  1 when the frame's size
 * changed, 0, or a negative errno (no output to capture).
 */
static int lay_out(struct wlr *w)
{
    struct wlout_place pl[WLOUT_MAX];
    int n, r, fw = 0, fh = 0;

    n = wlout_layout(&w->outs, pl, &fw, &fh, 0);
    w->outs.changed = 0;
    if (n <= 0) {
        const char *want = getenv("HOMEDESK_WAYLAND_OUTPUT");

        if (want != NULL && want[0] != '\0')
            hd_error(MOD,
                     "no output called %s (HOMEDESK_WAYLAND_OUTPUT): see "
                     "swaymsg -t get_outputs for the names",
                     want);
        else
            hd_error(MOD, "the compositor has no output with a mode");
        return -ENODEV;
    }
    if (fw > CAPTURE_MAX_SIDE || fh > CAPTURE_MAX_SIDE) {
        hd_error(MOD,
                 "the outputs make a %dx%d picture, more than %d a side: set "
                 "HOMEDESK_WAYLAND_OUTPUT to share one",
                 fw, fh, CAPTURE_MAX_SIDE);
        return -ENODEV;
    }
    drop_shots(w);
    for (int i = 0; i < n; i++) {
        struct shot *sh = &w->shots[i];

        memset(sh, 0, sizeof(*sh));
        sh->w = w;
        sh->pl = pl[i];
        sh->output = w->outs.out[pl[i].index].o;
        snprintf(sh->name, sizeof(sh->name), "%s",
                 w->outs.out[pl[i].index].name);
    }
    w->n_shots = n;
    if ((r = frame_size(w, fw, fh)) < 0)
        return r;
    publish(w);
    return r;
}

/* ---- open / close ---------------------------------------------------------
 */

static void wlr_close(struct capture *cap)
{
    struct wlr *w = cap->priv;

    drop_shots(w);
    free(w->frame);
    if (w->mgr != NULL)
        zwlr_screencopy_manager_v1_destroy(w->mgr);
    wlout_release(&w->outs);
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

    w->cap = cap;
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
    /* the globals, then the outputs' events, then their xdg-outputs' */
    for (int i = 0; i < 3; i++)
        if (wl_display_roundtrip(w->d) < 0) {
            hd_error(MOD, "the Wayland compositor on %s went away", name);
            goto fail;
        }
    if (w->mgr == NULL || w->shm == NULL || w->outs.n == 0) {
        hd_error(MOD,
                 "the Wayland compositor on %s offers no %s: not a wlroots "
                 "desktop (GNOME and KDE need the portal, not done yet)",
                 name,
                 w->mgr == NULL   ? "wlr-screencopy (version 2 or later)"
                 : w->shm == NULL ? "wl_shm"
                                  : "output");
        goto fail;
    }
    if (lay_out(w) < 0)
        goto fail;
    w->first = 1;
    w->resized = 0;
    for (int i = 0; i < w->n_shots; i++)
        request(&w->shots[i]);
    wl_display_flush(w->d);
    hd_info(MOD, "Wayland display %s, %d output%s, wlr-screencopy v%u", name,
            w->n_shots, w->n_shots == 1 ? "" : "s", w->mgr_version);
    return 0;
fail:
    wlr_close(cap);
    memset(w, 0, sizeof(*w));
    return -ENODEV;
}

/* ---- grab -----------------------------------------------------------------
 */

/* Copy rectangle r of the shot's buffer (output pixels) into its place in
 * the BGRA frame. */
static void copy_rect(struct wlr *w, const struct shot *sh,
                      struct capture_rect r)
{
    int swap = sh->buf_fmt == WL_SHM_FORMAT_XBGR8888 ||
               sh->buf_fmt == WL_SHM_FORMAT_ABGR8888;

    for (int y = r.y; y < r.y + r.h; y++) {
        int sy = sh->y_invert ? sh->bh - 1 - y : y;
        const uint8_t *s = sh->map + (size_t)sy * sh->buf_stride + r.x * 4;
        uint8_t *d = w->frame + (size_t)(sh->pl.y + y) * w->stride +
                     (size_t)(sh->pl.x + r.x) * 4;

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

/* A shot's copy is done: its pixels into the frame, its damage (in frame
 * coordinates) into rects[*n]. */
static int take_shot(struct wlr *w, struct shot *sh, int whole, int *n)
{
    struct capture_rect r[CAPTURE_MAX_RECTS], all;
    int k = 0, cw, ch;

    if ((sh->bw != sh->pl.w || sh->bh != sh->pl.h) && w->n_shots == 1) {
        /* one output: the picture is whatever it gives (a rotated one,
         * a mode not announced yet) */
        if (fit_frame(w, sh) != 0)
            return -ENOMEM;
        whole = 1;
    } else if (sh->bw != sh->pl.w || sh->bh != sh->pl.h) {
        /* lay out again (once) when the new mode has not come */
        if (!sh->mismatch)
            w->outs.changed = 1;
        sh->mismatch = 1;
    }
    /* copy what buffer and place both cover */
    cw = sh->bw < sh->pl.w ? sh->bw : sh->pl.w;
    ch = sh->bh < sh->pl.h ? sh->bh : sh->pl.h;
    all = (struct capture_rect){ 0, 0, cw, ch };
    if (whole || sh->n_dmg == 0) {
        r[k++] = all;
    } else {
        for (int i = 0; i < sh->n_dmg; i++) {
            struct capture_rect d = sh->dmg[i];

            if (sh->y_invert)
                d.y = sh->bh - d.y - d.h;
            capture_rects_add(r, &k, cw, ch, d);
        }
    }
    for (int i = 0; i < k; i++) {
        copy_rect(w, sh, r[i]);
        w->cap->stats.bytes_copied += (uint64_t)r[i].w * r[i].h * 4;
        r[i].x += sh->pl.x;
        r[i].y += sh->pl.y;
        capture_rects_add(w->rects, n, w->width, w->height, r[i]);
    }
    w->cap->stats.reads++;
    return 0;
}

/* Every ready shot into the frame; *out filled.  1, 0 when none was
 * ready, or -ENOMEM. */
static int produce(struct wlr *w, struct capture_frame *out, int whole)
{
    int n = 0, any = 0;

    for (int i = 0; i < w->n_shots; i++) {
        struct shot *sh = &w->shots[i];

        if (!sh->ready)
            continue;
        if (take_shot(w, sh, whole || w->first || w->resized, &n) != 0)
            return -ENOMEM;
        end_request(sh);
        request(sh); /* the next one waits for damage */
        any = 1;
    }
    if (!any)
        return 0;
    out->data = w->frame;
    out->stride = w->stride;
    out->width = w->width;
    out->height = w->height;
    out->flags = CAPTURE_F_PIXELS;
    if (w->first)
        out->flags |= CAPTURE_F_CURSOR_MOVED | CAPTURE_F_CURSOR_SHAPE;
    if (w->resized) {
        out->flags |= CAPTURE_F_RESIZED;
        n = 0;
        w->rects[n++] = (struct capture_rect){ 0, 0, w->width, w->height };
        hd_info(MOD, "the picture is now %dx%d", w->width, w->height);
    }
    w->first = w->resized = 0;
    out->n_rects = n;
    out->rects = w->rects;
    out->time_us = capture_now_us();
    return 1;
}

/* Outputs came, went or changed: lay out again and ask every output for
 * a whole copy.  0 or a negative errno. */
static int relayout(struct wlr *w)
{
    int r = lay_out(w);

    if (r < 0)
        return r;
    for (int i = 0; i < w->n_shots; i++)
        request(&w->shots[i]);
    return 0;
}

/* Is every shot of a whole picture in?  (The first frame and a refresh
 * wait for all of them, so the picture is never half old.) */
static int all_ready(const struct wlr *w)
{
    for (int i = 0; i < w->n_shots; i++)
        if (!w->shots[i].ready)
            return 0;
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

    for (int i = 0; whole && i < w->n_shots; i++) {
        struct shot *sh = &w->shots[i];

        if (sh->copying && !sh->ready) {
            /* waiting for damage: ask for a copy now instead */
            end_request(sh);
            request(sh);
        }
    }
    for (;;) {
        if (w->outs.changed) {
            if ((r = relayout(w)) < 0)
                return r;
            whole = 1;
        }
        for (int i = 0; i < w->n_shots; i++) {
            struct shot *sh = &w->shots[i];

            if (sh->req == NULL)
                request(sh);
            /* version 3 lists every buffer type, then buffer_done;
             * version 2 only sends buffer */
            start_copy(sh, !whole);
            if (sh->failed) {
                end_request(sh);
                return -EIO;
            }
        }
        if ((whole || w->resized) ? all_ready(w) : 1) {
            r = produce(w, out, whole);
            if (r != 0) {
                wl_display_flush(w->d);
                return r;
            }
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

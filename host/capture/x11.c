/*
 * X11 capture through XCB.  XDamage (level NonEmpty) on the root window
 * tells us when something was drawn: one DamageNotify each time the
 * accumulated damage goes from empty to non-empty, so a busy screen does
 * not flood us with events and a static one sends none.  A grab moves the
 * damage into an XFixes region (DamageSubtract), fetches its rectangles,
 * and only then reads pixels, so anything drawn after the subtract is
 * reported by the next grab.
 *
 * Pixels: with MIT-SHM the shared segment *is* the persistent frame; each
 * band of damaged rows is read full-width straight into place (one
 * ShmGetImage per band, all sent before the first reply is awaited), so
 * there is no second copy and rows are the unit the encoder converts
 * anyway.  Without SHM (a remote display, or opts->no_shm) each damaged
 * rectangle is read with plain GetImage and copied into a malloc'd frame.
 * Cursor shape: XFixes CursorNotify + GetCursorImage.  Pointer position:
 * X reports no motion to a passive observer, so it is polled with
 * QueryPointer every cursor_poll_ms.  Size changes: RandR
 * ScreenChangeNotify, after which the frame is reallocated and reported
 * whole.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include <xcb/damage.h>
#include <xcb/randr.h>
#include <xcb/shm.h>
#include <xcb/xcb.h>
#include <xcb/xfixes.h>

#include "host/capture/capture.h"
#include "log.h"

#define MOD "capture-x11"
/* Damaged bands closer than this many rows are read as one. */
#define BAND_GAP 8
/* Connections opened at most to read a pointer whose creator has gone
 * (see orphan_cursor_image). */
#define ORPHAN_SLOTS 16

struct x11 {
    xcb_connection_t *c;
    char display[128]; /* as opened ("" for $DISPLAY) */
    xcb_window_t root;
    int width, height, stride;
    uint8_t *frame; /* shm_addr or buf */

    int want_shm, use_shm; /* SHM allowed / in use for this frame */
    xcb_shm_seg_t seg;
    uint8_t *shm_addr;
    uint8_t *buf;

    xcb_damage_damage_t damage;
    xcb_xfixes_region_t region;
    uint8_t damage_event, xfixes_event, randr_event;
    int have_randr;

    int damaged, cursor_changed, resized, first;
    int poll_ms;
    uint64_t next_poll_us;

    struct capture_rect rects[CAPTURE_MAX_RECTS];
    int n_rects;
    struct capture_cursor cursor;
    uint32_t *cursor_argb; /* CAPTURE_CURSOR_MAX^2 */
    uint64_t seq;
};

/* ---- frame memory ---------------------------------------------------- */

static void frame_free(struct x11 *x)
{
    if (x->shm_addr != NULL) {
        xcb_shm_detach(x->c, x->seg);
        xcb_flush(x->c);
        shmdt(x->shm_addr);
        x->shm_addr = NULL;
    }
    free(x->buf);
    x->buf = NULL;
    x->frame = NULL;
}

/* Returns 0 when the server attached a new segment, else a negative code
 * (the caller falls back to plain GetImage). */
static int shm_alloc(struct x11 *x, size_t size)
{
    xcb_generic_error_t *err;
    int shmid, r;
    void *addr;

    shmid = shmget(IPC_PRIVATE, size, IPC_CREAT | 0600);
    if (shmid < 0)
        return -errno;
    addr = shmat(shmid, NULL, 0);
    if (addr == (void *)-1) {
        r = -errno;
        shmctl(shmid, IPC_RMID, NULL);
        return r;
    }
    x->seg = xcb_generate_id(x->c);
    err =
        xcb_request_check(x->c, xcb_shm_attach_checked(x->c, x->seg, shmid, 0));
    /* Once the server holds it (or failed to), the id can go: the
     * segment then lives exactly as long as its attachments. */
    shmctl(shmid, IPC_RMID, NULL);
    if (err != NULL) {
        hd_info(MOD, "MIT-SHM attach refused (error %d): plain GetImage",
                err->error_code);
        free(err);
        shmdt(addr);
        return -EACCES;
    }
    x->shm_addr = addr;
    x->frame = addr;
    return 0;
}

static int frame_alloc(struct x11 *x, int width, int height)
{
    size_t size;

    if (width <= 0 || height <= 0 || width > CAPTURE_MAX_SIDE ||
        height > CAPTURE_MAX_SIDE) {
        hd_error(MOD, "screen size %dx%d not supported", width, height);
        return -ENOTSUP;
    }
    x->width = width;
    x->height = height;
    x->stride = width * 4;
    size = (size_t)x->stride * (size_t)height;
    if (x->use_shm && shm_alloc(x, size) == 0)
        return 0;
    x->use_shm = 0;
    x->buf = calloc(1, size);
    if (x->buf == NULL)
        return -ENOMEM;
    x->frame = x->buf;
    return 0;
}

/* ---- events ---------------------------------------------------------- */

static void handle_event(struct x11 *x, xcb_generic_event_t *ev)
{
    uint8_t type = ev->response_type & 0x7f;

    if (type == 0) {
        xcb_generic_error_t *e = (xcb_generic_error_t *)ev;
        hd_warn(MOD, "X error %d (request %d.%d)", e->error_code, e->major_code,
                e->minor_code);
    } else if (type == x->damage_event + XCB_DAMAGE_NOTIFY) {
        x->damaged = 1;
    } else if (type == x->xfixes_event + XCB_XFIXES_CURSOR_NOTIFY) {
        x->cursor_changed = 1;
    } else if (x->have_randr &&
               type == x->randr_event + XCB_RANDR_SCREEN_CHANGE_NOTIFY) {
        x->resized = 1;
    }
}

/* Handle every event already received or readable without blocking. */
static int drain_events(struct x11 *x)
{
    xcb_generic_event_t *ev;

    while ((ev = xcb_poll_for_event(x->c)) != NULL) {
        handle_event(x, ev);
        free(ev);
    }
    if (xcb_connection_has_error(x->c)) {
        hd_error(MOD, "lost the connection to the X server");
        return -EIO;
    }
    return 0;
}

/* ---- cursor ---------------------------------------------------------- */

/* Returns 1 when the position changed. */
static int poll_pointer(struct x11 *x)
{
    xcb_query_pointer_reply_t *p;
    int moved = 0;

    p = xcb_query_pointer_reply(x->c, xcb_query_pointer(x->c, x->root), NULL);
    if (p == NULL)
        return 0;
    if (p->root_x != x->cursor.x || p->root_y != x->cursor.y) {
        x->cursor.x = p->root_x;
        x->cursor.y = p->root_y;
        moved = 1;
    }
    free(p);
    return moved;
}

static xcb_xfixes_get_cursor_image_reply_t *cursor_image(struct x11 *x,
                                                         int *error)
{
    xcb_generic_error_t *e = NULL;
    xcb_xfixes_get_cursor_image_reply_t *ci;

    ci = xcb_xfixes_get_cursor_image_reply(
        x->c, xcb_xfixes_get_cursor_image(x->c), &e);
    *error = e != NULL ? e->error_code : 0;
    free(e);
    return ci;
}

/*
 * The pointer image when GetCursorImage says BadAccess: the pointer was
 * made by a client that has gone (xsetroot sets the root window's and
 * exits), and the SECURITY extension (on in Xorg and Xvfb) denies any
 * access to a resource whose client slot is empty.  The server gives a
 * new connection the lowest free slot, so connections opened one by one
 * fill the empty slots from the bottom; once one sits in the creator's
 * old slot the image reads.  At most ORPHAN_SLOTS connections, all closed
 * again at once.  NULL when it still cannot be read.
 */
static xcb_xfixes_get_cursor_image_reply_t *orphan_cursor_image(struct x11 *x)
{
    xcb_connection_t *held[ORPHAN_SLOTS];
    xcb_xfixes_get_cursor_image_reply_t *ci = NULL;
    int n = 0, error = XCB_ACCESS;

    while (ci == NULL && error == XCB_ACCESS && n < ORPHAN_SLOTS) {
        held[n] = xcb_connect(x->display[0] ? x->display : NULL, NULL);
        if (xcb_connection_has_error(held[n])) {
            xcb_disconnect(held[n]);
            break;
        }
        /* a round trip: the server has set the connection up */
        free(xcb_get_input_focus_reply(held[n], xcb_get_input_focus(held[n]),
                                       NULL));
        n++;
        ci = cursor_image(x, &error);
    }
    hd_debug(MOD, "pointer of a client gone: %s after %d connection(s)",
             ci != NULL ? "read" : "not readable", n);
    while (n > 0)
        xcb_disconnect(held[--n]);
    return ci;
}

/* Fetch the cursor image; returns the CAPTURE_F_CURSOR_* flags earned. */
static unsigned fetch_cursor(struct x11 *x)
{
    xcb_xfixes_get_cursor_image_reply_t *ci;
    const uint32_t *px;
    unsigned flags = 0;
    int w, h, row, len, error;

    ci = cursor_image(x, &error);
    if (ci == NULL && error == XCB_ACCESS)
        ci = orphan_cursor_image(x);
    if (ci == NULL)
        return 0;
    px = xcb_xfixes_get_cursor_image_cursor_image(ci);
    len = xcb_xfixes_get_cursor_image_cursor_image_length(ci);
    w = ci->width < CAPTURE_CURSOR_MAX ? ci->width : CAPTURE_CURSOR_MAX;
    h = ci->height < CAPTURE_CURSOR_MAX ? ci->height : CAPTURE_CURSOR_MAX;
    if ((long)ci->width * ci->height > len)
        w = h = 0; /* short reply: keep no image rather than overread */
    for (row = 0; row < h; row++)
        memcpy(x->cursor_argb + (size_t)row * w, px + (size_t)row * ci->width,
               (size_t)w * 4);
    x->cursor.width = w;
    x->cursor.height = h;
    x->cursor.hot_x = ci->xhot;
    x->cursor.hot_y = ci->yhot;
    x->cursor.serial = ci->cursor_serial;
    x->cursor.argb = w > 0 ? x->cursor_argb : NULL;
    flags |= CAPTURE_F_CURSOR_SHAPE;
    if (ci->x != x->cursor.x || ci->y != x->cursor.y) {
        x->cursor.x = ci->x;
        x->cursor.y = ci->y;
        flags |= CAPTURE_F_CURSOR_MOVED;
    }
    free(ci);
    return flags;
}

/* ---- pixels ---------------------------------------------------------- */

/* Move the accumulated damage into x->rects (clears the server's copy). */
static int fetch_damage(struct x11 *x)
{
    xcb_xfixes_fetch_region_reply_t *fr;
    xcb_rectangle_t *rr;
    int i, n;

    xcb_damage_subtract(x->c, x->damage, XCB_NONE, x->region);
    fr = xcb_xfixes_fetch_region_reply(
        x->c, xcb_xfixes_fetch_region(x->c, x->region), NULL);
    if (fr == NULL)
        return -EIO;
    rr = xcb_xfixes_fetch_region_rectangles(fr);
    n = xcb_xfixes_fetch_region_rectangles_length(fr);
    if (n > CAPTURE_MAX_RECTS) {
        /* Many small pieces: their bounding box reads faster. */
        capture_rects_add(x->rects, &x->n_rects, x->width, x->height,
                          (struct capture_rect){ fr->extents.x, fr->extents.y,
                                                 fr->extents.width,
                                                 fr->extents.height });
    } else {
        for (i = 0; i < n; i++)
            capture_rects_add(x->rects, &x->n_rects, x->width, x->height,
                              (struct capture_rect){ rr[i].x, rr[i].y,
                                                     rr[i].width,
                                                     rr[i].height });
    }
    free(fr);
    return 0;
}

static int cmp_rect_y(const void *a, const void *b)
{
    const struct capture_rect *ra = a, *rb = b;

    return (ra->y > rb->y) - (ra->y < rb->y);
}

/* SHM: read the bands of rows that hold damage, full width, into place. */
static int read_shm(struct capture *cap, struct x11 *x)
{
    struct capture_rect sorted[CAPTURE_MAX_RECTS];
    xcb_shm_get_image_cookie_t ck[CAPTURE_MAX_RECTS];
    int y0[CAPTURE_MAX_RECTS], y1[CAPTURE_MAX_RECTS];
    xcb_generic_error_t *err;
    xcb_shm_get_image_reply_t *rep;
    int i, nb = 0, r = 0;

    memcpy(sorted, x->rects, sizeof(sorted[0]) * (size_t)x->n_rects);
    qsort(sorted, (size_t)x->n_rects, sizeof(sorted[0]), cmp_rect_y);
    for (i = 0; i < x->n_rects; i++) {
        int top = sorted[i].y, bottom = sorted[i].y + sorted[i].h;
        if (nb > 0 && top <= y1[nb - 1] + BAND_GAP) {
            if (bottom > y1[nb - 1])
                y1[nb - 1] = bottom;
        } else {
            y0[nb] = top;
            y1[nb] = bottom;
            nb++;
        }
    }
    for (i = 0; i < nb; i++)
        ck[i] = xcb_shm_get_image(
            x->c, x->root, 0, (int16_t)y0[i], (uint16_t)x->width,
            (uint16_t)(y1[i] - y0[i]), ~0u, XCB_IMAGE_FORMAT_Z_PIXMAP, x->seg,
            (uint32_t)((size_t)y0[i] * (size_t)x->stride));
    for (i = 0; i < nb; i++) {
        rep = xcb_shm_get_image_reply(x->c, ck[i], &err);
        if (rep == NULL) {
            if (r == 0)
                hd_error(MOD, "ShmGetImage failed (error %d)",
                         err ? err->error_code : -1);
            free(err);
            r = -EIO;
            continue;
        }
        free(rep);
        cap->stats.reads++;
        cap->stats.bytes_copied += (uint64_t)(y1[i] - y0[i]) * x->stride;
    }
    return r;
}

/* No SHM: read each damaged rectangle and copy it into the frame. */
static int read_plain(struct capture *cap, struct x11 *x)
{
    xcb_get_image_cookie_t ck[CAPTURE_MAX_RECTS];
    xcb_get_image_reply_t *rep;
    xcb_generic_error_t *err;
    const uint8_t *src;
    int i, row, r = 0;

    for (i = 0; i < x->n_rects; i++) {
        const struct capture_rect *rc = &x->rects[i];
        ck[i] = xcb_get_image(x->c, XCB_IMAGE_FORMAT_Z_PIXMAP, x->root,
                              (int16_t)rc->x, (int16_t)rc->y, (uint16_t)rc->w,
                              (uint16_t)rc->h, ~0u);
    }
    for (i = 0; i < x->n_rects; i++) {
        const struct capture_rect *rc = &x->rects[i];
        size_t row_bytes = (size_t)rc->w * 4;

        rep = xcb_get_image_reply(x->c, ck[i], &err);
        if (rep == NULL) {
            if (r == 0)
                hd_error(MOD, "GetImage failed (error %d)",
                         err ? err->error_code : -1);
            free(err);
            r = -EIO;
            continue;
        }
        if ((size_t)xcb_get_image_data_length(rep) <
            row_bytes * (size_t)rc->h) {
            hd_error(MOD, "GetImage returned a short image");
            free(rep);
            r = -EIO;
            continue;
        }
        src = xcb_get_image_data(rep);
        for (row = 0; row < rc->h; row++)
            memcpy(x->frame + (size_t)(rc->y + row) * x->stride +
                       (size_t)rc->x * 4,
                   src + (size_t)row * row_bytes, row_bytes);
        free(rep);
        cap->stats.reads++;
        cap->stats.bytes_copied += row_bytes * (size_t)rc->h;
    }
    return r;
}

static int handle_resize(struct x11 *x)
{
    xcb_get_geometry_reply_t *g;
    int r, w, h;

    g = xcb_get_geometry_reply(x->c, xcb_get_geometry(x->c, x->root), NULL);
    if (g == NULL)
        return -EIO;
    w = g->width;
    h = g->height;
    free(g);
    if (w == x->width && h == x->height)
        return 0;
    hd_info(MOD, "screen resized %dx%d -> %dx%d", x->width, x->height, w, h);
    frame_free(x);
    x->use_shm = x->want_shm;
    if ((r = frame_alloc(x, w, h)) != 0)
        return r;
    return 1;
}

/* ---- driver ---------------------------------------------------------- */

static void x11_close(struct capture *cap)
{
    struct x11 *x = cap->priv;

    if (x->c != NULL) {
        frame_free(x);
        if (x->damage)
            xcb_damage_destroy(x->c, x->damage);
        if (x->region)
            xcb_xfixes_destroy_region(x->c, x->region);
        xcb_disconnect(x->c);
        x->c = NULL;
    }
    free(x->cursor_argb);
    x->cursor_argb = NULL;
}

static const xcb_query_extension_reply_t *
need_ext(xcb_connection_t *c, xcb_extension_t *ext, const char *name)
{
    const xcb_query_extension_reply_t *q = xcb_get_extension_data(c, ext);

    if (q == NULL || !q->present) {
        hd_error(MOD, "the X server lacks the %s extension", name);
        return NULL;
    }
    return q;
}

static int check_format(struct x11 *x, const xcb_setup_t *setup,
                        const xcb_screen_t *scr)
{
    xcb_format_iterator_t it = xcb_setup_pixmap_formats_iterator(setup);

    if (setup->image_byte_order != XCB_IMAGE_ORDER_LSB_FIRST) {
        hd_error(MOD, "MSB-first X image byte order is not supported");
        return -ENOTSUP;
    }
    for (; it.rem; xcb_format_next(&it)) {
        if (it.data->depth == scr->root_depth) {
            if (it.data->bits_per_pixel == 32)
                return 0;
            break;
        }
    }
    hd_error(MOD, "root depth %d is not a 32-bit pixel format",
             scr->root_depth);
    return -ENOTSUP;
}

static int x11_open(struct capture *cap, const struct capture_opts *opts)
{
    struct x11 *x = cap->priv;
    const xcb_setup_t *setup;
    xcb_screen_iterator_t sit;
    const xcb_query_extension_reply_t *q;
    xcb_xfixes_query_version_reply_t *fv;
    xcb_damage_query_version_reply_t *dv;
    const char *display;
    int screen = 0, r;

    display = opts->display && opts->display[0] ? opts->display : NULL;
    snprintf(x->display, sizeof(x->display), "%s", display ? display : "");
    x->c = xcb_connect(display, &screen);
    if (xcb_connection_has_error(x->c)) {
        hd_error(MOD, "cannot open X display %s",
                 display             ? display
                 : getenv("DISPLAY") ? getenv("DISPLAY")
                                     : "(DISPLAY unset)");
        xcb_disconnect(x->c);
        x->c = NULL;
        return -ENODEV;
    }
    x->cursor_argb =
        malloc(sizeof(uint32_t) * CAPTURE_CURSOR_MAX * CAPTURE_CURSOR_MAX);
    if (x->cursor_argb == NULL) {
        r = -ENOMEM;
        goto out;
    }
    setup = xcb_get_setup(x->c);
    sit = xcb_setup_roots_iterator(setup);
    for (; sit.rem && screen > 0; screen--)
        xcb_screen_next(&sit);
    if (!sit.rem) {
        hd_error(MOD, "no such X screen");
        r = -ENODEV;
        goto out;
    }
    x->root = sit.data->root;
    if ((r = check_format(x, setup, sit.data)) != 0)
        goto out;

    xcb_prefetch_extension_data(x->c, &xcb_damage_id);
    xcb_prefetch_extension_data(x->c, &xcb_xfixes_id);
    xcb_prefetch_extension_data(x->c, &xcb_shm_id);
    xcb_prefetch_extension_data(x->c, &xcb_randr_id);
    r = -ENODEV;
    if ((q = need_ext(x->c, &xcb_xfixes_id, "XFIXES")) == NULL)
        goto out;
    x->xfixes_event = q->first_event;
    if ((q = need_ext(x->c, &xcb_damage_id, "DAMAGE")) == NULL)
        goto out;
    x->damage_event = q->first_event;
    /* Both extensions refuse requests until the version is negotiated. */
    fv = xcb_xfixes_query_version_reply(
        x->c, xcb_xfixes_query_version(x->c, 5, 0), NULL);
    dv = xcb_damage_query_version_reply(
        x->c, xcb_damage_query_version(x->c, 1, 1), NULL);
    if (fv == NULL || dv == NULL || fv->major_version < 2) {
        hd_error(MOD, "XFIXES >= 2 and DAMAGE are needed");
        free(fv);
        free(dv);
        goto out;
    }
    free(fv);
    free(dv);

    q = xcb_get_extension_data(x->c, &xcb_randr_id);
    if (q != NULL && q->present) {
        xcb_randr_query_version_reply_t *rv = xcb_randr_query_version_reply(
            x->c, xcb_randr_query_version(x->c, 1, 2), NULL);
        if (rv != NULL) {
            x->have_randr = 1;
            x->randr_event = q->first_event;
            xcb_randr_select_input(x->c, x->root,
                                   XCB_RANDR_NOTIFY_MASK_SCREEN_CHANGE);
        }
        free(rv);
    }

    q = xcb_get_extension_data(x->c, &xcb_shm_id);
    x->use_shm = !opts->no_shm && q != NULL && q->present;
    if ((r = frame_alloc(x, sit.data->width_in_pixels,
                         sit.data->height_in_pixels)) != 0)
        goto out;
    /* A refused attach now means a remote display: do not retry later. */
    x->want_shm = x->use_shm;

    x->damage = xcb_generate_id(x->c);
    xcb_damage_create(x->c, x->damage, x->root,
                      XCB_DAMAGE_REPORT_LEVEL_NON_EMPTY);
    x->region = xcb_generate_id(x->c);
    xcb_xfixes_create_region(x->c, x->region, 0, NULL);
    xcb_xfixes_select_cursor_input(
        x->c, x->root, XCB_XFIXES_CURSOR_NOTIFY_MASK_DISPLAY_CURSOR);

    x->poll_ms = opts->cursor_poll_ms == 0 ? CAPTURE_CURSOR_POLL_MS
                                           : opts->cursor_poll_ms;
    x->first = 1;
    x->cursor.x = x->cursor.y = -1;
    hd_info(MOD, "display %s: %dx%d, %s", display ? display : "$DISPLAY",
            x->width, x->height, x->use_shm ? "MIT-SHM" : "GetImage");
    r = 0;
out:
    if (r != 0)
        x11_close(cap);
    return r;
}

/*
 * Sleep until there is something to report or deadline (CLOCK_MONOTONIC
 * us) passes.  Returns 1 with *flags / *full telling what to do, 0 on
 * timeout or wake-up, or a negative code.
 */
static int wait_change(struct capture *cap, struct x11 *x, uint64_t deadline,
                       unsigned *flags, int *full)
{
    struct pollfd pfd[2];
    uint64_t now, wait_us;
    int r;

    for (;;) {
        if ((r = drain_events(x)) < 0)
            return r;
        if (atomic_exchange(&cap->refresh, 0))
            *full = 1;
        if (x->resized) {
            x->resized = 0;
            if ((r = handle_resize(x)) < 0)
                return r;
            if (r > 0) {
                *flags |= CAPTURE_F_RESIZED;
                *full = 1;
            }
        }
        if (x->first) {
            x->first = 0;
            *full = 1;
            x->cursor_changed = 1;
        }
        if (*full || x->damaged || x->cursor_changed)
            return 1;
        now = capture_now_us();
        if (x->poll_ms > 0 && now >= x->next_poll_us) {
            x->next_poll_us = now + (uint64_t)x->poll_ms * 1000;
            if (poll_pointer(x)) {
                *flags |= CAPTURE_F_CURSOR_MOVED;
                return 1;
            }
            continue; /* the round trip may have queued events */
        }
        if (now >= deadline)
            return 0;
        wait_us = deadline - now;
        if (x->poll_ms > 0 && x->next_poll_us - now < wait_us)
            wait_us = x->next_poll_us - now;
        xcb_flush(x->c);
        pfd[0] = (struct pollfd){ xcb_get_file_descriptor(x->c), POLLIN, 0 };
        pfd[1] = (struct pollfd){ os_wake_fd(&cap->wake), POLLIN, 0 };
        r = poll(pfd, 2,
                 wait_us / 1000 >= INT_MAX ? INT_MAX
                                           : (int)((wait_us + 999) / 1000));
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r > 0 && (pfd[1].revents & POLLIN))
            return 0;
    }
}

/* Read what changed into the frame.  Returns 1 with *out filled, 0 when
 * it came to nothing (a DamageNotify for damage already read), or a
 * negative code. */
static int produce(struct capture *cap, struct x11 *x,
                   struct capture_frame *out, unsigned flags, int full)
{
    int r;

    x->n_rects = 0;
    if (full || x->damaged) {
        x->damaged = 0;
        /* Always subtract, so the damage seen so far is not reported
         * again after a full read. */
        if ((r = fetch_damage(x)) < 0)
            return r;
        if (full) {
            x->n_rects = 0;
            capture_rects_add(
                x->rects, &x->n_rects, x->width, x->height,
                (struct capture_rect){ 0, 0, x->width, x->height });
        }
        if (x->n_rects > 0) {
            r = x->use_shm ? read_shm(cap, x) : read_plain(cap, x);
            if (r < 0)
                return r;
            flags |= CAPTURE_F_PIXELS;
        }
    }
    if (x->cursor_changed) {
        x->cursor_changed = 0;
        flags |= fetch_cursor(x);
    }
    if (flags == 0)
        return 0;

    out->data = x->frame;
    out->stride = x->stride;
    out->width = x->width;
    out->height = x->height;
    out->flags = flags;
    out->n_rects = x->n_rects;
    out->rects = x->rects;
    out->cursor = x->cursor;
    out->time_us = capture_now_us();
    out->seq = ++x->seq;
    return 1;
}

static int x11_grab(struct capture *cap, struct capture_frame *out,
                    int timeout_ms)
{
    struct x11 *x = cap->priv;
    uint64_t deadline;
    unsigned flags;
    int r, full;

    deadline = timeout_ms < 0 ? UINT64_MAX
                              : capture_now_us() + (uint64_t)timeout_ms * 1000;
    do {
        flags = 0;
        full = 0;
        if ((r = wait_change(cap, x, deadline, &flags, &full)) <= 0)
            return r;
    } while ((r = produce(cap, x, out, flags, full)) == 0);
    return r;
}

const struct capture_driver capture_driver_x11 = {
    .name = "x11",
    .description = "X11 via XCB: MIT-SHM, XDamage, XFixes cursor, RandR",
    .priv_size = sizeof(struct x11),
    .open = x11_open,
    .grab = x11_grab,
    .close = x11_close,
};

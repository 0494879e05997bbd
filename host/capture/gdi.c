/*
 * Windows capture through GDI: GetDC(NULL) + BitBlt of the whole virtual
 * desktop (every monitor) into a DIB section, the way every Windows
 * version and Wine support.  GDI reports no damage, so a grab reads the
 * screen into a scratch DIB and compares it with the frame in tiles of
 * TILE x TILE pixels: changed tiles are copied into the frame and become
 * the damaged rectangles (joined into runs along each row of tiles).
 *
 * Polling: every ACTIVE_MS while the screen changes, backing off to
 * IDLE_MS after IDLE_AFTER_MS without a change (under Wine a 1280x800
 * BitBlt costs about 20 ms of CPU, so an idle host stays cheap; the first
 * change after a pause shows up within IDLE_MS).  capture_wakeup() ends
 * the wait at once.
 *
 * Cursor: GetCursorInfo gives the position; the shape of another
 * process's cursor cannot be read reliably (it cannot under Wine), so
 * frames carry the position only.  DXGI Desktop Duplication (dxgi.c:
 * damage from the compositor, cursor shapes) comes first on real Windows
 * 8+; this backend is the fallback (and all that Wine offers).
 *
 * Monitors: host/monitors_win.c's list, given to capture_set_monitors at
 * open and whenever the virtual desktop changes.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/capture/capture.h"
#include "host/monitors.h"
#include "log.h"
#include "os.h"

#define MOD           "capture-gdi"
#define TILE          64
#define ACTIVE_MS     33
#define IDLE_MS       200
#define IDLE_AFTER_MS 1000

struct gdi {
    HDC screen, mem;
    HBITMAP dib, old;
    uint8_t *scratch; /* the DIB's pixels: the latest BitBlt */
    uint8_t *frame;   /* the persistent frame handed out */
    int x, y, width, height, stride;
    int first, cursor_x, cursor_y;
    uint64_t last_change_us, seq;
    struct capture_rect rects[CAPTURE_MAX_RECTS];
};

static void release_dib(struct gdi *g)
{
    if (g->mem != NULL) {
        if (g->old != NULL)
            SelectObject(g->mem, g->old);
        DeleteDC(g->mem);
    }
    if (g->dib != NULL)
        DeleteObject(g->dib);
    free(g->frame);
    g->mem = NULL;
    g->dib = g->old = NULL;
    g->frame = g->scratch = NULL;
}

/* (Re)allocate for the virtual desktop's current size; 0 or -errno. */
static int alloc_dib(struct gdi *g)
{
    BITMAPINFO bi;
    void *bits = NULL;

    release_dib(g);
    g->x = GetSystemMetrics(SM_XVIRTUALSCREEN);
    g->y = GetSystemMetrics(SM_YVIRTUALSCREEN);
    g->width = GetSystemMetrics(SM_CXVIRTUALSCREEN);
    g->height = GetSystemMetrics(SM_CYVIRTUALSCREEN);
    if (g->width <= 0 || g->height <= 0 || g->width > CAPTURE_MAX_SIDE ||
        g->height > CAPTURE_MAX_SIDE) {
        hd_error(MOD, "virtual desktop of %dx%d pixels: nothing to capture",
                 g->width, g->height);
        return -ENODEV;
    }
    g->stride = g->width * 4;
    memset(&bi, 0, sizeof(bi));
    bi.bmiHeader.biSize = sizeof(bi.bmiHeader);
    bi.bmiHeader.biWidth = g->width;
    bi.bmiHeader.biHeight = -g->height; /* top-down */
    bi.bmiHeader.biPlanes = 1;
    bi.bmiHeader.biBitCount = 32;
    bi.bmiHeader.biCompression = BI_RGB;
    g->mem = CreateCompatibleDC(g->screen);
    if (g->mem != NULL)
        g->dib = CreateDIBSection(g->mem, &bi, DIB_RGB_COLORS, &bits, NULL, 0);
    g->frame = malloc((size_t)g->stride * (size_t)g->height);
    if (g->mem == NULL || g->dib == NULL || bits == NULL || g->frame == NULL) {
        hd_error(MOD, "a %dx%d DIB section: Windows error %lu", g->width,
                 g->height, (unsigned long)GetLastError());
        release_dib(g);
        return -ENOMEM;
    }
    g->old = SelectObject(g->mem, g->dib);
    g->scratch = bits;
    return 0;
}

static void list_monitors(struct capture *cap, const struct gdi *g)
{
    struct monitor m[MONITORS_MAX];

    capture_set_monitors(cap, m, monitors_list(NULL, g->width, g->height, m));
}

static int gdi_open(struct capture *cap, const struct capture_opts *opts)
{
    struct gdi *g = cap->priv;
    int r;

    (void)opts;
    if ((g->screen = GetDC(NULL)) == NULL) {
        hd_error(MOD,
                 "GetDC(NULL) failed (Windows error %lu): no desktop in "
                 "this session (a service in session 0?)",
                 (unsigned long)GetLastError());
        return -ENODEV;
    }
    if ((r = alloc_dib(g)) != 0) {
        ReleaseDC(NULL, g->screen);
        return r;
    }
    list_monitors(cap, g);
    g->first = 1;
    g->cursor_x = g->cursor_y = -1;
    hd_info(MOD, "virtual desktop %dx%d at %d,%d (GDI BitBlt)", g->width,
            g->height, g->x, g->y);
    return 0;
}

static void gdi_close(struct capture *cap)
{
    struct gdi *g = cap->priv;

    release_dib(g);
    ReleaseDC(NULL, g->screen);
}

/* Copy the tiles of scratch that differ from frame into frame, adding the
 * changed areas to rects (runs of tiles along each tile row). */
static void diff_tiles(struct gdi *g, int full, struct capture_rect *rects,
                       int *nr)
{
    int tx, ty, y;

    for (ty = 0; ty < g->height; ty += TILE) {
        int th = g->height - ty < TILE ? g->height - ty : TILE;
        int run_x = -1;

        for (tx = 0; tx <= g->width; tx += TILE) {
            int tw = g->width - tx < TILE ? g->width - tx : TILE;
            int changed = 0;

            if (tx < g->width) {
                size_t off = (size_t)ty * g->stride + (size_t)tx * 4;

                changed = full;
                for (y = 0; y < th && !changed; y++)
                    changed = memcmp(g->scratch + off + (size_t)y * g->stride,
                                     g->frame + off + (size_t)y * g->stride,
                                     (size_t)tw * 4) != 0;
                for (y = 0; changed && y < th; y++)
                    memcpy(g->frame + off + (size_t)y * g->stride,
                           g->scratch + off + (size_t)y * g->stride,
                           (size_t)tw * 4);
            }
            if (changed && run_x < 0)
                run_x = tx;
            if (!changed && run_x >= 0) {
                capture_rects_add(
                    rects, nr, g->width, g->height,
                    (struct capture_rect){ run_x, ty, tx - run_x, th });
                run_x = -1;
            }
        }
    }
}

static int gdi_grab(struct capture *cap, struct capture_frame *out,
                    int timeout_ms)
{
    struct gdi *g = cap->priv;
    struct capture_rect *rects = g->rects;
    uint64_t now = capture_now_us(), deadline;
    CURSORINFO ci;
    unsigned flags;
    int nr, full, resized = 0, r;

    deadline = timeout_ms < 0 ? UINT64_MAX : now + (uint64_t)timeout_ms * 1000;
    for (;;) {
        full = atomic_exchange(&cap->refresh, 0) || g->first;
        if (GetSystemMetrics(SM_CXVIRTUALSCREEN) != g->width ||
            GetSystemMetrics(SM_CYVIRTUALSCREEN) != g->height ||
            GetSystemMetrics(SM_XVIRTUALSCREEN) != g->x ||
            GetSystemMetrics(SM_YVIRTUALSCREEN) != g->y) {
            if ((r = alloc_dib(g)) != 0)
                return -EIO;
            hd_info(MOD, "virtual desktop now %dx%d at %d,%d", g->width,
                    g->height, g->x, g->y);
            list_monitors(cap, g);
            full = resized = 1;
        }
        if (!BitBlt(g->mem, 0, 0, g->width, g->height, g->screen, g->x, g->y,
                    SRCCOPY | CAPTUREBLT)) {
            /* the secure desktop (UAC, lock screen) refuses reads */
            hd_debug(MOD, "BitBlt failed (Windows error %lu)",
                     (unsigned long)GetLastError());
        }
        GdiFlush();
        cap->stats.reads++;
        nr = 0;
        diff_tiles(g, full, rects, &nr);
        if (nr > 0)
            cap->stats.bytes_copied += (uint64_t)g->stride * g->height;
        flags = nr > 0 ? CAPTURE_F_PIXELS : 0;
        memset(&ci, 0, sizeof(ci));
        ci.cbSize = sizeof(ci);
        if (GetCursorInfo(&ci) && (ci.ptScreenPos.x - g->x != g->cursor_x ||
                                   ci.ptScreenPos.y - g->y != g->cursor_y)) {
            g->cursor_x = ci.ptScreenPos.x - g->x;
            g->cursor_y = ci.ptScreenPos.y - g->y;
            flags |= CAPTURE_F_CURSOR_MOVED;
        }
        now = capture_now_us();
        if (g->first)
            flags |= CAPTURE_F_PIXELS | CAPTURE_F_CURSOR_MOVED |
                     CAPTURE_F_CURSOR_SHAPE;
        if (resized)
            flags |= CAPTURE_F_RESIZED;
        if (flags != 0)
            break;
        if (now >= deadline)
            return 0;
        {
            uint64_t idle = now - g->last_change_us, wait_us;

            wait_us = (idle > IDLE_AFTER_MS * 1000ull ? IDLE_MS : ACTIVE_MS) *
                      1000ull;
            if (deadline - now < wait_us)
                wait_us = deadline - now;
            if (os_wake_wait(&cap->wake, (int)((wait_us + 999) / 1000)))
                return 0;
        }
    }
    if (flags & CAPTURE_F_PIXELS)
        g->last_change_us = now;
    g->first = 0;
    out->data = g->frame;
    out->stride = g->stride;
    out->width = g->width;
    out->height = g->height;
    out->flags = flags;
    out->n_rects = nr;
    out->rects = rects;
    out->cursor.x = g->cursor_x;
    out->cursor.y = g->cursor_y;
    out->time_us = now;
    out->seq = ++g->seq;
    return 1;
}

const struct capture_driver capture_driver_gdi = {
    .name = "gdi",
    .description = "Windows GDI BitBlt of the virtual desktop",
    .priv_size = sizeof(struct gdi),
    .open = gdi_open,
    .grab = gdi_grab,
    .close = gdi_close,
};

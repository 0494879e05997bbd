/*
 * Windows capture through DXGI Desktop Duplication (Windows 8 and later):
 * one IDXGIOutputDuplication per output attached to the desktop, each on
 * a Direct3D 11 device of its own adapter, put together into one frame
 * of the whole virtual desktop (the gdi backend's frame: its top left
 * corner is 0,0).  The compositor tells what changed: each frame's move
 * and dirty rectangles (dxgi_conv.c) are the only pixels copied from a
 * staging texture into the frame and become the damage, as XDamage does
 * for x11.  The pointer's position and shape come from the duplication
 * too (GetFramePointerShape: monochrome, colour or masked colour, turned
 * into premultiplied ARGB by dxgi_conv.c).
 *
 * UNTESTED ON REAL WINDOWS.  This file was written against Microsoft's
 * documentation and mingw-w64's headers and has only ever run under Wine,
 * where IDXGIOutput1::DuplicateOutput returns E_NOTIMPL: the backend
 * fails to open there and the framework falls back to gdi (capture.c;
 * the Wine e2e checks that line and --selftest's).  Its pure parts are
 * unit-tested (tests/unit/test_host_dxgi.c); the COM calls, the pointer
 * position's meaning (taken as the shape's top left, as Microsoft's
 * DesktopDuplication sample draws it), multi-monitor assembly and the
 * recovery below need a real Windows PC (README: "the Windows host").
 *
 * Waiting: AcquireNextFrame cannot be interrupted, so a grab polls every
 * output without waiting and then waits at most SLICE_MS on one of them
 * (in turn), checking capture_wakeup() between slices: a grab never
 * outlasts its timeout by more than a slice.
 *
 * Recovery: DXGI_ERROR_ACCESS_LOST (a desktop switch: UAC, the lock
 * screen, Ctrl+Alt+Del; a resolution or layout change; a full-screen
 * program) or any other failure releases every duplication; grabs then
 * re-create them every RETRY_MS (after moving the thread to the input
 * desktop when it may) and return 0 meanwhile.  One log line when lost,
 * one when back.  A new layout reallocates the frame (CAPTURE_F_RESIZED).
 *
 * Rotated outputs are refused at open (the desktop image then is in the
 * panel's orientation, which is not copied here yet): gdi takes over.
 *
 * Threads: the capture thread only, as every backend.
 */
#define COBJMACROS
#define INITGUID
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h" /* winsock2.h before windows.h */

#include <d3d11.h>
#include <dxgi1_2.h>

#include "host/capture/capture.h"
#include "host/capture/dxgi_conv.h"
#include "log.h"

#define MOD      "capture-dxgi"
#define SLICE_MS 16  /* longest single AcquireNextFrame wait */
#define RETRY_MS 500 /* re-create lost duplications this often */

/* dxgi_conv.c reads DXGI's metadata and shapes as they are */
_Static_assert(sizeof(RECT) == sizeof(struct dxgi_rect), "RECT");
_Static_assert(sizeof(DXGI_OUTDUPL_MOVE_RECT) == sizeof(struct dxgi_move),
               "DXGI_OUTDUPL_MOVE_RECT");
_Static_assert(offsetof(DXGI_OUTDUPL_MOVE_RECT, DestinationRect) ==
                   offsetof(struct dxgi_move, dst),
               "DXGI_OUTDUPL_MOVE_RECT.DestinationRect");
_Static_assert((int)DXGI_OUTDUPL_POINTER_SHAPE_TYPE_MONOCHROME ==
                       DXGI_CONV_MONOCHROME &&
                   (int)DXGI_OUTDUPL_POINTER_SHAPE_TYPE_COLOR ==
                       DXGI_CONV_COLOR &&
                   (int)DXGI_OUTDUPL_POINTER_SHAPE_TYPE_MASKED_COLOR ==
                       DXGI_CONV_MASKED_COLOR,
               "pointer kinds");

struct output {
    ID3D11Device *dev;
    ID3D11DeviceContext *ctx;
    IDXGIOutputDuplication *dup;
    ID3D11Texture2D *staging; /* CPU-readable: the damaged parts */
    struct monitor m;         /* place in the frame, size, device name */
    int fresh;                /* no image yet: the next is copied whole */
};

struct dxgi {
    struct output out[MONITORS_MAX];
    int n;                          /* 0: lost, re-created by the next grabs */
    int turn;                       /* the output the next grab waits on */
    int vx, vy, layout_w, layout_h; /* the virtual desktop */
    int width, height, stride;      /* the frame (the layout at its alloc) */
    uint8_t *frame;
    uint8_t *meta, *shape; /* GetFrame*Rects, GetFramePointerShape */
    UINT meta_cap, shape_cap;
    uint32_t *cursor_argb; /* CAPTURE_CURSOR_MAX^2 */
    struct capture_cursor cursor;
    int ptr_x, ptr_y, ptr_visible, ptr_owner; /* shape's top left */
    int shape_w, shape_h, hot_x, hot_y;       /* the last shape */
    LONGLONG ptr_time;
    HDESK desk; /* the input desktop the thread was moved to */
    int first, whole, resized;
    uint64_t lost_us, retry_us, seq;
    struct capture_rect rects[CAPTURE_MAX_RECTS];
};

/* HRESULT as text, with what it usually means here ("" if unknown). */
static const char *hr_name(HRESULT hr)
{
    switch (hr) {
    case E_NOTIMPL:
        return " E_NOTIMPL (no Desktop Duplication: Wine, or Windows 7)";
    case E_ACCESSDENIED:
        return " E_ACCESSDENIED (the secure desktop: UAC, the lock screen; "
               "or a service without a desktop)";
    case DXGI_ERROR_UNSUPPORTED:
        return " DXGI_ERROR_UNSUPPORTED (a Remote Desktop session, a basic "
               "display driver, or the output on another GPU)";
    case DXGI_ERROR_NOT_CURRENTLY_AVAILABLE:
        return " DXGI_ERROR_NOT_CURRENTLY_AVAILABLE (too many programs "
               "duplicate this output)";
    case DXGI_ERROR_SESSION_DISCONNECTED:
        return " DXGI_ERROR_SESSION_DISCONNECTED";
    case DXGI_ERROR_ACCESS_LOST:
        return " DXGI_ERROR_ACCESS_LOST (a desktop switch or a mode change)";
    case DXGI_ERROR_DEVICE_REMOVED:
        return " DXGI_ERROR_DEVICE_REMOVED (the GPU was reset or removed)";
    default:
        return "";
    }
}

/* "what returned 0x80004001 E_NOTIMPL (...)" (hr S_OK: "what") into
 * cap->why, the reason the framework logs; returns -ENODEV. */
static int fail(struct capture *cap, HRESULT hr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct capture *cap, HRESULT hr, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(cap->why, sizeof(cap->why), fmt, ap);
    va_end(ap);
    n = strlen(cap->why);
    if (hr != S_OK && n < sizeof(cap->why))
        snprintf(cap->why + n, sizeof(cap->why) - n, " returned 0x%08lx%s",
                 (unsigned long)hr, hr_name(hr));
    return -ENODEV;
}

static void release_output(struct output *o)
{
    if (o->staging != NULL)
        ID3D11Texture2D_Release(o->staging);
    if (o->dup != NULL)
        IDXGIOutputDuplication_Release(o->dup);
    if (o->ctx != NULL)
        ID3D11DeviceContext_Release(o->ctx);
    if (o->dev != NULL)
        ID3D11Device_Release(o->dev);
    memset(o, 0, sizeof(*o));
}

static void release_outputs(struct dxgi *d)
{
    for (int i = 0; i < d->n; i++)
        release_output(&d->out[i]);
    d->n = 0;
}

/* Duplicate one output (o->m: its place and name) on a device of its
 * adapter; 0 or -ENODEV with cap->why. */
static int duplicate(struct capture *cap, IDXGIAdapter1 *ad, IDXGIOutput *op,
                     struct output *o)
{
    static const D3D_FEATURE_LEVEL levels[] = { D3D_FEATURE_LEVEL_11_0,
                                                D3D_FEATURE_LEVEL_10_1,
                                                D3D_FEATURE_LEVEL_10_0,
                                                D3D_FEATURE_LEVEL_9_1 };
    IDXGIOutput1 *op1 = NULL;
    DXGI_OUTDUPL_DESC dd;
    D3D11_TEXTURE2D_DESC td;
    HRESULT hr;
    int r = -ENODEV;

    if (FAILED(hr = D3D11CreateDevice(
                   (IDXGIAdapter *)ad, D3D_DRIVER_TYPE_UNKNOWN, NULL, 0, levels,
                   4, D3D11_SDK_VERSION, &o->dev, NULL, &o->ctx))) {
        fail(cap, hr, "D3D11CreateDevice for %s", o->m.name);
        goto out;
    }
    if (FAILED(hr = IDXGIOutput_QueryInterface(op, &IID_IDXGIOutput1,
                                               (void **)&op1))) {
        fail(cap, hr, "QueryInterface(IDXGIOutput1) on %s", o->m.name);
        goto out;
    }
    if (FAILED(hr = IDXGIOutput1_DuplicateOutput(op1, (IUnknown *)o->dev,
                                                 &o->dup))) {
        fail(cap, hr, "IDXGIOutput1::DuplicateOutput on %s", o->m.name);
        goto out;
    }
    IDXGIOutputDuplication_GetDesc(o->dup, &dd);
    if ((dd.Rotation != DXGI_MODE_ROTATION_IDENTITY &&
         dd.Rotation != DXGI_MODE_ROTATION_UNSPECIFIED) ||
        (int)dd.ModeDesc.Width != o->m.width ||
        (int)dd.ModeDesc.Height != o->m.height) {
        fail(cap, S_OK,
             "%s is rotated (%d) or scaled (mode %ux%u, desktop %dx%d): not "
             "handled by dxgi yet",
             o->m.name, (int)dd.Rotation, dd.ModeDesc.Width, dd.ModeDesc.Height,
             o->m.width, o->m.height);
        goto out;
    }
    memset(&td, 0, sizeof(td));
    td.Width = dd.ModeDesc.Width;
    td.Height = dd.ModeDesc.Height;
    td.MipLevels = td.ArraySize = td.SampleDesc.Count = 1;
    td.Format = DXGI_FORMAT_B8G8R8A8_UNORM; /* DuplicateOutput's, always */
    td.Usage = D3D11_USAGE_STAGING;
    td.CPUAccessFlags = D3D11_CPU_ACCESS_READ;
    if (FAILED(hr = ID3D11Device_CreateTexture2D(o->dev, &td, NULL,
                                                 &o->staging))) {
        fail(cap, hr, "ID3D11Device::CreateTexture2D (%ux%u, staging) for %s",
             td.Width, td.Height, o->m.name);
        goto out;
    }
    o->fresh = 1;
    r = 0;
out:
    if (op1 != NULL)
        IDXGIOutput1_Release(op1);
    return r;
}

/* The outputs attached to the desktop, duplicated; the virtual desktop
 * they make (d->vx, vy, width, height).  0 or -ENODEV with cap->why. */
static int setup(struct capture *cap)
{
    struct dxgi *d = cap->priv;
    IDXGIFactory1 *fac = NULL;
    IDXGIAdapter1 *ad = NULL;
    IDXGIOutput *op = NULL;
    DXGI_OUTPUT_DESC od;
    RECT all = { INT_MAX, INT_MAX, INT_MIN, INT_MIN };
    HRESULT hr;
    int r = 0;

    if (FAILED(hr = CreateDXGIFactory1(&IID_IDXGIFactory1, (void **)&fac)))
        return fail(cap, hr, "CreateDXGIFactory1");
    for (UINT a = 0; r == 0 && IDXGIFactory1_EnumAdapters1(fac, a, &ad) !=
                                   DXGI_ERROR_NOT_FOUND;
         a++) {
        for (UINT i = 0;
             r == 0 && d->n < MONITORS_MAX &&
             IDXGIAdapter1_EnumOutputs(ad, i, &op) != DXGI_ERROR_NOT_FOUND;
             i++) {
            struct output *o = &d->out[d->n];
            const RECT *c = &od.DesktopCoordinates;

            if (SUCCEEDED(IDXGIOutput_GetDesc(op, &od)) &&
                od.AttachedToDesktop) {
                o->m = (struct monitor){ c->left, c->top, c->right - c->left,
                                         c->bottom - c->top, "" };
                if (WideCharToMultiByte(CP_UTF8, 0, od.DeviceName, -1,
                                        o->m.name, sizeof(o->m.name), NULL,
                                        NULL) <= 0)
                    snprintf(o->m.name, sizeof(o->m.name), "output %d",
                             d->n + 1);
                if ((r = duplicate(cap, ad, op, o)) == 0) {
                    d->n++;
                    all.left = c->left < all.left ? c->left : all.left;
                    all.top = c->top < all.top ? c->top : all.top;
                    all.right = c->right > all.right ? c->right : all.right;
                    all.bottom =
                        c->bottom > all.bottom ? c->bottom : all.bottom;
                } else {
                    release_output(o);
                }
            }
            IDXGIOutput_Release(op);
        }
        IDXGIAdapter1_Release(ad);
    }
    IDXGIFactory1_Release(fac);
    if (r == 0 && d->n == 0)
        r = fail(cap, S_OK, "DXGI lists no output attached to the desktop");
    if (r == 0 && (all.right - all.left > CAPTURE_MAX_SIDE ||
                   all.bottom - all.top > CAPTURE_MAX_SIDE))
        r = fail(cap, S_OK,
                 "a virtual desktop of %ldx%ld pixels (at most %d a side)",
                 (long)(all.right - all.left), (long)(all.bottom - all.top),
                 CAPTURE_MAX_SIDE);
    if (r != 0) {
        release_outputs(d);
        return r;
    }
    d->vx = all.left;
    d->vy = all.top;
    d->layout_w = all.right - all.left;
    d->layout_h = all.bottom - all.top;
    for (int i = 0; i < d->n; i++) {
        d->out[i].m.x -= d->vx;
        d->out[i].m.y -= d->vy;
    }
    d->turn = 0;
    return 0;
}

/* The outputs for capture_monitors: the primary (desktop 0,0) first. */
static void list_monitors(struct capture *cap)
{
    struct dxgi *d = cap->priv;
    struct monitor m[MONITORS_MAX];
    int n = 0;

    for (int i = 0; i < d->n; i++)
        if (d->out[i].m.x + d->vx == 0 && d->out[i].m.y + d->vy == 0)
            m[n++] = d->out[i].m;
    for (int i = 0; i < d->n; i++)
        if (d->out[i].m.x + d->vx != 0 || d->out[i].m.y + d->vy != 0)
            m[n++] = d->out[i].m;
    capture_set_monitors(cap, m, n);
}

/* A frame of the virtual desktop's size, black; 0 or -ENOMEM. */
static int alloc_frame(struct dxgi *d, int width, int height)
{
    uint8_t *f = calloc((size_t)width * (size_t)height, 4);

    if (f == NULL)
        return -ENOMEM;
    free(d->frame);
    d->frame = f;
    d->width = width;
    d->height = height;
    d->stride = width * 4;
    return 0;
}

/* The thread follows the input desktop (after a switch, when a service
 * may); failures are normal for a user's program and ignored. */
static void follow_input_desktop(struct dxgi *d)
{
    HDESK in = OpenInputDesktop(0, FALSE, GENERIC_ALL);

    if (in == NULL)
        return;
    if (!SetThreadDesktop(in)) {
        CloseDesktop(in);
        return;
    }
    if (d->desk != NULL)
        CloseDesktop(d->desk);
    d->desk = in;
}

static void dxgi_close(struct capture *cap)
{
    struct dxgi *d = cap->priv;

    release_outputs(d);
    free(d->frame);
    free(d->meta);
    free(d->shape);
    free(d->cursor_argb);
    if (d->desk != NULL)
        CloseDesktop(d->desk);
}

static int dxgi_open(struct capture *cap, const struct capture_opts *opts)
{
    struct dxgi *d = cap->priv;
    int r;

    (void)opts;
    d->ptr_owner = -1;
    d->cursor_argb = calloc(CAPTURE_CURSOR_MAX * CAPTURE_CURSOR_MAX, 4);
    if (d->cursor_argb == NULL)
        return -ENOMEM;
    if ((r = setup(cap)) != 0 ||
        (r = alloc_frame(d, d->layout_w, d->layout_h)) != 0)
        goto fail;
    list_monitors(cap);
    d->first = 1;
    hd_info(MOD,
            "virtual desktop %dx%d at %d,%d from %d output%s (Desktop "
            "Duplication, untested on real Windows: --capture gdi if it "
            "misbehaves)",
            d->width, d->height, d->vx, d->vy, d->n, d->n == 1 ? "" : "s");
    return 0;
fail:
    dxgi_close(cap);
    memset(d, 0, sizeof(*d));
    return r;
}

/* ---- one acquired frame ---------------------------------------------- */

/* Grow *buf to need bytes; 0 or -ENOMEM. */
static int grow(uint8_t **buf, UINT *cap, UINT need)
{
    uint8_t *p;

    if (need <= *cap)
        return 0;
    if ((p = realloc(*buf, need)) == NULL)
        return -ENOMEM;
    *buf = p;
    *cap = need;
    return 0;
}

/* What the frame changed on output o, in its own pixels (all of it when
 * the metadata cannot be read). */
static int frame_damage(struct dxgi *d, struct output *o,
                        const DXGI_OUTDUPL_FRAME_INFO *fi,
                        struct capture_rect *lr)
{
    UINT need = fi->TotalMetadataBufferSize, moves = 0, dirty = 0;

    if (o->fresh)
        goto all;
    if (need == 0)
        return 0; /* presented, but nothing on this output changed */
    if (grow(&d->meta, &d->meta_cap, need) != 0 ||
        FAILED(IDXGIOutputDuplication_GetFrameMoveRects(
            o->dup, need, (DXGI_OUTDUPL_MOVE_RECT *)d->meta, &moves)) ||
        FAILED(IDXGIOutputDuplication_GetFrameDirtyRects(
            o->dup, need - moves, (RECT *)(d->meta + moves), &dirty)))
        goto all;
    return dxgi_conv_damage((const struct dxgi_move *)d->meta,
                            (int)(moves / sizeof(DXGI_OUTDUPL_MOVE_RECT)),
                            (const struct dxgi_rect *)(d->meta + moves),
                            (int)(dirty / sizeof(RECT)), o->m.width,
                            o->m.height, lr);
all:
    lr[0] = (struct capture_rect){ 0, 0, o->m.width, o->m.height };
    return 1;
}

/* Copy what changed on output o (the acquired image res) into the frame
 * and the damage; 0, or an HRESULT failure. */
static HRESULT take_pixels(struct capture *cap, struct output *o,
                           const DXGI_OUTDUPL_FRAME_INFO *fi,
                           IDXGIResource *res, int *nr)
{
    struct dxgi *d = cap->priv;
    struct capture_rect lr[CAPTURE_MAX_RECTS];
    ID3D11Texture2D *tex = NULL;
    D3D11_MAPPED_SUBRESOURCE map;
    HRESULT hr;
    int n;

    if ((n = frame_damage(d, o, fi, lr)) == 0)
        return S_OK;
    if (FAILED(hr = IDXGIResource_QueryInterface(res, &IID_ID3D11Texture2D,
                                                 (void **)&tex)))
        return hr;
    /* only the damage crosses to system memory */
    for (int i = 0; i < n; i++) {
        const struct capture_rect *r = &lr[i];
        D3D11_BOX box = { (UINT)r->x,          (UINT)r->y,          0,
                          (UINT)(r->x + r->w), (UINT)(r->y + r->h), 1 };

        ID3D11DeviceContext_CopySubresourceRegion(
            o->ctx, (ID3D11Resource *)o->staging, 0, (UINT)r->x, (UINT)r->y, 0,
            (ID3D11Resource *)tex, 0, &box);
    }
    ID3D11Texture2D_Release(tex);
    if (FAILED(hr =
                   ID3D11DeviceContext_Map(o->ctx, (ID3D11Resource *)o->staging,
                                           0, D3D11_MAP_READ, 0, &map)))
        return hr;
    for (int i = 0; i < n; i++) {
        const struct capture_rect *r = &lr[i];

        for (int y = r->y; y < r->y + r->h; y++)
            memcpy(d->frame + (size_t)(o->m.y + y) * (size_t)d->stride +
                       (size_t)(o->m.x + r->x) * 4,
                   (const uint8_t *)map.pData + (size_t)y * map.RowPitch +
                       (size_t)r->x * 4,
                   (size_t)r->w * 4);
        cap->stats.bytes_copied += (uint64_t)r->w * (uint64_t)r->h * 4;
        capture_rects_add(
            d->rects, nr, d->width, d->height,
            (struct capture_rect){ o->m.x + r->x, o->m.y + r->y, r->w, r->h });
    }
    ID3D11DeviceContext_Unmap(o->ctx, (ID3D11Resource *)o->staging, 0);
    cap->stats.reads++;
    o->fresh = 0;
    return S_OK;
}

/* The pointer as output i reports it (which report counts:
 * dxgi_conv_pointer_counts); the CAPTURE_F_CURSOR_* flags earned. */
static unsigned take_pointer(struct dxgi *d, int i,
                             const DXGI_OUTDUPL_FRAME_INFO *fi)
{
    static const uint32_t hidden = 0;
    const DXGI_OUTDUPL_POINTER_POSITION *p = &fi->PointerPosition;
    struct output *o = &d->out[i];
    DXGI_OUTDUPL_POINTER_SHAPE_INFO si;
    unsigned fl = 0;
    UINT got = 0;
    int w, h, was = d->ptr_visible;

    if (dxgi_conv_pointer_counts(i, p->Visible,
                                 fi->LastMouseUpdateTime.QuadPart, d->ptr_owner,
                                 d->ptr_time)) {
        d->ptr_owner = i;
        d->ptr_time = fi->LastMouseUpdateTime.QuadPart;
        d->ptr_visible = p->Visible != 0;
        d->ptr_x = o->m.x + p->Position.x;
        d->ptr_y = o->m.y + p->Position.y;
        fl |= CAPTURE_F_CURSOR_MOVED;
    }
    if (fi->PointerShapeBufferSize > 0 &&
        grow(&d->shape, &d->shape_cap, fi->PointerShapeBufferSize) == 0 &&
        SUCCEEDED(IDXGIOutputDuplication_GetFramePointerShape(
            o->dup, d->shape_cap, d->shape, &got, &si)) &&
        dxgi_conv_pointer(si.Type, (int)si.Width, (int)si.Height, (int)si.Pitch,
                          d->shape, got, d->cursor_argb, &w, &h) == 0) {
        d->shape_w = w;
        d->shape_h = h;
        d->hot_x = si.HotSpot.x;
        d->hot_y = si.HotSpot.y;
        fl |= CAPTURE_F_CURSOR_SHAPE | CAPTURE_F_CURSOR_MOVED;
    }
    if (d->ptr_visible != was)
        fl |= CAPTURE_F_CURSOR_SHAPE;
    if (fl & CAPTURE_F_CURSOR_SHAPE)
        d->cursor.serial++;
    d->cursor.x = d->ptr_x + d->hot_x;
    d->cursor.y = d->ptr_y + d->hot_y;
    if (d->ptr_visible && d->shape_w > 0) {
        d->cursor.argb = d->cursor_argb;
        d->cursor.width = d->shape_w;
        d->cursor.height = d->shape_h;
        d->cursor.hot_x = d->hot_x;
        d->cursor.hot_y = d->hot_y;
    } else { /* hidden (a video, a game): one clear pixel */
        d->cursor.argb = &hidden;
        d->cursor.width = d->cursor.height = 1;
        d->cursor.hot_x = d->cursor.hot_y = 0;
    }
    return fl;
}

/*
 * Acquire output i's next frame, waiting up to wait_ms, and take its
 * pixels and pointer.  1 took one, 0 none came, -1 failed (*err: why;
 * ACCESS_LOST is the usual one).
 */
static int acquire(struct capture *cap, int i, UINT wait_ms, unsigned *flags,
                   int *nr, HRESULT *err)
{
    struct dxgi *d = cap->priv;
    struct output *o = &d->out[i];
    DXGI_OUTDUPL_FRAME_INFO fi;
    IDXGIResource *res = NULL;
    HRESULT hr;

    hr = IDXGIOutputDuplication_AcquireNextFrame(o->dup, wait_ms, &fi, &res);
    if (hr == DXGI_ERROR_WAIT_TIMEOUT)
        return 0;
    if (FAILED(hr)) {
        *err = hr;
        return -1;
    }
    /* LastPresentTime 0: only the pointer changed (a fresh output's
     * first image is taken whatever it says) */
    if (fi.LastPresentTime.QuadPart != 0 || o->fresh)
        hr = take_pixels(cap, o, &fi, res, nr);
    *flags |= take_pointer(d, i, &fi);
    IDXGIResource_Release(res);
    IDXGIOutputDuplication_ReleaseFrame(o->dup);
    if (FAILED(hr)) {
        *err = hr;
        return -1;
    }
    return 1;
}

/* Every duplication released after a failure; grabs re-create them. */
static void lose(struct capture *cap, HRESULT hr)
{
    struct dxgi *d = cap->priv;

    hd_info(MOD, "duplication lost (0x%08lx%s): re-creating it every %d ms",
            (unsigned long)hr, hr_name(hr), RETRY_MS);
    release_outputs(d);
    d->lost_us = d->retry_us = capture_now_us();
}

/* Re-create the duplications when a retry is due: 0 when they are back
 * (the frame resized if the layout changed, repainted whole), else
 * -EAGAIN. */
static int recover(struct capture *cap)
{
    struct dxgi *d = cap->priv;
    uint64_t now = capture_now_us();

    if (now < d->retry_us)
        return -EAGAIN;
    d->retry_us = now + RETRY_MS * 1000ull;
    follow_input_desktop(d);
    cap->why[0] = '\0';
    if (setup(cap) != 0) {
        hd_debug(MOD, "still lost: %s", cap->why);
        return -EAGAIN;
    }
    if (d->layout_w != d->width || d->layout_h != d->height) {
        if (alloc_frame(d, d->layout_w, d->layout_h) != 0) {
            hd_warn(MOD, "no memory for a %dx%d frame: retrying", d->layout_w,
                    d->layout_h);
            release_outputs(d);
            return -EAGAIN;
        }
        d->resized = 1;
    }
    memset(d->frame, 0, (size_t)d->stride * (size_t)d->height);
    list_monitors(cap);
    d->whole = 1;
    d->ptr_owner = -1;
    hd_info(MOD, "duplication back after %llu ms: %dx%d at %d,%d, %d output%s",
            (unsigned long long)((now - d->lost_us) / 1000), d->width,
            d->height, d->vx, d->vy, d->n, d->n == 1 ? "" : "s");
    return 0;
}

/* A grab may return: something happened and no output still waits for
 * its first image. */
static int ready(const struct dxgi *d, unsigned flags, int nr)
{
    for (int i = 0; i < d->n; i++)
        if (d->out[i].fresh)
            return 0;
    return flags != 0 || nr > 0 || d->first || d->whole || d->resized;
}

/* Poll every output once without waiting; 0, or -1 after lose(). */
static int poll_all(struct capture *cap, unsigned *flags, int *nr)
{
    struct dxgi *d = cap->priv;
    HRESULT err = S_OK;

    for (int i = 0; i < d->n; i++)
        if (acquire(cap, i, 0, flags, nr, &err) < 0) {
            lose(cap, err);
            return -1;
        }
    return 0;
}

static int dxgi_grab(struct capture *cap, struct capture_frame *out,
                     int timeout_ms)
{
    struct dxgi *d = cap->priv;
    uint64_t now = capture_now_us(), deadline;
    HRESULT err = S_OK;
    unsigned flags = 0;
    int nr = 0;

    deadline = timeout_ms < 0 ? UINT64_MAX : now + (uint64_t)timeout_ms * 1000;
    if (atomic_exchange(&cap->refresh, 0))
        d->whole = 1;
    for (;;) {
        if (d->n == 0 && recover(cap) != 0) {
            /* still lost: sleep until the next try */
            uint64_t until = d->retry_us < deadline ? d->retry_us : deadline;

            if (now >= deadline ||
                os_wake_wait(&cap->wake, (int)((until - now + 999) / 1000)))
                return 0;
            now = capture_now_us();
            continue;
        }
        if (poll_all(cap, &flags, &nr) == 0 && ready(d, flags, nr))
            break;
        now = capture_now_us();
        if (d->n == 0)
            continue;
        if (now >= deadline || os_wake_wait(&cap->wake, 0))
            return 0;
        {
            uint64_t left = (deadline - now + 999) / 1000;
            int i = d->turn;

            d->turn = (d->turn + 1) % d->n;
            if (acquire(cap, i, left < SLICE_MS ? (UINT)left : SLICE_MS, &flags,
                        &nr, &err) < 0)
                lose(cap, err);
            else if (ready(d, flags, nr))
                break;
        }
        now = capture_now_us();
    }
    if (d->first || d->whole || d->resized) {
        nr = 1;
        d->rects[0] = (struct capture_rect){ 0, 0, d->width, d->height };
    }
    if (nr > 0)
        flags |= CAPTURE_F_PIXELS;
    if (d->first)
        flags |= CAPTURE_F_CURSOR_MOVED | CAPTURE_F_CURSOR_SHAPE;
    if (d->resized)
        flags |= CAPTURE_F_RESIZED;
    d->first = d->whole = d->resized = 0;
    out->data = d->frame;
    out->stride = d->stride;
    out->width = d->width;
    out->height = d->height;
    out->flags = flags;
    out->n_rects = nr;
    out->rects = d->rects;
    out->cursor = d->cursor;
    out->time_us = capture_now_us();
    out->seq = ++d->seq;
    return 1;
}

const struct capture_driver capture_driver_dxgi = {
    .name = "dxgi",
    .description = "Windows DXGI Desktop Duplication of every output "
                   "(untested on real Windows)",
    .priv_size = sizeof(struct dxgi),
    .open = dxgi_open,
    .grab = dxgi_grab,
    .close = dxgi_close,
};

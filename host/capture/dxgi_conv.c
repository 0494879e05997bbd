/*
 * Desktop Duplication's damage and pointer shapes in the capture's terms
 * (host/capture/dxgi_conv.h).  No Windows header: unit-tested natively.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "host/capture/dxgi_conv.h"

/* A pixel that inverts the screen, until the outline pass: alpha 0 with
 * a colour, which no premultiplied pixel can be. */
#define PX_INVERT  0x00000001u
#define PX_BLACK   0xff000000u
#define PX_WHITE   0xffffffffu
#define PX_CLEAR   0x00000000u
#define ALPHA_FULL 0xffu
#define MASK_XOR   0xffu /* masked colour: the mask byte of an XOR pixel */

static struct capture_rect from_rect(const struct dxgi_rect *r)
{
    return (struct capture_rect){ r->left, r->top, r->right - r->left,
                                  r->bottom - r->top };
}

int dxgi_conv_damage(const struct dxgi_move *moves, int n_moves,
                     const struct dxgi_rect *dirty, int n_dirty, int width,
                     int height, struct capture_rect *rects)
{
    int n = 0;

    for (int i = 0; i < n_moves; i++)
        capture_rects_add(rects, &n, width, height, from_rect(&moves[i].dst));
    for (int i = 0; i < n_dirty; i++)
        capture_rects_add(rects, &n, width, height, from_rect(&dirty[i]));
    return n;
}

/* Premultiply a straight-alpha BGRA pixel into 0xAARRGGBB. */
static uint32_t premultiply(const uint8_t *p)
{
    uint32_t a = p[3];
    uint32_t r = (p[2] * a + 127) / 255, g = (p[1] * a + 127) / 255;
    uint32_t b = (p[0] * a + 127) / 255;

    return a << 24 | r << 16 | g << 8 | b;
}

static uint32_t masked(const uint8_t *p)
{
    uint32_t rgb = (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];

    if (p[3] != MASK_XOR)
        return ALPHA_FULL << 24 | rgb;      /* replaces the screen */
    return rgb == 0 ? PX_CLEAR : PX_INVERT; /* XOR 0 changes nothing */
}

static uint32_t mono(const uint8_t *and_row, const uint8_t *xor_row, int x)
{
    int bit = 7 - (x & 7), a = (and_row[x >> 3] >> bit) & 1;
    int xo = (xor_row[x >> 3] >> bit) & 1;

    if (a)
        return xo ? PX_INVERT : PX_CLEAR;
    return xo ? PX_WHITE : PX_BLACK;
}

/* Inverting pixels become black with a white edge in the clear pixels
 * around them. */
static void outline(uint32_t *px, int w, int h)
{
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            if (px[y * w + x] != PX_INVERT)
                continue;
            px[y * w + x] = PX_BLACK;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int nx = x + dx, ny = y + dy;

                    if (nx >= 0 && ny >= 0 && nx < w && ny < h &&
                        px[ny * w + nx] == PX_CLEAR)
                        px[ny * w + nx] = PX_WHITE;
                }
        }
    }
}

int dxgi_conv_pointer(unsigned kind, int width, int height, int pitch,
                      const uint8_t *buf, size_t len, uint32_t *out, int *w,
                      int *h)
{
    int rows = kind == DXGI_CONV_MONOCHROME ? height / 2 : height;
    int ow, oh, bytes_px = kind == DXGI_CONV_MONOCHROME ? 0 : 4;

    *w = *h = 0;
    if ((kind != DXGI_CONV_MONOCHROME && kind != DXGI_CONV_COLOR &&
         kind != DXGI_CONV_MASKED_COLOR) ||
        width <= 0 || rows <= 0 || pitch <= 0 ||
        (bytes_px ? pitch / bytes_px < width : pitch < (width + 7) / 8) ||
        len < (size_t)pitch *
                  (size_t)(kind == DXGI_CONV_MONOCHROME ? rows * 2 : rows))
        return -EINVAL;
    ow = width > CAPTURE_CURSOR_MAX ? CAPTURE_CURSOR_MAX : width;
    oh = rows > CAPTURE_CURSOR_MAX ? CAPTURE_CURSOR_MAX : rows;
    for (int y = 0; y < oh; y++) {
        const uint8_t *row = buf + (size_t)y * (size_t)pitch;

        for (int x = 0; x < ow; x++) {
            uint32_t *o = &out[y * ow + x];

            if (kind == DXGI_CONV_MONOCHROME)
                *o = mono(row, row + (size_t)rows * (size_t)pitch, x);
            else if (kind == DXGI_CONV_COLOR)
                *o = premultiply(row + (size_t)x * 4);
            else
                *o = masked(row + (size_t)x * 4);
        }
    }
    outline(out, ow, oh);
    *w = ow;
    *h = oh;
    return 0;
}

int dxgi_conv_pointer_counts(int i, int visible, int64_t when, int owner,
                             int64_t owner_time)
{
    if (when == 0)
        return 0;
    if (!visible)
        return owner == i;
    return owner < 0 || owner == i || when >= owner_time;
}

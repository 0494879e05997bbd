/*
 * The pure parts of the dxgi capture (host/capture/dxgi.c), kept free of
 * Windows headers so that the unit tests run on any system
 * (tests/unit/test_host_dxgi.c): what a Desktop Duplication frame's move
 * and dirty rectangles damage, and a pointer shape of each DXGI kind
 * turned into the premultiplied ARGB the capture contract carries
 * (capture.h: struct capture_cursor).
 *
 * The structs mirror the Windows ones byte for byte (RECT, and
 * DXGI_OUTDUPL_MOVE_RECT: a POINT then a RECT, all 32-bit LONGs); dxgi.c
 * checks that at compile time and hands DXGI's metadata buffer over as it
 * is.  The pointer kinds are DXGI_OUTDUPL_POINTER_SHAPE_TYPE's values.
 *
 * Threads: none of their own; any thread.
 */
#ifndef HD_HOST_CAPTURE_DXGI_CONV_H
#define HD_HOST_CAPTURE_DXGI_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "host/capture/capture.h"

struct dxgi_rect { /* RECT: right and bottom exclusive */
    int32_t left, top, right, bottom;
};

struct dxgi_move { /* DXGI_OUTDUPL_MOVE_RECT */
    int32_t src_x, src_y;
    struct dxgi_rect dst;
};

enum {
    DXGI_CONV_MONOCHROME = 1,   /* 1 bpp: AND mask rows, then XOR rows */
    DXGI_CONV_COLOR = 2,        /* 32 bpp BGRA, straight alpha */
    DXGI_CONV_MASKED_COLOR = 4, /* 32 bpp BGR, A = 0: opaque, 0xff: XOR */
};

/*
 * The pixels of one output (width x height) that a frame changed, as
 * rectangles in the output's own coordinates: each move's destination
 * (its source is unchanged or listed among the dirty rectangles: DXGI
 * reports the uncovered area as dirty) and each dirty rectangle, clipped
 * to the output, joined by capture_rects_add (at most CAPTURE_MAX_RECTS
 * in rects, overlaps merged).  Returns how many; empty and inverted
 * rectangles are dropped.
 */
int dxgi_conv_damage(const struct dxgi_move *moves, int n_moves,
                     const struct dxgi_rect *dirty, int n_dirty, int width,
                     int height, struct capture_rect *rects);

/*
 * A pointer shape as GetFramePointerShape gives it (kind, width, height
 * as reported: a monochrome shape's height counts both masks, pitch in
 * bytes, buf of len bytes) into out: *w x *h pixels of premultiplied
 * ARGB (0xAARRGGBB), row after row, at most CAPTURE_CURSOR_MAX square
 * (out has room for that; larger shapes are cropped, keeping the top
 * left where the hotspot normally is).  Pixels that invert the screen
 * (monochrome AND=1 XOR=1, masked colour with the mask set and a non-zero
 * colour) cannot be shown as ARGB: they become opaque black, and their
 * transparent neighbours opaque white, so that an I-beam stays visible on any
 * background.  Returns 0 with *w and *h, or -EINVAL (unknown kind, empty
 * shape, pitch or buffer too small).
 */
int dxgi_conv_pointer(unsigned kind, int width, int height, int pitch,
                      const uint8_t *buf, size_t len, uint32_t *out, int *w,
                      int *h);

/*
 * Does output i's pointer report (its LastMouseUpdateTime when, 0 = no
 * report; visible: PointerPosition.Visible) move the pointer?  Every
 * output reports, the others saying "not visible": a report counts when
 * it shows the pointer and is not older than the owner's last one, or
 * comes from the owner (the output that showed it last, -1: none yet;
 * owner_time its report's time), as Microsoft's DesktopDuplication
 * sample decides.  1 yes (i becomes the owner), 0 no.
 */
int dxgi_conv_pointer_counts(int i, int visible, int64_t when, int owner,
                             int64_t owner_time);

#endif

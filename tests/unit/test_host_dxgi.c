/*
 * Unit tests for host/capture/dxgi_conv: the pure parts of the Windows
 * Desktop Duplication capture, run natively (the capture itself cannot
 * run here: Wine has no Desktop Duplication).  The damage a frame's move
 * and dirty rectangles make, and each DXGI pointer kind (monochrome,
 * colour, masked colour) as the premultiplied ARGB the viewer draws, and
 * which output's pointer report counts.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "host/capture/dxgi_conv.h"
#include "tests/harness.h"

static uint32_t px[CAPTURE_CURSOR_MAX * CAPTURE_CURSOR_MAX];

static int has_rect(const struct capture_rect *r, int n, int x, int y, int w,
                    int h)
{
    for (int i = 0; i < n; i++)
        if (r[i].x == x && r[i].y == y && r[i].w == w && r[i].h == h)
            return 1;
    return 0;
}

/* a window dragged: the move's destination and the uncovered strip */
static void damage_move_and_dirty(void)
{
    struct dxgi_move mv = { 100, 100, { 140, 100, 340, 250 } };
    struct dxgi_rect dirty[] = { { 100, 100, 140, 250 } };
    struct capture_rect r[CAPTURE_MAX_RECTS];
    int n = dxgi_conv_damage(&mv, 1, dirty, 1, 1920, 1080, r);

    HT_EQ_INT(n, 2);
    HT_CHECK(has_rect(r, n, 140, 100, 200, 150));
    HT_CHECK(has_rect(r, n, 100, 100, 40, 150));
}

/* clipped to the output, empty and inverted ones dropped, overlaps
 * joined */
static void damage_clipped_and_joined(void)
{
    struct dxgi_rect dirty[] = {
        { -10, -10, 20, 20 },       /* off the top left */
        { 1900, 1070, 2000, 1100 }, /* off the bottom right */
        { 50, 50, 50, 60 },         /* empty */
        { 80, 80, 70, 90 },         /* inverted */
        { 500, 500, 600, 600 },     { 550, 550, 650, 650 }, /* overlap */
    };
    struct capture_rect r[CAPTURE_MAX_RECTS];
    int n = dxgi_conv_damage(NULL, 0, dirty, 6, 1920, 1080, r);

    HT_EQ_INT(n, 3);
    HT_CHECK(has_rect(r, n, 0, 0, 20, 20));
    HT_CHECK(has_rect(r, n, 1900, 1070, 20, 10));
    HT_CHECK(has_rect(r, n, 500, 500, 150, 150));
}

/* r lies inside one of rects[n] */
static int covered(const struct capture_rect *rects, int n,
                   struct capture_rect r)
{
    for (int i = 0; i < n; i++)
        if (r.x >= rects[i].x && r.y >= rects[i].y &&
            r.x + r.w <= rects[i].x + rects[i].w &&
            r.y + r.h <= rects[i].y + rects[i].h)
            return 1;
    return 0;
}

/* more than CAPTURE_MAX_RECTS: merged, still covering every one, no two
 * overlapping */
static void damage_many_rects(void)
{
    struct dxgi_rect dirty[100];
    struct capture_rect r[CAPTURE_MAX_RECTS];
    int n, bad = 0;

    for (int i = 0; i < 100; i++)
        dirty[i] = (struct dxgi_rect){ i * 10, 0, i * 10 + 5, 5 };
    n = dxgi_conv_damage(NULL, 0, dirty, 100, 1920, 1080, r);
    HT_CHECK(n >= 1 && n <= CAPTURE_MAX_RECTS);
    for (int i = 0; i < 100; i++)
        bad += !covered(r, n, (struct capture_rect){ i * 10, 0, 5, 5 });
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            bad += r[i].x < r[j].x + r[j].w && r[j].x < r[i].x + r[i].w &&
                   r[i].y < r[j].y + r[j].h && r[j].y < r[i].y + r[i].h;
    HT_EQ_INT(bad, 0);
}

/*
 * A 16x4 monochrome shape (pitch 2, 8 rows: AND then XOR), row by row:
 * 0: AND 0 XOR 0: black;  1: AND 0 XOR 1: white;  2: AND 1 XOR 0:
 * clear;  3: AND 1 XOR 1 in column 5 only (inverts), clear elsewhere.
 */
static void pointer_monochrome(void)
{
    uint8_t m[16] = {
        0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, /* AND */
        0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x04, 0x00, /* XOR */
    };
    int w, h;

    HT_EQ_INT(dxgi_conv_pointer(DXGI_CONV_MONOCHROME, 16, 8, 2, m, sizeof(m),
                                px, &w, &h),
              0);
    HT_EQ_INT(w, 16);
    HT_EQ_INT(h, 4);
    HT_EQ_INT(px[0 * 16 + 3], 0xff000000u);
    HT_EQ_INT(px[1 * 16 + 15], 0xffffffffu);
    HT_EQ_INT(px[2 * 16 + 0], 0);
    /* the inverting pixel: black, its clear neighbours a white edge */
    HT_EQ_INT(px[3 * 16 + 5], 0xff000000u);
    HT_EQ_INT(px[3 * 16 + 4], 0xffffffffu);
    HT_EQ_INT(px[3 * 16 + 6], 0xffffffffu);
    HT_EQ_INT(px[2 * 16 + 5], 0xffffffffu);
    HT_EQ_INT(px[3 * 16 + 7], 0);
    HT_EQ_INT(px[2 * 16 + 7], 0);
    /* ... but what was drawn already stays */
    HT_EQ_INT(px[1 * 16 + 5], 0xffffffffu);
}

/* colour: straight alpha premultiplied (BGRA in, 0xAARRGGBB out) */
static void pointer_color(void)
{
    uint8_t c[2 * 4 + 8] = {
        0x20, 0x40, 0xff, 0xff, /* opaque red-ish */
        0x00, 0xff, 0x00, 0x80, /* half green */
    };
    int w, h;

    /* a pitch wider than the row (padding ignored), two rows */
    memcpy(c + 8, c, 8);
    HT_EQ_INT(
        dxgi_conv_pointer(DXGI_CONV_COLOR, 2, 2, 8, c, sizeof(c), px, &w, &h),
        0);
    HT_EQ_INT(w, 2);
    HT_EQ_INT(h, 2);
    HT_EQ_INT(px[0], 0xffff4020u);
    HT_EQ_INT(px[1], 0x80008000u);
    HT_EQ_INT(px[2], 0xffff4020u);
}

/* masked colour: mask 0 replaces the screen, mask 0xff XORs it */
static void pointer_masked_color(void)
{
    uint8_t c[4 * 4] = {
        0x10, 0x20, 0x30, 0x00, /* opaque */
        0x00, 0x00, 0x00, 0xff, /* XOR 0: clear */
        0xff, 0xff, 0xff, 0xff, /* XOR white: inverts */
        0x00, 0x00, 0x00, 0xff, /* clear, beside it: edge */
    };
    int w, h;

    HT_EQ_INT(dxgi_conv_pointer(DXGI_CONV_MASKED_COLOR, 4, 1, 16, c, sizeof(c),
                                px, &w, &h),
              0);
    HT_EQ_INT(w, 4);
    HT_EQ_INT(h, 1);
    HT_EQ_INT(px[0], 0xff302010u);
    HT_EQ_INT(px[1], 0xffffffffu);
    HT_EQ_INT(px[2], 0xff000000u);
    HT_EQ_INT(px[3], 0xffffffffu);
}

/* large shapes are cropped; bad ones refused */
static void pointer_limits(void)
{
    static uint8_t big[300 * 300 * 4];
    uint8_t one[4] = { 0 };
    int w, h;

    HT_EQ_INT(dxgi_conv_pointer(DXGI_CONV_COLOR, 300, 300, 1200, big,
                                sizeof(big), px, &w, &h),
              0);
    HT_EQ_INT(w, CAPTURE_CURSOR_MAX);
    HT_EQ_INT(h, CAPTURE_CURSOR_MAX);
    HT_EQ_INT(dxgi_conv_pointer(3, 1, 1, 4, one, 4, px, &w, &h), -EINVAL);
    HT_EQ_INT(w, 0);
    HT_EQ_INT(dxgi_conv_pointer(DXGI_CONV_COLOR, 2, 1, 4, one, 4, px, &w, &h),
              -EINVAL); /* pitch shorter than a row */
    HT_EQ_INT(dxgi_conv_pointer(DXGI_CONV_COLOR, 1, 2, 4, one, 4, px, &w, &h),
              -EINVAL); /* buffer shorter than the rows */
    HT_EQ_INT(
        dxgi_conv_pointer(DXGI_CONV_MONOCHROME, 8, 1, 1, one, 4, px, &w, &h),
        -EINVAL); /* no row after halving */
    HT_EQ_INT(
        dxgi_conv_pointer(DXGI_CONV_MONOCHROME, 8, 2, 1, one, 1, px, &w, &h),
        -EINVAL); /* the XOR row missing */
}

/* two outputs: which pointer report moves the pointer */
static void pointer_owner(void)
{
    /* no report; the first visible one */
    HT_EQ_INT(dxgi_conv_pointer_counts(0, 1, 0, -1, 0), 0);
    HT_EQ_INT(dxgi_conv_pointer_counts(0, 1, 100, -1, 0), 1);
    /* output 1 says "not visible" while 0 has it: ignored */
    HT_EQ_INT(dxgi_conv_pointer_counts(1, 0, 120, 0, 100), 0);
    /* the owner hides it (a video): counts */
    HT_EQ_INT(dxgi_conv_pointer_counts(0, 0, 130, 0, 100), 1);
    /* the pointer crosses to output 1: a newer visible report counts, an
     * older one (read late) does not */
    HT_EQ_INT(dxgi_conv_pointer_counts(1, 1, 140, 0, 130), 1);
    HT_EQ_INT(dxgi_conv_pointer_counts(1, 1, 90, 0, 130), 0);
}

int main(void)
{
    ht_init("host-dxgi");
    HT_RUN(damage_move_and_dirty);
    HT_RUN(damage_clipped_and_joined);
    HT_RUN(damage_many_rects);
    HT_RUN(pointer_monochrome);
    HT_RUN(pointer_color);
    HT_RUN(pointer_masked_color);
    HT_RUN(pointer_limits);
    HT_RUN(pointer_owner);
    return ht_finish();
}

/*
 * The test card both test clients show (hd-testcard on X11, hd-wlcard on
 * Wayland): a pure function of its size.  Colour bars in the top third,
 * grey/red/green/blue ramps below them, then fine detail: a band of
 * text-like glyphs (random 5x7 bitmaps, black on white, as a page of small
 * print), one-pixel line pairs and a 2x2 checkerboard, and at the bottom
 * a light strip echo_h rows high.  Header-only (one static function).
 */
#ifndef HD_TESTS_E2E_CARD_H
#define HD_TESTS_E2E_CARD_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t card_rgb(int r, int g, int b)
{
    return (uint32_t)r << 16 | (uint32_t)g << 8 | (uint32_t)b;
}

/* A deterministic stream of bits for the glyphs. */
static inline uint32_t card_lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* Paint the card into px (w * h words, 0x00RRGGBB). */
static inline void card_paint(uint32_t *px, int w, int h, int echo_h)
{
    static const int bars[8][3] = { { 191, 191, 191 }, { 191, 191, 0 },
                                    { 0, 191, 191 },   { 0, 191, 0 },
                                    { 191, 0, 191 },   { 191, 0, 0 },
                                    { 0, 0, 191 },     { 16, 16, 16 } };
    int y1 = h / 3, y2 = h / 2, y3 = h - echo_h, x, y, i;
    uint32_t seed = 12345;

    for (y = 0; y < h; y++) {
        for (x = 0; x < w; x++) {
            uint32_t *p = &px[(size_t)y * w + x];
            int v = x * 255 / (w > 1 ? w - 1 : 1);

            if (y < y1) {
                const int *b = bars[x * 8 / w];
                *p = card_rgb(b[0], b[1], b[2]);
            } else if (y < y2) {
                switch ((y - y1) * 4 / (y2 - y1)) {
                case 0:
                    *p = card_rgb(v, v, v);
                    break;
                case 1:
                    *p = card_rgb(v, 0, 0);
                    break;
                case 2:
                    *p = card_rgb(0, v, 0);
                    break;
                default:
                    *p = card_rgb(0, 0, v);
                    break;
                }
            } else if (y >= y3) {
                *p = card_rgb(240, 240, 240); /* the echo strip */
            } else if (x < w * 2 / 3) {
                *p = card_rgb(255, 255, 255); /* paper for the glyphs */
            } else if (y < (y2 + y3) / 2) {
                *p = (x & 2) ? card_rgb(0, 0, 0) : card_rgb(255, 255, 255);
            } else {
                *p = ((x >> 1) + (y >> 1)) & 1 ? card_rgb(40, 40, 40)
                                               : card_rgb(220, 220, 220);
            }
        }
    }
    /* small print: 5x7 glyphs on a 7x10 grid, with word gaps */
    for (y = y2 + 4; y + 10 <= y3; y += 10) {
        for (x = 4; x + 7 <= w * 2 / 3; x += 7) {
            if (card_lcg(&seed) % 6 == 0)
                continue;
            for (i = 0; i < 35; i++)
                if (card_lcg(&seed) & 1)
                    px[(size_t)(y + i / 5) * w + x + i % 5] = card_rgb(0, 0, 0);
        }
    }
}

/*
 * The pointer image hd-wlcard --cursor sets over its window:
 * CARD_CURSOR_W x CARD_CURSOR_H premultiplied ARGB words into px, an
 * arrow (white, black edge) with its tip, the hotspot, at 1,1; the rest
 * transparent.
 */
#define CARD_CURSOR_W  12
#define CARD_CURSOR_H  18
#define CARD_CURSOR_HX 1
#define CARD_CURSOR_HY 1
static inline void card_cursor(uint32_t *px)
{
    for (int y = 0; y < CARD_CURSOR_H; y++)
        for (int x = 0; x < CARD_CURSOR_W; x++) {
            int in = y >= 1 && x >= 1 && x <= y && y < CARD_CURSOR_H - 1 &&
                     x < CARD_CURSOR_W - 1;
            int edge = in && (x == 1 || x == y || y == CARD_CURSOR_H - 2 ||
                              x == CARD_CURSOR_W - 2);

            px[y * CARD_CURSOR_W + x] = !in    ? 0
                                        : edge ? 0xff000000u
                                               : 0xffffffffu;
        }
}

#endif

/*
 * A deterministic synthetic desktop for the codec test and benchmark:
 * a wallpaper, an editor window being typed into, a text window that
 * scrolls, and a window dragged across the screen, all drawn with a tiny
 * blocky "font" (3x5 strokes scaled to 6x10 in an 8x16 cell) so that the
 * picture has the sharp, high-contrast edges of real text.
 *
 * The sequence has three phases of `phase` frames each: typing (one
 * character per frame), scrolling (8 pixels per frame) and dragging (a
 * window moves 1/160 of the width per frame).  Frame n is a pure function
 * of n; synth_damage lists the rectangles that differ between frames n-1
 * and n (what XDamage would report), and synth_render draws any part of
 * frame n, so a frame can be updated in place by redrawing its damage.
 *
 * Header-only (static inline) so tests and benchmarks share it without a
 * build rule.  BGRA pixels, 4 bytes each.
 */
#ifndef HD_TESTS_SYNTH_H
#define HD_TESTS_SYNTH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "venc.h"

#define SYNTH_CELL_W 8
#define SYNTH_CELL_H 16
#define SYNTH_SCROLL 8

struct synth_box {
    int x, y, w, h;
};

struct synth {
    int w, h, phase;
    struct synth_box editor, scroller, dragged;
};

static inline void synth_init(struct synth *s, int w, int h, int phase)
{
    memset(s, 0, sizeof(*s));
    s->w = w;
    s->h = h;
    s->phase = phase;
    s->editor =
        (struct synth_box){ w / 24, h / 12, w * 44 / 100, h * 60 / 100 };
    s->scroller =
        (struct synth_box){ w * 52 / 100, h / 16, w * 44 / 100, h * 80 / 100 };
    s->dragged = (struct synth_box){ 0, h * 45 / 100, w / 5, h / 4 };
}

static inline uint32_t synth_hash(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* Character of document doc at (line, col): 0 is a space, 1..26 a letter;
 * lines have ragged ends like prose. */
static inline int synth_char(uint32_t doc, int line, int col, int cols)
{
    uint32_t lh = synth_hash(doc * 0x9e3779b9U + (uint32_t)line);
    int len = cols / 2 + (int)(lh % (uint32_t)(cols / 2 + 1));
    uint32_t ch = synth_hash(lh + (uint32_t)col * 0x85ebca6bU);

    if (col >= len || ch % 6 == 0)
        return 0;
    return 1 + (int)(ch % 26);
}

static inline int synth_glyph_bit(int ch, int gx, int gy)
{
    /* 3x5 glyph, 15 bits, never empty. */
    uint32_t bits = (synth_hash(0xabcdu + (uint32_t)ch) & 0x7fff) | 0x2;

    return (bits >> (gy * 3 + gx)) & 1;
}

static inline void synth_put(uint8_t *p, uint32_t c)
{
    p[0] = (uint8_t)c;         /* B */
    p[1] = (uint8_t)(c >> 8);  /* G */
    p[2] = (uint8_t)(c >> 16); /* R */
    p[3] = 0xff;
}

/* Intersect a with b into *o; 0 when empty. */
static inline int synth_clip(struct synth_box a, struct synth_box b,
                             struct synth_box *o)
{
    int x0 = a.x > b.x ? a.x : b.x, y0 = a.y > b.y ? a.y : b.y;
    int x1 = a.x + a.w < b.x + b.w ? a.x + a.w : b.x + b.w;
    int y1 = a.y + a.h < b.y + b.h ? a.y + a.h : b.y + b.h;

    if (x1 <= x0 || y1 <= y0)
        return 0;
    *o = (struct synth_box){ x0, y0, x1 - x0, y1 - y0 };
    return 1;
}

static inline void synth_fill(uint8_t *buf, size_t stride, struct synth_box r,
                              uint32_t c)
{
    int x, y;

    for (y = r.y; y < r.y + r.h; y++)
        for (x = r.x; x < r.x + r.w; x++)
            synth_put(buf + (size_t)y * stride + (size_t)x * 4, c);
}

/*
 * Text of document doc inside box `area` (clipped to clip): line l of the
 * document sits at area.y + l * CELL_H - scroll_px.  Characters of line
 * `last_line` from column `last_cols` on are not drawn (typing), and a
 * cursor bar is drawn after them when cursor is set.
 */
static inline void synth_text(uint8_t *buf, size_t stride,
                              struct synth_box area, struct synth_box clip,
                              uint32_t doc, int scroll_px, int last_line,
                              int last_cols, int cursor, uint32_t fg,
                              uint32_t bg)
{
    struct synth_box c;
    int cols = area.w / SYNTH_CELL_W, x, y;

    if (!synth_clip(area, clip, &c))
        return;
    for (y = c.y; y < c.y + c.h; y++) {
        int vy = y - area.y + scroll_px, line = vy / SYNTH_CELL_H;
        int cy = vy % SYNTH_CELL_H, gy = (cy - 3) / 2;
        uint8_t *row = buf + (size_t)y * stride;

        for (x = c.x; x < c.x + c.w; x++) {
            int vx = x - area.x, col = vx / SYNTH_CELL_W;
            int cx = vx % SYNTH_CELL_W, gx = (cx - 1) / 2, ch = 0, on = 0;

            if (col < cols && (last_line < 0 || line < last_line ||
                               (line == last_line && col < last_cols)))
                ch = synth_char(doc, line, col, cols);
            if (ch != 0 && cy >= 3 && cy < 13 && cx >= 1 && cx < 7)
                on = synth_glyph_bit(ch, gx, gy);
            if (cursor && line == last_line && col == last_cols && cx < 2)
                on = 1;
            synth_put(row + (size_t)x * 4, on ? fg : bg);
        }
    }
}

/* A window: 1-pixel frame, a title bar, and a text body. */
static inline void synth_window(uint8_t *buf, size_t stride,
                                struct synth_box win, struct synth_box clip,
                                uint32_t title, uint32_t doc, int scroll_px,
                                int last_line, int last_cols, int cursor)
{
    struct synth_box c, bar = { win.x, win.y, win.w, 24 },
                        body = { win.x + 4, win.y + 28, win.w - 8, win.h - 32 };

    if (synth_clip(win, clip, &c))
        synth_fill(buf, stride, c, 0x404040);
    if (synth_clip(
            (struct synth_box){ win.x + 1, win.y + 1, win.w - 2, win.h - 2 },
            clip, &c))
        synth_fill(buf, stride, c, 0xf4f4f4);
    if (synth_clip(bar, clip, &c))
        synth_fill(buf, stride, c, title);
    synth_text(buf, stride,
               (struct synth_box){ win.x + 8, win.y + 4, win.w / 2, 16 }, clip,
               doc + 1000, 0, -1, 0, 0, 0xffffff, title);
    synth_text(buf, stride, body, clip, doc, scroll_px, last_line, last_cols,
               cursor, 0x101010, 0xf4f4f4);
}

/* State of frame n. */
static inline int synth_typed(const struct synth *s, int n)
{
    return n < s->phase ? n + 1 : s->phase;
}

static inline int synth_scroll(const struct synth *s, int n)
{
    int k = n - s->phase + 1;

    if (k < 0)
        k = 0;
    if (k > s->phase)
        k = s->phase;
    return k * SYNTH_SCROLL;
}

static inline struct synth_box synth_drag_box(const struct synth *s, int n)
{
    struct synth_box b = s->dragged;
    int k = n - 2 * s->phase + 1;

    if (k < 0)
        k = 0;
    if (k > s->phase)
        k = s->phase;
    b.x = k * s->w / 160;
    b.y = s->dragged.y + (int)(s->h / 12 * sin(k * 0.1));
    return b;
}

/* Editor text: 6 lines already there, then typing continues line 6. */
static inline void synth_editor_cursor(const struct synth *s, int n, int *line,
                                       int *col)
{
    int cols = (s->editor.w - 8) / SYNTH_CELL_W, t = synth_typed(s, n);

    *line = 6 + t / cols;
    *col = t % cols;
}

/* Draw the part `clip` of frame n. */
static inline void synth_render(const struct synth *s, int n, uint8_t *buf,
                                size_t stride, struct synth_box clip)
{
    struct synth_box c, screen = { 0, 0, s->w, s->h };
    int x, y, line, col;

    if (!synth_clip(screen, clip, &c))
        return;
    /* Wallpaper: a soft vertical gradient. */
    for (y = c.y; y < c.y + c.h; y++) {
        uint32_t g = (uint32_t)(60 + 80 * y / s->h);

        for (x = c.x; x < c.x + c.w; x++)
            synth_put(buf + (size_t)y * stride + (size_t)x * 4,
                      (g / 2) << 16 | g << 8 | (g + 40));
    }
    synth_editor_cursor(s, n, &line, &col);
    synth_window(buf, stride, s->editor, c, 0x2a5db0, 1, 0, line, col, 1);
    synth_window(buf, stride, s->scroller, c, 0x3c3c3c, 2, synth_scroll(s, n),
                 -1, 0, 0);
    synth_window(buf, stride, synth_drag_box(s, n), c, 0x8a2be2, 3, 0, -1, 0,
                 0);
}

/*
 * Rectangles that changed from frame n-1 to n (n >= 1); returns how many
 * (at most 4) were written to r.
 */
static inline size_t synth_damage(const struct synth *s, int n,
                                  struct hd_venc_rect *r)
{
    size_t k = 0;
    int l0, c0, l1, c1, bx = s->editor.x + 4, by = s->editor.y + 28;
    struct synth_box a, b;

    synth_editor_cursor(s, n - 1, &l0, &c0);
    synth_editor_cursor(s, n, &l1, &c1);
    if (l0 != l1 || c0 != c1) {
        /* Old cursor cell (now a character) and the new cursor cell. */
        r[k++] = (struct hd_venc_rect){ bx + c0 * SYNTH_CELL_W,
                                        by + l0 * SYNTH_CELL_H, SYNTH_CELL_W,
                                        SYNTH_CELL_H };
        r[k++] = (struct hd_venc_rect){ bx + c1 * SYNTH_CELL_W,
                                        by + l1 * SYNTH_CELL_H, SYNTH_CELL_W,
                                        SYNTH_CELL_H };
    }
    if (synth_scroll(s, n - 1) != synth_scroll(s, n))
        r[k++] = (struct hd_venc_rect){ s->scroller.x + 4, s->scroller.y + 28,
                                        s->scroller.w - 8, s->scroller.h - 32 };
    a = synth_drag_box(s, n - 1);
    b = synth_drag_box(s, n);
    if (a.x != b.x || a.y != b.y) {
        int x0 = a.x < b.x ? a.x : b.x, y0 = a.y < b.y ? a.y : b.y;
        int x1 = a.x + a.w > b.x + b.w ? a.x + a.w : b.x + b.w;
        int y1 = a.y + a.h > b.y + b.h ? a.y + a.h : b.y + b.h;

        r[k++] = (struct hd_venc_rect){ x0, y0, x1 - x0, y1 - y0 };
    }
    return k;
}

/* Bring buf from frame n-1 to frame n by redrawing the damage only. */
static inline size_t synth_step(const struct synth *s, int n, uint8_t *buf,
                                size_t stride, struct hd_venc_rect *r)
{
    size_t i, k = synth_damage(s, n, r);

    for (i = 0; i < k; i++)
        synth_render(s, n, buf, stride,
                     (struct synth_box){ r[i].x, r[i].y, r[i].w, r[i].h });
    return k;
}

/* PSNR of two 8-bit planes (100 when identical). */
static inline double synth_psnr(const uint8_t *a, size_t sa, const uint8_t *b,
                                size_t sb, int w, int h)
{
    uint64_t sse = 0;
    int x, y;

    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            int d = a[(size_t)y * sa + x] - b[(size_t)y * sb + x];

            sse += (uint64_t)(d * d);
        }
    if (sse == 0)
        return 100.0;
    return 10.0 * log10(255.0 * 255.0 * w * h / (double)sse);
}

#endif

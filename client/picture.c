/*
 * I420 and I444 pictures: allocation, RGB conversion (BT.601, limited range)
 * and PNG output with libpng.  See picture.h.
 */
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/picture.h"

struct pic *pic_new(int w, int h, int cs)
{
    struct pic *p;
    size_t ysz, csz;
    int cw, ch;
    uint8_t *mem;

    if (w < 1 || h < 1 || w > PIC_MAX_DIM || h > PIC_MAX_DIM || cs < 0 ||
        cs > 1)
        return NULL;
    cw = (w + cs) >> cs;
    ch = (h + cs) >> cs;
    ysz = (size_t)w * (size_t)h;
    csz = (size_t)cw * (size_t)ch;
    if ((mem = malloc(sizeof(*p) + ysz + 2 * csz)) == NULL)
        return NULL;
    p = (struct pic *)mem;
    memset(p, 0, sizeof(*p));
    p->w = w;
    p->h = h;
    p->cs = cs;
    p->plane[0] = mem + sizeof(*p);
    p->plane[1] = p->plane[0] + ysz;
    p->plane[2] = p->plane[1] + csz;
    p->stride[0] = w;
    p->stride[1] = p->stride[2] = cw;
    return p;
}

/* The first and last byte where two rows differ; 0 when equal. */
static int row_diff(const uint8_t *a, const uint8_t *b, int n, int *x0, int *x1)
{
    int l = 0, r = n - 1;

    if (memcmp(a, b, (size_t)n) == 0)
        return 0;
    while (l < r && a[l] == b[l])
        l++;
    while (r > l && a[r] == b[r])
        r--;
    *x0 = l;
    *x1 = r;
    return 1;
}

int pic_diff(struct pic **lastp, struct pic *p)
{
    struct pic *last = *lastp;
    int minx = p->w, maxx = -1, miny = p->h, maxy = -1;

    p->dirty = (struct pic_rect){ 0, 0, p->w, p->h };
    if (last == NULL || last->w != p->w || last->h != p->h ||
        last->cs != p->cs) {
        pic_free(last);
        *lastp = last = pic_new(p->w, p->h, p->cs);
        if (last == NULL)
            return -ENOMEM;
        for (int pl = 0; pl < 3; pl++)
            memcpy(last->plane[pl], p->plane[pl],
                   (size_t)p->stride[pl] *
                       (pl ? (size_t)(p->h + p->cs) >> p->cs : (size_t)p->h));
        return 0;
    }
    for (int pl = 0; pl < 3; pl++) {
        int sh = pl ? p->cs : 0, w = pl ? (p->w + sh) >> sh : p->w;
        int h = pl ? (p->h + sh) >> sh : p->h;

        for (int y = 0; y < h; y++) {
            uint8_t *a = last->plane[pl] + (size_t)y * last->stride[pl];
            const uint8_t *b = p->plane[pl] + (size_t)y * p->stride[pl];
            int x0, x1;

            if (!row_diff(a, b, w, &x0, &x1))
                continue;
            memcpy(a + x0, b + x0, (size_t)(x1 - x0 + 1));
            if (x0 << sh < minx)
                minx = x0 << sh;
            if (((x1 + 1) << sh) - 1 > maxx)
                maxx = ((x1 + 1) << sh) - 1;
            if (y << sh < miny)
                miny = y << sh;
            if (((y + 1) << sh) - 1 > maxy)
                maxy = ((y + 1) << sh) - 1;
        }
    }
    if (maxx < 0) {
        p->dirty = (struct pic_rect){ 0, 0, 0, 0 };
        return 0;
    }
    minx &= ~1;
    miny &= ~1;
    maxx = (maxx | 1) < p->w ? maxx | 1 : p->w - 1;
    maxy = (maxy | 1) < p->h ? maxy | 1 : p->h - 1;
    p->dirty =
        (struct pic_rect){ minx, miny, maxx - minx + 1, maxy - miny + 1 };
    return 0;
}

void pic_rect_union(struct pic_rect *a, const struct pic_rect *b)
{
    int x0, y0, x1, y1;

    if (b->w <= 0 || b->h <= 0)
        return;
    if (a->w <= 0 || a->h <= 0) {
        *a = *b;
        return;
    }
    x0 = a->x < b->x ? a->x : b->x;
    y0 = a->y < b->y ? a->y : b->y;
    x1 = a->x + a->w > b->x + b->w ? a->x + a->w : b->x + b->w;
    y1 = a->y + a->h > b->y + b->h ? a->y + a->h : b->y + b->h;
    *a = (struct pic_rect){ x0, y0, x1 - x0, y1 - y0 };
}

void pic_free(struct pic *p)
{
    free(p);
}

static uint8_t clamp255(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void pic_rgb_at(const struct pic *p, int x, int y, uint8_t rgb[3])
{
    int Y = p->plane[0][(size_t)y * p->stride[0] + x] - 16;
    int U =
        p->plane[1][(size_t)(y >> p->cs) * p->stride[1] + (x >> p->cs)] - 128;
    int V =
        p->plane[2][(size_t)(y >> p->cs) * p->stride[2] + (x >> p->cs)] - 128;

    /* fixed point, 8 fractional bits */
    rgb[0] = clamp255((298 * Y + 409 * V + 128) >> 8);
    rgb[1] = clamp255((298 * Y - 100 * U - 208 * V + 128) >> 8);
    rgb[2] = clamp255((298 * Y + 516 * U + 128) >> 8);
}

int pic_write_png(const struct pic *p, const char *path)
{
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *row = NULL;
    char tmp[4096];
    FILE *volatile f = NULL;
    int r = -EIO, x, y;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    if ((row = malloc((size_t)p->w * 3)) == NULL)
        return -ENOMEM;
    if ((f = fopen(tmp, "wb")) == NULL) {
        r = -errno;
        goto out;
    }
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (png == NULL || (info = png_create_info_struct(png)) == NULL)
        goto out;
    if (setjmp(png_jmpbuf(png)))
        goto out;
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)p->w, (png_uint_32)p->h, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (y = 0; y < p->h; y++) {
        for (x = 0; x < p->w; x++)
            pic_rgb_at(p, x, y, row + 3 * x);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    r = 0;
out:
    if (png != NULL)
        png_destroy_write_struct(&png, info ? &info : NULL);
    if (f != NULL && fclose(f) != 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) != 0)
        r = -errno;
    if (r != 0)
        unlink(tmp);
    free(row);
    return r;
}

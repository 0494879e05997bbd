/*
 * Image helpers for tests.  See image.h.
 */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/image.h"

int image_read_png(const char *path, uint8_t **px, int *w, int *h)
{
    png_image img;

    *px = NULL;
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return -1;
    img.format = PNG_FORMAT_RGB;
    *px = malloc(PNG_IMAGE_SIZE(img));
    if (*px == NULL || !png_image_finish_read(&img, NULL, *px, 0, NULL)) {
        free(*px);
        *px = NULL;
        png_image_free(&img);
        return -1;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return 0;
}

int image_write_png(const char *path, const uint8_t *px, int w, int h)
{
    png_image img;

    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_RGB;
    return png_image_write_to_file(&img, path, 0, px, 0, NULL) ? 0 : -1;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

int image_read_xwd(const char *path, uint8_t **px, int *w, int *h)
{
    uint8_t hdr[100], *row = NULL;
    uint32_t hsize, bpp, bpl, ncolors, order, rmask, gmask, bmask, v;
    FILE *f = fopen(path, "rb");
    int x, y, ok = -1, rs, gs, bs;

    *px = NULL;
    if (f == NULL || fread(hdr, 1, sizeof(hdr), f) != sizeof(hdr))
        goto out;
    hsize = be32(hdr);
    *w = (int)be32(hdr + 16);
    *h = (int)be32(hdr + 20);
    order = be32(hdr + 28);
    bpp = be32(hdr + 44);
    bpl = be32(hdr + 48);
    rmask = be32(hdr + 56);
    gmask = be32(hdr + 60);
    bmask = be32(hdr + 64);
    ncolors = be32(hdr + 76);
    /* 24 bits per pixel are packed 3-byte pixels, rows still bpl apart */
    if (be32(hdr + 4) != 7 || (bpp != 24 && bpp != 32) || *w <= 0 || *h <= 0 ||
        *w > 8192 || *h > 8192 || rmask == 0 || gmask == 0 || bmask == 0)
        goto out;
    bpp /= 8; /* bytes per pixel from here */
    if (bpl < bpp * (uint32_t)*w)
        goto out;
    rs = __builtin_ctz(rmask);
    gs = __builtin_ctz(gmask);
    bs = __builtin_ctz(bmask);
    if (fseek(f, (long)(hsize + ncolors * 12), SEEK_SET) != 0)
        goto out;
    row = malloc(bpl);
    *px = malloc((size_t)*w * *h * 3);
    if (row == NULL || *px == NULL)
        goto out;
    for (y = 0; y < *h; y++) {
        if (fread(row, 1, bpl, f) != bpl)
            goto out;
        for (x = 0; x < *w; x++) {
            const uint8_t *p = row + bpp * (uint32_t)x;
            uint8_t *o = *px + ((size_t)y * *w + x) * 3;

            if (order == 0)
                v = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                    (uint32_t)p[2] << 16 |
                    (bpp == 4 ? (uint32_t)p[3] << 24 : 0);
            else
                v = bpp == 4
                        ? be32(p)
                        : (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
            o[0] = (uint8_t)((v & rmask) >> rs);
            o[1] = (uint8_t)((v & gmask) >> gs);
            o[2] = (uint8_t)((v & bmask) >> bs);
        }
    }
    ok = 0;
out:
    if (ok != 0) {
        free(*px);
        *px = NULL;
    }
    free(row);
    if (f != NULL)
        fclose(f);
    return ok;
}

double image_mse(const uint8_t *a, int aw, int ax, int ay, const uint8_t *b,
                 int bw, int bx, int by, int w, int h)
{
    double sum = 0;
    int x, y, d;

    if (w <= 0 || h <= 0)
        return 0;
    for (y = 0; y < h; y++) {
        const uint8_t *pa = a + ((size_t)(ay + y) * aw + ax) * 3;
        const uint8_t *pb = b + ((size_t)(by + y) * bw + bx) * 3;
        uint64_t row = 0;

        for (x = 0; x < w * 3; x++) {
            d = (int)pa[x] - (int)pb[x];
            row += (uint64_t)(d * d);
        }
        sum += (double)row;
    }
    return sum / ((double)w * h * 3);
}

double image_mse_psnr(double mse)
{
    if (mse <= 0)
        return IMAGE_PSNR_SAME;
    return 10.0 * log10(255.0 * 255.0 / mse);
}

double image_psnr(const uint8_t *a, int aw, int ax, int ay, const uint8_t *b,
                  int bw, int bx, int by, int w, int h)
{
    return image_mse_psnr(image_mse(a, aw, ax, ay, b, bw, bx, by, w, h));
}

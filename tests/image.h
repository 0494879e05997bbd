/*
 * Image helpers shared by tests that look at pictures: read the viewer's
 * PNG and `xwd` screen dumps as packed 8-bit RGB (3 bytes per pixel, rows
 * w * 3 bytes apart, no padding), write RGB as PNG (artefacts of a failed
 * run), and compare regions of two RGB images (PSNR).  No state; any
 * thread.  Links with libpng.
 */
#ifndef HD_TESTS_IMAGE_H
#define HD_TESTS_IMAGE_H

#include <stdint.h>

/* PSNR of identical regions (the MSE is 0). */
#define IMAGE_PSNR_SAME 99.0

/*
 * Read a PNG file as RGB.  Returns 0 with *px (malloc'd, caller frees),
 * *w and *h set, or -1 (*px NULL).
 */
int image_read_png(const char *path, uint8_t **px, int *w, int *h);

/*
 * Read an `xwd -root` dump (X Window Dump version 7, 24 or 32 bits per
 * pixel ZPixmap, either byte order, as Xvfb gives) as RGB.  Returns 0
 * with *px (malloc'd, caller frees), *w and *h set, or -1 (*px NULL).
 */
int image_read_xwd(const char *path, uint8_t **px, int *w, int *h);

/* Write RGB pixels as a PNG file.  Returns 0 or -1. */
int image_write_png(const char *path, const uint8_t *px, int w, int h);

/*
 * Mean squared error over the three channels between the w x h region at
 * (ax, ay) of image a (aw pixels wide) and the one at (bx, by) of image b
 * (bw wide).  The caller keeps both regions inside their images.
 */
double image_mse(const uint8_t *a, int aw, int ax, int ay, const uint8_t *b,
                 int bw, int bx, int by, int w, int h);

/* The same comparison as PSNR in dB for 8-bit samples (IMAGE_PSNR_SAME
 * when the regions are identical). */
double image_psnr(const uint8_t *a, int aw, int ax, int ay, const uint8_t *b,
                  int bw, int bx, int by, int w, int h);

/* PSNR in dB of a mean squared error (IMAGE_PSNR_SAME for 0). */
double image_mse_psnr(double mse);

#endif

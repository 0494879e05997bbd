/*
 * The VP9 encoder's insides, shared by its two files (users include
 * venc.h): venc.c configures libvpx and encodes (the active map, pending
 * blocks, rate changes); venc_conv.c converts the damaged areas from BGRA
 * to I420, exactly (block by block, compared with the last picture) or
 * whole, on the caller's thread and a helper thread.  The design is in
 * venc.c's opening comment.
 *
 * Threads: the caller's (one at a time per encoder), and the helper
 * thread of venc_conv.c, which touches only the rows of its job.
 */
#ifndef HD_VENC_INT_H
#define HD_VENC_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libyuv/convert.h>
#include <vpx/vp8cx.h>
#include <vpx/vpx_encoder.h>

#include "err.h"
#include "log.h"
#include "tiles.h"
#include "venc.h"

#define MOD "venc"

/* Damaged pixels from which the conversion is shared with the helper
 * (~60 us of libyuv's ARGBToI420 at AVX2 speed). */
#define SPLIT_MIN_PX (256L * 1024)

enum conv_mode {
    CONV_RECTS, /* the damage rectangles */
    CONV_FULL,  /* the whole frame */
    CONV_EXACT  /* the touched blocks, compared (exact damage) */
};

/* A block row of converted pixels, for the comparison (one per thread). */
struct strip {
    uint8_t *y, *u, *v;
    int ystride, cstride;
};

/* One half of a conversion, for convert_rows. */
struct conv_job {
    const struct hd_venc_input *in;
    enum conv_mode mode;
    int y0, y1;          /* rows [y0, y1): even; multiples of 16 (EXACT) */
    struct strip *strip; /* EXACT: this thread's strip */
};

struct hd_venc {
    struct hd_venc_config cfg;
    vpx_codec_ctx_t ctx;
    vpx_codec_enc_cfg_t vcfg;
    int ctx_ok;
    vpx_image_t img; /* persistent I420 (or I444) picture */
    int img_ok;
    int cs; /* chroma shift: 1 for I420 (2x2 pixels a sample), 0 for I444 */
    int have_frame;   /* img holds a full conversion */
    int want_key;     /* next frame is a key frame */
    int64_t last_pts; /* pts of the previous frame, ms */
    int64_t pts_base; /* caller's pts - pts_base = libvpx's pts */
    unsigned map_rows, map_cols;
    uint8_t *map;     /* active map handed to libvpx (16x16 blocks) */
    uint8_t *pending; /* blocks damaged in dropped frames */
    uint8_t *touched; /* blocks under this frame's damage (exact damage) */
    long long *touched_above; /* [r]: touched blocks in rows 0..r-1 */
    uint8_t *lossy;           /* blocks coded lossy since they were last coded
                               * losslessly (VP9 lossless or tiles) */
    uint8_t *want;            /* hd_venc_tiles: blocks under its rectangles */
    uint8_t *tiled;           /* blocks the viewers show from tiles */
    uint8_t *release;         /* the last packet's release list (tiles.h) */
    size_t release_n;
    int tile_first;     /* hd_venc_tile_first */
    uint8_t *tiles_msg; /* the last packet's tiles (malloc'd) */
    size_t tiles_n;
    struct strip strips[2];
    int refining;     /* hd_venc_refine is on: no comparison */
    int lossless_now; /* VP9E_SET_LOSSLESS in effect */
    int pending_any;
    int pending_full; /* a dropped frame had no damage list */
    int static_now;   /* VP8E_SET_STATIC_THRESHOLD in effect */
    int key_q_now;    /* the key frame quantizer cap is in effect */
    /* conversion helper thread (helper_ok: running) */
    pthread_t helper;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    int helper_ok, sync_ok, quit;
    unsigned job_gen, done_gen; /* under mu */
    struct conv_job job;        /* under mu until job_gen is taken */
};

/* venc_tiles.c */
int venc_tiles_first(struct hd_venc *v);

/* venc_conv.c */
void venc_helper_start(struct hd_venc *v);
void venc_helper_stop(struct hd_venc *v);
int64_t venc_now_us(void);
int venc_clip_rect(const struct hd_venc *v, const struct hd_venc_rect *r,
                   int *x0, int *y0, int *x1, int *y1);
void venc_mark_blocks(const struct hd_venc *v, uint8_t *map, int x0, int y0,
                      int x1, int y1);
long long venc_area_above(const struct hd_venc *v,
                          const struct hd_venc_input *in, enum conv_mode mode,
                          int y);
void venc_convert(struct hd_venc *v, const struct hd_venc_input *in,
                  enum conv_mode mode, long long area);

#endif

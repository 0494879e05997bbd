/*
 * VP9 realtime screen encoder: libyuv for BGRA -> I420 (damaged areas
 * only), libvpx VP9 in one-pass CBR realtime mode.
 *
 * Error resilience is off in our settings.  VP9's error-resilient mode
 * resets the entropy context on every frame and forbids using the previous
 * frame's motion vectors, which costs bits on every frame, and it does not
 * make a stream survive a lost frame anyway: every inter frame still
 * predicts from the last one, so a loss means a wrong picture until the
 * next key frame.  Our transports (TCP, the relay, and our own UDP with
 * retransmission) deliver every packet; the host drops stale *captured*
 * frames before encoding, never encoded ones, and a viewer that loses sync
 * asks for a key frame (hd_venc_request_keyframe).  The reference settings
 * keep it on, as RustDesk does.
 *
 * The active map: libvpx VP9 takes one byte per 16x16 block
 * (rows = ceil(h / 16), cols = ceil(w / 16); vp9_set_active_map rejects
 * other sizes) and expands it to its 8x8 mode-info grid; inactive blocks
 * go to a segment with SEG_LVL_SKIP, so they are coded as skipped copies
 * of the previous frame with the loop filter off.  libvpx ignores the map
 * on key frames and forgets it after one, so it is set before every
 * frame.  Blocks of a frame that the rate control dropped are carried
 * over to the next frame's map (pending), or their change would be lost.
 *
 * Exact damage: a damage rectangle says what was drawn, not what changed
 * (a terminal redraws whole lines, toolkits repaint whole widgets, a
 * scrolled area's blank margins come out the same).  So the 16x16 blocks
 * under the rectangles are converted a block row at a time into a small
 * strip, compared with the picture libvpx was given last, and only blocks
 * that differ enter the active map (TigerVNC's comparing update tracker
 * does the same for its framebuffer).  A frame without a damage list is
 * compared whole.  Refinement frames (hd_venc_refine) skip the comparison:
 * their rectangles name unchanged areas to be coded again on purpose.
 *
 * The conversion runs on two threads when the encoder has two or more
 * (libvpx's own threads are idle until vpx_codec_encode): a helper thread
 * converts the damaged areas below a split row chosen to halve the area,
 * the caller the rest, so no pixel is written by both.  Small areas stay
 * on the caller's thread: waking the helper costs more than it saves.
 */
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
    vpx_image_t img; /* persistent I420 picture */
    int img_ok;
    int have_frame;   /* img holds a full conversion */
    int want_key;     /* next frame is a key frame */
    int64_t last_pts; /* pts of the previous frame, ms */
    unsigned map_rows, map_cols;
    uint8_t *map;     /* active map handed to libvpx (16x16 blocks) */
    uint8_t *pending; /* blocks damaged in dropped frames */
    uint8_t *touched; /* blocks under this frame's damage (exact damage) */
    long long *touched_above; /* [r]: touched blocks in rows 0..r-1 */
    struct strip strips[2];
    int refining;     /* hd_venc_refine is on: no comparison */
    int lossless_now; /* VP9E_SET_LOSSLESS in effect */
    int pending_any;
    int pending_full; /* a dropped frame had no damage list */
    int static_now;   /* VP8E_SET_STATIC_THRESHOLD in effect */
    /* conversion helper thread (helper_ok: running) */
    pthread_t helper;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    int helper_ok, sync_ok, quit;
    unsigned job_gen, done_gen; /* under mu */
    struct conv_job job;        /* under mu until job_gen is taken */
};

static void convert_rows(struct hd_venc *v, const struct conv_job *j);

static void *helper_main(void *arg)
{
    struct hd_venc *v = arg;
    struct conv_job j;
    unsigned gen;

    pthread_mutex_lock(&v->mu);
    for (;;) {
        while (!v->quit && v->job_gen == v->done_gen)
            pthread_cond_wait(&v->work_cv, &v->mu);
        if (v->quit)
            break;
        j = v->job;
        gen = v->job_gen;
        pthread_mutex_unlock(&v->mu);
        convert_rows(v, &j);
        pthread_mutex_lock(&v->mu);
        v->done_gen = gen;
        pthread_cond_signal(&v->done_cv);
    }
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

/* Start the helper; without it every conversion runs on the caller. */
static void helper_start(struct hd_venc *v)
{
    if (pthread_mutex_init(&v->mu, NULL) != 0)
        return;
    if (pthread_cond_init(&v->work_cv, NULL) != 0) {
        pthread_mutex_destroy(&v->mu);
        return;
    }
    if (pthread_cond_init(&v->done_cv, NULL) != 0) {
        pthread_cond_destroy(&v->work_cv);
        pthread_mutex_destroy(&v->mu);
        return;
    }
    v->sync_ok = 1;
    if (pthread_create(&v->helper, NULL, helper_main, v) == 0)
        v->helper_ok = 1;
    else
        hd_warn(MOD, "no conversion thread, converting on one");
}

static void helper_stop(struct hd_venc *v)
{
    if (v->helper_ok) {
        pthread_mutex_lock(&v->mu);
        v->quit = 1;
        pthread_cond_signal(&v->work_cv);
        pthread_mutex_unlock(&v->mu);
        pthread_join(v->helper, NULL);
        v->helper_ok = 0;
    }
    if (v->sync_ok) {
        pthread_cond_destroy(&v->done_cv);
        pthread_cond_destroy(&v->work_cv);
        pthread_mutex_destroy(&v->mu);
        v->sync_ok = 0;
    }
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int default_cpu_used(int width, int height)
{
    long px = (long)width * height;

    if (px >= 1920L * 1080 * 9 / 10)
        return 9;
    if (px >= 1280L * 720 * 9 / 10)
        return 8;
    return 7;
}

void hd_venc_config_default(struct hd_venc_config *cfg, int width, int height,
                            int fps, int kbps)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->width = width;
    cfg->height = height;
    cfg->fps = fps;
    cfg->kbps = kbps;
    cfg->threads = 2;
    cfg->cpu_used = default_cpu_used(width, height);
    /* One tile column per thread at most: row-mt keeps the threads busy
     * inside a tile, and every extra tile boundary costs bits.  libvpx
     * lowers this further for narrow frames (tiles >= 256 pixels). */
    cfg->tile_columns = width >= 1024 ? 1 : 0;
    cfg->row_mt = 1;
    cfg->aq_mode = 3;
    cfg->screen = 1;
    cfg->error_resilient = 0;
    cfg->drop_thresh = 0;
    cfg->undershoot_pct = 50;
    cfg->overshoot_pct = 50;
    cfg->min_q = 2;
    cfg->max_q = 56;
    /* A 1 s buffer bounds the bursts in steady state (WebRTC uses the
     * same 1000/600 ms).  The initial level is larger on purpose: the
     * first key frame may take up to 2 s of the target rate (libvpx gives
     * it half the initial level), and the level is clamped to the 1 s
     * buffer right after it.  Refining a poor key frame through cyclic
     * refresh costs far more bits than coding it well once (measured by
     * tests/bench/bench_venc: ~35 dB after 1.7 s of typing vs ~50 dB). */
    cfg->buf_ms = 1000;
    cfg->buf_initial_ms = 4000;
    cfg->buf_optimal_ms = 600;
    /* Skip the residual of blocks that barely changed (encode breakout):
     * an unchanged screen converges to ~35-byte frames even when the
     * caller passes no damage list, at no measurable PSNR cost. */
    cfg->static_thresh = 500;
    cfg->frame_parallel = 0;
    cfg->max_intra_pct = 0; /* the first key frame is bounded as above */
    cfg->active_map = 1;
    /* No loop filter: at our quantizers it barely touches text, and it is
     * a pass over every coded block (callgrind, tests/bench/bench_venc -t 1
     * -n 30: 9-10 % fewer instructions in every phase; PSNR-Y -1.3 dB
     * overall, most of it on the dragged window's edges). */
    cfg->loop_filter = 2;
    /* libvpx's CBR overshoot detection codes a frame with a large change
     * (the first frames of a scroll, a window appearing) at the maximum
     * quantizer, and cyclic refresh then needs seconds to repair it.
     * Without it such frames get the bits they need: same CPU, scroll
     * PSNR-Y +4.8 dB, +4 % bytes overall, still under the target rate. */
    cfg->no_overshoot_maxq = 1;
    cfg->exact_damage = 1;
}

void hd_venc_config_reference(struct hd_venc_config *cfg, int width, int height,
                              int fps)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->width = width;
    cfg->height = height;
    cfg->fps = fps;
    /* RustDesk: base_bitrate = w * h / 1000 (2073 at 1080p), times the
     * "balanced" quality ratio 0.67. */
    cfg->kbps = (int)((long long)width * height / 1000 * 67 / 100);
    if (cfg->kbps < 10)
        cfg->kbps = 10;
    cfg->threads = 2;
    cfg->cpu_used = 7;
    cfg->tile_columns = 4;
    cfg->row_mt = 1;
    cfg->aq_mode = 0;
    cfg->screen = 0;
    cfg->error_resilient = 1;
    cfg->drop_thresh = 25;
    cfg->undershoot_pct = 95;
    cfg->overshoot_pct = 0; /* 0 = libvpx default below */
    /* calc_q_values(0.67): t = 0.335, q_min = round(0.665 * 36) = 24,
     * q_max = round(0.665 * 56 + 0.335 * 37) = 50. */
    cfg->min_q = 24;
    cfg->max_q = 50;
    cfg->buf_ms = 0; /* libvpx defaults (6 s / 4 s / 5 s) */
    cfg->buf_initial_ms = 0;
    cfg->buf_optimal_ms = 0;
    cfg->static_thresh = 500;
    cfg->frame_parallel = 1; /* libvpx's default, RustDesk leaves it */
    cfg->max_intra_pct = 0;  /* libvpx default: unlimited */
    cfg->active_map = 0;
}

static int check_config(const struct hd_venc_config *c)
{
    const char *bad = NULL;

    if (c->width < HD_VENC_MIN_DIM || c->width > HD_VENC_MAX_DIM ||
        c->height < HD_VENC_MIN_DIM || c->height > HD_VENC_MAX_DIM)
        bad = "frame size";
    else if (c->fps < 1 || c->fps > 240)
        bad = "fps";
    else if (c->kbps < 10 || c->kbps > 100000)
        bad = "kbps";
    else if (c->threads < 1 || c->threads > 16)
        bad = "threads";
    else if (c->cpu_used < -9 || c->cpu_used > 9)
        bad = "cpu_used";
    else if (c->tile_columns < 0 || c->tile_columns > 6)
        bad = "tile_columns";
    else if (c->aq_mode < 0 || c->aq_mode > 3)
        bad = "aq_mode";
    else if (c->drop_thresh < 0 || c->drop_thresh > 100)
        bad = "drop_thresh";
    else if (c->undershoot_pct < 0 || c->undershoot_pct > 100 ||
             c->overshoot_pct < 0 || c->overshoot_pct > 100)
        bad = "undershoot/overshoot";
    else if (c->min_q < 0 || c->max_q > 63 || c->min_q > c->max_q)
        bad = "quantizer range";
    else if (c->buf_ms < 0 || c->buf_ms > 60000 || c->buf_initial_ms < 0 ||
             c->buf_initial_ms > 60000 || c->buf_optimal_ms < 0 ||
             c->buf_optimal_ms > 60000)
        bad = "rate control buffer";
    else if (c->static_thresh < 0 || c->max_intra_pct < 0 ||
             c->max_intra_pct > 100000)
        bad = "static_thresh/max_intra_pct";
    else if (c->frame_parallel < 0 || c->frame_parallel > 1)
        bad = "frame_parallel";
    else if (c->loop_filter < 0 || c->loop_filter > 2 ||
             c->no_overshoot_maxq < 0 || c->no_overshoot_maxq > 1 ||
             c->exact_damage < 0 || c->exact_damage > 1)
        bad = "loop_filter/no_overshoot_maxq/exact_damage";
    if (bad != NULL) {
        hd_error(MOD, "invalid encoder setting: %s", bad);
        return HD_ECONFIG;
    }
    return 0;
}

static int ctl_fail(struct hd_venc *v, const char *what)
{
    hd_error(MOD, "libvpx refused %s: %s", what, vpx_codec_error(&v->ctx));
    return HD_ECONFIG;
}

/* Every control that exists only as a codec control, in one place. */
static int apply_controls(struct hd_venc *v)
{
    const struct hd_venc_config *c = &v->cfg;
    vpx_codec_ctx_t *ctx = &v->ctx;

    if (vpx_codec_control(ctx, VP8E_SET_CPUUSED, c->cpu_used) != 0)
        return ctl_fail(v, "cpu-used");
    if (vpx_codec_control(ctx, VP9E_SET_ROW_MT, (unsigned)c->row_mt) != 0)
        return ctl_fail(v, "row-mt");
    if (vpx_codec_control(ctx, VP9E_SET_TILE_COLUMNS, c->tile_columns) != 0)
        return ctl_fail(v, "tile-columns");
    if (vpx_codec_control(ctx, VP9E_SET_AQ_MODE, (unsigned)c->aq_mode) != 0)
        return ctl_fail(v, "aq-mode");
    if (vpx_codec_control(ctx, VP9E_SET_TUNE_CONTENT,
                          c->screen ? VP9E_CONTENT_SCREEN
                                    : VP9E_CONTENT_DEFAULT) != 0)
        return ctl_fail(v, "tune-content");
    if (vpx_codec_control(ctx, VP8E_SET_STATIC_THRESHOLD,
                          (unsigned)c->static_thresh) != 0)
        return ctl_fail(v, "static-thresh");
    v->static_now = c->static_thresh;
    /* No temporal denoiser: it smears text. */
    if (vpx_codec_control(ctx, VP9E_SET_NOISE_SENSITIVITY, 0u) != 0)
        return ctl_fail(v, "noise-sensitivity");
    /* libvpx defaults to frame parallel decoding mode (no backward
     * adaptation of the entropy context): keep that only where asked. */
    if (vpx_codec_control(ctx, VP9E_SET_FRAME_PARALLEL_DECODING,
                          (unsigned)c->frame_parallel) != 0)
        return ctl_fail(v, "frame-parallel");
    if (c->max_intra_pct > 0 &&
        vpx_codec_control(ctx, VP8E_SET_MAX_INTRA_BITRATE_PCT,
                          (unsigned)c->max_intra_pct) != 0)
        return ctl_fail(v, "max-intra-rate");
    if (c->loop_filter != 0 &&
        vpx_codec_control(ctx, VP9E_SET_DISABLE_LOOPFILTER, c->loop_filter) !=
            0)
        return ctl_fail(v, "disable-loopfilter");
    if (c->no_overshoot_maxq != 0 &&
        vpx_codec_control(ctx, VP9E_SET_DISABLE_OVERSHOOT_MAXQ_CBR,
                          c->no_overshoot_maxq) != 0)
        return ctl_fail(v, "disable-overshoot-maxq");
    /* libyuv's ARGBToI420 is BT.601 limited range; say so. */
    if (vpx_codec_control(ctx, VP9E_SET_COLOR_SPACE, VPX_CS_BT_601) != 0)
        return ctl_fail(v, "color-space");
    return 0;
}

static void fill_rate(vpx_codec_enc_cfg_t *vc, const struct hd_venc_config *c)
{
    vc->rc_target_bitrate = (unsigned)c->kbps;
}

/* One block row: luma 16 rows, chroma 8, each as wide as the map. */
static int strips_alloc(struct hd_venc *v)
{
    int ys = (int)v->map_cols * 16, cs = (int)v->map_cols * 8;

    for (int i = 0; i < 2; i++) {
        struct strip *s = &v->strips[i];

        if ((s->y = malloc((size_t)ys * 16 + (size_t)cs * 8 * 2)) == NULL)
            return -1;
        s->u = s->y + (size_t)ys * 16;
        s->v = s->u + (size_t)cs * 8;
        s->ystride = ys;
        s->cstride = cs;
    }
    return 0;
}

int hd_venc_new(const struct hd_venc_config *cfg, struct hd_venc **out)
{
    struct hd_venc *v = NULL;
    vpx_codec_enc_cfg_t *vc;
    vpx_codec_iface_t *iface = vpx_codec_vp9_cx();
    size_t map_n;
    int r;

    *out = NULL;
    if ((r = check_config(cfg)) != 0)
        return r;
    if ((v = calloc(1, sizeof(*v))) == NULL)
        return -ENOMEM;
    v->cfg = *cfg;
    v->want_key = 1;
    v->last_pts = INT64_MIN;
    v->map_rows = (unsigned)(cfg->height + 15) / 16;
    v->map_cols = (unsigned)(cfg->width + 15) / 16;
    map_n = (size_t)v->map_rows * v->map_cols;
    if ((v->map = malloc(map_n)) == NULL ||
        (v->pending = calloc(1, map_n)) == NULL ||
        (v->touched = malloc(map_n)) == NULL ||
        (v->touched_above = calloc(v->map_rows + 1, sizeof(long long))) ==
            NULL ||
        strips_alloc(v) != 0) {
        r = -ENOMEM;
        goto out;
    }
    if (vpx_img_alloc(&v->img, VPX_IMG_FMT_I420, (unsigned)cfg->width,
                      (unsigned)cfg->height, 32) == NULL) {
        r = -ENOMEM;
        goto out;
    }
    v->img_ok = 1;

    vc = &v->vcfg;
    if (vpx_codec_enc_config_default(iface, vc, 0) != VPX_CODEC_OK) {
        hd_error(MOD, "no VP9 encoder in libvpx");
        r = HD_ECONFIG;
        goto out;
    }
    vc->g_w = (unsigned)cfg->width;
    vc->g_h = (unsigned)cfg->height;
    vc->g_timebase.num = 1;
    vc->g_timebase.den = 1000; /* pts in milliseconds */
    vc->g_threads = (unsigned)cfg->threads;
    vc->g_lag_in_frames = 0;
    vc->g_pass = VPX_RC_ONE_PASS;
    vc->g_error_resilient =
        cfg->error_resilient ? VPX_ERROR_RESILIENT_DEFAULT : 0;
    vc->rc_end_usage = VPX_CBR;
    vc->rc_dropframe_thresh = (unsigned)cfg->drop_thresh;
    vc->rc_resize_allowed = 0;
    vc->rc_min_quantizer = (unsigned)cfg->min_q;
    vc->rc_max_quantizer = (unsigned)cfg->max_q;
    vc->rc_undershoot_pct = (unsigned)cfg->undershoot_pct;
    if (cfg->overshoot_pct > 0)
        vc->rc_overshoot_pct = (unsigned)cfg->overshoot_pct;
    if (cfg->buf_ms > 0)
        vc->rc_buf_sz = (unsigned)cfg->buf_ms;
    if (cfg->buf_initial_ms > 0)
        vc->rc_buf_initial_sz = (unsigned)cfg->buf_initial_ms;
    if (cfg->buf_optimal_ms > 0)
        vc->rc_buf_optimal_sz = (unsigned)cfg->buf_optimal_ms;
    vc->kf_mode = VPX_KF_DISABLED;
    vc->kf_min_dist = 0;
    vc->kf_max_dist = 0;
    fill_rate(vc, cfg);

    if (vpx_codec_enc_init(&v->ctx, iface, vc, 0) != VPX_CODEC_OK) {
        hd_error(MOD, "VP9 encoder init failed: %s",
                 vpx_codec_error_detail(&v->ctx)
                     ? vpx_codec_error_detail(&v->ctx)
                     : vpx_codec_error(&v->ctx));
        r = HD_ECONFIG;
        goto out;
    }
    v->ctx_ok = 1;
    if ((r = apply_controls(v)) != 0)
        goto out;
    if (cfg->threads > 1)
        helper_start(v);
    *out = v;
    v = NULL;
    r = 0;
out:
    hd_venc_free(v);
    return r;
}

void hd_venc_free(struct hd_venc *venc)
{
    if (venc == NULL)
        return;
    helper_stop(venc);
    if (venc->ctx_ok)
        vpx_codec_destroy(&venc->ctx);
    if (venc->img_ok)
        vpx_img_free(&venc->img);
    free(venc->map);
    free(venc->pending);
    free(venc->touched);
    free(venc->touched_above);
    for (int i = 0; i < 2; i++)
        free(venc->strips[i].y);
    free(venc);
}

const struct hd_venc_config *hd_venc_get_config(const struct hd_venc *venc)
{
    return &venc->cfg;
}

void hd_venc_request_keyframe(struct hd_venc *venc)
{
    venc->want_key = 1;
}

int hd_venc_set_rate(struct hd_venc *venc, int kbps, int fps)
{
    struct hd_venc_config c = venc->cfg;
    vpx_codec_enc_cfg_t vc = venc->vcfg;
    int r;

    c.kbps = kbps;
    c.fps = fps;
    if ((r = check_config(&c)) != 0)
        return r;
    fill_rate(&vc, &c);
    if (vpx_codec_enc_config_set(&venc->ctx, &vc) != VPX_CODEC_OK)
        return ctl_fail(venc, "the new rate");
    venc->cfg = c;
    venc->vcfg = vc;
    return 0;
}

int hd_venc_refine(struct hd_venc *venc, int level)
{
    vpx_codec_enc_cfg_t vc = venc->vcfg;
    unsigned min_q = (unsigned)venc->cfg.min_q, max_q;
    int lossless = level == HD_VENC_REFINE_LOSSLESS;

    if (level < HD_VENC_REFINE_OFF || level > HD_VENC_REFINE_LOSSLESS)
        return HD_ECONFIG;
    max_q = level == HD_VENC_REFINE_SHARP ? (unsigned)HD_VENC_REFINE_MAX_Q
                                          : (unsigned)venc->cfg.max_q;
    if (max_q < min_q)
        max_q = min_q;
    if (max_q > (unsigned)venc->cfg.max_q)
        max_q = (unsigned)venc->cfg.max_q;
    if (lossless)
        min_q = max_q = 0;
    if (lossless != venc->lossless_now) {
        if (vpx_codec_control(&venc->ctx, VP9E_SET_LOSSLESS, lossless) != 0)
            return ctl_fail(venc, "lossless mode");
        venc->lossless_now = lossless;
    }
    venc->refining = level != HD_VENC_REFINE_OFF;
    if (vc.rc_max_quantizer == max_q && vc.rc_min_quantizer == min_q)
        return 0;
    vc.rc_min_quantizer = min_q;
    vc.rc_max_quantizer = max_q;
    if (vpx_codec_enc_config_set(&venc->ctx, &vc) != VPX_CODEC_OK)
        return ctl_fail(venc, "the refinement quantizer");
    venc->vcfg = vc;
    return 0;
}

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Convert an area (already clipped, even origin) of the BGRA frame. */
static void convert_area(struct hd_venc *v, const struct hd_venc_input *in,
                         int x, int y, int w, int h)
{
    vpx_image_t *img = &v->img;
    int sy = img->stride[VPX_PLANE_Y], su = img->stride[VPX_PLANE_U],
        sv = img->stride[VPX_PLANE_V];

    ARGBToI420(in->bgra + (size_t)y * in->stride + (size_t)x * 4,
               (int)in->stride, img->planes[VPX_PLANE_Y] + (size_t)y * sy + x,
               sy, img->planes[VPX_PLANE_U] + (size_t)(y / 2) * su + x / 2, su,
               img->planes[VPX_PLANE_V] + (size_t)(y / 2) * sv + x / 2, sv, w,
               h);
}

/*
 * Clip r to the frame and align it out to even coordinates (a chroma
 * sample covers 2x2 pixels).  Returns 0 when nothing is left.
 */
static int clip_rect(const struct hd_venc *v, const struct hd_venc_rect *r,
                     int *x0, int *y0, int *x1, int *y1)
{
    long long ax = r->x, ay = r->y, bx = (long long)r->x + r->w,
              by = (long long)r->y + r->h;

    if (r->w <= 0 || r->h <= 0)
        return 0;
    ax = ax < 0 ? 0 : ax;
    ay = ay < 0 ? 0 : ay;
    bx = bx > v->cfg.width ? v->cfg.width : bx;
    by = by > v->cfg.height ? v->cfg.height : by;
    if (ax >= bx || ay >= by)
        return 0;
    *x0 = (int)ax & ~1;
    *y0 = (int)ay & ~1;
    *x1 = (int)bx + ((int)bx & 1);
    *y1 = (int)by + ((int)by & 1);
    if (*x1 > v->cfg.width)
        *x1 = v->cfg.width;
    if (*y1 > v->cfg.height)
        *y1 = v->cfg.height;
    return 1;
}

static void mark_blocks(const struct hd_venc *v, uint8_t *map, int x0, int y0,
                        int x1, int y1)
{
    unsigned r, c, r1 = (unsigned)(y1 + 15) / 16, c1 = (unsigned)(x1 + 15) / 16;

    for (r = (unsigned)y0 / 16; r < r1 && r < v->map_rows; r++)
        for (c = (unsigned)x0 / 16; c < c1 && c < v->map_cols; c++)
            map[(size_t)r * v->map_cols + c] = 1;
}

/* Do rows of an I420 block (w x h luma pixels at a, b) differ? */
static int block_differs(const uint8_t *a, int sa, const uint8_t *b, int sb,
                         int w, int h)
{
    for (int y = 0; y < h; y++)
        if (memcmp(a + (size_t)y * sa, b + (size_t)y * sb, (size_t)w) != 0)
            return 1;
    return 0;
}

/*
 * Exact damage for the touched blocks [c0, c1) of block row r: convert
 * them into the strip, mark the blocks that differ from the picture in
 * the active map and bring the picture up to date.
 */
static void convert_run(struct hd_venc *v, const struct hd_venc_input *in,
                        struct strip *s, unsigned r, unsigned c0, unsigned c1)
{
    vpx_image_t *img = &v->img;
    int sy = img->stride[VPX_PLANE_Y], su = img->stride[VPX_PLANE_U],
        sv = img->stride[VPX_PLANE_V];
    int x = (int)c0 * 16, y = (int)r * 16;
    int xe = (int)c1 * 16 < v->cfg.width ? (int)c1 * 16 : v->cfg.width;
    int w = xe - x, h = v->cfg.height - y < 16 ? v->cfg.height - y : 16;
    int cw = (w + 1) / 2, ch = (h + 1) / 2, any = 0;
    uint8_t *py = img->planes[VPX_PLANE_Y] + (size_t)y * sy + x;
    uint8_t *pu = img->planes[VPX_PLANE_U] + (size_t)(y / 2) * su + x / 2;
    uint8_t *pv = img->planes[VPX_PLANE_V] + (size_t)(y / 2) * sv + x / 2;

    ARGBToI420(in->bgra + (size_t)y * in->stride + (size_t)x * 4,
               (int)in->stride, s->y, s->ystride, s->u, s->cstride, s->v,
               s->cstride, w, h);
    for (unsigned c = c0; c < c1; c++) {
        int bx = (int)(c - c0) * 16, bw = w - bx < 16 ? w - bx : 16;
        int cbw = (bw + 1) / 2;

        if (block_differs(s->y + bx, s->ystride, py + bx, sy, bw, h) ||
            block_differs(s->u + bx / 2, s->cstride, pu + bx / 2, su, cbw,
                          ch) ||
            block_differs(s->v + bx / 2, s->cstride, pv + bx / 2, sv, cbw,
                          ch)) {
            v->map[(size_t)r * v->map_cols + c] = 1;
            any = 1;
        }
    }
    if (!any)
        return;
    for (int i = 0; i < h; i++)
        memcpy(py + (size_t)i * sy, s->y + (size_t)i * s->ystride, (size_t)w);
    for (int i = 0; i < ch; i++) {
        memcpy(pu + (size_t)i * su, s->u + (size_t)i * s->cstride, (size_t)cw);
        memcpy(pv + (size_t)i * sv, s->v + (size_t)i * s->cstride, (size_t)cw);
    }
}

/* Exact damage for the touched blocks in rows [y0, y1). */
static void convert_exact(struct hd_venc *v, const struct conv_job *j)
{
    unsigned r, c, c0, cols = v->map_cols;

    for (r = (unsigned)j->y0 / 16; r < v->map_rows && (int)r * 16 < j->y1;
         r++) {
        const uint8_t *t = v->touched + (size_t)r * cols;

        for (c = 0; c < cols;) {
            while (c < cols && !t[c])
                c++;
            c0 = c;
            while (c < cols && t[c])
                c++;
            if (c0 < c)
                convert_run(v, j->in, j->strip, r, c0, c);
        }
    }
}

/* Convert the part of job j's areas in its rows. */
static void convert_rows(struct hd_venc *v, const struct conv_job *j)
{
    const struct hd_venc_input *in = j->in;
    int x0, y0, x1, y1;
    size_t i;

    if (j->y0 >= j->y1)
        return;
    if (j->mode == CONV_EXACT) {
        convert_exact(v, j);
        return;
    }
    if (j->mode == CONV_FULL) {
        convert_area(v, in, 0, j->y0, v->cfg.width, j->y1 - j->y0);
        return;
    }
    for (i = 0; i < in->n_rects; i++) {
        if (!clip_rect(v, &in->rects[i], &x0, &y0, &x1, &y1))
            continue;
        y0 = y0 > j->y0 ? y0 : j->y0;
        y1 = y1 < j->y1 ? y1 : j->y1;
        if (y0 < y1)
            convert_area(v, in, x0, y0, x1 - x0, y1 - y0);
    }
}

/* Pixels to convert above row y. */
static long long area_above(const struct hd_venc *v,
                            const struct hd_venc_input *in, enum conv_mode mode,
                            int y)
{
    int x0, y0, x1, y1;
    long long a = 0;
    size_t i;

    if (mode == CONV_FULL)
        return (long long)v->cfg.width * y;
    if (mode == CONV_EXACT) {
        unsigned r = (unsigned)(y + 15) / 16;

        return v->touched_above[r < v->map_rows ? r : v->map_rows] * 256;
    }
    for (i = 0; i < in->n_rects; i++)
        if (clip_rect(v, &in->rects[i], &x0, &y0, &x1, &y1) && y > y0)
            a += (long long)(x1 - x0) * ((y < y1 ? y : y1) - y0);
    return a;
}

/*
 * Convert on two threads when the helper runs and the area (pixels to
 * convert) is worth it: the helper takes the rows below a split row with
 * about half the area above it (a block row boundary for CONV_EXACT).
 */
static void convert(struct hd_venc *v, const struct hd_venc_input *in,
                    enum conv_mode mode, long long area)
{
    struct conv_job mine = { in, mode, 0, v->cfg.height, &v->strips[0] };
    int step = mode == CONV_EXACT ? 16 : 2;
    int lo = 0, hi = (v->cfg.height + step - 1) / step * step, mid;

    if (!v->helper_ok || area < SPLIT_MIN_PX) {
        convert_rows(v, &mine);
        return;
    }
    while (hi - lo > step) {
        mid = lo + (hi - lo) / 2 / step * step;
        if (mid <= lo)
            mid = lo + step;
        if (2 * area_above(v, in, mode, mid) >= area)
            hi = mid;
        else
            lo = mid;
    }
    mine.y1 = hi;
    pthread_mutex_lock(&v->mu);
    v->job = (struct conv_job){ in, mode, hi, v->cfg.height, &v->strips[1] };
    v->job_gen++;
    pthread_cond_signal(&v->work_cv);
    pthread_mutex_unlock(&v->mu);
    convert_rows(v, &mine);
    pthread_mutex_lock(&v->mu);
    while (v->done_gen != v->job_gen)
        pthread_cond_wait(&v->done_cv, &v->mu);
    pthread_mutex_unlock(&v->mu);
}

/* touched_above from touched: one pass, for the thread split's search. */
static void count_touched(struct hd_venc *v)
{
    const uint8_t *t = v->touched;
    long long sum = 0;

    v->touched_above[0] = 0;
    for (unsigned r = 0; r < v->map_rows; r++) {
        for (unsigned c = 0; c < v->map_cols; c++)
            sum += *t++;
        v->touched_above[r + 1] = sum;
    }
}

/*
 * Bring the I420 picture up to date and build the active map.  Returns 1
 * when the map should be used, 0 when the whole frame is active.
 */
static int prepare(struct hd_venc *v, const struct hd_venc_input *in)
{
    size_t i, n = (size_t)v->map_rows * v->map_cols;
    long long area = 0, frame = (long long)v->cfg.width * v->cfg.height;
    int x0, y0, x1, y1, full = in->rects == NULL || !v->have_frame;

    if (v->have_frame && v->cfg.active_map && v->cfg.exact_damage &&
        !v->pending_full && !v->refining) {
        memcpy(v->map, v->pending, n);
        if (in->rects == NULL) {
            memset(v->touched, 1, n);
        } else {
            memset(v->touched, 0, n);
            for (i = 0; i < in->n_rects; i++)
                if (clip_rect(v, &in->rects[i], &x0, &y0, &x1, &y1))
                    mark_blocks(v, v->touched, x0, y0, x1, y1);
        }
        count_touched(v);
        convert(v, in, CONV_EXACT,
                area_above(v, in, CONV_EXACT, v->cfg.height));
        return 1;
    }
    if (!full) {
        for (i = 0; i < in->n_rects; i++)
            if (clip_rect(v, &in->rects[i], &x0, &y0, &x1, &y1))
                area += (long long)(x1 - x0) * (y1 - y0);
        /* Overlapping rectangles would be converted twice: past the frame
         * area, one pass over everything is cheaper. */
        if (area >= frame)
            full = 2;
    }
    convert(v, in, full ? CONV_FULL : CONV_RECTS, full ? frame : area);
    v->have_frame = 1;
    if (full == 1 || !v->cfg.active_map || v->pending_full)
        return 0;
    memcpy(v->map, v->pending, n);
    for (i = 0; i < in->n_rects; i++)
        if (clip_rect(v, &in->rects[i], &x0, &y0, &x1, &y1))
            mark_blocks(v, v->map, x0, y0, x1, y1);
    return 1;
}

/* Remember this frame's changes for the next frame (it was dropped). */
static void carry_over(struct hd_venc *v, const struct hd_venc_input *in,
                       int used_map)
{
    size_t n = (size_t)v->map_rows * v->map_cols;

    if (!used_map) {
        v->pending_full = 1;
        return;
    }
    memcpy(v->pending, v->map, n);
    v->pending_any = 1;
}

static void clear_pending(struct hd_venc *v)
{
    if (v->pending_any)
        memset(v->pending, 0, (size_t)v->map_rows * v->map_cols);
    v->pending_any = 0;
    v->pending_full = 0;
}

int hd_venc_encode(struct hd_venc *venc, const struct hd_venc_input *in,
                   struct hd_venc_packet *out)
{
    struct hd_venc *v = venc;
    vpx_active_map_t am;
    vpx_enc_frame_flags_t flags = 0;
    const vpx_codec_cx_pkt_t *pkt;
    vpx_codec_iter_t iter = NULL;
    unsigned long duration;
    int64_t pts, t0;
    int used_map, got = 0;

    memset(out, 0, sizeof(*out));
    if (in->bgra == NULL || in->stride < (size_t)v->cfg.width * 4 ||
        (in->rects == NULL && in->n_rects != 0))
        return -EINVAL;

    t0 = now_us();
    used_map = prepare(v, in);
    out->convert_us = now_us() - t0;
    memset(&am, 0, sizeof(am));
    am.rows = v->map_rows;
    am.cols = v->map_cols;
    am.active_map = used_map ? v->map : NULL; /* NULL: all active */
    if (vpx_codec_control(&v->ctx, VP8E_SET_ACTIVEMAP, &am) != 0)
        return ctl_fail(v, "the active map");
    /*
     * The breakout test only pays when libvpx must find the unchanged
     * blocks itself.  With an active map they are skipped already and the
     * test costs time and sharpness on the blocks that did change
     * (bench_venc at 1080p: p50 4.6-5.8 ms vs 5.8-6.1, PSNR-Y +1.3 dB,
     * bytes +4 %, still under the target rate).
     */
    {
        int want = used_map ? 0 : v->cfg.static_thresh;

        if (want != v->static_now) {
            if (vpx_codec_control(&v->ctx, VP8E_SET_STATIC_THRESHOLD,
                                  (unsigned)want) != 0)
                return ctl_fail(v, "the static threshold");
            v->static_now = want;
        }
    }

    pts = in->pts_ms;
    if (v->last_pts != INT64_MIN && pts <= v->last_pts)
        pts = v->last_pts + 1;
    v->last_pts = pts;
    duration = (unsigned long)clampi(1000 / v->cfg.fps, 1, 1000);
    if (v->want_key)
        flags |= VPX_EFLAG_FORCE_KF;
    t0 = now_us();
    if (vpx_codec_encode(&v->ctx, &v->img, pts, duration, flags,
                         VPX_DL_REALTIME) != VPX_CODEC_OK) {
        hd_error(MOD, "encode failed: %s", vpx_codec_error(&v->ctx));
        return HD_ECONFIG;
    }
    out->codec_us = now_us() - t0;
    /* libvpx keeps the packet's bytes until the next encode call. */
    while ((pkt = vpx_codec_get_cx_data(&v->ctx, &iter)) != NULL) {
        if (pkt->kind != VPX_CODEC_CX_FRAME_PKT || got)
            continue;
        out->data = pkt->data.frame.buf;
        out->size = pkt->data.frame.sz;
        out->key = (pkt->data.frame.flags & VPX_FRAME_IS_KEY) != 0;
        got = 1;
    }
    out->pts_ms = pts;
    if (got) {
        if (out->key)
            v->want_key = 0;
        clear_pending(v);
    } else {
        carry_over(v, in, used_map);
    }
    return 0;
}

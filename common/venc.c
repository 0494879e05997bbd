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
 * Warm-up: libvpx allocates its lookahead, its scratch buffers and each
 * reference frame buffer (~4.7 MB at 1080p, cleared with memset) on first
 * use, so the first key frame and the three frames after it paid for
 * ~1100 first-touched pages each: bench_venc 1080p at load 10, CPU 186 ms
 * for the key frame and 20 ms for each of the next three (2 cells typed),
 * against 27 ms and 3 ms for the same frames in an encoder that had run
 * (a page's first touch costs ~17 us in this virtual machine).  Those
 * four frames of every new encoder made bench_venc's p99.  So
 * hd_venc_new encodes WARM_FRAMES flat frames and drops them; the
 * caller's first frame is a key frame as before.  That key frame is no
 * longer libvpx's frame 0, which CBR gives half the initial buffer
 * (buf_initial_ms: q 14, 246 kB for bench_venc's desktop); a later key
 * frame gets a few average frames (q 42, 154 kB, typing PSNR-Y 52 -> 45
 * dB).  Key frames are therefore coded with the quantizer capped at
 * cfg.key_max_q (HD_VENC_REFINE_MAX_Q, the refinement's "sharp"): the
 * first one as before (236 kB, typing 52.1 dB), and every later one too
 * (issue #16: a joining viewer got ~27 dB, sharpened only later).
 *
 * The conversion runs on two threads when the encoder has two or more
 * (libvpx's own threads are idle until vpx_codec_encode): a helper thread
 * converts the damaged areas below a split row chosen to halve the area,
 * the caller the rest, so no pixel is written by both.  Small areas stay
 * on the caller's thread: waking the helper costs more than it saves.
 */
#include "common/venc_int.h"

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
    cfg->key_max_q = HD_VENC_REFINE_MAX_Q;
    cfg->warm_up = 1;
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
             c->exact_damage < 0 || c->exact_damage > 1 || c->i444 < 0 ||
             c->i444 > 1)
        bad = "loop_filter/no_overshoot_maxq/exact_damage/i444";
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

/* One block row: luma 16 rows, chroma 8 (16 for I444), each as wide as
 * the map. */
static int strips_alloc(struct hd_venc *v)
{
    int ys = (int)v->map_cols * 16, cs = ys >> v->cs, ch = 16 >> v->cs;

    for (int i = 0; i < 2; i++) {
        struct strip *s = &v->strips[i];

        if ((s->y = malloc((size_t)ys * 16 + (size_t)cs * (size_t)ch * 2)) ==
            NULL)
            return -1;
        s->u = s->y + (size_t)ys * 16;
        s->v = s->u + (size_t)cs * (size_t)ch;
        s->ystride = ys;
        s->cstride = cs;
    }
    return 0;
}

/*
 * Encode WARM_FRAMES flat frames and drop their packets (see the opening
 * comment), then ask for a key frame again.
 */
#define WARM_FRAMES 5
static int warm_up(struct hd_venc *v)
{
    vpx_image_t *img = &v->img;
    unsigned long dur = (unsigned long)clampi(1000 / v->cfg.fps, 1, 1000);
    const vpx_codec_cx_pkt_t *pkt;
    vpx_codec_iter_t iter;

    for (int p = 0; p < 3; p++)
        for (unsigned y = 0; y < (p ? (img->d_h + v->cs) >> v->cs : img->d_h);
             y++)
            memset(img->planes[p] + (size_t)y * img->stride[p], p ? 128 : 16,
                   (size_t)img->stride[p]);
    for (int i = 0; i < WARM_FRAMES; i++) {
        if (vpx_codec_encode(&v->ctx, img, (vpx_codec_pts_t)i * dur, dur,
                             i == 0 ? VPX_EFLAG_FORCE_KF : 0,
                             VPX_DL_REALTIME) != VPX_CODEC_OK)
            return ctl_fail(v, "a warm-up frame");
        iter = NULL;
        while ((pkt = vpx_codec_get_cx_data(&v->ctx, &iter)) != NULL)
            ;
    }
    v->pts_base = -(int64_t)WARM_FRAMES * (int64_t)dur;
    v->want_key = 1;
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
    v->cs = cfg->i444 ? 0 : 1;
    v->want_key = 1;
    v->last_pts = INT64_MIN;
    v->map_rows = (unsigned)(cfg->height + 15) / 16;
    v->map_cols = (unsigned)(cfg->width + 15) / 16;
    map_n = (size_t)v->map_rows * v->map_cols;
    if ((v->map = malloc(map_n)) == NULL ||
        (v->pending = calloc(1, map_n)) == NULL ||
        (v->touched = malloc(map_n)) == NULL ||
        (v->lossy = calloc(1, map_n)) == NULL ||
        (v->want = malloc(map_n)) == NULL ||
        (v->tiled = calloc(1, map_n)) == NULL ||
        (v->release = malloc(10 + map_n * 5)) == NULL ||
        (v->touched_above = calloc(v->map_rows + 1, sizeof(long long))) ==
            NULL ||
        strips_alloc(v) != 0) {
        r = -ENOMEM;
        goto out;
    }
    if (vpx_img_alloc(&v->img, cfg->i444 ? VPX_IMG_FMT_I444 : VPX_IMG_FMT_I420,
                      (unsigned)cfg->width, (unsigned)cfg->height,
                      32) == NULL) {
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
    vc->g_profile = cfg->i444 ? 1 : 0; /* 1: 8-bit 4:4:4 */
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
    if (cfg->warm_up && (r = warm_up(v)) != 0)
        goto out;
    if (cfg->threads > 1)
        venc_helper_start(v);
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
    venc_helper_stop(venc);
    if (venc->ctx_ok)
        vpx_codec_destroy(&venc->ctx);
    if (venc->img_ok)
        vpx_img_free(&venc->img);
    free(venc->map);
    free(venc->pending);
    free(venc->touched);
    free(venc->lossy);
    free(venc->want);
    free(venc->tiled);
    free(venc->release);
    free(venc->tiles_msg);
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

void hd_venc_tile_first(struct hd_venc *venc, int on)
{
    venc->tile_first = on != 0;
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

/* Key frames (on): the quantizer capped at cfg.key_max_q; off: back to
 * the range in effect before. */
static int key_quality(struct hd_venc *v, int on)
{
    vpx_codec_enc_cfg_t vc = v->vcfg;

    if (v->cfg.key_max_q <= 0 || v->lossless_now)
        return 0;
    if (on && vc.rc_max_quantizer > (unsigned)v->cfg.key_max_q) {
        vc.rc_max_quantizer = (unsigned)v->cfg.key_max_q;
        if (vc.rc_min_quantizer > vc.rc_max_quantizer)
            vc.rc_min_quantizer = vc.rc_max_quantizer;
    } else if (on) {
        return 0;
    }
    if (vpx_codec_enc_config_set(&v->ctx, &vc) != VPX_CODEC_OK)
        return ctl_fail(v, "the key frame quantizer");
    v->key_q_now = on;
    return 0;
}

/*
 * A frame went out: its blocks (the active map, or all) are now coded
 * lossy, or, in lossless mode, exact; those the viewers showed from tiles
 * go into the packet's release list (a key frame releases all by itself).
 * Called before clear_pending: the map holds this frame's blocks.
 */
static void venc_mark_coded(struct hd_venc *v, int used_map, int key)
{
    size_t n = (size_t)v->map_rows * v->map_cols, len = 10, head;
    uint8_t val = v->lossless_now && !key ? 0 : 1, tmp[10];
    long prev = -1, count = 0;

    v->release_n = 0;
    if (key) {
        memset(v->lossy, 1, n);
        memset(v->tiled, 0, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (used_map && !v->map[i])
            continue;
        v->lossy[i] = val;
        if (!v->tiled[i])
            continue;
        v->tiled[i] = 0;
        len += hd_tiles_put_index(v->release + len, (long)i, prev);
        prev = (long)i;
        count++;
    }
    if (count == 0)
        return;
    /* the count in front: at most 10 bytes were left for it */
    head = hd_tiles_put_index(tmp, count, -1);
    memcpy(v->release + 10 - head, tmp, head);
    memmove(v->release, v->release + 10 - head, len - (10 - head));
    v->release_n = len - (10 - head);
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
                if (venc_clip_rect(v, &in->rects[i], &x0, &y0, &x1, &y1))
                    venc_mark_blocks(v, v->touched, x0, y0, x1, y1);
        }
        count_touched(v);
        venc_convert(v, in, CONV_EXACT,
                     venc_area_above(v, in, CONV_EXACT, v->cfg.height));
        return 1;
    }
    if (!full) {
        for (i = 0; i < in->n_rects; i++)
            if (venc_clip_rect(v, &in->rects[i], &x0, &y0, &x1, &y1))
                area += (long long)(x1 - x0) * (y1 - y0);
        /* Overlapping rectangles would be converted twice: past the frame
         * area, one pass over everything is cheaper. */
        if (area >= frame)
            full = 2;
    }
    venc_convert(v, in, full ? CONV_FULL : CONV_RECTS, full ? frame : area);
    v->have_frame = 1;
    if (full == 1 || !v->cfg.active_map || v->pending_full)
        return 0;
    memcpy(v->map, v->pending, n);
    for (i = 0; i < in->n_rects; i++)
        if (venc_clip_rect(v, &in->rects[i], &x0, &y0, &x1, &y1))
            venc_mark_blocks(v, v->map, x0, y0, x1, y1);
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
    int used_map, got = 0, r;

    memset(out, 0, sizeof(*out));
    if (in->bgra == NULL || in->stride < (size_t)v->cfg.width * 4 ||
        (in->rects == NULL && in->n_rects != 0))
        return -EINVAL;

    t0 = venc_now_us();
    used_map = prepare(v, in);
    free(v->tiles_msg);
    v->tiles_msg = NULL;
    v->tiles_n = 0;
    v->release_n = 0;
    if (v->tile_first && used_map && !v->want_key && !v->refining) {
        int left = 0;

        if ((r = venc_tiles_first(v)) != 0)
            return r;
        out->tiles = v->tiles_msg;
        out->tiles_n = v->tiles_n;
        for (size_t i = 0; i < (size_t)v->map_rows * v->map_cols && !left; i++)
            left = v->map[i];
        if (!left) { /* nothing for VP9 */
            out->convert_us = venc_now_us() - t0;
            out->pts_ms = in->pts_ms;
            clear_pending(v);
            return 0;
        }
    }
    out->convert_us = venc_now_us() - t0;
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
    if (v->last_pts == INT64_MIN)
        v->pts_base += pts; /* libvpx's time goes on from the warm-up */
    v->last_pts = pts;
    duration = (unsigned long)clampi(1000 / v->cfg.fps, 1, 1000);
    if (v->want_key) {
        flags |= VPX_EFLAG_FORCE_KF;
        if ((r = key_quality(v, 1)) != 0)
            return r;
    }
    t0 = venc_now_us();
    if (vpx_codec_encode(&v->ctx, &v->img, pts - v->pts_base, duration, flags,
                         VPX_DL_REALTIME) != VPX_CODEC_OK) {
        hd_error(MOD, "encode failed: %s", vpx_codec_error(&v->ctx));
        return HD_ECONFIG;
    }
    out->codec_us = venc_now_us() - t0;
    if (v->key_q_now && (r = key_quality(v, 0)) != 0)
        return r;
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
        venc_mark_coded(v, used_map && !out->key, out->key);
        out->release = v->release_n > 0 ? v->release : NULL;
        out->release_n = v->release_n;
        clear_pending(v);
    } else {
        carry_over(v, in, used_map);
    }
    return 0;
}

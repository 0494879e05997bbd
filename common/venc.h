/*
 * VP9 realtime screen encoder over libvpx (DESIGN.md section 3).
 *
 * Input is a BGRA frame (the X11 capture layout: bytes B, G, R, X, which
 * is libyuv's little-endian "ARGB") with an optional list of damaged
 * rectangles.  The encoder keeps one persistent I420 picture (I444 with
 * cfg.i444: VP9 profile 1): with damage
 * it converts only the damaged areas (aligned out to even coordinates for
 * the 2x2 chroma) and marks the 16x16 blocks they touch in VP9's active
 * map, so untouched blocks are coded as "skip, copy the previous frame";
 * without damage it converts the whole frame and codes it normally.
 *
 * Invariants: the I420 picture always equals the conversion of the newest
 * frame wherever the caller reported changes; blocks damaged in a frame
 * that the rate control dropped stay active until a frame is coded; one
 * frame in gives at most one packet out (lag 0, no alternate reference),
 * key frames only on request (or the first frame).
 *
 * Threads: a struct hd_venc belongs to one thread at a time (the capture +
 * encode thread); libvpx runs its own worker threads inside each call, and
 * with threads >= 2 the encoder keeps one helper thread that converts half
 * of a large damaged area before libvpx starts (never both at once).
 */
#ifndef HD_VENC_H
#define HD_VENC_H

#include <stddef.h>
#include <stdint.h>

/* Frame sizes accepted by hd_venc_new. */
#define HD_VENC_MIN_DIM 16
#define HD_VENC_MAX_DIM 16384

struct hd_venc_config {
    int width, height;     /* pixels, HD_VENC_MIN_DIM..HD_VENC_MAX_DIM */
    int fps;               /* nominal frame rate, 1..240 (frame duration) */
    int kbps;              /* CBR target bitrate, 10..100000 */
    int threads;           /* libvpx worker threads, 1..16 */
    int cpu_used;          /* VP9 speed, -9..9 (realtime: 5..9 sensible) */
    int tile_columns;      /* log2 of tile columns, 0..6; libvpx lowers it so
                            * that each tile is at least 256 pixels wide */
    int row_mt;            /* 1: row-based multithreading inside tiles */
    int aq_mode;           /* 0 none, 1 variance, 2 complexity, 3 cyclic */
    int screen;            /* 1: VP9E_CONTENT_SCREEN tuning */
    int error_resilient;   /* 1: VPX_ERROR_RESILIENT_DEFAULT */
    int drop_thresh;       /* rc_dropframe_thresh, 0 (never drop)..100 */
    int undershoot_pct;    /* rc_undershoot_pct, 0..100 */
    int overshoot_pct;     /* rc_overshoot_pct, 0..100 */
    int min_q, max_q;      /* quantizer range, 0 <= min_q <= max_q <= 63 */
    int buf_ms;            /* rate control buffer (size, initial, optimal) */
    int buf_initial_ms;    /* in milliseconds of the target bitrate; */
    int buf_optimal_ms;    /* 0 keeps libvpx's default for that field */
    int static_thresh;     /* VP8E_SET_STATIC_THRESHOLD, 0 = off */
    int frame_parallel;    /* VP9E_SET_FRAME_PARALLEL_DECODING, 0 or 1 */
    int max_intra_pct;     /* key frame size cap in % of an average frame,
                            * 0 = no cap */
    int active_map;        /* 1: damage rectangles drive VP9's active map */
    int loop_filter;       /* VP9E_SET_DISABLE_LOOPFILTER: 0 filter, 1 off
                            * on non-reference frames, 2 off */
    int no_overshoot_maxq; /* 1: VP9E_SET_DISABLE_OVERSHOOT_MAXQ_CBR (no
                            * max-q frame after a large change) */
    int exact_damage;      /* 1: damaged blocks are compared with the last
                            * picture, only changed ones are coded (needs
                            * active_map) */
    int i444;              /* 1: full-resolution chroma (I444, VP9 profile
                            * 1: coloured text stays sharp) for viewers
                            * that decode it; 0: I420, profile 0, what
                            * every VP9 decoder takes */
    int key_max_q;         /* key frames: quantizer at most this (0: the
                            * configured range) */
    int warm_up;           /* 1: hd_venc_new encodes a few flat frames so
                            * that libvpx's buffers exist before the first
                            * real frame (see venc.c) */
};

/* A damaged rectangle, in pixels; clipped to the frame by the encoder. */
struct hd_venc_rect {
    int x, y, w, h;
};

struct hd_venc_input {
    const uint8_t *bgra; /* width x height pixels, 4 bytes each */
    size_t stride;       /* bytes per row, >= 4 * width */
    int64_t pts_ms;      /* capture time in ms; must increase (a value not
                          * above the previous one is moved up by 1 ms) */
    /* NULL: the whole frame may have changed (full conversion, no active
     * map).  Otherwise n_rects rectangles (n_rects may be 0: nothing
     * changed) cover every pixel that differs from the previous frame. */
    const struct hd_venc_rect *rects;
    size_t n_rects;
};

struct hd_venc_packet {
    const uint8_t *data; /* NULL, size 0 when the frame was dropped by the
                          * rate control; valid until the next
                          * hd_venc_encode or hd_venc_free */
    size_t size;
    int key;        /* 1: a key frame, decodable on its own */
    int64_t pts_ms; /* the pts_ms used for this frame */
    /* the blocks this frame codes that viewers showed from still tiles
     * (hd_venc_tiles), as a release list (tiles.h) for
     * EncodedVideoFrame.hd_release; NULL when none; valid as data */
    const uint8_t *release;
    size_t release_n;
    /* tile first (hd_venc_tile_first): the changed blocks sent as still
     * tiles instead (a message for VideoFrame.hd_tiles, to go out before
     * the VP9 frame, if any: size 0 then means every changed block went
     * as tiles); NULL when none; valid as data */
    const uint8_t *tiles;
    size_t tiles_n;
    /* Where the call's wall time went (for benchmarks): the colour
     * conversion and the libvpx encode call, in microseconds. */
    int64_t convert_us, codec_us;
};

struct hd_venc;

/*
 * Our settings (DESIGN.md section 3) for a width x height screen at fps
 * and kbps: realtime, lag 0, cpu-used by resolution (9 at 1080p and
 * above, 8 at 720p and above, 7 below), aq-mode 3, screen tuning, row-mt,
 * tile columns by width and thread count, CBR with a 1 s buffer (the
 * first key frame may use 2 s), quantizer 2..56, static threshold 500,
 * error resilience off (see venc.c), no frame dropping, 2 threads, active
 * map, loop filter off, libvpx's max-quantizer overshoot handling off,
 * key frames at quantizer <= HD_VENC_REFINE_MAX_Q, warm-up on.
 */
void hd_venc_config_default(struct hd_venc_config *cfg, int width, int height,
                            int fps, int kbps);

/*
 * The reference RustDesk settings (PROTOCOL.md "Reference VP9 settings"),
 * the baseline the benchmark compares against: cpu-used 7, row-mt,
 * tile-columns control 4 (4 tiles at 1080p), CBR, error resilient, frame
 * drop threshold 25, undershoot 95 %, quantizer 24..50 (RustDesk's
 * calc_q_values for "balanced" 0.67), no screen tuning, no aq-mode, no
 * active map, bitrate width * height / 1000 * 0.67 kbps (1389 at 1080p),
 * 2 threads (RustDesk uses one per core; fixed here for a fair compare).
 */
void hd_venc_config_reference(struct hd_venc_config *cfg, int width, int height,
                              int fps);

/*
 * Create an encoder.  Returns 0 and sets *out, HD_ECONFIG for a value out
 * of range (one log line names it), -ENOMEM, or HD_ECONFIG when libvpx
 * refuses the configuration.  *out is NULL on failure.
 */
int hd_venc_new(const struct hd_venc_config *cfg, struct hd_venc **out);

/* Free the encoder and its buffers; NULL is accepted. */
void hd_venc_free(struct hd_venc *venc);

/*
 * Encode one frame.  Returns 0 with *out filled (out->size 0 when the rate
 * control dropped the frame), -EINVAL for a bad input (NULL pixels, stride
 * too small, a rectangle list with negative sizes is only clipped), or
 * HD_ECONFIG if libvpx failed (logged).  *out is cleared on entry.
 */
int hd_venc_encode(struct hd_venc *venc, const struct hd_venc_input *in,
                   struct hd_venc_packet *out);

/* Make the next coded frame a key frame (a viewer joined or lost sync). */
void hd_venc_request_keyframe(struct hd_venc *venc);

/*
 * Change the target bitrate and the nominal frame rate from the next frame
 * on (the round-trip based adaptation).  Returns 0, or HD_ECONFIG for a
 * value out of range or refused by libvpx (the old rate stays).
 */
int hd_venc_set_rate(struct hd_venc *venc, int kbps, int fps);

/*
 * Refinement of a still screen, level:
 *  HD_VENC_REFINE_OFF      the configured quantizer range;
 *  HD_VENC_REFINE_SHARP    the quantizer capped at HD_VENC_REFINE_MAX_Q, so
 *                          areas coded again while nothing changes come out
 *                          sharp (they are small: the bits are there);
 *  HD_VENC_REFINE_LOSSLESS quantizer 0 (VP9's lossless mode): the blocks
 *                          coded decode to exactly the encoder's I420
 *                          picture (text pixel-exact where the chroma is
 *                          flat).  Bounded by the areas the caller names.
 * Areas coded while refining skip the exact-damage comparison (they are
 * unchanged on purpose).  Returns 0, or HD_ECONFIG for another level or
 * when libvpx refused (the old level stays).
 */
#define HD_VENC_REFINE_MAX_Q 16
enum {
    HD_VENC_REFINE_OFF = 0,
    HD_VENC_REFINE_SHARP = 1,
    HD_VENC_REFINE_LOSSLESS = 2
};
int hd_venc_refine(struct hd_venc *venc, int level);

/*
 * Still tiles (common/tiles.h) for the refinement of still areas toward
 * viewers that decode them: of the 16x16 blocks under rects, those coded
 * lossy since they were last coded exactly are coded from the encoder's
 * picture as palette tiles where they fit (*msg, malloc'd, or NULL when
 * none did; the caller frees) and count as exact from then on; those that
 * do not fit (photo-like) come back in fallback[0..*n_fallback), block
 * aligned, at most max_fallback (the last one grows to cover the rest),
 * to be refined by VP9's lossless mode.  Blocks already exact are left
 * out of both.  Returns 0, or -ENOMEM.
 */
int hd_venc_tiles(struct hd_venc *venc, const struct hd_venc_rect *rects,
                  size_t n_rects, uint8_t **msg, size_t *msg_n,
                  struct hd_venc_rect *fallback, size_t *n_fallback,
                  size_t max_fallback);

/*
 * Tile first, toward viewers that decode still tiles: from the next frame
 * on, the changed blocks that fit a palette (text, flat areas) are coded
 * losslessly as tiles (out->tiles) rather than by VP9, which codes only
 * the rest (photo-like blocks), or nothing: TigerVNC's Tight sends text
 * so, in a tenth of VP9's bytes for a scrolled terminal.  Key frames,
 * frames without a damage list and refinement frames stay VP9.  The
 * viewers show those blocks from the tiles until a VP9 frame releases
 * them (out->release).
 */
void hd_venc_tile_first(struct hd_venc *venc, int on);

/* The configuration in effect (after hd_venc_set_rate). */
const struct hd_venc_config *hd_venc_get_config(const struct hd_venc *venc);

#endif

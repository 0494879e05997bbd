/*
 * VP9 decoder.  libvpx takes its frame buffers from our pool (external
 * frame buffer callbacks) so that the size of a picture announced by the
 * peer is capped before anything is allocated.  A buffer is zeroed when it
 * is (re)allocated, as libvpx asks, and reused as is afterwards (libvpx's
 * own pool does the same).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vpx/vp8dx.h>
#include <vpx/vpx_decoder.h>

#include "err.h"
#include "log.h"
#include "vdec.h"

#define MOD "vdec"

/* libvpx holds at most 8 references + 4 in flight (12); slack for
 * threads. */
#define POOL_MAX 20

/*
 * The largest buffer libvpx may ask for: an I444 picture of the maximum
 * size with the decoder's border (32..160 pixels each side, aligned).
 */
#define BORDER 160
#define MAX_FBUF                                      \
    ((size_t)(HD_VDEC_MAX_WIDTH + 2 * BORDER + 64) *  \
         (HD_VDEC_MAX_HEIGHT + 2 * BORDER + 64) * 3 + \
     (1u << 20))

struct fbuf {
    uint8_t *data;
    size_t size;
    int used;
};

struct hd_vdec {
    vpx_codec_ctx_t ctx;
    int ctx_ok;
    struct fbuf pool[POOL_MAX];
};

static int get_fb(void *priv, size_t min_size, vpx_codec_frame_buffer_t *fb)
{
    struct hd_vdec *d = priv;
    struct fbuf *f = NULL;
    size_t i;

    if (min_size > MAX_FBUF) {
        hd_warn(MOD, "peer picture too large (%zu bytes)", min_size);
        return -1;
    }
    /* Prefer a free buffer that is big enough, then any free one. */
    for (i = 0; i < POOL_MAX; i++) {
        if (d->pool[i].used)
            continue;
        if (d->pool[i].size >= min_size) {
            f = &d->pool[i];
            break;
        }
        if (f == NULL)
            f = &d->pool[i];
    }
    if (f == NULL)
        return -1;
    if (f->size < min_size) {
        free(f->data);
        f->size = 0;
        if ((f->data = calloc(1, min_size)) == NULL)
            return -1;
        f->size = min_size;
    }
    f->used = 1;
    fb->data = f->data;
    fb->size = f->size;
    fb->priv = f;
    return 0;
}

static int release_fb(void *priv, vpx_codec_frame_buffer_t *fb)
{
    struct fbuf *f = fb->priv;

    if (f != NULL)
        f->used = 0;
    return 0;
}

int hd_vdec_new(int threads, struct hd_vdec **out)
{
    struct hd_vdec *d;
    vpx_codec_dec_cfg_t cfg;
    int r;

    *out = NULL;
    if (threads < 1 || threads > 16) {
        hd_error(MOD, "invalid decoder thread count %d", threads);
        return HD_ECONFIG;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return -ENOMEM;
    memset(&cfg, 0, sizeof(cfg));
    cfg.threads = (unsigned)threads;
    if (vpx_codec_dec_init(&d->ctx, vpx_codec_vp9_dx(), &cfg, 0) !=
        VPX_CODEC_OK) {
        hd_error(MOD, "VP9 decoder init failed: %s", vpx_codec_error(&d->ctx));
        r = HD_ECONFIG;
        goto out;
    }
    d->ctx_ok = 1;
    if (vpx_codec_set_frame_buffer_functions(&d->ctx, get_fb, release_fb, d) !=
        VPX_CODEC_OK) {
        hd_error(MOD, "VP9 decoder refused frame buffers: %s",
                 vpx_codec_error(&d->ctx));
        r = HD_ECONFIG;
        goto out;
    }
    *out = d;
    d = NULL;
    r = 0;
out:
    hd_vdec_free(d);
    return r;
}

void hd_vdec_free(struct hd_vdec *vdec)
{
    size_t i;

    if (vdec == NULL)
        return;
    /* Destroy first: libvpx releases its buffers into the pool. */
    if (vdec->ctx_ok)
        vpx_codec_destroy(&vdec->ctx);
    for (i = 0; i < POOL_MAX; i++)
        free(vdec->pool[i].data);
    free(vdec);
}

int hd_vdec_decode(struct hd_vdec *vdec, const uint8_t *data, size_t n,
                   struct hd_vdec_picture *out)
{
    vpx_codec_stream_info_t si;
    vpx_codec_iter_t iter = NULL;
    vpx_image_t *img, *shown = NULL;
    const char *detail;
    int p;

    memset(out, 0, sizeof(*out));
    if (n > HD_VDEC_MAX_PACKET) {
        hd_warn(MOD, "packet of %zu bytes above the limit", n);
        return HD_ETOOBIG;
    }
    if (data == NULL || n == 0) {
        hd_warn(MOD, "empty packet");
        return HD_EPROTO;
    }
    memset(&si, 0, sizeof(si));
    si.sz = sizeof(si);
    if (vpx_codec_peek_stream_info(vpx_codec_vp9_dx(), data, (unsigned)n,
                                   &si) == VPX_CODEC_OK) {
        if (si.is_kf &&
            (si.w > HD_VDEC_MAX_WIDTH || si.h > HD_VDEC_MAX_HEIGHT)) {
            hd_warn(MOD, "key frame of %ux%u above the limit", si.w, si.h);
            return HD_ETOOBIG;
        }
        out->key = si.is_kf != 0;
    }
    if (vpx_codec_decode(&vdec->ctx, data, (unsigned)n, NULL, 0) !=
        VPX_CODEC_OK) {
        detail = vpx_codec_error_detail(&vdec->ctx);
        hd_warn(MOD, "bad VP9 packet (%zu bytes): %s%s%s", n,
                vpx_codec_error(&vdec->ctx), detail ? ": " : "",
                detail ? detail : "");
        out->key = 0;
        return HD_EPROTO;
    }
    /* One packet shows at most one picture; keep the last just in case. */
    while ((img = vpx_codec_get_frame(&vdec->ctx, &iter)) != NULL)
        shown = img;
    if (shown == NULL)
        return 0;
    if ((shown->fmt != VPX_IMG_FMT_I420 && shown->fmt != VPX_IMG_FMT_I444) ||
        shown->d_w > HD_VDEC_MAX_WIDTH || shown->d_h > HD_VDEC_MAX_HEIGHT) {
        hd_warn(MOD, "unsupported picture (format %d, %ux%u)", (int)shown->fmt,
                shown->d_w, shown->d_h);
        out->key = 0;
        return HD_EPROTO;
    }
    for (p = 0; p < 3; p++) {
        out->planes[p] = shown->planes[p];
        out->stride[p] = shown->stride[p];
    }
    out->width = (int)shown->d_w;
    out->height = (int)shown->d_h;
    out->cs = shown->fmt == VPX_IMG_FMT_I444 ? 0 : 1;
    return 0;
}

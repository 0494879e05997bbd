/*
 * BGRA -> I420 conversion of the VP9 encoder (see venc.c's opening comment
 * on exact damage and the thread split): the helper thread, the areas under
 * the damage rectangles converted a block row at a time and compared with
 * the picture libvpx was given last, the split row that halves the work.
 */
#include "common/venc_int.h"

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
void venc_helper_start(struct hd_venc *v)
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

void venc_helper_stop(struct hd_venc *v)
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

int64_t venc_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * BGRA to I444, BT.601 limited range, rounded to nearest (16-bit fixed
 * point).  libyuv's ARGBToI444 truncates its U and V: decoded again by
 * libyuv's I444ToARGB (the viewer), random colours come back at 46.5 dB
 * PSNR against 50.6 dB rounded; the test's dark blue 1a3a8a came back as
 * 193a87 (43 dB), now 193a89.  With 4:4:4 the chroma is there to be
 * exact, so the conversion's own error is what is left of a lossless
 * refinement.
 */
static void bgra_to_i444(const uint8_t *src, int stride, uint8_t *y, int sy,
                         uint8_t *u, int su, uint8_t *v, int sv, int w, int h)
{
    for (int j = 0; j < h; j++) {
        const uint8_t *s = src + (size_t)j * stride;
        uint8_t *py = y + (size_t)j * sy, *pu = u + (size_t)j * su,
                *pv = v + (size_t)j * sv;

        for (int i = 0; i < w; i++, s += 4) {
            int b = s[0], g = s[1], r = s[2];

            py[i] =
                (uint8_t)((16829 * r + 33039 * g + 6416 * b + 1081344) >> 16);
            pu[i] =
                (uint8_t)((-9714 * r - 19070 * g + 28784 * b + 8421376) >> 16);
            pv[i] =
                (uint8_t)((28784 * r - 24103 * g - 4681 * b + 8421376) >> 16);
        }
    }
}

/* BGRA to the picture's format (the same arguments for both). */
static void to_yuv(const struct hd_venc *v, const uint8_t *src, int stride,
                   uint8_t *y, int sy, uint8_t *u, int su, uint8_t *vp, int sv,
                   int w, int h)
{
    if (v->cs)
        ARGBToI420(src, stride, y, sy, u, su, vp, sv, w, h);
    else
        bgra_to_i444(src, stride, y, sy, u, su, vp, sv, w, h);
}

/* Convert an area (already clipped, even origin) of the BGRA frame. */
static void convert_area(struct hd_venc *v, const struct hd_venc_input *in,
                         int x, int y, int w, int h)
{
    vpx_image_t *img = &v->img;
    int sy = img->stride[VPX_PLANE_Y], su = img->stride[VPX_PLANE_U],
        sv = img->stride[VPX_PLANE_V], cs = v->cs;

    to_yuv(v, in->bgra + (size_t)y * in->stride + (size_t)x * 4,
           (int)in->stride, img->planes[VPX_PLANE_Y] + (size_t)y * sy + x, sy,
           img->planes[VPX_PLANE_U] + (size_t)(y >> cs) * su + (x >> cs), su,
           img->planes[VPX_PLANE_V] + (size_t)(y >> cs) * sv + (x >> cs), sv, w,
           h);
}

/*
 * Clip r to the frame and align it out to even coordinates (a chroma
 * sample covers 2x2 pixels).  Returns 0 when nothing is left.
 */
int venc_clip_rect(const struct hd_venc *v, const struct hd_venc_rect *r,
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

void venc_mark_blocks(const struct hd_venc *v, uint8_t *map, int x0, int y0,
                      int x1, int y1)
{
    unsigned r, c, r1 = (unsigned)(y1 + 15) / 16, c1 = (unsigned)(x1 + 15) / 16;

    for (r = (unsigned)y0 / 16; r < r1 && r < v->map_rows; r++)
        for (c = (unsigned)x0 / 16; c < c1 && c < v->map_cols; c++)
            map[(size_t)r * v->map_cols + c] = 1;
}

/* Do rows of a plane's block (w x h samples at a, b) differ? */
static int block_differs(const uint8_t *a, int sa, const uint8_t *b, int sb,
                         int w, int h)
{
    for (int y = 0; y < h; y++)
        if (memcmp(a + (size_t)y * sa, b + (size_t)y * sb, (size_t)w) != 0)
            return 1;
    return 0;
}

/*
 * Exact damage for the touched blocks [c0, c1) of block row r: venc_convert
 * them into the strip, mark the blocks that differ from the picture in
 * the active map and bring the picture up to date.
 */
static void convert_run(struct hd_venc *v, const struct hd_venc_input *in,
                        struct strip *s, unsigned r, unsigned c0, unsigned c1)
{
    vpx_image_t *img = &v->img;
    int sy = img->stride[VPX_PLANE_Y], su = img->stride[VPX_PLANE_U],
        sv = img->stride[VPX_PLANE_V], cs = v->cs;
    int x = (int)c0 * 16, y = (int)r * 16;
    int xe = (int)c1 * 16 < v->cfg.width ? (int)c1 * 16 : v->cfg.width;
    int w = xe - x, h = v->cfg.height - y < 16 ? v->cfg.height - y : 16;
    int cw = (w + cs) >> cs, ch = (h + cs) >> cs, any = 0;
    uint8_t *py = img->planes[VPX_PLANE_Y] + (size_t)y * sy + x;
    uint8_t *pu = img->planes[VPX_PLANE_U] + (size_t)(y >> cs) * su + (x >> cs);
    uint8_t *pv = img->planes[VPX_PLANE_V] + (size_t)(y >> cs) * sv + (x >> cs);

    to_yuv(v, in->bgra + (size_t)y * in->stride + (size_t)x * 4,
           (int)in->stride, s->y, s->ystride, s->u, s->cstride, s->v,
           s->cstride, w, h);
    for (unsigned c = c0; c < c1; c++) {
        int bx = (int)(c - c0) * 16, bw = w - bx < 16 ? w - bx : 16;
        int cbw = (bw + cs) >> cs, cbx = bx >> cs;

        if (block_differs(s->y + bx, s->ystride, py + bx, sy, bw, h) ||
            block_differs(s->u + cbx, s->cstride, pu + cbx, su, cbw, ch) ||
            block_differs(s->v + cbx, s->cstride, pv + cbx, sv, cbw, ch)) {
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
        if (!venc_clip_rect(v, &in->rects[i], &x0, &y0, &x1, &y1))
            continue;
        y0 = y0 > j->y0 ? y0 : j->y0;
        y1 = y1 < j->y1 ? y1 : j->y1;
        if (y0 < y1)
            convert_area(v, in, x0, y0, x1 - x0, y1 - y0);
    }
}

/* Pixels to venc_convert above row y. */
long long venc_area_above(const struct hd_venc *v,
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
        if (venc_clip_rect(v, &in->rects[i], &x0, &y0, &x1, &y1) && y > y0)
            a += (long long)(x1 - x0) * ((y < y1 ? y : y1) - y0);
    return a;
}

/*
 * Convert on two threads when the helper runs and the area (pixels to
 * venc_convert) is worth it: the helper takes the rows below a split row with
 * about half the area above it (a block row boundary for CONV_EXACT).
 */
void venc_convert(struct hd_venc *v, const struct hd_venc_input *in,
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
        if (2 * venc_area_above(v, in, mode, mid) >= area)
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

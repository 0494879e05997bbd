/*
 * Still tiles from the encoder's picture (hd_venc_tiles, venc.h): the
 * blocks to refine are marked in v->want, those still lossy in v->lossy
 * are offered to the tile coder in raster order, and the ones it refuses
 * are gathered into block-aligned runs for VP9's lossless refinement.
 * The picture is up to date wherever a change was reported (venc.h), so
 * the tiles show what the screen shows now.
 */
#include "common/venc_int.h"

/* Append the run of blocks [c0, c1) of block row r to the fallback list. */
static void fallback_add(const struct hd_venc *v, unsigned r, unsigned c0,
                         unsigned c1, struct hd_venc_rect *fb, size_t *n,
                         size_t max)
{
    struct hd_venc_rect b = { (int)c0 * 16, (int)r * 16, (int)(c1 - c0) * 16,
                              16 };

    if (b.x + b.w > v->cfg.width)
        b.w = v->cfg.width - b.x;
    if (b.y + b.h > v->cfg.height)
        b.h = v->cfg.height - b.y;
    if (*n < max) {
        fb[(*n)++] = b;
        return;
    }
    if (max == 0)
        return;
    /* full: the last one grows to the bounding box */
    {
        struct hd_venc_rect *l = &fb[max - 1];
        int x1 = l->x + l->w > b.x + b.w ? l->x + l->w : b.x + b.w;
        int y1 = l->y + l->h > b.y + b.h ? l->y + l->h : b.y + b.h;

        l->x = l->x < b.x ? l->x : b.x;
        l->y = l->y < b.y ? l->y : b.y;
        l->w = x1 - l->x;
        l->h = y1 - l->y;
    }
}

/* The encoder's picture, as the tile coder reads it. */
static void tiles_pic(const struct hd_venc *v, struct hd_tiles_pic *pic)
{
    for (int p = 0; p < 3; p++) {
        pic->plane[p] = v->img.planes[p];
        pic->stride[p] = v->img.stride[p];
    }
    pic->w = v->cfg.width;
    pic->h = v->cfg.height;
    pic->cs = v->cs;
}

/* Block i goes as a tile: exact on the viewers, and theirs until a VP9
 * frame releases it. */
static void mark_tiled(struct hd_venc *v, size_t i)
{
    v->lossy[i] = 0;
    v->tiled[i] = 1;
}

/*
 * Tile first (venc.h): the blocks of this frame's active map that fit a
 * palette go into v->tiles_msg and leave the map.  0 or -ENOMEM.
 */
int venc_tiles_first(struct hd_venc *v)
{
    struct hd_tiles_pic pic;
    struct hd_tiles_enc e;
    size_t n = (size_t)v->map_rows * v->map_cols;
    int r;

    tiles_pic(v, &pic);
    if (hd_tiles_begin(&e, &pic) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!v->map[i])
            continue;
        r = hd_tiles_add(&e, (int)(i % v->map_cols), (int)(i / v->map_cols));
        if (r < 0) {
            hd_tiles_abort(&e);
            return r;
        }
        if (r == 1) {
            v->map[i] = 0;
            mark_tiled(v, i);
        }
    }
    return hd_tiles_finish(&e, &v->tiles_msg, &v->tiles_n);
}

int hd_venc_tiles(struct hd_venc *venc, const struct hd_venc_rect *rects,
                  size_t n_rects, uint8_t **msg, size_t *msg_n,
                  struct hd_venc_rect *fallback, size_t *n_fallback,
                  size_t max_fallback)
{
    struct hd_venc *v = venc;
    struct hd_tiles_pic pic;
    struct hd_tiles_enc e;
    size_t n = (size_t)v->map_rows * v->map_cols;
    int x0, y0, x1, y1, r;

    *msg = NULL;
    *msg_n = 0;
    *n_fallback = 0;
    memset(v->want, 0, n);
    for (size_t i = 0; i < n_rects; i++)
        if (venc_clip_rect(v, &rects[i], &x0, &y0, &x1, &y1))
            venc_mark_blocks(v, v->want, x0, y0, x1, y1);
    tiles_pic(v, &pic);
    if (!v->have_frame || hd_tiles_begin(&e, &pic) != 0)
        return 0; /* nothing coded yet: nothing to refine */
    for (unsigned br = 0; br < v->map_rows; br++) {
        unsigned run0 = 0, in_run = 0;

        for (unsigned bc = 0; bc <= v->map_cols; bc++) {
            size_t i = (size_t)br * v->map_cols + bc;
            int refused = 0;

            if (bc < v->map_cols && v->want[i] && v->lossy[i]) {
                if ((r = hd_tiles_add(&e, (int)bc, (int)br)) < 0) {
                    hd_tiles_abort(&e);
                    return r;
                }
                if (r == 1)
                    mark_tiled(v, i);
                refused = r == 0;
            }
            if (refused && !in_run) {
                run0 = bc;
                in_run = 1;
            } else if (!refused && in_run) {
                fallback_add(v, br, run0, bc, fallback, n_fallback,
                             max_fallback);
                in_run = 0;
            }
        }
    }
    return hd_tiles_finish(&e, msg, msg_n);
}

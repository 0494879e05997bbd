/*
 * Still tiles: palette blocks, zstd-compressed.  See tiles.h for the
 * format.  The encoder writes the uncompressed message into a buffer that
 * grows by at most TILE_MAX bytes a block; the decoder decompresses into
 * a buffer capped by the picture's block count and reads it with bounds
 * checks on every field.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "err.h"
#include "log.h"
#include "tiles.h"

#define MOD "tiles"

/*
 * zstd levels: a frame's tiles are a few kB before compression (a typed
 * key, a dragged window: 700-800 bytes compressed), where a high level
 * costs well under a millisecond and saves a fifth of the bytes; a large
 * message (a whole screen after a key frame) gets zstd's default, fast.
 */
#define TILES_LEVEL_SMALL 12
#define TILES_LEVEL       3
#define TILES_SMALL       (64 * 1024)
#define TILES_HEADER      10
/* The most one block can take: a 5-byte index, three planes of a count,
 * 16 palette values and 16 rows of 8 bytes (4 bits a sample). */
#define TILE_MAX (5 + 3 * (1 + HD_TILES_MAX_COLOURS + HD_TILES_BLOCK * 8))

/* The samples of block (bx, by) in plane pl: [x0, x0 + w) x [y0, y0 + h). */
static void plane_box(const struct hd_tiles_pic *p, int pl, int bx, int by,
                      int *x0, int *y0, int *w, int *h)
{
    int sh = pl ? p->cs : 0;
    int pw = (p->w + sh) >> sh, ph = (p->h + sh) >> sh;
    int x1 = (bx * HD_TILES_BLOCK + HD_TILES_BLOCK) >> sh;
    int y1 = (by * HD_TILES_BLOCK + HD_TILES_BLOCK) >> sh;

    *x0 = (bx * HD_TILES_BLOCK) >> sh;
    *y0 = (by * HD_TILES_BLOCK) >> sh;
    *w = (x1 < pw ? x1 : pw) - *x0;
    *h = (y1 < ph ? y1 : ph) - *y0;
}

static int bits_for(int n)
{
    return n <= 1 ? 0 : n <= 2 ? 1 : n <= 4 ? 2 : 4;
}

static int pic_ok(const struct hd_tiles_pic *p)
{
    return p->w > 0 && p->h > 0 && p->w <= HD_TILES_MAX_DIM &&
           p->h <= HD_TILES_MAX_DIM && (p->cs == 0 || p->cs == 1) &&
           p->plane[0] != NULL && p->plane[1] != NULL && p->plane[2] != NULL;
}

static long block_cols(const struct hd_tiles_pic *p)
{
    return (p->w + HD_TILES_BLOCK - 1) / HD_TILES_BLOCK;
}

static long block_count(const struct hd_tiles_pic *p)
{
    return block_cols(p) * ((p->h + HD_TILES_BLOCK - 1) / HD_TILES_BLOCK);
}

int hd_tiles_begin(struct hd_tiles_enc *e, const struct hd_tiles_pic *pic)
{
    memset(e, 0, sizeof(*e));
    if (!pic_ok(pic))
        return -EINVAL;
    e->pic = pic;
    e->last = -1;
    return 0;
}

/*
 * The palette of one plane of a block, sorted (equal blocks give equal
 * bytes, which zstd finds): 1 with pal[*n], 0 when it has more than
 * HD_TILES_MAX_COLOURS values.  lut[v] = index + 1 of each value present.
 */
static int palette(const struct hd_tiles_pic *p, int pl, int x0, int y0, int w,
                   int h, uint8_t pal[HD_TILES_MAX_COLOURS], int *n,
                   uint8_t lut[256])
{
    int k = 0;

    memset(lut, 0, 256);
    for (int y = 0; y < h; y++) {
        const uint8_t *row =
            p->plane[pl] + (size_t)(y0 + y) * p->stride[pl] + x0;

        for (int x = 0; x < w; x++) {
            if (lut[row[x]])
                continue;
            if (k == HD_TILES_MAX_COLOURS)
                return 0;
            lut[row[x]] = 1;
            pal[k++] = row[x];
        }
    }
    for (int i = 1; i < k; i++) /* insertion sort, k <= 16 */
        for (int j = i; j > 0 && pal[j - 1] > pal[j]; j--) {
            uint8_t t = pal[j];

            pal[j] = pal[j - 1];
            pal[j - 1] = t;
        }
    for (int i = 0; i < k; i++)
        lut[pal[i]] = (uint8_t)(i + 1);
    *n = k;
    return 1;
}

size_t hd_tiles_put_index(uint8_t *buf, long idx, long prev)
{
    unsigned long delta = (unsigned long)(idx - prev - 1);
    size_t n = 0;

    do {
        buf[n++] = (uint8_t)((delta & 0x7f) | (delta > 0x7f ? 0x80 : 0));
        delta >>= 7;
    } while (delta != 0);
    return n;
}

int hd_tiles_add(struct hd_tiles_enc *e, int bx, int by)
{
    const struct hd_tiles_pic *p = e->pic;
    uint8_t pal[3][HD_TILES_MAX_COLOURS], lut[3][256], *o;
    int n[3], x0[3], y0[3], w[3], h[3];
    long idx = (long)by * block_cols(p) + bx;

    if (bx < 0 || by < 0 || bx >= block_cols(p) || idx >= block_count(p) ||
        idx <= e->last)
        return -EINVAL;
    for (int pl = 0; pl < 3; pl++) {
        plane_box(p, pl, bx, by, &x0[pl], &y0[pl], &w[pl], &h[pl]);
        if (!palette(p, pl, x0[pl], y0[pl], w[pl], h[pl], pal[pl], &n[pl],
                     lut[pl]))
            return 0;
    }
    if (e->cap - e->len < TILE_MAX) {
        size_t cap = e->cap ? e->cap * 2 : 4096;
        uint8_t *nr = realloc(e->raw, cap);

        if (nr == NULL)
            return -ENOMEM;
        if (e->cap == 0) /* room for the header, written at the end */
            e->len = TILES_HEADER;
        e->raw = nr;
        e->cap = cap;
    }
    o = e->raw + e->len;
    o += hd_tiles_put_index(o, idx, e->last);
    for (int pl = 0; pl < 3; pl++) {
        int bits = bits_for(n[pl]);

        *o++ = (uint8_t)n[pl];
        memcpy(o, pal[pl], (size_t)n[pl]);
        o += n[pl];
        if (bits == 0)
            continue;
        for (int y = 0; y < h[pl]; y++) {
            const uint8_t *row =
                p->plane[pl] + (size_t)(y0[pl] + y) * p->stride[pl] + x0[pl];
            unsigned acc = 0, have = 0;

            for (int x = 0; x < w[pl]; x++) {
                acc = (acc << bits) | (unsigned)(lut[pl][row[x]] - 1);
                have += (unsigned)bits;
                if (have == 8) {
                    *o++ = (uint8_t)acc;
                    acc = have = 0;
                }
            }
            if (have > 0)
                *o++ = (uint8_t)(acc << (8 - have));
        }
    }
    e->len = (size_t)(o - e->raw);
    e->last = idx;
    e->n++;
    return 1;
}

void hd_tiles_abort(struct hd_tiles_enc *e)
{
    free(e->raw);
    memset(e, 0, sizeof(*e));
}

int hd_tiles_finish(struct hd_tiles_enc *e, uint8_t **out, size_t *out_n)
{
    uint8_t *h = e->raw, *z;
    size_t bound, zn;

    *out = NULL;
    *out_n = 0;
    if (e->n == 0) {
        hd_tiles_abort(e);
        return 0;
    }
    h[0] = HD_TILES_VERSION;
    h[1] = (uint8_t)e->pic->cs;
    h[2] = (uint8_t)e->pic->w;
    h[3] = (uint8_t)(e->pic->w >> 8);
    h[4] = (uint8_t)e->pic->h;
    h[5] = (uint8_t)(e->pic->h >> 8);
    for (int i = 0; i < 4; i++)
        h[6 + i] = (uint8_t)(e->n >> (8 * i));
    bound = ZSTD_compressBound(e->len);
    if ((z = malloc(bound)) == NULL) {
        hd_tiles_abort(e);
        return -ENOMEM;
    }
    zn = ZSTD_compress(z, bound, e->raw, e->len,
                       e->len <= TILES_SMALL ? TILES_LEVEL_SMALL : TILES_LEVEL);
    hd_tiles_abort(e);
    if (ZSTD_isError(zn)) { /* cannot happen with a bound-sized buffer */
        free(z);
        return -ENOMEM;
    }
    *out = z;
    *out_n = zn;
    return 0;
}

/* A bounded reader of the decompressed message. */
struct rd {
    const uint8_t *p;
    size_t pos, len;
};

static int rd_u8(struct rd *r, unsigned *v)
{
    if (r->pos >= r->len)
        return -1;
    *v = r->p[r->pos++];
    return 0;
}

static int rd_varint(struct rd *r, unsigned long *v)
{
    unsigned b;

    *v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (rd_u8(r, &b) != 0)
            return -1;
        *v |= (unsigned long)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

static void dirty_add(struct hd_tiles_rect *d, int x, int y, int w, int h)
{
    int x1, y1;

    if (d->w <= 0) {
        *d = (struct hd_tiles_rect){ x, y, w, h };
        return;
    }
    x1 = d->x + d->w > x + w ? d->x + d->w : x + w;
    y1 = d->y + d->h > y + h ? d->y + d->h : y + h;
    d->x = d->x < x ? d->x : x;
    d->y = d->y < y ? d->y : y;
    d->w = x1 - d->x;
    d->h = y1 - d->y;
}

/* One block's three planes from r into pic.  0, or -1 (malformed). */
static int read_block(struct rd *r, struct hd_tiles_pic *pic, int bx, int by)
{
    for (int pl = 0; pl < 3; pl++) {
        uint8_t pal[HD_TILES_MAX_COLOURS];
        unsigned n, v;
        int x0, y0, w, h, bits;
        size_t row_bytes;

        plane_box(pic, pl, bx, by, &x0, &y0, &w, &h);
        if (rd_u8(r, &n) != 0 || n < 1 || n > HD_TILES_MAX_COLOURS ||
            r->len - r->pos < n)
            return -1;
        memcpy(pal, r->p + r->pos, n);
        r->pos += n;
        bits = bits_for((int)n);
        row_bytes = ((size_t)w * (size_t)bits + 7) / 8;
        if (bits > 0 && (r->len - r->pos) / row_bytes < (size_t)h)
            return -1;
        for (int y = 0; y < h; y++) {
            uint8_t *out =
                pic->plane[pl] + (size_t)(y0 + y) * pic->stride[pl] + x0;
            const uint8_t *in = r->p + r->pos;

            if (bits == 0) {
                memset(out, pal[0], (size_t)w);
                continue;
            }
            for (int x = 0; x < w; x++) {
                size_t bit = (size_t)x * (size_t)bits;

                v = (in[bit / 8] >> (8 - bits - bit % 8)) & ((1u << bits) - 1);
                if (v >= n)
                    return -1;
                out[x] = pal[v];
            }
            r->pos += row_bytes;
        }
    }
    return 0;
}

int hd_tiles_decode(const uint8_t *data, size_t n, struct hd_tiles_pic *pic,
                    struct hd_tiles_rect *dirty, uint8_t *owned)
{
    unsigned long long size;
    size_t cap, got;
    uint8_t *raw = NULL;
    struct rd r;
    unsigned long count, delta;
    long idx = -1, cols, blocks;
    int ret = HD_EPROTO;
    const char *why = NULL;

    memset(dirty, 0, sizeof(*dirty));
    if (!pic_ok(pic)) {
        hd_warn(MOD, "tiles for a picture not shown yet: ignored");
        return HD_EPROTO;
    }
    cols = block_cols(pic);
    blocks = block_count(pic);
    cap = TILES_HEADER + (size_t)blocks * TILE_MAX;
    size = ZSTD_getFrameContentSize(data, n);
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR ||
        size < TILES_HEADER) {
        hd_warn(MOD,
                "bad tiles message from the host (%zu bytes): not a "
                "sized zstd frame",
                n);
        return HD_EPROTO;
    }
    if (size > cap) {
        hd_warn(MOD,
                "tiles message of %llu bytes above the %zu a %dx%d "
                "picture can need",
                size, cap, pic->w, pic->h);
        return HD_ETOOBIG;
    }
    if ((raw = malloc((size_t)size)) == NULL)
        return -ENOMEM;
    got = ZSTD_decompress(raw, (size_t)size, data, n);
    if (ZSTD_isError(got) || got != size) {
        why = "does not decompress";
        goto out;
    }
    if (raw[0] != HD_TILES_VERSION || raw[1] != pic->cs ||
        (raw[2] | raw[3] << 8) != pic->w || (raw[4] | raw[5] << 8) != pic->h) {
        hd_warn(MOD,
                "tiles for a %dx%d picture (version %u, chroma %u) "
                "while showing %dx%d: ignored",
                raw[2] | raw[3] << 8, raw[4] | raw[5] << 8, raw[0], raw[1],
                pic->w, pic->h);
        goto out;
    }
    count = (unsigned long)raw[6] | (unsigned long)raw[7] << 8 |
            (unsigned long)raw[8] << 16 | (unsigned long)raw[9] << 24;
    if (count > (unsigned long)blocks) {
        why = "more blocks than the picture has";
        goto out;
    }
    r = (struct rd){ raw, TILES_HEADER, (size_t)size };
    for (unsigned long i = 0; i < count; i++) {
        int bx, by;

        if (rd_varint(&r, &delta) != 0 ||
            delta >= (unsigned long)(blocks - idx - 1)) {
            why = "block index outside the picture";
            goto out;
        }
        idx += (long)delta + 1;
        bx = (int)(idx % cols);
        by = (int)(idx / cols);
        if (read_block(&r, pic, bx, by) != 0) {
            why = "block truncated or palette index out of range";
            goto out;
        }
        if (owned != NULL)
            owned[idx] = 1;
        dirty_add(dirty, bx * HD_TILES_BLOCK, by * HD_TILES_BLOCK,
                  bx * HD_TILES_BLOCK + HD_TILES_BLOCK > pic->w
                      ? pic->w - bx * HD_TILES_BLOCK
                      : HD_TILES_BLOCK,
                  by * HD_TILES_BLOCK + HD_TILES_BLOCK > pic->h
                      ? pic->h - by * HD_TILES_BLOCK
                      : HD_TILES_BLOCK);
    }
    if (r.pos != r.len) {
        why = "bytes after the last block";
        goto out;
    }
    ret = 0;
out:
    if (why != NULL)
        hd_warn(MOD, "bad tiles message from the host (%zu bytes): %s", n, why);
    free(raw);
    return ret;
}

int hd_tiles_release(const uint8_t *data, size_t n, long blocks, uint8_t *owned)
{
    struct rd r = { data, 0, n };
    unsigned long count, delta;
    long idx = -1;
    const char *why = NULL;

    if (rd_varint(&r, &count) != 0 || count > (unsigned long)blocks) {
        why = "bad count";
        goto out;
    }
    for (unsigned long i = 0; i < count; i++) {
        if (rd_varint(&r, &delta) != 0 ||
            delta >= (unsigned long)(blocks - idx - 1)) {
            why = "block index outside the picture";
            goto out;
        }
        idx += (long)delta + 1;
        owned[idx] = 0;
    }
    if (r.pos != r.len)
        why = "bytes after the last block";
out:
    if (why == NULL)
        return 0;
    hd_warn(MOD, "bad release list from the host (%zu bytes): %s", n, why);
    return HD_EPROTO;
}

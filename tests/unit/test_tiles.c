/*
 * Unit tests for common/tiles: text-like blocks (a few values a plane)
 * round-trip exactly in I444 and I420, at sizes that are not multiples of
 * the block, and compress well; photo-like blocks are refused (they stay
 * with VP9) and leave the picture alone; malformed messages from a peer
 * (truncated, another size, a palette index or block index out of range,
 * trailing bytes, an oversized frame) are refused with HD_EPROTO or
 * HD_ETOOBIG and write nothing outside the picture.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "err.h"
#include "tests/harness.h"
#include "tiles.h"

struct tpic {
    struct hd_tiles_pic p;
    uint8_t *mem;
};

/* A picture whose planes sit inside guard bytes (checked for writes). */
#define GUARD 64
static int tpic_new(struct tpic *t, int w, int h, int cs, uint8_t fill)
{
    int cw = (w + cs) >> cs, ch = (h + cs) >> cs;
    size_t sz[3] = { (size_t)w * h, (size_t)cw * ch, (size_t)cw * ch };
    size_t total = GUARD;

    for (int i = 0; i < 3; i++)
        total += sz[i] + GUARD;
    if ((t->mem = malloc(total)) == NULL)
        return -1;
    memset(t->mem, 0xA5, total);
    t->p.w = w;
    t->p.h = h;
    t->p.cs = cs;
    total = GUARD;
    for (int i = 0; i < 3; i++) {
        t->p.plane[i] = t->mem + total;
        t->p.stride[i] = i ? cw : w;
        memset(t->p.plane[i], fill, sz[i]);
        total += sz[i] + GUARD;
    }
    return 0;
}

static int guards_intact(const struct tpic *t)
{
    int cw = (t->p.w + t->p.cs) >> t->p.cs, ch = (t->p.h + t->p.cs) >> t->p.cs;
    size_t sz[3] = { (size_t)t->p.w * t->p.h, (size_t)cw * ch,
                     (size_t)cw * ch };
    const uint8_t *g = t->mem;

    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < GUARD; k++)
            if (g[k] != 0xA5)
                return 0;
        g = t->p.plane[i] + sz[i];
    }
    for (int k = 0; k < GUARD; k++)
        if (g[k] != 0xA5)
            return 0;
    return 1;
}

static int tpic_equal(const struct tpic *a, const struct tpic *b)
{
    int cw = (a->p.w + a->p.cs) >> a->p.cs, ch = (a->p.h + a->p.cs) >> a->p.cs;

    return memcmp(a->p.plane[0], b->p.plane[0], (size_t)a->p.w * a->p.h) == 0 &&
           memcmp(a->p.plane[1], b->p.plane[1], (size_t)cw * ch) == 0 &&
           memcmp(a->p.plane[2], b->p.plane[2], (size_t)cw * ch) == 0;
}

/* Text: strokes of a foreground value on a background, per plane. */
static void draw_text(struct tpic *t)
{
    for (int pl = 0; pl < 3; pl++) {
        int sh = pl ? t->p.cs : 0;
        int w = (t->p.w + sh) >> sh, h = (t->p.h + sh) >> sh;

        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int on = ((x * 7 + y * 3) % 11 < 3) || (x % 6 == 0);

                t->p.plane[pl][y * t->p.stride[pl] + x] =
                    (uint8_t)(on ? 16 + pl * 40 : 235 - pl * 30);
            }
    }
}

static void noise_block(struct tpic *t, int bx, int by)
{
    for (int pl = 0; pl < 3; pl++) {
        int sh = pl ? t->p.cs : 0;

        for (int y = (by * 16) >> sh; y < ((by * 16 + 16) >> sh); y++)
            for (int x = (bx * 16) >> sh; x < ((bx * 16 + 16) >> sh); x++)
                t->p.plane[pl][y * t->p.stride[pl] + x] =
                    (uint8_t)((x * 131 + y * 71 + pl * 17) % 251);
    }
}

/* Every block of src into a message; decode into a fresh picture. */
static void roundtrip(int w, int h, int cs)
{
    struct tpic src, dst;
    struct hd_tiles_enc e;
    struct hd_tiles_rect d;
    uint8_t *msg;
    size_t n;
    int cols = (w + 15) / 16, rows = (h + 15) / 16;

    HT_CHECK(tpic_new(&src, w, h, cs, 0) == 0 &&
             tpic_new(&dst, w, h, cs, 0) == 0);
    draw_text(&src);
    HT_EQ_INT(hd_tiles_begin(&e, &src.p), 0);
    for (int by = 0; by < rows; by++)
        for (int bx = 0; bx < cols; bx++)
            HT_EQ_INT(hd_tiles_add(&e, bx, by), 1);
    HT_EQ_INT(hd_tiles_finish(&e, &msg, &n), 0);
    HT_CHECK(msg != NULL);
    /* text packs well below its samples (one byte each) */
    HT_CHECK(n < (size_t)w * h / 4);
    HT_EQ_INT(hd_tiles_decode(msg, n, &dst.p, &d, NULL), 0);
    HT_CHECK(tpic_equal(&src, &dst));
    HT_CHECK(guards_intact(&dst));
    HT_CHECK(d.x == 0 && d.y == 0 && d.w == w && d.h == h);
    free(msg);
    free(src.mem);
    free(dst.mem);
}

static void test_text_i444(void)
{
    roundtrip(160, 96, 0);
    roundtrip(100, 37, 0);
}

static void test_text_i420(void)
{
    roundtrip(160, 96, 1);
    roundtrip(37, 29, 1); /* odd: chroma of the last column is one wide */
}

/* A photo-like block is refused and left out; the rest round-trips. */
static void test_random_refused(void)
{
    struct tpic src, dst;
    struct hd_tiles_enc e;
    struct hd_tiles_rect d;
    uint8_t *msg, owned[6] = { 0 };
    size_t n;

    HT_CHECK(tpic_new(&src, 48, 32, 0, 0) == 0 &&
             tpic_new(&dst, 48, 32, 0, 7) == 0);
    draw_text(&src);
    noise_block(&src, 1, 1);
    HT_EQ_INT(hd_tiles_begin(&e, &src.p), 0);
    for (int by = 0; by < 2; by++)
        for (int bx = 0; bx < 3; bx++)
            HT_EQ_INT(hd_tiles_add(&e, bx, by), bx == 1 && by == 1 ? 0 : 1);
    HT_EQ_INT(hd_tiles_finish(&e, &msg, &n), 0);
    HT_EQ_INT(hd_tiles_decode(msg, n, &dst.p, &d, owned), 0);
    HT_CHECK(memcmp(owned, "\1\1\1\1\0\1", 6) == 0);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 48; x++) {
            int in = x >= 16 && x < 32 && y >= 16;
            uint8_t want = in ? 7 : src.p.plane[0][y * 48 + x];

            if (dst.p.plane[0][y * 48 + x] != want) {
                HT_CHECK(!"pixel");
                y = 32;
                break;
            }
        }
    free(msg);
    /* only random blocks: nothing to send */
    HT_EQ_INT(hd_tiles_begin(&e, &src.p), 0);
    HT_EQ_INT(hd_tiles_add(&e, 1, 1), 0);
    HT_EQ_INT(hd_tiles_finish(&e, &msg, &n), 0);
    HT_CHECK(msg == NULL && n == 0);
    /* out of order, outside */
    HT_EQ_INT(hd_tiles_begin(&e, &src.p), 0);
    HT_EQ_INT(hd_tiles_add(&e, 2, 0), 1);
    HT_EQ_INT(hd_tiles_add(&e, 1, 0), -EINVAL);
    HT_EQ_INT(hd_tiles_add(&e, 3, 0), -EINVAL);
    HT_EQ_INT(hd_tiles_add(&e, 0, 2), -EINVAL);
    hd_tiles_abort(&e);
    free(src.mem);
    free(dst.mem);
}

/* A raw (uncompressed) message, compressed as a peer would send it. */
static int decode_raw(const uint8_t *raw, size_t n, struct tpic *dst)
{
    size_t bound = ZSTD_compressBound(n), z;
    uint8_t *buf = malloc(bound);
    struct hd_tiles_rect d;
    int r;

    z = ZSTD_compress(buf, bound, raw, n, 1);
    r = hd_tiles_decode(buf, z, &dst->p, &d, NULL);
    free(buf);
    return r;
}

/* raw with byte off set to v is refused; raw is restored. */
static void bad_byte(uint8_t *raw, size_t n, struct tpic *dst, size_t off,
                     uint8_t v)
{
    uint8_t was = raw[off];

    raw[off] = v;
    HT_EQ_INT(decode_raw(raw, n, dst), HD_EPROTO);
    raw[off] = was;
}

static void test_malformed(void)
{
    struct tpic dst;
    /* 32x16 I444, one block (index 1), each plane 3 colours (2 bits) */
    uint8_t raw[256] = { 1, 0, 32, 0, 16, 0, 1, 0, 0, 0, 1 };
    size_t n = 11;
    uint8_t junk[64];

    HT_CHECK(tpic_new(&dst, 32, 16, 0, 0) == 0);
    for (int pl = 0; pl < 3; pl++) {
        raw[n++] = 3;
        raw[n++] = 10;
        raw[n++] = 20;
        raw[n++] = 30;
        for (int k = 0; k < 16 * 4; k++)
            raw[n++] = 0x24; /* indices 0 2 1 0 */
    }
    HT_EQ_INT(decode_raw(raw, n, &dst), 0);
    HT_EQ_INT(dst.p.plane[0][16], 10);
    HT_EQ_INT(dst.p.plane[0][17], 30);
    HT_EQ_INT(dst.p.plane[0][18], 20);
    HT_EQ_INT(dst.p.plane[0][0], 0); /* block 0 untouched */
    /* truncated: the last row missing */
    HT_EQ_INT(decode_raw(raw, n - 4, &dst), HD_EPROTO);
    /* trailing byte */
    raw[n] = 0;
    HT_EQ_INT(decode_raw(raw, n + 1, &dst), HD_EPROTO);
    /* palette index 3 of 3 colours */
    bad_byte(raw, n, &dst, n - 1, 0x27);
    /* block index 2 of 2 blocks */
    bad_byte(raw, n, &dst, 10, 2);
    /* zero colours, 17 colours */
    bad_byte(raw, n, &dst, 11, 0);
    bad_byte(raw, n, &dst, 11, 17);
    /* more blocks than the picture has; another picture size; I420 said,
     * I444 shown */
    bad_byte(raw, n, &dst, 6, 3);
    bad_byte(raw, n, &dst, 2, 48);
    bad_byte(raw, n, &dst, 1, 1);
    /* a varint that never ends */
    memset(raw + 10, 0xff, 8);
    HT_EQ_INT(decode_raw(raw, 18, &dst), HD_EPROTO);
    /* not zstd; a frame larger than the picture can need */
    memset(junk, 0x5a, sizeof(junk));
    {
        struct hd_tiles_rect d;
        size_t big = 1u << 20, bound = ZSTD_compressBound(big), z;
        uint8_t *zero = calloc(1, big), *buf = malloc(bound);

        HT_EQ_INT(hd_tiles_decode(junk, sizeof(junk), &dst.p, &d, NULL),
                  HD_EPROTO);
        zero[0] = 1;
        zero[2] = 32;
        zero[4] = 16;
        z = ZSTD_compress(buf, bound, zero, big, 1);
        HT_EQ_INT(hd_tiles_decode(buf, z, &dst.p, &d, NULL), HD_ETOOBIG);
        free(zero);
        free(buf);
    }
    HT_CHECK(guards_intact(&dst));
    free(dst.mem);
}

/* Release lists: built and read back; bad ones refused. */
static void test_release(void)
{
    uint8_t buf[64], owned[300];
    long idx[] = { 0, 5, 6, 200, 299 };
    size_t n = 0;
    long prev = -1;

    buf[n++] = 5;
    for (int i = 0; i < 5; i++) {
        n += hd_tiles_put_index(buf + n, idx[i], prev);
        prev = idx[i];
    }
    memset(owned, 1, sizeof(owned));
    HT_EQ_INT(hd_tiles_release(buf, n, 300, owned), 0);
    HT_CHECK(owned[0] == 0 && owned[5] == 0 && owned[6] == 0 &&
             owned[200] == 0 && owned[299] == 0 && owned[1] == 1 &&
             owned[298] == 1);
    /* the last index past a smaller picture, a count above it, trailing
     * bytes, a truncated list */
    HT_EQ_INT(hd_tiles_release(buf, n, 299, owned), HD_EPROTO);
    HT_EQ_INT(hd_tiles_release(buf, n, 4, owned), HD_EPROTO);
    buf[n] = 0;
    HT_EQ_INT(hd_tiles_release(buf, n + 1, 300, owned), HD_EPROTO);
    HT_EQ_INT(hd_tiles_release(buf, n - 1, 300, owned), HD_EPROTO);
    HT_EQ_INT(hd_tiles_release(buf, 0, 300, owned), HD_EPROTO);
}

int main(void)
{
    ht_init("tiles");
    HT_RUN(test_text_i444);
    HT_RUN(test_text_i420);
    HT_RUN(test_random_refused);
    HT_RUN(test_malformed);
    HT_RUN(test_release);
    return ht_finish();
}

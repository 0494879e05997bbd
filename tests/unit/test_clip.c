/*
 * Unit tests for common/clip: clipboard text packed and unpacked as the
 * Clipboard message carries it (plain below 64 bytes or when zstd does
 * not help, compressed otherwise), what RustDesk peers send (a frame
 * without a content size, MultiClipboards), and what must be refused
 * without allocating it: a frame claiming more than HD_CLIP_MAX, one that
 * inflates past it without saying so, broken frames, other formats.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "clip.h"
#include "tests/harness.h"

/* Pack, put through the wire encoding, unpack: the same text back. */
static void roundtrip(const char *text, size_t n, int want_compressed)
{
    Hbb__Clipboard cb, *back;
    uint8_t *buf, *wire;
    size_t len, got;
    char *out;

    HT_EQ_INT(hd_clip_pack(text, n, &cb, &buf), 0);
    HT_EQ_INT(cb.compress, want_compressed);
    HT_EQ_INT(cb.format, HBB__CLIPBOARD_FORMAT__Text);
    if (want_compressed)
        HT_CHECK(cb.content.len < n);
    len = hbb__clipboard__get_packed_size(&cb);
    wire = malloc(len);
    HT_CHECK(wire != NULL);
    if (wire == NULL)
        return;
    hbb__clipboard__pack(&cb, wire);
    free(buf);
    back = hbb__clipboard__unpack(NULL, len, wire);
    HT_CHECK(back != NULL);
    if (back != NULL) {
        HT_EQ_INT(hd_clip_unpack(back, &out, &got), 0);
        HT_EQ_INT((int)got, (int)n);
        HT_CHECK(out != NULL && memcmp(out, text, n) == 0 && out[n] == '\0');
        free(out);
        hbb__clipboard__free_unpacked(back, NULL);
    }
    free(wire);
}

static void test_short_plain(void)
{
    roundtrip("hello", 5, 0);
    roundtrip("", 0, 0);
    roundtrip("Gr\xc3\xbc\xc3\x9f\x65 \xe2\x82\xac", 11, 0); /* UTF-8 */
}

static void test_long_compressed(void)
{
    size_t n = 200000;
    char *t = malloc(n);

    HT_CHECK(t != NULL);
    if (t == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        t[i] = "the quick brown fox jumps over the lazy dog\n"[i % 44];
    roundtrip(t, n, 1);
    free(t);
}

/* Random bytes (no NUL) do not compress: sent as they are. */
static void test_incompressible(void)
{
    size_t n = 5000;
    char *t = malloc(n);
    uint32_t x = 12345;

    HT_CHECK(t != NULL);
    if (t == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        t[i] = (char)(1 + (x >> 16) % 255);
    }
    roundtrip(t, n, 0);
    free(t);
}

static void test_limits(void)
{
    Hbb__Clipboard cb;
    uint8_t *buf;
    char *big = calloc(1, HD_CLIP_MAX + 1), *out;
    size_t got;

    HT_CHECK(big != NULL);
    if (big == NULL)
        return;
    memset(big, 'a', HD_CLIP_MAX + 1);
    HT_EQ_INT(hd_clip_pack(big, HD_CLIP_MAX + 1, &cb, &buf), -EMSGSIZE);
    HT_EQ_INT(hd_clip_pack(big, HD_CLIP_MAX, &cb, &buf), 0);
    HT_EQ_INT(cb.compress, 1);
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), 0);
    HT_EQ_INT((int)got, (int)HD_CLIP_MAX);
    free(out);
    free(buf);
    /* plain content past the limit */
    hbb__clipboard__init(&cb);
    cb.content.data = (uint8_t *)big;
    cb.content.len = HD_CLIP_MAX + 1;
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), -EMSGSIZE);
    HT_CHECK(out == NULL);
    free(big);
}

/* A zstd frame that claims 1 GiB: refused from its header alone. */
static void test_claimed_size(void)
{
    Hbb__Clipboard cb;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    uint8_t frame[64];
    size_t z;
    char *out;
    size_t got;

    HT_CHECK(cc != NULL);
    if (cc == NULL)
        return;
    ZSTD_CCtx_setPledgedSrcSize(cc, 1ull << 30);
    {
        ZSTD_outBuffer ob = { frame, sizeof(frame), 0 };
        ZSTD_inBuffer ib = { "x", 1, 0 };

        /* only the header is needed: flush it without finishing */
        z = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_flush);
        HT_CHECK(!ZSTD_isError(z));
        z = ob.pos;
    }
    ZSTD_freeCCtx(cc);
    hbb__clipboard__init(&cb);
    cb.compress = 1;
    cb.content.data = frame;
    cb.content.len = z;
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), -EMSGSIZE);
}

/*
 * A frame without a content size (as a streaming compressor writes it):
 * fine below the limit, refused once it inflates past it.
 */
static size_t stream_frame(const char *t, size_t n, uint8_t **out)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t cap = ZSTD_compressBound(n) + 64, r;
    ZSTD_outBuffer ob;
    ZSTD_inBuffer ib = { t, n, 0 };

    *out = malloc(cap);
    if (cc == NULL || *out == NULL)
        return 0;
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    ob = (ZSTD_outBuffer){ *out, cap, 0 };
    do
        r = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
    while (r != 0 && !ZSTD_isError(r));
    ZSTD_freeCCtx(cc);
    return ZSTD_isError(r) ? 0 : ob.pos;
}

static void test_unknown_size(void)
{
    Hbb__Clipboard cb;
    size_t n = HD_CLIP_MAX + 100, got, z;
    char *t = malloc(n), *out;
    uint8_t *f;

    HT_CHECK(t != NULL);
    if (t == NULL)
        return;
    memset(t, 'z', n);
    z = stream_frame(t, 1000, &f);
    HT_CHECK(z > 0);
    HT_EQ_INT((int)(ZSTD_getFrameContentSize(f, z) == ZSTD_CONTENTSIZE_UNKNOWN),
              1);
    hbb__clipboard__init(&cb);
    cb.compress = 1;
    cb.content.data = f;
    cb.content.len = z;
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), 0);
    HT_EQ_INT((int)got, 1000);
    free(out);
    free(f);
    z = stream_frame(t, n, &f);
    HT_CHECK(z > 0 && z < 1000); /* a tiny bomb */
    cb.content.data = f;
    cb.content.len = z;
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), -EMSGSIZE);
    /* cut short: refused, not read past its end */
    cb.content.len = z / 2;
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), -EBADMSG);
    free(f);
    free(t);
}

static void test_broken(void)
{
    Hbb__Clipboard cb;
    uint8_t junk[] = { 0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 1, 2 };
    char *out;
    size_t got;

    hbb__clipboard__init(&cb);
    cb.compress = 1;
    cb.content.data = junk;
    cb.content.len = sizeof(junk);
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), -EBADMSG);
    cb.content.data = (uint8_t *)"not zstd at all";
    cb.content.len = 15;
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), -EBADMSG);
    cb.content.len = 0;
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), -EBADMSG);
    /* an image is not ours to show */
    cb.compress = 0;
    cb.format = HBB__CLIPBOARD_FORMAT__ImagePng;
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), -ENOTSUP);
}

/* A NUL cuts the text (X selections and SDL take C strings). */
static void test_nul(void)
{
    Hbb__Clipboard cb;
    char *out;
    size_t got;

    hbb__clipboard__init(&cb);
    cb.content.data = (uint8_t *)"abc\0def";
    cb.content.len = 7;
    HT_EQ_INT(hd_clip_unpack(&cb, &out, &got), 0);
    HT_EQ_INT((int)got, 3);
    HT_EQ_STR(out, "abc");
    free(out);
}

static void test_pick(void)
{
    Hbb__Clipboard png, txt, *list[2] = { &png, &txt };
    Hbb__MultiClipboards mc;

    hbb__clipboard__init(&png);
    hbb__clipboard__init(&txt);
    png.format = HBB__CLIPBOARD_FORMAT__ImagePng;
    txt.format = HBB__CLIPBOARD_FORMAT__Text;
    hbb__multi_clipboards__init(&mc);
    mc.clipboards = list;
    mc.n_clipboards = 2;
    HT_CHECK(hd_clip_pick(&mc) == &txt);
    mc.n_clipboards = 1;
    HT_CHECK(hd_clip_pick(&mc) == NULL);
    HT_CHECK(hd_clip_pick(NULL) == NULL);
}

int main(void)
{
    ht_init("clip");
    HT_RUN(test_short_plain);
    HT_RUN(test_long_compressed);
    HT_RUN(test_incompressible);
    HT_RUN(test_limits);
    HT_RUN(test_claimed_size);
    HT_RUN(test_unknown_size);
    HT_RUN(test_broken);
    HT_RUN(test_nul);
    HT_RUN(test_pick);
    return ht_finish();
}

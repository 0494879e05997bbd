/* Unit tests for common/frame: header vectors, the decoder, packing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "rendezvous.pb-c.h"
#include "tests/harness.h"

/* Deterministic PRNG (xorshift64*), so a failure can be replayed. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Payload byte i of frame f: distinct per frame so mix-ups show. */
static uint8_t pbyte(size_t f, size_t i)
{
    return (uint8_t)(f * 131 + i * 7 + (i >> 8));
}

/*
 * Append frame number f with len payload bytes to a growing buffer.
 * Returns the new length.
 */
static size_t put_frame(uint8_t **buf, size_t n, size_t f, size_t len)
{
    uint8_t hdr[HD_FRAME_HDR_MAX];
    size_t h = hd_frame_header(hdr, len);

    *buf = realloc(*buf, n + h + len);
    if (*buf == NULL)
        abort();
    memcpy(*buf + n, hdr, h);
    for (size_t i = 0; i < len; i++)
        (*buf)[n + h + i] = pbyte(f, i);
    return n + h + len;
}

static int check_payload(size_t f, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != pbyte(f, i))
            return 0;
    return 1;
}

struct vec {
    size_t len;
    size_t hlen;
    uint8_t hdr[4];
};

/* The table in PROTOCOL.md section 1, worked out by hand at each edge. */
static const struct vec vectors[] = {
    { 0, 1, { 0x00 } },
    { 1, 1, { 0x04 } },
    { 0x3F, 1, { 0xFC } },
    { 0x40, 2, { 0x01, 0x01 } },
    { 100, 2, { 0x91, 0x01 } },
    { 0x3FFF, 2, { 0xFD, 0xFF } },
    { 0x4000, 3, { 0x02, 0x00, 0x01 } },
    { 0x3FFFFF, 3, { 0xFE, 0xFF, 0xFF } },
    { 0x400000, 4, { 0x03, 0x00, 0x00, 0x01 } },
    { 0x3FFFFFFF, 4, { 0xFF, 0xFF, 0xFF, 0xFF } },
};

static void header_vectors(void)
{
    uint8_t out[HD_FRAME_HDR_MAX];
    char hex[16];

    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct vec *v = &vectors[i];
        size_t n, h, p;

        memset(out, 0xAA, sizeof(out));
        n = hd_frame_header(out, v->len);
        if (n != v->hlen || memcmp(out, v->hdr, n) != 0) {
            ht_hex(hex, out, n <= 4 ? n : 4);
            ht_fail(__FILE__, __LINE__, "len 0x%zx: got %zu bytes %s", v->len,
                    n, hex);
        }
        HT_EQ_INT(hd_frame_parse_header(v->hdr, v->hlen, &h, &p), 1);
        HT_EQ_INT(h, v->hlen);
        HT_EQ_INT(p, v->len);
        /* one byte short of the header: not complete */
        HT_EQ_INT(hd_frame_parse_header(v->hdr, v->hlen - 1, &h, &p), 0);
        HT_EQ_INT(h, 0);
        HT_EQ_INT(p, 0);
    }
    memset(out, 0xAA, sizeof(out));
    HT_EQ_INT(hd_frame_header(out, 0x40000000), 0);
    HT_EQ_INT(hd_frame_header(out, (size_t)-1), 0);
    HT_EQ_INT(out[0], 0xAA);
}

/* Every length around each boundary survives header + parse. */
static void header_round_trip(void)
{
    static const size_t edges[] = { 0x3F, 0x3FFF, 0x3FFFFF, 0x3FFFFFFF };

    for (size_t e = 0; e < 4; e++) {
        for (size_t d = 0; d < 6; d++) {
            size_t len = edges[e] - 2 + d, h, p, n;
            uint8_t out[HD_FRAME_HDR_MAX];

            n = hd_frame_header(out, len);
            if (len > HD_FRAME_MAX_LEN) {
                HT_EQ_INT(n, 0);
                continue;
            }
            HT_EQ_INT(n, len <= edges[e] ? e + 1 : e + 2);
            HT_EQ_INT(hd_frame_parse_header(out, n, &h, &p), 1);
            HT_EQ_INT(h, n);
            HT_EQ_INT(p, len);
        }
    }
    /* a non-shortest header is still understood, as by the reference */
    {
        const uint8_t long_form[4] = { 0x03 | (5 << 2), 0, 0, 0 };
        size_t h, p;

        HT_EQ_INT(hd_frame_parse_header(long_form, 4, &h, &p), 1);
        HT_EQ_INT(h, 4);
        HT_EQ_INT(p, 5);
    }
}

static const size_t sizes[] = {
    0, 1, 63, 64, 100, 200, 16383, 16384, 70000, 5
};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void byte_by_byte(void)
{
    struct hd_frame_decoder d;
    uint8_t *stream = NULL;
    size_t n = 0, got = 0, pos = 0;
    size_t ends[NSIZES];

    for (size_t f = 0; f < NSIZES; f++) {
        n = put_frame(&stream, n, f, sizes[f]);
        ends[f] = n;
    }
    hd_frame_decoder_init(&d, 100000);
    for (pos = 0; pos < n; pos++) {
        const uint8_t *p;
        size_t len;
        int r;

        HT_EQ_INT(hd_frame_decoder_feed(&d, stream + pos, 1), 0);
        r = hd_frame_decoder_next(&d, &p, &len);
        if (got < NSIZES && pos + 1 == ends[got]) {
            /* the last byte of a frame completes it, not one earlier */
            HT_EQ_INT(r, 1);
            if (r != 1)
                break;
            HT_EQ_INT(len, sizes[got]);
            HT_CHECK(p != NULL);
            HT_CHECK(check_payload(got, p, len));
            got++;
            HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), 0);
        } else {
            HT_EQ_INT(r, 0);
            HT_CHECK(p == NULL && len == 0);
            if (r != 0)
                break;
        }
    }
    HT_EQ_INT(got, NSIZES);
    HT_CHECK(hd_frame_decoder_capacity(&d) <= 100000 + 4);
    hd_frame_decoder_cleanup(&d);
    free(stream);
}

static void many_frames_one_feed(void)
{
    struct hd_frame_decoder d;
    uint8_t *stream = NULL;
    size_t n = 0, count = 0, len;
    const uint8_t *p;
    int r;

    for (size_t f = 0; f < 1000; f++)
        n = put_frame(&stream, n, f, f % 300);
    hd_frame_decoder_init(&d, 65536);
    HT_EQ_INT(hd_frame_decoder_feed(&d, stream, n), 0);
    while ((r = hd_frame_decoder_next(&d, &p, &len)) == 1) {
        if (len != count % 300 || !check_payload(count, p, len))
            ht_fail(__FILE__, __LINE__, "frame %zu wrong", count);
        count++;
    }
    HT_EQ_INT(r, 0);
    HT_EQ_INT(count, 1000);
    HT_EQ_INT(hd_frame_decoder_pending(&d, &len) == NULL, 1);
    HT_EQ_INT(len, 0);
    hd_frame_decoder_cleanup(&d);
    free(stream);
}

static void too_big_refused_without_allocation(void)
{
    struct hd_frame_decoder d;
    const uint8_t huge[4] = { 0xFF, 0xFF, 0xFF, 0xFF }; /* 0x3FFFFFFF */
    uint8_t hdr[HD_FRAME_HDR_MAX], *ptr;
    const uint8_t *p;
    size_t len, h, avail;

    hd_frame_decoder_init(&d, 65536);
    HT_EQ_INT(hd_frame_decoder_feed(&d, huge, sizeof(huge)), 0);
    HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), HD_ETOOBIG);
    HT_CHECK(p == NULL && len == 0);
    HT_CHECK(hd_frame_decoder_capacity(&d) <= HD_FRAME_INITIAL);
    /* sticky: the stream cannot be resynchronised */
    HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), HD_ETOOBIG);
    HT_EQ_INT(hd_frame_decoder_feed(&d, "x", 1), HD_ETOOBIG);
    HT_EQ_INT(hd_frame_decoder_reserve(&d, 100, &ptr, &avail), HD_ETOOBIG);
    HT_CHECK(ptr == NULL && avail == 0);
    hd_frame_decoder_cleanup(&d);

    /* one byte above the maximum is refused, the maximum itself passes */
    hd_frame_decoder_init(&d, 65536);
    h = hd_frame_header(hdr, 65537);
    HT_EQ_INT(hd_frame_decoder_feed(&d, hdr, h), 0);
    HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), HD_ETOOBIG);
    hd_frame_decoder_cleanup(&d);

    hd_frame_decoder_init(&d, 65536);
    {
        uint8_t *stream = NULL;
        size_t n = put_frame(&stream, 0, 7, 65536);

        HT_EQ_INT(hd_frame_decoder_feed(&d, stream, n), 0);
        HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), 1);
        HT_EQ_INT(len, 65536);
        HT_CHECK(check_payload(7, p, len));
        free(stream);
    }
    hd_frame_decoder_cleanup(&d);

    /* a max above the 30-bit limit is lowered to it */
    hd_frame_decoder_init(&d, (size_t)-1);
    HT_EQ_INT(d.max_payload, HD_FRAME_MAX_LEN);
    hd_frame_decoder_cleanup(&d);
}

/*
 * A large announced length within the maximum: the buffer follows the bytes
 * that really arrive, never the announcement.
 */
static void grows_with_arrivals(void)
{
    struct hd_frame_decoder d;
    uint8_t hdr[HD_FRAME_HDR_MAX], *ptr;
    const size_t announced = 60u << 20;
    size_t h, got = 0, avail, len, maxcap = 0;
    const uint8_t *p;

    hd_frame_decoder_init(&d, 64u << 20);
    h = hd_frame_header(hdr, announced);
    HT_EQ_INT(hd_frame_decoder_feed(&d, hdr, h), 0);
    HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), 0);
    HT_CHECK(hd_frame_decoder_capacity(&d) <= HD_FRAME_INITIAL);
    /* a peer that sends 3 MiB of the 60 MiB */
    while (got < (3u << 20)) {
        size_t cap;

        HT_EQ_INT(hd_frame_decoder_reserve(&d, 65536, &ptr, &avail), 0);
        if (avail == 0)
            break;
        memset(ptr, 0x5A, avail);
        HT_EQ_INT(hd_frame_decoder_commit(&d, avail), 0);
        got += avail;
        HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), 0);
        cap = hd_frame_decoder_capacity(&d);
        if (cap > maxcap)
            maxcap = cap;
        /* never more than 1.5 x what arrived + the speculative cap */
        if (cap > h + got + (h + got) / 2 + HD_FRAME_SPECULATIVE)
            ht_fail(__FILE__, __LINE__, "capacity %zu after %zu bytes", cap,
                    got);
    }
    HT_CHECK(maxcap >= got);
    HT_CHECK(maxcap < (6u << 20));
    hd_frame_decoder_cleanup(&d);
}

/*
 * The libuv path: reads of random sizes into reserved space, frames of the
 * boundary sizes, checked in order; the capacity stays within max + 4.
 */
static void reserve_commit_random_reads(void)
{
    static const size_t big[] = { 0x3F,     0x40, 0x3FFF,   0x4000, 0,
                                  0x3FFFFF, 1,    0x400000, 0x4001, 12 };
    const size_t nbig = sizeof(big) / sizeof(big[0]);
    const size_t max = 0x400000;
    struct hd_frame_decoder d;
    uint8_t *stream = NULL;
    size_t n = 0, pos = 0, got = 0, len, avail;
    const uint8_t *p;
    uint8_t *ptr;
    int r;

    for (size_t f = 0; f < nbig; f++)
        n = put_frame(&stream, n, f, big[f]);
    for (size_t f = nbig; f < nbig + 500; f++)
        n = put_frame(&stream, n, f, (size_t)(rng() % 200));
    hd_frame_decoder_init(&d, max);
    while (pos < n) {
        size_t chunk = 1 + (size_t)(rng() % 100000);

        if ((r = hd_frame_decoder_reserve(&d, 65536, &ptr, &avail)) != 0) {
            HT_EQ_INT(r, 0);
            break;
        }
        HT_CHECK(avail >= 1 && avail <= 65536);
        if (chunk > avail)
            chunk = avail;
        if (chunk > n - pos)
            chunk = n - pos;
        memcpy(ptr, stream + pos, chunk);
        HT_EQ_INT(hd_frame_decoder_commit(&d, chunk), 0);
        pos += chunk;
        while ((r = hd_frame_decoder_next(&d, &p, &len)) == 1) {
            size_t want = got < nbig ? big[got] : 0;

            if ((got < nbig && len != want) || !check_payload(got, p, len))
                ht_fail(__FILE__, __LINE__, "frame %zu wrong (len %zu)", got,
                        len);
            got++;
        }
        HT_EQ_INT(r, 0);
        if (hd_frame_decoder_capacity(&d) > max + HD_FRAME_HDR_MAX)
            ht_fail(__FILE__, __LINE__, "capacity %zu above bound",
                    hd_frame_decoder_capacity(&d));
    }
    HT_EQ_INT(got, nbig + 500);
    hd_frame_decoder_cleanup(&d);
    free(stream);
}

static void reserve_starts_small(void)
{
    struct hd_frame_decoder d;
    uint8_t *ptr;
    size_t avail;

    hd_frame_decoder_init(&d, 65536);
    HT_EQ_INT(hd_frame_decoder_reserve(&d, 65536, &ptr, &avail), 0);
    HT_CHECK(ptr != NULL);
    HT_EQ_INT(avail, HD_FRAME_INITIAL);
    /* more than offered cannot be committed */
    HT_EQ_INT(hd_frame_decoder_commit(&d, avail + 1), -EINVAL);
    /* a read that fills the buffer makes the next one larger */
    memset(ptr, 0, avail); /* 4096 empty frames */
    HT_EQ_INT(hd_frame_decoder_commit(&d, avail), 0);
    HT_EQ_INT(hd_frame_decoder_reserve(&d, 65536, &ptr, &avail), 0);
    HT_EQ_INT(avail, 2 * HD_FRAME_INITIAL - HD_FRAME_INITIAL);
    HT_EQ_INT(hd_frame_decoder_capacity(&d), 2 * HD_FRAME_INITIAL);
    /* want bounds the room offered */
    HT_EQ_INT(hd_frame_decoder_reserve(&d, 10, &ptr, &avail), 0);
    HT_EQ_INT(avail, 10);
    hd_frame_decoder_cleanup(&d);

    /* a caller that never takes its frames hits the bound, not the heap */
    hd_frame_decoder_init(&d, 10000);
    for (int i = 0; i < 100; i++) {
        int r = hd_frame_decoder_reserve(&d, 65536, &ptr, &avail);

        if (r != 0) {
            HT_EQ_INT(r, HD_ETOOBIG);
            break;
        }
        memset(ptr, 0, avail);
        HT_EQ_INT(hd_frame_decoder_commit(&d, avail), 0);
    }
    HT_EQ_INT(hd_frame_decoder_capacity(&d), 10000 + HD_FRAME_HDR_MAX);
    HT_EQ_INT(hd_frame_decoder_reserve(&d, 1, &ptr, &avail), HD_ETOOBIG);
    hd_frame_decoder_cleanup(&d);
    /* cleanup twice, and on a zeroed decoder, is harmless */
    hd_frame_decoder_cleanup(&d);
}

static void pending_after_frames(void)
{
    struct hd_frame_decoder d;
    uint8_t *stream = NULL;
    size_t n, len, first;
    const uint8_t *p;
    static const uint8_t raw[] = "raw relay bytes \x01\x02\x03";

    n = put_frame(&stream, 0, 1, 100);
    first = n;
    n = put_frame(&stream, n, 2, 30);
    stream = realloc(stream, n + sizeof(raw));
    if (stream == NULL)
        abort();
    memcpy(stream + n, raw, sizeof(raw));
    n += sizeof(raw);

    hd_frame_decoder_init(&d, 1000);
    HT_CHECK(hd_frame_decoder_pending(&d, &len) == NULL);
    HT_EQ_INT(len, 0);
    HT_EQ_INT(hd_frame_decoder_feed(&d, stream, n), 0);
    HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), 1);
    HT_EQ_INT(len, 100);
    HT_CHECK(check_payload(1, p, len));
    /* the caller stops reading frames here: the rest is forwarded raw */
    p = hd_frame_decoder_pending(&d, &len);
    HT_EQ_INT(len, n - first);
    HT_CHECK(p != NULL && memcmp(p, stream + first, len) == 0);
    hd_frame_decoder_cleanup(&d);
    free(stream);
}

/*
 * Consumed bytes are dropped without moving what follows on every frame:
 * after the first frame of a feed, the rest stays where it was.
 */
static void no_memmove_per_frame(void)
{
    struct hd_frame_decoder d;
    uint8_t *stream = NULL;
    size_t n = 0, len;
    const uint8_t *p, *first, *second;

    n = put_frame(&stream, n, 1, 10);
    n = put_frame(&stream, n, 2, 10);
    n = put_frame(&stream, n, 3, 10);
    hd_frame_decoder_init(&d, 1000);
    HT_EQ_INT(hd_frame_decoder_feed(&d, stream, n - 3), 0);
    HT_EQ_INT(hd_frame_decoder_next(&d, &first, &len), 1);
    HT_EQ_INT(hd_frame_decoder_next(&d, &second, &len), 1);
    HT_CHECK(second == first + 11);
    HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), 0);
    HT_EQ_INT(hd_frame_decoder_feed(&d, stream + n - 3, 3), 0);
    HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), 1);
    HT_EQ_INT(len, 10);
    HT_CHECK(check_payload(3, p, len));
    HT_CHECK(p == second + 11); /* the partial frame was not moved */
    hd_frame_decoder_cleanup(&d);
    free(stream);
}

static void pack_messages(void)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *back;
    Hbb__RegisterPeer rp = HBB__REGISTER_PEER__INIT;
    char id[101];
    uint8_t *out = NULL, small[8], buf[256];
    size_t out_len = 123, h, plen, sz;
    int n;

    memset(id, '7', 100);
    id[100] = '\0';
    rp.id = id;
    rp.serial = 5;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER;
    m.register_peer = &rp;
    sz = protobuf_c_message_get_packed_size(&m.base);
    HT_CHECK(sz > 0x3F); /* two-byte header */

    HT_EQ_INT(hd_frame_pack(&m.base, &out, &out_len), 0);
    HT_EQ_INT(out_len, sz + 2);
    HT_EQ_INT(hd_frame_parse_header(out, out_len, &h, &plen), 1);
    HT_EQ_INT(h, 2);
    HT_EQ_INT(plen, sz);
    back = hbb__rendezvous_message__unpack(NULL, plen, out + h);
    HT_CHECK(back != NULL);
    if (back != NULL) {
        HT_EQ_INT(back->union_case,
                  HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER);
        HT_EQ_STR(back->register_peer->id, id);
        HT_EQ_INT(back->register_peer->serial, 5);
        hbb__rendezvous_message__free_unpacked(back, NULL);
    }

    n = hd_frame_pack_into(&m.base, buf, sizeof(buf));
    HT_EQ_INT(n, (int)out_len);
    HT_EQ_MEM(buf, out, out_len);
    HT_EQ_INT(hd_frame_pack_into(&m.base, buf, out_len - 1), HD_ETOOBIG);
    HT_EQ_INT(hd_frame_pack_into(&m.base, small, sizeof(small)), HD_ETOOBIG);

    /* bare form for UDP: the same bytes without the header */
    n = hd_msg_pack_into(&m.base, buf, sizeof(buf));
    HT_EQ_INT(n, (int)sz);
    HT_EQ_MEM(buf, out + 2, sz);
    HT_EQ_INT(hd_msg_pack_into(&m.base, buf, sz - 1), HD_ETOOBIG);
    free(out);
    out = NULL;
    HT_EQ_INT(hd_msg_pack(&m.base, &out, &out_len), 0);
    HT_EQ_INT(out_len, sz);
    HT_CHECK(out != NULL && memcmp(out, buf, sz) == 0);
    free(out);

    /* an empty message: header 00, and a decoder returns a 0-length frame */
    {
        Hbb__RendezvousMessage empty = HBB__RENDEZVOUS_MESSAGE__INIT;
        struct hd_frame_decoder d;
        const uint8_t *p;
        size_t len;

        HT_EQ_INT(hd_frame_pack(&empty.base, &out, &out_len), 0);
        HT_EQ_INT(out_len, 1);
        HT_CHECK(out != NULL && out[0] == 0x00);
        hd_frame_decoder_init(&d, 16);
        HT_EQ_INT(hd_frame_decoder_feed(&d, out, out_len), 0);
        HT_EQ_INT(hd_frame_decoder_next(&d, &p, &len), 1);
        HT_CHECK(p != NULL);
        HT_EQ_INT(len, 0);
        hd_frame_decoder_cleanup(&d);
        free(out);
        HT_EQ_INT(hd_msg_pack(&empty.base, &out, &out_len), 0);
        HT_CHECK(out != NULL);
        HT_EQ_INT(out_len, 0);
        free(out);
    }
}

int main(void)
{
    ht_init("frame");
    HT_RUN(header_vectors);
    HT_RUN(header_round_trip);
    HT_RUN(byte_by_byte);
    HT_RUN(many_frames_one_feed);
    HT_RUN(too_big_refused_without_allocation);
    HT_RUN(grows_with_arrivals);
    HT_RUN(reserve_commit_random_reads);
    HT_RUN(reserve_starts_small);
    HT_RUN(pending_after_frames);
    HT_RUN(no_memmove_per_frame);
    HT_RUN(pack_messages);
    return ht_finish();
}

/*
 * TCP frame header codec and incremental decoder.  The decoder keeps one
 * buffer: [0, start) consumed, [start, end) buffered, [end, cap) free.
 * Consumed bytes are dropped by resetting both offsets when the buffer
 * drains, or by one memmove when the free tail is too short for the next
 * read; so a byte moves at most once before it is returned.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"

/* Below this much free tail, reserve compacts or grows before a read. */
#define FRAME_MIN_ROOM 1024u

size_t hd_frame_header(uint8_t out[HD_FRAME_HDR_MAX], size_t payload_len)
{
    uint32_t v;
    size_t n;

    if (payload_len <= 0x3F)
        n = 1;
    else if (payload_len <= 0x3FFF)
        n = 2;
    else if (payload_len <= 0x3FFFFF)
        n = 3;
    else if (payload_len <= HD_FRAME_MAX_LEN)
        n = 4;
    else
        return 0;
    v = (uint32_t)payload_len << 2 | (uint32_t)(n - 1);
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(v >> (8 * i));
    return n;
}

int hd_frame_parse_header(const uint8_t *buf, size_t n, size_t *hdr_len,
                          size_t *payload_len)
{
    uint32_t v = 0;
    size_t h;

    *hdr_len = 0;
    *payload_len = 0;
    if (n == 0)
        return 0;
    h = (size_t)(buf[0] & 3) + 1;
    if (n < h)
        return 0;
    for (size_t i = 0; i < h; i++)
        v |= (uint32_t)buf[i] << (8 * i);
    *hdr_len = h;
    *payload_len = v >> 2;
    return 1;
}

void hd_frame_decoder_init(struct hd_frame_decoder *d, size_t max_payload)
{
    memset(d, 0, sizeof(*d));
    d->max_payload =
        max_payload > HD_FRAME_MAX_LEN ? HD_FRAME_MAX_LEN : max_payload;
}

void hd_frame_decoder_cleanup(struct hd_frame_decoder *d)
{
    free(d->buf);
    memset(d, 0, sizeof(*d));
}

/* Drop consumed bytes: reset when empty, else move the rest to the front. */
static void dec_compact(struct hd_frame_decoder *d)
{
    size_t used = d->end - d->start;

    if (d->start == 0)
        return;
    if (used > 0)
        memmove(d->buf, d->buf + d->start, used);
    d->start = 0;
    d->end = used;
}

/*
 * Grow the buffer geometrically to hold at least need bytes.  Beyond need,
 * the capacity stays within max_payload + 4 and within the speculative
 * cap: HD_FRAME_SPECULATIVE or half the buffered bytes, whichever is more,
 * beyond what is buffered (the half keeps copying linear for large frames;
 * memory stays below 1.5 times what the peer really sent plus 256 KiB).
 * Call after dec_compact, so buffered bytes start at 0.
 */
static int dec_grow(struct hd_frame_decoder *d, size_t need)
{
    size_t used = d->end - d->start;
    size_t bound = d->max_payload + HD_FRAME_HDR_MAX;
    size_t spec =
        used / 2 > HD_FRAME_SPECULATIVE ? used / 2 : HD_FRAME_SPECULATIVE;
    size_t ceiling = used + spec < bound ? used + spec : bound;
    size_t ncap;
    uint8_t *nb;

    ncap = d->cap < HD_FRAME_INITIAL / 2 ? HD_FRAME_INITIAL
           : d->cap > ((size_t)-1) / 2   ? d->cap
                                         : 2 * d->cap;
    if (ncap > ceiling)
        ncap = ceiling;
    if (ncap < need)
        ncap = need;
    if (ncap <= d->cap)
        return 0;
    nb = realloc(d->buf, ncap);
    if (nb == NULL)
        return -ENOMEM;
    d->buf = nb;
    d->cap = ncap;
    return 0;
}

int hd_frame_decoder_feed(struct hd_frame_decoder *d, const void *data,
                          size_t n)
{
    size_t used;
    int r;

    d->room = 0; /* a reserve before this call no longer holds */
    if (d->err != 0)
        return d->err;
    if (n == 0)
        return 0;
    if (d->start == d->end)
        d->start = d->end = 0;
    if (d->cap - d->end < n) {
        dec_compact(d);
        used = d->end;
        if (n > ((size_t)-1) - used)
            return -ENOMEM;
        if (d->cap - d->end < n && (r = dec_grow(d, used + n)) != 0)
            return r;
    }
    memcpy(d->buf + d->end, data, n);
    d->end += n;
    return 0;
}

int hd_frame_decoder_reserve(struct hd_frame_decoder *d, size_t want,
                             uint8_t **ptr, size_t *avail)
{
    size_t min_room, room;
    int r;

    *ptr = NULL;
    *avail = 0;
    if (d->err != 0)
        return d->err;
    if (d->start == d->end)
        d->start = d->end = 0;
    min_room = want != 0 && want < FRAME_MIN_ROOM ? want : FRAME_MIN_ROOM;
    /*
     * Grow when the tail is short even after compaction, or when the last
     * read filled the whole buffer (the peer sends faster than we read):
     * doubling, within the limits dec_grow sets.
     */
    if (d->cap - d->end < min_room || d->filled) {
        dec_compact(d);
        /* The end reaches the bound only with frames left untaken. */
        if ((d->cap - d->end < min_room || d->filled) &&
            d->end < d->max_payload + HD_FRAME_HDR_MAX &&
            (r = dec_grow(d, d->end + 1)) != 0)
            return r;
    }
    d->filled = 0;
    room = d->cap - d->end;
    if (room == 0)
        return HD_ETOOBIG; /* full of frames the caller did not take */
    if (want != 0 && room > want)
        room = want;
    d->room = room;
    *ptr = d->buf + d->end;
    *avail = room;
    return 0;
}

int hd_frame_decoder_commit(struct hd_frame_decoder *d, size_t n)
{
    if (n > d->room)
        return -EINVAL;
    d->end += n;
    d->room = 0;
    if (n > 0 && d->end == d->cap)
        d->filled = 1;
    return 0;
}

int hd_frame_decoder_next(struct hd_frame_decoder *d, const uint8_t **payload,
                          size_t *len)
{
    size_t used = d->end - d->start, h, p;

    *payload = NULL;
    *len = 0;
    if (d->err != 0)
        return d->err;
    if (used == 0 || !hd_frame_parse_header(d->buf + d->start, used, &h, &p))
        return 0;
    if (p > d->max_payload) {
        d->err = HD_ETOOBIG;
        return d->err;
    }
    if (used - h < p)
        return 0;
    *payload = d->buf + d->start + h;
    *len = p;
    d->start += h + p;
    /* The bytes stay in place until the next feed or reserve. */
    if (d->start == d->end)
        d->start = d->end = 0;
    return 1;
}

const uint8_t *hd_frame_decoder_pending(const struct hd_frame_decoder *d,
                                        size_t *n)
{
    *n = d->end - d->start;
    return *n > 0 ? d->buf + d->start : NULL;
}

size_t hd_frame_decoder_capacity(const struct hd_frame_decoder *d)
{
    return d->cap;
}

int hd_frame_pack(const ProtobufCMessage *m, uint8_t **out, size_t *out_len)
{
    uint8_t hdr[HD_FRAME_HDR_MAX], *buf;
    size_t sz, h;

    *out = NULL;
    *out_len = 0;
    sz = protobuf_c_message_get_packed_size(m);
    if ((h = hd_frame_header(hdr, sz)) == 0)
        return HD_ETOOBIG;
    if ((buf = malloc(h + sz)) == NULL)
        return -ENOMEM;
    memcpy(buf, hdr, h);
    protobuf_c_message_pack(m, buf + h);
    *out = buf;
    *out_len = h + sz;
    return 0;
}

int hd_frame_pack_into(const ProtobufCMessage *m, uint8_t *buf, size_t cap)
{
    uint8_t hdr[HD_FRAME_HDR_MAX];
    size_t sz, h;

    sz = protobuf_c_message_get_packed_size(m);
    if ((h = hd_frame_header(hdr, sz)) == 0 || h + sz > cap)
        return HD_ETOOBIG;
    memcpy(buf, hdr, h);
    protobuf_c_message_pack(m, buf + h);
    return (int)(h + sz);
}

int hd_msg_pack(const ProtobufCMessage *m, uint8_t **out, size_t *out_len)
{
    uint8_t *buf;
    size_t sz;

    *out = NULL;
    *out_len = 0;
    sz = protobuf_c_message_get_packed_size(m);
    if (sz > HD_FRAME_MAX_LEN)
        return HD_ETOOBIG;
    if ((buf = malloc(sz > 0 ? sz : 1)) == NULL)
        return -ENOMEM;
    protobuf_c_message_pack(m, buf);
    *out = buf;
    *out_len = sz;
    return 0;
}

int hd_msg_pack_into(const ProtobufCMessage *m, uint8_t *buf, size_t cap)
{
    size_t sz = protobuf_c_message_get_packed_size(m);

    if (sz > HD_FRAME_MAX_LEN || sz > cap)
        return HD_ETOOBIG;
    protobuf_c_message_pack(m, buf);
    return (int)sz;
}

/*
 * libFuzzer target for the frame decoder.  The first bytes of the input
 * choose the maximum payload and a seed for the chunk sizes; the rest is
 * the stream, delivered in random chunks through feed and reserve/commit
 * alternately.  Every frame returned is checked against a one-shot parse of
 * the whole stream, and the buffer against its bounds; any mismatch aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/*
 * The reference: walk the whole stream.  Returns the number of complete
 * frames before the stream ends or a frame is refused; *refused tells
 * which; *tail = offset after the last complete frame.
 */
static size_t reference(const uint8_t *s, size_t n, size_t max, int *refused,
                        size_t *tail)
{
    size_t off = 0, frames = 0, h, p;

    *refused = 0;
    while (hd_frame_parse_header(s + off, n - off, &h, &p)) {
        if (p > max) {
            *refused = 1;
            break;
        }
        if (n - off - h < p)
            break;
        off += h + p;
        frames++;
    }
    *tail = off;
    return frames;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hd_frame_decoder d;
    const uint8_t *s, *payload;
    size_t n, max, pos = 0, off = 0, frames = 0, want_frames, tail, len, h, p;
    size_t maxused = 0;
    uint32_t seed;
    int refused, r = 0, err = 0;

    if (size < 4)
        return 0;
    max = (size_t)data[0] << 8 | data[1];
    if (data[0] == 0xFF)
        max = HD_FRAME_MAX_LEN; /* announced lengths never allocated */
    seed = (uint32_t)data[2] << 8 | data[3] | 1u;
    s = data + 4;
    n = size - 4;
    want_frames = reference(s, n, max, &refused, &tail);

    hd_frame_decoder_init(&d, max);
    while (pos < n && err == 0) {
        size_t chunk = 1 + next_rand(&seed) % 300;

        if (chunk > n - pos)
            chunk = n - pos;
        if (next_rand(&seed) & 1) {
            err = hd_frame_decoder_feed(&d, s + pos, chunk);
        } else {
            uint8_t *ptr;
            size_t avail;

            err = hd_frame_decoder_reserve(&d, next_rand(&seed) % 70000, &ptr,
                                           &avail);
            if (err == 0) {
                if (avail == 0 || ptr == NULL)
                    abort();
                if (chunk > avail)
                    chunk = avail;
                memcpy(ptr, s + pos, chunk);
                if (hd_frame_decoder_commit(&d, chunk) != 0)
                    abort();
            }
        }
        if (err != 0)
            break;
        pos += chunk;
        if (pos - off > maxused)
            maxused = pos - off;
        while ((r = hd_frame_decoder_next(&d, &payload, &len)) == 1) {
            /* the same frame as the reference walk, at the same place */
            if (!hd_frame_parse_header(s + off, n - off, &h, &p) || p != len ||
                memcmp(s + off + h, payload, len) != 0 || len > max)
                abort();
            off += h + p;
            frames++;
        }
        if (r < 0)
            err = r;
        /*
         * Never allocated ahead of arrivals: within max + 4 or the
         * speculative cap over the most ever buffered, whichever is less,
         * but at least what one call had to hold.
         */
        {
            size_t bound = max + HD_FRAME_HDR_MAX, limit, spec;

            spec = maxused / 2 > HD_FRAME_SPECULATIVE ? maxused / 2
                                                      : HD_FRAME_SPECULATIVE;
            limit = maxused + spec < bound ? maxused + spec : bound;
            if (limit < maxused + 1)
                limit = maxused + 1;
            if (hd_frame_decoder_capacity(&d) > limit)
                abort();
        }
    }
    if (frames != want_frames)
        abort();
    if (err != 0) {
        if (err != HD_ETOOBIG || !refused)
            abort();
    } else {
        const uint8_t *pend = hd_frame_decoder_pending(&d, &len);

        if (refused || off != tail || len != n - off ||
            (len > 0 && memcmp(pend, s + off, len) != 0))
            abort();
    }
    hd_frame_decoder_cleanup(&d);
    return 0;
}

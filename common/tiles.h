/*
 * Still tiles: a lossless coding of 16x16 blocks of a YUV picture (the
 * VP9 encoder's I444 or I420 picture) with few values per plane, for the
 * refinement of still areas between homedesk peers (VideoFrame.hd_tiles;
 * RustDesk apps never get it).  Text and flat areas have a handful of
 * values a plane in a block: each plane of a block is a palette of 1 to
 * HD_TILES_MAX_COLOURS values and packed indices (0, 1, 2 or 4 bits a
 * sample), the whole message zstd-compressed, as TigerVNC's Tight coder
 * sends text (palette + zlib).  Blocks with more values (photos) do not
 * fit and stay with VP9.
 *
 * The message (inside one zstd frame that states its size):
 *   u8 version (1), u8 chroma shift (0 I444, 1 I420), u16le width,
 *   u16le height, u32le number of blocks; then per block, in raster order:
 *   varint (block index - previous index - 1; the first: its index), and
 *   per plane (Y, U, V): u8 colours n (1..16), n values, then the rows of
 *   the block's samples in that plane, each row ceil(w * bits / 8) bytes,
 *   most significant bits first (bits: 0 for n 1, 1 for 2, 2 for 3..4,
 *   4 for 5..16).
 *
 * A block drawn from tiles stays so on the viewer until the host names it
 * in the release list of a VP9 frame (EncodedVideoFrame.hd_release: the
 * blocks that frame codes which the viewer shows from tiles; the viewer
 * takes them from VP9 again).  The list: varint count, then varint
 * (block index - previous index - 1) per block, increasing; uncompressed.
 * Ownership is explicit because a VP9 change may decode to the very
 * pixels of an earlier picture (a square flipped back to its old colour),
 * which a viewer comparing pictures would miss.
 *
 * The decoder takes input from the network: every length, index and
 * palette entry is checked against the picture it writes into, the
 * decompressed size is capped by what that picture's blocks can need, and
 * a bad message is one log line and HD_EPROTO (or HD_ETOOBIG), never a
 * write outside the picture.
 *
 * Threads: no state; any thread.
 */
#ifndef HD_TILES_H
#define HD_TILES_H

#include <stddef.h>
#include <stdint.h>

#define HD_TILES_BLOCK       16
#define HD_TILES_MAX_COLOURS 16
#define HD_TILES_VERSION     1
/* Largest picture side (VideoFrame sizes stay far below). */
#define HD_TILES_MAX_DIM 16384

/* A picture the tiles are read from or written to: 8-bit Y, U, V planes,
 * chroma (w + cs) >> cs by (h + cs) >> cs. */
struct hd_tiles_pic {
    uint8_t *plane[3];
    int stride[3];
    int w, h, cs; /* cs: 0 I444, 1 I420 */
};

/* The area a message wrote, in pixels (w 0: none). */
struct hd_tiles_rect {
    int x, y, w, h;
};

/* The encoder's state for one message (hd_tiles_begin .. _finish). */
struct hd_tiles_enc {
    const struct hd_tiles_pic *pic;
    uint8_t *raw;
    size_t len, cap;
    uint32_t n;
    long last; /* index of the block added last, -1 before the first */
};

/* Start a message for pic (which must stay valid until _finish).  0 or
 * -EINVAL for a picture out of range. */
int hd_tiles_begin(struct hd_tiles_enc *e, const struct hd_tiles_pic *pic);

/*
 * Add block (bx, by) (block columns and rows of HD_TILES_BLOCK pixels;
 * blocks must come in raster order, each once).  Returns 1 when added,
 * 0 when it has too many values for a palette (the caller codes it
 * otherwise), -EINVAL for a block out of order or outside, -ENOMEM.
 */
int hd_tiles_add(struct hd_tiles_enc *e, int bx, int by);

/*
 * Finish: *out (malloc'd, the caller frees) and *out_n with the
 * compressed message, or *out NULL when no block was added.  Returns 0 or
 * -ENOMEM.  Releases e in every case.
 */
int hd_tiles_finish(struct hd_tiles_enc *e, uint8_t **out, size_t *out_n);

/* Release an unfinished message. */
void hd_tiles_abort(struct hd_tiles_enc *e);

/*
 * Write the blocks of message data[0..n) into pic (its size and chroma
 * must be the message's) and the bounding box of what was written into
 * *dirty (cleared on entry); owned (NULL, or one byte per block of pic
 * in raster order) gets 1 for each block written.  Returns 0, HD_EPROTO
 * for a malformed
 * message or one for another picture, HD_ETOOBIG for a message larger
 * than pic's blocks can need (one log line each).  On error, blocks
 * before the bad one may have been written (dirty covers them).
 */
int hd_tiles_decode(const uint8_t *data, size_t n, struct hd_tiles_pic *pic,
                    struct hd_tiles_rect *dirty, uint8_t *owned);

/*
 * Append block index idx (increasing from call to call; prev: the last
 * one appended, -1 at first) to a release list being built in buf (cap
 * bytes, at least 5 free); returns the bytes written.
 */
size_t hd_tiles_put_index(uint8_t *buf, long idx, long prev);

/*
 * Release list data[0..n) (see above, for a picture of blocks blocks):
 * owned[i] = 0 for each block listed.  Returns 0, or HD_EPROTO for a
 * malformed list (one log line; owned may be partly cleared).
 */
int hd_tiles_release(const uint8_t *data, size_t n, long blocks,
                     uint8_t *owned);

#endif

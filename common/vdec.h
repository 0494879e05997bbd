/*
 * VP9 decoder over libvpx, for the viewer's decode thread (DESIGN.md
 * section 4): one compressed frame in, the I420 (or, from a profile 1
 * stream, I444) picture out.
 *
 * The packets come from the network, so every one is bounded: a packet
 * above HD_VDEC_MAX_PACKET is refused, and the decoder draws its frame
 * buffers from a pool owned here that refuses a buffer for a picture
 * larger than HD_VDEC_MAX_WIDTH x HD_VDEC_MAX_HEIGHT (a forged frame header
 * cannot make the viewer allocate gigabytes).  A bad packet is one log
 * line and HD_EPROTO; the decoder stays usable (the caller should ask the
 * host for a key frame).
 *
 * Threads: a struct hd_vdec belongs to one thread at a time; libvpx may
 * run worker threads inside hd_vdec_decode.
 */
#ifndef HD_VDEC_H
#define HD_VDEC_H

#include <stddef.h>
#include <stdint.h>

#define HD_VDEC_MAX_PACKET (16u << 20)
#define HD_VDEC_MAX_WIDTH  8192
#define HD_VDEC_MAX_HEIGHT 8192

struct hd_vdec_picture {
    const uint8_t *planes[3]; /* Y, U, V; valid until the next
                               * hd_vdec_decode or hd_vdec_free */
    int stride[3];            /* bytes per row of each plane */
    int width, height;        /* luma size; chroma is (w+1)/2 x (h+1)/2
                               * (I420) or w x h (I444: cs 0);
                               * 0 x 0 when the packet showed no picture */
    int key;                  /* 1: the packet was a key frame */
    int cs;                   /* chroma shift: 1 I420 (VP9 profile 0), 0
                               * I444 (profile 1) */
};

struct hd_vdec;

/*
 * Create a decoder using up to threads worker threads (1..16).  Returns 0
 * and sets *out, HD_ECONFIG for a bad thread count or when libvpx has no
 * VP9 decoder, or -ENOMEM.  *out is NULL on failure.
 */
int hd_vdec_new(int threads, struct hd_vdec **out);

/* Free the decoder and its frame buffers; NULL is accepted. */
void hd_vdec_free(struct hd_vdec *vdec);

/*
 * Decode one VP9 frame (a whole packet as hd_venc produced it, superframes
 * included).  Returns 0 with *out filled (width 0 when nothing is shown),
 * HD_ETOOBIG for n above HD_VDEC_MAX_PACKET or a picture above the
 * maximum size, HD_EPROTO for a corrupt packet or an inter frame without
 * its references.  *out is cleared on entry.
 */
int hd_vdec_decode(struct hd_vdec *vdec, const uint8_t *data, size_t n,
                   struct hd_vdec_picture *out);

#endif

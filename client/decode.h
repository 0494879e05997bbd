/*
 * The decode thread: VP9 frames from the loop thread go through a bounded
 * queue to a decoder (common/vdec.h) on a thread of its own; each decoded
 * picture is handed to on_picture (on the decode thread), which takes
 * ownership.
 *
 * Newest wins: when the queue is full the undecoded frames are dropped.
 * Dropping a frame breaks the chain of references, so from then on every
 * frame up to the next key frame is dropped too (decoding them would show
 * garbage), and dec_push tells the caller to ask the host for a key frame
 * (Misc.refresh_video).  A frame the decoder rejects does the same.
 *
 * Threads: dec_new/dec_free from the owner (main), dec_push from one
 * producer (the loop thread), dec_get_stats from any thread.
 */
#ifndef VIEW_DECODE_H
#define VIEW_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "client/picture.h"
#include "message.pb-c.h"
#include "vdec.h"

/*
 * Frames waiting for the decoder at most.  Above the host's frames in
 * flight (its SESSION_IN_FLIGHT_MAX, 6: this viewer acknowledges a frame
 * when it arrives), so a decoder that is only slow (a loaded machine, a
 * large lossless refinement) catches up instead of costing a key frame:
 * at 3, a second viewer joining a still desktop at load 16 dropped its
 * queue twice and missed the refinement (e2e_quality second_viewer_sharp).
 */
#define DEC_QUEUE_MAX 8
/* Largest compressed frame accepted (a peer's input). */
#define DEC_FRAME_MAX HD_VDEC_MAX_PACKET

struct dec;

/*
 * What this decoder takes, for the LoginRequest: VP9, preferred, and in
 * 4:4:4 too (profile 1: coloured text sharp), asked for as RustDesk's
 * "true colour" (i444.vp9, prefer_chroma I444); i444 is sd's.
 */
void dec_abilities(Hbb__SupportedDecoding *sd, Hbb__CodecAbility *i444);

/*
 * What this decoder takes, for the LoginRequest: VP9, preferred, and in
 * 4:4:4 too (profile 1: coloured text sharp), asked for as RustDesk's
 * "true colour" (i444.vp9, prefer_chroma I444); i444 is sd's.
 */
void dec_abilities(Hbb__SupportedDecoding *sd, Hbb__CodecAbility *i444);

/* Decode thread: one new picture; the callee owns p. */
typedef void (*dec_picture_cb)(struct pic *p, void *ud);

struct dec_stats {
    uint64_t pushed, dropped, decoded, errors;
    double decode_ms; /* mean over the last frames */
};

/* Start the decoder thread.  Returns 0, -ENOMEM, or HD_ECONFIG (no VP9
 * decoder in libvpx). */
int dec_new(dec_picture_cb cb, void *ud, struct dec **out);

/*
 * Queue one compressed VP9 frame (copied) and its release list (rel_n 0:
 * none; EncodedVideoFrame.hd_release, common/tiles.h).  Returns 0, 1 when the
 * caller should ask the host for a key frame now (rate-limited here to one
 * request every 500 ms while frames are skipped), or a negative error
 * (-ENOMEM, HD_ETOOBIG above DEC_FRAME_MAX).
 */
int dec_push(struct dec *d, const uint8_t *data, size_t n, int key,
             uint64_t pts, const uint8_t *rel, size_t rel_n);

/*
 * Queue one still tiles message (VideoFrame.hd_tiles, common/tiles.h;
 * copied), drawn over the picture in order with the VP9 frames.  Returns
 * as dec_push (1: ask for a key frame, the queue had to be dropped).
 */
int dec_push_tiles(struct dec *d, const uint8_t *data, size_t n);

void dec_get_stats(struct dec *d, struct dec_stats *out);

/* Stop the thread, drop the queue, free; accepts NULL. */
void dec_free(struct dec *d);

#endif

/*
 * TCP framing of the RustDesk protocol (PROTOCOL.md section 1): every
 * message on a TCP stream is a 1- to 4-byte little-endian header whose low
 * two bits hold (header length - 1) and whose value shifted right by two is
 * the payload length (at most HD_FRAME_MAX_LEN), followed by the payload.
 * UDP datagrams and WebSocket messages carry bare messages, no header.
 *
 * The incremental decoder turns a byte stream into frames.  Its invariants:
 * - it never allocates the length a peer announces: the buffer starts small
 *   and grows only as bytes actually arrive, with speculative room capped
 *   (see HD_FRAME_SPECULATIVE);
 * - a frame announcing more than the decoder's max_payload is refused with
 *   HD_ETOOBIG as soon as its header is complete, before its body arrives;
 * - with reserve/commit the capacity never exceeds max_payload + 4; feed
 *   may exceed it only by the bytes of that one call (several frames);
 * - consumed bytes are dropped lazily: bytes move only when the free tail is
 *   too short for the next read, so each byte moves at most once.
 * The decoder does not log: the caller, which knows the peer, logs one line
 * when next returns an error and closes the connection.
 *
 * Not thread-safe: each decoder belongs to one thread (normally the libuv
 * loop thread that reads its stream).  The header functions are pure.
 */
#ifndef HD_FRAME_H
#define HD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define HD_FRAME_HDR_MAX 4
/* Largest payload a header can announce (30 bits). */
#define HD_FRAME_MAX_LEN 0x3FFFFFFFu
/*
 * Cap on the room the decoder allocates beyond the bytes it holds: this,
 * or half the bytes held when more (keeps copying linear for big frames).
 */
#define HD_FRAME_SPECULATIVE (256u * 1024u)
/* First allocation of a decoder (grown geometrically from there). */
#define HD_FRAME_INITIAL 4096u

/*
 * Write the header for a payload of payload_len bytes into out, using the
 * shortest form.  Returns the header length (1..4), or 0 when payload_len
 * exceeds HD_FRAME_MAX_LEN (out untouched).
 */
size_t hd_frame_header(uint8_t out[HD_FRAME_HDR_MAX], size_t payload_len);

/*
 * Parse a header at the start of buf (n bytes available).  Returns 1 when
 * the header is complete (*hdr_len = 1..4, *payload_len = announced
 * length; the payload itself may not be there yet), 0 when more bytes are
 * needed (both outputs 0).  Any complete header is valid, including
 * non-shortest forms, as with the reference decoder.
 */
int hd_frame_parse_header(const uint8_t *buf, size_t n, size_t *hdr_len,
                          size_t *payload_len);

/* Incremental decoder, embedded in its owner.  Fields are private. */
struct hd_frame_decoder {
    uint8_t *buf;
    size_t cap;         /* allocated bytes of buf */
    size_t start;       /* first byte not yet returned by next */
    size_t end;         /* end of buffered bytes */
    size_t max_payload; /* largest payload accepted */
    size_t room;        /* bytes offered by the last reserve */
    int filled;         /* the last commit filled the buffer to cap */
    int err;            /* sticky error after a refused frame */
};

/*
 * Initialise d for payloads of at most max_payload bytes (values above
 * HD_FRAME_MAX_LEN are lowered to it).  Allocates nothing.
 */
void hd_frame_decoder_init(struct hd_frame_decoder *d, size_t max_payload);

/* Free the buffer; d may be initialised again.  Accepts a zeroed d. */
void hd_frame_decoder_cleanup(struct hd_frame_decoder *d);

/*
 * Copy n bytes received from the stream into the decoder.  Call
 * hd_frame_decoder_next until it returns 0 after each feed.  Returns 0,
 * -ENOMEM, or the sticky error of an earlier refused frame.
 * Invalidates the pointers returned by next and pending.
 */
int hd_frame_decoder_feed(struct hd_frame_decoder *d, const void *data,
                          size_t n);

/*
 * Zero-copy receive (libuv alloc_cb): get free space at *ptr, *avail bytes
 * (at least 1, at most want unless want is 0), to read into; then call
 * hd_frame_decoder_commit with the number of bytes read (skip it or commit
 * 0 when nothing was read).  The space starts at HD_FRAME_INITIAL and grows
 * only when a read filled the buffer or a frame outgrows it, within
 * max_payload + 4 and the speculative cap, so an idle connection costs
 * 4 KiB, not libuv's 64 KiB suggestion.  Returns 0, -ENOMEM, the sticky
 * error, or HD_ETOOBIG when the buffer is full of frames the caller did
 * not take with next.  On error *ptr = NULL and *avail = 0.  Invalidates
 * the pointers returned by next and pending (it may move bytes).
 */
int hd_frame_decoder_reserve(struct hd_frame_decoder *d, size_t want,
                             uint8_t **ptr, size_t *avail);

/*
 * Account for n bytes written at the pointer of the last reserve.  Returns
 * 0, or -EINVAL when n exceeds the room offered (nothing is committed).
 */
int hd_frame_decoder_commit(struct hd_frame_decoder *d, size_t n);

/*
 * Take the next complete frame.  Returns 1 with *payload and *len set (the
 * pointer stays valid until the next call to feed, reserve or next on d;
 * a 0-length payload has a non-NULL pointer), 0 when more bytes are needed,
 * or HD_ETOOBIG when the frame announces more than max_payload; the error
 * is sticky (the stream cannot be resynchronised: close it).  Outputs are
 * cleared unless 1 is returned.
 */
int hd_frame_decoder_next(struct hd_frame_decoder *d, const uint8_t **payload,
                          size_t *len);

/*
 * The bytes buffered after the frames already returned by next (a partial
 * frame, or raw stream data after the last frame the caller cares about:
 * the relay forwards them as they are once a pair is joined).  Returns a
 * pointer valid until the next feed/reserve/next/cleanup (NULL when
 * *n == 0).
 */
const uint8_t *hd_frame_decoder_pending(const struct hd_frame_decoder *d,
                                        size_t *n);

/* Allocated capacity of d in bytes (for tests and memory accounting). */
size_t hd_frame_decoder_capacity(const struct hd_frame_decoder *d);

/*
 * Pack m with its frame header into a new malloc'd buffer (the caller frees
 * *out).  Returns 0, HD_ETOOBIG (packed size above HD_FRAME_MAX_LEN) or
 * -ENOMEM; outputs are cleared on error.
 */
int hd_frame_pack(const ProtobufCMessage *m, uint8_t **out, size_t *out_len);

/*
 * Pack m with its frame header into buf (cap bytes).  Returns the total
 * length written (header + message), or HD_ETOOBIG when it does not fit
 * (buf may then hold garbage).
 */
int hd_frame_pack_into(const ProtobufCMessage *m, uint8_t *buf, size_t cap);

/*
 * Pack a bare message, no header, for a UDP datagram or a WebSocket
 * message: into a new malloc'd buffer (hd_msg_pack: 0, HD_ETOOBIG or
 * -ENOMEM; an empty message gives a non-NULL 1-byte allocation and
 * *out_len = 0) or into buf (hd_msg_pack_into: the length, or HD_ETOOBIG
 * when it does not fit).
 */
int hd_msg_pack(const ProtobufCMessage *m, uint8_t **out, size_t *out_len);
int hd_msg_pack_into(const ProtobufCMessage *m, uint8_t *buf, size_t cap);

#endif

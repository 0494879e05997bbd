/*
 * Clipboard text on the wire (PROTOCOL.md, "Clipboard"): the text of a
 * `Clipboard` message (format Text), zstd-compressed when that makes it
 * smaller, as RustDesk does.  Host and viewer both use this.
 *
 * What comes from the network is bounded: a text above HD_CLIP_MAX bytes
 * is refused before anything that size is allocated (a zstd frame states
 * its size, and a frame without one is decompressed with the limit), and a
 * broken zstd frame is refused.  Refusals return a negative errno; the
 * caller logs one line and carries on with the session.
 *
 * Text is UTF-8 as the peers send it; NUL bytes cut it (X selections and
 * SDL take C strings).  Any thread.
 */
#ifndef HD_CLIP_H
#define HD_CLIP_H

#include <stddef.h>
#include <stdint.h>

#include "message.pb-c.h"

/* The largest clipboard text sent or accepted, in bytes. */
#define HD_CLIP_MAX (4u * 1024 * 1024)

/*
 * Fill cb (initialised here) with text[0..n): compressed into *buf
 * (malloc'd, for the caller to free once cb is packed) when zstd makes it
 * smaller, else pointing at text (*buf NULL).  Returns 0, -EMSGSIZE when
 * n > HD_CLIP_MAX, -ENOMEM.
 */
int hd_clip_pack(const char *text, size_t n, Hbb__Clipboard *cb, uint8_t **buf);

/*
 * The text of cb: *text (malloc'd, NUL-terminated, for the caller to
 * free) and its length *n up to the first NUL.  Returns 0, -ENOTSUP for a
 * format other than Text, -EMSGSIZE past HD_CLIP_MAX, -EBADMSG for a
 * broken zstd frame, -ENOMEM.
 */
int hd_clip_unpack(const Hbb__Clipboard *cb, char **text, size_t *n);

/*
 * The text clipboard of a MultiClipboards message (newer RustDesk peers
 * send their clipboard that way): the first Text entry, or NULL.
 */
const Hbb__Clipboard *hd_clip_pick(const Hbb__MultiClipboards *mc);

#endif

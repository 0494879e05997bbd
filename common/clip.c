/*
 * Clipboard text <-> Clipboard message, zstd as RustDesk uses it.  See
 * clip.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "clip.h"
#include "squeeze.h"

/* RustDesk compresses at zstd's default level. */
#define CLIP_LEVEL 3

int hd_clip_pack(const char *text, size_t n, Hbb__Clipboard *cb, uint8_t **buf)
{
    size_t z;
    int r;
    uint8_t *out;

    hbb__clipboard__init(cb);
    *buf = NULL;
    if (n > HD_CLIP_MAX)
        return -EMSGSIZE;
    cb->format = HBB__CLIPBOARD_FORMAT__Text;
    cb->content.data = (uint8_t *)text;
    cb->content.len = n;
    if (n < 64) /* a frame header and checksum would not pay */
        return 0;
    if ((r = hd_squeeze(text, n, CLIP_LEVEL, n, &out, &z)) <= 0)
        return r;
    cb->compress = 1;
    cb->content.data = out;
    cb->content.len = z;
    *buf = out;
    return 0;
}

/* Decompress a frame that does not state its size, at most max bytes. */
static int unzstd_stream(const uint8_t *in, size_t n, uint8_t *out, size_t max,
                         size_t *got)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    ZSTD_inBuffer ib = { in, n, 0 };
    ZSTD_outBuffer ob = { out, max + 1, 0 }; /* room to see it is too big */
    size_t r;
    int ret = 0;

    if (ds == NULL)
        return -ENOMEM;
    do {
        r = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(r)) {
            ret = -EBADMSG;
            break;
        }
        if (ob.pos > max) {
            ret = -EMSGSIZE;
            break;
        }
        if (r != 0 && ib.pos == ib.size && ob.pos < ob.size) {
            ret = -EBADMSG; /* truncated */
            break;
        }
    } while (r != 0);
    ZSTD_freeDStream(ds);
    *got = ob.pos;
    return ret;
}

int hd_clip_unpack(const Hbb__Clipboard *cb, char **text, size_t *n)
{
    const uint8_t *in = cb->content.data;
    size_t len = cb->content.len, got = 0;
    unsigned long long sz;
    char *out;
    int r;

    *text = NULL;
    *n = 0;
    if (cb->format != HBB__CLIPBOARD_FORMAT__Text)
        return -ENOTSUP;
    if (in == NULL)
        len = 0;
    if (!cb->compress) {
        if (len > HD_CLIP_MAX)
            return -EMSGSIZE;
        if ((out = malloc(len + 1)) == NULL)
            return -ENOMEM;
        if (len > 0)
            memcpy(out, in, len);
        got = len;
    } else {
        sz = ZSTD_getFrameContentSize(in, len);
        if (sz == ZSTD_CONTENTSIZE_ERROR)
            return -EBADMSG;
        if (sz != ZSTD_CONTENTSIZE_UNKNOWN && sz > HD_CLIP_MAX)
            return -EMSGSIZE;
        if (sz == ZSTD_CONTENTSIZE_UNKNOWN) {
            if ((out = malloc((size_t)HD_CLIP_MAX + 2)) == NULL)
                return -ENOMEM;
            r = unzstd_stream(in, len, (uint8_t *)out, HD_CLIP_MAX, &got);
        } else {
            if ((out = malloc((size_t)sz + 1)) == NULL)
                return -ENOMEM;
            got = ZSTD_decompress(out, (size_t)sz, in, len);
            r = ZSTD_isError(got) || got != sz ? -EBADMSG : 0;
        }
        if (r != 0) {
            free(out);
            return r;
        }
    }
    out[got] = '\0';
    *text = out;
    *n = strlen(out);
    return 0;
}

const Hbb__Clipboard *hd_clip_pick(const Hbb__MultiClipboards *mc)
{
    for (size_t i = 0; mc != NULL && i < mc->n_clipboards; i++)
        if (mc->clipboards[i] != NULL &&
            mc->clipboards[i]->format == HBB__CLIPBOARD_FORMAT__Text)
            return mc->clipboards[i];
    return NULL;
}

/*
 * libFuzzer target for clipboard messages (common/clip.h), which either
 * peer of a session can send: any Clipboard the protobuf parser accepts
 * is unpacked within HD_CLIP_MAX, and a text that comes out packs and
 * unpacks back to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Hbb__Clipboard *cb = hbb__clipboard__unpack(NULL, size, data), again;
    char *text, *back;
    size_t n, m;
    uint8_t *buf;

    if (cb == NULL)
        return 0;
    if (hd_clip_unpack(cb, &text, &n) == 0) {
        if (n > HD_CLIP_MAX || text[n] != '\0')
            abort();
        if (hd_clip_pack(text, n, &again, &buf) != 0 ||
            hd_clip_unpack(&again, &back, &m) != 0 || m != n ||
            memcmp(back, text, n) != 0)
            abort();
        free(back);
        free(buf);
        free(text);
    }
    hbb__clipboard__free_unpacked(cb, NULL);
    return 0;
}

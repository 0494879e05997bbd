/*
 * libFuzzer target for still tiles and release lists (common/tiles.h),
 * which a host sends a viewer: any input is decoded into an I444 and an
 * I420 picture of odd sizes inside guard bytes, which must stay intact,
 * and read as a release list over a small block map.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUARD 64

static void one(const uint8_t *data, size_t size, int w, int h, int cs)
{
    int cw = (w + cs) >> cs, ch = (h + cs) >> cs;
    size_t sz[3] = { (size_t)w * h, (size_t)cw * ch, (size_t)cw * ch };
    size_t total = GUARD + sz[0] + sz[1] + sz[2] + 3 * GUARD, at = GUARD;
    uint8_t *mem = malloc(total), owned[64];
    struct hd_tiles_pic pic = { .w = w, .h = h, .cs = cs };
    struct hd_tiles_rect d;

    if (mem == NULL)
        return;
    memset(mem, 0xA5, total);
    for (int i = 0; i < 3; i++) {
        pic.plane[i] = mem + at;
        pic.stride[i] = i ? cw : w;
        at += sz[i] + GUARD;
    }
    hd_tiles_decode(data, size, &pic, &d, owned);
    if (d.w > 0 && (d.x < 0 || d.y < 0 || d.x + d.w > w || d.y + d.h > h))
        abort();
    at = 0;
    for (int i = 0; i <= 3; i++) {
        for (size_t k = 0; k < GUARD; k++)
            if (mem[at + k] != 0xA5)
                abort();
        if (i < 3)
            at += GUARD + sz[i];
    }
    free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t owned[64];

    one(data, size, 61, 45, 0);
    one(data, size, 37, 29, 1);
    hd_tiles_release(data, size, 64, owned);
    return 0;
}

/*
 * zstd where it pays.  See squeeze.h.
 */
#include <errno.h>
#include <stdlib.h>

#include <zstd.h>

#include "squeeze.h"

int hd_squeeze(const void *in, size_t n, int level, size_t limit, uint8_t **out,
               size_t *out_n)
{
    size_t cap = ZSTD_compressBound(n), z;
    uint8_t *o;

    *out = NULL;
    *out_n = 0;
    if ((o = malloc(cap)) == NULL)
        return -ENOMEM;
    z = ZSTD_compress(o, cap, in, n, level);
    if (ZSTD_isError(z) || z >= limit) {
        free(o);
        return 0;
    }
    *out = o;
    *out_n = z;
    return 1;
}

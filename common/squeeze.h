/*
 * zstd where it pays (the clipboard and file blocks, as RustDesk sends
 * them): compress, and keep the result only when it is smaller than the
 * caller's limit.  Any thread.
 */
#ifndef HD_SQUEEZE_H
#define HD_SQUEEZE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Compress in[0..n) at level.  Returns 1 with *out (malloc'd; free it) and
 * *out_n when the result is below limit bytes, 0 when it is not (nothing
 * allocated), -ENOMEM.
 */
int hd_squeeze(const void *in, size_t n, int level, size_t limit, uint8_t **out,
               size_t *out_n);

#endif

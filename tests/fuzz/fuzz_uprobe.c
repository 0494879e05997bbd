/*
 * libFuzzer target for the UDP punch probe parser (common/uprobe.h), fed
 * by anyone who can send a datagram to a host's registration socket or a
 * punching viewer.  Whatever parses must pack back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uprobe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hd_uprobe p;
    uint8_t buf[HD_UPROBE_MAX];
    size_t n;

    if (hd_uprobe_parse(data, size, &p) != 0)
        return 0;
    if (!hd_uprobe_is(data, size))
        abort();
    n = hd_uprobe_pack(&p, buf);
    if (n != size || memcmp(buf, data, n) != 0)
        abort();
    return 0;
}

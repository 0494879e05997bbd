/*
 * UDP punch probes.  See uprobe.h.
 */
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "uprobe.h"

uint16_t hd_uprobe_guess_port(void)
{
    return (uint16_t)(1024 + randombytes_uniform(65536 - 1024));
}

size_t hd_uprobe_pack(const struct hd_uprobe *p, uint8_t *buf)
{
    size_t idlen = strlen(p->id);

    if (idlen > HD_UPROBE_ID_MAX ||
        (p->type != HD_UPROBE_PROBE && p->type != HD_UPROBE_ANSWER) ||
        (p->role != HD_UPROBE_HOST && p->role != HD_UPROBE_VIEWER))
        return 0;
    buf[0] = HD_UPROBE_MAGIC;
    buf[1] = (uint8_t)p->type;
    buf[2] = (uint8_t)(p->conv >> 24);
    buf[3] = (uint8_t)(p->conv >> 16);
    buf[4] = (uint8_t)(p->conv >> 8);
    buf[5] = (uint8_t)p->conv;
    buf[6] = (uint8_t)p->role;
    buf[7] = (uint8_t)idlen;
    memcpy(buf + 8, p->id, idlen);
    return 8 + idlen;
}

int hd_uprobe_is(const uint8_t *d, size_t n)
{
    return n >= 2 && d[0] == HD_UPROBE_MAGIC &&
           (d[1] == HD_UPROBE_PROBE || d[1] == HD_UPROBE_ANSWER);
}

int hd_uprobe_parse(const uint8_t *d, size_t n, struct hd_uprobe *out)
{
    size_t idlen;

    memset(out, 0, sizeof(*out));
    if (n < 8 || !hd_uprobe_is(d, n))
        return HD_EPROTO;
    if (d[6] != HD_UPROBE_HOST && d[6] != HD_UPROBE_VIEWER)
        return HD_EPROTO;
    idlen = d[7];
    if (idlen > HD_UPROBE_ID_MAX || n != 8 + idlen)
        return HD_EPROTO;
    for (size_t i = 0; i < idlen; i++)
        if (d[8 + i] < 0x20 || d[8 + i] == 0x7f)
            return HD_EPROTO;
    out->type = d[1];
    out->conv = (uint32_t)d[2] << 24 | (uint32_t)d[3] << 16 |
                (uint32_t)d[4] << 8 | d[5];
    out->role = d[6];
    memcpy(out->id, d + 8, idlen);
    out->id[idlen] = '\0';
    return 0;
}

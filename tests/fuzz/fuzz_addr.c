/*
 * libFuzzer target for the address parsers fed by peers and by
 * configuration: hd_addr_unmangle on the raw input, and hd_addr_parse /
 * hd_cidr_parse on it as text.  Whatever parses must format and parse back
 * to the same address.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_storage ss, back;
    struct hd_cidr c;
    char text[300], buf[HD_ADDR_STRLEN];
    uint8_t m[HD_ADDR_MANGLED_MAX];
    size_t n;

    if (hd_addr_unmangle(data, size, &ss) == 0) {
        n = hd_addr_mangle((struct sockaddr *)&ss, size * 977, m);
        if (n == 0 || hd_addr_unmangle(m, n, &back) != 0 ||
            memcmp(&ss, &back, sizeof(ss)) != 0)
            abort();
    }
    if (size >= sizeof(text))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (hd_addr_parse(text, 21116, &ss) == 0) {
        hd_addr_format((struct sockaddr *)&ss, buf, sizeof(buf));
        if (hd_addr_parse(buf, 1, &back) != 0 ||
            memcmp(&ss, &back, sizeof(ss)) != 0)
            abort();
        /* a single address is a valid /32 or /128 mask holding itself */
        hd_addr_format_ip((struct sockaddr *)&ss, buf, sizeof(buf));
        if (strchr(buf, '%') == NULL &&
            (hd_cidr_parse(buf, &c) != 0 ||
             hd_cidr_contains(&c, (struct sockaddr *)&ss) != 1))
            abort();
    }
    if (hd_cidr_parse(text, &c) == 0 &&
        (c.family != AF_INET && c.family != AF_INET6))
        abort();
    return 0;
}

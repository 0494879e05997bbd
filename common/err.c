/* Error strings for HD_E* codes, negative errno and libuv errors. */
#include <string.h>

#include <uv.h>

#include "err.h"

const char *hd_strerror(int r)
{
    switch (r) {
    case 0:
        return "success";
    case HD_EPROTO:
        return "protocol error";
    case HD_ETOOBIG:
        return "message too large";
    case HD_EAUTH:
        return "authentication failed";
    case HD_ECRYPTO:
        return "decryption failed";
    case HD_EKEYFILE:
        return "bad key file";
    case HD_ECONFIG:
        return "invalid configuration";
    case HD_ETHROTTLE:
        return "too many attempts";
    }
#ifdef _WIN32
    /* libuv's codes are not errno's here (UV_ENODEV is -4054): our own
     * -ENODEV, -EIO, ... are the C library's */
    if (r < 0 && r > -1000)
        return strerror(-r);
#endif
    if (r < 0 && r > -4096)
        return uv_strerror(r);
    return "unknown error";
}

/*
 * Error codes shared by every module.  Functions return 0 on success and a
 * negative value on failure: either a negative errno (so libuv's UV_E*
 * codes, which are negative errno on Unix, pass straight through) or one of
 * the HD_E* codes below, which lie far outside the errno range.
 */
#ifndef HD_ERR_H
#define HD_ERR_H

enum {
    HD_EPROTO = -20001,   /* malformed or unexpected message from a peer */
    HD_ETOOBIG = -20002,  /* announced or actual size above the limit */
    HD_EAUTH = -20003,    /* bad signature, key mismatch, wrong password */
    HD_ECRYPTO = -20004,  /* decryption failed: altered, replayed, reordered */
    HD_EKEYFILE = -20005, /* key file unreadable or in the wrong format */
    HD_ECONFIG = -20006,  /* invalid option or configuration value */
    HD_ETHROTTLE = -20007 /* refused by a rate limit */
};

/*
 * A short human-readable description of r (an HD_E* code, a negative errno
 * or a libuv error).  Never NULL; the string is static.
 */
const char *hd_strerror(int r);

#endif

/*
 * Pinned host keys for direct connections (--direct HOST:PORT), as ssh's
 * known_hosts: the first time a host is reached its Ed25519 key (from the
 * SignedId extension, see common/channel.h) is written down; afterwards
 * a different key for the same address is refused.  The file holds one
 * line per address: "ADDRESS ID BASE64KEY" (ADDRESS as the user typed it,
 * "id:ID@SERVER" by ID; lines starting with '#' are comments).  The user
 * removes a line to accept a host's new key.
 *
 * Called from the session thread only; the file is rewritten through a
 * temporary file, mode 0600.
 */
#ifndef VIEW_KNOWN_HOSTS_H
#define VIEW_KNOWN_HOSTS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define KH_FILE "known_hosts"

enum kh_result {
    KH_MATCH = 0,  /* the address is known with this key */
    KH_NEW = 1,    /* it was not known: pinned now */
    KH_CHANGED = 2 /* known with another key: refuse */
};

/*
 * Check (addr, pk) against path and pin it when new (creating the file and
 * its directory as needed).  id is written down for the user.  Returns
 * KH_MATCH, KH_NEW, KH_CHANGED, or a negative errno (unreadable file,
 * cannot write).  A line that does not parse is skipped with a warning.
 */
int kh_check(const char *path, const char *addr, const char *id,
             const uint8_t pk[HD_SIGN_PK_BYTES]);

/* As kh_check, but only looks: KH_NEW when addr has no line (nothing is
 * written), or a negative errno. */
int kh_find(const char *path, const char *addr,
            const uint8_t pk[HD_SIGN_PK_BYTES]);

/*
 * Servers that offered per-direction keys on their rendezvous channel
 * (client/rendezvous.c) are remembered here too, one line each:
 * "kx-split:BASE64KEY server BASE64KEY"; from then on a legacy offer
 * signed by that key is refused as a downgrade.
 */
#define KH_KX_SPLIT_PREFIX "kx-split:"

#endif

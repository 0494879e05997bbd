/*
 * The host's identity and secrets, kept in its config directory
 * ($XDG_CONFIG_HOME/homedesk or --config-dir, created 0700):
 * - id_ed25519 / id_ed25519.pub: the Ed25519 key (hbbs file format, the
 *   secret file 0600), registered with the server and signing SignedId;
 * - host.conf (0600): "id" (9 digits, first non-zero), "uuid" (random,
 *   stable: the server ties the ID to it), "salt" (sent in Hash) and
 *   "password" (hex of SHA256(password || salt), never the password).
 *   That hash is itself enough to log in (RustDesk's login proof is
 *   computed from it, not from the password), so host.conf is as secret
 *   as the password: 0600, never logged, never copied anywhere.
 * All of it is kept across restarts; a missing item is created.
 *
 * The one-time password lives only in memory (sodium_malloc'd) for the
 * life of the process.  Both passwords are checked with hd_login_verify
 * against their salted hashes, in constant time.
 *
 * Main thread (or loop thread) only; no function logs a secret.
 */
#ifndef HD_HOST_IDENT_H
#define HD_HOST_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define IDENT_ID_MAX   16
#define IDENT_UUID_MAX 40
#define IDENT_SALT_LEN 8
#define IDENT_OTP_LEN  8
#define IDENT_STATE    "host.conf"

struct ident {
    char dir[512];
    char id[IDENT_ID_MAX];
    char uuid[IDENT_UUID_MAX];
    char salt[IDENT_SALT_LEN + 1];
    struct hd_sign_key key;
    /* salted hashes (HD_SHA256_BYTES, sodium_malloc'd) or NULL */
    uint8_t *perm;
    uint8_t *otp_salted;
    char *otp; /* the one-time password text, sodium_malloc'd, or NULL */
};

/*
 * Create dir (0700) if needed, then load or create the key and host.conf.
 * Returns 0 or a negative error after one log line.  Call ident_cleanup
 * in every case.
 */
int ident_load(struct ident *id, const char *dir);

/* Wipe and free the secrets.  Accepts a zeroed id. */
void ident_cleanup(struct ident *id);

/*
 * Store pw as the permanent password (salted hash in host.conf).  An empty
 * pw removes it.  Returns 0 or a negative error after one log line.
 */
int ident_set_password(struct ident *id, const char *pw);

/*
 * NULL when pw is acceptable as a permanent password, else why not (a
 * static string): shorter than IDENT_PW_MIN characters, fewer than 5
 * different characters, or one of the most common passwords.
 */
#define IDENT_PW_MIN 8
const char *ident_password_weak(const char *pw);

/* Make a fresh one-time password (id->otp).  Returns 0 or -ENOMEM. */
int ident_new_otp(struct ident *id);

/*
 * Pick a new random ID and save it (after the server said the ID belongs
 * to another machine).  old (IDENT_ID_MAX) receives the previous one.
 * Returns 0 or a negative error.
 */
int ident_new_id(struct ident *id, char *old);

/*
 * Check LoginRequest.password (got[0..n)) for challenge against the
 * permanent and the one-time password; bind: the session's binding key
 * (a homedesk viewer's proof is bound to it, hd_login_bind), NULL for a
 * RustDesk app's.  Returns 1 (permanent), 2 (one-time) or 0 (wrong, or
 * no password set).
 */
int ident_check(const struct ident *id, const char *challenge,
                const uint8_t *bind, const uint8_t *got, size_t n);

/* n random characters from an unambiguous alphabet into out (n + 1). */
void ident_random_text(char *out, size_t n);

#endif

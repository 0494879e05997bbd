/*
 * Host identity: ID, uuid, key, salt and password hashes in the config
 * directory.  See ident.h.  host.conf is read with common/config.h (one
 * table of "key = value" entries) and written whole through a temporary
 * file renamed into place, mode 0600.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "err.h"
#include "host/ident.h"
#include "log.h"
#include "os.h"

#define MOD "host"

static const char ALPHABET[] = "abcdefghijkmnpqrstuvwxyz23456789";

void ident_random_text(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ALPHABET[randombytes_uniform(sizeof(ALPHABET) - 1)];
    out[n] = '\0';
}

static void random_id(char *out)
{
    snprintf(out, IDENT_ID_MAX, "%u",
             100000000u + randombytes_uniform(900000000u));
}

static void random_uuid(char *out)
{
    uint8_t b[16];

    randombytes_buf(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, IDENT_UUID_MAX,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

static int valid_id(const char *s)
{
    size_t n = strlen(s);

    if (n < 6 || n >= IDENT_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int save(const struct ident *id)
{
    char path[600], tmp[620], hex[HD_SHA256_BYTES * 2 + 1] = "";
    FILE *f = NULL;
    int fd, r;

    snprintf(path, sizeof(path), "%s/%s", id->dir, IDENT_STATE);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (id->perm != NULL)
        sodium_bin2hex(hex, sizeof(hex), id->perm, HD_SHA256_BYTES);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
        (f = fdopen(fd, "w")) == NULL) {
        r = -errno;
        if (fd >= 0)
            close(fd);
        goto out;
    }
    fprintf(f,
            "# homedesk-host identity: keep private (mode 0600)\n"
            "id = %s\nuuid = %s\nsalt = %s\npassword = %s\n",
            id->id, id->uuid, id->salt, hex);
    r = fflush(f) != 0 || fsync(fileno(f)) != 0 ? -errno : 0;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) != 0)
        r = -errno;
out:
    sodium_memzero(hex, sizeof(hex));
    if (r != 0) {
        hd_error(MOD, "cannot write %s: %s", path, hd_strerror(r));
        unlink(tmp);
    }
    return r;
}

int ident_load(struct ident *id, const char *dir)
{
    const char *s_id = NULL, *s_uuid = NULL, *s_salt = NULL, *s_pw = NULL;
    const struct hd_opt opts[] = {
        { .names = "id", .type = HD_OPT_STRING, .s = &s_id },
        { .names = "uuid", .type = HD_OPT_STRING, .s = &s_uuid },
        { .names = "salt", .type = HD_OPT_STRING, .s = &s_salt },
        { .names = "password", .type = HD_OPT_STRING, .s = &s_pw },
        { 0 }
    };
    struct hd_config cfg = { 0 };
    char path[600];
    size_t bin_len;
    int r, dirty = 0;

    memset(id, 0, sizeof(*id));
    snprintf(id->dir, sizeof(id->dir), "%s", dir);
    if ((r = os_mkdir(dir, 0700)) != 0 && r != -EEXIST) {
        hd_error(MOD, "cannot create config directory %s: %s", dir,
                 hd_strerror(r));
        return r;
    }
    if ((r = hd_sign_key_load_or_create(dir, &id->key)) != 0)
        return r;
    snprintf(path, sizeof(path), "%s/%s", dir, IDENT_STATE);
    if ((r = hd_config_init(&cfg, path, opts)) != 0)
        goto out;
    cfg.errf = NULL;
    if ((r = hd_config_parse_file(&cfg, path, false)) != 0) {
        hd_error(MOD, "%s", cfg.error);
        goto out;
    }
    if (s_id != NULL && valid_id(s_id)) {
        snprintf(id->id, sizeof(id->id), "%s", s_id);
    } else {
        random_id(id->id);
        dirty = 1;
    }
    if (s_uuid != NULL && s_uuid[0] && strlen(s_uuid) < IDENT_UUID_MAX) {
        snprintf(id->uuid, sizeof(id->uuid), "%s", s_uuid);
    } else {
        random_uuid(id->uuid);
        dirty = 1;
    }
    if (s_salt != NULL && strlen(s_salt) == IDENT_SALT_LEN) {
        snprintf(id->salt, sizeof(id->salt), "%s", s_salt);
    } else {
        ident_random_text(id->salt, IDENT_SALT_LEN);
        dirty = 1;
    }
    if (s_pw != NULL && s_pw[0]) {
        if ((id->perm = sodium_malloc(HD_SHA256_BYTES)) == NULL) {
            r = -ENOMEM;
            goto out;
        }
        if (sodium_hex2bin(id->perm, HD_SHA256_BYTES, s_pw, strlen(s_pw), NULL,
                           &bin_len, NULL) != 0 ||
            bin_len != HD_SHA256_BYTES) {
            hd_warn(MOD, "%s: malformed password hash ignored", path);
            sodium_free(id->perm);
            id->perm = NULL;
        }
    }
    r = dirty ? save(id) : 0;
out:
    hd_config_cleanup(&cfg);
    return r;
}

void ident_cleanup(struct ident *id)
{
    hd_sign_key_cleanup(&id->key);
    if (id->perm)
        sodium_free(id->perm);
    if (id->otp_salted)
        sodium_free(id->otp_salted);
    if (id->otp)
        sodium_free(id->otp);
    id->perm = id->otp_salted = NULL;
    id->otp = NULL;
}

int ident_set_password(struct ident *id, const char *pw)
{
    if (pw == NULL || pw[0] == '\0') {
        if (id->perm)
            sodium_free(id->perm);
        id->perm = NULL;
        return save(id);
    }
    if (id->perm == NULL && (id->perm = sodium_malloc(HD_SHA256_BYTES)) == NULL)
        return -ENOMEM;
    hd_login_salted(pw, id->salt, id->perm);
    return save(id);
}

const char *ident_password_weak(const char *pw)
{
    static const char *const common[] = {
        "password", "passw0rd", "12345678",  "123456789", "1234567890",
        "qwertyui", "qwertzui", "azertyui",  "iloveyou",  "sunshine",
        "princess", "football", "baseball",  "welcome1",  "abcdefgh",
        "homedesk", "rustdesk", "password1", "admin123",  "letmein1"
    };
    size_t n = strlen(pw), distinct = 0;
    int seen[256] = { 0 };

    if (n < IDENT_PW_MIN)
        return "shorter than 8 characters";
    for (size_t i = 0; i < n; i++)
        if (!seen[(unsigned char)pw[i]]++)
            distinct++;
    if (distinct < 5)
        return "fewer than 5 different characters";
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
        if (strcasecmp(pw, common[i]) == 0)
            return "one of the most common passwords";
    return NULL;
}

int ident_new_otp(struct ident *id)
{
    if (id->otp == NULL && (id->otp = sodium_malloc(IDENT_OTP_LEN + 1)) == NULL)
        return -ENOMEM;
    if (id->otp_salted == NULL &&
        (id->otp_salted = sodium_malloc(HD_SHA256_BYTES)) == NULL)
        return -ENOMEM;
    ident_random_text(id->otp, IDENT_OTP_LEN);
    hd_login_salted(id->otp, id->salt, id->otp_salted);
    return 0;
}

int ident_new_id(struct ident *id, char *old)
{
    snprintf(old, IDENT_ID_MAX, "%s", id->id);
    do
        random_id(id->id);
    while (strcmp(id->id, old) == 0);
    return save(id);
}

int ident_check(const struct ident *id, const char *challenge,
                const uint8_t *bind, const uint8_t *got, size_t n)
{
    /* check both, always, so timing does not tell which one exists */
    int perm = id->perm != NULL &&
               hd_login_verify(id->perm, challenge, bind, got, n) == 0;
    int otp = id->otp_salted != NULL &&
              hd_login_verify(id->otp_salted, challenge, bind, got, n) == 0;

    return perm ? 1 : otp ? 2 : 0;
}

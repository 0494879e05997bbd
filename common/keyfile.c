/*
 * The hbbs key files (crypto.h): id_ed25519 (the secret key, base64) and
 * id_ed25519.pub, read, checked against each other and created, with the
 * modes hbbs gives them.  The only part of crypto.h that touches files.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto.h"
#include "err.h"
#include "log.h"
#include "os.h"

/* A key file is a few dozen characters; anything much larger is wrong. */
#define KEYFILE_MAX 1024
/* hbbs gives up after 300 tries; half of all keys qualify, so 1000 never
 * runs out in practice. */
#define KEYGEN_TRIES 1000
/* what may surround the base64 text */
#define SPACES " \t\r\n\v\f"

/*
 * Read a small text file into buf (cap bytes, NUL-terminated).  Returns 0,
 * a negative errno (-ENOENT when missing), or HD_EKEYFILE when it is not a
 * regular file or too large.  *mode receives the permission bits.
 */
static int read_text_file(const char *path, char *buf, size_t cap, mode_t *mode)
{
    struct stat st;
    size_t len = 0;
    ssize_t got;
    int fd, r;

    buf[0] = '\0';
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        r = -errno;
        goto out;
    }
    *mode = st.st_mode & 07777;
    if (!S_ISREG(st.st_mode)) {
        hd_error("key", "%s: not a regular file", path);
        r = HD_EKEYFILE;
        goto out;
    }
    for (;;) {
        if (len == cap - 1) {
            hd_error("key", "%s: too large for a key file", path);
            r = HD_EKEYFILE;
            goto out;
        }
        got = read(fd, buf + len, cap - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = -errno;
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    buf[len] = '\0';
    r = 0;
out:
    close(fd);
    return r;
}

/*
 * Write data to a new temporary file beside path with the given mode and
 * fsync it; *tmp receives its name (PATH_MAX bytes).  The caller renames or
 * links it into place and unlinks it.
 */
static int write_temp_file(const char *path, const char *data, size_t len,
                           mode_t mode, char *tmp)
{
    size_t done = 0;
    ssize_t w;
    int fd, r;

    if (snprintf(tmp, PATH_MAX, "%s.XXXXXX", path) >= PATH_MAX)
        return -ENAMETOOLONG;
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        r = -errno;
        tmp[0] = '\0';
        return r;
    }
    if (fchmod(fd, mode) != 0) {
        r = -errno;
        goto out;
    }
    while (done < len) {
        w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            r = -errno;
            goto out;
        }
        done += (size_t)w;
    }
    r = fsync(fd) != 0 ? -errno : 0;
out:
    if (close(fd) != 0 && r == 0)
        r = -errno;
    if (r != 0) {
        unlink(tmp);
        tmp[0] = '\0';
    }
    return r;
}

static int load_secret_file(const char *path, struct hd_sign_key *k)
{
    char *text = sodium_malloc(KEYFILE_MAX);
    mode_t mode = 0;
    int r;

    memset(k, 0, sizeof(*k));
    if (text == NULL)
        return -ENOMEM;
    if ((r = read_text_file(path, text, KEYFILE_MAX, &mode)) != 0) {
        if (r != -ENOENT && r != HD_EKEYFILE)
            hd_error("key", "%s: %s", path, hd_strerror(r));
        goto out;
    }
    r = hd_sign_key_from_base64_sk(text, k);
    if (r == HD_EKEYFILE)
        hd_error("key",
                 "%s: not an Ed25519 secret key (expected the base64 of "
                 "64 bytes, as hbbs writes it)",
                 path);
    else if (r != 0)
        hd_error("key", "%s: %s", path, hd_strerror(r));
    else if (mode & 077)
        hd_warn("key", "%s is readable by other users; chmod 600 it", path);
out:
    sodium_free(text);
    return r;
}

/*
 * Generate a key whose base64 public key has no '/' and publish it at path.
 * The secret is linked into place, not renamed: if another process (hbbs
 * and hbbr sharing a directory) created the file first, link fails with
 * EEXIST and the caller loads that one, so both end up with the same key.
 */
static int create_secret_file(const char *path, struct hd_sign_key *k)
{
    char pub[HD_BASE64_ENCODED_LEN(HD_SIGN_PK_BYTES)];
    char *text = NULL, tmp[PATH_MAX] = "";
    int i, r;

    if ((r = hd_sign_key_generate(k)) != 0)
        goto out;
    for (i = 0;; i++) {
        hd_base64_encode(k->pk, sizeof(k->pk), pub, sizeof(pub));
        if (strchr(pub, '/') == NULL)
            break;
        if (i == KEYGEN_TRIES) {
            r = -EAGAIN;
            goto out;
        }
        crypto_sign_keypair(k->pk, k->sk);
    }
    if ((text = sodium_malloc(KEYFILE_MAX)) == NULL) {
        r = -ENOMEM;
        goto out;
    }
    hd_base64_encode(k->sk, HD_SIGN_SK_BYTES, text, KEYFILE_MAX);
    if ((r = write_temp_file(path, text, strlen(text), 0600, tmp)) != 0) {
        hd_error("key", "%s: cannot write: %s", path, hd_strerror(r));
        goto out;
    }
    if (link(tmp, path) != 0) {
        r = -errno;
        if (r != -EEXIST)
            hd_error("key", "%s: cannot create: %s", path, hd_strerror(r));
        goto out;
    }
    hd_info("key", "generated a new key pair in %s", path);
    r = 0;
out:
    if (tmp[0] != '\0')
        unlink(tmp);
    sodium_free(text);
    if (r != 0)
        hd_sign_key_cleanup(k);
    return r;
}

/* Check path (the .pub file) against k, or write it when missing. */
static int check_pub_file(const char *path, const struct hd_sign_key *k)
{
    char want[HD_BASE64_ENCODED_LEN(HD_SIGN_PK_BYTES)];
    char text[KEYFILE_MAX], tmp[PATH_MAX] = "";
    uint8_t pk[HD_SIGN_PK_BYTES + 3];
    size_t start = 0, end, n = 0;
    mode_t mode = 0;
    int r;

    hd_base64_encode(k->pk, sizeof(k->pk), want, sizeof(want));
    r = read_text_file(path, text, sizeof(text), &mode);
    if (r == -ENOENT) {
        if ((r = write_temp_file(path, want, strlen(want), 0644, tmp)) == 0 &&
            rename(tmp, path) != 0)
            r = -errno;
        if (r != 0)
            hd_error("key", "%s: cannot write: %s", path, hd_strerror(r));
        goto out;
    }
    if (r != 0) {
        if (r != HD_EKEYFILE)
            hd_error("key", "%s: %s", path, hd_strerror(r));
        goto out;
    }
    end = strlen(text);
    while (start < end && text[start] != '\0' && strchr(SPACES, text[start]))
        start++;
    while (end > start && strchr(SPACES, text[end - 1]))
        end--;
    if (hd_base64_decode(text + start, end - start, pk, sizeof(pk), &n) != 0 ||
        n != HD_SIGN_PK_BYTES) {
        hd_error("key", "%s: not a base64 Ed25519 public key", path);
        r = HD_EKEYFILE;
        goto out;
    }
    if (memcmp(pk, k->pk, HD_SIGN_PK_BYTES) != 0) {
        hd_error("key",
                 "%s does not match the secret key beside it (public key "
                 "of the secret: %s); restore the matching pair or delete "
                 "the .pub file to rewrite it",
                 path, want);
        r = HD_EKEYFILE;
        goto out;
    }
    r = 0;
out:
    if (tmp[0] != '\0')
        unlink(tmp);
    return r;
}

int hd_sign_key_load_or_create(const char *dir, struct hd_sign_key *k)
{
    char skp[PATH_MAX], pubp[PATH_MAX];
    struct stat st;
    int r = 0;

    memset(k, 0, sizeof(*k));
    if (snprintf(skp, sizeof(skp), "%s/%s", dir, HD_KEY_FILE) >=
            (int)sizeof(skp) ||
        snprintf(pubp, sizeof(pubp), "%s/%s", dir, HD_KEY_FILE_PUB) >=
            (int)sizeof(pubp)) {
        r = -ENAMETOOLONG;
        hd_error("key", "%s: path too long", dir);
        goto out;
    }
    if (stat(dir, &st) != 0)
        r = -errno;
    else if (!S_ISDIR(st.st_mode))
        r = -ENOTDIR;
    if (r != 0) {
        hd_error("key", "key directory %s: %s", dir, hd_strerror(r));
        goto out;
    }
    r = load_secret_file(skp, k);
    if (r == -ENOENT) {
        r = create_secret_file(skp, k);
        if (r == -EEXIST)
            r = load_secret_file(skp, k);
    }
    if (r != 0)
        goto out;
    r = check_pub_file(pubp, k);
out:
    if (r != 0)
        hd_sign_key_cleanup(k);
    return r;
}

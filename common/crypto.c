/*
 * Keys, signed IdPk, the session channel and the login hash (see crypto.h).
 * Key files are read and written here; everything else is pure computation
 * on caller buffers.
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
#include "message.pb-c.h"

/* A key file is a few dozen characters; anything much larger is wrong. */
#define KEYFILE_MAX 1024
/* hbbs gives up after 300 tries; half of all keys qualify, so 1000 never
 * runs out in practice. */
#define KEYGEN_TRIES 1000

int hd_crypto_init(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

void hd_uuid_random(char out[HD_UUID_LEN])
{
    uint8_t b[16];

    randombytes_buf(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, HD_UUID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

int hd_base64_encode(const uint8_t *bin, size_t n, char *out, size_t cap)
{
    if (cap < HD_BASE64_ENCODED_LEN(n))
        return -ENOSPC;
    sodium_bin2base64(out, cap, bin, n, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

int hd_base64_decode(const char *b64, size_t len, uint8_t *out, size_t cap,
                     size_t *out_len)
{
    const char *end = NULL;
    size_t n = 0;

    *out_len = 0;
    if (sodium_base642bin(out, cap, b64, len, NULL, &n, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -EINVAL;
    if (end != b64 + len)
        return -EINVAL; /* trailing characters that are not base64 */
    *out_len = n;
    return 0;
}

void hd_sha256(const void *p, size_t n, uint8_t out[HD_SHA256_BYTES])
{
    crypto_hash_sha256(out, p, n);
}

/* ---- Ed25519 identity keys ------------------------------------------- */

static int sign_key_alloc(struct hd_sign_key *k)
{
    memset(k, 0, sizeof(*k));
    if (hd_crypto_init() != 0)
        return -EIO;
    k->sk = sodium_malloc(HD_SIGN_SK_BYTES);
    return k->sk ? 0 : -ENOMEM;
}

int hd_sign_key_generate(struct hd_sign_key *k)
{
    int r;

    if ((r = sign_key_alloc(k)) != 0)
        return r;
    crypto_sign_keypair(k->pk, k->sk);
    return 0;
}

void hd_sign_key_cleanup(struct hd_sign_key *k)
{
    if (k == NULL)
        return;
    sodium_free(k->sk); /* wipes; accepts NULL */
    memset(k, 0, sizeof(*k));
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

/*
 * A libsodium secret key is seed || public key.  Re-derive the pair from
 * the seed so that a file whose halves disagree (hand-edited, truncated
 * and padded) is refused instead of producing signatures nobody verifies.
 */
static int sk_is_consistent(const uint8_t *sk)
{
    uint8_t pk[HD_SIGN_PK_BYTES];
    uint8_t *sk2 = sodium_malloc(HD_SIGN_SK_BYTES);
    int ok;

    if (sk2 == NULL)
        return -ENOMEM;
    crypto_sign_seed_keypair(pk, sk2, sk);
    ok = memcmp(pk, sk + crypto_sign_SEEDBYTES, sizeof(pk)) == 0;
    sodium_free(sk2);
    return ok ? 0 : HD_EKEYFILE;
}

int hd_sign_key_from_base64_sk(const char *b64, struct hd_sign_key *k)
{
    size_t start = 0, end, n = 0;
    int r;

    if ((r = sign_key_alloc(k)) != 0)
        goto out;
    end = strlen(b64);
    while (start < end && is_space(b64[start]))
        start++;
    while (end > start && is_space(b64[end - 1]))
        end--;
    if (hd_base64_decode(b64 + start, end - start, k->sk, HD_SIGN_SK_BYTES,
                         &n) != 0 ||
        n != HD_SIGN_SK_BYTES) {
        r = HD_EKEYFILE;
        goto out;
    }
    if ((r = sk_is_consistent(k->sk)) != 0)
        goto out;
    memcpy(k->pk, k->sk + crypto_sign_SEEDBYTES, HD_SIGN_PK_BYTES);
    r = 0;
out:
    if (r != 0)
        hd_sign_key_cleanup(k);
    return r;
}

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
    while (start < end && is_space(text[start]))
        start++;
    while (end > start && is_space(text[end - 1]))
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

void hd_key_fingerprint(const uint8_t pk[HD_SIGN_PK_BYTES],
                        char out[HD_FINGERPRINT_LEN])
{
    uint8_t h[HD_SHA256_BYTES];
    char b64[HD_BASE64_ENCODED_LEN(HD_SHA256_BYTES)];

    hd_sha256(pk, HD_SIGN_PK_BYTES, h);
    hd_base64_encode(h, sizeof(h), b64, sizeof(b64));
    snprintf(out, HD_FINGERPRINT_LEN, "SHA256:%.16s", b64);
}

/* ---- Signed IdPk --------------------------------------------------------- */

int hd_idpk_sign(const struct hd_sign_key *key, const char *id,
                 const uint8_t *pk, size_t pk_len, uint8_t **out,
                 size_t *out_len)
{
    return hd_idpk_sign_kx(key, id, pk, pk_len, 0, out, out_len);
}

int hd_idpk_sign_kx(const struct hd_sign_key *key, const char *id,
                    const uint8_t *pk, size_t pk_len, uint32_t kx,
                    uint8_t **out, size_t *out_len)
{
    Hbb__IdPk m = HBB__ID_PK__INIT;
    uint8_t *buf;
    size_t plen;

    *out = NULL;
    *out_len = 0;
    if (id == NULL || (pk == NULL && pk_len > 0) ||
        strlen(id) > HD_IDPK_SIGNED_MAX || pk_len > HD_IDPK_SIGNED_MAX)
        return -EINVAL;
    m.id = (char *)id;
    m.pk.data = (uint8_t *)pk;
    m.pk.len = pk_len;
    m.hd_kx = kx;
    plen = hbb__id_pk__get_packed_size(&m);
    if (plen > HD_IDPK_SIGNED_MAX - HD_SIGNATURE_BYTES)
        return -EINVAL;
    if ((buf = malloc(HD_SIGNATURE_BYTES + plen)) == NULL)
        return -ENOMEM;
    hbb__id_pk__pack(&m, buf + HD_SIGNATURE_BYTES);
    crypto_sign_detached(buf, NULL, buf + HD_SIGNATURE_BYTES, plen, key->sk);
    *out = buf;
    *out_len = HD_SIGNATURE_BYTES + plen;
    return 0;
}

int hd_idpk_verify(const uint8_t *signed_msg, size_t n,
                   const uint8_t signer_pk[HD_SIGN_PK_BYTES], char *id_out,
                   size_t id_cap, uint8_t *pk_out, size_t pk_cap,
                   size_t *pk_len)
{
    Hbb__IdPk *m = NULL;
    const uint8_t *body;
    size_t idlen;
    int r;

    if (id_cap > 0)
        id_out[0] = '\0';
    *pk_len = 0;
    if (n > HD_IDPK_SIGNED_MAX)
        return HD_ETOOBIG;
    if (n < HD_SIGNATURE_BYTES)
        return HD_EAUTH;
    /* Detached check on the combined message: no copy needed. */
    body = signed_msg + HD_SIGNATURE_BYTES;
    if (crypto_sign_verify_detached(signed_msg, body, n - HD_SIGNATURE_BYTES,
                                    signer_pk) != 0)
        return HD_EAUTH;
    m = hbb__id_pk__unpack(NULL, n - HD_SIGNATURE_BYTES, body);
    if (m == NULL) {
        r = HD_EPROTO;
        goto out;
    }
    idlen = strlen(m->id);
    if (idlen >= id_cap || m->pk.len > pk_cap) {
        r = HD_ETOOBIG;
        goto out;
    }
    memcpy(id_out, m->id, idlen + 1);
    if (m->pk.len > 0)
        memcpy(pk_out, m->pk.data, m->pk.len);
    *pk_len = m->pk.len;
    r = 0;
out:
    if (m != NULL)
        hbb__id_pk__free_unpacked(m, NULL);
    return r;
}

uint32_t hd_idpk_kx(const uint8_t *signed_msg, size_t n)
{
    Hbb__IdPk *m;
    uint32_t kx;

    if (n < HD_SIGNATURE_BYTES || n > HD_IDPK_SIGNED_MAX)
        return 0;
    m = hbb__id_pk__unpack(NULL, n - HD_SIGNATURE_BYTES,
                           signed_msg + HD_SIGNATURE_BYTES);
    if (m == NULL)
        return 0;
    kx = m->hd_kx;
    hbb__id_pk__free_unpacked(m, NULL);
    return kx;
}

/* What the server's split-key offer signs: label || box_pk. */
#define KX_OFFER_LABEL "homedesk-kx2"

static void
kx_offer_msg(const uint8_t box_pk[HD_BOX_PK_BYTES],
             uint8_t msg[sizeof(KX_OFFER_LABEL) - 1 + HD_BOX_PK_BYTES])
{
    memcpy(msg, KX_OFFER_LABEL, sizeof(KX_OFFER_LABEL) - 1);
    memcpy(msg + sizeof(KX_OFFER_LABEL) - 1, box_pk, HD_BOX_PK_BYTES);
}

void hd_kx_offer_sign(const struct hd_sign_key *key,
                      const uint8_t box_pk[HD_BOX_PK_BYTES],
                      uint8_t sig[HD_SIGNATURE_BYTES])
{
    uint8_t msg[sizeof(KX_OFFER_LABEL) - 1 + HD_BOX_PK_BYTES];

    kx_offer_msg(box_pk, msg);
    crypto_sign_detached(sig, NULL, msg, sizeof(msg), key->sk);
}

int hd_kx_offer_verify(const uint8_t server_pk[HD_SIGN_PK_BYTES],
                       const uint8_t box_pk[HD_BOX_PK_BYTES],
                       const uint8_t *sig, size_t n)
{
    uint8_t msg[sizeof(KX_OFFER_LABEL) - 1 + HD_BOX_PK_BYTES];

    if (n != HD_SIGNATURE_BYTES)
        return 0;
    kx_offer_msg(box_pk, msg);
    return crypto_sign_verify_detached(sig, msg, sizeof(msg), server_pk) == 0;
}

/* ---- Session channel ----------------------------------------------------- */

int hd_box_key_generate(struct hd_box_key *k)
{
    memset(k, 0, sizeof(*k));
    if (hd_crypto_init() != 0)
        return -EIO;
    if ((k->sk = sodium_malloc(crypto_box_SECRETKEYBYTES)) == NULL)
        return -ENOMEM;
    crypto_box_keypair(k->pk, k->sk);
    return 0;
}

void hd_box_key_cleanup(struct hd_box_key *k)
{
    if (k == NULL)
        return;
    sodium_free(k->sk);
    memset(k, 0, sizeof(*k));
}

static int secure_alloc(struct hd_secure *s)
{
    memset(s, 0, sizeof(*s));
    if (hd_crypto_init() != 0)
        return -EIO;
    if ((s->key = sodium_malloc(HD_SECURE_STATE_BYTES)) == NULL)
        return -ENOMEM;
    sodium_memzero(s->key, HD_SECURE_STATE_BYTES);
    return 0;
}

/* Legacy: the sealed key is s->key[0..32); use it both ways. */
static void secure_legacy(struct hd_secure *s)
{
    memcpy(s->key + HD_SECURE_KEY_BYTES, s->key, HD_SECURE_KEY_BYTES);
    s->legacy = 1;
}

/*
 * Split: s->key[0..32) holds the sealed master key; replace it with the
 * per-direction keys (see hd_secure_client_start).  host: which end we are.
 */
#define KX_KDF_CONTEXT "hdsess02"
enum { KX_SUB_H2V = 1, KX_SUB_V2H = 2, KX_SUB_BIND = 3 };

static void secure_split(struct hd_secure *s, int host,
                         const uint8_t host_box_pk[HD_BOX_PK_BYTES],
                         const uint8_t viewer_box_pk[HD_BOX_PK_BYTES])
{
    crypto_generichash_state st;
    uint8_t master[crypto_kdf_KEYBYTES];
    uint8_t *send = s->key, *recv = s->key + HD_SECURE_KEY_BYTES,
            *bind = s->key + 2 * HD_SECURE_KEY_BYTES;

    crypto_generichash_init(&st, s->key, HD_SECURE_KEY_BYTES, sizeof(master));
    crypto_generichash_update(&st, (const uint8_t *)KX_OFFER_LABEL,
                              sizeof(KX_OFFER_LABEL) - 1);
    crypto_generichash_update(&st, host_box_pk, HD_BOX_PK_BYTES);
    crypto_generichash_update(&st, viewer_box_pk, HD_BOX_PK_BYTES);
    crypto_generichash_final(&st, master, sizeof(master));
    crypto_kdf_derive_from_key(send, HD_SECURE_KEY_BYTES,
                               host ? KX_SUB_H2V : KX_SUB_V2H, KX_KDF_CONTEXT,
                               master);
    crypto_kdf_derive_from_key(recv, HD_SECURE_KEY_BYTES,
                               host ? KX_SUB_V2H : KX_SUB_H2V, KX_KDF_CONTEXT,
                               master);
    crypto_kdf_derive_from_key(bind, HD_SECURE_KEY_BYTES, KX_SUB_BIND,
                               KX_KDF_CONTEXT, master);
    sodium_memzero(master, sizeof(master));
    sodium_memzero(&st, sizeof(st));
    s->legacy = 0;
}

int hd_secure_init(struct hd_secure *s, const uint8_t key[HD_SECURE_KEY_BYTES])
{
    int r;

    if ((r = secure_alloc(s)) != 0)
        return r;
    memcpy(s->key, key, HD_SECURE_KEY_BYTES);
    secure_legacy(s);
    return 0;
}

const uint8_t *hd_secure_binding(const struct hd_secure *s)
{
    return s->key != NULL && !s->legacy ? s->key + 2 * HD_SECURE_KEY_BYTES
                                        : NULL;
}

void hd_secure_cleanup(struct hd_secure *s)
{
    if (s == NULL)
        return;
    sodium_free(s->key); /* wipes; accepts NULL */
    memset(s, 0, sizeof(*s));
}

int hd_secure_client_start(const uint8_t host_box_pk[HD_BOX_PK_BYTES],
                           int split, uint8_t my_box_pk[HD_BOX_PK_BYTES],
                           uint8_t sealed[HD_SEALED_KEY2_BYTES],
                           size_t *sealed_len, struct hd_secure *out)
{
    static const uint8_t zero_nonce[crypto_box_NONCEBYTES];
    uint8_t *my_sk = NULL, *plain = NULL;
    size_t n = split ? HD_SECURE_KEY_BYTES + 1 : HD_SECURE_KEY_BYTES;
    int r;

    memset(my_box_pk, 0, HD_BOX_PK_BYTES);
    memset(sealed, 0, HD_SEALED_KEY2_BYTES);
    *sealed_len = 0;
    if ((r = secure_alloc(out)) != 0)
        goto out;
    if ((my_sk = sodium_malloc(crypto_box_SECRETKEYBYTES)) == NULL ||
        (plain = sodium_malloc(HD_SECURE_KEY_BYTES + 1)) == NULL) {
        r = -ENOMEM;
        goto out;
    }
    crypto_box_keypair(my_box_pk, my_sk);
    crypto_secretbox_keygen(out->key);
    memcpy(plain, out->key, HD_SECURE_KEY_BYTES);
    plain[HD_SECURE_KEY_BYTES] = HD_KX_SPLIT;
    /* Fails when the shared point is zero, i.e. a low-order peer key. */
    if (crypto_box_easy(sealed, plain, n, zero_nonce, host_box_pk, my_sk) !=
        0) {
        r = HD_EPROTO;
        goto out;
    }
    *sealed_len = n + crypto_box_MACBYTES;
    if (split)
        secure_split(out, 0, host_box_pk, my_box_pk);
    else
        secure_legacy(out);
    r = 0;
out:
    sodium_free(my_sk);
    sodium_free(plain);
    if (r != 0) {
        hd_secure_cleanup(out);
        memset(my_box_pk, 0, HD_BOX_PK_BYTES);
        memset(sealed, 0, HD_SEALED_KEY2_BYTES);
    }
    return r;
}

int hd_secure_host_accept(const struct hd_box_key *mine,
                          const uint8_t *their_pk, size_t their_pk_len,
                          const uint8_t *sealed, size_t sealed_len,
                          struct hd_secure *out)
{
    static const uint8_t zero_nonce[crypto_box_NONCEBYTES];
    uint8_t *plain = NULL;
    int r;

    memset(out, 0, sizeof(*out));
    if (their_pk_len != HD_BOX_PK_BYTES || (sealed_len != HD_SEALED_KEY_BYTES &&
                                            sealed_len != HD_SEALED_KEY2_BYTES))
        return HD_EPROTO;
    if ((r = secure_alloc(out)) != 0)
        goto out;
    if ((plain = sodium_malloc(HD_SECURE_KEY_BYTES + 1)) == NULL) {
        r = -ENOMEM;
        goto out;
    }
    if (crypto_box_open_easy(plain, sealed, sealed_len, zero_nonce, their_pk,
                             mine->sk) != 0) {
        r = HD_ECRYPTO;
        goto out;
    }
    memcpy(out->key, plain, HD_SECURE_KEY_BYTES);
    if (sealed_len == HD_SEALED_KEY_BYTES) {
        secure_legacy(out);
    } else if (plain[HD_SECURE_KEY_BYTES] == HD_KX_SPLIT) {
        secure_split(out, 1, mine->pk, their_pk);
    } else {
        r = HD_EPROTO;
        goto out;
    }
    r = 0;
out:
    sodium_free(plain);
    if (r != 0)
        hd_secure_cleanup(out);
    return r;
}

/* 24 bytes, all zero but the first 8: seq as a little-endian u64. */
static void make_nonce(uint8_t nonce[crypto_secretbox_NONCEBYTES], uint64_t seq)
{
    int i;

    memset(nonce, 0, crypto_secretbox_NONCEBYTES);
    for (i = 0; i < 8; i++)
        nonce[i] = (uint8_t)(seq >> (8 * i));
}

int hd_secure_seal(struct hd_secure *s, const uint8_t *msg, size_t n,
                   uint8_t *out)
{
    uint8_t nonce[crypto_secretbox_NONCEBYTES];

    if (s->send_seq == UINT64_MAX)
        return -EOVERFLOW;
    make_nonce(nonce, ++s->send_seq);
    crypto_secretbox_easy(out, msg, n, nonce, s->key);
    return 0;
}

int hd_secure_open(struct hd_secure *s, const uint8_t *c, size_t n,
                   uint8_t *out)
{
    uint8_t nonce[crypto_secretbox_NONCEBYTES];

    if (n < HD_SECURE_OVERHEAD || s->recv_seq == UINT64_MAX)
        return HD_ECRYPTO;
    make_nonce(nonce, s->recv_seq + 1);
    if (crypto_secretbox_open_easy(out, c, n, nonce,
                                   s->key + HD_SECURE_KEY_BYTES) != 0)
        return HD_ECRYPTO;
    s->recv_seq++;
    return 0;
}

/* ---- Login hash ---------------------------------------------------------- */

void hd_login_salted(const char *password, const char *salt,
                     uint8_t out[HD_SHA256_BYTES])
{
    crypto_hash_sha256_state st;

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)password, strlen(password));
    crypto_hash_sha256_update(&st, (const uint8_t *)salt, strlen(salt));
    crypto_hash_sha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

static void login_outer(const uint8_t salted[HD_SHA256_BYTES],
                        const char *challenge, uint8_t out[HD_SHA256_BYTES])
{
    crypto_hash_sha256_state st;

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, salted, HD_SHA256_BYTES);
    crypto_hash_sha256_update(&st, (const uint8_t *)challenge,
                              strlen(challenge));
    crypto_hash_sha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

void hd_login_hash(const char *password, const char *salt,
                   const char *challenge, uint8_t out[HD_SHA256_BYTES])
{
    uint8_t salted[HD_SHA256_BYTES];

    hd_login_salted(password, salt, salted);
    login_outer(salted, challenge, out);
    sodium_memzero(salted, sizeof(salted));
}

void hd_login_bind(const uint8_t bind[HD_SECURE_KEY_BYTES],
                   uint8_t proof[HD_SHA256_BYTES])
{
    static const char label[] = "homedesk-login";
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, bind, HD_SECURE_KEY_BYTES);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)label,
                                  sizeof(label) - 1);
    crypto_auth_hmacsha256_update(&st, proof, HD_SHA256_BYTES);
    crypto_auth_hmacsha256_final(&st, proof);
    sodium_memzero(&st, sizeof(st));
}

int hd_login_verify(const uint8_t salted[HD_SHA256_BYTES],
                    const char *challenge, const uint8_t *bind,
                    const uint8_t *got, size_t got_len)
{
    uint8_t want[HD_SHA256_BYTES];
    int r;

    login_outer(salted, challenge, want);
    if (bind != NULL)
        hd_login_bind(bind, want);
    r = got_len == sizeof(want) && sodium_memcmp(want, got, sizeof(want)) == 0
            ? 0
            : HD_EAUTH;
    sodium_memzero(want, sizeof(want));
    return r;
}

/*
 * Keys, signed IdPk and the login hash (see crypto.h): pure computation
 * on caller buffers.  The key files are keyfile.c, the session channel
 * secure.c.
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
static void
kx_offer_msg(const uint8_t box_pk[HD_BOX_PK_BYTES],
             uint8_t msg[sizeof(HD_KX_OFFER_LABEL) - 1 + HD_BOX_PK_BYTES])
{
    memcpy(msg, HD_KX_OFFER_LABEL, sizeof(HD_KX_OFFER_LABEL) - 1);
    memcpy(msg + sizeof(HD_KX_OFFER_LABEL) - 1, box_pk, HD_BOX_PK_BYTES);
}

void hd_kx_offer_sign(const struct hd_sign_key *key,
                      const uint8_t box_pk[HD_BOX_PK_BYTES],
                      uint8_t sig[HD_SIGNATURE_BYTES])
{
    uint8_t msg[sizeof(HD_KX_OFFER_LABEL) - 1 + HD_BOX_PK_BYTES];

    kx_offer_msg(box_pk, msg);
    crypto_sign_detached(sig, NULL, msg, sizeof(msg), key->sk);
}

int hd_kx_offer_verify(const uint8_t server_pk[HD_SIGN_PK_BYTES],
                       const uint8_t box_pk[HD_BOX_PK_BYTES],
                       const uint8_t *sig, size_t n)
{
    uint8_t msg[sizeof(HD_KX_OFFER_LABEL) - 1 + HD_BOX_PK_BYTES];

    if (n != HD_SIGNATURE_BYTES)
        return 0;
    kx_offer_msg(box_pk, msg);
    return crypto_sign_verify_detached(sig, msg, sizeof(msg), server_pk) == 0;
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

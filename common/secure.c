/*
 * The session channel of PROTOCOL.md section 5 (crypto.h): the ephemeral
 * box keys, the sealed secretbox key, the legacy and split key modes, and
 * sealing and opening frames with the counter nonces.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto.h"
#include "err.h"

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
    crypto_generichash_update(&st, (const uint8_t *)HD_KX_OFFER_LABEL,
                              sizeof(HD_KX_OFFER_LABEL) - 1);
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

/*
 * Unit tests for common/crypto.  Independent vectors: RFC 8032 section 7.1
 * test 1 for Ed25519; a signed IdPk and the login hash computed with
 * Python's `cryptography` and `hashlib` (protobuf bytes built by hand);
 * FIPS 180-2 for SHA-256; RFC 4648 for base64.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto.h"
#include "err.h"
#include "log.h"
#include "tests/harness.h"

/* RFC 8032 7.1 TEST 1: seed, public key, signature of the empty message. */
static const char rfc_seed_hex[] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char rfc_pk_hex[] =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char rfc_sig_hex[] =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821"
    "590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
/* base64(seed || pk) and base64(pk), from Python's base64 module. */
static const char rfc_sk_b64[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DX"
                                 "WpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==";
static const char rfc_pk_b64[] = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
/*
 * crypto_sign of IdPk{id = "123456789", pk = 01 02 .. 20} with the RFC key:
 * the signature (Python cryptography, Ed25519PrivateKey.sign), then the
 * message 0a 09 "123456789" 12 20 01..20.
 */
static const char idpk_signed_hex[] =
    "e4e65b0ac032ddd74d9874c7efdf99d4f6ff64a3d54665571a974996a98b477e"
    "18c4f4d0d81ee64cd81b363dd15a8230ac1dd7d3a9f3ad1d544144b58373f500"
    "0a093132333435363738391220"
    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;

    if (sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &n, NULL) != 0)
        return 0;
    return n;
}

static void load_rfc_key(struct hd_sign_key *k)
{
    HT_EQ_INT(hd_sign_key_from_base64_sk(rfc_sk_b64, k), 0);
}

static void base64_vectors(void)
{
    char out[16];
    uint8_t bin[16];
    size_t n = 99;

    HT_EQ_INT(hd_base64_encode((const uint8_t *)"foobar", 6, out, sizeof(out)),
              0);
    HT_EQ_STR(out, "Zm9vYmFy");
    HT_EQ_INT(hd_base64_encode((const uint8_t *)"fo", 2, out, sizeof(out)), 0);
    HT_EQ_STR(out, "Zm8=");
    HT_EQ_INT(hd_base64_encode((const uint8_t *)"foobar", 6, out, 8), -ENOSPC);
    HT_EQ_INT(HD_BASE64_ENCODED_LEN(64), 89);

    HT_EQ_INT(hd_base64_decode("Zm9vYg==", 8, bin, sizeof(bin), &n), 0);
    HT_EQ_INT(n, 4);
    HT_EQ_MEM(bin, "foob", 4);
    /* missing padding, stray character, trailing newline, URL alphabet */
    HT_EQ_INT(hd_base64_decode("Zm9vYg", 6, bin, sizeof(bin), &n), -EINVAL);
    HT_EQ_INT(n, 0);
    HT_EQ_INT(hd_base64_decode("Zm9v*mFy", 8, bin, sizeof(bin), &n), -EINVAL);
    HT_EQ_INT(hd_base64_decode("Zm9vYmFy\n", 9, bin, sizeof(bin), &n), -EINVAL);
    HT_EQ_INT(hd_base64_decode("_-8=", 4, bin, sizeof(bin), &n), -EINVAL);
    /* output larger than the buffer */
    HT_EQ_INT(hd_base64_decode("Zm9vYmFy", 8, bin, 5, &n), -EINVAL);
}

static void sha256_vector(void)
{
    uint8_t d[HD_SHA256_BYTES], want[HD_SHA256_BYTES];

    hd_sha256("abc", 3, d);
    unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
          want, sizeof(want));
    HT_EQ_MEM(d, want, sizeof(d));
}

static void login_hash_vector(void)
{
    uint8_t h[HD_SHA256_BYTES], salted[HD_SHA256_BYTES], want[32];

    /* Python: sha256(sha256(b"hunter2saltySALT").digest() + b"AbC123") */
    hd_login_hash("hunter2", "saltySALT", "AbC123", h);
    unhex("d4f1134a5830299d7e6002919584d095e78f073830bf63aecff3fe3ef8976cf7",
          want, sizeof(want));
    HT_EQ_MEM(h, want, sizeof(h));

    hd_login_salted("hunter2", "saltySALT", salted);
    unhex("6ae2ad28b43f1746754867ee4a204a5a37e2a2f3e7a4ecec114600817d9f30ed",
          want, sizeof(want));
    HT_EQ_MEM(salted, want, sizeof(salted));

    HT_EQ_INT(hd_login_verify(salted, "AbC123", NULL, h, sizeof(h)), 0);
    HT_EQ_INT(hd_login_verify(salted, "AbC124", NULL, h, sizeof(h)), HD_EAUTH);
    HT_EQ_INT(hd_login_verify(salted, "AbC123", NULL, h, sizeof(h) - 1),
              HD_EAUTH);
    h[31] ^= 1;
    HT_EQ_INT(hd_login_verify(salted, "AbC123", NULL, h, sizeof(h)), HD_EAUTH);
}

static void known_key_rfc8032(void)
{
    struct hd_sign_key k = { { 0 }, NULL };
    uint8_t pk[32], sig[64], want_sig[64], seed[32];
    char spaced[200];

    unhex(rfc_pk_hex, pk, sizeof(pk));
    unhex(rfc_sig_hex, want_sig, sizeof(want_sig));
    unhex(rfc_seed_hex, seed, sizeof(seed));

    /* hbbs trims the file content: surrounding whitespace is fine */
    snprintf(spaced, sizeof(spaced), "  %s\r\n", rfc_sk_b64);
    HT_EQ_INT(hd_sign_key_from_base64_sk(spaced, &k), 0);
    HT_CHECK(k.sk != NULL);
    if (k.sk == NULL)
        return;
    HT_EQ_MEM(k.pk, pk, 32);
    HT_EQ_MEM(k.sk, seed, 32);
    crypto_sign_detached(sig, NULL, (const uint8_t *)"", 0, k.sk);
    HT_EQ_MEM(sig, want_sig, 64);
    hd_sign_key_cleanup(&k);
    HT_CHECK(k.sk == NULL);
}

static void bad_keys_refused(void)
{
    struct hd_sign_key k = { { 0 }, NULL };
    uint8_t sk[64];
    char b64[HD_BASE64_ENCODED_LEN(64)];

    /* the 32-byte public key is not a secret key */
    HT_EQ_INT(hd_sign_key_from_base64_sk(rfc_pk_b64, &k), HD_EKEYFILE);
    HT_CHECK(k.sk == NULL);
    HT_EQ_INT(hd_sign_key_from_base64_sk("", &k), HD_EKEYFILE);
    HT_EQ_INT(hd_sign_key_from_base64_sk("not base64 at all!", &k),
              HD_EKEYFILE);
    /* 64 bytes whose public half does not belong to the seed */
    unhex(rfc_seed_hex, sk, 32);
    unhex(rfc_pk_hex, sk + 32, 32);
    sk[40] ^= 0x10;
    hd_base64_encode(sk, sizeof(sk), b64, sizeof(b64));
    HT_EQ_INT(hd_sign_key_from_base64_sk(b64, &k), HD_EKEYFILE);
    HT_CHECK(k.sk == NULL);
    /* internal whitespace is not trimmed */
    snprintf(b64, sizeof(b64), "%.40s %s", rfc_sk_b64, rfc_sk_b64 + 41);
    HT_EQ_INT(hd_sign_key_from_base64_sk(b64, &k), HD_EKEYFILE);
}

static void generate_sign_key(void)
{
    struct hd_sign_key a = { { 0 }, NULL }, b = { { 0 }, NULL };
    uint8_t sig[64];

    HT_EQ_INT(hd_crypto_init(), 0); /* idempotent */
    HT_EQ_INT(hd_sign_key_generate(&a), 0);
    HT_EQ_INT(hd_sign_key_generate(&b), 0);
    HT_CHECK(memcmp(a.pk, b.pk, 32) != 0);
    HT_EQ_MEM(a.sk + 32, a.pk, 32);
    crypto_sign_detached(sig, NULL, (const uint8_t *)"x", 1, a.sk);
    HT_EQ_INT(crypto_sign_verify_detached(sig, (const uint8_t *)"x", 1, a.pk),
              0);
    hd_sign_key_cleanup(&a);
    hd_sign_key_cleanup(&b);
    hd_sign_key_cleanup(&b); /* twice is harmless */
    hd_sign_key_cleanup(NULL);
}

static void idpk_known_vector(void)
{
    struct hd_sign_key k = { { 0 }, NULL };
    uint8_t pk[32], want[200], *out = NULL;
    size_t want_len, out_len = 0, i;

    for (i = 0; i < 32; i++)
        pk[i] = (uint8_t)(i + 1);
    want_len = unhex(idpk_signed_hex, want, sizeof(want));
    HT_EQ_INT(want_len, 64 + 2 + 9 + 2 + 32);
    load_rfc_key(&k);
    HT_EQ_INT(hd_idpk_sign(&k, "123456789", pk, sizeof(pk), &out, &out_len), 0);
    HT_EQ_INT(out_len, want_len);
    if (out != NULL && out_len == want_len)
        HT_EQ_MEM(out, want, want_len);
    free(out);
    hd_sign_key_cleanup(&k);
}

static void idpk_sign_verify(void)
{
    struct hd_sign_key k = { { 0 }, NULL }, other = { { 0 }, NULL };
    uint8_t pk[32], got_pk[64], *sm = NULL;
    size_t n = 0, got_len = 99, i;
    char id[32];
    int bad = 0;

    randombytes_buf(pk, sizeof(pk));
    HT_EQ_INT(hd_sign_key_generate(&k), 0);
    HT_EQ_INT(hd_sign_key_generate(&other), 0);
    HT_EQ_INT(hd_idpk_sign(&k, "987654321", pk, sizeof(pk), &sm, &n), 0);
    if (sm == NULL)
        goto out;

    HT_EQ_INT(hd_idpk_verify(sm, n, k.pk, id, sizeof(id), got_pk,
                             sizeof(got_pk), &got_len),
              0);
    HT_EQ_STR(id, "987654321");
    HT_EQ_INT(got_len, 32);
    HT_EQ_MEM(got_pk, pk, 32);

    /* one flipped bit anywhere (signature or body) fails */
    for (i = 0; i < n; i++) {
        sm[i] ^= 0x01;
        if (hd_idpk_verify(sm, n, k.pk, id, sizeof(id), got_pk, sizeof(got_pk),
                           &got_len) != HD_EAUTH)
            bad++;
        sm[i] ^= 0x01;
    }
    HT_EQ_INT(bad, 0);
    HT_EQ_INT(got_len, 0); /* outputs cleared on failure */
    HT_EQ_STR(id, "");

    /* wrong signer, truncated, too short, oversized */
    HT_EQ_INT(hd_idpk_verify(sm, n, other.pk, id, sizeof(id), got_pk,
                             sizeof(got_pk), &got_len),
              HD_EAUTH);
    HT_EQ_INT(hd_idpk_verify(sm, n - 1, k.pk, id, sizeof(id), got_pk,
                             sizeof(got_pk), &got_len),
              HD_EAUTH);
    HT_EQ_INT(hd_idpk_verify(sm, 10, k.pk, id, sizeof(id), got_pk,
                             sizeof(got_pk), &got_len),
              HD_EAUTH);
    HT_EQ_INT(hd_idpk_verify(sm, HD_IDPK_SIGNED_MAX + 1, k.pk, id, sizeof(id),
                             got_pk, sizeof(got_pk), &got_len),
              HD_ETOOBIG);
    /* output buffers too small: "987654321" needs 10 bytes, pk 32 */
    HT_EQ_INT(
        hd_idpk_verify(sm, n, k.pk, id, 9, got_pk, sizeof(got_pk), &got_len),
        HD_ETOOBIG);
    HT_EQ_INT(hd_idpk_verify(sm, n, k.pk, id, sizeof(id), got_pk, 31, &got_len),
              HD_ETOOBIG);
out:
    free(sm);
    hd_sign_key_cleanup(&k);
    hd_sign_key_cleanup(&other);
}

static void idpk_signed_garbage(void)
{
    struct hd_sign_key k = { { 0 }, NULL };
    uint8_t sm[64 + 3] = { 0 }, pk[32];
    size_t pk_len;
    char id[16];

    /* a valid signature over bytes that are not an IdPk: 0x0a announces a
     * 9-byte string but only 2 bytes follow */
    load_rfc_key(&k);
    sm[64] = 0x0a;
    sm[65] = 0x09;
    sm[66] = '1';
    crypto_sign_detached(sm, NULL, sm + 64, 3, k.sk);
    HT_EQ_INT(hd_idpk_verify(sm, sizeof(sm), k.pk, id, sizeof(id), pk,
                             sizeof(pk), &pk_len),
              HD_EPROTO);
    hd_sign_key_cleanup(&k);
}

static char tmpdir[64];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static size_t slurp(const char *name, char *buf, size_t cap)
{
    char p[128];
    FILE *f;
    size_t n;

    path_of(p, sizeof(p), name);
    buf[0] = '\0';
    if ((f = fopen(p, "rb")) == NULL)
        return 0;
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

static void spit(const char *name, const char *text)
{
    char p[128];
    FILE *f;

    path_of(p, sizeof(p), name);
    if ((f = fopen(p, "wb")) != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static void remove_keys(void)
{
    char p[128];

    path_of(p, sizeof(p), HD_KEY_FILE);
    unlink(p);
    path_of(p, sizeof(p), HD_KEY_FILE_PUB);
    unlink(p);
}

static void key_files_round_trip(void)
{
    struct hd_sign_key a = { { 0 }, NULL }, b = { { 0 }, NULL };
    char sk_text[256], pub_text[256], p[128];
    uint8_t bin[64];
    size_t n = 0;
    struct stat st;

    HT_EQ_INT(hd_sign_key_load_or_create(tmpdir, &a), 0);
    if (a.sk == NULL)
        return;
    /* the files are bare base64, no newline, as hbbs writes them */
    HT_EQ_INT(slurp(HD_KEY_FILE, sk_text, sizeof(sk_text)), 88);
    HT_EQ_INT(slurp(HD_KEY_FILE_PUB, pub_text, sizeof(pub_text)), 44);
    HT_CHECK(strchr(pub_text, '/') == NULL);
    HT_EQ_INT(hd_base64_decode(sk_text, 88, bin, sizeof(bin), &n), 0);
    HT_EQ_INT(n, 64);
    HT_EQ_MEM(bin, a.sk, 64);
    HT_EQ_INT(hd_base64_decode(pub_text, 44, bin, sizeof(bin), &n), 0);
    HT_EQ_INT(n, 32);
    HT_EQ_MEM(bin, a.pk, 32);
    path_of(p, sizeof(p), HD_KEY_FILE);
    HT_EQ_INT(stat(p, &st), 0);
    HT_EQ_INT(st.st_mode & 0777, 0600);
    sodium_memzero(sk_text, sizeof(sk_text));

    /* reload: the same key */
    HT_EQ_INT(hd_sign_key_load_or_create(tmpdir, &b), 0);
    HT_EQ_MEM(a.pk, b.pk, 32);
    if (b.sk != NULL)
        HT_EQ_MEM(a.sk, b.sk, 64);
    hd_sign_key_cleanup(&b);

    /* a lost .pub is rewritten from the secret key */
    path_of(p, sizeof(p), HD_KEY_FILE_PUB);
    unlink(p);
    HT_EQ_INT(hd_sign_key_load_or_create(tmpdir, &b), 0);
    HT_EQ_MEM(a.pk, b.pk, 32);
    HT_EQ_INT(slurp(HD_KEY_FILE_PUB, sk_text, sizeof(sk_text)), 44);
    HT_EQ_STR(sk_text, pub_text);
    hd_sign_key_cleanup(&b);
    hd_sign_key_cleanup(&a);
    remove_keys();
}

static void key_files_hbbs_dir(void)
{
    struct hd_sign_key k = { { 0 }, NULL };
    char text[128];

    /* an existing hbbs directory: files with a trailing newline (edited by
     * hand), the secret world-readable: loaded as they are */
    snprintf(text, sizeof(text), "%s\n", rfc_sk_b64);
    spit(HD_KEY_FILE, text);
    snprintf(text, sizeof(text), "%s\n", rfc_pk_b64);
    spit(HD_KEY_FILE_PUB, text);
    hd_log_set_level(HD_LOG_ERROR); /* the mode warning is expected */
    HT_EQ_INT(hd_sign_key_load_or_create(tmpdir, &k), 0);
    hd_log_set_level(HD_LOG_INFO);
    HT_CHECK(k.sk != NULL);
    hd_base64_encode(k.pk, sizeof(k.pk), text, sizeof(text));
    HT_EQ_STR(text, rfc_pk_b64); /* '/' is fine in a key we did not make */
    hd_sign_key_cleanup(&k);
    remove_keys();
}

static void key_files_errors(void)
{
    struct hd_sign_key k = { { 0 }, NULL };
    char missing[96];

    /* each refusal logs one error line on stderr (not checked here) */
    /* a .pub from another key */
    spit(HD_KEY_FILE, rfc_sk_b64);
    spit(HD_KEY_FILE_PUB, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    HT_EQ_INT(hd_sign_key_load_or_create(tmpdir, &k), HD_EKEYFILE);
    HT_CHECK(k.sk == NULL);
    /* a .pub that is not a key */
    spit(HD_KEY_FILE_PUB, "hello");
    HT_EQ_INT(hd_sign_key_load_or_create(tmpdir, &k), HD_EKEYFILE);
    /* a truncated secret */
    spit(HD_KEY_FILE, "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DX");
    HT_EQ_INT(hd_sign_key_load_or_create(tmpdir, &k), HD_EKEYFILE);
    /* an empty secret (hbbs: "malformed private key") */
    spit(HD_KEY_FILE, "");
    HT_EQ_INT(hd_sign_key_load_or_create(tmpdir, &k), HD_EKEYFILE);
    /* no such directory */
    snprintf(missing, sizeof(missing), "%s/nope", tmpdir);
    HT_EQ_INT(hd_sign_key_load_or_create(missing, &k), -ENOENT);
    HT_CHECK(k.sk == NULL);
    remove_keys();
}

static void secure_handshake(void)
{
    struct hd_box_key host = { { 0 }, NULL }, wrong = { { 0 }, NULL };
    struct hd_secure c = { 0 }, h = { 0 };
    uint8_t my_pk[32], sealed[HD_SEALED_KEY2_BYTES], key[32];
    static const uint8_t zero_nonce[24];
    uint8_t zero_pk[32] = { 0 };
    size_t slen;

    HT_EQ_INT(hd_box_key_generate(&host), 0);
    HT_EQ_INT(hd_box_key_generate(&wrong), 0);
    HT_EQ_INT(hd_secure_client_start(host.pk, 0, my_pk, sealed, &slen, &c), 0);
    HT_EQ_INT(slen, 48);
    HT_CHECK(c.key != NULL);
    if (c.key == NULL)
        goto out;
    HT_EQ_INT(c.send_seq, 0);
    HT_EQ_INT(c.recv_seq, 0);

    /* the sealed key opens with plain libsodium as the reference does */
    HT_EQ_INT(crypto_box_open_easy(key, sealed, 48, zero_nonce, my_pk, host.sk),
              0);
    HT_EQ_MEM(key, c.key, 32);

    HT_EQ_INT(hd_secure_host_accept(&host, my_pk, 32, sealed, 48, &h), 0);
    if (h.key != NULL)
        HT_EQ_MEM(h.key, c.key, 32);
    hd_secure_cleanup(&h);

    /* a different host key, a tampered box, a swapped public key */
    HT_EQ_INT(hd_secure_host_accept(&wrong, my_pk, 32, sealed, 48, &h),
              HD_ECRYPTO);
    HT_CHECK(h.key == NULL);
    sealed[20] ^= 4;
    HT_EQ_INT(hd_secure_host_accept(&host, my_pk, 32, sealed, 48, &h),
              HD_ECRYPTO);
    sealed[20] ^= 4;
    HT_EQ_INT(hd_secure_host_accept(&host, wrong.pk, 32, sealed, 48, &h),
              HD_ECRYPTO);
    /* wrong lengths, and the "no encryption" empty PublicKey */
    HT_EQ_INT(hd_secure_host_accept(&host, my_pk, 31, sealed, 48, &h),
              HD_EPROTO);
    HT_EQ_INT(hd_secure_host_accept(&host, my_pk, 32, sealed, 47, &h),
              HD_EPROTO);
    HT_EQ_INT(hd_secure_host_accept(&host, NULL, 0, NULL, 0, &h), HD_EPROTO);
    HT_CHECK(h.key == NULL);

    /* a low-order host key gives no shared secret */
    hd_secure_cleanup(&c);
    HT_EQ_INT(hd_secure_client_start(zero_pk, 0, my_pk, sealed, &slen, &c),
              HD_EPROTO);
    HT_CHECK(c.key == NULL);
out:
    hd_secure_cleanup(&c);
    hd_secure_cleanup(&h);
    hd_box_key_cleanup(&host);
    hd_box_key_cleanup(&wrong);
}

/* Seal a short text frame. */
static void seal_text(struct hd_secure *s, const char *t, uint8_t *out)
{
    HT_EQ_INT(hd_secure_seal(s, (const uint8_t *)t, strlen(t), out), 0);
}

static void secure_frames(void)
{
    struct hd_box_key host = { { 0 }, NULL };
    struct hd_secure c = { 0 }, h = { 0 };
    uint8_t my_pk[32], sealed[HD_SEALED_KEY2_BYTES];
    uint8_t f1[32], f2[32], f3[32], f4[32], f5[32], buf[32];
    size_t slen;

    HT_EQ_INT(hd_box_key_generate(&host), 0);
    HT_EQ_INT(hd_secure_client_start(host.pk, 0, my_pk, sealed, &slen, &c), 0);
    HT_EQ_INT(hd_secure_host_accept(&host, my_pk, 32, sealed, 48, &h), 0);
    if (c.key == NULL || h.key == NULL)
        goto out;

    seal_text(&c, "one", f1);
    seal_text(&c, "two", f2);
    seal_text(&c, "three", f3);
    HT_EQ_INT(c.send_seq, 3);
    HT_CHECK(memcmp(f1, f2, 3 + 16) != 0);

    /* in order */
    HT_EQ_INT(hd_secure_open(&h, f1, 3 + 16, buf), 0);
    HT_EQ_MEM(buf, "one", 3);
    HT_EQ_INT(hd_secure_open(&h, f2, 3 + 16, buf), 0);
    HT_EQ_MEM(buf, "two", 3);
    /* replayed */
    HT_EQ_INT(hd_secure_open(&h, f2, 3 + 16, buf), HD_ECRYPTO);
    HT_EQ_INT(hd_secure_open(&h, f1, 3 + 16, buf), HD_ECRYPTO);
    HT_EQ_INT(h.recv_seq, 2);
    /* in place */
    memcpy(buf, f3, 5 + 16);
    HT_EQ_INT(hd_secure_open(&h, buf, 5 + 16, buf), 0);
    HT_EQ_MEM(buf, "three", 5);

    /* reordered: 5 before 4 fails, then both open in order */
    seal_text(&c, "four", f4);
    seal_text(&c, "five", f5);
    HT_EQ_INT(hd_secure_open(&h, f5, 4 + 16, buf), HD_ECRYPTO);
    HT_EQ_INT(hd_secure_open(&h, f4, 4 + 16, buf), 0);
    HT_EQ_MEM(buf, "four", 4);
    HT_EQ_INT(hd_secure_open(&h, f5, 4 + 16, buf), 0);
    HT_EQ_MEM(buf, "five", 4);

    /* altered (MAC, body), truncated, shorter than the MAC */
    seal_text(&c, "six", f1);
    f1[0] ^= 1;
    HT_EQ_INT(hd_secure_open(&h, f1, 3 + 16, buf), HD_ECRYPTO);
    f1[0] ^= 1;
    f1[18] ^= 0x80;
    HT_EQ_INT(hd_secure_open(&h, f1, 3 + 16, buf), HD_ECRYPTO);
    f1[18] ^= 0x80;
    HT_EQ_INT(hd_secure_open(&h, f1, 3 + 15, buf), HD_ECRYPTO);
    HT_EQ_INT(hd_secure_open(&h, f1, 15, buf), HD_ECRYPTO);
    HT_EQ_INT(h.recv_seq, 5); /* failures did not advance the counter */
    HT_EQ_INT(hd_secure_open(&h, f1, 3 + 16, buf), 0);
    HT_EQ_MEM(buf, "six", 3);

    /* the other direction counts on its own; an empty payload is sealed */
    HT_EQ_INT(hd_secure_seal(&h, NULL, 0, f2), 0);
    HT_EQ_INT(hd_secure_open(&c, f2, 16, buf), 0);
    seal_text(&h, "back", f2);
    HT_EQ_INT(hd_secure_open(&c, f2, 4 + 16, buf), 0);
    HT_EQ_MEM(buf, "back", 4);
    HT_EQ_INT(c.recv_seq, 2);
    HT_EQ_INT(h.send_seq, 2);
out:
    hd_secure_cleanup(&c);
    hd_secure_cleanup(&h);
    hd_box_key_cleanup(&host);
}

/*
 * Split keys (homedesk peers): the 49-byte answer carries the mode inside
 * the box; each direction has its own key, so frame k each way no longer
 * shares (key, nonce): the XOR of the two ciphertexts is not the XOR of
 * the plaintexts, as it is in legacy mode.
 */
static void secure_split_keys(void)
{
    struct hd_box_key host = { { 0 }, NULL };
    struct hd_secure c = { 0 }, h = { 0 }, lc = { 0 }, lh = { 0 };
    uint8_t my_pk[32], sealed[HD_SEALED_KEY2_BYTES], key[33];
    uint8_t a[16 + 8], b[16 + 8], buf[8];
    static const uint8_t zero_nonce[24];
    const char *pa = "keys:abc", *pb = "hunter2!";
    size_t slen, i, same = 0;

    HT_EQ_INT(hd_box_key_generate(&host), 0);
    HT_EQ_INT(hd_secure_client_start(host.pk, 1, my_pk, sealed, &slen, &c), 0);
    HT_EQ_INT(slen, 49);
    HT_EQ_INT(c.legacy, 0);
    /* inside the box: the master key, then the mode byte */
    HT_EQ_INT(
        crypto_box_open_easy(key, sealed, slen, zero_nonce, my_pk, host.sk), 0);
    HT_EQ_INT(key[32], HD_KX_SPLIT);
    HT_EQ_INT(hd_secure_host_accept(&host, my_pk, 32, sealed, slen, &h), 0);
    if (c.key == NULL || h.key == NULL)
        goto out;
    HT_EQ_INT(h.legacy, 0);
    /* my sending key is the other's receiving key, and they differ */
    HT_EQ_MEM(c.key, h.key + 32, 32);
    HT_EQ_MEM(h.key, c.key + 32, 32);
    HT_CHECK(memcmp(c.key, c.key + 32, 32) != 0);
    HT_CHECK(memcmp(c.key, key, 32) != 0); /* derived, not the master */
    HT_CHECK(hd_secure_binding(&c) != NULL && hd_secure_binding(&h) != NULL);
    if (hd_secure_binding(&c) && hd_secure_binding(&h))
        HT_EQ_MEM(hd_secure_binding(&c), hd_secure_binding(&h), 32);

    /* frame 1 each way: both open, and the XOR reveals nothing */
    HT_EQ_INT(hd_secure_seal(&c, (const uint8_t *)pa, 8, a), 0);
    HT_EQ_INT(hd_secure_seal(&h, (const uint8_t *)pb, 8, b), 0);
    HT_EQ_INT(hd_secure_open(&h, a, sizeof(a), buf), 0);
    HT_EQ_MEM(buf, pa, 8);
    HT_EQ_INT(hd_secure_open(&c, b, sizeof(b), buf), 0);
    HT_EQ_MEM(buf, pb, 8);
    for (i = 0; i < 8; i++)
        same += (uint8_t)(a[16 + i] ^ b[16 + i]) == (uint8_t)(pa[i] ^ pb[i]);
    HT_CHECK(same < 8);
    /* a frame reflected back to its sender does not open */
    HT_EQ_INT(hd_secure_open(&c, a, sizeof(a), buf), HD_ECRYPTO);

    /* control: legacy, the XOR of frame 1 each way is the plaintexts' XOR */
    HT_EQ_INT(hd_secure_client_start(host.pk, 0, my_pk, sealed, &slen, &lc), 0);
    HT_EQ_INT(hd_secure_host_accept(&host, my_pk, 32, sealed, slen, &lh), 0);
    HT_EQ_INT(lh.legacy, 1);
    HT_CHECK(hd_secure_binding(&lh) == NULL);
    HT_EQ_INT(hd_secure_seal(&lc, (const uint8_t *)pa, 8, a), 0);
    HT_EQ_INT(hd_secure_seal(&lh, (const uint8_t *)pb, 8, b), 0);
    for (i = 0, same = 0; i < 8; i++)
        same += (uint8_t)(a[16 + i] ^ b[16 + i]) == (uint8_t)(pa[i] ^ pb[i]);
    HT_EQ_INT(same, 8);

    /* an unknown mode byte is refused */
    hd_secure_cleanup(&h);
    key[32] = 7;
    HT_EQ_INT(crypto_box_easy(sealed, key, 33, zero_nonce, host.pk, host.sk),
              0); /* sealed by "us" to ourselves: only the mode matters */
    HT_EQ_INT(hd_secure_host_accept(&host, host.pk, 32, sealed, 49, &h),
              HD_EPROTO);
    HT_CHECK(h.key == NULL);
out:
    hd_secure_cleanup(&c);
    hd_secure_cleanup(&h);
    hd_secure_cleanup(&lc);
    hd_secure_cleanup(&lh);
    hd_box_key_cleanup(&host);
}

/* The host's signed offer (IdPk.hd_kx) and the server's (KeyExchange). */
static void kx_offers(void)
{
    struct hd_sign_key k = { { 0 }, NULL }, other = { { 0 }, NULL };
    uint8_t pk[32] = { 9 }, got[64], sig[64], *sm = NULL;
    char id[32];
    size_t n = 0, len = 0;

    HT_EQ_INT(hd_sign_key_generate(&k), 0);
    HT_EQ_INT(hd_sign_key_generate(&other), 0);
    HT_EQ_INT(hd_idpk_sign_kx(&k, "123456789", pk, 32, HD_KX_SPLIT, &sm, &n),
              0);
    HT_EQ_INT(
        hd_idpk_verify(sm, n, k.pk, id, sizeof(id), got, sizeof(got), &len), 0);
    HT_EQ_INT(hd_idpk_kx(sm, n), HD_KX_SPLIT);
    free(sm);
    HT_EQ_INT(hd_idpk_sign(&k, "123456789", pk, 32, &sm, &n), 0);
    HT_EQ_INT(hd_idpk_kx(sm, n), 0);
    free(sm);
    HT_EQ_INT(hd_idpk_kx((const uint8_t *)"short", 5), 0);

    hd_kx_offer_sign(&k, pk, sig);
    HT_EQ_INT(hd_kx_offer_verify(k.pk, pk, sig, 64), 1);
    HT_EQ_INT(hd_kx_offer_verify(other.pk, pk, sig, 64), 0);
    HT_EQ_INT(hd_kx_offer_verify(k.pk, pk, sig, 63), 0);
    HT_EQ_INT(hd_kx_offer_verify(k.pk, pk, NULL, 0), 0);
    pk[1] ^= 1;
    HT_EQ_INT(hd_kx_offer_verify(k.pk, pk, sig, 64), 0);
    hd_sign_key_cleanup(&k);
    hd_sign_key_cleanup(&other);
}

/* The login proof bound to a session (split channels). */
static void login_bound(void)
{
    uint8_t salted[32], p[32], legacy[32], b1[32], b2[32];

    memset(b1, 1, sizeof(b1));
    memset(b2, 2, sizeof(b2));
    hd_login_salted("hunter2", "saltySALT", salted);
    hd_login_hash("hunter2", "saltySALT", "AbC123", legacy);
    memcpy(p, legacy, 32);
    hd_login_bind(b1, p);
    HT_CHECK(memcmp(p, legacy, 32) != 0);
    HT_EQ_INT(hd_login_verify(salted, "AbC123", b1, p, 32), 0);
    /* another session's binding, or none, or the unbound proof: refused */
    HT_EQ_INT(hd_login_verify(salted, "AbC123", b2, p, 32), HD_EAUTH);
    HT_EQ_INT(hd_login_verify(salted, "AbC123", NULL, p, 32), HD_EAUTH);
    HT_EQ_INT(hd_login_verify(salted, "AbC123", b1, legacy, 32), HD_EAUTH);
    HT_EQ_INT(hd_login_verify(salted, "AbC123", NULL, legacy, 32), 0);
}

static void nonce_layout(void)
{
    struct hd_secure s = { 0 };
    uint8_t key[32], nonce[24] = { 0 }, got[16 + 5], want[16 + 5], out[5];
    size_t i;

    for (i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(0xa0 + i);
    HT_EQ_INT(hd_secure_init(&s, key), 0);
    if (s.key == NULL)
        return;

    /* first frame: counter 1 */
    HT_EQ_INT(hd_secure_seal(&s, (const uint8_t *)"hello", 5, got), 0);
    nonce[0] = 1;
    crypto_secretbox_easy(want, (const uint8_t *)"hello", 5, nonce, key);
    HT_EQ_MEM(got, want, sizeof(got));

    /* a counter using all 8 bytes: little-endian in nonce[0..7] */
    s.send_seq = 0x0102030405060707ULL;
    HT_EQ_INT(hd_secure_seal(&s, (const uint8_t *)"hello", 5, got), 0);
    memcpy(nonce, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
    crypto_secretbox_easy(want, (const uint8_t *)"hello", 5, nonce, key);
    HT_EQ_MEM(got, want, sizeof(got));

    /* the receiving side uses the same layout */
    s.recv_seq = 0x0102030405060707ULL;
    HT_EQ_INT(hd_secure_open(&s, want, sizeof(want), out), 0);
    HT_EQ_MEM(out, "hello", 5);
    HT_EQ_INT(s.recv_seq, 0x0102030405060708ULL);

    /* the counter never wraps */
    s.send_seq = UINT64_MAX;
    HT_EQ_INT(hd_secure_seal(&s, (const uint8_t *)"x", 1, got), -EOVERFLOW);
    s.recv_seq = UINT64_MAX;
    HT_EQ_INT(hd_secure_open(&s, want, sizeof(want), out), HD_ECRYPTO);
    hd_secure_cleanup(&s);
    HT_CHECK(s.key == NULL);
    hd_secure_cleanup(&s);
}

int main(void)
{
    ht_init("crypto");
    if (hd_crypto_init() != 0) {
        ht_fail(__FILE__, __LINE__, "libsodium does not initialise");
        return ht_finish();
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/hd-crypto-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    HT_RUN(base64_vectors);
    HT_RUN(sha256_vector);
    HT_RUN(login_hash_vector);
    HT_RUN(known_key_rfc8032);
    HT_RUN(bad_keys_refused);
    HT_RUN(generate_sign_key);
    HT_RUN(idpk_known_vector);
    HT_RUN(idpk_sign_verify);
    HT_RUN(idpk_signed_garbage);
    HT_RUN(key_files_round_trip);
    HT_RUN(key_files_hbbs_dir);
    HT_RUN(key_files_errors);
    HT_RUN(secure_handshake);
    HT_RUN(secure_frames);
    HT_RUN(secure_split_keys);
    HT_RUN(kx_offers);
    HT_RUN(login_bound);
    HT_RUN(nonce_layout);
    rmdir(tmpdir);
    return ht_finish();
}

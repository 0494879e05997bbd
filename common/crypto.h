/*
 * Keys, signatures and the session channel (libsodium), RustDesk-compatible.
 *
 * Three things live here:
 * - Ed25519 identity keys (the server's key, a host's key): generated,
 *   loaded from the hbbs key files (`id_ed25519` = base64 of the 64-byte
 *   secret key, `id_ed25519.pub` = base64 of the 32-byte public key, standard
 *   base64 with padding, no newline) or from a `-k` base64 string.
 * - Signed IdPk: crypto_sign combined mode (64-byte signature, then the
 *   packed hbb.IdPk message) binding an ID to a public key.
 * - The session channel of PROTOCOL.md section 5: the viewer seals a random
 *   secretbox key to the host's ephemeral X25519 key (crypto_box_easy, all-zero
 *   nonce), then each frame is crypto_secretbox_easy under a 24-byte nonce
 *   that is all zero but for a little-endian u64 counter in its first 8
 *   bytes; each direction counts separately, pre-incremented (first nonce 1).
 *   The same construction secures the rendezvous server's KeyExchange.
 *
 * Invariants: secret keys only ever live in sodium_malloc'd memory and are
 * wiped when freed (x_cleanup); nothing here logs a key.  Objects are
 * embedded by the caller (x_init-style outputs, x_cleanup to release);
 * an output object is overwritten on entry, so pass a cleaned-up or fresh
 * one.  Every function may be called from any thread once hd_crypto_init
 * has succeeded; one object must not be used by two threads at once,
 * except that hd_secure_seal and hd_secure_open may run concurrently on the
 * same hd_secure (they touch separate counters).
 *
 * Key modes.  RustDesk's channel ("legacy") uses the one sealed key in
 * both directions, and both counters start at 1: frame k host->viewer and
 * frame k viewer->host share key and nonce, for EVERY k, so anyone who
 * sees both directions (a relay, an on-path proxy) XORs them into the XOR
 * of the two plaintexts, and can reflect one side's frames back to it as
 * the other's.  We speak it only with RustDesk apps, which know nothing
 * else.  Between homedesk peers the mode is split (HD_KX_SPLIT): the
 * sealed key is a master from which each direction gets its own key
 * (and the login proof a binding key), derived with the two ephemeral
 * public keys (hd_secure_client_start).  The host's offer of the split
 * mode travels inside what it signs and the answer inside what the viewer
 * seals, so a man in the middle can neither strip nor forge it: at worst
 * the handshake fails.  The rendezvous server's offer (KeyExchange.hd_kx)
 * sits beside the part RustDesk apps verify and can be removed whole; so
 * the server also signs the mode into every host key it vouches for
 * (IdPk.hd_kx) and the viewer remembers which servers offered it: a
 * stripped offer is refused (client/rendezvous.c).
 *
 * Files: crypto.c (keys, IdPk, the KeyExchange offer, the login hash),
 * keyfile.c (the hbbs key files: the only part that touches the disk),
 * secure.c (the session channel).
 */
#ifndef HD_CRYPTO_H
#define HD_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define HD_SIGN_PK_BYTES    32
#define HD_SIGN_SK_BYTES    64
#define HD_SIGNATURE_BYTES  64
#define HD_BOX_PK_BYTES     32
#define HD_SECURE_KEY_BYTES 32
#define HD_SEALED_KEY_BYTES 48 /* 32-byte key + 16-byte MAC (legacy) */
/* split mode: 32-byte key + 1 mode byte (HD_KX_SPLIT) + 16-byte MAC */
#define HD_SEALED_KEY2_BYTES 49
/* Key mode bit: per-direction keys (IdPk.hd_kx, the sealed mode byte). */
#define HD_KX_SPLIT 1u
/* the split mode's label: in the server's signed offer (label || box
 * public key) and in the derivation of the split keys */
#define HD_KX_OFFER_LABEL  "homedesk-kx2"
#define HD_SECURE_OVERHEAD 16 /* secretbox MAC added to every frame */
#define HD_SHA256_BYTES    32

/* A signed IdPk from a peer is refused above this size (HD_ETOOBIG). */
#define HD_IDPK_SIGNED_MAX 1024

/* Key file names inside a data/config directory, as hbbs names them. */
#define HD_KEY_FILE     "id_ed25519"
#define HD_KEY_FILE_PUB "id_ed25519.pub"

/* Size of the buffer hd_base64_encode needs for n bytes, NUL included. */
#define HD_BASE64_ENCODED_LEN(n) ((((size_t)(n) + 2) / 3) * 4 + 1)

/*
 * Initialise libsodium.  Idempotent and thread-safe; call once at program
 * start (the key-generating functions below also call it).  Returns 0, or
 * -EIO if libsodium cannot initialise (no usable random source).
 */
int hd_crypto_init(void);

/* A random (version 4) UUID as text, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
 * with a NUL: the relay pairing token RustDesk's apps use. */
#define HD_UUID_LEN 37
void hd_uuid_random(char out[HD_UUID_LEN]);

/*
 * Standard base64 with padding (sodium VARIANT_ORIGINAL), as hbbs and the
 * RustDesk clients write keys.
 * hd_base64_encode: writes the NUL-terminated text of bin[0..n) into out;
 * returns 0, or -ENOSPC when cap < HD_BASE64_ENCODED_LEN(n) (out untouched).
 * hd_base64_decode: decodes exactly len characters of b64 (no whitespace,
 * padding required) into out; sets *out_len.  Returns 0, or -EINVAL for
 * malformed text or more than cap bytes of output.  Constant time in the
 * content of the text (safe for secret keys).
 */
int hd_base64_encode(const uint8_t *bin, size_t n, char *out, size_t cap);
int hd_base64_decode(const char *b64, size_t len, uint8_t *out, size_t cap,
                     size_t *out_len);

/* SHA-256 of p[0..n) into out. */
void hd_sha256(const void *p, size_t n, uint8_t out[HD_SHA256_BYTES]);

/* ---- Ed25519 identity keys ------------------------------------------- */

/*
 * An Ed25519 key pair.  sk is the 64-byte libsodium secret key (seed then
 * public key) in sodium_malloc'd memory, or NULL when the object holds no
 * key.  Zero-initialise or hd_sign_key_cleanup before reuse.
 */
struct hd_sign_key {
    uint8_t pk[HD_SIGN_PK_BYTES];
    uint8_t *sk;
};

/* Fill k with a fresh random key pair.  Returns 0 or -ENOMEM/-EIO. */
int hd_sign_key_generate(struct hd_sign_key *k);

/* Wipe and free the secret key; k is left empty.  Accepts an empty k. */
void hd_sign_key_cleanup(struct hd_sign_key *k);

/*
 * Load the key from b64, the base64 of a 64-byte secret key (the hbbs `-k`
 * format and the content of `id_ed25519`).  Leading and trailing whitespace
 * is ignored.  The public half of the secret key must match the key derived
 * from its seed.  Returns 0, HD_EKEYFILE (wrong length or format; does not
 * log), or -ENOMEM.  On error k is left empty.
 */
int hd_sign_key_from_base64_sk(const char *b64, struct hd_sign_key *k);

/*
 * Load dir/id_ed25519 (and check dir/id_ed25519.pub against it), or, when
 * id_ed25519 does not exist, generate a key whose base64 public key has no
 * '/' (as hbbs does, since clients once treated '/' badly), and write both
 * files exactly as hbbs does: base64 text, no trailing newline; ours writes
 * the secret file with mode 0600 (0644 for .pub), each through a temporary
 * file renamed into place.  A missing .pub beside an existing secret key is
 * written.  A secret file readable by others is loaded with a warning (hbbs
 * data directories have such files).  Logs one line naming the file on
 * every failure.  Returns 0; HD_EKEYFILE for a malformed file or a .pub
 * that does not match the secret key; a negative errno for I/O errors
 * (e.g. -ENOENT when dir does not exist).  On error k is left empty.
 */
int hd_sign_key_load_or_create(const char *dir, struct hd_sign_key *k);

/*
 * A short fingerprint of a public key for people to compare (host start
 * output, viewer log and stats): "SHA256:" and the first 16 characters of
 * the base64 of its SHA-256, NUL-terminated in out.
 */
#define HD_FINGERPRINT_LEN 24
void hd_key_fingerprint(const uint8_t pk[HD_SIGN_PK_BYTES],
                        char out[HD_FINGERPRINT_LEN]);

/* ---- Signed IdPk --------------------------------------------------------- */

/*
 * Sign IdPk{id, pk}: *out = signature (64) || packed IdPk, malloc'd, length
 * *out_len; the caller frees it with free().  Returns 0, -EINVAL (NULL id,
 * or id/pk too large for HD_IDPK_SIGNED_MAX), or -ENOMEM.
 */
int hd_idpk_sign(const struct hd_sign_key *key, const char *id,
                 const uint8_t *pk, size_t pk_len, uint8_t **out,
                 size_t *out_len);

/*
 * hd_idpk_sign with IdPk.hd_kx = kx (the key modes a host offers in its
 * SignedId; 0 gives exactly hd_idpk_sign's output).
 */
int hd_idpk_sign_kx(const struct hd_sign_key *key, const char *id,
                    const uint8_t *pk, size_t pk_len, uint32_t kx,
                    uint8_t **out, size_t *out_len);

/*
 * IdPk.hd_kx of a signed IdPk that hd_idpk_verify accepted (call it only
 * then: this one does not check the signature).  0 when absent or
 * unparsable.
 */
uint32_t hd_idpk_kx(const uint8_t *signed_msg, size_t n);

/*
 * The rendezvous server's offer of split keys in its KeyExchange
 * (KeyExchange.hd_kx): a detached Ed25519 signature by the server key over
 * "homedesk-kx2" || box_pk, the ephemeral key the same offer signs in
 * keys[0].  hd_kx_offer_sign writes sig; hd_kx_offer_verify returns 1 when
 * sig[0..n) is such a signature by server_pk, else 0.
 */
void hd_kx_offer_sign(const struct hd_sign_key *key,
                      const uint8_t box_pk[HD_BOX_PK_BYTES],
                      uint8_t sig[HD_SIGNATURE_BYTES]);
int hd_kx_offer_verify(const uint8_t server_pk[HD_SIGN_PK_BYTES],
                       const uint8_t box_pk[HD_BOX_PK_BYTES],
                       const uint8_t *sig, size_t n);

/*
 * Verify signed_msg[0..n) with signer_pk and unpack the IdPk inside: the
 * NUL-terminated id into id_out (id_cap bytes), the key into pk_out (pk_cap
 * bytes, length *pk_len).  Outputs are cleared on entry.  The caller checks
 * the id and the key length it expects.  Does not log (the caller knows the
 * peer).  Returns 0; HD_EAUTH when the signature does not verify; HD_EPROTO
 * when the signed content is not an IdPk; HD_ETOOBIG when n exceeds
 * HD_IDPK_SIGNED_MAX or id/pk do not fit the buffers; -ENOMEM.
 */
int hd_idpk_verify(const uint8_t *signed_msg, size_t n,
                   const uint8_t signer_pk[HD_SIGN_PK_BYTES], char *id_out,
                   size_t id_cap, uint8_t *pk_out, size_t pk_cap,
                   size_t *pk_len);

/* ---- Session channel ----------------------------------------------------- */

/*
 * An ephemeral X25519 (crypto_box) key pair; the host makes one per session
 * and signs its public half into SignedId.  sk is sodium_malloc'd.
 */
struct hd_box_key {
    uint8_t pk[HD_BOX_PK_BYTES];
    uint8_t *sk;
};

/* Fill k with a fresh key pair.  Returns 0 or -ENOMEM/-EIO. */
int hd_box_key_generate(struct hd_box_key *k);

/* Wipe and free the secret key.  Accepts an empty k. */
void hd_box_key_cleanup(struct hd_box_key *k);

/*
 * The state of one encrypted session, in one sodium_malloc'd block `key`:
 * the sending key (bytes 0-31), the receiving key (32-63) and the binding
 * key (64-95, hd_secure_binding); and the last counter used in each
 * direction.  legacy: 1 when both keys are the one sealed key (RustDesk's
 * channel; no binding key), 0 for split keys.
 */
#define HD_SECURE_STATE_BYTES (3 * HD_SECURE_KEY_BYTES)
struct hd_secure {
    uint8_t *key;
    uint64_t send_seq;
    uint64_t recv_seq;
    int legacy;
};

/*
 * Start a legacy channel from a known key (tests, fuzzers, resumed
 * state): key both ways, counters 0.  Returns 0 or -ENOMEM.
 */
int hd_secure_init(struct hd_secure *s, const uint8_t key[HD_SECURE_KEY_BYTES]);

/*
 * Viewer side of the handshake, after verifying the host's SignedId (or
 * the server's KeyExchange offer): makes an ephemeral box key pair and a
 * random secretbox key, seals it to host_box_pk (crypto_box_easy, all-zero
 * nonce) and returns what goes into PublicKey: my_box_pk
 * (asymmetric_value) and sealed[0..*sealed_len) (symmetric_value).
 * split 0: legacy, 48 bytes sealed, the key both ways.  split 1 (only
 * when the other side offered HD_KX_SPLIT in what it signed): the key and
 * the mode byte HD_KX_SPLIT are sealed (49 bytes), and the key is a
 * master: master = BLAKE2b-256(key; "homedesk-kx2" || host_box_pk ||
 * my_box_pk), then crypto_kdf subkeys of context "hdsess02": 1 =
 * host->viewer, 2 = viewer->host, 3 = binding.  The ephemeral secret is
 * wiped before returning.  Returns 0; HD_EPROTO when host_box_pk is a
 * degenerate (low-order) key; -ENOMEM.  On error *out is left empty.
 */
int hd_secure_client_start(const uint8_t host_box_pk[HD_BOX_PK_BYTES],
                           int split, uint8_t my_box_pk[HD_BOX_PK_BYTES],
                           uint8_t sealed[HD_SEALED_KEY2_BYTES],
                           size_t *sealed_len, struct hd_secure *out);

/*
 * Host side: open the viewer's PublicKey with our ephemeral key.  their_pk
 * and sealed are the asymmetric_value and symmetric_value fields as
 * received.  48 sealed bytes: legacy (a RustDesk app; out->legacy = 1);
 * 49 with the mode byte HD_KX_SPLIT: split keys, derived as in
 * hd_secure_client_start with the roles swapped.  The caller must have
 * offered the split mode for a 49-byte answer to make sense (homedesk
 * always does).  Both empty means the viewer wants no encryption; that is
 * the caller's decision (homedesk refuses by default) and returns
 * HD_EPROTO here like any other wrong length.  Does not log.  Returns 0;
 * HD_EPROTO (wrong lengths, unknown mode); HD_ECRYPTO (the box does not
 * open: wrong key or tampered); -ENOMEM.  On error *out is left empty.
 */
int hd_secure_host_accept(const struct hd_box_key *mine,
                          const uint8_t *their_pk, size_t their_pk_len,
                          const uint8_t *sealed, size_t sealed_len,
                          struct hd_secure *out);

/* Wipe and free the key; s is left empty.  Accepts an empty s. */
void hd_secure_cleanup(struct hd_secure *s);

/*
 * The binding key of a split channel (32 bytes, secret, known only to
 * the two ends of this one session), or NULL for a legacy one.
 */
const uint8_t *hd_secure_binding(const struct hd_secure *s);

/*
 * Seal one outgoing frame payload: out (n + HD_SECURE_OVERHEAD bytes)
 * receives crypto_secretbox_easy(msg, nonce(++send_seq), sending key).  out may
 * be msg itself (in place).  Every payload is sealed, even an empty one.
 * Returns 0, or -EOVERFLOW if the 2^64 - 1 counter is exhausted.
 */
int hd_secure_seal(struct hd_secure *s, const uint8_t *msg, size_t n,
                   uint8_t *out);

/*
 * Open one incoming frame payload c[0..n) into out (n - HD_SECURE_OVERHEAD
 * bytes; out may be c).  The reference passes frames of 1 byte or less
 * through without decrypting (they carry no counter); the caller must do
 * that before calling here, and should know that such a frame is
 * unauthenticated (a 0- or 1-byte Message can hold no field).
 * Counter choice: the nonce is recv_seq + 1, and recv_seq is advanced only
 * when the frame opens.  A failed open leaves the state as it was (so a
 * replayed, reordered or altered frame fails and the genuine next frame
 * still opens), but any failure means the stream is corrupt or attacked:
 * the caller must close the session, as the reference does.  Does not log.
 * Returns 0, or HD_ECRYPTO (shorter than the MAC, forged, replayed,
 * reordered, or counter exhausted).
 */
int hd_secure_open(struct hd_secure *s, const uint8_t *c, size_t n,
                   uint8_t *out);

/* ---- Login hash ---------------------------------------------------------- */

/*
 * RustDesk's login proof, as the client computes it and the host checks it:
 * out = SHA256(SHA256(password || salt) || challenge), where the inner
 * digest is the raw 32 bytes (not hex) and the strings are their UTF-8
 * bytes without NUL.  salt and challenge come from the host's Hash message.
 * Example: password "hunter2", salt "saltySALT", challenge "AbC123" ->
 * d4f1134a5830299d7e6002919584d095e78f073830bf63aecff3fe3ef8976cf7.
 */
void hd_login_hash(const char *password, const char *salt,
                   const char *challenge, uint8_t out[HD_SHA256_BYTES]);

/*
 * The inner half, SHA256(password || salt): what a host stores instead of
 * the password (with the salt it sends in Hash).
 */
void hd_login_salted(const char *password, const char *salt,
                     uint8_t out[HD_SHA256_BYTES]);

/*
 * Between homedesk peers (a split channel), the proof is bound to the
 * session: proof = HMAC-SHA256(key = the channel's binding key
 * (hd_secure_binding), "homedesk-login" || RustDesk's proof), in place.
 * A proof a man in the middle relays from another session (where the
 * viewer really talks to him) is then useless on his own session with the
 * host, and a recorded one is useless on any later session.
 */
void hd_login_bind(const uint8_t bind[HD_SECURE_KEY_BYTES],
                   uint8_t proof[HD_SHA256_BYTES]);

/*
 * Host check of a LoginRequest.password against a stored salted hash:
 * compares SHA256(salted || challenge), bound with hd_login_bind when
 * bind is not NULL (a split channel), with got[0..got_len) in constant
 * time.  Returns 0 on a match, HD_EAUTH otherwise (including a wrong
 * length).  Throttling failures is the caller's job.
 */
int hd_login_verify(const uint8_t salted[HD_SHA256_BYTES],
                    const char *challenge, const uint8_t *bind,
                    const uint8_t *got, size_t got_len);

#endif

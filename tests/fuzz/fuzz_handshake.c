/*
 * libFuzzer target: the session handshake's peer-facing entry points in
 * common/crypto.  The input drives three decoders:
 * - hd_idpk_verify on the raw input (a forged SignedId), and on the input
 *   signed with a fixed key, so that the IdPk parser behind a valid
 *   signature sees arbitrary bytes too;
 * - hd_idpk_kx (the host's key-mode offer) and hd_kx_offer_verify (the
 *   server's) on the input;
 * - hd_secure_host_accept with the input split into PublicKey's two fields
 *   (legacy and split-key answers);
 * - hd_secure_open on the input as a frame.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hd_sign_key sign;
    static struct hd_box_key box;
    static int ready;
    uint8_t key[HD_SECURE_KEY_BYTES] = { 1 };
    struct hd_secure s;
    uint8_t pk[64], *sm, *out;
    size_t pk_len, split;
    char id[128];

    if (!ready) {
        if (hd_crypto_init() != 0 || hd_sign_key_generate(&sign) != 0 ||
            hd_box_key_generate(&box) != 0)
            abort();
        ready = 1;
    }

    hd_idpk_verify(data, size, sign.pk, id, sizeof(id), pk, sizeof(pk),
                   &pk_len);
    if (size <= HD_IDPK_SIGNED_MAX - HD_SIGNATURE_BYTES &&
        (sm = malloc(HD_SIGNATURE_BYTES + size)) != NULL) {
        memcpy(sm + HD_SIGNATURE_BYTES, data, size);
        crypto_sign_detached(sm, NULL, sm + HD_SIGNATURE_BYTES, size, sign.sk);
        hd_idpk_verify(sm, HD_SIGNATURE_BYTES + size, sign.pk, id, sizeof(id),
                       pk, sizeof(pk), &pk_len);
        free(sm);
    }

    hd_idpk_kx(data, size);
    if (size >= HD_BOX_PK_BYTES)
        hd_kx_offer_verify(sign.pk, data, data + HD_BOX_PK_BYTES,
                           size - HD_BOX_PK_BYTES);

    split = size > 0 ? data[0] % (size + 1) : 0;
    if (hd_secure_host_accept(&box, data, split, data + split, size - split,
                              &s) == 0)
        hd_secure_cleanup(&s);

    if (hd_secure_init(&s, key) == 0) {
        if ((out = malloc(size + 1)) != NULL) {
            hd_secure_open(&s, data, size, out);
            free(out);
        }
        hd_secure_cleanup(&s);
    }
    return 0;
}

/*
 * The client side of the rendezvous server's secure channel, for every
 * program that connects to homedesk-server or hbbs over TCP (the viewer,
 * and the host's registration link).
 *
 * On a TCP connection the server offers KeyExchange{keys[0] =
 * crypto_sign(its ephemeral box key) by the server key}; homedesk-server
 * adds KeyExchange.hd_kx, a signed offer of per-direction keys
 * (crypto.h: hd_kx_offer_*).  The client verifies the signature with the
 * key the user configured (--key), seals a fresh secretbox key to the box
 * key and answers KeyExchange{our box key, sealed key} in the clear; from
 * then on every frame both ways is sealed (hd_secure_seal/open).
 *
 * Pure computation: no I/O, no logging (the caller knows which server it
 * talked to and says so).  Any thread.
 */
#ifndef HD_RVSEC_H
#define HD_RVSEC_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "rendezvous.pb-c.h"

/* The answer to send back, self-contained (msg points into the struct). */
struct hd_rv_kx_answer {
    Hbb__RendezvousMessage msg;
    Hbb__KeyExchange kx;
    ProtobufCBinaryData keys[2];
    uint8_t my_pk[HD_BOX_PK_BYTES];
    uint8_t sealed[HD_SEALED_KEY2_BYTES];
};

/*
 * Answer the server's offer kx, signed by server_pk.  On success *sec is
 * the channel (split keys when the offer carried a valid hd_kx, legacy
 * otherwise), *split says which, and ans->msg is the KeyExchange to send
 * unsealed.  Returns 0; HD_EAUTH when the offer is not signed by
 * server_pk (another server key, or tampered); HD_EPROTO when it is not
 * an offer (wrong key count or lengths, degenerate box key); -ENOMEM.
 * On error *sec is left empty.  ans must not move before msg is sent.
 */
int hd_rv_kx_answer(const Hbb__KeyExchange *kx,
                    const uint8_t server_pk[HD_SIGN_PK_BYTES],
                    struct hd_secure *sec, int *split,
                    struct hd_rv_kx_answer *ans);

#endif

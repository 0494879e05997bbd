/* Client side of the rendezvous server's secure channel.  See rvsec.h. */
#include <sodium.h>
#include <string.h>

#include "err.h"
#include "rvsec.h"

int hd_rv_kx_answer(const Hbb__KeyExchange *kx,
                    const uint8_t server_pk[HD_SIGN_PK_BYTES],
                    struct hd_secure *sec, int *split,
                    struct hd_rv_kx_answer *ans)
{
    uint8_t box_pk[HD_BOX_PK_BYTES + 64];
    unsigned long long len;
    size_t sealed_len;
    int r;

    memset(ans, 0, sizeof(*ans));
    *split = 0;
    if (kx == NULL || kx->n_keys != 1 ||
        kx->keys[0].len > sizeof(box_pk) + crypto_sign_BYTES ||
        kx->keys[0].len < crypto_sign_BYTES)
        return HD_EPROTO;
    if (crypto_sign_open(box_pk, &len, kx->keys[0].data, kx->keys[0].len,
                         server_pk) != 0)
        return HD_EAUTH;
    if (len != HD_BOX_PK_BYTES)
        return HD_EPROTO;
    *split =
        hd_kx_offer_verify(server_pk, box_pk, kx->hd_kx.data, kx->hd_kx.len);
    if ((r = hd_secure_client_start(box_pk, *split, ans->my_pk, ans->sealed,
                                    &sealed_len, sec)) != 0)
        return r;
    hbb__rendezvous_message__init(&ans->msg);
    hbb__key_exchange__init(&ans->kx);
    ans->keys[0].data = ans->my_pk;
    ans->keys[0].len = sizeof(ans->my_pk);
    ans->keys[1].data = ans->sealed;
    ans->keys[1].len = sealed_len;
    ans->kx.n_keys = 2;
    ans->kx.keys = ans->keys;
    ans->msg.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE;
    ans->msg.key_exchange = &ans->kx;
    return 0;
}

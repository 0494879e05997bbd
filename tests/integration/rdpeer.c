/* RustDesk-style viewer sessions for tests.  See rdpeer.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "tests/integration/rdpeer.h"
#include "tests/integration/support.h"

int rdp_init(struct rdp *p, int fd, int ws)
{
    memset(p, 0, sizeof(*p));
    p->fd = fd;
    p->ws = ws;
    if (fd >= 0 && (p->buf = malloc(RDP_BUF)) != NULL)
        return 0;
    if (fd >= 0)
        close(fd);
    p->fd = -1;
    return -1;
}

void rdp_cleanup(struct rdp *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    if (p->secure)
        hd_secure_cleanup(&p->sec);
    p->secure = 0;
    free(p->buf);
    p->buf = NULL;
}

int rdp_send(struct rdp *p, const Hbb__Message *m)
{
    size_t n = hbb__message__get_packed_size(m), len = n, hl = 0;
    uint8_t *b = malloc(4 + n + HD_SECURE_OVERHEAD);
    int r = -1;

    if (b == NULL)
        return -1;
    hbb__message__pack(m, b + 4);
    if (p->secure && n > 1) { /* 1-byte messages go in clear */
        if (hd_secure_seal(&p->sec, b + 4, n, b + 4) != 0)
            goto out;
        len = n + HD_SECURE_OVERHEAD;
    }
    if (p->ws) {
        r = ws_client_send(p->fd, b + 4, len);
    } else {
        uint8_t hdr[4];

        hl = hd_frame_header(hdr, len);
        memcpy(b + 4 - hl, hdr, hl);
        r = send_all(p->fd, b + 4 - hl, hl + len);
    }
out:
    free(b);
    return r;
}

Hbb__Message *rdp_recv(struct rdp *p, int timeout_ms)
{
    ssize_t n = p->ws ? ws_client_recv(p->fd, p->buf, RDP_BUF, timeout_ms)
                      : recv_frame(p->fd, p->buf, RDP_BUF, timeout_ms);

    if (n < 0)
        return NULL;
    if (p->secure && n > 1) {
        if (hd_secure_open(&p->sec, p->buf, (size_t)n, p->buf) != 0)
            return NULL;
        n -= HD_SECURE_OVERHEAD;
    }
    return hbb__message__unpack(NULL, (size_t)n, p->buf);
}

Hbb__Message *rdp_expect(struct rdp *p, int kind, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    Hbb__Message *m;

    while (now_ms() < deadline) {
        if ((m = rdp_recv(p, (int)(deadline - now_ms()))) == NULL)
            return NULL;
        if ((int)m->union_case == kind)
            return m;
        hbb__message__free_unpacked(m, NULL);
    }
    return NULL;
}

int rdp_handshake(struct rdp *p, const uint8_t host_pk[32], const char *id,
                  int timeout_ms)
{
    Hbb__Message *m = rdp_expect(p, HBB__MESSAGE__UNION_SIGNED_ID, timeout_ms);
    Hbb__Message out = HBB__MESSAGE__INIT;
    Hbb__PublicKey pk = HBB__PUBLIC_KEY__INIT;
    uint8_t box[64], mine[32], sealed[HD_SEALED_KEY2_BYTES];
    char got[64];
    size_t blen, slen;
    int r = -1;

    if (m == NULL)
        return -1;
    if (hd_idpk_verify(m->signed_id->id.data, m->signed_id->id.len, host_pk,
                       got, sizeof(got), box, sizeof(box), &blen) != 0 ||
        strcmp(got, id) != 0 || blen != 32 ||
        /* a RustDesk app knows only the legacy mode (split 0) */
        hd_secure_client_start(box, 0, mine, sealed, &slen, &p->sec) != 0)
        goto out;
    pk.asymmetric_value.data = mine;
    pk.asymmetric_value.len = sizeof(mine);
    pk.symmetric_value.data = sealed;
    pk.symmetric_value.len = slen;
    out.union_case = HBB__MESSAGE__UNION_PUBLIC_KEY;
    out.public_key = &pk;
    if (rdp_send(p, &out) != 0) {
        hd_secure_cleanup(&p->sec);
        goto out;
    }
    p->secure = 1;
    r = 0;
out:
    hbb__message__free_unpacked(m, NULL);
    return r;
}

Hbb__Message *rdp_login(struct rdp *p, const char *id, const char *password,
                        int ack_required, int timeout_ms)
{
    Hbb__Message out = HBB__MESSAGE__INIT, *m;
    Hbb__LoginRequest lr = HBB__LOGIN_REQUEST__INIT;
    Hbb__OptionMessage opt = HBB__OPTION_MESSAGE__INIT;
    Hbb__SupportedDecoding sd = HBB__SUPPORTED_DECODING__INIT;
    uint8_t proof[HD_SHA256_BYTES];

    if ((m = rdp_expect(p, HBB__MESSAGE__UNION_HASH, timeout_ms)) == NULL)
        return NULL;
    hd_login_hash(password, m->hash->salt, m->hash->challenge, proof);
    hbb__message__free_unpacked(m, NULL);
    sd.ability_vp9 = 1;
    sd.prefer = HBB__SUPPORTED_DECODING__PREFER_CODEC__VP9;
    opt.supported_decoding = &sd;
    lr.username = (char *)id;
    lr.password.data = proof;
    lr.password.len = sizeof(proof);
    lr.my_id = "123456789";
    lr.my_name = "rustdesk-behaviour";
    lr.option = &opt;
    lr.video_ack_required = ack_required;
    lr.version = "1.4.0";
    lr.my_platform = "Linux";
    out.union_case = HBB__MESSAGE__UNION_LOGIN_REQUEST;
    out.login_request = &lr;
    if (rdp_send(p, &out) != 0)
        return NULL;
    return rdp_expect(p, HBB__MESSAGE__UNION_LOGIN_RESPONSE, timeout_ms);
}

int rdp_logged_in(const Hbb__Message *m)
{
    return m != NULL && m->login_response->union_case ==
                            HBB__LOGIN_RESPONSE__UNION_PEER_INFO;
}

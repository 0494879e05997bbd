/*
 * libFuzzer target for RendezvousMessage, the first thing the server
 * decodes from every peer (UDP datagrams, TCP and WebSocket frames).
 * Unpack the input; if it parses, pack it again, check that the packed
 * form is stable (a second unpack/pack gives the same bytes) and that the
 * mangled addresses in it decode or are refused cleanly; a KeyExchange
 * goes through the clients' answer (rvsec.h), which must refuse it
 * cleanly (no fuzzer forges a signature by a fixed key).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "frame.h"
#include "rendezvous.pb-c.h"
#include "rvsec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void try_addr(ProtobufCBinaryData b)
{
    struct sockaddr_storage ss, back;
    uint8_t again[HD_ADDR_MANGLED_MAX];
    size_t n;

    if (hd_addr_unmangle(b.data, b.len, &ss) != 0)
        return;
    /* whatever decodes mangles again to the same address */
    n = hd_addr_mangle((struct sockaddr *)&ss, 0x12345678, again);
    if (n == 0 || hd_addr_unmangle(again, n, &back) != 0 ||
        !hd_addr_same_ip((struct sockaddr *)&ss, (struct sockaddr *)&back) ||
        hd_addr_port((struct sockaddr *)&ss) !=
            hd_addr_port((struct sockaddr *)&back))
        abort();
}

static void check_addrs(const Hbb__RendezvousMessage *m)
{
    switch (m->union_case) {
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE:
        try_addr(m->punch_hole->socket_addr);
        try_addr(m->punch_hole->socket_addr_v6);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_SENT:
        try_addr(m->punch_hole_sent->socket_addr);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE:
        try_addr(m->punch_hole_response->socket_addr);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_LOCAL_ADDR:
        try_addr(m->local_addr->socket_addr);
        try_addr(m->local_addr->local_addr);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY:
        try_addr(m->request_relay->socket_addr);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE:
        try_addr(m->relay_response->socket_addr);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE: {
        static const uint8_t server_pk[HD_SIGN_PK_BYTES] = { 1, 2, 3 };
        struct hd_rv_kx_answer ans;
        struct hd_secure sec = { 0 };
        int split;

        if (hd_rv_kx_answer(m->key_exchange, server_pk, &sec, &split, &ans) ==
            0)
            abort();
        break;
    }
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Hbb__RendezvousMessage *m, *m2;
    uint8_t *p1 = NULL, *p2 = NULL;
    size_t n1, n2;

    m = hbb__rendezvous_message__unpack(NULL, size, data);
    if (m == NULL)
        return 0;
    check_addrs(m);
    if (hd_msg_pack(&m->base, &p1, &n1) != 0)
        abort();
    /*
     * protobuf-c 1.4 accepts field number 0 when the key is written in
     * more than one byte (82 00) and keeps it as an unknown field, but
     * refuses it in the one-byte form it packs (02): so what it packs is
     * not always readable.  Only a readable repack must be stable.
     */
    m2 = hbb__rendezvous_message__unpack(NULL, n1, p1);
    if (m2 != NULL) {
        if (hd_msg_pack(&m2->base, &p2, &n2) != 0 || n1 != n2 ||
            memcmp(p1, p2, n1) != 0)
            abort();
        hbb__rendezvous_message__free_unpacked(m2, NULL);
    }
    hbb__rendezvous_message__free_unpacked(m, NULL);
    free(p1);
    free(p2);
    return 0;
}

/*
 * libFuzzer target: hbb.Message (message.proto), the first thing a host or
 * viewer does with every decrypted frame from a peer.  Unpack arbitrary
 * bytes; when they parse, pack again and check that the result parses and
 * packs to the same bytes (protobuf-c's packing is deterministic, so any
 * difference means a decoder/encoder disagreement).
 *
 * Unknown fields are dropped before repacking: protobuf-c keeps them as raw
 * bytes and re-emits them, and it accepts field number 0 in an overlong key
 * (80 00) that it refuses once re-emitted canonically (00).  That quirk is
 * harmless to us (we never read unknown fields), so the round trip is
 * checked on the fields we declared.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Free and forget the unknown fields of m and of every message inside. */
static void drop_unknown(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    unsigned i;
    size_t j;

    for (i = 0; i < m->n_unknown_fields; i++)
        free(m->unknown_fields[i].data);
    free(m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *base = (char *)m;

        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(size_t *)(base + f->quantifier_offset);
            ProtobufCMessage **v = *(ProtobufCMessage ***)(base + f->offset);

            for (j = 0; j < n; j++)
                drop_unknown(v[j]);
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (*(ProtobufCMessage **)(base + f->offset) != NULL)
            drop_unknown(*(ProtobufCMessage **)(base + f->offset));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Hbb__Message *m, *m2;
    uint8_t *a, *b;
    size_t na, nb;

    m = hbb__message__unpack(NULL, size, data);
    if (m == NULL)
        return 0;
    drop_unknown(&m->base);
    na = hbb__message__get_packed_size(m);
    a = malloc(na ? na : 1);
    if (a == NULL)
        abort();
    if (hbb__message__pack(m, a) != na)
        abort();
    m2 = hbb__message__unpack(NULL, na, a);
    if (m2 == NULL)
        abort(); /* our own output must parse */
    if (m2->union_case != m->union_case)
        abort();
    nb = hbb__message__get_packed_size(m2);
    b = malloc(nb ? nb : 1);
    if (b == NULL)
        abort();
    hbb__message__pack(m2, b);
    if (nb != na || memcmp(a, b, na) != 0)
        abort();
    free(a);
    free(b);
    hbb__message__free_unpacked(m2, NULL);
    hbb__message__free_unpacked(m, NULL);
    return 0;
}

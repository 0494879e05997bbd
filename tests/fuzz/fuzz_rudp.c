/*
 * libFuzzer target for common/rudp.  Two streams A and B talk through two
 * bounded queues; the input is a program of one-byte operations (with
 * arguments) that delivers, drops or alters queued datagrams, injects
 * arbitrary ones (raw, or behind a valid header so the bodies get
 * explored), sends, reads, advances the clock and closes.  Checked on the
 * way: datagrams out are well formed, memory and backlog stay within their
 * limits, update asks for a time in the future, and as long as nothing
 * forged reached B, what B reads is exactly a prefix of what A sent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rudp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CONV 0x01020304u
#define QMAX 64

struct queue {
    uint8_t d[QMAX][HD_RUDP_MTU];
    size_t n[QMAX];
    int len;
};

static struct queue qa, qb; /* A's output, B's output */
static uint8_t sent[1 << 20], got[1 << 20];

static void out(const uint8_t *d, size_t n, void *ud)
{
    struct queue *q = ud;

    if (n > HD_RUDP_MTU || hd_rudp_peek_conv(d, n) != CONV)
        abort();
    if (q->len == QMAX)
        return; /* a full queue drops, like a network */
    memcpy(q->d[q->len], d, n);
    q->n[q->len++] = n;
}

static const struct hd_rudp_cb cb = { out };

/* Take entry i of q (the last one takes its place: order is the
 * fuzzer's to choose anyway). */
static size_t take(struct queue *q, int i, uint8_t *buf)
{
    size_t n = q->n[i];

    memcpy(buf, q->d[i], n);
    q->len--;
    if (i != q->len) {
        memcpy(q->d[i], q->d[q->len], q->n[q->len]);
        q->n[i] = q->n[q->len];
    }
    return n;
}

static void check(struct hd_rudp *r)
{
    if (hd_rudp_backlog(r) > HD_RUDP_MAX_QUEUE ||
        hd_rudp_readable(r) > (size_t)HD_RUDP_RCV_WND * HD_RUDP_MSS)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char types[] = "DKGFPA";
    struct hd_rudp *a = NULL, *b = NULL;
    uint64_t now = 1000, next;
    size_t pos = 0, nsent = 0, ngot = 0, n;
    int forged = 0;
    uint8_t buf[HD_RUDP_MTU + 64];

    qa.len = qb.len = 0;
    if (hd_rudp_new(CONV, now, &cb, &qa, &a) != 0 ||
        hd_rudp_new(CONV, now, &cb, &qb, &b) != 0)
        abort();
    while (pos < size) {
        uint8_t op = data[pos++];
        uint8_t arg = pos < size ? data[pos] : 0;

        switch (op % 10) {
        case 0: /* deliver one of A's datagrams to B */
        case 1:
            if (qa.len > 0) {
                n = take(&qa, arg % qa.len, buf);
                pos += pos < size;
                hd_rudp_input(b, buf, n, now);
            }
            break;
        case 2: /* deliver one of B's to A */
            if (qb.len > 0) {
                n = take(&qb, arg % qb.len, buf);
                pos += pos < size;
                hd_rudp_input(a, buf, n, now);
            }
            break;
        case 3: /* drop one */
            if (qa.len > 0)
                take(&qa, arg % qa.len, buf);
            else if (qb.len > 0)
                take(&qb, arg % qb.len, buf);
            pos += pos < size;
            break;
        case 4: /* an arbitrary datagram, raw or behind a valid header */
        case 5: {
            size_t len = arg, off = 0;
            struct hd_rudp *to = (op & 0x10) ? a : b;

            pos += pos < size;
            if (op % 10 == 5) {
                buf[0] = HD_UDP_MAGIC;
                buf[1] = (uint8_t)types[(op >> 5) % 6];
                buf[2] = 1, buf[3] = 2, buf[4] = 3, buf[5] = 4;
                off = HD_RUDP_HDR;
            }
            if (op & 0x80)
                len += 1000; /* reach the size limits */
            if (len > size - pos)
                len = size - pos;
            if (off + len > sizeof(buf))
                len = sizeof(buf) - off;
            memcpy(buf + off, data + pos, len);
            pos += len;
            if (hd_rudp_input(to, buf, off + len, now) == 0 && to == b)
                forged = 1;
            break;
        }
        case 6: { /* A sends */
            size_t len = (size_t)arg * (op & 0x80 ? 997 : 7) + 1;

            pos += pos < size;
            if (len > sizeof(sent) - nsent)
                len = sizeof(sent) - nsent;
            for (size_t i = 0; i < len; i++)
                sent[nsent + i] = (uint8_t)((nsent + i) * 131 + 7);
            if (len > 0 && hd_rudp_send(a, sent + nsent, len, now) == 0)
                nsent += len;
            break;
        }
        case 7: /* B reads; unless forged, exactly what A sent */
            n = hd_rudp_recv(b, got, sizeof(got));
            if (!forged &&
                (n > nsent - ngot || memcmp(got, sent + ngot, n) != 0))
                abort();
            ngot += n;
            break;
        case 8: /* time passes; both do what is due */
            pos += pos < size;
            now += (uint64_t)arg * (op & 0x80 ? 200 : 1);
            if ((next = hd_rudp_update(a, now)) <= now)
                abort();
            if ((next = hd_rudp_update(b, now)) <= now)
                abort();
            break;
        case 9: /* A or B: bytes in, or close */
            if (op & 0x80)
                hd_rudp_close(a, now);
            else
                hd_rudp_send(b, (const uint8_t *)"pong", 4, now);
            break;
        }
        check(a);
        check(b);
    }
    hd_rudp_free(a);
    hd_rudp_free(b);
    return 0;
}

/*
 * libFuzzer target for server/ws.c, the WebSocket parser of the rendezvous
 * and relay WebSocket ports.  The first input byte chooses the mode (even:
 * a valid upgrade request first, so the rest are frames; odd: the input is
 * the connection from its first byte, instead of an upgrade), the largest
 * message (a small one to reach the "too big" path), whether on_message
 * echoes or closes, and whether writes fail; the second seeds the chunk
 * sizes the bytes are fed in.  Checks the contract of ws.h: messages
 * within the maximum, on_close exactly once, nothing delivered after it,
 * the return of ws_feed equal to the reason on_close got.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct st {
    struct ws *ws;
    size_t max;
    int closed, reason, echo, close_on_msg, fail_writes;
    size_t written;
};

static int on_write(void *ud, const uint8_t *d, size_t n)
{
    struct st *s = ud;

    if (s->closed)
        abort(); /* nothing after on_close */
    if (n > 0 && d == NULL)
        abort();
    s->written += n;
    if (s->fail_writes && s->written > 200)
        return -EPIPE;
    return 0;
}

static void on_message(void *ud, const uint8_t *d, size_t n)
{
    struct st *s = ud;

    if (s->closed || n > s->max || (n > 0 && d == NULL))
        abort();
    if (s->echo)
        ws_send_binary(s->ws, d, n);
    if (s->close_on_msg)
        ws_close(s->ws, 1000);
}

static void on_close(void *ud, int reason)
{
    struct st *s = ud;

    if (s->closed)
        abort(); /* exactly once */
    s->closed = 1;
    s->reason = reason;
}

static uint32_t next_rand(uint32_t *r)
{
    *r ^= *r << 13;
    *r ^= *r >> 17;
    *r ^= *r << 5;
    return *r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char upgrade[] =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    struct ws_callbacks cbs = { on_write, on_message, on_close };
    struct ws_config cfg = { 0 };
    struct st s;
    uint32_t rnd;
    size_t off = 0;
    int r = 0;

    if (size < 2)
        return 0;
    hd_log_set_level(HD_LOG_ERROR);
    memset(&s, 0, sizeof(s));
    s.max = (data[0] & 0x10) ? 300 : 0;
    s.echo = (data[0] >> 1) & 1;
    s.close_on_msg = (data[0] >> 2) & 1;
    s.fail_writes = (data[0] >> 3) & 1;
    rnd = data[1] * 2654435761u + 1;
    cfg.max_message = s.max;
    cfg.peer_desc = "fuzz";
    if (s.max == 0)
        s.max = WS_RENDEZVOUS_MSG_MAX;
    if (ws_new(&cfg, &cbs, &s, &s.ws) != 0)
        return 0;
    if (!(data[0] & 1)) {
        r = ws_feed(s.ws, (const uint8_t *)upgrade, sizeof(upgrade) - 1);
        if (r == 0 && !s.fail_writes && !ws_is_open(s.ws))
            abort();
        if (data[0] & 0x20) {
            /* the relay's switch after RequestRelay */
            ws_set_max_message(s.ws, 1000);
            s.max = 1000;
        }
    }
    data += 2;
    size -= 2;
    while (off < size && !s.closed) {
        size_t n = 1 + next_rand(&rnd) % 512;

        if (n > size - off)
            n = size - off;
        r = ws_feed(s.ws, data + off, n);
        off += n;
        if (r != 0 && (!s.closed || r != s.reason))
            abort(); /* an error return is what on_close got */
    }
    if (s.closed && ws_feed(s.ws, data, size ? 1 : 0) != -EPIPE)
        abort(); /* -EPIPE after on_close */
    if (!s.closed && ws_is_open(s.ws))
        ws_send_binary(s.ws, (const uint8_t *)"x", 1);
    ws_free(s.ws);
    return 0;
}

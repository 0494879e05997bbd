/*
 * Relay core (hbbr replacement): the waiting map (uuid -> connection,
 * keyed SipHash), connection and pair lifetime, forwarding with
 * backpressure, the first-frame handshake and pairing.
 *
 * Memory and buffering: each connection owns one buffer, the queue of its
 * direction (bytes read from it, not yet written to its partner).  Reading
 * goes straight into that buffer; the bytes are written with uv_try_write
 * and, if the partner's socket is full, the rest with one uv_write from
 * the same buffer while reading this side stops.  When the write completes
 * the buffer is reused.  So a pair holds at most 2 * buf_size bytes and no
 * read costs a malloc.
 *
 * Lifetime: a connection has two handles (transport + timer); a pair adds
 * a tick timer.  Once paired, the two connections and the pair are freed
 * together when all five handles have closed, because a write queued by
 * one side lives on the other side's stream (its cancel callback runs when
 * that stream closes).
 *
 * Transports: the core calls a peer only through struct relay_transport
 * (send / pause / resume / close): TCP, and WebSocket (server/ws.c on the
 * same uv_tcp_t).  A WebSocket side keeps what it received in its buffer
 * as TCP frames (header + message), complete ones only, so a TCP partner
 * takes that buffer raw; towards a WebSocket partner relay_forward() splits the
 * buffer into messages again (frames of a TCP side go through a bounded
 * hd_frame_decoder, as they may arrive in pieces).  Messages are appended
 * only after ws_feed returns to the read callback (never while a write
 * still points into the buffer, since a side is not read while its bytes
 * are queued), then accounted and forwarded together.
 */
#include "server/relay_int.h"
#include "server/rejects.h"

/* ---- waiting map (uuid -> connection), keyed SipHash ---- */

static uint64_t uuid_hash(const struct relay *r, const char *uuid)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v;

    crypto_shorthash(h, (const unsigned char *)uuid, strlen(uuid), r->hash_key);
    memcpy(&v, h, sizeof(v));
    return v;
}

static int map_grow(struct relay *r)
{
    size_t nsize = r->map_size ? r->map_size * 2 : 64, i;
    struct relay_conn **nmap = calloc(nsize, sizeof(*nmap));

    if (!nmap)
        return -ENOMEM;
    for (i = 0; i < r->map_size; i++) {
        struct relay_conn *c = r->map[i], *next;
        for (; c; c = next) {
            next = c->map_next;
            c->map_next = nmap[c->uuid_hash & (nsize - 1)];
            nmap[c->uuid_hash & (nsize - 1)] = c;
        }
    }
    free(r->map);
    r->map = nmap;
    r->map_size = nsize;
    return 0;
}

static int map_insert(struct relay *r, struct relay_conn *c)
{
    struct relay_conn **slot;
    int ret;

    if (r->map_count >= r->map_size && (ret = map_grow(r)) != 0 &&
        r->map_size == 0)
        return ret;
    slot = &r->map[c->uuid_hash & (r->map_size - 1)];
    c->map_next = *slot;
    *slot = c;
    r->map_count++;
    r->st.waiting++;
    return 0;
}

static void map_unlink(struct relay *r, struct relay_conn *c)
{
    struct relay_conn **pp;

    if (!r->map_size)
        return;
    for (pp = &r->map[c->uuid_hash & (r->map_size - 1)]; *pp;
         pp = &(*pp)->map_next) {
        if (*pp == c) {
            *pp = c->map_next;
            c->map_next = NULL;
            r->map_count--;
            r->st.waiting--;
            return;
        }
    }
}

static struct relay_conn *map_take(struct relay *r, const char *uuid,
                                   uint64_t h)
{
    struct relay_conn *c;

    if (!r->map_size)
        return NULL;
    for (c = r->map[h & (r->map_size - 1)]; c; c = c->map_next) {
        if (c->uuid_hash == h && strcmp(c->uuid, uuid) == 0) {
            map_unlink(r, c);
            return c;
        }
    }
    return NULL;
}

/* ---- connection lifetime ---- */

static void conn_destroy(struct relay_conn *c)
{
    struct relay *r = c->relay;

    if (c->prev)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->nconns--;
    r->st.conns_active--;
    free(c->buf);
    free(c->uuid);
    free(c->rbuf);
    ws_free(c->ws);
    hd_frame_decoder_cleanup(&c->dec);
    free(c);
    relay_maybe_free(r);
}

static void pair_unref(struct relay_pair *p)
{
    if (--p->refs > 0)
        return;
    conn_destroy(p->a);
    conn_destroy(p->b);
    free(p);
}

void relay_conn_handle_closed(uv_handle_t *h)
{
    struct relay_conn *c = h->data;

    if (--c->open > 0)
        return;
    if (c->pair)
        pair_unref(c->pair);
    else
        conn_destroy(c);
}

static void pair_timer_closed(uv_handle_t *h)
{
    pair_unref(h->data);
}

void relay_splice_close_fds(struct relay_conn *c)
{
    if (c->sfd >= 0)
        close(c->sfd);
    if (c->pipe[0] >= 0)
        close(c->pipe[0]);
    if (c->pipe[1] >= 0)
        close(c->pipe[1]);
    c->sfd = c->pipe[0] = c->pipe[1] = -1;
}

static void poll_closed(uv_handle_t *h)
{
    relay_splice_close_fds(h->data);
    relay_conn_handle_closed(h);
}

/* c is paired or gone: it no longer counts against the unpaired caps. */
static void unpaired_release(struct relay_conn *c)
{
    struct relay *r = c->relay;

    if (c->counted)
        limit_count_del(&r->unpaired_ip, c->ipkey, c->ipkey_len);
    c->counted = 0;
    r->unpaired_bytes -= c->held;
    c->held = 0;
}

void relay_conn_close(struct relay_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    unpaired_release(c);
    if (c->state == CONN_WAITING)
        map_unlink(c->relay, c);
    c->reading = 0;
    uv_close((uv_handle_t *)&c->timer, relay_conn_handle_closed);
    if (c->poll_init)
        uv_close((uv_handle_t *)&c->poll, poll_closed);
    c->tp->close(c);
}

/* The side's address: the IP the lists see (a trusted proxy's client),
 * the port of the socket. */
void relay_conn_addr(const struct relay_conn *c, struct sockaddr_storage *ss)
{
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    struct sockaddr_storage peer;
    int len = sizeof(peer);

    memset(ss, 0, sizeof(*ss));
    s6->sin6_family = AF_INET6;
    memcpy(&s6->sin6_addr, c->ip, 16);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &len) == 0)
        hd_addr_set_port((struct sockaddr *)ss,
                         hd_addr_port((struct sockaddr *)&peer));
    hd_addr_normalize(ss);
}

void relay_conn_reject(struct relay_conn *c, enum relay_reject why)
{
    static const char *const reasons[RELAY_REJECT_COUNT] = {
        [RELAY_REJECT_BLOCKED] = "blocked address (blocklist.txt)",
        [RELAY_REJECT_KEY] = "wrong key",
        [RELAY_REJECT_PROTO] = "not a relay request",
        [RELAY_REJECT_TOOBIG] = "request too large",
        [RELAY_REJECT_TIMEOUT] = "no request in time",
        [RELAY_REJECT_UNPAIRED] = "no partner in time",
        [RELAY_REJECT_OVERLOAD] = "relay overloaded",
    };
    struct sockaddr_storage ss;
    char tag[17] = "";

    c->relay->st.rejected[why]++;
    /* leaving before pairing is no refusal (and what port checks do) */
    if (c->relay->cfg.rejects != NULL && why != RELAY_REJECT_EOF) {
        relay_conn_addr(c, &ss);
        if (c->uuid != NULL)
            relay_uuid_tag(c->uuid, tag);
        rejects_add(c->relay->cfg.rejects, "relay", reasons[why],
                    (struct sockaddr *)&ss, tag);
    }
    relay_conn_close(c);
}

/*
 * After a read of unpaired c: count its buffers, and while the unpaired
 * connections hold more than RELAY_UNPAIRED_BUDGET, close the newest
 * (r->conns starts with the newest).  c may be among them: the caller
 * checks c->closing.
 */
void relay_unpaired_update(struct relay_conn *c)
{
    struct relay *r = c->relay;
    struct relay_conn *o;
    size_t held;

    if (c->closing || c->state == CONN_PAIRED)
        return;
    held = (c->buf ? c->cap : 0) + (c->rbuf ? WS_READ_CHUNK : 0);
    r->unpaired_bytes += held - c->held;
    c->held = held;
    for (o = r->conns; o != NULL && r->unpaired_bytes > RELAY_UNPAIRED_BUDGET;
         o = o->next) {
        if (o->closing || o->state == CONN_PAIRED || o->held == 0)
            continue;
        hd_warn(MOD,
                "unpaired connections hold over %u MiB: closing the newest, "
                "%s",
                RELAY_UNPAIRED_BUDGET >> 20, o->name);
        relay_conn_reject(o, RELAY_REJECT_OVERLOAD);
    }
}

/* ---- reading state ---- */

void relay_conn_update_reading(struct relay_conn *c)
{
    int want, r;

    if (c->closing)
        return;
    if (c->state == CONN_PAIRED && c->pair->splice) {
        relay_splice_update(c);
        return;
    }
    switch (c->state) {
    case CONN_HELLO:
        want = 1;
        break;
    case CONN_WAITING:
        /* a WebSocket side's buffer grows by whole messages */
        want = c->tp->message_based ? c->end < c->relay->cfg.buf_size
                                    : c->end < c->cap;
        break;
    default:
        want = !c->wpending && !c->throttled && !c->eof && !c->pair->draining &&
               (c->tp->message_based || c->end < c->cap);
        break;
    }
    if (want && !c->reading) {
        if ((r = c->tp->resume(c)) < 0) {
            hd_info(MOD, "%s: cannot read: %s", c->name, hd_strerror(r));
            if (c->pair)
                relay_pair_close(c->pair, "read error");
            else
                relay_conn_close(c);
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        c->tp->pause(c);
        c->reading = 0;
    }
}

/* ---- pairs ---- */

void relay_pair_close(struct relay_pair *p, const char *why)
{
    struct relay *r = p->relay;

    if (p->closing)
        return;
    p->closing = 1;
    r->st.pairs_active--;
    hd_info(MOD, "pair %s <-> %s closed (%s): %llu bytes in %llu ms",
            p->a->name, p->b->name, why, (unsigned long long)p->bytes,
            (unsigned long long)(uv_now(r->loop) - p->started));
    relay_conn_close(p->a);
    relay_conn_close(p->b);
    uv_close((uv_handle_t *)&p->timer, pair_timer_closed);
}

/* While draining: close once nothing is left to write either way. */
void relay_pair_maybe_finish(struct relay_pair *p)
{
    if (!p->closing && p->draining && !p->a->wpending && !p->b->wpending &&
        !p->a->piped && !p->b->piped)
        relay_pair_close(p, p->a->eof ? "ended by first" : "ended by second");
}

/* All of c's buffer is out: empty it, and give back what a big WebSocket
 * message made it grow to (TCP sides allocate it again on their next read). */
static void buf_reset(struct relay_conn *c)
{
    c->start = c->end = 0;
    if (c->cap > c->relay->cfg.buf_size) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
}

/*
 * Hand c's pending bytes to its message-based peer, one message per frame:
 * a WebSocket side's buffer holds complete frames only; a TCP side's
 * bytes go through its frame decoder, which keeps a partial frame.
 * Returns 0 or a negative error (after one log line for bad input).
 */
static int forward_messages(struct relay_conn *c)
{
    struct relay_conn *dst = c->peer;
    const uint8_t *p;
    size_t hl, pl, n;
    int r;

    if (c->tp->message_based) {
        while (c->start < c->end) {
            p = (const uint8_t *)c->buf + c->start;
            n = c->end - c->start;
            if (hd_frame_parse_header(p, n, &hl, &pl) != 1 || pl > n - hl)
                return HD_EPROTO; /* cannot be: we framed them ourselves */
            if ((r = dst->tp->send(dst, c, (const char *)p + hl, pl)) < 0)
                return r;
            c->start += hl + pl;
        }
        return 0;
    }
    if (!c->dec_init) {
        hd_frame_decoder_init(&c->dec, HD_RELAY_WS_MAX_MESSAGE);
        c->dec_init = 1;
    }
    r = hd_frame_decoder_feed(&c->dec, c->buf + c->start, c->end - c->start);
    c->start = c->end;
    while (r == 0 && (r = hd_frame_decoder_next(&c->dec, &p, &n)) == 1) {
        if ((r = dst->tp->send(dst, c, (const char *)p, n)) < 0)
            return r;
        r = 0;
    }
    if (r == HD_ETOOBIG) {
        hd_info(MOD, "%s sent a frame over %d bytes for WebSocket peer %s",
                c->name, HD_RELAY_WS_MAX_MESSAGE, dst->name);
        return r;
    }
    if (r == 0 && hd_frame_decoder_capacity(&c->dec) > DEC_KEEP_MAX &&
        (hd_frame_decoder_pending(&c->dec, &n), n == 0)) {
        hd_frame_decoder_cleanup(&c->dec);
        c->dec_init = 0;
    }
    return r;
}

/*
 * Send c's pending bytes to its peer: raw to a TCP peer (TCP <-> TCP, or a
 * WebSocket side's messages already framed), message by message to a
 * WebSocket peer.
 */
void relay_forward(struct relay_conn *c)
{
    struct relay_conn *dst = c->peer;
    int r;

    if (c->start < c->end && !c->wpending) {
        if (dst->tp->message_based) {
            if ((r = forward_messages(c)) < 0) {
                hd_debug(MOD, "to %s: %s", dst->name, hd_strerror(r));
                relay_pair_close(c->pair, r == HD_ETOOBIG ? "frame too big"
                                                          : "write error");
                return;
            }
            if (dst->tp->queued(dst) > 0)
                c->wpending = 1; /* the buffer is free, but wait */
            buf_reset(c);
        } else {
            r = dst->tp->send(dst, c, c->buf + c->start, c->end - c->start);
            if (r < 0) {
                hd_debug(MOD, "write to %s: %s", dst->name, hd_strerror(r));
                relay_pair_close(c->pair, "write error");
                return;
            }
            c->start += (size_t)r;
            if (c->start < c->end)
                c->wpending = 1;
            else
                buf_reset(c);
        }
    }
    relay_conn_update_reading(c);
}

void relay_conn_write_done(struct relay_conn *src, int status)
{
    struct relay_pair *p = src->pair;

    src->wpending = 0;
    if (p->closing)
        return;
    if (status < 0) {
        hd_debug(MOD, "write to %s: %s", src->peer->name, hd_strerror(status));
        relay_pair_close(p, "write error");
        return;
    }
    buf_reset(src);
    relay_conn_update_reading(src);
    relay_pair_maybe_finish(p);
}

/*
 * A relay uuid is a bearer secret (whoever presents it is paired): logs
 * name it by a short hash instead, BLAKE2b-64 in hex (what
 * `printf %s UUID | b2sum -l 64` prints), enough to match the two sides.
 */
const char *relay_uuid_tag(const char *uuid, char out[17])
{
    uint8_t h[8];

    crypto_generichash(h, sizeof(h), (const uint8_t *)uuid, strlen(uuid), NULL,
                       0);
    sodium_bin2hex(out, 17, h, sizeof(h));
    return out;
}

static void pair_start(struct relay_conn *first, struct relay_conn *second)
{
    struct relay *r = second->relay;
    struct relay_pair *p;
    uint64_t now = uv_now(r->loop);
    struct relay_conn *sides[2] = { first, second };
    char tag[17];
    int i;

    if (!(p = calloc(1, sizeof(*p)))) {
        hd_error(MOD, "out of memory pairing %s", second->name);
        relay_conn_close(first);
        relay_conn_close(second);
        return;
    }
    p->relay = r;
    p->a = first;
    p->b = second;
    p->refs = 3;
    p->started = p->last_active = now;
    uv_timer_init(r->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, relay_pair_tick, r->tick_ms, r->tick_ms);
    relay_pair_apply_limits(p, 1);
    p->bucket.tokens = p->bucket.burst;
    for (i = 0; i < 2; i++) {
        sides[i]->pair = p;
        sides[i]->peer = sides[1 - i];
        sides[i]->state = CONN_PAIRED;
        uv_timer_stop(&sides[i]->timer);
        unpaired_release(sides[i]);
        /* paired: a WebSocket side may now send messages of any size */
        if (sides[i]->ws != NULL)
            ws_set_max_message(sides[i]->ws, HD_RELAY_WS_MAX_MESSAGE);
    }
    r->st.pairs_active++;
    r->st.pairs_total++;
    if (!r->cfg.no_splice && first->tp == &relay_tcp_transport &&
        second->tp == &relay_tcp_transport && relay_splice_setup(first) == 0 &&
        relay_splice_setup(second) == 0) {
        p->splice = 1;
        for (i = 0; i < 2; i++) {
            if (sides[i]->reading) {
                sides[i]->tp->pause(sides[i]);
                sides[i]->reading = 0;
            }
        }
    }
    hd_info(MOD, "paired %s%s <-> %s%s (uuid hash %s)%s%s",
            first->tp->message_based ? "ws " : "", first->name,
            second->tp->message_based ? "ws " : "", second->name,
            relay_uuid_tag(first->uuid, tag),
            p->limited ? ", limited speed" : "", p->splice ? "" : ", copying");
    for (i = 0; i < 2 && !p->closing; i++) {
        if (sides[i]->end > sides[i]->start) {
            relay_account(sides[i], sides[i]->end - sides[i]->start);
            relay_forward(sides[i]);
        } else {
            relay_conn_update_reading(sides[i]);
        }
    }
}

/* ---- handshake ---- */

void relay_deadline_cb(uv_timer_t *t)
{
    struct relay_conn *c = t->data;
    struct relay *r = c->relay;
    char tag[17];

    if (c->state == CONN_HELLO) {
        hd_info(MOD, "no request from %s within %u ms", c->name,
                r->cfg.first_frame_ms);
        relay_conn_reject(c, RELAY_REJECT_TIMEOUT);
    } else if (c->state == CONN_WAITING) {
        hd_info(MOD, "no partner for %s (uuid hash %s) within %u ms", c->name,
                relay_uuid_tag(c->uuid, tag), r->cfg.pair_wait_ms);
        relay_conn_reject(c, RELAY_REJECT_UNPAIRED);
    }
}

/* Check the RequestRelay; returns 0 or the reject reason + 1. */
int relay_hello_check(struct relay_conn *c, const uint8_t *p, size_t n)
{
    struct relay *r = c->relay;
    Hbb__RendezvousMessage *m;
    const Hbb__RequestRelay *rr;
    const char *k;
    size_t ulen;
    int why = 0;

    m = hbb__rendezvous_message__unpack(NULL, n, p);
    if (!m) {
        hd_info(MOD, "undecodable request (%zu bytes) from %s", n, c->name);
        return RELAY_REJECT_PROTO + 1;
    }
    if (m->union_case != HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY) {
        hd_info(MOD, "unexpected message %d from %s", (int)m->union_case,
                c->name);
        why = RELAY_REJECT_PROTO + 1;
        goto out;
    }
    rr = m->request_relay;
    k = rr->licence_key ? rr->licence_key : "";
    if (r->key_len &&
        (strlen(k) != r->key_len || sodium_memcmp(k, r->key, r->key_len))) {
        /* fixed format for fail2ban */
        hd_warn(MOD, "key mismatch from %s", c->ipstr);
        why = RELAY_REJECT_KEY + 1;
        goto out;
    }
    ulen = rr->uuid ? strlen(rr->uuid) : 0;
    if (ulen == 0 || ulen > MAX_UUID_LEN) {
        hd_info(MOD, "%s uuid from %s", ulen ? "oversized" : "empty", c->name);
        why = RELAY_REJECT_PROTO + 1;
        goto out;
    }
    if (!(c->uuid = strdup(rr->uuid))) {
        why = RELAY_REJECT_OVERLOAD + 1;
        goto out;
    }
out:
    hbb__rendezvous_message__free_unpacked(m, NULL);
    return why;
}

static void hello_step(struct relay_conn *c)
{
    struct relay *r = c->relay;
    size_t hlen, plen, total, left, ncap;
    char *nb;
    int why;

    /* The request is parsed in place (the buffer then carries on as this
     * side's relay buffer), so only the header parser of frame.h is used. */
    if (hd_frame_parse_header((const uint8_t *)c->buf, c->end, &hlen, &plen) !=
        1)
        return;
    if (plen > HD_RELAY_MAX_FIRST_FRAME) {
        hd_info(MOD, "request of %zu bytes from %s: too big", plen, c->name);
        relay_conn_reject(c, RELAY_REJECT_TOOBIG);
        return;
    }
    total = hlen + plen;
    if (total > c->cap) {
        if (!(nb = realloc(c->buf, total))) {
            relay_conn_reject(c, RELAY_REJECT_OVERLOAD);
            return;
        }
        c->buf = nb;
        c->cap = total;
    }
    if (c->end < total)
        return;
    if ((why = relay_hello_check(c, (const uint8_t *)c->buf + hlen, plen)) !=
        0) {
        relay_conn_reject(c, (enum relay_reject)(why - 1));
        return;
    }
    /* Keep what followed the request, in a buffer of the relay size. */
    left = c->end - total;
    memmove(c->buf, c->buf + total, left);
    c->start = 0;
    c->end = left;
    ncap = left > r->cfg.buf_size ? left : r->cfg.buf_size;
    if (ncap != c->cap) {
        if (!(nb = realloc(c->buf, ncap))) {
            relay_conn_reject(c, RELAY_REJECT_OVERLOAD);
            return;
        }
        c->buf = nb;
        c->cap = ncap;
    }
    relay_hello_done(c);
}

/* c's RequestRelay was accepted: pair it, or let it wait for its partner. */
void relay_hello_done(struct relay_conn *c)
{
    struct relay *r = c->relay;
    struct relay_conn *other;
    char tag[17];

    c->uuid_hash = uuid_hash(r, c->uuid);
    other = map_take(r, c->uuid, c->uuid_hash);
    if (other) {
        pair_start(other, c);
        return;
    }
    if (map_insert(r, c) != 0) {
        relay_conn_reject(c, RELAY_REJECT_OVERLOAD);
        return;
    }
    c->state = CONN_WAITING;
    hd_debug(MOD, "%s waits for uuid hash %s", c->name,
             relay_uuid_tag(c->uuid, tag));
    uv_timer_start(&c->timer, relay_deadline_cb, r->cfg.pair_wait_ms, 0);
    relay_conn_update_reading(c);
}

void relay_conn_on_read(struct relay_conn *c, size_t n)
{
    c->end += n;
    switch (c->state) {
    case CONN_HELLO:
        hello_step(c);
        relay_unpaired_update(c);
        break;
    case CONN_WAITING:
        relay_unpaired_update(c);
        relay_conn_update_reading(c);
        break;
    case CONN_PAIRED:
        relay_account(c, n);
        relay_forward(c);
        break;
    }
}

void relay_conn_on_eof(struct relay_conn *c, int err)
{
    struct relay_pair *p = c->pair;

    if (c->state != CONN_PAIRED) {
        if (err == UV_ENOBUFS)
            hd_error(MOD, "out of memory reading %s", c->name);
        else /* sent nothing at all: a port check (the admin page's) */
            hd_log(c->end == 0 && c->state == CONN_HELLO ? HD_LOG_DEBUG
                                                         : HD_LOG_INFO,
                   MOD, "%s left before pairing (%s)", c->name,
                   err == UV_EOF ? "eof" : hd_strerror(err));
        relay_conn_reject(c, RELAY_REJECT_EOF);
        return;
    }
    c->eof = 1;
    p->draining = 1;
    relay_conn_update_reading(p->a);
    relay_conn_update_reading(p->b);
    relay_pair_maybe_finish(p);
}

/*
 * Relay role (hbbr replacement): first-frame handshake, pairing by uuid,
 * raw copy with backpressure, token-bucket bandwidth limits, black/block
 * lists.  See relay.h for the contract.
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
 * takes that buffer raw; towards a WebSocket partner forward() splits the
 * buffer into messages again (frames of a TCP side go through a bounded
 * hd_frame_decoder, as they may arrive in pieces).  Messages are appended
 * only after ws_feed returns to the read callback (never while a write
 * still points into the buffer, since a side is not read while its bytes
 * are queued), then accounted and forwarded together.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "net.h"
#include "rendezvous.pb-c.h"
#include "server/limit.h"
#include "server/relay.h"
#include "server/ws.h"

#define MOD               "relay"
#define HELLO_INITIAL_CAP 512
#define HELLO_MAX_CAP     (HD_RELAY_MAX_FIRST_FRAME + 4)
#define MAX_UUID_LEN      128
#define MAX_LIST_FILE     (64 * 1024 * 1024)
#define BURST_MS          50
#define BYTES_PER_MBPS_MS (1024.0 * 1024.0 / 8.0 / 1000.0)
#define WS_READ_CHUNK     (64 * 1024)
/* A WebSocket side's buffer: one message being completed by the last read
 * plus the small ones of that read (each with a header): never more. */
#define WS_BUF_MAX (HD_RELAY_WS_MAX_MESSAGE + 4 + 3 * WS_READ_CHUNK)
/* A decoder that held a frame above this is freed once empty. */
#define DEC_KEEP_MAX (1024 * 1024)

/*
 * Unpaired connections (waiting for their request or their partner) are
 * what anyone can open: at most RELAY_UNPAIRED_PER_IP per source address
 * (IPv4, IPv6 /64), and their buffers together at most
 * RELAY_UNPAIRED_BUDGET bytes (when over, the newest unpaired connections
 * are closed first).  Each holds at most about 64 KiB of request, 64 KiB
 * of WebSocket read buffer, one 64 KiB WebSocket message in assembly and
 * buf_size + 64 KiB of early data: under 300 KiB (see relay.h).
 */
#define RELAY_UNPAIRED_PER_IP 64
#define RELAY_UNPAIRED_BUDGET (64u * 1024 * 1024)

enum conn_state { CONN_HELLO, CONN_WAITING, CONN_PAIRED };

struct relay_conn;

/*
 * One peer's transport, as seen by the relay core.  Contract of each entry:
 * - send: write n bytes at buf (buf belongs to src, the partner) to dst.
 *   Returns n when all was written at once; 0..n-1 when the rest was
 *   queued (buf stays valid; the transport calls conn_write_done(src,
 *   status) when it completes or is cancelled); or a negative error.
 *   A message-based transport sends one message per call, takes it whole
 *   (copied) and returns n; the caller then asks queued() whether the
 *   socket still holds bytes, and if so marks src wpending: the transport
 *   calls conn_write_done(src, status) once its queue is empty.
 * - pause / resume: stop / start delivering read data (conn_on_read,
 *   conn_on_eof).  resume returns 0 or a negative error.
 * - close: close the transport's handles; each calls conn_handle_closed.
 */
struct relay_transport {
    const char *name;
    int message_based;
    int (*send)(struct relay_conn *dst, struct relay_conn *src, const char *buf,
                size_t n);
    void (*pause)(struct relay_conn *c);
    int (*resume)(struct relay_conn *c);
    void (*close)(struct relay_conn *c);
    /* message-based only: non-zero while writes are in flight */
    size_t (*queued)(const struct relay_conn *c);
};

struct relay_bucket {
    double rate;   /* bytes per ms; 0 = unlimited */
    double burst;  /* most tokens kept */
    double tokens; /* may go negative: a read is taken whole */
    uint64_t last; /* ms (uv_now) of the last refill */
};

struct relay_conn {
    struct relay *relay;
    const struct relay_transport *tp;
    uv_tcp_t tcp;     /* TCP transport */
    uv_timer_t timer; /* hello / pairing deadline, then throttle wake-up */
    uv_write_t wreq;  /* this side's buffer, being written to the peer */
    uv_poll_t poll;   /* splice mode: readiness of sfd */
    int sfd;          /* splice mode: dup of the socket (libuv owns the fd) */
    int pipe[2];      /* splice mode: bytes read from this side */
    size_t piped, pipe_cap;
    int poll_events;
    struct relay_conn *prev, *next; /* relay->conns */
    struct relay_conn *map_next;    /* waiting map chain */
    struct relay_conn *peer;
    struct relay_pair *pair;
    char *buf; /* bytes read from this side: [start, end) not yet sent */
    size_t cap, start, end;
    char *uuid;
    uint64_t uuid_hash;
    struct ws *ws;               /* WebSocket transport */
    uint8_t *rbuf;               /* WebSocket: socket bytes for ws_feed */
    struct hd_frame_decoder dec; /* TCP side of a WebSocket pair */
    unsigned wq;                 /* WebSocket: uv_writes not completed */
    int ws_reason;               /* WebSocket: on_close reason, once ended */
    uint8_t ip[16];              /* IPv4 as ::ffff:a.b.c.d */
    char name[INET6_ADDRSTRLEN + 8]; /* "1.2.3.4:5" / "[::1]:5" */
    char ipstr[INET6_ADDRSTRLEN];    /* for fail2ban lines */
    enum conn_state state;
    int open; /* handles not yet closed */
    unsigned reading : 1, wpending : 1, throttled : 1, eof : 1, closing : 1,
        poll_init : 1, hello_ok : 1, ws_ended : 1, dec_init : 1;
    unsigned counted : 1; /* unpaired, in relay->unpaired_ip */
    size_t held;          /* unpaired: bytes counted in unpaired_bytes */
    uint8_t ipkey[17], ipkey_len;
};

struct relay_pair {
    struct relay *relay;
    struct relay_conn *a, *b;
    uv_timer_t timer; /* tick: idle, lists, downgrade */
    struct relay_bucket bucket;
    uint64_t started, last_active, bytes;
    int refs;
    unsigned draining : 1, closing : 1, downgraded : 1, limited : 1, splice : 1;
};

struct relay_iplist {
    uint8_t (*ips)[16]; /* sorted */
    size_t n;
    int present;
    struct timespec mtime;
    off_t size;
    ino_t ino;
};

struct relay {
    uv_loop_t *loop;
    struct relay_config cfg; /* strings below are our copies */
    char *key, *data_dir, *bind_addr, *trusted_proxy;
    size_t key_len;
    uv_tcp_t listener, ws_listener;
    uv_timer_t list_timer;
    int open_handles;
    int listener_init, ws_listener_init; /* not bit-fields: bind_listener */
    unsigned timer_init : 1, stopped : 1, free_pending : 1;
    int port, ws_port;
    struct relay_conn *conns;
    uint64_t nconns;
    struct relay_conn **map;
    size_t map_size, map_count;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    struct relay_bucket total;
    struct relay_iplist black, block;
    struct relay_stats st;
    unsigned tick_ms;
    struct limit_count unpaired_ip; /* unpaired connections per address */
    size_t unpaired_bytes;          /* buffers of unpaired connections */
};

static const struct relay_transport tcp_transport;
static const struct relay_transport ws_transport;

static void conn_update_reading(struct relay_conn *c);
static void conn_close(struct relay_conn *c);
static void pair_close(struct relay_pair *p, const char *why);
static void forward(struct relay_conn *c);
static void relay_maybe_free(struct relay *r);
static void splice_update(struct relay_conn *c);
static void splice_poll_cb(uv_poll_t *h, int status, int events);

/* ---- small helpers ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void bucket_set(struct relay_bucket *b, double mbps, size_t min_burst,
                       uint64_t now)
{
    b->rate = mbps > 0 ? mbps * BYTES_PER_MBPS_MS : 0;
    b->burst = b->rate * BURST_MS;
    if (b->burst < (double)min_burst)
        b->burst = (double)min_burst;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last = now;
}

static void bucket_take(struct relay_bucket *b, size_t n, uint64_t now)
{
    if (b->rate == 0)
        return;
    if (now > b->last) {
        b->tokens += (double)(now - b->last) * b->rate;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last = now;
    }
    b->tokens -= (double)n;
}

/* Milliseconds until the bucket is out of debt (0 = may read now). */
static uint64_t bucket_wait(const struct relay_bucket *b, uint64_t now)
{
    double t;

    if (b->rate == 0)
        return 0;
    t = b->tokens + (double)(now > b->last ? now - b->last : 0) * b->rate;
    if (t >= 0)
        return 0;
    return (uint64_t)(-t / b->rate) + 1;
}

static void ip_from_sockaddr(const struct sockaddr_storage *ss, uint8_t ip[16],
                             char *str, size_t strcap, char *name,
                             size_t namecap)
{
    static const uint8_t mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };
    int port = 0, v6 = 0;

    memset(ip, 0, 16);
    snprintf(str, strcap, "?");
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        memcpy(ip, mapped, 12);
        memcpy(ip + 12, &s4->sin_addr, 4);
        port = ntohs(s4->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        memcpy(ip, &s6->sin6_addr, 16);
        port = ntohs(s6->sin6_port);
    }
    if (memcmp(ip, mapped, 12) == 0) {
        inet_ntop(AF_INET, ip + 12, str, (socklen_t)strcap);
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, ip, str, (socklen_t)strcap);
        v6 = 1;
    }
    if (v6)
        snprintf(name, namecap, "[%s]:%d", str, port);
    else
        snprintf(name, namecap, "%s:%d", str, port);
}

/* ---- IP lists ---- */

static int ip_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static int iplist_has(const struct relay_iplist *l, const uint8_t ip[16])
{
    return l->n && bsearch(ip, l->ips, l->n, 16, ip_cmp) != NULL;
}

static int parse_ip(const char *s, uint8_t ip[16])
{
    struct in_addr a4;

    if (inet_pton(AF_INET, s, &a4) == 1) {
        memset(ip, 0, 10);
        ip[10] = ip[11] = 0xff;
        memcpy(ip + 12, &a4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, s, ip) == 1 ? 0 : -1;
}

/* Parse text into a sorted, deduplicated list.  Returns 0 or -ENOMEM. */
static int iplist_parse(char *text, size_t len, uint8_t (**out)[16],
                        size_t *n_out, size_t *bad_out)
{
    uint8_t(*ips)[16] = NULL;
    size_t n = 0, cap = 0, bad = 0, i = 0;

    *out = NULL;
    *n_out = *bad_out = 0;
    while (i < len) {
        size_t eol = i, s, e;
        char tok[INET6_ADDRSTRLEN + 1];

        while (eol < len && text[eol] != '\n')
            eol++;
        s = i;
        while (s < eol && (text[s] == ' ' || text[s] == '\t'))
            s++;
        e = s;
        while (e < eol && text[e] != ' ' && text[e] != '\t' && text[e] != '#' &&
               text[e] != '\r')
            e++;
        i = eol + 1;
        if (e == s)
            continue;
        if (e - s >= sizeof(tok)) {
            bad++;
            continue;
        }
        memcpy(tok, text + s, e - s);
        tok[e - s] = '\0';
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            void *p = realloc(ips, ncap * 16);
            if (!p) {
                free(ips);
                return -ENOMEM;
            }
            ips = p;
            cap = ncap;
        }
        if (parse_ip(tok, ips[n]) != 0) {
            bad++;
            continue;
        }
        n++;
    }
    if (n > 1) {
        size_t w = 1;
        qsort(ips, n, 16, ip_cmp);
        for (i = 1; i < n; i++)
            if (memcmp(ips[i], ips[w - 1], 16) != 0)
                memmove(ips[w++], ips[i], 16);
        n = w;
    }
    *out = ips;
    *n_out = n;
    *bad_out = bad;
    return 0;
}

static int iplist_load(struct relay *r, struct relay_iplist *l,
                       const char *file, int force)
{
    char path[4096];
    struct stat st;
    char *text = NULL;
    uint8_t(*ips)[16] = NULL;
    size_t n = 0, bad = 0, got = 0;
    int fd = -1, ret;

    if (!r->data_dir || !r->data_dir[0])
        return 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", r->data_dir, file) >=
        sizeof(path))
        return -ENAMETOOLONG;
    if (stat(path, &st) != 0) {
        ret = -errno;
        if (ret != -ENOENT) {
            hd_warn(MOD, "%s: %s", path, strerror(errno));
            return ret;
        }
        if (l->present)
            hd_info(MOD, "%s removed: list cleared", path);
        free(l->ips);
        memset(l, 0, sizeof(*l));
        return 0;
    }
    if (!force && l->present && st.st_mtim.tv_sec == l->mtime.tv_sec &&
        st.st_mtim.tv_nsec == l->mtime.tv_nsec && st.st_size == l->size &&
        st.st_ino == l->ino)
        return 0;
    if (st.st_size > MAX_LIST_FILE) {
        hd_warn(MOD, "%s: larger than %d bytes, not loaded", path,
                MAX_LIST_FILE);
        ret = HD_ETOOBIG;
        goto out;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        ret = -errno;
        hd_warn(MOD, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!(text = malloc((size_t)st.st_size + 1))) {
        ret = -ENOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, text + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            ret = -errno;
            hd_warn(MOD, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    if ((ret = iplist_parse(text, got, &ips, &n, &bad)) != 0)
        goto out;
    free(l->ips);
    l->ips = ips;
    ips = NULL;
    l->n = n;
    l->present = 1;
    l->mtime = st.st_mtim;
    l->size = st.st_size;
    l->ino = st.st_ino;
    if (bad)
        hd_warn(MOD, "%s: %zu addresses, %zu unreadable lines ignored", path, n,
                bad);
    else
        hd_info(MOD, "%s: %zu addresses", path, n);
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    free(text);
    free(ips);
    return ret;
}

static int lists_load(struct relay *r, int force)
{
    int r1 = iplist_load(r, &r->black, "blacklist.txt", force);
    int r2 = iplist_load(r, &r->block, "blocklist.txt", force);

    return r1 ? r1 : r2;
}

static void list_timer_cb(uv_timer_t *t)
{
    lists_load(t->data, 0);
}

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

static void conn_handle_closed(uv_handle_t *h)
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

static void splice_close_fds(struct relay_conn *c)
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
    splice_close_fds(h->data);
    conn_handle_closed(h);
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

static void conn_close(struct relay_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    unpaired_release(c);
    if (c->state == CONN_WAITING)
        map_unlink(c->relay, c);
    c->reading = 0;
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    if (c->poll_init)
        uv_close((uv_handle_t *)&c->poll, poll_closed);
    c->tp->close(c);
}

static void conn_reject(struct relay_conn *c, enum relay_reject why)
{
    c->relay->st.rejected[why]++;
    conn_close(c);
}

/*
 * After a read of unpaired c: count its buffers, and while the unpaired
 * connections hold more than RELAY_UNPAIRED_BUDGET, close the newest
 * (r->conns starts with the newest).  c may be among them: the caller
 * checks c->closing.
 */
static void unpaired_update(struct relay_conn *c)
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
        conn_reject(o, RELAY_REJECT_OVERLOAD);
    }
}

/* ---- TCP transport ---- */

static void tcp_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct relay_conn *c = h->data;

    if (c->cap == 0) {
        size_t cap =
            c->state == CONN_HELLO ? HELLO_INITIAL_CAP : c->relay->cfg.buf_size;
        if ((c->buf = malloc(cap)) != NULL)
            c->cap = cap;
    }
    *buf = uv_buf_init(c->buf + c->end, (unsigned)(c->cap - c->end));
}

static void conn_on_read(struct relay_conn *c, size_t n);
static void conn_on_eof(struct relay_conn *c, int err);

static void tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct relay_conn *c = s->data;

    if (nread > 0)
        conn_on_read(c, (size_t)nread);
    else if (nread < 0)
        conn_on_eof(c, (int)nread);
}

static void conn_write_done(struct relay_conn *src, int status);

static void tcp_write_cb(uv_write_t *req, int status)
{
    conn_write_done(req->data, status);
}

static int tcp_send(struct relay_conn *dst, struct relay_conn *src,
                    const char *buf, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)n);
    int r;

    r = uv_try_write((uv_stream_t *)&dst->tcp, &b, 1);
    if (r == UV_EAGAIN)
        r = 0;
    if (r < 0 || (size_t)r == n)
        return r;
    b = uv_buf_init((char *)buf + r, (unsigned)(n - (size_t)r));
    src->wreq.data = src;
    int e = uv_write(&src->wreq, (uv_stream_t *)&dst->tcp, &b, 1, tcp_write_cb);
    return e < 0 ? e : r;
}

static void tcp_pause(struct relay_conn *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static int tcp_resume(struct relay_conn *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc_cb, tcp_read_cb);
}

static void tcp_close(struct relay_conn *c)
{
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static const struct relay_transport tcp_transport = {
    .name = "tcp",
    .message_based = 0,
    .send = tcp_send,
    .pause = tcp_pause,
    .resume = tcp_resume,
    .close = tcp_close,
};

/* ---- reading state ---- */

static void conn_update_reading(struct relay_conn *c)
{
    int want, r;

    if (c->closing)
        return;
    if (c->state == CONN_PAIRED && c->pair->splice) {
        splice_update(c);
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
                pair_close(c->pair, "read error");
            else
                conn_close(c);
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        c->tp->pause(c);
        c->reading = 0;
    }
}

/* ---- pairs ---- */

static void pair_close(struct relay_pair *p, const char *why)
{
    struct relay *r = p->relay;

    if (p->closing)
        return;
    p->closing = 1;
    r->st.pairs_active--;
    hd_info(MOD, "pair %s <-> %s closed (%s): %llu bytes in %llu ms",
            p->a->name, p->b->name, why, (unsigned long long)p->bytes,
            (unsigned long long)(uv_now(r->loop) - p->started));
    conn_close(p->a);
    conn_close(p->b);
    uv_close((uv_handle_t *)&p->timer, pair_timer_closed);
}

/* While draining: close once nothing is left to write either way. */
static void pair_maybe_finish(struct relay_pair *p)
{
    if (!p->closing && p->draining && !p->a->wpending && !p->b->wpending &&
        !p->a->piped && !p->b->piped)
        pair_close(p, p->a->eof ? "ended by first" : "ended by second");
}

static void pair_apply_limits(struct relay_pair *p, int force)
{
    struct relay *r = p->relay;
    int limited = p->downgraded || iplist_has(&r->black, p->a->ip) ||
                  iplist_has(&r->black, p->b->ip);

    if (!force && limited == (int)p->limited)
        return;
    p->limited = limited;
    bucket_set(&p->bucket, limited ? r->cfg.limit_mbps : r->cfg.single_mbps,
               r->cfg.buf_size, uv_now(r->loop));
}

static void pair_tick(uv_timer_t *t)
{
    struct relay_pair *p = t->data;
    struct relay *r = p->relay;
    uint64_t now = uv_now(r->loop), elapsed = now - p->started;

    if (now - p->last_active >= r->cfg.idle_ms) {
        pair_close(p, "idle");
        return;
    }
    if (iplist_has(&r->block, p->a->ip) || iplist_has(&r->block, p->b->ip)) {
        pair_close(p, "blocked");
        return;
    }
    /* The reference's rule: after downgrade_start_ms, a pair whose average
     * since pairing is above threshold * single speed is capped for good. */
    if (!p->downgraded && r->cfg.single_mbps > 0 &&
        elapsed > r->cfg.downgrade_start_ms &&
        (double)p->bytes * 8.0 >
            (double)elapsed * (r->cfg.single_mbps * 1024 * 1024 *
                               r->cfg.downgrade_threshold / 1000.0)) {
        p->downgraded = 1;
        r->st.pairs_downgraded++;
        hd_info(MOD, "pair %s <-> %s downgraded to %g Mb/s after %llu ms",
                p->a->name, p->b->name, r->cfg.limit_mbps,
                (unsigned long long)elapsed);
    }
    pair_apply_limits(p, 0);
}

static void throttle_cb(uv_timer_t *t)
{
    struct relay_conn *c = t->data;
    struct relay *r = c->relay;
    uint64_t now = uv_now(r->loop), w1, w2;

    w1 = bucket_wait(&c->pair->bucket, now);
    w2 = bucket_wait(&r->total, now);
    if (w1 || w2) {
        uv_timer_start(&c->timer, throttle_cb, w1 > w2 ? w1 : w2, 0);
        return;
    }
    c->throttled = 0;
    conn_update_reading(c);
}

/* n new bytes from c are ready to go: count them and take tokens. */
static void account(struct relay_conn *c, size_t n)
{
    struct relay_pair *p = c->pair;
    struct relay *r = c->relay;
    uint64_t now = uv_now(r->loop), w1, w2;

    p->bytes += n;
    p->last_active = now;
    r->st.bytes_relayed += n;
    bucket_take(&p->bucket, n, now);
    bucket_take(&r->total, n, now);
    w1 = bucket_wait(&p->bucket, now);
    w2 = bucket_wait(&r->total, now);
    if (w1 || w2) {
        c->throttled = 1;
        uv_timer_start(&c->timer, throttle_cb, w1 > w2 ? w1 : w2, 0);
    }
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
static void forward(struct relay_conn *c)
{
    struct relay_conn *dst = c->peer;
    int r;

    if (c->start < c->end && !c->wpending) {
        if (dst->tp->message_based) {
            if ((r = forward_messages(c)) < 0) {
                hd_debug(MOD, "to %s: %s", dst->name, hd_strerror(r));
                pair_close(c->pair,
                           r == HD_ETOOBIG ? "frame too big" : "write error");
                return;
            }
            if (dst->tp->queued(dst) > 0)
                c->wpending = 1; /* the buffer is free, but wait */
            buf_reset(c);
        } else {
            r = dst->tp->send(dst, c, c->buf + c->start, c->end - c->start);
            if (r < 0) {
                hd_debug(MOD, "write to %s: %s", dst->name, hd_strerror(r));
                pair_close(c->pair, "write error");
                return;
            }
            c->start += (size_t)r;
            if (c->start < c->end)
                c->wpending = 1;
            else
                buf_reset(c);
        }
    }
    conn_update_reading(c);
}

static void conn_write_done(struct relay_conn *src, int status)
{
    struct relay_pair *p = src->pair;

    src->wpending = 0;
    if (p->closing)
        return;
    if (status < 0) {
        hd_debug(MOD, "write to %s: %s", src->peer->name, hd_strerror(status));
        pair_close(p, "write error");
        return;
    }
    buf_reset(src);
    conn_update_reading(src);
    pair_maybe_finish(p);
}

/* ---- splice mode (TCP <-> TCP): socket -> pipe -> socket, no copy ---- */

/*
 * Give c a pipe and a poll handle on a dup of its socket (libuv keeps the
 * original fd, idle, for the bytes read before pairing).  Returns 0 or a
 * negative errno; the pair then copies instead.
 */
static int splice_setup(struct relay_conn *c)
{
    struct relay *r = c->relay;
    uv_os_fd_t fd;
    int ret, sz;

    if ((ret = uv_fileno((uv_handle_t *)&c->tcp, &fd)) != 0)
        return ret;
    if ((c->sfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0 ||
        pipe2(c->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        ret = -errno;
        goto fail;
    }
    sz = r->cfg.pipe_size > (1u << 20) ? (1 << 20) : (int)r->cfg.pipe_size;
    fcntl(c->pipe[1], F_SETPIPE_SZ, sz);
    if ((sz = fcntl(c->pipe[1], F_GETPIPE_SZ)) <= 0) {
        ret = -errno;
        goto fail;
    }
    c->pipe_cap = (size_t)sz;
    if ((ret = uv_poll_init(r->loop, &c->poll, c->sfd)) != 0)
        goto fail;
    c->poll.data = c;
    c->poll_init = 1;
    c->open++;
    return 0;
fail:
    hd_debug(MOD, "%s: no splice (%s), copying", c->name, hd_strerror(ret));
    splice_close_fds(c);
    return ret;
}

/* Move c's pipe into its peer's socket.  Returns 0, or -1 after closing. */
static int splice_drain(struct relay_conn *c)
{
    while (c->piped) {
        ssize_t n = splice(c->pipe[0], NULL, c->peer->sfd, NULL, c->piped,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            c->piped -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else if (!(n < 0 && errno == EINTR)) {
            hd_debug(MOD, "write to %s: %s", c->peer->name,
                     n < 0 ? strerror(errno) : "closed");
            pair_close(c->pair, "write error");
            return -1;
        }
    }
    return 0;
}

/* Read from c's socket into its pipe, and on to the peer, while it flows. */
static void splice_fill(struct relay_conn *c)
{
    struct relay_pair *p = c->pair;
    struct relay *r = c->relay;
    size_t len = c->pipe_cap;
    int i;

    /* Under a limit, take no more than a burst at a time: one big read
     * would run ahead of the rate and then stall. */
    if (p->bucket.rate && p->bucket.burst < (double)len)
        len = (size_t)p->bucket.burst;
    if (r->total.rate && r->total.burst < (double)len)
        len = (size_t)r->total.burst;
    for (i = 0; i < 16 && !c->piped && !c->throttled; i++) {
        ssize_t n = splice(c->sfd, NULL, c->pipe[1], NULL, len,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            c->piped = (size_t)n;
            account(c, (size_t)n);
            if (splice_drain(c) < 0)
                return;
            /* a short read emptied the socket: poll again rather than
             * spend a splice() on EAGAIN (level-triggered, nothing lost) */
            if ((size_t)n < len)
                return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0)
            hd_debug(MOD, "read from %s: %s", c->name, strerror(errno));
        c->eof = 1;
        p->draining = 1;
        return;
    }
}

/* Poll for what c needs now: reading it, and writing its peer's pipe. */
static void splice_update(struct relay_conn *c)
{
    int ev = 0, ret;

    if (!c->poll_init || c->closing)
        return;
    if (c->buf && c->start == c->end) {
        /* what was read before pairing is out: splice needs no buffer */
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    if (c->start == c->end && !c->piped && !c->throttled && !c->eof &&
        !c->pair->draining)
        ev |= UV_READABLE;
    if (c->peer->piped)
        ev |= UV_WRITABLE;
    if (ev == c->poll_events)
        return;
    ret = ev ? uv_poll_start(&c->poll, ev, splice_poll_cb)
             : uv_poll_stop(&c->poll);
    c->poll_events = ev;
    if (ret < 0)
        pair_close(c->pair, "poll error");
}

static void splice_poll_cb(uv_poll_t *h, int status, int events)
{
    struct relay_conn *c = h->data;
    struct relay_pair *p = c->pair;

    if (status < 0) {
        c->poll_events = 0; /* libuv stopped the handle */
        pair_close(p, "socket error");
        return;
    }
    if (events & UV_WRITABLE) {
        struct relay_conn *src = c->peer;
        if (splice_drain(src) < 0)
            return;
        /* its pipe is empty: read on without waiting for another poll */
        if (!src->piped && !src->throttled && !src->eof && !p->draining &&
            src->start == src->end)
            splice_fill(src);
        if (p->closing)
            return;
    }
    if (events & UV_READABLE)
        splice_fill(c);
    if (p->closing)
        return;
    splice_update(p->a);
    splice_update(p->b);
    pair_maybe_finish(p);
}

/*
 * A relay uuid is a bearer secret (whoever presents it is paired): logs
 * name it by a short hash instead, BLAKE2b-64 in hex (what
 * `printf %s UUID | b2sum -l 64` prints), enough to match the two sides.
 */
static const char *uuid_tag(const char *uuid, char out[17])
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
        conn_close(first);
        conn_close(second);
        return;
    }
    p->relay = r;
    p->a = first;
    p->b = second;
    p->refs = 3;
    p->started = p->last_active = now;
    uv_timer_init(r->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, pair_tick, r->tick_ms, r->tick_ms);
    pair_apply_limits(p, 1);
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
    if (!r->cfg.no_splice && first->tp == &tcp_transport &&
        second->tp == &tcp_transport && splice_setup(first) == 0 &&
        splice_setup(second) == 0) {
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
            uuid_tag(first->uuid, tag), p->limited ? ", limited speed" : "",
            p->splice ? "" : ", copying");
    for (i = 0; i < 2 && !p->closing; i++) {
        if (sides[i]->end > sides[i]->start) {
            account(sides[i], sides[i]->end - sides[i]->start);
            forward(sides[i]);
        } else {
            conn_update_reading(sides[i]);
        }
    }
}

/* ---- handshake ---- */

static void deadline_cb(uv_timer_t *t)
{
    struct relay_conn *c = t->data;
    struct relay *r = c->relay;
    char tag[17];

    if (c->state == CONN_HELLO) {
        hd_info(MOD, "no request from %s within %u ms", c->name,
                r->cfg.first_frame_ms);
        conn_reject(c, RELAY_REJECT_TIMEOUT);
    } else if (c->state == CONN_WAITING) {
        hd_info(MOD, "no partner for %s (uuid hash %s) within %u ms", c->name,
                uuid_tag(c->uuid, tag), r->cfg.pair_wait_ms);
        conn_reject(c, RELAY_REJECT_UNPAIRED);
    }
}

/* Check the RequestRelay; returns 0 or the reject reason + 1. */
static int hello_check(struct relay_conn *c, const uint8_t *p, size_t n)
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

static void hello_done(struct relay_conn *c);

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
        conn_reject(c, RELAY_REJECT_TOOBIG);
        return;
    }
    total = hlen + plen;
    if (total > c->cap) {
        if (!(nb = realloc(c->buf, total))) {
            conn_reject(c, RELAY_REJECT_OVERLOAD);
            return;
        }
        c->buf = nb;
        c->cap = total;
    }
    if (c->end < total)
        return;
    if ((why = hello_check(c, (const uint8_t *)c->buf + hlen, plen)) != 0) {
        conn_reject(c, (enum relay_reject)(why - 1));
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
            conn_reject(c, RELAY_REJECT_OVERLOAD);
            return;
        }
        c->buf = nb;
        c->cap = ncap;
    }
    hello_done(c);
}

/* c's RequestRelay was accepted: pair it, or let it wait for its partner. */
static void hello_done(struct relay_conn *c)
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
        conn_reject(c, RELAY_REJECT_OVERLOAD);
        return;
    }
    c->state = CONN_WAITING;
    hd_debug(MOD, "%s waits for uuid hash %s", c->name, uuid_tag(c->uuid, tag));
    uv_timer_start(&c->timer, deadline_cb, r->cfg.pair_wait_ms, 0);
    conn_update_reading(c);
}

static void conn_on_read(struct relay_conn *c, size_t n)
{
    c->end += n;
    switch (c->state) {
    case CONN_HELLO:
        hello_step(c);
        unpaired_update(c);
        break;
    case CONN_WAITING:
        unpaired_update(c);
        conn_update_reading(c);
        break;
    case CONN_PAIRED:
        account(c, n);
        forward(c);
        break;
    }
}

static void conn_on_eof(struct relay_conn *c, int err)
{
    struct relay_pair *p = c->pair;

    if (c->state != CONN_PAIRED) {
        if (err == UV_ENOBUFS)
            hd_error(MOD, "out of memory reading %s", c->name);
        else
            hd_info(MOD, "%s left before pairing (%s)", c->name,
                    err == UV_EOF ? "eof" : hd_strerror(err));
        conn_reject(c, RELAY_REJECT_EOF);
        return;
    }
    c->eof = 1;
    p->draining = 1;
    conn_update_reading(p->a);
    conn_update_reading(p->b);
    pair_maybe_finish(p);
}

/* ---- WebSocket transport ---- */

static void ws_write_done(uv_stream_t *s, int status)
{
    struct relay_conn *c = s->data;

    c->wq--;
    if (c->wq == 0 && c->peer && c->peer->wpending) {
        conn_write_done(c->peer, status == UV_ECANCELED ? 0 : status);
    } else if (status < 0 && status != UV_ECANCELED && !c->closing) {
        hd_debug(MOD, "write to %s: %s", c->name, hd_strerror(status));
        if (c->pair)
            pair_close(c->pair, "write error");
        else
            conn_close(c);
    }
}

/* ws.c hands us bytes for the peer: to the kernel now, or queued (copied). */
static int ws_on_write(void *ud, const uint8_t *data, size_t n)
{
    struct relay_conn *c = ud;
    uv_buf_t b;
    int r = 0, e;

    if (c->closing)
        return -EPIPE;
    if (c->wq == 0) {
        b = uv_buf_init((char *)data, (unsigned)n);
        r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r == UV_EAGAIN)
            r = 0;
        if (r < 0 || (size_t)r == n)
            return r < 0 ? r : 0;
    }
    if ((e = hd_net_write((uv_stream_t *)&c->tcp, data + r, n - (size_t)r,
                          ws_write_done)) != 0)
        return e;
    c->wq++;
    return 0;
}

/*
 * A WebSocket peer's first message: its bare RequestRelay.  Behind the
 * trusted proxy the client's own address replaces the proxy's first (for
 * the lists and the log lines).
 */
static void ws_hello(struct relay_conn *c, const uint8_t *data, size_t n)
{
    struct relay *r = c->relay;
    struct sockaddr_storage ss;
    char ip[INET6_ADDRSTRLEN];
    uint8_t bin[16];
    int len = sizeof(ss), why;

    memset(&ss, 0, sizeof(ss));
    if (r->trusted_proxy && ws_forwarded_ip(c->ws) &&
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 &&
        ws_client_ip(c->ws, (struct sockaddr *)&ss, r->trusted_proxy, ip,
                     sizeof(ip)) == 0 &&
        parse_ip(ip, bin) == 0) {
        memcpy(c->ip, bin, 16);
        snprintf(c->ipstr, sizeof(c->ipstr), "%s", ip);
        if (strchr(ip, ':'))
            snprintf(c->name, sizeof(c->name), "[%s]", ip);
        else
            snprintf(c->name, sizeof(c->name), "%s", ip);
        if (iplist_has(&r->block, c->ip)) {
            hd_info(MOD, "blocked %s", c->ipstr);
            conn_reject(c, RELAY_REJECT_BLOCKED);
            return;
        }
    }
    if ((why = hello_check(c, data, n)) != 0) {
        conn_reject(c, (enum relay_reject)(why - 1));
        return;
    }
    c->hello_ok = 1;
    /* the message limit stays HD_RELAY_MAX_FIRST_FRAME until paired */
}

/* Keep one relayed message, framed, at the end of c's buffer. */
static int ws_buffer_message(struct relay_conn *c, const uint8_t *data,
                             size_t n)
{
    uint8_t hdr[HD_FRAME_HDR_MAX];
    size_t hl = hd_frame_header(hdr, n), need = c->end + hl + n;
    char *nb;

    if (hl == 0 || need > WS_BUF_MAX) {
        hd_info(MOD, "%s: more than %d bytes of messages waiting", c->name,
                WS_BUF_MAX);
        return HD_ETOOBIG;
    }
    if (need > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : c->relay->cfg.buf_size;

        while (ncap < need)
            ncap *= 2;
        if (ncap > WS_BUF_MAX)
            ncap = WS_BUF_MAX;
        if (!(nb = realloc(c->buf, ncap))) {
            hd_error(MOD, "out of memory buffering %s", c->name);
            return -ENOMEM;
        }
        c->buf = nb;
        c->cap = ncap;
    }
    memcpy(c->buf + c->end, hdr, hl);
    if (n > 0) /* an empty message may come as NULL */
        memcpy(c->buf + c->end + hl, data, n);
    c->end = need;
    return 0;
}

static void ws_on_message(void *ud, const uint8_t *data, size_t n)
{
    struct relay_conn *c = ud;
    int r;

    if (c->closing || c->ws_ended)
        return;
    if (c->state == CONN_HELLO && !c->hello_ok) {
        ws_hello(c, data, n);
        return;
    }
    if ((r = ws_buffer_message(c, data, n)) != 0) {
        if (c->pair)
            pair_close(c->pair, hd_strerror(r));
        else
            conn_reject(c, RELAY_REJECT_OVERLOAD);
    }
}

/* The WebSocket ended (close handshake, bad frame, oversized message or
 * failed write): acted upon by the read callback, after the feed. */
static void ws_on_close(void *ud, int reason)
{
    struct relay_conn *c = ud;

    c->ws_ended = 1;
    c->ws_reason = reason;
}

static void ws_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct relay_conn *c = h->data;

    (void)hint;
    if (!c->rbuf)
        c->rbuf = malloc(WS_READ_CHUNK);
    *buf = uv_buf_init((char *)c->rbuf, c->rbuf ? WS_READ_CHUNK : 0);
}

static void ws_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct relay_conn *c = s->data;
    size_t before = c->end;

    (void)buf;
    if (nread < 0) {
        conn_on_eof(c, (int)nread);
        return;
    }
    if (nread == 0 || c->ws_ended)
        return;
    ws_feed(c->ws, c->rbuf, (size_t)nread); /* errors come as on_close */
    if (c->closing)
        return;
    if (c->state == CONN_HELLO && c->hello_ok) {
        hello_done(c); /* a pair forwards what followed the request */
    } else if (c->state == CONN_PAIRED && c->end > before) {
        account(c, c->end - before);
        forward(c);
    } else if (c->state == CONN_WAITING) {
        unpaired_update(c);
        if (!c->closing)
            conn_update_reading(c);
    } else if (c->state == CONN_HELLO) {
        unpaired_update(c);
    }
    if (c->closing || !c->ws_ended)
        return;
    if (c->state == CONN_PAIRED || c->ws_reason == 0)
        conn_on_eof(c, UV_EOF); /* ws.c logged an error reason */
    else
        conn_reject(c, c->ws_reason == HD_ETOOBIG ? RELAY_REJECT_TOOBIG
                                                  : RELAY_REJECT_PROTO);
}

static int ws_send(struct relay_conn *dst, struct relay_conn *src,
                   const char *buf, size_t n)
{
    int r;

    (void)src;
    if (dst->ws_ended)
        return -EPIPE;
    r = ws_send_binary(dst->ws, (const uint8_t *)buf, n);
    return r < 0 ? r : (int)n;
}

static void ws_pause(struct relay_conn *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static int ws_resume(struct relay_conn *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, ws_alloc_cb, ws_read_cb);
}

static size_t ws_queued(const struct relay_conn *c)
{
    return c->wq; /* writes whose callback has not run yet */
}

static const struct relay_transport ws_transport = {
    .name = "ws",
    .message_based = 1,
    .send = ws_send,
    .pause = ws_pause,
    .resume = ws_resume,
    .close = tcp_close,
    .queued = ws_queued,
};

/* ---- listener ---- */

static void on_connection_common(uv_stream_t *srv, int status, int is_ws)
{
    struct relay *r = srv->data;
    struct relay_conn *c;
    struct sockaddr_storage ss;
    int len = sizeof(ss), ret;

    if (status < 0) {
        hd_warn(MOD, "accept: %s", hd_strerror(status));
        return;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        hd_error(MOD, "accept: out of memory");
        return;
    }
    c->relay = r;
    c->tp = is_ws ? &ws_transport : &tcp_transport;
    c->state = CONN_HELLO;
    snprintf(c->name, sizeof(c->name), "?");
    snprintf(c->ipstr, sizeof(c->ipstr), "?");
    uv_tcp_init(r->loop, &c->tcp);
    uv_timer_init(r->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open = 2;
    c->sfd = c->pipe[0] = c->pipe[1] = -1;
    c->next = r->conns;
    if (r->conns)
        r->conns->prev = c;
    r->conns = c;
    r->nconns++;
    r->st.conns_active++;
    if ((ret = uv_accept(srv, (uv_stream_t *)&c->tcp)) != 0) {
        hd_warn(MOD, "accept: %s", hd_strerror(ret));
        conn_close(c);
        return;
    }
    memset(&ss, 0, sizeof(ss));
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);
    ip_from_sockaddr(&ss, c->ip, c->ipstr, sizeof(c->ipstr), c->name,
                     sizeof(c->name));
    if (iplist_has(&r->block, c->ip)) {
        hd_info(MOD, "blocked %s", c->ipstr);
        conn_reject(c, RELAY_REJECT_BLOCKED);
        return;
    }
    if (r->cfg.max_conns && r->nconns > r->cfg.max_conns) {
        hd_warn(MOD, "refused %s: %u connections open", c->name,
                r->cfg.max_conns);
        conn_reject(c, RELAY_REJECT_OVERLOAD);
        return;
    }
    /* unpaired ones per source (behind a trusted proxy, WebSocket clients
     * share its address: not counted) */
    if (!(is_ws && r->trusted_proxy)) {
        struct sockaddr_storage key_ss;

        memcpy(&key_ss, &ss, sizeof(ss));
        hd_addr_normalize(&key_ss);
        c->ipkey_len =
            (uint8_t)limit_addr_key((struct sockaddr *)&key_ss, c->ipkey);
        if (!limit_count_add(&r->unpaired_ip, c->ipkey, c->ipkey_len)) {
            hd_info(MOD, "refused %s: %d unpaired connections from %s", c->name,
                    RELAY_UNPAIRED_PER_IP, c->ipstr);
            conn_reject(c, RELAY_REJECT_OVERLOAD);
            return;
        }
        c->counted = 1;
    }
    if (is_ws) {
        struct ws_config wc = { .max_message = HD_RELAY_MAX_FIRST_FRAME,
                                .peer_desc = c->name };
        struct ws_callbacks cb = { .on_write = ws_on_write,
                                   .on_message = ws_on_message,
                                   .on_close = ws_on_close };

        if ((ret = ws_new(&wc, &cb, c, &c->ws)) != 0) {
            hd_error(MOD, "accept: %s", hd_strerror(ret));
            conn_reject(c, RELAY_REJECT_OVERLOAD);
            return;
        }
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, deadline_cb, r->cfg.first_frame_ms, 0);
    conn_update_reading(c);
}

static void on_connection(uv_stream_t *srv, int status)
{
    on_connection_common(srv, status, 0);
}

static void on_connection_ws(uv_stream_t *srv, int status)
{
    on_connection_common(srv, status, 1);
}

static void relay_handle_closed(uv_handle_t *h)
{
    struct relay *r = h->data;

    r->open_handles--;
    relay_maybe_free(r);
}

/* Bind and listen on port with h; *bound = the port bound. */
static int bind_listener(struct relay *r, uv_tcp_t *h, int *init, int port,
                         uv_connection_cb cb, int *bound)
{
    struct sockaddr_storage ss;
    const char *addr = r->bind_addr;
    int ret, fd, off = 0;
    int len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (!addr || !addr[0]) {
        /* Dual-stack "::" with V6ONLY off; IPv4 only when no IPv6. */
        uv_ip6_addr("::", port, (struct sockaddr_in6 *)&ss);
        ret = uv_tcp_init_ex(r->loop, h, AF_INET6);
        if (ret == UV_EAFNOSUPPORT) {
            uv_ip4_addr("0.0.0.0", port, (struct sockaddr_in *)&ss);
            ret = uv_tcp_init_ex(r->loop, h, AF_INET);
        } else if (ret == 0 && uv_fileno((uv_handle_t *)h, &fd) == 0) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        }
    } else if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) == 0) {
        ret = uv_tcp_init_ex(r->loop, h, AF_INET);
    } else if (uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) == 0) {
        ret = uv_tcp_init_ex(r->loop, h, AF_INET6);
    } else {
        hd_error(MOD, "bad bind address %s", addr);
        return HD_ECONFIG;
    }
    if (ret != 0) {
        hd_error(MOD, "relay socket: %s", hd_strerror(ret));
        return ret;
    }
    *init = 1;
    r->open_handles++;
    h->data = r;
    if ((ret = uv_tcp_bind(h, (struct sockaddr *)&ss, 0)) != 0 ||
        (ret = uv_listen((uv_stream_t *)h, 1024, cb)) != 0) {
        hd_error(MOD, "cannot listen on TCP port %d: %s", port,
                 hd_strerror(ret));
        return ret;
    }
    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len) == 0)
        *bound = ntohs(ss.ss_family == AF_INET6
                           ? ((struct sockaddr_in6 *)&ss)->sin6_port
                           : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* ---- public ---- */

void relay_config_defaults(struct relay_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = 21117;
    cfg->single_mbps = 128;
    cfg->total_mbps = 1024;
    cfg->limit_mbps = 32;
    cfg->downgrade_threshold = 0.66;
    cfg->downgrade_start_ms = 1800 * 1000;
    cfg->first_frame_ms = 30000;
    cfg->pair_wait_ms = 30000;
    cfg->idle_ms = 30000;
    cfg->list_check_ms = 5000;
    cfg->buf_size = 32 * 1024;
    cfg->max_conns = 20000;
    cfg->pipe_size = 1024 * 1024;
}

int relay_new(uv_loop_t *loop, const struct relay_config *cfg,
              struct relay **out)
{
    struct relay *r = NULL;
    int ret;

    *out = NULL;
    if (cfg->port < 0 || cfg->port > 65535 || cfg->ws_port < -1 ||
        cfg->ws_port > 65535 || (cfg->ws_port == 0 && cfg->port > 65533) ||
        cfg->single_mbps < 0 || cfg->total_mbps < 0 || cfg->limit_mbps < 0 ||
        cfg->downgrade_threshold < 0 || cfg->buf_size < 1024 ||
        cfg->buf_size > (1u << 30) || cfg->pipe_size > (1u << 20) ||
        cfg->first_frame_ms == 0 || cfg->pair_wait_ms == 0 || cfg->idle_ms == 0)
        return HD_ECONFIG;
    if (sodium_init() < 0)
        return HD_ECRYPTO;
    if (!(r = calloc(1, sizeof(*r))))
        return -ENOMEM;
    r->loop = loop;
    r->cfg = *cfg;
    limit_count_init(&r->unpaired_ip, RELAY_UNPAIRED_PER_IP);
    r->key = dup_or_null(cfg->key ? cfg->key : "");
    r->data_dir = dup_or_null(cfg->data_dir);
    r->bind_addr = dup_or_null(cfg->bind_addr);
    if (cfg->trusted_proxy && cfg->trusted_proxy[0])
        r->trusted_proxy = strdup(cfg->trusted_proxy);
    if (!r->key || (cfg->data_dir && !r->data_dir) ||
        (cfg->bind_addr && !r->bind_addr) ||
        (cfg->trusted_proxy && cfg->trusted_proxy[0] && !r->trusted_proxy)) {
        ret = -ENOMEM;
        goto out;
    }
    r->key_len = strlen(r->key);
    r->cfg.key = r->key;
    r->cfg.data_dir = r->data_dir;
    r->cfg.bind_addr = r->bind_addr;
    r->cfg.trusted_proxy = r->trusted_proxy;
    r->tick_ms = cfg->idle_ms / 4;
    if (r->tick_ms > 1000)
        r->tick_ms = 1000;
    if (r->tick_ms < 10)
        r->tick_ms = 10;
    randombytes_buf(r->hash_key, sizeof(r->hash_key));
    bucket_set(&r->total, cfg->total_mbps, cfg->buf_size, uv_now(loop));
    r->total.tokens = r->total.burst;
    *out = r;
    r = NULL;
    ret = 0;
out:
    if (r) {
        free(r->key);
        free(r->data_dir);
        free(r->bind_addr);
        free(r->trusted_proxy);
        free(r);
    }
    return ret;
}

int relay_start(struct relay *r)
{
    int ret;

    lists_load(r, 1);
    if ((ret = bind_listener(r, &r->listener, &r->listener_init, r->cfg.port,
                             on_connection, &r->port)) != 0)
        return ret;
    if (r->cfg.ws_port >= 0) {
        int wp = r->cfg.ws_port ? r->cfg.ws_port
                 : r->cfg.port  ? r->cfg.port + 2
                                : 0;
        if ((ret = bind_listener(r, &r->ws_listener, &r->ws_listener_init, wp,
                                 on_connection_ws, &r->ws_port)) != 0)
            return ret;
    }
    if (r->data_dir && r->cfg.list_check_ms) {
        uv_timer_init(r->loop, &r->list_timer);
        r->list_timer.data = r;
        r->timer_init = 1;
        r->open_handles++;
        uv_timer_start(&r->list_timer, list_timer_cb, r->cfg.list_check_ms,
                       r->cfg.list_check_ms);
    }
    if (r->ws_port)
        hd_info(MOD, "listening on TCP port %d, WebSocket port %d%s", r->port,
                r->ws_port, r->key_len ? "" : " (no key check)");
    else
        hd_info(MOD, "listening on TCP port %d%s", r->port,
                r->key_len ? "" : " (no key check)");
    return 0;
}

int relay_port(const struct relay *r)
{
    return r->port;
}

int relay_ws_port(const struct relay *r)
{
    return r->ws_port;
}

void relay_stop(struct relay *r)
{
    struct relay_conn *c;

    if (r->stopped)
        return;
    r->stopped = 1;
    if (r->listener_init)
        uv_close((uv_handle_t *)&r->listener, relay_handle_closed);
    if (r->ws_listener_init)
        uv_close((uv_handle_t *)&r->ws_listener, relay_handle_closed);
    if (r->timer_init)
        uv_close((uv_handle_t *)&r->list_timer, relay_handle_closed);
    for (c = r->conns; c; c = c->next) {
        if (c->pair)
            pair_close(c->pair, "shutdown");
        else
            conn_close(c);
    }
}

static void relay_maybe_free(struct relay *r)
{
    if (!r->free_pending || r->open_handles > 0 || r->conns)
        return;
    free(r->black.ips);
    free(r->block.ips);
    free(r->map);
    free(r->key);
    free(r->data_dir);
    free(r->bind_addr);
    free(r->trusted_proxy);
    limit_count_cleanup(&r->unpaired_ip);
    free(r);
}

void relay_free(struct relay *r)
{
    if (!r)
        return;
    relay_stop(r);
    r->free_pending = 1;
    relay_maybe_free(r);
}

int relay_reload_lists(struct relay *r)
{
    return lists_load(r, 1);
}

void relay_get_stats(const struct relay *r, struct relay_stats *out)
{
    *out = r->st;
    out->blacklist_size = r->black.n;
    out->blocklist_size = r->block.n;
}

const char *relay_reject_name(enum relay_reject why)
{
    static const char *const names[RELAY_REJECT_COUNT] = {
        [RELAY_REJECT_BLOCKED] = "blocked",
        [RELAY_REJECT_KEY] = "key",
        [RELAY_REJECT_PROTO] = "protocol",
        [RELAY_REJECT_TOOBIG] = "too_big",
        [RELAY_REJECT_TIMEOUT] = "timeout",
        [RELAY_REJECT_UNPAIRED] = "unpaired",
        [RELAY_REJECT_EOF] = "eof",
        [RELAY_REJECT_OVERLOAD] = "overload",
    };

    if ((unsigned)why >= RELAY_REJECT_COUNT)
        return "unknown";
    return names[why];
}

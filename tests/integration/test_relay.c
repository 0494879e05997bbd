/*
 * Integration tests of the relay role: the real homedesk-server on
 * loopback, driven as RustDesk peers drive hbbr.  100 MB each way through
 * a pair at once (checksummed), the key check and its fail2ban line, the
 * WebSocket flavour paired with a TCP peer, bandwidth limits set through
 * the environment as a docker-compose file sets them, blocklist.txt
 * re-read without a restart, and garbage that must not disturb a pair.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "frame.h"
#include "rendezvous.pb-c.h"
#include "tests/harness.h"
#include "tests/integration/support.h"

#define MB (1024 * 1024)

/* ---- peers ---- */

static void request_init(Hbb__RendezvousMessage *m, Hbb__RequestRelay *rr,
                         const char *uuid, const char *key)
{
    hbb__rendezvous_message__init(m);
    hbb__request_relay__init(rr);
    rr->uuid = (char *)uuid;
    rr->licence_key = (char *)key;
    m->union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m->request_relay = rr;
}

/* A TCP peer of the relay, from src_ip (NULL = any), after its request. */
static int relay_peer(const char *src_ip, uint16_t port, const char *uuid,
                      const char *key)
{
    Hbb__RendezvousMessage m;
    Hbb__RequestRelay rr;
    int fd = tcp_connect_from(src_ip, "127.0.0.1", port);

    request_init(&m, &rr, uuid, key);
    if (fd >= 0 && send_msg(fd, &m) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A WebSocket peer: upgraded, then its bare request as one message. */
static int relay_ws_peer(uint16_t port, const char *uuid, const char *key)
{
    Hbb__RendezvousMessage m;
    Hbb__RequestRelay rr;
    uint8_t buf[512];
    int fd = ws_client_connect("127.0.0.1", port), n;

    request_init(&m, &rr, uuid, key);
    n = hd_msg_pack_into(&m.base, buf, sizeof(buf));
    if (fd >= 0 && (n < 0 || ws_client_send(fd, buf, (size_t)n) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* ---- 100 MB each way, both at once ---- */

/* Deterministic bytes: block i of a direction, from its seed. */
static void gen_block(uint8_t *out, size_t n, uint64_t seed, uint64_t i)
{
    uint64_t x = seed ^ (i * 0x9E3779B97F4A7C15ull);
    size_t k;

    for (k = 0; k + 8 <= n; k += 8) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        memcpy(out + k, &z, 8);
    }
    for (; k < n; k++)
        out[k] = (uint8_t)(x >> (8 * (k & 7)));
}

#define BLK 65536

struct flow {
    int fd;
    uint64_t seed_tx, seed_rx;
    size_t sent, recvd;
    uint8_t out[BLK], expect[BLK];
    size_t olen, opos;
    crypto_generichash_state tx_sum, rx_sum;
};

/*
 * Push n bytes each way between fa and fb at once, non-blocking, and
 * check every byte and the BLAKE2b of each stream.  Returns 0 or -1.
 */
static int pump_both(int fa, int fb, size_t n, int timeout_ms, double *secs)
{
    static struct flow f[2];
    static uint8_t tmp[BLK];
    uint64_t t0 = now_ms(), end = t0 + (uint64_t)timeout_ms;
    uint8_t h[4][32];
    int i;

    memset(f, 0, sizeof(f));
    f[0].fd = fa;
    f[1].fd = fb;
    f[0].seed_tx = f[1].seed_rx = 0x1234567890ABCDEFull;
    f[1].seed_tx = f[0].seed_rx = 0x0FEDCBA987654321ull;
    for (i = 0; i < 2; i++) {
        fcntl(f[i].fd, F_SETFL, fcntl(f[i].fd, F_GETFL) | O_NONBLOCK);
        crypto_generichash_init(&f[i].tx_sum, NULL, 0, 32);
        crypto_generichash_init(&f[i].rx_sum, NULL, 0, 32);
    }
    while (f[0].recvd < n || f[1].recvd < n) {
        struct pollfd p[2];
        int left = (int)(end - now_ms());

        if (left <= 0) {
            ht_fail(__FILE__, __LINE__, "timeout: received %zu and %zu of %zu",
                    f[1].recvd, f[0].recvd, n);
            return -1;
        }
        for (i = 0; i < 2; i++) {
            p[i].fd = f[i].fd;
            p[i].events = POLLIN;
            if (f[i].sent < n || f[i].opos < f[i].olen)
                p[i].events |= POLLOUT;
            p[i].revents = 0;
        }
        if (poll(p, 2, left) < 0 && errno != EINTR)
            return -1;
        for (i = 0; i < 2; i++) {
            struct flow *s = &f[i];

            if (p[i].revents & POLLOUT) {
                ssize_t w;

                if (s->opos == s->olen && s->sent < n) {
                    s->olen = n - s->sent < BLK ? n - s->sent : BLK;
                    gen_block(s->out, s->olen, s->seed_tx, s->sent / BLK);
                    crypto_generichash_update(&s->tx_sum, s->out, s->olen);
                    s->opos = 0;
                    s->sent += s->olen;
                }
                w = write(s->fd, s->out + s->opos, s->olen - s->opos);
                if (w > 0)
                    s->opos += (size_t)w;
            }
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                /* read no further than the end of the expected block */
                size_t off = s->recvd % BLK, want = BLK - off;
                ssize_t k;

                if (want > n - s->recvd)
                    want = n - s->recvd;
                k = read(s->fd, tmp, want ? want : 1);
                if (k == 0 || (k < 0 && errno != EAGAIN)) {
                    ht_fail(__FILE__, __LINE__, "side %d closed after %zu", i,
                            s->recvd);
                    return -1;
                }
                if (k < 0)
                    continue;
                if ((size_t)k > want) {
                    ht_fail(__FILE__, __LINE__, "side %d: extra bytes", i);
                    return -1;
                }
                if (off == 0)
                    gen_block(s->expect,
                              n - s->recvd < BLK ? n - s->recvd : BLK,
                              s->seed_rx, s->recvd / BLK);
                if (memcmp(tmp, s->expect + off, (size_t)k) != 0) {
                    ht_fail(__FILE__, __LINE__,
                            "side %d: bytes differ near %zu", i, s->recvd);
                    return -1;
                }
                crypto_generichash_update(&s->rx_sum, tmp, (size_t)k);
                s->recvd += (size_t)k;
            }
        }
    }
    crypto_generichash_final(&f[0].tx_sum, h[0], 32);
    crypto_generichash_final(&f[1].rx_sum, h[1], 32);
    crypto_generichash_final(&f[1].tx_sum, h[2], 32);
    crypto_generichash_final(&f[0].rx_sum, h[3], 32);
    for (i = 0; i < 2; i++)
        fcntl(f[i].fd, F_SETFL, fcntl(f[i].fd, F_GETFL) & ~O_NONBLOCK);
    if (secs)
        *secs = (double)(now_ms() - t0) / 1000.0;
    if (memcmp(h[0], h[1], 32) != 0 || memcmp(h[2], h[3], 32) != 0) {
        ht_fail(__FILE__, __LINE__, "checksums differ");
        return -1;
    }
    return 0;
}

static struct srv A; /* no limits, key check on */

static void hundred_mb_each_way_with_key(void)
{
    size_t n = (size_t)100 * 1000 * 1000;
    double secs = 0;
    int fa, fb, bad;

    fa = relay_peer(NULL, A.relay_port, "5f0e-100mb", A.pk_b64);
    fb = relay_peer(NULL, A.relay_port, "5f0e-100mb", A.pk_b64);
    HT_CHECK(fa >= 0 && fb >= 0);
    HT_EQ_INT(pump_both(fa, fb, n, 40000, &secs), 0);
    printf("# 100 MB each way in %.2f s (%.0f MB/s per direction)\n", secs,
           secs > 0 ? (double)n / MB / secs : 0);
    /* a third peer with the same uuid but the wrong key: dropped, and the
     * fail2ban line is written */
    bad = relay_peer(NULL, A.relay_port, "5f0e-100mb",
                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    HT_CHECK(bad >= 0 && wait_closed(bad, 3000));
    HT_CHECK(srv_log_has(&A, "relay: key mismatch from 127.0.0.1", 2000));
    if (bad >= 0)
        close(bad);
    /* no key at all: dropped too */
    bad = relay_peer(NULL, A.relay_port, "5f0e-nokey", "");
    HT_CHECK(bad >= 0 && wait_closed(bad, 3000));
    if (bad >= 0)
        close(bad);
    /* the pair did not notice */
    HT_EQ_INT(pump_both(fa, fb, 1000000, 5000, NULL), 0);
    close(fa);
    close(fb);
}

/* ---- WebSocket <-> TCP ---- */

#define WS_TOTAL (3 * MB)

static size_t msg_len(uint32_t i)
{
    /* every header size on the TCP side, and a few large messages */
    static const size_t sizes[] = { 1, 63, 64, 700, 16383, 16384, 40000, 0 };

    return i % 97 == 96 ? 300000 : sizes[i % 8];
}

static void msg_fill(uint8_t *p, size_t n, uint64_t seed, uint32_t i)
{
    gen_block(p, n, seed, i);
}

struct sender {
    int fd, ws;
    uint64_t seed;
    int ok;
};

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    uint8_t *buf = malloc(300000 + 4);
    size_t total = 0;
    uint32_t i;

    s->ok = buf != NULL;
    for (i = 0; s->ok && total < WS_TOTAL; i++) {
        size_t n = msg_len(i), hl = 0;

        if (s->ws) {
            msg_fill(buf, n, s->seed, i);
            s->ok = ws_client_send(s->fd, buf, n) == 0;
        } else {
            hl = hd_frame_header(buf, n);
            msg_fill(buf + hl, n, s->seed, i);
            s->ok = send_all(s->fd, buf, hl + n) == 0;
        }
        total += n;
    }
    free(buf);
    return NULL;
}

static void websocket_tcp_pair(void)
{
    struct sender sw = { 0 }, st = { 0 };
    pthread_t tw, tt;
    uint8_t *got = malloc(300000), *want = malloc(300000);
    size_t rx_ws = 0, rx_tcp = 0;
    uint32_t iw = 0, it = 0;
    uint64_t end = now_ms() + 30000;
    int w, t, ok = 1;

    w = relay_ws_peer((uint16_t)(A.relay_port + 2), "77aa-ws", A.pk_b64);
    t = relay_peer(NULL, A.relay_port, "77aa-ws", A.pk_b64);
    HT_CHECK(got && want && w >= 0 && t >= 0);
    if (!got || !want || w < 0 || t < 0)
        goto out;
    sw = (struct sender){ .fd = w, .ws = 1, .seed = 0xAAA1 };
    st = (struct sender){ .fd = t, .ws = 0, .seed = 0xBBB2 };
    pthread_create(&tw, NULL, sender_main, &sw);
    pthread_create(&tt, NULL, sender_main, &st);
    while (ok && (rx_ws < WS_TOTAL || rx_tcp < WS_TOTAL) && now_ms() < end) {
        struct pollfd p[2] = { { w, POLLIN, 0 }, { t, POLLIN, 0 } };

        if (poll(p, 2, 1000) <= 0)
            continue;
        if ((p[0].revents & POLLIN) && rx_ws < WS_TOTAL) {
            /* a TCP frame arrives as exactly one WebSocket message */
            size_t n = msg_len(it);
            ssize_t k = ws_client_recv(w, got, 300000, 5000);

            msg_fill(want, n, 0xBBB2, it++);
            if (k != (ssize_t)n || memcmp(got, want, n) != 0) {
                ht_fail(__FILE__, __LINE__,
                        "ws message %u: %zd bytes, want %zu", it - 1, k, n);
                ok = 0;
            }
            rx_ws += n;
        }
        if ((p[1].revents & POLLIN) && rx_tcp < WS_TOTAL) {
            /* a WebSocket message arrives as exactly one frame */
            size_t n = msg_len(iw);
            ssize_t k = recv_frame(t, got, 300000, 5000);

            msg_fill(want, n, 0xAAA1, iw++);
            if (k != (ssize_t)n || memcmp(got, want, n) != 0) {
                ht_fail(__FILE__, __LINE__, "tcp frame %u: %zd bytes, want %zu",
                        iw - 1, k, n);
                ok = 0;
            }
            rx_tcp += n;
        }
    }
    if (!ok) {
        /* unblock the senders */
        shutdown(w, SHUT_RDWR);
        shutdown(t, SHUT_RDWR);
    }
    pthread_join(tw, NULL);
    pthread_join(tt, NULL);
    HT_CHECK(ok && sw.ok && st.ok);
    HT_CHECK(rx_ws >= WS_TOTAL && rx_tcp >= WS_TOTAL);
    printf("# websocket <-> tcp: %u and %u messages, %zu bytes each way\n", iw,
           it, rx_tcp);
    HT_CHECK(srv_log_has(&A, "paired ws 127.0.0.1", 1000));
out:
    if (w >= 0)
        close(w);
    if (t >= 0)
        close(t);
    free(got);
    free(want);
}

/* ---- garbage ---- */

static void garbage_does_not_disturb_pairs(void)
{
    /* more than any first frame (64 KiB + 4) or upgrade header (8 KiB)
     * may hold: every kind of junk is refused at once, not timed out */
    static uint8_t junk[70 * 1024];
    int fa, fb, i;

    fa = relay_peer(NULL, A.relay_port, "99bb-keep", A.pk_b64);
    fb = relay_peer(NULL, A.relay_port, "99bb-keep", A.pk_b64);
    HT_CHECK(fa >= 0 && fb >= 0);
    HT_EQ_INT(pump_both(fa, fb, 2 * MB, 10000, NULL), 0);
    for (i = 0; i < 30; i++) {
        uint16_t port =
            i % 3 == 2 ? (uint16_t)(A.relay_port + 2) : A.relay_port;
        int g = tcp_connect("127.0.0.1", port);

        HT_CHECK(g >= 0);
        if (g < 0)
            continue;
        randombytes_buf(junk, sizeof(junk));
        if (i % 3 == 1)
            memset(junk, 0xff, 4);             /* a header announcing 1 GiB */
        (void)send_all(g, junk, sizeof(junk)); /* may be cut short */
        HT_CHECK(wait_closed(g, 3000));
        close(g);
        /* the pair keeps going meanwhile */
        if (i % 10 == 0)
            HT_EQ_INT(pump_both(fa, fb, 256 * 1024, 5000, NULL), 0);
    }
    HT_EQ_INT(pump_both(fa, fb, 2 * MB, 10000, NULL), 0);
    close(fa);
    close(fb);
}

/* ---- blocklist.txt, re-read without a restart ---- */

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(f = fopen(path, "w")))
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Does a pair with one side from 127.0.0.2 work? */
static int pair_from_127_0_0_2(const struct srv *s, const char *uuid)
{
    int fa = relay_peer("127.0.0.2", s->relay_port, uuid, s->pk_b64);
    int fb = relay_peer(NULL, s->relay_port, uuid, s->pk_b64);
    char c = 0;
    int ok = fa >= 0 && fb >= 0 && send_all(fa, "x", 1) == 0 &&
             recv(fb, &c, 1, 0) == 1 && c == 'x';

    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    return ok;
}

static void blocklist_reread(void)
{
    int fd;

    HT_CHECK(pair_from_127_0_0_2(&A, "b10c-1"));
    HT_EQ_INT(write_file(A.dir, "blocklist.txt", "# test\n127.0.0.2\n"), 0);
    /* polled every 5 s: no restart, no signal */
    HT_CHECK(srv_log_has(&A, "blocklist.txt: 1 addresses", 7000));
    fd = tcp_connect_from("127.0.0.2", "127.0.0.1", A.relay_port);
    HT_CHECK(fd >= 0 && wait_closed(fd, 3000));
    if (fd >= 0)
        close(fd);
    HT_CHECK(srv_log_has(&A, "relay: blocked 127.0.0.2", 2000));
    /* 127.0.0.1 is not concerned */
    fd = relay_peer(NULL, A.relay_port, "b10c-2", A.pk_b64);
    HT_CHECK(fd >= 0 && !wait_closed(fd, 300));
    if (fd >= 0)
        close(fd);
    /* and lifting it works the same way */
    HT_EQ_INT(write_file(A.dir, "blocklist.txt", "192.0.2.77\n2001:db8::7\n"),
              0);
    HT_CHECK(srv_log_has(&A, "blocklist.txt: 2 addresses", 7000));
    HT_CHECK(pair_from_127_0_0_2(&A, "b10c-3"));
}

/* ---- bandwidth limits from the environment ---- */

/* Bytes per second from fs to fr (one direction), over ms after the first
 * byte arrived (that first read, the initial burst, is not counted).
 * n_pairs pairs at once: the sum of their rates. */
static double rate_of(const int *fs, const int *fr, int n_pairs, unsigned ms)
{
    static uint8_t buf[BLK];
    uint64_t t0 = 0, end = 0, got = 0, start = now_ms();
    struct pollfd p[8];
    int i;

    memset(buf, 0x5a, sizeof(buf));
    for (i = 0; i < n_pairs; i++) {
        fcntl(fs[i], F_SETFL, fcntl(fs[i], F_GETFL) | O_NONBLOCK);
        fcntl(fr[i], F_SETFL, fcntl(fr[i], F_GETFL) | O_NONBLOCK);
    }
    for (;;) {
        uint64_t now = now_ms();

        if ((t0 && now >= end) || (!t0 && now > start + 5000))
            break;
        for (i = 0; i < n_pairs; i++) {
            p[2 * i] = (struct pollfd){ fs[i], POLLOUT, 0 };
            p[2 * i + 1] = (struct pollfd){ fr[i], POLLIN, 0 };
        }
        if (poll(p, (nfds_t)(2 * n_pairs), 100) < 0)
            break;
        for (i = 0; i < n_pairs; i++) {
            if (p[2 * i].revents & POLLOUT)
                (void)!write(fs[i], buf, sizeof(buf));
            if (p[2 * i + 1].revents & POLLIN) {
                ssize_t k = read(fr[i], buf, sizeof(buf));
                if (k <= 0)
                    return 0;
                if (!t0) {
                    t0 = now_ms();
                    end = t0 + ms;
                } else {
                    got += (uint64_t)k;
                }
            }
        }
    }
    return t0 ? (double)got * 1000.0 / (double)(now_ms() - t0) : 0;
}

static void check_rate(const char *what, double rate, double mbps)
{
    double want = mbps * 1024 * 1024 / 8;

    printf("# %s: %.0f B/s, want %.0f (%.1f %%)\n", what, rate, want,
           100.0 * (rate - want) / want);
    if (rate < want * 0.9 || rate > want * 1.1)
        ht_fail(__FILE__, __LINE__, "%s: %.0f B/s, want %.0f +- 10%%", what,
                rate, want);
}

static void bandwidth_from_environment(void)
{
    struct srv b;
    int fs[2], fr[2], i;

    memset(&b, 0, sizeof(b));
    snprintf(b.dir, sizeof(b.dir), "/tmp/hd-itest-bw-XXXXXX");
    if (!mkdtemp(b.dir)) {
        HT_CHECK(!"mkdtemp");
        return;
    }
    HT_EQ_INT(write_file(b.dir, "blacklist.txt", "127.0.0.2\n"), 0);
    /* as docker-compose's `environment:` does (Mb/s) */
    setenv("SINGLE_BANDWIDTH", "4", 1);
    setenv("TOTAL_BANDWIDTH", "6", 1);
    setenv("LIMIT_SPEED", "2", 1);
    i = srv_start(&b, b.dir, NULL);
    unsetenv("SINGLE_BANDWIDTH");
    unsetenv("TOTAL_BANDWIDTH");
    unsetenv("LIMIT_SPEED");
    if (i != 0) {
        HT_CHECK(!"server with limits did not start");
        goto out;
    }
    /* one pair: SINGLE_BANDWIDTH */
    fs[0] = relay_peer(NULL, b.relay_port, "bw-1", b.pk_b64);
    fr[0] = relay_peer(NULL, b.relay_port, "bw-1", b.pk_b64);
    HT_CHECK(fs[0] >= 0 && fr[0] >= 0);
    check_rate("SINGLE_BANDWIDTH=4", rate_of(fs, fr, 1, 2000), 4);
    close(fs[0]);
    close(fr[0]);
    /* a blacklisted peer: LIMIT_SPEED */
    fs[0] = relay_peer("127.0.0.2", b.relay_port, "bw-2", b.pk_b64);
    fr[0] = relay_peer(NULL, b.relay_port, "bw-2", b.pk_b64);
    HT_CHECK(fs[0] >= 0 && fr[0] >= 0);
    check_rate("LIMIT_SPEED=2 (blacklist.txt)", rate_of(fs, fr, 1, 2000), 2);
    close(fs[0]);
    close(fr[0]);
    /* two pairs of 4 under a total of 6: TOTAL_BANDWIDTH */
    for (i = 0; i < 2; i++) {
        const char *u = i ? "bw-3b" : "bw-3a";
        fs[i] = relay_peer(NULL, b.relay_port, u, b.pk_b64);
        fr[i] = relay_peer(NULL, b.relay_port, u, b.pk_b64);
        HT_CHECK(fs[i] >= 0 && fr[i] >= 0);
    }
    check_rate("TOTAL_BANDWIDTH=6 (2 pairs)", rate_of(fs, fr, 2, 2000), 6);
    for (i = 0; i < 2; i++) {
        close(fs[i]);
        close(fr[i]);
    }
    if (ht_case_failures())
        srv_dump_log(&b);
out:
    srv_stop(&b);
    b.own_dir = 1; /* made here: remove it */
    srv_cleanup(&b);
}

static void dump_if_failed(void)
{
    /* counted per case: still set after the case ran */
    if (ht_case_failures())
        srv_dump_log(&A);
}

int main(void)
{
    static const char *const extra[] = {
        "--key", "-", "--single-bandwidth", "0", "--total-bandwidth", "0", NULL
    };
    uint64_t t0 = now_ms();

    ht_init("relay");
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0 || srv_start(&A, NULL, extra) != 0) {
        HT_CHECK(!"server did not start");
        return ht_finish();
    }
    HT_RUN(hundred_mb_each_way_with_key);
    dump_if_failed();
    HT_RUN(websocket_tcp_pair);
    dump_if_failed();
    HT_RUN(garbage_does_not_disturb_pairs);
    dump_if_failed();
    HT_RUN(blocklist_reread);
    dump_if_failed();
    srv_cleanup(&A);
    HT_RUN(bandwidth_from_environment);
    printf("# relay integration: %.1f s\n", (double)(now_ms() - t0) / 1000.0);
    return ht_finish();
}

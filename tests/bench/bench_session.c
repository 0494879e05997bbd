/*
 * Whole-suite benchmarks on this machine (make bench): the real server,
 * homedesk-host sharing a private Xvfb (the static test card of
 * tests/e2e), homedesk-viewer.  Each figure is printed next to a baseline
 * measured in the same run where one exists.
 *
 *   id-to-frame: wall time of `homedesk-viewer --headless --frames 1 ID`
 *     (process start, rendezvous, connection, login, the host's first key
 *     frame, decode, PNG), and the viewer's own connect_ms; baseline: the
 *     same with --direct HOST:PORT (no rendezvous).  Target <= 300 ms.
 *   idle: CPU (% of one core, utime + stime from /proc/PID/stat) of the
 *     host and of the viewer (a window on a second Xvfb) over 30 s of a
 *     static screen with the session up, and the session's bitrate (both
 *     ways, counted by a proxy between them); baseline: the host with no
 *     session.  Targets <= 1 % and <= 20 kbit/s.
 *   latency: a key typed at the test card on the host's display (xdotool):
 *     time until the card's pixels change (X itself: the baseline), until
 *     the host's first bytes after it leave (capture, encode, send: the
 *     host pipeline is the difference), and until the viewer's window
 *     shows it (glass to glass on loopback).
 *
 * Usage: bench_session [IDLE_SECONDS]   (default 30)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "tests/e2e/desk.h"
#include "tests/image.h"

#define PASSWORD "bench-Pa55word"
#define RUNS     10

static const struct desk_rect card_at = { 660, 40, 580, 420 };
static const struct desk_rect echo_at = { 660, 440, 580, 20 };
static char tmpdir[256];
static struct srv srv;
static struct desk_screen A, B;
static struct desk_host host;

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* One headless run with --frames 1: wall ms, and its connect_ms. */
static int one_frame(const char *name, const char *const *extra, int *wall,
                     int *connect)
{
    struct desk_viewer v;
    char out[2048], *p;
    uint64_t t0 = now_ms();

    *wall = *connect = -1;
    if (desk_viewer_start(&v, tmpdir, name, &srv, NULL, PASSWORD,
                          extra[0] != NULL && strcmp(extra[0], "--direct") == 0
                              ? NULL
                              : host.id,
                          extra) != 0 ||
        desk_viewer_wait(&v, 10000) != 0) {
        desk_viewer_stop(&v);
        desk_viewer_dump(&v);
        return -1;
    }
    *wall = (int)(now_ms() - t0);
    desk_slurp(v.out, out, sizeof(out));
    if ((p = strstr(out, "connect_ms=")) != NULL)
        *connect = atoi(p + strlen("connect_ms="));
    return 0;
}

static int series(const char *label, const char *const *extra, int *med)
{
    int wall[RUNS], conn[RUNS];

    for (int i = 0; i < RUNS; i++)
        if (one_frame(label, extra, &wall[i], &conn[i]) != 0)
            return -1;
    qsort(wall, RUNS, sizeof(int), cmp_int);
    qsort(conn, RUNS, sizeof(int), cmp_int);
    printf("id-to-frame: %-8s wall median %d ms (min %d, max %d), "
           "connect_ms median %d\n",
           label, wall[RUNS / 2], wall[0], wall[RUNS - 1], conn[RUNS / 2]);
    *med = wall[RUNS / 2];
    return 0;
}

static int bench_id_to_frame(void)
{
    char direct[64];
    const char *by_id[] = { "--frames", "1", NULL };
    const char *dir[] = { "--direct", direct, "--frames", "1", NULL };
    int by_id_ms, direct_ms;

    snprintf(direct, sizeof(direct), "127.0.0.1:%u", host.port);
    if (series("direct", dir, &direct_ms) != 0 ||
        series("by-id", by_id, &by_id_ms) != 0)
        return -1;
    printf("id-to-frame: by ID %d ms, %+d ms over the direct baseline "
           "(target <= 300 ms: %s)\n",
           by_id_ms, by_id_ms - direct_ms, by_id_ms <= 300 ? "met" : "MISSED");
    return 0;
}

static int bench_idle_and_latency(int idle_s)
{
    struct desk_proxy *proxy = NULL;
    struct desk_viewer v;
    char direct[64];
    const char *extra[] = { "--direct", direct, NULL };
    double h0, h1, v0, v1, x0, x1, base0, base1;
    uint64_t b0, b1, t0;
    uint16_t pport;
    int r = -1, lat_draw[RUNS], lat_send[RUNS], lat_show[RUNS];
    size_t n = (size_t)echo_at.w * echo_at.h * 3;
    uint8_t *e0 = malloc(n), *e = malloc(n), *eb = malloc(n);

    memset(&v, 0, sizeof(v));
    /* baseline: the host with no session */
    base0 = desk_cpu_seconds(host.pid);
    sleep(5);
    base1 = desk_cpu_seconds(host.pid);
    if (desk_proxy_start(&proxy, &pport) != 0)
        goto out;
    desk_proxy_upstream(proxy, host.port);
    snprintf(direct, sizeof(direct), "127.0.0.1:%u", pport);
    if (desk_viewer_start(&v, tmpdir, "idle", &srv, &B, PASSWORD, NULL,
                          extra) != 0 ||
        !file_has(v.err, "first frame shown", 10000)) {
        desk_viewer_dump(&v);
        goto out;
    }
    sleep(2); /* past the first frames */
    h0 = desk_cpu_seconds(host.pid);
    v0 = desk_cpu_seconds(v.pid);
    x0 = desk_cpu_seconds(A.x.pid);
    b0 = desk_proxy_bytes(proxy);
    t0 = now_ms();
    sleep((unsigned)idle_s);
    h1 = desk_cpu_seconds(host.pid);
    v1 = desk_cpu_seconds(v.pid);
    x1 = desk_cpu_seconds(A.x.pid);
    b1 = desk_proxy_bytes(proxy);
    {
        double secs = (double)(now_ms() - t0) / 1000.0;
        double hp = (h1 - h0) * 100 / secs, vp = (v1 - v0) * 100 / secs;
        double kbps = (double)(b1 - b0) * 8 / 1000 / secs;

        printf("idle: host %.2f %% of a core with a session (baseline: %.2f "
               "%% without one), viewer %.2f %%, Xvfb %.2f %%, over %.0f s "
               "(target <= 1 %%: %s)\n",
               hp, (base1 - base0) * 100 / 5, vp, (x1 - x0) * 100 / secs, secs,
               hp <= 1 && vp <= 1 ? "met" : "MISSED");
        printf("idle: bitrate %.2f kbit/s both ways (%llu bytes; target <= "
               "20: %s)\n",
               kbps, (unsigned long long)(b1 - b0),
               kbps <= 20 ? "met" : "MISSED");
    }

    /* latency: keys typed at the card on A */
    if (e0 == NULL || e == NULL || eb == NULL ||
        desk_sh(&A, "xdotool mousemove %d %d", card_at.x + 100,
                card_at.y + 300) != 0)
        goto out;
    for (int i = 0; i < RUNS; i++) {
        uint64_t sent0, start;
        int drawn = -1, sent = -1, shown = -1;

        usleep(300000);
        desk_grab(&A, echo_at, e0);
        sent0 = desk_proxy_bytes_from(proxy, 1);
        start = now_ms();
        if (desk_sh(&A, "xdotool key --delay 0 %c", 'a' + i) != 0)
            goto out;
        while (now_ms() - start < 2000 && shown < 0) {
            int t = (int)(now_ms() - start);

            if (sent < 0 && desk_proxy_bytes_from(proxy, 1) > sent0)
                sent = t;
            if (drawn < 0 && desk_grab(&A, echo_at, e) == 0 &&
                memcmp(e, e0, n) != 0)
                drawn = t;
            if (drawn >= 0 && desk_grab(&A, echo_at, e) == 0 &&
                desk_grab(&B, echo_at, eb) == 0 &&
                desk_shows_change(e0, e, eb, echo_at.w, echo_at.h, 10, NULL))
                shown = t;
        }
        lat_draw[i] = drawn;
        lat_send[i] = sent;
        lat_show[i] = shown;
    }
    qsort(lat_draw, RUNS, sizeof(int), cmp_int);
    qsort(lat_send, RUNS, sizeof(int), cmp_int);
    qsort(lat_show, RUNS, sizeof(int), cmp_int);
    printf("latency: key to pixels on the host's display %d ms (X, baseline), "
           "to the host's first bytes %d ms (host pipeline ~%d ms), to the "
           "viewer's window %d ms (glass to glass); medians of %d, "
           "sampled every ~1-3 ms\n",
           lat_draw[RUNS / 2], lat_send[RUNS / 2],
           lat_send[RUNS / 2] - lat_draw[RUNS / 2], lat_show[RUNS / 2], RUNS);
    r = 0;
out:
    if (v.pid > 0)
        desk_viewer_stop(&v);
    desk_proxy_free(proxy);
    free(e0);
    free(e);
    free(eb);
    return r;
}

int main(int argc, char **argv)
{
    char record[300];
    int idle_s = argc > 1 ? atoi(argv[1]) : 30, r = 1;
    pid_t card = -1;

    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0)
        return 1;
    if (!xvfb_have("Xvfb") || !xvfb_have("xdotool")) {
        printf("bench_session: skipped (Xvfb or xdotool missing)\n");
        return 0;
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/hd-bench-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    snprintf(record, sizeof(record), "%s/card.rec", tmpdir);
    if (srv_start(&srv, NULL, NULL) != 0 || desk_screen_open(&A) != 0 ||
        desk_screen_open(&B) != 0 ||
        (card = desk_card_start(&A, card_at, record, 0x3a6ea5, tmpdir)) < 0 ||
        desk_host_start(&host, tmpdir, &srv, &A, PASSWORD, NULL) != 0) {
        fprintf(stderr, "bench_session: setup failed\n");
        desk_dump("host log", host.log);
        goto out;
    }
    if (bench_id_to_frame() == 0 && bench_idle_and_latency(idle_s) == 0)
        r = 0;
out:
    desk_host_stop(&host);
    desk_stop(card, 2000);
    desk_screen_close(&A);
    desk_screen_close(&B);
    srv_cleanup(&srv);
    if (getenv("HD_KEEP_TMP") == NULL) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return r;
}

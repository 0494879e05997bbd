/*
 * homedesk against a real, widely used peer on this machine (make bench):
 * TigerVNC (X0tigervnc, the scraping server x0vncserver runs, and
 * xtigervncviewer, both from Debian: tools/deps.sh bench installs them; nothing
 * of theirs is built here), run alternately with homedesk on the same pair of
 * 1280x720 Xvfb displays: A is shared, each viewer's window covers B 1:1.
 *
 * Each run, on the LAN (loopback through a counting proxy) and on a WAN
 * (the same proxy as a 40 ms round trip, 20 Mbit/s, 1 % loss link:
 * desk_proxy_shape, as this kernel has no netem):
 *   glass to glass: a probe of ours flips a 64x64 square on A (an X
 *     window's background, black <-> white) and polls the same place on B
 *     with XShmGetImage (well above 1 kHz) until it shows the new colour;
 *     PROBES flips, 150-250 ms apart; p50 and p95.
 *   workload: typing into an xterm (xdotool, 50 ms per key), fast
 *     scrolling output (seq in the xterm), a window dragged across the
 *     screen (xdotool windowmove every 16 ms), then stillness; over it,
 *     the session's bytes (both ways, counted by the proxy: exactly the
 *     session's), CPU seconds of the sharing side and of the viewer
 *     (utime + stime from /proc/PID/stat).
 *   picture: STILL_MS after the workload, PSNR of B against A over the
 *     whole screen and over the xterm, and whether the xterm is
 *     pixel-exact; and the whole screen's PSNR already after SHARP_MS of
 *     stillness (issue #16: >= 50 dB within 1 s).
 * Prints one line per run, a table of medians per system and link, and
 * homedesk's ratios against TigerVNC with the issue #16 targets.
 *
 * Usage: bench_peers [ROUNDS] [lan|wan|both]   (default 2 both)
 * The machine's load average is printed: figures taken on a busy machine
 * say so.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include <sodium.h>
#include <xcb/shm.h>

#include "tests/e2e/desk.h"
#include "tests/image.h"

#define PASSWORD "bench-Pa55word"
#define PROBES   40
#define PROBE_SZ 64
#define PROBE_X  (DESK_W - PROBE_SZ - 40)
#define PROBE_Y  (DESK_H - PROBE_SZ - 40)
#define STILL_MS 3000
#define SHARP_MS 1000
#define XTERM_X  20
#define XTERM_Y  40
#define MAX_RUNS 16
/* the WAN: one way delay, rate, loss */
#define WAN_DELAY_MS 20
#define WAN_KBPS     20000
#define WAN_LOSS_PM  10

static const struct desk_rect xterm_area = { XTERM_X + 2, XTERM_Y + 2, 480,
                                             260 };

enum sys { SYS_HOMEDESK, SYS_TIGERVNC, SYS_N };
static const char *const sys_name[SYS_N] = { "homedesk", "TigerVNC" };

struct result {
    double g2g_p50, g2g_p95;
    int g2g_lost;
    double bytes, host_cpu, viewer_cpu;
    double psnr, psnr_xterm;
    double psnr_1s; /* whole screen after SHARP_MS still */
    int exact;
};

static char tmpdir[256];
static struct srv srv;
static struct desk_screen A, B;
static pid_t xterm_pid = -1, drag_pid = -1;
static xcb_window_t probe_win;
static int probe_white;
/* B's probe area through MIT-SHM */
static xcb_shm_seg_t shm_seg;
static int shm_id = -1;
static uint8_t *shm_mem;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, int p)
{
    if (n <= 0)
        return -1;
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[(n - 1) * p / 100];
}

static double loadavg(void)
{
    char buf[128];

    return desk_slurp("/proc/loadavg", buf, sizeof(buf)) > 0 ? atof(buf) : -1;
}

/* ---- the probe ------------------------------------------------------------
 */

static int probe_open(void)
{
    uint32_t vals[2] = { 0 /* black */, 1 };

    probe_win = xcb_generate_id(A.c);
    xcb_create_window(A.c, XCB_COPY_FROM_PARENT, probe_win, A.root, PROBE_X,
                      PROBE_Y, PROBE_SZ, PROBE_SZ, 0,
                      XCB_WINDOW_CLASS_INPUT_OUTPUT, XCB_COPY_FROM_PARENT,
                      XCB_CW_BACK_PIXEL | XCB_CW_OVERRIDE_REDIRECT, vals);
    xcb_map_window(A.c, probe_win);
    xcb_flush(A.c);
    shm_id = shmget(IPC_PRIVATE, PROBE_SZ * PROBE_SZ * 4, IPC_CREAT | 0600);
    if (shm_id < 0)
        return -1;
    shm_mem = shmat(shm_id, NULL, 0);
    shmctl(shm_id, IPC_RMID, NULL);
    if (shm_mem == (void *)-1)
        return -1;
    shm_seg = xcb_generate_id(B.c);
    xcb_shm_attach(B.c, shm_seg, (uint32_t)shm_id, 0); /* X writes */
    return 0;
}

static void probe_flip(void)
{
    uint32_t px;

    probe_white = !probe_white;
    px = probe_white ? 0xffffff : 0;
    xcb_change_window_attributes(A.c, probe_win, XCB_CW_BACK_PIXEL, &px);
    xcb_clear_area(A.c, 0, probe_win, 0, 0, 0, 0);
    xcb_flush(A.c);
}

/* B's probe area shows the probe's colour (its middle, within 48). */
static int probe_seen(void)
{
    xcb_shm_get_image_reply_t *r;
    int want = probe_white ? 255 : 0, ok = 1;

    r = xcb_shm_get_image_reply(
        B.c,
        xcb_shm_get_image(B.c, B.root, PROBE_X, PROBE_Y, PROBE_SZ, PROBE_SZ,
                          ~0u, XCB_IMAGE_FORMAT_Z_PIXMAP, shm_seg, 0),
        NULL);
    if (r == NULL)
        return 0;
    free(r);
    for (int y = 16; y < 48 && ok; y += 4)
        for (int x = 16; x < 48 && ok; x += 4) {
            const uint8_t *p = shm_mem + (y * PROBE_SZ + x) * 4;
            if (abs(p[0] - want) > 48 || abs(p[1] - want) > 48)
                ok = 0;
        }
    return ok;
}

/* PROBES flips; p50/p95 of the time until B shows each. */
static void glass_to_glass(struct result *res)
{
    double ms[PROBES];
    int n = 0, lost = 0;

    /* B shows the probe's current colour first */
    for (uint64_t t0 = now_ms(); !probe_seen() && now_ms() - t0 < 3000;)
        usleep(2000);
    for (int i = 0; i < PROBES; i++) {
        uint64_t t0;
        int seen = 0;

        usleep((useconds_t)(150000 + (randombytes_uniform(100) * 1000)));
        t0 = now_ms();
        probe_flip();
        while (now_ms() - t0 < 2000)
            if (probe_seen()) {
                seen = 1;
                break;
            }
        if (seen)
            ms[n++] = (double)(now_ms() - t0);
        else
            lost++;
    }
    res->g2g_lost = lost;
    res->g2g_p50 = pct(ms, n, 50);
    res->g2g_p95 = pct(ms, n, 95);
}

/* ---- the workload ----------------------------------------------------------
 */

static void workload(void)
{
    struct desk_rect g;
    xcb_window_t w;

    desk_sh(&A, "xdotool mousemove %d %d", XTERM_X + 200, XTERM_Y + 100);
    usleep(100000);
    desk_sh(&A, "xdotool type --delay 50 'echo the quick brown fox jumps "
                "over the lazy dog 0123456789'");
    desk_sh(&A, "xdotool key Return");
    desk_sh(&A, "xdotool type --delay 20 'seq -f \"scrolling line %%g of the "
                "homedesk benchmark, as fast as the terminal goes\" 1 "
                "20000'");
    desk_sh(&A, "xdotool key Return");
    sleep(3);
    if (desk_find_window(&A, "hddrag", &w, &g) == 0)
        for (int i = 0; i <= 120; i++) {
            uint32_t xy[2] = { (uint32_t)(560 + i * 4),
                               (uint32_t)(120 + i * 2) };

            xcb_configure_window(A.c, w,
                                 XCB_CONFIG_WINDOW_X | XCB_CONFIG_WINDOW_Y, xy);
            xcb_flush(A.c);
            usleep(16000);
        }
    /* the pointer out of the way: not at the top edge, where our viewer
     * (which follows the host's pointer) shows its menu's handle */
    desk_sh(&A, "xdotool mousemove %d %d", DESK_W - 2, DESK_H / 2);
}

/* PSNR of B against A over the whole screen (-1: no grab). */
static double screen_psnr(void)
{
    struct desk_rect all = { 0, 0, DESK_W, DESK_H };
    size_t n = (size_t)DESK_W * DESK_H * 3;
    uint8_t *a = malloc(n), *b = malloc(n);
    double p = -1;

    if (a != NULL && b != NULL && desk_grab(&A, all, a) == 0 &&
        desk_grab(&B, all, b) == 0)
        p = memcmp(a, b, n) == 0
                ? 99
                : image_psnr(a, DESK_W, 0, 0, b, DESK_W, 0, 0, DESK_W, DESK_H);
    free(a);
    free(b);
    return p;
}

static void picture(struct result *res)
{
    struct desk_rect all = { 0, 0, DESK_W, DESK_H };
    size_t n = (size_t)DESK_W * DESK_H * 3;
    uint8_t *a = malloc(n), *b = malloc(n);

    res->psnr = res->psnr_xterm = -1;
    res->exact = 0;
    if (a != NULL && b != NULL && desk_grab(&A, all, a) == 0 &&
        desk_grab(&B, all, b) == 0) {
        res->psnr =
            image_psnr(a, DESK_W, 0, 0, b, DESK_W, 0, 0, DESK_W, DESK_H);
        res->psnr_xterm =
            image_psnr(a, DESK_W, xterm_area.x, xterm_area.y, b, DESK_W,
                       xterm_area.x, xterm_area.y, xterm_area.w, xterm_area.h);
        res->exact = 1;
        for (int y = xterm_area.y; y < xterm_area.y + xterm_area.h; y++)
            if (memcmp(a + ((size_t)y * DESK_W + xterm_area.x) * 3,
                       b + ((size_t)y * DESK_W + xterm_area.x) * 3,
                       (size_t)xterm_area.w * 3) != 0)
                res->exact = 0;
    }
    free(a);
    free(b);
}

/* ---- one run
 * ----------------------------------------------------------------- */

static pid_t tiger_server(uint16_t *port)
{
    char p[16], log[400];
    const char *argv[] = {
        "X0tigervnc",     "-display", A.x.display,  "-rfbport",      p,
        "-SecurityTypes", "None",     "-localhost", "-AlwaysShared", NULL
    };
    pid_t pid;

    *port = (uint16_t)(20000 + randombytes_uniform(20000));
    snprintf(p, sizeof(p), "%u", *port);
    snprintf(log, sizeof(log), "%s/x0vncserver.log", tmpdir);
    if ((pid = desk_spawn(argv, NULL, NULL, log)) < 0)
        return -1;
    for (int i = 0; i < 100; i++) {
        int fd = tcp_connect("127.0.0.1", *port);

        if (fd >= 0) {
            close(fd);
            return pid;
        }
        usleep(50000);
    }
    desk_dump("x0vncserver did not listen", log);
    desk_stop(pid, 1000);
    return -1;
}

static pid_t tiger_viewer(uint16_t port)
{
    char disp[64], target[64], log[400];
    const char *argv[] = { "xtigervncviewer", "-SecurityTypes", "None",
                           "-FullScreen",     target,           NULL };
    const char *env[] = { disp, NULL };

    snprintf(disp, sizeof(disp), "DISPLAY=%s", B.x.display);
    snprintf(target, sizeof(target), "127.0.0.1::%u", port);
    snprintf(log, sizeof(log), "%s/vncviewer.log", tmpdir);
    return desk_spawn(argv, env, NULL, log);
}

static int run(enum sys sys, int wan, struct result *res)
{
    struct desk_proxy *proxy = NULL;
    struct desk_host host;
    struct desk_viewer v;
    pid_t server = -1, viewer = -1;
    uint16_t pport, port;
    char direct[64];
    const char *extra[] = { "--direct", direct, NULL };
    double h0, v0;
    uint64_t b0;
    int r = -1;

    memset(&host, 0, sizeof(host));
    memset(&v, 0, sizeof(v));
    memset(res, 0, sizeof(*res));
    if (desk_proxy_start(&proxy, &pport) != 0)
        goto out;
    if (wan)
        desk_proxy_shape(proxy, WAN_DELAY_MS, WAN_KBPS, WAN_LOSS_PM);
    if (sys == SYS_HOMEDESK) {
        if (desk_host_start(&host, tmpdir, &srv, &A, PASSWORD, NULL) != 0)
            goto out;
        server = host.pid;
        desk_proxy_upstream(proxy, host.port);
        snprintf(direct, sizeof(direct), "127.0.0.1:%u", pport);
        if (desk_viewer_start(&v, tmpdir, "viewer", &srv, &B, PASSWORD, NULL,
                              extra) != 0 ||
            !file_has(v.err, "first frame shown", 15000)) {
            desk_viewer_dump(&v);
            desk_dump("host log", host.log);
            goto out;
        }
        viewer = v.pid;
    } else {
        if ((server = tiger_server(&port)) < 0)
            goto out;
        desk_proxy_upstream(proxy, port);
        if ((viewer = tiger_viewer(pport)) < 0)
            goto out;
    }
    sleep(2); /* past the first picture */
    glass_to_glass(res);
    h0 = desk_cpu_seconds(server);
    v0 = desk_cpu_seconds(viewer);
    b0 = desk_proxy_bytes(proxy);
    workload();
    usleep(SHARP_MS * 1000);
    res->psnr_1s = screen_psnr();
    usleep((STILL_MS - SHARP_MS) * 1000);
    res->host_cpu = desk_cpu_seconds(server) - h0;
    res->viewer_cpu = desk_cpu_seconds(viewer) - v0;
    res->bytes = (double)(desk_proxy_bytes(proxy) - b0);
    picture(res);
    if (getenv("HD_KEEP_TMP") != NULL) {
        char p[400];
        size_t n = (size_t)DESK_W * DESK_H * 3;
        uint8_t *b = malloc(n);
        struct desk_rect all = { 0, 0, DESK_W, DESK_H };

        snprintf(p, sizeof(p), "%s/%s-%s-b.png", tmpdir, sys_name[sys],
                 wan ? "wan" : "lan");
        if (b != NULL && desk_grab(&B, all, b) == 0)
            image_write_png(p, b, DESK_W, DESK_H);
        free(b);
    }
    r = 0;
out:
    if (sys == SYS_HOMEDESK) {
        if (v.pid > 0)
            desk_viewer_stop(&v);
        desk_host_stop(&host);
    } else {
        desk_stop(viewer, 2000);
        desk_stop(server, 2000);
    }
    desk_proxy_free(proxy);
    /* the next run starts from the same screen: clear the xterm */
    desk_sh(&A, "xdotool mousemove %d %d", XTERM_X + 200, XTERM_Y + 100);
    desk_sh(&A, "xdotool key ctrl+c");
    desk_sh(&A, "xdotool type clear");
    desk_sh(&A, "xdotool key Return");
    {
        xcb_window_t w;
        struct desk_rect g;
        uint32_t xy[2] = { 560, 120 };

        if (desk_find_window(&A, "hddrag", &w, &g) == 0)
            xcb_configure_window(A.c, w,
                                 XCB_CONFIG_WINDOW_X | XCB_CONFIG_WINDOW_Y, xy);
        xcb_flush(A.c);
    }
    sleep(1);
    return r;
}

/* ---- report
 * ------------------------------------------------------------------ */

static void print_run(enum sys s, int wan, const struct result *r)
{
    printf("run: %-8s %s g2g p50 %.0f ms p95 %.0f ms (%d lost), %.0f kB, "
           "host %.2f s, viewer %.2f s CPU, PSNR %.1f dB (after 1 s %.1f "
           "dB; xterm %.1f dB, %s), load %.1f\n",
           sys_name[s], wan ? "WAN" : "LAN", r->g2g_p50, r->g2g_p95,
           r->g2g_lost, r->bytes / 1000, r->host_cpu, r->viewer_cpu, r->psnr,
           r->psnr_1s, r->psnr_xterm, r->exact ? "exact" : "not exact",
           loadavg());
    fflush(stdout);
}

/* Median over runs of one field. */
static double med(const struct result *rs, int n, size_t off)
{
    double v[MAX_RUNS];

    for (int i = 0; i < n; i++)
        v[i] = *(const double *)((const char *)&rs[i] + off);
    return pct(v, n, 50);
}

#define MED(rs, n, f) med(rs, n, offsetof(struct result, f))

static void report(int wan, struct result rs[SYS_N][MAX_RUNS], int n)
{
    double m[SYS_N][8];
    const char *link = wan ? "WAN (40 ms RTT, 20 Mbit/s, 1 % loss)" : "LAN";
    int rtt = wan ? 2 * WAN_DELAY_MS : 0;

    printf("\n%s, medians of %d runs each\n", link, n);
    printf("| system   | g2g p50 | g2g p95 | bytes    | host CPU | viewer "
           "CPU | PSNR (xterm)      | PSNR 1 s |\n");
    for (int s = 0; s < SYS_N; s++) {
        int exact = 0;

        m[s][0] = MED(rs[s], n, g2g_p50);
        m[s][1] = MED(rs[s], n, g2g_p95);
        m[s][2] = MED(rs[s], n, bytes);
        m[s][3] = MED(rs[s], n, host_cpu);
        m[s][4] = MED(rs[s], n, viewer_cpu);
        m[s][5] = MED(rs[s], n, psnr);
        m[s][6] = MED(rs[s], n, psnr_xterm);
        m[s][7] = MED(rs[s], n, psnr_1s);
        for (int i = 0; i < n; i++)
            exact += rs[s][i].exact;
        printf("| %-8s | %4.0f ms | %4.0f ms | %6.0f kB | %6.2f s | %8.2f s "
               "| %4.1f dB (%4.1f%s) | %4.1f dB |\n",
               sys_name[s], m[s][0], m[s][1], m[s][2] / 1000, m[s][3], m[s][4],
               m[s][5], m[s][6], exact == n ? ", exact" : "", m[s][7]);
    }
#define RATIO(i) \
    (m[SYS_TIGERVNC][i] > 0 ? m[SYS_HOMEDESK][i] / m[SYS_TIGERVNC][i] : -1)
    printf("ratios homedesk / TigerVNC: g2g p50 %.2fx (target <= 0.8x: %s), "
           "p95 %.2fx, bytes %.2fx (<= 0.5x: %s), host CPU %.2fx (<= 1x: "
           "%s), viewer CPU %.2fx (<= 2x: %s)\n",
           RATIO(0), RATIO(0) <= 0.8 ? "met" : "MISSED", RATIO(1), RATIO(2),
           RATIO(2) <= 0.5 ? "met" : "MISSED", RATIO(3),
           RATIO(3) <= 1 ? "met" : "MISSED", RATIO(4),
           RATIO(4) <= 2 ? "met" : "MISSED");
    if (wan)
        printf("WAN targets: g2g p50 %.0f ms <= RTT + 15 = %d ms: %s; p95 %.0f "
               "ms <= RTT + 40 = %d ms: %s; better than TigerVNC: %s\n",
               m[0][0], rtt + 15, m[0][0] <= rtt + 15 ? "met" : "MISSED",
               m[0][1], rtt + 40, m[0][1] <= rtt + 40 ? "met" : "MISSED",
               m[0][0] < m[1][0] && m[0][1] < m[1][1] ? "yes" : "NO");
    else
        printf("LAN target: g2g p95 %.0f ms <= 12 ms: %s\n", m[0][1],
               m[0][1] <= 12 ? "met" : "MISSED");
    printf("picture target: whole screen %.1f dB after %d ms still >= 50 dB: "
           "%s\n",
           m[0][7], SHARP_MS, m[0][7] >= 50 ? "met" : "MISSED");
}

static int setup(void)
{
    char disp[64], geo[64], geo2[64], p[400];
    const char *xterm[] = { "xterm", "-geometry", geo,  "-fn", "fixed",
                            "+sb",   "-e",        "sh", NULL };
    const char *drag[] = { "xterm",  "-geometry", geo2,      "-T",
                           "hddrag", "-bg",       "#e0e8ff", NULL };
    const char *xenv[] = { disp, "PS1=$ ", "ENV=", NULL };
    xcb_window_t w;
    struct desk_rect g;
    int i;

    if (srv_start(&srv, NULL, NULL) != 0 || desk_screen_open(&A) != 0 ||
        desk_screen_open(&B) != 0)
        return -1;
    snprintf(disp, sizeof(disp), "DISPLAY=%s", A.x.display);
    snprintf(geo, sizeof(geo), "80x20+%d+%d", XTERM_X, XTERM_Y);
    snprintf(geo2, sizeof(geo2), "40x10+560+120");
    snprintf(p, sizeof(p), "%s/xterm.err", tmpdir);
    xterm_pid = desk_spawn(xterm, xenv, NULL, p);
    drag_pid = desk_spawn(drag, xenv, NULL, NULL);
    for (i = 0; i < 100 && (desk_find_window(&A, "sh", &w, &g) != 0 ||
                            desk_find_window(&A, "hddrag", &w, &g) != 0);
         i++)
        usleep(50000);
    if (i == 100)
        return -1;
    return probe_open();
}

int main(int argc, char **argv)
{
    static struct result rs[2][SYS_N][MAX_RUNS];
    int rounds = argc > 1 ? atoi(argv[1]) : 2, r = 1;
    const char *which = argc > 2 ? argv[2] : "both";
    int links[2] = { strcmp(which, "wan") != 0, strcmp(which, "lan") != 0 };

    signal(SIGPIPE, SIG_IGN);
    if (rounds < 1 || rounds > MAX_RUNS)
        rounds = 2;
    if (sodium_init() < 0)
        return 1;
    if (!xvfb_have("Xvfb") || !xvfb_have("xdotool") || !xvfb_have("xterm") ||
        !xvfb_have("X0tigervnc") || !xvfb_have("xtigervncviewer")) {
        printf("bench_peers: skipped (Xvfb, xdotool, xterm or TigerVNC "
               "missing: tools/deps.sh bench installs them)\n");
        return 0;
    }
    if (desk_tmp_make(tmpdir, sizeof(tmpdir), "peers") != 0)
        return 1;
    if (setup() != 0) {
        fprintf(stderr, "bench_peers: setup failed\n");
        goto out;
    }
    printf("bench_peers: %d rounds, load average %.1f at start (2 cores "
           "here; a load above ~1 means a busy machine and noisy figures)\n",
           rounds, loadavg());
    for (int wan = 0; wan < 2; wan++) {
        if (!links[wan])
            continue;
        for (int i = 0; i < rounds; i++)
            for (int s = 0; s < SYS_N; s++) {
                /* alternate which system goes first */
                enum sys sy = (enum sys)((s + i) % SYS_N);

                /* one retry: a run can fail to start on a loaded machine */
                if (run(sy, wan, &rs[wan][sy][i]) != 0 &&
                    run(sy, wan, &rs[wan][sy][i]) != 0) {
                    fprintf(stderr, "bench_peers: %s run failed\n",
                            sys_name[sy]);
                    goto out;
                }
                print_run(sy, wan, &rs[wan][sy][i]);
            }
        report(wan, rs[wan], rounds);
    }
    r = 0;
out:
    desk_stop(xterm_pid, 2000);
    desk_stop(drag_pid, 2000);
    if (shm_mem != NULL && shm_mem != (void *)-1)
        shmdt(shm_mem);
    desk_screen_close(&A);
    desk_screen_close(&B);
    srv_cleanup(&srv);
    desk_tmp_done(tmpdir);
    return r;
}

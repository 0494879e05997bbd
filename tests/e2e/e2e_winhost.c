/*
 * The Windows host under Wine (run by tests/e2e/test_win_host.sh): display
 * A (Xvfb) shows the test card (a native X client: GDI capture under Wine
 * reads the whole X screen) and hd-wintest.exe, our Win32 test window
 * (SendInput reaches Windows windows only); build-win/homedesk-host.exe
 * runs under Wine on A and registers with the native homedesk-server;
 * native viewers connect by ID.  Cases:
 *  - --selftest reports capture gdi, input sendinput, the clipboard and
 *    audio (wasapi, recording hd-mic) ok;
 *  - a headless viewer by ID: its PNG matches A (PSNR >= 35 dB);
 *  - a viewer window on display B matches A (PSNR >= 35 dB);
 *  - a click (xdotool on B) lands in the Win32 window where aimed, and
 *    text typed on B (upper case, digits, space) arrives as WM_CHARs;
 *  - the clipboard both ways (xclip: Wine bridges the X CLIPBOARD and the
 *    Win32 clipboard);
 *  - a session forced through the relay shows the screen;
 *  - sound: a tone played into a private PulseAudio reaches the viewer
 *    (the host's wasapi backend records "hd-mic", a PulseAudio source
 *    Wine offers as a recording device: Wine has no WASAPI loopback);
 *  - an idle host (still screen, session open, sound on) stays cheap.
 * Skipped, with the reason, only when Wine cannot run a program here.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "tests/e2e/desk.h"
#include "tests/e2e/tone.h"
#include "tests/harness.h"
#include "tests/image.h"

#define PASSWORD "win-Pa55word"
#define MIN_PSNR 35.0
#define MAX_CPU  10.0 /* percent of one CPU, idle (GDI polls, see gdi.c) */
#define ROOT_RGB 0x3a6ea5
#define WINE_MS  60000 /* Wine's first start in a prefix is slow */

static const struct desk_rect card_at = { 660, 40, 580, 420 };
static const struct desk_rect win_at = { 40, 420, 560, 260 };

static char tmpdir[256], record[300], wrecord[300], prefix[512];
static char exe[512], wintest[512], envdisp[64], envprefix[600];
static char pulse[512], envpulse[600] = "HD_NO_PULSE=1", tone[300];
static const char *wine_env[] = { envdisp,
                                  envprefix,
                                  envpulse,
                                  "WINEDEBUG=-all",
                                  "WINEDLLOVERRIDES=mscoree,mshtml=",
                                  NULL };
static struct srv srv;
static struct desk_screen A, B;
static struct desk_host host;
static struct desk_viewer viewer;
static pid_t card_pid = -1, wintest_pid = -1, pulse_pid = -1;
static int up, tone_heard_ms = -1;

/* Run a shell command (one simple command) with Wine's environment
 * above; its exit status. */
static int wine_sh(const char *cmd)
{
    return desk_sh(NULL, "%s %s %s %s %s %s", wine_env[0], wine_env[1],
                   wine_env[2], wine_env[3], wine_env[4], cmd);
}

/* Wine starts and runs a program in the prefix: 0, else nonzero (the
 * output appended to out). */
static int wine_runs(const char *out)
{
    char boot[800], run[800];

    snprintf(boot, sizeof(boot), "wineboot -i >>%s 2>&1", out);
    snprintf(run, sizeof(run), "wine cmd /c exit 0 >>%s 2>&1", out);
    return wine_sh(boot) != 0 || wine_sh(run) != 0;
}

/* The Wine prefix (build-win/wine, kept: creating one takes ~20 s) is
 * ready and Wine runs a program.  A prefix that Wine cannot start in (one
 * left half made by a killed wineboot, or with a damaged system32: "could
 * not load kernel32.dll") is not fixed by Wine itself and would skip this
 * test in every later run: it is deleted and made again, once.  0, or -1
 * with why in why. */
static int wine_ready(char *why, size_t cap)
{
    char out[400];

    snprintf(out, sizeof(out), "%s/wine.out", tmpdir);
    if (desk_sh(NULL, "wine --version >%s 2>&1", out) != 0) {
        snprintf(why, cap, "wine is not installed (tools/deps.sh win64)");
        return -1;
    }
    if (wine_runs(out) == 0)
        return 0;
    desk_dump("wine in the kept prefix", out);
    printf("# the Wine prefix %s runs no program: deleting it and making "
           "a fresh one\n",
           prefix);
    /* its wineserver (if one lingers) must not outlive the files */
    (void)wine_sh("wineserver -k >/dev/null 2>&1");
    if (desk_sh(NULL, "rm -rf '%s'", prefix) != 0) {
        snprintf(why, cap,
                 "could not delete the broken Wine prefix %s: "
                 "delete it by hand",
                 prefix);
        return -1;
    }
    desk_sh(NULL, ": >%s", out);
    if (wine_runs(out) != 0) {
        desk_dump("wine in a fresh prefix", out);
        snprintf(why, cap,
                 "wine cannot run a program here, even in a fresh "
                 "prefix %s (its output above; try 'WINEPREFIX=%s wine cmd "
                 "/c exit 0')",
                 prefix, prefix);
        return -1;
    }
    printf("# a fresh Wine prefix %s runs programs\n", prefix);
    return 0;
}

/*
 * A private PulseAudio for Wine's sound (winepulse): its null sink plays
 * the tone, and "hd-mic" (a source remapped from the sink's monitor: a
 * recording device for Windows programs) is what the host records.
 */
static int start_pulse(void)
{
    snprintf(tone, sizeof(tone), "%s/tone.raw", tmpdir);
    if (tone_write(tone) != 0 ||
        (pulse_pid = desk_pulse_start(tmpdir, pulse, sizeof(pulse))) < 0) {
        printf("# no PulseAudio for Wine (pulseaudio, pactl)\n");
        return -1;
    }
    snprintf(envpulse, sizeof(envpulse), "PULSE_SERVER=%s", pulse);
    if (desk_sh(NULL,
                "PULSE_SERVER='%s' pactl load-module module-remap-source "
                "master=hd_null.monitor source_name=hd_mic "
                "source_properties=device.description=hd-mic >/dev/null",
                pulse) != 0) {
        printf("# PulseAudio made no hd-mic source\n");
        return -1;
    }
    /* the viewer windows play into files */
    setenv("SDL_AUDIODRIVER", "disk", 1);
    return 0;
}

static int setup(void)
{
    char out[330], err[330], z_rec[320], sx[16], sy[16], sw[16], sh[16];
    const char *argv[] = { "wine", wintest, z_rec, sx, sy, sw, sh, NULL };
    const char *pre[] = { "wine", exe, NULL };
    const char *extra[] = { "--audio-source", "hd-mic", "-v", NULL };
    struct desk_host_cmd cmd = { pre, wine_env, WINE_MS, "Z:" };

    if (srv_start(&srv, NULL, NULL) != 0) {
        printf("# homedesk-server did not start\n");
        return -1;
    }
    if (desk_screen_open(&B) != 0) {
        printf("# Xvfb did not start\n");
        return -1;
    }
    snprintf(record, sizeof(record), "%s/card.rec", tmpdir);
    card_pid = desk_card_start(&A, card_at, record, ROOT_RGB, tmpdir);
    if (card_pid < 0)
        return -1;
    snprintf(wrecord, sizeof(wrecord), "%s/wintest.rec", tmpdir);
    snprintf(z_rec, sizeof(z_rec), "Z:%s", wrecord);
    snprintf(sx, sizeof(sx), "%d", win_at.x);
    snprintf(sy, sizeof(sy), "%d", win_at.y);
    snprintf(sw, sizeof(sw), "%d", win_at.w);
    snprintf(sh, sizeof(sh), "%d", win_at.h);
    snprintf(out, sizeof(out), "%s/wintest.out", tmpdir);
    snprintf(err, sizeof(err), "%s/wintest.err", tmpdir);
    wintest_pid = desk_spawn(argv, wine_env, out, err);
    if (wintest_pid < 0 || !file_has(wrecord, "ready", WINE_MS)) {
        printf("# hd-wintest.exe did not start\n");
        desk_dump("hd-wintest", err);
        return -1;
    }
    if (start_pulse() != 0)
        return -1;
    if (desk_host_start_cmd(&host, tmpdir, &srv, NULL, PASSWORD, extra, &cmd) !=
        0) {
        printf("# homedesk-host.exe did not start under Wine\n");
        desk_dump("host stdout", host.out);
        desk_dump("host log", host.log);
        return -1;
    }
    return 0;
}

static void teardown(void)
{
    if (viewer.pid > 0)
        desk_viewer_stop(&viewer);
    desk_host_stop(&host);
    desk_stop(wintest_pid, 2000);
    desk_stop(card_pid, 2000);
    if (prefix[0])
        wine_sh("wineserver -k >/dev/null 2>&1");
    if (pulse_pid > 0)
        desk_stop(pulse_pid, 2000);
    desk_screen_close(&A);
    desk_screen_close(&B);
    srv_cleanup(&srv);
}

static void set_up(void)
{
    up = setup() == 0;
    HT_CHECK(up);
}

/* homedesk-host.exe --selftest with args: what it printed into buf[cap]
 * (shown too); its exit status is checked to be 0 (audio is optional). */
static void selftest(const char *args, char *buf, size_t cap)
{
    char out[400], cmd[1600];

    snprintf(out, sizeof(out), "%s/selftest.out", tmpdir);
    snprintf(cmd, sizeof(cmd),
             "wine %s --selftest %s --config-dir Z:%s/selftest >%s 2>&1", exe,
             args, tmpdir, out);
    HT_EQ_INT(wine_sh(cmd), 0);
    buf[0] = '\0';
    desk_slurp(out, buf, cap);
    printf("%s", buf);
}

static void selftest_reports_backends(void)
{
    char buf[4096];

    selftest("--audio-source hd-mic", buf, sizeof(buf));
    HT_CHECK(strstr(buf, "selftest: capture dxgi: unavailable, fell back to "
                         "gdi: IDXGIOutput1::DuplicateOutput on ") != NULL);
    HT_CHECK(strstr(buf, "E_NOTIMPL") != NULL);
    HT_CHECK(strstr(buf, "selftest: capture gdi: ok, 1280x720") != NULL);
    HT_CHECK(strstr(buf, "selftest: input sendinput: ok") != NULL);
    HT_CHECK(strstr(buf, "selftest: clipboard win32: ok") != NULL);
    HT_CHECK(strstr(buf, "selftest: network: ok") != NULL);
    HT_CHECK(strstr(buf, "selftest: audio auto: ok (wasapi: read a frame of "
                         "hd-mic)") != NULL);
}

/*
 * --capture gdi: no dxgi attempt, no fallback line.  No --audio-source:
 * wasapi tries the loopback of the default output (the PulseAudio sink
 * under Wine), which Wine refuses (AUDCLNT_E_WRONG_ENDPOINT_TYPE): the
 * reason and the way round (--audio-source) are reported.
 */
static void selftest_gdi_and_loopback(void)
{
    char buf[4096];

    selftest("--capture gdi", buf, sizeof(buf));
    HT_CHECK(strstr(buf, "selftest: capture gdi: ok, 1280x720") != NULL);
    HT_CHECK(strstr(buf, "dxgi") == NULL);
    HT_CHECK(strstr(buf, "selftest: audio auto: FAILED: ") != NULL);
    HT_CHECK(strstr(buf, ": cannot capture what plays on it (error "
                         "0x88890003 AUDCLNT_E_WRONG_ENDPOINT_TYPE: no "
                         "loopback here); --audio-source can name a "
                         "recording device instead") != NULL);
}

/* The host's capture: dxgi refused under Wine, one warning, gdi on. */
static void dxgi_falls_back_to_gdi(void)
{
    static const char line[] = "WARN  capture: falling back to gdi: dxgi "
                               "unavailable: IDXGIOutput1::DuplicateOutput";
    char buf[65536], *p;
    int n = 0;

    HT_CHECK(file_has(host.log, "capture-gdi: virtual desktop 1280x720", 10));
    desk_slurp(host.log, buf, sizeof(buf));
    for (p = buf; (p = strstr(p, line)) != NULL; p++)
        n++;
    HT_EQ_INT(n, 1);
    HT_CHECK(strstr(buf, "capture-dxgi") == NULL); /* nothing else said */
}

/* Best PSNR of pic (w x h RGB) against A within a few tries. */
static double against_a(const uint8_t *pic, int w, int h)
{
    struct desk_rect all = { 0, 0, DESK_W, DESK_H };
    uint8_t *a = malloc(DESK_W * DESK_H * 3);
    double psnr = 0, p;

    if (a == NULL || w != DESK_W || h != DESK_H) {
        free(a);
        return 0;
    }
    if (desk_grab(&A, all, a) == 0) {
        p = image_psnr(a, DESK_W, 0, 0, pic, DESK_W, 0, 0, DESK_W, DESK_H);
        psnr = p > psnr ? p : psnr;
    }
    free(a);
    return psnr;
}

static void headless_by_id_matches(void)
{
    /* a still screen: the key frame and its refinement (one message of
     * still tiles toward our viewer: common/tiles.h) */
    const char *extra[] = { "--frames", "2", "--timeout", "20", NULL };
    struct desk_viewer hv;
    char dir[300], png[330];
    uint8_t *pic = NULL;
    int w = 0, h = 0;
    double psnr = 0;

    snprintf(dir, sizeof(dir), "%s/headless", tmpdir);
    mkdir(dir, 0700);
    HT_CHECK(desk_viewer_start(&hv, dir, "headless", &srv, NULL, PASSWORD,
                               host.id, extra) == 0);
    HT_EQ_INT(desk_viewer_wait(&hv, 30000), 0);
    snprintf(png, sizeof(png), "%s/frame.png", dir);
    if (image_read_png(png, &pic, &w, &h) == 0)
        psnr = against_a(pic, w, h);
    printf("# headless viewer by ID: %dx%d PNG against A: %.2f dB\n", w, h,
           psnr);
    HT_CHECK(psnr >= MIN_PSNR);
    if (ht_case_failures())
        desk_viewer_dump(&hv);
    free(pic);
}

static void window_matches(void)
{
    struct desk_rect all = { 0, 0, DESK_W, DESK_H };
    uint8_t *b = malloc(DESK_W * DESK_H * 3);
    double psnr = 0, p;
    char name[400];

    snprintf(name, sizeof(name), "%s/viewer.raw", tmpdir);
    setenv("SDL_DISKAUDIOFILE", name, 1);
    HT_CHECK(desk_viewer_start(&viewer, tmpdir, "viewer", &srv, &B, PASSWORD,
                               host.id, NULL) == 0);
    HT_CHECK(file_has(viewer.err, "first frame shown", 30000));
    for (int i = 0; b != NULL && i < 30 && psnr < MIN_PSNR; i++) {
        if (desk_grab(&B, all, b) != 0)
            break;
        p = against_a(b, DESK_W, DESK_H);
        psnr = p > psnr ? p : psnr;
        usleep(200000);
    }
    printf("# viewer window on B against A: %.2f dB\n", psnr);
    HT_CHECK(psnr >= MIN_PSNR);
    if (ht_case_failures() && b != NULL) {
        snprintf(name, sizeof(name), "%s/b.png", tmpdir);
        image_write_png(name, b, DESK_W, DESK_H);
        printf("# B's screen: %s\n", name);
    }
    free(b);
}

/* The last "click" line of the Win32 window's record after n bytes. */
static int new_click(size_t n, int *x, int *y, int wait_ms)
{
    char buf[65536], *p, *last = NULL;
    uint64_t end = now_ms() + (uint64_t)wait_ms;

    do {
        ssize_t got = desk_slurp(wrecord, buf, sizeof(buf));

        if (got > (ssize_t)n) {
            for (p = buf + n; (p = strstr(p, "click left ")) != NULL; p++)
                last = p;
            if (last != NULL && sscanf(last, "click left %d %d", x, y) == 2)
                return 0;
        }
        usleep(20000);
    } while (now_ms() < end);
    return -1;
}

static void click_arrives(void)
{
    char before[65536];
    int cx = -1, cy = -1, tx = win_at.x + 260, ty = win_at.y + 100;

    desk_slurp(wrecord, before, sizeof(before));
    HT_EQ_INT(desk_sh(&B, "xdotool mousemove %d %d click 1", tx, ty), 0);
    HT_CHECK(new_click(strlen(before), &cx, &cy, 5000) == 0);
    printf("# clicked B at %d,%d: the Win32 window saw %d,%d\n", tx, ty, cx,
           cy);
    HT_CHECK(abs(cx - tx) <= 1);
    HT_CHECK(abs(cy - ty) <= 1);
}

/* The characters the Win32 window got after n bytes of its record. */
static void chars_since(size_t n, char *out, size_t cap)
{
    char buf[65536], *p;
    size_t k = 0;
    unsigned cp;

    out[0] = '\0';
    if (desk_slurp(wrecord, buf, sizeof(buf)) <= (ssize_t)n)
        return;
    for (p = buf + n; (p = strstr(p, "char U+")) != NULL; p++)
        if (sscanf(p, "char U+%x", &cp) == 1 && cp >= 0x20 && cp < 0x7f &&
            k + 1 < cap)
            out[k++] = (char)cp;
    out[k] = '\0';
}

static void typed_text_arrives(void)
{
    const char *want = "Hello World 42";
    char before[65536], got[256] = "";
    uint64_t t0;

    desk_slurp(wrecord, before, sizeof(before));
    HT_EQ_INT(desk_sh(&B, "xdotool type --delay 30 '%s'", want), 0);
    t0 = now_ms();
    while (now_ms() < t0 + 5000) {
        chars_since(strlen(before), got, sizeof(got));
        if (strcmp(got, want) == 0)
            break;
        usleep(50000);
    }
    printf("# typed on B \"%s\": the Win32 window got \"%s\"\n", want, got);
    HT_EQ_STR(got, want);
}

/* Until the Win32 clipboard holds text (read with hd-wintest.exe
 * --clipboard under Wine): the milliseconds it took, or -1. */
static int win32_clip_wait(const char *text, int ms)
{
    char out[400], cmd[1200], buf[512] = "";
    uint64_t t0 = now_ms();

    snprintf(out, sizeof(out), "%s/win32-clip.out", tmpdir);
    snprintf(cmd, sizeof(cmd), "wine %s --clipboard >%s 2>/dev/null", wintest,
             out);
    do {
        if (wine_sh(cmd) == 0 && desk_slurp(out, buf, sizeof(buf)) >= 0 &&
            strcmp(buf, text) == 0)
            return (int)(now_ms() - t0);
        usleep(100000);
    } while (now_ms() < t0 + (uint64_t)ms);
    printf("# the Win32 clipboard holds \"%.60s\", not \"%s\"\n", buf, text);
    return -1;
}

static void clipboard_both_ways(void)
{
    xcb_window_t w;
    struct desk_rect g;
    char text[128];
    int ms;

    snprintf(text, sizeof(text), "hd-win-clip-A-%d \xc3\xa9t\xc3\xa9",
             getpid());
    HT_EQ_INT(desk_clip_copy(&A, text, tmpdir), 0);
    ms = desk_clip_wait(&B, text, strlen(text), 5000);
    printf("# copied on A (X, bridged by Wine), pasted on B after %d ms\n", ms);
    HT_CHECK(ms >= 0);

    snprintf(text, sizeof(text), "hd-win-clip-B-%d", getpid());
    HT_CHECK(desk_find_window(&B, "homedesk", &w, &g) == 0);
    HT_EQ_INT(desk_clip_copy(&B, text, tmpdir), 0);
    HT_EQ_INT(desk_sh(&B, "xdotool windowfocus %u", (unsigned)B.root), 0);
    usleep(100000);
    HT_EQ_INT(desk_sh(&B, "xdotool windowfocus %u", (unsigned)w), 0);
    /* on the Windows side: the Win32 clipboard, read by a Win32 program */
    ms = win32_clip_wait(text, 8000);
    printf("# copied on B, in the Win32 clipboard after %d ms\n", ms);
    HT_CHECK(ms >= 0);
    /* Wine's own bridge on to X (not ours: reported, not checked) */
    ms = desk_clip_wait(&A, text, strlen(text), 1000);
    printf("# and through Wine's X bridge on A: %s\n",
           ms >= 0 ? "there" : "not there (Wine 8 keeps the earlier X copy)");
}

static void relay_session(void)
{
    /* the key frame and the refinement's tiles: all a still screen sends */
    const char *extra[] = { "--force-relay", "--frames", "2", NULL };
    struct desk_viewer hv;
    char dir[300], out[4096] = "";

    snprintf(dir, sizeof(dir), "%s/relay", tmpdir);
    mkdir(dir, 0700);
    HT_CHECK(desk_viewer_start(&hv, dir, "relay", &srv, NULL, PASSWORD, host.id,
                               extra) == 0);
    HT_EQ_INT(desk_viewer_wait(&hv, 30000), 0);
    desk_slurp(hv.out, out, sizeof(out));
    HT_CHECK(strstr(out, " path=relay ") != NULL);
    HT_CHECK(file_has(host.log, "path relay", 10));
    if (ht_case_failures())
        desk_viewer_dump(&hv);
}

/* A tone played on the host's sound server is heard by the viewer. */
static void sound_arrives(void)
{
    char file[400];
    struct tone_heard h = { 0 };
    uint64_t end;

    HT_CHECK(file_has(host.log, "audio: recording from hd-mic", WINE_MS));
    HT_EQ_INT(tone_play(pulse, tone), 0);
    snprintf(file, sizeof(file), "%s/viewer.raw", tmpdir);
    end = now_ms() + 10000;
    do { /* the last frames through Wine, the network and the device */
        usleep(200000);
        tone_listen(file, &h);
    } while (h.loud_ms < TONE_MS * 8 / 10 && now_ms() < end);
    printf("# viewer played %d ms of the %d ms tone; loudest 10 ms: RMS %.0f "
           "(tone %.0f), 1 kHz %.1f dB above the other probes (median)\n",
           h.loud_ms, TONE_MS, h.rms, TONE_AMP / 1.414, h.ratio_db);
    /* no more than was played; "most of it" in sound_whole, once the
     * viewer has said what it dropped on purpose */
    tone_heard_ms = h.loud_ms;
    HT_CHECK(h.loud_ms <= TONE_MS * 12 / 10);
    HT_CHECK(h.rms > TONE_AMP / 1.414 / 2);
    HT_CHECK(h.ratio_db >= 30);
}

/*
 * The tone was heard, but for what the viewer dropped on purpose when a
 * busy machine let its sound queue grow past AUDIO_MAX_MS (a make test at
 * load 20 heard 350 ms of 1500 through Wine): the viewer's summary at its
 * stop says how much.
 */
static void sound_whole(void)
{
    long dropped;

    desk_viewer_stop(&viewer);
    dropped = desk_viewer_dropped_ms(&viewer);
    printf("# the viewer dropped %ld ms of late sound; heard %d ms\n", dropped,
           tone_heard_ms);
    HT_CHECK(dropped >= 0 && tone_heard_ms >= 0);
    HT_CHECK(tone_heard_ms + dropped >= TONE_MS * 6 / 10);
}

static void idle_host_cpu(void)
{
    double c0, c1, pct;
    uint64_t m0, m1;

    usleep(2000000); /* the last refinement frames */
    c0 = desk_cpu_seconds(host.pid);
    m0 = now_ms();
    usleep(5000000);
    c1 = desk_cpu_seconds(host.pid);
    m1 = now_ms();
    HT_CHECK(c0 >= 0 && c1 >= 0);
    pct = (c1 - c0) * 100.0 / ((double)(m1 - m0) / 1000);
    printf("# idle host under Wine (session open): %.2f %% of a CPU over "
           "%.1f s\n",
           pct, (double)(m1 - m0) / 1000);
    HT_CHECK(pct < MAX_CPU);
}

int main(void)
{
    const char *dir = getenv("HD_WIN_BUILD_DIR");
    char why[800];

    ht_init("e2e-windows-host");
    signal(SIGPIPE, SIG_IGN);
    hd_crypto_init();
    dir = dir != NULL && dir[0] ? dir : "build-win";
    snprintf(exe, sizeof(exe), "%s/homedesk-host.exe", dir);
    snprintf(wintest, sizeof(wintest), "%s/tests/win/hd-wintest.exe", dir);
    if (!xvfb_have("Xvfb") || !xvfb_have("xdotool")) {
        ht_skip("all", "Xvfb or xdotool missing");
        return ht_finish();
    }
    if (access(exe, R_OK) != 0 || access(wintest, R_OK) != 0) {
        printf("# %s or %s missing: make host-win\n", exe, wintest);
        HT_CHECK(0);
        return ht_finish();
    }
    if (desk_tmp_make(tmpdir, sizeof(tmpdir), "winhost") != 0 ||
        desk_screen_open(&A) != 0)
        return 1;
    if (realpath(dir, prefix) == NULL)
        return 1;
    strncat(prefix, "/wine", sizeof(prefix) - strlen(prefix) - 1);
    snprintf(envprefix, sizeof(envprefix), "WINEPREFIX=%s", prefix);
    snprintf(envdisp, sizeof(envdisp), "DISPLAY=%s", A.x.display);
    if (wine_ready(why, sizeof(why)) != 0) {
        ht_skip("all", why);
        prefix[0] = '\0';
        teardown();
        desk_tmp_done(tmpdir);
        return ht_finish();
    }
    HT_RUN(set_up);
    if (up) {
        HT_RUN(selftest_reports_backends);
        HT_RUN(dxgi_falls_back_to_gdi);
        HT_RUN(selftest_gdi_and_loopback);
        HT_RUN(headless_by_id_matches);
        HT_RUN(window_matches);
        HT_RUN(click_arrives);
        HT_RUN(typed_text_arrives);
        if (xvfb_have("xclip"))
            HT_RUN(clipboard_both_ways);
        else
            ht_skip("clipboard", "xclip missing");
        HT_RUN(relay_session);
        HT_RUN(sound_arrives);
        HT_RUN(idle_host_cpu);
        HT_RUN(sound_whole);
    }
    if (ht_failures() > 0 || getenv("HD_TEST_VERBOSE")) {
        desk_dump("host log", host.log);
        desk_dump("Win32 window record", wrecord);
        desk_viewer_dump(&viewer);
    }
    teardown();
    desk_tmp_done(tmpdir);
    return ht_finish();
}

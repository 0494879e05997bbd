/*
 * The host on Wayland (run by tests/e2e/test_wayland_host.sh): a private
 * headless sway (output 1280x720) shows hd-wlcard, our Wayland test
 * client (the test card; it records keys and clicks); homedesk-host runs
 * in that session with no --display, so it picks the wlr backends itself
 * (wlr-screencopy, virtual keyboard and pointer); homedesk-viewer shows it
 * in a window on an X display B (Xvfb, 1280x720: 1:1 at the origin).
 * sway has a second output, HEADLESS-2 (640x480 right of the first),
 * with a second card.
 * Cases:
 *  - the host chose the wlr backends;
 *  - B's screen matches the output (grim): PSNR >= 35 dB;
 *  - a click on B lands on the card where aimed, text typed on B (upper
 *    case included) arrives as typed, and the card's echo of it shows on
 *    B (the time from typing to B's pixels is printed: key to screen);
 *  - text copied on the Wayland desktop (wl-copy) reaches B's clipboard
 *    through the host's wlr clipboard and the viewer, and text copied on
 *    B (xclip) is what wl-paste gives on the Wayland desktop;
 *  - an idle host (still screen, session open) uses < 1 % of a CPU;
 *  - the outputs are the host's monitors: the viewer starts on the first,
 *    its menu switches to the second, which B then shows (PSNR against
 *    grim -o HEADLESS-2), and a click on B lands on the second card where
 *    aimed.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "tests/e2e/desk.h"
#include "tests/e2e/sway.h"
#include "tests/harness.h"
#include "tests/image.h"

#define PASSWORD "wlh-Pa55word"
#define MIN_PSNR 35.0
#define MAX_CPU  1.0 /* percent of one CPU, idle */
#define ECHO_H   20  /* hd-wlcard's strip */

#define OUT2   "HEADLESS-2"
#define OUT2_W 640
#define OUT2_H 480

static char tmpdir[256], record[300], record2[300];
static struct srv srv;
static struct desk_screen B;
static struct desk_sway sway;
static struct desk_host host;
static struct desk_viewer viewer;
static pid_t card_pid = -1, card2_pid = -1;
static int up;

/* hd-wlcard, on the focused output; its pid once it shows, or -1. */
static pid_t start_card(const char **argv, const char *name)
{
    char out[330], err[330];
    pid_t pid;

    snprintf(out, sizeof(out), "%s/%s.out", tmpdir, name);
    snprintf(err, sizeof(err), "%s/%s.err", tmpdir, name);
    pid = desk_spawn(argv, sway.envp, out, err);
    if (pid < 0 || !file_has(out, "ready", 5000)) {
        desk_dump(name, err);
        return -1;
    }
    return pid;
}

static int setup(void)
{
    char prog[512];
    const char *argv[] = { prog, record, NULL };
    const char *extra[] = { "--no-audio", NULL };

    if (srv_start(&srv, NULL, NULL) != 0) {
        printf("# homedesk-server did not start\n");
        return -1;
    }
    if (desk_screen_open(&B) != 0) {
        printf("# Xvfb did not start\n");
        return -1;
    }
    if (desk_sway_start(&sway, tmpdir, DESK_W, DESK_H) != 0)
        return -1;
    /* the second output, right of the first, with its own card */
    if (desk_sway_sh(&sway, "swaymsg -q create_output") != 0 ||
        desk_sway_sh(&sway,
                     "swaymsg -q output %s mode %dx%d position %d 0 bg "
                     "'#a05030' solid_color",
                     OUT2, OUT2_W, OUT2_H, DESK_W) != 0) {
        printf("# sway made no second output\n");
        return -1;
    }
    prog_path("tests/e2e/hd-wlcard", prog, sizeof(prog));
    snprintf(record2, sizeof(record2), "%s/card2.rec", tmpdir);
    argv[1] = record2;
    desk_sway_sh(&sway, "swaymsg -q focus output %s", OUT2);
    if ((card2_pid = start_card(argv, "card2")) < 0)
        return -1;
    desk_sway_sh(&sway, "swaymsg -q focus output HEADLESS-1");
    snprintf(record, sizeof(record), "%s/card.rec", tmpdir);
    argv[1] = record;
    if ((card_pid = start_card(argv, "card")) < 0)
        return -1;
    /* the host runs inside the Wayland session (and has no --display) */
    return desk_share_in(&host, &viewer, tmpdir, &srv, NULL, sway.envp, &B,
                         PASSWORD, extra, 15000);
}

static void teardown(void)
{
    if (viewer.pid > 0)
        desk_viewer_stop(&viewer);
    desk_host_stop(&host);
    desk_stop(card_pid, 2000);
    desk_stop(card2_pid, 2000);
    desk_sway_stop(&sway);
    desk_screen_close(&B);
    srv_cleanup(&srv);
}

static void set_up(void)
{
    up = setup() == 0;
    HT_CHECK(up);
}

static void wlr_backends_chosen(void)
{
    HT_CHECK(file_has(host.log, "capture-wlr: Wayland display", 10));
    HT_CHECK(file_has(host.log, "input-wlr: Wayland display", 10));
}

static void picture_matches(void)
{
    struct desk_rect all = { 0, 0, DESK_W, DESK_H };
    uint8_t *b = malloc(DESK_W * DESK_H * 3), *o = NULL;
    double psnr = 0, p;
    int w = 0, h = 0;
    char name[400];

    for (int i = 0; b != NULL && i < 20 && psnr < MIN_PSNR; i++) {
        free(o);
        snprintf(name, sizeof(name), "output-%d", i);
        if (desk_sway_grab(&sway, tmpdir, "HEADLESS-1", name, &o, &w, &h) !=
                0 ||
            w != DESK_W || h != DESK_H || desk_grab(&B, all, b) != 0)
            break;
        p = image_psnr(o, w, 0, 0, b, DESK_W, 0, 0, DESK_W, DESK_H);
        if (p > psnr)
            psnr = p;
        usleep(100000);
    }
    printf("# B against the output (grim, %dx%d): %.2f dB\n", w, h, psnr);
    HT_CHECK(psnr >= MIN_PSNR);
    if (ht_case_failures() && b != NULL) {
        snprintf(name, sizeof(name), "%s/b.png", tmpdir);
        image_write_png(name, b, DESK_W, DESK_H);
    }
    free(b);
    free(o);
}

static void click_arrives(void)
{
    desk_case_click(&B, record, 300, 200);
}

/* Type on B; the card records the keys, and its echo shows on B. */
static void typed_text_arrives(void)
{
    desk_case_type(&B, record, "Hello World 42", ECHO_H, 3000);
}

/* Wait up to ms until wl-paste on the Wayland desktop gives want. */
static int wl_clip_is(const char *want, int ms)
{
    char path[330], got[256];
    uint64_t end = now_ms() + (uint64_t)ms;
    ssize_t n = -1;

    snprintf(path, sizeof(path), "%s/clip.out", tmpdir);
    do {
        unlink(path);
        desk_sway_sh(&sway, "timeout 5 wl-paste -n >'%s' 2>/dev/null", path);
        n = desk_slurp(path, got, sizeof(got));
        if (n >= 0 && strcmp(got, want) == 0)
            return 1;
        usleep(100000);
    } while (now_ms() < end);
    printf("# wl-paste on the Wayland desktop: \"%s\", want \"%s\"\n",
           n >= 0 ? got : "(nothing)", want);
    return 0;
}

/* The Wayland desktop's clipboard <-> B's (the viewer's), both ways. */
static void clipboard_both_ways(void)
{
    char from_wl[64], from_b[64];

    snprintf(from_wl, sizeof(from_wl), "copied-on-wayland-%u",
             (unsigned)now_ms() % 100000);
    snprintf(from_b, sizeof(from_b), "copied-on-B-%u é€",
             (unsigned)now_ms() % 100000);
    HT_CHECK(file_has(host.log, "clipboard-wlr: sharing the clipboard", 10));
    HT_EQ_INT(desk_sway_sh(&sway, "wl-copy '%s'", from_wl), 0);
    HT_CHECK(desk_clip_wait(&B, from_wl, strlen(from_wl), 5000) >= 0);
    HT_EQ_INT(desk_clip_copy(&B, from_b, tmpdir), 0);
    HT_CHECK(wl_clip_is(from_b, 5000));
}

/* CPU ticks (user + system) of a process, or -1. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (desk_slurp(path, buf, sizeof(buf)) <= 0 ||
        (p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

static void idle_host_cpu(void)
{
    long t0, t1, hz = sysconf(_SC_CLK_TCK);
    uint64_t m0, m1;
    double pct;

    usleep(1000000); /* the last refinement frames of the typing */
    t0 = cpu_ticks(host.pid);
    m0 = now_ms();
    usleep(3000000);
    t1 = cpu_ticks(host.pid);
    m1 = now_ms();
    HT_CHECK(t0 >= 0 && t1 >= 0);
    pct = (double)(t1 - t0) * 100.0 / (double)hz / ((double)(m1 - m0) / 1000);
    printf("# idle host: %.2f %% of a CPU over %.1f s\n", pct,
           (double)(m1 - m0) / 1000);
    HT_CHECK(pct < MAX_CPU);
}

/*
 * The second output as the viewer's display 2: the menu's row 11 (rows
 * 0-9: Ctrl+Alt+Del ... Statistics; 10: Display 1; 11: Display 2).
 */
static void second_output(void)
{
    struct desk_rect g = { 0, 0, 0, 0 };
    xcb_window_t win;
    uint8_t *b = NULL, *o = NULL;
    double psnr = 0, p;
    char name[64], before[16384];
    int w = 0, h = 0, cx = -1, cy = -1;
    ssize_t n0;

    HT_CHECK(file_has(host.log, "output " OUT2 ": 640x480 at 1280,0", 10));
    HT_CHECK(file_has(viewer.err, "display 1280x720", 10));
    desk_sh(&B, "xdotool mousemove 640 360");
    desk_sh(&B, "xdotool key ctrl+alt+m Down Down Down Down Down Down Down "
                "Down Down Down Down Return");
    HT_CHECK(file_has(viewer.err, "showing display 1 of", 5000));
    HT_CHECK(
        file_has(host.log, "switches to display 1 (640x480 at 1280,0)", 5000));
    /* the window follows the display's size, then moves to the middle
     * (two steps: its place is read again for every comparison) */
    b = malloc(OUT2_W * OUT2_H * 3);
    for (int i = 0; b != NULL && i < 50 && psnr < MIN_PSNR; i++) {
        if (i > 0)
            usleep(100000);
        desk_find_window(&B, "homedesk: ", &win, &g);
        if (g.w != OUT2_W || g.h != OUT2_H)
            continue;
        free(o);
        snprintf(name, sizeof(name), "output2-%d", i);
        if (desk_sway_grab(&sway, tmpdir, OUT2, name, &o, &w, &h) != 0 ||
            w != OUT2_W || h != OUT2_H || desk_grab(&B, g, b) != 0)
            break;
        p = image_psnr(o, w, 0, 0, b, OUT2_W, 0, 0, OUT2_W, OUT2_H);
        if (p > psnr)
            psnr = p;
    }
    printf("# the session window: %dx%d at %d,%d\n", g.w, g.h, g.x, g.y);
    HT_EQ_INT(g.w, OUT2_W);
    HT_EQ_INT(g.h, OUT2_H);
    printf("# B's window against %s (grim, %dx%d): %.2f dB\n", OUT2, w, h,
           psnr);
    HT_CHECK(psnr >= MIN_PSNR);
    free(b);
    free(o);
    /* a click in the window lands on the second card */
    n0 = desk_slurp(record2, before, sizeof(before));
    desk_sh(&B, "xdotool mousemove %d %d click 1", g.x + 100, g.y + 50);
    HT_CHECK(desk_card_new_click(record2, n0 > 0 ? (size_t)n0 : 0, &cx, &cy) ==
             0);
    printf("# clicked the window at 100,50: the second card saw %d,%d\n", cx,
           cy);
    HT_CHECK(abs(cx - 100) <= 1);
    HT_CHECK(abs(cy - 50) <= 1);
}

int main(void)
{
    ht_init("e2e-wayland-host");
    signal(SIGPIPE, SIG_IGN);
    hd_crypto_init();
    if (!xvfb_have("Xvfb") || !xvfb_have("sway") || !xvfb_have("grim") ||
        !xvfb_have("xdotool")) {
        ht_skip("all", "Xvfb, sway, grim or xdotool missing");
        return ht_finish();
    }
    if (desk_tmp_make(tmpdir, sizeof(tmpdir), "wlhost") != 0)
        return 1;
    HT_RUN(set_up);
    if (up) {
        HT_RUN(wlr_backends_chosen);
        HT_RUN(picture_matches);
        HT_RUN(click_arrives); /* the pointer on B's viewer: B's keys */
        HT_RUN(typed_text_arrives);
        HT_RUN(clipboard_both_ways);
        HT_RUN(idle_host_cpu);
        HT_RUN(second_output);
    }
    if (ht_failures() > 0 || getenv("HD_TEST_VERBOSE")) {
        desk_dump("host log", host.log);
        desk_viewer_dump(&viewer);
        desk_dump("sway log", sway.log);
    }
    teardown();
    desk_tmp_done(tmpdir);
    return ht_finish();
}

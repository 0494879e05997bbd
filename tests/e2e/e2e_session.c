/*
 * End-to-end session on two X displays (run by tests/e2e/test_session.sh).
 *
 * Display A shows a test card (hd-testcard, which also records the input
 * it receives) and an xterm; homedesk-host shares A and registers with
 * the real homedesk-server; homedesk-viewer connects by ID and shows A in
 * its window on display B, the same size as A, so the picture is 1:1 at
 * the window's origin.  Cases:
 *  - B's screen matches A's (PSNR over the whole screen);
 *  - text typed into the xterm on A (xdotool) shows on B within 1 s (the
 *    time from typing to B's pixels where A changed matching A's);
 *  - a click and text typed on the viewer window on B (xdotool) reach the
 *    test card on A at the right place, with the right keysyms, also once
 *    the window is shrunk (xdotool windowsize) and fit scaling applies;
 *  - the clipboard both ways (xclip on each display): text copied on A
 *    can be pasted on B, a large copy too (INCR pieces), and text copied
 *    on B reaches A once the viewer window gets the focus;
 *  - a wrong password: the viewer exits 1 saying so, the host logs
 *    "login failed from".
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "tests/e2e/desk.h"
#include "tests/harness.h"
#include "tests/image.h"

#define PASSWORD      "e2e-Pa55word"
#define MIN_PSNR      35.0
#define MIN_TEXT_PSNR 10.0
#define TYPE_MS       1000 /* typing on A must show on B within this */
/* and be sharp this long after (refinement frames of a still screen) */
#define SHARP_MS   500
#define SHARP_PSNR 30.0
#define ROOT_RGB   0x3a6ea5

static const struct desk_rect card_at = { 660, 40, 580, 420 };
/* the xterm (80x20 "fixed" cells: 6x13 pixels, plus borders) */
#define XTERM_X 20
#define XTERM_Y 40
static const struct desk_rect xterm_area = { XTERM_X, XTERM_Y, 500, 280 };

static char tmpdir[256];
static char record[300];
static struct srv srv;
static struct desk_screen A, B;
static struct desk_host host;
static struct desk_viewer viewer;
static pid_t card_pid = -1, xterm_pid = -1;
static int up; /* everything above runs */

static uint8_t *shot_a, *shot_b;

/* Save both screens as PNG beside the logs (kept with HD_KEEP_TMP). */
static void save_shots(const char *tag)
{
    char p[400];

    snprintf(p, sizeof(p), "%s/%s-a.png", tmpdir, tag);
    image_write_png(p, shot_a, DESK_W, DESK_H);
    snprintf(p, sizeof(p), "%s/%s-b.png", tmpdir, tag);
    image_write_png(p, shot_b, DESK_W, DESK_H);
    printf("# screenshots: %s/%s-{a,b}.png\n", tmpdir, tag);
}

static int grab_both(void)
{
    return desk_grab_both(&A, shot_a, &B, shot_b);
}

/* ---- setup ------------------------------------------------------------------
 */

static int setup(void)
{
    char disp[64], p[400], geo[64];
    const char *xterm[] = { "xterm", "-geometry", geo,  "-fn", "fixed",
                            "+sb",   "-e",        "sh", NULL };
    const char *xenv[] = { disp, "PS1=$ ", "ENV=", NULL };
    xcb_window_t w;
    struct desk_rect g;
    int i;

    if (srv_start(&srv, NULL, NULL) != 0) {
        printf("# homedesk-server did not start\n");
        return -1;
    }
    if (desk_screen_open(&A) != 0 || desk_screen_open(&B) != 0) {
        printf("# Xvfb did not start\n");
        return -1;
    }
    snprintf(record, sizeof(record), "%s/card.rec", tmpdir);
    card_pid = desk_card_start(&A, card_at, record, ROOT_RGB, tmpdir);
    if (card_pid < 0)
        return -1;
    snprintf(disp, sizeof(disp), "DISPLAY=%s", A.x.display);
    snprintf(geo, sizeof(geo), "80x20+%d+%d", XTERM_X, XTERM_Y);
    snprintf(p, sizeof(p), "%s/xterm.err", tmpdir);
    xterm_pid = desk_spawn(xterm, xenv, NULL, p);
    for (i = 0; i < 100 && desk_find_window(&A, "sh", &w, &g) != 0; i++)
        usleep(50000);
    if (i == 100) {
        printf("# xterm did not map\n");
        return -1;
    }
    printf("# xterm at %d,%d %dx%d\n", g.x, g.y, g.w, g.h);
    usleep(300000); /* the shell's prompt */
    return desk_share(&host, &viewer, tmpdir, &srv, &A, &B, PASSWORD);
}

static void teardown(void)
{
    if (viewer.pid > 0)
        desk_viewer_stop(&viewer);
    desk_host_stop(&host);
    desk_stop(card_pid, 2000);
    desk_stop(xterm_pid, 2000);
    desk_screen_close(&A);
    desk_screen_close(&B);
    srv_cleanup(&srv);
}

/* The first case: everything starts. */
static void set_up(void)
{
    up = shot_a != NULL && shot_b != NULL && setup() == 0;
    HT_CHECK(up);
}

/* ---- cases
 * ------------------------------------------------------------------- */

/* The viewer's window covers B and shows A 1:1: the screens match. */
static void screen_matches(void)
{
    xcb_window_t w;
    struct desk_rect g = { 0 };
    double psnr = 0;

    HT_CHECK(desk_find_window(&B, "homedesk", &w, &g) == 0);
    HT_EQ_INT(g.x, 0);
    HT_EQ_INT(g.y, 0);
    HT_EQ_INT(g.w, DESK_W);
    HT_EQ_INT(g.h, DESK_H);
    /* the first frames are a key frame and its refinements: give the
     * encoder a moment on the static screen */
    for (int i = 0; i < 30; i++) {
        HT_CHECK(grab_both() == 0);
        psnr = image_psnr(shot_a, DESK_W, 0, 0, shot_b, DESK_W, 0, 0, DESK_W,
                          DESK_H);
        if (psnr >= MIN_PSNR + 1)
            break;
        usleep(100000);
    }
    printf(
        "# PSNR of B against A: %.2f dB (card %.2f dB, xterm %.2f dB)\n", psnr,
        image_psnr(shot_a, DESK_W, card_at.x, card_at.y, shot_b, DESK_W,
                   card_at.x, card_at.y, card_at.w, card_at.h),
        image_psnr(shot_a, DESK_W, xterm_area.x, xterm_area.y, shot_b, DESK_W,
                   xterm_area.x, xterm_area.y, xterm_area.w, xterm_area.h));
    HT_CHECK(psnr >= MIN_PSNR);
    if (ht_case_failures() || getenv("HD_KEEP_TMP"))
        save_shots("match");
}

/*
 * Type text into the xterm on A and time how long B takes to show it:
 * from just before xdotool runs to the first sample of B that matches A
 * where A changed (desk_shows_change, PSNR >= MIN_TEXT_PSNR), A being
 * stable since the last sample.
 * (The host encodes only what changed and stops when the screen is
 * static, so freshly typed small text stays at the quality of its first
 * delta frame, about 20 dB here: "matches" is "much closer to A's new
 * pixels than to the old ones", with a low floor on the PSNR.)
 * Returns the milliseconds, or -1 when B did not match within 3 s.
 */
static int type_on_a(const char *text, double *psnr_out, double *sharp_out)
{
    struct desk_rect r = xterm_area, box = { 0 };
    size_t n = (size_t)r.w * r.h * 3;
    uint8_t *a0 = malloc(n), *a = malloc(n), *prev = malloc(n), *b = malloc(n);
    uint64_t t0, deadline;
    int ms = -1, have_prev = 0;

    *psnr_out = *sharp_out = 0;
    if (a0 == NULL || a == NULL || prev == NULL || b == NULL ||
        desk_grab(&A, r, a0) != 0)
        goto out;
    t0 = now_ms();
    if (desk_sh(&A, "xdotool type --delay 1 '%s'", text) != 0)
        goto out;
    deadline = t0 + 3000;
    while (now_ms() < deadline) {
        if (desk_grab(&A, r, a) != 0 || desk_grab(&B, r, b) != 0)
            break;
        if (desk_changed_box(a0, a, r.w, r.h, &box) && have_prev &&
            memcmp(prev, a, n) == 0 &&
            desk_shows_change(a0, a, b, r.w, r.h, MIN_TEXT_PSNR, psnr_out)) {
            ms = (int)(now_ms() - t0);
            break;
        }
        memcpy(prev, a, n);
        have_prev = 1;
        usleep(5000);
    }
    printf("# typed \"%s\" on A: changed %dx%d at %d,%d; B matched after %d "
           "ms (PSNR there %.1f dB)\n",
           text, box.w, box.h, r.x + box.x, r.y + box.y, ms, *psnr_out);
    /* once the screen is still, the host codes the changed area again
     * until it is sharp: measure it a moment later */
    if (ms >= 0) {
        usleep(SHARP_MS * 1000);
        /* A again too: on a busy machine "still for 5 ms" above can come
         * between two keys of the text, and B then shows more than a */
        if (desk_grab(&A, r, a) == 0 && desk_grab(&B, r, b) == 0)
            desk_shows_change(a0, a, b, r.w, r.h, 0, sharp_out);
        printf("# %d ms later: PSNR there %.1f dB\n", SHARP_MS, *sharp_out);
    }
out:
    free(a0);
    free(a);
    free(prev);
    free(b);
    return ms;
}

/* Text typed into the xterm on A shows on B within TYPE_MS. */
static void typing_on_a_shows_on_b(void)
{
    double psnr, sharp;
    int ms;

    /* the pointer on the xterm: it has the keyboard (no window manager,
     * focus follows the pointer) */
    HT_EQ_INT(
        desk_sh(&A, "xdotool mousemove %d %d", XTERM_X + 200, XTERM_Y + 100),
        0);
    usleep(100000);
    ms = type_on_a("echo hd-e2e", &psnr, &sharp);
    HT_CHECK(ms >= 0);
    HT_CHECK(ms <= TYPE_MS);
    HT_CHECK(sharp >= SHARP_PSNR);
    /* a second time, on a warm pipeline */
    ms = type_on_a(" 0123456789", &psnr, &sharp);
    HT_CHECK(ms >= 0);
    HT_CHECK(ms <= TYPE_MS);
    HT_CHECK(sharp >= SHARP_PSNR);
    if (ht_case_failures() && grab_both() == 0)
        save_shots("typing");
}

/*
 * Wait for the card's record to contain want (a line, or lines); print
 * the record when it does not.
 */
static int card_got(const char *want, int ms)
{
    char buf[8192];

    if (file_has(record, want, ms))
        return 1;
    desk_slurp(record, buf, sizeof(buf));
    printf("# card record lacks \"%s\"; it has:\n%s\n", want, buf);
    return 0;
}

/* Click on the card through the viewer at B (bx, by); wait for the card
 * to record it.  Returns 0 with the card's coordinates, or -1. */
static int click_through(int bx, int by, int *cx, int *cy)
{
    char before[16384];

    desk_slurp(record, before, sizeof(before));
    if (desk_sh(&B, "xdotool mousemove %d %d click 1", bx, by) != 0)
        return -1;
    return desk_card_new_click(record, strlen(before), cx, cy);
}

/* A click and typing on the viewer window on B reach the card on A. */
static void input_from_b_reaches_a(void)
{
    int cx = -1, cy = -1;
    char keys[256];

    /* 1:1 at the origin: B's pixel is A's pixel */
    HT_CHECK(click_through(card_at.x + 100, card_at.y + 300, &cx, &cy) == 0);
    printf("# clicked B at %d,%d: the card saw %d,%d\n", card_at.x + 100,
           card_at.y + 300, cx, cy);
    HT_EQ_INT(cx, 100);
    HT_EQ_INT(cy, 300);
    HT_EQ_INT(desk_sh(&B, "xdotool type --delay 30 'hd42e2e'"), 0);
    HT_CHECK(card_got("keysym=0x65", 3000)); /* 'e' */
    usleep(300000);
    desk_card_keys(record, keys, sizeof(keys));
    printf("# keys the card got: \"%s\"\n", keys);
    HT_EQ_STR(keys, "hd42e2e");
}

/* The same through fit scaling, once the window is shrunk to 3/4. */
static void input_through_scaling(void)
{
    xcb_window_t w;
    struct desk_rect g = { 0 };
    int cx = -1, cy = -1, i;
    /* A's (ax, ay) on the card is at 3/4 of that on B */
    const int ax = card_at.x + 240, ay = card_at.y + 180;

    HT_CHECK(desk_find_window(&B, "homedesk", &w, &g) == 0);
    HT_EQ_INT(desk_sh(&B, "xdotool windowsize %u 960 540", (unsigned)w), 0);
    for (i = 0; i < 50; i++) {
        if (desk_find_window(&B, "homedesk", &w, &g) == 0 && g.w == 960 &&
            g.h == 540)
            break;
        usleep(20000);
    }
    HT_EQ_INT(g.w, 960);
    HT_EQ_INT(g.h, 540);
    usleep(300000); /* the viewer lays the picture out again */
    HT_CHECK(click_through(g.x + ax * 3 / 4, g.y + ay * 3 / 4, &cx, &cy) == 0);
    printf("# scaled 3/4: clicked B at %d,%d: the card saw %d,%d (want "
           "%d,%d)\n",
           g.x + ax * 3 / 4, g.y + ay * 3 / 4, cx, cy, ax - card_at.x,
           ay - card_at.y);
    HT_CHECK(abs(cx - (ax - card_at.x)) <= 2);
    HT_CHECK(abs(cy - (ay - card_at.y)) <= 2);
    /* a corner: B's last pixel is A's last (clamped into the display) */
    HT_CHECK(click_through(g.x + (card_at.x + 20) * 3 / 4,
                           g.y + (card_at.y + 400) * 3 / 4, &cx, &cy) == 0);
    HT_CHECK(abs(cx - 20) <= 2);
    HT_CHECK(abs(cy - 400) <= 2);
}

/* ---- clipboard ----------------------------------------------------------- */

/* Text copied on A can be pasted on B. */
static void clipboard_a_to_b(void)
{
    char text[128];
    int ms;

    snprintf(text, sizeof(text), "hd-clip-A-%d \xc3\xa9t\xc3\xa9", getpid());
    HT_EQ_INT(desk_clip_copy(&A, text, tmpdir), 0);
    ms = desk_clip_wait(&B, text, strlen(text), 3000);
    printf("# copied on A, pasted on B after %d ms\n", ms);
    HT_CHECK(ms >= 0);
}

/*
 * A large copy (3 MB of text lines, compressible as code is): toolkits
 * and xclip hand such selections over in INCR pieces, which the host
 * reads, and it crosses compressed.
 */
static void clipboard_large_a_to_b(void)
{
    size_t n = 3u * 1024 * 1024, i;
    char *text = malloc(n + 1), p[400];
    FILE *f;
    int ms;

    HT_CHECK(text != NULL);
    if (text == NULL)
        return;
    for (i = 0; i < n; i++)
        text[i] = (i % 61 == 60) ? '\n' : (char)('a' + (i * 7 + i / 61) % 26);
    text[n] = '\0';
    snprintf(p, sizeof(p), "%s/clip-big.txt", tmpdir);
    f = fopen(p, "w");
    HT_CHECK(f != NULL);
    if (f != NULL) {
        fwrite(text, 1, n, f);
        fclose(f);
        HT_EQ_INT(desk_clip_copy_file(&A, p), 0);
        ms = desk_clip_wait(&B, text, n, 8000);
        printf("# copied %zu bytes on A, pasted on B after %d ms\n", n, ms);
        HT_CHECK(ms >= 0);
    }
    free(text);
}

/* Text copied on B reaches A once the viewer window gets the focus back. */
static void clipboard_b_to_a(void)
{
    xcb_window_t w;
    struct desk_rect g;
    char text[128];
    int ms;

    snprintf(text, sizeof(text), "hd-clip-B-%d", getpid());
    HT_CHECK(desk_find_window(&B, "homedesk", &w, &g) == 0);
    HT_EQ_INT(desk_clip_copy(&B, text, tmpdir), 0);
    /* focus away (to the root) and back to the viewer */
    HT_EQ_INT(desk_sh(&B, "xdotool windowfocus %u", (unsigned)B.root), 0);
    usleep(100000);
    HT_EQ_INT(desk_sh(&B, "xdotool windowfocus %u", (unsigned)w), 0);
    ms = desk_clip_wait(&A, text, strlen(text), 3000);
    printf("# copied on B, pasted on A after %d ms\n", ms);
    HT_CHECK(ms >= 0);
    /* and the host's next copy still comes back (no echo confusion) */
    snprintf(text, sizeof(text), "hd-clip-A2-%d", getpid());
    HT_EQ_INT(desk_clip_copy(&A, text, tmpdir), 0);
    HT_CHECK(desk_clip_wait(&B, text, strlen(text), 3000) >= 0);
}

/* A wrong password: the viewer says so and exits 1; the host logs it in
 * fail2ban's format. */
static void wrong_password_refused(void)
{
    struct desk_viewer v;

    HT_CHECK(desk_viewer_start(&v, tmpdir, "wrongpw", &srv, NULL,
                               "not-" PASSWORD, host.id, NULL) == 0);
    HT_EQ_INT(desk_viewer_wait(&v, 15000), 1);
    HT_CHECK(file_has(v.err, "wrong password", 10));
    HT_CHECK(file_has(host.log, "login failed from 127.0.0.1", 3000));
    /* the established session is unaffected */
    HT_CHECK(kill(viewer.pid, 0) == 0);
    if (ht_case_failures())
        desk_viewer_dump(&v);
    if (v.pid > 0)
        desk_viewer_stop(&v);
}

int main(void)
{
    ht_init("e2e-session");
    signal(SIGPIPE, SIG_IGN);
    hd_crypto_init();
    if (!xvfb_have("Xvfb") || !xvfb_have("xdotool") || !xvfb_have("xterm")) {
        ht_skip("all", "Xvfb, xdotool or xterm missing");
        return ht_finish();
    }
    if (desk_tmp_make(tmpdir, sizeof(tmpdir), "e2e") != 0)
        return 1;
    shot_a = malloc(DESK_W * DESK_H * 3);
    shot_b = malloc(DESK_W * DESK_H * 3);
    HT_RUN(set_up);
    if (up) {
        HT_RUN(screen_matches);
        HT_RUN(typing_on_a_shows_on_b);
        HT_RUN(input_from_b_reaches_a);
        HT_RUN(input_through_scaling);
        if (xvfb_have("xclip")) {
            HT_RUN(clipboard_a_to_b);
            HT_RUN(clipboard_large_a_to_b);
            HT_RUN(clipboard_b_to_a);
        } else {
            ht_skip("clipboard", "xclip missing");
        }
        HT_RUN(wrong_password_refused);
    }
    if (ht_failures() > 0 || getenv("HD_TEST_VERBOSE")) {
        desk_dump("host log", host.log);
        desk_viewer_dump(&viewer);
    }
    teardown();
    free(shot_a);
    free(shot_b);
    desk_tmp_done(tmpdir);
    return ht_finish();
}

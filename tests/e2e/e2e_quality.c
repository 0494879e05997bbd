/*
 * Picture quality after stillness (run by tests/e2e/test_quality.sh; not
 * timed: each case waits for a condition, up to a generous limit, and
 * prints how long it took).
 *
 * Display A shows two xterms ("fixed" font): black text on white, and
 * yellow text on dark blue; homedesk-host shares A, a viewer shows it in
 * its window on display B (1:1 at the window's origin).  Cases:
 *  - text typed into the plain xterm ends pixel-exact on B once A is still
 *    (the host codes still areas again losslessly);
 *  - the coloured xterm, typed into, ends >= MIN_COLOUR_PSNR dB on B;
 *  - a second viewer joining the still desktop (on display C) gets a
 *    picture as sharp as the first one's: the xterm pixel-exact (its
 *    first frame is refined like any other change).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "tests/e2e/desk.h"
#include "tests/harness.h"
#include "tests/image.h"

#define PASSWORD        "e2e-Pa55word"
#define WAIT_MS         6000 /* for a picture to become exact / sharp */
#define MIN_COLOUR_PSNR 45.0

/* inside each xterm's border: 60x12 "fixed" cells of 6x13 pixels */
#define PLAIN_X  20
#define PLAIN_Y  40
#define COLOUR_X 20
#define COLOUR_Y 260
static const struct desk_rect plain_area = { PLAIN_X + 2, PLAIN_Y + 2, 360,
                                             156 };
static const struct desk_rect colour_area = { COLOUR_X + 2, COLOUR_Y + 2, 360,
                                              156 };

static char tmpdir[256];
static struct srv srv;
static struct desk_screen A, B, C;
static struct desk_host host;
static struct desk_viewer viewer, viewer2;
static pid_t plain_pid = -1, colour_pid = -1;
static int up;

static pid_t xterm_start(int x, int y, const char *fg, const char *bg,
                         const char *name)
{
    char disp[64], geo[64], err[400];
    const char *argv[] = { "xterm", "-geometry", geo,  "-fn", "fixed",
                           "+sb",   "-fg",       fg,   "-bg", bg,
                           "-T",    name,        "-e", "sh",  NULL };
    const char *env[] = { disp, "PS1=$ ", "ENV=", NULL };
    xcb_window_t w;
    struct desk_rect g;
    pid_t pid;
    int i;

    snprintf(disp, sizeof(disp), "DISPLAY=%s", A.x.display);
    snprintf(geo, sizeof(geo), "60x12+%d+%d", x, y);
    snprintf(err, sizeof(err), "%s/%s.err", tmpdir, name);
    if ((pid = desk_spawn(argv, env, NULL, err)) < 0)
        return -1;
    for (i = 0; i < 100 && desk_find_window(&A, name, &w, &g) != 0; i++)
        usleep(50000);
    if (i == 100) {
        printf("# xterm %s did not map\n", name);
        desk_stop(pid, 1000);
        return -1;
    }
    printf("# xterm %s at %d,%d %dx%d\n", name, g.x, g.y, g.w, g.h);
    return pid;
}

static int setup(void)
{
    if (srv_start(&srv, NULL, NULL) != 0) {
        printf("# homedesk-server did not start\n");
        return -1;
    }
    if (desk_screen_open(&A) != 0 || desk_screen_open(&B) != 0 ||
        desk_screen_open(&C) != 0) {
        printf("# Xvfb did not start\n");
        return -1;
    }
    plain_pid = xterm_start(PLAIN_X, PLAIN_Y, "black", "white", "hdplain");
    colour_pid =
        xterm_start(COLOUR_X, COLOUR_Y, "#ffd700", "#1a3a8a", "hdcolour");
    if (plain_pid < 0 || colour_pid < 0)
        return -1;
    usleep(300000); /* the shells' prompts */
    return desk_share(&host, &viewer, tmpdir, &srv, &A, &B, PASSWORD);
}

static void teardown(void)
{
    if (viewer.pid > 0)
        desk_viewer_stop(&viewer);
    if (viewer2.pid > 0)
        desk_viewer_stop(&viewer2);
    desk_host_stop(&host);
    desk_stop(plain_pid, 2000);
    desk_stop(colour_pid, 2000);
    desk_screen_close(&A);
    desk_screen_close(&B);
    desk_screen_close(&C);
    srv_cleanup(&srv);
}

static void set_up(void)
{
    up = setup() == 0;
    HT_CHECK(up);
}

/* Save area r of A and of s as PNG beside the logs. */
static void save_area(struct desk_screen *s, struct desk_rect r,
                      const char *tag)
{
    size_t n = (size_t)r.w * r.h * 3;
    uint8_t *a = malloc(n), *b = malloc(n);
    char p[400];

    if (a != NULL && b != NULL && desk_grab(&A, r, a) == 0 &&
        desk_grab(s, r, b) == 0) {
        snprintf(p, sizeof(p), "%s/%s-a.png", tmpdir, tag);
        image_write_png(p, a, r.w, r.h);
        snprintf(p, sizeof(p), "%s/%s-b.png", tmpdir, tag);
        image_write_png(p, b, r.w, r.h);
        printf("# pictures: %s/%s-{a,b}.png\n", tmpdir, tag);
    }
    free(a);
    free(b);
}

/*
 * Wait (up to WAIT_MS) until area r of s matches A's with a PSNR of at
 * least min_psnr (100: pixel-exact), A being still meanwhile.  Returns the
 * best PSNR seen (100 for exact); *ms the time it took (-1: never).
 */
static double wait_sharp(struct desk_screen *s, struct desk_rect r,
                         double min_psnr, int *ms)
{
    size_t n = (size_t)r.w * r.h * 3;
    uint8_t *a = malloc(n), *b = malloc(n);
    uint64_t t0 = now_ms();
    double best = 0, p;

    *ms = -1;
    if (a == NULL || b == NULL)
        goto out;
    while (now_ms() - t0 < WAIT_MS) {
        if (desk_grab(&A, r, a) != 0 || desk_grab(s, r, b) != 0)
            break;
        p = memcmp(a, b, n) == 0
                ? 100
                : image_psnr(a, r.w, 0, 0, b, r.w, 0, 0, r.w, r.h);
        if (p > best)
            best = p;
        if (p >= min_psnr) {
            *ms = (int)(now_ms() - t0);
            break;
        }
        usleep(20000);
    }
out:
    free(a);
    free(b);
    return best;
}

/* Type text into the xterm whose area is r (pointer on it: focus follows
 * the pointer without a window manager), then move the pointer away. */
static int type_into(struct desk_rect r, const char *text)
{
    if (desk_sh(&A, "xdotool mousemove %d %d", r.x + r.w / 2, r.y + r.h / 2) !=
        0)
        return -1;
    usleep(100000);
    if (desk_sh(&A, "xdotool type --delay 1 '%s'", text) != 0 ||
        desk_sh(&A, "xdotool key Return") != 0)
        return -1;
    return desk_sh(&A, "xdotool mousemove %d %d", DESK_W - 5, DESK_H - 5);
}

/* Typed text in the plain xterm ends pixel-exact on B. */
static void plain_text_exact(void)
{
    double best;
    int ms;

    HT_EQ_INT(type_into(plain_area, "ls -l /; echo hd-quality-0123456789"), 0);
    best = wait_sharp(&B, plain_area, 100, &ms);
    printf("# plain xterm on B: %s after %d ms (best %.2f dB)\n",
           ms >= 0 ? "pixel-exact" : "NOT exact", ms, best);
    HT_CHECK(ms >= 0);
    /* between homedesk peers the still text came as lossless tiles
     * (common/tiles.h), not as VP9's lossless mode */
    HT_CHECK(file_has(viewer.err, "still areas come as lossless tiles", 10));
    if (ht_case_failures())
        save_area(&B, plain_area, "plain");
}

/* Coloured text on a coloured background ends sharp on B. */
static void colour_text_sharp(void)
{
    double best;
    int ms;

    HT_EQ_INT(type_into(colour_area, "ls -l /; echo hd-colour-0123456789"), 0);
    best = wait_sharp(&B, colour_area, MIN_COLOUR_PSNR, &ms);
    printf("# coloured xterm on B: %.2f dB (%s after %d ms; want >= %.0f)\n",
           best, ms >= 0 ? "reached" : "NOT reached", ms, MIN_COLOUR_PSNR);
    HT_CHECK(ms >= 0);
    if (ht_case_failures())
        save_area(&B, colour_area, "colour");
}

/* A second viewer joining the still desktop: sharp like the first. */
static void second_viewer_sharp(void)
{
    struct desk_rect all = { 0, 0, DESK_W, DESK_H };
    double best, first;
    int ms;

    first = wait_sharp(&B, all, 100, &ms);
    printf("# first viewer, whole screen: %.2f dB\n", first);
    HT_CHECK(desk_viewer_start(&viewer2, tmpdir, "viewer2", &srv, &C, PASSWORD,
                               host.id, NULL) == 0);
    HT_CHECK(file_has(viewer2.err, "first frame shown", 10000));
    best = wait_sharp(&C, plain_area, 100, &ms);
    printf("# second viewer, plain xterm: %s after %d ms (best %.2f dB)\n",
           ms >= 0 ? "pixel-exact" : "NOT exact", ms, best);
    HT_CHECK(ms >= 0);
    best = wait_sharp(&C, all, first - 0.5, &ms);
    printf("# second viewer, whole screen: %.2f dB after %d ms (first "
           "viewer: %.2f dB)\n",
           best, ms, first);
    HT_CHECK(ms >= 0);
    if (ht_case_failures()) {
        desk_viewer_dump(&viewer2);
        save_area(&C, all, "second");
    }
}

int main(void)
{
    ht_init("e2e-quality");
    signal(SIGPIPE, SIG_IGN);
    hd_crypto_init();
    if (!xvfb_have("Xvfb") || !xvfb_have("xdotool") || !xvfb_have("xterm")) {
        ht_skip("all", "Xvfb, xdotool or xterm missing");
        return ht_finish();
    }
    if (desk_tmp_make(tmpdir, sizeof(tmpdir), "quality") != 0)
        return 1;
    HT_RUN(set_up);
    if (up) {
        HT_RUN(plain_text_exact);
        HT_RUN(colour_text_sharp);
        HT_RUN(second_viewer_sharp);
    }
    if (ht_failures() > 0 || getenv("HD_TEST_VERBOSE")) {
        desk_dump("host log", host.log);
        desk_viewer_dump(&viewer);
    }
    teardown();
    desk_tmp_done(tmpdir);
    return ht_finish();
}

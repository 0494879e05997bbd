/*
 * The host on GNOME (run by tests/e2e/test_gnome_host.sh): a private
 * session bus (dbus-daemon), PipeWire and its session manager
 * (wireplumber), and mutter 43 headless (--virtual-monitor 1280x720, no
 * GPU, no XWayland) showing hd-wlcard full screen (the test card; it
 * records keys and clicks).  homedesk-host runs in that session with no
 * --display and no backend named, so it must see GNOME itself (mutter's
 * ScreenCast name on the bus) and pick the pipewire capture and the
 * remotedesktop input; homedesk-viewer shows it by ID in a window on an
 * X display B (Xvfb 1280x720: 1:1 at the origin).
 * Cases:
 *  - the host chose the pipewire capture and the remotedesktop input;
 *  - B's screen matches the card we drew (card_paint at the output's
 *    size): PSNR >= 35 dB (mutter sends the pointer as metadata: it is
 *    not in the picture);
 *  - that pointer (its image, as the host logs it) is the one B shows
 *    over the viewer's window;
 *  - a click on B lands on the card where aimed;
 *  - text typed on B (upper case included) arrives as typed, and the
 *    card's echo of it shows on B (the time from typing to B's pixels is
 *    printed: key to screen);
 *  - an idle host (still screen, session open) uses < 1 % of a CPU.
 * Skipped, with the reason, when mutter, pipewire, wireplumber,
 * dbus-daemon, Xvfb or xdotool is missing.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "tests/e2e/card.h"
#include "tests/e2e/desk.h"
#include "tests/harness.h"
#include "tests/image.h"

#define PASSWORD "gno-Pa55word"
#define MIN_PSNR 35.0
#define MAX_CPU  1.0 /* percent of one CPU, idle */
#define ECHO_H   20  /* hd-wlcard's strip */
#define WL_NAME  "hd-gnome-wl"

static char tmpdir[256], record[300], rt[300];
static char env[4][400];
static const char *envp[5];
static struct srv srv;
static struct desk_screen B;
static struct desk_host host;
static struct desk_viewer viewer;
static pid_t bus_pid = -1, pw_pid = -1, wp_pid = -1, mutter_pid = -1,
             card_pid = -1;
static char mutter_log[330];
static int up;

/* A shell command in the GNOME session's environment; its status. */
static int gnome_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int gnome_sh(const char *fmt, ...)
{
    char e[1700];
    va_list ap;
    int r;

    snprintf(e, sizeof(e), "%s %s %s %s", env[0], env[1], env[2], env[3]);
    va_start(ap, fmt);
    r = desk_vsh(e, fmt, ap);
    va_end(ap);
    return r;
}

/* Start argv in the session's environment, logging to dir/NAME.log. */
static pid_t start(const char *const *argv, const char *name)
{
    char log[330];

    snprintf(log, sizeof(log), "%s/%s.log", tmpdir, name);
    return desk_spawn(argv, envp, log, log);
}

/* Wait up to ms for the shell condition cond to hold (cd'd to the
 * session's XDG_RUNTIME_DIR); 0 or -1. */
static int wait_for(const char *cond, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;

    do {
        if (gnome_sh("sh -c 'cd \"%s\" && %s'", rt, cond) == 0)
            return 0;
        usleep(100000);
    } while (now_ms() < end);
    printf("# still not true after %d ms: %s\n", ms, cond);
    return -1;
}

/*
 * The session: bus, PipeWire, wireplumber, mutter, each waited for (the
 * bus socket; pipewire-0; wireplumber's client in pw-dump; mutter's
 * ScreenCast name and Wayland socket).  0 or -1 (what failed said).
 */
static int gnome_start(void)
{
    const char *bus[] = { "dbus-daemon", "--session", "--nofork", NULL, NULL };
    const char *pw[] = { "pipewire", NULL };
    const char *wp[] = { "wireplumber", NULL };
    const char *mut[] = { "mutter",   "--headless",
                          "--no-x11", "--virtual-monitor",
                          "1280x720", "--wayland-display=" WL_NAME,
                          NULL };
    char addr[400], home[300];

    snprintf(rt, sizeof(rt), "%s/rt", tmpdir);
    snprintf(home, sizeof(home), "%s/home", tmpdir);
    if (mkdir(rt, 0700) != 0 || mkdir(home, 0700) != 0)
        return -1;
    snprintf(env[0], sizeof(env[0]), "XDG_RUNTIME_DIR=%s", rt);
    snprintf(env[1], sizeof(env[1]),
             "DBUS_SESSION_BUS_ADDRESS=unix:path=%s/bus", rt);
    snprintf(env[2], sizeof(env[2]), "HOME=%s", home);
    snprintf(env[3], sizeof(env[3]), "WAYLAND_DISPLAY=%s", WL_NAME);
    for (int i = 0; i < 4; i++)
        envp[i] = env[i];
    envp[4] = NULL;
    snprintf(addr, sizeof(addr), "--address=unix:path=%s/bus", rt);
    bus[3] = addr;
    if ((bus_pid = start(bus, "dbus")) < 0 ||
        wait_for("test -S bus", 10000) != 0)
        return -1;
    if ((pw_pid = start(pw, "pipewire")) < 0 ||
        wait_for("test -S pipewire-0", 10000) != 0) {
        printf("# pipewire made no socket in %s\n", rt);
        return -1;
    }
    if ((wp_pid = start(wp, "wireplumber")) < 0 ||
        wait_for("pw-dump 2>/dev/null | grep -q WirePlumber", 15000) != 0) {
        printf("# wireplumber did not join PipeWire\n");
        return -1;
    }
    snprintf(mutter_log, sizeof(mutter_log), "%s/mutter.log", tmpdir);
    if ((mutter_pid = start(mut, "mutter")) < 0 ||
        wait_for("dbus-send --session --print-reply "
                 "--dest=org.freedesktop.DBus / "
                 "org.freedesktop.DBus.NameHasOwner "
                 "string:org.gnome.Mutter.RemoteDesktop 2>/dev/null | "
                 "grep -q true && test -S " WL_NAME,
                 20000) != 0) {
        printf("# mutter --headless did not offer its remote desktop\n");
        desk_dump("mutter log", mutter_log);
        return -1;
    }
    return 0;
}

static int setup(void)
{
    char prog[512], out[330], err[330];
    const char *argv[] = { prog, record, "--fullscreen", "--cursor", NULL };
    const char *extra[] = { "--no-audio", NULL };

    if (srv_start(&srv, NULL, NULL) != 0) {
        printf("# homedesk-server did not start\n");
        return -1;
    }
    if (desk_screen_open(&B) != 0) {
        printf("# Xvfb did not start\n");
        return -1;
    }
    if (gnome_start() != 0)
        return -1;
    prog_path("tests/e2e/hd-wlcard", prog, sizeof(prog));
    snprintf(record, sizeof(record), "%s/card.rec", tmpdir);
    snprintf(out, sizeof(out), "%s/card.out", tmpdir);
    snprintf(err, sizeof(err), "%s/card.err", tmpdir);
    card_pid = desk_spawn(argv, envp, out, err);
    if (card_pid < 0 || !file_has(out, "ready", 10000)) {
        desk_dump("card", err);
        return -1;
    }
    /* the host runs inside the GNOME session (and has no --display) */
    return desk_share_in(&host, &viewer, tmpdir, &srv, NULL, envp, &B, PASSWORD,
                         extra, 20000);
}

static void teardown(void)
{
    if (viewer.pid > 0)
        desk_viewer_stop(&viewer);
    desk_host_stop(&host);
    desk_stop(card_pid, 2000);
    desk_stop(mutter_pid, 5000);
    desk_stop(wp_pid, 2000);
    desk_stop(pw_pid, 2000);
    desk_stop(bus_pid, 2000);
    desk_screen_close(&B);
    srv_cleanup(&srv);
}

static void set_up(void)
{
    up = setup() == 0;
    HT_CHECK(up);
}

static void gnome_backends_chosen(void)
{
    HT_CHECK(file_has(host.log, "capture-pipewire: GNOME screen cast", 10));
    HT_CHECK(
        file_has(host.log, "input-remotedesktop: GNOME remote desktop", 10));
}

/* B against the card hd-wlcard drew over the whole output. */
static void picture_matches(void)
{
    struct desk_rect all = { 0, 0, DESK_W, DESK_H };
    uint32_t *card = malloc(sizeof(uint32_t) * DESK_W * DESK_H);
    uint8_t *want = malloc(DESK_W * DESK_H * 3),
            *b = malloc(DESK_W * DESK_H * 3);
    double psnr = 0, p;
    char name[400];

    HT_CHECK(card != NULL && want != NULL && b != NULL);
    if (card == NULL || want == NULL || b == NULL)
        goto out;
    card_paint(card, DESK_W, DESK_H, ECHO_H);
    for (int i = 0; i < DESK_W * DESK_H; i++) {
        want[i * 3] = (uint8_t)(card[i] >> 16);
        want[i * 3 + 1] = (uint8_t)(card[i] >> 8);
        want[i * 3 + 2] = (uint8_t)card[i];
    }
    for (int i = 0; i < 50 && psnr < MIN_PSNR; i++) {
        if (i > 0)
            usleep(100000);
        if (desk_grab(&B, all, b) != 0)
            break;
        p = image_psnr(want, DESK_W, 0, 0, b, DESK_W, 0, 0, DESK_W, DESK_H);
        if (p > psnr)
            psnr = p;
    }
    printf("# B against the card drawn on mutter's output (%dx%d): %.2f dB\n",
           DESK_W, DESK_H, psnr);
    HT_CHECK(psnr >= MIN_PSNR);
    if (ht_case_failures()) {
        snprintf(name, sizeof(name), "%s/b.png", tmpdir);
        image_write_png(name, b, DESK_W, DESK_H);
    }
out:
    free(card);
    free(want);
    free(b);
}

/*
 * The card's pointer (hd-wlcard --cursor: card_cursor()), which mutter
 * sends as metadata, is what B shows over the viewer's window, not B's
 * own (a hand), pixel for pixel.
 */
static void host_pointer_shown(void)
{
    uint32_t want[CARD_CURSOR_W * CARD_CURSOR_H];
    struct desk_cursor c = { 0 };
    int same = 0, worst = 0;

    card_cursor(want);
    HT_EQ_INT(desk_sh(&B, "xsetroot -cursor_name hand2"), 0);
    desk_sh(&B, "xdotool mousemove 400 300 mousemove 410 305");
    HT_CHECK(file_has(host.log, "pointer image ", 15000));
    for (int i = 0; i < 150 && !same; i++) {
        if (i > 0)
            usleep(100000);
        if (desk_cursor(&B, &c) != 0 || c.w != CARD_CURSOR_W ||
            c.h != CARD_CURSOR_H || c.xhot != CARD_CURSOR_HX ||
            c.yhot != CARD_CURSOR_HY)
            continue;
        worst = 0;
        for (int k = 0; k < c.w * c.h; k++)
            for (int sh = 0; sh < 32; sh += 8) {
                int d = abs((int)(want[k] >> sh & 0xff) -
                            (int)(c.argb[k] >> sh & 0xff));

                worst = d > worst ? d : worst;
            }
        same = worst <= 2;
    }
    printf("# B's pointer over the window: %dx%d hot %d,%d (the card's: "
           "%dx%d hot %d,%d), largest channel difference %d\n",
           c.w, c.h, c.xhot, c.yhot, CARD_CURSOR_W, CARD_CURSOR_H,
           CARD_CURSOR_HX, CARD_CURSOR_HY, worst);
    HT_CHECK(same);
}

static void click_arrives(void)
{
    desk_case_click(&B, record, 300, 200);
}

/* Type on B; the card records the keys, and its echo shows on B. */
static void typed_text_arrives(void)
{
    /* mutter renders in software here: a loaded machine took 2.5 s */
    desk_case_type(&B, record, "Hello World 42", ECHO_H, 10000);
}

static void idle_host_cpu(void)
{
    double c0, c1;
    uint64_t m0, m1;
    double pct;

    usleep(1000000); /* the last refinement frames of the typing */
    c0 = desk_cpu_seconds(host.pid);
    m0 = now_ms();
    usleep(3000000);
    c1 = desk_cpu_seconds(host.pid);
    m1 = now_ms();
    HT_CHECK(c0 >= 0 && c1 >= 0);
    pct = (c1 - c0) * 100.0 / ((double)(m1 - m0) / 1000);
    printf("# idle host: %.2f %% of a CPU over %.1f s\n", pct,
           (double)(m1 - m0) / 1000);
    HT_CHECK(pct < MAX_CPU);
}

int main(void)
{
    static const char *const need[] = { "mutter",  "pipewire",    "wireplumber",
                                        "pw-dump", "dbus-daemon", "dbus-send",
                                        "Xvfb",    "xdotool" };
    char why[200];

    ht_init("e2e-gnome-host");
    signal(SIGPIPE, SIG_IGN);
    hd_crypto_init();
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (!xvfb_have(need[i])) {
            snprintf(why, sizeof(why), "%s is not installed (tools/deps.sh)",
                     need[i]);
            ht_skip("all", why);
            return ht_finish();
        }
    if (desk_tmp_make(tmpdir, sizeof(tmpdir), "gnome") != 0)
        return 1;
    HT_RUN(set_up);
    if (up) {
        HT_RUN(gnome_backends_chosen);
        HT_RUN(picture_matches);
        HT_RUN(host_pointer_shown);
        HT_RUN(click_arrives);
        HT_RUN(typed_text_arrives);
        HT_RUN(idle_host_cpu);
    }
    if (ht_failures() > 0 || getenv("HD_TEST_VERBOSE")) {
        desk_dump("host log", host.log);
        desk_viewer_dump(&viewer);
        desk_dump("mutter log", mutter_log);
    }
    teardown();
    desk_tmp_done(tmpdir);
    return ht_finish();
}

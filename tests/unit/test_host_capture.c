/*
 * Unit tests for host/capture: the x11 backend against a private Xvfb
 * (windows of known colours drawn by a test client, damage of a small
 * rectangle, a static screen that must cost nothing, RandR resizes,
 * pointer moves, wake-ups), with and without MIT-SHM; and the fake
 * backend's deterministic frames and damage.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <xcb/randr.h>
#include <xcb/xcb.h>

#include "host/capture/capture.h"
#include "tests/harness.h"
#include "tests/unit/xvfb.h"

#define W 1280
#define H 720

/* The red and blue windows the client maps (root coordinates). */
#define RED_X  100
#define RED_Y  50
#define RED_W  200
#define RED_H  100
#define BLUE_X 700
#define BLUE_Y 400
#define BLUE_W 64
#define BLUE_H 48

static struct xvfb xvfb;
static xcb_connection_t *conn; /* the test's own X client */
static xcb_screen_t *screen;
static xcb_window_t red_win;
static int no_shm; /* run the x11 cases with plain GetImage */

static void sync_x(void)
{
    free(xcb_get_input_focus_reply(conn, xcb_get_input_focus(conn), NULL));
}

static xcb_window_t make_window(int x, int y, int w, int h, uint32_t rgb)
{
    xcb_window_t win = xcb_generate_id(conn);
    uint32_t vals[2] = { rgb, 1 };

    xcb_create_window(conn, XCB_COPY_FROM_PARENT, win, screen->root, (int16_t)x,
                      (int16_t)y, (uint16_t)w, (uint16_t)h, 0,
                      XCB_WINDOW_CLASS_INPUT_OUTPUT, screen->root_visual,
                      XCB_CW_BACK_PIXEL | XCB_CW_OVERRIDE_REDIRECT, vals);
    xcb_map_window(conn, win);
    sync_x();
    return win;
}

/* Fill a rectangle of win (window coordinates) with rgb. */
static void fill_rect(xcb_window_t win, int x, int y, int w, int h,
                      uint32_t rgb)
{
    xcb_gcontext_t gc = xcb_generate_id(conn);
    xcb_rectangle_t r = { (int16_t)x, (int16_t)y, (uint16_t)w, (uint16_t)h };

    xcb_create_gc(conn, gc, win, XCB_GC_FOREGROUND, &rgb);
    xcb_poly_fill_rectangle(conn, win, gc, 1, &r);
    xcb_free_gc(conn, gc);
    sync_x();
}

/* The pixel at (x, y) as 0xRRGGBB. */
static uint32_t pixel(const struct capture_frame *f, int x, int y)
{
    const uint8_t *p = f->data + (size_t)y * f->stride + (size_t)x * 4;

    return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static int covers(const struct capture_frame *f, int x, int y, int w, int h)
{
    int i, px, py, hit;

    for (py = y; py < y + h; py++)
        for (px = x; px < x + w; px++) {
            hit = 0;
            for (i = 0; i < f->n_rects && !hit; i++)
                hit = px >= f->rects[i].x &&
                      px < f->rects[i].x + f->rects[i].w &&
                      py >= f->rects[i].y && py < f->rects[i].y + f->rects[i].h;
            if (!hit)
                return 0;
        }
    return 1;
}

static long damaged_area(const struct capture_frame *f)
{
    long a = 0;
    int i;

    for (i = 0; i < f->n_rects; i++)
        a += (long)f->rects[i].w * f->rects[i].h;
    return a;
}

static struct capture *open_x11(void)
{
    struct capture_opts o = { 0 };
    struct capture *cap = NULL;
    int r;

    o.display = xvfb.display;
    o.no_shm = no_shm;
    r = capture_open("x11", &o, &cap);
    HT_EQ_INT(r, 0);
    return cap;
}

/* Open and take the first, whole frame. */
static struct capture *open_grabbed(struct capture_frame *f)
{
    struct capture *cap = open_x11();

    if (cap == NULL)
        return NULL;
    HT_EQ_INT(capture_grab(cap, f, 2000), 1);
    return cap;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void x11_first_frame(void)
{
    struct capture_frame f;
    struct capture *cap = open_grabbed(&f);

    if (cap == NULL)
        return;
    HT_EQ_INT(f.width, W);
    HT_EQ_INT(f.height, H);
    HT_CHECK(f.stride >= W * 4);
    HT_EQ_INT(f.seq, 1);
    HT_CHECK(f.flags & CAPTURE_F_PIXELS);
    HT_CHECK(f.flags & CAPTURE_F_CURSOR_SHAPE);
    HT_CHECK(!(f.flags & CAPTURE_F_RESIZED));
    HT_CHECK(covers(&f, 0, 0, W, H));
    HT_CHECK(f.time_us > 0);
    /* Inside, at the corners of, and just outside the windows. */
    HT_EQ_INT(pixel(&f, RED_X + 50, RED_Y + 30), 0xff0000);
    HT_EQ_INT(pixel(&f, RED_X, RED_Y), 0xff0000);
    HT_EQ_INT(pixel(&f, RED_X + RED_W - 1, RED_Y + RED_H - 1), 0xff0000);
    HT_CHECK(pixel(&f, RED_X - 1, RED_Y) != 0xff0000);
    HT_CHECK(pixel(&f, RED_X + RED_W, RED_Y + RED_H) != 0xff0000);
    HT_EQ_INT(pixel(&f, BLUE_X + 10, BLUE_Y + 10), 0x0000ff);
    HT_EQ_INT(pixel(&f, BLUE_X + BLUE_W - 1, BLUE_Y + BLUE_H - 1), 0x0000ff);
    HT_CHECK(pixel(&f, BLUE_X + BLUE_W, BLUE_Y) != 0x0000ff);
    HT_CHECK(f.cursor.width > 0 && f.cursor.width <= CAPTURE_CURSOR_MAX);
    HT_CHECK(f.cursor.argb != NULL);
    capture_close(cap);
}

static void x11_static_screen_idles(void)
{
    struct capture_frame f;
    struct capture_stats s0, s1;
    struct timespec t0;
    struct capture *cap = open_grabbed(&f);
    double ms;

    if (cap == NULL)
        return;
    capture_get_stats(cap, &s0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    HT_EQ_INT(capture_grab(cap, &f, 300), 0);
    ms = ms_since(&t0);
    HT_CHECK(ms >= 290 && ms < 1000);
    HT_CHECK(f.data == NULL && f.n_rects == 0);
    capture_get_stats(cap, &s1);
    HT_EQ_INT(s1.reads, s0.reads);
    HT_EQ_INT(s1.bytes_copied, s0.bytes_copied);
    HT_EQ_INT(s1.idle, s0.idle + 1);
    capture_close(cap);
}

/* Grabbing in a loop on a static screen must sleep, not spin. */
static void x11_static_screen_costs_no_cpu(void)
{
    struct capture_frame f;
    struct capture_stats s0, s1;
    struct rusage ru0, ru1;
    struct timespec t0;
    struct capture *cap = open_grabbed(&f);
    double cpu_ms;

    if (cap == NULL)
        return;
    capture_get_stats(cap, &s0);
    getrusage(RUSAGE_SELF, &ru0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ms_since(&t0) < 1000)
        HT_EQ_INT(capture_grab(cap, &f, 100), 0);
    getrusage(RUSAGE_SELF, &ru1);
    cpu_ms = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
                      ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) *
                 1e3 +
             (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
                      ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) /
                 1e3;
    printf("# 1 s of grabs on a static screen: %.1f ms CPU\n", cpu_ms);
    HT_CHECK(cpu_ms < 50);
    capture_get_stats(cap, &s1);
    HT_EQ_INT(s1.bytes_copied, s0.bytes_copied);
    capture_close(cap);
}

static void x11_damage_small_rect(void)
{
    struct capture_frame f;
    struct capture_stats s0, s1;
    struct capture *cap = open_grabbed(&f);

    if (cap == NULL)
        return;
    capture_get_stats(cap, &s0);
    /* 20x10 green at (30, 20) in the red window = (130, 70) on screen. */
    fill_rect(red_win, 30, 20, 20, 10, 0x00ff00);
    HT_EQ_INT(capture_grab(cap, &f, 2000), 1);
    HT_EQ_INT(f.seq, 2);
    HT_CHECK(f.flags & CAPTURE_F_PIXELS);
    HT_CHECK(!(f.flags & CAPTURE_F_RESIZED));
    HT_CHECK(f.n_rects >= 1);
    HT_CHECK(covers(&f, RED_X + 30, RED_Y + 20, 20, 10));
    HT_CHECK(damaged_area(&f) < (long)W * H / 100);
    HT_EQ_INT(pixel(&f, RED_X + 30, RED_Y + 20), 0x00ff00);
    HT_EQ_INT(pixel(&f, RED_X + 49, RED_Y + 29), 0x00ff00);
    HT_EQ_INT(pixel(&f, RED_X + 50, RED_Y + 30), 0xff0000);
    HT_EQ_INT(pixel(&f, BLUE_X + 1, BLUE_Y + 1), 0x0000ff);
    capture_get_stats(cap, &s1);
    /* Only the damaged rows (SHM) or rectangle (plain) were read. */
    HT_CHECK(s1.bytes_copied - s0.bytes_copied <= (uint64_t)W * 4 * 32);
    HT_CHECK(s1.bytes_copied - s0.bytes_copied >= 20 * 10 * 4);
    /* Nothing else happened: the next grab idles. */
    HT_EQ_INT(capture_grab(cap, &f, 100), 0);
    /* Put the red back for the other cases (damages that area again). */
    fill_rect(red_win, 30, 20, 20, 10, 0xff0000);
    HT_EQ_INT(capture_grab(cap, &f, 2000), 1);
    HT_EQ_INT(pixel(&f, RED_X + 30, RED_Y + 20), 0xff0000);
    capture_close(cap);
}

static void x11_two_regions(void)
{
    struct capture_frame f;
    struct capture *cap = open_grabbed(&f);
    xcb_window_t blue_win;

    if (cap == NULL)
        return;
    /* Two far-apart changes in one grab: both covered, little between. */
    blue_win = make_window(1000, 600, 30, 30, 0x00ffff);
    fill_rect(red_win, 0, 0, 10, 10, 0xffffff);
    HT_EQ_INT(capture_grab(cap, &f, 2000), 1);
    HT_CHECK(covers(&f, 1000, 600, 30, 30));
    HT_CHECK(covers(&f, RED_X, RED_Y, 10, 10));
    HT_CHECK(damaged_area(&f) < 30 * 30 + 10 * 10 + 1000);
    HT_EQ_INT(pixel(&f, 1015, 615), 0x00ffff);
    HT_EQ_INT(pixel(&f, RED_X + 5, RED_Y + 5), 0xffffff);
    xcb_destroy_window(conn, blue_win);
    fill_rect(red_win, 0, 0, 10, 10, 0xff0000);
    sync_x();
    HT_EQ_INT(capture_grab(cap, &f, 2000), 1);
    HT_CHECK(pixel(&f, 1015, 615) != 0x00ffff);
    capture_close(cap);
}

static void x11_refresh(void)
{
    struct capture_frame f;
    struct capture *cap = open_grabbed(&f);

    if (cap == NULL)
        return;
    capture_refresh(cap);
    HT_EQ_INT(capture_grab(cap, &f, 100), 1);
    HT_CHECK(covers(&f, 0, 0, W, H));
    HT_EQ_INT(pixel(&f, RED_X + 1, RED_Y + 1), 0xff0000);
    capture_close(cap);
}

static void x11_pointer_moves(void)
{
    struct capture_frame f;
    struct capture_stats s0, s1;
    struct capture *cap = open_grabbed(&f);

    if (cap == NULL)
        return;
    capture_get_stats(cap, &s0);
    xcb_warp_pointer(conn, XCB_NONE, screen->root, 0, 0, 0, 0, 321, 123);
    sync_x();
    /* Pixels may change too (Xvfb draws a software cursor). */
    do {
        HT_EQ_INT(capture_grab(cap, &f, 1000), 1);
    } while (!(f.flags & CAPTURE_F_CURSOR_MOVED) && ht_case_failures() == 0);
    HT_EQ_INT(f.cursor.x, 321);
    HT_EQ_INT(f.cursor.y, 123);
    capture_get_stats(cap, &s1);
    capture_close(cap);
}

static void *wake_later(void *arg)
{
    struct timespec ts = { 0, 100 * 1000 * 1000 };

    nanosleep(&ts, NULL);
    capture_wakeup(arg);
    return NULL;
}

static void x11_wakeup(void)
{
    struct capture_frame f;
    struct capture *cap = open_grabbed(&f);
    struct timespec t0;
    pthread_t th;
    double ms;

    if (cap == NULL)
        return;
    /* From another thread while the grab waits without a limit. */
    HT_EQ_INT(pthread_create(&th, NULL, wake_later, cap), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    HT_EQ_INT(capture_grab(cap, &f, -1), 0);
    ms = ms_since(&t0);
    pthread_join(th, NULL);
    HT_CHECK(ms >= 90 && ms < 2000);
    /* Consumed: the next grab waits its full timeout again. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    HT_EQ_INT(capture_grab(cap, &f, 150), 0);
    HT_CHECK(ms_since(&t0) >= 140);
    capture_close(cap);
}

/* Resize the screen with RandR (the output must be off to shrink it). */
static int set_screen_size(int w, int h)
{
    xcb_randr_get_screen_resources_reply_t *res;
    xcb_randr_set_crtc_config_reply_t *cr;
    xcb_generic_error_t *e;
    int i, ok = 1;

    res = xcb_randr_get_screen_resources_reply(
        conn, xcb_randr_get_screen_resources(conn, screen->root), NULL);
    if (res == NULL)
        return 0;
    for (i = 0; i < res->num_crtcs; i++) {
        cr = xcb_randr_set_crtc_config_reply(
            conn,
            xcb_randr_set_crtc_config(
                conn, xcb_randr_get_screen_resources_crtcs(res)[i],
                XCB_CURRENT_TIME, res->config_timestamp, 0, 0, XCB_NONE,
                XCB_RANDR_ROTATION_ROTATE_0, 0, NULL),
            NULL);
        free(cr);
    }
    free(res);
    e = xcb_request_check(
        conn, xcb_randr_set_screen_size_checked(conn, screen->root, (uint16_t)w,
                                                (uint16_t)h, (uint32_t)w / 4,
                                                (uint32_t)h / 4));
    if (e != NULL) {
        ok = 0;
        free(e);
    }
    return ok;
}

static int randr_resizable(void)
{
    xcb_randr_query_version_reply_t *v;
    const xcb_query_extension_reply_t *q;

    q = xcb_get_extension_data(conn, &xcb_randr_id);
    if (q == NULL || !q->present)
        return 0;
    v = xcb_randr_query_version_reply(conn, xcb_randr_query_version(conn, 1, 2),
                                      NULL);
    if (v == NULL)
        return 0;
    free(v);
    return 1;
}

static void x11_resize(void)
{
    struct capture_frame f;
    struct capture *cap = open_grabbed(&f);

    if (cap == NULL)
        return;
    if (!set_screen_size(800, 600)) {
        HT_CHECK(!"RandR refused 800x600");
        capture_close(cap);
        return;
    }
    do {
        HT_EQ_INT(capture_grab(cap, &f, 2000), 1);
    } while (!(f.flags & CAPTURE_F_RESIZED) && ht_case_failures() == 0);
    HT_EQ_INT(f.width, 800);
    HT_EQ_INT(f.height, 600);
    HT_CHECK(f.stride >= 800 * 4);
    HT_CHECK(covers(&f, 0, 0, 800, 600));
    HT_CHECK(damaged_area(&f) <= 800L * 600);
    HT_EQ_INT(pixel(&f, RED_X + 5, RED_Y + 5), 0xff0000);
    /* Damage after the resize lands in the new frame. */
    fill_rect(red_win, 0, 0, 4, 4, 0x00ff00);
    HT_EQ_INT(capture_grab(cap, &f, 2000), 1);
    HT_EQ_INT(pixel(&f, RED_X + 1, RED_Y + 1), 0x00ff00);
    fill_rect(red_win, 0, 0, 4, 4, 0xff0000);

    HT_CHECK(set_screen_size(W, H));
    do {
        HT_EQ_INT(capture_grab(cap, &f, 2000), 1);
    } while (!(f.flags & CAPTURE_F_RESIZED) && ht_case_failures() == 0);
    HT_EQ_INT(f.width, W);
    HT_EQ_INT(f.height, H);
    HT_EQ_INT(pixel(&f, BLUE_X + 1, BLUE_Y + 1), 0x0000ff);
    capture_close(cap);
}

static void x11_bad_display(void)
{
    struct capture_opts o = { 0 };
    struct capture *cap = (struct capture *)&o;

    o.display = ":4321";
    HT_EQ_INT(capture_open("x11", &o, &cap), -ENODEV);
    HT_CHECK(cap == NULL);
    HT_EQ_INT(capture_open("nosuch", &o, &cap), -ENOENT);
    HT_CHECK(cap == NULL);
}

/* Decode the fake backend's counter strip. */
static uint64_t fake_counter(const struct capture_frame *f)
{
    uint64_t n = 0;
    int i;

    for (i = 0; i < 32; i++)
        if (pixel(f, i * CAPTURE_FAKE_COUNTER_H + 3, 3) == 0xffffff)
            n |= (uint64_t)1 << i;
    return n;
}

static void fake_frames(void)
{
    struct capture_opts o = { 0 };
    struct capture_frame f;
    struct capture_rect box, old;
    struct capture *cap = NULL;
    const uint32_t *px;
    uint64_t n;

    o.width = 320;
    o.height = 240;
    o.fake_frames = 5;
    HT_EQ_INT(capture_open("fake", &o, &cap), 0);
    if (cap == NULL)
        return;
    HT_EQ_STR(capture_name(cap), "fake");
    HT_EQ_INT(capture_grab(cap, &f, 0), 1);
    HT_EQ_INT(f.width, 320);
    HT_EQ_INT(f.height, 240);
    HT_CHECK(covers(&f, 0, 0, 320, 240));
    HT_EQ_INT(fake_counter(&f), 1);
    HT_CHECK(f.flags & CAPTURE_F_CURSOR_SHAPE);
    for (n = 2; n <= 5; n++) {
        HT_EQ_INT(capture_grab(cap, &f, 0), 1);
        HT_EQ_INT(f.seq, n);
        HT_EQ_INT(fake_counter(&f), n);
        capture_fake_box(n, 320, 240, &box);
        capture_fake_box(n - 1, 320, 240, &old);
        HT_CHECK(covers(&f, box.x, box.y, box.w, box.h));
        HT_CHECK(covers(&f, old.x, old.y, old.w, old.h));
        HT_CHECK(damaged_area(&f) < 320 * 240 / 4);
        px = (const uint32_t *)(f.data + (size_t)(box.y + 5) * f.stride);
        HT_EQ_INT(px[box.x + 5], CAPTURE_FAKE_BOX_BGRA);
        /* Where the old box was and the new one is not: background. */
        if (old.x < box.x) {
            px = (const uint32_t *)(f.data + (size_t)old.y * f.stride);
            HT_EQ_INT(px[old.x], capture_fake_background(old.x, old.y));
        }
    }
    /* fake_frames reached: static from now on. */
    HT_EQ_INT(capture_grab(cap, &f, 50), 0);
    capture_refresh(cap);
    HT_EQ_INT(capture_grab(cap, &f, 0), 1);
    HT_EQ_INT(fake_counter(&f), 5);
    HT_CHECK(covers(&f, 0, 0, 320, 240));
    capture_wakeup(cap);
    HT_EQ_INT(capture_grab(cap, &f, 5000), 0);
    capture_close(cap);
}

static void rects_merge(void)
{
    struct capture_rect r[CAPTURE_MAX_RECTS];
    int n = 0, i;

    capture_rects_add(r, &n, 100, 100, (struct capture_rect){ 10, 10, 5, 5 });
    capture_rects_add(r, &n, 100, 100, (struct capture_rect){ 12, 12, 5, 5 });
    HT_EQ_INT(n, 1);
    HT_EQ_INT(r[0].x, 10);
    HT_EQ_INT(r[0].w, 7);
    HT_EQ_INT(r[0].h, 7);
    capture_rects_add(r, &n, 100, 100, (struct capture_rect){ 95, 95, 20, 20 });
    HT_EQ_INT(n, 2);
    HT_EQ_INT(r[1].w, 5);
    capture_rects_add(r, &n, 100, 100, (struct capture_rect){ -5, 0, 3, 3 });
    capture_rects_add(r, &n, 100, 100, (struct capture_rect){ 0, 0, 0, 9 });
    HT_EQ_INT(n, 2);
    n = 0;
    for (i = 0; i < CAPTURE_MAX_RECTS + 1; i++)
        capture_rects_add(r, &n, 1000, 1000,
                          (struct capture_rect){ i * 10, 0, 2, 2 });
    HT_EQ_INT(n, 1);
    HT_EQ_INT(r[0].w, CAPTURE_MAX_RECTS * 10 + 2);
}

#define X11_CASES(suffix)                                                  \
    do {                                                                   \
        ht_run("x11_first_frame" suffix, x11_first_frame);                 \
        ht_run("x11_static_screen_idles" suffix, x11_static_screen_idles); \
        ht_run("x11_damage_small_rect" suffix, x11_damage_small_rect);     \
        ht_run("x11_two_regions" suffix, x11_two_regions);                 \
        ht_run("x11_refresh" suffix, x11_refresh);                         \
    } while (0)

int main(void)
{
    int r, screen_num;

    ht_init("host_capture");
    HT_RUN(rects_merge);
    HT_RUN(fake_frames);
    HT_RUN(x11_bad_display);
    r = xvfb_start(&xvfb);
    if (r != 0) {
        const char *why =
            r == -ENOENT ? "Xvfb not installed" : "Xvfb did not start";
        ht_skip("x11", why);
        return ht_finish();
    }
    conn = xcb_connect(xvfb.display, &screen_num);
    if (xcb_connection_has_error(conn)) {
        ht_skip("x11", "cannot connect to Xvfb");
        xvfb_stop(&xvfb);
        return ht_finish();
    }
    screen = xcb_setup_roots_iterator(xcb_get_setup(conn)).data;
    red_win = make_window(RED_X, RED_Y, RED_W, RED_H, 0xff0000);
    make_window(BLUE_X, BLUE_Y, BLUE_W, BLUE_H, 0x0000ff);

    X11_CASES("");
    HT_RUN(x11_static_screen_costs_no_cpu);
    HT_RUN(x11_pointer_moves);
    HT_RUN(x11_wakeup);
    no_shm = 1;
    X11_CASES("_no_shm");
    no_shm = 0;
    if (randr_resizable())
        HT_RUN(x11_resize);
    else
        ht_skip("x11_resize", "Xvfb without RandR 1.2");

    xcb_disconnect(conn);
    xvfb_stop(&xvfb);
    return ht_finish();
}

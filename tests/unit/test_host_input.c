/*
 * Unit tests for host/input: the xtest backend against a private Xvfb,
 * checked from the receiving side (a test window with key and button
 * events selected and the focus, and QueryPointer), including a keysym
 * missing from the keyboard mapping; the framework's argument checks and
 * release-all on the fake backend.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xcb/xcb.h>

#include "host/input/input.h"
#include "tests/harness.h"
#include "tests/unit/xvfb.h"

#define WIN_X 200
#define WIN_Y 150
#define WIN_W 300
#define WIN_H 200

#define XK_a       0x61
#define XK_A       0x41
#define XK_b       0x62
#define XK_Return  0xff0d
#define XK_Shift_L 0xffe1
#define XK_smiley  0x100263a /* U+263A, in no default keymap */

static struct xvfb xvfb;
static xcb_connection_t *conn;
static xcb_screen_t *screen;
static xcb_window_t win;

static void sync_x(void)
{
    free(xcb_get_input_focus_reply(conn, xcb_get_input_focus(conn), NULL));
}

static struct input *open_xtest(void)
{
    struct input_opts o = { xvfb.display };
    struct input *in = NULL;

    HT_EQ_INT(input_open("xtest", &o, &in), 0);
    return in;
}

/* The next event of one of the wanted types (others are skipped), or
 * NULL after timeout_ms. */
static xcb_generic_event_t *wait_event(uint8_t t1, uint8_t t2, int timeout_ms)
{
    struct pollfd pfd = { xcb_get_file_descriptor(conn), POLLIN, 0 };
    xcb_generic_event_t *ev;
    struct timespec t0, t;
    int left;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        while ((ev = xcb_poll_for_event(conn)) != NULL) {
            uint8_t type = ev->response_type & 0x7f;
            if (type == t1 || type == t2)
                return ev;
            free(ev);
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        left = timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 +
                                  (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0 || xcb_connection_has_error(conn))
            return NULL;
        poll(&pfd, 1, left);
    }
}

/* Drop every event already queued or arriving within ms. */
static void flush_events(int ms)
{
    free(wait_event(0xff, 0xff, ms));
}

static xcb_keysym_t keysym_of(uint8_t keycode, int col)
{
    xcb_get_keyboard_mapping_reply_t *m;
    xcb_keysym_t ks = 0;

    m = xcb_get_keyboard_mapping_reply(
        conn, xcb_get_keyboard_mapping(conn, keycode, 1), NULL);
    if (m == NULL)
        return 0;
    if (col < m->keysyms_per_keycode &&
        col < xcb_get_keyboard_mapping_keysyms_length(m))
        ks = xcb_get_keyboard_mapping_keysyms(m)[col];
    free(m);
    return ks;
}

static void pointer_at(int *x, int *y)
{
    xcb_query_pointer_reply_t *p;

    *x = *y = -1;
    p = xcb_query_pointer_reply(conn, xcb_query_pointer(conn, screen->root),
                                NULL);
    if (p != NULL) {
        *x = p->root_x;
        *y = p->root_y;
    }
    free(p);
}

static void xtest_move(void)
{
    struct input *in = open_xtest();
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    int x, y, tries;

    if (in == NULL)
        return;
    HT_EQ_STR(input_name(in), "xtest");
    HT_EQ_INT(input_move(in, 321, 234), 0);
    for (tries = 0; tries < 100; tries++) {
        pointer_at(&x, &y);
        if (x == 321 && y == 234)
            break;
        nanosleep(&ts, NULL);
    }
    HT_EQ_INT(x, 321);
    HT_EQ_INT(y, 234);
    /* Past the edge: the server clamps to the screen. */
    HT_EQ_INT(input_move(in, 5000, 10), 0);
    for (tries = 0; tries < 100; tries++) {
        pointer_at(&x, &y);
        if (x == screen->width_in_pixels - 1)
            break;
        nanosleep(&ts, NULL);
    }
    HT_EQ_INT(x, screen->width_in_pixels - 1);
    HT_EQ_INT(y, 10);
    input_close(in);
}

static void check_key(xcb_generic_event_t *ev, uint8_t type, xcb_keysym_t ks,
                      int col)
{
    xcb_key_press_event_t *k = (xcb_key_press_event_t *)ev;

    HT_CHECK(ev != NULL);
    if (ev == NULL)
        return;
    HT_EQ_INT(ev->response_type & 0x7f, type);
    HT_EQ_INT(k->event, win);
    HT_EQ_INT(keysym_of(k->detail, col), ks);
    if (col == 1)
        HT_CHECK(k->state & XCB_MOD_MASK_SHIFT);
    else
        HT_CHECK(!(k->state & XCB_MOD_MASK_SHIFT));
    free(ev);
}

static void xtest_keys(void)
{
    struct input *in = open_xtest();
    uint8_t kc;
    int shift;

    if (in == NULL)
        return;
    flush_events(20);
    HT_EQ_INT(input_key(in, XK_a, 1), 0);
    HT_EQ_INT(input_key(in, XK_a, 0), 0);
    check_key(wait_event(XCB_KEY_PRESS, XCB_KEY_RELEASE, 2000), XCB_KEY_PRESS,
              XK_a, 0);
    check_key(wait_event(XCB_KEY_PRESS, XCB_KEY_RELEASE, 2000), XCB_KEY_RELEASE,
              XK_a, 0);

    HT_EQ_INT(input_key(in, XK_Return, 1), 0);
    HT_EQ_INT(input_key(in, XK_Return, 0), 0);
    check_key(wait_event(XCB_KEY_PRESS, XCB_KEY_RELEASE, 2000), XCB_KEY_PRESS,
              XK_Return, 0);
    check_key(wait_event(XCB_KEY_PRESS, XCB_KEY_RELEASE, 2000), XCB_KEY_RELEASE,
              XK_Return, 0);

    /* 'A' lives in the Shift column of the 'a' key: Shift goes around. */
    HT_EQ_INT(input_keysym_to_keycode(in, XK_A, &kc, &shift), 0);
    HT_EQ_INT(shift, 1);
    HT_EQ_INT(keysym_of(kc, 1), XK_A);
    HT_EQ_INT(input_key(in, XK_A, 1), 0);
    HT_EQ_INT(input_key(in, XK_A, 0), 0);
    check_key(wait_event(XCB_KEY_PRESS, XCB_KEY_RELEASE, 2000), XCB_KEY_PRESS,
              XK_Shift_L, 0);
    check_key(wait_event(XCB_KEY_PRESS, XCB_KEY_RELEASE, 2000), XCB_KEY_PRESS,
              XK_A, 1);
    check_key(wait_event(XCB_KEY_PRESS, XCB_KEY_RELEASE, 2000), XCB_KEY_RELEASE,
              XK_A, 1);
    {
        /* Shift's own release carries Shift in its state. */
        xcb_generic_event_t *ev =
            wait_event(XCB_KEY_PRESS, XCB_KEY_RELEASE, 2000);
        HT_CHECK(ev != NULL);
        if (ev != NULL) {
            xcb_key_release_event_t *k = (xcb_key_release_event_t *)ev;
            HT_EQ_INT(ev->response_type & 0x7f, XCB_KEY_RELEASE);
            HT_EQ_INT(keysym_of(k->detail, 0), XK_Shift_L);
        }
        free(ev);
    }
    input_close(in);
}

static void xtest_unmapped_keysym(void)
{
    struct input *in = open_xtest();
    xcb_key_press_event_t *k;
    xcb_generic_event_t *ev;
    uint8_t kc = 0, kc2;
    int shift;

    if (in == NULL)
        return;
    flush_events(20);
    HT_EQ_INT(input_key(in, XK_smiley, 1), 0);
    HT_EQ_INT(input_key(in, XK_smiley, 0), 0);
    ev = wait_event(XCB_KEY_PRESS, XCB_KEY_RELEASE, 2000);
    HT_CHECK(ev != NULL);
    if (ev != NULL) {
        k = (xcb_key_press_event_t *)ev;
        HT_EQ_INT(ev->response_type & 0x7f, XCB_KEY_PRESS);
        kc = k->detail;
        /* The keycode now types U+263A for every client. */
        HT_EQ_INT(keysym_of(kc, 0), XK_smiley);
        free(ev);
    }
    free(wait_event(XCB_KEY_RELEASE, XCB_KEY_RELEASE, 2000));
    /* Asked again: the same spare, still bound. */
    HT_EQ_INT(input_keysym_to_keycode(in, XK_smiley, &kc2, &shift), 0);
    HT_EQ_INT(kc2, kc);
    HT_EQ_INT(shift, 0);
    input_close(in);
    /* Closing gave the spare keycode back. */
    if (kc != 0)
        HT_EQ_INT(keysym_of(kc, 0), 0);
}

static void check_button(xcb_generic_event_t *ev, uint8_t type, int button,
                         int x, int y)
{
    xcb_button_press_event_t *b = (xcb_button_press_event_t *)ev;

    HT_CHECK(ev != NULL);
    if (ev == NULL)
        return;
    HT_EQ_INT(ev->response_type & 0x7f, type);
    HT_EQ_INT(b->event, win);
    HT_EQ_INT(b->detail, button);
    HT_EQ_INT(b->event_x, x);
    HT_EQ_INT(b->event_y, y);
    HT_EQ_INT(b->root_x, WIN_X + x);
    HT_EQ_INT(b->root_y, WIN_Y + y);
    free(ev);
}

static void xtest_buttons(void)
{
    static const struct {
        enum input_button b;
        int x_button;
    } cases[] = { { INPUT_BUTTON_LEFT, 1 },
                  { INPUT_BUTTON_MIDDLE, 2 },
                  { INPUT_BUTTON_RIGHT, 3 },
                  { INPUT_BUTTON_BACK, 8 },
                  { INPUT_BUTTON_FORWARD, 9 } };
    struct input *in = open_xtest();
    size_t i;

    if (in == NULL)
        return;
    HT_EQ_INT(input_move(in, WIN_X + 50, WIN_Y + 30), 0);
    flush_events(50);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        HT_EQ_INT(input_button(in, cases[i].b, 1), 0);
        HT_EQ_INT(input_button(in, cases[i].b, 0), 0);
        check_button(wait_event(XCB_BUTTON_PRESS, XCB_BUTTON_RELEASE, 2000),
                     XCB_BUTTON_PRESS, cases[i].x_button, 50, 30);
        check_button(wait_event(XCB_BUTTON_PRESS, XCB_BUTTON_RELEASE, 2000),
                     XCB_BUTTON_RELEASE, cases[i].x_button, 50, 30);
    }
    /* Wheel: two steps up, one down, one right, one left. */
    HT_EQ_INT(input_wheel(in, 0, 2), 0);
    HT_EQ_INT(input_wheel(in, 0, -1), 0);
    HT_EQ_INT(input_wheel(in, 1, 0), 0);
    HT_EQ_INT(input_wheel(in, -1, 0), 0);
    {
        static const int want[] = { 4, 4, 5, 7, 6 };
        for (i = 0; i < 5; i++) {
            check_button(wait_event(XCB_BUTTON_PRESS, 0xff, 2000),
                         XCB_BUTTON_PRESS, want[i], 50, 30);
        }
    }
    input_close(in);
}

static void xtest_release_all(void)
{
    struct input *in = open_xtest();
    xcb_generic_event_t *ev;
    int got_key = 0, got_button = 0, n;

    if (in == NULL)
        return;
    HT_EQ_INT(input_move(in, WIN_X + 10, WIN_Y + 10), 0);
    HT_EQ_INT(input_key(in, XK_b, 1), 0);
    HT_EQ_INT(input_button(in, INPUT_BUTTON_LEFT, 1), 0);
    flush_events(100);
    /* The viewer vanishes with both held: close lets go of them. */
    input_close(in);
    for (n = 0; n < 2; n++) {
        ev = wait_event(XCB_KEY_RELEASE, XCB_BUTTON_RELEASE, 2000);
        if (ev == NULL)
            break;
        if ((ev->response_type & 0x7f) == XCB_KEY_RELEASE)
            got_key =
                keysym_of(((xcb_key_release_event_t *)ev)->detail, 0) == XK_b;
        else
            got_button = ((xcb_button_release_event_t *)ev)->detail == 1;
        free(ev);
    }
    HT_CHECK(got_key);
    HT_CHECK(got_button);
}

static void fake_records_and_checks(void)
{
    const struct input_event *ev;
    struct input *in = NULL;
    size_t n;

    HT_EQ_INT(input_open("fake", NULL, &in), 0);
    if (in == NULL)
        return;
    HT_EQ_INT(input_move(in, -1, 0), -EINVAL);
    HT_EQ_INT(input_move(in, 0, INPUT_COORD_MAX + 1), -EINVAL);
    HT_EQ_INT(input_button(in, (enum input_button)0, 1), -EINVAL);
    HT_EQ_INT(input_button(in, (enum input_button)99, 1), -EINVAL);
    HT_EQ_INT(input_key(in, 0, 1), -EINVAL);
    HT_EQ_INT(input_key(in, 0x2000000, 1), -EINVAL);
    ev = input_fake_events(in, &n);
    HT_EQ_INT(n, 0);

    HT_EQ_INT(input_move(in, 10, 20), 0);
    HT_EQ_INT(input_button(in, INPUT_BUTTON_RIGHT, 1), 0);
    HT_EQ_INT(input_wheel(in, 0, 1000), 0); /* clamped */
    HT_EQ_INT(input_wheel(in, 0, 0), 0);    /* nothing to do */
    HT_EQ_INT(input_key(in, XK_a, 0), 0);   /* not down: ignored */
    HT_EQ_INT(input_key(in, XK_a, 1), 0);
    HT_EQ_INT(input_key(in, XK_b, 1), 0);
    HT_EQ_INT(input_key(in, XK_a, 1), 0); /* auto-repeat */
    HT_EQ_INT(input_release_all(in), 0);
    ev = input_fake_events(in, &n);
    HT_EQ_INT(n, 9);
    if (n == 9) {
        HT_EQ_INT(ev[0].type, INPUT_EV_MOVE);
        HT_EQ_INT(ev[0].x, 10);
        HT_EQ_INT(ev[0].y, 20);
        HT_EQ_INT(ev[1].type, INPUT_EV_BUTTON);
        HT_EQ_INT(ev[1].button, INPUT_BUTTON_RIGHT);
        HT_EQ_INT(ev[1].down, 1);
        HT_EQ_INT(ev[2].type, INPUT_EV_WHEEL);
        HT_EQ_INT(ev[2].y, INPUT_WHEEL_MAX);
        HT_EQ_INT(ev[3].keysym, XK_a);
        HT_EQ_INT(ev[4].keysym, XK_b);
        HT_EQ_INT(ev[5].keysym, XK_a);
        HT_EQ_INT(ev[5].down, 1);
        /* Release all: keys last-pressed first, then buttons. */
        HT_EQ_INT(ev[6].keysym, XK_b);
        HT_EQ_INT(ev[6].down, 0);
        HT_EQ_INT(ev[7].keysym, XK_a);
        HT_EQ_INT(ev[7].down, 0);
        HT_EQ_INT(ev[8].type, INPUT_EV_BUTTON);
        HT_EQ_INT(ev[8].down, 0);
    }
    {
        uint8_t kc = 1;
        int shift = 1;
        HT_EQ_INT(input_keysym_to_keycode(in, XK_a, &kc, &shift), -ENOTSUP);
        HT_EQ_INT(kc, 0);
        HT_EQ_INT(shift, 0);
    }
    input_fake_clear(in);
    input_fake_events(in, &n);
    HT_EQ_INT(n, 0);
    input_close(in);
}

static void fake_held_limit(void)
{
    struct input *in = NULL;
    uint32_t k;

    HT_EQ_INT(input_open("fake", NULL, &in), 0);
    if (in == NULL)
        return;
    for (k = 0; k < INPUT_MAX_HELD; k++)
        HT_EQ_INT(input_key(in, 0x61 + k, 1), 0);
    HT_EQ_INT(input_key(in, 0x61 + k, 1), -ENOSPC);
    HT_EQ_INT(input_key(in, 0x61, 1), 0); /* repeat of a held key is fine */
    input_close(in);
}

static void bad_opens(void)
{
    struct input_opts o = { ":4321" };
    struct input *in = (struct input *)&o;

    HT_EQ_INT(input_open("xtest", &o, &in), -ENODEV);
    HT_CHECK(in == NULL);
    HT_EQ_INT(input_open("nosuch", &o, &in), -ENOENT);
    HT_CHECK(in == NULL);
}

int main(void)
{
    uint32_t vals[2];
    int r, screen_num;

    ht_init("host_input");
    HT_RUN(fake_records_and_checks);
    HT_RUN(fake_held_limit);
    HT_RUN(bad_opens);
    r = xvfb_start(&xvfb);
    if (r != 0) {
        ht_skip("xtest",
                r == -ENOENT ? "Xvfb not installed" : "Xvfb did not start");
        return ht_finish();
    }
    conn = xcb_connect(xvfb.display, &screen_num);
    if (xcb_connection_has_error(conn)) {
        ht_skip("xtest", "cannot connect to Xvfb");
        xvfb_stop(&xvfb);
        return ht_finish();
    }
    screen = xcb_setup_roots_iterator(xcb_get_setup(conn)).data;
    win = xcb_generate_id(conn);
    vals[0] = screen->white_pixel;
    vals[1] = XCB_EVENT_MASK_KEY_PRESS | XCB_EVENT_MASK_KEY_RELEASE |
              XCB_EVENT_MASK_BUTTON_PRESS | XCB_EVENT_MASK_BUTTON_RELEASE;
    xcb_create_window(conn, XCB_COPY_FROM_PARENT, win, screen->root, WIN_X,
                      WIN_Y, WIN_W, WIN_H, 0, XCB_WINDOW_CLASS_INPUT_OUTPUT,
                      screen->root_visual,
                      XCB_CW_BACK_PIXEL | XCB_CW_EVENT_MASK, vals);
    xcb_map_window(conn, win);
    sync_x();
    xcb_set_input_focus(conn, XCB_INPUT_FOCUS_POINTER_ROOT, win,
                        XCB_CURRENT_TIME);
    sync_x();

    HT_RUN(xtest_move);
    HT_RUN(xtest_keys);
    HT_RUN(xtest_unmapped_keysym);
    HT_RUN(xtest_buttons);
    HT_RUN(xtest_release_all);

    xcb_disconnect(conn);
    xvfb_stop(&xvfb);
    return ht_finish();
}

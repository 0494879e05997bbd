/*
 * Input through the XTEST extension (FakeInput) over XCB.
 *
 * Keys: the core keyboard mapping (GetKeyboardMapping) is cached and read
 * again after a MappingNotify.  A keysym is looked up in the first two
 * columns (plain and Shift); when absent, one of a few spare keycodes
 * (those bound to no keysym at open) is bound to it with
 * ChangeKeyboardMapping, as xdotool does.  Unlike xdotool we leave the
 * binding in place after the key is released and reuse the least recently
 * used spare next time: clients read the new mapping when they handle the
 * MappingNotify, which can be after the release, so undoing it at once
 * could turn the key into something else.  Bindings are undone at close.
 * The keycode (and Shift) used for a press is remembered so the release
 * goes to the same key even if the mapping changed in between.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xcb/xcb.h>
#include <xcb/xtest.h>

#include "host/input/input.h"
#include "log.h"

#define MOD            "input-xtest"
#define SPARE_MAX      8
#define XK_Shift_L     0xffe1
#define XK_Shift_R     0xffe2
#define X_BUTTON_UP    4
#define X_BUTTON_DOWN  5
#define X_BUTTON_LEFT  6
#define X_BUTTON_RIGHT 7

struct held_key {
    uint32_t keysym;
    uint8_t keycode;
    uint8_t shift_kc; /* Shift we pressed for it, 0 = none */
};

struct xtest {
    xcb_connection_t *c;
    xcb_window_t root;
    uint8_t min_kc, max_kc;
    xcb_keysym_t *map; /* (max_kc - min_kc + 1) * per, NULL = stale */
    int per;           /* keysyms per keycode */
    uint8_t spare[SPARE_MAX];
    uint32_t spare_sym[SPARE_MAX]; /* keysym bound now, 0 = none */
    uint64_t spare_used[SPARE_MAX];
    int n_spare;
    uint64_t tick;
    struct held_key held[INPUT_MAX_HELD];
    int n_held;
};

static void drop_map(struct xtest *t)
{
    free(t->map);
    t->map = NULL;
}

/* Handle pending events: a keyboard MappingNotify makes the cache stale. */
static int drain(struct xtest *t)
{
    xcb_generic_event_t *ev;

    while ((ev = xcb_poll_for_event(t->c)) != NULL) {
        uint8_t type = ev->response_type & 0x7f;
        if (type == XCB_MAPPING_NOTIFY) {
            xcb_mapping_notify_event_t *m = (xcb_mapping_notify_event_t *)ev;
            if (m->request == XCB_MAPPING_KEYBOARD)
                drop_map(t);
        } else if (type == 0) {
            xcb_generic_error_t *e = (xcb_generic_error_t *)ev;
            hd_warn(MOD, "X error %d (request %d.%d)", e->error_code,
                    e->major_code, e->minor_code);
        }
        free(ev);
    }
    if (xcb_connection_has_error(t->c)) {
        hd_error(MOD, "lost the connection to the X server");
        return -EIO;
    }
    return 0;
}

static int load_map(struct xtest *t)
{
    xcb_get_keyboard_mapping_reply_t *rep;
    int count = t->max_kc - t->min_kc + 1, len;

    if (t->map != NULL)
        return 0;
    rep = xcb_get_keyboard_mapping_reply(
        t->c, xcb_get_keyboard_mapping(t->c, t->min_kc, (uint8_t)count), NULL);
    if (rep == NULL)
        return -EIO;
    len = xcb_get_keyboard_mapping_keysyms_length(rep);
    if (rep->keysyms_per_keycode == 0 ||
        len < count * rep->keysyms_per_keycode) {
        free(rep);
        hd_error(MOD, "short keyboard mapping reply");
        return -EIO;
    }
    t->per = rep->keysyms_per_keycode;
    t->map = malloc(sizeof(xcb_keysym_t) * (size_t)len);
    if (t->map == NULL) {
        free(rep);
        return -ENOMEM;
    }
    memcpy(t->map, xcb_get_keyboard_mapping_keysyms(rep),
           sizeof(xcb_keysym_t) * (size_t)len);
    free(rep);
    return 0;
}

static xcb_keysym_t map_at(const struct xtest *t, int kc, int col)
{
    return t->map[(size_t)(kc - t->min_kc) * (size_t)t->per + (size_t)col];
}

/* Find keysym in the first two columns: returns the keycode or 0. */
static uint8_t lookup(const struct xtest *t, uint32_t keysym, int *shift)
{
    int kc, col, cols = t->per < 2 ? t->per : 2;

    for (col = 0; col < cols; col++)
        for (kc = t->min_kc; kc <= t->max_kc; kc++)
            if (map_at(t, kc, col) == keysym) {
                *shift = col;
                return (uint8_t)kc;
            }
    return 0;
}

static int is_held_code(const struct xtest *t, uint8_t kc)
{
    int i;

    for (i = 0; i < t->n_held; i++)
        if (t->held[i].keycode == kc)
            return 1;
    return 0;
}

/* Bind a spare keycode to keysym; returns the keycode or 0. */
static uint8_t bind_spare(struct xtest *t, uint32_t keysym)
{
    xcb_keysym_t syms[2] = { keysym, keysym };
    int i, best = -1;

    for (i = 0; i < t->n_spare; i++) {
        if (is_held_code(t, t->spare[i]))
            continue;
        if (best < 0 || t->spare_used[i] < t->spare_used[best])
            best = i;
    }
    if (best < 0)
        return 0;
    xcb_change_keyboard_mapping(t->c, 1, t->spare[best], 2, syms);
    t->spare_sym[best] = keysym;
    t->spare_used[best] = ++t->tick;
    /* Our copy now; the MappingNotify that follows refreshes it. */
    drop_map(t);
    hd_debug(MOD, "keysym 0x%x bound to spare keycode %d", keysym,
             t->spare[best]);
    return t->spare[best];
}

static int xtest_keysym_to_keycode(struct input *in, uint32_t keysym,
                                   uint8_t *keycode, int *shift)
{
    struct xtest *t = in->priv;
    uint8_t kc;
    int i, r;

    if ((r = drain(t)) != 0 || (r = load_map(t)) != 0)
        return r;
    /* A spare already bound to it: use it even before the server's
     * MappingNotify arrives. */
    for (i = 0; i < t->n_spare; i++)
        if (t->spare_sym[i] == keysym) {
            t->spare_used[i] = ++t->tick;
            *keycode = t->spare[i];
            return 0;
        }
    kc = lookup(t, keysym, shift);
    if (kc == 0) {
        *shift = 0;
        kc = bind_spare(t, keysym);
    }
    if (kc == 0) {
        hd_warn(MOD, "no keycode for keysym 0x%x and no spare one", keysym);
        return -ENOENT;
    }
    *keycode = kc;
    return 0;
}

static void emit(struct xtest *t, uint8_t type, uint8_t detail, int x, int y)
{
    xcb_test_fake_input(t->c, type, detail, XCB_CURRENT_TIME, t->root,
                        (int16_t)x, (int16_t)y, XCB_NONE);
}

static int flush(struct xtest *t)
{
    if (xcb_flush(t->c) <= 0) {
        hd_error(MOD, "lost the connection to the X server");
        return -EIO;
    }
    return drain(t);
}

static int xtest_move(struct input *in, int x, int y)
{
    struct xtest *t = in->priv;

    emit(t, XCB_MOTION_NOTIFY, 0, x, y);
    return flush(t);
}

static int xtest_button(struct input *in, enum input_button b, int down)
{
    static const uint8_t xbutton[] = { 0, 1, 2, 3, 8, 9 };
    struct xtest *t = in->priv;

    emit(t, down ? XCB_BUTTON_PRESS : XCB_BUTTON_RELEASE, xbutton[b], 0, 0);
    return flush(t);
}

static void click(struct xtest *t, uint8_t button, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        emit(t, XCB_BUTTON_PRESS, button, 0, 0);
        emit(t, XCB_BUTTON_RELEASE, button, 0, 0);
    }
}

static int xtest_wheel(struct input *in, int dx, int dy)
{
    struct xtest *t = in->priv;

    click(t, dy > 0 ? X_BUTTON_UP : X_BUTTON_DOWN, abs(dy));
    click(t, dx > 0 ? X_BUTTON_RIGHT : X_BUTTON_LEFT, abs(dx));
    return flush(t);
}

/* True when the viewer (or a key of ours) holds a Shift key. */
static int shift_down(const struct xtest *t)
{
    int i;

    for (i = 0; i < t->n_held; i++)
        if (t->held[i].keysym == XK_Shift_L ||
            t->held[i].keysym == XK_Shift_R || t->held[i].shift_kc != 0)
            return 1;
    return 0;
}

static int xtest_key(struct input *in, uint32_t keysym, int down)
{
    struct xtest *t = in->priv;
    struct held_key *h = NULL;
    uint8_t kc, shift_kc = 0;
    int i, r, shift = 0;

    for (i = 0; i < t->n_held; i++)
        if (t->held[i].keysym == keysym)
            h = &t->held[i];

    if (!down) {
        if (h == NULL)
            return 0;
        emit(t, XCB_KEY_RELEASE, h->keycode, 0, 0);
        if (h->shift_kc != 0)
            emit(t, XCB_KEY_RELEASE, h->shift_kc, 0, 0);
        *h = t->held[--t->n_held];
        return flush(t);
    }

    if (h != NULL) { /* auto-repeat: same key again */
        emit(t, XCB_KEY_PRESS, h->keycode, 0, 0);
        return flush(t);
    }
    if (t->n_held == INPUT_MAX_HELD)
        return -ENOSPC;
    if ((r = xtest_keysym_to_keycode(in, keysym, &kc, &shift)) != 0)
        return r;
    h = &t->held[t->n_held];
    h->keysym = keysym;
    h->keycode = kc;
    h->shift_kc = 0;
    if (shift && !shift_down(t)) {
        int unused;
        if (xtest_keysym_to_keycode(in, XK_Shift_L, &shift_kc, &unused) == 0) {
            emit(t, XCB_KEY_PRESS, shift_kc, 0, 0);
            h->shift_kc = shift_kc;
        }
    }
    emit(t, XCB_KEY_PRESS, kc, 0, 0);
    t->n_held++;
    return flush(t);
}

static int xtest_code(struct input *in, unsigned code, int down)
{
    struct xtest *t = in->priv;

    /* X keycodes are the kernel's codes + 8 (xkb's evdev rules) */
    emit(t, down ? XCB_KEY_PRESS : XCB_KEY_RELEASE, (uint8_t)(code + 8), 0, 0);
    return flush(t);
}

static void xtest_close(struct input *in)
{
    struct xtest *t = in->priv;
    xcb_keysym_t none[2] = { 0, 0 };
    int i;

    if (t->c == NULL)
        return;
    for (i = 0; i < t->n_spare; i++)
        if (t->spare_sym[i] != 0)
            xcb_change_keyboard_mapping(t->c, 1, t->spare[i], 2, none);
    /* A round trip, so the server has the restored mapping before we
     * disconnect. */
    free(xcb_get_input_focus_reply(t->c, xcb_get_input_focus(t->c), NULL));
    drop_map(t);
    xcb_disconnect(t->c);
    t->c = NULL;
}

static int xtest_open(struct input *in, const struct input_opts *opts)
{
    struct xtest *t = in->priv;
    const xcb_setup_t *setup;
    const xcb_query_extension_reply_t *q;
    xcb_screen_iterator_t sit;
    const char *display;
    int screen = 0, kc, col, empty, r;

    display = opts->display && opts->display[0] ? opts->display : NULL;
    t->c = xcb_connect(display, &screen);
    if (xcb_connection_has_error(t->c)) {
        hd_error(MOD, "cannot open X display %s",
                 display             ? display
                 : getenv("DISPLAY") ? getenv("DISPLAY")
                                     : "(DISPLAY unset)");
        xcb_disconnect(t->c);
        t->c = NULL;
        return -ENODEV;
    }
    setup = xcb_get_setup(t->c);
    sit = xcb_setup_roots_iterator(setup);
    for (; sit.rem && screen > 0; screen--)
        xcb_screen_next(&sit);
    r = -ENODEV;
    if (!sit.rem) {
        hd_error(MOD, "no such X screen");
        goto out;
    }
    t->root = sit.data->root;
    t->min_kc = setup->min_keycode;
    t->max_kc = setup->max_keycode;
    q = xcb_get_extension_data(t->c, &xcb_test_id);
    if (q == NULL || !q->present) {
        hd_error(MOD, "the X server lacks the XTEST extension");
        goto out;
    }
    if ((r = load_map(t)) != 0)
        goto out;
    /* Spares: keycodes bound to nothing, taken from the top, where
     * keyboards have no physical keys. */
    for (kc = t->max_kc; kc >= t->min_kc && t->n_spare < SPARE_MAX; kc--) {
        empty = 1;
        for (col = 0; col < t->per; col++)
            if (map_at(t, kc, col) != 0)
                empty = 0;
        if (empty)
            t->spare[t->n_spare++] = (uint8_t)kc;
    }
    if (t->n_spare == 0)
        hd_info(MOD, "no spare keycode: keysyms outside the keyboard "
                     "mapping cannot be typed");
    r = 0;
out:
    if (r != 0) {
        drop_map(t);
        xcb_disconnect(t->c);
        t->c = NULL;
    }
    return r;
}

const struct input_driver input_driver_xtest = {
    .name = "xtest",
    .description = "X11 XTEST via XCB",
    .priv_size = sizeof(struct xtest),
    .open = xtest_open,
    .close = xtest_close,
    .move = xtest_move,
    .button = xtest_button,
    .wheel = xtest_wheel,
    .key = xtest_key,
    .code = xtest_code,
    .keysym_to_keycode = xtest_keysym_to_keycode,
};

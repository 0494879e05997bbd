/*
 * Input on GNOME (mutter, Wayland) through mutter's RemoteDesktop API
 * (host/gnome/mutter.h): a session of its own, on its own bus connection,
 * with a screen-cast stream of the shared monitor that absolute pointer
 * positions are measured against (the pipewire capture's picture is that
 * monitor, so a pixel of the picture is a pointer position).
 *
 * Keys go as keysyms (NotifyKeyboardKeysym): mutter finds the keycode in
 * the desktop's own layout and presses Shift or AltGr for the level
 * itself, and releases exactly what the press did.  Key positions go as
 * evdev codes (NotifyKeyboardKeycode), buttons as evdev buttons, the
 * wheel as discrete steps.  Each call sends one message and asks for no
 * answer (no round trip per event); a session that mutter ended is seen
 * by the next call (-EIO).
 *
 * mutter adds the session's virtual keyboard to the seat only when it
 * first types: a client learns it has a keyboard (wl_seat capabilities,
 * then enter) after that first key went by, and never sees its press
 * (measured with mutter 43 headless: the first "H" of "Hello" was lost).
 * So open taps Shift once, which types nothing.
 *
 * Threads: the loop thread.
 */
#include <errno.h>
#include <stdint.h>

#include <dbus/dbus.h>

#include "host/gnome/mutter.h"
#include "host/input/input.h"
#include "log.h"

#define MOD "input-remotedesktop"

/* evdev codes */
#define BTN_LEFT      0x110
#define BTN_RIGHT     0x111
#define BTN_MIDDLE    0x112
#define BTN_SIDE      0x113
#define BTN_EXTRA     0x114
#define KEY_LEFTSHIFT 42

struct rd_in {
    struct mutter m;
    int said_gone;
};

/* The result of one Notify call: -EIO said once. */
static int sent(struct rd_in *r, int rc)
{
    if (rc != 0 && !r->said_gone) {
        hd_error(MOD,
                 "mutter ended the remote desktop session %s: input "
                 "is lost until the host restarts",
                 r->m.rd);
        r->said_gone = 1;
    }
    return rc != 0 ? -EIO : 0;
}

static int rd_open(struct input *in, const struct input_opts *opts)
{
    struct rd_in *r = in->priv;
    uint32_t shift = KEY_LEFTSHIFT;
    dbus_bool_t down = 1, up = 0;

    if (mutter_open(&r->m, MUTTER_INPUT, MUTTER_CURSOR_HIDDEN, MOD) != 0)
        return -ENODEV;
    /* the keyboard on the seat now, not at the first key (see above) */
    if (mutter_notify(&r->m, "NotifyKeyboardKeycode", DBUS_TYPE_UINT32, &shift,
                      DBUS_TYPE_BOOLEAN, &down, DBUS_TYPE_INVALID) != 0 ||
        mutter_notify(&r->m, "NotifyKeyboardKeycode", DBUS_TYPE_UINT32, &shift,
                      DBUS_TYPE_BOOLEAN, &up, DBUS_TYPE_INVALID) != 0) {
        hd_error(MOD, "mutter ended the remote desktop session %s at once",
                 r->m.rd);
        mutter_close(&r->m);
        return -ENODEV;
    }
    hd_info(MOD,
            "GNOME remote desktop: keyboard and pointer on mutter's monitor "
            "%dx%d at %d,%d",
            r->m.w, r->m.h, r->m.x, r->m.y);
    return 0;
}

static void rd_close(struct input *in)
{
    struct rd_in *r = in->priv;

    mutter_close(&r->m);
}

static int rd_move(struct input *in, int x, int y)
{
    struct rd_in *r = in->priv;
    const char *stream = r->m.stream;
    double dx, dy;

    if (r->m.w > 0 && x >= r->m.w)
        x = r->m.w - 1;
    if (r->m.h > 0 && y >= r->m.h)
        y = r->m.h - 1;
    dx = x;
    dy = y;
    return sent(r,
                mutter_notify(&r->m, "NotifyPointerMotionAbsolute",
                              DBUS_TYPE_STRING, &stream, DBUS_TYPE_DOUBLE, &dx,
                              DBUS_TYPE_DOUBLE, &dy, DBUS_TYPE_INVALID));
}

static int rd_button(struct input *in, enum input_button b, int down)
{
    static const int32_t codes[] = { 0,         BTN_LEFT, BTN_MIDDLE,
                                     BTN_RIGHT, BTN_SIDE, BTN_EXTRA };
    struct rd_in *r = in->priv;
    int32_t code = codes[b];
    dbus_bool_t st = down != 0;

    return sent(r, mutter_notify(&r->m, "NotifyPointerButton", DBUS_TYPE_INT32,
                                 &code, DBUS_TYPE_BOOLEAN, &st,
                                 DBUS_TYPE_INVALID));
}

static int axis(struct rd_in *r, uint32_t a, int32_t steps)
{
    if (steps == 0)
        return 0;
    return sent(r, mutter_notify(&r->m, "NotifyPointerAxisDiscrete",
                                 DBUS_TYPE_UINT32, &a, DBUS_TYPE_INT32, &steps,
                                 DBUS_TYPE_INVALID));
}

static int rd_wheel(struct input *in, int dx, int dy)
{
    struct rd_in *r = in->priv;
    int rc;

    /* ours: dy > 0 up, dx > 0 right; mutter's axis 0 (vertical): positive
     * is down, axis 1 (horizontal): positive is right */
    if ((rc = axis(r, 0, -dy)) != 0)
        return rc;
    return axis(r, 1, dx);
}

static int rd_key(struct input *in, uint32_t keysym, int down)
{
    struct rd_in *r = in->priv;
    dbus_bool_t st = down != 0;

    return sent(r, mutter_notify(&r->m, "NotifyKeyboardKeysym",
                                 DBUS_TYPE_UINT32, &keysym, DBUS_TYPE_BOOLEAN,
                                 &st, DBUS_TYPE_INVALID));
}

static int rd_code(struct input *in, unsigned code, int down)
{
    struct rd_in *r = in->priv;
    uint32_t c = code;
    dbus_bool_t st = down != 0;

    return sent(r,
                mutter_notify(&r->m, "NotifyKeyboardKeycode", DBUS_TYPE_UINT32,
                              &c, DBUS_TYPE_BOOLEAN, &st, DBUS_TYPE_INVALID));
}

const struct input_driver input_driver_remotedesktop = {
    .name = "remotedesktop",
    .description = "GNOME (mutter) on Wayland: its RemoteDesktop API",
    .priv_size = sizeof(struct rd_in),
    .open = rd_open,
    .close = rd_close,
    .move = rd_move,
    .button = rd_button,
    .wheel = rd_wheel,
    .key = rd_key,
    .code = rd_code,
};

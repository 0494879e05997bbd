/*
 * Input on a wlroots compositor: one virtual keyboard
 * (zwp_virtual_keyboard_v1, see vkbd-protocol.h) and one virtual pointer
 * (zwlr_virtual_pointer_v1) on the first seat, for the life of the input.
 *
 * Keyboard: the keymap is a real XKB keymap, compiled from the host
 * user's layout (XKB_DEFAULT_RULES/MODEL/LAYOUT/VARIANT/OPTIONS, else
 * xkbcommon's defaults: us), and uploaded once.  A keysym is typed with
 * the first keycode that has it at level 1, or at level 2 with Shift
 * pressed around it (as the xtest backend does); keysyms the layout lacks
 * are refused (-ENOENT).  The compositor derives no modifiers from keys:
 * an xkb_state follows every key we press and its serialized modifiers
 * are sent after each change.
 *
 * Pointer: absolute motion in the capture's pixels (the outputs laid out
 * as host/wayland/outputs.h says), sent as a fraction of that picture, so
 * it is exact at any scale.
 *
 * Threads: the loop thread; each call sends its requests and flushes,
 * reading whatever the compositor sent meanwhile without waiting.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <wayland-client.h>
#include <xkbcommon/xkbcommon.h>

#include "host/input/input.h"
#include "host/input/vkbd-protocol.h"
#include "host/wayland/outputs.h"
#include "log.h"
#include "wlr-virtual-pointer-unstable-v1.h"

#define MOD "input-wlr"

/* evdev codes */
#define BTN_LEFT   0x110
#define BTN_RIGHT  0x111
#define BTN_MIDDLE 0x112
#define BTN_SIDE   0x113
#define BTN_EXTRA  0x114

struct wlr_key {
    uint32_t keysym;
    xkb_keycode_t kc;
    int added_shift; /* Shift was pressed for it and is released with it */
};

struct wlr_in {
    struct wl_display *d;
    struct wl_registry *reg;
    struct wl_seat *seat;
    struct wlout_set outs;
    struct zwp_virtual_keyboard_manager_v1 *kmgr;
    struct zwlr_virtual_pointer_manager_v1 *pmgr;
    struct zwp_virtual_keyboard_v1 *kbd;
    struct zwlr_virtual_pointer_v1 *ptr;
    uint32_t pmgr_version;
    /* the pointer's output (NULL: the whole layout) and the picture's
     * size it maps onto */
    struct wl_output *ptr_output;
    int pic_w, pic_h;

    struct xkb_context *ctx;
    struct xkb_keymap *keymap;
    struct xkb_state *state;
    xkb_keycode_t shift_kc;
    struct wlr_key down[INPUT_MAX_HELD];
    int n_down;
};

static void reg_global(void *data, struct wl_registry *reg, uint32_t name,
                       const char *iface, uint32_t version)
{
    struct wlr_in *wi = data;

    if (wlout_global(&wi->outs, reg, name, iface, version))
        return;
    if (strcmp(iface, wl_seat_interface.name) == 0 && wi->seat == NULL)
        wi->seat = wl_registry_bind(reg, name, &wl_seat_interface, 1);
    else if (strcmp(iface, zwp_virtual_keyboard_manager_v1_interface.name) == 0)
        wi->kmgr = wl_registry_bind(
            reg, name, &zwp_virtual_keyboard_manager_v1_interface, 1);
    else if (strcmp(iface, zwlr_virtual_pointer_manager_v1_interface.name) ==
             0) {
        wi->pmgr_version = version < 2 ? version : 2;
        wi->pmgr = wl_registry_bind(reg, name,
                                    &zwlr_virtual_pointer_manager_v1_interface,
                                    wi->pmgr_version);
    }
}

static void reg_remove(void *data, struct wl_registry *reg, uint32_t name)
{
    struct wlr_in *wi = data;

    wlout_remove(&wi->outs, name);
}

static const struct wl_registry_listener reg_listener = { reg_global,
                                                          reg_remove };

static uint32_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Send what we queued and read what the compositor sent, never waiting.
 * 0 or -EIO. */
static int pump(struct wlr_in *wi)
{
    struct pollfd p = { .fd = wl_display_get_fd(wi->d), .events = POLLIN };

    while (wl_display_prepare_read(wi->d) != 0)
        if (wl_display_dispatch_pending(wi->d) < 0)
            goto lost;
    if (wl_display_flush(wi->d) < 0 && errno != EAGAIN) {
        wl_display_cancel_read(wi->d);
        goto lost;
    }
    if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
        if (wl_display_read_events(wi->d) < 0)
            goto lost;
    } else {
        wl_display_cancel_read(wi->d);
    }
    if (wl_display_dispatch_pending(wi->d) < 0)
        goto lost;
    return 0;
lost:
    hd_error(MOD, "lost the Wayland connection");
    return -EIO;
}

/* Upload the keymap as text through a memfd.  0 or a negative errno. */
static int upload_keymap(struct wlr_in *wi)
{
    char *text =
        xkb_keymap_get_as_string(wi->keymap, XKB_KEYMAP_FORMAT_TEXT_V1);
    size_t n;
    void *p;
    int fd = -1, r = 0;

    if (text == NULL)
        return -ENOMEM;
    n = strlen(text) + 1;
    if ((fd = memfd_create("homedesk-keymap", MFD_CLOEXEC)) < 0 ||
        ftruncate(fd, (off_t)n) != 0) {
        r = -errno;
        goto out;
    }
    if ((p = mmap(NULL, n, PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        r = -errno;
        goto out;
    }
    memcpy(p, text, n);
    munmap(p, n);
    vkbd_keymap(wi->kbd, WL_KEYBOARD_KEYMAP_FORMAT_XKB_V1, fd, (uint32_t)n);
out:
    if (fd >= 0)
        close(fd);
    free(text);
    return r;
}

/* The keycode typing keysym at level 1 (*shift 0) or 2 (*shift 1) of the
 * first layout, or 0. */
static xkb_keycode_t find_key(struct wlr_in *wi, uint32_t keysym, int *shift)
{
    xkb_keycode_t min = xkb_keymap_min_keycode(wi->keymap);
    xkb_keycode_t max = xkb_keymap_max_keycode(wi->keymap);
    const xkb_keysym_t *syms;

    for (int level = 0; level < 2; level++)
        for (xkb_keycode_t kc = min; kc <= max; kc++) {
            int n = xkb_keymap_key_get_syms_by_level(
                wi->keymap, kc, 0, (xkb_level_index_t)level, &syms);
            if (n == 1 && syms[0] == keysym) {
                *shift = level;
                return kc;
            }
        }
    return 0;
}

/* A key down or up, and the modifiers that follow from it. */
static void send_key(struct wlr_in *wi, xkb_keycode_t kc, int down)
{
    vkbd_key(wi->kbd, now_ms(), kc - 8, down ? 1 : 0);
    if (xkb_state_update_key(wi->state, kc, down ? XKB_KEY_DOWN : XKB_KEY_UP) !=
        0)
        vkbd_modifiers(
            wi->kbd,
            xkb_state_serialize_mods(wi->state, XKB_STATE_MODS_DEPRESSED),
            xkb_state_serialize_mods(wi->state, XKB_STATE_MODS_LATCHED),
            xkb_state_serialize_mods(wi->state, XKB_STATE_MODS_LOCKED),
            xkb_state_serialize_layout(wi->state, XKB_STATE_LAYOUT_EFFECTIVE));
}

static void wlr_close(struct input *in)
{
    struct wlr_in *wi = in->priv;

    if (wi->kbd != NULL)
        vkbd_destroy(wi->kbd);
    if (wi->ptr != NULL)
        zwlr_virtual_pointer_v1_destroy(wi->ptr);
    if (wi->d != NULL)
        wl_display_roundtrip(wi->d); /* the compositor has them gone */
    if (wi->pmgr != NULL)
        zwlr_virtual_pointer_manager_v1_destroy(wi->pmgr);
    if (wi->kmgr != NULL)
        wl_proxy_destroy((struct wl_proxy *)wi->kmgr);
    wlout_release(&wi->outs);
    if (wi->seat != NULL)
        wl_seat_destroy(wi->seat);
    if (wi->reg != NULL)
        wl_registry_destroy(wi->reg);
    if (wi->d != NULL)
        wl_display_disconnect(wi->d);
    xkb_state_unref(wi->state);
    xkb_keymap_unref(wi->keymap);
    xkb_context_unref(wi->ctx);
    memset(wi, 0, sizeof(*wi));
}

/*
 * The virtual pointer for the picture the capture makes of the outputs
 * (host/wayland/outputs.h): over the whole layout when the picture is
 * all of them (absolute motion is a fraction of the layout's box, which
 * the picture is at one scale), else bound to the one output shared
 * (virtual pointer version 2).  Made again when that changes.  0, or -EIO.
 */
static int place_pointer(struct wlr_in *wi)
{
    struct wlout_place pl[WLOUT_MAX];
    struct wl_output *on = NULL;
    int n = wlout_layout(&wi->outs, pl, &wi->pic_w, &wi->pic_h, 1);

    wi->outs.changed = 0;
    if (n == 1 && wi->outs.n > 1)
        on = wi->outs.out[pl[0].index].o;
    if (wi->ptr != NULL && on == wi->ptr_output)
        return 0;
    if (wi->ptr != NULL)
        zwlr_virtual_pointer_v1_destroy(wi->ptr);
    if (on != NULL && wi->pmgr_version < 2) {
        hd_warn(MOD, "the compositor cannot bind a virtual pointer to one "
                     "output (virtual pointer version 1): clicks may land on "
                     "another output");
        on = NULL;
    }
    wi->ptr_output = on;
    wi->ptr =
        on != NULL
            ? zwlr_virtual_pointer_manager_v1_create_virtual_pointer_with_output(
                  wi->pmgr, wi->seat, on)
            : zwlr_virtual_pointer_manager_v1_create_virtual_pointer(wi->pmgr,
                                                                     wi->seat);
    return wi->ptr != NULL ? 0 : -EIO;
}

static int wlr_open(struct input *in, const struct input_opts *opts)
{
    struct wlr_in *wi = in->priv;
    const char *name = getenv("WAYLAND_DISPLAY");
    int shift;

    if (name == NULL || name[0] == '\0') {
        hd_debug(MOD, "WAYLAND_DISPLAY is not set");
        return -ENODEV;
    }
    if ((wi->d = wl_display_connect(NULL)) == NULL) {
        hd_error(MOD, "cannot connect to the Wayland compositor on %s", name);
        return -ENODEV;
    }
    wi->reg = wl_display_get_registry(wi->d);
    wl_registry_add_listener(wi->reg, &reg_listener, wi);
    /* the globals, then the outputs' events, then their xdg-outputs' */
    for (int i = 0; i < 3; i++)
        if (wl_display_roundtrip(wi->d) < 0)
            goto fail;
    if (wi->seat == NULL || wi->kmgr == NULL || wi->pmgr == NULL ||
        wi->outs.n == 0) {
        hd_error(MOD,
                 "the Wayland compositor on %s offers no %s: not a wlroots "
                 "desktop (GNOME and KDE need the portal, not done yet)",
                 name,
                 wi->kmgr == NULL   ? "virtual keyboard (zwp_virtual_"
                                      "keyboard_manager_v1)"
                 : wi->pmgr == NULL ? "virtual pointer (zwlr_virtual_"
                                      "pointer_manager_v1)"
                 : wi->seat == NULL ? "seat"
                                    : "output");
        goto fail;
    }
    wi->ctx = xkb_context_new(XKB_CONTEXT_NO_FLAGS);
    if (wi->ctx == NULL ||
        (wi->keymap = xkb_keymap_new_from_names(
             wi->ctx, NULL, XKB_KEYMAP_COMPILE_NO_FLAGS)) == NULL ||
        (wi->state = xkb_state_new(wi->keymap)) == NULL) {
        hd_error(MOD, "cannot compile the XKB keymap (XKB_DEFAULT_LAYOUT=%s)",
                 getenv("XKB_DEFAULT_LAYOUT") ? getenv("XKB_DEFAULT_LAYOUT")
                                              : "");
        goto fail;
    }
    wi->shift_kc = find_key(wi, XKB_KEY_Shift_L, &shift);
    wi->kbd = vkbd_create(wi->kmgr, wi->seat);
    if (wi->kbd == NULL || place_pointer(wi) != 0 || upload_keymap(wi) != 0)
        goto fail;
    vkbd_modifiers(wi->kbd, 0, 0, 0, 0);
    if (wl_display_roundtrip(wi->d) < 0)
        goto fail;
    hd_info(MOD,
            "Wayland display %s: virtual keyboard (layout %s), virtual "
            "pointer on a %dx%d picture",
            name, xkb_keymap_layout_get_name(wi->keymap, 0), wi->pic_w,
            wi->pic_h);
    return 0;
fail:
    if (wi->d != NULL && wl_display_get_error(wi->d) != 0)
        hd_error(MOD, "the Wayland compositor on %s refused us", name);
    wlr_close(in);
    return -ENODEV;
}

static int wlr_move(struct input *in, int x, int y)
{
    struct wlr_in *wi = in->priv;

    if (wi->outs.changed && place_pointer(wi) != 0)
        return -EIO;
    if (wi->pic_w <= 0 || wi->pic_h <= 0)
        return 0;
    x = x < 0 ? 0 : x < wi->pic_w ? x : wi->pic_w - 1;
    y = y < 0 ? 0 : y < wi->pic_h ? y : wi->pic_h - 1;
    zwlr_virtual_pointer_v1_motion_absolute(wi->ptr, now_ms(), (uint32_t)x,
                                            (uint32_t)y, (uint32_t)wi->pic_w,
                                            (uint32_t)wi->pic_h);
    zwlr_virtual_pointer_v1_frame(wi->ptr);
    return pump(wi);
}

static int wlr_button(struct input *in, enum input_button b, int down)
{
    static const uint32_t codes[] = { 0,         BTN_LEFT, BTN_MIDDLE,
                                      BTN_RIGHT, BTN_SIDE, BTN_EXTRA };
    struct wlr_in *wi = in->priv;

    zwlr_virtual_pointer_v1_button(wi->ptr, now_ms(), codes[b],
                                   down ? WL_POINTER_BUTTON_STATE_PRESSED
                                        : WL_POINTER_BUTTON_STATE_RELEASED);
    zwlr_virtual_pointer_v1_frame(wi->ptr);
    return pump(wi);
}

static void axis(struct wlr_in *wi, uint32_t a, int steps)
{
    if (steps == 0)
        return;
    zwlr_virtual_pointer_v1_axis_discrete(wi->ptr, now_ms(), a,
                                          wl_fixed_from_int(15 * steps), steps);
}

static int wlr_wheel(struct input *in, int dx, int dy)
{
    struct wlr_in *wi = in->priv;

    zwlr_virtual_pointer_v1_axis_source(wi->ptr, WL_POINTER_AXIS_SOURCE_WHEEL);
    /* ours: dy > 0 up, dx > 0 right; Wayland: positive is down / right */
    axis(wi, WL_POINTER_AXIS_VERTICAL_SCROLL, -dy);
    axis(wi, WL_POINTER_AXIS_HORIZONTAL_SCROLL, dx);
    zwlr_virtual_pointer_v1_frame(wi->ptr);
    return pump(wi);
}

static int wlr_key(struct input *in, uint32_t keysym, int down)
{
    struct wlr_in *wi = in->priv;
    struct wlr_key k = { .keysym = keysym };
    int i, shift = 0;

    for (i = 0; i < wi->n_down && wi->down[i].keysym != keysym; i++)
        ;
    if (!down) {
        if (i == wi->n_down)
            return 0;
        k = wi->down[i];
        wi->down[i] = wi->down[--wi->n_down];
        send_key(wi, k.kc, 0);
        if (k.added_shift)
            send_key(wi, wi->shift_kc, 0);
        return pump(wi);
    }
    if (i < wi->n_down) { /* auto-repeat: the same key again */
        send_key(wi, wi->down[i].kc, 1);
        return pump(wi);
    }
    if ((k.kc = find_key(wi, keysym, &shift)) == 0 ||
        (shift && wi->shift_kc == 0))
        return -ENOENT;
    if (wi->n_down == INPUT_MAX_HELD)
        return -ENOSPC;
    if (shift &&
        !(xkb_state_mod_name_is_active(wi->state, XKB_MOD_NAME_SHIFT,
                                       XKB_STATE_MODS_DEPRESSED) > 0)) {
        send_key(wi, wi->shift_kc, 1);
        k.added_shift = 1;
    }
    send_key(wi, k.kc, 1);
    wi->down[wi->n_down++] = k;
    return pump(wi);
}

static int wlr_code(struct input *in, unsigned code, int down)
{
    struct wlr_in *wi = in->priv;

    send_key(wi, code + 8, down);
    return pump(wi);
}

const struct input_driver input_driver_wlr = {
    .name = "wlr",
    .description = "wlroots Wayland compositors: virtual keyboard and pointer",
    .priv_size = sizeof(struct wlr_in),
    .open = wlr_open,
    .close = wlr_close,
    .move = wlr_move,
    .button = wlr_button,
    .wheel = wlr_wheel,
    .key = wlr_key,
    .code = wlr_code,
};

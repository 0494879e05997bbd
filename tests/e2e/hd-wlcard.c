/*
 * hd-wlcard: a Wayland client for the end-to-end tests of the host on a
 * wlroots compositor.  It shows the test card (tests/e2e/card.h) in an
 * xdg_shell window, at whatever size the compositor gives it (sway tiles
 * it over the whole output), and records the input it receives, in the
 * format of hd-testcard (X11):
 *
 *   "key keysym=0x61 keycode=38 state=0x0"   (keysym from the keymap the
 *   compositor sent and the modifiers it reported; keycode in X numbering)
 *   "button 1 x=EX y=EY"                     (surface coordinates)
 *
 * one line per key or button press, flushed at once; each printable key
 * also adds a black block to the strip at the bottom.  "ready" goes to
 * stdout once the compositor has shown the first picture (its frame
 * callback).  Keyboard and pointer may appear later (a virtual device made
 * by the host): seat capabilities are followed.
 *
 *   hd-wlcard RECORD [--fullscreen] [--cursor]
 *                         (WAYLAND_DISPLAY, XDG_RUNTIME_DIR from the caller)
 *
 * --fullscreen asks for the whole output (compositors that do not tile,
 * such as mutter, would otherwise show it at 640x480 where they like);
 * --cursor sets card_cursor() as the pointer over the window (else the
 * compositor decides: mutter shows none).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <wayland-client.h>
#include <xkbcommon/xkbcommon.h>

#include "tests/e2e/card.h"
#include "xdg-shell.h"

#define ECHO_H 20

static struct wl_compositor *comp;
static struct wl_shm *shm;
static struct xdg_wm_base *wm;
static struct wl_seat *seat;
static struct wl_keyboard *kbd;
static struct wl_pointer *ptr;
static struct wl_surface *surf;
static struct xdg_surface *xsurf;
static struct xdg_toplevel *top;
static struct wl_buffer *buf;
static struct wl_surface *cursor_surf; /* --cursor: its image */
static int want_w = 640, want_h = 480, buf_w, buf_h, configured, shown;
static uint32_t *pixels; /* the buffer's, mapped */
static int n_echo;
static double px_x, px_y;
static struct xkb_context *ctx;
static struct xkb_keymap *keymap;
static struct xkb_state *state;
static FILE *rec;

/* ---- the picture ----------------------------------------------------- */

static void frame_done(void *data, struct wl_callback *cb, uint32_t t)
{
    wl_callback_destroy(cb);
    if (!shown) {
        shown = 1;
        printf("ready\n");
        fflush(stdout);
    }
}

static const struct wl_callback_listener frame_listener = { frame_done };

/* A w x h shm buffer of format, its pixels mapped in *px.  NULL on
 * failure. */
static struct wl_buffer *shm_buffer(int w, int h, uint32_t format,
                                    uint32_t **px)
{
    size_t size = (size_t)w * h * 4;
    struct wl_shm_pool *pool;
    struct wl_buffer *b;
    void *p;
    int fd;

    if ((fd = memfd_create("hd-wlcard", MFD_CLOEXEC)) < 0)
        return NULL;
    if (ftruncate(fd, (off_t)size) != 0 ||
        (p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
            MAP_FAILED) {
        close(fd);
        return NULL;
    }
    pool = wl_shm_create_pool(shm, fd, (int32_t)size);
    b = wl_shm_pool_create_buffer(pool, 0, w, h, w * 4, format);
    wl_shm_pool_destroy(pool);
    close(fd);
    *px = p;
    return b;
}

/* Paint the card at the configured size into a new buffer and show it. */
static int draw(void)
{
    struct wl_buffer *b;
    uint32_t *px;

    if (buf != NULL && buf_w == want_w && buf_h == want_h) {
        wl_surface_commit(surf);
        return 0;
    }
    if ((b = shm_buffer(want_w, want_h, WL_SHM_FORMAT_XRGB8888, &px)) == NULL)
        return -1;
    card_paint(px, want_w, want_h, ECHO_H);
    if (pixels != NULL)
        munmap(pixels, (size_t)buf_w * buf_h * 4);
    pixels = px;
    n_echo = 0;
    if (buf != NULL)
        wl_buffer_destroy(buf);
    buf = b;
    buf_w = want_w;
    buf_h = want_h;
    wl_surface_attach(surf, buf, 0, 0);
    wl_surface_damage_buffer(surf, 0, 0, want_w, want_h);
    wl_callback_add_listener(wl_surface_frame(surf), &frame_listener, NULL);
    wl_surface_commit(surf);
    return 0;
}

static void wm_ping(void *data, struct xdg_wm_base *b, uint32_t serial)
{
    xdg_wm_base_pong(b, serial);
}

static const struct xdg_wm_base_listener wm_listener = { wm_ping };

static void xsurf_configure(void *data, struct xdg_surface *s, uint32_t serial)
{
    xdg_surface_ack_configure(s, serial);
    configured = 1;
    if (draw() != 0) {
        fprintf(stderr, "hd-wlcard: cannot make a %dx%d buffer\n", want_w,
                want_h);
        exit(1);
    }
}

static const struct xdg_surface_listener xsurf_listener = { xsurf_configure };

static void top_configure(void *data, struct xdg_toplevel *t, int32_t w,
                          int32_t h, struct wl_array *states)
{
    if (w > 0 && h > 0) {
        want_w = w;
        want_h = h;
    }
}

static void top_close(void *data, struct xdg_toplevel *t)
{
    exit(0);
}

static void top_bounds(void *data, struct xdg_toplevel *t, int32_t w, int32_t h)
{
}

static void top_caps(void *data, struct xdg_toplevel *t, struct wl_array *c)
{
}

static const struct xdg_toplevel_listener top_listener = {
    top_configure,
    top_close,
    top_bounds,
    top_caps,
};

/* ---- keyboard --------------------------------------------------------- */

static void kb_keymap(void *data, struct wl_keyboard *k, uint32_t format,
                      int fd, uint32_t size)
{
    char *s = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);

    close(fd);
    if (s == MAP_FAILED)
        return;
    xkb_state_unref(state);
    xkb_keymap_unref(keymap);
    keymap = xkb_keymap_new_from_string(ctx, s, XKB_KEYMAP_FORMAT_TEXT_V1,
                                        XKB_KEYMAP_COMPILE_NO_FLAGS);
    munmap(s, size);
    state = keymap != NULL ? xkb_state_new(keymap) : NULL;
}

static void kb_enter(void *data, struct wl_keyboard *k, uint32_t serial,
                     struct wl_surface *s, struct wl_array *keys)
{
}

static void kb_leave(void *data, struct wl_keyboard *k, uint32_t serial,
                     struct wl_surface *s)
{
}

/*
 * Each printable key typed: one more 8x8 black block in the echo strip
 * (no font here; enough to see typing arrive on screen), committed with
 * only that damage.
 */
static void echo(void)
{
    int x0 = 4 + (n_echo % ((buf_w - 8) / 10)) * 10, y0 = buf_h - ECHO_H + 6;

    if (pixels == NULL || buf_w < 20)
        return;
    for (int y = y0; y < y0 + 8; y++)
        for (int x = x0; x < x0 + 8; x++)
            pixels[(size_t)y * buf_w + x] = card_rgb(0, 0, 0);
    n_echo++;
    wl_surface_attach(surf, buf, 0, 0);
    wl_surface_damage_buffer(surf, x0, y0, 8, 8);
    wl_surface_commit(surf);
}

static void kb_key(void *data, struct wl_keyboard *k, uint32_t serial,
                   uint32_t time, uint32_t key, uint32_t st)
{
    xkb_keysym_t sym;

    if (st != WL_KEYBOARD_KEY_STATE_PRESSED || state == NULL)
        return;
    sym = xkb_state_key_get_one_sym(state, key + 8);
    if (sym >= 0x20 && sym < 0x7f)
        echo();
    fprintf(rec, "key keysym=0x%x keycode=%u state=0x%x\n", sym, key + 8,
            xkb_state_serialize_mods(state, XKB_STATE_MODS_EFFECTIVE));
    fflush(rec);
}

static void kb_modifiers(void *data, struct wl_keyboard *k, uint32_t serial,
                         uint32_t dep, uint32_t lat, uint32_t lock,
                         uint32_t group)
{
    if (state != NULL)
        xkb_state_update_mask(state, dep, lat, lock, 0, 0, group);
}

static void kb_repeat(void *data, struct wl_keyboard *k, int32_t rate,
                      int32_t delay)
{
}

static const struct wl_keyboard_listener kb_listener = {
    .keymap = kb_keymap,
    .enter = kb_enter,
    .leave = kb_leave,
    .key = kb_key,
    .modifiers = kb_modifiers,
    .repeat_info = kb_repeat,
};

/* ---- pointer ------------------------------------------------------------ */

static void pt_enter(void *data, struct wl_pointer *p, uint32_t serial,
                     struct wl_surface *s, wl_fixed_t x, wl_fixed_t y)
{
    px_x = wl_fixed_to_double(x);
    px_y = wl_fixed_to_double(y);
    if (cursor_surf != NULL)
        wl_pointer_set_cursor(p, serial, cursor_surf, CARD_CURSOR_HX,
                              CARD_CURSOR_HY);
}

static void pt_leave(void *data, struct wl_pointer *p, uint32_t serial,
                     struct wl_surface *s)
{
}

static void pt_motion(void *data, struct wl_pointer *p, uint32_t time,
                      wl_fixed_t x, wl_fixed_t y)
{
    px_x = wl_fixed_to_double(x);
    px_y = wl_fixed_to_double(y);
}

static void pt_button(void *data, struct wl_pointer *p, uint32_t serial,
                      uint32_t time, uint32_t button, uint32_t st)
{
    /* evdev BTN_LEFT, BTN_RIGHT, BTN_MIDDLE as X buttons 1, 3, 2 */
    int n = button == 0x110 ? 1 : button == 0x111 ? 3 : button == 0x112 ? 2 : 0;

    if (st != WL_POINTER_BUTTON_STATE_PRESSED)
        return;
    fprintf(rec, "button %d x=%d y=%d\n", n, (int)px_x, (int)px_y);
    fflush(rec);
}

static void pt_axis(void *data, struct wl_pointer *p, uint32_t time,
                    uint32_t axis, wl_fixed_t v)
{
}

/* (the seat is bound at version 1: no frame or axis detail events) */
static const struct wl_pointer_listener pt_listener = {
    .enter = pt_enter,
    .leave = pt_leave,
    .motion = pt_motion,
    .button = pt_button,
    .axis = pt_axis,
};

static void seat_caps(void *data, struct wl_seat *s, uint32_t caps)
{
    if ((caps & WL_SEAT_CAPABILITY_KEYBOARD) && kbd == NULL) {
        kbd = wl_seat_get_keyboard(s);
        wl_keyboard_add_listener(kbd, &kb_listener, NULL);
    } else if (!(caps & WL_SEAT_CAPABILITY_KEYBOARD) && kbd != NULL) {
        wl_keyboard_destroy(kbd);
        kbd = NULL;
    }
    if ((caps & WL_SEAT_CAPABILITY_POINTER) && ptr == NULL) {
        ptr = wl_seat_get_pointer(s);
        wl_pointer_add_listener(ptr, &pt_listener, NULL);
    } else if (!(caps & WL_SEAT_CAPABILITY_POINTER) && ptr != NULL) {
        wl_pointer_destroy(ptr);
        ptr = NULL;
    }
}

static void seat_name(void *data, struct wl_seat *s, const char *name)
{
}

static const struct wl_seat_listener seat_listener = {
    .capabilities = seat_caps,
    .name = seat_name,
};

static void reg_global(void *data, struct wl_registry *r, uint32_t name,
                       const char *iface, uint32_t version)
{
    if (strcmp(iface, wl_compositor_interface.name) == 0)
        comp = wl_registry_bind(r, name, &wl_compositor_interface, 4);
    else if (strcmp(iface, wl_shm_interface.name) == 0)
        shm = wl_registry_bind(r, name, &wl_shm_interface, 1);
    else if (strcmp(iface, xdg_wm_base_interface.name) == 0)
        wm = wl_registry_bind(r, name, &xdg_wm_base_interface, 1);
    else if (strcmp(iface, wl_seat_interface.name) == 0 && seat == NULL) {
        seat = wl_registry_bind(r, name, &wl_seat_interface, 1);
        wl_seat_add_listener(seat, &seat_listener, NULL);
    }
}

static void reg_remove(void *data, struct wl_registry *r, uint32_t name)
{
}

static const struct wl_registry_listener reg_listener = { reg_global,
                                                          reg_remove };

/* The pointer's image (--cursor) in a surface of its own.  0 or -1. */
static int make_cursor(void)
{
    struct wl_buffer *b;
    uint32_t *px;

    b = shm_buffer(CARD_CURSOR_W, CARD_CURSOR_H, WL_SHM_FORMAT_ARGB8888, &px);
    if (b == NULL)
        return -1;
    card_cursor(px);
    cursor_surf = wl_compositor_create_surface(comp);
    wl_surface_attach(cursor_surf, b, 0, 0);
    wl_surface_damage_buffer(cursor_surf, 0, 0, CARD_CURSOR_W, CARD_CURSOR_H);
    wl_surface_commit(cursor_surf);
    return 0;
}

int main(int argc, char **argv)
{
    struct wl_display *d;
    int fullscreen = 0, cursor = 0;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--fullscreen") == 0)
            fullscreen = 1;
        else if (strcmp(argv[i], "--cursor") == 0)
            cursor = 1;
        else
            argc = 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: hd-wlcard RECORD [--fullscreen] [--cursor]\n");
        return 2;
    }
    if ((rec = fopen(argv[1], "a")) == NULL) {
        fprintf(stderr, "hd-wlcard: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    if ((d = wl_display_connect(NULL)) == NULL) {
        fprintf(stderr, "hd-wlcard: no Wayland display\n");
        return 1;
    }
    ctx = xkb_context_new(XKB_CONTEXT_NO_FLAGS);
    wl_registry_add_listener(wl_display_get_registry(d), &reg_listener, NULL);
    wl_display_roundtrip(d);
    if (comp == NULL || shm == NULL || wm == NULL || seat == NULL) {
        fprintf(stderr, "hd-wlcard: the compositor lacks wl_compositor, "
                        "wl_shm, xdg_wm_base or a seat\n");
        return 1;
    }
    xdg_wm_base_add_listener(wm, &wm_listener, NULL);
    surf = wl_compositor_create_surface(comp);
    xsurf = xdg_wm_base_get_xdg_surface(wm, surf);
    xdg_surface_add_listener(xsurf, &xsurf_listener, NULL);
    top = xdg_surface_get_toplevel(xsurf);
    xdg_toplevel_add_listener(top, &top_listener, NULL);
    xdg_toplevel_set_title(top, "hd-wlcard");
    xdg_toplevel_set_app_id(top, "hd-wlcard");
    if (fullscreen)
        xdg_toplevel_set_fullscreen(top, NULL);
    if (cursor && make_cursor() != 0) {
        fprintf(stderr, "hd-wlcard: cannot make the pointer's image\n");
        return 1;
    }
    wl_surface_commit(surf);
    while (wl_display_dispatch(d) >= 0)
        ;
    fprintf(stderr, "hd-wlcard: the compositor went away\n");
    return 1;
}

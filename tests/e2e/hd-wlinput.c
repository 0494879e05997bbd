/*
 * hd-wlinput: a keyboard and a mouse for a headless Wayland compositor
 * (sway), for the end-to-end tests.  It creates one virtual keyboard
 * (zwp_virtual_keyboard_v1) and one virtual pointer
 * (zwlr_virtual_pointer_v1) on the seat and keeps them for its whole life,
 * then follows commands, one per line, from the FIFO it is given:
 *
 *   type TEXT      each character pressed and released
 *   key NAME 1|0   an XKB keysym name (Control_L, Alt_L, Shift_L, g)
 *                  down or up; the modifier masks are sent with it
 *   move X Y W H   pointer to X,Y of a layout W x H (logical pixels)
 *   click          left button down and up
 *
 * and prints "done N" (flushed) after the compositor has taken command N
 * (a round trip), "ready" once the devices exist.
 *
 * The keymap is made like wtype's: one keycode per keysym, so an upper
 * case letter is its own key, typed without Shift, and the layout has no
 * name (SDL takes such a keyboard for a virtual one).  That is the keymap
 * that made the viewer type lower case before it used the text SDL
 * computes from the keyboard's state.  It is uploaded once: devices come
 * and go in no other way during a test.
 *
 *   hd-wlinput FIFO      (WAYLAND_DISPLAY, XDG_RUNTIME_DIR from the caller)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <wayland-client.h>
#include <xkbcommon/xkbcommon.h>

#include "host/input/vkbd-protocol.h"
#include "wlr-virtual-pointer-unstable-v1.h"

#define BTN_LEFT 0x110
#define NKEYS    100 /* keysyms in the keymap */

static struct wl_seat *seat;
static struct zwp_virtual_keyboard_manager_v1 *kmgr;
static struct zwlr_virtual_pointer_manager_v1 *pmgr;
static struct zwp_virtual_keyboard_v1 *kbd;
static struct zwlr_virtual_pointer_v1 *ptr;
static xkb_keysym_t syms[NKEYS];
static int nsyms;
static uint32_t mods; /* depressed: Shift 1, Control 4, Mod1 8 */

static void reg_global(void *data, struct wl_registry *r, uint32_t name,
                       const char *iface, uint32_t version)
{
    if (strcmp(iface, wl_seat_interface.name) == 0 && seat == NULL)
        seat = wl_registry_bind(r, name, &wl_seat_interface, 1);
    else if (strcmp(iface, zwp_virtual_keyboard_manager_v1_interface.name) == 0)
        kmgr = wl_registry_bind(r, name,
                                &zwp_virtual_keyboard_manager_v1_interface, 1);
    else if (strcmp(iface, zwlr_virtual_pointer_manager_v1_interface.name) == 0)
        pmgr = wl_registry_bind(r, name,
                                &zwlr_virtual_pointer_manager_v1_interface, 1);
}

static void reg_remove(void *data, struct wl_registry *r, uint32_t name)
{
}

static const struct wl_registry_listener reg_listener = { reg_global,
                                                          reg_remove };

static uint32_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void add_sym(xkb_keysym_t s)
{
    if (nsyms < NKEYS)
        syms[nsyms++] = s;
}

/* The keymap text: keycode 9 + i types syms[i]. */
static char *keymap_text(void)
{
    size_t cap = 16384, n = 0;
    char *t = malloc(cap), name[64];
    int i;

    if (t == NULL)
        return NULL;
    n += snprintf(t + n, cap - n,
                  "xkb_keymap {\nxkb_keycodes \"(unnamed)\" {\n"
                  "minimum = 8;\nmaximum = %d;\n",
                  9 + nsyms);
    for (i = 0; i < nsyms; i++)
        n += snprintf(t + n, cap - n, "<K%d> = %d;\n", i, 9 + i);
    n += snprintf(t + n, cap - n,
                  "};\nxkb_types \"(unnamed)\" { include \"complete\" };\n"
                  "xkb_compatibility \"(unnamed)\" { include \"complete\" "
                  "};\nxkb_symbols \"(unnamed)\" {\n");
    for (i = 0; i < nsyms; i++) {
        xkb_keysym_get_name(syms[i], name, sizeof(name));
        n += snprintf(t + n, cap - n, "key <K%d> {[ %s ]};\n", i, name);
    }
    for (i = 0; i < nsyms; i++) {
        const char *mm = syms[i] == XKB_KEY_Shift_L     ? "Shift"
                         : syms[i] == XKB_KEY_Control_L ? "Control"
                         : syms[i] == XKB_KEY_Alt_L     ? "Mod1"
                                                        : NULL;
        if (mm != NULL)
            n +=
                snprintf(t + n, cap - n, "modifier_map %s { <K%d> };\n", mm, i);
    }
    n += snprintf(t + n, cap - n, "};\n};\n");
    return t;
}

static int upload_keymap(void)
{
    char *t = keymap_text();
    size_t n;
    int fd;
    void *p;

    if (t == NULL)
        return -1;
    n = strlen(t) + 1;
    fd = memfd_create("hd-wlinput-keymap", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)n) != 0 ||
        (p = mmap(NULL, n, PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        free(t);
        return -1;
    }
    memcpy(p, t, n);
    munmap(p, n);
    vkbd_keymap(kbd, WL_KEYBOARD_KEYMAP_FORMAT_XKB_V1, fd, (uint32_t)n);
    close(fd);
    free(t);
    return 0;
}

static int key_of(xkb_keysym_t s)
{
    for (int i = 0; i < nsyms; i++)
        if (syms[i] == s)
            return i;
    return -1;
}

static void press(int i, int down)
{
    uint32_t bit = syms[i] == XKB_KEY_Shift_L     ? 1
                   : syms[i] == XKB_KEY_Control_L ? 4
                   : syms[i] == XKB_KEY_Alt_L     ? 8
                                                  : 0;

    vkbd_key(kbd, now_ms(), (uint32_t)(1 + i), down ? 1 : 0);
    if (bit != 0) {
        mods = down ? mods | bit : mods & ~bit;
        vkbd_modifiers(kbd, mods, 0, 0, 0);
    }
}

static int run(char *line)
{
    char name[64];
    int down, i;
    double x, y, w, h;

    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "type ", 5) == 0) {
        for (char *c = line + 5; *c; c++) {
            if ((i = key_of(xkb_utf32_to_keysym((unsigned char)*c))) < 0)
                return -1;
            press(i, 1);
            press(i, 0);
        }
        return 0;
    }
    if (sscanf(line, "key %63s %d", name, &down) == 2) {
        xkb_keysym_t s = xkb_keysym_from_name(name, 0);

        if ((i = key_of(s)) < 0)
            return -1;
        press(i, down);
        return 0;
    }
    if (sscanf(line, "move %lf %lf %lf %lf", &x, &y, &w, &h) == 4) {
        zwlr_virtual_pointer_v1_motion_absolute(
            ptr, now_ms(), (uint32_t)x, (uint32_t)y, (uint32_t)w, (uint32_t)h);
        zwlr_virtual_pointer_v1_frame(ptr);
        return 0;
    }
    if (strcmp(line, "click") == 0) {
        zwlr_virtual_pointer_v1_button(ptr, now_ms(), BTN_LEFT, 1);
        zwlr_virtual_pointer_v1_frame(ptr);
        zwlr_virtual_pointer_v1_button(ptr, now_ms(), BTN_LEFT, 0);
        zwlr_virtual_pointer_v1_frame(ptr);
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct wl_display *d;
    struct wl_registry *reg;
    char line[512];
    FILE *f;
    int n = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: hd-wlinput FIFO\n");
        return 2;
    }
    if ((d = wl_display_connect(NULL)) == NULL) {
        fprintf(stderr, "hd-wlinput: no Wayland display (WAYLAND_DISPLAY=%s)\n",
                getenv("WAYLAND_DISPLAY") ? getenv("WAYLAND_DISPLAY") : "");
        return 1;
    }
    reg = wl_display_get_registry(d);
    wl_registry_add_listener(reg, &reg_listener, NULL);
    wl_display_roundtrip(d);
    if (seat == NULL || kmgr == NULL || pmgr == NULL) {
        fprintf(stderr, "hd-wlinput: the compositor lacks a seat, a virtual "
                        "keyboard or a virtual pointer manager\n");
        return 1;
    }
    for (char c = 'a'; c <= 'z'; c++)
        add_sym(xkb_utf32_to_keysym((uint32_t)c));
    for (char c = 'A'; c <= 'Z'; c++)
        add_sym(xkb_utf32_to_keysym((uint32_t)c));
    for (char c = '0'; c <= '9'; c++)
        add_sym(xkb_utf32_to_keysym((uint32_t)c));
    add_sym(XKB_KEY_space);
    add_sym(XKB_KEY_Shift_L);
    add_sym(XKB_KEY_Control_L);
    add_sym(XKB_KEY_Alt_L);
    kbd = vkbd_create(kmgr, seat);
    ptr = zwlr_virtual_pointer_manager_v1_create_virtual_pointer(pmgr, seat);
    if (kbd == NULL || ptr == NULL || upload_keymap() != 0) {
        fprintf(stderr, "hd-wlinput: cannot make the devices\n");
        return 1;
    }
    vkbd_modifiers(kbd, 0, 0, 0, 0);
    wl_display_roundtrip(d);
    printf("ready\n");
    fflush(stdout);
    /* the FIFO: reopened when the writer closes it */
    for (;;) {
        if ((f = fopen(argv[1], "r")) == NULL) {
            fprintf(stderr, "hd-wlinput: %s: %s\n", argv[1], strerror(errno));
            return 1;
        }
        while (fgets(line, sizeof(line), f) != NULL) {
            n++;
            if (run(line) != 0)
                fprintf(stderr, "hd-wlinput: cannot do \"%s\"\n", line);
            if (wl_display_roundtrip(d) < 0) {
                fprintf(stderr, "hd-wlinput: the compositor went away\n");
                return 1;
            }
            printf("done %d\n", n);
            fflush(stdout);
        }
        fclose(f);
    }
}

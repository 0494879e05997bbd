/*
 * hd-testcard: an X client for the end-to-end tests.  It shows a known
 * test card in a window on $DISPLAY and records the input it receives.
 *
 *   hd-testcard X Y W H RECORD [--root RRGGBB]
 *
 * The card (tests/e2e/card.h, a pure function of W and H): colour bars in the
 * top third, grey/red/green/blue ramps below them, then fine detail: a band of
 * text-like glyphs (random 5x7 bitmaps, black on white, as a page of
 * small print), one-pixel line pairs and a 2x2 checkerboard; keys typed
 * at the card are echoed in a strip at its bottom in the core "fixed"
 * font, so what is typed is also on screen.
 *
 * RECORD gets one line per event, flushed at once, so a test can wait for
 * it:  "key keysym=0x61 keycode=38 state=0x0"  and
 * "button N x=EX y=EY root=RX,RY" (EX, EY in window coordinates).  The
 * keysym is looked up in the current keyboard mapping, read again after
 * each MappingNotify (homedesk-host binds spare keycodes for keysyms the
 * map lacks, as xdotool does).  "ready" is printed on stdout once the
 * window is mapped and painted.  --root paints the root window a solid
 * colour (Xvfb's default is a one-pixel weave).  Exits when the X
 * connection closes or on SIGTERM.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xcb/xcb.h>

#include "tests/e2e/card.h"

#define ECHO_H   20
#define ECHO_MAX 120

struct card {
    xcb_connection_t *c;
    xcb_screen_t *scr;
    xcb_window_t win;
    xcb_pixmap_t pix;
    xcb_gcontext_t gc;
    int w, h;
    FILE *rec;
    xcb_keysym_t *map;
    int per;
    uint8_t min_kc, max_kc;
    char echo[ECHO_MAX + 1];
    size_t n_echo;
};

static int load_map(struct card *k)
{
    const xcb_setup_t *setup = xcb_get_setup(k->c);
    xcb_get_keyboard_mapping_reply_t *r;
    int n;

    k->min_kc = setup->min_keycode;
    k->max_kc = setup->max_keycode;
    r = xcb_get_keyboard_mapping_reply(
        k->c,
        xcb_get_keyboard_mapping(k->c, k->min_kc,
                                 (uint8_t)(k->max_kc - k->min_kc + 1)),
        NULL);
    if (r == NULL)
        return -1;
    free(k->map);
    k->per = r->keysyms_per_keycode;
    n = xcb_get_keyboard_mapping_keysyms_length(r);
    k->map = malloc(sizeof(xcb_keysym_t) * (size_t)n);
    if (k->map != NULL)
        memcpy(k->map, xcb_get_keyboard_mapping_keysyms(r),
               sizeof(xcb_keysym_t) * (size_t)n);
    free(r);
    return k->map != NULL ? 0 : -1;
}

static xcb_keysym_t keysym(struct card *k, uint8_t kc, uint16_t state)
{
    xcb_keysym_t plain, shifted;

    if (k->map == NULL || kc < k->min_kc || kc > k->max_kc || k->per < 1)
        return 0;
    plain = k->map[(size_t)(kc - k->min_kc) * k->per];
    shifted = k->per > 1 ? k->map[(size_t)(kc - k->min_kc) * k->per + 1] : 0;
    if ((state & XCB_MOD_MASK_SHIFT) && shifted != 0)
        return shifted;
    if ((state & XCB_MOD_MASK_SHIFT) && plain >= 'a' && plain <= 'z')
        return plain - 'a' + 'A';
    return plain;
}

/* Redraw the echo strip into the background pixmap and show it. */
static void show_echo(struct card *k)
{
    xcb_rectangle_t strip = { 0, (int16_t)(k->h - ECHO_H), (uint16_t)k->w,
                              ECHO_H };
    uint32_t fg = card_rgb(240, 240, 240);

    xcb_change_gc(k->c, k->gc, XCB_GC_FOREGROUND, &fg);
    xcb_poly_fill_rectangle(k->c, k->pix, k->gc, 1, &strip);
    fg = card_rgb(0, 0, 0);
    xcb_change_gc(k->c, k->gc, XCB_GC_FOREGROUND, &fg);
    if (k->n_echo > 0)
        xcb_image_text_8(k->c, (uint8_t)k->n_echo, k->pix, k->gc, 4,
                         (int16_t)(k->h - 6), k->echo);
    xcb_clear_area(k->c, 0, k->win, 0, (int16_t)(k->h - ECHO_H), (uint16_t)k->w,
                   ECHO_H);
    xcb_flush(k->c);
}

static void on_key(struct card *k, const xcb_key_press_event_t *e)
{
    xcb_keysym_t s = keysym(k, e->detail, e->state);

    fprintf(k->rec, "key keysym=0x%x keycode=%u state=0x%x\n", s, e->detail,
            e->state);
    fflush(k->rec);
    if (s >= 0x20 && s < 0x7f) {
        if (k->n_echo == ECHO_MAX) {
            memmove(k->echo, k->echo + 1, ECHO_MAX - 1);
            k->n_echo--;
        }
        k->echo[k->n_echo++] = (char)s;
        show_echo(k);
    }
}

static void on_button(struct card *k, const xcb_button_press_event_t *e)
{
    fprintf(k->rec, "button %u x=%d y=%d root=%d,%d\n", e->detail, e->event_x,
            e->event_y, e->root_x, e->root_y);
    fflush(k->rec);
}

/* Upload the card into the window's background pixmap, in strips that
 * fit a request. */
static int upload(struct card *k)
{
    uint32_t *px = malloc((size_t)k->w * k->h * 4);
    size_t max = xcb_get_maximum_request_length(k->c) * 4 - 64;
    int rows = (int)(max / ((size_t)k->w * 4)), y, n;

    if (px == NULL || rows < 1) {
        free(px);
        return -1;
    }
    card_paint(px, k->w, k->h, ECHO_H);
    for (y = 0; y < k->h; y += n) {
        n = k->h - y < rows ? k->h - y : rows;
        xcb_put_image(k->c, XCB_IMAGE_FORMAT_Z_PIXMAP, k->pix, k->gc,
                      (uint16_t)k->w, (uint16_t)n, 0, (int16_t)y, 0,
                      k->scr->root_depth, (uint32_t)((size_t)k->w * n * 4),
                      (const uint8_t *)(px + (size_t)y * k->w));
    }
    free(px);
    return 0;
}

static void paint_root(struct card *k, uint32_t colour)
{
    xcb_change_window_attributes(k->c, k->scr->root, XCB_CW_BACK_PIXEL,
                                 &colour);
    xcb_clear_area(k->c, 0, k->scr->root, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    struct card k;
    xcb_generic_event_t *ev;
    xcb_font_t font;
    uint32_t vals[3];
    int x, y, ready = 0;
    const char *title = "hd-testcard";

    memset(&k, 0, sizeof(k));
    if (argc != 6 && !(argc == 8 && strcmp(argv[6], "--root") == 0)) {
        fprintf(stderr, "usage: hd-testcard X Y W H RECORD [--root RRGGBB]\n");
        return 2;
    }
    x = atoi(argv[1]);
    y = atoi(argv[2]);
    k.w = atoi(argv[3]);
    k.h = atoi(argv[4]);
    if (k.w < 64 || k.h < 3 * ECHO_H || k.w > 4096 || k.h > 4096) {
        fprintf(stderr, "hd-testcard: bad size\n");
        return 2;
    }
    if ((k.rec = fopen(argv[5], "a")) == NULL) {
        perror(argv[5]);
        return 1;
    }
    k.c = xcb_connect(NULL, NULL);
    if (xcb_connection_has_error(k.c)) {
        fprintf(stderr, "hd-testcard: cannot open the display\n");
        return 1;
    }
    k.scr = xcb_setup_roots_iterator(xcb_get_setup(k.c)).data;
    if (k.scr->root_depth != 24 || load_map(&k) != 0) {
        fprintf(stderr, "hd-testcard: needs a 24-bit TrueColor screen\n");
        return 1;
    }
    if (argc == 8)
        paint_root(&k, (uint32_t)strtoul(argv[7], NULL, 16));

    k.pix = xcb_generate_id(k.c);
    xcb_create_pixmap(k.c, k.scr->root_depth, k.pix, k.scr->root, (uint16_t)k.w,
                      (uint16_t)k.h);
    font = xcb_generate_id(k.c);
    xcb_open_font(k.c, font, 5, "fixed");
    k.gc = xcb_generate_id(k.c);
    vals[0] = 0;
    vals[1] = card_rgb(240, 240, 240);
    vals[2] = font;
    xcb_create_gc(k.c, k.gc, k.pix,
                  XCB_GC_FOREGROUND | XCB_GC_BACKGROUND | XCB_GC_FONT, vals);
    if (upload(&k) != 0)
        return 1;

    k.win = xcb_generate_id(k.c);
    vals[0] = k.pix;
    vals[1] = XCB_EVENT_MASK_EXPOSURE | XCB_EVENT_MASK_KEY_PRESS |
              XCB_EVENT_MASK_BUTTON_PRESS;
    xcb_create_window(k.c, XCB_COPY_FROM_PARENT, k.win, k.scr->root, (int16_t)x,
                      (int16_t)y, (uint16_t)k.w, (uint16_t)k.h, 0,
                      XCB_WINDOW_CLASS_INPUT_OUTPUT, k.scr->root_visual,
                      XCB_CW_BACK_PIXMAP | XCB_CW_EVENT_MASK, vals);
    xcb_change_property(k.c, XCB_PROP_MODE_REPLACE, k.win, XCB_ATOM_WM_NAME,
                        XCB_ATOM_STRING, 8, (uint32_t)strlen(title), title);
    xcb_map_window(k.c, k.win);
    xcb_flush(k.c);

    while ((ev = xcb_wait_for_event(k.c)) != NULL) {
        switch (ev->response_type & 0x7f) {
        case XCB_EXPOSE:
            if (!ready) {
                /* the background is painted by the server before the
                 * Expose; a round trip makes sure it is done */
                free(xcb_get_input_focus_reply(k.c, xcb_get_input_focus(k.c),
                                               NULL));
                printf("ready\n");
                fflush(stdout);
                ready = 1;
            }
            break;
        case XCB_KEY_PRESS:
            on_key(&k, (xcb_key_press_event_t *)ev);
            break;
        case XCB_BUTTON_PRESS:
            on_button(&k, (xcb_button_press_event_t *)ev);
            break;
        case XCB_MAPPING_NOTIFY:
            if (((xcb_mapping_notify_event_t *)ev)->request ==
                XCB_MAPPING_KEYBOARD)
                load_map(&k);
            break;
        default:
            break;
        }
        free(ev);
    }
    free(k.map);
    fclose(k.rec);
    xcb_disconnect(k.c);
    return 0;
}

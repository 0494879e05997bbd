/*
 * The viewer's window: the user's mouse and keyboard to the host
 * (MouseEvent/KeyEvent through the session), the host's pointer moves
 * shown back.  Ctrl/Alt presses are held back until the next key shows
 * they are not one of our hotkeys (window_menu.c).  Main thread.  See
 * window.h, window_int.h.
 */
#include <stdint.h>
#include <string.h>

#include <SDL.h>

#include "client/keys.h"
#include "client/pointer.h"
#include "client/window_int.h"
#include "log.h"

static size_t modifiers(Hbb__ControlKey *out)
{
    SDL_Keymod m = SDL_GetModState();
    size_t n = 0;

    if (m & KMOD_CTRL)
        out[n++] = HBB__CONTROL_KEY__Control;
    if (m & KMOD_SHIFT)
        out[n++] = HBB__CONTROL_KEY__Shift;
    if (m & KMOD_ALT)
        out[n++] = HBB__CONTROL_KEY__Alt;
    if (m & KMOD_GUI)
        out[n++] = HBB__CONTROL_KEY__Meta;
    return n;
}

/* Window coordinates to the host display's, through the current scaling. */
static int map_xy(struct win *w, int x, int y, int *hx, int *hy)
{
    struct sess_stats st;
    int ww, wh, ow, oh;
    double fx, fy;

    if (w->dst.w <= 0 || w->dst.h <= 0 || w->disp_w <= 0)
        return -1;
    SDL_GetWindowSize(w->win, &ww, &wh);
    SDL_GetRendererOutputSize(w->ren, &ow, &oh);
    fx = ww > 0 ? (double)x * ow / ww : x; /* HiDPI: window -> pixels */
    fy = wh > 0 ? (double)y * oh / wh : y;
    fx = (fx - w->dst.x) * w->disp_w / w->dst.w;
    fy = (fy - w->dst.y) * w->disp_h / w->dst.h;
    *hx = fx < 0 ? 0 : fx >= w->disp_w ? w->disp_w - 1 : (int)fx;
    *hy = fy < 0 ? 0 : fy >= w->disp_h ? w->disp_h - 1 : (int)fy;
    /* the host's desktop coordinates: the shown display's offset */
    sess_get_stats(w->s, &st);
    *hx += st.disp_x;
    *hy += st.disp_y;
    return 0;
}

static void send_mouse(struct win *w, int mask, int x, int y)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__MouseEvent me = HBB__MOUSE_EVENT__INIT;
    Hbb__ControlKey mods[4];

    me.mask = mask;
    me.x = x;
    me.y = y;
    if (mask != 3) /* not the wheel */
        ptr_sent(w->ptr, x, y);
    me.n_modifiers = modifiers(mods);
    me.modifiers = mods;
    m.union_case = HBB__MESSAGE__UNION_MOUSE_EVENT;
    m.mouse_event = &me;
    sess_send(w->s, &m);
}

/*
 * News of the host's pointer (pointer.h): its shape, and a move the host
 * made itself (not our echo), which moves ours too while it is over the
 * window (the same point of the picture).
 */
void win_pointer_news(struct win *w)
{
    struct sess_stats st;
    int x, y, ww, wh, ow, oh;

    ptr_show(w->ptr, w->win != NULL);
    if (w->win == NULL || !ptr_moved(w->ptr, &x, &y) ||
        SDL_GetMouseFocus() != w->win || w->dst.w <= 0 || w->disp_w <= 0)
        return;
    sess_get_stats(w->s, &st);
    x -= st.disp_x;
    y -= st.disp_y;
    if (x < 0 || y < 0 || x >= w->disp_w || y >= w->disp_h)
        return; /* on another of the host's displays */
    SDL_GetWindowSize(w->win, &ww, &wh);
    SDL_GetRendererOutputSize(w->ren, &ow, &oh);
    /* the middle of the host's pixel, as map_xy takes it back */
    x = w->dst.x + (int)((x + 0.5) * w->dst.w / w->disp_w);
    y = w->dst.y + (int)((y + 0.5) * w->dst.h / w->disp_h);
    if (ow > 0 && oh > 0) { /* HiDPI: pixels -> window */
        x = x * ww / ow;
        y = y * wh / oh;
    }
    hd_debug("window", "the host moved its pointer: ours to %d,%d", x, y);
    SDL_WarpMouseInWindow(w->win, x, y);
}

static int sdl_button(Uint8 b)
{
    switch (b) {
    case SDL_BUTTON_LEFT:
        return 1;
    case SDL_BUTTON_RIGHT:
        return 2;
    case SDL_BUTTON_MIDDLE:
        return 4;
    case SDL_BUTTON_X1:
        return 8;
    case SDL_BUTTON_X2:
        return 16;
    default:
        return 0;
    }
}

static int printable(SDL_Keycode sym)
{
    return sym > 0 && sym < 0x110000 && !(sym & SDLK_SCANCODE_MASK);
}

/* One KeyEvent: a control key (ck != 0) or a character; down 1/0, or
 * press (down and up) when down is -1, a typed character: it says what
 * the keyboard's state made, so no modifiers go with it. */
static const Hbb__KeyboardMode WIRE_MODE[KBD_N_MODES] = {
    [KBD_LEGACY] = HBB__KEYBOARD_MODE__Legacy,
    [KBD_TRANSLATE] = HBB__KEYBOARD_MODE__Translate,
    [KBD_MAP] = HBB__KEYBOARD_MODE__Map,
};

static void send_key_msg(struct win *w, Hbb__KeyEvent *ke)
{
    Hbb__Message m = HBB__MESSAGE__INIT;

    ke->mode = WIRE_MODE[w->kbd];
    m.union_case = HBB__MESSAGE__UNION_KEY_EVENT;
    m.key_event = ke;
    sess_send(w->s, &m);
}

/* Map mode: the key at SDL scancode sc's place (its X keycode), down or
 * up; 0, or -1 when the key has no X keycode. */
static int send_code(struct win *w, SDL_Scancode sc, int down)
{
    Hbb__KeyEvent ke = HBB__KEY_EVENT__INIT;

    if ((ke.chr = kbd_x_keycode(sc)) == 0)
        return -1;
    ke.union_case = HBB__KEY_EVENT__UNION_CHR;
    ke.down = down != 0;
    send_key_msg(w, &ke);
    return 0;
}

static void send_key_event(struct win *w, Hbb__ControlKey ck, uint32_t chr,
                           int down)
{
    Hbb__KeyEvent ke = HBB__KEY_EVENT__INIT;
    Hbb__ControlKey mods[4];

    if (ck != 0) {
        ke.union_case = HBB__KEY_EVENT__UNION_CONTROL_KEY;
        ke.control_key = ck;
    } else {
        ke.union_case = HBB__KEY_EVENT__UNION_CHR;
        ke.chr = chr;
    }
    ke.down = down == 1;
    ke.press = down == -1;
    ke.n_modifiers = down == -1 ? 0 : modifiers(mods);
    ke.modifiers = mods;
    send_key_msg(w, &ke);
}

/* A Ctrl/Alt key (scancode sc, ControlKey ck) down or up: by its place in
 * map mode, else as the ControlKey. */
static void send_mod(struct win *w, SDL_Scancode sc, Hbb__ControlKey ck,
                     int down)
{
    if (w->kbd != KBD_MAP || send_code(w, sc, down) != 0)
        send_key_event(w, ck, 0, down);
}

/* The Ctrl/Alt presses held back: send them now, in order. */
void win_flush_mods(struct win *w)
{
    for (int i = 0; i < w->n_held_mods; i++)
        send_mod(w, w->held_mods[i], w->held_cks[i], 1);
    w->n_held_mods = 0;
}

/*
 * A key just sent as a key (Space, a keypad digit, Alt+x): SDL posts the
 * text it types right behind it; that text is not sent again.
 */
static void drop_its_text(void)
{
    SDL_Event ev;

    SDL_PumpEvents();
    if (SDL_PeepEvents(&ev, 1, SDL_PEEKEVENT, SDL_FIRSTEVENT, SDL_LASTEVENT) ==
            1 &&
        ev.type == SDL_TEXTINPUT)
        SDL_PeepEvents(&ev, 1, SDL_GETEVENT, SDL_TEXTINPUT, SDL_TEXTINPUT);
}

/* A key that is none of our hotkeys. */
static void send_key(struct win *w, const SDL_KeyboardEvent *k)
{
    SDL_Scancode sc = k->keysym.scancode;
    Hbb__ControlKey ck = kbd_control_key(k->keysym.sym);
    int down = k->type == SDL_KEYDOWN, i;

    if (sc < 0 || sc >= SDL_NUM_SCANCODES)
        return;
    if (down)
        w->drop_up[sc] = 0;
    else if (w->drop_up[sc]) {
        w->drop_up[sc] = 0;
        return;
    }
    if (ck == HBB__CONTROL_KEY__Control || ck == HBB__CONTROL_KEY__RControl ||
        ck == HBB__CONTROL_KEY__Alt || ck == HBB__CONTROL_KEY__RAlt) {
        for (i = 0; i < w->n_held_mods && w->held_mods[i] != sc; i++)
            ;
        if (down && (i < w->n_held_mods || k->repeat))
            return;
        if (down && w->n_held_mods < MAX_HELD_MODS) {
            /* maybe the start of a hotkey: sent with the next key */
            if (w->n_held_mods == 0)
                w->held_used = 0;
            w->held_mods[w->n_held_mods] = sc;
            w->held_cks[w->n_held_mods++] = ck;
            return;
        }
        if (!down && i < w->n_held_mods) {
            if (w->held_used) {
                /* only text was typed meanwhile (AltGr): never sent */
                w->held_mods[i] = w->held_mods[--w->n_held_mods];
                w->held_cks[i] = w->held_cks[w->n_held_mods];
                return;
            }
            win_flush_mods(w); /* pressed and released alone */
        }
        send_mod(w, sc, ck, down);
        return;
    }
    if (w->kbd == KBD_MAP) {
        /* every key by its place (AltGr and Shift included): the host's
         * layout makes the character; SDL's text is not sent */
        if (down)
            win_flush_mods(w);
        if (send_code(w, sc, down) == 0)
            return;
    }
    if (ck == 0 && printable(k->keysym.sym) &&
        !(k->keysym.mod & (KMOD_CTRL | KMOD_LALT | KMOD_GUI))) {
        /*
         * A character key: what it types comes as SDL_TEXTINPUT, computed
         * from the keyboard's real state (Shift, AltGr, Caps Lock, dead
         * keys, a virtual keyboard's own keymap), and is sent from there;
         * the key itself is not, nor its release.
         */
        if (down) {
            w->drop_up[sc] = 1;
            w->held_used = 1;
        }
        return;
    }
    if (down)
        win_flush_mods(w);
    if (ck != 0)
        send_key_event(w, ck, 0, down);
    else if (printable(k->keysym.sym)) /* a shortcut: Ctrl+C */
        send_key_event(w, 0, (uint32_t)k->keysym.sym, down);
    if (down)
        drop_its_text();
}

/*
 * Text typed by character keys (or a key SDL has no scancode for, as a
 * virtual keyboard's "A"): each character pressed on the host.
 */
static void send_text(struct win *w, const char *t)
{
    const unsigned char *p = (const unsigned char *)t;
    uint32_t cp;
    int n;

    if (w->kbd == KBD_MAP)
        return; /* the keys were sent by their place */
    if (w->kbd == KBD_TRANSLATE) {
        /* the text itself: the host types these characters */
        Hbb__KeyEvent ke = HBB__KEY_EVENT__INIT;

        ke.union_case = HBB__KEY_EVENT__UNION_SEQ;
        ke.seq = (char *)t;
        ke.press = 1;
        send_key_msg(w, &ke);
        return;
    }

    while (*p) {
        if (*p < 0x80)
            cp = *p, n = 1;
        else if ((*p & 0xe0) == 0xc0)
            cp = *p & 0x1f, n = 2;
        else if ((*p & 0xf0) == 0xe0)
            cp = *p & 0x0f, n = 3;
        else if ((*p & 0xf8) == 0xf0)
            cp = *p & 0x07, n = 4;
        else
            return;
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        p += n;
        if (cp >= 0x20 && cp != 0x7f)
            send_key_event(w, 0, cp, -1);
    }
}

void win_input(struct win *w, const SDL_Event *ev, int *quit)
{
    int x, y, b;

    if (win_ui_input(w, ev, quit))
        return;
    if (w->view_only)
        return;
    switch (ev->type) {
    case SDL_MOUSEMOTION:
        if (map_xy(w, ev->motion.x, ev->motion.y, &x, &y) == 0)
            send_mouse(w, 0, x, y);
        break;
    case SDL_MOUSEBUTTONDOWN:
    case SDL_MOUSEBUTTONUP:
        win_flush_mods(w); /* Ctrl+click */
        b = sdl_button(ev->button.button);
        if (b != 0 && map_xy(w, ev->button.x, ev->button.y, &x, &y) == 0)
            send_mouse(w, b << 3 | (ev->type == SDL_MOUSEBUTTONDOWN ? 1 : 2), x,
                       y);
        break;
    case SDL_MOUSEWHEEL:
        win_flush_mods(w);
        send_mouse(w, 3, ev->wheel.x, ev->wheel.y);
        break;
    case SDL_KEYDOWN:
    case SDL_KEYUP:
        send_key(w, &ev->key);
        break;
    case SDL_TEXTINPUT:
        send_text(w, ev->text.text);
        break;
    default:
        break;
    }
}

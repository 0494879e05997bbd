/*
 * Viewer input to host/input.  See inject.h.  The ControlKey table is
 * indexed by the enum value of message.proto; X keysyms are written as
 * numbers (keysymdef.h names in the comments) to need no X headers here.
 */
#include <errno.h>
#include <stddef.h>

#include "host/inject.h"

struct ck {
    int key;
    uint32_t sym;
};

static const struct ck CONTROL_KEYS[] = {
    { 1, 0xffe9 },      /* Alt -> Alt_L */
    { 2, 0xff08 },      /* Backspace -> BackSpace */
    { 3, 0xffe5 },      /* CapsLock -> Caps_Lock */
    { 4, 0xffe3 },      /* Control -> Control_L */
    { 5, 0xffff },      /* Delete */
    { 6, 0xff54 },      /* DownArrow -> Down */
    { 7, 0xff57 },      /* End */
    { 8, 0xff1b },      /* Escape */
    { 9, 0xffbe },      /* F1 */
    { 10, 0xffc7 },     /* F10 */
    { 11, 0xffc8 },     /* F11 */
    { 12, 0xffc9 },     /* F12 */
    { 13, 0xffbf },     /* F2 */
    { 14, 0xffc0 },     /* F3 */
    { 15, 0xffc1 },     /* F4 */
    { 16, 0xffc2 },     /* F5 */
    { 17, 0xffc3 },     /* F6 */
    { 18, 0xffc4 },     /* F7 */
    { 19, 0xffc5 },     /* F8 */
    { 20, 0xffc6 },     /* F9 */
    { 21, 0xff50 },     /* Home */
    { 22, 0xff51 },     /* LeftArrow -> Left */
    { 23, 0xffeb },     /* Meta -> Super_L */
    { 24, 0xffe9 },     /* Option -> Alt_L */
    { 25, 0xff56 },     /* PageDown -> Next */
    { 26, 0xff55 },     /* PageUp -> Prior */
    { 27, 0xff0d },     /* Return */
    { 28, 0xff53 },     /* RightArrow -> Right */
    { 29, 0xffe1 },     /* Shift -> Shift_L */
    { 30, 0x0020 },     /* Space -> space */
    { 31, 0xff09 },     /* Tab */
    { 32, 0xff52 },     /* UpArrow -> Up */
    { 33, 0xffb0 },     /* Numpad0 -> KP_0 */
    { 34, 0xffb1 },     /* Numpad1 */
    { 35, 0xffb2 },     /* Numpad2 */
    { 36, 0xffb3 },     /* Numpad3 */
    { 37, 0xffb4 },     /* Numpad4 */
    { 38, 0xffb5 },     /* Numpad5 */
    { 39, 0xffb6 },     /* Numpad6 */
    { 40, 0xffb7 },     /* Numpad7 */
    { 41, 0xffb8 },     /* Numpad8 */
    { 42, 0xffb9 },     /* Numpad9 */
    { 43, 0xff69 },     /* Cancel */
    { 44, 0xff0b },     /* Clear */
    { 45, 0xffe9 },     /* Menu (obsolete Alt) -> Alt_L */
    { 46, 0xff13 },     /* Pause */
    { 47, 0xff2d },     /* Kana -> Kana_Lock */
    { 48, 0xff31 },     /* Hangul */
    { 49, 0xff38 },     /* Junja -> Hangul_Jeonja */
    { 50, 0xff39 },     /* Final -> Hangul_End */
    { 51, 0xff34 },     /* Hanja -> Hangul_Hanja */
    { 52, 0xff21 },     /* Kanji */
    { 53, 0xff23 },     /* Convert -> Henkan */
    { 54, 0xff60 },     /* Select */
    { 55, 0xff61 },     /* Print */
    { 56, 0xff62 },     /* Execute */
    { 57, 0xff61 },     /* Snapshot -> Print */
    { 58, 0xff63 },     /* Insert */
    { 59, 0xff6a },     /* Help */
    { 60, 0x1008ff2f }, /* Sleep -> XF86Sleep */
    { 61, 0xffac },     /* Separator -> KP_Separator */
    { 62, 0xff14 },     /* Scroll -> Scroll_Lock */
    { 63, 0xff7f },     /* NumLock -> Num_Lock */
    { 64, 0xffec },     /* RWin -> Super_R */
    { 65, 0xff67 },     /* Apps -> Menu */
    { 66, 0xffaa },     /* Multiply -> KP_Multiply */
    { 67, 0xffab },     /* Add -> KP_Add */
    { 68, 0xffad },     /* Subtract -> KP_Subtract */
    { 69, 0xffae },     /* Decimal -> KP_Decimal */
    { 70, 0xffaf },     /* Divide -> KP_Divide */
    { 71, 0xffbd },     /* Equals -> KP_Equal */
    { 72, 0xff8d },     /* NumpadEnter -> KP_Enter */
    { 73, 0xffe2 },     /* RShift -> Shift_R */
    { 74, 0xffe4 },     /* RControl -> Control_R */
    { 75, 0xffea },     /* RAlt -> Alt_R */
    { 76, 0x1008ff12 }, /* VolumeMute -> XF86AudioMute */
    { 77, 0x1008ff13 }, /* VolumeUp -> XF86AudioRaiseVolume */
    { 78, 0x1008ff11 }, /* VolumeDown -> XF86AudioLowerVolume */
    { 79, 0x1008ff2a }, /* Power -> XF86PowerOff */
};

uint32_t inject_control_keysym(int control_key)
{
    for (size_t i = 0; i < sizeof(CONTROL_KEYS) / sizeof(CONTROL_KEYS[0]); i++)
        if (CONTROL_KEYS[i].key == control_key)
            return CONTROL_KEYS[i].sym;
    return 0;
}

uint32_t inject_char_keysym(uint32_t cp)
{
    if (cp == '\r' || cp == '\n')
        return 0xff0d; /* Return */
    if (cp == '\t')
        return 0xff09;
    if (cp == 0x08)
        return 0xff08;
    if (cp == 0x1b)
        return 0xff1b;
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
        return 0;
    if (cp < 0x100)
        return cp; /* Latin-1 keysyms equal their code points */
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return 0x01000000u | cp;
}

/* Modifiers a ControlKey stands for (the others are not modifiers). */
static int is_modifier(int ck)
{
    return ck == 1 || ck == 4 || ck == 23 || ck == 24 || ck == 29 || ck == 45 ||
           ck == 64 || ck == 73 || ck == 74 || ck == 75;
}

static int held(const struct input *in, uint32_t sym)
{
    for (int i = 0; i < in->n_held; i++)
        if (in->held[i] == sym)
            return 1;
    return 0;
}

int inject_mouse(struct input *in, const Hbb__MouseEvent *ev)
{
    static const enum input_button BUTTONS[5] = {
        INPUT_BUTTON_LEFT, INPUT_BUTTON_RIGHT, INPUT_BUTTON_MIDDLE,
        INPUT_BUTTON_BACK, INPUT_BUTTON_FORWARD
    };
    int type = ev->mask & 7, buttons = ev->mask >> 3, r = 0;

    switch (type) {
    case 0: /* move */
    case 1: /* down */
    case 2: /* up */
        if (ev->x < 0 || ev->y < 0 || ev->x > INPUT_COORD_MAX ||
            ev->y > INPUT_COORD_MAX)
            return -EINVAL;
        if ((r = input_move(in, ev->x, ev->y)) != 0 || type == 0)
            return r;
        for (int i = 0; i < 5 && r == 0; i++)
            if (buttons & (1 << i))
                r = input_button(in, BUTTONS[i], type == 1);
        return r;
    case 3: /* wheel: x, y are steps */
        return input_wheel(in, ev->x, ev->y);
    default:
        return -ENOTSUP; /* trackpad, relative moves: not yet */
    }
}

/* Next code point of UTF-8 text at *p (advanced), or -1 when malformed
 * (overlong, surrogate, beyond U+10FFFF, truncated). */
static long utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    long cp;
    int n, i;

    if (s[0] < 0x80) {
        *p = s + 1;
        return s[0];
    }
    n = s[0] >= 0xf0 ? 3 : s[0] >= 0xe0 ? 2 : s[0] >= 0xc2 ? 1 : 0;
    if (n == 0 || s[0] > 0xf4)
        return -1;
    cp = s[0] & (0x3f >> n);
    for (i = 1; i <= n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *p = s + n + 1;
    return cp;
}

/* KeyEvent.seq: check all of it first (nothing half typed), then type
 * each character (press, release). */
static int inject_seq(struct input *in, const char *seq)
{
    const unsigned char *p = (const unsigned char *)seq;
    int n = 0, r;
    long cp;

    while (*p) {
        if ((cp = utf8_next(&p)) < 0 || inject_char_keysym((uint32_t)cp) == 0)
            return -EINVAL;
        if (++n > INJECT_SEQ_MAX)
            return -EMSGSIZE;
    }
    for (p = (const unsigned char *)seq; *p;) {
        uint32_t sym = inject_char_keysym((uint32_t)utf8_next(&p));

        if ((r = input_key(in, sym, 1)) != 0 ||
            (r = input_key(in, sym, 0)) != 0)
            return r;
    }
    return 0;
}

/*
 * RustDesk's special keys, as the key combination a desktop knows them
 * by: CtrlAltDel is Control+Alt+Delete; LockScreen is Super+L (the lock
 * shortcut of GNOME, KDE and most others).  Pressed, then released in
 * reverse order.
 */
static int press_combo(struct input *in, int control_key)
{
    static const uint32_t cad[] = { 0xffe3, 0xffe9, 0xffff }; /* C A Del */
    static const uint32_t lock[] = { 0xffeb, 0x006c };        /* Super l */
    const uint32_t *k =
        control_key == HBB__CONTROL_KEY__CtrlAltDel ? cad : lock;
    int n = control_key == HBB__CONTROL_KEY__CtrlAltDel ? 3 : 2, i, r = 0, r2;

    for (i = 0; i < n && r == 0; i++)
        r = input_key(in, k[i], 1);
    while (i-- > 0)
        if ((r2 = input_key(in, k[i], 0)) != 0 && r == 0)
            r = r2;
    return r;
}

/* Map mode: chr is the X keycode of the key's place on the viewer's
 * keyboard (a Linux viewer's; the kernel's code + 8). */
static int inject_code(struct input *in, const Hbb__KeyEvent *ev)
{
    int r;

    if (ev->chr < 9 || ev->chr > INPUT_CODE_MAX + 8)
        return -EINVAL;
    if (ev->press)
        return (r = input_code(in, ev->chr - 8, 1)) != 0
                   ? r
                   : input_code(in, ev->chr - 8, 0);
    return input_code(in, ev->chr - 8, ev->down);
}

int inject_key(struct input *in, const Hbb__KeyEvent *ev)
{
    uint32_t sym = 0, added[8];
    int n_added = 0, r = 0, modifier_key = 0;

    if (ev->mode == HBB__KEYBOARD_MODE__Map &&
        ev->union_case == HBB__KEY_EVENT__UNION_CHR)
        return inject_code(in, ev);
    if (ev->union_case == HBB__KEY_EVENT__UNION_CONTROL_KEY &&
        (ev->control_key == HBB__CONTROL_KEY__CtrlAltDel ||
         ev->control_key == HBB__CONTROL_KEY__LockScreen))
        return ev->down || ev->press ? press_combo(in, ev->control_key) : 0;
    switch (ev->union_case) {
    case HBB__KEY_EVENT__UNION_CONTROL_KEY:
        sym = inject_control_keysym(ev->control_key);
        modifier_key = is_modifier(ev->control_key);
        break;
    case HBB__KEY_EVENT__UNION_CHR:
        sym = inject_char_keysym(ev->chr);
        break;
    case HBB__KEY_EVENT__UNION_UNICODE:
        sym = inject_char_keysym(ev->unicode);
        break;
    case HBB__KEY_EVENT__UNION_SEQ:
        return inject_seq(in, ev->seq != NULL ? ev->seq : "");
    default:
        return -ENOTSUP;
    }
    if (sym == 0)
        return -EINVAL;
    if (modifier_key) {
        if (ev->press)
            return (r = input_key(in, sym, 1)) != 0 ? r : input_key(in, sym, 0);
        return input_key(in, sym, ev->down);
    }
    /* hold the event's modifiers around a press or a key down */
    if (ev->down || ev->press) {
        for (size_t i = 0; i < ev->n_modifiers && n_added < 8; i++) {
            uint32_t m = inject_control_keysym(ev->modifiers[i]);

            if (m == 0 || !is_modifier(ev->modifiers[i]) || held(in, m))
                continue;
            if ((r = input_key(in, m, 1)) != 0)
                goto out;
            added[n_added++] = m;
        }
    }
    if (ev->press) {
        if ((r = input_key(in, sym, 1)) == 0)
            r = input_key(in, sym, 0);
    } else {
        r = input_key(in, sym, ev->down);
    }
out:
    while (n_added > 0) {
        int r2 = input_key(in, added[--n_added], 0);
        if (r == 0)
            r = r2;
    }
    return r;
}

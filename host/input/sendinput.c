/*
 * Windows input through SendInput: the pointer in absolute coordinates
 * across the virtual desktop (every monitor; the gdi capture's frame
 * starts at the virtual desktop's top-left corner), buttons including
 * back/forward, both wheels, and keys.
 *
 * Keys arrive as X keysyms.  Function, navigation and modifier keysyms map
 * to virtual keys (with the extended-key flag where Windows wants it);
 * characters go through VkKeyScanW in the current keyboard layout (Shift
 * held around the key when the character is on the shifted level, as the
 * X11 backend does) and, when the layout has no key for them, are typed
 * as Unicode (KEYEVENTF_UNICODE: é, €, emoji).  A release undoes what the
 * press did.  Scancodes are sent along with the virtual keys, so programs
 * reading either see the key.
 *
 * SendInput cannot reach the secure desktop (UAC prompts, the lock screen)
 * nor windows of elevated programs when we are not elevated (UIPI).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "host/input/input.h"
#include "log.h"
#include "os.h"

#define MOD "input-sendinput"

/* What a held key's press did, so its release undoes exactly that. */
struct held_key {
    uint32_t keysym;
    WORD vk;      /* 0: typed as Unicode */
    WCHAR unit;   /* KEYEVENTF_UNICODE code unit (BMP) */
    int shift;    /* Shift pressed around it */
    int extended; /* KEYEVENTF_EXTENDEDKEY */
};

struct sendinput {
    struct held_key held[INPUT_MAX_HELD];
    int n_held;
};

static const struct {
    uint16_t keysym; /* 0xffXX */
    uint8_t vk;
    uint8_t extended;
} special[] = {
    { 0xff08, VK_BACK, 0 },     { 0xff09, VK_TAB, 0 },
    { 0xff0d, VK_RETURN, 0 },   { 0xff13, VK_PAUSE, 0 },
    { 0xff14, VK_SCROLL, 0 },   { 0xff1b, VK_ESCAPE, 0 },
    { 0xff50, VK_HOME, 1 },     { 0xff51, VK_LEFT, 1 },
    { 0xff52, VK_UP, 1 },       { 0xff53, VK_RIGHT, 1 },
    { 0xff54, VK_DOWN, 1 },     { 0xff55, VK_PRIOR, 1 },
    { 0xff56, VK_NEXT, 1 },     { 0xff57, VK_END, 1 },
    { 0xff61, VK_SNAPSHOT, 1 }, { 0xff63, VK_INSERT, 1 },
    { 0xff67, VK_APPS, 1 },     { 0xff7f, VK_NUMLOCK, 1 },
    { 0xff8d, VK_RETURN, 1 },   { 0xffaa, VK_MULTIPLY, 0 },
    { 0xffab, VK_ADD, 0 },      { 0xffad, VK_SUBTRACT, 0 },
    { 0xffae, VK_DECIMAL, 0 },  { 0xffaf, VK_DIVIDE, 1 },
    { 0xffe1, VK_LSHIFT, 0 },   { 0xffe2, VK_RSHIFT, 0 },
    { 0xffe3, VK_LCONTROL, 0 }, { 0xffe4, VK_RCONTROL, 1 },
    { 0xffe5, VK_CAPITAL, 0 },  { 0xffe7, VK_LWIN, 1 },
    { 0xffe8, VK_RWIN, 1 },     { 0xffe9, VK_LMENU, 0 },
    { 0xffea, VK_RMENU, 1 },    { 0xffeb, VK_LWIN, 1 },
    { 0xffec, VK_RWIN, 1 },     { 0xffff, VK_DELETE, 1 },
};

static int si_send(INPUT *in, UINT n)
{
    if (SendInput(n, in, sizeof(INPUT)) != n) {
        hd_debug(MOD,
                 "SendInput: Windows error %lu (a secure desktop or "
                 "an elevated window?)",
                 (unsigned long)GetLastError());
        return -EIO;
    }
    return 0;
}

static int si_open(struct input *in, const struct input_opts *opts)
{
    (void)in;
    (void)opts;
    if (GetSystemMetrics(SM_CXVIRTUALSCREEN) <= 0) {
        hd_error(MOD, "no desktop to send input to (a service in session 0?)");
        return -ENODEV;
    }
    return 0;
}

static void si_close(struct input *in)
{
    (void)in;
}

static int si_move(struct input *in, int x, int y)
{
    int vx = GetSystemMetrics(SM_XVIRTUALSCREEN);
    int vy = GetSystemMetrics(SM_YVIRTUALSCREEN);
    int vw = GetSystemMetrics(SM_CXVIRTUALSCREEN);
    int vh = GetSystemMetrics(SM_CYVIRTUALSCREEN);
    INPUT ev = { .type = INPUT_MOUSE };

    (void)in;
    if (vw < 2 || vh < 2)
        return -EIO;
    if (x >= vw)
        x = vw - 1;
    if (y >= vh)
        y = vh - 1;
    (void)vx;
    (void)vy;
    /* 0..65535 spans the virtual desktop: pixel x maps to its centre */
    ev.mi.dx = (LONG)(((int64_t)x * 65536 + 32768) / vw);
    ev.mi.dy = (LONG)(((int64_t)y * 65536 + 32768) / vh);
    ev.mi.dwFlags =
        MOUSEEVENTF_MOVE | MOUSEEVENTF_ABSOLUTE | MOUSEEVENTF_VIRTUALDESK;
    return si_send(&ev, 1);
}

static int si_button(struct input *in, enum input_button b, int down)
{
    INPUT ev = { .type = INPUT_MOUSE };

    (void)in;
    switch (b) {
    case INPUT_BUTTON_LEFT:
        ev.mi.dwFlags = down ? MOUSEEVENTF_LEFTDOWN : MOUSEEVENTF_LEFTUP;
        break;
    case INPUT_BUTTON_MIDDLE:
        ev.mi.dwFlags = down ? MOUSEEVENTF_MIDDLEDOWN : MOUSEEVENTF_MIDDLEUP;
        break;
    case INPUT_BUTTON_RIGHT:
        ev.mi.dwFlags = down ? MOUSEEVENTF_RIGHTDOWN : MOUSEEVENTF_RIGHTUP;
        break;
    case INPUT_BUTTON_BACK:
    case INPUT_BUTTON_FORWARD:
        ev.mi.dwFlags = down ? MOUSEEVENTF_XDOWN : MOUSEEVENTF_XUP;
        ev.mi.mouseData = b == INPUT_BUTTON_BACK ? XBUTTON1 : XBUTTON2;
        break;
    }
    return si_send(&ev, 1);
}

static int si_wheel(struct input *in, int dx, int dy)
{
    INPUT ev[2];
    UINT n = 0;

    (void)in;
    memset(ev, 0, sizeof(ev));
    if (dy != 0) {
        ev[n].type = INPUT_MOUSE;
        ev[n].mi.dwFlags = MOUSEEVENTF_WHEEL;
        ev[n++].mi.mouseData = (DWORD)(dy * WHEEL_DELTA); /* > 0: up */
    }
    if (dx != 0) {
        ev[n].type = INPUT_MOUSE;
        ev[n].mi.dwFlags = MOUSEEVENTF_HWHEEL;
        ev[n++].mi.mouseData = (DWORD)(dx * WHEEL_DELTA); /* > 0: right */
    }
    return n > 0 ? si_send(ev, n) : 0;
}

/* The code point a character keysym stands for, or 0. */
static uint32_t keysym_char(uint32_t keysym)
{
    if ((keysym >= 0x20 && keysym <= 0x7e) ||
        (keysym >= 0xa0 && keysym <= 0xff))
        return keysym; /* Latin-1 keysyms are their code points */
    if (keysym >= 0x1000100 && keysym <= 0x110ffff)
        return keysym - 0x1000000;
    if (keysym == 0x20ac) /* EuroSign */
        return 0x20ac;
    return 0;
}

static void key_event(INPUT *ev, WORD vk, int extended, int down)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = INPUT_KEYBOARD;
    ev->ki.wVk = vk;
    ev->ki.wScan = (WORD)MapVirtualKeyW(vk, MAPVK_VK_TO_VSC);
    ev->ki.dwFlags =
        (extended ? KEYEVENTF_EXTENDEDKEY : 0) | (down ? 0 : KEYEVENTF_KEYUP);
}

static void unicode_event(INPUT *ev, WCHAR unit, int down)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = INPUT_KEYBOARD;
    ev->ki.wScan = unit;
    ev->ki.dwFlags = KEYEVENTF_UNICODE | (down ? 0 : KEYEVENTF_KEYUP);
}

/* How to type keysym: *k filled; 0 or -ENOENT. */
static int plan_key(uint32_t keysym, struct held_key *k)
{
    uint32_t cp;
    size_t i;

    memset(k, 0, sizeof(*k));
    k->keysym = keysym;
    for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (special[i].keysym == keysym) {
            k->vk = special[i].vk;
            k->extended = special[i].extended;
            return 0;
        }
    if (keysym >= 0xffbe && keysym <= 0xffd5) { /* F1..F24 */
        k->vk = (WORD)(VK_F1 + (keysym - 0xffbe));
        return 0;
    }
    if (keysym >= 0xffb0 && keysym <= 0xffb9) { /* KP_0..KP_9 */
        k->vk = (WORD)(VK_NUMPAD0 + (keysym - 0xffb0));
        return 0;
    }
    if ((cp = keysym_char(keysym)) == 0)
        return -ENOENT;
    if (cp <= 0xffff) {
        SHORT s = VkKeyScanW((WCHAR)cp);

        /* usable when it needs no Ctrl or Alt (AltGr levels are typed as
         * Unicode rather than guessed) */
        if (s != -1 && (s & 0x600) == 0) {
            k->vk = (WORD)(s & 0xff);
            k->shift = (s & 0x100) != 0;
            return 0;
        }
        k->unit = (WCHAR)cp;
        return 0;
    }
    return -ENOENT; /* beyond the BMP: typed as a pair in si_key */
}

static int si_key(struct input *in, uint32_t keysym, int down)
{
    struct sendinput *s = in->priv;
    struct held_key k;
    INPUT ev[4];
    UINT n = 0;
    int i, r;

    if (!down) {
        for (i = 0; i < s->n_held; i++)
            if (s->held[i].keysym == keysym)
                break;
        if (i == s->n_held)
            return 0;
        k = s->held[i];
        s->held[i] = s->held[--s->n_held];
    } else {
        uint32_t cp = keysym_char(keysym);

        if (plan_key(keysym, &k) != 0) {
            if (cp > 0xffff) { /* a surrogate pair, pressed and released */
                cp -= 0x10000;
                unicode_event(&ev[0], (WCHAR)(0xd800 + (cp >> 10)), 1);
                unicode_event(&ev[1], (WCHAR)(0xdc00 + (cp & 0x3ff)), 1);
                unicode_event(&ev[2], (WCHAR)(0xd800 + (cp >> 10)), 0);
                unicode_event(&ev[3], (WCHAR)(0xdc00 + (cp & 0x3ff)), 0);
                return si_send(ev, 4);
            }
            hd_debug(MOD, "no key for keysym 0x%x", (unsigned)keysym);
            return -ENOENT;
        }
        /* an auto-repeat keeps the first press's plan */
        for (i = 0; i < s->n_held; i++)
            if (s->held[i].keysym == keysym)
                k = s->held[i];
        if (i == s->n_held && s->n_held < INPUT_MAX_HELD)
            s->held[s->n_held++] = k;
        else if (i == s->n_held)
            return -ENOSPC;
    }
    if (k.vk == 0) {
        unicode_event(&ev[n++], k.unit, down);
    } else {
        if (k.shift && down)
            key_event(&ev[n++], VK_SHIFT, 0, 1);
        key_event(&ev[n++], k.vk, k.extended, down);
        if (k.shift && down)
            key_event(&ev[n++], VK_SHIFT, 0, 0);
    }
    r = si_send(ev, n);
    return r;
}

const struct input_driver input_driver_sendinput = {
    .name = "sendinput",
    .description = "Windows SendInput (virtual keys, Unicode, absolute mouse)",
    .priv_size = sizeof(struct sendinput),
    .open = si_open,
    .close = si_close,
    .move = si_move,
    .button = si_button,
    .wheel = si_wheel,
    .key = si_key,
};

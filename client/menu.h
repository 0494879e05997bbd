/*
 * The in-session menu: a small handle at the top edge of the session
 * window ("homedesk" tab, shown while the pointer is at that edge: the
 * picture is otherwise left as the host sent it) that opens a drop-down list of
 * actions: Ctrl+Alt+Del, lock the screen, view only, quality (balanced /
 * best / fast), fit or 1:1, fullscreen, keyboard grab, statistics, the
 * host's displays (each, and "all" when the host offers it), the
 * keyboard mode (legacy, translate, map: keys.h), send files (where
 * dropped files go; cancel a transfer), receive files (the browser of the
 * host's files: browse.h), disconnect.  A bar at the bottom
 * edge shows a transfer of dropped files while it runs, and how it ended.
 * Ctrl+Alt+M (or a click on the handle) opens and closes it; with it open,
 * Up/Down (or Tab) move, Enter or a click picks, Esc closes.  While open, every
 * key and click goes to the menu, none to the host.
 *
 * The menu only draws and reports what was picked (menu_event); the
 * window does it, with menu_send for what the host must do.  Main
 * thread only.
 */
#ifndef VIEW_MENU_H
#define VIEW_MENU_H

#include <SDL.h>

#include "client/drop.h"
#include "client/session.h"

enum menu_act {
    MA_NONE = 0,
    MA_CAD,
    MA_LOCK,
    MA_VIEW_ONLY,
    MA_QUALITY, /* arg: MENU_Q_* */
    MA_SCALE,
    MA_FULLSCREEN,
    MA_GRAB,
    MA_STATS,
    MA_DISPLAY,  /* arg: display index, or MENU_ALL_DISPLAYS */
    MA_KEYBOARD, /* arg: enum kbd_mode (keys.h) */
    MA_CANCEL_XFER,
    MA_SEND_FILES,
    MA_RECV_FILES,
    MA_DISCONNECT,
};

enum { MENU_Q_BALANCED = 0, MENU_Q_BEST, MENU_Q_FAST };
#define MENU_ALL_DISPLAYS (-1)
#define MENU_MAX_DISPLAYS 8

/* What the check marks show (the window's state). */
struct menu_state {
    int view_only, quality, one_to_one, fullscreen, grab, stats;
    int keyboard;            /* enum kbd_mode */
    int n_displays, display; /* display: index, or MENU_ALL_DISPLAYS */
    int can_send_files;
    const char *drop_to; /* the host's folder for dropped files */
    /* the transfer bar: NULL, or what to show (drop.h) */
    const struct drop_status *xfer;
};

struct menu;

/* Set up for drawing on ren (opens the font).  0 or a negative errno. */
int menu_new(SDL_Renderer *ren, struct menu **out);

void menu_free(struct menu *m);

/* Open or close the list (the hotkey). */
void menu_toggle(struct menu *m);

int menu_is_open(const struct menu *m);

/* Draw the handle, and the list when open, on top of the picture. */
void menu_draw(struct menu *m, const struct menu_state *st);

/* Does the menu (as last drawn) cover any of r (renderer pixels)? */
int menu_covers(const struct menu *m, const SDL_Rect *r);

/*
 * Offer an input event.  Returns 1 when it was the menu's (the host must
 * not get it), with *act (and *arg) set to what the user picked, or
 * MA_NONE; the list closes after a pick.  Returns 0 otherwise.  *redraw
 * is set when the menu's look changed (also for an event that is not the
 * menu's: the pointer reaching or leaving the top edge).
 */
int menu_event(struct menu *m, const SDL_Event *ev, const struct menu_state *st,
               int *act, int *arg, int *redraw);

/*
 * The messages for the host's part of an action: MA_CAD (the
 * Ctrl+Alt+Del key), MA_LOCK, MA_QUALITY (Misc.option image_quality and
 * its frame rate) and MA_DISPLAY (Misc.switch_display).  Returns 0, or
 * sess_send's error; -EINVAL for another action.
 */
int menu_send(struct sess *s, int act, int arg);

/* The name of a quality preset ("balanced", "best", "fast"). */
const char *menu_quality_name(int q);

#endif

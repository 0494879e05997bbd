/*
 * The viewer's window, inside: the state the window's files share
 * (window.c: life cycle and the event loop; window_draw.c: the SDL window,
 * its renderer and what is drawn; window_input.c: the user's mouse and
 * keyboard to the host; window_menu.c: hotkeys, the menu's actions, the
 * file browser and dropped files).  Main thread only, except where a field
 * says otherwise (the hand-over under mu, filled by win_post_*).
 */
#ifndef VIEW_WINDOW_INT_H
#define VIEW_WINDOW_INT_H

#include <pthread.h>
#include <stdint.h>

#include <SDL.h>

#include "client/menu.h"
#include "client/window.h"

enum {
    EV_READY = 0,
    EV_PICTURE,
    EV_END,
    EV_TICK,
    EV_CLIP,
    EV_SCALE,
    EV_XFER,
    EV_CURSOR,
    EV_COUNT
};

#define OVERLAY_SCALE 2 /* font pixels per screen pixel at scale 1 */
#define TICK_MS       1000
#define SEAT_WAIT_MS  5000 /* for a Wayland compositor to offer a seat */
#define MAX_HELD_MODS 4    /* Ctrl/Alt presses held back (see hold_mod) */
#define XFER_SHOW_MS  6000 /* how long the bar shows how a transfer ended */
#define XFER_TICK_MS  200  /* the bar's steps while a transfer runs */

struct win {
    struct win_opts o;
    Uint32 ev_base;
    SDL_Window *win;
    SDL_Renderer *ren;
    SDL_Texture *tex;
    int tex_w, tex_h;
    int tex_cs;  /* the pictures' chroma shift: 1 IYUV texture, 0 ARGB */
    int partial; /* the renderer draws into the window's surface (software):
                  * a picture may be presented by its changed area only */
    SDL_TimerID tick;

    pthread_mutex_t mu; /* guards the hand-over below */
    struct pic *pending;
    int pic_posted;
    int end_status;
    char end_msg[320];
    int ended;
    struct wclip *clip; /* the shared clipboard (winclip.h) */

    struct ptr *ptr;    /* the host's pointer (pointer.h) */
    int disp_w, disp_h; /* the host's display */
    int one_to_one, fullscreen, grab, overlay;
    SDL_Rect dst;     /* where the picture is, in renderer pixels */
    int hidpi;        /* renderer pixels per window unit (the output scale) */
    struct pic *last; /* the picture on show, to upload into a new window */
    struct wlv *wl;   /* our own Wayland connection (SDL on Wayland) */
    struct sess *s;
    struct dec *d;
    struct menu *menu; /* the in-session menu (menu.h), or NULL */
    struct browse *br; /* the host's files, to receive (browse.h), or NULL */
    int view_only, quality;
    int kbd; /* enum kbd_mode */
    /* dropped files (w->o.drop): the last status, and until when the bar
     * shows how the last transfer ended */
    struct drop_status xst;
    Uint32 xst_until;
    int bar_was;       /* win_bar_shown() at the last poll */
    SDL_TimerID xtick; /* EV_XFER while a transfer runs, else 0 */
    /* overlay figures, refreshed every TICK_MS */
    uint64_t shown, shown_then, bytes_then;
    Uint32 then_ms;
    double fps, kbps;
    char line[128];
    /* keyboard (main thread): Ctrl/Alt presses not yet sent (they may be
     * the start of one of our hotkeys), whether a key was typed while they
     * were held, keys whose release is not sent (hotkey modifiers, keys
     * typed as text) */
    SDL_Scancode held_mods[MAX_HELD_MODS];
    Hbb__ControlKey held_cks[MAX_HELD_MODS];
    int n_held_mods, held_used;
    Uint8 drop_up[SDL_NUM_SCANCODES];
};

/* window.c: post custom event EV_* type (with code) to the window thread.
 * Any thread. */
void win_push(struct win *w, int type, int code);

/* window_draw.c */
/* Where the picture goes in the window (w->dst), for its size and the
 * scaling; w->hidpi from the renderer's output size. */
void win_layout(struct win *w);
/* Draw everything (picture, overlay, menu, browser) and present it. */
void win_render(struct win *w);
/* The overlay's figures, anew (every TICK_MS). */
void win_update_stats(struct win *w);
/* Is the transfer bar up: a transfer runs, or one ended a moment ago? */
int win_bar_shown(const struct win *w);
/* The menu's view of the session's state. */
void win_menu_state(const struct win *w, struct menu_state *st);
/* The newest picture posted: to the screen. */
void win_show_picture(struct win *w);
/* The first EV_READY: the window, its renderer and the overlay's timer.
 * 0 or -1. */
int win_open(struct win *w);
/* The host now shows another display: the window follows its size. */
void win_follow_display(struct win *w);
/* The output scale changed (Wayland): the window made anew at it. */
void win_rescale(struct win *w);

/* window_input.c */
/* An input event for the session (after the hotkeys, browser and menu). */
void win_input(struct win *w, const SDL_Event *ev, int *quit);
/* The Ctrl/Alt presses held back: send them now, in order. */
void win_flush_mods(struct win *w);
/* News of the host's pointer (shape, a move of its own): shown. */
void win_pointer_news(struct win *w);

/* window_menu.c */
/* The event for our hotkeys, the open file browser or the menu: 1 when it
 * was theirs (done; *quit set to leave), 0 when it is for the host. */
int win_ui_input(struct win *w, const SDL_Event *ev, int *quit);
/* The dropped files' transfer: start what is queued, show its progress. */
void win_poll_drop(struct win *w);
/* A file or folder dropped on the window: queued to be sent. */
void win_on_drop(struct win *w, const char *path);

#endif

/*
 * The viewer's window: what the user asks of the viewer itself rather
 * than of the host (hotkeys, the in-session menu's actions), the file
 * browser and the dropped files' transfers.  Main thread.  See window.h,
 * window_int.h.
 */
#include <string.h>

#include <SDL.h>

#include "client/browse.h"
#include "client/keys.h"
#include "client/window_int.h"
#include "err.h"
#include "log.h"

static Uint32 on_xfer_tick(Uint32 interval, void *ud)
{
    win_push(ud, EV_XFER, 0);
    return interval;
}

static void toggle_fullscreen(struct win *w)
{
    w->fullscreen = !w->fullscreen;
    SDL_SetWindowFullscreen(w->win,
                            w->fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0);
}

const char *win_keys_help(void)
{
    /* what hotkey() below handles */
    return "  F11, Ctrl+Alt+F          fullscreen on/off\n"
           "  Ctrl+Alt+S               fit to the window / 1:1\n"
           "  Ctrl+Alt+G               keyboard grab on/off (system keys go "
           "to the host)\n"
           "  Ctrl+Alt+O               statistics overlay on/off\n"
           "  Ctrl+Alt+M               the menu (also: the pointer at the top "
           "edge)\n"
           "  Ctrl+Alt+Q               quit\n";
}

static void set_grab(struct win *w, int on)
{
    w->grab = on;
    SDL_SetWindowKeyboardGrab(w->win, w->grab ? SDL_TRUE : SDL_FALSE);
    hd_info("window", "keyboard grab %s", w->grab ? "on" : "off");
}

/* Session thread: a listing for the browser came. */
static void browse_wake(void *ud)
{
    win_push(ud, EV_XFER, 0);
}

static void open_browser(struct win *w)
{
    int r;

    if (w->br == NULL && w->o.drop != NULL &&
        (r = browse_new(drop_config(w->o.drop), w->ren, browse_wake, w,
                        &w->br)) != 0)
        hd_warn("window", "no file browser: %s", hd_strerror(r));
    if (w->br != NULL)
        browse_open(w->br);
}

/* Do what the menu picked. */
static void menu_do(struct win *w, int act, int arg, int *quit)
{
    int r;

    switch (act) {
    case MA_CAD:
    case MA_LOCK:
    case MA_QUALITY:
    case MA_DISPLAY:
        if ((r = menu_send(w->s, act, arg)) != 0)
            hd_warn("window", "menu action not sent: %s", hd_strerror(r));
        if (act == MA_QUALITY) {
            w->quality = arg;
            hd_info("window", "quality %s", menu_quality_name(arg));
        }
        break;
    case MA_VIEW_ONLY:
        w->view_only = !w->view_only;
        hd_info("window", "view only %s", w->view_only ? "on" : "off");
        break;
    case MA_SCALE:
        w->one_to_one = !w->one_to_one;
        win_layout(w);
        break;
    case MA_FULLSCREEN:
        toggle_fullscreen(w);
        break;
    case MA_GRAB:
        set_grab(w, !w->grab);
        break;
    case MA_STATS:
        w->overlay = !w->overlay;
        break;
    case MA_SEND_FILES:
        hd_info("window",
                "drop files or folders on the window to send them "
                "to the host's %s",
                drop_folder(w->o.drop));
        break;
    case MA_RECV_FILES:
        open_browser(w);
        break;
    case MA_CANCEL_XFER:
        if (w->o.drop != NULL)
            drop_cancel(w->o.drop);
        break;
    case MA_KEYBOARD:
        if (arg >= 0 && arg < KBD_N_MODES) {
            win_flush_mods(w);
            w->kbd = arg;
            hd_info("window", "keyboard mode %s", kbd_mode_names[arg]);
        }
        break;
    case MA_DISCONNECT:
        *quit = 1;
        break;
    default:
        break;
    }
}

/* Our hotkeys (Ctrl+Alt+key, F11); 1 when the key was ours. */
static int hotkey(struct win *w, const SDL_KeyboardEvent *k, int *quit)
{
    SDL_Keymod m = k->keysym.mod;

    if (k->keysym.sym == SDLK_F11 && !(m & (KMOD_CTRL | KMOD_ALT))) {
        if (k->type == SDL_KEYDOWN && !k->repeat)
            toggle_fullscreen(w);
        return 1;
    }
    if (!(m & KMOD_CTRL) || !(m & KMOD_ALT))
        return 0;
    switch (k->keysym.sym) {
    case SDLK_f:
    case SDLK_s:
    case SDLK_g:
    case SDLK_o:
    case SDLK_q:
    case SDLK_m:
        break;
    default:
        return 0;
    }
    if (k->type != SDL_KEYDOWN || k->repeat)
        return 1;
    /* the hotkey's own Ctrl and Alt were held back: never sent */
    for (int i = 0; i < w->n_held_mods; i++)
        w->drop_up[w->held_mods[i]] = 1;
    w->n_held_mods = 0;
    w->drop_up[k->keysym.scancode] = 1;
    if (k->keysym.sym == SDLK_m) {
        if (w->br != NULL && browse_is_open(w->br))
            browse_close(w->br); /* back to the session, not to a menu
                                  * under the browser */
        else if (w->menu != NULL)
            menu_toggle(w->menu);
    } else {
        /* the same as the menu's items */
        menu_do(w,
                k->keysym.sym == SDLK_f   ? MA_FULLSCREEN
                : k->keysym.sym == SDLK_s ? MA_SCALE
                : k->keysym.sym == SDLK_g ? MA_GRAB
                : k->keysym.sym == SDLK_o ? MA_STATS
                                          : MA_DISCONNECT,
                0, quit);
    }
    win_render(w);
    return 1;
}

/* The dropped files' transfer: start what is queued, note how the last
 * one ended, log the progress; redraw when the bar changes. */
void win_poll_drop(struct win *w)
{
    struct drop_status st;
    int changed, shown;

    if (w->o.drop == NULL)
        return;
    drop_poll(w->o.drop, &st);
    changed = st.active != w->xst.active || st.done != w->xst.done ||
              strcmp(st.msg, w->xst.msg) != 0;
    if (strcmp(st.msg, w->xst.msg) != 0)
        w->xst_until = SDL_GetTicks() + XFER_SHOW_MS;
    if (st.active && (st.done != w->xst.done || !w->xst.active))
        hd_info("window", "transfer: %s %d%% (%llu of %llu bytes)", st.name,
                st.total > 0 ? (int)(100 * st.done / st.total) : 0,
                (unsigned long long)st.done, (unsigned long long)st.total);
    w->xst = st;
    if (st.active && w->xtick == 0)
        w->xtick = SDL_AddTimer(XFER_TICK_MS, on_xfer_tick, w);
    else if (!st.active && w->xtick != 0) {
        SDL_RemoveTimer(w->xtick);
        w->xtick = 0;
    }
    shown = win_bar_shown(w);
    if (changed || shown != w->bar_was)
        win_render(w);
    w->bar_was = shown;
}

void win_on_drop(struct win *w, const char *path)
{
    int r;

    if (w->o.drop == NULL) {
        hd_warn("window", "%s dropped: this session cannot send files", path);
        return;
    }
    if ((r = drop_add(w->o.drop, path)) != 0)
        hd_warn("window", "%s not sent: %s", path, hd_strerror(r));
    else
        hd_info("window", "dropped %s: to the host's %s", path,
                drop_folder(w->o.drop));
    win_poll_drop(w);
}

/* The browser's input (while it is open): a file or folder to receive
 * is queued as a drop is. */
static void browse_input(struct win *w, const SDL_Event *ev)
{
    const char *path, *to;
    int redraw, receive, r;

    browse_event(w->br, ev, &redraw, &receive);
    if (receive) {
        browse_picked(w->br, &path, &to);
        if ((r = drop_get(w->o.drop, path, to)) != 0)
            hd_warn("window", "%s not received: %s", path, hd_strerror(r));
        win_poll_drop(w);
    }
    if (redraw)
        win_render(w);
}

int win_ui_input(struct win *w, const SDL_Event *ev, int *quit)
{
    struct menu_state st;
    int act, arg, redraw, mine;

    if ((ev->type == SDL_KEYDOWN || ev->type == SDL_KEYUP) &&
        hotkey(w, &ev->key, quit))
        return 1;
    if (w->br != NULL && browse_is_open(w->br)) {
        browse_input(w, ev);
        return 1;
    }
    if (w->menu == NULL)
        return 0;
    win_menu_state(w, &st);
    mine = menu_event(w->menu, ev, &st, &act, &arg, &redraw);
    if (mine)
        menu_do(w, act, arg, quit);
    if (redraw || act != MA_NONE)
        win_render(w);
    return mine;
}

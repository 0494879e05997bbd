/*
 * The SDL window (main thread): shows the newest decoded picture through
 * an IYUV streaming texture (the GPU converts to RGB), fit-to-window or
 * 1:1, fullscreen, keyboard grab, a stats overlay in a built-in bitmap
 * font, and turns the user's mouse and keyboard into MouseEvent/KeyEvent
 * for the session.
 *
 * Other threads talk to the window only through win_post_* (which push
 * custom SDL events, registered with SDL_RegisterEvents): the window
 * thread sleeps in SDL_WaitEvent and never polls.
 *
 * Clipboard: text the host copies becomes ours; ours goes to the host when
 * the session starts, when the window gains the focus (the user copied
 * something elsewhere and comes back) and when SDL reports a change.
 *
 * Hotkeys (with Ctrl+Alt held, so they never reach the host): F fullscreen
 * (F11 alone works too), S 1:1 / fit scaling, G keyboard grab, O overlay,
 * M the in-session menu (menu.h; also the handle at the top edge), Q
 * quit; in view-only mode (from the menu) no input reaches the host.  Ctrl and
 * Alt presses are held back until the next key (or their release) shows they
 * are not part of a hotkey, so a hotkey sends the host nothing at all.
 * Character keys are sent as the text SDL computes from the keyboard's real
 * state (Shift, AltGr, dead keys, a virtual keyboard's keymap), other keys and
 * shortcuts (Ctrl+C) as keys with the modifiers held.
 *
 * Video driver: Wayland when the session has a compositor (and it offers
 * a seat; see client/wayland.h), X11 otherwise, unless SDL_VIDEODRIVER
 * says.  HiDPI: the picture is drawn in output pixels, the overlay scaled
 * by the output scale; on Wayland a scale change is followed by making
 * the window anew.
 */
#ifndef VIEW_WINDOW_H
#define VIEW_WINDOW_H

#include "client/decode.h"
#include "client/picture.h"
#include "client/drop.h"
#include "client/session.h"

struct win;

struct win_opts {
    const char *title;
    int fullscreen;
    int overlay;   /* stats overlay shown at start */
    int clipboard; /* share the clipboard with the host */
    int keyboard;  /* enum kbd_mode (keys.h) at start */
    /* files dropped on the window go to the host through it (drop.h); the
     * caller frees it after win_free; may be NULL */
    struct drop *drop;
    /* called (main thread) once the session's window is open, e.g. to
     * close the connect window; may be NULL */
    void (*on_open)(void *ud);
    void *open_ud;
};

/* The window's keys, one "  KEYS  what" line each, for --help (any
 * thread; a static string). */
const char *win_keys_help(void);

/*
 * Initialise SDL video and register the custom events; main thread,
 * before any other thread may post.  Returns 0, or -1 with a message
 * logged (no display).
 */
int win_new(const struct win_opts *o, struct win **out);

/* Any thread: logged in, the host's display is w x h. */
void win_post_ready(struct win *w, int width, int height);

/* Any thread: a new picture (the window takes p; an older one not yet
 * shown is freed: newest wins). */
void win_post_picture(struct win *w, struct pic *p);

/* Any thread: the session ended (status as sess_cb.on_end; msg copied). */
void win_post_end(struct win *w, int status, const char *msg);

/*
 * Any thread: text the host copied, for our clipboard (copied; a newer
 * one not yet taken replaces it).
 */
void win_post_clipboard(struct win *w, const char *text, size_t n);

/*
 * Any thread: news of the host's pointer (as sess_cb.on_cursor): its
 * shape becomes our own pointer over the picture, and a move the host
 * made itself moves ours (pointer.h).
 */
void win_post_cursor(struct win *w, const Hbb__Message *m);

/*
 * Run the window until the user closes it or the session ends; input goes
 * to s, statistics come from s and d.  Returns the exit status: 0 when the
 * user quit (or the host ended cleanly), 1 when the session failed (its
 * message is printed on stderr by the caller).  Main thread.
 */
int win_run(struct win *w, struct sess *s, struct dec *d);

/* The message of a failed session (after win_run), or NULL. */
const char *win_end_message(const struct win *w);

/* Destroy the window and quit SDL; accepts NULL.  Main thread. */
void win_free(struct win *w);

#endif

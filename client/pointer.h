/*
 * The host's pointer in the viewer (issue #12 item 5), as RustDesk's host
 * sends it: CursorData (an id and the shape: zstd of RGBA, premultiplied
 * alpha), CursorId (a shape sent before) and CursorPosition (where the
 * host's pointer is, in the host's desktop coordinates).
 *
 * Shapes become our own (hardware) pointer over the window, so it moves
 * with the mouse at once, with no video round trip; every shape the host
 * sends is kept by id (a few: PTR_SHAPES), also one that a newer one
 * replaced before the window thread came to show it, so a later CursorId
 * always finds it.
 *
 * Positions: most are the echo of our own mouse moves (the host moved its
 * pointer where we sent it, and says so).  RustDesk's host leaves them out
 * for the viewer that moved the pointer (for 300 ms after its input) and
 * ours does too; ptr_moved also drops any position we sent in the last
 * PTR_ECHO_MS, so an echo never pulls the pointer back while the user
 * moves on.  What remains is the host's own move (a program there moved
 * the pointer): the window warps our pointer there.
 *
 * The pixels are handed on premultiplied as they come: SDL 2.26's X11 and
 * Wayland cursors hand the bytes to Xcursor and wl_shm, which both take
 * premultiplied alpha (made straight, the edges of a shape showed as
 * bright halos on the viewer, 0x0ba2a2a2 for the host's 0x0b070707).
 */
#ifndef VIEW_POINTER_H
#define VIEW_POINTER_H

#include <stdint.h>

#include "message.pb-c.h"

#define PTR_SHAPES  16  /* shapes kept, by id */
#define PTR_MAX     256 /* largest shape taken from a host (each side) */
#define PTR_SENT    32  /* positions of ours remembered */
#define PTR_ECHO_MS 1000

struct ptr;

int ptr_new(struct ptr **out);

/*
 * Any thread: a CursorData, CursorId or CursorPosition from the host
 * (anything else is ignored).  Returns 1 when the window thread must call
 * ptr_show and ptr_moved (the first news since it last did), else 0.
 */
int ptr_post(struct ptr *p, const Hbb__Message *m);

/*
 * Window thread: make the shapes that came into SDL cursors and set the
 * newest one as ours (nothing while on_window is 0: set before the window
 * is open, on Wayland, it cost the renderer).
 */
void ptr_show(struct ptr *p, int on_window);

/* Window thread: a position we sent to the host (its coordinates). */
void ptr_sent(struct ptr *p, int x, int y);

/*
 * Window thread: 1 with *x, *y when the host's pointer moved and it was
 * not the echo of our own moves (the newest such position), else 0.
 */
int ptr_moved(struct ptr *p, int *x, int *y);

/* Window thread (SDL still up): the default pointer back, all freed.
 * Accepts NULL. */
void ptr_free(struct ptr *p);

#endif

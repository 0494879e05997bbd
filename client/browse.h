/*
 * The in-window browser of the host's files, to receive from it (the
 * menu's "Receive files", issue #18 item 5).  As RustDesk's file manager
 * lists the remote side, a file transfer session of its own (a second
 * login, as --ls does) sends ReadDir and gets FileDirectory back (xfer.h's
 * on_dir); the session stays for the next folder (a new one is made when
 * it ended: an error, or SESS_IDLE_MS without a listing).
 *
 * The panel, over the picture: the host's folder (an editable field:
 * Enter lists what is typed), its folders and then its files by name
 * (".." goes up), "Save to" (our folder, default ~/Downloads), Receive and
 * Cancel.  Keys: Up/Down, PageUp/PageDown, Home/End pick; Enter opens a
 * folder or receives a file; Backspace goes up; Tab / Shift+Tab move
 * through the folder field, the list, Save to and the buttons (the list
 * has it first); Esc closes.  The
 * mouse picks, a double click opens, the wheel scrolls.  While open every
 * key and click is the browser's, none goes to the host.  Receive hands
 * the picked host path and our folder to the caller (browse_picked),
 * which queues it like a drop (drop_get: the bar shows the progress, the
 * menu cancels, receiving it again continues a cancelled one).
 *
 * Main thread, except that the session's thread hands listings over.
 */
#ifndef VIEW_BROWSE_H
#define VIEW_BROWSE_H

#include <SDL.h>

#include "client/session.h"

#define BROWSE_MAX_ENTRIES 4096 /* of a folder, shown */

struct browse;

/*
 * base: the desktop session's configuration (kept valid by the caller);
 * ren: where to draw; wake(ud) is called from the session's thread when
 * a listing came (the caller then calls browse_poll on its thread).
 * Returns 0 or a negative errno (no font).
 */
int browse_new(const struct sess_config *base, SDL_Renderer *ren,
               void (*wake)(void *ud), void *ud, struct browse **out);

/* Show it, listing the folder shown last (at first, the host's home). */
void browse_open(struct browse *b);

int browse_is_open(const struct browse *b);

/* Hide it (Esc, Cancel, or the menu's hotkey while it is open). */
void browse_close(struct browse *b);

/* Draw the panel (when open) on top of what is drawn. */
void browse_draw(struct browse *b);

/*
 * Offer an input event.  Returns 1 when it was the browser's (always,
 * while open), with *redraw set when its look changed and *receive when
 * the user asked to receive (browse_picked says what; the panel closes).
 */
int browse_event(struct browse *b, const SDL_Event *ev, int *redraw,
                 int *receive);

/* What to receive: the host's path, and our folder (~ expanded). */
void browse_picked(const struct browse *b, const char **path, const char **to);

/* Take a listing that came; notice a session that ended.  Returns 1 when
 * the panel must be drawn again. */
int browse_poll(struct browse *b);

/* Accepts NULL. */
void browse_free(struct browse *b);

#endif

/*
 * The session window's clipboard, shared with the host: text the host
 * copies becomes ours; ours goes to the host when the session starts, when
 * the window gains the focus (the user copied something elsewhere and
 * comes back) and when SDL reports a change.  The text last taken from or
 * given to the host is not sent back.
 *
 * wclip_post from any thread; the rest on the window (main) thread.
 */
#ifndef VIEW_WINCLIP_H
#define VIEW_WINCLIP_H

#include <stddef.h>

#include "client/session.h"

struct wclip;

/* on: share at all (else every call does nothing).  0 or -ENOMEM. */
int wclip_new(int on, struct wclip **out);

/* Text the host copied (copied; a newer one not yet taken replaces it).
 * Returns 1 when the window thread must call wclip_from_host. */
int wclip_post(struct wclip *c, const char *text, size_t n);

/* The host's text onto our clipboard. */
void wclip_from_host(struct wclip *c);

/* Our clipboard to the host (s), unless it is what we last exchanged. */
void wclip_to_host(struct wclip *c, struct sess *s);

/* Accepts NULL. */
void wclip_free(struct wclip *c);

#endif

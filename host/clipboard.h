/*
 * The host's clipboard (DESIGN.md section 3): the X11 CLIPBOARD selection
 * <-> text for the viewers, on a thread of its own with its own XCB
 * connection to the shared display.
 *
 * When an X client takes the CLIPBOARD selection (XFixes tells us), the
 * thread asks the owner for UTF8_STRING (STRING as a fallback), reads it
 * (also in INCR pieces, as toolkits send large selections), and hands the
 * text to the loop thread (uv_async), which calls on_text.  Text from a
 * viewer (clip_set) makes the thread the selection's owner; it then
 * answers paste requests (TARGETS, UTF8_STRING, STRING, TEXT) until
 * another client takes the selection.  Its own ownership and text it has
 * just passed on are not reported back (no echo).  At most HD_CLIP_MAX
 * bytes; a larger selection is one log line and is not passed on.
 *
 * Threads: clip_start, clip_stop, clip_set and on_text on the loop thread.
 */
#ifndef HD_HOST_CLIPBOARD_H
#define HD_HOST_CLIPBOARD_H

#include <stddef.h>

#include <uv.h>

struct hclip;

/* Text copied on the host's desktop (not NUL-terminated; n bytes). */
typedef void (*hclip_text_cb)(void *ud, const char *text, size_t n);

/*
 * Connect to display (NULL: $DISPLAY) and start the thread.  Returns 0
 * and *out, or a negative errno (no display, no XFixes: logged).
 */
int clip_start(uv_loop_t *loop, const char *display, hclip_text_cb cb, void *ud,
               struct hclip **out);

/* Make text (n bytes) the CLIPBOARD selection's content.  Copied. */
void clip_set(struct hclip *c, const char *text, size_t n);

/* Stop the thread and free everything.  Accepts NULL. */
void clip_stop(struct hclip *c);

#endif

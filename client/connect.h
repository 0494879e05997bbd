/*
 * The connect window: what homedesk-viewer shows when started without a
 * host (from a desktop menu, no terminal).  The user types a host ID (or
 * an address, HOST[:PORT], for a direct connection) and the password,
 * may tick "Remember password", can edit the server and key (from
 * viewer.conf; saved back there on Connect), and picks from the recent
 * hosts (their ID, the name the host reported and the last use).  When a
 * session fails, its message is shown with what to do next.
 *
 * Keyboard: Tab / Shift+Tab move between the fields, Enter connects (on
 * the recent list: connects to the selected host), Up/Down pick a recent
 * host, Space toggles the check box, Esc closes the window.
 *
 * Files in the configuration directory: viewer.conf (server and key
 * lines rewritten, other lines kept) and recent_hosts (mode 0600): one
 * line per host, "ID<TAB>LAST_USE<TAB>SALTED<TAB>NAME", LAST_USE in Unix
 * seconds, SALTED the base64 of SHA256(password || salt) as the host's
 * Hash message allows (never the password), or "-".
 *
 * The window is opened by cw_run and closed by cw_close (or cw_done):
 * SDL may be shut down between two runs (win_free quits SDL).  Main
 * thread only.
 */
#ifndef VIEW_CONNECT_H
#define VIEW_CONNECT_H

#include <stdint.h>

#include "client/session.h"

#define CW_RECENT_FILE "recent_hosts"
#define CW_RECENT_MAX  8

struct cw;

/* What the user chose (pointers into the cw, valid until the next call). */
struct cw_choice {
    const char *id;     /* ID mode, or NULL */
    const char *direct; /* "HOST[:PORT]" as typed, or NULL */
    const char *server, *key;
    const char *password;  /* typed (maybe empty), when salted is NULL */
    const uint8_t *salted; /* remembered for this host, or NULL */
    const char *title;     /* for the session window */
};

enum { CW_CONNECT = 0, CW_QUIT = 1 };

/*
 * Prepare (no window yet): dir is the configuration directory; server and
 * key the values from viewer.conf or the command line (may be NULL).
 * Returns 0 or -ENOMEM.
 */
int cw_new(const char *dir, const char *server, const char *key,
           struct cw **out);

/*
 * Open the window (if closed) and run it until the user connects
 * (CW_CONNECT, *out filled, viewer.conf saved; the window stays open,
 * showing "Connecting", until cw_close) or closes it (CW_QUIT).  Returns
 * a negative errno when no window can be opened (no display, no font;
 * logged).
 */
int cw_run(struct cw *c, struct cw_choice *out);

/* Close the window (SDL stays initialised).  Fits win_opts.on_open. */
void cw_close(void *c);

/*
 * The session of the last choice ended with status and msg (as
 * sess_cb.on_end; s is still valid): record a login in recent_hosts
 * (remembering the salted hash when asked, forgetting it otherwise or
 * when it was refused), and keep the message and what to do for the next
 * cw_run.  Closes the window.
 */
void cw_done(struct cw *c, struct sess *s, int status, const char *msg);

/* Close and free (the typed password is wiped); accepts NULL. */
void cw_free(struct cw *c);

#endif

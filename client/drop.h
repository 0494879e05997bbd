/*
 * Files and folders dropped on the session window, sent to the host (and
 * those received from it, picked in the browser: browse.h): each
 * drop (SDL_DROPFILE) is queued and sent by a file transfer session of its
 * own (a second login to the same host, as --put does: xfer.h) into the
 * host's folder `to` (default ~/Downloads, --drop-to), one drop at a
 * time.  A file already there with the same size and time is skipped, so
 * dropping it again after a cancel or a lost connection sends only what
 * is missing.  The window polls drop_status for its progress bar.
 *
 * Main thread, except that the sessions' own threads report their end.
 */
#ifndef VIEW_DROP_H
#define VIEW_DROP_H

#include <stdint.h>

#include "client/session.h"

#define DROP_QUEUE_MAX 32

struct drop_status {
    int active;           /* a transfer runs */
    int receiving;        /* it comes from the host (drop_get) */
    char name[256];       /* its file or folder (the last part of its path) */
    uint64_t done, total; /* its bytes sent, of */
    int queued;           /* drops waiting behind it */
    char msg[320];        /* how the last transfer ended, "" before any */
    int failed;           /* it failed (msg says why) */
};

struct drop;

/*
 * base: the desktop session's configuration (server, ID, password...),
 * kept valid by the caller until drop_free; to: the host's folder.
 * Returns 0 or -ENOMEM.
 */
int drop_new(const struct sess_config *base, const char *to, struct drop **out);

/* Queue a dropped path (copied) and start it when nothing runs.  Returns
 * 0, -ENOSPC (DROP_QUEUE_MAX waiting) or the session's error. */
int drop_add(struct drop *d, const char *path);

/*
 * Queue receiving the host's file or folder path into our folder to (as
 * --get: to/basename(path); a part left by a cancel is continued), behind
 * the drops.  Returns as drop_add.
 */
int drop_get(struct drop *d, const char *path, const char *to);

/* Start the next drop once one ended; fill st.  Call on every tick. */
void drop_poll(struct drop *d, struct drop_status *st);

/* Stop the running transfer and forget the queue. */
void drop_cancel(struct drop *d);

/* The host's folder ("~/Downloads"). */
const char *drop_folder(const struct drop *d);

/* The session configuration transfers use (for the file browser). */
const struct sess_config *drop_config(const struct drop *d);

/* Cancel and free.  Accepts NULL. */
void drop_free(struct drop *d);

#endif

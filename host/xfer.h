/*
 * File transfer on the host (a session logged in with
 * LoginRequest.file_transfer; PROTOCOL.md "Files", RustDesk's flow):
 *
 *   read_dir           -> FileResponse.dir (one directory's entries)
 *   all_files          -> FileResponse.dir (every file below a path)
 *   send (download)    -> per file: digest; the viewer's send_confirm
 *                         (skip, or offset_blk) -> blocks; after the
 *                         last file: done
 *   receive (upload)   <- per file: digest, answered with send_confirm
 *                         (skip when the same size and time are here);
 *                         blocks; done, answered with done
 *   cancel             drops a job
 *
 * Uploads are written to NAME.homedesk-part and renamed once complete
 * (size as announced), with the sender's modification time; an upload
 * that broke off (the viewer went away, cancelled) keeps its part, and
 * the next upload of that file (same time) continues it (offset_blk).  Names
 * from the viewer go through hd_files_join.  Downloads are paced by the
 * channel's backlog (HXFER_BACKLOG), so video-free sessions still never
 * queue more than that.  Every failure is a FileResponse.error for that
 * job and one log line; the session goes on.  "~" at the start of a path
 * is the host user's home.
 *
 * Loop thread only.
 */
#ifndef HD_HOST_XFER_H
#define HD_HOST_XFER_H

#include <stddef.h>

#include <uv.h>

#include "message.pb-c.h"

#define HXFER_BACKLOG (2u * 1024 * 1024)
#define HXFER_JOBS    4 /* at once per session */

struct hxfer_io {
    uv_loop_t *loop;
    int (*send)(void *ud, const Hbb__Message *m);
    size_t (*backlog)(void *ud);
    void *ud;
    const char *peer; /* for log lines */
};

struct hxfer;

int hxfer_new(const struct hxfer_io *io, struct hxfer **out);

/*
 * Just logged in: list dir (the LoginRequest's FileTransfer.dir; the home
 * directory when it is empty or not a directory) with id 0, as RustDesk's
 * host does for its file manager's first view.
 */
void hxfer_hello(struct hxfer *x, const char *dir, int hidden);

void hxfer_action(struct hxfer *x, const Hbb__FileAction *a);

void hxfer_response(struct hxfer *x, const Hbb__FileResponse *r);

/* Drop every job (the parts of unfinished uploads are kept to resume)
 * and free. */
void hxfer_free(struct hxfer *x);

#endif

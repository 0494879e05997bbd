/*
 * File transfer from the viewer's command line (no window): the session
 * logs in as a file transfer (LoginRequest.file_transfer) and then
 *   --ls PATH           lists a directory of the host
 *   --get PATH --to DIR copies a file or a directory tree of the host into
 *                       DIR (default .), as DIR/basename(PATH)
 *   --put PATH --to DIR copies a local file or tree to the host's DIR, as
 *                       DIR/basename(PATH)
 * following the host's side of the flow (host/xfer.h).  A file already
 * there with the same size and modification time is skipped; others are
 * written to NAME.homedesk-part and renamed once complete.  A transfer
 * that breaks off (vxfer_free before the end: Ctrl-C, a lost session)
 * keeps its part (hd_files_keep_part) and the next one continues it from
 * its last whole block (send_confirm's offset_blk), in both directions.
 * On a terminal (stderr) a progress line: percent, rate, time left.  Names the
 * host sends go through hd_files_join.  The summary ends with a line xfer:
 * files=N skipped=S bytes=B seconds=T (on stdout; ls prints one line per entry
 * instead).
 *
 * Session thread only (the session's libuv loop).
 */
#ifndef VIEW_XFER_H
#define VIEW_XFER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "message.pb-c.h"

enum vxfer_mode { VXFER_LS = 1, VXFER_GET, VXFER_PUT };

#define VXFER_JOB 1 /* the id of our one job (ReadDir, ...) */

struct vxfer_opts {
    enum vxfer_mode mode;
    const char *path; /* on the host (ls, get) or here (put) */
    const char *to;   /* here (get) or on the host (put) */
    /* ls: each listing goes to on_dir (session thread) instead of stdout,
     * and the transfer does not end: more ReadDir (id VXFER_JOB) may be
     * sent over the session (the in-window browser, browse.h) */
    void (*on_dir)(void *ud, const Hbb__FileDirectory *d);
    void *dir_ud;
};

struct vxfer_io {
    uv_loop_t *loop;
    int (*send)(void *ud, const Hbb__Message *m);
    size_t (*backlog)(void *ud);
    /* the transfer is over: status 0, or 1 with a one-line message */
    void (*end)(void *ud, int status, const char *msg);
    /* bytes copied so far, of total (get, put); may be NULL */
    void (*progress)(void *ud, uint64_t done, uint64_t total);
    void *ud;
};

struct vxfer;

int vxfer_new(const struct vxfer_opts *o, const struct vxfer_io *io,
              struct vxfer **out);

/* Logged in: start. */
void vxfer_start(struct vxfer *x);

/* A FileResponse or FileAction from the host (others are ignored). */
void vxfer_on_message(struct vxfer *x, const Hbb__Message *m);

/* Free (the part of an unfinished download is kept to resume).  Accepts
 * NULL. */
void vxfer_free(struct vxfer *x);

#endif

/*
 * File transfer jobs of one host session.  See xfer.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "err.h"
#include "files.h"
#include "host/xfer.h"
#include "log.h"
#include "os.h"
#include "net.h"

#define MOD "xfer"

#define PUMP_MS        2  /* downloads: a look at the backlog this often */
#define BLOCKS_PER_RUN 32 /* at most this many blocks per look */

struct rjob {               /* a download: we read and send */
    int used, id, fd, wait; /* wait: for a confirm, or for the scan */
    unsigned scanning;      /* the scan it waits for (struct scan.seq), or 0 */
    char base[4096];
    struct hd_file_list files;
    size_t i;
    uint32_t blk;
    uint64_t bytes, left; /* left: of the file, as announced */
};

struct wjob { /* an upload: we receive and write */
    int used, id, fd;
    long cur; /* the file being written, -1: none */
    char base[4096], final[4200], part[4300];
    struct hd_file_list files;
    uint64_t written, expect, bytes;
    size_t done;
};

struct hxfer {
    struct hxfer_io io;
    uv_timer_t timer;
    int pumping;
    int scans;              /* directory scans on libuv's thread pool */
    unsigned seq;           /* numbers them */
    int dead, timer_closed; /* hxfer_free was called; x goes with both */
    struct rjob r[HXFER_JOBS];
    struct wjob w[HXFER_JOBS];
    uint8_t buf[HD_FILE_BLOCK];
};

/* ---- replies ----------------------------------------------------------- */

static int send_response(struct hxfer *x, Hbb__FileResponse *fr)
{
    Hbb__Message m = HBB__MESSAGE__INIT;

    m.union_case = HBB__MESSAGE__UNION_FILE_RESPONSE;
    m.file_response = fr;
    return x->io.send(x->io.ud, &m);
}

static void send_error(struct hxfer *x, int id, int file_num, const char *fmt,
                       ...) HD_PRINTF(4, 5);
static void send_error(struct hxfer *x, int id, int file_num, const char *fmt,
                       ...)
{
    Hbb__FileResponse fr = HBB__FILE_RESPONSE__INIT;
    Hbb__FileTransferError e = HBB__FILE_TRANSFER_ERROR__INIT;
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    hd_warn(MOD, "%s: transfer %d: %s", x->io.peer, id, text);
    e.id = id;
    e.file_num = file_num;
    e.error = text;
    fr.union_case = HBB__FILE_RESPONSE__UNION_ERROR;
    fr.error = &e;
    send_response(x, &fr);
}

static void send_done(struct hxfer *x, int id, int file_num)
{
    Hbb__FileResponse fr = HBB__FILE_RESPONSE__INIT;
    Hbb__FileTransferDone d = HBB__FILE_TRANSFER_DONE__INIT;

    d.id = id;
    d.file_num = file_num;
    fr.union_case = HBB__FILE_RESPONSE__UNION_DONE;
    fr.done = &d;
    send_response(x, &fr);
}

static void send_confirm(struct hxfer *x, int id, int file_num, int skip,
                         uint64_t from)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__FileAction fa;
    Hbb__FileTransferSendConfirmRequest c;

    hd_files_confirm(&fa, &c, id, file_num, skip, from);
    m.union_case = HBB__MESSAGE__UNION_FILE_ACTION;
    m.file_action = &fa;
    x->io.send(x->io.ud, &m);
}

/* "~" and "~/..." are the home directory of the host's user (os_home). */
static int expand(const char *in, char *out, size_t cap)
{
    char buf[1024];
    const char *home = os_home(buf, sizeof(buf)) == 0 ? buf : NULL;
    int n;

    if (in == NULL || in[0] == '\0')
        return -EINVAL;
    if (in[0] == '~' && (in[1] == '\0' || in[1] == '/') && home != NULL)
        n = snprintf(out, cap, "%s%s", home, in + 1);
    else
        n = snprintf(out, cap, "%s", in);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* ---- listings ---------------------------------------------------------- */

/*
 * Directory scans run on libuv's thread pool, not the loop (100000 files
 * take a while, and video and the other sessions must not wait).
 */
enum scan_kind { SCAN_LIST, SCAN_ALL, SCAN_SEND };

struct scan {
    uv_work_t w;
    struct hxfer *x;
    enum scan_kind kind;
    int id, hidden, r;
    unsigned seq;
    char path[4096];
    struct hd_file_list list; /* SCAN_ALL, SCAN_SEND */
    Hbb__FileDirectory dir;   /* SCAN_LIST */
};

static void scan_work(uv_work_t *w)
{
    struct scan *sc = w->data;

    if (sc->kind == SCAN_LIST)
        sc->r = hd_files_readdir(sc->path, sc->hidden, &sc->dir);
    else
        sc->r = hd_files_scan(sc->path, sc->hidden, &sc->list);
}

static void scan_done(uv_work_t *w, int status);

/* Returns the scan's number, or 0 when it could not start (replied). */
static unsigned start_scan(struct hxfer *x, enum scan_kind kind, int id,
                           const char *path, int hidden)
{
    struct scan *sc = calloc(1, sizeof(*sc));
    int r = -ENOMEM;

    if (sc != NULL && (r = expand(path, sc->path, sizeof(sc->path))) == 0) {
        sc->w.data = sc;
        sc->x = x;
        sc->kind = kind;
        sc->id = id;
        sc->hidden = hidden;
        sc->seq = ++x->seq ? x->seq : ++x->seq; /* never 0 */
        r = uv_queue_work(x->io.loop, &sc->w, scan_work, scan_done);
        if (r == 0) {
            x->scans++;
            return sc->seq;
        }
    }
    free(sc);
    send_error(x, id, 0, "%s: %s", path ? path : "", hd_strerror(r));
    return 0;
}

static void reply_listing(struct hxfer *x, struct scan *sc)
{
    Hbb__FileResponse fr = HBB__FILE_RESPONSE__INIT;

    sc->dir.id = sc->id;
    fr.union_case = HBB__FILE_RESPONSE__UNION_DIR;
    fr.dir = &sc->dir;
    if (send_response(x, &fr) != 0) /* larger than a message may be */
        send_error(x, sc->id, 0, "%s: the listing is too large", sc->path);
}

static void reply_all_files(struct hxfer *x, struct scan *sc)
{
    Hbb__FileResponse fr = HBB__FILE_RESPONSE__INIT;
    Hbb__FileDirectory dir = HBB__FILE_DIRECTORY__INIT;
    Hbb__FileEntry *ev = NULL, **pv = NULL;
    const struct hd_file_list *l = &sc->list;

    if (l->n > 0 && ((ev = calloc(l->n, sizeof(*ev))) == NULL ||
                     (pv = calloc(l->n, sizeof(*pv))) == NULL)) {
        send_error(x, sc->id, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l->n; i++) {
        hbb__file_entry__init(&ev[i]);
        ev[i].entry_type = HBB__FILE_TYPE__File;
        ev[i].name = l->v[i].name;
        ev[i].size = l->v[i].size;
        ev[i].modified_time = l->v[i].mtime;
        pv[i] = &ev[i];
    }
    dir.id = sc->id;
    dir.path = sc->path;
    dir.entries = pv;
    dir.n_entries = l->n;
    fr.union_case = HBB__FILE_RESPONSE__UNION_DIR;
    fr.dir = &dir;
    if (send_response(x, &fr) != 0)
        send_error(x, sc->id, 0, "%s: the list of files is too large",
                   sc->path);
out:
    free(ev);
    free(pv);
}

/* ---- downloads --------------------------------------------------------- */

static void rjob_end(struct rjob *j)
{
    if (j->fd >= 0)
        close(j->fd);
    hd_files_free(&j->files);
    memset(j, 0, sizeof(*j));
    j->fd = -1;
}

static void on_pump(uv_timer_t *t);

static void pump_start(struct hxfer *x)
{
    if (!x->pumping) {
        uv_timer_start(&x->timer, on_pump, PUMP_MS, PUMP_MS);
        x->pumping = 1;
    }
}

/* Open file j->i and announce it (digest); then wait for the confirm. */
static int rjob_open(struct hxfer *x, struct rjob *j)
{
    Hbb__FileResponse fr = HBB__FILE_RESPONSE__INIT;
    Hbb__FileTransferDigest d = HBB__FILE_TRANSFER_DIGEST__INIT;
    const struct hd_file *f = &j->files.v[j->i];
    char path[4200];
    uint64_t size = 0, mtime = 0;

    if (hd_files_join(j->base, f->name, path, sizeof(path)) != 0 ||
        (j->fd = hd_files_open_send(path, &size, &mtime)) < 0) {
        send_error(x, j->id, (int)j->i, "%s: %s", path,
                   hd_strerror(j->fd < 0 ? j->fd : -EINVAL));
        j->fd = -1;
        return -1;
    }
    j->blk = 0;
    j->wait = 1;
    j->left = size;
    d.id = j->id;
    d.file_num = (int)j->i;
    d.last_modified = mtime;
    d.file_size = size;
    fr.union_case = HBB__FILE_RESPONSE__UNION_DIGEST;
    fr.digest = &d;
    send_response(x, &fr);
    return 0;
}

/* The next file, or done. */
static void rjob_next(struct hxfer *x, struct rjob *j)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    j->i++;
    if (j->i >= j->files.n) {
        send_done(x, j->id, (int)j->files.n);
        hd_info(MOD, "%s: sent %zu file(s), %llu bytes", x->io.peer, j->files.n,
                (unsigned long long)j->bytes);
        rjob_end(j);
    } else if (rjob_open(x, j) != 0) {
        rjob_end(j);
    }
}

static struct rjob *rjob_find(struct hxfer *x, int id)
{
    for (int i = 0; i < HXFER_JOBS; i++)
        if (x->r[i].used && x->r[i].id == id)
            return &x->r[i];
    return NULL;
}

static void on_send(struct hxfer *x, const Hbb__FileTransferSendRequest *s)
{
    struct rjob *j = NULL;

    for (int i = 0; i < HXFER_JOBS && j == NULL; i++)
        if (!x->r[i].used)
            j = &x->r[i];
    if (j == NULL || rjob_find(x, s->id) != NULL) {
        send_error(x, s->id, 0, "too many transfers at once");
        return;
    }
    /* the job waits for its scan (see send_scanned) */
    j->used = 1;
    j->id = s->id;
    j->fd = -1;
    j->wait = 1;
    j->i = s->file_num > 0 ? (size_t)s->file_num : 0;
    j->scanning = start_scan(x, SCAN_SEND, s->id, s->path, s->include_hidden);
    if (j->scanning == 0)
        rjob_end(j);
}

/* The files of a download are known: announce the first. */
static void send_scanned(struct hxfer *x, struct scan *sc)
{
    struct rjob *j = rjob_find(x, sc->id);

    if (j == NULL || j->scanning != sc->seq)
        return; /* cancelled meanwhile (the id may be in use again) */
    j->scanning = 0;
    if (sc->r != 0) {
        send_error(x, sc->id, 0, "%s: %s", sc->path, hd_strerror(sc->r));
        rjob_end(j);
        return;
    }
    j->files = sc->list;
    memset(&sc->list, 0, sizeof(sc->list)); /* the job's now */
    snprintf(j->base, sizeof(j->base), "%s", sc->path);
    hd_info(MOD, "%s: sending %s (%zu file(s), %llu bytes)", x->io.peer,
            j->base, j->files.n, (unsigned long long)j->files.total);
    if (j->i >= j->files.n) {
        j->i = j->files.n; /* nothing (left) to send */
        send_done(x, j->id, (int)j->files.n);
        rjob_end(j);
    } else if (rjob_open(x, j) != 0) {
        rjob_end(j);
    }
}

static void on_confirm(struct hxfer *x,
                       const Hbb__FileTransferSendConfirmRequest *c)
{
    struct rjob *j = rjob_find(x, c->id);

    if (j == NULL || !j->wait || j->scanning || c->file_num != (int)j->i)
        return; /* early, late, or for an upload (ours come the other way) */
    if (c->union_case == HBB__FILE_TRANSFER_SEND_CONFIRM_REQUEST__UNION_SKIP &&
        c->skip) {
        rjob_next(x, j);
        return;
    }
    if (c->union_case ==
            HBB__FILE_TRANSFER_SEND_CONFIRM_REQUEST__UNION_OFFSET_BLK &&
        c->offset_blk > 0) {
        off_t at = (off_t)c->offset_blk * HD_FILE_BLOCK;

        if ((uint64_t)at > j->left || lseek(j->fd, at, SEEK_SET) != at) {
            send_error(x, j->id, (int)j->i, "cannot resume: %s",
                       strerror(errno));
            rjob_end(j);
            return;
        }
        j->blk = c->offset_blk;
        j->left -= (uint64_t)at;
    }
    j->wait = 0;
    pump_start(x);
}

/* Send blocks of the running downloads while the channel has room. */
static void on_pump(uv_timer_t *t)
{
    struct hxfer *x = t->data;
    int busy = 0;

    for (int k = 0; k < HXFER_JOBS; k++) {
        struct rjob *j = &x->r[k];

        for (int b = 0; j->used && !j->wait && b < BLOCKS_PER_RUN &&
                        x->io.backlog(x->io.ud) < HXFER_BACKLOG;
             b++) {
            Hbb__FileResponse fr = HBB__FILE_RESPONSE__INIT;
            Hbb__FileTransferBlock blk;
            uint8_t *zbuf;
            long n = hd_files_next_block(j->fd, &j->left, x->buf, &blk, &zbuf);

            if (n < 0) {
                send_error(x, j->id, (int)j->i, "reading: %s",
                           hd_strerror((int)n));
                rjob_end(j);
                break;
            }
            if (n == 0) {
                rjob_next(x, j);
                continue;
            }
            blk.id = j->id;
            blk.file_num = (int)j->i;
            blk.blk_id = j->blk++;
            fr.union_case = HBB__FILE_RESPONSE__UNION_BLOCK;
            fr.block = &blk;
            send_response(x, &fr);
            free(zbuf);
            j->bytes += (uint64_t)n;
        }
        busy |= j->used && !j->wait;
    }
    if (!busy) {
        uv_timer_stop(&x->timer);
        x->pumping = 0;
    }
}

/* ---- uploads ----------------------------------------------------------- */

static struct wjob *wjob_find(struct hxfer *x, int id)
{
    for (int i = 0; i < HXFER_JOBS; i++)
        if (x->w[i].used && x->w[i].id == id)
            return &x->w[i];
    return NULL;
}

/* Close the file being written: complete -> its real name, else gone. */
static int wjob_close(struct hxfer *x, struct wjob *j)
{
    int ok;

    if (j->cur < 0)
        return 0;
    ok = close(j->fd) == 0 && j->written == j->expect;
    j->fd = -1;
    if (ok &&
        hd_files_commit(j->part, j->final, j->files.v[j->cur].mtime) == 0) {
        j->done++;
        j->cur = -1;
        return 0;
    }
    unlink(j->part);
    send_error(x, j->id, (int)j->cur, "%s: %llu of %llu bytes written",
               j->final, (unsigned long long)j->written,
               (unsigned long long)j->expect);
    j->cur = -1;
    return -1;
}

/* Drop upload j.  keep: it broke off (the viewer went away, stopped or
 * cancelled it): the part of the file being written stays for the next
 * upload of that file to resume; else (bad data) it is removed. */
static void wjob_end(struct hxfer *x, struct wjob *j, int keep)
{
    if (j->cur >= 0 && keep &&
        hd_files_keep_part(j->fd, j->part, j->written,
                           j->files.v[j->cur].mtime))
        hd_info(MOD, "%s: %s: %llu of %llu bytes kept to resume", x->io.peer,
                j->part, (unsigned long long)j->written,
                (unsigned long long)j->expect);
    else if (j->cur >= 0 && !keep) {
        close(j->fd);
        unlink(j->part);
    }
    hd_files_free(&j->files);
    memset(j, 0, sizeof(*j));
    j->fd = -1;
    j->cur = -1;
    (void)x;
}

static void on_receive(struct hxfer *x,
                       const Hbb__FileTransferReceiveRequest *q)
{
    struct wjob *j = NULL;
    char path[4200];
    int r;

    for (int i = 0; i < HXFER_JOBS && j == NULL; i++)
        if (!x->w[i].used)
            j = &x->w[i];
    if (j == NULL || wjob_find(x, q->id) != NULL) {
        send_error(x, q->id, 0, "too many transfers at once");
        return;
    }
    if ((r = expand(q->path, j->base, sizeof(j->base))) != 0 ||
        q->n_files > HD_FILES_MAX) {
        send_error(x, q->id, 0, "bad destination or too many files");
        return;
    }
    j->fd = -1;
    j->cur = -1;
    for (size_t i = 0; i < q->n_files; i++) {
        const Hbb__FileEntry *e = q->files[i];
        struct hd_file *f;

        if (e == NULL || e->name == NULL ||
            hd_files_join(j->base, e->name, path, sizeof(path)) != 0) {
            send_error(x, q->id, (int)i, "refused file name \"%s\"",
                       e && e->name ? e->name : "");
            hd_files_free(&j->files);
            return;
        }
        if (j->files.n == j->files.cap) {
            size_t cap = j->files.cap ? j->files.cap * 2 : 16;

            if ((f = realloc(j->files.v, cap * sizeof(*f))) == NULL)
                goto nomem;
            j->files.v = f;
            j->files.cap = cap;
        }
        f = &j->files.v[j->files.n];
        if ((f->name = strdup(e->name)) == NULL)
            goto nomem;
        f->size = e->size;
        f->mtime = e->modified_time;
        j->files.n++;
        j->files.total += e->size;
    }
    j->used = 1;
    j->id = q->id;
    hd_info(MOD, "%s: receiving %zu file(s), %llu bytes, into %s", x->io.peer,
            j->files.n, (unsigned long long)j->files.total, j->base);
    return;
nomem:
    hd_files_free(&j->files);
    send_error(x, q->id, 0, "out of memory");
}

/* The viewer announces file d->file_num of an upload. */
static void on_digest(struct hxfer *x, const Hbb__FileTransferDigest *d)
{
    struct wjob *j = wjob_find(x, d->id);
    int fn = d->file_num;
    uint64_t at = 0;

    if (j == NULL || !d->is_upload)
        return;
    if (wjob_close(x, j) != 0 || fn < 0 || (size_t)fn >= j->files.n) {
        if (fn < 0 || (size_t)fn >= j->files.n)
            send_error(x, j->id, fn, "no such file in the transfer");
        wjob_end(x, j, 0);
        return;
    }
    hd_files_join(j->base, j->files.v[fn].name, j->final, sizeof(j->final));
    hd_files_part(j->final, j->part, sizeof(j->part));
    j->files.v[fn].mtime = d->last_modified;
    if (hd_files_same(j->final, d->file_size, d->last_modified)) {
        send_confirm(x, j->id, fn, 1, 0); /* the same file is here */
        j->done++;
        return;
    }
    if ((j->fd = hd_files_create_part(j->base, j->files.v[fn].name, j->part,
                                      d->file_size, d->last_modified, &at)) <
        0) {
        send_error(x, j->id, fn, "%s: %s", j->final, hd_strerror(j->fd));
        j->fd = -1;
        wjob_end(x, j, 0);
        return;
    }
    if (at > 0)
        hd_info(MOD, "%s: %s: resuming after %llu of %llu bytes", x->io.peer,
                j->final, (unsigned long long)at,
                (unsigned long long)d->file_size);
    j->cur = fn;
    j->written = at;
    j->expect = d->file_size;
    send_confirm(x, j->id, fn, 0, at);
}

static void on_block(struct hxfer *x, const Hbb__FileTransferBlock *b)
{
    struct wjob *j = wjob_find(x, b->id);
    size_t n = 0;
    int r;

    if (j == NULL)
        return;
    if (j->cur < 0 || b->file_num != j->cur) {
        send_error(x, j->id, b->file_num, "a block for a file not open");
        wjob_end(x, j, 0);
        return;
    }
    if ((r = hd_file_block_unpack(b, x->buf, &n)) != 0 ||
        j->written + n > j->expect) {
        send_error(x, j->id, b->file_num, "%s",
                   r != 0 ? "a broken block" : "more data than announced");
        wjob_end(x, j, 0);
        return;
    }
    if ((r = hd_files_write(j->fd, x->buf, n)) != 0) {
        send_error(x, j->id, b->file_num, "%s: %s", j->final, hd_strerror(r));
        wjob_end(x, j, 0);
        return;
    }
    j->written += n;
    j->bytes += n;
}

static void on_upload_done(struct hxfer *x, const Hbb__FileTransferDone *d)
{
    struct wjob *j = wjob_find(x, d->id);

    if (j == NULL)
        return;
    if (wjob_close(x, j) == 0) {
        hd_info(MOD, "%s: received %zu file(s) (%llu bytes) into %s",
                x->io.peer, j->done, (unsigned long long)j->bytes, j->base);
        send_done(x, j->id, (int)j->done);
    }
    wjob_end(x, j, 0);
}

/* ---- entry points ------------------------------------------------------ */

void hxfer_hello(struct hxfer *x, const char *dir, int hidden)
{
    struct stat st;
    char path[4096];

    if (dir == NULL || dir[0] == '\0' || expand(dir, path, sizeof(path)) != 0 ||
        stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        dir = "~";
    start_scan(x, SCAN_LIST, 0, dir, hidden);
}

void hxfer_action(struct hxfer *x, const Hbb__FileAction *a)
{
    switch (a->union_case) {
    case HBB__FILE_ACTION__UNION_READ_DIR:
        start_scan(x, SCAN_LIST, a->read_dir->id, a->read_dir->path,
                   a->read_dir->include_hidden);
        break;
    case HBB__FILE_ACTION__UNION_ALL_FILES:
        start_scan(x, SCAN_ALL, a->all_files->id, a->all_files->path,
                   a->all_files->include_hidden);
        break;
    case HBB__FILE_ACTION__UNION_SEND:
        on_send(x, a->send);
        break;
    case HBB__FILE_ACTION__UNION_SEND_CONFIRM:
        on_confirm(x, a->send_confirm);
        break;
    case HBB__FILE_ACTION__UNION_RECEIVE:
        on_receive(x, a->receive);
        break;
    case HBB__FILE_ACTION__UNION_CANCEL: {
        struct rjob *r = rjob_find(x, a->cancel->id);
        struct wjob *w = wjob_find(x, a->cancel->id);

        if (r != NULL)
            rjob_end(r);
        if (w != NULL)
            wjob_end(x, w, 1);
        break;
    }
    case HBB__FILE_ACTION__UNION__NOT_SET:
        break;
    default:
        send_error(x, 0, 0, "file action %d is not offered by this host",
                   (int)a->union_case);
        break;
    }
}

void hxfer_response(struct hxfer *x, const Hbb__FileResponse *r)
{
    switch (r->union_case) {
    case HBB__FILE_RESPONSE__UNION_DIGEST:
        on_digest(x, r->digest);
        break;
    case HBB__FILE_RESPONSE__UNION_BLOCK:
        on_block(x, r->block);
        break;
    case HBB__FILE_RESPONSE__UNION_DONE:
        on_upload_done(x, r->done);
        break;
    case HBB__FILE_RESPONSE__UNION_ERROR: { /* the viewer gives up */
        struct wjob *w = wjob_find(x, r->error->id);
        struct rjob *j = rjob_find(x, r->error->id);

        if (w != NULL)
            wjob_end(x, w, 1);
        if (j != NULL)
            rjob_end(j);
        break;
    }
    default:
        break;
    }
}

int hxfer_new(const struct hxfer_io *io, struct hxfer **out)
{
    struct hxfer *x = calloc(1, sizeof(*x));
    int r;

    *out = NULL;
    if (x == NULL)
        return -ENOMEM;
    x->io = *io;
    for (int i = 0; i < HXFER_JOBS; i++) {
        x->r[i].fd = x->w[i].fd = -1;
        x->w[i].cur = -1;
    }
    if ((r = uv_timer_init(io->loop, &x->timer)) != 0) {
        free(x);
        return r;
    }
    x->timer.data = x;
    *out = x;
    return 0;
}

/* x goes once its timer is closed and no scan will come back to it. */
static void on_timer_closed(uv_handle_t *h)
{
    struct hxfer *x = h->data;

    x->timer_closed = 1;
    if (x->scans == 0)
        free(x);
}

static void scan_done(uv_work_t *w, int status)
{
    struct scan *sc = w->data;
    struct hxfer *x = sc->x;

    x->scans--;
    if (!x->dead && status == 0) {
        if (sc->kind == SCAN_SEND) {
            send_scanned(x, sc);
        } else if (sc->r != 0) {
            send_error(x, sc->id, 0, "%s: %s", sc->path, hd_strerror(sc->r));
        } else if (sc->kind == SCAN_LIST) {
            reply_listing(x, sc);
        } else {
            reply_all_files(x, sc);
        }
    }
    if (sc->kind == SCAN_LIST && sc->r == 0)
        hd_files_readdir_free(&sc->dir);
    hd_files_free(&sc->list);
    free(sc);
    if (x->dead && x->timer_closed && x->scans == 0)
        free(x);
}

void hxfer_free(struct hxfer *x)
{
    if (x == NULL)
        return;
    x->dead = 1;
    for (int i = 0; i < HXFER_JOBS; i++) {
        if (x->r[i].used)
            rjob_end(&x->r[i]);
        if (x->w[i].used)
            wjob_end(x, &x->w[i], 1);
    }
    hd_net_close((uv_handle_t *)&x->timer, on_timer_closed);
}

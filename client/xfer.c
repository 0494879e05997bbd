/*
 * File transfer from the command line.  See xfer.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "client/xfer.h"
#include "err.h"
#include "files.h"
#include "log.h"
#include "net.h"

#define JOB            VXFER_JOB
#define PUMP_MS        2
#define BLOCKS_PER_RUN 32
#define MAX_BACKLOG    (2u * 1024 * 1024)

struct vxfer {
    struct vxfer_opts o;
    struct vxfer_io io;
    uv_timer_t timer;
    int pumping, ended;
    char local[4096]; /* get: where the copy goes; put: what is copied */
    char rname[4096]; /* put: basename of what is copied */
    struct hd_file_list files;
    /* get: the file being written */
    long cur;
    int fd;
    char final[4200], part[4300];
    uint64_t written, expect, mtime;
    /* put: the file being sent */
    size_t i;
    int sending;
    uint32_t blk;
    uint64_t left; /* of it, as announced */
    size_t nfiles, skipped;
    uint64_t bytes;   /* moved over the session */
    uint64_t already; /* of the total: skipped files and resumed parts */
    int tty;          /* stderr is a terminal: a progress line */
    double shown;     /* seconds after t0 of the last progress line */
    struct timespec t0;
    uint8_t buf[HD_FILE_BLOCK];
};

static void send_action(struct vxfer *x, Hbb__FileAction *fa)
{
    Hbb__Message m = HBB__MESSAGE__INIT;

    m.union_case = HBB__MESSAGE__UNION_FILE_ACTION;
    m.file_action = fa;
    x->io.send(x->io.ud, &m);
}

static void send_response(struct vxfer *x, Hbb__FileResponse *fr)
{
    Hbb__Message m = HBB__MESSAGE__INIT;

    m.union_case = HBB__MESSAGE__UNION_FILE_RESPONSE;
    m.file_response = fr;
    x->io.send(x->io.ud, &m);
}

/* The file being written is abandoned: with keep (the transfer broke off)
 * its part stays for the next run to resume, else it is removed. */
static void close_part(struct vxfer *x, int keep)
{
    if (x->cur < 0)
        return;
    if (keep && hd_files_keep_part(x->fd, x->part, x->written, x->mtime))
        hd_info("xfer",
                "%s: %llu of %llu bytes kept in %s: the same command "
                "resumes it",
                x->final, (unsigned long long)x->written,
                (unsigned long long)x->expect, x->part);
    else if (!keep) {
        close(x->fd);
        unlink(x->part);
    }
    x->cur = -1;
    x->fd = -1;
}

static double since_start(const struct vxfer *x)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - x->t0.tv_sec) +
           (double)(t1.tv_nsec - x->t0.tv_nsec) / 1e9;
}

/* n bytes as "812 B", "1.5 KiB", "23.4 MiB", "1.2 GiB" */
static const char *human(double n, char *buf, size_t cap)
{
    static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;

    while (n >= 1024 && u < 4) {
        n /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", n, unit[u]);
    return buf;
}

/*
 * To io.progress each time; on a terminal, at most 4 times a second (and
 * once more with last): one
 * line, rewritten in place, with the share of the bytes done, the rate of
 * this run and the time left at that rate.  Nothing when stderr is not a
 * terminal (a log file, a pipe).
 */
static void progress(struct vxfer *x, int last)
{
    uint64_t total = x->files.total, done = x->already + x->bytes;
    double t = since_start(x), rate;
    char a[32], b[32], c[32], left[32];

    if (x->io.progress != NULL)
        x->io.progress(x->io.ud, done > total ? total : done, total);
    if (!x->tty || (!last && t - x->shown < 0.25))
        return;
    x->shown = t;
    if (done > total)
        done = total;
    rate = t > 0 ? (double)x->bytes / t : 0;
    if (rate > 0 && !last) {
        double eta = (double)(total - done) / rate;

        snprintf(left, sizeof(left), ", %d:%02d left", (int)(eta / 60),
                 (int)eta % 60);
    } else {
        left[0] = '\0';
    }
    fprintf(stderr, "\rxfer: %3d%% %s of %s, %s/s%s   %s",
            total ? (int)(done * 100 / total) : 100,
            human((double)done, a, sizeof(a)),
            human((double)total, b, sizeof(b)), human(rate, c, sizeof(c)), left,
            last ? "\n" : "");
    fflush(stderr);
}

static void end(struct vxfer *x, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void end(struct vxfer *x, int status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;

    if (x->ended)
        return;
    x->ended = 1;
    close_part(x, 0);
    if (x->pumping) {
        uv_timer_stop(&x->timer);
        x->pumping = 0;
    }
    msg[0] = '\0';
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    }
    x->io.end(x->io.ud, status, status != 0 ? msg : NULL);
}

static void summary(struct vxfer *x)
{
    double secs = since_start(x);

    progress(x, 1);
    printf("xfer: files=%zu skipped=%zu bytes=%llu seconds=%.2f\n", x->nfiles,
           x->skipped, (unsigned long long)x->bytes, secs);
    fflush(stdout);
}

/* The last part of a path (trailing slashes ignored) into out. */
static int base_name(const char *path, char *out, size_t cap)
{
    size_t n = strlen(path), s;

    while (n > 1 && path[n - 1] == '/')
        n--;
    for (s = n; s > 0 && path[s - 1] != '/'; s--)
        ;
    if (n - s == 0 || n - s >= cap ||
        (n - s == 2 && path[s] == '.' && path[s + 1] == '.') ||
        (n - s == 1 && path[s] == '.'))
        return -EINVAL;
    memcpy(out, path + s, n - s);
    out[n - s] = '\0';
    return 0;
}

/* ---- ls ----------------------------------------------------------------- */

static int by_entry_name(const void *a, const void *b)
{
    const Hbb__FileEntry *x = *(Hbb__FileEntry *const *)a,
                         *y = *(Hbb__FileEntry *const *)b;

    return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

static void on_listing(struct vxfer *x, const Hbb__FileDirectory *d)
{
    if (x->o.on_dir != NULL) {
        x->o.on_dir(x->o.dir_ud, d);
        return;
    }
    /* by name (the host lists in its directory's order) */
    qsort(d->entries, d->n_entries, sizeof(d->entries[0]), by_entry_name);
    for (size_t i = 0; i < d->n_entries; i++) {
        const Hbb__FileEntry *e = d->entries[i];
        int dir = e->entry_type == HBB__FILE_TYPE__Dir ||
                  e->entry_type == HBB__FILE_TYPE__DirLink ||
                  e->entry_type == HBB__FILE_TYPE__DirDrive;

        /* the host's names, printed raw, could drive the terminal */
        if (e->name != NULL)
            hd_log_printable(e->name, strlen(e->name));
        printf("%c %12llu %s%s\n", dir ? 'd' : 'f', (unsigned long long)e->size,
               e->name ? e->name : "", dir ? "/" : "");
    }
    fflush(stdout);
    end(x, 0, NULL);
}

/* ---- get ---------------------------------------------------------------- */

/* The host's list of files to come. */
static void on_file_list(struct vxfer *x, const Hbb__FileDirectory *d)
{
    Hbb__FileAction fa = HBB__FILE_ACTION__INIT;
    Hbb__FileTransferSendRequest sr = HBB__FILE_TRANSFER_SEND_REQUEST__INIT;
    char path[4200];

    for (size_t i = 0; i < d->n_entries && i < HD_FILES_MAX; i++) {
        const Hbb__FileEntry *e = d->entries[i];
        struct hd_file *f;

        if (e->name == NULL ||
            hd_files_join(x->local, e->name, path, sizeof(path)) != 0) {
            end(x, 1, "the host sent a file name that would leave %s: \"%s\"",
                x->local, e->name ? e->name : "");
            return;
        }
        if (x->files.n == x->files.cap) {
            size_t cap = x->files.cap ? x->files.cap * 2 : 16;

            if ((f = realloc(x->files.v, cap * sizeof(*f))) == NULL) {
                end(x, 1, "out of memory");
                return;
            }
            x->files.v = f;
            x->files.cap = cap;
        }
        f = &x->files.v[x->files.n];
        if ((f->name = strdup(e->name)) == NULL) {
            end(x, 1, "out of memory");
            return;
        }
        f->size = e->size;
        f->mtime = e->modified_time;
        x->files.n++;
        x->files.total += e->size;
    }
    hd_info("xfer", "%zu file(s), %llu bytes to fetch into %s", x->files.n,
            (unsigned long long)x->files.total, x->local);
    sr.id = JOB;
    sr.path = (char *)x->o.path;
    fa.union_case = HBB__FILE_ACTION__UNION_SEND;
    fa.send = &sr;
    send_action(x, &fa);
}

/* The file being written is complete: its real name and time. */
static int finish_file(struct vxfer *x)
{
    int r;

    if (x->cur < 0)
        return 0;
    if (close(x->fd) != 0 || x->written != x->expect) {
        x->fd = -1;
        unlink(x->part);
        x->cur = -1;
        end(x, 1, "%s: %llu of %llu bytes arrived", x->final,
            (unsigned long long)x->written, (unsigned long long)x->expect);
        return -1;
    }
    x->fd = -1;
    x->cur = -1;
    if ((r = hd_files_commit(x->part, x->final, x->mtime)) != 0) {
        end(x, 1, "%s: %s", x->final, hd_strerror(r));
        return -1;
    }
    x->nfiles++;
    return 0;
}

static void confirm(struct vxfer *x, int file_num, int skip, uint64_t from)
{
    Hbb__FileAction fa;
    Hbb__FileTransferSendConfirmRequest c;

    hd_files_confirm(&fa, &c, JOB, file_num, skip, from);
    send_action(x, &fa);
}

/* The host is about to send file d->file_num. */
static void on_get_digest(struct vxfer *x, const Hbb__FileTransferDigest *d)
{
    int k = d->file_num;
    uint64_t at = 0;

    if (finish_file(x) != 0)
        return;
    if (k < 0 || (size_t)k >= x->files.n) {
        end(x, 1, "the host announced file %d of %zu", k, x->files.n);
        return;
    }
    /* the host scans again for the transfer: a tree that changed since
     * the list would put one file's bytes under another's name */
    if (d->file_size != x->files.v[k].size ||
        d->last_modified != x->files.v[k].mtime) {
        end(x, 1,
            "files changed on the host while fetching them (file %d); "
            "run again",
            k);
        return;
    }
    hd_files_join(x->local, x->files.v[k].name, x->final, sizeof(x->final));
    if (hd_files_same(x->final, d->file_size, d->last_modified)) {
        x->skipped++;
        x->already += d->file_size;
        confirm(x, k, 1, 0);
        return;
    }
    hd_files_part(x->final, x->part, sizeof(x->part));
    if ((x->fd = hd_files_create_part(x->local, x->files.v[k].name, x->part,
                                      d->file_size, d->last_modified, &at)) <
        0) {
        end(x, 1, "%s: %s", x->final, hd_strerror(x->fd));
        x->fd = -1;
        return;
    }
    if (at > 0)
        hd_info("xfer", "%s: resuming after %llu of %llu bytes", x->final,
                (unsigned long long)at, (unsigned long long)d->file_size);
    x->cur = k;
    x->written = at;
    x->already += at;
    x->expect = d->file_size;
    x->mtime = d->last_modified;
    confirm(x, k, 0, at);
}

static void on_get_block(struct vxfer *x, const Hbb__FileTransferBlock *b)
{
    size_t n = 0;
    int r;

    if (x->cur < 0 || b->file_num != x->cur) {
        end(x, 1, "the host sent a block of a file not announced");
        return;
    }
    if (hd_file_block_unpack(b, x->buf, &n) != 0 ||
        x->written + n > x->expect) {
        end(x, 1, "the host sent a broken block of %s", x->final);
        return;
    }
    if ((r = hd_files_write(x->fd, x->buf, n)) != 0) {
        end(x, 1, "%s: %s", x->final, hd_strerror(r));
        return;
    }
    x->written += n;
    x->bytes += n;
    progress(x, 0);
}

/* ---- put ---------------------------------------------------------------- */

static void on_pump(uv_timer_t *t);

/* Announce file x->i (digest), or say we are done. */
static void put_next(struct vxfer *x)
{
    Hbb__FileResponse fr = HBB__FILE_RESPONSE__INIT;
    Hbb__FileTransferDigest d = HBB__FILE_TRANSFER_DIGEST__INIT;
    Hbb__FileTransferDone done = HBB__FILE_TRANSFER_DONE__INIT;

    if (x->i >= x->files.n) {
        done.id = JOB;
        done.file_num = (int)x->files.n;
        fr.union_case = HBB__FILE_RESPONSE__UNION_DONE;
        fr.done = &done;
        send_response(x, &fr); /* the host answers with done */
        return;
    }
    d.id = JOB;
    d.file_num = (int)x->i;
    d.last_modified = x->files.v[x->i].mtime;
    d.file_size = x->files.v[x->i].size;
    d.is_upload = 1;
    fr.union_case = HBB__FILE_RESPONSE__UNION_DIGEST;
    fr.digest = &d;
    send_response(x, &fr);
}

/* The host wants file c->file_num (or has it already). */
static void on_put_confirm(struct vxfer *x,
                           const Hbb__FileTransferSendConfirmRequest *c)
{
    char path[4200];
    uint64_t mtime;

    if (c->id != JOB || x->i >= x->files.n || c->file_num != (int)x->i ||
        x->sending)
        return; /* not the file we announced (or none left) */
    if (c->union_case == HBB__FILE_TRANSFER_SEND_CONFIRM_REQUEST__UNION_SKIP &&
        c->skip) {
        x->skipped++;
        x->already += x->files.v[x->i].size;
        x->i++;
        put_next(x);
        return;
    }
    hd_files_join(x->local, x->files.v[x->i].name, path, sizeof(path));
    if ((x->fd = hd_files_open_send(path, &x->left, &mtime)) < 0) {
        end(x, 1, "%s: %s", path, hd_strerror(x->fd));
        x->fd = -1;
        return;
    }
    /* as announced: a file that grew since is cut there, one that shrank
     * arrives incomplete and the host says so */
    x->left = x->files.v[x->i].size;
    x->blk = 0;
    /* the host keeps what an interrupted upload brought: from there */
    if (c->union_case ==
            HBB__FILE_TRANSFER_SEND_CONFIRM_REQUEST__UNION_OFFSET_BLK &&
        c->offset_blk > 0) {
        uint64_t at = (uint64_t)c->offset_blk * HD_FILE_BLOCK;

        if (at >= x->left || lseek(x->fd, (off_t)at, SEEK_SET) != (off_t)at) {
            end(x, 1, "%s: the host asked to resume at %llu of %llu bytes",
                path, (unsigned long long)at, (unsigned long long)x->left);
            return;
        }
        hd_info("xfer", "%s: the host has %llu of %llu bytes: resuming", path,
                (unsigned long long)at, (unsigned long long)x->left);
        x->left -= at;
        x->already += at;
        x->blk = c->offset_blk;
    }
    x->sending = 1;
    if (!x->pumping) {
        uv_timer_start(&x->timer, on_pump, PUMP_MS, PUMP_MS);
        x->pumping = 1;
    }
}

static void on_pump(uv_timer_t *t)
{
    struct vxfer *x = t->data;

    for (int b = 0; x->sending && b < BLOCKS_PER_RUN &&
                    x->io.backlog(x->io.ud) < MAX_BACKLOG;
         b++) {
        Hbb__FileResponse fr = HBB__FILE_RESPONSE__INIT;
        Hbb__FileTransferBlock blk;
        uint8_t *zbuf;
        long n = hd_files_next_block(x->fd, &x->left, x->buf, &blk, &zbuf);

        if (n < 0) {
            end(x, 1, "reading: %s", hd_strerror((int)n));
            return;
        }
        if (n == 0) {
            close(x->fd);
            x->fd = -1;
            x->sending = 0;
            x->nfiles++;
            x->i++;
            put_next(x);
            break;
        }
        blk.id = JOB;
        blk.file_num = (int)x->i;
        blk.blk_id = x->blk++;
        fr.union_case = HBB__FILE_RESPONSE__UNION_BLOCK;
        fr.block = &blk;
        send_response(x, &fr);
        free(zbuf);
        x->bytes += (uint64_t)n;
    }
    progress(x, 0);
    if (!x->sending && x->pumping) {
        uv_timer_stop(&x->timer);
        x->pumping = 0;
    }
}

/* ---- entry points ---------------------------------------------------------
 */

void vxfer_start(struct vxfer *x)
{
    Hbb__FileAction fa = HBB__FILE_ACTION__INIT;
    Hbb__ReadDir rd = HBB__READ_DIR__INIT;
    Hbb__ReadAllFiles af = HBB__READ_ALL_FILES__INIT;
    Hbb__FileTransferReceiveRequest rq =
        HBB__FILE_TRANSFER_RECEIVE_REQUEST__INIT;
    Hbb__FileEntry *ev = NULL, **pv = NULL;
    char name[1024];
    size_t made = 0;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &x->t0);
    switch (x->o.mode) {
    case VXFER_LS:
        rd.id = JOB; /* not the host's first listing (id 0) */
        rd.path = (char *)x->o.path;
        fa.union_case = HBB__FILE_ACTION__UNION_READ_DIR;
        fa.read_dir = &rd;
        send_action(x, &fa);
        return;
    case VXFER_GET:
        if (base_name(x->o.path, name, sizeof(name)) != 0 ||
            hd_files_join(x->o.to, name, x->local, sizeof(x->local)) != 0) {
            end(x, 1, "%s: not a file or directory name", x->o.path);
            return;
        }
        af.id = JOB;
        af.path = (char *)x->o.path;
        fa.union_case = HBB__FILE_ACTION__UNION_ALL_FILES;
        fa.all_files = &af;
        send_action(x, &fa);
        return;
    case VXFER_PUT:
        break;
    }
    snprintf(x->local, sizeof(x->local), "%s", x->o.path);
    if (base_name(x->o.path, x->rname, sizeof(x->rname)) != 0) {
        end(x, 1, "%s: not a file or directory name", x->o.path);
        return;
    }
    if ((r = hd_files_scan(x->local, 0, &x->files)) != 0) {
        end(x, 1, "%s: %s", x->local, hd_strerror(r));
        return;
    }
    /* on the host: TO/basename/name (the name is "" for a single file) */
    if (x->files.n > 0 && ((ev = calloc(x->files.n, sizeof(*ev))) == NULL ||
                           (pv = calloc(x->files.n, sizeof(*pv))) == NULL)) {
        end(x, 1, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < x->files.n; i++, made++) {
        const char *rel = x->files.v[i].name;
        size_t len = strlen(x->rname) + 1 + strlen(rel) + 1;

        hbb__file_entry__init(&ev[i]);
        if ((ev[i].name = malloc(len)) == NULL) {
            end(x, 1, "out of memory");
            goto out;
        }
        snprintf(ev[i].name, len, "%s%s%s", x->rname, rel[0] ? "/" : "", rel);
        ev[i].entry_type = HBB__FILE_TYPE__File;
        ev[i].size = x->files.v[i].size;
        ev[i].modified_time = x->files.v[i].mtime;
        pv[i] = &ev[i];
    }
    rq.id = JOB;
    rq.path = (char *)x->o.to;
    rq.files = pv;
    rq.n_files = x->files.n;
    rq.total_size = x->files.total;
    fa.union_case = HBB__FILE_ACTION__UNION_RECEIVE;
    fa.receive = &rq;
    send_action(x, &fa);
    hd_info("xfer", "%zu file(s), %llu bytes to send to %s", x->files.n,
            (unsigned long long)x->files.total, x->o.to);
    x->i = 0;
    put_next(x);
out:
    for (size_t i = 0; i < made; i++)
        free(ev[i].name);
    free(ev);
    free(pv);
}

static void on_response(struct vxfer *x, const Hbb__FileResponse *r)
{
    switch (r->union_case) {
    case HBB__FILE_RESPONSE__UNION_DIR:
        if (x->o.mode == VXFER_LS && r->dir->id == JOB)
            on_listing(x, r->dir);
        else if (x->o.mode == VXFER_GET && r->dir->id == JOB && x->files.n == 0)
            on_file_list(x, r->dir);
        break;
    case HBB__FILE_RESPONSE__UNION_DIGEST:
        if (x->o.mode == VXFER_GET && r->digest->id == JOB)
            on_get_digest(x, r->digest);
        break;
    case HBB__FILE_RESPONSE__UNION_BLOCK:
        if (x->o.mode == VXFER_GET && r->block->id == JOB)
            on_get_block(x, r->block);
        break;
    case HBB__FILE_RESPONSE__UNION_DONE:
        if (r->done->id != JOB || x->o.mode == VXFER_LS)
            break;
        if (x->o.mode == VXFER_GET && finish_file(x) != 0)
            break;
        summary(x);
        end(x, 0, NULL);
        break;
    case HBB__FILE_RESPONSE__UNION_ERROR:
        end(x, 1, "the host says: %s",
            r->error->error ? r->error->error : "error");
        break;
    default:
        break;
    }
}

void vxfer_on_message(struct vxfer *x, const Hbb__Message *m)
{
    if (x->ended)
        return;
    if (m->union_case == HBB__MESSAGE__UNION_FILE_RESPONSE)
        on_response(x, m->file_response);
    else if (m->union_case == HBB__MESSAGE__UNION_FILE_ACTION &&
             x->o.mode == VXFER_PUT &&
             m->file_action->union_case == HBB__FILE_ACTION__UNION_SEND_CONFIRM)
        on_put_confirm(x, m->file_action->send_confirm);
}

int vxfer_new(const struct vxfer_opts *o, const struct vxfer_io *io,
              struct vxfer **out)
{
    struct vxfer *x = calloc(1, sizeof(*x));
    int r;

    *out = NULL;
    if (x == NULL)
        return -ENOMEM;
    x->o = *o;
    if (x->o.to == NULL)
        x->o.to = ".";
    x->io = *io;
    x->cur = -1;
    x->fd = -1;
    x->tty = isatty(STDERR_FILENO);
    if ((r = uv_timer_init(io->loop, &x->timer)) != 0) {
        free(x);
        return r;
    }
    x->timer.data = x;
    *out = x;
    return 0;
}

/* Freed once libuv is done with the timer: a caller up the stack (a send
 * that failed and ended the session) may still look at x until then. */
static void on_timer_closed(uv_handle_t *h)
{
    struct vxfer *x = h->data;

    hd_files_free(&x->files);
    free(x);
}

void vxfer_free(struct vxfer *x)
{
    if (x == NULL)
        return;
    x->ended = 1;
    x->sending = 0;
    close_part(x, 1); /* broke off: kept to resume */
    if (x->fd >= 0)
        close(x->fd);
    x->fd = -1;
    hd_net_close((uv_handle_t *)&x->timer, on_timer_closed);
}

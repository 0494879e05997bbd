/*
 * Dropped files to the host, one file transfer session at a time.  See
 * drop.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/drop.h"
#include "client/xfer.h"
#include "err.h"
#include "log.h"

/* A transfer: a path sent to the host's folder to (put), or a host's
 * path received into our folder to (get). */
struct job {
    enum vxfer_mode mode;
    char *path, *to;
};

struct drop {
    struct sess_config cfg; /* the desktop session's, xfer set per drop */
    char to[1024];
    struct vxfer_opts xo;
    struct job queue[DROP_QUEUE_MAX];
    int n_queued;
    struct sess *s; /* the running transfer, or NULL */
    struct job job; /* its job */
    int cancelled;

    pthread_mutex_t mu; /* the session thread's report: */
    int ended, status;
    char end_msg[320];

    char msg[320];
    int failed;
};

static void on_ready(int w, int h, void *ud)
{
    (void)w;
    (void)h;
    (void)ud;
}

static void on_end(int status, const char *msg, void *ud)
{
    struct drop *d = ud;

    pthread_mutex_lock(&d->mu);
    d->ended = 1;
    d->status = status;
    snprintf(d->end_msg, sizeof(d->end_msg), "%s", msg ? msg : "");
    pthread_mutex_unlock(&d->mu);
}

int drop_new(const struct sess_config *base, const char *to, struct drop **out)
{
    struct drop *d = calloc(1, sizeof(*d));

    *out = NULL;
    if (d == NULL)
        return -ENOMEM;
    d->cfg = *base;
    snprintf(d->to, sizeof(d->to), "%s",
             to != NULL && to[0] ? to : "~/Downloads");
    pthread_mutex_init(&d->mu, NULL);
    *out = d;
    return 0;
}

const char *drop_folder(const struct drop *d)
{
    return d->to;
}

const struct sess_config *drop_config(const struct drop *d)
{
    return &d->cfg;
}

static void job_free(struct job *j)
{
    free(j->path);
    free(j->to);
    memset(j, 0, sizeof(*j));
}

static const char *last_part(const char *path)
{
    const char *p = strrchr(path, '/');

    return p != NULL && p[1] ? p + 1 : path;
}

/* Start the next queued drop.  Returns 0 or the session's error. */
static int start_next(struct drop *d)
{
    static const struct sess_cb cb = { .on_ready = on_ready, .on_end = on_end };
    int r;

    if (d->s != NULL || d->n_queued == 0)
        return 0;
    d->job = d->queue[0];
    memmove(d->queue, d->queue + 1,
            sizeof(d->queue[0]) * (size_t)--d->n_queued);
    d->xo = (struct vxfer_opts){ .mode = d->job.mode,
                                 .path = d->job.path,
                                 .to = d->job.to };
    d->cfg.xfer = &d->xo;
    d->cfg.no_audio = 1;
    d->cfg.no_clipboard = 1;
    d->ended = 0;
    d->cancelled = 0;
    if (d->job.mode == VXFER_GET)
        hd_info("drop", "receiving the host's %s into %s", d->job.path,
                d->job.to);
    else
        hd_info("drop", "sending %s to the host's %s", d->job.path, d->job.to);
    if ((r = sess_new(&d->cfg, NULL, &cb, d, &d->s)) != 0 ||
        (r = sess_start(d->s)) != 0) {
        snprintf(d->msg, sizeof(d->msg), "cannot %s %.200s: %s",
                 d->job.mode == VXFER_GET ? "receive" : "send",
                 last_part(d->job.path), hd_strerror(r));
        d->failed = 1;
        hd_warn("drop", "%s", d->msg);
        sess_free(d->s);
        d->s = NULL;
        job_free(&d->job);
        return r;
    }
    return 0;
}

static int queue(struct drop *d, enum vxfer_mode mode, const char *path,
                 const char *to)
{
    struct job j = { mode, strdup(path), strdup(to) };

    if (d->n_queued == DROP_QUEUE_MAX) {
        job_free(&j);
        return -ENOSPC;
    }
    if (j.path == NULL || j.to == NULL) {
        job_free(&j);
        return -ENOMEM;
    }
    d->queue[d->n_queued++] = j;
    return start_next(d);
}

int drop_add(struct drop *d, const char *path)
{
    return queue(d, VXFER_PUT, path, d->to);
}

int drop_get(struct drop *d, const char *path, const char *to)
{
    return queue(d, VXFER_GET, path, to);
}

void drop_poll(struct drop *d, struct drop_status *st)
{
    struct sess_stats ss;
    int ended, status, get = d->job.mode == VXFER_GET;
    char end_msg[320];

    pthread_mutex_lock(&d->mu);
    ended = d->ended;
    status = d->status;
    snprintf(end_msg, sizeof(end_msg), "%s", d->end_msg);
    pthread_mutex_unlock(&d->mu);
    if (d->s != NULL && ended) {
        sess_get_stats(d->s, &ss);
        d->failed = status != 0 || d->cancelled;
        if (d->cancelled)
            snprintf(d->msg, sizeof(d->msg), "%.200s: cancelled (%s)",
                     last_part(d->job.path),
                     get ? "receive it again to fetch the rest"
                         : "drop it again to send the rest");
        else if (status != 0)
            snprintf(d->msg, sizeof(d->msg), "%.100s not %s: %.200s",
                     last_part(d->job.path), get ? "received" : "sent",
                     end_msg[0] ? end_msg : "failed");
        else
            snprintf(d->msg, sizeof(d->msg), "%.140s %s %.140s",
                     last_part(d->job.path),
                     get ? "received into" : "sent to the host's", d->job.to);
        hd_info("drop", "%s (%llu bytes)", d->msg,
                (unsigned long long)ss.xfer_done);
        sess_free(d->s);
        d->s = NULL;
        job_free(&d->job);
        start_next(d);
    }
    memset(st, 0, sizeof(*st));
    st->active = d->s != NULL;
    if (st->active) {
        sess_get_stats(d->s, &ss);
        snprintf(st->name, sizeof(st->name), "%s", last_part(d->job.path));
        st->receiving = get;
        st->done = ss.xfer_done;
        st->total = ss.xfer_total;
    }
    st->queued = d->n_queued;
    snprintf(st->msg, sizeof(st->msg), "%s", d->msg);
    st->failed = d->failed;
}

void drop_cancel(struct drop *d)
{
    while (d->n_queued > 0)
        job_free(&d->queue[--d->n_queued]);
    if (d->s != NULL) {
        d->cancelled = 1;
        sess_stop(d->s);
    }
}

void drop_free(struct drop *d)
{
    if (d == NULL)
        return;
    drop_cancel(d);
    sess_free(d->s);
    job_free(&d->job);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/*
 * The clipboard framework: picks a backend from the table below (order of
 * preference), allocates its private state, and carries what the desktop
 * copies to the loop thread.  See clipboard.h.  c->out and c->last are
 * shared between the loop thread and a backend's thread, under c->mu;
 * the struct is freed in the uv_async close callback, after the backend
 * has closed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clip.h"
#include "host/clipboard/clipboard.h"
#include "log.h"

#define MOD "clipboard"

static const struct clip_driver *const drivers[] = {
#ifdef _WIN32
    &clip_driver_win32,
#else
    &clip_driver_wlr,
    &clip_driver_x11,
#endif
    &clip_driver_fake,
};
#define N_DRIVERS (sizeof(drivers) / sizeof(drivers[0]))

static const char *const names[N_DRIVERS + 1] = {
#ifdef _WIN32
    "win32",
#else
    "wlr", "x11",
#endif
    "fake", NULL
};

const char *const *clip_list(void)
{
    return names;
}

const char *clip_name(const struct hclip *c)
{
    return c->driver->name;
}

/* A NUL-terminated copy of t[0..n), or NULL. */
static char *dup_text(const char *t, size_t n)
{
    char *p = malloc(n + 1);

    if (p != NULL) {
        memcpy(p, t, n);
        p[n] = '\0';
    }
    return p;
}

/* Under c->mu: is t the text last passed either way?  If not, it is now. */
static int echo(struct hclip *c, const char *t, size_t n)
{
    char *p;

    if (c->last != NULL && c->last_n == n && memcmp(c->last, t, n) == 0)
        return 1;
    if ((p = dup_text(t, n)) != NULL) {
        free(c->last);
        c->last = p;
        c->last_n = n;
    }
    return 0;
}

void clip_report(struct hclip *c, const char *text, size_t n)
{
    char *p;

    if (n == 0)
        return;
    if (n > HD_CLIP_MAX) {
        hd_warn(MOD, "copied text of more than %u bytes not passed on",
                HD_CLIP_MAX);
        return;
    }
    if ((p = dup_text(text, n)) == NULL)
        return;
    uv_mutex_lock(&c->mu);
    if (echo(c, text, n)) {
        uv_mutex_unlock(&c->mu);
        free(p);
        return;
    }
    free(c->out);
    c->out = p;
    c->out_n = n;
    uv_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
    hd_debug(MOD, "copied on the desktop: %zu bytes", n);
}

/* On the loop thread: text copied on the desktop. */
static void on_async(uv_async_t *a)
{
    struct hclip *c = a->data;
    char *t;
    size_t n;

    uv_mutex_lock(&c->mu);
    t = c->out;
    n = c->out_n;
    c->out = NULL;
    uv_mutex_unlock(&c->mu);
    if (t != NULL)
        c->cb(c->ud, t, n);
    free(t);
}

static void free_all(struct hclip *c)
{
    uv_mutex_destroy(&c->mu);
    free(c->out);
    free(c->last);
    free(c->priv);
    free(c);
}

static void on_async_closed(uv_handle_t *h)
{
    free_all(h->data);
}

static int open_one(uv_loop_t *loop, const struct clip_driver *d,
                    const struct clip_opts *opts, hclip_text_cb cb, void *ud,
                    struct hclip **out)
{
    struct hclip *c = calloc(1, sizeof(*c));
    int r;

    if (c == NULL)
        return -ENOMEM;
    if ((r = uv_mutex_init(&c->mu)) != 0) {
        free(c);
        return r;
    }
    c->driver = d;
    c->cb = cb;
    c->ud = ud;
    if (d->priv_size > 0 && (c->priv = calloc(1, d->priv_size)) == NULL) {
        free_all(c);
        return -ENOMEM;
    }
    if ((r = uv_async_init(loop, &c->async, on_async)) != 0) {
        free_all(c);
        return r;
    }
    c->async.data = c;
    if ((r = d->open(c, opts)) != 0) {
        uv_close((uv_handle_t *)&c->async, on_async_closed); /* frees c */
        return r;
    }
    *out = c;
    return 0;
}

int clip_start(uv_loop_t *loop, const char *name, const struct clip_opts *opts,
               hclip_text_cb cb, void *ud, struct hclip **out)
{
    static const struct clip_opts defaults;
    int autopick = name == NULL || name[0] == '\0' || !strcmp(name, "auto");
    int r = -ENOENT;
    size_t i;

    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    for (i = 0; i < N_DRIVERS; i++) {
        if (autopick) {
            if (drivers[i] == &clip_driver_fake)
                continue;
            if ((r = open_one(loop, drivers[i], opts, cb, ud, out)) == 0)
                break;
        } else if (strcmp(name, drivers[i]->name) == 0) {
            return open_one(loop, drivers[i], opts, cb, ud, out);
        }
    }
    if (r == -ENOENT && !autopick)
        hd_error(MOD, "unknown clipboard backend '%s' (try %s, fake)", name,
                 names[0]);
    return r;
}

void clip_set(struct hclip *c, const char *text, size_t n)
{
    char *p;

    if (c == NULL || (p = dup_text(text, n)) == NULL)
        return;
    uv_mutex_lock(&c->mu);
    echo(c, text, n);
    uv_mutex_unlock(&c->mu);
    hd_debug(MOD, "pasted from a viewer: %zu bytes", n);
    c->driver->set(c, p, n);
}

void clip_stop(struct hclip *c)
{
    if (c == NULL)
        return;
    c->driver->close(c);
    if (!uv_is_closing((uv_handle_t *)&c->async))
        uv_close((uv_handle_t *)&c->async, on_async_closed);
}

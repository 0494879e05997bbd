/*
 * The session window's clipboard.  See winclip.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>

#include "client/winclip.h"
#include "clip.h"
#include "log.h"

struct wclip {
    int on;
    pthread_mutex_t mu; /* guards in */
    char *in;           /* from the host, not yet on our clipboard */
    char *last;         /* last taken from or given to the host */
};

int wclip_new(int on, struct wclip **out)
{
    struct wclip *c = calloc(1, sizeof(*c));

    *out = c;
    if (c == NULL)
        return -ENOMEM;
    c->on = on;
    pthread_mutex_init(&c->mu, NULL);
    return 0;
}

int wclip_post(struct wclip *c, const char *text, size_t n)
{
    char *p = malloc(n + 1);
    int post;

    if (p == NULL)
        return 0;
    memcpy(p, text, n);
    p[n] = '\0';
    pthread_mutex_lock(&c->mu);
    post = c->in == NULL;
    free(c->in);
    c->in = p;
    pthread_mutex_unlock(&c->mu);
    return post;
}

static void remember(struct wclip *c, const char *t)
{
    char *p = strdup(t);

    if (p == NULL)
        return;
    free(c->last);
    c->last = p;
}

void wclip_from_host(struct wclip *c)
{
    char *t;

    pthread_mutex_lock(&c->mu);
    t = c->in;
    c->in = NULL;
    pthread_mutex_unlock(&c->mu);
    if (t == NULL || !c->on)
        goto out;
    if (SDL_SetClipboardText(t) != 0)
        hd_warn("window", "cannot set the clipboard: %s", SDL_GetError());
    else
        remember(c, t);
out:
    free(t);
}

void wclip_to_host(struct wclip *c, struct sess *s)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Clipboard cb;
    uint8_t *buf;
    char *t;
    size_t n;
    int r;

    if (!c->on || s == NULL || !SDL_HasClipboardText())
        return;
    if ((t = SDL_GetClipboardText()) == NULL)
        return;
    n = strlen(t);
    if (n == 0 || (c->last != NULL && strcmp(t, c->last) == 0))
        goto out;
    remember(c, t);
    if ((r = hd_clip_pack(t, n, &cb, &buf)) != 0) {
        hd_warn("window", "clipboard of %zu bytes not sent: %s", n,
                r == -EMSGSIZE ? "too large" : "out of memory");
        goto out;
    }
    m.union_case = HBB__MESSAGE__UNION_CLIPBOARD;
    m.clipboard = &cb;
    if (sess_send(s, &m) != 0)
        hd_warn("window", "clipboard of %zu bytes not sent: queue full", n);
    free(buf);
out:
    SDL_free(t);
}

void wclip_free(struct wclip *c)
{
    if (c == NULL)
        return;
    free(c->in);
    free(c->last);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/*
 * X11 CLIPBOARD <-> viewers, on a thread with its own XCB connection.
 * See clipboard.h.  ICCCM section 2 is the protocol: ConvertSelection and
 * SelectionNotify to read, SelectionRequest answered with ChangeProperty
 * and a SelectionNotify event to serve, INCR for large transfers (read
 * only: what we serve fits one request, BIG-REQUESTS allows megabytes).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xcb/xcb.h>
#include <xcb/xfixes.h>

#include "clip.h"
#include "host/clipboard.h"
#include "log.h"

#define MOD "clipboard"

/* An INCR transfer that stalls this long is given up. */
#define INCR_TIMEOUT_MS 5000

enum { A_CLIPBOARD, A_UTF8, A_TARGETS, A_TEXT, A_INCR, A_PROP, A_N };
static const char *const atom_names[A_N] = { "CLIPBOARD", "UTF8_STRING",
                                             "TARGETS",   "TEXT",
                                             "INCR",      "HOMEDESK_CLIP" };

struct hclip {
    uv_loop_t *loop;
    uv_async_t async;
    hclip_text_cb cb;
    void *ud;
    pthread_t thread;
    int thread_ok;
    int wake[2]; /* pipe: the loop wakes the thread */

    pthread_mutex_t mu; /* guards what follows */
    char *in;           /* from a viewer, for the thread to own */
    size_t in_n;
    int in_set, quit;
    char *out; /* read from X, for the loop */
    size_t out_n;
    int out_set;

    /* the thread's (and clip_start's before it runs) */
    xcb_connection_t *c;
    xcb_window_t win;
    xcb_atom_t a[A_N];
    uint8_t xfixes_event;
    size_t max_req; /* bytes one request may carry */
    char *owned;    /* what we serve while we own the selection */
    size_t owned_n;
    char *last; /* the text last passed either way (no echo) */
    size_t last_n;
    xcb_atom_t asking; /* target of our ConvertSelection under way */
    char *incr;        /* an INCR transfer under way (NULL: none) */
    size_t incr_n;
    int incr_big;         /* it went past HD_CLIP_MAX: read, then dropped */
    xcb_atom_t incr_type; /* the type of its pieces (STRING: Latin-1) */
    uint64_t incr_ms;     /* when its last piece came */
};

/* Milliseconds on libuv's monotonic clock (any thread). */
static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
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

static int same_as_last(const struct hclip *c, const char *t, size_t n)
{
    return c->last != NULL && c->last_n == n && memcmp(c->last, t, n) == 0;
}

static void remember(struct hclip *c, const char *t, size_t n)
{
    char *p = dup_text(t, n);

    if (p == NULL)
        return;
    free(c->last);
    c->last = p;
    c->last_n = n;
}

/* ---- reading: another client owns the selection ------------------------ */

/* Latin-1 (STRING) to UTF-8: a malloc'd, NUL-terminated copy. */
static char *latin1_to_utf8(const char *t, size_t n, size_t *out_n)
{
    char *o = malloc(2 * n + 1), *q = o;

    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];

        if (ch < 0x80) {
            *q++ = (char)ch;
        } else {
            *q++ = (char)(0xc0 | ch >> 6);
            *q++ = (char)(0x80 | (ch & 0x3f));
        }
    }
    *q = '\0';
    *out_n = (size_t)(q - o);
    return o;
}

/* UTF-8 to Latin-1 for a STRING request (what Latin-1 lacks becomes '?'). */
static char *utf8_to_latin1(const char *t, size_t n, size_t *out_n)
{
    char *o = malloc(n + 1), *q = o;
    size_t i = 0;

    if (o == NULL)
        return NULL;
    while (i < n) {
        unsigned char ch = (unsigned char)t[i];

        if (ch < 0x80) {
            *q++ = (char)ch;
            i++;
        } else if ((ch & 0xe0) == 0xc0 && i + 1 < n && ch <= 0xc3) {
            *q++ = (char)((ch & 0x1f) << 6 | ((unsigned char)t[i + 1] & 0x3f));
            i += 2;
        } else { /* a character beyond Latin-1, or a stray byte */
            *q++ = '?';
            for (i++; i < n && ((unsigned char)t[i] & 0xc0) == 0x80; i++)
                ;
        }
    }
    *q = '\0';
    *out_n = (size_t)(q - o);
    return o;
}

static void deliver_utf8(struct hclip *c, const char *t, size_t n);

/* Hand text read from X to the loop (thread); STRING is Latin-1. */
static void deliver(struct hclip *c, const char *t, size_t n, xcb_atom_t type)
{
    char *u;
    size_t un;

    n = strnlen(t, n); /* C strings from here on */
    if (type != XCB_ATOM_STRING) {
        deliver_utf8(c, t, n);
        return;
    }
    if ((u = latin1_to_utf8(t, n, &un)) != NULL)
        deliver_utf8(c, u, un);
    free(u);
}

static void deliver_utf8(struct hclip *c, const char *t, size_t n)
{
    char *p;

    if (n == 0 || same_as_last(c, t, n))
        return;
    remember(c, t, n);
    if ((p = dup_text(t, n)) == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    free(c->out);
    c->out = p;
    c->out_n = n;
    c->out_set = 1;
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
    hd_debug(MOD, "copied on the desktop: %zu bytes", n);
}

static void incr_end(struct hclip *c)
{
    free(c->incr);
    c->incr = NULL;
    c->incr_n = 0;
    c->incr_big = 0;
}

static void ask(struct hclip *c, xcb_atom_t target)
{
    c->asking = target;
    xcb_convert_selection(c->c, c->win, c->a[A_CLIPBOARD], target, c->a[A_PROP],
                          XCB_CURRENT_TIME);
    xcb_flush(c->c);
}

/*
 * Read (and delete) our property.  Returns the reply (free it) or NULL;
 * *big is set when it holds more than HD_CLIP_MAX bytes.
 */
static xcb_get_property_reply_t *read_prop(struct hclip *c, int *big)
{
    xcb_get_property_reply_t *r;

    *big = 0;
    r = xcb_get_property_reply(c->c,
                               xcb_get_property(c->c, 1, c->win, c->a[A_PROP],
                                                XCB_GET_PROPERTY_TYPE_ANY, 0,
                                                HD_CLIP_MAX / 4 + 1),
                               NULL);
    if (r != NULL && r->bytes_after > 0) {
        *big = 1; /* not deleted by the read: delete it */
        xcb_delete_property(c->c, c->win, c->a[A_PROP]);
        xcb_flush(c->c);
    }
    return r;
}

static void on_selection_notify(struct hclip *c,
                                const xcb_selection_notify_event_t *e)
{
    xcb_get_property_reply_t *r;
    int big, len;

    if (e->selection != c->a[A_CLIPBOARD] || e->requestor != c->win)
        return;
    if (e->property == XCB_NONE) {
        /* the owner has no UTF8_STRING: try Latin-1 text */
        if (c->asking == c->a[A_UTF8])
            ask(c, XCB_ATOM_STRING);
        else
            c->asking = XCB_NONE;
        return;
    }
    c->asking = XCB_NONE;
    incr_end(c);
    if ((r = read_prop(c, &big)) == NULL)
        return;
    if (r->type == c->a[A_INCR]) {
        /* the owner sends pieces now that the property is gone */
        c->incr = malloc(1);
        c->incr_ms = now_ms();
    } else if (big) {
        hd_warn(MOD, "copied text of more than %u bytes not passed on",
                HD_CLIP_MAX);
    } else if (r->format == 8 && (len = xcb_get_property_value_length(r)) > 0) {
        deliver(c, xcb_get_property_value(r), (size_t)len, r->type);
    }
    free(r);
}

/* A piece of an INCR transfer (a zero-length one ends it). */
static void on_property(struct hclip *c, const xcb_property_notify_event_t *e)
{
    xcb_get_property_reply_t *r;
    int big, len;
    char *p;

    if (c->incr == NULL || e->window != c->win || e->atom != c->a[A_PROP] ||
        e->state != XCB_PROPERTY_NEW_VALUE)
        return;
    if ((r = read_prop(c, &big)) == NULL)
        return;
    c->incr_ms = now_ms();
    if (r->type != XCB_NONE)
        c->incr_type = r->type;
    len = xcb_get_property_value_length(r);
    if (len <= 0 && !big) {
        if (c->incr_big)
            hd_warn(MOD, "copied text of more than %u bytes not passed on",
                    HD_CLIP_MAX);
        else if (c->incr_n > 0)
            deliver(c, c->incr, c->incr_n, c->incr_type);
        incr_end(c);
    } else if (big || c->incr_n + (size_t)len > HD_CLIP_MAX) {
        c->incr_big = 1; /* keep reading (the owner waits), drop at the end */
    } else if (!c->incr_big) {
        if ((p = realloc(c->incr, c->incr_n + (size_t)len + 1)) == NULL) {
            c->incr_big = 1;
        } else {
            memcpy(p + c->incr_n, xcb_get_property_value(r), (size_t)len);
            c->incr = p;
            c->incr_n += (size_t)len;
        }
    }
    free(r);
}

/* ---- serving: we own the selection ------------------------------------- */

static void own(struct hclip *c, char *t, size_t n)
{
    free(c->owned);
    c->owned = t;
    c->owned_n = n;
    remember(c, t, n);
    xcb_set_selection_owner(c->c, c->win, c->a[A_CLIPBOARD], XCB_CURRENT_TIME);
    xcb_flush(c->c);
    hd_debug(MOD, "pasted from a viewer: %zu bytes", n);
}

/* Our text into the requestor's property: UTF-8, or Latin-1 for STRING. */
static void serve_text(struct hclip *c, xcb_window_t w, xcb_atom_t prop,
                       xcb_atom_t target)
{
    size_t ln;
    char *l;

    if (target != XCB_ATOM_STRING) {
        xcb_change_property(c->c, XCB_PROP_MODE_REPLACE, w, prop, c->a[A_UTF8],
                            8, (uint32_t)c->owned_n, c->owned);
        return;
    }
    l = utf8_to_latin1(c->owned, c->owned_n, &ln);
    xcb_change_property(c->c, XCB_PROP_MODE_REPLACE, w, prop, XCB_ATOM_STRING,
                        8, l ? (uint32_t)ln : 0, l ? l : "");
    free(l);
}

static void on_request(struct hclip *c, const xcb_selection_request_event_t *e)
{
    xcb_selection_notify_event_t n;
    xcb_atom_t prop = e->property != XCB_NONE ? e->property : e->target;
    xcb_atom_t targets[] = { c->a[A_TARGETS], c->a[A_UTF8], XCB_ATOM_STRING,
                             c->a[A_TEXT] };

    memset(&n, 0, sizeof(n));
    n.response_type = XCB_SELECTION_NOTIFY;
    n.time = e->time;
    n.requestor = e->requestor;
    n.selection = e->selection;
    n.target = e->target;
    n.property = XCB_NONE; /* refused unless set below */
    if (e->selection == c->a[A_CLIPBOARD] && c->owned != NULL) {
        if (e->target == c->a[A_TARGETS]) {
            xcb_change_property(c->c, XCB_PROP_MODE_REPLACE, e->requestor, prop,
                                XCB_ATOM_ATOM, 32,
                                sizeof(targets) / sizeof(targets[0]), targets);
            n.property = prop;
        } else if (e->target == c->a[A_UTF8] || e->target == XCB_ATOM_STRING ||
                   e->target == c->a[A_TEXT]) {
            if (c->owned_n + 64 > c->max_req) {
                hd_warn(MOD,
                        "paste of %zu bytes refused: more than one X "
                        "request carries",
                        c->owned_n);
            } else {
                serve_text(c, e->requestor, prop, e->target);
                n.property = prop;
            }
        }
    }
    xcb_send_event(c->c, 0, e->requestor, XCB_EVENT_MASK_NO_EVENT,
                   (const char *)&n);
    xcb_flush(c->c);
}

/* ---- the thread -------------------------------------------------------- */

static void handle(struct hclip *c, xcb_generic_event_t *ev)
{
    uint8_t type = ev->response_type & 0x7f;

    if (type == c->xfixes_event + XCB_XFIXES_SELECTION_NOTIFY) {
        const xcb_xfixes_selection_notify_event_t *e = (const void *)ev;

        /* a new owner (not us): read what it offers */
        if (e->selection == c->a[A_CLIPBOARD] && e->owner != c->win &&
            e->owner != XCB_NONE) {
            incr_end(c);
            ask(c, c->a[A_UTF8]);
        }
        return;
    }
    switch (type) {
    case XCB_SELECTION_NOTIFY:
        on_selection_notify(c, (const void *)ev);
        break;
    case XCB_PROPERTY_NOTIFY:
        on_property(c, (const void *)ev);
        break;
    case XCB_SELECTION_REQUEST:
        on_request(c, (const void *)ev);
        break;
    case XCB_SELECTION_CLEAR: /* another client took it: it tells us */
        free(c->owned);
        c->owned = NULL;
        c->owned_n = 0;
        break;
    default:
        break;
    }
}

static void *clip_main(void *arg)
{
    struct hclip *c = arg;
    struct pollfd p[2] = { { xcb_get_file_descriptor(c->c), POLLIN, 0 },
                           { c->wake[0], POLLIN, 0 } };
    xcb_generic_event_t *ev;
    char buf[64];

    for (;;) {
        char *in = NULL;
        size_t in_n = 0;
        int quit;

        pthread_mutex_lock(&c->mu);
        quit = c->quit;
        if (c->in_set) {
            in = c->in;
            in_n = c->in_n;
            c->in = NULL;
            c->in_set = 0;
        }
        pthread_mutex_unlock(&c->mu);
        if (quit) {
            free(in);
            break;
        }
        if (in != NULL)
            own(c, in, in_n);
        while ((ev = xcb_poll_for_event(c->c)) != NULL) {
            handle(c, ev);
            free(ev);
        }
        if (xcb_connection_has_error(c->c)) {
            hd_warn(MOD, "X connection lost: clipboard off");
            break;
        }
        if (c->incr != NULL && now_ms() - c->incr_ms > INCR_TIMEOUT_MS) {
            hd_warn(MOD, "a large copy stalled: not passed on");
            incr_end(c);
        }
        if (poll(p, 2, c->incr != NULL ? 500 : -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN)
            while (read(c->wake[0], buf, sizeof(buf)) > 0)
                ;
    }
    return NULL;
}

static void wake(struct hclip *c)
{
    char b = 1;

    if (write(c->wake[1], &b, 1) < 0) {
        /* full pipe: the thread is awake anyway */
    }
}

/* On the loop thread: text copied on the desktop. */
static void on_async(uv_async_t *a)
{
    struct hclip *c = a->data;
    char *t;
    size_t n;

    pthread_mutex_lock(&c->mu);
    t = c->out_set ? c->out : NULL;
    n = c->out_n;
    c->out = NULL;
    c->out_set = 0;
    pthread_mutex_unlock(&c->mu);
    if (t != NULL)
        c->cb(c->ud, t, n);
    free(t);
}

/* Connect, check XFixes, make our window and atoms. */
static int x_open(struct hclip *c, const char *display)
{
    const xcb_query_extension_reply_t *ext;
    xcb_xfixes_query_version_reply_t *v;
    xcb_intern_atom_cookie_t ck[A_N];
    xcb_screen_t *scr;
    uint32_t mask = XCB_EVENT_MASK_PROPERTY_CHANGE;
    int i;

    c->c = xcb_connect(display, NULL);
    if (xcb_connection_has_error(c->c)) {
        hd_warn(MOD, "cannot open display %s: clipboard off",
                display             ? display
                : getenv("DISPLAY") ? getenv("DISPLAY")
                                    : "(DISPLAY unset)");
        return -ENOENT;
    }
    ext = xcb_get_extension_data(c->c, &xcb_xfixes_id);
    v = ext && ext->present
            ? xcb_xfixes_query_version_reply(
                  c->c, xcb_xfixes_query_version(c->c, 5, 0), NULL)
            : NULL;
    if (v == NULL) {
        hd_warn(MOD, "the X server has no XFixes: clipboard off");
        return -ENOTSUP;
    }
    free(v);
    c->xfixes_event = ext->first_event;
    for (i = 0; i < A_N; i++)
        ck[i] = xcb_intern_atom(c->c, 0, (uint16_t)strlen(atom_names[i]),
                                atom_names[i]);
    for (i = 0; i < A_N; i++) {
        xcb_intern_atom_reply_t *r = xcb_intern_atom_reply(c->c, ck[i], NULL);

        if (r == NULL)
            return -EIO;
        c->a[i] = r->atom;
        free(r);
    }
    scr = xcb_setup_roots_iterator(xcb_get_setup(c->c)).data;
    c->win = xcb_generate_id(c->c);
    xcb_create_window(c->c, 0, c->win, scr->root, 0, 0, 1, 1, 0,
                      XCB_WINDOW_CLASS_INPUT_ONLY, XCB_COPY_FROM_PARENT,
                      XCB_CW_EVENT_MASK, &mask);
    xcb_xfixes_select_selection_input(
        c->c, c->win, c->a[A_CLIPBOARD],
        XCB_XFIXES_SELECTION_EVENT_MASK_SET_SELECTION_OWNER);
    c->max_req = (size_t)xcb_get_maximum_request_length(c->c) * 4;
    xcb_flush(c->c);
    return xcb_connection_has_error(c->c) ? -EIO : 0;
}

static void free_all(struct hclip *c)
{
    if (c->c != NULL)
        xcb_disconnect(c->c);
    if (c->wake[0] >= 0)
        close(c->wake[0]);
    if (c->wake[1] >= 0)
        close(c->wake[1]);
    pthread_mutex_destroy(&c->mu);
    free(c->in);
    free(c->out);
    free(c->owned);
    free(c->last);
    free(c->incr);
    free(c);
}

static void on_async_closed(uv_handle_t *h)
{
    free_all(h->data);
}

int clip_start(uv_loop_t *loop, const char *display, hclip_text_cb cb, void *ud,
               struct hclip **out)
{
    struct hclip *c = calloc(1, sizeof(*c));
    int r;

    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    c->wake[0] = c->wake[1] = -1;
    pthread_mutex_init(&c->mu, NULL);
    c->loop = loop;
    c->cb = cb;
    c->ud = ud;
    if (pipe(c->wake) != 0) {
        c->wake[0] = c->wake[1] = -1;
        free_all(c);
        return -errno;
    }
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(c->wake[i], F_GETFL);

        fcntl(c->wake[i], F_SETFL, fl | O_NONBLOCK);
        fcntl(c->wake[i], F_SETFD, FD_CLOEXEC);
    }
    if ((r = x_open(c, display)) != 0) {
        free_all(c);
        return r;
    }
    if ((r = uv_async_init(loop, &c->async, on_async)) != 0) {
        free_all(c);
        return r;
    }
    c->async.data = c;
    if (pthread_create(&c->thread, NULL, clip_main, c) != 0) {
        uv_close((uv_handle_t *)&c->async, on_async_closed); /* frees c */
        return -EAGAIN;
    }
    c->thread_ok = 1;
    *out = c;
    hd_info(MOD, "sharing the CLIPBOARD selection (text, up to %u bytes)",
            HD_CLIP_MAX);
    return 0;
}

void clip_set(struct hclip *c, const char *text, size_t n)
{
    char *p;

    if (c == NULL || (p = dup_text(text, n)) == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    free(c->in);
    c->in = p;
    c->in_n = n;
    c->in_set = 1;
    pthread_mutex_unlock(&c->mu);
    wake(c);
}

void clip_stop(struct hclip *c)
{
    if (c == NULL)
        return;
    if (c->thread_ok) {
        pthread_mutex_lock(&c->mu);
        c->quit = 1;
        pthread_mutex_unlock(&c->mu);
        wake(c);
        pthread_join(c->thread, NULL);
        c->thread_ok = 0;
    }
    if (!uv_is_closing((uv_handle_t *)&c->async))
        uv_close((uv_handle_t *)&c->async, on_async_closed);
}

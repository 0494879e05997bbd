/*
 * The x11 clipboard backend: the X11 CLIPBOARD selection, on a thread with
 * its own XCB connection to the shared display.  See clipboard.h.
 *
 * When an X client takes the CLIPBOARD selection (XFixes tells us), the
 * thread asks the owner for UTF8_STRING (STRING as a fallback), reads it
 * (also in INCR pieces, as toolkits send large selections) and reports it
 * (clip_report).  Text from a viewer (set) makes the thread the
 * selection's owner; it then answers paste requests (TARGETS,
 * UTF8_STRING, STRING, TEXT) until another client takes the selection.  ICCCM
 * section 2 is the protocol: ConvertSelection and SelectionNotify to read,
 * SelectionRequest answered with ChangeProperty and a SelectionNotify event to
 * serve, INCR for large transfers (read only: what we serve fits one request,
 * BIG-REQUESTS allows megabytes).
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
#include "host/clipboard/clipboard.h"
#include "host/clipboard/mailbox.h"
#include "log.h"

#define MOD "clipboard"

/* An INCR transfer that stalls this long is given up. */
#define INCR_TIMEOUT_MS 5000

enum { A_CLIPBOARD, A_UTF8, A_TARGETS, A_TEXT, A_INCR, A_PROP, A_N };
static const char *const atom_names[A_N] = { "CLIPBOARD", "UTF8_STRING",
                                             "TARGETS",   "TEXT",
                                             "INCR",      "HOMEDESK_CLIP" };

struct xclip {
    struct hclip *hc; /* the framework's */
    pthread_t thread;
    struct clip_mailbox box; /* text from viewers, stop */
    int box_ok;

    /* the thread's (and open's before it runs) */
    xcb_connection_t *c;
    xcb_window_t win;
    xcb_atom_t a[A_N];
    uint8_t xfixes_event;
    size_t max_req; /* bytes one request may carry */
    char *owned;    /* what we serve while we own the selection */
    size_t owned_n;
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

static void deliver_utf8(struct xclip *c, const char *t, size_t n);

/* Hand text read from X to the loop (thread); STRING is Latin-1. */
static void deliver(struct xclip *c, const char *t, size_t n, xcb_atom_t type)
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

static void deliver_utf8(struct xclip *c, const char *t, size_t n)
{
    clip_report(c->hc, t, n);
}

static void incr_end(struct xclip *c)
{
    free(c->incr);
    c->incr = NULL;
    c->incr_n = 0;
    c->incr_big = 0;
}

static void ask(struct xclip *c, xcb_atom_t target)
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
static xcb_get_property_reply_t *read_prop(struct xclip *c, int *big)
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

static void on_selection_notify(struct xclip *c,
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
static void on_property(struct xclip *c, const xcb_property_notify_event_t *e)
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

static void own(struct xclip *c, char *t, size_t n)
{
    free(c->owned);
    c->owned = t;
    c->owned_n = n;
    xcb_set_selection_owner(c->c, c->win, c->a[A_CLIPBOARD], XCB_CURRENT_TIME);
    xcb_flush(c->c);
}

/* Our text into the requestor's property: UTF-8, or Latin-1 for STRING. */
static void serve_text(struct xclip *c, xcb_window_t w, xcb_atom_t prop,
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

static void on_request(struct xclip *c, const xcb_selection_request_event_t *e)
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

static void handle(struct xclip *c, xcb_generic_event_t *ev)
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
    struct xclip *c = arg;
    struct pollfd p[2] = { { xcb_get_file_descriptor(c->c), POLLIN, 0 },
                           { c->box.wake[0], POLLIN, 0 } };
    xcb_generic_event_t *ev;

    for (;;) {
        char *in = NULL;
        size_t in_n = 0;

        if (clip_mailbox_take(&c->box, &in, &in_n)) {
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
    }
    return NULL;
}

/* Connect, check XFixes, make our window and atoms. */
static int x_open(struct xclip *c, const char *display)
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

/* Release what open acquired (c itself is the framework's). */
static void free_all(struct xclip *c)
{
    if (c->c != NULL)
        xcb_disconnect(c->c);
    if (c->box_ok)
        clip_mailbox_cleanup(&c->box);
    free(c->owned);
    free(c->incr);
}

static int x11_open(struct hclip *hc, const struct clip_opts *opts)
{
    struct xclip *c = hc->priv;
    int r;

    c->hc = hc;
    if (opts->display == NULL) {
        hd_debug(MOD, "no X display to share: x11 clipboard not used");
        return -ENODEV;
    }
    if ((r = clip_mailbox_init(&c->box)) != 0)
        return r;
    c->box_ok = 1;
    if ((r = x_open(c, opts->display)) != 0) {
        free_all(c);
        return r;
    }
    if (pthread_create(&c->thread, NULL, clip_main, c) != 0) {
        free_all(c);
        return -EAGAIN;
    }
    hd_info(MOD, "sharing the CLIPBOARD selection (text, up to %u bytes)",
            HD_CLIP_MAX);
    return 0;
}

static void x11_set(struct hclip *hc, char *text, size_t n)
{
    struct xclip *c = hc->priv;

    clip_mailbox_put(&c->box, text, n);
}

static void x11_close(struct hclip *hc)
{
    struct xclip *c = hc->priv;

    clip_mailbox_quit(&c->box);
    pthread_join(c->thread, NULL);
    free_all(c);
}

const struct clip_driver clip_driver_x11 = {
    .name = "x11",
    .description = "the X11 CLIPBOARD selection (XCB, XFixes)",
    .priv_size = sizeof(struct xclip),
    .open = x11_open,
    .set = x11_set,
    .close = x11_close,
};

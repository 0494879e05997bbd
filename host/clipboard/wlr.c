/*
 * The wlr clipboard backend: the Wayland clipboard of a wlroots
 * compositor (sway, river, Hyprland, ...) through wlr-data-control
 * (zwlr_data_control_manager_v1), on a thread with its own Wayland
 * connection.  See clipboard.h.
 *
 * A data-control device on the first seat sees every new selection
 * without keyboard focus: its `selection` event names an offer whose
 * MIME types came just before (`data_offer` + `offer` events).  When one
 * is text, the thread asks for it (receive into a pipe, read to EOF within
 * READ_TIMEOUT_MS) and reports it (clip_report).  Text from a viewer
 * (set) becomes a data source of ours offering the usual text types,
 * made the selection; its `send` events are answered by writing the text
 * into the given fd, until `cancelled` (another client copied).
 *
 * Our own selection comes back as an offer too: while a source of ours is
 * the selection (the compositor cancels it before it announces another
 * one), offers are not read: reading from ourselves on this thread would
 * wait for a `send` only this thread can answer.
 *
 * Only the regular clipboard is shared, not the primary selection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wayland-client.h>

#include "clip.h"
#include "host/clipboard/clipboard.h"
#include "host/clipboard/mailbox.h"
#include "log.h"
#include "wlr-data-control-unstable-v1.h"

#define MOD "clipboard-wlr"

/* A copying client that does not finish writing in this time is given
 * up; so is a pasting client that stops reading. */
#define READ_TIMEOUT_MS  3000
#define WRITE_TIMEOUT_MS 3000

/* What we offer, best first (all served as UTF-8). */
static const char *const serve_types[] = { "text/plain;charset=utf-8",
                                           "UTF8_STRING", "text/plain", "TEXT",
                                           "STRING" };

/* An offer being described by its `offer` events: the best text type. */
struct offer {
    int rank; /* index into serve_types of the best type seen; -1 none */
};

struct wclip {
    struct hclip *hc; /* the framework's */
    pthread_t thread;
    struct clip_mailbox box; /* text from viewers, stop */
    int box_ok;

    /* the thread's (and open's before it runs) */
    struct wl_display *d;
    struct wl_registry *reg;
    struct wl_seat *seat;
    struct zwlr_data_control_manager_v1 *mgr;
    struct zwlr_data_control_device_v1 *dev;
    struct zwlr_data_control_source_v1 *src; /* ours, while the selection */
    char *owned;                             /* what src serves */
    size_t owned_n;
    int failed;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- reading what another client copied --------------------------------- */

/* Read fd to EOF (at most HD_CLIP_MAX + 1 bytes, within READ_TIMEOUT_MS);
 * malloc'd text and *n, or NULL. */
static char *read_all(int fd, size_t *n)
{
    uint64_t end = now_ms() + READ_TIMEOUT_MS;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap), *p;
    ssize_t got;

    while (buf != NULL) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        uint64_t now = now_ms();

        if (now >= end || poll(&pf, 1, (int)(end - now)) <= 0) {
            hd_warn(MOD,
                    "the copying program did not hand over its text in "
                    "%d s: not shared",
                    READ_TIMEOUT_MS / 1000);
            break;
        }
        if (len == cap) {
            if (cap > HD_CLIP_MAX || (p = realloc(buf, cap * 2)) == NULL)
                break;
            buf = p;
            cap *= 2;
        }
        got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got < 0)
                break;
            *n = len;
            return buf;
        }
        len += (size_t)got;
    }
    free(buf);
    return NULL;
}

static void offer_type(void *data, struct zwlr_data_control_offer_v1 *o,
                       const char *mime)
{
    struct offer *of = data;

    (void)o;
    for (int i = 0; i < (int)(sizeof(serve_types) / sizeof(serve_types[0]));
         i++)
        if (strcmp(mime, serve_types[i]) == 0 && (of->rank < 0 || i < of->rank))
            of->rank = i;
}

static const struct zwlr_data_control_offer_v1_listener offer_listener = {
    .offer = offer_type,
};

static void offer_free(struct zwlr_data_control_offer_v1 *o)
{
    free(zwlr_data_control_offer_v1_get_user_data(o));
    zwlr_data_control_offer_v1_destroy(o);
}

static void dev_data_offer(void *data, struct zwlr_data_control_device_v1 *dev,
                           struct zwlr_data_control_offer_v1 *o)
{
    struct offer *of = calloc(1, sizeof(*of));

    (void)data;
    (void)dev;
    if (of == NULL) {
        zwlr_data_control_offer_v1_destroy(o);
        return;
    }
    of->rank = -1;
    zwlr_data_control_offer_v1_add_listener(o, &offer_listener, of);
}

/* A new clipboard selection (o NULL: cleared). */
static void dev_selection(void *data, struct zwlr_data_control_device_v1 *dev,
                          struct zwlr_data_control_offer_v1 *o)
{
    struct wclip *c = data;
    struct offer *of;
    int fds[2];
    char *t;
    size_t n = 0;

    (void)dev;
    if (o == NULL)
        return;
    of = zwlr_data_control_offer_v1_get_user_data(o);
    if (c->src != NULL || of == NULL || of->rank < 0) {
        offer_free(o); /* ours, or no text in it */
        return;
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        offer_free(o);
        return;
    }
    zwlr_data_control_offer_v1_receive(o, serve_types[of->rank], fds[1]);
    close(fds[1]);
    wl_display_flush(c->d);
    t = read_all(fds[0], &n);
    close(fds[0]);
    offer_free(o);
    if (t != NULL) {
        clip_report(c->hc, t, n);
        free(t);
    }
}

static void dev_primary(void *data, struct zwlr_data_control_device_v1 *dev,
                        struct zwlr_data_control_offer_v1 *o)
{
    (void)data;
    (void)dev;
    if (o != NULL)
        offer_free(o); /* the primary selection is not shared */
}

static void dev_finished(void *data, struct zwlr_data_control_device_v1 *dev)
{
    struct wclip *c = data;

    hd_warn(MOD, "the compositor ended clipboard sharing (seat gone)");
    zwlr_data_control_device_v1_destroy(dev);
    c->dev = NULL;
    c->failed = 1;
}

static const struct zwlr_data_control_device_v1_listener dev_listener = {
    .data_offer = dev_data_offer,
    .selection = dev_selection,
    .finished = dev_finished,
    .primary_selection = dev_primary,
};

/* ---- serving what a viewer pasted ---------------------------------------- */

/* A client pastes: write our text into fd (within WRITE_TIMEOUT_MS). */
static void src_send(void *data, struct zwlr_data_control_source_v1 *s,
                     const char *mime, int32_t fd)
{
    struct wclip *c = data;
    uint64_t end = now_ms() + WRITE_TIMEOUT_MS;
    size_t off = 0;
    ssize_t w;

    (void)s;
    (void)mime;
    while (off < c->owned_n) {
        struct pollfd pf = { .fd = fd, .events = POLLOUT };
        uint64_t now = now_ms();

        if (now >= end || poll(&pf, 1, (int)(end - now)) <= 0)
            break;
        w = write(fd, c->owned + off, c->owned_n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (off < c->owned_n)
        hd_warn(MOD,
                "a program pasting our text stopped reading after %zu "
                "of %zu bytes",
                off, c->owned_n);
    close(fd);
}

/* Another client copied: the selection is no longer ours. */
static void src_cancelled(void *data, struct zwlr_data_control_source_v1 *s)
{
    struct wclip *c = data;

    zwlr_data_control_source_v1_destroy(s);
    if (c->src == s) {
        c->src = NULL;
        free(c->owned);
        c->owned = NULL;
        c->owned_n = 0;
    }
}

static const struct zwlr_data_control_source_v1_listener src_listener = {
    .send = src_send,
    .cancelled = src_cancelled,
};

/* Make t (n bytes, ours to free) the clipboard's content. */
static void own(struct wclip *c, char *t, size_t n)
{
    struct zwlr_data_control_source_v1 *s;

    if (c->dev == NULL ||
        (s = zwlr_data_control_manager_v1_create_data_source(c->mgr)) == NULL) {
        free(t);
        return;
    }
    zwlr_data_control_source_v1_add_listener(s, &src_listener, c);
    for (size_t i = 0; i < sizeof(serve_types) / sizeof(serve_types[0]); i++)
        zwlr_data_control_source_v1_offer(s, serve_types[i]);
    if (c->src != NULL)
        zwlr_data_control_source_v1_destroy(c->src);
    free(c->owned);
    c->src = s;
    c->owned = t;
    c->owned_n = n;
    zwlr_data_control_device_v1_set_selection(c->dev, s);
}

/* ---- the thread -----------------------------------------------------------
 */

static void *clip_main(void *arg)
{
    struct wclip *c = arg;
    int fd = wl_display_get_fd(c->d);

    for (;;) {
        struct pollfd pf[2] = { { .fd = fd, .events = POLLIN },
                                { .fd = c->box.wake[0], .events = POLLIN } };
        char *t = NULL;
        size_t n = 0;

        while (wl_display_prepare_read(c->d) != 0)
            wl_display_dispatch_pending(c->d);
        wl_display_flush(c->d);
        if (poll(pf, 2, -1) < 0 && errno != EINTR) {
            wl_display_cancel_read(c->d);
            break;
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (wl_display_read_events(c->d) != 0) {
                hd_warn(MOD, "lost the Wayland display: clipboard off");
                break;
            }
        } else {
            wl_display_cancel_read(c->d);
        }
        if (wl_display_dispatch_pending(c->d) < 0) {
            hd_warn(MOD, "Wayland protocol error: clipboard off");
            break;
        }
        if (clip_mailbox_take(&c->box, &t, &n)) {
            free(t);
            break;
        }
        if (t != NULL)
            own(c, t, n);
        if (c->failed)
            break;
    }
    return NULL;
}

/* ---- open / set / close ---------------------------------------------------
 */

static void reg_global(void *data, struct wl_registry *r, uint32_t name,
                       const char *iface, uint32_t version)
{
    struct wclip *c = data;

    if (strcmp(iface, wl_seat_interface.name) == 0 && c->seat == NULL)
        c->seat = wl_registry_bind(r, name, &wl_seat_interface, 1);
    else if (strcmp(iface, zwlr_data_control_manager_v1_interface.name) == 0 &&
             c->mgr == NULL)
        c->mgr =
            wl_registry_bind(r, name, &zwlr_data_control_manager_v1_interface,
                             version < 2 ? version : 2);
}

static void reg_remove(void *data, struct wl_registry *r, uint32_t name)
{
    (void)data;
    (void)r;
    (void)name;
}

static const struct wl_registry_listener reg_listener = {
    .global = reg_global,
    .global_remove = reg_remove,
};

static void free_all(struct wclip *c)
{
    if (c->src != NULL)
        zwlr_data_control_source_v1_destroy(c->src);
    if (c->dev != NULL)
        zwlr_data_control_device_v1_destroy(c->dev);
    if (c->mgr != NULL)
        zwlr_data_control_manager_v1_destroy(c->mgr);
    if (c->seat != NULL)
        wl_seat_destroy(c->seat);
    if (c->reg != NULL)
        wl_registry_destroy(c->reg);
    if (c->d != NULL)
        wl_display_disconnect(c->d);
    if (c->box_ok)
        clip_mailbox_cleanup(&c->box);
    free(c->owned);
}

static int wlr_open(struct hclip *hc, const struct clip_opts *opts)
{
    struct wclip *c = hc->priv;
    const char *name = opts->wayland_display;

    c->hc = hc;
    if (name == NULL || name[0] == '\0')
        return -ENODEV; /* no Wayland display to share: not an error */
    if ((c->d = wl_display_connect(name)) == NULL) {
        hd_warn(MOD, "cannot connect to the Wayland display %s", name);
        free_all(c);
        return -ENODEV;
    }
    c->reg = wl_display_get_registry(c->d);
    wl_registry_add_listener(c->reg, &reg_listener, c);
    if (wl_display_roundtrip(c->d) < 0 || c->seat == NULL || c->mgr == NULL) {
        hd_warn(MOD,
                "the Wayland display %s offers %s: the clipboard is not "
                "shared (wlr-data-control needs a wlroots compositor such "
                "as sway)",
                name, c->seat == NULL ? "no seat" : "no wlr-data-control");
        free_all(c);
        return -ENOTSUP;
    }
    c->dev = zwlr_data_control_manager_v1_get_data_device(c->mgr, c->seat);
    zwlr_data_control_device_v1_add_listener(c->dev, &dev_listener, c);
    c->box_ok = clip_mailbox_init(&c->box) == 0;
    if (!c->box_ok || pthread_create(&c->thread, NULL, clip_main, c) != 0) {
        hd_error(MOD, "cannot start the clipboard thread");
        free_all(c);
        return -ENOMEM;
    }
    hd_info(MOD, "sharing the clipboard of the Wayland display %s", name);
    return 0;
}

static void wlr_set(struct hclip *hc, char *text, size_t n)
{
    struct wclip *c = hc->priv;

    clip_mailbox_put(&c->box, text, n);
}

static void wlr_close(struct hclip *hc)
{
    struct wclip *c = hc->priv;

    clip_mailbox_quit(&c->box);
    pthread_join(c->thread, NULL);
    free_all(c);
}

const struct clip_driver clip_driver_wlr = {
    .name = "wlr",
    .description = "Wayland clipboard of a wlroots compositor "
                   "(wlr-data-control)",
    .priv_size = sizeof(struct wclip),
    .open = wlr_open,
    .set = wlr_set,
    .close = wlr_close,
};

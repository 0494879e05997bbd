/*
 * The viewer's own Wayland connection: seats and output scales.  See
 * wayland.h.  The registry listener keeps a small table of outputs (their
 * scale as last announced with wl_output.done) and counts the seats; the
 * watch thread polls the connection's fd and a pipe that stops it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wayland-client.h>

#include "client/wayland.h"
#include "log.h"

#define MAX_OUTPUTS 16

struct wlv_output {
    struct wl_output *o;
    uint32_t name;
    int scale, pending;
    struct wlv *v;
};

struct wlv {
    struct wl_display *d;
    struct wl_registry *reg;
    char name[108];
    int seats;
    struct wlv_output out[MAX_OUTPUTS];
    pthread_mutex_t mu; /* guards scale (read by wlv_scale) */
    int scale;
    void (*on_scale)(void *ud);
    void *ud;
    pthread_t thread;
    int running, stop[2];
};

/* The largest output scale; with mu held. */
static int max_scale(const struct wlv *v)
{
    int s = 1;

    for (int i = 0; i < MAX_OUTPUTS; i++)
        if (v->out[i].o != NULL && v->out[i].scale > s)
            s = v->out[i].scale;
    return s;
}

/* An output's settings are complete: a new scale? */
static void rescale(struct wlv *v)
{
    int s, changed;

    pthread_mutex_lock(&v->mu);
    s = max_scale(v);
    changed = s != v->scale;
    v->scale = s;
    pthread_mutex_unlock(&v->mu);
    if (changed) {
        hd_info("window", "Wayland output scale now %d", s);
        if (v->on_scale != NULL)
            v->on_scale(v->ud);
    }
}

static void out_geometry(void *data, struct wl_output *o, int32_t x, int32_t y,
                         int32_t pw, int32_t ph, int32_t sub, const char *make,
                         const char *model, int32_t tr)
{
}

static void out_mode(void *data, struct wl_output *o, uint32_t flags, int32_t w,
                     int32_t h, int32_t refresh)
{
}

static void out_scale(void *data, struct wl_output *o, int32_t factor)
{
    struct wlv_output *wo = data;

    wo->pending = factor > 0 && factor <= 16 ? factor : 1;
}

static void out_done(void *data, struct wl_output *o)
{
    struct wlv_output *wo = data;

    pthread_mutex_lock(&wo->v->mu);
    wo->scale = wo->pending;
    pthread_mutex_unlock(&wo->v->mu);
    rescale(wo->v);
}

static void out_text(void *data, struct wl_output *o, const char *s)
{
}

/* name and description (version 4) are never sent: bound at version 2 */
static const struct wl_output_listener out_listener = {
    out_geometry, out_mode, out_done, out_scale, out_text, out_text,
};

static void reg_global(void *data, struct wl_registry *reg, uint32_t name,
                       const char *iface, uint32_t version)
{
    struct wlv *v = data;
    int i;

    if (strcmp(iface, wl_seat_interface.name) == 0) {
        v->seats++;
        return;
    }
    if (strcmp(iface, wl_output_interface.name) != 0 || version < 2)
        return;
    for (i = 0; i < MAX_OUTPUTS && v->out[i].o != NULL; i++)
        ;
    if (i == MAX_OUTPUTS)
        return; /* the scale of the 17th output is not followed */
    v->out[i] =
        (struct wlv_output){ .name = name, .scale = 1, .pending = 1, .v = v };
    v->out[i].o = wl_registry_bind(reg, name, &wl_output_interface, 2);
    if (v->out[i].o != NULL)
        wl_output_add_listener(v->out[i].o, &out_listener, &v->out[i]);
}

static void reg_remove(void *data, struct wl_registry *reg, uint32_t name)
{
    struct wlv *v = data;

    for (int i = 0; i < MAX_OUTPUTS; i++) {
        if (v->out[i].o == NULL || v->out[i].name != name)
            continue;
        wl_output_destroy(v->out[i].o);
        pthread_mutex_lock(&v->mu);
        v->out[i].o = NULL;
        pthread_mutex_unlock(&v->mu);
        rescale(v);
        return;
    }
    /* a seat going away is not tracked: it only matters at start */
}

static const struct wl_registry_listener reg_listener = {
    reg_global,
    reg_remove,
};

int wlv_open(struct wlv **out)
{
    const char *name = getenv("WAYLAND_DISPLAY");
    struct wlv *v;

    *out = NULL;
    if (name == NULL || name[0] == '\0')
        return -ENOENT;
    if ((v = calloc(1, sizeof(*v))) == NULL)
        return -ENOMEM;
    pthread_mutex_init(&v->mu, NULL);
    v->scale = 1;
    v->stop[0] = v->stop[1] = -1;
    snprintf(v->name, sizeof(v->name), "%s", name);
    if ((v->d = wl_display_connect(NULL)) == NULL) {
        wlv_free(v);
        return -ECONNREFUSED;
    }
    v->reg = wl_display_get_registry(v->d);
    wl_registry_add_listener(v->reg, &reg_listener, v);
    /* the globals, then the outputs' first events */
    if (wl_display_roundtrip(v->d) < 0 || wl_display_roundtrip(v->d) < 0) {
        wlv_free(v);
        return -ECONNREFUSED;
    }
    *out = v;
    return 0;
}

const char *wlv_name(const struct wlv *v)
{
    return v->name;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wlv_wait_seat(struct wlv *v, int ms)
{
    int64_t end = now_ms() + ms, left;
    struct pollfd p = { .fd = wl_display_get_fd(v->d), .events = POLLIN };

    while (v->seats == 0 && (left = end - now_ms()) > 0) {
        while (wl_display_prepare_read(v->d) != 0)
            if (wl_display_dispatch_pending(v->d) < 0)
                return -EIO;
        wl_display_flush(v->d);
        if (poll(&p, 1, (int)left) <= 0) {
            wl_display_cancel_read(v->d);
            continue;
        }
        if (wl_display_read_events(v->d) < 0 ||
            wl_display_dispatch_pending(v->d) < 0)
            return -EIO;
    }
    return v->seats > 0;
}

static void *watch_main(void *arg)
{
    struct wlv *v = arg;
    struct pollfd p[2] = {
        { .fd = wl_display_get_fd(v->d), .events = POLLIN },
        { .fd = v->stop[0], .events = POLLIN },
    };

    for (;;) {
        while (wl_display_prepare_read(v->d) != 0)
            if (wl_display_dispatch_pending(v->d) < 0)
                goto broken;
        wl_display_flush(v->d);
        if (poll(p, 2, -1) < 0 && errno != EINTR) {
            wl_display_cancel_read(v->d);
            goto broken;
        }
        if (p[1].revents != 0) {
            wl_display_cancel_read(v->d);
            return NULL;
        }
        if (!(p[0].revents & POLLIN)) {
            wl_display_cancel_read(v->d);
            if (p[0].revents != 0)
                goto broken;
            continue;
        }
        if (wl_display_read_events(v->d) < 0 ||
            wl_display_dispatch_pending(v->d) < 0)
            goto broken;
    }
broken:
    hd_warn("window",
            "lost the Wayland connection to %s: output scale "
            "changes are no longer followed",
            v->name);
    return NULL;
}

int wlv_watch(struct wlv *v, void (*on_scale)(void *ud), void *ud)
{
    int r;

    if (v->running)
        return -EALREADY;
    if (pipe(v->stop) != 0)
        return -errno;
    v->on_scale = on_scale;
    v->ud = ud;
    if ((r = pthread_create(&v->thread, NULL, watch_main, v)) != 0)
        return -r;
    v->running = 1;
    return 0;
}

int wlv_scale(struct wlv *v)
{
    int s;

    pthread_mutex_lock(&v->mu);
    s = v->scale;
    pthread_mutex_unlock(&v->mu);
    return s;
}

void wlv_free(struct wlv *v)
{
    if (v == NULL)
        return;
    if (v->running) {
        if (write(v->stop[1], "x", 1) != 1)
            hd_warn("window", "cannot stop the Wayland watch thread");
        pthread_join(v->thread, NULL);
    }
    if (v->stop[0] >= 0)
        close(v->stop[0]);
    if (v->stop[1] >= 0)
        close(v->stop[1]);
    for (int i = 0; i < MAX_OUTPUTS; i++)
        if (v->out[i].o != NULL)
            wl_output_destroy(v->out[i].o);
    if (v->reg != NULL)
        wl_registry_destroy(v->reg);
    if (v->d != NULL)
        wl_display_disconnect(v->d);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

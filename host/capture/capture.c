/*
 * The capture framework: picks a backend from the table below (order of
 * preference), allocates its private state, owns the wake-up eventfd and
 * the counters.  Backends live beside this file, one per display system.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/capture/capture.h"
#include "err.h"
#include "log.h"

static const struct capture_driver *const drivers[] = {
#ifdef _WIN32
    &capture_driver_dxgi,
    &capture_driver_gdi,
#else
    &capture_driver_x11,
    &capture_driver_wlr,
    &capture_driver_pipewire,
#endif
    &capture_driver_fake,
};
#define N_DRIVERS (sizeof(drivers) / sizeof(drivers[0]))

static const char *const names[N_DRIVERS + 1] = {
#ifdef _WIN32
    "dxgi", "gdi",
#else
    "x11", "wlr", "pipewire",
#endif
    "fake", NULL
};

const char *const *capture_list(void)
{
    return names;
}

/* Open backend d; on failure its reason (logged by it, or to be logged:
 * cap->why) in why[CAPTURE_WHY_MAX]. */
static int open_one(const struct capture_driver *d,
                    const struct capture_opts *opts, struct capture **out,
                    char *why)
{
    struct capture *cap;
    int r;

    why[0] = '\0';
    cap = calloc(1, sizeof(*cap));
    if (cap == NULL)
        return -ENOMEM;
    cap->driver = d;
    atomic_init(&cap->refresh, 0);
    pthread_mutex_init(&cap->mon_lock, NULL);
    if (d->priv_size > 0 && (cap->priv = calloc(1, d->priv_size)) == NULL) {
        r = -ENOMEM;
        goto out;
    }
    if ((r = os_wake_open(&cap->wake)) != 0) {
        hd_error("capture", "wake-up: %s", strerror(-r));
        goto out;
    }
    cap->wake_open = 1;
    if ((r = d->open(cap, opts)) != 0) {
        memcpy(why, cap->why, CAPTURE_WHY_MAX);
        goto out;
    }
    *out = cap;
    cap = NULL;
    r = 0;
out:
    if (cap != NULL) {
        if (cap->wake_open)
            os_wake_close(&cap->wake);
        pthread_mutex_destroy(&cap->mon_lock);
        free(cap->priv);
        free(cap);
    }
    return r;
}

int capture_open(const char *name, const struct capture_opts *opts,
                 struct capture **out)
{
    static const struct capture_opts defaults;
    const struct capture_driver *passed = NULL;
    char why[CAPTURE_WHY_MAX], passed_why[CAPTURE_WHY_MAX] = "";
    int automatic =
        name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0;
    size_t i;
    int r = -ENOENT, passed_own = 0;

    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    for (i = 0; i < N_DRIVERS; i++) {
        /* "fake" is for tests: never picked automatically. */
        if (automatic ? drivers[i] == &capture_driver_fake
                      : strcmp(name, drivers[i]->name) != 0)
            continue;
        if ((r = open_one(drivers[i], opts, out, why)) == 0)
            break;
        /* (auto: the reason is in the one fallback line below) */
        if (why[0] != '\0' && !automatic)
            hd_error("capture", "%s: %s", drivers[i]->name, why);
        if (passed == NULL) {
            passed = drivers[i];
            passed_own = why[0] == '\0'; /* it logged itself */
            snprintf(passed_why, sizeof(passed_why), "%s",
                     why[0] ? why : hd_strerror(r));
        }
        if (!automatic)
            return r;
    }
    if (r == 0 && passed != NULL) {
        /* one line: what was passed over, why, and what is used */
        hd_warn("capture", "falling back to %s: %s unavailable: %s",
                (*out)->driver->name, passed->name, passed_why);
        snprintf((*out)->fallback, sizeof((*out)->fallback), "%s: %s",
                 passed->name, passed_why);
    } else if (r != 0 && passed != NULL && !passed_own) {
        hd_error("capture", "%s: %s", passed->name, passed_why);
    }
    if (r == -ENOENT && !automatic)
        hd_error("capture", "unknown capture backend '%s' (try %s)", name,
#ifdef _WIN32
                 "dxgi, gdi, fake"
#else
                 "x11, wlr, pipewire, fake"
#endif
        );
    return r;
}

const char *capture_fallback(const struct capture *cap)
{
    return cap->fallback;
}

int capture_grab(struct capture *cap, struct capture_frame *out, int timeout_ms)
{
    int r;

    memset(out, 0, sizeof(*out));
    r = cap->driver->grab(cap, out, timeout_ms);
    if (r == 0) {
        /* Consume a wake-up so the next grab waits again. */
        os_wake_drain(&cap->wake);
        memset(out, 0, sizeof(*out));
        cap->stats.idle++;
    } else if (r > 0) {
        cap->stats.frames++;
    }
    return r;
}

void capture_close(struct capture *cap)
{
    if (cap == NULL)
        return;
    cap->driver->close(cap);
    os_wake_close(&cap->wake);
    pthread_mutex_destroy(&cap->mon_lock);
    free(cap->priv);
    free(cap);
}

void capture_set_monitors(struct capture *cap, const struct monitor *m, int n)
{
    pthread_mutex_lock(&cap->mon_lock);
    cap->n_monitors = n < 0 ? 0 : n > MONITORS_MAX ? MONITORS_MAX : n;
    memcpy(cap->monitors, m, (size_t)cap->n_monitors * sizeof(*m));
    pthread_mutex_unlock(&cap->mon_lock);
}

int capture_monitors(struct capture *cap, struct monitor *out)
{
    int n;

    pthread_mutex_lock(&cap->mon_lock);
    n = cap->n_monitors;
    memcpy(out, cap->monitors, (size_t)n * sizeof(*out));
    pthread_mutex_unlock(&cap->mon_lock);
    return n;
}

void capture_wakeup(struct capture *cap)
{
    os_wake_signal(&cap->wake);
}

void capture_refresh(struct capture *cap)
{
    atomic_store(&cap->refresh, 1);
}

const char *capture_name(const struct capture *cap)
{
    return cap->driver->name;
}

void capture_get_stats(const struct capture *cap, struct capture_stats *out)
{
    *out = cap->stats;
}

uint64_t capture_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int overlaps(const struct capture_rect *a, const struct capture_rect *b)
{
    return a->x < b->x + b->w && b->x < a->x + a->w && a->y < b->y + b->h &&
           b->y < a->y + a->h;
}

static struct capture_rect bbox(struct capture_rect a, struct capture_rect b)
{
    int x0 = a.x < b.x ? a.x : b.x, y0 = a.y < b.y ? a.y : b.y;
    int x1 = a.x + a.w > b.x + b.w ? a.x + a.w : b.x + b.w;
    int y1 = a.y + a.h > b.y + b.h ? a.y + a.h : b.y + b.h;

    return (struct capture_rect){ x0, y0, x1 - x0, y1 - y0 };
}

void capture_rects_add(struct capture_rect *rects, int *n, int width,
                       int height, struct capture_rect r)
{
    int i, merged;

    /* Clip to the frame. */
    if (r.x < 0) {
        r.w += r.x;
        r.x = 0;
    }
    if (r.y < 0) {
        r.h += r.y;
        r.y = 0;
    }
    if (r.x >= width || r.y >= height || r.w <= 0 || r.h <= 0)
        return;
    if (r.w > width - r.x)
        r.w = width - r.x;
    if (r.h > height - r.y)
        r.h = height - r.y;

    /* Keep the list free of overlaps: absorb every rectangle r touches
     * (repeat, as the grown r may now touch others). */
    do {
        merged = 0;
        for (i = 0; i < *n; i++) {
            if (overlaps(&rects[i], &r)) {
                r = bbox(r, rects[i]);
                rects[i] = rects[--*n];
                merged = 1;
                break;
            }
        }
    } while (merged);

    if (*n < CAPTURE_MAX_RECTS) {
        rects[(*n)++] = r;
        return;
    }
    for (i = 0; i < *n; i++)
        r = bbox(r, rects[i]);
    rects[0] = r;
    *n = 1;
}

/*
 * The compositor's outputs and the host's picture made of them (see
 * wlout.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/wayland/outputs.h"
#include "log.h"
#include "xdg-output-unstable-v1.h"

#define MOD "wayland"

/* ---- wl_output ----------------------------------------------------------- */

static void out_geometry(void *data, struct wl_output *o, int32_t x, int32_t y,
                         int32_t pw, int32_t ph, int32_t sub, const char *make,
                         const char *model, int32_t tr)
{
    struct wlout *w = data;

    if (w->transform != tr)
        w->set->changed = 1;
    w->transform = tr;
}

static void out_mode(void *data, struct wl_output *o, uint32_t flags,
                     int32_t width, int32_t height, int32_t refresh)
{
    struct wlout *w = data;

    if (!(flags & WL_OUTPUT_MODE_CURRENT))
        return;
    if (w->mode_w != width || w->mode_h != height)
        w->set->changed = 1;
    w->mode_w = width;
    w->mode_h = height;
}

static void out_done(void *data, struct wl_output *o)
{
}

static void out_scale(void *data, struct wl_output *o, int32_t f)
{
}

static void out_name(void *data, struct wl_output *o, const char *name)
{
    struct wlout *w = data;

    snprintf(w->name, sizeof(w->name), "%s", name);
}

static void out_description(void *data, struct wl_output *o, const char *s)
{
}

static const struct wl_output_listener out_listener = {
    out_geometry, out_mode, out_done, out_scale, out_name, out_description,
};

/* ---- xdg-output: where each output lies in the layout ---------------------
 */

static void xo_position(void *data, struct zxdg_output_v1 *xo, int32_t x,
                        int32_t y)
{
    struct wlout *w = data;

    if (w->x != x || w->y != y)
        w->set->changed = 1;
    w->x = x;
    w->y = y;
}

static void xo_size(void *data, struct zxdg_output_v1 *xo, int32_t width,
                    int32_t height)
{
    struct wlout *w = data;

    if (w->lw != width || w->lh != height)
        w->set->changed = 1;
    w->lw = width;
    w->lh = height;
}

static void xo_done(void *data, struct zxdg_output_v1 *xo)
{
}

static void xo_name(void *data, struct zxdg_output_v1 *xo, const char *name)
{
    struct wlout *w = data;

    if (w->name[0] == '\0') /* wl_output before version 4 */
        snprintf(w->name, sizeof(w->name), "%s", name);
}

static void xo_description(void *data, struct zxdg_output_v1 *xo, const char *s)
{
}

static const struct zxdg_output_v1_listener xo_listener = {
    xo_position, xo_size, xo_done, xo_name, xo_description,
};

static void attach_xdg(struct wlout_set *s, struct wlout *w)
{
    if (s->xdg == NULL || w->xo != NULL)
        return;
    w->xo = zxdg_output_manager_v1_get_xdg_output(s->xdg, w->o);
    zxdg_output_v1_add_listener(w->xo, &xo_listener, w);
}

int wlout_global(struct wlout_set *s, struct wl_registry *reg, uint32_t global,
                 const char *iface, uint32_t version)
{
    struct wlout *w;

    if (strcmp(iface, zxdg_output_manager_v1_interface.name) == 0) {
        if (s->xdg != NULL)
            return 1;
        s->xdg =
            wl_registry_bind(reg, global, &zxdg_output_manager_v1_interface,
                             version < 3 ? version : 3);
        for (int i = 0; i < s->n; i++)
            attach_xdg(s, &s->out[i]);
        return 1;
    }
    if (strcmp(iface, wl_output_interface.name) != 0)
        return 0;
    if (s->n == WLOUT_MAX) {
        hd_warn(MOD, "more than %d outputs: the others are not shared",
                WLOUT_MAX);
        return 1;
    }
    w = &s->out[s->n++];
    memset(w, 0, sizeof(*w));
    w->set = s;
    w->global = global;
    w->o = wl_registry_bind(reg, global, &wl_output_interface,
                            version < 4 ? version : 4);
    wl_output_add_listener(w->o, &out_listener, w);
    attach_xdg(s, w);
    s->changed = 1;
    return 1;
}

static void release_one(struct wlout *w)
{
    if (w->xo != NULL)
        zxdg_output_v1_destroy(w->xo);
    if (w->o != NULL) {
        if (wl_output_get_version(w->o) >= WL_OUTPUT_RELEASE_SINCE_VERSION)
            wl_output_release(w->o);
        else
            wl_output_destroy(w->o);
    }
    w->xo = NULL;
    w->o = NULL;
}

int wlout_remove(struct wlout_set *s, uint32_t global)
{
    for (int i = 0; i < s->n; i++) {
        if (s->out[i].global != global)
            continue;
        hd_info(MOD, "output %s went away", s->out[i].name);
        release_one(&s->out[i]);
        /* the listeners hold pointers to the entries: move none but the
         * last, and fix its back pointers */
        if (i != s->n - 1) {
            s->out[i] = s->out[s->n - 1];
            wl_output_set_user_data(s->out[i].o, &s->out[i]);
            if (s->out[i].xo != NULL)
                zxdg_output_v1_set_user_data(s->out[i].xo, &s->out[i]);
        }
        s->n--;
        s->changed = 1;
        return 1;
    }
    return 0;
}

void wlout_release(struct wlout_set *s)
{
    for (int i = 0; i < s->n; i++)
        release_one(&s->out[i]);
    if (s->xdg != NULL)
        zxdg_output_manager_v1_destroy(s->xdg);
    s->xdg = NULL;
    s->n = 0;
}

/* ---- the picture --------------------------------------------------------- */

static int usable(const struct wlout *w)
{
    return w->o != NULL && w->mode_w > 0 && w->mode_h > 0;
}

/* Can every output be placed by layout position times one scale? */
static int one_scale(const struct wlout_set *s, const char **why)
{
    const struct wlout *a = NULL;

    for (int i = 0; i < s->n; i++) {
        const struct wlout *w = &s->out[i];

        if (!usable(w))
            continue;
        if (w->xo == NULL || w->lw <= 0 || w->lh <= 0) {
            *why = "the compositor gives no layout positions (xdg-output)";
            return 0;
        }
        if (w->transform != WL_OUTPUT_TRANSFORM_NORMAL) {
            *why = "an output is rotated";
            return 0;
        }
        if (a == NULL) {
            a = w;
            continue;
        }
        /* pixels per layout unit, compared without division */
        if ((long)w->mode_w * a->lw != (long)a->mode_w * w->lw ||
            (long)w->mode_h * a->lh != (long)a->mode_h * w->lh) {
            *why = "the outputs have different scales";
            return 0;
        }
    }
    return 1;
}

int wlout_layout(const struct wlout_set *s, struct wlout_place *place, int *w,
                 int *h, int quiet)
{
    const char *want = getenv("HOMEDESK_WAYLAND_OUTPUT");
    const char *why = NULL;
    int n = 0, minx = 0, miny = 0, first = 1;
    double f = 1.0;

    *w = *h = 0;
    for (int i = 0; i < s->n && want != NULL && want[0] != '\0'; i++)
        if (usable(&s->out[i]) && strcmp(s->out[i].name, want) == 0) {
            place[0] = (struct wlout_place){ i, 0, 0, s->out[i].mode_w,
                                             s->out[i].mode_h };
            *w = place[0].w;
            *h = place[0].h;
            return 1;
        }
    if (want != NULL && want[0] != '\0')
        return 0;
    if (!one_scale(s, &why)) {
        for (int i = 0; i < s->n; i++)
            if (usable(&s->out[i])) {
                place[0] = (struct wlout_place){ i, 0, 0, s->out[i].mode_w,
                                                 s->out[i].mode_h };
                *w = place[0].w;
                *h = place[0].h;
                if (!quiet && s->n > 1)
                    hd_warn(MOD,
                            "%s: sharing only output %s (set "
                            "HOMEDESK_WAYLAND_OUTPUT to choose another)",
                            why, s->out[i].name);
                return 1;
            }
        return 0;
    }
    for (int i = 0; i < s->n; i++) {
        const struct wlout *o = &s->out[i];

        if (!usable(o))
            continue;
        if (first || o->x < minx)
            minx = o->x;
        if (first || o->y < miny)
            miny = o->y;
        if (first)
            f = (double)o->mode_w / o->lw;
        first = 0;
    }
    for (int i = 0; i < s->n && n < WLOUT_MAX; i++) {
        const struct wlout *o = &s->out[i];
        struct wlout_place *p = &place[n];

        if (!usable(o))
            continue;
        p->index = i;
        p->x = (int)((o->x - minx) * f + 0.5);
        p->y = (int)((o->y - miny) * f + 0.5);
        p->w = o->mode_w;
        p->h = o->mode_h;
        if (p->x + p->w > *w)
            *w = p->x + p->w;
        if (p->y + p->h > *h)
            *h = p->y + p->h;
        n++;
    }
    return n;
}

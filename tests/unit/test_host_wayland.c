/*
 * Unit tests for host/wayland/outputs.c's layout: which outputs make the
 * host's picture and where (no compositor needed: the set is filled as
 * the listeners would).  e2e_wlhost runs two real outputs on sway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/wayland/outputs.h"
#include "tests/harness.h"

/* a non-NULL proxy stand-in: the layout only tests for NULL */
static char proxy[WLOUT_MAX];

static void add(struct wlout_set *s, const char *name, int x, int y, int lw,
                int lh, int mw, int mh)
{
    struct wlout *w = &s->out[s->n];

    memset(w, 0, sizeof(*w));
    w->o = (struct wl_output *)&proxy[s->n];
    w->xo = (struct zxdg_output_v1 *)&proxy[s->n];
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->x = x;
    w->y = y;
    w->lw = lw;
    w->lh = lh;
    w->mode_w = mw;
    w->mode_h = mh;
    w->set = s;
    s->n++;
}

static int lay(const struct wlout_set *s, struct wlout_place *pl, int *w,
               int *h)
{
    return wlout_layout(s, pl, w, h, 1);
}

static void side_by_side(void)
{
    struct wlout_set s = { 0 };
    struct wlout_place pl[WLOUT_MAX];
    int w, h;

    add(&s, "A", 0, 0, 1280, 720, 1280, 720);
    add(&s, "B", 1280, 0, 640, 480, 640, 480);
    HT_EQ_INT(lay(&s, pl, &w, &h), 2);
    HT_EQ_INT(w, 1920);
    HT_EQ_INT(h, 720);
    HT_EQ_INT(pl[1].x, 1280);
    HT_EQ_INT(pl[1].y, 0);
    HT_EQ_INT(pl[1].w, 640);
}

/* negative layout positions start the picture at 0,0; one scale of 2
 * (and fractional 1.5) doubles (and scales) the positions */
static void offsets_and_scale(void)
{
    struct wlout_set s = { 0 };
    struct wlout_place pl[WLOUT_MAX];
    int w, h;

    add(&s, "A", -1000, 100, 1000, 500, 2000, 1000);
    add(&s, "B", 0, 0, 800, 600, 1600, 1200);
    HT_EQ_INT(lay(&s, pl, &w, &h), 2);
    HT_EQ_INT(pl[0].x, 0);
    HT_EQ_INT(pl[0].y, 200);
    HT_EQ_INT(pl[1].x, 2000);
    HT_EQ_INT(pl[1].y, 0);
    HT_EQ_INT(w, 3600);
    HT_EQ_INT(h, 1200);
    memset(&s, 0, sizeof(s));
    add(&s, "A", 0, 0, 1280, 720, 1920, 1080);
    add(&s, "B", 1280, 0, 1280, 720, 1920, 1080);
    HT_EQ_INT(lay(&s, pl, &w, &h), 2);
    HT_EQ_INT(pl[1].x, 1920);
    HT_EQ_INT(w, 3840);
}

/* mixed scales, a rotated output, no xdg-output: the first one alone */
static void fallbacks(void)
{
    struct wlout_set s = { 0 };
    struct wlout_place pl[WLOUT_MAX];
    int w, h;

    add(&s, "A", 0, 0, 1280, 720, 1280, 720);
    add(&s, "B", 1280, 0, 1280, 720, 2560, 1440);
    HT_EQ_INT(lay(&s, pl, &w, &h), 1);
    HT_EQ_INT(pl[0].index, 0);
    HT_EQ_INT(w, 1280);
    s.out[1].mode_w = 1280;
    s.out[1].mode_h = 720;
    HT_EQ_INT(lay(&s, pl, &w, &h), 2);
    s.out[1].transform = WL_OUTPUT_TRANSFORM_90;
    HT_EQ_INT(lay(&s, pl, &w, &h), 1);
    s.out[1].transform = WL_OUTPUT_TRANSFORM_NORMAL;
    s.out[0].xo = NULL;
    HT_EQ_INT(lay(&s, pl, &w, &h), 1);
    /* an output with no mode yet does not count */
    s.out[0].xo = (struct zxdg_output_v1 *)&proxy[0];
    s.out[0].mode_w = 0;
    HT_EQ_INT(lay(&s, pl, &w, &h), 1);
    HT_EQ_INT(pl[0].index, 1);
    HT_EQ_INT(pl[0].x, 0);
}

/* HOMEDESK_WAYLAND_OUTPUT: that one, or none when it is missing */
static void named_output(void)
{
    struct wlout_set s = { 0 };
    struct wlout_place pl[WLOUT_MAX];
    int w, h;

    add(&s, "A", 0, 0, 1280, 720, 1280, 720);
    add(&s, "B", 1280, 0, 640, 480, 640, 480);
    setenv("HOMEDESK_WAYLAND_OUTPUT", "B", 1);
    HT_EQ_INT(lay(&s, pl, &w, &h), 1);
    HT_EQ_INT(pl[0].index, 1);
    HT_EQ_INT(pl[0].x, 0);
    HT_EQ_INT(w, 640);
    setenv("HOMEDESK_WAYLAND_OUTPUT", "C", 1);
    HT_EQ_INT(lay(&s, pl, &w, &h), 0);
    unsetenv("HOMEDESK_WAYLAND_OUTPUT");
}

int main(void)
{
    ht_init("host-wayland");
    unsetenv("HOMEDESK_WAYLAND_OUTPUT");
    HT_RUN(side_by_side);
    HT_RUN(offsets_and_scale);
    HT_RUN(fallbacks);
    HT_RUN(named_output);
    return ht_finish();
}

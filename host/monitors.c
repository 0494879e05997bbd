/*
 * The host's monitors through RandR 1.5 GetMonitors.  See monitors.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xcb/randr.h>
#include <xcb/xcb.h>

#include "host/monitors.h"
#include "log.h"

#define MOD "monitors"

/* Keep the monitors that fit the screen, primary first. */
static int from_randr(xcb_connection_t *c, xcb_window_t root, int sw, int sh,
                      struct monitor *out)
{
    xcb_randr_get_monitors_reply_t *rep;
    xcb_randr_monitor_info_iterator_t it;
    xcb_get_atom_name_reply_t *an;
    int n = 0;

    rep = xcb_randr_get_monitors_reply(c, xcb_randr_get_monitors(c, root, 1),
                                       NULL);
    if (rep == NULL)
        return 0;
    for (it = xcb_randr_get_monitors_monitors_iterator(rep);
         it.rem > 0 && n < MONITORS_MAX; xcb_randr_monitor_info_next(&it)) {
        const xcb_randr_monitor_info_t *m = it.data;
        struct monitor mon = { m->x, m->y, m->width, m->height, "" };

        if (mon.width <= 0 || mon.height <= 0 || mon.x < 0 || mon.y < 0 ||
            mon.x + mon.width > sw || mon.y + mon.height > sh)
            continue;
        an = xcb_get_atom_name_reply(c, xcb_get_atom_name(c, m->name), NULL);
        if (an != NULL) {
            int len = xcb_get_atom_name_name_length(an);

            snprintf(mon.name, sizeof(mon.name), "%.*s", len,
                     xcb_get_atom_name_name(an));
            free(an);
        }
        if (m->primary && n > 0) {
            memmove(&out[1], &out[0], sizeof(out[0]) * (size_t)n);
            out[0] = mon;
        } else {
            out[n] = mon;
        }
        n++;
    }
    free(rep);
    return n;
}

int monitors_list(const char *display, int screen_w, int screen_h,
                  struct monitor *out)
{
    xcb_connection_t *c;
    const xcb_query_extension_reply_t *q;
    xcb_randr_query_version_reply_t *v;
    int n = 0;

    c = xcb_connect(display && display[0] ? display : NULL, NULL);
    if (c != NULL && !xcb_connection_has_error(c) &&
        (q = xcb_get_extension_data(c, &xcb_randr_id)) != NULL && q->present) {
        v = xcb_randr_query_version_reply(c, xcb_randr_query_version(c, 1, 5),
                                          NULL);
        if (v != NULL && (v->major_version > 1 || v->minor_version >= 5))
            n = from_randr(
                c, xcb_setup_roots_iterator(xcb_get_setup(c)).data->root,
                screen_w, screen_h, out);
        free(v);
    }
    if (c != NULL)
        xcb_disconnect(c);
    if (n == 0) {
        out[0] = (struct monitor){ 0, 0, screen_w, screen_h, "screen" };
        n = 1;
    }
    hd_debug(MOD, "%d monitor%s", n, n == 1 ? "" : "s");
    return n;
}

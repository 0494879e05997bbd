/*
 * The outputs of a Wayland compositor, as the wlr capture and input see
 * them, and how they lie in the host's one picture: shared by
 * host/capture/wlr.c and host/input/wlr.c, so a pixel of the picture and
 * a pointer position mean the same place.
 *
 * Each backend binds every wl_output it is offered (wlout_bind, from its
 * registry listener) and keeps them in a struct wlout_set; the listener
 * here records name, position, current mode, scale and transform.
 *
 * The picture (wlout_layout):
 * - HOMEDESK_WAYLAND_OUTPUT names one output: that output alone;
 * - else, when every output has the same scale (output pixels per layout
 *   unit: mode / xdg-output logical size, fractional scales included) and
 *   none is rotated, all of them, each at its layout position times that
 *   scale (output pixels: what screencopy gives), the picture being their
 *   bounding box;
 * - else (mixed scales, a rotated output, or no xdg-output: layout
 *   positions are not pixel positions, or unknown): the first output
 *   alone, said in the log.
 * The wlr capture lists the placed outputs as the host's monitors
 * (PeerInfo displays, Misc.switch_display).
 *
 * Threads: whichever thread owns the Wayland connection (each backend
 * has its own); nothing is shared between threads.
 */
#ifndef HD_HOST_WAYLAND_OUTPUTS_H
#define HD_HOST_WAYLAND_OUTPUTS_H

#include <stdint.h>

#include <wayland-client.h>

#define WLOUT_MAX 8

struct zxdg_output_manager_v1;
struct zxdg_output_v1;

struct wlout {
    struct wl_output *o;
    struct zxdg_output_v1 *xo; /* its xdg-output: the layout position */
    uint32_t global;           /* the registry name, for global_remove */
    char name[64];             /* wl_output v4 name, e.g. "HEADLESS-1" */
    int x, y, lw, lh;          /* layout position and size, logical */
    int mode_w, mode_h;        /* current mode, output pixels */
    int transform;
    struct wlout_set *set;
};

struct wlout_set {
    struct zxdg_output_manager_v1 *xdg; /* NULL: positions unknown */
    struct wlout out[WLOUT_MAX];
    int n;
    int changed; /* an output came, went or changed: lay out again */
};

/* Where a placed output lies in the picture, in output pixels. */
struct wlout_place {
    int index; /* into wlout_set.out */
    int x, y, w, h;
};

/*
 * From a registry listener: bind global if it is a wl_output or the
 * xdg-output manager (registry name global, interface iface, version
 * offered).  1 if it was one of those, else 0.  The set must not move
 * afterwards (the listeners point into it).
 */
int wlout_global(struct wlout_set *s, struct wl_registry *reg, uint32_t global,
                 const char *iface, uint32_t version);

/* The registry removed global: drop the output if it is one.  1 if so. */
int wlout_remove(struct wlout_set *s, uint32_t global);

/* Destroy every output proxy. */
void wlout_release(struct wlout_set *s);

/*
 * Place the outputs of s that make the picture (see above) into
 * place[0..WLOUT_MAX): returns how many (0 when none is known yet or the
 * named one is missing), and the picture's size in *w, *h.  quiet: no
 * log line about a fallback (say it once: pass the previous result).
 */
int wlout_layout(const struct wlout_set *s, struct wlout_place *place, int *w,
                 int *h, int quiet);

#endif

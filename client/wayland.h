/*
 * The viewer's own small connection to the Wayland compositor, beside
 * SDL's: SDL 2.26 cannot be asked the two things the window needs to know
 * there.
 *
 *  - Is there a seat?  SDL's Wayland backend crashes when the compositor
 *    offers no wl_seat at all (a headless weston), so the window waits for
 *    one before SDL is started there (a seat without keyboard or pointer,
 *    as headless sway has until a virtual device appears, is fine).
 *  - The outputs' scale: SDL picks a window's buffer scale only when its
 *    surface enters an output, so a scale changed while the viewer runs
 *    (`swaymsg output X scale 2`) would leave the picture blurry; this
 *    connection sees wl_output.scale and tells the window, which then
 *    makes its SDL window anew at the new scale.
 *
 * Threads: wlv_open/wlv_wait_seat/wlv_free on the main thread;
 * wlv_watch runs its own thread, which calls the callback (that must only
 * post an event); wlv_scale from any thread.
 */
#ifndef VIEW_WAYLAND_H
#define VIEW_WAYLAND_H

struct wlv;

/*
 * Connect to $WAYLAND_DISPLAY and read its globals.  Returns 0, -ENOENT
 * when WAYLAND_DISPLAY is unset, -ECONNREFUSED when nothing answers there
 * (*out NULL then), or -ENOMEM.
 */
int wlv_open(struct wlv **out);

/* The socket name connected to (WAYLAND_DISPLAY's value). */
const char *wlv_name(const struct wlv *v);

/*
 * Wait up to ms for the compositor to offer a wl_seat.  Returns 1 when
 * one is there (at once if it already was), 0 when none came, -EIO when
 * the connection broke.
 */
int wlv_wait_seat(struct wlv *v, int ms);

/*
 * From now on, dispatch on a thread of its own and call on_scale(ud)
 * there whenever an output's scale changes (after its wl_output.done).
 * Returns 0 or a negative errno.  Once only.
 */
int wlv_watch(struct wlv *v, void (*on_scale)(void *ud), void *ud);

/* The largest scale of the outputs (1 when there are none). */
int wlv_scale(struct wlv *v);

/* Stop the thread, disconnect, free; accepts NULL. */
void wlv_free(struct wlv *v);

#endif

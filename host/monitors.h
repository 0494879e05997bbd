/*
 * The host's monitors, for PeerInfo's display list and Misc.switch_display
 * (RustDesk's multi-monitor support): on X11 the RandR 1.5 monitors of the
 * screen (what xrandr --listmonitors shows, --setmonitor ones included),
 * primary first; one monitor covering the whole screen when RandR has no
 * list (or the capture is not X11).  The Wayland and Windows backends are
 * to fill the same table.
 *
 * Blocking (one round trip on a connection of its own); loop thread.
 */
#ifndef HD_HOST_MONITORS_H
#define HD_HOST_MONITORS_H

#define MONITORS_MAX 8

struct monitor {
    int x, y, width, height;
    char name[64];
};

/*
 * Fill out[0..MONITORS_MAX) with the monitors of X display (NULL or "":
 * $DISPLAY), inside a screen of screen_w x screen_h.  Returns how many
 * (at least 1: the whole screen when RandR gives no list).
 */
int monitors_list(const char *display, int screen_w, int screen_h,
                  struct monitor *out);

#endif

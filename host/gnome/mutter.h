/*
 * mutter's own screen-sharing API on the session bus
 * (org.gnome.Mutter.ScreenCast version 4 and org.gnome.Mutter.RemoteDesktop,
 * GNOME 3.28 and later): what the pipewire capture and the remotedesktop
 * input of a GNOME (Wayland) desktop are built on.  This is the API
 * xdg-desktop-portal-gnome itself uses; it asks no user for consent, so only
 * programs of the desktop's own user on its session bus reach it.
 *
 * A struct mutter is one session, on its own private bus connection (mutter
 * ties a session to the connection that made it: its Notify calls are
 * refused from any other, and it ends the session when that connection
 * closes):
 * - capture (MUTTER_CAPTURE): a ScreenCast session recording one monitor;
 *   once started, mutter announces the PipeWire node that carries the
 *   pictures (m->node), on the PipeWire daemon of the session
 *   ($XDG_RUNTIME_DIR/pipewire-0);
 * - input (MUTTER_INPUT): a RemoteDesktop session with a ScreenCast
 *   session bound to it, recording the same monitor: the stream is what
 *   absolute pointer motion is measured against (nobody consumes its
 *   pictures, so it costs nothing).
 * The monitor: HOMEDESK_WAYLAND_OUTPUT names its connector ("Meta-0",
 * "DP-1"), else the primary monitor.
 *
 * Threads: a struct mutter belongs to one thread (capture's or loop's).
 */
#ifndef HD_HOST_GNOME_MUTTER_H
#define HD_HOST_GNOME_MUTTER_H

#include <stdint.h>

struct DBusConnection;

enum mutter_kind { MUTTER_CAPTURE, MUTTER_INPUT };

/* How a capture shows the pointer (mutter's "cursor-mode"). */
enum mutter_cursor {
    MUTTER_CURSOR_HIDDEN = 0,
    MUTTER_CURSOR_EMBEDDED = 1, /* drawn into the pictures */
    MUTTER_CURSOR_METADATA = 2
};

struct mutter {
    struct DBusConnection *bus;
    char rd[128];     /* the RemoteDesktop session's path, or "" */
    char sc[128];     /* the ScreenCast session's path */
    char stream[128]; /* the stream's path (NotifyPointerMotionAbsolute) */
    uint32_t node;    /* capture: its PipeWire node */
    int x, y, w, h;   /* the monitor in the desktop's layout (w 0: unknown) */
    int closed;       /* mutter ended the session, or went away */
};

/*
 * Does this session look like GNOME: XDG_CURRENT_DESKTOP names GNOME, or
 * mutter's ScreenCast service has an owner on the session bus?  (The
 * host's "auto" picks the pipewire capture and the remotedesktop input
 * then.)  1 or 0.
 */
int mutter_present(void);

/*
 * Connect to the session bus and start a session of kind (cursor: how a
 * capture shows the pointer).  Waits (up to 5 s) for mutter's answers:
 * for a capture, until its PipeWire node is known.  Returns 0, or -ENODEV
 * after one log line naming the bus and the step that failed (no session
 * bus, no mutter, a refusal).  On failure nothing is left open.
 */
int mutter_open(struct mutter *m, enum mutter_kind kind,
                enum mutter_cursor cursor, const char *log_module);

/* The bus connection's fd, to poll for input (-1 when closed). */
int mutter_fd(struct mutter *m);

/*
 * Read what the bus has without waiting; notes the session's end.
 * Returns 0, or -EIO once the session is over (m->closed).
 */
int mutter_pump(struct mutter *m);

/*
 * Call method of the RemoteDesktop session without waiting for an answer
 * (input events: mutter's answers are not asked for).  The arguments are
 * libdbus type / value-pointer pairs ended by DBUS_TYPE_INVALID, as
 * dbus_message_append_args takes them.  Returns 0, or -EIO (the session is
 * over, the bus is gone).
 */
int mutter_notify(struct mutter *m, const char *method, int first_type, ...);

/* Stop the session and close the connection.  Accepts one never opened. */
void mutter_close(struct mutter *m);

#endif

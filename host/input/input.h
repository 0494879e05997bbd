/*
 * Input injection: the viewer's mouse and keyboard replayed on the host's
 * display.  Backends ("xtest", "fake") are a table of function pointers
 * (struct input_driver), listed in input.c in order of preference; the
 * framework allocates each backend's private state (priv_size bytes,
 * zeroed).
 *
 * The framework checks every argument before a backend sees it (events
 * come from the network: bad values are refused with -EINVAL, never
 * asserted), and remembers which keys and buttons are held, so
 * input_release_all() can lift them when a viewer goes away and nothing
 * stays stuck.  Keys are X keysyms: the session layer maps RustDesk's
 * ControlKey / chr / unicode to keysyms.  A keysym the keyboard mapping
 * lacks is typed through a spare keycode temporarily bound to it (as
 * xdotool does); a keysym found only at the shifted level is typed with
 * Shift held around it.
 *
 * Threads: a struct input belongs to one thread at a time (the loop thread
 * in homedesk-host).  Calls do not wait for the X server, except the first
 * key after a keyboard mapping change (one round trip to read it).
 */
#ifndef HD_HOST_INPUT_H
#define HD_HOST_INPUT_H

#include <stddef.h>
#include <stdint.h>

#define INPUT_MAX_HELD  32  /* keys held at once (more are refused) */
#define INPUT_WHEEL_MAX 100 /* wheel steps per call, each axis */
#define INPUT_COORD_MAX 32767
#define INPUT_CODE_MAX  247 /* highest key code (X keycodes end at 255) */
#define INPUT_HELD_CODE 0x80000000u

enum input_button {
    INPUT_BUTTON_LEFT = 1,
    INPUT_BUTTON_MIDDLE,
    INPUT_BUTTON_RIGHT,
    INPUT_BUTTON_BACK,
    INPUT_BUTTON_FORWARD
};
#define INPUT_BUTTON_MAX INPUT_BUTTON_FORWARD

struct input;

struct input_opts {
    const char *display; /* X display ":N"; NULL or "" = $DISPLAY */
};

struct input_driver {
    const char *name;
    const char *description;
    size_t priv_size;
    /* Connect.  Returns 0 or a negative code after one log line
     * (-ENODEV: no display or no XTEST).  On failure open has released
     * all it acquired; close is not called. */
    int (*open)(struct input *in, const struct input_opts *opts);
    /* Release everything (restore borrowed keycodes).  Called once. */
    void (*close)(struct input *in);
    /* Pointer to (x, y) in screen pixels, 0 <= x, y <= INPUT_COORD_MAX
     * (the display clamps to its size).  Returns 0 or -EIO. */
    int (*move)(struct input *in, int x, int y);
    /* Press or release a valid button.  Returns 0 or -EIO. */
    int (*button)(struct input *in, enum input_button b, int down);
    /* Scroll by whole steps: dy > 0 up, dy < 0 down, dx > 0 right,
     * dx < 0 left; |dx|, |dy| <= INPUT_WHEEL_MAX.  Returns 0 or -EIO. */
    int (*wheel)(struct input *in, int dx, int dy);
    /* Press or release the key producing keysym (non-zero).  A release
     * undoes exactly what the matching press did (same keycode, Shift).
     * Returns 0, -ENOENT (no keycode and no spare one), or -EIO. */
    int (*key)(struct input *in, uint32_t keysym, int down);
    /* Press or release the key at a keyboard position: a Linux input
     * event code (KEY_A = 30, 1..INPUT_CODE_MAX), whatever the display's
     * layout makes of it.  Returns 0 or -EIO. */
    int (*code)(struct input *in, unsigned code, int down);
    /* Optional: see input_keysym_to_keycode(). */
    int (*keysym_to_keycode)(struct input *in, uint32_t keysym,
                             uint8_t *keycode, int *shift);
};

/* The framework's object, shared with backends; opaque to users. */
struct input {
    const struct input_driver *driver;
    void *priv;
    /* keys down, in press order: keysyms, or INPUT_HELD_CODE | a code */
    uint32_t held[INPUT_MAX_HELD];
    int n_held;
    unsigned buttons; /* bit b set while button b is down */
};

/*
 * Open the backend called name ("xtest", "fake"), or the first that opens
 * when name is NULL or "auto" (never "fake").  Returns 0 and *out, or
 * -ENOENT for an unknown name, or the backend's error (*out NULL).
 */
int input_open(const char *name, const struct input_opts *opts,
               struct input **out);

/* Release every held key and button, close, free.  Accepts NULL. */
void input_close(struct input *in);

/* Move the pointer to (x, y), absolute screen pixels.  -EINVAL when
 * outside 0..INPUT_COORD_MAX. */
int input_move(struct input *in, int x, int y);

/* Press (down != 0) or release button b.  -EINVAL for an unknown button.
 * Releasing a button that is not down does nothing and returns 0. */
int input_button(struct input *in, enum input_button b, int down);

/* Scroll (see struct input_driver.wheel); larger values are clamped to
 * INPUT_WHEEL_MAX steps. */
int input_wheel(struct input *in, int dx, int dy);

/*
 * Press or release the key for an X keysym (e.g. 0x61 'a', 0xff0d Return,
 * 0x100263a for U+263A).  -EINVAL for keysym 0 or above 0x1ffffff;
 * -ENOSPC when INPUT_MAX_HELD keys are already down.  A press of a key
 * already down is an auto-repeat; releasing a key that is not down does
 * nothing and returns 0.
 */
int input_key(struct input *in, uint32_t keysym, int down);

/*
 * Press or release the key at a keyboard position (RustDesk's map
 * keyboard mode): code is a Linux input event code (KEY_Z = 44), the X
 * keycode minus 8; the display's own layout decides what it types.
 * -EINVAL outside 1..INPUT_CODE_MAX, -ENOSPC as input_key; a press of a
 * key already down is an auto-repeat, releasing one that is not down does
 * nothing.
 */
int input_code(struct input *in, unsigned code, int down);

/* Release every key and button still held (viewer gone).  Returns 0 or
 * the first error. */
int input_release_all(struct input *in);

/*
 * The keycode that types keysym in the current keyboard mapping, and
 * whether Shift is needed (*shift = 1 for the second column).  When the
 * mapping has none, a spare keycode (one with no keysym) is bound to
 * keysym, and stays bound until it is needed for another keysym or the
 * input is closed.  Returns 0, -ENOENT (no spare keycode), -ENOTSUP
 * (backend without keycodes), -EIO.  Outputs cleared on entry.
 */
int input_keysym_to_keycode(struct input *in, uint32_t keysym, uint8_t *keycode,
                            int *shift);

const char *input_name(const struct input *in);

/* ---- the fake backend: records what it is asked to do (tests) ------- */

enum input_event_type {
    INPUT_EV_MOVE,
    INPUT_EV_BUTTON,
    INPUT_EV_WHEEL,
    INPUT_EV_KEY,
    INPUT_EV_CODE
};

struct input_event {
    enum input_event_type type;
    int x, y;        /* MOVE: position; WHEEL: dx, dy */
    int button;      /* BUTTON */
    int down;        /* BUTTON, KEY */
    uint32_t keysym; /* KEY; CODE: the code */
};

#define INPUT_FAKE_MAX 4096 /* events kept; later ones are dropped */

/* The events recorded by a "fake" input, oldest first; *n their number.
 * NULL (and *n = 0) for another backend.  Valid until the next call. */
const struct input_event *input_fake_events(struct input *in, size_t *n);

/* Forget the recorded events. */
void input_fake_clear(struct input *in);

extern const struct input_driver input_driver_sendinput;
extern const struct input_driver input_driver_xtest;
extern const struct input_driver input_driver_wlr;
extern const struct input_driver input_driver_remotedesktop;
extern const struct input_driver input_driver_fake;

#endif

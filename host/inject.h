/*
 * The viewer's MouseEvent and KeyEvent (PROTOCOL.md section 5) turned into
 * host/input calls: mouse mask = buttons << 3 | type (0 move, 1 down,
 * 2 up, 3 wheel; buttons left 1, right 2, middle 4, back 8, forward 16),
 * wheel steps in x/y (y > 0 scrolls up, as RustDesk hosts on X11 do);
 * keys by X keysym: RustDesk's ControlKey through a table, chr/unicode as
 * Latin-1 keysyms or 0x01000000 | code point.  Modifiers listed in an
 * event that are not held are pressed around a character key and
 * released after it (legacy/translate keyboard mode).  seq (a typed
 * string: RustDesk's translate mode and input methods) is typed character
 * by character, each pressed and released by keysym (a character the
 * keymap lacks through a spare keycode, as xdotool type does).  Map mode
 * (RustDesk's "map": the key's place, not its character) has chr = the X
 * keycode of the key on the viewer's keyboard, as a RustDesk viewer on
 * Linux sends it to a Linux host (the kernel's key code + 8): it presses
 * the key at that place on the host's keyboard (input_code), whatever the
 * host's layout makes of it; a map-mode event with a control_key is
 * handled as in the other modes.
 *
 * Every value comes from the network: out-of-range input is refused with
 * -EINVAL (logged at debug by the caller), never asserted.  Loop thread.
 */
#ifndef HD_HOST_INJECT_H
#define HD_HOST_INJECT_H

#include <stdint.h>

#include "host/input/input.h"
#include "message.pb-c.h"

/* Keysym of a ControlKey value, or 0 when it has none. */
uint32_t inject_control_keysym(int control_key);

/* Keysym of a Unicode code point (0 for control characters / invalid). */
uint32_t inject_char_keysym(uint32_t cp);

/* Replay one mouse event.  Returns 0, -EINVAL or the input's error. */
int inject_mouse(struct input *in, const Hbb__MouseEvent *ev);

/* At most this many characters in one KeyEvent.seq (more: -EMSGSIZE). */
#define INJECT_SEQ_MAX 1024

/* Replay one key event (CtrlAltDel and LockScreen as the key combinations
 * Control+Alt+Delete and Super+L).  Returns 0, -EINVAL (also: seq not UTF-8, or
 * a control character in it), -EMSGSIZE, -ENOTSUP or the input's
 * error. */
int inject_key(struct input *in, const Hbb__KeyEvent *ev);

#endif

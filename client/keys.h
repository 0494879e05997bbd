/*
 * The viewer's keyboard modes, as RustDesk has them (KeyEvent.mode):
 *  - legacy: characters as their code point (KeyEvent.chr, pressed), the
 *    other keys as RustDesk's ControlKey, down and up, with the held
 *    modifiers; what homedesk-viewer always did;
 *  - translate: characters as the text the viewer's layout typed
 *    (KeyEvent.seq: the same character arrives whatever the host's
 *    layout), the other keys as in legacy;
 *  - map: every key by its place on the keyboard (KeyEvent.chr = the X
 *    keycode, the kernel's key code + 8, as RustDesk's Linux viewers
 *    send it), down and up: the host's layout decides what it types (a
 *    US viewer's Y on a German host types z).
 */
#ifndef VIEW_KEYS_H
#define VIEW_KEYS_H

#include <SDL.h>

#include "message.pb-c.h"

enum kbd_mode { KBD_LEGACY = 0, KBD_TRANSLATE, KBD_MAP };
#define KBD_N_MODES 3

/* "legacy", "translate", "map" (NULL-terminated, in enum order). */
extern const char *const kbd_mode_names[];

/* The X keycode (the Linux key code + 8) of an SDL scancode's key, or 0
 * for a key that has none. */
unsigned kbd_x_keycode(SDL_Scancode sc);

/* The RustDesk ControlKey of an SDL key (legacy and translate), or 0. */
Hbb__ControlKey kbd_control_key(SDL_Keycode sym);

#endif

/*
 * The client side of zwp_virtual_keyboard_v1 (version 1), written out by
 * hand: Debian 12 ships its XML in no package (it lives in wlroots'
 * source), so wayland-scanner cannot make it.  The messages, as the
 * protocol defines them:
 *
 *   zwp_virtual_keyboard_manager_v1
 *     0 create_virtual_keyboard(object wl_seat, new_id zwp_virtual_keyboard_v1)
 *   zwp_virtual_keyboard_v1 (no events)
 *     0 keymap(uint format, fd, uint size)   an XKB v1 text keymap
 *     1 key(uint time_ms, uint evdev_key, uint state)
 *     2 modifiers(uint depressed, uint latched, uint locked, uint group)
 *     3 destroy()
 *
 * The compositor sends the keymap on to the focused client and delivers
 * keys and modifiers as if from a keyboard: modifiers are never derived
 * from keys, the client must send them.  Header-only, static: include it
 * in one file per program.
 */
#ifndef HD_HOST_INPUT_VKBD_PROTOCOL_H
#define HD_HOST_INPUT_VKBD_PROTOCOL_H

#include <stdint.h>

#include <wayland-client.h>

static const struct wl_interface zwp_virtual_keyboard_v1_interface;

static const struct wl_interface *vkbd_create_types[] = {
    &wl_seat_interface,
    &zwp_virtual_keyboard_v1_interface,
};

static const struct wl_interface *vkbd_null_types[] = { NULL, NULL, NULL,
                                                        NULL };

static const struct wl_message vkbd_manager_requests[] = {
    { "create_virtual_keyboard", "on", vkbd_create_types },
};

static const struct wl_interface zwp_virtual_keyboard_manager_v1_interface = {
    "zwp_virtual_keyboard_manager_v1", 1, 1, vkbd_manager_requests, 0, NULL,
};

static const struct wl_message vkbd_requests[] = {
    { "keymap", "uhu", vkbd_null_types },
    { "key", "uuu", vkbd_null_types },
    { "modifiers", "uuuu", vkbd_null_types },
    { "destroy", "", vkbd_null_types },
};

static const struct wl_interface zwp_virtual_keyboard_v1_interface = {
    "zwp_virtual_keyboard_v1", 1, 4, vkbd_requests, 0, NULL,
};

struct zwp_virtual_keyboard_manager_v1;
struct zwp_virtual_keyboard_v1;

static inline struct zwp_virtual_keyboard_v1 *
vkbd_create(struct zwp_virtual_keyboard_manager_v1 *m, struct wl_seat *seat)
{
    return (struct zwp_virtual_keyboard_v1 *)wl_proxy_marshal_flags(
        (struct wl_proxy *)m, 0, &zwp_virtual_keyboard_v1_interface,
        wl_proxy_get_version((struct wl_proxy *)m), 0, seat, NULL);
}

static inline void vkbd_keymap(struct zwp_virtual_keyboard_v1 *k,
                               uint32_t format, int fd, uint32_t size)
{
    wl_proxy_marshal_flags((struct wl_proxy *)k, 0, NULL,
                           wl_proxy_get_version((struct wl_proxy *)k), 0,
                           format, fd, size);
}

static inline void vkbd_key(struct zwp_virtual_keyboard_v1 *k, uint32_t ms,
                            uint32_t key, uint32_t state)
{
    wl_proxy_marshal_flags((struct wl_proxy *)k, 1, NULL,
                           wl_proxy_get_version((struct wl_proxy *)k), 0, ms,
                           key, state);
}

static inline void vkbd_modifiers(struct zwp_virtual_keyboard_v1 *k,
                                  uint32_t depressed, uint32_t latched,
                                  uint32_t locked, uint32_t group)
{
    wl_proxy_marshal_flags((struct wl_proxy *)k, 2, NULL,
                           wl_proxy_get_version((struct wl_proxy *)k), 0,
                           depressed, latched, locked, group);
}

static inline void vkbd_destroy(struct zwp_virtual_keyboard_v1 *k)
{
    wl_proxy_marshal_flags((struct wl_proxy *)k, 3, NULL,
                           wl_proxy_get_version((struct wl_proxy *)k),
                           WL_MARSHAL_FLAG_DESTROY);
}

#endif

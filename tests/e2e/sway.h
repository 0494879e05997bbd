/*
 * Support for the Wayland end-to-end tests: a private headless sway (1.7:
 * the headless wlroots backend, the pixman renderer, no XWayland, one
 * output HEADLESS-1 of SWAY_W x SWAY_H), its screen read with grim, its
 * windows listed with swaymsg.  (SWAY_W x SWAY_H is the usual output.)
 *
 * sway refuses to run as root: as root it runs as the throw-away system
 * user "hd-sway" (made with useradd when missing) through setpriv, with
 * its own XDG_RUNTIME_DIR (a fresh /tmp/hd-sway-XXXXXX, 0700, owned by
 * that user); root's clients may still connect to its socket.  As another
 * user it runs as that user.  Main thread only.
 */
#ifndef HD_TESTS_E2E_SWAY_H
#define HD_TESTS_E2E_SWAY_H

#include <stdint.h>
#include <sys/types.h>

#define SWAY_W 1280
#define SWAY_H 800

struct desk_sway {
    pid_t pid;
    char rt[64];         /* its XDG_RUNTIME_DIR */
    char log[330];       /* its stderr */
    char env[3][400];    /* XDG_RUNTIME_DIR=, WAYLAND_DISPLAY=, SWAYSOCK= */
    const char *envp[4]; /* env as a NULL-terminated list for desk_spawn */
};

/*
 * Start sway with its output w x h (its log in dir/sway.log) and wait (up
 * to 10 s) until it answers on its IPC socket.  Returns 0, -ENOENT when
 * sway, grim or swaymsg is missing, or -1 (its log says why).
 */
int desk_sway_start(struct desk_sway *s, const char *dir, int w, int h);

/* Stop it and remove its runtime directory; accepts one never started. */
void desk_sway_stop(struct desk_sway *s);

/*
 * Run a shell command with the compositor's environment (its output to the
 * test's stdout).  Returns its exit status, or -1.
 */
int desk_sway_sh(struct desk_sway *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The pixels of output (NULL: of all outputs) through grim, in
 * dir/NAME.png (kept there), as RGB.  Returns 0 with *px (malloc'd), *w,
 * *h, or -1.
 */
int desk_sway_grab(struct desk_sway *s, const char *dir, const char *output,
                   const char *name, uint8_t **px, int *w, int *h);

/*
 * `swaymsg -t get_tree` into buf (cap bytes, NUL-terminated).  Returns
 * its length, or -1.
 */
ssize_t desk_sway_tree(struct desk_sway *s, const char *dir, char *buf,
                       size_t cap);

#endif

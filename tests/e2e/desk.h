/*
 * Support for the end-to-end tests (tests/e2e/): two private X displays
 * (Xvfb, started with -displayfd: parallel runs never collide), pixels
 * read straight off a display with XCB GetImage (fast enough to sample
 * every few milliseconds), the real homedesk-host and homedesk-viewer
 * started against the real server (tests/integration/support.h), the
 * hd-testcard X client, X tools (xdotool, xterm) run on a given display,
 * and a recording TCP proxy to put in front of the relay.
 *
 * Every process started here gets SIGKILL if the test program dies
 * (PR_SET_PDEATHSIG), so a crashed test leaves nothing behind.  Main
 * thread only, except the proxy, which runs its own thread.
 */
#ifndef HD_TESTS_E2E_DESK_H
#define HD_TESTS_E2E_DESK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <xcb/xcb.h>

#include "tests/integration/support.h"
#include "tests/unit/xvfb.h"

/* Every display is this size (xvfb.h's screen). */
#define DESK_W 1280
#define DESK_H 720

struct desk_screen {
    struct xvfb x;
    xcb_connection_t *c;
    xcb_window_t root;
};

struct desk_rect {
    int x, y, w, h;
};

/*
 * Start a private Xvfb and connect to it.  Returns 0, -ENOENT when Xvfb
 * is missing, or another negative errno.
 */
int desk_screen_open(struct desk_screen *s);

/* Disconnect and stop the Xvfb; accepts a screen that never opened. */
void desk_screen_close(struct desk_screen *s);

/*
 * Read rectangle r of the screen into rgb (r.w * r.h * 3 bytes, packed
 * RGB).  Returns 0 or -1.
 */
int desk_grab(struct desk_screen *s, struct desk_rect r, uint8_t *rgb);

/*
 * Bounding box of the pixels that differ between two w x h RGB images.
 * Returns 1 with *box set, or 0 when none differ.
 */
int desk_changed_box(const uint8_t *a, const uint8_t *b, int w, int h,
                     struct desk_rect *box);

/*
 * Does b show a1 where a1 differs from a0 (w x h RGB images)?  True when,
 * in the box where a0 and a1 differ, b is at least 4 times closer (mean
 * squared error) to a1 than to a0 and within min_psnr dB of a1.  *psnr
 * (may be NULL) gets b's PSNR against a1 there.
 */
int desk_shows_change(const uint8_t *a0, const uint8_t *a1, const uint8_t *b,
                      int w, int h, double min_psnr, double *psnr);

/* The pointer image the screen shows now (XFixes). */
struct desk_cursor {
    int w, h, xhot, yhot;
    uint32_t argb[64 * 64]; /* w * h, premultiplied ARGB */
};

/* Read it.  Returns 0, or -1 (no XFixes, or larger than 64x64). */
int desk_cursor(struct desk_screen *s, struct desk_cursor *c);

/* Where the screen's pointer is.  Returns 0 or -1. */
int desk_pointer(struct desk_screen *s, int *x, int *y);

/*
 * The one mapped top-level window of the screen whose WM_NAME starts
 * with prefix: its id and geometry.  Returns 0 or -1 (none).
 */
int desk_find_window(struct desk_screen *s, const char *prefix,
                     xcb_window_t *win, struct desk_rect *geo);

/*
 * Run a shell command with DISPLAY set to the screen's display (NULL:
 * unchanged), output to the test's stdout as diagnostics.  Returns its
 * exit status (-1 when it could not run).
 */
int desk_sh(struct desk_screen *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The same with env ("NAME=value ...", put before the command). */
int desk_vsh(const char *env, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * Start argv[0] (a path, or a name looked up on $PATH) with extra
 * environment entries (NULL-terminated, may be NULL), stdout to out and
 * stderr to err (files, truncated; NULL: /dev/null).  The child dies with
 * this program.  Returns the pid or -1.
 */
pid_t desk_spawn(const char *const *argv, const char *const *env,
                 const char *out, const char *err);

/* SIGTERM, then SIGKILL after ms; reaps.  Returns the exit status like
 * wait_exit (128 + signal when killed), or -1 for pid <= 0. */
int desk_stop(pid_t pid, int ms);

/* CPU seconds (user + system) process pid has used so far, from
 * /proc/PID/stat; -1 when it cannot be read. */
double desk_cpu_seconds(pid_t pid);

/* Read a whole (small) file into buf, NUL-terminated; bytes read or -1. */
ssize_t desk_slurp(const char *path, char *buf, size_t cap);

/* A fresh /tmp/hd-NAME-XXXXXX into dir (cap bytes).  0 or -1. */
int desk_tmp_make(char *dir, size_t cap, const char *name);

/* Remove dir and everything in it, unless HD_KEEP_TMP is set (then say
 * where it is). */
void desk_tmp_done(const char *dir);

/* Print the last lines of a file as test diagnostics ("# " prefix). */
void desk_dump(const char *title, const char *path);

/* ---- homedesk programs ------------------------------------------------- */

struct desk_host {
    pid_t pid;
    char dir[300]; /* its config dir */
    char out[330], log[330];
    char id[16];
    uint16_t port; /* for direct connections */
};

/*
 * Start homedesk-host sharing screen a, registered with server s
 * (password pw, --listen 0, registration every 500 ms), config in
 * dir/host (a NULL: no --display, the host picks its display itself).
 * Waits for its "id:" line (and the listening port) and the
 * registration.  extra:
 * more arguments (NULL-terminated, may be NULL).  Returns 0 or -1.
 */
int desk_host_start(struct desk_host *h, const char *dir, const struct srv *s,
                    struct desk_screen *a, const char *pw,
                    const char *const *extra);

/*
 * The same with another command line in front of the host's options:
 * argv (NULL-terminated, at most 8: e.g. "wine",
 * "build-win/homedesk-host.exe"), extra environment entries env (may be NULL),
 * and wait_ms instead of 10 s for each of its start-up lines (0: 10 s);
 * dir_prefix (may be NULL) goes before the config directory's path ("Z:" for a
 * Windows program under Wine).
 */
struct desk_host_cmd {
    const char *const *argv;
    const char *const *env;
    int wait_ms;
    const char *dir_prefix;
};
int desk_host_start_cmd(struct desk_host *h, const char *dir,
                        const struct srv *s, struct desk_screen *a,
                        const char *pw, const char *const *extra,
                        const struct desk_host_cmd *cmd);
void desk_host_stop(struct desk_host *h);

struct desk_viewer {
    pid_t pid;
    char dir[300];
    char out[330], err[330];
    int status; /* once it exited; -1 before */
};

/*
 * Start homedesk-viewer for host id through server s with password pw:
 * in a window on screen b (--no-overlay), or --headless (b NULL) with
 * its PNG in dir/NAME.  name names its files (dir/NAME.out, .err,
 * config dir/NAME.cfg).  extra: more arguments before the ID; id NULL
 * when extra has --direct.  Returns 0 or -1.
 */
int desk_viewer_start(struct desk_viewer *v, const char *dir, const char *name,
                      const struct srv *s, struct desk_screen *b,
                      const char *pw, const char *id, const char *const *extra);

/*
 * The same with a window whose environment is wenv (NULL-terminated
 * "NAME=value" entries: which display, which SDL driver), or --headless
 * when wenv is NULL.
 */
int desk_viewer_start_env(struct desk_viewer *v, const char *dir,
                          const char *name, const struct srv *s,
                          const char *const *wenv, const char *pw,
                          const char *id, const char *const *extra);

/* Wait up to ms for the viewer to exit; its status, or -1. */
int desk_viewer_wait(struct desk_viewer *v, int ms);

/* Stop a viewer still running (SIGTERM); its status. */
int desk_viewer_stop(struct desk_viewer *v);

/*
 * Wait up to ms for the viewer's first frame; without one, say so with
 * the viewer's output and the host's log (host_log) and return -1.
 */
int desk_viewer_shows(struct desk_viewer *v, const char *host_log, int ms);

/*
 * The milliseconds of sound a stopped viewer dropped because they came
 * late (its queue cut past AUDIO_MAX_MS: latency over completeness), from
 * the summary it logs when it stops; -1 if it said nothing.
 */
long desk_viewer_dropped_ms(const struct desk_viewer *v);

/* Print a viewer's stdout and stderr as diagnostics. */
void desk_viewer_dump(const struct desk_viewer *v);

/*
 * A session on show: homedesk-host sharing screen a (desk_host_start,
 * no extra arguments), and a viewer called "viewer" connected by ID in
 * its window on screen b, waited for until it shows its first frame.
 * Returns 0, or -1 after printing which part failed and its logs.
 */
int desk_share(struct desk_host *h, struct desk_viewer *v, const char *dir,
               const struct srv *s, struct desk_screen *a,
               struct desk_screen *b, const char *pw);

/*
 * The same with more: env (NULL-terminated "NAME=value" entries that
 * stay valid, may be NULL) put into this program's environment first (the
 * host runs inside that desktop session: WAYLAND_DISPLAY, ...), a NULL
 * (no --display: the host picks its backends itself), the host's extra
 * arguments, and show_ms for the first frame.
 */
int desk_share_in(struct desk_host *h, struct desk_viewer *v, const char *dir,
                  const struct srv *s, struct desk_screen *a,
                  const char *const *env, struct desk_screen *b, const char *pw,
                  const char *const *extra, int show_ms);

/*
 * Start hd-testcard on screen a at geometry r, recording into record,
 * with the root painted root_rgb (0xRRGGBB).  Waits until it is painted.
 * Returns the pid or -1.
 */
pid_t desk_card_start(struct desk_screen *a, struct desk_rect r,
                      const char *record, uint32_t root_rgb, const char *dir);

/*
 * From a test card's record: the keys it got (printable keysyms, in
 * order) as a string into out (cap bytes), and the window coordinates of
 * its last button 1 press (0, or -1 when there is none).
 */
void desk_card_keys(const char *record, char *out, size_t cap);
int desk_card_last_click(const char *record, int *x, int *y);

/* Wait (up to 3 s) for a button 1 press recorded after the first n bytes
 * of the record: 0 with its coordinates, or -1 (and says so). */
int desk_card_new_click(const char *record, size_t n, int *x, int *y);

/*
 * Test cases (they check with the harness's HT_ macros) for a session
 * shown 1:1 at the origin of screen b, of a desktop whose card records
 * into record.  desk_case_click: a click on b at x, y (xdotool) reaches
 * the card there (within a pixel).  desk_case_type: text typed on b
 * (xdotool, 20 ms apart) is what the card records (once it has as many
 * keys, wait_ms at most, and a little later: a repeated key would show);
 * for a Wayland card (hd-wlcard), which echoes each key in its strip (the
 * bottom echo_h rows), the time from typing to the strip changing on b is
 * printed (key to screen) and must come within wait_ms.
 */
void desk_case_click(struct desk_screen *b, const char *record, int x, int y);
void desk_case_type(struct desk_screen *b, const char *record, const char *text,
                    int echo_h, int wait_ms);

/*
 * The usual lab: open screens a and b, start hd-testcard on a at card
 * (root painted root_rgb, recording into record, in dir) and
 * homedesk-host sharing a, registered with server s, password pw.  Says
 * what did not start.  Returns the card's pid, or -1.
 */
pid_t desk_lab_start(struct desk_screen *a, struct desk_screen *b,
                     struct desk_rect card, uint32_t root_rgb,
                     const char *record, const char *dir, const struct srv *s,
                     const char *pw, struct desk_host *h);

/* Grab the whole of screens a and b (DESK_W x DESK_H RGB each).  0 or
 * -1. */
int desk_grab_both(struct desk_screen *a, uint8_t *rgb_a, struct desk_screen *b,
                   uint8_t *rgb_b);

/* ---- a sound server ------------------------------------------------------ */

/*
 * Start a private PulseAudio in dir (its socket dir/pulse.sock, a null
 * sink "hd_null" as the default output, so the default monitor source is
 * what is played to it), and wait until it answers.  server gets the
 * PULSE_SERVER value for clients.  Returns the pid, -ENOENT when
 * pulseaudio is not installed, or -1.
 */
pid_t desk_pulse_start(const char *dir, char *server, size_t cap);

/* ---- the clipboard (xclip) --------------------------------------------- */

/*
 * Copy text (through dir/clip-in.txt), or the file at path, on screen s:
 * xclip serves it in the background until another client takes the
 * CLIPBOARD selection.  Returns xclip's status.
 */
int desk_clip_copy(struct desk_screen *s, const char *text, const char *dir);
int desk_clip_copy_file(struct desk_screen *s, const char *path);

/*
 * Paste on screen s until it gives want (n bytes), at most ms.  Returns
 * the milliseconds it took, or -1 (and prints what it got).
 */
int desk_clip_wait(struct desk_screen *s, const char *want, size_t n, int ms);

/* ---- a recording TCP proxy --------------------------------------------- */

struct desk_proxy;

/*
 * Listen on 127.0.0.1 (an ephemeral port, *port) and forward every
 * connection to 127.0.0.1:upstream (set later with desk_proxy_upstream,
 * before the first connection), keeping every byte both ways (up to
 * 64 MiB per direction of each connection).  Returns 0 or -1.
 */
int desk_proxy_start(struct desk_proxy **out, uint16_t *port);

void desk_proxy_upstream(struct desk_proxy *p, uint16_t upstream);

/*
 * Make the proxy a WAN link (before the first connection; this kernel has
 * no netem): each direction delays every byte by delay_ms (one way), lets
 * at most kbps kbit/s through (0: no limit) with a queue of two round
 * trips (reading stops when it is full, so the sender's TCP slows down),
 * and loses loss_permille of the 1448-byte segments, modelled as TCP
 * sees it: the segment, and in-order everything behind it, arrives one
 * round trip late (a fast retransmit).  Counters count bytes as read.
 */
void desk_proxy_shape(struct desk_proxy *p, int delay_ms, int kbps,
                      int loss_permille);

/*
 * Statistics of what went through so far: connections, bytes (all, or
 * only those from the clients: from_upstream 0, or from upstream: 1),
 * and how
 * many times needle (n bytes) occurs in any one direction of any
 * connection (matches across read boundaries count).
 */
size_t desk_proxy_connections(struct desk_proxy *p);
uint64_t desk_proxy_bytes(struct desk_proxy *p);
uint64_t desk_proxy_bytes_from(struct desk_proxy *p, int from_upstream);
size_t desk_proxy_count(struct desk_proxy *p, const void *needle, size_t n);

/*
 * Connection i (0-based, in accept order) as a relay session: xor_leaks
 * (support.h) of its two directions, each starting after its plain frames
 * (RequestRelay and SignedId or PublicKey from the client, the other's
 * SignedId or PublicKey from upstream).  *pairs gets the frame pairs.
 */
size_t desk_proxy_xor_leaks(struct desk_proxy *p, size_t i, size_t *pairs);

/* Stop the thread, close everything, free; accepts NULL. */
void desk_proxy_free(struct desk_proxy *p);

#endif

/*
 * The host's clipboard (DESIGN.md section 3): the desktop's clipboard <->
 * text for the viewers.  A backend ("x11", "fake") watches the desktop's
 * clipboard and takes it over when a viewer pastes; this framework hands
 * what the desktop copies to the loop thread (uv_async) and calls on_text
 * there, drops echoes and oversized text, and picks the backend.
 *
 * Backends are a table of function pointers (struct clip_driver, as mpv's
 * struct vo_driver), listed in clipboard.c in order of preference ("auto"
 * opens the first that opens; "fake" is for unit tests and never picked
 * automatically); the framework allocates each backend's private state
 * (priv_size bytes, zeroed) and frees it after close.  A Windows backend
 * (win32.c: a message-only window on a thread of its own, AddClipboard-
 * FormatListener) or a Wayland one (wlr-data-control) is one more file
 * here and one more line in the table.
 *
 * Invariants:
 * - Text is UTF-8 both ways, at most HD_CLIP_MAX bytes (common/clip.h); a
 *   larger copy is one log line and is not passed on.
 * - No echo: text a viewer just pasted, or the text last passed on, is not
 *   reported back when the desktop offers it again.
 * - After clip_stop() returns, on_text is never called again.
 *
 * Threads: clip_start, clip_stop, clip_set and on_text on the loop thread.
 * A backend may run a thread of its own; clip_report() is for it (any
 * thread).
 */
#ifndef HD_HOST_CLIPBOARD_H
#define HD_HOST_CLIPBOARD_H

#include <stddef.h>

#include <uv.h>

struct hclip;

/* Text copied on the host's desktop (not NUL-terminated; n bytes). */
typedef void (*hclip_text_cb)(void *ud, const char *text, size_t n);

struct clip_opts {
    /* x11: the X display whose CLIPBOARD selection is shared; NULL = no X
     * display to share (x11 does not open: -ENODEV). */
    const char *display;
    /* wlr: the Wayland display whose clipboard is shared; NULL = none
     * (wlr does not open: -ENODEV). */
    const char *wayland_display;
};

struct clip_driver {
    const char *name;
    const char *description;
    /* Bytes of private state allocated (zeroed) into c->priv before open
     * and freed after close. */
    size_t priv_size;
    /*
     * Connect to the desktop's clipboard and start watching it (from now
     * on, report each new copy with clip_report()).  Loop thread.
     * Returns 0, or a negative code after one log line (-ENODEV: no such
     * desktop; -ENOTSUP: it lacks what the backend needs).  On failure
     * open has released all it acquired; close is not called.
     */
    int (*open)(struct hclip *c, const struct clip_opts *opts);
    /*
     * Make text (n bytes of UTF-8, NUL-terminated; the backend owns and
     * frees it) the desktop clipboard's content, served to the desktop's
     * paste requests until another program copies.  Loop thread; must not
     * wait for the desktop.
     */
    void (*set)(struct hclip *c, char *text, size_t n);
    /* Stop watching and release everything open acquired; no
     * clip_report() after it returns.  Loop thread, once, after a good
     * open. */
    void (*close)(struct hclip *c);
};

/*
 * The framework's object, shared with backends: they use driver and priv
 * and treat the rest as the framework's.
 */
struct hclip {
    const struct clip_driver *driver;
    void *priv; /* driver->priv_size bytes */
    uv_async_t async;
    hclip_text_cb cb;
    void *ud;
    uv_mutex_t mu; /* guards what follows */
    char *out;     /* reported, for the loop (NULL: nothing) */
    size_t out_n;
    char *last; /* the text last passed either way (no echo) */
    size_t last_n;
};

/*
 * Open the backend called name ("wlr", "x11", "fake"), or the first in order of
 * preference that opens when name is NULL or "auto".  Returns 0 and *out,
 * -ENOENT for an unknown name, or the backend's error (*out NULL).
 */
int clip_start(uv_loop_t *loop, const char *name, const struct clip_opts *opts,
               hclip_text_cb cb, void *ud, struct hclip **out);

/* Make text (n bytes) the desktop clipboard's content.  Copied. */
void clip_set(struct hclip *c, const char *text, size_t n);

/* Stop the backend and free everything (after the loop has run the
 * handle's close).  Accepts NULL. */
void clip_stop(struct hclip *c);

/* The backend's name. */
const char *clip_name(const struct hclip *c);

/* Backend names in order of preference, NULL-terminated. */
const char *const *clip_list(void);

/*
 * For backends: the desktop copied text (n bytes of UTF-8).  Copied; any
 * thread.  Empty text, text above HD_CLIP_MAX (logged) and an echo of the
 * text last passed either way are dropped.
 */
void clip_report(struct hclip *c, const char *text, size_t n);

/*
 * The fake backend, for tests: clip_fake_copy() is the desktop copying
 * text (reported as a backend would); clip_fake_content() is what the
 * desktop would paste now (NULL: nothing set yet), valid until the next
 * clip_set().
 */
void clip_fake_copy(struct hclip *c, const char *text);
const char *clip_fake_content(const struct hclip *c);

extern const struct clip_driver clip_driver_win32;
extern const struct clip_driver clip_driver_wlr;
extern const struct clip_driver clip_driver_x11;
extern const struct clip_driver clip_driver_fake;

#endif

/*
 * SDL presentation and input.  See window.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <SDL.h>

#include "client/browse.h"
#include "client/font.h"
#include "client/wayland.h"
#include "client/keys.h"
#include "client/menu.h"
#include "client/pointer.h"
#include "client/texture.h"
#include "client/winclip.h"
#include "err.h"
#include "client/window.h"
#include "log.h"

enum {
    EV_READY = 0,
    EV_PICTURE,
    EV_END,
    EV_TICK,
    EV_CLIP,
    EV_SCALE,
    EV_XFER,
    EV_CURSOR,
    EV_COUNT
};

#define OVERLAY_SCALE 2 /* font pixels per screen pixel at scale 1 */
#define TICK_MS       1000
#define SEAT_WAIT_MS  5000 /* for a Wayland compositor to offer a seat */
#define MAX_HELD_MODS 4    /* Ctrl/Alt presses held back (see hold_mod) */
#define XFER_SHOW_MS  6000 /* how long the bar shows how a transfer ended */
#define XFER_TICK_MS  200  /* the bar's steps while a transfer runs */

struct win {
    struct win_opts o;
    Uint32 ev_base;
    SDL_Window *win;
    SDL_Renderer *ren;
    SDL_Texture *tex;
    int tex_w, tex_h;
    int tex_cs;  /* the pictures' chroma shift: 1 IYUV texture, 0 ARGB */
    int partial; /* the renderer draws into the window's surface (software):
                  * a picture may be presented by its changed area only */
    SDL_TimerID tick;

    pthread_mutex_t mu; /* guards the hand-over below */
    struct pic *pending;
    int pic_posted;
    int end_status;
    char end_msg[320];
    int ended;
    struct wclip *clip; /* the shared clipboard (winclip.h) */

    struct ptr *ptr;    /* the host's pointer (pointer.h) */
    int disp_w, disp_h; /* the host's display */
    int one_to_one, fullscreen, grab, overlay;
    SDL_Rect dst;     /* where the picture is, in renderer pixels */
    int hidpi;        /* renderer pixels per window unit (the output scale) */
    struct pic *last; /* the picture on show, to upload into a new window */
    struct wlv *wl;   /* our own Wayland connection (SDL on Wayland) */
    struct sess *s;
    struct dec *d;
    struct menu *menu; /* the in-session menu (menu.h), or NULL */
    struct browse *br; /* the host's files, to receive (browse.h), or NULL */
    int view_only, quality;
    int kbd; /* enum kbd_mode */
    /* dropped files (w->o.drop): the last status, and until when the bar
     * shows how the last transfer ended */
    struct drop_status xst;
    Uint32 xst_until;
    int bar_was;       /* bar_shown() at the last poll */
    SDL_TimerID xtick; /* EV_XFER while a transfer runs, else 0 */
    /* overlay figures, refreshed every TICK_MS */
    uint64_t shown, shown_then, bytes_then;
    Uint32 then_ms;
    double fps, kbps;
    char line[128];
    /* keyboard (main thread): Ctrl/Alt presses not yet sent (they may be
     * the start of one of our hotkeys), whether a key was typed while they
     * were held, keys whose release is not sent (hotkey modifiers, keys
     * typed as text) */
    SDL_Scancode held_mods[MAX_HELD_MODS];
    Hbb__ControlKey held_cks[MAX_HELD_MODS];
    int n_held_mods, held_used;
    Uint8 drop_up[SDL_NUM_SCANCODES];
};

static void push(struct win *w, int type, int code)
{
    SDL_Event ev;

    SDL_zero(ev);
    ev.type = w->ev_base + (Uint32)type;
    ev.user.code = code;
    if (SDL_PushEvent(&ev) < 0)
        hd_warn("window", "cannot post an event: %s", SDL_GetError());
}

/*
 * Which SDL video driver: Wayland first when the session has a Wayland
 * compositor (SDL's own order prefers X11, which a sway session also has
 * through XWayland), X11 otherwise; SDL_VIDEODRIVER, when set, decides.
 * On Wayland the compositor must offer a seat before SDL starts there (SDL
 * 2.26 crashes without one): wait for it, else use X11 when there is a
 * DISPLAY.  Keeps the connection in w->wl.  Returns 0 or -ENODEV.
 */
static int pick_driver(struct win *w)
{
    const char *env = getenv("SDL_VIDEODRIVER"), *x = getenv("DISPLAY");
    int r, chosen = env != NULL && env[0] != '\0';

    if (chosen && strstr(env, "wayland") == NULL)
        return 0;
    if ((r = wlv_open(&w->wl)) != 0) {
        if (r != -ENOENT)
            hd_warn("window",
                    "no Wayland compositor answers on "
                    "WAYLAND_DISPLAY=%s: trying X11",
                    getenv("WAYLAND_DISPLAY"));
        return 0;
    }
    if ((r = wlv_wait_seat(w->wl, 0)) == 0) {
        hd_info("window",
                "the Wayland compositor on %s offers no seat yet: waiting "
                "up to %d s for one",
                wlv_name(w->wl), SEAT_WAIT_MS / 1000);
        r = wlv_wait_seat(w->wl, SEAT_WAIT_MS);
    }
    if (r > 0) {
        /* (override: SDL lets an empty SDL_VIDEODRIVER beat the hint) */
        if (!chosen)
            SDL_SetHintWithPriority(SDL_HINT_VIDEODRIVER, "wayland,x11",
                                    SDL_HINT_OVERRIDE);
        return 0;
    }
    if (!chosen && x != NULL && x[0] != '\0') {
        hd_warn("window",
                "the Wayland compositor on %s offers no seat (no keyboard "
                "or mouse): opening the window on X11 display %s instead",
                wlv_name(w->wl), x);
        SDL_SetHintWithPriority(SDL_HINT_VIDEODRIVER, "x11", SDL_HINT_OVERRIDE);
        wlv_free(w->wl);
        w->wl = NULL;
        return 0;
    }
    hd_error("window",
             "the Wayland compositor on %s offers no seat (no keyboard or "
             "mouse), and SDL cannot open a window there without one: run "
             "the viewer in a session with a seat, or with --headless",
             wlv_name(w->wl));
    return -ENODEV;
}

static void on_scale(void *ud);

int win_new(const struct win_opts *o, struct win **out)
{
    struct win *w;
    const char *drv;

    *out = NULL;
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return -1;
    if (pick_driver(w) != 0) {
        wlv_free(w->wl);
        free(w);
        return -1;
    }
    if (SDL_Init(SDL_INIT_VIDEO | SDL_INIT_TIMER) != 0) {
        hd_error("window", "SDL: %s", SDL_GetError());
        wlv_free(w->wl);
        free(w);
        return -1;
    }
    tex_init();
    drv = SDL_GetCurrentVideoDriver();
    hd_info("window", "video: %s", drv ? drv : "?");
    if (drv == NULL || strcmp(drv, "wayland") != 0) {
        wlv_free(w->wl);
        w->wl = NULL;
    }
    w->o = *o;
    w->kbd = o->keyboard >= 0 && o->keyboard < KBD_N_MODES ? o->keyboard
                                                           : KBD_LEGACY;
    w->overlay = o->overlay;
    w->hidpi = 1;
    w->ev_base = SDL_RegisterEvents(EV_COUNT);
    if (w->ev_base == (Uint32)-1 || ptr_new(&w->ptr) != 0 ||
        wclip_new(o->clipboard, &w->clip) != 0) {
        hd_error("window", "SDL: no user events left (or no memory)");
        ptr_free(w->ptr);
        wclip_free(w->clip);
        wlv_free(w->wl);
        free(w);
        SDL_Quit();
        return -1;
    }
    pthread_mutex_init(&w->mu, NULL);
    if (w->wl != NULL && wlv_watch(w->wl, on_scale, w) != 0)
        hd_warn("window", "output scale changes will not be followed");
    *out = w;
    return 0;
}

void win_post_ready(struct win *w, int width, int height)
{
    pthread_mutex_lock(&w->mu);
    w->disp_w = width;
    w->disp_h = height;
    pthread_mutex_unlock(&w->mu);
    push(w, EV_READY, 0);
}

void win_post_picture(struct win *w, struct pic *p)
{
    int post;

    pthread_mutex_lock(&w->mu);
    if (w->pending != NULL) { /* not shown yet: newest wins, and what */
        pic_rect_union(&p->dirty, &w->pending->dirty); /* either changed */
        pic_free(w->pending);
    }
    w->pending = p;
    post = !w->pic_posted;
    w->pic_posted = 1;
    pthread_mutex_unlock(&w->mu);
    if (post)
        push(w, EV_PICTURE, 0);
}

void win_post_end(struct win *w, int status, const char *msg)
{
    pthread_mutex_lock(&w->mu);
    w->ended = 1;
    w->end_status = status;
    snprintf(w->end_msg, sizeof(w->end_msg), "%s", msg ? msg : "");
    pthread_mutex_unlock(&w->mu);
    push(w, EV_END, status);
}

void win_post_cursor(struct win *w, const Hbb__Message *m)
{
    if (ptr_post(w->ptr, m))
        push(w, EV_CURSOR, 0);
}

void win_post_clipboard(struct win *w, const char *text, size_t n)
{
    if (wclip_post(w->clip, text, n))
        push(w, EV_CLIP, 0);
}

const char *win_end_message(const struct win *w)
{
    return w->end_msg[0] ? w->end_msg : NULL;
}

static Uint32 on_tick(Uint32 interval, void *ud)
{
    push(ud, EV_TICK, 0);
    return interval;
}

static Uint32 on_xfer_tick(Uint32 interval, void *ud)
{
    push(ud, EV_XFER, 0);
    return interval;
}

/* The Wayland watch thread: an output's scale changed. */
static void on_scale(void *ud)
{
    push(ud, EV_SCALE, 0);
}

/* ---- drawing ------------------------------------------------------------ */

static void layout(struct win *w)
{
    int ow, oh, ww, wh;
    double sx, sy, s;

    if (w->ren == NULL)
        return;
    SDL_GetRendererOutputSize(w->ren, &ow, &oh);
    SDL_GetWindowSize(w->win, &ww, &wh);
    w->hidpi = ww > 0 && ow > ww ? (ow + ww / 2) / ww : 1;
    if (w->tex_w == 0 || ow <= 0 || oh <= 0) {
        w->dst = (SDL_Rect){ 0, 0, ow, oh };
        return;
    }
    if (w->one_to_one) {
        w->dst.w = w->tex_w;
        w->dst.h = w->tex_h;
    } else {
        sx = (double)ow / w->tex_w;
        sy = (double)oh / w->tex_h;
        s = sx < sy ? sx : sy;
        w->dst.w = (int)(w->tex_w * s + 0.5);
        w->dst.h = (int)(w->tex_h * s + 0.5);
    }
    w->dst.x = (ow - w->dst.w) / 2;
    w->dst.y = (oh - w->dst.h) / 2;
    hd_debug("window", "output %dx%d, picture %dx%d at %d,%d (%s)", ow, oh,
             w->dst.w, w->dst.h, w->dst.x, w->dst.y,
             w->one_to_one ? "1:1" : "fit");
}

static void draw_text(struct win *w, int x, int y, const char *t)
{
    SDL_Rect px[FONT_W * FONT_H];
    uint8_t rows[FONT_H];
    int n, r, c, k = OVERLAY_SCALE * w->hidpi;

    for (; *t; t++, x += (FONT_W + 1) * k) {
        if (!font_glyph(*t, rows))
            continue;
        n = 0;
        for (r = 0; r < FONT_H; r++)
            for (c = 0; c < FONT_W; c++)
                if (rows[r] & (0x10 >> c))
                    px[n++] = (SDL_Rect){ x + c * k, y + r * k, k, k };
        SDL_RenderFillRects(w->ren, px, n);
    }
}

static void update_stats(struct win *w)
{
    struct sess_stats st;
    struct dec_stats ds;
    Uint32 now = SDL_GetTicks();
    double secs = (now - w->then_ms) / 1000.0;

    sess_get_stats(w->s, &st);
    dec_get_stats(w->d, &ds);
    if (w->then_ms != 0 && secs > 0) {
        w->fps = (double)(w->shown - w->shown_then) / secs;
        w->kbps = (double)(st.video_bytes - w->bytes_then) * 8 / 1000 / secs;
    }
    w->then_ms = now;
    w->shown_then = w->shown;
    w->bytes_then = st.video_bytes;
    snprintf(w->line, sizeof(w->line),
             "fps %.0f  kbps %.0f  rtt %u ms  dec %.1f ms  %s%s", w->fps,
             w->kbps, st.rtt_ms, ds.decode_ms,
             st.path < 0 ? "-" : rv_path_name((enum rv_path)st.path),
             st.legacy ? "  legacy encryption" : "");
}

/* Is the transfer bar up: a transfer runs, or one ended a moment ago? */
static int bar_shown(const struct win *w)
{
    return w->xst.active ||
           (w->xst.msg[0] && !SDL_TICKS_PASSED(SDL_GetTicks(), w->xst_until));
}

static void menu_state_of(const struct win *w, struct menu_state *st)
{
    memset(st, 0, sizeof(*st));
    st->view_only = w->view_only;
    st->quality = w->quality;
    st->one_to_one = w->one_to_one;
    st->fullscreen = w->fullscreen;
    st->grab = w->grab;
    st->stats = w->overlay;
    st->keyboard = w->kbd;
    st->can_send_files = w->o.drop != NULL;
    st->drop_to = w->o.drop != NULL ? drop_folder(w->o.drop) : NULL;
    st->xfer = bar_shown(w) ? &w->xst : NULL;
    if (w->s != NULL) {
        struct sess_stats ss;

        sess_get_stats(w->s, &ss);
        st->n_displays = ss.n_displays;
        st->display = ss.display;
    }
}

static void render(struct win *w)
{
    SDL_Rect bg;
    int k = OVERLAY_SCALE * w->hidpi, m = 4 * w->hidpi;

    if (w->ren == NULL)
        return;
    SDL_SetRenderDrawColor(w->ren, 0, 0, 0, 255);
    SDL_RenderClear(w->ren);
    if (w->tex != NULL)
        SDL_RenderCopy(w->ren, w->tex, NULL, &w->dst);
    if (w->overlay && w->line[0]) {
        bg = (SDL_Rect){ m, m, (int)strlen(w->line) * (FONT_W + 1) * k + 2 * m,
                         FONT_H * k + 2 * m };
        SDL_SetRenderDrawBlendMode(w->ren, SDL_BLENDMODE_BLEND);
        SDL_SetRenderDrawColor(w->ren, 0, 0, 0, 160);
        SDL_RenderFillRect(w->ren, &bg);
        SDL_SetRenderDrawColor(w->ren, 255, 255, 0, 255);
        draw_text(w, 2 * m, 2 * m, w->line);
    }
    if (w->menu != NULL) {
        struct menu_state st;

        menu_state_of(w, &st);
        menu_draw(w->menu, &st);
    }
    if (w->br != NULL)
        browse_draw(w->br);
    SDL_RenderPresent(w->ren);
}

/*
 * Present only what changed: with a software renderer (it draws into the
 * window's surface), the picture 1:1 and nothing drawn over it, the
 * changed area is converted, copied and pushed to the screen alone (an
 * X11 XShmPutImage of that area: typing costs the viewer ~nothing, where
 * a whole-window present costs milliseconds of CPU per frame).  Nothing
 * changed: nothing to do.  Returns 0 when done, -1 when a whole render is
 * needed.
 */
static int present_part(struct win *w, const struct pic *p)
{
    const struct pic_rect *r = &p->dirty;
    SDL_Rect src, dst;

    if (r->w <= 0 || r->h <= 0)
        return 0;
    if (!w->partial || w->overlay || w->dst.w != w->tex_w ||
        w->dst.h != w->tex_h || (r->w == p->w && r->h == p->h))
        return -1;
    src = (SDL_Rect){ r->x, r->y, r->w, r->h };
    dst = (SDL_Rect){ w->dst.x + r->x, w->dst.y + r->y, r->w, r->h };
    if (w->menu != NULL && menu_covers(w->menu, &dst))
        return -1; /* the menu is drawn over that area */
    tex_update(w->tex, p, r);
    SDL_RenderCopy(w->ren, w->tex, &src, &dst);
    SDL_RenderFlush(w->ren);
    SDL_UpdateWindowSurfaceRects(w->win, &dst, 1);
    return 0;
}

/* The texture for p's size (made anew, and then all of p is dirty).  0 or
 * -1. */
static int ensure_texture(struct win *w, struct pic *p)
{
    if (w->tex == NULL || w->tex_w != p->w || w->tex_h != p->h ||
        w->tex_cs != p->cs) {
        if (w->tex != NULL)
            SDL_DestroyTexture(w->tex);
        w->tex = tex_new(w->ren, p);
        if (w->tex == NULL) {
            hd_error("window", "texture %dx%d: %s", p->w, p->h, SDL_GetError());
            return -1;
        }
        w->tex_w = p->w;
        w->tex_h = p->h;
        w->tex_cs = p->cs;
        layout(w);
        p->dirty = (struct pic_rect){ 0, 0, p->w, p->h };
    }
    return 0;
}

static void show_picture(struct win *w)
{
    struct pic *p;

    pthread_mutex_lock(&w->mu);
    p = w->pending;
    w->pending = NULL;
    w->pic_posted = 0;
    pthread_mutex_unlock(&w->mu);
    if (p == NULL || w->ren == NULL || ensure_texture(w, p) != 0) {
        pic_free(p);
        return;
    }
    if (present_part(w, p) != 0) {
        tex_update(w->tex, p, &p->dirty);
        render(w);
    }
    pic_free(w->last); /* kept for a window made anew (scale change) */
    w->last = p;
    if (w->shown++ == 0)
        hd_info("window", "first frame shown");
}

/*
 * Is the renderer OpenGL executed on the CPU (Mesa's llvmpipe, softpipe,
 * swrast)?  Its context is current right after SDL_CreateRenderer.  An
 * explicit SDL_RENDER_DRIVER choice is left alone.
 */
static int gl_on_cpu(SDL_Renderer *ren)
{
    const unsigned char *(*get_string)(unsigned);
    SDL_RendererInfo ri;
    const char *s;

    if (SDL_GetHint(SDL_HINT_RENDER_DRIVER) != NULL ||
        SDL_GetRendererInfo(ren, &ri) != 0 || strncmp(ri.name, "opengl", 6))
        return 0;
    get_string = (const unsigned char *(*)(unsigned))SDL_GL_GetProcAddress(
        "glGetString");
    if (get_string == NULL ||
        (s = (const char *)get_string(0x1F01 /* GL_RENDERER */)) == NULL)
        return 0;
    return strstr(s, "llvmpipe") != NULL || strstr(s, "softpipe") != NULL ||
           strstr(s, "Software Rasterizer") != NULL || strstr(s, "swrast");
}

static int on_x11(void)
{
    const char *d = SDL_GetCurrentVideoDriver();

    return d != NULL && strcmp(d, "x11") == 0;
}

/* The SDL window ww x wh (window units) and its renderer.  0 or -1. */
static int make_window(struct win *w, int ww, int wh)
{
    char title[256];

    snprintf(title, sizeof(title), "homedesk: %s", w->o.title);
    w->win = SDL_CreateWindow(
        title, SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, ww, wh,
        SDL_WINDOW_RESIZABLE | SDL_WINDOW_ALLOW_HIGHDPI |
            (w->fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0));
    if (w->win == NULL) {
        hd_error("window", "cannot create the window: %s", SDL_GetError());
        return -1;
    }
    /* no GPU device at all: GL could only run on the CPU; skip its
     * start-up (seconds of llvmpipe set-up on a loaded machine) */
    if (on_x11() && SDL_GetHint(SDL_HINT_RENDER_DRIVER) == NULL &&
        access("/dev/dri", F_OK) != 0)
        SDL_SetHint(SDL_HINT_FRAMEBUFFER_ACCELERATION, "0");
    else
        w->ren = SDL_CreateRenderer(w->win, -1, SDL_RENDERER_PRESENTVSYNC);
    if (w->ren != NULL && on_x11() && gl_on_cpu(w->ren)) {
        /* GL drawn by the CPU (llvmpipe: no GPU, Xvfb): every present
         * converts and pushes the whole window; our own software path
         * straight to the X server pushes only what changed (X11 only:
         * SDL has no window surface of its own on Wayland, and drawing
         * there at the output scale needs the GL renderer) */
        SDL_DestroyRenderer(w->ren);
        SDL_SetHint(SDL_HINT_FRAMEBUFFER_ACCELERATION, "0");
        w->ren = NULL;
    }
    if (w->ren == NULL)
        w->ren = SDL_CreateRenderer(w->win, -1, SDL_RENDERER_SOFTWARE);
    if (w->ren == NULL) {
        hd_error("window", "cannot create a renderer: %s", SDL_GetError());
        SDL_DestroyWindow(w->win);
        w->win = NULL;
        return -1;
    }
    {
        SDL_RendererInfo ri;

        w->partial = SDL_GetRendererInfo(w->ren, &ri) == 0 &&
                     (ri.flags & SDL_RENDERER_SOFTWARE) != 0;
        hd_info("window", "renderer: %s%s", ri.name,
                w->partial ? " (presents changed areas only)" : "");
    }
    if (w->grab)
        SDL_SetWindowKeyboardGrab(w->win, SDL_TRUE);
    /* the menu and the browser draw with this renderer (a window made
     * anew gets them anew) */
    menu_free(w->menu);
    w->menu = NULL;
    browse_free(w->br);
    w->br = NULL;
    if (menu_new(w->ren, &w->menu) != 0)
        hd_warn("window", "no in-session menu (no font)");
    layout(w);
    return 0;
}

/* The window's size for the host's display: the same, or scaled down
 * until it fits ours. */
static void window_size(struct win *w, int *ww, int *wh)
{
    SDL_Rect usable;

    pthread_mutex_lock(&w->mu);
    *ww = w->disp_w;
    *wh = w->disp_h;
    pthread_mutex_unlock(&w->mu);
    if (SDL_GetDisplayUsableBounds(0, &usable) == 0) {
        /* a display larger than ours starts scaled down to fit */
        while (*ww > usable.w || *wh > usable.h) {
            *ww = *ww * 3 / 4;
            *wh = *wh * 3 / 4;
        }
    }
}

/* The host now shows another display (menu.h): the window follows its
 * size, unless fullscreen. */
static void window_resize(struct win *w)
{
    int ww, wh;

    if (w->fullscreen)
        return;
    window_size(w, &ww, &wh);
    SDL_SetWindowSize(w->win, ww, wh);
    SDL_SetWindowPosition(w->win, SDL_WINDOWPOS_CENTERED,
                          SDL_WINDOWPOS_CENTERED);
}

static int open_window(struct win *w)
{
    int ww, wh;

    window_size(w, &ww, &wh);
    w->fullscreen = w->o.fullscreen;
    if (make_window(w, ww, wh) != 0)
        return -1;
    update_stats(w);
    w->tick = SDL_AddTimer(TICK_MS, on_tick, w);
    render(w);
    return 0;
}

/*
 * The output scale changed (Wayland).  SDL 2.26 keeps a window's buffer
 * scale until its surface enters another output, so the picture would be
 * drawn at the old scale and stretched by the compositor: make the window
 * anew (its surface enters the output at the new scale) and show the last
 * picture in it.  A fullscreen window is rescaled by SDL itself.
 */
static void rescale(struct win *w)
{
    int ww, wh, want = wlv_scale(w->wl);

    if (w->win == NULL)
        return;
    layout(w);
    if (want == w->hidpi || w->fullscreen) {
        render(w);
        return;
    }
    hd_info("window", "output scale %d (window at %d): making the window anew",
            want, w->hidpi);
    SDL_GetWindowSize(w->win, &ww, &wh);
    if (w->tex != NULL)
        SDL_DestroyTexture(w->tex);
    w->tex = NULL;
    w->tex_w = w->tex_h = 0;
    SDL_DestroyRenderer(w->ren);
    w->ren = NULL;
    SDL_DestroyWindow(w->win);
    w->win = NULL;
    if (make_window(w, ww, wh) != 0) {
        win_post_end(w, 1, "cannot make the window anew at the new scale");
        return;
    }
    if (w->last != NULL && ensure_texture(w, w->last) == 0)
        tex_update(w->tex, w->last, NULL);
    render(w);
}

/* ---- input --------------------------------------------------------------- */

static size_t modifiers(Hbb__ControlKey *out)
{
    SDL_Keymod m = SDL_GetModState();
    size_t n = 0;

    if (m & KMOD_CTRL)
        out[n++] = HBB__CONTROL_KEY__Control;
    if (m & KMOD_SHIFT)
        out[n++] = HBB__CONTROL_KEY__Shift;
    if (m & KMOD_ALT)
        out[n++] = HBB__CONTROL_KEY__Alt;
    if (m & KMOD_GUI)
        out[n++] = HBB__CONTROL_KEY__Meta;
    return n;
}

/* Window coordinates to the host display's, through the current scaling. */
static int map_xy(struct win *w, int x, int y, int *hx, int *hy)
{
    struct sess_stats st;
    int ww, wh, ow, oh;
    double fx, fy;

    if (w->dst.w <= 0 || w->dst.h <= 0 || w->disp_w <= 0)
        return -1;
    SDL_GetWindowSize(w->win, &ww, &wh);
    SDL_GetRendererOutputSize(w->ren, &ow, &oh);
    fx = ww > 0 ? (double)x * ow / ww : x; /* HiDPI: window -> pixels */
    fy = wh > 0 ? (double)y * oh / wh : y;
    fx = (fx - w->dst.x) * w->disp_w / w->dst.w;
    fy = (fy - w->dst.y) * w->disp_h / w->dst.h;
    *hx = fx < 0 ? 0 : fx >= w->disp_w ? w->disp_w - 1 : (int)fx;
    *hy = fy < 0 ? 0 : fy >= w->disp_h ? w->disp_h - 1 : (int)fy;
    /* the host's desktop coordinates: the shown display's offset */
    sess_get_stats(w->s, &st);
    *hx += st.disp_x;
    *hy += st.disp_y;
    return 0;
}

static void send_mouse(struct win *w, int mask, int x, int y)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__MouseEvent me = HBB__MOUSE_EVENT__INIT;
    Hbb__ControlKey mods[4];

    me.mask = mask;
    me.x = x;
    me.y = y;
    if (mask != 3) /* not the wheel */
        ptr_sent(w->ptr, x, y);
    me.n_modifiers = modifiers(mods);
    me.modifiers = mods;
    m.union_case = HBB__MESSAGE__UNION_MOUSE_EVENT;
    m.mouse_event = &me;
    sess_send(w->s, &m);
}

/*
 * News of the host's pointer (pointer.h): its shape, and a move the host
 * made itself (not our echo), which moves ours too while it is over the
 * window (the same point of the picture).
 */
static void pointer_news(struct win *w)
{
    struct sess_stats st;
    int x, y, ww, wh, ow, oh;

    ptr_show(w->ptr, w->win != NULL);
    if (w->win == NULL || !ptr_moved(w->ptr, &x, &y) ||
        SDL_GetMouseFocus() != w->win || w->dst.w <= 0 || w->disp_w <= 0)
        return;
    sess_get_stats(w->s, &st);
    x -= st.disp_x;
    y -= st.disp_y;
    if (x < 0 || y < 0 || x >= w->disp_w || y >= w->disp_h)
        return; /* on another of the host's displays */
    SDL_GetWindowSize(w->win, &ww, &wh);
    SDL_GetRendererOutputSize(w->ren, &ow, &oh);
    /* the middle of the host's pixel, as map_xy takes it back */
    x = w->dst.x + (int)((x + 0.5) * w->dst.w / w->disp_w);
    y = w->dst.y + (int)((y + 0.5) * w->dst.h / w->disp_h);
    if (ow > 0 && oh > 0) { /* HiDPI: pixels -> window */
        x = x * ww / ow;
        y = y * wh / oh;
    }
    hd_debug("window", "the host moved its pointer: ours to %d,%d", x, y);
    SDL_WarpMouseInWindow(w->win, x, y);
}

static int sdl_button(Uint8 b)
{
    switch (b) {
    case SDL_BUTTON_LEFT:
        return 1;
    case SDL_BUTTON_RIGHT:
        return 2;
    case SDL_BUTTON_MIDDLE:
        return 4;
    case SDL_BUTTON_X1:
        return 8;
    case SDL_BUTTON_X2:
        return 16;
    default:
        return 0;
    }
}

static int printable(SDL_Keycode sym)
{
    return sym > 0 && sym < 0x110000 && !(sym & SDLK_SCANCODE_MASK);
}

/* One KeyEvent: a control key (ck != 0) or a character; down 1/0, or
 * press (down and up) when down is -1, a typed character: it says what
 * the keyboard's state made, so no modifiers go with it. */
static const Hbb__KeyboardMode WIRE_MODE[KBD_N_MODES] = {
    [KBD_LEGACY] = HBB__KEYBOARD_MODE__Legacy,
    [KBD_TRANSLATE] = HBB__KEYBOARD_MODE__Translate,
    [KBD_MAP] = HBB__KEYBOARD_MODE__Map,
};

static void send_key_msg(struct win *w, Hbb__KeyEvent *ke)
{
    Hbb__Message m = HBB__MESSAGE__INIT;

    ke->mode = WIRE_MODE[w->kbd];
    m.union_case = HBB__MESSAGE__UNION_KEY_EVENT;
    m.key_event = ke;
    sess_send(w->s, &m);
}

/* Map mode: the key at SDL scancode sc's place (its X keycode), down or
 * up; 0, or -1 when the key has no X keycode. */
static int send_code(struct win *w, SDL_Scancode sc, int down)
{
    Hbb__KeyEvent ke = HBB__KEY_EVENT__INIT;

    if ((ke.chr = kbd_x_keycode(sc)) == 0)
        return -1;
    ke.union_case = HBB__KEY_EVENT__UNION_CHR;
    ke.down = down != 0;
    send_key_msg(w, &ke);
    return 0;
}

static void send_key_event(struct win *w, Hbb__ControlKey ck, uint32_t chr,
                           int down)
{
    Hbb__KeyEvent ke = HBB__KEY_EVENT__INIT;
    Hbb__ControlKey mods[4];

    if (ck != 0) {
        ke.union_case = HBB__KEY_EVENT__UNION_CONTROL_KEY;
        ke.control_key = ck;
    } else {
        ke.union_case = HBB__KEY_EVENT__UNION_CHR;
        ke.chr = chr;
    }
    ke.down = down == 1;
    ke.press = down == -1;
    ke.n_modifiers = down == -1 ? 0 : modifiers(mods);
    ke.modifiers = mods;
    send_key_msg(w, &ke);
}

/* A Ctrl/Alt key (scancode sc, ControlKey ck) down or up: by its place in
 * map mode, else as the ControlKey. */
static void send_mod(struct win *w, SDL_Scancode sc, Hbb__ControlKey ck,
                     int down)
{
    if (w->kbd != KBD_MAP || send_code(w, sc, down) != 0)
        send_key_event(w, ck, 0, down);
}

/* The Ctrl/Alt presses held back: send them now, in order. */
static void flush_mods(struct win *w)
{
    for (int i = 0; i < w->n_held_mods; i++)
        send_mod(w, w->held_mods[i], w->held_cks[i], 1);
    w->n_held_mods = 0;
}

/*
 * A key just sent as a key (Space, a keypad digit, Alt+x): SDL posts the
 * text it types right behind it; that text is not sent again.
 */
static void drop_its_text(void)
{
    SDL_Event ev;

    SDL_PumpEvents();
    if (SDL_PeepEvents(&ev, 1, SDL_PEEKEVENT, SDL_FIRSTEVENT, SDL_LASTEVENT) ==
            1 &&
        ev.type == SDL_TEXTINPUT)
        SDL_PeepEvents(&ev, 1, SDL_GETEVENT, SDL_TEXTINPUT, SDL_TEXTINPUT);
}

/* A key that is none of our hotkeys. */
static void send_key(struct win *w, const SDL_KeyboardEvent *k)
{
    SDL_Scancode sc = k->keysym.scancode;
    Hbb__ControlKey ck = kbd_control_key(k->keysym.sym);
    int down = k->type == SDL_KEYDOWN, i;

    if (sc < 0 || sc >= SDL_NUM_SCANCODES)
        return;
    if (down)
        w->drop_up[sc] = 0;
    else if (w->drop_up[sc]) {
        w->drop_up[sc] = 0;
        return;
    }
    if (ck == HBB__CONTROL_KEY__Control || ck == HBB__CONTROL_KEY__RControl ||
        ck == HBB__CONTROL_KEY__Alt || ck == HBB__CONTROL_KEY__RAlt) {
        for (i = 0; i < w->n_held_mods && w->held_mods[i] != sc; i++)
            ;
        if (down && (i < w->n_held_mods || k->repeat))
            return;
        if (down && w->n_held_mods < MAX_HELD_MODS) {
            /* maybe the start of a hotkey: sent with the next key */
            if (w->n_held_mods == 0)
                w->held_used = 0;
            w->held_mods[w->n_held_mods] = sc;
            w->held_cks[w->n_held_mods++] = ck;
            return;
        }
        if (!down && i < w->n_held_mods) {
            if (w->held_used) {
                /* only text was typed meanwhile (AltGr): never sent */
                w->held_mods[i] = w->held_mods[--w->n_held_mods];
                w->held_cks[i] = w->held_cks[w->n_held_mods];
                return;
            }
            flush_mods(w); /* pressed and released alone */
        }
        send_mod(w, sc, ck, down);
        return;
    }
    if (w->kbd == KBD_MAP) {
        /* every key by its place (AltGr and Shift included): the host's
         * layout makes the character; SDL's text is not sent */
        if (down)
            flush_mods(w);
        if (send_code(w, sc, down) == 0)
            return;
    }
    if (ck == 0 && printable(k->keysym.sym) &&
        !(k->keysym.mod & (KMOD_CTRL | KMOD_LALT | KMOD_GUI))) {
        /*
         * A character key: what it types comes as SDL_TEXTINPUT, computed
         * from the keyboard's real state (Shift, AltGr, Caps Lock, dead
         * keys, a virtual keyboard's own keymap), and is sent from there;
         * the key itself is not, nor its release.
         */
        if (down) {
            w->drop_up[sc] = 1;
            w->held_used = 1;
        }
        return;
    }
    if (down)
        flush_mods(w);
    if (ck != 0)
        send_key_event(w, ck, 0, down);
    else if (printable(k->keysym.sym)) /* a shortcut: Ctrl+C */
        send_key_event(w, 0, (uint32_t)k->keysym.sym, down);
    if (down)
        drop_its_text();
}

/*
 * Text typed by character keys (or a key SDL has no scancode for, as a
 * virtual keyboard's "A"): each character pressed on the host.
 */
static void send_text(struct win *w, const char *t)
{
    const unsigned char *p = (const unsigned char *)t;
    uint32_t cp;
    int n;

    if (w->kbd == KBD_MAP)
        return; /* the keys were sent by their place */
    if (w->kbd == KBD_TRANSLATE) {
        /* the text itself: the host types these characters */
        Hbb__KeyEvent ke = HBB__KEY_EVENT__INIT;

        ke.union_case = HBB__KEY_EVENT__UNION_SEQ;
        ke.seq = (char *)t;
        ke.press = 1;
        send_key_msg(w, &ke);
        return;
    }

    while (*p) {
        if (*p < 0x80)
            cp = *p, n = 1;
        else if ((*p & 0xe0) == 0xc0)
            cp = *p & 0x1f, n = 2;
        else if ((*p & 0xf0) == 0xe0)
            cp = *p & 0x0f, n = 3;
        else if ((*p & 0xf8) == 0xf0)
            cp = *p & 0x07, n = 4;
        else
            return;
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        p += n;
        if (cp >= 0x20 && cp != 0x7f)
            send_key_event(w, 0, cp, -1);
    }
}

static void toggle_fullscreen(struct win *w)
{
    w->fullscreen = !w->fullscreen;
    SDL_SetWindowFullscreen(w->win,
                            w->fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0);
}

const char *win_keys_help(void)
{
    /* what hotkey() below handles */
    return "  F11, Ctrl+Alt+F          fullscreen on/off\n"
           "  Ctrl+Alt+S               fit to the window / 1:1\n"
           "  Ctrl+Alt+G               keyboard grab on/off (system keys go "
           "to the host)\n"
           "  Ctrl+Alt+O               statistics overlay on/off\n"
           "  Ctrl+Alt+M               the menu (also: the pointer at the top "
           "edge)\n"
           "  Ctrl+Alt+Q               quit\n";
}

static void set_grab(struct win *w, int on)
{
    w->grab = on;
    SDL_SetWindowKeyboardGrab(w->win, w->grab ? SDL_TRUE : SDL_FALSE);
    hd_info("window", "keyboard grab %s", w->grab ? "on" : "off");
}

/* Do what the menu picked. */
/* Session thread: a listing for the browser came. */
static void browse_wake(void *ud)
{
    push(ud, EV_XFER, 0);
}

static void open_browser(struct win *w)
{
    int r;

    if (w->br == NULL && w->o.drop != NULL &&
        (r = browse_new(drop_config(w->o.drop), w->ren, browse_wake, w,
                        &w->br)) != 0)
        hd_warn("window", "no file browser: %s", hd_strerror(r));
    if (w->br != NULL)
        browse_open(w->br);
}

static void menu_do(struct win *w, int act, int arg, int *quit)
{
    int r;

    switch (act) {
    case MA_CAD:
    case MA_LOCK:
    case MA_QUALITY:
    case MA_DISPLAY:
        if ((r = menu_send(w->s, act, arg)) != 0)
            hd_warn("window", "menu action not sent: %s", hd_strerror(r));
        if (act == MA_QUALITY) {
            w->quality = arg;
            hd_info("window", "quality %s", menu_quality_name(arg));
        }
        break;
    case MA_VIEW_ONLY:
        w->view_only = !w->view_only;
        hd_info("window", "view only %s", w->view_only ? "on" : "off");
        break;
    case MA_SCALE:
        w->one_to_one = !w->one_to_one;
        layout(w);
        break;
    case MA_FULLSCREEN:
        toggle_fullscreen(w);
        break;
    case MA_GRAB:
        set_grab(w, !w->grab);
        break;
    case MA_STATS:
        w->overlay = !w->overlay;
        break;
    case MA_SEND_FILES:
        hd_info("window",
                "drop files or folders on the window to send them "
                "to the host's %s",
                drop_folder(w->o.drop));
        break;
    case MA_RECV_FILES:
        open_browser(w);
        break;
    case MA_CANCEL_XFER:
        if (w->o.drop != NULL)
            drop_cancel(w->o.drop);
        break;
    case MA_KEYBOARD:
        if (arg >= 0 && arg < KBD_N_MODES) {
            flush_mods(w);
            w->kbd = arg;
            hd_info("window", "keyboard mode %s", kbd_mode_names[arg]);
        }
        break;
    case MA_DISCONNECT:
        *quit = 1;
        break;
    default:
        break;
    }
}

/* Our hotkeys (Ctrl+Alt+key, F11); 1 when the key was ours. */
static int hotkey(struct win *w, const SDL_KeyboardEvent *k, int *quit)
{
    SDL_Keymod m = k->keysym.mod;

    if (k->keysym.sym == SDLK_F11 && !(m & (KMOD_CTRL | KMOD_ALT))) {
        if (k->type == SDL_KEYDOWN && !k->repeat)
            toggle_fullscreen(w);
        return 1;
    }
    if (!(m & KMOD_CTRL) || !(m & KMOD_ALT))
        return 0;
    switch (k->keysym.sym) {
    case SDLK_f:
    case SDLK_s:
    case SDLK_g:
    case SDLK_o:
    case SDLK_q:
    case SDLK_m:
        break;
    default:
        return 0;
    }
    if (k->type != SDL_KEYDOWN || k->repeat)
        return 1;
    /* the hotkey's own Ctrl and Alt were held back: never sent */
    for (int i = 0; i < w->n_held_mods; i++)
        w->drop_up[w->held_mods[i]] = 1;
    w->n_held_mods = 0;
    w->drop_up[k->keysym.scancode] = 1;
    if (k->keysym.sym == SDLK_m) {
        if (w->br != NULL && browse_is_open(w->br))
            browse_close(w->br); /* back to the session, not to a menu
                                  * under the browser */
        else if (w->menu != NULL)
            menu_toggle(w->menu);
    } else {
        /* the same as the menu's items */
        menu_do(w,
                k->keysym.sym == SDLK_f   ? MA_FULLSCREEN
                : k->keysym.sym == SDLK_s ? MA_SCALE
                : k->keysym.sym == SDLK_g ? MA_GRAB
                : k->keysym.sym == SDLK_o ? MA_STATS
                                          : MA_DISCONNECT,
                0, quit);
    }
    render(w);
    return 1;
}

/* The dropped files' transfer: start what is queued, note how the last
 * one ended, log the progress; redraw when the bar changes. */
static void poll_drop(struct win *w)
{
    struct drop_status st;
    int changed, shown;

    if (w->o.drop == NULL)
        return;
    drop_poll(w->o.drop, &st);
    changed = st.active != w->xst.active || st.done != w->xst.done ||
              strcmp(st.msg, w->xst.msg) != 0;
    if (strcmp(st.msg, w->xst.msg) != 0)
        w->xst_until = SDL_GetTicks() + XFER_SHOW_MS;
    if (st.active && (st.done != w->xst.done || !w->xst.active))
        hd_info("window", "transfer: %s %d%% (%llu of %llu bytes)", st.name,
                st.total > 0 ? (int)(100 * st.done / st.total) : 0,
                (unsigned long long)st.done, (unsigned long long)st.total);
    w->xst = st;
    if (st.active && w->xtick == 0)
        w->xtick = SDL_AddTimer(XFER_TICK_MS, on_xfer_tick, w);
    else if (!st.active && w->xtick != 0) {
        SDL_RemoveTimer(w->xtick);
        w->xtick = 0;
    }
    shown = bar_shown(w);
    if (changed || shown != w->bar_was)
        render(w);
    w->bar_was = shown;
}

static void on_drop(struct win *w, const char *path)
{
    int r;

    if (w->o.drop == NULL) {
        hd_warn("window", "%s dropped: this session cannot send files", path);
        return;
    }
    if ((r = drop_add(w->o.drop, path)) != 0)
        hd_warn("window", "%s not sent: %s", path, hd_strerror(r));
    else
        hd_info("window", "dropped %s: to the host's %s", path,
                drop_folder(w->o.drop));
    poll_drop(w);
}

/* The browser's input (while it is open): a file or folder to receive
 * is queued as a drop is. */
static void browse_input(struct win *w, const SDL_Event *ev)
{
    const char *path, *to;
    int redraw, receive, r;

    browse_event(w->br, ev, &redraw, &receive);
    if (receive) {
        browse_picked(w->br, &path, &to);
        if ((r = drop_get(w->o.drop, path, to)) != 0)
            hd_warn("window", "%s not received: %s", path, hd_strerror(r));
        poll_drop(w);
    }
    if (redraw)
        render(w);
}

static void on_input(struct win *w, const SDL_Event *ev, int *quit)
{
    struct menu_state st;
    int x, y, b, act, arg, redraw;

    if ((ev->type == SDL_KEYDOWN || ev->type == SDL_KEYUP) &&
        hotkey(w, &ev->key, quit))
        return;
    if (w->br != NULL && browse_is_open(w->br)) {
        browse_input(w, ev);
        return;
    }
    if (w->menu != NULL) {
        int mine;

        menu_state_of(w, &st);
        mine = menu_event(w->menu, ev, &st, &act, &arg, &redraw);
        if (mine)
            menu_do(w, act, arg, quit);
        if (redraw || act != MA_NONE)
            render(w);
        if (mine)
            return;
    }
    if (w->view_only)
        return;
    switch (ev->type) {
    case SDL_MOUSEMOTION:
        if (map_xy(w, ev->motion.x, ev->motion.y, &x, &y) == 0)
            send_mouse(w, 0, x, y);
        break;
    case SDL_MOUSEBUTTONDOWN:
    case SDL_MOUSEBUTTONUP:
        flush_mods(w); /* Ctrl+click */
        b = sdl_button(ev->button.button);
        if (b != 0 && map_xy(w, ev->button.x, ev->button.y, &x, &y) == 0)
            send_mouse(w, b << 3 | (ev->type == SDL_MOUSEBUTTONDOWN ? 1 : 2), x,
                       y);
        break;
    case SDL_MOUSEWHEEL:
        flush_mods(w);
        send_mouse(w, 3, ev->wheel.x, ev->wheel.y);
        break;
    case SDL_KEYDOWN:
    case SDL_KEYUP:
        send_key(w, &ev->key);
        break;
    case SDL_TEXTINPUT:
        send_text(w, ev->text.text);
        break;
    default:
        break;
    }
}

int win_run(struct win *w, struct sess *s, struct dec *d)
{
    SDL_Event ev;
    int quit = 0, status = 0;

    w->s = s;
    w->d = d;
    while (!quit && SDL_WaitEvent(&ev)) {
        if (ev.type == SDL_QUIT) {
            quit = 1;
        } else if (ev.type == w->ev_base + EV_READY) {
            if (w->win != NULL) {
                window_resize(w); /* another of the host's displays */
            } else if (open_window(w) != 0) {
                snprintf(w->end_msg, sizeof(w->end_msg),
                         "cannot open the window");
                status = 1;
                quit = 1;
            } else {
                if (w->o.on_open != NULL)
                    w->o.on_open(w->o.open_ud);
                wclip_to_host(w->clip, w->s);
                pointer_news(w); /* a shape that came before the window */
            }
        } else if (ev.type == w->ev_base + EV_CLIP) {
            wclip_from_host(w->clip);
        } else if (ev.type == w->ev_base + EV_CURSOR) {
            pointer_news(w);
        } else if (ev.type == SDL_CLIPBOARDUPDATE) {
            wclip_to_host(w->clip, w->s);
        } else if (ev.type == w->ev_base + EV_PICTURE) {
            show_picture(w);
        } else if (ev.type == w->ev_base + EV_SCALE) {
            rescale(w);
        } else if (ev.type == w->ev_base + EV_TICK) {
            update_stats(w);
            poll_drop(w);
            if (w->overlay)
                render(w);
        } else if (ev.type == w->ev_base + EV_XFER) {
            poll_drop(w);
            if (w->br != NULL && browse_poll(w->br))
                render(w);
        } else if (ev.type == SDL_DROPFILE) {
            if (ev.drop.file != NULL)
                on_drop(w, ev.drop.file);
            SDL_free(ev.drop.file);
        } else if (ev.type == w->ev_base + EV_END) {
            status = ev.user.code;
            quit = 1;
        } else if (ev.type == SDL_WINDOWEVENT && w->win != NULL &&
                   ev.window.windowID == SDL_GetWindowID(w->win)) {
            if (ev.window.event == SDL_WINDOWEVENT_SIZE_CHANGED ||
                ev.window.event == SDL_WINDOWEVENT_EXPOSED) {
                layout(w);
                render(w);
            } else if (ev.window.event == SDL_WINDOWEVENT_FOCUS_GAINED) {
                wclip_to_host(w->clip, w->s);
            }
        } else if (w->win != NULL) {
            on_input(w, &ev, &quit);
        }
    }
    return status;
}

void win_free(struct win *w)
{
    if (w == NULL)
        return;
    if (w->tick != 0)
        SDL_RemoveTimer(w->tick);
    if (w->xtick != 0)
        SDL_RemoveTimer(w->xtick);
    menu_free(w->menu);
    browse_free(w->br);
    if (w->tex != NULL)
        SDL_DestroyTexture(w->tex);
    if (w->ren != NULL)
        SDL_DestroyRenderer(w->ren);
    if (w->win != NULL)
        SDL_DestroyWindow(w->win);
    pic_free(w->pending);
    pic_free(w->last);
    wlv_free(w->wl);
    ptr_free(w->ptr);
    wclip_free(w->clip);
    pthread_mutex_destroy(&w->mu);
    free(w);
    SDL_Quit();
}

/*
 * SDL presentation and input.  See window.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>

#include "client/font.h"
#include "clip.h"
#include "client/window.h"
#include "log.h"

enum { EV_READY = 0, EV_PICTURE, EV_END, EV_TICK, EV_CLIP, EV_COUNT };

#define OVERLAY_SCALE 2
#define TICK_MS       1000

struct win {
    struct win_opts o;
    Uint32 ev_base;
    SDL_Window *win;
    SDL_Renderer *ren;
    SDL_Texture *tex;
    int tex_w, tex_h;
    int partial; /* the renderer draws into the window's surface (software):
                  * a picture may be presented by its changed area only */
    SDL_TimerID tick;

    pthread_mutex_t mu; /* guards the hand-over below */
    struct pic *pending;
    int pic_posted;
    int end_status;
    char end_msg[320];
    int ended;
    char *clip_in; /* from the host, not yet on our clipboard */
    size_t clip_in_n;

    int disp_w, disp_h; /* the host's display */
    int one_to_one, fullscreen, grab, overlay;
    SDL_Rect dst; /* where the picture is, in renderer pixels */
    struct sess *s;
    struct dec *d;
    /* overlay figures, refreshed every TICK_MS */
    uint64_t shown, shown_then, bytes_then;
    Uint32 then_ms;
    double fps, kbps;
    char line[128];
    /* the clipboard text last taken from or given to the host (main
     * thread): not sent back */
    char *clip_last;
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

int win_new(const struct win_opts *o, struct win **out)
{
    struct win *w;

    *out = NULL;
    if (SDL_Init(SDL_INIT_VIDEO | SDL_INIT_TIMER) != 0) {
        hd_error("window", "SDL: %s", SDL_GetError());
        return -1;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        SDL_Quit();
        return -1;
    }
    w->o = *o;
    w->overlay = o->overlay;
    w->ev_base = SDL_RegisterEvents(EV_COUNT);
    if (w->ev_base == (Uint32)-1) {
        hd_error("window", "SDL: no user events left");
        free(w);
        SDL_Quit();
        return -1;
    }
    pthread_mutex_init(&w->mu, NULL);
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

void win_post_clipboard(struct win *w, const char *text, size_t n)
{
    char *p = malloc(n + 1);
    int post;

    if (p == NULL)
        return;
    memcpy(p, text, n);
    p[n] = '\0';
    pthread_mutex_lock(&w->mu);
    post = w->clip_in == NULL;
    free(w->clip_in);
    w->clip_in = p;
    w->clip_in_n = n;
    pthread_mutex_unlock(&w->mu);
    if (post)
        push(w, EV_CLIP, 0);
}

static void clip_remember(struct win *w, const char *t)
{
    char *p = strdup(t);

    if (p == NULL)
        return;
    free(w->clip_last);
    w->clip_last = p;
}

/* The host copied text: it is ours now. */
static void clip_from_host(struct win *w)
{
    char *t;

    pthread_mutex_lock(&w->mu);
    t = w->clip_in;
    w->clip_in = NULL;
    pthread_mutex_unlock(&w->mu);
    if (t == NULL || !w->o.clipboard)
        goto out;
    if (SDL_SetClipboardText(t) != 0)
        hd_warn("window", "cannot set the clipboard: %s", SDL_GetError());
    else
        clip_remember(w, t);
out:
    free(t);
}

/* Our clipboard to the host, unless it is what we last exchanged. */
static void clip_to_host(struct win *w)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Clipboard cb;
    uint8_t *buf;
    char *t;
    size_t n;
    int r;

    if (!w->o.clipboard || w->s == NULL || !SDL_HasClipboardText())
        return;
    if ((t = SDL_GetClipboardText()) == NULL)
        return;
    n = strlen(t);
    if (n == 0 || (w->clip_last != NULL && strcmp(t, w->clip_last) == 0))
        goto out;
    clip_remember(w, t);
    if ((r = hd_clip_pack(t, n, &cb, &buf)) != 0) {
        hd_warn("window", "clipboard of %zu bytes not sent: %s", n,
                r == -EMSGSIZE ? "too large" : "out of memory");
        goto out;
    }
    m.union_case = HBB__MESSAGE__UNION_CLIPBOARD;
    m.clipboard = &cb;
    if (sess_send(w->s, &m) != 0)
        hd_warn("window", "clipboard of %zu bytes not sent: queue full", n);
    free(buf);
out:
    SDL_free(t);
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

/* ---- drawing ------------------------------------------------------------ */

static void layout(struct win *w)
{
    int ow, oh;
    double sx, sy, s;

    SDL_GetRendererOutputSize(w->ren, &ow, &oh);
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
    int n, r, c;

    for (; *t; t++, x += (FONT_W + 1) * OVERLAY_SCALE) {
        if (!font_glyph(*t, rows))
            continue;
        n = 0;
        for (r = 0; r < FONT_H; r++)
            for (c = 0; c < FONT_W; c++)
                if (rows[r] & (0x10 >> c))
                    px[n++] = (SDL_Rect){ x + c * OVERLAY_SCALE,
                                          y + r * OVERLAY_SCALE, OVERLAY_SCALE,
                                          OVERLAY_SCALE };
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
             "fps %.0f  kbps %.0f  rtt %u ms  dec %.1f ms  %s", w->fps, w->kbps,
             st.rtt_ms, ds.decode_ms,
             st.path < 0 ? "-" : rv_path_name((enum rv_path)st.path));
}

static void render(struct win *w)
{
    SDL_Rect bg;

    SDL_SetRenderDrawColor(w->ren, 0, 0, 0, 255);
    SDL_RenderClear(w->ren);
    if (w->tex != NULL)
        SDL_RenderCopy(w->ren, w->tex, NULL, &w->dst);
    if (w->overlay && w->line[0]) {
        bg =
            (SDL_Rect){ 4, 4,
                        (int)strlen(w->line) * (FONT_W + 1) * OVERLAY_SCALE + 8,
                        FONT_H * OVERLAY_SCALE + 8 };
        SDL_SetRenderDrawBlendMode(w->ren, SDL_BLENDMODE_BLEND);
        SDL_SetRenderDrawColor(w->ren, 0, 0, 0, 160);
        SDL_RenderFillRect(w->ren, &bg);
        SDL_SetRenderDrawColor(w->ren, 255, 255, 0, 255);
        draw_text(w, 8, 8, w->line);
    }
    SDL_RenderPresent(w->ren);
}

/* Upload r (NULL: all) of p into the texture. */
static void update_texture(struct win *w, const struct pic *p,
                           const struct pic_rect *r)
{
    SDL_Rect sr;

    if (r == NULL) {
        SDL_UpdateYUVTexture(w->tex, NULL, p->plane[0], p->stride[0],
                             p->plane[1], p->stride[1], p->plane[2],
                             p->stride[2]);
        return;
    }
    sr = (SDL_Rect){ r->x, r->y, r->w, r->h };
    SDL_UpdateYUVTexture(
        w->tex, &sr, p->plane[0] + (size_t)r->y * p->stride[0] + r->x,
        p->stride[0],
        p->plane[1] + (size_t)(r->y / 2) * p->stride[1] + r->x / 2,
        p->stride[1],
        p->plane[2] + (size_t)(r->y / 2) * p->stride[2] + r->x / 2,
        p->stride[2]);
}

/*
 * Present only what changed: with a software renderer (it draws into the
 * window's surface), the picture 1:1 and nothing drawn over it, the
 * changed area is converted, copied and pushed to the screen alone (an
 * X11 XShmPutImage of that area: typing costs the viewer ~nothing, where
 * a whole-window present costs milliseconds of CPU per frame).  Nothing
 * changed: nothing to do.  Takes p and returns 0 when done; -1 when a
 * whole render is needed (p untouched).
 */
static int present_part(struct win *w, struct pic *p)
{
    const struct pic_rect *r = &p->dirty;
    SDL_Rect src, dst;

    if (r->w <= 0 || r->h <= 0) {
        pic_free(p);
        return 0;
    }
    if (!w->partial || w->overlay || w->dst.w != w->tex_w ||
        w->dst.h != w->tex_h || (r->w == p->w && r->h == p->h))
        return -1;
    update_texture(w, p, r);
    src = (SDL_Rect){ r->x, r->y, r->w, r->h };
    dst = (SDL_Rect){ w->dst.x + r->x, w->dst.y + r->y, r->w, r->h };
    pic_free(p);
    SDL_RenderCopy(w->ren, w->tex, &src, &dst);
    SDL_RenderFlush(w->ren);
    SDL_UpdateWindowSurfaceRects(w->win, &dst, 1);
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
    if (p == NULL || w->ren == NULL) {
        pic_free(p);
        return;
    }
    if (w->tex == NULL || w->tex_w != p->w || w->tex_h != p->h) {
        if (w->tex != NULL)
            SDL_DestroyTexture(w->tex);
        w->tex = SDL_CreateTexture(w->ren, SDL_PIXELFORMAT_IYUV,
                                   SDL_TEXTUREACCESS_STREAMING, p->w, p->h);
        if (w->tex == NULL) {
            hd_error("window", "texture %dx%d: %s", p->w, p->h, SDL_GetError());
            pic_free(p);
            return;
        }
        w->tex_w = p->w;
        w->tex_h = p->h;
        layout(w);
        p->dirty = (struct pic_rect){ 0, 0, p->w, p->h };
    }
    if (present_part(w, p) != 0) {
        update_texture(w, p, &p->dirty);
        pic_free(p);
        render(w);
    }
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

static int open_window(struct win *w)
{
    SDL_Rect usable;
    int ww, wh;
    char title[256];

    pthread_mutex_lock(&w->mu);
    ww = w->disp_w;
    wh = w->disp_h;
    pthread_mutex_unlock(&w->mu);
    if (SDL_GetDisplayUsableBounds(0, &usable) == 0) {
        /* a display larger than ours starts scaled down to fit */
        while (ww > usable.w || wh > usable.h) {
            ww = ww * 3 / 4;
            wh = wh * 3 / 4;
        }
    }
    snprintf(title, sizeof(title), "homedesk: %s", w->o.title);
    w->win = SDL_CreateWindow(
        title, SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, ww, wh,
        SDL_WINDOW_RESIZABLE | SDL_WINDOW_ALLOW_HIGHDPI |
            (w->o.fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0));
    if (w->win == NULL) {
        hd_error("window", "cannot create the window: %s", SDL_GetError());
        return -1;
    }
    w->fullscreen = w->o.fullscreen;
    w->ren = SDL_CreateRenderer(w->win, -1, SDL_RENDERER_PRESENTVSYNC);
    if (w->ren != NULL && gl_on_cpu(w->ren)) {
        /* GL drawn by the CPU (llvmpipe: no GPU, Xvfb): every present
         * converts and pushes the whole window; our own software path
         * straight to the X server pushes only what changed */
        SDL_DestroyRenderer(w->ren);
        SDL_SetHint(SDL_HINT_FRAMEBUFFER_ACCELERATION, "0");
        w->ren = NULL;
    }
    if (w->ren == NULL)
        w->ren = SDL_CreateRenderer(w->win, -1, SDL_RENDERER_SOFTWARE);
    if (w->ren == NULL) {
        hd_error("window", "cannot create a renderer: %s", SDL_GetError());
        return -1;
    }
    {
        SDL_RendererInfo ri;

        w->partial = SDL_GetRendererInfo(w->ren, &ri) == 0 &&
                     (ri.flags & SDL_RENDERER_SOFTWARE) != 0;
        hd_info("window", "renderer: %s%s", ri.name,
                w->partial ? " (presents changed areas only)" : "");
    }
    layout(w);
    update_stats(w);
    w->tick = SDL_AddTimer(TICK_MS, on_tick, w);
    render(w);
    return 0;
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
    me.n_modifiers = modifiers(mods);
    me.modifiers = mods;
    m.union_case = HBB__MESSAGE__UNION_MOUSE_EVENT;
    m.mouse_event = &me;
    sess_send(w->s, &m);
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

static const struct {
    SDL_Keycode sdl;
    Hbb__ControlKey ck;
} keymap[] = {
    { SDLK_LALT, HBB__CONTROL_KEY__Alt },
    { SDLK_RALT, HBB__CONTROL_KEY__RAlt },
    { SDLK_BACKSPACE, HBB__CONTROL_KEY__Backspace },
    { SDLK_CAPSLOCK, HBB__CONTROL_KEY__CapsLock },
    { SDLK_LCTRL, HBB__CONTROL_KEY__Control },
    { SDLK_RCTRL, HBB__CONTROL_KEY__RControl },
    { SDLK_DELETE, HBB__CONTROL_KEY__Delete },
    { SDLK_DOWN, HBB__CONTROL_KEY__DownArrow },
    { SDLK_END, HBB__CONTROL_KEY__End },
    { SDLK_ESCAPE, HBB__CONTROL_KEY__Escape },
    { SDLK_F1, HBB__CONTROL_KEY__F1 },
    { SDLK_F2, HBB__CONTROL_KEY__F2 },
    { SDLK_F3, HBB__CONTROL_KEY__F3 },
    { SDLK_F4, HBB__CONTROL_KEY__F4 },
    { SDLK_F5, HBB__CONTROL_KEY__F5 },
    { SDLK_F6, HBB__CONTROL_KEY__F6 },
    { SDLK_F7, HBB__CONTROL_KEY__F7 },
    { SDLK_F8, HBB__CONTROL_KEY__F8 },
    { SDLK_F9, HBB__CONTROL_KEY__F9 },
    { SDLK_F10, HBB__CONTROL_KEY__F10 },
    { SDLK_F11, HBB__CONTROL_KEY__F11 },
    { SDLK_F12, HBB__CONTROL_KEY__F12 },
    { SDLK_HOME, HBB__CONTROL_KEY__Home },
    { SDLK_LEFT, HBB__CONTROL_KEY__LeftArrow },
    { SDLK_LGUI, HBB__CONTROL_KEY__Meta },
    { SDLK_RGUI, HBB__CONTROL_KEY__RWin },
    { SDLK_PAGEDOWN, HBB__CONTROL_KEY__PageDown },
    { SDLK_PAGEUP, HBB__CONTROL_KEY__PageUp },
    { SDLK_RETURN, HBB__CONTROL_KEY__Return },
    { SDLK_RIGHT, HBB__CONTROL_KEY__RightArrow },
    { SDLK_LSHIFT, HBB__CONTROL_KEY__Shift },
    { SDLK_RSHIFT, HBB__CONTROL_KEY__RShift },
    { SDLK_SPACE, HBB__CONTROL_KEY__Space },
    { SDLK_TAB, HBB__CONTROL_KEY__Tab },
    { SDLK_UP, HBB__CONTROL_KEY__UpArrow },
    { SDLK_KP_0, HBB__CONTROL_KEY__Numpad0 },
    { SDLK_KP_1, HBB__CONTROL_KEY__Numpad1 },
    { SDLK_KP_2, HBB__CONTROL_KEY__Numpad2 },
    { SDLK_KP_3, HBB__CONTROL_KEY__Numpad3 },
    { SDLK_KP_4, HBB__CONTROL_KEY__Numpad4 },
    { SDLK_KP_5, HBB__CONTROL_KEY__Numpad5 },
    { SDLK_KP_6, HBB__CONTROL_KEY__Numpad6 },
    { SDLK_KP_7, HBB__CONTROL_KEY__Numpad7 },
    { SDLK_KP_8, HBB__CONTROL_KEY__Numpad8 },
    { SDLK_KP_9, HBB__CONTROL_KEY__Numpad9 },
    { SDLK_KP_MULTIPLY, HBB__CONTROL_KEY__Multiply },
    { SDLK_KP_PLUS, HBB__CONTROL_KEY__Add },
    { SDLK_KP_MINUS, HBB__CONTROL_KEY__Subtract },
    { SDLK_KP_PERIOD, HBB__CONTROL_KEY__Decimal },
    { SDLK_KP_DIVIDE, HBB__CONTROL_KEY__Divide },
    { SDLK_KP_EQUALS, HBB__CONTROL_KEY__Equals },
    { SDLK_KP_ENTER, HBB__CONTROL_KEY__NumpadEnter },
    { SDLK_INSERT, HBB__CONTROL_KEY__Insert },
    { SDLK_PAUSE, HBB__CONTROL_KEY__Pause },
    { SDLK_PRINTSCREEN, HBB__CONTROL_KEY__Snapshot },
    { SDLK_SCROLLLOCK, HBB__CONTROL_KEY__Scroll },
    { SDLK_NUMLOCKCLEAR, HBB__CONTROL_KEY__NumLock },
    { SDLK_APPLICATION, HBB__CONTROL_KEY__Apps },
    { SDLK_MUTE, HBB__CONTROL_KEY__VolumeMute },
    { SDLK_VOLUMEUP, HBB__CONTROL_KEY__VolumeUp },
    { SDLK_VOLUMEDOWN, HBB__CONTROL_KEY__VolumeDown },
};

static void send_key(struct win *w, const SDL_KeyboardEvent *k)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__KeyEvent ke = HBB__KEY_EVENT__INIT;
    Hbb__ControlKey mods[4];
    size_t i;

    for (i = 0; i < sizeof(keymap) / sizeof(keymap[0]); i++)
        if (keymap[i].sdl == k->keysym.sym)
            break;
    if (i < sizeof(keymap) / sizeof(keymap[0])) {
        ke.union_case = HBB__KEY_EVENT__UNION_CONTROL_KEY;
        ke.control_key = keymap[i].ck;
    } else if (k->keysym.sym > 0 && k->keysym.sym < 0x110000 &&
               !(k->keysym.sym & SDLK_SCANCODE_MASK)) {
        /* a printable key: its unshifted character, modifiers beside */
        ke.union_case = HBB__KEY_EVENT__UNION_CHR;
        ke.chr = (uint32_t)k->keysym.sym;
    } else {
        return;
    }
    ke.down = k->type == SDL_KEYDOWN;
    ke.mode = HBB__KEYBOARD_MODE__Legacy;
    ke.n_modifiers = modifiers(mods);
    ke.modifiers = mods;
    m.union_case = HBB__MESSAGE__UNION_KEY_EVENT;
    m.key_event = &ke;
    sess_send(w->s, &m);
}

static void toggle_fullscreen(struct win *w)
{
    w->fullscreen = !w->fullscreen;
    SDL_SetWindowFullscreen(w->win,
                            w->fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0);
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
        break;
    default:
        return 0;
    }
    if (k->type != SDL_KEYDOWN || k->repeat)
        return 1;
    switch (k->keysym.sym) {
    case SDLK_f:
        toggle_fullscreen(w);
        break;
    case SDLK_s:
        w->one_to_one = !w->one_to_one;
        layout(w);
        render(w);
        break;
    case SDLK_g:
        w->grab = !w->grab;
        SDL_SetWindowKeyboardGrab(w->win, w->grab ? SDL_TRUE : SDL_FALSE);
        hd_info("window", "keyboard grab %s", w->grab ? "on" : "off");
        break;
    case SDLK_o:
        w->overlay = !w->overlay;
        render(w);
        break;
    case SDLK_q:
        *quit = 1;
        break;
    }
    return 1;
}

static void on_input(struct win *w, const SDL_Event *ev, int *quit)
{
    int x, y, b;

    switch (ev->type) {
    case SDL_MOUSEMOTION:
        if (map_xy(w, ev->motion.x, ev->motion.y, &x, &y) == 0)
            send_mouse(w, 0, x, y);
        break;
    case SDL_MOUSEBUTTONDOWN:
    case SDL_MOUSEBUTTONUP:
        b = sdl_button(ev->button.button);
        if (b != 0 && map_xy(w, ev->button.x, ev->button.y, &x, &y) == 0)
            send_mouse(w, b << 3 | (ev->type == SDL_MOUSEBUTTONDOWN ? 1 : 2), x,
                       y);
        break;
    case SDL_MOUSEWHEEL:
        send_mouse(w, 3, ev->wheel.x, ev->wheel.y);
        break;
    case SDL_KEYDOWN:
    case SDL_KEYUP:
        if (!hotkey(w, &ev->key, quit))
            send_key(w, &ev->key);
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
            if (w->win == NULL && open_window(w) != 0) {
                snprintf(w->end_msg, sizeof(w->end_msg),
                         "cannot open the window");
                status = 1;
                quit = 1;
            } else {
                clip_to_host(w);
            }
        } else if (ev.type == w->ev_base + EV_CLIP) {
            clip_from_host(w);
        } else if (ev.type == SDL_CLIPBOARDUPDATE) {
            clip_to_host(w);
        } else if (ev.type == w->ev_base + EV_PICTURE) {
            show_picture(w);
        } else if (ev.type == w->ev_base + EV_TICK) {
            update_stats(w);
            if (w->overlay)
                render(w);
        } else if (ev.type == w->ev_base + EV_END) {
            status = ev.user.code;
            quit = 1;
        } else if (ev.type == SDL_WINDOWEVENT) {
            if (ev.window.event == SDL_WINDOWEVENT_SIZE_CHANGED ||
                ev.window.event == SDL_WINDOWEVENT_EXPOSED) {
                layout(w);
                render(w);
            } else if (ev.window.event == SDL_WINDOWEVENT_FOCUS_GAINED) {
                clip_to_host(w);
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
    if (w->tex != NULL)
        SDL_DestroyTexture(w->tex);
    if (w->ren != NULL)
        SDL_DestroyRenderer(w->ren);
    if (w->win != NULL)
        SDL_DestroyWindow(w->win);
    pic_free(w->pending);
    free(w->clip_in);
    free(w->clip_last);
    pthread_mutex_destroy(&w->mu);
    free(w);
    SDL_Quit();
}

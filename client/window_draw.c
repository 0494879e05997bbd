/*
 * The viewer's window: the SDL window and its renderer (made anew when the
 * output scale changes), where the picture goes, and what is drawn (the
 * picture, changed areas alone where the renderer allows, the overlay,
 * the menu and the browser).  Main thread.  See window.h, window_int.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <SDL.h>

#include "client/browse.h"
#include "client/font.h"
#include "client/texture.h"
#include "client/wayland.h"
#include "client/window_int.h"
#include "log.h"

static Uint32 on_tick(Uint32 interval, void *ud)
{
    win_push(ud, EV_TICK, 0);
    return interval;
}

void win_layout(struct win *w)
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

void win_update_stats(struct win *w)
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
int win_bar_shown(const struct win *w)
{
    return w->xst.active ||
           (w->xst.msg[0] && !SDL_TICKS_PASSED(SDL_GetTicks(), w->xst_until));
}

void win_menu_state(const struct win *w, struct menu_state *st)
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
    st->xfer = win_bar_shown(w) ? &w->xst : NULL;
    if (w->s != NULL) {
        struct sess_stats ss;

        sess_get_stats(w->s, &ss);
        st->n_displays = ss.n_displays;
        st->display = ss.display;
    }
}

void win_render(struct win *w)
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

        win_menu_state(w, &st);
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
        win_layout(w);
        p->dirty = (struct pic_rect){ 0, 0, p->w, p->h };
    }
    return 0;
}

void win_show_picture(struct win *w)
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
        win_render(w);
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
    win_layout(w);
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
void win_follow_display(struct win *w)
{
    int ww, wh;

    if (w->fullscreen)
        return;
    window_size(w, &ww, &wh);
    SDL_SetWindowSize(w->win, ww, wh);
    SDL_SetWindowPosition(w->win, SDL_WINDOWPOS_CENTERED,
                          SDL_WINDOWPOS_CENTERED);
}

int win_open(struct win *w)
{
    int ww, wh;

    window_size(w, &ww, &wh);
    w->fullscreen = w->o.fullscreen;
    if (make_window(w, ww, wh) != 0)
        return -1;
    win_update_stats(w);
    w->tick = SDL_AddTimer(TICK_MS, on_tick, w);
    win_render(w);
    return 0;
}

/*
 * The output scale changed (Wayland).  SDL 2.26 keeps a window's buffer
 * scale until its surface enters another output, so the picture would be
 * drawn at the old scale and stretched by the compositor: make the window
 * anew (its surface enters the output at the new scale) and show the last
 * picture in it.  A fullscreen window is rescaled by SDL itself.
 */
void win_rescale(struct win *w)
{
    int ww, wh, want = wlv_scale(w->wl);

    if (w->win == NULL)
        return;
    win_layout(w);
    if (want == w->hidpi || w->fullscreen) {
        win_render(w);
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
    win_render(w);
}

/*
 * SDL presentation and input.  See window.h.  This file: the window's life
 * cycle (the video driver, SDL, the hand-over from other threads) and its
 * event loop; the rest is in window_draw.c, window_input.c and
 * window_menu.c (window_int.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>

#include "client/browse.h"
#include "client/keys.h"
#include "client/pointer.h"
#include "client/texture.h"
#include "client/wayland.h"
#include "client/winclip.h"
#include "client/window_int.h"
#include "log.h"

void win_push(struct win *w, int type, int code)
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
    win_push(w, EV_READY, 0);
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
        win_push(w, EV_PICTURE, 0);
}

void win_post_end(struct win *w, int status, const char *msg)
{
    pthread_mutex_lock(&w->mu);
    w->ended = 1;
    w->end_status = status;
    snprintf(w->end_msg, sizeof(w->end_msg), "%s", msg ? msg : "");
    pthread_mutex_unlock(&w->mu);
    win_push(w, EV_END, status);
}

void win_post_cursor(struct win *w, const Hbb__Message *m)
{
    if (ptr_post(w->ptr, m))
        win_push(w, EV_CURSOR, 0);
}

void win_post_clipboard(struct win *w, const char *text, size_t n)
{
    if (wclip_post(w->clip, text, n))
        win_push(w, EV_CLIP, 0);
}

const char *win_end_message(const struct win *w)
{
    return w->end_msg[0] ? w->end_msg : NULL;
}

/* The Wayland watch thread: an output's scale changed. */
static void on_scale(void *ud)
{
    win_push(ud, EV_SCALE, 0);
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
                win_follow_display(w); /* another of the host's displays */
            } else if (win_open(w) != 0) {
                snprintf(w->end_msg, sizeof(w->end_msg),
                         "cannot open the window");
                status = 1;
                quit = 1;
            } else {
                if (w->o.on_open != NULL)
                    w->o.on_open(w->o.open_ud);
                wclip_to_host(w->clip, w->s);
                win_pointer_news(w); /* a shape that came before the window */
            }
        } else if (ev.type == w->ev_base + EV_CLIP) {
            wclip_from_host(w->clip);
        } else if (ev.type == w->ev_base + EV_CURSOR) {
            win_pointer_news(w);
        } else if (ev.type == SDL_CLIPBOARDUPDATE) {
            wclip_to_host(w->clip, w->s);
        } else if (ev.type == w->ev_base + EV_PICTURE) {
            win_show_picture(w);
        } else if (ev.type == w->ev_base + EV_SCALE) {
            win_rescale(w);
        } else if (ev.type == w->ev_base + EV_TICK) {
            win_update_stats(w);
            win_poll_drop(w);
            if (w->overlay)
                win_render(w);
        } else if (ev.type == w->ev_base + EV_XFER) {
            win_poll_drop(w);
            if (w->br != NULL && browse_poll(w->br))
                win_render(w);
        } else if (ev.type == SDL_DROPFILE) {
            if (ev.drop.file != NULL)
                win_on_drop(w, ev.drop.file);
            SDL_free(ev.drop.file);
        } else if (ev.type == w->ev_base + EV_END) {
            status = ev.user.code;
            quit = 1;
        } else if (ev.type == SDL_WINDOWEVENT && w->win != NULL &&
                   ev.window.windowID == SDL_GetWindowID(w->win)) {
            if (ev.window.event == SDL_WINDOWEVENT_SIZE_CHANGED ||
                ev.window.event == SDL_WINDOWEVENT_EXPOSED) {
                win_layout(w);
                win_render(w);
            } else if (ev.window.event == SDL_WINDOWEVENT_FOCUS_GAINED) {
                wclip_to_host(w->clip, w->s);
            }
        } else if (w->win != NULL) {
            win_input(w, &ev, &quit);
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

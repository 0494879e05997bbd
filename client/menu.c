/*
 * The in-session menu.  See menu.h.
 *
 * The list is rebuilt from the state on every draw and event (items come
 * and go with the host's displays), so what is drawn and what is hit are
 * always the same rows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/keys.h"
#include "client/menu.h"
#include "client/ui.h"
#include "log.h"

#define FONT_PT  13
#define HANDLE_W 120
#define HANDLE_H 20
#define HOVER_H  (2 * HANDLE_H) /* the pointer this near the top shows it */
#define LIST_W   360 /* "Send files: drop them here (to ~/Downloads)" */
#define BAR_H    26
#define ROW_H    28
#define MAX_ROWS (20 + MENU_MAX_DISPLAYS)

struct row {
    int act, arg;
    char label[64];
    int check; /* -1: none, 0 / 1: a check mark */
};

struct menu {
    struct ui ui;
    SDL_Renderer *ren;
    int open, sel;
    int hover; /* the pointer is at the top edge: the handle is shown */
    struct row rows[MAX_ROWS];
    int n;
    SDL_Rect handle, list;
    SDL_Rect bar; /* the transfer bar as last drawn, w 0: none */
};

static const char *const quality_names[] = { "balanced", "best", "fast" };

const char *menu_quality_name(int q)
{
    return q >= 0 && q < 3 ? quality_names[q] : "?";
}

int menu_new(SDL_Renderer *ren, struct menu **out)
{
    struct menu *m;
    int r;

    *out = NULL;
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return -ENOMEM;
    m->ren = ren;
    if ((r = ui_init(&m->ui, ren, FONT_PT)) != 0) {
        free(m);
        return r;
    }
    *out = m;
    return 0;
}

void menu_free(struct menu *m)
{
    if (m == NULL)
        return;
    ui_cleanup(&m->ui);
    free(m);
}

void menu_toggle(struct menu *m)
{
    m->open = !m->open;
    m->sel = 0;
    hd_info("menu", "%s", m->open ? "open" : "closed");
}

int menu_is_open(const struct menu *m)
{
    return m->open;
}

static void add(struct menu *m, int act, int arg, int check, const char *label)
{
    struct row *r;

    if (m->n >= MAX_ROWS)
        return;
    r = &m->rows[m->n++];
    r->act = act;
    r->arg = arg;
    r->check = check;
    snprintf(r->label, sizeof(r->label), "%s", label);
}

static void build(struct menu *m, const struct menu_state *st)
{
    char t[64];
    int i;

    m->n = 0;
    add(m, MA_CAD, 0, -1, "Send Ctrl+Alt+Del");
    add(m, MA_LOCK, 0, -1, "Lock the screen");
    add(m, MA_VIEW_ONLY, 0, st->view_only, "View only");
    for (i = 0; i < 3; i++) {
        snprintf(t, sizeof(t), "Quality: %s", quality_names[i]);
        add(m, MA_QUALITY, i, st->quality == i, t);
    }
    add(m, MA_SCALE, 0, -1, st->one_to_one ? "Fit to window" : "Scale 1:1");
    add(m, MA_FULLSCREEN, 0, st->fullscreen, "Fullscreen");
    add(m, MA_GRAB, 0, st->grab, "Keyboard grab");
    add(m, MA_STATS, 0, st->stats, "Statistics");
    if (st->n_displays > 1) {
        for (i = 0; i < st->n_displays && i < MENU_MAX_DISPLAYS; i++) {
            snprintf(t, sizeof(t), "Display %d", i + 1);
            add(m, MA_DISPLAY, i, st->display == i, t);
        }
        add(m, MA_DISPLAY, MENU_ALL_DISPLAYS, st->display == MENU_ALL_DISPLAYS,
            "All displays");
    }
    for (i = 0; i < KBD_N_MODES; i++) {
        snprintf(t, sizeof(t), "Keyboard: %s", kbd_mode_names[i]);
        add(m, MA_KEYBOARD, i, st->keyboard == i, t);
    }
    if (st->can_send_files) {
        snprintf(t, sizeof(t), "Send files: drop them here (to %s)",
                 st->drop_to != NULL ? st->drop_to : "?");
        add(m, MA_SEND_FILES, 0, -1, t);
        add(m, MA_RECV_FILES, 0, -1, "Receive files from the host...");
    }
    if (st->xfer != NULL && st->xfer->active)
        add(m, MA_CANCEL_XFER, 0, -1, "Cancel the transfer");
    add(m, MA_DISCONNECT, 0, -1, "Disconnect");
    if (m->sel >= m->n)
        m->sel = m->n - 1;
}

static void place(struct menu *m)
{
    int ow = 0, oh = 0;

    SDL_GetRendererOutputSize(m->ren, &ow, &oh);
    m->handle = (SDL_Rect){ (ow - HANDLE_W) / 2, 0, HANDLE_W, HANDLE_H };
    m->list = (SDL_Rect){ (ow - LIST_W) / 2, HANDLE_H, LIST_W, m->n * ROW_H };
}

/* The transfer bar at the bottom edge: progress while a transfer runs,
 * then how it ended. */
static void draw_bar(struct menu *m, const struct drop_status *x)
{
    struct ui *u = &m->ui;
    SDL_Color shade = { 0x1c, 0x1e, 0x21, 0xe0 };
    char t[400];
    int ow = 0, oh = 0;

    m->bar.w = 0;
    if (x == NULL)
        return;
    SDL_GetRendererOutputSize(m->ren, &ow, &oh);
    m->bar = (SDL_Rect){ 0, oh - BAR_H, ow, BAR_H };
    SDL_SetRenderDrawBlendMode(m->ren, SDL_BLENDMODE_BLEND);
    ui_fill(u, m->bar, shade);
    if (x->active) {
        SDL_Rect done = m->bar;

        done.w = x->total > 0
                     ? (int)((double)ow * (double)x->done / (double)x->total)
                     : 0;
        ui_fill(u, done, ui_accent);
        snprintf(t, sizeof(t), "%s %s: %d%% (%.1f of %.1f MB)%s%s",
                 x->receiving ? "Receiving" : "Sending", x->name,
                 x->total > 0 ? (int)(100 * x->done / x->total) : 0,
                 (double)x->done / 1e6, (double)x->total / 1e6,
                 x->queued > 0 ? ", more after it" : "",
                 "; Ctrl+Alt+M to cancel");
    } else {
        snprintf(t, sizeof(t), "%s", x->msg);
    }
    ui_text(u, 8, m->bar.y + (BAR_H - u->line_h) / 2,
            x->failed && !x->active ? ui_error : ui_panel, t);
}

void menu_draw(struct menu *m, const struct menu_state *st)
{
    struct ui *u = &m->ui;
    SDL_Color shade = { 0x1c, 0x1e, 0x21, 0xc0 };
    int i, tw;

    build(m, st);
    place(m);
    draw_bar(m, st->xfer);
    if (!m->open && !m->hover)
        return; /* nothing over the picture */
    SDL_SetRenderDrawBlendMode(m->ren, SDL_BLENDMODE_BLEND);
    ui_fill(u, m->handle, m->open ? ui_accent : shade);
    tw = ui_text_width(u, "homedesk");
    ui_text(u, m->handle.x + (HANDLE_W - tw) / 2, (HANDLE_H - u->line_h) / 2,
            ui_panel, "homedesk");
    if (!m->open)
        return;
    ui_fill(u, m->list, ui_panel);
    ui_frame(u, m->list, ui_dim);
    for (i = 0; i < m->n; i++) {
        const struct row *r = &m->rows[i];
        SDL_Rect row = { m->list.x, m->list.y + i * ROW_H, LIST_W, ROW_H };
        int ty = row.y + (ROW_H - u->line_h) / 2;

        if (i == m->sel)
            ui_fill(u, row, ui_accent);
        if (r->check == 1)
            ui_text(u, row.x + 8, ty, i == m->sel ? ui_panel : ui_accent,
                    "\xe2\x9c\x93"); /* a check mark */
        ui_text(u, row.x + 28, ty, i == m->sel ? ui_panel : ui_fg, r->label);
    }
}

int menu_covers(const struct menu *m, const SDL_Rect *r)
{
    if (m->bar.w > 0 && SDL_HasIntersection(&m->bar, r))
        return 1;
    return (m->open || m->hover) &&
           (SDL_HasIntersection(&m->handle, r) ||
            (m->open && SDL_HasIntersection(&m->list, r)));
}

/* Window coordinates to renderer pixels (HiDPI). */
static void to_pixels(struct menu *m, Uint32 window_id, int *x, int *y)
{
    SDL_Window *win = SDL_GetWindowFromID(window_id);
    int ww = 0, wh = 0, ow = 0, oh = 0;

    if (win == NULL)
        return;
    SDL_GetWindowSize(win, &ww, &wh);
    SDL_GetRendererOutputSize(m->ren, &ow, &oh);
    if (ww > 0 && wh > 0) {
        *x = *x * ow / ww;
        *y = *y * oh / wh;
    }
}

static int pick(struct menu *m, int i, int *act, int *arg)
{
    if (i < 0 || i >= m->n)
        return 1;
    *act = m->rows[i].act;
    *arg = m->rows[i].arg;
    hd_info("menu", "picked: %s", m->rows[i].label);
    m->open = 0;
    return 1;
}

int menu_event(struct menu *m, const SDL_Event *ev, const struct menu_state *st,
               int *act, int *arg, int *redraw)
{
    int x, y, i;

    *act = MA_NONE;
    *arg = 0;
    *redraw = 0;
    build(m, st);
    place(m);
    switch (ev->type) {
    case SDL_MOUSEBUTTONDOWN:
    case SDL_MOUSEBUTTONUP:
        x = ev->button.x;
        y = ev->button.y;
        to_pixels(m, ev->button.windowID, &x, &y);
        if ((m->open || m->hover) && ui_hit(m->handle, x, y)) {
            if (ev->type == SDL_MOUSEBUTTONDOWN) {
                menu_toggle(m);
                *redraw = 1;
            }
            return 1;
        }
        if (!m->open)
            return 0;
        *redraw = 1;
        if (ui_hit(m->list, x, y)) {
            if (ev->type == SDL_MOUSEBUTTONUP)
                return pick(m, (y - m->list.y) / ROW_H, act, arg);
            return 1;
        }
        if (ev->type == SDL_MOUSEBUTTONDOWN)
            menu_toggle(m); /* a click elsewhere closes it */
        return 1;
    case SDL_MOUSEMOTION:
        x = ev->motion.x;
        y = ev->motion.y;
        to_pixels(m, ev->motion.windowID, &x, &y);
        if ((y < HOVER_H) != m->hover) {
            m->hover = y < HOVER_H;
            *redraw = 1;
        }
        if (!m->open)
            return 0;
        if (ui_hit(m->list, x, y) && (i = (y - m->list.y) / ROW_H) != m->sel) {
            m->sel = i;
            *redraw = 1;
        }
        return 1;
    case SDL_MOUSEWHEEL:
        return m->open;
    case SDL_KEYDOWN:
    case SDL_KEYUP:
        if (!m->open)
            return 0;
        if (ev->type == SDL_KEYUP)
            return 1;
        *redraw = 1;
        switch (ev->key.keysym.sym) {
        case SDLK_UP:
            m->sel = (m->sel + m->n - 1) % m->n;
            break;
        case SDLK_DOWN:
        case SDLK_TAB:
            m->sel = (m->sel + 1) % m->n;
            break;
        case SDLK_RETURN:
        case SDLK_KP_ENTER:
        case SDLK_SPACE:
            return pick(m, m->sel, act, arg);
        case SDLK_ESCAPE:
            menu_toggle(m);
            break;
        default:
            break;
        }
        return 1;
    case SDL_TEXTINPUT:
        return m->open;
    default:
        return 0;
    }
}

/* Ctrl+Alt+Del and lock: RustDesk's special control keys, pressed. */
static int send_control(struct sess *s, Hbb__ControlKey k)
{
    Hbb__Message msg = HBB__MESSAGE__INIT;
    Hbb__KeyEvent ke = HBB__KEY_EVENT__INIT;

    ke.union_case = HBB__KEY_EVENT__UNION_CONTROL_KEY;
    ke.control_key = k;
    ke.press = 1;
    ke.mode = HBB__KEYBOARD_MODE__Legacy;
    msg.union_case = HBB__MESSAGE__UNION_KEY_EVENT;
    msg.key_event = &ke;
    return sess_send(s, &msg);
}

int menu_send(struct sess *s, int act, int arg)
{
    Hbb__Message msg = HBB__MESSAGE__INIT;
    Hbb__Misc misc = HBB__MISC__INIT;
    Hbb__OptionMessage opt = HBB__OPTION_MESSAGE__INIT;
    Hbb__SwitchDisplay sd = HBB__SWITCH_DISPLAY__INIT;
    static const Hbb__ImageQuality q[] = { HBB__IMAGE_QUALITY__Balanced,
                                           HBB__IMAGE_QUALITY__Best,
                                           HBB__IMAGE_QUALITY__Low };
    static const int fps[] = { 30, 30, 15 };

    switch (act) {
    case MA_CAD:
        return send_control(s, HBB__CONTROL_KEY__CtrlAltDel);
    case MA_LOCK:
        return send_control(s, HBB__CONTROL_KEY__LockScreen);
    case MA_QUALITY:
        if (arg < 0 || arg > 2)
            return -EINVAL;
        opt.image_quality = q[arg];
        opt.custom_fps = fps[arg];
        misc.union_case = HBB__MISC__UNION_OPTION;
        misc.option = &opt;
        break;
    case MA_DISPLAY:
        sd.display = arg;
        misc.union_case = HBB__MISC__UNION_SWITCH_DISPLAY;
        misc.switch_display = &sd;
        break;
    default:
        return -EINVAL;
    }
    msg.union_case = HBB__MESSAGE__UNION_MISC;
    msg.misc = &misc;
    return sess_send(s, &msg);
}

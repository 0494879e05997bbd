/*
 * The in-window browser of the host's files.  See browse.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/browse.h"
#include "client/ui.h"
#include "client/xfer.h"
#include "err.h"
#include "log.h"

#define FONT_PT 13
#define PAD     10
#define FIELD_H 26
#define ROW_H   22
#define BTN_W   100
#define LABEL_W 90

enum focus { F_FOLDER = 0, F_LIST, F_SAVE, F_RECEIVE, F_CANCEL, F_N };

struct entry {
    char *name;
    int dir;
    uint64_t size;
};

/* A folder's listing, as the session's thread hands it over. */
struct listing {
    char path[4096];
    struct entry *e;
    int n;
};

struct browse {
    struct sess_config cfg; /* the desktop session's, xfer set */
    struct vxfer_opts xo;
    struct ui ui;
    SDL_Renderer *ren;
    void (*wake)(void *ud);
    void *ud;
    struct sess *s;
    char want[4096]; /* the folder asked for */
    int open, loading, focus, sel, top, rows_shown;
    struct listing cur; /* shown */
    struct ui_field folder, save;
    char status[320];
    char picked[4200], to[4200];
    SDL_Rect panel, list, buttons[2];

    pthread_mutex_t mu; /* the session thread's hand-over: */
    struct listing *in;
    int ended, end_status;
    char end_msg[320];
};

static void listing_free(struct listing *l)
{
    for (int i = 0; l != NULL && i < l->n; i++)
        free(l->e[i].name);
    if (l != NULL)
        free(l->e);
}

/* Folders first, then files, each by name. */
static int by_kind_name(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    if (x->dir != y->dir)
        return y->dir - x->dir;
    return strcmp(x->name, y->name);
}

/* Session thread: a listing came. */
static void on_dir(void *ud, const Hbb__FileDirectory *d)
{
    struct browse *b = ud;
    struct listing *l = calloc(1, sizeof(*l));
    size_t n =
        d->n_entries < BROWSE_MAX_ENTRIES ? d->n_entries : BROWSE_MAX_ENTRIES;

    if (l == NULL || (n > 0 && (l->e = calloc(n, sizeof(*l->e))) == NULL)) {
        free(l);
        return;
    }
    snprintf(l->path, sizeof(l->path), "%s", d->path ? d->path : "");
    for (size_t i = 0; i < n; i++) {
        const Hbb__FileEntry *e = d->entries[i];

        if (e->name == NULL || (l->e[l->n].name = strdup(e->name)) == NULL)
            continue;
        l->e[l->n].dir = e->entry_type == HBB__FILE_TYPE__Dir ||
                         e->entry_type == HBB__FILE_TYPE__DirLink ||
                         e->entry_type == HBB__FILE_TYPE__DirDrive;
        l->e[l->n++].size = e->size;
    }
    qsort(l->e, (size_t)l->n, sizeof(l->e[0]), by_kind_name);
    pthread_mutex_lock(&b->mu);
    if (b->in != NULL)
        listing_free(b->in);
    free(b->in);
    b->in = l;
    pthread_mutex_unlock(&b->mu);
    b->wake(b->ud);
}

static void on_ready(int w, int h, void *ud)
{
    (void)w;
    (void)h;
    (void)ud;
}

static void on_end(int status, const char *msg, void *ud)
{
    struct browse *b = ud;

    pthread_mutex_lock(&b->mu);
    b->ended = 1;
    b->end_status = status;
    snprintf(b->end_msg, sizeof(b->end_msg), "%s", msg ? msg : "");
    pthread_mutex_unlock(&b->mu);
    b->wake(b->ud);
}

int browse_new(const struct sess_config *base, SDL_Renderer *ren,
               void (*wake)(void *ud), void *ud, struct browse **out)
{
    struct browse *b = calloc(1, sizeof(*b));
    int r;

    *out = NULL;
    if (b == NULL)
        return -ENOMEM;
    if ((r = ui_init(&b->ui, ren, FONT_PT)) != 0) {
        free(b);
        return r;
    }
    b->cfg = *base;
    b->ren = ren;
    b->wake = wake;
    b->ud = ud;
    snprintf(b->want, sizeof(b->want), "~");
    snprintf(b->save.text, sizeof(b->save.text), "~/Downloads");
    pthread_mutex_init(&b->mu, NULL);
    *out = b;
    return 0;
}

/* List the host's folder path: over the session, or a new one. */
static void list(struct browse *b, const char *path)
{
    static const struct sess_cb cb = { .on_ready = on_ready, .on_end = on_end };
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__FileAction fa = HBB__FILE_ACTION__INIT;
    Hbb__ReadDir rd = HBB__READ_DIR__INIT;
    int r;

    if (path != b->want)
        snprintf(b->want, sizeof(b->want), "%s", path);
    b->loading = 1;
    snprintf(b->status, sizeof(b->status), "listing %.300s...", b->want);
    hd_info("browse", "listing the host's %s", b->want);
    if (b->s != NULL) {
        rd.id = VXFER_JOB;
        rd.path = b->want;
        fa.union_case = HBB__FILE_ACTION__UNION_READ_DIR;
        fa.read_dir = &rd;
        m.union_case = HBB__MESSAGE__UNION_FILE_ACTION;
        m.file_action = &fa;
        if ((r = sess_send(b->s, &m)) == 0)
            return;
        snprintf(b->status, sizeof(b->status), "cannot list %.200s: %s",
                 b->want, hd_strerror(r));
        b->loading = 0;
        return;
    }
    b->xo = (struct vxfer_opts){
        .mode = VXFER_LS, .path = b->want, .on_dir = on_dir, .dir_ud = b
    };
    b->cfg.xfer = &b->xo;
    b->cfg.no_audio = 1;
    b->cfg.no_clipboard = 1;
    b->ended = 0;
    if ((r = sess_new(&b->cfg, NULL, &cb, b, &b->s)) != 0 ||
        (r = sess_start(b->s)) != 0) {
        snprintf(b->status, sizeof(b->status), "cannot reach the host: %s",
                 hd_strerror(r));
        sess_free(b->s);
        b->s = NULL;
        b->loading = 0;
    }
}

void browse_open(struct browse *b)
{
    b->open = 1;
    b->focus = F_LIST;
    SDL_StartTextInput();
    list(b, b->cur.path[0] ? b->cur.path : b->want);
}

int browse_is_open(const struct browse *b)
{
    return b->open;
}

void browse_close(struct browse *b)
{
    if (b->open)
        hd_info("browse", "closed");
    b->open = 0;
}

int browse_poll(struct browse *b)
{
    struct listing *l;
    int ended, status;
    char msg[320];

    pthread_mutex_lock(&b->mu);
    l = b->in;
    b->in = NULL;
    ended = b->ended;
    b->ended = 0;
    status = b->end_status;
    snprintf(msg, sizeof(msg), "%s", b->end_msg);
    pthread_mutex_unlock(&b->mu);
    if (l != NULL) {
        listing_free(&b->cur);
        b->cur = *l;
        free(l);
        snprintf(b->folder.text, sizeof(b->folder.text), "%s", b->cur.path);
        b->sel = b->top = 0;
        b->loading = 0;
        snprintf(b->status, sizeof(b->status), "%d item(s)", b->cur.n);
        hd_info("browse", "listed the host's %s: %d item(s)", b->cur.path,
                b->cur.n);
    }
    if (ended && b->s != NULL) {
        sess_free(b->s); /* a new one for the next folder */
        b->s = NULL;
        if (b->loading && status != 0) { /* else: idle, nothing lost */
            snprintf(b->status, sizeof(b->status), "%s", msg);
            hd_info("browse", "%s", msg);
        }
        b->loading = 0;
    }
    return l != NULL || ended;
}

/* The host's path of row i (0: ".."), into out. */
static void row_path(const struct browse *b, int i, char *out, size_t cap)
{
    const char *p = b->cur.path;
    size_t n = strlen(p);

    if (i > 0) {
        snprintf(out, cap, "%s%s%s", p, n > 0 && p[n - 1] == '/' ? "" : "/",
                 b->cur.e[i - 1].name);
        return;
    }
    snprintf(out, cap, "%s", p);
    n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    while (n > 0 && out[n - 1] != '/')
        n--;
    out[n > 1 ? n - 1 : n] = '\0'; /* "/home/u" -> "/home", "/x" -> "/" */
    if (out[0] == '\0')
        snprintf(out, cap, "/");
}

/* Enter on row i: open a folder (or go up), or ask to receive a file. */
static int activate(struct browse *b, int i, int *receive)
{
    char path[4200];

    if (i < 0 || i > b->cur.n || b->loading)
        return 1;
    if (i == 0 || b->cur.e[i - 1].dir) {
        row_path(b, i, path, sizeof(path));
        list(b, path);
        return 1;
    }
    *receive = 1;
    return 1;
}

/* The user asked to receive: the picked row (a file or a folder). */
static void take(struct browse *b, int *receive)
{
    const char *home = getenv("HOME"), *t = b->save.text;

    *receive = 0;
    if (b->sel <= 0 || b->sel > b->cur.n) {
        snprintf(b->status, sizeof(b->status),
                 "pick a file or folder to receive");
        return;
    }
    row_path(b, b->sel, b->picked, sizeof(b->picked));
    if (t[0] == '~' && (t[1] == '/' || t[1] == '\0') && home != NULL)
        snprintf(b->to, sizeof(b->to), "%s%s", home, t + 1);
    else
        snprintf(b->to, sizeof(b->to), "%s", t[0] ? t : ".");
    hd_info("browse", "receive the host's %s into %s", b->picked, b->to);
    *receive = 1;
    b->open = 0;
}

void browse_picked(const struct browse *b, const char **path, const char **to)
{
    *path = b->picked;
    *to = b->to;
}

static void place(struct browse *b)
{
    int ow = 0, oh = 0, pw, ph, y;

    SDL_GetRendererOutputSize(b->ren, &ow, &oh);
    pw = ow - 40 < 720 ? ow - 40 : 720;
    ph = oh - 40 < 520 ? oh - 40 : 520;
    b->panel = (SDL_Rect){ (ow - pw) / 2, (oh - ph) / 2, pw, ph };
    y = b->panel.y + PAD + b->ui.line_h + 6;
    b->folder.r = (SDL_Rect){ b->panel.x + PAD + LABEL_W, y,
                              pw - 2 * PAD - LABEL_W, FIELD_H };
    y += FIELD_H + 6;
    b->buttons[0] =
        (SDL_Rect){ b->panel.x + pw - PAD - 2 * BTN_W - 8,
                    b->panel.y + ph - PAD - FIELD_H, BTN_W, FIELD_H };
    b->buttons[1] = b->buttons[0];
    b->buttons[1].x += BTN_W + 8;
    b->save.r = b->folder.r;
    b->save.r.y = b->buttons[0].y - 6 - FIELD_H;
    b->list =
        (SDL_Rect){ b->panel.x + PAD, y, pw - 2 * PAD, b->save.r.y - 6 - y };
    b->rows_shown = b->list.h / ROW_H > 1 ? b->list.h / ROW_H : 1;
    if (b->sel < b->top)
        b->top = b->sel;
    if (b->sel >= b->top + b->rows_shown)
        b->top = b->sel - b->rows_shown + 1;
}

static void draw_row(struct browse *b, int i, SDL_Rect r)
{
    struct ui *u = &b->ui;
    const struct entry *e = i > 0 ? &b->cur.e[i - 1] : NULL;
    SDL_Color c = i == b->sel && b->focus == F_LIST ? ui_panel : ui_fg;
    char t[300];
    int ty = r.y + (ROW_H - u->line_h) / 2;

    if (i == b->sel)
        ui_fill(u, r, b->focus == F_LIST ? ui_accent : ui_bg);
    snprintf(t, sizeof(t), "%s%s", e != NULL ? e->name : "..",
             e == NULL || e->dir ? "/" : "");
    ui_text(u, r.x + 6, ty, c, t);
    if (e != NULL && !e->dir) {
        if (e->size < 1000)
            snprintf(t, sizeof(t), "%u B", (unsigned)e->size);
        else
            snprintf(t, sizeof(t), "%.1f %s",
                     (double)e->size / (e->size < 1000000 ? 1e3 : 1e6),
                     e->size < 1000000 ? "kB" : "MB");
        ui_text(u, r.x + r.w - 6 - ui_text_width(u, t), ty, c, t);
    }
}

void browse_draw(struct browse *b)
{
    struct ui *u = &b->ui;
    int i;

    if (!b->open)
        return;
    place(b);
    SDL_SetRenderDrawBlendMode(b->ren, SDL_BLENDMODE_BLEND);
    ui_fill(u, b->panel, ui_bg);
    ui_frame(u, b->panel, ui_dim);
    ui_text(u, b->panel.x + PAD, b->panel.y + PAD, ui_fg,
            "Receive files from the host");
    ui_text(u, b->panel.x + PAD, b->folder.r.y + 5, ui_fg, "Host folder");
    ui_field_draw(u, &b->folder, b->focus == F_FOLDER);
    ui_fill(u, b->list, ui_panel);
    ui_frame(u, b->list, b->focus == F_LIST ? ui_accent : ui_dim);
    for (i = b->top; i <= b->cur.n && i < b->top + b->rows_shown; i++)
        draw_row(b, i,
                 (SDL_Rect){ b->list.x + 1, b->list.y + (i - b->top) * ROW_H,
                             b->list.w - 2, ROW_H });
    ui_text(u, b->panel.x + PAD, b->save.r.y + 5, ui_fg, "Save to");
    ui_field_draw(u, &b->save, b->focus == F_SAVE);
    ui_text(u, b->panel.x + PAD, b->buttons[0].y + 5, ui_dim, b->status);
    ui_button_draw(u, b->buttons[0], "Receive", b->focus == F_RECEIVE, 1);
    ui_button_draw(u, b->buttons[1], "Cancel", b->focus == F_CANCEL, 0);
}

static int on_key(struct browse *b, const SDL_Event *ev, int *receive)
{
    SDL_Keycode k = ev->key.keysym.sym;
    int last = b->cur.n, page = b->rows_shown;

    if (k == SDLK_ESCAPE) {
        browse_close(b);
        return 1;
    }
    if (k == SDLK_TAB) {
        b->focus =
            (b->focus + ((ev->key.keysym.mod & KMOD_SHIFT) ? F_N - 1 : 1)) %
            F_N;
        return 1;
    }
    if (b->focus == F_FOLDER || b->focus == F_SAVE) {
        if (k != SDLK_RETURN && k != SDLK_KP_ENTER)
            return ui_field_event(b->focus == F_FOLDER ? &b->folder : &b->save,
                                  ev);
        if (b->focus == F_SAVE) {
            take(b, receive);
        } else {
            b->focus = F_LIST;
            list(b, b->folder.text);
        }
        return 1;
    }
    if (k == SDLK_RETURN || k == SDLK_KP_ENTER || k == SDLK_SPACE) {
        if (b->focus == F_CANCEL)
            browse_close(b);
        else if (b->focus == F_RECEIVE)
            take(b, receive);
        else if (activate(b, b->sel, receive) && *receive)
            take(b, receive);
        return 1;
    }
    if (b->focus != F_LIST)
        return 0;
    if (k == SDLK_BACKSPACE)
        return activate(b, 0, receive);
    b->sel = k == SDLK_UP         ? b->sel - 1
             : k == SDLK_DOWN     ? b->sel + 1
             : k == SDLK_PAGEUP   ? b->sel - page
             : k == SDLK_PAGEDOWN ? b->sel + page
             : k == SDLK_HOME     ? 0
             : k == SDLK_END      ? last
                                  : b->sel;
    b->sel = b->sel < 0 ? 0 : b->sel > last ? last : b->sel;
    return 1;
}

static int on_click(struct browse *b, const SDL_MouseButtonEvent *e,
                    int *receive)
{
    int x = e->x, y = e->y, ww = 0, wh = 0, ow = 0, oh = 0, i;
    SDL_Window *win = SDL_GetWindowFromID(e->windowID);

    if (win != NULL) { /* window units -> renderer pixels (HiDPI) */
        SDL_GetWindowSize(win, &ww, &wh);
        SDL_GetRendererOutputSize(b->ren, &ow, &oh);
        if (ww > 0 && wh > 0) {
            x = x * ow / ww;
            y = y * oh / wh;
        }
    }
    if (ui_hit(b->folder.r, x, y))
        b->focus = F_FOLDER;
    else if (ui_hit(b->save.r, x, y))
        b->focus = F_SAVE;
    else if (ui_hit(b->buttons[0], x, y))
        take(b, receive);
    else if (ui_hit(b->buttons[1], x, y))
        browse_close(b);
    else if (ui_hit(b->list, x, y) &&
             (i = b->top + (y - b->list.y) / ROW_H) <= b->cur.n) {
        b->focus = F_LIST;
        b->sel = i;
        if (e->clicks >= 2 && activate(b, i, receive) && *receive)
            take(b, receive);
    }
    return 1;
}

int browse_event(struct browse *b, const SDL_Event *ev, int *redraw,
                 int *receive)
{
    *redraw = 0;
    *receive = 0;
    if (!b->open)
        return 0;
    place(b);
    switch (ev->type) {
    case SDL_KEYDOWN:
        *redraw = on_key(b, ev, receive);
        break;
    case SDL_TEXTINPUT:
        if (b->focus == F_FOLDER || b->focus == F_SAVE)
            *redraw = ui_field_event(
                b->focus == F_FOLDER ? &b->folder : &b->save, ev);
        break;
    case SDL_MOUSEBUTTONDOWN:
        *redraw = on_click(b, &ev->button, receive);
        break;
    case SDL_MOUSEWHEEL:
        b->top -= ev->wheel.y * 3;
        b->top = b->top > b->cur.n ? b->cur.n : b->top < 0 ? 0 : b->top;
        b->sel = b->sel < b->top ? b->top : b->sel;
        *redraw = 1;
        break;
    default:
        break;
    }
    if (!b->open)
        *redraw = 1;
    return 1;
}

void browse_free(struct browse *b)
{
    if (b == NULL)
        return;
    sess_free(b->s);
    listing_free(&b->cur);
    listing_free(b->in);
    free(b->in);
    ui_cleanup(&b->ui);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/*
 * The connect window.  See connect.h.
 *
 * Layout: one column of widgets at fixed places (the window is not
 * resizable); focus moves through them in the order of enum focus.  Every
 * change redraws the whole window.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include <sodium.h>

#include "client/connect.h"
#include "client/ui.h"
#include "crypto.h"
#include "files.h"
#include "log.h"

#define WIN_W     560
#define WIN_H     720
#define MARGIN    20
#define FIELD_H   34
#define ROW_H     30
#define FONT_PT   14
#define MSG_H     92
#define CONF_FILE "viewer.conf"

enum focus {
    F_ID = 0,
    F_PW,
    F_REMEMBER,
    F_CONNECT,
    F_RECENT,
    F_SERVER,
    F_KEY,
    F_N
};

struct recent {
    char id[UI_FIELD_MAX];
    char name[128];
    long long last; /* Unix seconds */
    uint8_t salted[HD_SHA256_BYTES];
    int has_salted;
};

struct cw {
    char dir[4096];
    SDL_Window *win;
    SDL_Renderer *ren;
    struct ui ui;
    struct ui_field f_id, f_pw, f_server, f_key;
    int remember;
    enum focus focus;
    struct recent recent[CW_RECENT_MAX];
    int n_recent, sel; /* sel: the recent row picked, -1 for none */
    char msg[400], hint[300];
    int msg_error;
    /* the last choice */
    char target[300], title[320];
    int used_salted; /* the choice used recent[].salted of target */
    uint8_t salted[HD_SHA256_BYTES];
    SDL_Rect r_remember, r_connect, r_recent[CW_RECENT_MAX];
};

/* ---- files ------------------------------------------------------------- */

static void path_of(const struct cw *c, const char *file, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", c->dir, file);
}

static void recent_load(struct cw *c)
{
    char path[4200], line[1024], *f[4], *p;
    struct recent *e;
    size_t len;
    FILE *fp;
    int i;

    path_of(c, CW_RECENT_FILE, path, sizeof(path));
    c->n_recent = 0;
    if ((fp = fopen(path, "r")) == NULL)
        return;
    while (c->n_recent < CW_RECENT_MAX && fgets(line, sizeof(line), fp)) {
        line[strcspn(line, "\r\n")] = '\0';
        for (i = 0, p = line; i < 4 && p != NULL; i++) {
            f[i] = p;
            if ((p = strchr(p, '\t')) != NULL && i < 3)
                *p++ = '\0';
        }
        if (i < 4 || f[0][0] == '\0' || f[0][0] == '#') {
            if (line[0] != '\0' && line[0] != '#')
                hd_warn("connect", "%s: a line that does not parse skipped",
                        path);
            continue;
        }
        e = &c->recent[c->n_recent];
        memset(e, 0, sizeof(*e));
        snprintf(e->id, sizeof(e->id), "%s", f[0]);
        e->last = strtoll(f[1], NULL, 10);
        e->has_salted = strcmp(f[2], "-") != 0 &&
                        hd_base64_decode(f[2], strlen(f[2]), e->salted,
                                         sizeof(e->salted), &len) == 0 &&
                        len == HD_SHA256_BYTES;
        snprintf(e->name, sizeof(e->name), "%s", f[3]);
        c->n_recent++;
    }
    sodium_memzero(line, sizeof(line));
    fclose(fp);
}

static int recent_save(struct cw *c)
{
    char path[4200], tmp[4300], b64[HD_BASE64_ENCODED_LEN(HD_SHA256_BYTES)];
    const struct recent *e;
    FILE *fp = NULL;
    int fd, i, r;

    path_of(c, CW_RECENT_FILE, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((r = hd_files_mkparents(path)) != 0)
        goto out;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
        (fp = fdopen(fd, "w")) == NULL) {
        r = -errno;
        goto out;
    }
    for (i = 0; i < c->n_recent; i++) {
        e = &c->recent[i];
        if (e->has_salted)
            hd_base64_encode(e->salted, sizeof(e->salted), b64, sizeof(b64));
        else
            strcpy(b64, "-");
        fprintf(fp, "%s\t%lld\t%s\t%s\n", e->id, e->last, b64, e->name);
    }
    sodium_memzero(b64, sizeof(b64));
    r = fflush(fp) != 0 ? -errno : 0;
    if (fclose(fp) != 0 && r == 0)
        r = -errno;
    fp = NULL;
    if (r == 0 && rename(tmp, path) != 0)
        r = -errno;
out:
    if (r != 0)
        hd_warn("connect", "%s: cannot write: %s", path, strerror(-r));
    return r;
}

/* Rewrite the server and key lines of viewer.conf, keeping the others. */
static int conf_save(struct cw *c)
{
    char path[4200], tmp[4300], line[4200], *k;
    FILE *in, *out;
    int r = 0;

    path_of(c, CONF_FILE, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((r = hd_files_mkparents(path)) != 0)
        goto fail;
    if ((out = fopen(tmp, "w")) == NULL) {
        r = -errno;
        goto fail;
    }
    if ((in = fopen(path, "r")) != NULL) {
        while (fgets(line, sizeof(line), in) != NULL) {
            for (k = line; *k == ' ' || *k == '\t'; k++)
                ;
            if ((strncmp(k, "server", 6) == 0 &&
                 strchr(" \t=", k[6]) != NULL) ||
                (strncmp(k, "key", 3) == 0 && strchr(" \t=", k[3]) != NULL))
                continue;
            fputs(line, out);
        }
        fclose(in);
    }
    if (c->f_server.text[0] != '\0')
        fprintf(out, "server = %s\n", c->f_server.text);
    if (c->f_key.text[0] != '\0')
        fprintf(out, "key = %s\n", c->f_key.text);
    r = fflush(out) != 0 ? -errno : 0;
    if (fclose(out) != 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) != 0)
        r = -errno;
    if (r == 0)
        return 0;
fail:
    hd_warn("connect", "%s: cannot save the server and key: %s", path,
            strerror(-r));
    return r;
}

/* ---- state --------------------------------------------------------------- */

int cw_new(const char *dir, const char *server, const char *key,
           struct cw **out)
{
    struct cw *c;

    *out = NULL;
    /* sodium_malloc: the typed password lives here (guarded, wiped) */
    if ((c = sodium_malloc(sizeof(*c))) == NULL)
        return -ENOMEM;
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    snprintf(c->f_server.text, sizeof(c->f_server.text), "%s",
             server ? server : "");
    snprintf(c->f_key.text, sizeof(c->f_key.text), "%s", key ? key : "");
    c->f_id.placeholder = "e.g. 123456789, or pc.lan:21120";
    c->f_pw.hidden = 1;
    c->f_server.placeholder = "nas.example.org[:21116]";
    c->f_key.placeholder = "the server's public key (id_ed25519.pub)";
    c->sel = -1;
    recent_load(c);
    *out = c;
    return 0;
}

static struct recent *recent_find(struct cw *c, const char *id)
{
    int i;

    for (i = 0; i < c->n_recent; i++)
        if (strcmp(c->recent[i].id, id) == 0)
            return &c->recent[i];
    return NULL;
}

static void set_msg(struct cw *c, int error, const char *msg, const char *hint)
{
    snprintf(c->msg, sizeof(c->msg), "%s", msg);
    snprintf(c->hint, sizeof(c->hint), "%s", hint ? hint : "");
    c->msg_error = error;
    if (msg[0] != '\0')
        hd_info("connect", "shown: %s%s%s", msg, c->hint[0] ? " / " : "",
                c->hint);
}

/* What to do about a failure, from the session's message. */
static const char *hint_for(const char *msg)
{
    static const struct {
        const char *start, *hint;
    } t[] = {
        { "wrong password",
          "Type the password again: homedesk-host prints its one-time "
          "password at start, or use the permanent one." },
        { "host offline",
          "Start homedesk-host on that computer, and check that it uses "
          "the same server." },
        { "ID not found",
          "Check the ID (the 9 digits homedesk-host prints as \"id:\") and "
          "that the host uses this server." },
        { "key mismatch",
          "Put the server's public key in Key: the line homedesk-server "
          "prints at start, or its id_ed25519.pub." },
        { "server unreachable", "Check Server (host name and port) and that "
                                "homedesk-server runs there." },
        { "cannot resolve the server",
          "Check the spelling of Server, and this computer's network." },
        { "host unreachable",
          "Check the address and port (homedesk-host --listen), and that "
          "the host runs." },
        { "host key changed",
          "If the host was reinstalled, remove its line from known_hosts; "
          "otherwise do not connect." },
        { "no data from the host",
          "The network dropped: try again, or ask for a relay path." },
        { "connection", "The network dropped the session: connect again." },
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strncmp(msg, t[i].start, strlen(t[i].start)) == 0 ||
            strstr(msg, t[i].start) != NULL)
            return t[i].hint;
    return "Check the ID or address, Server and Key, then connect again.";
}

/* ---- drawing ------------------------------------------------------------- */

static void fmt_when(long long t, char *out, size_t cap)
{
    time_t tt = (time_t)t, now = time(NULL);
    struct tm tm;

    if (t <= 0 || localtime_r(&tt, &tm) == NULL) {
        snprintf(out, cap, "never");
        return;
    }
    if (now - tt < 86400 && now >= tt)
        strftime(out, cap, "today %H:%M", &tm);
    else
        strftime(out, cap, "%Y-%m-%d %H:%M", &tm);
}

static int label(struct cw *c, int y, const char *t)
{
    ui_text(&c->ui, MARGIN, y, ui_dim, t);
    return y + c->ui.line_h + 2;
}

static void draw(struct cw *c)
{
    struct ui *u = &c->ui;
    struct recent *rem = recent_find(c, c->f_id.text);
    SDL_Rect r;
    char when[64], line[400];
    int y = MARGIN, i, fw = WIN_W - 2 * MARGIN;

    ui_fill(u, (SDL_Rect){ 0, 0, WIN_W, WIN_H }, ui_bg);
    ui_text(u, MARGIN, y, ui_accent, "Connect to a remote desktop");
    y += u->line_h + 14;

    y = label(c, y, "Host ID or address");
    c->f_id.r = (SDL_Rect){ MARGIN, y, fw, FIELD_H };
    ui_field_draw(u, &c->f_id, c->focus == F_ID);
    y += FIELD_H + 10;

    y = label(c, y, "Password");
    c->f_pw.placeholder =
        rem != NULL && rem->has_salted ? "remembered (leave empty)" : NULL;
    c->f_pw.r = (SDL_Rect){ MARGIN, y, fw, FIELD_H };
    ui_field_draw(u, &c->f_pw, c->focus == F_PW);
    y += FIELD_H + 8;

    c->r_remember = (SDL_Rect){ MARGIN, y, fw / 2, ROW_H };
    ui_check_draw(u, c->r_remember, "Remember password", c->remember,
                  c->focus == F_REMEMBER);
    c->r_connect = (SDL_Rect){ WIN_W - MARGIN - 140, y - 2, 140, FIELD_H + 2 };
    ui_button_draw(u, c->r_connect, "Connect", c->focus == F_CONNECT, 1);
    y += FIELD_H + 14;

    r = (SDL_Rect){ MARGIN, y, fw, MSG_H };
    if (c->msg[0] != '\0') {
        SDL_Rect bar = { MARGIN, y, 4, MSG_H };
        SDL_Rect txt = { MARGIN + 12, y + 6, fw - 18, MSG_H - 12 };
        int h;

        ui_fill(u, r, ui_panel);
        ui_fill(u, bar, c->msg_error ? ui_error : ui_ok);
        h = ui_text_wrapped(u, txt, c->msg_error ? ui_error : ui_fg, c->msg);
        txt.y += h + 4;
        txt.h -= h + 4;
        if (txt.h > 0 && c->hint[0] != '\0')
            ui_text_wrapped(u, txt, ui_fg, c->hint);
    }
    y += MSG_H + 12;

    y = label(c, y, "Recent hosts");
    for (i = 0; i < CW_RECENT_MAX && i < 6; i++) {
        SDL_Rect row = { MARGIN, y, fw, ROW_H };

        c->r_recent[i] = row;
        if (i >= c->n_recent) {
            c->r_recent[i] = (SDL_Rect){ 0, 0, 0, 0 };
            continue;
        }
        ui_fill(u, row, i == c->sel ? ui_accent : ui_panel);
        if (i == c->sel && c->focus == F_RECENT)
            ui_frame(u, row, ui_fg);
        fmt_when(c->recent[i].last, when, sizeof(when));
        snprintf(line, sizeof(line), "%s   %s", c->recent[i].id,
                 c->recent[i].name[0] ? c->recent[i].name : "");
        ui_text(u, row.x + 8, row.y + (ROW_H - u->line_h) / 2,
                i == c->sel ? ui_panel : ui_fg, line);
        ui_text(u, row.x + row.w - 8 - ui_text_width(u, when),
                row.y + (ROW_H - u->line_h) / 2,
                i == c->sel ? ui_panel : ui_dim, when);
        y += ROW_H + 2;
    }
    if (c->n_recent == 0) {
        ui_text(u, MARGIN + 8, y, ui_dim, "(none yet)");
        y += ROW_H;
    }
    if (c->focus == F_RECENT && c->n_recent == 0)
        ui_frame(u, (SDL_Rect){ MARGIN, y - ROW_H, fw, ROW_H }, ui_accent);

    y = WIN_H - MARGIN - 2 * (FIELD_H + u->line_h + 12);
    y = label(c, y, "Server (saved in viewer.conf)");
    c->f_server.r = (SDL_Rect){ MARGIN, y, fw, FIELD_H };
    ui_field_draw(u, &c->f_server, c->focus == F_SERVER);
    y += FIELD_H + 10;
    y = label(c, y, "Key");
    c->f_key.r = (SDL_Rect){ MARGIN, y, fw, FIELD_H };
    ui_field_draw(u, &c->f_key, c->focus == F_KEY);
    SDL_RenderPresent(c->ren);
}

/* ---- input --------------------------------------------------------------- */

static struct ui_field *focused_field(struct cw *c)
{
    switch (c->focus) {
    case F_ID:
        return &c->f_id;
    case F_PW:
        return &c->f_pw;
    case F_SERVER:
        return &c->f_server;
    case F_KEY:
        return &c->f_key;
    default:
        return NULL;
    }
}

static void pick_recent(struct cw *c, int i)
{
    if (i < 0 || i >= c->n_recent)
        return;
    c->sel = i;
    snprintf(c->f_id.text, sizeof(c->f_id.text), "%s", c->recent[i].id);
    ui_field_clear(&c->f_pw);
    c->remember = c->recent[i].has_salted;
}

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Check the form and fill out; 0, or -1 with the message set. */
static int make_choice(struct cw *c, struct cw_choice *out)
{
    struct recent *rem;
    uint8_t key[64];
    size_t keylen;
    char *t = c->f_id.text;

    memset(out, 0, sizeof(*out));
    while (*t == ' ')
        t++;
    t[strcspn(t, " \t")] = '\0';
    if (t != c->f_id.text)
        memmove(c->f_id.text, t, strlen(t) + 1);
    if (c->f_id.text[0] == '\0') {
        set_msg(c, 1, "No host given.",
                "Type the host's ID (the digits homedesk-host prints as "
                "\"id:\") or its address, e.g. pc.lan:21120.");
        c->focus = F_ID;
        return -1;
    }
    if (all_digits(c->f_id.text)) {
        if (c->f_server.text[0] == '\0' || c->f_key.text[0] == '\0') {
            set_msg(c, 1, "Connecting by ID needs a server and its key.",
                    "Fill in Server and Key below (homedesk-server prints "
                    "its key at start), or type an address instead.");
            c->focus = c->f_server.text[0] == '\0' ? F_SERVER : F_KEY;
            return -1;
        }
        if (hd_base64_decode(c->f_key.text, strlen(c->f_key.text), key,
                             sizeof(key), &keylen) != 0 ||
            keylen != HD_SIGN_PK_BYTES) {
            set_msg(c, 1, "Key: not a server public key.",
                    "Paste the 44 characters of the server's id_ed25519.pub.");
            c->focus = F_KEY;
            return -1;
        }
        out->id = c->f_id.text;
        snprintf(c->target, sizeof(c->target), "%s", c->f_id.text);
    } else {
        /* an address (main adds the host's default port when none) */
        snprintf(c->target, sizeof(c->target), "%s", c->f_id.text);
        out->direct = c->target;
    }
    out->server = c->f_server.text[0] ? c->f_server.text : NULL;
    out->key = c->f_key.text[0] ? c->f_key.text : NULL;
    rem = recent_find(c, c->f_id.text);
    c->used_salted = 0;
    if (c->f_pw.text[0] == '\0' && rem != NULL && rem->has_salted) {
        memcpy(c->salted, rem->salted, sizeof(c->salted));
        out->salted = c->salted;
        c->used_salted = 1;
    }
    out->password = c->f_pw.text;
    snprintf(c->title, sizeof(c->title), "%s", c->f_id.text);
    out->title = c->title;
    return 0;
}

static int open_window(struct cw *c)
{
    int r;
    const char *drv, *want = getenv("SDL_VIDEODRIVER");

    if (c->win != NULL)
        return 0;
    if (SDL_Init(SDL_INIT_VIDEO | SDL_INIT_TIMER) != 0) {
        hd_error("connect", "SDL: %s", SDL_GetError());
        return -ENODEV;
    }
    /* with no display SDL falls back to drivers nobody can see */
    drv = SDL_GetCurrentVideoDriver();
    if (drv != NULL &&
        (strcmp(drv, "offscreen") == 0 || strcmp(drv, "dummy") == 0) &&
        (want == NULL || strcmp(want, drv) != 0)) {
        hd_debug("connect", "no display (SDL chose %s)", drv);
        return -ENODEV;
    }
    c->win = SDL_CreateWindow("homedesk: connect", SDL_WINDOWPOS_CENTERED,
                              SDL_WINDOWPOS_CENTERED, WIN_W, WIN_H, 0);
    if (c->win == NULL) {
        hd_error("connect", "cannot create the window: %s", SDL_GetError());
        return -ENODEV;
    }
    c->ren = SDL_CreateRenderer(c->win, -1, 0);
    if (c->ren == NULL)
        c->ren = SDL_CreateRenderer(c->win, -1, SDL_RENDERER_SOFTWARE);
    if (c->ren == NULL) {
        hd_error("connect", "cannot create a renderer: %s", SDL_GetError());
        cw_close(c);
        return -ENODEV;
    }
    if ((r = ui_init(&c->ui, c->ren, FONT_PT)) != 0) {
        cw_close(c);
        return r;
    }
    SDL_StartTextInput();
    hd_info("connect", "window open (%d recent hosts)", c->n_recent);
    return 0;
}

void cw_close(void *ud)
{
    struct cw *c = ud;

    ui_cleanup(&c->ui);
    if (c->ren != NULL)
        SDL_DestroyRenderer(c->ren);
    if (c->win != NULL)
        SDL_DestroyWindow(c->win);
    c->ren = NULL;
    c->win = NULL;
}

static void focus_move(struct cw *c, int back)
{
    c->focus = (enum focus)((c->focus + (back ? F_N - 1 : 1)) % F_N);
    if (c->focus == F_RECENT && c->sel < 0 && c->n_recent > 0)
        c->sel = 0;
}

/* One key; returns CW_CONNECT, CW_QUIT or -1 (keep going). */
static int on_key(struct cw *c, const SDL_Event *ev)
{
    SDL_Keycode k = ev->key.keysym.sym;
    struct ui_field *f = focused_field(c);

    switch (k) {
    case SDLK_TAB:
        focus_move(c, ev->key.keysym.mod & KMOD_SHIFT);
        return -1;
    case SDLK_ESCAPE:
        return CW_QUIT;
    case SDLK_RETURN:
    case SDLK_KP_ENTER:
        if (c->focus == F_REMEMBER) {
            c->remember = !c->remember;
            return -1;
        }
        if (c->focus == F_RECENT)
            pick_recent(c, c->sel);
        return CW_CONNECT;
    case SDLK_SPACE:
        if (c->focus == F_REMEMBER)
            c->remember = !c->remember;
        return -1;
    case SDLK_UP:
    case SDLK_DOWN:
        if (c->focus == F_RECENT || c->focus == F_ID)
            pick_recent(c, c->sel < 0 ? 0 : c->sel + (k == SDLK_UP ? -1 : 1));
        return -1;
    default:
        break;
    }
    if (f != NULL) {
        ui_field_event(f, ev);
        if (f == &c->f_id)
            c->sel = -1;
    }
    return -1;
}

/* A click; same returns as on_key. */
static int on_click(struct cw *c, int x, int y, int clicks)
{
    struct ui_field *fields[] = { &c->f_id, &c->f_pw, &c->f_server, &c->f_key };
    const enum focus ff[] = { F_ID, F_PW, F_SERVER, F_KEY };
    int i;

    for (i = 0; i < 4; i++)
        if (ui_hit(fields[i]->r, x, y)) {
            c->focus = ff[i];
            return -1;
        }
    if (ui_hit(c->r_remember, x, y)) {
        c->focus = F_REMEMBER;
        c->remember = !c->remember;
        return -1;
    }
    if (ui_hit(c->r_connect, x, y))
        return CW_CONNECT;
    for (i = 0; i < c->n_recent && i < CW_RECENT_MAX; i++)
        if (ui_hit(c->r_recent[i], x, y)) {
            c->focus = F_RECENT;
            pick_recent(c, i);
            return clicks >= 2 ? CW_CONNECT : -1;
        }
    return -1;
}

int cw_run(struct cw *c, struct cw_choice *out)
{
    SDL_Event ev;
    int r, act;

    if ((r = open_window(c)) != 0)
        return r;
    draw(c);
    while (SDL_WaitEvent(&ev)) {
        act = -1;
        if (ev.type == SDL_QUIT)
            act = CW_QUIT;
        else if (ev.type == SDL_WINDOWEVENT &&
                 ev.window.event == SDL_WINDOWEVENT_CLOSE)
            act = CW_QUIT;
        else if (ev.type == SDL_KEYDOWN)
            act = on_key(c, &ev);
        else if (ev.type == SDL_TEXTINPUT) {
            struct ui_field *f = focused_field(c);

            if (f != NULL && ui_field_event(f, &ev) && f == &c->f_id)
                c->sel = -1;
        } else if (ev.type == SDL_MOUSEBUTTONDOWN &&
                   ev.button.button == SDL_BUTTON_LEFT)
            act = on_click(c, ev.button.x, ev.button.y, ev.button.clicks);
        else if (ev.type != SDL_WINDOWEVENT)
            continue;
        if (act == CW_QUIT) {
            cw_close(c);
            return CW_QUIT;
        }
        if (act == CW_CONNECT && make_choice(c, out) == 0) {
            conf_save(c);
            snprintf(c->msg, sizeof(c->msg), "Connecting to %s ...", c->title);
            hd_info("connect", "connecting to %s", c->target);
            c->hint[0] = '\0';
            c->msg_error = 0;
            draw(c);
            return CW_CONNECT;
        }
        draw(c);
    }
    hd_error("connect", "SDL: %s", SDL_GetError());
    cw_close(c);
    return -EIO;
}

/* Put target first in the recent list (a new entry when unknown). */
static struct recent *recent_touch(struct cw *c)
{
    struct recent e, *old = recent_find(c, c->f_id.text);
    int i = old != NULL ? (int)(old - c->recent) : -1;

    if (old != NULL)
        e = *old;
    else {
        memset(&e, 0, sizeof(e));
        snprintf(e.id, sizeof(e.id), "%s", c->f_id.text);
        i = c->n_recent < CW_RECENT_MAX ? c->n_recent++ : CW_RECENT_MAX - 1;
    }
    memmove(&c->recent[1], &c->recent[0], (size_t)i * sizeof(e));
    c->recent[0] = e;
    sodium_memzero(&e, sizeof(e));
    return &c->recent[0];
}

void cw_done(struct cw *c, struct sess *s, int status, const char *msg)
{
    struct recent *e;
    char name[128];
    uint8_t salted[HD_SHA256_BYTES];

    cw_close(c);
    if (s != NULL && sess_get_login(s, name, sizeof(name), salted) == 0) {
        e = recent_touch(c);
        e->last = (long long)time(NULL);
        if (name[0] != '\0')
            snprintf(e->name, sizeof(e->name), "%s", name);
        if (c->remember) {
            memcpy(e->salted, salted, sizeof(e->salted));
            e->has_salted = 1;
        } else {
            sodium_memzero(e->salted, sizeof(e->salted));
            e->has_salted = 0;
        }
        recent_save(c);
        c->sel = 0;
        ui_field_clear(&c->f_pw);
        if (status == 0) {
            char m[400];

            snprintf(m, sizeof(m), "The session with %s ended.", c->title);
            set_msg(c, 0, m, NULL);
        } else
            set_msg(c, 1, msg ? msg : "the session failed",
                    hint_for(msg ? msg : ""));
    } else if (status == 0) {
        set_msg(c, 0, "Cancelled.", NULL);
    } else {
        if (msg != NULL && strncmp(msg, "wrong password", 14) == 0) {
            if (c->used_salted && (e = recent_find(c, c->f_id.text)) != NULL) {
                /* the host's password changed: forget the old one */
                sodium_memzero(e->salted, sizeof(e->salted));
                e->has_salted = 0;
                recent_save(c);
            }
            ui_field_clear(&c->f_pw);
            c->focus = F_PW;
        }
        set_msg(c, 1, msg ? msg : "the connection failed",
                hint_for(msg ? msg : ""));
    }
    sodium_memzero(salted, sizeof(salted));
    sodium_memzero(c->salted, sizeof(c->salted));
}

void cw_free(struct cw *c)
{
    if (c == NULL)
        return;
    cw_close(c);
    if (TTF_WasInit())
        TTF_Quit();
    SDL_Quit();
    sodium_free(c); /* wipes the password fields */
}

/*
 * Widgets drawn with SDL2_ttf.  See ui.h.  Text is rendered to a surface,
 * turned into a texture, copied and freed on every draw: these windows
 * redraw only on input, so there is nothing worth caching.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "client/ui.h"
#include "log.h"

const SDL_Color ui_bg = { 0xf4, 0xf5, 0xf7, 0xff };
const SDL_Color ui_fg = { 0x1c, 0x1e, 0x21, 0xff };
const SDL_Color ui_dim = { 0x80, 0x86, 0x8e, 0xff };
const SDL_Color ui_accent = { 0x1f, 0x6f, 0xd0, 0xff };
const SDL_Color ui_error = { 0xc0, 0x1c, 0x28, 0xff };
const SDL_Color ui_ok = { 0x26, 0x8c, 0x3c, 0xff };
const SDL_Color ui_panel = { 0xff, 0xff, 0xff, 0xff };

static const char *const font_paths[] = { UI_FONT_PATHS };

int ui_init(struct ui *u, SDL_Renderer *ren, int pt)
{
    size_t i;

    memset(u, 0, sizeof(*u));
    u->ren = ren;
    if (!TTF_WasInit() && TTF_Init() != 0) {
        hd_error("ui", "SDL_ttf: %s", TTF_GetError());
        return -ENOENT;
    }
    for (i = 0; i < sizeof(font_paths) / sizeof(font_paths[0]); i++)
        if ((u->font = TTF_OpenFont(font_paths[i], pt)) != NULL)
            break;
    if (u->font == NULL) {
        hd_error("ui",
                 "no font: %s not found (install Debian's fonts-dejavu-core)",
                 font_paths[0]);
        return -ENOENT;
    }
    u->line_h = TTF_FontLineSkip(u->font);
    return 0;
}

void ui_cleanup(struct ui *u)
{
    if (u->font != NULL)
        TTF_CloseFont(u->font);
    u->font = NULL;
}

int ui_text_width(struct ui *u, const char *t)
{
    int w = 0, h = 0;

    if (t[0] != '\0')
        TTF_SizeUTF8(u->font, t, &w, &h);
    return w;
}

/* Copy a rendered surface to the renderer at r (clipped to clip). */
static void blit(struct ui *u, SDL_Surface *s, int x, int y,
                 const SDL_Rect *clip)
{
    SDL_Texture *t;
    SDL_Rect src = { 0, 0, s->w, s->h }, dst = { x, y, s->w, s->h };

    if (clip != NULL) {
        if (src.w > clip->w)
            src.w = dst.w = clip->w;
        if (src.h > clip->h)
            src.h = dst.h = clip->h;
    }
    if ((t = SDL_CreateTextureFromSurface(u->ren, s)) != NULL) {
        SDL_RenderCopy(u->ren, t, &src, &dst);
        SDL_DestroyTexture(t);
    }
    SDL_FreeSurface(s);
}

int ui_text(struct ui *u, int x, int y, SDL_Color c, const char *t)
{
    SDL_Surface *s;
    int w;

    if (t[0] == '\0' || (s = TTF_RenderUTF8_Blended(u->font, t, c)) == NULL)
        return 0;
    w = s->w;
    blit(u, s, x, y, NULL);
    return w;
}

int ui_text_wrapped(struct ui *u, SDL_Rect r, SDL_Color c, const char *t)
{
    SDL_Surface *s;
    int h;

    if (t[0] == '\0' || (s = TTF_RenderUTF8_Blended_Wrapped(
                             u->font, t, c, (Uint32)r.w)) == NULL)
        return 0;
    h = s->h < r.h ? s->h : r.h;
    blit(u, s, r.x, r.y, &r);
    return h;
}

void ui_fill(struct ui *u, SDL_Rect r, SDL_Color c)
{
    SDL_SetRenderDrawColor(u->ren, c.r, c.g, c.b, c.a);
    SDL_RenderFillRect(u->ren, &r);
}

void ui_frame(struct ui *u, SDL_Rect r, SDL_Color c)
{
    SDL_SetRenderDrawColor(u->ren, c.r, c.g, c.b, c.a);
    SDL_RenderDrawRect(u->ren, &r);
}

int ui_hit(SDL_Rect r, int x, int y)
{
    return x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h;
}

void ui_field_draw(struct ui *u, const struct ui_field *f, int focused)
{
    char shown[UI_FIELD_MAX * 3];
    const char *t = f->text;
    SDL_Rect inner = { f->r.x + 8, f->r.y, f->r.w - 16, f->r.h };
    int ty = f->r.y + (f->r.h - u->line_h) / 2, w = 0;
    size_t n = 0;

    ui_fill(u, f->r, ui_panel);
    ui_frame(u, f->r, focused ? ui_accent : ui_dim);
    if (focused) {
        SDL_Rect in = { f->r.x + 1, f->r.y + 1, f->r.w - 2, f->r.h - 2 };
        ui_frame(u, in, ui_accent);
    }
    if (f->hidden) {
        for (; *t && n + 3 < sizeof(shown); t++)
            if ((*t & 0xc0) != 0x80) { /* one dot per character */
                memcpy(shown + n, "\xe2\x80\xa2", 3);
                n += 3;
            }
        shown[n] = '\0';
        t = shown;
    }
    if (t[0] == '\0' && f->placeholder != NULL && !focused)
        ui_text(u, inner.x, ty, ui_dim, f->placeholder);
    else if (t[0] != '\0') {
        SDL_Surface *s = TTF_RenderUTF8_Blended(u->font, t, ui_fg);

        if (s != NULL) {
            w = s->w;
            /* the end of a long text stays in view */
            if (w > inner.w) {
                SDL_Texture *tx = SDL_CreateTextureFromSurface(u->ren, s);
                SDL_Rect src = { w - inner.w, 0, inner.w, s->h };
                SDL_Rect dst = { inner.x, ty, inner.w, s->h };

                if (tx != NULL) {
                    SDL_RenderCopy(u->ren, tx, &src, &dst);
                    SDL_DestroyTexture(tx);
                }
                SDL_FreeSurface(s);
                w = inner.w;
            } else {
                blit(u, s, inner.x, ty, NULL);
            }
        }
    }
    if (focused) { /* the caret */
        SDL_Rect c = { inner.x + w + 1, ty + 2, 2, u->line_h - 4 };
        ui_fill(u, c, ui_fg);
    }
}

static void field_append(struct ui_field *f, const char *t)
{
    size_t n = strlen(f->text), add;

    for (add = 0; t[add] != '\0' && t[add] != '\n' && t[add] != '\r'; add++)
        ;
    if (n + add >= sizeof(f->text))
        add = sizeof(f->text) - 1 - n;
    while (add > 0 && (t[add] & 0xc0) == 0x80) /* no half a character */
        add--;
    memcpy(f->text + n, t, add);
    f->text[n + add] = '\0';
}

int ui_field_event(struct ui_field *f, const SDL_Event *ev)
{
    size_t n = strlen(f->text);
    char *clip;

    if (ev->type == SDL_TEXTINPUT) {
        field_append(f, ev->text.text);
        return 1;
    }
    if (ev->type != SDL_KEYDOWN)
        return 0;
    if (ev->key.keysym.sym == SDLK_BACKSPACE) {
        if (n == 0)
            return 0;
        while (n > 0 && (f->text[--n] & 0xc0) == 0x80)
            ;
        sodium_memzero(f->text + n, strlen(f->text + n));
        return 1;
    }
    if (!(ev->key.keysym.mod & KMOD_CTRL))
        return 0;
    if (ev->key.keysym.sym == SDLK_u) {
        ui_field_clear(f);
        return 1;
    }
    if (ev->key.keysym.sym == SDLK_v && SDL_HasClipboardText() &&
        (clip = SDL_GetClipboardText()) != NULL) {
        field_append(f, clip);
        SDL_free(clip);
        return 1;
    }
    return 0;
}

void ui_field_clear(struct ui_field *f)
{
    sodium_memzero(f->text, sizeof(f->text));
}

void ui_button_draw(struct ui *u, SDL_Rect r, const char *label, int focused,
                    int primary)
{
    SDL_Color fg = primary ? ui_panel : ui_fg;
    int tw = ui_text_width(u, label);

    ui_fill(u, r, primary ? ui_accent : ui_panel);
    ui_frame(u, r, focused ? ui_fg : ui_dim);
    if (focused) {
        SDL_Rect in = { r.x + 2, r.y + 2, r.w - 4, r.h - 4 };
        ui_frame(u, in, primary ? ui_panel : ui_accent);
    }
    ui_text(u, r.x + (r.w - tw) / 2, r.y + (r.h - u->line_h) / 2, fg, label);
}

void ui_check_draw(struct ui *u, SDL_Rect r, const char *label, int checked,
                   int focused)
{
    int box = u->line_h - 4;
    SDL_Rect b = { r.x, r.y + (r.h - box) / 2, box, box };

    ui_fill(u, b, ui_panel);
    ui_frame(u, b, focused ? ui_accent : ui_dim);
    if (checked) {
        SDL_Rect in = { b.x + 3, b.y + 3, b.w - 6, b.h - 6 };
        ui_fill(u, in, ui_accent);
    }
    ui_text(u, r.x + box + 8, r.y + (r.h - u->line_h) / 2,
            focused ? ui_accent : ui_fg, label);
}

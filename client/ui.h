/*
 * Drawing widgets for the viewer's own windows (the connect window, the
 * in-session toolbar): text in a system TrueType font (SDL2_ttf, DejaVu
 * Sans from Debian's fonts-dejavu-core), filled and framed rectangles,
 * text fields (optionally hidden, for passwords), buttons and check
 * boxes.  No toolkit: each call draws at once on the given renderer; the
 * caller redraws everything on each change (these windows are small).
 *
 * Main thread only (SDL's rule for rendering).
 */
#ifndef VIEW_UI_H
#define VIEW_UI_H

#include <stddef.h>

#include <SDL.h>
#include <SDL_ttf.h>

/* Where the font is looked for, in order (the first that opens wins). */
#define UI_FONT_PATHS                                  \
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", \
        "/usr/local/share/fonts/DejaVuSans.ttf"
#define UI_FIELD_MAX 256 /* bytes of text in a field, NUL included */

struct ui {
    SDL_Renderer *ren; /* borrowed */
    TTF_Font *font;
    int line_h; /* height of one line of text */
};

/* The palette, so that every window looks the same. */
extern const SDL_Color ui_bg, ui_fg, ui_dim, ui_accent, ui_error, ui_ok,
    ui_panel;

/*
 * Open the font at pt points for drawing on ren (TTF_Init on first use).
 * Returns 0, or -ENOENT with one line logged naming the paths tried and
 * the package to install.
 */
int ui_init(struct ui *u, SDL_Renderer *ren, int pt);

/* Close the font; accepts a ui that never opened. */
void ui_cleanup(struct ui *u);

/* Width in pixels of t. */
int ui_text_width(struct ui *u, const char *t);

/* Draw t (UTF-8) with its top-left at x, y; returns its width. */
int ui_text(struct ui *u, int x, int y, SDL_Color c, const char *t);

/* Draw t wrapped to r.w, clipped to r; returns the height used. */
int ui_text_wrapped(struct ui *u, SDL_Rect r, SDL_Color c, const char *t);

void ui_fill(struct ui *u, SDL_Rect r, SDL_Color c);
void ui_frame(struct ui *u, SDL_Rect r, SDL_Color c);

/* Is (x, y) inside r? */
int ui_hit(SDL_Rect r, int x, int y);

/* A one-line text field.  text is NUL-terminated UTF-8. */
struct ui_field {
    char text[UI_FIELD_MAX];
    int hidden;              /* shown as dots (passwords) */
    const char *placeholder; /* shown dimmed while empty, or NULL */
    SDL_Rect r;
};

void ui_field_draw(struct ui *u, const struct ui_field *f, int focused);

/*
 * Feed an event to a focused field: SDL_TEXTINPUT appends, Backspace
 * removes the last character (UTF-8 aware), Ctrl+U clears, Ctrl+V pastes
 * (one line).  Returns 1 when the event changed the field.
 */
int ui_field_event(struct ui_field *f, const SDL_Event *ev);

/* Wipe the field's text (passwords). */
void ui_field_clear(struct ui_field *f);

void ui_button_draw(struct ui *u, SDL_Rect r, const char *label, int focused,
                    int primary);

void ui_check_draw(struct ui *u, SDL_Rect r, const char *label, int checked,
                   int focused);

#endif

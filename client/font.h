/*
 * A tiny built-in 5x7 bitmap font for the stats overlay (no SDL_ttf):
 * digits, letters (drawn as capitals), space and . : = - / %.  Pure data;
 * any thread.
 */
#ifndef VIEW_FONT_H
#define VIEW_FONT_H

#include <stdint.h>

#define FONT_W 5
#define FONT_H 7

/*
 * The glyph of c: FONT_H rows, bit 4 of each is the leftmost pixel.
 * Returns 1, or 0 for a character the font lacks (drawn as a blank).
 */
int font_glyph(char c, uint8_t rows[FONT_H]);

#endif

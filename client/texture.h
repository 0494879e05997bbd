/*
 * The session window's picture texture: an IYUV texture for I420
 * pictures (SDL converts), an ARGB one for I444 (SDL has no 4:4:4 YUV
 * texture: libyuv converts the changed area into it).  Both BT.601
 * limited range, as the host converts.
 *
 * Threads: the SDL thread only.
 */
#ifndef VIEW_TEXTURE_H
#define VIEW_TEXTURE_H

#include <SDL.h>

#include "client/picture.h"

/* Once, after SDL_Init: SDL's YUV conversion as the host's (BT.601; SDL
 * would take BT.709 above 576 rows, shifting every colour). */
void tex_init(void);

/* A streaming texture for pictures like p (size, chroma); NULL with SDL's
 * error set. */
SDL_Texture *tex_new(SDL_Renderer *ren, const struct pic *p);

/* Upload area r of p (NULL: all of it) into tex, made by tex_new for a
 * picture like p. */
void tex_update(SDL_Texture *tex, const struct pic *p,
                const struct pic_rect *r);

#endif

/*
 * The session window's picture texture.  See texture.h.
 */
#include <libyuv/convert_argb.h>

#include "client/texture.h"

void tex_init(void)
{
    SDL_SetYUVConversionMode(SDL_YUV_CONVERSION_BT601);
}

SDL_Texture *tex_new(SDL_Renderer *ren, const struct pic *p)
{
    return SDL_CreateTexture(
        ren, p->cs ? SDL_PIXELFORMAT_IYUV : SDL_PIXELFORMAT_ARGB8888,
        SDL_TEXTUREACCESS_STREAMING, p->w, p->h);
}

void tex_update(SDL_Texture *tex, const struct pic *p, const struct pic_rect *r)
{
    struct pic_rect all = { 0, 0, p->w, p->h };
    int cs = p->cs;
    const uint8_t *y, *u, *v;
    SDL_Rect sr;
    void *px;
    int pitch;

    r = r != NULL ? r : &all;
    sr = (SDL_Rect){ r->x, r->y, r->w, r->h };
    y = p->plane[0] + (size_t)r->y * p->stride[0] + r->x;
    u = p->plane[1] + (size_t)(r->y >> cs) * p->stride[1] + (r->x >> cs);
    v = p->plane[2] + (size_t)(r->y >> cs) * p->stride[2] + (r->x >> cs);
    if (cs) {
        SDL_UpdateYUVTexture(tex, &sr, y, p->stride[0], u, p->stride[1], v,
                             p->stride[2]);
        return;
    }
    /* I444 (the host's BT.601 limited range) straight into the texture */
    if (SDL_LockTexture(tex, &sr, &px, &pitch) != 0)
        return;
    I444ToARGB(y, p->stride[0], u, p->stride[1], v, p->stride[2], px, pitch,
               r->w, r->h);
    SDL_UnlockTexture(tex);
}

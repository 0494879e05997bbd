/*
 * The host's pointer in the viewer.  See pointer.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>
#include <zstd.h>

#include "client/pointer.h"
#include "log.h"

/* A shape from the host not yet made into an SDL cursor. */
struct shape_in {
    uint64_t id;
    uint8_t *rgba;
    int w, h, hot_x, hot_y;
};

struct ptr {
    pthread_mutex_t mu;             /* guards the hand-over below */
    struct shape_in in[PTR_SHAPES]; /* oldest first */
    int n_in;
    uint64_t want; /* the shape to show */
    int have_want, pos_new, pos_x, pos_y, posted;

    /* window thread: the shapes made, a ring; what is shown; our moves */
    struct {
        uint64_t id;
        SDL_Cursor *c;
    } made[PTR_SHAPES];
    unsigned n_made;
    SDL_Cursor *shown;
    struct {
        int x, y;
        Uint32 ms;
    } sent[PTR_SENT];
    unsigned n_sent;
};

int ptr_new(struct ptr **out)
{
    struct ptr *p = calloc(1, sizeof(*p));

    *out = p;
    if (p == NULL)
        return -ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    return 0;
}

/*
 * CursorData's pixels into in (rgba malloc'd).  A shape too big or that
 * does not decompress to its size is dropped with a log line (the session
 * goes on: the pointer just keeps its last shape).  Returns 0 or -1.
 */
static int unpack(const Hbb__CursorData *cd, struct shape_in *in)
{
    size_t n, got;

    if (cd->width <= 0 || cd->height <= 0 || cd->width > PTR_MAX ||
        cd->height > PTR_MAX) {
        hd_info("pointer", "shape %dx%d from the host ignored", cd->width,
                cd->height);
        return -1;
    }
    n = (size_t)cd->width * (size_t)cd->height * 4;
    if ((in->rgba = malloc(n)) == NULL)
        return -1;
    got = ZSTD_decompress(in->rgba, n, cd->colors.data, cd->colors.len);
    if (ZSTD_isError(got) || got != n) {
        hd_info("pointer",
                "shape from the host does not decompress to %dx%d: ignored",
                cd->width, cd->height);
        free(in->rgba);
        return -1;
    }
    in->id = cd->id;
    in->w = cd->width;
    in->h = cd->height;
    in->hot_x = cd->hotx;
    in->hot_y = cd->hoty;
    hd_debug("pointer", "host pointer shape %llu: %dx%d",
             (unsigned long long)cd->id, cd->width, cd->height);
    return 0;
}

int ptr_post(struct ptr *p, const Hbb__Message *m)
{
    struct shape_in in = { 0 };
    int post;

    if (m->union_case == HBB__MESSAGE__UNION_CURSOR_DATA &&
        unpack(m->cursor_data, &in) != 0)
        return 0;
    pthread_mutex_lock(&p->mu);
    switch (m->union_case) {
    case HBB__MESSAGE__UNION_CURSOR_DATA:
        if (p->n_in == PTR_SHAPES) { /* the oldest would not be kept */
            free(p->in[0].rgba);
            memmove(p->in, p->in + 1, sizeof(p->in[0]) * (PTR_SHAPES - 1));
            p->n_in--;
        }
        p->in[p->n_in++] = in;
        p->want = in.id;
        p->have_want = 1;
        break;
    case HBB__MESSAGE__UNION_CURSOR_ID:
        p->want = m->cursor_id;
        p->have_want = 1;
        break;
    case HBB__MESSAGE__UNION_CURSOR_POSITION:
        p->pos_new = 1;
        p->pos_x = m->cursor_position->x;
        p->pos_y = m->cursor_position->y;
        break;
    default:
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    post = !p->posted;
    p->posted = 1;
    pthread_mutex_unlock(&p->mu);
    return post;
}

/* Window thread: in as an SDL cursor in the ring (in.rgba freed). */
static void make(struct ptr *p, struct shape_in *in)
{
    SDL_Surface *surf;
    SDL_Cursor *c = NULL;
    unsigned i;

    surf = SDL_CreateRGBSurfaceWithFormatFrom(
        in->rgba, in->w, in->h, 32, in->w * 4, SDL_PIXELFORMAT_RGBA32);
    if (surf != NULL) {
        c = SDL_CreateColorCursor(surf, in->hot_x, in->hot_y);
        SDL_FreeSurface(surf);
    }
    free(in->rgba);
    if (c == NULL) {
        hd_debug("pointer", "host pointer %dx%d not shown: %s", in->w, in->h,
                 SDL_GetError());
        return;
    }
    i = p->n_made++ % PTR_SHAPES;
    if (p->made[i].c != NULL) { /* SDL shows its default if it is ours */
        if (p->made[i].c == p->shown)
            p->shown = NULL;
        SDL_FreeCursor(p->made[i].c);
    }
    p->made[i].id = in->id;
    p->made[i].c = c;
}

void ptr_show(struct ptr *p, int on_window)
{
    struct shape_in in[PTR_SHAPES];
    int n, have;
    uint64_t want;
    unsigned i;

    if (!on_window)
        return; /* kept for the window (shown once it is open) */
    pthread_mutex_lock(&p->mu);
    n = p->n_in;
    memcpy(in, p->in, sizeof(in[0]) * (size_t)n);
    p->n_in = 0;
    want = p->want;
    have = p->have_want;
    p->have_want = 0;
    p->posted = 0;
    pthread_mutex_unlock(&p->mu);
    for (int k = 0; k < n; k++)
        make(p, &in[k]);
    for (i = 0; have && i < PTR_SHAPES; i++)
        if (p->made[i].c != NULL && p->made[i].id == want) {
            if (p->made[i].c != p->shown)
                SDL_SetCursor(p->made[i].c);
            p->shown = p->made[i].c;
            return;
        }
    if (have)
        hd_debug("pointer", "host pointer %llu unknown: not shown",
                 (unsigned long long)want);
}

void ptr_sent(struct ptr *p, int x, int y)
{
    unsigned i = p->n_sent++ % PTR_SENT;

    p->sent[i].x = x;
    p->sent[i].y = y;
    p->sent[i].ms = SDL_GetTicks();
}

int ptr_moved(struct ptr *p, int *x, int *y)
{
    unsigned n = p->n_sent < PTR_SENT ? p->n_sent : PTR_SENT;
    Uint32 now = SDL_GetTicks();
    int moved;

    pthread_mutex_lock(&p->mu);
    moved = p->pos_new;
    *x = p->pos_x;
    *y = p->pos_y;
    p->pos_new = 0;
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; moved && i < n; i++)
        if (p->sent[i].x == *x && p->sent[i].y == *y &&
            now - p->sent[i].ms < PTR_ECHO_MS)
            moved = 0; /* where we sent it: our own move */
    return moved;
}

void ptr_free(struct ptr *p)
{
    if (p == NULL)
        return;
    SDL_SetCursor(SDL_GetDefaultCursor());
    for (unsigned i = 0; i < PTR_SHAPES; i++)
        if (p->made[i].c != NULL)
            SDL_FreeCursor(p->made[i].c);
    for (int k = 0; k < p->n_in; k++)
        free(p->in[k].rgba);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/*
 * Unit tests for the viewer's picture helpers (client/picture.c): what
 * pic_diff reports as changed between two pictures (the area the window
 * redraws alone), and pic_rect_union (pictures the window skipped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/picture.h"
#include "tests/harness.h"

static struct pic *grey(int w, int h, int y)
{
    struct pic *p = pic_new(w, h, 1);

    HT_CHECK(p != NULL);
    if (p == NULL)
        return NULL;
    memset(p->plane[0], y, (size_t)w * h);
    memset(p->plane[1], 128, (size_t)p->stride[1] * ((h + 1) / 2));
    memset(p->plane[2], 128, (size_t)p->stride[2] * ((h + 1) / 2));
    return p;
}

static int rect_is(const struct pic_rect *r, int x, int y, int w, int h)
{
    if (r->x == x && r->y == y && r->w == w && r->h == h)
        return 1;
    printf("# rect %d,%d %dx%d, want %d,%d %dx%d\n", r->x, r->y, r->w, r->h, x,
           y, w, h);
    return 0;
}

/* The first picture is all new; an equal one is nothing; one changed
 * pixel (odd place) is its 2x2 cell; a chroma change covers its pixels;
 * last follows every picture, so a change back is seen again. */
static void test_diff(void)
{
    struct pic *last = NULL, *a = grey(64, 48, 50), *b = grey(64, 48, 50);
    struct pic *c = grey(64, 48, 50), *d = grey(64, 48, 50);

    if (a == NULL || b == NULL || c == NULL || d == NULL)
        goto out;
    HT_EQ_INT(pic_diff(&last, a), 0);
    HT_CHECK(rect_is(&a->dirty, 0, 0, 64, 48));
    HT_EQ_INT(pic_diff(&last, b), 0);
    HT_CHECK(b->dirty.w == 0 || b->dirty.h == 0);
    c->plane[0][13 * 64 + 7] = 200;
    HT_EQ_INT(pic_diff(&last, c), 0);
    HT_CHECK(rect_is(&c->dirty, 6, 12, 2, 2));
    d->plane[2][3 * 32 + 20] = 90; /* V at chroma 20,3: pixels 40..41, 6..7 */
    HT_EQ_INT(pic_diff(&last, d), 0);
    HT_CHECK(rect_is(&d->dirty, 6, 6, 36, 8)); /* and the pixel back */
out:
    pic_free(a);
    pic_free(b);
    pic_free(c);
    pic_free(d);
    pic_free(last);
}

/* Another size is all new. */
static void test_diff_resize(void)
{
    struct pic *last = NULL, *a = grey(64, 48, 50), *b = grey(32, 48, 50);

    if (a != NULL && b != NULL) {
        HT_EQ_INT(pic_diff(&last, a), 0);
        HT_EQ_INT(pic_diff(&last, b), 0);
        HT_CHECK(rect_is(&b->dirty, 0, 0, 32, 48));
    }
    pic_free(a);
    pic_free(b);
    pic_free(last);
}

static void test_union(void)
{
    struct pic_rect a = { 0, 0, 0, 0 }, b = { 10, 20, 4, 2 },
                    c = { 2, 30, 2, 2 };

    pic_rect_union(&a, &b);
    HT_CHECK(rect_is(&a, 10, 20, 4, 2));
    pic_rect_union(&a, &c);
    HT_CHECK(rect_is(&a, 2, 20, 12, 12));
    pic_rect_union(&a, &(struct pic_rect){ 0, 0, 0, 5 });
    HT_CHECK(rect_is(&a, 2, 20, 12, 12));
}

int main(void)
{
    ht_init("view-picture");
    HT_RUN(test_diff);
    HT_RUN(test_diff_resize);
    HT_RUN(test_union);
    return ht_finish();
}

/*
 * A decoded picture: 8-bit I420 (full-size Y, half-size U and V planes) or
 * I444 (three full-size planes) in one allocation.  The decode thread makes one
 * per decoded frame and hands it over whole; whoever holds it frees it
 * (pic_free).  Never shared: a picture belongs to one thread at a time.  Also:
 * PNG output and a pixel read-back (BT.601 limited range, as libvpx's default
 * colour space).
 */
#ifndef VIEW_PICTURE_H
#define VIEW_PICTURE_H

#include <stdint.h>

/* Largest picture accepted from a peer (8K). */
#define PIC_MAX_DIM 8192

struct pic_rect {
    int x, y, w, h; /* w or h 0: empty */
};

struct pic {
    int w, h;
    int cs;            /* chroma shift: 1 I420, 0 I444 */
    uint8_t *plane[3]; /* Y, U, V */
    int stride[3];
    uint64_t pts;       /* from the stream */
    uint64_t decode_us; /* time spent decoding this frame */
    /* where it differs from the picture handed over before it (even
     * coordinates; the whole picture for the first or a new size) */
    struct pic_rect dirty;
};

/*
 * A new picture of w x h (1..PIC_MAX_DIM), chroma shift cs (1: I420, 0:
 * I444), planes uninitialised.  Returns NULL for bad dimensions or no
 * memory.  Any thread.
 */
struct pic *pic_new(int w, int h, int cs);

/* Free; accepts NULL. */
void pic_free(struct pic *p);

/*
 * Compare p with last (the picture before it, kept by the caller; NULL or
 * another size or chroma: everything differs) and set p->dirty to the bounding
 * box of what differs, aligned out to even coordinates (2x2 chroma).  last is
 * then brought up to p (only the rows that differ are copied; a new one
 * is made when it was NULL or of another size: *last replaced, the old
 * one freed).  Returns 0 or -ENOMEM (p->dirty is then the whole picture
 * and *last NULL).
 */
int pic_diff(struct pic **last, struct pic *p);

/* a = the bounding box of a and b (either may be empty). */
void pic_rect_union(struct pic_rect *a, const struct pic_rect *b);

/* The RGB colour of pixel (x, y) (inside the picture) into rgb. */
void pic_rgb_at(const struct pic *p, int x, int y, uint8_t rgb[3]);

/*
 * Write p as an 8-bit RGB PNG (libpng) to path, through a temporary file
 * renamed into place.  Returns 0, or a negative errno / -EIO.
 */
int pic_write_png(const struct pic *p, const char *path);

#endif

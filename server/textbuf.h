/*
 * A bounded, growing text buffer for the bodies the admin port serves
 * (/metrics, /api/status): appends never write past max bytes; the first
 * failure sticks in err and every later append is a no-op, so a writer
 * checks once at the end.  JSON string escaping lives here too, so no
 * caller hand-escapes.  One thread (the loop thread); no locking.
 */
#ifndef HD_SERVER_TEXTBUF_H
#define HD_SERVER_TEXTBUF_H

#include <stddef.h>

#define TEXTBUF_MAX_DEFAULT (1024 * 1024)

/* Embedded object: textbuf_init / textbuf_cleanup. */
struct textbuf {
    char *buf;  /* the text so far, NUL-terminated when len > 0 */
    size_t len; /* never exceeds max */
    size_t cap;
    size_t max;
    int err; /* first error: HD_ETOOBIG, HD_ECONFIG (set by users), -ENOMEM */
};

/* Start empty; the text may grow to max bytes (0: TEXTBUF_MAX_DEFAULT). */
void textbuf_init(struct textbuf *t, size_t max);

/* Free the text; t may be initialised again. */
void textbuf_cleanup(struct textbuf *t);

/* Append n bytes / a C string / printf output.  No-op once t->err is set. */
void textbuf_put(struct textbuf *t, const char *s, size_t n);
void textbuf_puts(struct textbuf *t, const char *s);
void textbuf_printf(struct textbuf *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Append s as a JSON string, quotes included: '"', '\\' and control
 * characters escaped (\n, \t, ... or \u00XX); bytes of 0x80 and above
 * pass through (the callers hand over UTF-8 or ASCII).  NULL writes null.
 */
void textbuf_json_str(struct textbuf *t, const char *s);

#endif

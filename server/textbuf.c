/*
 * The bounded text buffer of textbuf.h: doubles its allocation as it
 * grows, never beyond max + 1 bytes (the NUL).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "server/textbuf.h"

void textbuf_init(struct textbuf *t, size_t max)
{
    memset(t, 0, sizeof(*t));
    t->max = max ? max : TEXTBUF_MAX_DEFAULT;
}

void textbuf_cleanup(struct textbuf *t)
{
    free(t->buf);
    memset(t, 0, sizeof(*t));
}

void textbuf_put(struct textbuf *t, const char *s, size_t n)
{
    if (t->err != 0)
        return;
    if (n > t->max - t->len) {
        t->err = HD_ETOOBIG;
        return;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        char *nb;

        while (cap < t->len + n + 1)
            cap *= 2;
        if ((nb = realloc(t->buf, cap)) == NULL) {
            t->err = -ENOMEM;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void textbuf_puts(struct textbuf *t, const char *s)
{
    textbuf_put(t, s, strlen(s));
}

void textbuf_printf(struct textbuf *t, const char *fmt, ...)
{
    char small[256], *big = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (t->err == 0)
            t->err = -EINVAL;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        textbuf_put(t, small, (size_t)n);
        return;
    }
    if ((big = malloc((size_t)n + 1)) == NULL) {
        if (t->err == 0)
            t->err = -ENOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    textbuf_put(t, big, (size_t)n);
    free(big);
}

void textbuf_json_str(struct textbuf *t, const char *s)
{
    const char *run;

    if (s == NULL) {
        textbuf_puts(t, "null");
        return;
    }
    textbuf_puts(t, "\"");
    for (run = s; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];

        if (c != '"' && c != '\\' && c >= 0x20 && c != 0x7f)
            continue;
        textbuf_put(t, run, (size_t)(s - run));
        run = s + 1;
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof(esc), "\\%c", c);
        else if (c == '\n')
            snprintf(esc, sizeof(esc), "\\n");
        else if (c == '\t')
            snprintf(esc, sizeof(esc), "\\t");
        else
            snprintf(esc, sizeof(esc), "\\u%04x", c);
        textbuf_puts(t, esc);
    }
    textbuf_put(t, run, (size_t)(s - run));
    textbuf_puts(t, "\"");
}

/*
 * The fake clipboard backend, for unit tests: a desktop that exists only
 * in memory.  clip_fake_copy() is a program on it copying text;
 * clip_fake_content() is what a paste on it would get.  Everything runs
 * on the loop thread.
 */
#include <stdlib.h>
#include <string.h>

#include "host/clipboard/clipboard.h"

struct fake {
    char *content; /* what the desktop pastes (NULL: nothing) */
};

static int fake_open(struct hclip *c, const struct clip_opts *opts)
{
    return 0;
}

static void fake_set(struct hclip *c, char *text, size_t n)
{
    struct fake *f = c->priv;

    free(f->content);
    f->content = text;
}

static void fake_close(struct hclip *c)
{
    struct fake *f = c->priv;

    free(f->content);
    f->content = NULL;
}

void clip_fake_copy(struct hclip *c, const char *text)
{
    struct fake *f = c->priv;
    char *p = strdup(text);

    if (p != NULL) {
        free(f->content);
        f->content = p;
    }
    clip_report(c, text, strlen(text));
}

const char *clip_fake_content(const struct hclip *c)
{
    const struct fake *f = c->priv;

    return f->content;
}

const struct clip_driver clip_driver_fake = {
    .name = "fake",
    .description = "an in-memory desktop (unit tests)",
    .priv_size = sizeof(struct fake),
    .open = fake_open,
    .set = fake_set,
    .close = fake_close,
};

/*
 * Unit tests for the clipboard framework (host/clipboard/) with its fake
 * backend: a copy on the desktop reaches on_text on the loop thread, a
 * viewer's paste becomes the desktop's content, no echo of either, text
 * above HD_CLIP_MAX is dropped, names pick backends (an unknown name is
 * refused, "auto" never picks the fake, x11 without a display does not
 * open).  The x11 backend itself runs against Xvfb in
 * tests/integration/test_host.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "clip.h"
#include "host/clipboard/clipboard.h"
#include "tests/harness.h"

#define T_MS 5000

static struct {
    int n;
    char text[64];
} got;

static void on_text(void *ud, const char *text, size_t n)
{
    got.n++;
    snprintf(got.text, sizeof(got.text), "%.*s", (int)n, text);
}

/* Run the loop until on_text has been called `want` times in all. */
static int wait_for(uv_loop_t *loop, int want)
{
    uint64_t end = uv_hrtime() / 1000000 + T_MS;

    while (got.n < want && uv_hrtime() / 1000000 < end)
        uv_run(loop, UV_RUN_ONCE);
    return got.n == want;
}

/* Nothing waits for the loop: what clip_report dropped never got queued. */
static int nothing_queued(struct hclip *c)
{
    int none;

    uv_mutex_lock(&c->mu);
    none = c->out == NULL;
    uv_mutex_unlock(&c->mu);
    return none;
}

static void test_copy_paste_no_echo(void)
{
    uv_loop_t loop;
    struct hclip *c = NULL;
    char *big;

    memset(&got, 0, sizeof(got));
    HT_EQ_INT(uv_loop_init(&loop), 0);
    HT_EQ_INT(clip_start(&loop, "fake", NULL, on_text, NULL, &c), 0);
    if (c == NULL)
        return;
    HT_EQ_STR(clip_name(c), "fake");

    clip_fake_copy(c, "from the desktop");
    HT_CHECK(wait_for(&loop, 1));
    HT_EQ_STR(got.text, "from the desktop");

    /* the same text again is no news */
    clip_fake_copy(c, "from the desktop");
    HT_CHECK(nothing_queued(c));

    /* a viewer pastes: the desktop has it, and does not echo it back */
    clip_set(c, "from a viewer", strlen("from a viewer"));
    HT_EQ_STR(clip_fake_content(c), "from a viewer");
    clip_fake_copy(c, "from a viewer");
    HT_CHECK(nothing_queued(c));

    /* too large: dropped; empty: dropped */
    big = malloc(HD_CLIP_MAX + 2);
    HT_CHECK(big != NULL);
    if (big != NULL) {
        memset(big, 'x', HD_CLIP_MAX + 1);
        big[HD_CLIP_MAX + 1] = '\0';
        clip_fake_copy(c, big);
        HT_CHECK(nothing_queued(c));
        free(big);
    }
    clip_fake_copy(c, "");
    HT_CHECK(nothing_queued(c));

    clip_fake_copy(c, "second");
    HT_CHECK(wait_for(&loop, 2));
    HT_EQ_STR(got.text, "second");

    clip_stop(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    HT_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_names(void)
{
    uv_loop_t loop;
    struct clip_opts none = { .display = NULL };
    struct hclip *c = (struct hclip *)&loop;
    const char *const *names = clip_list();

    HT_EQ_INT(uv_loop_init(&loop), 0);
    HT_EQ_STR(names[0], "wlr");
    HT_EQ_STR(names[1], "x11");
    HT_EQ_INT(clip_start(&loop, "nope", NULL, on_text, NULL, &c), -ENOENT);
    HT_CHECK(c == NULL);
    /* no X display to share: x11 does not open, auto skips the fake */
    HT_EQ_INT(clip_start(&loop, "x11", &none, on_text, NULL, &c), -ENODEV);
    /* nor wlr without a Wayland display */
    HT_EQ_INT(clip_start(&loop, "wlr", &none, on_text, NULL, &c), -ENODEV);
    HT_EQ_INT(clip_start(&loop, "auto", &none, on_text, NULL, &c), -ENODEV);
    HT_EQ_INT(clip_start(&loop, NULL, &none, on_text, NULL, &c), -ENODEV);
    HT_CHECK(c == NULL);
    clip_stop(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    HT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    ht_init("host_clipboard");
    HT_RUN(test_copy_paste_no_echo);
    HT_RUN(test_names);
    return ht_finish();
}

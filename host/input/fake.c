/*
 * Fake input for tests: records each call as a struct input_event (the
 * first INPUT_FAKE_MAX of them; later ones are dropped).
 */
#include <errno.h>
#include <stdlib.h>

#include "host/input/input.h"

struct fake_input {
    struct input_event *ev;
    size_t n, dropped;
};

static int record(struct input *in, struct input_event e)
{
    struct fake_input *f = in->priv;

    if (f->n == INPUT_FAKE_MAX) {
        f->dropped++;
        return 0;
    }
    f->ev[f->n++] = e;
    return 0;
}

static int fake_open(struct input *in, const struct input_opts *opts)
{
    struct fake_input *f = in->priv;

    f->ev = calloc(INPUT_FAKE_MAX, sizeof(*f->ev));
    return f->ev == NULL ? -ENOMEM : 0;
}

static void fake_close(struct input *in)
{
    struct fake_input *f = in->priv;

    free(f->ev);
    f->ev = NULL;
}

static int fake_move(struct input *in, int x, int y)
{
    return record(
        in, (struct input_event){ .type = INPUT_EV_MOVE, .x = x, .y = y });
}

static int fake_button(struct input *in, enum input_button b, int down)
{
    return record(in, (struct input_event){ .type = INPUT_EV_BUTTON,
                                            .button = (int)b,
                                            .down = down });
}

static int fake_wheel(struct input *in, int dx, int dy)
{
    return record(
        in, (struct input_event){ .type = INPUT_EV_WHEEL, .x = dx, .y = dy });
}

static int fake_key(struct input *in, uint32_t keysym, int down)
{
    return record(in, (struct input_event){ .type = INPUT_EV_KEY,
                                            .down = down,
                                            .keysym = keysym });
}

static int fake_code(struct input *in, unsigned code, int down)
{
    return record(in, (struct input_event){ .type = INPUT_EV_CODE,
                                            .down = down,
                                            .keysym = code });
}

const struct input_event *input_fake_events(struct input *in, size_t *n)
{
    struct fake_input *f;

    *n = 0;
    if (in->driver != &input_driver_fake)
        return NULL;
    f = in->priv;
    *n = f->n;
    return f->ev;
}

void input_fake_clear(struct input *in)
{
    struct fake_input *f = in->priv;

    if (in->driver == &input_driver_fake)
        f->n = 0;
}

const struct input_driver input_driver_fake = {
    .name = "fake",
    .description = "records events (tests)",
    .priv_size = sizeof(struct fake_input),
    .open = fake_open,
    .close = fake_close,
    .move = fake_move,
    .button = fake_button,
    .wheel = fake_wheel,
    .key = fake_key,
    .code = fake_code,
};

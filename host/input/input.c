/*
 * The input framework: picks a backend, checks every argument (they come
 * from the network), remembers held keys and buttons for
 * input_release_all().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/input/input.h"
#include "log.h"

static const struct input_driver *const drivers[] = {
#ifdef _WIN32
    &input_driver_sendinput,
#else
    &input_driver_xtest,
    &input_driver_wlr,
    &input_driver_remotedesktop,
#endif
    &input_driver_fake,
};
#define N_DRIVERS (sizeof(drivers) / sizeof(drivers[0]))

static int open_one(const struct input_driver *d, const struct input_opts *opts,
                    struct input **out)
{
    struct input *in;
    int r;

    in = calloc(1, sizeof(*in));
    if (in == NULL)
        return -ENOMEM;
    in->driver = d;
    if (d->priv_size > 0 && (in->priv = calloc(1, d->priv_size)) == NULL) {
        free(in);
        return -ENOMEM;
    }
    if ((r = d->open(in, opts)) != 0) {
        free(in->priv);
        free(in);
        return r;
    }
    *out = in;
    return 0;
}

int input_open(const char *name, const struct input_opts *opts,
               struct input **out)
{
    static const struct input_opts defaults;
    int autopick = name == NULL || name[0] == '\0' || !strcmp(name, "auto");
    size_t i;
    int r = -ENOENT;

    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    for (i = 0; i < N_DRIVERS; i++) {
        if (autopick) {
            if (drivers[i] == &input_driver_fake)
                continue;
            if ((r = open_one(drivers[i], opts, out)) == 0)
                return 0;
        } else if (strcmp(name, drivers[i]->name) == 0) {
            return open_one(drivers[i], opts, out);
        }
    }
    if (!autopick)
        hd_error("input", "unknown input backend '%s' (try %s)", name,
#ifdef _WIN32
                 "sendinput, fake"
#else
                 "xtest, wlr, remotedesktop, fake"
#endif
        );
    return r;
}

void input_close(struct input *in)
{
    if (in == NULL)
        return;
    input_release_all(in);
    in->driver->close(in);
    free(in->priv);
    free(in);
}

int input_move(struct input *in, int x, int y)
{
    if (x < 0 || y < 0 || x > INPUT_COORD_MAX || y > INPUT_COORD_MAX)
        return -EINVAL;
    return in->driver->move(in, x, y);
}

int input_button(struct input *in, enum input_button b, int down)
{
    unsigned bit;
    int r;

    if ((int)b < INPUT_BUTTON_LEFT || (int)b > INPUT_BUTTON_MAX)
        return -EINVAL;
    bit = 1u << b;
    if (!down && !(in->buttons & bit))
        return 0;
    if ((r = in->driver->button(in, b, down != 0)) != 0)
        return r;
    if (down)
        in->buttons |= bit;
    else
        in->buttons &= ~bit;
    return 0;
}

static int clamp_steps(int v)
{
    if (v > INPUT_WHEEL_MAX)
        return INPUT_WHEEL_MAX;
    if (v < -INPUT_WHEEL_MAX)
        return -INPUT_WHEEL_MAX;
    return v;
}

int input_wheel(struct input *in, int dx, int dy)
{
    dx = clamp_steps(dx);
    dy = clamp_steps(dy);
    if (dx == 0 && dy == 0)
        return 0;
    return in->driver->wheel(in, dx, dy);
}

static int find_held(const struct input *in, uint32_t keysym)
{
    int i;

    for (i = 0; i < in->n_held; i++)
        if (in->held[i] == keysym)
            return i;
    return -1;
}

/* A key by keysym, or by code (INPUT_HELD_CODE | code), held or let go. */
static int key_or_code(struct input *in, uint32_t k, int down)
{
    int i, r;

    i = find_held(in, k);
    if (!down && i < 0)
        return 0;
    if (down && i < 0 && in->n_held == INPUT_MAX_HELD)
        return -ENOSPC;
    r = k & INPUT_HELD_CODE
            ? in->driver->code(in, k & ~INPUT_HELD_CODE, down != 0)
            : in->driver->key(in, k, down != 0);
    if (r != 0)
        return r;
    if (down && i < 0) {
        in->held[in->n_held++] = k;
    } else if (!down) {
        memmove(&in->held[i], &in->held[i + 1],
                sizeof(in->held[0]) * (size_t)(in->n_held - i - 1));
        in->n_held--;
    }
    return 0;
}

int input_key(struct input *in, uint32_t keysym, int down)
{
    if (keysym == 0 || keysym > 0x1ffffff)
        return -EINVAL;
    return key_or_code(in, keysym, down);
}

int input_code(struct input *in, unsigned code, int down)
{
    if (code == 0 || code > INPUT_CODE_MAX)
        return -EINVAL;
    return key_or_code(in, INPUT_HELD_CODE | code, down);
}

int input_release_all(struct input *in)
{
    int b, r, first = 0;

    /* Last pressed first, as a person would let go. */
    while (in->n_held > 0) {
        r = key_or_code(in, in->held[in->n_held - 1], 0);
        if (r != 0) {
            if (first == 0)
                first = r;
            in->n_held--; /* give up on that key rather than loop */
        }
    }
    for (b = INPUT_BUTTON_LEFT; b <= INPUT_BUTTON_MAX; b++) {
        if (!(in->buttons & (1u << b)))
            continue;
        r = input_button(in, (enum input_button)b, 0);
        if (r != 0) {
            if (first == 0)
                first = r;
            in->buttons &= ~(1u << b);
        }
    }
    return first;
}

int input_keysym_to_keycode(struct input *in, uint32_t keysym, uint8_t *keycode,
                            int *shift)
{
    *keycode = 0;
    *shift = 0;
    if (keysym == 0 || keysym > 0x1ffffff)
        return -EINVAL;
    if (in->driver->keysym_to_keycode == NULL)
        return -ENOTSUP;
    return in->driver->keysym_to_keycode(in, keysym, keycode, shift);
}

const char *input_name(const struct input *in)
{
    return in->driver->name;
}

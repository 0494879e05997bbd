/*
 * Unit tests for host/inject (viewer MouseEvent/KeyEvent to input calls,
 * through the fake input backend that records them) and host/throttle
 * (per-IP login lockout).
 */
#include <errno.h>
#include <string.h>

#include "addr.h"
#include "host/inject.h"
#include "host/throttle.h"
#include "tests/harness.h"

static struct input *in;

static void mouse_events(void)
{
    Hbb__MouseEvent ev = HBB__MOUSE_EVENT__INIT;
    const struct input_event *e;
    size_t n;

    input_fake_clear(in);
    ev.mask = 0; /* move */
    ev.x = 100;
    ev.y = 50;
    HT_EQ_INT(inject_mouse(in, &ev), 0);
    ev.mask = 1 << 3 | 1; /* left down */
    HT_EQ_INT(inject_mouse(in, &ev), 0);
    ev.mask = 1 << 3 | 2; /* left up */
    HT_EQ_INT(inject_mouse(in, &ev), 0);
    ev.mask = 2 << 3 | 1; /* right down */
    HT_EQ_INT(inject_mouse(in, &ev), 0);
    ev.mask = 3; /* wheel up 2 */
    ev.x = 0;
    ev.y = 2;
    HT_EQ_INT(inject_mouse(in, &ev), 0);
    ev.mask = 0;
    ev.x = -5; /* from the network: refused, not asserted */
    HT_EQ_INT(inject_mouse(in, &ev), -EINVAL);
    e = input_fake_events(in, &n);
    HT_CHECK(n >= 6);
    if (n < 6)
        return;
    HT_EQ_INT(e[0].type, INPUT_EV_MOVE);
    HT_EQ_INT(e[0].x, 100);
    HT_EQ_INT(e[0].y, 50);
    HT_EQ_INT(e[2].type, INPUT_EV_BUTTON);
    HT_EQ_INT(e[2].button, INPUT_BUTTON_LEFT);
    HT_EQ_INT(e[2].down, 1);
    HT_EQ_INT(e[4].button, INPUT_BUTTON_LEFT);
    HT_EQ_INT(e[4].down, 0);
    HT_EQ_INT(e[6].button, INPUT_BUTTON_RIGHT);
    HT_EQ_INT(e[n - 1].type, INPUT_EV_WHEEL);
    HT_EQ_INT(e[n - 1].y, 2);
    input_release_all(in);
}

static void key_events(void)
{
    Hbb__KeyEvent ev = HBB__KEY_EVENT__INIT;
    Hbb__ControlKey mods[1] = { HBB__CONTROL_KEY__Control };
    const struct input_event *e;
    size_t n;

    input_fake_clear(in);
    /* Return pressed (down+up) */
    ev.union_case = HBB__KEY_EVENT__UNION_CONTROL_KEY;
    ev.control_key = HBB__CONTROL_KEY__Return;
    ev.press = 1;
    HT_EQ_INT(inject_key(in, &ev), 0);
    /* Ctrl+c as one press with a modifier */
    ev.union_case = HBB__KEY_EVENT__UNION_CHR;
    ev.chr = 'c';
    ev.n_modifiers = 1;
    ev.modifiers = mods;
    HT_EQ_INT(inject_key(in, &ev), 0);
    /* a non-Latin-1 character down */
    ev.union_case = HBB__KEY_EVENT__UNION_UNICODE;
    ev.unicode = 0x263a;
    ev.n_modifiers = 0;
    ev.press = 0;
    ev.down = 1;
    HT_EQ_INT(inject_key(in, &ev), 0);
    e = input_fake_events(in, &n);
    HT_EQ_INT(n, 7);
    if (n != 7)
        return;
    HT_EQ_INT(e[0].keysym, 0xff0d);
    HT_EQ_INT(e[0].down, 1);
    HT_EQ_INT(e[1].keysym, 0xff0d);
    HT_EQ_INT(e[1].down, 0);
    HT_EQ_INT(e[2].keysym, 0xffe3); /* Control_L down */
    HT_EQ_INT(e[3].keysym, 'c');
    HT_EQ_INT(e[4].keysym, 'c');
    HT_EQ_INT(e[4].down, 0);
    HT_EQ_INT(e[5].keysym, 0xffe3);
    HT_EQ_INT(e[5].down, 0);
    HT_EQ_INT(e[6].keysym, 0x0100263a);
    HT_EQ_INT(inject_char_keysym(0x1f), 0);
    HT_EQ_INT(inject_control_keysym(9999), 0);
    input_release_all(in);
}

/* Map mode: chr is the X keycode of the key's place (code + 8), pressed
 * by place; out-of-range keycodes are refused; a key left down is let go
 * by input_release_all. */
static void key_map_mode(void)
{
    Hbb__KeyEvent ev = HBB__KEY_EVENT__INIT;
    const struct input_event *e;
    size_t n;

    input_fake_clear(in);
    ev.mode = HBB__KEYBOARD_MODE__Map;
    ev.union_case = HBB__KEY_EVENT__UNION_CHR;
    ev.chr = 50; /* left Shift: KEY_LEFTSHIFT 42 */
    ev.down = 1;
    HT_EQ_INT(inject_key(in, &ev), 0);
    ev.chr = 29; /* KEY_Y 21: 'y' in us, 'z' in de */
    ev.down = 0;
    ev.press = 1;
    HT_EQ_INT(inject_key(in, &ev), 0);
    ev.chr = 8; /* below the first keycode */
    HT_EQ_INT(inject_key(in, &ev), -EINVAL);
    ev.chr = 256;
    HT_EQ_INT(inject_key(in, &ev), -EINVAL);
    HT_EQ_INT(input_release_all(in), 0);
    e = input_fake_events(in, &n);
    HT_EQ_INT(n, 4);
    if (n != 4)
        return;
    for (size_t i = 0; i < n; i++)
        HT_EQ_INT(e[i].type, INPUT_EV_CODE);
    HT_EQ_INT(e[0].keysym, 42);
    HT_EQ_INT(e[0].down, 1);
    HT_EQ_INT(e[1].keysym, 21);
    HT_EQ_INT(e[1].down, 1);
    HT_EQ_INT(e[2].keysym, 21);
    HT_EQ_INT(e[2].down, 0);
    HT_EQ_INT(e[3].keysym, 42); /* released by input_release_all */
    HT_EQ_INT(e[3].down, 0);
}

/* KeyEvent.seq: a typed string, character by character (press, release);
 * bad UTF-8 or a control character types nothing. */
static void key_seq(void)
{
    static const uint32_t want[] = {
        'H', 'i', ' ', 0xe9, 0x010020ac, 0x0101f600
    };
    Hbb__KeyEvent ev = HBB__KEY_EVENT__INIT;
    const struct input_event *e;
    char big[INJECT_SEQ_MAX + 2];
    size_t n;

    input_fake_clear(in);
    ev.union_case = HBB__KEY_EVENT__UNION_SEQ;
    ev.seq = "Hi \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"; /* é € U+1F600 */
    HT_EQ_INT(inject_key(in, &ev), 0);
    e = input_fake_events(in, &n);
    HT_EQ_INT(n, 2 * (sizeof(want) / sizeof(want[0])));
    for (size_t i = 0; i < n && i / 2 < sizeof(want) / sizeof(want[0]); i++) {
        HT_EQ_INT(e[i].type, INPUT_EV_KEY);
        HT_EQ_INT(e[i].keysym, want[i / 2]);
        HT_EQ_INT(e[i].down, i % 2 == 0);
    }
    input_fake_clear(in);
    ev.seq = "ok\xc3"; /* truncated */
    HT_EQ_INT(inject_key(in, &ev), -EINVAL);
    ev.seq = "\xed\xa0\x80"; /* a surrogate */
    HT_EQ_INT(inject_key(in, &ev), -EINVAL);
    ev.seq = "\xc0\xaf"; /* overlong */
    HT_EQ_INT(inject_key(in, &ev), -EINVAL);
    ev.seq = "a\x01"; /* control character */
    HT_EQ_INT(inject_key(in, &ev), -EINVAL);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ev.seq = big;
    HT_EQ_INT(inject_key(in, &ev), -EMSGSIZE);
    ev.seq = "";
    HT_EQ_INT(inject_key(in, &ev), 0);
    input_fake_events(in, &n);
    HT_EQ_INT(n, 0); /* nothing half typed */
    input_release_all(in);
}

static void throttle_lockout(void)
{
    static struct throttle t;
    struct sockaddr_storage a, b;
    uint64_t now = 1000000;

    throttle_init(&t);
    hd_addr_parse("192.0.2.1", 0, &a);
    hd_addr_parse("192.0.2.2", 0, &b);
    HT_EQ_INT(throttle_wait(&t, (struct sockaddr *)&a, now), 0);
    throttle_fail(&t, (struct sockaddr *)&a, now);
    throttle_fail(&t, (struct sockaddr *)&a, now);
    HT_EQ_INT(throttle_wait(&t, (struct sockaddr *)&a, now), 0);
    throttle_fail(&t, (struct sockaddr *)&a, now);
    HT_EQ_INT(throttle_wait(&t, (struct sockaddr *)&a, now), THROTTLE_BASE_MS);
    throttle_fail(&t, (struct sockaddr *)&a, now);
    HT_EQ_INT(throttle_wait(&t, (struct sockaddr *)&a, now),
              2 * THROTTLE_BASE_MS);
    HT_EQ_INT(throttle_wait(&t, (struct sockaddr *)&b, now), 0);
    HT_EQ_INT(
        throttle_wait(&t, (struct sockaddr *)&a, now + 2 * THROTTLE_BASE_MS),
        0);
    for (int i = 0; i < 40; i++)
        throttle_fail(&t, (struct sockaddr *)&a, now);
    HT_EQ_INT(throttle_wait(&t, (struct sockaddr *)&a, now), THROTTLE_MAX_MS);
    throttle_ok(&t, (struct sockaddr *)&a, now);
    HT_EQ_INT(throttle_wait(&t, (struct sockaddr *)&a, now), 0);
}

int main(void)
{
    struct input_opts o = { 0 };

    ht_init("host_inject");
    if (input_open("fake", &o, &in) != 0) {
        ht_fail(__FILE__, __LINE__, "fake input does not open");
        return ht_finish();
    }
    HT_RUN(mouse_events);
    HT_RUN(key_events);
    HT_RUN(key_seq);
    HT_RUN(key_map_mode);
    HT_RUN(throttle_lockout);
    input_close(in);
    return ht_finish();
}

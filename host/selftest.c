/*
 * homedesk-host --selftest (host/selftest.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "err.h"
#include "host/audio/audio.h"
#include "host/capture/capture.h"
#include "host/clipboard/clipboard.h"
#include "host/input/input.h"
#include "host/selftest.h"
#include "os.h"

#define GRAB_MS 3000

static int capture_part(const struct host_opts *o, const char *name,
                        const char *display)
{
    struct capture_opts co = { 0 };
    struct capture_frame f;
    struct capture *cap = NULL;
    uint64_t t0 = capture_now_us();
    const char *fb, *colon;
    int r;

    co.display = display;
    co.width = o->fake_width;
    co.height = o->fake_height;
    if ((r = capture_open(name, &co, &cap)) != 0) {
        printf("selftest: capture %s: FAILED to open: %s\n", name,
               hd_strerror(r));
        return r;
    }
    fb = capture_fallback(cap);
    if (fb[0] != '\0' && (colon = strchr(fb, ':')) != NULL)
        printf("selftest: capture %.*s: unavailable, fell back to %s: %s\n",
               (int)(colon - fb), fb, capture_name(cap), colon + 2);
    r = capture_grab(cap, &f, GRAB_MS);
    if (r == 1)
        printf("selftest: capture %s: ok, %dx%d, first frame in %llu ms\n",
               capture_name(cap), f.width, f.height,
               (unsigned long long)((capture_now_us() - t0) / 1000));
    else
        printf("selftest: capture %s: FAILED: no frame in %d ms (%s)\n",
               capture_name(cap), GRAB_MS, r < 0 ? hd_strerror(r) : "timeout");
    capture_close(cap);
    return r == 1 ? 0 : -EIO;
}

static int input_part(const char *name, const char *display)
{
    struct input_opts io = { 0 };
    struct input *in = NULL;
    int r;

    if (strcmp(name, "none") == 0) {
        printf("selftest: input none: off (--input none)\n");
        return 0;
    }
    io.display = display;
    if ((r = input_open(name, &io, &in)) != 0) {
        printf("selftest: input %s: FAILED to open: %s\n", name,
               hd_strerror(r));
        return r;
    }
    /* nothing is pressed: releasing all is harmless and goes through
     * the backend */
    r = input_release_all(in);
    printf("selftest: input %s: %s%s\n", input_name(in),
           r == 0 ? "ok" : "FAILED: ", r == 0 ? " (opened)" : hd_strerror(r));
    input_close(in);
    return r;
}

static void no_text(void *ud, const char *text, size_t n)
{
    (void)ud;
    (void)text;
    (void)n;
}

static void no_frame(void *ud, const uint8_t *opus, size_t n)
{
    (void)ud;
    (void)opus;
    (void)n;
}

static void clipboard_audio_part(const struct host_opts *o, const char *clip,
                                 const char *audio, const char *display)
{
    struct clip_opts co = { .display = display };
    struct hclip *c = NULL;
    struct audio *a = NULL;
    uv_loop_t loop;
    char why[512];
    int r;

    if (uv_loop_init(&loop) != 0)
        return;
    if (o->no_clipboard)
        printf("selftest: clipboard: off (--no-clipboard)\n");
    else if ((r = clip_start(&loop, clip, &co, no_text, NULL, &c)) != 0)
        printf("selftest: clipboard %s: FAILED: %s\n", clip, hd_strerror(r));
    else
        printf("selftest: clipboard %s: ok (watching for copies)\n",
               clip_name(c));
    clip_stop(c);
    if (o->no_audio)
        printf("selftest: audio: off (--no-audio)\n");
    else if ((r = audio_probe(audio, o->audio_source, why, sizeof(why))) != 0)
        printf("selftest: audio %s: FAILED: %s\n", audio, why);
    else if ((r = audio_start(&loop, audio, o->audio_source, no_frame, NULL,
                              &a)) != 0)
        printf("selftest: audio %s: FAILED: %s\n", audio, hd_strerror(r));
    else
        printf("selftest: audio %s: ok (%s)\n", audio, why);
    audio_stop(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static int config_part(const char *dir)
{
    char path[600];
    FILE *f;
    int r = 0;

    snprintf(path, sizeof(path), "%s" OS_SEP "selftest.tmp", dir);
    if ((f = fopen(path, "w")) == NULL || fputs("x\n", f) < 0)
        r = -errno;
    if (f != NULL && fclose(f) != 0 && r == 0)
        r = -errno;
    remove(path);
    printf("selftest: config %s: %s%s\n", dir,
           r == 0 ? "ok (writable)" : "FAILED: ", r == 0 ? "" : hd_strerror(r));
    return r;
}

static void no_connection(uv_stream_t *s, int status)
{
    (void)s;
    (void)status;
}

static int network_part(void)
{
    struct sockaddr_in a;
    uv_loop_t loop;
    uv_udp_t udp;
    uv_tcp_t tcp;
    int r;

    if ((r = uv_loop_init(&loop)) != 0)
        goto out;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_udp_init(&loop, &udp);
    uv_tcp_init(&loop, &tcp);
    if ((r = uv_udp_bind(&udp, (const struct sockaddr *)&a, 0)) == 0 &&
        (r = uv_tcp_bind(&tcp, (const struct sockaddr *)&a, 0)) == 0)
        r = uv_listen((uv_stream_t *)&tcp, 1, no_connection);
    uv_close((uv_handle_t *)&udp, NULL);
    uv_close((uv_handle_t *)&tcp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
out:
    printf("selftest: network: %s%s\n",
           r == 0 ? "ok (UDP and TCP on loopback)" : "FAILED: ",
           r == 0 ? "" : uv_strerror(r));
    return r;
}

int host_selftest(const struct host_opts *o, const char *capture,
                  const char *input, const char *clip, const char *audio,
                  const char *display, const char *dir)
{
    int bad = 0;

    printf("selftest: homedesk-host %s on %s\n", HD_VERSION, os_platform());
    bad |= config_part(dir) != 0;
    bad |= network_part() != 0;
    bad |= capture_part(o, capture, display) != 0;
    bad |= input_part(input, display) != 0;
    clipboard_audio_part(o, clip, audio, display);
    printf("selftest: %s\n", bad ? "FAILED (see above)" : "ok");
    fflush(stdout);
    return bad ? 1 : 0;
}

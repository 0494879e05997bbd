/*
 * homedesk-host: shares this machine's X11 desktop with homedesk and
 * RustDesk viewers.  Reads its options (command line, environment),
 * loads or creates its identity in the config directory, opens capture
 * and input, listens for direct connections, registers with the
 * rendezvous server, and runs the libuv loop until SIGINT/SIGTERM.
 *
 * stdout carries the lines meant for people and scripts ("id: N", the
 * one-time password, how to connect), flushed at once; logs go to stderr.
 * Exit status: 0 ok, 1 runtime error, 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "addr.h"
#include "config.h"
#include "crypto.h"
#include "err.h"
#include "host/audio/audio.h"
#include "host/clipboard/clipboard.h"
#ifndef _WIN32
#include "host/gnome/mutter.h"
#else
#define mutter_present() 0
#endif
#include "host/host.h"
#include "host/input/input.h"
#include "host/opts.h"
#include "host/punch.h"
#include "host/reg.h"
#include "host/selftest.h"
#include "host/session.h"
#include "nat/map.h"
#include "host/video.h"
#include "os.h"
#include "log.h"
#include "net.h"

#define PROG        "homedesk-host"
#define CONFIG_FILE "host-settings.conf"

struct main_state {
    struct host h;
    struct host_opts o;
    int reg_tcp_choice;
    uv_signal_t sigint, sigterm;
    int signals;
};

/* ---- shutdown ------------------------------------------------------------ */

static void on_listener_closed(uv_handle_t *hd)
{
}

/* The router's public port for our --listen port (common/nat/map.h),
 * advertised by reg.c; 0 when there is none. */
static void on_mapped(struct hd_nat_mapper *m, uint16_t port, void *ud)
{
    struct host *h = ud;

    (void)m;
    h->upnp_port = port;
}

static void stop(struct main_state *st, const char *why)
{
    struct host *h = &st->h;

    if (h->stopping)
        return;
    h->stopping = 1;
    hd_info("host", "stopping: %s", why);
    if (h->listen_port)
        hd_net_close((uv_handle_t *)&h->listener, on_listener_closed);
    session_close_all(h, "host stopping");
    reg_stop(h->reg);
    h->reg = NULL;
    hd_nat_map_stop(h->upnp);
    h->upnp = NULL;
    h->upnp_port = 0;
    video_stop(h->video);
    h->video = NULL;
    clip_stop(h->clip);
    h->clip = NULL;
    audio_stop(h->audio);
    h->audio = NULL;
    if (st->signals) {
        hd_net_close((uv_handle_t *)&st->sigint, NULL);
        hd_net_close((uv_handle_t *)&st->sigterm, NULL);
    }
}

static void on_signal(uv_signal_t *sig, int signum)
{
    stop(sig->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- direct connections ---------------------------------------------------
 */

static void on_refused_closed(uv_handle_t *hd)
{
    free(hd);
}

static void on_connection(uv_stream_t *lis, int status)
{
    struct host *h = lis->data;
    struct session *s;
    int r;

    if (status != 0) {
        hd_warn("host", "accept: %s", uv_strerror(status));
        return;
    }
    if ((r = session_new(h, SESSION_DIRECT, &s)) != 0) {
        uv_tcp_t *t = malloc(sizeof(*t));

        hd_warn("host", "connection refused: %s", hd_strerror(r));
        if (t != NULL) {
            uv_tcp_init(h->loop, t);
            if (uv_accept(lis, (uv_stream_t *)t) != 0)
                hd_debug("host", "accept failed");
            hd_net_close((uv_handle_t *)t, on_refused_closed);
        }
        return;
    }
    if ((r = uv_accept(lis, (uv_stream_t *)session_tcp(s))) != 0) {
        session_close(s, uv_strerror(r));
        return;
    }
    session_begin(s, NULL, 0);
}

static int listen_on(struct host *h, int port, int explicit)
{
    struct sockaddr_storage ss;
    int r, tries = 0;

again:
    hd_addr_parse(tries & 1 ? "0.0.0.0" : "::", (uint16_t)port, &ss);
    memset(&h->listener, 0, sizeof(h->listener));
    r = hd_net_listen_tcp(h->loop, &h->listener, (struct sockaddr *)&ss, 64,
                          on_connection);
    if (r == UV_EAFNOSUPPORT && !(tries & 1)) {
        /* no IPv6 here: plain IPv4; the failed handle closes first */
        uv_run(h->loop, UV_RUN_NOWAIT);
        tries |= 1;
        goto again;
    }
    if (r == UV_EADDRINUSE && !explicit && port != 0) {
        hd_info("host", "port %d is busy, using a free port", port);
        uv_run(h->loop, UV_RUN_NOWAIT);
        port = 0;
        goto again;
    }
    if (r != 0) {
        fprintf(stderr, PROG ": cannot listen on port %d: %s\n", port,
                uv_strerror(r));
        uv_run(h->loop, UV_RUN_NOWAIT);
        return r;
    }
    h->listener.data = h;
    hd_net_local_addr((uv_handle_t *)&h->listener, &ss);
    h->listen_port = (uint16_t)hd_net_port((struct sockaddr *)&ss);
    return 0;
}

/* ---- start-up helpers ---------------------------------------------------- */

static void on_video_frame(void *ud, const struct video_frame *f)
{
    session_broadcast_video(ud, f);
}

static void on_cursor(void *ud, const struct video_cursor *c, int shape)
{
    session_broadcast_cursor(ud, c, shape);
}

static void on_clip_text(void *ud, const char *text, size_t n)
{
    session_broadcast_clipboard(ud, text, n);
}

static void on_audio_frame(void *ud, const uint8_t *opus, size_t n)
{
    session_broadcast_audio(ud, opus, n);
}

/* First line of path, without the newline, into a sodium buffer. */
static int read_password_file(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    *out = NULL;
    if (f == NULL)
        return -errno;
    if ((buf = sodium_malloc(1024)) == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    if (fgets(buf, 1024, f) == NULL)
        buf[0] = '\0';
    fclose(f);
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static int setup_password(struct host *h, const struct host_opts *o)
{
    char *pw = NULL;
    int r;

    if (o->password_file != NULL) {
        if ((r = read_password_file(o->password_file, &pw)) != 0) {
            fprintf(stderr, PROG ": --password-file: %s: %s\n",
                    o->password_file, hd_strerror(r));
            return r;
        }
        if (pw[0] == '\0') {
            fprintf(stderr, PROG ": --password-file: %s is empty\n",
                    o->password_file);
            sodium_free(pw);
            return -EINVAL;
        }
    }
    if (pw != NULL || o->password != NULL) {
        const char *p = pw ? pw : o->password, *why;

        if (p[0] != '\0' && (why = ident_password_weak(p)) != NULL) {
            fprintf(stderr,
                    PROG
                    ": the permanent password is too weak (%s): choose "
                    "at least %d characters that are not a common password, "
                    "or leave it out and use the one-time password printed "
                    "at start\n",
                    why, IDENT_PW_MIN);
            if (pw)
                sodium_free(pw);
            return -EINVAL;
        }
        r = ident_set_password(&h->ident, p);
        if (pw)
            sodium_free(pw);
        if (r != 0)
            return r;
        hd_info("host", "permanent password set (stored salted and hashed)");
    }
    return 0;
}

/*
 * The X display the x11 capture and the xtest input use: --display, else
 * $DISPLAY (*disp NULL when neither backend needs one).  Without one, say
 * so and what to do.  Also sets vo->capture.  0 or -EINVAL.
 */
static int pick_display(const struct host_opts *o, struct video_opts *vo,
                        const char **disp, const char **input)
{
    const char *env = getenv("DISPLAY"), *wl = getenv("WAYLAND_DISPLAY");
    int wayland = wl != NULL && wl[0] && (o->display == NULL || !o->display[0]);

    memset(vo, 0, sizeof(*vo));
#ifdef _WIN32
    /* one desktop: the backends' own order of preference picks */
    vo->capture = host_capture_names[o->capture];
    *input = host_input_names[o->input];
    *disp = NULL;
    (void)env;
    (void)wayland;
    return 0;
#endif
    /* auto: a Wayland session is shared through mutter's screen cast on
     * GNOME, else the wlr backends (its DISPLAY, if any, is XWayland's,
     * which shows only X clients) */
    vo->capture = host_capture_names[o->capture];
    if (strcmp(vo->capture, "auto") == 0)
        vo->capture = !wayland ? "x11" : mutter_present() ? "pipewire" : "wlr";
    *input = host_input_names[o->input];
    if (strcmp(*input, "auto") == 0)
        *input = strcmp(vo->capture, "wlr") == 0        ? "wlr"
                 : strcmp(vo->capture, "pipewire") == 0 ? "remotedesktop"
                                                        : "xtest";
    if (strcmp(vo->capture, "wlr") == 0 || strcmp(*input, "wlr") == 0)
        hd_info("host", "sharing the Wayland display %s (wlr backends)",
                wl != NULL ? wl : "(WAYLAND_DISPLAY unset)");
    if (strcmp(vo->capture, "pipewire") == 0 ||
        strcmp(*input, "remotedesktop") == 0)
        hd_info("host",
                "sharing the GNOME desktop %s (mutter's screen cast "
                "and remote desktop)",
                wl != NULL ? wl : "(WAYLAND_DISPLAY unset)");
    *disp = o->display != NULL && o->display[0] ? o->display
            : env != NULL && env[0]             ? env
                                                : NULL;
    if (*disp == NULL &&
        (strcmp(vo->capture, "x11") == 0 || strcmp(*input, "xtest") == 0)) {
        fprintf(stderr, PROG ": no X display: DISPLAY is not set (name the "
                             "desktop to share with --display :0)\n");
        return -EINVAL;
    }
    return 0;
}

/* A backend on the X display did not open: name the display and what to
 * try (its own log line said why). */
static void display_failed(const char *what, const char *backend,
                           const char *disp, int r)
{
    const char *wl = getenv("WAYLAND_DISPLAY");

    if (r == -ENODEV && strcmp(backend, "wlr") == 0)
        fprintf(stderr,
                PROG ": %s %s: cannot use the Wayland display %s (the wlr "
                     "backends need a wlroots compositor such as sway; on "
                     "GNOME or KDE share XWayland with --display :N, or an "
                     "X session)\n",
                what, backend,
                wl != NULL && wl[0] ? wl : "(WAYLAND_DISPLAY unset)");
    else if (r == -ENODEV && disp != NULL)
        fprintf(stderr,
                PROG ": %s %s: cannot use X display %s (is an X server "
                     "running there, and may this user open it? pick "
                     "another with --display :N)\n",
                what, backend, disp);
    else
        fprintf(stderr, PROG ": %s %s: %s\n", what, backend, hd_strerror(r));
}

static void usage_help(void)
{
    struct main_state dummy;
    struct hd_opt t[OPTS_MAX];
    int dummy_tcp;

    memset(&dummy, 0, sizeof(dummy));
    host_opts_table(&dummy.o, &dummy_tcp, t);
    hd_config_print_help(t, PROG, "[OPTIONS]", stdout);
}

/* --help-man, --help, --version: print it and return 1; else 0. */
static int print_info(const struct host_opts *o, const struct hd_opt *table)
{
    if (o->help_man)
        hd_config_print_man(table, stdout);
    else if (o->help)
        usage_help();
    else if (o->version)
        printf(PROG " " HD_VERSION "\n");
    else
        return 0;
    return 1;
}

/* --config-dir, or the default one: 0, or a negative code after a
 * message. */
static int config_dir(const struct host_opts *o, char *dir, size_t cap)
{
    int r;

    if (o->config_dir != NULL) {
        snprintf(dir, cap, "%s", o->config_dir);
        return 0;
    }
    if ((r = os_config_dir(dir, cap)) != 0)
        fprintf(stderr,
                PROG ": no config directory (set --config-dir, or "
                     "HOME on Linux, APPDATA on Windows): %s\n",
                hd_strerror(r));
    return r;
}

/* The settings that main checks by hand (exclusive options, --server):
 * 0, or -EINVAL after one message (a usage error).  Fills host and port
 * (8 bytes) from --server. */
/* Whether s is a server key: base64 of a 32-byte Ed25519 public key. */
static int key_valid(const char *s)
{
    uint8_t pk[HD_SIGN_PK_BYTES];
    size_t len = 0;

    return hd_base64_decode(s, strlen(s), pk, sizeof(pk), &len) == 0 &&
           len == sizeof(pk);
}

static int check_settings(struct main_state *st, char *host, size_t host_cap,
                          char *port)
{
    struct host_opts *o = &st->o;

    if (o->password != NULL && o->password_file != NULL) {
        fprintf(stderr,
                PROG ": --password and --password-file are exclusive\n");
        return -EINVAL;
    }
    if (o->password == NULL && o->password_file == NULL &&
        getenv("HOMEDESK_PASSWORD") != NULL)
        hd_info("host", "HOMEDESK_PASSWORD is the viewer's and is ignored "
                        "here; the host reads HOMEDESK_HOST_PASSWORD");
    st->o.reg_tcp = st->reg_tcp_choice == 1   ? 1
                    : st->reg_tcp_choice == 2 ? -1
                                              : 0;
    if (o->server != NULL && o->server[0] &&
        reg_split_host_port(o->server, 21116, host, host_cap, port) != 0) {
        fprintf(stderr, PROG ": --server: bad address '%s'\n", o->server);
        return -EINVAL;
    }
    if (o->server != NULL && o->server[0] &&
        (atoi(port) <= 0 || atoi(port) > 65534)) {
        fprintf(stderr, PROG ": --server: bad port in '%s'\n", o->server);
        return -EINVAL;
    }
    if (o->key != NULL && o->key[0] && !key_valid(o->key)) {
        fprintf(stderr,
                PROG ": --key '%s' is not a server key: give the 44 "
                     "characters of the server's id_ed25519.pub\n",
                o->key);
        return -EINVAL;
    }
    return 0;
}

/* libsodium, the identity in dir and the passwords.  0, 1 when
 * --show-id printed the ID (nothing more to do), or -1 after a message. */
static int load_identity(struct host *h, const struct host_opts *o,
                         const char *dir)
{
    if (hd_crypto_init() != 0) {
        fprintf(stderr, PROG ": libsodium cannot initialise\n");
        return -1;
    }
    if (ident_load(&h->ident, dir) != 0) {
        fprintf(stderr, PROG ": cannot load the identity in %s\n", dir);
        return -1;
    }
    if (o->show_id) {
        printf("%s\n", h->ident.id);
        return 1;
    }
    if (setup_password(h, o) != 0)
        return -1;
    if (!o->no_otp && ident_new_otp(&h->ident) != 0)
        return -1;
    if (h->ident.perm == NULL && h->ident.otp == NULL) {
        /* on stdout too: it is the answer to "why can't I log in?" */
        printf("nobody can log in: no permanent password and no one-time "
               "password (set one with --password-file, or drop "
               "--no-one-time-password)\n");
        fflush(stdout);
        hd_warn("host", "no password set: nobody can log in");
    }
    return 0;
}

/* Input, capture and encoding, the clipboard and audio (the last two
 * optional: a failure is a log line).  0 or a negative code after a
 * message naming the backend and the display. */
static int start_media(struct host *h, struct video_opts *vo, const char *disp,
                       const char *input)
{
    const struct host_opts *o = h->o;
    struct input_opts io;
    struct clip_opts co;
    int r;

    if (strcmp(input, "none") != 0) {
        memset(&io, 0, sizeof(io));
        io.display = disp;
        if ((r = input_open(input, &io, &h->input)) != 0) {
            display_failed("input", input, disp, r);
            return r;
        }
    }
    vo->copts.display = disp;
    vo->copts.width = o->fake_width;
    vo->copts.height = o->fake_height;
    vo->copts.fake_interval_ms = o->fake_interval_ms;
    vo->copts.fake_frames = o->fake_frames;
    vo->fps = o->fps;
    vo->on_cursor = on_cursor;
    if ((r = video_start(h->loop, vo, on_video_frame, h, &h->video)) != 0) {
        display_failed("capture", vo->capture, disp, r);
        return r;
    }
    if (!video_has_encoder())
        hd_warn("host", "this build has no video encoder: no frames sent");
    /* the clipboard of the shared X display: with the x11 capture, or
     * another capture and an explicit --display; without a display the
     * sessions go on without a clipboard */
    co.display =
        strcmp(vo->capture, "x11") == 0 || o->display != NULL ? disp : NULL;
    /* and of the shared Wayland display, with the wlr capture */
    co.wayland_display =
        strcmp(vo->capture, "wlr") == 0 ||
                strcmp(host_clip_names[o->clipboard], "wlr") == 0
            ? getenv("WAYLAND_DISPLAY")
            : NULL;
    if (!o->no_clipboard)
        clip_start(h->loop, host_clip_names[o->clipboard], &co, on_clip_text, h,
                   &h->clip);
    if (!o->no_audio &&
        audio_start(h->loop, host_audio_names[o->audio], o->audio_source,
                    on_audio_frame, h, &h->audio) != 0)
        hd_warn("host", "no audio thread: sound off");
    return 0;
}

/* --selftest with the backends picked (host/selftest.h): the exit status */
static int selftest(const struct host_opts *o, const struct video_opts *vo,
                    const char *input, const char *disp, const char *dir)
{
    return host_selftest(o, vo->capture, input, host_clip_names[o->clipboard],
                         host_audio_names[o->audio], disp, dir);
}

/* Started: the log line, and on stdout what a user needs to connect. */
static void print_ready(const struct host *h, const char *dir)
{
    const struct host_opts *o = h->o;
    char fp[HD_FINGERPRINT_LEN];

    hd_info("host", "homedesk-host %s: ID %s, config %s, listening on port %u",
            HD_VERSION, h->ident.id, dir, (unsigned)h->listen_port);
    printf("id: %s\n", h->ident.id);
    /* what a viewer logs and shows (host_key=) on first contact */
    hd_key_fingerprint(h->ident.key.pk, fp);
    printf("key fingerprint: %s\n", fp);
    if (h->ident.otp)
        printf("one-time password: %s\n", h->ident.otp);
    printf("listening on port %u for direct connections\n",
           (unsigned)h->listen_port);
    if (h->server_host[0])
        printf("connect with: homedesk-viewer --server %s%s%s %s\n", o->server,
               o->key ? " --key " : "", o->key ? o->key : "", h->ident.id);
    else
        printf("connect with: homedesk-viewer --direct THIS-HOST:%u\n",
               (unsigned)h->listen_port);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static struct main_state st;
    struct host_opts *o = &st.o;
    struct host *h = &st.h;
    struct hd_config cfg = { 0 };
    struct hd_opt table[OPTS_MAX];
    char dir[512], conf[600], host[256], port[8];
    uv_loop_t loop;
    int r, status = 1, loop_init = 0;
    struct video_opts vo;
    const char *disp = NULL, *input = NULL;

    os_init(&argc, &argv);
    host_opts_table(o, &st.reg_tcp_choice, table);
    if (hd_config_init(&cfg, PROG, table) != 0 ||
        hd_config_parse_args(&cfg, argc, argv) != 0 ||
        hd_config_parse_env(&cfg) != 0) {
        hd_config_cleanup(&cfg);
        return 2;
    }
    /* copied: out of ps and /proc/PID/{cmdline,environ} now */
    hd_config_scrub_secret(argc, argv, "password", 0, "HOMEDESK_HOST_PASSWORD");
    if (print_info(o, table)) {
        hd_config_cleanup(&cfg);
        return 0;
    }
    if (cfg.nargs > 0) {
        fprintf(stderr, PROG ": unexpected argument '%s' (try --help)\n",
                cfg.args[0]);
        goto usage;
    }
    if (config_dir(o, dir, sizeof(dir)) != 0)
        goto out;
    snprintf(conf, sizeof(conf), "%s/" CONFIG_FILE, dir);
    /* the settings file (every long option name is a key) */
    if (hd_config_parse_file(&cfg, conf, false) != 0)
        goto usage;
    if (o->relay != NULL && o->relay[0] == '\0')
        o->relay = NULL;
    if (hd_log_configure(o->log_level, o->verbose) != 0) {
        fprintf(stderr, PROG ": --log-level: unknown level '%s'\n",
                o->log_level);
        goto usage;
    }
    if (o->log_file != NULL && (r = hd_log_open_file(o->log_file)) != 0) {
        fprintf(stderr, PROG ": --log-file %s: %s\n", o->log_file,
                hd_strerror(r));
        hd_config_cleanup(&cfg);
        return 1;
    }
    if (check_settings(&st, host, sizeof(host), port) != 0)
        goto usage;
    if ((r = load_identity(h, o, dir)) != 0) {
        status = r > 0 ? 0 : 1; /* --show-id: done */
        goto out;
    }
    if ((r = pick_display(o, &vo, &disp, &input)) != 0 || o->selftest) {
        status = r != 0 ? 2 : selftest(o, &vo, input, disp, dir);
        goto out;
    }

    if (punch_raise_fd_limit() < 0)
        hd_debug("host", "cannot raise the open-file limit");
    if ((r = uv_loop_init(&loop)) != 0)
        goto out;
    loop_init = 1;
    h->loop = &loop;
    h->o = o;
    throttle_init(&h->throttle);
    if (o->server != NULL && o->server[0]) {
        snprintf(h->server_host, sizeof(h->server_host), "%s", host);
        h->server_port = (uint16_t)atoi(port);
        if (o->key == NULL || o->key[0] == '\0')
            hd_warn("host", "no --key: relayed sessions will be refused by "
                            "a relay that checks the key, and the server's "
                            "requests cannot be authenticated");
    }
    if ((r = start_media(h, &vo, disp, input)) != 0)
        goto out;
    if (listen_on(h, o->listen_port,
                  hd_config_source(&cfg, OPT_LISTEN) != HD_CONFIG_DEFAULT) !=
        0) {
        stop(&st, "start-up failed");
        uv_run(&loop, UV_RUN_DEFAULT);
        goto out;
    }
    if (h->server_host[0] && reg_start(h, &h->reg) != 0)
        goto out;
    if (h->server_host[0] && !o->no_upnp && h->listen_port != 0 &&
        hd_nat_map_start(h->loop, h->listen_port, h->server_host, NULL,
                         on_mapped, h, &h->upnp) != 0)
        hd_warn("upnp", "no port mapping: out of memory");
    uv_signal_init(&loop, &st.sigint);
    uv_signal_init(&loop, &st.sigterm);
    st.sigint.data = st.sigterm.data = &st;
    st.signals = 1;
    uv_signal_start(&st.sigint, on_signal, SIGINT);
    uv_signal_start(&st.sigterm, on_signal, SIGTERM);

    print_ready(h, dir);
    uv_run(&loop, UV_RUN_DEFAULT);
    status = 0;
out:
    if (loop_init) {
        if (!h->stopping)
            stop(&st, "exit");
        uv_run(&loop, UV_RUN_DEFAULT);
        input_close(h->input);
        if (uv_loop_close(&loop) != 0)
            hd_debug("host", "loop closed with handles left");
    }
    ident_cleanup(&h->ident);
    free(h->cursor_colors);
    hd_config_cleanup(&cfg);
    return status;
usage:
    hd_config_cleanup(&cfg);
    return 2;
}

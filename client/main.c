/*
 * homedesk-viewer: connect to a homedesk (or RustDesk) host by ID through
 * a rendezvous server, or directly by address, and show its screen.
 *
 * Threads: main runs SDL (or, with --headless, waits for the frames); the
 * session thread runs the libuv loop (session.h); the decode thread runs
 * libvpx (decode.h).
 *
 * Without a host ID or --direct (and with a display), the connect window
 * (connect.h) asks for the host and password, and comes back after each
 * session.
 *
 * Exit status: 0 ok (the user quit; --headless: N frames decoded), 1 a
 * runtime failure (wrong password, host offline, ...: one line on
 * stderr), 2 a usage error.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client/audio.h"
#include "client/connect.h"
#include "client/decode.h"
#include "client/drop.h"
#include "client/keys.h"
#include "client/known_hosts.h"
#include "client/picture.h"
#include "client/opts.h"
#include "client/session.h"
#include "client/window.h"
#include "config.h"
#include "crypto.h"
#include "err.h"
#include "log.h"

#define PROG         "homedesk-viewer"
#define PASSWORD_MAX 256
#define CONFIG_FILE  "viewer.conf"

/* --headless: the decode thread's pictures and the session's end. */
struct headless {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pic *last;
    int want, frames, ended, status, done;
    char msg[320];
    uint64_t first_ms, last_ms;
};

/* Both modes: where callbacks go. */
struct viewer {
    struct view_opts o;
    struct headless hl;
    struct win *win;
    struct vaudio *audio;
    struct drop *drop; /* files dropped on the window (drop.h) */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- password --------------------------------------------------------------
 */

static void chomp(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* Read the password into pw (sodium_malloc'd, PASSWORD_MAX bytes). */
static int read_password(const struct view_opts *o, char *pw)
{
    struct termios old, quiet;
    const char *env;
    FILE *f;
    int tty;

    pw[0] = '\0';
    if (o->password_file != NULL) {
        if ((f = fopen(o->password_file, "r")) == NULL) {
            fprintf(stderr, PROG ": --password-file: %s: %s\n",
                    o->password_file, strerror(errno));
            return -1;
        }
        if (fgets(pw, PASSWORD_MAX, f) == NULL)
            pw[0] = '\0';
        fclose(f);
        chomp(pw);
        return 0;
    }
    if ((env = getenv("HOMEDESK_PASSWORD")) != NULL && env[0] != '\0') {
        if (strlen(env) >= PASSWORD_MAX) {
            fprintf(stderr, PROG ": HOMEDESK_PASSWORD: too long\n");
            return -1;
        }
        strcpy(pw, env);
        return 0;
    }
    if ((f = fopen("/dev/tty", "r+")) == NULL) {
        fprintf(stderr, PROG ": no password: use --password-file or "
                             "HOMEDESK_PASSWORD (no terminal to ask on)\n");
        return -1;
    }
    tty = fileno(f);
    fputs("Password: ", f);
    fflush(f);
    tcgetattr(tty, &old);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tcsetattr(tty, TCSAFLUSH, &quiet);
    if (fgets(pw, PASSWORD_MAX, f) == NULL)
        pw[0] = '\0';
    tcsetattr(tty, TCSAFLUSH, &old);
    fclose(f);
    chomp(pw);
    return 0;
}

/* ---- callbacks -------------------------------------------------------------
 */

static void on_picture(struct pic *p, void *ud)
{
    struct viewer *v = ud;
    struct headless *h = &v->hl;

    if (v->win != NULL) {
        win_post_picture(v->win, p);
        return;
    }
    pthread_mutex_lock(&h->mu);
    /* exactly --frames: a picture decoded between the last one counted
     * and the main thread waking up is not ours */
    if (h->done || h->frames >= h->want) {
        pthread_mutex_unlock(&h->mu);
        pic_free(p);
        return;
    }
    pic_free(h->last);
    h->last = p;
    h->frames++;
    h->last_ms = mono_ms();
    if (h->frames == 1)
        h->first_ms = h->last_ms;
    if (h->frames >= h->want)
        pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void on_ready(int w, int h, void *ud)
{
    struct viewer *v = ud;

    if (v->win != NULL)
        win_post_ready(v->win, w, h);
}

static void on_clipboard(const char *text, size_t n, void *ud)
{
    struct viewer *v = ud;

    if (v->win != NULL)
        win_post_clipboard(v->win, text, n);
}

static void on_cursor(const Hbb__Message *m, void *ud)
{
    struct viewer *v = ud;

    if (v->win != NULL)
        win_post_cursor(v->win, m);
}

static void on_audio(const uint8_t *opus, size_t n, void *ud)
{
    struct viewer *v = ud;

    vaudio_play(v->audio, opus, n);
}

static void on_end(int status, const char *msg, void *ud)
{
    struct viewer *v = ud;
    struct headless *h = &v->hl;

    if (v->win != NULL) {
        win_post_end(v->win, status, msg);
        return;
    }
    pthread_mutex_lock(&h->mu);
    h->ended = 1;
    h->status = status;
    snprintf(h->msg, sizeof(h->msg), "%s", msg ? msg : "");
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* ---- file transfer ----------------------------------------------------- */

/*
 * Wait for the transfer (the session prints its summary).  SIGINT and
 * SIGTERM are blocked in every thread (main blocked them before starting
 * any) and taken here: the session then ends the transfer cleanly, so no
 * part file is left behind.
 */
static int run_xfer(struct viewer *v, struct sess *s, const sigset_t *sigs)
{
    struct headless *h = &v->hl;
    struct timespec tick = { 0, 100 * 1000000L };
    int status, ended = 0, stopped = 0;

    while (!ended) {
        pthread_mutex_lock(&h->mu);
        ended = h->ended;
        pthread_mutex_unlock(&h->mu);
        if (!ended && sigtimedwait(sigs, NULL, &tick) > 0 && !stopped) {
            fprintf(stderr, PROG ": interrupted\n");
            sess_stop(s);
            stopped = 1;
        }
    }
    pthread_mutex_lock(&h->mu);
    status = stopped ? 130 : h->status;
    pthread_mutex_unlock(&h->mu);
    sess_stop(s);
    if (status != 0 && !stopped)
        fprintf(stderr, PROG ": %s\n", h->msg[0] ? h->msg : "failed");
    return status;
}

/* ---- headless ---------------------------------------------------------- */

static int run_headless(struct viewer *v, struct sess *s, struct dec *d)
{
    struct headless *h = &v->hl;
    struct pic *last;
    struct sess_stats st;
    struct dec_stats ds;
    char path[4096];
    double secs, fps, kbps;
    int r, frames;

    struct timespec deadline;
    int timed_out = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += v->o.timeout_s;
    pthread_mutex_lock(&h->mu);
    while (h->frames < h->want && !h->ended && !timed_out)
        timed_out =
            pthread_cond_timedwait(&h->cv, &h->mu, &deadline) == ETIMEDOUT;
    frames = h->frames;
    last = h->last; /* ours now: the decode thread may still run */
    h->last = NULL;
    h->done = 1;
    pthread_mutex_unlock(&h->mu);
    sess_stop(s);
    if (frames < h->want) {
        /* the session thread is done with h->msg once ended is set */
        if (timed_out)
            fprintf(stderr,
                    PROG ": only %d of %d frames in %d s (a still screen "
                         "sends few frames: ask for fewer with --frames)\n",
                    frames, h->want, v->o.timeout_s);
        else if (h->msg[0])
            fprintf(stderr, PROG ": %s\n", h->msg);
        else
            fprintf(stderr, PROG ": the session ended after %d of %d frames\n",
                    frames, h->want);
        pic_free(last);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/frame.png", v->o.out);
    r = pic_write_png(last, path);
    pic_free(last);
    if (r != 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, hd_strerror(r));
        return 1;
    }
    sess_get_stats(s, &st);
    dec_get_stats(d, &ds);
    secs = (double)(h->last_ms - h->first_ms) / 1000.0;
    fps = secs > 0 ? (frames - 1) / secs : 0;
    kbps = secs > 0 ? (double)st.video_bytes * 8.0 / 1000.0 / secs : 0;
    printf("stats: frames=%d fps=%.1f kbps=%.0f rtt_ms=%u decode_ms=%.2f "
           "path=%s connect_ms=%.0f enc=%s host_key=%s\n",
           frames, fps, kbps, st.rtt_ms, ds.decode_ms,
           rv_path_name((enum rv_path)(st.path < 0 ? 0 : st.path)),
           st.connect_ms, st.legacy ? "legacy" : "split",
           st.host_fp[0] ? st.host_fp : "-");
    fflush(stdout);
    return 0;
}

static int usage_error(const char *msg)
{
    fprintf(stderr, PROG ": %s (try --help)\n", msg);
    return 2;
}

/* ---- main -------------------------------------------------------------- */

static int config_dir_default(char *buf, size_t cap)
{
    const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    struct passwd *pw;

    if (x != NULL && x[0] == '/')
        return snprintf(buf, cap, "%s/homedesk", x) < (int)cap ? 0 : -1;
    if ((home == NULL || home[0] == '\0') && (pw = getpwuid(getuid())) != NULL)
        home = pw->pw_dir;
    if (home == NULL)
        return -1;
    return snprintf(buf, cap, "%s/.config/homedesk", home) < (int)cap ? 0 : -1;
}

/* A window can be shown: an X or Wayland display is named, or SDL is told
 * to use a driver of the caller's choice (tests: offscreen). */
static bool have_display(void)
{
    static const char *const vars[] = { "DISPLAY", "WAYLAND_DISPLAY",
                                        "SDL_VIDEODRIVER" };

    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);

        if (v != NULL && v[0] != '\0')
            return true;
    }
    return false;
}

/* --out: made if missing (one level, as mkdir), and writable, before a
 * session is started for nothing.  0 or a negative errno. */
static int out_dir_ready(const char *path)
{
    struct stat st;

    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -errno;
    if (stat(path, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (access(path, W_OK | X_OK) != 0)
        return -errno;
    return 0;
}

/* --direct HOST (no port) means the host's default port, 21120; the
 * result, "HOST:PORT" or "[V6]:PORT", is also the known_hosts name. */
static int direct_default_port(const char *in, char *out, size_t cap)
{
    const char *colon = strchr(in, ':');
    int n;

    if (in[0] == '[')
        n = strstr(in, "]:") != NULL
                ? snprintf(out, cap, "%s", in)
                : snprintf(out, cap, "%s:%u", in, RV_DIRECT_PORT);
    else if (colon == NULL)
        n = snprintf(out, cap, "%s:%u", in, RV_DIRECT_PORT);
    else if (strchr(colon + 1, ':') != NULL) /* a bare IPv6 address */
        n = snprintf(out, cap, "[%s]:%u", in, RV_DIRECT_PORT);
    else
        n = snprintf(out, cap, "%s", in);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* A path meant for the host that starts with this machine's home was most
 * likely a "~/..." the local shell expanded: say how to mean the host's. */
static void remote_path_note(const char *opt, const char *path)
{
    const char *home = getenv("HOME");
    size_t n = home != NULL ? strlen(home) : 0;

    if (path == NULL || n < 2 || strncmp(path, home, n) != 0 ||
        (path[n] != '/' && path[n] != '\0'))
        return;
    fprintf(stderr,
            PROG ": note: %s %s is this machine's home (did the shell expand "
                 "~?); for the host user's home, quote it: %s '~%s'\n",
            opt, path, opt, path + n);
}

/* win_keys_help()'s lines ("  KEYS   what they do") as roff paragraphs,
 * for the man page (--help-man). */
static void keys_man(FILE *f)
{
    const char *p = win_keys_help();

    while (*p != '\0') {
        size_t len = strcspn(p, "\n"), lead = strspn(p, " ");
        char line[256], *gap;

        snprintf(line, sizeof(line), "%.*s", (int)(len - lead), p + lead);
        p += len + (p[len] == '\n');
        if ((gap = strstr(line, "  ")) == NULL)
            continue;
        *gap = '\0';
        gap += strspn(gap + 1, " ") + 1;
        hd_config_man_text(f, ".TP\n\\fB", line, true, "\\fR\n");
        hd_config_man_text(f, "", gap, false, "\n");
    }
}

/* ---- window mode --------------------------------------------------------- */

/* The session's window (and sound) for a session about to start. */
static int window_open(struct viewer *v, struct win_opts *wo)
{
    if (win_new(wo, &v->win) != 0) {
        fprintf(stderr, PROG ": cannot open a window (no display?); "
                             "--headless works without one\n");
        return -1;
    }
    /* without a sound device the host is asked to keep its sound */
    if (!v->o.no_audio && vaudio_open(&v->audio) != 0)
        v->audio = NULL;
    return 0;
}

static int session_start(struct viewer *v, struct sess_config *sc,
                         const struct sess_cb *scb, struct dec **d,
                         struct sess **s)
{
    int r;

    sc->no_audio = v->audio == NULL;
    if ((r = dec_new(on_picture, v, d)) != 0 ||
        (r = sess_new(sc, *d, scb, v, s)) != 0 || (r = sess_start(*s)) != 0) {
        fprintf(stderr, PROG ": cannot start: %s\n", hd_strerror(r));
        return -1;
    }
    return 0;
}

/*
 * No host on the command line: the connect window, then a session with
 * the host it names, then the window again (with the session's outcome)
 * until the user closes it.  Returns the exit status.
 */
static int run_connect_window(struct viewer *v, struct sess_config *sc,
                              const struct sess_cb *scb, struct win_opts *wo,
                              const char *dir)
{
    struct cw *c = NULL;
    struct cw_choice ch;
    struct sess *s = NULL;
    struct dec *d = NULL;
    char direct[300];
    int r, status = 1;

    if (cw_new(dir, v->o.server, v->o.key, &c) != 0) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    while ((r = cw_run(c, &ch)) == CW_CONNECT) {
        sc->id = ch.id;
        sc->direct = NULL;
        if (ch.direct != NULL &&
            direct_default_port(ch.direct, direct, sizeof(direct)) == 0)
            sc->direct = direct;
        sc->server = ch.server;
        sc->key_b64 = ch.key;
        sc->password = ch.password;
        sc->salted = ch.salted;
        wo->title = ch.title;
        wo->on_open = cw_close;
        wo->open_ud = c;
        wo->drop = drop_new(sc, v->o.drop_to, &v->drop) == 0 ? v->drop : NULL;
        status = 1;
        if (window_open(v, wo) == 0 && session_start(v, sc, scb, &d, &s) == 0)
            status = win_run(v->win, s, d);
        cw_done(c, s, status, v->win != NULL ? win_end_message(v->win) : NULL);
        sess_free(s);
        s = NULL;
        vaudio_close(v->audio);
        v->audio = NULL;
        dec_free(d);
        d = NULL;
        win_free(v->win);
        v->win = NULL;
        drop_free(v->drop);
        v->drop = NULL;
    }
    if (r < 0) /* no display: as before the window, a usage error */
        status = usage_error("cannot open the connect window (no display?): "
                             "give a host ID or --direct HOST:PORT");
    else
        status = 0;
    cw_free(c);
    return status;
}

static const struct sess_cb viewer_cb = { .on_ready = on_ready,
                                          .on_end = on_end,
                                          .on_clipboard = on_clipboard,
                                          .on_audio = on_audio,
                                          .on_cursor = on_cursor };

/*
 * The options from the command line, the environment and viewer.conf in
 * dir; --help, --help-man, --version answered; the log set up.  Returns
 * -1 to go on, else the exit status.
 */
static int setup(struct viewer *v, struct hd_config *cfg,
                 const struct hd_opt *opts, int argc, char **argv, char *dir,
                 size_t dir_cap)
{
    struct view_opts *o = &v->o;
    char conf[4200];
    int r;

    if ((r = hd_config_init(cfg, PROG, opts)) != 0 ||
        (r = hd_config_parse_args(cfg, argc, argv)) != 0 ||
        (r = hd_config_parse_env(cfg)) != 0)
        return 2;
    if (o->help_man) {
        hd_config_print_man(opts, stdout);
        printf(".SH KEYS IN THE WINDOW\n");
        keys_man(stdout);
        return 0;
    }
    if (o->help) {
        hd_config_print_help(
            opts, PROG,
            "[OPTIONS] ID   or   --direct HOST[:PORT]   (neither: the "
            "connect window)",
            stdout);
        printf("\nKeys in the window:\n%s", win_keys_help());
        return 0;
    }
    if (o->version) {
        printf(PROG " " HD_VERSION "\n");
        return 0;
    }
    if (o->config_dir != NULL)
        snprintf(dir, dir_cap, "%s", o->config_dir);
    else if (config_dir_default(dir, dir_cap) != 0)
        return usage_error("no configuration directory: set --config-dir");
    snprintf(conf, sizeof(conf), "%s/" CONFIG_FILE, dir);
    if (hd_config_parse_file(cfg, conf, false) != 0)
        return 2;
    if (hd_log_configure(o->log_level, o->verbose) != 0)
        return usage_error("--log-level: unknown level");
    if (o->log_file != NULL && (r = hd_log_open_file(o->log_file)) != 0) {
        fprintf(stderr, PROG ": --log-file %s: %s\n", o->log_file,
                hd_strerror(r));
        return 1;
    }
    return -1;
}

/*
 * What to reach: *id (by ID), direct (--direct with its default port), or
 * *gui (neither: the connect window), and the options that go with it.
 * Returns -1 to go on, else the exit status.
 */
static int check_target(struct viewer *v, const struct hd_config *cfg,
                        const char **id, bool *gui, char *direct,
                        size_t direct_cap)
{
    struct view_opts *o = &v->o;
    uint8_t keybuf[64];
    size_t keylen;
    int r;

    /* no host and nothing that needs one: the connect window */
    *gui = cfg->nargs == 0 && o->direct == NULL && !o->headless &&
           o->ls == NULL && o->get == NULL && o->put == NULL;
    if (cfg->nargs > 1 || (!*gui && (cfg->nargs == 1) == (o->direct != NULL)))
        return usage_error(cfg->nargs > 1 ? "one host ID at most"
                                          : "give a host ID or --direct "
                                            "HOST[:PORT]");
    if (cfg->nargs == 1)
        *id = cfg->args[0];
    if (*id != NULL && (o->server == NULL || o->server[0] == '\0'))
        return usage_error("connecting by ID needs --server HOST[:PORT]");
    if (o->key != NULL && o->key[0] != '\0' &&
        (hd_base64_decode(o->key, strlen(o->key), keybuf, sizeof(keybuf),
                          &keylen) != 0 ||
         keylen != HD_SIGN_PK_BYTES))
        return usage_error("--key: not a base64 Ed25519 public key (44 "
                           "characters, as in id_ed25519.pub)");
    if (*id != NULL && (o->key == NULL || o->key[0] == '\0'))
        return usage_error("connecting by ID needs --key (the server's "
                           "public key) to verify the host");
    if (o->headless && o->out == NULL)
        return usage_error("--headless needs --out DIR");
    if (o->headless && (r = out_dir_ready(o->out)) != 0) {
        fprintf(stderr,
                PROG ": --out %s: %s (give a directory you can "
                     "write to)\n",
                o->out, hd_strerror(r));
        return 1;
    }
    if (o->direct != NULL &&
        direct_default_port(o->direct, direct, direct_cap) != 0)
        return usage_error("--direct: address too long");
    return -1;
}

/* The session's settings from the options (pw, kh, name: ours, kept
 * alive as long as sc). */
static void session_config(const struct view_opts *o, struct sess_config *sc,
                           const char *id, const char *direct, const char *kh,
                           char *pw, const char *name)
{
    sc->server = o->server;
    sc->key_b64 = o->key;
    sc->id = id;
    sc->direct = o->direct != NULL ? direct : NULL;
    sc->known_hosts = kh;
    sc->password = pw;
    sc->my_id = "";
    sc->my_name = name;
    sc->force_relay = o->force_relay;
    sc->relay = o->relay != NULL && o->relay[0] ? o->relay : NULL;
    sc->allow_plain_server = o->allow_plain_server;
    sc->no_udp = o->no_udp;
    sc->no_tcp = o->no_tcp;
    sc->answer_ms = o->answer_ms;
}

/*
 * --ls, --get, --put: into xo and sc (no window then; SIGINT and SIGTERM
 * blocked in xsigs, for run_xfer).  Returns -1 to go on, else the exit
 * status.
 */
static int xfer_setup(struct view_opts *o, struct sess_config *sc,
                      struct vxfer_opts *xo, sigset_t *xsigs)
{
    if ((o->ls != NULL) + (o->get != NULL) + (o->put != NULL) > 1)
        return usage_error("one of --ls, --get and --put at a time");
    if (o->put != NULL && o->to == NULL)
        return usage_error("--put needs --to DIR (on the host)");
    xo->mode = o->ls ? VXFER_LS : o->get ? VXFER_GET : o->put ? VXFER_PUT : 0;
    xo->path = o->ls ? o->ls : o->get ? o->get : o->put;
    xo->to = o->to;
    remote_path_note(o->put != NULL ? "--to"
                     : o->get       ? "--get"
                                    : "--ls",
                     o->put != NULL ? o->to : xo->path);
    if (xo->mode != 0) {
        sc->xfer = xo;
        o->headless = 1; /* no window, no frames to wait for */
        sigemptyset(xsigs);
        sigaddset(xsigs, SIGINT);
        sigaddset(xsigs, SIGTERM);
        pthread_sigmask(SIG_BLOCK, xsigs, NULL); /* threads inherit it */
    }
    return -1;
}

int main(int argc, char **argv)
{
    static struct hd_opt opts[VIEW_OPTS_MAX];
    struct viewer v = { 0 };
    struct view_opts *o = &v.o;
    struct hd_config cfg = { 0 };
    struct sess_config sc = { 0 };
    struct win_opts wo = { 0 };
    struct vxfer_opts xo = { 0 };
    sigset_t xsigs;
    struct sess *s = NULL;
    struct dec *d = NULL;
    char dir[4096], kh[4200], name[256], host[128], direct[300];
    char *pw = NULL;
    const char *id = NULL;
    int status = 1;
    bool gui;

    pthread_mutex_init(&v.hl.mu, NULL);
    pthread_cond_init(&v.hl.cv, NULL);
    view_opts_table(o, opts);
    if ((status = setup(&v, &cfg, opts, argc, argv, dir, sizeof(dir))) >= 0 ||
        (status = check_target(&v, &cfg, &id, &gui, direct, sizeof(direct))) >=
            0)
        goto out;
    status = 1;
    snprintf(kh, sizeof(kh), "%s/" KH_FILE, dir);
    if (hd_crypto_init() != 0) {
        fprintf(stderr, PROG ": libsodium cannot start\n");
        goto out;
    }
    if ((pw = sodium_malloc(PASSWORD_MAX)) == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    if (!gui && read_password(o, pw) != 0)
        goto out;
    /* copied: out of /proc/PID/environ now */
    hd_config_scrub_secret(0, NULL, "", 0, "HOMEDESK_PASSWORD");

    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "?");
    host[sizeof(host) - 1] = '\0';
    snprintf(name, sizeof(name), "%s@%s",
             getenv("USER") ? getenv("USER") : "viewer", host);
    session_config(o, &sc, id, direct, kh, pw, name);
    if ((status = xfer_setup(o, &sc, &xo, &xsigs)) >= 0)
        goto out;
    status = 1;
    /* headless: no clipboard to share (and the host keeps its own) */
    sc.no_clipboard = o->no_clipboard || o->headless;
    v.hl.want = o->frames;

    if (!o->headless && !have_display()) {
        /* SDL would fall back to an off-screen driver and run a session
         * nobody can see */
        fprintf(stderr,
                PROG ": no display: neither DISPLAY nor WAYLAND_DISPLAY is "
                     "set (use --headless, or set DISPLAY)\n");
        goto out;
    }
    wo.title = id ? id : direct;
    wo.fullscreen = o->fullscreen;
    wo.overlay = !o->no_overlay;
    wo.clipboard = !o->no_clipboard;
    wo.keyboard = o->keyboard;
    if (gui) {
        status = run_connect_window(&v, &sc, &viewer_cb, &wo, dir);
        goto out;
    }
    if (!o->headless && drop_new(&sc, o->drop_to, &v.drop) == 0)
        wo.drop = v.drop;
    if (!o->headless && window_open(&v, &wo) != 0)
        goto out;
    if (session_start(&v, &sc, &viewer_cb, &d, &s) != 0)
        goto out;
    if (sc.xfer != NULL) {
        status = run_xfer(&v, s, &xsigs);
    } else if (o->headless) {
        status = run_headless(&v, s, d);
    } else {
        status = win_run(v.win, s, d);
        if (status != 0 && win_end_message(v.win) != NULL)
            fprintf(stderr, PROG ": %s\n", win_end_message(v.win));
    }
out:
    sess_free(s);
    drop_free(v.drop);
    vaudio_close(v.audio);
    dec_free(d);
    win_free(v.win);
    pic_free(v.hl.last);
    if (pw != NULL)
        sodium_free(pw); /* sodium_free wipes it */
    hd_config_cleanup(&cfg);
    pthread_mutex_destroy(&v.hl.mu);
    pthread_cond_destroy(&v.hl.cv);
    return status;
}

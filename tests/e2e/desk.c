/*
 * End-to-end test support.  See desk.h.
 */
#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>

#include <xcb/xfixes.h>

#include "tests/e2e/desk.h"
#include "tests/harness.h"
#include "tests/image.h"

/* ---- screens --------------------------------------------------------------
 */

int desk_screen_open(struct desk_screen *s)
{
    xcb_screen_t *scr;
    int r;

    memset(s, 0, sizeof(*s));
    if ((r = xvfb_start(&s->x)) != 0)
        return r;
    s->c = xcb_connect(s->x.display, NULL);
    if (xcb_connection_has_error(s->c)) {
        xcb_disconnect(s->c);
        s->c = NULL;
        xvfb_stop(&s->x);
        return -EIO;
    }
    scr = xcb_setup_roots_iterator(xcb_get_setup(s->c)).data;
    s->root = scr->root;
    return 0;
}

void desk_screen_close(struct desk_screen *s)
{
    if (s->c != NULL)
        xcb_disconnect(s->c);
    s->c = NULL;
    xvfb_stop(&s->x);
}

int desk_grab(struct desk_screen *s, struct desk_rect r, uint8_t *rgb)
{
    xcb_get_image_reply_t *img;
    const uint8_t *p;
    int n;

    img = xcb_get_image_reply(s->c,
                              xcb_get_image(s->c, XCB_IMAGE_FORMAT_Z_PIXMAP,
                                            s->root, (int16_t)r.x, (int16_t)r.y,
                                            (uint16_t)r.w, (uint16_t)r.h, ~0u),
                              NULL);
    if (img == NULL)
        return -1;
    /* Xvfb's 24-bit screen: 32 bits per pixel, B G R X in memory */
    if (img->depth != 24 || xcb_get_image_data_length(img) < r.w * r.h * 4 ||
        xcb_get_setup(s->c)->image_byte_order != XCB_IMAGE_ORDER_LSB_FIRST) {
        free(img);
        return -1;
    }
    p = xcb_get_image_data(img);
    for (n = 0; n < r.w * r.h; n++) {
        rgb[n * 3] = p[n * 4 + 2];
        rgb[n * 3 + 1] = p[n * 4 + 1];
        rgb[n * 3 + 2] = p[n * 4];
    }
    free(img);
    return 0;
}

int desk_changed_box(const uint8_t *a, const uint8_t *b, int w, int h,
                     struct desk_rect *box)
{
    int x0 = w, y0 = h, x1 = -1, y1 = -1;

    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (memcmp(a + ((size_t)y * w + x) * 3, b + ((size_t)y * w + x) * 3,
                       3) != 0) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
    if (x1 < 0)
        return 0;
    *box = (struct desk_rect){ x0, y0, x1 - x0 + 1, y1 - y0 + 1 };
    return 1;
}

int desk_shows_change(const uint8_t *a0, const uint8_t *a1, const uint8_t *b,
                      int w, int h, double min_psnr, double *psnr)
{
    struct desk_rect r;
    double to_new, to_old;

    if (psnr != NULL)
        *psnr = 0;
    if (!desk_changed_box(a0, a1, w, h, &r))
        return 0;
    to_new = image_mse(a1, w, r.x, r.y, b, w, r.x, r.y, r.w, r.h);
    to_old = image_mse(a0, w, r.x, r.y, b, w, r.x, r.y, r.w, r.h);
    if (psnr != NULL)
        *psnr = image_mse_psnr(to_new);
    return to_new * 4 < to_old && image_mse_psnr(to_new) >= min_psnr;
}

static int window_name_is(struct desk_screen *s, xcb_window_t w,
                          const char *prefix)
{
    xcb_get_property_reply_t *p;
    int ok = 0, len;

    p = xcb_get_property_reply(s->c,
                               xcb_get_property(s->c, 0, w, XCB_ATOM_WM_NAME,
                                                XCB_GET_PROPERTY_TYPE_ANY, 0,
                                                256),
                               NULL);
    if (p == NULL)
        return 0;
    len = xcb_get_property_value_length(p);
    ok = len >= (int)strlen(prefix) &&
         memcmp(xcb_get_property_value(p), prefix, strlen(prefix)) == 0;
    free(p);
    return ok;
}

int desk_cursor(struct desk_screen *s, struct desk_cursor *c)
{
    /* a connection of its own: XFixes is set up on it first thing */
    xcb_connection_t *x = xcb_connect(s->x.display, NULL);
    xcb_xfixes_query_version_reply_t *v;
    xcb_xfixes_get_cursor_image_reply_t *r = NULL;
    int ok;

    if (!xcb_connection_has_error(x)) {
        v = xcb_xfixes_query_version_reply(x, xcb_xfixes_query_version(x, 4, 0),
                                           NULL);
        free(v);
        r = xcb_xfixes_get_cursor_image_reply(x, xcb_xfixes_get_cursor_image(x),
                                              NULL);
    }
    ok = r != NULL && r->width * r->height <= 64 * 64 &&
         xcb_xfixes_get_cursor_image_cursor_image_length(r) >=
             r->width * r->height;
    if (ok) {
        c->w = r->width;
        c->h = r->height;
        c->xhot = r->xhot;
        c->yhot = r->yhot;
        memcpy(c->argb, xcb_xfixes_get_cursor_image_cursor_image(r),
               (size_t)c->w * c->h * 4);
    }
    free(r);
    xcb_disconnect(x);
    return ok ? 0 : -1;
}

int desk_pointer(struct desk_screen *s, int *x, int *y)
{
    xcb_query_pointer_reply_t *p;

    p = xcb_query_pointer_reply(s->c, xcb_query_pointer(s->c, s->root), NULL);
    if (p == NULL)
        return -1;
    *x = p->root_x;
    *y = p->root_y;
    free(p);
    return 0;
}

int desk_find_window(struct desk_screen *s, const char *prefix,
                     xcb_window_t *win, struct desk_rect *geo)
{
    xcb_query_tree_reply_t *t;
    xcb_window_t *kids;
    int n, found = -1;

    *win = 0;
    t = xcb_query_tree_reply(s->c, xcb_query_tree(s->c, s->root), NULL);
    if (t == NULL)
        return -1;
    kids = xcb_query_tree_children(t);
    n = xcb_query_tree_children_length(t);
    for (int i = 0; i < n && found != 0; i++) {
        xcb_get_window_attributes_reply_t *a;
        xcb_get_geometry_reply_t *g;
        int mapped;

        a = xcb_get_window_attributes_reply(
            s->c, xcb_get_window_attributes(s->c, kids[i]), NULL);
        mapped = a != NULL && a->map_state == XCB_MAP_STATE_VIEWABLE;
        free(a);
        if (!mapped || !window_name_is(s, kids[i], prefix))
            continue;
        g = xcb_get_geometry_reply(s->c, xcb_get_geometry(s->c, kids[i]), NULL);
        if (g == NULL)
            continue;
        *geo = (struct desk_rect){ g->x, g->y, g->width, g->height };
        *win = kids[i];
        free(g);
        found = 0;
    }
    free(t);
    return found;
}

int desk_vsh(const char *env, const char *fmt, va_list ap)
{
    char cmd[2048];
    int n, st;

    n = snprintf(cmd, sizeof(cmd), "%s ", env);
    vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
    fflush(stdout);
    st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

int desk_sh(struct desk_screen *s, const char *fmt, ...)
{
    char env[64];
    va_list ap;
    int r;

    snprintf(env, sizeof(env), "DISPLAY=%s", s ? s->x.display : "$DISPLAY");
    va_start(ap, fmt);
    r = desk_vsh(env, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- processes -------------------------------------------------------------
 */

/* Opened (and emptied) by the parent before the fork: a caller that looks
 * for a line in the file right after desk_spawn must not find the one a
 * previous program of the same name wrote there (the child may not have
 * run yet on a loaded machine: bench_peers' second host was once reached
 * at the first one's port). */
static int open_out(const char *path)
{
    return open(path ? path : "/dev/null",
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

pid_t desk_spawn(const char *const *argv, const char *const *env,
                 const char *out, const char *err)
{
    int fo = open_out(out), fe = open_out(err);
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid != 0) {
        if (fo >= 0)
            close(fo);
        if (fe >= 0)
            close(fe);
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int i = 0; env && env[i]; i++)
        putenv((char *)env[i]);
    if (fo >= 0)
        dup2(fo, STDOUT_FILENO);
    if (fe >= 0)
        dup2(fe, STDERR_FILENO);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

int desk_stop(pid_t pid, int ms)
{
    int st;

    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    if ((st = wait_exit(pid, ms)) != -1)
        return st;
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

double desk_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (desk_slurp(path, buf, sizeof(buf)) <= 0 ||
        (p = strrchr(buf, ')')) == NULL)
        return -1;
    /* after ") ": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

ssize_t desk_slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ssize_t n, got = 0;

    buf[0] = '\0';
    if (fd < 0)
        return -1;
    while ((size_t)got < cap - 1 &&
           (n = read(fd, buf + got, cap - 1 - (size_t)got)) > 0)
        got += n;
    buf[got] = '\0';
    close(fd);
    return got;
}

void desk_dump(const char *title, const char *path)
{
    char cmd[600];

    printf("# %s (%s):\n", title, path);
    fflush(stdout);
    snprintf(cmd, sizeof(cmd), "tail -n 25 '%s' | sed 's/^/#   /'", path);
    if (system(cmd) != 0)
        printf("#   (unreadable)\n");
}

/* ---- homedesk programs -----------------------------------------------------
 */

int desk_host_start(struct desk_host *h, const char *dir, const struct srv *s,
                    struct desk_screen *a, const char *pw,
                    const char *const *extra)
{
    return desk_host_start_cmd(h, dir, s, a, pw, extra, NULL);
}

int desk_host_start_cmd(struct desk_host *h, const char *dir,
                        const struct srv *s, struct desk_screen *a,
                        const char *pw, const char *const *extra,
                        const struct desk_host_cmd *cmd)
{
    char prog[512], server[64], buf[4096], cfg[340], *p;
    const char *argv[48];
    int n = 0, wait_ms = cmd != NULL && cmd->wait_ms > 0 ? cmd->wait_ms : 10000;

    memset(h, 0, sizeof(*h));
    snprintf(h->dir, sizeof(h->dir), "%s/host", dir);
    snprintf(h->out, sizeof(h->out), "%s/host.out", dir);
    snprintf(h->log, sizeof(h->log), "%s/host.log", dir);
    snprintf(server, sizeof(server), "127.0.0.1:%u", s->port);
    for (int i = 0; cmd != NULL && cmd->argv[i] != NULL && n < 8; i++)
        argv[n++] = cmd->argv[i];
    if (cmd == NULL)
        argv[n++] = prog_path("homedesk-host", prog, sizeof(prog));
    argv[n++] = "--server";
    argv[n++] = server;
    argv[n++] = "--key";
    argv[n++] = s->pk_b64;
    argv[n++] = "--password";
    argv[n++] = pw;
    argv[n++] = "--no-one-time-password";
    if (a != NULL) {
        argv[n++] = "--display";
        argv[n++] = a->x.display;
    }
    argv[n++] = "--listen";
    argv[n++] = "0";
    snprintf(cfg, sizeof(cfg), "%s%s",
             cmd != NULL && cmd->dir_prefix ? cmd->dir_prefix : "", h->dir);
    argv[n++] = "--config-dir";
    argv[n++] = cfg;
    argv[n++] = "--register-interval-ms=500";
    for (int i = 0; extra && extra[i] && n < 46; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    h->pid = desk_spawn(argv, cmd != NULL ? cmd->env : NULL, h->out, h->log);
    if (h->pid < 0 || !file_has(h->out, "id: ", wait_ms) ||
        desk_slurp(h->out, buf, sizeof(buf)) <= 0 ||
        (p = strstr(buf, "id: ")) == NULL)
        return -1;
    snprintf(h->id, sizeof(h->id), "%.*s", (int)strspn(p + 4, "0123456789"),
             p + 4);
    if (file_has(h->out, "listening on port ", 5000) &&
        desk_slurp(h->out, buf, sizeof(buf)) > 0 &&
        (p = strstr(buf, "listening on port ")) != NULL)
        h->port = (uint16_t)atoi(p + strlen("listening on port "));
    return file_has(h->log, "registered ID", wait_ms) ? 0 : -1;
}

void desk_host_stop(struct desk_host *h)
{
    if (h->pid > 0)
        desk_stop(h->pid, 5000);
    h->pid = 0;
}

int desk_viewer_start(struct desk_viewer *v, const char *dir, const char *name,
                      const struct srv *s, struct desk_screen *b,
                      const char *pw, const char *id, const char *const *extra)
{
    char envdisp[64];
    const char *wenv[] = { envdisp, "SDL_VIDEODRIVER=x11", NULL };

    if (b != NULL)
        snprintf(envdisp, sizeof(envdisp), "DISPLAY=%s", b->x.display);
    return desk_viewer_start_env(v, dir, name, s, b != NULL ? wenv : NULL, pw,
                                 id, extra);
}

int desk_viewer_start_env(struct desk_viewer *v, const char *dir,
                          const char *name, const struct srv *s,
                          const char *const *wenv, const char *pw,
                          const char *id, const char *const *extra)
{
    char prog[512], server[64], cfg[330], envpw[200];
    const char *argv[40], *env[12];
    int n = 0, e = 0;

    memset(v, 0, sizeof(*v));
    v->status = -1;
    snprintf(v->dir, sizeof(v->dir), "%s", dir);
    snprintf(v->out, sizeof(v->out), "%s/%s.out", dir, name);
    snprintf(v->err, sizeof(v->err), "%s/%s.err", dir, name);
    snprintf(cfg, sizeof(cfg), "%s/%s.cfg", dir, name);
    snprintf(server, sizeof(server), "127.0.0.1:%u", s->port);
    snprintf(envpw, sizeof(envpw), "HOMEDESK_PASSWORD=%s", pw);
    env[e++] = envpw;
    argv[n++] = prog_path("homedesk-viewer", prog, sizeof(prog));
    argv[n++] = "--server";
    argv[n++] = server;
    argv[n++] = "--key";
    argv[n++] = s->pk_b64;
    argv[n++] = "--config-dir";
    argv[n++] = cfg;
    if (wenv != NULL) {
        for (int i = 0; wenv[i] != NULL && e < 11; i++)
            env[e++] = wenv[i];
        argv[n++] = "--no-overlay";
    } else {
        argv[n++] = "--headless";
        argv[n++] = "--out";
        argv[n++] = dir;
    }
    env[e] = NULL;
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    if (id != NULL)
        argv[n++] = id;
    argv[n] = NULL;
    v->pid = desk_spawn(argv, env, v->out, v->err);
    return v->pid > 0 ? 0 : -1;
}

int desk_share(struct desk_host *h, struct desk_viewer *v, const char *dir,
               const struct srv *s, struct desk_screen *a,
               struct desk_screen *b, const char *pw)
{
    return desk_share_in(h, v, dir, s, a, NULL, b, pw, NULL, 10000);
}

int desk_share_in(struct desk_host *h, struct desk_viewer *v, const char *dir,
                  const struct srv *s, struct desk_screen *a,
                  const char *const *env, struct desk_screen *b, const char *pw,
                  const char *const *extra, int show_ms)
{
    for (int i = 0; env != NULL && env[i] != NULL; i++)
        putenv((char *)env[i]);
    if (desk_host_start(h, dir, s, a, pw, extra) != 0) {
        printf("# homedesk-host did not start\n");
        desk_dump("host log", h->log);
        return -1;
    }
    if (desk_viewer_start(v, dir, "viewer", s, b, pw, h->id, NULL) != 0 ||
        desk_viewer_shows(v, h->log, show_ms) != 0)
        return -1;
    return 0;
}

int desk_viewer_wait(struct desk_viewer *v, int ms)
{
    if (v->status == -1 && v->pid > 0 &&
        (v->status = wait_exit(v->pid, ms)) != -1)
        v->pid = 0;
    return v->status;
}

int desk_viewer_stop(struct desk_viewer *v)
{
    if (v->pid > 0) {
        v->status = desk_stop(v->pid, 5000);
        v->pid = 0;
    }
    return v->status;
}

int desk_viewer_shows(struct desk_viewer *v, const char *host_log, int ms)
{
    if (v->pid > 0 && file_has(v->err, "first frame shown", ms))
        return 0;
    printf("# the viewer showed no frame\n");
    desk_viewer_dump(v);
    desk_dump("host log", host_log);
    return -1;
}

long desk_viewer_dropped_ms(const struct desk_viewer *v)
{
    char buf[65536], *p;

    desk_slurp(v->err, buf, sizeof(buf));
    if ((p = strstr(buf, " ms dropped)")) == NULL)
        return -1;
    while (p > buf && p[-1] >= '0' && p[-1] <= '9')
        p--;
    return atol(p);
}

void desk_viewer_dump(const struct desk_viewer *v)
{
    printf("# viewer status %d\n", v->status);
    desk_dump("viewer stdout", v->out);
    desk_dump("viewer stderr", v->err);
}

pid_t desk_card_start(struct desk_screen *a, struct desk_rect r,
                      const char *record, uint32_t root_rgb, const char *dir)
{
    char prog[512], xs[4][16], root[16], disp[64], out[330], err[330];
    const char *argv[10], *env[2];
    pid_t pid;

    snprintf(xs[0], sizeof(xs[0]), "%d", r.x);
    snprintf(xs[1], sizeof(xs[1]), "%d", r.y);
    snprintf(xs[2], sizeof(xs[2]), "%d", r.w);
    snprintf(xs[3], sizeof(xs[3]), "%d", r.h);
    snprintf(root, sizeof(root), "%06x", root_rgb);
    snprintf(disp, sizeof(disp), "DISPLAY=%s", a->x.display);
    snprintf(out, sizeof(out), "%s/card.out", dir);
    snprintf(err, sizeof(err), "%s/card.err", dir);
    argv[0] = prog_path("tests/e2e/hd-testcard", prog, sizeof(prog));
    argv[1] = xs[0];
    argv[2] = xs[1];
    argv[3] = xs[2];
    argv[4] = xs[3];
    argv[5] = record;
    argv[6] = "--root";
    argv[7] = root;
    argv[8] = NULL;
    env[0] = disp;
    env[1] = NULL;
    pid = desk_spawn(argv, env, out, err);
    if (pid > 0 && !file_has(out, "ready", 5000)) {
        desk_stop(pid, 1000);
        desk_dump("hd-testcard stderr", err);
        return -1;
    }
    return pid;
}

void desk_card_keys(const char *record, char *out, size_t cap)
{
    char buf[16384], *p = buf;
    size_t n = 0;
    unsigned sym;

    desk_slurp(record, buf, sizeof(buf));
    while ((p = strstr(p, "key keysym=")) != NULL) {
        if (sscanf(p, "key keysym=0x%x", &sym) == 1 && sym >= 0x20 &&
            sym < 0x7f && n + 1 < cap)
            out[n++] = (char)sym;
        p++;
    }
    out[n] = '\0';
}

int desk_card_new_click(const char *record, size_t n, int *x, int *y)
{
    char buf[16384];

    for (int i = 0; i < 150; i++) {
        if (desk_slurp(record, buf, sizeof(buf)) > (ssize_t)n &&
            strstr(buf + n, "button 1 ") != NULL)
            return desk_card_last_click(record, x, y);
        usleep(20000);
    }
    printf("# no click reached the card\n");
    return -1;
}

void desk_case_click(struct desk_screen *b, const char *record, int x, int y)
{
    char before[16384];
    ssize_t n0 = desk_slurp(record, before, sizeof(before));
    int cx = -1, cy = -1;

    HT_EQ_INT(desk_sh(b, "xdotool mousemove %d %d click 1", x, y), 0);
    HT_CHECK(desk_card_new_click(record, n0 > 0 ? (size_t)n0 : 0, &cx, &cy) ==
             0);
    printf("# clicked B at %d,%d: the card saw %d,%d\n", x, y, cx, cy);
    HT_CHECK(abs(cx - x) <= 1);
    HT_CHECK(abs(cy - y) <= 1);
}

void desk_case_type(struct desk_screen *b, const char *record, const char *text,
                    int echo_h, int wait_ms)
{
    struct desk_rect strip = { 0, DESK_H - echo_h, DESK_W, echo_h };
    size_t size = (size_t)DESK_W * (size_t)echo_h * 3;
    uint8_t *s0 = malloc(size), *s1 = malloc(size);
    char keys[256];
    uint64_t t0;
    int ms = -1;

    HT_CHECK(s0 != NULL && s1 != NULL && desk_grab(b, strip, s0) == 0);
    t0 = now_ms();
    HT_EQ_INT(desk_sh(b, "xdotool type --delay 20 '%s'", text), 0);
    while (s0 != NULL && s1 != NULL && now_ms() < t0 + (uint64_t)wait_ms) {
        if (desk_grab(b, strip, s1) == 0 && memcmp(s0, s1, size) != 0) {
            ms = (int)(now_ms() - t0);
            break;
        }
        usleep(2000);
    }
    printf("# typing on B: the card's echo showed on B after %d ms\n", ms);
    HT_CHECK(ms >= 0);
    do {
        desk_card_keys(record, keys, sizeof(keys));
        if (strlen(keys) >= strlen(text))
            break;
        usleep(20000);
    } while (now_ms() < t0 + (uint64_t)wait_ms);
    usleep(200000);
    desk_card_keys(record, keys, sizeof(keys));
    printf("# keys the card got: \"%s\"\n", keys);
    HT_EQ_STR(keys, text);
    free(s0);
    free(s1);
}

int desk_card_last_click(const char *record, int *x, int *y)
{
    char buf[16384], *p, *last = NULL;

    desk_slurp(record, buf, sizeof(buf));
    for (p = buf; (p = strstr(p, "button 1 ")) != NULL; p++)
        last = p;
    return last != NULL && sscanf(last, "button 1 x=%d y=%d", x, y) == 2 ? 0
                                                                         : -1;
}

/* ---- the recording proxy ----------------------------------------------------
 */

#define PROXY_MAX_CONNS 16
#define PROXY_KEEP_MAX  (64u << 20)

struct proxy_stream {
    uint8_t *data;
    size_t len, cap;
};

/* Bytes read from one side, on their way to the other (shaped links). */
struct proxy_chunk {
    struct proxy_chunk *next;
    uint64_t due_us; /* when the last byte arrives at the far end */
    size_t len, off;
    uint8_t data[];
};

struct proxy_conn {
    int fd[2];                  /* [0] the client, [1] upstream; -1 closed */
    struct proxy_stream rec[2]; /* rec[i]: bytes read from fd[i] */
    /* shaped: chunks read from fd[i], in order, and what the link holds */
    struct proxy_chunk *head[2], *tail[2];
    size_t queued[2];
    uint64_t link_free_us[2], last_due_us[2];
};

/* The emulated link (desk_proxy_shape); delay 0 and kbps 0: none. */
struct proxy_shape {
    int delay_ms, kbps, loss_permille;
};

struct desk_proxy {
    pthread_t thread;
    pthread_mutex_t mu;
    int lis, wake[2];
    uint16_t upstream;
    struct proxy_conn conns[PROXY_MAX_CONNS];
    size_t n_conns;
    uint64_t bytes, bytes_from[2];
    struct proxy_shape shape; /* set before the first connection */
    uint32_t rng;
};

static void conn_close(struct proxy_conn *c);

static uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int shaped(const struct desk_proxy *p)
{
    return p->shape.delay_ms > 0 || p->shape.kbps > 0;
}

/* Most bytes queued on a shaped link per direction before the proxy stops
 * reading (so the sender's TCP feels the bottleneck): two round trips at
 * the link rate, at least 64 KiB. */
static size_t shape_queue_max(const struct desk_proxy *p)
{
    size_t n =
        (size_t)p->shape.kbps * 1000 / 8 * 4 * (size_t)p->shape.delay_ms / 1000;

    return n > 65536 ? n : 65536;
}

/*
 * Queue n bytes read from fd[from] on the emulated link: each 1448-byte
 * segment leaves when the link is free (kbps), arrives delay_ms later;
 * a lost one (loss_permille) arrives one round trip later (a fast
 * retransmit), and, TCP being in order, so does everything behind it.
 */
static void shape_queue(struct desk_proxy *p, struct proxy_conn *c, int from,
                        const uint8_t *b, size_t n)
{
    struct proxy_chunk *k = malloc(sizeof(*k) + n);
    uint64_t now = mono_us(), t = c->link_free_us[from], due = 0;

    if (k == NULL) {
        conn_close(c);
        return;
    }
    if (t < now)
        t = now;
    for (size_t off = 0; off < n; off += 1448) {
        size_t seg = n - off < 1448 ? n - off : 1448;
        uint64_t d;

        if (p->shape.kbps > 0)
            t += (uint64_t)seg * 8 * 1000 / (uint64_t)p->shape.kbps;
        d = t + (uint64_t)p->shape.delay_ms * 1000;
        p->rng = p->rng * 1103515245u + 12345u;
        if ((int)((p->rng >> 8) % 1000) < p->shape.loss_permille)
            d += (uint64_t)p->shape.delay_ms * 2000;
        if (d > due)
            due = d;
    }
    c->link_free_us[from] = t;
    if (due < c->last_due_us[from])
        due = c->last_due_us[from];
    c->last_due_us[from] = due;
    k->next = NULL;
    k->due_us = due;
    k->len = n;
    k->off = 0;
    memcpy(k->data, b, n);
    if (c->tail[from] != NULL)
        c->tail[from]->next = k;
    else
        c->head[from] = k;
    c->tail[from] = k;
    c->queued[from] += n;
}

/* Deliver what is due; returns the microseconds until the next chunk is
 * (or -1: nothing queued). */
static int64_t shape_deliver(struct proxy_conn *c)
{
    uint64_t now = mono_us();
    int64_t next = -1;

    for (int d = 0; d < 2; d++) {
        struct proxy_chunk *k;

        while ((k = c->head[d]) != NULL && c->fd[!d] >= 0) {
            if (k->due_us > now) {
                int64_t w = (int64_t)(k->due_us - now);
                if (next < 0 || w < next)
                    next = w;
                break;
            }
            if (send_all(c->fd[!d], k->data, k->len) != 0) {
                conn_close(c);
                break;
            }
            c->queued[d] -= k->len;
            c->head[d] = k->next;
            if (c->head[d] == NULL)
                c->tail[d] = NULL;
            free(k);
        }
    }
    return next;
}

static void shape_free(struct proxy_conn *c)
{
    for (int d = 0; d < 2; d++)
        while (c->head[d] != NULL) {
            struct proxy_chunk *k = c->head[d];
            c->head[d] = k->next;
            free(k);
        }
}

static void keep(struct proxy_stream *s, const uint8_t *b, size_t n)
{
    size_t cap = s->cap ? s->cap : 65536;

    if (s->len + n > PROXY_KEEP_MAX)
        return;
    while (cap < s->len + n)
        cap *= 2;
    if (cap != s->cap) {
        uint8_t *d = realloc(s->data, cap);
        if (d == NULL)
            return;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, b, n);
    s->len += n;
}

static void conn_close(struct proxy_conn *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->fd[i] >= 0)
            close(c->fd[i]);
        c->fd[i] = -1;
    }
}

static void proxy_accept(struct desk_proxy *p)
{
    int fd = accept(p->lis, NULL, NULL), up;
    struct proxy_conn *c;

    if (fd < 0)
        return;
    pthread_mutex_lock(&p->mu);
    up = p->n_conns < PROXY_MAX_CONNS ? tcp_connect("127.0.0.1", p->upstream)
                                      : -1;
    if (up < 0) {
        pthread_mutex_unlock(&p->mu);
        close(fd);
        return;
    }
    c = &p->conns[p->n_conns++];
    c->fd[0] = fd;
    c->fd[1] = up;
    pthread_mutex_unlock(&p->mu);
}

/* Move what fd[from] has to fd[!from] (through the emulated link when
 * shaped), keeping a copy. */
static void proxy_pump(struct desk_proxy *p, struct proxy_conn *c, int from)
{
    uint8_t buf[65536];
    ssize_t n = read(c->fd[from], buf, shaped(p) ? 8192 : sizeof(buf));

    if (n <= 0) {
        conn_close(c);
        return;
    }
    if (shaped(p))
        shape_queue(p, c, from, buf, (size_t)n);
    else if (send_all(c->fd[!from], buf, (size_t)n) != 0) {
        conn_close(c);
        return;
    }
    pthread_mutex_lock(&p->mu);
    keep(&c->rec[from], buf, (size_t)n);
    p->bytes += (uint64_t)n;
    p->bytes_from[from] += (uint64_t)n;
    pthread_mutex_unlock(&p->mu);
}

static void *proxy_main(void *arg)
{
    struct desk_proxy *p = arg;
    struct pollfd pf[2 + 2 * PROXY_MAX_CONNS];
    int who[2 + 2 * PROXY_MAX_CONNS];

    for (;;) {
        size_t n = 0, conns;
        int64_t wait_us = -1;

        pf[n++] = (struct pollfd){ p->wake[0], POLLIN, 0 };
        pf[n++] = (struct pollfd){ p->lis, POLLIN, 0 };
        pthread_mutex_lock(&p->mu);
        conns = p->n_conns;
        pthread_mutex_unlock(&p->mu);
        for (size_t i = 0; i < conns; i++) {
            struct proxy_conn *c = &p->conns[i];

            if (shaped(p)) {
                int64_t w = shape_deliver(c);
                if (w >= 0 && (wait_us < 0 || w < wait_us))
                    wait_us = w;
            }
            for (int d = 0; d < 2; d++)
                if (c->fd[d] >= 0 &&
                    (!shaped(p) || c->queued[d] < shape_queue_max(p))) {
                    who[n] = (int)i * 2 + d;
                    pf[n++] = (struct pollfd){ c->fd[d], POLLIN, 0 };
                }
        }
        if (poll(pf, n, wait_us < 0 ? -1 : (int)((wait_us + 999) / 1000)) < 0 &&
            errno != EINTR)
            break;
        if (pf[0].revents)
            break;
        if (pf[1].revents & POLLIN)
            proxy_accept(p);
        for (size_t i = 2; i < n; i++) {
            struct proxy_conn *c = &p->conns[who[i] / 2];

            if (pf[i].revents && c->fd[who[i] % 2] == pf[i].fd)
                proxy_pump(p, c, who[i] % 2);
        }
    }
    return NULL;
}

int desk_proxy_start(struct desk_proxy **out, uint16_t *port)
{
    struct desk_proxy *p = calloc(1, sizeof(*p));
    struct sockaddr_in sin = { 0 };
    int one = 1;

    *out = NULL;
    if (p == NULL)
        return -1;
    pthread_mutex_init(&p->mu, NULL);
    p->lis = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(p->lis, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (p->lis < 0 || bind(p->lis, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(p->lis, 16) != 0 || pipe2(p->wake, O_CLOEXEC) != 0) {
        if (p->lis >= 0)
            close(p->lis);
        free(p);
        return -1;
    }
    *port = sock_port(p->lis);
    if (pthread_create(&p->thread, NULL, proxy_main, p) != 0) {
        close(p->lis);
        close(p->wake[0]);
        close(p->wake[1]);
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void desk_proxy_shape(struct desk_proxy *p, int delay_ms, int kbps,
                      int loss_permille)
{
    pthread_mutex_lock(&p->mu);
    p->shape = (struct proxy_shape){ delay_ms, kbps, loss_permille };
    p->rng = 0x2545f491u;
    pthread_mutex_unlock(&p->mu);
}

void desk_proxy_upstream(struct desk_proxy *p, uint16_t upstream)
{
    pthread_mutex_lock(&p->mu);
    p->upstream = upstream;
    pthread_mutex_unlock(&p->mu);
}

size_t desk_proxy_connections(struct desk_proxy *p)
{
    size_t n;

    pthread_mutex_lock(&p->mu);
    n = p->n_conns;
    pthread_mutex_unlock(&p->mu);
    return n;
}

uint64_t desk_proxy_bytes(struct desk_proxy *p)
{
    uint64_t n;

    pthread_mutex_lock(&p->mu);
    n = p->bytes;
    pthread_mutex_unlock(&p->mu);
    return n;
}

uint64_t desk_proxy_bytes_from(struct desk_proxy *p, int from_upstream)
{
    uint64_t n;

    pthread_mutex_lock(&p->mu);
    n = p->bytes_from[!!from_upstream];
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t desk_proxy_count(struct desk_proxy *p, const void *needle, size_t n)
{
    size_t hits = 0;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_conns; i++)
        for (int d = 0; d < 2; d++) {
            const struct proxy_stream *s = &p->conns[i].rec[d];
            const uint8_t *at = s->data, *end = s->data + s->len;

            while (n > 0 && at != NULL && (size_t)(end - at) >= n &&
                   (at = memmem(at, (size_t)(end - at), needle, n)) != NULL) {
                hits++;
                at++;
            }
        }
    pthread_mutex_unlock(&p->mu);
    return hits;
}

size_t desk_proxy_xor_leaks(struct desk_proxy *p, size_t i, size_t *pairs)
{
    size_t leaks = 0;

    *pairs = 0;
    pthread_mutex_lock(&p->mu);
    if (i < p->n_conns) {
        const struct proxy_stream *a = &p->conns[i].rec[0],
                                  *b = &p->conns[i].rec[1];

        leaks = xor_leaks(a->data, a->len, 2, b->data, b->len, 1, pairs);
    }
    pthread_mutex_unlock(&p->mu);
    return leaks;
}

void desk_proxy_free(struct desk_proxy *p)
{
    if (p == NULL)
        return;
    if (write(p->wake[1], "x", 1) != 1)
        return; /* cannot stop the thread: leak rather than race */
    pthread_join(p->thread, NULL);
    for (size_t i = 0; i < p->n_conns; i++) {
        conn_close(&p->conns[i]);
        shape_free(&p->conns[i]);
        free(p->conns[i].rec[0].data);
        free(p->conns[i].rec[1].data);
    }
    close(p->lis);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* ---- the clipboard (xclip) ---------------------------------------------- */

/* Copy the file at path on screen s (xclip serves it in the background,
 * until another client takes the selection). */
int desk_clip_copy_file(struct desk_screen *s, const char *path)
{
    return desk_sh(s, "xclip -selection clipboard -i '%s' >/dev/null 2>&1",
                   path);
}

int desk_clip_copy(struct desk_screen *s, const char *text, const char *dir)
{
    char p[400];
    FILE *f;

    snprintf(p, sizeof(p), "%s/clip-in.txt", dir);
    if ((f = fopen(p, "w")) == NULL)
        return -1;
    fputs(text, f);
    fclose(f);
    return desk_clip_copy_file(s, p);
}

/*
 * Paste on screen s until it gives want (n bytes), at most ms.  Returns
 * the milliseconds it took, or -1 (then prints what it got).
 */
int desk_clip_wait(struct desk_screen *s, const char *want, size_t n, int ms)
{
    char cmd[512];
    char *buf = malloc(n + 2);
    uint64_t t0 = now_ms();
    size_t got = 0;
    int took = -1;

    if (buf == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "DISPLAY=%s timeout 5 xclip -selection clipboard -o 2>/dev/null",
             s->x.display);
    while ((int)(now_ms() - t0) <= ms) {
        FILE *f = popen(cmd, "r");

        if (f == NULL)
            break;
        got = fread(buf, 1, n + 1, f);
        pclose(f);
        if (got == n && memcmp(buf, want, n) == 0) {
            took = (int)(now_ms() - t0);
            break;
        }
        usleep(50000);
    }
    if (took < 0)
        printf("# clipboard on %s: %zu bytes, not the %zu wanted (\"%.40s\")\n",
               s->x.display, got, n, got ? buf : "");
    free(buf);
    return took;
}

/* ---- a sound server ------------------------------------------------------ */

pid_t desk_pulse_start(const char *dir, char *server, size_t cap)
{
    char sock[400], run[400], log[400], load[480], envs[3][420];
    const char *argv[] = { "pulseaudio",
                           "--daemonize=no",
                           "--exit-idle-time=-1",
                           "--disallow-exit",
                           "-n",
                           "--use-pid-file=false",
                           "--log-target=stderr",
                           "-L",
                           "module-null-sink sink_name=hd_null",
                           "-L",
                           load,
                           NULL };
    const char *env[] = { envs[0], envs[1], envs[2], NULL };
    pid_t pid;

    if (!xvfb_have("pulseaudio") || !xvfb_have("pactl"))
        return -ENOENT;
    snprintf(sock, sizeof(sock), "%s/pulse.sock", dir);
    snprintf(run, sizeof(run), "%s/pulse", dir);
    snprintf(log, sizeof(log), "%s/pulse.log", dir);
    snprintf(load, sizeof(load),
             "module-native-protocol-unix auth-anonymous=1 socket=%s", sock);
    if (mkdir(run, 0700) != 0 && errno != EEXIST)
        return -1;
    snprintf(envs[0], sizeof(envs[0]), "PULSE_RUNTIME_PATH=%s", run);
    snprintf(envs[1], sizeof(envs[1]), "XDG_RUNTIME_DIR=%s", run);
    snprintf(envs[2], sizeof(envs[2]), "HOME=%s", run);
    if ((pid = desk_spawn(argv, env, NULL, log)) < 0)
        return -1;
    snprintf(server, cap, "unix:%s", sock);
    for (int i = 0; i < 100; i++) {
        if (desk_sh(NULL, "PULSE_SERVER='%s' pactl info >/dev/null 2>&1",
                    server) == 0)
            return pid;
        usleep(50000);
    }
    desk_dump("pulseaudio did not answer", log);
    desk_stop(pid, 1000);
    return -1;
}

/* ---- scratch directories --------------------------------------------------
 */

int desk_tmp_make(char *dir, size_t cap, const char *name)
{
    if (snprintf(dir, cap, "/tmp/hd-%s-XXXXXX", name) >= (int)cap)
        return -1;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

void desk_tmp_done(const char *dir)
{
    char cmd[600];

    if (getenv("HD_KEEP_TMP") != NULL) {
        printf("# kept %s\n", dir);
        return;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

pid_t desk_lab_start(struct desk_screen *a, struct desk_screen *b,
                     struct desk_rect card, uint32_t root_rgb,
                     const char *record, const char *dir, const struct srv *s,
                     const char *pw, struct desk_host *h)
{
    pid_t card_pid;

    if (desk_screen_open(a) != 0 || desk_screen_open(b) != 0) {
        printf("# Xvfb did not start\n");
        return -1;
    }
    if ((card_pid = desk_card_start(a, card, record, root_rgb, dir)) < 0)
        return -1;
    if (desk_host_start(h, dir, s, a, pw, NULL) != 0) {
        printf("# homedesk-host did not start\n");
        desk_dump("host log", h->log);
        desk_stop(card_pid, 2000);
        return -1;
    }
    return card_pid;
}

int desk_grab_both(struct desk_screen *a, uint8_t *rgb_a, struct desk_screen *b,
                   uint8_t *rgb_b)
{
    struct desk_rect all = { 0, 0, DESK_W, DESK_H };

    return desk_grab(a, all, rgb_a) == 0 && desk_grab(b, all, rgb_b) == 0 ? 0
                                                                          : -1;
}

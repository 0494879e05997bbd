/*
 * A private headless sway for the Wayland end-to-end tests.  See sway.h.
 */
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/e2e/desk.h"
#include "tests/e2e/sway.h"
#include "tests/image.h"

#define SWAY_USER "hd-sway"

/* The throw-away user (made when missing); 0 with its ids, or -1. */
static int sway_user(uid_t *uid, gid_t *gid)
{
    struct passwd *pw;

    for (int i = 0; i < 50; i++) {
        if ((pw = getpwnam(SWAY_USER)) != NULL) {
            *uid = pw->pw_uid;
            *gid = pw->pw_gid;
            return 0;
        }
        /* another test may be making it at the same time: look again */
        if (system("useradd --system --no-create-home --home-dir /nonexistent"
                   " --shell /usr/sbin/nologin " SWAY_USER
                   " >/dev/null 2>&1") == -1)
            return -1;
        usleep(100000);
    }
    printf("# cannot make the user " SWAY_USER " for sway\n");
    return -1;
}

/* The names of the Wayland and IPC sockets in rt, once both exist. */
static int sockets(struct desk_sway *s, char *wl, size_t wcap, char *ipc,
                   size_t icap)
{
    DIR *d = opendir(s->rt);
    struct dirent *e;
    size_t n;

    wl[0] = ipc[0] = '\0';
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        n = strlen(e->d_name);
        if (strncmp(e->d_name, "wayland-", 8) == 0 &&
            (n < 5 || strcmp(e->d_name + n - 5, ".lock") != 0))
            snprintf(wl, wcap, "%.40s", e->d_name);
        else if (strncmp(e->d_name, "sway-ipc.", 9) == 0)
            snprintf(ipc, icap, "%s/%.200s", s->rt, e->d_name);
    }
    closedir(d);
    return wl[0] != '\0' && ipc[0] != '\0';
}

int desk_sway_start(struct desk_sway *s, const char *dir, int w, int h)
{
    char conf[128], envrt[100], ids[2][32], wl[64], ipc[300];
    const char *argv[20];
    uid_t uid = getuid();
    gid_t gid = getgid();
    int n = 0, i;
    FILE *f;

    memset(s, 0, sizeof(*s));
    if (!xvfb_have("sway") || !xvfb_have("grim") || !xvfb_have("swaymsg"))
        return -ENOENT;
    if (uid == 0 && sway_user(&uid, &gid) != 0)
        return -1;
    snprintf(s->rt, sizeof(s->rt), "/tmp/hd-sway-XXXXXX");
    if (mkdtemp(s->rt) == NULL) {
        s->rt[0] = '\0';
        return -1;
    }
    snprintf(conf, sizeof(conf), "%s/sway.conf", s->rt);
    if ((f = fopen(conf, "w")) == NULL)
        return -1;
    fprintf(f,
            "xwayland disable\n"
            "output HEADLESS-1 mode %dx%d position 0 0 bg #3a6ea5 "
            "solid_color\n"
            "default_border none\n"
            "focus_follows_mouse no\n",
            w, h);
    fclose(f);
    if (chown(s->rt, uid, gid) != 0 || chown(conf, uid, gid) != 0 ||
        chmod(s->rt, 0700) != 0)
        return -1;
    snprintf(s->log, sizeof(s->log), "%s/sway.log", dir);
    snprintf(envrt, sizeof(envrt), "XDG_RUNTIME_DIR=%s", s->rt);
    if (getuid() == 0) {
        snprintf(ids[0], sizeof(ids[0]), "--reuid=%u", (unsigned)uid);
        snprintf(ids[1], sizeof(ids[1]), "--regid=%u", (unsigned)gid);
        argv[n++] = "setpriv";
        argv[n++] = ids[0];
        argv[n++] = ids[1];
        argv[n++] = "--clear-groups";
    }
    argv[n++] = "env";
    argv[n++] = "-i";
    argv[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
    argv[n++] = envrt;
    argv[n++] = "HOME=/nonexistent";
    argv[n++] = "WLR_BACKENDS=headless";
    argv[n++] = "WLR_LIBINPUT_NO_DEVICES=1";
    argv[n++] = "WLR_RENDERER=pixman";
    argv[n++] = "sway";
    argv[n++] = "-c";
    argv[n++] = conf;
    argv[n] = NULL;
    if ((s->pid = desk_spawn(argv, NULL, NULL, s->log)) < 0)
        return -1;
    for (i = 0; i < 200 && !sockets(s, wl, sizeof(wl), ipc, sizeof(ipc)); i++) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            break;
        }
        usleep(50000);
    }
    if (wl[0] == '\0' || ipc[0] == '\0') {
        printf("# sway did not start\n");
        desk_dump("sway log", s->log);
        return -1;
    }
    snprintf(s->env[0], sizeof(s->env[0]), "XDG_RUNTIME_DIR=%s", s->rt);
    snprintf(s->env[1], sizeof(s->env[1]), "WAYLAND_DISPLAY=%s", wl);
    snprintf(s->env[2], sizeof(s->env[2]), "SWAYSOCK=%s", ipc);
    for (i = 0; i < 3; i++)
        s->envp[i] = s->env[i];
    s->envp[3] = NULL;
    for (i = 0; i < 100; i++) {
        if (desk_sway_sh(s, "swaymsg -t get_outputs >/dev/null 2>&1") == 0)
            return 0;
        usleep(50000);
    }
    printf("# sway does not answer on %s\n", ipc);
    desk_dump("sway log", s->log);
    return -1;
}

void desk_sway_stop(struct desk_sway *s)
{
    char cmd[128];

    if (s->pid > 0)
        desk_stop(s->pid, 3000);
    s->pid = 0;
    if (s->rt[0] != '\0' && strncmp(s->rt, "/tmp/hd-sway-", 13) == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->rt);
        if (system(cmd) != 0)
            printf("# cannot remove %s\n", s->rt);
    }
    s->rt[0] = '\0';
}

int desk_sway_sh(struct desk_sway *s, const char *fmt, ...)
{
    char env[1300];
    va_list ap;
    int r;

    snprintf(env, sizeof(env), "%s %s %s", s->env[0], s->env[1], s->env[2]);
    va_start(ap, fmt);
    r = desk_vsh(env, fmt, ap);
    va_end(ap);
    return r;
}

int desk_sway_grab(struct desk_sway *s, const char *dir, const char *output,
                   const char *name, uint8_t **px, int *w, int *h)
{
    char path[400];

    *px = NULL;
    snprintf(path, sizeof(path), "%s/%s.png", dir, name);
    if (desk_sway_sh(s, "grim %s%s%s '%s'", output ? "-o '" : "",
                     output ? output : "", output ? "'" : "", path) != 0)
        return -1;
    return image_read_png(path, px, w, h);
}

ssize_t desk_sway_tree(struct desk_sway *s, const char *dir, char *buf,
                       size_t cap)
{
    char path[400];

    snprintf(path, sizeof(path), "%s/sway-tree.json", dir);
    if (desk_sway_sh(s, "swaymsg -t get_tree >'%s'", path) != 0)
        return -1;
    return desk_slurp(path, buf, cap);
}

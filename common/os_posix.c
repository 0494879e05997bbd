/*
 * The OS layer on POSIX systems (Linux, the BSDs): see os.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif
#include <sys/resource.h>
#include <sys/time.h>

#include "os.h"

os_sock os_socket(int family, int type)
{
    return socket(family, type | SOCK_CLOEXEC, 0);
}

void os_sock_close(os_sock s)
{
    close(s);
}

int os_sock_error(void)
{
    return -errno;
}

os_sock os_sock_dup(os_sock s)
{
    return fcntl(s, F_DUPFD_CLOEXEC, 0);
}

int os_wait_readable(os_sock s, int timeout_ms)
{
    struct pollfd p = { s, POLLIN, 0 };
    int r = poll(&p, 1, timeout_ms);

    return r < 0 ? -errno : r > 0;
}

int os_sock_nonblock(os_sock s)
{
    int fl = fcntl(s, F_GETFL);

    if (fl < 0 || fcntl(s, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    return 0;
}

int os_sock_reuse(os_sock s)
{
    int one = 1;

    if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        return -errno;
    return 0;
}

int os_wake_open(struct os_wake *w)
{
#ifdef __linux__
    w->fd[0] = w->fd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return w->fd[0] < 0 ? -errno : 0;
#else
    int i;

    if (pipe(w->fd) != 0)
        return -errno;
    for (i = 0; i < 2; i++) {
        fcntl(w->fd[i], F_SETFL, fcntl(w->fd[i], F_GETFL) | O_NONBLOCK);
        fcntl(w->fd[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
#endif
}

void os_wake_signal(struct os_wake *w)
{
    uint64_t one = 1;

    /* EAGAIN: already signalled (the counter or pipe is full) */
    if (write(w->fd[1], &one, sizeof(one)) < 0) {
    }
}

void os_wake_drain(struct os_wake *w)
{
    uint64_t v;

    while (read(w->fd[0], &v, sizeof(v)) > 0 && w->fd[0] != w->fd[1]) {
    }
}

int os_wake_wait(struct os_wake *w, int timeout_ms)
{
    struct pollfd p = { w->fd[0], POLLIN, 0 };

    return poll(&p, 1, timeout_ms) > 0;
}

void os_wake_close(struct os_wake *w)
{
    if (w->fd[1] != w->fd[0])
        close(w->fd[1]);
    close(w->fd[0]);
}

int os_wake_fd(const struct os_wake *w)
{
    return w->fd[0];
}

int os_default_gateway4(uint32_t *addr)
{
#ifdef __linux__
    /* "Iface Destination Gateway Flags ...", hex in network byte order as
     * the machine stores it */
    FILE *f = fopen("/proc/net/route", "r");
    char line[256], ifc[64];
    unsigned dst, gw, flags;
    int r = -ENOENT;

    if (f == NULL)
        return -errno;
    while (r != 0 && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "%63s %x %x %x", ifc, &dst, &gw, &flags) == 4 &&
            dst == 0 && (flags & 0x3) == 0x3) { /* RTF_UP | RTF_GATEWAY */
            *addr = gw;
            r = 0;
        }
    fclose(f);
    return r;
#else
    (void)addr;
    return -ENOTSUP;
#endif
}

long os_raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -errno;
    }
    return rl.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX : (long)rl.rlim_cur;
}

int os_mkdir(const char *path, int mode)
{
    return mkdir(path, (mode_t)mode) != 0 ? -errno : 0;
}

int os_config_dir(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char parent[400];
    int r;

    if (xdg != NULL && xdg[0] == '/')
        snprintf(parent, sizeof(parent), "%s", xdg);
    else if (home != NULL && home[0])
        snprintf(parent, sizeof(parent), "%s/.config", home);
    else
        return -ENOENT;
    if ((r = os_mkdir(parent, 0700)) != 0 && r != -EEXIST)
        return r;
    snprintf(out, cap, "%s/homedesk", parent);
    return 0;
}

int os_set_mtime(const char *path, uint64_t mtime)
{
    struct timeval tv[2] = { { (time_t)mtime, 0 }, { (time_t)mtime, 0 } };

    return utimes(path, tv) != 0 ? -errno : 0;
}

int os_set_fd_mtime(int fd, uint64_t mtime)
{
    struct timespec ts[2] = { { (time_t)mtime, 0 }, { (time_t)mtime, 0 } };

    return futimens(fd, ts) != 0 ? -errno : 0;
}

struct tm *os_gmtime(const time_t *t, struct tm *out)
{
    return gmtime_r(t, out);
}

int os_home(char *out, size_t cap)
{
    const char *home = getenv("HOME");
    struct passwd pw, *res = NULL;
    char buf[1024];

    if ((home == NULL || home[0] == '\0') &&
        getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
        home = res->pw_dir;
    if (home == NULL || home[0] == '\0')
        return -ENOENT;
    snprintf(out, cap, "%s", home);
    return 0;
}

void os_user_name(char *out, size_t cap)
{
    struct passwd pw, *res = NULL;
    char buf[1024];

    if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
        snprintf(out, cap, "%s", res->pw_name ? res->pw_name : "");
    else if (cap > 0)
        out[0] = '\0';
}

const char *os_platform(void)
{
    return "Linux";
}

void os_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
}

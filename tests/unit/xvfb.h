/*
 * Test support: start a private Xvfb for one test program and stop it.
 * Xvfb picks a free display number itself (-displayfd) and reports it
 * once it accepts connections, so parallel test programs never race for a
 * number and nothing has to poll for the socket; it dies with the test
 * program even if that crashes.  Header-only (static
 * functions) so each test program stays a single file.
 */
#ifndef HD_TESTS_XVFB_H
#define HD_TESTS_XVFB_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

struct xvfb {
    pid_t pid;
    char display[16]; /* ":N" */
};

/* True when an executable called name is on $PATH. */
static inline int xvfb_have(const char *name)
{
    const char *path = getenv("PATH");
    char dir[4096], file[4200];
    const char *p, *end;

    if (path == NULL)
        path = "/usr/bin:/bin";
    for (p = path; *p; p = *end ? end + 1 : end) {
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        if ((size_t)(end - p) >= sizeof(dir))
            continue;
        memcpy(dir, p, (size_t)(end - p));
        dir[end - p] = '\0';
        snprintf(file, sizeof(file), "%s/%s", dir[0] ? dir : ".", name);
        if (access(file, X_OK) == 0)
            return 1;
    }
    return 0;
}

/*
 * Start `Xvfb -displayfd FD -screen 0 1280x720x24 -nolisten tcp -r` (no
 * key auto-repeat) and wait
 * (up to 10 s) until it is ready.  Returns 0 and fills *x, -ENOENT when
 * Xvfb is not installed, or another negative errno.
 */
static inline int xvfb_start(struct xvfb *x)
{
    int fds[2], devnull, n;
    char buf[16], fdarg[16];
    struct pollfd pfd;
    size_t got = 0;

    memset(x, 0, sizeof(*x));
    if (!xvfb_have("Xvfb"))
        return -ENOENT;
    if (pipe(fds) != 0)
        return -errno;
    x->pid = fork();
    if (x->pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -errno;
    }
    if (x->pid == 0) {
        close(fds[0]);
        /* A test that crashes must not leave its server behind. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        snprintf(fdarg, sizeof(fdarg), "%d", fds[1]);
        /* -r: no auto-repeat (xdotool's release of a key, late on a
         * busy machine, made the server repeat it: "Hello World  42") */
        execlp("Xvfb", "Xvfb", "-displayfd", fdarg, "-screen", "0",
               "1280x720x24", "-nolisten", "tcp", "-r", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    pfd = (struct pollfd){ fds[0], POLLIN, 0 };
    while (got < sizeof(buf) - 1 && poll(&pfd, 1, 10000) > 0) {
        n = (int)read(fds[0], buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (buf[got - 1] == '\n')
            break;
    }
    close(fds[0]);
    buf[got] = '\0';
    if (got == 0 || buf[0] < '0' || buf[0] > '9') {
        kill(x->pid, SIGKILL);
        waitpid(x->pid, NULL, 0);
        x->pid = 0;
        return -EIO;
    }
    snprintf(x->display, sizeof(x->display), ":%d", atoi(buf));
    return 0;
}

static inline void xvfb_stop(struct xvfb *x)
{
    if (x->pid > 0) {
        kill(x->pid, SIGTERM);
        waitpid(x->pid, NULL, 0);
        x->pid = 0;
    }
}

#endif

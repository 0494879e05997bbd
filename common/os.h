/*
 * The OS layer: the one place in common/ and the host's platform-neutral
 * files that knows whether it runs on POSIX (os_posix.c) or Windows
 * (os_win.c).  Everything else includes "os.h" instead of the socket and
 * POSIX headers, so those files compile unchanged with mingw-w64
 * (tools/check-headers.sh enforces it in make test).
 *
 * What it owns:
 * - Socket headers and the few socket calls libuv does not wrap for us:
 *   a socket not inherited by children (close-on-exec), non-blocking mode,
 *   address reuse for the TCP punch, closing, the last socket error.
 * - Wake-ups between threads for code that sleeps outside libuv (the
 *   capture thread): struct os_wake.  Code on a libuv loop uses uv_async.
 * - Directories and the config path: $XDG_CONFIG_HOME/homedesk or
 *   ~/.config/homedesk on POSIX, %APPDATA%\homedesk on Windows.
 * - Time (os_gmtime), the user's name, ignoring SIGPIPE, UTF-8 argv.
 * - On Windows only: the POSIX file calls the code uses (open flags,
 *   fsync, fchmod, mkostemp, rename over an existing file), mapped onto the
 *   C runtime in os_win.c; paths are UTF-8 (the program's manifest asks for
 *   the UTF-8 code page).
 *
 * Every function may be called from any thread unless noted.
 */
#ifndef HD_OS_H
#define HD_OS_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
/* after winsock2.h, as uv.h does */
#include <io.h>
#include <iphlpapi.h>
#include <unistd.h>
#include <windows.h>
#ifndef IF_NAMESIZE
#define IF_NAMESIZE 256
#endif

typedef SOCKET os_sock;
#define OS_SOCK_BAD INVALID_SOCKET

#ifndef O_CLOEXEC
#define O_CLOEXEC _O_NOINHERIT
#endif
#define O_NOFOLLOW 0
#define O_NONBLOCK 0
#ifndef S_ISLNK
#define S_ISLNK(m) 0
#endif
#define lstat stat
int os_fsync(int fd);
#define fsync os_fsync
int os_fchmod(int fd, int mode);
#define fchmod os_fchmod
int os_mkostemp(char *tmpl, int flags);
#define mkostemp os_mkostemp
/* rename() of the C runtime fails when the target exists */
int os_rename(const char *from, const char *to);
#define rename os_rename
/* link(from, to) where it serves to create "to" only if it does not exist
 * yet: a move that never replaces (EEXIST), from is gone after it */
int os_link(const char *from, const char *to);
#define link os_link
typedef unsigned short sa_family_t;
int os_unsetenv(const char *name);
#define unsetenv os_unsetenv
#else
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int os_sock;
#define OS_SOCK_BAD (-1)
#endif

/* A socket of family/type (SOCK_STREAM, SOCK_DGRAM) that no child process
 * inherits; OS_SOCK_BAD with os_sock_error() on failure. */
os_sock os_socket(int family, int type);
/* Close a socket from os_socket (close() is not for sockets on Windows). */
void os_sock_close(os_sock s);
/* The last socket call's error as a negative errno-style code (on Windows
 * libuv's translation of WSAGetLastError()). */
int os_sock_error(void);
/* A second socket for the same endpoint, not inherited by children;
 * OS_SOCK_BAD with os_sock_error() on failure. */
os_sock os_sock_dup(os_sock s);
/* Wait until s is readable or timeout_ms passed (<0: no limit): 1
 * readable, 0 timed out, or os_sock_error(). */
int os_wait_readable(os_sock s, int timeout_ms);
/* Non-blocking mode; 0 or os_sock_error(). */
int os_sock_nonblock(os_sock s);
/* Let a second socket bind the same local port (the TCP punch connects
 * out from the port it listens on): SO_REUSEADDR and SO_REUSEPORT on
 * POSIX, SO_REUSEADDR on Windows.  0 or os_sock_error(). */
int os_sock_reuse(os_sock s);

/*
 * A wake-up one thread sends another that sleeps outside libuv.  Signalled
 * state persists until os_wake_drain.  POSIX: an eventfd (a pipe where
 * there is none), pollable through os_wake_fd; Windows: a manual-reset
 * event.  os_wake_signal is async-signal-safe on POSIX.
 */
struct os_wake {
#ifdef _WIN32
    void *event;
#else
    int fd[2];
#endif
};
int os_wake_open(struct os_wake *w); /* 0 or -errno */
void os_wake_signal(struct os_wake *w);
void os_wake_drain(struct os_wake *w);
/* Sleep until signalled or timeout_ms (<0: no limit): 1 signalled, 0
 * timed out.  Does not drain. */
int os_wake_wait(struct os_wake *w, int timeout_ms);
void os_wake_close(struct os_wake *w);
#ifndef _WIN32
/* The descriptor to poll for POLLIN. */
int os_wake_fd(const struct os_wake *w);
#endif

/* Raise the soft limit of open descriptors to the hard one: the new
 * limit, or -errno (Windows has no such limit: LONG_MAX). */
long os_raise_fd_limit(void);

/* The default IPv4 gateway (network byte order) into *addr: 0, or a
 * negative errno (-ENOENT: no default route; -ENOTSUP: not known how on
 * this system). */
int os_default_gateway4(uint32_t *addr);

/* mkdir with mode (ignored on Windows); 0, or -errno (EEXIST included). */
int os_mkdir(const char *path, int mode);
/*
 * The default config directory: $XDG_CONFIG_HOME/homedesk or
 * $HOME/.config/homedesk on POSIX, %APPDATA%\homedesk on Windows.  Creates
 * its parent (mode 0700) when missing but not the directory itself.
 * Returns 0, or -ENOENT when the environment names no home.
 */
int os_config_dir(char *out, size_t cap);
/* The directory separator of paths we build. */
#ifdef _WIN32
#define OS_SEP "\\"
#else
#define OS_SEP "/"
#endif

/* Set a file's modification (and access) time, seconds since the epoch;
 * 0 or -errno. */
int os_set_mtime(const char *path, uint64_t mtime);

/* The same for an open file. */
int os_set_fd_mtime(int fd, uint64_t mtime);

/* gmtime_r / gmtime_s */
struct tm *os_gmtime(const time_t *t, struct tm *out);
/* The user's home directory into out: HOME, else the password database
 * (a system service may run without HOME) on POSIX; the profile folder
 * (USERPROFILE) on Windows.  0, or -ENOENT. */
int os_home(char *out, size_t cap);
/* The name of the user running us ("" when unknown) into out. */
void os_user_name(char *out, size_t cap);
/* The platform's name as RustDesk's PeerInfo spells it ("Linux",
 * "Windows"). */
const char *os_platform(void);

/*
 * Process set-up at the top of main(): ignore SIGPIPE (POSIX); on Windows
 * replace *argv with the command line in UTF-8 (CommandLineToArgvW: the
 * C runtime's argv is in the ANSI code page) and switch the console to
 * UTF-8.  The new argv lives until the process ends.
 */
void os_init(int *argc, char ***argv);

#endif

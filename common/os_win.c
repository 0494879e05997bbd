/*
 * The OS layer on Windows (mingw-w64): see os.h.  Sockets are Winsock's
 * (libuv has called WSAStartup before any of ours is made: the host
 * creates its loop first); wake-ups are manual-reset events.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/utime.h>

#include <uv.h>

#include "os.h"

#include <shellapi.h>

os_sock os_socket(int family, int type)
{
    return WSASocketW(family, type, 0, NULL, 0,
                      WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

void os_sock_close(os_sock s)
{
    closesocket(s);
}

int os_sock_error(void)
{
    return uv_translate_sys_error(WSAGetLastError());
}

os_sock os_sock_dup(os_sock s)
{
    WSAPROTOCOL_INFOW pi;

    if (WSADuplicateSocketW(s, GetCurrentProcessId(), &pi) != 0)
        return INVALID_SOCKET;
    return WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO,
                      FROM_PROTOCOL_INFO, &pi, 0,
                      WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

int os_wait_readable(os_sock s, int timeout_ms)
{
    WSAPOLLFD p = { s, POLLRDNORM, 0 };
    int r = WSAPoll(&p, 1, timeout_ms);

    return r < 0 ? os_sock_error() : r > 0;
}

int os_sock_nonblock(os_sock s)
{
    u_long on = 1;

    return ioctlsocket(s, FIONBIO, &on) != 0 ? os_sock_error() : 0;
}

int os_sock_reuse(os_sock s)
{
    BOOL on = TRUE;

    /* Windows' SO_REUSEADDR is both of POSIX's options in one */
    if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, (const char *)&on,
                   sizeof(on)) != 0)
        return os_sock_error();
    return 0;
}

int os_wake_open(struct os_wake *w)
{
    w->event = CreateEventW(NULL, TRUE, FALSE, NULL);
    return w->event == NULL ? -ENOMEM : 0;
}

void os_wake_signal(struct os_wake *w)
{
    SetEvent(w->event);
}

void os_wake_drain(struct os_wake *w)
{
    ResetEvent(w->event);
}

int os_wake_wait(struct os_wake *w, int timeout_ms)
{
    return WaitForSingleObject(w->event,
                               timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms) ==
           WAIT_OBJECT_0;
}

void os_wake_close(struct os_wake *w)
{
    CloseHandle(w->event);
}

/* UTF-8 <-> UTF-16; NULL on failure (free the result) */
static wchar_t *wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w;

    if (n <= 0 || (w = malloc((size_t)n * sizeof(*w))) == NULL)
        return NULL;
    MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
    return w;
}

static char *narrow(const wchar_t *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s;

    if (n <= 0 || (s = malloc((size_t)n)) == NULL)
        return NULL;
    WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
    return s;
}

long os_raise_fd_limit(void)
{
    return LONG_MAX;
}

int os_default_gateway4(uint32_t *addr)
{
    MIB_IPFORWARDROW row;
    /* the route to a public address (TEST-NET-2) goes by the default
     * gateway, its next hop */
    DWORD dest = htonl(0xc6336401u), r = GetBestRoute(dest, 0, &row);

    if (r != NO_ERROR)
        return uv_translate_sys_error((int)r);
    if (row.dwForwardNextHop == 0 || row.dwForwardNextHop == dest)
        return -ENOENT; /* on-link: no gateway */
    *addr = row.dwForwardNextHop;
    return 0;
}

int os_mkdir(const char *path, int mode)
{
    wchar_t *w = wide(path);
    int r = 0;

    (void)mode;
    if (w == NULL)
        return -EINVAL;
    if (!CreateDirectoryW(w, NULL))
        r = uv_translate_sys_error((int)GetLastError());
    free(w);
    /* libuv's codes are negated errno values for these on Windows too */
    return r == UV_EEXIST ? -EEXIST : r;
}

int os_config_dir(char *out, size_t cap)
{
    wchar_t *app = _wgetenv(L"APPDATA");
    char *parent;

    if (app == NULL || app[0] == 0 || (parent = narrow(app)) == NULL)
        return -ENOENT;
    snprintf(out, cap, "%s\\homedesk", parent);
    free(parent);
    return 0;
}

int os_set_mtime(const char *path, uint64_t mtime)
{
    struct __utimbuf64 t = { (__time64_t)mtime, (__time64_t)mtime };

    return _utime64(path, &t) != 0 ? -errno : 0;
}

int os_set_fd_mtime(int fd, uint64_t mtime)
{
    struct __utimbuf64 t = { (__time64_t)mtime, (__time64_t)mtime };

    return _futime64(fd, &t) != 0 ? -errno : 0;
}

struct tm *os_gmtime(const time_t *t, struct tm *out)
{
    return gmtime_s(out, t) == 0 ? out : NULL;
}

int os_home(char *out, size_t cap)
{
    return uv_os_homedir(out, &cap) == 0 ? 0 : -ENOENT;
}

void os_user_name(char *out, size_t cap)
{
    uv_passwd_t pw;

    if (cap == 0)
        return;
    out[0] = '\0';
    if (uv_os_get_passwd(&pw) == 0) {
        snprintf(out, cap, "%s", pw.username ? pw.username : "");
        uv_os_free_passwd(&pw);
    }
}

const char *os_platform(void)
{
    return "Windows";
}

void os_init(int *argc, char ***argv)
{
    wchar_t **wargv;
    char **args;
    int n, i;

    SetConsoleOutputCP(CP_UTF8);
    /* files in binary mode, as on POSIX (no \r\n translation) */
    _fmode = _O_BINARY;
    wargv = CommandLineToArgvW(GetCommandLineW(), &n);
    if (wargv == NULL || (args = calloc((size_t)n + 1, sizeof(*args))) == NULL)
        return;
    for (i = 0; i < n; i++)
        if ((args[i] = narrow(wargv[i])) == NULL)
            return;
    LocalFree(wargv);
    *argc = n;
    *argv = args;
}

int os_fsync(int fd)
{
    return _commit(fd);
}

int os_fchmod(int fd, int mode)
{
    (void)fd;
    (void)mode;
    return 0;
}

int os_mkostemp(char *tmpl, int flags)
{
    int i;

    /* _mktemp_s gives 26 names per template: try a few templates */
    for (i = 0; i < 8; i++) {
        size_t n = strlen(tmpl);
        char save[7];
        int fd;

        if (n < 6)
            break;
        memcpy(save, tmpl + n - 6, 7);
        if (_mktemp_s(tmpl, n + 1) != 0)
            break;
        fd = _open(tmpl, _O_RDWR | _O_CREAT | _O_EXCL | _O_BINARY | flags,
                   _S_IREAD | _S_IWRITE);
        if (fd >= 0 || errno != EEXIST)
            return fd;
        memcpy(tmpl + n - 6, save, 7);
    }
    errno = EEXIST;
    return -1;
}

int os_unsetenv(const char *name)
{
    return _putenv_s(name, "") == 0 ? 0 : -1;
}

#undef link
int os_link(const char *from, const char *to)
{
    wchar_t *f = wide(from), *t = wide(to);
    int ok = f && t && MoveFileExW(f, t, 0);
    DWORD e = ok ? 0 : GetLastError();

    free(f);
    free(t);
    if (!ok)
        errno = e == ERROR_ALREADY_EXISTS || e == ERROR_FILE_EXISTS ? EEXIST
                                                                    : EACCES;
    return ok ? 0 : -1;
}

#undef rename
int os_rename(const char *from, const char *to)
{
    wchar_t *f = wide(from), *t = wide(to);
    int ok = f && t && MoveFileExW(f, t, MOVEFILE_REPLACE_EXISTING);

    free(f);
    free(t);
    if (!ok)
        errno = EACCES;
    return ok ? 0 : -1;
}

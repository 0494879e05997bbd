/*
 * Logging to stderr.  The level is the only global state of common/ (as
 * STYLE.md allows); it is read with relaxed atomics so any thread may log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "err.h"
#include "log.h"
#include "os.h"

static int log_level = HD_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug",
                                           "trace" };
static const char *const level_tags[] = { "ERROR", "WARN ", "INFO ", "DEBUG",
                                          "TRACE" };
/* syslog priorities for journald: err, warning, info, debug, debug. */
static const int level_prio[] = { 3, 4, 6, 7, 7 };

void hd_log_set_level(enum hd_log_level level)
{
    __atomic_store_n(&log_level, (int)level, __ATOMIC_RELAXED);
}

enum hd_log_level hd_log_get_level(void)
{
    return (enum hd_log_level)__atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int hd_log_enabled(enum hd_log_level level)
{
    return (int)level <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int hd_log_parse_level(const char *s, enum hd_log_level *level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *level = (enum hd_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *level = HD_LOG_WARN;
        return 0;
    }
    return HD_ECONFIG;
}

int hd_log_configure(const char *level_name, int verbose)
{
    enum hd_log_level level = HD_LOG_INFO;
    int r;

    if (level_name != NULL && (r = hd_log_parse_level(level_name, &level)) != 0)
        return r;
    if (verbose > 0 && level < HD_LOG_DEBUG)
        level = verbose > 1 ? HD_LOG_TRACE : HD_LOG_DEBUG;
    else if (verbose > 1 && level < HD_LOG_TRACE)
        level = HD_LOG_TRACE;
    hd_log_set_level(level);
    return 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t c;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        c = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        c = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
        (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
        return 0;
    *cp = c;
    return len;
}

void hd_log_printable(char *s, size_t n)
{
    unsigned char *p = (unsigned char *)s;
    size_t i = 0, len;
    uint32_t cp = 0;

    while (i < n) {
        len = utf8_len(p + i, n - i, &cp);
        if (len == 0) {
            p[i++] = '?';
            continue;
        }
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
            memset(p + i, '?', len);
        i += len;
    }
}

int hd_log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600), r = 0;

    if (fd < 0)
        return -errno;
    if (dup2(fd, STDERR_FILENO) < 0)
        r = -errno;
    close(fd);
    if (r == 0)
        unsetenv("JOURNAL_STREAM"); /* the file wants timestamps */
    return r;
}

void hd_log(enum hd_log_level level, const char *module, const char *fmt, ...)
{
    char line[1024];
    size_t n = 0, start;
    va_list ap;
    int r;

    if ((unsigned)level > HD_LOG_TRACE)
        level = HD_LOG_TRACE;
    if (getenv("JOURNAL_STREAM") != NULL) {
        r = snprintf(line, sizeof(line), "<%d>%s: ", level_prio[level], module);
    } else {
        uv_timeval64_t tv;
        struct tm tm;
        time_t t;

        uv_gettimeofday(&tv);
        t = (time_t)tv.tv_sec;
        os_gmtime(&t, &tm);
        r = snprintf(
            line, sizeof(line),
            "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: ", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            (int)(tv.tv_usec / 1000), level_tags[level], module);
    }
    if (r < 0)
        return;
    n = (size_t)r < sizeof(line) ? (size_t)r : sizeof(line) - 1;
    start = n;
    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (r < 0)
        return;
    n += (size_t)r;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2; /* truncated: keep room for '\n' */
    hd_log_printable(line + start, n - start);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report it */
    }
}

const char *hd_log_quote(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (cap < 8) {
        if (cap > 0)
            out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || strchr("._:@-", ch) != NULL;
        size_t need = plain ? 1 : 4;

        if (o + need + 2 > cap - 4) { /* room for ..." and the NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/*
 * Logging: one line per event on stderr, each with a level and a module
 * tag, e.g. "2026-11-20T10:00:00.123Z INFO  relay: paired 1.2.3.4 ...".
 * Under journald (JOURNAL_STREAM set) the timestamp is left out and the
 * line starts with a "<N>" syslog priority that journald understands.
 * Control characters in the formatted text (which may come from peers) are
 * replaced by '?' (hd_log_printable), so a peer can neither forge log
 * lines nor send escape sequences to the terminal.  Never log a key, a
 * password or a token.  Thread-safe: each line is written with one write().
 */
#ifndef HD_LOG_H
#define HD_LOG_H

#include <stddef.h>

/* printf-style format checks; with mingw-w64 our printf is its C99 one
 * (__USE_MINGW_ANSI_STDIO: %zu, %lld), which GCC calls gnu_printf */
#ifdef __MINGW32__
#define HD_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#else
#define HD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

enum hd_log_level {
    HD_LOG_ERROR = 0,
    HD_LOG_WARN,
    HD_LOG_INFO,
    HD_LOG_DEBUG,
    HD_LOG_TRACE
};

/* Set the most verbose level printed (default HD_LOG_INFO). */
void hd_log_set_level(enum hd_log_level level);
enum hd_log_level hd_log_get_level(void);

/*
 * Parse "error", "warn", "info", "debug", "trace" (any case) into *level.
 * Returns 0, or HD_ECONFIG for an unknown name (*level untouched).
 */
int hd_log_parse_level(const char *s, enum hd_log_level *level);

/*
 * The one rule every program applies to its --log-level and -v/--verbose:
 * level_name (NULL: "info") sets the level, each -v raises it one step
 * (debug, then trace) but never lowers it.  Returns 0, or HD_ECONFIG for
 * an unknown level name (the level is then left unchanged).
 */
int hd_log_configure(const char *level_name, int verbose);

/*
 * --log-file: from now on stderr (our lines and whatever libraries print)
 * is appended to path (created 0600).  Timestamps are kept even under
 * journald, whose stream stderr no longer is.  Call from main before any
 * thread starts.  Returns 0 or a negative errno (stderr unchanged).
 */
int hd_log_open_file(const char *path);

/* True when a message at this level would be printed. */
int hd_log_enabled(enum hd_log_level level);

/*
 * Make s[0..n) safe to print on a terminal, in place: every C0 control
 * (tab and newline included), DEL, C1 control (U+0080-U+009F, i.e. the
 * UTF-8 pairs C2 80 .. C2 9F) and every byte that is not part of valid
 * UTF-8 (a raw 0x9B is CSI on an 8-bit terminal) becomes '?'.  The
 * length never changes; valid printable UTF-8 is kept.  For any text a
 * peer sent (names, reasons, message boxes) before it reaches stdout or
 * stderr outside hd_log, which applies it itself.
 */
void hd_log_printable(char *s, size_t n);

/* Print one line (no trailing newline needed in fmt). */
void hd_log(enum hd_log_level level, const char *module, const char *fmt, ...)
    HD_PRINTF(3, 4);

/*
 * A string from a peer (an ID, a name) as it may appear in a log line that
 * tools parse (fail2ban): in double quotes, every byte outside
 * [A-Za-z0-9._:@-] written as \xNN, cut at HD_LOG_QUOTE_MAX - 1 bytes of
 * output (ending in "..." then).  So a peer cannot end the quote or
 * imitate " from 1.2.3.4".  Returns out; NULL s gives "".
 */
#define HD_LOG_QUOTE_MAX 128
const char *hd_log_quote(const char *s, char *out, size_t cap);

#define HD_LOG_AT(lvl, mod, ...)           \
    do {                                   \
        if (hd_log_enabled(lvl))           \
            hd_log(lvl, mod, __VA_ARGS__); \
    } while (0)
#define hd_error(mod, ...) HD_LOG_AT(HD_LOG_ERROR, mod, __VA_ARGS__)
#define hd_warn(mod, ...)  HD_LOG_AT(HD_LOG_WARN, mod, __VA_ARGS__)
#define hd_info(mod, ...)  HD_LOG_AT(HD_LOG_INFO, mod, __VA_ARGS__)
#define hd_debug(mod, ...) HD_LOG_AT(HD_LOG_DEBUG, mod, __VA_ARGS__)
#define hd_trace(mod, ...) HD_LOG_AT(HD_LOG_TRACE, mod, __VA_ARGS__)

#endif

/* Unit tests for common/log and common/err. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "tests/harness.h"

static void parse_levels(void)
{
    enum hd_log_level l = HD_LOG_INFO;

    HT_EQ_INT(hd_log_parse_level("debug", &l), 0);
    HT_EQ_INT(l, HD_LOG_DEBUG);
    HT_EQ_INT(hd_log_parse_level("WARNING", &l), 0);
    HT_EQ_INT(l, HD_LOG_WARN);
    HT_EQ_INT(hd_log_parse_level("loud", &l), HD_ECONFIG);
    HT_EQ_INT(l, HD_LOG_WARN);
}

/* Capture what hd_log writes to stderr through a pipe. */
static size_t capture(char *buf, size_t cap, const char *peer_text)
{
    int fds[2], saved;
    ssize_t n;

    if (pipe(fds) != 0)
        return 0;
    saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    hd_info("test", "peer said %s", peer_text);
    hd_debug("test", "hidden at info level");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    n = read(fds[0], buf, cap - 1);
    close(fds[0]);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    return (size_t)n;
}

static void one_line_per_event(void)
{
    char buf[2048];
    size_t n;

    unsetenv("JOURNAL_STREAM");
    hd_log_set_level(HD_LOG_INFO);
    n = capture(buf, sizeof(buf), "hello\nFAKE ERROR root: injected");
    HT_CHECK(n > 0);
    HT_CHECK(strstr(buf, " INFO  test: peer said hello?FAKE") != NULL);
    /* exactly one newline: the peer's newline was neutralised */
    HT_CHECK(strchr(buf, '\n') == buf + n - 1);
    HT_CHECK(strstr(buf, "hidden") == NULL);
}

/* What reaches a terminal: no C0, DEL, C1 or invalid UTF-8; text kept. */
static void printable(void)
{
    char s[64], line[512];

    snprintf(s, sizeof(s), "a\x1b[2Jb\tc\x7f");
    hd_log_printable(s, strlen(s));
    HT_EQ_STR(s, "a?[2Jb?c?");
    /* C1 CSI as UTF-8 (C2 9B) and as a raw byte; é and € stay */
    snprintf(s, sizeof(s),
             "x\xc2\x9b"
             "31my\x9bz \xc3\xa9\xe2\x82\xac");
    hd_log_printable(s, strlen(s));
    HT_EQ_STR(s, "x??31my?z \xc3\xa9\xe2\x82\xac");
    /* truncated, overlong and surrogate sequences */
    snprintf(s, sizeof(s), "\xe2\x82|\xc0\xafq\xed\xa0\x80");
    hd_log_printable(s, strlen(s));
    HT_EQ_STR(s, "??|??q???");
    /* the log applies it too */
    unsetenv("JOURNAL_STREAM");
    hd_log_set_level(HD_LOG_INFO);
    HT_CHECK(capture(line, sizeof(line),
                     "\xc2\x9b"
                     "2J") > 0);
    HT_CHECK(strstr(line, "\xc2\x9b") == NULL && strstr(line, "??2J") != NULL);
}

static void journald_prefix(void)
{
    char buf[2048];

    setenv("JOURNAL_STREAM", "8:1234", 1);
    capture(buf, sizeof(buf), "x");
    unsetenv("JOURNAL_STREAM");
    HT_CHECK(strncmp(buf, "<6>test: peer said x\n", 21) == 0);
}

static void long_line_truncated(void)
{
    char big[3000], buf[2048];
    size_t n;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    n = capture(buf, sizeof(buf), big);
    HT_CHECK(n <= 1024);
    HT_CHECK(n > 0 && buf[n - 1] == '\n');
}

/* --log-level and -v/--verbose, the same rule in every program. */
static void configure_level_and_verbose(void)
{
    HT_EQ_INT(hd_log_configure(NULL, 0), 0);
    HT_EQ_INT(hd_log_get_level(), HD_LOG_INFO);
    HT_EQ_INT(hd_log_configure(NULL, 1), 0);
    HT_EQ_INT(hd_log_get_level(), HD_LOG_DEBUG);
    HT_EQ_INT(hd_log_configure("warn", 2), 0);
    HT_EQ_INT(hd_log_get_level(), HD_LOG_TRACE);
    HT_EQ_INT(hd_log_configure("debug", 2), 0);
    HT_EQ_INT(hd_log_get_level(), HD_LOG_TRACE);
    /* -v never lowers an explicit level */
    HT_EQ_INT(hd_log_configure("trace", 1), 0);
    HT_EQ_INT(hd_log_get_level(), HD_LOG_TRACE);
    HT_EQ_INT(hd_log_configure("error", 0), 0);
    HT_EQ_INT(hd_log_get_level(), HD_LOG_ERROR);
    /* a bad name changes nothing */
    HT_EQ_INT(hd_log_configure("loud", 2), HD_ECONFIG);
    HT_EQ_INT(hd_log_get_level(), HD_LOG_ERROR);
    hd_log_set_level(HD_LOG_INFO);
}

static void strerror_codes(void)
{
    HT_EQ_STR(hd_strerror(HD_ETOOBIG), "message too large");
    HT_EQ_STR(hd_strerror(HD_EAUTH), "authentication failed");
    HT_CHECK(strstr(hd_strerror(-98), "in use") != NULL); /* EADDRINUSE */
    HT_EQ_STR(hd_strerror(-999999), "unknown error");
}

/* Peer strings for parsed lines: quoted, escaped, cut. */
static void quote_peer_strings(void)
{
    char out[HD_LOG_QUOTE_MAX], small[12], longid[300];

    HT_EQ_STR(hd_log_quote("123456789", out, sizeof(out)), "\"123456789\"");
    HT_EQ_STR(hd_log_quote(NULL, out, sizeof(out)), "\"\"");
    HT_EQ_STR(hd_log_quote("a\") from 6.6.6.6:1", out, sizeof(out)),
              "\"a\\x22\\x29\\x20from\\x206.6.6.6:1\"");
    HT_EQ_STR(hd_log_quote("\xff\n", out, sizeof(out)), "\"\\xff\\x0a\"");
    HT_EQ_STR(hd_log_quote("abcdefghij", small, sizeof(small)), "\"abcde...\"");
    memset(longid, '7', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    hd_log_quote(longid, out, sizeof(out));
    HT_CHECK(strlen(out) < sizeof(out));
    HT_CHECK(strcmp(out + strlen(out) - 4, "...\"") == 0);
}

int main(void)
{
    ht_init("log");
    HT_RUN(parse_levels);
    HT_RUN(one_line_per_event);
    HT_RUN(printable);
    HT_RUN(journald_prefix);
    HT_RUN(long_line_truncated);
    HT_RUN(configure_level_and_verbose);
    HT_RUN(strerror_codes);
    HT_RUN(quote_peer_strings);
    return ht_finish();
}

/*
 * The in-tree test harness.  A test program runs cases with HT_RUN; each
 * case prints one line, "ok - SUITE: CASE" or "not ok - SUITE: CASE",
 * with "# file:line: what" diagnostics before it.  tools/run-tests.sh
 * numbers the lines of every program and prints the closing
 * "N passed, N failed" line.  Single-threaded: call only from the main
 * thread (checks inside a case may come from any thread; they are counted
 * atomically).
 */
#ifndef HD_TESTS_HARNESS_H
#define HD_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Set the suite name printed before every case (default: program name). */
void ht_init(const char *suite);

/* Run one case: fn is called once; any failed check fails the case.  With
 * HT_CASES set (a comma-separated list of case names) only those run, the
 * others are reported as skipped. */
void ht_run(const char *name, void (*fn)(void));
#define HT_RUN(fn) ht_run(#fn, fn)

/* Report a case that was not run, with the reason. */
void ht_skip(const char *name, const char *why);

/* Print the summary of this program; returns its exit status. */
int ht_finish(void);

/* Record a failure of the running case (printf-style message). */
void ht_fail(const char *file, int line, const char *fmt, ...)
#ifdef __MINGW32__ /* mingw's C99 printf (make test-win) */
    __attribute__((format(gnu_printf, 3, 4)));
#else
    __attribute__((format(printf, 3, 4)));
#endif

/* Number of failures recorded in the running case so far. */
int ht_case_failures(void);

/* Cases failed so far in this program (for main's dumps after the last
 * case: ht_case_failures counts the current case only). */
int ht_failures(void);

#define HT_CHECK(cond)                                              \
    do {                                                            \
        if (!(cond))                                                \
            ht_fail(__FILE__, __LINE__, "check failed: %s", #cond); \
    } while (0)

#define HT_EQ_INT(a, b)                                                   \
    do {                                                                  \
        long long ht_a_ = (long long)(a), ht_b_ = (long long)(b);         \
        if (ht_a_ != ht_b_)                                               \
            ht_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, \
                    ht_a_, ht_b_);                                        \
    } while (0)

#define HT_EQ_STR(a, b)                                                       \
    do {                                                                      \
        const char *ht_a_ = (a), *ht_b_ = (b);                                \
        if (ht_a_ == NULL || ht_b_ == NULL || strcmp(ht_a_, ht_b_) != 0)      \
            ht_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                    ht_a_ ? ht_a_ : "(null)", ht_b_ ? ht_b_ : "(null)");      \
    } while (0)

#define HT_EQ_MEM(a, b, n)                                                     \
    do {                                                                       \
        if (memcmp((a), (b), (n)) != 0)                                        \
            ht_fail(__FILE__, __LINE__, "%s == %s (%zu bytes) differ", #a, #b, \
                    (size_t)(n));                                              \
    } while (0)

/* Hex dump helper for diagnostics: writes into out (2*n+1 bytes). */
void ht_hex(char *out, const void *p, size_t n);

#endif

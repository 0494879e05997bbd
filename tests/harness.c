/*
 * The test harness: counts cases and failures, prints TAP-like lines.
 * Failure counting is atomic so a check from a helper thread is safe.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32 /* the unit tests cross-built for Windows (make test-win) */
#define flockfile   _lock_file
#define funlockfile _unlock_file
#endif

#include "tests/harness.h"

static const char *suite = "test";
static int passed, failed, skipped;
static int case_failures;

void ht_init(const char *name)
{
    suite = name;
    setvbuf(stdout, NULL, _IOLBF, 0);
}

void ht_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    __atomic_add_fetch(&case_failures, 1, __ATOMIC_SEQ_CST);
    flockfile(stdout);
    printf("# %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    funlockfile(stdout);
}

int ht_case_failures(void)
{
    return __atomic_load_n(&case_failures, __ATOMIC_SEQ_CST);
}

int ht_failures(void)
{
    return failed;
}

/* HT_CASES="a,b": only the cases named (to iterate on a few by hand) */
static int wanted(const char *name)
{
    const char *l = getenv("HT_CASES"), *p;
    size_t n = strlen(name);

    for (p = l; p != NULL && (p = strstr(p, name)) != NULL; p += n)
        if ((p == l || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return l == NULL || l[0] == '\0';
}

void ht_run(const char *name, void (*fn)(void))
{
    if (!wanted(name)) {
        ht_skip(name, "not in HT_CASES");
        return;
    }
    __atomic_store_n(&case_failures, 0, __ATOMIC_SEQ_CST);
    fn();
    if (ht_case_failures() == 0) {
        passed++;
        printf("ok - %s: %s\n", suite, name);
    } else {
        failed++;
        printf("not ok - %s: %s\n", suite, name);
    }
    fflush(stdout);
}

void ht_skip(const char *name, const char *why)
{
    skipped++;
    printf("ok - %s: %s # skip %s\n", suite, name, why);
    fflush(stdout);
}

int ht_finish(void)
{
    printf("# %s: %d passed, %d failed, %d skipped\n", suite, passed, failed,
           skipped);
    fflush(stdout);
    return failed ? 1 : 0;
}

void ht_hex(char *out, const void *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

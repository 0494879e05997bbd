/*
 * The Prometheus text exposition format (0.0.4) for GET /metrics on the
 * admin port: functions that append families (# HELP / # TYPE) and
 * samples to a struct textbuf (its first error sticks there: HD_ECONFIG
 * for a bad name, HD_ETOOBIG beyond its max).  They escape help text and
 * label values, check names and format numbers, so the body is always
 * valid exposition text or an error, never half of one.  One thread (the
 * loop thread).
 */
#ifndef HD_SERVER_METRICS_H
#define HD_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "server/textbuf.h"

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting "__" */
    const char *value; /* any UTF-8; escaped on output */
};

/*
 * Begin a metric family: "# HELP name help" (help escaped) and
 * "# TYPE name type".  type is counter, gauge, histogram, summary or
 * untyped; a bad name or type sets HD_ECONFIG (a programming error, logged,
 * served as 500).  No-op once an error is set.
 */
void metrics_family(struct textbuf *t, const char *name, const char *type,
                    const char *help);

/*
 * One sample line: name{l1="v1",...} value.  labels may be NULL when
 * nlabels is 0.  The double is written in the shortest form that reads
 * back exactly (NaN, +Inf, -Inf as Prometheus spells them).
 */
void metrics_sample(struct textbuf *t, const char *name,
                    const struct metrics_label *labels, size_t nlabels,
                    double value);

/* The same for a counter kept as an integer (exact above 2^53). */
void metrics_sample_u64(struct textbuf *t, const char *name,
                        const struct metrics_label *labels, size_t nlabels,
                        uint64_t value);

#endif

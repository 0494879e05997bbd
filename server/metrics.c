/*
 * The Prometheus text writer of metrics.h on a struct textbuf: names are
 * checked before anything of a line is written.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "server/metrics.h"

#define MOD "metrics"

/* Write s escaping backslash and newline, and '"' when quote is set. */
static void put_escaped(struct textbuf *t, const char *s, int quote)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *esc = NULL;

        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote)
            esc = "\\\"";
        if (esc != NULL) {
            textbuf_put(t, run, (size_t)(s - run));
            textbuf_puts(t, esc);
            run = s + 1;
        }
    }
    textbuf_put(t, run, (size_t)(s - run));
}

static int name_ok(const char *s, int colons)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s != '\0'; s++) {
        int c = (unsigned char)*s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || (colons && c == ':')))
            return 0;
    }
    return 1;
}

void metrics_family(struct textbuf *t, const char *name, const char *type,
                    const char *help)
{
    static const char *const types[] = { "counter", "gauge", "histogram",
                                         "summary", "untyped" };
    int type_ok = 0;

    if (t->err != 0)
        return;
    for (size_t i = 0; type != NULL && i < sizeof(types) / sizeof(types[0]);
         i++)
        type_ok |= strcmp(type, types[i]) == 0;
    if (!name_ok(name, 1) || !type_ok) {
        hd_error(MOD, "bad family %s (%s)", name ? name : "(null)",
                 type ? type : "(null)");
        t->err = HD_ECONFIG;
        return;
    }
    textbuf_printf(t, "# HELP %s ", name);
    put_escaped(t, help ? help : "", 0);
    textbuf_printf(t, "\n# TYPE %s %s\n", name, type);
}

static void sample_head(struct textbuf *t, const char *name,
                        const struct metrics_label *labels, size_t nlabels)
{
    if (t->err != 0)
        return;
    if (!name_ok(name, 1)) {
        hd_error(MOD, "bad metric name %s", name ? name : "(null)");
        t->err = HD_ECONFIG;
        return;
    }
    for (size_t i = 0; i < nlabels; i++) {
        if (!name_ok(labels[i].name, 0) ||
            strncmp(labels[i].name, "__", 2) == 0 || labels[i].value == NULL) {
            hd_error(MOD, "bad label on %s", name);
            t->err = HD_ECONFIG;
            return;
        }
    }
    textbuf_puts(t, name);
    for (size_t i = 0; i < nlabels; i++) {
        textbuf_printf(t, "%s%s=\"", i == 0 ? "{" : ",", labels[i].name);
        put_escaped(t, labels[i].value, 1);
        textbuf_puts(t, "\"");
    }
    textbuf_puts(t, nlabels > 0 ? "} " : " ");
}

void metrics_sample(struct textbuf *t, const char *name,
                    const struct metrics_label *labels, size_t nlabels,
                    double value)
{
    char num[40];

    sample_head(t, name, labels, nlabels);
    if (isnan(value)) {
        snprintf(num, sizeof(num), "NaN");
    } else if (isinf(value)) {
        snprintf(num, sizeof(num), value > 0 ? "+Inf" : "-Inf");
    } else {
        /* the shortest %g that reads back as the same double */
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(num, sizeof(num), "%.*g", prec, value);
            if (strtod(num, NULL) == value)
                break;
        }
    }
    textbuf_printf(t, "%s\n", num);
}

void metrics_sample_u64(struct textbuf *t, const char *name,
                        const struct metrics_label *labels, size_t nlabels,
                        uint64_t value)
{
    sample_head(t, name, labels, nlabels);
    textbuf_printf(t, "%" PRIu64 "\n", value);
}

/*
 * Options from the command line, the environment and a config file.
 *
 * Every value, whatever its source, goes through set_value(): parse into a
 * temporary, report a bad value (always, even when a stronger source has
 * already set the option: a misconfiguration is reported, not hidden), and
 * store it only if the source is at least as strong as the one that set
 * the option before.  Messages are built by fail(), which keeps them to one
 * line with control characters replaced.  The help and the man page are
 * config_help.c.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_int.h"
#include "err.h"
#include "log.h"

#define CONFIG_LINE_MAX 4096 /* longest config file line */
#define VALUE_SHOWN     60   /* characters of a bad value quoted back */

/* One owned string copy; a list freed by hd_config_cleanup. */
struct hd_config_str {
    struct hd_config_str *next;
    char s[];
};

static int fail(struct hd_config *cfg, const char *fmt, ...) HD_PRINTF(2, 3);

static int fail(struct hd_config *cfg, const char *fmt, ...)
{
    va_list ap;
    size_t n;
    int r;

    r = snprintf(cfg->error, sizeof(cfg->error),
                 "%s: ", cfg->program ? cfg->program : "homedesk");
    n = r > 0 && (size_t)r < sizeof(cfg->error) ? (size_t)r : 0;
    va_start(ap, fmt);
    vsnprintf(cfg->error + n, sizeof(cfg->error) - n, fmt, ap);
    va_end(ap);
    for (char *p = cfg->error; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    if (cfg->errf != NULL)
        fprintf(cfg->errf, "%s\n", cfg->error);
    return HD_ECONFIG;
}

/* ---- names ---- */

/* Next comma-separated item of *list: sets *item, *len; false at the end. */
bool config_next_item(const char **list, const char **item, size_t *len)
{
    const char *p = *list, *comma;

    if (p == NULL || *p == '\0')
        return false;
    comma = strchr(p, ',');
    *item = p;
    *len = comma ? (size_t)(comma - p) : strlen(p);
    *list = comma ? comma + 1 : p + *len;
    return true;
}

/* Equal names, '_' and '-' alike when loose (config file keys). */
static bool name_eq(const char *a, size_t alen, const char *b, size_t blen,
                    bool loose)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        char x = a[i], y = b[i];
        if (loose) {
            x = x == '_' ? '-' : x;
            y = y == '_' ? '-' : y;
        }
        if (x != y)
            return false;
    }
    return true;
}

/* Index of the option with this long name, or -1. */
static long find_long(const struct hd_config *cfg, const char *name, size_t len,
                      bool loose)
{
    const char *list, *item;
    size_t n;

    if (len < 2)
        return -1;
    for (size_t i = 0; i < cfg->nopts; i++) {
        list = cfg->opts[i].names;
        while (config_next_item(&list, &item, &n)) {
            if (n > 1 && name_eq(item, n, name, len, loose))
                return (long)i;
        }
    }
    return -1;
}

static long find_short(const struct hd_config *cfg, char c)
{
    const char *list, *item;
    size_t n;

    for (size_t i = 0; i < cfg->nopts; i++) {
        list = cfg->opts[i].names;
        while (config_next_item(&list, &item, &n)) {
            if (n == 1 && item[0] == c)
                return (long)i;
        }
    }
    return -1;
}

/* The first long name (or the short one) for messages and --help. */
static void display_name(const struct hd_opt *o, char *buf, size_t cap)
{
    const char *list = o->names, *item, *best = NULL;
    size_t n, best_n = 0;

    while (config_next_item(&list, &item, &n)) {
        if (best == NULL || (best_n == 1 && n > 1)) {
            best = item;
            best_n = n;
        }
    }
    snprintf(buf, cap, "%s%.*s", best_n == 1 ? "-" : "--", (int)best_n,
             best ? best : "?");
}

/* ---- values ---- */

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "1", "y", "yes", "true", "on" };
    static const char *const no[] = { "0", "n", "no", "false", "off" };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* A whole decimal integer: no blanks, no trailing text. */
static bool parse_ll(const char *s, long long *out)
{
    char *end;

    if (!isdigit((unsigned char)s[0]) &&
        !((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1])))
        return false;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno == 0 && *end == '\0';
}

/* Digits with an optional k/M/G/T suffix (powers of 1024) and "B"/"iB". */
static bool parse_size(const char *s, uint64_t *out)
{
    unsigned long long v;
    unsigned shift = 0;
    char *end;

    if (!isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return false;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    }
    if (shift != 0) {
        end++;
        if (*end == 'i')
            end++;
    }
    if (*end == 'B')
        end++;
    if (*end != '\0' || (shift != 0 && v > (UINT64_MAX >> shift)))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end;

    if (s[0] == '\0' || isspace((unsigned char)s[0]))
        return false;
    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && *end == '\0' && isfinite(*out);
}

void config_range_text(const struct hd_opt *o, char *buf, size_t cap)
{
    buf[0] = '\0';
    /* "-1-65535" reads as a typo: a negative bound gets words */
    if (o->min < o->max)
        snprintf(buf, cap, o->min < 0 ? "%lld to %lld" : "%lld-%lld", o->min,
                 o->max);
}

void config_choices_text(const struct hd_opt *o, const char *sep, char *buf,
                         size_t cap)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; o->choices[i] != NULL && n < cap; i++) {
        int r = snprintf(buf + n, cap - n, "%s%s", i ? sep : "", o->choices[i]);
        if (r < 0)
            break;
        n += (size_t)r;
    }
}

static int store_string(struct hd_config *cfg, const char **dst, const char *s)
{
    size_t len = strlen(s);
    struct hd_config_str *c = malloc(sizeof(*c) + len + 1);

    if (c == NULL)
        return -ENOMEM;
    memcpy(c->s, s, len + 1);
    c->next = cfg->strs;
    cfg->strs = c;
    *dst = c->s;
    return 0;
}

/*
 * Parse value for option i (named "where" in messages) and store it if src
 * is at least as strong as the option's current source.  value NULL means
 * a bare command-line FLAG or COUNT.
 */
static int set_value(struct hd_config *cfg, size_t i, enum hd_config_source src,
                     const char *where, const char *value)
{
    const struct hd_opt *o = &cfg->opts[i];
    bool store = src >= cfg->source[i], b = false;
    char range[64], extra[80];
    long long ll = 0;
    uint64_t u = 0;
    double d = 0;
    size_t k;

    config_range_text(o, range, sizeof(range));
    snprintf(extra, sizeof(extra), "%s%s%s", range[0] ? " (" : "", range,
             range[0] ? ")" : "");
    switch (o->type) {
    case HD_OPT_FLAG:
        if (value != NULL && !parse_bool(value, &b))
            return fail(cfg, "%s: '%.*s' is not yes or no", where, VALUE_SHOWN,
                        value);
        if (store)
            *o->b = value ? b : true;
        break;
    case HD_OPT_COUNT:
        /* bare: one more; with a value (--verbose=2, env): as INT */
        if (value == NULL) {
            if (store)
                *o->i = cfg->source[i] == src ? *o->i + 1 : 1;
            break;
        }
        /* fall through */
    case HD_OPT_INT:
        if (!parse_ll(value, &ll))
            return fail(cfg, "%s: '%.*s' is not a number%s", where, VALUE_SHOWN,
                        value, extra);
        if (o->min < o->max ? ll < o->min || ll > o->max
                            : ll < INT_MIN || ll > INT_MAX)
            return fail(cfg, "%s: '%.*s' is out of range%s", where, VALUE_SHOWN,
                        value, extra);
        if (store)
            *o->i = (int)ll;
        break;
    case HD_OPT_SIZE:
        if (!parse_size(value, &u))
            return fail(cfg, "%s: '%.*s' is not a size (e.g. 512k, 16M)%s",
                        where, VALUE_SHOWN, value, extra);
        if (o->min < o->max && (u < (uint64_t)o->min || u > (uint64_t)o->max))
            return fail(cfg, "%s: '%.*s' is out of range%s", where, VALUE_SHOWN,
                        value, extra);
        if (store)
            *o->u = u;
        break;
    case HD_OPT_DOUBLE:
        if (!parse_double(value, &d))
            return fail(cfg, "%s: '%.*s' is not a number%s", where, VALUE_SHOWN,
                        value, extra);
        if (o->min < o->max && (d < (double)o->min || d > (double)o->max))
            return fail(cfg, "%s: '%.*s' is out of range%s", where, VALUE_SHOWN,
                        value, extra);
        if (store)
            *o->d = d;
        break;
    case HD_OPT_CHOICE:
        for (k = 0; o->choices[k] != NULL; k++) {
            if (strcmp(value, o->choices[k]) == 0)
                break;
        }
        if (o->choices[k] == NULL) {
            char list[200];
            config_choices_text(o, ", ", list, sizeof(list));
            return fail(cfg, "%s: '%.*s' is not one of %s", where, VALUE_SHOWN,
                        value, list);
        }
        if (store)
            *o->i = (int)k;
        break;
    case HD_OPT_STRING:
        if (store) {
            int r = store_string(cfg, o->s, value);
            if (r != 0)
                return r;
        }
        break;
    }
    if (store)
        cfg->source[i] = (unsigned char)src;
    return 0;
}

/* ---- init ---- */

static void clear_value(const struct hd_opt *o)
{
    switch (o->type) {
    case HD_OPT_FLAG:
        *o->b = false;
        break;
    case HD_OPT_COUNT:
    case HD_OPT_INT:
    case HD_OPT_CHOICE:
        *o->i = 0;
        break;
    case HD_OPT_SIZE:
        *o->u = 0;
        break;
    case HD_OPT_DOUBLE:
        *o->d = 0;
        break;
    case HD_OPT_STRING:
        *o->s = NULL;
        break;
    }
}

int hd_config_init(struct hd_config *cfg, const char *program,
                   const struct hd_opt *opts)
{
    char name[64], where[96];
    size_t n = 0;
    int r;

    memset(cfg, 0, sizeof(*cfg));
    cfg->program = program;
    cfg->opts = opts;
    cfg->errf = stderr;
    while (opts[n].names != NULL)
        n++;
    cfg->nopts = n;
    cfg->source = calloc(n ? n : 1, 1);
    if (cfg->source == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct hd_opt *o = &opts[i];

        display_name(o, name, sizeof(name));
        if (o->type < HD_OPT_FLAG || o->type > HD_OPT_CHOICE || o->s == NULL ||
            (o->type == HD_OPT_CHOICE && o->choices == NULL))
            return fail(cfg, "option table: bad entry for %s", name);
        clear_value(o);
        if (o->def == NULL)
            continue;
        snprintf(where, sizeof(where), "default of %s", name);
        if ((r = set_value(cfg, i, HD_CONFIG_DEFAULT, where, o->def)) != 0)
            return r;
    }
    return 0;
}

void hd_config_cleanup(struct hd_config *cfg)
{
    struct hd_config_str *c, *next;

    if (cfg == NULL)
        return;
    for (c = cfg->strs; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    cfg->strs = NULL;
    free(cfg->source);
    cfg->source = NULL;
    free(cfg->args);
    cfg->args = NULL;
    cfg->nargs = 0;
}

enum hd_config_source hd_config_source(const struct hd_config *cfg, size_t i)
{
    if (i >= cfg->nopts)
        return HD_CONFIG_DEFAULT;
    return (enum hd_config_source)cfg->source[i];
}

/* ---- command line ---- */

static bool takes_value(const struct hd_opt *o)
{
    return o->type != HD_OPT_FLAG && o->type != HD_OPT_COUNT;
}

static void scrub(char *s)
{
    memset(s, '*', strlen(s));
}

void hd_config_scrub_secret(int argc, char **argv, const char *name,
                            char short_name, const char *env)
{
    size_t n = strlen(name);
    char *v;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (short_name != 0 && argv[i][0] == '-' && argv[i][1] == short_name) {
            if (argv[i][2] != '\0')
                scrub(argv[i] + 2);
            else if (i + 1 < argc)
                scrub(argv[++i]);
            continue;
        }
        if (strncmp(argv[i], "--", 2) != 0 ||
            strncmp(argv[i] + 2, name, n) != 0)
            continue;
        if (argv[i][2 + n] == '=')
            scrub(argv[i] + 3 + n);
        else if (argv[i][2 + n] == '\0' && i + 1 < argc)
            scrub(argv[++i]);
    }
    if (env != NULL && (v = getenv(env)) != NULL)
        scrub(v);
}

int hd_config_parse_args(struct hd_config *cfg, int argc, char **argv)
{
    bool only_args = false;
    char where[80];
    int r;

    free(cfg->args);
    cfg->nargs = 0;
    cfg->args = calloc(argc > 0 ? (size_t)argc : 1, sizeof(*cfg->args));
    if (cfg->args == NULL)
        return -ENOMEM;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value = NULL;
        long idx;

        if (only_args || a[0] != '-' || a[1] == '\0') {
            cfg->args[cfg->nargs++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = true;
            continue;
        }
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);

            idx = find_long(cfg, name, len, false);
            if (idx < 0)
                return fail(cfg, "unknown option '--%.*s' (try --help)",
                            (int)(len < 60 ? len : 60), name);
            snprintf(where, sizeof(where), "--%.*s", (int)len, name);
            if (eq != NULL) {
                value = eq + 1;
            } else if (takes_value(&cfg->opts[idx])) {
                if (i + 1 >= argc)
                    return fail(cfg, "%s needs a value (try --help)", where);
                value = argv[++i];
            }
            if ((r = set_value(cfg, (size_t)idx, HD_CONFIG_ARGS, where,
                               value)) != 0)
                return r;
            continue;
        }
        /* A cluster of short options: -vv, -p21116, -vp 21116. */
        for (const char *c = a + 1; *c != '\0'; c++) {
            idx = find_short(cfg, *c);
            if (idx < 0)
                return fail(cfg, "unknown option '-%c' (try --help)", *c);
            snprintf(where, sizeof(where), "-%c", *c);
            value = NULL;
            if (takes_value(&cfg->opts[idx])) {
                if (c[1] != '\0')
                    value = c + 1;
                else if (i + 1 < argc)
                    value = argv[++i];
                else
                    return fail(cfg, "%s needs a value (try --help)", where);
            }
            if ((r = set_value(cfg, (size_t)idx, HD_CONFIG_ARGS, where,
                               value)) != 0)
                return r;
            if (value != NULL)
                break; /* the rest of the cluster was the value */
        }
    }
    return 0;
}

/* ---- environment ---- */

int hd_config_parse_env(struct hd_config *cfg)
{
    const char *list, *item, *value;
    char name[128];
    size_t n;
    int r;

    for (size_t i = 0; i < cfg->nopts; i++) {
        list = cfg->opts[i].env;
        while (config_next_item(&list, &item, &n)) {
            if (n == 0 || n >= sizeof(name))
                continue;
            memcpy(name, item, n);
            name[n] = '\0';
            value = getenv(name);
            if (value == NULL ||
                (value[0] == '\0' && !(cfg->opts[i].flags & HD_OPT_ENV_EMPTY)))
                continue;
            if ((r = set_value(cfg, i, HD_CONFIG_ENV, name, value)) != 0)
                return r;
            break; /* the first variable that is set wins */
        }
    }
    return 0;
}

/* ---- config file ---- */

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int hd_config_parse_file(struct hd_config *cfg, const char *path, bool required)
{
    char line[CONFIG_LINE_MAX + 2], where[CONFIG_LINE_MAX + 64];
    FILE *f;
    int r = 0;

    f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT && !required)
            return 0;
        return fail(cfg, "%s: %s", path, strerror(errno));
    }
    for (unsigned lineno = 1; fgets(line, sizeof(line), f) != NULL; lineno++) {
        char *key, *value, *eq;
        size_t len = strlen(line), vlen;
        long idx;

        if (len > 0 && line[len - 1] == '\n') {
            line[--len] = '\0';
        } else if (!feof(f) || len > CONFIG_LINE_MAX) {
            r = fail(cfg, "%s:%u: line longer than %d bytes", path, lineno,
                     CONFIG_LINE_MAX);
            goto out;
        }
        key = trim(line);
        if (key[0] == '\0' || key[0] == '#')
            continue;
        eq = strchr(key, '=');
        if (eq == NULL) {
            r = fail(cfg, "%s:%u: expected 'key = value'", path, lineno);
            goto out;
        }
        *eq = '\0';
        key = trim(key);
        value = trim(eq + 1);
        vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        idx = find_long(cfg, key, strlen(key), true);
        if (idx < 0) {
            r = fail(cfg, "%s:%u: unknown option '%.60s'", path, lineno, key);
            goto out;
        }
        if (cfg->opts[idx].flags & HD_OPT_ARGV_ONLY) {
            r = fail(cfg, "%s:%u: '%s' is not allowed in a config file", path,
                     lineno, key);
            goto out;
        }
        snprintf(where, sizeof(where), "%s:%u: %s", path, lineno, key);
        if ((r = set_value(cfg, (size_t)idx, HD_CONFIG_FILE, where, value)) !=
            0)
            goto out;
    }
    if (ferror(f))
        r = fail(cfg, "%s: read error", path);
out:
    fclose(f);
    return r;
}

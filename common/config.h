/*
 * Options: command line, environment and config file in one place.
 *
 * A program describes its options once, in a table of struct hd_opt (long
 * and short names, environment variables, type, default, help text, where
 * to store the value), and then asks for the sources it wants, in any
 * order:
 *
 *     struct hd_config cfg;
 *     if ((r = hd_config_init(&cfg, "homedesk-server", opts)) != 0 ||
 *         (r = hd_config_parse_args(&cfg, argc, argv)) != 0 ||
 *         (r = hd_config_parse_env(&cfg)) != 0 ||
 *         (r = hd_config_parse_file(&cfg, path, 0)) != 0)
 *         exit(2);               (the one-line message is already printed)
 *
 * Precedence does not depend on that order: each option remembers where
 * its value came from and a value only replaces one from a weaker source
 * (command line > environment > config file > default).  A bad value is
 * reported even when a stronger source overrides it.  Values are
 * stored through the table's typed pointers; strings are copies owned by
 * the struct hd_config and stay valid until hd_config_cleanup.
 *
 * Every problem produces exactly one line, e.g.
 *     homedesk-server: --port: 'abc' is not a number (1-65535)
 *     homedesk-server: PORT: '0' is out of range (1-65535)
 *     homedesk-server: /etc/homedesk.conf:3: unknown option 'prot'
 *     homedesk-server: unknown option '--prot' (try --help)
 * kept in cfg->error, written to cfg->errf (stderr by default, NULL for
 * silence), and the function returns HD_ECONFIG so main can exit 2.
 *
 * No globals: the table, the storage and the struct hd_config belong to
 * the caller.  Not thread-safe; call from main before starting threads.
 */
#ifndef HD_CONFIG_H
#define HD_CONFIG_H

#include <assert.h>
#include <stdbool.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>

enum hd_opt_type {
    HD_OPT_FLAG = 1, /* bool; no value on the command line (--opt=no is
                      * allowed); env/file: 1 y yes true on / 0 n no false
                      * off, any case */
    HD_OPT_COUNT,    /* int, +1 per occurrence (-vvv); a number elsewhere */
    HD_OPT_STRING,   /* const char *, a copy owned by struct hd_config */
    HD_OPT_INT,      /* int within [min, max] */
    HD_OPT_SIZE,     /* uint64_t; suffix k, M, G, T = powers of 1024 */
    HD_OPT_DOUBLE,   /* double within [min, max] */
    HD_OPT_CHOICE    /* int: index of the value in choices[] */
};

/* struct hd_opt.flags */
#define HD_OPT_HIDDEN    1u /* left out of --help (compatibility spellings) */
#define HD_OPT_ARGV_ONLY 2u /* not accepted from a config file (--help) */
#define HD_OPT_ENV_EMPTY                           \
    4u /* an empty environment variable is a value \
        * (KEY= turns hbbs's key check off) */

struct hd_opt {
    /* Comma-separated spellings without dashes: one character is a short
     * option (-p), longer is a long one (--port), e.g. "p,port,rport".
     * --help lists them all; messages use the spelling the user typed;
     * every long name is also a config file key.  NULL ends the table. */
    const char *names;
    /* Comma-separated environment variables, e.g. "HOMEDESK_PORT,PORT";
     * the first one that is set and not empty is used (with
     * HD_OPT_ENV_EMPTY: the first one that is set).  May be NULL. */
    const char *env;
    enum hd_opt_type type;
    unsigned flags;     /* HD_OPT_HIDDEN | HD_OPT_ARGV_ONLY | ... */
    const char *def;    /* default, written as a user would, or NULL (zero,
                         * false, or a NULL string) */
    const char *arg;    /* value name in --help ("N", "DIR"), or NULL */
    const char *help;   /* one sentence for --help */
    long long min, max; /* INT, SIZE, DOUBLE: accepted range if min < max */
    const char *const *choices; /* CHOICE: NULL-terminated spellings */
    union {             /* where the value goes; the member fits the type */
        bool *b;        /* FLAG */
        int *i;         /* COUNT, INT, CHOICE */
        uint64_t *u;    /* SIZE */
        double *d;      /* DOUBLE */
        const char **s; /* STRING */
    };
};

/* The user's relay server (RustDesk's "Relay server" setting), the same
 * option for host and viewer; s: where the value goes (const char **). */
#define HD_OPT_RELAY(s_ptr)                                               \
    {                                                                     \
        .names = "relay", .env = "HOMEDESK_RELAY", .type = HD_OPT_STRING, \
        .arg = "HOST[:PORT]",                                             \
        .help = "relay server to use (port 21117 by default) instead "    \
                "of the one the server hands out",                        \
        .s = (s_ptr)                                                      \
    }

/* --server and --key of the host and the viewer (the same options, help
 * and environment variables in both): entries of a struct hd_opt table
 * storing into const char * dst. */
#define HD_OPT_SERVER(dst)                                                    \
    {                                                                         \
        .names = "s,server", .env = "HOMEDESK_SERVER", .type = HD_OPT_STRING, \
        .arg = "HOST[:PORT]",                                                 \
        .help = "rendezvous server (port 21116 by default)", .s = (dst)       \
    }
#define HD_OPT_KEY(dst)                                                   \
    {                                                                     \
        .names = "k,key", .env = "HOMEDESK_KEY", .type = HD_OPT_STRING,   \
        .arg = "PUBKEY",                                                  \
        .help = "the server's public key (base64, as in id_ed25519.pub)", \
        .s = (dst)                                                        \
    }

/* --log-file FILE (HOMEDESK_LOG_FILE), the same in every program: an
 * entry of a struct hd_opt table storing into the const char * dst. */
#define HD_OPT_LOG_FILE(dst)                                          \
    {                                                                 \
        .names = "log-file", .env = "HOMEDESK_LOG_FILE",              \
        .type = HD_OPT_STRING, .arg = "FILE",                         \
        .help = "append the log (stderr) to FILE instead", .s = (dst) \
    }

enum hd_config_source {
    HD_CONFIG_DEFAULT = 0,
    HD_CONFIG_FILE,
    HD_CONFIG_ENV,
    HD_CONFIG_ARGS
};

struct hd_config {
    const char *program; /* prefix of every message */
    const struct hd_opt *opts;
    size_t nopts;
    unsigned char *source;      /* enum hd_config_source, one per option */
    struct hd_config_str *strs; /* owned string copies */
    const char **args;          /* positional arguments (point into argv) */
    int nargs;
    FILE *errf;      /* where messages go; NULL = keep silent */
    char error[320]; /* the last message, without the newline */
};

/*
 * Check the table and store every option's default.  Returns 0,
 * -ENOMEM, or HD_ECONFIG if a default does not parse (a bug in the table;
 * the message names the option).  Call hd_config_cleanup in every case.
 */
int hd_config_init(struct hd_config *cfg, const char *program,
                   const struct hd_opt *opts);

/* Free the string copies and the positional array.  Accepts a cfg that was
 * zeroed or whose init failed. */
void hd_config_cleanup(struct hd_config *cfg);

/*
 * Parse the command line (argv[0] is skipped): --opt=value, --opt value,
 * -o value, -ovalue, combined short flags (-vv), "--" ends the options;
 * options and positional arguments may be mixed.  Positional arguments
 * land in cfg->args / cfg->nargs (pointers into argv, which must outlive
 * them).  Returns 0, -ENOMEM, or HD_ECONFIG (unknown option, missing or
 * bad value) with the message printed.
 */
int hd_config_parse_args(struct hd_config *cfg, int argc, char **argv);

/*
 * Overwrite, in this process's own memory, the value given to the secret
 * option --name in argv ("--name VALUE" or "--name=VALUE", and "-S VALUE"
 * or "-SVALUE" when short is not 0) and the value
 * of the environment variable env (NULL: none) with '*', so that ps and
 * /proc/PID/cmdline and /proc/PID/environ (which Linux reads from that
 * memory) no longer show it.  Call once the values were copied (after
 * hd_config_parse_args / _env, which copy).  Other users could read them
 * until then: files (--password-file) are the safe way.
 */
void hd_config_scrub_secret(int argc, char **argv, const char *name,
                            char short_name, const char *env);

/* Read each option's environment variables (empty counts as unset unless
 * the option has HD_OPT_ENV_EMPTY).  Returns 0 or HD_ECONFIG for a bad
 * value. */
int hd_config_parse_env(struct hd_config *cfg);

/*
 * Read "key = value" lines from path: key is any long name of an option
 * ('_' and '-' alike), the value runs to the end of the line (blanks
 * trimmed, one pair of surrounding double quotes removed); blank lines and
 * lines starting with '#' are ignored (no comments after a value, so a
 * value may contain '#').  A missing file is fine unless required.
 * Returns 0, or HD_ECONFIG (unreadable file, bad line, unknown key, bad
 * value, line longer than 4 KiB).
 */
int hd_config_parse_file(struct hd_config *cfg, const char *path,
                         bool required);

/* Where option number i (its index in the table) got its value. */
enum hd_config_source hd_config_source(const struct hd_config *cfg, size_t i);

/*
 * Write the --help text for opts: "Usage: PROGRAM USAGE", then each option
 * not HD_OPT_HIDDEN with its spellings, help, range or choices, default
 * and environment variables.  usage may be NULL ("[OPTIONS]").
 */
void hd_config_print_help(const struct hd_opt *opts, const char *program,
                          const char *usage, FILE *f);

/*
 * The same entries as --help, as the body of a man page's OPTIONS section
 * (roff: a .TP paragraph per option not HD_OPT_HIDDEN, spellings in bold,
 * the value in italics, then the sentence and the environment variables).
 */
void hd_config_print_man(const struct hd_opt *opts, FILE *f);

/* Write pre (roff as is), then s as roff text (backslashes escaped, a
 * leading '.' or '\'' kept from being a request; with minus, '-' as "\-"
 * for option names), then post (as is). */
void hd_config_man_text(FILE *f, const char *pre, const char *s, bool minus,
                        const char *post);

/* --help-man, the same in every program: the man page's generated
 * sections on stdout (tools/mkman.sh); hidden from --help. */
#define HD_OPT_HELP_MAN(dst)                                           \
    {                                                                  \
        .names = "help-man", .type = HD_OPT_FLAG,                      \
        .flags = HD_OPT_HIDDEN | HD_OPT_ARGV_ONLY,                     \
        .help = "print the man page's option section (roff) and exit", \
        .b = (dst)                                                     \
    }

/* Append the entries of the array a to the table t at *n (max entries in
 * all, the end included): option tables built in groups. */
#define HD_OPTS_ADD(t, n, max, a)                          \
    do {                                                   \
        assert(*(n) + sizeof(a) / sizeof((a)[0]) < (max)); \
        memcpy((t) + *(n), (a), sizeof(a));                \
        *(n) += (int)(sizeof(a) / sizeof((a)[0]));         \
    } while (0)

#endif

/*
 * homedesk-server's option tables and settings rules.  See opts.h.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/opts.h"

const char *const opts_role_names[] = { "all", "rendezvous", "relay", NULL };

/* The admin HTTP endpoint's exposure (after each --http-port). */
#define HTTP_OPTS(o)                                                        \
    { .names = "http-bind",                                                 \
      .env = "HOMEDESK_HTTP_BIND",                                          \
      .type = HD_OPT_STRING,                                                \
      .arg = "IP",                                                          \
      .def = "127.0.0.1",                                                   \
      .help = "address of the admin HTTP port (:: or 0.0.0.0 for every "    \
              "machine that can reach it)",                                 \
      .s = &(o)->http_bind },                                               \
        { .names = "http-allow-host",                                       \
          .env = "HOMEDESK_HTTP_ALLOW_HOST",                                \
          .type = HD_OPT_STRING,                                            \
          .arg = "NAME[,NAME]",                                             \
          .help = "host names the admin port answers to (IP addresses and " \
                  "localhost always)",                                      \
          .s = &(o)->http_allow_host },                                     \
    {                                                                       \
        .names = "http-token-file", .env = "HOMEDESK_HTTP_TOKEN_FILE",      \
        .type = HD_OPT_STRING, .arg = "FILE",                               \
        .help = "token (first line of FILE) the admin page and /metrics "   \
                "want (open /?token=TOKEN once, or send it as a bearer)",   \
        .s = &(o)->http_token_file                                          \
    }

/* Options shared by every mode; `o` is filled in place.  key_def: hbbs
 * and homedesk-server check a key by default ("-"), hbbr does not (""), as
 * RustDesk's hbbr. */
#define COMMON_OPTS(o, key_def)                                              \
    { .names = "h,help",                                                     \
      .type = HD_OPT_FLAG,                                                   \
      .flags = HD_OPT_ARGV_ONLY,                                             \
      .help = "show this help and exit",                                     \
      .b = &(o)->help },                                                     \
        { .names = "V,version",                                              \
          .type = HD_OPT_FLAG,                                               \
          .flags = HD_OPT_ARGV_ONLY,                                         \
          .help = "show the version and exit",                               \
          .b = &(o)->version },                                              \
        HD_OPT_HELP_MAN(&(o)->help_man),                                     \
        { .names = "v,verbose",                                              \
          .type = HD_OPT_COUNT,                                              \
          .help = "more log detail (-vv for trace)",                         \
          .i = &(o)->verbose },                                              \
        { .names = "log-level",                                              \
          .env = "HOMEDESK_LOG_LEVEL,RUST_LOG",                              \
          .type = HD_OPT_STRING,                                             \
          .arg = "LEVEL",                                                    \
          .help = "error, warn, info, debug or trace",                       \
          .def = "info",                                                     \
          .s = &(o)->log_level },                                            \
        HD_OPT_LOG_FILE(&(o)->log_file),                                     \
        { .names = "data-dir",                                               \
          .env = "HOMEDESK_DATA_DIR",                                        \
          .type = HD_OPT_STRING,                                             \
          .arg = "DIR",                                                      \
          .def = ".",                                                        \
          .help = "keys, db_v2.sqlite3, blacklist.txt and blocklist.txt",    \
          .s = &(o)->data_dir },                                             \
        { .names = "c,config",                                               \
          .env = "HOMEDESK_CONFIG",                                          \
          .type = HD_OPT_STRING,                                             \
          .flags = HD_OPT_ARGV_ONLY,                                         \
          .arg = "FILE",                                                     \
          .help = "read options from FILE (key = value lines)",              \
          .s = &(o)->config_file },                                          \
        { .names = "b,bind",                                                 \
          .env = "HOMEDESK_BIND,BIND",                                       \
          .type = HD_OPT_STRING,                                             \
          .arg = "IP",                                                       \
          .def = "::",                                                       \
          .help = "address to listen on (:: = every IPv4 and IPv6 address)", \
          .s = &(o)->bind },                                                 \
        { .names = "k,key",                                                  \
          .env = "KEY",                                                      \
          .type = HD_OPT_STRING,                                             \
          .flags = HD_OPT_ENV_EMPTY,                                         \
          .arg = "KEY",                                                      \
          .def = (key_def),                                                  \
          .help = "'-' or '_': key files in the data dir, clients must "     \
                  "present their public key; a base64 secret key; '' (also " \
                  "KEY= set but empty) for no key check",                    \
          .s = &(o)->key },                                                  \
        { .names = "first-frame-timeout",                                    \
          .type = HD_OPT_INT,                                                \
          .flags = HD_OPT_HIDDEN,                                            \
          .def = "30000",                                                    \
          .min = 10,                                                         \
          .max = 600000,                                                     \
          .i = &(o)->first_frame_ms },                                       \
        { .names = "idle-timeout",                                           \
          .type = HD_OPT_INT,                                                \
          .flags = HD_OPT_HIDDEN,                                            \
          .def = "30000",                                                    \
          .min = 10,                                                         \
          .max = 3600000,                                                    \
          .i = &(o)->idle_ms },                                              \
    {                                                                        \
        .names = "max-connections", .env = "HOMEDESK_MAX_CONNECTIONS",       \
        .type = HD_OPT_INT, .def = "10000", .min = 1, .max = 1000000,        \
        .arg = "N", .help = "open connections per role at most",             \
        .i = &(o)->max_conns                                                 \
    }

/* hbbr's relay defaults; as hbbr, a value of 0 in hbbs/hbbr mode means
 * the default (homedesk-server: 0 = unlimited where the help says so) */
#define DEF_LIMIT_SPEED         32
#define DEF_TOTAL_BW            1024
#define DEF_SINGLE_BW           128
#define DEF_DOWNGRADE_THRESHOLD 0.66
#define DEF_DOWNGRADE_START     1800
#define HD_STR_(x)              #x
#define HD_STR(x)               HD_STR_(x)

#define RELAY_OPTS(o)                                                      \
    { .names = "limit-speed",                                              \
      .env = "LIMIT_SPEED",                                                \
      .type = HD_OPT_DOUBLE,                                               \
      .arg = "MBPS",                                                       \
      .def = HD_STR(DEF_LIMIT_SPEED),                                      \
      .min = 0,                                                            \
      .max = 100000,                                                       \
      .help = "Mb/s of a blacklisted or downgraded connection",            \
      .d = &(o)->limit_speed },                                            \
        { .names = "total-bandwidth",                                      \
          .env = "TOTAL_BANDWIDTH",                                        \
          .type = HD_OPT_DOUBLE,                                           \
          .arg = "MBPS",                                                   \
          .def = HD_STR(DEF_TOTAL_BW),                                     \
          .min = 0,                                                        \
          .max = 1000000,                                                  \
          .help = "Mb/s of the whole relay (0 = unlimited)",               \
          .d = &(o)->total_bw },                                           \
        { .names = "single-bandwidth",                                     \
          .env = "SINGLE_BANDWIDTH",                                       \
          .type = HD_OPT_DOUBLE,                                           \
          .arg = "MBPS",                                                   \
          .def = HD_STR(DEF_SINGLE_BW),                                    \
          .min = 0,                                                        \
          .max = 100000,                                                   \
          .help = "Mb/s of one relayed connection",                        \
          .d = &(o)->single_bw },                                          \
        { .names = "downgrade-threshold",                                  \
          .env = "DOWNGRADE_THRESHOLD",                                    \
          .type = HD_OPT_DOUBLE,                                           \
          .arg = "RATIO",                                                  \
          .def = HD_STR(DEF_DOWNGRADE_THRESHOLD),                          \
          .min = 0,                                                        \
          .max = 1,                                                        \
          .help = "a connection averaging above this share of the single " \
                  "bandwidth is downgraded to the limit speed",            \
          .d = &(o)->downgrade_threshold },                                \
    {                                                                      \
        .names = "downgrade-start-check", .env = "DOWNGRADE_START_CHECK",  \
        .type = HD_OPT_INT, .arg = "SECONDS",                              \
        .def = HD_STR(DEF_DOWNGRADE_START), .min = 0, .max = 86400 * 365,  \
        .help = "age of a connection before downgrade",                    \
        .i = &(o)->downgrade_start                                         \
    }

#define RDV_OPTS(o)                                                           \
    { .names = "r,relay,relay-servers",                                       \
      .env = "RELAY,RELAY_SERVERS",                                           \
      .type = HD_OPT_STRING,                                                  \
      .arg = "HOST[:PORT][,..]",                                              \
      .help = "relay server(s) handed to clients (default: the one they "     \
              "reach this server by)",                                        \
      .s = &(o)->relay },                                                     \
        { .names = "R,rendezvous-servers",                                    \
          .env = "RENDEZVOUS_SERVERS",                                        \
          .type = HD_OPT_STRING,                                              \
          .arg = "HOSTS",                                                     \
          .help = "rendezvous servers announced to clients (with --serial)",  \
          .s = &(o)->rendezvous_servers },                                    \
        { .names = "s,serial",                                                \
          .env = "SERIAL",                                                    \
          .type = HD_OPT_INT,                                                 \
          .arg = "N",                                                         \
          .def = "0",                                                         \
          .min = 0,                                                           \
          .max = INT_MAX,                                                     \
          .help = "configuration serial; clients with a lower one update",    \
          .i = &(o)->serial },                                                \
        { .names = "always-use-relay",                                        \
          .env = "ALWAYS_USE_RELAY",                                          \
          .type = HD_OPT_FLAG,                                                \
          .help = "never hole-punch: always relay",                           \
          .b = &(o)->always_relay },                                          \
        { .names = "mask",                                                    \
          .env = "MASK",                                                      \
          .type = HD_OPT_STRING,                                              \
          .arg = "CIDR",                                                      \
          .help = "this server's LAN, e.g. 192.168.0.0/16: LAN peers are "    \
                  "told to use LOCAL_IP as relay",                            \
          .s = &(o)->mask },                                                  \
        { .names = "local-ip",                                                \
          .env = "LOCAL_IP",                                                  \
          .type = HD_OPT_STRING,                                              \
          .arg = "IP",                                                        \
          .help = "relay address for peers inside --mask",                    \
          .s = &(o)->local_ip },                                              \
        { .names = "M,rmem",                                                  \
          .env = "RMEM",                                                      \
          .type = HD_OPT_SIZE,                                                \
          .arg = "N",                                                         \
          .def = "0",                                                         \
          .min = 0,                                                           \
          .max = 1LL << 30,                                                   \
          .help = "UDP receive buffer size (0 = system default)",             \
          .u = &(o)->rmem },                                                  \
        { .names = "u,software-url",                                          \
          .env = "SOFTWARE_URL",                                              \
          .type = HD_OPT_STRING,                                              \
          .flags = HD_OPT_HIDDEN,                                             \
          .s = &(o)->software_url },                                          \
        { .names = "trusted-proxy",                                           \
          .env = "HOMEDESK_TRUSTED_PROXY",                                    \
          .type = HD_OPT_STRING,                                              \
          .arg = "IP",                                                        \
          .help = "honour X-Forwarded-For/X-Real-IP on WebSocket ports from " \
                  "this proxy only",                                          \
          .s = &(o)->trusted_proxy },                                         \
        { .names = "no-websocket",                                            \
          .env = "HOMEDESK_NO_WEBSOCKET",                                     \
          .type = HD_OPT_FLAG,                                                \
          .help = "do not listen on the WebSocket ports",                     \
          .b = &(o)->no_ws },                                                 \
    {                                                                         \
        .names = "no-key-exchange", .type = HD_OPT_FLAG,                      \
        .flags = HD_OPT_HIDDEN, .b = &(o)->no_key_exchange                    \
    }

/*
 * hbbs and hbbr read every setting through the environment, in any
 * spelling (RELAY-SERVERS, relay_servers: RustDesk's get_arg), and load
 * `.env` in the working directory and hbbs's -c file into it, each
 * overriding the one before: flag > -c file > .env > environment.
 */

/* The canonical spelling of an environment name: upper case, '_'. */
static void hbb_env_name(const char *name, size_t n, char *out, size_t cap)
{
    size_t i;

    for (i = 0; i < n && i + 1 < cap; i++)
        out[i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    out[i] = '\0';
}

/* Give each variable spelled otherwise its canonical name too, unless
 * that one is set (it is the stronger spelling). */
static void hbb_env_canonical(void)
{
    extern char **environ;
    char *copies[64], name[128];
    size_t n = 0;

    for (char **e = environ; *e != NULL && n < 64; e++) {
        const char *eq = strchr(*e, '=');

        if (eq == NULL || (size_t)(eq - *e) >= sizeof(name))
            continue;
        hbb_env_name(*e, (size_t)(eq - *e), name, sizeof(name));
        if (strncmp(name, *e, (size_t)(eq - *e)) != 0 && getenv(name) == NULL &&
            (copies[n] = strdup(*e)) != NULL)
            n++;
    }
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(copies[i], '=');

        hbb_env_name(copies[i], (size_t)(eq - copies[i]), name, sizeof(name));
        if (getenv(name) == NULL)
            setenv(name, eq + 1, 1);
        free(copies[i]);
    }
}

/* Load "NAME=value" lines of an INI file (its first section only) into
 * the environment, replacing what is there.  A missing file is fine for
 * .env; for -c it is said in one line (hbbs goes on without it too). */
static void hbb_env_file(const char *path, bool named)
{
    char line[4096], name[128];
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        if (named || errno != ENOENT)
            fprintf(stderr, "%s: cannot read %s: %s (going on without it)\n",
                    "homedesk-server", path, strerror(errno));
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *k = line, *eq, *v, *end;

        while (isspace((unsigned char)*k))
            k++;
        if (*k == '[')
            break; /* a section: hbbs reads only the first one */
        if (*k == '#' || *k == ';' || (eq = strchr(k, '=')) == NULL)
            continue;
        for (end = eq; end > k && isspace((unsigned char)end[-1]); end--)
            ;
        for (v = eq + 1; isspace((unsigned char)*v); v++)
            ;
        eq = v + strlen(v);
        while (eq > v && isspace((unsigned char)eq[-1]))
            *--eq = '\0';
        if (eq - v >= 2 && (*v == '"' || *v == '\'') && eq[-1] == *v) {
            eq[-1] = '\0';
            v++;
        }
        if (end == k)
            continue;
        hbb_env_name(k, (size_t)(end - k), name, sizeof(name));
        setenv(name, v, 1);
    }
    fclose(f);
}

/* homedesk-server: both roles and the admin port. */
static void table_all(struct opts *o, struct hd_opt *t)
{
    const struct hd_opt all_opts[] = {
        COMMON_OPTS(o, "-"),
        { .names = "role",
          .env = "HOMEDESK_ROLE",
          .type = HD_OPT_CHOICE,
          .arg = "ROLE",
          .def = "all",
          .choices = opts_role_names,
          .help = "all (default), rendezvous (hbbs) or relay (hbbr)",
          .i = &o->role },
        { .names = "p,port",
          .env = "HOMEDESK_PORT,PORT",
          .type = HD_OPT_INT,
          .arg = "N",
          .def = "21116",
          .min = 3,
          .max = 65533,
          .help = "rendezvous port (TCP+UDP); N-1 NAT test, N+2 WebSocket",
          .i = &o->port },
        { .names = "relay-port",
          .env = "HOMEDESK_RELAY_PORT",
          .type = HD_OPT_INT,
          .arg = "M",
          .def = "0",
          .min = 0,
          .max = 65533,
          .help = "relay port (default N+1); M+2 WebSocket relay",
          .i = &o->relay_port },
        { .names = "http-port",
          .env = "HOMEDESK_HTTP_PORT",
          .type = HD_OPT_INT,
          .arg = "H",
          .def = "-1",
          .min = -1,
          .max = 65535,
          .help = "admin page, /metrics, /health (default N-2; 0 = off)",
          .i = &o->http_port },
        HTTP_OPTS(o),
        RDV_OPTS(o),
        RELAY_OPTS(o),
        { 0 }
    };
    _Static_assert(sizeof(all_opts) <= OPTS_MAX * sizeof(all_opts[0]),
                   "the option table grew: raise OPTS_MAX");
    memcpy(t, all_opts, sizeof(all_opts));
}

/* hbbs: the rendezvous role, its flags and environment. */
static void table_hbbs(struct opts *o, struct hd_opt *t)
{
    const struct hd_opt hbbs_opts[] = {
        COMMON_OPTS(o, "-"),
        { .names = "p,port",
          .env = "PORT",
          .type = HD_OPT_INT,
          .arg = "N",
          .def = "21116",
          .min = 3,
          .max = 65533,
          .help = "listening port",
          .i = &o->port },
        { .names = "http-port",
          .env = "HOMEDESK_HTTP_PORT",
          .type = HD_OPT_INT,
          .arg = "H",
          .def = "-1",
          .min = -1,
          .max = 65535,
          .help = "admin page, /metrics, /health (default N-2; 0 = off)",
          .i = &o->http_port },
        HTTP_OPTS(o),
        RDV_OPTS(o),
        { 0 }
    };
    _Static_assert(sizeof(hbbs_opts) <= OPTS_MAX * sizeof(hbbs_opts[0]),
                   "the option table grew: raise OPTS_MAX");
    memcpy(t, hbbs_opts, sizeof(hbbs_opts));
}

/* hbbr: the relay role, its flags and environment. */
static void table_hbbr(struct opts *o, struct hd_opt *t)
{
    const struct hd_opt hbbr_opts[] = {
        COMMON_OPTS(o, ""),
        { .names = "p,port",
          .type = HD_OPT_INT,
          .arg = "N",
          .def = "0",
          .min = 0,
          .max = 65533,
          .help = "listening port (default 21117, or PORT+1 when the PORT "
                  "variable is set)",
          .i = &o->relay_port },
        RELAY_OPTS(o),
        { 0 }
    };
    _Static_assert(sizeof(hbbr_opts) <= OPTS_MAX * sizeof(hbbr_opts[0]),
                   "the option table grew: raise OPTS_MAX");
    memcpy(t, hbbr_opts, sizeof(hbbr_opts));
}

/* What each mode fills in after parsing (hbbr keeps its default for a
 * value that is not above 0). */
static void mode_defaults(struct opts *o, enum mode mode)
{
    if (mode == MODE_HBBS)
        o->role = ROLE_RENDEZVOUS;
    if (mode == MODE_HBBR) {
        o->role = ROLE_RELAY;
        if (o->relay_port == 0) {
            const char *p = getenv("PORT");
            o->relay_port = p && atoi(p) > 0 ? atoi(p) + 1 : 21117;
        }
        o->http_port = 0;
        /* hbbr keeps its default for a value that is not above 0 */
        if (o->limit_speed <= 0)
            o->limit_speed = DEF_LIMIT_SPEED;
        if (o->total_bw <= 0)
            o->total_bw = DEF_TOTAL_BW;
        if (o->single_bw <= 0)
            o->single_bw = DEF_SINGLE_BW;
        if (o->downgrade_threshold <= 0)
            o->downgrade_threshold = DEF_DOWNGRADE_THRESHOLD;
        if (o->downgrade_start <= 0)
            o->downgrade_start = DEF_DOWNGRADE_START;
    }
    if (o->port == 0)
        o->port = 21116;
    if (o->relay_port == 0)
        o->relay_port = o->port + 1;
    if (o->http_port < 0)
        o->http_port = mode == MODE_HBBR ? 0 : o->port - 2;
}

int opts_parse(struct opts *o, enum mode mode, int argc, char **argv,
               struct hd_opt *table, struct hd_config *cfg)
{
    const char *prog = mode == MODE_HBBS   ? "hbbs"
                       : mode == MODE_HBBR ? "hbbr"
                                           : "homedesk-server";
    int r;

    memset(o, 0, sizeof(*o));
    o->http_port = -1;
    if (mode == MODE_HBBS)
        table_hbbs(o, table);
    else if (mode == MODE_HBBR)
        table_hbbr(o, table);
    else
        table_all(o, table);
    if ((r = hd_config_init(cfg, prog, table)) != 0 ||
        (r = hd_config_parse_args(cfg, argc, argv)) != 0)
        return r;
    if (mode != MODE_HOMEDESK && !o->help && !o->help_man) {
        hbb_env_canonical();
        hbb_env_file(".env", false);
        if (o->config_file != NULL)
            hbb_env_file(o->config_file, true);
    }
    if ((r = hd_config_parse_env(cfg)) != 0)
        return r;
    /* a secret key given with -k: out of ps and /proc/PID/cmdline now */
    hd_config_scrub_secret(argc, argv, "key", 'k', "KEY");
    if (o->help_man) {
        o->help = true; /* main exits as after --help */
        hd_config_print_man(table, stdout);
        return 0;
    }
    if (o->help) {
        hd_config_print_help(
            table, prog,
            mode == MODE_HOMEDESK ? "[OPTIONS] [check HOST[:PORT]]" : NULL,
            stdout);
        if (mode == MODE_HOMEDESK)
            printf("\nInvoked as hbbs or hbbr (a symlink of that name, or "
                   "`homedesk-server hbbs ...`,\n`homedesk-server hbbr ...`) "
                   "it is RustDesk's rendezvous or relay server:\ntheir "
                   "flags, environment, .env file and defaults (hbbr checks "
                   "no key\nunless given -k or KEY); `homedesk-server hbbs "
                   "--help` lists them.\n");
        return 0;
    }
    if (mode == MODE_HOMEDESK && o->config_file != NULL &&
        (r = hd_config_parse_file(cfg, o->config_file, true)) != 0)
        return r;
    mode_defaults(o, mode);
    return 0;
}

bool opts_given(const struct hd_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nopts; i++) {
        const char *n = cfg->opts[i].names, *c = strchr(n, ',');
        size_t len = strlen(name);

        if (c != NULL && c - n == 1) /* a short name first */
            n = c + 1;
        if (strncmp(n, name, len) == 0 && (n[len] == ',' || n[len] == '\0'))
            return hd_config_source(cfg, i) != HD_CONFIG_DEFAULT;
    }
    return false;
}

enum mode opts_detect_mode(int *argc, char ***argv)
{
    const char *base = strrchr((*argv)[0], '/');

    base = base ? base + 1 : (*argv)[0];
    if (strcmp(base, "hbbs") == 0)
        return MODE_HBBS;
    if (strcmp(base, "hbbr") == 0)
        return MODE_HBBR;
    if (*argc > 1 &&
        (strcmp((*argv)[1], "hbbs") == 0 || strcmp((*argv)[1], "hbbr") == 0)) {
        enum mode m = (*argv)[1][3] == 's' ? MODE_HBBS : MODE_HBBR;
        (*argv)[1] = (*argv)[0];
        (*argc)--;
        (*argv)++;
        return m;
    }
    return MODE_HOMEDESK;
}

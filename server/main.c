/*
 * homedesk-server: rendezvous + relay, a drop-in replacement for RustDesk's
 * hbbs and hbbr.  By default both roles run in one process, sharing the
 * data directory (key files, db_v2.sqlite3, blacklist/blocklist).  Invoked
 * as `hbbs` or `hbbr` (a symlink, or the first argument) it takes their
 * flags and environment so an existing docker-compose works unchanged.
 *
 * Exit status: 0 after a clean stop (SIGINT/SIGTERM), 1 on a runtime error
 * (a port in use, an unreadable key), 2 on a usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "addr.h"
#include "config.h"
#include "crypto.h"
#include "err.h"
#include "log.h"
#include "server/admin.h"
#include "server/check.h"
#include "server/db.h"
#include "server/rdv.h"
#include "server/relay.h"

#define MAX_SERVERS 16

enum role { ROLE_ALL = 0, ROLE_RENDEZVOUS, ROLE_RELAY };
enum mode { MODE_HOMEDESK, MODE_HBBS, MODE_HBBR };

struct opts {
    const char *data_dir, *key, *relay, *rendezvous_servers, *mask;
    const char *local_ip, *bind, *trusted_proxy, *software_url, *log_level;
    const char *config_file, *http_bind, *http_allow_host, *http_token_file;
    const char *log_file;
    int port, relay_port, http_port, role, serial, verbose;
    int first_frame_ms, idle_ms, max_conns;
    uint64_t rmem;
    bool always_relay, help, version, no_ws, no_key_exchange;
    double limit_speed, total_bw, single_bw, downgrade_threshold;
    int downgrade_start;
};

struct server {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm, sighup;
    struct opts o;
    struct hd_sign_key key;
    char licence[128];
    struct db *db;
    struct rdv_config rcfg;
    struct rdv *rdv;
    struct relay_config lcfg;
    struct relay *relay;
    struct admin *admin;
    struct admin_config acfg;
    char http_token[256];
    char *http_hosts[MAX_SERVERS + 1], http_hosts_buf[1024];
    char *relay_list[MAX_SERVERS], *rdv_list[MAX_SERVERS];
    char relay_buf[1024], rdv_buf[1024];
    char local_ip[64];       /* LOCAL_IP's default with --mask */
    char data_dir[PATH_MAX]; /* --data-dir made absolute */
    int dir_lock;            /* fd holding the data dir's lock, or -1 */
    int stopping;
};

static const char *const role_names[] = { "all", "rendezvous", "relay", NULL };

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
        .help = "bearer token (first line of FILE) required for /metrics",  \
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

static int parse_options(struct opts *o, enum mode mode, int argc, char **argv,
                         struct hd_config *cfg)
{
    const char *prog = mode == MODE_HBBS   ? "hbbs"
                       : mode == MODE_HBBR ? "hbbr"
                                           : "homedesk-server";
    const struct hd_opt all_opts[] = {
        COMMON_OPTS(o, "-"),
        { .names = "role",
          .env = "HOMEDESK_ROLE",
          .type = HD_OPT_CHOICE,
          .arg = "ROLE",
          .def = "all",
          .choices = role_names,
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
          .help = "admin HTTP port: /health, /metrics (default N-2; 0 = off)",
          .i = &o->http_port },
        HTTP_OPTS(o),
        RDV_OPTS(o),
        RELAY_OPTS(o),
        { 0 }
    };
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
          .help = "admin HTTP port (default N-2; 0 = off)",
          .i = &o->http_port },
        HTTP_OPTS(o),
        RDV_OPTS(o),
        { 0 }
    };
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
    const struct hd_opt *opts = mode == MODE_HBBS   ? hbbs_opts
                                : mode == MODE_HBBR ? hbbr_opts
                                                    : all_opts;
    int r;

    memset(o, 0, sizeof(*o));
    o->http_port = -1;
    if ((r = hd_config_init(cfg, prog, opts)) != 0 ||
        (r = hd_config_parse_args(cfg, argc, argv)) != 0)
        return r;
    if (mode != MODE_HOMEDESK && !o->help) {
        hbb_env_canonical();
        hbb_env_file(".env", false);
        if (o->config_file != NULL)
            hbb_env_file(o->config_file, true);
    }
    if ((r = hd_config_parse_env(cfg)) != 0)
        return r;
    /* a secret key given with -k: out of ps and /proc/PID/cmdline now */
    hd_config_scrub_secret(argc, argv, "key", 'k', "KEY");
    if (o->help) {
        hd_config_print_help(
            opts, prog,
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
    return 0;
}

/*
 * One rendezvous server per data dir: two would share the database and
 * the key files and hand out each other's peers.  The lock is an flock on
 * the directory itself (no file to leave behind), held until exit; the
 * relay role alone only reads the key and takes none, so hbbs and hbbr
 * may share a directory as they do with RustDesk.
 */
static int lock_data_dir(struct server *s)
{
    s->dir_lock = open(s->o.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_lock < 0) {
        fprintf(stderr, "homedesk-server: cannot open data dir %s: %s\n",
                s->data_dir, strerror(errno));
        return -1;
    }
    if (flock(s->dir_lock, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            fprintf(stderr,
                    "homedesk-server: another homedesk-server already uses "
                    "the data dir %s: stop it, or give this one its own "
                    "--data-dir\n",
                    s->data_dir);
        else
            fprintf(stderr, "homedesk-server: cannot lock data dir %s: %s\n",
                    s->data_dir, strerror(errno));
        close(s->dir_lock);
        s->dir_lock = -1;
        return -1;
    }
    return 0;
}

/* Split "a,b;c" (hbbs separates by ',' or ':' in old versions; we take
 * ',' and ';' so that HOST:PORT stays whole). */
static size_t split_list(const char *s, char *buf, size_t cap, char **out,
                         size_t max)
{
    size_t n = 0;
    char *save = NULL, *tok;

    if (s == NULL || s[0] == '\0')
        return 0;
    snprintf(buf, cap, "%s", s);
    for (tok = strtok_r(buf, ",; ", &save); tok && n < max;
         tok = strtok_r(NULL, ",; ", &save))
        out[n++] = tok;
    return n;
}

/*
 * The key rules of hbbs: '-' or '_' (and '' for signing only) load or
 * create the key files; a base64 secret key is used as is; any other
 * string is a shared secret clients must present, with no signing.  The
 * relay alone (hbbr) signs nothing: with '' it neither reads nor creates
 * key files, as hbbr.
 */
static int setup_key(struct server *s)
{
    const char *k = s->o.key ? s->o.key : "";
    int r;

    if (k[0] == '\0' && s->o.role == ROLE_RELAY)
        return 0;
    if (strcmp(k, "-") == 0 || strcmp(k, "_") == 0 || k[0] == '\0') {
        if ((r = hd_sign_key_load_or_create(s->o.data_dir, &s->key)) != 0) {
            fprintf(stderr,
                    "homedesk-server: cannot load or create the key in "
                    "%s: %s\n",
                    s->o.data_dir, hd_strerror(r));
            return r;
        }
        if (k[0] != '\0')
            hd_base64_encode(s->key.pk, sizeof(s->key.pk), s->licence,
                             sizeof(s->licence));
        return 0;
    }
    if (hd_sign_key_from_base64_sk(k, &s->key) == 0) {
        hd_base64_encode(s->key.pk, sizeof(s->key.pk), s->licence,
                         sizeof(s->licence));
        return 0;
    }
    /* a plain shared key, as hbbs allows: checked, nothing signed */
    snprintf(s->licence, sizeof(s->licence), "%s", k);
    hd_warn("server", "the key is not a base64 Ed25519 secret key: used as "
                      "a shared secret; sessions will not be signed");
    return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;

    if (signum == SIGHUP) {
        if (s->relay != NULL) {
            hd_info("server", "SIGHUP: re-reading blacklist and blocklist");
            relay_reload_lists(s->relay);
        }
        return;
    }
    if (s->stopping)
        return;
    s->stopping = 1;
    hd_info("server", "stopping (signal %d)", signum);
    if (s->rdv)
        rdv_stop(s->rdv);
    if (s->relay)
        relay_stop(s->relay);
    if (s->admin)
        admin_stop(s->admin);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sighup, NULL);
}

static void port_error(int port, const char *proto, int r)
{
    fprintf(stderr, "homedesk-server: cannot listen on %s port %d: %s%s\n",
            proto, port, hd_strerror(r),
            r == UV_EADDRINUSE ? " (is hbbs, hbbr or another homedesk-server "
                                 "running? choose other ports with --port)"
                               : "");
}

static void banner(struct server *s)
{
    const struct opts *o = &s->o;
    char pk[64] = "", ws[16] = "off", wsr[16] = "off";

    if (s->key.sk != NULL)
        hd_base64_encode(s->key.pk, sizeof(s->key.pk), pk, sizeof(pk));
    if (!o->no_ws) {
        snprintf(ws, sizeof(ws), "%d", o->port + 2);
        snprintf(wsr, sizeof(wsr), "%d", o->relay_port + 2);
    }
    hd_info("server", "homedesk-server %s (%s)", HD_VERSION,
            role_names[o->role]);
    if (pk[0])
        hd_info("server", "public key: %s  (the \"Key\" for every client)", pk);
    hd_info("server", "key check: %s",
            s->licence[0] ? "on: clients must present this key"
                          : "off: any client may use this server");
    hd_info("server", "data dir: %s", s->data_dir);
    if (o->role == ROLE_ALL && o->relay_port == o->port + 1)
        hd_info("server", "forward to this machine: TCP %d-%d, UDP %d",
                o->port - 1, o->relay_port + (o->no_ws ? 0 : 2), o->port);
    else if (o->role == ROLE_ALL)
        hd_info("server",
                "forward to this machine: TCP %d-%d and %d-%d, UDP %d",
                o->port - 1, o->port + (o->no_ws ? 0 : 2), o->relay_port,
                o->relay_port + (o->no_ws ? 0 : 2), o->port);
    if (o->role == ROLE_RENDEZVOUS && o->no_ws)
        hd_info("server", "forward to this machine: TCP %d-%d, UDP %d",
                o->port - 1, o->port, o->port);
    else if (o->role == ROLE_RENDEZVOUS)
        hd_info("server",
                "forward to this machine: TCP %d-%d and %d (WebSocket), "
                "UDP %d",
                o->port - 1, o->port, o->port + 2, o->port);
    if (o->role == ROLE_RELAY && o->no_ws)
        hd_info("server", "forward to this machine: TCP %d", o->relay_port);
    else if (o->role == ROLE_RELAY)
        hd_info("server", "forward to this machine: TCP %d and %d (WebSocket)",
                o->relay_port, o->relay_port + 2);
    if (o->role != ROLE_RELAY) {
        char db[DB_PATH_MAX] = "?";

        if (db_path_from_env(o->data_dir, db, sizeof(db)) != 0)
            snprintf(db, sizeof(db), "?");
        hd_info("server",
                "rendezvous: port %d (TCP+UDP), NAT test %d, WebSocket %s; "
                "bind %s; relay for clients %s; always use relay %s; mask "
                "%s; local ip %s; serial %d; rmem %llu; database %s",
                o->port, o->port - 1, ws, o->bind,
                o->relay && o->relay[0] ? o->relay
                                        : "(the address clients reach it by)",
                o->always_relay ? "Y" : "N",
                o->mask && o->mask[0] ? o->mask : "(none)",
                s->rcfg.local_ip && s->rcfg.local_ip[0] ? s->rcfg.local_ip
                                                        : "(none)",
                o->serial, (unsigned long long)o->rmem, db);
    }
    if (o->role != ROLE_RENDEZVOUS)
        hd_info("server",
                "relay: port %d, WebSocket %s; bind %s; bandwidth total %g "
                "Mb/s, single %g Mb/s, limit %g Mb/s, downgrade above %g "
                "after %d s",
                o->relay_port, wsr, o->bind, o->total_bw, o->single_bw,
                o->limit_speed, o->downgrade_threshold, o->downgrade_start);
    if (o->http_port > 0)
        hd_info("server", "admin HTTP on %s port %d (/health, /metrics%s)%s",
                o->http_bind, o->http_port,
                o->http_token_file ? ", with a bearer token" : "",
                strcmp(o->http_bind, "127.0.0.1") == 0
                    ? ": this machine only (--http-bind to widen)"
                    : ": keep it on your LAN");
}

/* The admin endpoint's settings: host names and the token file. */
static int setup_http(struct server *s)
{
    const struct opts *o = &s->o;
    FILE *f;
    size_t n;

    s->acfg.bind_ip = o->http_bind;
    s->acfg.port = (uint16_t)o->http_port;
    s->http_hosts[split_list(o->http_allow_host, s->http_hosts_buf,
                             sizeof(s->http_hosts_buf), s->http_hosts,
                             MAX_SERVERS)] = NULL;
    s->acfg.allowed_hosts = (const char *const *)s->http_hosts;
    if (o->http_token_file == NULL || o->http_token_file[0] == '\0')
        return 0;
    if ((f = fopen(o->http_token_file, "r")) == NULL ||
        fgets(s->http_token, sizeof(s->http_token), f) == NULL) {
        fprintf(stderr,
                "homedesk-server: --http-token-file %s: cannot read a "
                "token from it (%s)\n",
                o->http_token_file, f ? "empty" : strerror(errno));
        if (f)
            fclose(f);
        return HD_ECONFIG;
    }
    fclose(f);
    n = strcspn(s->http_token, "\r\n");
    s->http_token[n] = '\0';
    if (n < 16) {
        fprintf(stderr,
                "homedesk-server: --http-token-file %s: the token is %zu "
                "characters; use at least 16 (e.g. from `openssl rand -hex "
                "16`)\n",
                o->http_token_file, n);
        return HD_ECONFIG;
    }
    s->acfg.token = s->http_token;
    return 0;
}

/* This machine's first IPv4 address that is not loopback (hbbs's default
 * LOCAL_IP when MASK is set).  0, or -ENOENT when there is none. */
static int first_lan_ipv4(char *out, size_t cap)
{
    uv_interface_address_t *ifs;
    int n, r = -ENOENT;

    if (uv_interface_addresses(&ifs, &n) != 0)
        return r;
    for (int i = 0; i < n && r != 0; i++)
        if (!ifs[i].is_internal &&
            ifs[i].address.address4.sin_family == AF_INET)
            r = uv_ip4_name(&ifs[i].address.address4, out, cap);
    uv_free_interface_addresses(ifs, n);
    return r;
}

static int start_roles(struct server *s)
{
    const struct opts *o = &s->o;
    uint16_t failed;
    char dbpath[DB_PATH_MAX];
    int r;

    if (o->role != ROLE_RELAY) {
        if ((r = db_path_from_env(o->data_dir, dbpath, sizeof(dbpath))) != 0 ||
            (r = db_open(dbpath, &s->db)) != 0) {
            fprintf(stderr, "homedesk-server: cannot open the database %s\n",
                    dbpath);
            return r;
        }
        rdv_config_defaults(&s->rcfg);
        s->rcfg.bind_ip = o->bind;
        s->rcfg.port = (uint16_t)o->port;
        s->rcfg.enable_ws = !o->no_ws;
        s->rcfg.key = s->key.sk ? &s->key : NULL;
        s->rcfg.licence_key = s->licence;
        s->rcfg.n_relay_servers =
            split_list(o->relay, s->relay_buf, sizeof(s->relay_buf),
                       s->relay_list, MAX_SERVERS);
        s->rcfg.relay_servers = (const char *const *)s->relay_list;
        s->rcfg.n_rendezvous_servers =
            split_list(o->rendezvous_servers, s->rdv_buf, sizeof(s->rdv_buf),
                       s->rdv_list, MAX_SERVERS);
        s->rcfg.rendezvous_servers = (const char *const *)s->rdv_list;
        s->rcfg.serial = o->serial;
        s->rcfg.always_use_relay = o->always_relay;
        if (o->mask && o->mask[0]) {
            if (hd_cidr_parse(o->mask, &s->rcfg.mask) != 0) {
                fprintf(stderr,
                        "homedesk-server: --mask: '%s' is not a "
                        "CIDR like 192.168.0.0/16\n",
                        o->mask);
                return HD_ECONFIG;
            }
            s->rcfg.has_mask = 1;
        }
        s->rcfg.local_ip = o->local_ip;
        if (s->rcfg.has_mask && (o->local_ip == NULL || !o->local_ip[0]) &&
            first_lan_ipv4(s->local_ip, sizeof(s->local_ip)) == 0)
            s->rcfg.local_ip = s->local_ip; /* as hbbs: this machine's */
        s->rcfg.trusted_proxy = o->trusted_proxy;
        s->rcfg.key_exchange = !o->no_key_exchange;
        s->rcfg.first_frame_ms = (uint32_t)o->first_frame_ms;
        s->rcfg.idle_ms = (uint32_t)o->idle_ms;
        s->rcfg.max_conns = (uint32_t)o->max_conns;
        s->rcfg.rmem = o->rmem;
        if ((r = rdv_new(&s->loop, &s->rcfg, s->db, &s->rdv)) != 0)
            return r;
        if ((r = rdv_start(s->rdv, &failed)) != 0) {
            port_error(failed, failed == o->port ? "TCP/UDP" : "TCP", r);
            return r;
        }
    }
    if (o->role != ROLE_RENDEZVOUS) {
        relay_config_defaults(&s->lcfg);
        s->lcfg.bind_addr = o->bind;
        s->lcfg.port = o->relay_port;
        s->lcfg.ws_port = o->no_ws ? -1 : o->relay_port + 2;
        s->lcfg.trusted_proxy = o->trusted_proxy;
        s->lcfg.key = s->licence;
        s->lcfg.data_dir = o->data_dir;
        s->lcfg.single_mbps = o->single_bw;
        s->lcfg.total_mbps = o->total_bw;
        s->lcfg.limit_mbps = o->limit_speed;
        s->lcfg.downgrade_threshold = o->downgrade_threshold;
        s->lcfg.downgrade_start_ms = (uint64_t)o->downgrade_start * 1000;
        s->lcfg.first_frame_ms = (unsigned)o->first_frame_ms;
        s->lcfg.pair_wait_ms = (unsigned)o->first_frame_ms;
        s->lcfg.idle_ms = (unsigned)o->idle_ms;
        s->lcfg.max_conns = (unsigned)o->max_conns;
        if ((r = relay_new(&s->loop, &s->lcfg, &s->relay)) != 0)
            return r;
        if ((r = relay_start(s->relay)) != 0) {
            /* the TCP port bound: the WebSocket one failed */
            port_error(relay_port(s->relay) ? o->relay_port + 2 : o->relay_port,
                       "TCP", r);
            return r;
        }
    }
    if (o->http_port > 0) {
        if ((r = setup_http(s)) != 0)
            return r;
        if ((r = admin_new(&s->loop, &s->acfg, s->rdv, s->relay, &s->admin)) !=
            0) {
            port_error(o->http_port, "TCP", r);
            return r;
        }
    }
    return 0;
}

/* The option whose first long name is name was set by the user (command
 * line, environment or config file). */
static bool option_given(const struct hd_config *cfg, const char *name)
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

static enum mode detect_mode(int *argc, char ***argv)
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

int main(int argc, char **argv)
{
    struct server s;
    struct hd_config cfg;
    enum mode mode = detect_mode(&argc, &argv);
    int r, status = 1;

    memset(&s, 0, sizeof(s));
    s.dir_lock = -1;
    memset(&cfg, 0, sizeof(cfg));
    if ((r = parse_options(&s.o, mode, argc, argv, &cfg)) != 0) {
        hd_config_cleanup(&cfg);
        return 2;
    }
    if (s.o.help) {
        hd_config_cleanup(&cfg);
        return 0;
    }
    if (s.o.version) {
        printf("homedesk-server %s\n", HD_VERSION);
        hd_config_cleanup(&cfg);
        return 0;
    }
    if (hd_log_configure(s.o.log_level, s.o.verbose) != 0) {
        fprintf(stderr,
                "homedesk-server: --log-level: '%s' is not one of "
                "error, warn, info, debug, trace\n",
                s.o.log_level);
        hd_config_cleanup(&cfg);
        return 2;
    }
    if (s.o.log_file != NULL && (r = hd_log_open_file(s.o.log_file)) != 0) {
        fprintf(stderr, "homedesk-server: --log-file %s: %s\n", s.o.log_file,
                hd_strerror(r));
        hd_config_cleanup(&cfg);
        return 1;
    }
    if (cfg.nargs > 0 && mode == MODE_HOMEDESK &&
        strcmp(cfg.args[0], "check") == 0) {
        struct check_opts co = { 0 };

        if (cfg.nargs != 2) {
            fprintf(stderr, "usage: homedesk-server check HOST[:PORT] "
                            "[--port N] "
                            "[--relay-port M] [--key KEY]\n");
            hd_config_cleanup(&cfg);
            return 2;
        }
        co.host = cfg.args[1];
        co.port = (uint16_t)s.o.port;
        /* unless given, the relay port follows the rendezvous port, which
         * HOST:PORT may set */
        co.relay_port =
            option_given(&cfg, "relay-port") ? (uint16_t)s.o.relay_port : 0;
        co.ws = !s.o.no_ws;
        /* a public key to test relaying with; "-" (the default) is none */
        co.key = s.o.key && strlen(s.o.key) == 44 ? s.o.key : NULL;
        if (hd_crypto_init() != 0) {
            hd_config_cleanup(&cfg);
            return 1;
        }
        status = check_run(&co);
        hd_config_cleanup(&cfg);
        return status;
    }
    if (cfg.nargs > 0) {
        fprintf(stderr,
                "homedesk-server: unexpected argument '%s' (try "
                "--help)\n",
                cfg.args[0]);
        hd_config_cleanup(&cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (hd_crypto_init() != 0 || uv_loop_init(&s.loop) != 0) {
        hd_config_cleanup(&cfg);
        return 1;
    }
    if (mkdir(s.o.data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "homedesk-server: cannot create data dir %s: %s\n",
                s.o.data_dir, strerror(errno));
        goto out;
    }
    /* the banner and every message name it in full ("data dir: ." did
     * not say where that was) */
    if (realpath(s.o.data_dir, s.data_dir) == NULL)
        snprintf(s.data_dir, sizeof(s.data_dir), "%s", s.o.data_dir);
    if (s.o.role != ROLE_RELAY && lock_data_dir(&s) != 0)
        goto out;
    if (setup_key(&s) != 0)
        goto out;
    if (start_roles(&s) != 0)
        goto out;
    uv_signal_init(&s.loop, &s.sigint);
    uv_signal_init(&s.loop, &s.sigterm);
    uv_signal_init(&s.loop, &s.sighup);
    s.sigint.data = s.sigterm.data = s.sighup.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sighup, on_signal, SIGHUP);
    banner(&s);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    status = 0;
out:
    if (!s.stopping) {
        if (s.rdv)
            rdv_stop(s.rdv);
        if (s.relay)
            relay_stop(s.relay);
        if (s.admin)
            admin_stop(s.admin);
    }
    uv_run(&s.loop, UV_RUN_DEFAULT); /* let close callbacks run */
    admin_free(s.admin);
    relay_free(s.relay);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    rdv_free(s.rdv);
    db_close(s.db);
    if (s.dir_lock >= 0)
        close(s.dir_lock);
    hd_sign_key_cleanup(&s.key);
    if (uv_loop_close(&s.loop) != 0)
        hd_debug("server", "loop closed with handles still open");
    hd_config_cleanup(&cfg);
    return status;
}

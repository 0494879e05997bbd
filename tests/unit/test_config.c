/* Unit tests for common/config: sources, precedence, types, errors, help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "tests/harness.h"

static struct {
    bool help, always_relay;
    int verbose, port, role, secret_level, http_port;
    uint64_t limit;
    double threshold;
    const char *key, *relay, *dir, *work;
} v;

static const char *const roles[] = { "all", "rendezvous", "relay", NULL };

static const struct hd_opt opts[] = {
    { .names = "h,help",
      .type = HD_OPT_FLAG,
      .flags = HD_OPT_ARGV_ONLY,
      .help = "Show this help.",
      .b = &v.help },
    { .names = "v,verbose",
      .env = "HOMEDESK_VERBOSE",
      .type = HD_OPT_COUNT,
      .help = "More log output; repeat for more.",
      .i = &v.verbose },
    { .names = "p,port",
      .env = "HOMEDESK_PORT,PORT",
      .type = HD_OPT_INT,
      .def = "21116",
      .min = 1,
      .max = 65535,
      .help = "Rendezvous port.",
      .i = &v.port },
    { .names = "k,key",
      .env = "KEY",
      .type = HD_OPT_STRING,
      .flags = HD_OPT_ENV_EMPTY,
      .arg = "KEY",
      .help = "Server key.",
      .s = &v.key },
    { .names = "r,relay,relay-servers,R",
      .env = "HOMEDESK_RELAY,RELAY",
      .type = HD_OPT_STRING,
      .arg = "HOST[:PORT]",
      .help = "Relay handed to clients.",
      .s = &v.relay },
    { .names = "always-use-relay",
      .env = "ALWAYS_USE_RELAY",
      .type = HD_OPT_FLAG,
      .help = "Make every session use the relay.",
      .b = &v.always_relay },
    { .names = "role",
      .env = "HOMEDESK_ROLE",
      .type = HD_OPT_CHOICE,
      .def = "all",
      .choices = roles,
      .help = "Which servers to run", /* no full stop: one is added */
      .i = &v.role },
    { .names = "limit,total-bandwidth",
      .env = "TOTAL_BANDWIDTH",
      .type = HD_OPT_SIZE,
      .def = "1G",
      .min = 1,
      .max = 1LL << 40,
      .help = "Total relay bandwidth.",
      .u = &v.limit },
    { .names = "downgrade-threshold",
      .env = "DOWNGRADE_THRESHOLD",
      .type = HD_OPT_DOUBLE,
      .def = "0.66",
      .min = 0,
      .max = 1,
      .help = "Share of the limit that triggers a downgrade.",
      .d = &v.threshold },
    { .names = "data-dir",
      .env = "HOMEDESK_DATA_DIR",
      .type = HD_OPT_STRING,
      .def = "/var/lib/homedesk",
      .arg = "DIR",
      .help = "Where keys and the database live; a long sentence that has "
              "to be wrapped over more than one line of the help output.",
      .s = &v.dir },
    { .names = "work-dir",
      .type = HD_OPT_STRING,
      .def = ".",
      .help = "Where to work.",
      .s = &v.work },
    { .names = "http-port",
      .type = HD_OPT_INT,
      .def = "-1",
      .min = -1,
      .max = 65535,
      .help = "Admin port.",
      .i = &v.http_port },
    { .names = "M,rmem",
      .type = HD_OPT_INT,
      .flags = HD_OPT_HIDDEN,
      .help = "Compatibility only.",
      .i = &v.secret_level },
    { 0 }
};

static const char *const env_names[] = { "HOMEDESK_VERBOSE",
                                         "HOMEDESK_PORT",
                                         "PORT",
                                         "KEY",
                                         "HOMEDESK_RELAY",
                                         "RELAY",
                                         "ALWAYS_USE_RELAY",
                                         "HOMEDESK_ROLE",
                                         "TOTAL_BANDWIDTH",
                                         "DOWNGRADE_THRESHOLD",
                                         "HOMEDESK_DATA_DIR" };

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
}

static int init(struct hd_config *cfg)
{
    int r;

    clear_env();
    r = hd_config_init(cfg, "homedesk-server", opts);
    cfg->errf = NULL;
    return r;
}

/* Parse a NULL-terminated argument list (argv[0] = "homedesk-server"). */
static int args(struct hd_config *cfg, char **argv)
{
    int argc = 0;

    while (argv[argc] != NULL)
        argc++;
    return hd_config_parse_args(cfg, argc, argv);
}

/* Write text to a fresh temporary file; path receives its name. */
static void write_file(char *path, size_t cap, const char *text)
{
    int fd;

    snprintf(path, cap, "/tmp/hd_test_config_XXXXXX");
    fd = mkstemp(path);
    HT_CHECK(fd >= 0);
    if (fd < 0)
        return;
    HT_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static void defaults(void)
{
    struct hd_config cfg;

    HT_EQ_INT(init(&cfg), 0);
    HT_EQ_INT(v.port, 21116);
    HT_EQ_INT(v.role, 0);
    HT_CHECK(v.limit == 1ULL << 30);
    HT_CHECK(v.threshold > 0.659 && v.threshold < 0.661);
    HT_EQ_STR(v.dir, "/var/lib/homedesk");
    HT_CHECK(v.key == NULL && v.relay == NULL);
    HT_CHECK(!v.help && !v.always_relay && v.verbose == 0);
    HT_EQ_INT(hd_config_source(&cfg, 2), HD_CONFIG_DEFAULT);
    hd_config_cleanup(&cfg);
}

static void precedence(void)
{
    struct hd_config cfg;
    char path[64];
    char *argv[] = { "homedesk-server", "--port", "3000", NULL };

    write_file(path, sizeof(path),
               "# homedesk\n\nport = 1000\nkey = filekey\nrelay = filerelay\n"
               "role = relay\n");

    /* Each source alone. */
    HT_EQ_INT(init(&cfg), 0);
    HT_EQ_INT(hd_config_parse_file(&cfg, path, true), 0);
    HT_EQ_INT(v.port, 1000);
    HT_EQ_INT(hd_config_source(&cfg, 2), HD_CONFIG_FILE);
    hd_config_cleanup(&cfg);

    /* args > env > file > default, whatever the order of the calls. */
    for (int order = 0; order < 2; order++) {
        HT_EQ_INT(init(&cfg), 0);
        setenv("PORT", "2500", 1);
        setenv("HOMEDESK_PORT", "2000", 1); /* listed first: wins */
        setenv("RELAY", "envrelay", 1);
        if (order == 0) {
            HT_EQ_INT(hd_config_parse_file(&cfg, path, true), 0);
            HT_EQ_INT(hd_config_parse_env(&cfg), 0);
            HT_EQ_INT(args(&cfg, argv), 0);
        } else {
            HT_EQ_INT(args(&cfg, argv), 0);
            HT_EQ_INT(hd_config_parse_env(&cfg), 0);
            HT_EQ_INT(hd_config_parse_file(&cfg, path, true), 0);
        }
        HT_EQ_INT(v.port, 3000);
        HT_EQ_INT(hd_config_source(&cfg, 2), HD_CONFIG_ARGS);
        HT_EQ_STR(v.relay, "envrelay");
        HT_EQ_INT(hd_config_source(&cfg, 4), HD_CONFIG_ENV);
        HT_EQ_STR(v.key, "filekey");
        HT_EQ_INT(v.role, 2);
        HT_EQ_STR(v.dir, "/var/lib/homedesk");
        hd_config_cleanup(&cfg);
    }

    /* env without args: the first variable set wins; empty is unset. */
    HT_EQ_INT(init(&cfg), 0);
    setenv("HOMEDESK_PORT", "", 1);
    setenv("PORT", "2500", 1);
    HT_EQ_INT(hd_config_parse_file(&cfg, path, true), 0);
    HT_EQ_INT(hd_config_parse_env(&cfg), 0);
    HT_EQ_INT(v.port, 2500);
    hd_config_cleanup(&cfg);
    clear_env();
    unlink(path);
}

/* HD_OPT_ENV_EMPTY: KEY= set but empty is a value (hbbs: no key check),
 * unset keeps the default; a file's value is still weaker. */
static void empty_env_value(void)
{
    struct hd_config cfg;
    char path[64];

    write_file(path, sizeof(path), "key = filekey\n");
    HT_EQ_INT(init(&cfg), 0);
    HT_EQ_INT(hd_config_parse_env(&cfg), 0);
    HT_CHECK(v.key == NULL);
    hd_config_cleanup(&cfg);

    HT_EQ_INT(init(&cfg), 0);
    setenv("KEY", "", 1);
    HT_EQ_INT(hd_config_parse_file(&cfg, path, true), 0);
    HT_EQ_INT(hd_config_parse_env(&cfg), 0);
    HT_EQ_STR(v.key, "");
    HT_EQ_INT(hd_config_source(&cfg, 3), HD_CONFIG_ENV);
    hd_config_cleanup(&cfg);
    clear_env();
    unlink(path);
}

static void values_and_errors(void)
{
    static const struct {
        const char *arg, *value, *error; /* error NULL = accepted */
    } cases[] = {
        { "--port", "abc",
          "homedesk-server: --port: 'abc' is not a number "
          "(1-65535)" },
        { "--port", "70000",
          "homedesk-server: --port: '70000' is out of "
          "range (1-65535)" },
        { "-p", "0", "homedesk-server: -p: '0' is out of range (1-65535)" },
        { "-p", " 5", "homedesk-server: -p: ' 5' is not a number (1-65535)" },
        { "--port", "5x",
          "homedesk-server: --port: '5x' is not a number "
          "(1-65535)" },
        { "--port", "65535", NULL },
        { "--limit", "16M", NULL },
        { "--limit", "12x",
          "homedesk-server: --limit: '12x' is not a size "
          "(e.g. 512k, 16M) (1-1099511627776)" },
        { "--limit", "2T",
          "homedesk-server: --limit: '2T' is out of range "
          "(1-1099511627776)" },
        { "--limit", "-1",
          "homedesk-server: --limit: '-1' is not a size "
          "(e.g. 512k, 16M) (1-1099511627776)" },
        { "--downgrade-threshold", "0.5", NULL },
        { "--downgrade-threshold", "1.5",
          "homedesk-server: --downgrade-threshold: '1.5' is out of range "
          "(0-1)" },
        { "--downgrade-threshold", "nan",
          "homedesk-server: --downgrade-threshold: 'nan' is not a number "
          "(0-1)" },
        { "--role", "relay", NULL },
        { "--role", "Relay",
          "homedesk-server: --role: 'Relay' is not one of "
          "all, rendezvous, relay" },
        { "--always-use-relay=maybe", NULL,
          "homedesk-server: --always-use-relay: 'maybe' is not yes or no" },
        { "--bogus", NULL,
          "homedesk-server: unknown option '--bogus' (try --help)" },
        { "-x", NULL, "homedesk-server: unknown option '-x' (try --help)" },
        { "--port", NULL,
          "homedesk-server: --port needs a value (try "
          "--help)" },
        { "-vk", NULL, "homedesk-server: -k needs a value (try --help)" },
        { "--verbose=lots", NULL,
          "homedesk-server: --verbose: 'lots' is not "
          "a number" },
    };
    struct hd_config cfg;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[] = { "homedesk-server", (char *)cases[i].arg,
                         (char *)cases[i].value, NULL };
        int r;

        HT_EQ_INT(init(&cfg), 0);
        r = args(&cfg, argv);
        if (cases[i].error == NULL) {
            HT_EQ_INT(r, 0);
        } else {
            HT_EQ_INT(r, HD_ECONFIG);
            HT_EQ_STR(cfg.error, cases[i].error);
        }
        if (i == 5)
            HT_EQ_INT(v.port, 65535);
        if (i == 6)
            HT_CHECK(v.limit == 16ULL << 20);
        if (i == 10)
            HT_CHECK(v.threshold == 0.5);
        if (i == 13)
            HT_EQ_INT(v.role, 2);
        hd_config_cleanup(&cfg);
    }

    /* sizes: suffixes and spellings */
    {
        static const struct {
            const char *s;
            uint64_t want;
        } sizes[] = {
            { "1", 1 },        { "1k", 1024 },        { "1KiB", 1024 },
            { "3M", 3 << 20 }, { "2GB", 2ULL << 30 }, { "1T", 1ULL << 40 }
        };
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            char *argv[] = { "homedesk-server", "--limit", (char *)sizes[i].s,
                             NULL };
            HT_EQ_INT(init(&cfg), 0);
            HT_EQ_INT(args(&cfg, argv), 0);
            HT_CHECK(v.limit == sizes[i].want);
            hd_config_cleanup(&cfg);
        }
    }

    /* booleans from the environment, as the hbbs image spells them */
    {
        static const struct {
            const char *s;
            int want; /* -1 = rejected */
        } bools[] = {
            { "Y", 1 },     { "yes", 1 }, { "1", 1 },  { "TRUE", 1 },
            { "on", 1 },    { "N", 0 },   { "no", 0 }, { "0", 0 },
            { "false", 0 }, { "off", 0 }, { "2", -1 }, { "yess", -1 }
        };
        for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
            HT_EQ_INT(init(&cfg), 0);
            setenv("ALWAYS_USE_RELAY", bools[i].s, 1);
            if (bools[i].want < 0) {
                char want[128];
                snprintf(want, sizeof(want),
                         "homedesk-server: ALWAYS_USE_RELAY: '%s' is not yes "
                         "or no",
                         bools[i].s);
                HT_EQ_INT(hd_config_parse_env(&cfg), HD_ECONFIG);
                HT_EQ_STR(cfg.error, want);
            } else {
                HT_EQ_INT(hd_config_parse_env(&cfg), 0);
                HT_EQ_INT(v.always_relay, bools[i].want);
            }
            hd_config_cleanup(&cfg);
        }
        clear_env();
    }

    /* an environment value is checked like any other */
    HT_EQ_INT(init(&cfg), 0);
    setenv("PORT", "0", 1);
    HT_EQ_INT(hd_config_parse_env(&cfg), HD_ECONFIG);
    HT_EQ_STR(cfg.error,
              "homedesk-server: PORT: '0' is out of range (1-65535)");
    hd_config_cleanup(&cfg);
    clear_env();

    /* control characters in a bad value cannot break the line */
    {
        char *argv[] = { "homedesk-server", "--port", "1\n2", NULL };
        HT_EQ_INT(init(&cfg), 0);
        HT_EQ_INT(args(&cfg, argv), HD_ECONFIG);
        HT_EQ_STR(cfg.error, "homedesk-server: --port: '1?2' is not a number "
                             "(1-65535)");
        hd_config_cleanup(&cfg);
    }
}

static void flags_and_counts(void)
{
    struct hd_config cfg;
    char *a1[] = { "homedesk-server", "-vvv", "--always-use-relay", NULL };
    char *a2[] = { "homedesk-server", "-v", "--verbose",
                   "--always-use-relay=no", NULL };

    HT_EQ_INT(init(&cfg), 0);
    HT_EQ_INT(args(&cfg, a1), 0);
    HT_EQ_INT(v.verbose, 3);
    HT_CHECK(v.always_relay);
    hd_config_cleanup(&cfg);

    /* The command line replaces an environment count, then counts up. */
    HT_EQ_INT(init(&cfg), 0);
    setenv("HOMEDESK_VERBOSE", "5", 1);
    setenv("ALWAYS_USE_RELAY", "yes", 1);
    HT_EQ_INT(hd_config_parse_env(&cfg), 0);
    HT_EQ_INT(v.verbose, 5);
    HT_EQ_INT(args(&cfg, a2), 0);
    HT_EQ_INT(v.verbose, 2);
    HT_CHECK(!v.always_relay);
    hd_config_cleanup(&cfg);
    clear_env();
}

static void syntax_and_positional(void)
{
    struct hd_config cfg;
    char *a1[] = {
        "homedesk-server", "check", "--port=100", "-kKEY1", "host", "-", "--",
        "--port",          "-v",    NULL
    };
    char *a2[] = { "homedesk-server", "-p",     "200", "--key", "-",
                   "-vp300",          "--key=", NULL };
    char *a3[] = { "homedesk-server", "-vkKEY3", NULL };

    HT_EQ_INT(init(&cfg), 0);
    HT_EQ_INT(args(&cfg, a1), 0);
    HT_EQ_INT(v.port, 100);
    HT_EQ_STR(v.key, "KEY1");
    HT_EQ_INT(v.verbose, 0);
    HT_EQ_INT(cfg.nargs, 5);
    if (cfg.nargs == 5) {
        HT_EQ_STR(cfg.args[0], "check");
        HT_EQ_STR(cfg.args[1], "host");
        HT_EQ_STR(cfg.args[2], "-");
        HT_EQ_STR(cfg.args[3], "--port");
        HT_EQ_STR(cfg.args[4], "-v");
    }
    hd_config_cleanup(&cfg);

    HT_EQ_INT(init(&cfg), 0);
    HT_EQ_INT(args(&cfg, a2), 0);
    HT_EQ_INT(v.port, 300); /* the last one wins */
    HT_EQ_INT(v.verbose, 1);
    HT_EQ_STR(v.key, ""); /* --key= sets an empty string */
    HT_EQ_INT(cfg.nargs, 0);
    hd_config_cleanup(&cfg);

    HT_EQ_INT(init(&cfg), 0);
    HT_EQ_INT(args(&cfg, a3), 0);
    HT_EQ_INT(v.verbose, 1);
    HT_EQ_STR(v.key, "KEY3");
    hd_config_cleanup(&cfg);
}

static void aliases(void)
{
    static const char *const spellings[][2] = {
        { "-r", "a" },
        { "--relay", "b" },
        { "--relay-servers", "c" },
        { "-R", "d" },
    };
    struct hd_config cfg;
    char path[64];

    for (size_t i = 0; i < 4; i++) {
        char *argv[] = { "homedesk-server", (char *)spellings[i][0],
                         (char *)spellings[i][1], NULL };
        HT_EQ_INT(init(&cfg), 0);
        HT_EQ_INT(args(&cfg, argv), 0);
        HT_EQ_STR(v.relay, spellings[i][1]);
        hd_config_cleanup(&cfg);
    }
    /* hidden compatibility option still works */
    {
        char *argv[] = { "homedesk-server", "-M", "7", "--rmem=8", NULL };
        HT_EQ_INT(init(&cfg), 0);
        HT_EQ_INT(args(&cfg, argv), 0);
        HT_EQ_INT(v.secret_level, 8);
        hd_config_cleanup(&cfg);
    }
    /* any long name is a file key, '_' and '-' alike */
    write_file(path, sizeof(path),
               "relay_servers = \"quoted # value\"\n"
               "  total-bandwidth=  2M  \n");
    HT_EQ_INT(init(&cfg), 0);
    HT_EQ_INT(hd_config_parse_file(&cfg, path, false), 0);
    HT_EQ_STR(v.relay, "quoted # value");
    HT_CHECK(v.limit == 2ULL << 20);
    hd_config_cleanup(&cfg);
    unlink(path);
}

static void file_errors(void)
{
    static const struct {
        const char *text, *error; /* error after "homedesk-server: PATH:" */
    } cases[] = {
        { "port = 1\nprot = 2\n", "2: unknown option 'prot'" },
        { "# c\nport 5\n", "2: expected 'key = value'" },
        { "port = 0\n", "1: port: '0' is out of range (1-65535)" },
        { "help = yes\n", "1: 'help' is not allowed in a config file" },
        { "p = 5\n", "1: unknown option 'p'" },
    };
    struct hd_config cfg;
    char path[64], want[256], big[5000];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(path, sizeof(path), cases[i].text);
        HT_EQ_INT(init(&cfg), 0);
        HT_EQ_INT(hd_config_parse_file(&cfg, path, true), HD_ECONFIG);
        snprintf(want, sizeof(want), "homedesk-server: %s:%s", path,
                 cases[i].error);
        HT_EQ_STR(cfg.error, want);
        hd_config_cleanup(&cfg);
        unlink(path);
    }

    /* a line longer than the limit */
    memcpy(big, "key = ", 6);
    memset(big + 6, 'a', sizeof(big) - 8);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    write_file(path, sizeof(path), big);
    HT_EQ_INT(init(&cfg), 0);
    HT_EQ_INT(hd_config_parse_file(&cfg, path, true), HD_ECONFIG);
    HT_CHECK(strstr(cfg.error, ":1: line longer than 4096 bytes") != NULL);
    hd_config_cleanup(&cfg);
    unlink(path);

    /* a missing file: fine unless required */
    HT_EQ_INT(init(&cfg), 0);
    HT_EQ_INT(hd_config_parse_file(&cfg, "/nonexistent/homedesk.conf", false),
              0);
    HT_EQ_INT(hd_config_parse_file(&cfg, "/nonexistent/homedesk.conf", true),
              HD_ECONFIG);
    HT_EQ_STR(cfg.error, "homedesk-server: /nonexistent/homedesk.conf: No "
                         "such file or directory");
    hd_config_cleanup(&cfg);
}

static void bad_default(void)
{
    int n = 0;
    const struct hd_opt bad[] = {
        { .names = "n", .type = HD_OPT_INT, .def = "ten", .i = &n }, { 0 }
    };
    struct hd_config cfg;
    FILE *saved;

    /* init prints before the caller can set errf: send it to /dev/null */
    saved = stderr;
    stderr = fopen("/dev/null", "w");
    HT_EQ_INT(hd_config_init(&cfg, "t", bad), HD_ECONFIG);
    fclose(stderr);
    stderr = saved;
    HT_EQ_STR(cfg.error, "t: default of -n: 'ten' is not a number");
    hd_config_cleanup(&cfg);
}

static void help_text(void)
{
    char *text = NULL, *line;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    HT_CHECK(f != NULL);
    if (f == NULL)
        return;
    hd_config_print_help(opts, "homedesk-server", "[OPTIONS] [check HOST]", f);
    fclose(f);
    HT_CHECK(strncmp(text, "Usage: homedesk-server [OPTIONS] [check HOST]\n",
                     46) == 0);
    HT_CHECK(strstr(text, "  -p, --port N") != NULL);
    HT_CHECK(strstr(text, "Rendezvous port. Range: 1-65535. Default: 21116.") !=
             NULL);
    HT_CHECK(strstr(text, "Env: HOMEDESK_PORT, PORT") != NULL);
    HT_CHECK(strstr(text, "  -r, -R, --relay, --relay-servers HOST[:PORT]") !=
             NULL);
    HT_CHECK(strstr(text, "Env: HOMEDESK_RELAY, RELAY") != NULL);
    HT_CHECK(strstr(text, "--role all|rendezvous|relay") != NULL);
    HT_CHECK(strstr(text, "Which servers to run. Default: all.") != NULL);
    HT_CHECK(strstr(text, "Default: 0.66") != NULL);
    /* a string default is quoted ("Default: .." was a typo to the eye),
     * a negative bound spelled out ("-1-65535" likewise) */
    HT_CHECK(strstr(text, "Where to work. Default: '.'.") != NULL);
    HT_CHECK(strstr(text, "Range: -1 to 65535.") != NULL);
    HT_CHECK(strstr(text, "Env: ALWAYS_USE_RELAY") != NULL);
    HT_CHECK(strstr(text, "  -v, --verbose ") != NULL);
    HT_CHECK(strstr(text, "rmem") == NULL); /* hidden */
    /* every line fits in 79 columns, the wrapped sentence included */
    HT_CHECK(strstr(text, "more than one line") != NULL);
    for (line = text; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        if (n > 79)
            ht_fail(__FILE__, __LINE__, "line too long: %.*s", (int)n, line);
        line += n + (line[n] == '\n');
    }
    free(text);
}

/* The man page's OPTIONS body: the entries of --help in roff. */
static void man_text(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    HT_CHECK(f != NULL);
    if (f == NULL)
        return;
    hd_config_print_man(opts, f);
    fclose(f);
    HT_CHECK(strncmp(text, ".TP\n", 4) == 0);
    HT_CHECK(strstr(text,
                    ".TP\n\\fB\\-p, \\-\\-port\\fR \\fIN\\fR\n"
                    "Rendezvous port. Range: 1-65535. Default: 21116.\n"
                    ".br\nEnvironment: \\fBHOMEDESK_PORT, PORT\\fR\n") != NULL);
    HT_CHECK(strstr(text, "\\fB\\-v, \\-\\-verbose\\fR\n") != NULL);
    HT_CHECK(strstr(text, "rmem") == NULL); /* hidden */
    free(text);

    /* roff's specials in text */
    text = NULL;
    f = open_memstream(&text, &len);
    HT_CHECK(f != NULL);
    if (f == NULL)
        return;
    hd_config_man_text(f, "", ".x a\\b", false, "|");
    hd_config_man_text(f, "\\fB", "'y --z", true, "\\fR");
    fclose(f);
    HT_EQ_STR(text, "\\&.x a\\eb|\\fB\\&'y \\-\\-z\\fR");
    free(text);
}

int main(void)
{
    ht_init("config");
    HT_RUN(defaults);
    HT_RUN(precedence);
    HT_RUN(empty_env_value);
    HT_RUN(values_and_errors);
    HT_RUN(flags_and_counts);
    HT_RUN(syntax_and_positional);
    HT_RUN(aliases);
    HT_RUN(file_errors);
    HT_RUN(bad_default);
    HT_RUN(help_text);
    HT_RUN(man_text);
    return ht_finish();
}

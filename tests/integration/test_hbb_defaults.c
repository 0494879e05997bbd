/*
 * hbbs and hbbr defaults, one table: every flag and environment variable
 * of RustDesk's rendezvous (hbbs) and relay (hbbr) servers, as their source
 * reads them (rustdesk-server src/main.rs, src/hbbr.rs, src/common.rs,
 * src/rendezvous_server.rs, src/relay_server.rs, src/peer.rs), and what
 * homedesk-server invoked as hbbs or hbbr does with it.  Each row starts the
 * real program in a fresh working directory with the row's command line,
 * environment and .env file, then checks its start lines (the values in
 * force), which port answers, whether a client without a key is served,
 * and whether key files were written.
 *
 * The program runs in a network namespace of its own (as root), so the
 * rows that need the default ports 21114-21119 cannot meet another test
 * or server on this machine; without root those rows are skipped.
 *
 * Where homedesk differs on purpose, the row says so:
 *   - MASK that is not a CIDR: hbbs ignores it, we refuse to start (exit 1
 *     with one line) rather than serve LAN peers the wrong relay.
 *   - ALWAYS_USE_RELAY: hbbs takes only Y (any case); we also take
 *     1/yes/true/on (and reject what is neither).
 *   - TEST_HBBS and MAX_DATABASE_CONNECTIONS are accepted and have no
 *     effect (no start-up self test; one SQLite connection).
 */
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "tests/harness.h"
#include "tests/integration/support.h"

enum { HBBS, HBBR };
enum { ANY = 0, ON, OFF }; /* key check / key files: not looked at, yes, no */

struct row {
    const char *name;
    int mode;
    const char *args[6]; /* after the program; {P} {P1} {P2} expand */
    const char *env[7];  /* NAME=value; KEY= is set but empty */
    const char *dotenv;  /* .env in the working directory, or NULL */
    const char *cfile;   /* a file passed with -c {CFG}, or NULL */
    const char *listen;  /* a port that must answer on 127.0.0.1 */
    const char *log[4];  /* lines the start must print */
    const char *nolog;   /* a line it must not print */
    int key_check;       /* a client without the key is refused? */
    int key_files;       /* id_ed25519 written in the working dir? */
};

#define DEF_RELAY_BW                                                        \
    "bandwidth total 1024 Mb/s, single 128 Mb/s, limit 32 Mb/s, downgrade " \
    "above 0.66 after 1800 s"

static const struct row rows[] = {
    /* ---- hbbr ---- */
    { .name = "hbbr: nothing set: port 21117 (+2 WebSocket), all "
              "addresses, no key check and no key files, bandwidth defaults",
      .mode = HBBR,
      .listen = "21117",
      .log = { "relay: port 21117, WebSocket 21119; bind ::; " DEF_RELAY_BW,
               "forward to this machine: TCP 21117 and 21119 (WebSocket)" },
      .key_check = OFF,
      .key_files = OFF },
    { .name = "hbbr: KEY= set but empty: no key check, no key files",
      .mode = HBBR,
      .args = { "-p", "{P}" },
      .env = { "KEY=" },
      .listen = "{P}",
      .log = { "key check: off" },
      .key_check = OFF,
      .key_files = OFF },
    { .name = "hbbr: -k _ : key files loaded or made, key checked",
      .mode = HBBR,
      .args = { "-k", "_", "-p", "{P}" },
      .listen = "{P}",
      .log = { "key check: on" },
      .key_check = ON,
      .key_files = ON },
    { .name = "hbbr: KEY=- : key files loaded or made, key checked",
      .mode = HBBR,
      .args = { "-p", "{P}" },
      .env = { "KEY=-" },
      .listen = "{P}",
      .key_check = ON,
      .key_files = ON },
    { .name = "hbbr: PORT=N in the environment listens on N+1",
      .mode = HBBR,
      .env = { "PORT={P}" },
      .listen = "{P1}",
      .log = { "relay: port {P1}, WebSocket {P3}" } },
    { .name = "hbbr: -p N listens on N (and wins over PORT)",
      .mode = HBBR,
      .args = { "--port", "{P}" },
      .env = { "PORT=1000" },
      .listen = "{P}",
      .log = { "relay: port {P}, WebSocket {P2}" } },
    { .name = "hbbr: BIND=127.0.0.1",
      .mode = HBBR,
      .args = { "-p", "{P}" },
      .env = { "BIND=127.0.0.1" },
      .listen = "{P}",
      .log = { "bind 127.0.0.1;" } },
    { .name = "hbbr: bandwidth variables of 0 keep the defaults",
      .mode = HBBR,
      .args = { "-p", "{P}" },
      .env = { "LIMIT_SPEED=0", "TOTAL_BANDWIDTH=0", "SINGLE_BANDWIDTH=0",
               "DOWNGRADE_THRESHOLD=0", "DOWNGRADE_START_CHECK=0" },
      .listen = "{P}",
      .log = { DEF_RELAY_BW } },
    { .name = "hbbr: bandwidth variables",
      .mode = HBBR,
      .args = { "-p", "{P}" },
      .env = { "LIMIT_SPEED=8", "TOTAL_BANDWIDTH=512", "SINGLE_BANDWIDTH=256",
               "DOWNGRADE_THRESHOLD=0.5", "DOWNGRADE_START_CHECK=60" },
      .listen = "{P}",
      .log = { "bandwidth total 512 Mb/s, single 256 Mb/s, limit 8 Mb/s, "
               "downgrade above 0.5 after 60 s" } },
    { .name = "hbbr: .env in the working directory overrides the "
              "environment",
      .mode = HBBR,
      .env = { "KEY=", "PORT=1000" },
      .dotenv = "# as hbbr reads it\nKEY = _\nport={P}\n",
      .listen = "{P1}",
      .log = { "relay: port {P1}", "key check: on" },
      .key_check = ON,
      .key_files = ON },
    { .name = "hbbr: RUST_LOG=warn leaves the info lines out",
      .mode = HBBR,
      .args = { "-p", "{P}" },
      .env = { "RUST_LOG=warn" },
      .listen = "{P}",
      .nolog = "relay: port" },

    /* ---- hbbs ---- */
    { .name = "hbbs: nothing set: ports 21116 (TCP+UDP), 21115, 21118, "
              "key files and key check, relay derived by clients, "
              "ALWAYS_USE_RELAY N, no mask, serial 0, rmem 0, "
              "./db_v2.sqlite3",
      .mode = HBBS,
      .listen = "21116",
      .log = { "rendezvous: port 21116 (TCP+UDP), NAT test 21115, WebSocket "
               "21118; bind ::; relay for clients (the address clients reach "
               "it by); always use relay N; mask (none); local ip (none); "
               "serial 0; rmem 0; database ./db_v2.sqlite3",
               "forward to this machine: TCP 21115-21116 and 21118 "
               "(WebSocket), UDP 21116" },
      .key_check = ON,
      .key_files = ON },
    { .name = "hbbs: KEY= set but empty: key files for signing, no key check",
      .mode = HBBS,
      .args = { "-p", "{P}" },
      .env = { "KEY=" },
      .listen = "{P}",
      .log = { "key check: off" },
      .key_check = OFF,
      .key_files = ON },
    { .name = "hbbs: -k '' : no key check",
      .mode = HBBS,
      .args = { "-k", "", "-p", "{P}" },
      .listen = "{P}",
      .key_check = OFF,
      .key_files = ON },
    { .name = "hbbs: PORT=N",
      .mode = HBBS,
      .env = { "PORT={P}" },
      .listen = "{P}",
      .log = { "rendezvous: port {P} (TCP+UDP), NAT test {M1}, WebSocket "
               "{P2}" } },
    { .name = "hbbs: RELAY-SERVERS (any spelling) and -r",
      .mode = HBBS,
      .args = { "-p", "{P}" },
      .env = { "RELAY-SERVERS=relay.example.org:21117" },
      .listen = "{P}",
      .log = { "relay for clients relay.example.org:21117;" } },
    { .name = "hbbs: relay_servers in lower case",
      .mode = HBBS,
      .args = { "-p", "{P}" },
      .env = { "relay_servers=r2.example.org" },
      .listen = "{P}",
      .log = { "relay for clients r2.example.org;" } },
    { .name = "hbbs: -r wins over RELAY_SERVERS",
      .mode = HBBS,
      .args = { "-r", "rustdesk-hbbr:21117", "-p", "{P}" },
      .env = { "RELAY_SERVERS=other.example.org" },
      .listen = "{P}",
      .log = { "relay for clients rustdesk-hbbr:21117;" } },
    { .name = "hbbs: ALWAYS_USE_RELAY=Y",
      .mode = HBBS,
      .args = { "-p", "{P}" },
      .env = { "ALWAYS_USE_RELAY=Y" },
      .listen = "{P}",
      .log = { "always use relay Y;" } },
    { .name = "hbbs: ALWAYS_USE_RELAY=N",
      .mode = HBBS,
      .args = { "-p", "{P}" },
      .env = { "ALWAYS_USE_RELAY=n" },
      .listen = "{P}",
      .log = { "always use relay N;" } },
    { .name = "hbbs: MASK and LOCAL_IP",
      .mode = HBBS,
      .args = { "-p", "{P}" },
      .env = { "MASK=192.168.0.0/16", "LOCAL_IP=192.0.2.7" },
      .listen = "{P}",
      .log = { "mask 192.168.0.0/16; local ip 192.0.2.7;" } },
    { .name = "hbbs: SERIAL, RMEM, BIND, DB_URL, TEST_HBBS, "
              "MAX_DATABASE_CONNECTIONS",
      .mode = HBBS,
      .args = { "-p", "{P}" },
      .env = { "SERIAL=7", "RMEM=65536", "BIND=127.0.0.1", "DB_URL=./x.db",
               "TEST_HBBS=no", "MAX_DATABASE_CONNECTIONS=4" },
      .listen = "{P}",
      .log = { "bind 127.0.0.1;", "serial 7; rmem 65536; database ./x.db" } },
    { .name = "hbbs: flag > -c file > .env > environment",
      .mode = HBBS,
      .args = { "-c", "{CFG}", "-s", "3" },
      .env = { "PORT=1000", "SERIAL=1", "RELAY_SERVERS=env.example.org" },
      .dotenv = "PORT=1000\nrelay-servers=dotenv.example.org\n",
      .cfile = "PORT = {P}\n[a section hbbs does not read]\nPORT=1000\n",
      .listen = "{P}",
      .log = { "rendezvous: port {P} ", "relay for clients dotenv.example.org;",
               "serial 3;" } },
};

static char server[512];
static char top[64];
static int own_netns; /* the default ports are ours alone */
static uint16_t base;
static const struct row *cur;

/* Copy template t into out with {P}, {P1}.. {P3}, {M1} (base-1) and
 * {CFG} (the row's -c file) filled in. */
static void expand(const char *t, const char *dir, char *out, size_t cap)
{
    size_t n = 0;

    while (*t && n + 1 < cap) {
        int w = 0;
        if (strncmp(t, "{P}", 3) == 0)
            w = snprintf(out + n, cap - n, "%u", base), t += 3;
        else if (strncmp(t, "{P", 2) == 0 && t[2] >= '1' && t[2] <= '3' &&
                 t[3] == '}')
            w = snprintf(out + n, cap - n, "%u", base + (t[2] - '0')), t += 4;
        else if (strncmp(t, "{M1}", 4) == 0)
            w = snprintf(out + n, cap - n, "%u", base - 1), t += 4;
        else if (strncmp(t, "{CFG}", 5) == 0)
            w = snprintf(out + n, cap - n, "%s/hbbs.ini", dir), t += 5;
        else
            out[n++] = *t++;
        if (w > 0)
            n += (size_t)w;
    }
    out[n < cap ? n : cap - 1] = '\0';
}

static void write_text(const char *path, const char *t, const char *dir)
{
    char buf[512];
    FILE *f = fopen(path, "w");

    expand(t, dir, buf, sizeof(buf));
    HT_CHECK(f != NULL);
    if (f != NULL) {
        fputs(buf, f);
        fclose(f);
    }
}

/* 1 if a client without a key is refused, 0 if it is served. */
static int hbbs_refuses_keyless(uint16_t port)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *in;
    Hbb__PunchHoleRequest ph = HBB__PUNCH_HOLE_REQUEST__INIT;
    int fd = tcp_connect("127.0.0.1", port), r = -1;

    ph.id = "123123123";
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST;
    m.punch_hole_request = &ph;
    if (fd < 0 || send_msg(fd, &m) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    in = recv_msg(fd, 5000, 1);
    if (in &&
        in->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE)
        r = in->punch_hole_response->failure ==
            HBB__PUNCH_HOLE_RESPONSE__FAILURE__LICENSE_MISMATCH;
    if (in)
        hbb__rendezvous_message__free_unpacked(in, NULL);
    close(fd);
    return r;
}

static int hbbr_refuses_keyless(uint16_t port)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RequestRelay rr = HBB__REQUEST_RELAY__INIT;
    char uuid[40];
    uint8_t buf[8];
    int a = tcp_connect("127.0.0.1", port), b = tcp_connect("127.0.0.1", port);
    int r = -1;

    snprintf(uuid, sizeof(uuid), "defaults-%u", randombytes_random());
    rr.uuid = uuid;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = &rr;
    if (a >= 0 && b >= 0 && send_msg(a, &m) == 0 && send_msg(b, &m) == 0 &&
        send_all(a, "hello", 5) == 0) {
        if (recv(b, buf, 5, MSG_WAITALL) == 5 && memcmp(buf, "hello", 5) == 0)
            r = 0;
        else if (wait_closed(a, 3000))
            r = 1;
    }
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    return r;
}

static void run_row(void)
{
    const struct row *w = cur;
    char dir[128], logpath[160], path[200], buf[512];
    char args[6][256], envs[7][256];
    const char *argv[8], *envp[8];
    size_t na = 0, ne = 0;
    pid_t pid;
    uint16_t listen = 0;

    snprintf(dir, sizeof(dir), "%s/row-XXXXXX", top);
    HT_CHECK(mkdtemp(dir) != NULL);
    snprintf(logpath, sizeof(logpath), "%s/server.log", dir);
    base = test_base_port();
    argv[na] = server;
    envp[0] = NULL;
    /* the image's two forms: the program name as first argument here */
    argv[++na] = w->mode == HBBS ? "hbbs" : "hbbr";
    for (size_t i = 0; i < 6 && w->args[i]; i++) {
        expand(w->args[i], dir, args[i], sizeof(args[i]));
        argv[++na] = args[i];
    }
    argv[++na] = NULL;
    for (size_t i = 0; i < 7 && w->env[i]; i++) {
        expand(w->env[i], dir, envs[i], sizeof(envs[i]));
        envp[ne++] = envs[i];
    }
    envp[ne] = NULL;
    if (w->dotenv) {
        snprintf(path, sizeof(path), "%s/.env", dir);
        write_text(path, w->dotenv, dir);
    }
    if (w->cfile) {
        snprintf(path, sizeof(path), "%s/hbbs.ini", dir);
        write_text(path, w->cfile, dir);
    }
    if (w->listen) {
        expand(w->listen, dir, buf, sizeof(buf));
        listen = (uint16_t)atoi(buf);
    }
    pid = spawn_in(dir, argv, envp, logpath);
    HT_CHECK(pid > 0);
    if (pid <= 0)
        return;
    HT_CHECK(listen == 0 || wait_port(listen, 10000));
    /* the start lines follow the listening sockets */
    HT_CHECK(w->nolog || file_has(logpath, "server: data dir", 10000));
    for (size_t i = 0; i < 4 && w->log[i]; i++) {
        expand(w->log[i], dir, buf, sizeof(buf));
        if (!file_has(logpath, buf, 3000))
            ht_fail(__FILE__, __LINE__, "no line with '%s'", buf);
    }
    if (w->nolog)
        HT_CHECK(!file_has(logpath, w->nolog, 500));
    if (w->key_check != ANY)
        HT_EQ_INT(w->mode == HBBS ? hbbs_refuses_keyless(listen)
                                  : hbbr_refuses_keyless(listen),
                  w->key_check == ON);
    if (w->key_files != ANY) {
        snprintf(path, sizeof(path), "%s/id_ed25519", dir);
        HT_EQ_INT(access(path, F_OK) == 0, w->key_files == ON);
    }
    kill(pid, SIGTERM);
    HT_EQ_INT(wait_exit(pid, 10000), 0);
    if (ht_case_failures() > 0) {
        snprintf(path, sizeof(path), "tail -n 12 %s | sed 's/^/#   /'",
                 logpath);
        if (system(path) != 0)
            printf("# no log\n");
    }
}

/* An unusable MASK: one clear line and exit 1, where hbbs would ignore it. */
static void bad_mask_is_refused(void)
{
    char dir[128], logpath[160], p[16];
    const char *argv[] = { server, "hbbs", "-p", p, NULL };
    const char *env[] = { "MASK=my-lan", NULL };
    pid_t pid;
    int st;

    snprintf(dir, sizeof(dir), "%s/mask-XXXXXX", top);
    HT_CHECK(mkdtemp(dir) != NULL);
    snprintf(logpath, sizeof(logpath), "%s/server.log", dir);
    snprintf(p, sizeof(p), "%u", test_base_port());
    pid = spawn_in(dir, argv, env, logpath);
    if ((st = wait_exit(pid, 10000)) < 0) {
        kill(pid, SIGKILL);
        wait_exit(pid, 5000);
    }
    HT_EQ_INT(st, 1);
    HT_CHECK(file_has(logpath, "'my-lan' is not a CIDR", 0));
}

/* item 8 of issue 12: --help names the hbbs/hbbr invocations */
static void help_names_hbbs_and_hbbr(void)
{
    char logpath[160];
    const char *argv[] = { server, "--help", NULL };
    const char *argv_r[] = { server, "hbbr", "--help", NULL };

    snprintf(logpath, sizeof(logpath), "%s/help.log", top);
    HT_EQ_INT(wait_exit(spawn_in(top, argv, NULL, logpath), 5000), 0);
    HT_CHECK(file_has(logpath, "Invoked as hbbs or hbbr", 0));
    HT_CHECK(file_has(logpath, "`homedesk-server hbbs ...`", 0));
    unlink(logpath);
    HT_EQ_INT(wait_exit(spawn_in(top, argv_r, NULL, logpath), 5000), 0);
    HT_CHECK(file_has(logpath, "Usage: hbbr", 0));
    HT_CHECK(file_has(logpath, "KEY= set but empty", 0));
}

/* A network namespace with only loopback, up; 0 or -1 (not root). */
static int enter_own_netns(void)
{
    struct ifreq ifr;
    int fd, r = -1;

    if (unshare(CLONE_NEWNET) != 0)
        return -1;
    if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
        return -1;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        r = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    close(fd);
    return r;
}

int main(void)
{
    char rel[256], cwd[200], cmd[128];

    ht_init("hbb_defaults");
    if (sodium_init() < 0)
        return 1;
    prog_path("homedesk-server", rel, sizeof(rel));
    if (rel[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL)
        snprintf(server, sizeof(server), "%s/%s", cwd, rel);
    else
        snprintf(server, sizeof(server), "%s", rel);
    snprintf(top, sizeof(top), "/tmp/hd-hbbdef-XXXXXX");
    if (mkdtemp(top) == NULL)
        return 1;
    own_netns = enter_own_netns() == 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        cur = &rows[i];
        if (rows[i].listen && rows[i].listen[0] != '{' && !own_netns)
            ht_skip(rows[i].name, "the default ports need a network "
                                  "namespace of our own (run as root)");
        else
            ht_run(rows[i].name, run_row);
    }
    HT_RUN(bad_mask_is_refused);
    HT_RUN(help_names_hbbs_and_hbbr);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
    if (getenv("HD_KEEP_TMP") == NULL && system(cmd) != 0)
        return 1;
    return ht_finish();
}

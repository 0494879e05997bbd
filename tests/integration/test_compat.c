/*
 * Drop-in compatibility: homedesk-server invoked as hbbs and hbbr (the
 * symlinks a container image ships), in one data directory, the way the
 * usual hbbs + hbbr docker-compose runs them: flags and environment of the
 * reference, keys shared through the directory, a RustDesk-style client
 * served by both.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto.h"
#include "tests/harness.h"
#include "tests/integration/support.h"

static char dir[64], log_s[128], log_r[128];

static char hbbs[512], hbbr[512], server[512];
static uint16_t port, rport;
static pid_t pid_s = -1, pid_r = -1;
static char pk_b64[64];

static int abs_prog(const char *name, char out[512])
{
    char rel[256], cwd[200];

    prog_path(name, rel, sizeof(rel));
    if (rel[0] == '/') {
        snprintf(out, 512, "%s", rel);
        return 0;
    }
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return -1;
    snprintf(out, 512, "%s/%s", cwd, rel);
    return 0;
}

static int read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return -1;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return 0;
}

static int log_has(const char *path, const char *needle)
{
    static char buf[1 << 16];

    return read_file(path, buf, sizeof(buf)) == 0 &&
           strstr(buf, needle) != NULL;
}

static Hbb__RendezvousMessage relay_hello(Hbb__RequestRelay *rr,
                                          const char *uuid, const char *key)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;

    hbb__request_relay__init(rr);
    rr->uuid = (char *)uuid;
    rr->licence_key = (char *)key;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = rr;
    return m;
}

static void start_like_compose(void)
{
    char p[16], rp[16];
    const char *env[] = { "KEY=_", NULL };

    snprintf(p, sizeof(p), "%u", port);
    snprintf(rp, sizeof(rp), "%u", rport);
    {
        const char *argv[] = { hbbs, "-r", "127.0.0.1", "-p", p, NULL };
        pid_s = spawn_in(dir, argv, env, log_s);
    }
    HT_CHECK(pid_s > 0 && wait_port(port, 10000));
    if (ht_case_failures() > 0) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "tail -5 %s | sed 's/^/#   /'", log_s);
        if (system(cmd) != 0)
            printf("# no hbbs log\n");
    }
    {
        /* the image's other form: the program name as first argument */
        const char *argv[] = { server, "hbbr", "-p", rp, NULL };
        pid_r = spawn_in(dir, argv, env, log_r);
    }
    HT_CHECK(pid_r > 0 && wait_port(rport, 10000));
    HT_CHECK(access("id_ed25519", F_OK) != 0); /* not in the test's cwd */
    {
        char path[128];
        snprintf(path, sizeof(path), "%s/id_ed25519.pub", dir);
        HT_EQ_INT(read_file(path, pk_b64, sizeof(pk_b64)), 0);
        snprintf(path, sizeof(path), "%s/db_v2.sqlite3", dir);
        HT_EQ_INT(access(path, F_OK), 0);
    }
    HT_CHECK(strlen(pk_b64) == 44 && strchr(pk_b64, '/') == NULL);
    HT_CHECK(log_has(log_s, pk_b64));
}

static void hbbs_serves_rendezvous(void)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *in;
    Hbb__PunchHoleRequest ph = HBB__PUNCH_HOLE_REQUEST__INIT;
    int fd = tcp_connect("127.0.0.1", port);

    HT_CHECK(fd >= 0);
    ph.id = "123123123";
    ph.licence_key = pk_b64;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST;
    m.punch_hole_request = &ph;
    HT_CHECK(send_msg(fd, &m) == 0);
    in = recv_msg(fd, 3000, 1);
    HT_CHECK(in &&
             in->union_case ==
                 HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE &&
             in->punch_hole_response->failure ==
                 HBB__PUNCH_HOLE_RESPONSE__FAILURE__ID_NOT_EXIST);
    if (in)
        hbb__rendezvous_message__free_unpacked(in, NULL);
    close(fd);
    /* NAT test port is base-1, as hbbs */
    fd = tcp_connect("127.0.0.1", (uint16_t)(port - 1));
    HT_CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    /* hbbs does not run a relay: hbbr has that port */
    HT_CHECK(!log_has(log_s, "relay: listening"));
}

static void hbbr_pairs_with_shared_key(void)
{
    Hbb__RequestRelay rr;
    Hbb__RendezvousMessage m;
    char uuid[40];
    uint8_t buf[64];
    int a = tcp_connect("127.0.0.1", rport);
    int b = tcp_connect("127.0.0.1", rport);
    int bad = tcp_connect("127.0.0.1", rport);

    snprintf(uuid, sizeof(uuid), "compat-%u", randombytes_random());
    m = relay_hello(&rr, uuid, pk_b64);
    HT_CHECK(a >= 0 && b >= 0 && bad >= 0);
    HT_CHECK(send_msg(a, &m) == 0 && send_msg(b, &m) == 0);
    HT_CHECK(send_all(a, "ping-from-a", 11) == 0);
    HT_EQ_INT(recv(b, buf, 11, MSG_WAITALL), 11);
    HT_CHECK(memcmp(buf, "ping-from-a", 11) == 0);
    HT_CHECK(send_all(b, "pong", 4) == 0);
    HT_EQ_INT(recv(a, buf, 4, MSG_WAITALL), 4);
    HT_CHECK(memcmp(buf, "pong", 4) == 0);
    /* a client with another key is dropped */
    m = relay_hello(&rr, "other-uuid",
                    "c29tZSBvdGhlciBrZXkgb2YgMzIgYnl0ZXMgISEhISE=");
    HT_CHECK(send_msg(bad, &m) == 0);
    HT_CHECK(wait_closed(bad, 3000));
    close(a);
    close(b);
    close(bad);
}

static void port_clash_is_one_clear_line(void)
{
    char p[16], path[128], out[4096];
    /* a data dir of its own: the running one's is locked, and that would
     * be the first complaint */
    const char *argv[] = { hbbs, "-p", p, "--data-dir", "clash", NULL };
    pid_t pid;

    snprintf(p, sizeof(p), "%u", port);
    snprintf(path, sizeof(path), "%s/clash.log", dir);
    pid = spawn_in(dir, argv, NULL, path);
    HT_EQ_INT(wait_exit(pid, 5000), 1);
    HT_EQ_INT(read_file(path, out, sizeof(out)), 0);
    HT_CHECK(strstr(out, "address already in use") != NULL);
    HT_CHECK(strstr(out, "--port") != NULL);
}

static void help_and_version(void)
{
    char path[128], out[16384];
    const char *argv[] = { hbbs, "--help", NULL };
    const char *argv2[] = { server, "--version", NULL };
    const char *argv3[] = { server, "--port", "abc", NULL };

    snprintf(path, sizeof(path), "%s/help.log", dir);
    HT_EQ_INT(wait_exit(spawn_in(dir, argv, NULL, path), 5000), 0);
    HT_EQ_INT(wait_exit(spawn_in(dir, argv2, NULL, path), 5000), 0);
    HT_EQ_INT(wait_exit(spawn_in(dir, argv3, NULL, path), 5000), 2);
    HT_EQ_INT(read_file(path, out, sizeof(out)), 0);
    HT_CHECK(strstr(out, "-k, --key") != NULL);
    HT_CHECK(strstr(out, "ALWAYS_USE_RELAY") != NULL);
    HT_CHECK(strstr(out, "homedesk-server " HD_VERSION) != NULL);
    HT_CHECK(strstr(out, "'abc' is not a number") != NULL);
}

int main(void)
{
    char cmd[512];

    ht_init("compat");
    if (sodium_init() < 0)
        return 1;
    snprintf(dir, sizeof(dir), "/tmp/hd-compat-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(log_s, sizeof(log_s), "%s/hbbs.log", dir);
    snprintf(log_r, sizeof(log_r), "%s/hbbr.log", dir);
    /* absolute paths, as the programs run in the data dir; the links
     * themselves, not their target: the name picks the mode */
    if (abs_prog("hbbs", hbbs) != 0 || abs_prog("hbbr", hbbr) != 0 ||
        abs_prog("homedesk-server", server) != 0)
        return 1;
    port = (uint16_t)(test_base_port());
    rport = (uint16_t)(port + 1);
    HT_RUN(start_like_compose);
    HT_RUN(hbbs_serves_rendezvous);
    HT_RUN(hbbr_pairs_with_shared_key);
    HT_RUN(port_clash_is_one_clear_line);
    HT_RUN(help_and_version);
    if (pid_s > 0)
        kill(pid_s, SIGTERM);
    if (pid_r > 0)
        kill(pid_r, SIGTERM);
    if (pid_s > 0)
        HT_EQ_INT(wait_exit(pid_s, 5000), 0);
    if (pid_r > 0)
        HT_EQ_INT(wait_exit(pid_r, 5000), 0);
    if (getenv("HD_TEST_VERBOSE")) {
        snprintf(cmd, sizeof(cmd), "cat %s %s | sed 's/^/#   /'", log_s, log_r);
        if (system(cmd) != 0)
            return 1;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (getenv("HD_KEEP_TMP") == NULL && system(cmd) != 0)
        return 1;
    return ht_finish();
}

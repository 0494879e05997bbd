/*
 * RustDesk behaviour (issue 12): the real homedesk-server and
 * homedesk-host (fake capture) on loopback, met by our own code doing
 * what RustDesk's apps do per their source, and by the real
 * homedesk-viewer where the point is our viewer's:
 *  - the "Relay server" setting (--relay, the relay key of the host's
 *    host-settings.conf and the viewer's viewer.conf) is used before the relay
 * the server hands out, and a handed-out relay name that does not resolve (hbbs
 * -r rustdesk-hbbr, a compose network's name) falls back to the server's
 * address with the relay's port, said in one log line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/integration/support.h"

#define PASSWORD "rd-behaviour-Pa55"
#define T        10000

static char tmp[256];
static struct srv srv;
static int srv_ok;

/* ---- the real host and viewer -------------------------------------------- */

struct hostp {
    pid_t pid;
    char name[32], cfg[320], out[320], log[320];
    char id[16];
};

/* Start homedesk-host registered with srv; conf (may be NULL) is written
 * to its host-settings.conf first.  0 once the server has its key, or -1. */
static int host_start(struct hostp *h, const char *name, const char *conf,
                      const char *const *extra)
{
    char prog[300], server[64], buf[4096], *p;
    const char *argv[40];
    int n = 0;
    FILE *f;

    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", name);
    snprintf(h->cfg, sizeof(h->cfg), "%s/%s.cfg", tmp, name);
    snprintf(h->out, sizeof(h->out), "%s/%s.out", tmp, name);
    snprintf(h->log, sizeof(h->log), "%s/%s.log", tmp, name);
    mkdir(h->cfg, 0700);
    if (conf != NULL) {
        snprintf(buf, sizeof(buf), "%s/host-settings.conf", h->cfg);
        if ((f = fopen(buf, "w")) == NULL)
            return -1;
        fputs(conf, f);
        fclose(f);
    }
    prog_path("homedesk-host", prog, sizeof(prog));
    snprintf(server, sizeof(server), "127.0.0.1:%u", (unsigned)srv.port);
    argv[n++] = prog;
    argv[n++] = "--server";
    argv[n++] = server;
    argv[n++] = "--key";
    argv[n++] = srv.pk_b64;
    argv[n++] = "--config-dir";
    argv[n++] = h->cfg;
    argv[n++] = "--capture";
    argv[n++] = "fake";
    argv[n++] = "--input";
    argv[n++] = "fake";
    argv[n++] = "--listen";
    argv[n++] = "0";
    argv[n++] = "--password";
    argv[n++] = PASSWORD;
    argv[n++] = "--no-one-time-password";
    argv[n++] = "--no-upnp";
    argv[n++] = "--no-audio";
    argv[n++] = "--no-clipboard";
    argv[n++] = "-v";
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    if ((h->pid = spawn_in(NULL, argv, NULL, h->log)) < 0)
        return -1;
    /* stdout and stderr share the log: "id: N" is in it */
    if (!file_has(h->log, "registered ID ", T))
        return -1;
    f = fopen(h->log, "r");
    buf[f ? fread(buf, 1, sizeof(buf) - 1, f) : 0] = '\0';
    if (f)
        fclose(f);
    if (strncmp(buf, "id: ", 4) == 0)
        p = buf - 1;
    else if ((p = strstr(buf, "\nid: ")) == NULL)
        return -1;
    snprintf(h->id, sizeof(h->id), "%.*s", (int)strspn(p + 5, "0123456789"),
             p + 5);
    return 0;
}

static void host_stop(struct hostp *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGTERM);
        if (wait_exit(h->pid, 5000) < 0) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, NULL, 0);
        }
    }
    h->pid = 0;
}

static void dump(const char *what, const char *path)
{
    char cmd[600];

    printf("# %s:\n", what);
    fflush(stdout);
    snprintf(cmd, sizeof(cmd), "tail -n 25 '%s' | sed 's/^/#   /'", path);
    if (system(cmd) != 0)
        printf("#   (none)\n");
}

/*
 * Run homedesk-viewer --headless by ID to h for one frame, with conf (may
 * be NULL) as its viewer.conf and extra arguments.  Its exit status (-1
 * if it did not exit in time); out gets its stdout and stderr.
 */
static int viewer_run(const struct hostp *h, const char *name, const char *conf,
                      const char *const *extra, char *log, size_t cap)
{
    char prog[300], server[64], dir[320], outdir[340], path[360];
    const char *argv[40], *env[] = { "HOMEDESK_PASSWORD=" PASSWORD, NULL };
    int n = 0, st;
    pid_t pid;
    FILE *f;

    snprintf(dir, sizeof(dir), "%s/%s.cfg", tmp, name);
    snprintf(outdir, sizeof(outdir), "%s/%s.png", tmp, name);
    snprintf(log, cap, "%s/%s.log", tmp, name);
    mkdir(dir, 0700);
    mkdir(outdir, 0700);
    if (conf != NULL) {
        snprintf(path, sizeof(path), "%s/viewer.conf", dir);
        if ((f = fopen(path, "w")) == NULL)
            return -1;
        fputs(conf, f);
        fclose(f);
    }
    prog_path("homedesk-viewer", prog, sizeof(prog));
    snprintf(server, sizeof(server), "127.0.0.1:%u", (unsigned)srv.port);
    argv[n++] = prog;
    argv[n++] = "--server";
    argv[n++] = server;
    argv[n++] = "--key";
    argv[n++] = srv.pk_b64;
    argv[n++] = "--config-dir";
    argv[n++] = dir;
    argv[n++] = "--headless";
    argv[n++] = "--frames";
    argv[n++] = "1";
    argv[n++] = "--out";
    argv[n++] = outdir;
    argv[n++] = "-v";
    for (int i = 0; extra && extra[i] && n < 37; i++)
        argv[n++] = extra[i];
    argv[n++] = h->id;
    argv[n] = NULL;
    if ((pid = spawn_in(NULL, argv, env, log)) < 0)
        return -1;
    if ((st = wait_exit(pid, 30000)) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return st;
}

/* (Re)start the server handing out relay (its -r). */
static int srv_restart_with_relay(const char *relay)
{
    const char *extra[] = { "-r", relay, NULL };

    if (srv.pid > 0)
        srv_stop(&srv);
    return srv_start(&srv, srv.dir, extra);
}

/* ---- the relay setting (item 7) ------------------------------------------ */

/*
 * The server hands out a relay name nobody can resolve, with the right
 * port: host and viewer fall back to the server's address with that port
 * (one log line each) and the session runs through the relay.
 */
static void relay_name_falls_back(void)
{
    const char *force[] = { "--force-relay", NULL };
    char relay[64], vlog[400];
    struct hostp h;

    snprintf(relay, sizeof(relay), "rustdesk-hbbr.invalid:%u",
             (unsigned)srv.relay_port);
    HT_CHECK(srv_restart_with_relay(relay) == 0);
    HT_CHECK(host_start(&h, "fallback-host", NULL, NULL) == 0);
    HT_EQ_INT(
        viewer_run(&h, "fallback-viewer", NULL, force, vlog, sizeof(vlog)), 0);
    HT_CHECK(file_has(vlog, " path=relay ", 10));
    HT_CHECK(file_has(vlog, "relay rustdesk-hbbr.invalid", 10));
    HT_CHECK(file_has(vlog, "does not resolve here", 10));
    HT_CHECK(file_has(h.log, "does not resolve here", 10));
    if (ht_case_failures()) {
        dump("viewer", vlog);
        dump("host", h.log);
        srv_dump_log(&srv);
    }
    host_stop(&h);
}

/*
 * The server hands out a relay that does not answer (port 1): the host's
 * relay from host-settings.conf and the viewer's from --relay (then from
 * viewer.conf) are used first, and the session runs through them.
 */
static void relay_setting_first(void)
{
    const char *arg[] = { "--force-relay", "--relay", NULL, NULL };
    char good[64], conf[96], vlog[400];
    struct hostp h;

    snprintf(good, sizeof(good), "127.0.0.1:%u", (unsigned)srv.relay_port);
    snprintf(conf, sizeof(conf), "# our relay\nrelay = %s\n", good);
    arg[2] = good;
    HT_CHECK(srv_restart_with_relay("127.0.0.1:1") == 0);
    HT_CHECK(host_start(&h, "setting-host", conf, NULL) == 0);
    HT_EQ_INT(viewer_run(&h, "setting-viewer", NULL, arg, vlog, sizeof(vlog)),
              0);
    HT_CHECK(file_has(vlog, " path=relay ", 10));
    if (ht_case_failures())
        dump("viewer (--relay)", vlog);
    /* the same from the viewer's config file */
    arg[1] = NULL;
    HT_EQ_INT(
        viewer_run(&h, "setting-viewer-conf", conf, arg, vlog, sizeof(vlog)),
        0);
    HT_CHECK(file_has(vlog, " path=relay ", 10));
    /* without the setting the handed-out relay fails: the test can fail */
    HT_CHECK(viewer_run(&h, "setting-viewer-none", NULL, arg, vlog,
                        sizeof(vlog)) != 0);
    if (ht_case_failures()) {
        dump("viewer", vlog);
        dump("host", h.log);
        srv_dump_log(&srv);
    }
    host_stop(&h);
}

int main(void)
{
    ht_init("rustdesk");
    snprintf(tmp, sizeof(tmp), "/tmp/hd-rustdesk-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return 1;
    srv_ok = srv_start(&srv, NULL, NULL) == 0;
    if (!srv_ok) {
        ht_skip("all", "homedesk-server did not start");
    } else {
        HT_RUN(relay_name_falls_back);
        HT_RUN(relay_setting_first);
    }
    srv_cleanup(&srv);
    if (getenv("HD_KEEP_TMP") == NULL) {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", tmp);
    }
    return ht_finish();
}

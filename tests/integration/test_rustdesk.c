/*
 * RustDesk behaviour (issue 12): the real homedesk-server and
 * homedesk-host (fake capture) on loopback, met by our own code doing
 * what RustDesk's apps do per their source, and by the real
 * homedesk-viewer where the point is our viewer's:
 *  - the "Relay server" setting (--relay, the relay key of the host's
 *    host-settings.conf and of viewer.conf) is used before the relay the
 *    server hands out, and a handed-out relay name that does not resolve
 *    (hbbs -r rustdesk-hbbr, a compose network's name) falls back to the
 *    server's address with the relay's port, said in one log line;
 *  - RustDesk's web client: PunchHoleRequest with nat_type SYMMETRIC over
 *    the WebSocket rendezvous port, and nothing but a RelayResponse lets it
 *    go on: the host goes to the relay at once (RustDesk's host decision,
 *    rendezvous_mediator.rs handle_punch_hole), the client joins it over
 *    the WebSocket relay port with the uuid, checks the host's key signed
 *    by the server, and logs in (video_ack_required);
 *  - frame acknowledgements (Misc.video_received) as flow control: without
 *    acks no more than a couple of frames arrive, with them video flows.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"
#include "tests/harness.h"
#include "tests/integration/rdpeer.h"
#include "tests/integration/support.h"

#define PASSWORD "rd-behaviour-Pa55"
#define T        10000

static char tmp[256];
static struct srv srv;
static int srv_ok;

/* ---- the real host and viewer -------------------------------------------- */

/* Write text into dir/name.  0 or -1. */
static int write_conf(const char *dir, const char *name, const char *text)
{
    char path[400];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "w")) == NULL)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/*
 * The start of a host's or viewer's command line: program (its path into
 * prog, 300 bytes), --server and --key of srv (server: 64 bytes), its
 * config directory dir (made; settings in dir/conf_name when conf is not
 * NULL).  Returns the number of entries, or -1.
 */
static int common_args(const char **argv, const char *program, char *prog,
                       char *server, const char *dir, const char *conf_name,
                       const char *conf)
{
    int n = 0;

    mkdir(dir, 0700);
    if (conf != NULL && write_conf(dir, conf_name, conf) != 0)
        return -1;
    prog_path(program, prog, 300);
    snprintf(server, 64, "127.0.0.1:%u", (unsigned)srv.port);
    argv[n++] = prog;
    argv[n++] = "--server";
    argv[n++] = server;
    argv[n++] = "--key";
    argv[n++] = srv.pk_b64;
    argv[n++] = "--config-dir";
    argv[n++] = dir;
    return n;
}

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
    if ((n = common_args(argv, "homedesk-host", prog, server, h->cfg,
                         "host-settings.conf", conf)) < 0)
        return -1;
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
    stop_pid(&h->pid);
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
 * if it did not exit in time); log gets the path of its stdout+stderr.
 */
static int viewer_run(const struct hostp *h, const char *name, const char *conf,
                      const char *const *extra, char *log, size_t cap)
{
    char prog[300], server[64], dir[320], outdir[340];
    const char *argv[40], *env[] = { "HOMEDESK_PASSWORD=" PASSWORD, NULL };
    int n = 0, st;
    pid_t pid;

    snprintf(dir, sizeof(dir), "%s/%s.cfg", tmp, name);
    snprintf(outdir, sizeof(outdir), "%s/%s.png", tmp, name);
    snprintf(log, cap, "%s/%s.log", tmp, name);
    mkdir(outdir, 0700);
    if ((n = common_args(argv, "homedesk-viewer", prog, server, dir,
                         "viewer.conf", conf)) < 0)
        return -1;
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

/* (Re)start the server handing out relay (its -r; NULL: its default). */
static int srv_restart_with_relay(const char *relay)
{
    const char *extra[] = { "-r", relay, NULL };

    if (srv.pid > 0)
        srv_stop(&srv);
    return srv_start(&srv, srv.dir, relay != NULL ? extra : NULL);
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

/* ---- RustDesk's web client (items 1 and 4) ---------------------------------
 */

/* The shared host of the web client cases, and the client's session. */
static struct hostp web_host;
static struct rdp web;
static int web_live;

/* One bare rendezvous message over a WebSocket.  0 or -1. */
static int ws_send_rdv(int fd, const Hbb__RendezvousMessage *m)
{
    uint8_t buf[1024];
    size_t n = hbb__rendezvous_message__get_packed_size(m);

    if (n > sizeof(buf))
        return -1;
    hbb__rendezvous_message__pack(m, buf);
    return ws_client_send(fd, buf, n);
}

/* The next rendezvous message of kind, or a PunchHoleResponse, over a
 * WebSocket (others are skipped); NULL on timeout. */
static Hbb__RendezvousMessage *ws_expect_rdv(int fd, int kind, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    uint8_t buf[4096];
    Hbb__RendezvousMessage *m;
    ssize_t n;

    while (now_ms() < deadline) {
        if ((n = ws_client_recv(fd, buf, sizeof(buf),
                                (int)(deadline - now_ms()))) < 0)
            return NULL;
        if ((m = hbb__rendezvous_message__unpack(NULL, (size_t)n, buf)) == NULL)
            return NULL;
        if ((int)m->union_case == kind ||
            m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_RESPONSE)
            return m;
        hbb__rendezvous_message__free_unpacked(m, NULL);
    }
    return NULL;
}

/*
 * As the web client: PunchHoleRequest{SYMMETRIC} on the WebSocket
 * rendezvous port; a RelayResponse must answer (a PunchHoleResponse
 * without failure reads as "ID does not exist" there); its signed IdPk
 * gives the host's key; then the WebSocket relay with the uuid, the
 * handshake and the login.
 */
static void web_client_symmetric(void)
{
    const char *extra[] = { "--fake-interval-ms", "20", NULL };
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *ans = NULL;
    Hbb__PunchHoleRequest ph = HBB__PUNCH_HOLE_REQUEST__INIT;
    Hbb__RequestRelay rr = HBB__REQUEST_RELAY__INIT;
    Hbb__RelayResponse *resp;
    Hbb__Message *lr = NULL;
    uint8_t host_pk[64];
    char got_id[32];
    size_t pklen = 0;
    uint64_t t0;
    int fd = -1, rfd = -1;

    HT_CHECK(srv_restart_with_relay(NULL) == 0);
    HT_CHECK(host_start(&web_host, "web-host", NULL, extra) == 0);
    HT_CHECK((fd = ws_client_connect("127.0.0.1", (uint16_t)(srv.port + 2))) >=
             0);
    ph.id = web_host.id;
    ph.nat_type = HBB__NAT_TYPE__SYMMETRIC;
    ph.licence_key = srv.pk_b64;
    ph.conn_type = HBB__CONN_TYPE__DEFAULT_CONN;
    ph.version = "1.4.0";
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_REQUEST;
    m.punch_hole_request = &ph;
    t0 = now_ms();
    HT_EQ_INT(ws_send_rdv(fd, &m), 0);
    ans = ws_expect_rdv(fd, HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE, T);
    HT_CHECK(ans != NULL);
    if (ans == NULL)
        goto out;
    HT_EQ_INT(ans->union_case, HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE);
    if (ans->union_case != HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE)
        goto out;
    printf("# RelayResponse after %llu ms (the host relays at once)\n",
           (unsigned long long)(now_ms() - t0));
    HT_CHECK(now_ms() - t0 < 5000); /* not after punching for 15 s */
    resp = ans->relay_response;
    HT_CHECK(resp->uuid != NULL && strlen(resp->uuid) >= 32);
    HT_EQ_INT(resp->union_case, HBB__RELAY_RESPONSE__UNION_PK);
    HT_CHECK(resp->union_case == HBB__RELAY_RESPONSE__UNION_PK &&
             hd_idpk_verify(resp->pk.data, resp->pk.len, srv.pk, got_id,
                            sizeof(got_id), host_pk, sizeof(host_pk),
                            &pklen) == 0 &&
             strcmp(got_id, web_host.id) == 0 && pklen == 32);
    HT_CHECK(file_has(web_host.log, "going to the relay", 10));
    /* the web client's relay: the WebSocket port beside the relay's */
    HT_CHECK((rfd = ws_client_connect("127.0.0.1",
                                      (uint16_t)(srv.relay_port + 2))) >= 0);
    rr.uuid = resp->uuid;
    rr.licence_key = srv.pk_b64;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = &rr;
    HT_EQ_INT(ws_send_rdv(rfd, &m), 0);
    HT_EQ_INT(rdp_init(&web, rfd, 1), 0);
    rfd = -1;
    HT_EQ_INT(rdp_handshake(&web, host_pk, web_host.id, T), 0);
    lr = rdp_login(&web, web_host.id, PASSWORD, 1, T);
    HT_CHECK(rdp_logged_in(lr));
    web_live = rdp_logged_in(lr);
out:
    if (lr != NULL)
        hbb__message__free_unpacked(lr, NULL);
    if (ans != NULL)
        hbb__rendezvous_message__free_unpacked(ans, NULL);
    if (fd >= 0)
        close(fd);
    if (rfd >= 0)
        close(rfd);
    if (ht_case_failures()) {
        dump("host", web_host.log);
        srv_dump_log(&srv);
    }
}

/* Send Misc.video_received (an ack) n times. */
static int send_acks(struct rdp *p, int n)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Misc misc = HBB__MISC__INIT;

    misc.union_case = HBB__MISC__UNION_VIDEO_RECEIVED;
    misc.video_received = 1;
    m.union_case = HBB__MESSAGE__UNION_MISC;
    m.misc = &misc;
    while (n-- > 0)
        if (rdp_send(p, &m) != 0)
            return -1;
    return 0;
}

/* Video frames received within ms, each acknowledged when ack. */
static int count_frames(struct rdp *p, int ms, int ack)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    Hbb__Message *m;
    int n = 0;

    while (now_ms() < deadline &&
           (m = rdp_recv(p, (int)(deadline - now_ms()))) != NULL) {
        if (m->union_case == HBB__MESSAGE__UNION_VIDEO_FRAME) {
            n++;
            if (ack)
                send_acks(p, 1);
        } else if (m->union_case == HBB__MESSAGE__UNION_TEST_DELAY &&
                   !m->test_delay->from_client) {
            rdp_send(p, m); /* echo, as every client does */
        }
        hbb__message__free_unpacked(m, NULL);
    }
    return n;
}

/*
 * The client asked for acks (video_ack_required): unacknowledged, no more
 * than a couple of frames come (the fake screen changes every 20 ms);
 * acknowledged, the video flows.
 */
static void acks_pace_video(void)
{
    int held, flowing;

    if (!web_live) {
        HT_CHECK(web_live);
        return;
    }
    held = count_frames(&web, 1500, 0);
    HT_CHECK(held >= 1 && held <= 2);
    HT_EQ_INT(send_acks(&web, held), 0);
    flowing = count_frames(&web, 2000, 1);
    printf("# frames in 1.5 s without acks: %d; in 2 s with acks: %d\n", held,
           flowing);
    HT_CHECK(flowing >= 10);
    if (ht_case_failures())
        dump("host", web_host.log);
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
        HT_RUN(web_client_symmetric);
        HT_RUN(acks_pace_video);
        rdp_cleanup(&web);
        host_stop(&web_host);
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

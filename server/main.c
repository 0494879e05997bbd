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
#include "server/opts.h"
#include "server/rdv.h"
#include "server/rejects.h"
#include "server/relay.h"

#define MAX_SERVERS 16

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
    struct rejects rejects; /* recent refusals, for the admin page */
    char pk_b64[64], key_file[PATH_MAX + 32];
    char http_token[256];
    char *http_hosts[MAX_SERVERS + 1], http_hosts_buf[1024];
    char *relay_list[MAX_SERVERS], *rdv_list[MAX_SERVERS];
    char relay_buf[1024], rdv_buf[1024];
    char local_ip[64];       /* LOCAL_IP's default with --mask */
    char data_dir[PATH_MAX]; /* --data-dir made absolute */
    int dir_lock;            /* fd holding the data dir's lock, or -1 */
    int stopping;
};

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
            opts_role_names[o->role]);
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
        hd_info("server",
                "admin page on http://%s%s%s:%d/ (also /metrics, /health%s)%s",
                strchr(o->http_bind, ':') ? "[" : "",
                strcmp(o->http_bind, "0.0.0.0") == 0 ||
                        strcmp(o->http_bind, "::") == 0
                    ? "127.0.0.1"
                    : o->http_bind,
                strchr(o->http_bind, ':') && strcmp(o->http_bind, "::") != 0
                    ? "]"
                    : "",
                o->http_port, o->http_token_file ? "; wants the token" : "",
                strcmp(o->http_bind, "127.0.0.1") == 0
                    ? ": this machine only (--http-bind to widen; from "
                      "elsewhere: ssh -L)"
                    : ": keep it on your LAN");
}

/* The listeners the admin page lists and checks. */
static void admin_ports(struct server *s)
{
    const struct opts *o = &s->o;
    struct admin_config *c = &s->acfg;
#define PORT(n, p, b, num)                      \
    c->ports[c->nports++] = (struct admin_port) \
    {                                           \
        n, p, b, (uint16_t)(num)                \
    }

    if (o->role != ROLE_RELAY) {
        PORT("rendezvous", "tcp", o->bind, o->port);
        PORT("rendezvous", "udp", o->bind, o->port);
        PORT("NAT test", "tcp", o->bind, o->port - 1);
        if (!o->no_ws)
            PORT("rendezvous (WebSocket)", "tcp", o->bind, o->port + 2);
    }
    if (o->role != ROLE_RENDEZVOUS) {
        PORT("relay", "tcp", o->bind, relay_port(s->relay));
        if (!o->no_ws)
            PORT("relay (WebSocket)", "tcp", o->bind, relay_ws_port(s->relay));
    }
#undef PORT
}

/* The admin endpoint's settings: what the page shows, host names and the
 * token file. */
static int setup_http(struct server *s)
{
    const struct opts *o = &s->o;
    FILE *f;
    size_t n;

    s->acfg.bind_ip = o->http_bind;
    s->acfg.port = (uint16_t)o->http_port;
    s->acfg.role = opts_role_names[o->role];
    s->acfg.data_dir = s->data_dir;
    s->acfg.rejects = &s->rejects;
    s->acfg.key_check = s->licence[0] != '\0';
    if (s->key.sk != NULL) {
        hd_base64_encode(s->key.pk, sizeof(s->key.pk), s->pk_b64,
                         sizeof(s->pk_b64));
        snprintf(s->key_file, sizeof(s->key_file), "%s/id_ed25519.pub",
                 s->data_dir);
        s->acfg.public_key = s->pk_b64;
        s->acfg.key_file = s->key_file;
    }
    admin_ports(s);
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
        s->rcfg.rejects = &s->rejects;
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
        s->lcfg.rejects = &s->rejects;
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

/* `homedesk-server check HOST[:PORT]`: the exit status (2: usage). */
static int run_check(const struct opts *o, const struct hd_config *cfg)
{
    struct check_opts co = { 0 };

    if (cfg->nargs != 2) {
        fprintf(stderr, "usage: homedesk-server check HOST[:PORT] "
                        "[--port N] "
                        "[--relay-port M] [--key KEY]\n");
        return 2;
    }
    co.host = cfg->args[1];
    co.port = (uint16_t)o->port;
    /* unless given, the relay port follows the rendezvous port, which
     * HOST:PORT may set */
    co.relay_port = opts_given(cfg, "relay-port") ? (uint16_t)o->relay_port : 0;
    co.ws = !o->no_ws;
    /* a public key to test relaying with; "-" (the default) is none */
    co.key = o->key && strlen(o->key) == 44 ? o->key : NULL;
    if (hd_crypto_init() != 0)
        return 1;
    return check_run(&co);
}

int main(int argc, char **argv)
{
    struct server s;
    struct hd_config cfg;
    struct hd_opt table[OPTS_MAX]; /* cfg points into it: lives as long */
    enum mode mode = opts_detect_mode(&argc, &argv);
    int r, status = 1;

    memset(&s, 0, sizeof(s));
    s.dir_lock = -1;
    rejects_init(&s.rejects);
    memset(&cfg, 0, sizeof(cfg));
    if ((r = opts_parse(&s.o, mode, argc, argv, table, &cfg)) != 0) {
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
        status = run_check(&s.o, &cfg);
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

/*
 * Rendezvous client of the host.  See reg.h.  Memory: struct reg embeds
 * its UDP socket and timer and is freed when both have closed; the TCP
 * registration link, one-shot answers and relay requests are separate
 * allocations, each freed by its own close callbacks.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "crypto.h"
#include "err.h"
#include "frame.h"
#include "host/punch.h"
#include "host/upunch.h"
#include "host/reg.h"
#include "host/session.h"
#include "log.h"
#include "net.h"
#include "rendezvous.pb-c.h"

#define MOD "reg"

#define REG_MAX_MSG         (64u * 1024)
#define ONESHOT_TIMEOUT_MS  5000
#define NEW_ID_MIN_MS       60000
#define TOO_FREQUENT_MS     30000
#define RELAY_MAX           256
#define REG_NAT_TEST_MS     (10u * 60 * 1000) /* NAT type test again */
#define REG_FIRST_ANSWER_MS 3000 /* no answer by then: find out why */

struct reg_tcp;

struct reg {
    struct host *h;
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int udp_open, resolving, closing, handles;
    struct sockaddr_storage server;
    int have_server;
    char server_name[300];
    unsigned unanswered;
    int silent, registered;
    struct reg_probe *probe; /* a TCP connect to see why nothing answers */
    int probe_err;           /* its last error logged (0: none) */
    int ticks;
    uint64_t last_new_id_ms, pk_backoff_until, natt_at;
    char old_id[IDENT_ID_MAX];
    struct reg_tcp *tcp;
    uint8_t rbuf[REG_MAX_MSG];
};

/* ---- sending ------------------------------------------------------------ */

static int pack(const Hbb__RendezvousMessage *m, uint8_t **out, size_t *len)
{
    return hd_msg_pack(&m->base, out, len);
}

static void send_udp(struct reg *g, const Hbb__RendezvousMessage *m)
{
    uint8_t buf[1024];
    int n;

    if (!g->udp_open || !g->have_server)
        return;
    if ((n = hd_msg_pack_into(&m->base, buf, sizeof(buf))) < 0)
        return;
    hd_net_udp_send(&g->udp, (struct sockaddr *)&g->server, buf, (size_t)n);
}

/* ---- one-shot TCP messages to the server -------------------------------- */

struct oneshot {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t conn;
    uv_shutdown_t sd;
    uint8_t *frame;
    size_t len;
    int handles;
    const char *what;
    uint8_t rbuf[512];
};

static void oneshot_closed(uv_handle_t *hd)
{
    struct oneshot *o = hd->data;

    if (--o->handles == 0) {
        free(o->frame);
        free(o);
    }
}

static void oneshot_end(struct oneshot *o)
{
    hd_net_close((uv_handle_t *)&o->tcp, oneshot_closed);
    hd_net_close((uv_handle_t *)&o->timer, oneshot_closed);
}

static void oneshot_timeout(uv_timer_t *t)
{
    oneshot_end(t->data);
}

static void oneshot_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct oneshot *o = hd->data;

    buf->base = (char *)o->rbuf;
    buf->len = sizeof(o->rbuf);
}

/* Whatever the server says (a KeyExchange offer) is read and dropped:
 * closing with unread bytes would reset the connection and could lose
 * our message.  We close at its EOF or after the timeout. */
static void oneshot_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0)
        oneshot_end(s->data);
}

static void oneshot_shutdown(uv_shutdown_t *req, int status)
{
}

static void oneshot_connected(uv_connect_t *req, int status)
{
    struct oneshot *o = req->data;

    if (status == UV_ECANCELED)
        return;
    if (status != 0 ||
        hd_net_write((uv_stream_t *)&o->tcp, o->frame, o->len, NULL) != 0) {
        hd_warn(MOD, "cannot send %s to the server: %s", o->what,
                uv_strerror(status ? status : UV_EPIPE));
        oneshot_end(o);
        return;
    }
    hd_debug(MOD, "sent %s to the server", o->what);
    o->sd.data = o;
    uv_shutdown(&o->sd, (uv_stream_t *)&o->tcp, oneshot_shutdown);
    uv_read_start((uv_stream_t *)&o->tcp, oneshot_alloc, oneshot_read);
}

/* Send m framed over a fresh TCP connection to the server, from the
 * socket fd when it is >= 0 (taken over: a port the punch uses too). */
static void send_oneshot_fd(struct reg *g, const Hbb__RendezvousMessage *m,
                            const char *what, int fd)
{
    struct oneshot *o = NULL;
    int r;

    if (!g->have_server || (o = calloc(1, sizeof(*o))) == NULL ||
        hd_frame_pack(&m->base, &o->frame, &o->len) != 0) {
        if (fd >= 0)
            close(fd);
        free(o);
        return;
    }
    o->what = what;
    uv_tcp_init(g->loop, &o->tcp);
    uv_timer_init(g->loop, &o->timer);
    o->handles = 2;
    o->tcp.data = o->timer.data = o->conn.data = o;
    uv_timer_start(&o->timer, oneshot_timeout, ONESHOT_TIMEOUT_MS, 0);
    if (fd >= 0 && (r = uv_tcp_open(&o->tcp, fd)) != 0) {
        close(fd);
        hd_warn(MOD, "cannot send %s to the server: %s", what, uv_strerror(r));
        oneshot_end(o);
        return;
    }
    if ((r = uv_tcp_connect(&o->conn, &o->tcp, (struct sockaddr *)&g->server,
                            oneshot_connected)) != 0) {
        hd_warn(MOD, "cannot send %s to the server: %s", what, uv_strerror(r));
        oneshot_end(o);
    }
}

static void send_oneshot(struct reg *g, const Hbb__RendezvousMessage *m,
                         const char *what)
{
    send_oneshot_fd(g, m, what, -1);
}

/* ---- TCP registration (when UDP gets no answer) -------------------------- */

struct reg_tcp {
    struct reg *g; /* NULL once the reg let go of it */
    uv_tcp_t tcp;
    uv_connect_t conn;
    struct hd_frame_decoder dec;
    int connected;
};

static void handle(struct reg *g, const uint8_t *data, size_t n, int via_tcp);
static void register_peer(struct reg *g);

static void tcp_closed(uv_handle_t *hd)
{
    struct reg_tcp *t = hd->data;

    hd_frame_decoder_cleanup(&t->dec);
    free(t);
}

static void tcp_drop(struct reg *g, const char *why)
{
    struct reg_tcp *t = g->tcp;

    if (t == NULL)
        return;
    if (why)
        hd_info(MOD, "TCP registration link closed: %s", why);
    t->g = NULL;
    g->tcp = NULL;
    hd_net_close((uv_handle_t *)&t->tcp, tcp_closed);
}

static void tcp_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct reg_tcp *t = hd->data;

    hd_net_frame_buf(&t->dec, 0, buf);
}

static void tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct reg_tcp *t = s->data;
    const uint8_t *p;
    size_t len;
    int r;

    if (t->g == NULL)
        return;
    if (n < 0) {
        tcp_drop(t->g, n == UV_EOF ? "server closed it" : uv_strerror((int)n));
        return;
    }
    hd_frame_decoder_commit(&t->dec, (size_t)n);
    while (t->g != NULL && (r = hd_frame_decoder_next(&t->dec, &p, &len)) == 1)
        handle(t->g, p, len, 1);
    if (t->g != NULL && r < 0)
        tcp_drop(t->g, hd_strerror(r));
}

static void tcp_connected(uv_connect_t *req, int status)
{
    struct reg_tcp *t = req->data;

    if (status == UV_ECANCELED || t->g == NULL)
        return;
    if (status != 0) {
        hd_debug(MOD, "TCP registration: %s", uv_strerror(status));
        tcp_drop(t->g, NULL);
        return;
    }
    t->connected = 1;
    uv_tcp_nodelay(&t->tcp, 1);
    uv_read_start((uv_stream_t *)&t->tcp, tcp_alloc, tcp_read);
    hd_info(MOD, "registering over TCP with %s", t->g->server_name);
    register_peer(t->g);
}

static void tcp_start(struct reg *g)
{
    struct reg_tcp *t;

    if (g->tcp != NULL || !g->have_server)
        return;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return;
    t->g = g;
    hd_frame_decoder_init(&t->dec, REG_MAX_MSG);
    uv_tcp_init(g->loop, &t->tcp);
    t->tcp.data = t->conn.data = t;
    g->tcp = t;
    if (uv_tcp_connect(&t->conn, &t->tcp, (struct sockaddr *)&g->server,
                       tcp_connected) != 0)
        tcp_drop(g, NULL);
}

/* ---- why does the server not answer? ------------------------------------ */

/*
 * UDP to a server that is not there fails silently, so when the first
 * registration is not answered within a few seconds a TCP connect to the
 * same port says why (refused, no route, timed out), at warning level,
 * once per distinct reason.
 */
struct reg_probe {
    uv_tcp_t tcp;
    uv_connect_t conn;
    struct reg *g; /* NULL once reg_stop let go of it */
};

static void probe_closed(uv_handle_t *hd)
{
    struct reg_probe *p = hd->data;

    free(p);
}

static void probe_say(struct reg *g, int err)
{
    if (g->registered || err == 0 || err == UV_ECANCELED || err == g->probe_err)
        return;
    hd_warn(MOD,
            "cannot reach the rendezvous server %s:%u (%s): %s; is "
            "homedesk-server running there, and the port forwarded? still "
            "trying",
            g->h->server_host, (unsigned)g->h->server_port, g->server_name,
            err == UV_ETIMEDOUT ? "no answer (timed out)" : uv_strerror(err));
    g->probe_err = err;
}

static void probe_connected(uv_connect_t *req, int status)
{
    struct reg_probe *p = req->data;

    if (p->g != NULL) {
        p->g->probe = NULL;
        probe_say(p->g, status);
    }
    hd_net_close((uv_handle_t *)&p->tcp, probe_closed);
}

static void probe_start(struct reg *g)
{
    struct reg_probe *p;

    if (g->probe != NULL || !g->have_server || g->registered)
        return;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return;
    p->g = g;
    uv_tcp_init(g->loop, &p->tcp);
    p->tcp.data = p->conn.data = p;
    if (uv_tcp_connect(&p->conn, &p->tcp, (struct sockaddr *)&g->server,
                       probe_connected) != 0) {
        hd_net_close((uv_handle_t *)&p->tcp, probe_closed);
        return;
    }
    g->probe = p;
}

/* Send on the TCP link if it is up, else by UDP. */
static void send_rdv(struct reg *g, const Hbb__RendezvousMessage *m)
{
    uint8_t *f = NULL;
    size_t n;

    if (g->tcp != NULL && g->tcp->connected) {
        if (hd_frame_pack(&m->base, &f, &n) == 0 &&
            hd_net_write((uv_stream_t *)&g->tcp->tcp, f, n, NULL) != 0)
            tcp_drop(g, "write failed");
        free(f);
    }
    if (g->h->o->reg_tcp != 1)
        send_udp(g, m);
}

/* ---- registration ------------------------------------------------------- */

static void register_peer(struct reg *g)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPeer rp = HBB__REGISTER_PEER__INIT;

    rp.id = g->h->ident.id;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER;
    m.register_peer = &rp;
    send_rdv(g, &m);
}

static void register_pk(struct reg *g)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RegisterPk rk = HBB__REGISTER_PK__INIT;
    struct ident *id = &g->h->ident;

    if (uv_now(g->loop) < g->pk_backoff_until)
        return;
    rk.id = id->id;
    rk.uuid.data = (uint8_t *)id->uuid;
    rk.uuid.len = strlen(id->uuid);
    rk.pk.data = id->key.pk;
    rk.pk.len = HD_SIGN_PK_BYTES;
    rk.old_id = g->old_id;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK;
    m.register_pk = &rk;
    send_rdv(g, &m);
}

static void new_id(struct reg *g, const char *why)
{
    uint64_t now = uv_now(g->loop);
    int r;

    if (g->last_new_id_ms != 0 && now - g->last_new_id_ms < NEW_ID_MIN_MS) {
        hd_warn(MOD, "server refuses ID %s (%s); waiting before a new one",
                g->h->ident.id, why);
        return;
    }
    g->last_new_id_ms = now;
    if ((r = ident_new_id(&g->h->ident, g->old_id)) != 0)
        return;
    hd_warn(MOD,
            "server refuses ID %s (%s: registered to another machine); "
            "switching to the new ID %s",
            g->old_id, why, g->h->ident.id);
    printf("id: %s\n", g->h->ident.id);
    fflush(stdout);
    g->registered = 0;
    register_pk(g);
}

static void on_pk_response(struct reg *g, const Hbb__RegisterPkResponse *r)
{
    switch (r->result) {
    case HBB__REGISTER_PK_RESPONSE__RESULT__OK:
        if (!g->registered)
            hd_info(MOD, "registered ID %s with %s", g->h->ident.id,
                    g->server_name);
        g->registered = 1;
        g->old_id[0] = '\0';
        break;
    case HBB__REGISTER_PK_RESPONSE__RESULT__UUID_MISMATCH:
        new_id(g, "UUID_MISMATCH");
        break;
    case HBB__REGISTER_PK_RESPONSE__RESULT__ID_EXISTS:
        new_id(g, "ID_EXISTS");
        break;
    case HBB__REGISTER_PK_RESPONSE__RESULT__INVALID_ID_FORMAT:
        new_id(g, "INVALID_ID_FORMAT");
        break;
    case HBB__REGISTER_PK_RESPONSE__RESULT__TOO_FREQUENT:
        hd_warn(MOD, "server says registrations are too frequent; "
                     "backing off for 30 s");
        g->pk_backoff_until = uv_now(g->loop) + TOO_FREQUENT_MS;
        break;
    default:
        hd_warn(MOD, "server refused our key (result %d)", (int)r->result);
        break;
    }
}

/* ---- requests from the server -------------------------------------------- */

/* Our address on the interface that reaches the server, port = listen. */
static int lan_addr(struct reg *g, struct sockaddr_storage *out)
{
    socklen_t len = sizeof(*out);
    int fd, r = -1;

    memset(out, 0, sizeof(*out));
    fd = socket(g->server.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&g->server,
                hd_addr_len((struct sockaddr *)&g->server)) == 0 &&
        getsockname(fd, (struct sockaddr *)out, &len) == 0)
        r = 0;
    close(fd);
    if (r == 0) {
        hd_addr_normalize(out);
        hd_addr_set_port((struct sockaddr *)out, g->h->listen_port);
    }
    return r;
}

static void on_fetch_local_addr(struct reg *g, const Hbb__FetchLocalAddr *f)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__LocalAddr la = HBB__LOCAL_ADDR__INIT;
    struct sockaddr_storage me;
    uint8_t mangled[HD_ADDR_MANGLED_MAX];
    char s[HD_ADDR_STRLEN];

    if (lan_addr(g, &me) != 0)
        return;
    la.socket_addr = f->socket_addr;
    la.local_addr.data = mangled;
    la.local_addr.len =
        hd_addr_mangle((struct sockaddr *)&me, hd_addr_now_us(), mangled);
    la.relay_server = f->relay_server;
    la.id = g->h->ident.id;
    la.version = HOST_WIRE_VERSION;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_LOCAL_ADDR;
    m.local_addr = &la;
    hd_info(MOD, "viewer on our LAN: telling it %s",
            hd_addr_format((struct sockaddr *)&me, s, sizeof(s)));
    send_oneshot(g, &m, "LocalAddr");
}

static void relay_begin(struct reg *g, const ProtobufCBinaryData *socket_addr,
                        const char *relay, const char *mine, const char *uuid);

/*
 * RustDesk's host decision (rendezvous_mediator.rs, handle_punch_hole):
 * straight to the relay, without punching, when the viewer asks for it
 * (force_relay), or reports a symmetric NAT (RustDesk's web client always
 * does: it can only use a relay, and takes nothing but a RelayResponse),
 * or we are behind one (unless our router forwards a port to us: the
 * viewer can connect to it).  A viewer that gave its public UDP port
 * (udp_port: a homedesk viewer, or a RustDesk one that punches UDP) keeps
 * our punching in those NAT cases: UDP, birthday search included, gets
 * through where RustDesk's host gives up (a RustDesk viewer that cannot
 * use it asks for the relay itself).  Returns the reason, or NULL.
 */
static const char *relay_at_once(const struct reg *g, const Hbb__PunchHole *ph)
{
    if (ph->force_relay)
        return "the viewer asks for the relay";
    if (ph->udp_port > 0)
        return NULL;
    if (ph->nat_type == HBB__NAT_TYPE__SYMMETRIC)
        return "the viewer is behind a symmetric NAT or is a web client";
    if (g->h->nat_type == HBB__NAT_TYPE__SYMMETRIC && g->h->upnp_port == 0)
        return "we are behind a symmetric NAT";
    return NULL;
}

/*
 * PunchHole (step 3): from a new local port P, fire connect() towards the
 * viewer and listen (punch.h), and send PunchHoleSent from P too, so the
 * server hands the viewer the public address of P.  Or, as RustDesk's
 * host (relay_at_once), the relay at once: RelayResponse with a uuid of
 * ours.
 */
static void on_punch_hole(struct reg *g, const Hbb__PunchHole *ph)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__PunchHoleSent s = HBB__PUNCH_HOLE_SENT__INIT;
    struct sockaddr_storage viewer = { 0 }, viewer6, me6;
    uint8_t mangled6[HD_ADDR_MANGLED_MAX];
    char vs[HD_ADDR_STRLEN] = "?", ms[HD_ADDR_STRLEN];
    uint16_t port = 0;
    int fd = -1, r = -EAFNOSUPPORT;
    const char *why = relay_at_once(g, ph);

    if (why != NULL) {
        char uuid[HD_UUID_LEN];

        hd_uuid_random(uuid);
        hd_info(MOD, "punch hole request: %s: going to the relay", why);
        relay_begin(g, &ph->socket_addr,
                    ph->relay_server && ph->relay_server[0] ? ph->relay_server
                                                            : NULL,
                    g->h->o->relay, uuid);
        return;
    }
    if (hd_addr_unmangle(ph->socket_addr.data, ph->socket_addr.len, &viewer) ==
        0) {
        hd_addr_normalize(&viewer);
        hd_addr_format((struct sockaddr *)&viewer, vs, sizeof(vs));
        if (viewer.ss_family == g->server.ss_family &&
            (fd = punch_socket(g->server.ss_family, 0, &port)) >= 0)
            r = punch_start(g->h, (struct sockaddr *)&viewer, (int)ph->nat_type,
                            port);
        else if (fd < 0)
            r = fd;
    }
    if (r < 0)
        hd_info(MOD, "punch hole request from %s: no punching (%s)", vs,
                hd_strerror(r));
    else if (r == 1)
        hd_info(MOD,
                "punch hole request from %s: both behind symmetric NATs, "
                "leaving it to the relay",
                vs);
    else
        hd_info(MOD, "punch hole request from %s: punching from port %u", vs,
                (unsigned)port);
    /* UDP (a homedesk viewer gave its public UDP port): probes from our
     * registration socket, whose address the server gave the viewer */
    if (ph->udp_port > 0 && ph->udp_port <= 65535 && g->udp_open &&
        viewer.ss_family == g->server.ss_family) {
        struct sockaddr_storage vu = viewer;

        hd_addr_set_port((struct sockaddr *)&vu, (uint16_t)ph->udp_port);
        if ((r = upunch_start(g->h, &g->udp, (struct sockaddr *)&vu,
                              (int)ph->nat_type)) < 0)
            hd_info(MOD, "punch hole request from %s: no UDP punching (%s)", vs,
                    hd_strerror(r));
    }
    /* IPv6 where both have it: the viewer's own address, no NAT */
    if (ph->socket_addr_v6.len > 0 &&
        hd_addr_unmangle(ph->socket_addr_v6.data, ph->socket_addr_v6.len,
                         &viewer6) == 0 &&
        viewer6.ss_family == AF_INET6) {
        hd_addr_format((struct sockaddr *)&viewer6, vs, sizeof(vs));
        if ((r = punch_start_v6(g->h, (struct sockaddr *)&viewer6, &me6)) ==
            0) {
            s.socket_addr_v6.data = mangled6;
            s.socket_addr_v6.len = hd_addr_mangle((struct sockaddr *)&me6,
                                                  hd_addr_now_us(), mangled6);
            hd_info(MOD, "punch hole request: punching to %s over IPv6 from %s",
                    vs,
                    hd_addr_format((struct sockaddr *)&me6, ms, sizeof(ms)));
        } else {
            hd_info(MOD, "punch hole request: no IPv6 punching to %s (%s)", vs,
                    hd_strerror(r));
        }
    }
    s.socket_addr = ph->socket_addr;
    s.id = g->h->ident.id;
    s.relay_server = ph->relay_server;
    s.nat_type = (Hbb__NatType)g->h->nat_type;
    s.version = HOST_WIRE_VERSION;
    s.upnp_port = g->h->upnp_port;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE_SENT;
    m.punch_hole_sent = &s;
    send_oneshot_fd(g, &m, "PunchHoleSent", fd);
}

/* One relay request in progress: resolve, connect, then a session. */
struct relay_req {
    struct reg *g;
    struct host *h;
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    struct session *s;
    char host[RELAY_MAX], port[8], relay_server[RELAY_MAX], uuid[RELAY_MAX];
    uint8_t socket_addr[HD_ADDR_MANGLED_MAX];
    size_t socket_addr_len;
    int named; /* the relay was named by the viewer or the server (not by
                * our --relay): it may fall back to the server's address */
};

static int relay_resolve(struct relay_req *q);

int reg_split_host_port(const char *s, unsigned def_port, char *host,
                        size_t cap, char *port)
{
    const char *colon = strrchr(s, ':');
    size_t n;

    snprintf(port, 8, "%u", def_port);
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || (size_t)(end - s - 1) >= cap)
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        if (end[1] == ':')
            snprintf(port, 8, "%s", end + 2);
        return 0;
    }
    if (colon != NULL && strchr(s, ':') == colon) { /* one colon: port */
        n = (size_t)(colon - s);
        if (n >= cap)
            return -EINVAL;
        memcpy(host, s, n);
        host[n] = '\0';
        snprintf(port, 8, "%s", colon + 1);
        return 0;
    }
    if (strlen(s) >= cap)
        return -EINVAL;
    snprintf(host, cap, "%s", s);
    return 0;
}

static void relay_connected(uv_connect_t *req, int status)
{
    struct relay_req *q = req->data;
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__RequestRelay rr = HBB__REQUEST_RELAY__INIT;
    Hbb__RelayResponse resp = HBB__RELAY_RESPONSE__INIT;
    uint8_t *buf = NULL;
    size_t n;
    int r;

    if (status == UV_ECANCELED) { /* the session was closed meanwhile */
        free(q);
        return;
    }
    if (status != 0) {
        hd_warn(MOD, "cannot reach relay %s:%s: %s", q->host, q->port,
                uv_strerror(status));
        session_close(q->s, "relay unreachable");
        free(q);
        return;
    }
    rr.uuid = q->uuid;
    rr.licence_key = (char *)(q->h->o->key ? q->h->o->key : "");
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
    m.request_relay = &rr;
    if ((r = pack(&m, &buf, &n)) != 0 ||
        (r = session_send_plain(q->s, buf, n)) != 0) {
        free(buf);
        session_close(q->s, hd_strerror(r));
        free(q);
        return;
    }
    free(buf);
    if (q->g != NULL) {
        Hbb__RendezvousMessage a = HBB__RENDEZVOUS_MESSAGE__INIT;

        resp.socket_addr.data = q->socket_addr;
        resp.socket_addr.len = q->socket_addr_len;
        resp.uuid = q->uuid;
        resp.relay_server = q->relay_server;
        resp.union_case = HBB__RELAY_RESPONSE__UNION_ID;
        resp.id = q->h->ident.id;
        resp.version = HOST_WIRE_VERSION;
        resp.upnp_port = q->h->upnp_port;
        a.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE;
        a.relay_response = &resp;
        send_oneshot(q->g, &a, "RelayResponse");
    }
    session_begin(q->s, NULL, 0);
    free(q);
}

static void relay_resolved(uv_getaddrinfo_t *req, int status,
                           struct addrinfo *ai)
{
    struct relay_req *q = req->data;
    struct sockaddr_storage viewer;
    int r;

    if ((status != 0 || ai == NULL) && q->named && !q->h->stopping &&
        q->h->server_host[0]) {
        char alt[RELAY_MAX + 16];

        /* e.g. "rustdesk-hbbr:21117", known only inside a compose
         * network: the server's own address with the relay's port */
        q->named = 0;
        if (hd_relay_fallback(q->relay_server[0] ? q->relay_server : q->host,
                              q->h->server_host, alt, sizeof(alt)) == 0 &&
            reg_split_host_port(alt, HD_RELAY_PORT, q->host, sizeof(q->host),
                                q->port) == 0) {
            hd_info(MOD,
                    "relay %s does not resolve here (%s): using the "
                    "server's address, %s",
                    q->relay_server[0] ? q->relay_server : q->host,
                    uv_strerror(status ? status : UV_EAI_NONAME), alt);
            uv_freeaddrinfo(ai);
            if (relay_resolve(q) == 0)
                return;
            free(q);
            return;
        }
    }
    if (status != 0 || ai == NULL) {
        hd_warn(MOD, "cannot resolve relay %s: %s", q->host,
                uv_strerror(status ? status : UV_EAI_NONAME));
        goto fail;
    }
    if (q->h->stopping)
        goto fail;
    if ((r = session_new(q->h, SESSION_RELAY, &q->s)) != 0) {
        hd_warn(MOD, "relay request refused: %s", hd_strerror(r));
        goto fail;
    }
    if (hd_addr_unmangle(q->socket_addr, q->socket_addr_len, &viewer) == 0)
        session_origin(q->s, (struct sockaddr *)&viewer);
    q->conn.data = q;
    if ((r = uv_tcp_connect(&q->conn, session_tcp(q->s), ai->ai_addr,
                            relay_connected)) != 0) {
        hd_warn(MOD, "cannot reach relay %s: %s", q->host, uv_strerror(r));
        session_close(q->s, "relay unreachable");
        goto fail;
    }
    uv_freeaddrinfo(ai);
    return;
fail:
    uv_freeaddrinfo(ai);
    free(q);
}

/* Resolve q->host (then connect, then a session).  0, or an error with
 * a log line (the caller frees q). */
static int relay_resolve(struct relay_req *q)
{
    struct addrinfo hints;
    int r;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    q->gai.data = q;
    if ((r = uv_getaddrinfo(q->h->loop, &q->gai, relay_resolved, q->host,
                            q->port, &hints)) != 0)
        hd_warn(MOD, "cannot resolve relay %s: %s", q->host, uv_strerror(r));
    return r;
}

/*
 * Go to a relay for the viewer at socket_addr (mangled) with uuid.  relay
 * is the one the viewer asked for (RequestRelay) or the server handed out
 * (PunchHole); mine is ours (--relay): RustDesk's host answers a
 * RequestRelay at the relay it names, and picks its own "Relay server"
 * first when it starts the relay itself.  Neither: the server's host,
 * port + 1.
 */
static void relay_begin(struct reg *g, const ProtobufCBinaryData *socket_addr,
                        const char *relay, const char *mine, const char *uuid)
{
    struct relay_req *q;
    const char *use = mine != NULL ? mine : relay;
    int r;

    if (uuid == NULL || uuid[0] == '\0' || strlen(uuid) >= RELAY_MAX ||
        socket_addr->len == 0 || socket_addr->len > HD_ADDR_MANGLED_MAX ||
        (use && strlen(use) >= RELAY_MAX)) {
        hd_info(MOD, "malformed relay request ignored");
        return;
    }
    if ((q = calloc(1, sizeof(*q))) == NULL)
        return;
    q->g = g;
    q->h = g->h;
    snprintf(q->uuid, sizeof(q->uuid), "%s", uuid);
    memcpy(q->socket_addr, socket_addr->data, socket_addr->len);
    q->socket_addr_len = socket_addr->len;
    if (use != NULL && use[0]) {
        snprintf(q->relay_server, sizeof(q->relay_server), "%s", use);
        q->named = mine == NULL;
        r = reg_split_host_port(use, HD_RELAY_PORT, q->host, sizeof(q->host),
                                q->port);
    } else {
        r = 0;
        snprintf(q->host, sizeof(q->host), "%s", g->h->server_host);
        snprintf(q->port, sizeof(q->port), "%u",
                 (unsigned)g->h->server_port + 1);
    }
    if (r != 0) {
        hd_info(MOD, "relay request with a bad relay address ignored");
        free(q);
        return;
    }
    hd_info(MOD, "relay request: connecting to %s:%s", q->host, q->port);
    if (relay_resolve(q) != 0)
        free(q);
}

static void on_request_relay(struct reg *g, const Hbb__RequestRelay *rr)
{
    const char *relay = rr->relay_server;

    /* the relay the viewer named; ours only when it named none */
    relay_begin(g, &rr->socket_addr, relay && relay[0] ? relay : NULL,
                relay && relay[0] ? NULL : g->h->o->relay, rr->uuid);
}

/* ---- dispatch ------------------------------------------------------------ */

static void handle(struct reg *g, const uint8_t *data, size_t n, int via_tcp)
{
    Hbb__RendezvousMessage *m;

    if ((m = hbb__rendezvous_message__unpack(NULL, n, data)) == NULL) {
        hd_debug(MOD, "undecodable message from the server");
        return;
    }
    if (m->union_case != HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE) {
        g->unanswered = 0;
        if (g->silent) {
            hd_info(MOD, "server %s answers again%s", g->server_name,
                    via_tcp ? " (over TCP)" : "");
            g->silent = 0;
        }
    }
    switch (m->union_case) {
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER_RESPONSE:
        if (!via_tcp && g->tcp != NULL && g->h->o->reg_tcp == 0) {
            tcp_drop(g, "UDP works again");
            /* a RegisterPeer the link carried may have given the server
             * the link's address for us: the UDP one again, at once */
            register_peer(g);
        }
        if (m->register_peer_response->request_pk) {
            if (g->registered)
                hd_info(MOD, "server asks for our key again: registering");
            g->registered = 0;
            register_pk(g);
        } else if (!g->registered) {
            hd_info(MOD, "registered ID %s with %s", g->h->ident.id,
                    g->server_name);
            g->registered = 1;
            g->probe_err = 0;
        }
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK_RESPONSE:
        on_pk_response(g, m->register_pk_response);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_FETCH_LOCAL_ADDR:
        on_fetch_local_addr(g, m->fetch_local_addr);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_PUNCH_HOLE:
        on_punch_hole(g, m->punch_hole);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY:
        on_request_relay(g, m->request_relay);
        break;
    case HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE:
        break; /* a secure-channel offer on TCP: we stay plain */
    default:
        hd_debug(MOD, "message %d from the server ignored", (int)m->union_case);
        break;
    }
    hbb__rendezvous_message__free_unpacked(m, NULL);
}

static void udp_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct reg *g = hd->data;

    buf->base = (char *)g->rbuf;
    buf->len = sizeof(g->rbuf);
}

static void udp_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
                     const struct sockaddr *from, unsigned flags)
{
    struct reg *g = u->data;
    struct sockaddr_storage ss;

    if (n <= 0 || from == NULL || g->closing)
        return;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, from, hd_addr_len(from));
    hd_addr_normalize(&ss);
    if (!g->have_server ||
        !hd_addr_same_ip((struct sockaddr *)&ss,
                         (struct sockaddr *)&g->server) ||
        hd_addr_port((struct sockaddr *)&ss) !=
            hd_addr_port((struct sockaddr *)&g->server)) {
        /* a viewer's UDP punch probe or session data (upunch.h) */
        if (!(flags & UV_UDP_PARTIAL))
            upunch_datagram(g->h, u, (struct sockaddr *)&ss,
                            (const uint8_t *)buf->base, (size_t)n);
        return;
    }
    handle(g, (const uint8_t *)buf->base, (size_t)n, 0);
}

static int open_udp(struct reg *g)
{
    struct sockaddr_storage any;
    int r;

    if (g->udp_open)
        return 0;
    hd_addr_parse(g->server.ss_family == AF_INET6 ? "::" : "0.0.0.0", 0, &any);
    if ((r = hd_net_bind_udp(g->loop, &g->udp, (struct sockaddr *)&any, 0)) !=
        0) {
        hd_error(MOD, "cannot open a UDP socket: %s", uv_strerror(r));
        return r;
    }
    g->udp.data = g;
    g->udp_open = 1;
    g->handles++;
    uv_udp_recv_start(&g->udp, udp_alloc, udp_recv);
    return 0;
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    struct reg *g = req->data;
    struct sockaddr_storage ss;

    g->resolving = 0;
    if (status == UV_ECANCELED || g->closing) {
        uv_freeaddrinfo(ai);
        if (g->closing && g->handles == 0)
            free(g);
        return;
    }
    if (status != 0 || ai == NULL) {
        if (!g->silent)
            hd_warn(MOD, "cannot resolve %s: %s (will retry)",
                    g->h->server_host, uv_strerror(status));
        uv_freeaddrinfo(ai);
        return;
    }
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    uv_freeaddrinfo(ai);
    hd_addr_normalize(&ss);
    if (g->have_server && ss.ss_family != g->server.ss_family && g->udp_open) {
        /* another family: a new socket (closed one is not reused) */
        return;
    }
    g->server = ss;
    g->have_server = 1;
    hd_addr_format((struct sockaddr *)&ss, g->server_name,
                   sizeof(g->server_name));
    if (open_udp(g) == 0)
        register_peer(g);
    if (g->h->o->reg_tcp == 1)
        tcp_start(g);
    punch_nat_test(g->h, (struct sockaddr *)&g->server);
    g->natt_at = uv_now(g->loop) + REG_NAT_TEST_MS;
}

static void resolve(struct reg *g)
{
    struct addrinfo hints;
    char port[8];
    int r;

    if (g->resolving)
        return;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    snprintf(port, sizeof(port), "%u", (unsigned)g->h->server_port);
    g->gai.data = g;
    if ((r = uv_getaddrinfo(g->loop, &g->gai, resolved, g->h->server_host, port,
                            &hints)) == 0)
        g->resolving = 1;
    else
        hd_warn(MOD, "cannot resolve %s: %s", g->h->server_host,
                uv_strerror(r));
}

static void on_tick(uv_timer_t *t)
{
    struct reg *g = t->data;
    unsigned interval = (unsigned)g->h->o->reg_interval_ms;

    if (!g->have_server) {
        resolve(g);
        return;
    }
    /* the first tick comes after REG_FIRST_ANSWER_MS; then while silent */
    if (!g->registered && g->probe != NULL)
        probe_say(g, UV_ETIMEDOUT); /* a whole interval without a SYN-ACK */
    if (!g->registered && (g->ticks++ == 0 || g->silent))
        probe_start(g);
    if (++g->unanswered >= REG_SILENT_ROUNDS) {
        if (!g->silent) {
            hd_warn(MOD,
                    "no answer from the rendezvous server %s for %u s; "
                    "still trying",
                    g->server_name, g->unanswered * interval / 1000);
            g->silent = 1;
            g->registered = 0;
        }
        resolve(g); /* the name may point elsewhere now */
        if (g->h->o->reg_tcp == 0 && g->tcp == NULL)
            tcp_start(g);
    }
    if (g->h->o->reg_tcp == 1 && g->tcp == NULL)
        tcp_start(g);
    register_peer(g);
    if (uv_now(g->loop) >= g->natt_at) { /* the network may have changed */
        punch_nat_test(g->h, (struct sockaddr *)&g->server);
        g->natt_at = uv_now(g->loop) + REG_NAT_TEST_MS;
    }
}

int reg_start(struct host *h, struct reg **out)
{
    struct reg *g;

    *out = NULL;
    if ((g = calloc(1, sizeof(*g))) == NULL)
        return -ENOMEM;
    g->h = h;
    g->loop = h->loop;
    uv_timer_init(h->loop, &g->timer);
    g->timer.data = g;
    g->handles = 1;
    snprintf(g->server_name, sizeof(g->server_name), "%s", h->server_host);
    resolve(g);
    uv_timer_start(&g->timer, on_tick,
                   (uint64_t)(h->o->reg_interval_ms < REG_FIRST_ANSWER_MS
                                  ? h->o->reg_interval_ms
                                  : REG_FIRST_ANSWER_MS),
                   (uint64_t)h->o->reg_interval_ms);
    *out = g;
    return 0;
}

static void reg_closed(uv_handle_t *hd)
{
    struct reg *g = hd->data;

    if (--g->handles == 0 && !g->resolving)
        free(g);
}

void reg_stop(struct reg *g)
{
    if (g == NULL)
        return;
    g->closing = 1;
    if (g->resolving)
        uv_cancel((uv_req_t *)&g->gai);
    tcp_drop(g, NULL);
    if (g->probe != NULL) { /* its close callback frees it */
        g->probe->g = NULL;
        hd_net_close((uv_handle_t *)&g->probe->tcp, probe_closed);
        g->probe = NULL;
    }
    punch_stop_all(g->h);
    upunch_stop_all(g->h);
    if (g->udp_open)
        hd_net_close((uv_handle_t *)&g->udp, reg_closed);
    hd_net_close((uv_handle_t *)&g->timer, reg_closed);
}

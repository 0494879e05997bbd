/*
 * The host's TCP links to the rendezvous server: one-shot messages (each
 * on a connection of its own, answered or timed out), the TCP registration
 * link used when UDP gets no answer, and the probe that tells why the
 * server does not answer.  Each is an allocation of its own, freed by its
 * own close callbacks.
 */
#include <sodium.h>

#include "host/reg_int.h"

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
void reg_send_oneshot_fd(struct reg *g, const Hbb__RendezvousMessage *m,
                         const char *what, int fd)
{
    struct oneshot *o = NULL;
    int r;

    if (!g->have_server || (o = calloc(1, sizeof(*o))) == NULL ||
        hd_frame_pack(&m->base, &o->frame, &o->len) != 0) {
        if (fd >= 0)
            os_sock_close(fd);
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
        os_sock_close(fd);
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

void reg_send_oneshot(struct reg *g, const Hbb__RendezvousMessage *m,
                      const char *what)
{
    reg_send_oneshot_fd(g, m, what, -1);
}

/* ---- TCP registration (when UDP gets no answer) -------------------------- */

struct reg_tcp {
    struct reg *g; /* NULL once the reg let go of it */
    uv_tcp_t tcp;
    uv_connect_t conn;
    struct hd_frame_decoder dec;
    struct hd_secure sec; /* once secure */
    int connected, kx_wait, secure;
    uint64_t connected_ms;
};

static void tcp_closed(uv_handle_t *hd)
{
    struct reg_tcp *t = hd->data;

    hd_frame_decoder_cleanup(&t->dec);
    hd_secure_cleanup(&t->sec);
    free(t);
}

void reg_tcp_drop(struct reg *g, const char *why)
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

/* Send on the link, sealed once it is secure; 0 or an error. */
static int link_send(struct reg *g, const Hbb__RendezvousMessage *m, int seal)
{
    struct reg_tcp *t = g->tcp;
    uint8_t *plain = NULL, *f;
    size_t n, hdr;
    int r;

    if ((r = hd_msg_pack(&m->base, &plain, &n)) != 0)
        return r;
    if ((f = malloc(HD_FRAME_HDR_MAX + n + HD_SECURE_OVERHEAD)) == NULL) {
        free(plain);
        return -ENOMEM;
    }
    if (seal && t->secure && n > 1) {
        r = hd_secure_seal(&t->sec, plain, n, f + HD_FRAME_HDR_MAX);
        n += HD_SECURE_OVERHEAD;
    } else {
        memcpy(f + HD_FRAME_HDR_MAX, plain, n);
    }
    free(plain);
    if (r == 0) {
        hdr = hd_frame_header(f, n);
        memmove(f + hdr, f + HD_FRAME_HDR_MAX, n);
        r = hd_net_write((uv_stream_t *)&t->tcp, f, hdr + n, NULL);
    }
    free(f);
    return r;
}

/* Whether the host keeps a TCP link to the server: always with --key
 * (to check the server's key and take its requests only from there),
 * with --server-tcp always, never with --server-tcp=never. */
int reg_link_wanted(const struct reg *g)
{
    int mode = g->h->o->reg_tcp;

    return mode == 1 || (g->have_pk && mode != -1);
}

/* The link is up but the server offered no secure channel. */
static void link_plain(struct reg *g, const char *what)
{
    if (g->udp_trust == UDP_REFUSED) {
        hd_warn(MOD,
                "server %s %s on its TCP port, though it offered a "
                "secure link before: someone may be stripping it; its "
                "requests by UDP stay ignored",
                g->server_name, what);
        return;
    }
    if (g->udp_trust != UDP_TRUSTED)
        hd_warn(MOD,
                "server %s %s on its TCP port although --key is set (an "
                "hbbs without a key?): its requests by UDP cannot be "
                "authenticated",
                g->server_name, what);
    g->udp_trust = UDP_TRUSTED;
}

/*
 * The first frame on the link when we hold --key: the server's offer.
 * Returns 0 when p is an ordinary message to dispatch (a server that
 * offers nothing), 1 when consumed, -1 when the link was dropped.
 */
static int link_offer(struct reg_tcp *t, const uint8_t *p, size_t len)
{
    struct reg *g = t->g;
    Hbb__RendezvousMessage *m = hbb__rendezvous_message__unpack(NULL, len, p);
    struct hd_rv_kx_answer ans;
    int r, split = 0;

    if (m == NULL ||
        m->union_case != HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE) {
        if (m != NULL)
            hbb__rendezvous_message__free_unpacked(m, NULL);
        link_plain(g, "offered no secure channel (KeyExchange)");
        reg_register_peer(g);
        return 0;
    }
    r = hd_rv_kx_answer(m->key_exchange, g->server_pk, &t->sec, &split, &ans);
    hbb__rendezvous_message__free_unpacked(m, NULL);
    if (r == HD_EAUTH) {
        if (!g->key_mismatch)
            hd_error(MOD,
                     "key mismatch: the server %s signs with another key "
                     "than --key, so nothing it asks is done (no viewer can "
                     "reach this host); use the key in the server's "
                     "id_ed25519.pub ('homedesk-server check %s --key KEY' "
                     "tells whether they match)",
                     g->server_name, g->h->server_host);
        g->key_mismatch = 1;
        reg_tcp_drop(g, NULL);
        return -1;
    }
    if (r == 0 && (r = link_send(g, &ans.msg, 0)) == 0)
        t->secure = 1;
    sodium_memzero(&ans, sizeof(ans));
    if (r != 0) {
        hd_warn(MOD, "secure link with %s failed: %s", g->server_name,
                hd_strerror(r));
        reg_tcp_drop(g, NULL);
        return -1;
    }
    if (g->key_mismatch)
        hd_info(MOD, "the server %s now holds --key", g->server_name);
    g->key_mismatch = 0;
    if (split) {
        if (g->udp_trust != UDP_REFUSED)
            hd_info(MOD,
                    "secure link with %s (its key checked, per-direction "
                    "keys): its requests come over it, any by UDP are "
                    "ignored",
                    g->server_name);
        g->udp_trust = UDP_REFUSED;
        reg_register_pk(g); /* binds our ID to this link */
    } else if (g->udp_trust == UDP_REFUSED) {
        /* homedesk-server never goes back to one key both ways: someone
         * removed its offer to read the link (the XOR of its directions) */
        hd_error(MOD,
                 "server %s offers only legacy keys now, per-direction keys "
                 "before: someone may be downgrading the link; refusing it "
                 "(trying again on the next heartbeat; its requests by UDP "
                 "stay ignored)",
                 g->server_name);
        reg_tcp_drop(g, NULL);
        return -1;
    } else {
        if (g->udp_trust != UDP_TRUSTED)
            hd_info(MOD,
                    "secure link with %s (its key checked; legacy keys, as "
                    "RustDesk's hbbs): its requests come by UDP, which "
                    "cannot be authenticated",
                    g->server_name);
        g->udp_trust = UDP_TRUSTED;
    }
    reg_register_peer(g);
    return 1;
}

/* A frame on the link: the server's KeyExchange offer first (with
 * --key), sealed frames once secure, then the usual dispatch. */
static void tcp_frame(struct reg_tcp *t, uint8_t *p, size_t len)
{
    struct reg *g = t->g;

    if (t->secure && len > 1) {
        if (len < HD_SECURE_OVERHEAD || hd_secure_open(&t->sec, p, len, p)) {
            hd_warn(MOD,
                    "a frame from %s on the secure link does not open "
                    "(forged or corrupt): closing the link",
                    g->server_name);
            reg_tcp_drop(g, NULL);
            return;
        }
        len -= HD_SECURE_OVERHEAD;
    }
    if (t->kx_wait) {
        t->kx_wait = 0;
        if (link_offer(t, p, len) != 0)
            return;
    }
    reg_handle(g, p, len, 1);
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
        reg_tcp_drop(t->g,
                     n == UV_EOF ? "server closed it" : uv_strerror((int)n));
        return;
    }
    hd_frame_decoder_commit(&t->dec, (size_t)n);
    while (t->g != NULL && (r = hd_frame_decoder_next(&t->dec, &p, &len)) == 1)
        tcp_frame(t, (uint8_t *)p, len);
    if (t->g != NULL && r < 0)
        reg_tcp_drop(t->g, hd_strerror(r));
}

static void tcp_connected(uv_connect_t *req, int status)
{
    struct reg_tcp *t = req->data;

    if (status == UV_ECANCELED || t->g == NULL)
        return;
    if (status != 0) {
        hd_debug(MOD, "TCP registration: %s", uv_strerror(status));
        reg_tcp_drop(t->g, NULL);
        return;
    }
    t->connected = 1;
    t->connected_ms = uv_now(t->g->loop);
    uv_tcp_nodelay(&t->tcp, 1);
    uv_read_start((uv_stream_t *)&t->tcp, tcp_alloc, tcp_read);
    if (t->g->have_pk) {
        t->kx_wait = 1; /* the server speaks first: its offer */
        return;
    }
    hd_info(MOD, "registering over TCP with %s", t->g->server_name);
    reg_register_peer(t->g);
}

void reg_tcp_start(struct reg *g)
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
        reg_tcp_drop(g, NULL);
}

/* ---- why does the server not answer? ------------------------------------ */

/*
 * UDP to a server that is not there fails silently, so when the first
 * registration is not answered within a few seconds a TCP connect to the
 * same port says why (refused, no route, timed out), at warning level,
 * once per distinct reason.
 */
void reg_probe_closed(uv_handle_t *hd)
{
    struct reg_probe *p = hd->data;

    free(p);
}

void reg_probe_say(struct reg *g, int err)
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
        reg_probe_say(p->g, status);
    }
    hd_net_close((uv_handle_t *)&p->tcp, reg_probe_closed);
}

void reg_probe_start(struct reg *g)
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
        hd_net_close((uv_handle_t *)&p->tcp, reg_probe_closed);
        return;
    }
    g->probe = p;
}

/* Send on the TCP link if it is up (and past the key exchange), and by
 * UDP unless told to use TCP only.  A RegisterPk goes both ways too: by
 * UDP it proves (with our uuid) the address the server tells viewers to
 * punch to; over a secure link it binds our ID to that link. */
/* Send on the TCP link if it is up (and past the key exchange), and by
 * UDP unless told to use TCP only.  A RegisterPk goes both ways too: by
 * UDP it proves (with our uuid) the address the server tells viewers to
 * punch to; over a secure link it binds our ID to that link. */
void reg_send_rdv(struct reg *g, const Hbb__RendezvousMessage *m)
{
    struct reg_tcp *t = g->tcp;
    int on_link = t != NULL && t->connected && !t->kx_wait;

    if (on_link && link_send(g, m, 1) != 0)
        reg_tcp_drop(g, "write failed");
    if (g->h->o->reg_tcp != 1)
        reg_send_udp(g, m);
}

/* On the tick: a link whose server offered nothing in REG_KX_WAIT_MS is
 * used plain. */
void reg_link_tick(struct reg *g)
{
    struct reg_tcp *t = g->tcp;

    if (t != NULL && t->kx_wait &&
        uv_now(g->loop) - t->connected_ms >= REG_KX_WAIT_MS) {
        t->kx_wait = 0;
        link_plain(g, "offered no secure channel (KeyExchange) in 5 s");
    }
}

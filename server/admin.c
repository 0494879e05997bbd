/*
 * Admin HTTP endpoint: a libuv listener feeding server/http.c, and the
 * /metrics families built from the rendezvous and relay counters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "log.h"
#include "net.h"
#include "server/admin.h"
#include "server/http.h"
#include "server/rdv.h"
#include "server/relay.h"

#define ADMIN_REQUEST_MS 10000

struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    int handles;
    int closing;
    struct admin *a;
    struct http *http;
    char name[HD_ADDR_STRLEN];
    uint8_t buf[2048];
};

struct admin {
    uv_loop_t *loop;
    const struct admin_config *cfg;
    uv_tcp_t lis;
    struct rdv *rdv;
    struct relay *relay;
    unsigned nconns;
    int stopped;
    /* live connections, to close them on stop */
    struct admin_conn *conns[ADMIN_MAX_CONNS];
};

static void counter(struct http_metrics_writer *w, const char *name,
                    const char *help, uint64_t v)
{
    http_metrics_family(w, name, "counter", help);
    http_metrics_sample_u64(w, name, NULL, 0, v);
}

static void gauge(struct http_metrics_writer *w, const char *name,
                  const char *help, uint64_t v)
{
    http_metrics_family(w, name, "gauge", help);
    http_metrics_sample_u64(w, name, NULL, 0, v);
}

static void labelled(struct http_metrics_writer *w, const char *name,
                     const char *label, const char *value, uint64_t v)
{
    struct http_label l = { label, value };
    http_metrics_sample_u64(w, name, &l, 1, v);
}

static void fill_metrics(struct http_metrics_writer *w, void *ud)
{
    struct admin *a = ud;

    if (a->rdv != NULL) {
        struct rdv_stats s;
        uint64_t registered, online;

        rdv_get_stats(a->rdv, &s, &registered, &online);
        gauge(w, "homedesk_peers_registered",
              "Peers held in memory (heard from recently).", registered);
        gauge(w, "homedesk_peers_online",
              "Peers heard from within the last 30 s.", online);
        gauge(w, "homedesk_rendezvous_connections",
              "Open TCP/WebSocket connections to the rendezvous ports.",
              s.conns_active);
        counter(w, "homedesk_heartbeats_total",
                "RegisterPeer heartbeats received.", s.heartbeats);
        counter(w, "homedesk_register_pk_total", "RegisterPk received.",
                s.register_pk);
        http_metrics_family(w, "homedesk_punch_requests_total", "counter",
                            "Punch-hole requests by outcome.");
        labelled(w, "homedesk_punch_requests_total", "outcome", "ok",
                 s.punch_ok);
        labelled(w, "homedesk_punch_requests_total", "outcome", "id_not_exist",
                 s.punch_id_not_exist);
        labelled(w, "homedesk_punch_requests_total", "outcome", "offline",
                 s.punch_offline);
        labelled(w, "homedesk_punch_requests_total", "outcome", "key_mismatch",
                 s.punch_key_mismatch);
        counter(w, "homedesk_relay_requests_total",
                "RequestRelay routed to hosts.", s.relay_requests);
        counter(w, "homedesk_secure_channels_total",
                "Rendezvous connections secured by KeyExchange.",
                s.secure_channels);
        http_metrics_family(w, "homedesk_rejected_inputs_total", "counter",
                            "Inputs refused, by reason.");
        labelled(w, "homedesk_rejected_inputs_total", "reason", "bad_frame",
                 s.rej_bad_frame);
        labelled(w, "homedesk_rejected_inputs_total", "reason", "too_big",
                 s.rej_too_big);
        labelled(w, "homedesk_rejected_inputs_total", "reason", "bad_protobuf",
                 s.rej_bad_proto);
        labelled(w, "homedesk_rejected_inputs_total", "reason", "unexpected",
                 s.rej_unexpected);
        labelled(w, "homedesk_rejected_inputs_total", "reason", "timeout",
                 s.rej_timeout);
        labelled(w, "homedesk_rejected_inputs_total", "reason", "key_exchange",
                 s.rej_key_exchange);
        labelled(w, "homedesk_rejected_inputs_total", "reason",
                 "too_many_connections", s.rej_too_many_conns);
        labelled(w, "homedesk_rejected_inputs_total", "reason", "slow_reader",
                 s.rej_slow);
        labelled(w, "homedesk_rejected_inputs_total", "reason", "udp_garbage",
                 s.rej_udp_garbage);
        counter(w, "homedesk_udp_replies_suppressed_total",
                "UDP replies not sent because they would exceed the request "
                "(anti-amplification).",
                s.udp_replies_suppressed);
    }
    if (a->relay != NULL) {
        struct relay_stats s;

        relay_get_stats(a->relay, &s);
        gauge(w, "homedesk_relay_pairs_active", "Relayed pairs now.",
              s.pairs_active);
        counter(w, "homedesk_relay_pairs_total", "Relayed pairs ever.",
                s.pairs_total);
        gauge(w, "homedesk_relay_waiting",
              "Relay connections waiting for their partner.", s.waiting);
        counter(w, "homedesk_relay_bytes_total",
                "Bytes copied by the relay, both directions.", s.bytes_relayed);
        counter(w, "homedesk_relay_downgraded_total",
                "Relayed pairs downgraded to the limit speed.",
                s.pairs_downgraded);
        http_metrics_family(w, "homedesk_relay_rejected_total", "counter",
                            "Relay connections refused, by reason.");
        for (int i = 0; i < RELAY_REJECT_COUNT; i++)
            labelled(w, "homedesk_relay_rejected_total", "reason",
                     relay_reject_name((enum relay_reject)i), s.rejected[i]);
    }
}

static void conn_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;

    if (--c->handles > 0)
        return;
    http_free(c->http);
    free(c);
}

static void conn_close(struct admin_conn *c)
{
    struct admin *a = c->a;

    if (c->closing)
        return;
    c->closing = 1;
    for (unsigned i = 0; i < ADMIN_MAX_CONNS; i++) {
        if (a->conns[i] == c) {
            a->conns[i] = NULL;
            break;
        }
    }
    a->nconns--;
    uv_close((uv_handle_t *)&c->timer, conn_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void shutdown_done(uv_shutdown_t *req, int status)
{
    struct admin_conn *c = req->data;

    free(req);
    conn_close(c);
}

static int on_write(void *ud, const uint8_t *data, size_t n)
{
    struct admin_conn *c = ud;

    return hd_net_write((uv_stream_t *)&c->tcp, data, n, NULL);
}

static void on_done(void *ud, int reason)
{
    struct admin_conn *c = ud;
    uv_shutdown_t *req = malloc(sizeof(*req));

    /* flush the response, then close */
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (req == NULL) {
        conn_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_done) != 0) {
        free(req);
        conn_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct admin_conn *c = h->data;

    buf->base = (char *)c->buf;
    buf->len = sizeof(c->buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct admin_conn *c = s->data;

    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread > 0 &&
        http_feed(c->http, (const uint8_t *)buf->base, (size_t)nread) < 0 &&
        !c->closing)
        uv_read_stop(s); /* on_done has run and is closing it */
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_conn(uv_stream_t *lis, int status)
{
    struct admin *a = lis->data;
    struct admin_conn *c;
    struct http_config hc = { fill_metrics, a, NULL, a->cfg->allowed_hosts,
                              a->cfg->token };
    struct http_callbacks cb = { on_write, on_done };
    struct sockaddr_storage ss;
    unsigned slot;

    if (status != 0 || (c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->a = a;
    uv_tcp_init(a->loop, &c->tcp);
    uv_timer_init(a->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    a->nconns++;
    for (slot = 0; slot < ADMIN_MAX_CONNS && a->conns[slot]; slot++)
        ;
    if (slot < ADMIN_MAX_CONNS)
        a->conns[slot] = c;
    if (uv_accept(lis, (uv_stream_t *)&c->tcp) != 0 ||
        slot == ADMIN_MAX_CONNS) {
        conn_close(c);
        return;
    }
    hd_net_peer_addr(&c->tcp, &ss);
    hd_addr_format((struct sockaddr *)&ss, c->name, sizeof(c->name));
    hc.peer_desc = c->name;
    if (http_new(&hc, &cb, c, &c->http) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, ADMIN_REQUEST_MS, 0);
}

int admin_new(uv_loop_t *loop, const struct admin_config *cfg, struct rdv *rdv,
              struct relay *relay, struct admin **out)
{
    struct sockaddr_storage ss;
    struct admin *a;
    int r;

    *out = NULL;
    if ((r = hd_addr_parse(cfg->bind_ip, cfg->port, &ss)) != 0)
        return r;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return -ENOMEM;
    a->loop = loop;
    a->cfg = cfg;
    a->rdv = rdv;
    a->relay = relay;
    a->lis.data = a;
    if ((r = hd_net_listen_tcp(loop, &a->lis, (struct sockaddr *)&ss, 64,
                               on_conn)) != 0) {
        /* the handle is closed already; free once the loop ran */
        a->stopped = 1;
        *out = a;
        return r;
    }
    *out = a;
    return 0;
}

void admin_stop(struct admin *a)
{
    if (a == NULL || a->stopped)
        return;
    a->stopped = 1;
    for (unsigned i = 0; i < ADMIN_MAX_CONNS; i++) {
        if (a->conns[i])
            conn_close(a->conns[i]);
    }
    hd_net_close((uv_handle_t *)&a->lis, NULL);
}

void admin_free(struct admin *a)
{
    free(a);
}

/*
 * The bodies of the admin port: /api/status (JSON, what the page shows)
 * and /metrics (Prometheus text), both read from the roles' state on the
 * loop thread at request time.  Lists are bounded (ADMIN_LIST_MAX each,
 * most recent first) so a busy server's page stays small; the totals say
 * how many there were.  Addresses go through rejects_redact, relay
 * sessions are named by their uuid's short hash, never the uuid.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "log.h"
#include "server/admin_int.h"
#include "server/metrics.h"
#include "server/rdv.h"
#include "server/rejects.h"
#include "server/relay.h"

#define ADMIN_LIST_MAX 200

/* ---- /api/status ------------------------------------------------------ */

static void key_str(struct textbuf *t, const char *key, const char *v)
{
    textbuf_printf(t, "\"%s\":", key);
    textbuf_json_str(t, v);
}

static const char *nat_name(int nat)
{
    switch (nat) {
    case -1:
        return "not known yet";
    case 1:
        return "asymmetric (punches)";
    case 2:
        return "symmetric (relay)";
    default:
        return "unknown";
    }
}

/* An online peer, copied out of the table to be sorted. */
struct peer_row {
    struct rdv_peer_info pi; /* id and addr point into this row */
    char id[101];
    struct sockaddr_storage addr;
};

struct peer_list {
    struct peer_row *v;
    size_t n, cap;
};

static void peer_collect(void *ud, const struct rdv_peer_info *pi)
{
    struct peer_list *l = ud;
    struct peer_row *row;

    if (!pi->online)
        return;
    if (l->n < l->cap) {
        row = &l->v[l->n++];
    } else { /* full: this one replaces the stalest if it is fresher */
        size_t worst = 0;

        if (l->n == 0)
            return;
        for (size_t i = 1; i < l->n; i++)
            if (l->v[i].pi.idle_ms > l->v[worst].pi.idle_ms)
                worst = i;
        if (l->v[worst].pi.idle_ms <= pi->idle_ms)
            return;
        row = &l->v[worst];
    }
    row->pi = *pi;
    snprintf(row->id, sizeof(row->id), "%s", pi->id);
    memset(&row->addr, 0, sizeof(row->addr));
    memcpy(&row->addr, pi->addr, hd_addr_len(pi->addr));
}

static int by_idle(const void *x, const void *y)
{
    const struct peer_row *a = x, *b = y;

    return a->pi.idle_ms < b->pi.idle_ms ? -1 : a->pi.idle_ms > b->pi.idle_ms;
}

static void json_peers(struct admin *a, struct textbuf *t)
{
    struct rdv_stats st;
    uint64_t registered = 0, online = 0;
    struct peer_list l = { 0 };
    char addr[REJECTS_ADDR_MAX];

    textbuf_puts(t, "\"peers\":{");
    if (a->rdv == NULL) {
        textbuf_puts(t, "\"role\":false},");
        return;
    }
    rdv_get_stats(a->rdv, &st, &registered, &online);
    if ((l.v = calloc(ADMIN_LIST_MAX, sizeof(*l.v))) != NULL)
        l.cap = ADMIN_LIST_MAX;
    rdv_foreach_peer(a->rdv, peer_collect, &l);
    qsort(l.v, l.n, sizeof(*l.v), by_idle);
    textbuf_printf(t,
                   "\"role\":true,\"in_memory\":%" PRIu64 ",\"online\":%" PRIu64
                   ",\"list\":[",
                   registered, online);
    for (size_t i = 0; i < l.n; i++) {
        const struct peer_row *row = &l.v[i];

        textbuf_puts(t, i ? ",{" : "{");
        key_str(t, "id", row->id);
        textbuf_printf(t, ",\"last_seen_ms\":%" PRIu64 ",", row->pi.idle_ms);
        key_str(t, "nat", nat_name(row->pi.nat_type));
        textbuf_puts(t, ",");
        key_str(t, "addr",
                rejects_redact((const struct sockaddr *)&row->addr, addr,
                               sizeof(addr)));
        textbuf_puts(t, ",");
        key_str(t, "link",
                row->pi.secure ? "TCP, secure"
                : row->pi.tcp  ? "TCP"
                               : "UDP");
        textbuf_puts(t, "}");
    }
    textbuf_puts(t, "]},");
    free(l.v);
}

struct pair_ctx {
    struct textbuf *t;
    size_t n;
};

static void pair_json(void *ud, const struct relay_pair_info *pi)
{
    struct pair_ctx *c = ud;
    char a[REJECTS_ADDR_MAX], b[REJECTS_ADDR_MAX];

    if (c->n++ >= ADMIN_LIST_MAX)
        return;
    textbuf_puts(c->t, c->n > 1 ? ",{" : "{");
    key_str(c->t, "hash", pi->hash);
    textbuf_puts(c->t, ",");
    key_str(c->t, "a", rejects_redact((struct sockaddr *)&pi->a, a, sizeof(a)));
    textbuf_puts(c->t, ",");
    key_str(c->t, "b", rejects_redact((struct sockaddr *)&pi->b, b, sizeof(b)));
    textbuf_printf(c->t,
                   ",\"transport\":\"%s\",\"age_ms\":%" PRIu64
                   ",\"idle_ms\":%" PRIu64 ",\"bytes\":%" PRIu64
                   ",\"limited\":%s}",
                   pi->a_ws || pi->b_ws
                       ? (pi->a_ws && pi->b_ws ? "WebSocket" : "TCP/WebSocket")
                       : "TCP",
                   pi->age_ms, pi->idle_ms, pi->bytes,
                   pi->limited || pi->downgraded ? "true" : "false");
}

static void json_relay(struct admin *a, struct textbuf *t)
{
    struct relay_stats st;
    struct pair_ctx c = { t, 0 };

    textbuf_puts(t, "\"relay\":{");
    if (a->relay == NULL) {
        textbuf_puts(t, "\"role\":false},");
        return;
    }
    relay_get_stats(a->relay, &st);
    textbuf_printf(
        t,
        "\"role\":true,\"active\":%" PRIu64 ",\"total\":%" PRIu64
        ",\"waiting\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"sessions\":[",
        st.pairs_active, st.pairs_total, st.waiting, st.bytes_relayed);
    relay_foreach_pair(a->relay, pair_json, &c);
    textbuf_puts(t, "]},");
}

static void json_ports(struct admin *a, struct textbuf *t)
{
    uint64_t now = uv_now(a->loop);

    textbuf_puts(t, "\"ports\":[");
    for (size_t i = 0; i < a->nports; i++) {
        const struct admin_port *p = &a->ports[i];
        const struct admin_probe_result *res = &a->probes[i];

        textbuf_puts(t, i ? ",{" : "{");
        key_str(t, "name", p->name);
        textbuf_printf(t, ",\"proto\":\"%s\",\"port\":%u,", p->proto, p->port);
        key_str(t, "bind", p->bind_ip ? p->bind_ip : "::");
        textbuf_printf(t, ",\"state\":\"%s\",",
                       admin_probe_state_name(res->state));
        key_str(t, "detail", res->detail);
        if (res->checked_ms != 0)
            textbuf_printf(t, ",\"checked_ms_ago\":%" PRIu64,
                           now - res->checked_ms);
        textbuf_puts(t, "}");
    }
    textbuf_puts(t, "],");
}

static void json_rejects(struct admin *a, struct textbuf *t)
{
    const struct rejects *r = a->cfg->rejects;
    const struct reject *e;

    textbuf_printf(t, "\"rejections\":{\"total\":%" PRIu64 ",\"list\":[",
                   r ? r->total : 0);
    for (size_t i = 0; (e = rejects_get(r, i)) != NULL; i++) {
        textbuf_printf(
            t, "%s{\"first\":%" PRIu64 ",\"last\":%" PRIu64 ",\"count\":%u,",
            i ? "," : "", e->first_s, e->last_s, e->count);
        key_str(t, "role", e->role);
        textbuf_puts(t, ",");
        key_str(t, "reason", e->reason);
        textbuf_puts(t, ",");
        key_str(t, "from", e->addr);
        textbuf_puts(t, ",");
        key_str(t, "detail", e->detail);
        textbuf_puts(t, "}");
    }
    textbuf_puts(t, "]}");
}

void admin_status_json(struct admin *a, struct textbuf *t)
{
    const struct admin_config *cfg = a->cfg;
    uint64_t now_s = (uint64_t)time(NULL);

    textbuf_puts(t, "{\"server\":{");
    key_str(t, "program", "homedesk-server");
    textbuf_puts(t, ",");
    key_str(t, "version", HD_VERSION);
    textbuf_puts(t, ",");
    key_str(t, "role", cfg->role ? cfg->role : "all");
    textbuf_printf(t,
                   ",\"started\":%" PRIu64 ",\"now\":%" PRIu64
                   ",\"uptime_s\":%" PRIu64 ",",
                   a->started_s, now_s,
                   (uv_now(a->loop) - a->started_ms) / 1000);
    key_str(t, "data_dir", cfg->data_dir ? cfg->data_dir : "");
    textbuf_printf(t, ",\"token\":%s},\"key\":{",
                   cfg->token != NULL ? "true" : "false");
    key_str(t, "public",
            cfg->public_key && cfg->public_key[0] ? cfg->public_key : NULL);
    textbuf_puts(t, ",");
    key_str(t, "file", cfg->key_file);
    textbuf_printf(t, ",\"check\":%s},", cfg->key_check ? "true" : "false");
    json_ports(a, t);
    json_peers(a, t);
    json_relay(a, t);
    json_rejects(a, t);
    textbuf_puts(t, "}\n");
}

/* ---- /metrics --------------------------------------------------------- */

static void counter(struct textbuf *t, const char *name, const char *help,
                    uint64_t v)
{
    metrics_family(t, name, "counter", help);
    metrics_sample_u64(t, name, NULL, 0, v);
}

static void gauge(struct textbuf *t, const char *name, const char *help,
                  uint64_t v)
{
    metrics_family(t, name, "gauge", help);
    metrics_sample_u64(t, name, NULL, 0, v);
}

static void labelled(struct textbuf *t, const char *name, const char *label,
                     const char *value, uint64_t v)
{
    struct metrics_label l = { label, value };

    metrics_sample_u64(t, name, &l, 1, v);
}

void admin_metrics_text(struct admin *a, struct textbuf *t)
{

    if (a->rdv != NULL) {
        struct rdv_stats s;
        uint64_t registered, online;

        rdv_get_stats(a->rdv, &s, &registered, &online);
        gauge(t, "homedesk_peers_registered",
              "Peers held in memory (heard from recently).", registered);
        gauge(t, "homedesk_peers_online",
              "Peers heard from within the last 30 s.", online);
        gauge(t, "homedesk_rendezvous_connections",
              "Open TCP/WebSocket connections to the rendezvous ports.",
              s.conns_active);
        counter(t, "homedesk_heartbeats_total",
                "RegisterPeer heartbeats received.", s.heartbeats);
        counter(t, "homedesk_register_pk_total", "RegisterPk received.",
                s.register_pk);
        metrics_family(t, "homedesk_punch_requests_total", "counter",
                       "Punch-hole requests by outcome.");
        labelled(t, "homedesk_punch_requests_total", "outcome", "ok",
                 s.punch_ok);
        labelled(t, "homedesk_punch_requests_total", "outcome", "id_not_exist",
                 s.punch_id_not_exist);
        labelled(t, "homedesk_punch_requests_total", "outcome", "offline",
                 s.punch_offline);
        labelled(t, "homedesk_punch_requests_total", "outcome", "key_mismatch",
                 s.punch_key_mismatch);
        counter(t, "homedesk_relay_requests_total",
                "RequestRelay routed to hosts.", s.relay_requests);
        counter(t, "homedesk_secure_channels_total",
                "Rendezvous connections secured by KeyExchange.",
                s.secure_channels);
        metrics_family(t, "homedesk_rejected_inputs_total", "counter",
                       "Inputs refused, by reason.");
        labelled(t, "homedesk_rejected_inputs_total", "reason", "bad_frame",
                 s.rej_bad_frame);
        labelled(t, "homedesk_rejected_inputs_total", "reason", "too_big",
                 s.rej_too_big);
        labelled(t, "homedesk_rejected_inputs_total", "reason", "bad_protobuf",
                 s.rej_bad_proto);
        labelled(t, "homedesk_rejected_inputs_total", "reason", "unexpected",
                 s.rej_unexpected);
        labelled(t, "homedesk_rejected_inputs_total", "reason", "timeout",
                 s.rej_timeout);
        labelled(t, "homedesk_rejected_inputs_total", "reason", "key_exchange",
                 s.rej_key_exchange);
        labelled(t, "homedesk_rejected_inputs_total", "reason",
                 "too_many_connections", s.rej_too_many_conns);
        labelled(t, "homedesk_rejected_inputs_total", "reason", "slow_reader",
                 s.rej_slow);
        labelled(t, "homedesk_rejected_inputs_total", "reason", "udp_garbage",
                 s.rej_udp_garbage);
        counter(t, "homedesk_udp_replies_suppressed_total",
                "UDP replies not sent because they would exceed the request "
                "(anti-amplification).",
                s.udp_replies_suppressed);
    }
    if (a->relay != NULL) {
        struct relay_stats s;

        relay_get_stats(a->relay, &s);
        gauge(t, "homedesk_relay_pairs_active", "Relayed pairs now.",
              s.pairs_active);
        counter(t, "homedesk_relay_pairs_total", "Relayed pairs ever.",
                s.pairs_total);
        gauge(t, "homedesk_relay_waiting",
              "Relay connections waiting for their partner.", s.waiting);
        counter(t, "homedesk_relay_bytes_total",
                "Bytes copied by the relay, both directions.", s.bytes_relayed);
        counter(t, "homedesk_relay_downgraded_total",
                "Relayed pairs downgraded to the limit speed.",
                s.pairs_downgraded);
        metrics_family(t, "homedesk_relay_rejected_total", "counter",
                       "Relay connections refused, by reason.");
        for (int i = 0; i < RELAY_REJECT_COUNT; i++)
            labelled(t, "homedesk_relay_rejected_total", "reason",
                     relay_reject_name((enum relay_reject)i), s.rejected[i]);
    }
}

/*
 * Port mapping on the loop: the worker functions (hd_nat_map, NAT-PMP
 * then UPnP-IGD) and the mapper that keeps a mapping alive.  See map.h.
 * Memory: the mapper owns a timer and at most one queued work item; the
 * worker reads only its inputs (cfg, ports, the previous lease) and
 * writes only u->next, u->r and u->why, which the loop reads in the
 * after-work callback (libuv orders the two).  It is freed once the
 * timer has closed and no work is queued.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "log.h"
#include "nat/map.h"
#include "net.h"
#include "os.h"

#define MOD "upnp"

/* ---- the worker functions ------------------------------------------------
 */

int hd_nat_map(const struct hd_nat_map_cfg *cfg, uint16_t internal_port,
               uint16_t want, const struct hd_nat_lease *prev,
               struct hd_nat_lease *out, char *why, size_t cap)
{
    uint32_t life =
        cfg != NULL && cfg->lease_s ? cfg->lease_s : HD_NAT_MAP_LEASE_S;
    char w1[160] = "", w2[160] = "";
    int r, r2;

    memset(out, 0, sizeof(*out));
    if (cap > 0)
        why[0] = '\0';
    if (want == 0)
        want = internal_port;
    if (prev != NULL && prev->method == HD_NAT_MAP_IGD &&
        !(cfg != NULL && cfg->no_igd)) {
        if ((r = hd_nat_igd_map(internal_port, want, life, prev, out, w2,
                                sizeof(w2))) == 0)
            return 0;
        snprintf(why, cap, "%s", w2);
        return r;
    }
    if ((r = hd_nat_pmp_map(cfg, internal_port, want, life, out, w1,
                            sizeof(w1))) == 0)
        return 0;
    memset(out, 0, sizeof(*out));
    if (cfg != NULL && cfg->no_igd) {
        snprintf(why, cap, "%s", w1);
        return r;
    }
    if ((r2 = hd_nat_igd_map(internal_port, want, life, NULL, out, w2,
                             sizeof(w2))) == 0)
        return 0;
    memset(out, 0, sizeof(*out));
    snprintf(why, cap, "%s; %s", w1, w2);
    return r2 == -EHOSTUNREACH ? r : r2;
}

int hd_nat_unmap(const struct hd_nat_map_cfg *cfg, const struct hd_nat_lease *l)
{
    switch (l->method) {
    case HD_NAT_MAP_NATPMP:
        return hd_nat_pmp_unmap(cfg, l);
    case HD_NAT_MAP_IGD:
        return hd_nat_igd_unmap(l);
    default:
        return 0;
    }
}

/* ---- on the loop ---------------------------------------------------------
 */

struct hd_nat_mapper {
    uv_loop_t *loop;
    hd_nat_map_cb cb;
    void *ud;
    uint16_t port; /* what the callback was told last */
    const struct hd_nat_map_cfg *cfg;
    uv_work_t work;
    uv_timer_t timer;
    int busy, stopping, timer_open, unmap, checked;
    char server[256];
    uint16_t internal_port;
    struct hd_nat_lease lease; /* loop thread: the mapping we hold */
    struct hd_nat_lease next;  /* worker: the answer */
    int r;
    char why[400];
};

static const char *method_name(enum hd_nat_map_method m)
{
    return m == HD_NAT_MAP_NATPMP ? "NAT-PMP"
           : m == HD_NAT_MAP_IGD  ? "UPnP-IGD"
                                  : "none";
}

/* The server on a loopback address: no router of ours in between. */
static int server_is_loopback(const char *host)
{
    struct addrinfo hints, *ai = NULL, *p;
    int loop = 0;

    if (host[0] == '\0')
        return 1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        return 0;
    for (p = ai; p != NULL; p = p->ai_next) {
        if (p->ai_family == AF_INET &&
            (ntohl(((struct sockaddr_in *)p->ai_addr)->sin_addr.s_addr) >>
             24) == 127)
            loop = 1;
        if (p->ai_family == AF_INET6 &&
            IN6_IS_ADDR_LOOPBACK(
                &((struct sockaddr_in6 *)p->ai_addr)->sin6_addr))
            loop = 1;
    }
    freeaddrinfo(ai);
    return loop;
}

/* The public port is now port (0: none): tell the owner when it
 * changed. */
static void port_changed(struct hd_nat_mapper *u, uint16_t port)
{
    if (port == u->port)
        return;
    u->port = port;
    if (u->cb != NULL)
        u->cb(u, port, u->ud);
}

static void work_cb(uv_work_t *w)
{
    struct hd_nat_mapper *u = w->data;

    if (u->unmap) {
        u->r = hd_nat_unmap(u->cfg, &u->lease);
        return;
    }
    if (!u->checked && u->cfg == NULL && server_is_loopback(u->server)) {
        u->r = 1; /* nothing to do */
        return;
    }
    u->r = hd_nat_map(u->cfg, u->internal_port, u->lease.external_port,
                      u->lease.method != HD_NAT_MAP_NONE ? &u->lease : NULL,
                      &u->next, u->why, sizeof(u->why));
}

static void mapper_free_maybe(struct hd_nat_mapper *u)
{
    if (!u->busy && !u->timer_open)
        free(u);
}

static void timer_closed(uv_handle_t *hd)
{
    struct hd_nat_mapper *u = hd->data;

    u->timer_open = 0;
    mapper_free_maybe(u);
}

static void after_work(uv_work_t *w, int status);

static void queue(struct hd_nat_mapper *u, int unmap)
{
    u->unmap = unmap;
    u->work.data = u;
    if (uv_queue_work(u->loop, &u->work, work_cb, after_work) == 0)
        u->busy = 1;
}

static void on_timer(uv_timer_t *t)
{
    struct hd_nat_mapper *u = t->data;

    if (!u->busy && !u->stopping)
        queue(u, 0);
}

static void after_work(uv_work_t *w, int status)
{
    struct hd_nat_mapper *u = w->data;
    uint64_t renew_ms;

    u->busy = 0;
    if (u->unmap || status == UV_ECANCELED) {
        if (u->unmap)
            hd_info(MOD, "port mapping of public port %u removed (%s)%s",
                    (unsigned)u->lease.external_port,
                    method_name(u->lease.method),
                    u->r == 0 ? "" : ": the router did not confirm");
        u->lease.method = HD_NAT_MAP_NONE;
        mapper_free_maybe(u);
        return;
    }
    if (u->r == 1) {
        u->checked = 1;
        hd_debug(MOD, "server on loopback: no port mapping");
        if (u->stopping)
            mapper_free_maybe(u);
        return;
    }
    u->checked = 1;
    if (u->r == 0) {
        if (u->lease.method == HD_NAT_MAP_NONE ||
            u->lease.external_port != u->next.external_port ||
            u->lease.method != u->next.method)
            hd_info(MOD,
                    "port mapping: public port %u -> local port %u by %s "
                    "(router's public address %s, lease %u s)",
                    (unsigned)u->next.external_port,
                    (unsigned)u->next.internal_port,
                    method_name(u->next.method),
                    u->next.external_ip[0] ? u->next.external_ip : "unknown",
                    (unsigned)u->next.lifetime_s);
        u->lease = u->next;
        /* hd_nat_map_stop() during the request has let go of the port: the
         * lease is removed below, never advertised */
        if (!u->stopping)
            port_changed(u, u->lease.external_port);
        renew_ms = u->lease.lifetime_s ? u->lease.lifetime_s * 500ull
                                       : HD_NAT_MAP_LEASE_S * 500ull;
        if (renew_ms < HD_NAT_MAP_MIN_RENEW_MS)
            renew_ms = HD_NAT_MAP_MIN_RENEW_MS;
    } else {
        if (u->lease.method != HD_NAT_MAP_NONE)
            hd_warn(MOD, "port mapping of public port %u lost: %s",
                    (unsigned)u->lease.external_port, u->why);
        else
            hd_info(MOD, "no port mapping for port %u: %s",
                    (unsigned)u->internal_port, u->why);
        memset(&u->lease, 0, sizeof(u->lease));
        if (!u->stopping)
            port_changed(u, 0);
        renew_ms = HD_NAT_MAP_RETRY_MS;
    }
    if (u->stopping) {
        if (u->lease.method != HD_NAT_MAP_NONE)
            queue(u, 1);
        mapper_free_maybe(u);
        return;
    }
    uv_timer_start(&u->timer, on_timer, renew_ms, 0);
}

int hd_nat_map_start(uv_loop_t *loop, uint16_t port, const char *server,
                     const struct hd_nat_map_cfg *cfg, hd_nat_map_cb cb,
                     void *ud, struct hd_nat_mapper **out)
{
    struct hd_nat_mapper *u;

    *out = NULL;
    if ((u = calloc(1, sizeof(*u))) == NULL)
        return -ENOMEM;
    u->loop = loop;
    u->cb = cb;
    u->ud = ud;
    u->cfg = cfg;
    u->internal_port = port;
    snprintf(u->server, sizeof(u->server), "%s", server ? server : "");
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    u->timer_open = 1;
    queue(u, 0);
    *out = u;
    return 0;
}

void hd_nat_map_stop(struct hd_nat_mapper *u)
{
    if (u == NULL)
        return;
    u->stopping = 1;
    uv_timer_stop(&u->timer);
    hd_net_close((uv_handle_t *)&u->timer, timer_closed);
    /* a map in flight removes its result when it returns */
    if (!u->busy && u->lease.method != HD_NAT_MAP_NONE)
        queue(u, 1);
}

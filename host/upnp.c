/*
 * Port mapping by NAT-PMP and UPnP-IGD.  See upnp.h.  Memory: struct upnp
 * (h->upnp) owns a timer and at most one queued work item; the worker
 * reads only its inputs (cfg, ports, the previous lease) and writes only
 * u->next, u->r and u->why, which the loop reads in the after-work
 * callback (libuv orders the two).  It is freed once the timer has closed
 * and no work is queued.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>

#include "addr.h"
#include "err.h"
#include "host/upnp.h"
#include "log.h"
#include "net.h"
#include "os.h"

#define MOD "upnp"

#define UPNP_DESC "homedesk"

/* ---- UPnP-IGD ------------------------------------------------------------
 */

static int igd_add(const struct upnp_lease *l, uint16_t want, uint32_t life,
                   int *upnp_err)
{
    char ext[8], in[8], lease[16];
    int r;

    snprintf(ext, sizeof(ext), "%u", (unsigned)want);
    snprintf(in, sizeof(in), "%u", (unsigned)l->internal_port);
    snprintf(lease, sizeof(lease), "%u", (unsigned)life);
    r = UPNP_AddPortMapping(l->control_url, l->service_type, ext, in,
                            l->lan_addr, UPNP_DESC, "TCP", NULL, lease);
    *upnp_err = r;
    return r == UPNPCOMMAND_SUCCESS ? 0 : -EPERM;
}

static int igd_map(uint16_t in, uint16_t want, uint32_t life,
                   const struct upnp_lease *prev, struct upnp_lease *out,
                   char *why, size_t cap)
{
    struct UPNPDev *devs = NULL;
    struct UPNPUrls urls;
    struct IGDdatas data;
    char lan[64] = "", ext_ip[40] = "";
    int err = 0, st, r;

    memset(&urls, 0, sizeof(urls));
    out->internal_port = in;
    if (prev != NULL && prev->method == UPNP_IGD) {
        /* renew where it worked; rediscover if that fails */
        memcpy(out, prev, sizeof(*out));
        if (igd_add(out, want, life, &err) == 0)
            goto ok;
    }
    devs = upnpDiscover(UPNP_DISCOVER_MS, NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2,
                        &err);
    if (devs == NULL) {
        snprintf(why, cap, "UPnP: no IGD answered");
        return -EHOSTUNREACH;
    }
    st = UPNP_GetValidIGD(devs, &urls, &data, lan, sizeof(lan));
    freeUPNPDevlist(devs);
    if (st != 1 && st != 2) {
        if (st != 0)
            FreeUPNPUrls(&urls);
        snprintf(why, cap, "UPnP: no internet gateway device");
        return -EHOSTUNREACH;
    }
    if (urls.controlURL == NULL ||
        strlen(urls.controlURL) >= sizeof(out->control_url) ||
        strlen(data.first.servicetype) >= sizeof(out->service_type)) {
        FreeUPNPUrls(&urls);
        snprintf(why, cap, "UPnP: unusable device description");
        return HD_EPROTO;
    }
    snprintf(out->control_url, sizeof(out->control_url), "%s", urls.controlURL);
    snprintf(out->service_type, sizeof(out->service_type), "%s",
             data.first.servicetype);
    snprintf(out->lan_addr, sizeof(out->lan_addr), "%s", lan);
    FreeUPNPUrls(&urls);
    if (UPNP_GetExternalIPAddress(out->control_url, out->service_type,
                                  ext_ip) == UPNPCOMMAND_SUCCESS)
        snprintf(out->external_ip, sizeof(out->external_ip), "%s", ext_ip);
    r = igd_add(out, want, life, &err);
    if (r != 0 && err == 725) { /* OnlyPermanentLeasesSupported */
        life = 0;
        r = igd_add(out, want, 0, &err);
    }
    if (r != 0) {
        snprintf(why, cap, "UPnP: AddPortMapping refused: %d %s", err,
                 strupnperror(err) ? strupnperror(err) : "");
        return r;
    }
ok:
    out->method = UPNP_IGD;
    out->external_port = want;
    out->lifetime_s = life;
    return 0;
}

/* ---- the worker functions ------------------------------------------------
 */

int upnp_map(const struct upnp_cfg *cfg, uint16_t internal_port, uint16_t want,
             const struct upnp_lease *prev, struct upnp_lease *out, char *why,
             size_t cap)
{
    uint32_t life = cfg != NULL && cfg->lease_s ? cfg->lease_s : UPNP_LEASE_S;
    char w1[160] = "", w2[160] = "";
    int r, r2;

    memset(out, 0, sizeof(*out));
    if (cap > 0)
        why[0] = '\0';
    if (want == 0)
        want = internal_port;
    if (prev != NULL && prev->method == UPNP_IGD &&
        !(cfg != NULL && cfg->no_igd)) {
        if ((r = igd_map(internal_port, want, life, prev, out, w2,
                         sizeof(w2))) == 0)
            return 0;
        snprintf(why, cap, "%s", w2);
        return r;
    }
    if ((r = natpmp_map(cfg, internal_port, want, life, out, w1, sizeof(w1))) ==
        0)
        return 0;
    memset(out, 0, sizeof(*out));
    if (cfg != NULL && cfg->no_igd) {
        snprintf(why, cap, "%s", w1);
        return r;
    }
    if ((r2 = igd_map(internal_port, want, life, NULL, out, w2, sizeof(w2))) ==
        0)
        return 0;
    memset(out, 0, sizeof(*out));
    snprintf(why, cap, "%s; %s", w1, w2);
    return r2 == -EHOSTUNREACH ? r : r2;
}

int upnp_unmap(const struct upnp_cfg *cfg, const struct upnp_lease *l)
{
    char ext[8];

    switch (l->method) {
    case UPNP_NATPMP:
        return natpmp_unmap(cfg, l);
    case UPNP_IGD:
        snprintf(ext, sizeof(ext), "%u", (unsigned)l->external_port);
        return UPNP_DeletePortMapping(l->control_url, l->service_type, ext,
                                      "TCP", NULL) == UPNPCOMMAND_SUCCESS
                   ? 0
                   : -EPERM;
    default:
        return 0;
    }
}

/* ---- on the loop ---------------------------------------------------------
 */

struct upnp {
    struct host *h;
    const struct upnp_cfg *cfg;
    uv_work_t work;
    uv_timer_t timer;
    int busy, stopping, timer_open, unmap, checked;
    char server[256];
    uint16_t internal_port;
    struct upnp_lease lease; /* loop thread: the mapping we hold */
    struct upnp_lease next;  /* worker: the answer */
    int r;
    char why[400];
};

static const char *method_name(enum upnp_method m)
{
    return m == UPNP_NATPMP ? "NAT-PMP" : m == UPNP_IGD ? "UPnP-IGD" : "none";
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

static void work_cb(uv_work_t *w)
{
    struct upnp *u = w->data;

    if (u->unmap) {
        u->r = upnp_unmap(u->cfg, &u->lease);
        return;
    }
    if (!u->checked && u->cfg == NULL && server_is_loopback(u->server)) {
        u->r = 1; /* nothing to do */
        return;
    }
    u->r = upnp_map(u->cfg, u->internal_port, u->lease.external_port,
                    u->lease.method != UPNP_NONE ? &u->lease : NULL, &u->next,
                    u->why, sizeof(u->why));
}

static void upnp_free_maybe(struct upnp *u)
{
    if (!u->busy && !u->timer_open)
        free(u);
}

static void timer_closed(uv_handle_t *hd)
{
    struct upnp *u = hd->data;

    u->timer_open = 0;
    upnp_free_maybe(u);
}

static void after_work(uv_work_t *w, int status);

static void queue(struct upnp *u, int unmap)
{
    u->unmap = unmap;
    u->work.data = u;
    if (uv_queue_work(u->h->loop, &u->work, work_cb, after_work) == 0)
        u->busy = 1;
}

static void on_timer(uv_timer_t *t)
{
    struct upnp *u = t->data;

    if (!u->busy && !u->stopping)
        queue(u, 0);
}

static void after_work(uv_work_t *w, int status)
{
    struct upnp *u = w->data;
    struct host *h = u->h;
    uint64_t renew_ms;

    u->busy = 0;
    if (u->unmap || status == UV_ECANCELED) {
        if (u->unmap)
            hd_info(MOD, "port mapping of public port %u removed (%s)%s",
                    (unsigned)u->lease.external_port,
                    method_name(u->lease.method),
                    u->r == 0 ? "" : ": the router did not confirm");
        u->lease.method = UPNP_NONE;
        upnp_free_maybe(u);
        return;
    }
    if (u->r == 1) {
        u->checked = 1;
        hd_debug(MOD, "server on loopback: no port mapping");
        if (u->stopping)
            upnp_free_maybe(u);
        return;
    }
    u->checked = 1;
    if (u->r == 0) {
        if (u->lease.method == UPNP_NONE ||
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
        /* upnp_stop() during the request has let go of the port: the
         * lease is removed below, never advertised */
        if (!u->stopping)
            h->upnp_port = u->lease.external_port;
        renew_ms = u->lease.lifetime_s ? u->lease.lifetime_s * 500ull
                                       : UPNP_LEASE_S * 500ull;
        if (renew_ms < UPNP_MIN_RENEW_MS)
            renew_ms = UPNP_MIN_RENEW_MS;
    } else {
        if (u->lease.method != UPNP_NONE)
            hd_warn(MOD, "port mapping of public port %u lost: %s",
                    (unsigned)u->lease.external_port, u->why);
        else
            hd_info(MOD, "no port mapping for port %u: %s",
                    (unsigned)u->internal_port, u->why);
        memset(&u->lease, 0, sizeof(u->lease));
        h->upnp_port = 0;
        renew_ms = UPNP_RETRY_MS;
    }
    if (u->stopping) {
        if (u->lease.method != UPNP_NONE)
            queue(u, 1);
        upnp_free_maybe(u);
        return;
    }
    uv_timer_start(&u->timer, on_timer, renew_ms, 0);
}

int upnp_start(struct host *h, const struct upnp_cfg *cfg)
{
    struct upnp *u;

    if (h->upnp != NULL || h->listen_port == 0)
        return 0;
    if ((u = calloc(1, sizeof(*u))) == NULL)
        return -ENOMEM;
    u->h = h;
    u->cfg = cfg;
    u->internal_port = h->listen_port;
    snprintf(u->server, sizeof(u->server), "%s", h->server_host);
    uv_timer_init(h->loop, &u->timer);
    u->timer.data = u;
    u->timer_open = 1;
    h->upnp = u;
    queue(u, 0);
    return 0;
}

void upnp_stop(struct host *h)
{
    struct upnp *u = h->upnp;

    if (u == NULL)
        return;
    h->upnp = NULL;
    h->upnp_port = 0;
    u->stopping = 1;
    uv_timer_stop(&u->timer);
    hd_net_close((uv_handle_t *)&u->timer, timer_closed);
    /* a map in flight removes its result when it returns */
    if (!u->busy && u->lease.method != UPNP_NONE)
        queue(u, 1);
}

/*
 * Port mapping (nat.h; DESIGN.md section 5, PROTOCOL.md upnp_port): ask
 * the router to forward a public TCP port to a local one, so that a peer
 * can connect straight to router_public_ip:public_port even when this
 * side's NAT is symmetric and no hole punching can work.  The host maps
 * its --listen port and advertises the result (PunchHoleSent and
 * RelayResponse upnp_port); a viewer that listens could do the same.
 *
 * How: on a libuv worker thread (uv_queue_work; the loop thread never
 * blocks), NAT-PMP first (RFC 6886, nat/natpmp.c: a few UDP datagrams to
 * the default gateway, HD_NAT_MAP_NATPMP_MS at most), then UPnP-IGD
 * (nat/igd.c with libminiupnpc: SSDP discovery for HD_NAT_MAP_DISCOVER_MS,
 * UPNP_GetValidIGD, UPNP_AddPortMapping).  The mapping asks for the same
 * public port as the local one with a lease of HD_NAT_MAP_LEASE_S; it is
 * renewed at half the lease the router granted, with the method that
 * worked, and removed (lifetime 0 / UPNP_DeletePortMapping) by
 * hd_nat_map_stop.  One log line (module "upnp") when a mapping is made
 * or lost, one when none could be made.
 *
 * Not attempted (logged at debug): when the rendezvous server is on a
 * loopback address (tests: the router of the machine running them is
 * not ours to change), unless a cfg is given.
 *
 * Built into its own library (libhdnatmap.a, with libminiupnpc), linked
 * by the programs that map ports: the server needs none of it.
 *
 * Threads: hd_nat_map_start and hd_nat_map_stop on the loop's thread (its
 * callback runs there too); the worker functions (hd_nat_map,
 * hd_nat_unmap, hd_nat_pmp_*) on any thread: they block.
 */
#ifndef HD_NAT_MAP_H
#define HD_NAT_MAP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define HD_NAT_MAP_LEASE_S      3600
#define HD_NAT_MAP_NATPMP_MS    1500
#define HD_NAT_MAP_DISCOVER_MS  1000
#define HD_NAT_MAP_RETRY_MS     (5u * 60 * 1000) /* after a failure */
#define HD_NAT_MAP_MIN_RENEW_MS 1000

enum hd_nat_map_method {
    HD_NAT_MAP_NONE = 0,
    HD_NAT_MAP_NATPMP,
    HD_NAT_MAP_IGD
};

/* One mapping as the router granted it. */
struct hd_nat_lease {
    enum hd_nat_map_method method;
    uint16_t internal_port, external_port;
    uint32_t lifetime_s;  /* granted (UPnP: what we asked for; 0 = none) */
    char external_ip[64]; /* as the router reports it, or "" */
    /* UPnP-IGD: where to renew and delete */
    char control_url[512], service_type[256], lan_addr[64];
};

/* Worker-side knobs (tests): zero members mean the defaults. */
struct hd_nat_map_cfg {
    const char *natpmp_gateway; /* IPv4 text; NULL: the default gateway */
    /* the gateway's NAT-PMP port; 0: 5351 (tests: a fake gateway on a
     * port of its own, so that parallel runs cannot answer each other) */
    uint16_t natpmp_port;
    int natpmp_ms;    /* 0: HD_NAT_MAP_NATPMP_MS */
    int no_igd;       /* skip UPnP-IGD (tests) */
    uint32_t lease_s; /* 0: HD_NAT_MAP_LEASE_S */
};

/*
 * Ask for internal_port -> public port want (0: the same) with a lease,
 * by NAT-PMP then UPnP-IGD (or renew with prev->method when prev is not
 * NULL and has one).  Blocks up to about 3 s.  Returns 0 with *out
 * filled, or a negative error (-ETIMEDOUT: no answer, -EHOSTUNREACH: no
 * gateway/IGD, -EPERM: refused) with why (cap bytes) saying what each
 * method answered.  cfg may be NULL.  Any thread.
 */
int hd_nat_map(const struct hd_nat_map_cfg *cfg, uint16_t internal_port,
               uint16_t want, const struct hd_nat_lease *prev,
               struct hd_nat_lease *out, char *why, size_t cap);

/* Remove the mapping l describes (best effort, short timeouts): 0 or a
 * negative error.  Any thread. */
int hd_nat_unmap(const struct hd_nat_map_cfg *cfg,
                 const struct hd_nat_lease *l);

/*
 * The NAT-PMP half (nat/natpmp.c), as hd_nat_map and hd_nat_unmap use
 * it: map TCP port in -> want (0: the router's choice) for life seconds.
 * 0 with *out filled (method, ports, lifetime, external_ip), or
 * -ETIMEDOUT, -EHOSTUNREACH (no gateway or no NAT-PMP there), -EPERM
 * (refused), HD_EPROTO, with why.  Any thread.
 */
int hd_nat_pmp_map(const struct hd_nat_map_cfg *cfg, uint16_t in, uint16_t want,
                   uint32_t life, struct hd_nat_lease *out, char *why,
                   size_t cap);
int hd_nat_pmp_unmap(const struct hd_nat_map_cfg *cfg,
                     const struct hd_nat_lease *l);

/*
 * The UPnP-IGD half (nat/igd.c): the same contract as hd_nat_pmp_map
 * (-EHOSTUNREACH: no IGD answered), renewing where prev (when its method
 * is HD_NAT_MAP_IGD) worked; and its removal.  Any thread.
 */
int hd_nat_igd_map(uint16_t in, uint16_t want, uint32_t life,
                   const struct hd_nat_lease *prev, struct hd_nat_lease *out,
                   char *why, size_t cap);
int hd_nat_igd_unmap(const struct hd_nat_lease *l);

struct hd_nat_mapper;

/*
 * The public port changed: port is the router's public port forwarded
 * to ours, or 0 when the mapping was lost (or none could be made).  Not
 * called after hd_nat_map_stop.
 */
typedef void (*hd_nat_map_cb)(struct hd_nat_mapper *m, uint16_t port, void *ud);

/*
 * Keep local TCP port mapped on the router while it runs (see the top of
 * this file).  server: the rendezvous server's host name (no mapping when
 * it is a loopback address and cfg is NULL); cfg may be NULL and must
 * outlive the mapper.  Returns 0 with *out set, or -ENOMEM.  Loop thread.
 */
int hd_nat_map_start(uv_loop_t *loop, uint16_t port, const char *server,
                     const struct hd_nat_map_cfg *cfg, hd_nat_map_cb cb,
                     void *ud, struct hd_nat_mapper **out);

/*
 * Stop renewing and remove the mapping; no callback after it.  The
 * removal runs on a worker, and the mapper frees itself once it is done:
 * the caller keeps running the loop until then (uv_run returns once it
 * has).  Accepts NULL.  Loop thread.
 */
void hd_nat_map_stop(struct hd_nat_mapper *m);

#endif

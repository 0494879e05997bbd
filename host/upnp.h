/*
 * Port mapping: the host asks its router to forward a public TCP port to
 * its --listen port (DESIGN.md section 5, PROTOCOL.md upnp_port), so that
 * a viewer can connect straight to host_public_ip:upnp_port even when the
 * host's NAT is symmetric and no hole punching can work.
 *
 * How: on a libuv worker thread (uv_queue_work; the loop thread never
 * blocks), NAT-PMP first (RFC 6886, host/natpmp.c: a few UDP datagrams to
 * the default gateway, UPNP_NATPMP_MS at most), then UPnP-IGD (libminiupnpc:
 * SSDP discovery for UPNP_DISCOVER_MS, UPNP_GetValidIGD,
 * UPNP_AddPortMapping).  The mapping asks for the same public port as the
 * local one with a lease of UPNP_LEASE_S; it is renewed at half the lease
 * the router granted, with the method that worked, and removed
 * (lifetime 0 / UPNP_DeletePortMapping) by upnp_stop.  One log line when a
 * mapping is made or lost, one when none could be made.
 *
 * The mapped public port is h->upnp_port (0 while there is none), which
 * reg.c puts into PunchHoleSent and RelayResponse.
 *
 * Not attempted (logged at debug): with --no-upnp, and when the
 * rendezvous server is on a loopback address (tests: the router of the
 * machine running them is not ours to change).
 *
 * Loop thread only, except the worker functions, which any thread may
 * call (tests call them directly).
 */
#ifndef HD_HOST_UPNP_H
#define HD_HOST_UPNP_H

#include <stdint.h>

#include "host/host.h"

#define UPNP_LEASE_S      3600
#define UPNP_NATPMP_MS    1500
#define UPNP_DISCOVER_MS  1000
#define UPNP_RETRY_MS     (5u * 60 * 1000) /* after a failure */
#define UPNP_MIN_RENEW_MS 1000

enum upnp_method { UPNP_NONE = 0, UPNP_NATPMP, UPNP_IGD };

/* One mapping as the router granted it. */
struct upnp_lease {
    enum upnp_method method;
    uint16_t internal_port, external_port;
    uint32_t lifetime_s;  /* granted (UPnP: what we asked for; 0 = none) */
    char external_ip[64]; /* as the router reports it, or "" */
    /* UPnP-IGD: where to renew and delete */
    char control_url[512], service_type[256], lan_addr[64];
};

/* Worker-side knobs (tests): NULL members mean the defaults. */
struct upnp_cfg {
    const char *natpmp_gateway; /* IPv4 text; NULL: the default gateway */
    int natpmp_ms;              /* 0: UPNP_NATPMP_MS */
    int no_igd;                 /* skip UPnP-IGD (tests) */
    uint32_t lease_s;           /* 0: UPNP_LEASE_S */
};

/*
 * Ask for internal_port -> public port want (0: the same) with a lease,
 * by NAT-PMP then UPnP-IGD (or renew with prev->method when prev is not
 * NULL and has one).  Blocks up to about 3 s.  Returns 0 with *out
 * filled, or a negative error (-ETIMEDOUT: no answer, -EHOSTUNREACH: no
 * gateway/IGD, -EPERM: refused) with why (cap bytes) saying what each
 * method answered.  Any thread.
 */
int upnp_map(const struct upnp_cfg *cfg, uint16_t internal_port, uint16_t want,
             const struct upnp_lease *prev, struct upnp_lease *out, char *why,
             size_t cap);

/* Remove the mapping l describes (best effort, short timeouts). */
int upnp_unmap(const struct upnp_cfg *cfg, const struct upnp_lease *l);

/*
 * The NAT-PMP half (host/natpmp.c), as upnp_map and upnp_unmap use it:
 * map TCP port in -> want (0: the router's choice) for life seconds.
 * 0 with *out filled (method, ports, lifetime, external_ip), or
 * -ETIMEDOUT, -EHOSTUNREACH (no gateway or no NAT-PMP there), -EPERM
 * (refused), HD_EPROTO, with why.  Any thread.
 */
int natpmp_map(const struct upnp_cfg *cfg, uint16_t in, uint16_t want,
               uint32_t life, struct upnp_lease *out, char *why, size_t cap);
int natpmp_unmap(const struct upnp_cfg *cfg, const struct upnp_lease *l);

/*
 * Start mapping h->listen_port (cfg may be NULL; it must outlive the
 * mapping).  Returns 0 (running, or nothing to do) or -ENOMEM.  Loop
 * thread.
 */
int upnp_start(struct host *h, const struct upnp_cfg *cfg);

/*
 * Stop renewing and remove the mapping: the removal runs on a worker, so
 * the caller keeps running the loop until it has finished (uv_run
 * returns once it has).  Accepts a host with no mapping.  Loop thread.
 */
void upnp_stop(struct host *h);

#endif

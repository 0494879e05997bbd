/*
 * The admin port of homedesk-server (21114 by default, 127.0.0.1 unless
 * --http-bind widens it): a read-only page for the person running the
 * server, and the endpoints behind it.
 *
 *   GET /              the page (HTML; its script and style are /admin.js
 *                      and /admin.css, all three built into the program)
 *   GET /api/status    what the page shows, as JSON: role, version, uptime,
 *                      the public key, each port and whether it answers
 *                      from this machine, online peers, live relay
 *                      sessions, recent refusals (see rejects.h)
 *   GET /metrics       Prometheus text (metrics.h)
 *   GET /health        "ok", never behind the token (for health checks)
 *
 * Protections: a request whose Host header names something other than an
 * IP literal, "localhost" or an allowed name is refused (403: a DNS
 * rebinding page); with a token every path but /health wants it (401),
 * as "Authorization: Bearer TOKEN", or, for a browser, once as
 * "/?token=TOKEN", which sets an HttpOnly, SameSite=Strict cookie and
 * redirects to "/".  Every response carries a Content-Security-Policy of
 * default-src 'self' and closes its connection.  Nothing here changes the
 * server's state.  At most ADMIN_MAX_CONNS connections, 10 s each; a
 * request header is at most a few KiB (else 431).
 *
 * HTTP is libmicrohttpd's (Debian's libmicrohttpd12); no parser of ours.
 *
 * Threads: one, the loop thread.  libmicrohttpd runs with no thread of its
 * own (MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD): its epoll
 * descriptor is watched by a uv_poll_t, and MHD_run() is called on the
 * loop whenever that descriptor is readable or the timer set from
 * MHD_get_timeout() fires.  So request handlers run on the loop thread,
 * between the roles' callbacks, and read the rendezvous and relay state
 * directly: no snapshot, no lock.  The price is that a handler must not
 * block; none does (the port checks are libuv requests whose results a
 * later request shows).  Linux only (epoll), as is the server.
 */
#ifndef HD_SERVER_ADMIN_H
#define HD_SERVER_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct admin;
struct rdv;
struct rejects;
struct relay;

#define ADMIN_MAX_CONNS 64
#define ADMIN_MAX_PORTS 8

/* One listener of the server, as the page lists it. */
struct admin_port {
    const char *name;    /* "rendezvous", "NAT test", "relay (WebSocket)" */
    const char *proto;   /* "tcp" or "udp" */
    const char *bind_ip; /* where it listens: "::" is every address */
    uint16_t port;
};

struct admin_config {
    const char *bind_ip; /* 127.0.0.1 by default: --http-bind widens it */
    uint16_t port;
    /* Host names (besides IP literals and localhost) the endpoint answers
     * to, NULL-terminated, may be NULL; compared without case. */
    const char *const *allowed_hosts;
    const char *token; /* needed for all but /health, or NULL */
    /* What the page shows; all borrowed, any may be NULL. */
    const char *role;       /* "all", "rendezvous", "relay" */
    const char *public_key; /* base64 Ed25519 public key, "" or NULL: none */
    const char *key_file;   /* the .pub file it comes from */
    const char *data_dir;
    int key_check; /* clients must present the key */
    /* Listeners to list and check (the admin port itself is added). */
    struct admin_port ports[ADMIN_MAX_PORTS];
    size_t nports;
    struct rejects *rejects; /* refusals to list, also fed by this port */
};

/*
 * Listen on cfg->bind_ip:cfg->port and serve; rdv and relay (either may
 * be NULL: that part is left out) must outlive the admin, as must cfg and
 * what it points to.  Returns 0, or a negative errno / libuv error
 * (UV_EADDRINUSE ...), or HD_ECONFIG when libmicrohttpd refuses to start
 * (logged).  On error *out may still be set: admin_stop, loop run,
 * admin_free as usual.
 */
int admin_new(uv_loop_t *loop, const struct admin_config *cfg, struct rdv *rdv,
              struct relay *relay, struct admin **out);

/* Close the listener and every connection, cancel port checks.
 * Idempotent; accepts NULL. */
void admin_stop(struct admin *a);

/* Free after admin_stop and a loop run.  Accepts NULL. */
void admin_free(struct admin *a);

/*
 * May a request with this Host header value (port included, "" when the
 * request had none) be served?  IP literals (v6 in brackets), "localhost"
 * and the NULL-terminated allowed names are; anything else is not.
 */
int admin_host_allowed(const char *host, const char *const *allowed);

/*
 * Does this Authorization header value carry "Bearer <token>"?  Constant
 * time in the token.  NULL value: no.
 */
int admin_bearer_ok(const char *value, const char *token);

#endif

/*
 * The admin HTTP endpoint of homedesk-server (port 21114 by default):
 * GET /health and GET /metrics (Prometheus text) over the counters of the
 * rendezvous and relay roles.  One request per connection, at most
 * ADMIN_MAX_CONNS at once, 10 s to send the request.  Loop thread only.
 */
#ifndef HD_SERVER_ADMIN_H
#define HD_SERVER_ADMIN_H

#include <stdint.h>

#include <uv.h>

struct admin;
struct rdv;
struct relay;

#define ADMIN_MAX_CONNS 64

struct admin_config {
    const char *bind_ip; /* 127.0.0.1 by default: --http-bind widens it */
    uint16_t port;
    /* Host names (besides IP literals and localhost) the endpoint answers
     * to, NULL-terminated, may be NULL; see struct http_config */
    const char *const *allowed_hosts;
    const char *token; /* bearer token for all but /health, or NULL */
};

/*
 * Listen on cfg->bind_ip:cfg->port and serve the counters of rdv and
 * relay (either may be NULL: its families are left out).  cfg and what it
 * points to must outlive the admin.  Returns 0 or a negative libuv error
 * (UV_EADDRINUSE ...).
 */
int admin_new(uv_loop_t *loop, const struct admin_config *cfg, struct rdv *rdv,
              struct relay *relay, struct admin **out);

/* Close the listener and every connection. */
void admin_stop(struct admin *a);

/* Free after admin_stop and a loop run.  Accepts NULL. */
void admin_free(struct admin *a);

#endif

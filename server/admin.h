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

/*
 * Listen on bind_ip:port and serve the counters of rdv and relay (either
 * may be NULL: its families are left out).  Returns 0 or a negative
 * libuv error (UV_EADDRINUSE ...).
 */
int admin_new(uv_loop_t *loop, const char *bind_ip, uint16_t port,
              struct rdv *rdv, struct relay *relay, struct admin **out);

/* Close the listener and every connection. */
void admin_stop(struct admin *a);

/* Free after admin_stop and a loop run.  Accepts NULL. */
void admin_free(struct admin *a);

#endif

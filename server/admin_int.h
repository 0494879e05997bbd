/*
 * The admin port's insides, shared by its files (others use admin.h):
 * admin.c runs libmicrohttpd on the loop and routes requests (Host and
 * token checks, the built-in page); admin_status.c writes /api/status and
 * /metrics; admin_probe.c checks that each listener answers.  Threads: the
 * loop thread only, as admin.h explains.
 */
#ifndef HD_SERVER_ADMIN_INT_H
#define HD_SERVER_ADMIN_INT_H

#include <stdint.h>

#include <uv.h>

#include "server/admin.h"
#include "server/textbuf.h"

#define ADMIN_PROBE_EVERY_MS 10000 /* a page reload checks again after */
#define ADMIN_PROBE_WAIT_MS  3000  /* no answer within: not reachable */

enum admin_probe_state {
    PROBE_NOT_YET = 0,
    PROBE_RUNNING,
    PROBE_OK,
    PROBE_FAILED
};

struct admin_probe;

struct admin_probe_result {
    enum admin_probe_state state;
    char detail[80];     /* why it failed, or where it answered */
    uint64_t checked_ms; /* uv_now of the last result */
};

struct admin {
    uv_loop_t *loop;
    const struct admin_config *cfg;
    struct rdv *rdv;
    struct relay *relay;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;  /* the epoll descriptor of libmicrohttpd */
    uv_timer_t tick; /* MHD_get_timeout */
    int handles;     /* poll and tick not yet closed */
    int stopped;
    uint64_t started_s;  /* Unix time at start */
    uint64_t started_ms; /* uv_now at start */
    /* the listeners: cfg->ports and this port */
    struct admin_port ports[ADMIN_MAX_PORTS + 1];
    size_t nports;
    struct admin_probe_result probes[ADMIN_MAX_PORTS + 1];
    uint64_t probed_ms;          /* uv_now when checks last started; 0 never */
    struct admin_probe *running; /* checks under way, a list */
};

/* admin_status.c: the bodies; errors stay in t->err. */
void admin_status_json(struct admin *a, struct textbuf *t);
void admin_metrics_text(struct admin *a, struct textbuf *t);

/* admin_probe.c: check every listener unless that was done within
 * ADMIN_PROBE_EVERY_MS; results land in a->probes later. */
void admin_probe_start(struct admin *a);

/* Close the checks under way (admin_stop). */
void admin_probe_cancel(struct admin *a);

/* Label of a probe state for JSON: "not checked", "checking", "ok",
 * "failed". */
const char *admin_probe_state_name(enum admin_probe_state s);

#endif

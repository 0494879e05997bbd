/*
 * Does each listener of the server answer from this machine?  A TCP port
 * is checked with a connect (closed at once, before a byte is sent), the
 * rendezvous UDP port with a TestNatRequest, which the server answers
 * with the port it saw (the request is padded so that the answer is not
 * larger: the anti-amplification rule of rdv.c holds).  A listener on
 * every address ("::", "0.0.0.0") is checked on 127.0.0.1, one on a given
 * address there.  From the Internet is another matter: `homedesk-server
 * check HOST` from outside answers that.
 *
 * The checks are libuv requests on the loop: a page's status request
 * starts them (at most once per ADMIN_PROBE_EVERY_MS) and shows whatever
 * results are in; the page polls, so it shows the new ones a moment
 * later.  Each check is a struct admin_probe on a->running until its
 * handles are closed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "log.h"
#include "rendezvous.pb-c.h"
#include "server/admin_int.h"

struct admin_probe {
    struct admin *a;
    size_t idx;
    int udp;
    union {
        uv_tcp_t tcp;
        uv_udp_t u;
    } h;
    uv_connect_t creq;
    uv_timer_t timer;
    int open; /* handles not yet closed */
    int done;
    struct admin_probe *next;
    uint8_t rbuf[256];
};

const char *admin_probe_state_name(enum admin_probe_state s)
{
    switch (s) {
    case PROBE_RUNNING:
        return "checking";
    case PROBE_OK:
        return "ok";
    case PROBE_FAILED:
        return "failed";
    default:
        return "not checked";
    }
}

static void probe_closed(uv_handle_t *h)
{
    struct admin_probe *p = h->data, **pp;

    if (--p->open > 0)
        return;
    for (pp = &p->a->running; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    free(p);
}

/* Record the result (unless cancelled) and close the handles. */
static void probe_finish(struct admin_probe *p, int ok, const char *detail)
{
    struct admin_probe_result *res = &p->a->probes[p->idx];

    if (p->done)
        return;
    p->done = 1;
    if (!p->a->stopped) {
        res->state = ok ? PROBE_OK : PROBE_FAILED;
        snprintf(res->detail, sizeof(res->detail), "%s", detail);
        res->checked_ms = uv_now(p->a->loop);
        if (!ok)
            hd_info("admin",
                    "port check: %s %s port %u does not answer "
                    "from this machine: %s",
                    p->a->ports[p->idx].name, p->a->ports[p->idx].proto,
                    p->a->ports[p->idx].port, detail);
    }
    uv_close((uv_handle_t *)&p->timer, probe_closed);
    uv_close((uv_handle_t *)&p->h, probe_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct admin_probe *p = req->data;

    if (status == UV_ECANCELED)
        return; /* closed meanwhile */
    probe_finish(p, status == 0,
                 status == 0 ? "connects" : uv_strerror(status));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct admin_probe *p = h->data;

    buf->base = (char *)p->rbuf;
    buf->len = sizeof(p->rbuf);
}

static void on_udp(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
                   const struct sockaddr *from, unsigned flags)
{
    struct admin_probe *p = u->data;

    if (n > 0)
        probe_finish(p, 1, "answers a NAT test");
    else if (n < 0)
        probe_finish(p, 0, uv_strerror((int)n));
}

static void on_timeout(uv_timer_t *t)
{
    probe_finish(t->data, 0, "no answer within 3 s");
}

/* Where to knock: the listener's own address, or 127.0.0.1 for "all". */
static int probe_target(const struct admin_port *pt,
                        struct sockaddr_storage *ss)
{
    const char *ip = pt->bind_ip;

    if (ip == NULL || ip[0] == '\0' || strcmp(ip, "::") == 0 ||
        strcmp(ip, "0.0.0.0") == 0)
        ip = "127.0.0.1";
    return hd_addr_parse(ip, pt->port, ss);
}

/* A TestNatRequest whose answer is smaller: serial -1 takes 10 bytes. */
static size_t test_nat_request(uint8_t *buf, size_t cap)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__TestNatRequest t = HBB__TEST_NAT_REQUEST__INIT;

    t.serial = -1;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_TEST_NAT_REQUEST;
    m.test_nat_request = &t;
    if (hbb__rendezvous_message__get_packed_size(&m) > cap)
        return 0;
    return hbb__rendezvous_message__pack(&m, buf);
}

static int probe_begin(struct admin_probe *p, const struct sockaddr *to)
{
    uint8_t req[64];
    uv_buf_t b;
    size_t n;
    int r;

    if (!p->udp) {
        p->creq.data = p;
        return uv_tcp_connect(&p->creq, &p->h.tcp, to, on_connect);
    }
    if ((n = test_nat_request(req, sizeof(req))) == 0)
        return -EINVAL;
    b = uv_buf_init((char *)req, (unsigned)n);
    if ((r = uv_udp_recv_start(&p->h.u, on_alloc, on_udp)) != 0)
        return r;
    r = uv_udp_try_send(&p->h.u, &b, 1, to);
    return r < 0 ? r : 0;
}

static void probe_one(struct admin *a, size_t idx)
{
    const struct admin_port *pt = &a->ports[idx];
    struct admin_probe *p;
    struct sockaddr_storage ss;
    int r;

    if ((p = calloc(1, sizeof(*p))) == NULL)
        return;
    p->a = a;
    p->idx = idx;
    p->udp = strcmp(pt->proto, "udp") == 0;
    p->next = a->running;
    a->running = p;
    uv_timer_init(a->loop, &p->timer);
    if (p->udp)
        uv_udp_init(a->loop, &p->h.u);
    else
        uv_tcp_init(a->loop, &p->h.tcp);
    p->timer.data = p->h.tcp.data = p;
    p->open = 2;
    if (a->probes[idx].state == PROBE_NOT_YET) /* else the last result */
        a->probes[idx].state = PROBE_RUNNING;  /* shows until this one */
    if ((r = probe_target(pt, &ss)) != 0 ||
        (r = probe_begin(p, (struct sockaddr *)&ss)) != 0) {
        probe_finish(p, 0, hd_strerror(r));
        return;
    }
    uv_timer_start(&p->timer, on_timeout, ADMIN_PROBE_WAIT_MS, 0);
}

void admin_probe_start(struct admin *a)
{
    uint64_t now = uv_now(a->loop);

    if (a->stopped || a->running != NULL ||
        (a->probed_ms != 0 && now - a->probed_ms < ADMIN_PROBE_EVERY_MS))
        return;
    a->probed_ms = now ? now : 1;
    for (size_t i = 0; i < a->nports; i++)
        probe_one(a, i);
}

void admin_probe_cancel(struct admin *a)
{
    for (struct admin_probe *p = a->running; p != NULL; p = p->next)
        probe_finish(p, 0, "cancelled");
}

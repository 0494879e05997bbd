/*
 * The session thread: connect (on the session's loop), then a libuv loop
 * around one hd_channel.  See session.h; the handshake and login are
 * session_login.c, the live session's messages session_live.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "channel.h"
#include "clip.h"
#include "client/known_hosts.h"
#include "client/session_int.h"
#include "crypto.h"
#include "err.h"
#include "log.h"
#include "net.h"
#include "rudp.h"

static void close_noop(uv_handle_t *h)
{
    (void)h;
}

/* The session is over: tell the owner once, then let the loop wind down. */
void sess_finish(struct sess *s, int status, const char *msg)
{
    char clean[400];

    if (s->ended)
        return;
    if (msg != NULL) {
        /* it may quote the host or the server: no terminal escapes */
        snprintf(clean, sizeof(clean), "%s", msg);
        hd_log_printable(clean, strlen(clean));
        msg = clean;
    }
    s->ended = 1;
    s->state = ST_DONE;
    pthread_mutex_lock(&s->mu);
    s->loop_done = 1; /* no more uv_async_send from other threads */
    pthread_mutex_unlock(&s->mu);
    /* main prints msg for the user; keep the log free of duplicates */
    hd_debug("session", "ended: %s", status != 0 ? msg : "stopped");
    hd_channel_close(s->ch);
    s->ch = NULL;
    vxfer_free(s->xf);
    s->xf = NULL;
    hd_net_close((uv_handle_t *)&s->idle, close_noop);
    hd_net_close((uv_handle_t *)&s->wake, close_noop);
    s->cb.on_end(status, msg, s->ud);
}

void sess_failf(struct sess *s, const char *fmt, ...)
{
    char msg[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sess_finish(s, 1, msg);
}

void sess_send_msg(struct sess *s, const Hbb__Message *m)
{
    int r;

    if (s->ch != NULL && (r = hd_channel_send(s->ch, m)) != 0)
        sess_failf(s, "connection lost: %s", hd_strerror(r));
}

/* A Misc message with one bool set: refresh_video, video_received. */
void sess_send_misc_flag(struct sess *s, Hbb__Misc__UnionCase which)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Misc misc = HBB__MISC__INIT;

    misc.union_case = which;
    if (which == HBB__MISC__UNION_REFRESH_VIDEO)
        misc.refresh_video = 1;
    else
        misc.video_received = 1;
    m.union_case = HBB__MESSAGE__UNION_MISC;
    m.misc = &misc;
    sess_send_msg(s, &m);
}

void sess_send_refresh(struct sess *s)
{
    hd_debug("session", "asking for a key frame");
    sess_send_misc_flag(s, HBB__MISC__UNION_REFRESH_VIDEO);
}

static void on_channel_close(struct hd_channel *ch, int reason, void *ud)
{
    struct sess *s = ud;

    if (s->state == ST_LIVE)
        sess_failf(s, "connection to the host lost: %s", hd_strerror(reason));
    else if (reason == UV_EOF || reason == UV_ECONNRESET)
        sess_failf(s, "host refused the connection (closed it before login)");
    else
        sess_failf(s, "connection to the host failed: %s", hd_strerror(reason));
}

static void on_idle(uv_timer_t *t)
{
    struct sess *s = t->data;

    sess_failf(s, "no data from the host for %d s; giving up",
               SESS_IDLE_MS / 1000);
}

/* Woken by sess_send or sess_stop. */
static void on_wake(uv_async_t *a)
{
    struct sess *s = a->data;
    struct sess_input in;
    int stop;

    for (;;) {
        pthread_mutex_lock(&s->mu);
        stop = s->stop;
        if (s->in_count == 0) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        in = s->in[s->in_head];
        s->in_head = (s->in_head + 1) % SESS_INPUT_MAX;
        s->in_count--;
        pthread_mutex_unlock(&s->mu);
        if (!stop && s->state == ST_LIVE && s->ch != NULL) {
            int r = hd_channel_send_payload(s->ch, in.data, in.n);
            if (r != 0)
                sess_failf(s, "connection lost: %s", hd_strerror(r));
        }
        free(in.data);
    }
    if (stop)
        sess_finish(s, 0, NULL);
}

/* ---- thread ------------------------------------------------------------ */

static void *sess_main(void *arg)
{
    struct sess *s = arg;
    struct rv_request req = { .loop = &s->loop }; /* the race runs on it */
    struct rv_result res;
    char pin[320];
    int r;

    s->t0_ms = mono_ms();
    if (s->cfg.direct != NULL) {
        r = rv_connect_direct(&s->loop, s->cfg.direct, s->cancel[0], &res);
    } else {
        req.server = s->cfg.server;
        req.key_b64 = s->cfg.key_b64;
        req.id = s->cfg.id;
        req.version = HD_VERSION;
        req.cancel_fd = s->cancel[0];
        req.force_relay = s->cfg.force_relay;
        req.allow_plain_server = s->cfg.allow_plain_server;
        req.relay = s->cfg.relay;
        req.no_udp = s->cfg.no_udp;
        req.no_tcp = s->cfg.no_tcp;
        req.answer_ms = s->cfg.answer_ms;
        req.known_hosts = s->cfg.known_hosts;
        r = rv_connect_id(&req, &res);
        snprintf(s->host_id, sizeof(s->host_id), "%s", s->cfg.id);
        memcpy(s->host_pk, res.host_pk, sizeof(s->host_pk));
    }
    if (r != 0) {
        sess_finish(s, r == -ECANCELED ? 0 : 1,
                    r == -ECANCELED ? NULL : res.err);
        goto run;
    }
    snprintf(pin, sizeof(pin), "id:%s@%s", s->cfg.id ? s->cfg.id : "",
             s->cfg.server ? s->cfg.server : "");
    if (s->cfg.direct == NULL && sess_pin_host_key(s, pin) != 0) {
        hd_rudp_free(res.rudp);
        close(res.fd);
        goto run;
    }
    pthread_mutex_lock(&s->mu);
    s->st.path = (int)res.path;
    pthread_mutex_unlock(&s->mu);
    hd_info("session", "connected (%s) in %llu ms", rv_path_name(res.path),
            (unsigned long long)(mono_ms() - s->t0_ms));
    if (res.rudp != NULL) {
        /* UDP (client/upunch.h): the channel takes the socket and the
         * stream, and reads the SignedId frame the race already got */
        if ((r = hd_channel_open_udp(s->ch, res.fd, res.rudp)) != 0) {
            hd_rudp_free(res.rudp); /* the channel took only the socket */
            sess_failf(s, "cannot use the connection: %s", hd_strerror(r));
            goto run;
        }
    } else if ((r = uv_tcp_open(hd_channel_tcp(s->ch), res.fd)) != 0) {
        close(res.fd);
        sess_failf(s, "cannot use the connection: %s", hd_strerror(r));
        goto run;
    }
    if ((r = hd_channel_start(s->ch, res.pending, res.pending_len)) != 0) {
        sess_failf(s, "cannot read from the host: %s", hd_strerror(r));
        goto run;
    }
    uv_timer_start(&s->idle, on_idle, SESS_IDLE_MS, SESS_IDLE_MS);
run:
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static const struct hd_channel_cb channel_cb = {
    .on_message = sess_on_message,
    .on_close = on_channel_close,
};

int sess_new(const struct sess_config *cfg, struct dec *dec,
             const struct sess_cb *cb, void *ud, struct sess **out)
{
    struct sess *s;
    int r;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return -ENOMEM;
    s->cfg = *cfg;
    s->cb = *cb;
    s->ud = ud;
    s->dec = dec;
    s->st.path = -1;
    s->cancel[0] = s->cancel[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    if (pipe2(s->cancel, O_CLOEXEC) != 0) {
        r = -errno;
        goto fail;
    }
    if ((r = uv_loop_init(&s->loop)) != 0)
        goto fail;
    uv_async_init(&s->loop, &s->wake, on_wake);
    s->wake.data = s;
    uv_timer_init(&s->loop, &s->idle);
    s->idle.data = s;
    if ((r = hd_channel_new(&s->loop, 0, &channel_cb, s, &s->ch)) != 0) {
        uv_close((uv_handle_t *)&s->idle, NULL);
        uv_close((uv_handle_t *)&s->wake, NULL);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (s->cancel[0] >= 0) {
        close(s->cancel[0]);
        close(s->cancel[1]);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
    return r;
}

int sess_start(struct sess *s)
{
    if (pthread_create(&s->thread, NULL, sess_main, s) != 0)
        return -EAGAIN;
    s->started = 1;
    return 0;
}

int sess_send(struct sess *s, const Hbb__Message *m)
{
    size_t n = hbb__message__get_packed_size(m);
    uint8_t *buf;

    if ((buf = malloc(n ? n : 1)) == NULL)
        return -ENOMEM;
    hbb__message__pack(m, buf);
    pthread_mutex_lock(&s->mu);
    if (s->in_count == SESS_INPUT_MAX || s->stop) {
        pthread_mutex_unlock(&s->mu);
        free(buf);
        return -ENOBUFS;
    }
    s->in[(s->in_head + s->in_count) % SESS_INPUT_MAX] =
        (struct sess_input){ buf, n };
    s->in_count++;
    if (!s->loop_done)
        uv_async_send(&s->wake);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sess_stop(struct sess *s)
{
    char c = 1;
    int first;

    pthread_mutex_lock(&s->mu);
    first = !s->stop;
    s->stop = 1;
    if (first && !s->loop_done)
        uv_async_send(&s->wake);
    pthread_mutex_unlock(&s->mu);
    if (first && write(s->cancel[1], &c, 1) < 0)
        hd_debug("session", "cancel pipe: %s", strerror(errno));
}

void sess_get_stats(struct sess *s, struct sess_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

int sess_get_login(struct sess *s, char *name, size_t cap, uint8_t *salted)
{
    int r = -EAGAIN;

    pthread_mutex_lock(&s->mu);
    if (s->logged_in) {
        snprintf(name, cap, "%s", s->peer_name);
        memcpy(salted, s->salted, HD_SHA256_BYTES);
        r = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

void sess_free(struct sess *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        sess_stop(s);
        pthread_join(s->thread, NULL);
    } else {
        /* never ran: close the handles here */
        s->cb.on_end = NULL;
        if (!s->ended) {
            s->ended = 1;
            hd_channel_close(s->ch);
            hd_net_close((uv_handle_t *)&s->idle, close_noop);
            hd_net_close((uv_handle_t *)&s->wake, close_noop);
        }
        uv_run(&s->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&s->loop);
    while (s->in_count > 0) {
        free(s->in[s->in_head].data);
        s->in_head = (s->in_head + 1) % SESS_INPUT_MAX;
        s->in_count--;
    }
    close(s->cancel[0]);
    close(s->cancel[1]);
    pthread_mutex_destroy(&s->mu);
    sodium_memzero(s->salted, sizeof(s->salted));
    free(s);
}

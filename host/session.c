/*
 * Viewer sessions.  See session.h.  Memory: a session owns its channel
 * (freed by hd_channel_close) and an embedded timer; the struct is freed
 * in the timer's close callback, after the channel was closed, so no
 * callback can reach a freed session.  The login and the live messages are
 * in session_login.c and session_live.c (session_int.h).
 */
#include <sodium.h>

#include "host/session_int.h"

const char *session_path_name(enum session_path p)
{
    return p == SESSION_RELAY ? "relay"
           : p == SESSION_LAN ? "lan"
           : p == SESSION_UDP ? "udp"
                              : "direct";
}

uint64_t session_now_ms(struct session *s)
{
    return uv_now(s->h->loop);
}

/*
 * Sessions logged in (live 1) or not yet (live 0), other than self;
 * with ip, only those from ip; with relay, only relayed ones.
 */
int session_count_sessions(struct host *h, int live, const char *ip, int relay,
                           const struct session *self)
{
    int n = 0;

    for (struct session *o = h->sessions; o; o = o->next)
        n += o != self && (o->state == ST_LIVE) == live &&
             (ip == NULL || strcmp(o->ip, ip) == 0) &&
             (!relay || o->path == SESSION_RELAY);
    return n;
}

static void on_timer_closed(uv_handle_t *t)
{
    free(t->data);
}

/* Capture sound while some logged-in viewer wants it. */
void session_audio_recount(struct host *h)
{
    int n = 0;

    for (struct session *o = h->sessions; o; o = o->next)
        n += o->state == ST_LIVE && o->audio && !o->lingering;
    audio_set_active(h->audio, n > 0);
}

/* May this session be sent a frame now (see SESSION_IN_FLIGHT)? */
int session_video_room(const struct session *s)
{
    return !s->acks || s->in_flight < SESSION_IN_FLIGHT;
}

/* The capture thread runs while some live viewer can take a frame; 4:4:4
 * while every one takes it. */
void session_video_recount(struct host *h)
{
    int room = 0, full = 0, i444 = 1, tiles = 1;

    for (struct session *o = h->sessions; o; o = o->next) {
        if (o->state != ST_LIVE || o->xfer != NULL || o->lingering)
            continue;
        if (session_video_room(o))
            room++;
        else
            full++;
        i444 &= o->i444;
        tiles &= o->tiles;
    }
    if (h->video) {
        video_set_active(h->video, room > 0);
        video_set_refine_ok(h->video, full == 0);
        if (room + full > 0) {
            video_set_i444(h->video, i444);
            video_set_tiles(h->video, tiles);
        }
    }
}

int session_wants_i444(const Hbb__OptionMessage *o)
{
    const Hbb__SupportedDecoding *sd = o ? o->supported_decoding : NULL;

    return sd != NULL && sd->i444 != NULL && sd->i444->vp9 &&
           sd->prefer_chroma == HBB__CHROMA__I444;
}

int session_wants_tiles(const Hbb__OptionMessage *o)
{
    const Hbb__SupportedDecoding *sd = o ? o->supported_decoding : NULL;

    return sd != NULL && (sd->hd_tiles & 1) != 0;
}

void session_close(struct session *s, const char *reason)
{
    struct host *h = s->h;

    if (s->state == ST_CLOSING && s->ch == NULL)
        return;
    if (s->linked) {
        if (s->prev)
            s->prev->next = s->next;
        else
            h->sessions = s->next;
        if (s->next)
            s->next->prev = s->prev;
        s->linked = 0;
        h->n_sessions--;
    }
    if (s->state == ST_LIVE) {
        session_video_recount(h);
        session_audio_recount(h);
        if (h->input)
            input_release_all(h->input);
        hxfer_free(s->xfer);
        s->xfer = NULL;
        hd_info(MOD,
                "session with %s (%s) ended: %s (%llu frames sent, %llu "
                "dropped, %llu KiB; %llu audio frames sent, %llu dropped)",
                s->peer, session_path_name(s->path), reason,
                (unsigned long long)s->frames_sent,
                (unsigned long long)s->frames_dropped,
                (unsigned long long)(s->bytes_sent / 1024),
                (unsigned long long)s->audio_sent,
                (unsigned long long)s->audio_dropped);
    } else {
        hd_info(MOD, "connection from %s (%s) ended before login: %s", s->peer,
                session_path_name(s->path), reason);
    }
    s->state = ST_CLOSING;
    s->usock = NULL;
    hd_channel_close(s->ch);
    s->ch = NULL;
    hd_net_close((uv_handle_t *)&s->timer, on_timer_closed);
}

static void linger_done(uv_timer_t *t)
{
    struct session *s = t->data;

    session_close(s, s->end_reason ? s->end_reason : "closed");
}

/* Close after a short delay so a last message reaches the peer. */
void session_close_soon(struct session *s, const char *reason)
{
    s->end_reason = reason;
    s->lingering = 1; /* ignore everything from now on */
    uv_timer_start(&s->timer, linger_done, SESSION_LINGER_MS, 0);
}

int session_send_msg(struct session *s, Hbb__Message *m)
{
    int r = hd_channel_send(s->ch, m);

    if (r != 0 && r != -EPIPE)
        hd_debug(MOD, "send to %s: %s", s->peer, hd_strerror(r));
    return r;
}

void session_send_test_delay(struct session *s)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__TestDelay td = HBB__TEST_DELAY__INIT;

    td.time = (int64_t)(hd_addr_now_us() / 1000);
    td.from_client = 0;
    td.last_delay = s->last_delay;
    m.union_case = HBB__MESSAGE__UNION_TEST_DELAY;
    m.test_delay = &td;
    if (session_send_msg(s, &m) == 0)
        s->delay_sent_ms = session_now_ms(s);
}

static void on_tick(uv_timer_t *t)
{
    struct session *s = t->data;
    uint64_t now = session_now_ms(s);

    if (now - s->last_rx_ms > (uint64_t)s->h->o->idle_ms) {
        session_close(s, "no data from the viewer (timeout)");
        return;
    }
    if (s->state != ST_LIVE) {
        if (now - s->started_ms >
            (uint64_t)(s->asked ? SESSION_PASSWORD_MS : SESSION_LOGIN_MS)) {
            hd_info(MOD, "%s: no login within %d s: closed", s->peer,
                    (s->asked ? SESSION_PASSWORD_MS : SESSION_LOGIN_MS) / 1000);
            session_close(s, "no login in time");
        }
        return;
    }
    if (s->acks && s->in_flight > 0 &&
        now - s->last_ack_ms > SESSION_ACK_TIMEOUT_MS) {
        /* acknowledgements lost (or a viewer that asked and never
         * sends them): go on, as RustDesk's host does after its wait */
        if (s->acks_timed_out++ < 3)
            hd_debug(MOD,
                     "%s: no frame acknowledged for %u ms: %u frames "
                     "taken as lost",
                     s->peer, SESSION_ACK_TIMEOUT_MS, s->in_flight);
        s->in_flight = 0;
        s->last_ack_ms = now;
        session_video_recount(s->h);
    }
    /* one TestDelay outstanding at a time; re-send a lost one after 5 s */
    if (s->delay_sent_ms == 0 || now - s->delay_sent_ms > 5000)
        session_send_test_delay(s);
}

static void on_message(struct hd_channel *ch, const Hbb__Message *m, void *ud)
{
    struct session *s = ud;

    if (s->lingering)
        return;
    s->last_rx_ms = session_now_ms(s);
    switch (s->state) {
    case ST_HELLO:
        session_on_public_key(s, m);
        break;
    case ST_LOGIN:
        if (m->union_case == HBB__MESSAGE__UNION_LOGIN_REQUEST)
            session_on_login(s, m->login_request);
        else if (m->union_case == HBB__MESSAGE__UNION_TEST_DELAY)
            session_on_test_delay(s, m->test_delay);
        break;
    case ST_LIVE:
        session_on_live(s, m);
        break;
    case ST_CLOSING:
        break;
    }
}

static void on_close(struct hd_channel *ch, int reason, void *ud)
{
    struct session *s = ud;

    /* a peer that closes with our frames still unread in its socket sends
     * a reset, not a FIN: that is the viewer closing too */
    session_close(s, reason == UV_EOF ? "viewer closed the connection"
                     : reason == UV_ECONNRESET
                         ? "viewer closed the connection (reset: it left "
                           "frames unread)"
                         : hd_strerror(reason));
}

/*
 * OpenSSH's MaxStartups start:rate:full for connections that have not
 * logged in (n of them now): none dropped below HOST_PRELOGIN_START, from
 * there a new one with HOST_PRELOGIN_RATE percent rising linearly to 100
 * at HOST_MAX_PRELOGIN.  1 when this one is to be dropped.
 */
static int early_drop(struct host *h, int n)
{
    int p;

    if (n < HOST_PRELOGIN_START)
        return 0;
    if (n < HOST_MAX_PRELOGIN) {
        p = HOST_PRELOGIN_RATE + (100 - HOST_PRELOGIN_RATE) *
                                     (n - HOST_PRELOGIN_START) /
                                     (HOST_MAX_PRELOGIN - HOST_PRELOGIN_START);
        if ((int)randombytes_uniform(100) >= p)
            return 0;
    }
    /* one line per 16 drops: a flood must not flood the log too */
    if (h->early_drops++ % 16 == 0)
        hd_warn(MOD,
                "refused a connection: %d have not logged in yet (%llu "
                "refused so since start; from %d on new ones are refused "
                "at random, all at %d)",
                n, (unsigned long long)h->early_drops, HOST_PRELOGIN_START,
                HOST_MAX_PRELOGIN);
    return 1;
}

int session_new(struct host *h, enum session_path path, struct session **out)
{
    static const struct hd_channel_cb cb = { on_message, on_close };
    uint64_t now = uv_now(h->loop);
    struct session *s;
    int r;

    *out = NULL;
    if (early_drop(h, session_count_sessions(h, 0, NULL, 0, NULL)))
        return -EBUSY;
    if (path == SESSION_RELAY) {
        if (now - h->relay_window_ms >= 60000) {
            h->relay_window_ms = now;
            h->relay_connects = 0;
        }
        if (h->relay_connects >= HOST_RELAY_PER_MIN ||
            session_count_sessions(h, 0, NULL, 1, NULL) >= HOST_PRELOGIN_RELAY)
            return -EBUSY;
        h->relay_connects++;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return -ENOMEM;
    if ((r = hd_channel_new(h->loop, SESSION_MAX_MSG, &cb, s, &s->ch)) != 0) {
        free(s);
        return r;
    }
    s->h = h;
    s->path = path;
    uv_timer_init(h->loop, &s->timer);
    s->timer.data = s;
    snprintf(s->peer, sizeof(s->peer), "?");
    snprintf(s->ip, sizeof(s->ip), "?");
    s->next = h->sessions;
    if (h->sessions)
        h->sessions->prev = s;
    h->sessions = s;
    h->n_sessions++;
    s->linked = 1;
    s->started_ms = s->last_rx_ms = uv_now(h->loop);
    *out = s;
    return 0;
}

/* The budget key of a viewer address: 4 + IPv4, 6 + IPv6 /64, as
 * host_relay_src.key (host.h); 0 for anything else. */
static int origin_key(const struct sockaddr *sa, uint8_t key[9])
{
    memset(key, 0, 9);
    if (sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        key[0] = 6;
        memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 8);
    }
    return key[0] != 0;
}

/* Take one relay connect from the minute's budget of key: 1, or 0 when
 * spent.  An address not tracked takes the slot whose minute began
 * first. */
static int relay_src_take(struct host *h, const uint8_t key[9], uint64_t now)
{
    struct host_relay_src *e = NULL, *free_slot = NULL, *oldest = NULL;

    for (int i = 0; i < HOST_RELAY_SRCS && e == NULL; i++) {
        struct host_relay_src *t = &h->relay_src[i];

        if (t->key[0] == 0)
            free_slot = free_slot ? free_slot : t;
        else if (memcmp(t->key, key, 9) == 0)
            e = t;
        else if (oldest == NULL || t->since < oldest->since)
            oldest = t;
    }
    if (e == NULL) {
        e = free_slot ? free_slot : oldest;
        memcpy(e->key, key, 9);
        e->n = 0;
        e->since = now;
    }
    if (now - e->since >= 60000) {
        e->n = 0;
        e->since = now;
    }
    if (e->n >= HOST_RELAY_PER_SRC)
        return 0;
    e->n++;
    return 1;
}

int session_new_relay(struct host *h, const struct sockaddr *viewer,
                      struct session **out)
{
    uint8_t key[9], k2[9];
    char vs[HD_ADDR_STRLEN];
    int n = 0, r;

    *out = NULL;
    if (viewer != NULL && origin_key(viewer, key)) {
        for (struct session *o = h->sessions; o; o = o->next)
            n += o->path == SESSION_RELAY && o->state != ST_LIVE &&
                 o->has_origin &&
                 origin_key((struct sockaddr *)&o->origin, k2) &&
                 memcmp(k2, key, 9) == 0;
        hd_addr_format_ip(viewer, vs, sizeof(vs));
        if (n >= HOST_PRELOGIN_PER_IP) {
            hd_warn(MOD,
                    "relay request for %s refused: already %d relayed "
                    "connections from it that have not logged in",
                    vs, n);
            return -EBUSY;
        }
        if (!relay_src_take(h, key, uv_now(h->loop))) {
            hd_warn(MOD,
                    "relay request for %s refused: %d relay connects for it "
                    "in the last minute",
                    vs, HOST_RELAY_PER_SRC);
            return -EBUSY;
        }
    }
    if ((r = session_new(h, SESSION_RELAY, out)) != 0)
        return r;
    if (viewer != NULL)
        session_origin(*out, viewer);
    return 0;
}

void session_origin(struct session *s, const struct sockaddr *viewer)
{
    if (s->path != SESSION_RELAY || viewer == NULL ||
        (viewer->sa_family != AF_INET && viewer->sa_family != AF_INET6))
        return;
    memcpy(&s->origin, viewer, hd_addr_len(viewer));
    s->has_origin = 1;
}

uv_tcp_t *session_tcp(struct session *s)
{
    return hd_channel_tcp(s->ch);
}

int session_send_plain(struct session *s, const uint8_t *data, size_t n)
{
    return hd_channel_send_plain(s->ch, data, n);
}

/* Private, loopback and link-local addresses count as the LAN. */
static int is_lan(const struct sockaddr *sa)
{
    static const char *const nets[] = { "10.0.0.0/8",     "172.16.0.0/12",
                                        "192.168.0.0/16", "127.0.0.0/8",
                                        "169.254.0.0/16", "100.64.0.0/10",
                                        "fc00::/7",       "fe80::/10",
                                        "::1/128" };

    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
        if (hd_addr_in_cidr(sa, nets[i]) == 1)
            return 1;
    return 0;
}

/* The stream is up and s->peer_ss known: SignedId, then read. */
static int begin(struct session *s, const uint8_t *leftover, size_t n)
{
    int r;

    hd_addr_format((struct sockaddr *)&s->peer_ss, s->peer, sizeof(s->peer));
    hd_addr_format_ip((struct sockaddr *)&s->peer_ss, s->ip, sizeof(s->ip));
    if (s->has_origin)
        hd_addr_format_ip((struct sockaddr *)&s->origin, s->src_ip,
                          sizeof(s->src_ip));
    else
        snprintf(s->src_ip, sizeof(s->src_ip), "%s", s->ip);
    if (s->path == SESSION_DIRECT && is_lan((struct sockaddr *)&s->peer_ss))
        s->path = SESSION_LAN;
    hd_info(MOD, "connection from %s (%s)", s->peer,
            session_path_name(s->path));
    if (s->path != SESSION_RELAY &&
        session_count_sessions(s->h, 0, s->ip, 0, s) >= HOST_PRELOGIN_PER_IP) {
        hd_warn(MOD,
                "refused %s: already %d connections from %s that have not "
                "logged in",
                s->peer, HOST_PRELOGIN_PER_IP, s->ip);
        session_close(s, "too many unauthenticated connections");
        return -EBUSY;
    }
    if ((r = hd_channel_host_hello(s->ch, &s->h->ident.key, s->h->ident.id)) !=
            0 ||
        (r = hd_channel_start(s->ch, leftover, n)) != 0) {
        session_close(s, hd_strerror(r));
        return r;
    }
    uv_timer_start(&s->timer, on_tick, SESSION_TICK_MS, SESSION_TICK_MS);
    return 0;
}

int session_begin(struct session *s, const uint8_t *leftover, size_t n)
{
    uv_tcp_nodelay(session_tcp(s), 1);
    hd_channel_peer(s->ch, &s->peer_ss);
    return begin(s, leftover, n);
}

/* The rudp output of a session on a shared socket. */
static int send_shared(void *ud, const uint8_t *d, size_t n)
{
    struct session *s = ud;
    uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);

    if (s->usock == NULL)
        return -EPIPE;
    /* a datagram the socket cannot take now is lost and repaired */
    return uv_udp_try_send(s->usock, &b, 1, (struct sockaddr *)&s->peer_ss);
}

/* Until the channel takes the stream over (it sets its own output). */
static void no_output(const uint8_t *d, size_t n, void *ud)
{
    (void)d;
    (void)n;
    (void)ud;
}

int session_begin_udp(struct session *s, uint32_t conv, uv_udp_t *sock,
                      const struct sockaddr *peer, int fd)
{
    static const struct hd_rudp_cb cb = { no_output };
    struct hd_rudp *r = NULL;
    int e;

    memcpy(&s->peer_ss, peer, hd_addr_len(peer));
    s->conv = conv;
    if ((e = hd_rudp_new(conv, uv_now(s->h->loop), &cb, NULL, &r)) != 0)
        goto fail;
    if (fd >= 0) {
        e = hd_channel_open_udp(s->ch, fd, r);
        fd = -1; /* the channel took it, whatever the outcome */
        if (e != 0)
            goto fail;
    } else {
        if ((e = hd_channel_use_rudp(s->ch, r, peer, send_shared, s)) != 0)
            goto fail;
        s->usock = sock;
    }
    return begin(s, NULL, 0);
fail:
    hd_rudp_free(r);
    if (fd >= 0)
        os_sock_close((os_sock)fd);
    session_close(s, hd_strerror(e));
    return e;
}

struct session *session_udp_find(struct host *h, const uv_udp_t *sock,
                                 const struct sockaddr *from, uint32_t conv)
{
    for (struct session *s = h->sessions; s != NULL; s = s->next)
        if (s->conv == conv && s->path == SESSION_UDP &&
            (sock == NULL || s->usock == sock) &&
            hd_addr_same_ip(from, (struct sockaddr *)&s->peer_ss) &&
            hd_addr_port(from) == hd_addr_port((struct sockaddr *)&s->peer_ss))
            return s;
    return NULL;
}

int session_udp_input(struct host *h, uv_udp_t *sock,
                      const struct sockaddr *from, uint32_t conv,
                      const uint8_t *d, size_t n)
{
    struct session *s = session_udp_find(h, sock, from, conv);

    if (s == NULL || s->ch == NULL)
        return 0;
    hd_channel_datagram(s->ch, d, n);
    return 1;
}

void session_close_all(struct host *h, const char *reason)
{
    while (h->sessions != NULL)
        session_close(h->sessions, reason);
}

/*
 * Unit tests for common/channel: the session handshake and sealed frames,
 * with two real channels on a loopback TCP connection in one libuv loop,
 * then the same over the UDP transport (rudp) on two loopback UDP
 * sockets: the channel's own (hd_channel_open_udp) and an owner's that
 * drops a fifth of the datagrams (hd_channel_use_rudp).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "channel.h"
#include "err.h"
#include "frame.h"
#include "net.h"
#include "rudp.h"
#include "tests/harness.h"

struct side {
    struct hd_channel *ch;
    int msgs;
    int closed_reason;
    char last_clip[64];
    int got_signed_id, got_public_key;
    uint8_t sid_buf[1024];
    size_t sid_len;
    Hbb__PublicKey pk;
    uint8_t pk_a[64], pk_s[64];
    int first_case; /* union case of the first message */
    size_t big_len; /* the last clipboard above 63 bytes: length, hash */
    uint8_t big_hash[32];
};

static struct side host, viewer;
static uv_loop_t loop;
static uv_tcp_t lis;
static struct hd_sign_key host_key;

static void on_message(struct hd_channel *ch, const Hbb__Message *m, void *ud)
{
    struct side *s = ud;

    if (s->msgs++ == 0)
        s->first_case = (int)m->union_case;
    if (m->union_case == HBB__MESSAGE__UNION_SIGNED_ID) {
        s->got_signed_id = 1;
        s->sid_len = m->signed_id->id.len < sizeof(s->sid_buf)
                         ? m->signed_id->id.len
                         : sizeof(s->sid_buf);
        memcpy(s->sid_buf, m->signed_id->id.data, s->sid_len);
    } else if (m->union_case == HBB__MESSAGE__UNION_PUBLIC_KEY) {
        s->got_public_key = 1;
        hbb__public_key__init(&s->pk);
        memcpy(s->pk_a, m->public_key->asymmetric_value.data,
               m->public_key->asymmetric_value.len < 64
                   ? m->public_key->asymmetric_value.len
                   : 64);
        memcpy(s->pk_s, m->public_key->symmetric_value.data,
               m->public_key->symmetric_value.len < 64
                   ? m->public_key->symmetric_value.len
                   : 64);
        s->pk.asymmetric_value.data = s->pk_a;
        s->pk.asymmetric_value.len = m->public_key->asymmetric_value.len;
        s->pk.symmetric_value.data = s->pk_s;
        s->pk.symmetric_value.len = m->public_key->symmetric_value.len;
    } else if (m->union_case == HBB__MESSAGE__UNION_CLIPBOARD) {
        size_t n =
            m->clipboard->content.len < 63 ? m->clipboard->content.len : 63;
        memcpy(s->last_clip, m->clipboard->content.data, n);
        s->last_clip[n] = '\0';
        if (m->clipboard->content.len > 63) {
            s->big_len = m->clipboard->content.len;
            crypto_generichash(s->big_hash, 32, m->clipboard->content.data,
                               m->clipboard->content.len, NULL, 0);
        }
    }
    uv_stop(&loop);
}

static void on_close(struct hd_channel *ch, int reason, void *ud)
{
    struct side *s = ud;

    s->closed_reason = reason ? reason : -1;
    uv_stop(&loop);
}

static const struct hd_channel_cb cbs = { on_message, on_close };

static void on_conn(uv_stream_t *l, int status)
{
    HT_EQ_INT(status, 0);
    HT_EQ_INT(hd_channel_new(&loop, 0, &cbs, &host, &host.ch), 0);
    HT_EQ_INT(uv_accept(l, (uv_stream_t *)hd_channel_tcp(host.ch)), 0);
    HT_EQ_INT(hd_channel_start(host.ch, NULL, 0), 0);
    uv_stop(&loop);
}

static void on_connected(uv_connect_t *req, int status)
{
    HT_EQ_INT(status, 0);
    HT_EQ_INT(hd_channel_start(viewer.ch, NULL, 0), 0);
}

static void pump(int *flag)
{
    for (int i = 0; i < 200 && !*flag; i++)
        uv_run(&loop, UV_RUN_ONCE);
}

static void connect_pair(void)
{
    struct sockaddr_in sa;
    int len = sizeof(sa);
    static uv_connect_t req;

    memset(&host, 0, sizeof(host));
    memset(&viewer, 0, sizeof(viewer));
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&loop, &lis);
    uv_tcp_bind(&lis, (struct sockaddr *)&sa, 0);
    uv_listen((uv_stream_t *)&lis, 4, on_conn);
    uv_tcp_getsockname(&lis, (struct sockaddr *)&sa, &len);
    HT_EQ_INT(hd_channel_new(&loop, 0, &cbs, &viewer, &viewer.ch), 0);
    HT_EQ_INT(uv_tcp_connect(&req, hd_channel_tcp(viewer.ch),
                             (struct sockaddr *)&sa, on_connected),
              0);
    for (int i = 0; i < 200 && host.ch == NULL; i++)
        uv_run(&loop, UV_RUN_ONCE);
    HT_CHECK(host.ch != NULL);
}

static void teardown(void)
{
    hd_channel_close(host.ch);
    hd_channel_close(viewer.ch);
    uv_close((uv_handle_t *)&lis, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void send_clip(struct hd_channel *ch, const char *text)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Clipboard c = HBB__CLIPBOARD__INIT;

    c.content.data = (uint8_t *)text;
    c.content.len = strlen(text);
    m.union_case = HBB__MESSAGE__UNION_CLIPBOARD;
    m.clipboard = &c;
    HT_EQ_INT(hd_channel_send(ch, &m), 0);
}

static void handshake_then_sealed_messages(void)
{
    Hbb__SignedId sid = HBB__SIGNED_ID__INIT;

    connect_pair();
    HT_EQ_INT(hd_channel_host_hello(host.ch, &host_key, "123456789"), 0);
    pump(&viewer.got_signed_id);
    HT_CHECK(viewer.got_signed_id);
    sid.id.data = viewer.sid_buf;
    sid.id.len = viewer.sid_len;
    HT_EQ_INT(
        hd_channel_viewer_accept(viewer.ch, &sid, host_key.pk, "123456789"), 0);
    HT_CHECK(hd_channel_is_secure(viewer.ch));
    pump(&host.got_public_key);
    HT_EQ_INT(hd_channel_host_accept(host.ch, &host.pk), 0);
    HT_CHECK(hd_channel_is_secure(host.ch));
    send_clip(viewer.ch, "from viewer");
    send_clip(host.ch, "from host");
    for (int i = 0; i < 200 && (!host.last_clip[0] || !viewer.last_clip[0]);
         i++)
        uv_run(&loop, UV_RUN_ONCE);
    HT_EQ_STR(host.last_clip, "from viewer");
    HT_EQ_STR(viewer.last_clip, "from host");
    HT_EQ_INT(host.closed_reason, 0);
    teardown();
}

static void wrong_key_or_id_refused(void)
{
    Hbb__SignedId sid = HBB__SIGNED_ID__INIT;
    struct hd_sign_key other = { 0 };

    connect_pair();
    HT_EQ_INT(hd_sign_key_generate(&other), 0);
    HT_EQ_INT(hd_channel_host_hello(host.ch, &host_key, "123456789"), 0);
    pump(&viewer.got_signed_id);
    sid.id.data = viewer.sid_buf;
    sid.id.len = viewer.sid_len;
    HT_EQ_INT(hd_channel_viewer_accept(viewer.ch, &sid, other.pk, "123456789"),
              HD_EAUTH);
    HT_EQ_INT(
        hd_channel_viewer_accept(viewer.ch, &sid, host_key.pk, "987654321"),
        HD_EAUTH);
    HT_CHECK(!hd_channel_is_secure(viewer.ch));
    hd_sign_key_cleanup(&other);
    teardown();
}

static void unencrypted_request_refused(void)
{
    Hbb__PublicKey empty = HBB__PUBLIC_KEY__INIT;

    connect_pair();
    HT_EQ_INT(hd_channel_host_hello(host.ch, &host_key, "123456789"), 0);
    HT_EQ_INT(hd_channel_host_accept(host.ch, &empty), HD_EPROTO);
    HT_CHECK(!hd_channel_is_secure(host.ch));
    teardown();
}

static void garbage_frame_closes(void)
{
    static const uint8_t junk[] = { 0xff, 0xfe, 0xfd, 0xfc, 0xfb };

    connect_pair();
    /* a frame that is not a Message: the host side ends with HD_EPROTO */
    HT_EQ_INT(hd_channel_send_plain(viewer.ch, junk, sizeof(junk)), 0);
    for (int i = 0; i < 200 && host.closed_reason == 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    HT_EQ_INT(host.closed_reason, HD_EPROTO);
    teardown();
}

/* ---- the UDP transport ---- */

/* Run the loop until *flag is set or 20 s passed. */
static void pump_until(const int *flag)
{
    uint64_t end = uv_now(&loop) + 20000;

    while (!*flag && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
}

static void no_output(const uint8_t *d, size_t n, void *ud)
{
}

static const struct hd_rudp_cb no_cb = { no_output };

/* A UDP socket on 127.0.0.1, its address in *sa. */
static int udp_socket(struct sockaddr_in *sa)
{
    socklen_t len = sizeof(*sa);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    uv_ip4_addr("127.0.0.1", 0, sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)sa, &len) != 0)
        return -1;
    return fd;
}

static void sealed_session(void)
{
    Hbb__SignedId sid = HBB__SIGNED_ID__INIT;

    HT_EQ_INT(hd_channel_host_hello(host.ch, &host_key, "123456789"), 0);
    pump_until(&viewer.got_signed_id);
    HT_CHECK(viewer.got_signed_id);
    sid.id.data = viewer.sid_buf;
    sid.id.len = viewer.sid_len;
    HT_EQ_INT(
        hd_channel_viewer_accept(viewer.ch, &sid, host_key.pk, "123456789"), 0);
    pump_until(&host.got_public_key);
    HT_CHECK(host.got_public_key);
    HT_EQ_INT(hd_channel_host_accept(host.ch, &host.pk), 0);
    HT_CHECK(hd_channel_is_secure(host.ch) && hd_channel_is_secure(viewer.ch));
    send_clip(viewer.ch, "from viewer");
    send_clip(host.ch, "from host");
    for (uint64_t end = uv_now(&loop) + 5000;
         (!host.last_clip[0] || !viewer.last_clip[0]) && uv_now(&loop) < end;)
        uv_run(&loop, UV_RUN_ONCE);
    HT_EQ_STR(host.last_clip, "from viewer");
    HT_EQ_STR(viewer.last_clip, "from host");
}

/* Send size random bytes as one clipboard from host to viewer. */
static void big_message(size_t size)
{
    uint8_t *big = malloc(size), want[32];
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Clipboard c = HBB__CLIPBOARD__INIT;
    int got = 0;

    HT_CHECK(big != NULL);
    randombytes_buf(big, size);
    crypto_generichash(want, 32, big, size, NULL, 0);
    c.content.data = big;
    c.content.len = size;
    m.union_case = HBB__MESSAGE__UNION_CLIPBOARD;
    m.clipboard = &c;
    viewer.big_len = 0;
    HT_EQ_INT(hd_channel_send(host.ch, &m), 0);
    free(big);
    /* queued or in flight, not yet acknowledged */
    HT_CHECK(hd_channel_backlog(host.ch) > size / 2);
    for (uint64_t end = uv_now(&loop) + 20000;
         uv_now(&loop) < end && !(got = viewer.big_len == size);)
        uv_run(&loop, UV_RUN_ONCE);
    HT_EQ_INT(viewer.big_len, size);
    HT_EQ_MEM(viewer.big_hash, want, 32);
    /* the acks come back: nothing left outstanding */
    for (uint64_t end = uv_now(&loop) + 5000;
         uv_now(&loop) < end && hd_channel_backlog(host.ch) > 0;)
        uv_run(&loop, UV_RUN_ONCE);
    HT_EQ_INT(hd_channel_backlog(host.ch), 0);
}

static void udp_teardown(void)
{
    hd_channel_close(host.ch);
    hd_channel_close(viewer.ch);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static void udp_channel_session_large_message_eof(void)
{
    struct sockaddr_in ha, va;
    struct sockaddr_storage peer;
    struct hd_rudp *hr, *vr;
    int hfd, vfd;

    memset(&host, 0, sizeof(host));
    memset(&viewer, 0, sizeof(viewer));
    hfd = udp_socket(&ha);
    vfd = udp_socket(&va);
    HT_CHECK(hfd >= 0 && vfd >= 0);
    HT_EQ_INT(connect(hfd, (struct sockaddr *)&va, sizeof(va)), 0);
    HT_EQ_INT(connect(vfd, (struct sockaddr *)&ha, sizeof(ha)), 0);
    HT_EQ_INT(hd_rudp_new(0xC0FFEE, uv_now(&loop), &no_cb, NULL, &hr), 0);
    HT_EQ_INT(hd_rudp_new(0xC0FFEE, uv_now(&loop), &no_cb, NULL, &vr), 0);
    HT_EQ_INT(hd_channel_new(&loop, 0, &cbs, &host, &host.ch), 0);
    HT_EQ_INT(hd_channel_new(&loop, 0, &cbs, &viewer, &viewer.ch), 0);
    HT_EQ_INT(hd_channel_open_udp(host.ch, hfd, hr), 0);
    HT_EQ_INT(hd_channel_open_udp(viewer.ch, vfd, vr), 0);
    HT_EQ_INT(hd_channel_start(host.ch, NULL, 0), 0);
    HT_EQ_INT(hd_channel_start(viewer.ch, NULL, 0), 0);
    HT_EQ_INT(hd_channel_peer(viewer.ch, &peer), 0);
    HT_EQ_INT(hd_net_port((struct sockaddr *)&peer), ntohs(ha.sin_port));

    sealed_session();
    big_message(3u << 20);
    HT_EQ_INT(host.closed_reason, 0);
    HT_EQ_INT(viewer.closed_reason, 0);

    /* the viewer leaves: its FIN ends the host's channel with UV_EOF */
    hd_channel_close(viewer.ch);
    viewer.ch = NULL;
    pump_until(&host.closed_reason);
    HT_EQ_INT(host.closed_reason, UV_EOF);
    udp_teardown();
}

/* An owner's sockets, sending through a lossy callback. */
struct owner {
    uv_udp_t udp;
    struct sockaddr_in to;
    struct side *side;
    uint64_t rng;
    unsigned sent, dropped;
};

static struct owner oh, ov;

static int lossy_send(void *ud, const uint8_t *d, size_t n)
{
    struct owner *o = ud;
    uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);

    o->rng ^= o->rng << 13;
    o->rng ^= o->rng >> 7;
    o->rng ^= o->rng << 17;
    o->sent++;
    if (o->rng % 5 == 0) {
        o->dropped++;
        return 0;
    }
    return uv_udp_try_send(&o->udp, &b, 1, (struct sockaddr *)&o->to) < 0 ? -1
                                                                          : 0;
}

static void owner_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static uint8_t mem[2048];

    buf->base = (char *)mem;
    buf->len = sizeof(mem);
}

static void owner_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                       const struct sockaddr *from, unsigned flags)
{
    struct owner *o = u->data;

    if (nread > 0 && o->side->ch != NULL &&
        hd_rudp_peek_conv((uint8_t *)buf->base, (size_t)nread) == 0xBEEF)
        hd_channel_datagram(o->side->ch, (uint8_t *)buf->base, (size_t)nread);
}

static void owner_open(struct owner *o, struct side *s, uint64_t seed)
{
    struct sockaddr_in sa;

    memset(o, 0, sizeof(*o));
    o->side = s;
    o->rng = seed;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    HT_EQ_INT(hd_net_bind_udp(&loop, &o->udp, (struct sockaddr *)&sa, 0), 0);
    o->udp.data = o;
    HT_EQ_INT(uv_udp_recv_start(&o->udp, owner_alloc, owner_recv), 0);
}

static void lossy_owner_sockets(void)
{
    struct sockaddr_storage a;
    struct hd_rudp *hr, *vr;

    memset(&host, 0, sizeof(host));
    memset(&viewer, 0, sizeof(viewer));
    owner_open(&oh, &host, 12345);
    owner_open(&ov, &viewer, 67890);
    HT_EQ_INT(hd_net_local_addr((uv_handle_t *)&ov.udp, &a), 0);
    memcpy(&oh.to, &a, sizeof(oh.to));
    HT_EQ_INT(hd_net_local_addr((uv_handle_t *)&oh.udp, &a), 0);
    memcpy(&ov.to, &a, sizeof(ov.to));
    HT_EQ_INT(hd_rudp_new(0xBEEF, uv_now(&loop), &no_cb, NULL, &hr), 0);
    HT_EQ_INT(hd_rudp_new(0xBEEF, uv_now(&loop), &no_cb, NULL, &vr), 0);
    HT_EQ_INT(hd_channel_new(&loop, 0, &cbs, &host, &host.ch), 0);
    HT_EQ_INT(hd_channel_new(&loop, 0, &cbs, &viewer, &viewer.ch), 0);
    HT_EQ_INT(hd_channel_use_rudp(host.ch, hr, (struct sockaddr *)&oh.to,
                                  lossy_send, &oh),
              0);
    HT_EQ_INT(hd_channel_use_rudp(viewer.ch, vr, (struct sockaddr *)&ov.to,
                                  lossy_send, &ov),
              0);
    HT_EQ_INT(hd_channel_use_rudp(viewer.ch, vr, NULL, lossy_send, &ov),
              -EALREADY);
    HT_EQ_INT(hd_channel_start(host.ch, NULL, 0), 0);
    HT_EQ_INT(hd_channel_start(viewer.ch, NULL, 0), 0);

    sealed_session();
    big_message(1u << 20);
    HT_CHECK(oh.dropped > 0 && oh.dropped < oh.sent);
    HT_EQ_INT(host.closed_reason, 0);
    HT_EQ_INT(viewer.closed_reason, 0);
    printf("# lossy: host sent %u datagrams, dropped %u\n", oh.sent,
           oh.dropped);
    /* channels first: their FINs go out through the owner's sockets */
    hd_channel_close(host.ch);
    hd_channel_close(viewer.ch);
    uv_close((uv_handle_t *)&oh.udp, NULL);
    uv_close((uv_handle_t *)&ov.udp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}

/*
 * Bytes the viewer already read out of rudp come first (leftover), then
 * what arrived before hd_channel_start, then the rest.
 */
static void udp_leftover_first(void)
{
    struct sockaddr_in ha, va;
    struct hd_rudp *hr, *vr;
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Clipboard c = HBB__CLIPBOARD__INIT;
    uint8_t left[64];
    size_t n, h;
    int hfd, vfd;

    c.content.data = (uint8_t *)"zero";
    c.content.len = 4;
    m.union_case = HBB__MESSAGE__UNION_CLIPBOARD;
    m.clipboard = &c;
    n = hbb__message__get_packed_size(&m);
    h = hd_frame_header(left, n);
    hbb__message__pack(&m, left + h);

    memset(&host, 0, sizeof(host));
    memset(&viewer, 0, sizeof(viewer));
    hfd = udp_socket(&ha);
    vfd = udp_socket(&va);
    HT_EQ_INT(connect(hfd, (struct sockaddr *)&va, sizeof(va)), 0);
    HT_EQ_INT(connect(vfd, (struct sockaddr *)&ha, sizeof(ha)), 0);
    HT_EQ_INT(hd_rudp_new(7, uv_now(&loop), &no_cb, NULL, &hr), 0);
    HT_EQ_INT(hd_rudp_new(7, uv_now(&loop), &no_cb, NULL, &vr), 0);
    HT_EQ_INT(hd_channel_new(&loop, 0, &cbs, &host, &host.ch), 0);
    HT_EQ_INT(hd_channel_new(&loop, 0, &cbs, &viewer, &viewer.ch), 0);
    HT_EQ_INT(hd_channel_open_udp(host.ch, hfd, hr), 0);
    HT_EQ_INT(hd_channel_start(host.ch, NULL, 0), 0);
    HT_EQ_INT(hd_channel_open_udp(viewer.ch, vfd, vr), 0);
    /* two plain frames before the viewer's channel starts */
    HT_EQ_INT(hd_channel_host_hello(host.ch, &host_key, "123456789"), 0);
    send_clip(host.ch, "second");
    HT_EQ_INT(hd_channel_start(viewer.ch, left, h + n), 0);
    HT_EQ_INT(viewer.first_case, HBB__MESSAGE__UNION_CLIPBOARD);
    pump_until(&viewer.got_signed_id);
    for (uint64_t end = uv_now(&loop) + 5000;
         strcmp(viewer.last_clip, "second") != 0 && uv_now(&loop) < end;)
        uv_run(&loop, UV_RUN_ONCE);
    HT_EQ_STR(viewer.last_clip, "second");
    HT_EQ_INT(viewer.msgs, 3);
    udp_teardown();
}

int main(void)
{
    ht_init("channel");
    if (hd_crypto_init() != 0 || uv_loop_init(&loop) != 0 ||
        hd_sign_key_generate(&host_key) != 0)
        return 1;
    HT_RUN(handshake_then_sealed_messages);
    HT_RUN(wrong_key_or_id_refused);
    HT_RUN(unencrypted_request_refused);
    HT_RUN(garbage_frame_closes);
    HT_RUN(udp_channel_session_large_message_eof);
    HT_RUN(lossy_owner_sockets);
    HT_RUN(udp_leftover_first);
    hd_sign_key_cleanup(&host_key);
    uv_loop_close(&loop);
    return ht_finish();
}

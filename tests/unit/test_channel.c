/*
 * Unit tests for common/channel: the session handshake and sealed frames,
 * with two real channels on a loopback TCP connection in one libuv loop.
 */
#include <string.h>

#include <sodium.h>

#include "channel.h"
#include "err.h"
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
};

static struct side host, viewer;
static uv_loop_t loop;
static uv_tcp_t lis;
static struct hd_sign_key host_key;

static void on_message(struct hd_channel *ch, const Hbb__Message *m, void *ud)
{
    struct side *s = ud;

    s->msgs++;
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
    hd_sign_key_cleanup(&host_key);
    uv_loop_close(&loop);
    return ht_finish();
}

/*
 * Integration tests of homedesk-viewer: the real server (support.h) and
 * the real viewer program, against a test double of a host built on
 * common/channel.h.  The fake host registers with the server over UDP,
 * answers FetchLocalAddr / RequestRelay over TCP as a RustDesk host does,
 * and serves sessions from a libuv loop on a thread of this program:
 * SignedId (with the sign_pk extension), Hash, LoginResponse, then VP9
 * frames of a known four-colour pattern (libvpx) and TestDelay probes.
 * The viewer runs --headless (frames, PNG, stats line) and, under Xvfb,
 * with its SDL window (a screenshot is checked for the pattern).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>
#include <vpx/vp8cx.h>
#include <vpx/vpx_encoder.h>

#include "addr.h"
#include "channel.h"
#include "crypto.h"
#include "err.h"
#include "frame.h"
#include "net.h"
#include "tests/harness.h"
#include "tests/image.h"
#include "tests/integration/support.h"
#include "tests/unit/xvfb.h"

#define T        3000 /* ms to wait for an answer */
#define W        256  /* the fake display */
#define H        192
#define PASSWORD "s3cret-pw"
#define HOST_ID  "123456789"

static struct srv srv;
static int srv_ok;

/* The pattern: four quadrants. */
static const uint8_t quad_rgb[4][3] = {
    { 220, 30, 30 },  /* top left: red */
    { 30, 200, 40 },  /* top right: green */
    { 30, 40, 220 },  /* bottom left: blue */
    { 235, 235, 235 } /* bottom right: white */
};

/* ---- the fake host's session side (libuv thread) ------------------------ */

struct fhost;

struct fsess {
    struct fhost *h;
    struct hd_channel *ch;
    char challenge[8];
    int live;
};

struct fhost {
    uv_loop_t loop;
    uv_tcp_t lis;
    uv_async_t wake;
    uv_timer_t frame_timer;
    pthread_t thread;
    pthread_mutex_t mu;
    int stop;
    int adopt_fd; /* a relayed socket to serve, or -1 */
    uint16_t port;
    struct hd_sign_key key;
    char id[16];
    uint8_t salted[HD_SHA256_BYTES];
    struct fsess *sess; /* one at a time */
    vpx_codec_ctx_t enc;
    vpx_image_t img;
    int64_t pts;
    int force_key;
    uint64_t last_probe_ms;
    int probe_out;
    /* what the viewer sent (read after the thread stopped) */
    int logins, bad_logins, refreshes, delays_echoed;
    char username[64];
};

static void fill_pattern(vpx_image_t *img)
{
    int x, y, q, cy, cu, cv;

    for (y = 0; y < H; y++) {
        for (x = 0; x < W; x++) {
            const uint8_t *c;

            q = (y >= H / 2) * 2 + (x >= W / 2);
            c = quad_rgb[q];
            cy = (66 * c[0] + 129 * c[1] + 25 * c[2] + 128) / 256 + 16;
            img->planes[0][y * img->stride[0] + x] = (uint8_t)cy;
            if ((x & 1) == 0 && (y & 1) == 0) {
                cu = (-38 * c[0] - 74 * c[1] + 112 * c[2] + 128) / 256 + 128;
                cv = (112 * c[0] - 94 * c[1] - 18 * c[2] + 128) / 256 + 128;
                img->planes[1][(y / 2) * img->stride[1] + x / 2] = (uint8_t)cu;
                img->planes[2][(y / 2) * img->stride[2] + x / 2] = (uint8_t)cv;
            }
        }
    }
}

static int enc_init(struct fhost *h)
{
    vpx_codec_enc_cfg_t cfg;

    if (vpx_codec_enc_config_default(vpx_codec_vp9_cx(), &cfg, 0) != 0)
        return -1;
    cfg.g_w = W;
    cfg.g_h = H;
    cfg.g_timebase.num = 1;
    cfg.g_timebase.den = 1000;
    cfg.rc_target_bitrate = 800;
    cfg.g_lag_in_frames = 0;
    cfg.rc_end_usage = VPX_CBR;
    cfg.kf_mode = VPX_KF_DISABLED;
    cfg.g_error_resilient = 1;
    if (vpx_codec_enc_init(&h->enc, vpx_codec_vp9_cx(), &cfg, 0) != 0)
        return -1;
    vpx_codec_control(&h->enc, VP8E_SET_CPUUSED, 8);
    if (vpx_img_alloc(&h->img, VPX_IMG_FMT_I420, W, H, 16) == NULL)
        return -1;
    fill_pattern(&h->img);
    return 0;
}

static void fsess_end(struct fsess *s)
{
    struct fhost *h = s->h;

    hd_channel_close(s->ch);
    if (h->sess == s)
        h->sess = NULL;
    uv_timer_stop(&h->frame_timer);
    free(s);
}

static void send_video(struct fhost *h)
{
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__VideoFrame vf = HBB__VIDEO_FRAME__INIT;
    Hbb__EncodedVideoFrames efs = HBB__ENCODED_VIDEO_FRAMES__INIT;
    Hbb__EncodedVideoFrame ef[4], *efp[4];
    const vpx_codec_cx_pkt_t *pkt;
    vpx_codec_iter_t iter = NULL;
    int flags = h->force_key ? VPX_EFLAG_FORCE_KF : 0;

    h->force_key = 0;
    if (vpx_codec_encode(&h->enc, &h->img, h->pts, 1, flags, VPX_DL_REALTIME) !=
        0)
        return;
    h->pts += 16;
    while ((pkt = vpx_codec_get_cx_data(&h->enc, &iter)) != NULL) {
        if (pkt->kind != VPX_CODEC_CX_FRAME_PKT || efs.n_frames == 4)
            continue;
        hbb__encoded_video_frame__init(&ef[efs.n_frames]);
        ef[efs.n_frames].data.data = pkt->data.frame.buf;
        ef[efs.n_frames].data.len = pkt->data.frame.sz;
        ef[efs.n_frames].key = !!(pkt->data.frame.flags & VPX_FRAME_IS_KEY);
        ef[efs.n_frames].pts = pkt->data.frame.pts;
        efp[efs.n_frames] = &ef[efs.n_frames];
        efs.n_frames++;
    }
    if (efs.n_frames == 0 || h->sess == NULL)
        return;
    efs.frames = efp;
    vf.union_case = HBB__VIDEO_FRAME__UNION_VP9S;
    vf.vp9s = &efs;
    m.union_case = HBB__MESSAGE__UNION_VIDEO_FRAME;
    m.video_frame = &vf;
    hd_channel_send(h->sess->ch, &m);
}

static void on_frame_timer(uv_timer_t *t)
{
    struct fhost *h = t->data;
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__TestDelay td = HBB__TEST_DELAY__INIT;

    if (h->sess == NULL || !h->sess->live)
        return;
    send_video(h);
    if (h->sess != NULL && !h->probe_out &&
        uv_now(&h->loop) - h->last_probe_ms > 200) {
        td.time = (int64_t)uv_now(&h->loop);
        td.last_delay = 7; /* reported round trip, checked in stats */
        m.union_case = HBB__MESSAGE__UNION_TEST_DELAY;
        m.test_delay = &td;
        hd_channel_send(h->sess->ch, &m);
        h->probe_out = 1;
        h->last_probe_ms = uv_now(&h->loop);
    }
}

static void fsess_message(struct hd_channel *ch, const Hbb__Message *in,
                          void *ud)
{
    struct fsess *s = ud;
    struct fhost *h = s->h;
    Hbb__Message m = HBB__MESSAGE__INIT;
    Hbb__Hash hash = HBB__HASH__INIT;
    Hbb__LoginResponse lr = HBB__LOGIN_RESPONSE__INIT;
    Hbb__PeerInfo pi = HBB__PEER_INFO__INIT;
    Hbb__DisplayInfo di = HBB__DISPLAY_INFO__INIT, *dip = &di;

    switch (in->union_case) {
    case HBB__MESSAGE__UNION_PUBLIC_KEY:
        if (hd_channel_host_accept(ch, in->public_key) != 0) {
            fsess_end(s);
            return;
        }
        hash.salt = "saltySALT";
        hash.challenge = s->challenge;
        m.union_case = HBB__MESSAGE__UNION_HASH;
        m.hash = &hash;
        hd_channel_send(ch, &m);
        break;
    case HBB__MESSAGE__UNION_LOGIN_REQUEST:
        pthread_mutex_lock(&h->mu);
        snprintf(h->username, sizeof(h->username), "%s",
                 in->login_request->username);
        pthread_mutex_unlock(&h->mu);
        m.union_case = HBB__MESSAGE__UNION_LOGIN_RESPONSE;
        m.login_response = &lr;
        if (hd_login_verify(h->salted, s->challenge, hd_channel_binding(ch),
                            in->login_request->password.data,
                            in->login_request->password.len) != 0 ||
            in->login_request->option == NULL ||
            in->login_request->option->supported_decoding == NULL ||
            in->login_request->option->supported_decoding->ability_vp9 != 1) {
            h->bad_logins++;
            lr.union_case = HBB__LOGIN_RESPONSE__UNION_ERROR;
            lr.error = "Wrong Password";
            hd_channel_send(ch, &m);
            break;
        }
        h->logins++;
        di.width = W;
        di.height = H;
        di.name = "fake";
        pi.n_displays = 1;
        pi.displays = &dip;
        pi.hostname = "fakehost";
        pi.platform = "Linux";
        pi.version = "1.4.0";
        lr.union_case = HBB__LOGIN_RESPONSE__UNION_PEER_INFO;
        lr.peer_info = &pi;
        hd_channel_send(ch, &m);
        s->live = 1;
        h->force_key = 1;
        uv_timer_start(&h->frame_timer, on_frame_timer, 0, 16);
        break;
    case HBB__MESSAGE__UNION_TEST_DELAY:
        if (!in->test_delay->from_client && in->test_delay->last_delay == 7) {
            h->delays_echoed++;
            h->probe_out = 0;
        }
        break;
    case HBB__MESSAGE__UNION_MISC:
        if (in->misc->union_case == HBB__MISC__UNION_REFRESH_VIDEO) {
            h->refreshes++;
            h->force_key = 1;
        }
        break;
    default:
        break;
    }
}

static void fsess_close(struct hd_channel *ch, int reason, void *ud)
{
    fsess_end(ud);
}

static const struct hd_channel_cb fsess_cb = { fsess_message, fsess_close };

/* A new session on a connected TCP handle's channel. */
static void fsess_start(struct fhost *h, struct fsess *s)
{
    randombytes_buf(s->challenge, 6);
    for (int i = 0; i < 6; i++)
        s->challenge[i] = (char)('a' + (uint8_t)s->challenge[i] % 26);
    s->challenge[6] = '\0';
    if (h->sess != NULL)
        fsess_end(h->sess);
    h->sess = s;
    hd_channel_start(s->ch, NULL, 0);
    hd_channel_host_hello(s->ch, &h->key, h->id);
}

static struct fsess *fsess_new(struct fhost *h)
{
    struct fsess *s = calloc(1, sizeof(*s));

    s->h = h;
    hd_channel_new(&h->loop, 0, &fsess_cb, s, &s->ch);
    return s;
}

static void on_conn(uv_stream_t *lis, int status)
{
    struct fhost *h = lis->data;
    struct fsess *s;

    if (status != 0)
        return;
    s = fsess_new(h);
    if (uv_accept(lis, (uv_stream_t *)hd_channel_tcp(s->ch)) != 0) {
        hd_channel_close(s->ch);
        free(s);
        return;
    }
    fsess_start(h, s);
}

static void on_wake(uv_async_t *a)
{
    struct fhost *h = a->data;
    struct fsess *s;
    int fd, stop;

    pthread_mutex_lock(&h->mu);
    fd = h->adopt_fd;
    h->adopt_fd = -1;
    stop = h->stop;
    pthread_mutex_unlock(&h->mu);
    if (fd >= 0) {
        s = fsess_new(h);
        uv_tcp_open(hd_channel_tcp(s->ch), fd);
        fsess_start(h, s);
    }
    if (stop) {
        if (h->sess != NULL)
            fsess_end(h->sess);
        uv_close((uv_handle_t *)&h->lis, NULL);
        uv_close((uv_handle_t *)&h->wake, NULL);
        uv_close((uv_handle_t *)&h->frame_timer, NULL);
    }
}

static void *fhost_main(void *arg)
{
    struct fhost *h = arg;

    uv_run(&h->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Start a fake host's session side (listening on 127.0.0.1:ephemeral). */
static int fhost_start(struct fhost *h, const char *id)
{
    struct sockaddr_in sin;
    struct sockaddr_storage ss;

    memset(h, 0, sizeof(*h));
    h->adopt_fd = -1;
    snprintf(h->id, sizeof(h->id), "%s", id);
    if (hd_sign_key_generate(&h->key) != 0 || enc_init(h) != 0)
        return -1;
    hd_login_salted(PASSWORD, "saltySALT", h->salted);
    pthread_mutex_init(&h->mu, NULL);
    uv_loop_init(&h->loop);
    uv_async_init(&h->loop, &h->wake, on_wake);
    uv_timer_init(&h->loop, &h->frame_timer);
    h->wake.data = h->frame_timer.data = h->lis.data = h;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    if (hd_net_listen_tcp(&h->loop, &h->lis, (struct sockaddr *)&sin, 16,
                          on_conn) != 0)
        return -1;
    hd_net_local_addr((uv_handle_t *)&h->lis, &ss);
    h->port = (uint16_t)hd_net_port((struct sockaddr *)&ss);
    return pthread_create(&h->thread, NULL, fhost_main, h) == 0 ? 0 : -1;
}

static void fhost_adopt(struct fhost *h, int fd)
{
    pthread_mutex_lock(&h->mu);
    h->adopt_fd = fd;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->wake);
}

static void fhost_stop(struct fhost *h)
{
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->wake);
    pthread_join(h->thread, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_loop_close(&h->loop);
    vpx_codec_destroy(&h->enc);
    vpx_img_free(&h->img);
    hd_sign_key_cleanup(&h->key);
    pthread_mutex_destroy(&h->mu);
}

/* ---- the fake host's rendezvous side (this thread, blocking) ----------- */

static Hbb__RendezvousMessage *udp_ask(int udp, Hbb__RendezvousMessage *m)
{
    struct sockaddr_storage from;

    if (udp_send_msg(udp, "127.0.0.1", srv.port, m) != 0)
        return NULL;
    return udp_recv_msg(udp, T, &from);
}

/* Register id with h's key over UDP; returns the UDP socket or -1. */
static int fhost_register(struct fhost *h)
{
    Hbb__RendezvousMessage m = HBB__RENDEZVOUS_MESSAGE__INIT, *in;
    Hbb__RegisterPeer rp = HBB__REGISTER_PEER__INIT;
    Hbb__RegisterPk rk = HBB__REGISTER_PK__INIT;
    int udp = udp_open("127.0.0.1"), ok;

    rp.id = h->id;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PEER;
    m.register_peer = &rp;
    if (udp < 0 || (in = udp_ask(udp, &m)) == NULL)
        return -1;
    hbb__rendezvous_message__free_unpacked(in, NULL);
    rk.id = h->id;
    rk.uuid.data = (uint8_t *)"uuid-of-the-fake-host";
    rk.uuid.len = strlen("uuid-of-the-fake-host");
    rk.pk.data = h->key.pk;
    rk.pk.len = 32;
    m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK;
    m.register_pk = &rk;
    if ((in = udp_ask(udp, &m)) == NULL) {
        close(udp);
        return -1;
    }
    ok =
        in->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_REGISTER_PK_RESPONSE &&
        in->register_pk_response->result ==
            HBB__REGISTER_PK_RESPONSE__RESULT__OK;
    hbb__rendezvous_message__free_unpacked(in, NULL);
    if (!ok) {
        close(udp);
        return -1;
    }
    return udp;
}

/*
 * Answer the server's next request for this host, as a RustDesk host:
 * FetchLocalAddr -> LocalAddr{local_addr = our session port} (to
 * local_port, or a closed port to make the direct attempt fail);
 * RequestRelay -> RelayResponse, then join the relay and serve the
 * session there.  Returns the request type handled, or -1.
 */
static int fhost_answer(struct fhost *h, int udp, uint16_t local_port)
{
    Hbb__RendezvousMessage *in, m = HBB__RENDEZVOUS_MESSAGE__INIT;
    Hbb__LocalAddr la = HBB__LOCAL_ADDR__INIT;
    Hbb__RelayResponse rr = HBB__RELAY_RESPONSE__INIT;
    Hbb__RequestRelay req = HBB__REQUEST_RELAY__INIT;
    struct sockaddr_storage from, me;
    uint8_t mangled[HD_ADDR_MANGLED_MAX];
    int kind, fd, relay;

    in = udp_recv_msg(udp, 10000, &from);
    if (in == NULL)
        return -1;
    kind = (int)in->union_case;
    fd = tcp_connect("127.0.0.1", srv.port);
    if (fd < 0)
        goto fail;
    if (kind == HBB__RENDEZVOUS_MESSAGE__UNION_FETCH_LOCAL_ADDR) {
        hd_addr_parse("127.0.0.1", local_port, &me);
        la.socket_addr = in->fetch_local_addr->socket_addr;
        la.local_addr.data = mangled;
        la.local_addr.len =
            hd_addr_mangle((struct sockaddr *)&me, hd_addr_now_us(), mangled);
        la.id = h->id;
        la.relay_server = in->fetch_local_addr->relay_server;
        la.version = "1.4.0";
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_LOCAL_ADDR;
        m.local_addr = &la;
        send_msg(fd, &m);
    } else if (kind == HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY) {
        rr.socket_addr = in->request_relay->socket_addr;
        rr.uuid = in->request_relay->uuid;
        rr.relay_server = in->request_relay->relay_server;
        rr.union_case = HBB__RELAY_RESPONSE__UNION_ID;
        rr.id = h->id;
        rr.version = "1.4.0";
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_RELAY_RESPONSE;
        m.relay_response = &rr;
        send_msg(fd, &m);
        relay = tcp_connect("127.0.0.1", srv.relay_port);
        req.uuid = in->request_relay->uuid;
        req.licence_key = srv.pk_b64;
        m.union_case = HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY;
        m.request_relay = &req;
        if (relay < 0 || send_msg(relay, &m) != 0)
            goto fail;
        fhost_adopt(h, relay);
    }
    usleep(200 * 1000); /* let the server read before we close */
    close(fd);
    hbb__rendezvous_message__free_unpacked(in, NULL);
    return kind;
fail:
    if (fd >= 0)
        close(fd);
    hbb__rendezvous_message__free_unpacked(in, NULL);
    return -1;
}

/* ---- running the viewer ------------------------------------------------ */

struct run {
    int status;
    char out[4096], err[8192];
};

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;

    if (f != NULL) {
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
}

/* Set: the next viewer runs in a network namespace of its own (lo down). */
static int spawn_netns;

/* Spawn the viewer with args (NULL-terminated) and extra env. */
static pid_t viewer_spawn(const char *const *args, const char *const *env,
                          const char *dir)
{
    const char *argv[32];
    char prog[512], out[600], cwd[600];
    int i = 0, n;
    pid_t pid;

    argv[i++] = prog_path("homedesk-viewer", prog, sizeof(prog));
    for (n = 0; args[n] != NULL && i < 30; n++)
        argv[i++] = args[n];
    argv[i] = NULL;
    snprintf(out, sizeof(out), "%s/stdout", dir);
    snprintf(cwd, sizeof(cwd), "%s/stderr", dir);
    unlink(out);
    unlink(cwd);
    pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(cwd, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        dup2(o, 1);
        dup2(e, 2);
        if (spawn_netns && unshare(CLONE_NEWNET) != 0) {
            fprintf(stderr, "no network namespace: %s\n", strerror(errno));
            _exit(127);
        }
        /* "NAME=value" sets, a bare "NAME" unsets */
        for (n = 0; env != NULL && env[n] != NULL; n++) {
            if (strchr(env[n], '=') != NULL)
                putenv((char *)env[n]);
            else
                unsetenv(env[n]);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static void viewer_collect(pid_t pid, const char *dir, int ms, struct run *r)
{
    char p[600];

    r->status = wait_exit(pid, ms);
    if (r->status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    snprintf(p, sizeof(p), "%s/stdout", dir);
    slurp(p, r->out, sizeof(r->out));
    snprintf(p, sizeof(p), "%s/stderr", dir);
    slurp(p, r->err, sizeof(r->err));
}

static void show_run(const struct run *r)
{
    printf("# viewer exit %d\n# stdout: %s\n# stderr: %s\n", r->status, r->out,
           r->err);
}

static int near(const uint8_t *a, const uint8_t *b)
{
    for (int i = 0; i < 3; i++)
        if (abs((int)a[i] - (int)b[i]) > 24)
            return 0;
    return 1;
}

/* The pattern's four quadrants at the given origin/size in an RGB image. */
static int check_pattern_say(const uint8_t *px, int iw, int x0, int y0, int w,
                             int h, int say)
{
    static const int cx[4] = { 1, 3, 1, 3 }, cy[4] = { 1, 1, 3, 3 };
    int ok = 1;

    for (int q = 0; q < 4; q++) {
        int x = x0 + w * cx[q] / 4, y = y0 + h * cy[q] / 4;
        const uint8_t *p = px + ((size_t)y * iw + x) * 3;

        if (!near(p, quad_rgb[q])) {
            if (say)
                printf("# quadrant %d at %d,%d: %d,%d,%d, want %d,%d,%d\n", q,
                       x, y, p[0], p[1], p[2], quad_rgb[q][0], quad_rgb[q][1],
                       quad_rgb[q][2]);
            ok = 0;
        }
    }
    return ok;
}

static int check_pattern(const uint8_t *px, int iw, int x0, int y0, int w,
                         int h)
{
    return check_pattern_say(px, iw, x0, y0, w, h, 1);
}

static char tmpdir[256];

static void mk_case_dir(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
    mkdir(out, 0700);
}

/* ---- cases --------------------------------------------------------------- */

static void headless_by_id(void)
{
    const char *env[] = { "HOMEDESK_PASSWORD=" PASSWORD, NULL };
    char dir[300], srvarg[64], png[400], outdir[320];
    struct fhost h;
    struct run r;
    uint8_t *px = NULL;
    int udp, pw = 0, ph = 0;
    pid_t pid;

    mk_case_dir("lan", dir, sizeof(dir));
    /* --out names a directory not made yet: the viewer makes it */
    snprintf(outdir, sizeof(outdir), "%s/shots", dir);
    snprintf(srvarg, sizeof(srvarg), "127.0.0.1:%u", srv.port);
    HT_CHECK(fhost_start(&h, HOST_ID) == 0);
    HT_CHECK((udp = fhost_register(&h)) >= 0);
    const char *args[] = { "--server", srvarg,       "--key",        srv.pk_b64,
                           HOST_ID,    "--headless", "--frames",     "10",
                           "--out",    outdir,       "--config-dir", dir,
                           NULL };
    pid = viewer_spawn(args, env, dir);
    HT_EQ_INT(fhost_answer(&h, udp, h.port),
              HBB__RENDEZVOUS_MESSAGE__UNION_FETCH_LOCAL_ADDR);
    viewer_collect(pid, dir, 20000, &r);
    fhost_stop(&h);
    close(udp);
    HT_EQ_INT(r.status, 0);
    HT_CHECK(strstr(r.out, "stats: frames=10 ") != NULL);
    HT_CHECK(strstr(r.out, " path=lan ") != NULL);
    HT_CHECK(strstr(r.out, " connect_ms=") != NULL);
    HT_EQ_INT(h.logins, 1);
    HT_EQ_STR(h.username, HOST_ID);
    snprintf(png, sizeof(png), "%s/frame.png", outdir);
    HT_CHECK(image_read_png(png, &px, &pw, &ph) == 0);
    HT_EQ_INT(pw, W);
    HT_EQ_INT(ph, H);
    if (px != NULL && pw == W && ph == H)
        HT_CHECK(check_pattern(px, W, 0, 0, W, H));
    free(px);
    if (ht_case_failures())
        show_run(&r);
}

/* One headless run by ID against a fresh fake host in dir; its key's
 * fingerprint into fp. */
static void run_by_id(const char *dir, char fp[HD_FINGERPRINT_LEN],
                      struct run *r)
{
    const char *env[] = { "HOMEDESK_PASSWORD=" PASSWORD, NULL };
    char srvarg[64];
    struct fhost h;
    int udp;
    pid_t pid;
    const char *args[] = { "--server", srvarg,       "--key",        srv.pk_b64,
                           HOST_ID,    "--headless", "--frames",     "1",
                           "--out",    dir,          "--config-dir", dir,
                           NULL };

    snprintf(srvarg, sizeof(srvarg), "127.0.0.1:%u", srv.port);
    HT_CHECK(fhost_start(&h, HOST_ID) == 0);
    hd_key_fingerprint(h.key.pk, fp);
    HT_CHECK((udp = fhost_register(&h)) >= 0);
    pid = viewer_spawn(args, env, dir);
    fhost_answer(&h, udp, h.port);
    viewer_collect(pid, dir, 20000, r);
    fhost_stop(&h);
    close(udp);
}

/*
 * By ID the viewer took whatever host key the server signed this time.
 * Now it pins it per ID and server (known_hosts, as --direct does), says
 * its fingerprint, and refuses another one for the same ID.
 */
static void id_key_pinned(void)
{
    char dir[300], fp[HD_FINGERPRINT_LEN], fp2[HD_FINGERPRINT_LEN];
    char want[128], kh[400];
    struct run r;

    mk_case_dir("idpin", dir, sizeof(dir));
    run_by_id(dir, fp, &r);
    HT_EQ_INT(r.status, 0);
    snprintf(want, sizeof(want), " host_key=%s", fp);
    HT_CHECK(strstr(r.out, want) != NULL);
    HT_CHECK(strstr(r.err, "first seen: pinned") != NULL);
    snprintf(kh, sizeof(kh), "%s/known_hosts", dir);
    snprintf(want, sizeof(want), "id:%s@127.0.0.1:%u ", HOST_ID, srv.port);
    HT_CHECK(file_has(kh, want, 0));
    if (ht_case_failures())
        show_run(&r);

    /* the same ID with another key (the server signs what it was told) */
    run_by_id(dir, fp2, &r);
    HT_EQ_INT(r.status, 1);
    HT_CHECK(strstr(r.err, "host key changed for id:" HOST_ID) != NULL);
    HT_CHECK(strstr(r.err, fp2) != NULL);
    if (ht_case_failures())
        show_run(&r);
}

static void relay_by_id(void)
{
    const char *env[] = { "HOMEDESK_PASSWORD=" PASSWORD, NULL };
    char dir[300], srvarg[64];
    struct fhost h;
    struct run r;
    int udp;
    pid_t pid;

    mk_case_dir("relay", dir, sizeof(dir));
    snprintf(srvarg, sizeof(srvarg), "127.0.0.1:%u", srv.port);
    HT_CHECK(fhost_start(&h, "223456789") == 0);
    HT_CHECK((udp = fhost_register(&h)) >= 0);
    const char *args[] = {
        "--server",     srvarg,     "--key", srv.pk_b64, "223456789",
        "--headless",   "--frames", "5",     "--out",    dir,
        "--config-dir", dir,        NULL
    };
    pid = viewer_spawn(args, env, dir);
    /* the LAN address we give is closed: the viewer falls back to relay */
    HT_EQ_INT(fhost_answer(&h, udp, 1),
              HBB__RENDEZVOUS_MESSAGE__UNION_FETCH_LOCAL_ADDR);
    HT_EQ_INT(fhost_answer(&h, udp, 0),
              HBB__RENDEZVOUS_MESSAGE__UNION_REQUEST_RELAY);
    viewer_collect(pid, dir, 20000, &r);
    fhost_stop(&h);
    close(udp);
    HT_EQ_INT(r.status, 0);
    HT_CHECK(strstr(r.out, "stats: frames=5 ") != NULL);
    HT_CHECK(strstr(r.out, " path=relay ") != NULL);
    if (ht_case_failures())
        show_run(&r);
}

static void wrong_password(void)
{
    const char *env[] = { "HOMEDESK_PASSWORD=not-the-password", NULL };
    char dir[300], srvarg[64];
    struct fhost h;
    struct run r;
    int udp;
    pid_t pid;

    mk_case_dir("wrongpw", dir, sizeof(dir));
    snprintf(srvarg, sizeof(srvarg), "127.0.0.1:%u", srv.port);
    HT_CHECK(fhost_start(&h, "323456789") == 0);
    HT_CHECK((udp = fhost_register(&h)) >= 0);
    const char *args[] = { "--server",     srvarg,       "--key", srv.pk_b64,
                           "323456789",    "--headless", "--out", dir,
                           "--config-dir", dir,          NULL };
    pid = viewer_spawn(args, env, dir);
    fhost_answer(&h, udp, h.port);
    viewer_collect(pid, dir, 20000, &r);
    fhost_stop(&h);
    close(udp);
    HT_EQ_INT(r.status, 1);
    HT_CHECK(strstr(r.err, "wrong password") != NULL);
    HT_EQ_INT(h.bad_logins, 1);
    if (ht_case_failures())
        show_run(&r);
}

static void run_simple(const char *name, const char *id, const char *key,
                       const char *server, int want_status, const char *want)
{
    const char *env[] = { "HOMEDESK_PASSWORD=x", NULL };
    char dir[300];
    struct run r;
    const char *args[] = { "--server", server, "--key",
                           key,        id,     "--headless",
                           "--out",    dir,    "--config-dir",
                           dir,        NULL };

    mk_case_dir(name, dir, sizeof(dir));
    viewer_collect(viewer_spawn(args, env, dir), dir, 20000, &r);
    HT_EQ_INT(r.status, want_status);
    HT_CHECK(strstr(r.err, want) != NULL);
    if (ht_case_failures())
        show_run(&r);
}

static void unknown_id(void)
{
    char srvarg[64];

    snprintf(srvarg, sizeof(srvarg), "127.0.0.1:%u", srv.port);
    run_simple("unknown", "999999999", srv.pk_b64, srvarg, 1, "ID not found");
}

static void wrong_key(void)
{
    char srvarg[64], other[64];
    struct hd_sign_key k = { 0 };

    hd_sign_key_generate(&k);
    hd_base64_encode(k.pk, 32, other, sizeof(other));
    hd_sign_key_cleanup(&k);
    snprintf(srvarg, sizeof(srvarg), "127.0.0.1:%u", srv.port);
    run_simple("wrongkey", HOST_ID, other, srvarg, 1, "key mismatch");
}

/* The host registered moments ago and then went quiet: the host is blamed,
 * not the server that passed the request on. */
static void host_not_answering(void)
{
    const char *env[] = { "HOMEDESK_PASSWORD=x", NULL };
    char dir[300], srvarg[64];
    struct fhost h;
    struct run r;
    int udp;

    mk_case_dir("quiet", dir, sizeof(dir));
    snprintf(srvarg, sizeof(srvarg), "127.0.0.1:%u", srv.port);
    HT_CHECK(fhost_start(&h, "823456789") == 0);
    HT_CHECK((udp = fhost_register(&h)) >= 0);
    fhost_stop(&h); /* registered, then gone: nothing reads udp */
    const char *args[] = { "--server",
                           srvarg,
                           "--key",
                           srv.pk_b64,
                           "823456789",
                           "--headless",
                           "--out",
                           dir,
                           "--config-dir",
                           dir,
                           "--answer-timeout-ms=1500",
                           NULL };
    viewer_collect(viewer_spawn(args, env, dir), dir, 20000, &r);
    close(udp);
    HT_EQ_INT(r.status, 1);
    HT_CHECK(strstr(r.err, "host 823456789 offline or not answering") != NULL);
    HT_CHECK(strstr(r.err, "no answer from the server") == NULL);
    if (ht_case_failures())
        show_run(&r);
}

static void server_unreachable(void)
{
    run_simple("unreach", HOST_ID, srv.pk_b64, "127.0.0.1:1", 1,
               "server unreachable");
}

/*
 * A man in the middle strips the server's KeyExchange (here: a server
 * that never offers one).  With --key the viewer refuses to go on in
 * plain text and says why; --allow-plain-server (old hbbs) goes on.
 */
static void stripped_key_exchange(void)
{
    const char *env[] = { "HOMEDESK_PASSWORD=viewer-secret-4711", NULL };
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    char dir[300], srvarg[64], errp[400];
    const char *args[] = { "--server",     srvarg,       "--key", srv.pk_b64,
                           HOST_ID,        "--headless", "--out", dir,
                           "--config-dir", dir,          NULL,    NULL };
    int lis = socket(AF_INET, SOCK_STREAM, 0);
    struct run r;
    pid_t pid;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    HT_CHECK(lis >= 0 && bind(lis, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
             listen(lis, 8) == 0 &&
             getsockname(lis, (struct sockaddr *)&sa, &len) == 0);
    snprintf(srvarg, sizeof(srvarg), "127.0.0.1:%u", ntohs(sa.sin_port));
    mk_case_dir("stripped", dir, sizeof(dir));
    viewer_collect(viewer_spawn(args, env, dir), dir, 20000, &r);
    HT_EQ_INT(r.status, 1);
    HT_CHECK(strstr(r.err, "offered no secure channel") != NULL);
    HT_CHECK(strstr(r.err, "--allow-plain-server") != NULL);
    if (ht_case_failures())
        show_run(&r);

    /* the escape hatch: goes on (and then waits for an answer) */
    args[10] = "--allow-plain-server";
    pid = viewer_spawn(args, env, dir);
    snprintf(errp, sizeof(errp), "%s/stderr", dir);
    HT_CHECK(file_has(errp, "continuing in plain text", 10000));
    /* and the password it read from the environment is out of /proc */
    {
        char path[64], buf[65536];
        int fd;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
        fd = open(path, O_RDONLY);
        n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
        if (fd >= 0)
            close(fd);
        HT_CHECK(n > 0 && memmem(buf, (size_t)n, "viewer-secret", 13) == NULL &&
                 memmem(buf, (size_t)n, "HOMEDESK_PASSWORD=****", 22) != NULL);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    close(lis);
}

/*
 * Issue 10 finding 1, the viewer<->server channel: a man in the middle
 * strips homedesk-server's offer of per-direction keys (KeyExchange.hd_kx)
 * so that the viewer answers with one key both ways, which he could XOR.
 * First contact: the server's signed IdPk of the host says the server
 * offers them, so the viewer refuses once it sees it.  After one split
 * channel with that server key (remembered in known_hosts), the stripped
 * offer itself is refused, before anything is sent.
 */
static void split_offer_stripped(void)
{
    const char *env[] = { "HOMEDESK_PASSWORD=" PASSWORD, NULL };
    char dir[300], srvarg[64], pxarg[64], kh[400];
    const char *args[] = { "--server", srvarg,     "--key",
                           srv.pk_b64, HOST_ID,    "--headless",
                           "--out",    dir,        "--config-dir",
                           dir,        "--frames", "1",
                           NULL };
    struct strip_proxy px;
    struct fhost h;
    struct run r;
    int udp = -1;

    mk_case_dir("stripsplit", dir, sizeof(dir));
    snprintf(kh, sizeof(kh), "%s/known_hosts", dir);
    snprintf(srvarg, sizeof(srvarg), "127.0.0.1:%u", srv.port);
    HT_CHECK(strip_proxy_start(&px, srv.port, 0) == 0);
    snprintf(pxarg, sizeof(pxarg), "127.0.0.1:%u", px.port);
    HT_CHECK(fhost_start(&h, HOST_ID) == 0);
    HT_CHECK((udp = fhost_register(&h)) >= 0);

    /* first contact through the proxy: refused at the signed IdPk */
    args[1] = pxarg;
    {
        pid_t pid = viewer_spawn(args, env, dir);

        fhost_answer(&h, udp, h.port);
        viewer_collect(pid, dir, 20000, &r);
    }
    HT_EQ_INT(r.status, 1);
    HT_CHECK(strstr(r.err, "stripped the offer") != NULL);
    HT_CHECK(strstr(r.out, "stats: frames=") == NULL);
    if (ht_case_failures())
        show_run(&r);

    /* straight to the server: split, and remembered */
    args[1] = srvarg;
    {
        pid_t pid = viewer_spawn(args, env, dir);

        HT_EQ_INT(fhost_answer(&h, udp, h.port),
                  HBB__RENDEZVOUS_MESSAGE__UNION_FETCH_LOCAL_ADDR);
        viewer_collect(pid, dir, 20000, &r);
    }
    HT_EQ_INT(r.status, 0);
    HT_CHECK(strstr(r.out, "stats: frames=1 ") != NULL);
    HT_CHECK(file_has(kh, "kx-split:", 10));

    /* through the proxy again: refused at the offer itself */
    args[1] = pxarg;
    viewer_collect(viewer_spawn(args, env, dir), dir, 20000, &r);
    HT_EQ_INT(r.status, 1);
    HT_CHECK(strstr(r.err, "offered per-direction keys before") != NULL);
    if (ht_case_failures())
        show_run(&r);
    fhost_stop(&h);
    if (udp >= 0)
        close(udp);
    strip_proxy_stop(&px);
}

static void direct_tofu(void)
{
    const char *env[] = { "HOMEDESK_PASSWORD=" PASSWORD, NULL };
    char dir[300], addr[64], kh[400], line[512] = "";
    struct fhost h;
    struct run r;
    FILE *f;

    mk_case_dir("direct", dir, sizeof(dir));
    HT_CHECK(fhost_start(&h, "423456789") == 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", h.port);
    const char *args[] = { "--direct", addr, "--headless",   "--frames", "3",
                           "--out",    dir,  "--config-dir", dir,        NULL };
    viewer_collect(viewer_spawn(args, env, dir), dir, 20000, &r);
    HT_EQ_INT(r.status, 0);
    HT_CHECK(strstr(r.out, " path=direct ") != NULL);
    HT_EQ_STR(h.username, "423456789");
    snprintf(kh, sizeof(kh), "%s/known_hosts", dir);
    if ((f = fopen(kh, "r")) != NULL) {
        if (fgets(line, sizeof(line), f) == NULL)
            line[0] = '\0';
        fclose(f);
    }
    HT_CHECK(strncmp(line, addr, strlen(addr)) == 0);
    HT_CHECK(strstr(line, " 423456789 ") != NULL);
    if (ht_case_failures())
        show_run(&r);

    /* the same key again: accepted */
    viewer_collect(viewer_spawn(args, env, dir), dir, 20000, &r);
    HT_EQ_INT(r.status, 0);

    /* a new key on the same address: refused */
    hd_sign_key_cleanup(&h.key);
    HT_CHECK(hd_sign_key_generate(&h.key) == 0);
    viewer_collect(viewer_spawn(args, env, dir), dir, 20000, &r);
    HT_EQ_INT(r.status, 1);
    HT_CHECK(strstr(r.err, "host key changed") != NULL);
    HT_EQ_INT(h.logins, 2);
    fhost_stop(&h);
    if (ht_case_failures())
        show_run(&r);
}

/* --help lists the window's keys; the host answers -V as the others do. */
static void help_and_version(void)
{
    char dir[300], prog[300], logp[400], want[64];
    const char *vhelp[] = { prog_path("homedesk-viewer", prog, sizeof(prog)),
                            "--help", NULL };
    const char *hver[] = { NULL, "-V", NULL };
    char hprog[300];

    mk_case_dir("help", dir, sizeof(dir));
    snprintf(logp, sizeof(logp), "%s/help.out", dir);
    HT_EQ_INT(wait_exit(spawn_in(NULL, vhelp, NULL, logp), 10000), 0);
    HT_CHECK(file_has(logp, "Keys in the window:", 0));
    HT_CHECK(file_has(logp, "Ctrl+Alt+Q", 0));
    HT_CHECK(file_has(logp, "F11", 0));
    hver[0] = prog_path("homedesk-host", hprog, sizeof(hprog));
    snprintf(logp, sizeof(logp), "%s/version.out", dir);
    HT_EQ_INT(wait_exit(spawn_in(NULL, hver, NULL, logp), 10000), 0);
    snprintf(want, sizeof(want), "homedesk-host %s", HD_VERSION);
    HT_CHECK(file_has(logp, want, 0));
}

/* Run PROG ARGS --log-file DIR/PROG.log, which must fail (exit 1) saying
 * want in that file and not on its stdout/stderr. */
static void logs_to_file(const char *dir, const char *name,
                         const char *const *args, const char *want)
{
    char prog[300], logf[400], out[400];
    const char *argv[16];
    int i = 0;

    argv[i++] = prog_path(name, prog, sizeof(prog));
    for (int k = 0; args[k] != NULL && i < 13; k++)
        argv[i++] = args[k];
    snprintf(logf, sizeof(logf), "%s/%s.log", dir, name);
    snprintf(out, sizeof(out), "%s/%s.out", dir, name);
    argv[i++] = "--log-file";
    argv[i++] = logf;
    argv[i] = NULL;
    HT_EQ_INT(wait_exit(spawn_in(NULL, argv, NULL, out), 10000), 1);
    HT_CHECK(file_has(logf, want, 0));
    HT_CHECK(!file_has(out, want, 0));
}

/* --log-file on all three programs: the messages land in the file, not
 * on stderr; a remote path that is this machine's home gets a note. */
static void log_file_and_home_note(void)
{
    const char *env[] = { "HOMEDESK_PASSWORD=x", "HOME=/tmp/hd-no-such-home",
                          NULL };
    char dir[300], logf[400];
    struct run r;

    mk_case_dir("logfile", dir, sizeof(dir));
    snprintf(logf, sizeof(logf), "%s/viewer.log", dir);
    const char *args[] = {
        "--direct",     "127.0.0.1:1", "--log-file",
        logf,           "--ls",        "/tmp/hd-no-such-home/Documents",
        "--config-dir", dir,           NULL
    };
    viewer_collect(viewer_spawn(args, env, dir), dir, 20000, &r);
    HT_EQ_INT(r.status, 1);
    HT_CHECK(file_has(logf, "host unreachable", 0));
    HT_CHECK(file_has(logf,
                      "note: --ls /tmp/hd-no-such-home/Documents is "
                      "this machine's home",
                      0));
    HT_CHECK(file_has(logf, "--ls '~/Documents'", 0));
    HT_CHECK(strstr(r.err, "unreachable") == NULL); /* not on stderr */
    if (ht_case_failures())
        show_run(&r);

    logs_to_file(dir, "homedesk-host",
                 (const char *const[]){ "--config-dir", dir, "--display",
                                        ":4711", "--input", "fake", NULL },
                 "cannot use X display :4711");
    logs_to_file(
        dir, "homedesk-server",
        (const char *const[]){ "--data-dir", "/proc/no/such/dir", NULL },
        "cannot create data dir /proc/no/such/dir");
}

/* A windowed viewer with no display (over ssh) says so at once and exits,
 * instead of running a session nobody sees. */
static void no_display(void)
{
    const char *env[] = { "HOMEDESK_PASSWORD=" PASSWORD, "DISPLAY",
                          "WAYLAND_DISPLAY", "SDL_VIDEODRIVER", NULL };
    char dir[300], addr[64];
    struct fhost h;
    struct run r;
    uint64_t t0;

    mk_case_dir("nodisplay", dir, sizeof(dir));
    HT_CHECK(fhost_start(&h, "623456789") == 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", h.port);
    const char *args[] = { "--direct", addr, "--config-dir", dir, NULL };
    t0 = now_ms();
    viewer_collect(viewer_spawn(args, env, dir), dir, 10000, &r);
    fhost_stop(&h);
    HT_EQ_INT(r.status, 1);
    HT_CHECK(now_ms() - t0 < 10000);
    HT_CHECK(strstr(r.err, "no display: ") != NULL);
    HT_CHECK(strstr(r.err, "(use --headless, or set DISPLAY)") != NULL);
    HT_EQ_INT(h.logins, 0); /* no session started */
    if (ht_case_failures())
        show_run(&r);
}

/* --out that cannot be a directory is refused before anything connects;
 * --direct without a port means the host's default port, 21120. */
static void out_and_direct_port(void)
{
    const char *env[] = { "HOMEDESK_PASSWORD=" PASSWORD, NULL };
    char dir[300], addr[64], file[320];
    struct fhost h;
    struct run r;
    FILE *f;

    mk_case_dir("outdirect", dir, sizeof(dir));
    snprintf(file, sizeof(file), "%s/a-file", dir);
    if ((f = fopen(file, "w")) != NULL)
        fclose(f);
    HT_CHECK(fhost_start(&h, "723456789") == 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", h.port);
    const char *args[] = { "--direct", addr, "--headless",   "--frames", "1",
                           "--out",    file, "--config-dir", dir,        NULL };
    viewer_collect(viewer_spawn(args, env, dir), dir, 10000, &r);
    fhost_stop(&h);
    HT_EQ_INT(r.status, 1);
    HT_CHECK(strstr(r.err, file) != NULL);
    HT_CHECK(strstr(r.err, "not a directory") != NULL);
    HT_EQ_INT(h.logins, 0);
    if (ht_case_failures())
        show_run(&r);

    /* in a network namespace of its own (nothing listens there), the
     * viewer tries 127.0.0.1:21120 and says so */
    spawn_netns = 1;
    const char *args2[] = { "--direct", "127.0.0.1",    "--headless", "--out",
                            dir,        "--config-dir", dir,          NULL };
    viewer_collect(viewer_spawn(args2, env, dir), dir, 20000, &r);
    spawn_netns = 0;
    if (strstr(r.err, "no network namespace") != NULL) {
        ht_skip("direct_default_port", "unshare(CLONE_NEWNET) not allowed");
        return;
    }
    HT_EQ_INT(r.status, 1);
    HT_CHECK(strstr(r.err, "127.0.0.1:21120") != NULL);
    if (ht_case_failures())
        show_run(&r);
}

/* The SDL window under Xvfb shows the pattern. */
static void window_renders(void)
{
    char dir[300], addr[64], disp[64], shot[400], cmd[1200], log[400];
    const char *env[] = { "HOMEDESK_PASSWORD=" PASSWORD, disp,
                          "SDL_VIDEODRIVER=x11", NULL };
    struct xvfb x;
    struct fhost h;
    struct run r;
    uint8_t *px = NULL;
    int pw = 0, ph = 0, shown = 0;
    pid_t pid;

    if (!xvfb_have("xwd") || xvfb_start(&x) != 0) {
        ht_skip("window_renders", "Xvfb or xwd missing");
        return;
    }
    mk_case_dir("window", dir, sizeof(dir));
    snprintf(disp, sizeof(disp), "DISPLAY=%s", x.display);
    HT_CHECK(fhost_start(&h, "523456789") == 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", h.port);
    const char *args[] = { "--direct",     addr, "--no-overlay",
                           "--config-dir", dir,  NULL };
    pid = viewer_spawn(args, env, dir);
    snprintf(log, sizeof(log), "%s/stderr", dir);
    for (int i = 0; i < 100 && !shown; i++) {
        slurp(log, r.err, sizeof(r.err));
        shown = strstr(r.err, "first frame shown") != NULL;
        if (!shown)
            usleep(100 * 1000);
    }
    HT_CHECK(shown);
    snprintf(shot, sizeof(shot), "%s/screen.xwd", dir);
    snprintf(cmd, sizeof(cmd), "xwd -root -silent -display %s -out %s",
             x.display, shot);
    /* no window manager: the window is centred on the 1280x720 screen,
     * where the pattern shows once the window is mapped and drawn (the
     * log line says the frame was presented; a loaded X server may show
     * it later): looked at again until it is there, up to 10 s */
    for (uint64_t end = now_ms() + 10000; shown;) {
        int last = now_ms() >= end, ok;

        free(px);
        px = NULL;
        if (system(cmd) != 0 || image_read_xwd(shot, &px, &pw, &ph) != 0) {
            HT_CHECK(!"xwd of the screen");
            break;
        }
        HT_EQ_INT(pw, 1280);
        HT_EQ_INT(ph, 720);
        if (pw != 1280 || ph != 720)
            break;
        ok = check_pattern_say(px, pw, (pw - W) / 2, (ph - H) / 2, W, H, last);
        if (ok || last) {
            HT_CHECK(ok);
            break;
        }
        usleep(100 * 1000);
    }
    kill(pid, SIGTERM);
    viewer_collect(pid, dir, 5000, &r);
    fhost_stop(&h);
    xvfb_stop(&x);
    free(px);
    if (ht_case_failures())
        show_run(&r);
}

int main(void)
{
    ht_init("viewer");
    signal(SIGPIPE, SIG_IGN);
    hd_crypto_init();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/hd-viewer-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    srv_ok = srv_start(&srv, NULL, NULL) == 0;
    if (!srv_ok) {
        ht_skip("all", "homedesk-server did not start");
        return ht_finish();
    }
    HT_RUN(headless_by_id);
    HT_RUN(relay_by_id);
    HT_RUN(wrong_password);
    HT_RUN(unknown_id);
    HT_RUN(wrong_key);
    HT_RUN(server_unreachable);
    HT_RUN(stripped_key_exchange);
    HT_RUN(split_offer_stripped);
    HT_RUN(host_not_answering);
    HT_RUN(direct_tofu);
    HT_RUN(id_key_pinned);
    HT_RUN(window_renders);
    HT_RUN(no_display);
    HT_RUN(help_and_version);
    HT_RUN(log_file_and_home_note);
    HT_RUN(out_and_direct_port);
    if (ht_case_failures())
        srv_dump_log(&srv);
    srv_cleanup(&srv);
    snprintf(tmpdir + strlen(tmpdir), 1, "%s", "");
    {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (getenv("HD_KEEP_TMP") != NULL)
            printf("# kept %s\n", tmpdir);
        else if (system(cmd) != 0)
            printf("# could not remove %s\n", tmpdir);
    }
    return ht_finish();
}

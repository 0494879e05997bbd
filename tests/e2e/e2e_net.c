/*
 * End-to-end paths through the server (run by tests/e2e/test_net.sh):
 * homedesk-host shares display A (the test card, hd-testcard, which
 * echoes and records what is typed at it), homedesk-viewer runs in a
 * window on display B, and the real homedesk-server hands out a relay
 * address that is a recording TCP proxy (desk.h) in front of its relay
 * port.  Cases:
 *  - a session forced through the relay (--force-relay) works both ways, and
 *    the bytes the relay carried contain neither a marker typed on screen,
 *    nor one copied to the clipboard, nor the password (a headless
 *    --force-relay run reports path=relay), and XORing its two directions
 *    frame by frame shows no plaintext structure (per-direction keys);
 *  - the server goes away and comes back: an established session keeps
 *    running meanwhile, the host registers again, a new viewer reaches it
 *    by ID afterwards.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "tests/e2e/desk.h"
#include "tests/harness.h"
#include "tests/image.h"

#define PASSWORD "e2e-relay-Pa55"
#define ROOT_RGB 0x2d5a3c
/* freshly typed small text arrives blurred (the host does not refine a
 * static screen): 13-22 dB where it changed; see e2e_session.c */
#define MIN_TEXT_PSNR 10.0

/* the card, and its echo strip (its bottom ECHO_H = 20 rows) */
static const struct desk_rect card_at = { 300, 100, 580, 420 };
static const struct desk_rect echo_at = { 300, 500, 580, 20 };

static char tmpdir[256], record[300];
static struct srv srv;
static struct desk_screen A, B;
static struct desk_host host;
static struct desk_proxy *proxy;
static pid_t card_pid = -1;
static int up;

static int setup(void)
{
    char relay[64];
    const char *extra[] = { "--relay", relay, NULL };
    uint16_t pport;

    if (desk_proxy_start(&proxy, &pport) != 0)
        return -1;
    snprintf(relay, sizeof(relay), "127.0.0.1:%u", pport);
    if (srv_start(&srv, NULL, extra) != 0) {
        printf("# homedesk-server did not start\n");
        return -1;
    }
    desk_proxy_upstream(proxy, srv.relay_port);
    snprintf(record, sizeof(record), "%s/card.rec", tmpdir);
    card_pid = desk_lab_start(&A, &B, card_at, ROOT_RGB, record, tmpdir, &srv,
                              PASSWORD, &host);
    return card_pid < 0 ? -1 : 0;
}

static void set_up(void)
{
    up = setup() == 0;
    HT_CHECK(up);
}

/*
 * Through the viewer window on B: click the card, type text, and wait
 * until the card has recorded it and its echo of it on A shows on B
 * (desk_shows_change).
 * Returns 1 when all of that happened within 5 s.
 */
static int type_through(const char *text)
{
    size_t n = (size_t)echo_at.w * echo_at.h * 3;
    uint8_t *a0 = malloc(n), *a = malloc(n), *b = malloc(n);
    char keys[512], want[512];
    uint64_t deadline = now_ms() + 5000;
    int ok = 0, got_keys = 0;
    double psnr = 0;

    desk_card_keys(record, want, sizeof(want));
    snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s", text);
    if (a0 == NULL || a == NULL || b == NULL || desk_grab(&A, echo_at, a0) != 0)
        goto out;
    if (desk_sh(&B, "xdotool mousemove %d %d click 1", card_at.x + 200,
                card_at.y + 200) != 0 ||
        desk_sh(&B, "xdotool type --delay 20 '%s'", text) != 0)
        goto out;
    while (!ok && now_ms() < deadline) {
        desk_card_keys(record, keys, sizeof(keys));
        got_keys = strcmp(keys, want) == 0;
        if (got_keys && desk_grab(&A, echo_at, a) == 0 &&
            desk_grab(&B, echo_at, b) == 0)
            ok = desk_shows_change(a0, a, b, echo_at.w, echo_at.h,
                                   MIN_TEXT_PSNR, &psnr);
        usleep(20000);
    }
    if (!ok)
        printf("# typing \"%s\" through the viewer: card keys \"%s\" (want "
               "\"%s\"), echo on B %s (%.1f dB)\n",
               text, keys, want, got_keys ? "does not match A" : "-", psnr);
out:
    free(a0);
    free(a);
    free(b);
    return ok;
}

/* A session forced through the relay: it works, and the relay never sees
 * the typed marker or the password. */
static void relay_session(void)
{
    const char *relay[] = { "--force-relay", NULL };
    const char *frames[] = { "--force-relay", "--frames", "1", NULL };
    const char *marker = "zq7mk4rx9", *clip_marker = "hd-clip-kq3vz8w";
    struct desk_viewer v, hv;
    char out[4096];
    size_t all_pairs = 0, all_leaks = 0;

    HT_CHECK(desk_viewer_start(&v, tmpdir, "relay", &srv, &B, PASSWORD, host.id,
                               relay) == 0);
    HT_CHECK(file_has(v.err, "first frame shown", 10000));
    HT_CHECK(file_has(v.err, "connected (relay)", 10));
    HT_CHECK(file_has(host.log, "path relay", 10));
    HT_CHECK(type_through(marker));
    /* short: sent as it is (not compressed) inside the sealed stream */
    if (xvfb_have("xclip")) {
        HT_EQ_INT(desk_clip_copy(&A, clip_marker, tmpdir), 0);
        HT_CHECK(desk_clip_wait(&B, clip_marker, strlen(clip_marker), 3000) >=
                 0);
    }
    desk_viewer_stop(&v);

    /* the same headless: its statistics say relay */
    HT_CHECK(desk_viewer_start(&hv, tmpdir, "relay-headless", &srv, NULL,
                               PASSWORD, host.id, frames) == 0);
    HT_EQ_INT(desk_viewer_wait(&hv, 15000), 0);
    desk_slurp(hv.out, out, sizeof(out));
    HT_CHECK(strstr(out, " path=relay ") != NULL);

    printf("# relay proxy: %zu connections, %llu bytes\n",
           desk_proxy_connections(proxy),
           (unsigned long long)desk_proxy_bytes(proxy));
    HT_CHECK(desk_proxy_connections(proxy) >= 4); /* two sessions, 2 sides */
    HT_CHECK(desk_proxy_bytes(proxy) > 20000);    /* video went through */
    /* the recording works: the relay handshake carries the server key */
    HT_CHECK(desk_proxy_count(proxy, srv.pk_b64, strlen(srv.pk_b64)) > 0);
    HT_EQ_INT(desk_proxy_count(proxy, marker, strlen(marker)), 0);
    HT_EQ_INT(desk_proxy_count(proxy, clip_marker, strlen(clip_marker)), 0);
    HT_EQ_INT(desk_proxy_count(proxy, PASSWORD, strlen(PASSWORD)), 0);
    /* between our programs the keys differ per direction: XORing the two
     * directions of each relayed connection shows no plaintext structure
     * (legacy keys would show it in every pair: test_host relay_session) */
    for (size_t i = 0; i < desk_proxy_connections(proxy); i++) {
        size_t pairs = 0, leaks = desk_proxy_xor_leaks(proxy, i, &pairs);

        printf("# relay connection %zu: %zu of %zu frame pairs show "
               "plaintext structure through XOR\n",
               i, leaks, pairs);
        /* chance alone: 1 in 8 per pair; legacy: every pair */
        HT_CHECK(pairs < 5 || leaks < pairs);
        all_pairs += pairs;
        all_leaks += leaks;
    }
    HT_CHECK(all_pairs >= 16);
    /* Legacy keys leak in every pair; per-direction keys in each pair by
     * chance, 1 in 8, and the relay's two legs carry the same frames (the
     * counts come in twos): about 18 pairs of one session, so a third
     * (6 or more: ~2 %) failed a make test with 7 of 18 and 7 of 17, where
     * half (9 or more) happens by chance ~1 in 10^4 */
    HT_CHECK(all_leaks * 2 < all_pairs);
    HT_CHECK(strstr(out, " enc=split") != NULL);
    HT_CHECK(!file_has(host.log, "legacy encryption", 10));
    HT_CHECK(!file_has(hv.err, "legacy encryption", 10)); /* server too */
    if (ht_case_failures()) {
        desk_viewer_dump(&v);
        desk_viewer_dump(&hv);
    }
    if (hv.pid > 0)
        desk_viewer_stop(&hv);
}

/* The server goes away and comes back. */
static void server_restart(void)
{
    const char *one[] = { "--frames", "1", NULL };
    struct desk_viewer v, hv;
    char out[4096];

    HT_CHECK(desk_viewer_start(&v, tmpdir, "restart", &srv, &B, PASSWORD,
                               host.id, NULL) == 0);
    HT_CHECK(file_has(v.err, "first frame shown", 10000));
    HT_CHECK(type_through("before"));

    HT_CHECK(srv_stop(&srv) == 0);
    HT_CHECK(file_has(host.log, "no answer from the rendezvous server", 10000));
    /* the established session does not need the server */
    HT_CHECK(type_through("down"));
    HT_CHECK(kill(v.pid, 0) == 0);
    HT_CHECK(kill(host.pid, 0) == 0);

    HT_CHECK(srv_start(&srv, srv.dir, NULL) == 0);
    HT_CHECK(file_has(host.log, "answers again", 10000));
    /* a new viewer reaches the host by ID */
    HT_CHECK(desk_viewer_start(&hv, tmpdir, "after", &srv, NULL, PASSWORD,
                               host.id, one) == 0);
    HT_EQ_INT(desk_viewer_wait(&hv, 15000), 0);
    desk_slurp(hv.out, out, sizeof(out));
    HT_CHECK(strstr(out, "stats: frames=1 ") != NULL);
    /* and the first session still runs */
    HT_CHECK(type_through("after"));
    if (ht_case_failures()) {
        desk_viewer_dump(&v);
        desk_viewer_dump(&hv);
        srv_dump_log(&srv);
    }
    desk_viewer_stop(&v);
    if (hv.pid > 0)
        desk_viewer_stop(&hv);
}

int main(void)
{
    ht_init("e2e-net");
    signal(SIGPIPE, SIG_IGN);
    hd_crypto_init();
    if (!xvfb_have("Xvfb") || !xvfb_have("xdotool")) {
        ht_skip("all", "Xvfb or xdotool missing");
        return ht_finish();
    }
    if (desk_tmp_make(tmpdir, sizeof(tmpdir), "e2e-net") != 0)
        return 1;
    HT_RUN(set_up);
    if (up) {
        HT_RUN(relay_session);
        HT_RUN(server_restart);
    }
    if (ht_failures() > 0 || getenv("HD_TEST_VERBOSE"))
        desk_dump("host log", host.log);
    desk_host_stop(&host);
    desk_stop(card_pid, 2000);
    desk_screen_close(&A);
    desk_screen_close(&B);
    srv_cleanup(&srv);
    desk_proxy_free(proxy);
    desk_tmp_done(tmpdir);
    return ht_finish();
}

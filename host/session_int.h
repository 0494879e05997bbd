/*
 * A viewer session's insides, shared by its files (other modules use
 * session.h).  session.c: life cycle, the channel, the tick, TCP and UDP
 * beginnings; session_login.c: the handshake up to a logged-in viewer;
 * session_live.c: the messages of a live session (input, clipboard,
 * options, cursor, acks) and the broadcasts of video, audio, cursor and
 * clipboard to every live session.
 *
 * Threads: all of it on the loop thread.
 */
#ifndef HD_HOST_SESSION_INT_H
#define HD_HOST_SESSION_INT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "channel.h"
#include "err.h"
#include "host/inject.h"
#include "host/input/input.h"
#include "clip.h"
#include "host/audio/audio.h"
#include "host/clipboard/clipboard.h"
#include "host/ident.h"
#include "host/session.h"
#include "host/xfer.h"
#include "host/video.h"
#include "log.h"
#include "net.h"
#include "os.h"
#include "rudp.h"
#include "squeeze.h"

#define MOD "session"

#define SESSION_TICK_MS  1000
#define SESSION_LOGIN_MS 10000 /* from connect to the first LoginRequest */
/* after "Empty Password" a person types the password */
#define SESSION_PASSWORD_MS 60000
#define SESSION_LINGER_MS   300 /* flush a last error before closing */
#define SESSION_MAX_MSG     (1u << 20)
/* once logged in: room for a whole clipboard (HD_CLIP_MAX, even if zstd
 * could not shrink it) in one message */
#define SESSION_LIVE_MAX_MSG  (HD_CLIP_MAX + 64u * 1024)
#define SESSION_VIDEO_BACKLOG (512u * 1024)
/*
 * Flow control by acknowledgement (issue 12): a viewer that asks for it
 * (LoginRequest.video_ack_required: RustDesk's web client, our viewer)
 * sends Misc.video_received for each frame it got.  At most
 * SESSION_IN_FLIGHT frames go unacknowledged; while every live viewer is
 * at that limit the capture thread is held (video_set_active 0), so a
 * slow link skips frames at the source (the screen's damage accumulates
 * and the next frame carries it) instead of queueing seconds of video.
 * No ack for SESSION_ACK_TIMEOUT_MS (RustDesk's host waits as long)
 * counts the frames as lost.
 */
#define SESSION_CURSOR_IDS 16 /* pointer shapes a viewer is known to have */
/* a viewer's mouse input this recent moved the pointer: its CursorPosition
 * (the echo) is not sent to that viewer, as RustDesk's host does */
#define SESSION_ECHO_MS   300
#define SESSION_IN_FLIGHT 2
/*
 * A frame is dropped for a viewer (which then needs a key frame) only past
 * this many in flight: the capture is held at SESSION_IN_FLIGHT, but the
 * frame being encoded and the ones queued for the loop (VIDEO_QUEUE) still
 * come.  Dropping those at SESSION_IN_FLIGHT cost a key frame each, and a
 * key frame's lossless refinement of the whole screen: over a 40 ms round
 * trip (bench_peers WAN) 38 of 317 frames were dropped and the session
 * took 3 MB where TigerVNC took 70 kB.
 */
#define SESSION_IN_FLIGHT_MAX  (SESSION_IN_FLIGHT + VIDEO_QUEUE + 1)
#define SESSION_ACK_TIMEOUT_MS 3000
/* audio waits behind at most this much: past it, frames are dropped */
#define SESSION_AUDIO_BACKLOG (1024u * 1024)

enum state { ST_HELLO, ST_LOGIN, ST_LIVE, ST_CLOSING };

struct session {
    struct session *next, *prev;
    struct host *h;
    struct hd_channel *ch;
    uv_timer_t timer;
    enum session_path path;
    enum state state;
    struct sockaddr_storage peer_ss;
    char peer[HD_ADDR_STRLEN], ip[HD_ADDR_STRLEN];
    /* relayed: the viewer's address the server reported (session_origin),
     * for throttling and the failed-login line; src_ip: that or ip */
    struct sockaddr_storage origin;
    int has_origin;
    char src_ip[HD_ADDR_STRLEN];
    char challenge[8];
    char viewer[64];
    uint64_t started_ms, last_rx_ms, delay_sent_ms;
    uint32_t last_delay;
    uint64_t frames_sent, frames_dropped, bytes_sent;
    int acks;           /* the viewer acknowledges frames (video_received) */
    unsigned in_flight; /* frames sent and not acknowledged */
    uint64_t last_ack_ms, acks_timed_out;
    uint64_t cursor_ids[SESSION_CURSOR_IDS]; /* shapes sent (a ring) */
    unsigned n_cursor_ids;
    uint64_t mouse_ms; /* the viewer's last mouse input, or 0 */
    int need_key, unencrypted, linked, input_errors, lingering;
    int asked; /* a LoginRequest came (wrong or empty): the longer deadline */
    int clipboard;      /* the viewer shares its clipboard (not disabled) */
    int audio;          /* the viewer wants the desktop's sound */
    int i444;           /* the viewer decodes and prefers 4:4:4 VP9 */
    int tiles;          /* the viewer decodes still tiles (hd_tiles) */
    struct hxfer *xfer; /* a file transfer session (no video), or NULL */
    uint64_t audio_sent, audio_dropped;
    const char *end_reason;
    /* a UDP session on a shared socket (the registration socket): its
     * datagrams come through session_udp_input; conv for any UDP one */
    uv_udp_t *usock;
    uint32_t conv;
};

/* session_login.c */
void session_on_public_key(struct session *s, const Hbb__Message *m);
void session_send_audio_format(struct session *s);
void session_on_login(struct session *s, const Hbb__LoginRequest *lr);

/* session_live.c */
void session_on_test_delay(struct session *s, const Hbb__TestDelay *td);
void session_send_cursor_shape(struct session *s);
void session_send_cursor_position(struct session *s);
void session_on_live(struct session *s, const Hbb__Message *m);

/* session.c */
const char *session_path_name(enum session_path p);
uint64_t session_now_ms(struct session *s);
int session_count_sessions(struct host *h, int live, const char *ip, int relay,
                           const struct session *self);
void session_audio_recount(struct host *h);
int session_video_room(const struct session *s);
/* The options ask for 4:4:4 VP9 (SupportedDecoding: i444.vp9 and
 * prefer_chroma I444, as RustDesk's "true colour"). */
int session_wants_i444(const Hbb__OptionMessage *o);
/* The options say the viewer decodes still tiles (a homedesk viewer:
 * SupportedDecoding.hd_tiles bit 0). */
int session_wants_tiles(const Hbb__OptionMessage *o);
void session_video_recount(struct host *h);
void session_close_soon(struct session *s, const char *reason);
/* Share monitor i of the host's list (-1: the whole screen): the video
 * crops to it (session_live.c). */
void session_share_monitor(struct host *h, int i);

int session_send_msg(struct session *s, Hbb__Message *m);
void session_send_test_delay(struct session *s);

#endif

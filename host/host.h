/*
 * homedesk-host: the shared state of the program (one struct host, owned
 * by main.c) and the modules that use it:
 * - reg.c: registration with the rendezvous server and its requests
 *   (FetchLocalAddr, PunchHole, RequestRelay), relay connections;
 * - session.c: one viewer session on a direct or relayed stream
 *   (handshake, login, video, input, liveness);
 * - video.c: the capture+encode thread and its hand-off to the loop;
 * - ident.c, throttle.c, inject.c: identity, login throttle, input.
 *
 * Threads: everything here belongs to the libuv loop thread, except
 * what video.h says about its own thread.
 *
 * Backends (one folder per platform-facing interface, a table of
 * function pointers in its header, one file per backend, the fakes for
 * tests): capture/ (x11, wlr, fake), input/ (xtest, wlr, fake), clipboard/
 * (wlr, x11, fake), audio/ (pulse, fake).  A Windows host adds win32.c
 * (DXGI capture, SendInput, the clipboard listener, WASAPI loopback) to
 * each folder and one line to each table, as the wlr clipboard did.
 * Outside these folders only main.c (which display system the session offers)
 * and monitors.c (RandR, new with #18) still know X11 or Wayland; the monitor
 * list belongs behind capture/'s table next (a Windows capture lists DXGI
 * outputs).
 *
 * Files: main.c (start-up, shutdown), opts.c (the option table), reg*.c
 * (see reg.h), session*.c (see session.h), video.c, punch.c and upunch.c
 * (the NAT traversal of PunchHole), xfer.c (file transfer; port mapping
 * is common/nat/map.h's), monitors.c, ident.c, throttle.c, inject.c.
 */
#ifndef HD_HOST_HOST_H
#define HD_HOST_HOST_H

#include "host/monitors.h"
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "host/ident.h"
#include "host/throttle.h"

/* What the host tells peers its protocol level is: RustDesk clients gate
 * features on it, so it is the RustDesk release whose protocol we speak,
 * not our own version (HD_VERSION, which the logs show). */
#define HOST_WIRE_VERSION   "1.4.0"
#define HOST_DEFAULT_LISTEN 21120
/*
 * Sessions: HOST_MAX_SESSIONS logged-in ones; apart from them at most
 * HOST_MAX_PRELOGIN that have not logged in yet (each gets
 * SESSION_LOGIN_MS to send its LoginRequest), at most
 * HOST_PRELOGIN_PER_IP of those from one address and HOST_PRELOGIN_RELAY
 * through the relay (relayed sessions all come from the relay's address),
 * and at most HOST_RELAY_PER_MIN relay connects a minute (each anonymous
 * RequestRelay makes the host connect out), HOST_RELAY_PER_SRC of them
 * for one viewer address (the one the server reports: IPv4, or IPv6 /64)
 * and HOST_PRELOGIN_PER_IP at a time.  From HOST_PRELOGIN_START
 * connections that have not logged in, a new one is dropped at random,
 * with a chance from HOST_PRELOGIN_RATE percent rising to 100 at
 * HOST_MAX_PRELOGIN (OpenSSH's MaxStartups 10:30:16): many sources
 * filling the budget get thinned before it is full, and a viewer that
 * tries again gets in.  Idle connections or relay requests from a few
 * addresses then no longer keep a viewer out.
 */
#define HOST_MAX_SESSIONS    8
#define HOST_MAX_PRELOGIN    16
#define HOST_PRELOGIN_START  10
#define HOST_PRELOGIN_RATE   30
#define HOST_PRELOGIN_PER_IP 3
#define HOST_PRELOGIN_RELAY  8
#define HOST_RELAY_PER_MIN   30
#define HOST_RELAY_PER_SRC   6
#define HOST_RELAY_SRCS      32 /* viewer addresses tracked for that */
/* the one-time password is replaced after it logged someone in, and
 * after this many failed logins (of any source) while it was valid */
#define HOST_OTP_MAX_FAILS 5

struct host_opts {
    const char *server, *key, *password, *password_file;
    const char *relay; /* the user's relay "HOST[:PORT]" (--relay), or NULL */
    const char *display, *config_dir, *log_level, *log_file;
    int capture, input; /* index into host_capture_names / input names */
    int listen_port;
    int reg_interval_ms;
    int reg_tcp; /* 0 auto (after UDP silence), 1 always, -1 never */
    int fps;
    int idle_ms; /* session silence before closing */
    int fake_width, fake_height, fake_interval_ms, fake_frames;
    int verbose;
    bool no_otp, allow_unencrypted, show_id, help, help_man, version, no_upnp;
    bool no_clipboard, no_audio, no_file_transfer, selftest;
    const char *audio_source;
    int clipboard, audio; /* backend: index in main.c's name tables */
};

struct reg;
struct punch;
struct upunch;
struct hd_nat_natt;
struct hd_nat_mapper;
struct session;
struct video;
struct input;
struct hclip;
struct audio;

struct host {
    uv_loop_t *loop;
    const struct host_opts *o;
    struct ident ident;
    struct throttle throttle;
    struct input *input;
    struct video *video;
    struct hclip *clip;  /* the shared clipboard (clipboard.h), or NULL */
    struct audio *audio; /* desktop audio (audio.h), or NULL */
    struct reg *reg;
    struct session *sessions; /* list, see session.c */
    int n_sessions;
    uint64_t relay_window_ms; /* start of the current relay-connect minute */
    int relay_connects;       /* relay sessions started in it */
    struct host_relay_src {   /* relay connects per viewer address */
        uint8_t key[9];       /* 4 + IPv4, or 6 + IPv6 /64; [0] 0: free */
        int n;                /* in the minute from since */
        uint64_t since;
    } relay_src[HOST_RELAY_SRCS];
    uint64_t early_drops; /* connections dropped by the MaxStartups rule */
    int otp_fails; /* failed logins since the one-time password was made */
    uv_tcp_t listener;
    uint16_t listen_port; /* 0 when not listening */
    /* the rendezvous server as configured (host name or address) */
    char server_host[256];
    uint16_t server_port;
    int nat_type;               /* Hbb__NatType from the last NAT test */
    struct punch *punches;      /* in progress, see punch.h */
    struct upunch *upunches;    /* UDP punches in progress, see upunch.h */
    struct hd_nat_natt *natt;   /* the NAT test in progress, or NULL */
    struct hd_nat_mapper *upnp; /* port mapping (nat/map.h), or NULL */
    uint16_t upnp_port;         /* the router's public port for us, or 0 */
    /* the pointer as viewers are told it (session.c): its shape as
     * CursorData's zstd-compressed RGBA (NULL while unknown), position */
    uint8_t *cursor_colors;
    size_t cursor_colors_len;
    uint64_t cursor_id;
    int cursor_x, cursor_y, cursor_hot_x, cursor_hot_y, cursor_w, cursor_h;
    /* the monitors (monitors.h), listed at each login, and the one shared
     * (-1: all of the screen) */
    struct monitor monitors[MONITORS_MAX];
    int n_monitors, cur_monitor;
    int stopping;
    /* start of the last UDP port spray (upunch.h budget), or 0 */
    uint64_t upunch_spray_ms;
};

#endif

/*
 * The session with one host, on a thread of its own that runs a libuv
 * loop: reach the host (rendezvous.h, blocking, before the loop runs),
 * then the sealed Message stream (common/channel.h): SignedId check,
 * login, video frames to the decode thread, TestDelay echo, and the
 * user's input events sent as they come.
 *
 * Host identity: by ID, the host's Ed25519 key is the one the server
 * signed; with --direct, the key in SignedId's sign_pk extension,
 * pinned in known_hosts on first use and refused when it changes.
 *
 * Threads: sess_new/sess_start/sess_free on the owner's thread (main);
 * sess_send, sess_stop and sess_get_stats from any thread; the callbacks
 * run on the session thread.  sess_free joins the thread, so it must not
 * be called from a callback.
 */
#ifndef VIEW_SESSION_H
#define VIEW_SESSION_H

#include <stdint.h>

#include "client/decode.h"
#include "client/rendezvous.h"
#include "client/xfer.h"
#include "message.pb-c.h"

/* Input messages waiting for the loop at most (then dropped). */
#define SESS_INPUT_MAX 1024
/* Nothing received for this long ends the session (PROTOCOL.md). */
#define SESS_IDLE_MS 30000

struct sess;

struct sess_config {
    const char *server;      /* ID mode: "HOST[:PORT]" */
    const char *key_b64;     /* ID mode: the server's public key */
    const char *id;          /* ID mode: the host's ID */
    const char *direct;      /* or "HOST:PORT": no server */
    const char *known_hosts; /* pinned host keys (--direct and by ID) */
    const char *password;    /* the caller keeps it valid until sess_free */
    /* or, when not NULL, SHA256(password || salt) remembered from an
     * earlier login (HD_SHA256_BYTES; sess_get_login): used instead of
     * password, which is then ignored */
    const uint8_t *salted;
    const char *my_id, *my_name;
    int force_relay;        /* ID mode: skip the direct attempt */
    const char *relay;      /* ID mode: the user's relay (--relay), or NULL */
    int allow_plain_server; /* ID mode: server without KeyExchange is ok */
    int no_udp, no_tcp;     /* ID mode: skip UDP / the direct TCP paths */
    int no_clipboard;       /* ask the host not to share its clipboard */
    int no_audio;           /* ask the host not to send its sound */
    int answer_ms;          /* ID mode: wait for the host's answer (0: 20 s) */
    /* a file transfer session instead of the desktop (xfer.h), or NULL */
    const struct vxfer_opts *xfer;
};

struct sess_stats {
    uint64_t video_bytes, video_frames; /* received */
    uint32_t rtt_ms;                    /* last round trip the host saw */
    int path;                           /* enum rv_path, -1 before */
    double connect_ms;                  /* start to logged in, or 0 */
    int width, height;                  /* the host's display */
    int legacy;       /* 1: RustDesk's legacy encryption (a RustDesk host) */
    char host_fp[24]; /* the host key's fingerprint (hd_key_fingerprint) */
    /* where that display is on the host's desktop (mouse coordinates are
     * the desktop's), which one of how many (-1: all of them) */
    int disp_x, disp_y, display, n_displays;
    uint64_t xfer_done, xfer_total; /* a file transfer's bytes, of */
};

struct sess_cb {
    /* Logged in; the host's display is w x h. */
    void (*on_ready)(int w, int h, void *ud);
    /*
     * The session is over (called once): status 0 after sess_stop, 1 on
     * a failure, with a one-line message for the user (NULL for 0).
     */
    void (*on_end)(int status, const char *msg, void *ud);
    /* Text the host copied (NUL-terminated, n bytes; valid during the
     * call).  May be NULL. */
    void (*on_clipboard)(const char *text, size_t n, void *ud);
    /* An Opus frame of the host's sound (valid during the call).  May be
     * NULL. */
    void (*on_audio)(const uint8_t *opus, size_t n, void *ud);
    /* The host's pointer: a CursorData, CursorId or CursorPosition
     * (pointer.h; valid during the call).  May be NULL. */
    void (*on_cursor)(const Hbb__Message *m, void *ud);
};

/* Set up (nothing runs yet).  Returns 0, -ENOMEM or a libuv error. */
int sess_new(const struct sess_config *cfg, struct dec *dec,
             const struct sess_cb *cb, void *ud, struct sess **out);

/* Start the session thread.  Returns 0 or -errno. */
int sess_start(struct sess *s);

/*
 * Queue m (packed here) for the host; sent by the loop thread as soon as
 * it wakes, once logged in (dropped before).  Returns 0, -ENOBUFS when
 * SESS_INPUT_MAX messages wait, -ENOMEM.
 */
int sess_send(struct sess *s, const Hbb__Message *m);

/* End the session (on_end(0) follows unless it already ended). */
void sess_stop(struct sess *s);

void sess_get_stats(struct sess *s, struct sess_stats *out);

/*
 * After a login (on_ready): the host's name as it reports it
 * ("user@hostname", or hostname) into name, and SHA256(password || salt)
 * for its salt into salted (HD_SHA256_BYTES), what the connect window
 * remembers instead of the password.  Returns 0, or -EAGAIN before a
 * login.  Any thread.
 */
int sess_get_login(struct sess *s, char *name, size_t cap, uint8_t *salted);

/* Stop, join the thread and free; accepts NULL. */
void sess_free(struct sess *s);

#endif

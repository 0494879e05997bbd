/*
 * The viewer session's insides, shared by its files (other modules use
 * session.h): session.c (the thread, the loop, the owner's calls),
 * session_login.c (SignedId, the password hash, the login, the file
 * transfer it starts), session_live.c (the messages of a live session).
 * Session thread only, but for what struct sess guards with mu.
 */
#ifndef VIEW_SESSION_INT_H
#define VIEW_SESSION_INT_H

#include <pthread.h>
#include <stdint.h>

#include <uv.h>

#include "channel.h"
#include "client/session.h"
#include "crypto.h"
#include "log.h"

enum sess_state { ST_SIGNED_ID = 0, ST_HASH, ST_LOGIN, ST_LIVE, ST_DONE };

struct sess_input {
    uint8_t *data;
    size_t n;
};

struct sess {
    struct sess_config cfg;
    struct sess_cb cb;
    void *ud;
    struct dec *dec;
    pthread_t thread;
    int started;
    int cancel[2]; /* pipe: readable once sess_stop was called */

    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t idle;
    struct hd_channel *ch;
    enum sess_state state;
    int ended;
    uint64_t t0_ms;
    char host_id[128]; /* the ID we log in to */
    uint8_t host_pk[HD_SIGN_PK_BYTES];
    int codec_warned;
    int tiles_seen; /* a still tiles message came (logged once) */
    uint8_t salted[HD_SHA256_BYTES]; /* for sess_get_login */
    struct vxfer *xf; /* file transfer (cfg.xfer), once logged in */

    pthread_mutex_t mu; /* guards what follows */
    int stop;
    int loop_done;
    int logged_in;
    char peer_name[128];
    struct sess_input in[SESS_INPUT_MAX];
    int in_head, in_count;
    struct sess_stats st;
};

/* Monotonic milliseconds. */
#define mono_ms() (uv_hrtime() / 1000000u)

/* Monotonic milliseconds. */
#define mono_ms() (uv_hrtime() / 1000000u)

/* session.c */
/* The session is over: tell the owner once, then let the loop wind down. */
void sess_finish(struct sess *s, int status, const char *msg);
void sess_failf(struct sess *s, const char *fmt, ...) HD_PRINTF(2, 3);
/* Send m, or end the session when the connection is gone. */
void sess_send_msg(struct sess *s, const Hbb__Message *m);
/* A Misc message with one bool set: refresh_video, video_received. */
void sess_send_misc_flag(struct sess *s, Hbb__Misc__UnionCase which);
void sess_send_refresh(struct sess *s);

/* session_login.c */
int sess_pin_host_key(struct sess *s, const char *name);
void sess_on_signed_id(struct sess *s, const Hbb__SignedId *sid);
void sess_on_hash(struct sess *s, const Hbb__Hash *h);
void sess_on_login_response(struct sess *s, const Hbb__LoginResponse *lr);

/* session_live.c */
void sess_on_message(struct hd_channel *ch, const Hbb__Message *m, void *ud);

#endif

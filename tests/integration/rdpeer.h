/*
 * A viewer's side of a peer session the way RustDesk's apps run one, for
 * tests (PROTOCOL.md section 5): over framed TCP (a direct connection or
 * the TCP relay) or over a WebSocket (the web client's relay port, one
 * message per binary frame), with RustDesk's session crypto (SignedId
 * checked with the host's key, PublicKey with a sealed secretbox key, one
 * key both ways).  Blocking sockets, so a test reads top to bottom; not
 * thread-safe.
 */
#ifndef HD_TESTS_RDPEER_H
#define HD_TESTS_RDPEER_H

#include <stdint.h>

#include "crypto.h"
#include "message.pb-c.h"

struct rdp {
    int fd;
    int ws;     /* WebSocket framing (else the 1-4 byte length header) */
    int secure; /* secretbox on every message past the handshake */
    struct hd_secure sec;
    uint8_t *buf; /* RDP_BUF bytes, one incoming message */
};

#define RDP_BUF (4u << 20)

/* Take fd (connected; after the relay's RequestRelay when relayed).
 * 0, or -1 (fd < 0, no memory; fd is then closed). */
int rdp_init(struct rdp *p, int fd, int ws);

/* Close and free.  Accepts a zeroed or failed struct. */
void rdp_cleanup(struct rdp *p);

/* Send one message (sealed once secure).  0 or -1. */
int rdp_send(struct rdp *p, const Hbb__Message *m);

/* Receive one message within timeout_ms; NULL on timeout, EOF or a
 * message that does not open.  Free with hbb__message__free_unpacked. */
Hbb__Message *rdp_recv(struct rdp *p, int timeout_ms);

/* Receive until a message of kind (others are skipped); NULL on timeout. */
Hbb__Message *rdp_expect(struct rdp *p, int kind, int timeout_ms);

/* SignedId (checked with host_pk and id) -> PublicKey.  0 when sealed. */
int rdp_handshake(struct rdp *p, const uint8_t host_pk[32], const char *id,
                  int timeout_ms);

/*
 * Hash -> LoginRequest as RustDesk's client sends it (VP9 declared,
 * video_ack_required as given) -> LoginResponse, returned (the caller
 * frees it), or NULL.
 */
Hbb__Message *rdp_login(struct rdp *p, const char *id, const char *password,
                        int ack_required, int timeout_ms);

/* 1 when m is a LoginResponse carrying PeerInfo (a good login). */
int rdp_logged_in(const Hbb__Message *m);

#endif

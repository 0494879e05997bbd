/*
 * Support for integration tests: start the real homedesk-server on
 * loopback with its own ports and a temporary data directory, and talk to
 * it as a RustDesk peer would (framed TCP, bare UDP datagrams), with plain
 * blocking sockets so a test reads top to bottom.
 */
#ifndef HD_TESTS_SUPPORT_H
#define HD_TESTS_SUPPORT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "rendezvous.pb-c.h"

struct srv {
    pid_t pid;
    char dir[256]; /* data directory */
    char logpath[300];
    uint16_t port; /* rendezvous base port (NAT test port-1, WS +2) */
    uint16_t relay_port;
    uint16_t http_port;
    char pk_b64[64]; /* the server's public key, as in id_ed25519.pub */
    uint8_t pk[32];
    int own_dir;
};

/* Path of a built program: $HD_BUILD_DIR/NAME (default build/NAME). */
const char *prog_path(const char *name, char *buf, size_t cap);

/*
 * Start homedesk-server with a fresh temp data dir (dir == NULL) or the
 * given one (a restart keeps the ports), free ports, and extra arguments
 * (NULL-terminated, may be NULL).  Waits until every port answers.
 * Returns 0 or -1.
 */
int srv_start(struct srv *s, const char *dir, const char *const *extra);

/* SIGTERM and wait; returns the exit status, or -1. */
int srv_stop(struct srv *s);

/* Stop if running and remove the temp data dir (if srv_start made it). */
void srv_cleanup(struct srv *s);

/* Does the server's log contain needle?  Waits up to wait_ms. */
int srv_log_has(const struct srv *s, const char *needle, int wait_ms);

/* Print the server log's tail as test diagnostics. */
void srv_dump_log(const struct srv *s);

/* Blocking TCP connect to ip:port (optionally from bind_ip); fd or -1. */
int tcp_connect(const char *ip, uint16_t port);
int tcp_connect_from(const char *bind_ip, const char *ip, uint16_t port);

/* UDP socket bound to ip:0 (loopback aliases like 127.0.0.2 work). */
int udp_open(const char *ip);

/* TCP socket listening on ip:0; fd or -1. */
int tcp_listen_on(const char *ip);

/* Local port of a socket. */
uint16_t sock_port(int fd);

/* Framed send of a rendezvous message / raw bytes.  0 or -1. */
int send_msg(int fd, const Hbb__RendezvousMessage *m);
int send_all(int fd, const void *data, size_t n);

/*
 * Receive one framed message within timeout_ms; NULL on timeout, EOF or
 * garbage.  With skip_kx, a KeyExchange offer is skipped (as clients
 * without a key do).  Free with hbb__rendezvous_message__free_unpacked.
 */
Hbb__RendezvousMessage *recv_msg(int fd, int timeout_ms, int skip_kx);

/* Receive one framed payload into buf; its length or -1. */
ssize_t recv_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms);

/* 1 if the peer closed the connection within timeout_ms. */
int wait_closed(int fd, int timeout_ms);

int udp_send_msg(int fd, const char *ip, uint16_t port,
                 const Hbb__RendezvousMessage *m);
Hbb__RendezvousMessage *udp_recv_msg(int fd, int timeout_ms,
                                     struct sockaddr_storage *from);

/*
 * A random base port for a server under test, so that base-2 .. base+3
 * lie in 10002..32765: below the kernel's ephemeral range (32768 and
 * up), where the source ports of the tests' own connections could take
 * them.
 */
uint16_t test_base_port(void);

/* Monotonic milliseconds. */
uint64_t now_ms(void);

/*
 * The two directions of one recorded session stream as a keyless relay
 * sees them: a = the bytes one side sent, b = the bytes the other sent.
 * The first skip_a / skip_b frames of each are skipped (plain ones:
 * RequestRelay, SignedId, PublicKey); then the k-th sealed frame (payload
 * of more than 1 byte) of a is paired with the k-th of b, the two frames
 * RustDesk's legacy channel seals under one (key, nonce).  For each pair
 * the first bytes after the 16-byte MACs are XORed: under a shared key
 * stream that is the XOR of the two Messages' first bytes, both protobuf
 * tags of wire type 2, so its low 3 bits are 0.  *pairs gets the number
 * of pairs; returns how many pairs showed that plaintext structure: all of
 * them in legacy mode, about one in eight with per-direction keys.
 */
size_t xor_leaks(const uint8_t *a, size_t na, size_t skip_a, const uint8_t *b,
                 size_t nb, size_t skip_b, size_t *pairs);

/* Does the file at path contain needle?  Looks again every 20 ms for up
 * to wait_ms (the first megabyte of the file). */
int file_has(const char *path, const char *needle, int wait_ms);

/*
 * A man in the middle on 127.0.0.1 for the server's TCP port to: every
 * byte both ways, except that from the connection numbered from_conn on
 * (0: every one) the server's first frame, its KeyExchange, loses hd_kx,
 * the offer of per-direction keys.  A thread per connection, one for the
 * listener; strip_proxy_cut ends the connections open now (their peers
 * see them close); strip_proxy_stop ends the listener and them.
 */
struct strip_proxy {
    int lis;
    uint16_t port, to;
    int from_conn;
    pthread_t thread;
    volatile int stop, cut, conns, stripped;
    int active; /* connection threads running (atomic) */
};
int strip_proxy_start(struct strip_proxy *px, uint16_t to, int from_conn);
void strip_proxy_cut(struct strip_proxy *px);
void strip_proxy_stop(struct strip_proxy *px);

#endif

/*
 * A minimal WebSocket client (RFC 6455) for tests: connect and upgrade
 * (fd or -1), send one masked binary message, receive one message (its
 * length, or -1; pings are skipped).
 */
int ws_client_connect(const char *ip, uint16_t port);
int ws_client_send(int fd, const void *data, size_t n);
ssize_t ws_client_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms);

/* HTTP GET on ip:port (Host: ip:port); the whole response into buf
 * (NUL-terminated).  Returns the status code or -1. */
int http_get(const char *ip, uint16_t port, const char *path, char *buf,
             size_t cap);

/* The same with a request of the caller's (every byte, CRLFs included). */
int http_request(const char *ip, uint16_t port, const char *req, char *buf,
                 size_t cap);

/*
 * Start argv[0] (a path) in cwd with extra environment entries
 * ("NAME=value" sets, a bare "NAME" unsets; NULL-terminated, may be NULL),
 * stdout and stderr appended to logpath.  Returns the pid or -1.
 */
pid_t spawn_in(const char *cwd, const char *const *argv, const char *const *env,
               const char *logpath);

/* Wait up to ms for pid to exit; its exit status, or -1 if still running. */
int wait_exit(pid_t pid, int ms);

/* Resident memory of a process (VmRSS) in KiB, or -1. */
long proc_rss_kib(pid_t pid);

/* SIGTERM *pid (when > 0), SIGKILL after 5 s, reap it; *pid = 0. */
void stop_pid(pid_t *pid);

/* Wait up to ms until a TCP port on 127.0.0.1 accepts; 1 or 0. */
int wait_port(uint16_t port, int ms);

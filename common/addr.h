/*
 * Socket addresses: the RustDesk "mangled" form of the socket_addr fields
 * (PROTOCOL.md section 2), text formatting and parsing, and CIDR masks.
 *
 * Invariants: IPv4 peers are always handled as AF_INET, never as
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, which a dual-stack socket reports):
 * mangle, unmangle, parse, format, same_ip and the CIDR test convert them
 * first, so clients never receive the 18-byte form for an IPv4 peer, logs
 * show 1.2.3.4 and a mask like 192.168.0.0/16 matches such peers.  Ports
 * are in host byte order at this API.  Only AF_INET and AF_INET6 are
 * supported; other families give an error (or 0 / "?" where noted).
 *
 * Every function is reentrant and may be called from any thread;
 * hd_addr_resolve blocks (call it at start-up or on a worker thread, never
 * on the libuv loop thread).
 */
#ifndef HD_ADDR_H
#define HD_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include "os.h"

/* Longest mangled form: 16 IPv6 bytes + 2 port bytes. */
#define HD_ADDR_MANGLED_MAX 18
/* Buffer size for hd_addr_format: "[v6%scope]:65535" and a NUL. */
#define HD_ADDR_STRLEN (INET6_ADDRSTRLEN + 32)

/* Microseconds since the epoch (CLOCK_REALTIME), for hd_addr_mangle. */
uint64_t hd_addr_now_us(void);

/*
 * Mangle sa as RustDesk clients expect: IPv4 (or IPv4-mapped IPv6) as the
 * time-salted 128-bit value, little-endian with trailing zero bytes trimmed
 * (at least 1 byte is kept); IPv6 as 16 address bytes and the 2-byte
 * little-endian port.  now_us is the time salt, normally hd_addr_now_us()
 * (only its low 32 bits are used).  Returns the length written to out
 * (1..18), or 0 for an unsupported family.
 */
size_t hd_addr_mangle(const struct sockaddr *sa, uint64_t now_us,
                      uint8_t out[HD_ADDR_MANGLED_MAX]);

/*
 * Decode a mangled address from a peer: 18 bytes are IPv6 (an IPv4-mapped
 * one is returned as AF_INET), 1..16 bytes IPv4.  Returns 0, or HD_EPROTO
 * for an empty or over-long field, 17 bytes, or an IPv4 value that no
 * encoder can produce; *out is zeroed on entry.  Does not log (the caller
 * knows the peer).
 */
int hd_addr_unmangle(const uint8_t *in, size_t n, struct sockaddr_storage *out);

/*
 * Turn an IPv4-mapped IPv6 address into AF_INET in place, keeping the
 * port.  Returns 1 when converted, 0 when ss was left as it is.
 */
int hd_addr_normalize(struct sockaddr_storage *ss);

/*
 * Write "1.2.3.4:5", "[::1]:5" or "[fe80::1%eth0]:5" into buf (cap bytes,
 * HD_ADDR_STRLEN is always enough; truncated to fit otherwise).  An
 * unsupported family or a NULL sa writes "?".  Returns buf, so it can be
 * an argument of a log call.
 */
const char *hd_addr_format(const struct sockaddr *sa, char *buf, size_t cap);

/* The same without the port and brackets: "1.2.3.4", "::1". */
const char *hd_addr_format_ip(const struct sockaddr *sa, char *buf, size_t cap);

/*
 * Parse a numeric address: "1.2.3.4", "1.2.3.4:5", "::1", "[::1]",
 * "[::1]:5", "fe80::1%eth0" (scope by name or number).  default_port is
 * used when the text has none.  IPv4 must be a plain dotted quad; a port
 * is 0..65535 in decimal.  An IPv4-mapped IPv6 address gives AF_INET.
 * Returns 0, or -EINVAL on malformed text (*out zeroed on entry).
 */
int hd_addr_parse(const char *s, uint16_t default_port,
                  struct sockaddr_storage *out);

/*
 * As hd_addr_parse, but the host may also be a name ("example.org:21116",
 * "[name]:5" is not accepted), resolved with getaddrinfo: the first
 * result in the system's preference order is returned.  BLOCKS on DNS:
 * call at start-up or off the loop thread.  Returns 0, -EINVAL on
 * malformed text, or a libuv getaddrinfo code (UV_EAI_NONAME, ...) /
 * negative errno on resolver failure.
 */
int hd_addr_resolve(const char *s, uint16_t default_port,
                    struct sockaddr_storage *out);

/* The relay port when a relay address names none (RustDesk's hbbr). */
#define HD_RELAY_PORT 21117

/*
 * The relay to use where the rendezvous server handed out one that does
 * not resolve here (e.g. "rustdesk-hbbr:21117", a name only a compose
 * network knows): the rendezvous server's host with the relay's port.
 * relay is "HOST[:PORT]" (its port, else HD_RELAY_PORT), server is
 * "HOST[:PORT]" or a bare host (IPv6 with or without brackets).  Writes
 * "HOST:PORT" ("[v6]:PORT") into out.  Returns 0, or -EINVAL when server
 * does not parse or out is too small.  Does not block.
 */
int hd_relay_fallback(const char *relay, const char *server, char *out,
                      size_t cap);

/* The port of sa in host order (0 for an unsupported family). */
uint16_t hd_addr_port(const struct sockaddr *sa);

/* Set the port of sa (host order); ignored for an unsupported family. */
void hd_addr_set_port(struct sockaddr *sa, uint16_t port);

/*
 * 1 when a and b hold the same IP address (ports ignored; an IPv4-mapped
 * IPv6 address equals its IPv4 form), else 0.
 */
int hd_addr_same_ip(const struct sockaddr *a, const struct sockaddr *b);

/* sizeof the family's sockaddr (for bind/connect/sendto), 0 if unknown. */
socklen_t hd_addr_len(const struct sockaddr *sa);

/* A parsed network mask like 192.168.0.0/16 or fd00::/8. */
struct hd_cidr {
    int family;       /* AF_INET or AF_INET6 */
    unsigned prefix;  /* 0..32 or 0..128 */
    uint8_t addr[16]; /* network bytes, host bits cleared */
};

/*
 * Parse "ADDR/PREFIX" or a bare "ADDR" (a single host).  Host bits set in
 * ADDR are cleared (192.168.1.5/16 means 192.168.0.0/16).  Returns 0 or
 * -EINVAL (*c zeroed on entry).
 */
int hd_cidr_parse(const char *s, struct hd_cidr *c);

/*
 * 1 when sa's address lies inside c, else 0.  An IPv4-mapped IPv6 address
 * is tested as IPv4; IPv4 never matches an IPv6 mask and vice versa.
 */
int hd_cidr_contains(const struct hd_cidr *c, const struct sockaddr *sa);

/*
 * One-shot form of the two above (parse the mask once with hd_cidr_parse
 * when testing many addresses).  Returns 1, 0, or -EINVAL for a bad mask.
 */
int hd_addr_in_cidr(const struct sockaddr *sa, const char *cidr);

#endif

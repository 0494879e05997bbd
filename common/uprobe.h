/*
 * UDP punch probes (issue 5; DESIGN.md section 5, "UDP where both sides
 * are ours"): the datagrams a homedesk host and viewer send each other to
 * open their NATs before a session runs over UDP (rudp.h) on the same
 * sockets.
 *
 * Wire, every integer big-endian:
 *   0xD7 'P' conv[4] role[1] idlen[1] id[idlen]   probe
 *   0xD7 'A' conv[4] role[1] idlen[1] id[idlen]   answer to a probe
 * 0xD7 (HD_UDP_MAGIC) can never start a protobuf message (wire type 7),
 * so a host tells these from the rendezvous server's datagrams on its
 * registration socket, and the types 'P' and 'A' are reserved in the
 * rudp wire format.  id is always the host's ID (the one the viewer asked
 * the server for); role is 'H' from the host, 'V' from the viewer.  conv
 * is the viewer's random session number, 0 in the host's probes (the host
 * learns it from the viewer's).  Probes authenticate nothing: the session
 * that follows does (SignedId, secretbox, the password); a probe only
 * tells a socket where its peer really is (peer-reflexive address).
 *
 * Reentrant; any thread.
 */
#ifndef HD_UPROBE_H
#define HD_UPROBE_H

#include <stddef.h>
#include <stdint.h>

#define HD_UPROBE_MAGIC  0xD7
#define HD_UPROBE_PROBE  'P'
#define HD_UPROBE_ANSWER 'A'
#define HD_UPROBE_HOST   'H'
#define HD_UPROBE_VIEWER 'V'
#define HD_UPROBE_ID_MAX 64
#define HD_UPROBE_MAX    (8 + HD_UPROBE_ID_MAX)

struct hd_uprobe {
    int type;      /* HD_UPROBE_PROBE or HD_UPROBE_ANSWER */
    int role;      /* HD_UPROBE_HOST or HD_UPROBE_VIEWER */
    uint32_t conv; /* 0 in the host's probes */
    char id[HD_UPROBE_ID_MAX + 1];
};

/*
 * A port a NAT may have handed out (1024-65535, uniformly at random): the
 * guesses of the birthday search towards a symmetric NAT.
 */
uint16_t hd_uprobe_guess_port(void);

/*
 * Write p into buf (at least HD_UPROBE_MAX bytes).  Returns the length,
 * or 0 when p->id is longer than HD_UPROBE_ID_MAX or type/role is not
 * one of the values above.
 */
size_t hd_uprobe_pack(const struct hd_uprobe *p, uint8_t *buf);

/*
 * 1 when d[0..n) looks like a probe or an answer (magic and type), so the
 * caller can route it before parsing; 0 otherwise.
 */
int hd_uprobe_is(const uint8_t *d, size_t n);

/*
 * Parse a datagram from the network into *out (cleared on entry).
 * Returns 0, or HD_EPROTO for anything malformed (wrong magic, type or
 * role, a length that does not match, an ID with a NUL or control byte).
 */
int hd_uprobe_parse(const uint8_t *d, size_t n, struct hd_uprobe *out);

#endif

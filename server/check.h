/*
 * `homedesk-server check HOST`: run from outside the server's LAN, it
 * verifies that every port reaches the server by speaking the protocol on
 * it (a TCP connect alone says nothing about UDP, and a router may forward
 * a port to the wrong machine), and prints a checklist naming the router
 * rule that is missing.  Blocking; runs before any loop exists.
 */
#ifndef HD_SERVER_CHECK_H
#define HD_SERVER_CHECK_H

#include <stdint.h>

struct check_opts {
    const char *host;    /* name or address of the server, with or without
                          * a port: "name", "name:P", "1.2.3.4:P",
                          * "[v6]:P" (P replaces port) */
    uint16_t port;       /* rendezvous port (21116); NAT test port-1 */
    uint16_t relay_port; /* 0: the rendezvous port + 1 */
    int ws;              /* also check port+2 and relay_port+2 */
    const char *key;     /* the server's public key, or NULL: then the
                          * relay is recognised by its refusal of a wrong
                          * key instead of by relaying bytes */
    int timeout_ms;      /* per probe, default 3000 */
};

/*
 * Run every probe, print what was checked (address and ports) and the
 * checklist to stdout; when no TCP port answers at all (refused or timed
 * out) that is said first, with its usual causes, instead of a router
 * rule per port.  Returns 0 when all passed, 1 when one failed, 2 when
 * host does not resolve or its port is unusable.
 */
int check_run(const struct check_opts *o);

#endif

/*
 * The recent refusals the admin page lists: a bounded ring of the last
 * REJECTS_MAX refused attempts (a wrong key, a blocked address, a request
 * over budget, a bad Host header on the admin port...), each with when,
 * from where (redacted as the page shows it), which role refused it and
 * why.  The same refusal repeated from the same place folds into one
 * entry with a count, so a flood keeps the ring readable and costs no
 * memory.  Counters (/metrics) stay the exact record; this is the story.
 *
 * Ownership: the server owns one struct rejects and lends it to each role
 * (rdv_config.rejects, relay_config.rejects) and to the admin port; any of
 * them may be NULL.  Loop thread only.
 */
#ifndef HD_SERVER_REJECTS_H
#define HD_SERVER_REJECTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define REJECTS_MAX        64
#define REJECTS_ADDR_MAX   48
#define REJECTS_DETAIL_MAX 48

struct reject {
    uint64_t first_s, last_s;        /* Unix time of the first and last one */
    uint32_t count;                  /* refusals folded into this entry */
    const char *role;                /* "rendezvous", "relay", "admin" */
    const char *reason;              /* static text: "wrong key", ... */
    char addr[REJECTS_ADDR_MAX];     /* the source, redacted, no port */
    char detail[REJECTS_DETAIL_MAX]; /* the ID asked for, a uuid hash, or "" */
};

struct rejects {
    struct reject ring[REJECTS_MAX];
    size_t next;    /* slot the next new entry takes */
    size_t n;       /* entries in use, at most REJECTS_MAX */
    uint64_t total; /* refusals ever noted */
};

/* Start empty. */
void rejects_init(struct rejects *r);

/*
 * Note one refusal.  role and reason must be static strings; from may be
 * NULL (unknown source); detail may be NULL, is copied (cut to fit) and
 * should already be safe to show (an ID as hd_log_quote writes it, a
 * short hash, never a key or a full uuid).  r may be NULL: nothing happens.
 */
void rejects_add(struct rejects *r, const char *role, const char *reason,
                 const struct sockaddr *from, const char *detail);

/*
 * The i-th entry, newest first (i = 0 is the last one noted), or NULL
 * when i >= r->n.
 */
const struct reject *rejects_get(const struct rejects *r, size_t i);

/*
 * An address as the admin page shows it: private, loopback and link-local
 * addresses in full with their port ("192.168.1.20:50123", "[::1]:4000");
 * a public IPv4 address without its last byte and port ("203.0.113.x"), a
 * public IPv6 address as its /48 ("2001:db8:1::/48"): enough to tell a
 * neighbour from a stranger and to spot one network hammering, not enough
 * to put a person's address in a screenshot.  Writes "?" for NULL or an
 * unknown family.  Returns out.
 */
const char *rejects_redact(const struct sockaddr *sa, char *out, size_t cap);

#endif

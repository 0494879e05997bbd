/*
 * The ring of recent refusals (rejects.h) and the address redaction the
 * admin page uses for every address it shows.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "server/rejects.h"

static const char *redact(const struct sockaddr *sa, char *out, size_t cap,
                          int port);

void rejects_init(struct rejects *r)
{
    memset(r, 0, sizeof(*r));
}

const struct reject *rejects_get(const struct rejects *r, size_t i)
{
    if (r == NULL || i >= r->n)
        return NULL;
    return &r->ring[(r->next + REJECTS_MAX - 1 - i) % REJECTS_MAX];
}

void rejects_add(struct rejects *r, const char *role, const char *reason,
                 const struct sockaddr *from, const char *detail)
{
    struct reject *e;
    char addr[REJECTS_ADDR_MAX];
    uint64_t now = (uint64_t)time(NULL);

    if (r == NULL)
        return;
    r->total++;
    /* no port: a client's next connection is the same place */
    redact(from, addr, sizeof(addr), 0);
    if (detail == NULL)
        detail = "";
    /* the newest entry, the same refusal again: count it there */
    if (r->n > 0) {
        e = (struct reject *)rejects_get(r, 0);
        if (strcmp(e->role, role) == 0 && strcmp(e->reason, reason) == 0 &&
            strcmp(e->addr, addr) == 0 &&
            strncmp(e->detail, detail, sizeof(e->detail) - 1) == 0) {
            e->count++;
            e->last_s = now;
            return;
        }
    }
    e = &r->ring[r->next];
    r->next = (r->next + 1) % REJECTS_MAX;
    if (r->n < REJECTS_MAX)
        r->n++;
    memset(e, 0, sizeof(*e));
    e->first_s = e->last_s = now;
    e->count = 1;
    e->role = role;
    e->reason = reason;
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    snprintf(e->detail, sizeof(e->detail), "%s", detail);
}

/* Private, loopback, link-local, CGNAT: shown in full. */
static int v4_local(const uint8_t *b)
{
    return b[0] == 10 || b[0] == 127 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
           (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254) ||
           (b[0] == 100 && (b[1] & 0xc0) == 64) || b[0] == 0;
}

static int v6_local(const struct in6_addr *a)
{
    return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
           IN6_IS_ADDR_UNSPECIFIED(a) ||
           (a->s6_addr[0] & 0xfe) == 0xfc; /* ULA fc00::/7 */
}

const char *rejects_redact(const struct sockaddr *sa, char *out, size_t cap)
{
    return redact(sa, out, cap, 1);
}

static const char *redact(const struct sockaddr *sa, char *out, size_t cap,
                          int port)
{
    struct sockaddr_storage ss;
    uint8_t b[16];

    snprintf(out, cap, "?");
    if (sa == NULL || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return out;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, sa, hd_addr_len(sa));
    hd_addr_normalize(&ss); /* ::ffff:a.b.c.d is IPv4 */
    if (ss.ss_family == AF_INET) {
        memcpy(b, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        if (v4_local(b))
            return port ? hd_addr_format((struct sockaddr *)&ss, out, cap)
                        : hd_addr_format_ip((struct sockaddr *)&ss, out, cap);
        snprintf(out, cap, "%u.%u.%u.x", b[0], b[1], b[2]);
        return out;
    }
    {
        struct in6_addr a = ((struct sockaddr_in6 *)&ss)->sin6_addr;
        char s[INET6_ADDRSTRLEN];

        if (v6_local(&a))
            return port ? hd_addr_format((struct sockaddr *)&ss, out, cap)
                        : hd_addr_format_ip((struct sockaddr *)&ss, out, cap);
        memset(a.s6_addr + 6, 0, 10); /* keep the /48 */
        inet_ntop(AF_INET6, &a, s, sizeof(s));
        snprintf(out, cap, "%s/48", s);
        return out;
    }
}

/*
 * hd-natpmpd: a minimal NAT-PMP server (RFC 6886) for the NAT lab's
 * routers, standing in for miniupnpd, which refuses to map anything when
 * its WAN address is in a reserved range (the lab's internet is
 * 203.0.113.0/24, TEST-NET-3; see tests/nat/test_upnp.sh).
 *
 *   hd-natpmpd LAN_IP WAN_IP SECS [MAX_LIFETIME]
 *
 * Listens on LAN_IP:5351 (UDP) for SECS seconds.  Opcode 0 answers
 * WAN_IP; opcodes 1/2 (UDP/TCP map) install a real mapping as an nft
 * DNAT rule in table ip hdpmp (chain prerouting, hook prerouting, dstnat
 * priority) from WAN port E to the requesting client's internal port, and
 * lifetime 0 removes the client's mapping again.  Lifetimes are capped at
 * MAX_LIFETIME (default 7200) and expire.  Every mapping change prints
 * one line on stdout ("map tcp 10.1.0.10:21120 <- 21120 60s", "unmap ...",
 * "expire ...") for the lab script to check.  The routers' forward filter
 * already accepts DNATed traffic (ct status dnat).  A test tool: a bad
 * request gets the RFC's error answer, never a crash.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PMP_PORT 5351
#define MAX_MAPS 64

struct map {
    int used, proto; /* 1 udp, 2 tcp */
    struct in_addr client;
    uint16_t in_port, ext_port;
    time_t expires;
};

static struct map maps[MAX_MAPS];
static time_t started;

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* Rewrite the whole chain from the table of mappings. */
static int apply(void)
{
    char cmd[8192], ip[INET_ADDRSTRLEN];
    size_t n;
    FILE *f;
    int i;

    n = (size_t)snprintf(cmd, sizeof(cmd),
                         "table ip hdpmp {\n chain prerouting {\n"
                         "  type nat hook prerouting priority dstnat;\n"
                         " }\n}\nflush chain ip hdpmp prerouting\n");
    for (i = 0; i < MAX_MAPS && n < sizeof(cmd); i++) {
        if (!maps[i].used)
            continue;
        inet_ntop(AF_INET, &maps[i].client, ip, sizeof(ip));
        n += (size_t)snprintf(cmd + n, sizeof(cmd) - n,
                              "add rule ip hdpmp prerouting iifname \"wan\" "
                              "%s dport %u dnat to %s:%u\n",
                              maps[i].proto == 1 ? "udp" : "tcp",
                              (unsigned)maps[i].ext_port, ip,
                              (unsigned)maps[i].in_port);
    }
    if (n >= sizeof(cmd) || (f = popen("nft -f -", "w")) == NULL)
        return -1;
    fputs(cmd, f);
    return pclose(f) == 0 ? 0 : -1;
}

static void say(const char *what, const struct map *m, uint32_t life)
{
    char ip[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &m->client, ip, sizeof(ip));
    printf("%s %s %s:%u <- %u %us\n", what, m->proto == 1 ? "udp" : "tcp", ip,
           (unsigned)m->in_port, (unsigned)m->ext_port, (unsigned)life);
    fflush(stdout);
}

static void expire(time_t now)
{
    int i, changed = 0;

    for (i = 0; i < MAX_MAPS; i++)
        if (maps[i].used && maps[i].expires <= now) {
            say("expire", &maps[i], 0);
            maps[i].used = 0;
            changed = 1;
        }
    if (changed)
        apply();
}

/* Opcode 1/2: returns the RFC result code; fills *ext and *life. */
static int do_map(int proto, struct in_addr client, uint16_t in_port,
                  uint16_t want, uint32_t life, uint32_t max_life,
                  uint16_t *ext, uint32_t *out_life)
{
    time_t now = time(NULL);
    int i, freei = -1, changed = 0;

    *ext = 0;
    *out_life = 0;
    if (life == 0) { /* delete this client's mapping(s) of in_port */
        for (i = 0; i < MAX_MAPS; i++)
            if (maps[i].used && maps[i].proto == proto &&
                maps[i].client.s_addr == client.s_addr &&
                (in_port == 0 || maps[i].in_port == in_port)) {
                say("unmap", &maps[i], 0);
                maps[i].used = 0;
                changed = 1;
            }
        *ext = 0;
        if (changed && apply() != 0)
            return 3;
        return 0;
    }
    if (in_port == 0)
        return 2; /* not authorized */
    if (life > max_life)
        life = max_life;
    if (want == 0)
        want = in_port;
    for (i = 0; i < MAX_MAPS; i++) {
        if (!maps[i].used) {
            if (freei < 0)
                freei = i;
            continue;
        }
        if (maps[i].proto == proto && maps[i].client.s_addr == client.s_addr &&
            maps[i].in_port == in_port) { /* renewal */
            maps[i].expires = now + (time_t)life;
            say("renew", &maps[i], life);
            *ext = maps[i].ext_port;
            *out_life = life;
            return 0;
        }
        if (maps[i].proto == proto && maps[i].ext_port == want)
            want = (uint16_t)(want < 65535 ? want + 1 : 1024);
    }
    if (freei < 0)
        return 4; /* out of resources */
    maps[freei] =
        (struct map){ 1, proto, client, in_port, want, now + (time_t)life };
    if (apply() != 0) {
        maps[freei].used = 0;
        return 3;
    }
    say("map", &maps[freei], life);
    *ext = want;
    *out_life = life;
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in me, from;
    struct in_addr wan;
    uint32_t max_life = 7200;
    uint8_t req[64], ans[16];
    time_t end;
    int fd, secs;

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: hd-natpmpd LAN_IP WAN_IP SECS [MAX_LIFE]\n");
        return 2;
    }
    memset(&me, 0, sizeof(me));
    me.sin_family = AF_INET;
    me.sin_port = htons(PMP_PORT);
    if (inet_pton(AF_INET, argv[1], &me.sin_addr) != 1 ||
        inet_pton(AF_INET, argv[2], &wan) != 1 || (secs = atoi(argv[3])) <= 0)
        return 2;
    if (argc == 5 && (max_life = (uint32_t)strtoul(argv[4], NULL, 10)) == 0)
        return 2;
    if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0 ||
        bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0) {
        perror("hd-natpmpd: bind");
        return 1;
    }
    started = time(NULL);
    end = started + secs;
    if (apply() != 0) {
        fprintf(stderr, "hd-natpmpd: nft failed\n");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        socklen_t flen = sizeof(from);
        time_t now = time(NULL);
        ssize_t n;
        size_t alen;
        int rc = 0;

        expire(now);
        if (now >= end)
            break;
        if (poll(&p, 1, 1000) <= 0)
            continue;
        n = recvfrom(fd, req, sizeof(req), 0, (struct sockaddr *)&from, &flen);
        if (n < 2 || req[1] >= 128)
            continue; /* too short, or an answer */
        memset(ans, 0, sizeof(ans));
        ans[0] = 0;
        ans[1] = (uint8_t)(req[1] + 128);
        put32(ans + 4, (uint32_t)(now - started));
        alen = 8;
        if (req[0] != 0) {
            rc = 1; /* unsupported version */
        } else if (req[1] == 0 && n >= 2) {
            memcpy(ans + 8, &wan, 4);
            alen = 12;
        } else if ((req[1] == 1 || req[1] == 2) && n >= 12) {
            uint16_t ext;
            uint32_t life;

            rc = do_map(req[1], from.sin_addr, get16(req + 4), get16(req + 6),
                        get32(req + 8), max_life, &ext, &life);
            put16(ans + 8, get16(req + 4));
            put16(ans + 10, ext);
            put32(ans + 12, life);
            alen = 16;
        } else {
            rc = 5; /* unsupported opcode */
        }
        put16(ans + 2, (uint16_t)rc);
        sendto(fd, ans, alen, 0, (struct sockaddr *)&from, flen);
    }
    memset(maps, 0, sizeof(maps));
    apply();
    close(fd);
    return 0;
}

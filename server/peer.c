/*
 * Registration rules and the in-memory peer table (see peer.h).  The
 * order of the checks in peer_register_pk is the reference server's, so
 * RustDesk clients see the answers they expect.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "addr.h"
#include "log.h"
#include "server/db.h"
#include "server/peer.h"

#define IP_WINDOW_MS   (60 * 1000) /* per-IP RegisterPk window */
#define IP_WINDOW_MAX  30          /* more than this -> TOO_FREQUENT */
#define IP_DAY_MS      (24 * 3600 * 1000ULL) /* new-ID window */
#define IP_DAY_MAX_IDS 300
#define ID_WINDOW_MS   6000 /* per-ID RegisterPk window */
#define ID_WINDOW_MAX  2    /* counted RegisterPk before refusing */

/* Per-IP RegisterPk counters (the reference's IP_BLOCKER). */
struct ip_counter {
    uint8_t ip[16];
    uint32_t count;    /* RegisterPk in the current window */
    uint32_t n_ids;    /* distinct IDs today */
    uint64_t count_ms; /* time of the last counted RegisterPk */
    uint64_t day_ms;   /* time of the last new ID */
    uint32_t cap_ids;
    uint32_t *ids; /* short hashes of the IDs seen today */
};

static const void *peer_key(const void *item, size_t *len)
{
    const struct peer *p = item;
    *len = p->id_len;
    return p->id;
}

static const void *counter_key(const void *item, size_t *len)
{
    *len = 16;
    return ((const struct ip_counter *)item)->ip;
}

void peer_table_init(struct peer_table *t, struct db *db)
{
    memset(t, 0, sizeof(*t));
    hmap_init(&t->peers, peer_key);
    hmap_init(&t->blocker, counter_key);
    t->db = db;
}

static void counter_free(struct ip_counter *c)
{
    if (c) {
        free(c->ids);
        free(c);
    }
}

void peer_table_cleanup(struct peer_table *t)
{
    void *it;
    size_t i = 0;

    while ((it = hmap_next(&t->peers, &i)) != NULL)
        free(it);
    i = 0;
    while ((it = hmap_next(&t->blocker, &i)) != NULL)
        counter_free(it);
    hmap_cleanup(&t->peers);
    hmap_cleanup(&t->blocker);
}

/* 16-byte form of an address's IP (IPv4 as ::ffff:a.b.c.d). */
static void ip16(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
}

static void ip16_format(const uint8_t ip[16], char *buf, size_t cap)
{
    static const uint8_t v4prefix[12] = { 0, 0, 0, 0, 0,    0,
                                          0, 0, 0, 0, 0xff, 0xff };

    if (memcmp(ip, v4prefix, 12) == 0)
        inet_ntop(AF_INET, ip + 12, buf, (socklen_t)cap);
    else
        inet_ntop(AF_INET6, ip, buf, (socklen_t)cap);
}

static void set_addr(struct peer *p, const struct sockaddr *sa)
{
    memset(&p->addr, 0, sizeof(p->addr));
    if (sa->sa_family == AF_INET)
        memcpy(&p->addr.in, sa, sizeof(p->addr.in));
    else if (sa->sa_family == AF_INET6)
        memcpy(&p->addr.in6, sa, sizeof(p->addr.in6));
}

static void uuid_hash(const uint8_t *uuid, size_t len, uint8_t out[16])
{
    crypto_generichash(out, 16, uuid, len, NULL, 0);
}

struct peer *peer_find(struct peer_table *t, const char *id)
{
    return hmap_get(&t->peers, id, strlen(id));
}

static struct peer *peer_alloc(const char *id)
{
    size_t len = strlen(id);
    struct peer *p;

    if (len > PEER_ID_MAX || (p = calloc(1, sizeof(*p) + len + 1)) == NULL)
        return NULL;
    p->id_len = (uint8_t)len;
    memcpy(p->id, id, len + 1);
    return p;
}

/*
 * The peer from memory, else from the database (then cached), else NULL.
 * *r gets a negative error when the database failed.
 */
static struct peer *peer_get_or_load(struct peer_table *t, const char *id,
                                     int *r)
{
    struct peer *p = peer_find(t, id);
    struct db_peer row;
    struct sockaddr_storage ss;

    *r = 0;
    if (p != NULL || t->db == NULL)
        return p;
    if ((*r = db_get_peer(t->db, id, &row)) != 0) {
        if (*r == -ENOENT)
            *r = 0;
        else
            t->stats.db_errors++;
        return NULL;
    }
    if ((p = peer_alloc(id)) == NULL) {
        *r = -ENOMEM;
        return NULL;
    }
    memcpy(p->guid, row.guid, sizeof(p->guid));
    uuid_hash(row.uuid, row.uuid_len, p->uuid_hash);
    p->pk_len = row.pk_len > PEER_PK_MAX ? PEER_PK_MAX : (uint8_t)row.pk_len;
    memcpy(p->pk, row.pk, p->pk_len);
    if (hd_addr_parse(row.ip, 0, &ss) == 0)
        ip16((struct sockaddr *)&ss, p->ip);
    if ((*r = hmap_put(&t->peers, p)) != 0) {
        free(p);
        return NULL;
    }
    t->stats.registered = t->peers.count;
    return p;
}

int peer_exists(struct peer_table *t, const char *id)
{
    int r;

    if (peer_find(t, id))
        return 1;
    if (t->db == NULL)
        return 0;
    {
        struct db_peer row;

        r = db_get_peer(t->db, id, &row);
    }
    if (r == 0)
        return 1;
    if (r == -ENOENT)
        return 0;
    t->stats.db_errors++;
    return r;
}

int peer_is_online(const struct peer *p, uint64_t now)
{
    return p->last_reg_ms != 0 && now - p->last_reg_ms < PEER_REG_TIMEOUT_MS;
}

int peer_udp_live(const struct peer *p, uint64_t now)
{
    return p->last_udp_ms != 0 && now - p->last_udp_ms < PEER_REG_TIMEOUT_MS;
}

int peer_prefers_tcp(const struct peer *p, uint64_t now)
{
    return p->conn != NULL && (p->conn_secure || p->last_udp_ms == 0 ||
                               now - p->last_udp_ms >= PEER_REG_TIMEOUT_MS);
}

struct peer *peer_heartbeat(struct peer_table *t, const char *id,
                            const struct sockaddr *from, uint64_t now,
                            int keep_addr, int *request_pk)
{
    struct peer *p = peer_find(t, id);
    uint8_t ip[16], known[16];
    int ip_change, port_change;

    *request_pk = 1;
    if (p == NULL)
        return NULL;
    /* Compare with the live address if any, else with the stored IP. */
    ip16(from, ip);
    if (p->addr.sa.sa_family != 0)
        ip16(&p->addr.sa, known);
    else
        memcpy(known, p->ip, 16);
    ip_change = memcmp(ip, known, 16) != 0;
    /* Another port on the same IP (a device behind the same NAT, a CGNAT
     * neighbour) must prove itself too: only the IP is compared for a
     * keepalive that does not move the address. */
    port_change = !keep_addr && p->addr.sa.sa_family != 0 &&
                  hd_addr_port(&p->addr.sa) != hd_addr_port(from);
    *request_pk = p->pk_len == 0 || ip_change || port_change;
    if (!*request_pk) {
        if (!keep_addr)
            set_addr(p, from);
        p->last_reg_ms = now ? now : 1;
    } else if (ip_change && p->reg_pk_count <= 2) {
        char a[64], b[64];

        ip16_format(p->ip, a, sizeof(a));
        ip16_format(ip, b, sizeof(b));
        hd_info("rdv", "IP change of %s from %s to %s", p->id, a, b);
    }
    return p;
}

/* The reference's check_ip_blocker: 1 = allowed. */
static int ip_allowed(struct peer_table *t, const uint8_t ip[16],
                      const char *id, uint64_t now)
{
    struct ip_counter *c = hmap_get(&t->blocker, ip, 16);
    uint32_t h;
    int is_new = 1;

    if (c == NULL) {
        if ((c = calloc(1, sizeof(*c))) == NULL)
            return 1; /* out of memory: fail open, registration works */
        memcpy(c->ip, ip, 16);
        c->count_ms = c->day_ms = now;
        if (hmap_put(&t->blocker, c) != 0)
            counter_free(c);
        return 1;
    }
    if (now - c->count_ms > IP_WINDOW_MS)
        c->count = 0;
    else if (c->count > IP_WINDOW_MAX)
        return 0;
    c->count++;
    c->count_ms = now;

    crypto_shorthash((unsigned char *)&h, (const unsigned char *)id, strlen(id),
                     t->blocker.seed);
    for (uint32_t i = 0; i < c->n_ids; i++) {
        if (c->ids[i] == h) {
            is_new = 0;
            break;
        }
    }
    if (now - c->day_ms > IP_DAY_MS)
        c->n_ids = 0;
    else if (c->n_ids > IP_DAY_MAX_IDS)
        return !is_new;
    if (is_new) {
        if (c->n_ids == c->cap_ids) {
            uint32_t cap = c->cap_ids ? c->cap_ids * 2 : 4;
            uint32_t *ids = realloc(c->ids, cap * sizeof(*ids));
            if (ids == NULL)
                return 1;
            c->ids = ids;
            c->cap_ids = cap;
        }
        c->ids[c->n_ids++] = h;
    }
    c->day_ms = now;
    return 1;
}

static int valid_id(const char *id)
{
    size_t n = strlen(id);

    if (n > PEER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

struct peer *peer_same_owner(struct peer_table *t, const char *id,
                             const uint8_t *uuid, size_t uuid_len,
                             const uint8_t *pk, size_t pk_len)
{
    struct peer *p;
    uint8_t uh[16];
    int r;

    if (id == NULL || uuid_len == 0 || pk_len == 0 || pk_len > PEER_PK_MAX ||
        (p = peer_get_or_load(t, id, &r)) == NULL)
        return NULL;
    uuid_hash(uuid, uuid_len, uh);
    if (sodium_memcmp(p->uuid_hash, uh, 16) != 0 || p->pk_len != pk_len ||
        memcmp(p->pk, pk, pk_len) != 0)
        return NULL;
    return p;
}

enum peer_pk_result peer_register_pk(struct peer_table *t, const char *id,
                                     const uint8_t *uuid, size_t uuid_len,
                                     const uint8_t *pk, size_t pk_len,
                                     const struct sockaddr *from, uint64_t now)
{
    struct peer *p;
    uint8_t ip[16], uh[16];
    char ipstr[64];
    int r, changed, fresh = 0;

    if (uuid_len == 0 || pk_len == 0)
        return PEER_PK_IGNORE;
    if (strlen(id) < 6 || !valid_id(id)) {
        t->stats.uuid_mismatch++;
        return PEER_PK_UUID_MISMATCH;
    }
    if (pk_len > PEER_PK_MAX) {
        hd_warn("rdv", "RegisterPk for %s with a %zu-byte key refused", id,
                pk_len);
        return PEER_PK_SERVER_ERROR;
    }
    ip16(from, ip);
    ip16_format(ip, ipstr, sizeof(ipstr));
    if (!ip_allowed(t, ip, id, now)) {
        t->stats.too_frequent++;
        hd_warn("rdv", "registration too frequent from %s (id %s)", ipstr, id);
        return PEER_PK_TOO_FREQUENT;
    }
    uuid_hash(uuid, uuid_len, uh);
    p = peer_get_or_load(t, id, &r);
    if (r != 0)
        return PEER_PK_SERVER_ERROR;
    if (p == NULL) {
        if ((p = peer_alloc(id)) == NULL)
            return PEER_PK_SERVER_ERROR;
        randombytes_buf(p->guid, sizeof(p->guid));
        if (hmap_put(&t->peers, p) != 0) {
            free(p);
            return PEER_PK_SERVER_ERROR;
        }
        fresh = 1;
        changed = 1;
    } else {
        int same_pk = p->pk_len == pk_len && memcmp(p->pk, pk, pk_len) == 0;
        int ip_changed = memcmp(p->ip, ip, 16) != 0;

        if (sodium_memcmp(p->uuid_hash, uh, 16) != 0) {
            t->stats.uuid_mismatch++;
            hd_warn("rdv", "uuid mismatch for id %s from %s: refused", id,
                    ipstr);
            return PEER_PK_UUID_MISMATCH;
        }
        if (ip_changed && !same_pk) {
            t->stats.uuid_mismatch++;
            hd_warn("rdv", "id %s: both IP and key changed (from %s): refused",
                    id, ipstr);
            return PEER_PK_UUID_MISMATCH;
        }
        changed = !same_pk || ip_changed;
    }
    if (now - p->reg_pk_ms > ID_WINDOW_MS) {
        p->reg_pk_count = 0;
    } else if (p->reg_pk_count > ID_WINDOW_MAX) {
        t->stats.too_frequent++;
        return PEER_PK_TOO_FREQUENT;
    }
    p->reg_pk_count++;
    p->reg_pk_ms = now;

    if (changed && t->db != NULL) {
        r = fresh ? db_insert_peer(t->db, id, uuid, uuid_len, pk, pk_len, ipstr,
                                   p->guid)
                  : db_update_pk(t->db, p->guid, id, pk, pk_len, ipstr);
        if (r != 0) {
            t->stats.db_errors++;
            if (fresh) {
                hmap_del(&t->peers, id, strlen(id));
                free(p);
            }
            return PEER_PK_SERVER_ERROR;
        }
    }
    if (changed) {
        t->stats.reg_changes++;
        hd_info("rdv", "%s id %s from %s", fresh ? "registered new" : "updated",
                id, ipstr);
    }
    memcpy(p->uuid_hash, uh, 16);
    memcpy(p->pk, pk, pk_len);
    p->pk_len = (uint8_t)pk_len;
    memcpy(p->ip, ip, 16);
    set_addr(p, from);
    p->last_reg_ms = now ? now : 1;
    t->stats.registered = t->peers.count;
    return PEER_PK_OK;
}

size_t peer_table_sweep(struct peer_table *t, uint64_t now, uint64_t idle_ms)
{
    size_t i = 0, dropped = 0;
    struct peer *p;
    struct ip_counter *c;

    while ((p = hmap_next(&t->peers, &i)) != NULL) {
        uint64_t last =
            p->last_reg_ms > p->reg_pk_ms ? p->last_reg_ms : p->reg_pk_ms;
        if (p->conn == NULL && now - last > idle_ms) {
            hmap_del(&t->peers, p->id, p->id_len);
            free(p);
            dropped++;
            i--; /* a later item may have moved into this slot */
        }
    }
    i = 0;
    while ((c = hmap_next(&t->blocker, &i)) != NULL) {
        if (now - c->count_ms > IP_DAY_MS && now - c->day_ms > IP_DAY_MS) {
            hmap_del(&t->blocker, c->ip, 16);
            counter_free(c);
            i--;
        }
    }
    t->stats.evicted += dropped;
    t->stats.registered = t->peers.count;
    return dropped;
}

size_t peer_table_online(struct peer_table *t, uint64_t now)
{
    size_t i = 0, n = 0;
    struct peer *p;

    while ((p = hmap_next(&t->peers, &i)) != NULL)
        n += (size_t)peer_is_online(p, now);
    return n;
}

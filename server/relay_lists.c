/*
 * Relay peer addresses and the black/block lists (blacklist.txt: limited
 * to the limit speed, blocklist.txt: refused), as hbbr reads them: one IP
 * per line, re-read when the file changes (a timer) or on SIGHUP.  Lists
 * are sorted arrays of 16-byte addresses (IPv4 as ::ffff:a.b.c.d),
 * searched with bsearch; a file larger than MAX_LIST_FILE is refused.
 */
#include "server/relay_int.h"

void relay_ip_from_sockaddr(const struct sockaddr_storage *ss, uint8_t ip[16],
                            char *str, size_t strcap, char *name,
                            size_t namecap)
{
    static const uint8_t mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };
    int port = 0, v6 = 0;

    memset(ip, 0, 16);
    snprintf(str, strcap, "?");
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        memcpy(ip, mapped, 12);
        memcpy(ip + 12, &s4->sin_addr, 4);
        port = ntohs(s4->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        memcpy(ip, &s6->sin6_addr, 16);
        port = ntohs(s6->sin6_port);
    }
    if (memcmp(ip, mapped, 12) == 0) {
        inet_ntop(AF_INET, ip + 12, str, (socklen_t)strcap);
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, ip, str, (socklen_t)strcap);
        v6 = 1;
    }
    if (v6)
        snprintf(name, namecap, "[%s]:%d", str, port);
    else
        snprintf(name, namecap, "%s:%d", str, port);
}

/* ---- IP lists ---- */

static int ip_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

int relay_iplist_has(const struct relay_iplist *l, const uint8_t ip[16])
{
    return l->n && bsearch(ip, l->ips, l->n, 16, ip_cmp) != NULL;
}

int relay_parse_ip(const char *s, uint8_t ip[16])
{
    struct in_addr a4;

    if (inet_pton(AF_INET, s, &a4) == 1) {
        memset(ip, 0, 10);
        ip[10] = ip[11] = 0xff;
        memcpy(ip + 12, &a4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, s, ip) == 1 ? 0 : -1;
}

/* Parse text into a sorted, deduplicated list.  Returns 0 or -ENOMEM. */
static int iplist_parse(char *text, size_t len, uint8_t (**out)[16],
                        size_t *n_out, size_t *bad_out)
{
    uint8_t(*ips)[16] = NULL;
    size_t n = 0, cap = 0, bad = 0, i = 0;

    *out = NULL;
    *n_out = *bad_out = 0;
    while (i < len) {
        size_t eol = i, s, e;
        char tok[INET6_ADDRSTRLEN + 1];

        while (eol < len && text[eol] != '\n')
            eol++;
        s = i;
        while (s < eol && (text[s] == ' ' || text[s] == '\t'))
            s++;
        e = s;
        while (e < eol && text[e] != ' ' && text[e] != '\t' && text[e] != '#' &&
               text[e] != '\r')
            e++;
        i = eol + 1;
        if (e == s)
            continue;
        if (e - s >= sizeof(tok)) {
            bad++;
            continue;
        }
        memcpy(tok, text + s, e - s);
        tok[e - s] = '\0';
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            void *p = realloc(ips, ncap * 16);
            if (!p) {
                free(ips);
                return -ENOMEM;
            }
            ips = p;
            cap = ncap;
        }
        if (relay_parse_ip(tok, ips[n]) != 0) {
            bad++;
            continue;
        }
        n++;
    }
    if (n > 1) {
        size_t w = 1;
        qsort(ips, n, 16, ip_cmp);
        for (i = 1; i < n; i++)
            if (memcmp(ips[i], ips[w - 1], 16) != 0)
                memmove(ips[w++], ips[i], 16);
        n = w;
    }
    *out = ips;
    *n_out = n;
    *bad_out = bad;
    return 0;
}

static int iplist_load(struct relay *r, struct relay_iplist *l,
                       const char *file, int force)
{
    char path[4096];
    struct stat st;
    char *text = NULL;
    uint8_t(*ips)[16] = NULL;
    size_t n = 0, bad = 0, got = 0;
    int fd = -1, ret;

    if (!r->data_dir || !r->data_dir[0])
        return 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", r->data_dir, file) >=
        sizeof(path))
        return -ENAMETOOLONG;
    if (stat(path, &st) != 0) {
        ret = -errno;
        if (ret != -ENOENT) {
            hd_warn(MOD, "%s: %s", path, strerror(errno));
            return ret;
        }
        if (l->present)
            hd_info(MOD, "%s removed: list cleared", path);
        free(l->ips);
        memset(l, 0, sizeof(*l));
        return 0;
    }
    if (!force && l->present && st.st_mtim.tv_sec == l->mtime.tv_sec &&
        st.st_mtim.tv_nsec == l->mtime.tv_nsec && st.st_size == l->size &&
        st.st_ino == l->ino)
        return 0;
    if (st.st_size > MAX_LIST_FILE) {
        hd_warn(MOD, "%s: larger than %d bytes, not loaded", path,
                MAX_LIST_FILE);
        ret = HD_ETOOBIG;
        goto out;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        ret = -errno;
        hd_warn(MOD, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!(text = malloc((size_t)st.st_size + 1))) {
        ret = -ENOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, text + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            ret = -errno;
            hd_warn(MOD, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    if ((ret = iplist_parse(text, got, &ips, &n, &bad)) != 0)
        goto out;
    free(l->ips);
    l->ips = ips;
    ips = NULL;
    l->n = n;
    l->present = 1;
    l->mtime = st.st_mtim;
    l->size = st.st_size;
    l->ino = st.st_ino;
    if (bad)
        hd_warn(MOD, "%s: %zu addresses, %zu unreadable lines ignored", path, n,
                bad);
    else
        hd_info(MOD, "%s: %zu addresses", path, n);
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    free(text);
    free(ips);
    return ret;
}

int relay_lists_load(struct relay *r, int force)
{
    int r1 = iplist_load(r, &r->black, "blacklist.txt", force);
    int r2 = iplist_load(r, &r->block, "blocklist.txt", force);

    return r1 ? r1 : r2;
}

void relay_list_timer_cb(uv_timer_t *t)
{
    relay_lists_load(t->data, 0);
}

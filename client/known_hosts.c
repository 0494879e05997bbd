/*
 * known_hosts: pinning host keys on first use.  See known_hosts.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/known_hosts.h"
#include "log.h"

/* mkdir -p of the directory holding path. */
static int make_parent(const char *path)
{
    char dir[4096], *p;

    if (strlen(path) >= sizeof(dir))
        return -ENAMETOOLONG;
    strcpy(dir, path);
    if ((p = strrchr(dir, '/')) == NULL || p == dir)
        return 0;
    *p = '\0';
    for (p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int append_line(const char *path, const char *line)
{
    int fd, r = 0;
    size_t n = strlen(line);

    if ((r = make_parent(path)) != 0)
        return r;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (write(fd, line, n) != (ssize_t)n)
        r = -EIO;
    if (close(fd) != 0 && r == 0)
        r = -errno;
    return r;
}

/* The line for addr in path: KH_MATCH (key b64), KH_CHANGED (another
 * key), KH_NEW (none), or -errno. */
static int lookup(const char *path, const char *addr, const char *b64)
{
    char line[1024], a[512], i[256], k[256];
    FILE *f;
    int lineno = 0, r = KH_NEW;

    if ((f = fopen(path, "r")) == NULL)
        return errno == ENOENT ? KH_NEW : -errno;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "%511s %255s %255s", a, i, k) != 3) {
            hd_warn("known_hosts", "%s:%d: malformed line skipped", path,
                    lineno);
            continue;
        }
        if (strcmp(a, addr) != 0)
            continue;
        r = strcmp(k, b64) == 0 ? KH_MATCH : KH_CHANGED;
        break;
    }
    fclose(f);
    return r;
}

int kh_find(const char *path, const char *addr,
            const uint8_t pk[HD_SIGN_PK_BYTES])
{
    char b64[HD_BASE64_ENCODED_LEN(HD_SIGN_PK_BYTES)];

    hd_base64_encode(pk, HD_SIGN_PK_BYTES, b64, sizeof(b64));
    return lookup(path, addr, b64);
}

int kh_check(const char *path, const char *addr, const char *id,
             const uint8_t pk[HD_SIGN_PK_BYTES])
{
    char b64[HD_BASE64_ENCODED_LEN(HD_SIGN_PK_BYTES)];
    char line[1024], safe_id[64];
    size_t j;
    int r;

    /* the ID comes from the peer: keep the file one line per host */
    for (j = 0; j + 1 < sizeof(safe_id) && id[j]; j++)
        safe_id[j] = (id[j] >= '0' && id[j] <= '9') ||
                             (id[j] >= 'a' && id[j] <= 'z') ||
                             (id[j] >= 'A' && id[j] <= 'Z') || id[j] == '-' ||
                             id[j] == '_'
                         ? id[j]
                         : '?';
    safe_id[j] = '\0';
    if (j == 0)
        strcpy(safe_id, "-");
    hd_base64_encode(pk, HD_SIGN_PK_BYTES, b64, sizeof(b64));
    if ((r = lookup(path, addr, b64)) == KH_NEW) {
        int w;

        snprintf(line, sizeof(line), "%s %s %s\n", addr, safe_id, b64);
        if ((w = append_line(path, line)) != 0)
            return w;
    }
    return r;
}

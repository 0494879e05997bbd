/*
 * File lists, safe names and blocks for file transfer.  See files.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "files.h"
#include "os.h"
#include "squeeze.h"

static int add(struct hd_file_list *l, const char *name, const struct stat *st)
{
    struct hd_file *f;

    if (l->n == HD_FILES_MAX)
        return -E2BIG;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;

        if ((f = realloc(l->v, cap * sizeof(*f))) == NULL)
            return -ENOMEM;
        l->v = f;
        l->cap = cap;
    }
    f = &l->v[l->n];
    if ((f->name = strdup(name)) == NULL)
        return -ENOMEM;
    f->size = (uint64_t)st->st_size;
    f->mtime = (uint64_t)st->st_mtime;
    l->n++;
    l->total += f->size;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Directory dir (its relative name rel) into l. */
static int scan_dir(const char *dir, const char *rel, int hidden, int depth,
                    struct hd_file_list *l)
{
    DIR *d;
    struct dirent *e;
    char **names = NULL, path[4096], sub[4096];
    size_t n = 0, cap = 0, i;
    int r = 0;

    if (depth > HD_FILES_DEPTH)
        return 0;
    if ((d = opendir(dir)) == NULL)
        return depth == 0 ? -errno : 0; /* below the top: skip it */
    while ((e = readdir(d)) != NULL) {
        char **nn;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            (!hidden && e->d_name[0] == '.'))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            if ((nn = realloc(names, cap * sizeof(*names))) == NULL) {
                r = -ENOMEM;
                break;
            }
            names = nn;
        }
        if ((names[n] = strdup(e->d_name)) == NULL) {
            r = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (r == 0)
        qsort(names, n, sizeof(*names), by_name);
    for (i = 0; i < n && r == 0; i++) {
        struct stat st;

        if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >=
                (int)sizeof(path) ||
            snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "",
                     names[i]) >= (int)sizeof(sub))
            continue;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            r = scan_dir(path, sub, hidden, depth + 1, l);
        else if (S_ISREG(st.st_mode) ||
                 (S_ISLNK(st.st_mode) && stat(path, &st) == 0 &&
                  S_ISREG(st.st_mode)))
            r = add(l, sub, &st);
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return r;
}

int hd_files_scan(const char *path, int hidden, struct hd_file_list *out)
{
    struct stat st;
    int r;

    memset(out, 0, sizeof(*out));
    if (stat(path, &st) != 0)
        return -errno;
    if (S_ISREG(st.st_mode))
        r = add(out, "", &st);
    else if (S_ISDIR(st.st_mode))
        r = scan_dir(path, "", hidden, 0, out);
    else
        r = -ENOENT;
    if (r != 0)
        hd_files_free(out);
    return r;
}

void hd_files_free(struct hd_file_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int hd_files_join(const char *base, const char *rel, char *out, size_t cap)
{
    const char *p = rel;
    int n;

    if (rel[0] == '/' || strchr(rel, '\\') != NULL)
        return -EINVAL;
    while (*p) { /* every component: not empty, not . or .. */
        size_t len = strcspn(p, "/");

        if (len == 0 || (len == 1 && p[0] == '.') ||
            (len == 2 && p[0] == '.' && p[1] == '.'))
            return -EINVAL;
        p += len;
        if (*p == '/')
            p++;
        if (*p == '\0' && p[-1] == '/')
            return -EINVAL; /* a trailing slash */
    }
    n = rel[0] ? snprintf(out, cap, "%s/%s", base, rel)
               : snprintf(out, cap, "%s", base);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int hd_files_mkparents(const char *path)
{
    char tmp[4096], *p;
    int r;

    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    for (p = tmp + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if ((r = os_mkdir(tmp, 0755)) != 0 && r != -EEXIST)
            return r;
        *p = '/';
    }
    return 0;
}

int hd_files_create_part(const char *base, const char *rel, const char *part,
                         uint64_t size, uint64_t mtime, uint64_t *resume)
{
    char dir[4096];
    struct stat st;
    const char *p;
    int fd, r;

    /* the destination itself: the user's choice (links there are fine) */
    if (snprintf(dir, sizeof(dir), "%s/", base) >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    if ((r = hd_files_mkparents(rel[0] ? dir : part)) != 0)
        return r;
    /* below it, each directory on the way to rel: made, or a real one */
    for (p = rel; (p = strchr(p, '/')) != NULL; p++) {
        if (snprintf(dir, sizeof(dir), "%s/%.*s", base, (int)(p - rel), rel) >=
            (int)sizeof(dir))
            return -ENAMETOOLONG;
        if ((r = os_mkdir(dir, 0755)) != 0) {
            if (r != -EEXIST || lstat(dir, &st) != 0)
                return r == -EEXIST ? -errno : r;
            if (!S_ISDIR(st.st_mode))
                return S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
        }
    }
    /* the part an interrupted transfer of this very file left
     * (hd_files_keep_part marked it with the file's time): continue after
     * its last whole block */
    if (resume != NULL && mtime != 0 &&
        (fd = open(part, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
        uint64_t at = 0;

        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            (uint64_t)st.st_mtime == mtime)
            at = (uint64_t)st.st_size / HD_FILE_BLOCK * HD_FILE_BLOCK;
        if (at > 0 && at < size && ftruncate(fd, (off_t)at) == 0 &&
            lseek(fd, (off_t)at, SEEK_SET) == (off_t)at) {
            *resume = at;
            return fd;
        }
        close(fd);
    }
    if (resume != NULL)
        *resume = 0;
    fd =
        open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    return fd >= 0 ? fd : -errno;
}

int hd_files_keep_part(int fd, const char *part, uint64_t written,
                       uint64_t mtime)
{
    int kept = written >= HD_FILE_BLOCK && mtime != 0 &&
               os_set_fd_mtime(fd, mtime) == 0;

    close(fd);
    if (!kept)
        unlink(part);
    return kept;
}

int hd_files_open_send(const char *path, uint64_t *size, uint64_t *mtime)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), e;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        e = S_ISREG(st.st_mode) ? errno : EINVAL;
        close(fd);
        return -e;
    }
    *size = (uint64_t)st.st_size;
    *mtime = (uint64_t)st.st_mtime;
    return fd;
}

int hd_file_block_pack(const uint8_t *data, size_t n, Hbb__FileTransferBlock *b,
                       uint8_t **buf)
{
    size_t z;
    int r;
    uint8_t *out;

    hbb__file_transfer_block__init(b);
    *buf = NULL;
    b->data.data = (uint8_t *)data;
    b->data.len = n;
    if (n < 256)
        return 0;
    /* level 1: files can be large; under 1/16 saved is not worth it */
    if ((r = hd_squeeze(data, n, 1, n - n / 16, &out, &z)) <= 0)
        return r;
    b->compressed = 1;
    b->data.data = out;
    b->data.len = z;
    *buf = out;
    return 0;
}

int hd_file_block_unpack(const Hbb__FileTransferBlock *b, uint8_t *out,
                         size_t *n)
{
    unsigned long long sz;
    size_t got;

    *n = 0;
    if (!b->compressed) {
        if (b->data.len > HD_FILE_BLOCK)
            return -EMSGSIZE;
        if (b->data.len > 0)
            memcpy(out, b->data.data, b->data.len);
        *n = b->data.len;
        return 0;
    }
    sz = ZSTD_getFrameContentSize(b->data.data, b->data.len);
    if (sz == ZSTD_CONTENTSIZE_ERROR)
        return -EBADMSG;
    if (sz != ZSTD_CONTENTSIZE_UNKNOWN && sz > HD_FILE_BLOCK)
        return -EMSGSIZE;
    got = ZSTD_decompress(out, HD_FILE_BLOCK, b->data.data, b->data.len);
    if (ZSTD_isError(got))
        return ZSTD_getErrorCode(got) == ZSTD_error_dstSize_tooSmall ? -EMSGSIZE
                                                                     : -EBADMSG;
    *n = got;
    return 0;
}

int hd_files_readdir(const char *path, int hidden, Hbb__FileDirectory *dir)
{
    DIR *d;
    struct dirent *e;
    Hbb__FileEntry **v = NULL, **nv;
    size_t n = 0, cap = 0;
    char p[4096];

    hbb__file_directory__init(dir);
    if ((d = opendir(path)) == NULL)
        return -errno;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        Hbb__FileEntry *f;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            (!hidden && e->d_name[0] == '.') || n >= HD_FILES_MAX)
            continue;
        if (snprintf(p, sizeof(p), "%s/%s", path, e->d_name) >=
                (int)sizeof(p) ||
            lstat(p, &st) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
                goto nomem;
            v = nv;
        }
        if ((f = calloc(1, sizeof(*f))) == NULL)
            goto nomem;
        hbb__file_entry__init(f);
        if ((f->name = strdup(e->d_name)) == NULL) {
            free(f);
            goto nomem;
        }
        if (S_ISLNK(st.st_mode)) {
            struct stat t;

            f->entry_type = stat(p, &t) == 0 && S_ISDIR(t.st_mode)
                                ? HBB__FILE_TYPE__DirLink
                                : HBB__FILE_TYPE__FileLink;
        } else {
            f->entry_type = S_ISDIR(st.st_mode) ? HBB__FILE_TYPE__Dir
                                                : HBB__FILE_TYPE__File;
        }
        f->is_hidden = e->d_name[0] == '.';
        f->size = (uint64_t)st.st_size;
        f->modified_time = (uint64_t)st.st_mtime;
        v[n++] = f;
    }
    closedir(d);
    dir->entries = v;
    dir->n_entries = n;
    if ((dir->path = strdup(path)) != NULL)
        return 0;
    hd_files_readdir_free(dir);
    return -ENOMEM;
nomem:
    closedir(d);
    dir->entries = v;
    dir->n_entries = n;
    hd_files_readdir_free(dir);
    return -ENOMEM;
}

void hd_files_readdir_free(Hbb__FileDirectory *dir)
{
    for (size_t i = 0; i < dir->n_entries; i++) {
        free(dir->entries[i]->name);
        free(dir->entries[i]);
    }
    free(dir->entries);
    free(dir->path);
    dir->entries = NULL;
    dir->n_entries = 0;
    dir->path = NULL;
}

int hd_files_part(const char *final, char *part, size_t cap)
{
    int n = snprintf(part, cap, "%s" HD_FILES_PART, final);

    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int hd_files_same(const char *path, uint64_t size, uint64_t mtime)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           (uint64_t)st.st_size == size && (uint64_t)st.st_mtime == mtime;
}

int hd_files_commit(const char *part, const char *final, uint64_t mtime)
{
    if (rename(part, final) != 0)
        return -errno;
    if (mtime > 0)
        os_set_mtime(final, mtime);
    return 0;
}

int hd_files_write(int fd, const uint8_t *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, p + off, n - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        off += (size_t)w;
    }
    return 0;
}

long hd_files_next_block(int fd, uint64_t *left, uint8_t *buf,
                         Hbb__FileTransferBlock *b, uint8_t **zbuf)
{
    size_t want = *left < HD_FILE_BLOCK ? (size_t)*left : HD_FILE_BLOCK;
    ssize_t n = 0;

    *zbuf = NULL;
    if (want == 0)
        return 0;
    do
        n = read(fd, buf, want);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    *left -= (uint64_t)n;
    if (hd_file_block_pack(buf, (size_t)n, b, zbuf) != 0)
        return -ENOMEM;
    return (long)n;
}

void hd_files_confirm(Hbb__FileAction *fa,
                      Hbb__FileTransferSendConfirmRequest *c, int id,
                      int file_num, int skip, uint64_t from)
{
    hbb__file_action__init(fa);
    hbb__file_transfer_send_confirm_request__init(c);
    c->id = id;
    c->file_num = file_num;
    if (skip) {
        c->union_case = HBB__FILE_TRANSFER_SEND_CONFIRM_REQUEST__UNION_SKIP;
        c->skip = 1;
    } else {
        c->union_case =
            HBB__FILE_TRANSFER_SEND_CONFIRM_REQUEST__UNION_OFFSET_BLK;
        c->offset_blk = (uint32_t)(from / HD_FILE_BLOCK);
    }
    fa->union_case = HBB__FILE_ACTION__UNION_SEND_CONFIRM;
    fa->send_confirm = c;
}

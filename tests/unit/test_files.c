/*
 * Unit tests for common/files: the file list under a path (order, hidden
 * names, symbolic links, a single file), names a peer may send and those
 * that would leave the directory, parent directories, and transfer blocks
 * (compressed when it pays, bounded when unpacked, broken ones refused).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "files.h"
#include "tests/harness.h"

static char tmp[256];

static void put(const char *rel, const char *text)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    hd_files_mkparents(p);
    f = fopen(p, "w");
    HT_CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_scan(void)
{
    struct hd_file_list l;
    char p[512];

    put("b.txt", "bb");
    put("a/z.txt", "zzz");
    put("a/.hidden", "h");
    put("a/deep/x", "");
    put(".dot/y", "y");
    snprintf(p, sizeof(p), "%s/a/loop", tmp);
    HT_EQ_INT(symlink(tmp, p), 0); /* a link back up: not followed */
    HT_EQ_INT(hd_files_scan(tmp, 0, &l), 0);
    HT_EQ_INT((int)l.n, 3);
    if (l.n == 3) {
        HT_EQ_STR(l.v[0].name, "a/deep/x");
        HT_EQ_STR(l.v[1].name, "a/z.txt");
        HT_EQ_STR(l.v[2].name, "b.txt");
        HT_EQ_INT((int)l.v[1].size, 3);
    }
    HT_EQ_INT((int)l.total, 5);
    hd_files_free(&l);
    HT_EQ_INT(hd_files_scan(tmp, 1, &l), 0);
    HT_EQ_INT((int)l.n, 5); /* .dot/y and a/.hidden too */
    hd_files_free(&l);
    /* a single file: one entry named "" */
    snprintf(p, sizeof(p), "%s/b.txt", tmp);
    HT_EQ_INT(hd_files_scan(p, 0, &l), 0);
    HT_EQ_INT((int)l.n, 1);
    if (l.n == 1)
        HT_EQ_STR(l.v[0].name, "");
    hd_files_free(&l);
    snprintf(p, sizeof(p), "%s/none", tmp);
    HT_EQ_INT(hd_files_scan(p, 0, &l), -ENOENT);
}

static void test_join(void)
{
    char out[64];

    HT_EQ_INT(hd_files_join("/d", "a/b.txt", out, sizeof(out)), 0);
    HT_EQ_STR(out, "/d/a/b.txt");
    HT_EQ_INT(hd_files_join("/d", "", out, sizeof(out)), 0);
    HT_EQ_STR(out, "/d");
    HT_EQ_INT(hd_files_join("/d", "..a/b..", out, sizeof(out)), 0);
    HT_EQ_INT(hd_files_join("/d", "with space.txt", out, sizeof(out)), 0);
    /* every way out of /d is refused */
    const char *bad[] = { "..",   "../x", "a/../../x", "a/..",
                          "/etc", "a//b", "./a",       "a/.",
                          "a/",   "a\\b", "..\\..\\x" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = hd_files_join("/d", bad[i], out, sizeof(out));

        if (r != -EINVAL)
            printf("# \"%s\" gave %d\n", bad[i], r);
        HT_EQ_INT(r, -EINVAL);
    }
    HT_EQ_INT(hd_files_join("/d",
                            "0123456789012345678901234567890123456789"
                            "0123456789012345678901234567890123456789",
                            out, sizeof(out)),
              -ENAMETOOLONG);
}

/*
 * Creating a file a peer names: directories are made below the
 * destination, but a symbolic link already there is not followed (it
 * could lead anywhere), nor is a link sitting where the part file goes.
 */
static void test_create_part(void)
{
    char base[300], out[400], part[420], link[400], target[300], p[500];
    struct stat st;
    int fd;

    snprintf(base, sizeof(base), "%s/dest", tmp);
    snprintf(target, sizeof(target), "%s/elsewhere", tmp);
    HT_EQ_INT(mkdir(target, 0755), 0);
    /* a fresh tree: made */
    HT_EQ_INT(hd_files_join(base, "a/b/c.txt", out, sizeof(out)), 0);
    hd_files_part(out, part, sizeof(part));
    fd = hd_files_create_part(base, "a/b/c.txt", part, 0, 0, NULL);
    HT_CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    HT_EQ_INT(stat(part, &st), 0);
    /* a link inside the destination: refused, nothing lands elsewhere */
    snprintf(link, sizeof(link), "%s/a/link", base);
    HT_EQ_INT(symlink(target, link), 0);
    hd_files_join(base, "a/link/evil.txt", out, sizeof(out));
    hd_files_part(out, part, sizeof(part));
    HT_EQ_INT(hd_files_create_part(base, "a/link/evil.txt", part, 0, 0, NULL),
              -ELOOP);
    snprintf(p, sizeof(p), "%s/evil.txt" HD_FILES_PART, target);
    HT_CHECK(access(p, F_OK) != 0);
    /* a link where the part file goes: not followed */
    snprintf(p, sizeof(p), "%s/x.txt" HD_FILES_PART, base);
    snprintf(link, sizeof(link), "%s/victim", target);
    HT_EQ_INT(symlink(link, p), 0);
    HT_CHECK(hd_files_create_part(base, "x.txt", p, 0, 0, NULL) < 0);
    HT_CHECK(access(link, F_OK) != 0);
}

/*
 * An interrupted transfer's part: kept with the file's time when a whole
 * block was written, then continued after its last whole block, but only
 * for a file of that time and a greater size.
 */
static void test_resume_part(void)
{
    static uint8_t data[HD_FILE_BLOCK * 5 / 2];
    char base[300], part[420];
    uint64_t at = 7;
    struct stat st;
    int fd;

    snprintf(base, sizeof(base), "%s/resume", tmp);
    snprintf(part, sizeof(part), "%s/f" HD_FILES_PART, base);
    fd = hd_files_create_part(base, "f", part, sizeof(data), 1234567, &at);
    HT_CHECK(fd >= 0);
    HT_EQ_INT((int)at, 0);
    if (fd < 0)
        return;
    HT_EQ_INT(hd_files_write(fd, data, sizeof(data)), 0);
    HT_EQ_INT(hd_files_keep_part(fd, part, sizeof(data), 1234567), 1);
    HT_EQ_INT(stat(part, &st), 0);
    HT_EQ_INT((int)st.st_mtime, 1234567);
    /* another version of the file (other time): a new part */
    fd =
        hd_files_create_part(base, "f", part, 10 * HD_FILE_BLOCK, 1234568, &at);
    HT_CHECK(fd >= 0 && at == 0);
    if (fd >= 0) {
        HT_EQ_INT(fstat(fd, &st), 0);
        HT_EQ_INT((int)st.st_size, 0);
        HT_EQ_INT(hd_files_write(fd, data, sizeof(data)), 0);
        HT_EQ_INT(hd_files_keep_part(fd, part, sizeof(data), 1234567), 1);
    }
    /* the same: continued after its two whole blocks */
    fd =
        hd_files_create_part(base, "f", part, 10 * HD_FILE_BLOCK, 1234567, &at);
    HT_CHECK(fd >= 0);
    HT_EQ_INT((int)at, 2 * HD_FILE_BLOCK);
    if (fd >= 0) {
        HT_EQ_INT((int)lseek(fd, 0, SEEK_CUR), 2 * HD_FILE_BLOCK);
        HT_EQ_INT(fstat(fd, &st), 0);
        HT_EQ_INT((int)st.st_size, 2 * HD_FILE_BLOCK);
        /* less than a block written: nothing worth keeping */
        HT_EQ_INT(hd_files_keep_part(fd, part, HD_FILE_BLOCK - 1, 1234567), 0);
    }
    HT_CHECK(access(part, F_OK) != 0);
    /* a part as long as the file (or longer) is not a beginning of it */
    fd = hd_files_create_part(base, "f", part, 2 * HD_FILE_BLOCK, 1234567, &at);
    if (fd >= 0) {
        HT_EQ_INT(hd_files_write(fd, data, 2 * HD_FILE_BLOCK), 0);
        HT_EQ_INT(hd_files_keep_part(fd, part, 2 * HD_FILE_BLOCK, 1234567), 1);
    }
    fd = hd_files_create_part(base, "f", part, 2 * HD_FILE_BLOCK, 1234567, &at);
    HT_CHECK(fd >= 0 && at == 0);
    if (fd >= 0)
        close(fd);
}

static void test_blocks(void)
{
    static uint8_t data[HD_FILE_BLOCK], back[HD_FILE_BLOCK];
    Hbb__FileTransferBlock b;
    uint8_t *buf, junk[] = { 0x28, 0xb5, 0x2f, 0xfd, 9, 9, 9, 9 };
    size_t n;
    uint32_t x = 7;

    /* text compresses */
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)("0123456789\n"[i % 11]);
    HT_EQ_INT(hd_file_block_pack(data, sizeof(data), &b, &buf), 0);
    HT_EQ_INT(b.compressed, 1);
    HT_CHECK(b.data.len < sizeof(data) / 4);
    HT_EQ_INT(hd_file_block_unpack(&b, back, &n), 0);
    HT_EQ_INT((int)n, (int)sizeof(data));
    HT_CHECK(memcmp(back, data, n) == 0);
    free(buf);
    /* random bytes go as they are */
    for (size_t i = 0; i < sizeof(data); i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    HT_EQ_INT(hd_file_block_pack(data, sizeof(data), &b, &buf), 0);
    HT_EQ_INT(b.compressed, 0);
    HT_CHECK(buf == NULL);
    HT_EQ_INT(hd_file_block_unpack(&b, back, &n), 0);
    HT_CHECK(n == sizeof(data) && memcmp(back, data, n) == 0);
    /* too much data, plain or inflated */
    {
        static uint8_t big[HD_FILE_BLOCK + 1], zb[4096];
        size_t z = ZSTD_compress(zb, sizeof(zb), big, sizeof(big), 1);

        hbb__file_transfer_block__init(&b);
        b.data.data = big;
        b.data.len = sizeof(big);
        HT_EQ_INT(hd_file_block_unpack(&b, back, &n), -EMSGSIZE);
        HT_CHECK(!ZSTD_isError(z));
        b.compressed = 1;
        b.data.data = zb;
        b.data.len = z;
        HT_EQ_INT(hd_file_block_unpack(&b, back, &n), -EMSGSIZE);
    }
    b.data.data = junk;
    b.data.len = sizeof(junk);
    HT_EQ_INT(hd_file_block_unpack(&b, back, &n), -EBADMSG);
}

static void test_readdir(void)
{
    Hbb__FileDirectory d;
    int dirs = 0, files = 0;

    HT_EQ_INT(hd_files_readdir(tmp, 0, &d), 0);
    for (size_t i = 0; i < d.n_entries; i++) {
        dirs += d.entries[i]->entry_type == HBB__FILE_TYPE__Dir;
        files += d.entries[i]->entry_type == HBB__FILE_TYPE__File;
    }
    HT_EQ_INT(dirs, 1);  /* a (not .dot) */
    HT_EQ_INT(files, 1); /* b.txt */
    hd_files_readdir_free(&d);
    HT_EQ_INT(hd_files_readdir("/nonexistent-hd", 0, &d), -ENOENT);
}

int main(void)
{
    char cmd[300];
    int r;

    ht_init("files");
    snprintf(tmp, sizeof(tmp), "/tmp/hd-files-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return 1;
    HT_RUN(test_scan);
    HT_RUN(test_join);
    HT_RUN(test_readdir);
    HT_RUN(test_create_part);
    HT_RUN(test_resume_part);
    HT_RUN(test_blocks);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    r = system(cmd);
    (void)r;
    return ht_finish();
}

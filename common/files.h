/*
 * File transfer helpers shared by host and viewer (PROTOCOL.md "Files"):
 * the list of files under a path, safe joining of the relative names a
 * peer sends, and the blocks files travel in (FileTransferBlock, zstd
 * when that makes them smaller, as RustDesk does).
 *
 * Names from the network are never trusted: hd_files_join refuses an
 * absolute name, an empty or "." or ".." component, a backslash and a NUL,
 * so a peer cannot write or read outside the directory it was given.
 * Blocks are bounded (HD_FILE_BLOCK bytes of data once unpacked).
 *
 * Any thread; the functions share no state.
 */
#ifndef HD_FILES_H
#define HD_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "message.pb-c.h"

/* Bytes of file data per block. */
#define HD_FILE_BLOCK (128u * 1024)
/* At most this many files in one transfer (a home directory by mistake). */
#define HD_FILES_MAX 100000
/* At most this deep below the path given. */
#define HD_FILES_DEPTH 64

struct hd_file {
    char *name;     /* relative to the path scanned, '/' between parts;
                     * "" when the path is itself a file */
    uint64_t size;  /* bytes */
    uint64_t mtime; /* seconds since the epoch */
};

struct hd_file_list {
    struct hd_file *v;
    size_t n, cap;
    uint64_t total; /* bytes in all */
};

/*
 * The regular files under path (recursively, in a stable order; symbolic
 * links to directories are not followed), or path itself when it is a
 * file.  Hidden names (leading '.') only with hidden.  Returns 0, -ENOENT,
 * -EACCES (the errno of the path itself; unreadable entries below are
 * skipped), -E2BIG past HD_FILES_MAX files, -ENOMEM.
 */
int hd_files_scan(const char *path, int hidden, struct hd_file_list *out);

void hd_files_free(struct hd_file_list *l);

/*
 * base + "/" + rel into out (rel "" gives base).  Returns 0, -EINVAL for
 * a rel that could leave base (see above), -ENAMETOOLONG.
 */
int hd_files_join(const char *base, const char *rel, char *out, size_t cap);

/* Create the directories leading to path (not path itself).  0 or -errno. */
int hd_files_mkparents(const char *path);

/*
 * For a file a peer names (rel, already accepted by hd_files_join) under
 * base: create the directories below base that lead to it, refusing to go
 * through a symbolic link that is already there (-ELOOP: a link inside the
 * destination would take the file elsewhere), then open final's part file
 * for writing, not following a link either.  part: hd_files_part(final).
 * With resume (else NULL): a part that hd_files_keep_part kept for a file
 * of this mtime (the digest's; 0 never matches) and shorter than size is
 * continued: cut to its last whole block, *resume = its length (a multiple
 * of HD_FILE_BLOCK, for send_confirm's offset_blk), the descriptor at its
 * end; otherwise a new part, *resume = 0.
 * Returns the descriptor or -errno.
 */
int hd_files_create_part(const char *base, const char *rel, const char *part,
                         uint64_t size, uint64_t mtime, uint64_t *resume);

/*
 * A transfer broke off (the peer went away, the user stopped it) while
 * part was being written through fd: with at least one whole block written
 * and a known mtime (the file's, from its digest) the part is kept, marked
 * with that mtime, for hd_files_create_part to resume; otherwise removed.
 * Closes fd.  Returns 1 when kept, else 0.
 */
int hd_files_keep_part(int fd, const char *part, uint64_t written,
                       uint64_t mtime);

/*
 * Open a file to send: a regular file only (not a FIFO or device that
 * appeared since the scan, which would block), without blocking.
 * *size and *mtime from fstat.  Returns the descriptor or -errno.
 */
int hd_files_open_send(const char *path, uint64_t *size, uint64_t *mtime);

/*
 * Fill b (initialised here) with data[0..n) (n <= HD_FILE_BLOCK):
 * compressed into *buf (malloc'd, free it after packing) when zstd makes it
 * smaller, else pointing at data (*buf NULL).  0 or -ENOMEM.
 */
int hd_file_block_pack(const uint8_t *data, size_t n, Hbb__FileTransferBlock *b,
                       uint8_t **buf);

/*
 * The data of b into out (HD_FILE_BLOCK bytes of room): *n bytes.  Returns
 * 0, -EMSGSIZE past HD_FILE_BLOCK, -EBADMSG for a broken zstd frame.
 */
int hd_file_block_unpack(const Hbb__FileTransferBlock *b, uint8_t *out,
                         size_t *n);

/* A file is written to its name + this suffix until complete. */
#define HD_FILES_PART ".homedesk-part"

/* final + HD_FILES_PART into part.  0 or -ENAMETOOLONG. */
int hd_files_part(const char *final, char *part, size_t cap);

/* Is path a regular file of that size and modification time? */
int hd_files_same(const char *path, uint64_t size, uint64_t mtime);

/* The complete part file becomes final, with mtime (0: now).  0/-errno. */
int hd_files_commit(const char *part, const char *final, uint64_t mtime);

/* Write all n bytes.  0 or -errno. */
int hd_files_write(int fd, const uint8_t *p, size_t n);

/*
 * Read the next block of fd, at most *left bytes (what was announced of
 * the file: a file that grows while it is sent is cut there), into buf
 * (HD_FILE_BLOCK bytes) and fill b like hd_file_block_pack (free *zbuf
 * after packing).  Returns the bytes read, taken off *left (0 at the end
 * of the file or of what was announced), or -errno.
 */
long hd_files_next_block(int fd, uint64_t *left, uint8_t *buf,
                         Hbb__FileTransferBlock *b, uint8_t **zbuf);

/*
 * Fill fa and c (initialised here): the receiver's answer to a digest,
 * skip file_num (it has it) or send it from byte from (a multiple of
 * HD_FILE_BLOCK: 0, or what hd_files_create_part resumes at).
 */
void hd_files_confirm(Hbb__FileAction *fa,
                      Hbb__FileTransferSendConfirmRequest *c, int id,
                      int file_num, int skip, uint64_t from);

/* The entries of one directory (not recursive; directories included). */
int hd_files_readdir(const char *path, int hidden, Hbb__FileDirectory *dir);

/* Free what hd_files_readdir filled in (not dir itself). */
void hd_files_readdir_free(Hbb__FileDirectory *dir);

#endif

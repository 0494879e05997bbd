/*
 * The peer store: registered IDs and their keys in SQLite, in the very
 * file and schema hbbs uses (`db_v2.sqlite3`, table `peer` WITHOUT ROWID,
 * see PROTOCOL.md section 4), so an existing hbbs data directory moves to
 * homedesk with every ID and key intact, and back.
 *
 * Invariants: nothing stored is lost.  Every write is one autocommit
 * statement in WAL mode with synchronous=FULL (the sqlx default hbbs runs
 * with), and a write that fails is reported to the caller (negative return
 * and one log line), never dropped silently.  Nothing here exits or
 * aborts.  Rows are never deleted by this module.
 *
 * Loading: the rendezvous server looks peers up lazily, like hbbs: first
 * in its in-memory table, then with db_get_peer() on a miss, so start-up
 * costs nothing however large the table.  db_for_each_peer() exists for
 * the admin side (counts, listing) and for a server that prefers to warm
 * its table at start.
 *
 * Threads: a struct db belongs to one thread (the libuv loop thread); the
 * calls block on disk I/O (small, indexed statements) and wait up to
 * DB_BUSY_TIMEOUT_MS when another process holds the write lock.
 */
#ifndef HD_SERVER_DB_H
#define HD_SERVER_DB_H

#include <stddef.h>
#include <stdint.h>

#define DB_FILE_NAME       "db_v2.sqlite3"
#define DB_BUSY_TIMEOUT_MS 5000
#define DB_GUID_LEN        16  /* random UUIDv4 bytes, as hbbs */
#define DB_ID_MAX          100 /* varchar(100) in the schema */
#define DB_UUID_MAX        256 /* RegisterPk.uuid bytes kept */
#define DB_PK_MAX          256 /* RegisterPk.pk bytes kept (32 in practice) */
#define DB_IP_MAX          64  /* info.ip text, with a NUL */
#define DB_PATH_MAX        4096

struct db;

/* One row of `peer`, as the rendezvous server needs it. */
struct db_peer {
    uint8_t guid[DB_GUID_LEN];
    char id[DB_ID_MAX + 1];
    uint8_t uuid[DB_UUID_MAX];
    size_t uuid_len;
    uint8_t pk[DB_PK_MAX];
    size_t pk_len;
    char ip[DB_IP_MAX]; /* "ip" of the info JSON, "" when absent */
};

/*
 * Turn a DB_URL value into a file path the way hbbs (sqlx) reads it: a
 * leading "sqlite://" or "sqlite:" is removed, anything from the first '?'
 * on (e.g. "?mode=rwc") is dropped, %XX escapes are decoded.  A plain path
 * passes unchanged.  Returns 0, or HD_ECONFIG for an empty or undecodable
 * value, or one that does not fit in cap bytes.  out is cleared on entry.
 */
int db_parse_url(const char *url, char *out, size_t cap);

/*
 * The database path to open: DB_URL from the environment when set and
 * non-empty (through db_parse_url; relative paths are relative to the
 * working directory, as with hbbs), else data_dir/db_v2.sqlite3.
 * Returns 0 or HD_ECONFIG.  out is cleared on entry.
 */
int db_path_from_env(const char *data_dir, char *out, size_t cap);

/*
 * Open (creating if needed) the database at path, switch it to WAL mode,
 * create the hbbs table and indexes when missing, prepare the statements
 * kept for the life of the db.  The file and its -wal/-shm are the
 * server user's only (0600; an existing store readable by others is
 * narrowed, with a log line): they hold every peer's uuid.  ":memory:"
 * opens a private in-memory db (tests).  Returns 0 and *out, or a negative
 * code after one log line: -EROFS when this user cannot write it (checked
 * here, not at the first write), -EIO when SQLite fails (unreadable file,
 * not a database, a `peer` table without the hbbs columns), -ENOMEM.
 * *out is NULL on failure.
 */
int db_open(const char *path, struct db **out);

/* Finalise the statements and close the file.  Accepts NULL. */
void db_close(struct db *db);

/*
 * Look up a peer by ID.  Returns 0 and fills *out, -ENOENT when no row
 * has that ID, -EIO on a SQLite error (logged), HD_ETOOBIG when a stored
 * field exceeds the limits above (logged; the row is left untouched).
 * *out is cleared on entry.
 */
int db_get_peer(struct db *db, const char *id, struct db_peer *out);

/*
 * Insert a new peer with a fresh random guid, written to guid_out (may be
 * NULL), and info {"ip":ip}.  id must be 1..DB_ID_MAX bytes; uuid_len and
 * pk_len at most DB_UUID_MAX/DB_PK_MAX.  Returns 0, -EEXIST when the ID is
 * already taken (unique index; logged), -EINVAL for out-of-range
 * arguments, -EIO on other SQLite errors (logged).
 */
int db_insert_peer(struct db *db, const char *id, const uint8_t *uuid,
                   size_t uuid_len, const uint8_t *pk, size_t pk_len,
                   const char *ip, uint8_t guid_out[DB_GUID_LEN]);

/*
 * hbbs's update_pk: set id, pk and info {"ip":ip} of the row with this
 * guid (the uuid and created_at stay).  Returns 0, -ENOENT when no row has
 * the guid (logged: the caller's memory and the file disagree), -EEXIST
 * when id belongs to another row, -EINVAL, -EIO.
 */
int db_update_pk(struct db *db, const uint8_t guid[DB_GUID_LEN], const char *id,
                 const uint8_t *pk, size_t pk_len, const char *ip);

/* Number of rows in `peer` into *out (cleared on entry).  0 or -EIO. */
int db_count_peers(struct db *db, int64_t *out);

/*
 * Call fn for every peer, in ID order.  fn returns 0 to go on, anything
 * else to stop; that value is then returned.  Rows whose fields exceed the
 * limits are logged and skipped.  fn may call db_get_peer, db_insert_peer
 * and db_update_pk but not db_for_each_peer.  Returns 0 when every row was
 * visited, fn's non-zero value, or -EIO.
 */
int db_for_each_peer(struct db *db,
                     int (*fn)(const struct db_peer *peer, void *ud), void *ud);

#endif

/*
 * The peer store on SQLite.  The schema and statements follow hbbs
 * (rustdesk-server src/database.rs) column for column; see db.h for the
 * invariants.  Each statement is prepared once at open and reset after
 * every use, so a failed call leaves no statement holding a lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "server/db.h"

#define MOD "db"

/* hbbs's statements, verbatim apart from layout. */
static const char schema_sql[] =
    "create table if not exists peer ("
    " guid blob primary key not null,"
    " id varchar(100) not null,"
    " uuid blob not null,"
    " pk blob not null,"
    " created_at datetime not null default(current_timestamp),"
    " user blob,"
    " status tinyint,"
    " note varchar(300),"
    " info text not null"
    ") without rowid;"
    "create unique index if not exists index_peer_id on peer (id);"
    "create index if not exists index_peer_user on peer (user);"
    "create index if not exists index_peer_created_at on peer (created_at);"
    "create index if not exists index_peer_status on peer (status);";

enum db_stmt { ST_GET, ST_INSERT, ST_UPDATE, ST_COUNT, ST_ALL, ST_N };

static const char *const stmt_sql[ST_N] = {
    [ST_GET] = "select guid, id, uuid, pk, info from peer where id = ?",
    [ST_INSERT] =
        "insert into peer(guid, id, uuid, pk, info) values(?,?,?,?,?)",
    [ST_UPDATE] = "update peer set id = ?, pk = ?, info = ? where guid = ?",
    [ST_COUNT] = "select count(*) from peer",
    [ST_ALL] = "select guid, id, uuid, pk, info from peer order by id",
};

struct db {
    sqlite3 *h;
    sqlite3_stmt *st[ST_N];
    int iterating; /* db_for_each_peer is running */
};

/* Map a SQLite result code to ours, logging one line. */
static int db_fail(struct db *db, const char *what, const char *id, int rc)
{
    hd_error(MOD, "%s%s%s: %s (%d)", what, id ? " " : "", id ? id : "",
             db && db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc),
             db && db->h ? sqlite3_extended_errcode(db->h) : rc);
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE ||
            rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return -EEXIST;
        return -EIO;
    default:
        return -EIO;
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int db_parse_url(const char *url, char *out, size_t cap)
{
    const char *p = url, *end;
    size_t n = 0;

    if (out != NULL && cap > 0)
        out[0] = '\0';
    if (url == NULL || out == NULL || cap == 0)
        return HD_ECONFIG;
    if (strncmp(p, "sqlite://", 9) == 0)
        p += 9;
    else if (strncmp(p, "sqlite:", 7) == 0)
        p += 7;
    end = strchr(p, '?');
    if (end == NULL)
        end = p + strlen(p);
    while (p < end) {
        int c = (unsigned char)*p++;

        if (c == '%') {
            int hi = p < end ? hexval(p[0]) : -1;
            int lo = p + 1 < end ? hexval(p[1]) : -1;

            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                goto bad;
            c = hi << 4 | lo;
            p += 2;
        }
        if (n + 1 >= cap)
            goto bad;
        out[n++] = (char)c;
    }
    if (n == 0)
        goto bad;
    out[n] = '\0';
    return 0;
bad:
    out[0] = '\0';
    hd_error(MOD, "DB_URL \"%s\" is not a usable SQLite path", url);
    return HD_ECONFIG;
}

int db_path_from_env(const char *data_dir, char *out, size_t cap)
{
    const char *url = getenv("DB_URL");
    int n;

    if (out != NULL && cap > 0)
        out[0] = '\0';
    if (url != NULL && url[0] != '\0')
        return db_parse_url(url, out, cap);
    if (out == NULL || cap == 0)
        return HD_ECONFIG;
    if (data_dir == NULL || data_dir[0] == '\0')
        data_dir = ".";
    n = snprintf(out, cap, "%s/%s", data_dir, DB_FILE_NAME);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        hd_error(MOD, "data directory path too long");
        return HD_ECONFIG;
    }
    return 0;
}

/* ---- info JSON: {"ip":"..."} ------------------------------------------ */

/* Append JSON for {"ip":ip} to out (cap bytes).  0 or -EINVAL. */
static int info_build(const char *ip, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (cap < 16)
        return -EINVAL;
    memcpy(out, "{\"ip\":\"", 7);
    n = 7;
    for (const unsigned char *p = (const unsigned char *)ip; *p; p++) {
        if (n + 8 >= cap)
            return -EINVAL;
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p < 0x20) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[*p >> 4];
            out[n + 5] = hex[*p & 15];
            n += 6;
        } else {
            out[n++] = (char)*p;
        }
    }
    memcpy(out + n, "\"}", 3);
    return 0;
}

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/*
 * Parse a JSON string at p (on the opening quote).  Decodes into out when
 * out is non-NULL (ASCII escapes only; anything else fails).  Returns the
 * position after the closing quote, or NULL.
 */
static const char *json_string(const char *p, char *out, size_t cap)
{
    size_t n = 0;

    if (*p++ != '"')
        return NULL;
    for (;;) {
        int c = (unsigned char)*p++;

        if (c == '\0' || c < 0x20)
            return NULL;
        if (c == '"')
            break;
        if (c == '\\') {
            switch (*p++) {
            case '"':
                c = '"';
                break;
            case '\\':
                c = '\\';
                break;
            case '/':
                c = '/';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                int v = 0;

                for (int i = 0; i < 4; i++) {
                    int h = hexval(p[i]);

                    if (h < 0)
                        return NULL;
                    v = v << 4 | h;
                }
                p += 4;
                if (out != NULL && (v == 0 || v > 0x7f))
                    return NULL;
                c = v;
                break;
            }
            default:
                return NULL;
            }
        }
        if (out != NULL) {
            if (n + 1 >= cap)
                return NULL;
            out[n++] = (char)c;
        }
    }
    if (out != NULL)
        out[n] = '\0';
    return p;
}

/* Skip one JSON value of any type.  Returns the position after it or NULL. */
static const char *json_skip(const char *p)
{
    int depth = 0;

    do {
        p = json_ws(p);
        if (*p == '"') {
            if ((p = json_string(p, NULL, 0)) == NULL)
                return NULL;
        } else if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            if (--depth < 0)
                return NULL;
            p++;
        } else if (*p == ',' || *p == ':') {
            if (depth == 0)
                return NULL;
            p++;
        } else if (*p == '\0') {
            return NULL;
        } else {
            while (*p != '\0' && strchr(",:{}[]\" \t\r\n", *p) == NULL)
                p++;
        }
    } while (depth > 0);
    return p;
}

/*
 * Read "ip" from an info object.  Like hbbs (serde default), anything
 * unexpected leaves ip empty rather than failing the row.
 */
static void info_parse(const char *json, char *ip, size_t cap)
{
    const char *p = json_ws(json);
    char key[16];

    ip[0] = '\0';
    if (*p++ != '{')
        return;
    p = json_ws(p);
    if (*p == '}')
        return;
    for (;;) {
        const char *k = p;

        p = json_string(p, key, sizeof(key));
        if (p == NULL) {
            /* a long key that is not "ip": skip it undecoded */
            if ((p = json_string(k, NULL, 0)) == NULL)
                return;
            key[0] = '\0';
        }
        p = json_ws(p);
        if (*p++ != ':')
            return;
        p = json_ws(p);
        if (strcmp(key, "ip") == 0 && *p == '"') {
            if (json_string(p, ip, cap) == NULL)
                ip[0] = '\0';
            return;
        }
        if ((p = json_skip(p)) == NULL)
            return;
        p = json_ws(p);
        if (*p++ != ',')
            return;
        p = json_ws(p);
    }
}

/* ---- open / close ----------------------------------------------------- */

/*
 * The store holds every peer's uuid (what proves an ID is yours): only
 * the server's user may read it.  The file is created 0600 before SQLite
 * opens it (SQLite gives its -wal and -shm files the mode of the
 * database), and an existing store (an hbbs data directory, typically
 * 0644) and its -wal/-shm are narrowed to 0600.  Returns 0 or -errno.
 */
static int db_make_private(const char *path)
{
    static const char *const suffix[] = { "", "-wal", "-shm" };
    char p[4096];
    struct stat st;
    int fd;

    if (path[0] == '\0' || strcmp(path, ":memory:") == 0)
        return 0;
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return -errno;
    close(fd);
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        if ((size_t)snprintf(p, sizeof(p), "%s%s", path, suffix[i]) >=
            sizeof(p))
            return -ENAMETOOLONG;
        if (stat(p, &st) != 0 || (st.st_mode & 077) == 0)
            continue;
        if (chmod(p, st.st_mode & 0700) != 0)
            return -errno;
        hd_info(MOD, "%s was readable by others: now 0600", p);
    }
    return 0;
}

/* One log line for a store this user cannot write; returns -EROFS. */
static int db_readonly(const char *path)
{
    hd_error(MOD,
             "%s is read-only for this user (uid %u): the server writes new "
             "IDs and keys to it; fix the owner or mode of the file and its "
             "directory (or the mount)",
             path, (unsigned)getuid());
    return -EROFS;
}

int db_open(const char *path, struct db **out)
{
    struct db *db = NULL;
    sqlite3_stmt *st = NULL;
    const char *mode;
    int rc, r;

    *out = NULL;
    if ((db = calloc(1, sizeof(*db))) == NULL)
        return -ENOMEM;
    if ((r = db_make_private(path)) != 0) {
        if (r == -EACCES || r == -EPERM || r == -EROFS)
            r = db_readonly(path);
        else
            hd_error(MOD, "cannot create %s: %s", path, hd_strerror(r));
        goto out;
    }
    rc = sqlite3_open_v2(path, &db->h,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        r = db_fail(db, "open", path, rc);
        goto out;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);

    /* a database the server cannot write is found now, not at the first
     * new ID: SQLite opens a write-protected file read-only without a
     * word, and a BEGIN IMMEDIATE needs the write lock (and the -wal and
     * -shm files beside it) */
    if (strcmp(path, ":memory:") != 0 &&
        sqlite3_db_readonly(db->h, "main") != 1 &&
        (rc = sqlite3_exec(db->h, "begin immediate; rollback", NULL, NULL,
                           NULL)) != SQLITE_OK &&
        (rc & 0xff) != SQLITE_READONLY && (rc & 0xff) != SQLITE_CANTOPEN) {
        r = db_fail(db, "write to", path, rc);
        goto out;
    }
    if (strcmp(path, ":memory:") != 0 &&
        (sqlite3_db_readonly(db->h, "main") == 1 || rc != SQLITE_OK)) {
        r = db_readonly(path);
        goto out;
    }

    /* WAL persists in the file; the pragma answers the mode now in use. */
    rc = sqlite3_prepare_v2(db->h, "pragma journal_mode = wal", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        rc = SQLITE_OK;
    if (rc != SQLITE_OK) {
        r = db_fail(db, "enable WAL on", path, rc);
        goto out;
    }
    mode = (const char *)sqlite3_column_text(st, 0);
    if (mode == NULL || strcmp(mode, "wal") != 0)
        hd_warn(MOD, "%s: journal mode is %s, not wal", path,
                mode ? mode : "unknown");
    sqlite3_finalize(st);
    st = NULL;

    rc = sqlite3_exec(db->h, "pragma synchronous = full", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db->h, schema_sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        r = db_fail(db, "create schema in", path, rc);
        goto out;
    }
    for (int i = 0; i < ST_N; i++) {
        rc = sqlite3_prepare_v3(db->h, stmt_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &db->st[i], NULL);
        if (rc != SQLITE_OK) {
            r = db_fail(db, "prepare statement on", path, rc);
            goto out;
        }
    }
    hd_debug(MOD, "opened %s", path);
    *out = db;
    db = NULL;
    r = 0;
out:
    sqlite3_finalize(st);
    db_close(db);
    return r;
}

void db_close(struct db *db)
{
    if (db == NULL)
        return;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(db->st[i]);
    if (db->h != NULL && sqlite3_close(db->h) != SQLITE_OK)
        hd_error(MOD, "close: %s", sqlite3_errmsg(db->h));
    free(db);
}

/* ---- rows ------------------------------------------------------------- */

/* Copy the current row of st (guid, id, uuid, pk, info) into *p. */
static int row_read(sqlite3_stmt *st, struct db_peer *p)
{
    const void *guid = sqlite3_column_blob(st, 0);
    size_t guid_len = (size_t)sqlite3_column_bytes(st, 0);
    const unsigned char *id = sqlite3_column_text(st, 1);
    size_t id_len = (size_t)sqlite3_column_bytes(st, 1);
    const void *uuid = sqlite3_column_blob(st, 2);
    size_t uuid_len = (size_t)sqlite3_column_bytes(st, 2);
    const void *pk = sqlite3_column_blob(st, 3);
    size_t pk_len = (size_t)sqlite3_column_bytes(st, 3);
    const unsigned char *info = sqlite3_column_text(st, 4);

    if (guid_len != DB_GUID_LEN || id == NULL || id_len == 0 ||
        id_len > DB_ID_MAX || uuid_len > DB_UUID_MAX || pk_len > DB_PK_MAX) {
        hd_error(MOD, "peer %.*s: stored guid/id/uuid/pk out of range",
                 (int)(id_len > DB_ID_MAX ? DB_ID_MAX : id_len),
                 id ? (const char *)id : "");
        return HD_ETOOBIG;
    }
    memcpy(p->guid, guid, DB_GUID_LEN);
    memcpy(p->id, id, id_len);
    p->id[id_len] = '\0';
    if (uuid_len > 0)
        memcpy(p->uuid, uuid, uuid_len);
    p->uuid_len = uuid_len;
    if (pk_len > 0)
        memcpy(p->pk, pk, pk_len);
    p->pk_len = pk_len;
    info_parse(info ? (const char *)info : "", p->ip, sizeof(p->ip));
    return 0;
}

int db_get_peer(struct db *db, const char *id, struct db_peer *out)
{
    sqlite3_stmt *st = db->st[ST_GET];
    int rc, r;

    memset(out, 0, sizeof(*out));
    if (id == NULL || id[0] == '\0' || strlen(id) > DB_ID_MAX)
        return -ENOENT;
    rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        r = db_fail(db, "get", id, rc);
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = -ENOENT;
    } else if (rc == SQLITE_ROW) {
        r = row_read(st, out);
        if (r != 0)
            memset(out, 0, sizeof(*out));
    } else {
        r = db_fail(db, "get", id, rc);
    }
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

static int check_args(const char *id, size_t uuid_len, size_t pk_len,
                      const char *ip)
{
    if (id == NULL || id[0] == '\0' || strlen(id) > DB_ID_MAX ||
        uuid_len > DB_UUID_MAX || pk_len > DB_PK_MAX || ip == NULL ||
        strlen(ip) >= DB_IP_MAX)
        return -EINVAL;
    return 0;
}

/* Run a write statement to completion; reset it whatever happens. */
static int step_write(struct db *db, sqlite3_stmt *st, const char *what,
                      const char *id)
{
    int rc = sqlite3_step(st), r = 0;

    if (rc != SQLITE_DONE)
        r = db_fail(db, what, id, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

int db_insert_peer(struct db *db, const char *id, const uint8_t *uuid,
                   size_t uuid_len, const uint8_t *pk, size_t pk_len,
                   const char *ip, uint8_t guid_out[DB_GUID_LEN])
{
    sqlite3_stmt *st = db->st[ST_INSERT];
    uint8_t guid[DB_GUID_LEN];
    char info[DB_IP_MAX * 6 + 16];
    int r;

    if (guid_out != NULL)
        memset(guid_out, 0, DB_GUID_LEN);
    if ((r = check_args(id, uuid_len, pk_len, ip)) != 0 ||
        (r = info_build(ip, info, sizeof(info))) != 0)
        return r;
    /* A version 4 UUID, as hbbs's Uuid::new_v4(). */
    randombytes_buf(guid, sizeof(guid));
    guid[6] = (uint8_t)((guid[6] & 0x0f) | 0x40);
    guid[8] = (uint8_t)((guid[8] & 0x3f) | 0x80);

    /* Zero-length blobs must still be blobs, not NULL (not null columns). */
    if (sqlite3_bind_blob(st, 1, guid, sizeof(guid), SQLITE_STATIC) ||
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC) ||
        sqlite3_bind_blob(st, 3, uuid ? (const void *)uuid : "", (int)uuid_len,
                          SQLITE_STATIC) ||
        sqlite3_bind_blob(st, 4, pk ? (const void *)pk : "", (int)pk_len,
                          SQLITE_STATIC) ||
        sqlite3_bind_text(st, 5, info, -1, SQLITE_STATIC)) {
        r = db_fail(db, "insert (bind)", id, sqlite3_errcode(db->h));
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
    }
    if ((r = step_write(db, st, "insert", id)) != 0)
        return r;
    if (guid_out != NULL)
        memcpy(guid_out, guid, DB_GUID_LEN);
    return 0;
}

int db_update_pk(struct db *db, const uint8_t guid[DB_GUID_LEN], const char *id,
                 const uint8_t *pk, size_t pk_len, const char *ip)
{
    sqlite3_stmt *st = db->st[ST_UPDATE];
    char info[DB_IP_MAX * 6 + 16];
    int r;

    if ((r = check_args(id, 0, pk_len, ip)) != 0 ||
        (r = info_build(ip, info, sizeof(info))) != 0)
        return r;
    if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) ||
        sqlite3_bind_blob(st, 2, pk ? (const void *)pk : "", (int)pk_len,
                          SQLITE_STATIC) ||
        sqlite3_bind_text(st, 3, info, -1, SQLITE_STATIC) ||
        sqlite3_bind_blob(st, 4, guid, DB_GUID_LEN, SQLITE_STATIC)) {
        r = db_fail(db, "update (bind)", id, sqlite3_errcode(db->h));
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
    }
    if ((r = step_write(db, st, "update", id)) != 0)
        return r;
    if (sqlite3_changes(db->h) == 0) {
        hd_error(MOD, "update %s: no row with that guid", id);
        return -ENOENT;
    }
    return 0;
}

int db_count_peers(struct db *db, int64_t *out)
{
    sqlite3_stmt *st = db->st[ST_COUNT];
    int rc, r = 0;

    *out = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        r = db_fail(db, "count", NULL, rc);
    sqlite3_reset(st);
    return r;
}

int db_for_each_peer(struct db *db,
                     int (*fn)(const struct db_peer *peer, void *ud), void *ud)
{
    sqlite3_stmt *st = db->st[ST_ALL];
    struct db_peer *p;
    int rc, r = 0;

    if (db->iterating)
        return -EINVAL;
    if ((p = malloc(sizeof(*p))) == NULL)
        return -ENOMEM;
    db->iterating = 1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(p, 0, sizeof(*p));
        if (row_read(st, p) != 0)
            continue;
        if ((r = fn(p, ud)) != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_fail(db, "list", NULL, rc);
    sqlite3_reset(st);
    db->iterating = 0;
    free(p);
    return r;
}

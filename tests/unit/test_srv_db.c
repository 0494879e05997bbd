/*
 * Unit tests for server/db: the hbbs peer store.  Files are written and
 * read back by the sqlite3 command-line tool (another program) to prove
 * the schema is hbbs's and that what we store is there for others.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "server/db.h"
#include "tests/harness.h"

static char tmpdir[256];
static int have_cli;

/* hbbs's schema, as rustdesk-server's database.rs creates it. */
static const char hbbs_schema[] =
    "create table if not exists peer (\n"
    "    guid blob primary key not null,\n"
    "    id varchar(100) not null,\n"
    "    uuid blob not null,\n"
    "    pk blob not null,\n"
    "    created_at datetime not null default(current_timestamp),\n"
    "    user blob,\n"
    "    status tinyint,\n"
    "    note varchar(300),\n"
    "    info text not null\n"
    ") without rowid;\n"
    "create unique index if not exists index_peer_id on peer (id);\n"
    "create index if not exists index_peer_user on peer (user);\n"
    "create index if not exists index_peer_created_at on peer (created_at);\n"
    "create index if not exists index_peer_status on peer (status);\n";

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
    unlink(out);
}

/*
 * Run sql through the sqlite3 tool on file db; its output (trailing
 * newline removed) into out.  Returns the tool's exit status.
 */
static int cli(const char *db, const char *sql, char *out, size_t cap)
{
    char sqlf[300], outf[300], cmd[1024];
    FILE *f;
    size_t n = 0;
    int st;

    snprintf(sqlf, sizeof(sqlf), "%s/cmd.sql", tmpdir);
    snprintf(outf, sizeof(outf), "%s/cmd.out", tmpdir);
    if ((f = fopen(sqlf, "w")) == NULL)
        return -1;
    fputs(sql, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "sqlite3 -batch '%s' < '%s' > '%s' 2>&1", db,
             sqlf, outf);
    st = system(cmd);
    if (out != NULL && cap > 0) {
        out[0] = '\0';
        if ((f = fopen(outf, "r")) != NULL) {
            n = fread(out, 1, cap - 1, f);
            fclose(f);
        }
        out[n] = '\0';
        while (n > 0 && out[n - 1] == '\n')
            out[--n] = '\0';
    }
    return st;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static void hbbs_file_readable(void)
{
    char path[300], out[512];
    struct db *db = NULL;
    struct db_peer p;
    int64_t n = -1;
    static const uint8_t guid1[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                                       0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
                                       0xcc, 0xdd, 0xee, 0xff };
    uint8_t pk1[32];
    char sql[2048], pkhex[65];

    if (!have_cli) {
        ht_fail(__FILE__, __LINE__, "sqlite3 tool missing");
        return;
    }
    fill(pk1, sizeof(pk1), 0x40);
    ht_hex(pkhex, pk1, sizeof(pk1));
    path_in(path, sizeof(path), "hbbs.sqlite3");
    snprintf(sql, sizeof(sql),
             "%s"
             "insert into peer(guid, id, uuid, pk, info) values ("
             "x'00112233445566778899aabbccddeeff', '123456789',"
             " cast('a1b2c3d4-uuid' as blob), x'%s',"
             " '{\"ip\":\"1.2.3.4\"}');\n"
             "insert into peer(guid, id, uuid, pk, created_at, status, note,"
             " info) values (x'ffeeddccbbaa99887766554433221100',"
             " 'host-two', x'0102', x'', '2023-01-02 03:04:05', 1, 'n',"
             " '{\"x\":[1,{\"y\":\"\\\"}\"}],\"ip\":\"::ffff:10.0.0.7\"}');\n",
             hbbs_schema, pkhex);
    HT_EQ_INT(cli(path, sql, out, sizeof(out)), 0);
    HT_EQ_STR(out, "");

    HT_EQ_INT(db_open(path, &db), 0);
    if (db == NULL)
        return;
    HT_EQ_INT(db_count_peers(db, &n), 0);
    HT_EQ_INT(n, 2);

    HT_EQ_INT(db_get_peer(db, "123456789", &p), 0);
    HT_EQ_MEM(p.guid, guid1, 16);
    HT_EQ_STR(p.id, "123456789");
    HT_EQ_INT(p.uuid_len, 13);
    HT_EQ_MEM(p.uuid, "a1b2c3d4-uuid", 13);
    HT_EQ_INT(p.pk_len, 32);
    HT_EQ_MEM(p.pk, pk1, 32);
    HT_EQ_STR(p.ip, "1.2.3.4");

    HT_EQ_INT(db_get_peer(db, "host-two", &p), 0);
    HT_EQ_INT(p.guid[0], 0xff);
    HT_EQ_INT(p.uuid_len, 2);
    HT_EQ_INT(p.pk_len, 0);
    HT_EQ_STR(p.ip, "::ffff:10.0.0.7");

    HT_EQ_INT(db_get_peer(db, "nobody", &p), -ENOENT);
    HT_EQ_STR(p.id, "");
    db_close(db);
}

static void round_trip(void)
{
    char path[300];
    struct db *db = NULL;
    struct db_peer p;
    uint8_t guid[DB_GUID_LEN], bogus[DB_GUID_LEN] = { 0 };
    uint8_t pk1[32], pk2[32];
    static const uint8_t uuid[] = "machine-uuid-1";

    fill(pk1, sizeof(pk1), 1);
    fill(pk2, sizeof(pk2), 99);
    path_in(path, sizeof(path), "rt.sqlite3");
    HT_EQ_INT(db_open(path, &db), 0);
    if (db == NULL)
        return;
    HT_EQ_INT(db_insert_peer(db, "555666777", uuid, sizeof(uuid) - 1, pk1,
                             sizeof(pk1), "192.0.2.1", guid),
              0);
    HT_EQ_INT(guid[6] >> 4, 4);      /* UUID version 4 */
    HT_EQ_INT(guid[8] & 0xc0, 0x80); /* RFC 4122 variant */

    HT_EQ_INT(db_get_peer(db, "555666777", &p), 0);
    HT_EQ_MEM(p.guid, guid, DB_GUID_LEN);
    HT_EQ_INT(p.uuid_len, sizeof(uuid) - 1);
    HT_EQ_MEM(p.uuid, uuid, sizeof(uuid) - 1);
    HT_EQ_MEM(p.pk, pk1, 32);
    HT_EQ_STR(p.ip, "192.0.2.1");

    /* new key and address: uuid stays */
    HT_EQ_INT(
        db_update_pk(db, guid, "555666777", pk2, sizeof(pk2), "2001:db8::5"),
        0);
    HT_EQ_INT(db_get_peer(db, "555666777", &p), 0);
    HT_EQ_MEM(p.pk, pk2, 32);
    HT_EQ_STR(p.ip, "2001:db8::5");
    HT_EQ_MEM(p.uuid, uuid, sizeof(uuid) - 1);

    /* hbbs's update_pk also renames the row */
    HT_EQ_INT(db_update_pk(db, guid, "renamed1", pk2, sizeof(pk2), "a\"b"), 0);
    HT_EQ_INT(db_get_peer(db, "555666777", &p), -ENOENT);
    HT_EQ_INT(db_get_peer(db, "renamed1", &p), 0);
    HT_EQ_STR(p.ip, "a\"b"); /* escaped on the way in and out */

    /* a write that cannot land is reported */
    HT_EQ_INT(db_update_pk(db, bogus, "renamed1", pk1, 32, "1.1.1.1"), -ENOENT);
    HT_EQ_INT(db_insert_peer(db, "", uuid, 3, pk1, 32, "", NULL), -EINVAL);
    HT_EQ_INT(db_insert_peer(db, "x", uuid, DB_UUID_MAX + 1, pk1, 32, "", NULL),
              -EINVAL);
    db_close(db);
}

struct visit {
    int n;
    char last[DB_ID_MAX + 1];
    int bad;
};

static int visit_fn(const struct db_peer *p, void *ud)
{
    struct visit *v = ud;
    uint8_t want[32];
    int k = atoi(p->id + 4);

    fill(want, sizeof(want), (uint8_t)k);
    if (strcmp(p->id, v->last) <= 0 || p->pk_len != 32 ||
        memcmp(p->pk, want, 32) != 0)
        v->bad++;
    snprintf(v->last, sizeof(v->last), "%s", p->id);
    v->n++;
    return 0;
}

static int stop_fn(const struct db_peer *p, void *ud)
{
    (void)p;
    return ++*(int *)ud == 3 ? 42 : 0;
}

static void reopen_keeps(void)
{
    char path[300], id[32], out[256], want[256], pkhex[65];
    struct db *db = NULL;
    struct visit v = { 0 };
    uint8_t pk[32];
    int64_t n = 0;
    int stops = 0;

    path_in(path, sizeof(path), "reopen.sqlite3");
    HT_EQ_INT(db_open(path, &db), 0);
    if (db == NULL)
        return;
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "peer%03d", i);
        fill(pk, sizeof(pk), (uint8_t)i);
        HT_EQ_INT(db_insert_peer(db, id, (const uint8_t *)id, strlen(id), pk,
                                 sizeof(pk), "10.0.0.1", NULL),
                  0);
    }
    db_close(db);
    db = NULL;

    HT_EQ_INT(db_open(path, &db), 0);
    if (db == NULL)
        return;
    HT_EQ_INT(db_count_peers(db, &n), 0);
    HT_EQ_INT(n, 50);
    HT_EQ_INT(db_for_each_peer(db, visit_fn, &v), 0);
    HT_EQ_INT(v.n, 50);
    HT_EQ_INT(v.bad, 0);
    HT_EQ_INT(db_for_each_peer(db, stop_fn, &stops), 42);
    HT_EQ_INT(stops, 3);
    db_close(db);

    /* and another program sees the same rows */
    if (have_cli) {
        fill(pk, sizeof(pk), 7);
        ht_hex(pkhex, pk, sizeof(pk));
        snprintf(want, sizeof(want), "50|50\n%s {\"ip\":\"10.0.0.1\"}", pkhex);
        HT_EQ_INT(cli(path,
                      "select count(*), sum(length(guid) = 16) from peer;\n"
                      "select lower(hex(pk)) || ' ' || info from peer"
                      " where id = 'peer007';\n",
                      out, sizeof(out)),
                  0);
        HT_EQ_STR(out, want);
    }
}

static void unique_id_violation(void)
{
    char path[300];
    struct db *db = NULL;
    struct db_peer p;
    uint8_t pk1[32], pk2[32], g1[DB_GUID_LEN], g2[DB_GUID_LEN];
    int64_t n = 0;

    fill(pk1, sizeof(pk1), 1);
    fill(pk2, sizeof(pk2), 2);
    path_in(path, sizeof(path), "uniq.sqlite3");
    HT_EQ_INT(db_open(path, &db), 0);
    if (db == NULL)
        return;
    HT_EQ_INT(db_insert_peer(db, "dup", pk1, 4, pk1, 32, "1.1.1.1", g1), 0);
    HT_EQ_INT(db_insert_peer(db, "dup", pk2, 4, pk2, 32, "2.2.2.2", g2),
              -EEXIST);
    HT_EQ_INT(db_count_peers(db, &n), 0);
    HT_EQ_INT(n, 1);
    HT_EQ_INT(db_get_peer(db, "dup", &p), 0);
    HT_EQ_MEM(p.pk, pk1, 32);
    HT_EQ_MEM(p.guid, g1, DB_GUID_LEN);

    /* renaming onto a taken ID is refused too, and changes nothing */
    HT_EQ_INT(db_insert_peer(db, "other", pk2, 4, pk2, 32, "2.2.2.2", g2), 0);
    HT_EQ_INT(db_update_pk(db, g2, "dup", pk2, 32, "3.3.3.3"), -EEXIST);
    HT_EQ_INT(db_get_peer(db, "other", &p), 0);
    HT_EQ_STR(p.ip, "2.2.2.2");
    /* statements were reset: the db still works after the errors */
    HT_EQ_INT(db_get_peer(db, "dup", &p), 0);
    db_close(db);
}

static void wal_mode_and_schema(void)
{
    char path[300], walp[310], out[512];
    struct db *db = NULL;
    struct stat sb;

    path_in(path, sizeof(path), "wal.sqlite3");
    HT_EQ_INT(db_open(path, &db), 0);
    if (db == NULL)
        return;
    HT_EQ_INT(db_insert_peer(db, "walpeer", (const uint8_t *)"u", 1,
                             (const uint8_t *)"k", 1, "", NULL),
              0);
    snprintf(walp, sizeof(walp), "%s-wal", path);
    HT_EQ_INT(stat(walp, &sb), 0); /* the WAL file is in use */
    if (have_cli) {
        HT_EQ_INT(cli(path, "pragma journal_mode;\n", out, sizeof(out)), 0);
        HT_EQ_STR(out, "wal");
        HT_EQ_INT(cli(path,
                      "select name from sqlite_master where type = 'index'"
                      " and name like 'index_peer%' order by name;\n"
                      "select group_concat(name || ':' || lower(type) || ':' ||"
                      " \"notnull\" || ':' || pk, ' ') from"
                      " pragma_table_info('peer');\n"
                      "select sql like '%without rowid%' from sqlite_master"
                      " where name = 'peer';\n",
                      out, sizeof(out)),
                  0);
        HT_EQ_STR(out, "index_peer_created_at\nindex_peer_id\n"
                       "index_peer_status\nindex_peer_user\n"
                       "guid:blob:1:1 id:varchar(100):1:0 uuid:blob:1:0 "
                       "pk:blob:1:0 created_at:datetime:1:0 user:blob:0:0 "
                       "status:tinyint:0:0 note:varchar(300):0:0 "
                       "info:text:1:0\n1");
    }
    db_close(db);
}

static void bad_file_reported(void)
{
    char path[300];
    struct db *db = (struct db *)1;
    FILE *f;

    path_in(path, sizeof(path), "garbage.sqlite3");
    f = fopen(path, "w");
    HT_CHECK(f != NULL);
    if (f == NULL)
        return;
    for (int i = 0; i < 200; i++)
        fputs("this is not a database file. ", f);
    fclose(f);
    HT_EQ_INT(db_open(path, &db), -EIO);
    HT_CHECK(db == NULL);

    /* a `peer` table without hbbs's columns cannot be used */
    if (have_cli) {
        path_in(path, sizeof(path), "other.sqlite3");
        HT_EQ_INT(cli(path, "create table peer (x int);\n", NULL, 0), 0);
        HT_EQ_INT(db_open(path, &db), -EIO);
        HT_CHECK(db == NULL);
    }
}

static void url_parsing(void)
{
    char out[64];

    HT_EQ_INT(db_parse_url("db_v2.sqlite3", out, sizeof(out)), 0);
    HT_EQ_STR(out, "db_v2.sqlite3");
    HT_EQ_INT(
        db_parse_url("sqlite://./data/db.sqlite3?mode=rwc", out, sizeof(out)),
        0);
    HT_EQ_STR(out, "./data/db.sqlite3");
    HT_EQ_INT(db_parse_url("sqlite:///var/lib/x%20y.db", out, sizeof(out)), 0);
    HT_EQ_STR(out, "/var/lib/x y.db");
    HT_EQ_INT(db_parse_url("sqlite:rel.db", out, sizeof(out)), 0);
    HT_EQ_STR(out, "rel.db");
    HT_EQ_INT(db_parse_url("sqlite://?mode=rwc", out, sizeof(out)), HD_ECONFIG);
    HT_EQ_INT(db_parse_url("bad%zz", out, sizeof(out)), HD_ECONFIG);
    HT_EQ_INT(db_parse_url("nul%00", out, sizeof(out)), HD_ECONFIG);
    HT_EQ_INT(db_parse_url("/a/very/long/path/that/does/not/fit/in/the/"
                           "small/buffer/given.db",
                           out, 16),
              HD_ECONFIG);
    HT_EQ_STR(out, "");

    unsetenv("DB_URL");
    HT_EQ_INT(db_path_from_env("/srv/hd", out, sizeof(out)), 0);
    HT_EQ_STR(out, "/srv/hd/db_v2.sqlite3");
    setenv("DB_URL", "sqlite://other.db?mode=rwc", 1);
    HT_EQ_INT(db_path_from_env("/srv/hd", out, sizeof(out)), 0);
    HT_EQ_STR(out, "other.db");
    unsetenv("DB_URL");
}

int main(void)
{
    char cmd[300];
    int r;

    ht_init("srv_db");
    snprintf(tmpdir, sizeof(tmpdir), "%s/hd-db-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    have_cli = system("sqlite3 -version > /dev/null 2>&1") == 0;
    HT_RUN(url_parsing);
    if (have_cli)
        HT_RUN(hbbs_file_readable);
    else
        ht_skip("hbbs_file_readable", "sqlite3 tool not installed");
    HT_RUN(round_trip);
    HT_RUN(reopen_keeps);
    HT_RUN(unique_id_violation);
    HT_RUN(wal_mode_and_schema);
    HT_RUN(bad_file_reported);
    r = ht_finish();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return r;
}

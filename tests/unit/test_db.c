/* Unit test of db.c, migrate.c and the database settings of config.c:
 * database_url parsing and masking, error kinds, the config fixtures
 * tests/data/config/db_*.yaml, migration directory scans. With
 * SL_TEST_MARIADB_URL set (tests/integration/db-migrate.test.mjs sets it
 * against a real MariaDB it started), also the statement API on a live
 * server: typed parameters and columns, hostile strings, duplicates, exact
 * decimals, transactions, time-outs, lost connections, threads, the
 * back-off and scripts. Prints TAP. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../src/config.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "status.h"
#include "tap.h"

static char fixture_path[4096];

static const char *fixture(const char *name)
{
    const char *dir = getenv("SL_TEST_DATA");

    snprintf(fixture_path, sizeof(fixture_path), "%s/config/%s", dir ? dir : "tests/data", name);
    return fixture_path;
}

static const char *text(const struct sl_buf *b)
{
    return b->len > 0 ? b->data : "";
}

static void has(const char *hay, const char *needle, const char *name)
{
    if (!ok(strstr(hay, needle) != NULL, name))
        printf("#   wanted: %s\n#   in: %s\n", needle, hay);
}

static long long mono_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- database_url -------------------------------------------------------- */

struct url_case {
    const char *url, *user, *password, *host, *socket, *database, *masked;
    unsigned port;
};

static void test_url_ok(void)
{
    static const struct url_case cases[] = {
        { "mysql://sluice:secret@127.0.0.1:3307/keys", "sluice", "secret", "127.0.0.1", NULL, "keys",
          "mysql://sluice:***@127.0.0.1:3307/keys", 3307 },
        { "mariadb://u:pw@db.example.com/sluice", "u", "pw", "db.example.com", NULL, "sluice",
          "mariadb://u:***@db.example.com/sluice", 3306 },
        { "MySQL://u@h/d", "u", NULL, "h", NULL, "d", "MySQL://u@h/d", 3306 },
        { "mysql://u:@h/d", "u", "", "h", NULL, "d", "mysql://u:***@h/d", 3306 },
        { "mysql://us%65r:p%40ss%3Aw%2Frd%25%3F%23@h:1/d%62", "user", "p@ss:w/rd%?#", "h", NULL, "db",
          "mysql://us%65r:***@h:1/d%62", 1 },
        /* A raw '@' or '/' in a password still parses: the last '@' ends it. */
        { "mysql://u:a@b/c@host/db", "u", "a@b/c", "host", NULL, "db", "mysql://u:***@host/db", 3306 },
        { "mysql://u:p@[::1]:3310/d", "u", "p", "::1", NULL, "d", "mysql://u:***@[::1]:3310/d", 3310 },
        { "mysql://u:p@/d?socket=/run/mysqld/mysqld.sock", "u", "p", "localhost",
          "/run/mysqld/mysqld.sock", "d", "mysql://u:***@/d?socket=/run/mysqld/mysqld.sock", 3306 },
        { "mysql://u:p@localhost/d?socket=%2Ftmp%2Fmy%20sock", "u", "p", "localhost", "/tmp/my sock",
          "d", "mysql://u:***@localhost/d?socket=%2Ftmp%2Fmy%20sock", 3306 },
    };
    char why[256], name[160];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct url_case *c = &cases[i];
        struct sl_db_url u;
        int rc = sl_db_url_parse(c->url, &u, why, sizeof(why));

        snprintf(name, sizeof(name), "url %zu (%s): parses", i, c->masked);
        if (!ok(rc == SL_OK, name)) {
            printf("#   %s\n", why);
            sl_db_url_free(&u);
            continue;
        }
        snprintf(name, sizeof(name), "url %zu: fields", i);
        ok(strcmp(u.user, c->user) == 0 &&
           ((u.password == NULL && c->password == NULL) ||
            (u.password && c->password && strcmp(u.password, c->password) == 0)) &&
           strcmp(u.host, c->host) == 0 && u.port == c->port &&
           ((u.socket == NULL && c->socket == NULL) ||
            (u.socket && c->socket && strcmp(u.socket, c->socket) == 0)) &&
           strcmp(u.database, c->database) == 0, name);
        snprintf(name, sizeof(name), "url %zu: masked", i);
        is_str(u.masked, c->masked, name);
        sl_db_url_free(&u);
    }
}

static void test_url_errors(void)
{
    static const struct { const char *url, *why; } cases[] = {
        { "postgresql://u:pw@h/d", "this scheme is not MariaDB" },
        { "h:3306/d", "expected mysql://" },
        { "mysql://h/d", "no user name" },
        { "mysql://:pw@h/d", "no user name" },
        { "mysql://u:pw@h", "no database name" },
        { "mysql://u:pw@h/", "no database name" },
        { "mysql://u:pw@h:0/d", "port must be a number from 1 to 65535" },
        { "mysql://u:pw@h:65536/d", "port must be" },
        { "mysql://u:pw@h:33a/d", "port must be" },
        { "mysql://u:pw%4@h/d", "password has a bad %-escape" },
        { "mysql://u:pw%00x@h/d", "password has a bad %-escape" },
        { "mysql://u:pw@h/d?sslmode=require", "unknown parameter 'sslmode'" },
        { "mysql://u:pw@h/d?socket=relative.sock", "absolute path" },
        { "mysql://u:pw@[::1/d", "IPv6" },
        { "mysql://u:pw@h/d#frag", "'#' must be written %23" },
        { "mysql://u:pw@h/a/b", "bad database name" },
    };
    char why[256], name[200];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_db_url u;
        int rc = sl_db_url_parse(cases[i].url, &u, why, sizeof(why));

        snprintf(name, sizeof(name), "bad url %zu: SL_ERR_CONFIG", i);
        is_int(rc, SL_ERR_CONFIG, name);
        snprintf(name, sizeof(name), "bad url %zu: says '%s'", i, cases[i].why);
        has(why, cases[i].why, name);
        snprintf(name, sizeof(name), "bad url %zu: no password in the message", i);
        ok(strstr(why, "pw") == NULL, name);
        sl_db_url_free(&u);
    }
}

static void test_kinds(void)
{
    is_int(sl_db_errkind_status(SL_DB_ERR_NONE), SL_OK, "kind none -> SL_OK");
    is_int(sl_db_errkind_status(SL_DB_ERR_UNAVAILABLE), SL_ERR_DB_UNAVAILABLE, "unavailable -> 503");
    is_int(sl_db_errkind_status(SL_DB_ERR_DENIED), SL_ERR_DB_UNAVAILABLE, "denied -> 503");
    is_int(sl_db_errkind_status(SL_DB_ERR_SCHEMA), SL_ERR_DB_UNAVAILABLE, "schema -> 503");
    is_int(sl_db_errkind_status(SL_DB_ERR_UNCONFIGURED), SL_ERR_DB_UNAVAILABLE, "unconfigured -> 503");
    is_int(sl_db_errkind_status(SL_DB_ERR_DUPLICATE), SL_ERR_DB, "duplicate -> SL_ERR_DB");
    is_int(sl_db_errkind_status(SL_DB_ERR_STATEMENT), SL_ERR_DB, "statement -> SL_ERR_DB");
    is_int(sl_db_errkind_status(SL_DB_ERR_NOMEM), SL_ERR_NOMEM, "nomem");
    is_str(sl_db_errkind_name(SL_DB_ERR_DENIED), "denied", "kind name");
    is_str(sl_status_name(SL_ERR_DB_UNAVAILABLE), "db_unavailable", "status name");
}

/* No database configured: the first statement says so, without I/O. */
static void test_unconfigured(void)
{
    struct sl_db_settings s = { NULL, 1000, 1000, 1000 };
    struct sl_db *db = NULL;
    int rc;

    is_int(sl_db_thread(&s, &db), SL_OK, "unconfigured: thread handle");
    rc = db ? sl_db_exec(db, "SELECT 1", NULL, 0, NULL) : -1;
    is_int(rc, SL_ERR_DB_UNAVAILABLE, "unconfigured: statement -> SL_ERR_DB_UNAVAILABLE");
    if (db != NULL) {
        is_int(sl_db_last_error(db)->kind, SL_DB_ERR_UNCONFIGURED, "unconfigured: kind");
        has(sl_db_last_error(db)->message, "general_settings.database_url", "unconfigured: names the fix");
    }
    sl_db_thread_end();
}

/* ---- config -------------------------------------------------------------- */

static void test_config_ok(void)
{
    struct sl_config *c = NULL;
    struct sl_buf msgs;
    int rc;

    setenv("SL_TEST_MC", "10.0.0.5:11213", 1);
    unsetenv("DATABASE_URL");
    sl_buf_init(&msgs, 1u << 20);
    rc = sl_config_load(fixture("db_settings.yaml"), &c, &msgs);
    is_int(rc, SL_OK, "db_settings: loads");
    ok(msgs.len == 0, "db_settings: no messages (database_url is implemented now)");
    if (msgs.len)
        printf("#   %s", text(&msgs));
    if (c != NULL) {
        is_str(c->database_url, "mysql://sluice:p%40ss%3Aw%2Frd@db.example.com:3307/sluice",
               "db_settings: database_url kept as written");
        is_str(c->database_url_masked, "mysql://sluice:***@db.example.com:3307/sluice",
               "db_settings: masked");
        is_int(c->n_memcached_servers, 5, "db_settings: 5 memcached servers");
        if (c->n_memcached_servers == 5) {
            ok(strcmp(c->memcached_servers[0].host, "127.0.0.1") == 0 &&
               c->memcached_servers[0].port == 11211, "memcached[0] host:port");
            ok(strcmp(c->memcached_servers[1].host, "cache.example.com") == 0 &&
               c->memcached_servers[1].port == 11211, "memcached[1] default port 11211");
            ok(strcmp(c->memcached_servers[2].host, "::1") == 0 && c->memcached_servers[2].port == 11212,
               "memcached[2] [IPv6]:port");
            ok(strcmp(c->memcached_servers[3].host, "/run/memcached/memcached.sock") == 0 &&
               c->memcached_servers[3].port == 0, "memcached[3] unix socket");
            ok(strcmp(c->memcached_servers[4].host, "10.0.0.5") == 0 &&
               c->memcached_servers[4].port == 11213, "memcached[4] from os.environ/");
        }
        ok(c->db_connect_timeout_ms == 500 && c->db_read_timeout_ms == 1500 &&
           c->db_write_timeout_ms == 2500, "db_settings: db timeouts");
    }
    sl_config_unref(c);
    sl_buf_free(&msgs);
    unsetenv("SL_TEST_MC");
}

static void test_config_defaults_env(void)
{
    struct sl_config *c = NULL;
    struct sl_buf msgs;

    /* No database_url: $DATABASE_URL; memcached from one comma-separated string. */
    setenv("DATABASE_URL", "mariadb://env:envpw@10.1.1.1/envdb", 1);
    setenv("SL_TEST_MC_LIST", "a:1, b:2,c", 1);
    sl_buf_init(&msgs, 1u << 20);
    is_int(sl_config_load(fixture("db_env.yaml"), &c, &msgs), SL_OK, "db_env: loads");
    if (c != NULL) {
        is_str(c->database_url_masked, "mariadb://env:***@10.1.1.1/envdb", "db_env: $DATABASE_URL");
        is_int(c->n_memcached_servers, 3, "db_env: 3 servers from one string");
        ok(c->n_memcached_servers == 3 && c->memcached_servers[2].port == 11211 &&
           strcmp(c->memcached_servers[1].host, "b") == 0, "db_env: split at commas and blanks");
        ok(c->db_connect_timeout_ms == 2000 && c->db_read_timeout_ms == 5000 &&
           c->db_write_timeout_ms == 5000, "defaults: db timeouts 2 s / 5 s / 5 s");
    }
    sl_config_unref(c);
    sl_buf_free(&msgs);

    /* A $DATABASE_URL that is not MariaDB's: a warning, and no database. */
    c = NULL;
    setenv("DATABASE_URL", "postgresql://llm:topsecret@pg/litellm", 1);
    sl_buf_init(&msgs, 1u << 20);
    is_int(sl_config_load(fixture("db_env.yaml"), &c, &msgs), SL_OK, "postgres $DATABASE_URL: loads");
    has(text(&msgs), "warning: $DATABASE_URL: expected mysql://", "postgres $DATABASE_URL: warned");
    has(text(&msgs), "running with the master key alone", "postgres $DATABASE_URL: says what happens");
    ok(strstr(text(&msgs), "topsecret") == NULL, "postgres $DATABASE_URL: no password in messages");
    ok(c != NULL && c->database_url == NULL, "postgres $DATABASE_URL: no database");
    sl_config_unref(c);
    sl_buf_free(&msgs);
    unsetenv("DATABASE_URL");

    /* $SLUICE_MEMCACHED_SERVERS when the file has none. */
    c = NULL;
    setenv("SLUICE_MEMCACHED_SERVERS", "m1:7000,m2:7001", 1);
    sl_buf_init(&msgs, 1u << 20);
    is_int(sl_config_load(fixture("bare_model.yaml"), &c, &msgs), SL_OK, "SLUICE_MEMCACHED_SERVERS: loads");
    ok(c != NULL && c->n_memcached_servers == 2 && c->memcached_servers[1].port == 7001,
       "SLUICE_MEMCACHED_SERVERS: 2 servers");
    ok(c != NULL && c->database_url == NULL, "bare: no database");
    sl_config_unref(c);
    sl_buf_free(&msgs);
    unsetenv("SLUICE_MEMCACHED_SERVERS");
    unsetenv("SL_TEST_MC_LIST");
}

static void expect(const char *file, const char *const *wanted, const char *secret)
{
    struct sl_config *c = (struct sl_config *)&c;
    struct sl_buf msgs;
    char name[200];
    int rc;

    sl_buf_init(&msgs, 1u << 20);
    rc = sl_config_load(fixture(file), &c, &msgs);
    snprintf(name, sizeof(name), "%s: SL_ERR_CONFIG", file);
    is_int(rc, SL_ERR_CONFIG, name);
    for (; *wanted; wanted++) {
        snprintf(name, sizeof(name), "%s: %.120s", file, *wanted);
        has(text(&msgs), *wanted, name);
    }
    snprintf(name, sizeof(name), "%s: no password in messages", file);
    ok(strstr(text(&msgs), secret) == NULL, name);
    sl_buf_free(&msgs);
}

static void test_config_errors(void)
{
    static const char *const e1[] = {
        "db_errors.yaml:6:17: error: general_settings.database_url: no database name",
        "db_errors.yaml:8:7: error: general_settings.memcached_servers: '127.0.0.1:0': the port must be",
        "db_errors.yaml:9:7: error: general_settings.memcached_servers: 'host:port': the port must be",
        "db_errors.yaml:10:7: error: general_settings.memcached_servers: expected \"host:port\" strings, got an integer",
        "db_errors.yaml:12:26: error: sluice_settings.db_connect_timeout_ms: expected an integer from 1 to 600000",
        "db_errors.yaml:13:23: error: sluice_settings.db_read_timeout_ms: expected an integer",
        NULL };
    static const char *const e2[] = {
        "db_errors2.yaml:6:17: error: general_settings.database_url: expected mysql://user:password@host:port/database (or mariadb://): this scheme is not MariaDB",
        "db_errors2.yaml:7:22: error: general_settings.memcached_servers: expected a list of \"host:port\", got a mapping",
        NULL };

    expect("db_errors.yaml", e1, "secret-pw");
    expect("db_errors2.yaml", e2, "dbpassword9090");
}

/* ---- migration directories ----------------------------------------------- */

static void put(const char *dir, const char *name, const char *body)
{
    char p[4096];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    if ((f = fopen(p, "w")) != NULL) {
        fputs(body, f);
        fclose(f);
    }
}

static void rm(const char *dir, const char *name)
{
    char p[4096];

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    unlink(p);
}

static void test_scan(void)
{
    char dir[] = "/tmp/sl-test-db-XXXXXX";
    struct sl_migrations m;
    struct sl_buf msgs;
    int rc;

    if (!ok(mkdtemp(dir) != NULL, "scan: temp dir"))
        return;
    put(dir, "002_second.sql", "SELECT 2;\n");
    put(dir, "001_first.sql", "SELECT 1;\n");
    put(dir, "010_tenth-x.y.sql", "SELECT 10;\n");
    put(dir, "README", "not a migration\n");
    sl_buf_init(&msgs, 1u << 16);
    rc = sl_migrate_scan(dir, &m, &msgs);
    is_int(rc, SL_OK, "scan: OK");
    ok(m.n == 3 && m.v[0].version == 1 && m.v[1].version == 2 && m.v[2].version == 10,
       "scan: three files, sorted by number (README ignored)");
    ok(m.n == 3 && strcmp(m.v[0].name, "001_first.sql") == 0 && strcmp(m.v[0].sql, "SELECT 1;\n") == 0,
       "scan: name and contents");
    /* sha256("SELECT 1;\n") */
    ok(m.n == 3 && strlen(m.v[0].checksum) == 64 && strcmp(m.v[0].checksum, m.v[1].checksum) != 0,
       "scan: checksums");
    sl_migrate_free(&m);
    sl_buf_free(&msgs);

    put(dir, "2_again.sql", "SELECT 2;\n");
    put(dir, "x_bad.sql", "SELECT 0;\n");
    sl_buf_init(&msgs, 1u << 16);
    rc = sl_migrate_scan(dir, &m, &msgs);
    is_int(rc, SL_ERR_CONFIG, "scan: bad names -> SL_ERR_CONFIG");
    has(text(&msgs), "x_bad.sql: a migration is named NNN_what.sql", "scan: names the bad file");
    sl_migrate_free(&m);
    sl_buf_free(&msgs);
    rm(dir, "x_bad.sql");
    sl_buf_init(&msgs, 1u << 16);
    rc = sl_migrate_scan(dir, &m, &msgs);
    is_int(rc, SL_ERR_CONFIG, "scan: duplicate numbers -> SL_ERR_CONFIG");
    has(text(&msgs), "have the same number 2", "scan: names the duplicates");
    sl_migrate_free(&m);
    sl_buf_free(&msgs);

    sl_buf_init(&msgs, 1u << 16);
    is_int(sl_migrate_scan("/nonexistent/schema", &m, &msgs), SL_ERR_CONFIG, "scan: missing dir");
    has(text(&msgs), "/nonexistent/schema: No such file", "scan: says so");
    sl_migrate_free(&m);
    sl_buf_free(&msgs);
    rm(dir, "001_first.sql");
    rm(dir, "002_second.sql");
    rm(dir, "2_again.sql");
    rm(dir, "010_tenth-x.y.sql");
    rm(dir, "README");
    rmdir(dir);
}

/* ---- a live server ------------------------------------------------------- */

static struct sl_db_settings live;

static struct sl_db *conn(void)
{
    struct sl_db *db = NULL;

    if (sl_db_thread(&live, &db) != SL_OK)
        return NULL;
    return db;
}

static int exec0(struct sl_db *db, const char *sql)
{
    int rc = sl_db_exec(db, sql, NULL, 0, NULL);

    if (rc != SL_OK)
        printf("#   %s: %s\n", sql, sl_db_last_error(db)->message);
    return rc;
}

static void live_setup(struct sl_db *db)
{
    exec0(db, "DROP TABLE IF EXISTS t_db");
    ok(exec0(db, "CREATE TABLE t_db (id INT NOT NULL PRIMARY KEY, s VARCHAR(255) NULL UNIQUE, "
             "j LONGTEXT NULL, m DECIMAL(20,10) NOT NULL DEFAULT 0, f DOUBLE NULL, "
             "ts DATETIME(6) NULL, dt DATE NULL, u BIGINT UNSIGNED NULL, b BOOLEAN NULL) "
             "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin") == SL_OK,
       "live: create a table");
}

static int query1(struct sl_db *db, const char *sql, const struct sl_db_param *p, size_t n)
{
    int row = 0, rc = sl_db_query(db, sql, p, n);

    if (rc == SL_OK)
        rc = sl_db_fetch(db, &row);
    if (rc != SL_OK)
        printf("#   %s: %s\n", sql, sl_db_last_error(db)->message);
    return rc == SL_OK && row ? SL_OK : SL_ERR_INTERNAL;
}

static const char hostile[] = "x'); DROP TABLE t_db; -- \\\" \xc3\xa9 ?";

static void live_types(struct sl_db *db)
{
    const long long t_us = 1767225600123456LL;   /* 2026-01-01 00:00:00.123456 UTC */
    struct sl_db_param p[] = {
        sl_db_int(1), sl_db_text(hostile), sl_db_text("{\"a\": [1, 2]}"), sl_db_text("0.1000000001"),
        sl_db_double(2.5), sl_db_time_us(t_us), sl_db_text("2026-02-03"),
        sl_db_text("18446744073709551615"), sl_db_int(1),
    };
    struct sl_db_param id = sl_db_int(1);
    unsigned long long n = 0;
    long long us = 0;
    size_t len = 0;
    char *big;

    is_int(sl_db_exec(db, "INSERT INTO t_db (id, s, j, m, f, ts, dt, u, b) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      p, 9, &n), SL_OK, "live: insert with every parameter type");
    is_int(n, 1, "live: one row affected");
    if (query1(db, "SELECT id, s, j, m, f, ts, dt, u, b, NULL, COUNT(*) OVER () FROM t_db WHERE id = ?",
               &id, 1) != SL_OK) {
        ok(0, "live: select the row back");
        return;
    }
    is_int(sl_db_col_count(db), 11, "live: 11 columns");
    is_int(sl_db_col_int(db, 0), 1, "live: INT");
    is_str(sl_db_col_text(db, 1, &len), hostile, "live: a hostile string is stored as it is");
    is_int(len, strlen(hostile), "live: its length");
    is_str(sl_db_col_text(db, 2, NULL), "{\"a\": [1, 2]}", "live: LONGTEXT");
    is_str(sl_db_col_text(db, 3, NULL), "0.1000000001", "live: DECIMAL as exact text");
    ok(sl_db_col_double(db, 3) == 0.1000000001, "live: DECIMAL as a number");
    ok(sl_db_col_double(db, 4) == 2.5, "live: DOUBLE");
    is_str(sl_db_col_text(db, 5, NULL), "2026-01-01 00:00:00.123456", "live: DATETIME(6) as text (UTC)");
    ok(sl_db_col_time_us(db, 5, &us) == 1 && us == t_us, "live: DATETIME round trip in microseconds");
    is_str(sl_db_col_text(db, 6, NULL), "2026-02-03", "live: DATE as text");
    is_str(sl_db_col_text(db, 7, NULL), "18446744073709551615", "live: BIGINT UNSIGNED as text");
    is_int(sl_db_col_int(db, 8), 1, "live: BOOLEAN");
    ok(sl_db_col_is_null(db, 9) && sl_db_col_text(db, 9, NULL) == NULL && sl_db_col_int(db, 9) == 0,
       "live: NULL");
    ok(sl_db_col_is_null(db, 99), "live: a column past the end reads as NULL");
    sl_db_query_end(db);
    ok(query1(db, "SELECT COUNT(*) FROM t_db", NULL, 0) == SL_OK && sl_db_col_int(db, 0) == 1,
       "live: the table survived the hostile string");

    /* A value far beyond the first buffer. */
    if ((big = malloc(3u << 20)) != NULL) {
        struct sl_db_param b[] = { sl_db_textn(big, 3u << 20), sl_db_int(1) };

        memset(big, 'z', 3u << 20);
        is_int(sl_db_exec(db, "UPDATE t_db SET j = ? WHERE id = ?", b, 2, NULL), SL_OK, "live: 3 MiB value");
        ok(query1(db, "SELECT j FROM t_db WHERE id = ?", &id, 1) == SL_OK &&
           sl_db_col_text(db, 0, &len) != NULL && len == (3u << 20) &&
           memcmp(sl_db_col_text(db, 0, NULL), big, len) == 0, "live: 3 MiB value read back whole");
        free(big);
    }
    sl_db_query_end(db);
}

static void live_errors(struct sl_db *db)
{
    struct sl_db_param dup[] = { sl_db_int(2), sl_db_text(hostile) };
    char longs[300];
    struct sl_db_param toolong[2];
    const struct sl_db_error *e = sl_db_last_error(db);

    memset(longs, 'a', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    toolong[0] = sl_db_int(3);
    toolong[1] = sl_db_text(longs);
    is_int(sl_db_exec(db, "INSERT INTO t_db (id, s) VALUES (?, ?)", dup, 2, NULL), SL_ERR_DB,
           "live: duplicate -> SL_ERR_DB");
    is_int(e->kind, SL_DB_ERR_DUPLICATE, "live: kind duplicate");
    has(e->message, "duplicate value for unique key 's'", "live: names the key");
    ok(strstr(e->message, "DROP TABLE") == NULL, "live: not the value");
    is_str(e->sqlstate, "23000", "live: SQLSTATE");

    is_int(sl_db_exec(db, "INSERT INTO t_db (id, s) VALUES (?, ?)", dup, 1, NULL), SL_ERR_DB,
           "live: wrong parameter count -> SL_ERR_DB");
    has(e->message, "has 2 placeholders, 1 values given", "live: says so");
    is_int(sl_db_exec(db, "INSERT INTO t_db (id, s) VALUES (?, ?)", toolong, 2, NULL), SL_ERR_DB,
           "live: too long for the column (strict mode)");
    is_int(e->kind, SL_DB_ERR_STATEMENT, "live: kind statement");
    is_int(sl_db_query(db, "SELECT x FROM no_such_table", NULL, 0), SL_ERR_DB_UNAVAILABLE,
           "live: missing table -> SL_ERR_DB_UNAVAILABLE");
    is_int(e->kind, SL_DB_ERR_SCHEMA, "live: kind schema");
    is_int(sl_db_exec(db, "SELEC 1", NULL, 0, NULL), SL_ERR_DB, "live: syntax error");
    has(e->message, "prepare \"SELEC 1\"", "live: names the statement");
    is_int(sl_db_query(db, "DO 1", NULL, 0), SL_ERR_DB, "live: query without rows is an error");
    is_int(sl_db_exec(db, "SELECT 1", NULL, 0, NULL), SL_OK, "live: and the connection still works");
}

static void live_money(struct sl_db *db)
{
    struct sl_db_param tenth = sl_db_text("0.1"), tiny = sl_db_text("0.0000000001");
    int bad = 0;

    exec0(db, "INSERT INTO t_db (id, m) VALUES (4, 0)");
    for (int i = 0; i < 300; i++)
        bad |= sl_db_exec(db, "UPDATE t_db SET m = m + ? WHERE id = 4", &tiny, 1, NULL) != SL_OK;
    for (int i = 0; i < 7; i++)
        bad |= sl_db_exec(db, "UPDATE t_db SET m = m + ? WHERE id = 4", &tenth, 1, NULL) != SL_OK;
    ok(!bad && query1(db, "SELECT m FROM t_db WHERE id = 4", NULL, 0) == SL_OK &&
       strcmp(sl_db_col_text(db, 0, NULL), "0.7000000300") == 0,
       "live: 300 x 1e-10 + 7 x 0.1 is exactly 0.7000000300 (DECIMAL, atomic increments)");
    sl_db_query_end(db);
}

static long long count_id(struct sl_db *db, long long id)
{
    struct sl_db_param p = sl_db_int(id);

    return query1(db, "SELECT COUNT(*) FROM t_db WHERE id = ?", &p, 1) == SL_OK ? sl_db_col_int(db, 0) : -1;
}

static void live_txn(struct sl_db *db)
{
    is_int(sl_db_begin(db), SL_OK, "live: begin");
    exec0(db, "INSERT INTO t_db (id) VALUES (10)");
    is_int(sl_db_rollback(db), SL_OK, "live: rollback");
    is_int(count_id(db, 10), 0, "live: rolled back");
    sl_db_begin(db);
    exec0(db, "INSERT INTO t_db (id) VALUES (11)");
    is_int(sl_db_commit(db), SL_OK, "live: commit");
    is_int(count_id(db, 11), 1, "live: committed");
    is_int(sl_db_commit(db), SL_ERR_DB, "live: commit without begin is an error");
}

/* The connection's id, for KILL from another connection. */
static long long conn_id(struct sl_db *db)
{
    return query1(db, "SELECT CONNECTION_ID()", NULL, 0) == SL_OK ? sl_db_col_int(db, 0) : -1;
}

static void kill_conn(long long id)
{
    struct sl_db *other = NULL;
    struct sl_db_param p = sl_db_int(id);

    if (sl_db_open(&live, 0, &other, NULL) == SL_OK && sl_db_exec(other, "KILL ?", &p, 1, NULL) != SL_OK)
        printf("#   KILL: %s\n", sl_db_last_error(other)->message);
    sl_db_close(other);
    usleep(100000);
}

struct killer {
    long long id;
    int delay_ms;
};

static void *kill_later(void *arg)
{
    const struct killer *k = arg;

    usleep((useconds_t)k->delay_ms * 1000);
    kill_conn(k->id);
    return NULL;
}

static void live_lost(struct sl_db *db)
{
    struct killer k;
    pthread_t th;
    long long t0;
    int rc;

    /* Killed while idle (a restart, wait_timeout): seen before sending, so
     * even a write goes to a new connection. */
    exec0(db, "UPDATE t_db SET f = 1 WHERE id = 1");   /* cached: no prepare round trip */
    kill_conn(conn_id(db));
    is_int(sl_db_exec(db, "UPDATE t_db SET f = 1 WHERE id = 1", NULL, 0, NULL), SL_OK,
           "live: a write after the connection was killed goes to a new connection");
    kill_conn(conn_id(db));
    ok(query1(db, "SELECT 42", NULL, 0) == SL_OK && sl_db_col_int(db, 0) == 42,
       "live: so does a query");
    sl_db_query_end(db);

    /* Killed while the statement runs: a write is not sent again (the
     * server may have applied it), a query is. */
    k = (struct killer){ conn_id(db), 300 };
    pthread_create(&th, NULL, kill_later, &k);
    t0 = mono_ms();
    rc = sl_db_exec(db, "DO SLEEP(3)", NULL, 0, NULL);
    pthread_join(th, NULL);
    is_int(rc, SL_ERR_DB_UNAVAILABLE, "live: a write cut by a lost connection fails");
    ok(mono_ms() - t0 < 2000, "live: ... and is not sent again");
    is_int(sl_db_last_error(db)->kind, SL_DB_ERR_UNAVAILABLE, "live: kind unavailable");
    k = (struct killer){ conn_id(db), 300 };
    sl_db_query_end(db);
    pthread_create(&th, NULL, kill_later, &k);
    rc = query1(db, "SELECT SLEEP(1)", NULL, 0);
    pthread_join(th, NULL);
    ok(rc == SL_OK && sl_db_col_int(db, 0) == 0, "live: a query cut by a lost connection is retried");
    sl_db_query_end(db);
}

static void live_timeout(void)
{
    struct sl_db_settings quick = live;
    struct sl_db *db = NULL;
    long long t0;
    int rc;

    quick.read_timeout_ms = 1000;
    sl_db_thread(&quick, &db);
    t0 = mono_ms();
    rc = sl_db_query(db, "SELECT SLEEP(4)", NULL, 0);
    is_int(rc, SL_ERR_DB_UNAVAILABLE, "live: a statement over db_read_timeout_ms -> unavailable");
    ok(mono_ms() - t0 < 3000, "live: ... after about 1 s, not 4");
    printf("#   returned after %lld ms: %s\n", mono_ms() - t0, sl_db_last_error(db)->message);
    ok(query1(db, "SELECT 7", NULL, 0) == SL_OK && sl_db_col_int(db, 0) == 7,
       "live: then a fresh connection works");
    sl_db_query_end(db);
    sl_db_thread(&live, &db);   /* back to the usual settings: reconnects */
}

static void *adder(void *arg)
{
    struct sl_db_param tiny = sl_db_text("0.0000000001");
    struct sl_db *db = conn();
    int *bad = arg;

    for (int i = 0; db != NULL && i < 50; i++)
        if (sl_db_exec(db, "UPDATE t_db SET m = m + ? WHERE id = 5", &tiny, 1, NULL) != SL_OK)
            (*bad)++;
    if (db == NULL)
        (*bad)++;
    return NULL;   /* the thread's connection closes at exit */
}

static void live_threads(struct sl_db *db)
{
    pthread_t th[8];
    int bad[8] = { 0 }, nbad = 0;

    exec0(db, "INSERT INTO t_db (id, m) VALUES (5, 0)");
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, adder, &bad[i]);
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        nbad += bad[i];
    }
    ok(nbad == 0 && query1(db, "SELECT m FROM t_db WHERE id = 5", NULL, 0) == SL_OK &&
       strcmp(sl_db_col_text(db, 0, NULL), "0.0000000400") == 0,
       "live: 8 threads x 50 increments, each on its own connection: exact total");
    sl_db_query_end(db);
}

static void live_backoff(void)
{
    struct sl_db_settings dead = { "mysql://u:pw@127.0.0.1:1/d", 1000, 1000, 1000 };
    struct sl_db *db = NULL;
    long long t0;

    sl_db_thread(&dead, &db);
    is_int(sl_db_exec(db, "SELECT 1", NULL, 0, NULL), SL_ERR_DB_UNAVAILABLE, "backoff: refused -> unavailable");
    has(sl_db_last_error(db)->message, "cannot connect to mysql://u:***@127.0.0.1:1/d", "backoff: masked URL");
    t0 = mono_ms();
    is_int(sl_db_exec(db, "SELECT 1", NULL, 0, NULL), SL_ERR_DB_UNAVAILABLE, "backoff: again at once");
    has(sl_db_last_error(db)->message, "not retried", "backoff: without a new attempt");
    ok(mono_ms() - t0 < 100, "backoff: immediately");
    usleep(1100000);
    sl_db_exec(db, "SELECT 1", NULL, 0, NULL);
    ok(strstr(sl_db_last_error(db)->message, "not retried") == NULL, "backoff: retried after 1 s");
    sl_db_thread(&live, &db);
    is_int(sl_db_exec(db, "SELECT 1", NULL, 0, NULL), SL_OK, "backoff: another URL is tried at once");
}

static void live_script(struct sl_db *db)
{
    static const char bad[] = "CREATE TABLE IF NOT EXISTS t_s (a VARCHAR(9));\nINSERT INTO t_s VALUES (1);\n"
                              "INSERT INTO no_such VALUES (2);\nINSERT INTO t_s VALUES (3);\n";
    static const char good[] = "INSERT INTO t_s VALUES (4); -- a comment; with a semicolon\n"
                               "INSERT INTO t_s VALUES (';');\n/* end */\n";
    struct sl_db *m = NULL;
    struct sl_db_error err;
    unsigned done = 99;

    exec0(db, "DROP TABLE IF EXISTS t_s");
    is_int(sl_db_run_script(db, good, strlen(good), &done), SL_ERR_DB, "script: needs a multi-statement connection");
    if (!ok(sl_db_open(&live, SL_DB_MULTI_STATEMENTS, &m, &err) == SL_OK, "script: open"))
        return;
    is_int(sl_db_run_script(m, bad, strlen(bad), &done), SL_ERR_DB_UNAVAILABLE, "script: fails at the missing table");
    is_int(done, 2, "script: two statements ran");
    has(sl_db_last_error(m)->message, "statement 3:", "script: names statement 3");
    is_int(sl_db_run_script(m, good, strlen(good), &done), SL_OK, "script: comments and quoted ';'");
    is_int(done, 3, "script: two statements, and the comment after the last ';' counts as one");
    ok(query1(m, "SELECT COUNT(*) FROM t_s", NULL, 0) == SL_OK && sl_db_col_int(m, 0) == 3,
       "script: prepared statements work on the same connection");
    sl_db_query_end(m);
    exec0(m, "DROP TABLE t_s");
    sl_db_close(m);
}

static void test_live(const char *url)
{
    struct sl_db *db;

    live = (struct sl_db_settings){ url, 2000, 5000, 5000 };
    if (!ok((db = conn()) != NULL && sl_db_ping(db) == SL_OK, "live: connect and ping")) {
        if (db != NULL)
            printf("#   %s\n", sl_db_last_error(db)->message);
        return;
    }
    printf("# server %s\n", sl_db_server_version(db));
    live_setup(db);
    live_types(db);
    live_errors(db);
    live_money(db);
    live_txn(db);
    live_lost(db);
    live_timeout();
    live_threads(db);
    live_script(db);
    live_backoff();
    exec0(db, "DROP TABLE t_db");
    sl_db_thread_end();
}

int main(void)
{
    const char *url = getenv("SL_TEST_MARIADB_URL");

    sl_log_level = SL_LOG_ERROR;
    test_url_ok();
    test_url_errors();
    test_kinds();
    test_unconfigured();
    test_config_ok();
    test_config_defaults_env();
    test_config_errors();
    test_scan();
    if (url != NULL && *url != '\0')
        test_live(url);
    else
        printf("# SL_TEST_MARIADB_URL not set: the live-server part runs in the integration tests\n");
    sl_db_global_cleanup();
    return tap_done();
}

/* MariaDB: the only module that talks to MariaDB Connector/C (libmariadb).
 *
 * - database_url parsing and masking (sl_db_url_*);
 * - one connection per thread, opened on first use with short connect, read
 *   and write time-outs, reopened after a lost connection or a config change
 *   (sl_db_thread); a process-wide back-off keeps a dead server from costing
 *   every request a connect attempt;
 * - prepared statements only, through typed parameters and typed column
 *   getters: callers never put a value into SQL text (sl_db_exec, sl_db_query,
 *   sl_db_fetch, sl_db_col_*); statements are cached per connection;
 * - errors classified for callers (struct sl_db_error: unavailable, denied,
 *   schema missing, duplicate, statement) and translated to an sl_status;
 * - a multi-statement script runner for sluicectl's migrations.
 * Connector/C rules: mysql_library_init once (done here, under pthread_once),
 * a connection is used by one thread at a time, mysql_thread_end in every
 * thread that used the library (done by the thread-exit destructor).
 * Passwords never appear in messages: URLs are shown masked. */
#ifndef SL_DB_H
#define SL_DB_H

#include <stddef.h>
#include <string.h>

struct sl_config;

/* ---- database_url -------------------------------------------------------- */

/* mysql://user:password@host:port/database?socket=/path/mysqld.sock
 * (mariadb:// too). user, password, database and socket are percent-decoded;
 * the port defaults to 3306; host "localhost" means the server's default unix
 * socket (as the mysql client has it), "127.0.0.1" means TCP. */
struct sl_db_url {
    char *user;                  /* never empty */
    char *password;              /* NULL: none given ("" is an empty one) */
    char *host;                  /* "localhost" when the URL has none */
    unsigned port;               /* 3306 unless given */
    char *socket;                /* NULL: TCP, or localhost's default socket */
    char *database;              /* never empty */
    char *masked;                /* the URL as written with the password as "***" */
};

/* Parses url into *out (every string malloc'ed; free with sl_db_url_free,
 * also after a failure). SL_OK; SL_ERR_CONFIG with why (may be NULL) saying
 * what is wrong, without the password; SL_ERR_NOMEM. */
int sl_db_url_parse(const char *url, struct sl_db_url *out, char *why, size_t whylen);
void sl_db_url_free(struct sl_db_url *u);   /* zeroes *u; NULL-safe */

/* ---- settings and errors ------------------------------------------------- */

struct sl_db_settings {
    const char *url;             /* borrowed; NULL: no database configured */
    long connect_timeout_ms;     /* Connector/C counts whole seconds: rounded up */
    long read_timeout_ms;
    long write_timeout_ms;
};

/* database_url and the sluice_settings.db_*_timeout_ms of cfg (borrowed:
 * valid while the caller holds cfg). */
void sl_db_settings_from_config(const struct sl_config *cfg, struct sl_db_settings *out);

enum sl_db_errkind {
    SL_DB_ERR_NONE = 0,
    SL_DB_ERR_UNCONFIGURED,  /* no database_url */
    SL_DB_ERR_UNAVAILABLE,   /* cannot connect, connection lost, time-out, server shutting
                              * down, too many connections, read-only, deadlock: try again
                              * later; a request that needs the database fails closed (503) */
    SL_DB_ERR_DENIED,        /* access denied, unknown database, missing privilege: the
                              * operator must fix the URL or the grants */
    SL_DB_ERR_SCHEMA,        /* no such table or column: run `sluicectl migrate` */
    SL_DB_ERR_DUPLICATE,     /* a unique key already holds the value */
    SL_DB_ERR_STATEMENT,     /* the server refused the statement or its data (too long, CHECK
                              * failed, ...), or the statement is wrong: a caller's 400, or a bug */
    SL_DB_ERR_NOMEM
};

struct sl_db_error {
    int kind;                    /* enum sl_db_errkind */
    unsigned code;               /* the server's or the client library's error number, or 0 */
    char sqlstate[6];            /* "" when none */
    char message[512];           /* what failed and the library's text; no password, no
                                  * duplicate value (only the key's name) */
};

/* SL_ERR_DB_UNAVAILABLE for UNCONFIGURED, UNAVAILABLE, DENIED and SCHEMA
 * (the request cannot be served now, whatever it says); SL_ERR_DB for
 * DUPLICATE and STATEMENT; SL_ERR_NOMEM; SL_OK for NONE. */
int sl_db_errkind_status(int kind);

/* Human name of a kind: "unavailable", "denied", ... (static). */
const char *sl_db_errkind_name(int kind);

/* ---- connections --------------------------------------------------------- */

struct sl_db;   /* a connection and its statement cache; used by one thread at a time */

/* The calling thread's connection handle, created on first call (no I/O
 * here: the server is contacted by the first statement). s is copied; when
 * it differs from the settings the open connection was made with (a config
 * reload), the connection is closed and the next statement reconnects. The
 * handle belongs to the thread and is closed when the thread exits (or by
 * sl_db_thread_end). *out is borrowed. SL_OK, or SL_ERR_NOMEM. */
int sl_db_thread(const struct sl_db_settings *s, struct sl_db **out);

/* Closes the calling thread's connection now (and calls mysql_thread_end).
 * Optional: thread exit does the same. */
void sl_db_thread_end(void);

#define SL_DB_MULTI_STATEMENTS 1u   /* sl_db_open: allow sl_db_run_script */

/* A connection owned by the caller (sluicectl), opened now, without the
 * back-off. flags: SL_DB_MULTI_STATEMENTS or 0. On SL_OK *out is the
 * connection (free with sl_db_close); on failure *out is NULL and err (may
 * be NULL) says why. Returns an sl_status (see sl_db_errkind_status). */
int sl_db_open(const struct sl_db_settings *s, unsigned flags, struct sl_db **out,
               struct sl_db_error *err);
void sl_db_close(struct sl_db *db);   /* NULL-safe */

/* The last error on db (kind NONE after a success). Borrowed. */
const struct sl_db_error *sl_db_last_error(const struct sl_db *db);

/* Connects if needed and checks the server answers. An sl_status. */
int sl_db_ping(struct sl_db *db);

/* "10.11.6-MariaDB-..." once connected, else "". Borrowed. */
const char *sl_db_server_version(struct sl_db *db);

/* ---- statements ---------------------------------------------------------- */

enum sl_db_type { SL_DB_T_NULL, SL_DB_T_INT, SL_DB_T_DOUBLE, SL_DB_T_TEXT, SL_DB_T_TIME };

/* One '?' of a statement. Build them with the helpers below. */
struct sl_db_param {
    int type;                    /* enum sl_db_type */
    long long i;                 /* INT; TIME: microseconds since the epoch, UTC */
    double d;                    /* DOUBLE */
    const char *s;               /* TEXT (borrowed until the call returns) */
    size_t len;
};

static inline struct sl_db_param sl_db_null(void)
{
    struct sl_db_param p = { SL_DB_T_NULL, 0, 0, NULL, 0 };
    return p;
}
static inline struct sl_db_param sl_db_int(long long v)
{
    struct sl_db_param p = { SL_DB_T_INT, v, 0, NULL, 0 };
    return p;
}
static inline struct sl_db_param sl_db_double(double v)
{
    struct sl_db_param p = { SL_DB_T_DOUBLE, 0, v, NULL, 0 };
    return p;
}
/* A string; NULL is SQL NULL. Exact decimals (money) go as text: "0.0000001500". */
static inline struct sl_db_param sl_db_text(const char *s)
{
    struct sl_db_param p = { s ? SL_DB_T_TEXT : SL_DB_T_NULL, 0, 0, s, s ? strlen(s) : 0 };
    return p;
}
static inline struct sl_db_param sl_db_textn(const char *s, size_t n)
{
    struct sl_db_param p = { SL_DB_T_TEXT, 0, 0, s ? s : "", s ? n : 0 };
    return p;
}
/* A DATETIME from microseconds since the epoch (UTC). */
static inline struct sl_db_param sl_db_time_us(long long us)
{
    struct sl_db_param p = { SL_DB_T_TIME, us, 0, NULL, 0 };
    return p;
}

/* Runs a statement without a result set (INSERT, UPDATE, DELETE, ...) with
 * n parameters. sql is constant text with '?' placeholders; it is prepared
 * once per connection and cached by its text. *affected (may be NULL) gets
 * the rows changed. Not retried after a lost connection: the server may have
 * applied it (the caller knows whether it is idempotent). An sl_status; the
 * details are in sl_db_last_error. */
int sl_db_exec(struct sl_db *db, const char *sql, const struct sl_db_param *params, size_t n,
               unsigned long long *affected);

/* Runs a statement with a result set (SELECT). The whole result is read into
 * the client (use LIMIT), then read row by row with sl_db_fetch; it lasts
 * until sl_db_query_end or the next statement on db. Retried once on a fresh
 * connection when the connection turns out lost (outside transactions). */
int sl_db_query(struct sl_db *db, const char *sql, const struct sl_db_param *params, size_t n);

/* Moves to the next row: *row = 1, or 0 after the last one. An sl_status. */
int sl_db_fetch(struct sl_db *db, int *row);

/* Columns of the current row, 0-based. NULL reads as 0 / 0.0 / NULL text;
 * out-of-range columns read as NULL. Integers, floating point, DECIMAL (as
 * its exact text), strings, JSON, DATE/DATETIME (text "YYYY-MM-DD
 * HH:MM:SS.ffffff") all read as text; numbers and decimal text as numbers. */
unsigned sl_db_col_count(const struct sl_db *db);
int sl_db_col_is_null(const struct sl_db *db, unsigned col);
long long sl_db_col_int(const struct sl_db *db, unsigned col);
double sl_db_col_double(const struct sl_db *db, unsigned col);
/* Borrowed until the next fetch; NUL-terminated (binary data may hold NULs:
 * use *len, which may be NULL). NULL for SQL NULL. */
const char *sl_db_col_text(const struct sl_db *db, unsigned col, size_t *len);
/* A DATE/DATETIME/TIMESTAMP column as microseconds since the epoch (values
 * are UTC): 1 with *us set, or 0 for NULL or a column of another type. */
int sl_db_col_time_us(const struct sl_db *db, unsigned col, long long *us);

/* Frees the current result (NULL-safe, idempotent). */
void sl_db_query_end(struct sl_db *db);

/* Transactions (autocommit is on otherwise). A lost connection inside one
 * loses the transaction: the next statement fails instead of reconnecting
 * silently, and rollback then resets the handle. Each an sl_status. */
int sl_db_begin(struct sl_db *db);
int sl_db_commit(struct sl_db *db);
int sl_db_rollback(struct sl_db *db);

/* ---- scripts (migrations) ------------------------------------------------ */

/* Sends sql (len bytes, one or more ';'-separated statements, no client
 * commands such as DELIMITER) in one go and reads every result. Needs a
 * connection from sl_db_open with SL_DB_MULTI_STATEMENTS. *done (may be
 * NULL) gets how many statements succeeded; on failure the error message
 * names the statement number (1-based). An sl_status. */
int sl_db_run_script(struct sl_db *db, const char *sql, size_t len, unsigned *done);

/* ---- process ------------------------------------------------------------- */

/* Releases the client library after every thread using it ended (for clean
 * leak checks; optional). */
void sl_db_global_cleanup(void);

#endif

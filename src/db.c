/* MariaDB through Connector/C: database_url parsing, per-thread connections
 * with time-outs and a process-wide back-off, cached prepared statements with
 * typed parameters and columns, error classification, and the script runner
 * sluicectl migrates with. What the tables mean is up to the callers (keys,
 * spend, the management API); this module only moves typed values safely. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* strcasecmp, strndup with any -std */
#endif
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "status.h"

#define DEFAULT_PORT     3306
#define STMT_CACHE       32            /* prepared statements kept per connection */
#define MAX_PARAMS       65535         /* the protocol's limit */
#define MAX_COLS         4096          /* InnoDB allows 1017 columns per table */
#define MAX_VALUE_BYTES  (64u << 20)   /* one column value (LONGTEXT could be 4 GiB) */
#define FIRST_TEXT_CAP   256           /* a text column's first buffer; grown on demand */
#define IDLE_PING_MS     30000         /* ping a connection idle this long before reuse */
#define RETRY_AFTER_MS   1000          /* after a failed connect, fail fast this long */

/* Every connection starts with these: UTC (DATETIME columns hold UTC), and
 * a strict mode that refuses bad data instead of truncating it. */
#define INIT_COMMAND "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE," \
                     "NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"

enum { COL_INT, COL_DOUBLE, COL_TIME, COL_TEXT };

struct stmt {
    MYSQL_STMT *h;               /* NULL: free slot */
    char *sql;                   /* owned copy: the cache key */
    unsigned long long used;     /* db->tick at last use, for eviction */
};

struct col {
    int kind;                    /* COL_* */
    long long i;
    double d;
    MYSQL_TIME t;
    char *buf;                   /* COL_TEXT: owned, cap bytes */
    unsigned long cap, len;
    my_bool is_null, error;
    unsigned decimals;           /* COL_TIME: fraction digits to print */
    int is_date;                 /* COL_TIME: a DATE */
    char text[48];               /* the other kinds as text, set at fetch */
};

struct sl_db {
    MYSQL *my;                   /* NULL: not connected */
    struct sl_db_settings s;     /* s.url points to url (owned) */
    char *url;
    unsigned flags;              /* SL_DB_MULTI_STATEMENTS */
    int thread_owned;            /* from sl_db_thread: the back-off applies */
    int in_txn, txn_lost;
    long long last_used_us;
    unsigned long long tick;
    struct stmt cache[STMT_CACHE];
    MYSQL_BIND *pbind;           /* parameters: binds, lengths, times (capacity pcap) */
    unsigned long *plen;
    MYSQL_TIME *ptime;
    size_t pcap;
    struct stmt *cur;            /* the statement whose result is open, or NULL */
    MYSQL_BIND *rbind;           /* its columns (capacity ccap) */
    struct col *cols;
    unsigned ncols, ccap;
    struct sl_db_error err;
    char version[96];
};

/* ---- small helpers ------------------------------------------------------- */

static long long now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static unsigned int secs(long ms)
{
    if (ms <= 0)
        return 1;
    return (unsigned int)((ms + 999) / 1000);
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard
 * Hinnant's algorithms): no time zone, no timegm. */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    long long era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
    long long era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

/* ---- database_url -------------------------------------------------------- */

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

/* Percent-decodes s[0..n) into a new string. 0, -1 bad escape or NUL, -2 OOM. */
static int pct_decode(const char *s, size_t n, char **out)
{
    char *d = malloc(n + 1), *p = d;

    *out = NULL;
    if (d == NULL)
        return -2;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *p++ = s[i];
            continue;
        }
        if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0 ||
            (hexval(s[i + 1]) | hexval(s[i + 2])) == 0) {
            free(d);
            return -1;
        }
        *p++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
        i += 2;
    }
    *p = '\0';
    *out = d;
    return 0;
}

static void say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

/* "user[:password]" -> out->user, out->password. 0, or -1 (why set), -2 OOM. */
static int parse_userinfo(const char *s, size_t n, struct sl_db_url *out, char *why, size_t wl)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    int rc;

    if ((rc = pct_decode(s, ulen, &out->user)) != 0) {
        if (rc == -1)
            say(why, wl, "the user name has a bad %%-escape");
        return rc;
    }
    if (*out->user == '\0') {
        say(why, wl, "no user name (mysql://USER:PASSWORD@HOST:PORT/DATABASE)");
        return -1;
    }
    if (colon != NULL && (rc = pct_decode(colon + 1, n - ulen - 1, &out->password)) != 0) {
        if (rc == -1)
            say(why, wl, "the password has a bad %%-escape (write a literal %% as %%25)");
        return rc;
    }
    return 0;
}

/* "host[:port]" or "[v6]:port"; empty means localhost. */
static int parse_hostport(const char *s, size_t n, struct sl_db_url *out, char *why, size_t wl)
{
    const char *h = s, *port = NULL;
    size_t hlen = n;

    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);

        if (rb == NULL || rb == s + 1 || (rb + 1 < s + n && rb[1] != ':')) {
            say(why, wl, "a bad [IPv6 address]");
            return -1;
        }
        h = s + 1;
        hlen = (size_t)(rb - h);
        port = rb + 1 < s + n ? rb + 2 : NULL;
    } else if ((port = memchr(s, ':', n)) != NULL) {
        hlen = (size_t)(port - s);
        port++;
    }
    if (port != NULL) {
        size_t plen = (size_t)(s + n - port);
        long p = 0;

        for (size_t i = 0; i < plen && p <= 65535; i++)
            p = (port[i] >= '0' && port[i] <= '9') ? p * 10 + (port[i] - '0') : 70000;
        if (plen == 0 || p < 1 || p > 65535) {
            say(why, wl, "the port must be a number from 1 to 65535");
            return -1;
        }
        out->port = (unsigned)p;
    }
    if (memchr(h, '%', hlen) != NULL || memchr(h, '@', hlen) != NULL) {
        say(why, wl, "a bad host name");
        return -1;
    }
    out->host = hlen ? strndup(h, hlen) : strdup("localhost");
    return out->host ? 0 : -2;
}

/* "?socket=...": the only parameter so far; others are refused so that a
 * parameter we do not honour (say, TLS settings) is never silently ignored. */
static int parse_query(const char *q, struct sl_db_url *out, char *why, size_t wl)
{
    while (*q != '\0') {
        size_t n = strcspn(q, "&"), k = strcspn(q, "=&");
        int rc;

        if (n == 0) {
            q++;
            continue;
        }
        if (k == 6 && strncmp(q, "socket", 6) == 0 && k < n) {
            free(out->socket);
            if ((rc = pct_decode(q + 7, n - 7, &out->socket)) != 0) {
                if (rc == -1)
                    say(why, wl, "the socket path has a bad %%-escape");
                return rc;
            }
            if (out->socket[0] != '/') {
                say(why, wl, "socket= needs an absolute path");
                return -1;
            }
        } else {
            say(why, wl, "unknown parameter '%.*s' (only socket= is supported)",
                (int)(k > 40 ? 40 : k), q);
            return -1;
        }
        q += n + (q[n] == '&');
    }
    return 0;
}

/* The URL as written, with the password part replaced by "***". */
static int make_masked(const char *url, const char *pw, size_t pwlen, struct sl_db_url *out)
{
    size_t n = strlen(url), head = pw ? (size_t)(pw - url) : n;

    if ((out->masked = malloc(n + 4)) == NULL)
        return -2;
    memcpy(out->masked, url, head);
    if (pw != NULL) {
        memcpy(out->masked + head, "***", 3);
        memcpy(out->masked + head + 3, pw + pwlen, n - head - pwlen + 1);
    } else {
        out->masked[n] = '\0';
    }
    return 0;
}

int sl_db_url_parse(const char *url, struct sl_db_url *out, char *why, size_t wl)
{
    const char *p, *q, *at = NULL, *slash, *auth_end, *pw = NULL;
    size_t pwlen = 0;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->port = DEFAULT_PORT;
    say(why, wl, "invalid");
    if (strncasecmp(url, "mysql://", 8) == 0)
        p = url + 8;
    else if (strncasecmp(url, "mariadb://", 10) == 0)
        p = url + 10;
    else {
        say(why, wl, "expected mysql://user:password@host:port/database (or mariadb://)%s",
            strstr(url, "://") != NULL ? ": this scheme is not MariaDB" : "");
        return SL_ERR_CONFIG;
    }
    /* The authority ends at the last '@' before the query, so a password
     * with a raw '/' or '@' still parses; '?' and '#' must be escaped. */
    q = p + strcspn(p, "?#");
    for (const char *c = p; c < q; c++)
        if (*c == '@')
            at = c;
    auth_end = at ? at + 1 : p;
    slash = memchr(auth_end, '/', (size_t)(q - auth_end));
    if (*q == '#') {
        say(why, wl, "a '#' must be written %%23");
        goto out;
    }
    if (at == NULL) {
        say(why, wl, "no user name (mysql://USER:PASSWORD@HOST:PORT/DATABASE)");
        goto out;
    }
    if ((rc = parse_userinfo(p, (size_t)(at - p), out, why, wl)) != 0)
        goto out;
    if (out->password != NULL) {
        pw = memchr(p, ':', (size_t)(at - p)) + 1;
        pwlen = (size_t)(at - pw);
    }
    rc = parse_hostport(auth_end, (size_t)((slash ? slash : q) - auth_end), out, why, wl);
    if (rc != 0)
        goto out;
    if (slash == NULL || slash + 1 == q) {
        say(why, wl, "no database name (mysql://USER:PASSWORD@HOST:PORT/DATABASE)");
        rc = -1;
        goto out;
    }
    if ((rc = pct_decode(slash + 1, (size_t)(q - slash - 1), &out->database)) != 0 ||
        strchr(out->database, '/') != NULL) {
        if (rc != -2)
            say(why, wl, "a bad database name");
        rc = rc ? rc : -1;
        goto out;
    }
    if (*q == '?' && (rc = parse_query(q + 1, out, why, wl)) != 0)
        goto out;
    rc = make_masked(url, pw, pwlen, out);
out:
    if (rc == 0)
        return SL_OK;
    if (rc == -2)
        say(why, wl, "out of memory");
    return rc == -2 ? SL_ERR_NOMEM : SL_ERR_CONFIG;
}

void sl_db_url_free(struct sl_db_url *u)
{
    if (u == NULL)
        return;
    free(u->user);
    if (u->password != NULL) {
        /* Not a guarantee (copies exist in libmariadb), but no need to leave
         * it in freed heap either. */
        memset(u->password, 0, strlen(u->password));
        free(u->password);
    }
    free(u->host);
    free(u->socket);
    free(u->database);
    free(u->masked);
    memset(u, 0, sizeof(*u));
}

/* ---- errors -------------------------------------------------------------- */

static const char *const kind_names[] = {
    "none", "unconfigured", "unavailable", "denied", "schema", "duplicate", "statement", "nomem",
};

const char *sl_db_errkind_name(int kind)
{
    if (kind < 0 || kind > SL_DB_ERR_NOMEM)
        return "unknown";
    return kind_names[kind];
}

int sl_db_errkind_status(int kind)
{
    switch (kind) {
    case SL_DB_ERR_NONE: return SL_OK;
    case SL_DB_ERR_NOMEM: return SL_ERR_NOMEM;
    case SL_DB_ERR_DUPLICATE:
    case SL_DB_ERR_STATEMENT: return SL_ERR_DB;
    default: return SL_ERR_DB_UNAVAILABLE;
    }
}

/* What a server or client error number means for the caller. */
static int classify(unsigned code)
{
    switch (code) {
    case CR_SOCKET_CREATE_ERROR: case CR_CONNECTION_ERROR: case CR_CONN_HOST_ERROR:
    case CR_IPSOCK_ERROR: case CR_UNKNOWN_HOST: case CR_SERVER_GONE_ERROR:
    case CR_SERVER_HANDSHAKE_ERR: case CR_SERVER_LOST: case CR_SERVER_LOST_EXTENDED:
    case CR_SSL_CONNECTION_ERROR: case CR_MALFORMED_PACKET: case CR_ERR_NET_READ:
    case CR_ERR_NET_WRITE: case CR_VERSION_ERROR: case CR_WRONG_HOST_INFO:
    case ER_CON_COUNT_ERROR: case ER_TOO_MANY_USER_CONNECTIONS: case ER_OUT_OF_RESOURCES:
    case ER_SERVER_SHUTDOWN: case ER_NORMAL_SHUTDOWN: case ER_SHUTDOWN_COMPLETE:
    case ER_CONNECTION_KILLED: case ER_QUERY_INTERRUPTED: case ER_STATEMENT_TIMEOUT:
    case ER_LOCK_WAIT_TIMEOUT: case ER_LOCK_DEADLOCK: case ER_OPTION_PREVENTS_STATEMENT:
    case ER_READ_ONLY_MODE: case ER_UNKNOWN_COM_ERROR: case ER_ABORTING_CONNECTION:
    case ER_NET_READ_ERROR: case ER_NET_READ_INTERRUPTED: case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED: case ER_HOST_IS_BLOCKED: case ER_LOCK_TABLE_FULL:
        return SL_DB_ERR_UNAVAILABLE;
    case ER_ACCESS_DENIED_ERROR: case ER_DBACCESS_DENIED_ERROR: case ER_BAD_DB_ERROR:
    case ER_HOST_NOT_PRIVILEGED: case ER_TABLEACCESS_DENIED_ERROR:
    case ER_COLUMNACCESS_DENIED_ERROR: case ER_SPECIFIC_ACCESS_DENIED_ERROR:
    case ER_ACCESS_DENIED_NO_PASSWORD_ERROR: case CR_AUTH_PLUGIN_CANNOT_LOAD:
    case CR_AUTH_PLUGIN_ERR: case ER_PASSWORD_NO_MATCH:
        return SL_DB_ERR_DENIED;
    case ER_NO_SUCH_TABLE: case ER_BAD_FIELD_ERROR: case ER_BAD_TABLE_ERROR:
        return SL_DB_ERR_SCHEMA;
    case ER_DUP_ENTRY: case ER_DUP_ENTRY_WITH_KEY_NAME: case ER_DUP_UNIQUE:
        return SL_DB_ERR_DUPLICATE;
    case CR_OUT_OF_MEMORY: case ER_OUTOFMEMORY: case ER_OUT_OF_SORTMEMORY:
        return SL_DB_ERR_NOMEM;
    default:
        return SL_DB_ERR_STATEMENT;
    }
}

/* A lost connection: the handle must be closed and a new one opened. */
static int is_lost(unsigned code)
{
    return code == CR_SERVER_GONE_ERROR || code == CR_SERVER_LOST ||
           code == CR_SERVER_LOST_EXTENDED || code == CR_ERR_NET_READ ||
           code == CR_ERR_NET_WRITE || code == ER_CONNECTION_KILLED ||
           code == ER_SERVER_SHUTDOWN || code == ER_NORMAL_SHUTDOWN || code == CR_MALFORMED_PACKET;
}

/* "Duplicate entry 'VALUE' for key 'NAME'": the value may be a key hash or
 * anything a caller stored, so only the key's name is kept. */
static void scrub_duplicate(char *msg, size_t size)
{
    const char *k = strstr(msg, "for key '");
    char name[128];

    if (k == NULL) {
        snprintf(msg, size, "duplicate value for a unique key");
        return;
    }
    snprintf(name, sizeof(name), "%s", k + 9);
    name[strcspn(name, "'")] = '\0';
    snprintf(msg, size, "duplicate value for unique key '%s'", name);
}

static int set_err(struct sl_db *db, int kind, unsigned code, const char *state,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Records an error on db; returns its sl_status. */
static int set_err(struct sl_db *db, int kind, unsigned code, const char *state,
                   const char *fmt, ...)
{
    va_list ap;

    db->err.kind = kind;
    db->err.code = code;
    snprintf(db->err.sqlstate, sizeof(db->err.sqlstate), "%s", state ? state : "");
    va_start(ap, fmt);
    vsnprintf(db->err.message, sizeof(db->err.message), fmt, ap);
    va_end(ap);
    return sl_db_errkind_status(kind);
}

/* Records the library's error about what (a statement handle's if st is
 * set, else the connection's). */
static int lib_err(struct sl_db *db, MYSQL_STMT *st, const char *what)
{
    unsigned code = st ? mysql_stmt_errno(st) : mysql_errno(db->my);
    const char *msg = st ? mysql_stmt_error(st) : mysql_error(db->my);
    const char *state = st ? mysql_stmt_sqlstate(st) : mysql_sqlstate(db->my);
    int kind = code ? classify(code) : SL_DB_ERR_STATEMENT;
    char text[400];

    snprintf(text, sizeof(text), "%s", msg && *msg ? msg : "unknown error");
    if (kind == SL_DB_ERR_DUPLICATE)
        scrub_duplicate(text, sizeof(text));
    return set_err(db, kind, code, state, "%s: %s (%u)", what, text, code);
}

const struct sl_db_error *sl_db_last_error(const struct sl_db *db)
{
    return &db->err;
}

/* ---- the library, threads and the back-off ---------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_ok;                     /* set once under lib_once */
static pthread_key_t thread_key;

static void thread_dtor(void *p)
{
    sl_db_close(p);
    mysql_thread_end();
}

static void lib_init(void)
{
    /* mysql_library_init is not thread-safe: pthread_once makes it so. */
    int ok = mysql_library_init(0, NULL, NULL) == 0 &&
             pthread_key_create(&thread_key, thread_dtor) == 0;

    __atomic_store_n(&lib_ok, ok, __ATOMIC_RELEASE);
}

static int library(void)
{
    pthread_once(&lib_once, lib_init);
    return lib_ok;
}

/* Whether the library was set up, without setting it up. */
static int library_started(void)
{
    return __atomic_load_n(&lib_ok, __ATOMIC_ACQUIRE);
}

void sl_db_global_cleanup(void)
{
    if (library_started()) {
        sl_db_thread_end();
        mysql_library_end();
    }
}

/* After a failed connect from a request thread, other threads fail at once
 * for RETRY_AFTER_MS instead of each waiting out a connect time-out: a dead
 * database must not stall every request. Keyed by URL, so a config reload to
 * another server is tried at once. */
static struct {
    pthread_mutex_t lock;
    long long until_us;
    char *url;                         /* owned; the URL that failed */
    char msg[sizeof(((struct sl_db_error *)0)->message)];
    int kind;
} backoff = { PTHREAD_MUTEX_INITIALIZER, 0, NULL, "", 0 };

/* 1 (and *db's error set) while the back-off for db's URL runs. */
static int backoff_active(struct sl_db *db)
{
    int on;

    pthread_mutex_lock(&backoff.lock);
    on = backoff.url != NULL && strcmp(backoff.url, db->url) == 0 && now_us() < backoff.until_us;
    if (on)
        set_err(db, backoff.kind, 0, "", "%s (not retried for %d ms)", backoff.msg, RETRY_AFTER_MS);
    pthread_mutex_unlock(&backoff.lock);
    return on;
}

static void backoff_update(struct sl_db *db, int failed)
{
    int was_down;

    pthread_mutex_lock(&backoff.lock);
    was_down = backoff.url != NULL && strcmp(backoff.url, db->url) == 0;
    if (failed) {
        free(backoff.url);
        backoff.url = strdup(db->url);   /* NULL on OOM: no back-off, no harm */
        backoff.until_us = now_us() + RETRY_AFTER_MS * 1000LL;
        backoff.kind = db->err.kind;
        snprintf(backoff.msg, sizeof(backoff.msg), "%s", db->err.message);
    } else if (was_down) {
        free(backoff.url);
        backoff.url = NULL;
    }
    pthread_mutex_unlock(&backoff.lock);
    /* One line per failed attempt (at most one a second per process), and
     * one when the database is back. */
    if (failed)
        sl_log(SL_LOG_ERROR, NULL, "database %s: %s; requests that need it fail for the next %d ms",
               sl_db_errkind_name(db->err.kind), db->err.message, RETRY_AFTER_MS);
    else if (was_down)
        sl_log(SL_LOG_INFO, NULL, "database reachable again");
}

/* ---- connections --------------------------------------------------------- */

static void close_stmts(struct sl_db *db)
{
    sl_db_query_end(db);
    for (int i = 0; i < STMT_CACHE; i++) {
        if (db->cache[i].h != NULL)
            mysql_stmt_close(db->cache[i].h);
        free(db->cache[i].sql);
        db->cache[i].h = NULL;
        db->cache[i].sql = NULL;
    }
}

static void disconnect(struct sl_db *db)
{
    close_stmts(db);
    if (db->my != NULL)
        mysql_close(db->my);
    db->my = NULL;
    if (db->in_txn)
        db->txn_lost = 1;   /* the next statement must not run outside it */
    db->version[0] = '\0';
}

static void set_options(struct sl_db *db, MYSQL *my)
{
    unsigned int ct = secs(db->s.connect_timeout_ms), rt = secs(db->s.read_timeout_ms);
    unsigned int wt = secs(db->s.write_timeout_ms), no = 0;

    mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_options(my, MYSQL_OPT_READ_TIMEOUT, &rt);
    mysql_options(my, MYSQL_OPT_WRITE_TIMEOUT, &wt);
    mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(my, MYSQL_INIT_COMMAND, INIT_COMMAND);
    mysql_options(my, MYSQL_OPT_LOCAL_INFILE, &no);   /* no LOAD DATA LOCAL, ever */
}

/* Opens db->my from db->s. An sl_status; the error is on db. */
static int db_connect(struct sl_db *db)
{
    struct sl_db_url u;
    char why[256];
    unsigned long flags = CLIENT_FOUND_ROWS;
    int rc;

    if (db->s.url == NULL)
        return set_err(db, SL_DB_ERR_UNCONFIGURED, 0, "",
                       "no database configured (general_settings.database_url or $DATABASE_URL)");
    if ((rc = sl_db_url_parse(db->s.url, &u, why, sizeof(why))) != SL_OK) {
        sl_db_url_free(&u);
        if (rc == SL_ERR_NOMEM)
            return set_err(db, SL_DB_ERR_NOMEM, 0, "", "out of memory");
        return set_err(db, SL_DB_ERR_UNCONFIGURED, 0, "", "database_url: %s", why);
    }
    if (db->thread_owned && backoff_active(db)) {
        sl_db_url_free(&u);
        return sl_db_errkind_status(db->err.kind);
    }
    if (!library() || (db->my = mysql_init(NULL)) == NULL) {
        sl_db_url_free(&u);
        return set_err(db, SL_DB_ERR_NOMEM, 0, "", "cannot initialise the MariaDB client library");
    }
    set_options(db, db->my);
    if (db->flags & SL_DB_MULTI_STATEMENTS)
        flags |= CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS;
    /* With a socket the host must be NULL ("localhost"): Connector/C picks
     * the transport from the host. */
    if (mysql_real_connect(db->my, u.socket ? NULL : u.host, u.user, u.password ? u.password : "",
                           u.database, u.port, u.socket, flags) == NULL) {
        char what[300];

        snprintf(what, sizeof(what), "cannot connect to %s", u.masked);
        rc = lib_err(db, NULL, what);
        mysql_close(db->my);
        db->my = NULL;
    } else {
        snprintf(db->version, sizeof(db->version), "%s", mysql_get_server_info(db->my));
        db->err.kind = SL_DB_ERR_NONE;
        rc = SL_OK;
    }
    sl_db_url_free(&u);
    if (db->thread_owned && rc != SL_ERR_NOMEM)
        backoff_update(db, rc != SL_OK);
    return rc;
}

/* The protocol is strictly question and answer: between statements nothing
 * may arrive. Anything readable means the server closed the connection (a
 * restart, wait_timeout, KILL) or sent its last error before doing so. */
static int peer_closed(MYSQL *my)
{
    struct pollfd p = { (int)mysql_get_socket(my), POLLIN, 0 };

    return p.fd >= 0 && poll(&p, 1, 0) > 0;
}

/* Makes sure db has a live connection: opens one, or checks one that may
 * have died meanwhile and reopens it. Finding out here, before anything is
 * sent, is what lets a write go to a new connection safely. A connection
 * idle for long is also pinged: a proxy or firewall may drop it silently. */
static int ensure(struct sl_db *db)
{
    if (db->txn_lost)
        return set_err(db, SL_DB_ERR_UNAVAILABLE, CR_SERVER_LOST, "",
                       "the connection was lost inside a transaction; roll back and start again");
    if (db->my != NULL && !db->in_txn &&
        (peer_closed(db->my) ||
         (now_us() - db->last_used_us > IDLE_PING_MS * 1000LL && mysql_ping(db->my) != 0)))
        disconnect(db);
    if (db->my == NULL && db_connect(db) != SL_OK)
        return sl_db_errkind_status(db->err.kind);
    db->last_used_us = now_us();
    return SL_OK;
}

static int copy_settings(struct sl_db *db, const struct sl_db_settings *s)
{
    char *url = s->url ? strdup(s->url) : NULL;

    if (s->url != NULL && url == NULL)
        return SL_ERR_NOMEM;
    free(db->url);
    db->url = url;
    db->s = *s;
    db->s.url = url;
    return SL_OK;
}

static int same_settings(const struct sl_db *db, const struct sl_db_settings *s)
{
    return ((db->url == NULL && s->url == NULL) ||
            (db->url != NULL && s->url != NULL && strcmp(db->url, s->url) == 0)) &&
           db->s.connect_timeout_ms == s->connect_timeout_ms &&
           db->s.read_timeout_ms == s->read_timeout_ms &&
           db->s.write_timeout_ms == s->write_timeout_ms;
}

static struct sl_db *db_new(const struct sl_db_settings *s, unsigned flags)
{
    struct sl_db *db = calloc(1, sizeof(*db));

    if (db == NULL || copy_settings(db, s) != SL_OK) {
        free(db);
        return NULL;
    }
    db->flags = flags;
    return db;
}

int sl_db_thread(const struct sl_db_settings *s, struct sl_db **out)
{
    struct sl_db *db;

    *out = NULL;
    if (!library())
        return SL_ERR_NOMEM;
    if ((db = pthread_getspecific(thread_key)) == NULL) {
        mysql_thread_init();
        if ((db = db_new(s, 0)) == NULL)
            return SL_ERR_NOMEM;
        db->thread_owned = 1;
        if (pthread_setspecific(thread_key, db) != 0) {
            sl_db_close(db);
            return SL_ERR_NOMEM;
        }
    } else if (!same_settings(db, s)) {
        /* A reload changed the database: the old connection goes. */
        disconnect(db);
        db->in_txn = db->txn_lost = 0;
        if (copy_settings(db, s) != SL_OK)
            return SL_ERR_NOMEM;
    }
    *out = db;
    return SL_OK;
}

void sl_db_thread_end(void)
{
    struct sl_db *db;

    if (!library_started() || (db = pthread_getspecific(thread_key)) == NULL)
        return;
    pthread_setspecific(thread_key, NULL);
    thread_dtor(db);
}

int sl_db_open(const struct sl_db_settings *s, unsigned flags, struct sl_db **out,
               struct sl_db_error *err)
{
    struct sl_db *db = db_new(s, flags);
    int rc;

    *out = NULL;
    if (db == NULL) {
        if (err != NULL)
            *err = (struct sl_db_error){ SL_DB_ERR_NOMEM, 0, "", "out of memory" };
        return SL_ERR_NOMEM;
    }
    if ((rc = db_connect(db)) != SL_OK) {
        if (err != NULL)
            *err = db->err;
        sl_db_close(db);
        return rc;
    }
    if (err != NULL)
        memset(err, 0, sizeof(*err));
    *out = db;
    return SL_OK;
}

void sl_db_close(struct sl_db *db)
{
    if (db == NULL)
        return;
    disconnect(db);
    free(db->pbind);
    free(db->plen);
    free(db->ptime);
    for (unsigned i = 0; i < db->ccap; i++)
        free(db->cols[i].buf);
    free(db->cols);
    free(db->rbind);
    free(db->url);
    free(db);
}

int sl_db_ping(struct sl_db *db)
{
    int rc;

    if ((rc = ensure(db)) != SL_OK)
        return rc;
    if (mysql_ping(db->my) != 0) {
        rc = lib_err(db, NULL, "ping");
        disconnect(db);
        return rc;
    }
    db->err.kind = SL_DB_ERR_NONE;
    return SL_OK;
}

const char *sl_db_server_version(struct sl_db *db)
{
    return db->version;
}

void sl_db_settings_from_config(const struct sl_config *cfg, struct sl_db_settings *out)
{
    out->url = cfg->database_url;
    out->connect_timeout_ms = cfg->db_connect_timeout_ms;
    out->read_timeout_ms = cfg->db_read_timeout_ms;
    out->write_timeout_ms = cfg->db_write_timeout_ms;
}

/* ---- statements ---------------------------------------------------------- */

/* A statement's first characters, for messages: the SQL is the caller's
 * constant text (values travel as parameters), so it is safe to show. */
static const char *sql_head(const char *sql, char *buf, size_t size)
{
    size_t n = 0;

    for (const char *p = sql; *p != '\0' && n + 4 < size; p++)
        buf[n++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
    if (n + 4 >= size)
        memcpy(buf + n, "...", 3), n += 3;
    buf[n] = '\0';
    return buf;
}

static void drop_stmt(struct sl_db *db, struct stmt *st)
{
    if (db->cur == st)
        sl_db_query_end(db);
    mysql_stmt_close(st->h);
    free(st->sql);
    st->h = NULL;
    st->sql = NULL;
}

/* A statement failed: record it; a lost connection is closed, a statement
 * the server forgot is dropped from the cache. */
static int stmt_fail(struct sl_db *db, struct stmt *st, MYSQL_STMT *h, const char *what,
                     const char *sql)
{
    char head[72], where[128];
    int rc;

    snprintf(where, sizeof(where), "%s \"%s\"", what, sql_head(sql, head, sizeof(head)));
    rc = lib_err(db, h, where);
    if (is_lost(db->err.code))
        disconnect(db);
    else if (st != NULL &&
             (db->err.code == ER_NEED_REPREPARE || db->err.code == ER_UNKNOWN_STMT_HANDLER))
        drop_stmt(db, st);
    return rc;
}

/* The cached prepared statement for sql, preparing it on a miss (evicting
 * the least recently used one when the cache is full). */
static int prepare(struct sl_db *db, const char *sql, struct stmt **out)
{
    struct stmt *slot = NULL;
    MYSQL_STMT *h;
    my_bool on = 1;

    for (int i = 0; i < STMT_CACHE; i++) {
        struct stmt *st = &db->cache[i];

        if (st->h != NULL && strcmp(st->sql, sql) == 0) {
            st->used = ++db->tick;
            *out = st;
            return SL_OK;
        }
        /* A free slot wins; otherwise the least recently used. */
        if (st->h == NULL ? slot == NULL || slot->h != NULL
                          : slot == NULL || (slot->h != NULL && st->used < slot->used))
            slot = st;
    }
    if (slot->h != NULL)
        drop_stmt(db, slot);
    if ((h = mysql_stmt_init(db->my)) == NULL)
        return set_err(db, SL_DB_ERR_NOMEM, 0, "", "out of memory (statement)");
    mysql_stmt_attr_set(h, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
    if (mysql_stmt_prepare(h, sql, (unsigned long)strlen(sql)) != 0) {
        char head[72], where[128];
        int rc;

        snprintf(where, sizeof(where), "prepare \"%s\"", sql_head(sql, head, sizeof(head)));
        rc = lib_err(db, h, where);
        mysql_stmt_close(h);   /* before the connection it belongs to may go */
        if (is_lost(db->err.code))
            disconnect(db);
        return rc;
    }
    if ((slot->sql = strdup(sql)) == NULL) {
        mysql_stmt_close(h);
        return set_err(db, SL_DB_ERR_NOMEM, 0, "", "out of memory (statement)");
    }
    slot->h = h;
    slot->used = ++db->tick;
    *out = slot;
    return SL_OK;
}

static void to_mysql_time(long long us, MYSQL_TIME *t)
{
    long long days = us / 86400000000LL, rem = us % 86400000000LL, y;
    unsigned m, d;

    if (rem < 0) {
        rem += 86400000000LL;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    memset(t, 0, sizeof(*t));
    t->year = (unsigned)y;
    t->month = m;
    t->day = d;
    t->hour = (unsigned)(rem / 3600000000LL);
    t->minute = (unsigned)(rem / 60000000LL % 60);
    t->second = (unsigned)(rem / 1000000LL % 60);
    t->second_part = (unsigned long)(rem % 1000000LL);
    t->time_type = MYSQL_TIMESTAMP_DATETIME;
}

static int grow_params(struct sl_db *db, size_t n)
{
    MYSQL_BIND *b;
    unsigned long *l;
    MYSQL_TIME *t;

    if (n <= db->pcap)
        return 0;
    if ((b = realloc(db->pbind, n * sizeof(*b))) != NULL)
        db->pbind = b;
    if ((l = realloc(db->plen, n * sizeof(*l))) != NULL)
        db->plen = l;
    if ((t = realloc(db->ptime, n * sizeof(*t))) != NULL)
        db->ptime = t;
    if (b == NULL || l == NULL || t == NULL)
        return -1;
    db->pcap = n;
    return 0;
}

static int bind_params(struct sl_db *db, MYSQL_STMT *h, const struct sl_db_param *p, size_t n,
                       const char *sql)
{
    unsigned long want = mysql_stmt_param_count(h);
    char head[72];

    if (want != n || n > MAX_PARAMS)
        return set_err(db, SL_DB_ERR_STATEMENT, 0, "",
                       "\"%s\" has %lu placeholders, %zu values given",
                       sql_head(sql, head, sizeof(head)), want, n);
    if (n == 0)
        return SL_OK;
    if (grow_params(db, n) != 0)
        return set_err(db, SL_DB_ERR_NOMEM, 0, "", "out of memory (parameters)");
    memset(db->pbind, 0, n * sizeof(*db->pbind));
    for (size_t i = 0; i < n; i++) {
        MYSQL_BIND *b = &db->pbind[i];

        /* The library only reads parameter buffers: the casts drop const. */
        switch (p[i].type) {
        case SL_DB_T_INT:
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = (void *)&p[i].i;
            break;
        case SL_DB_T_DOUBLE:
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = (void *)&p[i].d;
            break;
        case SL_DB_T_TEXT:
            db->plen[i] = (unsigned long)p[i].len;
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer = (void *)p[i].s;
            b->buffer_length = db->plen[i];
            b->length = &db->plen[i];
            break;
        case SL_DB_T_TIME:
            to_mysql_time(p[i].i, &db->ptime[i]);
            b->buffer_type = MYSQL_TYPE_DATETIME;
            b->buffer = &db->ptime[i];
            break;
        default:
            b->buffer_type = MYSQL_TYPE_NULL;
            break;
        }
    }
    if (mysql_stmt_bind_param(h, db->pbind) != 0)
        return stmt_fail(db, NULL, h, "bind", sql);
    return SL_OK;
}

/* ---- results ------------------------------------------------------------- */

static int grow_cols(struct sl_db *db, unsigned n)
{
    MYSQL_BIND *b;
    struct col *c;

    if (n <= db->ccap)
        return 0;
    if ((b = realloc(db->rbind, n * sizeof(*b))) == NULL)
        return -1;
    db->rbind = b;
    if ((c = realloc(db->cols, n * sizeof(*c))) == NULL)
        return -1;
    memset(c + db->ccap, 0, (n - db->ccap) * sizeof(*c));
    db->cols = c;
    db->ccap = n;
    return 0;
}

/* Gives text column c a buffer of at least need + 1 bytes (one for the NUL). */
static int text_room(struct col *c, unsigned long need)
{
    char *p;

    if (need > MAX_VALUE_BYTES)
        return -1;
    if (c->buf != NULL && c->cap > need)
        return 0;
    if ((p = realloc(c->buf, need + 1)) == NULL)
        return -1;
    c->buf = p;
    c->cap = need + 1;
    return 0;
}

/* Chooses how column i is read, from its field type. */
static int setup_col(struct sl_db *db, unsigned i, const MYSQL_FIELD *f)
{
    struct col *c = &db->cols[i];
    MYSQL_BIND *b = &db->rbind[i];

    memset(b, 0, sizeof(*b));
    c->is_date = f->type == MYSQL_TYPE_DATE || f->type == MYSQL_TYPE_NEWDATE;
    c->decimals = f->decimals <= 6 ? f->decimals : 6;
    switch (f->type) {
    case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG: case MYSQL_TYPE_LONGLONG: case MYSQL_TYPE_YEAR:
        c->kind = COL_INT;
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &c->i;
        b->is_unsigned = (f->flags & UNSIGNED_FLAG) != 0;
        break;
    case MYSQL_TYPE_FLOAT: case MYSQL_TYPE_DOUBLE:
        c->kind = COL_DOUBLE;
        b->buffer_type = MYSQL_TYPE_DOUBLE;
        b->buffer = &c->d;
        break;
    case MYSQL_TYPE_DATE: case MYSQL_TYPE_NEWDATE: case MYSQL_TYPE_DATETIME:
    case MYSQL_TYPE_TIMESTAMP:
        c->kind = COL_TIME;
        b->buffer_type = MYSQL_TYPE_DATETIME;
        b->buffer = &c->t;
        break;
    default:
        /* DECIMAL (exact, as text), strings, JSON, BLOBs, BIT, TIME, ... */
        c->kind = COL_TEXT;
        if (text_room(c, f->max_length > FIRST_TEXT_CAP ? f->max_length : FIRST_TEXT_CAP) != 0)
            return set_err(db, f->max_length > MAX_VALUE_BYTES ? SL_DB_ERR_STATEMENT
                                                                : SL_DB_ERR_NOMEM,
                           0, "", "column %u: value of %lu bytes is over the %u MiB cap", i,
                           f->max_length, MAX_VALUE_BYTES >> 20);
        b->buffer_type = MYSQL_TYPE_STRING;
        b->buffer = c->buf;
        b->buffer_length = c->cap - 1;
        b->length = &c->len;
        break;
    }
    b->is_null = &c->is_null;
    b->error = &c->error;
    return SL_OK;
}

/* After execute: reads the whole result into the client and binds it. */
static int open_result(struct sl_db *db, struct stmt *st, const char *sql)
{
    unsigned n = mysql_stmt_field_count(st->h);
    MYSQL_RES *meta;
    MYSQL_FIELD *f;
    int rc = SL_OK;

    if (n == 0)
        return set_err(db, SL_DB_ERR_STATEMENT, 0, "",
                       "the statement returns no rows: use sl_db_exec");
    if (n > MAX_COLS || grow_cols(db, n) != 0)
        return set_err(db, SL_DB_ERR_NOMEM, 0, "", "out of memory (%u columns)", n);
    /* Stored first, so the metadata carries each column's max_length. */
    if (mysql_stmt_store_result(st->h) != 0)
        return stmt_fail(db, st, st->h, "read result of", sql);
    db->cur = st;
    db->ncols = n;
    if ((meta = mysql_stmt_result_metadata(st->h)) == NULL)
        return stmt_fail(db, st, st->h, "metadata of", sql);
    f = mysql_fetch_fields(meta);
    for (unsigned i = 0; i < n && rc == SL_OK; i++)
        rc = setup_col(db, i, &f[i]);
    mysql_free_result(meta);
    if (rc == SL_OK && mysql_stmt_bind_result(st->h, db->rbind) != 0)
        rc = stmt_fail(db, st, st->h, "bind result of", sql);
    if (rc != SL_OK)
        sl_db_query_end(db);
    return rc;
}

/* One try: connect if needed, prepare (cached), bind, execute, and for a
 * query store the result. *sent: the statement reached the server. */
static int run_once(struct sl_db *db, const char *sql, const struct sl_db_param *p, size_t n,
                    int query, unsigned long long *affected, int *sent)
{
    struct stmt *st = NULL;
    int rc;

    *sent = 0;
    sl_db_query_end(db);
    if ((rc = ensure(db)) != SL_OK || (rc = prepare(db, sql, &st)) != SL_OK ||
        (rc = bind_params(db, st->h, p, n, sql)) != SL_OK)
        return rc;
    *sent = 1;
    if (mysql_stmt_execute(st->h) != 0)
        return stmt_fail(db, st, st->h, "execute", sql);
    db->last_used_us = now_us();
    if (affected != NULL)
        *affected = (unsigned long long)mysql_stmt_affected_rows(st->h);
    if (query && (rc = open_result(db, st, sql)) != SL_OK)
        return rc;
    if (!query)
        mysql_stmt_free_result(st->h);
    db->err.kind = SL_DB_ERR_NONE;
    return SL_OK;
}

/* A second try on a fresh connection when a reused one turns out lost, or
 * the server forgot the prepared statement: only when that cannot apply a
 * write twice (a query, or a statement that was never sent) and never
 * inside a transaction. */
static int run(struct sl_db *db, const char *sql, const struct sl_db_param *p, size_t n, int query,
               unsigned long long *affected)
{
    int reused = db->my != NULL, sent, rc;

    if (sql == NULL || (n > 0 && p == NULL))
        return set_err(db, SL_DB_ERR_STATEMENT, 0, "", "no statement or no parameters");
    rc = run_once(db, sql, p, n, query, affected, &sent);
    if (rc == SL_OK || !reused || db->in_txn)
        return rc;
    if ((is_lost(db->err.code) && (query || !sent)) || db->err.code == ER_NEED_REPREPARE ||
        db->err.code == ER_UNKNOWN_STMT_HANDLER)
        rc = run_once(db, sql, p, n, query, affected, &sent);
    return rc;
}

int sl_db_exec(struct sl_db *db, const char *sql, const struct sl_db_param *params, size_t n,
               unsigned long long *affected)
{
    if (affected != NULL)
        *affected = 0;
    return run(db, sql, params, n, 0, affected);
}

int sl_db_query(struct sl_db *db, const char *sql, const struct sl_db_param *params, size_t n)
{
    return run(db, sql, params, n, 1, NULL);
}

void sl_db_query_end(struct sl_db *db)
{
    if (db == NULL || db->cur == NULL)
        return;
    mysql_stmt_free_result(db->cur->h);
    db->cur = NULL;
    db->ncols = 0;
}

/* A value longer than its buffer: grow the buffer, read the column again,
 * and keep the bigger buffer bound for the rows that follow. */
static int refetch_truncated(struct sl_db *db)
{
    MYSQL_STMT *h = db->cur->h;

    for (unsigned i = 0; i < db->ncols; i++) {
        struct col *c = &db->cols[i];
        MYSQL_BIND *b = &db->rbind[i];

        if (!c->error)
            continue;
        if (c->kind != COL_TEXT)
            return set_err(db, SL_DB_ERR_STATEMENT, 0, "", "column %u: value out of range", i);
        if (text_room(c, c->len) != 0)
            return set_err(db, c->len > MAX_VALUE_BYTES ? SL_DB_ERR_STATEMENT : SL_DB_ERR_NOMEM, 0,
                           "", "column %u: value of %lu bytes is over the %u MiB cap", i, c->len,
                           MAX_VALUE_BYTES >> 20);
        b->buffer = c->buf;
        b->buffer_length = c->cap - 1;
        if (mysql_stmt_fetch_column(h, b, i, 0) != 0)
            return lib_err(db, h, "read column");
        c->error = 0;
    }
    if (mysql_stmt_bind_result(h, db->rbind) != 0)
        return lib_err(db, h, "bind result");
    return SL_OK;
}

static void format_col(struct col *c, int is_unsigned)
{
    static const unsigned long pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };
    const MYSQL_TIME *t = &c->t;
    int n;

    if (c->is_null)
        return;
    switch (c->kind) {
    case COL_TEXT:
        c->buf[c->len] = '\0';
        break;
    case COL_INT:
        snprintf(c->text, sizeof(c->text), is_unsigned ? "%llu" : "%lld", c->i);
        break;
    case COL_DOUBLE:
        snprintf(c->text, sizeof(c->text), "%.17g", c->d);
        break;
    default:
        if (c->is_date) {
            snprintf(c->text, sizeof(c->text), "%04u-%02u-%02u", t->year, t->month, t->day);
            break;
        }
        n = snprintf(c->text, sizeof(c->text), "%04u-%02u-%02u %02u:%02u:%02u", t->year, t->month,
                     t->day, t->hour, t->minute, t->second);
        /* As the server prints it: as many fraction digits as the column has. */
        if (c->decimals > 0 && n > 0 && (size_t)n < sizeof(c->text))
            snprintf(c->text + n, sizeof(c->text) - (size_t)n, ".%0*lu", (int)c->decimals,
                     t->second_part / pow10[6 - c->decimals]);
        break;
    }
}

int sl_db_fetch(struct sl_db *db, int *row)
{
    int r, rc;

    *row = 0;
    if (db->cur == NULL)
        return set_err(db, SL_DB_ERR_STATEMENT, 0, "", "no result to fetch from");
    r = mysql_stmt_fetch(db->cur->h);
    if (r == MYSQL_NO_DATA)
        return SL_OK;
    if (r == MYSQL_DATA_TRUNCATED && (rc = refetch_truncated(db)) != SL_OK)
        return rc;
    if (r != 0 && r != MYSQL_DATA_TRUNCATED)
        return lib_err(db, db->cur->h, "fetch");
    for (unsigned i = 0; i < db->ncols; i++)
        format_col(&db->cols[i], db->rbind[i].is_unsigned);
    *row = 1;
    return SL_OK;
}

unsigned sl_db_col_count(const struct sl_db *db)
{
    return db->ncols;
}

static const struct col *col_at(const struct sl_db *db, unsigned i)
{
    if (db->cur == NULL || i >= db->ncols || db->cols[i].is_null)
        return NULL;
    return &db->cols[i];
}

int sl_db_col_is_null(const struct sl_db *db, unsigned i)
{
    return col_at(db, i) == NULL;
}

long long sl_db_col_int(const struct sl_db *db, unsigned i)
{
    const struct col *c = col_at(db, i);

    if (c == NULL)
        return 0;
    switch (c->kind) {
    case COL_INT: return c->i;
    case COL_DOUBLE: return (long long)c->d;
    case COL_TEXT: return strtoll(c->buf, NULL, 10);
    default: return 0;
    }
}

double sl_db_col_double(const struct sl_db *db, unsigned i)
{
    const struct col *c = col_at(db, i);

    if (c == NULL)
        return 0;
    switch (c->kind) {
    case COL_INT: return db->rbind[i].is_unsigned ? (double)(unsigned long long)c->i : (double)c->i;
    case COL_DOUBLE: return c->d;
    case COL_TEXT: return strtod(c->buf, NULL);
    default: return 0;
    }
}

const char *sl_db_col_text(const struct sl_db *db, unsigned i, size_t *len)
{
    const struct col *c = col_at(db, i);
    const char *s = c == NULL ? NULL : c->kind == COL_TEXT ? c->buf : c->text;

    if (len != NULL)
        *len = s == NULL ? 0 : c->kind == COL_TEXT ? c->len : strlen(s);
    return s;
}

int sl_db_col_time_us(const struct sl_db *db, unsigned i, long long *us)
{
    const struct col *c = col_at(db, i);

    if (c == NULL || c->kind != COL_TIME)
        return 0;
    *us = ((days_from_civil(c->t.year, c->t.month, c->t.day) * 24 + c->t.hour) * 60 + c->t.minute) *
          60000000LL + c->t.second * 1000000LL + (long long)c->t.second_part;
    return 1;
}

/* ---- transactions -------------------------------------------------------- */

int sl_db_begin(struct sl_db *db)
{
    int rc;

    if (db->in_txn)
        return set_err(db, SL_DB_ERR_STATEMENT, 0, "", "a transaction is already open");
    sl_db_query_end(db);
    if ((rc = ensure(db)) != SL_OK)
        return rc;
    if (mysql_real_query(db->my, "START TRANSACTION", 17) != 0) {
        rc = lib_err(db, NULL, "start transaction");
        if (is_lost(db->err.code))
            disconnect(db);
        return rc;
    }
    db->in_txn = 1;
    db->txn_lost = 0;
    db->err.kind = SL_DB_ERR_NONE;
    return SL_OK;
}

int sl_db_commit(struct sl_db *db)
{
    int rc = SL_OK;

    sl_db_query_end(db);
    if (!db->in_txn)
        return set_err(db, SL_DB_ERR_STATEMENT, 0, "", "commit without a transaction");
    if (db->txn_lost || db->my == NULL)
        rc = set_err(db, SL_DB_ERR_UNAVAILABLE, CR_SERVER_LOST, "",
                     "the connection was lost inside the transaction: nothing was committed");
    else if (mysql_commit(db->my) != 0) {
        /* Lost during COMMIT: the outcome is unknown to us. */
        rc = lib_err(db, NULL, "commit");
        if (is_lost(db->err.code))
            disconnect(db);
    }
    db->in_txn = db->txn_lost = 0;
    if (rc == SL_OK)
        db->err.kind = SL_DB_ERR_NONE;
    return rc;
}

int sl_db_rollback(struct sl_db *db)
{
    int rc = SL_OK;

    sl_db_query_end(db);
    if (db->in_txn && !db->txn_lost && db->my != NULL && mysql_rollback(db->my) != 0) {
        rc = lib_err(db, NULL, "rollback");
        disconnect(db);   /* the server rolls back when the connection goes */
    }
    db->in_txn = db->txn_lost = 0;
    return rc;
}

/* ---- scripts ------------------------------------------------------------- */

/* Reads (and drops) the current result of a multi-statement batch. */
static int drain_result(struct sl_db *db)
{
    MYSQL_RES *res = mysql_store_result(db->my);

    if (res != NULL) {
        mysql_free_result(res);
        return 0;
    }
    return mysql_field_count(db->my) == 0 ? 0 : -1;
}

int sl_db_run_script(struct sl_db *db, const char *sql, size_t len, unsigned *done)
{
    unsigned ok = 0;
    char what[64];
    int r, rc = SL_OK;

    if (done != NULL)
        *done = 0;
    if (!(db->flags & SL_DB_MULTI_STATEMENTS))
        return set_err(db, SL_DB_ERR_STATEMENT, 0, "", "scripts need a connection opened with "
                       "SL_DB_MULTI_STATEMENTS");
    sl_db_query_end(db);
    if ((rc = ensure(db)) != SL_OK)
        return rc;
    /* The server splits the batch, so compound statements (BEGIN ... END)
     * and quoting work exactly as in the mysql client, minus DELIMITER. */
    if (mysql_real_query(db->my, sql, (unsigned long)len) != 0) {
        rc = lib_err(db, NULL, "statement 1");
        goto out;
    }
    for (;;) {
        if (drain_result(db) != 0) {
            snprintf(what, sizeof(what), "statement %u", ok + 1);
            rc = lib_err(db, NULL, what);
            goto out;
        }
        ok++;
        if ((r = mysql_next_result(db->my)) < 0)
            break;
        if (r > 0) {
            snprintf(what, sizeof(what), "statement %u", ok + 1);
            rc = lib_err(db, NULL, what);
            goto out;
        }
    }
    db->err.kind = SL_DB_ERR_NONE;
out:
    if (rc != SL_OK && is_lost(db->err.code))
        disconnect(db);
    else if (rc != SL_OK)
        while (mysql_more_results(db->my) && mysql_next_result(db->my) == 0)
            drain_result(db);   /* leave the connection usable */
    db->last_used_us = now_us();
    if (done != NULL)
        *done = ok;
    return rc;
}

/* Schema migrations for sluicectl: scans a schema directory, compares it
 * with sluice_schema_migrations, and applies what is pending, one file per
 * multi-statement batch, recording each with its SHA-256. How a migration is
 * written (re-runnable statements, never edited once released) is
 * docs/database.md's business; the SQL itself goes through db.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "buf.h"
#include "db.h"
#include "migrate.h"
#include "status.h"

#define MAX_FILE_BYTES (16u << 20)
#define MAX_FILES      10000
#define LOCK_NAME      "sluice.migrate"

#define TABLE_DDL \
    "CREATE TABLE IF NOT EXISTS sluice_schema_migrations (" \
    " version INT UNSIGNED NOT NULL," \
    " name VARCHAR(255) NOT NULL," \
    " checksum CHAR(64) CHARACTER SET ascii NOT NULL," \
    " applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)," \
    " execution_ms INT UNSIGNED NOT NULL DEFAULT 0," \
    " applied_by VARCHAR(255) NOT NULL DEFAULT ''," \
    " PRIMARY KEY (version)" \
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin"

/* ---- the directory ------------------------------------------------------- */

/* "NNN_name.sql" -> NNN (1..999999999), or 0 when the name is not of that form. */
static unsigned name_version(const char *name)
{
    size_t digits = strspn(name, "0123456789"), n = strlen(name);
    unsigned long v;

    if (digits == 0 || digits > 9 || name[digits] != '_' || n < digits + 6 ||
        strcmp(name + n - 4, ".sql") != 0)
        return 0;
    for (size_t i = digits + 1; i < n - 4; i++)
        if (!(name[i] == '_' || name[i] == '-' || name[i] == '.' ||
              (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9')))
            return 0;
    v = strtoul(name, NULL, 10);
    return (unsigned)v;
}

static int sha256_hex(const char *p, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) && len == 32;

    for (unsigned i = 0; ok && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return ok ? 0 : -1;
}

/* The whole file at dir/name into m. 0, -1 (reported), -2 OOM. */
static int read_migration(const char *dir, const char *name, struct sl_migration *m,
                          struct sl_buf *msgs)
{
    char path[4096];
    struct stat st;
    size_t got = 0;
    ssize_t r = 0;
    int fd, rc = -1;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0 || fstat(fd, &st) != 0) {
        if (msgs)
            sl_buf_printf(msgs, "%s: %s\n", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_FILE_BYTES) {
        if (msgs)
            sl_buf_printf(msgs, "%s: not a regular file of at most %u MiB\n", path,
                          MAX_FILE_BYTES >> 20);
        goto out;
    }
    if ((m->name = strdup(name)) == NULL || (m->sql = malloc((size_t)st.st_size + 1)) == NULL) {
        rc = -2;
        goto out;
    }
    while (got < (size_t)st.st_size &&
           ((r = read(fd, m->sql + got, (size_t)st.st_size - got)) > 0 ||
            (r < 0 && errno == EINTR)))
        if (r > 0)
            got += (size_t)r;
    if (got < (size_t)st.st_size) {
        if (msgs)
            sl_buf_printf(msgs, "%s: %s\n", path,
                          r < 0 ? strerror(errno) : "shorter than its size");
        goto out;
    }
    m->sql[got] = '\0';
    m->len = got;
    rc = sha256_hex(m->sql, got, m->checksum) == 0 ? 0 : -2;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int cmp_version(const void *a, const void *b)
{
    unsigned x = ((const struct sl_migration *)a)->version;
    unsigned y = ((const struct sl_migration *)b)->version;

    return (x > y) - (x < y);
}

/* Sorts and reports two files with one number. */
static int check_unique(struct sl_migrations *out, struct sl_buf *msgs)
{
    int bad = 0;

    qsort(out->v, out->n, sizeof(*out->v), cmp_version);
    for (size_t i = 1; i < out->n; i++)
        if (out->v[i].version == out->v[i - 1].version) {
            if (msgs)
                sl_buf_printf(msgs, "%s and %s have the same number %u\n", out->v[i - 1].name,
                              out->v[i].name, out->v[i].version);
            bad = 1;
        }
    return bad ? -1 : 0;
}

int sl_migrate_scan(const char *dir, struct sl_migrations *out, struct sl_buf *msgs)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t cap = 0;
    int bad = 0, nomem = 0;

    out->v = NULL;
    out->n = 0;
    if (d == NULL) {
        if (msgs)
            sl_buf_printf(msgs, "%s: %s\n", dir, strerror(errno));
        return SL_ERR_CONFIG;
    }
    while (!nomem && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        unsigned v;
        int r;

        if (n < 4 || strcmp(e->d_name + n - 4, ".sql") != 0 || e->d_name[0] == '.')
            continue;
        if ((v = name_version(e->d_name)) == 0) {
            if (msgs)
                sl_buf_printf(msgs, "%s/%s: a migration is named NNN_what.sql (NNN > 0; letters, "
                              "digits, '_', '-', '.')\n", dir, e->d_name);
            bad = 1;
            continue;
        }
        if (out->n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            struct sl_migration *nv = cap < MAX_FILES ? realloc(out->v, ncap * sizeof(*nv)) : NULL;

            if (nv == NULL) {
                nomem = 1;
                break;
            }
            out->v = nv;
            cap = ncap;
        }
        memset(&out->v[out->n], 0, sizeof(out->v[out->n]));
        out->v[out->n].version = v;
        r = read_migration(dir, e->d_name, &out->v[out->n], msgs);
        out->n++;   /* counted even on failure, so sl_migrate_free frees its parts */
        bad |= r == -1;
        nomem |= r == -2;
    }
    closedir(d);
    if (!nomem && !bad && check_unique(out, msgs) != 0)
        bad = 1;
    return nomem ? SL_ERR_NOMEM : bad ? SL_ERR_CONFIG : SL_OK;
}

void sl_migrate_free(struct sl_migrations *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].name);
        free(m->v[i].sql);
    }
    free(m->v);
    m->v = NULL;
    m->n = 0;
}

/* ---- the database side --------------------------------------------------- */

int sl_migrate_init_table(struct sl_db *db)
{
    return sl_db_exec(db, TABLE_DDL, NULL, 0, NULL);
}

static const struct sl_migration *find(const struct sl_migrations *m, unsigned version)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].version == version)
            return &m->v[i];
    return NULL;
}

/* Sorts each applied row into changed / unknown, and marks the files seen. */
static int compare_applied(struct sl_db *db, const struct sl_migrations *m,
                           struct sl_migrate_plan *p, unsigned char *seen)
{
    int rc, row = 0;

    while ((rc = sl_db_fetch(db, &row)) == SL_OK && row) {
        unsigned v = (unsigned)sl_db_col_int(db, 0);
        const char *sum = sl_db_col_text(db, 1, NULL);
        const struct sl_migration *f = find(m, v);

        p->n_applied++;
        if (v > p->version)
            p->version = v;
        if (f == NULL) {
            unsigned *u = realloc(p->unknown, (p->n_unknown + 1) * sizeof(*u));

            if (u == NULL)
                return SL_ERR_NOMEM;
            p->unknown = u;
            p->unknown[p->n_unknown++] = v;
            continue;
        }
        seen[f - m->v] = 1;
        if (sum == NULL || strcmp(sum, f->checksum) != 0)
            p->changed[p->n_changed++] = f;
    }
    return rc;
}

int sl_migrate_plan(struct sl_db *db, const struct sl_migrations *m, struct sl_migrate_plan *p)
{
    unsigned char *seen = calloc(m->n + 1, 1);
    int rc;

    memset(p, 0, sizeof(*p));
    p->pending = calloc(m->n + 1, sizeof(*p->pending));
    p->changed = calloc(m->n + 1, sizeof(*p->changed));
    if (seen == NULL || p->pending == NULL || p->changed == NULL) {
        rc = SL_ERR_NOMEM;
        goto out;
    }
    rc = sl_db_query(db, "SELECT version, checksum FROM sluice_schema_migrations ORDER BY version",
                     NULL, 0);
    if (rc != SL_OK && sl_db_last_error(db)->kind == SL_DB_ERR_SCHEMA) {
        rc = SL_OK;   /* no table yet: nothing applied */
    } else if (rc == SL_OK) {
        rc = compare_applied(db, m, p, seen);
        sl_db_query_end(db);
    }
    for (size_t i = 0; rc == SL_OK && i < m->n; i++)
        if (!seen[i])
            p->pending[p->n_pending++] = &m->v[i];
out:
    free(seen);
    if (rc != SL_OK)
        sl_migrate_plan_free(p);
    return rc;
}

void sl_migrate_plan_free(struct sl_migrate_plan *p)
{
    if (p == NULL)
        return;
    free(p->pending);
    free(p->changed);
    free(p->unknown);
    memset(p, 0, sizeof(*p));
}

int sl_migrate_lock(struct sl_db *db, int wait_s, int *unsupported)
{
    struct sl_db_param args[] = { sl_db_text(LOCK_NAME), sl_db_int(wait_s) };
    int rc, row = 0;
    long long got = 0;

    *unsupported = 0;
    rc = sl_db_query(db, "SELECT GET_LOCK(?, ?)", args, 2);
    if (rc == SL_OK && (rc = sl_db_fetch(db, &row)) == SL_OK && row)
        got = sl_db_col_int(db, 0);
    sl_db_query_end(db);
    if (rc != SL_OK) {
        /* Galera refuses GET_LOCK; anything else is a real failure. */
        if (sl_db_last_error(db)->kind == SL_DB_ERR_STATEMENT) {
            *unsupported = 1;
            return SL_OK;
        }
        return rc;
    }
    return got == 1 ? SL_OK : SL_ERR_BUSY;
}

void sl_migrate_unlock(struct sl_db *db)
{
    struct sl_db_param arg = sl_db_text(LOCK_NAME);
    int row;

    if (sl_db_query(db, "SELECT RELEASE_LOCK(?)", &arg, 1) == SL_OK)
        sl_db_fetch(db, &row);
    sl_db_query_end(db);
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (long)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

int sl_migrate_apply(struct sl_db *db, const struct sl_migration *m, const char *applied_by,
                     unsigned *statements, long *ms)
{
    struct timespec t0;
    unsigned done = 0;
    long took;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = sl_db_run_script(db, m->sql, m->len, &done);
    took = elapsed_ms(&t0);
    if (statements != NULL)
        *statements = done;
    if (ms != NULL)
        *ms = took;
    if (rc != SL_OK)
        return rc;
    {
        struct sl_db_param args[] = {
            sl_db_int(m->version), sl_db_text(m->name), sl_db_text(m->checksum),
            sl_db_int(took), sl_db_text(applied_by ? applied_by : ""),
        };

        rc = sl_db_exec(db, "INSERT INTO sluice_schema_migrations (version, name, checksum, "
                        "applied_at, execution_ms, applied_by) "
                        "VALUES (?, ?, ?, UTC_TIMESTAMP(6), ?, ?)", args, 5, NULL);
    }
    return rc;
}

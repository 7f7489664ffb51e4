/* Schema migrations: the NNN_name.sql files of a schema directory and the
 * sluice_schema_migrations table that records which ones a database has
 * (version, file name, SHA-256 of the file as applied, when, how long).
 * A recorded migration is never run again; one whose file changed since is
 * a conflict the operator resolves, never silently re-run. Used by
 * sluicectl; nothing here runs in the request path. */
#ifndef SL_MIGRATE_H
#define SL_MIGRATE_H

#include <stddef.h>

struct sl_buf;
struct sl_db;

struct sl_migration {
    unsigned version;            /* the file name's number: 001_x.sql -> 1 */
    char *name;                  /* file name, "001_keys_teams_users.sql" */
    char *sql;                   /* the file's contents, NUL-terminated */
    size_t len;
    char checksum[65];           /* SHA-256 hex of the contents */
};

struct sl_migrations {
    struct sl_migration *v;      /* sorted by version */
    size_t n;
};

/* Reads every *.sql file of dir. Problems (dir unreadable, a .sql name not
 * of the form NNN_name.sql, two files with one number, a file over 16 MiB)
 * are appended to msgs (may be NULL) as lines. SL_OK, SL_ERR_CONFIG,
 * SL_ERR_NOMEM. *out is always safe to free. */
int sl_migrate_scan(const char *dir, struct sl_migrations *out, struct sl_buf *msgs);
void sl_migrate_free(struct sl_migrations *m);

/* A database compared with a directory. Pointers are borrowed from the
 * sl_migrations given to sl_migrate_plan. */
struct sl_migrate_plan {
    unsigned version;            /* highest applied version, 0: none */
    size_t n_applied;            /* rows in sluice_schema_migrations */
    const struct sl_migration **pending;   /* not applied, in order */
    size_t n_pending;
    const struct sl_migration **changed;   /* applied, but the file differs now */
    size_t n_changed;
    unsigned *unknown;           /* applied versions this directory has no file for */
    size_t n_unknown;
};

/* Reads sluice_schema_migrations (a missing table means nothing applied)
 * and compares it with m. An sl_status; details in sl_db_last_error. */
int sl_migrate_plan(struct sl_db *db, const struct sl_migrations *m, struct sl_migrate_plan *out);
void sl_migrate_plan_free(struct sl_migrate_plan *p);

/* Takes the advisory lock that keeps two `sluicectl migrate` apart
 * (GET_LOCK, held by the connection): SL_OK; SL_ERR_BUSY when another holds
 * it after wait_s seconds; or a database status. *unsupported is set when
 * the server has no such lock (Galera): the caller may go on, warned. */
int sl_migrate_lock(struct sl_db *db, int wait_s, int *unsupported);
void sl_migrate_unlock(struct sl_db *db);

/* Creates sluice_schema_migrations if it is missing. An sl_status. */
int sl_migrate_init_table(struct sl_db *db);

/* Runs one migration on db (opened with SL_DB_MULTI_STATEMENTS) and records
 * it with applied_by. *statements and *ms (may be NULL) get what ran and how
 * long it took. On failure nothing is recorded; the error (with the failing
 * statement's number) is in sl_db_last_error. */
int sl_migrate_apply(struct sl_db *db, const struct sl_migration *m, const char *applied_by,
                     unsigned *statements, long *ms);

#endif

/* Importing a LiteLLM Postgres export into sluice's MariaDB (`sluicectl
 * import-litellm`). Two halves:
 * - pure: reading the file psql writes (CSV with a header row, or JSON: one
 *   array of row objects or one object per line), choosing the target table,
 *   and turning each cell into the value its column takes (Postgres text[]
 *   literals into JSON arrays, t/f, timestamps with or without an offset into
 *   UTC, money rounded to 10 decimals, raw "sk-" tokens hashed);
 * - sl_import_run: every row upserted by primary key, the whole file in one
 *   transaction.
 * Messages name the row, the line and the column, never a cell's value (a
 * cell may be a key). */
#ifndef SL_IMPORT_H
#define SL_IMPORT_H

#include <stddef.h>
#include <jansson.h>

#include "db.h"

/* The largest file read (a LiteLLM keys table of a million rows is ~1 GiB
 * of CSV; split anything bigger by a WHERE clause). */
#define SL_IMPORT_MAX_FILE (1ull << 30)

/* What a column holds, and so how a cell is converted. */
enum sl_import_type {
    SL_IMP_TEXT,     /* VARCHAR: a string, checked for UTF-8 and length */
    SL_IMP_TOKEN,    /* a key's token: 64 hex digits (lower-cased), or "sk-..." hashed */
    SL_IMP_ARRAY,    /* text[]: a Postgres array literal or a JSON array of strings */
    SL_IMP_JSON,     /* jsonb: any JSON value */
    SL_IMP_MONEY,    /* Float: DECIMAL(20,10), passed as exact text */
    SL_IMP_INT,      /* INT (32 bits) */
    SL_IMP_BIGINT,   /* BIGINT */
    SL_IMP_BOOL,     /* t/f, true/false, 1/0 */
    SL_IMP_TIME      /* timestamp, with or without an offset (without: UTC) */
};

struct sl_import_col {
    const char *name;
    int type;                 /* enum sl_import_type */
    unsigned maxlen;          /* TEXT: characters; 0: no check */
    const char *if_null;      /* SQL constant used for a NULL cell (NOT NULL columns); NULL: NULL */
    int key;                  /* part of the primary key: must be present and not empty */
};

struct sl_import_table {
    const char *name;         /* what --table takes: "keys", "teams", ... */
    const char *sql_name;     /* "LiteLLM_VerificationToken" (also accepted by --table) */
    const struct sl_import_col *cols;
    size_t n_cols;
    const char *unique;       /* a secondary unique column (NULL: none): checked per row, so an
                               * upsert never lands on another row through it */
    const char *what;         /* "key", "team", ... for messages */
};

/* The tables, in the order they are best imported (a NULL-terminated list). */
extern const struct sl_import_table *const sl_import_tables[];

/* The table called name (its short name or its LiteLLM name), or NULL. */
const struct sl_import_table *sl_import_table_named(const char *name);

/* ---- reading the file ---------------------------------------------------- */

enum sl_import_cell_kind { SL_IMPORT_NULL, SL_IMPORT_STR, SL_IMPORT_JSON };

/* One cell: a NULL, a CSV field's text (also JSON strings are given as
 * STR), or a JSON value of another type. Borrowed from the doc. */
struct sl_import_cell {
    int kind;                 /* enum sl_import_cell_kind */
    const char *s;            /* STR: NUL-terminated */
    size_t len;
    const json_t *j;          /* JSON: borrowed */
};

enum sl_import_format { SL_IMPORT_CSV, SL_IMPORT_JSON_ARRAY, SL_IMPORT_JSON_LINES };

struct sl_import_doc {
    int format;               /* enum sl_import_format */
    char **cols;              /* header names, n_cols */
    size_t n_cols;
    size_t n_rows;
    struct sl_import_cell *cells;   /* n_rows * n_cols, row-major */
    unsigned long *lines;     /* the file line each row starts on, n_rows */
    char *text;               /* CSV: the unquoted fields the cells point into */
    json_t *json;             /* JSON: the parsed rows (owned) */
};

/* Parses len bytes: JSON when the first character (after a UTF-8 BOM and
 * white space) is '[' or '{', else CSV with a header row. On SL_OK *out
 * holds the rows (free with sl_import_doc_free, also after a failure). An
 * empty file is zero rows and zero columns. SL_ERR_BAD_REQUEST with err
 * naming the line (and the row) of a malformed file; SL_ERR_NOMEM. */
int sl_import_parse(const char *data, size_t len, struct sl_import_doc *out, char *err,
                    size_t errlen);
void sl_import_doc_free(struct sl_import_doc *d);   /* zeroes *d */

/* The table whose columns the header matches: every primary key column
 * present, and more of the file's columns than any other table. NULL with
 * err set when no table or more than one fits. */
const struct sl_import_table *sl_import_detect(const struct sl_import_doc *d, char *err,
                                               size_t errlen);

/* ---- mapping -------------------------------------------------------------- */

/* Converts one cell for column c into *p. Text the parameter points to is
 * either the cell's (borrowed from the doc) or *owned (malloc'ed; the caller
 * frees it after the statement; NULL when nothing was allocated). SL_OK;
 * SL_ERR_BAD_REQUEST with err saying what is wrong (never the value);
 * SL_ERR_NOMEM. */
int sl_import_map_cell(const struct sl_import_col *c, const struct sl_import_cell *cell,
                       struct sl_db_param *p, char **owned, char *err, size_t errlen);

/* Helpers, exposed for the tests. Each returns SL_OK or SL_ERR_BAD_REQUEST
 * with err set. */
/* A Postgres one-dimensional array literal ({a,"b c",NULL}) into a compact
 * JSON array of strings (*out malloc'ed). NULL elements are refused. */
int sl_import_pg_array(const char *s, size_t len, char **out, char *err, size_t errlen);
/* "YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]][Z|+HH|+HH:MM|+HHMM]" (or a date alone)
 * into microseconds since the epoch, UTC. */
int sl_import_time(const char *s, long long *us, char *err, size_t errlen);

/* ---- writing -------------------------------------------------------------- */

struct sl_import_stats {
    size_t rows, inserted, updated;
    char ignored[512];        /* the file's columns the table lacks, comma-separated ("" none) */
};

/* Imports every row of d into table t on db, in one transaction: each row
 * is upserted by its primary key (INSERT ... ON DUPLICATE KEY UPDATE of the
 * file's columns), so importing a file twice changes nothing the second
 * time. dry_run: everything is checked and written, then rolled back. On
 * any error nothing is kept. SL_OK with *st filled; SL_ERR_BAD_REQUEST (the
 * file: err names the row, its line and the column); an sl_db status (err
 * has the database's message and the row); SL_ERR_NOMEM. */
int sl_import_run(struct sl_db *db, const struct sl_import_table *t,
                  const struct sl_import_doc *d, int dry_run, struct sl_import_stats *st,
                  char *err, size_t errlen);

/* The columns of d that t lacks, comma-separated, into out. */
void sl_import_ignored(const struct sl_import_table *t, const struct sl_import_doc *d,
                       char *out, size_t size);

#endif

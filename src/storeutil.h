/* What the row stores (keystore.c, teamstore.c) share: a request body's
 * values collected as statement parameters with their column names, the
 * error a client gets, and the checks every text field goes through. */
#ifndef SL_STOREUTIL_H
#define SL_STOREUTIL_H

#include <stddef.h>
#include <jansson.h>

#include "db.h"
#include "keystore.h"

#define SL_STORE_MAX_PARAMS 48
#define SL_STORE_MAX_TEXT 255            /* VARCHAR(255) columns, in characters */
#define SL_STORE_MAX_MONEY 9999999999.0  /* DECIMAL(20,10) */

/* Values collected from a body: column names (constants) and parameters. */
struct sl_store_vals {
    const char *col[SL_STORE_MAX_PARAMS];
    struct sl_db_param p[SL_STORE_MAX_PARAMS];
    size_t n;
    char *owned[SL_STORE_MAX_PARAMS];    /* malloc'ed texts the params point into */
    size_t n_owned;
};

void sl_store_vals_free(struct sl_store_vals *v);
/* Adds a parameter for column col. SL_OK, or SL_ERR_INTERNAL when full. */
int sl_store_push(struct sl_store_vals *v, const char *col, struct sl_db_param p);
/* The same with a malloc'ed text v then owns (NULL: SL_ERR_NOMEM). */
int sl_store_push_owned(struct sl_store_vals *v, const char *col, char *s);
/* A compact JSON text of j for a column. */
int sl_store_push_json(struct sl_store_vals *v, const char *col, const json_t *j);

void sl_store_reset(struct sl_keystore_err *err);
/* Sets err (printf-style message for the client) and returns status. */
int sl_store_fail(struct sl_keystore_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sl_store_oom(struct sl_keystore_err *err);
/* A failed statement: logged once as "<who>: <what>: <library text>"; the
 * client gets a message without the library's text. tables names what a
 * missing schema lacks ("key tables", "team and user tables"). */
int sl_store_db_fail(struct sl_db *db, struct sl_keystore_err *err, const char *who,
                     const char *tables, const char *what);

/* A JSON string without NUL characters and at most SL_STORE_MAX_TEXT
 * characters, else a 400 naming the field. */
int sl_store_check_text(const char *name, const json_t *j, struct sl_keystore_err *err);

/* How a body field is checked and stored. */
enum sl_store_ftype {
    SL_F_TEXT,     /* a string (sl_store_check_text), null -> NULL */
    SL_F_MONEY,    /* 0 .. SL_STORE_MAX_MONEY, stored as exact decimal text; null -> NULL */
    SL_F_BIGINT,   /* a whole number up to 9e15; null -> NULL */
    SL_F_INT,      /* a whole number up to 2^31-1; null -> NULL */
    SL_F_BOOL,     /* true or false (null refused) */
    SL_F_LIST,     /* a list of strings, as JSON; null -> [] */
    SL_F_OBJ,      /* an object, as JSON; null -> {} */
    SL_F_DUR       /* "30s" ... "1mo"; also sets budget_reset_at */
};

/* One body field j into v under column name, or a 400 naming it. now is
 * the time durations count from. */
int sl_store_take_field(struct sl_store_vals *v, const char *name, int type, const json_t *j,
                        long long now, struct sl_keystore_err *err);

/* How a column is shown in an answer. */
enum sl_store_ctype { SL_C_TEXT, SL_C_MONEY, SL_C_INT, SL_C_BOOL, SL_C_JSON, SL_C_TIME };

/* Column i of the current row as JSON (null for NULL or what cannot be
 * read; times as ISO 8601 UTC). New reference, or NULL on OOM. */
json_t *sl_store_column(struct sl_db *db, size_t i, int type);

/* Wall-clock time in µs (row timestamps). */
long long sl_store_now_us(void);

#endif

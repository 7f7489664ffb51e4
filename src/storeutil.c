/* Shared helpers of the row stores (storeutil.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "keystore.h"
#include "status.h"
#include "storeutil.h"

void sl_store_vals_free(struct sl_store_vals *v)
{
    for (size_t i = 0; i < v->n_owned; i++)
        free(v->owned[i]);
    v->n_owned = 0;
}

int sl_store_push(struct sl_store_vals *v, const char *col, struct sl_db_param p)
{
    if (v->n >= SL_STORE_MAX_PARAMS)
        return SL_ERR_INTERNAL;
    v->col[v->n] = col;
    v->p[v->n++] = p;
    return SL_OK;
}

int sl_store_push_owned(struct sl_store_vals *v, const char *col, char *s)
{
    if (s == NULL)
        return SL_ERR_NOMEM;
    if (v->n_owned >= SL_STORE_MAX_PARAMS) {
        free(s);
        return SL_ERR_INTERNAL;
    }
    v->owned[v->n_owned++] = s;
    return sl_store_push(v, col, sl_db_text(s));
}

int sl_store_push_json(struct sl_store_vals *v, const char *col, const json_t *j)
{
    return sl_store_push_owned(v, col, json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY));
}

void sl_store_reset(struct sl_keystore_err *err)
{
    err->status = SL_OK;
    err->msg[0] = '\0';
}

int sl_store_fail(struct sl_keystore_err *err, int status, const char *fmt, ...)
{
    va_list ap;

    err->status = status;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return status;
}

int sl_store_oom(struct sl_keystore_err *err)
{
    return sl_store_fail(err, SL_ERR_NOMEM, "out of memory");
}

int sl_store_db_fail(struct sl_db *db, struct sl_keystore_err *err, const char *who,
                     const char *tables, const char *what)
{
    const struct sl_db_error *e = sl_db_last_error(db);
    int st = sl_db_errkind_status(e->kind);

    sl_log(SL_LOG_ERROR, NULL, "%s: %s: %s", who, what, e->message);
    if (st == SL_OK)
        st = SL_ERR_INTERNAL;
    if (e->kind == SL_DB_ERR_SCHEMA)
        return sl_store_fail(err, st, "The database has no %s yet: run `sluicectl migrate`.", tables);
    if (st == SL_ERR_DB_UNAVAILABLE)
        return sl_store_fail(err, st, "The database is unavailable (%s); retry later.",
                             sl_db_errkind_name(e->kind));
    return sl_store_fail(err, st, "A database statement failed while trying to %s.", what);
}

int sl_store_check_text(const char *name, const json_t *j, struct sl_keystore_err *err)
{
    const char *s = json_string_value(j);
    size_t len = json_string_length(j), chars = 0;

    if (!json_is_string(j))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a string.", name);
    if (strlen(s) != len)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must not contain NUL characters.", name);
    for (size_t i = 0; i < len; i++)      /* characters, as VARCHAR counts them */
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    if (chars > SL_STORE_MAX_TEXT)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s is longer than %d characters.", name,
                             SL_STORE_MAX_TEXT);
    return SL_OK;
}

long long sl_store_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int sl_store_take_field(struct sl_store_vals *v, const char *name, int type, const json_t *j,
                        long long now, struct sl_keystore_err *err)
{
    char buf[64];
    long long t;
    double d;
    int rc;

    switch (type) {
    case SL_F_TEXT:
        if (json_is_null(j))
            return sl_store_push(v, name, sl_db_null());
        if ((rc = sl_store_check_text(name, j, err)) != SL_OK)
            return rc;
        return sl_store_push(v, name, sl_db_textn(json_string_value(j), json_string_length(j)));
    case SL_F_MONEY:
        if (json_is_null(j))
            return sl_store_push(v, name, sl_db_null());
        d = json_number_value(j);
        if (!json_is_number(j) || !isfinite(d) || d < 0 || d > SL_STORE_MAX_MONEY)
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a number from 0 to %.0f.", name,
                        SL_STORE_MAX_MONEY);
        snprintf(buf, sizeof(buf), "%.10f", d);
        return sl_store_push_owned(v, name, strdup(buf));
    case SL_F_BIGINT:
    case SL_F_INT:
        if (json_is_null(j))
            return sl_store_push(v, name, sl_db_null());
        d = json_number_value(j);
        if (!json_is_number(j) || d != floor(d) || d < 0 ||
            d > (type == SL_F_INT ? 2147483647.0 : 9.0e15))
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a whole number from 0 to %s.", name,
                        type == SL_F_INT ? "2147483647" : "9000000000000000");
        return sl_store_push(v, name, sl_db_int((long long)d));
    case SL_F_BOOL:
        if (!json_is_boolean(j))
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be true or false.", name);
        return sl_store_push(v, name, sl_db_int(json_is_true(j)));
    case SL_F_LIST:
        if (json_is_null(j))
            return sl_store_push(v, name, sl_db_text("[]"));
        if (!json_is_array(j))
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a list of strings.", name);
        for (size_t i = 0; i < json_array_size(j); i++)
            if (!json_is_string(json_array_get(j, i)))
                return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a list of strings (item %zu "
                            "is not a string).", name, i);
        return sl_store_push_json(v, name, j);
    case SL_F_OBJ:
        if (json_is_null(j))
            return sl_store_push(v, name, sl_db_text("{}"));
        if (!json_is_object(j))
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be an object.", name);
        return sl_store_push_json(v, name, j);
    case SL_F_DUR:
        if (json_is_null(j)) {
            if ((rc = sl_store_push(v, name, sl_db_null())) != SL_OK)
                return rc;
            return sl_store_push(v, "budget_reset_at", sl_db_null());
        }
        if (!json_is_string(j) ||
            sl_keystore_add_duration(json_string_value(j), now, &t) != SL_OK)
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a duration such as \"30s\", "
                        "\"30m\", \"1h\", \"1d\", \"30d\" or \"1mo\".", name);
        if ((rc = sl_store_push(v, name, sl_db_text(json_string_value(j)))) != SL_OK)
            return rc;
        return sl_store_push(v, "budget_reset_at", sl_db_time_us(t));
    default:
        return sl_store_fail(err, SL_ERR_INTERNAL, "unknown field type");
    }
}

json_t *sl_store_column(struct sl_db *db, size_t i, int type)
{
    json_t *v = NULL;
    const char *s;
    size_t len;
    long long us;
    char iso[40];

    if (sl_db_col_is_null(db, i))
        return json_null();
    switch (type) {
    case SL_C_TEXT:
        s = sl_db_col_text(db, i, &len);
        v = json_stringn(s, len);
        break;
    case SL_C_MONEY:
        v = json_real(sl_db_col_double(db, i));
        break;
    case SL_C_INT:
        v = json_integer(sl_db_col_int(db, i));
        break;
    case SL_C_BOOL:
        v = json_boolean(sl_db_col_int(db, i) != 0);
        break;
    case SL_C_JSON:
        s = sl_db_col_text(db, i, &len);
        v = json_loadb(s, len, JSON_DECODE_ANY, NULL);
        break;
    case SL_C_TIME:
        if (sl_db_col_time_us(db, i, &us)) {
            sl_keystore_iso_time(us, iso);
            v = json_string(iso);
        }
        break;
    }
    return v != NULL ? v : json_null();
}

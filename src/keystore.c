/* Key rows: LiteLLM's /key/... request bodies validated field by field (a
 * message naming the field for anything wrong), turned into parameterised
 * INSERT/UPDATE/DELETE on LiteLLM_VerificationToken, and rows turned back
 * into LiteLLM's key objects. SQL text is assembled only from the constant
 * column names below; every value is a parameter. Shared by admin.c (HTTP)
 * and sluicectl (command line); neither knows a column name. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "budget.h"
#include "db.h"
#include "keys.h"
#include "keystore.h"
#include "log.h"
#include "status.h"
#include "storeutil.h"

#define TABLE "LiteLLM_VerificationToken"
#define MAX_SPAN_US (200LL * 366 * 86400 * 1000000)   /* DATETIME ends in 9999 */

/* The request fields stored as they are, each in the column of its name. */
static const struct { const char *name; int type; } fields[] = {
    { "key_alias", SL_F_TEXT }, { "user_id", SL_F_TEXT }, { "team_id", SL_F_TEXT },
    { "organization_id", SL_F_TEXT }, { "budget_id", SL_F_TEXT },
    { "models", SL_F_LIST }, { "allowed_cache_controls", SL_F_LIST }, { "allowed_routes", SL_F_LIST },
    { "aliases", SL_F_OBJ }, { "config", SL_F_OBJ }, { "metadata", SL_F_OBJ }, { "permissions", SL_F_OBJ },
    { "model_max_budget", SL_F_OBJ },
    { "spend", SL_F_MONEY }, { "max_budget", SL_F_MONEY }, { "soft_budget", SL_F_MONEY },
    { "tpm_limit", SL_F_BIGINT }, { "rpm_limit", SL_F_BIGINT }, { "max_parallel_requests", SL_F_INT },
    { "blocked", SL_F_BOOL }, { "budget_duration", SL_F_DUR },
};

/* The columns a key object shows, in SELECT order. */
static const struct { const char *name; int type; } cols[] = {
    { "token", SL_C_TEXT }, { "key_name", SL_C_TEXT }, { "key_alias", SL_C_TEXT }, { "spend", SL_C_MONEY },
    { "expires", SL_C_TIME }, { "models", SL_C_JSON }, { "aliases", SL_C_JSON }, { "config", SL_C_JSON },
    { "user_id", SL_C_TEXT }, { "team_id", SL_C_TEXT }, { "max_parallel_requests", SL_C_INT },
    { "metadata", SL_C_JSON }, { "blocked", SL_C_BOOL }, { "tpm_limit", SL_C_INT }, { "rpm_limit", SL_C_INT },
    { "max_budget", SL_C_MONEY }, { "soft_budget", SL_C_MONEY }, { "budget_duration", SL_C_TEXT },
    { "budget_reset_at", SL_C_TIME }, { "allowed_cache_controls", SL_C_JSON },
    { "allowed_routes", SL_C_JSON }, { "permissions", SL_C_JSON }, { "model_spend", SL_C_JSON },
    { "model_max_budget", SL_C_JSON }, { "budget_id", SL_C_TEXT }, { "organization_id", SL_C_TEXT },
    { "created_at", SL_C_TIME }, { "created_by", SL_C_TEXT }, { "updated_at", SL_C_TIME },
    { "updated_by", SL_C_TEXT }, { "last_active", SL_C_TIME }, { "rotation_count", SL_C_INT },
    { "last_rotation_at", SL_C_TIME },
};

void sl_keystore_token_of(const char *key_or_token, char out[65])
{
    if (strncmp(key_or_token, "sk-", 3) == 0) {
        sl_auth_hash_key(key_or_token, out);
        return;
    }
    snprintf(out, 65, "%s", key_or_token);
}

int sl_keystore_add_duration(const char *s, long long now, long long *out_us)
{
    static const struct { const char *unit; long long us; } units[] = {
        { "s", 1000000LL }, { "m", 60000000LL }, { "h", 3600000000LL },
        { "d", 86400000000LL }, { "w", 604800000000LL }, { "mo", 0 },
    };
    char *end;
    long long n;

    if (s == NULL || *s < '0' || *s > '9' || strlen(s) > 12)
        return SL_ERR_BAD_REQUEST;
    n = strtoll(s, &end, 10);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) != 0)
            continue;
        if (units[i].us == 0) {          /* calendar months, day and time kept */
            time_t t = (time_t)(now / 1000000);
            struct tm tm;

            if (n > 2400 || gmtime_r(&t, &tm) == NULL)
                return SL_ERR_BAD_REQUEST;
            tm.tm_mon += (int)n;
            t = timegm(&tm);
            *out_us = (long long)t * 1000000LL + now % 1000000;
            return SL_OK;
        }
        if (n > MAX_SPAN_US / units[i].us)
            return SL_ERR_BAD_REQUEST;
        *out_us = now + n * units[i].us;
        return SL_OK;
    }
    return SL_ERR_BAD_REQUEST;
}

void sl_keystore_iso_time(long long us, char out[40])
{
    time_t t = (time_t)(us / 1000000);
    long long frac = us % 1000000;
    struct tm tm;
    size_t n;

    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, 40, "1970-01-01T00:00:00Z");
        return;
    }
    n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac != 0)
        snprintf(out + n, 40 - n, ".%06lldZ", frac);
    else
        snprintf(out + n, 40 - n, "Z");
}

/* ---- body → parameters -------------------------------------------------- */

/* One field of the table above into v: the shared rules, and two of keys:
 * spend may not be null, blocked may. */
static int take_field(struct sl_store_vals *v, const char *name, int type, const json_t *j,
                      long long now, struct sl_keystore_err *err)
{
    if (json_is_null(j) && type == SL_F_MONEY && strcmp(name, "spend") == 0)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "spend must be a number from 0 to %.0f.",
                             SL_STORE_MAX_MONEY);
    if (json_is_null(j) && type == SL_F_BOOL)
        return sl_store_push(v, name, sl_db_null());
    return sl_store_take_field(v, name, type, j, now, err);
}

/* Every known field body has into v, plus duration → expires. */
static int collect(struct sl_store_vals *v, const json_t *body, long long now, struct sl_keystore_err *err)
{
    const json_t *j;
    long long t;
    int rc;

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if ((j = json_object_get(body, fields[i].name)) == NULL)
            continue;
        if ((rc = take_field(v, fields[i].name, fields[i].type, j, now, err)) != SL_OK)
            return rc == SL_ERR_NOMEM ? sl_store_fail(err, rc, "out of memory") : rc;
    }
    if ((j = json_object_get(body, "duration")) != NULL) {
        if (json_is_null(j))
            return sl_store_push(v, "expires", sl_db_null());
        if (!json_is_string(j) || sl_keystore_add_duration(json_string_value(j), now, &t) != SL_OK)
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "duration must be a duration such as \"30s\", "
                        "\"30m\", \"1h\", \"1d\", \"30d\" or \"1mo\" (or null: never expires).");
        return sl_store_push(v, "expires", sl_db_time_us(t));
    }
    return SL_OK;
}

/* A raw key given by the caller (key, new_key): LiteLLM's "sk-" form. */
static int check_raw_key(const char *name, const json_t *j, struct sl_keystore_err *err)
{
    const char *s = json_string_value(j);

    if (s == NULL || strncmp(s, "sk-", 3) != 0 || strlen(s) < 8 || strlen(s) > 255 ||
        strlen(s) != json_string_length(j))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a string starting with 'sk-', 8 to 255 "
                    "characters long.", name);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s may hold only printable ASCII characters "
                        "without spaces.", name);
    return SL_OK;
}

/* ---- rows → JSON -------------------------------------------------------- */

static void select_sql(char *out, size_t size, const char *tail)
{
    size_t n = (size_t)snprintf(out, size, "SELECT ");

    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]) && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? ", " : "", cols[i].name);
    if (n < size)
        snprintf(out + n, size - n, " FROM " TABLE " %s", tail);
}

/* The current row as a key object (new reference), or NULL on OOM. */
static json_t *row_json(struct sl_db *db)
{
    json_t *o = json_object();

    for (unsigned i = 0; o != NULL && i < sizeof(cols) / sizeof(cols[0]); i++)
        json_object_set_new(o, cols[i].name, sl_store_column(db, i, cols[i].type));
    return o;
}

int sl_keystore_get(struct sl_db *db, const char *token, json_t **out,
                    struct sl_keystore_err *err)
{
    char sql[1024];
    struct sl_db_param p = sl_db_text(token);
    int row = 0;

    *out = NULL;
    sl_store_reset(err);
    select_sql(sql, sizeof(sql), "WHERE token = ? LIMIT 1");
    if (sl_db_query(db, sql, &p, 1) != SL_OK || sl_db_fetch(db, &row) != SL_OK)
        return sl_store_db_fail(db, err, "keystore", "key tables", "read a key");
    if (!row) {
        sl_db_query_end(db);
        return sl_store_fail(err, SL_ERR_NOT_FOUND, "Key not found in database: %.64s", token);
    }
    *out = row_json(db);
    sl_db_query_end(db);
    return *out != NULL ? SL_OK : sl_store_fail(err, SL_ERR_NOMEM, "out of memory");
}

/* The key object of token with the raw key added: LiteLLM's generate answer. */
static int generate_response(struct sl_db *db, const char *token, const char *raw,
                             json_t **out, struct sl_keystore_err *err)
{
    int rc = sl_keystore_get(db, token, out, err);

    if (rc != SL_OK)
        return rc;
    json_object_set_new(*out, "key", json_string(raw));
    json_object_set_new(*out, "token_id", json_string(token));
    json_object_set_new(*out, "litellm_budget_table", json_null());
    return SL_OK;
}

/* A duplicate on insert or update: the alias (by the index's name) or the key. */
static int dup_or_db_fail(struct sl_db *db, const json_t *body, struct sl_keystore_err *err,
                          const char *what)
{
    const struct sl_db_error *e = sl_db_last_error(db);

    if (e->kind != SL_DB_ERR_DUPLICATE)
        return sl_store_db_fail(db, err, "keystore", "key tables", what);
    if (strstr(e->message, "uq_key_alias") != NULL)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "Key with alias '%.300s' already exists. Unique key "
                    "aliases across all keys are required.",
                    json_string_value(json_object_get(body, "key_alias")) ?: "");
    return sl_store_fail(err, SL_ERR_BAD_REQUEST, "This key already exists: choose another key.");
}

int sl_keystore_generate(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                         const char *actor, json_t **out, struct sl_keystore_err *err)
{
    struct sl_store_vals v;
    char raw[256], token[65], name[16], sql[2048];
    const json_t *k = json_object_get(body, "key");
    long long now = sl_store_now_us();
    size_t n;
    int rc;

    *out = NULL;
    memset(&v, 0, sizeof(v));
    sl_store_reset(err);
    if (!json_is_object(body))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "The request body must be a JSON object.");
    if (k != NULL && !json_is_null(k)) {
        if ((rc = check_raw_key("key", k, err)) != SL_OK)
            return rc;
        snprintf(raw, sizeof(raw), "%s", json_string_value(k));
    } else if (sl_keys_generate(raw, sizeof(raw)) != SL_OK) {
        return sl_store_fail(err, SL_ERR_INTERNAL, "Could not generate a key (no randomness).");
    }
    sl_auth_hash_key(raw, token);
    sl_keys_display_name(raw, name);
    if ((rc = sl_store_push(&v, "token", sl_db_text(token))) != SL_OK ||
        (rc = sl_store_push(&v, "key_name", sl_db_text(name))) != SL_OK ||
        (rc = sl_store_push(&v, "created_at", sl_db_time_us(now))) != SL_OK ||
        (rc = sl_store_push(&v, "updated_at", sl_db_time_us(now))) != SL_OK ||
        (rc = sl_store_push(&v, "created_by", sl_db_text(actor))) != SL_OK ||
        (rc = sl_store_push(&v, "updated_by", sl_db_text(actor))) != SL_OK ||
        (rc = collect(&v, body, now, err)) != SL_OK)
        goto out;
    n = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO " TABLE " (");
    for (size_t i = 0; i < v.n; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s%s", i ? ", " : "", v.col[i]);
    n += (size_t)snprintf(sql + n, sizeof(sql) - n, ") VALUES (");
    for (size_t i = 0; i < v.n; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s?", i ? ", " : "");
    snprintf(sql + n, sizeof(sql) - n, ")");
    if (sl_db_exec(db, sql, v.p, v.n, NULL) != SL_OK) {
        rc = dup_or_db_fail(db, body, err, "create a key");
        goto out;
    }
    sl_keys_invalidate(cfg, token);     /* a cached "no such key" must go */
    rc = generate_response(db, token, raw, out, err);
out:
    sl_store_vals_free(&v);
    explicit_bzero(raw, sizeof(raw));
    return rc;
}

/* UPDATE ... SET <v> WHERE token = where. */
static int update_row(struct sl_db *db, struct sl_store_vals *v, const char *where, const json_t *body,
                      struct sl_keystore_err *err)
{
    char sql[2048];
    size_t n = (size_t)snprintf(sql, sizeof(sql), "UPDATE " TABLE " SET ");
    int rc;

    for (size_t i = 0; i < v->n; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s%s = ?", i ? ", " : "", v->col[i]);
    snprintf(sql + n, sizeof(sql) - n, " WHERE token = ?");
    if ((rc = sl_store_push(v, "token", sl_db_text(where))) != SL_OK)
        return sl_store_fail(err, rc, "too many fields");
    if (sl_db_exec(db, sql, v->p, v->n, NULL) != SL_OK)
        return dup_or_db_fail(db, body, err, "update a key");
    return SL_OK;
}

/* The token of body's "key" (required) into token; the existing row is
 * checked. */
static int body_token(struct sl_db *db, const json_t *body, char token[65],
                      struct sl_keystore_err *err)
{
    const json_t *k = json_object_get(body, "key");
    json_t *row = NULL;
    int rc;

    if (!json_is_object(body))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "The request body must be a JSON object.");
    if (!json_is_string(k) || json_string_length(k) == 0 ||
        strlen(json_string_value(k)) != json_string_length(k))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "key is required: the key (sk-...) or its token.");
    sl_keystore_token_of(json_string_value(k), token);
    rc = sl_keystore_get(db, token, &row, err);
    json_decref(row);
    return rc;
}

int sl_keystore_update(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                       const char *actor, json_t **out, struct sl_keystore_err *err)
{
    struct sl_store_vals v;
    char token[65];
    long long now = sl_store_now_us();
    int rc;

    *out = NULL;
    memset(&v, 0, sizeof(v));
    sl_store_reset(err);
    if ((rc = body_token(db, body, token, err)) != SL_OK)
        return rc;
    if ((rc = sl_store_push(&v, "updated_at", sl_db_time_us(now))) != SL_OK ||
        (rc = sl_store_push(&v, "updated_by", sl_db_text(actor))) != SL_OK ||
        (rc = collect(&v, body, now, err)) != SL_OK ||
        (rc = update_row(db, &v, token, body, err)) != SL_OK)
        goto out;
    sl_keys_invalidate(cfg, token);
    if ((rc = sl_keystore_get(db, token, out, err)) == SL_OK) {
        if (json_object_get(body, "spend") != NULL || json_object_get(body, "budget_duration") != NULL)
            sl_budget_forget_row(cfg, SL_BUDGET_KEY, token, *out);
        json_object_set(*out, "key", json_object_get(body, "key"));
    }
out:
    sl_store_vals_free(&v);
    return rc;
}

int sl_keystore_set_blocked(struct sl_db *db, const struct sl_config *cfg, const char *key,
                            int blocked, json_t **out, struct sl_keystore_err *err)
{
    json_t *body = json_pack("{s:s, s:b}", "key", key ? key : "", "blocked", blocked);
    int rc;

    *out = NULL;
    sl_store_reset(err);
    if (body == NULL)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "key must be a string.");
    rc = sl_keystore_update(db, cfg, body, NULL, out, err);
    json_decref(body);
    if (rc == SL_OK)
        json_object_del(*out, "key");   /* LiteLLM answers with the row alone */
    return rc;
}

/* The tokens body names for deletion, into toks (new array). */
static int delete_targets(struct sl_db *db, const json_t *body, json_t *toks,
                          struct sl_keystore_err *err)
{
    const json_t *keys = json_object_get(body, "keys"), *aliases = json_object_get(body, "key_aliases");
    const json_t *list = keys != NULL && !json_is_null(keys) ? keys : aliases;
    const char *name = list == keys ? "keys" : "key_aliases";
    char token[65];
    int row = 0;

    if (list == NULL || json_is_null(list))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "keys or key_aliases is required: a list of keys "
                    "(sk-... or tokens) or of key aliases.");
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 1000)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a list of 1 to 1000 strings.", name);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *s = json_array_get(list, i);
        struct sl_db_param p;

        if (!json_is_string(s))
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a list of strings (item %zu is "
                        "not a string).", name, i);
        if (list == keys) {
            sl_keystore_token_of(json_string_value(s), token);
            p = sl_db_text(token);
        } else {
            p = sl_db_textn(json_string_value(s), json_string_length(s));
        }
        if (sl_db_query(db, list == keys ? "SELECT token FROM " TABLE " WHERE token = ?"
                                         : "SELECT token FROM " TABLE " WHERE key_alias = ?",
                        &p, 1) != SL_OK || sl_db_fetch(db, &row) != SL_OK)
            return sl_store_db_fail(db, err, "keystore", "key tables", "find a key");
        if (row)
            json_array_append_new(toks, json_string(sl_db_col_text(db, 0, NULL)));
        sl_db_query_end(db);
        if (!row)
            return sl_store_fail(err, SL_ERR_NOT_FOUND, "Key not found in database: %s %.300s. Nothing "
                        "was deleted.", list == keys ? "key" : "key_alias",
                        list == keys ? token : json_string_value(s));
    }
    return SL_OK;
}

int sl_keystore_delete(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                       json_t **out, struct sl_keystore_err *err)
{
    json_t *toks = json_array();
    const json_t *keys = json_object_get(body, "keys");
    int rc;

    *out = NULL;
    sl_store_reset(err);
    if (toks == NULL)
        return sl_store_fail(err, SL_ERR_NOMEM, "out of memory");
    if (!json_is_object(body)) {
        rc = sl_store_fail(err, SL_ERR_BAD_REQUEST, "The request body must be a JSON object.");
        goto out;
    }
    if ((rc = delete_targets(db, body, toks, err)) != SL_OK)
        goto out;
    if (sl_db_begin(db) != SL_OK) {
        rc = sl_store_db_fail(db, err, "keystore", "key tables", "delete keys");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(toks); i++) {
        struct sl_db_param p = sl_db_text(json_string_value(json_array_get(toks, i)));

        if (sl_db_exec(db, "DELETE FROM " TABLE " WHERE token = ?", &p, 1, NULL) != SL_OK) {
            rc = sl_store_db_fail(db, err, "keystore", "key tables", "delete keys");
            sl_db_rollback(db);
            goto out;
        }
    }
    if (sl_db_commit(db) != SL_OK) {
        rc = sl_store_db_fail(db, err, "keystore", "key tables", "delete keys");
        sl_db_rollback(db);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(toks); i++)
        sl_keys_invalidate(cfg, json_string_value(json_array_get(toks, i)));
    *out = json_pack("{s:O}", "deleted_keys",
                     keys != NULL && !json_is_null(keys) ? keys : json_object_get(body, "key_aliases"));
    rc = *out != NULL ? SL_OK : sl_store_fail(err, SL_ERR_NOMEM, "out of memory");
out:
    json_decref(toks);
    return rc;
}

int sl_keystore_list(struct sl_db *db, const struct sl_keystore_filter *f, json_t **out,
                     struct sl_keystore_err *err)
{
    struct sl_db_param p[8] = {
        sl_db_text(f->user_id), sl_db_text(f->user_id), sl_db_text(f->team_id),
        sl_db_text(f->team_id), sl_db_text(f->key_alias), sl_db_text(f->key_alias),
    };
#define WHERE "WHERE (? IS NULL OR user_id = ?) AND (? IS NULL OR team_id = ?) " \
              "AND (? IS NULL OR key_alias = ?)"
    char sql[1400];
    json_t *keys = json_array();
    long long total = 0;
    int row = 0, rc = SL_OK;

    *out = NULL;
    sl_store_reset(err);
    if (keys == NULL)
        return sl_store_fail(err, SL_ERR_NOMEM, "out of memory");
    if (sl_db_query(db, "SELECT COUNT(*) FROM " TABLE " " WHERE, p, 6) != SL_OK ||
        sl_db_fetch(db, &row) != SL_OK) {
        rc = sl_store_db_fail(db, err, "keystore", "key tables", "list keys");
        goto out;
    }
    total = row ? sl_db_col_int(db, 0) : 0;
    sl_db_query_end(db);
    p[6] = sl_db_int(f->size);
    p[7] = sl_db_int((f->page - 1) * f->size);
    select_sql(sql, sizeof(sql), WHERE " ORDER BY created_at DESC, token LIMIT ? OFFSET ?");
#undef WHERE
    if (sl_db_query(db, sql, p, 8) != SL_OK) {
        rc = sl_store_db_fail(db, err, "keystore", "key tables", "list keys");
        goto out;
    }
    while ((rc = sl_db_fetch(db, &row)) == SL_OK && row)
        json_array_append_new(keys, f->full ? row_json(db)
                                            : json_string(sl_db_col_text(db, 0, NULL)));
    sl_db_query_end(db);
    if (rc != SL_OK) {
        rc = sl_store_db_fail(db, err, "keystore", "key tables", "list keys");
        goto out;
    }
    *out = json_pack("{s:O, s:I, s:I, s:I}", "keys", keys, "total_count", (json_int_t)total,
                     "current_page", (json_int_t)f->page,
                     "total_pages", (json_int_t)((total + f->size - 1) / f->size));
    if (*out == NULL)
        rc = sl_store_fail(err, SL_ERR_NOMEM, "out of memory");
out:
    json_decref(keys);
    return rc;
}

int sl_keystore_regenerate(struct sl_db *db, const struct sl_config *cfg, const char *key,
                           const json_t *body, const char *actor, json_t **out,
                           struct sl_keystore_err *err)
{
    struct sl_store_vals v;
    char old[65], raw[256], token[65], name[16];
    const json_t *nk = json_object_get(body, "new_key"), *gp = json_object_get(body, "grace_period");
    json_t *row = NULL;
    long long now = sl_store_now_us(), rotations;
    int rc;

    *out = NULL;
    memset(&v, 0, sizeof(v));
    sl_store_reset(err);
    if (!json_is_object(body))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "The request body must be a JSON object.");
    if (key == NULL || *key == '\0')
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "key is required: the key (sk-...) or its token.");
    if (gp != NULL && !json_is_null(gp))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "grace_period is not supported: the old key stops "
                    "working at once.");
    sl_keystore_token_of(key, old);
    if ((rc = sl_keystore_get(db, old, &row, err)) != SL_OK)
        return rc;
    rotations = json_integer_value(json_object_get(row, "rotation_count")) + 1;
    json_decref(row);
    if (nk != NULL && !json_is_null(nk)) {
        if ((rc = check_raw_key("new_key", nk, err)) != SL_OK)
            return rc;
        snprintf(raw, sizeof(raw), "%s", json_string_value(nk));
    } else if (sl_keys_generate(raw, sizeof(raw)) != SL_OK) {
        return sl_store_fail(err, SL_ERR_INTERNAL, "Could not generate a key (no randomness).");
    }
    sl_auth_hash_key(raw, token);
    sl_keys_display_name(raw, name);
    if ((rc = sl_store_push(&v, "token", sl_db_text(token))) != SL_OK ||
        (rc = sl_store_push(&v, "key_name", sl_db_text(name))) != SL_OK ||
        (rc = sl_store_push(&v, "last_rotation_at", sl_db_time_us(now))) != SL_OK ||
        (rc = sl_store_push(&v, "rotation_count", sl_db_int(rotations))) != SL_OK ||
        (rc = sl_store_push(&v, "updated_at", sl_db_time_us(now))) != SL_OK ||
        (rc = sl_store_push(&v, "updated_by", sl_db_text(actor))) != SL_OK ||
        (rc = collect(&v, body, now, err)) != SL_OK ||
        (rc = update_row(db, &v, old, body, err)) != SL_OK)
        goto out;
    sl_keys_invalidate(cfg, old);
    sl_keys_invalidate(cfg, token);
    rc = generate_response(db, token, raw, out, err);
out:
    sl_store_vals_free(&v);
    explicit_bzero(raw, sizeof(raw));
    return rc;
}

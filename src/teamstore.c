/* Team and user rows: LiteLLM's /team/... and /user/... bodies validated
 * field by field (a message naming the field for anything wrong), turned
 * into parameterised statements on LiteLLM_TeamTable, LiteLLM_UserTable and
 * LiteLLM_TeamMembership, and rows turned back into LiteLLM's objects. The
 * two tables share one engine, driven by a constant description of each
 * (struct entity): SQL text is assembled only from those column names;
 * every value is a parameter. Membership lives in three places, kept in step
 * here: the team's members_with_roles, the user's teams and a
 * LiteLLM_TeamMembership row. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>

#include "db.h"
#include "keys.h"
#include "keystore.h"
#include "log.h"
#include "status.h"
#include "storeutil.h"
#include "teamstore.h"

#define TEAMS "LiteLLM_TeamTable"
#define USERS "LiteLLM_UserTable"
#define MEMBERS "LiteLLM_TeamMembership"
#define KEYS "LiteLLM_VerificationToken"

/* The shared field types (storeutil.h), and a role. */
#define F_ROLE 100

struct field { const char *name; int type; };

struct entity {
    const char *table, *id, *what;            /* "team" / "user" */
    const struct field *fields;
    size_t n_fields;
    const struct field *cols;                 /* ctype */
    size_t n_cols;
};

static const struct field team_fields[] = {
    { "team_alias", SL_F_TEXT }, { "organization_id", SL_F_TEXT }, { "models", SL_F_LIST },
    { "max_budget", SL_F_MONEY }, { "soft_budget", SL_F_MONEY }, { "tpm_limit", SL_F_BIGINT },
    { "rpm_limit", SL_F_BIGINT }, { "max_parallel_requests", SL_F_INT }, { "budget_duration", SL_F_DUR },
    { "metadata", SL_F_OBJ }, { "model_max_budget", SL_F_OBJ }, { "blocked", SL_F_BOOL },
    { "team_member_permissions", SL_F_LIST },
};
static const struct field team_cols[] = {
    { "team_id", SL_C_TEXT }, { "team_alias", SL_C_TEXT }, { "organization_id", SL_C_TEXT },
    { "admins", SL_C_JSON }, { "members", SL_C_JSON }, { "members_with_roles", SL_C_JSON },
    { "metadata", SL_C_JSON }, { "max_budget", SL_C_MONEY }, { "soft_budget", SL_C_MONEY },
    { "spend", SL_C_MONEY }, { "models", SL_C_JSON }, { "max_parallel_requests", SL_C_INT },
    { "tpm_limit", SL_C_INT }, { "rpm_limit", SL_C_INT }, { "budget_duration", SL_C_TEXT },
    { "budget_reset_at", SL_C_TIME }, { "blocked", SL_C_BOOL }, { "created_at", SL_C_TIME },
    { "updated_at", SL_C_TIME }, { "model_spend", SL_C_JSON }, { "model_max_budget", SL_C_JSON },
    { "team_member_permissions", SL_C_JSON },
};
static const struct field user_fields[] = {
    { "user_alias", SL_F_TEXT }, { "user_email", SL_F_TEXT }, { "user_role", F_ROLE },
    { "team_id", SL_F_TEXT }, { "organization_id", SL_F_TEXT }, { "sso_user_id", SL_F_TEXT },
    { "models", SL_F_LIST }, { "max_budget", SL_F_MONEY }, { "tpm_limit", SL_F_BIGINT },
    { "rpm_limit", SL_F_BIGINT }, { "max_parallel_requests", SL_F_INT }, { "budget_duration", SL_F_DUR },
    { "metadata", SL_F_OBJ }, { "model_max_budget", SL_F_OBJ }, { "allowed_cache_controls", SL_F_LIST },
};
static const struct field user_cols[] = {
    { "user_id", SL_C_TEXT }, { "user_alias", SL_C_TEXT }, { "team_id", SL_C_TEXT },
    { "sso_user_id", SL_C_TEXT }, { "organization_id", SL_C_TEXT }, { "teams", SL_C_JSON },
    { "user_role", SL_C_TEXT }, { "max_budget", SL_C_MONEY }, { "spend", SL_C_MONEY },
    { "user_email", SL_C_TEXT }, { "models", SL_C_JSON }, { "metadata", SL_C_JSON },
    { "max_parallel_requests", SL_C_INT }, { "tpm_limit", SL_C_INT }, { "rpm_limit", SL_C_INT },
    { "budget_duration", SL_C_TEXT }, { "budget_reset_at", SL_C_TIME },
    { "allowed_cache_controls", SL_C_JSON }, { "model_spend", SL_C_JSON },
    { "model_max_budget", SL_C_JSON }, { "created_at", SL_C_TIME }, { "updated_at", SL_C_TIME },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
static const struct entity TEAM = { TEAMS, "team_id", "team", team_fields, N(team_fields),
                                    team_cols, N(team_cols) };
static const struct entity USER = { USERS, "user_id", "user", user_fields, N(user_fields),
                                    user_cols, N(user_cols) };

static const char *const roles[] = {
    "proxy_admin", "proxy_admin_viewer", "org_admin", "internal_user", "internal_user_viewer",
    "team", "customer",
};

/* ---- small helpers (the same rules as keystore.c) ------------------------ */

/* An id (team_id, user_id): a non-empty string of up to 255 characters. */
static int check_id(const char *name, const json_t *j, struct sl_keystore_err *err)
{
    int rc = sl_store_check_text(name, j, err);

    if (rc == SL_OK && json_string_length(j) == 0)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must not be empty.", name);
    return rc;
}

static int take_field(struct sl_store_vals *v, const struct field *f, const json_t *j, long long now,
                      struct sl_keystore_err *err)
{
    if (f->type == F_ROLE && !json_is_null(j)) {
        size_t i;

        for (i = 0; i < N(roles); i++)
            if (json_is_string(j) && strcmp(json_string_value(j), roles[i]) == 0)
                break;
        if (i == N(roles))
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be one of proxy_admin, "
                                 "proxy_admin_viewer, org_admin, internal_user, "
                                 "internal_user_viewer, team, customer.", f->name);
    }
    return sl_store_take_field(v, f->name, f->type == F_ROLE ? SL_F_TEXT : f->type, j, now, err);
}

static int collect(const struct entity *e, struct sl_store_vals *v, const json_t *body, long long now,
                   struct sl_keystore_err *err)
{
    const json_t *j;
    int rc;

    for (size_t i = 0; i < e->n_fields; i++) {
        if ((j = json_object_get(body, e->fields[i].name)) == NULL)
            continue;
        if ((rc = take_field(v, &e->fields[i], j, now, err)) != SL_OK)
            return rc == SL_ERR_NOMEM ? sl_store_oom(err)
                   : err->status == SL_OK ? sl_store_fail(err, rc, "too many fields") : rc;
    }
    return SL_OK;
}

/* A random UUID (version 4), as LiteLLM makes team and user ids. */
static int make_uuid(char out[37])
{
    unsigned char r[16];

    if (RAND_bytes(r, (int)sizeof(r)) != 1)
        return SL_ERR_INTERNAL;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
             r[13], r[14], r[15]);
    return SL_OK;
}

/* ---- rows → JSON -------------------------------------------------------- */

static void select_sql(const struct entity *e, char *out, size_t size, const char *tail)
{
    size_t n = (size_t)snprintf(out, size, "SELECT ");

    for (size_t i = 0; i < e->n_cols && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? ", " : "", e->cols[i].name);
    if (n < size)
        snprintf(out + n, size - n, " FROM %s %s", e->table, tail);
}

static json_t *row_json(const struct entity *e, struct sl_db *db)
{
    json_t *o = json_object();

    for (unsigned i = 0; o != NULL && i < e->n_cols; i++)
        json_object_set_new(o, e->cols[i].name, sl_store_column(db, i, e->cols[i].type));
    return o;
}

/* The row of id as an object (new reference). SL_ERR_NOT_FOUND when none. */
static int get_row(struct sl_db *db, const struct entity *e, const char *id, json_t **out,
                   struct sl_keystore_err *err)
{
    char sql[1024], tail[64];
    struct sl_db_param p = sl_db_text(id);
    int row = 0;

    *out = NULL;
    snprintf(tail, sizeof(tail), "WHERE %s = ? LIMIT 1", e->id);
    select_sql(e, sql, sizeof(sql), tail);
    if (sl_db_query(db, sql, &p, 1) != SL_OK || sl_db_fetch(db, &row) != SL_OK)
        return sl_store_db_fail(db, err, "teamstore", "team and user tables", e == &TEAM ? "read a team" : "read a user");
    if (!row) {
        sl_db_query_end(db);
        return sl_store_fail(err, SL_ERR_NOT_FOUND, "%s %s=%.300s not found.",
                    e == &TEAM ? "Team" : "User", e->id, id);
    }
    *out = row_json(e, db);
    sl_db_query_end(db);
    return *out != NULL ? SL_OK : sl_store_oom(err);
}

/* Every row matching tail (with its params) into arr. */
static int get_rows(struct sl_db *db, const struct entity *e, const char *tail,
                    const struct sl_db_param *p, size_t n, json_t *arr,
                    struct sl_keystore_err *err)
{
    char sql[2048];
    int row = 0, rc;

    select_sql(e, sql, sizeof(sql), tail);
    if (sl_db_query(db, sql, p, n) != SL_OK)
        return sl_store_db_fail(db, err, "teamstore", "team and user tables", "list rows");
    while ((rc = sl_db_fetch(db, &row)) == SL_OK && row)
        json_array_append_new(arr, row_json(e, db));
    sl_db_query_end(db);
    return rc == SL_OK ? SL_OK : sl_store_db_fail(db, err, "teamstore", "team and user tables", "list rows");
}

static int insert_row(struct sl_db *db, const struct entity *e, struct sl_store_vals *v, const char *id,
                      struct sl_keystore_err *err)
{
    char sql[2048];
    size_t n = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s (", e->table);

    for (size_t i = 0; i < v->n; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s%s", i ? ", " : "", v->col[i]);
    n += (size_t)snprintf(sql + n, sizeof(sql) - n, ") VALUES (");
    for (size_t i = 0; i < v->n; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s?", i ? ", " : "");
    snprintf(sql + n, sizeof(sql) - n, ")");
    if (sl_db_exec(db, sql, v->p, v->n, NULL) == SL_OK)
        return SL_OK;
    if (sl_db_last_error(db)->kind == SL_DB_ERR_DUPLICATE) {
        if (strstr(sl_db_last_error(db)->message, "uq_user_sso") != NULL)
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "sso_user_id is already used by another user.");
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s %s = %.300s already exists. Please use a "
                    "different %s.", e == &TEAM ? "Team" : "User", e->id, id, e->id);
    }
    return sl_store_db_fail(db, err, "teamstore", "team and user tables", e == &TEAM ? "create a team" : "create a user");
}

static int update_row(struct sl_db *db, const struct entity *e, struct sl_store_vals *v, const char *id,
                      struct sl_keystore_err *err)
{
    char sql[2048];
    size_t n = (size_t)snprintf(sql, sizeof(sql), "UPDATE %s SET ", e->table);

    for (size_t i = 0; i < v->n; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s%s = ?", i ? ", " : "", v->col[i]);
    snprintf(sql + n, sizeof(sql) - n, " WHERE %s = ?", e->id);
    if (sl_store_push(v, e->id, sl_db_text(id)) != SL_OK)
        return sl_store_fail(err, SL_ERR_INTERNAL, "too many fields");
    if (sl_db_exec(db, sql, v->p, v->n, NULL) == SL_OK)
        return SL_OK;
    if (sl_db_last_error(db)->kind == SL_DB_ERR_DUPLICATE)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "sso_user_id is already used by another user.");
    return sl_store_db_fail(db, err, "teamstore", "team and user tables", e == &TEAM ? "update a team" : "update a user");
}

/* One JSON column of one row set to j. */
static int set_json(struct sl_db *db, const struct entity *e, const char *col, const char *id,
                    const json_t *j, struct sl_keystore_err *err)
{
    struct sl_store_vals v;
    int rc;

    memset(&v, 0, sizeof(v));
    if ((rc = sl_store_push_json(&v, col, j)) != SL_OK ||
        (rc = sl_store_push(&v, "updated_at", sl_db_time_us(sl_store_now_us()))) != SL_OK)
        rc = sl_store_oom(err);
    else
        rc = update_row(db, e, &v, id, err);
    sl_store_vals_free(&v);
    return rc;
}

/* ---- membership ---------------------------------------------------------- */

/* The index of user_id in members_with_roles, or -1. */
static long member_index(const json_t *mwr, const char *user_id)
{
    size_t i;
    const json_t *m;

    json_array_foreach(mwr, i, m) {
        const char *u = json_string_value(json_object_get(m, "user_id"));

        if (u != NULL && strcmp(u, user_id) == 0)
            return (long)i;
    }
    return -1;
}

/* A member object {user_id?, user_email?, role?} checked; *uid and *email
 * borrowed from m (either may be NULL, not both); *role "user" by default. */
static int check_member(const json_t *m, const char *name, const char **uid, const char **email,
                        const char **role, struct sl_keystore_err *err)
{
    const json_t *u = json_object_get(m, "user_id"), *e = json_object_get(m, "user_email"),
                 *r = json_object_get(m, "role");
    char fname[64];
    int rc;

    if (!json_is_object(m))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be an object {\"user_id\", "
                    "\"user_email\", \"role\"} or a list of them.", name);
    *uid = *email = NULL;
    *role = "user";
    snprintf(fname, sizeof(fname), "%s.user_id", name);
    if (u != NULL && !json_is_null(u)) {
        if ((rc = check_id(fname, u, err)) != SL_OK)
            return rc;
        *uid = json_string_value(u);
    }
    snprintf(fname, sizeof(fname), "%s.user_email", name);
    if (e != NULL && !json_is_null(e)) {
        if ((rc = check_id(fname, e, err)) != SL_OK)
            return rc;
        *email = json_string_value(e);
    }
    if (*uid == NULL && *email == NULL)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s needs a user_id or a user_email.", name);
    if (r != NULL && !json_is_null(r)) {
        if (!json_is_string(r) || (strcmp(json_string_value(r), "admin") != 0 &&
                                   strcmp(json_string_value(r), "user") != 0))
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s.role must be \"admin\" or \"user\".", name);
        *role = json_string_value(r);
    }
    return SL_OK;
}

/* The user_id of the user with email, into out (36+ chars), or "" when none. */
static int user_by_email(struct sl_db *db, const char *email, char *out, size_t size,
                         struct sl_keystore_err *err)
{
    struct sl_db_param p = sl_db_text(email);
    int row = 0;

    out[0] = '\0';
    if (sl_db_query(db, "SELECT user_id FROM " USERS " WHERE user_email = ? ORDER BY created_at "
                    "LIMIT 1", &p, 1) != SL_OK || sl_db_fetch(db, &row) != SL_OK)
        return sl_store_db_fail(db, err, "teamstore", "team and user tables", "find a user");
    if (row)
        snprintf(out, size, "%s", sl_db_col_text(db, 0, NULL));
    sl_db_query_end(db);
    return SL_OK;
}

/* Adds one member to team (row: the team object, updated in place): the
 * user (created when missing) gets team_id in teams, a membership row is
 * made. *user: the user object after (new reference). */
static int add_member(struct sl_db *db, json_t *team, const char *uid, const char *email,
                      const char *role, json_t **user, struct sl_keystore_err *err)
{
    const char *team_id = json_string_value(json_object_get(team, "team_id"));
    json_t *mwr = json_object_get(team, "members_with_roles"), *teams;
    char id[300];
    struct sl_db_param p[2];
    int rc;

    *user = NULL;
    if (uid != NULL)
        snprintf(id, sizeof(id), "%s", uid);
    else if ((rc = user_by_email(db, email, id, sizeof(id), err)) != SL_OK)
        return rc;
    if (id[0] == '\0' && make_uuid(id) != SL_OK)
        return sl_store_fail(err, SL_ERR_INTERNAL, "Could not make a user id (no randomness).");
    if (!json_is_array(mwr)) {
        mwr = json_array();
        json_object_set_new(team, "members_with_roles", mwr);
    }
    if (member_index(mwr, id) >= 0)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "User %.300s is already a member of team "
                    "%.300s.", id, team_id);
    rc = get_row(db, &USER, id, user, err);
    if (rc == SL_ERR_NOT_FOUND) {
        struct sl_store_vals v;
        long long now = sl_store_now_us();

        memset(&v, 0, sizeof(v));
        sl_store_reset(err);
        if (sl_store_push(&v, "user_id", sl_db_text(id)) != SL_OK ||
            sl_store_push(&v, "user_email", sl_db_text(email)) != SL_OK ||
            sl_store_push(&v, "user_role", sl_db_text("internal_user")) != SL_OK ||
            sl_store_push(&v, "created_at", sl_db_time_us(now)) != SL_OK ||
            sl_store_push(&v, "updated_at", sl_db_time_us(now)) != SL_OK)
            rc = sl_store_oom(err);
        else
            rc = insert_row(db, &USER, &v, id, err);
        sl_store_vals_free(&v);
        if (rc == SL_OK)
            rc = get_row(db, &USER, id, user, err);
    }
    if (rc != SL_OK)
        return rc;
    teams = json_object_get(*user, "teams");
    if (!json_is_array(teams)) {
        teams = json_array();
        json_object_set_new(*user, "teams", teams);
    }
    {
        int have = 0;
        size_t i;
        const json_t *t;

        json_array_foreach(teams, i, t)
            have |= json_is_string(t) && strcmp(json_string_value(t), team_id) == 0;
        if (!have && (json_array_append_new(teams, json_string(team_id)) != 0 ||
                      (rc = set_json(db, &USER, "teams", id, teams, err)) != SL_OK))
            return rc != SL_OK ? rc : sl_store_oom(err);
    }
    if (json_array_append_new(mwr, json_pack("{s:s, s:s*, s:s}", "user_id", id,
                                             "user_email", email, "role", role)) != 0)
        return sl_store_oom(err);
    if ((rc = set_json(db, &TEAM, "members_with_roles", team_id, mwr, err)) != SL_OK)
        return rc;
    p[0] = sl_db_text(id);
    p[1] = sl_db_text(team_id);
    if (sl_db_exec(db, "INSERT IGNORE INTO " MEMBERS " (user_id, team_id) VALUES (?, ?)", p, 2,
                   NULL) != SL_OK)
        return sl_store_db_fail(db, err, "teamstore", "team and user tables", "add a team member");
    return SL_OK;
}

/* Ends a transaction: commit when rc is SL_OK, else roll back. */
static int tx_end(struct sl_db *db, int rc, struct sl_keystore_err *err)
{
    if (rc == SL_OK && sl_db_commit(db) == SL_OK)
        return SL_OK;
    if (rc == SL_OK)
        rc = sl_store_db_fail(db, err, "teamstore", "team and user tables", "commit");
    sl_db_rollback(db);
    return rc;
}

static int begin(struct sl_db *db, struct sl_keystore_err *err)
{
    return sl_db_begin(db) == SL_OK ? SL_OK : sl_store_db_fail(db, err, "teamstore", "team and user tables", "start a transaction");
}

/* Removes every element of arr that is the string s or a member object of
 * user_id s (by_member). 1 when something went. */
static int strip(json_t *arr, const char *s, int by_member)
{
    int gone = 0;

    for (size_t i = json_array_size(arr); i-- > 0;) {
        const json_t *x = json_array_get(arr, i);
        const char *v = by_member ? json_string_value(json_object_get(x, "user_id"))
                                  : json_string_value(x);

        if (v != NULL && strcmp(v, s) == 0) {
            json_array_remove(arr, i);
            gone = 1;
        }
    }
    return gone;
}

/* Removes id from col of every row of e that holds it (the user's teams, the
 * team's members_with_roles). */
static int strip_refs(struct sl_db *db, const struct entity *e, const char *col,
                      const char *match, const char *id, int by_member,
                      struct sl_keystore_err *err)
{
    char sql[512];
    struct sl_db_param p = sl_db_text(id);
    json_t *rows = json_array();
    int row = 0, rc = SL_OK;
    size_t i;
    json_t *r;

    if (rows == NULL)
        return sl_store_oom(err);
    snprintf(sql, sizeof(sql), "SELECT %s, %s FROM %s WHERE %s", e->id, col, e->table, match);
    if (sl_db_query(db, sql, &p, 1) != SL_OK) {
        json_decref(rows);
        return sl_store_db_fail(db, err, "teamstore", "team and user tables", "find memberships");
    }
    while ((rc = sl_db_fetch(db, &row)) == SL_OK && row) {
        size_t len;
        const char *s = sl_db_col_text(db, 1, &len);

        json_array_append_new(rows, json_pack("[s, o]", sl_db_col_text(db, 0, NULL),
                                              json_loadb(s ? s : "[]", s ? len : 2, 0, NULL)));
    }
    sl_db_query_end(db);
    if (rc != SL_OK)
        rc = sl_store_db_fail(db, err, "teamstore", "team and user tables", "find memberships");
    json_array_foreach(rows, i, r) {
        json_t *arr = json_array_get(r, 1);

        if (rc != SL_OK)
            break;
        if (json_is_array(arr) && strip(arr, id, by_member))
            rc = set_json(db, e, col, json_string_value(json_array_get(r, 0)), arr, err);
    }
    json_decref(rows);
    return rc;
}

/* Tokens of the keys whose col is id, appended to toks; then those keys go. */
static int delete_keys(struct sl_db *db, const char *col, const char *id, json_t *toks,
                       struct sl_keystore_err *err)
{
    char sql[256];
    struct sl_db_param p = sl_db_text(id);
    int row = 0, rc;

    snprintf(sql, sizeof(sql), "SELECT token FROM " KEYS " WHERE %s = ?", col);
    if (sl_db_query(db, sql, &p, 1) != SL_OK)
        return sl_store_db_fail(db, err, "teamstore", "team and user tables", "find keys");
    while ((rc = sl_db_fetch(db, &row)) == SL_OK && row)
        json_array_append_new(toks, json_string(sl_db_col_text(db, 0, NULL)));
    sl_db_query_end(db);
    if (rc != SL_OK)
        return sl_store_db_fail(db, err, "teamstore", "team and user tables", "find keys");
    snprintf(sql, sizeof(sql), "DELETE FROM " KEYS " WHERE %s = ?", col);
    return sl_db_exec(db, sql, &p, 1, NULL) == SL_OK ? SL_OK : sl_store_db_fail(db, err, "teamstore", "team and user tables", "delete keys");
}

/* ---- teams --------------------------------------------------------------- */

/* members_with_roles of a /team/new body: a list of member objects. */
static int add_members(struct sl_db *db, json_t *team, const json_t *list, const char *name,
                       json_t *users, json_t *memberships, struct sl_keystore_err *err)
{
    const json_t *m;
    size_t i;
    int rc;

    json_array_foreach(list, i, m) {
        const char *uid = NULL, *email = NULL, *role = "user";
        json_t *user = NULL;

        if ((rc = check_member(m, name, &uid, &email, &role, err)) != SL_OK ||
            (rc = add_member(db, team, uid, email, role, &user, err)) != SL_OK)
            return rc;
        if (memberships != NULL)
            json_array_append_new(memberships, json_pack(
                "{s:O, s:O, s:f, s:n, s:n}", "user_id", json_object_get(user, "user_id"),
                "team_id", json_object_get(team, "team_id"), "spend", 0.0, "budget_id",
                "litellm_budget_table"));
        if (users != NULL)
            json_array_append(users, user);
        json_decref(user);
    }
    return SL_OK;
}

int sl_teamstore_team_new(struct sl_db *db, const json_t *body, json_t **out,
                          struct sl_keystore_err *err)
{
    const json_t *tid = json_object_get(body, "team_id"), *mwr;
    struct sl_store_vals v;
    char id[300];
    long long now = sl_store_now_us();
    int rc;

    *out = NULL;
    memset(&v, 0, sizeof(v));
    sl_store_reset(err);
    if (!json_is_object(body))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "The request body must be a JSON object.");
    if (tid != NULL && !json_is_null(tid)) {
        if ((rc = check_id("team_id", tid, err)) != SL_OK)
            return rc;
        snprintf(id, sizeof(id), "%s", json_string_value(tid));
    } else if (make_uuid(id) != SL_OK) {
        return sl_store_fail(err, SL_ERR_INTERNAL, "Could not make a team id (no randomness).");
    }
    mwr = json_object_get(body, "members_with_roles");
    if (mwr != NULL && !json_is_null(mwr) && !json_is_array(mwr))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "members_with_roles must be a list of "
                    "{\"user_id\", \"user_email\", \"role\"} objects.");
    if ((rc = sl_store_push(&v, "team_id", sl_db_text(id))) != SL_OK ||
        (rc = sl_store_push(&v, "created_at", sl_db_time_us(now))) != SL_OK ||
        (rc = sl_store_push(&v, "updated_at", sl_db_time_us(now))) != SL_OK ||
        (rc = collect(&TEAM, &v, body, now, err)) != SL_OK)
        goto out;
    if ((rc = begin(db, err)) != SL_OK)
        goto out;
    if ((rc = insert_row(db, &TEAM, &v, id, err)) == SL_OK &&
        (rc = get_row(db, &TEAM, id, out, err)) == SL_OK && json_is_array(mwr))
        rc = add_members(db, *out, mwr, "members_with_roles", NULL, NULL, err);
    if ((rc = tx_end(db, rc, err)) != SL_OK) {
        json_decref(*out);
        *out = NULL;
    }
out:
    sl_store_vals_free(&v);
    return rc;
}

/* The id body names (team_id / user_id), checked to exist. */
static int body_id(struct sl_db *db, const struct entity *e, const json_t *body, char *id,
                   size_t size, struct sl_keystore_err *err)
{
    const json_t *j = json_object_get(body, e->id);
    json_t *row = NULL;
    int rc;

    if (!json_is_object(body))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "The request body must be a JSON object.");
    if (e == &USER && (j == NULL || json_is_null(j)) &&
        json_is_string(json_object_get(body, "user_email"))) {
        if ((rc = user_by_email(db, json_string_value(json_object_get(body, "user_email")), id,
                                size, err)) != SL_OK)
            return rc;
        if (id[0] == '\0')
            return sl_store_fail(err, SL_ERR_NOT_FOUND, "User with user_email=%.300s not found.",
                        json_string_value(json_object_get(body, "user_email")));
    } else {
        if (j == NULL || json_is_null(j))
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s is required.", e->id);
        if ((rc = check_id(e->id, j, err)) != SL_OK)
            return rc;
        snprintf(id, size, "%s", json_string_value(j));
    }
    rc = get_row(db, e, id, &row, err);
    json_decref(row);
    return rc;
}

static int update_entity(struct sl_db *db, const struct entity *e, const json_t *body,
                         json_t **out, struct sl_keystore_err *err)
{
    struct sl_store_vals v;
    char id[300];
    long long now = sl_store_now_us();
    json_t *row = NULL;
    int rc;

    *out = NULL;
    memset(&v, 0, sizeof(v));
    sl_store_reset(err);
    if ((rc = body_id(db, e, body, id, sizeof(id), err)) != SL_OK)
        return rc;
    if ((rc = sl_store_push(&v, "updated_at", sl_db_time_us(now))) != SL_OK ||
        (rc = collect(e, &v, body, now, err)) != SL_OK ||
        (rc = update_row(db, e, &v, id, err)) != SL_OK ||
        (rc = get_row(db, e, id, &row, err)) != SL_OK)
        goto out;
    *out = json_pack("{s:s, s:o}", e->id, id, "data", row);
    rc = *out != NULL ? SL_OK : sl_store_oom(err);
out:
    sl_store_vals_free(&v);
    return rc;
}

int sl_teamstore_team_update(struct sl_db *db, const json_t *body, json_t **out,
                             struct sl_keystore_err *err)
{
    if (json_object_get(body, "members_with_roles") != NULL) {
        sl_store_reset(err);
        *out = NULL;
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "members_with_roles cannot be changed by "
                    "/team/update: use /team/member_add and /team/member_delete.");
    }
    return update_entity(db, &TEAM, body, out, err);
}

/* /team/delete and /user/delete: every id exists, then in one transaction
 * the rows, their memberships (both sides) and their keys go. */
static int delete_entities(struct sl_db *db, const struct sl_config *cfg, const struct entity *e,
                           const json_t *body, const char *name, const char *outname,
                           json_t **out, struct sl_keystore_err *err)
{
    const json_t *list = json_object_get(body, name), *s;
    json_t *toks = NULL, *row = NULL;
    char sql[256];
    size_t i;
    int rc;

    *out = NULL;
    sl_store_reset(err);
    if (!json_is_object(body))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "The request body must be a JSON object.");
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 1000)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s is required: a list of 1 to 1000 ids.", name);
    json_array_foreach(list, i, s) {
        if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a list of strings (item %zu is "
                        "not a string).", name, i);
        if ((rc = get_row(db, e, json_string_value(s), &row, err)) != SL_OK) {
            if (rc == SL_ERR_NOT_FOUND)
                sl_store_fail(err, rc, "%s %s=%.300s not found. Nothing was deleted.",
                     e == &TEAM ? "Team" : "User", e->id, json_string_value(s));
            return rc;
        }
        json_decref(row);
    }
    if ((toks = json_array()) == NULL)
        return sl_store_oom(err);
    if ((rc = begin(db, err)) != SL_OK)
        goto out;
    json_array_foreach(list, i, s) {
        const char *id = json_string_value(s);
        struct sl_db_param p = sl_db_text(id);

        if (e == &TEAM)
            rc = strip_refs(db, &USER, "teams", "JSON_CONTAINS(teams, JSON_QUOTE(?))", id, 0, err);
        else
            rc = strip_refs(db, &TEAM, "members_with_roles",
                            "JSON_CONTAINS(members_with_roles, JSON_OBJECT('user_id', ?))", id, 1,
                            err);
        if (rc != SL_OK || (rc = delete_keys(db, e->id, id, toks, err)) != SL_OK)
            break;
        snprintf(sql, sizeof(sql), "DELETE FROM " MEMBERS " WHERE %s = ?", e->id);
        if (sl_db_exec(db, sql, &p, 1, NULL) != SL_OK) {
            rc = sl_store_db_fail(db, err, "teamstore", "team and user tables", "delete memberships");
            break;
        }
        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ?", e->table, e->id);
        if (sl_db_exec(db, sql, &p, 1, NULL) != SL_OK) {
            rc = sl_store_db_fail(db, err, "teamstore", "team and user tables", e == &TEAM ? "delete teams" : "delete users");
            break;
        }
    }
    if ((rc = tx_end(db, rc, err)) != SL_OK)
        goto out;
    json_array_foreach(toks, i, s)
        sl_keys_invalidate(cfg, json_string_value(s));
    *out = json_pack("{s:O}", outname, list);
    rc = *out != NULL ? SL_OK : sl_store_oom(err);
out:
    json_decref(toks);
    return rc;
}

int sl_teamstore_team_delete(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                             json_t **out, struct sl_keystore_err *err)
{
    return delete_entities(db, cfg, &TEAM, body, "team_ids", "deleted_teams", out, err);
}

/* Keys whose col is id, as key objects (up to 100). */
static int keys_of(struct sl_db *db, const char *col, const char *id, json_t **out,
                   struct sl_keystore_err *err)
{
    struct sl_keystore_filter f;
    json_t *list = NULL;
    int rc;

    memset(&f, 0, sizeof(f));
    f.page = 1;
    f.size = 100;
    f.full = 1;
    if (strcmp(col, "team_id") == 0)
        f.team_id = id;
    else
        f.user_id = id;
    if ((rc = sl_keystore_list(db, &f, &list, err)) != SL_OK)
        return rc;
    *out = json_incref(json_object_get(list, "keys"));
    json_decref(list);
    return *out != NULL ? SL_OK : sl_store_oom(err);
}

static int memberships(struct sl_db *db, const char *col, const char *id, json_t **out,
                       struct sl_keystore_err *err)
{
    char sql[256];
    struct sl_db_param p = sl_db_text(id);
    int row = 0, rc;

    if ((*out = json_array()) == NULL)
        return sl_store_oom(err);
    snprintf(sql, sizeof(sql), "SELECT user_id, team_id, spend, budget_id FROM " MEMBERS
             " WHERE %s = ? ORDER BY user_id, team_id", col);
    if (sl_db_query(db, sql, &p, 1) != SL_OK)
        return sl_store_db_fail(db, err, "teamstore", "team and user tables", "read memberships");
    while ((rc = sl_db_fetch(db, &row)) == SL_OK && row)
        json_array_append_new(*out, json_pack("{s:s, s:s, s:f, s:s*, s:n}",
                                              "user_id", sl_db_col_text(db, 0, NULL),
                                              "team_id", sl_db_col_text(db, 1, NULL),
                                              "spend", sl_db_col_double(db, 2),
                                              "budget_id", sl_db_col_text(db, 3, NULL),
                                              "litellm_budget_table"));
    sl_db_query_end(db);
    return rc == SL_OK ? SL_OK : sl_store_db_fail(db, err, "teamstore", "team and user tables", "read memberships");
}

int sl_teamstore_team_info(struct sl_db *db, const char *team_id, json_t **out,
                           struct sl_keystore_err *err)
{
    json_t *team = NULL, *keys = NULL, *mem = NULL;
    int rc;

    *out = NULL;
    sl_store_reset(err);
    if (team_id == NULL || *team_id == '\0')
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "team_id is required.");
    if ((rc = get_row(db, &TEAM, team_id, &team, err)) == SL_OK &&
        (rc = keys_of(db, "team_id", team_id, &keys, err)) == SL_OK &&
        (rc = memberships(db, "team_id", team_id, &mem, err)) == SL_OK) {
        *out = json_pack("{s:s, s:O, s:O, s:O}", "team_id", team_id, "team_info", team,
                         "keys", keys, "team_memberships", mem);
        rc = *out != NULL ? SL_OK : sl_store_oom(err);
    }
    json_decref(team);
    json_decref(keys);
    json_decref(mem);
    return rc;
}

int sl_teamstore_team_list(struct sl_db *db, const char *user_id, json_t **out,
                           struct sl_keystore_err *err)
{
    struct sl_db_param p[2] = { sl_db_text(user_id), sl_db_text(user_id) };
    int rc;

    sl_store_reset(err);
    if ((*out = json_array()) == NULL)
        return sl_store_oom(err);
    rc = get_rows(db, &TEAM, "WHERE (? IS NULL OR team_id IN (SELECT team_id FROM " MEMBERS
                  " WHERE user_id = ?)) ORDER BY created_at, team_id", p, 2, *out, err);
    if (rc != SL_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int sl_teamstore_member_add(struct sl_db *db, const json_t *body, json_t **out,
                            struct sl_keystore_err *err)
{
    const json_t *m = json_object_get(body, "member");
    json_t *list = NULL, *users = json_array(), *mems = json_array();
    char id[300];
    int rc;

    *out = NULL;
    sl_store_reset(err);
    if (users == NULL || mems == NULL) {
        rc = sl_store_oom(err);
        goto out;
    }
    if ((rc = body_id(db, &TEAM, body, id, sizeof(id), err)) != SL_OK)
        goto out;
    if (json_is_object(m)) {
        list = json_pack("[O]", m);
    } else if (json_is_array(m) && json_array_size(m) > 0) {
        list = json_incref((json_t *)m);
    } else {
        rc = sl_store_fail(err, SL_ERR_BAD_REQUEST, "member is required: {\"user_id\", \"user_email\", "
                  "\"role\"} or a list of them.");
        goto out;
    }
    if ((rc = begin(db, err)) != SL_OK)
        goto out;
    if ((rc = get_row(db, &TEAM, id, out, err)) == SL_OK)
        rc = add_members(db, *out, list, "member", users, mems, err);
    if ((rc = tx_end(db, rc, err)) == SL_OK) {
        json_decref(*out);
        if ((rc = get_row(db, &TEAM, id, out, err)) == SL_OK) {
            json_object_set(*out, "updated_users", users);
            json_object_set(*out, "updated_team_memberships", mems);
        }
    }
    if (rc != SL_OK) {
        json_decref(*out);
        *out = NULL;
    }
out:
    json_decref(list);
    json_decref(users);
    json_decref(mems);
    return rc;
}

int sl_teamstore_member_delete(struct sl_db *db, const json_t *body, json_t **out,
                               struct sl_keystore_err *err)
{
    const json_t *u = json_object_get(body, "user_id"), *e = json_object_get(body, "user_email");
    json_t *team = NULL, *user = NULL, *mwr;
    char id[300], uid[300];
    struct sl_db_param p[2];
    int rc;

    *out = NULL;
    sl_store_reset(err);
    if ((rc = body_id(db, &TEAM, body, id, sizeof(id), err)) != SL_OK)
        return rc;
    if (u != NULL && !json_is_null(u)) {
        if ((rc = check_id("user_id", u, err)) != SL_OK)
            return rc;
        snprintf(uid, sizeof(uid), "%s", json_string_value(u));
    } else if (e != NULL && !json_is_null(e)) {
        if ((rc = check_id("user_email", e, err)) != SL_OK ||
            (rc = user_by_email(db, json_string_value(e), uid, sizeof(uid), err)) != SL_OK)
            return rc;
    } else {
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "user_id or user_email is required.");
    }
    if ((rc = begin(db, err)) != SL_OK)
        return rc;
    if ((rc = get_row(db, &TEAM, id, &team, err)) != SL_OK)
        goto end;
    mwr = json_object_get(team, "members_with_roles");
    if (uid[0] == '\0' || !json_is_array(mwr) || !strip(mwr, uid, 1)) {
        rc = sl_store_fail(err, SL_ERR_NOT_FOUND, "User %.300s is not a member of team %.300s.",
                  uid[0] ? uid : json_string_value(e), id);
        goto end;
    }
    if ((rc = set_json(db, &TEAM, "members_with_roles", id, mwr, err)) != SL_OK)
        goto end;
    if ((rc = get_row(db, &USER, uid, &user, err)) == SL_OK) {
        json_t *teams = json_object_get(user, "teams");

        if (json_is_array(teams) && strip(teams, id, 0) &&
            (rc = set_json(db, &USER, "teams", uid, teams, err)) != SL_OK)
            goto end;
    } else if (rc != SL_ERR_NOT_FOUND) {
        goto end;                   /* a member without a user row is still removed */
    }
    rc = SL_OK;
    sl_store_reset(err);
    p[0] = sl_db_text(uid);
    p[1] = sl_db_text(id);
    if (sl_db_exec(db, "DELETE FROM " MEMBERS " WHERE user_id = ? AND team_id = ?", p, 2,
                   NULL) != SL_OK)
        rc = sl_store_db_fail(db, err, "teamstore", "team and user tables", "delete a membership");
end:
    json_decref(team);
    json_decref(user);
    if ((rc = tx_end(db, rc, err)) != SL_OK)
        return rc;
    return get_row(db, &TEAM, id, out, err);
}

/* ---- users --------------------------------------------------------------- */

int sl_teamstore_user_new(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                          const char *actor, json_t **out, struct sl_keystore_err *err)
{
    const json_t *uid = json_object_get(body, "user_id"), *teams, *ack, *t;
    json_t *key = NULL, *kbody = NULL;
    struct sl_store_vals v;
    char id[300];
    long long now = sl_store_now_us();
    size_t i;
    int rc;

    *out = NULL;
    memset(&v, 0, sizeof(v));
    sl_store_reset(err);
    if (!json_is_object(body))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "The request body must be a JSON object.");
    if (uid != NULL && !json_is_null(uid)) {
        if ((rc = check_id("user_id", uid, err)) != SL_OK)
            return rc;
        snprintf(id, sizeof(id), "%s", json_string_value(uid));
    } else if (make_uuid(id) != SL_OK) {
        return sl_store_fail(err, SL_ERR_INTERNAL, "Could not make a user id (no randomness).");
    }
    teams = json_object_get(body, "teams");
    if (teams != NULL && !json_is_null(teams)) {
        if (!json_is_array(teams))
            return sl_store_fail(err, SL_ERR_BAD_REQUEST, "teams must be a list of team ids.");
        json_array_foreach(teams, i, t)
            if ((rc = check_id("teams", t, err)) != SL_OK)
                return sl_store_fail(err, rc, "teams must be a list of team ids (item %zu is not).", i);
    }
    ack = json_object_get(body, "auto_create_key");
    if (ack != NULL && !json_is_boolean(ack))
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "auto_create_key must be true or false.");
    if ((rc = sl_store_push(&v, "user_id", sl_db_text(id))) != SL_OK ||
        (rc = sl_store_push(&v, "created_at", sl_db_time_us(now))) != SL_OK ||
        (rc = sl_store_push(&v, "updated_at", sl_db_time_us(now))) != SL_OK ||
        (rc = collect(&USER, &v, body, now, err)) != SL_OK)
        goto out;
    if ((rc = begin(db, err)) != SL_OK)
        goto out;
    rc = insert_row(db, &USER, &v, id, err);
    json_array_foreach(teams, i, t) {
        json_t *team = NULL, *user = NULL;

        if (rc != SL_OK)
            break;
        if ((rc = get_row(db, &TEAM, json_string_value(t), &team, err)) == SL_OK)
            rc = add_member(db, team, id, NULL, "user", &user, err);
        json_decref(team);
        json_decref(user);
    }
    if (rc == SL_OK && (ack == NULL || json_is_true(ack))) {
        /* the user's first key, in the same transaction: no user without it */
        static const char *const pass[] = { "models", "key_alias", "duration", "max_budget",
                                            "metadata", "team_id" };

        if ((kbody = json_pack("{s:s}", "user_id", id)) == NULL)
            rc = sl_store_oom(err);
        for (i = 0; rc == SL_OK && i < N(pass); i++)
            if (json_object_get(body, pass[i]) != NULL)
                json_object_set(kbody, pass[i], json_object_get(body, pass[i]));
        if (rc == SL_OK && (rc = sl_teamstore_check_key_team(db, kbody, err)) == SL_OK)
            rc = sl_keystore_generate(db, cfg, kbody, actor, &key, err);
    }
    if ((rc = tx_end(db, rc, err)) != SL_OK || (rc = get_row(db, &USER, id, out, err)) != SL_OK)
        goto out;
    if (key != NULL) {
        json_object_set(*out, "key", json_object_get(key, "key"));
        json_object_set(*out, "token", json_object_get(key, "token"));
        json_object_set(*out, "key_name", json_object_get(key, "key_name"));
        json_object_set(*out, "key_alias", json_object_get(key, "key_alias"));
        json_object_set(*out, "expires", json_object_get(key, "expires"));
    }
out:
    if (rc != SL_OK) {
        json_decref(*out);
        *out = NULL;
    }
    json_decref(key);
    json_decref(kbody);
    sl_store_vals_free(&v);
    return rc;
}

int sl_teamstore_user_update(struct sl_db *db, const json_t *body, json_t **out,
                             struct sl_keystore_err *err)
{
    if (json_object_get(body, "teams") != NULL) {
        sl_store_reset(err);
        *out = NULL;
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "teams cannot be changed by /user/update: use "
                    "/team/member_add and /team/member_delete.");
    }
    return update_entity(db, &USER, body, out, err);
}

int sl_teamstore_user_delete(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                             json_t **out, struct sl_keystore_err *err)
{
    return delete_entities(db, cfg, &USER, body, "user_ids", "deleted_users", out, err);
}

int sl_teamstore_user_info(struct sl_db *db, const char *user_id, json_t **out,
                           struct sl_keystore_err *err)
{
    struct sl_db_param p = sl_db_text(user_id);
    json_t *user = NULL, *keys = NULL, *teams = json_array();
    int rc;

    *out = NULL;
    sl_store_reset(err);
    if (teams == NULL)
        return sl_store_oom(err);
    if (user_id == NULL || *user_id == '\0')
        rc = sl_store_fail(err, SL_ERR_BAD_REQUEST, "user_id is required.");
    else if ((rc = get_row(db, &USER, user_id, &user, err)) == SL_OK &&
             (rc = keys_of(db, "user_id", user_id, &keys, err)) == SL_OK &&
             (rc = get_rows(db, &TEAM, "WHERE team_id IN (SELECT team_id FROM " MEMBERS
                            " WHERE user_id = ?) ORDER BY created_at, team_id", &p, 1, teams,
                            err)) == SL_OK) {
        *out = json_pack("{s:s, s:O, s:O, s:O}", "user_id", user_id, "user_info", user,
                         "keys", keys, "teams", teams);
        rc = *out != NULL ? SL_OK : sl_store_oom(err);
    }
    json_decref(user);
    json_decref(keys);
    json_decref(teams);
    return rc;
}

int sl_teamstore_user_list(struct sl_db *db, const char *role, const char *team_id, long page,
                           long page_size, json_t **out, struct sl_keystore_err *err)
{
    struct sl_db_param p[6] = { sl_db_text(role), sl_db_text(role), sl_db_text(team_id),
                                sl_db_text(team_id), sl_db_int(page_size),
                                sl_db_int((page - 1) * page_size) };
#define WHERE "WHERE (? IS NULL OR user_role = ?) AND (? IS NULL OR user_id IN " \
              "(SELECT user_id FROM " MEMBERS " WHERE team_id = ?))"
    json_t *users = json_array();
    long long total = 0;
    int row = 0, rc;

    *out = NULL;
    sl_store_reset(err);
    if (users == NULL)
        return sl_store_oom(err);
    if (sl_db_query(db, "SELECT COUNT(*) FROM " USERS " " WHERE, p, 4) != SL_OK ||
        sl_db_fetch(db, &row) != SL_OK) {
        rc = sl_store_db_fail(db, err, "teamstore", "team and user tables", "list users");
        goto out;
    }
    total = row ? sl_db_col_int(db, 0) : 0;
    sl_db_query_end(db);
    if ((rc = get_rows(db, &USER, WHERE " ORDER BY created_at, user_id LIMIT ? OFFSET ?", p, 6,
                       users, err)) != SL_OK)
        goto out;
#undef WHERE
    *out = json_pack("{s:O, s:I, s:I, s:I, s:I}", "users", users, "total", (json_int_t)total,
                     "page", (json_int_t)page, "page_size", (json_int_t)page_size,
                     "total_pages", (json_int_t)((total + page_size - 1) / page_size));
    rc = *out != NULL ? SL_OK : sl_store_oom(err);
out:
    json_decref(users);
    return rc;
}

/* ---- keys of a team ------------------------------------------------------ */

int sl_teamstore_check_key_team(struct sl_db *db, const json_t *body,
                                struct sl_keystore_err *err)
{
    const json_t *tid = json_object_get(body, "team_id"), *km = json_object_get(body, "models");
    const json_t *tm, *m, *x;
    json_t *team = NULL;
    size_t i, j;
    int rc;

    sl_store_reset(err);
    if (!json_is_string(tid))
        return SL_OK;               /* absent, null, or keystore's 400 for a wrong type */
    if ((rc = get_row(db, &TEAM, json_string_value(tid), &team, err)) != SL_OK) {
        if (rc == SL_ERR_NOT_FOUND)
            sl_store_fail(err, SL_ERR_BAD_REQUEST, "team_id %.300s does not exist: create the team "
                 "first (/team/new).", json_string_value(tid));
        return err->status;
    }
    tm = json_object_get(team, "models");
    if (json_is_array(tm) && json_array_size(tm) > 0 && json_is_array(km)) {
        json_array_foreach(tm, j, x)
            if (strcmp(json_string_value(x) ?: "", "all-proxy-models") == 0)
                goto out;
        json_array_foreach(km, i, m) {
            int found = 0;

            json_array_foreach(tm, j, x)
                found |= json_is_string(m) && json_equal(m, x);
            if (!found) {
                rc = sl_store_fail(err, SL_ERR_BAD_REQUEST, "models: %.200s is not among the models of "
                          "team %.200s.", json_string_value(m) ?: "?", json_string_value(tid));
                break;
            }
        }
    }
out:
    json_decref(team);
    return rc;
}

/* The web server's own authentication: the identity a trusted web server
 * hands over in a FastCGI param, and the user row made for it on first
 * sight. Lookup and caching are keys.c's (the same cache as keys); turning
 * the user into a principal is auth.c's. The row is made with INSERT IGNORE
 * inside a transaction, so two requests of a new user at once make one row
 * and both read it back complete (with its teams). */
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "config.h"
#include "db.h"
#include "keystore.h"
#include "log.h"
#include "remoteuser.h"
#include "request.h"
#include "status.h"
#include "storeutil.h"

#define USERS "`LiteLLM_UserTable`"
#define TEAMS "`LiteLLM_TeamTable`"
#define MEMBERS "`LiteLLM_TeamMembership`"

const char *sl_remoteuser_name(const struct sl_request *req)
{
    const char *v;

    if (req->cfg == NULL || !req->cfg->trust_remote_user || req->cfg->remote_user_param == NULL)
        return NULL;
    v = req->conn.ops->param(req->conn.ctx, req->cfg->remote_user_param);
    return v != NULL && *v != '\0' ? v : NULL;
}

static int fail(struct sl_request *req, struct sl_db *db, const char *what)
{
    sl_log(SL_LOG_WARN, req, "remote user: %s failed: %s", what, sl_db_last_error(db)->message);
    return sl_db_last_error(db)->kind != 0 ? sl_db_errkind_status(sl_db_last_error(db)->kind)
                                           : SL_ERR_DB_UNAVAILABLE;
}

/* The user row with the defaults; *created: whether this call made it. */
static int insert_user(struct sl_request *req, struct sl_db *db, const char *name, long long now,
                       int *created)
{
    static const char sql[] =
        "INSERT IGNORE INTO " USERS " (user_id, sso_user_id, user_role, max_budget, "
        "budget_duration, budget_reset_at, models, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    const struct sl_new_user *d = &req->cfg->new_user;
    struct sl_db_param p[9];
    unsigned long long n = 0;
    long long reset = 0;
    char money[48];

    snprintf(money, sizeof(money), "%.10f", d->max_budget);
    p[0] = sl_db_text(name);
    p[1] = sl_db_text(name);
    p[2] = sl_db_text(d->user_role);
    p[3] = d->max_budget >= 0 ? sl_db_text(money) : sl_db_null();
    p[4] = sl_db_text(d->budget_duration);
    p[5] = d->budget_duration != NULL &&
           sl_keystore_add_duration(d->budget_duration, now, &reset) == SL_OK
           ? sl_db_time_us(reset) : sl_db_null();
    p[6] = sl_db_text(d->models_json);
    p[7] = sl_db_time_us(now);
    p[8] = sl_db_time_us(now);
    if (sl_db_exec(db, sql, p, 9, &n) != SL_OK)
        return fail(req, db, "creating the user");
    *created = n > 0;
    return SL_OK;
}

/* Makes the new user a member of team_id when that team exists (a warning
 * otherwise): the team's members_with_roles, a membership row, the user's
 * teams, and team_id when it has none yet. */
static int join_team(struct sl_request *req, struct sl_db *db, const char *name,
                     const char *team_id, long long now)
{
    static const char exists[] = "SELECT 1 FROM " TEAMS " WHERE team_id = ? FOR UPDATE";
    static const char members[] =
        "UPDATE " TEAMS " SET members_with_roles = CASE WHEN JSON_TYPE(members_with_roles) = "
        "'ARRAY' THEN JSON_ARRAY_APPEND(members_with_roles, '$', JSON_OBJECT('user_id', ?, "
        "'user_email', NULL, 'role', 'user')) ELSE JSON_ARRAY(JSON_OBJECT('user_id', ?, "
        "'user_email', NULL, 'role', 'user')) END, updated_at = ? WHERE team_id = ?";
    static const char member[] =
        "INSERT IGNORE INTO " MEMBERS " (user_id, team_id) VALUES (?, ?)";
    static const char user[] =
        "UPDATE " USERS " SET teams = JSON_ARRAY_APPEND(teams, '$', ?), "
        "team_id = COALESCE(team_id, ?) WHERE user_id = ?";
    struct sl_db_param p[4];
    int rc, row = 0;

    p[0] = sl_db_text(team_id);
    if ((rc = sl_db_query(db, exists, p, 1)) != SL_OK || (rc = sl_db_fetch(db, &row)) != SL_OK) {
        sl_db_query_end(db);
        return fail(req, db, "reading a default team");
    }
    sl_db_query_end(db);
    if (!row) {
        sl_log(SL_LOG_WARN, req, "remote user: default team %.200s does not exist; the new user "
               "was not added to it", team_id);
        return SL_OK;
    }
    p[0] = sl_db_text(name);
    p[1] = sl_db_text(name);
    p[2] = sl_db_time_us(now);
    p[3] = sl_db_text(team_id);
    if (sl_db_exec(db, members, p, 4, NULL) != SL_OK)
        return fail(req, db, "adding the user to a team");
    p[0] = sl_db_text(name);
    p[1] = sl_db_text(team_id);
    if (sl_db_exec(db, member, p, 2, NULL) != SL_OK)
        return fail(req, db, "adding a team membership");
    p[0] = sl_db_text(team_id);
    p[1] = sl_db_text(team_id);
    p[2] = sl_db_text(name);
    if (sl_db_exec(db, user, p, 3, NULL) != SL_OK)
        return fail(req, db, "recording the user's team");
    return SL_OK;
}

int sl_remoteuser_create(struct sl_request *req, struct sl_db *db, const char *name)
{
    const struct sl_new_user *d = &req->cfg->new_user;
    long long now = sl_store_now_us();
    int rc, created = 0;

    if (sl_db_begin(db) != SL_OK)
        return fail(req, db, "starting a transaction");
    rc = insert_user(req, db, name, now, &created);
    for (size_t i = 0; rc == SL_OK && created && i < d->n_teams; i++)
        rc = join_team(req, db, name, d->teams[i], now);
    if (rc == SL_OK && sl_db_commit(db) != SL_OK)
        rc = fail(req, db, "committing the new user");
    if (rc != SL_OK) {
        (void)sl_db_rollback(db);
        return rc;
    }
    if (created)
        sl_log(SL_LOG_INFO, req, "remote user: created user %.200s (role %s)", name, d->user_role);
    return SL_OK;
}

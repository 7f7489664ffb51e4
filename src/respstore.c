/* Stored responses (respstore.h). */
#include <string.h>
#include <time.h>

#include "arena.h"
#include "auth.h"
#include "config.h"
#include "db.h"
#include "jsonutil.h"
#include "log.h"
#include "request.h"
#include "respstore.h"
#include "status.h"

#define TABLE "sluice_responses"

static long long now_real_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Whose rows: the key's token; a remote user without a key, "user:" and
 * its id; '' for the master key. */
static const char *owner(struct sl_request *req)
{
    const struct sl_key *u = req->principal.user;

    if (req->principal.role == SL_ROLE_KEY)
        return req->principal.key_hash;
    if (u != NULL && u->user_id != NULL)
        return sl_arena_printf(req->arena, "user:%s", u->user_id);
    return "";
}

static int conn(struct sl_request *req, struct sl_db **db)
{
    struct sl_db_settings s;

    sl_db_settings_from_config(req->cfg, &s);
    return sl_db_thread(&s, db);
}

/* Column col of the caller's live row id: text copied into the arena. */
static int fetch(struct sl_request *req, const char *id, const char *sql, char **text, size_t *len)
{
    struct sl_db_param p[3] = { sl_db_text(id), sl_db_text(owner(req)), sl_db_time_us(now_real_us()) };
    struct sl_db *db;
    const char *v;
    int rc, row = 0;

    if ((rc = conn(req, &db)) != SL_OK)
        return rc;
    if ((rc = sl_db_query(db, sql, p, 3)) != SL_OK || (rc = sl_db_fetch(db, &row)) != SL_OK) {
        sl_db_query_end(db);
        sl_log(SL_LOG_WARN, req, "response store: %s", sl_db_last_error(db)->message);
        return rc;
    }
    if (!row || (v = sl_db_col_text(db, 0, len)) == NULL) {
        sl_db_query_end(db);
        return SL_ERR_NOT_FOUND;
    }
    *text = sl_arena_strndup(req->arena, v, *len);
    sl_db_query_end(db);
    return *text != NULL ? SL_OK : SL_ERR_NOMEM;
}

int sl_respstore_conversation(struct sl_request *req, const char *id, json_t **messages)
{
    const char *why;
    char *text;
    size_t len;
    int rc;

    *messages = NULL;
    rc = fetch(req, id, "SELECT messages FROM " TABLE " WHERE response_id = ? AND api_key = ? AND expires_at > ?",
               &text, &len);
    if (rc != SL_OK)
        return rc;
    if ((*messages = sl_json_parse(text, len, &why)) == NULL || !json_is_array(*messages)) {
        json_decref(*messages);
        *messages = NULL;
        sl_log(SL_LOG_WARN, req, "response store: a stored conversation is not a JSON array (%s)",
               why ? why : "another type");
        return SL_ERR_NOT_FOUND;
    }
    return SL_OK;
}

int sl_respstore_response(struct sl_request *req, const char *id, char **text, size_t *len)
{
    return fetch(req, id, "SELECT response FROM " TABLE " WHERE response_id = ? AND api_key = ? AND expires_at > ?",
                 text, len);
}

int sl_respstore_delete(struct sl_request *req, const char *id)
{
    struct sl_db_param p[3] = { sl_db_text(id), sl_db_text(owner(req)), sl_db_time_us(now_real_us()) };
    unsigned long long n = 0;
    struct sl_db *db;
    int rc;

    if ((rc = conn(req, &db)) != SL_OK)
        return rc;
    if ((rc = sl_db_exec(db, "DELETE FROM " TABLE " WHERE response_id = ? AND api_key = ? AND expires_at > ?",
                         p, 3, &n)) != SL_OK) {
        sl_log(SL_LOG_WARN, req, "response store: %s", sl_db_last_error(db)->message);
        return rc;
    }
    return n > 0 ? SL_OK : SL_ERR_NOT_FOUND;
}

void sl_respstore_save(struct sl_request *req, const char *id, const json_t *messages,
                       const json_t *response)
{
    const struct sl_config *c = req->cfg;
    long long now = now_real_us();
    size_t ml = 0, rl = 0;
    char *m = sl_json_dump(req->arena, messages, &ml), *r = sl_json_dump(req->arena, response, &rl);
    struct sl_db_param p[7];
    struct sl_db_param old = sl_db_time_us(now);
    struct sl_db *db;

    if (m == NULL || r == NULL)
        return;
    if (ml + rl > (size_t)c->responses_store_max_bytes) {
        sl_log(SL_LOG_INFO, req, "response store: %s not kept: %zu bytes, over responses_store_max_bytes (%d)",
               id, ml + rl, c->responses_store_max_bytes);
        return;
    }
    p[0] = sl_db_text(id);
    p[1] = sl_db_text(owner(req));
    p[2] = sl_db_text(req->model);
    p[3] = sl_db_time_us(now);
    p[4] = sl_db_time_us(now + (long long)c->responses_store_max_age_days * 86400LL * 1000000LL);
    p[5] = sl_db_textn(m, ml);
    p[6] = sl_db_textn(r, rl);
    if (conn(req, &db) != SL_OK)
        return;
    if (sl_db_exec(db, "INSERT INTO " TABLE " (response_id, api_key, model, created_at, expires_at, messages, "
                   "response) VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7, NULL) != SL_OK) {
        sl_log(SL_LOG_WARN, req, "response store: %s not kept: %s", id, sl_db_last_error(db)->message);
        return;
    }
    /* A few expired rows go with every write: the table stays bounded
     * without a sweeper. */
    sl_db_exec(db, "DELETE FROM " TABLE " WHERE expires_at <= ? LIMIT 100", &old, 1, NULL);
}

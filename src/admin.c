/* The management API over HTTP: routes LiteLLM's /key/..., /team/... and
 * /user/... paths, checks the caller may use them (master key; a virtual key
 * only for /key/info about itself), parses bodies and query strings, and
 * hands the work to keystore.c (keys) and teamstore.c (teams, users), whose
 * answers it sends as they are; GET /model/info and GET /health (health.c)
 * need only the config. Without a database every other
 * route answers 503 saying so (LiteLLM answers 500 "DB not connected"; the
 * request cannot be served now, which is what 503 means here). */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "arena.h"
#include "budget.h"
#include "config.h"
#include "db.h"
#include "health.h"
#include "jsonutil.h"
#include "keys.h"
#include "keystore.h"
#include "request.h"
#include "respond.h"
#include "spendstore.h"
#include "status.h"
#include "teamstore.h"
#include "upstream.h"

/* created_by of keys made with the master key, as LiteLLM records it. */
#define MASTER_ACTOR "default_user_id"

struct ctx {
    struct sl_request *req;
    struct sl_db *db;
    json_t *body;                   /* borrowed (the arena owns it); NULL for GET */
    const char *path_key;           /* /key/{key}/regenerate (arena) */
    struct sl_keystore_err err;
};

/* The value of query parameter name, percent-decoded (arena), or NULL. */
static const char *query(struct sl_request *req, const char *name)
{
    const char *q = strchr(req->uri, '?');
    size_t nl = strlen(name);

    while (q != NULL && *q != '\0') {
        const char *p = q + 1, *end = p + strcspn(p, "&#");

        if ((size_t)(end - p) > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
            return sl_upstream_unescape(req->arena, p + nl + 1, (size_t)(end - p - nl - 1));
        if ((size_t)(end - p) == nl && strncmp(p, name, nl) == 0)
            return "";
        q = *end == '&' ? end : NULL;
    }
    return NULL;
}

/* created_by/updated_by: the master key's name, or a proxy_admin remote
 * user's id (docs/remote-user.md). */
static const char *actor(const struct sl_request *req)
{
    if (req->principal.role != SL_ROLE_ADMIN)
        return NULL;
    return req->principal.user != NULL ? req->principal.user->user_id : MASTER_ACTOR;
}

static int do_generate(struct ctx *c, json_t **out)
{
    int rc = sl_teamstore_check_key_team(c->db, c->body, &c->err);

    if (rc != SL_OK)
        return rc;
    return sl_keystore_generate(c->db, c->req->cfg, c->body, actor(c->req), out, &c->err);
}

static int do_update(struct ctx *c, json_t **out)
{
    return sl_keystore_update(c->db, c->req->cfg, c->body, actor(c->req), out, &c->err);
}

static int do_delete(struct ctx *c, json_t **out)
{
    return sl_keystore_delete(c->db, c->req->cfg, c->body, out, &c->err);
}

static int body_key(struct ctx *c, const char **key)
{
    const json_t *k = json_object_get(c->body, "key");

    *key = json_string_value(k);
    if (*key == NULL || **key == '\0') {
        c->req->err_msg = "key is required: the key (sk-...) or its token.";
        return SL_ERR_BAD_REQUEST;
    }
    return SL_OK;
}

static int do_block(struct ctx *c, json_t **out, int blocked)
{
    const char *key;
    int rc = body_key(c, &key);

    return rc != SL_OK ? rc : sl_keystore_set_blocked(c->db, c->req->cfg, key, blocked, out, &c->err);
}

static int do_block1(struct ctx *c, json_t **out)
{
    return do_block(c, out, 1);
}

static int do_unblock(struct ctx *c, json_t **out)
{
    return do_block(c, out, 0);
}

static int do_regenerate(struct ctx *c, json_t **out)
{
    const char *key = c->path_key;
    int rc;

    if (key == NULL && (rc = body_key(c, &key)) != SL_OK)
        return rc;
    return sl_keystore_regenerate(c->db, c->req->cfg, key, c->body, actor(c->req), out, &c->err);
}

/* GET /key/info?key=K: {"key": K, "info": {...}} without the token, as
 * LiteLLM answers; without key=, the caller's own key. */
static int do_info(struct ctx *c, json_t **out)
{
    struct sl_request *req = c->req;
    const char *key = query(req, "key");
    char token[65];
    json_t *row = NULL;
    int rc;

    if (key == NULL || *key == '\0')
        key = req->principal.key_hash;
    sl_keystore_token_of(key, token);
    if (req->principal.role != SL_ROLE_ADMIN &&
        (strlen(token) != 64 || CRYPTO_memcmp(token, req->principal.key_hash, 64) != 0)) {
        req->err_msg = "Admin-only endpoint. Not allowed to access this. A virtual key may only "
                       "read /key/info about itself.";
        return SL_ERR_FORBIDDEN;
    }
    if ((rc = sl_keystore_get(c->db, token, &row, &c->err)) != SL_OK)
        return rc;
    json_object_del(row, "token");
    *out = json_pack("{s:s, s:o}", "key", key, "info", row);
    return *out != NULL ? SL_OK : SL_ERR_NOMEM;
}

/* A positive whole number query parameter; def when absent. */
static int query_long(struct sl_request *req, const char *name, long def, long max, long *out)
{
    const char *s = query(req, name);
    char *end;

    *out = def;
    if (s == NULL)
        return SL_OK;
    *out = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || *out < 1 || *out > max) {
        req->err_msg = sl_arena_printf(req->arena, "%s must be a whole number from 1 to %ld.",
                                       name, max);
        return SL_ERR_BAD_REQUEST;
    }
    return SL_OK;
}

/* GET /key/list?page=&size=&user_id=&team_id=&key_alias=&return_full_object= */
static int do_list(struct ctx *c, json_t **out)
{
    struct sl_request *req = c->req;
    struct sl_keystore_filter f;
    const char *full = query(req, "return_full_object");
    int rc;

    memset(&f, 0, sizeof(f));
    if ((rc = query_long(req, "page", 1, 1000000, &f.page)) != SL_OK ||
        (rc = query_long(req, "size", 10, 100, &f.size)) != SL_OK)
        return rc;
    f.user_id = query(req, "user_id");
    f.team_id = query(req, "team_id");
    f.key_alias = query(req, "key_alias");
    if (full != NULL && strcmp(full, "true") != 0 && strcmp(full, "false") != 0) {
        req->err_msg = "return_full_object must be true or false.";
        return SL_ERR_BAD_REQUEST;
    }
    f.full = full != NULL && strcmp(full, "true") == 0;
    return sl_keystore_list(c->db, &f, out, &c->err);
}

/* ---- /team/... and /user/...: teamstore.c ------------------------------- */

static int do_team_new(struct ctx *c, json_t **out)
{
    return sl_teamstore_team_new(c->db, c->body, out, &c->err);
}

/* After an update that changed spend or the budget period, the live
 * budget counter starts again from the database's figure. */
static int forget_budget(struct ctx *c, int rc, int scope, const char *id_field, json_t *out)
{
    json_t *row = json_object_get(out, "data");

    if (rc == SL_OK && (json_object_get(c->body, "spend") != NULL ||
                        json_object_get(c->body, "budget_duration") != NULL))
        sl_budget_forget_row(c->req->cfg, scope,
                             json_string_value(json_object_get(row, id_field)), row);
    return rc;
}

static int do_team_update(struct ctx *c, json_t **out)
{
    int rc = sl_teamstore_team_update(c->db, c->body, out, &c->err);

    return forget_budget(c, rc, SL_BUDGET_TEAM, "team_id", *out);
}

static int do_team_delete(struct ctx *c, json_t **out)
{
    return sl_teamstore_team_delete(c->db, c->req->cfg, c->body, out, &c->err);
}

static int do_team_info(struct ctx *c, json_t **out)
{
    return sl_teamstore_team_info(c->db, query(c->req, "team_id"), out, &c->err);
}

static int do_team_list(struct ctx *c, json_t **out)
{
    return sl_teamstore_team_list(c->db, query(c->req, "user_id"), out, &c->err);
}

static int do_member_add(struct ctx *c, json_t **out)
{
    return sl_teamstore_member_add(c->db, c->body, out, &c->err);
}

static int do_member_delete(struct ctx *c, json_t **out)
{
    return sl_teamstore_member_delete(c->db, c->body, out, &c->err);
}

static int do_user_new(struct ctx *c, json_t **out)
{
    return sl_teamstore_user_new(c->db, c->req->cfg, c->body, actor(c->req), out, &c->err);
}

static int do_user_update(struct ctx *c, json_t **out)
{
    int rc = sl_teamstore_user_update(c->db, c->body, out, &c->err);

    return forget_budget(c, rc, SL_BUDGET_USER, "user_id", *out);
}

static int do_user_delete(struct ctx *c, json_t **out)
{
    return sl_teamstore_user_delete(c->db, c->req->cfg, c->body, out, &c->err);
}

static int do_user_info(struct ctx *c, json_t **out)
{
    return sl_teamstore_user_info(c->db, query(c->req, "user_id"), out, &c->err);
}

/* GET /user/list?page=&page_size=&role=&team= */
static int do_user_list(struct ctx *c, json_t **out)
{
    struct sl_request *req = c->req;
    long page, size;
    int rc;

    if ((rc = query_long(req, "page", 1, 1000000, &page)) != SL_OK ||
        (rc = query_long(req, "page_size", 25, 100, &size)) != SL_OK)
        return rc;
    return sl_teamstore_user_list(c->db, query(req, "role"), query(req, "team"), page, size, out,
                                  &c->err);
}

/* ---- reports: spendstore.c --------------------------------------------- */

/* GET /spend/logs?api_key=&user_id=&request_id=&start_date=&end_date=&limit= */
static int do_spend_logs(struct ctx *c, json_t **out)
{
    struct sl_request *req = c->req;
    struct sl_spendstore_filter f;
    int rc;

    memset(&f, 0, sizeof(f));
    if ((rc = query_long(req, "limit", SL_SPEND_LOGS_LIMIT, SL_SPEND_LOGS_MAX, &f.limit)) != SL_OK)
        return rc;
    f.api_key = query(req, "api_key");
    f.user_id = query(req, "user_id");
    f.request_id = query(req, "request_id");
    f.start_date = query(req, "start_date");
    f.end_date = query(req, "end_date");
    return sl_spendstore_logs(c->db, &f, out, &c->err);
}

/* GET /global/spend/report?start_date=&end_date=&group_by= */
static int do_spend_report(struct ctx *c, json_t **out)
{
    return sl_spendstore_report(c->db, query(c->req, "start_date"), query(c->req, "end_date"),
                                query(c->req, "group_by"), out, &c->err);
}

/* GET /model/info: from the config alone, no database. */
static int do_model_info(struct ctx *c, json_t **out)
{
    *out = sl_spendstore_model_info(c->req->cfg);
    return *out != NULL ? SL_OK : SL_ERR_NOMEM;
}

/* GET /health?model=&model_id=: probes the deployments (health.c); no
 * database needed. */
static int do_health(struct ctx *c, json_t **out)
{
    return sl_health_check(c->req, query(c->req, "model"), query(c->req, "model_id"), out);
}

static const struct {
    const char *path;
    const char *method;
    int (*fn)(struct ctx *, json_t **);
} routes[] = {
    { "/key/generate", "POST", do_generate },
    { "/key/update", "POST", do_update },
    { "/key/delete", "POST", do_delete },
    { "/key/block", "POST", do_block1 },
    { "/key/unblock", "POST", do_unblock },
    { "/key/regenerate", "POST", do_regenerate },
    { "/key/info", "GET", do_info },
    { "/key/list", "GET", do_list },
    { "/team/new", "POST", do_team_new },
    { "/team/update", "POST", do_team_update },
    { "/team/delete", "POST", do_team_delete },
    { "/team/info", "GET", do_team_info },
    { "/team/list", "GET", do_team_list },
    { "/team/member_add", "POST", do_member_add },
    { "/team/member_delete", "POST", do_member_delete },
    { "/user/new", "POST", do_user_new },
    { "/user/update", "POST", do_user_update },
    { "/user/delete", "POST", do_user_delete },
    { "/user/info", "GET", do_user_info },
    { "/user/list", "GET", do_user_list },
    { "/spend/logs", "GET", do_spend_logs },
    { "/global/spend/report", "GET", do_spend_report },
    { "/model/info", "GET", do_model_info },
    { "/v1/model/info", "GET", do_model_info },
    { "/health", "GET", do_health },
};

#define REGEN_SUFFIX "/regenerate"

/* /key/{key}/regenerate: the key part, else NULL. */
static const char *regen_key(const char *path, size_t *len)
{
    size_t n = strlen(path), sl = strlen(REGEN_SUFFIX);

    if (strncmp(path, "/key/", 5) != 0 || n <= 5 + sl || strcmp(path + n - sl, REGEN_SUFFIX) != 0)
        return NULL;
    *len = n - 5 - sl;
    return memchr(path + 5, '/', *len) == NULL ? path + 5 : NULL;
}

int sl_admin_is_route(const char *path)
{
    return strncmp(path, "/key/", 5) == 0 || strncmp(path, "/team/", 6) == 0 ||
           strncmp(path, "/user/", 6) == 0 || strcmp(path, "/spend/logs") == 0 ||
           strcmp(path, "/global/spend/report") == 0 || strcmp(path, "/model/info") == 0 ||
           strcmp(path, "/v1/model/info") == 0 || strcmp(path, "/health") == 0;
}

/* The route index of req->path (and c->path_key), or -1. */
static int find(struct ctx *c)
{
    const char *k;
    size_t len;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(routes[i].path, c->req->path) == 0)
            return (int)i;
    if ((k = regen_key(c->req->path, &len)) != NULL) {
        c->path_key = sl_upstream_unescape(c->req->arena, k, len);
        c->req->path = "/key/{key}/regenerate";   /* the request log never shows a key */
        for (size_t i = 0; c->path_key != NULL && i < sizeof(routes) / sizeof(routes[0]); i++)
            if (routes[i].fn == do_regenerate)
                return (int)i;
    }
    return -1;
}

static int parse_body(struct ctx *c)
{
    struct sl_request *req = c->req;
    const char *why = NULL;

    if (req->body_len == 0) {
        req->err_msg = "Request body is empty; expected a JSON object.";
        return SL_ERR_BAD_JSON;
    }
    if ((c->body = sl_json_parse(req->body, req->body_len, &why)) == NULL) {
        req->err_msg = sl_arena_printf(req->arena, "Request body is not valid JSON: %s.", why);
        return SL_ERR_BAD_JSON;
    }
    if (sl_arena_defer(req->arena, sl_json_decref_cb, c->body) != SL_OK) {
        json_decref(c->body);
        return SL_ERR_NOMEM;
    }
    if (!json_is_object(c->body)) {
        req->err_msg = "Request body must be a JSON object.";
        return SL_ERR_BAD_REQUEST;
    }
    return SL_OK;
}

int sl_admin_serve(struct sl_request *req)
{
    struct sl_db_settings s;
    struct ctx c;
    json_t *out = NULL;
    int i, rc;

    req->stage = "admin";
    memset(&c, 0, sizeof(c));
    c.req = req;
    if ((i = find(&c)) < 0) {
        req->err_msg = sl_arena_printf(req->arena, "No route for %.100s %.200s.", req->method,
                                       req->path);
        return SL_ERR_NOT_FOUND;
    }
    if (strcmp(req->method, routes[i].method) != 0)
        return SL_ERR_METHOD;
    if (req->principal.role != SL_ROLE_ADMIN && routes[i].fn != do_info) {
        req->err_msg = "Admin-only endpoint. Not allowed to access this.";
        return SL_ERR_FORBIDDEN;
    }
    if (routes[i].fn == do_model_info || routes[i].fn == do_health) {   /* no database needed */
        if ((rc = routes[i].fn(&c, &out)) != SL_OK)
            return rc;
        rc = sl_respond_json(req, 200, out);
        json_decref(out);
        return rc;
    }
    if (req->cfg->database_url == NULL) {
        req->err_msg = "DB not connected: the key management API needs a database "
                       "(general_settings.database_url or $DATABASE_URL). "
                       "See https://docs.litellm.ai/docs/proxy/virtual_keys";
        return SL_ERR_DB_UNAVAILABLE;
    }
    if (strcmp(routes[i].method, "POST") == 0 && (rc = parse_body(&c)) != SL_OK)
        return rc;
    sl_db_settings_from_config(req->cfg, &s);
    if ((rc = sl_db_thread(&s, &c.db)) != SL_OK)
        return rc;
    c.err.status = SL_OK;
    rc = routes[i].fn(&c, &out);
    if (rc != SL_OK) {
        if (c.err.status != SL_OK)
            req->err_msg = sl_arena_strdup(req->arena, c.err.msg);
        json_decref(out);
        return rc;
    }
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

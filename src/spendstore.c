/* Spend reports: LiteLLM_SpendLogs rows for GET /spend/logs, per-day totals
 * for GET /global/spend/report, and the deployments for GET /model/info.
 * SQL text is assembled only from constant fragments; every value is a
 * parameter. Sums of money are the database's (exact DECIMAL, WITH ROLLUP
 * for the subtotals), shown as JSON numbers like every other spend. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "keystore.h"
#include "provider.h"
#include "prices.h"
#include "respond.h"
#include "spendstore.h"
#include "status.h"
#include "storeutil.h"

#define LOGS "LiteLLM_SpendLogs"
#define DAILY "sluice_daily_spend"
#define TABLES "spend tables"
#define DAY_US (86400LL * 1000000LL)

/* ---- dates --------------------------------------------------------------- */

int sl_spendstore_date(const char *name, const char *s, long long *us, struct sl_keystore_err *err)
{
    struct tm tm, back;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        goto bad;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            goto bad;
    tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
    tm.tm_mon = (s[5] - '0') * 10 + (s[6] - '0') - 1;
    tm.tm_mday = (s[8] - '0') * 10 + (s[9] - '0');
    if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1)
        goto bad;
    back = tm;
    t = timegm(&back);
    if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_mday != tm.tm_mday ||
        back.tm_mon != tm.tm_mon)
        goto bad;
    *us = (long long)t * 1000000LL;
    return SL_OK;
bad:
    return sl_store_fail(err, SL_ERR_BAD_REQUEST, "%s must be a date as YYYY-MM-DD (got \"%.40s\").",
                         name, s != NULL ? s : "");
}

static void day_text(long long us, char out[16])
{
    time_t t = (time_t)(us / 1000000LL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

/* ---- GET /spend/logs ----------------------------------------------------- */

static const struct { const char *sql, *name; int type; } log_cols[] = {
    { "request_id", "request_id", SL_C_TEXT }, { "call_type", "call_type", SL_C_TEXT },
    { "api_key", "api_key", SL_C_TEXT }, { "spend", "spend", SL_C_MONEY },
    { "total_tokens", "total_tokens", SL_C_INT }, { "prompt_tokens", "prompt_tokens", SL_C_INT },
    { "completion_tokens", "completion_tokens", SL_C_INT },
    { "cache_read_input_tokens", "cache_read_input_tokens", SL_C_INT },
    { "cache_creation_input_tokens", "cache_creation_input_tokens", SL_C_INT },
    { "startTime", "startTime", SL_C_TIME }, { "endTime", "endTime", SL_C_TIME },
    { "request_duration_ms", "request_duration_ms", SL_C_INT },
    { "completionStartTime", "completionStartTime", SL_C_TIME }, { "model", "model", SL_C_TEXT },
    { "model_id", "model_id", SL_C_TEXT }, { "model_group", "model_group", SL_C_TEXT },
    { "custom_llm_provider", "custom_llm_provider", SL_C_TEXT },
    { "api_base", "api_base", SL_C_TEXT }, { "`user`", "user", SL_C_TEXT },
    { "metadata", "metadata", SL_C_JSON }, { "cache_hit", "cache_hit", SL_C_TEXT },
    { "cache_key", "cache_key", SL_C_TEXT }, { "request_tags", "request_tags", SL_C_JSON },
    { "team_id", "team_id", SL_C_TEXT }, { "organization_id", "organization_id", SL_C_TEXT },
    { "end_user", "end_user", SL_C_TEXT },
    { "requester_ip_address", "requester_ip_address", SL_C_TEXT },
    { "messages", "messages", SL_C_JSON }, { "response", "response", SL_C_JSON },
    { "session_id", "session_id", SL_C_TEXT }, { "status", "status", SL_C_TEXT },
    { "mcp_namespaced_tool_name", "mcp_namespaced_tool_name", SL_C_TEXT },
    { "agent_id", "agent_id", SL_C_TEXT },
    { "proxy_server_request", "proxy_server_request", SL_C_JSON },
};
#define N_LOG_COLS (sizeof(log_cols) / sizeof(log_cols[0]))

static int append(char *sql, size_t size, size_t *n, const char *s)
{
    size_t l = strlen(s);

    if (*n + l >= size)
        return SL_ERR_INTERNAL;
    memcpy(sql + *n, s, l + 1);
    *n += l;
    return SL_OK;
}

int sl_spendstore_logs(struct sl_db *db, const struct sl_spendstore_filter *f, json_t **out,
                       struct sl_keystore_err *err)
{
    struct sl_db_param p[6];
    char sql[2048], token[65];
    const char *where = " WHERE ";
    long long start = 0, end = 0;
    size_t np = 0, n = 0;
    int row = 0, rc = SL_OK;
    json_t *arr, *o;

    *out = NULL;
    sl_store_reset(err);
    if (f->start_date != NULL && (rc = sl_spendstore_date("start_date", f->start_date, &start, err)) != SL_OK)
        return rc;
    if (f->end_date != NULL && (rc = sl_spendstore_date("end_date", f->end_date, &end, err)) != SL_OK)
        return rc;
    if (f->start_date != NULL && f->end_date != NULL && end < start)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "end_date must not be before start_date.");
    append(sql, sizeof(sql), &n, "SELECT ");
    for (size_t i = 0; i < N_LOG_COLS; i++) {
        if (i > 0)
            append(sql, sizeof(sql), &n, ", ");
        append(sql, sizeof(sql), &n, log_cols[i].sql);
    }
    append(sql, sizeof(sql), &n, " FROM " LOGS);
    if (f->api_key != NULL) {
        sl_keystore_token_of(f->api_key, token);
        append(sql, sizeof(sql), &n, where);
        append(sql, sizeof(sql), &n, "api_key = ?");
        p[np++] = sl_db_text(token);
        where = " AND ";
    }
    if (f->user_id != NULL) {
        append(sql, sizeof(sql), &n, where);
        append(sql, sizeof(sql), &n, "`user` = ?");
        p[np++] = sl_db_text(f->user_id);
        where = " AND ";
    }
    if (f->request_id != NULL) {
        append(sql, sizeof(sql), &n, where);
        append(sql, sizeof(sql), &n, "request_id = ?");
        p[np++] = sl_db_text(f->request_id);
        where = " AND ";
    }
    if (f->start_date != NULL) {
        append(sql, sizeof(sql), &n, where);
        append(sql, sizeof(sql), &n, "startTime >= ?");
        p[np++] = sl_db_time_us(start);
        where = " AND ";
    }
    if (f->end_date != NULL) {
        append(sql, sizeof(sql), &n, where);
        append(sql, sizeof(sql), &n, "startTime < ?");
        p[np++] = sl_db_time_us(end + DAY_US);   /* the whole end day */
    }
    p[np++] = sl_db_int(f->limit);
    if (append(sql, sizeof(sql), &n, " ORDER BY startTime DESC, request_id DESC LIMIT ?") != SL_OK)
        return sl_store_fail(err, SL_ERR_INTERNAL, "statement too long");
    if ((arr = json_array()) == NULL)
        return sl_store_oom(err);
    if (sl_db_query(db, sql, p, np) != SL_OK) {
        json_decref(arr);
        return sl_store_db_fail(db, err, "spendstore", TABLES, "read spend logs");
    }
    while ((rc = sl_db_fetch(db, &row)) == SL_OK && row) {
        if ((o = json_object()) == NULL || json_array_append_new(arr, o) != 0)
            break;
        for (size_t i = 0; i < N_LOG_COLS; i++)
            if (json_object_set_new(o, log_cols[i].name, sl_store_column(db, i, log_cols[i].type)) != 0)
                break;
    }
    sl_db_query_end(db);
    if (rc != SL_OK) {
        json_decref(arr);
        return sl_store_db_fail(db, err, "spendstore", TABLES, "read spend logs");
    }
    if (row) {   /* stopped early: out of memory */
        json_decref(arr);
        return sl_store_oom(err);
    }
    *out = arr;
    return SL_OK;
}

/* ---- GET /global/spend/report -------------------------------------------- */

/* Each query's columns: day, name, label, breakdown, spend, prompt tokens,
 * completion tokens, requests; rows in (day, name, breakdown) order with
 * WITH ROLLUP subtotals (breakdown NULL: the name's; name NULL: the day's). */
static const struct report {
    const char *group_by, *list, *name, *label, *sub;
    const char *sql;
} reports[] = {
    { "team", "teams", "team_id", "team_alias", "model",
      "SELECT DATE_FORMAT(d.`date`, '%Y-%m-%d') AS day, d.team_id AS name, MAX(t.team_alias), "
      "COALESCE(NULLIF(d.model_group, ''), d.model) AS sub, SUM(d.spend), SUM(d.prompt_tokens), "
      "SUM(d.completion_tokens), SUM(d.api_requests) FROM " DAILY " d LEFT JOIN LiteLLM_TeamTable t "
      "ON t.team_id = d.team_id WHERE d.`date` >= ? AND d.`date` <= ? GROUP BY day, name, sub WITH ROLLUP" },
    { "customer", "customers", "customer", NULL, "model",
      "SELECT DATE_FORMAT(startTime, '%Y-%m-%d') AS day, COALESCE(end_user, '') AS name, NULL, "
      "COALESCE(NULLIF(model_group, ''), model) AS sub, SUM(spend), SUM(prompt_tokens), "
      "SUM(completion_tokens), COUNT(*) FROM " LOGS " WHERE startTime >= ? AND startTime < ? "
      "GROUP BY day, name, sub WITH ROLLUP" },
    { "api_key", "api_keys", "api_key", "key_alias", "model",
      "SELECT DATE_FORMAT(d.`date`, '%Y-%m-%d') AS day, d.api_key AS name, MAX(k.key_alias), "
      "COALESCE(NULLIF(d.model_group, ''), d.model) AS sub, SUM(d.spend), SUM(d.prompt_tokens), "
      "SUM(d.completion_tokens), SUM(d.api_requests) FROM " DAILY " d LEFT JOIN "
      "LiteLLM_VerificationToken k ON k.token = d.api_key WHERE d.`date` >= ? AND d.`date` <= ? "
      "GROUP BY day, name, sub WITH ROLLUP" },
    { "model", "models", "model", NULL, "api_key",
      "SELECT DATE_FORMAT(`date`, '%Y-%m-%d') AS day, COALESCE(NULLIF(model_group, ''), model) AS name, "
      "NULL, api_key AS sub, SUM(spend), SUM(prompt_tokens), SUM(completion_tokens), "
      "SUM(api_requests) FROM " DAILY " WHERE `date` >= ? AND `date` <= ? "
      "GROUP BY day, name, sub WITH ROLLUP" },
};

/* spend, tokens and requests of the current row into o. */
static int set_sums(struct sl_db *db, json_t *o, const char *spend)
{
    long long in = sl_db_col_int(db, 5), outt = sl_db_col_int(db, 6);

    return json_object_set_new(o, spend, sl_store_column(db, 4, SL_C_MONEY)) |
           json_object_set_new(o, "total_tokens", json_integer(in + outt)) |
           json_object_set_new(o, "prompt_tokens", json_integer(in)) |
           json_object_set_new(o, "completion_tokens", json_integer(outt)) |
           json_object_set_new(o, "api_requests", json_integer(sl_db_col_int(db, 7)));
}

/* Builds the answer from the rolled-up rows. SL_OK or SL_ERR_NOMEM. */
static int report_rows(struct sl_db *db, const struct report *r, json_t *arr, int *row)
{
    json_t *day = NULL, *list = NULL, *grp = NULL, *meta = NULL, *o;
    int rc;

    while ((rc = sl_db_fetch(db, row)) == SL_OK && *row) {
        if (sl_db_col_is_null(db, 0))
            continue;                                  /* the grand total */
        if (day == NULL) {
            day = json_object();
            list = json_array();
            if (day == NULL || list == NULL || json_object_set_new(day, r->list, list) != 0 ||
                json_object_set_new(day, "group_by_day", sl_store_column(db, 0, SL_C_TEXT)) != 0)
                goto oom;
        }
        if (sl_db_col_is_null(db, 1)) {                /* the day's total: the day is done */
            if (set_sums(db, day, "total_spend") != 0 || json_array_append_new(arr, day) != 0) {
                day = NULL;
                goto oom;
            }
            day = NULL;
            grp = NULL;
            continue;
        }
        if (grp == NULL) {
            if ((grp = json_object()) == NULL || json_array_append_new(list, grp) != 0 ||
                json_object_set_new(grp, r->name, sl_store_column(db, 1, SL_C_TEXT)) != 0 ||
                (r->label != NULL &&
                 json_object_set_new(grp, r->label, sl_store_column(db, 2, SL_C_TEXT)) != 0) ||
                (meta = json_array()) == NULL || json_object_set_new(grp, "metadata", meta) != 0)
                goto oom;
            if (strcmp(r->group_by, "team") == 0 &&    /* LiteLLM's team_name: the alias, else the id */
                json_object_set_new(grp, "team_name", sl_store_column(db, sl_db_col_is_null(db, 2) ? 1 : 2,
                                                                      SL_C_TEXT)) != 0)
                goto oom;
        }
        if (sl_db_col_is_null(db, 3)) {                /* the group's total */
            if (set_sums(db, grp, "total_spend") != 0)
                goto oom;
            grp = NULL;
            continue;
        }
        if ((o = json_object()) == NULL || json_array_append_new(meta, o) != 0 ||
            json_object_set_new(o, r->sub, sl_store_column(db, 3, SL_C_TEXT)) != 0 ||
            set_sums(db, o, "spend") != 0)
            goto oom;
    }
    json_decref(day);
    return rc;
oom:
    json_decref(day);
    return SL_ERR_NOMEM;
}

int sl_spendstore_report(struct sl_db *db, const char *start_date, const char *end_date,
                         const char *group_by, json_t **out, struct sl_keystore_err *err)
{
    const struct report *r = NULL;
    long long start, end;
    char s[16], e[16];
    struct sl_db_param p[2];
    json_t *arr;
    int row = 0, rc;

    *out = NULL;
    sl_store_reset(err);
    if (group_by == NULL || *group_by == '\0')
        group_by = "team";
    for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++)
        if (strcmp(reports[i].group_by, group_by) == 0)
            r = &reports[i];
    if (r == NULL)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST,
                             "group_by must be team, customer, api_key or model.");
    if (end_date != NULL) {
        if ((rc = sl_spendstore_date("end_date", end_date, &end, err)) != SL_OK)
            return rc;
    } else {
        end = sl_store_now_us() / DAY_US * DAY_US;
    }
    if (start_date != NULL) {
        if ((rc = sl_spendstore_date("start_date", start_date, &start, err)) != SL_OK)
            return rc;
    } else {
        start = end - 30 * DAY_US;
    }
    if (end < start)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST, "end_date must not be before start_date.");
    if ((end - start) / DAY_US >= SL_SPEND_REPORT_DAYS)
        return sl_store_fail(err, SL_ERR_BAD_REQUEST,
                             "start_date to end_date must span at most %d days.", SL_SPEND_REPORT_DAYS);
    day_text(start, s);
    day_text(end, e);
    if (strcmp(r->group_by, "customer") == 0) {
        p[0] = sl_db_time_us(start);
        p[1] = sl_db_time_us(end + DAY_US);
    } else {
        p[0] = sl_db_text(s);
        p[1] = sl_db_text(e);
    }
    if ((arr = json_array()) == NULL)
        return sl_store_oom(err);
    if (sl_db_query(db, r->sql, p, 2) != SL_OK) {
        json_decref(arr);
        return sl_store_db_fail(db, err, "spendstore", TABLES, "read daily spend");
    }
    rc = report_rows(db, r, arr, &row);
    sl_db_query_end(db);
    if (rc != SL_OK) {
        json_decref(arr);
        return rc == SL_ERR_NOMEM ? sl_store_oom(err)
                                  : sl_store_db_fail(db, err, "spendstore", TABLES, "read daily spend");
    }
    *out = arr;
    return SL_OK;
}

/* ---- GET /model/info ----------------------------------------------------- */

/* Whether a litellm_params key holds a secret (LiteLLM drops api_key and the
 * cloud credentials; headers may carry a token too). */
int sl_spendstore_secret_name(const char *k)
{
    static const char *const parts[] = {
        "api_key", "secret", "password", "credential", "access_key", "session_token",
        "ad_token", "private_key", "headers", "authorization", "auth_token",
    };

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strcasestr(k, parts[i]) != NULL)
            return 1;
    return 0;
}

/* A URL without what may carry a secret (respond.h), as a new JSON string. */
static json_t *safe_url(const char *u)
{
    char *out = malloc(strlen(u) + 1);
    json_t *j;

    if (out == NULL)
        return NULL;
    sl_safe_url(u, out);
    j = json_string(out);
    free(out);
    return j;
}

json_t *sl_spendstore_scrub(const json_t *params)
{
    json_t *o = json_object(), *v;
    const char *k;

    if (o == NULL)
        return NULL;
    json_object_foreach((json_t *)params, k, v) {
        json_t *c;

        if (sl_spendstore_secret_name(k))
            continue;
        if (json_is_string(v) && strcasestr(k, "api_base") != NULL)
            c = safe_url(json_string_value(v));   /* user:password@ and ?query go */
        else
            c = json_is_object(v) ? sl_spendstore_scrub(v) : json_deep_copy(v);
        if (c == NULL || json_object_set_new(o, k, c) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *cost(double per_token)
{
    return json_real(per_token);
}

static json_t *deployment_info(const struct sl_deployment *d)
{
    const char *prov = d->provider != NULL ? d->provider->name : "";
    const struct sl_price *pr = NULL;
    json_t *info = json_is_object(d->model_info) ? json_deep_copy(d->model_info) : json_object();
    json_t *lp = json_is_object(d->litellm_params) ? sl_spendstore_scrub(d->litellm_params) : json_object();
    json_t *o;
    int bad = info == NULL || lp == NULL;

    if (!bad) {
        bad |= json_object_set_new(info, "id", json_string(d->id != NULL ? d->id : ""));
        bad |= json_object_set_new(info, "mode", json_string(d->mode != NULL ? d->mode : "chat"));
        bad |= json_object_set_new(info, "litellm_provider", json_string(prov));
        if (d->input_cost_per_token > 0 || d->output_cost_per_token > 0) {
            bad |= json_object_set_new(info, "input_cost_per_token", cost(d->input_cost_per_token));
            bad |= json_object_set_new(info, "output_cost_per_token", cost(d->output_cost_per_token));
        } else if (json_object_get(info, "input_cost_per_token") == NULL &&
                   json_object_get(info, "output_cost_per_token") == NULL) {
            if (d->price_resolved)
                pr = d->price;   /* the price file's or the table's, as calls are priced */
            else if (d->upstream_model != NULL)
                pr = sl_price_find(prov, d->upstream_model);
            bad |= json_object_set_new(info, "input_cost_per_token",
                                       pr != NULL ? cost(pr->input / 1e6) : json_null());
            bad |= json_object_set_new(info, "output_cost_per_token",
                                       pr != NULL ? cost(pr->output / 1e6) : json_null());
            if (pr != NULL && pr->cache_read > 0)
                bad |= json_object_set_new(info, "cache_read_input_token_cost", cost(pr->cache_read / 1e6));
            if (pr != NULL && pr->cache_write > 0)
                bad |= json_object_set_new(info, "cache_creation_input_token_cost",
                                           cost(pr->cache_write / 1e6));
        }
    }
    if (bad) {
        json_decref(info);
        json_decref(lp);
        return NULL;
    }
    o = json_pack("{s:s, s:o, s:o}", "model_name", d->model_name != NULL ? d->model_name : "",
                  "litellm_params", lp, "model_info", info);
    return o;
}

json_t *sl_spendstore_model_info(const struct sl_config *cfg)
{
    json_t *data = json_array(), *o;

    if (data == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->n_deployments; i++)
        if ((o = deployment_info(&cfg->deployments[i])) == NULL || json_array_append_new(data, o) != 0) {
            json_decref(data);
            return NULL;
        }
    return json_pack("{s:o}", "data", data);
}

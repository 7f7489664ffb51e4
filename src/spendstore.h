/* Read-only spend reports over the rows spend.c writes: LiteLLM's
 * GET /spend/logs (LiteLLM_SpendLogs rows) and GET /global/spend/report
 * (per-day totals from sluice_daily_spend, or from the logs for
 * customers), and GET /model/info, which needs only the config. admin.c
 * routes and authorises; this module checks the filters, runs the SQL
 * (prepared statements, every value a parameter) and shapes the answers. */
#ifndef SL_SPENDSTORE_H
#define SL_SPENDSTORE_H

#include <jansson.h>

#include "keystore.h"

struct sl_db;
struct sl_config;

#define SL_SPEND_LOGS_LIMIT 100       /* rows of /spend/logs by default */
#define SL_SPEND_LOGS_MAX 1000        /* and at most */
#define SL_SPEND_REPORT_DAYS 366      /* the longest /global/spend/report range */

/* A "YYYY-MM-DD" date (a real day) as microseconds since the epoch at
 * 00:00 UTC: SL_OK, or a 400 in err naming the field. */
int sl_spendstore_date(const char *name, const char *s, long long *us, struct sl_keystore_err *err);

/* GET /spend/logs filters. NULL: any. api_key: the key or its token. Dates
 * as given ("YYYY-MM-DD", both days included), checked here. */
struct sl_spendstore_filter {
    const char *api_key, *user_id, *request_id;
    const char *start_date, *end_date;
    long limit;                      /* 1 .. SL_SPEND_LOGS_MAX */
};

/* *out: a list of LiteLLM_SpendLogs rows as objects, newest first (new
 * reference). */
int sl_spendstore_logs(struct sl_db *db, const struct sl_spendstore_filter *f, json_t **out,
                       struct sl_keystore_err *err);

/* GET /global/spend/report: group_by team (default), customer, api_key or
 * model; start_date defaults to 30 days before end_date, end_date to today
 * (UTC). *out: a list, one object per day with spend, oldest first:
 * {"group_by_day", "total_spend", "total_tokens", "api_requests",
 *  "<teams|customers|api_keys|models>": [{<name>, "total_spend",
 *  "total_tokens", "api_requests", "metadata": [{<breakdown>, "spend",
 *  "total_tokens", ...}]}]} (new reference). */
int sl_spendstore_report(struct sl_db *db, const char *start_date, const char *end_date,
                         const char *group_by, json_t **out, struct sl_keystore_err *err);

/* GET /model/info: {"data": [{model_name, litellm_params without secrets,
 * model_info with id, mode and the prices per token}]}, in config order.
 * New reference, or NULL on OOM. */
json_t *sl_spendstore_model_info(const struct sl_config *cfg);

/* Whether a litellm_params key names a secret (api_key, aws_secret_access_key,
 * vertex_credentials, headers, ...): the one list of what is never shown. */
int sl_spendstore_secret_name(const char *k);

/* A deep copy of a litellm_params object without the members
 * sl_spendstore_secret_name picks, at any depth (new reference, NULL on
 * OOM). Used by /model/info and /health. */
json_t *sl_spendstore_scrub(const json_t *params);

#endif

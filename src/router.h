/* Routing: the requested model name -> one deployment of its model group,
 * and what to do when a call to it fails.
 *
 * At config load sl_router_build indexes the model groups (deployments that
 * share a model_name, exact names in a hash table, wildcards such as
 * "openai/" followed by a star by longest prefix), resolves model_group_alias and the
 * fallback lists of router_settings, and gives every deployment its live
 * state (in flight, latency, failures, cooldown), which outlives reloads.
 *
 * Per request: sl_router_pick chooses among the group's deployments that
 * are not cooling down and not at their max_parallel_requests, by priority
 * `order`, then by router_settings.routing_strategy: simple-shuffle (by
 * weight, else rpm, else tpm, else evenly), least-busy, latency-based-
 * routing (moving averages, time to first token for streams, within
 * routing_strategy_args.lowest_latency_buffer of the fastest) or
 * usage-based-routing (the fewest tokens this minute). After a failed
 * attempt that sent nothing to the client, sl_router_next records the
 * failure (a cooldown after allowed_fails failures in a minute, at once for
 * 401, 404 and 429; shared through memcached) and picks the retry or the
 * fallback, or says the error is final. See docs/routing.md. */
#ifndef SL_ROUTER_H
#define SL_ROUTER_H

#include <stddef.h>

struct sl_config;
struct sl_group;
struct sl_request;
struct sl_router;

/* Why an attempt failed, for retries, cooldowns and the kind of fallback. */
enum sl_fail {
    SL_FAIL_RATE_LIMIT = 1,   /* 429 */
    SL_FAIL_SERVER,           /* 5xx, an unreadable answer */
    SL_FAIL_TIMEOUT,          /* no answer in time */
    SL_FAIL_CONNECT,          /* could not connect */
    SL_FAIL_AUTH,             /* 401, 403: the deployment's key */
    SL_FAIL_NOT_FOUND,        /* 404: the deployment's model or URL */
    SL_FAIL_BAD_REQUEST,      /* other 4xx: the request's own fault, never retried */
    SL_FAIL_CONTEXT_WINDOW,   /* the prompt is too long for the model */
    SL_FAIL_CONTENT_POLICY    /* the provider's content filter refused it */
};

/* Builds cfg->routes from cfg's deployments and router_settings. SL_OK;
 * SL_ERR_CONFIG with why (a message naming the setting) when a fallback
 * list or an alias is malformed or names no model group; SL_ERR_NOMEM. */
int sl_router_build(struct sl_config *cfg, char *why, size_t n);
void sl_router_free(struct sl_router *r);   /* NULL-safe */

/* The group a public model name resolves to (aliases, exact names,
 * wildcards): its name, or NULL. For /v1/models and model checks. */
const char *sl_router_group_of(const struct sl_config *cfg, const char *model);

/* Calls fn for every public name (groups and visible aliases), once each. */
void sl_router_each_name(const struct sl_config *cfg, void (*fn)(void *ctx, const char *name),
                         void *ctx);

/* Sets req->dep (and req->model_group) for req->model: the key's own model
 * aliases first, then the config's. SL_OK; SL_ERR_UNKNOWN_MODEL; the key's
 * model_access_denied 401; 429 "No deployments available" when every
 * deployment of the group is cooling down or full. The chosen deployment
 * counts the request in flight until sl_router_release. */
int sl_router_pick(struct sl_request *req);

/* A group's name (the model_name of its deployments; config memory). */
const char *sl_router_group_name(const struct sl_group *g);

/* After an attempt on req->dep failed with nothing sent to the client:
 * records the failure and chooses what comes next. SL_OK: req->dep is the
 * next deployment (a retry in the group, or the first of a fallback group),
 * to be tried after *wait_ms; any other status: no more tries, answer the
 * error of this attempt. retry_after_ms: the upstream's retry-after (-1:
 * none). */
int sl_router_next(struct sl_request *req, int why, long retry_after_ms, long *wait_ms);

/* The attempt on req->dep ended (ok: a 2xx answer): counts it out of
 * flight and feeds the latency averages. Idempotent; also called at the
 * end of every request. */
void sl_router_release(struct sl_request *req, int ok);

/* Sets the response headers naming the deployment that answers and what
 * was tried (x-litellm-model-id, x-litellm-model-api-base without query
 * string, x-litellm-model-group, x-litellm-attempted-retries,
 * x-litellm-attempted-fallbacks). */
void sl_router_headers(struct sl_request *req);

#endif

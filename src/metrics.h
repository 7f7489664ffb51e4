/* Prometheus metrics of this host: every sluice process that uses the same
 * spool directory counts into one shared file (metrics.shm there), so
 * GET /metrics answers the sum over all of them, whichever process serves
 * the scrape, and a process that exits or restarts takes nothing with it.
 *
 * A request is counted once, when it ends (sl_metrics_end): one row of
 * counters and a latency histogram keyed by the labels it earned (model
 * group, deployment, key, team, user, status, route), one row per upstream
 * attempt, and rows for fallbacks, rejections and guardrails. The families
 * /metrics shows (LiteLLM's names where it has them, docs/observability.md)
 * are projections of those rows. Label values come from the configuration
 * and the database only (model groups, deployments, key aliases, team and
 * user ids, status codes, route templates), never from the request body,
 * so their number is bounded; when the table is full anyway, further
 * label sets count into one row per kind with empty labels, and the totals
 * stay exact. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stddef.h>

struct sl_buf;
struct sl_config;
struct sl_deployment;
struct sl_request;

/* A request began (the in-flight gauge). */
void sl_metrics_begin(const struct sl_request *req);

/* req ended (its last byte is out): counts it, its attempts, fallbacks,
 * rejection and guardrails, and takes it off the in-flight gauge. */
void sl_metrics_end(const struct sl_request *req);

/* Deployment d starts a cooldown after an upstream answer of status (0: no
 * HTTP status: a time-out or a connection failure). */
void sl_metrics_cooldown(const struct sl_config *cfg, const struct sl_deployment *d, int status);

/* Guardrail name ran as hook ("pre_call", "post_call", "logging_only") on a
 * request, with status ("passed", "masked", "blocked") in us µs. */
void sl_metrics_guardrail(const struct sl_config *cfg, const char *name, const char *hook,
                          const char *status, long long us);

/* A callback sink (callback.h) delivered, dropped or failed to deliver n
 * events. what: 0 sent, 1 dropped, 2 failed. */
enum { SL_METRICS_CB_SENT, SL_METRICS_CB_DROPPED, SL_METRICS_CB_FAILED };
void sl_metrics_callback(const char *name, int what, long n);

/* Appends the Prometheus text exposition (format 0.0.4) to out. SL_OK, or
 * SL_ERR_NOMEM / SL_ERR_TOO_LARGE from the buffer. */
int sl_metrics_render(struct sl_buf *out);

/* GET /metrics, after the route was found: access (the master key, an
 * address in sluice_settings.metrics_allowed_ips, or everyone with
 * litellm_settings.require_auth_for_metrics_endpoint: false), then the
 * exposition. An sl_status for the caller to answer, SL_OK when done. */
int sl_metrics_serve(struct sl_request *req);

/* Whether a REMOTE_ADDR text lies in one of the n networks of cfg's
 * metrics_allowed_ips. */
int sl_metrics_addr_allowed(const struct sl_config *cfg, const char *addr);

#endif

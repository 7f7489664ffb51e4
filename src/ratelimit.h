/* Rate limits: rpm_limit, tpm_limit and max_parallel_requests (LiteLLM's
 * fields) of virtual keys, their teams and their users (a key's user is
 * limited also when the key belongs to a team; a user the web server
 * authenticated is limited by its own row), the key's model_rpm_limit and
 * model_tpm_limit (its metadata, per model asked for), each end user (the
 * body's "user", sluice_settings.end_user_*) and all calls together
 * (general_settings.global_max_parallel_requests). Counted in shared
 * counters (counter.h): memcached, so that they hold across every process
 * and host, or the host's table while it is away. (Not "limits.h": that
 * name belongs to the C library.)
 *
 *   requests:  fixed 60 s windows from the Unix epoch (12:00:00 to
 *              12:00:59 UTC is one window); a call takes one at admission
 *              and is refused when the window's count already reached the
 *              limit;
 *   tokens:    the same windows; a call reserves an estimate (its prompt's
 *              size and max_tokens) at admission, refused when what the
 *              window used and reserved before it reached the limit, and
 *              replaces it with its real usage when it ends (streams
 *              included);
 *   parallel:  a gauge (counter.h): taken at admission, given back when the
 *              request ends for any reason; a process that dies holding
 *              some holds them one gauge period (30 s) after the next
 *              begins at most.
 * A refusal is LiteLLM's 429 with retry-after; every answer of a limited
 * call carries the x-ratelimit-* headers. See docs/limits.md. */
#ifndef SL_RATELIMIT_H
#define SL_RATELIMIT_H

#include "counter.h"

struct sl_request;

/* Who a call is limited as: its key, the key's team, its user, its end
 * user, its key and model, everyone. */
#define SL_LIMIT_SCOPES 6

/* What a request holds until it ends, per scope. */
struct sl_limit_hold {
    struct sl_counter_hold requests[SL_LIMIT_SCOPES];
    struct sl_counter_hold tokens[SL_LIMIT_SCOPES];
    struct sl_gauge_hold parallel[SL_LIMIT_SCOPES];
};

/* Admission for a model call (after sl_budget_admit): SL_OK with the
 * rate-limit headers added, or SL_ERR_RATE_LIMITED with LiteLLM's message
 * on req and retry-after set. The master key has no key, team or user
 * limits (end-user and global limits hold for it too). */
int sl_ratelimit_admit(struct sl_request *req);

/* Gives back the parallel slots and settles the tokens with the call's
 * real usage. Safe to call always; once. */
void sl_ratelimit_release(struct sl_request *req);

/* The fixed window containing wall-clock second now_s: its number, and
 * the seconds until it ends (1..60). Pure, for the tests. */
long long sl_ratelimit_window(long long now_s, long *left_s);

#endif

/* Rate limits of virtual keys, their teams and their users: rpm_limit,
 * tpm_limit and max_parallel_requests (LiteLLM's fields; a key's user is
 * limited also when the key belongs to a team, and a user the web server
 * authenticated is limited by its own row), counted in memcached so that
 * they hold across every process and host, or in the process when no
 * memcached is configured or it does not answer. (Not "limits.h": that
 * name belongs to the C library.)
 *
 *   requests:  fixed 60 s windows from the Unix epoch (12:00:00 to
 *              12:00:59 UTC is one window): one atomic increment at
 *              admission; a call that takes the count over the limit is
 *              refused and gives its increment back;
 *   tokens:    the same windows; a call is refused at admission when the
 *              window's tokens already reached the limit, and adds its real
 *              tokens (usage.total_tokens) when it ends: past usage only,
 *              as LiteLLM;
 *   parallel:  one increment at admission, one decrement when the request
 *              ends for any reason. The counter is named by a 5-minute
 *              lease period; admission counts the current and the previous
 *              period, so a worker that crashes with a slot held leaks it
 *              for 10 minutes at most.
 * A refusal is LiteLLM's 429 with retry-after; every answer of a limited
 * key carries the x-ratelimit-* headers. See docs/limits.md. */
#ifndef SL_RATELIMIT_H
#define SL_RATELIMIT_H

#include "ctable.h"

struct sl_request;

/* The principals a request is limited as: its key, the key's team, its
 * user (keys.h's sl_budget_scope order). */
#define SL_LIMIT_SCOPES 3

/* What a request holds until it ends, per scope. */
struct sl_limit_hold {
    char parallel[SL_LIMIT_SCOPES][SL_CTABLE_NAME]; /* parallel counters incremented; "" none */
    int parallel_local[SL_LIMIT_SCOPES];            /* ... in the process table */
    char tokens[SL_LIMIT_SCOPES][SL_CTABLE_NAME];   /* token counters to add the call's tokens
                                                     * to, without the window; "" none */
};

/* Admission for a model call of req's principal (after sl_budget_admit):
 * SL_OK with the rate-limit headers added, or SL_ERR_RATE_LIMITED with
 * LiteLLM's message on req and retry-after set. The master key has no
 * limits. */
int sl_ratelimit_admit(struct sl_request *req);

/* Gives back the parallel slot and counts the call's tokens. Safe to call
 * always; once. */
void sl_ratelimit_release(struct sl_request *req);

/* The fixed window containing wall-clock second now_s: its number, and
 * the seconds until it ends (1..60). Pure, for the tests. */
long long sl_ratelimit_window(long long now_s, long *left_s);

#endif

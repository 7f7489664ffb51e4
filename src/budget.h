/* Budgets that hold under concurrency. LiteLLM checks a cached spend before
 * a call and adds the cost long after it, so a burst of concurrent requests
 * all see the same old spend and can overspend a budget many times over.
 * sluice keeps a live counter per budget (key, team, user; per budget
 * period) in memcached, shared by every process and host, or in the
 * process when no memcached is configured:
 *   admission: reserve an estimate of the call's cost (the prompt's size and
 *              max_tokens at the model's price) with one atomic increment,
 *              and refuse when what was spent and reserved before it already
 *              reached the budget (LiteLLM's 400 budget_exceeded);
 *   settle:    when the call ends, replace the estimate with the real cost
 *              (one atomic increment or decrement).
 * Processes reserve by lease (counter.h), so a busy key costs about one
 * memcached round trip per 64 calls. A budget is overspent by at most the
 * requests in flight when it ran out. The database stays the record (spend.c writes it); a counter starts
 * from the spend the key snapshot carries and never trails it. See
 * docs/database.md, "Budgets". */
#ifndef SL_BUDGET_H
#define SL_BUDGET_H

#include <jansson.h>
#include "counter.h"
#include "keys.h"

struct sl_request;
struct sl_config;

/* A reservation held by a request (counter.h): one per scope, and one for
 * the key's per-model budget (model_max_budget). */
#define SL_BUDGET_HOLDS (SL_BUDGET_SCOPES + 1)
#define SL_BUDGET_HOLD_MODEL SL_BUDGET_SCOPES

/* Admission for a request about to go upstream (req->dep chosen): checks
 * and reserves against the principal's key, team and user budgets (as
 * LiteLLM: a user's own budget covers their keys without a team; a team key
 * counts against the team's) and the key's budget for the requested model.
 * A user the web server authenticated (principal.user) is charged its own
 * budget always, with or without a key or team (docs/remote-user.md).
 * SL_OK; SL_ERR_BAD_REQUEST with LiteLLM's budget_exceeded error on req.
 * The master key has no budget. */
int sl_budget_admit(struct sl_request *req);

/* What a call may take, in tokens: the body's size as prompt tokens (about
 * four bytes a token; JSON framing makes it an overestimate) and the
 * max_tokens asked (else 1024; none for embeddings). */
void sl_budget_tokens_estimate(const struct sl_request *req, long *prompt, long *completion);

/* Settles what sl_budget_admit reserved with req's real cost (0 when the
 * call failed or its price is unknown). Safe to call always; once. */
void sl_budget_settle(struct sl_request *req);

/* The end of the budget period that contains now_us for a budget whose
 * database row says reset_at_us/duration: reset_at_us while it is in the
 * future (0: the budget never resets), else the first of reset_at_us +
 * k x duration past now (the reset is due; the database job writes the
 * same value). *fresh is set when the period is newer than the row's (its
 * spend counts as 0). */
long long sl_budget_period_end(long long reset_at_us, const char *duration, long long now_us,
                               int *fresh);

/* The end of the fixed period of `duration` containing now_us, periods
 * counted from the Unix epoch ("1d": midnight UTC; "1mo": the first of the
 * next month): for per-model budgets, which have no reset date of their
 * own. 0 when duration is NULL or not a duration (one endless period). */
long long sl_budget_aligned_end(const char *duration, long long now_us);

/* Forgets the live counter of a budget whose spend an admin changed
 * (scope: enum sl_budget_scope; id: the key's token, the team or user id),
 * so the next request starts again from the database's figure. */
void sl_budget_forget(const struct sl_config *cfg, int scope, const char *id,
                      long long reset_at_us, const char *duration);

/* The same, from a row as the management API returns it (budget_reset_at
 * as ISO text, budget_duration): for admin.c/keystore after an update that
 * touched spend or the budget's period. */
void sl_budget_forget_row(const struct sl_config *cfg, int scope, const char *id,
                          const json_t *row);

/* Python's repr of a float, as LiteLLM's messages print money ("0.25",
 * "7.2e-05"): out gets at least 48 bytes. */
void sl_budget_py_float(double d, char out[48]);

#endif

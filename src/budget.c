/* Live budget counters: reserve at admission, settle with the real cost
 * (see budget.h).
 *
 * A counter is named sluice:bud:<k|t|u>:<sha256(id)>:<end of the period>,
 * so a budget that resets starts a fresh counter on every host at the same
 * moment, without anyone deleting the old one. Its value is the spend of
 * the period in 1e-10 USD (spend.h's unit) including the reservations of
 * the calls in flight. It is created from the spend in the key snapshot
 * (the database's figure, at most a cache TTL old) and raised to that
 * figure whenever the snapshot shows more (a counter evicted and created
 * again, spend written behind sluice's back), so it never trails the
 * database. Counters live an hour unused at most; a period ends earlier.
 *
 * Backends (counter.h): memcached when configured (one counter for every
 * process and host, reserved from by leases); otherwise, or while memcached
 * fails, the host's table, which makes budgets strict within a host and
 * leaves the database's figure as the only link between hosts. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "auth.h"
#include "budget.h"
#include "config.h"
#include "counter.h"
#include "ctable.h"
#include "keystore.h"
#include "log.h"
#include "mcache.h"
#include "prices.h"
#include "provider.h"
#include "request.h"
#include "spend.h"
#include "status.h"

#define COUNTER_TTL_S 3600
#define DEFAULT_OUTPUT_TOKENS 1024     /* a call that names no max_tokens */
#define MAX_OUTPUT_TOKENS 131072
#define MAX_PERIODS 100000             /* catching up with a long-overdue reset */

static const char scope_letter[SL_BUDGET_HOLDS] = { 'k', 't', 'u', 'm' };

/* ---- helpers ---------------------------------------------------------------- */

void sl_budget_py_float(double d, char out[48])
{
    int prec, exp;

    for (prec = 1; prec < 17; prec++) {
        snprintf(out, 48, "%.*e", prec - 1, d);
        if (strtod(out, NULL) == d)
            break;
    }
    snprintf(out, 48, "%.*e", prec - 1, d);
    exp = atoi(strchr(out, 'e') + 1);
    if (exp < -4 || exp >= 16 || !isfinite(d))
        return;
    snprintf(out, 48, "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, d);
    if (strchr(out, '.') == NULL)
        strcat(out, ".0");
}

static long long wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long sl_budget_period_end(long long reset_at_us, const char *duration, long long now_us,
                               int *fresh)
{
    long long t = reset_at_us, next;

    *fresh = 0;
    if (reset_at_us == 0 || reset_at_us > now_us)
        return reset_at_us;
    *fresh = 1;
    for (int i = 0; i < MAX_PERIODS && t <= now_us; i++) {
        if (sl_keystore_add_duration(duration, t, &next) != SL_OK || next <= t)
            break;
        t = next;
    }
    if (t <= now_us &&     /* no usable duration, or years overdue: a period from now */
        (sl_keystore_add_duration(duration, now_us, &t) != SL_OK || t <= now_us))
        t = now_us + 86400000000LL;
    return t;
}

long long sl_budget_aligned_end(const char *duration, long long now_us)
{
    long long d;
    size_t n = duration != NULL ? strlen(duration) : 0;

    if (sl_keystore_add_duration(duration, 0, &d) != SL_OK || d <= 0)
        return 0;
    if (n > 2 && strcmp(duration + n - 2, "mo") == 0) {
        long months = atol(duration), idx;
        time_t t = (time_t)(now_us / 1000000);
        struct tm tm;

        if (months <= 0 || gmtime_r(&t, &tm) == NULL)
            return 0;
        idx = ((tm.tm_year - 70) * 12L + tm.tm_mon) / months * months + months;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = (int)(70 + idx / 12);
        tm.tm_mon = (int)(idx % 12);
        tm.tm_mday = 1;
        return (long long)timegm(&tm) * 1000000LL;
    }
    return (now_us / d + 1) * d;
}

static void counter_prefix(int scope, const char *id, char out[SL_CTABLE_NAME])
{
    char h[65];

    sl_auth_hash_key(id, h);
    snprintf(out, SL_CTABLE_NAME, "sluice:bud:%c:%s:", scope_letter[scope], h);
}

static void counter_name(int scope, const char *id, long long period_end_us, char out[SL_CTABLE_NAME])
{
    size_t n;

    counter_prefix(scope, id, out);
    n = strlen(out);
    snprintf(out + n, SL_CTABLE_NAME - n, "%lld", period_end_us / 1000000);
}

/* Reserves est (1e-10 USD) of the budget max whose database figure is
 * base, in counter h->name (counter.h). On REFUSED, *before is what was
 * spent and reserved before this call. */
static int reserve(const struct sl_request *req, struct sl_counter_hold *h, long long base,
                   long long max, long long est, long long *before)
{
    struct sl_counter_ask a = { base, max, est, COUNTER_TTL_S };
    long long used;
    int rc = sl_counter_reserve(req->cfg, h, &a, &used);

    *before = rc == SL_COUNTER_REFUSED ? used : used - est;
    return rc;
}

/* ---- admission ------------------------------------------------------------ */

static long long max_tokens_asked(const json_t *in)
{
    static const char *const names[] = { "max_completion_tokens", "max_tokens", "max_output_tokens" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *v = json_object_get(in, names[i]);

        if (json_is_integer(v) && json_integer_value(v) > 0)
            return json_integer_value(v) < MAX_OUTPUT_TOKENS ? json_integer_value(v)
                                                             : MAX_OUTPUT_TOKENS;
    }
    return DEFAULT_OUTPUT_TOKENS;
}

void sl_budget_tokens_estimate(const struct sl_request *req, long *prompt, long *completion)
{
    *prompt = (long)(req->body_len / 4 + 1);
    *completion = req->endpoint == SL_EP_EMBEDDINGS || req->endpoint == SL_EP_RERANK
                  ? 0 : (long)max_tokens_asked(req->in);
}

/* What the call may cost, in 1e-10 USD: the body's size as prompt tokens
 * (about four bytes a token; JSON framing makes it an overestimate) and the
 * max_tokens asked (else DEFAULT_OUTPUT_TOKENS) at the deployment's price.
 * 0 when the price is unknown. */
static long long estimate_units(const struct sl_request *req)
{
    struct sl_usage u;
    double cost;
    int known = 0;

    if (req->dep == NULL || req->endpoint == SL_EP_COUNT_TOKENS)
        return 0;
    memset(&u, 0, sizeof(u));
    sl_budget_tokens_estimate(req, &u.prompt_tokens, &u.completion_tokens);
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
    cost = sl_price_cost(req->dep, &u, &known);
    return known ? sl_spend_units(cost) : 0;
}

static int exceeded(struct sl_request *req, int scope, const char *id, long long spent,
                    double max_budget)
{
    char spend[48], budget[48];

    sl_budget_py_float((double)spent / (double)SL_SPEND_UNITS_PER_USD, spend);
    sl_budget_py_float(max_budget, budget);
    if (scope == SL_BUDGET_KEY)
        req->err_msg = sl_arena_printf(req->arena,
            "Budget has been exceeded! Current cost: %s, Max budget: %s", spend, budget);
    else if (scope == SL_BUDGET_TEAM)
        req->err_msg = sl_arena_printf(req->arena,
            "Budget has been exceeded! Team=%.200s Current cost: %s, Max budget: %s", id, spend, budget);
    else
        req->err_msg = sl_arena_printf(req->arena,
            "ExceededBudget: User=%.200s over budget. Spend=%s, Budget=%s", id, spend, budget);
    req->err_type = "budget_exceeded";
    req->rejected = "budget";
    req->rejected_scope = scope == SL_BUDGET_KEY ? "api_key" : scope == SL_BUDGET_TEAM ? "team" : "user";
    return SL_ERR_BAD_REQUEST;
}

static const char *scope_id(const struct sl_key *k, int scope)
{
    return scope == SL_BUDGET_KEY ? k->token : scope == SL_BUDGET_TEAM ? k->team_id : k->user_id;
}

/* A money amount as LiteLLM's model_max_budget writes it: a number or a
 * numeric string. -1 when absent or not a non-negative amount. */
static double amount(const json_t *v)
{
    const char *s = json_string_value(v);
    char *end;
    double d;

    if (json_is_number(v))
        d = json_number_value(v);
    else if (s != NULL && *s != '\0') {
        d = strtod(s, &end);
        if (*end != '\0')
            return -1;
    } else
        return -1;
    return d >= 0 && isfinite(d) ? d : -1;
}

/* The key's budget for the requested model (model_max_budget: {model:
 * {budget_limit, time_period}}, LiteLLM's GenericBudgetInfo; max_budget and
 * budget_duration are read too). Periods are fixed from the epoch; the
 * counter starts at 0 (the database keeps no per-model spend by period).
 * est < 0: not estimated yet. */
static int admit_model(struct sl_request *req, const struct sl_key *k, long long est)
{
    struct sl_counter_hold *h = &req->budget_holds[SL_BUDGET_HOLD_MODEL];
    json_t *all, *b;
    const char *dur;
    double max;
    char id[600];
    long long before;
    int rc = SL_OK;

    if (k->model_max_budget == NULL || req->model == NULL)
        return SL_OK;
    all = json_loads(k->model_max_budget, 0, NULL);
    b = json_object_get(all, req->model);
    max = amount(json_object_get(b, "budget_limit"));
    if (max < 0)
        max = amount(json_object_get(b, "max_budget"));
    dur = json_string_value(json_object_get(b, "time_period"));
    if (dur == NULL)
        dur = json_string_value(json_object_get(b, "budget_duration"));
    if (max >= 0) {
        if (est < 0)
            est = estimate_units(req);
        snprintf(id, sizeof(id), "%s\n%.500s", k->token, req->model);
        counter_name(SL_BUDGET_HOLD_MODEL, id, sl_budget_aligned_end(dur, wall_us()), h->name);
        if (reserve(req, h, 0, sl_spend_units(max), est, &before) == SL_COUNTER_REFUSED) {
            sl_budget_settle(req);
            req->err_msg = sl_arena_printf(req->arena,
                "LiteLLM Virtual Key: %s, key_alias: %.200s, exceeded budget for model=%.200s",
                k->token, k->key_alias ? k->key_alias : "None", req->model);
            req->err_type = "budget_exceeded";
            req->rejected = "budget";
            req->rejected_scope = "model_per_key";
            rc = SL_ERR_BAD_REQUEST;
        }
    }
    json_decref(all);
    return rc;
}

/* Whose budget a scope is: the key's snapshot (for a remote user alone, the
 * user's), but the user budget of a remote user wherever there is one (the
 * spend is that user's; LiteLLM's team-key rule below is about a key's
 * owner, not about the user the web server vouches for). */
static const struct sl_key *scope_owner(const struct sl_request *req, int scope)
{
    if (scope == SL_BUDGET_USER && req->principal.user != NULL)
        return req->principal.user;
    return req->principal.key;
}

int sl_budget_admit(struct sl_request *req)
{
    const struct sl_key *k = req->principal.key;
    long long now, est = -1;

    if (k == NULL)                          /* the master key: no budget */
        return SL_OK;
    now = wall_us();
    for (int scope = 0; scope < SL_BUDGET_SCOPES; scope++) {
        const struct sl_key *o = scope_owner(req, scope);
        const struct sl_budget *b = &o->budget[scope];
        struct sl_counter_hold *h = &req->budget_holds[scope];
        const char *id = scope_id(o, scope);
        long long period, base, before;
        int fresh;

        if (b->max_budget < 0 || id == NULL || id[0] == '\0' ||
            (scope == SL_BUDGET_USER && k->team_id != NULL &&
             req->principal.user == NULL))  /* LiteLLM's rule */
            continue;
        period = sl_budget_period_end(b->reset_at_us, b->duration, now, &fresh);
        base = fresh ? 0 : sl_spend_units(b->spend);
        if (est < 0)
            est = estimate_units(req);
        counter_name(scope, id, period, h->name);
        if (reserve(req, h, base, sl_spend_units(b->max_budget), est, &before) == SL_COUNTER_REFUSED) {
            sl_budget_settle(req);         /* gives back what this request reserved */
            return exceeded(req, scope, id, before, b->max_budget);
        }
    }
    return admit_model(req, k, est);
}

void sl_budget_settle(struct sl_request *req)
{
    long long actual = req->cost_known ? sl_spend_units(req->cost) : 0;

    for (int i = 0; i < SL_BUDGET_HOLDS; i++)
        sl_counter_settle(&req->budget_holds[i], actual);
}

void sl_budget_forget(const struct sl_config *cfg, int scope, const char *id,
                      long long reset_at_us, const char *duration)
{
    char prefix[SL_CTABLE_NAME], name[SL_CTABLE_NAME];
    int fresh;

    if (id == NULL || scope < 0 || scope >= SL_BUDGET_SCOPES)
        return;
    counter_prefix(scope, id, prefix);
    counter_name(scope, id, sl_budget_period_end(reset_at_us, duration, wall_us(), &fresh), name);
    sl_counter_forget(cfg, prefix, name);
}

/* "2026-01-31T12:00:00[.ffffff]Z" (sl_keystore_iso_time's form) → µs; 0 if
 * it is not that. */
static long long iso_us(const char *s)
{
    struct tm tm;
    long long frac = 0;
    int n = 0;

    memset(&tm, 0, sizeof(tm));
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return 0;
    if (s[n] == '.') {
        int digits = 0;

        for (n++; s[n] >= '0' && s[n] <= '9'; n++, digits++)
            if (digits < 6)
                frac = frac * 10 + (s[n] - '0');
        for (; digits < 6; digits++)
            frac *= 10;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000000LL + frac;
}

void sl_budget_forget_row(const struct sl_config *cfg, int scope, const char *id,
                          const json_t *row)
{
    sl_budget_forget(cfg, scope, id,
                     iso_us(json_string_value(json_object_get(row, "budget_reset_at"))),
                     json_string_value(json_object_get(row, "budget_duration")));
}

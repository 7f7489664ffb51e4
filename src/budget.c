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
 * Backends: memcached when configured (one counter for every process and
 * host); otherwise, or while memcached fails, a table in this process,
 * which makes budgets strict within a process and leaves the database's
 * figure as the only link between processes. */
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

static void counter_prefix(int scope, const char *id, char out[112])
{
    char h[65];

    sl_auth_hash_key(id, h);
    snprintf(out, 112, "sluice:bud:%c:%s:", scope_letter[scope], h);
}

static void counter_name(int scope, const char *id, long long period_end_us, char out[112])
{
    size_t n;

    counter_prefix(scope, id, out);
    n = strlen(out);
    snprintf(out + n, 112 - n, "%lld", period_end_us / 1000000);
}

/* ---- process tables ---------------------------------------------------- */

/* Two tables of named numbers in this process (ctable.h): the local
 * counters (when memcached is not there) and this process's leases on
 * memcached counters. */
static struct sl_ctable L = SL_CTABLE_INIT;        /* local counters */
static struct sl_ctable LEASES = SL_CTABLE_INIT;   /* leases */

/* A local counter: adds delta (created at base), stopping at 0 like
 * memcached. 0 with *value, or -1 on OOM. */
static int local_add(const char *name, long long base, long long delta, long long *value)
{
    return sl_ctable_add(&L, name, base, delta, COUNTER_TTL_S, value);
}

/* Adds delta to this process's lease on a counter. 0, or -1 on OOM. */
static int lease_add(const char *name, long long delta)
{
    struct sl_cslot *l;

    pthread_mutex_lock(&LEASES.lock);
    if ((l = sl_ctable_get(&LEASES, name, 0, COUNTER_TTL_S)) != NULL)
        l->v += delta;
    pthread_mutex_unlock(&LEASES.lock);
    return l != NULL ? 0 : -1;
}

/* Takes est from the lease on name if it holds that much: 1. Else empties
 * the lease into *had (to be given back with the next one) and returns 0. */
static int lease_take(const char *name, long long est, long long *had)
{
    struct sl_cslot *l;
    int got = 0;

    *had = 0;
    pthread_mutex_lock(&LEASES.lock);
    if ((l = sl_ctable_get(&LEASES, name, 0, COUNTER_TTL_S)) != NULL) {
        if (est > 0 && l->v >= est) {
            l->v -= est;
            got = 1;
        } else {
            *had = l->v;
            l->v = 0;
        }
    }
    pthread_mutex_unlock(&LEASES.lock);
    return got;
}

/* ---- counters ------------------------------------------------------------- */

static void warn_memcached(const struct sl_request *req)
{
    static long long last_us;
    long long now = sl_now_us(), last = __atomic_load_n(&last_us, __ATOMIC_RELAXED);

    if (now - last > 10000000LL &&
        __atomic_compare_exchange_n(&last_us, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        sl_log(SL_LOG_WARN, req, "memcached does not answer: budgets are counted in this "
               "process only until it does");
}

/* Adds delta to the memcached counter, creating it at base when absent.
 * 0 with *value, or -1. */
static int mc_counter_add(const struct sl_config *cfg, const char *name, long long base,
                          long long delta, long long *value)
{
    char text[32];
    uint64_t v;
    int r = sl_mc_add_to(cfg, name, delta, &v);

    if (r == 1) {
        snprintf(text, sizeof(text), "%lld", base > 0 ? base : 0);
        (void)sl_mc_add(cfg, name, text, strlen(text), COUNTER_TTL_S);
        r = sl_mc_add_to(cfg, name, delta, &v);
    }
    *value = (long long)v;
    return r == 0 ? 0 : -1;
}

enum { ADMITTED, REFUSED, NO_COUNTER };

/* Reserves est (1e-10 USD) of the budget max whose database figure is
 * base, in counter h->counter. With memcached, a process does not go to
 * memcached for every call: it takes a lease (est, up to 16 x est while
 * much of the budget is left: at most a sixteenth of what is left) and
 * serves the next calls from it; settling puts the difference back into
 * the lease, and the spend writer returns what is left of every lease
 * each flush interval (sl_budget_return_leases). A lease is budget
 * reserved in the shared counter, so every call admitted is still covered,
 * and when the budget runs out the leases are one call's estimate. On
 * REFUSED, *before is what was spent and reserved before this call. */
static int reserve(const struct sl_request *req, struct sl_budget_hold *h, long long base,
                   long long max, long long est, long long *before)
{
    const struct sl_config *cfg = req->cfg;
    long long lease, had, v, left = max - base;

    *before = base;
    if (base >= max)
        return REFUSED;              /* the database says so already */
    h->units = est;
    if (sl_mc_configured(cfg)) {
        h->kind = SL_HOLD_LEASE;
        if (lease_take(h->counter, est, &had))
            return ADMITTED;
        lease = left / 16 < 16 * est ? left / 16 : 16 * est;
        if (lease < est)
            lease = est;
        /* The old lease's remainder goes back in the same round trip, so
         * this process never stands in its own way. */
        if (mc_counter_add(cfg, h->counter, base, lease - had, &v) == 0) {
            *before = v - lease;
            if (*before < base) {    /* the database knows of more: catch up */
                (void)mc_counter_add(cfg, h->counter, base, base - *before, &v);
                *before = base;
            }
            if (*before >= max) {
                (void)mc_counter_add(cfg, h->counter, 0, -lease, &v);
                h->counter[0] = '\0';
                return REFUSED;
            }
            if (lease_add(h->counter, lease - est) == 0)
                return ADMITTED;
            (void)mc_counter_add(cfg, h->counter, 0, -lease, &v);   /* OOM: give it back */
            h->counter[0] = '\0';
            return NO_COUNTER;
        }
        (void)lease_add(h->counter, had);   /* memcached failed: keep it for later */
        warn_memcached(req);
    }
    h->kind = SL_HOLD_LOCAL;
    if (local_add(h->counter, base, est, &v) != 0) {
        h->counter[0] = '\0';
        return NO_COUNTER;           /* OOM: the snapshot decided */
    }
    *before = v - est;
    if (*before < base) {
        (void)local_add(h->counter, base, base - *before, &v);
        *before = base;
    }
    if (*before >= max) {
        (void)local_add(h->counter, 0, -est, &v);
        h->counter[0] = '\0';
        return REFUSED;
    }
    return ADMITTED;
}

void sl_budget_return_leases(void)
{
    struct sl_config *cfg = sl_config_acquire();
    struct { char name[112]; long long v; } *back = NULL;
    size_t n = 0;
    long long v;

    pthread_mutex_lock(&LEASES.lock);
    for (unsigned i = 0; LEASES.slots != NULL && i < SL_CTABLE_SLOTS; i++)
        n += LEASES.slots[i].name[0] != '\0' && LEASES.slots[i].v != 0;
    if (n > 0 && (back = malloc(n * sizeof(*back))) != NULL) {
        n = 0;
        for (unsigned i = 0; i < SL_CTABLE_SLOTS; i++) {
            struct sl_cslot *l = &LEASES.slots[i];

            if (l->name[0] == '\0' || l->v == 0)
                continue;
            memcpy(back[n].name, l->name, sizeof(back[n].name));
            back[n++].v = l->v;
            l->v = 0;
        }
    }
    pthread_mutex_unlock(&LEASES.lock);
    for (size_t i = 0; back != NULL && i < n; i++)
        if (!sl_mc_configured(cfg) || mc_counter_add(cfg, back[i].name, 0, -back[i].v, &v) != 0)
            break;               /* memcached is gone: its counters with it */
    free(back);
    sl_config_unref(cfg);
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
    u.prompt_tokens = (long)(req->body_len / 4 + 1);
    u.completion_tokens = req->endpoint == SL_EP_EMBEDDINGS ? 0 : (long)max_tokens_asked(req->in);
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
    struct sl_budget_hold *h = &req->budget_holds[SL_BUDGET_HOLD_MODEL];
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
        counter_name(SL_BUDGET_HOLD_MODEL, id, sl_budget_aligned_end(dur, wall_us()), h->counter);
        if (reserve(req, h, 0, sl_spend_units(max), est, &before) == REFUSED) {
            sl_budget_settle(req);
            req->err_msg = sl_arena_printf(req->arena,
                "LiteLLM Virtual Key: %s, key_alias: %.200s, exceeded budget for model=%.200s",
                k->token, k->key_alias ? k->key_alias : "None", req->model);
            req->err_type = "budget_exceeded";
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
        struct sl_budget_hold *h = &req->budget_holds[scope];
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
        counter_name(scope, id, period, h->counter);
        if (reserve(req, h, base, sl_spend_units(b->max_budget), est, &before) == REFUSED) {
            sl_budget_settle(req);         /* gives back what this request reserved */
            return exceeded(req, scope, id, before, b->max_budget);
        }
    }
    return admit_model(req, k, est);
}

void sl_budget_settle(struct sl_request *req)
{
    long long actual = req->cost_known ? sl_spend_units(req->cost) : 0, v;

    for (int i = 0; i < SL_BUDGET_HOLDS; i++) {
        struct sl_budget_hold *h = &req->budget_holds[i];

        if (h->counter[0] == '\0')
            continue;
        if (h->kind == SL_HOLD_LEASE)
            (void)lease_add(h->counter, h->units - actual);
        else if (actual != h->units)
            (void)local_add(h->counter, 0, actual - h->units, &v);
        h->counter[0] = '\0';
        h->units = 0;
    }
}

void sl_budget_forget(const struct sl_config *cfg, int scope, const char *id,
                      long long reset_at_us, const char *duration)
{
    char prefix[112], name[112];
    int fresh;

    if (id == NULL || scope < 0 || scope >= SL_BUDGET_SCOPES)
        return;
    counter_prefix(scope, id, prefix);
    sl_ctable_forget(&L, prefix);
    sl_ctable_forget(&LEASES, prefix);
    if (sl_mc_configured(cfg)) {
        counter_name(scope, id, sl_budget_period_end(reset_at_us, duration, wall_us(), &fresh), name);
        sl_mc_delete(cfg, name);
    }
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

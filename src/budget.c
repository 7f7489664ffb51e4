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

static const char scope_letter[SL_BUDGET_SCOPES] = { 'k', 't', 'u' };

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

/* ---- the process table ---------------------------------------------------- */

#define LOCAL_SLOTS 4096u
#define LOCAL_PROBE 64u

struct lctr {
    char name[112];              /* "" when free */
    uint64_t v;
    long long expires_us;        /* monotonic */
};

static struct {
    pthread_mutex_t lock;
    struct lctr *slots;
} L = { .lock = PTHREAD_MUTEX_INITIALIZER, .slots = NULL };

static unsigned slot_of(const char *name)
{
    unsigned h = 2166136261u;

    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h % LOCAL_SLOTS;
}

/* Adds delta to the counter (created at base when absent or expired);
 * stops at 0 like memcached. 0, or -1 on OOM. */
static int local_add(const char *name, long long base, long long delta, uint64_t *value)
{
    long long now = sl_now_us();
    unsigned s = slot_of(name);
    struct lctr *c = NULL, *spare = NULL;

    pthread_mutex_lock(&L.lock);
    if (L.slots == NULL && (L.slots = calloc(LOCAL_SLOTS, sizeof(*L.slots))) == NULL) {
        pthread_mutex_unlock(&L.lock);
        return -1;
    }
    for (unsigned i = 0; i < LOCAL_PROBE && c == NULL; i++) {
        struct lctr *e = &L.slots[(s + i) % LOCAL_SLOTS];

        if (e->name[0] != '\0' && e->expires_us > now && strcmp(e->name, name) == 0)
            c = e;
        else if (spare == NULL || (spare->name[0] != '\0' && spare->expires_us > now &&
                                   (e->name[0] == '\0' || e->expires_us < spare->expires_us)))
            spare = e;       /* a free or expired slot, else the one expiring first */
    }
    if (c == NULL) {
        c = spare;
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->v = base > 0 ? (uint64_t)base : 0;
        c->expires_us = now + COUNTER_TTL_S * 1000000LL;
    }
    if (delta >= 0)
        c->v += (uint64_t)delta;
    else
        c->v = c->v > (uint64_t)-delta ? c->v - (uint64_t)-delta : 0;
    *value = c->v;
    pthread_mutex_unlock(&L.lock);
    return 0;
}

static void local_forget(const char *prefix)
{
    size_t n = strlen(prefix);

    pthread_mutex_lock(&L.lock);
    for (unsigned i = 0; L.slots != NULL && i < LOCAL_SLOTS; i++)
        if (strncmp(L.slots[i].name, prefix, n) == 0)
            L.slots[i].name[0] = '\0';
    pthread_mutex_unlock(&L.lock);
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

/* Adds delta to a counter, creating it at base when absent. 0 with *value,
 * or -1. */
static int counter_add(const struct sl_request *req, struct sl_budget_hold *h, long long base,
                       long long delta, uint64_t *value)
{
    const struct sl_config *cfg = req->cfg;
    char text[32];
    int r;

    if (!h->local && sl_mc_configured(cfg)) {
        r = sl_mc_add_to(cfg, h->counter, delta, value);
        if (r == 1) {
            snprintf(text, sizeof(text), "%lld", base > 0 ? base : 0);
            (void)sl_mc_add(cfg, h->counter, text, strlen(text), COUNTER_TTL_S);
            r = sl_mc_add_to(cfg, h->counter, delta, value);
        }
        if (r == 0)
            return 0;
        warn_memcached(req);
    }
    h->local = 1;
    return local_add(h->counter, base, delta, value);
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

int sl_budget_admit(struct sl_request *req)
{
    const struct sl_key *k = req->principal.key;
    long long now, est = -1;

    if (req->principal.role != SL_ROLE_KEY || k == NULL)
        return SL_OK;
    now = wall_us();
    for (int scope = 0; scope < SL_BUDGET_SCOPES; scope++) {
        const struct sl_budget *b = &k->budget[scope];
        struct sl_budget_hold *h = &req->budget_holds[scope];
        const char *id = scope_id(k, scope);
        long long period, base, before;
        uint64_t v;
        int fresh;

        if (b->max_budget < 0 || id == NULL || id[0] == '\0')
            continue;
        period = sl_budget_period_end(b->reset_at_us, b->duration, now, &fresh);
        base = fresh ? 0 : sl_spend_units(b->spend);
        if (est < 0)
            est = estimate_units(req);
        counter_name(scope, id, period, h->counter);
        h->local = 0;
        if (counter_add(req, h, base, est, &v) != 0) {
            h->counter[0] = '\0';          /* no counter at all (OOM): the snapshot decides */
            before = base;
        } else {
            h->units = est;
            before = (long long)v - est;
            if (before < base) {           /* the database knows of more: catch up */
                (void)counter_add(req, h, base, base - before, &v);
                before = base;
            }
        }
        if (before >= sl_spend_units(b->max_budget)) {
            sl_budget_settle(req);         /* gives back what this request reserved */
            return exceeded(req, scope, id, before, b->max_budget);
        }
    }
    return SL_OK;
}

void sl_budget_settle(struct sl_request *req)
{
    long long actual = req->cost_known ? sl_spend_units(req->cost) : 0;
    uint64_t v;

    for (int scope = 0; scope < SL_BUDGET_SCOPES; scope++) {
        struct sl_budget_hold *h = &req->budget_holds[scope];

        if (h->counter[0] == '\0')
            continue;
        if (actual != h->units)
            (void)counter_add(req, h, 0, actual - h->units, &v);
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
    local_forget(prefix);
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

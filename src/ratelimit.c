/* Rate limits of keys, teams and users (see ratelimit.h).
 *
 * Counters are named sluice:lim:<r|t|p><k|t|u>:<id>:<window or lease
 * period>, where id is the key's token (already a SHA-256 digest) or the
 * SHA-256 of the team or user id, so names stay short and never carry a
 * key. memcached when configured, else (or while it fails) the process's
 * table (ctable.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "auth.h"
#include "config.h"
#include "ctable.h"
#include "keys.h"
#include "log.h"
#include "mcache.h"
#include "ratelimit.h"
#include "request.h"
#include "respond.h"
#include "status.h"

#define WINDOW_S 60
#define WINDOW_TTL_S 120        /* a window's counters outlive it a little */
#define LEASE_S 300             /* parallel counters: one per lease period */
#define LEASE_TTL_S (2 * LEASE_S + 60)

enum { RPM, TPM, PAR, KINDS };

static const char scope_letter[SL_LIMIT_SCOPES] = { 'k', 't', 'u' };
static const char *const descriptor[SL_LIMIT_SCOPES] = { "api_key", "team", "user" };
static const char *const kind_name[KINDS] = { "requests", "tokens", "max_parallel_requests" };

static struct sl_ctable T = SL_CTABLE_INIT;

/* One scope that applies to a request: who, and its three limits (< 0:
 * none). */
struct scope {
    const char *shown;           /* the id in messages: the token, team or user id */
    char id[65];                 /* the id in counter names */
    long long limit[KINDS];
};

/* The smallest remaining of each kind over the scopes, for OpenAI's plain
 * x-ratelimit-{limit,remaining}-* headers. */
struct tightest {
    long long limit[KINDS], left[KINDS];
};

long long sl_ratelimit_window(long long now_s, long *left_s)
{
    long long w = now_s / WINDOW_S;

    if (left_s != NULL)
        *left_s = (long)((w + 1) * WINDOW_S - now_s);
    return w;
}

static long long wall_s(void)
{
    return (long long)time(NULL);
}

static void warn_memcached(const struct sl_request *req)
{
    static long long last_us;
    long long now = sl_now_us(), last = __atomic_load_n(&last_us, __ATOMIC_RELAXED);

    if (now - last > 60000000LL &&
        __atomic_compare_exchange_n(&last_us, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        sl_log(SL_LOG_WARN, req, "memcached does not answer: rate limits are counted in this "
               "process only until it does");
}

/* Adds delta to counter name (created at 0, living ttl_s): memcached, else
 * the process table (*local set). 0 with *value, or -1. */
static int counter_add(const struct sl_request *req, const char *name, long long delta,
                       long ttl_s, long long *value, int *local)
{
    const struct sl_config *cfg = req->cfg;
    uint64_t v = 0;
    int r;

    *local = 0;
    if (sl_mc_configured(cfg)) {
        r = sl_mc_add_to(cfg, name, delta, &v);
        if (r == 1) {
            (void)sl_mc_add(cfg, name, "0", 1, ttl_s);
            r = sl_mc_add_to(cfg, name, delta, &v);
        }
        if (r == 0) {
            *value = (long long)v;
            return 0;
        }
        warn_memcached(req);
    }
    *local = 1;
    return sl_ctable_add(&T, name, 0, delta, ttl_s, value);
}

/* The value of counter name (0 when absent). */
static long long counter_get(const struct sl_request *req, const char *name, int local)
{
    long long v = 0;
    char *s;
    size_t n;

    if (!local && sl_mc_configured(req->cfg)) {
        if ((s = sl_mc_get(req->cfg, name, &n)) == NULL)
            return 0;
        v = atoll(s);
        free(s);
        return v;
    }
    (void)sl_ctable_add(&T, name, 0, 0, WINDOW_TTL_S, &v);
    return v;
}

/* A counter's name without its window: "sluice:lim:<kind><scope>:<id>:". */
static void prefix_of(char out[SL_CTABLE_NAME], int kind, int scope, const char *id)
{
    static const char letter[KINDS] = { 'r', 't', 'p' };

    snprintf(out, SL_CTABLE_NAME, "sluice:lim:%c%c:%.64s:", letter[kind], scope_letter[scope], id);
}

static void name_of(char out[SL_CTABLE_NAME], int kind, int scope, const char *id, long long n)
{
    size_t len;

    prefix_of(out, kind, scope, id);
    len = strlen(out);
    snprintf(out + len, SL_CTABLE_NAME - len, "%lld", n);
}

/* "x-ratelimit-" + a + "-" + b, or without a when it is NULL. */
static void header_num(struct sl_request *req, const char *a, const char *b, long long v)
{
    char name[96], text[32];

    snprintf(name, sizeof(name), "x-ratelimit-%s%s%s", a ? a : "", a ? "-" : "", b);
    snprintf(text, sizeof(text), "%lld", v < 0 ? 0 : v);
    (void)sl_respond_header(req, name, text);
}

/* LiteLLM's headers of one scope's limit, and the tightest so far. */
static void note(struct sl_request *req, struct tightest *t, int scope, int kind,
                 long long limit, long long left)
{
    char what[48];

    snprintf(what, sizeof(what), "limit-%s", kind_name[kind]);
    header_num(req, descriptor[scope], what, limit);
    snprintf(what, sizeof(what), "remaining-%s", kind_name[kind]);
    header_num(req, descriptor[scope], what, left);
    if (t->limit[kind] < 0 || left < t->left[kind]) {
        t->limit[kind] = limit;
        t->left[kind] = left;
    }
}

/* OpenAI's plain headers for requests and tokens, from the tightest limit. */
static void plain_headers(struct sl_request *req, const struct tightest *t)
{
    char what[48];

    for (int kind = RPM; kind <= TPM; kind++) {
        if (t->limit[kind] < 0)
            continue;
        snprintf(what, sizeof(what), "limit-%s", kind_name[kind]);
        header_num(req, NULL, what, t->limit[kind]);
        snprintf(what, sizeof(what), "remaining-%s", kind_name[kind]);
        header_num(req, NULL, what, t->left[kind]);
    }
}

/* LiteLLM's 429 for scope's limit of kind. */
static int refuse(struct sl_request *req, struct tightest *t, const struct scope *s, int scope,
                  int kind, long retry_s)
{
    time_t reset = (time_t)(wall_s() + retry_s);
    struct tm tm;
    char at[32] = "", text[24];

    note(req, t, scope, kind, s->limit[kind], 0);
    plain_headers(req, t);
    if (gmtime_r(&reset, &tm) != NULL)
        strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S", &tm);
    req->err_msg = sl_arena_printf(req->arena,
        "Rate limit exceeded for %s: %.200s. Limit type: %s. Current limit: %lld, "
        "Remaining: 0. Limit resets at: %s UTC", descriptor[scope], s->shown, kind_name[kind],
        s->limit[kind], at);
    snprintf(text, sizeof(text), "%ld", retry_s);
    (void)sl_respond_header(req, "retry-after", text);
    (void)sl_respond_header(req, "rate_limit_type", kind_name[kind]);
    return SL_ERR_RATE_LIMITED;
}

/* Fills s[scope] for the scopes that apply to req: 1 if any has a limit. */
static int scopes_of(const struct sl_request *req, struct scope s[SL_LIMIT_SCOPES])
{
    const struct sl_key *k = req->principal.key, *u = req->principal.user;
    const struct sl_rate_limits *team = k != NULL ? &k->team_limits : NULL;
    const struct sl_rate_limits *user = u != NULL ? &u->user_limits
                                                  : k != NULL ? &k->user_limits : NULL;
    const char *user_id = u != NULL ? u->user_id : k != NULL ? k->user_id : NULL;
    int any = 0;

    memset(s, 0, SL_LIMIT_SCOPES * sizeof(*s));
    for (int i = 0; i < SL_LIMIT_SCOPES; i++)
        for (int kind = 0; kind < KINDS; kind++)
            s[i].limit[kind] = -1;
    if (k == NULL)                       /* the master key */
        return 0;
    if (k->token[0] != '\0') {           /* a key (not a remote user alone) */
        s[0].shown = k->token;
        snprintf(s[0].id, sizeof(s[0].id), "%s", k->token);
        s[0].limit[RPM] = k->rpm_limit;
        s[0].limit[TPM] = k->tpm_limit;
        s[0].limit[PAR] = k->max_parallel_requests;
    }
    if (k->team_id != NULL && k->team_id[0] != '\0') {
        s[1].shown = k->team_id;
        sl_auth_hash_key(k->team_id, s[1].id);
        s[1].limit[RPM] = team->rpm_limit;
        s[1].limit[TPM] = team->tpm_limit;
        s[1].limit[PAR] = team->max_parallel_requests;
    }
    if (user_id != NULL && user_id[0] != '\0') {
        s[2].shown = user_id;
        sl_auth_hash_key(user_id, s[2].id);
        s[2].limit[RPM] = user->rpm_limit;
        s[2].limit[TPM] = user->tpm_limit;
        s[2].limit[PAR] = user->max_parallel_requests;
    }
    for (int i = 0; i < SL_LIMIT_SCOPES; i++)
        for (int kind = 0; kind < KINDS; kind++)
            any |= s[i].limit[kind] >= 0;
    return any;
}

static int admit_tokens(struct sl_request *req, struct tightest *t, const struct scope *s,
                        int scope, long long w, long left_s)
{
    char name[SL_CTABLE_NAME];
    long long v;

    name_of(name, TPM, scope, s->id, w);
    v = counter_get(req, name, !sl_mc_configured(req->cfg));
    if (v >= s->limit[TPM])
        return refuse(req, t, s, scope, TPM, left_s);
    note(req, t, scope, TPM, s->limit[TPM], s->limit[TPM] - v);
    prefix_of(req->limits.tokens[scope], TPM, scope, s->id);
    return SL_OK;
}

static int admit_parallel(struct sl_request *req, struct tightest *t, const struct scope *s,
                          int scope)
{
    long long period = wall_s() / LEASE_S, v, before;
    char prev[SL_CTABLE_NAME];
    struct sl_limit_hold *h = &req->limits;

    name_of(h->parallel[scope], PAR, scope, s->id, period);
    if (counter_add(req, h->parallel[scope], 1, LEASE_TTL_S, &v, &h->parallel_local[scope]) != 0) {
        h->parallel[scope][0] = '\0';
        return SL_OK;                /* OOM: let it through */
    }
    name_of(prev, PAR, scope, s->id, period - 1);
    before = counter_get(req, prev, h->parallel_local[scope]);
    if (v + before > s->limit[PAR])
        return refuse(req, t, s, scope, PAR, 1);
    note(req, t, scope, PAR, s->limit[PAR], s->limit[PAR] - v - before);
    return SL_OK;
}

/* The request counters: all or none. */
static int admit_requests(struct sl_request *req, struct tightest *t, const struct scope *s,
                          long long w, long left_s)
{
    char name[SL_LIMIT_SCOPES][SL_CTABLE_NAME];
    int local[SL_LIMIT_SCOPES], taken[SL_LIMIT_SCOPES] = { 0 }, rc = SL_OK;
    long long v;

    for (int i = 0; i < SL_LIMIT_SCOPES && rc == SL_OK; i++) {
        if (s[i].limit[RPM] < 0)
            continue;
        name_of(name[i], RPM, i, s[i].id, w);
        if (counter_add(req, name[i], 1, WINDOW_TTL_S, &v, &local[i]) != 0)
            continue;                /* OOM: not counted */
        taken[i] = 1;
        if (v > s[i].limit[RPM])
            rc = refuse(req, t, &s[i], i, RPM, left_s);
        else
            note(req, t, i, RPM, s[i].limit[RPM], s[i].limit[RPM] - v);
    }
    for (int i = 0; i < SL_LIMIT_SCOPES && rc != SL_OK; i++)
        if (taken[i])
            (void)counter_add(req, name[i], -1, WINDOW_TTL_S, &v, &local[i]);
    return rc;
}

int sl_ratelimit_admit(struct sl_request *req)
{
    struct scope s[SL_LIMIT_SCOPES];
    struct tightest t;
    long left_s;
    long long w;
    int rc = SL_OK;

    if (!scopes_of(req, s))
        return SL_OK;
    for (int kind = 0; kind < KINDS; kind++)
        t.limit[kind] = t.left[kind] = -1;
    w = sl_ratelimit_window(wall_s(), &left_s);
    for (int i = 0; i < SL_LIMIT_SCOPES && rc == SL_OK; i++)
        if (s[i].limit[TPM] >= 0)
            rc = admit_tokens(req, &t, &s[i], i, w, left_s);
    for (int i = 0; i < SL_LIMIT_SCOPES && rc == SL_OK; i++)
        if (s[i].limit[PAR] >= 0)
            rc = admit_parallel(req, &t, &s[i], i);
    if (rc == SL_OK)
        rc = admit_requests(req, &t, s, w, left_s);
    if (rc != SL_OK) {
        sl_ratelimit_release(req);   /* gives the slots back, counts no tokens */
        return rc;
    }
    plain_headers(req, &t);
    return SL_OK;
}

void sl_ratelimit_release(struct sl_request *req)
{
    struct sl_limit_hold *h = &req->limits;
    const struct sl_usage *u = &req->usage;
    long long v, tokens = u->total_tokens ? u->total_tokens : u->prompt_tokens + u->completion_tokens;
    long long w = sl_ratelimit_window(wall_s(), NULL);
    char name[SL_CTABLE_NAME + 24];     /* a prefix and a window */
    uint64_t mv;
    int local;

    for (int i = 0; i < SL_LIMIT_SCOPES; i++) {
        if (h->parallel[i][0] != '\0') {
            if (h->parallel_local[i])
                (void)sl_ctable_add(&T, h->parallel[i], 0, -1, LEASE_TTL_S, &v);
            else if (sl_mc_add_to(req->cfg, h->parallel[i], -1, &mv) < 0)
                warn_memcached(req);
            h->parallel[i][0] = '\0';
        }
        if (h->tokens[i][0] != '\0' && req->llm_called && tokens > 0) {
            snprintf(name, sizeof(name), "%s%lld", h->tokens[i], w);   /* the window it ends in */
            (void)counter_add(req, name, tokens, WINDOW_TTL_S, &v, &local);
        }
        h->tokens[i][0] = '\0';
    }
}

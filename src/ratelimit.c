/* Rate limits (see ratelimit.h).
 *
 * Counters are named sluice:lim:<r|t|p><scope>:<id>:<window or gauge
 * period>, scope one of k t u e m g (key, team, user, end user, key and
 * model, global), id the key's token (already a SHA-256 digest) or the
 * SHA-256 of the team, user, end user or token and model, so names stay
 * short and never carry a key or a user's name. */
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
#include "keys.h"
#include "ratelimit.h"
#include "request.h"
#include "respond.h"
#include "status.h"

#define WINDOW_S 60
#define WINDOW_TTL_S 120        /* a window's counters outlive it a little */

enum { RPM, TPM, PAR, KINDS };
enum { S_KEY, S_TEAM, S_USER, S_END_USER, S_MODEL, S_GLOBAL };

static const char scope_letter[SL_LIMIT_SCOPES] = { 'k', 't', 'u', 'e', 'm', 'g' };
static const char *const descriptor[SL_LIMIT_SCOPES] = {
    "api_key", "team", "user", "end_user", "model_per_key", "global"
};
static const char *const kind_name[KINDS] = { "requests", "tokens", "max_parallel_requests" };

/* One scope that applies to a request: who, and its three limits (< 0:
 * none). */
struct scope {
    const char *shown;           /* who, in messages: the token, team, user, ... */
    char id[65];                 /* who, in counter names */
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

/* Appends s at p; the end. */
static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);

    memcpy(p, s, n);
    return p + n;
}

/* Appends the decimal digits of v (< 0: 0) at p; the end. (Headers and
 * names are made for every call: no printf.) */
static char *put_num(char *p, long long v)
{
    char tmp[24];
    int n = 0;

    if (v < 0)
        v = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

/* A counter's name: "sluice:lim:<kind><scope>:<id>:" and the window
 * (< 0: none, for a gauge's prefix). id is at most 64 characters. */
static void name_of(char out[SL_CTABLE_NAME], int kind, int scope, const char *id, long long w)
{
    static const char letter[KINDS] = { 'r', 't', 'p' };
    char *p = put_str(out, "sluice:lim:");

    *p++ = letter[kind];
    *p++ = scope_letter[scope];
    *p++ = ':';
    p = put_str(p, id);
    *p++ = ':';
    if (w >= 0)
        p = put_num(p, w);
    *p = '\0';
}

/* "x-ratelimit-" [who "-"] what kind ": " v */
static void header_num(struct sl_request *req, const char *who, const char *what, int kind,
                       long long v)
{
    char *line = sl_arena_alloc(req->arena, 96), *p;

    if (line == NULL)
        return;
    p = put_str(line, "x-ratelimit-");
    if (who != NULL) {
        p = put_str(p, who);
        *p++ = '-';
    }
    p = put_str(p, what);
    p = put_str(p, kind_name[kind]);
    p = put_str(p, ": ");
    p = put_num(p, v);
    *p = '\0';
    sl_respond_header_line(req, line);
}

/* LiteLLM's headers of one scope's limit, and the tightest so far. */
static void note(struct sl_request *req, struct tightest *t, int scope, int kind,
                 long long limit, long long left)
{
    if (left < 0)
        left = 0;
    header_num(req, descriptor[scope], "limit-", kind, limit);
    header_num(req, descriptor[scope], "remaining-", kind, left);
    if (t->limit[kind] < 0 || left < t->left[kind]) {
        t->limit[kind] = limit;
        t->left[kind] = left;
    }
}

/* OpenAI's plain headers for requests and tokens, from the tightest limit. */
static void plain_headers(struct sl_request *req, const struct tightest *t)
{
    for (int kind = RPM; kind <= TPM; kind++) {
        if (t->limit[kind] < 0)
            continue;
        header_num(req, NULL, "limit-", kind, t->limit[kind]);
        header_num(req, NULL, "remaining-", kind, t->left[kind]);
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
    req->rejected = kind == RPM ? "rpm" : kind == TPM ? "tpm" : "max_parallel_requests";
    req->rejected_scope = descriptor[scope];
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

/* ---- who is limited --------------------------------------------------------- */

static void set_limits(struct scope *s, long long rpm, long long tpm, long long par)
{
    s->limit[RPM] = rpm;
    s->limit[TPM] = tpm;
    s->limit[PAR] = par;
}

/* A config limit: 0 is none. */
static long long cfg_limit(int v)
{
    return v > 0 ? v : -1;
}

/* The key's limit for model in its metadata's per-model map (JSON text;
 * LiteLLM stores numbers, a numeric string is read too); -1: none. */
static long long model_limit(const char *map, const char *model)
{
    json_t *all, *v;
    long long n = -1;

    if (map == NULL || model == NULL || (all = json_loads(map, 0, NULL)) == NULL)
        return -1;
    v = json_object_get(all, model);
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (json_is_real(v))
        n = (long long)json_real_value(v);
    else if (json_is_string(v) && json_string_value(v)[0] != '\0')
        n = strtoll(json_string_value(v), NULL, 10);
    json_decref(all);
    return n >= 0 ? n : -1;
}

static void key_scopes(const struct sl_request *req, struct scope s[SL_LIMIT_SCOPES])
{
    const struct sl_key *k = req->principal.key, *u = req->principal.user;
    const struct sl_rate_limits *user = u != NULL ? &u->user_limits : &k->user_limits;
    const char *user_id = u != NULL ? u->user_id : k->user_id;

    if (k->token[0] != '\0') {           /* a key (not a remote user alone) */
        s[S_KEY].shown = k->token;
        snprintf(s[S_KEY].id, sizeof(s[S_KEY].id), "%s", k->token);
        set_limits(&s[S_KEY], k->rpm_limit, k->tpm_limit, k->max_parallel_requests);
        if ((k->model_rpm_limit != NULL || k->model_tpm_limit != NULL) && req->model != NULL) {
            char *both = sl_arena_printf(req->arena, "%s:%s", k->token, req->model);

            if (both != NULL) {
                s[S_MODEL].shown = both;
                sl_auth_hash_key(both, s[S_MODEL].id);
                set_limits(&s[S_MODEL], model_limit(k->model_rpm_limit, req->model),
                           model_limit(k->model_tpm_limit, req->model), -1);
            }
        }
    }
    if (k->team_id != NULL && k->team_id[0] != '\0') {
        s[S_TEAM].shown = k->team_id;
        sl_auth_hash_key(k->team_id, s[S_TEAM].id);
        set_limits(&s[S_TEAM], k->team_limits.rpm_limit, k->team_limits.tpm_limit,
                   k->team_limits.max_parallel_requests);
    }
    if (user_id != NULL && user_id[0] != '\0') {
        s[S_USER].shown = user_id;
        sl_auth_hash_key(user_id, s[S_USER].id);
        set_limits(&s[S_USER], user->rpm_limit, user->tpm_limit, user->max_parallel_requests);
    }
}

/* Fills s[] for the scopes that apply to req: 1 if any has a limit. */
static int scopes_of(const struct sl_request *req, struct scope s[SL_LIMIT_SCOPES])
{
    const struct sl_config *cfg = req->cfg;
    const char *end_user;
    int any = 0;

    for (int i = 0; i < SL_LIMIT_SCOPES; i++) {
        s[i].shown = NULL;
        s[i].id[0] = '\0';
        set_limits(&s[i], -1, -1, -1);
    }
    if (req->principal.key != NULL)      /* not the master key */
        key_scopes(req, s);
    if (cfg->end_user_rpm_limit > 0 || cfg->end_user_tpm_limit > 0 ||
        cfg->end_user_max_parallel_requests > 0) {
        end_user = req->in != NULL ? json_string_value(json_object_get(req->in, "user")) : NULL;
        if (end_user != NULL && end_user[0] != '\0') {
            s[S_END_USER].shown = end_user;
            sl_auth_hash_key(end_user, s[S_END_USER].id);
            set_limits(&s[S_END_USER], cfg_limit(cfg->end_user_rpm_limit),
                       cfg_limit(cfg->end_user_tpm_limit),
                       cfg_limit(cfg->end_user_max_parallel_requests));
        }
    }
    if (cfg->global_max_parallel_requests > 0) {
        s[S_GLOBAL].shown = "all calls";
        snprintf(s[S_GLOBAL].id, sizeof(s[S_GLOBAL].id), "all");
        set_limits(&s[S_GLOBAL], -1, -1, cfg->global_max_parallel_requests);
    }
    for (int i = 0; i < SL_LIMIT_SCOPES; i++)
        for (int kind = 0; kind < KINDS; kind++)
            any |= s[i].limit[kind] >= 0;
    return any;
}

/* ---- admission --------------------------------------------------------------- */

/* Reserves est of kind (RPM or TPM) in the window w of scope i. */
static int admit_sum(struct sl_request *req, struct tightest *t, const struct scope *s, int i,
                     int kind, long long w, long left_s, long long est)
{
    struct sl_counter_hold *h = kind == RPM ? &req->limits.requests[i] : &req->limits.tokens[i];
    struct sl_counter_ask a = { 0, s->limit[kind], est, WINDOW_TTL_S };
    long long used;

    name_of(h->name, kind, i, s->id, w);
    switch (sl_counter_reserve(req->cfg, h, &a, &used)) {
    case SL_COUNTER_REFUSED:
        return refuse(req, t, s, i, kind, left_s);
    case SL_COUNTER_ADMITTED:
        /* tokens: what is left for the calls after this one's estimate */
        note(req, t, i, kind, s->limit[kind], s->limit[kind] - used);
        break;
    }
    return SL_OK;
}

static int admit_parallel(struct sl_request *req, struct tightest *t, const struct scope *s,
                          int i)
{
    char prefix[SL_CTABLE_NAME];
    long long used;

    name_of(prefix, PAR, i, s->id, -1);
    switch (sl_gauge_take(req->cfg, &req->limits.parallel[i], prefix, s->limit[PAR], &used)) {
    case SL_COUNTER_REFUSED:
        return refuse(req, t, s, i, PAR, 1);
    case SL_COUNTER_ADMITTED:
        note(req, t, i, PAR, s->limit[PAR], s->limit[PAR] - used);
        break;
    }
    return SL_OK;
}

int sl_ratelimit_admit(struct sl_request *req)
{
    struct scope s[SL_LIMIT_SCOPES];
    struct tightest t;
    long prompt, completion, left_s;
    long long w;
    int rc = SL_OK;

    if (!scopes_of(req, s))
        return SL_OK;
    for (int kind = 0; kind < KINDS; kind++)
        t.limit[kind] = t.left[kind] = -1;
    w = sl_ratelimit_window(wall_s(), &left_s);
    sl_budget_tokens_estimate(req, &prompt, &completion);
    for (int i = 0; i < SL_LIMIT_SCOPES && rc == SL_OK; i++)
        if (s[i].limit[TPM] >= 0)
            rc = admit_sum(req, &t, &s[i], i, TPM, w, left_s, prompt + completion);
    for (int i = 0; i < SL_LIMIT_SCOPES && rc == SL_OK; i++)
        if (s[i].limit[PAR] >= 0)
            rc = admit_parallel(req, &t, &s[i], i);
    for (int i = 0; i < SL_LIMIT_SCOPES && rc == SL_OK; i++)
        if (s[i].limit[RPM] >= 0)
            rc = admit_sum(req, &t, &s[i], i, RPM, w, left_s, 1);
    if (rc != SL_OK) {
        /* what this call took goes back: it is not a call */
        for (int i = 0; i < SL_LIMIT_SCOPES; i++) {
            sl_counter_settle(&req->limits.requests[i], 0);
            sl_counter_settle(&req->limits.tokens[i], 0);
            sl_gauge_give(req->cfg, &req->limits.parallel[i]);
        }
        return rc;
    }
    plain_headers(req, &t);
    return SL_OK;
}

void sl_ratelimit_release(struct sl_request *req)
{
    struct sl_limit_hold *h = &req->limits;
    const struct sl_usage *u = &req->usage;
    long long tokens = u->total_tokens ? u->total_tokens : u->prompt_tokens + u->completion_tokens;

    if (!req->llm_called || tokens < 0)
        tokens = 0;
    for (int i = 0; i < SL_LIMIT_SCOPES; i++) {
        sl_gauge_give(req->cfg, &h->parallel[i]);
        sl_counter_settle(&h->tokens[i], tokens);
        h->requests[i].name[0] = '\0';      /* a call admitted stays counted */
    }
}

/* Model groups, load balancing, cooldowns, retries and fallbacks (see
 * router.h and docs/routing.md).
 *
 * Tables (built at config load, read-only afterwards, freed with the
 * config): the groups in a hash table by name, the wildcard groups in a
 * list, model_group_alias, and per group its fallback lists as group
 * pointers. Live state (one struct sl_dep_state per deployment id, in a
 * process-wide table that survives reloads): requests in flight, moving
 * averages of latency and time to first byte, failures this minute, the
 * end of a cooldown, tokens and requests this minute. Cooldowns are shared
 * through memcached (sluice:cd:<sha256 of the id> holds the end, in Unix
 * ms): a process looks at most once a second per deployment. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "arena.h"
#include "auth.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "mcache.h"
#include "metrics.h"
#include "provider.h"
#include "request.h"
#include "respond.h"
#include "router.h"
#include "status.h"

#define MAX_CANDIDATES 256      /* deployments looked at per choice */
#define STATE_SLOTS 4096u
#define MC_LOOK_US 1000000LL    /* how often memcached is asked about a deployment's cooldown
                                 * and, for usage-based routing, its use this minute */
#define USE_FLUSH_US 200000LL   /* how often a process adds its use to memcached's */
#define EWMA_SHIFT 3            /* moving averages: 1/8 of each new sample */
#define BACKOFF_BASE_MS 250
#define BACKOFF_MAX_MS 8000
#define RETRY_AFTER_MAX_MS 60000  /* a longer retry-after is not waited for */

enum { S_SHUFFLE, S_LEAST_BUSY, S_LATENCY, S_USAGE };

/* ---- live state ------------------------------------------------------------ */

struct sl_dep_state {
    char id[128];
    char mc_key[80];             /* sluice:cd:<sha256 of the id, 64 hex> */
    pthread_mutex_t lock;        /* fails, window */
    int in_flight;               /* atomic */
    long long lat_us, ttfb_us;   /* atomic; moving averages, 0: no sample yet */
    long long cooldown_until_us; /* atomic; monotonic */
    long long mc_looked_us;      /* atomic; monotonic */
    long long window_us;         /* start of the minute the failures count in */
    int fails;
    long long minute;            /* atomic; the minute tokens/requests count in */
    long long tokens, requests;  /* atomic; this minute, this process */
    /* usage-based routing with memcached: every process's use this minute
     * (sluice:use:<sha256 of the id>:<t|r>:<minute>), as last read, and
     * this process's use not yet added there */
    long long shared_minute, shared_tokens, shared_requests, shared_looked_us;   /* atomic */
    long long pending_tokens, pending_requests, flushed_us;                      /* atomic */
};

static struct {
    pthread_mutex_t lock;
    struct sl_dep_state *slots;
    size_t n;
} ST = { PTHREAD_MUTEX_INITIALIZER, NULL, 0 };

static struct sl_dep_state overflow = { .id = "", .lock = PTHREAD_MUTEX_INITIALIZER };

static int llm_in_flight;       /* atomic: calls in flight in this process, all deployments */

/* Bulkheads: LLM calls may not take the last reserved_threads of the pool
 * (health, /v1/models and admin keep answering), and one deployment not
 * more than deployment_max_in_flight (by default 3/4 of what LLM calls may
 * take), so a hanging provider cannot hold every thread. */
static int process_cap(const struct sl_config *cfg)
{
    int reserve = cfg->reserved_threads >= 0 ? cfg->reserved_threads
                : cfg->max_threads / 16 < 4 ? cfg->max_threads / 16 : 4;
    int cap = cfg->max_threads - reserve;

    return cap > 0 ? cap : 1;
}

static int deployment_cap(const struct sl_config *cfg, const struct sl_deployment *d)
{
    int cap = cfg->deployment_max_in_flight > 0 ? cfg->deployment_max_in_flight
                                                : (process_cap(cfg) * 3 + 3) / 4;

    return d->max_parallel_requests > 0 && d->max_parallel_requests < cap ? d->max_parallel_requests
                                                                         : cap;
}

static long long mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The state of deployment id, made on first sight (never freed: ids are
 * few, and in-flight counts must survive a reload). */
static struct sl_dep_state *state_of(const char *id)
{
    struct sl_dep_state *s = NULL;

    pthread_mutex_lock(&ST.lock);
    if (ST.slots == NULL)
        ST.slots = calloc(STATE_SLOTS, sizeof(*ST.slots));
    for (size_t i = 0; ST.slots != NULL && i < ST.n && s == NULL; i++)
        if (strcmp(ST.slots[i].id, id) == 0)
            s = &ST.slots[i];
    if (s == NULL && ST.slots != NULL && ST.n < STATE_SLOTS && strlen(id) < sizeof(s->id)) {
        char h[65];

        s = &ST.slots[ST.n++];
        snprintf(s->id, sizeof(s->id), "%s", id);
        sl_auth_hash_key(id, h);
        snprintf(s->mc_key, sizeof(s->mc_key), "sluice:cd:%s", h);
        pthread_mutex_init(&s->lock, NULL);
    }
    pthread_mutex_unlock(&ST.lock);
    return s != NULL ? s : &overflow;   /* shared by whatever does not fit: no harm but
                                         * coarser balancing */
}

static long long load(const long long *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void store(long long *p, long long v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static void ewma(long long *avg, long long sample)
{
    long long a = load(avg);

    store(avg, a == 0 ? sample : a + ((sample - a) >> EWMA_SHIFT));
}

/* ---- tables ----------------------------------------------------------------- */

struct sl_group {
    const char *name;
    const struct sl_deployment **deps;
    size_t n;
    int wildcard;                /* name has a '*': prefix*suffix */
    size_t prefix_len;
    const struct sl_group **fb, **cw, **cp;   /* fallbacks, context window, content policy */
    size_t n_fb, n_cw, n_cp;
};

struct alias {
    const char *name;
    const struct sl_group *to;
    int hidden;
};

struct sl_router {
    struct sl_arena *arena;
    struct sl_group *groups;
    size_t n_groups;
    const struct sl_group **slots;  /* open addressing over exact names */
    size_t n_slots;
    const struct sl_group **wild;   /* longest prefix first */
    size_t n_wild;
    struct alias *aliases;
    size_t n_aliases;
    const struct sl_group **dflt;   /* default_fallbacks */
    size_t n_dflt;
    int strategy;
    int retries[SL_FAIL_CONTENT_POLICY + 1];
};

static unsigned hash_name(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static const struct sl_group *exact(const struct sl_router *r, const char *name)
{
    if (r == NULL || r->n_slots == 0)
        return NULL;
    for (size_t i = hash_name(name) & (r->n_slots - 1);; i = (i + 1) & (r->n_slots - 1)) {
        const struct sl_group *g = r->slots[i];

        if (g == NULL)
            return NULL;
        if (strcmp(g->name, name) == 0)
            return g;
    }
}

/* A wildcard group's name is prefix + '*' + suffix: "openai/" + '*'
 * matches "openai/gpt-4o"; a lone '*' matches anything. */
static int wild_match(const struct sl_group *g, const char *name)
{
    const char *suffix = g->name + g->prefix_len + 1;
    size_t n = strlen(name), sl = strlen(suffix);

    return n >= g->prefix_len + sl && strncmp(name, g->name, g->prefix_len) == 0 &&
           strcmp(name + n - sl, suffix) == 0;
}

static const struct sl_group *find(const struct sl_router *r, const char *name)
{
    const struct sl_group *g;

    if (r == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < r->n_aliases; i++)
        if (strcmp(r->aliases[i].name, name) == 0)
            return r->aliases[i].to;
    if ((g = exact(r, name)) != NULL)
        return g;
    for (size_t i = 0; i < r->n_wild; i++)
        if (wild_match(r->wild[i], name))
            return r->wild[i];
    return NULL;
}

static int say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int say(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return SL_ERR_CONFIG;
}

/* A list of group names (JSON strings) into *out. */
static int group_list(struct sl_router *r, const json_t *list, const char *where, const char *owner,
                      const struct sl_group ***out, size_t *n, char *why, size_t wn)
{
    const struct sl_group **v;
    size_t i;
    json_t *e;

    if (!json_is_array(list))
        return say(why, wn, "%s%s: expected a list of model names", where, owner ? owner : "");
    if ((v = sl_arena_calloc(r->arena, json_array_size(list) + 1, sizeof(*v))) == NULL)
        return SL_ERR_NOMEM;
    json_array_foreach(list, i, e) {
        if (!json_is_string(e))
            return say(why, wn, "%s%s: expected a list of model names", where, owner ? owner : "");
        if ((v[i] = find(r, json_string_value(e))) == NULL) {
            char w[300];

            snprintf(w, sizeof(w), "%s%s", where, owner ? owner : "");
            return say(why, wn, "%s: %s is no model_name of model_list", w, json_string_value(e));
        }
    }
    *out = v;
    *n = json_array_size(list);
    return SL_OK;
}

/* fallbacks: [{"group": ["fallback", ...]}, ...] into each group's list. */
static int fallback_lists(struct sl_router *r, const json_t *lists, int which, const char *where,
                          char *why, size_t wn)
{
    size_t i;
    json_t *m;

    if (lists == NULL)
        return SL_OK;
    if (!json_is_array(lists))
        return say(why, wn, "%s: expected a list of {model_name: [fallbacks]}", where);
    json_array_foreach(lists, i, m) {
        const char *name;
        json_t *list;
        struct sl_group *g;
        int rc;

        if (!json_is_object(m))
            return say(why, wn, "%s: expected a list of {model_name: [fallbacks]}", where);
        json_object_foreach(m, name, list) {
            char owner[300];

            snprintf(owner, sizeof(owner), " of %s", name);
            if ((g = (struct sl_group *)find(r, name)) == NULL)
                return say(why, wn, "%s: %s is no model_name of model_list", where, name);
            rc = group_list(r, list, where, owner, which == 0 ? &g->fb : which == 1 ? &g->cw : &g->cp,
                            which == 0 ? &g->n_fb : which == 1 ? &g->n_cw : &g->n_cp, why, wn);
            if (rc != SL_OK)
                return rc;
        }
    }
    return SL_OK;
}

static int load_aliases(struct sl_router *r, const json_t *map, char *why, size_t wn)
{
    const char *name;
    json_t *v;

    if (map == NULL)
        return SL_OK;
    if (!json_is_object(map))
        return say(why, wn, "model_group_alias: expected a mapping of alias: model_name");
    if ((r->aliases = sl_arena_calloc(r->arena, json_object_size(map) + 1, sizeof(*r->aliases))) == NULL)
        return SL_ERR_NOMEM;
    json_object_foreach((json_t *)map, name, v) {
        struct alias *a = &r->aliases[r->n_aliases];
        const char *to = json_string_value(v);

        if (json_is_object(v)) {
            to = json_string_value(json_object_get(v, "model"));
            a->hidden = json_is_true(json_object_get(v, "hidden"));
        }
        if (to == NULL)
            return say(why, wn, "model_group_alias.%s: expected a model_name or {model, hidden}",
                       name);
        if ((a->to = exact(r, to)) == NULL)
            return say(why, wn, "model_group_alias.%s: %s is no model_name of model_list", name, to);
        if ((a->name = sl_arena_strdup(r->arena, name)) == NULL)
            return SL_ERR_NOMEM;
        r->n_aliases++;
    }
    return SL_OK;
}

static int strategy_of(const char *s, char *why, size_t wn, int *out)
{
    static const struct { const char *name; int v; } names[] = {
        { "simple-shuffle", S_SHUFFLE }, { "least-busy", S_LEAST_BUSY },
        { "latency-based-routing", S_LATENCY }, { "usage-based-routing", S_USAGE },
        { "usage-based-routing-v2", S_USAGE },
    };

    *out = S_SHUFFLE;
    if (s == NULL)
        return SL_OK;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].v;
            return SL_OK;
        }
    return say(why, wn, "routing_strategy: %s is not one of simple-shuffle, least-busy, "
               "latency-based-routing, usage-based-routing", s);
}

/* retry_policy: {"RateLimitErrorRetries": 3, ...}; the rest num_retries.
 * Client errors are never retried, whatever the policy says. */
static int retry_policy(struct sl_router *r, const struct sl_config *cfg, char *why, size_t wn)
{
    static const struct { const char *name; int fail; } names[] = {
        { "RateLimitErrorRetries", SL_FAIL_RATE_LIMIT },
        { "InternalServerErrorRetries", SL_FAIL_SERVER },
        { "TimeoutErrorRetries", SL_FAIL_TIMEOUT },
        { "ContentPolicyViolationErrorRetries", SL_FAIL_CONTENT_POLICY },
        { "BadRequestErrorRetries", 0 }, { "AuthenticationErrorRetries", 0 },
    };
    int n = cfg->router.num_retries >= 0 ? cfg->router.num_retries : cfg->num_retries;
    const json_t *p = cfg->router.retry_policy;
    const char *name;
    json_t *v;

    r->retries[SL_FAIL_RATE_LIMIT] = r->retries[SL_FAIL_SERVER] = n;
    r->retries[SL_FAIL_TIMEOUT] = r->retries[SL_FAIL_CONNECT] = n;
    if (p == NULL)
        return SL_OK;
    if (!json_is_object(p))
        return say(why, wn, "retry_policy: expected a mapping such as {RateLimitErrorRetries: 3}");
    json_object_foreach((json_t *)p, name, v) {
        size_t i;

        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strcmp(name, names[i].name) == 0)
                break;
        if (i == sizeof(names) / sizeof(names[0]) || !json_is_integer(v) ||
            json_integer_value(v) < 0 || json_integer_value(v) > 100)
            return say(why, wn, "retry_policy.%s: expected one of the *Retries names with a "
                       "count from 0 to 100", name);
        if (names[i].fail != 0)
            r->retries[names[i].fail] = (int)json_integer_value(v);
        if (names[i].fail == SL_FAIL_SERVER)
            r->retries[SL_FAIL_CONNECT] = (int)json_integer_value(v);
    }
    return SL_OK;
}

static int cmp_wild(const void *a, const void *b)
{
    const struct sl_group *x = *(const struct sl_group *const *)a, *y = *(const struct sl_group *const *)b;

    return (int)y->prefix_len - (int)x->prefix_len;
}

static int build_groups(struct sl_router *r, struct sl_config *cfg)
{
    size_t n = 0;

    if ((r->groups = sl_arena_calloc(r->arena, cfg->n_deployments + 1, sizeof(*r->groups))) == NULL)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        struct sl_deployment *d = &cfg->deployments[i];
        struct sl_group *g = NULL;

        d->state = state_of(d->id);
        for (size_t j = 0; j < n && g == NULL; j++)
            if (strcmp(r->groups[j].name, d->model_name) == 0)
                g = &r->groups[j];
        if (g == NULL) {
            g = &r->groups[n++];
            g->name = d->model_name;
            for (size_t k = i; k < cfg->n_deployments; k++)
                g->n += strcmp(cfg->deployments[k].model_name, d->model_name) == 0;
            if ((g->deps = sl_arena_calloc(r->arena, g->n, sizeof(*g->deps))) == NULL)
                return SL_ERR_NOMEM;
            g->n = 0;
            if (strchr(g->name, '*') != NULL) {
                g->wildcard = 1;
                g->prefix_len = (size_t)(strchr(g->name, '*') - g->name);
            }
        }
        g->deps[g->n++] = d;
    }
    r->n_groups = n;
    for (r->n_slots = 8; r->n_slots < 2 * n; r->n_slots *= 2)
        ;
    r->slots = sl_arena_calloc(r->arena, r->n_slots, sizeof(*r->slots));
    r->wild = sl_arena_calloc(r->arena, n + 1, sizeof(*r->wild));
    if (r->slots == NULL || r->wild == NULL)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct sl_group *g = &r->groups[i];
        size_t k;

        if (g->wildcard) {
            r->wild[r->n_wild++] = g;
            continue;
        }
        for (k = hash_name(g->name) & (r->n_slots - 1); r->slots[k] != NULL; k = (k + 1) & (r->n_slots - 1))
            ;
        r->slots[k] = g;
    }
    qsort(r->wild, r->n_wild, sizeof(*r->wild), cmp_wild);
    return SL_OK;
}

int sl_router_build(struct sl_config *cfg, char *why, size_t n)
{
    struct sl_router *r = calloc(1, sizeof(*r));
    const struct sl_router_settings *s = &cfg->router;
    int rc;

    if (r == NULL || (r->arena = sl_arena_create(1u << 14)) == NULL) {
        free(r);
        return SL_ERR_NOMEM;
    }
    if ((rc = build_groups(r, cfg)) != SL_OK || (rc = strategy_of(s->routing_strategy, why, n, &r->strategy)) != SL_OK ||
        (rc = retry_policy(r, cfg, why, n)) != SL_OK || (rc = load_aliases(r, s->model_group_alias, why, n)) != SL_OK ||
        (rc = fallback_lists(r, s->fallbacks, 0, "fallbacks", why, n)) != SL_OK ||
        (rc = fallback_lists(r, s->context_window_fallbacks, 1, "context_window_fallbacks", why, n)) != SL_OK ||
        (rc = fallback_lists(r, s->content_policy_fallbacks, 2, "content_policy_fallbacks", why, n)) != SL_OK ||
        (s->default_fallbacks != NULL &&
         (rc = group_list(r, s->default_fallbacks, "default_fallbacks", NULL, &r->dflt, &r->n_dflt,
                          why, n)) != SL_OK)) {
        sl_router_free(r);
        return rc;
    }
    cfg->routes = r;
    return SL_OK;
}

void sl_router_free(struct sl_router *r)
{
    if (r == NULL)
        return;
    sl_arena_free(r->arena);
    free(r);
}

const char *sl_router_group_name(const struct sl_group *g)
{
    return g->name;
}

const char *sl_router_group_of(const struct sl_config *cfg, const char *model)
{
    const struct sl_group *g = find(cfg ? cfg->routes : NULL, model);

    return g != NULL ? g->name : NULL;
}

void sl_router_each_name(const struct sl_config *cfg, void (*fn)(void *ctx, const char *name),
                         void *ctx)
{
    const struct sl_router *r = cfg ? cfg->routes : NULL;

    for (size_t i = 0; r != NULL && i < r->n_groups; i++)
        if (!r->groups[i].wildcard)
            fn(ctx, r->groups[i].name);
    for (size_t i = 0; r != NULL && i < r->n_aliases; i++)
        if (!r->aliases[i].hidden && exact(r, r->aliases[i].name) == NULL)
            fn(ctx, r->aliases[i].name);
}

/* ---- cooldowns -------------------------------------------------------------- */

static int cooling(const struct sl_config *cfg, struct sl_dep_state *s, long long now)
{
    long long until = load(&s->cooldown_until_us), looked = load(&s->mc_looked_us), end;
    char *v;
    size_t len;

    if (cfg->router.disable_cooldowns)
        return 0;
    if (until > now)
        return 1;
    /* Every thread that finds the last look stale asks (a few at once at
     * worst): one that skipped the question could send a call to a
     * deployment another process has just cooled down. */
    if (!sl_mc_configured(cfg) || now - looked < MC_LOOK_US)
        return 0;
    v = sl_mc_get(cfg, s->mc_key, &len);
    store(&s->mc_looked_us, now);
    if (v == NULL)
        return 0;
    end = atoll(v) - wall_ms();
    free(v);
    if (end <= 0)
        return 0;
    store(&s->cooldown_until_us, now + end * 1000);
    return 1;
}

static const char *fail_name(int why)
{
    static const char *const names[] = { "", "429", "a server error", "a time-out",
                                         "a connection failure", "401/403", "404", "", "", "" };

    return why > 0 && why <= SL_FAIL_CONTENT_POLICY ? names[why] : "a failure";
}

/* Counts a failure of d and starts its cooldown when due. As in LiteLLM,
 * the only deployment of its group never cools down: there is nothing
 * else to send the calls to, and its own errors say more than a 429. */
static void failed(const struct sl_request *req, const struct sl_group *g,
                   const struct sl_deployment *d, int why)
{
    const struct sl_config *cfg = req->cfg;
    struct sl_dep_state *s = d->state;
    long long now = mono_us(), ms;
    int start;
    char v[32];

    if (s == NULL || cfg->router.disable_cooldowns || g->n <= 1 || why == SL_FAIL_BAD_REQUEST ||
        why == SL_FAIL_CONTEXT_WINDOW || why == SL_FAIL_CONTENT_POLICY)
        return;
    pthread_mutex_lock(&s->lock);
    if (now - s->window_us > 60000000LL) {
        s->window_us = now;
        s->fails = 0;
    }
    s->fails++;
    start = why == SL_FAIL_RATE_LIMIT || why == SL_FAIL_AUTH || why == SL_FAIL_NOT_FOUND ||
            s->fails > cfg->router.allowed_fails;
    if (start)
        s->fails = 0;
    pthread_mutex_unlock(&s->lock);
    if (!start || cfg->router.cooldown_s <= 0)
        return;
    ms = (long long)(cfg->router.cooldown_s * 1000.0 + 0.5);
    store(&s->cooldown_until_us, now + ms * 1000);
    if (sl_mc_configured(cfg)) {
        snprintf(v, sizeof(v), "%lld", wall_ms() + ms);
        sl_mc_set(cfg, s->mc_key, v, strlen(v), (long)(ms + 999) / 1000 + 1);
    }
    sl_metrics_cooldown(cfg, d, sl_request_last_attempt(req)->status);
    sl_log(SL_LOG_WARN, req, "deployment %s (%s) cools down for %.3g s after %s", d->id,
           d->model_name, cfg->router.cooldown_s, fail_name(why));
}

/* ---- choosing --------------------------------------------------------------- */

static uint64_t rnd(void)
{
    static __thread uint64_t x;

    if (x == 0)
        x = (uint64_t)mono_us() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&x;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static double rnd01(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static long long this_minute(void)
{
    return wall_ms() / 60000;
}

/* memcached's name of a deployment's use this minute: kind 't' tokens, 'r'
 * requests. */
static void use_key(const struct sl_dep_state *s, char kind, long long minute, char out[112])
{
    snprintf(out, 112, "sluice:use:%s:%c:%lld", s->mc_key + 10, kind, minute);
}

/* Reads every process's use of s this minute from memcached, at most once
 * a second. */
static void look_at_use(const struct sl_config *cfg, struct sl_dep_state *s, long long minute)
{
    long long now = mono_us();
    char k[112], *v;
    size_t len;

    if (now - load(&s->shared_looked_us) < MC_LOOK_US && load(&s->shared_minute) == minute)
        return;
    store(&s->shared_looked_us, now);
    use_key(s, 't', minute, k);
    v = sl_mc_get(cfg, k, &len);
    store(&s->shared_tokens, v ? atoll(v) : 0);
    free(v);
    use_key(s, 'r', minute, k);
    v = sl_mc_get(cfg, k, &len);
    store(&s->shared_requests, v ? atoll(v) : 0);
    free(v);
    store(&s->shared_minute, minute);
}

/* Tokens (tokens = 1) or requests this minute on s: with memcached every
 * process's (as last read, plus this process's not yet added), else this
 * process's own. */
static long long used(const struct sl_config *cfg, struct sl_dep_state *s, int tokens,
                      long long minute)
{
    if (sl_mc_configured(cfg)) {
        look_at_use(cfg, s, minute);
        return (load(&s->shared_minute) == minute ? load(tokens ? &s->shared_tokens : &s->shared_requests)
                                                  : 0) +
               load(tokens ? &s->pending_tokens : &s->pending_requests);
    }
    return load(&s->minute) == minute ? load(tokens ? &s->tokens : &s->requests) : 0;
}

/* Adds this process's use of s to memcached's, at most every USE_FLUSH_US. */
static void share_use(const struct sl_config *cfg, struct sl_dep_state *s, long long minute)
{
    long long now = mono_us(), last = load(&s->flushed_us), t, r;
    char k[112], v[32];
    uint64_t out;

    if (now - last < USE_FLUSH_US ||
        !__atomic_compare_exchange_n(&s->flushed_us, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    t = __atomic_exchange_n(&s->pending_tokens, 0, __ATOMIC_RELAXED);
    r = __atomic_exchange_n(&s->pending_requests, 0, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++) {
        long long n = i == 0 ? t : r;

        if (n <= 0)
            continue;
        use_key(s, i == 0 ? 't' : 'r', minute, k);
        if (sl_mc_add_to(cfg, k, n, &out) == 1) {
            snprintf(v, sizeof(v), "%lld", n);
            if (sl_mc_add(cfg, k, v, strlen(v), 120) == 0)
                (void)sl_mc_add_to(cfg, k, n, &out);
        }
    }
    /* what this process added is in memcached's figure from now on */
    __atomic_add_fetch(&s->shared_tokens, t, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->shared_requests, r, __ATOMIC_RELAXED);
}

static int tried(const struct sl_request *req, const struct sl_deployment *d)
{
    for (size_t i = 0; i < req->route.n_tried; i++)
        if (req->route.tried[i] == d)
            return 1;
    return 0;
}

/* The deployments of g that can take a call now, of the lowest `order`
 * among them. avoid_tried: leave out the ones this request already tried
 * (unless nothing else is left). *cooling: how many were cooling down. */
static size_t candidates(const struct sl_request *req, const struct sl_group *g,
                         const struct sl_deployment **out, size_t *cooling_n)
{
    long long now = mono_us();
    size_t n = 0, k = 0;
    double best = HUGE_VAL;
    int usage = req->cfg->routes->strategy == S_USAGE;
    long long minute = usage ? this_minute() : 0;

    *cooling_n = 0;
    for (int pass = 0; pass < 2 && n == 0; pass++) {
        for (size_t i = 0; i < g->n && n < MAX_CANDIDATES; i++) {
            const struct sl_deployment *d = g->deps[i];

            if (pass == 0 && tried(req, d))
                continue;
            if (cooling(req->cfg, d->state, now)) {
                (*cooling_n) += pass == 0;
                continue;
            }
            if (__atomic_load_n(&d->state->in_flight, __ATOMIC_RELAXED) >= deployment_cap(req->cfg, d))
                continue;
            if (usage && d->rpm > 0 && used(req->cfg, d->state, 0, minute) >= (long long)d->rpm)
                continue;    /* usage-based routing keeps to the deployments' limits */
            if (usage && d->tpm > 0 && used(req->cfg, d->state, 1, minute) >= (long long)d->tpm)
                continue;
            out[n++] = d;
        }
    }
    for (size_t i = 0; i < n; i++)   /* order: the lowest tier present (none: last) */
        if ((out[i]->order > 0 ? out[i]->order : HUGE_VAL) < best)
            best = out[i]->order > 0 ? out[i]->order : HUGE_VAL;
    for (size_t i = 0; i < n; i++)
        if ((out[i]->order > 0 ? out[i]->order : HUGE_VAL) == best)
            out[k++] = out[i];
    return k;
}

static const struct sl_deployment *shuffle(const struct sl_deployment **c, size_t n)
{
    double total = 0, x;
    int by = 0;          /* 0 weight, 1 rpm, 2 tpm, 3 evenly */

    for (; by < 3; by++) {
        total = 0;
        for (size_t i = 0; i < n; i++)
            total += by == 0 ? c[i]->weight : by == 1 ? c[i]->rpm : c[i]->tpm;
        if (total > 0)
            break;
    }
    if (by == 3)
        return c[rnd() % n];
    x = rnd01() * total;
    for (size_t i = 0; i < n; i++) {
        double w = by == 0 ? c[i]->weight : by == 1 ? c[i]->rpm : c[i]->tpm;

        if (x < w)
            return c[i];
        x -= w;
    }
    return c[n - 1];
}

static const struct sl_deployment *least_busy(const struct sl_deployment **c, size_t n)
{
    int best = -1;
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        int f = __atomic_load_n(&c[i]->state->in_flight, __ATOMIC_RELAXED);

        if (best < 0 || f < best) {
            best = f;
            k = 0;
        }
        if (f == best)
            c[k++] = c[i];
    }
    return c[rnd() % k];
}

/* Within (1 + buffer) of the fastest; a deployment never measured counts
 * as the fastest, so each gets tried. */
static const struct sl_deployment *fastest(const struct sl_deployment **c, size_t n, int stream,
                                           double buffer)
{
    long long best = -1;
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        long long v = load(stream ? &c[i]->state->ttfb_us : &c[i]->state->lat_us);

        if (best < 0 || v < best)
            best = v;
    }
    for (size_t i = 0; i < n; i++) {
        long long v = load(stream ? &c[i]->state->ttfb_us : &c[i]->state->lat_us);

        if ((double)v <= (double)best * (1.0 + buffer))
            c[k++] = c[i];
    }
    return c[rnd() % k];
}

static const struct sl_deployment *least_used(const struct sl_config *cfg,
                                              const struct sl_deployment **c, size_t n)
{
    long long best = -1, minute = this_minute();
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        long long u = used(cfg, c[i]->state, 1, minute);

        if (best < 0 || u < best) {
            best = u;
            k = 0;
        }
        if (u == best)
            c[k++] = c[i];
    }
    return c[rnd() % k];
}

/* A deployment of g for req, counted in flight; NULL when none can take it
 * (*cooling_n of them cooling down). */
static const struct sl_deployment *choose(struct sl_request *req, const struct sl_group *g,
                                          size_t *cooling_n)
{
    const struct sl_deployment *c[MAX_CANDIDATES], *d;
    size_t n = candidates(req, g, c, cooling_n);

    if (n == 0)
        return NULL;
    switch (n == 1 ? -1 : req->cfg->routes->strategy) {
    case -1: d = c[0]; break;
    case S_LEAST_BUSY: d = least_busy(c, n); break;
    case S_LATENCY: d = fastest(c, n, req->stream, req->cfg->router.latency_buffer); break;
    case S_USAGE: d = least_used(req->cfg, c, n); break;
    default: d = shuffle(c, n); break;
    }
    __atomic_add_fetch(&d->state->in_flight, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&llm_in_flight, 1, __ATOMIC_RELAXED);
    return d;
}

/* Gives back what choose took (a choice not used). */
static void unchoose(const struct sl_deployment *d)
{
    __atomic_sub_fetch(&d->state->in_flight, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&llm_in_flight, 1, __ATOMIC_RELAXED);
}

/* d itself, or for a wildcard group a copy whose upstream model is the
 * part of the requested name the '*' stood for. */
static const struct sl_deployment *instance(struct sl_request *req, const struct sl_group *g,
                                            const struct sl_deployment *d)
{
    struct sl_deployment *c;
    const char *star, *name = req->model;
    size_t sl;

    if (!g->wildcard || (star = strchr(d->upstream_model, '*')) == NULL || name == NULL ||
        !wild_match(g, name))
        return d;            /* (a wildcard group reached as a fallback: as written) */
    sl = strlen(g->name + g->prefix_len + 1);
    if ((c = sl_arena_alloc(req->arena, sizeof(*c))) == NULL)
        return NULL;
    *c = *d;
    c->upstream_model = sl_arena_printf(req->arena, "%.*s%.*s%s", (int)(star - d->upstream_model),
                                        d->upstream_model,
                                        (int)(strlen(name) - g->prefix_len - sl), name + g->prefix_len,
                                        star + 1);
    c->price_resolved = 0;   /* priced by its real model, per call */
    return c->upstream_model != NULL ? c : NULL;
}

/* LiteLLM's 429 when no deployment of g can take the call, naming the
 * ones cooling down (Python's list repr). */
static int no_deployments(struct sl_request *req, const struct sl_group *g)
{
    long long now = mono_us();
    char list[512] = "[", v[16];
    size_t len = 1;
    double c = req->cfg->router.cooldown_s;

    for (size_t i = 0; i < g->n && len < sizeof(list) - 80; i++)
        if (cooling(req->cfg, g->deps[i]->state, now))
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s'%.60s'", len > 1 ? ", " : "",
                                    g->deps[i]->id);
    snprintf(list + len, sizeof(list) - len, "]");
    req->err_msg = sl_arena_printf(req->arena,
        "No deployments available for selected model, Try again in %.3g seconds. Passed "
        "model=%.200s. pre-call-checks=False, cooldown_list=%s", c, req->model ? req->model : g->name,
        list);
    req->err_type = "rate_limit_error";
    snprintf(v, sizeof(v), "%ld", c >= 1 ? (long)(c + 0.999) : 1L);
    sl_respond_header(req, "retry-after", v);
    return SL_ERR_NO_DEPLOYMENT;
}

/* Moves req to group g: picks its deployment (key permitting). */
static int enter(struct sl_request *req, const struct sl_group *g)
{
    const struct sl_deployment *d;
    size_t cooling_n;

    if (g != req->route.first && !sl_auth_may_use_model(req, g->name))
        return SL_ERR_AUTH;          /* a fallback group this key may not use */
    if ((d = choose(req, g, &cooling_n)) == NULL)
        return SL_ERR_NO_DEPLOYMENT;
    if ((req->dep = instance(req, g, d)) == NULL) {
        unchoose(d);
        return SL_ERR_NOMEM;
    }
    req->route.held = d;
    req->route.group = g;
    req->route.attempt_us = mono_us();
    req->model_group = g->name;
    return SL_OK;
}

/* The next fallback group of the request's first group for a failure of
 * kind why: the request's own `fallbacks`, else the lists of
 * router_settings, else default_fallbacks. */
static const struct sl_group *next_fallback(struct sl_request *req, int why)
{
    const struct sl_router *r = req->cfg->routes;
    const struct sl_group *first = req->route.first, *const *list = NULL;
    size_t n = 0;

    if (why == SL_FAIL_CONTEXT_WINDOW) {
        list = first->cw;
        n = first->n_cw;
    } else if (why == SL_FAIL_CONTENT_POLICY) {
        list = first->cp;
        n = first->n_cp;
    } else if (why == SL_FAIL_BAD_REQUEST) {
        return NULL;
    } else if (req->route.n_own > 0) {
        list = req->route.own;
        n = req->route.n_own;
    } else if (first->n_fb > 0) {
        list = first->fb;
        n = first->n_fb;
    } else {
        list = r->dflt;
        n = r->n_dflt;
    }
    for (size_t i = 0; i < n; i++) {
        int seen = list[i] == first;

        for (size_t j = 0; j < req->route.n_visited && !seen; j++)
            seen = req->route.visited[j] == list[i];
        if (!seen && req->route.fallbacks < req->cfg->router.max_fallbacks)
            return list[i];
    }
    return NULL;
}

static void visit(struct sl_request *req, const struct sl_group *g)
{
    if (req->route.n_visited < sizeof(req->route.visited) / sizeof(req->route.visited[0]))
        req->route.visited[req->route.n_visited++] = g;
    req->route.n_tried = 0;
    req->route.in_group = 0;
}

/* Falls back to the next group that can take the call. */
static int fall_back(struct sl_request *req, int why)
{
    const struct sl_group *g;

    while ((g = next_fallback(req, why)) != NULL) {
        visit(req, g);
        req->route.fallbacks++;
        if (enter(req, g) == SL_OK)
            return SL_OK;
    }
    return SL_ERR_NO_DEPLOYMENT;
}

/* The request's own "fallbacks": ["model", ...] (taken out of the body:
 * providers do not know it). */
static int own_fallbacks(struct sl_request *req)
{
    json_t *v = req->in ? json_object_get(req->in, "fallbacks") : NULL;
    const struct sl_group **list;
    size_t i;
    json_t *e;

    if (v == NULL)
        return SL_OK;
    if (!json_is_array(v) || json_array_size(v) > 16)
        goto bad;
    if ((list = sl_arena_calloc(req->arena, json_array_size(v) + 1, sizeof(*list))) == NULL)
        return SL_ERR_NOMEM;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e) || (list[i] = find(req->cfg->routes, json_string_value(e))) == NULL)
            goto bad;
    }
    req->route.own = list;
    req->route.n_own = json_array_size(v);
    json_object_del(req->in, "fallbacks");
    return SL_OK;
bad:
    req->err_msg = "fallbacks must be a list of at most 16 model names from /v1/models.";
    req->err_param = "fallbacks";
    return SL_ERR_BAD_REQUEST;
}

/* The group for req->model: the key's own aliases, then the config's. */
static const struct sl_group *requested_group(struct sl_request *req)
{
    const struct sl_key *k = req->principal.key;
    const struct sl_group *g = NULL;

    if (k != NULL && k->aliases != NULL && req->model != NULL) {
        json_t *aliases = json_loads(k->aliases, 0, NULL);
        const char *to = json_string_value(json_object_get(aliases, req->model));

        if (to != NULL)
            g = find(req->cfg->routes, to);
        json_decref(aliases);
        if (g != NULL)
            req->route.key_alias = 1;
    }
    return g != NULL ? g : find(req->cfg->routes, req->model);
}

int sl_router_pick(struct sl_request *req)
{
    const struct sl_group *g;
    int rc;

    req->stage = "route";
    if ((g = requested_group(req)) == NULL) {
        req->err_msg = sl_arena_printf(req->arena,
            "Invalid model name passed in model=%.200s. Call `/v1/models` to view available models for your key.",
            req->model);
        return SL_ERR_UNKNOWN_MODEL;
    }
    /* A key may use its own alias when it may use either name. */
    if (!sl_auth_may_use_model(req, req->model) &&
        (!req->route.key_alias || !sl_auth_may_use_model(req, g->name)))
        return sl_auth_model_denied(req, req->model);
    if ((rc = own_fallbacks(req)) != SL_OK)
        return rc;
    if (__atomic_load_n(&llm_in_flight, __ATOMIC_RELAXED) >= process_cap(req->cfg)) {
        req->err_msg = "The gateway has as many calls in flight as it takes (sluice_settings."
                       "max_threads - reserved_threads); retry later.";
        return SL_ERR_BUSY;
    }
    req->route.first = g;
    visit(req, g);
    if ((rc = enter(req, g)) == SL_OK)
        return SL_OK;
    if (rc == SL_ERR_NOMEM)
        return rc;
    if (fall_back(req, SL_FAIL_RATE_LIMIT) == SL_OK)
        return SL_OK;
    req->model_group = g->name;
    return no_deployments(req, g);
}

static long backoff_ms(int n)
{
    long ms = BACKOFF_BASE_MS << (n < 5 ? n : 5);

    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    return ms / 2 + (long)(rnd() % (unsigned long)(ms / 2 + 1));   /* jitter: 50..100 % */
}

int sl_router_next(struct sl_request *req, int why, long retry_after_ms, long *wait_ms)
{
    const struct sl_deployment *was = req->route.held;
    const struct sl_group *g = req->route.group;
    long floor_ms = (long)(req->cfg->router.retry_after_s * 1000.0);
    size_t cooling_n;
    int allowed;

    *wait_ms = 0;
    if (was == NULL || g == NULL)
        return SL_ERR_INTERNAL;
    if (why <= 0 || why > SL_FAIL_CONTENT_POLICY)
        return SL_ERR_UPSTREAM_STATUS;   /* not the deployment's failure: answer as it is */
    failed(req, g, was, why);
    sl_router_release(req, 0);
    if (req->route.n_tried < sizeof(req->route.tried) / sizeof(req->route.tried[0]))
        req->route.tried[req->route.n_tried++] = was;
    allowed = req->cfg->routes->retries[why];
    if (req->route.in_group < allowed && (why != SL_FAIL_RATE_LIMIT || retry_after_ms <= RETRY_AFTER_MAX_MS)) {
        const struct sl_deployment *d = choose(req, g, &cooling_n);

        if (d != NULL && (req->dep = instance(req, g, d)) != NULL) {
            req->route.held = d;
            req->route.attempt_us = mono_us();
            req->route.in_group++;
            req->route.retries++;
            /* Another deployment is tried at once; the same one after a
             * back-off (or its retry-after). */
            if (d == was)
                *wait_ms = retry_after_ms >= 0 ? retry_after_ms : backoff_ms(req->route.in_group - 1);
            if (*wait_ms < floor_ms)
                *wait_ms = floor_ms;
            return SL_OK;
        }
        if (d != NULL)
            unchoose(d);
    }
    if (fall_back(req, why) == SL_OK) {
        *wait_ms = floor_ms;
        return SL_OK;
    }
    req->dep = was;           /* the error to answer is this attempt's */
    return SL_ERR_UPSTREAM_STATUS;
}

void sl_router_release(struct sl_request *req, int ok)
{
    const struct sl_deployment *d = req->route.held;
    struct sl_dep_state *s;
    long long now, minute, tokens;

    if (d == NULL)
        return;
    req->route.held = NULL;
    s = d->state;
    unchoose(d);
    if (!ok)
        return;
    now = mono_us();
    ewma(&s->lat_us, now - req->route.attempt_us);
    if (req->t_first_byte_us > req->route.attempt_us)
        ewma(&s->ttfb_us, req->t_first_byte_us - req->route.attempt_us);
    minute = this_minute();
    tokens = req->usage.total_tokens ? req->usage.total_tokens
                                     : req->usage.prompt_tokens + req->usage.completion_tokens;
    if (load(&s->minute) != minute) {
        store(&s->minute, minute);
        store(&s->tokens, 0);
        store(&s->requests, 0);
    }
    __atomic_add_fetch(&s->tokens, tokens, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->requests, 1, __ATOMIC_RELAXED);
    if (req->cfg->routes->strategy == S_USAGE && sl_mc_configured(req->cfg)) {
        __atomic_add_fetch(&s->pending_tokens, tokens, __ATOMIC_RELAXED);
        __atomic_add_fetch(&s->pending_requests, 1, __ATOMIC_RELAXED);
        share_use(req->cfg, s, minute);
    }
}

void sl_router_headers(struct sl_request *req)
{
    const struct sl_deployment *d = req->dep;
    char n[24];

    sl_respond_header(req, "x-litellm-model-id", d->id);
    if (d->api_base != NULL && d->shown_api_base != NULL)   /* (without what may be secret) */
        sl_respond_header(req, "x-litellm-model-api-base", d->shown_api_base);
    if (req->model_group != NULL)
        sl_respond_header(req, "x-litellm-model-group", req->model_group);
    snprintf(n, sizeof(n), "%d", req->route.retries);
    sl_respond_header(req, "x-litellm-attempted-retries", n);
    snprintf(n, sizeof(n), "%d", req->route.fallbacks);
    sl_respond_header(req, "x-litellm-attempted-fallbacks", n);
    if (req->route.n_visited > 1) {   /* which groups were tried, in order */
        size_t size = 1;
        char *list, *p;

        for (size_t i = 0; i < req->route.n_visited; i++)
            size += strlen(req->route.visited[i]->name) + 1;
        if ((list = sl_arena_alloc(req->arena, size)) != NULL) {
            p = list;
            for (size_t i = 0; i < req->route.n_visited; i++)
                p += sprintf(p, "%s%s", i ? "," : "", req->route.visited[i]->name);
            sl_respond_header(req, "x-sluice-attempted-model-groups", list);
        }
    }
}

/* The host's metrics (see metrics.h): a table of rows in a file every
 * process maps, and the Prometheus exposition made from it.
 *
 * The file: a head (the processes that map it, with their requests in
 * flight), an open-addressed table of slots, and a heap of 64-bit words. A
 * row is a slot naming its kind and its labels, which lie in the heap,
 * followed there by the row's values. Nothing is ever removed, and every
 * change is an atomic operation on a word, so no lock is needed: a new row
 * claims its slot (state 0 -> 1), takes its words from the heap with one
 * fetch-and-add, writes its labels and publishes itself (state 2). Two
 * processes making the same row at once may make it twice when one gives up
 * waiting for the other; the exposition sums rows with equal labels, so
 * that costs a slot, never a count. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "cache.h"
#include "config.h"
#include "guard.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "respond.h"
#include "router.h"
#include "shmfile.h"
#include "spend.h"
#include "status.h"

/* ---- the rows --------------------------------------------------------------- */

/* Label slots: every row has all of them ("" when not set). */
enum {
    L_REQUESTED_MODEL, L_MODEL, L_MODEL_ID, L_API_BASE, L_API_PROVIDER, L_KEY_HASH,
    L_KEY_ALIAS, L_TEAM, L_USER, L_STATUS, L_EXC_CLASS, L_ROUTE, L_FALLBACK,
    L_X1, L_X2, L_X3, NL
};
#define LABEL_MAX 128            /* bytes of one value kept */

/* Latency buckets (seconds): LiteLLM's. */
static const double bucket_s[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 420, 600
};
#define NB ((int)(sizeof(bucket_s) / sizeof(bucket_s[0])) + 1)   /* with +Inf */
#define HW (NB + 1)              /* a histogram's words: the buckets, then the sum in µs */

/* Row kinds and their values. */
enum { K_REQ, K_ATT, K_COOL, K_FB, K_REJ, K_GUARD, K_HTTP, K_CB, NK };
enum {   /* K_REQ */
    R_COUNT, R_IN, R_OUT, R_TOTAL, R_CACHED_IN, R_SPEND, R_CACHE_HIT, R_CACHE_MISS,
    R_CACHE_HIT_TOK, R_RETRIES, R_FALLBACKS, R_LAT, R_WORDS = R_LAT + HW
};
enum { A_COUNT, A_LLM, A_TTFT = A_LLM + HW, A_WORDS = A_TTFT + HW };   /* K_ATT */
enum { FB_OK, FB_FAIL, FB_WORDS };                                       /* K_FB */
enum { G_COUNT, G_LAT, G_WORDS = G_LAT + HW };                        /* K_GUARD */
enum { C_SENT, C_DROPPED, C_FAILED, C_WORDS };                        /* K_CB */

static const unsigned kind_words[NK] = {
    [K_REQ] = R_WORDS, [K_ATT] = A_WORDS, [K_COOL] = 1, [K_FB] = FB_WORDS, [K_REJ] = 1,
    [K_GUARD] = G_WORDS, [K_HTTP] = 1, [K_CB] = C_WORDS,
};

/* ---- the file ----------------------------------------------------------------- */

#define M_MAGIC "sluiceMX"
#define M_VERSION 1u
#define M_SLOTS 8192u            /* a power of two */
#define M_WORDS (1u << 20)       /* 8 MiB of heap, touched as rows appear */
#define M_PROCS 1024u
#define M_PROBE 64u
#define M_SPIN 200               /* polls of a slot being made before giving up on it */

enum { S_FREE, S_MAKING, S_READY, S_DEAD };

struct mproc {
    int32_t pid;                 /* 0: free */
    uint32_t pad;
    uint64_t in_flight;
};

struct mslot {
    uint32_t state;
    uint32_t kind;
    uint64_t hash;
    uint32_t off;                /* heap word of the labels; the values follow */
    uint32_t len;                /* bytes of labels */
};

struct mhead {
    char magic[8];
    uint32_t version, layout, slots, words, procs, ready;
    uint64_t next;               /* heap words handed out */
    uint64_t overflow;           /* updates that found no room for their labels */
    uint64_t spare_off[NK];      /* each kind's row for when there is no room (words) */
    uint64_t pad[4];
    struct mproc proc[M_PROCS];
};

static size_t m_size(void)
{
    return sizeof(struct mhead) + M_SLOTS * sizeof(struct mslot) + (size_t)M_WORDS * 8;
}

/* A digest of the layout, so that a sluice with other kinds or buckets
 * makes a new file rather than misreading this one. */
static uint32_t layout_of(void)
{
    uint32_t h = 2166136261u;

    for (int k = 0; k < NK; k++)
        h = (h ^ kind_words[k]) * 16777619u;
    h = (h ^ (uint32_t)NL) * 16777619u;
    return (h ^ (uint32_t)NB) * 16777619u;
}

static struct mhead *head;       /* the mapping; never NULL after map_once */
static struct mslot *slots;
static uint64_t *words;
static pthread_once_t map_once = PTHREAD_ONCE_INIT;
static int my_proc = -1;         /* this process's entry in head->proc */
static int claimed;              /* my_proc is this process's (a fork clears it) */
static pthread_mutex_t claim_lock = PTHREAD_MUTEX_INITIALIZER;

static int head_valid(const void *p, void *arg)
{
    const struct mhead *h = p;

    (void)arg;
    return memcmp(h->magic, M_MAGIC, sizeof(h->magic)) == 0 && h->version == M_VERSION &&
           h->layout == layout_of() && h->slots == M_SLOTS && h->words == M_WORDS &&
           h->procs == M_PROCS && __atomic_load_n(&h->ready, __ATOMIC_ACQUIRE) == 1;
}

/* A zeroed mapping: the head, and each kind's spare row (empty labels: NL
 * empty strings), made outside the table. */
static int head_init(void *p, void *arg)
{
    struct mhead *h = p;
    uint64_t at = 0;

    (void)arg;
    memcpy(h->magic, M_MAGIC, sizeof(h->magic));
    h->version = M_VERSION;
    h->layout = layout_of();
    h->slots = M_SLOTS;
    h->words = M_WORDS;
    h->procs = M_PROCS;
    for (int k = 0; k < NK; k++) {
        h->spare_off[k] = at;
        at += kind_words[k];
    }
    h->next = at;
    __atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
    return 0;
}

static void set_pointers(void *p)
{
    head = p;
    slots = (struct mslot *)(head + 1);
    words = (uint64_t *)(slots + M_SLOTS);
}

static void forked(void)
{
    claimed = 0;
    my_proc = -1;
}

static void map_file(void)
{
    char *dir = sl_spend_spool_dir(), why[256] = "out of memory", path[4200];
    void *p = NULL;

    if (dir != NULL && snprintf(path, sizeof(path), "%s/metrics.shm", dir) < (int)sizeof(path))
        p = sl_shm_map(path, m_size(), head_valid, head_init, NULL, why, sizeof(why));
    free(dir);
    if (p == NULL) {
        sl_log(SL_LOG_WARN, NULL, "the host's metrics file cannot be mapped (%s): /metrics "
               "counts this process alone", why);
        p = mmap(NULL, m_size(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            sl_log(SL_LOG_ERROR, NULL, "no memory for metrics: none are counted");
            return;
        }
        head_init(p, NULL);
    }
    set_pointers(p);
    pthread_atfork(NULL, NULL, forked);
}

static int alive(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH);
}

/* This process's entry in the head: a free one, else one of a process
 * that is gone. -1 when every entry is taken by a live process. */
static int claim_proc(void)
{
    pid_t me = getpid();

    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < M_PROCS; i++) {
            int32_t pid = __atomic_load_n(&head->proc[i].pid, __ATOMIC_ACQUIRE);

            if ((pass == 0 && pid != 0) || (pass == 1 && (pid == 0 || alive(pid))))
                continue;
            if (__atomic_compare_exchange_n(&head->proc[i].pid, &pid, (int32_t)me, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&head->proc[i].in_flight, 0, __ATOMIC_RELEASE);
                return (int)i;
            }
        }
    return -1;
}

static int ready(void)
{
    pthread_once(&map_once, map_file);
    return head != NULL;
}

static uint64_t hash_of(int kind, const char *b, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)b[i]) * 1099511628211ULL;
    return h;
}

static uint64_t *spare(int kind)
{
    __atomic_add_fetch(&head->overflow, 1, __ATOMIC_RELAXED);
    return &words[head->spare_off[kind]];
}

static uint64_t *values_of(const struct mslot *s)
{
    return &words[s->off + (s->len + 7) / 8];
}

/* The values of the row (kind, labels b[0..n)), made if need be. */
static uint64_t *row(int kind, const char *b, size_t n)
{
    uint64_t h = hash_of(kind, b, n), need = (n + 7) / 8 + kind_words[kind];

    for (unsigned i = 0; i < M_PROBE; i++) {
        struct mslot *s = &slots[(h + i) & (M_SLOTS - 1)];
        uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

        if (st == S_FREE) {
            uint64_t off;

            if (__atomic_load_n(&head->next, __ATOMIC_RELAXED) + need > M_WORDS)
                return spare(kind);
            if (__atomic_compare_exchange_n(&s->state, &st, S_MAKING, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                off = __atomic_fetch_add(&head->next, need, __ATOMIC_RELAXED);
                if (off + need > M_WORDS) {
                    __atomic_store_n(&s->state, S_DEAD, __ATOMIC_RELEASE);
                    return spare(kind);
                }
                memcpy(&words[off], b, n);
                s->kind = (uint32_t)kind;
                s->hash = h;
                s->off = (uint32_t)off;
                s->len = (uint32_t)n;
                __atomic_store_n(&s->state, S_READY, __ATOMIC_RELEASE);
                return values_of(s);
            }
        }
        for (int spin = 0; st == S_MAKING && spin < M_SPIN; spin++) {
            sched_yield();
            st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        }
        /* Still being made: its maker was preempted long, or died in the
         * middle. Give up on the slot for good, so that nobody waits on it
         * again (a maker that comes back publishes it anyway: a second
         * row with the same labels, which the exposition sums). */
        if (st == S_MAKING)
            __atomic_compare_exchange_n(&s->state, &st, S_DEAD, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        if (st == S_READY && s->hash == h && s->kind == (uint32_t)kind && s->len == n &&
            memcmp(&words[s->off], b, n) == 0)
            return values_of(s);
    }
    return spare(kind);
}

static void add(uint64_t *v, int i, uint64_t n)
{
    if (n != 0)
        __atomic_add_fetch(&v[i], n, __ATOMIC_RELAXED);
}

static void observe(uint64_t *v, int at, long long us)
{
    int b = 0;

    if (us < 0)
        us = 0;
    while (b < NB - 1 && (double)us > bucket_s[b] * 1e6)
        b++;
    add(v, at + b, 1);
    add(v, at + NB, (uint64_t)us);
}

/* ---- labels ---------------------------------------------------------------------- */

struct labels {
    const char *v[NL];
};

/* The row key: each value (at most LABEL_MAX bytes, cut on a character
 * boundary) and its NUL, in slot order. Returns its length. */
static size_t pack(const struct labels *l, char *out)
{
    size_t n = 0;

    for (int i = 0; i < NL; i++) {
        const char *s = l->v[i] ? l->v[i] : "";
        size_t len = strnlen(s, LABEL_MAX + 1);

        if (len > LABEL_MAX) {
            len = LABEL_MAX;
            while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
                len--;
        }
        memcpy(out + n, s, len);
        n += len;
        out[n++] = '\0';
    }
    return n;
}

#define PACK_MAX (NL * (LABEL_MAX + 1))

static uint64_t *row_of(int kind, const struct labels *l)
{
    char b[PACK_MAX];

    return row(kind, b, pack(l, b));
}

/* Who made a request: key, alias, team, user (the web server's user wins). */
static void principal_labels(const struct sl_request *req, struct labels *l)
{
    const struct sl_key *k = req->principal.key;

    if (req->principal.role == SL_ROLE_KEY)
        l->v[L_KEY_HASH] = req->principal.key_hash;
    if (k != NULL) {
        l->v[L_KEY_ALIAS] = k->key_alias;
        l->v[L_TEAM] = k->team_id;
        l->v[L_USER] = k->user_id;
    }
    if (req->principal.user != NULL)
        l->v[L_USER] = req->principal.user->user_id;
}

static void deployment_labels(const struct sl_deployment *d, struct labels *l)
{
    if (d == NULL)
        return;
    l->v[L_MODEL] = d->upstream_model;
    l->v[L_MODEL_ID] = d->id;
    l->v[L_API_PROVIDER] = d->provider ? d->provider->name : NULL;
    l->v[L_API_BASE] = d->shown_api_base;
}

static void status_text(int status, char out[8])
{
    if (status > 0 && status < 1000)
        snprintf(out, 8, "%d", status);
    else
        out[0] = '\0';
}

/* ---- counting ------------------------------------------------------------------ */

static int enabled(const struct sl_config *cfg)
{
    return cfg != NULL && cfg->metrics && ready();
}

void sl_metrics_begin(const struct sl_request *req)
{
    if (!enabled(req->cfg))
        return;
    if (!__atomic_load_n(&claimed, __ATOMIC_ACQUIRE)) {   /* first call, or a forked child */
        pthread_mutex_lock(&claim_lock);
        if (!claimed) {
            my_proc = claim_proc();
            __atomic_store_n(&claimed, 1, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&claim_lock);
    }
    if (my_proc >= 0)
        __atomic_add_fetch(&head->proc[my_proc].in_flight, 1, __ATOMIC_RELAXED);
}

static int is_llm_route(const struct sl_request *req)
{
    return sl_request_is_llm_call(req) || req->endpoint == SL_EP_COUNT_TOKENS;
}

static void count_attempts(const struct sl_request *req, const struct labels *who)
{
    int n = req->n_attempts < SL_MAX_ATTEMPTS ? req->n_attempts : SL_MAX_ATTEMPTS;

    for (int i = 0; i < n; i++) {
        const struct sl_attempt *a = &req->attempts[i];
        struct labels l = *who;
        char st[8];
        uint64_t *v;
        int ok = !a->aborted && a->fail == 0 && a->status >= 200 && a->status <= 299;

        deployment_labels(a->dep, &l);
        l.v[L_REQUESTED_MODEL] = a->group;
        status_text(a->status, st);
        if (a->aborted) {
            l.v[L_X1] = "aborted";
        } else if (!ok) {
            l.v[L_STATUS] = st;
            l.v[L_EXC_CLASS] = sl_attempt_error_class(a);
        }
        if ((v = row_of(K_ATT, &l)) == NULL)
            continue;
        add(v, A_COUNT, 1);
        if (ok) {
            observe(v, A_LLM, a->t1_us - a->t0_us);
            if (req->stream && a->ttfb_us > a->t0_us)
                observe(v, A_TTFT, a->ttfb_us - a->t0_us);
        }
    }
}

/* A request that fell back: counted once, as LiteLLM does, against the
 * group asked for and the one that answered last, with the failure that
 * made it leave the first. */
static void count_fallback(const struct sl_request *req, const struct labels *who, int ok)
{
    int n = req->n_attempts < SL_MAX_ATTEMPTS ? req->n_attempts : SL_MAX_ATTEMPTS;
    const struct sl_attempt *first = NULL, *last = NULL;
    struct labels l = *who;
    char st[8];
    uint64_t *v;

    for (int i = 0; i < n; i++) {
        if (first == NULL || strcmp(req->attempts[i].group, req->attempts[0].group) == 0)
            first = &req->attempts[i];
        last = &req->attempts[i];
    }
    if (first == NULL)
        return;
    status_text(first->status, st);
    l.v[L_REQUESTED_MODEL] = req->attempts[0].group;
    l.v[L_FALLBACK] = last->group;
    l.v[L_MODEL_ID] = last->dep ? last->dep->id : NULL;
    l.v[L_STATUS] = st;
    l.v[L_EXC_CLASS] = sl_attempt_error_class(first);
    if ((v = row_of(K_FB, &l)) != NULL)
        add(v, ok ? FB_OK : FB_FAIL, 1);
}

void sl_metrics_end(const struct sl_request *req)
{
    struct labels who = { { NULL } }, l;
    char st[8];
    uint64_t *v;
    long long now;
    int failed;

    if (!enabled(req->cfg))
        return;
    if (my_proc >= 0 && claimed)
        __atomic_sub_fetch(&head->proc[my_proc].in_flight, 1, __ATOMIC_RELAXED);
    now = sl_now_us();
    status_text(req->http_status, st);
    l = who;
    l.v[L_ROUTE] = req->route_label ? req->route_label : "other";
    l.v[L_STATUS] = st;
    if ((v = row_of(K_HTTP, &l)) != NULL)
        add(v, 0, 1);
    if (!is_llm_route(req))
        return;

    principal_labels(req, &who);
    failed = req->http_status >= 400 || req->error != SL_OK;
    l = who;
    deployment_labels(req->dep, &l);
    l.v[L_REQUESTED_MODEL] = req->route.first ? sl_router_group_name(req->route.first) : NULL;
    l.v[L_ROUTE] = req->route_label;
    l.v[L_STATUS] = st;
    if (failed)
        l.v[L_EXC_CLASS] = sl_request_error_class(req);
    if ((v = row_of(K_REQ, &l)) != NULL) {
        int hit = sl_cache_was_hit(req);

        add(v, R_COUNT, 1);
        add(v, R_IN, (uint64_t)(req->usage.prompt_tokens > 0 ? req->usage.prompt_tokens : 0));
        add(v, R_OUT, (uint64_t)(req->usage.completion_tokens > 0 ? req->usage.completion_tokens : 0));
        add(v, R_TOTAL, (uint64_t)(req->usage.total_tokens > 0 ? req->usage.total_tokens
                                   : req->usage.prompt_tokens + req->usage.completion_tokens > 0
                                   ? req->usage.prompt_tokens + req->usage.completion_tokens : 0));
        add(v, R_CACHED_IN, (uint64_t)(req->usage.cached_tokens > 0 ? req->usage.cached_tokens : 0));
        if (req->cost_known && !hit)
            add(v, R_SPEND, (uint64_t)sl_spend_units(req->cost));
        if (sl_cache_key_of(req) != NULL) {
            add(v, hit ? R_CACHE_HIT : R_CACHE_MISS, 1);
            if (hit)
                add(v, R_CACHE_HIT_TOK, (uint64_t)(req->usage.total_tokens > 0 ? req->usage.total_tokens : 0));
        }
        add(v, R_RETRIES, (uint64_t)req->route.retries);
        add(v, R_FALLBACKS, (uint64_t)req->route.fallbacks);
        observe(v, R_LAT, now - req->t_start_us);
    }
    count_attempts(req, &who);
    if (req->route.fallbacks > 0 && req->n_attempts > 0)
        count_fallback(req, &who, !failed);
    if (req->rejected != NULL) {
        l = who;
        l.v[L_REQUESTED_MODEL] = req->route.first ? sl_router_group_name(req->route.first) : NULL;
        l.v[L_X1] = req->rejected;
        l.v[L_X2] = req->rejected_scope;
        if ((v = row_of(K_REJ, &l)) != NULL)
            add(v, 0, 1);
    }
    sl_guard_metrics(req);
}

void sl_metrics_cooldown(const struct sl_config *cfg, const struct sl_deployment *d, int status)
{
    struct labels l = { { NULL } };
    char st[8];
    uint64_t *v;

    if (!enabled(cfg))
        return;
    deployment_labels(d, &l);
    status_text(status, st);
    l.v[L_STATUS] = st;
    if ((v = row_of(K_COOL, &l)) != NULL)
        add(v, 0, 1);
}

void sl_metrics_guardrail(const struct sl_config *cfg, const char *name, const char *hook,
                          const char *status, long long us)
{
    struct labels l = { { NULL } };
    uint64_t *v;

    if (!enabled(cfg))
        return;
    l.v[L_X1] = name;
    l.v[L_X2] = status;
    l.v[L_X3] = hook;
    if ((v = row_of(K_GUARD, &l)) != NULL) {
        add(v, G_COUNT, 1);
        observe(v, G_LAT, us);
    }
}

void sl_metrics_callback(const char *name, int what, long n)
{
    struct labels l = { { NULL } };
    uint64_t *v;

    if (n <= 0 || what < 0 || what > SL_METRICS_CB_FAILED || !ready())
        return;
    l.v[L_X1] = name;
    if ((v = row_of(K_CB, &l)) != NULL)
        add(v, what, (uint64_t)n);
}

/* ---- the exposition -------------------------------------------------------------- */

enum { T_COUNTER, T_HISTOGRAM };
enum { ROWS_ALL, ROWS_FAILED, ROWS_OK, ROWS_ABORTED, ROWS_EXC };

struct lab {
    int slot;
    const char *name;
};

struct family {
    const char *name;            /* counters: with _total */
    const char *help;
    int type, kind, at;          /* at: the value, or the histogram's first word */
    int where;                   /* which rows: ROWS_* */
    double scale;                /* counters: value * scale (0: 1) */
    struct lab labels[12];       /* {0, NULL} ends (at most 11) */
};

#define KEY_LABELS { L_KEY_HASH, "hashed_api_key" }, { L_KEY_ALIAS, "api_key_alias" }, \
    { L_TEAM, "team" }
#define TOKEN_LABELS { KEY_LABELS, { L_MODEL, "model" }, { L_USER, "user" }, \
    { L_REQUESTED_MODEL, "requested_model" }, { L_MODEL_ID, "model_id" } }
#define FALLBACK_LABELS { L_REQUESTED_MODEL, "requested_model" }, \
    { L_FALLBACK, "fallback_model" }, KEY_LABELS, { L_STATUS, "exception_status" }, \
    { L_EXC_CLASS, "exception_class" }, { L_MODEL_ID, "model_id" }
#define DEPLOY_LABELS { L_REQUESTED_MODEL, "requested_model" }, \
    { L_MODEL, "litellm_model_name" }, { L_MODEL_ID, "model_id" }, { L_API_BASE, "api_base" }, \
    { L_API_PROVIDER, "api_provider" }, KEY_LABELS

static const struct family families[] = {
    { "litellm_proxy_total_requests_metric_total",
      "Requests to the gateway's LLM routes, by key, team, user, model group and status",
      T_COUNTER, K_REQ, R_COUNT, ROWS_ALL, 0,
      { KEY_LABELS, { L_USER, "user" }, { L_REQUESTED_MODEL, "requested_model" },
        { L_STATUS, "status_code" }, { L_ROUTE, "route" }, { L_MODEL_ID, "model_id" } } },
    { "litellm_proxy_failed_requests_metric_total",
      "Requests to the LLM routes that did not get a success response",
      T_COUNTER, K_REQ, R_COUNT, ROWS_FAILED, 0,
      { KEY_LABELS, { L_USER, "user" }, { L_REQUESTED_MODEL, "requested_model" },
        { L_STATUS, "exception_status" }, { L_EXC_CLASS, "exception_class" },
        { L_ROUTE, "route" }, { L_MODEL_ID, "model_id" } } },
    { "litellm_input_tokens_metric_total", "Input (prompt) tokens",
      T_COUNTER, K_REQ, R_IN, ROWS_ALL, 0, TOKEN_LABELS },
    { "litellm_output_tokens_metric_total", "Output (completion) tokens",
      T_COUNTER, K_REQ, R_OUT, ROWS_ALL, 0, TOKEN_LABELS },
    { "litellm_total_tokens_metric_total", "Input and output tokens",
      T_COUNTER, K_REQ, R_TOTAL, ROWS_ALL, 0, TOKEN_LABELS },
    { "sluice_cached_input_tokens_total",
      "Input tokens the provider read from its prompt cache (part of the input tokens)",
      T_COUNTER, K_REQ, R_CACHED_IN, ROWS_ALL, 0, TOKEN_LABELS },
    { "litellm_spend_metric_total", "Spend in USD, from the price table",
      T_COUNTER, K_REQ, R_SPEND, ROWS_ALL, 1.0 / (double)SL_SPEND_UNITS_PER_USD,
      { KEY_LABELS, { L_MODEL, "model" }, { L_USER, "user" }, { L_MODEL_ID, "model_id" },
        { L_API_PROVIDER, "api_provider" } } },
    { "litellm_request_total_latency_metric",
      "Seconds from a request's arrival to its last byte",
      T_HISTOGRAM, K_REQ, R_LAT, ROWS_ALL, 0,
      { KEY_LABELS, { L_REQUESTED_MODEL, "requested_model" }, { L_USER, "user" },
        { L_MODEL, "model" }, { L_MODEL_ID, "model_id" } } },
    { "litellm_cache_hits_metric_total", "Requests answered from the response cache",
      T_COUNTER, K_REQ, R_CACHE_HIT, ROWS_ALL, 0,
      { KEY_LABELS, { L_MODEL, "model" }, { L_USER, "user" }, { L_MODEL_ID, "model_id" } } },
    { "litellm_cache_misses_metric_total", "Requests the response cache could not answer",
      T_COUNTER, K_REQ, R_CACHE_MISS, ROWS_ALL, 0,
      { KEY_LABELS, { L_MODEL, "model" }, { L_USER, "user" }, { L_MODEL_ID, "model_id" } } },
    { "litellm_cached_tokens_metric_total", "Tokens of the answers served from the response cache",
      T_COUNTER, K_REQ, R_CACHE_HIT_TOK, ROWS_ALL, 0,
      { KEY_LABELS, { L_MODEL, "model" }, { L_USER, "user" }, { L_MODEL_ID, "model_id" } } },
    { "sluice_retries_total", "Upstream attempts retried within a model group",
      T_COUNTER, K_REQ, R_RETRIES, ROWS_ALL, 0, { { L_REQUESTED_MODEL, "requested_model" } } },
    { "sluice_fallbacks_total", "Moves of a request to a fallback model group",
      T_COUNTER, K_REQ, R_FALLBACKS, ROWS_ALL, 0, { { L_REQUESTED_MODEL, "requested_model" } } },
    { "litellm_deployment_total_requests_total", "Upstream attempts, by deployment",
      T_COUNTER, K_ATT, A_COUNT, ROWS_ALL, 0, { DEPLOY_LABELS } },
    { "litellm_deployment_success_responses_total", "Upstream attempts that succeeded",
      T_COUNTER, K_ATT, A_COUNT, ROWS_OK, 0, { DEPLOY_LABELS } },
    { "litellm_deployment_failure_responses_total",
      "Upstream attempts that failed, by exception class (RateLimitError: 429, "
      "InternalServerError: 5xx, Timeout, APIConnectionError, ...)",
      T_COUNTER, K_ATT, A_COUNT, ROWS_EXC, 0,
      { DEPLOY_LABELS, { L_STATUS, "exception_status" }, { L_EXC_CLASS, "exception_class" } } },
    { "sluice_deployment_aborted_requests_total",
      "Upstream attempts cut short because the client left",
      T_COUNTER, K_ATT, A_COUNT, ROWS_ABORTED, 0, { DEPLOY_LABELS } },
    { "litellm_llm_api_latency_metric", "Seconds of a successful upstream call",
      T_HISTOGRAM, K_ATT, A_LLM, ROWS_ALL, 0,
      { KEY_LABELS, { L_MODEL, "model" }, { L_REQUESTED_MODEL, "requested_model" },
        { L_USER, "user" }, { L_MODEL_ID, "model_id" } } },
    { "litellm_llm_api_time_to_first_token_metric",
      "Seconds from a streamed upstream call to its first byte",
      T_HISTOGRAM, K_ATT, A_TTFT, ROWS_ALL, 0,
      { KEY_LABELS, { L_MODEL, "model" }, { L_REQUESTED_MODEL, "requested_model" },
        { L_USER, "user" }, { L_MODEL_ID, "model_id" } } },
    { "litellm_deployment_cooled_down_total", "Cooldowns a deployment was put in",
      T_COUNTER, K_COOL, 0, ROWS_ALL, 0,
      { { L_MODEL, "litellm_model_name" }, { L_MODEL_ID, "model_id" }, { L_API_BASE, "api_base" },
        { L_API_PROVIDER, "api_provider" }, { L_STATUS, "exception_status" } } },
    { "litellm_deployment_successful_fallbacks_total",
      "Requests that fell back to another model group and succeeded there",
      T_COUNTER, K_FB, FB_OK, ROWS_ALL, 0,
      { FALLBACK_LABELS } },
    { "litellm_deployment_failed_fallbacks_total",
      "Requests that fell back to another model group and failed there too",
      T_COUNTER, K_FB, FB_FAIL, ROWS_ALL, 0,
      { FALLBACK_LABELS } },
    { "sluice_rejections_total",
      "Requests refused at admission by a rate limit or a budget, by reason and scope",
      T_COUNTER, K_REJ, 0, ROWS_ALL, 0,
      { { L_X1, "reason" }, { L_X2, "scope" }, KEY_LABELS,
        { L_REQUESTED_MODEL, "requested_model" } } },
    { "litellm_guardrail_requests_total", "Guardrail runs, by outcome",
      T_COUNTER, K_GUARD, G_COUNT, ROWS_ALL, 0,
      { { L_X1, "guardrail_name" }, { L_X2, "status" }, { L_X3, "hook_type" } } },
    { "litellm_guardrail_latency_seconds", "Seconds a guardrail took on a request",
      T_HISTOGRAM, K_GUARD, G_LAT, ROWS_ALL, 0,
      { { L_X1, "guardrail_name" }, { L_X2, "status" }, { L_X3, "hook_type" } } },
    { "sluice_http_requests_total", "Every request the gateway answered, by route and status",
      T_COUNTER, K_HTTP, 0, ROWS_ALL, 0, { { L_ROUTE, "route" }, { L_STATUS, "status_code" } } },
    { "sluice_callback_events_sent_total", "Events a callback delivered",
      T_COUNTER, K_CB, C_SENT, ROWS_ALL, 0, { { L_X1, "callback_name" } } },
    { "sluice_callback_events_dropped_total",
      "Events a callback dropped: its queue was full or its sink did not take them",
      T_COUNTER, K_CB, C_DROPPED, ROWS_ALL, 0, { { L_X1, "callback_name" } } },
    { "litellm_callback_logging_failures_metric_total", "Deliveries a callback's sink refused",
      T_COUNTER, K_CB, C_FAILED, ROWS_ALL, 0, { { L_X1, "callback_name" } } },
};

/* The labels of a ready slot, split. */
static void unpack(const struct mslot *s, const char *v[NL])
{
    const char *p = (const char *)&words[s->off], *end = p + s->len;

    for (int i = 0; i < NL; i++) {
        v[i] = p < end ? p : "";
        p += p < end ? strnlen(p, (size_t)(end - p)) + 1 : 0;
    }
}

static int row_wanted(const struct family *f, const char *v[NL])
{
    switch (f->where) {
    case ROWS_FAILED: return v[L_EXC_CLASS][0] != '\0';
    case ROWS_OK: return v[L_EXC_CLASS][0] == '\0' && v[L_X1][0] == '\0';
    case ROWS_EXC: return v[L_EXC_CLASS][0] != '\0';
    case ROWS_ABORTED: return strcmp(v[L_X1], "aborted") == 0;
    default: return 1;
    }
}

static int put_escaped(struct sl_buf *b, const char *s)
{
    int rc = SL_OK;

    for (; *s && rc == SL_OK; s++) {
        const char *start = s;

        while (*s && *s != '\\' && *s != '"' && *s != '\n')
            s++;
        if (s > start && (rc = sl_buf_append(b, start, (size_t)(s - start))) != SL_OK)
            return rc;
        if (*s == '\0')
            break;
        rc = sl_buf_puts(b, *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : "\\n");
    }
    return rc;
}

/* The series of one family: labels text -> summed values. */
struct series {
    char *labels;                /* `a="x",b="y"` (malloc) */
    uint64_t h;
    uint64_t *v;                 /* width words */
};

struct agg {
    struct series *t;
    size_t cap, n;
    unsigned width;
    uint64_t *pool;              /* cap * width words */
};

static int agg_init(struct agg *a, size_t rows, unsigned width)
{
    a->cap = 16;
    while (a->cap < rows * 2)
        a->cap <<= 1;
    a->n = 0;
    a->width = width;
    a->t = calloc(a->cap, sizeof(*a->t));
    a->pool = calloc(a->cap * width, sizeof(uint64_t));
    return a->t != NULL && a->pool != NULL ? SL_OK : SL_ERR_NOMEM;
}

static void agg_free(struct agg *a)
{
    for (size_t i = 0; a->t != NULL && i < a->cap; i++)
        free(a->t[i].labels);
    free(a->t);
    free(a->pool);
}

static uint64_t *agg_get(struct agg *a, const char *labels, size_t len)
{
    uint64_t h = hash_of(0, labels, len);
    size_t i = (size_t)h & (a->cap - 1);

    for (;; i = (i + 1) & (a->cap - 1)) {
        struct series *s = &a->t[i];

        if (s->labels == NULL) {
            if ((s->labels = malloc(len + 1)) == NULL)
                return NULL;
            memcpy(s->labels, labels, len);
            s->labels[len] = '\0';
            s->h = h;
            s->v = &a->pool[i * a->width];
            a->n++;
            return s->v;
        }
        if (s->h == h && strcmp(s->labels, labels) == 0)
            return s->v;
    }
}

static int sample(struct sl_buf *b, const char *name, const char *suffix, const char *labels,
                  const char *extra, const char *value)
{
    int rc = sl_buf_printf(b, "%s%s", name, suffix);

    if (rc == SL_OK && (labels[0] || extra))
        rc = sl_buf_printf(b, "{%s%s%s}", labels, labels[0] && extra ? "," : "", extra ? extra : "");
    return rc == SL_OK ? sl_buf_printf(b, " %s\n", value) : rc;
}

/* Go's (and prometheus_client's) way of writing a bound: 1.0, 0.005. */
static void le_text(double v, char out[32])
{
    if (v == (double)(long long)v)
        snprintf(out, 32, "%.1f", v);
    else
        snprintf(out, 32, "%g", v);
}

static int emit_family(struct sl_buf *b, const struct family *f, size_t rows)
{
    unsigned width = f->type == T_HISTOGRAM ? HW : 1;
    size_t name_len = strlen(f->name);
    char base[96], lt[PACK_MAX * 3 + 256], num[64];
    struct agg a;
    int rc;

    /* a histogram's series are name_bucket, _sum, _count */
    snprintf(base, sizeof(base), "%s", f->name);
    if (f->type == T_COUNTER && name_len > 6 && strcmp(f->name + name_len - 6, "_total") == 0)
        base[name_len - 6] = '\0';
    if ((rc = agg_init(&a, rows + 1, width)) != SL_OK)
        return rc;
    for (unsigned i = 0; i < M_SLOTS + NK && rc == SL_OK; i++) {
        const char *v[NL];
        const uint64_t *vals;
        uint64_t *sum;
        struct sl_buf lb;
        int any = 0;

        if (i < M_SLOTS) {
            const struct mslot *s = &slots[i];

            if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != S_READY || s->kind != (uint32_t)f->kind)
                continue;
            unpack(s, v);
            vals = values_of(s);
        } else {
            if ((int)(i - M_SLOTS) != f->kind)
                continue;
            for (int j = 0; j < NL; j++)
                v[j] = "";
            vals = &words[head->spare_off[f->kind]];
        }
        if (!row_wanted(f, v))
            continue;
        for (unsigned w = 0; w < width; w++)
            any |= __atomic_load_n(&vals[f->at + (int)w], __ATOMIC_RELAXED) != 0;
        if (!any)
            continue;
        sl_buf_init(&lb, sizeof(lt));
        for (int j = 0; j < (int)(sizeof(f->labels) / sizeof(f->labels[0])) &&
                        f->labels[j].name != NULL && rc == SL_OK; j++) {
            rc = sl_buf_printf(&lb, "%s%s=\"", j ? "," : "", f->labels[j].name);
            if (rc == SL_OK)
                rc = put_escaped(&lb, v[f->labels[j].slot]);
            if (rc == SL_OK)
                rc = sl_buf_puts(&lb, "\"");
        }
        if (rc == SL_OK && (sum = agg_get(&a, lb.data ? lb.data : "", lb.len)) == NULL)
            rc = SL_ERR_NOMEM;
        if (rc == SL_OK)
            for (unsigned w = 0; w < width; w++)
                sum[w] += __atomic_load_n(&vals[f->at + (int)w], __ATOMIC_RELAXED);
        sl_buf_free(&lb);
    }
    if (rc == SL_OK)
        rc = sl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                           f->type == T_HISTOGRAM ? "histogram" : "counter");
    for (size_t i = 0; i < a.cap && rc == SL_OK; i++) {
        const struct series *s = &a.t[i];

        if (s->labels == NULL)
            continue;
        if (f->type == T_COUNTER) {
            if (f->scale != 0)
                snprintf(num, sizeof(num), "%.10g", (double)s->v[0] * f->scale);
            else
                snprintf(num, sizeof(num), "%llu", (unsigned long long)s->v[0]);
            rc = sample(b, f->name, "", s->labels, NULL, num);
            continue;
        }
        {
            unsigned long long cum = 0;
            char le[48], bound[32];

            for (int k = 0; k < NB && rc == SL_OK; k++) {
                cum += s->v[k];
                if (k < NB - 1)
                    le_text(bucket_s[k], bound);
                snprintf(le, sizeof(le), "le=\"%s\"", k < NB - 1 ? bound : "+Inf");
                snprintf(num, sizeof(num), "%llu", cum);
                rc = sample(b, base, "_bucket", s->labels, le, num);
            }
            snprintf(num, sizeof(num), "%.6f", (double)s->v[NB] / 1e6);
            if (rc == SL_OK)
                rc = sample(b, base, "_sum", s->labels, NULL, num);
            snprintf(num, sizeof(num), "%llu", cum);
            if (rc == SL_OK)
                rc = sample(b, base, "_count", s->labels, NULL, num);
        }
    }
    agg_free(&a);
    return rc;
}

int sl_metrics_render(struct sl_buf *out)
{
    size_t rows[NK] = { 0 };
    unsigned long long in_flight = 0, procs = 0;
    int rc = SL_OK;

    if (!ready())
        return SL_OK;
    for (unsigned i = 0; i < M_SLOTS; i++)
        if (__atomic_load_n(&slots[i].state, __ATOMIC_ACQUIRE) == S_READY && slots[i].kind < NK)
            rows[slots[i].kind]++;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]) && rc == SL_OK; f++)
        rc = emit_family(out, &families[f], rows[families[f].kind]);
    for (unsigned i = 0; i < M_PROCS; i++) {
        int32_t pid = __atomic_load_n(&head->proc[i].pid, __ATOMIC_ACQUIRE);

        if (pid != 0 && alive(pid)) {
            procs++;
            in_flight += __atomic_load_n(&head->proc[i].in_flight, __ATOMIC_RELAXED);
        }
    }
    if (rc == SL_OK)
        rc = sl_buf_printf(out,
            "# HELP litellm_in_flight_requests Requests in progress in the gateway's processes\n"
            "# TYPE litellm_in_flight_requests gauge\nlitellm_in_flight_requests %llu\n"
            "# HELP sluice_processes sluice processes of this host counting into these metrics\n"
            "# TYPE sluice_processes gauge\nsluice_processes %llu\n"
            "# HELP sluice_metrics_overflow_total Updates counted without their labels: the "
            "metrics table was full\n"
            "# TYPE sluice_metrics_overflow_total counter\nsluice_metrics_overflow_total %llu\n",
            in_flight, procs,
            (unsigned long long)__atomic_load_n(&head->overflow, __ATOMIC_RELAXED));
    return rc;
}

/* ---- GET /metrics ------------------------------------------------------------------ */

int sl_metrics_addr_allowed(const struct sl_config *cfg, const char *addr)
{
    unsigned char a[16];
    int family;

    if (addr == NULL || cfg->n_metrics_nets == 0)
        return 0;
    if (inet_pton(AF_INET, addr, a) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, addr, a) == 1)
        family = AF_INET6;
    else
        return 0;
    for (size_t i = 0; i < cfg->n_metrics_nets; i++) {
        const struct sl_net *n = &cfg->metrics_nets[i];
        int full = n->bits / 8, rest = n->bits % 8;

        if (n->family != family || memcmp(a, n->addr, (size_t)full) != 0)
            continue;
        if (rest == 0 || ((a[full] ^ n->addr[full]) & (0xff << (8 - rest))) == 0)
            return 1;
    }
    return 0;
}

int sl_metrics_serve(struct sl_request *req)
{
    const struct sl_config *cfg = req->cfg;
    struct sl_buf b;
    int rc;

    if (!cfg->metrics) {
        req->err_msg = "Metrics are turned off (sluice_settings.metrics: false).";
        return SL_ERR_NOT_FOUND;
    }
    if (cfg->metrics_require_auth &&
        !sl_metrics_addr_allowed(cfg, req->conn.ops->param(req->conn.ctx, "REMOTE_ADDR"))) {
        if ((rc = sl_auth_check(req)) != SL_OK)
            return rc;
        if (req->principal.role != SL_ROLE_ADMIN) {
            req->err_msg = "Only the master key may read /metrics (or an address in "
                           "sluice_settings.metrics_allowed_ips).";
            return SL_ERR_FORBIDDEN;
        }
    }
    sl_buf_init(&b, 64u << 20);
    if ((rc = sl_metrics_render(&b)) == SL_OK)
        rc = sl_respond_raw(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                            b.data ? b.data : "", b.len);
    sl_buf_free(&b);
    return rc;
}

/* Sinks of events and spans (see export.h): the record of a request, the
 * bounded queue and thread of each sink, and the three wire formats. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>

#include "auth.h"
#include "buf.h"
#include "cache.h"
#include "config.h"
#include "export.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "respond.h"
#include "router.h"
#include "spend.h"
#include "status.h"
#include "trace.h"

#define MAX_SINKS 8
#define TEXT_MAX 256             /* bytes kept of any one string */
#define MAX_BATCH 10000          /* sluice_settings.callback_batch_size's ceiling */
#define SINK_NICE 19             /* the sinks' threads yield to the request threads */

/* ---- the record of a request --------------------------------------------------- */

struct rec_attempt {
    const char *model_id, *group, *model, *provider, *api_base;
    long long t0_ns, t1_ns, ttfb_ns;     /* Unix time */
    int status, aborted;
    const char *error_class;             /* static; NULL: success */
    unsigned char span_id[8];
};

struct rec {
    int refs;                            /* atomic: one per queue holding it */
    int success;                         /* the call succeeded */
    struct sl_trace trace;               /* tracestate not kept */
    const char *request_id, *method, *route, *operation, *call_type;
    const char *error_class;             /* static; NULL: success */
    int http_status, stream, cache_hit;  /* cache_hit: -1 the cache was not used */
    const char *model, *model_group, *upstream_model, *model_id, *provider, *api_base;
    const char *key_hash, *key_alias, *team_id, *user_id, *end_user;
    long long prompt, completion, total, cached;
    double cost;
    int cost_known;
    long long start_ns, end_ns, first_token_ns;
    int n_attempts;
    struct rec_attempt at[SL_MAX_ATTEMPTS];
    char text[];                         /* the strings above */
};

/* Strings go into the record's tail: a first pass measures (p == NULL). */
struct packer {
    char *p;
    size_t n;
};

static const char *keep(struct packer *k, const char *s)
{
    size_t len;
    char *out;

    if (s == NULL)
        return NULL;
    len = strnlen(s, TEXT_MAX + 1);
    if (len > TEXT_MAX) {
        len = TEXT_MAX;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
            len--;
    }
    out = k->p ? k->p + k->n : NULL;
    if (out != NULL) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    k->n += len + 1;
    return out;
}

static long long real_ns(long long mono_us, long long offset_ns)
{
    return mono_us > 0 ? mono_us * 1000 + offset_ns : 0;
}

/* Fills r's strings through k (a measuring pass when k->p is NULL). */
static void fill(struct rec *r, struct packer *k, const struct sl_request *req)
{
    const struct sl_deployment *d = req->dep;
    const struct sl_key *key = req->principal.key;
    int n = req->n_attempts < SL_MAX_ATTEMPTS ? req->n_attempts : SL_MAX_ATTEMPTS;

    r->request_id = keep(k, req->id);
    r->method = keep(k, req->method);
    r->model = keep(k, req->model);
    r->model_group = keep(k, req->route.first ? sl_router_group_name(req->route.first) : NULL);
    if (d != NULL) {
        r->upstream_model = keep(k, d->upstream_model);
        r->model_id = keep(k, d->id);
        r->provider = keep(k, d->provider ? d->provider->name : NULL);
        r->api_base = keep(k, d->shown_api_base);
    }
    if (req->principal.role == SL_ROLE_KEY)
        r->key_hash = keep(k, req->principal.key_hash);
    if (key != NULL) {
        r->key_alias = keep(k, key->key_alias);
        r->team_id = keep(k, key->team_id);
        r->user_id = keep(k, key->user_id);
    }
    if (req->principal.user != NULL)
        r->user_id = keep(k, req->principal.user->user_id);
    if (req->in != NULL)
        r->end_user = keep(k, json_string_value(json_object_get(req->in, "user")));
    for (int i = 0; i < n; i++) {
        const struct sl_attempt *a = &req->attempts[i];
        struct rec_attempt *o = &r->at[i];

        o->group = keep(k, a->group);
        if (a->dep != NULL) {
            o->model_id = keep(k, a->dep->id);
            o->model = keep(k, a->dep->upstream_model);
            o->provider = keep(k, a->dep->provider ? a->dep->provider->name : NULL);
            o->api_base = keep(k, a->dep->shown_api_base);
        }
    }
}

static const char *operation_of(const struct sl_request *req)
{
    /* gen_ai.operation.name: the semantic conventions' names, else the route's */
    switch (req->endpoint) {
    case SL_EP_EMBEDDINGS: return "embeddings";
    case SL_EP_RERANK: return "rerank";
    case SL_EP_MODERATIONS: return "moderation";
    case SL_EP_IMAGES: return "image_generation";
    case SL_EP_SPEECH: return "speech";
    case SL_EP_TRANSCRIPTIONS: return "transcription";
    default: return req->legacy ? "text_completion" : "chat";
    }
}

static struct rec *make_rec(const struct sl_request *req)
{
    struct packer k = { NULL, 0 };
    struct rec probe, *r;
    struct timespec rt;
    long long offset, now_us = sl_now_us();
    int n = req->n_attempts < SL_MAX_ATTEMPTS ? req->n_attempts : SL_MAX_ATTEMPTS;

    memset(&probe, 0, sizeof(probe));
    fill(&probe, &k, req);
    if ((r = calloc(1, sizeof(*r) + k.n)) == NULL)
        return NULL;
    k.p = r->text;
    k.n = 0;
    fill(r, &k, req);
    clock_gettime(CLOCK_REALTIME, &rt);
    offset = (long long)rt.tv_sec * 1000000000LL + rt.tv_nsec - now_us * 1000;
    r->refs = 0;
    r->trace = req->trace;
    r->trace.tracestate = NULL;
    r->route = req->route_label ? req->route_label : "other";   /* static */
    r->operation = operation_of(req);
    r->call_type = sl_request_call_type(req);
    r->error_class = sl_request_error_class(req);
    r->success = r->error_class == NULL;
    r->http_status = req->http_status;
    r->stream = req->stream;
    r->cache_hit = sl_cache_key_of(req) != NULL ? sl_cache_was_hit(req) : -1;
    r->prompt = req->usage.prompt_tokens;
    r->completion = req->usage.completion_tokens;
    r->total = req->usage.total_tokens ? req->usage.total_tokens : r->prompt + r->completion;
    r->cached = req->usage.cached_tokens;
    r->cost = req->cost;
    r->cost_known = req->cost_known;
    r->start_ns = real_ns(req->t_start_us, offset);
    r->end_ns = real_ns(now_us, offset);
    r->first_token_ns = real_ns(req->t_first_byte_us, offset);
    r->n_attempts = n;
    for (int i = 0; i < n; i++) {
        const struct sl_attempt *a = &req->attempts[i];
        struct rec_attempt *o = &r->at[i];

        o->t0_ns = real_ns(a->t0_us, offset);
        o->t1_ns = real_ns(a->t1_us ? a->t1_us : now_us, offset);
        o->ttfb_ns = real_ns(a->ttfb_us, offset);
        o->status = a->status;
        o->aborted = a->aborted;
        o->error_class = sl_attempt_error_class(a);
        memcpy(o->span_id, a->span_id, sizeof(o->span_id));
    }
    return r;
}

static void rec_unref(struct rec *r)
{
    if (r != NULL && __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(r);
}

/* ---- sinks ------------------------------------------------------------------------ */

/* A sink's settings as copied from a config (configs come and go). */
struct settings {
    int refs;                    /* under the sink's lock */
    int type, format;
    char *url, *service_name;
    struct curl_slist *headers;
    int batch;
    long flush_ms, timeout_ms;
};

/* A sink's queue is a bounded ring that request threads fill without a
 * lock (D. Vyukov's bounded queue: a sequence number per cell), so no
 * request ever waits for the sink's thread, which runs at a low priority
 * and may be off the CPU at any moment. The thread is woken when the ring
 * stops being empty; the mutex and condition serve that wake-up alone. */
struct cell {
    size_t seq;
    struct rec *r;
};

struct sink {
    pthread_mutex_t lock;        /* the wake-up, and set */
    pthread_cond_t cond;
    char name[64];
    unsigned long long digest;   /* of the settings in force */
    struct settings *set;
    struct cell *ring;           /* cap cells */
    size_t cap;
    size_t tail;                 /* atomic: the next cell to fill */
    size_t head;                 /* the next cell to take (the thread's alone) */
    int sleeping;                /* atomic: the thread waits for the ring to fill */
    pthread_t thread;
    int running, stop;
    long long warned_us;         /* the last delivery failure logged */
};

static struct sink sinks[MAX_SINKS];
static int n_sinks;
static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER;

static void settings_unref(struct settings *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    curl_slist_free_all(s->headers);
    free(s->url);
    free(s->service_name);
    free(s);
}

static struct settings *settings_of(const struct sl_config *cfg, const struct sl_sink *k)
{
    struct settings *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->refs = 1;
    s->type = k->type;
    s->format = k->format;
    s->batch = cfg->callback_batch_size;
    s->flush_ms = cfg->callback_flush_ms;
    s->timeout_ms = cfg->callback_timeout_ms;
    s->url = strdup(k->url);
    s->service_name = k->service_name ? strdup(k->service_name) : NULL;
    for (size_t i = 0; i < k->n_headers; i++) {
        struct curl_slist *h = curl_slist_append(s->headers, k->headers[i]);

        if (h == NULL)
            break;
        s->headers = h;
    }
    {
        struct curl_slist *h = curl_slist_append(s->headers, k->type == SL_SINK_WEBHOOK &&
                                                 k->format == SL_SINK_NDJSON
                                                 ? "Content-Type: application/x-ndjson"
                                                 : "Content-Type: application/json");

        if (h != NULL)
            s->headers = h;
        if (h != NULL && (h = curl_slist_append(s->headers, "Expect:")) != NULL)
            s->headers = h;
    }
    if (s->url == NULL || (k->service_name && s->service_name == NULL)) {
        settings_unref(s);
        return NULL;
    }
    return s;
}

/* The sink called name among the first n (published) ones, or NULL. A
 * sink's name never changes once it is published: no lock. */
static struct sink *find_sink(const char *name, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(sinks[i].name, name) == 0)
            return &sinks[i];
    return NULL;
}

/* Under the registry lock: the sink for k, made and published (n_sinks
 * stored last) if there is none yet. NULL when they are all taken or on OOM. */
static struct sink *make_sink(const struct sl_config *cfg, const struct sl_sink *k)
{
    struct sink *s = find_sink(k->name, n_sinks);

    if (s != NULL || n_sinks >= MAX_SINKS)
        return s;
    s = &sinks[n_sinks];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", k->name);
    s->cap = (size_t)cfg->callback_queue_size;
    if ((s->ring = calloc(s->cap, sizeof(*s->ring))) == NULL)
        return NULL;
    for (size_t c = 0; c < s->cap; c++)
        s->ring[c].seq = c;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    __atomic_store_n(&n_sinks, n_sinks + 1, __ATOMIC_RELEASE);
    return s;
}

static void *run(void *arg);

/* The sink for config sink k, made (and its thread started) on first use,
 * its settings renewed when k's differ. NULL when none can be had. */
static struct sink *sink_for(const struct sl_config *cfg, const struct sl_sink *k)
{
    struct sink *s = find_sink(k->name, __atomic_load_n(&n_sinks, __ATOMIC_ACQUIRE));

    if (s == NULL) {
        pthread_mutex_lock(&registry);
        s = make_sink(cfg, k);
        pthread_mutex_unlock(&registry);
    }
    if (s == NULL || __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
        return NULL;
    if (__atomic_load_n(&s->digest, __ATOMIC_ACQUIRE) != k->digest) {
        struct settings *fresh = settings_of(cfg, k), *old;

        if (fresh == NULL)
            return NULL;
        pthread_mutex_lock(&s->lock);
        old = s->set;
        s->set = fresh;
        __atomic_store_n(&s->digest, k->digest, __ATOMIC_RELEASE);
        settings_unref(old);
        if (!s->running) {
            pthread_attr_t a;

            pthread_attr_init(&a);
            pthread_attr_setstacksize(&a, 256 * 1024);
            s->running = pthread_create(&s->thread, &a, run, s) == 0;
            pthread_attr_destroy(&a);
        }
        pthread_mutex_unlock(&s->lock);
    }
    return s->running ? s : NULL;
}

/* Puts r in s's ring; 0, or -1 when the ring is full. */
static int ring_put(struct sink *s, struct rec *r)
{
    size_t pos = __atomic_load_n(&s->tail, __ATOMIC_RELAXED);
    struct cell *c;

    for (;;) {
        size_t seq;
        long diff;

        c = &s->ring[pos % s->cap];
        seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        diff = (long)(seq - pos);
        if (diff == 0) {
            if (__atomic_compare_exchange_n(&s->tail, &pos, pos + 1, 1, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
                break;
        } else if (diff < 0) {
            return -1;                       /* full */
        } else {
            pos = __atomic_load_n(&s->tail, __ATOMIC_RELAXED);
        }
    }
    c->r = r;
    __atomic_store_n(&c->seq, pos + 1, __ATOMIC_RELEASE);
    return 0;
}

/* Whether the ring holds a record (the sink's thread alone). */
static int ring_ready(const struct sink *s)
{
    return __atomic_load_n(&s->ring[s->head % s->cap].seq, __ATOMIC_ACQUIRE) == s->head + 1;
}

/* The oldest record of the ring, or NULL (the sink's thread alone, or
 * whoever stopped it). */
static struct rec *ring_take(struct sink *s)
{
    struct cell *c = &s->ring[s->head % s->cap];
    struct rec *r;

    if (__atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) != s->head + 1)
        return NULL;
    r = c->r;
    __atomic_store_n(&c->seq, s->head + s->cap, __ATOMIC_RELEASE);
    s->head++;
    return r;
}

static void enqueue(struct sink *s, struct rec *r)
{
    __atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) || ring_put(s, r) != 0) {
        __atomic_sub_fetch(&r->refs, 1, __ATOMIC_RELAXED);
        sl_metrics_callback(s->name, SL_METRICS_CB_DROPPED, 1);
        return;
    }
    /* Wake the thread if it sleeps; if its lock is taken, it is awake. */
    if (__atomic_load_n(&s->sleeping, __ATOMIC_ACQUIRE) && pthread_mutex_trylock(&s->lock) == 0) {
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
}

void sl_export_request(const struct sl_request *req)
{
    const struct sl_config *cfg = req->cfg;
    struct sink *want[MAX_SINKS];
    struct rec *r;
    int n = 0, success, traced;

    if (cfg == NULL || cfg->n_sinks == 0 || !sl_request_is_llm_call(req))
        return;
    success = req->http_status < 400 && req->error == SL_OK;
    traced = (req->trace.flags & 1) != 0;
    for (size_t i = 0; i < cfg->n_sinks && n < MAX_SINKS; i++) {
        const struct sl_sink *k = &cfg->sinks[i];
        struct sink *s;

        if (k->type == SL_SINK_OTLP ? !traced
            : req->principal.role == SL_ROLE_NONE || !(success ? k->success : k->failure))
            continue;
        if ((s = sink_for(cfg, k)) != NULL)
            want[n++] = s;
    }
    if (n == 0)
        return;
    if ((r = make_rec(req)) == NULL) {
        for (int i = 0; i < n; i++)
            sl_metrics_callback(want[i]->name, SL_METRICS_CB_DROPPED, 1);
        return;
    }
    r->refs = 1;                 /* ours, until every queue has its own */
    for (int i = 0; i < n; i++)
        enqueue(want[i], r);
    rec_unref(r);
}

/* ---- the wire formats ------------------------------------------------------------- */

/* Events are written as JSON text into one buffer per batch: a Jansson tree
 * per event would cost more than the rest of the request. Keys are
 * literals; values go through sl_json_put_str (strings) or are numbers. */
struct jw {
    struct sl_buf *b;
    int rc;
};

static void put(struct jw *w, const char *s, size_t n)
{
    struct sl_buf *b = w->b;

    if (b->len + n < b->size) {          /* the common case: room, no call */
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
    } else if (w->rc == SL_OK) {
        w->rc = sl_buf_append(b, s, n);
    }
}

/* A string literal: its length is known at compile time. */
#define LIT(w, s) put((w), "" s, sizeof(s) - 1)

static void lit(struct jw *w, const char *s)
{
    put(w, s, strlen(s));
}

static void str(struct jw *w, const char *s)
{
    if (w->rc == SL_OK)
        w->rc = sl_json_put_str(w->b, s);
}

/* Decimal digits of v, without printf (this runs for every number of every
 * event). */
static void num(struct jw *w, long long v)
{
    char t[24], *p = t + sizeof(t);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    put(w, p, (size_t)(t + sizeof(t) - p));
}

/* v / 10^places with that many decimals, v >= 0 (seconds from µs, USD from
 * 1e-10 units): exact, and without printf. */
static void fixed(struct jw *w, long long v, int places)
{
    long long scale = 1;
    char frac[20];

    if (v < 0)
        v = 0;
    for (int i = 0; i < places; i++)
        scale *= 10;
    num(w, v / scale);
    v %= scale;
    for (int i = places - 1; i >= 0; i--, v /= 10)
        frac[i] = (char)('0' + v % 10);
    LIT(w, ".");
    put(w, frac, (size_t)places);
}

/* Unix (or elapsed) nanoseconds as seconds with six decimals. */
static void secs_of(struct jw *w, long long ns)
{
    fixed(w, ns / 1000, 6);
}

/* USD to ten decimals (the spend log's precision). */
static void usd(struct jw *w, double v)
{
    fixed(w, sl_spend_units(isfinite(v) ? v : 0), 10);
}

static void key_put(struct jw *w, int *n, const char *k, size_t len)
{
    if ((*n)++)
        LIT(w, ",");
    put(w, k, len);
}

/* "name": as one literal, after a comma unless it is the first. */
#define key(w, n, name) key_put((w), (n), "\"" name "\":", sizeof("\"" name "\":") - 1)

/* LiteLLM's StandardLoggingPayload, the fields sluice has. */
static void payload(struct jw *w, const struct rec *r)
{
    char tid[33], st[8];
    int n = 0, m = 0;

    sl_trace_hex(r->trace.trace_id, 16, tid);
    LIT(w, "{");
    key(w, &n, "id"); str(w, r->request_id);
    key(w, &n, "trace_id"); str(w, tid);
    key(w, &n, "call_type"); str(w, r->call_type);
    key(w, &n, "stream"); lit(w, r->stream ? "true" : "false");
    key(w, &n, "status"); str(w, r->success ? "success" : "failure");
    key(w, &n, "response_cost"); usd(w, r->cost_known ? r->cost : 0);
    key(w, &n, "prompt_tokens"); num(w, r->prompt);
    key(w, &n, "completion_tokens"); num(w, r->completion);
    key(w, &n, "total_tokens"); num(w, r->total);
    key(w, &n, "startTime"); secs_of(w, r->start_ns);
    key(w, &n, "endTime"); secs_of(w, r->end_ns);
    key(w, &n, "completionStartTime"); secs_of(w, r->first_token_ns ? r->first_token_ns : r->end_ns);
    key(w, &n, "response_time"); secs_of(w, r->end_ns - r->start_ns);
    key(w, &n, "model"); str(w, r->upstream_model ? r->upstream_model : r->model);
    key(w, &n, "model_group"); str(w, r->model_group);
    key(w, &n, "requested_model"); str(w, r->model);
    key(w, &n, "model_id"); str(w, r->model_id);
    key(w, &n, "custom_llm_provider"); str(w, r->provider);
    key(w, &n, "api_base"); str(w, r->api_base ? r->api_base : "");
    key(w, &n, "cache_hit"); lit(w, r->cache_hit < 0 ? "null" : r->cache_hit ? "true" : "false");
    key(w, &n, "end_user"); str(w, r->end_user ? r->end_user : "");
    key(w, &n, "metadata"); LIT(w, "{");
    key(w, &m, "user_api_key_hash"); str(w, r->key_hash);
    key(w, &m, "user_api_key_alias"); str(w, r->key_alias);
    key(w, &m, "user_api_key_team_id"); str(w, r->team_id);
    key(w, &m, "user_api_key_user_id"); str(w, r->user_id);
    LIT(w, "}");
    if (!r->success) {
        snprintf(st, sizeof(st), "%d", r->http_status);
        key(w, &n, "error_information");
        LIT(w, "{\"error_code\":");
        str(w, st);
        LIT(w, ",\"error_class\":");
        str(w, r->error_class);
        LIT(w, "}");
    }
    key(w, &n, "sluice");
    LIT(w, "{\"route\":");
    str(w, r->route);
    LIT(w, ",\"http_status\":");
    num(w, r->http_status);
    LIT(w, ",\"attempts\":[");
    for (int i = 0; i < r->n_attempts; i++) {
        const struct rec_attempt *a = &r->at[i];

        if (i > 0)
            LIT(w, ",");
        LIT(w, "{\"model_id\":");
        str(w, a->model_id);
        LIT(w, ",\"model_group\":");
        str(w, a->group);
        LIT(w, ",\"status\":");
        num(w, a->status);
        LIT(w, ",\"error_class\":");
        str(w, a->aborted ? "ClientDisconnected" : a->error_class);
        LIT(w, ",\"duration_s\":");
        secs_of(w, a->t1_ns - a->t0_ns);
        LIT(w, "}");
    }
    LIT(w, "]}}");
}

static char *iso(long long ns, char out[40])
{
    time_t t = (time_t)(ns / 1000000000LL);
    struct tm tm;
    size_t n;

    gmtime_r(&t, &tm);
    n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06lldZ", (ns % 1000000000LL) / 1000);
    return out;
}

static void langfuse_metadata(struct jw *w, const struct rec *r)
{
    int n = 0;

    LIT(w, "{");
    key(w, &n, "user_api_key_hash"); str(w, r->key_hash);
    key(w, &n, "user_api_key_alias"); str(w, r->key_alias);
    key(w, &n, "user_api_key_team_id"); str(w, r->team_id);
    key(w, &n, "route"); str(w, r->route);
    key(w, &n, "http_status"); num(w, r->http_status);
    LIT(w, "}");
}

/* Langfuse's ingestion events of one call: a trace and its generation. */
static void langfuse_events(struct jw *w, const struct rec *r, int first)
{
    char tid[33], start[40], end[40], ft[40], eid[64];
    int n = 0;

    sl_trace_hex(r->trace.trace_id, 16, tid);
    iso(r->start_ns, start);
    iso(r->end_ns, end);
    iso(r->first_token_ns ? r->first_token_ns : r->end_ns, ft);
    snprintf(eid, sizeof(eid), "%s-t", r->request_id);
    if (!first)
        LIT(w, ",");
    LIT(w, "{\"id\":");
    str(w, eid);
    LIT(w, ",\"timestamp\":");
    str(w, end);
    LIT(w, ",\"type\":\"trace-create\",\"body\":{");
    key(w, &n, "id"); str(w, tid);
    key(w, &n, "timestamp"); str(w, start);
    key(w, &n, "name"); str(w, r->call_type);
    key(w, &n, "userId"); str(w, r->end_user && r->end_user[0] ? r->end_user : r->user_id);
    key(w, &n, "metadata"); langfuse_metadata(w, r);
    n = 0;
    snprintf(eid, sizeof(eid), "%s-g", r->request_id);
    LIT(w, "}},{\"id\":");
    str(w, eid);
    LIT(w, ",\"timestamp\":");
    str(w, end);
    LIT(w, ",\"type\":\"generation-create\",\"body\":{");
    key(w, &n, "id"); str(w, r->request_id);
    key(w, &n, "traceId"); str(w, tid);
    key(w, &n, "name"); str(w, r->call_type);
    key(w, &n, "startTime"); str(w, start);
    key(w, &n, "endTime"); str(w, end);
    key(w, &n, "completionStartTime"); str(w, ft);
    key(w, &n, "model"); str(w, r->upstream_model ? r->upstream_model : r->model);
    key(w, &n, "usage");
    LIT(w, "{\"input\":"); num(w, r->prompt);
    LIT(w, ",\"output\":"); num(w, r->completion);
    LIT(w, ",\"total\":"); num(w, r->total);
    LIT(w, ",\"unit\":\"TOKENS\"}");
    key(w, &n, "usageDetails");
    LIT(w, "{\"input\":"); num(w, r->prompt);
    LIT(w, ",\"output\":"); num(w, r->completion);
    LIT(w, "}");
    if (r->cost_known) {
        key(w, &n, "costDetails");
        LIT(w, "{\"total\":");
        usd(w, r->cost);
        LIT(w, "}");
    }
    key(w, &n, "level"); str(w, r->success ? "DEFAULT" : "ERROR");
    key(w, &n, "statusMessage"); str(w, r->error_class);
    key(w, &n, "metadata"); langfuse_metadata(w, r);
    LIT(w, "}}");
}

/* OTLP/JSON attributes. Each one's head, {"key":K,"value":{"xValue":, is
 * one literal. */
#define ATTR_HEAD(k, type) "{\"key\":\"" k "\",\"value\":{\"" type "\":"

static void attr_s_put(struct jw *w, int *n, const char *head, size_t len, const char *v)
{
    if (v == NULL || v[0] == '\0')
        return;
    if ((*n)++)
        LIT(w, ",");
    put(w, head, len);
    str(w, v);
    LIT(w, "}}");
}

static void attr_i_put(struct jw *w, int *n, const char *head, size_t len, long long v)
{
    if ((*n)++)
        LIT(w, ",");
    put(w, head, len);
    LIT(w, "\"");               /* int64 is a string in OTLP/JSON */
    num(w, v);
    LIT(w, "\"}}");
}

/* A double attribute: USD (usd_v) when ns < 0, else seconds from ns. */
static void attr_d_put(struct jw *w, int *n, const char *head, size_t len, double usd_v, long long ns)
{
    if ((*n)++)
        LIT(w, ",");
    put(w, head, len);
    if (ns < 0)
        usd(w, usd_v);
    else
        secs_of(w, ns);
    LIT(w, "}}");
}

#define attr_s(w, n, k, v) \
    attr_s_put((w), (n), ATTR_HEAD(k, "stringValue"), sizeof(ATTR_HEAD(k, "stringValue")) - 1, (v))
#define attr_i(w, n, k, v) \
    attr_i_put((w), (n), ATTR_HEAD(k, "intValue"), sizeof(ATTR_HEAD(k, "intValue")) - 1, (v))
#define attr_d(w, n, k, usd_v, ns) \
    attr_d_put((w), (n), ATTR_HEAD(k, "doubleValue"), sizeof(ATTR_HEAD(k, "doubleValue")) - 1, \
               (usd_v), (ns))

/* gen_ai.system of a provider (OpenTelemetry's GenAI conventions). */
static const char *genai_system(const char *provider)
{
    static const char *const map[][2] = {
        { "bedrock", "aws.bedrock" }, { "gemini", "gemini" }, { "vertex_ai", "vertex_ai" },
        { "azure", "az.ai.openai" }, { "cohere", "cohere" }, { "anthropic", "anthropic" },
    };

    for (size_t i = 0; provider != NULL && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(provider, map[i][0]) == 0)
            return map[i][1];
    return provider;
}

/* The head of a span (named "name name2"), up to its attributes' bracket. */
static void span_head(struct jw *w, const char *tid, const unsigned char *span_id,
                      const unsigned char *parent, const char *name, const char *name2,
                      int kind, long long t0, long long t1)
{
    char h[17], both[2 * TEXT_MAX + 2];

    LIT(w, "{\"traceId\":\"");
    put(w, tid, 32);
    sl_trace_hex(span_id, 8, h);
    LIT(w, "\",\"spanId\":\"");
    put(w, h, 16);
    LIT(w, "\"");
    if (parent != NULL && memcmp(parent, "\0\0\0\0\0\0\0\0", 8) != 0) {
        sl_trace_hex(parent, 8, h);
        LIT(w, ",\"parentSpanId\":\"");
        put(w, h, 16);
        LIT(w, "\"");
    }
    snprintf(both, sizeof(both), "%s %s", name, name2);
    LIT(w, ",\"name\":");
    str(w, both);
    LIT(w, ",\"kind\":");
    num(w, kind);
    LIT(w, ",\"startTimeUnixNano\":\"");
    num(w, t0);
    LIT(w, "\",\"endTimeUnixNano\":\"");
    num(w, t1 > t0 ? t1 : t0);
    LIT(w, "\",\"attributes\":[");
}

static void span_tail(struct jw *w, const char *error)
{
    LIT(w, "],\"status\":{\"code\":");
    if (error != NULL) {
        LIT(w, "2,\"message\":");
        str(w, error);
    } else {
        LIT(w, "0");
    }
    LIT(w, "}}");
}

/* The request's span and one per upstream attempt. */
static void otlp_spans(struct jw *w, const struct rec *r, int first)
{
    char tid[33];
    int n = 0;

    sl_trace_hex(r->trace.trace_id, 16, tid);
    if (!first)
        LIT(w, ",");
    span_head(w, tid, r->trace.span_id, r->trace.parent_id, r->method ? r->method : "POST",
              r->route, 2, r->start_ns, r->end_ns);
    attr_s(w, &n, "http.request.method", r->method);
    attr_s(w, &n, "http.route", r->route);
    attr_i(w, &n, "http.response.status_code", r->http_status);
    attr_s(w, &n, "sluice.request_id", r->request_id);
    attr_s(w, &n, "gen_ai.operation.name", r->operation);
    attr_s(w, &n, "gen_ai.request.model", r->model);
    attr_s(w, &n, "gen_ai.response.model", r->upstream_model);
    attr_s(w, &n, "gen_ai.system", genai_system(r->provider));
    attr_s(w, &n, "sluice.model_group", r->model_group);
    attr_s(w, &n, "sluice.deployment.id", r->model_id);
    attr_s(w, &n, "sluice.key_alias", r->key_alias);
    attr_s(w, &n, "sluice.team_id", r->team_id);
    attr_s(w, &n, "sluice.user_id", r->user_id);
    attr_i(w, &n, "gen_ai.usage.input_tokens", r->prompt);
    attr_i(w, &n, "gen_ai.usage.output_tokens", r->completion);
    if (r->cost_known)
        attr_d(w, &n, "sluice.cost_usd", r->cost, -1);
    if (r->stream)
        attr_s(w, &n, "sluice.stream", "true");
    attr_s(w, &n, "error.type", r->error_class);
    span_tail(w, r->error_class);
    for (int i = 0; i < r->n_attempts; i++) {
        const struct rec_attempt *t = &r->at[i];
        const char *err = t->aborted ? "ClientDisconnected" : t->error_class;

        n = 0;
        LIT(w, ",");
        span_head(w, tid, t->span_id, r->trace.span_id, r->operation, t->model ? t->model : "", 3,
                  t->t0_ns, t->t1_ns);
        attr_s(w, &n, "gen_ai.operation.name", r->operation);
        attr_s(w, &n, "gen_ai.system", genai_system(t->provider));
        attr_s(w, &n, "gen_ai.request.model", t->model);
        attr_s(w, &n, "sluice.model_group", t->group);
        attr_s(w, &n, "sluice.deployment.id", t->model_id);
        attr_s(w, &n, "server.address", t->api_base);
        if (t->status > 0)
            attr_i(w, &n, "http.response.status_code", t->status);
        if (i == r->n_attempts - 1 && err == NULL) {
            attr_i(w, &n, "gen_ai.usage.input_tokens", r->prompt);
            attr_i(w, &n, "gen_ai.usage.output_tokens", r->completion);
        }
        if (t->ttfb_ns > t->t0_ns)
            attr_d(w, &n, "sluice.time_to_first_byte_s", 0, t->ttfb_ns - t->t0_ns);
        attr_s(w, &n, "error.type", err);
        span_tail(w, err);
    }
}

/* The body of a batch of n records (malloc'd text), or NULL. */
static char *body_of(const struct settings *set, struct rec **recs, size_t n)
{
    struct sl_buf b;
    struct jw w = { &b, SL_OK };

    sl_buf_init(&b, 256u << 20);
    if (set->type == SL_SINK_LANGFUSE) {
        LIT(&w, "{\"batch\":[");
        for (size_t i = 0; i < n; i++)
            langfuse_events(&w, recs[i], i == 0);
        LIT(&w, "],\"metadata\":{\"sdk_name\":\"sluice\"}}");
    } else if (set->type == SL_SINK_OTLP) {
        LIT(&w, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                ATTR_HEAD("service.name", "stringValue"));
        str(&w, set->service_name ? set->service_name : "sluice");
        LIT(&w, "}}," ATTR_HEAD("service.version", "stringValue") "\"" PACKAGE_VERSION "\"}}]},"
                "\"scopeSpans\":[{\"scope\":{\"name\":\"sluice\",\"version\":\"" PACKAGE_VERSION "\"},"
                "\"spans\":[");
        for (size_t i = 0; i < n; i++)
            otlp_spans(&w, recs[i], i == 0);
        LIT(&w, "]}]}]}");
    } else {
        int ndjson = set->format == SL_SINK_NDJSON;

        if (!ndjson)
            LIT(&w, "[");
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                lit(&w, ndjson ? "\n" : ",");
            payload(&w, recs[i]);
        }
        lit(&w, ndjson ? "\n" : "]");
    }
    if (w.rc != SL_OK) {
        sl_buf_free(&b);
        return NULL;
    }
    return b.data;                  /* malloc'd by sl_buf */
}

/* What a delivery came to. */
static size_t write_nothing(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* POSTs body. 0 when the sink took it (2xx), else -1 with why. */
static int post(CURL *e, const struct settings *set, const char *body, char *why, size_t whylen)
{
    long status = 0;
    CURLcode cc;

    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, set->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, set->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, set->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, set->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_nothing);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    cc = curl_easy_perform(e);
    if (cc != CURLE_OK) {
        snprintf(why, whylen, "%s", curl_easy_strerror(cc));
        return -1;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        snprintf(why, whylen, "HTTP %ld", status);
        return -1;
    }
    return 0;
}

/* The host of a URL, for messages (never its path, query or user part). */
static void host_of(const char *url, char *out, size_t size)
{
    const char *h = strstr(url, "://"), *at, *end;

    h = h ? h + 3 : url;
    end = h + strcspn(h, "/?#");
    at = memchr(h, '@', (size_t)(end - h));
    if (at != NULL)
        h = at + 1;
    snprintf(out, size, "%.*s", (int)(end - h), h);
}

static void deliver(struct sink *s, CURL *e, struct settings *set, struct rec **recs, size_t n)
{
    char why[128] = "out of memory", host[128];
    size_t parts = set->type == SL_SINK_WEBHOOK && set->format == SL_SINK_SINGLE ? n : 1;

    for (size_t p = 0; p < parts; p++) {
        size_t k = parts == 1 ? n : 1;
        char *body = body_of(set, recs + p, k);

        if (body != NULL && post(e, set, body, why, sizeof(why)) == 0) {
            sl_metrics_callback(s->name, SL_METRICS_CB_SENT, (long)k);
        } else {
            long long now = sl_now_us();

            sl_metrics_callback(s->name, SL_METRICS_CB_FAILED, 1);
            sl_metrics_callback(s->name, SL_METRICS_CB_DROPPED, (long)k);
            if (now - s->warned_us > 60000000LL) {
                s->warned_us = now;
                host_of(set->url, host, sizeof(host));
                sl_log(SL_LOG_WARN, NULL, "callback %s: %zu event(s) to %s not delivered (%s); "
                       "dropped (this is said once a minute)", s->name, k, host, why);
            }
        }
        free(body);
    }
}

static void *run(void *arg)
{
    struct sink *s = arg;
    CURL *e = curl_easy_init();
    struct rec **batch = malloc(MAX_BATCH * sizeof(*batch)), *r;
    size_t k = 0;
    long long first_us = 0;

    if (batch == NULL) {       /* its ring fills, and what comes is dropped and counted */
        sl_log(SL_LOG_ERROR, NULL, "callback %s: out of memory; its events are dropped", s->name);
        if (e != NULL)
            curl_easy_cleanup(e);
        return NULL;
    }

    /* Requests first: when the CPU is all taken, this thread gets little of
     * it, its ring fills, and events are dropped (and counted) instead of
     * requests slowing down. Linux's nice is per thread. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SINK_NICE) != 0)
        sl_log(SL_LOG_DEBUG, NULL, "callback %s: cannot lower the thread's priority", s->name);
    for (;;) {
        struct settings *set;
        int stop = __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
        size_t cap;

        pthread_mutex_lock(&s->lock);
        set = s->set;
        set->refs++;
        pthread_mutex_unlock(&s->lock);
        cap = set->batch < MAX_BATCH ? (size_t)set->batch : MAX_BATCH;
        /* Fill the batch: take what is there; wait for more until the
         * first event waited flush_ms (or the batch is full). */
        while (k < cap && (r = ring_take(s)) != NULL) {
            if (k++ == 0)
                first_us = sl_now_us();
            batch[k - 1] = r;
        }
        if (k < cap && !stop) {
            long long now = sl_now_us(), wait_us = k == 0 ? 1000000LL
                                                   : first_us + set->flush_ms * 1000LL - now;

            if (wait_us > 0) {
                struct timespec ts = sl_deadline(CLOCK_REALTIME, wait_us);

                pthread_mutex_lock(&s->lock);
                __atomic_store_n(&s->sleeping, 1, __ATOMIC_RELEASE);
                /* (an event put after this check wakes it, or waits wait_us at most) */
                if (!ring_ready(s) && !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
                    pthread_cond_timedwait(&s->cond, &s->lock, &ts);
                __atomic_store_n(&s->sleeping, 0, __ATOMIC_RELEASE);
                settings_unref(set);
                pthread_mutex_unlock(&s->lock);
                continue;
            }
        }
        if (k > 0) {
            if (e != NULL)
                deliver(s, e, set, batch, k);
            else
                sl_metrics_callback(s->name, SL_METRICS_CB_DROPPED, (long)k);
            for (size_t i = 0; i < k; i++)
                rec_unref(batch[i]);
            k = 0;
        }
        pthread_mutex_lock(&s->lock);
        settings_unref(set);
        pthread_mutex_unlock(&s->lock);
        if (stop && !ring_ready(s))
            break;
    }
    free(batch);
    if (e != NULL)
        curl_easy_cleanup(e);
    return NULL;
}

int sl_export_shutdown(long timeout_ms)
{
    struct timespec ts;
    int n, busy = 0;

    pthread_mutex_lock(&registry);
    n = n_sinks;
    pthread_mutex_unlock(&registry);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&sinks[i].lock);
        __atomic_store_n(&sinks[i].stop, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&sinks[i].cond);
        pthread_mutex_unlock(&sinks[i].lock);
    }
    ts = sl_deadline(CLOCK_REALTIME, timeout_ms * 1000LL);
    for (int i = 0; i < n; i++) {
        if (!sinks[i].running)
            continue;
        if (pthread_timedjoin_np(sinks[i].thread, NULL, &ts) != 0) {
            sl_log(SL_LOG_WARN, NULL, "callback %s: still delivering at exit; what waits is lost",
                   sinks[i].name);
            busy = 1;
            continue;
        }
        sinks[i].running = 0;
        {
            struct rec *r;

            while ((r = ring_take(&sinks[i])) != NULL)   /* put after the thread's last look */
                rec_unref(r);
        }
        free(sinks[i].ring);
        sinks[i].ring = NULL;
        settings_unref(sinks[i].set);
        sinks[i].set = NULL;
    }
    return busy ? -1 : 0;
}

/* Sinks of events and spans (see export.h): the record of a request, the
 * bounded queue and thread of each sink, and the three wire formats. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <jansson.h>

#include "auth.h"
#include "buf.h"
#include "cache.h"
#include "config.h"
#include "export.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "respond.h"
#include "router.h"
#include "status.h"
#include "trace.h"

#define MAX_SINKS 8
#define TEXT_MAX 256             /* bytes kept of any one string */

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
    int traced;                          /* spans are wanted (sampled) */
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

static const char *fail_class(int fail, int status)
{
    static const char *const names[] = {
        NULL, "RateLimitError", "InternalServerError", "Timeout", "APIConnectionError",
        "AuthenticationError", "NotFoundError", "BadRequestError",
        "ContextWindowExceededError", "ContentPolicyViolationError"
    };

    if (fail > 0 && fail < (int)(sizeof(names) / sizeof(names[0])))
        return names[fail];
    if (status >= 200 && status <= 299)
        return NULL;
    return status == 429 ? "RateLimitError" : status >= 500 ? "InternalServerError"
           : status >= 400 ? "BadRequestError" : "APIError";
}

/* Fills r's strings through k (a measuring pass when k->p is NULL). */
static void fill(struct rec *r, struct packer *k, const struct sl_request *req)
{
    const struct sl_deployment *d = req->dep;
    const struct sl_key *key = req->principal.key;
    int n = req->n_attempts < SL_MAX_ATTEMPTS ? req->n_attempts : SL_MAX_ATTEMPTS;
    char safe[TEXT_MAX + 1];

    r->request_id = keep(k, req->id);
    r->method = keep(k, req->method);
    r->model = keep(k, req->model);
    r->model_group = keep(k, req->route.first ? sl_router_group_name(req->route.first) : NULL);
    if (d != NULL) {
        const char *b = d->api_base ? d->api_base : d->provider ? d->provider->default_api_base : NULL;

        r->upstream_model = keep(k, d->upstream_model);
        r->model_id = keep(k, d->id);
        r->provider = keep(k, d->provider ? d->provider->name : NULL);
        if (b != NULL && strlen(b) <= TEXT_MAX) {
            sl_safe_url(b, safe);
            r->api_base = keep(k, safe);
        }
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
            const char *b = a->dep->api_base ? a->dep->api_base
                            : a->dep->provider ? a->dep->provider->default_api_base : NULL;

            o->model_id = keep(k, a->dep->id);
            o->model = keep(k, a->dep->upstream_model);
            o->provider = keep(k, a->dep->provider ? a->dep->provider->name : NULL);
            if (b != NULL && strlen(b) <= TEXT_MAX) {
                sl_safe_url(b, safe);
                o->api_base = keep(k, safe);
            }
        }
    }
}

static const char *operation_of(const struct sl_request *req)
{
    return req->endpoint == SL_EP_EMBEDDINGS ? "embeddings" : "chat";
}

static const char *error_class_of(const struct sl_request *req)
{
    if (req->http_status < 400 && req->error == SL_OK)
        return NULL;
    if (req->err_type != NULL && strcmp(req->err_type, "budget_exceeded") == 0)
        return "BudgetExceededError";
    switch (req->error) {
    case SL_ERR_AUTH: return "AuthenticationError";
    case SL_ERR_FORBIDDEN: return "PermissionDeniedError";
    case SL_ERR_UPSTREAM_TIMEOUT: case SL_ERR_BODY_TIMEOUT: return "Timeout";
    case SL_ERR_UPSTREAM_CONNECT: return "APIConnectionError";
    case SL_ERR_GUARDRAIL: return "GuardrailRaisedException";
    case SL_ERR_RATE_LIMITED: case SL_ERR_NO_DEPLOYMENT: return "RateLimitError";
    case SL_ERR_CLIENT_GONE: return "ClientDisconnected";
    default: return fail_class(0, req->http_status);
    }
}

static struct rec *make_rec(const struct sl_request *req, int traced)
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
    r->traced = traced;
    r->trace = req->trace;
    r->trace.tracestate = NULL;
    r->route = req->route_label ? req->route_label : "other";   /* static */
    r->operation = operation_of(req);
    r->call_type = req->endpoint == SL_EP_EMBEDDINGS ? "aembedding"
                   : req->endpoint == SL_EP_MESSAGES || req->surface == SL_SURFACE_ANTHROPIC
                   ? "anthropic_messages" : "acompletion";
    r->error_class = error_class_of(req);
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
        o->error_class = a->aborted ? NULL : fail_class(a->fail, a->status);
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

struct sink {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char name[64];
    unsigned long long digest;   /* of the settings in force */
    struct settings *set;
    struct rec **q;              /* a ring of cap */
    size_t cap, head, n;
    long long first_us;          /* when the oldest waiting event came */
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

static void *run(void *arg);

/* The sink for config sink k, made (and its thread started) on first use,
 * its settings renewed when k's differ. NULL when none can be had. */
static struct sink *sink_for(const struct sl_config *cfg, const struct sl_sink *k)
{
    struct sink *s = NULL;
    int i;

    pthread_mutex_lock(&registry);
    for (i = 0; i < n_sinks; i++)
        if (strcmp(sinks[i].name, k->name) == 0) {
            s = &sinks[i];
            break;
        }
    if (s == NULL && n_sinks < MAX_SINKS) {
        s = &sinks[n_sinks];
        memset(s, 0, sizeof(*s));
        snprintf(s->name, sizeof(s->name), "%s", k->name);
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        s->cap = (size_t)cfg->callback_queue_size;
        if ((s->q = calloc(s->cap, sizeof(*s->q))) == NULL) {
            pthread_mutex_unlock(&registry);
            return NULL;
        }
        n_sinks++;
    }
    pthread_mutex_unlock(&registry);
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

static void enqueue(struct sink *s, struct rec *r)
{
    int dropped = 0;

    pthread_mutex_lock(&s->lock);
    if (s->stop || s->n >= s->cap) {
        dropped = 1;
    } else {
        __atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
        s->q[(s->head + s->n) % s->cap] = r;
        if (s->n++ == 0) {
            s->first_us = sl_now_us();
            pthread_cond_signal(&s->cond);
        } else if (s->set != NULL && s->n == (size_t)s->set->batch) {
            pthread_cond_signal(&s->cond);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (dropped)
        sl_metrics_callback(s->name, SL_METRICS_CB_DROPPED, 1);
}

static int is_llm_route(const struct sl_request *req)
{
    return req->endpoint == SL_EP_CHAT || req->endpoint == SL_EP_EMBEDDINGS ||
           req->endpoint == SL_EP_MESSAGES;
}

void sl_export_request(const struct sl_request *req)
{
    const struct sl_config *cfg = req->cfg;
    struct sink *want[MAX_SINKS];
    struct rec *r;
    int n = 0, success, traced;

    if (cfg == NULL || cfg->n_sinks == 0 || !is_llm_route(req))
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
    if ((r = make_rec(req, traced)) == NULL) {
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

static double secs(long long ns)
{
    return (double)ns / 1e9;
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* LiteLLM's StandardLoggingPayload, the fields sluice has. */
static json_t *payload(const struct rec *r)
{
    json_t *o = json_object(), *md = json_object(), *att = json_array(), *sl;

    if (o == NULL || md == NULL || att == NULL) {
        json_decref(o);
        json_decref(md);
        json_decref(att);
        return NULL;
    }
    json_object_set_new(o, "id", json_string(r->request_id));
    {
        char tid[33];

        sl_trace_hex(r->trace.trace_id, 16, tid);
        json_object_set_new(o, "trace_id", json_string(tid));
    }
    json_object_set_new(o, "call_type", json_string(r->call_type));
    json_object_set_new(o, "stream", json_boolean(r->stream));
    json_object_set_new(o, "status", json_string(r->success ? "success" : "failure"));
    json_object_set_new(o, "response_cost", json_real(r->cost_known ? r->cost : 0));
    json_object_set_new(o, "prompt_tokens", json_integer(r->prompt));
    json_object_set_new(o, "completion_tokens", json_integer(r->completion));
    json_object_set_new(o, "total_tokens", json_integer(r->total));
    json_object_set_new(o, "startTime", json_real(secs(r->start_ns)));
    json_object_set_new(o, "endTime", json_real(secs(r->end_ns)));
    json_object_set_new(o, "completionStartTime",
                        json_real(secs(r->first_token_ns ? r->first_token_ns : r->end_ns)));
    json_object_set_new(o, "response_time", json_real(secs(r->end_ns - r->start_ns)));
    json_object_set_new(o, "model", str_or_null(r->upstream_model ? r->upstream_model : r->model));
    json_object_set_new(o, "model_group", str_or_null(r->model_group));
    json_object_set_new(o, "requested_model", str_or_null(r->model));
    json_object_set_new(o, "model_id", str_or_null(r->model_id));
    json_object_set_new(o, "custom_llm_provider", str_or_null(r->provider));
    json_object_set_new(o, "api_base", json_string(r->api_base ? r->api_base : ""));
    json_object_set_new(o, "cache_hit", r->cache_hit < 0 ? json_null() : json_boolean(r->cache_hit));
    json_object_set_new(o, "end_user", json_string(r->end_user ? r->end_user : ""));
    json_object_set_new(md, "user_api_key_hash", str_or_null(r->key_hash));
    json_object_set_new(md, "user_api_key_alias", str_or_null(r->key_alias));
    json_object_set_new(md, "user_api_key_team_id", str_or_null(r->team_id));
    json_object_set_new(md, "user_api_key_user_id", str_or_null(r->user_id));
    json_object_set_new(o, "metadata", md);
    if (!r->success) {
        char st[8];

        snprintf(st, sizeof(st), "%d", r->http_status);
        json_object_set_new(o, "error_information",
                            json_pack("{s:s, s:s}", "error_code", st, "error_class", r->error_class));
    }
    for (int i = 0; i < r->n_attempts; i++) {
        const struct rec_attempt *a = &r->at[i];

        json_array_append_new(att, json_pack("{s:o, s:o, s:i, s:o, s:f}",
            "model_id", str_or_null(a->model_id), "model_group", str_or_null(a->group),
            "status", a->status, "error_class", a->aborted ? json_string("ClientDisconnected")
                                                            : str_or_null(a->error_class),
            "duration_s", secs(a->t1_ns - a->t0_ns)));
    }
    sl = json_pack("{s:s, s:i, s:o}", "route", r->route, "http_status", r->http_status,
                   "attempts", att);
    if (sl != NULL)
        json_object_set_new(o, "sluice", sl);
    return o;
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

/* Langfuse's ingestion events of one call: a trace and its generation. */
static int langfuse_events(const struct rec *r, json_t *batch)
{
    char tid[33], start[40], end[40], first[40], now[40], eid[48];
    json_t *trace, *gen, *md = json_pack("{s:o, s:o, s:o, s:s, s:i}",
        "user_api_key_hash", str_or_null(r->key_hash), "user_api_key_alias", str_or_null(r->key_alias),
        "user_api_key_team_id", str_or_null(r->team_id), "route", r->route, "http_status", r->http_status);

    if (md == NULL)
        return -1;
    sl_trace_hex(r->trace.trace_id, 16, tid);
    iso(r->start_ns, start);
    iso(r->end_ns, end);
    iso(r->first_token_ns ? r->first_token_ns : r->end_ns, first);
    iso(r->end_ns, now);
    trace = json_pack("{s:s, s:s, s:o, s:o, s:O}", "id", tid, "timestamp", start,
                      "name", json_string(r->call_type),
                      "userId", str_or_null(r->end_user && r->end_user[0] ? r->end_user : r->user_id),
                      "metadata", md);
    gen = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:{s:I, s:I, s:I, s:s}, s:{s:I, s:I}, "
                    "s:s, s:o, s:O}",
                    "id", r->request_id, "traceId", tid, "name", r->call_type,
                    "startTime", start, "endTime", end, "completionStartTime", first,
                    "model", str_or_null(r->upstream_model ? r->upstream_model : r->model),
                    "usage", "input", (json_int_t)r->prompt, "output", (json_int_t)r->completion,
                    "total", (json_int_t)r->total, "unit", "TOKENS",
                    "usageDetails", "input", (json_int_t)r->prompt, "output", (json_int_t)r->completion,
                    "level", r->success ? "DEFAULT" : "ERROR",
                    "statusMessage", str_or_null(r->error_class), "metadata", md);
    json_decref(md);
    if (gen != NULL && r->cost_known)
        json_object_set_new(gen, "costDetails", json_pack("{s:f}", "total", r->cost));
    snprintf(eid, sizeof(eid), "%s-t", r->request_id);
    if (trace == NULL || gen == NULL ||
        json_array_append_new(batch, json_pack("{s:s, s:s, s:s, s:o}", "id", eid, "timestamp", now,
                                               "type", "trace-create", "body", trace)) != 0) {
        json_decref(gen);
        return -1;
    }
    snprintf(eid, sizeof(eid), "%s-g", r->request_id);
    return json_array_append_new(batch, json_pack("{s:s, s:s, s:s, s:o}", "id", eid, "timestamp",
                                                  now, "type", "generation-create", "body", gen));
}

/* OTLP/JSON attributes. */
static void attr_s(json_t *a, const char *k, const char *v)
{
    if (v != NULL && v[0] != '\0')
        json_array_append_new(a, json_pack("{s:s, s:{s:s}}", "key", k, "value", "stringValue", v));
}

static void attr_i(json_t *a, const char *k, long long v)
{
    char n[24];

    snprintf(n, sizeof(n), "%lld", v);
    json_array_append_new(a, json_pack("{s:s, s:{s:s}}", "key", k, "value", "intValue", n));
}

static void attr_d(json_t *a, const char *k, double v)
{
    json_array_append_new(a, json_pack("{s:s, s:{s:f}}", "key", k, "value", "doubleValue", v));
}

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

static json_t *span(const struct rec *r, const unsigned char *span_id, const unsigned char *parent,
                    const char *name, int kind, long long t0, long long t1, json_t *attrs,
                    const char *error)
{
    char tid[33], sid[17], pid[17], a[24], b[24];
    json_t *s;

    sl_trace_hex(r->trace.trace_id, 16, tid);
    sl_trace_hex(span_id, 8, sid);
    snprintf(a, sizeof(a), "%lld", t0);
    snprintf(b, sizeof(b), "%lld", t1 > t0 ? t1 : t0);
    s = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:{s:i}}", "traceId", tid, "spanId", sid,
                  "name", name, "kind", kind, "startTimeUnixNano", a, "endTimeUnixNano", b,
                  "attributes", attrs, "status", "code", error ? 2 : 0);
    if (s == NULL)
        return NULL;
    if (parent != NULL && memcmp(parent, "\0\0\0\0\0\0\0\0", 8) != 0) {
        sl_trace_hex(parent, 8, pid);
        json_object_set_new(s, "parentSpanId", json_string(pid));
    }
    if (error != NULL)
        json_object_set_new(json_object_get(s, "status"), "message", json_string(error));
    return s;
}

/* The request's span and one per upstream attempt, appended to spans. */
static int otlp_spans(const struct rec *r, json_t *spans)
{
    json_t *a = json_array();
    char name[TEXT_MAX + 64];

    if (a == NULL)
        return -1;
    attr_s(a, "http.request.method", r->method);
    attr_s(a, "http.route", r->route);
    attr_i(a, "http.response.status_code", r->http_status);
    attr_s(a, "sluice.request_id", r->request_id);
    attr_s(a, "gen_ai.operation.name", r->operation);
    attr_s(a, "gen_ai.request.model", r->model);
    attr_s(a, "gen_ai.response.model", r->upstream_model);
    attr_s(a, "gen_ai.system", genai_system(r->provider));
    attr_s(a, "sluice.model_group", r->model_group);
    attr_s(a, "sluice.deployment.id", r->model_id);
    attr_s(a, "sluice.key_alias", r->key_alias);
    attr_s(a, "sluice.team_id", r->team_id);
    attr_s(a, "sluice.user_id", r->user_id);
    attr_i(a, "gen_ai.usage.input_tokens", r->prompt);
    attr_i(a, "gen_ai.usage.output_tokens", r->completion);
    if (r->cost_known)
        attr_d(a, "sluice.cost_usd", r->cost);
    if (r->stream)
        attr_s(a, "sluice.stream", "true");
    if (r->error_class != NULL)
        attr_s(a, "error.type", r->error_class);
    snprintf(name, sizeof(name), "%s %s", r->method ? r->method : "POST", r->route);
    if (json_array_append_new(spans, span(r, r->trace.span_id, r->trace.parent_id, name, 2,
                                          r->start_ns, r->end_ns, a, r->error_class)) != 0)
        return -1;
    for (int i = 0; i < r->n_attempts; i++) {
        const struct rec_attempt *t = &r->at[i];
        const char *err = t->aborted ? "ClientDisconnected" : t->error_class;
        int last = i == r->n_attempts - 1;

        if ((a = json_array()) == NULL)
            return -1;
        attr_s(a, "gen_ai.operation.name", r->operation);
        attr_s(a, "gen_ai.system", genai_system(t->provider));
        attr_s(a, "gen_ai.request.model", t->model);
        attr_s(a, "sluice.model_group", t->group);
        attr_s(a, "sluice.deployment.id", t->model_id);
        attr_s(a, "server.address", t->api_base);
        if (t->status > 0)
            attr_i(a, "http.response.status_code", t->status);
        if (last && err == NULL) {
            attr_i(a, "gen_ai.usage.input_tokens", r->prompt);
            attr_i(a, "gen_ai.usage.output_tokens", r->completion);
        }
        if (t->ttfb_ns > t->t0_ns)
            attr_d(a, "sluice.time_to_first_byte_s", secs(t->ttfb_ns - t->t0_ns));
        if (err != NULL)
            attr_s(a, "error.type", err);
        snprintf(name, sizeof(name), "%s %s", r->operation, t->model ? t->model : "");
        if (json_array_append_new(spans, span(r, t->span_id, r->trace.span_id, name, 3,
                                              t->t0_ns, t->t1_ns, a, err)) != 0)
            return -1;
    }
    return 0;
}

/* The body of a batch of n records, or NULL (out of memory). */
static char *body_of(const struct settings *set, struct rec **recs, size_t n)
{
    json_t *doc = NULL, *list = json_array();
    char *out = NULL;

    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int rc = set->type == SL_SINK_LANGFUSE ? langfuse_events(recs[i], list)
                 : set->type == SL_SINK_OTLP ? otlp_spans(recs[i], list)
                 : json_array_append_new(list, payload(recs[i]));

        if (rc != 0) {
            json_decref(list);
            return NULL;
        }
    }
    if (set->type == SL_SINK_LANGFUSE) {
        doc = json_pack("{s:o, s:{s:s}}", "batch", list, "metadata", "sdk_name", "sluice");
    } else if (set->type == SL_SINK_OTLP) {
        doc = json_pack("{s:[{s:{s:[{s:s, s:{s:s}}, {s:s, s:{s:s}}]}, s:[{s:{s:s, s:s}, s:o}]}]}",
                        "resourceSpans", "resource", "attributes",
                        "key", "service.name", "value", "stringValue",
                        set->service_name ? set->service_name : "sluice",
                        "key", "service.version", "value", "stringValue", PACKAGE_VERSION,
                        "scopeSpans", "scope", "name", "sluice", "version", PACKAGE_VERSION,
                        "spans", list);
    } else if (set->format == SL_SINK_NDJSON) {
        struct sl_buf b;
        size_t i;
        json_t *v;

        sl_buf_init(&b, 256u << 20);
        json_array_foreach(list, i, v) {
            char *line = json_dumps(v, JSON_COMPACT);

            if (line == NULL || sl_buf_puts(&b, line) != SL_OK || sl_buf_puts(&b, "\n") != SL_OK) {
                free(line);
                sl_buf_free(&b);
                json_decref(list);
                return NULL;
            }
            free(line);
        }
        json_decref(list);
        return b.data;              /* malloc'd by sl_buf */
    } else {
        doc = list;
    }
    if (doc != NULL)
        out = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return out;
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
    struct rec **batch = NULL;
    size_t cap = 0;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        struct settings *set;
        size_t k;

        while (!s->stop && s->n == 0)
            pthread_cond_wait(&s->cond, &s->lock);
        while (!s->stop && s->n < (size_t)s->set->batch) {
            long long due = s->first_us + s->set->flush_ms * 1000LL, now = sl_now_us();
            struct timespec ts;

            if (now >= due)
                break;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += (due - now) / 1000000;
            ts.tv_nsec += ((due - now) % 1000000) * 1000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        }
        if (s->n == 0 && s->stop)
            break;
        set = s->set;
        set->refs++;
        k = s->n < (size_t)set->batch ? s->n : (size_t)set->batch;
        if (k > cap) {
            struct rec **b = realloc(batch, k * sizeof(*b));

            if (b == NULL)
                k = cap;
            else {
                batch = b;
                cap = k;
            }
        }
        for (size_t i = 0; i < k; i++) {
            batch[i] = s->q[s->head];
            s->head = (s->head + 1) % s->cap;
        }
        s->n -= k;
        s->first_us = sl_now_us();
        pthread_mutex_unlock(&s->lock);
        if (e != NULL && k > 0)
            deliver(s, e, set, batch, k);
        else if (k > 0)
            sl_metrics_callback(s->name, SL_METRICS_CB_DROPPED, (long)k);
        for (size_t i = 0; i < k; i++)
            rec_unref(batch[i]);
        pthread_mutex_lock(&s->lock);
        settings_unref(set);
    }
    pthread_mutex_unlock(&s->lock);
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
        sinks[i].stop = 1;
        pthread_cond_broadcast(&sinks[i].cond);
        pthread_mutex_unlock(&sinks[i].lock);
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
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
        while (sinks[i].n > 0) {            /* (stop came before these were taken) */
            rec_unref(sinks[i].q[sinks[i].head]);
            sinks[i].head = (sinks[i].head + 1) % sinks[i].cap;
            sinks[i].n--;
        }
        free(sinks[i].q);
        sinks[i].q = NULL;
        settings_unref(sinks[i].set);
        sinks[i].set = NULL;
    }
    return busy ? -1 : 0;
}

/* GET /health: each deployment gets one minimal real call through its own
 * adapter (chat: one user word and max_tokens 1; embedding: one word; the
 * mock answers itself), as LiteLLM does. Probes run at once on threads of
 * their own, each with its own arena and curl handles (a worker's handles
 * belong to the request it serves), under a per-probe time-out and one
 * deadline for the whole check.
 *
 * A probe is not a client's call: it makes no spend record, takes no budget
 * and leaves the router's state alone (a failed probe cools nothing down).
 * What is shown of a deployment is /model/info's redaction (spendstore.c);
 * an error text is cut short and any secret of the deployment in it is
 * masked, whatever the upstream chose to echo. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "arena.h"
#include "config.h"
#include "health.h"
#include "jsonutil.h"
#include "log.h"
#include "request.h"
#include "spendstore.h"
#include "status.h"
#include "upstream.h"

#define HEALTH_MAX_THREADS 32          /* probes at once; more deployments queue */
#define HEALTH_ARENA_CAP   (16u << 20) /* one probe's memory */
#define HEALTH_SLACK_MS    1000        /* the deadline's room over the largest time-out */
#define HEALTH_MIN_MS      100         /* less time left than this: not probed */
#define HEALTH_ERROR_MAX   500         /* bytes of an error text shown */
#if defined(__SANITIZE_ADDRESS__)
#define HEALTH_STACK (2u << 20)        /* ASan's redzones triple frame sizes */
#else
#define HEALTH_STACK (512u << 10)      /* a worker's 256 KiB, with room */
#endif

struct probe {
    const struct sl_deployment *dep;   /* borrowed from the config */
    struct sl_deployment view;         /* dep as probed (shallow copy): a wildcard's
                                        * health_check_model, and the probe's time-out,
                                        * which an adapter's side request (Vertex AI's
                                        * token) takes from the deployment */
    enum sl_endpoint ep;               /* SL_EP_NONE: not probed, not listed */
    long timeout_ms;
    int healthy;
    char *error;                       /* malloc'd, masked; NULL when healthy */
};

struct run {
    const struct sl_request *parent;   /* borrowed: the /health request */
    struct probe *probes;              /* owned */
    size_t n;
    size_t next;                       /* the next probe to take; guarded by lock */
    pthread_mutex_t lock;
    long long deadline_us;             /* monotonic; no probe runs past it */
};

/* ---- a probe's own request: no client behind it ------------------------- */

static const char *no_param(void *ctx, const char *name)
{
    (void)ctx; (void)name;
    return NULL;
}

static long no_read(void *ctx, char *buf, size_t n)
{
    (void)ctx; (void)buf; (void)n;
    return 0;
}

static int no_write(void *ctx, const char *p, size_t n)
{
    (void)ctx; (void)p; (void)n;
    return -1;
}

static int no_flush(void *ctx)
{
    (void)ctx;
    return -1;
}

static int no_watch(void *ctx)
{
    (void)ctx;
    return -1;      /* nobody waits on a probe: only its time-out ends it */
}

static const struct sl_conn_ops probe_conn = { no_param, no_read, no_write, no_flush, no_watch };

/* ---- which deployments, how --------------------------------------------- */

/* The call a deployment's mode asks for; SL_EP_NONE for modes sluice does
 * not serve (image generation, audio, rerank, ...): those are not listed. */
static enum sl_endpoint probe_endpoint(const struct sl_deployment *d)
{
    if (d->mode == NULL || strcmp(d->mode, "chat") == 0 || strcmp(d->mode, "completion") == 0)
        return SL_EP_CHAT;
    if (strcmp(d->mode, "embedding") == 0)
        return SL_EP_EMBEDDINGS;
    return SL_EP_NONE;
}

/* The upstream model a probe names: a wildcard deployment (openai/ and a "*") has
 * none of its own, so model_info.health_check_model (with or without the
 * provider prefix) names one, as in LiteLLM; NULL: not probed. */
static const char *probe_model(const struct sl_deployment *d)
{
    const char *m = json_string_value(json_object_get(d->model_info, "health_check_model"));
    size_t pl;

    if (d->upstream_model != NULL && strchr(d->upstream_model, '*') == NULL)
        return d->upstream_model;
    if (m == NULL || *m == '\0' || d->provider == NULL)
        return NULL;
    pl = strlen(d->provider->name);
    if (strncmp(m, d->provider->name, pl) == 0 && m[pl] == '/')
        m += pl + 1;
    return *m != '\0' && strchr(m, '*') == NULL ? m : NULL;
}

/* model_info.health_check_timeout (seconds, LiteLLM's), else the setting. */
static long probe_timeout(const struct sl_config *cfg, const struct sl_deployment *d)
{
    const json_t *t = json_object_get(d->model_info, "health_check_timeout");

    if (json_is_number(t) && json_number_value(t) >= 0.1 && json_number_value(t) <= 600)
        return (long)(json_number_value(t) * 1000.0);
    return cfg->health_check_timeout_ms;
}

static int selected(const struct sl_deployment *d, const char *model, const char *model_id)
{
    if (model != NULL && *model != '\0' && (d->model_name == NULL || strcmp(d->model_name, model) != 0))
        return 0;
    if (model_id != NULL && *model_id != '\0' && (d->id == NULL || strcmp(d->id, model_id) != 0))
        return 0;
    return 1;
}

/* Fills run->probes with the selected deployments; *matched counts them,
 * probed or not. */
static int plan(struct run *run, const struct sl_config *cfg, const char *model,
                const char *model_id, size_t *matched)
{
    *matched = 0;
    run->probes = calloc(cfg->n_deployments ? cfg->n_deployments : 1, sizeof(*run->probes));
    if (run->probes == NULL)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < cfg->n_deployments; i++) {
        const struct sl_deployment *d = &cfg->deployments[i];
        struct probe *p = &run->probes[run->n];

        if (!selected(d, model, model_id))
            continue;
        (*matched)++;
        if (d->provider == NULL || (p->ep = probe_endpoint(d)) == SL_EP_NONE ||
            probe_model(d) == NULL)
            continue;
        p->dep = d;
        p->view = *d;
        p->view.upstream_model = probe_model(d);
        p->timeout_ms = probe_timeout(cfg, d);
        run->n++;
    }
    return SL_OK;
}

/* ---- error texts ---------------------------------------------------------- */

/* A service account's JSON alone holds ten strings; past this many, the
 * rest are not masked (the members /model/info drops are never shown). */
#define HEALTH_MAX_SECRETS 64

struct mask {
    const char *secrets[HEALTH_MAX_SECRETS];
    size_t n;
};

/* The string values under secret-named members of v, at any depth. */
static void collect_secrets(struct mask *m, const json_t *v, int secret)
{
    const char *k;
    json_t *c;

    if (json_is_string(v) && secret && json_string_length(v) >= 4 && m->n < HEALTH_MAX_SECRETS)
        m->secrets[m->n++] = json_string_value(v);
    if (!json_is_object(v))
        return;
    json_object_foreach((json_t *)v, k, c)
        collect_secrets(m, c, secret || sl_spendstore_secret_name(k));
}

/* A malloc'd copy of text with every secret of d replaced by "***", cut
 * to HEALTH_ERROR_MAX bytes on a UTF-8 boundary; NULL on OOM. */
static char *masked(const struct sl_deployment *d, const char *text)
{
    struct mask m = { .n = 0 };
    size_t len = strlen(text), cap = len + 1, o = 0;
    char *out;

    if (d->api_key != NULL && strlen(d->api_key) >= 4)
        m.secrets[m.n++] = d->api_key;
    collect_secrets(&m, d->litellm_params, 0);
    /* "***" is never longer than a secret of 4 or more bytes. */
    if ((out = malloc(cap)) == NULL)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t j, sl = 0;

        for (j = 0; j < m.n; j++)
            if (strncmp(text + i, m.secrets[j], (sl = strlen(m.secrets[j]))) == 0)
                break;
        if (j < m.n) {
            memcpy(out + o, "***", 3);
            o += 3;
            i += sl;
        } else {
            out[o++] = text[i++];
        }
    }
    if (o > HEALTH_ERROR_MAX) {
        o = HEALTH_ERROR_MAX;
        while (o > 0 && ((unsigned char)out[o] & 0xC0) == 0x80)
            o--;
    }
    out[o] = '\0';
    return out;
}

static void set_error(struct probe *p, const char *text)
{
    p->healthy = 0;
    free(p->error);
    p->error = masked(p->dep, text != NULL ? text : "unknown error");
}

/* Why the transfer failed. libcurl's words only for a transfer that just
 * ran (curl): an adapter that failed before sending leaves them stale. */
static const char *transport_error(struct sl_request *r, int rc, long timeout_ms, int curl)
{
    const char *why = curl ? sl_upstream_last_error(r->up) : "";

    switch (rc) {
    case SL_ERR_UPSTREAM_TIMEOUT:
        return sl_arena_printf(r->arena, "Timeout: no answer within %ld ms.", timeout_ms);
    case SL_ERR_UPSTREAM_CONNECT:
        return sl_arena_printf(r->arena, "Connection error: %s", *why ? why : "could not connect.");
    case SL_ERR_UPSTREAM_BAD:
        return sl_arena_printf(r->arena, "The upstream's reply could not be read%s%s",
                               *why ? ": " : ".", why);
    case SL_ERR_NOMEM:
        return "Out of memory.";
    default:
        return sl_status_name(rc);
    }
}

/* The upstream answered an error status: its own words, through the
 * adapter's map_error when it has one. */
static const char *status_error(struct sl_request *r, const struct sl_upstream_res *res)
{
    const struct sl_provider *prov = r->dep->provider;
    const char *why, *msg = NULL;
    json_t *body = res->body.len ? sl_json_parse(res->body.data, res->body.len, &why) : NULL;
    struct sl_error e;
    const char *text;

    memset(&e, 0, sizeof(e));
    if (prov->map_error != NULL && prov->map_error(r, res->status, body, &e) == SL_OK)
        msg = e.message;
    if (msg == NULL)
        msg = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    text = sl_arena_printf(r->arena, "HTTP %ld%s%s", res->status, msg ? ": " : "", msg ? msg : "");
    json_decref(body);     /* after the copy: msg may live in body */
    return text;
}

/* A 2xx reply must be one the gateway could have passed on. */
static const char *reply_error(struct sl_request *r, const struct sl_upstream_res *res)
{
    const struct sl_provider *prov = r->dep->provider;
    const char *body = res->body.data ? res->body.data : "", *why, *msg = NULL, *text;
    json_t *v = NULL;
    int rc;

    if (prov->flags & SL_PROVIDER_OPENAI_WIRE) {
        v = sl_json_parse(body, res->body.len, &why);
        rc = json_is_object(v) && json_object_get(v, "error") == NULL ? SL_OK : SL_ERR_UPSTREAM_BAD;
    } else if (prov->parse_response != NULL) {
        rc = prov->parse_response(r, body, res->body.len, &v);
    } else {
        rc = SL_OK;
    }
    if (rc == SL_ERR_UPSTREAM_BAD && json_is_object(v) && json_is_object(json_object_get(v, "error")))
        msg = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
    text = msg != NULL ? sl_arena_printf(r->arena, "HTTP %ld with an error: %s", res->status, msg) : NULL;
    json_decref(v);        /* after the copy: msg lives in v */
    if (rc == SL_OK)
        return NULL;
    if (text != NULL)
        return text;
    if (rc == SL_ERR_UPSTREAM_STATUS && r->upstream_err.message != NULL)
        return sl_arena_printf(r->arena, "HTTP %d: %s", r->upstream_err.http_status,
                               r->upstream_err.message);
    return transport_error(r, rc == SL_ERR_NOMEM ? rc : SL_ERR_UPSTREAM_BAD, 0, 0);
}

/* ---- one probe ------------------------------------------------------------ */

static json_t *probe_body(const struct probe *p)
{
    const char *name = p->dep->model_name ? p->dep->model_name : p->view.upstream_model;

    if (p->ep == SL_EP_EMBEDDINGS)
        return json_pack("{s:s, s:s}", "model", name, "input", "ping");
    return json_pack("{s:s, s:[{s:s, s:s}], s:i}", "model", name, "messages", "role", "user",
                     "content", "ping", "max_tokens", 1);
}

static void init_request(struct sl_request *r, const struct run *run, struct probe *p,
                         struct sl_arena *arena, struct sl_upstream_thread *up)
{
    memset(r, 0, sizeof(*r));
    r->arena = arena;
    r->conn.ops = &probe_conn;
    r->up = up;
    r->cfg = run->parent->cfg;     /* the /health request holds the reference */
    memcpy(r->id, run->parent->id, sizeof(r->id));   /* its log lines join the request's */
    r->t_start_us = r->t_last_write_us = sl_now_us();
    r->method = "POST";
    r->uri = r->path = "/health";
    r->endpoint = p->ep;
    r->model = p->dep->model_name;
    r->dep = &p->view;
    r->http_status = 200;
}

/* What went wrong, or NULL when the deployment answered well (arena text).
 * Building may take time of its own (Vertex AI's token exchange, bounded
 * by the deployment's time-out, which is the probe's): the call gets what
 * is left of timeout_ms, so a probe never runs longer than that. */
static const char *call(struct sl_request *r, struct probe *p, long timeout_ms)
{
    long long end_us = sl_now_us() + timeout_ms * 1000LL, left_ms;
    static const struct sl_upstream_cb no_cb = { 0 };
    const struct sl_provider *prov = p->view.provider;
    struct sl_upstream_req ureq;
    struct sl_upstream_res res;
    const char *err;
    json_t *in = probe_body(p);
    int rc;

    if (in == NULL || sl_arena_defer(r->arena, sl_json_decref_cb, in) != SL_OK)
        return "Out of memory.";
    r->in = in;
    if (!(prov->endpoints & SL_EP_BIT(p->ep)) || prov->build_request == NULL)
        return sl_arena_printf(r->arena, "Provider %s does not serve %s.", prov->name,
                               p->ep == SL_EP_EMBEDDINGS ? "embeddings" : "chat completions");
    memset(&ureq, 0, sizeof(ureq));
    r->stage = "health-build";
    if ((rc = prov->build_request(r, in, &ureq)) != SL_OK)
        return r->err_msg != NULL ? r->err_msg : transport_error(r, rc, timeout_ms, 0);
    if ((left_ms = (end_us - sl_now_us()) / 1000) < 1)
        return transport_error(r, SL_ERR_UPSTREAM_TIMEOUT, timeout_ms, 0);
    r->stage = "health-probe";
    rc = sl_upstream_perform(r, &ureq, 0, (long)left_ms, &no_cb, &res);
    if (rc != SL_OK)
        err = transport_error(r, rc, timeout_ms, 1);
    else if (res.status < 200 || res.status > 299)
        err = status_error(r, &res);
    else
        err = reply_error(r, &res);
    sl_buf_free(&res.body);
    return err;
}

static void probe_one(const struct run *run, struct probe *p, struct sl_arena *arena,
                      struct sl_upstream_thread *up, long timeout_ms)
{
    struct sl_request r;
    const char *err;

    init_request(&r, run, p, arena, up);
    p->view.timeout_ms = p->view.stream_timeout_ms = timeout_ms;
    err = call(&r, p, timeout_ms);
    if (err == NULL)
        p->healthy = 1;
    else
        set_error(p, err);
    sl_log(SL_LOG_INFO, &r, "health probe of deployment %s (%s): %s", p->dep->id ? p->dep->id : "",
           p->view.provider->name, p->healthy ? "healthy" : "unhealthy");
    sl_arena_reset(arena);
}

/* Takes probes off the queue until none is left. */
static void drain(struct run *run)
{
    struct sl_arena *arena = sl_arena_create(HEALTH_ARENA_CAP);
    struct sl_upstream_thread *up = sl_upstream_thread_new();

    for (;;) {
        struct probe *p;
        long long left;

        pthread_mutex_lock(&run->lock);
        p = run->next < run->n ? &run->probes[run->next++] : NULL;
        pthread_mutex_unlock(&run->lock);
        if (p == NULL)
            break;
        left = (run->deadline_us - sl_now_us()) / 1000;
        if (arena == NULL || up == NULL)
            set_error(p, "Out of memory.");
        else if (left < HEALTH_MIN_MS)
            set_error(p, "Not probed: the health check's deadline came first.");
        else
            probe_one(run, p, arena, up, p->timeout_ms < left ? p->timeout_ms : (long)left);
    }
    sl_upstream_thread_free(up);
    sl_arena_free(arena);
}

static void *probe_thread(void *arg)
{
    drain(arg);
    /* OpenSSL's per-thread state goes with the thread, not after it. */
    OPENSSL_thread_stop();
    return NULL;
}

/* Runs every probe, up to HEALTH_MAX_THREADS at once, and returns when all
 * are done (by the deadline: each transfer is bounded by what is left). */
static void run_all(struct run *run)
{
    pthread_t t[HEALTH_MAX_THREADS];
    pthread_attr_t attr;
    size_t want = run->n < HEALTH_MAX_THREADS ? run->n : HEALTH_MAX_THREADS, started = 0;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, HEALTH_STACK);
    while (started < want && pthread_create(&t[started], &attr, probe_thread, run) == 0)
        started++;
    pthread_attr_destroy(&attr);
    if (started < want)
        sl_log(SL_LOG_WARN, run->parent, "health: started %zu of %zu probe threads", started, want);
    if (started == 0)
        drain(run);         /* no thread to be had: one after another, here */
    for (size_t i = 0; i < started; i++)
        pthread_join(t[i], NULL);
}

/* ---- the answer ----------------------------------------------------------- */

static json_t *endpoint_json(const struct probe *p)
{
    json_t *o = json_is_object(p->dep->litellm_params) ? sl_spendstore_scrub(p->dep->litellm_params)
                                                       : json_object();
    int bad = o == NULL;

    if (!bad) {
        bad |= json_object_set_new(o, "model_name", json_string(p->dep->model_name ? p->dep->model_name : ""));
        bad |= json_object_set_new(o, "model_id", json_string(p->dep->id ? p->dep->id : ""));
        if (!p->healthy) {
            json_t *e = p->error ? json_string(p->error) : NULL;

            /* an upstream's text that is not UTF-8 cannot be shown as is */
            bad |= json_object_set_new(o, "error", e ? e : json_string("The error text is not UTF-8."));
        }
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *answer(const struct run *run)
{
    json_t *ok = json_array(), *bad = json_array();
    size_t n_ok = 0, n_bad = 0;

    if (ok == NULL || bad == NULL)
        goto oom;
    for (size_t i = 0; i < run->n; i++) {
        const struct probe *p = &run->probes[i];
        json_t *e = endpoint_json(p);

        if (e == NULL || json_array_append_new(p->healthy ? ok : bad, e) != 0)
            goto oom;
        if (p->healthy)
            n_ok++;
        else
            n_bad++;
    }
    return json_pack("{s:o, s:o, s:I, s:I}", "healthy_endpoints", ok, "unhealthy_endpoints", bad,
                     "healthy_count", (json_int_t)n_ok, "unhealthy_count", (json_int_t)n_bad);
oom:
    json_decref(ok);
    json_decref(bad);
    return NULL;
}

int sl_health_check(struct sl_request *req, const char *model, const char *model_id,
                    json_t **out)
{
    struct run run;
    size_t matched;
    long longest = 0;
    int rc;

    req->stage = "health";
    *out = NULL;
    memset(&run, 0, sizeof(run));
    run.parent = req;
    pthread_mutex_init(&run.lock, NULL);
    if ((rc = plan(&run, req->cfg, model, model_id, &matched)) != SL_OK)
        goto out;
    if (matched == 0 && ((model && *model) || (model_id && *model_id))) {
        req->err_msg = sl_arena_printf(req->arena, "No deployment in model_list matches %s '%.200s'.",
                                       model_id && *model_id ? "model_id" : "model",
                                       model_id && *model_id ? model_id : model);
        rc = SL_ERR_NOT_FOUND;
        goto out;
    }
    for (size_t i = 0; i < run.n; i++)
        if (run.probes[i].timeout_ms > longest)
            longest = run.probes[i].timeout_ms;
    run.deadline_us = sl_now_us() + (longest + HEALTH_SLACK_MS) * 1000LL;
    run_all(&run);
    req->stage = "health";
    rc = (*out = answer(&run)) != NULL ? SL_OK : SL_ERR_NOMEM;
out:
    for (size_t i = 0; run.probes != NULL && i < run.n; i++)
        free(run.probes[i].error);
    free(run.probes);
    pthread_mutex_destroy(&run.lock);
    return rc;
}

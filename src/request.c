/* One request from accept to the last byte: read the CGI parameters and the
 * body (to its end, under our own cap, whatever CONTENT_LENGTH says), route
 * on REQUEST_URI (servers split SCRIPT_NAME/PATH_INFO four different ways),
 * authenticate, validate the few fields the gateway interprets, dispatch,
 * and write one log line. Everything else in the body is left alone. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "admin.h"
#include "arena.h"
#include "auth.h"
#include "buf.h"
#include "cache.h"
#include "completions.h"
#include "config.h"
#include "export.h"
#include "form.h"
#include "guard.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "mcache.h"
#include "messages.h"
#include "metrics.h"
#include "proxy.h"
#include "ratelimit.h"
#include "request.h"
#include "respond.h"
#include "responses.h"
#include "respstore.h"
#include "router.h"
#include "spend.h"
#include "status.h"
#include "timeouts.h"
#include "upstream.h"

long long sl_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

struct timespec sl_deadline(int clock, long long us)
{
    struct timespec t;

    clock_gettime((clockid_t)clock, &t);
    t.tv_sec += us / 1000000;
    t.tv_nsec += (us % 1000000) * 1000;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Request ids need to be unique, not secret: a per-thread xorshift seeded
 * from the clock, the thread and a counter is enough and costs no syscall. */
static void make_id(char out[40])
{
    static __thread unsigned long long s;
    unsigned long long a, b;

    if (s == 0) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        s = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 30) ^
            (unsigned long long)(uintptr_t)&s;
        s |= 1;
    }
    s ^= s << 13; s ^= s >> 7; s ^= s << 17; a = s;
    s ^= s << 13; s ^= s >> 7; s ^= s << 17; b = s;
    snprintf(out, 40, "%08llx-%04llx-4%03llx-%04llx-%012llx",
             a >> 32, (a >> 16) & 0xffff, a & 0xfff, ((b >> 48) & 0x3fff) | 0x8000,
             b & 0xffffffffffffULL);
}

struct sl_attempt *sl_request_new_attempt(struct sl_request *req)
{
    struct sl_attempt *a = &req->attempts[req->n_attempts < SL_MAX_ATTEMPTS ? req->n_attempts
                                                                            : SL_MAX_ATTEMPTS - 1];

    req->n_attempts++;
    memset(a, 0, sizeof(*a));
    sl_trace_new_span(a->span_id);
    return a;
}

const struct sl_attempt *sl_request_last_attempt(const struct sl_request *req)
{
    static const struct sl_attempt none;

    if (req->n_attempts == 0)
        return &none;
    return &req->attempts[(req->n_attempts < SL_MAX_ATTEMPTS ? req->n_attempts : SL_MAX_ATTEMPTS) - 1];
}

/* The class of an HTTP status: LiteLLM's exception names. */
static const char *status_class(int http)
{
    switch (http) {
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 403: return "PermissionDeniedError";
    case 404: return "NotFoundError";
    case 408: return "Timeout";
    case 413: return "RequestTooLargeError";
    case 422: return "UnprocessableEntityError";
    case 429: return "RateLimitError";
    case 503: return "ServiceUnavailableError";
    default: return http >= 500 ? "InternalServerError" : "APIError";
    }
}

const char *sl_attempt_error_class(const struct sl_attempt *a)
{
    static const char *const names[] = {    /* by SL_FAIL_* (router.h) */
        NULL, "RateLimitError", "InternalServerError", "Timeout", "APIConnectionError",
        "AuthenticationError", "NotFoundError", "BadRequestError",
        "ContextWindowExceededError", "ContentPolicyViolationError"
    };

    if (a->aborted)
        return NULL;
    if (a->fail > 0 && a->fail < (int)(sizeof(names) / sizeof(names[0])))
        return names[a->fail];
    return a->status >= 200 && a->status <= 299 ? NULL : status_class(a->status);
}

const char *sl_request_error_class(const struct sl_request *req)
{
    if (req->http_status < 400 && req->error == SL_OK)
        return NULL;
    if (req->err_type != NULL && strcmp(req->err_type, "budget_exceeded") == 0)
        return "BudgetExceededError";
    switch (req->error) {
    case SL_ERR_UNKNOWN_MODEL: case SL_ERR_BAD_JSON: case SL_ERR_BAD_REQUEST:
    case SL_ERR_UNSUPPORTED:
        return "BadRequestError";
    case SL_ERR_AUTH: return "AuthenticationError";
    case SL_ERR_FORBIDDEN: return "PermissionDeniedError";
    case SL_ERR_UPSTREAM_TIMEOUT: case SL_ERR_BODY_TIMEOUT: return "Timeout";
    case SL_ERR_UPSTREAM_CONNECT: return "APIConnectionError";
    case SL_ERR_UPSTREAM_BAD: return "APIError";
    case SL_ERR_GUARDRAIL: return "GuardrailRaisedException";
    case SL_ERR_NO_DEPLOYMENT: case SL_ERR_RATE_LIMITED: return "RateLimitError";
    case SL_ERR_METHOD: return "MethodNotAllowedError";
    case SL_ERR_CLIENT_GONE: return "ClientDisconnected";
    default: return status_class(req->http_status);
    }
}

struct route {
    const char *path;
    enum sl_endpoint ep;
    const char *method;
};

/* LiteLLM serves every route with and without the /v1 prefix. */
static const struct route routes[] = {
    { "/v1/chat/completions", SL_EP_CHAT, "POST" },
    { "/chat/completions", SL_EP_CHAT, "POST" },
    { "/v1/embeddings", SL_EP_EMBEDDINGS, "POST" },
    { "/embeddings", SL_EP_EMBEDDINGS, "POST" },
    { "/v1/models", SL_EP_MODELS, "GET" },
    { "/models", SL_EP_MODELS, "GET" },
    { "/v1/messages", SL_EP_MESSAGES, "POST" },
    { "/messages", SL_EP_MESSAGES, "POST" },
    { "/v1/responses", SL_EP_RESPONSES, "POST" },
    { "/v1/completions", SL_EP_COMPLETIONS, "POST" },
    { "/v1/rerank", SL_EP_RERANK, "POST" },
    { "/v1/moderations", SL_EP_MODERATIONS, "POST" },
    { "/moderations", SL_EP_MODERATIONS, "POST" },
    { "/v1/images/generations", SL_EP_IMAGES, "POST" },
    { "/images/generations", SL_EP_IMAGES, "POST" },
    { "/v1/audio/speech", SL_EP_SPEECH, "POST" },
    { "/audio/speech", SL_EP_SPEECH, "POST" },
    { "/v1/audio/transcriptions", SL_EP_TRANSCRIPTIONS, "POST" },
    { "/audio/transcriptions", SL_EP_TRANSCRIPTIONS, "POST" },
    { "/v2/rerank", SL_EP_RERANK, "POST" },
    { "/rerank", SL_EP_RERANK, "POST" },
    { "/completions", SL_EP_COMPLETIONS, "POST" },
    { "/responses", SL_EP_RESPONSES, "POST" },
    { "/v1/messages/count_tokens", SL_EP_COUNT_TOKENS, "POST" },
    { "/messages/count_tokens", SL_EP_COUNT_TOKENS, "POST" },
    { "/health/liveliness", SL_EP_HEALTH_LIVE, "GET" },
    { "/health/liveness", SL_EP_HEALTH_LIVE, "GET" },
    { "/health/readiness", SL_EP_HEALTH_READY, "GET" },
    { "/metrics", SL_EP_METRICS, "GET" },
};

/* Routes that name the model in the path: LiteLLM's Azure-style aliases and
 * the model retrieval route. The model is the part between prefix and
 * suffix, percent-decoded (model names may hold "/"). */
static const struct {
    const char *prefix, *suffix;
    enum sl_endpoint ep;
    const char *method;
    const char *label;           /* the route in metrics */
} model_routes[] = {
    { "/openai/deployments/", "/chat/completions", SL_EP_CHAT, "POST",
      "/openai/deployments/{model}/chat/completions" },
    { "/engines/", "/chat/completions", SL_EP_CHAT, "POST", "/engines/{model}/chat/completions" },
    { "/openai/deployments/", "/embeddings", SL_EP_EMBEDDINGS, "POST",
      "/openai/deployments/{model}/embeddings" },
    { "/engines/", "/embeddings", SL_EP_EMBEDDINGS, "POST", "/engines/{model}/embeddings" },
    { "/v1/models/", "", SL_EP_MODELS, "GET", "/v1/models/{model}" },
    { "/v1/responses/", "", SL_EP_RESPONSE_ITEM, "GET", "/v1/responses/{id}" },
    { "/responses/", "", SL_EP_RESPONSE_ITEM, "GET", "/responses/{id}" },
    { "/models/", "", SL_EP_MODELS, "GET", "/models/{model}" },
};

/* The management routes as metrics labels: their families, not the path
 * (which may name a key or a team). */
static const char *const admin_labels[] = {
    "/key/*", "/team/*", "/user/*", "/spend/logs", "/global/spend/report", "/model/info",
    "/v1/model/info", "/health", "/cache/ping", "/cache/delete",
};

static const char *admin_label(const char *path)
{
    for (size_t i = 0; i < sizeof(admin_labels) / sizeof(admin_labels[0]); i++) {
        const char *l = admin_labels[i];
        size_t n = strlen(l);

        if (l[n - 1] == '*' ? strncmp(path, l, n - 1) == 0 : strcmp(path, l) == 0)
            return l;
    }
    return "other";
}

static int method_ok(const struct sl_request *req, const char *want)
{
    return strcmp(req->method, want) == 0 ||
           (strcmp(req->method, "HEAD") == 0 && strcmp(want, "GET") == 0);
}

static int find_model_route(struct sl_request *req, size_t len)
{
    for (size_t i = 0; i < sizeof(model_routes) / sizeof(model_routes[0]); i++) {
        size_t pl = strlen(model_routes[i].prefix), sl = strlen(model_routes[i].suffix);

        if (len <= pl + sl || strncmp(req->path, model_routes[i].prefix, pl) != 0 ||
            strcmp(req->path + len - sl, model_routes[i].suffix) != 0)
            continue;
        req->endpoint = model_routes[i].ep;
        req->route_label = model_routes[i].label;
        req->path_model = sl_upstream_unescape(req->arena, req->path + pl, len - pl - sl);
        if (req->path_model == NULL) {
            req->err_msg = "The model name in the path is not valid.";
            return SL_ERR_BAD_REQUEST;
        }
        if (req->endpoint == SL_EP_RESPONSE_ITEM && strcmp(req->method, "DELETE") == 0)
            return SL_OK;
        return method_ok(req, model_routes[i].method) ? SL_OK : SL_ERR_METHOD;
    }
    req->err_msg = sl_arena_printf(req->arena, "No route for %.100s %.200s.", req->method, req->path);
    return SL_ERR_NOT_FOUND;
}

static int find_route(struct sl_request *req)
{
    const char *q = strchr(req->uri, '?');
    size_t len = q ? (size_t)(q - req->uri) : strlen(req->uri);

    while (len > 1 && req->uri[len - 1] == '/')
        len--;                              /* "/v1/models/" is "/v1/models" */
    req->path = sl_arena_strndup(req->arena, req->uri, len);
    if (req->path == NULL)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(routes[i].path, req->path) != 0)
            continue;
        req->endpoint = routes[i].ep;
        req->route_label = routes[i].path;
        if (req->endpoint == SL_EP_MESSAGES || req->endpoint == SL_EP_COUNT_TOKENS)
            req->surface = SL_SURFACE_ANTHROPIC;   /* errors in Anthropic's shape from here on */
        else if (req->endpoint == SL_EP_RESPONSES)
            req->surface = SL_SURFACE_RESPONSES;
        req->legacy = req->endpoint == SL_EP_COMPLETIONS;
        return method_ok(req, routes[i].method) ? SL_OK : SL_ERR_METHOD;
    }
    if (sl_admin_is_route(req->path) || sl_cache_is_route(req->path)) {
        req->endpoint = SL_EP_NONE;         /* the management API: admin.c, cache.c */
        req->route_label = admin_label(req->path);
        return SL_OK;
    }
    return find_model_route(req, len);
}

static void buf_free_cb(void *p)
{
    sl_buf_free(p);
}

/* Reads the body to its end. CONTENT_LENGTH is only a hint: servers send it
 * missing, empty, 0 or -1 for chunked uploads. */
static int read_body(struct sl_request *req)
{
    struct sl_buf *b = sl_arena_alloc(req->arena, sizeof(*b));
    size_t cap = req->cfg->max_request_bytes;
    char chunk[16384];
    long n;
    int rc;

    req->stage = "read";
    if (b == NULL)
        return SL_ERR_NOMEM;
    sl_buf_init(b, cap);
    if ((rc = sl_arena_defer(req->arena, buf_free_cb, b)) != SL_OK)
        return rc;
    while ((n = req->conn.ops->read(req->conn.ctx, chunk, sizeof(chunk))) > 0) {
        if ((rc = sl_buf_append(b, chunk, (size_t)n)) != SL_OK) {
            if (rc == SL_ERR_TOO_LARGE)
                req->err_msg = sl_arena_printf(req->arena,
                    "Request body is larger than the %zu MB this gateway accepts (general_settings.max_request_size_mb).",
                    cap >> 20);
            return rc;
        }
    }
    if (n < 0)
        return SL_ERR_BODY_TIMEOUT;
    req->body = b->data ? b->data : "";
    req->body_len = b->len;
    return SL_OK;
}

static int bad(struct sl_request *req, const char *msg)
{
    req->err_msg = (char *)msg;
    return SL_ERR_BAD_REQUEST;
}

/* POST /v1/audio/transcriptions: a multipart upload, passed on as it came.
 * Only its "model" is read (and replaced by the adapter); the body stands
 * in as an empty JSON object for the code that reads req->in. */
static int parse_upload(struct sl_request *req)
{
    char boundary[71];
    size_t at, n, sat, sn;
    int found;

    req->stage = "parse";
    if (sl_form_boundary(req->content_type, boundary) != 0)
        return bad(req, "Send the audio as multipart/form-data (with a boundary).");
    if ((req->in = json_object()) == NULL)
        return SL_ERR_NOMEM;
    if (sl_arena_defer(req->arena, sl_json_decref_cb, req->in) != SL_OK) {
        req->in = NULL;
        return SL_ERR_NOMEM;
    }
    found = sl_form_find(req->body, req->body_len, boundary, "model", &at, &n);
    if (found < 0)
        return bad(req, "The multipart/form-data body is not well-formed.");
    if (found == 0 || n == 0 || n > 256)
        return bad(req, "model is a required field.");
    if (sl_form_find(req->body, req->body_len, boundary, "file", &sat, &sn) != 1)
        return bad(req, "file is a required field.");
    if (sl_form_find(req->body, req->body_len, boundary, "stream", &sat, &sn) == 1 &&
        sn == 4 && memcmp(req->body + sat, "true", 4) == 0)
        return bad(req, "Streamed transcriptions are not supported by this gateway: leave stream unset.");
    if ((req->model = sl_arena_strndup(req->arena, req->body + at, n)) == NULL)
        return SL_ERR_NOMEM;
    if (strlen(req->model) != n || strpbrk(req->model, "\r\n") != NULL)
        return bad(req, "model must be a plain name.");
    req->form_model_at = at;
    req->form_model_len = n;
    return SL_OK;
}

/* POST /v1/rerank: a query, documents (strings or objects), top_n. */
static int check_rerank(struct sl_request *req)
{
    const json_t *q = json_object_get(req->in, "query"), *d = json_object_get(req->in, "documents");
    const json_t *n = json_object_get(req->in, "top_n"), *x;
    size_t i;

    if (!json_is_string(q) || json_string_length(q) == 0)
        return bad(req, "query is a required field (a non-empty string).");
    if (!json_is_array(d) || json_array_size(d) == 0)
        return bad(req, "documents is a required field (a non-empty array).");
    json_array_foreach(d, i, x)
        if (!json_is_string(x) && !json_is_object(x))
            return bad(req, "documents must be strings or objects.");
    if (n != NULL && !json_is_null(n) && (!json_is_integer(n) || json_integer_value(n) < 1))
        return bad(req, "top_n must be a positive integer.");
    if (req->stream)
        return bad(req, "rerank cannot be streamed.");
    return SL_OK;
}

/* Parses the body and checks the fields the gateway itself interprets. */
static int parse_body(struct sl_request *req)
{
    const char *why = NULL;
    const json_t *v, *so;

    if (req->endpoint == SL_EP_TRANSCRIPTIONS)
        return parse_upload(req);
    req->stage = "parse";
    if (req->body_len == 0) {
        req->err_msg = "Request body is empty; expected a JSON object.";
        return SL_ERR_BAD_JSON;
    }
    req->in = sl_json_parse(req->body, req->body_len, &why);
    if (req->in == NULL) {
        req->err_msg = sl_arena_printf(req->arena, "Request body is not valid JSON: %s.", why);
        return SL_ERR_BAD_JSON;
    }
    if (sl_arena_defer(req->arena, sl_json_decref_cb, req->in) != SL_OK) {
        req->in = NULL;
        return SL_ERR_NOMEM;
    }
    if (!json_is_object(req->in))
        return bad(req, "Request body must be a JSON object.");
    v = json_object_get(req->in, "model");
    if ((v == NULL || json_is_null(v)) && req->path_model != NULL) {
        req->model = req->path_model;      /* Azure-style route: the path names it */
    } else if ((v == NULL || json_is_null(v)) && req->endpoint == SL_EP_MODERATIONS) {
        req->model = "omni-moderation-latest";   /* OpenAI's default */
    } else if (v == NULL || json_is_null(v)) {
        return bad(req, "model is a required field.");
    } else if (!json_is_string(v) || json_string_length(v) == 0) {
        return bad(req, "model must be a non-empty string.");
    } else {
        req->model = json_string_value(v);
    }
    v = json_object_get(req->in, "stream");
    if (v != NULL && !json_is_null(v) && !json_is_boolean(v))
        return bad(req, "stream must be a boolean.");
    req->stream = json_is_true(v);
    so = json_object_get(req->in, "stream_options");
    if (so != NULL && !json_is_null(so) && !json_is_object(so))
        return bad(req, "stream_options must be an object.");
    req->include_usage = json_is_true(json_object_get(so, "include_usage"));
    if (req->endpoint == SL_EP_CHAT) {
        v = json_object_get(req->in, "messages");
        if (v == NULL)
            return bad(req, "messages is a required field.");
        if (!json_is_array(v) || json_array_size(v) == 0)
            return bad(req, "messages must be a non-empty array.");
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_object(json_array_get(v, i)) ||
                !json_is_string(json_object_get(json_array_get(v, i), "role")))
                return bad(req, "each message must be an object with a string role.");
    } else if (req->endpoint == SL_EP_EMBEDDINGS) {
        v = json_object_get(req->in, "input");
        if (!json_is_string(v) && !json_is_array(v))
            return bad(req, "input must be a string or an array.");
        if (req->stream)
            return bad(req, "embeddings cannot be streamed.");
    } else if (req->surface == SL_SURFACE_ANTHROPIC) {
        return sl_messages_validate(req);
    } else if (req->endpoint == SL_EP_RESPONSES) {
        return sl_responses_validate(req);
    } else if (req->endpoint == SL_EP_COMPLETIONS) {
        return sl_completions_validate(req);
    } else if (req->endpoint == SL_EP_RERANK) {
        return check_rerank(req);
    } else if (req->endpoint == SL_EP_MODERATIONS) {
        v = json_object_get(req->in, "input");
        if (!json_is_string(v) && !json_is_array(v))
            return bad(req, "input must be a string or an array.");
    } else if (req->endpoint == SL_EP_IMAGES) {
        if (!json_is_string(json_object_get(req->in, "prompt")))
            return bad(req, "prompt is a required field (a string).");
        if (req->stream)
            return bad(req, "Streamed image generation is not supported by this gateway.");
    } else if (req->endpoint == SL_EP_SPEECH) {
        if (!json_is_string(json_object_get(req->in, "input")))
            return bad(req, "input is a required field (the text to speak).");
        if (req->stream)
            return bad(req, "stream is not a speech parameter: the audio is always streamed back.");
        req->stream = 1;                   /* the audio is passed on as it comes */
    }
    return SL_OK;
}

/* GET and DELETE /v1/responses/{id}: a response the store kept for this
 * key. */
static int serve_stored_response(struct sl_request *req)
{
    const char *id = req->path_model;
    char *text = NULL;
    size_t len = 0;
    json_t *out;
    int rc;

    if (!req->cfg->responses_store) {
        req->err_msg = "Stored responses need a response store, and this gateway keeps none "
                       "(no response store is configured: sluice_settings.responses_store).";
        return SL_ERR_BAD_REQUEST;
    }
    rc = strcmp(req->method, "DELETE") == 0 ? sl_respstore_delete(req, id) : sl_respstore_response(req, id, &text, &len);
    if (rc == SL_ERR_NOT_FOUND)
        req->err_msg = sl_arena_printf(req->arena, "Response with id '%.64s' not found.", id);
    if (rc != SL_OK)
        return rc;
    if (text != NULL)
        return sl_respond_raw(req, 200, "application/json", text, len);
    if ((out = json_pack("{s:s, s:s, s:b}", "id", id, "object", "response", "deleted", 1)) == NULL)
        return SL_ERR_NOMEM;
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

/* GET /v1/models/{model}: the model if this key may use it, else 404. */
static int serve_one_model(struct sl_request *req)
{
    const char *group;
    json_t *out;
    int rc;

    req->model = req->path_model;
    group = sl_router_group_of(req->cfg, req->model);
    if (group == NULL || strchr(req->model, '*') != NULL ||
        (!sl_auth_may_use_model(req, req->model) && !sl_auth_may_use_model(req, group))) {
        req->err_msg = sl_arena_printf(req->arena, "The model '%.200s' does not exist.", req->model);
        return SL_ERR_NOT_FOUND;
    }
    out = json_pack("{s:s, s:s, s:i, s:s}", "id", req->model, "object", "model",
                    "created", 1677610602, "owned_by", "openai");
    if (out == NULL)
        return SL_ERR_NOMEM;
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

struct model_list {
    struct sl_request *req;
    json_t *data;
};

static void list_model(void *ctx, const char *name)
{
    struct model_list *l = ctx;

    if (sl_auth_may_use_model(l->req, name))
        json_array_append_new(l->data, json_pack("{s:s, s:s, s:i, s:s}", "id", name,
                                                 "object", "model", "created", 1677610602,
                                                 "owned_by", "openai"));
}

/* GET /v1/models: the groups and visible aliases this key may use
 * (wildcard groups are not listed: they stand for any name). */
static int serve_models(struct sl_request *req)
{
    struct model_list l = { req, json_array() };
    json_t *out;
    int rc;

    if (l.data == NULL)
        return SL_ERR_NOMEM;
    sl_router_each_name(req->cfg, list_model, &l);
    out = json_pack("{s:s, s:o}", "object", "list", "data", l.data);
    if (out == NULL)
        return SL_ERR_NOMEM;
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

/* /health/liveliness, and /health/readiness in LiteLLM's shape: "cache"
 * is "memcached" when servers are configured; while they do not all
 * answer, "status" is "degraded" and "memcached" says why (still 200:
 * sluice serves, counting per host). "db" stays "Not connected": db.c
 * does not export whether the database answered lately. */
static int serve_health(struct sl_request *req)
{
    const char *why = NULL;
    json_t *out;
    int rc, mc = sl_mc_configured(req->cfg);

    if (req->endpoint == SL_EP_HEALTH_LIVE)
        out = json_string("I'm alive!");
    else {
        int degraded = sl_mc_check(req->cfg, &why);

        out = json_pack("{s:s, s:s, s:o, s:s, s:s, s:[]}", "status", degraded ? "degraded" : "healthy",
                        "db", "Not connected", "cache", mc ? json_string("memcached") : json_null(),
                        "litellm_version", PACKAGE_VERSION, "sluice_version", PACKAGE_VERSION,
                        "success_callbacks");
        if (out != NULL && why != NULL && json_object_set_new(out, "memcached", json_string(why)) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    if (out == NULL)
        return SL_ERR_NOMEM;
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

static int dispatch(struct sl_request *req)
{
    int rc, hit;

    if ((rc = find_route(req)) != SL_OK)
        return rc;
    if (req->endpoint == SL_EP_HEALTH_LIVE || req->endpoint == SL_EP_HEALTH_READY)
        return serve_health(req);
    if (req->endpoint == SL_EP_METRICS)
        return sl_metrics_serve(req);
    if ((rc = sl_auth_check(req)) != SL_OK)
        return rc;
    if (req->endpoint == SL_EP_NONE) {
        if (strcmp(req->method, "POST") == 0 && (rc = read_body(req)) != SL_OK)
            return rc;
        return sl_cache_is_route(req->path) ? sl_cache_serve_route(req) : sl_admin_serve(req);
    }
    if (req->endpoint == SL_EP_MODELS)
        return req->path_model ? serve_one_model(req) : serve_models(req);
    if (req->endpoint == SL_EP_RESPONSE_ITEM)
        return serve_stored_response(req);
    if ((rc = read_body(req)) != SL_OK || (rc = parse_body(req)) != SL_OK ||
        (rc = sl_timeouts_from_request(req)) != SL_OK || (rc = sl_router_pick(req)) != SL_OK || (rc = sl_budget_admit(req)) != SL_OK)
        return rc;
    if (req->endpoint != SL_EP_COUNT_TOKENS && (rc = sl_ratelimit_admit(req)) != SL_OK)
        return rc;
    if (req->endpoint == SL_EP_COUNT_TOKENS) {
        /* The provider's own counter where it has one, else an estimate. */
        if (req->dep->provider->build_count_tokens != NULL) {
            sl_proxy_count_tokens(req);
            return SL_OK;
        }
        return sl_messages_count_tokens(req);
    }
    /* The cache is read only by a request that was admitted (auth, budget,
     * rate limits), and keyed on what the client sent (before the
     * Anthropic body is translated for the deployment). */
    if ((rc = sl_cache_begin(req, &hit)) != SL_OK || hit)
        return rc;
    /* Guardrails run after the cache (keyed on what the client sent, never
     * on a masked prompt), on the OpenAI form of the body. */
    if ((rc = sl_guard_select(req)) != SL_OK)
        return rc;
    if (req->endpoint == SL_EP_MESSAGES) {
        if ((rc = sl_messages_to_openai(req)) != SL_OK)
            return rc;
        req->endpoint = SL_EP_CHAT;
    }
    if (req->endpoint == SL_EP_RESPONSES && (rc = sl_responses_prepare(req)) != SL_OK)
        return rc;          /* the chat form too, if the guardrails are to read it */
    if (req->legacy && (rc = sl_completions_prepare(req)) != SL_OK)
        return rc;          /* the chat form too, if the guardrails are to read it */
    if ((rc = sl_guard_pre(req)) != SL_OK)
        return rc;
    sl_proxy_call(req);
    sl_cache_finish(req);
    return SL_OK;
}

int sl_request_is_llm_call(const struct sl_request *req)
{
    switch (req->endpoint) {
    case SL_EP_CHAT: case SL_EP_EMBEDDINGS: case SL_EP_MESSAGES: case SL_EP_RESPONSES:
    case SL_EP_COMPLETIONS: case SL_EP_RERANK: case SL_EP_MODERATIONS: case SL_EP_IMAGES:
    case SL_EP_SPEECH: case SL_EP_TRANSCRIPTIONS:
        return 1;
    default:
        return 0;
    }
}

const char *sl_request_call_type(const struct sl_request *req)
{
    switch (req->endpoint) {
    case SL_EP_EMBEDDINGS: return "aembedding";
    case SL_EP_RERANK: return "arerank";
    case SL_EP_MODERATIONS: return "amoderation";
    case SL_EP_IMAGES: return "aimage_generation";
    case SL_EP_SPEECH: return "aspeech";
    case SL_EP_TRANSCRIPTIONS: return "atranscription";
    default: break;
    }
    return req->surface == SL_SURFACE_ANTHROPIC || req->endpoint == SL_EP_MESSAGES ? "anthropic_messages"
         : req->surface == SL_SURFACE_RESPONSES ? "aresponses"
         : req->legacy ? "atext_completion" : "acompletion";
}

/* Hands an LLM call (routed to a deployment; chat, messages, embeddings,
 * streamed or not, success or failure) to the spend writer. A request
 * refused before the call (a budget, a bad body) is no call. */
static void record_spend(const struct sl_request *req)
{
    struct sl_spend_rec r;
    const struct sl_deployment *d = req->dep;
    const struct sl_key *k = req->principal.key, *u = req->principal.user;
    const char *end_user = req->in ? json_string_value(json_object_get(req->in, "user")) : NULL;
    struct timespec ts;
    long long mono = sl_now_us(), real;

    /* A cache hit is a call too (LiteLLM logs it with cache_hit "True"),
     * at no cost: tokens as stored, spend 0. */
    if (req->cfg == NULL || req->cfg->database_url == NULL || d == NULL ||
        (!req->llm_called && !sl_cache_was_hit(req)) || req->principal.role == SL_ROLE_NONE ||
        !sl_request_is_llm_call(req))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    real = (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
    memset(&r, 0, sizeof(r));
    sl_spend_copy(r.request_id, sizeof(r.request_id), req->id, 0);
    if (req->principal.role == SL_ROLE_KEY)
        sl_spend_copy(r.api_key, sizeof(r.api_key), req->principal.key_hash, 0);
    if (k != NULL) {    /* a key, or a remote user alone (no key: api_key "") */
        sl_spend_copy(r.key_alias, sizeof(r.key_alias), k->key_alias, 0);
        sl_spend_copy(r.team_id, sizeof(r.team_id), k->team_id, 0);
        sl_spend_copy(r.user_id, sizeof(r.user_id), k->user_id, 0);
    }
    if (u != NULL)      /* the web server's user is who spent, with or without a key */
        sl_spend_copy(r.user_id, sizeof(r.user_id), u->user_id, 0);
    sl_spend_copy(r.end_user, sizeof(r.end_user), end_user, 0);
    sl_spend_copy(r.model_group, sizeof(r.model_group),
                  req->model_group ? req->model_group : req->model ? req->model : d->model_name, 0);
    sl_spend_copy(r.model, sizeof(r.model), d->upstream_model, 0);
    sl_spend_copy(r.model_id, sizeof(r.model_id), d->id, 0);
    sl_spend_copy(r.provider, sizeof(r.provider), d->provider ? d->provider->name : NULL, 0);
    sl_spend_copy(r.api_base, sizeof(r.api_base), d->shown_api_base, 1);
    sl_spend_copy(r.call_type, sizeof(r.call_type),
                  sl_request_call_type(req), 0);
    r.http_status = req->http_status;
    sl_spend_copy(r.status, sizeof(r.status),
                  req->error == SL_OK && req->http_status < 400 ? "success" : "failure", 0);
    r.prompt_tokens = req->usage.prompt_tokens;
    r.completion_tokens = req->usage.completion_tokens;
    r.total_tokens = req->usage.total_tokens ? req->usage.total_tokens
                                             : req->usage.prompt_tokens + req->usage.completion_tokens;
    r.cached_tokens = req->usage.cached_tokens;
    r.cache_write_tokens = req->usage.cache_write_tokens;
    r.spend_units = req->cost_known ? sl_spend_units(req->cost) : 0;
    r.start_us = real - (mono - req->t_start_us);
    r.end_us = real;
    r.first_token_us = req->t_first_byte_us ? real - (mono - req->t_first_byte_us) : 0;
    if (sl_cache_key_of(req) != NULL) {
        sl_spend_copy(r.cache_hit, sizeof(r.cache_hit), sl_cache_was_hit(req) ? "True" : "False", 0);
        sl_spend_copy(r.cache_key, sizeof(r.cache_key), sl_cache_key_of(req), 0);
    }
    sl_spend_record(&r);
}

static void log_request(const struct sl_request *req)
{
    long long now = sl_now_us();
    json_t *f = json_pack("{s:s, s:s, s:s?, s:s?, s:i, s:f, s:b, s:I, s:I, s:I}",
        "method", req->method, "path", req->path ? req->path : req->uri,
        "model", req->model, "deployment", req->dep ? req->dep->id : NULL,
        "status", req->http_status, "latency_ms", (now - req->t_start_us) / 1000.0,
        "stream", req->stream, "events", (json_int_t)req->n_events,
        "prompt_tokens", (json_int_t)req->usage.prompt_tokens,
        "completion_tokens", (json_int_t)req->usage.completion_tokens);

    if (f == NULL)
        return;      /* e.g. a model name that is not UTF-8 cannot be logged */
    if (req->t_first_byte_us)
        json_object_set_new(f, "ttfb_ms", json_real((req->t_first_byte_us - req->t_start_us) / 1000.0));
    if (req->client_gone)
        json_object_set_new(f, "client_gone", json_true());
    if (sl_cache_key_of(req) != NULL)
        json_object_set_new(f, "cache", json_string(sl_cache_was_hit(req) ? "hit" : "miss"));
    if (req->cost_known)
        json_object_set_new(f, "cost", json_real(req->cost));
    if (req->model_group != NULL && req->model != NULL && strcmp(req->model_group, req->model) != 0)
        json_object_set_new(f, "model_group", json_string(req->model_group));
    if (req->route.retries > 0)
        json_object_set_new(f, "retries", json_integer(req->route.retries));
    if (req->route.fallbacks > 0)
        json_object_set_new(f, "fallbacks", json_integer(req->route.fallbacks));
    if (req->error != SL_OK)
        json_object_set_new(f, "error", json_string(sl_status_name(req->error)));
    if (req->trace.from_client || (req->cfg != NULL && req->cfg->tracing)) {
        char tid[33];

        sl_trace_hex(req->trace.trace_id, 16, tid);
        json_object_set_new(f, "trace_id", json_string(tid));
    }
    sl_log_json(SL_LOG_INFO, req, "request", f);
}

void sl_request_run(struct sl_conn conn, struct sl_arena *arena,
                    struct sl_upstream_thread *up)
{
    struct sl_request req;
    int rc;

    memset(&req, 0, sizeof(req));
    req.arena = arena;
    req.conn = conn;
    req.up = up;
    req.t_start_us = req.t_last_write_us = sl_now_us();
    req.stage = "accept";
    make_id(req.id);
    sl_trace_begin(&req);
    sl_log_current = &req;
    req.cfg = sl_config_acquire();
    req.method = conn.ops->param(conn.ctx, "REQUEST_METHOD");
    req.uri = conn.ops->param(conn.ctx, "REQUEST_URI");
    req.content_type = conn.ops->param(conn.ctx, "CONTENT_TYPE");
    if (req.method == NULL)
        req.method = "GET";
    if (req.uri == NULL)
        req.uri = "/";
    sl_metrics_begin(&req);
    sl_trace_sample(&req);
    if (req.cfg == NULL)
        rc = SL_ERR_BUSY;
    else
        rc = dispatch(&req);
    if (rc != SL_OK)
        sl_respond_error(&req, rc, NULL);
    req.stage = "done";
    sl_router_release(&req, 0);
    sl_budget_settle(&req);
    sl_ratelimit_release(&req);
    record_spend(&req);
    sl_metrics_end(&req);
    sl_export_request(&req);
    if (req.cfg != NULL && sl_log_level >= SL_LOG_INFO)
        log_request(&req);
    sl_log_current = NULL;
    sl_config_unref(req.cfg);
    sl_arena_reset(arena);
}

void sl_request_reject(struct sl_conn conn, struct sl_arena *arena, int status)
{
    struct sl_request req;

    memset(&req, 0, sizeof(req));
    req.arena = arena;
    req.conn = conn;
    req.t_start_us = req.t_last_write_us = sl_now_us();
    req.stage = "reject";
    make_id(req.id);
    req.method = conn.ops->param(conn.ctx, "REQUEST_METHOD");
    req.uri = conn.ops->param(conn.ctx, "REQUEST_URI");
    req.method = req.method ? req.method : "GET";
    req.path = req.uri = req.uri ? req.uri : "/";
    req.cfg = sl_config_acquire();          /* for the metrics alone */
    sl_metrics_begin(&req);
    sl_respond_error(&req, status, NULL);
    req.stage = "done";
    sl_metrics_end(&req);
    sl_config_unref(req.cfg);
    req.cfg = NULL;
    if (sl_log_level >= SL_LOG_INFO)
        log_request(&req);
    sl_arena_reset(arena);
}

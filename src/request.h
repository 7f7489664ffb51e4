/* struct sl_request: one client request from accept to the last byte. Each
 * stage reads what earlier stages set and adds its own results. The request
 * owns nothing outside its arena: everything with request lifetime is
 * allocated there or registered with sl_arena_defer. */
#ifndef SL_REQUEST_H
#define SL_REQUEST_H

#include <stddef.h>
#include <time.h>
#include <jansson.h>
#include "auth.h"
#include "budget.h"
#include "conn.h"
#include "provider.h"
#include "ratelimit.h"
#include "trace.h"

struct sl_arena;
struct sl_config;
struct sl_group;
struct sl_deployment;
struct sl_upstream_thread;

struct sl_usage {
    long prompt_tokens;
    long completion_tokens;
    long total_tokens;
    long cached_tokens;      /* prompt_tokens_details.cached_tokens */
    long cache_write_tokens; /* cache_creation_input_tokens (Anthropic), part of prompt_tokens */
    long units;              /* images, characters, seconds or queries billed (prices.h) */
    int  seen;               /* a usage object came back */
};

#define SL_MAX_RESP_HEADERS 64   /* rate limits alone may add 40 */
#define SL_MAX_ATTEMPTS 8        /* upstream attempts remembered (metrics, traces) */

/* One upstream attempt (proxy.c), as metrics and traces see it. */
struct sl_attempt {
    const struct sl_deployment *dep;
    const char *group;           /* the model group it was made for (config) */
    long long t0_us, t1_us;      /* monotonic: sent, ended */
    long long ttfb_us;           /* the first upstream byte; 0: none */
    int status;                  /* the upstream's HTTP status; 0: none */
    int fail;                    /* router.h SL_FAIL_*; 0: success, or not the deployment's
                                  * failure (aborted set, or a status to classify) */
    int aborted;                 /* the client left during it */
    unsigned char span_id[8];    /* its trace span (trace.h) */
};

struct sl_request {
    struct sl_arena *arena;          /* borrowed from the worker; reset at the end */
    struct sl_conn   conn;
    struct sl_upstream_thread *up;   /* borrowed: this thread's curl handles */
    struct sl_config *cfg;           /* one reference, dropped at the end */
    const char *stage;               /* static: "read", "auth", "route", ... */
    char id[40];                     /* request id; also x-request-id */
    struct sl_trace trace;           /* trace.c: the trace it continues or starts */
    long long t_start_us;            /* monotonic clock at accept */

    /* from the web server (borrowed from conn params or arena) */
    const char *method;
    const char *uri;                 /* REQUEST_URI as sent */
    const char *path;                /* uri without query string (arena) */
    const char *route_label;         /* the route as a label: a static template
                                      * ("/v1/chat/completions", "/key/..."), "other" */
    const char *content_type;
    size_t form_model_at;            /* a multipart upload: where its "model" value is in */
    size_t form_model_len;           /* the body, for the adapter to replace */

    /* body */
    char  *body;                     /* arena, NUL-terminated */
    size_t body_len;
    json_t *in;                      /* owned via arena defer: the parsed body */
    enum sl_endpoint endpoint;
    const char *model;               /* requested model (borrowed from in) */
    const char *model_group;         /* the group it was routed to (the key's alias of model,
                                      * or model itself); NULL before routing */
    const char *model_json;          /* model as JSON string text (arena), for splicing */
    size_t      model_json_len;
    const char *path_model;          /* model named in the path (/engines/{m}/..., /v1/models/{m}) */
    int stream;                      /* "stream": true */
    long timeout_ms;                 /* the request's own "timeout" or x-litellm-timeout,
                                      * capped (timeouts.c); 0: none */
    int include_usage;               /* the client asked for stream usage */

    struct sl_principal principal;
    struct sl_route {                /* router.c's bookkeeping of this request */
        const struct sl_deployment *held;    /* counted in flight; NULL: none */
        const struct sl_group *first, *group; /* the group asked for; the current one */
        long long attempt_us;        /* when the current attempt started (monotonic) */
        int retries, fallbacks;      /* attempted so far */
        int in_group;                /* retries in the current group */
        int key_alias;               /* the key's own alias named the group */
        const struct sl_deployment *tried[8];   /* failed in the current group */
        size_t n_tried;
        const struct sl_group *visited[8];      /* groups tried */
        size_t n_visited;
        const struct sl_group **own;  /* the request's own "fallbacks" */
        size_t n_own;
    } route;
    struct sl_attempt attempts[SL_MAX_ATTEMPTS];   /* the first ones in order, the last
                                      * one always in the last place used */
    int n_attempts;                  /* made (may exceed SL_MAX_ATTEMPTS) */
    const char *rejected;            /* why admission refused it ("rpm", "tpm",
                                      * "max_parallel_requests", "budget"), static; NULL */
    const char *rejected_scope;      /* whose limit: "api_key", "team", "user", "end_user",
                                      * "model_per_key", "global" (static) */
    struct sl_counter_hold budget_holds[SL_BUDGET_HOLDS];   /* budget.c: reserved at admission */
    struct sl_limit_hold limits;     /* ratelimit.c: held from admission to the end */
    const struct sl_deployment *dep; /* borrowed from cfg */
    struct sl_guard_req *guard;      /* guard.c: the guardrails of this call (arena); NULL: none */
    struct sl_cache_req *cache;      /* cache.c: the response cache's state for this request
                                      * (arena); NULL: the cache is not used */
    void *pstate;                    /* adapter scratch (arena) */

    /* the API the client speaks: OpenAI's chat completions, Anthropic's
     * Messages API (messages.c) or OpenAI's Responses API (responses.c);
     * surface.h sends chat answers in the last two's shapes */
    enum { SL_SURFACE_OPENAI = 0, SL_SURFACE_ANTHROPIC, SL_SURFACE_RESPONSES,
           SL_SURFACE_COMPLETIONS } surface;
    void *surface_state;             /* messages.c's, responses.c's or completions.c's state (arena) */
    int legacy;                      /* POST /v1/completions: completions.c picks native or chat
                                      * per attempt (and sets surface) */
    const char *anthropic_beta;      /* the client's anthropic-beta header, for anthropic/ (borrowed) */

    /* response */
    int  http_status;                /* status sent, or about to be */
    int  headers_sent;
    int  raw_body;                   /* the reply is bytes passed on (sl_respond_bytes) */
    int  client_gone;
    const char *resp_headers[SL_MAX_RESP_HEADERS]; /* "Name: value", arena */
    size_t n_resp_headers;
    long long t_first_byte_us;       /* first byte from the upstream */
    const char *upstream_ctype;      /* the upstream's Content-Type (arena), for replies
                                      * passed on as they came (audio, transcripts) */
    long long t_last_write_us;       /* last write to the client (heartbeats) */
    long n_events;                   /* stream events sent */
    int llm_called;                  /* sl_proxy_call went ahead: spend is recorded */
    struct sl_usage usage;
    double cost;                     /* USD, once usage is known (providers/prices.c) */
    int cost_known;                  /* the price of the model is known */
    char *err_msg;                   /* detail for an error reply (arena) */
    const char *err_type;            /* NULL, or the error "type" to answer instead of the
                                      * status's own (LiteLLM's "expired_key", ...) */
    const char *err_param;           /* NULL, or the error's "param" */
    int   error;                     /* the sl_status answered, SL_OK if none (log line) */
    struct sl_error upstream_err;    /* filled when the upstream failed */
    int upstream_timed_out;          /* upstream.c: the last transfer hit a time-out and set
                                      * err_msg; the next transfer clears both */
};

/* Runs one request end to end on conn: read, parse, authenticate, dispatch,
 * respond, log. Never fails: every error is answered to the client. The arena
 * is reset afterwards. */
void sl_request_run(struct sl_conn conn, struct sl_arena *arena,
                    struct sl_upstream_thread *up);

/* Answers a request that will not be served (status: SL_ERR_BUSY when every
 * worker is taken) with the error envelope, without reading its body. */
void sl_request_reject(struct sl_conn conn, struct sl_arena *arena, int status);

/* The place of the next upstream attempt of req (proxy.c fills it), and
 * the last one made (a zeroed one before the first). */
struct sl_attempt *sl_request_new_attempt(struct sl_request *req);

/* Whether the request is an LLM call (chat in any surface, embeddings,
 * rerank, the media routes): spend, callbacks and metrics follow it. */
int sl_request_is_llm_call(const struct sl_request *req);

/* LiteLLM's call type of the request ("acompletion", "aembedding",
 * "anthropic_messages", "aresponses", "atext_completion", "arerank", ...),
 * static. */
const char *sl_request_call_type(const struct sl_request *req);
const struct sl_attempt *sl_request_last_attempt(const struct sl_request *req);

/* LiteLLM's exception class (the exception_class label, error.type of a
 * span, error_class of an event), static text: of req, NULL when it
 * succeeded; of an attempt, NULL when it succeeded (or the client left). */
const char *sl_request_error_class(const struct sl_request *req);
const char *sl_attempt_error_class(const struct sl_attempt *a);

/* Microseconds on the monotonic clock. */
long long sl_now_us(void);

/* The time us microseconds from now on clock (CLOCK_REALTIME or
 * CLOCK_MONOTONIC, as the condition variable waits), for
 * pthread_cond_timedwait. */
struct timespec sl_deadline(int clock, long long us);

#endif

/* The provider adapter interface. An adapter only translates: OpenAI-shaped
 * client JSON to the provider's native request, and the native answer (whole
 * or one stream event at a time) back to OpenAI-shaped JSON. It owns no
 * sockets, no globals, and logs no content; the core (upstream.c, proxy.c)
 * owns connections, time-outs, retries and the client stream. */
#ifndef SL_PROVIDER_H
#define SL_PROVIDER_H

#include <stddef.h>
#include <jansson.h>

#define SL_PROVIDER_ABI 1u

struct sl_request;

enum sl_endpoint {
    SL_EP_NONE = 0,
    SL_EP_CHAT,          /* POST /v1/chat/completions */
    SL_EP_EMBEDDINGS,    /* POST /v1/embeddings */
    SL_EP_MODELS,        /* GET  /v1/models */
    SL_EP_HEALTH_LIVE,   /* GET  /health/liveliness */
    SL_EP_HEALTH_READY,  /* GET  /health/readiness */
    SL_EP_MESSAGES,      /* POST /v1/messages (Anthropic's format; adapters see SL_EP_CHAT) */
    SL_EP_COUNT_TOKENS,  /* POST /v1/messages/count_tokens */
    SL_EP_METRICS,       /* GET  /metrics (metrics.c) */
    SL_EP_RESPONSES,     /* POST /v1/responses (responses.c; passed through to the providers that
                          * have it, as chat completions to the others) */
    SL_EP_RESPONSE_ITEM, /* GET/DELETE /v1/responses/{id}: stored responses (none are kept) */
    SL_EP_COMPLETIONS,   /* POST /v1/completions, legacy text completions (completions.c: passed
                          * through to OpenAI-wire providers, as chat to the others) */
    SL_EP_RERANK,        /* POST /v1/rerank (Cohere's shape, as LiteLLM serves it) */
    SL_EP_MODERATIONS,   /* POST /v1/moderations       } passed through to */
    SL_EP_IMAGES,        /* POST /v1/images/generations } the providers that */
    SL_EP_SPEECH,        /* POST /v1/audio/speech: audio bytes streamed back } have them */
    SL_EP_TRANSCRIPTIONS,/* POST /v1/audio/transcriptions: a multipart upload } (openai/) */
    SL_EP_MAX
};
#define SL_EP_BIT(ep) (1u << (ep))

/* How a streamed upstream reply is cut into events. SL_FRAMING_EVENTSTREAM
 * is AWS's binary application/vnd.amazon.eventstream (Bedrock);
 * SL_FRAMING_RAW passes bytes on as they come (audio): each read is one
 * event whose data is those bytes, not NUL-terminated and NULs allowed. */
enum sl_framing { SL_FRAMING_SSE = 0, SL_FRAMING_NDJSON, SL_FRAMING_EVENTSTREAM, SL_FRAMING_RAW };

/* One complete upstream stream event. Strings are NUL-terminated and live
 * until the callback returns. An event-stream message fills the same fields:
 * event is its :event-type header (:exception-type for an exception message,
 * :error-code for an error message), data its payload (an error message's
 * :error-message when it has no payload), and id its :message-type header
 * ("event", "exception" or "error"). */
struct sl_sse_event {
    const char *event;   /* the "event:" field, NULL if none */
    const char *data;    /* "data:" lines joined by '\n' ("" if none) */
    size_t      data_len;
    const char *id;      /* the "id:" field, NULL if none */
};

#define SL_UPSTREAM_MAX_HEADERS 16

/* What build_request fills in; every pointer is arena memory (or static). */
struct sl_upstream_req {
    const char *url;
    const char *headers[SL_UPSTREAM_MAX_HEADERS];  /* "Name: value" */
    size_t      n_headers;
    const char *body;
    size_t      body_len;
    enum sl_framing framing;      /* for streamed replies */
    /* A local provider (mock) serves its reply without any network: the core
     * replays local_body as if the upstream had sent it, with local_status,
     * and local_delay_ms between stream events. url is then NULL. */
    const char *local_body;
    size_t      local_len;
    long        local_status;
    long        local_delay_ms;
};

/* A stream event that is nothing but a piece of text, recognised without a
 * parse (see fast_delta below). */
struct sl_fast_delta {
    const char *id;          /* the answer's id, as in its other chunks */
    long long   created;
    const char *text;        /* the text as a JSON string token, quotes and escapes as sent */
    size_t      text_len;
    int         reasoning;   /* 1: it goes to delta.reasoning_content, 0: delta.content */
};

/* An error in OpenAI's shape. Strings are static or arena memory. */
struct sl_error {
    int         http_status;
    const char *type;      /* "invalid_request_error", "rate_limit_error", ... */
    const char *message;
    const char *param;     /* NULL -> JSON null */
    const char *code;      /* NULL -> the status as a string, as LiteLLM does */
};

/* The provider's replies are in OpenAI's wire format already: the core then
 * passes them through by splicing the client's model name into the text and
 * reading usage from it, and calls parse_* only for what it cannot splice
 * (an in-band error). */
#define SL_PROVIDER_OPENAI_WIRE 1u
/* The provider has no default endpoint: a deployment must name api_base (or
 * set api_base_env). Checked when the config is loaded. */
#define SL_PROVIDER_NEEDS_API_BASE 2u

struct sl_provider {
    const char *name;             /* the model prefix: "openai" in "openai/gpt-4o" */
    unsigned    abi;              /* must equal SL_PROVIDER_ABI */
    unsigned    flags;            /* SL_PROVIDER_* */
    const char *api_key_env;      /* env var used when api_key is not configured, or NULL */
    const char *default_api_base; /* used when api_base is not configured, or NULL */
    unsigned    endpoints;        /* SL_EP_BIT() of each endpoint it serves */
    const char *api_base_env;     /* env var used when api_base is not configured, or NULL */
    const void *data;             /* the adapter's own constant data (a vendor's quirks), or NULL */

    /* Client JSON -> URL, headers and body. req->dep, req->endpoint and
     * req->stream are set. SL_OK, SL_ERR_BAD_REQUEST (with req->err_msg set),
     * SL_ERR_UNSUPPORTED or SL_ERR_NOMEM. */
    int (*build_request)(struct sl_request *req, const json_t *in,
                         struct sl_upstream_req *out);
    /* A whole 2xx reply -> OpenAI JSON; *out is a new reference.
     * SL_ERR_UPSTREAM_BAD if the reply cannot be understood. */
    int (*parse_response)(struct sl_request *req, const char *body, size_t len,
                          json_t **out);
    /* One stream event -> zero or one OpenAI chunk (*out new reference or
     * NULL; a JSON array stands for several chunks in order); *done set to 1
     * at the end of the stream. SL_ERR_UPSTREAM_BAD on garbage; an in-band
     * upstream error is reported by returning SL_ERR_UPSTREAM_STATUS with
     * req->upstream_err filled in. */
    int (*parse_stream_event)(struct sl_request *req, const struct sl_sse_event *ev,
                              json_t **out, int *done);
    /* The upstream's error status + parsed body (may be NULL) -> *out.
     * NULL slot: the core keeps the status and takes message/type from an
     * OpenAI-shaped body if there is one. */
    int (*map_error)(struct sl_request *req, long http_status, const json_t *body,
                     struct sl_error *out);
    /* Optional, for streams: when ev is a plain text delta that
     * parse_stream_event would turn into exactly one chunk {"delta":
     * {"content": text}} (no finish, no usage, no state change), fill *out
     * and return 1: the core writes that chunk from a template, copying the
     * text token as it came, without Jansson. 0: call parse_stream_event. */
    int (*fast_delta)(struct sl_request *req, const struct sl_sse_event *ev,
                      struct sl_fast_delta *out);
    /* Optional: the provider's own token counter for Anthropic's
     * /v1/messages/count_tokens; in is the client's body in Anthropic's
     * shape. The reply must be {"input_tokens": N}. Without it the gateway
     * answers an estimate. */
    int (*build_count_tokens)(struct sl_request *req, const json_t *in, struct sl_upstream_req *out);
};

/* The registry (providers/registry.c). */
const struct sl_provider *sl_provider_find(const char *name);
/* Checks ABI versions and duplicate names; SL_OK or SL_ERR_INTERNAL. */
int sl_provider_registry_check(void);

#endif

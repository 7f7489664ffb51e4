/* Fuzzing the response side of the adapters: the input is what an upstream
 * sent. Each family (one parse_* implementation, whatever registry names
 * share it) has a few fixed client requests that steer its state (plain
 * chat; JSON mode with tools; reasoning or n; embeddings; and one in
 * Anthropic's Messages API, which messages.c converts both ways). For each,
 * on a fresh request, build_request runs first, as the core does, and then
 * the input goes where proxy.c sends an upstream reply:
 *   - non-streaming: parse_response on the input as a whole body, and
 *     map_error on it as an error body (the first request only: it has no
 *     state to vary); an Anthropic client's completion through messages.c;
 *   - streaming: the input through the framer build_request chose, each
 *     event to parse_stream_event, stopping where proxy.c stops, and an
 *     Anthropic client's chunks through messages.c.
 * Checked: the statuses are the documented ones; a successful parse gives a
 * JSON object (a stream event: nothing, an object or an array of objects)
 * that can be serialised and, from a translating adapter, has OpenAI's
 * shape where clients and spend rely on it; a failed parse_response leaves
 * *out NULL; error strings are readable. Leaks and memory errors are the
 * sanitizers' part.
 *
 * For OpenAI-wire providers the core splices rather than parses (proxy.c):
 * the member scanner (jscan.h) then reads the body and every event, and is
 * checked against Jansson: a document Jansson takes as an object must scan,
 * to the same members with the same values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "framing.h"
#include "fuzz.h"
#include "jscan.h"
#include "jsonutil.h"
#include "messages.h"
#include "provider.h"
#include "request.h"
#include "status.h"
#include "unit/memconn.h"

struct setup {
    const char *deployment;  /* {"model": "<provider>/<model>", "api_key", "api_base", "litellm_params"} */
    const char *client;      /* the client's request; the driver sets "stream" */
    int stream;              /* also run the streaming path */
    int surface;             /* client is Anthropic's Messages API: messages.c converts both ways */
};

struct family {
    const char *name;
    int wire;                /* OpenAI wire: the splice path's scanner is checked too */
    const struct setup *setups;   /* ends with a NULL deployment */
};

#define USER_HI "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
#define TOOLS "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":" \
              "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}}]"
#define SCHEMA "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\"," \
               "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}}}"
/* An Anthropic Messages API request (POST /v1/messages), with a tool. */
#define ANTHROPIC_IN "{\"model\":\"m\",\"max_tokens\":64," USER_HI ",\"tools\":[{\"name\":\"f\"," \
                     "\"input_schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}]}"
/* Bedrock's API-key auth: SigV4 signing would be most of each run's time,
 * and the reply side does not depend on how the request was signed. */
#define AWS "\"api_key\":\"k\",\"litellm_params\":{\"aws_region_name\":\"us-east-1\"}"

static const struct setup openai_setups[] = {
    { "{\"model\":\"openai/gpt-4o\",\"api_key\":\"k\"}", "{\"model\":\"m\"," USER_HI "}", 1, 0 },
    { "{\"model\":\"openai/gpt-4o\",\"api_key\":\"k\"}", ANTHROPIC_IN, 1, 1 },
    { NULL, NULL, 0, 0 }
};

static const struct setup anthropic_setups[] = {
    { "{\"model\":\"anthropic/claude-sonnet-4-5\",\"api_key\":\"k\"}", "{\"model\":\"m\"," USER_HI "}", 1, 0 },
    { "{\"model\":\"anthropic/claude-sonnet-4-5\",\"api_key\":\"k\"}",
      "{\"model\":\"m\"," USER_HI "," TOOLS "," SCHEMA "}", 1, 0 },
    { "{\"model\":\"anthropic/claude-sonnet-4-5\",\"api_key\":\"k\"}",
      "{\"model\":\"m\"," USER_HI "," TOOLS ",\"reasoning_effort\":\"low\"}", 1, 0 },
    { "{\"model\":\"anthropic/claude-sonnet-4-5\",\"api_key\":\"k\"}", ANTHROPIC_IN, 1, 1 },
    { NULL, NULL, 0, 0 }
};

static const struct setup bedrock_setups[] = {
    { "{\"model\":\"bedrock/anthropic.claude-3-haiku-20240307-v1:0\"," AWS "}",
      "{\"model\":\"m\"," USER_HI "}", 1, 0 },
    { "{\"model\":\"bedrock/anthropic.claude-3-haiku-20240307-v1:0\"," AWS "}",
      "{\"model\":\"m\"," USER_HI "," TOOLS "," SCHEMA "}", 1, 0 },
    { "{\"model\":\"bedrock/amazon.nova-pro-v1:0\"," AWS "}", "{\"model\":\"m\"," USER_HI "}", 1, 0 },
    { "{\"model\":\"bedrock/amazon.titan-embed-text-v2:0\"," AWS "}",
      "{\"model\":\"m\",\"input\":[\"hello\"]}", 0, 0 },
    { "{\"model\":\"bedrock/cohere.embed-english-v3\"," AWS "}",
      "{\"model\":\"m\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\"}", 0, 0 },
    { "{\"model\":\"bedrock/anthropic.claude-3-haiku-20240307-v1:0\"," AWS "}", ANTHROPIC_IN, 1, 1 },
    { NULL, NULL, 0, 0 }
};

static const struct setup cohere_setups[] = {
    { "{\"model\":\"cohere_chat/command-a-03-2025\",\"api_key\":\"k\"}", "{\"model\":\"m\"," USER_HI "}", 1, 0 },
    { "{\"model\":\"cohere/command-a-reasoning-08-2025\",\"api_key\":\"k\"}",
      "{\"model\":\"m\"," USER_HI "," TOOLS "," SCHEMA "}", 1, 0 },
    { "{\"model\":\"cohere/embed-v4.0\",\"api_key\":\"k\"}", "{\"model\":\"m\",\"input\":[\"a\",\"b\"]}", 0, 0 },
    { "{\"model\":\"cohere/embed-v4.0\",\"api_key\":\"k\"}",
      "{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"base64\"}", 0, 0 },
    { "{\"model\":\"cohere_chat/command-a-03-2025\",\"api_key\":\"k\"}", ANTHROPIC_IN, 1, 1 },
    { NULL, NULL, 0, 0 }
};

static const struct setup ollama_setups[] = {
    { "{\"model\":\"ollama_chat/llama3.2\"}", "{\"model\":\"m\"," USER_HI "}", 1, 0 },
    { "{\"model\":\"ollama/llama3.2\"}",
      "{\"model\":\"m\"," USER_HI "," TOOLS "," SCHEMA ",\"reasoning_effort\":\"high\"}", 1, 0 },
    { "{\"model\":\"ollama/nomic-embed-text\"}", "{\"model\":\"m\",\"input\":[\"a\",\"b\"]}", 0, 0 },
    { "{\"model\":\"ollama/nomic-embed-text\"}",
      "{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"base64\"}", 0, 0 },
    { "{\"model\":\"ollama_chat/llama3.2\"}", ANTHROPIC_IN, 1, 1 },
    { NULL, NULL, 0, 0 }
};

#define VERTEX "\"litellm_params\":{\"vertex_project\":\"p\",\"vertex_location\":\"us-central1\"," \
               "\"vertex_access_token\":\"t\"}"
static const struct setup gemini_setups[] = {
    { "{\"model\":\"gemini/gemini-2.5-flash\",\"api_key\":\"k\"}", "{\"model\":\"m\"," USER_HI "}", 1, 0 },
    { "{\"model\":\"gemini/gemini-2.5-flash\",\"api_key\":\"k\"}",
      "{\"model\":\"m\"," USER_HI "," TOOLS "," SCHEMA ",\"n\":2}", 1, 0 },
    { "{\"model\":\"gemini/text-embedding-004\",\"api_key\":\"k\"}",
      "{\"model\":\"m\",\"input\":[\"a\",\"b\"]}", 0, 0 },
    { "{\"model\":\"gemini/text-embedding-004\",\"api_key\":\"k\"}",
      "{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"base64\"}", 0, 0 },
    { "{\"model\":\"vertex_ai/gemini-2.5-pro\"," VERTEX "}", "{\"model\":\"m\"," USER_HI "}", 1, 0 },
    { "{\"model\":\"vertex_ai/text-embedding-005\"," VERTEX "}",
      "{\"model\":\"m\",\"input\":[\"a\"]}", 0, 0 },
    { "{\"model\":\"gemini/gemini-2.5-flash\",\"api_key\":\"k\"}", ANTHROPIC_IN, 1, 1 },
    { NULL, NULL, 0, 0 }
};

static const struct family families[] = {
    { "openai", 1, openai_setups },
    { "anthropic", 0, anthropic_setups },
    { "bedrock", 0, bedrock_setups },
    { "cohere", 0, cohere_setups },
    { "ollama", 0, ollama_setups },
    { "gemini", 0, gemini_setups },
    { NULL, 0, NULL }
};

/* ---- the splice path's scanner, against Jansson ---- */

struct scan {
    const char *start, *end;   /* the scanned text */
    const json_t *oracle;      /* borrowed: Jansson's parse of it, or NULL */
    size_t n;                  /* members seen */
};

static void scan_object(const char *p, size_t len);

static int scan_member(void *ctx, const struct sl_jmember *m)
{
    struct scan *s = ctx;
    char key[256];

    if (m->key < s->start || m->key + m->key_len > s->end || m->val < s->start ||
        m->val_len == 0 || m->val + m->val_len > s->end)
        sl_fuzz_fail("jscan: a member outside the text");
    s->n++;
    if (m->val[0] == '{')
        scan_object(m->val, m->val_len);
    else
        (void)sl_jscan_find_key(m->val, m->val_len, "finish_reason");
    if (s->oracle != NULL && m->key_len < sizeof(key) && memchr(m->key, '\\', m->key_len) == NULL) {
        json_error_t err;
        json_t *v = json_loadb(m->val, m->val_len, JSON_DECODE_ANY, &err);

        memcpy(key, m->key, m->key_len);
        key[m->key_len] = '\0';
        if (!json_equal(v, json_object_get(s->oracle, key)))
            sl_fuzz_fail("jscan: a member's value differs from Jansson's");
        json_decref(v);
    }
    return 0;
}

/* Scans p as proxy.c does, nested objects too (usage's details); where
 * Jansson parses p as an object, the scan must succeed and agree. */
static void scan_object(const char *p, size_t len)
{
    const char *why;
    json_t *oracle = sl_json_parse(p, len, &why);
    struct scan s = { p, p + len, oracle, 0 };
    int rc = sl_jscan_object(p, len, scan_member, &s);

    if (json_is_object(oracle) && (rc != 0 || s.n != json_object_size(oracle)))
        sl_fuzz_fail("jscan: refused or miscounted an object Jansson parsed");
    (void)sl_jscan_find_key(p, len, "usage");
    json_decref(oracle);
}

/* ---- one request ---- */

struct stream_ctx {
    struct sl_request *req;
    int wire;
    int done;                /* the adapter said the stream ended */
    int finished;            /* a chunk carried a finish_reason (proxy.c's end_stream) */
};

static void check_error(const struct sl_error *e)
{
    const char *s[4] = { e->type, e->message, e->param, e->code };

    for (int i = 0; i < 4; i++)
        if (s[i] != NULL)
            (void)strlen(s[i]);
}

/* Usage, where there is one, in counts spend can trust. */
static void check_usage(const json_t *o)
{
    static const char *const keys[] = { "prompt_tokens", "completion_tokens", "total_tokens" };
    const json_t *u = json_object_get(o, "usage"), *n;

    if (u == NULL || json_is_null(u))
        return;
    if (!json_is_object(u))
        sl_fuzz_fail("usage is not an object");
    for (int i = 0; i < 3; i++)
        if ((n = json_object_get(u, keys[i])) != NULL && (!json_is_integer(n) || json_integer_value(n) < 0))
            sl_fuzz_fail("a usage count is not a non-negative integer");
}

/* A tool call as the OpenAI SDK reads it: a string name and arguments
 * where present (in a stream delta, each piece may come alone), and in a
 * delta an index. */
static void check_tool_calls(const json_t *calls, int delta)
{
    const json_t *c, *f, *v;
    size_t i;

    if (calls == NULL)
        return;
    if (!json_is_array(calls))
        sl_fuzz_fail("tool_calls is not an array");
    json_array_foreach(calls, i, c) {
        f = json_object_get(c, "function");
        if (!json_is_object(c) || (!delta && !json_is_object(f)))
            sl_fuzz_fail("a tool call without a function");
        if (delta && (!json_is_integer(v = json_object_get(c, "index")) || json_integer_value(v) < 0))
            sl_fuzz_fail("a tool call delta without an index");
        if (((v = json_object_get(f, "name")) != NULL || !delta) && !json_is_string(v))
            sl_fuzz_fail("a tool call's name is not a string");
        if (((v = json_object_get(f, "arguments")) != NULL || !delta) && !json_is_string(v))
            sl_fuzz_fail("a tool call's arguments are not a string");
    }
}

/* What a translating adapter hands the client is OpenAI's shape (the OpenAI
 * wire is passed through as the upstream sent it, so only its type is
 * checked): a completion's or chunk's choices with a message or delta, an
 * embeddings list, and usage. */
static void check_shape(const json_t *o, enum sl_endpoint ep, int chunk)
{
    const json_t *choices = json_object_get(o, "choices"), *c, *m, *data, *e;
    size_t i;

    check_usage(o);
    if (ep == SL_EP_EMBEDDINGS) {
        if (!json_is_array(data = json_object_get(o, "data")))
            sl_fuzz_fail("embeddings without data");
        json_array_foreach(data, i, e)
            if (!json_is_integer(json_object_get(e, "index")) ||
                !(json_is_array(json_object_get(e, "embedding")) ||
                  json_is_string(json_object_get(e, "embedding"))))
                sl_fuzz_fail("an embedding without index or vector");
        return;
    }
    if (!json_is_array(choices) || (!chunk && json_array_size(choices) == 0))
        sl_fuzz_fail("a reply without choices");
    json_array_foreach(choices, i, c) {
        m = json_object_get(c, chunk ? "delta" : "message");
        if (!json_is_object(m))
            sl_fuzz_fail("a choice without its message or delta");
        if ((e = json_object_get(m, "content")) != NULL && !json_is_string(e) && !json_is_null(e))
            sl_fuzz_fail("content that is neither a string nor null");
        check_tool_calls(json_object_get(m, "tool_calls"), chunk);
    }
}

/* A successful result: an object (or, from a stream, an array of objects)
 * that serialises, in OpenAI's shape unless it came from the OpenAI wire. */
static void check_json(const json_t *out, enum sl_endpoint ep, int chunk, int wire)
{
    char *text;
    size_t i;
    json_t *c;

    if (json_is_array(out) && chunk) {
        json_array_foreach(out, i, c) {
            if (!json_is_object(c))
                sl_fuzz_fail("a chunk array holds a non-object");
            if (!wire)
                check_shape(c, ep, 1);
        }
    } else if (!json_is_object(out)) {
        sl_fuzz_fail("a parse result is not an object");
    } else if (!wire) {
        check_shape(out, ep, chunk);
    }
    if ((text = json_dumps(out, JSON_COMPACT)) == NULL)
        sl_fuzz_fail("a parse result does not serialise");
    free(text);
}

/* Usage as proxy.c reads it, for messages.c's replies. */
static void take_usage(struct sl_request *req, const json_t *o)
{
    const json_t *u = json_object_get(o, "usage");

    if (!json_is_object(u))
        return;
    req->usage.prompt_tokens = (long)json_integer_value(json_object_get(u, "prompt_tokens"));
    req->usage.completion_tokens = (long)json_integer_value(json_object_get(u, "completion_tokens"));
    req->usage.seen = 1;
}

/* One OpenAI chunk to the client, as proxy.c's send_chunk: for an Anthropic
 * client, through messages.c (OpenAI's shape is written as it is: that is
 * respond.c's part, not fuzzed here). */
static int send_chunk(struct stream_ctx *s, const json_t *chunk)
{
    const json_t *choices = json_object_get(chunk, "choices"), *c;
    size_t i;
    int rc;

    take_usage(s->req, chunk);
    json_array_foreach(choices, i, c)
        if (json_is_string(json_object_get(c, "finish_reason")))
            s->finished = 1;
    if (s->req->surface != SL_SURFACE_ANTHROPIC)
        return SL_OK;
    rc = sl_messages_send_chunk(s->req, chunk);
    if (rc != SL_OK && rc != SL_ERR_NOMEM)
        sl_fuzz_fail("sl_messages_send_chunk: unexpected status");
    return rc;
}

static int on_event(void *ctx, const struct sl_sse_event *ev)
{
    struct stream_ctx *s = ctx;
    json_t *out = NULL, *c;
    int done = 0, rc;
    size_t i;

    if (s->done)
        return SL_OK;                     /* proxy.c ignores anything after the end */
    if (s->wire && s->req->surface == SL_SURFACE_OPENAI && ev->data_len > 0)
        scan_object(ev->data, ev->data_len);
    rc = s->req->dep->provider->parse_stream_event(s->req, ev, &out, &done);
    if (rc == SL_OK && out != NULL) {
        check_json(out, s->req->endpoint, 1, s->wire);
        if (json_is_array(out)) {
            json_array_foreach(out, i, c)
                if (rc == SL_OK)
                    rc = send_chunk(s, c);
        } else {
            rc = send_chunk(s, out);
        }
    } else if (rc == SL_ERR_UPSTREAM_STATUS) {
        check_error(&s->req->upstream_err);
    } else if (rc != SL_OK && rc != SL_ERR_UPSTREAM_BAD && rc != SL_ERR_NOMEM) {
        sl_fuzz_fail("parse_stream_event: unexpected status");
    }
    json_decref(out);
    if (done)
        s->done = 1;
    return rc;
}

static void run_stream(struct sl_request *req, enum sl_framing kind, const char *body,
                       size_t len, int wire)
{
    struct stream_ctx s = { req, wire, 0, 0 };
    struct sl_framer f;
    int rc;

    sl_framer_init(&f, kind);
    if ((rc = sl_framer_feed(&f, body, len, on_event, &s)) == SL_OK)
        rc = sl_framer_finish(&f, on_event, &s);
    sl_framer_free(&f);
    /* proxy.c's end_stream: a clean end closes the Anthropic message. */
    if (rc == SL_OK && (s.done || s.finished) && req->surface == SL_SURFACE_ANTHROPIC &&
        (rc = sl_messages_finish(req)) != SL_OK && rc != SL_ERR_NOMEM)
        sl_fuzz_fail("sl_messages_finish: unexpected status");
}

static void run_whole(struct sl_request *req, const char *body, size_t len, int wire, int errors)
{
    static const long statuses[] = { 400, 401, 403, 404, 408, 413, 422, 429, 500, 503, 504, 529 };
    const struct sl_provider *p = req->dep->provider;
    json_t *out = NULL, *ebody;
    const char *why;
    int rc = p->parse_response(req, body, len, &out);

    if (rc == SL_OK) {
        check_json(out, req->endpoint, 0, wire);
        take_usage(req, out);
        if (req->surface == SL_SURFACE_ANTHROPIC && (rc = sl_messages_send_completion(req, out)) != SL_OK &&
            rc != SL_ERR_NOMEM)
            sl_fuzz_fail("sl_messages_send_completion: unexpected status");
    } else {
        if (rc != SL_ERR_UPSTREAM_BAD && rc != SL_ERR_NOMEM)
            sl_fuzz_fail("parse_response: unexpected status");
        if (out != NULL)
            sl_fuzz_fail("parse_response failed but set *out (proxy.c would leak it)");
    }
    json_decref(out);
    if (wire && req->surface == SL_SURFACE_OPENAI)
        scan_object(body, len);
    if (!errors || p->map_error == NULL)
        return;
    ebody = len ? sl_json_parse(body, len, &why) : NULL;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        struct sl_error e = { .http_status = (int)statuses[i] };

        p->map_error(req, statuses[i], ebody, &e);
        check_error(&e);
    }
    json_decref(ebody);
}

/* The deployment as config.c would hold it (strings borrowed from depj). */
static void deployment(const json_t *depj, const json_t *in, struct sl_deployment *dep,
                       struct sl_arena *a)
{
    const char *model = json_string_value(json_object_get(depj, "model"));
    const char *slash = model ? strchr(model, '/') : NULL;

    if (in == NULL || slash == NULL)
        sl_fuzz_fail("a fixed setup does not parse");
    memset(dep, 0, sizeof(*dep));
    dep->model = model;
    dep->model_name = json_string_value(json_object_get(in, "model"));
    dep->provider = sl_provider_find(sl_arena_strndup(a, model, (size_t)(slash - model)));
    dep->upstream_model = slash + 1;
    dep->api_base = json_string_value(json_object_get(depj, "api_base"));
    dep->api_key = json_string_value(json_object_get(depj, "api_key"));
    dep->litellm_params = json_object_get(depj, "litellm_params");
    if (dep->litellm_params == NULL)
        dep->litellm_params = (json_t *)depj;
    if (dep->provider == NULL)
        sl_fuzz_fail("a fixed setup names no registered provider");
}

/* Builds the setup's request (streaming or not) on a fresh request, as
 * request.c and proxy.c do, then hands the input to the matching parser. */
static void run_setup(const struct family *fam, const struct setup *s, int stream, int errors,
                      const char *body, size_t len, struct sl_arena *a)
{
    static const char *const no_params[] = { NULL };
    struct memconn mc = { .params = no_params };
    struct sl_request req;
    struct sl_deployment dep;
    struct sl_upstream_req up;
    json_t *depj = json_loads(s->deployment, 0, NULL), *in = json_loads(s->client, 0, NULL);

    deployment(depj, in, &dep, a);
    memset(&req, 0, sizeof(req));
    memset(&up, 0, sizeof(up));
    sl_buf_init(&mc.out, 1u << 20);
    req.arena = a;
    req.conn.ops = &memconn_ops;
    req.conn.ctx = &mc;
    strcpy(req.id, "fuzz-request");
    if (sl_arena_defer(a, sl_json_decref_cb, in) != SL_OK)   /* as request.c does */
        sl_fuzz_fail("out of memory in the harness");
    req.dep = &dep;
    req.in = in;
    req.model = dep.model_name;
    req.endpoint = json_object_get(in, "input") ? SL_EP_EMBEDDINGS : SL_EP_CHAT;
    req.stream = stream;
    if (stream)
        json_object_set_new(in, "stream", json_true());
    if (s->surface) {
        req.surface = SL_SURFACE_ANTHROPIC;
        req.endpoint = SL_EP_MESSAGES;
        if (sl_messages_validate(&req) != SL_OK || sl_messages_to_openai(&req) != SL_OK)
            sl_fuzz_fail("messages.c refused a fixed Anthropic request");
        req.endpoint = SL_EP_CHAT;
    }
    if (dep.provider->build_request(&req, req.in, &up) != SL_OK) {
        fprintf(stderr, "%s: %s\n", s->deployment, req.err_msg ? req.err_msg : "");
        sl_fuzz_fail("build_request refused a fixed client request");
    }
    if (stream)
        run_stream(&req, up.framing, body, len, fam->wire);
    else
        run_whole(&req, body, len, fam->wire, errors);
    sl_arena_reset(a);
    sl_buf_free(&mc.out);
    json_decref(depj);
}

int sl_fuzz_adapter(const char *family, const uint8_t *data, size_t size)
{
    /* Kept across runs and reset after each request, as a worker's is. */
    static struct sl_arena *a;
    const struct family *fam = families;
    char *body;

    while (fam->name != NULL && strcmp(fam->name, family) != 0)
        fam++;
    if (fam->name == NULL)
        sl_fuzz_fail("no such adapter family");
    /* Upstream bodies reach the adapters NUL-terminated (struct sl_buf). */
    if ((body = malloc(size + 1)) == NULL || (a == NULL && (a = sl_arena_create(64u << 20)) == NULL))
        sl_fuzz_fail("out of memory in the harness");
    if (size > 0)
        memcpy(body, data, size);
    body[size] = '\0';
    for (const struct setup *s = fam->setups; s->deployment != NULL; s++) {
        run_setup(fam, s, 0, s == fam->setups, body, size, a);
        if (s->stream)
            run_setup(fam, s, 1, 0, body, size, a);
    }
    free(body);
    return 0;
}

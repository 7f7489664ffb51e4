/* The request path end to end, without a web server: an in-memory connection
 * into sl_request_run with the built-in mock provider. Checks routing, auth,
 * validation and every error shape, mock chat (whole and streamed) and
 * embeddings, and, with Jansson's allocator failing its Nth call for every
 * N, that each request still gets a well-formed answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "log.h"
#include "memconn.h"
#include "request.h"
#include "status.h"
#include "tap.h"
#include "upstream.h"

static struct sl_arena *arena;
static struct sl_upstream_thread *up;

struct reply {
    int status;
    char headers[4096];
    const char *body;      /* points into the connection buffer */
    json_t *json;          /* parsed body, or NULL */
    struct memconn mc;
};

static void call(struct reply *r, const char *method, const char *uri, const char *auth,
                 const char *body, size_t len)
{
    const char *params[] = {
        "REQUEST_METHOD", method, "REQUEST_URI", uri,
        auth ? "HTTP_AUTHORIZATION" : NULL, auth, NULL,
    };
    const char *sep;
    struct sl_conn conn;

    json_decref(r->json);
    sl_buf_free(&r->mc.out);
    memset(r, 0, sizeof(*r));
    r->mc.params = params;
    r->mc.body = body ? body : "";
    r->mc.body_len = body ? (len ? len : strlen(body)) : 0;
    sl_buf_init(&r->mc.out, 64u << 20);
    conn.ops = &memconn_ops;
    conn.ctx = &r->mc;
    sl_request_run(conn, arena, up);
    if (r->mc.out.data == NULL || sscanf(r->mc.out.data, "Status: %d", &r->status) != 1)
        return;
    sep = strstr(r->mc.out.data, "\r\n\r\n");
    if (sep == NULL)
        return;
    snprintf(r->headers, sizeof(r->headers), "%.*s", (int)(sep - r->mc.out.data), r->mc.out.data);
    r->body = sep + 4;
    r->json = json_loads(r->body, JSON_DECODE_ANY, NULL);
}

static const char *err_type(const struct reply *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "type"));
}

static int is_error_shape(const struct reply *r, int status)
{
    json_t *e = json_object_get(r->json, "error");
    char code[8];

    snprintf(code, sizeof(code), "%d", status);
    return r->status == status && json_is_object(e) &&
           json_is_string(json_object_get(e, "message")) &&
           json_string_length(json_object_get(e, "message")) > 0 &&
           json_is_string(json_object_get(e, "type")) &&
           json_object_get(e, "param") != NULL &&
           json_is_string(json_object_get(e, "code")) &&
           strcmp(json_string_value(json_object_get(e, "code")), code) == 0;
}

#define KEY "Bearer sk-unit-master"
#define CHAT(model, extra) \
    "{\"model\":\"" model "\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]" extra "}"

static void errors(struct reply *r)
{
    static const struct { const char *body; const char *name; } bad[] = {
        { "{not json", "malformed JSON" },
        { "[1,2]", "a body that is not an object" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "missing model" },
        { "{\"model\":123,\"messages\":[]}", "model of the wrong type" },
        { "{\"model\":\"mock-gpt\",\"messages\":\"x\"}", "messages of the wrong type" },
        { "{\"model\":\"mock-gpt\",\"messages\":[]}", "empty messages" },
        { "{\"model\":\"mock-gpt\",\"messages\":[1]}", "a message that is not an object" },
        { CHAT("mock-gpt", ",\"stream\":\"yes\""), "stream of the wrong type" },
        { CHAT("mock-gpt", ",\"stream_options\":7"), "stream_options of the wrong type" },
        { "{\"model\":\"mock-gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", "invalid UTF-8" },
        { "{\"model\":\"mock-gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", "a NUL escape" },
        { "{\"model\":\"mock-gpt\",\"model\":\"x\",\"messages\":[]}", "duplicate keys" },
    };
    char *deep;

    call(r, "POST", "/v1/chat/completions", NULL, CHAT("mock-gpt", ""), 0);
    ok(is_error_shape(r, 401), "no key: 401 in OpenAI's error shape");
    is_str(err_type(r), "auth_error", "no key: type auth_error");
    call(r, "POST", "/v1/chat/completions", "Bearer sk-wrong", CHAT("mock-gpt", ""), 0);
    ok(is_error_shape(r, 401), "wrong key: 401");
    ok(strstr(r->mc.out.data, "sk-wrong") == NULL, "the wrong key is not echoed");
    call(r, "POST", "/v1/chat/completions", "Basic c2stdW5pdA==", CHAT("mock-gpt", ""), 0);
    ok(is_error_shape(r, 401), "basic auth: 401");
    call(r, "POST", "/v1/chat/completions", KEY, "", 0);
    ok(is_error_shape(r, 400), "empty body: 400");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char name[128];

        call(r, "POST", "/v1/chat/completions", KEY, bad[i].body, 0);
        snprintf(name, sizeof(name), "%s: 400", bad[i].name);
        ok(is_error_shape(r, 400), name);
    }
    {
        static const char nul[] = "{\"model\":\"mock-gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"a\0b\"}]}";

        call(r, "POST", "/v1/chat/completions", KEY, nul, sizeof(nul) - 1);
    }
    ok(is_error_shape(r, 400), "a raw NUL byte in the body: 400");
    call(r, "POST", "/v1/chat/completions", KEY, CHAT("no-such-model", ""), 0);
    ok(is_error_shape(r, 400), "unknown model: 400 (LiteLLM's status)");
    ok(strstr(json_string_value(json_object_get(json_object_get(r->json, "error"), "message")),
              "no-such-model") != NULL, "unknown model: the message names it");
    call(r, "POST", "/v1/nothing/here", KEY, "{}", 0);
    ok(is_error_shape(r, 404), "unknown route: 404");
    call(r, "GET", "/v1/chat/completions", KEY, NULL, 0);
    ok(is_error_shape(r, 405), "wrong method: 405");
    call(r, "POST", "/v1/embeddings", KEY, "{\"model\":\"mock-gpt\",\"input\":5}", 0);
    ok(is_error_shape(r, 400), "embeddings input of the wrong type: 400");

    deep = malloc(200001);
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 100000);
    deep[200000] = '\0';
    call(r, "POST", "/v1/chat/completions", KEY, deep, 0);
    ok(is_error_shape(r, 400), "100000-deep nesting: 400, no stack overflow");
    free(deep);

    deep = malloc(3u << 20);
    memset(deep, 'a', 3u << 20);
    call(r, "POST", "/v1/chat/completions", KEY, deep, 3u << 20);
    ok(is_error_shape(r, 413), "a body over max_request_size_mb: 413");
    free(deep);
}

static void mock_calls(struct reply *r)
{
    json_t *msg;
    const char *p;
    char text[256] = "";
    int chunks = 0, usage_chunks = 0;

    call(r, "GET", "/health/liveliness", NULL, NULL, 0);
    ok(r->status == 200 && json_is_string(r->json) &&
       strcmp(json_string_value(r->json), "I'm alive!") == 0, "liveliness without a key");
    call(r, "GET", "/health/readiness?x=1", NULL, NULL, 0);
    is_str(json_string_value(json_object_get(r->json, "status")), "healthy", "readiness");
    ok(strstr(r->headers, "x-request-id: ") != NULL, "x-request-id on every response");

    call(r, "GET", "/v1/models", KEY, NULL, 0);
    is_int(json_array_size(json_object_get(r->json, "data")), 3, "models: each group once");
    is_str(json_string_value(json_object_get(json_array_get(json_object_get(r->json, "data"), 0), "id")),
           "mock-gpt", "models: in file order");

    call(r, "GET", "/v1/models/mock-gpt", KEY, NULL, 0);
    is_str(json_string_value(json_object_get(r->json, "id")), "mock-gpt", "models/{id}: the model");
    call(r, "GET", "/models/mock%2Dgpt", KEY, NULL, 0);
    is_str(json_string_value(json_object_get(r->json, "id")), "mock-gpt", "models/{id}: percent-decoded");
    call(r, "GET", "/v1/models/nope", KEY, NULL, 0);
    ok(is_error_shape(r, 404), "models/{id} of an unknown model: 404");
    call(r, "GET", "/v1/models/a%00b", KEY, NULL, 0);
    ok(is_error_shape(r, 400), "models/{id} with an encoded NUL: 400");
    call(r, "POST", "/openai/deployments/mock-gpt/chat/completions?api-version=2024-10-21", KEY,
         "{\"messages\":[{\"role\":\"user\",\"content\":\"azure style\"}]}", 0);
    is_str(json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(r->json, "choices"), 0),
                                                             "message"), "content")),
           "Echo: azure style", "Azure-style route takes the model from the path");
    call(r, "POST", "/engines/mock-embed/embeddings", KEY, "{\"input\":\"x\"}", 0);
    is_int(r->status, 200, "/engines/{model}/embeddings");
    call(r, "GET", "/openai/deployments/mock-gpt/chat/completions", KEY, NULL, 0);
    ok(is_error_shape(r, 405), "Azure-style route, wrong method: 405");

    call(r, "POST", "/chat/completions", KEY, CHAT("mock-gpt", ",\"some_new_param\":{\"x\":[1]}"), 0);
    is_int(r->status, 200, "mock chat without /v1");
    msg = json_object_get(json_array_get(json_object_get(r->json, "choices"), 0), "message");
    is_str(json_string_value(json_object_get(msg, "content")), "Echo: hello there", "mock echoes the last user message");
    is_str(json_string_value(json_object_get(r->json, "model")), "mock-gpt", "response model is the requested name");
    ok(json_integer_value(json_object_get(json_object_get(r->json, "usage"), "completion_tokens")) == 3,
       "usage counts the words");
    ok(strstr(r->headers, "x-litellm-model-id: ") != NULL, "x-litellm-model-id header");

    call(r, "POST", "/v1/chat/completions", KEY, CHAT("mock-gpt", ",\"stream\":true"), 0);
    is_int(r->status, 200, "mock stream: 200");
    ok(strstr(r->headers, "Content-Type: text/event-stream") != NULL, "mock stream: SSE content type");
    for (p = r->body; (p = strstr(p, "data: ")) != NULL; p += 6) {
        json_t *c = json_loads(p + 6, JSON_DISABLE_EOF_CHECK, NULL);
        json_t *d = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");

        if (c != NULL) {
            chunks++;
            if (json_is_string(json_object_get(d, "content")))
                strncat(text, json_string_value(json_object_get(d, "content")), sizeof(text) - strlen(text) - 1);
            if (json_object_get(c, "usage") != NULL)
                usage_chunks++;
            if (strcmp(json_string_value(json_object_get(c, "model")), "mock-gpt") != 0)
                chunks = -1000;
        }
        json_decref(c);
    }
    is_str(text, "Echo: hello there", "mock stream: deltas assemble the text");
    ok(chunks >= 4, "mock stream: one event per word, each with the requested model");
    is_int(usage_chunks, 0, "mock stream: no usage chunk unless asked");
    ok(strstr(r->body, "data: [DONE]\n\n") != NULL, "mock stream ends with [DONE]");

    call(r, "POST", "/v1/chat/completions", KEY,
         CHAT("mock-gpt", ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"), 0);
    ok(strstr(r->body, "\"usage\"") != NULL, "include_usage: the usage chunk is sent");

    call(r, "POST", "/v1/embeddings", KEY, "{\"model\":\"mock-embed\",\"input\":[\"a\",\"b\"]}", 0);
    is_int(json_array_size(json_object_get(r->json, "data")), 2, "mock embeddings: one vector per input");
    is_int(json_array_size(json_object_get(json_array_get(json_object_get(r->json, "data"), 0), "embedding")), 8,
           "mock embeddings: 8 floats");
    call(r, "POST", "/v1/embeddings", KEY,
         "{\"model\":\"mock-embed\",\"input\":\"a\",\"encoding_format\":\"base64\",\"dimensions\":4}", 0);
    is_str(json_string_value(json_object_get(json_array_get(json_object_get(r->json, "data"), 0), "embedding")) ? "b64" : "x",
           "b64", "mock embeddings: base64 when asked");
    ok(json_string_length(json_object_get(json_array_get(json_object_get(r->json, "data"), 0), "embedding")) ==
       24, "base64 of 4 float32 values");

    r->mc.fail_writes = 0;
}

/* Jansson's allocator fails its Nth call. */
static long alloc_countdown = -1;

static void *failing_malloc(size_t n)
{
    if (alloc_countdown == 0)
        return NULL;
    if (alloc_countdown > 0)
        alloc_countdown--;
    return malloc(n);
}

static void failure_injection(struct reply *r)
{
    static const char *const bodies[] = {
        CHAT("mock-gpt", ""),
        CHAT("mock-gpt", ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"),
        "{\"model\":\"mock-embed\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\"}",
    };
    int all_answered = 1, reached_success = 1;

    for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
        long n;
        int success = 0;

        for (n = 0; n < 2000 && !success; n++) {
            const char *uri = strstr(bodies[b], "input") ? "/v1/embeddings" : "/v1/chat/completions";

            json_set_alloc_funcs(failing_malloc, free);
            alloc_countdown = n;
            call(r, "POST", uri, KEY, bodies[b], 0);
            alloc_countdown = -1;
            json_set_alloc_funcs(malloc, free);
            if (r->status == 0 && r->mc.out.len > 0)
                all_answered = 0;   /* a partial header block */
            if (r->status == 200 && strstr(r->body, "\"error\"") == NULL)
                success = 1;
        }
        if (!success)
            reached_success = 0;
    }
    ok(all_answered, "allocation failure at every step: the client still gets a status line");
    ok(reached_success, "and with enough allocations every request succeeds");
}

/* A request whose arena runs full: the answer must still be complete (a
 * 503, or a 200 once the cap is large enough), whichever allocation fails,
 * including the dump of the error itself. */
static void arena_exhaustion(struct reply *r)
{
    static char body[24000];
    struct sl_arena *saved = arena;
    int all_answered = 1, got_503 = 0, got_200 = 0;
    int n;

    n = snprintf(body, sizeof(body), "{\"model\":\"mock-gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"");
    memset(body + n, 'w', 20000);
    n += 20000;
    snprintf(body + n, sizeof(body) - (size_t)n, "\"}]}");
    for (size_t cap = 16u << 10; cap <= 112u << 10; cap += 4u << 10) {
        arena = sl_arena_create(cap);
        call(r, "POST", "/v1/chat/completions", KEY, body, 0);
        if (r->status == 503 && is_error_shape(r, 503))
            got_503 = 1;
        else if (r->status == 200)
            got_200 = 1;
        else
            all_answered = 0;
        sl_arena_free(arena);
    }
    arena = saved;
    ok(all_answered, "a full arena: every request still gets a complete 200 or 503");
    ok(got_503 && got_200, "small arenas gave 503s, large enough ones 200s");
}

int main(void)
{
    char path[] = "/tmp/sluice-test-XXXXXX";
    int fd = mkstemp(path);
    static const char yaml[] =
        "model_list:\n"
        "  - model_name: mock-gpt\n"
        "    litellm_params:\n"
        "      model: mock/echo\n"
        "  - model_name: mock-embed\n"
        "    litellm_params: { model: mock/embed }\n"
        "    model_info: { mode: embedding }\n"
        "  - model_name: mock-gpt\n"
        "    litellm_params: { model: mock/echo-2 }\n"
        "  - model_name: canned\n"
        "    litellm_params: { model: mock/x, mock_response: \"canned words\" }\n"
        "general_settings:\n"
        "  master_key: sk-unit-master\n"
        "  max_request_size_mb: 2\n"
        "sluice_settings: { log_level: error }\n";
    struct sl_config *cfg = NULL;
    struct reply r;

    tap_private_tmpdir();
    memset(&r, 0, sizeof(r));
    if (fd < 0 || write(fd, yaml, sizeof(yaml) - 1) != (ssize_t)sizeof(yaml) - 1)
        return 1;
    close(fd);
    ok(sl_config_load(path, &cfg, NULL) == SL_OK, "test config loads");
    unlink(path);
    if (cfg == NULL)
        return tap_done();
    sl_log_level = SL_LOG_ERROR;
    sl_config_install(cfg);
    sl_upstream_global_init();
    arena = sl_arena_create(256u << 20);
    up = sl_upstream_thread_new();

    errors(&r);
    mock_calls(&r);
    call(&r, "POST", "/v1/chat/completions", KEY, CHAT("canned", ""), 0);
    is_str(json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(r.json, "choices"), 0),
                                                             "message"), "content")),
           "canned words", "litellm_params.mock_response");
    failure_injection(&r);
    arena_exhaustion(&r);

    json_decref(r.json);
    sl_buf_free(&r.mc.out);
    sl_upstream_thread_free(up);
    sl_arena_free(arena);
    sl_config_install(NULL);
    sl_upstream_global_cleanup();
    return tap_done();
}

/* mock/: answers without any network or key, so a fresh install works at
 * once and tests have a deterministic model. The reply is built in OpenAI's
 * wire format (a whole body, or SSE text) and handed to the core as a "local"
 * upstream reply: it then travels the same framer -> adapter -> client path
 * as a real provider's answer, heartbeats and client-abort checks included.
 *
 * Content: the request's mock_response, else litellm_params.mock_response,
 * else "Echo: " + the text of the last user message. Streams send one word
 * per event, litellm_params.mock_delay_ms apart (default 0). Embeddings are
 * vectors derived from SHA-256 of each input. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "jsonutil.h"
#include "openai.h"
#include "request.h"
#include "status.h"
#include "translate.h"

#define MOCK_MAX_DIMENSIONS 4096

static const char *mock_text(struct sl_request *req, const json_t *in)
{
    const json_t *v = json_object_get(in, "mock_response");
    const json_t *msgs = json_object_get(in, "messages");
    const char *last = NULL;
    size_t i;
    json_t *m;

    if (json_is_string(v))
        return json_string_value(v);
    v = json_object_get(req->dep->litellm_params, "mock_response");
    if (json_is_string(v))
        return json_string_value(v);
    json_array_foreach(msgs, i, m) {
        if (json_is_string(json_object_get(m, "role")) &&
            strcmp(json_string_value(json_object_get(m, "role")), "user") == 0)
            last = sl_json_content_text(req->arena, json_object_get(m, "content"));
    }
    return sl_arena_printf(req->arena, "Echo: %s", last ? last : "");
}

/* A rough token count: OpenAI averages about four characters a token. */
static long count_prompt(struct sl_request *req, const json_t *in)
{
    const json_t *msgs = json_object_get(in, "messages");
    size_t i, chars = 0;
    json_t *m;

    json_array_foreach(msgs, i, m)
        chars += strlen(sl_json_content_text(req->arena, json_object_get(m, "content")));
    return (long)(chars + 3) / 4 + 1;
}

static json_t *usage(long prompt, long completion)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)prompt,
                     "completion_tokens", (json_int_t)completion,
                     "total_tokens", (json_int_t)(prompt + completion));
}

static int dump_into(struct sl_request *req, json_t *v, struct sl_buf *b, int sse)
{
    size_t len;
    char *text;
    int rc;

    if (v == NULL)
        return SL_ERR_NOMEM;
    text = sl_json_dump(req->arena, v, &len);
    json_decref(v);
    if (text == NULL)
        return SL_ERR_NOMEM;
    if (sse && (rc = sl_buf_append(b, "data: ", 6)) != SL_OK)
        return rc;
    if ((rc = sl_buf_append(b, text, len)) != SL_OK)
        return rc;
    return sse ? sl_buf_append(b, "\n\n", 2) : SL_OK;
}

static json_t *chunk(struct sl_request *req, json_t *delta, const char *finish)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s?}]}",
                     "id", sl_arena_printf(req->arena, "chatcmpl-%s", req->id),
                     "object", "chat.completion.chunk", "created", (json_int_t)time(NULL),
                     "model", req->dep->upstream_model,
                     "choices", "index", 0, "delta", delta, "finish_reason", finish);
}

static int mock_stream(struct sl_request *req, const char *text, long prompt, struct sl_buf *b)
{
    const char *p = text;
    long words = 0;
    int rc;

    if ((rc = dump_into(req, chunk(req, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL), b, 1)) != SL_OK)
        return rc;
    while (*p != '\0') {
        const char *e = p;

        while (*e == ' ')
            e++;
        while (*e != '\0' && *e != ' ')
            e++;
        rc = dump_into(req, chunk(req, json_pack("{s:s%}", "content", p, (size_t)(e - p)), NULL), b, 1);
        if (rc != SL_OK)
            return rc;
        words++;
        p = e;
    }
    if ((rc = dump_into(req, chunk(req, json_object(), "stop"), b, 1)) != SL_OK)
        return rc;
    rc = dump_into(req, json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}",
                                  "id", sl_arena_printf(req->arena, "chatcmpl-%s", req->id),
                                  "object", "chat.completion.chunk", "created", (json_int_t)time(NULL),
                                  "model", req->dep->upstream_model, "choices",
                                  "usage", usage(prompt, words)), b, 1);
    if (rc != SL_OK)
        return rc;
    return sl_buf_append(b, "data: [DONE]\n\n", 14);
}

static long count_words(const char *p)
{
    long n = 0;

    while (*p != '\0') {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        n++;
        while (*p != '\0' && *p != ' ')
            p++;
    }
    return n;
}

static int mock_chat(struct sl_request *req, const json_t *in, struct sl_buf *b)
{
    const char *text = mock_text(req, in);
    long prompt = count_prompt(req, in);

    if (text == NULL)
        return SL_ERR_NOMEM;
    if (req->stream)
        return mock_stream(req, text, prompt, b);
    return dump_into(req, json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s, s:n}, s:n, s:s}], s:o}",
        "id", sl_arena_printf(req->arena, "chatcmpl-%s", req->id),
        "object", "chat.completion", "created", (json_int_t)time(NULL),
        "model", req->dep->upstream_model,
        "choices", "index", 0, "message", "role", "assistant", "content", text, "refusal",
        "logprobs", "finish_reason", "stop",
        "usage", usage(prompt, count_words(text))), b, 0);
}

/* dims floats in [-1, 1) from SHA-256(text || counter), as float or base64. */
static json_t *vector(struct sl_request *req, const char *text, size_t dims, int base64)
{
    float *f = sl_arena_alloc(req->arena, dims * sizeof(float));

    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < dims; i += 8) {
        unsigned char md[32];
        unsigned int n;
        uint32_t ctr = (uint32_t)(i / 8);
        EVP_MD_CTX *c = EVP_MD_CTX_new();

        if (c == NULL || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) ||
            !EVP_DigestUpdate(c, text, strlen(text)) || !EVP_DigestUpdate(c, &ctr, sizeof(ctr)) ||
            !EVP_DigestFinal_ex(c, md, &n)) {
            EVP_MD_CTX_free(c);
            return NULL;
        }
        EVP_MD_CTX_free(c);
        for (size_t k = 0; k < 8 && i + k < dims; k++) {
            uint32_t w = (uint32_t)md[4 * k] << 24 | (uint32_t)md[4 * k + 1] << 16 |
                         (uint32_t)md[4 * k + 2] << 8 | md[4 * k + 3];
            f[i + k] = (float)((double)w / 2147483648.0 - 1.0);
        }
    }
    return sl_tr_embedding_value(req, f, dims, base64);
}

static int mock_embeddings(struct sl_request *req, const json_t *in, struct sl_buf *b)
{
    const json_t *input = json_object_get(in, "input");
    const json_t *fmt = json_object_get(in, "encoding_format");
    const json_t *dimv = json_object_get(in, "dimensions");
    int base64 = json_is_string(fmt) && strcmp(json_string_value(fmt), "base64") == 0;
    size_t dims = 8, n = json_is_array(input) ? json_array_size(input) : 1, chars = 0;
    json_t *data = json_array();

    if (json_is_integer(dimv) && json_integer_value(dimv) > 0 &&
        json_integer_value(dimv) <= MOCK_MAX_DIMENSIONS)
        dims = (size_t)json_integer_value(dimv);
    if (data == NULL)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_is_array(input) ? json_array_get(input, i) : input;
        char *text = json_is_string(item) ? (char *)json_string_value(item)
                                          : json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
        json_t *vec = text ? vector(req, text, dims, base64) : NULL;

        chars += text ? strlen(text) : 0;
        if (!json_is_string(item))
            free(text);
        if (vec == NULL ||
            json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding",
                                                  "index", (json_int_t)i, "embedding", vec)) != 0) {
            json_decref(data);
            return SL_ERR_NOMEM;
        }
    }
    return dump_into(req, json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list",
                                    "data", data, "model", req->dep->upstream_model, "usage",
                                    "prompt_tokens", (json_int_t)(chars + 3) / 4,
                                    "total_tokens", (json_int_t)(chars + 3) / 4), b, 0);
}

static void buf_free_cb(void *p)
{
    sl_buf_free(p);
}

static int mock_build_request(struct sl_request *req, const json_t *in,
                              struct sl_upstream_req *out)
{
    struct sl_buf *b = sl_arena_alloc(req->arena, sizeof(*b));
    const json_t *delay = json_object_get(req->dep->litellm_params, "mock_delay_ms");
    int rc;

    if (b == NULL)
        return SL_ERR_NOMEM;
    sl_buf_init(b, SL_MAX_UPSTREAM_BODY);
    if ((rc = sl_arena_defer(req->arena, buf_free_cb, b)) != SL_OK)
        return rc;
    if (req->endpoint == SL_EP_CHAT)
        rc = mock_chat(req, in, b);
    else if (req->endpoint == SL_EP_EMBEDDINGS)
        rc = mock_embeddings(req, in, b);
    else
        rc = SL_ERR_UNSUPPORTED;
    if (rc != SL_OK)
        return rc == SL_ERR_TOO_LARGE ? SL_ERR_BAD_REQUEST : rc;
    out->local_body = b->data;
    out->local_len = b->len;
    out->local_status = 200;
    out->local_delay_ms = json_is_number(delay) ? (long)json_number_value(delay) : 0;
    out->framing = SL_FRAMING_SSE;
    return SL_OK;
}

const struct sl_provider sl_provider_mock = {
    .name = "mock",
    .abi = SL_PROVIDER_ABI,
    .flags = SL_PROVIDER_OPENAI_WIRE,
    .endpoints = SL_EP_BIT(SL_EP_CHAT) | SL_EP_BIT(SL_EP_EMBEDDINGS),
    .build_request = mock_build_request,
    .parse_response = sl_openai_parse_response,
    .parse_stream_event = sl_openai_parse_stream_event,
    .map_error = sl_openai_map_error,
};

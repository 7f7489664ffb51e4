/* Shared pieces of the OpenAI <-> native translations (translate.h). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

#include "arena.h"
#include "config.h"
#include "jscan.h"
#include "jsonutil.h"
#include "request.h"
#include "status.h"
#include "translate.h"

const char *const sl_tr_gateway_fields[] = {
    "mock_response", "fallbacks", "context_window_fallbacks", "num_retries",
    "cache", "caching", "guardrails", "litellm_metadata", "drop_params",
    "additional_drop_params", "timeout", NULL
};

/* OpenAI's chat completion parameters (besides model and messages). */
static const char *const openai_params[] = {
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens",
    "max_completion_tokens", "n", "presence_penalty", "response_format", "seed",
    "service_tier", "stop", "stream", "stream_options", "temperature", "top_p",
    "tools", "tool_choice", "parallel_tool_calls", "user", "functions",
    "function_call", "reasoning_effort", "modalities", "audio", "prediction",
    "store", "metadata", "web_search_options", "verbosity", "prompt_cache_key",
    "safety_identifier", NULL
};

static int in_list(const char *const list[], const char *key)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], key) == 0)
            return 1;
    return 0;
}

int sl_tr_is_gateway_field(const char *key)
{
    return in_list(sl_tr_gateway_fields, key);
}

int sl_tr_is_openai_param(const char *key)
{
    return in_list(openai_params, key);
}

int sl_tr_drop_params(const struct sl_request *req)
{
    const json_t *v;

    if (req->in != NULL && json_is_boolean(v = json_object_get(req->in, "drop_params")))
        return json_is_true(v);
    if (req->dep != NULL && json_is_boolean(v = json_object_get(req->dep->litellm_params, "drop_params")))
        return json_is_true(v);
    return req->cfg != NULL && req->cfg->drop_params;
}

/* additional_drop_params in litellm_params: parameters this deployment
 * always drops, whatever drop_params says. */
static int always_dropped(const struct sl_request *req, const char *key)
{
    const json_t *list = req->dep ? json_object_get(req->dep->litellm_params, "additional_drop_params") : NULL;
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), key) == 0)
            return 1;
    return 0;
}

int sl_tr_bad(struct sl_request *req, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    req->err_msg = sl_arena_strdup(req->arena, msg);
    return SL_ERR_BAD_REQUEST;
}

/* Whether a present parameter asks for something at all: null, false
 * flags and n = 1 ask for nothing a provider could lack. */
static int asks_nothing(const char *key, const json_t *v)
{
    if (json_is_null(v))
        return 1;
    if ((strcmp(key, "logprobs") == 0 || strcmp(key, "store") == 0 ||
         strcmp(key, "parallel_tool_calls") == 0) && json_is_false(v))
        return 1;
    return strcmp(key, "n") == 0 && json_is_integer(v) && json_integer_value(v) == 1;
}

/* An unsupported parameter is present: fine if it is dropped, else a 400. */
static int judge(struct sl_request *req, const char *key)
{
    if (strcmp(key, "metadata") == 0 || always_dropped(req, key) || sl_tr_drop_params(req))
        return SL_OK;   /* LiteLLM's metadata is the gateway's, never the provider's */
    sl_tr_bad(req, "%s does not support parameters: %s, for model=%.200s. To drop unsupported "
              "parameters, set drop_params: true under litellm_settings (or in the request).",
              req->dep->provider->name, key, req->dep->upstream_model);
    return SL_ERR_BAD_REQUEST;
}

int sl_tr_check_params(struct sl_request *req, const json_t *in,
                       const char *const supported[])
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)in, key, v)
        if (sl_tr_is_openai_param(key) && !in_list(supported, key) && !asks_nothing(key, v) &&
            judge(req, key) != SL_OK)
            return SL_ERR_BAD_REQUEST;
    return SL_OK;
}

int sl_tr_reject_params(struct sl_request *req, const json_t *in,
                        const char *const unsupported[])
{
    const json_t *v;

    for (size_t i = 0; unsupported != NULL && unsupported[i] != NULL; i++)
        if ((v = json_object_get(in, unsupported[i])) != NULL && !asks_nothing(unsupported[i], v) &&
            judge(req, unsupported[i]) != SL_OK)
            return SL_ERR_BAD_REQUEST;
    return SL_OK;
}

int sl_tr_drop_value(struct sl_request *req, const char *key, const char *value)
{
    if (always_dropped(req, key) || sl_tr_drop_params(req))
        return SL_OK;
    sl_tr_bad(req, "%s does not support %s=%.60s, for model=%.200s. To drop unsupported "
              "parameters, set drop_params: true under litellm_settings (or in the request).",
              req->dep->provider->name, key, value, req->dep->upstream_model);
    return SL_ERR_BAD_REQUEST;
}

int sl_tr_in_list(const char *const list[], const char *key)
{
    return list != NULL && in_list(list, key);
}

int sl_tr_data_url(struct sl_request *req, const char *url, const char **mime,
                   const char **data)
{
    const char *semi, *comma;

    if (strncmp(url, "data:", 5) != 0 || (comma = strchr(url, ',')) == NULL)
        return 0;
    semi = memchr(url, ';', (size_t)(comma - url));
    if (semi == NULL || (size_t)(comma - semi) != 7 || strncmp(semi, ";base64", 7) != 0)
        return 0;
    if ((*mime = sl_arena_strndup(req->arena, url + 5, (size_t)(semi - url - 5))) == NULL)
        return 0;
    *data = comma + 1;
    return 1;
}

long sl_tr_max_tokens(const json_t *in)
{
    const json_t *v = json_object_get(in, "max_completion_tokens");

    if (!json_is_integer(v))
        v = json_object_get(in, "max_tokens");
    return json_is_integer(v) && json_integer_value(v) > 0 ? (long)json_integer_value(v) : -1;
}

long sl_tr_default_max_tokens(const struct sl_request *req, long fallback)
{
    const json_t *info = req->dep ? req->dep->model_info : NULL, *v;

    if (json_is_integer(v = json_object_get(info, "max_output_tokens")) && json_integer_value(v) > 0)
        return (long)json_integer_value(v);
    if (json_is_integer(v = json_object_get(info, "max_tokens")) && json_integer_value(v) > 0)
        return (long)json_integer_value(v);
    return fallback;
}

json_t *sl_tr_stop_list(const json_t *in, int *bad)
{
    const json_t *stop = json_object_get(in, "stop");
    json_t *out, *v;
    size_t i;

    *bad = 0;
    if (stop == NULL || json_is_null(stop))
        return NULL;
    if (json_is_string(stop))
        return json_pack("[O]", stop);
    if (!json_is_array(stop)) {
        *bad = 1;
        return NULL;
    }
    if ((out = json_array()) == NULL)
        return NULL;
    json_array_foreach(stop, i, v) {
        if (!json_is_string(v)) {
            *bad = 1;
            json_decref(out);
            return NULL;
        }
        json_array_append(out, v);
    }
    return out;
}

json_t *sl_tr_usage(long prompt, long completion, long cached, long reasoning)
{
    return json_pack("{s:I, s:I, s:I, s:{s:I}, s:{s:I}}",
                     "prompt_tokens", (json_int_t)prompt,
                     "completion_tokens", (json_int_t)completion,
                     "total_tokens", (json_int_t)(prompt + completion),
                     "prompt_tokens_details", "cached_tokens", (json_int_t)cached,
                     "completion_tokens_details", "reasoning_tokens", (json_int_t)reasoning);
}

int sl_tr_ids_init(struct sl_request *req, struct sl_tr_ids *ids, const char *provider_id)
{
    ids->id = provider_id && *provider_id ? sl_arena_strdup(req->arena, provider_id)
                                          : sl_arena_printf(req->arena, "chatcmpl-%s", req->id);
    ids->created = (long long)time(NULL);
    return ids->id != NULL ? SL_OK : SL_ERR_NOMEM;
}

static json_t *finish_value(const char *finish_reason)
{
    return finish_reason ? json_string(finish_reason) : json_null();
}

json_t *sl_tr_completion(struct sl_request *req, const struct sl_tr_ids *ids,
                         json_t *message, const char *finish_reason, json_t *usage)
{
    json_t *out = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:o, s:n}]}",
                            "id", ids->id, "object", "chat.completion",
                            "created", (json_int_t)ids->created, "model", req->model ? req->model : "",
                            "choices", "index", 0, "message", message,
                            "finish_reason", finish_value(finish_reason), "logprobs");

    if (out != NULL && usage != NULL && json_object_set_new(out, "usage", usage) != 0) {
        json_decref(out);
        return NULL;
    }
    if (out == NULL)
        json_decref(usage);
    return out;
}

json_t *sl_tr_chunk(struct sl_request *req, const struct sl_tr_ids *ids,
                    json_t *delta, const char *finish_reason)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:o, s:n}]}",
                     "id", ids->id, "object", "chat.completion.chunk",
                     "created", (json_int_t)ids->created, "model", req->model ? req->model : "",
                     "choices", "index", 0, "delta", delta,
                     "finish_reason", finish_value(finish_reason), "logprobs");
}

json_t *sl_tr_usage_chunk(struct sl_request *req, const struct sl_tr_ids *ids, json_t *usage)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}",
                     "id", ids->id, "object", "chat.completion.chunk",
                     "created", (json_int_t)ids->created, "model", req->model ? req->model : "",
                     "choices", "usage", usage);
}

json_t *sl_tr_embedding_value(struct sl_request *req, const float *v, size_t n, int base64)
{
    json_t *arr;

    if (base64) {
        /* float32 little-endian, as OpenAI sends it; x86 and arm64 are LE. */
        size_t raw = n * sizeof(float);
        char *out = raw <= (size_t)INT_MAX / 2 ? sl_arena_alloc(req->arena, 4 * ((raw + 2) / 3) + 1) : NULL;

        if (out == NULL)
            return NULL;
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)v, (int)raw);
        return json_string(out);
    }
    if ((arr = json_array()) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, json_real(v[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    return arr;
}

json_t *sl_tr_embedding_inputs(struct sl_request *req, const json_t *in, int *rc)
{
    const json_t *input = json_object_get(in, "input");
    json_t *out, *v;
    size_t i;

    *rc = SL_ERR_BAD_REQUEST;
    if (json_is_string(input)) {
        if ((out = json_pack("[O]", input)) == NULL)
            *rc = SL_ERR_NOMEM;
        return out;
    }
    if (!json_is_array(input) || json_array_size(input) == 0) {
        sl_tr_bad(req, "input must be a string or a non-empty array of strings for %s.",
                  req->dep->provider->name);
        return NULL;
    }
    json_array_foreach(input, i, v)
        if (!json_is_string(v)) {
            sl_tr_bad(req, "input[%zu]: %s embeds text only (no token arrays).", i, req->dep->provider->name);
            return NULL;
        }
    if ((out = json_copy((json_t *)input)) == NULL)
        *rc = SL_ERR_NOMEM;
    return out;
}

json_t *sl_tr_rerank_documents(struct sl_request *req, const json_t *in)
{
    const json_t *docs = json_object_get(in, "documents"), *d;
    json_t *out = json_array();
    size_t i, n;

    json_array_foreach(docs, i, d) {
        const char *t = json_is_string(d) ? json_string_value(d) : sl_tr_str(d, "text");

        if (t == NULL)
            t = sl_json_dump(req->arena, d, &n);
        if (t == NULL || json_array_append_new(out, json_string(t)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

int sl_tr_rerank_reply(struct sl_request *req, const char *id, const json_t *results,
                       long search_units, json_t **out)
{
    json_t *docs = NULL, *list, *r;
    const json_t *x;
    int with_docs = json_is_true(json_object_get(req->in, "return_documents"));
    size_t i, n = json_array_size(json_object_get(req->in, "documents"));

    *out = NULL;
    if (!json_is_array(results))
        return SL_ERR_UPSTREAM_BAD;
    if (with_docs && (docs = sl_tr_rerank_documents(req, req->in)) == NULL)
        return SL_ERR_NOMEM;
    if ((list = json_array()) == NULL) {
        json_decref(docs);
        return SL_ERR_NOMEM;
    }
    json_array_foreach(results, i, x) {
        const json_t *ix = json_object_get(x, "index"), *score = json_object_get(x, "relevance_score");

        if (!json_is_integer(ix) || json_integer_value(ix) < 0 || (size_t)json_integer_value(ix) >= n ||
            !json_is_number(score)) {
            json_decref(list);
            json_decref(docs);
            return SL_ERR_UPSTREAM_BAD;
        }
        r = json_pack("{s:O, s:O}", "index", ix, "relevance_score", score);
        if (r != NULL && with_docs)
            json_object_set_new(r, "document", json_pack("{s:O}", "text",
                                                         json_array_get(docs, (size_t)json_integer_value(ix))));
        if (r == NULL || json_array_append_new(list, r) != 0) {
            json_decref(list);
            json_decref(docs);
            return SL_ERR_NOMEM;
        }
    }
    json_decref(docs);
    req->usage.units = search_units;
    *out = json_pack("{s:s, s:o, s:{s:{s:I}}}", "id", id ? id : req->id, "results", list,
                     "meta", "billed_units", "search_units", (json_int_t)search_units);
    return *out != NULL ? SL_OK : SL_ERR_NOMEM;
}

int sl_tr_embeddings_reply(struct sl_request *req, const json_t *vectors, long prompt_tokens,
                           json_t **out)
{
    const json_t *fmt = json_object_get(req->in, "encoding_format");
    int base64 = json_is_string(fmt) && strcmp(json_string_value(fmt), "base64") == 0;
    json_t *data, *vec, *x, *value;
    float *f = NULL;
    size_t i, k, cap = 0;
    int rc = SL_ERR_NOMEM;

    *out = NULL;
    if (!json_is_array(vectors))
        return SL_ERR_UPSTREAM_BAD;
    if ((data = json_array()) == NULL)
        return SL_ERR_NOMEM;
    json_array_foreach(vectors, i, vec) {
        size_t n = json_array_size(vec);

        if (!json_is_array(vec)) {
            rc = SL_ERR_UPSTREAM_BAD;
            goto out;
        }
        /* Request arena for the floats: one vector at a time, grown as needed
         * (the upstream body cap bounds the total). */
        if (n > cap) {
            if ((f = sl_arena_alloc(req->arena, n * sizeof(float))) == NULL)
                goto out;
            cap = n;
        }
        json_array_foreach(vec, k, x) {
            if (!json_is_number(x)) {
                rc = SL_ERR_UPSTREAM_BAD;
                goto out;
            }
            f[k] = (float)json_number_value(x);
        }
        if ((value = sl_tr_embedding_value(req, f, n, base64)) == NULL ||
            json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding",
                                                  "index", (json_int_t)i, "embedding", value)) != 0)
            goto out;
    }
    if (prompt_tokens < 0)
        prompt_tokens = 0;
    *out = json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data,
                     "model", req->model ? req->model : "", "usage",
                     "prompt_tokens", (json_int_t)prompt_tokens, "total_tokens", (json_int_t)prompt_tokens);
    return *out != NULL ? SL_OK : SL_ERR_NOMEM;
out:
    json_decref(data);
    return rc;
}

struct scan_one {
    const char *key, *val;
    size_t val_len;
};

static int scan_member(void *ctx, const struct sl_jmember *m)
{
    struct scan_one *s = ctx;

    if (sl_jscan_key_is(m, s->key)) {
        s->val = m->val;
        s->val_len = m->val_len;
    }
    return 0;
}

const char *sl_tr_scan(const char *p, size_t len, const char *const path[], size_t *val_len)
{
    for (size_t i = 0; path[i] != NULL; i++) {
        struct scan_one s = { path[i], NULL, 0 };

        if (len == 0 || p[0] != '{' || sl_jscan_object(p, len, scan_member, &s) != 0 || s.val == NULL)
            return NULL;
        p = s.val;
        len = s.val_len;
    }
    *val_len = len;
    return p;
}

int sl_tr_scan_is(const char *p, size_t len, const char *const path[], const char *token)
{
    size_t n;
    const char *v = sl_tr_scan(p, len, path, &n);

    return v != NULL && n == strlen(token) && memcmp(v, token, n) == 0;
}

int sl_tr_add_turn(json_t *turns, const char *role, const char *items_key, json_t *items)
{
    json_t *last = json_array_get(turns, json_array_size(turns) - 1);
    const char *last_role = json_string_value(json_object_get(last, "role"));
    int rc;

    if (items == NULL)
        return SL_ERR_NOMEM;
    if (json_array_size(items) == 0) {
        json_decref(items);
        return SL_OK;
    }
    if (last_role != NULL && strcmp(last_role, role) == 0) {
        rc = json_array_extend(json_object_get(last, items_key), items);
        json_decref(items);
        return rc == 0 ? SL_OK : SL_ERR_NOMEM;
    }
    return json_array_append_new(turns, json_pack("{s:s, s:o}", "role", role, items_key, items)) == 0
           ? SL_OK : SL_ERR_NOMEM;
}

int sl_tr_emit(json_t **out, json_t *chunk)
{
    json_t *arr;

    if (chunk == NULL)
        return SL_ERR_NOMEM;
    if (*out == NULL) {
        *out = chunk;
        return SL_OK;
    }
    if (!json_is_array(*out)) {
        if ((arr = json_array()) == NULL || json_array_append_new(arr, *out) != 0) {
            json_decref(arr);
            json_decref(chunk);
            return SL_ERR_NOMEM;
        }
        *out = arr;
    }
    return json_array_append_new(*out, chunk) == 0 ? SL_OK : SL_ERR_NOMEM;
}

const char *sl_tr_error_type(int status)
{
    switch (status) {
    case 400: case 404: case 405: case 409: case 413: case 422:
        return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    default:  return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

void sl_tr_set_error(struct sl_request *req, struct sl_error *e, int status,
                     const char *type, const char *message, const char *code)
{
    memset(e, 0, sizeof(*e));
    e->http_status = status;
    e->type = type ? sl_arena_strdup(req->arena, type) : sl_tr_error_type(status);
    e->message = message ? sl_arena_strdup(req->arena, message) : NULL;
    e->code = code ? sl_arena_strdup(req->arena, code) : NULL;
}

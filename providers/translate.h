/* What every translating adapter (Anthropic, Gemini, Bedrock, Cohere,
 * Ollama, ...) needs on both sides of the OpenAI format: the parameter
 * policy (drop_params), OpenAI request pieces read in one way, and OpenAI
 * replies, chunks and usage built in one way. Everything returned lives in
 * the request's arena or is a new Jansson reference, as documented. */
#ifndef SL_PROVIDER_TRANSLATE_H
#define SL_PROVIDER_TRANSLATE_H

#include <stddef.h>
#include <jansson.h>

#include "provider.h"

struct sl_request;

/* The string member key of o, or NULL (o may be NULL or not an object). */
static inline const char *sl_tr_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ---- the client's request ---- */

/* Body fields that steer LiteLLM itself and never reach a provider: the
 * NULL-terminated list and a test against it. */
extern const char *const sl_tr_gateway_fields[];
int sl_tr_is_gateway_field(const char *key);

/* Whether unsupported parameters are dropped for this request: "drop_params"
 * in the request body, in the deployment's litellm_params, or in
 * litellm_settings. */
int sl_tr_drop_params(const struct sl_request *req);

/* Checks the OpenAI chat parameters present in in against supported (a NULL
 * terminated list of the ones the adapter translates). Every other OpenAI
 * parameter present is unsupported: with drop_params it is ignored (the
 * adapter never reads it), otherwise the request fails with a 400 that names
 * the parameter and the provider. Keys that are not OpenAI parameters are
 * not judged here. SL_OK or SL_ERR_BAD_REQUEST (req->err_msg set). */
int sl_tr_check_params(struct sl_request *req, const json_t *in,
                       const char *const supported[]);

/* The same policy for one value of a parameter the adapter translates only
 * in part (tool_choice "required" where the provider knows only "auto"):
 * SL_OK when drop_params (or additional_drop_params) lets it go, and the
 * caller then ignores the value; otherwise SL_ERR_BAD_REQUEST with a message
 * naming key, value and the provider. */
int sl_tr_drop_value(struct sl_request *req, const char *key, const char *value);

/* The other way round, for providers that take OpenAI's parameters except a
 * few: each of unsupported (NULL-terminated; NULL for none) present in in
 * is judged the same way. The caller leaves them out of what it sends. */
int sl_tr_reject_params(struct sl_request *req, const json_t *in,
                        const char *const unsupported[]);

/* Whether key is in the NULL-terminated list (which may itself be NULL). */
int sl_tr_in_list(const char *const list[], const char *key);

/* Whether key is one of OpenAI's chat completion parameters. */
int sl_tr_is_openai_param(const char *key);

/* A "data:<mime>;base64,<data>" URL: 1 and the two parts (arena copies of the
 * mime type; *data points into url), else 0. */
int sl_tr_data_url(struct sl_request *req, const char *url, const char **mime,
                   const char **data);

/* The max tokens asked for: max_completion_tokens, else max_tokens; -1 if
 * neither is a positive integer. */
long sl_tr_max_tokens(const json_t *in);

/* A default for providers that require max tokens: model_info.max_output_tokens,
 * else model_info.max_tokens, else fallback. */
long sl_tr_default_max_tokens(const struct sl_request *req, long fallback);

/* "stop": a string or an array of strings, as a new JSON array (NULL if
 * absent or of the wrong type; *bad set to 1 for the wrong type). */
json_t *sl_tr_stop_list(const json_t *in, int *bad);

/* Fails the request with a 400 naming the problem (printf-style).
 * Returns SL_ERR_BAD_REQUEST. */
int sl_tr_bad(struct sl_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the reply to the client ---- */

/* OpenAI usage; cached and reasoning go into the details objects. */
json_t *sl_tr_usage(long prompt, long completion, long cached, long reasoning);

/* The id and created time every chunk of one answer shares. */
struct sl_tr_ids {
    const char *id;      /* arena */
    long long created;
};

/* Fills ids from the provider's id (copied; NULL: "chatcmpl-" + request id). */
int sl_tr_ids_init(struct sl_request *req, struct sl_tr_ids *ids, const char *provider_id);

/* {"id","object":"chat.completion","created","model","choices":[{"index":0,
 * "message":message (stolen),"finish_reason","logprobs":null}],"usage":usage
 * (stolen, may be NULL)}. NULL on OOM. */
json_t *sl_tr_completion(struct sl_request *req, const struct sl_tr_ids *ids,
                         json_t *message, const char *finish_reason, json_t *usage);

/* One chunk with one choice (index 0): delta is stolen; finish_reason may be
 * NULL (JSON null). NULL on OOM. */
json_t *sl_tr_chunk(struct sl_request *req, const struct sl_tr_ids *ids,
                    json_t *delta, const char *finish_reason);

/* The closing chunk with "choices": [] and usage (stolen). */
json_t *sl_tr_usage_chunk(struct sl_request *req, const struct sl_tr_ids *ids, json_t *usage);

/* One embedding vector as OpenAI sends it: a JSON array of numbers, or with
 * base64 the float32 little-endian bytes in base64. New reference or NULL. */
json_t *sl_tr_embedding_value(struct sl_request *req, const float *v, size_t n, int base64);

/* The embeddings "input" as a new JSON array of strings (a lone string
 * becomes a one-element array), for providers that embed text only. NULL with
 * *rc = SL_ERR_BAD_REQUEST (req->err_msg set) for token arrays, other types or
 * an empty list; NULL with *rc = SL_ERR_NOMEM on OOM. */
json_t *sl_tr_embedding_inputs(struct sl_request *req, const json_t *in, int *rc);

/* OpenAI's embeddings reply {"object":"list","data":[...],"model","usage"}
 * from vectors (borrowed): the provider's JSON array of arrays of numbers, in
 * input order. encoding_format "base64" in req->in is honoured. *out is a new
 * reference. SL_OK, SL_ERR_UPSTREAM_BAD (not an array of number arrays) or
 * SL_ERR_NOMEM. */
int sl_tr_embeddings_reply(struct sl_request *req, const json_t *vectors, long prompt_tokens,
                           json_t **out);

/* Rerank (POST /v1/rerank, Cohere's shape as LiteLLM answers it). The
 * client's documents as plain strings (a {"text": ...} object gives its
 * text, another object its JSON), a new reference. */
json_t *sl_tr_rerank_documents(struct sl_request *req, const json_t *in);

/* The answer from the provider's results ([{index, relevance_score}],
 * borrowed): {id, results: [{index, relevance_score[, document: {text}]}],
 * meta}, documents only when the client asked (return_documents); indexes
 * out of range are an upstream fault. *out a new reference. */
int sl_tr_rerank_reply(struct sl_request *req, const char *id, const json_t *results,
                       long search_units, json_t **out);

/* Adds items (stolen) to turns as a turn {"role": role, items_key: items},
 * merged into the last turn when it has the same role (providers that want
 * user and assistant turns to alternate); a turn without items is left out.
 * SL_OK or SL_ERR_NOMEM. */
int sl_tr_add_turn(json_t *turns, const char *role, const char *items_key, json_t *items);

/* For the fast_delta path (provider.h): the value text at path (object
 * keys, NULL-ended) in the JSON object text p[0..len), found with the
 * structural scanner, no parse. NULL if a step is missing or not an object.
 * sl_tr_scan_is compares that value with a literal token (e.g. "\"text_delta\""). */
const char *sl_tr_scan(const char *p, size_t len, const char *const path[], size_t *val_len);
int sl_tr_scan_is(const char *p, size_t len, const char *const path[], const char *token);

/* Appends chunk (stolen) to *out, making *out an array when it holds more
 * than one (the parse_stream_event contract). SL_OK or SL_ERR_NOMEM. */
int sl_tr_emit(json_t **out, json_t *chunk);

/* An error for req->upstream_err, in OpenAI's shape, with strings copied
 * into the arena: the in-band error of a stream. */
void sl_tr_set_error(struct sl_request *req, struct sl_error *e, int status,
                     const char *type, const char *message, const char *code);

/* OpenAI's error type for an HTTP status. */
const char *sl_tr_error_type(int status);

#endif

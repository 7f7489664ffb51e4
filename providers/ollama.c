/* ollama_chat/ and ollama/: OpenAI chat completions and embeddings <-> Ollama's
 * native API (POST /api/chat with NDJSON streaming, POST /api/embed).
 *
 * LiteLLM sends ollama/ models to /api/generate (a prompt string) and
 * ollama_chat/ ones to /api/chat; both go to /api/chat here: the same answers
 * for users, one code path, and tools and images work for both.
 *
 * Request: message content becomes a string (text parts joined); images
 * must be base64 data URLs (Ollama wants the bytes, not a URL) and go to the
 * message's "images"; assistant tool_calls carry their arguments as a JSON
 * object; tool results name their function (tool_name), found through
 * tool_call_id in the assistant's calls. Sampling parameters go to
 * "options" (max tokens -> num_predict), response_format to "format",
 * reasoning_effort to "think". Ollama has no tool_choice: "none" leaves the
 * tools out, "required" and named functions follow the drop_params policy.
 * Parameters that are not OpenAI's go to "options" (num_ctx, top_k, ...),
 * except Ollama's top-level keep_alive, think, format and options.
 * "stream" is always sent: Ollama streams unless told otherwise.
 *
 * Reply and stream: one NDJSON line per piece; thinking -> reasoning_content,
 * tool calls arrive whole (one complete delta each, ids made here when
 * Ollama gives none); the line with done: true carries done_reason and the
 * counts for usage; a line {"error": ...} is an in-band error. */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "jsonutil.h"
#include "request.h"
#include "status.h"
#include "translate.h"

#define OLLAMA_BASE "http://localhost:11434"

/* Per-request adapter state (req->pstate). */
struct ollama {
    struct sl_tr_ids ids;
    int started;            /* the first chunk (role) went out */
    int n_tools;            /* tool calls seen: the next OpenAI index */
};

static struct ollama *state(struct sl_request *req)
{
    if (req->pstate == NULL)
        req->pstate = sl_arena_calloc(req->arena, 1, sizeof(struct ollama));
    return req->pstate;
}

/* ---- request ---- */

/* "user" and "parallel_tool_calls" are accepted and ignored (attribution is
 * the gateway's; Ollama decides how many tools to call). tool_choice is
 * judged value by value (convert_tools). */
static const char *const supported[] = {
    "max_tokens", "max_completion_tokens", "stop", "stream", "stream_options",
    "temperature", "top_p", "seed", "frequency_penalty", "presence_penalty",
    "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "reasoning_effort", "user", NULL
};

/* Ollama's own top-level request keys; any other unknown key is a model
 * option. */
static const char *const top_level[] = { "keep_alive", "think", "format", NULL };

/* A user message's parts: text joined into *text (arena), data-URL images
 * appended to images as bare base64. */
static int user_parts(struct sl_request *req, const json_t *parts, size_t mi, const char **text,
                      json_t *images)
{
    struct sl_buf b;
    json_t *part;
    size_t i;
    int rc = SL_OK;

    sl_buf_init(&b, SL_MAX_UPSTREAM_BODY);
    json_array_foreach(parts, i, part) {
        const char *type = sl_tr_str(part, "type"), *url, *mime, *data;
        const json_t *iu;

        if (type != NULL && strcmp(type, "text") == 0 && sl_tr_str(part, "text") != NULL) {
            if ((rc = sl_buf_puts(&b, sl_tr_str(part, "text"))) != SL_OK)
                break;
            continue;
        }
        if (type == NULL || strcmp(type, "image_url") != 0) {
            rc = sl_tr_bad(req, "messages[%zu].content[%zu]: ollama does not take parts of type %.60s.",
                           mi, i, type ? type : "(none)");
            break;
        }
        iu = json_object_get(part, "image_url");
        url = json_is_string(iu) ? json_string_value(iu) : sl_tr_str(iu, "url");
        if (url == NULL || !sl_tr_data_url(req, url, &mime, &data)) {
            rc = sl_tr_bad(req, "messages[%zu].content[%zu]: ollama needs images as base64 data URLs "
                           "(it takes the image bytes, not a URL).", mi, i);
            break;
        }
        if (json_array_append_new(images, json_string(data)) != 0) {
            rc = SL_ERR_NOMEM;
            break;
        }
    }
    if (rc == SL_OK && (*text = sl_arena_strndup(req->arena, b.data ? b.data : "", b.len)) == NULL)
        rc = SL_ERR_NOMEM;
    sl_buf_free(&b);
    return rc == SL_ERR_TOO_LARGE ? SL_ERR_BAD_REQUEST : rc;
}

/* Assistant tool_calls -> Ollama's, arguments parsed into an object. */
static json_t *tool_calls(struct sl_request *req, const json_t *calls, size_t mi, int *rc)
{
    json_t *out = json_array(), *c, *args;
    size_t i;

    *rc = SL_ERR_NOMEM;
    if (out == NULL)
        return NULL;
    json_array_foreach(calls, i, c) {
        const json_t *fn = json_object_get(c, "function");
        const char *name = sl_tr_str(fn, "name"), *a = sl_tr_str(fn, "arguments"), *why;

        if (name == NULL) {
            *rc = sl_tr_bad(req, "messages[%zu].tool_calls[%zu] needs function.name.", mi, i);
            break;
        }
        args = a == NULL || *a == '\0' ? json_object() : sl_json_parse(a, strlen(a), &why);
        if (!json_is_object(args)) {
            json_decref(args);
            *rc = sl_tr_bad(req, "messages[%zu].tool_calls[%zu].function.arguments is not a JSON object.", mi, i);
            break;
        }
        if (json_array_append_new(out, json_pack("{s:{s:s, s:o}}", "function", "name", name,
                                                 "arguments", args)) != 0)
            break;
    }
    if (i < json_array_size(calls)) {
        json_decref(out);
        return NULL;
    }
    *rc = SL_OK;
    return out;
}

/* The function name of tool call id, from the assistant messages before
 * message mi (the latest wins); NULL if none names it. */
static const char *tool_name(const json_t *msgs, size_t mi, const char *id)
{
    while (mi-- > 0) {
        const json_t *m = json_array_get(msgs, mi), *c;
        size_t i;

        if (sl_tr_str(m, "role") == NULL || strcmp(sl_tr_str(m, "role"), "assistant") != 0)
            continue;
        json_array_foreach(json_object_get(m, "tool_calls"), i, c)
            if (sl_tr_str(c, "id") != NULL && strcmp(sl_tr_str(c, "id"), id) == 0)
                return sl_tr_str(json_object_get(c, "function"), "name");
    }
    return NULL;
}

/* One OpenAI message -> one Ollama message (new reference, or NULL with *rc). */
static json_t *message(struct sl_request *req, const json_t *msgs, size_t mi, int *rc)
{
    const json_t *m = json_array_get(msgs, mi), *c = json_object_get(m, "content"), *calls;
    const char *role = sl_tr_str(m, "role"), *text;
    json_t *out, *images, *v;

    *rc = SL_ERR_NOMEM;
    if (role == NULL) {
        *rc = sl_tr_bad(req, "messages[%zu] needs a role.", mi);
        return NULL;
    }
    if (c != NULL && !json_is_null(c) && !json_is_string(c) && !json_is_array(c)) {
        *rc = sl_tr_bad(req, "messages[%zu].content must be a string or an array of parts.", mi);
        return NULL;
    }
    if (strcmp(role, "developer") == 0)
        role = "system";
    if (strcmp(role, "system") != 0 && strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 &&
        strcmp(role, "tool") != 0) {
        *rc = sl_tr_bad(req, "messages[%zu]: ollama does not support the role %.40s.", mi, role);
        return NULL;
    }
    if ((out = json_pack("{s:s}", "role", role)) == NULL)
        return NULL;
    text = sl_json_content_text(req->arena, c);
    if (strcmp(role, "user") == 0 && json_is_array(c)) {
        if ((images = json_array()) == NULL || json_object_set_new(out, "images", images) != 0 ||
            (*rc = user_parts(req, c, mi, &text, images)) != SL_OK)
            goto fail;
        if (json_array_size(images) == 0)
            json_object_del(out, "images");
    }
    *rc = SL_ERR_NOMEM;
    if (json_object_set_new(out, "content", json_string(text)) != 0)
        goto fail;
    if (strcmp(role, "assistant") == 0) {
        if (json_is_string(v = json_object_get(m, "reasoning_content")))
            json_object_set(out, "thinking", v);
        calls = json_object_get(m, "tool_calls");
        if (json_array_size(calls) > 0 &&
            ((v = tool_calls(req, calls, mi, rc)) == NULL || json_object_set_new(out, "tool_calls", v) != 0))
            goto fail;
    } else if (strcmp(role, "tool") == 0) {
        const char *id = sl_tr_str(m, "tool_call_id"), *name = sl_tr_str(m, "name");

        if (name == NULL && id != NULL)
            name = tool_name(msgs, mi, id);
        if (name != NULL && json_object_set_new(out, "tool_name", json_string(name)) != 0)
            goto fail;
    }
    *rc = SL_OK;
    return out;
fail:
    json_decref(out);
    return NULL;
}

static int convert_messages(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *msgs = json_object_get(in, "messages");
    json_t *out = json_array(), *om;
    size_t i;
    int rc;

    if (out == NULL || json_object_set_new(body, "messages", out) != 0)
        return SL_ERR_NOMEM;
    if (json_array_size(msgs) == 0)
        return sl_tr_bad(req, "messages: at least one message is required.");
    for (i = 0; i < json_array_size(msgs); i++) {
        if ((om = message(req, msgs, i, &rc)) == NULL)
            return rc;
        if (json_array_append_new(out, om) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* tools in OpenAI's function format (Ollama takes it as is). tool_choice:
 * Ollama always decides itself; "none" is honoured by not offering the
 * tools, "required" and a named function cannot be, so they follow the
 * drop_params policy. */
static int convert_tools(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *tools = json_object_get(in, "tools"), *tc = json_object_get(in, "tool_choice"), *t;
    size_t i;
    int rc;

    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);

        if (strcmp(s, "none") == 0)
            return SL_OK;
        if (strcmp(s, "required") == 0 && (rc = sl_tr_drop_value(req, "tool_choice", s)) != SL_OK)
            return rc;
        if (strcmp(s, "auto") != 0 && strcmp(s, "required") != 0)
            return sl_tr_bad(req, "tool_choice must be auto, required, none or a function.");
    } else if (json_is_object(tc)) {
        const char *name = sl_tr_str(json_object_get(tc, "function"), "name");

        if ((rc = sl_tr_drop_value(req, "tool_choice", name ? name : "(function)")) != SL_OK)
            return rc;
    }
    if (json_array_size(tools) == 0)
        return SL_OK;
    json_array_foreach(tools, i, t)
        if (sl_tr_str(t, "type") == NULL || strcmp(sl_tr_str(t, "type"), "function") != 0 ||
            sl_tr_str(json_object_get(t, "function"), "name") == NULL)
            return sl_tr_bad(req, "tools[%zu]: ollama takes tools of type function with a name.", i);
    return json_object_set(body, "tools", (json_t *)tools) == 0 ? SL_OK : SL_ERR_NOMEM;
}

/* response_format -> format: "json", or the schema itself. */
static int convert_format(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *rf = json_object_get(in, "response_format"), *schema;
    const char *type = sl_tr_str(rf, "type");

    if (rf == NULL || json_is_null(rf) || (type != NULL && strcmp(type, "text") == 0))
        return SL_OK;
    if (type != NULL && strcmp(type, "json_object") == 0)
        return json_object_set_new(body, "format", json_string("json")) == 0 ? SL_OK : SL_ERR_NOMEM;
    if (type != NULL && strcmp(type, "json_schema") == 0) {
        schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        return json_object_set_new(body, "format", json_is_object(schema) ? json_incref((json_t *)schema)
                                                                          : json_string("json")) == 0
               ? SL_OK : SL_ERR_NOMEM;
    }
    return sl_tr_bad(req, "response_format type %.40s is not supported by ollama.", type ? type : "(none)");
}

/* reasoning_effort -> think: false for "none"; gpt-oss models take a level
 * ("low", "medium", "high"; a boolean is ignored by them), others true. */
static int convert_think(struct sl_request *req, const json_t *in, json_t *body)
{
    const char *e = sl_tr_str(in, "reasoning_effort");
    json_t *think;

    if (e == NULL)
        return SL_OK;
    if (strcmp(e, "none") == 0)
        think = json_false();
    else if (strcmp(e, "minimal") != 0 && strcmp(e, "low") != 0 && strcmp(e, "medium") != 0 &&
             strcmp(e, "high") != 0)
        return sl_tr_bad(req, "reasoning_effort must be none, minimal, low, medium or high.");
    else if (strncmp(req->dep->upstream_model, "gpt-oss", 7) == 0)
        think = json_string(strcmp(e, "minimal") == 0 ? "low" : e);
    else
        think = json_true();
    return json_object_set_new(body, "think", think) == 0 ? SL_OK : SL_ERR_NOMEM;
}

/* Sampling parameters into options (the client's own "options" first). */
static int convert_options(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *given = json_object_get(in, "options");
    json_t *opts = json_is_object(given) ? json_copy((json_t *)given) : json_object(), *stop, *v;
    const char *key;
    long max_tokens = sl_tr_max_tokens(in);
    int bad;

    if (opts == NULL || json_object_set_new(body, "options", opts) != 0)
        return SL_ERR_NOMEM;
    if (json_is_number(v = json_object_get(in, "temperature")))
        json_object_set(opts, "temperature", v);
    if (json_is_number(v = json_object_get(in, "top_p")))
        json_object_set(opts, "top_p", v);
    if (max_tokens > 0)
        json_object_set_new(opts, "num_predict", json_integer(max_tokens));
    if ((stop = sl_tr_stop_list(in, &bad)) != NULL)
        json_object_set_new(opts, "stop", stop);
    else if (bad)
        return sl_tr_bad(req, "stop must be a string or an array of strings.");
    if (json_is_integer(v = json_object_get(in, "seed")))
        json_object_set(opts, "seed", v);
    if (json_is_number(v = json_object_get(in, "frequency_penalty")))
        json_object_set(opts, "frequency_penalty", v);
    if (json_is_number(v = json_object_get(in, "presence_penalty")))
        json_object_set(opts, "presence_penalty", v);
    json_object_foreach((json_t *)in, key, v) {
        if (sl_tr_is_openai_param(key) || sl_tr_is_gateway_field(key) || strcmp(key, "model") == 0 ||
            strcmp(key, "messages") == 0 || strcmp(key, "options") == 0)
            continue;
        if (sl_tr_in_list(top_level, key)) {
            if (json_object_get(body, key) == NULL)
                json_object_set(body, key, v);
        } else if (json_object_get(opts, key) == NULL) {
            json_object_set(opts, key, v);
        }
    }
    if (json_object_size(opts) == 0)
        json_object_del(body, "options");
    return SL_OK;
}

static int build_chat(struct sl_request *req, const json_t *in, json_t *body)
{
    int rc;

    if ((rc = sl_tr_check_params(req, in, supported)) != SL_OK ||
        (rc = convert_messages(req, in, body)) != SL_OK || (rc = convert_tools(req, in, body)) != SL_OK ||
        (rc = convert_format(req, in, body)) != SL_OK || (rc = convert_think(req, in, body)) != SL_OK ||
        (rc = convert_options(req, in, body)) != SL_OK)
        return rc;
    return json_object_set_new(body, "stream", json_boolean(req->stream)) == 0 ? SL_OK : SL_ERR_NOMEM;
}

/* OpenAI embeddings -> /api/embed (floats; base64 is made here). */
static int build_embed(struct sl_request *req, const json_t *in, json_t *body)
{
    const char *key;
    json_t *input, *v;
    int rc;

    if ((input = sl_tr_embedding_inputs(req, in, &rc)) == NULL)
        return rc;
    if (json_object_set_new(body, "input", input) != 0)
        return SL_ERR_NOMEM;
    if (json_is_integer(v = json_object_get(in, "dimensions")))
        json_object_set(body, "dimensions", v);
    /* Ollama's own: truncate, keep_alive, options. */
    json_object_foreach((json_t *)in, key, v)
        if (!sl_tr_is_openai_param(key) && !sl_tr_is_gateway_field(key) && strcmp(key, "model") != 0 &&
            strcmp(key, "input") != 0 && strcmp(key, "encoding_format") != 0 &&
            json_object_get(body, key) == NULL)
            json_object_set(body, key, v);
    return SL_OK;
}

/* api_base (else OLLAMA_API_BASE) is Ollama's host; a known path on it
 * (".../api/chat", or the OpenAI-compatible "/v1") is cut first. */
static const char *url_for(struct sl_request *req, const char *path)
{
    static const char *const suffixes[] = { "/api/chat", "/api/generate", "/api/embed", "/api", "/v1", NULL };
    const char *base = req->dep->api_base ? req->dep->api_base : getenv("OLLAMA_API_BASE");
    size_t n;

    /* OLLAMA_API_BASE as LiteLLM reads it; the environment is only written
     * at start-up, so getenv is safe here. */
    if (base == NULL || *base == '\0')
        base = OLLAMA_BASE;
    n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    for (size_t i = 0; suffixes[i] != NULL; i++) {
        size_t k = strlen(suffixes[i]);

        if (n >= k && strncmp(base + n - k, suffixes[i], k) == 0) {
            n -= k;
            break;
        }
    }
    return sl_arena_printf(req->arena, "%.*s%s", (int)n, base, path);
}

static int ollama_build_request(struct sl_request *req, const json_t *in, struct sl_upstream_req *out)
{
    struct ollama *st = state(req);
    json_t *body;
    int rc;

    if (st == NULL)
        return SL_ERR_NOMEM;
    if (req->endpoint != SL_EP_CHAT && req->endpoint != SL_EP_EMBEDDINGS)
        return SL_ERR_UNSUPPORTED;
    if ((body = json_pack("{s:s}", "model", req->dep->upstream_model)) == NULL ||
        sl_arena_defer(req->arena, sl_json_decref_cb, body) != SL_OK) {
        json_decref(body);
        return SL_ERR_NOMEM;
    }
    rc = req->endpoint == SL_EP_CHAT ? build_chat(req, in, body) : build_embed(req, in, body);
    if (rc != SL_OK)
        return rc;
    out->headers[out->n_headers++] = "Content-Type: application/json";
    /* No auth of its own; a key means an Ollama behind a proxy (or ollama.com). */
    if (req->dep->api_key != NULL && *req->dep->api_key != '\0' &&
        (out->headers[out->n_headers++] = sl_arena_printf(req->arena, "Authorization: Bearer %s",
                                                          req->dep->api_key)) == NULL)
        return SL_ERR_NOMEM;
    out->url = url_for(req, req->endpoint == SL_EP_CHAT ? "/api/chat" : "/api/embed");
    out->framing = SL_FRAMING_NDJSON;
    out->body = sl_json_dump(req->arena, body, &out->body_len);
    return out->url != NULL && out->body != NULL ? SL_OK : SL_ERR_NOMEM;
}

/* ---- reply ---- */

static long num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (long)json_integer_value(v) : 0;
}

static json_t *usage(const json_t *v)
{
    return sl_tr_usage(num(v, "prompt_eval_count"), num(v, "eval_count"), 0, 0);
}

static const char *finish_reason(const json_t *v, int tools)
{
    const char *r = sl_tr_str(v, "done_reason");

    if (tools)
        return "tool_calls";   /* Ollama says "stop" after tool calls */
    return r != NULL && strcmp(r, "length") == 0 ? "length" : "stop";
}

/* One Ollama tool call -> OpenAI's (arguments as a JSON string; an id made
 * from the request id when Ollama gives none). NULL with *rc set. */
static json_t *one_call(struct sl_request *req, const json_t *c, int index, int with_index, int *rc)
{
    const json_t *fn = json_object_get(c, "function"), *args = json_object_get(fn, "arguments");
    const char *name = sl_tr_str(fn, "name"), *id = sl_tr_str(c, "id"), *a = json_string_value(args);
    size_t n;
    json_t *out;

    *rc = SL_ERR_UPSTREAM_BAD;
    if (name == NULL || (args != NULL && !json_is_object(args) && !json_is_string(args)))
        return NULL;
    *rc = SL_ERR_NOMEM;
    if (a == NULL && (a = args != NULL ? sl_json_dump(req->arena, args, &n) : "{}") == NULL)
        return NULL;
    if (id == NULL && (id = sl_arena_printf(req->arena, "call_%s_%d", req->id, index)) == NULL)
        return NULL;
    out = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function",
                    "name", name, "arguments", a);
    if (out != NULL && with_index && json_object_set_new(out, "index", json_integer(index)) != 0) {
        json_decref(out);
        out = NULL;
    }
    if (out != NULL)
        *rc = SL_OK;
    return out;
}

static int chat_reply(struct sl_request *req, struct ollama *st, const json_t *v, json_t **out)
{
    const json_t *m = json_object_get(v, "message"), *calls = json_object_get(m, "tool_calls"), *c;
    const char *text = sl_tr_str(m, "content"), *thinking = sl_tr_str(m, "thinking");
    json_t *msg, *oc = NULL, *call;
    size_t i;
    int rc;

    if (!json_is_object(m) || (calls != NULL && !json_is_array(calls) && !json_is_null(calls)))
        return SL_ERR_UPSTREAM_BAD;
    if (json_array_size(calls) > 0) {
        if ((oc = json_array()) == NULL)
            return SL_ERR_NOMEM;
        json_array_foreach(calls, i, c) {
            if ((call = one_call(req, c, st->n_tools++, 0, &rc)) == NULL || json_array_append_new(oc, call) != 0) {
                json_decref(oc);
                return call == NULL ? rc : SL_ERR_NOMEM;
            }
        }
    }
    msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                    (text != NULL && *text != '\0') || oc == NULL ? json_string(text ? text : "") : json_null());
    if (msg == NULL) {
        json_decref(oc);
        return SL_ERR_NOMEM;
    }
    if (oc != NULL)
        json_object_set_new(msg, "tool_calls", oc);
    if (thinking != NULL && *thinking != '\0')
        json_object_set_new(msg, "reasoning_content", json_string(thinking));
    if (sl_tr_ids_init(req, &st->ids, NULL) != SL_OK) {
        json_decref(msg);
        return SL_ERR_NOMEM;
    }
    *out = sl_tr_completion(req, &st->ids, msg, finish_reason(v, oc != NULL), usage(v));
    return *out != NULL ? SL_OK : SL_ERR_NOMEM;
}

static int ollama_parse_response(struct sl_request *req, const char *body, size_t len, json_t **out)
{
    struct ollama *st = state(req);
    const char *why;
    json_t *v;
    int rc;

    *out = NULL;
    if (st == NULL)
        return SL_ERR_NOMEM;
    v = sl_json_parse(body, len, &why);   /* json_is_* evaluates its argument twice */
    if (!json_is_object(v)) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    if (req->endpoint == SL_EP_EMBEDDINGS)
        rc = sl_tr_embeddings_reply(req, json_object_get(v, "embeddings"), num(v, "prompt_eval_count"), out);
    else
        rc = chat_reply(req, st, v, out);
    json_decref(v);
    return rc;
}

/* Ollama's error text + status -> OpenAI's shape. Its statuses are already
 * meaningful (404 for a model that is not pulled); the text adds the rest. */
static void map_message(struct sl_request *req, long status, const char *msg, struct sl_error *e)
{
    int st = (int)status;
    const char *code = NULL;

    if (msg != NULL && (strstr(msg, "server busy") || strstr(msg, "maximum pending requests")))
        st = 503;
    else if (msg != NULL && (strstr(msg, "context length") || strstr(msg, "context window")) &&
             (st == 400 || st == 500))
        st = 400, code = "context_length_exceeded";
    sl_tr_set_error(req, e, st, NULL, msg, code);
}

static int ollama_map_error(struct sl_request *req, long http_status, const json_t *body,
                            struct sl_error *out)
{
    const json_t *err = json_object_get(body, "error");

    map_message(req, http_status, json_is_string(err) ? json_string_value(err) : sl_tr_str(err, "message"), out);
    return SL_OK;
}

static int start_chunk(struct sl_request *req, struct ollama *st, json_t **out)
{
    if (st->started)
        return SL_OK;
    st->started = 1;
    return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:s, s:s}", "role", "assistant",
                                                                 "content", ""), NULL));
}

/* One line's message: thinking, text, then each tool call as one complete
 * delta (Ollama never splits a call). */
static int line_deltas(struct sl_request *req, struct ollama *st, const json_t *m, json_t **out)
{
    const char *text = sl_tr_str(m, "content"), *thinking = sl_tr_str(m, "thinking");
    const json_t *calls = json_object_get(m, "tool_calls"), *c;
    json_t *call;
    size_t i;
    int rc = SL_OK;

    if (calls != NULL && !json_is_array(calls) && !json_is_null(calls))
        return SL_ERR_UPSTREAM_BAD;
    if (thinking != NULL && *thinking != '\0')
        rc = sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:s}", "reasoning_content", thinking), NULL));
    if (rc == SL_OK && text != NULL && *text != '\0')
        rc = sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:s}", "content", text), NULL));
    json_array_foreach(calls, i, c) {
        if (rc != SL_OK)
            break;
        if ((call = one_call(req, c, st->n_tools++, 1, &rc)) != NULL)
            rc = sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:[o]}", "tool_calls", call), NULL));
    }
    return rc;
}

static int ollama_parse_stream_event(struct sl_request *req, const struct sl_sse_event *ev,
                                     json_t **out, int *done)
{
    struct ollama *st = state(req);
    const char *why;
    const json_t *err;
    json_t *v;
    int rc;

    *out = NULL;
    if (st == NULL)
        return SL_ERR_NOMEM;
    if (ev->data_len == 0)
        return SL_OK;
    v = sl_json_parse(ev->data, ev->data_len, &why);   /* json_is_* evaluates its argument twice */
    if (!json_is_object(v)) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    if ((err = json_object_get(v, "error")) != NULL && !json_is_null(err)) {
        map_message(req, 500, json_is_string(err) ? json_string_value(err) : sl_tr_str(err, "message"),
                    &req->upstream_err);
        if (req->upstream_err.message == NULL)
            req->upstream_err.message = "ollama reported an error in the stream.";
        json_decref(v);
        return SL_ERR_UPSTREAM_STATUS;
    }
    if ((st->ids.id == NULL && sl_tr_ids_init(req, &st->ids, NULL) != SL_OK)) {
        json_decref(v);
        return SL_ERR_NOMEM;
    }
    if ((rc = start_chunk(req, st, out)) == SL_OK)
        rc = line_deltas(req, st, json_object_get(v, "message"), out);
    if (rc == SL_OK && json_is_true(json_object_get(v, "done"))) {
        rc = sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_object(), finish_reason(v, st->n_tools > 0)));
        if (rc == SL_OK)
            rc = sl_tr_emit(out, sl_tr_usage_chunk(req, &st->ids, usage(v)));
        *done = 1;
    }
    json_decref(v);
    return rc;
}

/* Whether the value at path is absent, or exactly one of the empty tokens. */
static int empty_at(const struct sl_sse_event *ev, const char *const path[], const char *a, const char *b)
{
    size_t n;
    const char *v = sl_tr_scan(ev->data, ev->data_len, path, &n);

    return v == NULL || (n == strlen(a) && memcmp(v, a, n) == 0) || (b && n == strlen(b) && memcmp(v, b, n) == 0);
}

/* The fast path for a plain text line once the answer has begun:
 * {"model":..,"created_at":..,"message":{"role":"assistant","content":".."},"done":false}
 * with no thinking, tool calls or error in it. */
static int ollama_fast_delta(struct sl_request *req, const struct sl_sse_event *ev,
                             struct sl_fast_delta *out)
{
    static const char *const done[] = { "done", NULL };
    static const char *const error[] = { "error", NULL };
    static const char *const thinking[] = { "message", "thinking", NULL };
    static const char *const calls[] = { "message", "tool_calls", NULL };
    static const char *const text[] = { "message", "content", NULL };
    const struct ollama *st = req->pstate;

    if (st == NULL || !st->started || st->ids.id == NULL ||
        !sl_tr_scan_is(ev->data, ev->data_len, done, "false") ||
        !empty_at(ev, error, "null", NULL) || !empty_at(ev, thinking, "\"\"", "null") ||
        !empty_at(ev, calls, "null", "[]") ||
        (out->text = sl_tr_scan(ev->data, ev->data_len, text, &out->text_len)) == NULL ||
        out->text_len < 3 || out->text[0] != '"')
        return 0;
    out->id = st->ids.id;
    out->created = st->ids.created;
    out->reasoning = 0;
    return 1;
}

/* LiteLLM's two prefixes: ollama/ (its /api/generate route) and ollama_chat/;
 * both are served through /api/chat (ollama/ is an alias in registry.c). */
const struct sl_provider sl_provider_ollama_chat = {
    .name = "ollama_chat",
    .abi = SL_PROVIDER_ABI,
    .flags = 0,
    .api_key_env = "OLLAMA_API_KEY",
    .default_api_base = OLLAMA_BASE,
    .endpoints = SL_EP_BIT(SL_EP_CHAT) | SL_EP_BIT(SL_EP_EMBEDDINGS),
    .build_request = ollama_build_request,
    .parse_response = ollama_parse_response,
    .parse_stream_event = ollama_parse_stream_event,
    .map_error = ollama_map_error,
    .fast_delta = ollama_fast_delta,
};

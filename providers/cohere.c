/* cohere_chat/ and cohere/: OpenAI chat completions and embeddings <-> Cohere's
 * v2 API (POST /v2/chat, POST /v2/embed).
 *
 * Request: v2 chat is close to OpenAI's: system/developer messages become
 * role "system", user content keeps its text and image_url parts, assistant
 * tool_calls go as they are (their text content becomes tool_plan), tool
 * results become role "tool" messages. Tools keep OpenAI's function format.
 * tool_choice: required -> REQUIRED, none -> NONE, auto -> left out; a named
 * function (which Cohere cannot express) becomes REQUIRED with only that tool
 * offered. top_p -> p, stop -> stop_sequences, response_format json_object /
 * json_schema -> {"type":"json_object"[, "json_schema"]}. Parameters that are
 * not OpenAI's (k, safety_mode, documents, thinking, ...) pass through.
 *
 * Reply: text content joins into content, thinking content into
 * reasoning_content, tool_calls pass as they are (tool_plan is not returned);
 * usage from usage.tokens, else usage.billed_units.
 *
 * Stream: Cohere's named SSE events (message-start, content-delta,
 * tool-call-start/-delta, message-end, ...) become OpenAI chunks; message-end
 * carries finish_reason and usage and ends the stream; finish_reason ERROR is
 * an in-band error. */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "jsonutil.h"
#include "request.h"
#include "status.h"
#include "translate.h"

#define COHERE_BASE "https://api.cohere.com"

/* Per-request adapter state (req->pstate). */
struct cohere {
    struct sl_tr_ids ids;
    int started;            /* the first chunk (role) went out */
    int tool_open;          /* a tool call is streaming: its index is tool_index */
    int tool_index;         /* OpenAI tool_calls index of the open call */
    int n_tools;            /* tool calls started */
};

static struct cohere *state(struct sl_request *req)
{
    if (req->pstate == NULL)
        req->pstate = sl_arena_calloc(req->arena, 1, sizeof(struct cohere));
    return req->pstate;
}

/* ---- request ---- */

/* "user" and "parallel_tool_calls" are accepted and ignored: the first is
 * the gateway's attribution, and Cohere may call several tools at once
 * anyway. n > 1 is not here: v2 chat makes one answer. */
static const char *const supported[] = {
    "max_tokens", "max_completion_tokens", "stop", "stream", "stream_options",
    "temperature", "top_p", "seed", "frequency_penalty", "presence_penalty",
    "tools", "tool_choice", "parallel_tool_calls", "response_format", "user", NULL
};

/* One OpenAI image_url part -> Cohere's (the same shape; data URLs and
 * http(s) URLs are both taken by its vision models). */
static json_t *image_part(struct sl_request *req, const json_t *part, int *rc)
{
    const json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : sl_tr_str(iu, "url");
    json_t *out;

    if (url == NULL) {
        *rc = sl_tr_bad(req, "image_url parts need a url.");
        return NULL;
    }
    if (strncmp(url, "data:", 5) != 0 && strncmp(url, "https://", 8) != 0 &&
        strncmp(url, "http://", 7) != 0) {
        *rc = sl_tr_bad(req, "image_url must be an http(s) URL or a data URL.");
        return NULL;
    }
    out = json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", url);
    if (out != NULL && sl_tr_str(iu, "detail") != NULL)
        json_object_set(json_object_get(out, "image_url"), "detail", json_object_get(iu, "detail"));
    return out;
}

/* An OpenAI message content -> Cohere's: a string stays a string, parts
 * become Cohere parts (images only where allow_images). New reference, or
 * NULL with *rc set (400 or OOM). */
static json_t *content(struct sl_request *req, const json_t *c, int allow_images, size_t mi, int *rc)
{
    json_t *out, *part, *p;
    size_t i;

    *rc = SL_ERR_NOMEM;
    if (c == NULL || json_is_null(c))
        return json_string("");
    if (json_is_string(c))
        return json_incref((json_t *)c);
    if (!json_is_array(c)) {
        *rc = sl_tr_bad(req, "messages[%zu].content must be a string or an array of parts.", mi);
        return NULL;
    }
    if ((out = json_array()) == NULL)
        return NULL;
    json_array_foreach(c, i, part) {
        const char *type = sl_tr_str(part, "type");

        if (type != NULL && strcmp(type, "text") == 0 && json_is_string(json_object_get(part, "text"))) {
            p = json_pack("{s:s, s:O}", "type", "text", "text", json_object_get(part, "text"));
        } else if (type != NULL && strcmp(type, "image_url") == 0 && allow_images) {
            p = image_part(req, part, rc);
        } else {
            *rc = sl_tr_bad(req, "messages[%zu].content[%zu]: cohere does not take parts of type %.60s here.",
                            mi, i, type ? type : "(none)");
            p = NULL;
        }
        if (p == NULL || json_array_append_new(out, p) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *tool_calls(struct sl_request *req, const json_t *calls, size_t mi, int *rc)
{
    json_t *out = json_array(), *c;
    size_t i;

    *rc = SL_ERR_NOMEM;
    if (out == NULL)
        return NULL;
    json_array_foreach(calls, i, c) {
        const json_t *fn = json_object_get(c, "function");
        const char *name = sl_tr_str(fn, "name"), *args = sl_tr_str(fn, "arguments"), *id = sl_tr_str(c, "id");

        if (name == NULL || id == NULL) {
            *rc = sl_tr_bad(req, "messages[%zu].tool_calls[%zu] needs an id and function.name.", mi, i);
            json_decref(out);
            return NULL;
        }
        if (json_array_append_new(out, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function",
                                                 "function", "name", name,
                                                 "arguments", args && *args ? args : "{}")) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* One OpenAI message -> one Cohere message (new reference, or NULL with *rc). */
static json_t *message(struct sl_request *req, const json_t *m, size_t mi, int *rc)
{
    const char *role = sl_tr_str(m, "role");
    const json_t *c = json_object_get(m, "content"), *calls = json_object_get(m, "tool_calls");
    json_t *out, *v;

    *rc = SL_ERR_NOMEM;
    if (role == NULL) {
        *rc = sl_tr_bad(req, "messages[%zu] needs a role.", mi);
        return NULL;
    }
    if (strcmp(role, "user") == 0) {
        if ((v = content(req, c, 1, mi, rc)) == NULL)
            return NULL;
        return json_pack("{s:s, s:o}", "role", "user", "content", v);
    }
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
        if ((v = content(req, c, 0, mi, rc)) == NULL)
            return NULL;
        return json_pack("{s:s, s:o}", "role", "system", "content", v);
    }
    if (strcmp(role, "tool") == 0) {
        if (sl_tr_str(m, "tool_call_id") == NULL) {
            *rc = sl_tr_bad(req, "messages[%zu]: a tool message needs tool_call_id.", mi);
            return NULL;
        }
        if ((v = content(req, c, 0, mi, rc)) == NULL)
            return NULL;
        return json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id", sl_tr_str(m, "tool_call_id"), "content", v);
    }
    if (strcmp(role, "assistant") != 0) {
        *rc = sl_tr_bad(req, "messages[%zu]: cohere does not support the role %.40s.", mi, role);
        return NULL;
    }
    if ((out = json_pack("{s:s}", "role", "assistant")) == NULL)
        return NULL;
    if (json_array_size(calls) > 0) {
        /* With tool calls, the assistant's words are its tool plan. */
        const char *plan = sl_json_content_text(req->arena, c);

        if ((v = tool_calls(req, calls, mi, rc)) == NULL || json_object_set_new(out, "tool_calls", v) != 0 ||
            (plan != NULL && *plan != '\0' && json_object_set_new(out, "tool_plan", json_string(plan)) != 0)) {
            json_decref(out);
            return NULL;
        }
        return out;
    }
    if ((v = content(req, c, 0, mi, rc)) == NULL || json_object_set_new(out, "content", v) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static int convert_messages(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *msgs = json_object_get(in, "messages");
    json_t *out = json_array(), *m, *cm;
    size_t i;
    int rc;

    if (out == NULL || json_object_set_new(body, "messages", out) != 0)
        return SL_ERR_NOMEM;
    if (json_array_size(msgs) == 0)
        return sl_tr_bad(req, "messages: at least one message is required.");
    json_array_foreach(msgs, i, m) {
        if ((cm = message(req, m, i, &rc)) == NULL)
            return rc;
        if (json_array_append_new(out, cm) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* tools and tool_choice. A named function has no Cohere equivalent; it
 * becomes REQUIRED with only that tool offered, which forces exactly the
 * call the client asked for. */
static int convert_tools(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *tools = json_object_get(in, "tools"), *tc = json_object_get(in, "tool_choice");
    const char *only = NULL, *choice = NULL;
    json_t *out, *t;
    size_t i;
    int strict = 0;

    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);

        if (strcmp(s, "required") == 0)
            choice = "REQUIRED";
        else if (strcmp(s, "none") == 0)
            choice = "NONE";
        else if (strcmp(s, "auto") != 0)
            return sl_tr_bad(req, "tool_choice must be auto, required, none or a function.");
    } else if (json_is_object(tc)) {
        if ((only = sl_tr_str(json_object_get(tc, "function"), "name")) == NULL)
            return sl_tr_bad(req, "tool_choice needs function.name.");
        choice = "REQUIRED";
    }
    if (json_array_size(tools) == 0) {
        if (only != NULL)
            return sl_tr_bad(req, "tool_choice names %.80s, but no tools were given.", only);
        return SL_OK;
    }
    if ((out = json_array()) == NULL || json_object_set_new(body, "tools", out) != 0)
        return SL_ERR_NOMEM;
    json_array_foreach(tools, i, t) {
        const json_t *fn = json_object_get(t, "function");
        const char *name = sl_tr_str(fn, "name");
        json_t *tool, *params;

        if (sl_tr_str(t, "type") == NULL || strcmp(sl_tr_str(t, "type"), "function") != 0 || name == NULL)
            return sl_tr_bad(req, "tools[%zu]: cohere takes tools of type function with a name.", i);
        if (only != NULL && strcmp(name, only) != 0)
            continue;
        params = json_object_get(fn, "parameters");
        params = json_is_object(params) ? json_incref(params)
                                        : json_pack("{s:s, s:{}}", "type", "object", "properties");
        tool = json_pack("{s:s, s:{s:s, s:o}}", "type", "function", "function", "name", name,
                         "parameters", params);
        if (tool == NULL)
            return SL_ERR_NOMEM;
        if (sl_tr_str(fn, "description") != NULL)
            json_object_set(json_object_get(tool, "function"), "description", json_object_get(fn, "description"));
        strict |= json_is_true(json_object_get(fn, "strict"));
        if (json_array_append_new(out, tool) != 0)
            return SL_ERR_NOMEM;
    }
    if (only != NULL && json_array_size(out) == 0)
        return sl_tr_bad(req, "tool_choice names %.80s, which is not among the tools.", only);
    if (choice != NULL)
        json_object_set_new(body, "tool_choice", json_string(choice));
    if (strict && json_object_get(in, "strict_tools") == NULL)
        json_object_set_new(body, "strict_tools", json_true());
    return SL_OK;
}

static int convert_format(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *rf = json_object_get(in, "response_format"), *schema;
    const char *type = sl_tr_str(rf, "type");
    json_t *f;

    if (rf == NULL || json_is_null(rf) || (type != NULL && strcmp(type, "text") == 0))
        return SL_OK;
    if (type != NULL && strcmp(type, "json_object") == 0) {
        f = json_pack("{s:s}", "type", "json_object");
    } else if (type != NULL && strcmp(type, "json_schema") == 0) {
        schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        f = json_is_object(schema) ? json_pack("{s:s, s:O}", "type", "json_object", "json_schema", schema)
                                   : json_pack("{s:s}", "type", "json_object");
    } else {
        return sl_tr_bad(req, "response_format type %.40s is not supported by cohere.", type ? type : "(none)");
    }
    return f != NULL && json_object_set_new(body, "response_format", f) == 0 ? SL_OK : SL_ERR_NOMEM;
}

/* The URL for path ("/v2/chat" or "/v2/embed"). api_base (else
 * COHERE_API_BASE, as LiteLLM reads it) is Cohere's host;
 * LiteLLM configs often carry the whole chat URL (".../v2/chat"), so a known
 * endpoint or version suffix is cut first. */
static const char *url_for(struct sl_request *req, const char *path)
{
    static const char *const suffixes[] = { "/v2/chat", "/v2/embed", "/v2/rerank", "/v1/chat", "/v1/embed",
                                            "/v1/rerank", "/v2", "/v1", NULL };
    const char *base = req->dep->api_base ? req->dep->api_base : getenv("COHERE_API_BASE");
    size_t n;

    if (base == NULL || *base == '\0')
        base = COHERE_BASE;
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

static int add_headers(struct sl_request *req, struct sl_upstream_req *out)
{
    /* LiteLLM also reads CO_API_KEY (the Cohere SDK's variable). The
     * environment is only written at start-up, so getenv is safe here. */
    const char *key = req->dep->api_key ? req->dep->api_key : getenv("CO_API_KEY");

    out->headers[out->n_headers++] = "Content-Type: application/json";
    out->headers[out->n_headers++] = req->stream && req->endpoint == SL_EP_CHAT ? "Accept: text/event-stream"
                                                                               : "Accept: application/json";
    if (key != NULL && *key != '\0' &&
        (out->headers[out->n_headers++] = sl_arena_printf(req->arena, "Authorization: Bearer %s", key)) == NULL)
        return SL_ERR_NOMEM;
    return SL_OK;
}

/* Keys of the client's body that are Cohere's own and pass through. */
static int passes_through(const char *key)
{
    return !sl_tr_is_openai_param(key) && !sl_tr_is_gateway_field(key) && strcmp(key, "model") != 0 &&
           strcmp(key, "messages") != 0 && strcmp(key, "input") != 0 &&
           strcmp(key, "encoding_format") != 0 && strcmp(key, "dimensions") != 0;
}

static int build_chat(struct sl_request *req, const json_t *in, json_t *body)
{
    json_t *v, *stop;
    const char *key;
    long max_tokens = sl_tr_max_tokens(in);
    int rc, bad;

    if ((rc = sl_tr_check_params(req, in, supported)) != SL_OK)
        return rc;
    if ((rc = convert_messages(req, in, body)) != SL_OK || (rc = convert_tools(req, in, body)) != SL_OK ||
        (rc = convert_format(req, in, body)) != SL_OK)
        return rc;
    if ((stop = sl_tr_stop_list(in, &bad)) != NULL)
        json_object_set_new(body, "stop_sequences", stop);
    else if (bad)
        return sl_tr_bad(req, "stop must be a string or an array of strings.");
    if (max_tokens > 0)
        json_object_set_new(body, "max_tokens", json_integer(max_tokens));
    if (json_is_number(v = json_object_get(in, "temperature")))
        json_object_set(body, "temperature", v);
    if (json_is_number(v = json_object_get(in, "top_p")))
        json_object_set(body, "p", v);
    if (json_is_integer(v = json_object_get(in, "seed")))
        json_object_set(body, "seed", v);
    if (json_is_number(v = json_object_get(in, "frequency_penalty")))
        json_object_set(body, "frequency_penalty", v);
    if (json_is_number(v = json_object_get(in, "presence_penalty")))
        json_object_set(body, "presence_penalty", v);
    if (req->stream)
        json_object_set_new(body, "stream", json_true());
    json_object_foreach((json_t *)in, key, v)
        if (passes_through(key) && json_object_get(body, key) == NULL)
            json_object_set(body, key, v);
    return SL_OK;
}

/* OpenAI embeddings -> /v2/embed. Floats are always asked for: base64 is
 * made here, in OpenAI's float32 layout. */
static int build_embed(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *it = json_object_get(in, "input_type");
    json_t *dims = json_object_get(in, "dimensions"), *v;
    const char *key;
    json_t *texts;
    int rc;

    if ((texts = sl_tr_embedding_inputs(req, in, &rc)) == NULL)
        return rc;
    if (json_object_set_new(body, "texts", texts) != 0 ||
        json_object_set_new(body, "input_type", json_is_string(it) ? json_incref((json_t *)it)
                                                                   : json_string("search_document")) != 0 ||
        json_object_set_new(body, "embedding_types", json_pack("[s]", "float")) != 0)
        return SL_ERR_NOMEM;
    if (json_is_integer(dims))
        json_object_set(body, "output_dimension", dims);
    json_object_foreach((json_t *)in, key, v)
        if (passes_through(key) && strcmp(key, "input_type") != 0 && json_object_get(body, key) == NULL)
            json_object_set(body, key, v);
    return SL_OK;
}

/* Cohere's v2 rerank: documents are strings; it returns no documents,
 * so sl_tr_rerank_reply adds them back when the client asked. */
static int build_rerank(struct sl_request *req, const json_t *in, json_t *body)
{
    static const char *const own[] = { "top_n", "max_tokens_per_doc", NULL };
    json_t *docs = sl_tr_rerank_documents(req, in), *v;

    if (docs == NULL || json_object_set_new(body, "documents", docs) != 0 ||
        json_object_set(body, "query", json_object_get(in, "query")) != 0)
        return SL_ERR_NOMEM;
    for (size_t i = 0; own[i] != NULL; i++)
        if ((v = json_object_get(in, own[i])) != NULL && json_object_set(body, own[i], v) != 0)
            return SL_ERR_NOMEM;
    return SL_OK;
}

static int cohere_build_request(struct sl_request *req, const json_t *in, struct sl_upstream_req *out)
{
    struct cohere *st = state(req);
    json_t *body;
    int rc;

    if (st == NULL)
        return SL_ERR_NOMEM;
    if (req->endpoint != SL_EP_CHAT && req->endpoint != SL_EP_EMBEDDINGS && req->endpoint != SL_EP_RERANK)
        return SL_ERR_UNSUPPORTED;
    if ((body = json_pack("{s:s}", "model", req->dep->upstream_model)) == NULL ||
        sl_arena_defer(req->arena, sl_json_decref_cb, body) != SL_OK) {
        json_decref(body);
        return SL_ERR_NOMEM;
    }
    rc = req->endpoint == SL_EP_CHAT ? build_chat(req, in, body)
       : req->endpoint == SL_EP_RERANK ? build_rerank(req, in, body) : build_embed(req, in, body);
    if (rc != SL_OK || (rc = add_headers(req, out)) != SL_OK)
        return rc;
    out->url = url_for(req, req->endpoint == SL_EP_CHAT ? "/v2/chat"
                            : req->endpoint == SL_EP_RERANK ? "/v2/rerank" : "/v2/embed");
    out->framing = SL_FRAMING_SSE;
    out->body = sl_json_dump(req->arena, body, &out->body_len);
    return out->url != NULL && out->body != NULL ? SL_OK : SL_ERR_NOMEM;
}

/* ---- reply ---- */

/* Cohere's finish_reason -> OpenAI's; NULL for ERROR and TIMEOUT (the
 * answer failed). */
static const char *finish_reason(const char *r)
{
    if (r == NULL)
        return "stop";
    if (strcmp(r, "MAX_TOKENS") == 0 || strcmp(r, "ERROR_LIMIT") == 0)
        return "length";
    if (strcmp(r, "TOOL_CALL") == 0)
        return "tool_calls";
    if (strcmp(r, "ERROR_TOXIC") == 0)
        return "content_filter";
    if (strcmp(r, "ERROR") == 0 || strcmp(r, "TIMEOUT") == 0)
        return NULL;
    return "stop";   /* COMPLETE, STOP_SEQUENCE, and reasons yet to come */
}

static long num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (long)json_integer_value(v) : 0;
}

/* usage.tokens (what the model saw), else usage.billed_units. */
static json_t *usage(const json_t *u)
{
    const json_t *t = json_object_get(u, "tokens");

    if (!json_is_object(t))
        t = json_object_get(u, "billed_units");
    return sl_tr_usage(num(t, "input_tokens"), num(t, "output_tokens"), num(u, "cached_tokens"), 0);
}

/* tool_calls of a reply -> OpenAI's; arguments that arrive as an object are
 * serialised. NULL if there are none. */
static json_t *reply_tool_calls(struct sl_request *req, const json_t *calls, int *rc)
{
    json_t *out, *c;
    size_t i;

    *rc = SL_OK;
    if (json_array_size(calls) == 0)
        return NULL;
    *rc = SL_ERR_NOMEM;
    if ((out = json_array()) == NULL)
        return NULL;
    json_array_foreach(calls, i, c) {
        const json_t *fn = json_object_get(c, "function"), *args = json_object_get(fn, "arguments");
        const char *a = json_string_value(args), *id = sl_tr_str(c, "id");
        size_t n;

        if (sl_tr_str(fn, "name") == NULL) {
            *rc = SL_ERR_UPSTREAM_BAD;
            break;
        }
        if (a == NULL && (a = json_is_object(args) ? sl_json_dump(req->arena, args, &n) : "{}") == NULL)
            break;
        if (id == NULL && (id = sl_arena_printf(req->arena, "call_%s_%zu", req->id, i)) == NULL)
            break;
        if (json_array_append_new(out, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function",
                                                 "function", "name", sl_tr_str(fn, "name"), "arguments", a)) != 0)
            break;
    }
    if (i < json_array_size(calls)) {
        json_decref(out);
        return NULL;
    }
    *rc = SL_OK;
    return out;
}

static int chat_reply(struct sl_request *req, struct cohere *st, const json_t *v, json_t **out)
{
    const json_t *m = json_object_get(v, "message"), *parts = json_object_get(m, "content"), *p;
    struct sl_buf text = { 0 }, thinking = { 0 };
    const char *fr = sl_tr_str(v, "finish_reason"), *finish = finish_reason(fr);
    json_t *msg = NULL, *calls;
    size_t i;
    int rc = SL_ERR_NOMEM;

    if (!json_is_object(m) || (parts != NULL && !json_is_array(parts) && !json_is_string(parts)))
        return SL_ERR_UPSTREAM_BAD;
    if (finish == NULL) {
        req->err_msg = sl_arena_printf(req->arena, "cohere ended the answer with finish_reason %.40s.",
                                       fr ? fr : "(none)");
        return SL_ERR_UPSTREAM_BAD;
    }
    sl_buf_init(&text, SL_MAX_UPSTREAM_BODY);
    sl_buf_init(&thinking, SL_MAX_UPSTREAM_BODY);
    if (json_is_string(parts) && sl_buf_puts(&text, json_string_value(parts)) != SL_OK)
        goto out;
    json_array_foreach(parts, i, p) {
        const char *type = sl_tr_str(p, "type");

        if (type != NULL && strcmp(type, "text") == 0 && sl_tr_str(p, "text") != NULL) {
            if (sl_buf_puts(&text, sl_tr_str(p, "text")) != SL_OK)
                goto out;
        } else if (type != NULL && strcmp(type, "thinking") == 0 && sl_tr_str(p, "thinking") != NULL) {
            if (sl_buf_puts(&thinking, sl_tr_str(p, "thinking")) != SL_OK)
                goto out;
        }
    }
    calls = reply_tool_calls(req, json_object_get(m, "tool_calls"), &rc);
    if (rc != SL_OK)
        goto out;
    rc = SL_ERR_NOMEM;
    msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                    text.len > 0 || calls == NULL ? json_stringn(text.data ? text.data : "", text.len) : json_null());
    if (msg == NULL) {
        json_decref(calls);
        goto out;
    }
    if (calls != NULL)
        json_object_set_new(msg, "tool_calls", calls);
    if (thinking.len > 0)
        json_object_set_new(msg, "reasoning_content", json_stringn(thinking.data, thinking.len));
    if (sl_tr_ids_init(req, &st->ids, sl_tr_str(v, "id")) != SL_OK)
        goto out;
    *out = sl_tr_completion(req, &st->ids, msg, finish, usage(json_object_get(v, "usage")));
    msg = NULL;
    rc = *out != NULL ? SL_OK : SL_ERR_NOMEM;
out:
    json_decref(msg);
    sl_buf_free(&text);
    sl_buf_free(&thinking);
    return rc;
}

static int cohere_parse_response(struct sl_request *req, const char *body, size_t len, json_t **out)
{
    struct cohere *st = state(req);
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
        rc = sl_tr_embeddings_reply(req, json_object_get(json_object_get(v, "embeddings"), "float"),
                                    num(json_object_get(json_object_get(v, "meta"), "billed_units"),
                                        "input_tokens"), out);
    else if (req->endpoint == SL_EP_RERANK)
        rc = sl_tr_rerank_reply(req, sl_tr_str(v, "id"), json_object_get(v, "results"),
                                num(json_object_get(json_object_get(v, "meta"), "billed_units"), "search_units"), out);
    else
        rc = chat_reply(req, st, v, out);
    json_decref(v);
    return rc;
}

/* Cohere's error message + status -> OpenAI's shape. */
static void map_message(struct sl_request *req, long status, const char *msg, struct sl_error *e)
{
    int st = (int)status;
    const char *code = NULL;

    if (status == 498)
        st = 401;           /* Cohere's "invalid token" */
    else if (status == 422)
        st = 400;
    if (msg != NULL && st >= 400 && st < 500 && st != 401 && st != 429) {
        if (strstr(msg, "too many tokens") || strstr(msg, "too long") || strstr(msg, "context length")) {
            st = 400;
            code = "context_length_exceeded";
        } else if (strstr(msg, "blocked input") || strstr(msg, "blocked output") ||
                   strstr(msg, "Usage Policy") || strstr(msg, "toxic")) {
            st = 400;
            code = "content_policy_violation";
        }
    }
    sl_tr_set_error(req, e, st, NULL, msg, code);
}

static int cohere_map_error(struct sl_request *req, long http_status, const json_t *body,
                            struct sl_error *out)
{
    const char *msg = sl_tr_str(body, "message");

    if (msg == NULL)
        msg = json_is_string(json_object_get(body, "error")) ? sl_tr_str(body, "error")
                                                             : sl_tr_str(json_object_get(body, "error"), "message");
    map_message(req, http_status, msg, out);
    return SL_OK;
}

static int start_chunk(struct sl_request *req, struct cohere *st, json_t **out)
{
    if (st->started)
        return SL_OK;
    st->started = 1;
    return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:s, s:s}", "role", "assistant",
                                                                 "content", ""), NULL));
}

/* content-start / content-delta: {"text": ...} or {"thinking": ...}. */
static int content_delta(struct sl_request *req, struct cohere *st, const json_t *c, json_t **out)
{
    const char *text = sl_tr_str(c, "text"), *thinking = sl_tr_str(c, "thinking");

    if (text != NULL && *text != '\0')
        return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:s}", "content", text), NULL));
    if (thinking != NULL && *thinking != '\0')
        return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:s}", "reasoning_content", thinking),
                                           NULL));
    return SL_OK;
}

/* tool-call-start: the call's first delta carries index, id, type, name and
 * "" arguments, as the OpenAI SDK expects; arguments Cohere sent with it
 * follow as a fragment. */
static int tool_start(struct sl_request *req, struct cohere *st, const json_t *tc, json_t **out)
{
    const json_t *fn = json_object_get(tc, "function");
    const char *name = sl_tr_str(fn, "name"), *args = sl_tr_str(fn, "arguments"), *id = sl_tr_str(tc, "id");
    int rc;

    if (name == NULL)
        return SL_ERR_UPSTREAM_BAD;
    if (id == NULL && (id = sl_arena_printf(req->arena, "call_%s_%d", req->id, st->n_tools)) == NULL)
        return SL_ERR_NOMEM;
    st->tool_index = st->n_tools++;
    st->tool_open = 1;
    rc = sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:[{s:i, s:s, s:s, s:{s:s, s:s}}]}",
                        "tool_calls", "index", st->tool_index, "id", id, "type", "function",
                        "function", "name", name, "arguments", ""), NULL));
    if (rc == SL_OK && args != NULL && *args != '\0')
        rc = sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:[{s:i, s:{s:s}}]}", "tool_calls",
                            "index", st->tool_index, "function", "arguments", args), NULL));
    return rc;
}

static int tool_delta(struct sl_request *req, struct cohere *st, const json_t *tc, json_t **out)
{
    const char *args = sl_tr_str(json_object_get(tc, "function"), "arguments");

    if (!st->tool_open || args == NULL || *args == '\0')
        return SL_OK;
    return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:[{s:i, s:{s:s}}]}", "tool_calls",
                          "index", st->tool_index, "function", "arguments", args), NULL));
}

/* message-end: finish_reason, usage and the end; ERROR (with delta.error)
 * or TIMEOUT is an in-band upstream error. */
static int message_end(struct sl_request *req, struct cohere *st, const json_t *d, json_t **out, int *done)
{
    const char *fr = sl_tr_str(d, "finish_reason"), *finish = finish_reason(fr);
    const json_t *err = json_object_get(d, "error");
    int rc;

    if (finish == NULL || (err != NULL && !json_is_null(err))) {
        const char *msg = json_is_string(err) ? json_string_value(err) : sl_tr_str(err, "message");

        map_message(req, 500, msg ? msg : sl_arena_printf(req->arena, "cohere ended the stream with "
                                                          "finish_reason %.40s.", fr ? fr : "(none)"),
                    &req->upstream_err);
        return SL_ERR_UPSTREAM_STATUS;
    }
    if ((rc = start_chunk(req, st, out)) != SL_OK ||
        (rc = sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_object(), finish))) != SL_OK)
        return rc;
    *done = 1;
    return sl_tr_emit(out, sl_tr_usage_chunk(req, &st->ids, usage(json_object_get(d, "usage"))));
}

static int cohere_parse_stream_event(struct sl_request *req, const struct sl_sse_event *ev,
                                     json_t **out, int *done)
{
    struct cohere *st = state(req);
    const char *why, *type;
    const json_t *d;
    json_t *v;
    int rc = SL_OK;

    *out = NULL;
    if (st == NULL)
        return SL_ERR_NOMEM;
    if (ev->data_len == 0)
        return SL_OK;
    v = sl_json_parse(ev->data, ev->data_len, &why);
    type = sl_tr_str(v, "type") ? sl_tr_str(v, "type") : ev->event;
    if (!json_is_object(v) || type == NULL) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    if (st->ids.id == NULL && sl_tr_ids_init(req, &st->ids, sl_tr_str(v, "id")) != SL_OK) {
        json_decref(v);
        return SL_ERR_NOMEM;
    }
    d = json_object_get(json_object_get(v, "delta"), "message");
    if (strcmp(type, "message-start") == 0) {
        rc = start_chunk(req, st, out);
    } else if (strcmp(type, "content-start") == 0 || strcmp(type, "content-delta") == 0) {
        if ((rc = start_chunk(req, st, out)) == SL_OK)
            rc = content_delta(req, st, json_object_get(d, "content"), out);
    } else if (strcmp(type, "tool-call-start") == 0) {
        if ((rc = start_chunk(req, st, out)) == SL_OK)
            rc = tool_start(req, st, json_object_get(d, "tool_calls"), out);
    } else if (strcmp(type, "tool-call-delta") == 0) {
        rc = tool_delta(req, st, json_object_get(d, "tool_calls"), out);
    } else if (strcmp(type, "tool-call-end") == 0) {
        st->tool_open = 0;
    } else if (strcmp(type, "message-end") == 0) {
        rc = message_end(req, st, json_object_get(v, "delta"), out, done);
    }
    /* tool-plan-delta, citation-start/-end, content-end, debug: nothing for
     * the client. */
    json_decref(v);
    return rc;
}

/* The fast path for a plain text delta once the answer has begun:
 * {"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"..."}}}} */
static int cohere_fast_delta(struct sl_request *req, const struct sl_sse_event *ev,
                             struct sl_fast_delta *out)
{
    static const char *const type[] = { "type", NULL };
    static const char *const text[] = { "delta", "message", "content", "text", NULL };
    const struct cohere *st = req->pstate;

    if (st == NULL || !st->started || st->ids.id == NULL ||
        !sl_tr_scan_is(ev->data, ev->data_len, type, "\"content-delta\"") ||
        (out->text = sl_tr_scan(ev->data, ev->data_len, text, &out->text_len)) == NULL ||
        out->text_len < 3 || out->text[0] != '"')
        return 0;   /* an empty text makes no chunk: the parser says so */
    out->id = st->ids.id;
    out->created = st->ids.created;
    out->reasoning = 0;
    return 1;
}

/* LiteLLM routes both prefixes to v2 chat (cohere/ for its chat models):
 * cohere/ is an alias of this entry in registry.c. */
const struct sl_provider sl_provider_cohere_chat = {
    .name = "cohere_chat",
    .abi = SL_PROVIDER_ABI,
    .flags = 0,
    .api_key_env = "COHERE_API_KEY",
    .default_api_base = COHERE_BASE,
    .endpoints = SL_EP_BIT(SL_EP_CHAT) | SL_EP_BIT(SL_EP_EMBEDDINGS) | SL_EP_BIT(SL_EP_RERANK),
    .build_request = cohere_build_request,
    .parse_response = cohere_parse_response,
    .parse_stream_event = cohere_parse_stream_event,
    .map_error = cohere_map_error,
    .fast_delta = cohere_fast_delta,
};

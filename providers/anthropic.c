/* anthropic/: OpenAI chat completions <-> Anthropic's Messages API.
 *
 * Request: system and developer messages become the top-level "system";
 * "tool" messages become tool_result blocks in a user turn; assistant
 * tool_calls become tool_use blocks; consecutive turns of one role are merged
 * (Anthropic wants user and assistant to alternate); images come from data
 * URLs (base64 source) or http(s) URLs (url source). max_tokens is required
 * by Anthropic: the client's, else model_info's, else 4096. response_format
 * (json_object / json_schema) becomes a forced tool named json_tool_call
 * whose input is handed back as the message content, as LiteLLM does.
 * reasoning_effort becomes extended thinking with LiteLLM's budgets.
 * Parameters that are not OpenAI's (top_k, thinking, ...) pass through.
 *
 * Reply: text blocks join into content, tool_use blocks into tool_calls,
 * thinking blocks into reasoning_content and thinking_blocks; usage counts
 * cached input in prompt_tokens (OpenAI's meaning) and in
 * prompt_tokens_details.cached_tokens.
 *
 * Stream: message_start opens the answer, content_block_* become deltas
 * (input_json_delta -> tool call argument fragments, thinking_delta ->
 * reasoning_content), message_delta carries finish_reason, message_stop ends
 * it with a usage chunk; "error" events are in-band upstream errors. */
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "jsonutil.h"
#include "request.h"
#include "status.h"
#include "translate.h"

#define ANTHROPIC_VERSION "2023-06-01"
#define DEFAULT_MAX_TOKENS 4096
#define JSON_TOOL "json_tool_call"

/* Per-request adapter state (req->pstate). */
struct anth {
    struct sl_tr_ids ids;
    int json_mode;          /* response_format mapped to the forced JSON tool */
    int started;            /* the first chunk (role) went out */
    /* The open content block while streaming: blocks come one at a time. */
    enum { B_NONE, B_TEXT, B_TOOL, B_JSON, B_THINKING } block;
    int tool_index;         /* OpenAI tool_calls index of the open tool block */
    int n_tools;            /* tool blocks seen */
    long input, cache_read, cache_write, output;
    const char *finish;     /* static */
};

static struct anth *state(struct sl_request *req)
{
    if (req->pstate == NULL)
        req->pstate = sl_arena_calloc(req->arena, 1, sizeof(struct anth));
    return req->pstate;
}

/* ---- request ---- */

static const char *const supported[] = {
    "max_tokens", "max_completion_tokens", "stop", "stream", "stream_options",
    "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls", "user",
    "response_format", "reasoning_effort", NULL
};

/* One OpenAI image_url part -> an Anthropic image block. */
static json_t *image_block(struct sl_request *req, const json_t *part, int *rc)
{
    const json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : sl_tr_str(iu, "url");
    const char *mime, *data;

    if (url == NULL) {
        *rc = sl_tr_bad(req, "image_url parts need a url.");
        return NULL;
    }
    if (sl_tr_data_url(req, url, &mime, &data))
        return json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "image", "source",
                         "type", "base64", "media_type", mime, "data", data);
    if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0)
        return json_pack("{s:s, s:{s:s, s:s}}", "type", "image", "source", "type", "url", "url", url);
    *rc = sl_tr_bad(req, "image_url must be an http(s) URL or a base64 data URL.");
    return NULL;
}

/* A "file" part with base64 file_data (a PDF) -> a document block. */
static json_t *file_block(struct sl_request *req, const json_t *part, int *rc)
{
    const char *fd = sl_tr_str(json_object_get(part, "file"), "file_data"), *mime, *data;

    if (fd != NULL && sl_tr_data_url(req, fd, &mime, &data))
        return json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "document", "source",
                         "type", "base64", "media_type", mime, "data", data);
    *rc = sl_tr_bad(req, "file parts need file_data as a base64 data URL for anthropic.");
    return NULL;
}

/* Appends the blocks of an OpenAI message content to blocks. Empty text is
 * left out: Anthropic rejects empty text blocks. */
static int add_content(struct sl_request *req, json_t *blocks, const json_t *content)
{
    size_t i;
    json_t *part, *b;
    int rc = SL_OK;

    if (content == NULL || json_is_null(content))
        return SL_OK;
    if (json_is_string(content)) {
        if (json_string_length(content) == 0)
            return SL_OK;
        return json_array_append_new(blocks, json_pack("{s:s, s:O}", "type", "text", "text", content))
               ? SL_ERR_NOMEM : SL_OK;
    }
    if (!json_is_array(content))
        return sl_tr_bad(req, "message content must be a string or an array of parts.");
    json_array_foreach(content, i, part) {
        const char *type = sl_tr_str(part, "type");

        b = NULL;
        if (type == NULL)
            return sl_tr_bad(req, "content parts need a type.");
        if (strcmp(type, "text") == 0) {
            const json_t *t = json_object_get(part, "text");

            if (!json_is_string(t))
                return sl_tr_bad(req, "text parts need a text string.");
            if (json_string_length(t) == 0)
                continue;
            b = json_pack("{s:s, s:O}", "type", "text", "text", t);
        } else if (strcmp(type, "image_url") == 0) {
            b = image_block(req, part, &rc);
        } else if (strcmp(type, "file") == 0) {
            b = file_block(req, part, &rc);
        } else {
            return sl_tr_bad(req, "anthropic does not support content parts of type %.60s.", type);
        }
        if (b == NULL)
            return rc != SL_OK ? rc : SL_ERR_NOMEM;
        /* Prompt caching marks travel with their part. */
        if (json_object_get(part, "cache_control") != NULL)
            json_object_set(b, "cache_control", json_object_get(part, "cache_control"));
        if (json_array_append_new(blocks, b) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

static int add_tool_uses(struct sl_request *req, json_t *blocks, const json_t *calls, size_t mi)
{
    size_t i;
    json_t *c;

    json_array_foreach(calls, i, c) {
        const json_t *fn = json_object_get(c, "function");
        const char *name = sl_tr_str(fn, "name"), *args = sl_tr_str(fn, "arguments"), *id = sl_tr_str(c, "id");
        json_t *input, *b;

        if (name == NULL || id == NULL)
            return sl_tr_bad(req, "messages[%zu].tool_calls[%zu] needs an id and function.name.", mi, i);
        if (args == NULL || *args == '\0') {
            input = json_object();
        } else {
            const char *why;

            input = sl_json_parse(args, strlen(args), &why);
            if (!json_is_object(input)) {
                json_decref(input);
                return sl_tr_bad(req, "messages[%zu].tool_calls[%zu].function.arguments is not a JSON object.",
                                 mi, i);
            }
        }
        b = json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id", id, "name", name, "input", input);
        if (b == NULL || json_array_append_new(blocks, b) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

static int add_tool_result(struct sl_request *req, json_t *blocks, const json_t *m, size_t mi)
{
    const char *id = sl_tr_str(m, "tool_call_id");
    const json_t *content = json_object_get(m, "content");
    json_t *b, *inner;
    int rc;

    if (id == NULL)
        return sl_tr_bad(req, "messages[%zu]: a tool message needs tool_call_id.", mi);
    if (json_is_string(content)) {
        b = json_pack("{s:s, s:s, s:O}", "type", "tool_result", "tool_use_id", id, "content", content);
    } else {
        if ((inner = json_array()) == NULL)
            return SL_ERR_NOMEM;
        if ((rc = add_content(req, inner, content)) != SL_OK) {
            json_decref(inner);
            return rc;
        }
        b = json_pack("{s:s, s:s, s:o}", "type", "tool_result", "tool_use_id", id, "content", inner);
    }
    return b != NULL && json_array_append_new(blocks, b) == 0 ? SL_OK : SL_ERR_NOMEM;
}

static int convert_messages(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *msgs = json_object_get(in, "messages");
    json_t *system = json_array(), *messages = json_array(), *m, *blocks;
    size_t i;
    int rc = SL_OK;

    if (system == NULL || messages == NULL || json_object_set_new(body, "messages", messages) != 0 ||
        json_object_set_new(body, "system", system) != 0)
        return SL_ERR_NOMEM;
    json_array_foreach(msgs, i, m) {
        const char *role = sl_tr_str(m, "role"), *turn_role = "user";
        const json_t *content = json_object_get(m, "content");

        if (role == NULL)
            return sl_tr_bad(req, "messages[%zu] needs a role.", i);
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if ((rc = add_content(req, system, content)) != SL_OK)
                return rc;
            continue;
        }
        if ((blocks = json_array()) == NULL)
            return SL_ERR_NOMEM;
        if (strcmp(role, "user") == 0) {
            rc = add_content(req, blocks, content);
        } else if (strcmp(role, "assistant") == 0) {
            const json_t *tb = json_object_get(m, "thinking_blocks");

            turn_role = "assistant";
            /* Thinking comes first and goes back unchanged (it is signed). */
            rc = json_is_array(tb) && json_array_extend(blocks, (json_t *)tb) != 0 ? SL_ERR_NOMEM : SL_OK;
            if (rc == SL_OK)
                rc = add_content(req, blocks, content);
            if (rc == SL_OK)
                rc = add_tool_uses(req, blocks, json_object_get(m, "tool_calls"), i);
        } else if (strcmp(role, "tool") == 0) {
            rc = add_tool_result(req, blocks, m, i);
        } else {
            rc = sl_tr_bad(req, "messages[%zu]: anthropic does not support the role %.40s.", i, role);
        }
        if (rc != SL_OK) {
            json_decref(blocks);
            return rc;
        }
        if ((rc = sl_tr_add_turn(messages, turn_role, "content", blocks)) != SL_OK)
            return rc;
    }
    if (json_array_size(messages) == 0)
        return sl_tr_bad(req, "messages: at least one user or assistant message is required.");
    if (json_array_size(system) == 0)
        json_object_del(body, "system");
    return SL_OK;
}

static int convert_tools(struct sl_request *req, const json_t *in, json_t *body, struct anth *st)
{
    const json_t *tools = json_object_get(in, "tools"), *tc = json_object_get(in, "tool_choice");
    const json_t *rf = json_object_get(in, "response_format");
    const char *rft = sl_tr_str(rf, "type");
    json_t *out = json_array(), *t, *choice = NULL;
    size_t i;

    if (out == NULL || json_object_set_new(body, "tools", out) != 0)
        return SL_ERR_NOMEM;
    json_array_foreach(tools, i, t) {
        const json_t *fn = json_object_get(t, "function"), *params = json_object_get(fn, "parameters");
        json_t *tool, *schema;

        if (!json_is_string(json_object_get(t, "type")) || strcmp(sl_tr_str(t, "type"), "function") != 0 ||
            sl_tr_str(fn, "name") == NULL)
            return sl_tr_bad(req, "tools[%zu]: anthropic takes tools of type function with a name.", i);
        schema = json_is_object(params) ? json_incref((json_t *)params)
                                        : json_pack("{s:s, s:{}}", "type", "object", "properties");

        tool = json_pack("{s:s, s:o}", "name", sl_tr_str(fn, "name"), "input_schema", schema);
        if (tool == NULL)
            return SL_ERR_NOMEM;
        if (sl_tr_str(fn, "description") != NULL)
            json_object_set(tool, "description", json_object_get(fn, "description"));
        if (json_object_get(t, "cache_control") != NULL)
            json_object_set(tool, "cache_control", json_object_get(t, "cache_control"));
        if (json_array_append_new(out, tool) != 0)
            return SL_ERR_NOMEM;
    }
    if (rft != NULL && (strcmp(rft, "json_object") == 0 || strcmp(rft, "json_schema") == 0)) {
        const json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        json_t *tool = json_is_object(schema)
            ? json_pack("{s:s, s:O}", "name", JSON_TOOL, "input_schema", schema)
            : json_pack("{s:s, s:{s:s}}", "name", JSON_TOOL, "input_schema", "type", "object");

        if (tool == NULL || json_array_append_new(out, tool) != 0)
            return SL_ERR_NOMEM;
        st->json_mode = 1;
        choice = json_pack("{s:s, s:s}", "type", "tool", "name", JSON_TOOL);
    } else if (rft != NULL && strcmp(rft, "text") != 0) {
        return sl_tr_bad(req, "response_format type %.40s is not supported by anthropic.", rft);
    } else if (json_is_string(tc)) {
        const char *s = json_string_value(tc);

        if (strcmp(s, "auto") == 0)
            choice = json_pack("{s:s}", "type", "auto");
        else if (strcmp(s, "required") == 0)
            choice = json_pack("{s:s}", "type", "any");
        else if (strcmp(s, "none") == 0)
            choice = json_array_size(out) ? json_pack("{s:s}", "type", "none") : NULL;
        else
            return sl_tr_bad(req, "tool_choice must be auto, required, none or a function.");
        if (choice == NULL && strcmp(s, "none") != 0)
            return SL_ERR_NOMEM;
    } else if (json_is_object(tc)) {
        const char *name = sl_tr_str(json_object_get(tc, "function"), "name");

        if (name == NULL)
            return sl_tr_bad(req, "tool_choice needs function.name.");
        if ((choice = json_pack("{s:s, s:s}", "type", "tool", "name", name)) == NULL)
            return SL_ERR_NOMEM;
    }
    if (json_is_false(json_object_get(in, "parallel_tool_calls")) && json_array_size(out) > 0) {
        if (choice == NULL && (choice = json_pack("{s:s}", "type", "auto")) == NULL)
            return SL_ERR_NOMEM;
        if (strcmp(sl_tr_str(choice, "type"), "none") != 0)
            json_object_set_new(choice, "disable_parallel_tool_use", json_true());
    }
    if (choice != NULL && json_object_set_new(body, "tool_choice", choice) != 0)
        return SL_ERR_NOMEM;
    if (json_array_size(out) == 0)
        json_object_del(body, "tools");
    return SL_OK;
}

/* reasoning_effort -> extended thinking, with LiteLLM's budgets. */
static long thinking_budget(struct sl_request *req, const json_t *in, int *rc)
{
    const char *e = sl_tr_str(in, "reasoning_effort");

    *rc = SL_OK;
    if (e == NULL || strcmp(e, "none") == 0)
        return 0;
    if (strcmp(e, "minimal") == 0 || strcmp(e, "low") == 0)
        return 1024;
    if (strcmp(e, "medium") == 0)
        return 2048;
    if (strcmp(e, "high") == 0)
        return 4096;
    *rc = sl_tr_bad(req, "reasoning_effort must be none, minimal, low, medium or high.");
    return 0;
}

static const char *messages_url(struct sl_request *req)
{
    const char *base = req->dep->api_base ? req->dep->api_base : "https://api.anthropic.com";
    size_t n = strlen(base);

    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n >= 12 && strncmp(base + n - 12, "/v1/messages", 12) == 0)
        return sl_arena_strndup(req->arena, base, n);
    if (n >= 3 && strncmp(base + n - 3, "/v1", 3) == 0)
        return sl_arena_printf(req->arena, "%.*s/messages", (int)n, base);
    return sl_arena_printf(req->arena, "%.*s/v1/messages", (int)n, base);
}

static int anthropic_build_request(struct sl_request *req, const json_t *in,
                                   struct sl_upstream_req *out)
{
    struct anth *st = state(req);
    json_t *body, *v, *stop;
    const char *key, *version;
    long max_tokens, budget;
    int rc, bad;

    if (st == NULL)
        return SL_ERR_NOMEM;
    if (req->endpoint != SL_EP_CHAT)
        return SL_ERR_UNSUPPORTED;
    if ((rc = sl_tr_check_params(req, in, supported)) != SL_OK)
        return rc;
    if ((body = json_object()) == NULL || sl_arena_defer(req->arena, sl_json_decref_cb, body) != SL_OK) {
        json_decref(body);
        return SL_ERR_NOMEM;
    }
    budget = thinking_budget(req, in, &rc);
    if (rc != SL_OK)
        return rc;
    max_tokens = sl_tr_max_tokens(in);
    if (max_tokens < 0) {
        max_tokens = sl_tr_default_max_tokens(req, DEFAULT_MAX_TOKENS);
        if (budget >= max_tokens)
            max_tokens = budget + DEFAULT_MAX_TOKENS;
    }
    if (json_object_set_new(body, "model", json_string(req->dep->upstream_model)) != 0 ||
        json_object_set_new(body, "max_tokens", json_integer(max_tokens)) != 0)
        return SL_ERR_NOMEM;
    if ((rc = convert_messages(req, in, body)) != SL_OK ||
        (rc = convert_tools(req, in, body, st)) != SL_OK)
        return rc;
    if ((stop = sl_tr_stop_list(in, &bad)) != NULL)
        json_object_set_new(body, "stop_sequences", stop);
    else if (bad)
        return sl_tr_bad(req, "stop must be a string or an array of strings.");
    if (json_is_number(v = json_object_get(in, "temperature")))
        json_object_set(body, "temperature", v);
    if (json_is_number(v = json_object_get(in, "top_p")))
        json_object_set(body, "top_p", v);
    if (json_is_string(v = json_object_get(in, "user")))
        json_object_set_new(body, "metadata", json_pack("{s:O}", "user_id", v));
    if (budget > 0)
        json_object_set_new(body, "thinking", json_pack("{s:s, s:I}", "type", "enabled",
                                                        "budget_tokens", (json_int_t)budget));
    if (req->stream)
        json_object_set_new(body, "stream", json_true());
    /* Anthropic's own parameters (top_k, thinking, service_tier, ...). */
    json_object_foreach((json_t *)in, key, v)
        if (!sl_tr_is_openai_param(key) && !sl_tr_is_gateway_field(key) &&
            strcmp(key, "model") != 0 && strcmp(key, "messages") != 0 &&
            json_object_get(body, key) == NULL)
            json_object_set(body, key, v);

    version = sl_tr_str(req->dep->litellm_params, "anthropic_version");
    out->url = messages_url(req);
    out->headers[out->n_headers++] = "Content-Type: application/json";
    out->headers[out->n_headers++] = sl_arena_printf(req->arena, "anthropic-version: %s",
                                                     version ? version : ANTHROPIC_VERSION);
    if (req->dep->api_key != NULL)
        out->headers[out->n_headers++] = sl_arena_printf(req->arena, "x-api-key: %s", req->dep->api_key);
    if (req->anthropic_beta != NULL)     /* an Anthropic client's beta flags, passed on */
        out->headers[out->n_headers++] = sl_arena_printf(req->arena, "anthropic-beta: %s", req->anthropic_beta);
    for (size_t i = 0; i < out->n_headers; i++)
        if (out->headers[i] == NULL)
            return SL_ERR_NOMEM;
    out->framing = SL_FRAMING_SSE;
    out->body = sl_json_dump(req->arena, body, &out->body_len);
    return out->url != NULL && out->body != NULL ? SL_OK : SL_ERR_NOMEM;
}

/* ---- reply ---- */

static const char *finish_reason(const char *stop_reason, int json_mode)
{
    if (stop_reason == NULL)
        return NULL;
    if (strcmp(stop_reason, "max_tokens") == 0 || strcmp(stop_reason, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp(stop_reason, "tool_use") == 0)
        return json_mode ? "stop" : "tool_calls";
    if (strcmp(stop_reason, "refusal") == 0)
        return "content_filter";
    return "stop";   /* end_turn, stop_sequence, pause_turn */
}

static long num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (long)json_integer_value(v) : 0;
}

static void read_usage(struct anth *st, const json_t *u)
{
    if (!json_is_object(u))
        return;
    if (json_object_get(u, "input_tokens") != NULL)
        st->input = num(u, "input_tokens");
    if (json_object_get(u, "cache_read_input_tokens") != NULL)
        st->cache_read = num(u, "cache_read_input_tokens");
    if (json_object_get(u, "cache_creation_input_tokens") != NULL)
        st->cache_write = num(u, "cache_creation_input_tokens");
    if (json_object_get(u, "output_tokens") != NULL)
        st->output = num(u, "output_tokens");
}

/* OpenAI usage with LiteLLM's two Anthropic extras. prompt_tokens counts
 * the cached input too, as OpenAI's does. */
static json_t *usage(const struct anth *st)
{
    json_t *u = sl_tr_usage(st->input + st->cache_read + st->cache_write, st->output, st->cache_read, 0);

    if (u != NULL) {
        json_object_set_new(u, "cache_creation_input_tokens", json_integer(st->cache_write));
        json_object_set_new(u, "cache_read_input_tokens", json_integer(st->cache_read));
    }
    return u;
}

static int anthropic_parse_response(struct sl_request *req, const char *text, size_t len,
                                    json_t **out)
{
    struct anth *st = state(req);
    const char *why;
    json_t *v = sl_json_parse(text, len, &why), *content, *b, *msg, *calls, *thinking;
    struct sl_buf joined = { 0 };
    size_t i;
    int rc = SL_ERR_NOMEM, any_text = 0;

    if (st == NULL) {
        json_decref(v);
        return SL_ERR_NOMEM;
    }
    content = json_object_get(v, "content");
    if (!json_is_object(v) || !json_is_array(content)) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    msg = json_pack("{s:s}", "role", "assistant");
    calls = json_array();
    thinking = json_array();
    if (msg == NULL || calls == NULL || thinking == NULL || sl_tr_ids_init(req, &st->ids, sl_tr_str(v, "id")) != SL_OK)
        goto out;
    sl_buf_init(&joined, SL_MAX_UPSTREAM_BODY);
    json_array_foreach(content, i, b) {
        const char *type = sl_tr_str(b, "type");

        if (type == NULL)
            continue;
        if (strcmp(type, "text") == 0 && sl_tr_str(b, "text") != NULL) {
            if (sl_buf_append(&joined, sl_tr_str(b, "text"), strlen(sl_tr_str(b, "text"))) != SL_OK)
                goto out;
            any_text = 1;
        } else if (strcmp(type, "tool_use") == 0 && sl_tr_str(b, "name") != NULL) {
            const json_t *input = json_object_get(b, "input");
            size_t n = 2;
            char *args = input ? sl_json_dump(req->arena, input, &n) : "{}";

            if (args == NULL)
                goto out;
            if (st->json_mode && strcmp(sl_tr_str(b, "name"), JSON_TOOL) == 0) {
                if (sl_buf_append(&joined, args, n) != SL_OK)
                    goto out;
                any_text = 1;
            } else if (json_array_append_new(calls, json_pack("{s:s?, s:s, s:{s:s, s:s}}",
                           "id", sl_tr_str(b, "id"), "type", "function", "function",
                           "name", sl_tr_str(b, "name"), "arguments", args)) != 0) {
                goto out;
            }
        } else if (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0) {
            if (json_array_append(thinking, b) != 0)
                goto out;
        }
    }
    if (json_object_set_new(msg, "content", any_text ? json_stringn(joined.data ? joined.data : "", joined.len)
                                                     : json_null()) != 0)
        goto out;
    if (json_array_size(thinking) > 0) {
        struct sl_buf r = { 0 };

        sl_buf_init(&r, SL_MAX_UPSTREAM_BODY);
        json_array_foreach(thinking, i, b)
            if (sl_tr_str(b, "thinking") != NULL)
                sl_buf_append(&r, sl_tr_str(b, "thinking"), strlen(sl_tr_str(b, "thinking")));
        json_object_set_new(msg, "reasoning_content", json_stringn(r.data ? r.data : "", r.len));
        sl_buf_free(&r);
        json_object_set(msg, "thinking_blocks", thinking);
    }
    if (json_array_size(calls) > 0)
        json_object_set(msg, "tool_calls", calls);
    read_usage(st, json_object_get(v, "usage"));
    *out = sl_tr_completion(req, &st->ids, msg, finish_reason(sl_tr_str(v, "stop_reason"), st->json_mode),
                            usage(st));
    msg = NULL;
    rc = *out != NULL ? SL_OK : SL_ERR_NOMEM;
out:
    sl_buf_free(&joined);
    json_decref(msg);
    json_decref(calls);
    json_decref(thinking);
    json_decref(v);
    return rc;
}

/* Anthropic's error object -> OpenAI's shape. */
static void map_error_obj(struct sl_request *req, long status, const json_t *err, struct sl_error *e)
{
    const char *type = sl_tr_str(err, "type"), *msg = sl_tr_str(err, "message");
    int st = (int)status;
    const char *code = NULL;

    if (type != NULL && strcmp(type, "overloaded_error") == 0)
        st = 503;
    else if (status == 529)
        st = 503;
    else if (type != NULL && strcmp(type, "rate_limit_error") == 0 && (status < 400 || status == 500))
        st = 429;
    if (st == 400 && msg != NULL && (strstr(msg, "prompt is too long") || strstr(msg, "context window") ||
                                     strstr(msg, "too many total text bytes")))
        code = "context_length_exceeded";
    sl_tr_set_error(req, e, st, NULL, msg, code);
}

static int anthropic_map_error(struct sl_request *req, long http_status, const json_t *body,
                               struct sl_error *out)
{
    map_error_obj(req, http_status, json_object_get(body, "error"), out);
    return SL_OK;
}

static int start_chunk(struct sl_request *req, struct anth *st, json_t **out)
{
    if (st->started)
        return SL_OK;
    st->started = 1;
    return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:s, s:s}", "role", "assistant",
                                                                 "content", ""), NULL));
}

static int block_start(struct sl_request *req, struct anth *st, const json_t *b, json_t **out)
{
    const char *type = sl_tr_str(b, "type");

    st->block = B_NONE;
    if (type == NULL)
        return SL_OK;
    if (strcmp(type, "text") == 0) {
        st->block = B_TEXT;
    } else if (strcmp(type, "thinking") == 0) {
        st->block = B_THINKING;
    } else if (strcmp(type, "tool_use") == 0 && sl_tr_str(b, "name") != NULL) {
        if (st->json_mode && strcmp(sl_tr_str(b, "name"), JSON_TOOL) == 0) {
            st->block = B_JSON;
            return SL_OK;
        }
        st->block = B_TOOL;
        st->tool_index = st->n_tools++;
        return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:[{s:i, s:s?, s:s, s:{s:s, s:s}}]}",
                              "tool_calls", "index", st->tool_index, "id", sl_tr_str(b, "id"), "type", "function",
                              "function", "name", sl_tr_str(b, "name"), "arguments", ""), NULL));
    }
    return SL_OK;
}

static int block_delta(struct sl_request *req, struct anth *st, const json_t *d, json_t **out)
{
    const char *type = sl_tr_str(d, "type");
    json_t *delta = NULL;

    if (type == NULL)
        return SL_OK;
    if (strcmp(type, "text_delta") == 0 && sl_tr_str(d, "text") != NULL) {
        delta = json_pack("{s:O}", "content", json_object_get(d, "text"));
    } else if (strcmp(type, "input_json_delta") == 0 && sl_tr_str(d, "partial_json") != NULL) {
        if (*sl_tr_str(d, "partial_json") == '\0')
            return SL_OK;
        if (st->block == B_JSON)
            delta = json_pack("{s:O}", "content", json_object_get(d, "partial_json"));
        else if (st->block == B_TOOL)
            delta = json_pack("{s:[{s:i, s:{s:O}}]}", "tool_calls", "index", st->tool_index,
                              "function", "arguments", json_object_get(d, "partial_json"));
        else
            return SL_OK;
    } else if (strcmp(type, "thinking_delta") == 0 && sl_tr_str(d, "thinking") != NULL) {
        delta = json_pack("{s:O}", "reasoning_content", json_object_get(d, "thinking"));
    } else {
        return SL_OK;    /* signature_delta, citations_delta, future types */
    }
    return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, delta, NULL));
}

static int anthropic_parse_stream_event(struct sl_request *req, const struct sl_sse_event *ev,
                                        json_t **out, int *done)
{
    struct anth *st = state(req);
    const char *why, *type;
    json_t *v;
    int rc = SL_OK;

    *out = NULL;
    if (st == NULL)
        return SL_ERR_NOMEM;
    if (ev->data_len == 0)
        return SL_OK;
    v = sl_json_parse(ev->data, ev->data_len, &why);
    if (!json_is_object(v) || (type = sl_tr_str(v, "type")) == NULL) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    if (st->ids.id == NULL && strcmp(type, "error") != 0 &&
        sl_tr_ids_init(req, &st->ids, sl_tr_str(json_object_get(v, "message"), "id")) != SL_OK) {
        json_decref(v);
        return SL_ERR_NOMEM;
    }
    if (strcmp(type, "message_start") == 0) {
        read_usage(st, json_object_get(json_object_get(v, "message"), "usage"));
        rc = start_chunk(req, st, out);
    } else if (strcmp(type, "content_block_start") == 0) {
        if ((rc = start_chunk(req, st, out)) == SL_OK)
            rc = block_start(req, st, json_object_get(v, "content_block"), out);
    } else if (strcmp(type, "content_block_delta") == 0) {
        if ((rc = start_chunk(req, st, out)) == SL_OK)
            rc = block_delta(req, st, json_object_get(v, "delta"), out);
    } else if (strcmp(type, "content_block_stop") == 0) {
        st->block = B_NONE;
    } else if (strcmp(type, "message_delta") == 0) {
        read_usage(st, json_object_get(v, "usage"));
        st->finish = finish_reason(sl_tr_str(json_object_get(v, "delta"), "stop_reason"), st->json_mode);
        if ((rc = start_chunk(req, st, out)) == SL_OK && st->finish != NULL)
            rc = sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_object(), st->finish));
    } else if (strcmp(type, "message_stop") == 0) {
        rc = sl_tr_emit(out, sl_tr_usage_chunk(req, &st->ids, usage(st)));
        *done = 1;
    } else if (strcmp(type, "error") == 0) {
        map_error_obj(req, 500, json_object_get(v, "error"), &req->upstream_err);
        rc = SL_ERR_UPSTREAM_STATUS;
    }
    /* ping and unknown event types carry nothing for the client. */
    json_decref(v);
    return rc;
}

/* Anthropic's own counter: the client's Anthropic body, cut to the fields
 * count_tokens takes, with the upstream model name. */
static int anthropic_build_count_tokens(struct sl_request *req, const json_t *in,
                                        struct sl_upstream_req *out)
{
    static const char *const fields[] = {
        "messages", "system", "tools", "tool_choice", "thinking", "cache_control",
        "context_management", "mcp_servers", NULL
    };
    const char *version = sl_tr_str(req->dep->litellm_params, "anthropic_version"), *url = messages_url(req);
    json_t *body = json_pack("{s:s}", "model", req->dep->upstream_model), *v;

    if (body == NULL || sl_arena_defer(req->arena, sl_json_decref_cb, body) != SL_OK) {
        json_decref(body);
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; fields[i] != NULL; i++)
        if ((v = json_object_get(in, fields[i])) != NULL && json_object_set(body, fields[i], v) != 0)
            return SL_ERR_NOMEM;
    out->url = url ? sl_arena_printf(req->arena, "%s/count_tokens", url) : NULL;
    out->headers[out->n_headers++] = "Content-Type: application/json";
    out->headers[out->n_headers++] = sl_arena_printf(req->arena, "anthropic-version: %s",
                                                     version ? version : ANTHROPIC_VERSION);
    if (req->dep->api_key != NULL)
        out->headers[out->n_headers++] = sl_arena_printf(req->arena, "x-api-key: %s", req->dep->api_key);
    for (size_t i = 0; i < out->n_headers; i++)
        if (out->headers[i] == NULL)
            return SL_ERR_NOMEM;
    out->body = sl_json_dump(req->arena, body, &out->body_len);
    return out->url != NULL && out->body != NULL ? SL_OK : SL_ERR_NOMEM;
}

/* The fast path for the event most of a stream is made of:
 *   {"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"..."}}
 * inside a text block, once the answer has begun. Anything else (or any
 * doubt) goes to the parser. */
static int anthropic_fast_delta(struct sl_request *req, const struct sl_sse_event *ev,
                                struct sl_fast_delta *out)
{
    static const char *const type[] = { "type", NULL };
    static const char *const delta_type[] = { "delta", "type", NULL };
    static const char *const text[] = { "delta", "text", NULL };
    const struct anth *st = req->pstate;

    if (st == NULL || !st->started || st->block != B_TEXT || st->ids.id == NULL ||
        !sl_tr_scan_is(ev->data, ev->data_len, type, "\"content_block_delta\"") ||
        !sl_tr_scan_is(ev->data, ev->data_len, delta_type, "\"text_delta\"") ||
        (out->text = sl_tr_scan(ev->data, ev->data_len, text, &out->text_len)) == NULL ||
        out->text[0] != '"')
        return 0;
    out->id = st->ids.id;
    out->created = st->ids.created;
    out->reasoning = 0;
    return 1;
}

const struct sl_provider sl_provider_anthropic = {
    .name = "anthropic",
    .abi = SL_PROVIDER_ABI,
    .flags = 0,
    .api_key_env = "ANTHROPIC_API_KEY",
    .default_api_base = "https://api.anthropic.com",
    .endpoints = SL_EP_BIT(SL_EP_CHAT),
    .build_request = anthropic_build_request,
    .parse_response = anthropic_parse_response,
    .parse_stream_event = anthropic_parse_stream_event,
    .map_error = anthropic_map_error,
    .fast_delta = anthropic_fast_delta,
    .build_count_tokens = anthropic_build_count_tokens,
};

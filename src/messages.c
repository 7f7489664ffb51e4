/* Anthropic's Messages API in front of any model (messages.h).
 *
 * In: system -> a system message; user turns: tool_result blocks become
 * "tool" messages (first, as OpenAI wants them right after the assistant's
 * calls), the rest a user message with text/image_url/file parts; assistant
 * turns: text -> content, tool_use -> tool_calls, thinking -> thinking_blocks
 * (replayed to Anthropic as they came, since they are signed). tools and
 * tool_choice map one to one; thinking goes through as is to anthropic/ and
 * becomes reasoning_effort elsewhere; Anthropic-only fields (top_k,
 * service_tier, ...) go only to anthropic/.
 *
 * Out: the OpenAI answer is rebuilt as Anthropic content blocks. Streams are
 * re-cut into Anthropic's event sequence: message_start, then one
 * content_block_start/delta.../stop per text, thinking or tool_use block,
 * then message_delta (stop_reason, usage) and message_stop at the end (OpenAI
 * sends usage after the finish_reason, so both wait for the end). */
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "jsonutil.h"
#include "messages.h"
#include "provider.h"
#include "request.h"
#include "respond.h"
#include "status.h"
#include "translate.h"

int sl_messages_validate(struct sl_request *req)
{
    const json_t *msgs = json_object_get(req->in, "messages");
    const json_t *mt = json_object_get(req->in, "max_tokens");
    size_t i;
    json_t *m;

    if (!json_is_array(msgs))
        return sl_tr_bad(req, "messages: Field required (an array of messages).");
    if (req->endpoint == SL_EP_COUNT_TOKENS)
        ;   /* count_tokens takes no max_tokens */
    else if (!json_is_integer(mt) || json_integer_value(mt) < 0)
        return sl_tr_bad(req, "max_tokens: Field required (a non-negative integer).");
    json_array_foreach(msgs, i, m) {
        const char *role = sl_tr_str(m, "role");
        const json_t *c = json_object_get(m, "content");

        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
            return sl_tr_bad(req, "messages.%zu.role: Input should be 'user' or 'assistant'.", i);
        if (!json_is_string(c) && !json_is_array(c))
            return sl_tr_bad(req, "messages.%zu.content: Input should be a string or a list of content blocks.", i);
    }
    return SL_OK;
}

/* ---- Anthropic request -> OpenAI request ---- */

static int is_anthropic(const struct sl_request *req)
{
    return strcmp(req->dep->provider->name, "anthropic") == 0;
}

/* An Anthropic image/document block -> an OpenAI content part. */
static json_t *media_part(struct sl_request *req, const json_t *b, const char *type, int *rc)
{
    const json_t *src = json_object_get(b, "source");
    const char *st = sl_tr_str(src, "type");

    *rc = SL_OK;
    if (st != NULL && strcmp(st, "base64") == 0 && sl_tr_str(src, "media_type") && sl_tr_str(src, "data")) {
        char *url = sl_arena_printf(req->arena, "data:%s;base64,%s", sl_tr_str(src, "media_type"), sl_tr_str(src, "data"));

        if (url == NULL)
            return NULL;
        if (strcmp(type, "image") == 0)
            return json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", url);
        return json_pack("{s:s, s:{s:s}}", "type", "file", "file", "file_data", url);
    }
    if (st != NULL && strcmp(st, "url") == 0 && sl_tr_str(src, "url") && strcmp(type, "image") == 0)
        return json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", sl_tr_str(src, "url"));
    *rc = sl_tr_bad(req, "%s blocks need a base64 source%s.", type, strcmp(type, "image") == 0 ? " or a url" : "");
    return NULL;
}

/* Content blocks -> OpenAI content parts; tool_result blocks are skipped
 * (the caller turns them into tool messages). */
static int parts_of(struct sl_request *req, const json_t *content, json_t *parts)
{
    size_t i;
    json_t *b, *p;
    int rc;

    if (json_is_string(content))
        return json_array_append_new(parts, json_pack("{s:s, s:O}", "type", "text", "text", content))
               ? SL_ERR_NOMEM : SL_OK;
    json_array_foreach(content, i, b) {
        const char *type = sl_tr_str(b, "type");

        if (type == NULL)
            return sl_tr_bad(req, "content blocks need a type.");
        if (strcmp(type, "tool_result") == 0 || strcmp(type, "thinking") == 0 ||
            strcmp(type, "redacted_thinking") == 0 || strcmp(type, "tool_use") == 0)
            continue;
        if (strcmp(type, "text") == 0) {
            if (!json_is_string(json_object_get(b, "text")))
                return sl_tr_bad(req, "text blocks need a text string.");
            p = json_pack("{s:s, s:O}", "type", "text", "text", json_object_get(b, "text"));
        } else if (strcmp(type, "image") == 0 || strcmp(type, "document") == 0) {
            if ((p = media_part(req, b, type, &rc)) == NULL)
                return rc != SL_OK ? rc : SL_ERR_NOMEM;
        } else {
            return sl_tr_bad(req, "content blocks of type %.60s are not supported by this gateway.", type);
        }
        if (p != NULL && json_object_get(b, "cache_control") != NULL)
            json_object_set(p, "cache_control", json_object_get(b, "cache_control"));
        if (p == NULL || json_array_append_new(parts, p) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* The text of a tool_result's content (a string or text blocks). */
static json_t *tool_result_content(struct sl_request *req, const json_t *b, int *rc)
{
    const json_t *c = json_object_get(b, "content");
    json_t *parts;

    *rc = SL_OK;
    if (c == NULL || json_is_null(c))
        return json_string("");
    if (json_is_string(c))
        return json_incref((json_t *)c);
    if ((parts = json_array()) == NULL)
        return NULL;
    if ((*rc = parts_of(req, c, parts)) != SL_OK) {
        json_decref(parts);
        return NULL;
    }
    return parts;
}

static int user_turn(struct sl_request *req, const json_t *content, json_t *out)
{
    json_t *parts = json_array(), *b, *c;
    size_t i;
    int rc;

    if (parts == NULL)
        return SL_ERR_NOMEM;
    json_array_foreach(json_is_array(content) ? content : NULL, i, b) {
        if (sl_tr_str(b, "type") == NULL || strcmp(sl_tr_str(b, "type"), "tool_result") != 0)
            continue;
        if (sl_tr_str(b, "tool_use_id") == NULL) {
            json_decref(parts);
            return sl_tr_bad(req, "tool_result blocks need a tool_use_id.");
        }
        if ((c = tool_result_content(req, b, &rc)) == NULL) {
            json_decref(parts);
            return rc != SL_OK ? rc : SL_ERR_NOMEM;
        }
        if (json_array_append_new(out, json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id",
                                                 sl_tr_str(b, "tool_use_id"), "content", c)) != 0) {
            json_decref(parts);
            return SL_ERR_NOMEM;
        }
    }
    if ((rc = parts_of(req, content, parts)) != SL_OK) {
        json_decref(parts);
        return rc;
    }
    if (json_array_size(parts) == 0) {
        json_decref(parts);
        return SL_OK;
    }
    return json_array_append_new(out, json_pack("{s:s, s:o}", "role", "user", "content", parts))
           ? SL_ERR_NOMEM : SL_OK;
}

static int assistant_turn(struct sl_request *req, const json_t *content, json_t *out)
{
    json_t *m, *calls = json_array(), *thinking = json_array(), *b;
    struct sl_buf text;
    size_t i;
    int rc = SL_ERR_NOMEM, any_text = 0;

    sl_buf_init(&text, 64u << 20);
    if (calls == NULL || thinking == NULL)
        goto out;
    if (json_is_string(content)) {
        any_text = 1;
        if (sl_buf_puts(&text, json_string_value(content)) != SL_OK)
            goto out;
    }
    json_array_foreach(json_is_array(content) ? content : NULL, i, b) {
        const char *type = sl_tr_str(b, "type");

        if (type == NULL)
            continue;
        if (strcmp(type, "text") == 0 && sl_tr_str(b, "text") != NULL) {
            any_text = 1;
            if (sl_buf_puts(&text, sl_tr_str(b, "text")) != SL_OK)
                goto out;
        } else if (strcmp(type, "tool_use") == 0) {
            char *args;
            size_t n;

            if (sl_tr_str(b, "id") == NULL || sl_tr_str(b, "name") == NULL) {
                rc = sl_tr_bad(req, "tool_use blocks need an id and a name.");
                goto out;
            }
            args = json_object_get(b, "input") ? sl_json_dump(req->arena, json_object_get(b, "input"), &n)
                                                : "{}";
            if (args == NULL || json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:s, s:s}}",
                    "id", sl_tr_str(b, "id"), "type", "function", "function", "name", sl_tr_str(b, "name"),
                    "arguments", args)) != 0)
                goto out;
        } else if (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0) {
            if (json_array_append(thinking, b) != 0)
                goto out;
        }
    }
    m = json_pack("{s:s, s:o}", "role", "assistant", "content",
                  any_text ? json_stringn(text.data ? text.data : "", text.len) : json_null());
    if (m == NULL)
        goto out;
    if (json_array_size(calls) > 0)
        json_object_set(m, "tool_calls", calls);
    if (json_array_size(thinking) > 0 && is_anthropic(req))
        json_object_set(m, "thinking_blocks", thinking);
    rc = json_array_append_new(out, m) == 0 ? SL_OK : SL_ERR_NOMEM;
out:
    sl_buf_free(&text);
    json_decref(calls);
    json_decref(thinking);
    return rc;
}

static int convert_tools(struct sl_request *req, const json_t *in, json_t *out)
{
    const json_t *tools = json_object_get(in, "tools"), *tc = json_object_get(in, "tool_choice");
    json_t *list, *t;
    size_t i;

    if (json_is_array(tools)) {
        if ((list = json_array()) == NULL || json_object_set_new(out, "tools", list) != 0)
            return SL_ERR_NOMEM;
        json_array_foreach(tools, i, t) {
            const char *type = sl_tr_str(t, "type");
            const json_t *schema = json_object_get(t, "input_schema");
            json_t *fn;

            if (type != NULL && strcmp(type, "custom") != 0)
                return sl_tr_bad(req, "tools.%zu: server tools (type %.60s) are not supported by this gateway.", i, type);
            if (sl_tr_str(t, "name") == NULL)
                return sl_tr_bad(req, "tools.%zu.name: Field required.", i);
            if (!json_is_object(schema))
                return sl_tr_bad(req, "tools.%zu.input_schema: Field required.", i);
            if ((fn = json_pack("{s:s, s:O}", "name", sl_tr_str(t, "name"), "parameters", schema)) == NULL)
                return SL_ERR_NOMEM;
            if (sl_tr_str(t, "description") != NULL)
                json_object_set(fn, "description", json_object_get(t, "description"));
            if (json_array_append_new(list, json_pack("{s:s, s:o}", "type", "function", "function", fn)) != 0)
                return SL_ERR_NOMEM;
        }
    }
    if (json_is_object(tc)) {
        const char *type = sl_tr_str(tc, "type");
        json_t *choice;

        if (type == NULL)
            return sl_tr_bad(req, "tool_choice.type: Field required.");
        if (strcmp(type, "auto") == 0)
            choice = json_string("auto");
        else if (strcmp(type, "any") == 0)
            choice = json_string("required");
        else if (strcmp(type, "none") == 0)
            choice = json_string("none");
        else if (strcmp(type, "tool") == 0 && sl_tr_str(tc, "name") != NULL)
            choice = json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", sl_tr_str(tc, "name"));
        else
            return sl_tr_bad(req, "tool_choice: type must be auto, any, tool (with a name) or none.");
        if (choice == NULL || json_object_set_new(out, "tool_choice", choice) != 0)
            return SL_ERR_NOMEM;
        if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")) &&
            json_object_set_new(out, "parallel_tool_calls", json_false()) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* Fields only Anthropic knows: passed on to anthropic/ alone. */
static const char *const anthropic_only[] = {
    "top_k", "thinking", "service_tier", "container", "mcp_servers", "context_management",
    "output_config", NULL
};

/* A beta flag list as a header value may carry it: printable ASCII only. */
static int plain_header_value(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || (unsigned char)*v > 0x7e)
            return 0;
    return 1;
}

static int convert_rest(struct sl_request *req, const json_t *in, json_t *out)
{
    json_t *v, *thinking = json_object_get(in, "thinking");
    const char *user;
    int fail = 0;

    fail |= json_object_set(out, "model", json_object_get(in, "model"));
    fail |= json_object_set(out, "max_tokens", json_object_get(in, "max_tokens"));
    if (json_is_array(v = json_object_get(in, "stop_sequences")) && json_array_size(v) > 0)
        fail |= json_object_set(out, "stop", v);
    if (json_is_number(v = json_object_get(in, "temperature")))
        fail |= json_object_set(out, "temperature", v);
    if (json_is_number(v = json_object_get(in, "top_p")))
        fail |= json_object_set(out, "top_p", v);
    if ((user = sl_tr_str(json_object_get(in, "metadata"), "user_id")) != NULL)
        fail |= json_object_set_new(out, "user", json_string(user));
    if (req->stream) {
        fail |= json_object_set_new(out, "stream", json_true());
        fail |= json_object_set_new(out, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    if (is_anthropic(req)) {
        const char *beta = req->conn.ops ? req->conn.ops->param(req->conn.ctx, "HTTP_ANTHROPIC_BETA") : NULL;

        for (size_t i = 0; anthropic_only[i] != NULL; i++)
            if ((v = json_object_get(in, anthropic_only[i])) != NULL)
                fail |= json_object_set(out, anthropic_only[i], v);
        /* Beta fields (context_management, ...) need their flags upstream. */
        if (beta != NULL && *beta != '\0' && plain_header_value(beta))
            req->anthropic_beta = beta;
    } else {
        /* Anthropic's structured output is OpenAI's json_schema. */
        const json_t *fmt = json_object_get(json_object_get(in, "output_config"), "format");

        if (sl_tr_str(fmt, "type") != NULL && strcmp(sl_tr_str(fmt, "type"), "json_schema") == 0 &&
            json_is_object(json_object_get(fmt, "schema")))
            fail |= json_object_set_new(out, "response_format",
                                        json_pack("{s:s, s:{s:s, s:O}}", "type", "json_schema", "json_schema",
                                                  "name", "output", "schema", json_object_get(fmt, "schema")));
    }
    if (!is_anthropic(req) && sl_tr_str(thinking, "type") != NULL && strcmp(sl_tr_str(thinking, "type"), "disabled") != 0) {
        /* Elsewhere a thinking budget is a reasoning effort. */
        json_int_t budget = json_integer_value(json_object_get(thinking, "budget_tokens"));

        fail |= json_object_set_new(out, "reasoning_effort",
                                    json_string(budget == 0 ? "medium" : budget <= 1024 ? "low"
                                                : budget <= 4096 ? "medium" : "high"));
    }
    return fail ? SL_ERR_NOMEM : SL_OK;
}

int sl_messages_to_openai(struct sl_request *req)
{
    const json_t *in = req->in, *system = json_object_get(in, "system"), *m;
    json_t *out = json_object(), *messages = json_array(), *parts;
    size_t i;
    int rc;

    if (out == NULL || sl_arena_defer(req->arena, sl_json_decref_cb, out) != SL_OK) {
        json_decref(out);
        json_decref(messages);
        return SL_ERR_NOMEM;
    }
    if (messages == NULL || json_object_set_new(out, "messages", messages) != 0)
        return SL_ERR_NOMEM;
    if (json_is_string(system) && json_string_length(system) > 0) {
        if (json_array_append_new(messages, json_pack("{s:s, s:O}", "role", "system", "content", system)) != 0)
            return SL_ERR_NOMEM;
    } else if (json_is_array(system) && json_array_size(system) > 0) {
        if ((parts = json_array()) == NULL)
            return SL_ERR_NOMEM;
        if ((rc = parts_of(req, system, parts)) != SL_OK) {
            json_decref(parts);
            return rc;
        }
        if (json_array_append_new(messages, json_pack("{s:s, s:o}", "role", "system", "content", parts)) != 0)
            return SL_ERR_NOMEM;
    }
    json_array_foreach(json_object_get(in, "messages"), i, m) {
        const json_t *content = json_object_get(m, "content");

        rc = strcmp(sl_tr_str(m, "role"), "user") == 0 ? user_turn(req, content, messages)
                                                 : assistant_turn(req, content, messages);
        if (rc != SL_OK)
            return rc;
    }
    if (json_array_size(messages) == 0)
        return sl_tr_bad(req, "messages: at least one message is required.");
    if ((rc = convert_tools(req, in, out)) != SL_OK || (rc = convert_rest(req, in, out)) != SL_OK)
        return rc;
    req->in = out;          /* the Anthropic body stays alive in its own defer */
    req->body = NULL;       /* adapters must not splice the Anthropic text */
    req->body_len = 0;
    req->include_usage = 1;
    return SL_OK;
}

/* ---- count_tokens ---- */

/* About four characters a token, plus a little per message, as tokenizers
 * average on English text; only an estimate, as documented. */
int sl_messages_count_tokens(struct sl_request *req)
{
    const char *keys[] = { "system", "messages", "tools" };
    size_t chars = 0, n;
    long tokens;
    json_t *out;
    int rc;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const json_t *v = json_object_get(req->in, keys[i]);

        if (v != NULL && sl_json_dump(req->arena, v, &n) != NULL)
            chars += n;
    }
    tokens = (long)(chars / 4) + 3 * (long)json_array_size(json_object_get(req->in, "messages")) + 1;
    if ((out = json_pack("{s:I}", "input_tokens", (json_int_t)tokens)) == NULL)
        return SL_ERR_NOMEM;
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

/* ---- OpenAI answer -> Anthropic answer ---- */

static const char *stop_reason(const char *finish)
{
    if (finish == NULL || strcmp(finish, "stop") == 0)
        return "end_turn";
    if (strcmp(finish, "length") == 0)
        return "max_tokens";
    if (strcmp(finish, "tool_calls") == 0 || strcmp(finish, "function_call") == 0)
        return "tool_use";
    if (strcmp(finish, "content_filter") == 0)
        return "refusal";
    return "end_turn";
}

static json_t *usage_json(const struct sl_request *req)
{
    long cached = req->usage.cached_tokens, input = req->usage.prompt_tokens - cached;

    return json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", (json_int_t)(input > 0 ? input : 0),
                     "output_tokens", (json_int_t)req->usage.completion_tokens,
                     "cache_read_input_tokens", (json_int_t)cached, "cache_creation_input_tokens", (json_int_t)0);
}

static const char *message_id(struct sl_request *req)
{
    return sl_arena_printf(req->arena, "msg_%s", req->id);
}

/* A tool call's arguments as the input object ({} if they are not one). */
static json_t *tool_input(const char *args)
{
    const char *why;
    json_t *v = args ? sl_json_parse(args, strlen(args), &why) : NULL;

    if (!json_is_object(v)) {
        json_decref(v);
        return json_object();
    }
    return v;
}

int sl_messages_send_completion(struct sl_request *req, const json_t *completion)
{
    const json_t *choice = json_array_get(json_object_get(completion, "choices"), 0);
    const json_t *msg = json_object_get(choice, "message"), *tb = json_object_get(msg, "thinking_blocks"), *c;
    json_t *content = json_array(), *out;
    const char *text = sl_tr_str(msg, "content"), *reasoning = sl_tr_str(msg, "reasoning_content");
    size_t i;
    int rc;

    if (content == NULL)
        return SL_ERR_NOMEM;
    if (json_is_array(tb) && json_array_size(tb) > 0)
        json_array_extend(content, (json_t *)tb);
    else if (reasoning != NULL && *reasoning != '\0')
        json_array_append_new(content, json_pack("{s:s, s:s, s:s}", "type", "thinking", "thinking", reasoning,
                                                 "signature", ""));
    if (text != NULL && *text != '\0')
        json_array_append_new(content, json_pack("{s:s, s:s}", "type", "text", "text", text));
    json_array_foreach(json_object_get(msg, "tool_calls"), i, c) {
        const json_t *fn = json_object_get(c, "function");

        json_array_append_new(content, json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use",
            "id", sl_tr_str(c, "id") ? sl_tr_str(c, "id") : sl_arena_printf(req->arena, "toolu_%s_%zu", req->id, i),
            "name", sl_tr_str(fn, "name") ? sl_tr_str(fn, "name") : "", "input", tool_input(sl_tr_str(fn, "arguments"))));
    }
    out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:n, s:o}", "id", message_id(req), "type", "message",
                    "role", "assistant", "model", req->model, "content", content,
                    "stop_reason", stop_reason(sl_tr_str(choice, "finish_reason")), "stop_sequence",
                    "usage", usage_json(req));
    if (out == NULL)
        return SL_ERR_NOMEM;
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

/* The stream's state (req->surface_state). */
struct msg_stream {
    int started;            /* message_start went out */
    int open;               /* a content block is open */
    enum { K_TEXT, K_THINKING, K_TOOL } kind;
    int index;              /* the open block's index */
    int tool;               /* OpenAI tool_calls index of the open tool block */
    const char *finish;     /* the last finish_reason seen (arena) */
};

static int event(struct sl_request *req, const char *name, json_t *data)
{
    size_t len;
    char *text;

    if (data == NULL)
        return SL_ERR_NOMEM;
    text = sl_json_dump(req->arena, data, &len);
    json_decref(data);
    return text ? sl_respond_sse_event(req, name, text, len) : SL_ERR_NOMEM;
}

static struct msg_stream *stream_state(struct sl_request *req)
{
    struct msg_stream *s = req->surface_state;
    int rc;

    if (s == NULL && (s = req->surface_state = sl_arena_calloc(req->arena, 1, sizeof(*s))) == NULL)
        return NULL;
    if (!s->started) {
        s->started = 1;
        s->index = -1;
        rc = event(req, "message_start", json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:{s:i, s:i}}}",
            "type", "message_start", "message", "id", message_id(req), "type", "message", "role", "assistant",
            "model", req->model, "content", "stop_reason", "stop_sequence", "usage",
            "input_tokens", 0, "output_tokens", 0));
        if (rc != SL_OK)
            return NULL;
    }
    return s;
}

static int close_block(struct sl_request *req, struct msg_stream *s)
{
    if (!s->open)
        return SL_OK;
    s->open = 0;
    return event(req, "content_block_stop", json_pack("{s:s, s:i}", "type", "content_block_stop", "index", s->index));
}

static int open_block(struct sl_request *req, struct msg_stream *s, int kind, json_t *block)
{
    int rc;

    if ((rc = close_block(req, s)) != SL_OK) {
        json_decref(block);
        return rc;
    }
    s->open = 1;
    s->kind = kind;
    s->index++;
    return event(req, "content_block_start", json_pack("{s:s, s:i, s:o}", "type", "content_block_start",
                                                        "index", s->index, "content_block", block));
}

static int delta(struct sl_request *req, struct msg_stream *s, json_t *d)
{
    return event(req, "content_block_delta", json_pack("{s:s, s:i, s:o}", "type", "content_block_delta",
                                                        "index", s->index, "delta", d));
}

static int tool_delta(struct sl_request *req, struct msg_stream *s, const json_t *tc)
{
    const json_t *fn = json_object_get(tc, "function");
    const char *args = sl_tr_str(fn, "arguments");
    int idx = (int)json_integer_value(json_object_get(tc, "index")), rc;

    if (sl_tr_str(tc, "id") != NULL || sl_tr_str(fn, "name") != NULL) {
        rc = open_block(req, s, K_TOOL, json_pack("{s:s, s:s, s:s, s:{}}", "type", "tool_use",
            "id", sl_tr_str(tc, "id") ? sl_tr_str(tc, "id") : sl_arena_printf(req->arena, "toolu_%s_%d", req->id, idx),
            "name", sl_tr_str(fn, "name") ? sl_tr_str(fn, "name") : "", "input"));
        if (rc != SL_OK)
            return rc;
        s->tool = idx;
    } else if (!s->open || s->kind != K_TOOL || s->tool != idx) {
        return SL_OK;    /* a fragment of no open call: nothing to attach it to */
    }
    if (args == NULL || *args == '\0')
        return SL_OK;
    return delta(req, s, json_pack("{s:s, s:s}", "type", "input_json_delta", "partial_json", args));
}

int sl_messages_send_chunk(struct sl_request *req, const json_t *chunk)
{
    const json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    const json_t *d = json_object_get(choice, "delta"), *tc;
    const char *text = sl_tr_str(d, "content"), *reasoning = sl_tr_str(d, "reasoning_content");
    struct msg_stream *s = stream_state(req);
    size_t i;
    int rc = SL_OK;

    if (s == NULL)
        return SL_ERR_NOMEM;
    if (choice == NULL || json_integer_value(json_object_get(choice, "index")) != 0)
        return SL_OK;      /* usage-only chunks, and choices past the first */
    if (reasoning != NULL && *reasoning != '\0') {
        if (!s->open || s->kind != K_THINKING)
            rc = open_block(req, s, K_THINKING, json_pack("{s:s, s:s, s:s}", "type", "thinking",
                                                           "thinking", "", "signature", ""));
        if (rc == SL_OK)
            rc = delta(req, s, json_pack("{s:s, s:s}", "type", "thinking_delta", "thinking", reasoning));
    }
    if (rc == SL_OK && text != NULL && *text != '\0') {
        if (!s->open || s->kind != K_TEXT)
            rc = open_block(req, s, K_TEXT, json_pack("{s:s, s:s}", "type", "text", "text", ""));
        if (rc == SL_OK)
            rc = delta(req, s, json_pack("{s:s, s:s}", "type", "text_delta", "text", text));
    }
    json_array_foreach(json_object_get(d, "tool_calls"), i, tc)
        if (rc == SL_OK)
            rc = tool_delta(req, s, tc);
    if (rc == SL_OK && sl_tr_str(choice, "finish_reason") != NULL)
        s->finish = sl_arena_strdup(req->arena, sl_tr_str(choice, "finish_reason"));
    return rc;
}

int sl_messages_finish(struct sl_request *req)
{
    struct msg_stream *s = stream_state(req);
    int rc;

    if (s == NULL)
        return SL_ERR_NOMEM;
    if ((rc = close_block(req, s)) != SL_OK)
        return rc;
    rc = event(req, "message_delta", json_pack("{s:s, s:{s:s, s:n}, s:o}", "type", "message_delta",
                                               "delta", "stop_reason", stop_reason(s->finish), "stop_sequence",
                                               "usage", usage_json(req)));
    if (rc == SL_OK)
        rc = event(req, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    return rc == SL_OK ? sl_respond_flush(req) : rc;
}

const char *sl_messages_error_type(int status, const char *openai_type)
{
    if (openai_type != NULL && strcmp(openai_type, "timeout") == 0)
        return "timeout_error";     /* an upstream time-out is 408, as LiteLLM answers */
    switch (status) {
    case 400: case 405: case 422: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: case 529: return "overloaded_error";
    case 504: return "timeout_error";
    default:
        if (status < 500 && openai_type != NULL && strcmp(openai_type, "invalid_request_error") == 0)
            return openai_type;
        return status < 500 ? "invalid_request_error" : "api_error";
    }
}

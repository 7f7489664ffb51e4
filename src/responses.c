/* OpenAI's Responses API in front of any model (responses.h).
 *
 * In (for deployments without it): instructions -> a system message; input
 * a string -> one user message; input items: messages (input_text,
 * output_text, input_image, input_file parts; "developer" is "system"),
 * function_call -> the assistant's tool_calls (consecutive calls join one
 * assistant message), function_call_output -> a tool message, reasoning
 * items are dropped (their encrypted content means nothing elsewhere).
 * Function tools, tool_choice, text.format (json_schema, json_object),
 * reasoning.effort, max_output_tokens, temperature, top_p, user and
 * parallel_tool_calls map to their chat names; built-in tools (web search,
 * file search, computer use, ...) exist only at OpenAI and are left out
 * (a tool_choice that names one is refused).
 *
 * Out: the chat answer becomes output items: a reasoning item (its text as
 * a summary), a message with one output_text part, a function_call per tool
 * call. Streams are re-cut into the Responses events: response.created and
 * response.in_progress, then per item output_item.added, its parts and
 * deltas, their .done events and output_item.done, and at the end
 * response.completed (or response.incomplete when the answer was cut) with
 * the whole response and its usage. Every event carries its
 * sequence_number. Text deltas, the most frequent events, are written from
 * a template; the others go through Jansson.
 *
 * State (previous_response_id, GET /v1/responses/{id}) needs a store this
 * gateway does not keep: such requests are refused with a 400 that says
 * so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "guard.h"
#include "jscan.h"
#include "jsonutil.h"
#include "provider.h"
#include "request.h"
#include "respond.h"
#include "responses.h"
#include "respstore.h"
#include "status.h"
#include "translate.h"

enum { IT_REASONING, IT_MESSAGE, IT_CALL };

struct item {
    int kind;
    char id[64];
    int tool;                /* chat tool_calls index (IT_CALL) */
    const char *call_id;     /* IT_CALL (arena) */
    const char *name;        /* IT_CALL (arena) */
    struct sl_buf text;      /* text, reasoning summary or arguments */
    char *delta_head;        /* its delta events up to "delta": (arena), made once */
    size_t delta_head_len;
};

#define MAX_ITEMS 128        /* output items of one answer */

struct resp_state {
    json_t *in;              /* the client's body (kept alive by its defer) */
    char *body;              /* its text, for a native pass-through */
    size_t body_len;
    json_t *chat;            /* the chat completions form, once made */
    json_t *prev;            /* the stored conversation previous_response_id names, or NULL */
    int prev_looked;         /* the store was asked for it */
    int native;              /* the current attempt passes the API through */
    long long created_at;
    char id[48];             /* "resp_..." */
    /* the translated stream */
    int started;
    long seq;
    struct item *items;
    size_t n_items;
    int open;                /* index of the open item, or -1 */
    const char *finish;      /* the last finish_reason (arena) */
    long reasoning_tokens;
    struct sl_buf out;       /* one event's text */
};

static void state_free(void *p)
{
    struct resp_state *st = p;

    for (size_t i = 0; i < st->n_items; i++)
        sl_buf_free(&st->items[i].text);
    sl_buf_free(&st->out);
}

static struct resp_state *state(struct sl_request *req)
{
    return req->surface_state;
}

static int is_str(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* ---- validation ---- */

static int check_item(struct sl_request *req, size_t i, const json_t *it)
{
    const char *type = sl_tr_str(it, "type");
    const json_t *content = json_object_get(it, "content");

    if (!json_is_object(it))
        return sl_tr_bad(req, "input.%zu: each item must be an object.", i);
    if (type == NULL || strcmp(type, "message") == 0) {
        const char *role = sl_tr_str(it, "role");

        if (role == NULL || (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system") &&
                             strcmp(role, "developer")))
            return sl_tr_bad(req, "input.%zu.role: must be 'user', 'assistant', 'system' or 'developer'.", i);
        if (!json_is_string(content) && !json_is_array(content))
            return sl_tr_bad(req, "input.%zu.content: must be a string or a list of content parts.", i);
        return SL_OK;
    }
    if (strcmp(type, "function_call") == 0) {
        if (sl_tr_str(it, "call_id") == NULL || sl_tr_str(it, "name") == NULL ||
            !json_is_string(json_object_get(it, "arguments")))
            return sl_tr_bad(req, "input.%zu: a function_call needs call_id, name and arguments strings.", i);
        return SL_OK;
    }
    if (strcmp(type, "function_call_output") == 0) {
        const json_t *o = json_object_get(it, "output");

        if (sl_tr_str(it, "call_id") == NULL || (!json_is_string(o) && !json_is_array(o)))
            return sl_tr_bad(req, "input.%zu: a function_call_output needs a call_id and an output.", i);
        return SL_OK;
    }
    if (strcmp(type, "reasoning") == 0)
        return SL_OK;
    if (strcmp(type, "item_reference") == 0)
        return sl_tr_bad(req, "input.%zu: item_reference items are not supported by this gateway; send the "
                         "items themselves (or previous_response_id, with the response store on).", i);
    req->err_msg = sl_arena_printf(req->arena, "input.%zu: items of type %.60s are not supported by this gateway.",
                                   i, type);
    return SL_ERR_BAD_REQUEST;
}

int sl_responses_validate(struct sl_request *req)
{
    const json_t *in = req->in, *input = json_object_get(in, "input"), *v, *t;
    struct resp_state *st;
    size_t i, n;
    int rc;

    v = json_object_get(in, "previous_response_id");
    if (v != NULL && !json_is_null(v) && (!json_is_string(v) || json_string_length(v) == 0 ||
                                          json_string_length(v) > 64))
        return sl_tr_bad(req, "previous_response_id must be a response id.");
    if (json_is_string(json_object_get(in, "conversation")) || json_is_object(json_object_get(in, "conversation")))
        return sl_tr_bad(req, "conversation needs stored conversations, and this gateway keeps none.");
    if (json_is_true(json_object_get(in, "background")))
        return sl_tr_bad(req, "background responses are not supported by this gateway.");
    if (input == NULL || json_is_null(input))
        return sl_tr_bad(req, "input is a required field.");
    if (!json_is_string(input) && !json_is_array(input))
        return sl_tr_bad(req, "input must be a string or an array of input items.");
    json_array_foreach(json_is_array(input) ? input : NULL, i, t)
        if ((rc = check_item(req, i, t)) != SL_OK)
            return rc;
    v = json_object_get(in, "instructions");
    if (v != NULL && !json_is_null(v) && !json_is_string(v))
        return sl_tr_bad(req, "instructions must be a string.");
    v = json_object_get(in, "tools");
    if (v != NULL && !json_is_null(v) && !json_is_array(v))
        return sl_tr_bad(req, "tools must be an array.");
    json_array_foreach(json_is_array(v) ? v : NULL, i, t)
        if (sl_tr_str(t, "type") == NULL)
            return sl_tr_bad(req, "tools.%zu.type: Field required.", i);
    v = json_object_get(in, "max_output_tokens");
    if (v != NULL && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 1))
        return sl_tr_bad(req, "max_output_tokens must be a positive integer.");
    if ((st = sl_arena_calloc(req->arena, 1, sizeof(*st))) == NULL)
        return SL_ERR_NOMEM;
    st->in = req->in;
    st->body = req->body;
    st->body_len = req->body_len;
    st->open = -1;
    st->created_at = (long long)time(NULL);
    sl_buf_init(&st->out, SL_MAX_STREAM_EVENT);
    if (sl_arena_defer(req->arena, state_free, st) != SL_OK)
        return SL_ERR_NOMEM;
    memcpy(st->id, "resp_", 5);
    n = 5;
    for (const char *p = req->id; *p != '\0' && n < sizeof(st->id) - 1; p++)
        if (*p != '-')
            st->id[n++] = *p;
    st->id[n] = '\0';
    req->surface_state = st;
    return SL_OK;
}

/* ---- Responses request -> chat request ---- */

/* Content parts -> chat content parts. */
static int parts_of(struct sl_request *req, const json_t *content, json_t *parts)
{
    size_t i;
    json_t *p, *b;

    if (json_is_string(content))
        return json_array_append_new(parts, json_pack("{s:s, s:O}", "type", "text", "text", content))
               ? SL_ERR_NOMEM : SL_OK;
    json_array_foreach(content, i, b) {
        const char *type = sl_tr_str(b, "type");

        if (type == NULL)
            return sl_tr_bad(req, "content parts need a type (part %zu).", i);
        if (strcmp(type, "input_text") == 0 || strcmp(type, "output_text") == 0 || strcmp(type, "text") == 0 ||
            strcmp(type, "refusal") == 0) {
            const json_t *text = json_object_get(b, strcmp(type, "refusal") == 0 ? "refusal" : "text");

            if (!json_is_string(text))
                return sl_tr_bad(req, "content part %zu: a text part needs a text string.", i);
            p = json_pack("{s:s, s:O}", "type", "text", "text", text);
        } else if (strcmp(type, "input_image") == 0) {
            const char *url = sl_tr_str(b, "image_url");

            if (url == NULL)
                return sl_tr_bad(req, "content part %zu: input_image needs an image_url (file ids need "
                                 "OpenAI's file store).", i);
            p = json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", url);
            if (p != NULL && sl_tr_str(b, "detail") != NULL)
                json_object_set(json_object_get(p, "image_url"), "detail", json_object_get(b, "detail"));
        } else if (strcmp(type, "input_file") == 0) {
            if (sl_tr_str(b, "file_data") == NULL)
                return sl_tr_bad(req, "content part %zu: input_file needs file_data (file ids and urls need "
                                 "OpenAI's file store).", i);
            p = json_pack("{s:s, s:{s:O}}", "type", "file", "file", "file_data", json_object_get(b, "file_data"));
            if (p != NULL && sl_tr_str(b, "filename") != NULL)
                json_object_set(json_object_get(p, "file"), "filename", json_object_get(b, "filename"));
        } else {
            req->err_msg = sl_arena_printf(req->arena, "content parts of type %.60s are not supported by "
                                           "this gateway.", type);
            return SL_ERR_BAD_REQUEST;
        }
        if (p == NULL || json_array_append_new(parts, p) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* Text parts only, joined (assistant turns, tool outputs). */
static json_t *joined_text(struct sl_request *req, const json_t *content, int *rc)
{
    json_t *parts = json_array(), *p;
    struct sl_buf b;
    size_t i;

    *rc = SL_OK;
    if (json_is_string(content)) {
        json_decref(parts);
        return json_incref((json_t *)content);
    }
    if (parts == NULL || (*rc = parts_of(req, content, parts)) != SL_OK) {
        json_decref(parts);
        return NULL;
    }
    sl_buf_init(&b, SL_MAX_UPSTREAM_BODY);
    json_array_foreach(parts, i, p)
        if (sl_tr_str(p, "text") != NULL && (*rc = sl_buf_puts(&b, sl_tr_str(p, "text"))) != SL_OK)
            break;
    json_decref(parts);
    p = *rc == SL_OK ? json_stringn(b.data ? b.data : "", b.len) : NULL;
    sl_buf_free(&b);
    return p;
}

static int add_message(struct sl_request *req, const json_t *it, json_t *msgs)
{
    const char *role = sl_tr_str(it, "role");
    const json_t *content = json_object_get(it, "content");
    json_t *c, *parts;
    int rc;

    if (strcmp(role, "developer") == 0)
        role = "system";
    if (strcmp(role, "assistant") == 0 || strcmp(role, "system") == 0) {
        if ((c = joined_text(req, content, &rc)) == NULL)
            return rc != SL_OK ? rc : SL_ERR_NOMEM;
    } else {
        if ((parts = json_array()) == NULL)
            return SL_ERR_NOMEM;
        if ((rc = parts_of(req, content, parts)) != SL_OK) {
            json_decref(parts);
            return rc;
        }
        c = parts;
    }
    return json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role, "content", c)) ? SL_ERR_NOMEM
                                                                                             : SL_OK;
}

/* A function_call item: a tool call of the assistant message just before
 * it when that one is the assistant's (calls made together), else of a new
 * one. */
static int add_call(const json_t *it, json_t *msgs)
{
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1), *calls;
    json_t *call = json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", json_object_get(it, "call_id"), "type", "function",
                             "function", "name", json_object_get(it, "name"),
                             "arguments", json_object_get(it, "arguments"));

    if (call == NULL)
        return SL_ERR_NOMEM;
    if (last == NULL || !is_str(json_object_get(last, "role"), "assistant")) {
        last = json_pack("{s:s, s:n, s:[]}", "role", "assistant", "content", "tool_calls");
        if (last == NULL || json_array_append_new(msgs, last) != 0) {
            json_decref(call);
            return SL_ERR_NOMEM;
        }
    }
    if ((calls = json_object_get(last, "tool_calls")) == NULL) {
        if ((calls = json_array()) == NULL || json_object_set_new(last, "tool_calls", calls) != 0) {
            json_decref(call);
            return SL_ERR_NOMEM;
        }
    }
    return json_array_append_new(calls, call) ? SL_ERR_NOMEM : SL_OK;
}

static int add_output(struct sl_request *req, const json_t *it, json_t *msgs)
{
    int rc;
    json_t *c = joined_text(req, json_object_get(it, "output"), &rc);

    if (c == NULL)
        return rc != SL_OK ? rc : SL_ERR_NOMEM;
    return json_array_append_new(msgs, json_pack("{s:s, s:O, s:o}", "role", "tool", "tool_call_id",
                                                 json_object_get(it, "call_id"), "content", c))
           ? SL_ERR_NOMEM : SL_OK;
}

static int convert_tools(struct sl_request *req, const json_t *in, json_t *out)
{
    const json_t *tools = json_object_get(in, "tools"), *tc = json_object_get(in, "tool_choice"), *t;
    json_t *list, *fn, *choice = NULL;
    size_t i;

    if (json_is_array(tools) && json_array_size(tools) > 0) {
        if ((list = json_array()) == NULL || json_object_set_new(out, "tools", list) != 0)
            return SL_ERR_NOMEM;
        json_array_foreach(tools, i, t) {
            const char *type = sl_tr_str(t, "type");

            /* Built-in tools (web search, file search, ...) and namespaces
             * exist at OpenAI only: left out, the model does not see them.
             * Clients that always offer them (Codex offers web_search)
             * work all the same. */
            if (strcmp(type, "function") != 0)
                continue;
            if (sl_tr_str(t, "name") == NULL)
                return sl_tr_bad(req, "tools.%zu.name: Field required.", i);
            fn = json_pack("{s:O}", "name", json_object_get(t, "name"));
            if (fn == NULL)
                return SL_ERR_NOMEM;
            if (json_is_object(json_object_get(t, "parameters")))
                json_object_set(fn, "parameters", json_object_get(t, "parameters"));
            if (json_is_string(json_object_get(t, "description")))
                json_object_set(fn, "description", json_object_get(t, "description"));
            if (json_is_boolean(json_object_get(t, "strict")))
                json_object_set(fn, "strict", json_object_get(t, "strict"));
            if (json_array_append_new(list, json_pack("{s:s, s:o}", "type", "function", "function", fn)) != 0)
                return SL_ERR_NOMEM;
        }
        if (json_array_size(list) == 0)
            json_object_del(out, "tools");
    }
    if (json_is_object(tc) && sl_tr_str(tc, "type") != NULL && strcmp(sl_tr_str(tc, "type"), "function") != 0 &&
        strcmp(sl_tr_str(tc, "type"), "allowed_tools") != 0) {
        req->err_msg = sl_arena_printf(req->arena, "tool_choice: tools of type %.60s exist at OpenAI only; "
                                       "model=%.200s takes function tools.", sl_tr_str(tc, "type"), req->model);
        return SL_ERR_BAD_REQUEST;
    }
    if (json_object_get(out, "tools") == NULL && json_is_string(tc))
        tc = NULL;          /* no tools left to choose among */
    if (json_is_string(tc))
        choice = json_incref((json_t *)tc);
    else if (json_is_object(tc) && is_str(json_object_get(tc, "type"), "function") && sl_tr_str(tc, "name"))
        choice = json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name", json_object_get(tc, "name"));
    else if (json_is_object(tc) && is_str(json_object_get(tc, "type"), "allowed_tools"))
        choice = json_string(is_str(json_object_get(tc, "mode"), "required") ? "required" : "auto");
    else if (tc != NULL && !json_is_null(tc))
        return sl_tr_bad(req, "tool_choice: must be none, auto, required or a function (%s).", "by name");
    if (choice != NULL && json_object_set_new(out, "tool_choice", choice) != 0)
        return SL_ERR_NOMEM;
    return SL_OK;
}

static int convert_rest(struct sl_request *req, const json_t *in, json_t *out)
{
    const json_t *fmt = json_object_get(json_object_get(in, "text"), "format");
    const char *ft = sl_tr_str(fmt, "type"), *effort;
    json_t *v;
    int fail = 0;

    fail |= json_object_set(out, "model", json_object_get(in, "model"));
    if (json_is_integer(v = json_object_get(in, "max_output_tokens")))
        fail |= json_object_set(out, "max_tokens", v);
    if (json_is_number(v = json_object_get(in, "temperature")))
        fail |= json_object_set(out, "temperature", v);
    if (json_is_number(v = json_object_get(in, "top_p")))
        fail |= json_object_set(out, "top_p", v);
    if (json_is_boolean(v = json_object_get(in, "parallel_tool_calls")) && json_object_get(out, "tools") != NULL)
        fail |= json_object_set(out, "parallel_tool_calls", v);
    if (json_is_string(v = json_object_get(in, "user")) || json_is_string(v = json_object_get(in, "safety_identifier")))
        fail |= json_object_set(out, "user", v);
    if ((effort = sl_tr_str(json_object_get(in, "reasoning"), "effort")) != NULL)
        fail |= json_object_set_new(out, "reasoning_effort", json_string(effort));
    if (ft != NULL && strcmp(ft, "json_schema") == 0) {
        json_t *js;

        if (!json_is_object(json_object_get(fmt, "schema")))
            return sl_tr_bad(req, "text.format.schema: Field required (type %s).", "json_schema");
        js = json_pack("{s:s, s:O}", "name", sl_tr_str(fmt, "name") ? sl_tr_str(fmt, "name") : "output",
                       "schema", json_object_get(fmt, "schema"));
        if (js != NULL && json_is_boolean(json_object_get(fmt, "strict")))
            json_object_set(js, "strict", json_object_get(fmt, "strict"));
        if (js != NULL && json_is_string(json_object_get(fmt, "description")))
            json_object_set(js, "description", json_object_get(fmt, "description"));
        fail |= json_object_set_new(out, "response_format", json_pack("{s:s, s:o}", "type", "json_schema",
                                                                       "json_schema", js));
    } else if (ft != NULL && strcmp(ft, "json_object") == 0) {
        fail |= json_object_set_new(out, "response_format", json_pack("{s:s}", "type", "json_object"));
    }
    /* The gateway's own fields (LiteLLM's metadata, caching, ...) go on. */
    for (size_t i = 0; sl_tr_gateway_fields[i] != NULL; i++)
        if ((v = json_object_get(in, sl_tr_gateway_fields[i])) != NULL)
            fail |= json_object_set(out, sl_tr_gateway_fields[i], v);
    if (req->stream) {
        fail |= json_object_set_new(out, "stream", json_true());
        fail |= json_object_set_new(out, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    return fail ? SL_ERR_NOMEM : SL_OK;
}

/* The chat completions form, made once: req->in, SL_EP_CHAT. */
static int to_chat(struct sl_request *req)
{
    struct resp_state *st = state(req);
    const json_t *in = st->in, *input = json_object_get(in, "input"), *it;
    json_t *out = json_object(), *msgs = json_array(), *pm;
    size_t i;
    int rc = SL_OK;

    if (out == NULL || sl_arena_defer(req->arena, sl_json_decref_cb, out) != SL_OK) {
        json_decref(out);
        json_decref(msgs);
        return SL_ERR_NOMEM;
    }
    if (msgs == NULL || json_object_set_new(out, "messages", msgs) != 0)
        return SL_ERR_NOMEM;
    if (sl_tr_str(in, "instructions") != NULL && *sl_tr_str(in, "instructions") != '\0' &&
        json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "system", "content",
                                              json_object_get(in, "instructions"))) != 0)
        return SL_ERR_NOMEM;
    /* The stored conversation goes first; its instructions do not carry
     * over (the new request's do), as at OpenAI. */
    json_array_foreach(st->prev, i, pm)
        if (!is_str(json_object_get(pm, "role"), "system") && json_array_append(msgs, pm) != 0)
            return SL_ERR_NOMEM;
    if (json_is_string(input)) {
        if (json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "user", "content", input)) != 0)
            return SL_ERR_NOMEM;
    }
    json_array_foreach(json_is_array(input) ? input : NULL, i, it) {
        const char *type = sl_tr_str(it, "type");

        if (type == NULL || strcmp(type, "message") == 0)
            rc = add_message(req, it, msgs);
        else if (strcmp(type, "function_call") == 0)
            rc = add_call(it, msgs);
        else if (strcmp(type, "function_call_output") == 0)
            rc = add_output(req, it, msgs);
        if (rc != SL_OK)
            return rc;
    }
    if (json_array_size(msgs) == 0)
        return sl_tr_bad(req, "input: at least one message is required.");
    if ((rc = convert_tools(req, in, out)) != SL_OK || (rc = convert_rest(req, in, out)) != SL_OK)
        return rc;
    st->chat = out;
    req->in = out;
    req->body = NULL;       /* adapters must not splice the Responses text */
    req->body_len = 0;
    req->include_usage = 1;
    req->endpoint = SL_EP_CHAT;
    return SL_OK;
}

int sl_responses_native(const struct sl_request *req)
{
    const struct resp_state *st = req->surface_state;

    return req->surface == SL_SURFACE_RESPONSES && st != NULL && st->native;
}

/* previous_response_id: our stored conversation if the store has it. Not
 * found (or no store): a native deployment gets the id as it came (the
 * provider may know it); any other, a 400. */
static int previous(struct sl_request *req, struct resp_state *st, int *native)
{
    const char *id = sl_tr_str(st->in, "previous_response_id");
    int rc, store = req->cfg != NULL && req->cfg->responses_store;

    if (id == NULL)
        return SL_OK;
    if (!st->prev_looked && store) {
        st->prev_looked = 1;
        rc = sl_respstore_conversation(req, id, &st->prev);
        if (rc == SL_OK && sl_arena_defer(req->arena, sl_json_decref_cb, st->prev) != SL_OK) {
            json_decref(st->prev);
            st->prev = NULL;
            return SL_ERR_NOMEM;
        }
        if (rc != SL_OK && rc != SL_ERR_NOT_FOUND)
            return rc;
    }
    if (st->prev != NULL)
        *native = 0;        /* a conversation only sluice holds */
    else if (!*native) {
        req->err_param = "previous_response_id";
        if (!store)
            return sl_tr_bad(req, "previous_response_id needs stored responses, and this gateway keeps none "
                             "(no response store is configured: sluice_settings.responses_store): send the "
                             "whole conversation as input.");
        return sl_tr_bad(req, "Previous response with id '%.64s' not found.", id);
    }
    return SL_OK;
}

int sl_responses_prepare(struct sl_request *req)
{
    struct resp_state *st = state(req);
    int native = (req->dep->provider->endpoints & SL_EP_BIT(SL_EP_RESPONSES)) && req->guard == NULL;
    int rc;

    if ((rc = previous(req, st, &native)) != SL_OK)
        return rc;
    st->native = native;
    if (native) {
        req->in = st->in;
        req->body = st->body;
        req->body_len = st->body_len;
        req->endpoint = SL_EP_RESPONSES;
        req->include_usage = 0;
    } else if (st->chat == NULL) {
        if ((rc = to_chat(req)) != SL_OK)
            return rc;
    } else if (req->endpoint != SL_EP_CHAT) {
        req->in = st->chat;     /* after a native attempt */
        req->body = NULL;
        req->body_len = 0;
        req->endpoint = SL_EP_CHAT;
        req->include_usage = 1;
    }
    return SL_OK;
}

/* ---- the Response object ---- */

static json_t *usage_of(const struct sl_request *req, long reasoning)
{
    return json_pack("{s:I, s:{s:I}, s:I, s:{s:I}, s:I}",
                     "input_tokens", (json_int_t)req->usage.prompt_tokens,
                     "input_tokens_details", "cached_tokens", (json_int_t)req->usage.cached_tokens,
                     "output_tokens", (json_int_t)req->usage.completion_tokens,
                     "output_tokens_details", "reasoning_tokens", (json_int_t)reasoning,
                     "total_tokens", (json_int_t)(req->usage.total_tokens ? req->usage.total_tokens
                                     : req->usage.prompt_tokens + req->usage.completion_tokens));
}

static json_t *or_default(const json_t *v, json_t *dflt)
{
    if (v == NULL || json_is_null(v))
        return dflt;
    json_decref(dflt);
    return json_incref((json_t *)v);
}

/* Whether this answer is kept: a store, a translated answer, and the
 * client did not say store: false. */
static int kept(const struct sl_request *req, const struct resp_state *st)
{
    return req->cfg != NULL && req->cfg->responses_store && !st->native &&
           !json_is_false(json_object_get(st->in, "store"));
}

/* Keeps the answer (stolen: the assistant's chat message) after the
 * conversation it ends, with the Response sent (borrowed). */
static void keep(struct sl_request *req, struct resp_state *st, json_t *answer, const json_t *response)
{
    json_t *conv, *m;
    size_t i;

    if (!kept(req, st) || answer == NULL || (conv = json_array()) == NULL) {
        json_decref(answer);
        return;
    }
    json_array_foreach(json_object_get(req->in, "messages"), i, m)
        if (!is_str(json_object_get(m, "role"), "system"))
            json_array_append(conv, m);
    json_array_append_new(conv, answer);
    sl_respstore_save(req, st->id, conv, response);
    json_decref(conv);
}

/* The response with the request's settings echoed, as OpenAI answers it.
 * output is stolen. */
static json_t *response_obj(struct sl_request *req, const char *status, const char *incomplete,
                            json_t *output, json_t *usage)
{
    struct resp_state *st = state(req);
    const json_t *in = st->in;
    json_t *r = json_pack("{s:s, s:s, s:I, s:s, s:n, s:o, s:O?, s:o, s:s, s:o, s:o, s:n, s:o, s:b, s:o, "
                          "s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o}",
        "id", st->id, "object", "response", "created_at", (json_int_t)st->created_at, "status", status,
        "error",
        "incomplete_details", incomplete ? json_pack("{s:s}", "reason", incomplete) : json_null(),
        "instructions", json_object_get(in, "instructions"),
        "max_output_tokens", or_default(json_object_get(in, "max_output_tokens"), json_null()),
        "model", req->model,
        "output", output,
        "parallel_tool_calls", or_default(json_object_get(in, "parallel_tool_calls"), json_true()),
        "previous_response_id",
        "reasoning", or_default(json_object_get(in, "reasoning"), json_pack("{s:n, s:n}", "effort", "summary")),
        "store", kept(req, st),
        "temperature", or_default(json_object_get(in, "temperature"), json_real(1.0)),
        "text", or_default(json_object_get(in, "text"), json_pack("{s:{s:s}}", "format", "type", "text")),
        "tool_choice", or_default(json_object_get(in, "tool_choice"), json_string("auto")),
        "tools", or_default(json_object_get(in, "tools"), json_array()),
        "top_p", or_default(json_object_get(in, "top_p"), json_real(1.0)),
        "truncation", "disabled",
        "usage", usage ? usage : json_null(),
        "user", or_default(json_object_get(in, "user"), json_null()),
        "metadata", or_default(json_object_get(in, "metadata"), json_object()));

    return r;
}

static const char *incomplete_reason(const char *finish)
{
    if (finish == NULL)
        return NULL;
    if (strcmp(finish, "length") == 0)
        return "max_output_tokens";
    if (strcmp(finish, "content_filter") == 0)
        return "content_filter";
    return NULL;
}

static json_t *text_part(const char *text, size_t len)
{
    return json_pack("{s:s, s:s%, s:[], s:[]}", "type", "output_text", "text", text, len, "annotations",
                     "logprobs");
}

static json_t *item_json(const struct item *it, const char *status)
{
    const char *t = it->text.data ? it->text.data : "";

    switch (it->kind) {
    case IT_REASONING:
        return json_pack("{s:s, s:s, s:[{s:s, s:s%}]}", "id", it->id, "type", "reasoning", "summary",
                         "type", "summary_text", "text", t, it->text.len);
    case IT_MESSAGE:
        return json_pack("{s:s, s:s, s:s, s:s, s:[o]}", "id", it->id, "type", "message", "status", status,
                         "role", "assistant", "content", text_part(t, it->text.len));
    default:
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s%}", "id", it->id, "type", "function_call", "status", status,
                         "call_id", it->call_id, "name", it->name, "arguments", t, it->text.len);
    }
}

static long reasoning_tokens_of(const json_t *usage)
{
    return (long)json_integer_value(json_object_get(json_object_get(usage, "completion_tokens_details"),
                                                    "reasoning_tokens"));
}

int sl_responses_send_completion(struct sl_request *req, const json_t *completion)
{
    struct resp_state *st = state(req);
    const json_t *choice = json_array_get(json_object_get(completion, "choices"), 0);
    const json_t *msg = json_object_get(choice, "message"), *c;
    const char *text = sl_tr_str(msg, "content"), *reasoning = sl_tr_str(msg, "reasoning_content");
    const char *finish = sl_tr_str(choice, "finish_reason"), *why = incomplete_reason(finish);
    json_t *output = json_array(), *r;
    size_t i;
    int rc;

    if (output == NULL)
        return SL_ERR_NOMEM;
    if (reasoning != NULL && *reasoning != '\0')
        json_array_append_new(output, json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "id",
            sl_arena_printf(req->arena, "rs_%s", st->id + 5), "type", "reasoning", "summary",
            "type", "summary_text", "text", reasoning));
    if ((text != NULL && *text != '\0') || json_array_size(json_object_get(msg, "tool_calls")) == 0)
        json_array_append_new(output, json_pack("{s:s, s:s, s:s, s:s, s:[o]}", "id",
            sl_arena_printf(req->arena, "msg_%s", st->id + 5), "type", "message", "status",
            why ? "incomplete" : "completed", "role", "assistant", "content",
            text_part(text ? text : "", text ? strlen(text) : 0)));
    json_array_foreach(json_object_get(msg, "tool_calls"), i, c) {
        const json_t *fn = json_object_get(c, "function");

        json_array_append_new(output, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
            "id", sl_arena_printf(req->arena, "fc_%s_%zu", st->id + 5, i), "type", "function_call",
            "status", "completed",
            "call_id", sl_tr_str(c, "id") ? sl_tr_str(c, "id") : sl_arena_printf(req->arena, "call_%s_%zu", st->id + 5, i),
            "name", sl_tr_str(fn, "name") ? sl_tr_str(fn, "name") : "",
            "arguments", sl_tr_str(fn, "arguments") ? sl_tr_str(fn, "arguments") : "{}"));
    }
    r = response_obj(req, why ? "incomplete" : "completed", why, output,
                     usage_of(req, reasoning_tokens_of(json_object_get(completion, "usage"))));
    if (r == NULL)
        return SL_ERR_NOMEM;
    rc = sl_respond_json(req, 200, r);
    if (rc == SL_OK && kept(req, st)) {
        json_t *answer = json_pack("{s:s, s:O?}", "role", "assistant", "content", json_object_get(msg, "content"));

        if (answer != NULL && json_array_size(json_object_get(msg, "tool_calls")) > 0)
            json_object_set(answer, "tool_calls", json_object_get(msg, "tool_calls"));
        keep(req, st, answer, r);
    }
    json_decref(r);
    return rc;
}

/* ---- the translated stream ---- */

/* Sends an event made with Jansson: "type" first, sequence_number added. */
static int event(struct sl_request *req, const char *type, json_t *data)
{
    struct resp_state *st = state(req);
    size_t len;
    char *text;

    if (data == NULL || json_object_set_new(data, "sequence_number", json_integer(st->seq++)) != 0) {
        json_decref(data);
        return SL_ERR_NOMEM;
    }
    text = sl_json_dump(req->arena, data, &len);
    json_decref(data);
    return text ? sl_respond_sse_event(req, type, text, len) : SL_ERR_NOMEM;
}

/* A delta event from a template, no tree: the text as a JSON string, or
 * (token != NULL) a JSON string token as the upstream sent it. */
static int delta_event(struct sl_request *req, struct item *it, int index, const char *text,
                       const char *token, size_t token_len)
{
    struct resp_state *st = state(req);
    const char *type = it->kind == IT_MESSAGE ? "response.output_text.delta"
                     : it->kind == IT_CALL ? "response.function_call_arguments.delta"
                     : "response.reasoning_summary_text.delta";
    static const char logprobs[] = ",\"logprobs\":[]";
    static const char seq[] = ",\"sequence_number\":";
    char num[24], *p = num + sizeof(num);
    long n = st->seq++;
    int rc;

    if (it->delta_head == NULL) {      /* the part no delta changes, made once per item */
        it->delta_head = sl_arena_printf(req->arena,
            "{\"type\":\"%s\",\"item_id\":\"%s\",\"output_index\":%d,%s\"delta\":", type, it->id, index,
            it->kind == IT_MESSAGE ? "\"content_index\":0," : it->kind == IT_REASONING ? "\"summary_index\":0," : "");
        if (it->delta_head == NULL)
            return SL_ERR_NOMEM;
        it->delta_head_len = strlen(it->delta_head);
    }
    *--p = '}';
    do
        *--p = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    sl_buf_reset(&st->out);
    rc = sl_buf_append(&st->out, it->delta_head, it->delta_head_len);
    if (rc == SL_OK)
        rc = token != NULL ? sl_buf_append(&st->out, token, token_len) : sl_json_put_str(&st->out, text);
    if (rc == SL_OK && it->kind == IT_MESSAGE)
        rc = sl_buf_append(&st->out, logprobs, sizeof(logprobs) - 1);
    if (rc == SL_OK)
        rc = sl_buf_append(&st->out, seq, sizeof(seq) - 1);
    if (rc == SL_OK)
        rc = sl_buf_append(&st->out, p, (size_t)(num + sizeof(num) - p));
    if (rc != SL_OK)
        return rc;
    return sl_respond_sse_event(req, type, st->out.data, st->out.len);
}

static int begin(struct sl_request *req, struct resp_state *st)
{
    int rc;

    if (st->started)
        return SL_OK;
    st->started = 1;
    rc = event(req, "response.created", json_pack("{s:s, s:o}", "type", "response.created", "response",
                                                   response_obj(req, "in_progress", NULL, json_array(), NULL)));
    if (rc == SL_OK)
        rc = event(req, "response.in_progress", json_pack("{s:s, s:o}", "type", "response.in_progress", "response",
                                                   response_obj(req, "in_progress", NULL, json_array(), NULL)));
    return rc;
}

/* Closes the open item with its .done events; status: "completed", or
 * "incomplete" for a message the answer's limit cut. */
static int close_item(struct sl_request *req, struct resp_state *st, const char *status)
{
    struct item *it;
    int idx = st->open, rc = SL_OK;
    const char *t;

    if (idx < 0)
        return SL_OK;
    st->open = -1;
    it = &st->items[idx];
    t = it->text.data ? it->text.data : "";
    if (it->kind == IT_MESSAGE) {
        rc = event(req, "response.output_text.done", json_pack("{s:s, s:s, s:i, s:i, s:s%, s:[]}",
            "type", "response.output_text.done", "item_id", it->id, "output_index", idx, "content_index", 0,
            "text", t, it->text.len, "logprobs"));
        if (rc == SL_OK)
            rc = event(req, "response.content_part.done", json_pack("{s:s, s:s, s:i, s:i, s:o}",
                "type", "response.content_part.done", "item_id", it->id, "output_index", idx, "content_index", 0,
                "part", text_part(t, it->text.len)));
    } else if (it->kind == IT_REASONING) {
        rc = event(req, "response.reasoning_summary_text.done", json_pack("{s:s, s:s, s:i, s:i, s:s%}",
            "type", "response.reasoning_summary_text.done", "item_id", it->id, "output_index", idx,
            "summary_index", 0, "text", t, it->text.len));
        if (rc == SL_OK)
            rc = event(req, "response.reasoning_summary_part.done", json_pack("{s:s, s:s, s:i, s:i, s:{s:s, s:s%}}",
                "type", "response.reasoning_summary_part.done", "item_id", it->id, "output_index", idx,
                "summary_index", 0, "part", "type", "summary_text", "text", t, it->text.len));
    } else {
        rc = event(req, "response.function_call_arguments.done", json_pack("{s:s, s:s, s:i, s:s, s:s%}",
            "type", "response.function_call_arguments.done", "item_id", it->id, "output_index", idx,
            "name", it->name, "arguments", t, it->text.len));
    }
    if (rc == SL_OK)
        rc = event(req, "response.output_item.done", json_pack("{s:s, s:i, s:o}", "type", "response.output_item.done",
            "output_index", idx, "item", item_json(it, status)));
    return rc;
}

static int open_item(struct sl_request *req, struct resp_state *st, int kind, int tool,
                     const char *call_id, const char *name)
{
    struct item *it;
    int idx, rc;

    if ((rc = close_item(req, st, "completed")) != SL_OK)
        return rc;
    if (st->n_items == MAX_ITEMS) {
        req->err_msg = "The answer has more output items than this gateway relays.";
        return SL_ERR_UPSTREAM_BAD;
    }
    if (st->items == NULL && (st->items = sl_arena_calloc(req->arena, MAX_ITEMS, sizeof(*st->items))) == NULL)
        return SL_ERR_NOMEM;
    idx = (int)st->n_items++;
    it = &st->items[idx];
    it->kind = kind;
    it->tool = tool;
    sl_buf_init(&it->text, SL_MAX_UPSTREAM_BODY);
    snprintf(it->id, sizeof(it->id), "%s_%s_%d", kind == IT_MESSAGE ? "msg" : kind == IT_CALL ? "fc" : "rs",
             st->id + 5, idx);
    if (kind == IT_CALL) {
        it->call_id = call_id ? sl_arena_strdup(req->arena, call_id)
                              : sl_arena_printf(req->arena, "call_%s_%d", st->id + 5, idx);
        it->name = sl_arena_strdup(req->arena, name ? name : "");
        if (it->call_id == NULL || it->name == NULL)
            return SL_ERR_NOMEM;
    }
    st->open = idx;
    if (kind == IT_MESSAGE) {
        rc = event(req, "response.output_item.added", json_pack("{s:s, s:i, s:{s:s, s:s, s:s, s:s, s:[]}}",
            "type", "response.output_item.added", "output_index", idx, "item", "id", it->id, "type", "message",
            "status", "in_progress", "role", "assistant", "content"));
        if (rc == SL_OK)
            rc = event(req, "response.content_part.added", json_pack("{s:s, s:s, s:i, s:i, s:o}",
                "type", "response.content_part.added", "item_id", it->id, "output_index", idx, "content_index", 0,
                "part", text_part("", 0)));
    } else if (kind == IT_REASONING) {
        rc = event(req, "response.output_item.added", json_pack("{s:s, s:i, s:{s:s, s:s, s:[]}}",
            "type", "response.output_item.added", "output_index", idx, "item", "id", it->id, "type", "reasoning",
            "summary"));
        if (rc == SL_OK)
            rc = event(req, "response.reasoning_summary_part.added", json_pack("{s:s, s:s, s:i, s:i, s:{s:s, s:s}}",
                "type", "response.reasoning_summary_part.added", "item_id", it->id, "output_index", idx,
                "summary_index", 0, "part", "type", "summary_text", "text", ""));
    } else {
        rc = event(req, "response.output_item.added", json_pack("{s:s, s:i, s:o}",
            "type", "response.output_item.added", "output_index", idx, "item", item_json(it, "in_progress")));
    }
    return rc;
}

static int add_text(struct sl_request *req, struct resp_state *st, int kind, const char *text)
{
    int rc = SL_OK;

    if (st->open < 0 || st->items[st->open].kind != kind)
        rc = open_item(req, st, kind, -1, NULL, NULL);
    if (rc == SL_OK)
        rc = sl_buf_puts(&st->items[st->open].text, text);
    if (rc == SL_OK)
        rc = delta_event(req, &st->items[st->open], st->open, text, NULL, 0);
    return rc;
}

int sl_responses_fast_text(struct sl_request *req, const char *token, size_t len, int reasoning)
{
    struct resp_state *st = state(req);
    int kind = reasoning ? IT_REASONING : IT_MESSAGE, rc;
    struct item *it;

    if (len < 2 || token[0] != '"' || token[len - 1] != '"')
        return SL_ERR_UPSTREAM_BAD;
    if ((rc = begin(req, st)) != SL_OK || len == 2)
        return rc;          /* "": nothing to add, as in the parsed path */
    if ((st->open < 0 || st->items[st->open].kind != kind) &&
        (rc = open_item(req, st, kind, -1, NULL, NULL)) != SL_OK)
        return rc;
    it = &st->items[st->open];
    /* The item keeps the text itself: the token as it is when it has no
     * escapes (most), else decoded. */
    if (memchr(token, '\\', len) == NULL) {
        rc = sl_buf_append(&it->text, token + 1, len - 2);
    } else {
        json_t *s = json_loadb(token, len, JSON_DECODE_ANY, NULL);

        rc = json_is_string(s) ? sl_buf_append(&it->text, json_string_value(s), json_string_length(s))
                               : SL_ERR_UPSTREAM_BAD;
        json_decref(s);
    }
    if (rc != SL_OK)
        return rc;
    return delta_event(req, it, st->open, NULL, token, len);
}

static int tool_delta(struct sl_request *req, struct resp_state *st, const json_t *tc)
{
    const json_t *fn = json_object_get(tc, "function");
    const char *args = sl_tr_str(fn, "arguments");
    int idx = (int)json_integer_value(json_object_get(tc, "index")), rc;
    struct item *it;

    if (sl_tr_str(tc, "id") != NULL || sl_tr_str(fn, "name") != NULL) {
        /* A new call, unless it is the open one again (some compatible
         * servers repeat the id on every fragment). */
        it = st->open >= 0 ? &st->items[st->open] : NULL;
        if (it == NULL || it->kind != IT_CALL || it->tool != idx ||
            (sl_tr_str(tc, "id") != NULL && strcmp(sl_tr_str(tc, "id"), it->call_id) != 0))
            if ((rc = open_item(req, st, IT_CALL, idx, sl_tr_str(tc, "id"), sl_tr_str(fn, "name"))) != SL_OK)
                return rc;
    } else if (st->open < 0 || st->items[st->open].kind != IT_CALL || st->items[st->open].tool != idx) {
        return SL_OK;    /* a fragment of no open call: nothing to attach it to */
    }
    if (args == NULL || *args == '\0')
        return SL_OK;
    it = &st->items[st->open];
    if ((rc = sl_buf_puts(&it->text, args)) != SL_OK)
        return rc;
    return delta_event(req, it, st->open, args, NULL, 0);
}

int sl_responses_send_chunk(struct sl_request *req, const json_t *chunk)
{
    struct resp_state *st = state(req);
    const json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    const json_t *d = json_object_get(choice, "delta"), *tc;
    const char *text = sl_tr_str(d, "content"), *reasoning = sl_tr_str(d, "reasoning_content");
    size_t i;
    int rc;

    if ((rc = begin(req, st)) != SL_OK)
        return rc;
    if (json_is_object(json_object_get(chunk, "usage")))
        st->reasoning_tokens = reasoning_tokens_of(json_object_get(chunk, "usage"));
    if (choice == NULL || json_integer_value(json_object_get(choice, "index")) != 0)
        return SL_OK;      /* usage-only chunks, and choices past the first */
    if (reasoning != NULL && *reasoning != '\0' && (rc = add_text(req, st, IT_REASONING, reasoning)) != SL_OK)
        return rc;
    if (text != NULL && *text != '\0' && (rc = add_text(req, st, IT_MESSAGE, text)) != SL_OK)
        return rc;
    json_array_foreach(json_object_get(d, "tool_calls"), i, tc)
        if ((rc = tool_delta(req, st, tc)) != SL_OK)
            return rc;
    if (sl_tr_str(choice, "finish_reason") != NULL &&
        (st->finish = sl_arena_strdup(req->arena, sl_tr_str(choice, "finish_reason"))) == NULL)
        return SL_ERR_NOMEM;
    return SL_OK;
}

/* The streamed answer as the assistant's chat message: its text and its
 * tool calls. */
static json_t *streamed_answer(const struct resp_state *st)
{
    struct sl_buf text;
    json_t *calls = json_array(), *m = NULL;

    sl_buf_init(&text, SL_MAX_UPSTREAM_BODY);
    for (size_t i = 0; i < st->n_items && calls != NULL; i++) {
        const struct item *it = &st->items[i];

        if (it->kind == IT_MESSAGE && it->text.len > 0 && sl_buf_append(&text, it->text.data, it->text.len) != SL_OK)
            goto out;
        if (it->kind == IT_CALL &&
            json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:s, s:s%}}", "id", it->call_id, "type", "function",
                "function", "name", it->name, "arguments", it->text.data ? it->text.data : "", it->text.len)) != 0)
            goto out;
    }
    m = json_pack("{s:s, s:o}", "role", "assistant", "content",
                  text.len > 0 ? json_stringn(text.data, text.len) : json_null());
    if (m != NULL && json_array_size(calls) > 0)
        json_object_set(m, "tool_calls", calls);
out:
    sl_buf_free(&text);
    json_decref(calls);
    return m;
}

int sl_responses_finish(struct sl_request *req)
{
    struct resp_state *st = state(req);
    const char *why = incomplete_reason(st->finish);
    int cut = why != NULL && st->n_items > 0 && st->items[st->n_items - 1].kind == IT_MESSAGE;
    json_t *output, *r;
    int rc;

    if ((rc = begin(req, st)) != SL_OK ||
        (rc = close_item(req, st, cut && st->open == (int)st->n_items - 1 ? "incomplete" : "completed")) != SL_OK)
        return rc;
    if ((output = json_array()) == NULL)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < st->n_items; i++)
        json_array_append_new(output, item_json(&st->items[i], "completed"));
    if (cut)
        json_object_set_new(json_array_get(output, st->n_items - 1), "status", json_string("incomplete"));
    r = response_obj(req, why ? "incomplete" : "completed", why, output, usage_of(req, st->reasoning_tokens));
    if (r == NULL)
        return SL_ERR_NOMEM;
    rc = event(req, why ? "response.incomplete" : "response.completed",
               json_pack("{s:s, s:O}", "type", why ? "response.incomplete" : "response.completed", "response", r));
    if (rc == SL_OK)
        rc = sl_respond_flush(req);
    if (rc == SL_OK && kept(req, st))
        keep(req, st, streamed_answer(st), r);
    json_decref(r);
    return rc;
}

int sl_responses_stream_error(struct sl_request *req, int http_status, const char *type,
                              const char *message, const char *code)
{
    struct resp_state *st = state(req);
    char codebuf[16];
    json_t *r;
    int rc;

    if (st == NULL)
        return SL_ERR_INTERNAL;   /* no stream without the state validate made */
    /* Heartbeats may have opened the stream before any event: every
     * Responses stream begins with response.created all the same. */
    if (!st->started && (rc = begin(req, st)) != SL_OK)
        return rc;
    snprintf(codebuf, sizeof(codebuf), "%d", http_status);
    if (code == NULL)
        code = type != NULL ? type : codebuf;
    rc = event(req, "error", json_pack("{s:s, s:s, s:s, s:n}", "type", "error", "code", code,
                                       "message", message, "param"));
    if (rc != SL_OK)
        return rc;
    if ((r = response_obj(req, "failed", NULL, json_array(), NULL)) == NULL ||
        json_object_set_new(r, "error", json_pack("{s:s, s:s}", "code", code, "message", message)) != 0) {
        json_decref(r);
        return SL_ERR_NOMEM;
    }
    rc = event(req, "response.failed", json_pack("{s:s, s:o}", "type", "response.failed", "response", r));
    return rc == SL_OK ? sl_respond_flush(req) : rc;
}

/* ---- native pass-through ---- */

static void take_usage(struct sl_request *req, const json_t *u)
{
    if (!json_is_object(u))
        return;
    req->usage.prompt_tokens = (long)json_integer_value(json_object_get(u, "input_tokens"));
    req->usage.completion_tokens = (long)json_integer_value(json_object_get(u, "output_tokens"));
    req->usage.total_tokens = (long)json_integer_value(json_object_get(u, "total_tokens"));
    req->usage.cached_tokens = (long)json_integer_value(
        json_object_get(json_object_get(u, "input_tokens_details"), "cached_tokens"));
    req->usage.seen = 1;
}

int sl_responses_native_reply(struct sl_request *req, const char *body, size_t len, json_t **out)
{
    const char *why;
    json_t *v = sl_json_parse(body, len, &why);

    if (!json_is_object(v)) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    take_usage(req, json_object_get(v, "usage"));
    if (json_object_get(v, "model") != NULL && json_object_set_new(v, "model", json_string(req->model)) != 0) {
        json_decref(v);
        return SL_ERR_NOMEM;
    }
    *out = v;
    return SL_OK;
}

/* The events that carry the whole response. */
static int carries_response(const char *type)
{
    return strcmp(type, "response.created") == 0 || strcmp(type, "response.in_progress") == 0 ||
           strcmp(type, "response.queued") == 0 || strcmp(type, "response.completed") == 0 ||
           strcmp(type, "response.incomplete") == 0 || strcmp(type, "response.failed") == 0;
}

static int is_last(const char *type)
{
    return strcmp(type, "response.completed") == 0 || strcmp(type, "response.incomplete") == 0 ||
           strcmp(type, "response.failed") == 0;
}

int sl_responses_native_event(struct sl_request *req, const struct sl_sse_event *ev, int *done)
{
    static const char *const type_path[] = { "type", NULL };
    static const char *const seq_path[] = { "sequence_number", NULL };
    struct resp_state *st = state(req);
    char type[96];
    const char *t, *why;
    size_t tl;
    json_t *v, *r;
    char *text;
    size_t len;
    int rc;

    *done = 0;
    if (ev->data_len == 0 || (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0))
        return SL_OK;
    t = sl_tr_scan(ev->data, ev->data_len, type_path, &tl);
    if (t == NULL || tl < 2 || tl - 2 >= sizeof(type) || *t != '"')
        return SL_ERR_UPSTREAM_BAD;
    memcpy(type, t + 1, tl - 2);
    type[tl - 2] = '\0';
    if (strchr(type, '\\') != NULL)
        return SL_ERR_UPSTREAM_BAD;
    /* An error of ours after this event continues the upstream's count. */
    if ((t = sl_tr_scan(ev->data, ev->data_len, seq_path, &tl)) != NULL && *t >= '0' && *t <= '9')
        st->seq = strtol(t, NULL, 10) + 1;
    st->started = 1;
    if (strcmp(type, "error") == 0)
        req->error = SL_ERR_UPSTREAM_STATUS;
    /* Passed on as it came, unless its data spans lines (one SSE data
     * line must hold it): then it is written again on one. */
    if (!carries_response(type) && memchr(ev->data, '\n', ev->data_len) == NULL)
        return sl_respond_sse_event(req, type, ev->data, ev->data_len);
    if ((v = sl_json_parse(ev->data, ev->data_len, &why)) == NULL)
        return SL_ERR_UPSTREAM_BAD;
    r = json_object_get(v, "response");
    if (carries_response(type) && json_is_object(r) && json_object_get(r, "model") != NULL)
        json_object_set_new(r, "model", json_string(req->model));
    /* ... and names the response as the upstream did. */
    if (carries_response(type) && sl_tr_str(r, "id") != NULL && strlen(sl_tr_str(r, "id")) < sizeof(st->id))
        strcpy(st->id, sl_tr_str(r, "id"));
    if (carries_response(type) && json_is_integer(json_object_get(r, "created_at")))
        st->created_at = json_integer_value(json_object_get(r, "created_at"));
    if (carries_response(type) && is_last(type)) {
        take_usage(req, json_object_get(r, "usage"));
        *done = 1;
        if (strcmp(type, "response.failed") == 0)
            req->error = SL_ERR_UPSTREAM_STATUS;
    }
    text = sl_json_dump(req->arena, v, &len);
    json_decref(v);
    if (text == NULL)
        return SL_ERR_NOMEM;
    rc = sl_respond_sse_event(req, type, text, len);
    return rc == SL_OK && *done ? sl_respond_flush(req) : rc;
}

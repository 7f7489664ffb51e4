/* Legacy text completions (completions.h). */
#include <string.h>

#include "arena.h"
#include "completions.h"
#include "config.h"
#include "jsonutil.h"
#include "provider.h"
#include "request.h"
#include "respond.h"
#include "status.h"
#include "translate.h"

struct cmpl_state {
    json_t *in;          /* the client's body (kept alive by its defer) */
    char *body;          /* its text */
    size_t body_len;
    json_t *chat;        /* the chat form, once made */
    int include_usage;   /* the client asked for the usage chunk */
};

/* Parameters only the legacy API has: a translated request refuses them
 * rather than answer something else than was asked. */
static const char *const legacy_only[] = { "echo", "suffix", "logprobs", "best_of", NULL };

int sl_completions_validate(struct sl_request *req)
{
    const json_t *p = json_object_get(req->in, "prompt");
    struct cmpl_state *st;

    if (p == NULL || json_is_null(p))
        return sl_tr_bad(req, "prompt is a required field.");
    if (!json_is_string(p) && !json_is_array(p))
        return sl_tr_bad(req, "prompt must be a string, an array of strings or an array of tokens.");
    if ((st = sl_arena_calloc(req->arena, 1, sizeof(*st))) == NULL)
        return SL_ERR_NOMEM;
    st->in = req->in;
    st->body = req->body;
    st->body_len = req->body_len;
    st->include_usage = req->include_usage;
    req->surface_state = st;
    return SL_OK;
}

/* The chat form: the prompt as one user message, the shared parameters. */
static int to_chat(struct sl_request *req, struct cmpl_state *st)
{
    static const char *const keep[] = { "model", "max_tokens", "temperature", "top_p", "n", "stop",
        "presence_penalty", "frequency_penalty", "seed", "user", "logit_bias", "stream", NULL };
    const json_t *p = json_object_get(st->in, "prompt");
    json_t *out, *v;
    size_t i;

    for (i = 0; legacy_only[i] != NULL; i++) {
        v = json_object_get(st->in, legacy_only[i]);
        if (v != NULL && !json_is_null(v) && !json_is_false(v) &&
            !(json_is_integer(v) && json_integer_value(v) == (strcmp(legacy_only[i], "best_of") == 0 ? 1 : 0)))
            return sl_tr_bad(req, "%s needs a legacy completions model; model=%.200s (provider %s) answers "
                             "through chat completions.", legacy_only[i], req->model, req->dep->provider->name);
    }
    if (json_is_array(p)) {
        if (json_array_size(p) != 1 || !json_is_string(json_array_get(p, 0)))
            return sl_tr_bad(req, "model=%.200s (provider %s) answers through chat completions: "
                             "send one prompt, as a string.", req->model, req->dep->provider->name);
        p = json_array_get(p, 0);
    }
    if ((out = json_pack("{s:[{s:s, s:O}]}", "messages", "role", "user", "content", p)) == NULL)
        return SL_ERR_NOMEM;
    if (sl_arena_defer(req->arena, sl_json_decref_cb, out) != SL_OK) {
        json_decref(out);
        return SL_ERR_NOMEM;
    }
    for (i = 0; keep[i] != NULL; i++)
        if ((v = json_object_get(st->in, keep[i])) != NULL && json_object_set(out, keep[i], v) != 0)
            return SL_ERR_NOMEM;
    for (i = 0; sl_tr_gateway_fields[i] != NULL; i++)
        if ((v = json_object_get(st->in, sl_tr_gateway_fields[i])) != NULL &&
            json_object_set(out, sl_tr_gateway_fields[i], v) != 0)
            return SL_ERR_NOMEM;
    if (req->stream && json_object_set_new(out, "stream_options", json_pack("{s:b}", "include_usage", 1)) != 0)
        return SL_ERR_NOMEM;
    st->chat = out;
    return SL_OK;
}

int sl_completions_prepare(struct sl_request *req)
{
    struct cmpl_state *st = req->surface_state;
    int rc;

    /* With guardrails on the request it goes as chat: they read chat
     * messages, and a prompt they cannot read must not pass unmasked. */
    if ((req->dep->provider->endpoints & SL_EP_BIT(SL_EP_COMPLETIONS)) && req->guard == NULL) {
        req->in = st->in;
        req->body = st->body;
        req->body_len = st->body_len;
        req->endpoint = SL_EP_COMPLETIONS;
        req->surface = SL_SURFACE_OPENAI;
        req->include_usage = st->include_usage;
        return SL_OK;
    }
    if (st->chat == NULL && (rc = to_chat(req, st)) != SL_OK)
        return rc;
    req->in = st->chat;
    req->body = NULL;
    req->body_len = 0;
    req->endpoint = SL_EP_CHAT;
    req->surface = SL_SURFACE_COMPLETIONS;
    req->include_usage = 1;     /* usage for spend; the client sees it only if it asked */
    return SL_OK;
}

static const char *completion_id(const struct sl_request *req)
{
    return sl_arena_printf(req->arena, "cmpl-%s", req->id);
}

/* A text_completion object (or chunk) with choices (stolen). */
static json_t *text_completion(struct sl_request *req, const json_t *from, json_t *choices)
{
    const json_t *created = json_object_get(from, "created");

    return json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", completion_id(req), "object", "text_completion",
                     "created", (json_int_t)(json_is_integer(created) ? json_integer_value(created) : 0),
                     "model", req->model, "choices", choices);
}

/* The chat choices as text choices: message.content or delta.content. */
static json_t *text_choices(const json_t *chat_choices, const char *member)
{
    json_t *out = json_array();
    const json_t *c;
    size_t i;

    json_array_foreach(chat_choices, i, c) {
        const char *text = json_string_value(json_object_get(json_object_get(c, member), "content"));
        const json_t *fr = json_object_get(c, "finish_reason");

        json_array_append_new(out, json_pack("{s:s, s:I, s:n, s:O}", "text", text ? text : "",
            "index", json_is_integer(json_object_get(c, "index")) ? json_integer_value(json_object_get(c, "index"))
                                                                 : (json_int_t)i,
            "logprobs", "finish_reason", fr ? fr : json_null()));
    }
    return out;
}

int sl_completions_send_completion(struct sl_request *req, const json_t *completion)
{
    json_t *out = text_completion(req, completion, text_choices(json_object_get(completion, "choices"), "message"));
    int rc;

    if (out == NULL)
        return SL_ERR_NOMEM;
    if (json_is_object(json_object_get(completion, "usage")))
        json_object_set(out, "usage", json_object_get(completion, "usage"));
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

int sl_completions_send_chunk(struct sl_request *req, const json_t *chunk)
{
    struct cmpl_state *st = req->surface_state;
    const json_t *choices = json_object_get(chunk, "choices"), *c;
    json_t *out;
    char *text;
    size_t len, i;
    int any = 0;

    json_array_foreach(choices, i, c) {
        const char *t = json_string_value(json_object_get(json_object_get(c, "delta"), "content"));

        if ((t != NULL && *t != '\0') || json_is_string(json_object_get(c, "finish_reason")))
            any = 1;
    }
    if (json_is_object(json_object_get(chunk, "usage")) && st->include_usage)
        any = 1;
    if (!any)
        return SL_OK;      /* a role-only delta, or usage nobody asked for */
    out = text_completion(req, chunk, text_choices(choices, "delta"));
    if (out == NULL)
        return SL_ERR_NOMEM;
    if (json_is_object(json_object_get(chunk, "usage")) && st->include_usage)
        json_object_set(out, "usage", json_object_get(chunk, "usage"));
    text = sl_json_dump(req->arena, out, &len);
    json_decref(out);
    return text ? sl_respond_sse_data(req, text, len) : SL_ERR_NOMEM;
}

int sl_completions_finish(struct sl_request *req)
{
    if (!req->headers_sent)
        sl_respond_sse_begin(req);
    return sl_respond_sse_done(req);
}

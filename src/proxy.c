/* The LLM call for a routed request: the adapter builds the upstream request,
 * upstream.c performs it, and the answer goes back whole or event by event.
 * Whatever the adapter returns is OpenAI-shaped; this module only puts the
 * client's model name back, collects usage, and decides how errors reach the
 * client: a real HTTP error while nothing was sent, an in-band SSE error
 * event followed by [DONE] once a stream has begun. Nothing is retried here
 * once a byte has reached the client.
 *
 * Replies of OpenAI-wire providers are not parsed and re-serialised: the
 * member scanner (jscan.h) finds "model", "usage" and "choices", the client's
 * model name is spliced in, and usage is read from the scanned ranges; only
 * an in-band error goes to Jansson. Other providers' translated chunks are
 * JSON values, dumped once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "cache.h"
#include "config.h"
#include "guard.h"
#include "jscan.h"
#include "jsonutil.h"
#include "log.h"
#include "prices.h"
#include "proxy.h"
#include "request.h"
#include "respond.h"
#include "responses.h"
#include "router.h"
#include "status.h"
#include "surface.h"
#include "timeouts.h"
#include "upstream.h"

struct stream_state {
    int done;           /* the upstream said [DONE] (or its equivalent) */
    int finished;       /* a choice carried a finish_reason */
    /* The text of a fast-path chunk before its delta text: made once per
     * stream and kind (content, reasoning_content). */
    char  *prefix[2];
    size_t prefix_len[2];
};

/* Reads usage from an OpenAI usage object (borrowed). */
static void take_usage(struct sl_request *req, const json_t *u)
{
    const json_t *d;

    if (!json_is_object(u))
        return;
    req->usage.prompt_tokens = (long)json_integer_value(json_object_get(u, "prompt_tokens"));
    req->usage.completion_tokens = (long)json_integer_value(json_object_get(u, "completion_tokens"));
    req->usage.total_tokens = (long)json_integer_value(json_object_get(u, "total_tokens"));
    d = json_object_get(u, "prompt_tokens_details");
    req->usage.cached_tokens = (long)json_integer_value(json_object_get(d, "cached_tokens"));
    req->usage.cache_write_tokens = (long)json_integer_value(json_object_get(u, "cache_creation_input_tokens"));
    req->usage.seen = 1;
}

/* Usage from an OpenAI usage object's text: four integers, read from the
 * scanned member ranges (a Jansson parse of it costs more than the rest of
 * the chunk's handling together). */
static long int_value(const struct sl_jmember *m)
{
    char digits[24];

    if (m->val_len == 0 || m->val_len >= sizeof(digits))
        return 0;
    memcpy(digits, m->val, m->val_len);
    digits[m->val_len] = '\0';
    return strtol(digits, NULL, 10);
}

static int usage_member(void *ctx, const struct sl_jmember *m)
{
    struct sl_usage *u = ctx;

    if (sl_jscan_key_is(m, "prompt_tokens"))
        u->prompt_tokens = int_value(m);
    else if (sl_jscan_key_is(m, "completion_tokens"))
        u->completion_tokens = int_value(m);
    else if (sl_jscan_key_is(m, "total_tokens"))
        u->total_tokens = int_value(m);
    else if (sl_jscan_key_is(m, "cached_tokens"))
        u->cached_tokens = int_value(m);
    else if (sl_jscan_key_is(m, "cache_creation_input_tokens"))
        u->cache_write_tokens = int_value(m);
    else if (sl_jscan_key_is(m, "prompt_tokens_details") && m->val[0] == '{')
        return sl_jscan_object(m->val, m->val_len, usage_member, ctx) == 0 ? 0 : 1;
    return 0;
}

static void take_usage_text(struct sl_request *req, const struct sl_jmember *m)
{
    struct sl_usage u = { 0 };

    if (m->val[0] == '{' && sl_jscan_object(m->val, m->val_len, usage_member, &u) == 0) {
        u.seen = 1;
        req->usage = u;
    }
}

/* The client's model name as JSON text, made once per request. */
static int model_json(struct sl_request *req)
{
    json_t *v;

    if (req->model_json != NULL)
        return SL_OK;
    if ((v = json_string(req->model)) == NULL)
        return SL_ERR_NOMEM;
    req->model_json = sl_json_dump(req->arena, v, &req->model_json_len);
    json_decref(v);
    return req->model_json != NULL ? SL_OK : SL_ERR_NOMEM;
}

/* What the scanner found in an OpenAI-wire chunk or reply. */
struct wire_view {
    struct sl_jmember model, usage, choices;
    int has_model, has_usage, has_choices, has_error;
};

static int view_member(void *ctx, const struct sl_jmember *m)
{
    struct wire_view *v = ctx;
    int null = sl_jscan_is_null(m->val, m->val_len);

    if (sl_jscan_key_is(m, "model") && m->val_len >= 2 && m->val[0] == '"') {
        v->model = *m;
        v->has_model = 1;
    } else if (sl_jscan_key_is(m, "usage") && !null) {
        v->usage = *m;
        v->has_usage = 1;
    } else if (sl_jscan_key_is(m, "choices")) {
        v->choices = *m;
        v->has_choices = 1;
    } else if (sl_jscan_key_is(m, "error") && !null) {
        v->has_error = 1;
    }
    return 0;
}

static int is_empty_array(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
        i++;
    if (i == n || p[i++] != '[')
        return 0;
    while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
        i++;
    return i == n - 1 && p[i] == ']';
}

/* The three pieces of text with the model value replaced by the client's. */
static void splice(struct sl_request *req, const char *text, size_t len,
                   const struct wire_view *v, const char *piece[3], size_t n[3])
{
    if (!v->has_model) {
        piece[0] = text, n[0] = len;
        piece[1] = piece[2] = NULL, n[1] = n[2] = 0;
        return;
    }
    piece[0] = text, n[0] = (size_t)(v->model.val - text);
    piece[1] = req->model_json, n[1] = req->model_json_len;
    piece[2] = v->model.val + v->model.val_len;
    n[2] = len - n[0] - v->model.val_len;
}

#define SL_NEED_PARSE (-1)   /* the generic path must handle this event */

static int wire_event(struct sl_request *req, const struct sl_sse_event *ev,
                      struct stream_state *st)
{
    struct wire_view v;
    const char *piece[3], *fr;
    size_t n[3];
    int rc;

    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        st->done = 1;
        return SL_OK;
    }
    if (ev->data_len == 0)
        return SL_OK;
    memset(&v, 0, sizeof(v));
    if (sl_jscan_object(ev->data, ev->data_len, view_member, &v) != 0)
        return SL_ERR_UPSTREAM_BAD;
    if (v.has_error)
        return SL_NEED_PARSE;
    sl_cache_keep_text(req, ev->data, ev->data_len, NULL, 0, NULL, 0);
    if (v.has_usage)
        take_usage_text(req, &v.usage);
    if (v.has_choices &&
        (fr = sl_jscan_find_key(v.choices.val, v.choices.val_len, "finish_reason")) != NULL &&
        *fr == '"')
        st->finished = 1;
    if (!req->include_usage && v.has_usage && v.has_choices &&
        is_empty_array(v.choices.val, v.choices.val_len))
        return SL_OK;      /* the usage chunk we asked for on the client's behalf */
    if ((rc = model_json(req)) != SL_OK)
        return rc;
    splice(req, ev->data, ev->data_len, &v, piece, n);
    return sl_respond_sse_data3(req, piece[0], n[0], piece[1], n[1], piece[2], n[2]);
}

/* An OpenAI-wire chunk that is nothing but text, for the Responses API's
 * clients: one choice, index 0, no finish; a delta of content (and
 * perhaps a role) alone. *tok gets the content's string token. Anything
 * else (tool calls, reasoning, usage, an error, a finish) is for the
 * parse. */
struct text_view {
    const char *tok;
    size_t tok_len;
    int other;              /* a member that needs the parse */
};

static int delta_member(void *ctx, const struct sl_jmember *m)
{
    struct text_view *v = ctx;

    if (sl_jscan_key_is(m, "content") && m->val[0] == '"') {
        v->tok = m->val;
        v->tok_len = m->val_len;
    } else if (!sl_jscan_key_is(m, "role") && !sl_jscan_is_null(m->val, m->val_len)) {
        v->other = 1;
    }
    return 0;
}

static int choice_member(void *ctx, const struct sl_jmember *m)
{
    struct text_view *v = ctx;

    if (sl_jscan_key_is(m, "delta") && m->val[0] == '{')
        return sl_jscan_object(m->val, m->val_len, delta_member, v) != 0;
    if (sl_jscan_key_is(m, "index"))
        v->other |= !(m->val_len == 1 && m->val[0] == '0');
    else if (!sl_jscan_is_null(m->val, m->val_len))
        v->other = 1;       /* a finish_reason, logprobs, ... */
    return 0;
}

static int wire_text_delta(const struct sl_sse_event *ev, const char **tok, size_t *tok_len)
{
    struct wire_view w;
    struct text_view v = { NULL, 0, 0 };
    const char *p, *end;

    memset(&w, 0, sizeof(w));
    if (ev->data_len < 2 || ev->data[0] != '{' ||
        sl_jscan_object(ev->data, ev->data_len, view_member, &w) != 0 || w.has_error || w.has_usage ||
        !w.has_choices)
        return 0;
    /* choices: exactly one object */
    p = w.choices.val;
    end = p + w.choices.val_len;
    if (*p++ != '[')
        return 0;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    while (end > p && end[-1] != ']')
        end--;
    if (end <= p)
        return 0;
    end--;                                  /* the ']' */
    while (end > p && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\r' || end[-1] == '\t'))
        end--;
    if (p >= end || *p != '{' ||
        sl_jscan_object(p, (size_t)(end - p), choice_member, &v) != 0 || v.other || v.tok == NULL)
        return 0;                           /* two choices fail the scan: the parse takes them */
    *tok = v.tok;
    *tok_len = v.tok_len;
    return 1;
}

/* Sends one OpenAI chunk to the client, or swallows the usage-only chunk we
 * asked for on the client's behalf. */
static int send_chunk(struct sl_request *req, json_t *chunk, struct stream_state *st)
{
    const json_t *choices = json_object_get(chunk, "choices");
    size_t i, len;
    json_t *c;
    char *text;
    int rc;

    take_usage(req, json_object_get(chunk, "usage"));
    if (sl_guard_on_answer(req) && (rc = sl_guard_chunk(req, chunk)) != SL_OK)
        return rc;
    sl_cache_keep_json(req, chunk);
    json_array_foreach(choices, i, c)
        if (json_is_string(json_object_get(c, "finish_reason")))
            st->finished = 1;
    if (req->surface != SL_SURFACE_OPENAI)
        return sl_surface_send_chunk(req, chunk);
    if (!req->include_usage && json_is_array(choices) && json_array_size(choices) == 0 &&
        json_object_get(chunk, "usage") != NULL)
        return SL_OK;
    if (json_object_get(chunk, "model") != NULL &&
        json_object_set_new(chunk, "model", json_string(req->model)) != 0)
        return SL_ERR_NOMEM;
    if ((text = sl_json_dump(req->arena, chunk, &len)) == NULL)
        return SL_ERR_NOMEM;
    return sl_respond_sse_data(req, text, len);
}

/* A text delta the adapter recognised without parsing (provider.h's
 * fast_delta): the chunk is the prefix made once, the text token as the
 * provider sent it, and a fixed tail; what Jansson would make of the same
 * chunk, without a parse or a dump per event. */
static int fast_chunk(struct sl_request *req, struct stream_state *st, const struct sl_fast_delta *fd)
{
    static const char tail[] = "},\"finish_reason\":null,\"logprobs\":null}]}";
    int k = fd->reasoning ? 1 : 0, rc;

    if (st->prefix[k] == NULL) {
        json_t *id = json_string(fd->id);
        const char *idj;
        size_t idlen;

        if ((rc = model_json(req)) != SL_OK)
            return rc;
        idj = id ? sl_json_dump(req->arena, id, &idlen) : NULL;
        json_decref(id);
        st->prefix[k] = idj ? sl_arena_printf(req->arena,
            "{\"id\":%s,\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":%s,"
            "\"choices\":[{\"index\":0,\"delta\":{\"%s\":", idj, fd->created, req->model_json,
            k ? "reasoning_content" : "content") : NULL;
        if (st->prefix[k] == NULL)
            return SL_ERR_NOMEM;
        st->prefix_len[k] = strlen(st->prefix[k]);
    }
    sl_cache_keep_text(req, st->prefix[k], st->prefix_len[k], fd->text, fd->text_len,
                       tail, sizeof(tail) - 1);
    return sl_respond_sse_data3(req, st->prefix[k], st->prefix_len[k], fd->text, fd->text_len,
                                tail, sizeof(tail) - 1);
}

static int on_event(struct sl_request *req, const struct sl_sse_event *ev, void *ctx)
{
    struct stream_state *st = ctx;
    json_t *out = NULL;
    int done = 0, rc;

    if (st->done)
        return SL_OK;     /* anything after the end is ignored */
    if (req->endpoint == SL_EP_SPEECH)    /* audio, as it comes */
        return sl_respond_bytes(req, req->upstream_ctype ? req->upstream_ctype : "application/octet-stream",
                                ev->data, ev->data_len);
    if (sl_responses_native(req)) {
        rc = sl_responses_native_event(req, ev, &done);
        st->done = done;
        return rc;
    }
    /* The splice fast path writes OpenAI's format; Anthropic's clients get
     * every chunk converted (messages.c). */
    if ((req->dep->provider->flags & SL_PROVIDER_OPENAI_WIRE) && req->surface == SL_SURFACE_OPENAI &&
        !sl_guard_on_answer(req)) {
        rc = wire_event(req, ev, st);
        if (rc != SL_NEED_PARSE)
            return rc;
    }
    if (req->dep->provider->fast_delta != NULL && req->surface == SL_SURFACE_OPENAI &&
        !sl_guard_on_answer(req)) {
        struct sl_fast_delta fd;

        if (req->dep->provider->fast_delta(req, ev, &fd))
            return fast_chunk(req, st, &fd);
    }
    /* The same for the Responses API's clients, unless the cache keeps
     * the answer (it keeps chat chunks): the adapter's fast path, or for
     * OpenAI-wire providers a scan of the chunk. */
    if (req->surface == SL_SURFACE_RESPONSES && req->cache == NULL && !sl_guard_on_answer(req)) {
        struct sl_fast_delta fd;
        const char *tok;
        size_t tok_len;

        if (req->dep->provider->fast_delta != NULL && req->dep->provider->fast_delta(req, ev, &fd))
            return sl_responses_fast_text(req, fd.text, fd.text_len, fd.reasoning);
        if ((req->dep->provider->flags & SL_PROVIDER_OPENAI_WIRE) && wire_text_delta(ev, &tok, &tok_len))
            return sl_responses_fast_text(req, tok, tok_len, 0);
    }
    rc = req->dep->provider->parse_stream_event(req, ev, &out, &done);
    if (rc == SL_OK && out != NULL) {
        if (json_is_array(out)) {
            size_t i;
            json_t *c;

            json_array_foreach(out, i, c)
                if ((rc = send_chunk(req, c, st)) != SL_OK)
                    break;
        } else {
            rc = send_chunk(req, out, st);
        }
    }
    json_decref(out);
    if (done)
        st->done = 1;
    return rc;
}

static int on_flush(struct sl_request *req, void *ctx)
{
    (void)ctx;
    return req->headers_sent ? sl_respond_flush(req) : SL_OK;
}

static int on_idle(struct sl_request *req, void *ctx)
{
    (void)ctx;
    if (req->endpoint == SL_EP_SPEECH)
        return SL_OK;       /* a comment line would corrupt the audio */
    return sl_respond_sse_ping(req);
}

/* What the routes priced per unit were billed in (prices.h): the images
 * asked for, the characters spoken, one search; a transcript's seconds
 * come from its answer (transcript_usage). */
static void billed_units(struct sl_request *req)
{
    const json_t *n;
    const char *s;

    switch (req->endpoint) {
    case SL_EP_IMAGES:
        n = json_object_get(req->in, "n");
        req->usage.units = json_is_integer(n) && json_integer_value(n) > 0 ? (long)json_integer_value(n) : 1;
        break;
    case SL_EP_SPEECH:
        req->usage.units = 0;
        for (s = json_string_value(json_object_get(req->in, "input")); s != NULL && *s; s++)
            req->usage.units += ((unsigned char)*s & 0xc0) != 0x80;     /* characters, not bytes */
        break;
    case SL_EP_RERANK:
        if (req->usage.units == 0)
            req->usage.units = 1;
        break;
    default:
        return;
    }
    req->usage.seen = 1;
}

/* A transcript's usage: {"type": "duration", "seconds"} (whisper), its
 * tokens (gpt-4o-transcribe), or verbose_json's duration. Text formats say
 * nothing: the cost stays unknown. */
static void transcript_usage(struct sl_request *req, const char *body, size_t len)
{
    const char *why;
    json_t *v = sl_json_parse(body, len, &why);
    const json_t *u = json_object_get(v, "usage"), *d;
    double secs = -1;

    if (json_is_number(d = json_object_get(u, "seconds")))
        secs = json_number_value(d);
    else if (json_is_number(d = json_object_get(v, "duration")))
        secs = json_number_value(d);
    if (secs >= 0 && secs < 1e7) {
        req->usage.units = (long)secs + (secs > (double)(long)secs);    /* whole seconds, rounded up */
        req->usage.seen = 1;
    }
    if (json_is_integer(json_object_get(u, "input_tokens"))) {
        req->usage.prompt_tokens = (long)json_integer_value(json_object_get(u, "input_tokens"));
        req->usage.completion_tokens = (long)json_integer_value(json_object_get(u, "output_tokens"));
        req->usage.total_tokens = (long)json_integer_value(json_object_get(u, "total_tokens"));
        req->usage.seen = 1;
    }
    json_decref(v);
}

/* What the call cost, once usage is known; a whole reply also carries it
 * in LiteLLM's x-litellm-response-cost header. */
static void price(struct sl_request *req)
{
    char v[32];

    billed_units(req);
    if (!req->usage.seen)
        return;
    req->cost = sl_price_cost(req->dep, &req->usage, &req->cost_known);
    if (req->cost_known && !req->headers_sent) {
        snprintf(v, sizeof(v), "%.10g", req->cost);
        sl_respond_header(req, "x-litellm-response-cost", v);
    }
}

/* The upstream answered with an error status: map it and pass it on. */
/* An upstream's error reply as an OpenAI-shaped error (the adapter's
 * map_error first). */
static void map_upstream_error(struct sl_request *req, struct sl_upstream_res *res, struct sl_error *e)
{
    const struct sl_provider *p = req->dep->provider;
    const char *why;
    json_t *body = res->body.len ? sl_json_parse(res->body.data, res->body.len, &why) : NULL;

    memset(e, 0, sizeof(*e));
    e->http_status = (int)res->status;
    if (p->map_error != NULL)
        p->map_error(req, res->status, body, e);
    json_decref(body);
    if (e->http_status < 400 || e->http_status > 599)
        e->http_status = res->status >= 400 && res->status <= 599 ? (int)res->status : 502;
    if (e->message == NULL)
        e->message = sl_arena_printf(req->arena, "The upstream provider returned HTTP %ld.", res->status);
    if (e->type == NULL)
        e->type = e->http_status == 429 ? "rate_limit_error"
                : e->http_status >= 500 ? "api_error" : "invalid_request_error";
}

static int upstream_error(struct sl_request *req, struct sl_upstream_res *res)
{
    struct sl_error e;

    map_upstream_error(req, res, &e);
    if (res->retry_after != NULL)
        sl_respond_header(req, "retry-after", res->retry_after);
    req->upstream_err = e;
    return sl_respond_error_obj(req, &e);
}

static int has(const char *s, const char *what)
{
    return s != NULL && strcasestr(s, what) != NULL;
}

/* Why an attempt failed, for the router (0: it did not fail in a way the
 * router acts on, such as the client leaving). */
static int classify(struct sl_request *req, int rc, struct sl_upstream_res *res)
{
    struct sl_error e;
    int st;

    switch (rc) {
    case SL_OK: break;
    case SL_ERR_UPSTREAM_TIMEOUT: return SL_FAIL_TIMEOUT;
    case SL_ERR_UPSTREAM_CONNECT: return SL_FAIL_CONNECT;
    case SL_ERR_UPSTREAM_BAD: return SL_FAIL_SERVER;
    case SL_ERR_UPSTREAM_STATUS:
        if (req->upstream_err.message == NULL)
            return SL_FAIL_SERVER;
        break;
    default: return 0;
    }
    if (rc == SL_OK)
        map_upstream_error(req, res, &e);
    else
        e = req->upstream_err;
    st = e.http_status;
    if (st == 429)
        return SL_FAIL_RATE_LIMIT;
    if (st == 401 || st == 403)
        return SL_FAIL_AUTH;
    if (st == 404)
        return SL_FAIL_NOT_FOUND;
    if (st == 408)
        return SL_FAIL_TIMEOUT;
    if (st >= 500)
        return SL_FAIL_SERVER;
    if (has(e.code, "context_length") || has(e.message, "context length") ||
        has(e.message, "context window") || has(e.message, "prompt is too long") ||
        has(e.message, "maximum context"))
        return SL_FAIL_CONTEXT_WINDOW;
    if (has(e.code, "content_policy") || has(e.code, "content_filter") ||
        has(e.message, "content management policy") || has(e.message, "content policy"))
        return SL_FAIL_CONTENT_POLICY;
    return SL_FAIL_BAD_REQUEST;
}

/* The upstream's retry-after in ms (seconds, fractions allowed), or -1. */
static long retry_after_ms(const struct sl_upstream_res *res)
{
    char *end;
    double s;

    if (res->retry_after == NULL)
        return -1;
    s = strtod(res->retry_after, &end);
    if (end == res->retry_after || *end != '\0' || !(s >= 0) || s > 86400)
        return -1;      /* an HTTP date, or nonsense: not used */
    return (long)(s * 1000.0);
}

/* Waits ms before a retry, in short slices, unless the client leaves
 * (then SL_ERR_CLIENT_GONE). */
static int pause_for_retry(struct sl_request *req, long ms)
{
    while (ms > 0) {
        long slice = ms < 100 ? ms : 100;
        struct timespec ts = { slice / 1000, (slice % 1000) * 1000000L };

        if (sl_upstream_client_gone(req))
            return SL_ERR_CLIENT_GONE;
        nanosleep(&ts, NULL);
        ms -= slice;
    }
    return SL_OK;
}

static int whole_reply(struct sl_request *req, struct sl_upstream_res *res)
{
    const char *body = res->body.data ? res->body.data : "";
    json_t *out = NULL;
    int rc;

    if (req->endpoint == SL_EP_TRANSCRIPTIONS) {   /* JSON or text (srt, vtt, ...): as it came */
        transcript_usage(req, body, res->body.len);
        price(req);
        return sl_respond_raw(req, 200, req->upstream_ctype ? req->upstream_ctype : "application/json",
                              body, res->body.len);
    }
    if (sl_responses_native(req)) {
        if ((rc = sl_responses_native_reply(req, body, res->body.len, &out)) != SL_OK)
            return sl_respond_error(req, rc, NULL);
        price(req);
        rc = sl_respond_json(req, 200, out);
        json_decref(out);
        return rc;
    }
    if ((req->dep->provider->flags & SL_PROVIDER_OPENAI_WIRE) && req->surface == SL_SURFACE_OPENAI &&
        !sl_guard_on_answer(req)) {
        struct wire_view v;
        const char *piece[3];
        size_t n[3];

        memset(&v, 0, sizeof(v));
        if (sl_jscan_object(body, res->body.len, view_member, &v) != 0)
            return sl_respond_error(req, SL_ERR_UPSTREAM_BAD, NULL);
        if (v.has_usage)
            take_usage_text(req, &v.usage);
        price(req);
        if ((rc = model_json(req)) != SL_OK)
            return sl_respond_error(req, rc, NULL);
        splice(req, body, res->body.len, &v, piece, n);
        sl_cache_keep_text(req, piece[0], n[0], piece[1], n[1], piece[2], n[2]);
        return sl_respond_json_text(req, 200, piece[0], n[0], piece[1], n[1], piece[2], n[2]);
    }
    rc = req->dep->provider->parse_response(req, body, res->body.len, &out);
    if (rc == SL_ERR_UPSTREAM_STATUS && req->upstream_err.message != NULL)
        return sl_respond_error_obj(req, &req->upstream_err);   /* a refusal in a 200 */
    if (rc != SL_OK)
        return sl_respond_error(req, rc, NULL);
    take_usage(req, json_object_get(out, "usage"));
    price(req);
    if (sl_guard_on_answer(req) && (rc = sl_guard_answer(req, out)) != SL_OK) {
        json_decref(out);
        return sl_respond_error(req, rc, NULL);
    }
    sl_cache_keep_json(req, out);
    if (req->surface != SL_SURFACE_OPENAI) {
        rc = sl_surface_send_completion(req, out);
        json_decref(out);
        return rc == SL_OK ? SL_OK : sl_respond_error(req, rc, NULL);
    }
    if (json_object_get(out, "model") != NULL)
        json_object_set_new(out, "model", json_string(req->model));
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

/* Text a guardrail still held when the stream ended without the choice's
 * finish_reason: one more chunk. */
static int guard_tail(struct sl_request *req)
{
    json_t *c = sl_guard_stream_end(req);
    char *text;
    size_t len;
    int rc;

    if (c == NULL)
        return SL_OK;
    if (req->surface != SL_SURFACE_OPENAI)
        rc = sl_surface_send_chunk(req, c);
    else if ((text = sl_json_dump(req->arena, c, &len)) == NULL)
        rc = SL_ERR_NOMEM;
    else
        rc = sl_respond_sse_data(req, text, len);
    json_decref(c);
    return rc;
}

static int end_stream(struct sl_request *req, const struct stream_state *st)
{
    int rc;

    if (req->endpoint == SL_EP_SPEECH) {  /* the audio ended: all of it went out */
        price(req);
        if (!req->headers_sent)
            return sl_respond_raw(req, 200, req->upstream_ctype ? req->upstream_ctype : "application/octet-stream",
                                  "", 0);
        return sl_respond_flush(req);
    }
    price(req);   /* for the log: the headers went out long ago */
    if ((st->done || st->finished) && sl_guard_on_answer(req) && (rc = guard_tail(req)) != SL_OK)
        return rc;
    /* A clean close after a finish_reason but without [DONE]: some
     * compatible servers do that; the client still gets a proper end. */
    if (st->done && sl_responses_native(req))
        return SL_OK;      /* the upstream's last event went out as it came */
    if ((st->done || st->finished) && req->surface != SL_SURFACE_OPENAI && !sl_responses_native(req))
        return sl_surface_finish(req);
    if (st->done || st->finished) {
        if (!req->headers_sent)
            sl_respond_sse_begin(req);
        return sl_respond_sse_done(req);
    }
    req->err_msg = "The upstream provider closed the stream before it was complete.";
    return sl_respond_error(req, SL_ERR_UPSTREAM_BAD, NULL);
}

static void add_model_headers(struct sl_request *req)
{
    sl_respond_header(req, "x-litellm-call-id", req->id);
    sl_router_headers(req);
}

/* One attempt, from a clean slate: the response headers of an earlier
 * attempt go (nothing was sent yet), the adapter's state too. */
static void fresh_attempt(struct sl_request *req, size_t headers, struct stream_state *st)
{
    req->n_resp_headers = headers;
    req->pstate = NULL;
    memset(&req->upstream_err, 0, sizeof(req->upstream_err));
    memset(&req->usage, 0, sizeof(req->usage));
    req->t_first_byte_us = 0;
    req->upstream_ctype = NULL;
    memset(st, 0, sizeof(*st));
    add_model_headers(req);
}

int sl_proxy_call(struct sl_request *req)
{
    const struct sl_provider *p;
    struct sl_upstream_req up;
    struct sl_upstream_res res;
    struct sl_timeouts tmo;
    struct stream_state st = { 0 };
    struct sl_upstream_cb cb = { .on_event = on_event, .on_flush = on_flush,
                                 .on_idle = on_idle, .ctx = &st };
    size_t headers = req->n_resp_headers;
    int rc, ok;

    req->llm_called = 1;
    for (;;) {
        struct sl_attempt *at;
        long wait;
        int why;

        p = req->dep->provider;
        /* native or as chat, for this deployment */
        rc = req->surface == SL_SURFACE_RESPONSES ? sl_responses_prepare(req)
           : req->legacy ? sl_completions_prepare(req) : SL_OK;
        if (rc != SL_OK)
            return sl_respond_error(req, rc, NULL);
        if (!(p->endpoints & SL_EP_BIT(req->endpoint)) || p->build_request == NULL) {
            req->err_msg = sl_arena_printf(req->arena, "model=%.200s (provider %s) does not "
                                           "support this endpoint.", req->model, p->name);
            return sl_respond_error(req, SL_ERR_UNSUPPORTED, NULL);
        }
        fresh_attempt(req, headers, &st);
        memset(&up, 0, sizeof(up));
        req->stage = "build";
        if ((rc = p->build_request(req, req->in, &up)) != SL_OK)
            return sl_respond_error(req, rc, NULL);
        req->stage = "upstream";
        sl_timeouts_for(req, &tmo);     /* timeouts.c: this attempt's limits */
        at = sl_request_new_attempt(req);
        at->dep = req->dep;
        at->group = req->route.group ? sl_router_group_name(req->route.group) : req->dep->model_name;
        at->t0_us = sl_now_us();
        rc = sl_upstream_perform_timed(req, &up, req->stream, &tmo, &cb, &res);
        at->t1_us = sl_now_us();
        at->ttfb_us = res.t_first_byte_us;
        at->status = (int)res.status;
        req->t_first_byte_us = res.t_first_byte_us;
        ok = rc == SL_OK && res.status >= 200 && res.status <= 299;
        why = ok ? 0 : classify(req, rc, &res);
        at->fail = why;
        at->aborted = rc == SL_ERR_CLIENT_GONE || req->client_gone;
        /* A failure before the first byte to the client may be retried
         * (router.c decides where); after it, never. */
        if (ok || req->headers_sent || req->client_gone ||
            sl_router_next(req, why, retry_after_ms(&res), &wait) != SL_OK)
            break;
        sl_buf_free(&res.body);
        req->stage = "retry";
        if ((rc = pause_for_retry(req, wait)) != SL_OK) {
            req->client_gone = 1;
            return rc;
        }
    }
    req->stage = "respond";
    if (rc == SL_ERR_UPSTREAM_STATUS && req->upstream_err.message != NULL)
        rc = sl_respond_error_obj(req, &req->upstream_err);   /* in-band upstream error */
    else if (rc != SL_OK)
        rc = sl_respond_error(req, rc, NULL);
    else if (res.status < 200 || res.status > 299)
        rc = upstream_error(req, &res);
    else if (!req->stream)
        rc = whole_reply(req, &res);
    else
        rc = end_stream(req, &st);
    sl_router_release(req, ok);
    sl_buf_free(&res.body);
    return rc;
}

int sl_proxy_count_tokens(struct sl_request *req)
{
    static const struct sl_upstream_cb no_cb = { 0 };
    const struct sl_provider *p = req->dep->provider;
    struct sl_upstream_req up = { 0 };
    struct sl_upstream_res res;
    json_t *v = NULL, *n;
    const char *why;
    int rc;

    if (p->build_count_tokens == NULL)
        return SL_ERR_UNSUPPORTED;
    add_model_headers(req);
    req->stage = "build";
    if ((rc = p->build_count_tokens(req, req->in, &up)) != SL_OK)
        return sl_respond_error(req, rc, NULL);
    req->stage = "upstream";
    rc = sl_upstream_perform(req, &up, 0, req->dep->timeout_ms, &no_cb, &res);
    req->stage = "respond";
    if (rc != SL_OK) {
        rc = sl_respond_error(req, rc, NULL);
    } else if (res.status < 200 || res.status > 299) {
        rc = upstream_error(req, &res);
    } else if ((v = sl_json_parse(res.body.data ? res.body.data : "", res.body.len, &why)) == NULL ||
               !json_is_integer(n = json_object_get(v, "input_tokens")) || json_integer_value(n) < 0) {
        rc = sl_respond_error(req, SL_ERR_UPSTREAM_BAD, NULL);
    } else {
        json_t *out = json_pack("{s:O}", "input_tokens", n);

        rc = out ? sl_respond_json(req, 200, out) : sl_respond_error(req, SL_ERR_NOMEM, NULL);
        json_decref(out);
    }
    json_decref(v);
    sl_buf_free(&res.body);
    return rc;
}

/* The OpenAI Responses surface (src/responses.c), driven by case folders
 * under tests/data/responses/<case>/:
 *   deployment.json      {"model": "anthropic/x"}: the routed deployment (its provider
 *                        decides between pass-through and translation)
 *   fallback.json        optional: the deployment of a second attempt, after the first
 *                        one's failed; the answers then come from it
 *   client.json          the Responses request the client sent
 *   expected_chat.json   optional: the chat completions request it becomes (for a
 *                        deployment without the Responses API)
 *   build_error          optional: validation or the conversion for the deployment must
 *                        refuse it with a 400 whose message contains this text
 *   completion.json      optional: a chat completion; expected.json is then the
 *                        Response the client gets
 *   chunks.json          optional: chat chunks of a stream; expected_events.json is
 *                        then [[event name, data], ...] the client gets, end included
 *   response.json        optional (pass-through): the upstream's Response; expected.json
 *                        is then what the client gets
 *   native.sse           optional (pass-through): the upstream's Responses event stream;
 *                        expected_events.json is then what the client gets
 *   stream_error.json    optional: {"status", "type", "message", "code"}: after the chunks
 *                        or the native events, the stream fails with this error instead
 *                        of ending
 *   expected_usage.json  optional: {"prompt_tokens", "completion_tokens", "total_tokens",
 *                        "cached_tokens"} taken from a passed-through answer
 * Every event must be named by its "type" and carry a sequence_number counting
 * up from 0; the numbers are checked here and left out of the comparison. Ids
 * ("resp_", "msg_", "fc_", "rs_", made from the request id in translated answers)
 * are checked for their prefix only, and created_at for being a time (written 0);
 * events passed through must go on byte for byte, which is checked here too. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "arena.h"
#include "config.h"
#include "framing.h"
#include "jsonutil.h"
#include "provider.h"
#include "request.h"
#include "responses.h"
#include "status.h"
#include "tap.h"
#include "cases.h"
#include "memconn.h"

/* A whole file in the arena, NUL-terminated; NULL if absent. */
static char *slurp(const char *dir, const char *name, struct sl_arena *a, size_t *len)
{
    char path[4096], *p = NULL;
    FILE *f;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = sl_arena_alloc(a, (size_t)n + 1)) != NULL) {
        *len = fread(p, 1, (size_t)n, f);
        p[*len] = '\0';
    }
    fclose(f);
    return p;
}

/* Ids the gateway makes from the request id: only their prefix is checked. */
static void scrub_ids(json_t *v)
{
    static const char *const prefixes[] = { "resp_", "msg_", "fc_", "rs_", NULL };
    const char *key;
    json_t *x;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, key, x) {
            int is_id = strcmp(key, "id") == 0 || strcmp(key, "item_id") == 0;

            for (i = 0; is_id && json_is_string(x) && prefixes[i] != NULL; i++)
                if (strncmp(json_string_value(x), prefixes[i], strlen(prefixes[i])) == 0) {
                    char star[16];

                    snprintf(star, sizeof(star), "%s*", prefixes[i]);
                    json_object_set_new(v, key, json_string(star));
                    break;
                }
            if (strcmp(key, "created_at") == 0)
                json_object_set_new(v, key, json_is_integer(x) && json_integer_value(x) > 1000000000
                                                ? json_integer(0) : json_string("not a time"));
            else if (!is_id)
                scrub_ids(x);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            scrub_ids(x);
    }
}

/* Compares and releases got. */
static void same(const char *name, const char *what, json_t *got, json_t *want)
{
    char label[1024];

    snprintf(label, sizeof(label), "%s: %s", name, what);
    if (!ok(want != NULL && json_equal(got, want), label)) {
        const json_t *g1 = got, *w1 = want;
        char *g, *w;
        size_t i = 0;

        /* Events: the first one that differs. */
        if (json_is_array(got) && json_is_array(want)) {
            while (i < json_array_size(got) && json_equal(json_array_get(got, i), json_array_get(want, i)))
                i++;
            g1 = json_array_get(got, i);
            w1 = json_array_get(want, i);
            printf("#   from element %zu\n", i);
        }
        g = json_dumps(g1, JSON_COMPACT | JSON_ENCODE_ANY);
        w = json_dumps(w1, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("#   got  %s\n#   want %s\n", g ? g : "(null)", w ? w : "(null: missing expected file?)");
        free(g);
        free(w);
    }
    json_decref(got);
}

/* Each event named by its type, its sequence_number counting up from 0
 * (then removed, as the expected files leave it out). */
static void check_sequence(const char *name, json_t *events)
{
    char label[1024];
    json_t *e;
    size_t i;
    int good = json_array_size(events) > 0;

    json_array_foreach(events, i, e) {
        const char *ev = json_string_value(json_array_get(e, 0));
        json_t *data = json_array_get(e, 1), *seq = json_object_get(data, "sequence_number");

        if (good && (ev == NULL || !json_is_string(json_object_get(data, "type")) ||
                     strcmp(ev, json_string_value(json_object_get(data, "type"))) != 0 ||
                     !json_is_integer(seq) || json_integer_value(seq) != (json_int_t)i)) {
            printf("#   event %zu (%s): type or sequence_number out of line\n", i, ev ? ev : "?");
            good = 0;
        }
        json_object_del(data, "sequence_number");
    }
    snprintf(label, sizeof(label), "%s: events named by type, sequence_number from 0", name);
    ok(good, label);
}

static void check_usage(const char *dir, const char *name, const struct sl_request *req)
{
    json_t *want = case_json(dir, "expected_usage.json");

    if (want == NULL)
        return;
    same(name, "usage taken", json_pack("{s:I, s:I, s:I, s:I}",
         "prompt_tokens", (json_int_t)req->usage.prompt_tokens,
         "completion_tokens", (json_int_t)req->usage.completion_tokens,
         "total_tokens", (json_int_t)req->usage.total_tokens,
         "cached_tokens", (json_int_t)req->usage.cached_tokens), want);
    json_decref(want);
}

/* stream_error.json, if the case has one, in place of the stream's end. */
static int stream_error(struct sl_request *req, const json_t *e)
{
    return sl_responses_stream_error(req, (int)json_integer_value(json_object_get(e, "status")),
                                     json_string_value(json_object_get(e, "type")),
                                     json_string_value(json_object_get(e, "message")),
                                     json_string_value(json_object_get(e, "code")));
}

/* The attempt's form: the client's body for a deployment that speaks the
 * Responses API, the chat form for the others. */
static void check_form(const char *name, const struct sl_request *req, const json_t *client, const char *text)
{
    int native = (req->dep->provider->endpoints & SL_EP_BIT(SL_EP_RESPONSES)) != 0;
    char label[1024];

    snprintf(label, sizeof(label), "%s: %s", name, native ? "passed through" : "sent as chat");
    if (native)
        ok(sl_responses_native(req) && req->endpoint == SL_EP_RESPONSES && req->in == client &&
           req->body == text && req->include_usage == 0, label);
    else
        ok(!sl_responses_native(req) && req->endpoint == SL_EP_CHAT && req->in != client && req->body == NULL &&
           req->include_usage == 1, label);
}

static void run_completion(const char *dir, const char *name, struct sl_request *req, struct memconn *mc)
{
    json_t *v = case_json(dir, "completion.json"), *want, *got;
    char label[1024];
    int rc;

    if (v == NULL)
        return;
    want = case_json(dir, "expected.json");
    case_usage(req, json_object_get(v, "usage"));
    rc = sl_responses_send_completion(req, v);
    snprintf(label, sizeof(label), "%s: completion sent", name);
    is_int(rc, SL_OK, label);
    got = json_loads(case_body(mc), 0, NULL);
    scrub_ids(got);
    same(name, "Response", got, want);
    json_decref(want);
    json_decref(v);
}

static void run_chunks(const char *dir, const char *name, struct sl_request *req, struct memconn *mc)
{
    json_t *v = case_json(dir, "chunks.json"), *err = case_json(dir, "stream_error.json"), *want, *c, *got;
    char label[1024];
    size_t i;
    int rc = SL_OK;

    if (v == NULL)
        goto out;
    want = case_json(dir, "expected_events.json");
    json_array_foreach(v, i, c) {
        case_usage(req, json_object_get(c, "usage"));
        if (rc == SL_OK)
            rc = sl_responses_send_chunk(req, c);
    }
    if (rc == SL_OK)
        rc = err ? stream_error(req, err) : sl_responses_finish(req);
    snprintf(label, sizeof(label), "%s: stream sent", name);
    is_int(rc, SL_OK, label);
    got = case_events(case_body(mc));
    check_sequence(name, got);
    scrub_ids(got);
    same(name, "Responses events", got, want);
    json_decref(want);
out:
    json_decref(v);
    json_decref(err);
}

static void run_native_reply(const char *dir, const char *name, struct sl_request *req, struct sl_arena *a)
{
    size_t len = 0;
    char *body = slurp(dir, "response.json", a, &len), label[1024];
    json_t *out = NULL, *want;
    int rc;

    if (body == NULL)
        return;
    want = case_json(dir, "expected.json");
    rc = sl_responses_native_reply(req, body, len, &out);
    snprintf(label, sizeof(label), "%s: native reply", name);
    is_int(rc, SL_OK, label);
    scrub_ids(out);
    same(name, "Response passed on", out, want);
    json_decref(want);
    check_usage(dir, name, req);
}

struct native_ctx {
    struct sl_request *req;
    struct memconn *mc;
    int verbatim;        /* every one-line event without the response went on unchanged */
    int done_right;      /* *done set at the last events and only there */
    int done;
};

static int is_last_type(const char *t)
{
    return strcmp(t, "response.completed") == 0 || strcmp(t, "response.incomplete") == 0 ||
           strcmp(t, "response.failed") == 0;
}

/* out[0..n) is "event: <t>\ndata: <the event's data>\n\n". */
static int as_it_came(const char *out, size_t n, const char *t, const struct sl_sse_event *ev)
{
    size_t tl = strlen(t);

    return n == 7 + tl + 7 + ev->data_len + 2 && memcmp(out, "event: ", 7) == 0 && memcmp(out + 7, t, tl) == 0 &&
           memcmp(out + 7 + tl, "\ndata: ", 7) == 0 && memcmp(out + 14 + tl, ev->data, ev->data_len) == 0 &&
           memcmp(out + 14 + tl + ev->data_len, "\n\n", 2) == 0;
}

static int on_native(void *p, const struct sl_sse_event *ev)
{
    struct native_ctx *nc = p;
    size_t before = nc->mc->out.len;
    json_t *v = json_loadb(ev->data, ev->data_len, 0, NULL);
    const char *t = json_string_value(json_object_get(v, "type"));
    int rc = sl_responses_native_event(nc->req, ev, &nc->done);

    if (t != NULL && rc == SL_OK) {
        int carries = json_is_object(json_object_get(v, "response"));
        const char *out = nc->mc->out.data + before;
        size_t n = nc->mc->out.len - before;

        /* Headers may precede the first event. */
        if (before == 0 && strstr(nc->mc->out.data, "\r\n\r\n") != NULL) {
            out = case_body(nc->mc);
            n = nc->mc->out.len - (size_t)(out - nc->mc->out.data);
        }
        /* Data over several lines is written again on one. */
        if (!carries && memchr(ev->data, '\n', ev->data_len) == NULL && !as_it_came(out, n, t, ev)) {
            printf("#   %s was not passed on as it came\n", t);
            nc->verbatim = 0;
        }
        if (nc->done != is_last_type(t)) {
            printf("#   %s: done %d\n", t, nc->done);
            nc->done_right = 0;
        }
    }
    json_decref(v);
    return rc;
}

static void run_native_sse(const char *dir, const char *name, struct sl_request *req, struct memconn *mc,
                           struct sl_arena *a)
{
    struct native_ctx nc = { req, mc, 1, 1, 0 };
    struct sl_framer f;
    size_t len = 0;
    char *sse = slurp(dir, "native.sse", a, &len), label[1024];
    json_t *err = case_json(dir, "stream_error.json"), *want, *got;
    int rc;

    if (sse == NULL)
        goto out;
    want = case_json(dir, "expected_events.json");
    sl_framer_init(&f, SL_FRAMING_SSE);
    rc = sl_framer_feed(&f, sse, len, on_native, &nc);
    if (rc == SL_OK)
        rc = sl_framer_finish(&f, on_native, &nc);
    sl_framer_free(&f);
    if (rc == SL_OK && err != NULL)
        rc = stream_error(req, err);
    snprintf(label, sizeof(label), "%s: native stream sent", name);
    is_int(rc, SL_OK, label);
    snprintf(label, sizeof(label), "%s: events without the response passed on as they came", name);
    ok(nc.verbatim, label);
    snprintf(label, sizeof(label), "%s: done at the last event only", name);
    ok(nc.done_right, label);
    got = case_events(case_body(mc));
    check_sequence(name, got);
    scrub_ids(got);
    same(name, "Responses events", got, want);
    json_decref(want);
    check_usage(dir, name, req);
out:
    json_decref(err);
}

/* Validation and the form for the routed deployment, as request.c and then
 * proxy.c (again, for the first attempt; then for the fallback's, if next)
 * run them: SL_OK when the case goes on to its answers. */
static int convert(const char *dir, const char *name, struct sl_request *req, const struct sl_deployment *next)
{
    char *build_error = case_line(dir, "build_error"), label[1024];
    json_t *want;
    int rc;

    rc = sl_responses_validate(req);
    if (rc == SL_OK)
        rc = sl_responses_prepare(req);
    if (rc == SL_OK)
        rc = sl_responses_prepare(req);
    if (rc == SL_OK && next != NULL) {
        req->dep = next;    /* the first attempt failed: a fallback */
        rc = sl_responses_prepare(req);
    }
    snprintf(label, sizeof(label), "%s: conversion", name);
    if (build_error != NULL) {
        is_int(rc, SL_ERR_BAD_REQUEST, label);
        snprintf(label, sizeof(label), "%s: error message", name);
        if (!ok(req->err_msg && strstr(req->err_msg, build_error), label))
            printf("#   got %s\n", req->err_msg ? req->err_msg : "(null)");
        free(build_error);
        return SL_ERR_BAD_REQUEST;
    }
    is_int(rc, SL_OK, label);
    if (rc == SL_OK && (want = case_json(dir, "expected_chat.json")) != NULL) {
        same(name, "chat request", json_deep_copy(req->in), want);
        json_decref(want);
    }
    return rc;
}

/* {"model": "anthropic/x"} -> a deployment of that provider; 0 if unknown. */
static int deployment_of(json_t *j, struct sl_deployment *dep)
{
    const char *model = json_string_value(json_object_get(j, "model")), *slash;
    char pbuf[64];

    memset(dep, 0, sizeof(*dep));
    if (model == NULL)
        return 0;
    slash = strchr(model, '/');
    snprintf(pbuf, sizeof(pbuf), "%.*s", slash ? (int)(slash - model) : 6, slash ? model : "openai");
    dep->provider = sl_provider_find(pbuf);
    dep->model = model;
    dep->upstream_model = slash ? slash + 1 : model;
    dep->litellm_params = j;
    return dep->provider != NULL;
}

static void run_case(const char *dir, const char *name, struct sl_arena *a)
{
    const char *params[] = { NULL };
    struct memconn mc = { .params = params };
    struct sl_request req;
    struct sl_deployment dep, next;
    json_t *depj = case_json(dir, "deployment.json"), *fallj = case_json(dir, "fallback.json"), *client;
    char *text;
    size_t len = 0;

    memset(&req, 0, sizeof(req));
    sl_buf_init(&mc.out, 16u << 20);
    req.arena = a;
    req.conn.ops = &memconn_ops;
    req.conn.ctx = &mc;
    strcpy(req.id, "test-request-id");
    req.surface = SL_SURFACE_RESPONSES;
    req.endpoint = SL_EP_RESPONSES;
    text = slurp(dir, "client.json", a, &len);
    req.in = text ? json_loadb(text, len, 0, NULL) : NULL;
    if (req.in != NULL)
        sl_arena_defer(a, sl_json_decref_cb, req.in);   /* as request.c does */
    if (req.in == NULL || !deployment_of(depj, &dep) || (fallj != NULL && !deployment_of(fallj, &next))) {
        ok(0, name);
        printf("#   case %s lacks client.json or a known deployment\n", dir);
        goto out;
    }
    req.body = text;
    req.body_len = len;
    client = req.in;
    req.dep = &dep;
    req.model = json_string_value(json_object_get(req.in, "model"));
    req.stream = json_is_true(json_object_get(req.in, "stream"));
    if (convert(dir, name, &req, fallj ? &next : NULL) != SL_OK)
        goto out;
    check_form(name, &req, client, text);
    run_completion(dir, name, &req, &mc);
    run_chunks(dir, name, &req, &mc);
    run_native_reply(dir, name, &req, a);
    run_native_sse(dir, name, &req, &mc, a);
out:
    sl_buf_free(&mc.out);
    json_decref(depj);
    json_decref(fallj);
    sl_arena_reset(a);   /* the client's request, the chat form and the state */
}

int main(void)
{
    struct sl_arena *a = sl_arena_create(64u << 20);
    int cases = case_each("responses", run_case, a);

    ok(cases > 0, "responses cases were found");
    sl_arena_free(a);
    return tap_done();
}

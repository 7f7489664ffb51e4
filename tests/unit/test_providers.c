/* Provider adapters, driven by case folders under tests/data/providers/<provider>/<case>/:
 *   deployment.json         {"model": "openai/x", "api_base", "api_key", "litellm_params": {...}}
 *   client.json             what the client sent (endpoint: "input" -> embeddings, else chat)
 *   expected_request.json   {"url", "headers": [subset, in any order], "body"} the adapter must build
 *   upstream.json | upstream.sse   the provider's reply (with upstream_status: an error reply)
 *   upstream.eventstream.json      instead of upstream.sse, for AWS event-stream replies (Bedrock):
 *                           [{"event": type, "payload": value}, {"exception": type, "payload": value}]
 *                           encoded here into binary messages (both CRCs) and fed to the framer
 *   expected.json           the adapter's OpenAI-shaped result: an object for a whole reply; for
 *                           a stream, the array of chunks it emits, ending in "[DONE]"
 *   upstream_status         optional: an HTTP status; then expected.json is the mapped error
 *                           {"http_status","type","message","param","code"}
 *   build_error             optional: build_request must refuse the request with a 400 whose
 *                           message contains this text (then nothing else is checked)
 * A "created" of 0 in expected.json stands for any current time: adapters
 * that make their own timestamps are checked for a plausible integer.
 * A new case needs no C. */
/* Test names are cut to their buffers on purpose; a long case path only
 * shortens a label. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jansson.h>
#include <zlib.h>

#include "arena.h"
#include "config.h"
#include "framing.h"
#include "provider.h"
#include "request.h"
#include "status.h"
#include "tap.h"

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    FILE *f;
    char *p;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)n + 1);
    if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        fclose(f);
        return NULL;
    }
    p[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return p;
}

static json_t *load_json(const char *dir, const char *name)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return json_load_file(path, 0, NULL);
}

/* Where want has "created": 0, a got "created" that is a plausible Unix
 * time (after 2020) becomes 0 too. */
static void scrub_created(json_t *got, const json_t *want)
{
    const json_t *w = json_object_get(want, "created");
    json_t *g = json_object_get(got, "created");
    size_t i;

    if (json_is_array(got) && json_is_array(want)) {
        for (i = 0; i < json_array_size(got) && i < json_array_size(want); i++)
            scrub_created(json_array_get(got, i), json_array_get(want, i));
        return;
    }
    if (json_is_integer(w) && json_integer_value(w) == 0 && json_is_integer(g) &&
        json_integer_value(g) > 1577836800)
        json_object_set_new(got, "created", json_integer(0));
}

static int same(const char *what, const char *casename, json_t *got, json_t *want)
{
    char name[1024];
    int eq;

    scrub_created(got, want);
    eq = json_equal(got, want);

    snprintf(name, sizeof(name), "%s: %s", casename, what);
    if (!ok(eq, name)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);

        printf("#   got  %s\n#   want %s\n", g ? g : "(null)", w ? w : "(null)");
        free(g);
        free(w);
    }
    return eq;
}

struct stream_ctx {
    struct sl_request *req;
    json_t *chunks;
    int rc;
    int fast, fast_ok;      /* events the fast path took; of those, agreeing with the parser */
};

/* What the core's template makes of a fast delta, as JSON (model as the
 * adapter's chunks carry it: the driver's requested name). */
static json_t *fast_json(const struct sl_request *req, const struct sl_fast_delta *fd)
{
    json_t *text = json_loadb(fd->text, fd->text_len, JSON_DECODE_ANY, NULL);

    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:o}, s:n, s:n}]}", "id", fd->id,
                     "object", "chat.completion.chunk", "created", (json_int_t)fd->created,
                     "model", req->model ? req->model : "", "choices", "index", 0, "delta",
                     fd->reasoning ? "reasoning_content" : "content", text, "finish_reason", "logprobs");
}

static int on_event(void *ctx, const struct sl_sse_event *ev)
{
    struct stream_ctx *s = ctx;
    json_t *out = NULL, *fast = NULL;
    struct sl_fast_delta fd;
    int done = 0;

    /* An event the fast path takes must be exactly one chunk the parser
     * would make, and must not change what the parser does next. */
    if (s->req->dep->provider->fast_delta != NULL && s->req->dep->provider->fast_delta(s->req, ev, &fd)) {
        s->fast++;
        fast = fast_json(s->req, &fd);
    }
    s->rc = s->req->dep->provider->parse_stream_event(s->req, ev, &out, &done);
    if (fast != NULL) {
        s->fast_ok += json_is_object(out) && json_equal(fast, out) && !done;
        json_decref(fast);
    }
    if (json_is_array(out))
        json_array_extend(s->chunks, out);
    else if (out != NULL)
        json_array_append(s->chunks, out);
    json_decref(out);
    if (done)
        json_array_append_new(s->chunks, json_string("[DONE]"));
    return s->rc == SL_ERR_UPSTREAM_STATUS ? SL_OK : s->rc;
}

static json_t *error_json(const struct sl_error *e)
{
    return json_pack("{s:i, s:s?, s:s?, s:s?, s:s?}", "http_status", e->http_status,
                     "type", e->type, "message", e->message, "param", e->param, "code", e->code);
}

static void check_request(const char *dir, const char *name, struct sl_request *req,
                          const struct sl_upstream_req *up)
{
    json_t *want = load_json(dir, "expected_request.json"), *h, *body;
    size_t i;
    int all = 1;

    if (want == NULL)
        return;
    if (json_is_string(json_object_get(want, "url"))) {
        char n[1024];

        snprintf(n, sizeof(n), "%s: url", name);
        is_str(up->url, json_string_value(json_object_get(want, "url")), n);
    }
    json_array_foreach(json_object_get(want, "headers"), i, h) {
        int found = 0;

        for (size_t k = 0; k < up->n_headers; k++)
            found |= strcmp(up->headers[k], json_string_value(h)) == 0;
        if (!found) {
            printf("#   missing header %s\n", json_string_value(h));
            all = 0;
        }
    }
    if (json_object_get(want, "headers") != NULL) {
        char n[1024];

        snprintf(n, sizeof(n), "%s: headers", name);
        ok(all, n);
    }
    body = up->body ? json_loadb(up->body, up->body_len, 0, NULL) : NULL;
    if (json_object_get(want, "body") != NULL)
        same("upstream body", name, body, json_object_get(want, "body"));
    json_decref(body);
    (void)req;
    json_decref(want);
}

/* Appends one event-stream string header. */
static void es_header(struct sl_buf *b, const char *name, const char *value)
{
    unsigned char pre[3] = { 7, (unsigned char)(strlen(value) >> 8), (unsigned char)strlen(value) };
    unsigned char n = (unsigned char)strlen(name);

    sl_buf_append(b, &n, 1);
    sl_buf_append(b, name, n);
    sl_buf_append(b, pre, 3);
    sl_buf_append(b, value, strlen(value));
}

static void es_put32(unsigned char *p, unsigned long v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* upstream.eventstream.json as binary event-stream messages (malloc'd). */
static char *eventstream(const char *dir, size_t *len)
{
    json_t *msgs = load_json(dir, "upstream.eventstream.json"), *m;
    struct sl_buf out, h;
    size_t i;
    char *ret;

    if (!json_is_array(msgs)) {
        json_decref(msgs);
        return NULL;
    }
    sl_buf_init(&out, 1u << 24);
    sl_buf_init(&h, 1u << 16);
    json_array_foreach(msgs, i, m) {
        const json_t *p = json_object_get(m, "payload");
        char *payload = p ? json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("");
        const char *exc = json_string_value(json_object_get(m, "exception"));
        unsigned char pre[12], crc[4];
        size_t start = out.len, total;

        sl_buf_reset(&h);
        es_header(&h, exc ? ":exception-type" : ":event-type",
                  exc ? exc : json_string_value(json_object_get(m, "event")));
        es_header(&h, ":content-type", "application/json");
        es_header(&h, ":message-type", exc ? "exception" : "event");
        total = 16 + h.len + strlen(payload);
        es_put32(pre, total);
        es_put32(pre + 4, h.len);
        es_put32(pre + 8, crc32(0L, pre, 8));
        sl_buf_append(&out, pre, 12);
        sl_buf_append(&out, h.data, h.len);
        sl_buf_append(&out, payload, strlen(payload));
        es_put32(crc, crc32(0L, (unsigned char *)out.data + start, (uInt)(out.len - start)));
        sl_buf_append(&out, crc, 4);
        free(payload);
    }
    sl_buf_free(&h);
    json_decref(msgs);
    *len = out.len;
    ret = malloc(out.len + 1);
    if (ret != NULL)
        memcpy(ret, out.data ? out.data : "", out.len);
    sl_buf_free(&out);
    return ret;
}

static void run_case(const char *dir, const char *name, struct sl_arena *a)
{
    struct sl_request req;
    struct sl_deployment dep;
    struct sl_upstream_req up;
    json_t *depj = load_json(dir, "deployment.json"), *expected = load_json(dir, "expected.json");
    char *status = slurp(dir, "upstream_status", NULL), *reply;
    char *build_error = slurp(dir, "build_error", NULL);
    json_t *want_req = NULL;
    const char *model, *slash;
    size_t len;
    int rc;

    memset(&req, 0, sizeof(req));
    memset(&dep, 0, sizeof(dep));
    memset(&up, 0, sizeof(up));
    req.arena = a;
    strcpy(req.id, "test-request-id");
    req.in = load_json(dir, "client.json");
    model = json_string_value(json_object_get(depj, "model"));
    want_req = load_json(dir, "expected_request.json");
    if (req.in == NULL || model == NULL || (expected == NULL && build_error == NULL && want_req == NULL)) {
        ok(0, name);
        printf("#   case %s lacks client.json or deployment.json, or has nothing to expect\n", dir);
        goto out;
    }
    slash = strchr(model, '/');
    dep.model = model;
    dep.model_name = json_string_value(json_object_get(req.in, "model"));
    dep.provider = sl_provider_find(slash ? sl_arena_strndup(a, model, (size_t)(slash - model)) : "openai");
    dep.upstream_model = slash ? slash + 1 : model;
    dep.api_base = json_string_value(json_object_get(depj, "api_base"));
    dep.api_key = json_string_value(json_object_get(depj, "api_key"));
    dep.api_version = json_string_value(json_object_get(depj, "api_version"));
    dep.litellm_params = json_object_get(depj, "litellm_params");
    if (dep.litellm_params == NULL)
        dep.litellm_params = depj;
    req.dep = &dep;
    req.model = dep.model_name;
    req.endpoint = json_object_get(req.in, "input") ? SL_EP_EMBEDDINGS : SL_EP_CHAT;
    req.stream = json_is_true(json_object_get(req.in, "stream"));
    if (dep.provider == NULL) {
        ok(0, name);
        goto out;
    }
    /* Once from the parsed body alone, once with the raw text the client
     * sent (adapters may splice it): both must build the same request. */
    for (int pass = 0; pass < 2; pass++) {
        char n[1024];

        memset(&up, 0, sizeof(up));
        if (pass == 1)
            req.body = slurp(dir, "client.json", &req.body_len);
        req.err_msg = NULL;
        rc = dep.provider->build_request(&req, req.in, &up);
        snprintf(n, sizeof(n), "%s: build_request (%s)", name, pass ? "from text" : "from JSON");
        if (build_error != NULL) {
            build_error[strcspn(build_error, "\n")] = '\0';
            is_int(rc, SL_ERR_BAD_REQUEST, n);
            snprintf(n, sizeof(n), "%s: error message (%s)", name, pass ? "from text" : "from JSON");
            if (!ok(req.err_msg != NULL && strstr(req.err_msg, build_error) != NULL, n))
                printf("#   got %s\n", req.err_msg ? req.err_msg : "(null)");
            continue;
        }
        is_int(rc, SL_OK, n);
        snprintf(n, sizeof(n), "%s (%s)", name, pass ? "from text" : "from JSON");
        check_request(dir, n, &req, &up);
    }

    if (build_error != NULL || expected == NULL) {
        /* the request was all there was to check */
    } else if (status != NULL) {
        struct sl_error e = { .http_status = atoi(status) };
        json_t *body = load_json(dir, "upstream.json"), *got;

        if (dep.provider->map_error)
            dep.provider->map_error(&req, e.http_status, body, &e);
        got = error_json(&e);
        same("mapped error", name, got, expected);
        json_decref(got);
        json_decref(body);
    } else if ((reply = slurp(dir, "upstream.sse", &len)) != NULL ||
               (reply = eventstream(dir, &len)) != NULL) {
        struct sl_framer f;
        struct stream_ctx s = { &req, json_array(), SL_OK, 0, 0 };

        sl_framer_init(&f, up.framing);
        sl_framer_feed(&f, reply, len, on_event, &s);
        sl_framer_finish(&f, on_event, &s);
        sl_framer_free(&f);
        if (s.rc == SL_ERR_UPSTREAM_STATUS)
            json_array_append_new(s.chunks, error_json(&req.upstream_err));
        if (dep.provider->fast_delta != NULL) {
            char n[1024];

            snprintf(n, sizeof(n), "%s: %d fast-path event(s) agree with the parser", name, s.fast);
            ok(s.fast == s.fast_ok, n);
        }
        same("stream chunks", name, s.chunks, expected);
        json_decref(s.chunks);
        free(reply);
    } else if ((reply = slurp(dir, "upstream.json", &len)) != NULL) {
        json_t *out = NULL;

        rc = dep.provider->parse_response(&req, reply, len, &out);
        same("response", name, out, expected);
        json_decref(out);
        free(reply);
    }
out:
    free(req.body);
    free(status);
    free(build_error);
    json_decref(want_req);
    json_decref(req.in);
    json_decref(depj);
    json_decref(expected);
    sl_arena_reset(a);
}

static int by_name(const struct dirent **x, const struct dirent **y)
{
    return strcmp((*x)->d_name, (*y)->d_name);
}

int main(void)
{
    const char *data = getenv("SL_TEST_DATA") ? getenv("SL_TEST_DATA") : "tests/data";
    char root[1024];
    struct dirent **prov;
    struct sl_arena *a = sl_arena_create(64u << 20);
    int np, cases = 0;

    snprintf(root, sizeof(root), "%s/providers", data);
    np = scandir(root, &prov, NULL, by_name);
    for (int i = 0; i < np; i++) {
        char pdir[2048];
        struct dirent **cs;
        int nc;

        if (prov[i]->d_name[0] == '.') {
            free(prov[i]);
            continue;
        }
        snprintf(pdir, sizeof(pdir), "%s/%s", root, prov[i]->d_name);
        nc = scandir(pdir, &cs, NULL, by_name);
        for (int k = 0; k < nc; k++) {
            char cdir[2600], name[600];

            if (cs[k]->d_name[0] != '.') {
                snprintf(cdir, sizeof(cdir), "%s/%s", pdir, cs[k]->d_name);
                snprintf(name, sizeof(name), "%s/%s", prov[i]->d_name, cs[k]->d_name);
                run_case(cdir, name, a);
                cases++;
            }
            free(cs[k]);
        }
        if (nc >= 0)
            free(cs);
        free(prov[i]);
    }
    if (np >= 0)
        free(prov);
    ok(cases > 0, "provider cases were found");
    sl_arena_free(a);
    return tap_done();
}

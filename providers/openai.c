/* OpenAI (and any server speaking its wire format): the request passes
 * through with "model" rewritten to the upstream's name; the reply is already
 * in the client's format. Streamed replies always ask for usage
 * (stream_options.include_usage) so spend can be recorded; the core hides the
 * usage chunk from clients that did not ask for it. */
#include <string.h>

#include "arena.h"
#include "config.h"
#include "jscan.h"
#include "jsonutil.h"
#include "openai.h"
#include "request.h"
#include "status.h"
#include "translate.h"


static const char *endpoint_path(int ep)
{
    switch (ep) {
    case SL_EP_CHAT:       return "/chat/completions";
    case SL_EP_EMBEDDINGS: return "/embeddings";
    default:               return NULL;
    }
}

static int is_gateway_field(const struct sl_jmember *m)
{
    for (size_t i = 0; sl_tr_gateway_fields[i] != NULL; i++)
        if (sl_jscan_key_is(m, sl_tr_gateway_fields[i]))
            return 1;
    return 0;
}

struct splice {
    char *out;
    size_t len;
    int store;             /* "store": true, so "metadata" stays */
    int stream;
    int saw_stream_options;
    const char *model;     /* the upstream model as JSON text */
    size_t model_len;
};

#define SPLICE_FALLBACK 1  /* a key with escapes: use the Jansson path */

static void put(struct splice *sp, const char *p, size_t n)
{
    memcpy(sp->out + sp->len, p, n);
    sp->len += n;
}

static void put_key(struct splice *sp, const struct sl_jmember *m)
{
    if (sp->out[sp->len - 1] != '{')
        put(sp, ",", 1);
    put(sp, "\"", 1);
    put(sp, m->key, m->key_len);
    put(sp, "\":", 2);
}

static int options_member(void *ctx, const struct sl_jmember *m)
{
    struct splice *sp = ctx;

    if (memchr(m->key, '\\', m->key_len) != NULL)
        return SPLICE_FALLBACK;
    if (!sl_jscan_key_is(m, "include_usage")) {
        put_key(sp, m);
        put(sp, m->val, m->val_len);
    }
    return 0;
}

static int body_member(void *ctx, const struct sl_jmember *m)
{
    struct splice *sp = ctx;
    int rc;

    if (memchr(m->key, '\\', m->key_len) != NULL)
        return SPLICE_FALLBACK;
    if (is_gateway_field(m) || (!sp->store && sl_jscan_key_is(m, "metadata")))
        return 0;
    put_key(sp, m);
    if (sl_jscan_key_is(m, "model")) {
        put(sp, sp->model, sp->model_len);
    } else if (sp->stream && sl_jscan_key_is(m, "stream_options")) {
        sp->saw_stream_options = 1;
        put(sp, "{", 1);
        if (m->val[0] == '{' &&
            (rc = sl_jscan_object(m->val, m->val_len, options_member, sp)) != 0)
            return rc;
        if (sp->out[sp->len - 1] != '{')
            put(sp, ",", 1);
        put(sp, "\"include_usage\":true}", 21);
    } else {
        put(sp, m->val, m->val_len);
    }
    return 0;
}

/* The client's body text with members edited; SPLICE_FALLBACK or an error
 * status if it cannot be done that way. */
static int splice_body(struct sl_request *req, const json_t *in, struct sl_upstream_req *out)
{
    struct splice sp = { .store = json_is_true(json_object_get(in, "store")),
                         .stream = req->stream };
    json_t *model = json_string(req->dep->upstream_model);
    int rc;

    sp.model = model ? sl_json_dump(req->arena, model, &sp.model_len) : NULL;
    json_decref(model);
    if (sp.model == NULL)
        return SL_ERR_NOMEM;
    /* Room for the body, the new model, and stream_options added twice over. */
    sp.out = sl_arena_alloc(req->arena, req->body_len + sp.model_len + 64);
    if (sp.out == NULL)
        return SL_ERR_NOMEM;
    put(&sp, "{", 1);
    rc = sl_jscan_object(req->body, req->body_len, body_member, &sp);
    if (rc != 0)
        return rc == SPLICE_FALLBACK ? SPLICE_FALLBACK : SL_ERR_BAD_JSON;
    if (sp.stream && !sp.saw_stream_options) {
        if (sp.out[sp.len - 1] != '{')
            put(&sp, ",", 1);
        put(&sp, "\"stream_options\":{\"include_usage\":true}", 39);
    }
    put(&sp, "}", 1);
    out->body = sp.out;
    out->body_len = sp.len;
    return SL_OK;
}

/* The same edits through Jansson: for bodies the splice cannot take, and for
 * requests that did not come as text (none yet). */
static int openai_body(struct sl_request *req, const json_t *in, struct sl_upstream_req *out)
{
    json_t *body = json_copy((json_t *)in);   /* shallow: values are shared */
    int rc = SL_ERR_NOMEM;

    if (body == NULL || sl_arena_defer(req->arena, sl_json_decref_cb, body) != SL_OK)
        return SL_ERR_NOMEM;
    for (size_t i = 0; sl_tr_gateway_fields[i] != NULL; i++)
        json_object_del(body, sl_tr_gateway_fields[i]);
    /* LiteLLM's "metadata" is its own; OpenAI accepts it only with store. */
    if (!json_is_true(json_object_get(body, "store")))
        json_object_del(body, "metadata");
    if (json_object_set_new(body, "model", json_string(req->dep->upstream_model)) != 0)
        return SL_ERR_NOMEM;
    if (req->stream) {
        json_t *so = json_object_get(body, "stream_options");
        json_t *copy = json_is_object(so) ? json_copy(so) : json_object();

        if (copy == NULL || json_object_set_new(copy, "include_usage", json_true()) != 0 ||
            json_object_set_new(body, "stream_options", copy) != 0)
            return SL_ERR_NOMEM;
    }
    out->body = sl_json_dump(req->arena, body, &out->body_len);
    if (out->body != NULL)
        rc = SL_OK;
    return rc;
}

static int openai_build_request(struct sl_request *req, const json_t *in,
                                struct sl_upstream_req *out)
{
    const struct sl_deployment *dep = req->dep;
    const char *base = dep->api_base ? dep->api_base : "https://api.openai.com/v1";
    const char *path = endpoint_path(req->endpoint);
    size_t blen = strlen(base);
    int rc;

    if (path == NULL)
        return SL_ERR_UNSUPPORTED;
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    out->url = sl_arena_printf(req->arena, "%.*s%s", (int)blen, base, path);
    if (out->url == NULL)
        return SL_ERR_NOMEM;
    out->headers[out->n_headers++] = "Content-Type: application/json";
    if (dep->api_key != NULL) {
        const char *h = sl_arena_printf(req->arena, "Authorization: Bearer %s", dep->api_key);

        if (h == NULL)
            return SL_ERR_NOMEM;
        out->headers[out->n_headers++] = h;
    }
    out->framing = SL_FRAMING_SSE;
    if (req->body != NULL && (rc = splice_body(req, in, out)) != SPLICE_FALLBACK)
        return rc;
    return openai_body(req, in, out);
}

int sl_openai_parse_response(struct sl_request *req, const char *body, size_t len,
                             json_t **out)
{
    const char *why;
    json_t *v = sl_json_parse(body, len, &why);

    (void)req;
    if (!json_is_object(v)) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    *out = v;
    return SL_OK;
}

int sl_openai_error_from_json(struct sl_request *req, const json_t *body,
                              long http_status, struct sl_error *e)
{
    const json_t *err = json_object_get(body, "error");
    const json_t *v;

    memset(e, 0, sizeof(*e));
    e->http_status = (int)http_status;
    if (json_is_string(err)) {             /* some compatible servers */
        e->message = sl_arena_strdup(req->arena, json_string_value(err));
        return 1;
    }
    if (!json_is_object(err))
        return 0;
    if (json_is_string(v = json_object_get(err, "message")))
        e->message = sl_arena_strdup(req->arena, json_string_value(v));
    if (json_is_string(v = json_object_get(err, "type")))
        e->type = sl_arena_strdup(req->arena, json_string_value(v));
    if (json_is_string(v = json_object_get(err, "param")))
        e->param = sl_arena_strdup(req->arena, json_string_value(v));
    if (json_is_string(v = json_object_get(err, "code")))
        e->code = sl_arena_strdup(req->arena, json_string_value(v));
    return 1;
}

int sl_openai_parse_stream_event(struct sl_request *req, const struct sl_sse_event *ev,
                                 json_t **out, int *done)
{
    const char *why;
    json_t *v;

    *out = NULL;
    if (strcmp(ev->data, "[DONE]") == 0) {
        *done = 1;
        return SL_OK;
    }
    if (ev->data_len == 0)
        return SL_OK;
    v = sl_json_parse(ev->data, ev->data_len, &why);
    if (!json_is_object(v)) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    if (json_object_get(v, "error") != NULL) {
        sl_openai_error_from_json(req, v, 500, &req->upstream_err);
        json_decref(v);
        return SL_ERR_UPSTREAM_STATUS;
    }
    *out = v;
    return SL_OK;
}

int sl_openai_map_error(struct sl_request *req, long http_status, const json_t *body,
                        struct sl_error *out)
{
    if (!sl_openai_error_from_json(req, body, http_status, out))
        out->message = NULL;   /* the core fills in a generic text */
    return SL_OK;
}

const struct sl_provider sl_provider_openai = {
    .name = "openai",
    .abi = SL_PROVIDER_ABI,
    .flags = SL_PROVIDER_OPENAI_WIRE,
    .api_key_env = "OPENAI_API_KEY",
    .default_api_base = "https://api.openai.com/v1",
    .endpoints = SL_EP_BIT(SL_EP_CHAT) | SL_EP_BIT(SL_EP_EMBEDDINGS),
    .build_request = openai_build_request,
    .parse_response = sl_openai_parse_response,
    .parse_stream_event = sl_openai_parse_stream_event,
    .map_error = sl_openai_map_error,
};

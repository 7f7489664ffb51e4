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
    case SL_EP_RESPONSES:  return "/responses";
    case SL_EP_COMPLETIONS: return "/completions";
    case SL_EP_RERANK:     return "/rerank";
    case SL_EP_MODERATIONS: return "/moderations";
    case SL_EP_IMAGES:     return "/images/generations";
    case SL_EP_SPEECH:     return "/audio/speech";
    case SL_EP_TRANSCRIPTIONS: return "/audio/transcriptions";
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
    int saw_model;
    const char *model;     /* the upstream model as JSON text */
    size_t model_len;
    const struct sl_vendor *v;   /* the vendor's edits, or NULL */
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

/* The vendor's name for a member's key, or NULL to keep it. */
static const char *renamed(const struct sl_vendor *v, const struct sl_jmember *m)
{
    for (size_t i = 0; v != NULL && v->renames != NULL && v->renames[i].from != NULL; i++)
        if (sl_jscan_key_is(m, v->renames[i].from))
            return v->renames[i].to;
    return NULL;
}

static int unsupported(const struct sl_vendor *v, const struct sl_jmember *m)
{
    for (size_t i = 0; v != NULL && v->unsupported != NULL && v->unsupported[i] != NULL; i++)
        if (sl_jscan_key_is(m, v->unsupported[i]))
            return 1;
    return 0;
}

static int body_member(void *ctx, const struct sl_jmember *m)
{
    struct splice *sp = ctx;
    const char *name;
    int rc;

    if (memchr(m->key, '\\', m->key_len) != NULL)
        return SPLICE_FALLBACK;
    if (is_gateway_field(m) || (!sp->store && sl_jscan_key_is(m, "metadata")) ||
        unsupported(sp->v, m))
        return 0;   /* an unsupported parameter got here only because it may be dropped */
    if ((name = renamed(sp->v, m)) != NULL) {
        struct sl_jmember r = *m;

        r.key = name;
        r.key_len = strlen(name);
        put_key(sp, &r);
    } else {
        put_key(sp, m);
    }
    if (sl_jscan_key_is(m, "model")) {
        sp->saw_model = 1;
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
static int splice_body(struct sl_request *req, const json_t *in, const char *model,
                       struct sl_upstream_req *out)
{
    /* The Responses API takes metadata without store, and no
     * include_usage: its last event carries the usage. */
    struct splice sp = { .store = json_is_true(json_object_get(in, "store")) || req->endpoint == SL_EP_RESPONSES,
                         .stream = req->stream && (req->endpoint == SL_EP_CHAT || req->endpoint == SL_EP_COMPLETIONS),
                         .v = req->dep->provider->data };
    json_t *mj = json_string(model);
    size_t extra = 64;
    int rc;

    sp.model = mj ? sl_json_dump(req->arena, mj, &sp.model_len) : NULL;
    json_decref(mj);
    if (sp.model == NULL)
        return SL_ERR_NOMEM;
    for (size_t i = 0; sp.v != NULL && sp.v->renames != NULL && sp.v->renames[i].from != NULL; i++)
        extra += strlen(sp.v->renames[i].to);
    /* Room for the body, the new model, renamed keys, and stream_options
     * added twice over. */
    sp.out = sl_arena_alloc(req->arena, req->body_len + sp.model_len + extra);
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
    if (!sp.saw_model) {      /* a moderation may name none: the deployment's goes */
        if (sp.out[sp.len - 1] != '{')
            put(&sp, ",", 1);
        put(&sp, "\"model\":", 8);
        put(&sp, sp.model, sp.model_len);
    }
    put(&sp, "}", 1);
    out->body = sp.out;
    out->body_len = sp.len;
    return SL_OK;
}

/* Whether the vendor must change a value (not only a key): then the body
 * goes through Jansson. */
static int needs_rewrite(const struct sl_vendor *v, const json_t *in)
{
    const json_t *t = json_object_get(in, "temperature"), *tc = json_object_get(in, "tool_choice");

    if (v == NULL)
        return 0;
    if ((v->quirks & SL_VQ_TEMPERATURE_MAX_1) && json_is_number(t) && json_number_value(t) > 1.0)
        return 1;
    return (v->quirks & SL_VQ_TOOL_CHOICE_ANY) && json_is_string(tc) &&
           strcmp(json_string_value(tc), "required") == 0;
}

static int vendor_edits(const struct sl_vendor *v, json_t *body)
{
    const json_t *tc = json_object_get(body, "tool_choice");

    if (v == NULL)
        return SL_OK;
    for (size_t i = 0; v->unsupported != NULL && v->unsupported[i] != NULL; i++)
        json_object_del(body, v->unsupported[i]);
    for (size_t i = 0; v->renames != NULL && v->renames[i].from != NULL; i++) {
        json_t *val = json_object_get(body, v->renames[i].from);

        if (val != NULL && (json_object_set(body, v->renames[i].to, val) != 0 ||
                            json_object_del(body, v->renames[i].from) != 0))
            return SL_ERR_NOMEM;
    }
    if ((v->quirks & SL_VQ_TEMPERATURE_MAX_1) && json_number_value(json_object_get(body, "temperature")) > 1.0 &&
        json_object_set_new(body, "temperature", json_real(1.0)) != 0)
        return SL_ERR_NOMEM;
    if ((v->quirks & SL_VQ_TOOL_CHOICE_ANY) && json_is_string(tc) &&
        strcmp(json_string_value(tc), "required") == 0 &&
        json_object_set_new(body, "tool_choice", json_string("any")) != 0)
        return SL_ERR_NOMEM;
    return SL_OK;
}

/* The same edits through Jansson: for bodies the splice cannot take, values
 * a vendor needs changed, and requests that did not come as text. */
static int openai_body(struct sl_request *req, const json_t *in, const char *model,
                       struct sl_upstream_req *out)
{
    json_t *body = json_copy((json_t *)in);   /* shallow: values are shared */
    int rc = SL_ERR_NOMEM;

    if (body == NULL || sl_arena_defer(req->arena, sl_json_decref_cb, body) != SL_OK)
        return SL_ERR_NOMEM;
    for (size_t i = 0; sl_tr_gateway_fields[i] != NULL; i++)
        json_object_del(body, sl_tr_gateway_fields[i]);
    /* LiteLLM's "metadata" is its own; OpenAI accepts it only with store. */
    if (!json_is_true(json_object_get(body, "store")) && req->endpoint != SL_EP_RESPONSES)
        json_object_del(body, "metadata");
    if (json_object_set_new(body, "model", json_string(model)) != 0)
        return SL_ERR_NOMEM;
    if (req->stream && (req->endpoint == SL_EP_CHAT || req->endpoint == SL_EP_COMPLETIONS)) {
        json_t *so = json_object_get(body, "stream_options");
        json_t *copy = json_is_object(so) ? json_copy(so) : json_object();

        if (copy == NULL || json_object_set_new(copy, "include_usage", json_true()) != 0 ||
            json_object_set_new(body, "stream_options", copy) != 0)
            return SL_ERR_NOMEM;
    }
    if ((rc = vendor_edits(req->dep->provider->data, body)) != SL_OK)
        return rc;
    out->body = sl_json_dump(req->arena, body, &out->body_len);
    return out->body != NULL ? SL_OK : SL_ERR_NOMEM;
}

int sl_openai_build_body(struct sl_request *req, const json_t *in, const char *model,
                         struct sl_upstream_req *out)
{
    const struct sl_vendor *v = req->dep->provider->data;
    int rc;

    if (v != NULL && (rc = sl_tr_reject_params(req, in, v->unsupported)) != SL_OK)
        return rc;
    if (req->body != NULL && !needs_rewrite(v, in) &&
        (rc = splice_body(req, in, model, out)) != SPLICE_FALLBACK)
        return rc;
    return openai_body(req, in, model, out);
}

/* An audio upload (multipart/form-data) goes as it came, with its content
 * type, only the "model" value replaced (request.c found where it is). */
static int upload_request(struct sl_request *req, const char *model, struct sl_upstream_req *out)
{
    const struct sl_deployment *dep = req->dep;
    size_t ml = strlen(model), tail = req->body_len - req->form_model_at - req->form_model_len;
    char *b = sl_arena_alloc(req->arena, req->body_len - req->form_model_len + ml + 1);
    const char *ct = sl_arena_printf(req->arena, "Content-Type: %s", req->content_type);

    if (b == NULL || ct == NULL)
        return SL_ERR_NOMEM;
    memcpy(b, req->body, req->form_model_at);
    memcpy(b + req->form_model_at, model, ml);
    memcpy(b + req->form_model_at + ml, req->body + req->form_model_at + req->form_model_len, tail);
    out->body = b;
    out->body_len = req->form_model_at + ml + tail;
    out->headers[out->n_headers++] = ct;
    if (dep->api_key != NULL &&
        (out->headers[out->n_headers++] = sl_arena_printf(req->arena, "Authorization: Bearer %s", dep->api_key)) == NULL)
        return SL_ERR_NOMEM;
    out->framing = SL_FRAMING_SSE;
    return SL_OK;
}

/* The model name the vendor expects (fireworks_ai wants its account path). */
static const char *vendor_model(struct sl_request *req)
{
    const struct sl_vendor *v = req->dep->provider->data;
    const char *m = req->dep->upstream_model;

    if (v != NULL && v->model_prefix != NULL && strchr(m, '/') == NULL)
        return sl_arena_printf(req->arena, "%s%s", v->model_prefix, m);
    return m;
}

int sl_openai_build_request(struct sl_request *req, const json_t *in,
                            struct sl_upstream_req *out)
{
    const struct sl_deployment *dep = req->dep;
    const char *base = dep->api_base ? dep->api_base : dep->provider->default_api_base;
    const char *path = endpoint_path(req->endpoint), *model = vendor_model(req);
    size_t blen;

    if (path == NULL || !(dep->provider->endpoints & SL_EP_BIT(req->endpoint)))
        return SL_ERR_UNSUPPORTED;
    if (base == NULL || model == NULL)
        return base == NULL ? SL_ERR_CONFIG : SL_ERR_NOMEM;
    blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    out->url = sl_arena_printf(req->arena, "%.*s%s", (int)blen, base, path);
    if (out->url == NULL)
        return SL_ERR_NOMEM;
    if (req->endpoint == SL_EP_TRANSCRIPTIONS)
        return upload_request(req, model, out);
    out->headers[out->n_headers++] = "Content-Type: application/json";
    if (dep->api_key != NULL) {
        const char *h = sl_arena_printf(req->arena, "Authorization: Bearer %s", dep->api_key);

        if (h == NULL)
            return SL_ERR_NOMEM;
        out->headers[out->n_headers++] = h;
    }
    out->framing = req->endpoint == SL_EP_SPEECH ? SL_FRAMING_RAW : SL_FRAMING_SSE;
    return sl_openai_build_body(req, in, model, out);
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
    .endpoints = SL_EP_BIT(SL_EP_CHAT) | SL_EP_BIT(SL_EP_EMBEDDINGS) | SL_EP_BIT(SL_EP_RESPONSES) |
                 SL_EP_BIT(SL_EP_COMPLETIONS) | SL_EP_BIT(SL_EP_MODERATIONS) | SL_EP_BIT(SL_EP_IMAGES) |
                 SL_EP_BIT(SL_EP_SPEECH) | SL_EP_BIT(SL_EP_TRANSCRIPTIONS),
    .build_request = sl_openai_build_request,
    .parse_response = sl_openai_parse_response,
    .parse_stream_event = sl_openai_parse_stream_event,
    .map_error = sl_openai_map_error,
};

/* gemini/ and vertex_ai/: OpenAI chat completions and embeddings <->
 * Google's generateContent API, on Google AI Studio (x-goog-api-key) and on
 * Vertex AI (an OAuth2 access token from a service account: google_auth.c;
 * project and location in the URL).
 *
 * Request: system and developer messages become systemInstruction; turns
 * become contents with role user or model (consecutive turns of one role are
 * merged); assistant tool_calls become functionCall parts and "tool" messages
 * functionResponse parts, named by looking up the call's id in the earlier
 * assistant turns (Gemini has no call ids). Images: data URLs -> inlineData,
 * http(s)/gs URLs -> fileData. tools -> functionDeclarations with the JSON
 * Schema cut down to the OpenAPI subset Gemini accepts (clean_schema);
 * tool_choice -> toolConfig.functionCallingConfig; sampling parameters,
 * stop, n, seed, response_format and reasoning_effort -> generationConfig.
 *
 * Reply: each candidate is a choice; text parts join into content, thought
 * parts into reasoning_content, functionCall parts into tool_calls with ids
 * we make (call_<request>_<n>; a thoughtSignature rides along in the id
 * after "__thought__" so it comes back on the next turn, as LiteLLM does).
 * usageMetadata -> usage (thoughts count as completion and reasoning tokens).
 *
 * Stream (alt=sse): every event is a whole GenerateContentResponse; parts
 * become deltas, a functionCall a complete tool-call delta, finishReason the
 * finish chunk; the event that finishes every candidate also carries the
 * last usage, so it ends the stream with the usage chunk. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "google_auth.h"
#include "jsonutil.h"
#include "request.h"
#include "status.h"
#include "translate.h"

#define GEMINI_BASE "https://generativelanguage.googleapis.com"
#define GEMINI_VERSION "v1beta"
#define VERTEX_VERSION "v1"
#define VERTEX_LOCATION "us-central1"
#define MAX_CANDIDATES 8          /* Gemini's candidateCount limit */
#define SCHEMA_MAX_DEPTH 32       /* nesting, $refs included: a $ref cycle ends here */
#define SCHEMA_MAX_NODES 10000    /* inlined $refs could otherwise grow a schema without bound */
#define TOKEN_TIMEOUT_MS 30000L   /* the OAuth2 exchange, when the deployment allows more */
#define THOUGHT_SEP "__thought__" /* LiteLLM's separator of a call id and its thoughtSignature */

/* Per-request adapter state (req->pstate). */
struct gem {
    struct sl_tr_ids ids;
    int vertex;
    int base64;                           /* embeddings: encoding_format base64 */
    long est_tokens;                      /* embeddings: our estimate of the input */
    int n_ids;                            /* tool call ids handed out */
    unsigned char started[MAX_CANDIDATES];/* stream: the role chunk of the choice went out */
    unsigned char finished[MAX_CANDIDATES];
    int n_calls[MAX_CANDIDATES];          /* tool calls of each choice */
    long prompt, output, thoughts, cached;/* the last usageMetadata */
    const json_t *creds;                  /* borrowed (arena-deferred): the Vertex key used */
    const char *token;                    /* the access token sent (arena) */
};

static struct gem *state(struct sl_request *req)
{
    if (req->pstate == NULL)
        req->pstate = sl_arena_calloc(req->arena, 1, sizeof(struct gem));
    return req->pstate;
}

/* ---- request: content ---- */

static const char *const supported[] = {
    "max_tokens", "max_completion_tokens", "stop", "stream", "stream_options",
    "temperature", "top_p", "n", "seed", "presence_penalty", "frequency_penalty",
    "tools", "tool_choice", "parallel_tool_calls", "user", "response_format",
    "reasoning_effort", NULL
};

/* A MIME type from a URL's extension; Gemini needs one for fileData. */
static const char *guess_mime(const char *url)
{
    static const struct { const char *ext, *mime; } types[] = {
        { "png", "image/png" }, { "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" },
        { "gif", "image/gif" }, { "webp", "image/webp" }, { "heic", "image/heic" },
        { "heif", "image/heif" }, { "pdf", "application/pdf" }, { "txt", "text/plain" },
        { "mp3", "audio/mpeg" }, { "wav", "audio/wav" }, { "flac", "audio/flac" },
        { "ogg", "audio/ogg" }, { "mp4", "video/mp4" }, { "mov", "video/quicktime" },
        { "webm", "video/webm" },
    };
    size_t end = strcspn(url, "?#"), i = end;

    while (i > 0 && url[i - 1] != '.' && url[i - 1] != '/')
        i--;
    if (i > 0 && url[i - 1] == '.')
        for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
            if (strlen(types[k].ext) == end - i && strncasecmp(url + i, types[k].ext, end - i) == 0)
                return types[k].mime;
    return "image/jpeg";
}

/* inlineData for a base64 data URL, fileData for an http(s) or gs URL. */
static json_t *media_part(struct sl_request *req, const char *url, const char *mime_hint, int *rc)
{
    const char *mime, *data;

    if (sl_tr_data_url(req, url, &mime, &data))
        return json_pack("{s:{s:s, s:s}}", "inlineData", "mimeType", mime, "data", data);
    if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0 ||
        strncmp(url, "gs://", 5) == 0)
        return json_pack("{s:{s:s, s:s}}", "fileData", "mimeType", mime_hint ? mime_hint : guess_mime(url),
                         "fileUri", url);
    *rc = sl_tr_bad(req, "image and file URLs must be http(s), gs:// or base64 data URLs.");
    return NULL;
}

/* One OpenAI content part -> one Gemini part; *skip for an empty text. */
static json_t *content_part(struct sl_request *req, const json_t *part, int *rc, int *skip)
{
    const char *type = sl_tr_str(part, "type");

    *skip = 0;
    if (type == NULL) {
        *rc = sl_tr_bad(req, "content parts need a type.");
        return NULL;
    }
    if (strcmp(type, "text") == 0) {
        const json_t *t = json_object_get(part, "text");

        if (!json_is_string(t)) {
            *rc = sl_tr_bad(req, "text parts need a text string.");
            return NULL;
        }
        *skip = json_string_length(t) == 0;
        return *skip ? NULL : json_pack("{s:O}", "text", t);
    }
    if (strcmp(type, "image_url") == 0) {
        const json_t *iu = json_object_get(part, "image_url");
        const char *url = json_is_string(iu) ? json_string_value(iu) : sl_tr_str(iu, "url");

        if (url == NULL) {
            *rc = sl_tr_bad(req, "image_url parts need a url.");
            return NULL;
        }
        return media_part(req, url, sl_tr_str(iu, "format"), rc);
    }
    if (strcmp(type, "file") == 0) {
        const json_t *f = json_object_get(part, "file");
        const char *url = sl_tr_str(f, "file_data") ? sl_tr_str(f, "file_data") : sl_tr_str(f, "file_id");

        if (url == NULL) {
            *rc = sl_tr_bad(req, "file parts need file_data (a base64 data URL) or file_id (a URL).");
            return NULL;
        }
        return media_part(req, url, sl_tr_str(f, "format"), rc);
    }
    if (strcmp(type, "input_audio") == 0) {
        const json_t *a = json_object_get(part, "input_audio");
        const char *data = sl_tr_str(a, "data"), *fmt = sl_tr_str(a, "format");

        if (data == NULL || fmt == NULL) {
            *rc = sl_tr_bad(req, "input_audio parts need data and format.");
            return NULL;
        }
        return json_pack("{s:{s:s+, s:s}}", "inlineData", "mimeType", "audio/",
                         strcmp(fmt, "mp3") == 0 ? "mpeg" : fmt, "data", data);
    }
    *rc = sl_tr_bad(req, "gemini does not support content parts of type %.60s.", type);
    return NULL;
}

/* Appends the parts of an OpenAI message content to parts; text only when
 * text_only (system instructions). Empty text is left out: Gemini refuses
 * empty parts. */
static int add_content(struct sl_request *req, json_t *parts, const json_t *content, int text_only)
{
    size_t i;
    json_t *part, *p;
    int rc = SL_OK, skip;

    if (content == NULL || json_is_null(content))
        return SL_OK;
    if (json_is_string(content)) {
        if (json_string_length(content) == 0)
            return SL_OK;
        return json_array_append_new(parts, json_pack("{s:O}", "text", content)) ? SL_ERR_NOMEM : SL_OK;
    }
    if (!json_is_array(content))
        return sl_tr_bad(req, "message content must be a string or an array of parts.");
    json_array_foreach(content, i, part) {
        if (text_only && (sl_tr_str(part, "type") == NULL || strcmp(sl_tr_str(part, "type"), "text") != 0))
            return sl_tr_bad(req, "gemini takes only text in system messages.");
        p = content_part(req, part, &rc, &skip);
        if (skip)
            continue;
        if (p == NULL)
            return rc != SL_OK ? rc : SL_ERR_NOMEM;
        if (json_array_append_new(parts, p) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* An assistant's tool_calls -> functionCall parts (with the thoughtSignature
 * an id of ours carries). */
static int add_calls(struct sl_request *req, json_t *parts, const json_t *calls, size_t mi)
{
    size_t i;
    json_t *c;

    json_array_foreach(calls, i, c) {
        const json_t *fn = json_object_get(c, "function");
        const char *name = sl_tr_str(fn, "name"), *args = sl_tr_str(fn, "arguments"), *id = sl_tr_str(c, "id"), *sig;
        json_t *obj, *p;

        if (name == NULL)
            return sl_tr_bad(req, "messages[%zu].tool_calls[%zu] needs function.name.", mi, i);
        if (args == NULL || *args == '\0') {
            obj = json_object();
        } else {
            const char *why;

            obj = sl_json_parse(args, strlen(args), &why);
            if (!json_is_object(obj)) {
                json_decref(obj);
                return sl_tr_bad(req, "messages[%zu].tool_calls[%zu].function.arguments is not a JSON object.",
                                 mi, i);
            }
        }
        p = json_pack("{s:{s:s, s:o}}", "functionCall", "name", name, "args", obj);
        if (p != NULL && id != NULL && (sig = strstr(id, THOUGHT_SEP)) != NULL &&
            sig[strlen(THOUGHT_SEP)] != '\0')
            json_object_set_new(p, "thoughtSignature", json_string(sig + strlen(THOUGHT_SEP)));
        if (p == NULL || json_array_append_new(parts, p) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* The function a tool result answers: the name of the call with its id in
 * the nearest earlier assistant turn. */
static const char *call_name(const json_t *msgs, size_t before, const char *id)
{
    for (size_t j = before; j-- > 0;) {
        const json_t *m = json_array_get(msgs, j), *c;
        const char *role = sl_tr_str(m, "role");
        size_t i;

        if (role == NULL || strcmp(role, "assistant") != 0)
            continue;
        json_array_foreach(json_object_get(m, "tool_calls"), i, c)
            if (sl_tr_str(c, "id") != NULL && strcmp(sl_tr_str(c, "id"), id) == 0)
                return sl_tr_str(json_object_get(c, "function"), "name");
    }
    return NULL;
}

/* A "tool" message -> a functionResponse part: {name, response: {content}},
 * content being the result parsed when it is a JSON object, else its text. */
static int add_tool_result(struct sl_request *req, json_t *parts, const json_t *msgs, size_t mi)
{
    const json_t *m = json_array_get(msgs, mi);
    const char *id = sl_tr_str(m, "tool_call_id"), *name, *text, *why;
    json_t *value = NULL, *p;

    if (id == NULL)
        return sl_tr_bad(req, "messages[%zu]: a tool message needs tool_call_id.", mi);
    if ((name = call_name(msgs, mi, id)) == NULL && (name = sl_tr_str(m, "name")) == NULL)
        return sl_tr_bad(req, "messages[%zu]: tool_call_id %.80s matches no earlier assistant tool call.", mi, id);
    text = sl_json_content_text(req->arena, json_object_get(m, "content"));
    if (text == NULL)
        return SL_ERR_NOMEM;
    if (*text == '{' && (value = sl_json_parse(text, strlen(text), &why)) != NULL && !json_is_object(value)) {
        json_decref(value);
        value = NULL;
    }
    if (value == NULL && (value = json_string(text)) == NULL)
        return sl_tr_bad(req, "messages[%zu]: the tool result is not valid UTF-8.", mi);
    p = json_pack("{s:{s:s, s:{s:o}}}", "functionResponse", "name", name, "response", "content", value);
    return p != NULL && json_array_append_new(parts, p) == 0 ? SL_OK : SL_ERR_NOMEM;
}

static int convert_messages(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *msgs = json_object_get(in, "messages");
    json_t *system = json_array(), *contents = json_array(), *m, *parts;
    size_t i;
    int rc = SL_OK;

    if (system == NULL || contents == NULL || json_object_set_new(body, "contents", contents) != 0 ||
        json_object_set_new(body, "systemInstruction", json_pack("{s:o}", "parts", system)) != 0)
        return SL_ERR_NOMEM;
    json_array_foreach(msgs, i, m) {
        const char *role = sl_tr_str(m, "role"), *turn_role = "user";
        const json_t *content = json_object_get(m, "content");

        if (role == NULL)
            return sl_tr_bad(req, "messages[%zu] needs a role.", i);
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if ((rc = add_content(req, system, content, 1)) != SL_OK)
                return rc;
            continue;
        }
        if ((parts = json_array()) == NULL)
            return SL_ERR_NOMEM;
        if (strcmp(role, "user") == 0) {
            rc = add_content(req, parts, content, 0);
        } else if (strcmp(role, "assistant") == 0) {
            turn_role = "model";
            if ((rc = add_content(req, parts, content, 0)) == SL_OK)
                rc = add_calls(req, parts, json_object_get(m, "tool_calls"), i);
        } else if (strcmp(role, "tool") == 0) {
            rc = add_tool_result(req, parts, msgs, i);
        } else {
            rc = sl_tr_bad(req, "messages[%zu]: gemini does not support the role %.40s.", i, role);
        }
        if (rc != SL_OK) {
            json_decref(parts);
            return rc;
        }
        if ((rc = sl_tr_add_turn(contents, turn_role, "parts", parts)) != SL_OK)
            return rc;
    }
    if (json_array_size(contents) == 0)
        return sl_tr_bad(req, "messages: at least one user or assistant message is required.");
    if (json_array_size(system) == 0)
        json_object_del(body, "systemInstruction");
    return SL_OK;
}

/* ---- request: JSON Schema -> Gemini's Schema ----
 *
 * Gemini's Schema is a subset of OpenAPI 3.0 and refuses every key outside
 * it ("Invalid JSON payload received. Unknown name"). Like LiteLLM
 * (_build_vertex_schema), we inline $refs into $defs/definitions, turn
 * "null" in a type list or an anyOf into nullable, and drop $schema, $id,
 * additionalProperties, strict and title; beyond LiteLLM, every other key
 * outside the subset goes too (the list is @google/genai's Schema type),
 * const becomes a one-value enum, enum values become strings, and format
 * stays only where Gemini takes it. Property names are never touched. */

struct schema_ctx {
    struct sl_request *req;
    const json_t *root;     /* borrowed: where "#/..." refs point */
    int ordering;           /* response schemas: add propertyOrdering */
    int nodes;              /* schema objects made so far */
    int rc;                 /* why NULL was returned */
};

static const char *const schema_kept[] = {
    "description", "pattern", "example", "default", "minItems", "maxItems", "minLength",
    "maxLength", "minProperties", "maxProperties", "minimum", "maximum", "nullable",
    "propertyOrdering", NULL
};

static json_t *clean_schema(struct schema_ctx *cx, const json_t *s, int depth);

static int kept_key(const char *key)
{
    for (size_t i = 0; schema_kept[i] != NULL; i++)
        if (strcmp(schema_kept[i], key) == 0)
            return 1;
    return 0;
}

static const json_t *resolve_ref(const struct schema_ctx *cx, const char *ref)
{
    if (strcmp(ref, "#") == 0)
        return cx->root;
    if (strncmp(ref, "#/$defs/", 8) == 0)
        return json_object_get(json_object_get(cx->root, "$defs"), ref + 8);
    if (strncmp(ref, "#/definitions/", 14) == 0)
        return json_object_get(json_object_get(cx->root, "definitions"), ref + 14);
    return NULL;
}

/* Copies src's keys that out lacks (a merged single anyOf/allOf branch). */
static void merge_missing(json_t *out, const json_t *src)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)src, key, v)
        if (json_object_get(out, key) == NULL)
            json_object_set(out, key, v);
}

/* type: a string stays; a list gives its first non-null type, and nullable
 * when "null" is in it. */
static int clean_type(json_t *out, const json_t *type)
{
    size_t i;
    json_t *t;
    const char *first = NULL;
    int null = 0;

    if (json_is_string(type))
        return json_object_set(out, "type", (json_t *)type) ? SL_ERR_NOMEM : SL_OK;
    json_array_foreach(type, i, t) {
        if (!json_is_string(t))
            continue;
        if (strcmp(json_string_value(t), "null") == 0)
            null = 1;
        else if (first == NULL)
            first = json_string_value(t);
    }
    if (first != NULL && json_object_set_new(out, "type", json_string(first)) != 0)
        return SL_ERR_NOMEM;
    if (null && json_object_set_new(out, "nullable", json_true()) != 0)
        return SL_ERR_NOMEM;
    return SL_OK;
}

/* enum (or const) values as strings, which is all Gemini's enum takes. */
static int clean_enum(json_t *out, const json_t *values)
{
    json_t *list = json_array(), *v;
    size_t i;
    char num[64];

    if (list == NULL || json_object_set_new(out, "enum", list) != 0)
        return SL_ERR_NOMEM;
    json_array_foreach(values, i, v) {
        if (json_is_string(v)) {
            json_array_append(list, v);
        } else if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            json_array_append_new(list, json_string(num));
        } else if (json_is_real(v)) {
            snprintf(num, sizeof(num), "%.17g", json_real_value(v));
            json_array_append_new(list, json_string(num));
        } else if (json_is_boolean(v)) {
            json_array_append_new(list, json_string(json_is_true(v) ? "true" : "false"));
        } else if (json_is_null(v)) {
            json_object_set_new(out, "nullable", json_true());
        }
    }
    return SL_OK;
}

/* anyOf / oneOf: null branches become nullable; one branch left is merged
 * into out, more stay an anyOf. */
static int clean_any_of(struct schema_ctx *cx, json_t *out, const json_t *branches, int depth)
{
    json_t *list = json_array(), *b, *c;
    size_t i;
    int rc = SL_OK;

    if (list == NULL)
        return SL_ERR_NOMEM;
    json_array_foreach(branches, i, b) {
        if ((c = clean_schema(cx, b, depth + 1)) == NULL) {
            rc = cx->rc;
            goto out;
        }
        if (json_object_size(c) == 1 && sl_tr_str(c, "type") != NULL && strcmp(sl_tr_str(c, "type"), "null") == 0) {
            json_object_set_new(out, "nullable", json_true());
            json_decref(c);
        } else if (json_array_append_new(list, c) != 0) {
            rc = SL_ERR_NOMEM;
            goto out;
        }
    }
    if (json_array_size(list) == 1)
        merge_missing(out, json_array_get(list, 0));
    else if (json_array_size(list) > 1 && json_object_set(out, "anyOf", list) != 0)
        rc = SL_ERR_NOMEM;
out:
    json_decref(list);
    return rc;
}

static int clean_properties(struct schema_ctx *cx, json_t *out, const json_t *props, int depth)
{
    json_t *o = json_object(), *v, *c;
    const char *name;

    if (o == NULL || json_object_set_new(out, "properties", o) != 0)
        return SL_ERR_NOMEM;
    json_object_foreach((json_t *)props, name, v) {
        if ((c = clean_schema(cx, v, depth + 1)) == NULL)
            return cx->rc;
        if (json_object_set_new(o, name, c) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* What needs the whole object: required names that exist, format where
 * Gemini takes it, type object for properties, and propertyOrdering. */
static int finish_schema(struct schema_ctx *cx, json_t *out, const json_t *s)
{
    const json_t *props = json_object_get(out, "properties"), *req = json_object_get(s, "required"), *v;
    const char *type = sl_tr_str(out, "type"), *fmt = sl_tr_str(s, "format"), *name;
    json_t *list;
    size_t i;

    if (json_object_get(out, "enum") == NULL && json_object_get(s, "const") != NULL) {
        json_t *one = json_pack("[O]", json_object_get(s, "const"));

        if (one == NULL || clean_enum(out, one) != SL_OK) {
            json_decref(one);
            return SL_ERR_NOMEM;
        }
        json_decref(one);
    }
    if (json_is_array(req) && props != NULL) {
        if ((list = json_array()) == NULL || json_object_set_new(out, "required", list) != 0)
            return SL_ERR_NOMEM;
        json_array_foreach(req, i, v)
            if (json_is_string(v) && json_object_get(props, json_string_value(v)) != NULL)
                json_array_append(list, (json_t *)v);
        if (json_array_size(list) == 0)
            json_object_del(out, "required");
    }
    if (fmt != NULL && type != NULL &&
        ((strcasecmp(type, "string") == 0 && (strcmp(fmt, "enum") == 0 || strcmp(fmt, "date-time") == 0)) ||
         (strcasecmp(type, "integer") == 0 && (strcmp(fmt, "int32") == 0 || strcmp(fmt, "int64") == 0)) ||
         (strcasecmp(type, "number") == 0 && (strcmp(fmt, "float") == 0 || strcmp(fmt, "double") == 0))))
        json_object_set(out, "format", json_object_get(s, "format"));
    if (props != NULL && type == NULL && json_object_set_new(out, "type", json_string("object")) != 0)
        return SL_ERR_NOMEM;
    if (cx->ordering && json_object_size(props) > 1 && json_object_get(out, "propertyOrdering") == NULL) {
        if ((list = json_array()) == NULL || json_object_set_new(out, "propertyOrdering", list) != 0)
            return SL_ERR_NOMEM;
        json_object_foreach((json_t *)props, name, v)
            json_array_append_new(list, json_string(name));
    }
    return SL_OK;
}

/* A JSON Schema -> Gemini's Schema: a new reference, or NULL with cx->rc. */
static json_t *clean_schema(struct schema_ctx *cx, const json_t *s, int depth)
{
    const char *key, *ref = sl_tr_str(s, "$ref");
    json_t *out, *v, *c;
    int rc = SL_OK;

    if (depth > SCHEMA_MAX_DEPTH || ++cx->nodes > SCHEMA_MAX_NODES) {
        cx->rc = sl_tr_bad(cx->req, "a JSON schema is too large or too deeply nested for gemini "
                           "(or its $refs form a cycle).");
        return NULL;
    }
    if (ref != NULL) {
        const json_t *target = resolve_ref(cx, ref);

        if (target == NULL) {
            cx->rc = sl_tr_bad(cx->req, "the JSON schema reference %.100s cannot be resolved.", ref);
            return NULL;
        }
        if ((out = clean_schema(cx, target, depth + 1)) != NULL && sl_tr_str(s, "description") != NULL)
            json_object_set(out, "description", json_object_get(s, "description"));
        return out;
    }
    if ((out = json_object()) == NULL) {
        cx->rc = SL_ERR_NOMEM;
        return NULL;
    }
    json_object_foreach((json_t *)s, key, v) {
        if (strcmp(key, "type") == 0) {
            rc = clean_type(out, v);
        } else if (strcmp(key, "properties") == 0 && json_is_object(v)) {
            rc = clean_properties(cx, out, v, depth);
        } else if (strcmp(key, "items") == 0 && (json_is_object(v) || json_array_size(v) > 0)) {
            if ((c = clean_schema(cx, json_is_object(v) ? v : json_array_get(v, 0), depth + 1)) == NULL)
                rc = cx->rc;
            else
                rc = json_object_set_new(out, "items", c) ? SL_ERR_NOMEM : SL_OK;
        } else if ((strcmp(key, "anyOf") == 0 || strcmp(key, "oneOf") == 0) && json_is_array(v)) {
            rc = clean_any_of(cx, out, v, depth);
        } else if (strcmp(key, "allOf") == 0 && json_is_array(v)) {
            size_t i;
            json_t *b;

            json_array_foreach(v, i, b) {
                if ((c = clean_schema(cx, b, depth + 1)) == NULL) {
                    rc = cx->rc;
                    break;
                }
                merge_missing(out, c);
                json_decref(c);
            }
        } else if (strcmp(key, "enum") == 0 && json_is_array(v)) {
            rc = clean_enum(out, v);
        } else if (kept_key(key)) {
            rc = json_object_set(out, key, v) ? SL_ERR_NOMEM : SL_OK;
        }
        if (rc != SL_OK)
            break;
    }
    if (rc == SL_OK)
        rc = finish_schema(cx, out, s);
    if (rc != SL_OK) {
        json_decref(out);
        cx->rc = rc;
        return NULL;
    }
    return out;
}

/* ---- request: tools and generationConfig ---- */

static int convert_tools(struct sl_request *req, const json_t *in, json_t *body)
{
    const json_t *tools = json_object_get(in, "tools"), *tc = json_object_get(in, "tool_choice");
    json_t *decls = json_array(), *t, *fcc = NULL;
    size_t i;

    if (decls == NULL || json_object_set_new(body, "tools", json_pack("[{s:o}]", "functionDeclarations", decls)) != 0)
        return SL_ERR_NOMEM;
    json_array_foreach(tools, i, t) {
        const json_t *fn = json_object_get(t, "function"), *params = json_object_get(fn, "parameters");
        json_t *decl;

        if (sl_tr_str(t, "type") == NULL || strcmp(sl_tr_str(t, "type"), "function") != 0 || sl_tr_str(fn, "name") == NULL)
            return sl_tr_bad(req, "tools[%zu]: gemini takes tools of type function with a name.", i);
        if ((decl = json_pack("{s:s}", "name", sl_tr_str(fn, "name"))) == NULL || json_array_append_new(decls, decl) != 0)
            return SL_ERR_NOMEM;
        if (sl_tr_str(fn, "description") != NULL)
            json_object_set(decl, "description", json_object_get(fn, "description"));
        if (json_is_object(params)) {
            struct schema_ctx cx = { .req = req, .root = params };
            json_t *p = clean_schema(&cx, params, 0);

            if (p == NULL)
                return cx.rc;
            /* An object without properties is refused ("should be non-empty
             * for OBJECT type"): a function without parameters says it. */
            if (json_object_size(json_object_get(p, "properties")) == 0 &&
                (sl_tr_str(p, "type") == NULL || strcasecmp(sl_tr_str(p, "type"), "object") == 0))
                json_decref(p);
            else if (json_object_set_new(decl, "parameters", p) != 0)
                return SL_ERR_NOMEM;
        }
    }
    if (json_array_size(decls) == 0) {
        json_object_del(body, "tools");
        return SL_OK;
    }
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);

        if (strcmp(s, "auto") == 0)
            fcc = json_pack("{s:s}", "mode", "AUTO");
        else if (strcmp(s, "required") == 0)
            fcc = json_pack("{s:s}", "mode", "ANY");
        else if (strcmp(s, "none") == 0)
            fcc = json_pack("{s:s}", "mode", "NONE");
        else
            return sl_tr_bad(req, "tool_choice must be auto, required, none or a function.");
    } else if (json_is_object(tc)) {
        const char *name = sl_tr_str(json_object_get(tc, "function"), "name");

        if (name == NULL)
            return sl_tr_bad(req, "tool_choice needs function.name.");
        fcc = json_pack("{s:s, s:[s]}", "mode", "ANY", "allowedFunctionNames", name);
    } else {
        return SL_OK;
    }
    return fcc != NULL && json_object_set_new(body, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc)) == 0
           ? SL_OK : SL_ERR_NOMEM;
}

/* reasoning_effort -> thinkingConfig with LiteLLM's budgets (minimal 128,
 * low 1024, medium 2048, high 4096; none 0); Gemini 3 models take a
 * thinkingLevel instead (low or high). An Anthropic-style "thinking"
 * {type, budget_tokens} is honoured too, as LiteLLM does. */
static int thinking_config(struct sl_request *req, const json_t *in, json_t *gen)
{
    const json_t *re = json_object_get(in, "reasoning_effort"), *th = json_object_get(in, "thinking");
    const char *e = json_is_string(re) ? json_string_value(re) : sl_tr_str(re, "effort");
    int gemini3 = strstr(req->dep->upstream_model, "gemini-3") != NULL, off;
    json_t *tc = NULL;
    long budget;

    if (e != NULL) {
        off = strcmp(e, "none") == 0 || strcmp(e, "disable") == 0;
        if (off)
            budget = 0;
        else if (strcmp(e, "minimal") == 0)
            budget = 128;
        else if (strcmp(e, "low") == 0)
            budget = 1024;
        else if (strcmp(e, "medium") == 0)
            budget = 2048;
        else if (strcmp(e, "high") == 0)
            budget = 4096;
        else
            return sl_tr_bad(req, "reasoning_effort must be none, minimal, low, medium or high.");
        tc = gemini3 ? json_pack("{s:s, s:b}", "thinkingLevel", budget > 1024 ? "high" : "low", "includeThoughts", !off)
                     : json_pack("{s:I, s:b}", "thinkingBudget", (json_int_t)budget, "includeThoughts", !off);
    }
    if (json_is_object(th)) {
        const json_t *bt = json_object_get(th, "budget_tokens");
        int on = sl_tr_str(th, "type") != NULL && strcmp(sl_tr_str(th, "type"), "enabled") == 0;

        json_decref(tc);
        tc = json_pack("{s:b}", "includeThoughts", on && !(json_is_integer(bt) && json_integer_value(bt) == 0));
        if (tc != NULL && json_is_integer(bt) && !gemini3)
            json_object_set(tc, "thinkingBudget", (json_t *)bt);
    }
    if (e == NULL && !json_is_object(th))
        return SL_OK;
    return tc != NULL && json_object_set_new(gen, "thinkingConfig", tc) == 0 ? SL_OK : SL_ERR_NOMEM;
}

static int response_format(struct sl_request *req, const json_t *in, json_t *gen)
{
    const json_t *rf = json_object_get(in, "response_format");
    const char *type = sl_tr_str(rf, "type");
    const json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");

    if (type == NULL || strcmp(type, "text") == 0)
        return SL_OK;
    if (strcmp(type, "json_object") != 0 && strcmp(type, "json_schema") != 0)
        return sl_tr_bad(req, "response_format type %.40s is not supported by gemini.", type);
    if (json_object_set_new(gen, "responseMimeType", json_string("application/json")) != 0)
        return SL_ERR_NOMEM;
    if (strcmp(type, "json_schema") == 0 && json_is_object(schema)) {
        struct schema_ctx cx = { .req = req, .root = schema, .ordering = 1 };
        json_t *s = clean_schema(&cx, schema, 0);

        if (s == NULL)
            return cx.rc;
        if (json_object_set_new(gen, "responseSchema", s) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

static int generation_config(struct sl_request *req, const json_t *in, json_t *body)
{
    static const struct { const char *from, *to; } same[] = {
        { "temperature", "temperature" }, { "top_p", "topP" }, { "seed", "seed" },
        { "presence_penalty", "presencePenalty" }, { "frequency_penalty", "frequencyPenalty" },
        { "top_k", "topK" },
    };
    json_t *gen = json_object(), *v, *stop;
    long max_tokens = sl_tr_max_tokens(in);
    int rc, bad;

    if (gen == NULL || json_object_set_new(body, "generationConfig", gen) != 0)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        if (json_is_number(v = json_object_get(in, same[i].from)))
            json_object_set(gen, same[i].to, v);
    if (max_tokens > 0)
        json_object_set_new(gen, "maxOutputTokens", json_integer(max_tokens));
    if ((stop = sl_tr_stop_list(in, &bad)) != NULL)
        json_object_set_new(gen, "stopSequences", stop);
    else if (bad)
        return sl_tr_bad(req, "stop must be a string or an array of strings.");
    if (json_is_integer(v = json_object_get(in, "n")) && json_integer_value(v) != 1) {
        if (json_integer_value(v) < 1 || json_integer_value(v) > MAX_CANDIDATES)
            return sl_tr_bad(req, "n must be between 1 and %d for gemini.", MAX_CANDIDATES);
        json_object_set(gen, "candidateCount", v);
    }
    if ((rc = response_format(req, in, gen)) != SL_OK || (rc = thinking_config(req, in, gen)) != SL_OK)
        return rc;
    if (json_object_size(gen) == 0)
        json_object_del(body, "generationConfig");
    return SL_OK;
}

/* Gemini's own request fields a client (or the deployment) may set. */
static void native_fields(struct sl_request *req, const json_t *in, json_t *body)
{
    static const struct { const char *from, *to; } fields[] = {
        { "safety_settings", "safetySettings" }, { "safetySettings", "safetySettings" },
        { "cached_content", "cachedContent" }, { "cachedContent", "cachedContent" },
        { "labels", "labels" },
    };
    const json_t *v;

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if ((v = json_object_get(in, fields[i].from)) == NULL)
            v = json_object_get(req->dep->litellm_params, fields[i].from);
        if (v != NULL && !json_is_null(v) && json_object_get(body, fields[i].to) == NULL)
            json_object_set(body, fields[i].to, (json_t *)v);
    }
}

static int build_chat(struct sl_request *req, const json_t *in, json_t *body)
{
    int rc;

    if ((rc = sl_tr_check_params(req, in, supported)) != SL_OK ||
        (rc = convert_messages(req, in, body)) != SL_OK ||
        (rc = convert_tools(req, in, body)) != SL_OK ||
        (rc = generation_config(req, in, body)) != SL_OK)
        return rc;
    native_fields(req, in, body);
    return SL_OK;
}

/* ---- request: embeddings ---- */

static int build_embed(struct sl_request *req, const json_t *in, json_t *body, struct gem *st)
{
    const json_t *input = json_object_get(in, "input"), *dims = json_object_get(in, "dimensions"), *v;
    const char *fmt = sl_tr_str(in, "encoding_format"), *task = sl_tr_str(in, "task_type");
    json_t *list = json_array(), *one, *texts;
    size_t i;

    if (list == NULL || json_object_set_new(body, st->vertex ? "instances" : "requests", list) != 0)
        return SL_ERR_NOMEM;
    if (fmt != NULL && strcmp(fmt, "float") != 0 && strcmp(fmt, "base64") != 0)
        return sl_tr_bad(req, "encoding_format must be float or base64.");
    st->base64 = fmt != NULL && strcmp(fmt, "base64") == 0;
    if (dims != NULL && !(json_is_integer(dims) && json_integer_value(dims) > 0))
        return sl_tr_bad(req, "dimensions must be a positive integer.");
    texts = json_is_string(input) ? json_pack("[O]", input) : json_incref((json_t *)input);
    if (sl_arena_defer(req->arena, sl_json_decref_cb, texts) != SL_OK)
        return SL_ERR_NOMEM;
    if (json_array_size(texts) == 0)
        return sl_tr_bad(req, "input must be a non-empty string or array of strings for gemini.");
    json_array_foreach(texts, i, v) {
        if (!json_is_string(v))
            return sl_tr_bad(req, "input[%zu]: gemini embeds text only (a string).", i);
        /* Gemini's batch reply has no usage: ~4 bytes a token, for spend. */
        st->est_tokens += (long)(json_string_length(v) + 3) / 4;
        if (st->vertex)
            one = json_pack("{s:O}", "content", v);
        else
            one = json_pack("{s:s+, s:{s:[{s:O}]}}", "model", "models/", req->dep->upstream_model,
                            "content", "parts", "text", v);
        if (one == NULL || json_array_append_new(list, one) != 0)
            return SL_ERR_NOMEM;
        if (!st->vertex && dims != NULL)
            json_object_set(one, "outputDimensionality", (json_t *)dims);
        if (task != NULL)
            json_object_set_new(one, st->vertex ? "task_type" : "taskType", json_string(task));
    }
    if (st->vertex && dims != NULL &&
        json_object_set_new(body, "parameters", json_pack("{s:O}", "outputDimensionality", dims)) != 0)
        return SL_ERR_NOMEM;
    return SL_OK;
}

/* ---- request: where and with what credentials ---- */

static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : NULL;
}

/* A litellm_params string (or its alias), else the environment's. */
static const char *param(const struct sl_request *req, const char *name, const char *alias,
                         const char *env_name)
{
    const char *v = sl_tr_str(req->dep->litellm_params, name);

    if ((v == NULL || *v == '\0') && alias != NULL)
        v = sl_tr_str(req->dep->litellm_params, alias);
    if ((v == NULL || *v == '\0') && env_name != NULL)
        v = env(env_name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* Vertex AI's project and bearer token: vertex_access_token as is (a static
 * token: for operators with their own token source, and the golden tests),
 * else the service account's (google_auth.c). */
static int vertex_auth(struct sl_request *req, struct gem *st, const char **project, const char **token)
{
    const json_t *lp = req->dep->litellm_params, *src;
    json_t *creds = NULL;
    long timeout = req->dep->timeout_ms > 0 && req->dep->timeout_ms < TOKEN_TIMEOUT_MS
                   ? req->dep->timeout_ms : TOKEN_TIMEOUT_MS;
    int rc;

    *project = param(req, "vertex_project", "vertex_ai_project", "VERTEXAI_PROJECT");
    *token = param(req, "vertex_access_token", NULL, NULL);
    if (*token == NULL) {
        json_t *from_env = NULL;
        const char *e;

        if ((src = json_object_get(lp, "vertex_credentials")) == NULL || json_is_null(src))
            src = json_object_get(lp, "vertex_ai_credentials");
        if ((src == NULL || json_is_null(src)) &&
            ((e = env("VERTEXAI_CREDENTIALS")) != NULL || (e = env("GOOGLE_APPLICATION_CREDENTIALS")) != NULL) &&
            (src = from_env = json_string(e)) == NULL)
            return SL_ERR_NOMEM;
        if (src == NULL || json_is_null(src)) {
            req->err_msg = "vertex_ai: no credentials: set vertex_credentials (a service account key file "
                           "or its JSON), GOOGLE_APPLICATION_CREDENTIALS, or vertex_access_token.";
            return SL_ERR_AUTH;
        }
        rc = sl_google_auth_load(req, src, &creds);
        json_decref(from_env);
        if (rc != SL_OK)
            return rc;
        if (sl_arena_defer(req->arena, sl_json_decref_cb, creds) != SL_OK)
            return SL_ERR_NOMEM;
        if (*project == NULL)
            *project = sl_tr_str(creds, "project_id");
    }
    if (*project == NULL) {
        req->err_msg = "vertex_ai: no project: set vertex_project (or VERTEXAI_PROJECT).";
        return SL_ERR_CONFIG;
    }
    if (creds == NULL)
        return SL_OK;
    if ((rc = sl_google_auth_token(req, creds, timeout, token)) != SL_OK)
        return rc;
    st->creds = creds;
    st->token = *token;
    return SL_OK;
}

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* The model's URL for method. api_base may be a whole prefix up to the model
 * (LiteLLM's form for Vertex: "<api_base>:<method>"), a base with a path
 * (".../v1beta": /models/... is added, LiteLLM's form for Gemini), or a bare
 * host, which replaces Google's. */
static const char *model_url(struct sl_request *req, const struct gem *st, const char *project,
                             const char *location, const char *method)
{
    const char *model = req->dep->upstream_model;
    const char *q = strcmp(method, "streamGenerateContent") == 0 ? "?alt=sse" : "";
    const char *scheme, *prefix;
    char *base = NULL;
    size_t n;

    if (req->dep->api_base != NULL) {
        n = strlen(req->dep->api_base);
        while (n > 0 && req->dep->api_base[n - 1] == '/')
            n--;
        if ((base = sl_arena_strndup(req->arena, req->dep->api_base, n)) == NULL)
            return NULL;
        if (strstr(base, "/models/") != NULL || strstr(base, "/endpoints/") != NULL)
            return sl_arena_printf(req->arena, "%s:%s%s", base, method, q);
    }
    scheme = base ? strstr(base, "://") : NULL;
    scheme = scheme ? scheme + 3 : base;
    if (!st->vertex) {
        if (base == NULL)
            prefix = GEMINI_BASE "/" GEMINI_VERSION;
        else
            prefix = strchr(scheme, '/') ? base : sl_arena_printf(req->arena, "%s/" GEMINI_VERSION, base);
        return prefix ? sl_arena_printf(req->arena, "%s/models/%s:%s%s", prefix, model, method, q) : NULL;
    }
    if (base != NULL)
        prefix = strchr(scheme, '/') ? base : sl_arena_printf(req->arena, "%s/" VERTEX_VERSION, base);
    else if (strcmp(location, "global") == 0)
        prefix = "https://aiplatform.googleapis.com/" VERTEX_VERSION;
    else
        prefix = sl_arena_printf(req->arena, "https://%s-aiplatform.googleapis.com/" VERTEX_VERSION, location);
    if (prefix == NULL)
        return NULL;
    /* A tuned model is served by its endpoint (its name is all digits). */
    return sl_arena_printf(req->arena, "%s/projects/%s/locations/%s/%s/%s:%s%s", prefix, project, location,
                           all_digits(model) ? "endpoints" : "publishers/google/models", model, method, q);
}

static int build_request(struct sl_request *req, const json_t *in, struct sl_upstream_req *out,
                         int vertex)
{
    struct gem *st = state(req);
    const char *project = NULL, *location = NULL, *token = NULL, *method;
    json_t *body;
    int rc;

    if (st == NULL)
        return SL_ERR_NOMEM;
    memset(st, 0, sizeof(*st));   /* build_request may run again on one request (a retry) */
    st->vertex = vertex;
    if (req->endpoint != SL_EP_CHAT && req->endpoint != SL_EP_EMBEDDINGS)
        return SL_ERR_UNSUPPORTED;
    if ((body = json_object()) == NULL || sl_arena_defer(req->arena, sl_json_decref_cb, body) != SL_OK)
        return SL_ERR_NOMEM;
    rc = req->endpoint == SL_EP_CHAT ? build_chat(req, in, body) : build_embed(req, in, body, st);
    if (rc != SL_OK)
        return rc;
    /* Credentials last: a request we refuse anyway costs no token exchange. */
    if (vertex) {
        location = param(req, "vertex_location", "vertex_ai_location", "VERTEXAI_LOCATION");
        if (location == NULL && (location = env("VERTEX_LOCATION")) == NULL)
            location = VERTEX_LOCATION;
        if ((rc = vertex_auth(req, st, &project, &token)) != SL_OK)
            return rc;
    }
    if (req->endpoint == SL_EP_EMBEDDINGS)
        method = vertex ? "predict" : "batchEmbedContents";
    else
        method = req->stream ? "streamGenerateContent" : "generateContent";
    out->url = model_url(req, st, project, location, method);
    out->headers[out->n_headers++] = "Content-Type: application/json";
    if (vertex)
        out->headers[out->n_headers++] = sl_arena_printf(req->arena, "Authorization: Bearer %s", token);
    else if (req->dep->api_key != NULL)
        out->headers[out->n_headers++] = sl_arena_printf(req->arena, "x-goog-api-key: %s", req->dep->api_key);
    for (size_t i = 0; i < out->n_headers; i++)
        if (out->headers[i] == NULL)
            return SL_ERR_NOMEM;
    out->framing = SL_FRAMING_SSE;
    out->body = sl_json_dump(req->arena, body, &out->body_len);
    return out->url != NULL && out->body != NULL ? SL_OK : SL_ERR_NOMEM;
}

static int gemini_build_request(struct sl_request *req, const json_t *in, struct sl_upstream_req *out)
{
    return build_request(req, in, out, 0);
}

static int vertex_build_request(struct sl_request *req, const json_t *in, struct sl_upstream_req *out)
{
    return build_request(req, in, out, 1);
}

/* ---- reply ---- */

static const char *finish_reason(const char *r, int has_calls)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE",
        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", NULL
    };

    if (r == NULL)
        return NULL;
    if (strcmp(r, "MAX_TOKENS") == 0)
        return "length";
    for (size_t i = 0; filtered[i] != NULL; i++)
        if (strcmp(r, filtered[i]) == 0)
            return "content_filter";
    /* STOP, and OTHER, MALFORMED_FUNCTION_CALL, ...: Gemini has no reason of
     * its own for tool calls. */
    return has_calls ? "tool_calls" : "stop";
}

/* A token count; absurd values are capped so sums cannot overflow. */
static long num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;

    return n <= 0 ? 0 : n > (1LL << 40) ? 1L << 40 : (long)n;
}

/* usageMetadata counts are cumulative: the last one seen is the answer's. */
static void read_usage(struct gem *st, const json_t *u)
{
    if (!json_is_object(u))
        return;
    st->prompt = num(u, "promptTokenCount");
    st->output = num(u, "candidatesTokenCount");
    st->thoughts = num(u, "thoughtsTokenCount");
    st->cached = num(u, "cachedContentTokenCount");
}

/* promptTokenCount includes cached input, as OpenAI's prompt_tokens does;
 * thinking is billed as output. */
static json_t *usage(const struct gem *st)
{
    return sl_tr_usage(st->prompt, st->output + st->thoughts, st->cached, st->thoughts);
}

/* A tool call id of ours, with the call's thoughtSignature when it has one. */
static const char *call_id(struct sl_request *req, struct gem *st, const json_t *part)
{
    const char *sig = sl_tr_str(part, "thoughtSignature");
    int n = st->n_ids++;

    return sig != NULL && *sig ? sl_arena_printf(req->arena, "call_%.8s_%d" THOUGHT_SEP "%s", req->id, n, sig)
                               : sl_arena_printf(req->arena, "call_%.8s_%d", req->id, n);
}

/* A functionCall part -> an OpenAI tool call (with "index" when >= 0). */
static json_t *tool_call(struct sl_request *req, struct gem *st, const json_t *part, int index)
{
    const json_t *fc = json_object_get(part, "functionCall"), *args = json_object_get(fc, "args");
    const char *id = call_id(req, st, part);
    size_t n;
    char *text = json_is_object(args) ? sl_json_dump(req->arena, args, &n) : "{}";
    json_t *c;

    if (id == NULL || text == NULL)
        return NULL;
    c = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function",
                  "name", sl_tr_str(fc, "name"), "arguments", text);
    if (c != NULL && index >= 0 && json_object_set_new(c, "index", json_integer(index)) != 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static int is_call(const json_t *part)
{
    return sl_tr_str(json_object_get(part, "functionCall"), "name") != NULL;
}

/* One candidate -> an OpenAI message (new reference) and its finish_reason. */
static json_t *candidate_message(struct sl_request *req, struct gem *st, const json_t *cand,
                                 const char **finish)
{
    const json_t *parts = json_object_get(json_object_get(cand, "content"), "parts"), *p;
    json_t *msg = json_pack("{s:s}", "role", "assistant"), *calls = json_array(), *c;
    struct sl_buf text, reasoning;
    int any_text = 0, any_reasoning = 0, ok = msg != NULL && calls != NULL;
    size_t i;

    sl_buf_init(&text, SL_MAX_UPSTREAM_BODY);
    sl_buf_init(&reasoning, SL_MAX_UPSTREAM_BODY);
    json_array_foreach(parts, i, p) {
        const char *t = sl_tr_str(p, "text");

        if (!ok)
            break;
        if (is_call(p)) {
            ok = (c = tool_call(req, st, p, -1)) != NULL && json_array_append_new(calls, c) == 0;
        } else if (t != NULL && json_is_true(json_object_get(p, "thought"))) {
            ok = sl_buf_append(&reasoning, t, strlen(t)) == SL_OK;
            any_reasoning = 1;
        } else if (t != NULL) {
            ok = sl_buf_append(&text, t, strlen(t)) == SL_OK;
            any_text = 1;
        }
    }
    if (ok)
        ok = json_object_set_new(msg, "content", any_text ? json_stringn(text.data ? text.data : "", text.len)
                                                          : json_null()) == 0;
    if (ok && any_reasoning)
        ok = json_object_set_new(msg, "reasoning_content",
                                 json_stringn(reasoning.data ? reasoning.data : "", reasoning.len)) == 0;
    if (ok && json_array_size(calls) > 0)
        ok = json_object_set(msg, "tool_calls", calls) == 0;
    sl_buf_free(&text);
    sl_buf_free(&reasoning);
    *finish = finish_reason(sl_tr_str(cand, "finishReason"), json_array_size(calls) > 0);
    if (*finish == NULL)
        *finish = json_array_size(calls) > 0 ? "tool_calls" : "stop";
    json_decref(calls);
    if (!ok) {
        json_decref(msg);
        return NULL;
    }
    return msg;
}

static long candidate_index(const json_t *cand, size_t pos)
{
    const json_t *v = json_object_get(cand, "index");

    /* proto3 JSON leaves a zero index out. */
    return json_is_integer(v) ? (long)json_integer_value(v) : (long)pos;
}

/* The prompt was blocked: no candidates, promptFeedback.blockReason. */
static int blocked(struct sl_request *req, const char *reason)
{
    char msg[200];

    snprintf(msg, sizeof(msg), "The prompt was blocked by gemini's safety filters (blockReason %.40s).", reason);
    /* An upstream refusal in OpenAI's words: the core answers with it. */
    sl_tr_set_error(req, &req->upstream_err, 400, "invalid_request_error", msg, "content_policy_violation");
    return SL_ERR_UPSTREAM_STATUS;
}

static int chat_response(struct sl_request *req, struct gem *st, const json_t *v, json_t **out)
{
    const json_t *cands = json_object_get(v, "candidates"), *cand;
    const char *reason = sl_tr_str(json_object_get(v, "promptFeedback"), "blockReason"), *finish = "stop";
    json_t *msg, *choices;
    size_t i;

    if (sl_tr_ids_init(req, &st->ids, sl_tr_str(v, "responseId")) != SL_OK)
        return SL_ERR_NOMEM;
    read_usage(st, json_object_get(v, "usageMetadata"));
    if (json_array_size(cands) == 0) {
        if (reason != NULL)
            return blocked(req, reason);
        msg = json_pack("{s:s, s:n}", "role", "assistant", "content");
    } else {
        msg = candidate_message(req, st, json_array_get(cands, 0), &finish);
    }
    if (msg == NULL || (*out = sl_tr_completion(req, &st->ids, msg, finish, usage(st))) == NULL)
        return SL_ERR_NOMEM;
    choices = json_object_get(*out, "choices");
    json_array_foreach(cands, i, cand) {
        long idx = candidate_index(cand, i);

        if (i == 0) {
            json_object_set_new(json_array_get(choices, 0), "index", json_integer(idx));
            continue;
        }
        if ((msg = candidate_message(req, st, cand, &finish)) == NULL ||
            json_array_append_new(choices, json_pack("{s:I, s:o, s:s, s:n}", "index", (json_int_t)idx,
                                                     "message", msg, "finish_reason", finish, "logprobs")) != 0) {
            json_decref(*out);
            *out = NULL;
            return SL_ERR_NOMEM;
        }
    }
    return SL_OK;
}

/* Embedding values (a JSON array of numbers) -> OpenAI's embedding value. */
static json_t *embedding_value(struct sl_request *req, const json_t *values, int base64)
{
    size_t n = json_array_size(values), i;
    float *f = n ? sl_arena_alloc(req->arena, n * sizeof(float)) : NULL;
    json_t *x;

    if (n == 0 || f == NULL)
        return NULL;
    json_array_foreach(values, i, x) {
        double d = json_number_value(x);

        if (!json_is_number(x))
            return NULL;
        /* Out-of-range double -> float conversion is undefined behaviour. */
        f[i] = d > FLT_MAX ? FLT_MAX : d < -FLT_MAX ? -FLT_MAX : (float)d;
    }
    return sl_tr_embedding_value(req, f, n, base64);
}

static int embed_response(struct sl_request *req, struct gem *st, const json_t *v, json_t **out)
{
    const json_t *list = json_object_get(v, st->vertex ? "predictions" : "embeddings"), *e;
    json_t *data = json_array(), *value;
    long tokens = 0;
    size_t i;

    if (data == NULL || !json_is_array(list)) {
        json_decref(data);
        return SL_ERR_UPSTREAM_BAD;
    }
    json_array_foreach(list, i, e) {
        const json_t *emb = st->vertex ? json_object_get(e, "embeddings") : e;

        tokens += num(json_object_get(emb, "statistics"), "token_count");
        if ((value = embedding_value(req, json_object_get(emb, "values"), st->base64)) == NULL ||
            json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding",
                                                  "index", (json_int_t)i, "embedding", value)) != 0) {
            json_decref(data);
            return SL_ERR_UPSTREAM_BAD;
        }
    }
    if (!st->vertex)
        tokens = num(json_object_get(v, "usageMetadata"), "promptTokenCount");
    if (tokens == 0)
        tokens = st->est_tokens;
    *out = json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data,
                     "model", req->model ? req->model : "", "usage",
                     "prompt_tokens", (json_int_t)tokens, "total_tokens", (json_int_t)tokens);
    return *out != NULL ? SL_OK : SL_ERR_NOMEM;
}

static int gemini_parse_response(struct sl_request *req, const char *text, size_t len, json_t **out)
{
    struct gem *st = state(req);
    const char *why;
    json_t *v = sl_json_parse(text, len, &why);
    int rc;

    *out = NULL;
    if (st == NULL) {
        json_decref(v);
        return SL_ERR_NOMEM;
    }
    if (!json_is_object(v) || json_object_get(v, "error") != NULL) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    rc = req->endpoint == SL_EP_EMBEDDINGS ? embed_response(req, st, v, out) : chat_response(req, st, v, out);
    json_decref(v);
    return rc;
}

/* ---- errors ---- */

/* Google's {"code","message","status"} -> OpenAI's shape. */
static void map_google_error(struct sl_request *req, long http, const json_t *err, struct sl_error *e)
{
    static const struct { const char *status; int http; } statuses[] = {
        { "INVALID_ARGUMENT", 400 }, { "FAILED_PRECONDITION", 400 }, { "OUT_OF_RANGE", 400 },
        { "UNAUTHENTICATED", 401 }, { "PERMISSION_DENIED", 403 }, { "NOT_FOUND", 404 },
        { "RESOURCE_EXHAUSTED", 429 }, { "CANCELLED", 499 }, { "INTERNAL", 500 },
        { "UNAVAILABLE", 503 }, { "DEADLINE_EXCEEDED", 504 },
    };
    const char *status = sl_tr_str(err, "status"), *msg = sl_tr_str(err, "message"), *code = NULL;
    int st = (int)http;

    if (st < 400 && json_is_integer(json_object_get(err, "code")))
        st = (int)json_integer_value(json_object_get(err, "code"));
    for (size_t i = 0; status != NULL && i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(status, statuses[i].status) == 0)
            st = statuses[i].http;
    if (st < 400 || st > 599)
        st = 500;
    if (msg != NULL && (strstr(msg, "API key not valid") || strstr(msg, "API_KEY_INVALID") ||
                        strstr(msg, "API key expired")))
        st = 401;
    if (msg != NULL && st == 400 &&
        (strstr(msg, "exceeds the maximum number of tokens") || strstr(msg, "input token count") ||
         strstr(msg, "context window")))
        code = "context_length_exceeded";
    sl_tr_set_error(req, e, st, NULL, msg, code);
}

static int gemini_map_error(struct sl_request *req, long http_status, const json_t *body,
                            struct sl_error *out)
{
    struct gem *st = req->pstate;

    /* Streamed error replies come as a one-element array. */
    if (json_is_array(body))
        body = json_array_get(body, 0);
    map_google_error(req, http_status, json_object_get(body, "error"), out);
    /* A refused token (revoked, or expired early): the next request gets a new one. */
    if (st != NULL && st->creds != NULL && out->http_status == 401)
        sl_google_auth_forget(st->creds, st->token);
    return SL_OK;
}

/* ---- stream ---- */

/* One chunk for the choice idx. */
static int emit(struct sl_request *req, struct gem *st, long idx, json_t *delta, const char *finish,
                json_t **out)
{
    json_t *c = sl_tr_chunk(req, &st->ids, delta, finish);

    if (c != NULL && idx != 0 &&
        json_object_set_new(json_array_get(json_object_get(c, "choices"), 0), "index", json_integer(idx)) != 0) {
        json_decref(c);
        c = NULL;
    }
    return sl_tr_emit(out, c);
}

static int start_choice(struct sl_request *req, struct gem *st, long idx, json_t **out)
{
    if (st->started[idx])
        return SL_OK;
    st->started[idx] = 1;
    return emit(req, st, idx, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL, out);
}

static int stream_candidate(struct sl_request *req, struct gem *st, const json_t *cand, size_t pos,
                            json_t **out, int *finished)
{
    const json_t *parts = json_object_get(json_object_get(cand, "content"), "parts"), *p;
    const char *reason = sl_tr_str(cand, "finishReason");
    long idx = candidate_index(cand, pos);
    size_t i;
    int rc;

    if (idx < 0 || idx >= MAX_CANDIDATES)
        return SL_ERR_UPSTREAM_BAD;
    if ((rc = start_choice(req, st, idx, out)) != SL_OK)
        return rc;
    json_array_foreach(parts, i, p) {
        const json_t *t = json_object_get(p, "text");
        json_t *delta = NULL;

        if (is_call(p)) {
            json_t *c = tool_call(req, st, p, st->n_calls[idx]++);

            delta = c ? json_pack("{s:[o]}", "tool_calls", c) : NULL;
        } else if (json_is_string(t) && json_string_length(t) > 0) {
            delta = json_pack("{s:O}", json_is_true(json_object_get(p, "thought")) ? "reasoning_content" : "content", t);
        } else {
            continue;
        }
        if ((rc = emit(req, st, idx, delta, NULL, out)) != SL_OK)
            return rc;
    }
    if (reason != NULL && !st->finished[idx]) {
        st->finished[idx] = 1;
        *finished = 1;
        return emit(req, st, idx, json_object(), finish_reason(reason, st->n_calls[idx] > 0), out);
    }
    return SL_OK;
}

static int gemini_parse_stream_event(struct sl_request *req, const struct sl_sse_event *ev,
                                     json_t **out, int *done)
{
    struct gem *st = state(req);
    const char *why, *reason;
    const json_t *cands, *cand;
    json_t *v;
    size_t i;
    int rc = SL_OK, finished = 0, open = 0;

    *out = NULL;
    if (st == NULL)
        return SL_ERR_NOMEM;
    if (ev->data_len == 0)
        return SL_OK;
    v = sl_json_parse(ev->data, ev->data_len, &why);
    if (!json_is_object(v)) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    if (json_is_object(json_object_get(v, "error"))) {
        map_google_error(req, 0, json_object_get(v, "error"), &req->upstream_err);
        json_decref(v);
        return SL_ERR_UPSTREAM_STATUS;
    }
    if (st->ids.id == NULL && sl_tr_ids_init(req, &st->ids, sl_tr_str(v, "responseId")) != SL_OK) {
        json_decref(v);
        return SL_ERR_NOMEM;
    }
    read_usage(st, json_object_get(v, "usageMetadata"));
    cands = json_object_get(v, "candidates");
    reason = sl_tr_str(json_object_get(v, "promptFeedback"), "blockReason");
    if (json_array_size(cands) == 0 && reason != NULL && !st->finished[0]) {
        /* A blocked prompt: the stream has begun, so it ends as filtered. */
        if ((rc = start_choice(req, st, 0, out)) == SL_OK)
            rc = emit(req, st, 0, json_object(), "content_filter", out);
        st->finished[0] = finished = 1;
    }
    json_array_foreach(cands, i, cand)
        if (rc == SL_OK)
            rc = stream_candidate(req, st, cand, i, out, &finished);
    for (i = 0; i < MAX_CANDIDATES; i++)
        open |= st->started[i] && !st->finished[i];
    /* The event that finishes the last open choice carries the final usage. */
    if (rc == SL_OK && finished && !open) {
        rc = sl_tr_emit(out, sl_tr_usage_chunk(req, &st->ids, usage(st)));
        *done = 1;
    }
    json_decref(v);
    return rc;
}

const struct sl_provider sl_provider_gemini = {
    .name = "gemini",
    .abi = SL_PROVIDER_ABI,
    .flags = 0,
    .api_key_env = "GEMINI_API_KEY",
    .default_api_base = NULL,
    .endpoints = SL_EP_BIT(SL_EP_CHAT) | SL_EP_BIT(SL_EP_EMBEDDINGS),
    .build_request = gemini_build_request,
    .parse_response = gemini_parse_response,
    .parse_stream_event = gemini_parse_stream_event,
    .map_error = gemini_map_error,
};

const struct sl_provider sl_provider_vertex_ai = {
    .name = "vertex_ai",
    .abi = SL_PROVIDER_ABI,
    .flags = 0,
    .api_key_env = NULL,
    .default_api_base = NULL,
    .endpoints = SL_EP_BIT(SL_EP_CHAT) | SL_EP_BIT(SL_EP_EMBEDDINGS),
    .build_request = vertex_build_request,
    .parse_response = gemini_parse_response,
    .parse_stream_event = gemini_parse_stream_event,
    .map_error = gemini_map_error,
};

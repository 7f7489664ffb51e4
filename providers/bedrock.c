/* bedrock/: OpenAI chat completions and embeddings <-> Amazon Bedrock Runtime.
 *
 * Chat goes through Converse (/model/{id}/converse) and ConverseStream
 * (/converse-stream, AWS's binary event-stream, framed by framing.c);
 * embeddings through InvokeModel (/model/{id}/invoke) for Titan and Cohere
 * embedding models. Requests are signed with SigV4 (sigv4.c) for the service
 * "bedrock", with credentials from litellm_params (aws_access_key_id,
 * aws_secret_access_key, aws_session_token, aws_region_name) or else the
 * standard AWS environment variables; a Bedrock API key (api_key, or
 * AWS_BEARER_TOKEN_BEDROCK) is sent as a bearer token instead. Profiles,
 * role assumption and instance credentials are not supported.
 *
 * Request: system/developer messages become "system" blocks; "tool"
 * messages become toolResult blocks in a user turn; assistant tool_calls
 * become toolUse blocks; consecutive turns of one role are merged (Converse
 * wants user and assistant to alternate); images come from base64 data URLs
 * (or s3:// URLs) only — Bedrock cannot fetch http(s) URLs and neither do we.
 * tools -> toolConfig; tool_choice "none" has no Converse equivalent: the
 * tools are left out (unless the history holds tool blocks, which Converse
 * only accepts with a toolConfig; then the tools stay, without toolChoice).
 * max_tokens, temperature, top_p and stop -> inferenceConfig; everything
 * provider-specific (top_k, reasoning_effort as Claude's "thinking", any
 * non-OpenAI field) -> additionalModelRequestFields, as LiteLLM does.
 * response_format becomes a forced tool json_tool_call whose input is handed
 * back as the content (Converse has no JSON mode).
 *
 * Errors: Bedrock's error type travels in a header the core does not pass
 * on, so map_error works from the status and the body's "message". */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "jsonutil.h"
#include "request.h"
#include "sigv4.h"
#include "status.h"
#include "translate.h"

#define DEFAULT_REGION "us-east-1"
#define DEFAULT_MAX_TOKENS 4096
#define JSON_TOOL "json_tool_call"
#define SERVICE "bedrock"

enum embed_kind { EMB_TITAN = 1, EMB_COHERE };

/* Per-request adapter state (req->pstate). */
struct bedrock {
    struct sl_tr_ids ids;
    int json_mode;          /* response_format mapped to the forced JSON tool */
    int started;            /* the first chunk (role) went out */
    /* The open toolUse block while streaming (text blocks need no state). */
    enum { B_NONE, B_TOOL, B_JSON } block;
    long block_index;       /* its contentBlockIndex */
    int tool_index;         /* its OpenAI tool_calls index */
    int n_tools;            /* toolUse blocks seen */
    long input, output, cache_read, cache_write;
    enum embed_kind embed;  /* for an embeddings request */
    int base64;             /* encoding_format "base64" */
};

static struct bedrock *state(struct sl_request *req)
{
    if (req->pstate == NULL)
        req->pstate = sl_arena_calloc(req->arena, 1, sizeof(struct bedrock));
    return req->pstate;
}

/* A non-empty string from litellm_params, else NULL. */
static const char *param(const struct sl_request *req, const char *key)
{
    const char *v = sl_tr_str(req->dep->litellm_params, key);

    return v != NULL && *v != '\0' ? v : NULL;
}

/* A non-empty environment variable. The environment is only written at
 * start-up, before the workers exist, so reading it here is safe. */
static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : NULL;
}

/* The model id for the URL: litellm_params.model_id (a provisioned model or
 * inference profile ARN), else the model after "bedrock/", without
 * LiteLLM's "converse/" route marker. */
static const char *model_id(const struct sl_request *req)
{
    const char *m = param(req, "model_id");

    if (m != NULL)
        return m;
    m = req->dep->upstream_model;
    return strncmp(m, "converse/", 9) == 0 ? m + 9 : m;
}

static int contains(const char *s, const char *needle)
{
    return s != NULL && strstr(s, needle) != NULL;
}

static int is_claude(const struct sl_request *req)
{
    const char *m = model_id(req);

    return contains(m, "anthropic.") || contains(m, "claude");
}

/* ---- request: messages ---- */

static const char *const supported[] = {
    "max_tokens", "max_completion_tokens", "stop", "stream", "stream_options",
    "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", NULL
};

/* Claude on Bedrock also thinks (reasoning_effort -> "thinking"). */
static const char *const supported_claude[] = {
    "max_tokens", "max_completion_tokens", "stop", "stream", "stream_options",
    "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "reasoning_effort", NULL
};

static int append(json_t *arr, json_t *v)
{
    return v != NULL && json_array_append_new(arr, v) == 0 ? SL_OK : SL_ERR_NOMEM;
}

static int cache_point(json_t *blocks)
{
    return append(blocks, json_pack("{s:{s:s}}", "cachePoint", "type", "default"));
}

/* The Converse image format of a MIME type or file extension, or NULL. */
static const char *image_format(const char *t)
{
    static const char *const formats[] = { "png", "jpeg", "gif", "webp", NULL };

    if (strncmp(t, "image/", 6) == 0)
        t += 6;
    if (strcmp(t, "jpg") == 0)
        return "jpeg";
    for (size_t i = 0; formats[i] != NULL; i++)
        if (strcmp(t, formats[i]) == 0)
            return formats[i];
    return NULL;
}

/* One OpenAI image_url part -> an image block. */
static json_t *image_block(struct sl_request *req, const json_t *part, int *rc)
{
    const json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : sl_tr_str(iu, "url");
    const char *mime, *data, *fmt, *dot;

    if (url == NULL) {
        *rc = sl_tr_bad(req, "image_url parts need a url.");
        return NULL;
    }
    if (sl_tr_data_url(req, url, &mime, &data)) {
        if ((fmt = image_format(mime)) == NULL) {
            *rc = sl_tr_bad(req, "bedrock takes png, jpeg, gif or webp images, not %.60s.", mime);
            return NULL;
        }
        return json_pack("{s:{s:s, s:{s:s}}}", "image", "format", fmt, "source", "bytes", data);
    }
    if (strncmp(url, "s3://", 5) == 0) {
        dot = strrchr(url, '.');
        if (dot == NULL || (fmt = image_format(dot + 1)) == NULL) {
            *rc = sl_tr_bad(req, "an s3:// image URL must end in .png, .jpeg, .jpg, .gif or .webp.");
            return NULL;
        }
        return json_pack("{s:{s:s, s:{s:{s:s}}}}", "image", "format", fmt, "source",
                         "s3Location", "uri", url);
    }
    *rc = sl_tr_bad(req, "bedrock takes images only as base64 data URLs (data:image/png;base64,...) "
                    "or s3:// URLs; http(s) image URLs are not fetched.");
    return NULL;
}

/* A "file" part with base64 file_data -> a document block. Converse wants a
 * name of letters, digits, single spaces, hyphens, parentheses and brackets:
 * a generated one is always valid. */
static json_t *file_block(struct sl_request *req, const json_t *part, int n, int *rc)
{
    static const char *const types[][2] = {
        { "application/pdf", "pdf" }, { "text/csv", "csv" }, { "text/html", "html" },
        { "text/plain", "txt" }, { "text/markdown", "md" }, { "application/msword", "doc" },
        { "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx" },
        { "application/vnd.ms-excel", "xls" },
        { "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx" },
    };
    const char *fd = sl_tr_str(json_object_get(part, "file"), "file_data"), *mime, *data;

    if (fd == NULL || !sl_tr_data_url(req, fd, &mime, &data)) {
        *rc = sl_tr_bad(req, "file parts need file_data as a base64 data URL for bedrock.");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(mime, types[i][0]) == 0)
            return json_pack("{s:{s:s, s:s, s:{s:s}}}", "document", "format", types[i][1],
                             "name", sl_arena_printf(req->arena, "document-%d", n),
                             "source", "bytes", data);
    *rc = sl_tr_bad(req, "bedrock does not take documents of type %.80s.", mime);
    return NULL;
}

/* Appends the blocks of an OpenAI message content to blocks. Empty text is
 * left out: Converse rejects blank text blocks. */
static int add_content(struct sl_request *req, json_t *blocks, const json_t *content)
{
    size_t i;
    json_t *part, *b;
    int rc = SL_OK, docs = 0;

    if (content == NULL || json_is_null(content))
        return SL_OK;
    if (json_is_string(content))
        return json_string_length(content) == 0 ? SL_OK : append(blocks, json_pack("{s:O}", "text", content));
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
            b = json_pack("{s:O}", "text", t);
        } else if (strcmp(type, "image_url") == 0) {
            b = image_block(req, part, &rc);
        } else if (strcmp(type, "file") == 0) {
            b = file_block(req, part, ++docs, &rc);
        } else {
            return sl_tr_bad(req, "bedrock does not support content parts of type %.60s.", type);
        }
        if (b == NULL)
            return rc != SL_OK ? rc : SL_ERR_NOMEM;
        if ((rc = append(blocks, b)) != SL_OK)
            return rc;
        /* Prompt caching: a cache point after the marked part. */
        if (json_object_get(part, "cache_control") != NULL && (rc = cache_point(blocks)) != SL_OK)
            return rc;
    }
    return SL_OK;
}

/* Thinking blocks of an earlier answer go back first and unchanged (Claude
 * checks their signature). */
static int add_thinking(json_t *blocks, const json_t *tb)
{
    size_t i;
    json_t *b;

    json_array_foreach(tb, i, b) {
        const char *type = sl_tr_str(b, "type");
        json_t *r;

        if (type != NULL && strcmp(type, "redacted_thinking") == 0 && sl_tr_str(b, "data") != NULL)
            r = json_pack("{s:{s:O}}", "reasoningContent", "redactedContent", json_object_get(b, "data"));
        else if (type != NULL && strcmp(type, "thinking") == 0 && sl_tr_str(b, "thinking") != NULL)
            r = json_pack("{s:{s:{s:O, s:O*}}}", "reasoningContent", "reasoningText",
                          "text", json_object_get(b, "thinking"), "signature", json_object_get(b, "signature"));
        else
            continue;
        if (append(blocks, r) != SL_OK)
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
        json_t *input;

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
        if (append(blocks, json_pack("{s:{s:s, s:s, s:o}}", "toolUse", "toolUseId", id, "name", name,
                                     "input", input)) != SL_OK)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

static int add_tool_result(struct sl_request *req, json_t *blocks, const json_t *m, size_t mi)
{
    const char *id = sl_tr_str(m, "tool_call_id");
    const json_t *content = json_object_get(m, "content");
    json_t *inner;
    int rc;

    if (id == NULL)
        return sl_tr_bad(req, "messages[%zu]: a tool message needs tool_call_id.", mi);
    if ((inner = json_array()) == NULL)
        return SL_ERR_NOMEM;
    if (json_is_string(content))
        rc = append(inner, json_pack("{s:O}", "text", content));
    else
        rc = add_content(req, inner, content);
    /* A result must have content; an empty one is an empty text. */
    if (rc == SL_OK && json_array_size(inner) == 0)
        rc = append(inner, json_pack("{s:s}", "text", ""));
    if (rc != SL_OK) {
        json_decref(inner);
        return rc;
    }
    return append(blocks, json_pack("{s:{s:s, s:o}}", "toolResult", "toolUseId", id, "content", inner));
}

/* One non-system message -> its blocks and role. */
static int message_blocks(struct sl_request *req, const json_t *m, size_t i, json_t *blocks,
                          const char **turn_role, int *tool_blocks)
{
    const char *role = sl_tr_str(m, "role");
    const json_t *content = json_object_get(m, "content");
    int rc;

    *turn_role = "user";
    if (strcmp(role, "user") == 0) {
        rc = add_content(req, blocks, content);
    } else if (strcmp(role, "assistant") == 0) {
        *turn_role = "assistant";
        rc = add_thinking(blocks, json_object_get(m, "thinking_blocks"));
        if (rc == SL_OK)
            rc = add_content(req, blocks, content);
        if (rc == SL_OK && json_array_size(json_object_get(m, "tool_calls")) > 0) {
            *tool_blocks = 1;
            rc = add_tool_uses(req, blocks, json_object_get(m, "tool_calls"), i);
        }
    } else if (strcmp(role, "tool") == 0) {
        *tool_blocks = 1;
        rc = add_tool_result(req, blocks, m, i);
    } else {
        rc = sl_tr_bad(req, "messages[%zu]: bedrock does not support the role %.40s.", i, role);
    }
    /* A cache mark on the message itself: a cache point after its blocks. */
    if (rc == SL_OK && json_object_get(m, "cache_control") != NULL && json_array_size(blocks) > 0)
        rc = cache_point(blocks);
    return rc;
}

static int convert_messages(struct sl_request *req, const json_t *in, json_t *body, int *tool_blocks)
{
    const json_t *msgs = json_object_get(in, "messages");
    json_t *system = json_array(), *messages = json_array(), *m, *blocks;
    const char *turn_role;
    size_t i;
    int rc = SL_OK;

    if (system == NULL || messages == NULL || json_object_set_new(body, "messages", messages) != 0 ||
        json_object_set_new(body, "system", system) != 0)
        return SL_ERR_NOMEM;
    json_array_foreach(msgs, i, m) {
        const char *role = sl_tr_str(m, "role");

        if (role == NULL)
            return sl_tr_bad(req, "messages[%zu] needs a role.", i);
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            size_t before = json_array_size(system);

            if ((rc = add_content(req, system, json_object_get(m, "content"))) != SL_OK)
                return rc;
            if (json_object_get(m, "cache_control") != NULL && json_array_size(system) > before &&
                (rc = cache_point(system)) != SL_OK)
                return rc;
            continue;
        }
        if ((blocks = json_array()) == NULL)
            return SL_ERR_NOMEM;
        if ((rc = message_blocks(req, m, i, blocks, &turn_role, tool_blocks)) != SL_OK) {
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

/* ---- request: tools and parameters ---- */

static json_t *tool_spec(const char *name, const char *description, const json_t *schema)
{
    json_t *spec = json_pack("{s:s, s:{s:O}}", "name", name, "inputSchema", "json", schema);

    if (spec != NULL && description != NULL)
        json_object_set_new(spec, "description", json_string(description));
    return spec != NULL ? json_pack("{s:o}", "toolSpec", spec) : NULL;
}

static int convert_tool_list(struct sl_request *req, const json_t *tools, json_t *out)
{
    size_t i;
    json_t *t;

    json_array_foreach(tools, i, t) {
        const json_t *fn = json_object_get(t, "function"), *params = json_object_get(fn, "parameters");
        json_t *empty = NULL;
        int rc;

        if (!json_is_string(json_object_get(t, "type")) || strcmp(sl_tr_str(t, "type"), "function") != 0 ||
            sl_tr_str(fn, "name") == NULL)
            return sl_tr_bad(req, "tools[%zu]: bedrock takes tools of type function with a name.", i);
        if (!json_is_object(params) && (params = empty = json_pack("{s:s, s:{}}", "type", "object",
                                                                   "properties")) == NULL)
            return SL_ERR_NOMEM;
        rc = append(out, tool_spec(sl_tr_str(fn, "name"), sl_tr_str(fn, "description"), params));
        json_decref(empty);
        if (rc == SL_OK && json_object_get(t, "cache_control") != NULL)
            rc = cache_point(out);
        if (rc != SL_OK)
            return rc;
    }
    return SL_OK;
}

/* The forced JSON tool for response_format; *added set when there is one. */
static int json_tool(struct sl_request *req, const json_t *in, json_t *tools, int *added)
{
    const json_t *rf = json_object_get(in, "response_format");
    const char *rft = sl_tr_str(rf, "type");
    const json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    json_t *dflt = NULL;
    int rc;

    *added = 0;
    if (rft == NULL || strcmp(rft, "text") == 0)
        return SL_OK;
    if (strcmp(rft, "json_object") != 0 && strcmp(rft, "json_schema") != 0)
        return sl_tr_bad(req, "response_format type %.40s is not supported by bedrock.", rft);
    if (!json_is_object(schema) &&
        (schema = dflt = json_pack("{s:s, s:{}, s:b}", "type", "object", "properties",
                                   "additionalProperties", 1)) == NULL)
        return SL_ERR_NOMEM;
    rc = append(tools, tool_spec(JSON_TOOL, "Respond with the answer as this tool's input, in JSON.", schema));
    json_decref(dflt);
    *added = rc == SL_OK;
    return rc;
}

/* tools, tool_choice and response_format -> toolConfig. thinking: Claude
 * refuses a forced tool while thinking, so JSON mode then only offers it. */
static int convert_tools(struct sl_request *req, const json_t *in, json_t *body, struct bedrock *st,
                         int tool_blocks, int thinking)
{
    const json_t *tc = json_object_get(in, "tool_choice");
    json_t *tools = json_array(), *choice = NULL, *cfg;
    int rc, forced;

    if (tools == NULL || (cfg = json_pack("{s:o}", "tools", tools)) == NULL ||
        json_object_set_new(body, "toolConfig", cfg) != 0)
        return SL_ERR_NOMEM;
    if ((rc = convert_tool_list(req, json_object_get(in, "tools"), tools)) != SL_OK ||
        (rc = json_tool(req, in, tools, &forced)) != SL_OK)
        return rc;
    if (forced) {
        st->json_mode = 1;
        choice = thinking ? NULL : json_pack("{s:{s:s}}", "tool", "name", JSON_TOOL);
    } else if (json_is_string(tc)) {
        const char *s = json_string_value(tc);

        if (strcmp(s, "auto") == 0) {
            choice = json_pack("{s:{}}", "auto");
        } else if (strcmp(s, "required") == 0) {
            choice = json_pack("{s:{}}", "any");
        } else if (strcmp(s, "none") == 0) {
            if (!tool_blocks)
                json_array_clear(tools);
        } else {
            return sl_tr_bad(req, "tool_choice must be auto, required, none or a function.");
        }
    } else if (json_is_object(tc)) {
        const char *name = sl_tr_str(json_object_get(tc, "function"), "name");

        if (name == NULL)
            return sl_tr_bad(req, "tool_choice needs function.name.");
        choice = json_pack("{s:{s:s}}", "tool", "name", name);
    }
    if (choice != NULL && json_array_size(tools) > 0 && json_object_set_new(cfg, "toolChoice", choice) != 0)
        return SL_ERR_NOMEM;
    if (choice != NULL && json_array_size(tools) == 0)
        json_decref(choice);
    if (json_array_size(tools) == 0)
        json_object_del(body, "toolConfig");
    return SL_OK;
}

/* reasoning_effort -> Claude's thinking budget (LiteLLM's budgets). */
static long thinking_budget(struct sl_request *req, const json_t *in, int *rc)
{
    const char *e = sl_tr_str(in, "reasoning_effort");

    *rc = SL_OK;
    if (e == NULL || strcmp(e, "none") == 0 || !is_claude(req))
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

static int inference_config(struct sl_request *req, const json_t *in, json_t *body, long budget)
{
    json_t *ic = json_object(), *stop, *v;
    long max_tokens = sl_tr_max_tokens(in);
    int bad;

    if (ic == NULL || json_object_set_new(body, "inferenceConfig", ic) != 0)
        return SL_ERR_NOMEM;
    /* Thinking needs room beyond its budget; without a client limit, give it. */
    if (max_tokens < 0 && budget > 0)
        max_tokens = budget + sl_tr_default_max_tokens(req, DEFAULT_MAX_TOKENS);
    if (max_tokens > 0)
        json_object_set_new(ic, "maxTokens", json_integer(max_tokens));
    if (json_is_number(v = json_object_get(in, "temperature")))
        json_object_set(ic, "temperature", v);
    if (json_is_number(v = json_object_get(in, "top_p")))
        json_object_set(ic, "topP", v);
    if ((stop = sl_tr_stop_list(in, &bad)) != NULL) {
        /* Converse rejects empty stop strings. */
        for (size_t i = json_array_size(stop); i-- > 0;)
            if (json_string_length(json_array_get(stop, i)) == 0)
                json_array_remove(stop, i);
        if (json_array_size(stop) > 0)
            json_object_set(ic, "stopSequences", stop);
        json_decref(stop);
    } else if (bad) {
        return sl_tr_bad(req, "stop must be a string or an array of strings.");
    }
    if (json_object_size(ic) == 0)
        json_object_del(body, "inferenceConfig");
    return SL_OK;
}

/* Converse's own top-level fields a client may send as they are. */
static int converse_field(const char *key)
{
    static const char *const fields[] = {
        "guardrailConfig", "performanceConfig", "promptVariables", "requestMetadata",
        "additionalModelResponseFieldPaths", NULL
    };

    for (size_t i = 0; fields[i] != NULL; i++)
        if (strcmp(fields[i], key) == 0)
            return 1;
    return 0;
}

/* additionalModelRequestFields: the client's own, top_k, thinking and every
 * other field that is not OpenAI's, LiteLLM's or Converse's. */
static int extra_fields(struct sl_request *req, const json_t *in, json_t *body, long budget)
{
    const json_t *given = json_object_get(in, "additionalModelRequestFields");
    json_t *extra = json_is_object(given) ? json_deep_copy(given) : json_object(), *v;
    const char *key;

    if (extra == NULL || json_object_set_new(body, "additionalModelRequestFields", extra) != 0)
        return SL_ERR_NOMEM;
    json_object_foreach((json_t *)in, key, v) {
        if (sl_tr_is_openai_param(key) || sl_tr_is_gateway_field(key) || strcmp(key, "model") == 0 ||
            strcmp(key, "messages") == 0 || strcmp(key, "additionalModelRequestFields") == 0)
            continue;
        if (converse_field(key)) {
            json_object_set(body, key, v);
        } else if (strcmp(key, "top_k") == 0 || strcmp(key, "topK") == 0) {
            /* Nova takes it inside its own inferenceConfig; Claude and the rest as top_k. */
            if (contains(model_id(req), "amazon.nova"))
                json_object_set_new(extra, "inferenceConfig", json_pack("{s:O}", "topK", v));
            else
                json_object_set(extra, "top_k", v);
        } else {
            json_object_set(extra, key, v);
        }
    }
    if (budget > 0)
        json_object_set_new(extra, "thinking", json_pack("{s:s, s:I}", "type", "enabled",
                                                         "budget_tokens", (json_int_t)budget));
    if (json_object_size(extra) == 0)
        json_object_del(body, "additionalModelRequestFields");
    return SL_OK;
}

static int chat_body(struct sl_request *req, const json_t *in, json_t *body, struct bedrock *st)
{
    int rc, tool_blocks = 0;
    long budget;

    if ((rc = sl_tr_check_params(req, in, is_claude(req) ? supported_claude : supported)) != SL_OK)
        return rc;
    budget = thinking_budget(req, in, &rc);
    if (rc != SL_OK ||
        (rc = convert_messages(req, in, body, &tool_blocks)) != SL_OK ||
        (rc = convert_tools(req, in, body, st, tool_blocks, budget > 0)) != SL_OK ||
        (rc = inference_config(req, in, body, budget)) != SL_OK)
        return rc;
    return extra_fields(req, in, body, budget);
}

/* ---- rerank ---- */

/* Rerank models (cohere.rerank-*, amazon.rerank-*) through InvokeModel:
 * {query, documents, top_n, api_version: 2} -> {results: [{index,
 * relevance_score}]}. */
static int rerank_body(struct sl_request *req, const json_t *in, json_t *body)
{
    json_t *docs = sl_tr_rerank_documents(req, in);

    if (docs == NULL || json_object_set_new(body, "documents", docs) != 0 ||
        json_object_set(body, "query", json_object_get(in, "query")) != 0 ||
        json_object_set_new(body, "api_version", json_integer(2)) != 0)
        return SL_ERR_NOMEM;
    if (json_is_integer(json_object_get(in, "top_n")) &&
        json_object_set(body, "top_n", json_object_get(in, "top_n")) != 0)
        return SL_ERR_NOMEM;
    return SL_OK;
}

/* ---- request: embeddings ---- */

static int embed_body(struct sl_request *req, const json_t *in, json_t *body, struct bedrock *st)
{
    json_t *input = json_object_get(in, "input"), *dims = json_object_get(in, "dimensions"), *v;
    const char *m = model_id(req), *fmt = sl_tr_str(in, "encoding_format"), *key;
    size_t i;

    st->base64 = fmt != NULL && strcmp(fmt, "base64") == 0;
    st->embed = contains(m, "titan-embed") ? EMB_TITAN : contains(m, "cohere.embed") ? EMB_COHERE : 0;
    if (st->embed == 0)
        return sl_tr_bad(req, "bedrock embeddings support amazon.titan-embed-* and cohere.embed-* "
                         "models, not %.200s.", m);
    if (json_is_array(input)) {
        json_array_foreach(input, i, v)
            if (!json_is_string(v))
                return sl_tr_bad(req, "input: bedrock embeddings take text, not token arrays.");
    } else if (!json_is_string(input)) {
        return sl_tr_bad(req, "input must be a string or an array of strings.");
    }
    if (st->embed == EMB_TITAN) {
        /* Titan embeds one text per call, and the core makes one call. */
        if (json_is_array(input) && json_array_size(input) != 1)
            return sl_tr_bad(req, "bedrock Titan embedding models take exactly one input per request "
                             "(got %zu); send one text per request.", json_array_size(input));
        json_object_set(body, "inputText", json_is_array(input) ? json_array_get(input, 0) : input);
        if (json_is_integer(dims))
            json_object_set(body, "dimensions", dims);
    } else {
        json_t *it = json_object_get(in, "input_type");

        json_object_set_new(body, "texts", json_is_array(input) ? json_deep_copy(input)
                                                                : json_pack("[O]", input));
        json_object_set_new(body, "input_type", json_is_string(it) ? json_incref(it)
                                                                   : json_string("search_document"));
        if (json_is_integer(dims))
            json_object_set(body, "output_dimension", dims);
    }
    /* The model's own fields (normalize, truncate, ...) pass through. */
    json_object_foreach((json_t *)in, key, v)
        if (strcmp(key, "model") != 0 && strcmp(key, "input") != 0 && strcmp(key, "encoding_format") != 0 &&
            strcmp(key, "dimensions") != 0 && strcmp(key, "user") != 0 && strcmp(key, "input_type") != 0 &&
            !sl_tr_is_gateway_field(key) && json_object_get(body, key) == NULL)
            json_object_set(body, key, v);
    return SL_OK;
}

/* ---- request: URL, credentials, signature ---- */

struct aws_auth {
    const char *key_id, *secret, *token;   /* SigV4, or */
    const char *bearer;                    /* a Bedrock API key */
    const char *region;
};

/* A region is a DNS label of the endpoint's host name: keep it one. */
static int valid_region(const char *r)
{
    if (*r == '\0' || strlen(r) > 63)
        return 0;
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return 0;
    return 1;
}

static int credentials(struct sl_request *req, struct aws_auth *a)
{
    memset(a, 0, sizeof(*a));
    a->region = param(req, "aws_region_name");
    if (a->region == NULL && (a->region = env("AWS_REGION")) == NULL &&
        (a->region = env("AWS_DEFAULT_REGION")) == NULL)
        a->region = DEFAULT_REGION;
    if (!valid_region(a->region)) {
        req->err_msg = sl_arena_printf(req->arena, "bedrock: the AWS region '%.64s' is not valid.", a->region);
        return SL_ERR_CONFIG;
    }
    if ((a->key_id = param(req, "aws_access_key_id")) != NULL) {
        a->secret = param(req, "aws_secret_access_key");
        a->token = param(req, "aws_session_token");
    } else if (req->dep->api_key != NULL && *req->dep->api_key != '\0') {
        a->bearer = req->dep->api_key;
        return SL_OK;
    } else if ((a->key_id = env("AWS_ACCESS_KEY_ID")) != NULL) {
        a->secret = env("AWS_SECRET_ACCESS_KEY");
        a->token = env("AWS_SESSION_TOKEN");
    }
    if (a->key_id == NULL || a->secret == NULL) {
        req->err_msg = a->key_id == NULL
            ? "bedrock: no AWS credentials: set aws_access_key_id and aws_secret_access_key in "
              "litellm_params (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or a Bedrock API key."
            : "bedrock: aws_access_key_id is set but aws_secret_access_key is not.";
        return SL_ERR_AUTH;
    }
    return SL_OK;
}

/* The endpoint pieces: "scheme://host[:port]", the Host header value, and
 * the path prefix (api_base may carry one; its query is not used). */
struct endpoint {
    const char *origin, *host, *prefix;
};

static int endpoint(struct sl_request *req, const char *region, struct endpoint *e)
{
    const char *base = req->dep->api_base ? req->dep->api_base : param(req, "aws_bedrock_runtime_endpoint");
    const char *h, *p;
    size_t n;

    if (base == NULL)
        base = sl_arena_printf(req->arena, "https://bedrock-runtime.%s.amazonaws.com", region);
    if (base == NULL)
        return SL_ERR_NOMEM;
    if ((h = strstr(base, "://")) == NULL || h[3] == '\0' || h[3] == '/') {
        req->err_msg = "bedrock: api_base must be an absolute URL such as https://bedrock-runtime.us-east-1.amazonaws.com";
        return SL_ERR_CONFIG;
    }
    h += 3;
    p = h + strcspn(h, "/?#");
    n = strcspn(p, "?#");
    while (n > 0 && p[n - 1] == '/')
        n--;
    e->origin = sl_arena_strndup(req->arena, base, (size_t)(p - base));
    e->host = sl_arena_strndup(req->arena, h, (size_t)(p - h));
    e->prefix = sl_arena_strndup(req->arena, p, n);
    return e->origin && e->host && e->prefix ? SL_OK : SL_ERR_NOMEM;
}

static int add_header(struct sl_request *req, struct sl_upstream_req *out, const char *name,
                      const char *value)
{
    const char *h = sl_arena_printf(req->arena, "%s: %s", name, value);

    if (h == NULL || out->n_headers >= SL_UPSTREAM_MAX_HEADERS)
        return SL_ERR_NOMEM;
    out->headers[out->n_headers++] = h;
    return SL_OK;
}

/* URL and headers for body (already in out), signed unless a bearer key is used. */
static int sign(struct sl_request *req, struct sl_upstream_req *out, const char *op)
{
    struct aws_auth a;
    struct endpoint e;
    struct sl_sigv4_header h[4];
    struct sl_sigv4_req sr;
    struct sl_sigv4_out so;
    char date[17];
    const char *id = model_id(req), *path, *enc;
    size_t nh = 0;
    int rc;

    if ((rc = credentials(req, &a)) != SL_OK || (rc = endpoint(req, a.region, &e)) != SL_OK)
        return rc;
    if ((enc = sl_sigv4_uri_encode(req->arena, id, strlen(id), 0)) == NULL ||
        (path = sl_arena_printf(req->arena, "%s/model/%s/%s", e.prefix, enc, op)) == NULL ||
        (out->url = sl_arena_printf(req->arena, "%s%s", e.origin, path)) == NULL)
        return SL_ERR_NOMEM;
    /* Host is sent explicitly so that what is signed is what is sent. No
     * Accept: AWS's own SDKs send none, whatever the reply's framing. */
    if ((rc = add_header(req, out, "Host", e.host)) != SL_OK ||
        (rc = add_header(req, out, "Content-Type", "application/json")) != SL_OK)
        return rc;
    if (a.bearer != NULL)
        return add_header(req, out, "Authorization", sl_arena_printf(req->arena, "Bearer %s", a.bearer));
    sl_sigv4_amz_date((long long)time(NULL), date);
    h[nh++] = (struct sl_sigv4_header){ "host", e.host };
    h[nh++] = (struct sl_sigv4_header){ "content-type", "application/json" };
    h[nh++] = (struct sl_sigv4_header){ "x-amz-date", date };
    if (a.token != NULL)
        h[nh++] = (struct sl_sigv4_header){ "x-amz-security-token", a.token };
    sr = (struct sl_sigv4_req){
        .method = "POST", .path = path, .query = NULL, .headers = h, .n_headers = nh,
        .body = out->body, .body_len = out->body_len, .amz_date = date, .region = a.region,
        .service = SERVICE, .access_key_id = a.key_id, .secret_access_key = a.secret,
    };
    if ((rc = sl_sigv4_sign(req->arena, &sr, &so)) != SL_OK) {
        if (rc == SL_ERR_BAD_REQUEST) {
            req->err_msg = "bedrock: the request could not be signed (check the AWS credentials and api_base).";
            rc = SL_ERR_CONFIG;
        }
        return rc;
    }
    if ((rc = add_header(req, out, "X-Amz-Date", date)) != SL_OK ||
        (a.token != NULL && (rc = add_header(req, out, "X-Amz-Security-Token", a.token)) != SL_OK))
        return rc;
    return add_header(req, out, "Authorization", so.authorization);
}

static int bedrock_build_request(struct sl_request *req, const json_t *in,
                                 struct sl_upstream_req *out)
{
    struct bedrock *st = state(req);
    json_t *body;
    const char *op;
    int rc;

    if (st == NULL)
        return SL_ERR_NOMEM;
    if ((body = json_object()) == NULL || sl_arena_defer(req->arena, sl_json_decref_cb, body) != SL_OK) {
        json_decref(body);
        return SL_ERR_NOMEM;
    }
    if (req->endpoint == SL_EP_CHAT) {
        rc = chat_body(req, in, body, st);
        op = req->stream ? "converse-stream" : "converse";
    } else if (req->endpoint == SL_EP_EMBEDDINGS) {
        rc = embed_body(req, in, body, st);
        op = "invoke";
    } else if (req->endpoint == SL_EP_RERANK) {
        rc = rerank_body(req, in, body);
        op = "invoke";
    } else {
        return SL_ERR_UNSUPPORTED;
    }
    if (rc != SL_OK)
        return rc;
    out->framing = SL_FRAMING_EVENTSTREAM;
    if ((out->body = sl_json_dump(req->arena, body, &out->body_len)) == NULL)
        return SL_ERR_NOMEM;
    return sign(req, out, op);
}

/* ---- reply ---- */

static const char *finish_reason(const char *stop_reason, int json_only)
{
    if (stop_reason == NULL)
        return NULL;
    if (strcmp(stop_reason, "max_tokens") == 0 || strcmp(stop_reason, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp(stop_reason, "tool_use") == 0)
        return json_only ? "stop" : "tool_calls";
    if (strcmp(stop_reason, "content_filtered") == 0 || strcmp(stop_reason, "guardrail_intervened") == 0)
        return "content_filter";
    return "stop";   /* end_turn, stop_sequence */
}

static long num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (long)json_integer_value(v) : 0;
}

static void read_usage(struct bedrock *st, const json_t *u)
{
    if (!json_is_object(u))
        return;
    st->input = num(u, "inputTokens");
    st->output = num(u, "outputTokens");
    st->cache_read = num(u, "cacheReadInputTokens");
    st->cache_write = num(u, "cacheWriteInputTokens");
}

/* OpenAI usage with LiteLLM's two cache extras. Bedrock counts cached input
 * outside inputTokens; OpenAI's prompt_tokens includes it. */
static json_t *usage(const struct bedrock *st)
{
    json_t *u = sl_tr_usage(st->input + st->cache_read + st->cache_write, st->output, st->cache_read, 0);

    if (u != NULL) {
        json_object_set_new(u, "cache_creation_input_tokens", json_integer(st->cache_write));
        json_object_set_new(u, "cache_read_input_tokens", json_integer(st->cache_read));
    }
    return u;
}

/* What the blocks of one answer add up to. */
struct answer {
    struct sl_buf text, reasoning;
    json_t *calls, *thinking;     /* owned */
    int any_text, any_reasoning, other_tools;
};

static int answer_block(struct sl_request *req, struct bedrock *st, const json_t *b, struct answer *a)
{
    const json_t *tu = json_object_get(b, "toolUse"), *rc = json_object_get(b, "reasoningContent");
    const char *t = sl_tr_str(b, "text");

    if (t != NULL) {
        a->any_text = 1;
        return sl_buf_append(&a->text, t, strlen(t));
    }
    if (json_is_object(tu) && sl_tr_str(tu, "name") != NULL) {
        const json_t *input = json_object_get(tu, "input");
        size_t n = 2;
        char *args = input ? sl_json_dump(req->arena, input, &n) : "{}";

        if (args == NULL)
            return SL_ERR_NOMEM;
        if (st->json_mode && strcmp(sl_tr_str(tu, "name"), JSON_TOOL) == 0) {
            a->any_text = 1;
            return sl_buf_append(&a->text, args, n);
        }
        a->other_tools = 1;
        return append(a->calls, json_pack("{s:s?, s:s, s:{s:s, s:s}}", "id", sl_tr_str(tu, "toolUseId"),
                                          "type", "function", "function", "name", sl_tr_str(tu, "name"),
                                          "arguments", args));
    }
    if (json_is_object(rc)) {
        const json_t *rt = json_object_get(rc, "reasoningText");

        if (sl_tr_str(rt, "text") != NULL) {
            a->any_reasoning = 1;
            if (sl_buf_append(&a->reasoning, sl_tr_str(rt, "text"), strlen(sl_tr_str(rt, "text"))) != SL_OK)
                return SL_ERR_NOMEM;
            return append(a->thinking, json_pack("{s:s, s:O, s:O*}", "type", "thinking", "thinking",
                                                 json_object_get(rt, "text"), "signature",
                                                 json_object_get(rt, "signature")));
        }
        if (sl_tr_str(rc, "redactedContent") != NULL)
            return append(a->thinking, json_pack("{s:s, s:O}", "type", "redacted_thinking", "data",
                                                 json_object_get(rc, "redactedContent")));
    }
    return SL_OK;   /* citations, images, future block types */
}

static json_t *answer_message(struct answer *a)
{
    json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                            a->any_text ? json_stringn(a->text.data ? a->text.data : "", a->text.len)
                                        : json_null());

    if (msg == NULL)
        return NULL;
    if (a->any_reasoning)
        json_object_set_new(msg, "reasoning_content",
                            json_stringn(a->reasoning.data ? a->reasoning.data : "", a->reasoning.len));
    if (json_array_size(a->thinking) > 0)
        json_object_set(msg, "thinking_blocks", a->thinking);
    if (json_array_size(a->calls) > 0)
        json_object_set(msg, "tool_calls", a->calls);
    return msg;
}

static int chat_response(struct sl_request *req, struct bedrock *st, const json_t *v, json_t **out)
{
    const json_t *content = json_object_get(json_object_get(json_object_get(v, "output"), "message"), "content");
    struct answer a = { .calls = json_array(), .thinking = json_array() };
    json_t *msg, *b;
    size_t i;
    int rc = SL_ERR_NOMEM;

    if (!json_is_array(content) || !json_is_string(json_object_get(v, "stopReason"))) {
        rc = SL_ERR_UPSTREAM_BAD;
        goto out;
    }
    sl_buf_init(&a.text, SL_MAX_UPSTREAM_BODY);
    sl_buf_init(&a.reasoning, SL_MAX_UPSTREAM_BODY);
    if (a.calls == NULL || a.thinking == NULL || sl_tr_ids_init(req, &st->ids, NULL) != SL_OK)
        goto out;
    json_array_foreach(content, i, b)
        if ((rc = answer_block(req, st, b, &a)) != SL_OK)
            goto out;
    rc = SL_ERR_NOMEM;
    if ((msg = answer_message(&a)) == NULL)
        goto out;
    read_usage(st, json_object_get(v, "usage"));
    *out = sl_tr_completion(req, &st->ids, msg, finish_reason(sl_tr_str(v, "stopReason"), !a.other_tools),
                            usage(st));
    rc = *out != NULL ? SL_OK : SL_ERR_NOMEM;
out:
    sl_buf_free(&a.text);
    sl_buf_free(&a.reasoning);
    json_decref(a.calls);
    json_decref(a.thinking);
    return rc == SL_ERR_TOO_LARGE ? SL_ERR_UPSTREAM_BAD : rc;
}

/* One embedding vector (JSON numbers) -> OpenAI's value, via float32. */
static json_t *vector(struct sl_request *req, const json_t *arr, int base64)
{
    size_t n = json_array_size(arr), i;
    float *f;
    json_t *x;

    if (!json_is_array(arr) || n == 0 || (f = sl_arena_alloc(req->arena, n * sizeof(float))) == NULL)
        return NULL;
    json_array_foreach(arr, i, x) {
        if (!json_is_number(x))
            return NULL;
        f[i] = (float)json_number_value(x);
    }
    return sl_tr_embedding_value(req, f, n, base64);
}

static int embed_response(struct sl_request *req, struct bedrock *st, const json_t *v, json_t **out)
{
    const json_t *vecs, *e;
    json_t *data = json_array(), *val;
    long tokens = 0;
    size_t i;

    if (data == NULL)
        return SL_ERR_NOMEM;
    if (st->embed == EMB_TITAN) {
        vecs = json_pack("[O]", json_object_get(v, "embedding") ? json_object_get(v, "embedding") : json_null());
        tokens = num(v, "inputTextTokenCount");
    } else {
        /* embeddings_floats: [[...]]; embeddings_by_type: {"float": [[...]]}. */
        vecs = json_object_get(v, "embeddings");
        vecs = json_is_object(vecs) ? json_object_get(vecs, "float") : vecs;
        json_incref((json_t *)vecs);
        /* Bedrock's Cohere reply has no token count (it is in a response
         * header): estimated from the texts, as the mock does. */
        json_array_foreach(json_object_get(v, "texts"), i, e)
            tokens += ((long)json_string_length(e) + 3) / 4;
    }
    if (!json_is_array(vecs) || json_array_size(vecs) == 0) {
        json_decref((json_t *)vecs);
        json_decref(data);
        return SL_ERR_UPSTREAM_BAD;
    }
    json_array_foreach(vecs, i, e) {
        if ((val = vector(req, e, st->base64)) == NULL ||
            append(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index", (json_int_t)i,
                                   "embedding", val)) != SL_OK) {
            json_decref((json_t *)vecs);
            json_decref(data);
            return SL_ERR_UPSTREAM_BAD;
        }
    }
    json_decref((json_t *)vecs);
    *out = json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data, "model",
                     req->model ? req->model : "", "usage", "prompt_tokens", (json_int_t)tokens,
                     "total_tokens", (json_int_t)tokens);
    return *out != NULL ? SL_OK : SL_ERR_NOMEM;
}

static int bedrock_parse_response(struct sl_request *req, const char *text, size_t len, json_t **out)
{
    struct bedrock *st = state(req);
    const char *why;
    json_t *v = sl_json_parse(text, len, &why);
    int rc;

    *out = NULL;
    if (st == NULL)
        rc = SL_ERR_NOMEM;
    else if (!json_is_object(v))
        rc = SL_ERR_UPSTREAM_BAD;
    else if (req->endpoint == SL_EP_EMBEDDINGS)
        rc = embed_response(req, st, v, out);
    else if (req->endpoint == SL_EP_RERANK)
        rc = sl_tr_rerank_reply(req, sl_tr_str(v, "id"), json_object_get(v, "results"), 1, out);
    else
        rc = chat_response(req, st, v, out);
    json_decref(v);
    return rc;
}

/* ---- errors ---- */

static int auth_failure(const char *msg)
{
    static const char *const marks[] = {
        "signature", "Signature", "security token", "Authentication Token", "credential",
        "Credential", "API key", "api key", NULL
    };

    for (size_t i = 0; msg != NULL && marks[i] != NULL; i++)
        if (strstr(msg, marks[i]) != NULL)
            return 1;
    return 0;
}

static int context_exceeded(const char *msg)
{
    static const char *const marks[] = {
        "too long", "too many input tokens", "too many tokens", "context length",
        "context window", "maximum input length", NULL
    };

    for (size_t i = 0; msg != NULL && marks[i] != NULL; i++)
        if (strstr(msg, marks[i]) != NULL)
            return 1;
    return 0;
}

/* Bedrock's status and message -> OpenAI's status, type and code. */
static void map_status(struct sl_request *req, int status, const char *msg, struct sl_error *e)
{
    const char *code = NULL;

    if (status == 403 && auth_failure(msg))
        status = 401;   /* bad signature, unknown key, expired token: authentication */
    if (status == 400 && context_exceeded(msg))
        code = "context_length_exceeded";
    else if (status == 400 && (contains(msg, "content filter") || contains(msg, "blocked by")))
        code = "content_policy_violation";
    sl_tr_set_error(req, e, status, NULL, msg, code);
}

static int bedrock_map_error(struct sl_request *req, long http_status, const json_t *body,
                             struct sl_error *out)
{
    const char *msg = sl_tr_str(body, "message");

    map_status(req, (int)http_status, msg ? msg : sl_tr_str(body, "Message"), out);
    return SL_OK;
}

/* An exception (or error) message in the stream: its type -> a status. */
static int stream_exception(struct sl_request *req, const struct sl_sse_event *ev)
{
    static const struct { const char *type; int status; } map[] = {
        { "throttlingException", 429 }, { "validationException", 400 },
        { "serviceUnavailableException", 503 }, { "internalServerException", 500 },
        { "modelStreamErrorException", 502 }, { "modelTimeoutException", 504 },
        { "accessDeniedException", 403 }, { "resourceNotFoundException", 404 },
    };
    const char *why, *msg = NULL;
    json_t *v = NULL;
    int status = 500;

    for (size_t i = 0; ev->event != NULL && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(ev->event, map[i].type) == 0)
            status = map[i].status;
    if (ev->id != NULL && strcmp(ev->id, "exception") == 0) {
        v = ev->data_len ? sl_json_parse(ev->data, ev->data_len, &why) : NULL;
        msg = sl_tr_str(v, "message") ? sl_tr_str(v, "message") : sl_tr_str(v, "Message");
    } else if (ev->data_len > 0) {
        msg = ev->data;    /* an error message: the text of :error-message */
    }
    if (msg == NULL)
        msg = sl_arena_printf(req->arena, "bedrock stream error: %.100s", ev->event ? ev->event : "unknown");
    map_status(req, status, msg, &req->upstream_err);
    json_decref(v);
    return SL_ERR_UPSTREAM_STATUS;
}

/* ---- stream ---- */

static int start_chunk(struct sl_request *req, struct bedrock *st, json_t **out)
{
    if (st->started)
        return SL_OK;
    st->started = 1;
    return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:s, s:s}", "role", "assistant",
                                                                 "content", ""), NULL));
}

static int block_start(struct sl_request *req, struct bedrock *st, const json_t *v, json_t **out)
{
    const json_t *tu = json_object_get(json_object_get(v, "start"), "toolUse");
    const char *name = sl_tr_str(tu, "name");

    if (name == NULL)
        return SL_OK;
    st->block_index = num(v, "contentBlockIndex");
    if (st->json_mode && strcmp(name, JSON_TOOL) == 0) {
        st->block = B_JSON;
        return SL_OK;
    }
    st->block = B_TOOL;
    st->tool_index = st->n_tools++;
    return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_pack("{s:[{s:i, s:s?, s:s, s:{s:s, s:s}}]}",
                          "tool_calls", "index", st->tool_index, "id", sl_tr_str(tu, "toolUseId"),
                          "type", "function", "function", "name", name, "arguments", ""), NULL));
}

static int block_delta(struct sl_request *req, struct bedrock *st, const json_t *v, json_t **out)
{
    const json_t *d = json_object_get(v, "delta"), *x;
    json_t *delta;

    if ((x = json_object_get(d, "text")) != NULL && json_is_string(x)) {
        if (json_string_length(x) == 0)
            return SL_OK;
        delta = json_pack("{s:O}", "content", x);
    } else if (json_is_string(x = json_object_get(json_object_get(d, "toolUse"), "input"))) {
        if (json_string_length(x) == 0 || st->block == B_NONE || num(v, "contentBlockIndex") != st->block_index)
            return SL_OK;
        delta = st->block == B_JSON
            ? json_pack("{s:O}", "content", x)
            : json_pack("{s:[{s:i, s:{s:O}}]}", "tool_calls", "index", st->tool_index, "function",
                        "arguments", x);
    } else if (json_is_string(x = json_object_get(json_object_get(d, "reasoningContent"), "text"))) {
        delta = json_pack("{s:O}", "reasoning_content", x);
    } else {
        return SL_OK;    /* reasoning signatures, citations, future delta types */
    }
    return sl_tr_emit(out, sl_tr_chunk(req, &st->ids, delta, NULL));
}

static int bedrock_parse_stream_event(struct sl_request *req, const struct sl_sse_event *ev,
                                      json_t **out, int *done)
{
    struct bedrock *st = state(req);
    const char *why, *type = ev->event;
    json_t *v;
    int rc = SL_OK;

    *out = NULL;
    if (st == NULL)
        return SL_ERR_NOMEM;
    if (ev->id != NULL && strcmp(ev->id, "event") != 0)
        return stream_exception(req, ev);
    if (type == NULL)
        return SL_ERR_UPSTREAM_BAD;
    v = sl_json_parse(ev->data, ev->data_len, &why);
    if (!json_is_object(v)) {
        json_decref(v);
        return SL_ERR_UPSTREAM_BAD;
    }
    if (st->ids.id == NULL && sl_tr_ids_init(req, &st->ids, NULL) != SL_OK) {
        json_decref(v);
        return SL_ERR_NOMEM;
    }
    if (strcmp(type, "messageStart") == 0) {
        rc = start_chunk(req, st, out);
    } else if (strcmp(type, "contentBlockStart") == 0) {
        if ((rc = start_chunk(req, st, out)) == SL_OK)
            rc = block_start(req, st, v, out);
    } else if (strcmp(type, "contentBlockDelta") == 0) {
        if ((rc = start_chunk(req, st, out)) == SL_OK)
            rc = block_delta(req, st, v, out);
    } else if (strcmp(type, "contentBlockStop") == 0) {
        if (num(v, "contentBlockIndex") == st->block_index)
            st->block = B_NONE;
    } else if (strcmp(type, "messageStop") == 0) {
        /* JSON mode answers through its tool: that is a plain stop. */
        const char *fr = finish_reason(sl_tr_str(v, "stopReason"), st->n_tools == 0);

        if ((rc = start_chunk(req, st, out)) == SL_OK && fr != NULL)
            rc = sl_tr_emit(out, sl_tr_chunk(req, &st->ids, json_object(), fr));
    } else if (strcmp(type, "metadata") == 0) {
        read_usage(st, json_object_get(v, "usage"));
        rc = sl_tr_emit(out, sl_tr_usage_chunk(req, &st->ids, usage(st)));
        *done = 1;
    }
    /* Unknown event types carry nothing for the client. */
    json_decref(v);
    return rc;
}

/* The fast path for a plain text delta once the answer has begun:
 * contentBlockDelta {"contentBlockIndex":N,"delta":{"text":"..."},"p":"..."} */
static int bedrock_fast_delta(struct sl_request *req, const struct sl_sse_event *ev,
                              struct sl_fast_delta *out)
{
    static const char *const text[] = { "delta", "text", NULL };
    const struct bedrock *st = req->pstate;

    if (st == NULL || !st->started || st->ids.id == NULL || ev->event == NULL ||
        strcmp(ev->event, "contentBlockDelta") != 0 || (ev->id != NULL && strcmp(ev->id, "event") != 0) ||
        (out->text = sl_tr_scan(ev->data, ev->data_len, text, &out->text_len)) == NULL ||
        out->text_len < 3 || out->text[0] != '"')
        return 0;   /* an empty text ("") makes no chunk: the parser says so */
    out->id = st->ids.id;
    out->created = st->ids.created;
    out->reasoning = 0;
    return 1;
}

const struct sl_provider sl_provider_bedrock = {
    .name = "bedrock",
    .abi = SL_PROVIDER_ABI,
    .flags = 0,
    .api_key_env = "AWS_BEARER_TOKEN_BEDROCK",
    .default_api_base = NULL,   /* https://bedrock-runtime.{region}.amazonaws.com, region per request */
    .endpoints = SL_EP_BIT(SL_EP_CHAT) | SL_EP_BIT(SL_EP_EMBEDDINGS) | SL_EP_BIT(SL_EP_RERANK),
    .build_request = bedrock_build_request,
    .parse_response = bedrock_parse_response,
    .parse_stream_event = bedrock_parse_stream_event,
    .map_error = bedrock_map_error,
    .fast_delta = bedrock_fast_delta,
};

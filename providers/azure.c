/* azure/: Azure OpenAI. The wire format is OpenAI's; what differs is where
 * the request goes and how it is authenticated:
 *
 *   api_base https://NAME.openai.azure.com            (AZURE_API_BASE)
 *     -> POST {api_base}/openai/deployments/{deployment}/chat/completions?api-version=V
 *   api_base https://NAME.openai.azure.com/openai/v1  (the v1 API)
 *     -> POST {api_base}/chat/completions, the deployment as "model"
 *
 * The Responses API is passed through: POST {api_base}/openai/responses?
 * api-version=V (2025-04-01-preview unless a later version is configured:
 * older ones do not have it), or {api_base}/responses on the v1 API; the
 * deployment is the body's "model" either way.
 *
 * The deployment is the model after "azure/". api-version: litellm_params
 * api_version, else AZURE_API_VERSION, else 2024-10-21 (the current GA
 * version). Auth: litellm_params azure_ad_token (an Entra ID token) as a
 * Bearer token, else the key (api_key, AZURE_API_KEY) in an api-key header.
 *
 * Errors: Azure's content filter answers 400 with code "content_filter"
 * (prompt) or ends a completion with finish_reason "content_filter"; the
 * first becomes OpenAI's content_policy_violation. */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "openai.h"
#include "request.h"
#include "status.h"
#include "translate.h"
#include "upstream.h"

#define AZURE_API_VERSION "2024-10-21"
#define AZURE_RESPONSES_API_VERSION "2025-04-01-preview"

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n >= k && strncmp(s + n - k, suffix, k) == 0;
}

static int azure_build_request(struct sl_request *req, const json_t *in, struct sl_upstream_req *out)
{
    const struct sl_deployment *dep = req->dep;
    const char *base = dep->api_base, *path, *version, *token, *deployment;
    size_t n;

    if (req->endpoint == SL_EP_CHAT)
        path = "/chat/completions";
    else if (req->endpoint == SL_EP_EMBEDDINGS)
        path = "/embeddings";
    else if (req->endpoint == SL_EP_RESPONSES)
        path = "/responses";
    else if (req->endpoint == SL_EP_COMPLETIONS)
        path = "/completions";
    else
        return SL_ERR_UNSUPPORTED;
    if (base == NULL)
        return SL_ERR_CONFIG;
    n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (ends_with(base, n, "/openai/v1")) {
        out->url = sl_arena_printf(req->arena, "%.*s%s", (int)n, base, path);
    } else {
        if (ends_with(base, n, "/openai"))
            n -= 7;
        version = dep->api_version ? dep->api_version : getenv("AZURE_API_VERSION");
        if (version == NULL || *version == '\0')
            version = AZURE_API_VERSION;
        /* The Responses API came with 2025-03-01-preview: an older version
         * configured for chat would only get a 404 there. */
        if (req->endpoint == SL_EP_RESPONSES && strcmp(version, "2025-03-01") < 0)
            version = AZURE_RESPONSES_API_VERSION;
        deployment = sl_upstream_escape(req->arena, dep->upstream_model);
        version = sl_upstream_escape(req->arena, version);
        if (deployment == NULL || version == NULL)
            return SL_ERR_NOMEM;
        if (req->endpoint == SL_EP_RESPONSES)
            out->url = sl_arena_printf(req->arena, "%.*s/openai/responses?api-version=%s", (int)n, base, version);
        else
            out->url = sl_arena_printf(req->arena, "%.*s/openai/deployments/%s%s?api-version=%s",
                                       (int)n, base, deployment, path, version);
    }
    if (out->url == NULL)
        return SL_ERR_NOMEM;
    out->headers[out->n_headers++] = "Content-Type: application/json";
    token = json_string_value(json_object_get(dep->litellm_params, "azure_ad_token"));
    if (token != NULL)
        out->headers[out->n_headers++] = sl_arena_printf(req->arena, "Authorization: Bearer %s", token);
    else if (dep->api_key != NULL)
        out->headers[out->n_headers++] = sl_arena_printf(req->arena, "api-key: %s", dep->api_key);
    if (out->headers[out->n_headers - 1] == NULL)
        return SL_ERR_NOMEM;
    out->framing = SL_FRAMING_SSE;
    return sl_openai_build_body(req, in, dep->upstream_model, out);
}

static int azure_map_error(struct sl_request *req, long http_status, const json_t *body,
                           struct sl_error *out)
{
    const json_t *err = json_object_get(body, "error");
    const char *inner = json_string_value(json_object_get(json_object_get(err, "innererror"), "code"));

    if (!sl_openai_error_from_json(req, body, http_status, out))
        out->message = NULL;   /* the core fills in a generic text */
    if ((out->code != NULL && strcmp(out->code, "content_filter") == 0) ||
        (inner != NULL && strcmp(inner, "ResponsibleAIPolicyViolation") == 0)) {
        out->http_status = 400;
        out->type = "invalid_request_error";
        out->code = "content_policy_violation";
    }
    /* Azure says "404" etc. as its code; OpenAI's clients expect a word. */
    if (out->code != NULL && out->code[0] >= '0' && out->code[0] <= '9')
        out->code = NULL;
    return SL_OK;
}

const struct sl_provider sl_provider_azure = {
    .name = "azure",
    .abi = SL_PROVIDER_ABI,
    .flags = SL_PROVIDER_OPENAI_WIRE | SL_PROVIDER_NEEDS_API_BASE,
    .api_key_env = "AZURE_API_KEY",
    .api_base_env = "AZURE_API_BASE",
    .endpoints = SL_EP_BIT(SL_EP_CHAT) | SL_EP_BIT(SL_EP_EMBEDDINGS) | SL_EP_BIT(SL_EP_RESPONSES) |
                 SL_EP_BIT(SL_EP_COMPLETIONS),
    .build_request = azure_build_request,
    .parse_response = sl_openai_parse_response,
    .parse_stream_event = sl_openai_parse_stream_event,
    .map_error = azure_map_error,
};

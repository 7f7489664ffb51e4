/* The OpenAI wire format, shared by the openai adapter, the mock and every
 * OpenAI-compatible vendor. */
#ifndef SL_PROVIDER_OPENAI_H
#define SL_PROVIDER_OPENAI_H

#include "provider.h"

/* What an OpenAI-compatible vendor does differently from OpenAI, as data
 * (sl_provider.data of the vendor's entry in providers/vendors.c). */
struct sl_rename { const char *from, *to; };

struct sl_vendor {
    const char *const *unsupported;   /* OpenAI parameters it rejects (NULL-terminated), or NULL */
    const struct sl_rename *renames;  /* parameters it spells differently ({NULL} ends), or NULL */
    const char *model_prefix;         /* put before a model name without '/', or NULL */
    unsigned quirks;                  /* SL_VQ_* */
};
#define SL_VQ_TEMPERATURE_MAX_1 1u    /* takes temperature in [0, 1]: higher values become 1 */
#define SL_VQ_TOOL_CHOICE_ANY   2u    /* spells tool_choice "required" as "any" */

/* The OpenAI wire request for req: URL from the deployment (or the
 * provider's default base) + the endpoint's path, Bearer auth, and the body
 * with the vendor's edits. Shared by openai/ and every vendor. */
int sl_openai_build_request(struct sl_request *req, const json_t *in, struct sl_upstream_req *out);

/* Only the body (out->body), for a given upstream model name: for adapters
 * that build their own URL and headers (azure/). */
int sl_openai_build_body(struct sl_request *req, const json_t *in, const char *model,
                         struct sl_upstream_req *out);

int sl_openai_parse_response(struct sl_request *req, const char *body, size_t len,
                             json_t **out);
int sl_openai_parse_stream_event(struct sl_request *req, const struct sl_sse_event *ev,
                                 json_t **out, int *done);
int sl_openai_map_error(struct sl_request *req, long http_status, const json_t *body,
                        struct sl_error *out);

/* Fills e from an OpenAI-shaped {"error":{...}} object (strings copied into
 * the arena); returns 1 if body had that shape, 0 otherwise. */
int sl_openai_error_from_json(struct sl_request *req, const json_t *body,
                              long http_status, struct sl_error *e);

#endif

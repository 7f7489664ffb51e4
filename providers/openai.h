/* The OpenAI wire format, shared by the openai adapter, the mock and every
 * OpenAI-compatible vendor. */
#ifndef SL_PROVIDER_OPENAI_H
#define SL_PROVIDER_OPENAI_H

#include "provider.h"

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

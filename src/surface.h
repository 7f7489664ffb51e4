/* The APIs a client may speak besides OpenAI's chat completions, each
 * turning OpenAI chat answers into its own shape: Anthropic's Messages API
 * (messages.c), OpenAI's Responses API (responses.c) and legacy text
 * completions (completions.c). For a request whose surface is not
 * SL_SURFACE_OPENAI. */
#ifndef SL_SURFACE_H
#define SL_SURFACE_H

#include <jansson.h>

#include "completions.h"
#include "messages.h"
#include "request.h"
#include "responses.h"

/* A whole chat completion (borrowed), sent in the client's shape. */
static inline int sl_surface_send_completion(struct sl_request *req, const json_t *completion)
{
    return req->surface == SL_SURFACE_ANTHROPIC ? sl_messages_send_completion(req, completion)
         : req->surface == SL_SURFACE_COMPLETIONS ? sl_completions_send_completion(req, completion)
         : sl_responses_send_completion(req, completion);
}

/* One chat chunk (borrowed), sent as the client's events. */
static inline int sl_surface_send_chunk(struct sl_request *req, const json_t *chunk)
{
    return req->surface == SL_SURFACE_ANTHROPIC ? sl_messages_send_chunk(req, chunk)
         : req->surface == SL_SURFACE_COMPLETIONS ? sl_completions_send_chunk(req, chunk)
         : sl_responses_send_chunk(req, chunk);
}

/* The end of a stream, in the client's events. */
static inline int sl_surface_finish(struct sl_request *req)
{
    return req->surface == SL_SURFACE_ANTHROPIC ? sl_messages_finish(req)
         : req->surface == SL_SURFACE_COMPLETIONS ? sl_completions_finish(req)
         : sl_responses_finish(req);
}

#endif

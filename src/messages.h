/* Anthropic's Messages API as a second front door (POST /v1/messages and
 * /v1/messages/count_tokens), so Claude Code and Anthropic SDK users can use
 * any configured model. The request is turned into the OpenAI shape every
 * adapter takes; what comes back (a whole completion, or chunk by chunk) is
 * turned into Anthropic's message and SSE events. */
#ifndef SL_MESSAGES_H
#define SL_MESSAGES_H

#include <jansson.h>

struct sl_request;

/* Checks the few fields the gateway interprets (model, max_tokens,
 * messages). SL_OK or SL_ERR_BAD_REQUEST with req->err_msg. */
int sl_messages_validate(struct sl_request *req);

/* Replaces req->in (Anthropic's shape) with the OpenAI-shaped request for
 * the routed deployment (req->dep is set) and forgets the raw body text, so
 * no adapter splices it. SL_OK, SL_ERR_BAD_REQUEST or SL_ERR_NOMEM. */
int sl_messages_to_openai(struct sl_request *req);

/* Answers /v1/messages/count_tokens with an estimate of the input tokens. */
int sl_messages_count_tokens(struct sl_request *req);

/* A whole OpenAI completion (borrowed) -> Anthropic's message, sent. */
int sl_messages_send_completion(struct sl_request *req, const json_t *completion);

/* One OpenAI chunk (borrowed) -> zero or more Anthropic SSE events, sent. */
int sl_messages_send_chunk(struct sl_request *req, const json_t *chunk);

/* The end of a stream: closes the open block, sends message_delta (stop
 * reason, usage) and message_stop. */
int sl_messages_finish(struct sl_request *req);

/* Anthropic's error type for an HTTP status (and OpenAI's type, if any). */
const char *sl_messages_error_type(int http_status, const char *openai_type);

#endif

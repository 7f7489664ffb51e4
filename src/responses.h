/* OpenAI's Responses API (POST /v1/responses) in front of any model.
 *
 * Deployments whose provider speaks it natively (openai/, azure/) get the
 * client's body as it came, with only "model" rewritten, and their answer
 * goes back as it came, with only the client's model name put in. Every
 * other deployment gets the request as chat completions, and the chat
 * answer (whole, or chunk by chunk) is rebuilt as a Response object and
 * the Responses event sequence. The choice is made per attempt, so a
 * fallback from a native deployment to another kind works. */
#ifndef SL_RESPONSES_H
#define SL_RESPONSES_H

#include <jansson.h>

struct sl_request;
struct sl_sse_event;

/* Checks the fields the gateway interprets (input, instructions, tools,
 * previous_response_id, ...). SL_OK or SL_ERR_BAD_REQUEST with
 * req->err_msg. */
int sl_responses_validate(struct sl_request *req);

/* Before the guardrails and before each attempt: sets req->in, req->body
 * and req->endpoint for the routed deployment (req->dep): the client's
 * Responses body for a native one (unless guardrails run on this request:
 * they read chat messages), the chat completions form (made once) for the
 * others. SL_OK, or SL_ERR_BAD_REQUEST when the request cannot be said in
 * chat completions (a built-in tool, ...), or SL_ERR_NOMEM. */
int sl_responses_prepare(struct sl_request *req);

/* Whether the current attempt passes the Responses API through. */
int sl_responses_native(const struct sl_request *req);

/* Translated answers: a whole chat completion (borrowed) -> a Response,
 * sent; one chat chunk (borrowed) -> zero or more Responses events, sent;
 * the end of the stream: the open item closed and response.completed (or
 * response.incomplete). */
int sl_responses_send_completion(struct sl_request *req, const json_t *completion);

/* A plain text delta recognised without a parse (provider.h's fast_delta):
 * token is the JSON string as the upstream sent it, written into the delta
 * event as it is. reasoning: the model's reasoning rather than its answer. */
int sl_responses_fast_text(struct sl_request *req, const char *token, size_t len, int reasoning);
int sl_responses_send_chunk(struct sl_request *req, const json_t *chunk);
int sl_responses_finish(struct sl_request *req);

/* Native answers: a whole Response (text) -> *out (a new reference) with
 * the client's model put in, usage taken; one upstream event passed on (the events that carry the
 * response get the client's model; the last one's usage is taken). *done
 * is set at response.completed, .incomplete or .failed. */
int sl_responses_native_reply(struct sl_request *req, const char *body, size_t len, json_t **out);
int sl_responses_native_event(struct sl_request *req, const struct sl_sse_event *ev, int *done);

/* An error once the stream has begun: an "error" event, then
 * response.failed. */
int sl_responses_stream_error(struct sl_request *req, int http_status, const char *type,
                              const char *message, const char *code);

#endif

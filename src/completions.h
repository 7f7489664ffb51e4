/* Legacy text completions (POST /v1/completions). OpenAI-wire providers
 * (openai/, azure/, the OpenAI-compatible vendors) get the request as it
 * came, with "model" rewritten, and their answer goes back through the
 * same splice as chat's. Every other provider gets it as chat completions
 * (the prompt as one user message), and the chat answer is rebuilt as
 * text_completion objects (so are requests that guardrails inspect). The
 * choice is made per attempt, as for the Responses API. */
#ifndef SL_COMPLETIONS_H
#define SL_COMPLETIONS_H

#include <jansson.h>

struct sl_request;

/* Checks prompt and the fields the gateway interprets; makes the state.
 * SL_OK or SL_ERR_BAD_REQUEST with req->err_msg. */
int sl_completions_validate(struct sl_request *req);

/* Before each attempt: the client's body and SL_EP_COMPLETIONS for an
 * OpenAI-wire deployment (req->surface SL_SURFACE_OPENAI), else the chat
 * form (made once) and SL_EP_CHAT (req->surface SL_SURFACE_COMPLETIONS).
 * SL_OK, or SL_ERR_BAD_REQUEST when the request needs what only the
 * legacy API has (several prompts, token prompts, echo, suffix, logprobs,
 * best_of). */
int sl_completions_prepare(struct sl_request *req);

/* Translated answers, for SL_SURFACE_COMPLETIONS: a whole chat completion
 * (borrowed) -> a text_completion, sent; one chat chunk -> a
 * text_completion chunk, sent (the usage chunk only if the client asked);
 * the end: [DONE]. */
int sl_completions_send_completion(struct sl_request *req, const json_t *completion);
int sl_completions_send_chunk(struct sl_request *req, const json_t *chunk);
int sl_completions_finish(struct sl_request *req);

#endif

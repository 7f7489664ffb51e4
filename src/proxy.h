/* The LLM call: a routed request -> adapter -> upstream -> client, whole or
 * streamed. */
#ifndef SL_PROXY_H
#define SL_PROXY_H

struct sl_request;

/* Serves an LLM endpoint (chat, embeddings) for a parsed, authenticated and
 * routed request. Always answers the client (success or error) and returns
 * the status for the log line. */
int sl_proxy_call(struct sl_request *req);

/* Anthropic's /v1/messages/count_tokens through the provider's own counter
 * (req->in is the client's Anthropic body): answers {"input_tokens": N}, or
 * the provider's error mapped. Returns SL_ERR_UNSUPPORTED, having sent
 * nothing, when the provider has no counter. */
int sl_proxy_count_tokens(struct sl_request *req);

#endif

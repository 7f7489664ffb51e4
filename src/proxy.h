/* The LLM call: a routed request -> adapter -> upstream -> client, whole or
 * streamed. */
#ifndef SL_PROXY_H
#define SL_PROXY_H

struct sl_request;

/* Serves an LLM endpoint (chat, embeddings) for a parsed, authenticated and
 * routed request. Always answers the client (success or error) and returns
 * the status for the log line. */
int sl_proxy_call(struct sl_request *req);

#endif

/* Events and spans leave the host off the request thread. When a request
 * ends, sl_export_request copies what the configured sinks need into one
 * record (no prompt, no completion, no key: its hash) and puts it on each
 * sink's queue; a thread per sink and process takes batches from its queue
 * and POSTs them: a webhook's JSON, Langfuse's ingestion batch, OTLP/HTTP
 * JSON spans. The queues are bounded (sluice_settings.callback_queue_size):
 * an event that finds its queue full, or whose batch the sink does not
 * take, is dropped and counted (sluice_callback_events_dropped_total), so
 * a slow or absent sink never slows a request down nor makes memory grow. */
#ifndef SL_EXPORT_H
#define SL_EXPORT_H

struct sl_request;

/* Hands req (ended) to the sinks of its config that want it. Never blocks
 * on I/O. */
void sl_export_request(const struct sl_request *req);

/* Stops the sinks' threads, giving them up to timeout_ms to deliver what
 * waits. For the way out of the process. 0, or -1 when a thread still runs
 * (then libcurl must not be cleaned up). */
int sl_export_shutdown(long timeout_ms);

#endif

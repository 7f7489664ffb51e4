/* The time-outs of one LLM call: which limits apply to an attempt on a
 * deployment (connect, first byte, total, stream idle), resolved from the
 * deployment, the config's defaults and the request's own "timeout" (body
 * field or x-litellm-timeout header, capped by
 * sluice_settings.max_request_timeout). upstream.c enforces them; this
 * module only decides the numbers and words the error. */
#ifndef SL_TIMEOUTS_H
#define SL_TIMEOUTS_H

struct sl_request;

/* All in ms; 0 means "no such limit". Each *_name is the setting the value
 * came from ("stream_timeout", "timeout", ...), static, for messages. */
struct sl_timeouts {
    long connect_ms;           /* name resolution + TCP + TLS */
    long first_byte_ms;        /* transfer start -> first byte of the reply */
    long total_ms;             /* transfer start -> last byte; 0 for a stream */
    long idle_ms;              /* longest silence once the reply began */
    long reported_ms;          /* the call's time-out as LiteLLM reports it
                                * (x-litellm-timeout): total, or a stream's wait */
    const char *connect_name, *first_byte_name, *total_name, *idle_name;
};

/* Which limit ended a transfer. */
enum sl_timeout_kind {
    SL_TIMEOUT_CONNECT,
    SL_TIMEOUT_FIRST_BYTE,
    SL_TIMEOUT_TOTAL,
    SL_TIMEOUT_IDLE
};

/* Reads the request's own time-out: the body's "timeout" (a number of
 * seconds) and the x-litellm-timeout header (the header wins when both are
 * given), capped at cfg->max_request_timeout_ms, into req->timeout_ms (0:
 * none). SL_OK, or SL_ERR_BAD_REQUEST with req->err_msg and req->err_param
 * naming the field when a value is not a number of seconds > 0. */
int sl_timeouts_from_request(struct sl_request *req);

/* The limits of one attempt of req on req->dep (req->stream, req->timeout_ms
 * and req->cfg are read). Also sets the x-litellm-timeout response header. */
void sl_timeouts_for(struct sl_request *req, struct sl_timeouts *out);

/* The limits the plain sl_upstream_perform applies for one timeout_ms:
 * connect within min(timeout, 10 s); a whole reply within it, or a stream's
 * first byte and every silence after it. */
void sl_timeouts_simple(long timeout_ms, int stream, struct sl_timeouts *out);

/* "1.0", "0.25", "600.0": ms as seconds, the way LiteLLM prints a float
 * (x-litellm-timeout). buf of at least 32 bytes. */
const char *sl_timeouts_seconds(long ms, char *buf, unsigned long size);

/* The OpenAI-shaped message of a time-out (arena; NULL on OOM): LiteLLM's
 * "litellm.Timeout: ..." prefix, which limit fired, its value and the setting
 * it came from, and the deployment (model group, model, id; never the api
 * key or api_base, which may carry credentials). */
char *sl_timeouts_message(struct sl_request *req, const struct sl_timeouts *t,
                          enum sl_timeout_kind kind);

#endif

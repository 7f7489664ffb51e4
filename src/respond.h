/* Everything sent to the client goes through here: the header block, JSON
 * bodies, the one error envelope, and SSE events (written and flushed one by
 * one). respond.c holds the table mapping each sl_status to an HTTP status
 * and an OpenAI error type. */
#ifndef SL_RESPOND_H
#define SL_RESPOND_H

#include <stddef.h>
#include <jansson.h>

struct sl_request;
struct sl_error;

/* Adds "Name: value" to the response headers (copied into the arena). Headers
 * added after the header block was sent are dropped. SL_OK or SL_ERR_NOMEM. */
int sl_respond_header(struct sl_request *req, const char *name, const char *value);

/* Adds a header line the caller built ("Name: value", in the arena, from
 * parts that cannot carry a line break): not checked or copied. */
void sl_respond_header_line(struct sl_request *req, const char *line);

/* A whole JSON reply. body is borrowed. */
int sl_respond_json(struct sl_request *req, int http_status, const json_t *body);

/* A whole JSON reply given as text in up to three pieces (a spliced body). */
int sl_respond_json_text(struct sl_request *req, int http_status, const char *a, size_t na,
                         const char *b, size_t nb, const char *c, size_t nc);

/* A whole reply that is not JSON (the /metrics text): content_type is a
 * constant. */
int sl_respond_raw(struct sl_request *req, int http_status, const char *content_type,
                   const char *p, size_t n);

/* The error envelope {"error":{"message","type","param","code"}} for status
 * (an enum sl_status). msg NULL: req->err_msg, else a default text. If a
 * stream has already started, the error goes in-band as an SSE event followed
 * by [DONE]. */
int sl_respond_error(struct sl_request *req, int status, const char *msg);
/* The same for an error already in OpenAI's shape (an upstream's). */
int sl_respond_error_obj(struct sl_request *req, const struct sl_error *e);

/* SSE: begin sends the 200 header block for text/event-stream; data writes
 * "data: <p>\n\n" WITHOUT flushing (the caller flushes once per upstream
 * read with sl_respond_flush: events that completed in the same read are
 * sent together, no later than one at a time would be); data3 is the same
 * with the payload in three pieces (a spliced event); ping writes
 * ": ping\n\n" and done "data: [DONE]\n\n", both flushed at once.
 * SL_ERR_CLIENT_GONE once a write fails. */
int sl_respond_sse_begin(struct sl_request *req);
int sl_respond_sse_data(struct sl_request *req, const char *p, size_t n);
int sl_respond_sse_data3(struct sl_request *req, const char *a, size_t na,
                         const char *b, size_t nb, const char *c, size_t nc);
int sl_respond_sse_ping(struct sl_request *req);
int sl_respond_flush(struct sl_request *req);
int sl_respond_sse_done(struct sl_request *req);
/* One named event, "event: NAME\ndata: <p>\n\n", as Anthropic's streams
 * have them; not flushed, like data. */
int sl_respond_sse_event(struct sl_request *req, const char *name, const char *p, size_t n);

/* Bytes of a reply passed on as they come (audio): the first call sends a
 * 200 header block with ctype and no length; not flushed, like data. Once
 * such a reply has begun, an error can no longer be told: it ends short. */
int sl_respond_bytes(struct sl_request *req, const char *ctype, const char *p, size_t n);

/* HTTP status and OpenAI error type for an sl_status. */
int sl_respond_http_status(int status);
const char *sl_respond_error_type(int status);

/* url without what may carry a secret (user:password@, the query string
 * and fragment) into out (at least strlen(url) + 1 bytes). */
void sl_safe_url(const char *url, char *out);

#endif

/* W3C trace context (https://www.w3.org/TR/trace-context/): a request
 * continues the trace its client started (the traceparent header) or
 * starts one; it is one span, each upstream attempt a child span, and the
 * attempt's traceparent goes to the upstream. The spans are exported by
 * export.c, from the request's record, off the request thread. */
#ifndef SL_TRACE_H
#define SL_TRACE_H

#include <stddef.h>

struct sl_request;

struct sl_trace {
    unsigned char trace_id[16];
    unsigned char parent_id[8];  /* the client's span; all zero: none */
    unsigned char span_id[8];    /* this request's span */
    unsigned char flags;         /* trace-flags: bit 0 sampled */
    int from_client;             /* a valid traceparent came with the request */
    const char *tracestate;      /* the client's, passed on (borrowed); NULL: none */
};

/* Reads HTTP_TRACEPARENT / HTTP_TRACESTATE of req, or starts a trace
 * (sampled). Never fails: an invalid traceparent starts a new trace, as the
 * specification says. */
void sl_trace_begin(struct sl_request *req);

/* Applies the config's sampler (req->cfg set) to req's trace: a trace the
 * client started keeps its sampled flag (parent-based samplers), one
 * started here is sampled when its id falls in trace_ratio (the
 * specification's traceidratio: the id's last 8 bytes below ratio * 2^64). */
void sl_trace_sample(struct sl_request *req);

/* A new random span id. */
void sl_trace_new_span(unsigned char id[8]);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void sl_trace_hex(const unsigned char *b, size_t n, char *out);

/* The header lines for req's current upstream attempt ("traceparent: ...",
 * then "tracestate: ..." when the client sent one), arena text, into
 * lines (room for 2); returns how many. With tracing on, the attempt's span
 * is the parent; with it off, the client's traceparent goes on unchanged,
 * and nothing when it sent none. */
int sl_trace_upstream_headers(const struct sl_request *req, const char **lines);

#endif

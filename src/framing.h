/* Incremental stream framers: bytes in, complete events out. They never
 * buffer a complete event: each is delivered as soon as its terminating blank
 * line (SSE), newline (NDJSON) or last byte (AWS event-stream) arrives. One
 * event is capped at SL_MAX_STREAM_EVENT bytes.
 *
 * The event-stream framer checks what the binary framing promises: both
 * CRC32s (prelude and message), lengths that fit (a message of at least 16
 * bytes and at most the cap, headers inside it) and well-formed headers of
 * every type (0-9). Any violation, or input that ends inside a message, is
 * SL_ERR_UPSTREAM_BAD: the stream ends with an error rather than guessing. */
#ifndef SL_FRAMING_H
#define SL_FRAMING_H

#include <stddef.h>
#include "buf.h"
#include "provider.h"

/* Called once per complete event; a non-OK return stops feeding and is
 * returned by sl_framer_feed. */
typedef int (*sl_event_fn)(void *ctx, const struct sl_sse_event *ev);

struct sl_framer {
    enum sl_framing kind;
    struct sl_buf line;      /* the current, incomplete line */
    struct sl_buf data;      /* data lines of the current event */
    struct sl_buf event;     /* the event field */
    struct sl_buf id;        /* the id field */
    int has_data;            /* a data: line was seen in this event */
    int started;             /* past a possible UTF-8 BOM */
    int last_cr;             /* the previous chunk ended in '\r' */
    /* event-stream: line holds the incomplete message; msg_len is its total
     * length once the prelude was read (0 before). */
    size_t msg_len;
    int failed;              /* the first non-OK status returned: every later call repeats it */
};

void sl_framer_init(struct sl_framer *f, enum sl_framing kind);
void sl_framer_free(struct sl_framer *f);

/* Feeds n bytes. SL_OK, SL_ERR_UPSTREAM_BAD (an event over the cap; for an
 * event-stream also a bad CRC, length or header), SL_ERR_NOMEM, or whatever
 * fn returned. After any non-OK status (from feed or finish) the framer is
 * spent: later calls return that status again and deliver nothing. */
int sl_framer_feed(struct sl_framer *f, const char *p, size_t n,
                   sl_event_fn fn, void *ctx);

/* End of input: a last line without its newline is processed and a pending
 * event is delivered. The SSE spec would drop an event missing its blank
 * line; upstreams that end with "data: [DONE]\n" exist, so we are lenient.
 * An event-stream that ends inside a message is SL_ERR_UPSTREAM_BAD: a binary
 * message is whole or it is nothing. */
int sl_framer_finish(struct sl_framer *f, sl_event_fn fn, void *ctx);

#endif

/* The upstream transport: the only module that calls libcurl. One easy and
 * one multi handle per worker thread, one share handle per process
 * (connections, DNS, TLS sessions). A transfer waits on the upstream socket
 * and on the client's connection together, so a client that leaves aborts
 * the upstream within one poll, and a silent upstream gets heartbeats. */
#ifndef SL_UPSTREAM_H
#define SL_UPSTREAM_H

#include <stddef.h>
#include "buf.h"
#include "provider.h"

struct sl_arena;
struct sl_request;
struct sl_upstream_thread;
struct sl_timeouts;

struct sl_upstream_cb {
    /* One complete event of a 2xx streamed reply. A non-OK return aborts. */
    int (*on_event)(struct sl_request *req, const struct sl_sse_event *ev, void *ctx);
    /* The events of one upstream read were delivered: push them out now. */
    int (*on_flush)(struct sl_request *req, void *ctx);
    /* Nothing was sent to the client for heartbeat_ms. A non-OK return aborts. */
    int (*on_idle)(struct sl_request *req, void *ctx);
    void *ctx;
};

struct sl_upstream_res {
    long status;              /* the upstream's HTTP status; 0 if none came */
    struct sl_buf body;       /* a non-streamed reply, or an error body (capped) */
    const char *retry_after;  /* arena; the upstream's retry-after, or NULL */
    long long t_first_byte_us;/* monotonic time of the first body byte */
};

/* Process-wide set-up and tear-down; call before/after any thread. */
int  sl_upstream_global_init(void);
void sl_upstream_global_cleanup(void);

/* Per-thread handles; NULL on OOM. free accepts NULL. */
struct sl_upstream_thread *sl_upstream_thread_new(void);
void sl_upstream_thread_free(struct sl_upstream_thread *t);

/* Performs up for req. With stream set and a 2xx answer, each event goes to
 * cb->on_event as soon as it is complete; otherwise the body is collected in
 * res->body (init'ed here; the caller frees it with sl_buf_free).
 * timeout_ms bounds the whole non-streamed call; for a stream, it bounds
 * the wait for the first byte and every silence after it.
 * Returns SL_OK when the upstream answered (any status: see res->status),
 * SL_ERR_UPSTREAM_CONNECT, SL_ERR_UPSTREAM_TIMEOUT, SL_ERR_UPSTREAM_BAD (a
 * reply over its cap or broken framing), SL_ERR_CLIENT_GONE, SL_ERR_NOMEM, or
 * the status a callback returned. */
int sl_upstream_perform(struct sl_request *req, const struct sl_upstream_req *up,
                        int stream, long timeout_ms, const struct sl_upstream_cb *cb,
                        struct sl_upstream_res *res);

/* The same with every limit of struct sl_timeouts (timeouts.h, borrowed):
 * connect, first byte, total and stream idle. A time-out returns
 * SL_ERR_UPSTREAM_TIMEOUT with req->err_msg naming the limit that ran out. */
int sl_upstream_perform_timed(struct sl_request *req, const struct sl_upstream_req *up,
                              int stream, const struct sl_timeouts *t,
                              const struct sl_upstream_cb *cb, struct sl_upstream_res *res);

/* The largest reply a side request keeps (an OAuth2 token answer is ~1 KiB). */
#define SL_MAX_SIDE_REPLY (64u << 10)

/* A small synchronous side request an adapter needs before its main call
 * (today: Vertex AI's OAuth2 token exchange). POSTs body (NUL-terminated,
 * already application/x-www-form-urlencoded) to url on this thread's curl
 * handles, bounded by timeout_ms and abandoned if the client leaves. The
 * reply body of any status goes to out (init'ed here, capped at
 * SL_MAX_SIDE_REPLY; the caller frees it with sl_buf_free) and its status to
 * *status (0 if none came). Returns SL_OK when the server answered (look at
 * *status), SL_ERR_UPSTREAM_CONNECT (also: no curl handles on this thread),
 * SL_ERR_UPSTREAM_TIMEOUT, SL_ERR_UPSTREAM_BAD (a reply over the cap),
 * SL_ERR_CLIENT_GONE or SL_ERR_NOMEM. Never logs url or body: they may hold
 * credentials. */
int sl_upstream_post_form(struct sl_request *req, const char *url, const char *body,
                          long timeout_ms, long *status, struct sl_buf *out);

/* Percent-decodes s (len bytes) into arena memory; NULL on OOM or when the
 * result would contain a NUL byte. */
char *sl_upstream_unescape(struct sl_arena *a, const char *s, size_t len);

/* Percent-encodes s for a URL path segment or query value (everything but
 * RFC 3986's unreserved characters) into arena memory; NULL on OOM. */
char *sl_upstream_escape(struct sl_arena *a, const char *s);

/* libcurl's message about the last failed transfer on t ("Failed to connect
 * to host port N: Connection refused"), "" if none; borrowed, valid until
 * t's next transfer. It never holds the URL's path or query, nor a header. */
const char *sl_upstream_last_error(const struct sl_upstream_thread *t);

/* Checks whether the client connection of req was dropped (non-blocking). */
int sl_upstream_client_gone(struct sl_request *req);

#endif

/* The upstream transport, and the only user of libcurl. Each worker thread
 * keeps one multi and one easy handle for its whole life, so connections to
 * a provider are reused request after request; DNS and TLS sessions are
 * shared process-wide (connections are not: libcurl documents sharing the
 * connection cache across concurrent threads as unsafe).
 *
 * A transfer is driven with curl_multi_poll() so the same wait also watches
 * the client's FastCGI connection: lighttpd, Apache and Caddy only close it
 * when they fail to write to a vanished client, nginx closes it at once
 * (shared/reference/webservers.md). Heartbeats (on_idle) make the former write. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <curl/curl.h>

#include "arena.h"
#include "config.h"
#include "framing.h"
#include "log.h"
#include "request.h"
#include "status.h"
#include "timeouts.h"
#include "upstream.h"

struct sl_upstream_thread {
    CURL  *easy;
    CURLM *multi;
    char   errbuf[CURL_ERROR_SIZE];
};

static size_t on_write(char *p, size_t size, size_t n, void *ud);
static size_t on_header(char *p, size_t size, size_t n, void *ud);

static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access acc, void *u)
{
    (void)h; (void)acc; (void)u;
    pthread_mutex_lock(&share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *u)
{
    (void)h; (void)u;
    pthread_mutex_unlock(&share_locks[data]);
}

int sl_upstream_global_init(void)
{
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
        return SL_ERR_INTERNAL;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_locks[i], NULL);
    share = curl_share_init();
    if (share == NULL)
        return SL_ERR_NOMEM;
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return SL_OK;
}

void sl_upstream_global_cleanup(void)
{
    curl_share_cleanup(share);
    share = NULL;
    curl_global_cleanup();
}

struct sl_upstream_thread *sl_upstream_thread_new(void)
{
    struct sl_upstream_thread *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->easy = curl_easy_init();
    t->multi = curl_multi_init();
    if (t->easy == NULL || t->multi == NULL) {
        sl_upstream_thread_free(t);
        return NULL;
    }
    /* What is the same for every request is set once: resetting and setting
     * it again per request showed up in profiles. Everything per request is
     * set on every request (setup), so nothing carries over. */
    curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_SHARE, share);
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    return t;
}

void sl_upstream_thread_free(struct sl_upstream_thread *t)
{
    if (t == NULL)
        return;
    curl_easy_cleanup(t->easy);
    curl_multi_cleanup(t->multi);
    free(t);
}

/* One transfer in progress. */
struct xfer {
    struct sl_request *req;
    const struct sl_upstream_cb *cb;
    struct sl_upstream_res *res;
    struct sl_framer framer;
    int stream;
    int framing;          /* the framer is in use: 2xx and stream */
    int rc;               /* why a callback stopped the transfer */
    long long last_data_us;
    const struct sl_timeouts *tmo;  /* borrowed: the limits of this transfer */
    int began;            /* a byte of the reply (status line on) has come */
    int fired;            /* enum sl_timeout_kind that ended it, or -1 */
};

static int deliver(void *ctx, const struct sl_sse_event *ev)
{
    struct xfer *x = ctx;

    return x->cb->on_event(x->req, ev, x->cb->ctx);
}

static void first_byte(struct xfer *x)
{
    long code = 0;

    if (x->res->status != 0)
        return;
    curl_easy_getinfo(x->req->up->easy, CURLINFO_RESPONSE_CODE, &code);
    x->res->status = code;
    x->res->t_first_byte_us = sl_now_us();
    x->framing = x->stream && code >= 200 && code < 300;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    int rc;

    first_byte(x);
    x->began = 1;
    x->last_data_us = sl_now_us();
    if (x->framing) {
        rc = sl_framer_feed(&x->framer, p, len, deliver, x);
        if (rc == SL_OK && x->cb->on_flush)
            rc = x->cb->on_flush(x->req, x->cb->ctx);
    } else if (x->res->status >= 200 && x->res->status < 300) {
        rc = sl_buf_append(&x->res->body, p, len);
        if (rc == SL_ERR_TOO_LARGE)
            rc = SL_ERR_UPSTREAM_BAD;
    } else {
        /* An error body: keep its head, which carries the message. */
        size_t room = SL_MAX_UPSTREAM_ERROR - x->res->body.len;

        rc = sl_buf_append(&x->res->body, p, len < room ? len : room);
    }
    if (rc != SL_OK) {
        x->rc = rc;
        return 0;    /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;

    /* Headers count as the first byte and as a sign of life. */
    x->began = 1;
    x->last_data_us = sl_now_us();
    if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        const char *v = p + 12;
        size_t vlen = len - 12;

        while (vlen > 0 && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
            vlen--;
        if (vlen > 0 && vlen < 64)
            x->res->retry_after = sl_arena_strndup(x->req->arena, v, vlen);
    } else if (len > 13 && strncasecmp(p, "content-type:", 13) == 0) {
        const char *v = p + 13;
        size_t vlen = len - 13, i;

        while (vlen > 0 && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
            vlen--;
        for (i = 0; i < vlen && (unsigned char)v[i] >= 0x20 && (unsigned char)v[i] < 0x7f; i++)
            ;
        /* printable and short, since it may become our own header */
        if (vlen > 0 && vlen < 128 && i == vlen)
            x->req->upstream_ctype = sl_arena_strndup(x->req->arena, v, vlen);
    }
    return len;
}

char *sl_upstream_unescape(struct sl_arena *a, const char *s, size_t len)
{
    int n = 0;
    char *raw, *out = NULL;

    if (len > 4096)
        return NULL;
    /* libcurl ignores the handle argument for unescaping. */
    raw = curl_easy_unescape(NULL, s, (int)len, &n);
    if (raw != NULL && memchr(raw, '\0', (size_t)n) == NULL)
        out = sl_arena_strndup(a, raw, (size_t)n);
    curl_free(raw);
    return out;
}

char *sl_upstream_escape(struct sl_arena *a, const char *s)
{
    size_t len = strlen(s);
    char *enc, *out = NULL;

    if (len > 4096)
        return NULL;
    /* libcurl ignores the handle argument for escaping too. */
    enc = curl_easy_escape(NULL, s, (int)len);
    if (enc != NULL)
        out = sl_arena_strdup(a, enc);
    curl_free(enc);
    return out;
}

const char *sl_upstream_last_error(const struct sl_upstream_thread *t)
{
    return t != NULL ? t->errbuf : "";
}

int sl_upstream_client_gone(struct sl_request *req)
{
    int fd = req->conn.ops->watch_fd(req->conn.ctx);
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char c;
    ssize_t r;

    if (req->client_gone)
        return 1;
    if (fd < 0 || poll(&pfd, 1, 0) <= 0)
        return 0;
    /* The body was read to its end, so anything now readable is the web
     * server closing (EOF/RST) or aborting the request. */
    r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    req->client_gone = 1;
    return 1;
}

static int map_curl(struct xfer *x, CURLcode cc)
{
    const char *errbuf = x->req->up->errbuf;

    if (x->rc != SL_OK)
        return x->rc;
    switch (cc) {
    case CURLE_OK:
        return SL_OK;
    case CURLE_OPERATION_TIMEDOUT:
        /* Only the connect phase has a libcurl time-out (setup). */
        x->fired = x->began ? SL_TIMEOUT_FIRST_BYTE : SL_TIMEOUT_CONNECT;
        return SL_ERR_UPSTREAM_TIMEOUT;
    case CURLE_OUT_OF_MEMORY:
        return SL_ERR_NOMEM;
    default:
        break;
    }
    /* Never log the URL: some providers carry keys in the query string. */
    sl_log(SL_LOG_WARN, x->req, "upstream transfer failed: %s (curl %d)",
           errbuf[0] ? errbuf : curl_easy_strerror(cc), (int)cc);
    return x->res->status != 0 ? SL_ERR_UPSTREAM_BAD : SL_ERR_UPSTREAM_CONNECT;
}

static void slist_free_cb(void *p)
{
    curl_slist_free_all(p);
}

static int setup(struct xfer *x, const struct sl_upstream_req *up)
{
    CURL *e = x->req->up->easy;
    struct curl_slist *h = NULL, *n;
    int rc;

    for (size_t i = 0; i < up->n_headers; i++) {
        if ((n = curl_slist_append(h, up->headers[i])) == NULL)
            goto oom;
        h = n;
    }
    {
        const char *tl[2];
        int nt = sl_trace_upstream_headers(x->req, tl);

        for (int i = 0; i < nt; i++) {
            if ((n = curl_slist_append(h, tl[i])) == NULL)
                goto oom;
            h = n;
        }
    }
    /* libcurl would otherwise wait for 100-continue on big bodies. */
    if ((n = curl_slist_append(h, "Expect:")) == NULL)
        goto oom;
    h = n;
    if ((rc = sl_arena_defer(x->req->arena, slist_free_cb, h)) != SL_OK)
        return rc;
    x->req->up->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, up->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, up->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)up->body_len);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, x->tmo->connect_ms);
    /* First byte, total and idle are drive()'s: it knows which one ran out. */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L);
    return SL_OK;
oom:
    curl_slist_free_all(h);
    return SL_ERR_NOMEM;
}

/* The limit that has run out at now (enum sl_timeout_kind), or -1. The
 * first byte is checked before the total, so a reply that never began says
 * so even when both limits are the same. */
static int expired(const struct xfer *x, long long start, long long now)
{
    const struct sl_timeouts *t = x->tmo;

    if (!x->began && t->first_byte_ms > 0 && now - start >= t->first_byte_ms * 1000LL)
        return SL_TIMEOUT_FIRST_BYTE;
    if (t->total_ms > 0 && now - start >= t->total_ms * 1000LL)
        return SL_TIMEOUT_TOTAL;
    if (x->began && t->idle_ms > 0 && now - x->last_data_us >= t->idle_ms * 1000LL)
        return SL_TIMEOUT_IDLE;
    return -1;
}

/* Microseconds from now until the next limit could run out (at most 1 s). */
static long long until_expiry(const struct xfer *x, long long start, long long now)
{
    const struct sl_timeouts *t = x->tmo;
    long long next = now + 1000000;

    if (!x->began && t->first_byte_ms > 0 && start + t->first_byte_ms * 1000LL < next)
        next = start + t->first_byte_ms * 1000LL;
    if (t->total_ms > 0 && start + t->total_ms * 1000LL < next)
        next = start + t->total_ms * 1000LL;
    if (x->began && t->idle_ms > 0 && x->last_data_us + t->idle_ms * 1000LL < next)
        next = x->last_data_us + t->idle_ms * 1000LL;
    return next - now;
}

/* Runs the transfer until it ends, the client leaves or time runs out. */
static int drive(struct xfer *x)
{
    struct sl_request *req = x->req;
    CURLM *m = req->up->multi;
    long long hb_us = req->cfg->heartbeat_ms * 1000LL, start;
    int fd = req->conn.ops->watch_fd(req->conn.ctx), running = 1, rc = SL_OK;

    start = x->last_data_us = sl_now_us();
    while (running) {
        struct curl_waitfd wfd = { .fd = fd, .events = CURL_WAIT_POLLIN };
        long long now, wait_us;
        CURLMsg *msg;
        int left;

        if (curl_multi_perform(m, &running) != CURLM_OK) {
            rc = SL_ERR_INTERNAL;
            break;
        }
        if (x->rc != SL_OK)
            break;
        if (!running) {
            while ((msg = curl_multi_info_read(m, &left)) != NULL)
                if (msg->msg == CURLMSG_DONE)
                    rc = map_curl(x, msg->data.result);
            break;
        }
        now = sl_now_us();
        if ((x->fired = expired(x, start, now)) >= 0) {
            rc = SL_ERR_UPSTREAM_TIMEOUT;
            break;
        }
        if (x->stream && x->cb->on_idle && now - req->t_last_write_us >= hb_us &&
            (rc = x->cb->on_idle(req, x->cb->ctx)) != SL_OK)
            break;
        wait_us = until_expiry(x, start, now);
        if (x->stream && hb_us - (now - req->t_last_write_us) < wait_us)
            wait_us = hb_us - (now - req->t_last_write_us);
        if (wait_us < 1000)
            wait_us = 1000;
        curl_multi_poll(m, fd >= 0 ? &wfd : NULL, fd >= 0 ? 1 : 0, (int)(wait_us / 1000), NULL);
        if (fd >= 0 && wfd.revents && sl_upstream_client_gone(req)) {
            rc = SL_ERR_CLIENT_GONE;
            break;
        }
    }
    if (rc == SL_OK && x->rc != SL_OK)
        rc = x->rc;
    return rc;
}

/* Waits ms between two local events, watching the client and heartbeating. */
static int local_pause(struct xfer *x, long ms)
{
    struct sl_request *req = x->req;
    int fd = req->conn.ops->watch_fd(req->conn.ctx);
    long long end = sl_now_us() + ms * 1000LL, hb_us = req->cfg->heartbeat_ms * 1000LL;
    int rc;

    for (;;) {
        long long now = sl_now_us(), wait = end - now;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };

        if (wait <= 0)
            return SL_OK;
        if (now - req->t_last_write_us >= hb_us && x->cb->on_idle &&
            (rc = x->cb->on_idle(req, x->cb->ctx)) != SL_OK)
            return rc;
        if (wait > hb_us - (now - req->t_last_write_us))
            wait = hb_us - (now - req->t_last_write_us);
        if (wait < 1000)
            wait = 1000;
        if (poll(&pfd, fd >= 0 ? 1 : 0, (int)(wait / 1000)) > 0 && sl_upstream_client_gone(req))
            return SL_ERR_CLIENT_GONE;
    }
}

struct local_ctx {
    struct xfer *x;
    long delay_ms;
    long n;
};

static int local_event(void *ctx, const struct sl_sse_event *ev)
{
    struct local_ctx *l = ctx;
    int rc;

    if (l->n++ > 0 && l->delay_ms > 0 && (rc = local_pause(l->x, l->delay_ms)) != SL_OK)
        return rc;
    if ((rc = deliver(l->x, ev)) != SL_OK)
        return rc;
    /* Paced events go out one by one; an unpaced reply is one "read". */
    return l->delay_ms > 0 && l->x->cb->on_flush ? l->x->cb->on_flush(l->x->req, l->x->cb->ctx) : SL_OK;
}

/* A local provider's reply replayed through the same path as a network one. */
static int perform_local(struct xfer *x, const struct sl_upstream_req *up)
{
    struct local_ctx l = { .x = x, .delay_ms = up->local_delay_ms };
    int rc;

    x->res->status = up->local_status;
    x->res->t_first_byte_us = sl_now_us();
    if (!x->stream || up->local_status < 200 || up->local_status >= 300)
        return sl_buf_append(&x->res->body, up->local_body, up->local_len);
    if ((rc = sl_framer_feed(&x->framer, up->local_body, up->local_len, local_event, &l)) != SL_OK ||
        (rc = sl_framer_finish(&x->framer, local_event, &l)) != SL_OK)
        return rc;
    return x->cb->on_flush ? x->cb->on_flush(x->req, x->cb->ctx) : SL_OK;
}

/* A limit ran out: the error's words name it and the deployment (the
 * request's err_msg, until the next transfer), logged once here. */
static void timed_out(struct xfer *x)
{
    char *msg = sl_timeouts_message(x->req, x->tmo, x->fired < 0 ? SL_TIMEOUT_TOTAL
                                                                 : (enum sl_timeout_kind)x->fired);

    if (msg == NULL)
        return;     /* the generic text will do */
    x->req->err_msg = msg;
    x->req->upstream_timed_out = 1;
    sl_log(SL_LOG_WARN, x->req, "upstream time-out: %s", msg);
}

/* One transfer on this thread's handles; the body is collected up to cap. */
static int perform(struct sl_request *req, const struct sl_upstream_req *up,
                   int stream, const struct sl_timeouts *tmo, const struct sl_upstream_cb *cb,
                   struct sl_upstream_res *res, size_t cap)
{
    struct xfer x = { .req = req, .cb = cb, .res = res, .stream = stream, .tmo = tmo, .fired = -1 };
    int rc;

    if (req->upstream_timed_out) {
        /* The words of an earlier attempt's time-out are not this one's. */
        req->err_msg = NULL;
        req->upstream_timed_out = 0;
    }
    memset(res, 0, sizeof(*res));
    sl_buf_init(&res->body, cap);
    sl_framer_init(&x.framer, up->framing);
    if (up->url == NULL) {
        rc = perform_local(&x, up);
        goto out;
    }
    if ((rc = setup(&x, up)) != SL_OK)
        goto out;
    if (curl_multi_add_handle(req->up->multi, req->up->easy) != CURLM_OK) {
        rc = SL_ERR_INTERNAL;
        goto out;
    }
    rc = drive(&x);
    if (rc == SL_ERR_UPSTREAM_TIMEOUT)
        timed_out(&x);
    /* A reply without a body (a bare 500, a 204) never reached on_write. */
    if (rc == SL_OK && res->status == 0)
        first_byte(&x);
    if (rc == SL_OK && x.framing && (rc = sl_framer_finish(&x.framer, deliver, &x)) == SL_OK &&
        cb->on_flush)
        rc = cb->on_flush(req, cb->ctx);
    curl_multi_remove_handle(req->up->multi, req->up->easy);
out:
    sl_framer_free(&x.framer);
    return rc;
}

int sl_upstream_perform(struct sl_request *req, const struct sl_upstream_req *up,
                        int stream, long timeout_ms, const struct sl_upstream_cb *cb,
                        struct sl_upstream_res *res)
{
    struct sl_timeouts t;

    sl_timeouts_simple(timeout_ms, stream, &t);
    return perform(req, up, stream, &t, cb, res, SL_MAX_UPSTREAM_BODY);
}

int sl_upstream_perform_timed(struct sl_request *req, const struct sl_upstream_req *up,
                              int stream, const struct sl_timeouts *t,
                              const struct sl_upstream_cb *cb, struct sl_upstream_res *res)
{
    return perform(req, up, stream, t, cb, res, SL_MAX_UPSTREAM_BODY);
}

/* A side request runs through the same path as a main one (setup + drive),
 * so it gets the same time-outs and the same watch on the client; setup()
 * sets every per-transfer option again for the main call that follows, so
 * nothing of the side request carries over. The easy handle is in the multi
 * handle only while perform() runs, and a side request always finishes
 * before the adapter hands the main request back. */
int sl_upstream_post_form(struct sl_request *req, const char *url, const char *body,
                          long timeout_ms, long *status, struct sl_buf *out)
{
    static const struct sl_upstream_cb no_cb = { 0 };
    struct sl_upstream_req up = {
        .url = url,
        .headers = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json" },
        .n_headers = 2,
        .body = body,
        .body_len = strlen(body),
    };
    struct sl_upstream_res res;
    struct sl_timeouts t;
    int rc;

    *status = 0;
    sl_buf_init(out, SL_MAX_SIDE_REPLY);
    if (req->up == NULL || url == NULL)
        return SL_ERR_UPSTREAM_CONNECT;
    sl_timeouts_simple(timeout_ms, 0, &t);
    rc = perform(req, &up, 0, &t, &no_cb, &res, SL_MAX_SIDE_REPLY);
    *status = res.status;
    *out = res.body;       /* moves the buffer to the caller */
    return rc;
}

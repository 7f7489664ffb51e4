/* The time-outs of an LLM call (timeouts.h). The numbers come from the
 * deployment (config.c resolves its defaults at load) and from the request's
 * own "timeout"; the rule is that every limit that applies bounds the call,
 * so the smallest wins. upstream.c enforces them and calls back here for the
 * words of the error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "request.h"
#include "respond.h"
#include "status.h"
#include "timeouts.h"

#define DEFAULT_CONNECT_MS 10000L   /* a deployment built without config.c */

static int bad(struct sl_request *req, const char *msg, const char *param)
{
    req->err_msg = (char *)msg;
    req->err_param = param;
    return SL_ERR_BAD_REQUEST;
}

/* The header's value as seconds; 0 if it is not a number > 0. */
static double header_seconds(const char *s)
{
    char *end;
    double d;

    while (*s == ' ' || *s == '\t')
        s++;
    errno = 0;
    d = strtod(s, &end);
    if (end == s || errno == ERANGE)
        return 0;
    while (*end == ' ' || *end == '\t')
        end++;
    return *end == '\0' && isfinite(d) && d > 0 ? d : 0;
}

int sl_timeouts_from_request(struct sl_request *req)
{
    const json_t *v = req->in != NULL ? json_object_get(req->in, "timeout") : NULL;
    const char *h = req->conn.ops != NULL ? req->conn.ops->param(req->conn.ctx, "HTTP_X_LITELLM_TIMEOUT")
                                          : NULL;
    long cap = req->cfg != NULL ? req->cfg->max_request_timeout_ms : 0;
    double s = 0, ms;

    req->timeout_ms = 0;
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) <= 0)
            return bad(req, "timeout must be a number of seconds > 0.", "timeout");
        s = json_number_value(v);
    }
    if (h != NULL && (s = header_seconds(h)) == 0)
        return bad(req, "The x-litellm-timeout header must be a number of seconds > 0.",
                   "x-litellm-timeout");
    if (s == 0)
        return SL_OK;
    ms = s * 1000.0 + 0.5;
    if (cap > 0 && ms > (double)cap)
        ms = (double)cap;       /* honoured up to the ceiling, not refused */
    else if (ms > 1e9)
        ms = 1e9;
    req->timeout_ms = ms < 1 ? 1 : (long)ms;
    return SL_OK;
}

const char *sl_timeouts_seconds(long ms, char *buf, unsigned long size)
{
    int n;

    if (ms % 1000 == 0) {
        snprintf(buf, size, "%ld.0", ms / 1000);
        return buf;
    }
    n = snprintf(buf, size, "%ld.%03ld", ms / 1000, ms % 1000);
    while (n > 0 && (unsigned long)n < size && buf[n - 1] == '0')
        buf[--n] = '\0';
    return buf;
}

void sl_timeouts_simple(long timeout_ms, int stream, struct sl_timeouts *out)
{
    memset(out, 0, sizeof(*out));
    out->connect_ms = timeout_ms < DEFAULT_CONNECT_MS ? timeout_ms : DEFAULT_CONNECT_MS;
    out->first_byte_ms = timeout_ms;
    out->total_ms = stream ? 0 : timeout_ms;
    out->idle_ms = stream ? timeout_ms : 0;
    out->reported_ms = timeout_ms;
    out->connect_name = out->first_byte_name = out->total_name = out->idle_name = "timeout";
}

void sl_timeouts_for(struct sl_request *req, struct sl_timeouts *out)
{
    const struct sl_deployment *d = req->dep;
    long own = req->timeout_ms, fallback = req->cfg ? req->cfg->request_timeout_ms : 600000;
    long total = d->timeout_ms > 0 ? d->timeout_ms : fallback;
    long wait = d->stream_timeout_ms > 0 ? d->stream_timeout_ms : total;
    const char *own_name = "timeout (this request's)";
    char v[32];

    memset(out, 0, sizeof(*out));
    if (!req->stream) {
        out->total_ms = own ? own : total;
        out->total_name = own ? own_name : "timeout";
        out->first_byte_ms = out->total_ms;
        out->first_byte_name = out->total_name;
        out->reported_ms = out->total_ms;
    } else {
        /* LiteLLM's stream_timeout: the wait for a stream's first chunk;
         * also each later silence unless stream_idle_timeout says otherwise. */
        out->first_byte_ms = own ? own : wait;
        out->first_byte_name = own ? own_name : "stream_timeout";
        out->idle_ms = d->stream_idle_timeout_ms > 0 ? d->stream_idle_timeout_ms : out->first_byte_ms;
        out->idle_name = d->stream_idle_timeout_ms > 0 ? "stream_idle_timeout" : out->first_byte_name;
        out->reported_ms = out->first_byte_ms;
    }
    if (d->first_byte_timeout_ms > 0 && d->first_byte_timeout_ms < out->first_byte_ms) {
        out->first_byte_ms = d->first_byte_timeout_ms;
        out->first_byte_name = "first_byte_timeout";
    }
    out->connect_ms = d->connect_timeout_ms > 0 ? d->connect_timeout_ms : DEFAULT_CONNECT_MS;
    out->connect_name = "connect_timeout";
    if (out->connect_ms > out->first_byte_ms) {
        out->connect_ms = out->first_byte_ms;
        out->connect_name = out->first_byte_name;
    }
    sl_respond_header(req, "x-litellm-timeout", sl_timeouts_seconds(out->reported_ms, v, sizeof(v)));
}

char *sl_timeouts_message(struct sl_request *req, const struct sl_timeouts *t,
                          enum sl_timeout_kind kind)
{
    const struct sl_deployment *d = req->dep;
    const char *what, *name;
    char v[32];
    long ms;

    switch (kind) {
    case SL_TIMEOUT_CONNECT:
        what = "no connection to the upstream within", ms = t->connect_ms, name = t->connect_name;
        break;
    case SL_TIMEOUT_FIRST_BYTE:
        what = "no reply from the upstream within", ms = t->first_byte_ms, name = t->first_byte_name;
        break;
    case SL_TIMEOUT_TOTAL:
        what = "the reply was not complete within", ms = t->total_ms, name = t->total_name;
        break;
    default:
        what = "the stream was silent for", ms = t->idle_ms, name = t->idle_name;
        break;
    }
    sl_timeouts_seconds(ms, v, sizeof(v));
    if (d == NULL)
        return sl_arena_printf(req->arena, "litellm.Timeout: APITimeoutError - Request timed out: "
                               "%s %s s (%s).", what, v, name);
    return sl_arena_printf(req->arena, "litellm.Timeout: APITimeoutError - Request timed out: "
                           "%s %s s (%s). model=%.200s deployment=%.100s (%.200s)", what, v,
                           name, d->model_name ? d->model_name : "", d->id ? d->id : "",
                           d->model ? d->model : "");
}

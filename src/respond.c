/* The only writer to the client. Owns the status table (sl_status -> HTTP
 * status + OpenAI error type), the CGI header block, the error envelope and
 * SSE output. Streaming writes are flushed one event at a time: sluice never
 * holds back a complete event. libfcgi's printf engine is avoided on purpose
 * (it mishandles %zu); everything is formatted with snprintf. */
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "jsonutil.h"
#include "log.h"
#include "messages.h"
#include "request.h"
#include "respond.h"
#include "responses.h"
#include "status.h"

static const struct {
    const char *name;
    int http;
    const char *type;
    const char *text;      /* default message */
} table[SL_STATUS_MAX] = {
    [SL_OK]                   = { "ok", 200, NULL, "" },
    [SL_ERR_NOMEM]            = { "nomem", 503, "service_unavailable_error", "The gateway is out of memory for this request; retry later." },
    [SL_ERR_BAD_JSON]         = { "bad_json", 400, "invalid_request_error", "The request body is not valid JSON." },
    [SL_ERR_BAD_REQUEST]      = { "bad_request", 400, "invalid_request_error", "Invalid request." },
    [SL_ERR_UNKNOWN_MODEL]    = { "unknown_model", 400, "invalid_request_error", "Invalid model name passed in model." },
    [SL_ERR_TOO_LARGE]        = { "too_large", 413, "invalid_request_error", "The request body is larger than this gateway accepts." },
    [SL_ERR_AUTH]             = { "auth", 401, "auth_error", "Authentication Error, no valid API key passed." },
    [SL_ERR_FORBIDDEN]        = { "forbidden", 403, "permission_error", "This key may not use this resource." },
    [SL_ERR_NOT_FOUND]        = { "not_found", 404, "not_found_error", "No such route." },
    [SL_ERR_METHOD]           = { "method", 405, "invalid_request_error", "Method not allowed on this route." },
    [SL_ERR_BODY_TIMEOUT]     = { "body_timeout", 408, "invalid_request_error", "Timed out reading the request body." },
    [SL_ERR_UNSUPPORTED]      = { "unsupported", 400, "invalid_request_error", "This model does not support this endpoint." },
    [SL_ERR_UPSTREAM_CONNECT] = { "upstream_connect", 502, "api_connection_error", "Could not connect to the upstream provider." },
    [SL_ERR_UPSTREAM_TIMEOUT] = { "upstream_timeout", 408, "timeout", "litellm.Timeout: APITimeoutError - Request timed out." },
    [SL_ERR_UPSTREAM_BAD]     = { "upstream_bad", 502, "api_error", "The upstream provider sent a response the gateway cannot read." },
    [SL_ERR_UPSTREAM_STATUS]  = { "upstream_status", 502, "api_error", "The upstream provider returned an error." },
    [SL_ERR_CLIENT_GONE]      = { "client_gone", 499, NULL, "" },
    [SL_ERR_BUSY]             = { "busy", 503, "service_unavailable_error", "The gateway is at capacity; retry later." },
    [SL_ERR_CONFIG]           = { "config", 500, "internal_server_error", "The gateway configuration is invalid." },
    [SL_ERR_INTERNAL]         = { "internal", 500, "internal_server_error", "Internal gateway error." },
    [SL_ERR_DB_UNAVAILABLE]   = { "db_unavailable", 503, "service_unavailable_error", "The gateway's database is unavailable; retry later." },
    [SL_ERR_DB]               = { "db", 500, "internal_server_error", "A database statement failed." },
    [SL_ERR_NO_DEPLOYMENT]    = { "no_deployment", 429, "rate_limit_error", "No deployments available for selected model." },
    [SL_ERR_RATE_LIMITED]     = { "rate_limited", 429, "rate_limit_error", "Rate limit exceeded." },
    [SL_ERR_GUARDRAIL]        = { "guardrail", 400, "invalid_request_error", "Violated guardrail policy." },
};

const char *sl_status_name(int status)
{
    if (status < 0 || status >= SL_STATUS_MAX || table[status].name == NULL)
        return "unknown";
    return table[status].name;
}

int sl_respond_http_status(int status)
{
    if (status < 0 || status >= SL_STATUS_MAX || table[status].http == 0)
        return 500;
    return table[status].http;
}

const char *sl_respond_error_type(int status)
{
    if (status < 0 || status >= SL_STATUS_MAX || table[status].type == NULL)
        return "internal_server_error";
    return table[status].type;
}

static const char *reason(int code)
{
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default:  return code < 400 ? "OK" : code < 500 ? "Client Error" : "Server Error";
    }
}

static int put(struct sl_request *req, const char *p, size_t n)
{
    if (req->client_gone)
        return SL_ERR_CLIENT_GONE;
    if (req->conn.ops->write(req->conn.ctx, p, n) != 0) {
        req->client_gone = 1;
        return SL_ERR_CLIENT_GONE;
    }
    req->t_last_write_us = sl_now_us();
    return SL_OK;
}

static int flush(struct sl_request *req)
{
    if (req->client_gone)
        return SL_ERR_CLIENT_GONE;
    if (req->conn.ops->flush(req->conn.ctx) != 0) {
        req->client_gone = 1;
        return SL_ERR_CLIENT_GONE;
    }
    return SL_OK;
}

int sl_respond_header(struct sl_request *req, const char *name, const char *value)
{
    char *h;

    if (req->headers_sent || req->n_resp_headers >= SL_MAX_RESP_HEADERS)
        return SL_OK;
    /* A header value from an upstream must not smuggle a header of its own. */
    if (strpbrk(value, "\r\n") != NULL || strpbrk(name, "\r\n: ") != NULL)
        return SL_OK;
    h = sl_arena_printf(req->arena, "%s: %s", name, value);
    if (h == NULL)
        return SL_ERR_NOMEM;
    req->resp_headers[req->n_resp_headers++] = h;
    return SL_OK;
}

void sl_respond_header_line(struct sl_request *req, const char *line)
{
    if (!req->headers_sent && req->n_resp_headers < SL_MAX_RESP_HEADERS)
        req->resp_headers[req->n_resp_headers++] = line;
}

static int begin(struct sl_request *req, int code, const char *ctype, long length)
{
    char head[1024];
    int n;
    int rc;

    if (req->headers_sent)
        return SL_OK;
    n = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: %s\r\nx-request-id: %s\r\n",
                 code, reason(code), ctype, req->id);
    if (length >= 0 && n > 0 && (size_t)n < sizeof(head))
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %ld\r\n", length);
    if (n < 0 || (size_t)n >= sizeof(head))
        return SL_ERR_INTERNAL;
    req->headers_sent = 1;
    req->http_status = code;
    if ((rc = put(req, head, (size_t)n)) != SL_OK)
        return rc;
    for (size_t i = 0; i < req->n_resp_headers; i++) {
        if ((rc = put(req, req->resp_headers[i], strlen(req->resp_headers[i]))) != SL_OK ||
            (rc = put(req, "\r\n", 2)) != SL_OK)
            return rc;
    }
    return put(req, "\r\n", 2);
}

/* The 503 for when even the error cannot be built: static text, no
 * allocation, in-band (then [DONE]) if a stream has begun. */
static int send_oom(struct sl_request *req)
{
    static const char oom[] =
        "{\"error\":{\"message\":\"The gateway is out of memory for this request; retry later.\","
        "\"type\":\"service_unavailable_error\",\"param\":null,\"code\":\"503\"}}";
    int rc;

    req->error = SL_ERR_NOMEM;
    if (req->headers_sent) {
        if ((rc = sl_respond_sse_data(req, oom, sizeof(oom) - 1)) != SL_OK)
            return rc;
        return sl_respond_sse_done(req);
    }
    if ((rc = begin(req, 503, "application/json", (long)sizeof(oom) - 1)) != SL_OK)
        return rc;
    return put(req, oom, sizeof(oom) - 1);
}

int sl_respond_json(struct sl_request *req, int http_status, const json_t *body)
{
    size_t len;
    char *text = sl_json_dump(req->arena, body, &len);
    int rc;

    if (text == NULL)
        return send_oom(req);   /* not sl_respond_error: it would dump again */
    if ((rc = begin(req, http_status, "application/json", (long)len)) != SL_OK)
        return rc;
    return put(req, text, len);
}

int sl_respond_json_text(struct sl_request *req, int http_status, const char *a, size_t na,
                         const char *b, size_t nb, const char *c, size_t nc)
{
    int rc;

    if ((rc = begin(req, http_status, "application/json", (long)(na + nb + nc))) != SL_OK ||
        (rc = put(req, a, na)) != SL_OK ||
        (nb && (rc = put(req, b, nb)) != SL_OK))
        return rc;
    return nc ? put(req, c, nc) : SL_OK;
}

int sl_respond_raw(struct sl_request *req, int http_status, const char *content_type,
                   const char *p, size_t n)
{
    int rc;

    if ((rc = begin(req, http_status, content_type, (long)n)) != SL_OK)
        return rc;
    return put(req, p, n);
}

/* Anthropic's envelope for a client of /v1/messages: {"type":"error",
 * "error":{"type","message"}}, in-band as an "error" event. */
static int send_anthropic_error(struct sl_request *req, int http, const char *type, const char *msg)
{
    json_t *err = json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "error", "error",
                            "type", sl_messages_error_type(http, type), "message", msg,
                            "request_id", req->id);
    size_t len;
    char *text;
    int rc;

    if (err == NULL)
        return send_oom(req);
    if (!req->headers_sent) {
        rc = sl_respond_json(req, http, err);
        json_decref(err);
        return rc;
    }
    text = sl_json_dump(req->arena, err, &len);
    json_decref(err);
    if (text == NULL)
        return send_oom(req);
    if ((rc = sl_respond_sse_event(req, "error", text, len)) != SL_OK)
        return rc;
    return flush(req);
}

/* Builds {"error":{...}} and sends it as a reply, or in-band if a stream is
 * already under way (headers sent as text/event-stream). */
static int send_error(struct sl_request *req, int http, const char *type,
                      const char *msg, const char *param, const char *code)
{
    char codebuf[16];
    json_t *err;
    int rc;

    snprintf(codebuf, sizeof(codebuf), "%d", http);
    if (req->surface == SL_SURFACE_ANTHROPIC)
        return send_anthropic_error(req, http, type, msg);
    if (req->surface == SL_SURFACE_RESPONSES && req->headers_sent)
        return sl_responses_stream_error(req, http, type, msg, code);
    if (req->raw_body)
        return SL_OK;       /* audio under way: nothing can be said in it */
    err = json_pack("{s:{s:s, s:s, s:s?, s:s}}", "error", "message", msg,
                    "type", type ? type : "None", "param", param,
                    "code", code ? code : codebuf);
    if (err == NULL)
        return send_oom(req);
    if (req->headers_sent) {
        size_t len;
        char *text = sl_json_dump(req->arena, err, &len);

        json_decref(err);
        if (text == NULL)
            return send_oom(req);
        if ((rc = sl_respond_sse_data(req, text, len)) != SL_OK)
            return rc;
        return sl_respond_sse_done(req);
    }
    rc = sl_respond_json(req, http, err);
    json_decref(err);
    return rc;
}

int sl_respond_error(struct sl_request *req, int status, const char *msg)
{
    req->error = status;
    if (status == SL_ERR_CLIENT_GONE)
        return status;
    if (msg == NULL)
        msg = req->err_msg;
    if (msg == NULL)
        msg = status >= 0 && status < SL_STATUS_MAX && table[status].text
                  ? table[status].text : "Internal gateway error.";
    return send_error(req, sl_respond_http_status(status),
                      req->err_type != NULL ? req->err_type : sl_respond_error_type(status),
                      msg, req->err_param, NULL);
}

int sl_respond_error_obj(struct sl_request *req, const struct sl_error *e)
{
    int http = e->http_status >= 400 && e->http_status <= 599 ? e->http_status : 502;

    req->error = SL_ERR_UPSTREAM_STATUS;
    return send_error(req, http, e->type, e->message ? e->message : "Upstream error.",
                      e->param, e->code);
}

int sl_respond_sse_begin(struct sl_request *req)
{
    int rc;

    if (req->headers_sent)
        return SL_OK;
    /* nginx buffers FastCGI output unless told; the others ignore these. */
    if ((rc = sl_respond_header(req, "Cache-Control", "no-cache")) != SL_OK ||
        (rc = sl_respond_header(req, "X-Accel-Buffering", "no")) != SL_OK)
        return rc;
    if ((rc = begin(req, 200, "text/event-stream", -1)) != SL_OK)
        return rc;
    return flush(req);
}

int sl_respond_sse_data3(struct sl_request *req, const char *a, size_t na,
                         const char *b, size_t nb, const char *c, size_t nc)
{
    int rc;

    if (!req->headers_sent && (rc = sl_respond_sse_begin(req)) != SL_OK)
        return rc;
    if ((rc = put(req, "data: ", 6)) != SL_OK ||
        (rc = put(req, a, na)) != SL_OK ||
        (nb && (rc = put(req, b, nb)) != SL_OK) ||
        (nc && (rc = put(req, c, nc)) != SL_OK) ||
        (rc = put(req, "\n\n", 2)) != SL_OK)
        return rc;
    req->n_events++;
    return SL_OK;
}

int sl_respond_sse_event(struct sl_request *req, const char *name, const char *p, size_t n)
{
    int rc;

    if (!req->headers_sent && (rc = sl_respond_sse_begin(req)) != SL_OK)
        return rc;
    if ((rc = put(req, "event: ", 7)) != SL_OK || (rc = put(req, name, strlen(name))) != SL_OK ||
        (rc = put(req, "\n", 1)) != SL_OK)
        return rc;
    return sl_respond_sse_data3(req, p, n, NULL, 0, NULL, 0);
}

int sl_respond_bytes(struct sl_request *req, const char *ctype, const char *p, size_t n)
{
    int rc;

    if (!req->headers_sent && (rc = begin(req, 200, ctype, -1)) != SL_OK)
        return rc;
    req->raw_body = 1;
    return n > 0 ? put(req, p, n) : SL_OK;
}

int sl_respond_sse_data(struct sl_request *req, const char *p, size_t n)
{
    return sl_respond_sse_data3(req, p, n, NULL, 0, NULL, 0);
}

int sl_respond_flush(struct sl_request *req)
{
    return flush(req);
}

int sl_respond_sse_ping(struct sl_request *req)
{
    int rc;

    if (!req->headers_sent && (rc = sl_respond_sse_begin(req)) != SL_OK)
        return rc;
    if ((rc = put(req, ": ping\n\n", 8)) != SL_OK)
        return rc;
    return flush(req);
}

int sl_respond_sse_done(struct sl_request *req)
{
    int rc;

    if ((rc = put(req, "data: [DONE]\n\n", 14)) != SL_OK)
        return rc;
    return flush(req);
}

void sl_safe_url(const char *u, char *out)
{
    const char *scheme = strstr(u, "://"), *host = scheme ? scheme + 3 : u, *end, *at;
    size_t auth = strcspn(host, "/?#"), n = (size_t)(host - u);

    at = memchr(host, '@', auth);
    end = u + strcspn(u, "?#");
    memcpy(out, u, n);
    if (at != NULL)
        host = at + 1;
    if (end > host) {
        memcpy(out + n, host, (size_t)(end - host));
        n += (size_t)(end - host);
    }
    out[n] = '\0';
}

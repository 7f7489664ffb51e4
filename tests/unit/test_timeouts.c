/* Unit tests for timeouts.c: which limits an attempt gets (the smallest that
 * applies wins), the request's own timeout (body and header, capped, and its
 * 400s), LiteLLM's way of printing seconds, and the words of a time-out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "arena.h"
#include "config.h"
#include "memconn.h"
#include "request.h"
#include "status.h"
#include "tap.h"
#include "timeouts.h"

static struct sl_arena *arena;

/* A request on d (stream or not) with the given FastCGI params and body. */
static void setup(struct sl_request *req, struct memconn *mc, struct sl_config *cfg,
                  const struct sl_deployment *d, int stream, const char *const *params,
                  const char *body)
{
    json_error_t err;

    memset(req, 0, sizeof(*req));
    memset(mc, 0, sizeof(*mc));
    mc->params = params;
    sl_arena_reset(arena);
    req->arena = arena;
    req->conn.ops = &memconn_ops;
    req->conn.ctx = mc;
    req->cfg = cfg;
    req->dep = d;
    req->stream = stream;
    req->in = body ? json_loads(body, 0, &err) : NULL;
}

static const char *header(const struct sl_request *req, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < req->n_resp_headers; i++)
        if (strncmp(req->resp_headers[i], name, n) == 0 && req->resp_headers[i][n] == ':')
            return req->resp_headers[i] + n + 2;
    return NULL;
}

static void test_seconds(void)
{
    char b[32];

    is_str(sl_timeouts_seconds(1000, b, sizeof(b)), "1.0", "1000 ms -> 1.0");
    is_str(sl_timeouts_seconds(600000, b, sizeof(b)), "600.0", "600 s -> 600.0");
    is_str(sl_timeouts_seconds(1, b, sizeof(b)), "0.001", "1 ms -> 0.001");
    is_str(sl_timeouts_seconds(2500, b, sizeof(b)), "2.5", "2500 ms -> 2.5");
    is_str(sl_timeouts_seconds(2250, b, sizeof(b)), "2.25", "2250 ms -> 2.25");
}

static void test_for(struct sl_config *cfg)
{
    static const char *const none[] = { NULL };
    struct sl_deployment d = { .model_name = "g", .model = "openai/x", .id = "dep1",
                               .timeout_ms = 30000, .stream_timeout_ms = 5000,
                               .connect_timeout_ms = 2000 };
    struct sl_request req;
    struct memconn mc;
    struct sl_timeouts t;

    setup(&req, &mc, cfg, &d, 0, none, NULL);
    sl_timeouts_for(&req, &t);
    ok(t.total_ms == 30000 && t.first_byte_ms == 30000 && t.idle_ms == 0 && t.connect_ms == 2000,
       "whole call: total = timeout, first byte within it, no idle limit");
    is_str(t.total_name, "timeout", "whole call: named timeout");
    is_str(header(&req, "x-litellm-timeout"), "30.0", "whole call: x-litellm-timeout is the total");

    setup(&req, &mc, cfg, &d, 1, none, NULL);
    sl_timeouts_for(&req, &t);
    ok(t.total_ms == 0 && t.first_byte_ms == 5000 && t.idle_ms == 5000,
       "stream: no total; stream_timeout bounds the first byte and each silence");
    is_str(t.first_byte_name, "stream_timeout", "stream: named stream_timeout");
    is_str(header(&req, "x-litellm-timeout"), "5.0", "stream: x-litellm-timeout is stream_timeout");

    d.stream_idle_timeout_ms = 9000;
    d.first_byte_timeout_ms = 1500;
    setup(&req, &mc, cfg, &d, 1, none, NULL);
    sl_timeouts_for(&req, &t);
    ok(t.first_byte_ms == 1500 && t.idle_ms == 9000 && t.connect_ms == 1500,
       "stream: first_byte_timeout under stream_timeout wins; idle its own; connect <= first byte");
    ok(strcmp(t.first_byte_name, "first_byte_timeout") == 0 &&
       strcmp(t.idle_name, "stream_idle_timeout") == 0, "stream: the limits are named");

    setup(&req, &mc, cfg, &d, 0, none, NULL);
    req.timeout_ms = 60000;
    sl_timeouts_for(&req, &t);
    ok(t.total_ms == 60000 && t.first_byte_ms == 1500, "request timeout raises the total, "
       "first_byte_timeout still applies");
    is_str(t.total_name, "timeout (this request's)", "request timeout: named as the request's");
    is_str(header(&req, "x-litellm-timeout"), "60.0", "request timeout reported");

    d.first_byte_timeout_ms = 0;
    d.stream_idle_timeout_ms = 0;
    d.connect_timeout_ms = 0;        /* built by hand: 10 s, within the first byte */
    setup(&req, &mc, cfg, &d, 1, none, NULL);
    req.timeout_ms = 400;
    sl_timeouts_for(&req, &t);
    ok(t.first_byte_ms == 400 && t.idle_ms == 400 && t.connect_ms == 400,
       "stream with a request timeout: it bounds the wait, each silence and the connect");
}

static void test_from_request(struct sl_config *cfg)
{
    static const char *const none[] = { NULL };
    static const char *const hdr[] = { "HTTP_X_LITELLM_TIMEOUT", " 0.25 ", NULL };
    static const char *const big[] = { "HTTP_X_LITELLM_TIMEOUT", "1e6", NULL };
    static const struct { const char *v; } bad_hdr[] = {
        { "" }, { "abc" }, { "0" }, { "-1" }, { "nan" }, { "inf" }, { "1e999" }, { "2 s" },
    };
    static const char *const bad_body[] = {
        "{\"timeout\":\"5\"}", "{\"timeout\":0}", "{\"timeout\":-3}", "{\"timeout\":[1]}",
        "{\"timeout\":false}",
    };
    struct sl_deployment d = { .timeout_ms = 1000 };
    struct sl_request req;
    struct memconn mc;

    setup(&req, &mc, cfg, &d, 0, none, "{\"timeout\": 2.5}");
    is_int(sl_timeouts_from_request(&req), SL_OK, "body timeout 2.5: ok");
    is_int(req.timeout_ms, 2500, "body timeout 2.5 -> 2500 ms");
    json_decref(req.in);

    setup(&req, &mc, cfg, &d, 0, none, "{\"timeout\": null}");
    is_int(sl_timeouts_from_request(&req), SL_OK, "body timeout null: ok");
    is_int(req.timeout_ms, 0, "body timeout null: none");
    json_decref(req.in);

    setup(&req, &mc, cfg, &d, 0, hdr, "{\"timeout\": 7}");
    is_int(sl_timeouts_from_request(&req), SL_OK, "header and body: ok");
    is_int(req.timeout_ms, 250, "the header wins over the body");
    json_decref(req.in);

    setup(&req, &mc, cfg, &d, 0, big, NULL);
    is_int(sl_timeouts_from_request(&req), SL_OK, "a huge header value: ok");
    is_int(req.timeout_ms, cfg->max_request_timeout_ms, "capped at max_request_timeout");

    setup(&req, &mc, cfg, &d, 0, none, "{\"timeout\": 0.0001}");
    sl_timeouts_from_request(&req);
    is_int(req.timeout_ms, 1, "0.0001 s is still a time-out (1 ms)");
    json_decref(req.in);

    for (size_t i = 0; i < sizeof(bad_hdr) / sizeof(bad_hdr[0]); i++) {
        const char *p[] = { "HTTP_X_LITELLM_TIMEOUT", bad_hdr[i].v, NULL };
        char name[96];

        setup(&req, &mc, cfg, &d, 0, p, NULL);
        snprintf(name, sizeof(name), "header \"%s\" -> 400 naming x-litellm-timeout", bad_hdr[i].v);
        ok(sl_timeouts_from_request(&req) == SL_ERR_BAD_REQUEST && req.err_param != NULL &&
           strcmp(req.err_param, "x-litellm-timeout") == 0 && strstr(req.err_msg, "x-litellm-timeout"),
           name);
    }
    for (size_t i = 0; i < sizeof(bad_body) / sizeof(bad_body[0]); i++) {
        char name[96];

        setup(&req, &mc, cfg, &d, 0, none, bad_body[i]);
        snprintf(name, sizeof(name), "body %s -> 400 naming timeout", bad_body[i]);
        ok(sl_timeouts_from_request(&req) == SL_ERR_BAD_REQUEST && req.err_param != NULL &&
           strcmp(req.err_param, "timeout") == 0 && strncmp(req.err_msg, "timeout ", 8) == 0, name);
        json_decref(req.in);
    }
}

static void test_message(struct sl_config *cfg)
{
    static const char *const none[] = { NULL };
    struct sl_deployment d = { .model_name = "grp", .model = "openai/m", .id = "abc123",
                               .api_key = "sk-secret-never", .api_base = "http://h/v1?key=sk-q" };
    struct sl_timeouts t;
    struct sl_request req;
    struct memconn mc;
    char *m;

    setup(&req, &mc, cfg, &d, 1, none, NULL);
    sl_timeouts_simple(3000, 1, &t);
    t.idle_ms = 1250;
    t.idle_name = "stream_idle_timeout";
    m = sl_timeouts_message(&req, &t, SL_TIMEOUT_IDLE);
    is_str(m, "litellm.Timeout: APITimeoutError - Request timed out: the stream was silent for "
           "1.25 s (stream_idle_timeout). model=grp deployment=abc123 (openai/m)", "idle message");
    ok(m && !strstr(m, "sk-secret") && !strstr(m, "sk-q") && !strstr(m, "http://"),
       "no key, no api_base in the message");
    m = sl_timeouts_message(&req, &t, SL_TIMEOUT_CONNECT);
    ok(m && strstr(m, "no connection to the upstream within 3.0 s (timeout)"), "connect message");
    sl_timeouts_simple(20000, 0, &t);
    ok(t.connect_ms == 10000 && t.total_ms == 20000 && t.idle_ms == 0,
       "simple: connect at most 10 s, total for a whole reply");
}

int main(void)
{
    struct sl_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.request_timeout_ms = 600000;
    cfg.max_request_timeout_ms = 120000;
    arena = sl_arena_create(1u << 20);
    test_seconds();
    test_for(&cfg);
    test_from_request(&cfg);
    test_message(&cfg);
    sl_arena_free(arena);
    return tap_done();
}

/* Unit tests of the trace context (trace.h) and of the JSON string writer
 * the exporters use (sl_json_put_str): a client's traceparent continued
 * when valid and replaced when not (the W3C rules: lowercase hex, no
 * all-zero ids, version ff, version 00 exactly 55 characters), the headers
 * for the upstream with tracing on and off; strings written as Jansson
 * would encode them, whatever they hold. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "jsonutil.h"
#include "request.h"
#include "status.h"
#include "tap.h"
#include "trace.h"
#include "memconn.h"

static const char TRACE[] = "4bf92f3577b34da6a3ce929d0e0e4736";
static const char PARENT[] = "00f067aa0ba902b7";

/* A request whose traceparent is tp (NULL: none), tracestate ts. */
static void begin(struct sl_request *req, struct memconn *m, const char **params)
{
    memset(req, 0, sizeof(*req));
    memset(m, 0, sizeof(*m));
    m->params = params;
    req->conn.ops = &memconn_ops;
    req->conn.ctx = m;
    sl_trace_begin(req);
}

static int continued(const char *tp)
{
    const char *params[] = { "HTTP_TRACEPARENT", tp, NULL };
    struct sl_request req;
    struct memconn m;
    char tid[33], pid[17];

    begin(&req, &m, params);
    sl_trace_hex(req.trace.trace_id, 16, tid);
    sl_trace_hex(req.trace.parent_id, 8, pid);
    return req.trace.from_client && strcmp(tid, TRACE) == 0 && strcmp(pid, PARENT) == 0;
}

static void test_parse(void)
{
    char tp[128];
    const char *params[] = { NULL };
    struct sl_request req;
    struct memconn m;

    snprintf(tp, sizeof(tp), "00-%s-%s-01", TRACE, PARENT);
    ok(continued(tp), "a valid traceparent is continued");
    snprintf(tp, sizeof(tp), "00-%s-%s-00", TRACE, PARENT);
    ok(continued(tp), "an unsampled one too");
    snprintf(tp, sizeof(tp), "cc-%s-%s-01-what-comes-later", TRACE, PARENT);
    ok(continued(tp), "a later version may carry more after its flags");
    snprintf(tp, sizeof(tp), "00-%s-%s-01-more", TRACE, PARENT);
    ok(!continued(tp), "version 00 may not");
    snprintf(tp, sizeof(tp), "ff-%s-%s-01", TRACE, PARENT);
    ok(!continued(tp), "version ff is invalid");
    snprintf(tp, sizeof(tp), "00-%s-%s-01", "00000000000000000000000000000000", PARENT);
    ok(!continued(tp), "an all-zero trace id is invalid");
    snprintf(tp, sizeof(tp), "00-%s-%s-01", TRACE, "0000000000000000");
    ok(!continued(tp), "an all-zero parent id is invalid");
    snprintf(tp, sizeof(tp), "00-%s-%s-01", "4BF92F3577B34DA6A3CE929D0E0E4736", PARENT);
    ok(!continued(tp), "uppercase hex is invalid");
    ok(!continued("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"), "short");
    ok(!continued(""), "empty");
    begin(&req, &m, params);
    ok(!req.trace.from_client && (req.trace.flags & 1), "none: a new trace, sampled");
    ok(memcmp(req.trace.trace_id, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) != 0 &&
       memcmp(req.trace.span_id, "\0\0\0\0\0\0\0\0", 8) != 0, "with ids that are not zero");
}

static void test_upstream_headers(void)
{
    char tp[128], want[160];
    const char *params[] = { "HTTP_TRACEPARENT", tp, "HTTP_TRACESTATE", "rojo=00f067aa0ba902b7", NULL };
    const char *none[] = { NULL };
    const char *lines[2];
    struct sl_config cfg;
    struct sl_request req;
    struct sl_arena *arena = sl_arena_create(1 << 16);
    struct sl_attempt *a;
    struct memconn m;
    char sid[17];

    memset(&cfg, 0, sizeof(cfg));
    snprintf(tp, sizeof(tp), "00-%s-%s-01", TRACE, PARENT);
    begin(&req, &m, params);
    req.arena = arena;
    req.cfg = &cfg;
    is_int(sl_trace_upstream_headers(&req, lines), 2, "tracing off: the client's headers go on");
    snprintf(want, sizeof(want), "traceparent: %s", tp);
    ok(strcmp(lines[0], want) == 0 && strcmp(lines[1], "tracestate: rojo=00f067aa0ba902b7") == 0,
       "unchanged");
    cfg.tracing = 1;
    a = sl_request_new_attempt(&req);
    sl_trace_hex(a->span_id, 8, sid);
    is_int(sl_trace_upstream_headers(&req, lines), 2, "tracing on: two headers");
    snprintf(want, sizeof(want), "traceparent: 00-%s-%s-01", TRACE, sid);
    ok(strcmp(lines[0], want) == 0, "the attempt's span is the upstream's parent");
    begin(&req, &m, none);
    req.arena = arena;
    req.cfg = &cfg;
    cfg.tracing = 0;
    is_int(sl_trace_upstream_headers(&req, lines), 0, "tracing off and no client header: none");
    sl_arena_free(arena);
}

static void test_sampler(void)
{
    char tp[128];
    const char *none[] = { NULL };
    const char *unsampled[] = { "HTTP_TRACEPARENT", tp, NULL };
    struct sl_config cfg;
    struct sl_request req;
    struct memconn m;
    int sampled = 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.tracing = 1;
    cfg.trace_parent_based = 1;
    cfg.trace_ratio = 0.25;
    for (int i = 0; i < 4000; i++) {
        begin(&req, &m, none);
        req.cfg = &cfg;
        sl_trace_sample(&req);
        sampled += req.trace.flags & 1;
    }
    ok(sampled > 850 && sampled < 1150, "traceidratio 0.25: about a quarter of new traces sampled");
    printf("# %d of 4000\n", sampled);
    snprintf(tp, sizeof(tp), "00-%s-%s-00", TRACE, PARENT);
    cfg.trace_ratio = 1;
    begin(&req, &m, unsampled);
    req.cfg = &cfg;
    sl_trace_sample(&req);
    ok(!(req.trace.flags & 1), "parent-based: the client's unsampled trace stays unsampled");
    cfg.trace_parent_based = 0;
    begin(&req, &m, unsampled);
    req.cfg = &cfg;
    sl_trace_sample(&req);
    ok(req.trace.flags & 1, "always_on: sampled whatever the client said");
    cfg.trace_ratio = 0;
    begin(&req, &m, none);
    req.cfg = &cfg;
    sl_trace_sample(&req);
    ok(!(req.trace.flags & 1), "always_off: nothing sampled");
}

/* sl_json_put_str(s) must read back as s, as Jansson encodes it. */
static int round_trip(const char *s)
{
    struct sl_buf b;
    json_t *v;
    int good;

    sl_buf_init(&b, 1 << 20);
    if (sl_json_put_str(&b, s) != SL_OK)
        return 0;
    v = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    good = v != NULL && json_is_string(v) && strcmp(json_string_value(v), s) == 0;
    json_decref(v);
    sl_buf_free(&b);
    return good;
}

static void test_put_str(void)
{
    struct sl_buf b;
    char big[5000];

    ok(round_trip("plain ascii, with spaces / and slashes"), "plain text");
    ok(round_trip("a \"quote\" and a \\ backslash"), "quotes and backslashes");
    ok(round_trip("tab\tnewline\ncontrol\x01"), "control characters");
    ok(round_trip("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "UTF-8");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[100] = '"';
    ok(round_trip(big), "longer than the stack buffer");
    sl_buf_init(&b, 1 << 20);
    sl_json_put_str(&b, NULL);
    sl_json_put_str(&b, "\xff\xfe");
    ok(b.data != NULL && strcmp(b.data, "nullnull") == 0, "NULL and invalid UTF-8 are null");
    sl_buf_free(&b);
}

int main(void)
{
    test_parse();
    test_upstream_headers();
    test_sampler();
    test_put_str();
    return tap_done();
}

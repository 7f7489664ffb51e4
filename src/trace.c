/* Trace context of a request (see trace.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "config.h"
#include "request.h"
#include "trace.h"

/* Ids must be unique, not secret: a per-thread xorshift seeded from the
 * clock and the thread, as request ids are. */
static uint64_t next(void)
{
    static __thread uint64_t s;

    if (s == 0) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)ts.tv_sec << 32) ^
            (uint64_t)(uintptr_t)&s;
        s |= 1;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

static void fill(unsigned char *b, size_t n)
{
    do {       /* an all-zero id is invalid */
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = next();

            memcpy(b + i, &r, n - i < 8 ? n - i : 8);
        }
    } while (memcmp(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", n) == 0);
}

void sl_trace_new_span(unsigned char id[8])
{
    fill(id, 8);
}

void sl_trace_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* 2n lowercase hex digits into out; all zero refused unless zero_ok. */
static int unhex(const char *s, unsigned char *out, size_t n, int zero_ok)
{
    int any = 0;

    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

        if (v < 0)
            return -1;               /* uppercase is invalid too */
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] |= (unsigned char)v;
        any |= v;
    }
    return any || zero_ok ? 0 : -1;
}

/* version "-" trace-id "-" parent-id "-" trace-flags; a later version may
 * carry more after its flags ("-..."), version 00 may not; ff is invalid. */
static int parse(const char *h, struct sl_trace *t)
{
    unsigned char version, flags;
    size_t len = h ? strlen(h) : 0;

    if (len < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-' ||
        unhex(h, &version, 1, 1) != 0 || version == 0xff ||
        (version == 0 ? len != 55 : len > 55 && h[55] != '-') ||
        unhex(h + 3, t->trace_id, 16, 0) != 0 || unhex(h + 36, t->parent_id, 8, 0) != 0 ||
        unhex(h + 53, &flags, 1, 1) != 0)
        return -1;
    t->flags = flags;
    return 0;
}

void sl_trace_begin(struct sl_request *req)
{
    struct sl_trace *t = &req->trace;
    const char *h = req->conn.ops->param(req->conn.ctx, "HTTP_TRACEPARENT");

    memset(t, 0, sizeof(*t));
    if (parse(h, t) == 0) {
        t->from_client = 1;
        t->tracestate = req->conn.ops->param(req->conn.ctx, "HTTP_TRACESTATE");
    } else {
        memset(t, 0, sizeof(*t));
        fill(t->trace_id, 16);
        t->flags = 1;
    }
    fill(t->span_id, 8);
}

void sl_trace_sample(struct sl_request *req)
{
    struct sl_trace *t = &req->trace;
    const struct sl_config *cfg = req->cfg;
    uint64_t low = 0;

    if (cfg == NULL || !cfg->tracing || (t->from_client && cfg->trace_parent_based))
        return;
    for (int i = 8; i < 16; i++)
        low = low << 8 | t->trace_id[i];
    if (cfg->trace_ratio >= 1.0)
        t->flags |= 1;
    else if (cfg->trace_ratio <= 0 || (double)low >= cfg->trace_ratio * 18446744073709551616.0)
        t->flags &= (unsigned char)~1u;
    else
        t->flags |= 1;
}

int sl_trace_upstream_headers(const struct sl_request *req, const char **lines)
{
    const struct sl_trace *t = &req->trace;
    const char *h;
    char tid[33], sid[17];
    int n = 0;

    if (!t->from_client && (req->cfg == NULL || !req->cfg->tracing))
        return 0;
    if (req->cfg == NULL || !req->cfg->tracing) {
        h = req->conn.ops->param(req->conn.ctx, "HTTP_TRACEPARENT");
        lines[n++] = sl_arena_printf(req->arena, "traceparent: %s", h);
    } else {
        sl_trace_hex(t->trace_id, 16, tid);
        sl_trace_hex(req->n_attempts > 0 ? sl_request_last_attempt(req)->span_id : t->span_id, 8, sid);
        lines[n++] = sl_arena_printf(req->arena, "traceparent: 00-%s-%s-%02x", tid, sid, t->flags & 1);
    }
    if (t->tracestate != NULL && strlen(t->tracestate) <= 512 && strpbrk(t->tracestate, "\r\n") == NULL)
        lines[n++] = sl_arena_printf(req->arena, "tracestate: %s", t->tracestate);
    return lines[0] != NULL && (n < 2 || lines[1] != NULL) ? n : 0;
}

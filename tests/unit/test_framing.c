/* SSE, NDJSON and AWS event-stream framers: fields, comments, CRLF/CR/LF,
 * multi-line data, a BOM, the cap, and the same stream cut at every possible
 * byte position giving the same events; for the event-stream also every
 * header type, exceptions, both CRCs, bad lengths and truncation. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buf.h"
#include "framing.h"
#include "status.h"
#include "tap.h"

struct got {
    char text[8192];   /* "event|data|id;" per event */
    int n;
};

static int collect(void *ctx, const struct sl_sse_event *ev)
{
    struct got *g = ctx;
    size_t len = strlen(g->text);

    snprintf(g->text + len, sizeof(g->text) - len, "%s|%s|%s;",
             ev->event ? ev->event : "-", ev->data, ev->id ? ev->id : "-");
    if (strlen(ev->data) != ev->data_len)
        snprintf(g->text + strlen(g->text), 16, "LEN!");
    g->n++;
    return SL_OK;
}

static void run(enum sl_framing kind, const char *in, size_t len, size_t cut, struct got *g)
{
    struct sl_framer f;

    memset(g, 0, sizeof(*g));
    sl_framer_init(&f, kind);
    if (cut > len)
        cut = len;
    sl_framer_feed(&f, in, cut, collect, g);
    sl_framer_feed(&f, in + cut, len - cut, collect, g);
    sl_framer_finish(&f, collect, g);
    sl_framer_free(&f);
}

static int count_events(void *ctx, const struct sl_sse_event *ev)
{
    (void)ev;
    ++*(int *)ctx;
    return SL_OK;
}

static int stop_at_two(void *ctx, const struct sl_sse_event *ev)
{
    int *n = ctx;

    (void)ev;
    return ++*n == 2 ? SL_ERR_CLIENT_GONE : SL_OK;
}

/* ---- event-stream messages, built here with zlib's CRC32 ---- */

static size_t put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

/* A string header (type 7). */
static size_t hdr_str(unsigned char *p, const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value), i = 0;

    p[i++] = (unsigned char)n;
    memcpy(p + i, name, n);
    i += n;
    p[i++] = 7;
    p[i++] = (unsigned char)(v >> 8);
    p[i++] = (unsigned char)v;
    memcpy(p + i, value, v);
    return i + v;
}

/* A header of any other type with raw value bytes (the length prefix of
 * types 6 and 7 included in raw by the caller). */
static size_t hdr_raw(unsigned char *p, const char *name, unsigned type, const void *raw, size_t n)
{
    size_t len = strlen(name), i = 0;

    p[i++] = (unsigned char)len;
    memcpy(p + i, name, len);
    i += len;
    p[i++] = (unsigned char)type;
    if (n > 0)
        memcpy(p + i, raw, n);
    return i + n;
}

/* One message at out from a header block and a payload; returns its size. */
static size_t es_msg(unsigned char *out, const unsigned char *hdr, size_t hlen,
                     const char *payload)
{
    size_t plen = strlen(payload), total = 16 + hlen + plen;

    put32(out, (uint32_t)total);
    put32(out + 4, (uint32_t)hlen);
    put32(out + 8, (uint32_t)crc32(0L, out, 8));
    memcpy(out + 12, hdr, hlen);
    memcpy(out + 12 + hlen, payload, plen);
    put32(out + total - 4, (uint32_t)crc32(0L, out, (uInt)(total - 4)));
    return total;
}

static size_t es_event(unsigned char *out, const char *type, const char *payload)
{
    unsigned char h[256];
    size_t n = 0;

    n += hdr_str(h + n, ":event-type", type);
    n += hdr_str(h + n, ":content-type", "application/json");
    n += hdr_str(h + n, ":message-type", "event");
    return es_msg(out, h, n, payload);
}

/* A stream of three events and an exception; the first event carries one
 * header of every other type (0-6, 8, 9), which must be skipped. */
static size_t es_stream(unsigned char *out)
{
    static const unsigned char b2[] = { 0x7f }, b3[] = { 1, 2 }, b4[] = { 0, 0, 1, 0 },
        b5[] = { 1, 2, 3, 4, 5, 6, 7, 8 }, b6[] = { 0, 3, 0xff, 0, 0x0a },
        b8[] = { 0, 0, 1, 0x8f, 0, 0, 0, 0 }, b9[16] = { 0xde, 0xad };
    unsigned char h[512];
    size_t n = 0, len = 0;

    n += hdr_raw(h + n, "t", 0, NULL, 0);
    n += hdr_raw(h + n, "f", 1, NULL, 0);
    n += hdr_raw(h + n, "byte", 2, b2, sizeof(b2));
    n += hdr_raw(h + n, "short", 3, b3, sizeof(b3));
    n += hdr_raw(h + n, "int", 4, b4, sizeof(b4));
    n += hdr_raw(h + n, "long", 5, b5, sizeof(b5));
    n += hdr_raw(h + n, "bytes", 6, b6, sizeof(b6));
    n += hdr_raw(h + n, "ts", 8, b8, sizeof(b8));
    n += hdr_raw(h + n, "uuid", 9, b9, sizeof(b9));
    n += hdr_str(h + n, ":message-type", "event");
    n += hdr_str(h + n, ":event-type", "messageStart");
    len += es_msg(out + len, h, n, "{\"role\":\"assistant\"}");
    len += es_event(out + len, "contentBlockDelta", "{\"delta\":{\"text\":\"Hi\"}}");
    len += es_event(out + len, "messageStop", "");
    n = 0;
    n += hdr_str(h + n, ":exception-type", "throttlingException");
    n += hdr_str(h + n, ":message-type", "exception");
    len += es_msg(out + len, h, n, "{\"message\":\"slow down\"}");
    n = 0;
    n += hdr_str(h + n, ":message-type", "error");
    n += hdr_str(h + n, ":error-code", "InternalError");
    n += hdr_str(h + n, ":error-message", "oops");
    len += es_msg(out + len, h, n, "");
    return len;
}

static const char want_es[] =
    "messageStart|{\"role\":\"assistant\"}|event;"
    "contentBlockDelta|{\"delta\":{\"text\":\"Hi\"}}|event;"
    "messageStop||event;"
    "throttlingException|{\"message\":\"slow down\"}|exception;"
    "InternalError|oops|error;";

/* Feeds in two pieces cut at cut; returns the first non-OK status (feed or
 * finish) or SL_OK. */
static int run_es(const unsigned char *in, size_t len, size_t cut, struct got *g)
{
    struct sl_framer f;
    int rc;

    memset(g, 0, sizeof(*g));
    sl_framer_init(&f, SL_FRAMING_EVENTSTREAM);
    if (cut > len)
        cut = len;
    rc = sl_framer_feed(&f, (const char *)in, cut, collect, g);
    if (rc == SL_OK)
        rc = sl_framer_feed(&f, (const char *)in + cut, len - cut, collect, g);
    if (rc == SL_OK)
        rc = sl_framer_finish(&f, collect, g);
    sl_framer_free(&f);
    return rc;
}

static void test_eventstream(void)
{
    static unsigned char in[4096], bad[4096];
    size_t len = es_stream(in), first = 0;
    struct got g;
    struct sl_framer f;
    int all_same = 1, all_refused = 1, rc;

    is_int(run_es(in, len, len, &g), SL_OK, "event-stream: a good stream frames cleanly");
    is_str(g.text, want_es, "event-stream: events, exception and error messages, every header type skipped");
    for (size_t cut = 0; cut <= len; cut++) {
        rc = run_es(in, len, cut, &g);
        if (rc != SL_OK || strcmp(g.text, want_es) != 0) {
            all_same = 0;
            printf("# cut at %zu gave %d %s\n", cut, rc, g.text);
            break;
        }
    }
    ok(all_same, "event-stream: the same events whatever byte the input is cut at");

    memset(&g, 0, sizeof(g));
    sl_framer_init(&f, SL_FRAMING_EVENTSTREAM);
    rc = SL_OK;
    for (size_t i = 0; i < len && rc == SL_OK; i++)
        rc = sl_framer_feed(&f, (const char *)in + i, 1, collect, &g);
    if (rc == SL_OK)
        rc = sl_framer_finish(&f, collect, &g);
    sl_framer_free(&f);
    is_int(rc, SL_OK, "event-stream fed one byte at a time");
    is_str(g.text, want_es, "event-stream fed one byte at a time: same events");

    /* An event goes out at its last byte, not later. */
    first = ((size_t)in[0] << 24) | ((size_t)in[1] << 16) | ((size_t)in[2] << 8) | in[3];
    memset(&g, 0, sizeof(g));
    sl_framer_init(&f, SL_FRAMING_EVENTSTREAM);
    sl_framer_feed(&f, (const char *)in, first - 1, collect, &g);
    is_int(g.n, 0, "event-stream: no event before its last byte");
    sl_framer_feed(&f, (const char *)in + first - 1, 1, collect, &g);
    is_int(g.n, 1, "event-stream: event delivered at its last byte");
    sl_framer_free(&f);

    /* Corrupting any single byte of the stream is caught: a CRC covers every
     * byte, so no corruption may pass as a different event. */
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, in, len);
        bad[i] ^= 0x20;
        if (run_es(bad, len, len, &g) != SL_ERR_UPSTREAM_BAD) {
            all_refused = 0;
            printf("# a flipped byte at %zu passed\n", i);
            break;
        }
    }
    ok(all_refused, "event-stream: any corrupted byte is refused (prelude or message CRC)");

    /* Message CRC alone wrong (prelude fine): refused after the good event. */
    memcpy(bad, in, len);
    bad[first - 1] ^= 1;
    is_int(run_es(bad, len, len, &g), SL_ERR_UPSTREAM_BAD, "event-stream: bad message CRC refused");
    is_int(g.n, 0, "event-stream: nothing delivered from a message with a bad CRC");

    /* Truncation: a stream that ends inside a message is an error at finish. */
    is_int(run_es(in, len - 3, len - 3, &g), SL_ERR_UPSTREAM_BAD, "event-stream: truncated message refused at finish");
    is_int(run_es(in, 5, 5, &g), SL_ERR_UPSTREAM_BAD, "event-stream: truncated prelude refused at finish");
    is_int(run_es(in, 0, 0, &g), SL_OK, "event-stream: an empty stream is fine for the framer");

    /* Impossible lengths, with a valid prelude CRC so the length check is what refuses. */
    {
        static const uint32_t totals[][2] = {
            { 15, 0 },                              /* under the 16-byte minimum */
            { SL_MAX_STREAM_EVENT + 1u, 0 },        /* over the cap */
            { 0xffffffffu, 0 },
            { 32, 17 },                             /* headers longer than the message allows */
        };
        for (size_t k = 0; k < sizeof(totals) / sizeof(totals[0]); k++) {
            unsigned char m[12];
            char name[128];

            put32(m, totals[k][0]);
            put32(m + 4, totals[k][1]);
            put32(m + 8, (uint32_t)crc32(0L, m, 8));
            snprintf(name, sizeof(name), "event-stream: impossible lengths %u/%u refused at once",
                     (unsigned)totals[k][0], (unsigned)totals[k][1]);
            is_int(run_es(m, sizeof(m), 6, &g), SL_ERR_UPSTREAM_BAD, name);
        }
    }

    /* Malformed headers inside a message with good CRCs. */
    {
        static const unsigned char zero_name[] = { 0, 7, 0, 0 };
        static const unsigned char bad_type[] = { 1, 'x', 10 };
        static const unsigned char short_str[] = { 1, 'x', 7, 0, 9, 'a' };
        static const unsigned char cut_long[] = { 1, 'x', 5, 1, 2 };
        const struct { const unsigned char *h; size_t n; const char *what; } cases[] = {
            { zero_name, sizeof(zero_name), "an empty header name" },
            { bad_type, sizeof(bad_type), "an unknown header type" },
            { short_str, sizeof(short_str), "a string longer than the headers" },
            { cut_long, sizeof(cut_long), "a fixed-size value cut short" },
        };
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
            unsigned char m[64];
            size_t n = es_msg(m, cases[k].h, cases[k].n, "{}");
            char name[128];

            snprintf(name, sizeof(name), "event-stream: %s refused", cases[k].what);
            is_int(run_es(m, n, n, &g), SL_ERR_UPSTREAM_BAD, name);
        }
    }

    /* A framing error is sticky: later input is not framed from a guess. */
    memcpy(bad, in, len);
    bad[8] ^= 1;
    sl_framer_init(&f, SL_FRAMING_EVENTSTREAM);
    memset(&g, 0, sizeof(g));
    is_int(sl_framer_feed(&f, (const char *)bad, first, collect, &g), SL_ERR_UPSTREAM_BAD,
           "event-stream: bad prelude CRC refused");
    is_int(sl_framer_feed(&f, (const char *)in + first, len - first, collect, &g), SL_ERR_UPSTREAM_BAD,
           "event-stream: input after a framing error is refused");
    is_int(g.n, 0, "event-stream: no event after a framing error");
    sl_framer_free(&f);

    /* The biggest message the cap allows is framed; one byte more is not.
     * Fed in pieces, as a network delivers it. */
    {
        size_t big = SL_MAX_STREAM_EVENT, hl;
        unsigned char *m = malloc(big + 1), h[128];
        char *payload = malloc(big);

        if (m != NULL && payload != NULL) {
            hl = hdr_str(h, ":event-type", "big");
            hl += hdr_str(h + hl, ":message-type", "event");
            memset(payload, 'x', big - 16 - hl);
            payload[big - 16 - hl] = '\0';
            es_msg(m, h, hl, payload);
            sl_framer_init(&f, SL_FRAMING_EVENTSTREAM);
            rc = SL_OK;
            g.n = 0;
            for (size_t off = 0; off < big && rc == SL_OK; off += 65536)
                rc = sl_framer_feed(&f, (const char *)m + off, big - off < 65536 ? big - off : 65536,
                                    count_events, &g.n);
            is_int(rc, SL_OK, "event-stream: a message of exactly the cap is framed");
            is_int(g.n, 1, "event-stream: ... and delivered");
            sl_framer_free(&f);
        }
        free(m);
        free(payload);
    }
}

int main(void)
{
    static const char sse[] =
        "\xEF\xBB\xBF: a comment\r\n"
        "data: {\"a\":1}\r\n\r\n"
        "event: message_start\n"
        "data: line one\n"
        "data:line two\n"
        "id: 7\n\n"
        "retry: 100\r"
        "data: cr only\r\r"
        "data:\n\n"
        "event: lonely\n\n"
        "data: [DONE]\n\n";
    static const char want_sse[] =
        "-|{\"a\":1}|-;message_start|line one\nline two|7;-|cr only|7;-||7;-|[DONE]|7;";
    static const char nd[] = "{\"a\":1}\n\n  \n{\"b\":2}\r\n{\"c\":3}";
    static const char want_nd[] = "-|{\"a\":1}|-;-|{\"b\":2}|-;-|{\"c\":3}|-;";
    struct got g;
    int all_same = 1;
    struct sl_framer f;
    int n = 0;

    run(SL_FRAMING_SSE, sse, sizeof(sse) - 1, sizeof(sse), &g);
    is_str(g.text, want_sse, "SSE events, fields, comments, CR/LF/CRLF, BOM");
    for (size_t cut = 0; cut <= sizeof(sse) - 1; cut++) {
        run(SL_FRAMING_SSE, sse, sizeof(sse) - 1, cut, &g);
        if (strcmp(g.text, want_sse) != 0) {
            all_same = 0;
            printf("# cut at %zu gave %s\n", cut, g.text);
            break;
        }
    }
    ok(all_same, "SSE: the same events whatever byte the input is cut at");

    run(SL_FRAMING_NDJSON, nd, sizeof(nd) - 1, sizeof(nd), &g);
    is_str(g.text, want_nd, "NDJSON lines, blank lines skipped, last line without newline");
    all_same = 1;
    for (size_t cut = 0; cut <= sizeof(nd) - 1; cut++) {
        run(SL_FRAMING_NDJSON, nd, sizeof(nd) - 1, cut, &g);
        if (strcmp(g.text, want_nd) != 0)
            all_same = 0;
    }
    ok(all_same, "NDJSON: the same events whatever byte the input is cut at");

    /* One byte at a time. */
    memset(&g, 0, sizeof(g));
    sl_framer_init(&f, SL_FRAMING_SSE);
    for (size_t i = 0; i < sizeof(sse) - 1; i++)
        sl_framer_feed(&f, sse + i, 1, collect, &g);
    sl_framer_finish(&f, collect, &g);
    sl_framer_free(&f);
    is_str(g.text, want_sse, "SSE fed one byte at a time");

    /* An event is delivered as soon as its blank line arrives. */
    memset(&g, 0, sizeof(g));
    sl_framer_init(&f, SL_FRAMING_SSE);
    sl_framer_feed(&f, "data: x\n", 8, collect, &g);
    is_int(g.n, 0, "no event before the blank line");
    sl_framer_feed(&f, "\n", 1, collect, &g);
    is_int(g.n, 1, "event delivered at the blank line, before any more input");
    sl_framer_free(&f);

    /* Over the cap: an endless line is refused, not buffered forever. */
    {
        static char chunk[1 << 16];
        int rc = SL_OK;

        memset(chunk, 'x', sizeof(chunk));
        sl_framer_init(&f, SL_FRAMING_SSE);
        sl_framer_feed(&f, "data: ", 6, collect, &g);
        for (size_t sent = 0; rc == SL_OK && sent <= SL_MAX_STREAM_EVENT; sent += sizeof(chunk))
            rc = sl_framer_feed(&f, chunk, sizeof(chunk), collect, &g);
        is_int(rc, SL_ERR_UPSTREAM_BAD, "an event over the cap is refused");
        sl_framer_free(&f);
    }

    /* A callback error stops the feed and is returned. */
    sl_framer_init(&f, SL_FRAMING_SSE);
    is_int(sl_framer_feed(&f, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27, stop_at_two, &n),
           SL_ERR_CLIENT_GONE, "callback status returned");
    is_int(n, 2, "no event after the callback said stop");
    sl_framer_free(&f);

    /* An unterminated last SSE event is delivered at finish (lenient). */
    run(SL_FRAMING_SSE, "data: [DONE]\n", 13, 13, &g);
    is_str(g.text, "-|[DONE]|-;", "last event without blank line delivered at finish");

    test_eventstream();
    return tap_done();
}

/* SSE and NDJSON framers: fields, comments, CRLF/CR/LF, multi-line data, a
 * BOM, the cap, and the same stream cut at every possible byte position
 * giving the same events. */
#include <stdio.h>
#include <string.h>

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

static int stop_at_two(void *ctx, const struct sl_sse_event *ev)
{
    int *n = ctx;

    (void)ev;
    return ++*n == 2 ? SL_ERR_CLIENT_GONE : SL_OK;
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
    return tap_done();
}

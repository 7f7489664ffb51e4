/* bench/translate.c: what each provider adapter costs per request and per
 * stream event, measured on the real adapter code outside the server.
 *
 * Built by bench/translate.sh against a build's libsluice.a (like the unit
 * tests). For each adapter it drives, with a fake struct sl_request, its own
 * arena and a struct sl_deployment (as tests/unit/test_providers.c does):
 *   - build_request on a ~4 KB chat request (bench/fixtures/chat-request.json),
 *   - parse_response on a ~1 KB native answer of that provider, with usage,
 *   - the server's reply path (proxy.c whole_reply: parse or splice, model
 *     name, JSON text, written to an in-memory connection),
 *   - a native stream of TRANSLATE_EVENTS text deltas plus the provider's
 *     opening and closing events (finish reason, usage), fed one event per
 *     read through the real framer, into parse_stream_event alone and into
 *     the server's per-event path (proxy.c on_event: for OpenAI-wire
 *     providers the splice fast path wire_event, for the others
 *     parse_stream_event + one JSON dump; then the SSE write).
 * proxy.c is #included to reach those static functions: what is measured is
 * the server's own code, not a copy of it. The native replies are generated
 * here from one answer text, so every provider carries the same content.
 *
 * Timing: warm-up, then TRANSLATE_RUNS runs of N iterations (N sized to
 * TRANSLATE_RUN_MS), the best run's mean per iteration. Each iteration is a
 * whole request: fresh struct sl_request, build, reply or stream, arena reset.
 * Under valgrind (bench/translate.sh with BENCH_CALLGRIND=1) the same loops
 * run a fixed number of times with callgrind collecting only inside the
 * measured part, and one dump per figure; the script divides. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "proxy.c"              /* wire_event, on_event, whole_reply, end_stream */
#include "responses.h"
#include "framing.h"
#include "unit/memconn.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif
#ifndef HAVE_CALLGRIND
#define RUNNING_ON_VALGRIND 0
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#define BENCH_ARENA_CAP (256u << 20)   /* as main.c's ARENA_CAP */
#define MAX_EVENTS 100000

/* ------------------------------------------------------------------ clock */

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("translate: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static long env_long(const char *name, long def, long min)
{
    const char *v = getenv(name);
    char *end;
    long n;

    if (v == NULL || *v == '\0')
        return def;
    n = strtol(v, &end, 10);
    if (*end != '\0' || n < min)
        die("%s=%s: expected an integer >= %ld", name, v, min);
    return n;
}

/* ------------------------------------------------------------------ the answer */

/* About 1 KB of realistic answer: markdown, a code block, quotes,
 * backslashes, newlines, accented letters, CJK and an emoji. */
static const char ANSWER[] =
    "When Anthropic answers 529 in the middle of a stream, your client has already received "
    "`200 OK` and some chunks, so the status cannot change any more. sluice then sends one last "
    "event, `data: {\"error\": {\"message\": \"Overloaded\", \"type\": \"service_unavailable_error\", "
    "\"code\": \"503\"}}`, followed by `data: [DONE]`. The openai package raises `openai.APIError` "
    "from the iterator, so wrap the `for chunk in stream:` loop, not only the `create()` call.\n\n"
    "A minimal nginx block:\n\n```nginx\nlocation /v1/ {\n    include fastcgi_params;\n"
    "    fastcgi_pass unix:/run/sluice/sluice.sock;\n    fastcgi_buffering off;\n"
    "    fastcgi_read_timeout 300s;\n    fastcgi_send_timeout 300s;\n}\n```\n\n"
    "Cut-over checklist:\n"
    "1. Start sluice with your config.yaml on a spare port and check `/health/readiness`.\n"
    "2. Send 5 % of the traffic to it; watch p99 latency and the 5xx rate.\n"
    "3. Compare one hour of spend rows with LiteLLM's (tokens should agree within ≈ ±1 %).\n"
    "4. Switch the rest and keep LiteLLM warm for a day. On Windows the logs are in "
    "C:\\sluice\\logs\\, tab-separated:\tts\tlevel\tmsg.\n\n"
    "Viel Erfolg in Zürich, und 祝深圳团队上线顺利！🚀";

#define PROMPT_TOKENS 1011L

struct answer {
    const char *text;
    size_t len;
    size_t n;                     /* pieces (stream text deltas) */
    size_t *cut;                  /* n + 1 offsets: piece i is [cut[i], cut[i+1]) */
};

/* Cuts the text into n pieces of about equal size, at UTF-8 character
 * boundaries (a token never splits a character on the wire). */
static void answer_init(struct answer *a, size_t n)
{
    a->text = ANSWER;
    a->len = sizeof(ANSWER) - 1;
    if (n > a->len / 2)
        n = a->len / 2;
    a->n = n;
    if ((a->cut = calloc(n + 1, sizeof(*a->cut))) == NULL)
        die("out of memory");
    for (size_t i = 1; i < n; i++) {
        size_t c = a->len * i / n;

        while (c < a->len && ((unsigned char)a->text[c] & 0xC0) == 0x80)
            c++;
        if (c <= a->cut[i - 1])
            c = a->cut[i - 1] + 1;
        a->cut[i] = c;
    }
    a->cut[n] = a->len;
}

/* ------------------------------------------------------------------ text helpers */

static void put(struct sl_buf *b, const char *s)
{
    if (sl_buf_puts(b, s) != SL_OK)
        die("fixture buffer full");
}

static void putf(struct sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct sl_buf *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp) || sl_buf_append(b, tmp, (size_t)n) != SL_OK)
        die("fixture line too long");
}

/* s[0..n) as a JSON string, quotes included. UTF-8 stays raw, as the
 * providers send it. */
static void jstr(struct sl_buf *b, const char *s, size_t n)
{
    put(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        switch (c) {
        case '"': put(b, "\\\""); break;
        case '\\': put(b, "\\\\"); break;
        case '\n': put(b, "\\n"); break;
        case '\r': put(b, "\\r"); break;
        case '\t': put(b, "\\t"); break;
        default:
            if (c < 0x20)
                putf(b, "\\u%04x", c);
            else if (sl_buf_append(b, &s[i], 1) != SL_OK)
                die("fixture buffer full");
        }
    }
    put(b, "\"");
}

static void jpiece(struct sl_buf *b, const struct answer *a, size_t i)
{
    jstr(b, a->text + a->cut[i], a->cut[i + 1] - a->cut[i]);
}

/* A native stream: the bytes, and where each event ends (each event is fed
 * as one read, as a real token-by-token stream arrives). */
struct stream {
    struct sl_buf bytes;
    size_t ends[MAX_EVENTS];
    size_t n;
};

static void end_event(struct stream *s)
{
    if (s->n >= MAX_EVENTS)
        die("too many events");
    s->ends[s->n++] = s->bytes.len;
}

/* An SSE event: optional "event:" line, one data line, blank line. */
static void sse_begin(struct stream *s, const char *event)
{
    if (event != NULL)
        putf(&s->bytes, "event: %s\n", event);
    put(&s->bytes, "data: ");
}

static void sse_end(struct stream *s, const char *eol)
{
    put(&s->bytes, eol);
    put(&s->bytes, eol);
    end_event(s);
}

/* ------------------------------------------------------------------ OpenAI wire (openai, azure, mistral) */

#define OA_ID "chatcmpl-BenchQv3XbZ5m2Jf8Kd0LwT9pR"
#define OA_CREATED "1741569952"
#define OA_USAGE_FMT "{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"total_tokens\":%ld," \
    "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0}," \
    "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0," \
    "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}"
#define AZ_FILTER "{\"hate\":{\"filtered\":false,\"severity\":\"safe\"}," \
    "\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"}," \
    "\"sexual\":{\"filtered\":false,\"severity\":\"safe\"}," \
    "\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}"
#define AZ_PROMPT_FILTER "[{\"prompt_index\":0,\"content_filter_results\":{" \
    "\"hate\":{\"filtered\":false,\"severity\":\"safe\"}," \
    "\"jailbreak\":{\"filtered\":false,\"detected\":false}," \
    "\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"}," \
    "\"sexual\":{\"filtered\":false,\"severity\":\"safe\"}," \
    "\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}}]"

static void openai_reply(struct sl_buf *b, const struct answer *a)
{
    long c = (long)a->n;

    put(b, "{\"id\":\"" OA_ID "\",\"object\":\"chat.completion\",\"created\":" OA_CREATED
           ",\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"message\":"
           "{\"role\":\"assistant\",\"content\":");
    jstr(b, a->text, a->len);
    put(b, ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":");
    putf(b, OA_USAGE_FMT, PROMPT_TOKENS, c, PROMPT_TOKENS + c);
    put(b, ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_06737a9306\"}");
}

static void openai_chunk_head(struct sl_buf *b)
{
    put(b, "{\"id\":\"" OA_ID "\",\"object\":\"chat.completion.chunk\",\"created\":" OA_CREATED
           ",\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\","
           "\"system_fingerprint\":\"fp_06737a9306\",\"choices\":");
}

static void openai_stream(struct stream *s, const struct answer *a)
{
    long c = (long)a->n;

    sse_begin(s, NULL);
    openai_chunk_head(&s->bytes);
    put(&s->bytes, "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
                   "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"f3Kq\"}");
    sse_end(s, "\n");
    for (size_t i = 0; i < a->n; i++) {
        sse_begin(s, NULL);
        openai_chunk_head(&s->bytes);
        put(&s->bytes, "[{\"index\":0,\"delta\":{\"content\":");
        jpiece(&s->bytes, a, i);
        put(&s->bytes, "},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Xq2\"}");
        sse_end(s, "\n");
    }
    sse_begin(s, NULL);
    openai_chunk_head(&s->bytes);
    put(&s->bytes, "[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                   "\"usage\":null,\"obfuscation\":\"k9\"}");
    sse_end(s, "\n");
    sse_begin(s, NULL);
    openai_chunk_head(&s->bytes);
    put(&s->bytes, "[],\"usage\":");
    putf(&s->bytes, OA_USAGE_FMT, PROMPT_TOKENS, c, PROMPT_TOKENS + c);
    put(&s->bytes, ",\"obfuscation\":\"Zt0ab\"}");
    sse_end(s, "\n");
    sse_begin(s, NULL);
    put(&s->bytes, "[DONE]");
    sse_end(s, "\n");
}

static void azure_reply(struct sl_buf *b, const struct answer *a)
{
    long c = (long)a->n;

    put(b, "{\"choices\":[{\"content_filter_results\":" AZ_FILTER ",\"finish_reason\":\"stop\","
           "\"index\":0,\"logprobs\":null,\"message\":{\"annotations\":[],\"content\":");
    jstr(b, a->text, a->len);
    put(b, ",\"refusal\":null,\"role\":\"assistant\"}}],\"created\":" OA_CREATED ",\"id\":\"" OA_ID
           "\",\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion\","
           "\"prompt_filter_results\":" AZ_PROMPT_FILTER ",\"system_fingerprint\":\"fp_ee1d74bde0\",\"usage\":");
    putf(b, OA_USAGE_FMT, PROMPT_TOKENS, c, PROMPT_TOKENS + c);
    put(b, "}");
}

static void azure_chunk(struct stream *s, const char *delta_open, const struct answer *a, long i,
                        const char *finish)
{
    sse_begin(s, NULL);
    put(&s->bytes, "{\"choices\":[{\"content_filter_results\":");
    put(&s->bytes, i >= 0 ? AZ_FILTER : "{}");
    put(&s->bytes, ",\"delta\":");
    put(&s->bytes, delta_open);
    if (i >= 0) {
        put(&s->bytes, "\"content\":");
        jpiece(&s->bytes, a, (size_t)i);
    }
    putf(&s->bytes, "},\"finish_reason\":%s,\"index\":0,\"logprobs\":null}],\"created\":" OA_CREATED
         ",\"id\":\"" OA_ID "\",\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\","
         "\"system_fingerprint\":\"fp_ee1d74bde0\"}", finish);
    sse_end(s, "\n");
}

static void azure_stream(struct stream *s, const struct answer *a)
{
    long c = (long)a->n;

    sse_begin(s, NULL);
    put(&s->bytes, "{\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
                   "\"prompt_filter_results\":" AZ_PROMPT_FILTER "}");
    sse_end(s, "\n");
    sse_begin(s, NULL);
    put(&s->bytes, "{\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"\",\"refusal\":null,"
                   "\"role\":\"assistant\"},\"finish_reason\":null,\"index\":0,\"logprobs\":null}],"
                   "\"created\":" OA_CREATED ",\"id\":\"" OA_ID "\",\"model\":\"gpt-4o-2024-11-20\","
                   "\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_ee1d74bde0\"}");
    sse_end(s, "\n");
    for (size_t i = 0; i < a->n; i++)
        azure_chunk(s, "{", a, (long)i, "null");
    azure_chunk(s, "{", a, -1, "\"stop\"");
    sse_begin(s, NULL);
    put(&s->bytes, "{\"choices\":[],\"created\":" OA_CREATED ",\"id\":\"" OA_ID "\",\"model\":"
                   "\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\","
                   "\"system_fingerprint\":\"fp_ee1d74bde0\",\"usage\":");
    putf(&s->bytes, OA_USAGE_FMT, PROMPT_TOKENS, c, PROMPT_TOKENS + c);
    put(&s->bytes, "}");
    sse_end(s, "\n");
    sse_begin(s, NULL);
    put(&s->bytes, "[DONE]");
    sse_end(s, "\n");
}

#define MI_HEAD "{\"id\":\"5bd3c4f1a8e04b6c9d2e7f3a1b0c9d8e\",\"object\":\"chat.completion.chunk\"," \
    "\"created\":" OA_CREATED ",\"model\":\"mistral-small-latest\",\"choices\":"

static void mistral_reply(struct sl_buf *b, const struct answer *a)
{
    long c = (long)a->n;

    put(b, "{\"id\":\"5bd3c4f1a8e04b6c9d2e7f3a1b0c9d8e\",\"object\":\"chat.completion\",\"created\":"
           OA_CREATED ",\"model\":\"mistral-small-latest\",\"choices\":[{\"index\":0,\"message\":"
           "{\"role\":\"assistant\",\"tool_calls\":null,\"content\":");
    jstr(b, a->text, a->len);
    putf(b, "},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld,"
         "\"completion_tokens\":%ld}}", PROMPT_TOKENS, PROMPT_TOKENS + c, c);
}

static void mistral_stream(struct stream *s, const struct answer *a)
{
    long c = (long)a->n;

    sse_begin(s, NULL);
    put(&s->bytes, MI_HEAD "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                   "\"finish_reason\":null}]}");
    sse_end(s, "\n");
    for (size_t i = 0; i < a->n; i++) {
        sse_begin(s, NULL);
        put(&s->bytes, MI_HEAD "[{\"index\":0,\"delta\":{\"content\":");
        jpiece(&s->bytes, a, i);
        put(&s->bytes, "},\"finish_reason\":null}]}");
        sse_end(s, "\n");
    }
    sse_begin(s, NULL);
    putf(&s->bytes, MI_HEAD "[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}],"
         "\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld,\"completion_tokens\":%ld}}",
         PROMPT_TOKENS, PROMPT_TOKENS + c, c);
    sse_end(s, "\n");
    sse_begin(s, NULL);
    put(&s->bytes, "[DONE]");
    sse_end(s, "\n");
}

/* ------------------------------------------------------------------ Anthropic */

static void anthropic_reply(struct sl_buf *b, const struct answer *a)
{
    put(b, "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
           "\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"text\",\"text\":");
    jstr(b, a->text, a->len);
    putf(b, "}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":%ld,"
         "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":"
         "{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":%ld,"
         "\"service_tier\":\"standard\"}}", PROMPT_TOKENS, (long)a->n);
}

static void anthropic_stream(struct stream *s, const struct answer *a)
{
    sse_begin(s, "message_start");
    putf(&s->bytes, "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\","
         "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\","
         "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":%ld,"
         "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":"
         "{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,"
         "\"service_tier\":\"standard\"}}}", PROMPT_TOKENS);
    sse_end(s, "\n");
    sse_begin(s, "content_block_start");
    put(&s->bytes, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
    sse_end(s, "\n");
    sse_begin(s, "ping");
    put(&s->bytes, "{\"type\": \"ping\"}");
    sse_end(s, "\n");
    for (size_t i = 0; i < a->n; i++) {
        sse_begin(s, "content_block_delta");
        put(&s->bytes, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":");
        jpiece(&s->bytes, a, i);
        put(&s->bytes, "}}");
        sse_end(s, "\n");
    }
    sse_begin(s, "content_block_stop");
    put(&s->bytes, "{\"type\":\"content_block_stop\",\"index\":0}");
    sse_end(s, "\n");
    sse_begin(s, "message_delta");
    putf(&s->bytes, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
         "\"usage\":{\"input_tokens\":%ld,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
         "\"output_tokens\":%ld}}", PROMPT_TOKENS, (long)a->n);
    sse_end(s, "\n");
    sse_begin(s, "message_stop");
    put(&s->bytes, "{\"type\":\"message_stop\"}");
    sse_end(s, "\n");
}

/* ------------------------------------------------------------------ Gemini and Vertex AI */

/* Google's REST answers are indented JSON; its SSE events are compact, CRLF. */
static void gemini_reply_common(struct sl_buf *b, const struct answer *a, int vertex)
{
    long c = (long)a->n;

    put(b, "{\n  \"candidates\": [\n    {\n      \"content\": {\n        \"role\": \"model\",\n"
           "        \"parts\": [\n          {\n            \"text\": ");
    jstr(b, a->text, a->len);
    put(b, "\n          }\n        ]\n      },\n      \"finishReason\": \"STOP\",\n"
           "      \"avgLogprobs\": -0.21554839012366813\n    }\n  ],\n");
    putf(b, "  \"usageMetadata\": {\n    \"promptTokenCount\": %ld,\n    \"candidatesTokenCount\": %ld,\n"
         "    \"totalTokenCount\": %ld,\n%s    \"promptTokensDetails\": [\n      {\n"
         "        \"modality\": \"TEXT\",\n        \"tokenCount\": %ld\n      }\n    ],\n"
         "    \"candidatesTokensDetails\": [\n      {\n        \"modality\": \"TEXT\",\n"
         "        \"tokenCount\": %ld\n      }\n    ]\n  },\n",
         PROMPT_TOKENS, c, PROMPT_TOKENS + c, vertex ? "    \"trafficType\": \"ON_DEMAND\",\n" : "",
         PROMPT_TOKENS, c);
    if (vertex)
        put(b, "  \"modelVersion\": \"gemini-2.5-flash\",\n  \"createTime\": \"2025-03-10T01:25:52.771042Z\",\n"
               "  \"responseId\": \"YDHOZ8K4L-GdnvgPxKvEwAw\"\n}\n");
    else
        put(b, "  \"modelVersion\": \"gemini-2.5-flash\",\n  \"responseId\": \"YDHOZ8K4L-GdnvgPxKvEwAw\"\n}\n");
}

static void gemini_reply(struct sl_buf *b, const struct answer *a)
{
    gemini_reply_common(b, a, 0);
}

static void vertex_reply(struct sl_buf *b, const struct answer *a)
{
    gemini_reply_common(b, a, 1);
}

static void gemini_stream_common(struct stream *s, const struct answer *a, int vertex)
{
    long c = (long)a->n;

    for (size_t i = 0; i < a->n; i++) {
        int last = i + 1 == a->n;

        sse_begin(s, NULL);
        put(&s->bytes, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": ");
        jpiece(&s->bytes, a, i);
        put(&s->bytes, "}],\"role\": \"model\"}");
        put(&s->bytes, last ? ",\"finishReason\": \"STOP\"" : "");
        put(&s->bytes, ",\"index\": 0}],\"usageMetadata\": {");
        if (last)
            putf(&s->bytes, "\"promptTokenCount\": %ld,\"candidatesTokenCount\": %ld,\"totalTokenCount\": %ld,",
                 PROMPT_TOKENS, c, PROMPT_TOKENS + c);
        else
            putf(&s->bytes, "\"promptTokenCount\": %ld,\"totalTokenCount\": %ld,", PROMPT_TOKENS, PROMPT_TOKENS);
        putf(&s->bytes, "%s\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": %ld}]},"
             "\"modelVersion\": \"gemini-2.5-flash\",%s\"responseId\": \"YDHOZ8K4L-GdnvgPxKvEwAw\"}",
             vertex ? "\"trafficType\": \"ON_DEMAND\"," : "", PROMPT_TOKENS,
             vertex ? "\"createTime\": \"2025-03-10T01:25:52.771042Z\"," : "");
        sse_end(s, "\r\n");
    }
}

static void gemini_stream(struct stream *s, const struct answer *a)
{
    gemini_stream_common(s, a, 0);
}

static void vertex_stream(struct stream *s, const struct answer *a)
{
    gemini_stream_common(s, a, 1);
}

/* ------------------------------------------------------------------ Bedrock (Converse, AWS event-stream) */

static void bedrock_reply(struct sl_buf *b, const struct answer *a)
{
    long c = (long)a->n;

    put(b, "{\"metrics\":{\"latencyMs\":4211},\"output\":{\"message\":{\"content\":[{\"text\":");
    jstr(b, a->text, a->len);
    putf(b, "}],\"role\":\"assistant\"}},\"stopReason\":\"end_turn\",\"usage\":{\"cacheReadInputTokenCount\":0,"
         "\"cacheReadInputTokens\":0,\"cacheWriteInputTokenCount\":0,\"cacheWriteInputTokens\":0,"
         "\"inputTokens\":%ld,\"outputTokens\":%ld,\"totalTokens\":%ld}}", PROMPT_TOKENS, c, PROMPT_TOKENS + c);
}

static void es_put32(unsigned char *p, unsigned long v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void es_header(struct sl_buf *h, const char *name, const char *value)
{
    unsigned char n = (unsigned char)strlen(name);
    unsigned char pre[3] = { 7, (unsigned char)(strlen(value) >> 8), (unsigned char)strlen(value) };

    if (sl_buf_append(h, &n, 1) != SL_OK || sl_buf_append(h, name, n) != SL_OK ||
        sl_buf_append(h, pre, 3) != SL_OK || sl_buf_append(h, value, strlen(value)) != SL_OK)
        die("fixture buffer full");
}

/* One binary event-stream message: prelude (lengths + CRC), headers,
 * payload, message CRC. */
static void es_message(struct stream *s, const char *type, const struct sl_buf *payload)
{
    struct sl_buf h;
    unsigned char pre[12], crc[4];
    size_t start = s->bytes.len, total;

    sl_buf_init(&h, 1u << 16);
    es_header(&h, ":event-type", type);
    es_header(&h, ":content-type", "application/json");
    es_header(&h, ":message-type", "event");
    total = 16 + h.len + payload->len;
    es_put32(pre, total);
    es_put32(pre + 4, h.len);
    es_put32(pre + 8, crc32(0L, pre, 8));
    if (sl_buf_append(&s->bytes, pre, 12) != SL_OK || sl_buf_append(&s->bytes, h.data, h.len) != SL_OK ||
        sl_buf_append(&s->bytes, payload->data, payload->len) != SL_OK)
        die("fixture buffer full");
    es_put32(crc, crc32(0L, (const unsigned char *)s->bytes.data + start, (uInt)(s->bytes.len - start)));
    if (sl_buf_append(&s->bytes, crc, 4) != SL_OK)
        die("fixture buffer full");
    sl_buf_free(&h);
    end_event(s);
}

/* Bedrock pads each payload with a "p" of varying length (against
 * length side channels). */
static const char PAD[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

static void bedrock_stream(struct stream *s, const struct answer *a)
{
    struct sl_buf p;
    long c = (long)a->n;

    sl_buf_init(&p, 1u << 20);
    putf(&p, "{\"p\":\"%.20s\",\"role\":\"assistant\"}", PAD);
    es_message(s, "messageStart", &p);
    for (size_t i = 0; i < a->n; i++) {
        sl_buf_reset(&p);
        put(&p, "{\"contentBlockIndex\":0,\"delta\":{\"text\":");
        jpiece(&p, a, i);
        putf(&p, "},\"p\":\"%.*s\"}", (int)(8 + (i * 7) % 40), PAD);
        es_message(s, "contentBlockDelta", &p);
    }
    sl_buf_reset(&p);
    putf(&p, "{\"contentBlockIndex\":0,\"p\":\"%.30s\"}", PAD);
    es_message(s, "contentBlockStop", &p);
    sl_buf_reset(&p);
    putf(&p, "{\"p\":\"%.12s\",\"stopReason\":\"end_turn\"}", PAD);
    es_message(s, "messageStop", &p);
    sl_buf_reset(&p);
    putf(&p, "{\"metrics\":{\"latencyMs\":4211},\"p\":\"%.25s\",\"usage\":{\"cacheReadInputTokenCount\":0,"
         "\"cacheReadInputTokens\":0,\"cacheWriteInputTokenCount\":0,\"cacheWriteInputTokens\":0,"
         "\"inputTokens\":%ld,\"outputTokens\":%ld,\"totalTokens\":%ld}}", PAD, PROMPT_TOKENS, c, PROMPT_TOKENS + c);
    es_message(s, "metadata", &p);
    sl_buf_free(&p);
}

/* ------------------------------------------------------------------ Cohere v2 */

static void cohere_reply(struct sl_buf *b, const struct answer *a)
{
    long c = (long)a->n;

    put(b, "{\"id\":\"5a50480a-cf52-46f0-af01-53d18539bd31\",\"message\":{\"role\":\"assistant\","
           "\"content\":[{\"type\":\"text\",\"text\":");
    jstr(b, a->text, a->len);
    putf(b, "}]},\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{\"input_tokens\":%ld,"
         "\"output_tokens\":%ld},\"tokens\":{\"input_tokens\":%ld,\"output_tokens\":%ld}}}",
         PROMPT_TOKENS - 165, c, PROMPT_TOKENS, c);
}

static void cohere_stream(struct stream *s, const struct answer *a)
{
    long c = (long)a->n;

    sse_begin(s, "message-start");
    put(&s->bytes, "{\"id\":\"5a50480a-cf52-46f0-af01-53d18539bd31\",\"type\":\"message-start\",\"delta\":"
                   "{\"message\":{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],"
                   "\"citations\":[]}}}");
    sse_end(s, "\n");
    sse_begin(s, "content-start");
    put(&s->bytes, "{\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":"
                   "{\"type\":\"text\",\"text\":\"\"}}}}");
    sse_end(s, "\n");
    for (size_t i = 0; i < a->n; i++) {
        sse_begin(s, "content-delta");
        put(&s->bytes, "{\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":");
        jpiece(&s->bytes, a, i);
        put(&s->bytes, "}}}}");
        sse_end(s, "\n");
    }
    sse_begin(s, "content-end");
    put(&s->bytes, "{\"type\":\"content-end\",\"index\":0}");
    sse_end(s, "\n");
    sse_begin(s, "message-end");
    putf(&s->bytes, "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":"
         "{\"billed_units\":{\"input_tokens\":%ld,\"output_tokens\":%ld},\"tokens\":{\"input_tokens\":%ld,"
         "\"output_tokens\":%ld}}}}", PROMPT_TOKENS - 165, c, PROMPT_TOKENS, c);
    sse_end(s, "\n");
}

/* ------------------------------------------------------------------ Ollama (NDJSON) */

#define OL_HEAD "{\"model\":\"llama3.1\",\"created_at\":\"2025-03-10T01:25:52.771042Z\","

static void ollama_reply(struct sl_buf *b, const struct answer *a)
{
    put(b, OL_HEAD "\"message\":{\"role\":\"assistant\",\"content\":");
    jstr(b, a->text, a->len);
    putf(b, "},\"done_reason\":\"stop\",\"done\":true,\"total_duration\":5191566416,"
         "\"load_duration\":2154458,\"prompt_eval_count\":%ld,\"prompt_eval_duration\":383809000,"
         "\"eval_count\":%ld,\"eval_duration\":4799921000}", PROMPT_TOKENS, (long)a->n);
}

static void ollama_stream(struct stream *s, const struct answer *a)
{
    for (size_t i = 0; i < a->n; i++) {
        put(&s->bytes, OL_HEAD "\"message\":{\"role\":\"assistant\",\"content\":");
        jpiece(&s->bytes, a, i);
        put(&s->bytes, "},\"done\":false}\n");
        end_event(s);
    }
    putf(&s->bytes, OL_HEAD "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\","
         "\"done\":true,\"total_duration\":5191566416,\"load_duration\":2154458,\"prompt_eval_count\":%ld,"
         "\"prompt_eval_duration\":383809000,\"eval_count\":%ld,\"eval_duration\":4799921000}\n",
         PROMPT_TOKENS, (long)a->n);
    end_event(s);
}

/* ------------------------------------------------------------------ the adapters */

struct adapter {
    const char *label;         /* row name, and the name on the command line */
    const char *model;         /* litellm_params.model */
    const char *params;        /* the rest of litellm_params, JSON text */
    void (*reply)(struct sl_buf *, const struct answer *);
    void (*stream)(struct stream *, const struct answer *);
};

static const struct adapter adapters[] = {
    { "openai", "openai/gpt-4o-mini", "{\"api_key\":\"sk-bench-0123456789abcdef\"}",
      openai_reply, openai_stream },
    { "azure", "azure/gpt-4o-prod",
      "{\"api_key\":\"0123456789abcdef0123456789abcdef\",\"api_base\":\"https://bench-westeurope.openai.azure.com\","
      "\"api_version\":\"2024-10-21\"}",
      azure_reply, azure_stream },
    { "mistral", "mistral/mistral-small-latest", "{\"api_key\":\"mk-bench-0123456789\"}",
      mistral_reply, mistral_stream },
    { "anthropic", "anthropic/claude-sonnet-4-5", "{\"api_key\":\"sk-ant-bench-0123456789\"}",
      anthropic_reply, anthropic_stream },
    { "gemini", "gemini/gemini-2.5-flash", "{\"api_key\":\"AIza-bench-0123456789\"}",
      gemini_reply, gemini_stream },
    { "vertex_ai", "vertex_ai/gemini-2.5-flash",
      "{\"vertex_project\":\"bench-project\",\"vertex_location\":\"europe-west4\","
      "\"vertex_access_token\":\"ya29.bench-static-token-0123456789\"}",
      vertex_reply, vertex_stream },
    { "bedrock", "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
      "{\"aws_access_key_id\":\"AKIDEXAMPLE\",\"aws_secret_access_key\":"
      "\"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\",\"aws_region_name\":\"eu-central-1\"}",
      bedrock_reply, bedrock_stream },
    { "cohere", "cohere_chat/command-a-03-2025", "{\"api_key\":\"co-bench-0123456789\"}",
      cohere_reply, cohere_stream },
    { "ollama", "ollama_chat/llama3.1", "{\"api_base\":\"http://127.0.0.1:11434\"}",
      ollama_reply, ollama_stream },
};
#define N_ADAPTERS (sizeof(adapters) / sizeof(adapters[0]))

/* ------------------------------------------------------------------ one adapter's bench state */

/* TRANSLATE_SURFACE=responses: the client speaks the Responses API (the
 * same conversation as input items), so every figure includes responses.c:
 * the request turned into chat before build_request, the answer rebuilt as
 * a Response and its events. */
static int surface_responses;

/* The chat fixture as a Responses request: the system message becomes
 * instructions, the others input messages, max_tokens max_output_tokens. */
static json_t *responses_body(const json_t *chat)
{
    json_t *r = json_object(), *input = json_array(), *m;
    size_t i;

    json_array_foreach(json_object_get(chat, "messages"), i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));

        if (i == 0 && role != NULL && strcmp(role, "system") == 0)
            json_object_set(r, "instructions", json_object_get(m, "content"));
        else
            json_array_append_new(input, json_pack("{s:O, s:O}", "role", json_object_get(m, "role"),
                                                   "content", json_object_get(m, "content")));
    }
    json_object_set_new(r, "input", input);
    if (json_object_get(chat, "max_tokens") != NULL)
        json_object_set(r, "max_output_tokens", json_object_get(chat, "max_tokens"));
    json_object_set(r, "temperature", json_object_get(chat, "temperature"));
    json_object_set(r, "top_p", json_object_get(chat, "top_p"));
    return r;
}

struct bench {
    const struct adapter *ad;
    struct sl_arena *arena;
    struct sl_deployment dep;
    json_t *params;              /* owned: litellm_params */
    json_t *in[2];               /* owned: the client request, [1] with stream: true */
    char *body[2];               /* owned: its text as the client sent it */
    size_t body_len[2];
    struct sl_buf reply;         /* the native whole answer */
    struct stream *stream;       /* the native stream */
    struct memconn mc;           /* the client connection (output discarded per request) */
    int cg;                      /* running under callgrind */
    int collecting;
};

/* Callgrind collects only inside the measured segments. */
static void collect(struct bench *b, int on)
{
    if (b->cg && on != b->collecting) {
        CALLGRIND_TOGGLE_COLLECT;
        b->collecting = on;
    }
}

/* A request as request.c leaves it for the proxy: parsed body, model,
 * stream flags, the deployment; the rest zero. */
static void fresh_request(struct bench *b, struct sl_request *req, int stream)
{
    memset(req, 0, sizeof(*req));
    req->arena = b->arena;
    req->conn.ops = &memconn_ops;
    req->conn.ctx = &b->mc;
    req->stage = "build";
    strcpy(req->id, "bench-0123456789abcdef");
    req->method = "POST";
    req->uri = req->path = "/v1/chat/completions";
    req->content_type = "application/json";
    req->body = b->body[stream];
    req->body_len = b->body_len[stream];
    req->in = b->in[stream];
    req->endpoint = SL_EP_CHAT;
    req->model = b->dep.model_name;
    req->stream = stream;
    req->include_usage = stream;
    req->dep = &b->dep;
    if (surface_responses) {
        req->uri = req->path = "/v1/responses";
        req->endpoint = SL_EP_RESPONSES;
        req->surface = SL_SURFACE_RESPONSES;
        req->include_usage = 0;
    }
}

static void bench_init(struct bench *b, const struct adapter *ad, const char *client_text,
                       const struct answer *ans)
{
    const char *slash = strchr(ad->model, '/');
    json_error_t jerr;
    char *name;

    memset(b, 0, sizeof(*b));
    b->ad = ad;
    b->cg = RUNNING_ON_VALGRIND ? 1 : 0;
    if ((b->arena = sl_arena_create(BENCH_ARENA_CAP)) == NULL)
        die("out of memory");
    if ((b->params = json_loads(ad->params, 0, &jerr)) == NULL)
        die("%s: params: %s", ad->label, jerr.text);
    json_object_set_new(b->params, "model", json_string(ad->model));
    name = strndup(ad->model, (size_t)(slash - ad->model));
    b->dep.provider = sl_provider_find(name);
    if (b->dep.provider == NULL)
        die("%s: no provider %s in the registry", ad->label, name);
    free(name);
    b->dep.model_name = "bench-model";
    b->dep.model = ad->model;
    b->dep.upstream_model = slash + 1;
    b->dep.api_base = json_string_value(json_object_get(b->params, "api_base"));
    b->dep.api_key = json_string_value(json_object_get(b->params, "api_key"));
    b->dep.api_version = json_string_value(json_object_get(b->params, "api_version"));
    b->dep.id = "bench-deployment";
    b->dep.mode = "chat";
    b->dep.timeout_ms = b->dep.stream_timeout_ms = 600000;
    b->dep.litellm_params = b->params;
    b->dep.model_info = NULL;

    /* The client's text: compact, as the JS SDK sends it (json.dumps-style
     * spacing would add a few percent of whitespace, nothing else). */
    for (int s = 0; s < 2; s++) {
        const char *why;
        json_t *v = json_loads(client_text, 0, &jerr);

        if (v == NULL)
            die("request fixture: %s", jerr.text);
        if (surface_responses) {
            json_t *r = responses_body(v);

            json_decref(v);
            v = r;
            if (s)
                json_object_set_new(v, "stream", json_true());
        } else if (s) {
            json_object_set_new(v, "stream", json_true());
            json_object_set_new(v, "stream_options", json_pack("{s:b}", "include_usage", 1));
        }
        json_object_set_new(v, "model", json_string(b->dep.model_name));
        b->body[s] = json_dumps(v, JSON_COMPACT);
        json_decref(v);
        b->body_len[s] = strlen(b->body[s]);
        /* parsed the way request.c parses it */
        if ((b->in[s] = sl_json_parse(b->body[s], b->body_len[s], &why)) == NULL)
            die("request fixture: %s", why);
    }
    sl_buf_init(&b->reply, SL_MAX_UPSTREAM_BODY);
    ad->reply(&b->reply, ans);
    if ((b->stream = calloc(1, sizeof(*b->stream))) == NULL)
        die("out of memory");
    sl_buf_init(&b->stream->bytes, SL_MAX_UPSTREAM_BODY);
    ad->stream(b->stream, ans);
    static const char *const no_params[] = { NULL };
    b->mc.params = no_params;
    sl_buf_init(&b->mc.out, 64u << 20);
}

static void bench_free(struct bench *b)
{
    sl_arena_free(b->arena);
    json_decref(b->params);
    for (int s = 0; s < 2; s++) {
        json_decref(b->in[s]);
        free(b->body[s]);
    }
    sl_buf_free(&b->reply);
    sl_buf_free(&b->stream->bytes);
    free(b->stream);
    sl_buf_free(&b->mc.out);
}

/* ------------------------------------------------------------------ the measured operations */

enum path { ADAPTER, SERVER };
enum { SEG_BUILD = 1, SEG_REPLY = 2 };

struct times {
    double build;    /* ns: fresh request + build_request, and the arena reset at the end */
    double reply;    /* ns: parse_response or whole_reply / the whole stream */
    int rc;          /* first failure, SL_OK if none */
    char why[200];   /* req->err_msg or upstream_err of the first failure */
};

/* The adapter alone: framer -> parse_stream_event, chunks dropped. */
struct adapter_ctx {
    struct sl_request *req;
    int done, rc;
    size_t chunks;
    struct sl_buf *text;         /* the content deltas, when checking */
};

static void collect_text(struct sl_buf *text, const json_t *chunk)
{
    const json_t *c = json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "delta");
    const char *s = json_string_value(json_object_get(c, "content"));

    if (s != NULL)
        sl_buf_append(text, s, strlen(s));
}

static int adapter_event(void *ctx, const struct sl_sse_event *ev)
{
    struct adapter_ctx *a = ctx;
    json_t *out = NULL;
    int done = 0, rc;

    rc = a->req->dep->provider->parse_stream_event(a->req, ev, &out, &done);
    if (out != NULL) {
        size_t n = json_is_array(out) ? json_array_size(out) : 1;

        a->chunks += n;
        if (a->text != NULL) {
            for (size_t i = 0; i < n; i++)
                collect_text(a->text, json_is_array(out) ? json_array_get(out, i) : out);
        }
    }
    json_decref(out);
    if (done)
        a->done = 1;
    if (rc != SL_OK && a->rc == SL_OK)
        a->rc = rc;
    return rc;
}

/* The server: framer -> proxy.c on_event (splice or parse + dump, SSE write)
 * -> on_flush per read, end_stream at the end, as upstream.c and
 * sl_proxy_call drive them. */
struct server_ctx {
    struct sl_request *req;
    struct stream_state st;
};

static int server_event(void *ctx, const struct sl_sse_event *ev)
{
    struct server_ctx *s = ctx;

    return on_event(s->req, ev, &s->st);
}


/* Feeds the native stream one event per read, as a token-by-token upstream
 * delivers it; the server path also flushes after each read and ends the
 * stream as sl_proxy_call does. *chunks gets the adapter's chunk count. */
static int feed_stream(struct bench *b, struct sl_request *req, enum sl_framing framing,
                       enum path path, struct sl_buf *text, size_t *chunks)
{
    const struct stream *s = b->stream;
    struct sl_framer f;
    struct adapter_ctx ac = { .req = req, .text = text };
    struct server_ctx sc = { .req = req };
    sl_event_fn fn = path == ADAPTER ? adapter_event : server_event;
    void *ctx = path == ADAPTER ? (void *)&ac : (void *)&sc;
    size_t from = 0;
    int rc = SL_OK;

    sl_framer_init(&f, framing);
    for (size_t i = 0; i < s->n && rc == SL_OK; i++) {
        rc = sl_framer_feed(&f, s->bytes.data + from, s->ends[i] - from, fn, ctx);
        from = s->ends[i];
        if (rc == SL_OK && path == SERVER)
            rc = on_flush(req, &sc.st);
    }
    if (rc == SL_OK)
        rc = sl_framer_finish(&f, fn, ctx);
    sl_framer_free(&f);
    if (rc == SL_OK && path == SERVER && (rc = end_stream(req, &sc.st)) == SL_OK)
        rc = req->error;
    if (chunks != NULL)
        *chunks = ac.chunks;
    return rc;
}

/* What one iteration leaves for the checks (only when asked). */
struct check {
    json_t *reply;               /* owned: parse_response's result */
    struct sl_buf text;          /* streamed content deltas, joined */
    size_t chunks;               /* chunks the adapter emitted */
    size_t up_body_len;          /* the upstream request body built */
    const char *url;
    long n_events;               /* SSE events written to the client */
};

/* One request, as the server runs it: fresh request, build_request, then the
 * answer (whole or streamed, through the adapter alone or the server's
 * path), then the arena reset that ends every request. */
static void one(struct bench *b, int stream, enum path path, unsigned segs, struct times *t,
                struct check *ck)
{
    const struct sl_provider *p = b->dep.provider;
    struct sl_request req;
    struct sl_upstream_req up;
    long long t0, t1, t2, t3;
    int rc;

    sl_buf_reset(&b->mc.out);
    collect(b, (segs & SEG_BUILD) != 0);
    t0 = now_ns();
    fresh_request(b, &req, stream);
    memset(&up, 0, sizeof(up));
    rc = SL_OK;
    if (surface_responses && (rc = sl_responses_validate(&req)) == SL_OK)
        rc = sl_responses_prepare(&req);       /* the chat form, as request.c makes it */
    if (rc == SL_OK)
        rc = p->build_request(&req, req.in, &up);
    t1 = now_ns();
    collect(b, (segs & SEG_REPLY) != 0);
    if (rc != SL_OK) {
        /* counted as a failure below */
    } else if (stream) {
        rc = feed_stream(b, &req, up.framing, path, ck ? &ck->text : NULL, ck ? &ck->chunks : NULL);
    } else if (path == ADAPTER) {
        json_t *out = NULL;

        rc = p->parse_response(&req, b->reply.data, b->reply.len, &out);
        if (ck != NULL)
            ck->reply = out;
        else
            json_decref(out);
    } else {
        struct sl_upstream_res res = { .status = 200 };

        res.body = b->reply;                 /* borrowed: whole_reply only reads it */
        if ((rc = whole_reply(&req, &res)) == SL_OK)
            rc = req.error;
    }
    t2 = now_ns();
    if (rc != SL_OK && t->rc == SL_OK) {
        t->rc = rc;
        snprintf(t->why, sizeof(t->why), "%s", req.err_msg ? req.err_msg
                 : req.upstream_err.message ? req.upstream_err.message : "");
    }
    if (ck != NULL) {
        ck->up_body_len = up.body_len;
        ck->url = up.url ? strdup(up.url) : NULL;
        ck->n_events = req.n_events;
    }
    collect(b, (segs & SEG_BUILD) != 0);
    sl_arena_reset(b->arena);
    t3 = now_ns();
    collect(b, 0);
    t->build += (double)((t1 - t0) + (t3 - t2));
    t->reply += (double)(t2 - t1);
}

/* ------------------------------------------------------------------ checks */

static int warned;

static void warn_check(const struct bench *b, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn_check(const struct bench *b, const char *what, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "translate: %s %s: ", b->ad->label, what);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    warned = 1;
}

static int count(const char *hay, size_t n, const char *needle)
{
    int c = 0;
    size_t k = strlen(needle);

    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            c++;
    return c;
}

struct sizes {
    size_t up_body, reply, stream, out_reply, out_stream;
    size_t events, chunks;
    long client_events;
};

/* Runs each path once and checks that the adapter really translated what it
 * was given: the whole answer's text and usage, every streamed delta, a
 * complete client stream. Returns 0 if a path failed outright. */
static int check_adapter(struct bench *b, const struct answer *ans, struct sizes *sz)
{
    struct times t = { 0 };
    struct check ck;
    const json_t *msg, *usage;
    int ok = 1;

    memset(&ck, 0, sizeof(ck));
    sl_buf_init(&ck.text, 1u << 20);
    one(b, 0, ADAPTER, 0, &t, &ck);
    if (t.rc != SL_OK) {
        warn_check(b, "request", "failed with %s: %s", sl_status_name(t.rc), t.why);
        ok = 0;
    } else {
        msg = json_object_get(json_array_get(json_object_get(ck.reply, "choices"), 0), "message");
        usage = json_object_get(ck.reply, "usage");
        if (!json_is_string(json_object_get(msg, "content")) ||
            strcmp(json_string_value(json_object_get(msg, "content")), ans->text) != 0)
            warn_check(b, "parse_response", "the content is not the answer's text");
        if (json_integer_value(json_object_get(usage, "prompt_tokens")) != PROMPT_TOKENS ||
            json_integer_value(json_object_get(usage, "completion_tokens")) != (json_int_t)ans->n)
            warn_check(b, "parse_response", "usage is not the native reply's");
    }
    json_decref(ck.reply);
    sz->up_body = ck.up_body_len;
    sz->reply = b->reply.len;
    free((void *)ck.url);

    memset(&t, 0, sizeof(t));
    one(b, 0, SERVER, 0, &t, NULL);
    if (t.rc != SL_OK) {
        warn_check(b, "reply (server path)", "failed with %s: %s", sl_status_name(t.rc), t.why);
        ok = 0;
    } else if (b->mc.out.len < 12 || memcmp(b->mc.out.data, "Status: 200", 11) != 0 ||
               count(b->mc.out.data, b->mc.out.len, "\"bench-model\"") != 1) {
        warn_check(b, "reply (server path)", "not a 200 carrying the client's model name");
    }
    sz->out_reply = b->mc.out.len;

    memset(&t, 0, sizeof(t));
    sl_buf_reset(&ck.text);
    one(b, 1, ADAPTER, 0, &t, &ck);
    if (t.rc != SL_OK) {
        warn_check(b, "stream (adapter)", "failed with %s: %s", sl_status_name(t.rc), t.why);
        ok = 0;
    } else if (ck.text.len != ans->len || memcmp(ck.text.data, ans->text, ans->len) != 0) {
        warn_check(b, "stream (adapter)", "the joined deltas are not the answer's text (%zu of %zu bytes)",
                   ck.text.len, ans->len);
    }
    free((void *)ck.url);
    sz->stream = b->stream->bytes.len;
    sz->events = b->stream->n;
    sz->chunks = ck.chunks;

    memset(&t, 0, sizeof(t));
    ck.url = NULL;
    one(b, 1, SERVER, 0, &t, &ck);
    free((void *)ck.url);
    if (t.rc != SL_OK) {
        warn_check(b, "stream (server path)", "failed with %s: %s", sl_status_name(t.rc), t.why);
        ok = 0;
    } else if (surface_responses
               ? count(b->mc.out.data, b->mc.out.len, "event: response.completed\n") != 1 ||
                 count(b->mc.out.data, b->mc.out.len, "\"output_tokens\":0") != 0 ||
                 count(b->mc.out.data, b->mc.out.len, "event: error") != 0
               : b->mc.out.len < 14 || memcmp(b->mc.out.data + b->mc.out.len - 14, "data: [DONE]\n\n", 14) != 0 ||
                 count(b->mc.out.data, b->mc.out.len, "\"usage\"") < 1 ||
                 count(b->mc.out.data, b->mc.out.len, "data: {\"error\"") != 0) {
        warn_check(b, "stream (server path)", "the client stream lacks usage or its end, or has an error");
    }
    sz->out_stream = b->mc.out.len;
    sz->client_events = ck.n_events;
    sl_buf_free(&ck.text);
    sl_buf_reset(&b->mc.out);
    return ok;
}

/* ------------------------------------------------------------------ measuring */

struct knobs {
    long run_ms, runs, warm_ms, cg_requests, cg_streams;
};

struct figure {
    double build, reply;         /* ns per iteration, best run */
    long n;                      /* iterations per run */
    double cpu_share;            /* the lowest CPU time / wall time of a run, in % */
    int rc;
};

static long long cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void measure(struct bench *b, const struct knobs *k, int stream, enum path path, struct figure *f)
{
    struct times t = { 0 };
    long long start = now_ns(), stop = start + k->warm_ms * 1000000LL;
    long warm = 0, n;

    do {
        one(b, stream, path, 0, &t, NULL);
        warm++;
    } while (t.rc == SL_OK && (warm < 3 || now_ns() < stop));
    f->rc = t.rc;
    f->build = f->reply = -1;
    if (t.rc != SL_OK)
        return;
    n = (long)((double)k->run_ms * 1e6 / ((double)(now_ns() - start) / (double)warm));
    f->n = n = n < 3 ? 3 : n;
    f->cpu_share = 100;
    for (long r = 0; r < k->runs; r++) {
        long long w0 = now_ns(), c0 = cpu_ns(), w, c;

        memset(&t, 0, sizeof(t));
        for (long i = 0; i < n; i++)
            one(b, stream, path, 0, &t, NULL);
        c = cpu_ns() - c0;
        w = now_ns() - w0;
        if (w > 0 && 100.0 * (double)c / (double)w < f->cpu_share)
            f->cpu_share = 100.0 * (double)c / (double)w;
        if (f->build < 0 || t.build / (double)n < f->build)
            f->build = t.build / (double)n;
        if (f->reply < 0 || t.reply / (double)n < f->reply)
            f->reply = t.reply / (double)n;
        if (t.rc != SL_OK)
            f->rc = t.rc;
    }
}

/* Under callgrind: iters iterations collecting only segs, then one dump
 * named after the figure, with the units to divide by. */
static void measure_cg(struct bench *b, int stream, enum path path, unsigned segs, long iters,
                       long units, const char *figure)
{
    struct times t = { 0 };
    char label[200];

    for (int i = 0; i < 2; i++)
        one(b, stream, path, 0, &t, NULL);
    for (long i = 0; i < iters; i++)
        one(b, stream, path, segs, &t, NULL);
    snprintf(label, sizeof(label), "translate adapter=%s figure=%s units=%ld rc=%d",
             b->ad->label, figure, units, t.rc);
    CALLGRIND_DUMP_STATS_AT(label);
}

/* The cost of the client JSON parse that precedes every adapter (request.c),
 * for reference, and of one clock read. */
static void reference(const struct bench *b, const struct knobs *k, double *parse_ns, double *clock_ns)
{
    long n = 2000;
    double best = -1;

    for (long r = 0; r < k->runs; r++) {
        long long t0 = now_ns();

        for (long i = 0; i < n; i++) {
            const char *why;
            json_t *v = sl_json_parse(b->body[0], b->body_len[0], &why);

            json_decref(v);
        }
        double per = (double)(now_ns() - t0) / (double)n;
        if (best < 0 || per < best)
            best = per;
    }
    *parse_ns = best;
    best = -1;
    for (long r = 0; r < k->runs; r++) {
        long long t0 = now_ns(), x = 0;

        for (long i = 0; i < 100000; i++)
            x += now_ns();
        double per = (double)(now_ns() - t0) / 100000.0;
        if ((best < 0 || per < best) && x != 0)
            best = per;
    }
    *clock_ns = best;
}

/* ------------------------------------------------------------------ main */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *p;
    long n;

    if (f == NULL)
        die("%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if ((p = malloc((size_t)n + 1)) == NULL || fread(p, 1, (size_t)n, f) != (size_t)n)
        die("%s: cannot read", path);
    p[n] = '\0';
    fclose(f);
    return p;
}

static int wanted(const char *label, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], label) == 0)
            return 1;
    return 0;
}

static const char *us(char *buf, size_t n, double ns, int paren)
{
    if (ns < 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, paren ? "(%.2f)" : "%.2f", ns / 1000.0);
    return buf;
}

#define TARGET_REQUEST_US 20.0
#define TARGET_EVENT_US 2.0

int main(int argc, char **argv)
{
    const char *fixture = getenv("TRANSLATE_REQUEST") ? getenv("TRANSLATE_REQUEST")
                                                      : "bench/fixtures/chat-request.json";
    struct knobs k = {
        .run_ms = env_long("TRANSLATE_RUN_MS", 100, 1),
        .runs = env_long("TRANSLATE_RUNS", 5, 1),
        .warm_ms = env_long("TRANSLATE_WARMUP_MS", 30, 0),
        .cg_requests = env_long("TRANSLATE_CG_REQUESTS", 50, 1),
        .cg_streams = env_long("TRANSLATE_CG_STREAMS", 5, 1),
    };
    long events = env_long("TRANSLATE_EVENTS", 200, 1);
    const char *surface = getenv("TRANSLATE_SURFACE");
    int cg = RUNNING_ON_VALGRIND ? 1 : 0, printed_head = 0, misses = 0;
    char passed[256] = "";         /* adapters that pass the Responses API through */
    char *client = slurp(fixture);
    struct answer ans;

    for (int i = 1; i < argc; i++) {
        int known = 0;

        for (size_t a = 0; a < N_ADAPTERS; a++)
            known |= strcmp(argv[i], adapters[a].label) == 0;
        if (!known)
            die("unknown adapter %s", argv[i]);
    }
    if (events > MAX_EVENTS - 10)
        die("TRANSLATE_EVENTS is at most %d", MAX_EVENTS - 10);
    if (surface != NULL && *surface != '\0' && strcmp(surface, "chat") != 0) {
        if (strcmp(surface, "responses") != 0)
            die("TRANSLATE_SURFACE is chat or responses");
        surface_responses = 1;
    }
    answer_init(&ans, (size_t)events);
    if (cg) {
        CALLGRIND_ZERO_STATS;
    }
    for (size_t a = 0; a < N_ADAPTERS; a++) {
        struct bench b;
        struct sizes sz;
        struct figure req_ad, req_srv, st_ad, st_srv;
        int wire, ok;
        char c1[32], c2[32], c3[32], c4[32], c5[32], c6[32];
        double total, ev_srv, ev_ad;

        if (!wanted(adapters[a].label, argc, argv))
            continue;
        if (surface_responses && strchr(adapters[a].model, '/') != NULL) {
            char prov[32];
            const struct sl_provider *pv;

            snprintf(prov, sizeof(prov), "%.*s", (int)(strchr(adapters[a].model, '/') - adapters[a].model),
                     adapters[a].model);
            if ((pv = sl_provider_find(prov)) != NULL && (pv->endpoints & SL_EP_BIT(SL_EP_RESPONSES))) {
                size_t used = strlen(passed);

                snprintf(passed + used, sizeof(passed) - used, " %s", adapters[a].label);
                continue;
            }
        }
        bench_init(&b, &adapters[a], client, &ans);
        memset(&sz, 0, sizeof(sz));
        ok = check_adapter(&b, &ans, &sz);
        wire = (b.dep.provider->flags & SL_PROVIDER_OPENAI_WIRE) != 0;
        if (!printed_head) {
            double parse_ns, clock_ns;

            printf("Translation cost per adapter (bench/translate.c, real adapter code, one core)%s\n",
                   surface_responses ? ", the client speaking the Responses API (TRANSLATE_SURFACE=responses)" : "");
            printf("  client request: %zu bytes of JSON (%s), answer: %zu bytes in %zu stream deltas\n",
                   b.body_len[0], fixture, ans.len, ans.n);
            if (!cg) {
                reference(&b, &k, &parse_ns, &clock_ns);
                printf("  best of %ld runs of ~%ld ms each, after %ld ms of warm-up; µs per request or per event\n",
                       k.runs, k.run_ms, k.warm_ms);
                printf("  for reference: request.c's parse of that client JSON (before any adapter, not counted"
                       " below): %.2f µs; one clock read: %.0f ns\n", parse_ns / 1000.0, clock_ns);
                printf("\n");
            }
            if (!cg) {
                printf("%-10s %8s %10s %10s %10s %8s   %6s %9s %9s %7s %6s\n", "", "build", "parse",
                       "reply", "build+", "target", "events", "parse", "server", "target", "cpu");
                printf("%-10s %8s %10s %10s %10s %8s   %6s %9s %9s %7s %6s\n", "adapter", "request",
                       "response", "(server)", "reply", "<=20", "", "per ev", "per ev", "<=2", "share");
            }
            printed_head = 1;
        }
        if (!ok) {
            if (!cg)
                printf("%-10s failed: see the messages above\n", adapters[a].label);
            bench_free(&b);
            continue;
        }
        if (cg) {
            measure_cg(&b, 0, ADAPTER, SEG_BUILD, k.cg_requests, k.cg_requests, "build");
            measure_cg(&b, 0, ADAPTER, SEG_REPLY, k.cg_requests, k.cg_requests, "parse");
            measure_cg(&b, 0, SERVER, SEG_REPLY, k.cg_requests, k.cg_requests, "reply");
            measure_cg(&b, 1, ADAPTER, SEG_REPLY, k.cg_streams, k.cg_streams * (long)sz.events, "ev_parse");
            measure_cg(&b, 1, SERVER, SEG_REPLY, k.cg_streams, k.cg_streams * (long)sz.events, "ev_server");
            printf("cg adapter=%s wire=%d events=%zu up_body=%zu reply=%zu stream=%zu out_reply=%zu "
                   "out_stream=%zu client_events=%ld\n", adapters[a].label, wire, sz.events, sz.up_body,
                   sz.reply, sz.stream, sz.out_reply, sz.out_stream, sz.client_events);
            bench_free(&b);
            continue;
        }
        measure(&b, &k, 0, ADAPTER, &req_ad);
        measure(&b, &k, 0, SERVER, &req_srv);
        measure(&b, &k, 1, ADAPTER, &st_ad);
        measure(&b, &k, 1, SERVER, &st_srv);
        if (req_srv.build >= 0 && (req_ad.build < 0 || req_srv.build < req_ad.build))
            req_ad.build = req_srv.build;      /* the same build_request, measured twice */
        total = req_ad.build >= 0 && req_srv.reply >= 0 ? req_ad.build + req_srv.reply : -1;
        ev_ad = st_ad.reply >= 0 ? st_ad.reply / (double)sz.events : -1;
        ev_srv = st_srv.reply >= 0 ? st_srv.reply / (double)sz.events : -1;
        misses += total < 0 || total / 1000.0 > TARGET_REQUEST_US;
        misses += ev_srv < 0 || ev_srv / 1000.0 > TARGET_EVENT_US;
        double share = req_ad.cpu_share;

        share = req_srv.cpu_share < share ? req_srv.cpu_share : share;
        share = st_ad.cpu_share < share ? st_ad.cpu_share : share;
        share = st_srv.cpu_share < share ? st_srv.cpu_share : share;
        printf("%-10s %8s %10s %10s %10s %8s   %6zu %9s %9s %7s %5.0f%%\n", adapters[a].label,
               us(c1, sizeof(c1), req_ad.build, 0), us(c2, sizeof(c2), req_ad.reply, wire),
               us(c3, sizeof(c3), req_srv.reply, 0), us(c4, sizeof(c4), total, 0),
               total >= 0 && total / 1000.0 <= TARGET_REQUEST_US ? "ok" : "MISS", sz.events,
               us(c5, sizeof(c5), ev_ad, wire), us(c6, sizeof(c6), ev_srv, 0),
               ev_srv >= 0 && ev_srv / 1000.0 <= TARGET_EVENT_US ? "ok" : "MISS", share);
        fflush(stdout);
        if (req_ad.rc != SL_OK || req_srv.rc != SL_OK || st_ad.rc != SL_OK || st_srv.rc != SL_OK)
            fprintf(stderr, "translate: %s: a measured iteration failed (%s)\n", adapters[a].label,
                    sl_status_name(req_ad.rc ? req_ad.rc : req_srv.rc ? req_srv.rc : st_ad.rc ? st_ad.rc : st_srv.rc));
        bench_free(&b);
    }
    if (!cg && printed_head) {
        printf("\n");
        printf("  build request: fresh struct sl_request + build_request (URL, headers, body; SigV4 for bedrock)\n"
               "                 + the arena reset that ends the request\n"
               "  parse response: the adapter's parse_response alone. In brackets for OpenAI-wire adapters:\n"
               "                 the server does not call it (only for an in-band error)\n"
               "  reply (server): proxy.c whole_reply, what the server runs: OpenAI-wire adapters splice the\n"
               "                 client's model name into the upstream text (sl_jscan); the others\n"
               "                 parse_response, model name, JSON dump; then the FastCGI write (in memory here)\n"
               "  build+reply:   build request + reply (server), against the 20 µs target\n"
               "  events:        native stream events fed one per read: text deltas plus the provider's\n"
               "                 opening and closing events (role, finish reason, usage, [DONE])\n"
               "  parse per ev:  framer + parse_stream_event alone (bracketed: not the server's path)\n"
               "  server per ev: framer + proxy.c on_event (wire_event splice, or parse_stream_event + JSON dump)\n"
               "                 + the SSE write and flush + end of stream, against the 2 µs target\n"
               "  cpu share:     the lowest CPU time / wall time of any run of the row: below ~95 %% the\n"
               "                 process was preempted (a busy machine) and the row reads high\n");
        if (passed[0] != '\0')
            printf("  not translated:%s (the Responses API passed through: see the chat figures)\n", passed);
        printf("\n  %d figure(s) over target\n", misses);
    }
    free(client);
    free(ans.cut);
    return warned ? 2 : 0;
}

/* The fuzz targets by name: one per stream framer, one per adapter family
 * (a family is one set of parse_* functions, whatever registry names share
 * it: openai also covers azure, the mock and every OpenAI-compatible vendor;
 * cohere covers cohere and cohere_chat; ollama both ollama names; gemini
 * also vertex_ai). Each name is also a directory under tests/fuzz/corpus/
 * and tests/fuzz/regressions/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

void (*sl_fuzz_fail_hook)(const char *what);

void sl_fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz invariant broken: %s\n", what);
    fflush(stderr);
    if (sl_fuzz_fail_hook != NULL)
        sl_fuzz_fail_hook(what);
    abort();
}

static int sse(const uint8_t *d, size_t n) { return sl_fuzz_framer(SL_FRAMING_SSE, d, n); }
static int ndjson(const uint8_t *d, size_t n) { return sl_fuzz_framer(SL_FRAMING_NDJSON, d, n); }
static int eventstream(const uint8_t *d, size_t n) { return sl_fuzz_framer(SL_FRAMING_EVENTSTREAM, d, n); }
static int openai(const uint8_t *d, size_t n) { return sl_fuzz_adapter("openai", d, n); }
static int anthropic(const uint8_t *d, size_t n) { return sl_fuzz_adapter("anthropic", d, n); }
static int bedrock(const uint8_t *d, size_t n) { return sl_fuzz_adapter("bedrock", d, n); }
static int cohere(const uint8_t *d, size_t n) { return sl_fuzz_adapter("cohere", d, n); }
static int ollama(const uint8_t *d, size_t n) { return sl_fuzz_adapter("ollama", d, n); }
static int gemini(const uint8_t *d, size_t n) { return sl_fuzz_adapter("gemini", d, n); }

const struct sl_fuzz_target sl_fuzz_targets[] = {
    { "sse", sse },
    { "ndjson", ndjson },
    { "eventstream", eventstream },
    { "openai", openai },
    { "anthropic", anthropic },
    { "bedrock", bedrock },
    { "cohere", cohere },
    { "ollama", ollama },
    { "gemini", gemini },
    { NULL, NULL }
};

const struct sl_fuzz_target *sl_fuzz_find(const char *name)
{
    for (const struct sl_fuzz_target *t = sl_fuzz_targets; t->name != NULL; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

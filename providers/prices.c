/* The built-in price table and the operator's price file (prices.h). List
 * prices in USD per million tokens as the providers published them in 2025
 * (CNY prices converted at about 7.2 CNY to the dollar); prices change, so a
 * price file in LiteLLM's format overrides the table by model name, a
 * deployment's own input_cost_per_token / output_cost_per_token win over
 * both, and model_info.base_model names the priced model behind an Azure
 * deployment. Self-hosted providers (Ollama, vLLM, LM Studio) and the mock
 * cost nothing. Each deployment's price is resolved once, at config load. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "config.h"
#include "prices.h"
#include "provider.h"
#include "request.h"
#include "status.h"

static const struct sl_price table[] = {
    /* OpenAI (also through Azure, OpenRouter and the like) */
    { "*", "gpt-5", 1.25, 10.00, 0.125, 0, 0, SL_UNIT_NONE },
    { "*", "gpt-5-mini", 0.25, 2.00, 0.025, 0, 0, SL_UNIT_NONE },
    { "*", "gpt-5-nano", 0.05, 0.40, 0.005, 0, 0, SL_UNIT_NONE },
    { "*", "gpt-4.1", 2.00, 8.00, 0.50, 0, 0, SL_UNIT_NONE },
    { "*", "gpt-4.1-mini", 0.40, 1.60, 0.10, 0, 0, SL_UNIT_NONE },
    { "*", "gpt-4.1-nano", 0.10, 0.40, 0.025, 0, 0, SL_UNIT_NONE },
    { "*", "gpt-4o", 2.50, 10.00, 1.25, 0, 0, SL_UNIT_NONE },
    { "*", "gpt-4o-mini", 0.15, 0.60, 0.075, 0, 0, SL_UNIT_NONE },
    { "*", "o3", 2.00, 8.00, 0.50, 0, 0, SL_UNIT_NONE },
    { "*", "o3-mini", 1.10, 4.40, 0.55, 0, 0, SL_UNIT_NONE },
    { "*", "o4-mini", 1.10, 4.40, 0.275, 0, 0, SL_UNIT_NONE },
    { "*", "text-embedding-3-small", 0.02, 0, 0, 0, 0, SL_UNIT_NONE },
    { "*", "text-embedding-3-large", 0.13, 0, 0, 0, 0, SL_UNIT_NONE },
    /* Anthropic (also on Bedrock and Vertex) */
    { "*", "claude-opus-4-1", 15.00, 75.00, 1.50, 18.75, 0, SL_UNIT_NONE },
    { "*", "claude-opus-4", 15.00, 75.00, 1.50, 18.75, 0, SL_UNIT_NONE },
    { "*", "claude-sonnet-4-5", 3.00, 15.00, 0.30, 3.75, 0, SL_UNIT_NONE },
    { "*", "claude-sonnet-4", 3.00, 15.00, 0.30, 3.75, 0, SL_UNIT_NONE },
    { "*", "claude-3-7-sonnet", 3.00, 15.00, 0.30, 3.75, 0, SL_UNIT_NONE },
    { "*", "claude-haiku-4-5", 1.00, 5.00, 0.10, 1.25, 0, SL_UNIT_NONE },
    { "*", "claude-3-5-haiku", 0.80, 4.00, 0.08, 1.00, 0, SL_UNIT_NONE },
    { "*", "claude-3-haiku", 0.25, 1.25, 0.03, 0.30, 0, SL_UNIT_NONE },
    /* Google */
    { "*", "gemini-2.5-pro", 1.25, 10.00, 0.31, 0, 0, SL_UNIT_NONE },
    { "*", "gemini-2.5-flash", 0.30, 2.50, 0.075, 0, 0, SL_UNIT_NONE },
    { "*", "gemini-2.5-flash-lite", 0.10, 0.40, 0.025, 0, 0, SL_UNIT_NONE },
    { "*", "gemini-2.0-flash", 0.10, 0.40, 0.025, 0, 0, SL_UNIT_NONE },
    /* Amazon (Bedrock) */
    { "bedrock", "nova-pro", 0.80, 3.20, 0.20, 0, 0, SL_UNIT_NONE },
    { "bedrock", "nova-lite", 0.06, 0.24, 0.015, 0, 0, SL_UNIT_NONE },
    { "bedrock", "nova-micro", 0.035, 0.14, 0.00875, 0, 0, SL_UNIT_NONE },
    { "bedrock", "titan-embed-text-v2", 0.02, 0, 0, 0, 0, SL_UNIT_NONE },
    /* Images, speech, transcription: per image, character or second */
    { "*", "dall-e-3", 0, 0, 0, 0, 0.04, SL_UNIT_IMAGE },
    { "*", "dall-e-2", 0, 0, 0, 0, 0.02, SL_UNIT_IMAGE },
    { "*", "tts-1", 0, 0, 0, 0, 0.000015, SL_UNIT_CHARACTER },
    { "*", "tts-1-hd", 0, 0, 0, 0, 0.00003, SL_UNIT_CHARACTER },
    { "*", "whisper-1", 0, 0, 0, 0, 0.0001, SL_UNIT_SECOND },
    { "*", "omni-moderation-latest", 0, 0, 0, 0, 0, SL_UNIT_NONE },
    /* Rerank: per search */
    { "*", "rerank-v3.5", 0, 0, 0, 0, 0.002, SL_UNIT_QUERY },
    { "*", "rerank-english-v3.0", 0, 0, 0, 0, 0.002, SL_UNIT_QUERY },
    { "*", "rerank-multilingual-v3.0", 0, 0, 0, 0, 0.002, SL_UNIT_QUERY },
    { "bedrock", "cohere.rerank-v3-5", 0, 0, 0, 0, 0.002, SL_UNIT_QUERY },
    { "bedrock", "amazon.rerank-v1", 0, 0, 0, 0, 0.001, SL_UNIT_QUERY },
    /* Cohere */
    { "*", "command-a-03-2025", 2.50, 10.00, 0, 0, 0, SL_UNIT_NONE },
    { "*", "command-r-plus", 2.50, 10.00, 0, 0, 0, SL_UNIT_NONE },
    { "*", "command-r", 0.15, 0.60, 0, 0, 0, SL_UNIT_NONE },
    { "*", "embed-v4.0", 0.12, 0, 0, 0, 0, SL_UNIT_NONE },
    /* Mistral */
    { "mistral", "mistral-large-latest", 2.00, 6.00, 0, 0, 0, SL_UNIT_NONE },
    { "mistral", "mistral-medium-latest", 0.40, 2.00, 0, 0, 0, SL_UNIT_NONE },
    { "mistral", "mistral-small-latest", 0.10, 0.30, 0, 0, 0, SL_UNIT_NONE },
    { "mistral", "codestral-latest", 0.30, 0.90, 0, 0, 0, SL_UNIT_NONE },
    { "mistral", "mistral-embed", 0.10, 0, 0, 0, 0, SL_UNIT_NONE },
    /* DeepSeek */
    { "deepseek", "deepseek-chat", 0.28, 0.42, 0.028, 0, 0, SL_UNIT_NONE },
    { "deepseek", "deepseek-reasoner", 0.28, 0.42, 0.028, 0, 0, SL_UNIT_NONE },
    /* Groq */
    { "groq", "llama-3.3-70b-versatile", 0.59, 0.79, 0, 0, 0, SL_UNIT_NONE },
    { "groq", "llama-3.1-8b-instant", 0.05, 0.08, 0, 0, 0, SL_UNIT_NONE },
    /* xAI */
    { "xai", "grok-4", 3.00, 15.00, 0.75, 0, 0, SL_UNIT_NONE },
    { "xai", "grok-3-mini", 0.30, 0.50, 0.075, 0, 0, SL_UNIT_NONE },
    /* Perplexity */
    { "perplexity", "sonar", 1.00, 1.00, 0, 0, 0, SL_UNIT_NONE },
    { "perplexity", "sonar-pro", 3.00, 15.00, 0, 0, 0, SL_UNIT_NONE },
    /* Alibaba Qwen (DashScope, international) */
    { "dashscope", "qwen-max", 1.60, 6.40, 0, 0, 0, SL_UNIT_NONE },
    { "dashscope", "qwen-plus", 0.40, 1.20, 0, 0, 0, SL_UNIT_NONE },
    { "dashscope", "qwen-turbo", 0.05, 0.20, 0, 0, 0, SL_UNIT_NONE },
    /* Moonshot Kimi */
    { "moonshot", "kimi-k2-0905-preview", 0.60, 2.50, 0.15, 0, 0, SL_UNIT_NONE },
    { "moonshot", "kimi-k2-turbo-preview", 1.15, 8.00, 0.15, 0, 0, SL_UNIT_NONE },
    { "moonshot", "kimi-k2-thinking", 0.60, 2.50, 0.15, 0, 0, SL_UNIT_NONE },
    /* Zhipu GLM (Z.ai) */
    { "zai", "glm-4.6", 0.60, 2.20, 0.11, 0, 0, SL_UNIT_NONE },
    { "zai", "glm-4.5", 0.60, 2.20, 0.11, 0, 0, SL_UNIT_NONE },
    { "zai", "glm-4.5-air", 0.20, 1.10, 0.03, 0, 0, SL_UNIT_NONE },
    /* Volcengine Ark (Doubao; CNY 0.8 / 8 per million) */
    { "volcengine", "doubao-seed-1-6", 0.11, 1.11, 0, 0, 0, SL_UNIT_NONE },
    /* SiliconFlow (CNY 2 / 8 per million) */
    { "siliconflow", "deepseek-ai/DeepSeek-V3", 0.28, 1.11, 0, 0, 0, SL_UNIT_NONE },
    /* MiniMax */
    { "minimax", "MiniMax-M2", 0.30, 1.20, 0.03, 0, 0, SL_UNIT_NONE },
    { "minimax", "MiniMax-M1", 0.40, 2.20, 0, 0, 0, SL_UNIT_NONE },
};

/* Providers whose models run on the operator's own hardware. */
static const char *const free_providers[] = {
    "mock", "ollama_chat", "hosted_vllm", "lm_studio", NULL
};

static const struct sl_price free_price = { "*", "(self-hosted)", 0, 0, 0, 0, 0, SL_UNIT_NONE };

struct sl_price_map {
    struct sl_price *e;          /* sorted by model; each model string malloc'd */
    size_t n;
};

/* Binary search for the n bytes at m (not NUL-terminated) among the names. */
static const struct sl_price *map_find(const struct sl_price_map *map, const char *m, size_t n)
{
    size_t lo = 0, hi = map != NULL ? map->n : 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *name = map->e[mid].model;
        int c = strncmp(m, name, n);

        if (c == 0 && name[n] != '\0')
            c = -1;   /* m is a proper prefix of name: it sorts first */
        if (c == 0)
            return &map->e[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* The price file's entry, else the table's. */
static const struct sl_price *lookup(const struct sl_price_map *map, const char *provider,
                                     const char *model, size_t len)
{
    const struct sl_price *p = map_find(map, model, len);

    if (p != NULL)
        return p;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if ((table[i].provider[0] == '*' || strcmp(table[i].provider, provider) == 0) &&
            strlen(table[i].model) == len && strncmp(table[i].model, model, len) == 0)
            return &table[i];
    return NULL;
}

static int all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)p[i]))
            return 0;
    return n > 0;
}

/* The length of model without one date or version suffix, or len if it has
 * none: "-20250929", "-2024-08-06", "@20240620", "-v1:0", "-v2:0", "-latest". */
static size_t strip_suffix(const char *m, size_t len)
{
    if (len > 9 && (m[len - 9] == '-' || m[len - 9] == '@') && all_digits(m + len - 8, 8))
        return len - 9;
    if (len > 11 && m[len - 11] == '-' && all_digits(m + len - 10, 4) && m[len - 6] == '-' &&
        all_digits(m + len - 5, 2) && m[len - 3] == '-' && all_digits(m + len - 2, 2))
        return len - 11;
    if (len > 5 && m[len - 5] == '-' && m[len - 4] == 'v' && isdigit((unsigned char)m[len - 3]) &&
        m[len - 2] == ':' && isdigit((unsigned char)m[len - 1]))
        return len - 5;
    if (len > 7 && strncmp(m + len - 7, "-latest", 7) == 0)
        return len - 7;
    return len;
}

/* Bedrock's region and vendor prefixes: "us.anthropic.claude-..." */
static const char *strip_prefix(const char *m)
{
    static const char *const prefixes[] = {
        "us.", "eu.", "apac.", "global.", "anthropic.", "amazon.", "meta.", "mistral.", "cohere.",
        "deepseek.", NULL
    };

    for (int again = 1; again;) {
        again = 0;
        for (size_t i = 0; prefixes[i] != NULL; i++)
            if (strncmp(m, prefixes[i], strlen(prefixes[i])) == 0) {
                m += strlen(prefixes[i]);
                again = 1;
            }
    }
    return m;
}

const struct sl_price *sl_price_find(const char *provider, const char *model)
{
    return sl_price_lookup(NULL, provider, model);
}

const struct sl_price *sl_price_lookup(const struct sl_price_map *map, const char *provider,
                                       const char *model)
{
    const struct sl_price *p;
    const char *m = model, *slash;
    char full[512];
    size_t len;
    int n;

    /* LiteLLM's file keys many models with their provider: "azure/gpt-4o",
     * "vertex_ai/claude-...@2024...", "openrouter/openai/gpt-4o". */
    if (map != NULL && (n = snprintf(full, sizeof(full), "%s/%s", provider, model)) > 0 &&
        (size_t)n < sizeof(full) && (p = map_find(map, full, (size_t)n)) != NULL)
        return p;
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1)
            m = strip_prefix(model);
        else if (pass == 2 && (slash = strrchr(model, '/')) != NULL)
            m = slash + 1;           /* "openai/gpt-4o" on OpenRouter */
        else if (pass == 2)
            break;
        len = strlen(m);
        for (int k = 0; k < 3; k++) {   /* e.g. "-20240307" then "-v1:0" */
            if ((p = lookup(map, provider, m, len)) != NULL)
                return p;
            size_t shorter = strip_suffix(m, len);

            if (shorter == len)
                break;
            len = shorter;
        }
    }
    return NULL;
}

const struct sl_price *sl_price_resolve(const struct sl_price_map *map,
                                        const struct sl_deployment *d)
{
    const char *base = json_string_value(json_object_get(d->model_info, "base_model"));

    for (size_t i = 0; free_providers[i] != NULL; i++)
        if (strcmp(d->provider->name, free_providers[i]) == 0)
            return &free_price;
    return sl_price_lookup(map, d->provider->name, base != NULL ? base : d->upstream_model);
}

double sl_price_cost(const struct sl_deployment *d, const struct sl_usage *u, int *known)
{
    const struct sl_price *p;
    long cached = u->cached_tokens, written = u->cache_write_tokens;
    long plain = u->prompt_tokens - cached - written;

    *known = 1;
    if (plain < 0)
        plain = 0;
    if (d->input_cost_per_token > 0 || d->output_cost_per_token > 0)
        return (double)(u->prompt_tokens) * d->input_cost_per_token +
               (double)u->completion_tokens * d->output_cost_per_token;
    /* A configured deployment was resolved at load: no search per call. */
    if ((p = d->price_resolved ? d->price : sl_price_resolve(NULL, d)) == NULL) {
        *known = 0;
        return 0;
    }
    return ((double)plain * p->input +
            (double)cached * (p->cache_read > 0 ? p->cache_read : p->input) +
            (double)written * (p->cache_write > 0 ? p->cache_write : p->input) +
            (double)u->completion_tokens * p->output) / 1e6 +
           (p->unit != SL_UNIT_NONE ? (double)u->units * p->per_unit : 0);
}

/* ---- the price file (sluice_settings.model_cost_map) ----------------------- */

/* LiteLLM's per-token prices and where sluice keeps them (per million;
 * SIZE_MAX: checked only). */
static const struct {
    const char *key;
    size_t off;
} cost_fields[] = {
    { "input_cost_per_token", offsetof(struct sl_price, input) },
    { "output_cost_per_token", offsetof(struct sl_price, output) },
    { "cache_read_input_token_cost", offsetof(struct sl_price, cache_read) },
    { "cache_creation_input_token_cost", offsetof(struct sl_price, cache_write) },
    { "output_cost_per_reasoning_token", SIZE_MAX },
};

/* LiteLLM's prices per unit, and the unit each bills. */
static const struct {
    const char *key;
    enum sl_price_unit unit;
} unit_fields[] = {
    { "output_cost_per_image", SL_UNIT_IMAGE },
    { "input_cost_per_second", SL_UNIT_SECOND },
    { "input_cost_per_character", SL_UNIT_CHARACTER },
    { "input_cost_per_query", SL_UNIT_QUERY },
};

static const char *json_type_text(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* A number >= 0 and <= max in *out; null counts as absent (0). -1 if not. */
static int get_amount(const json_t *v, double max, double *out)
{
    double d;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v) || !isfinite(d = json_number_value(v)) || d < 0 || d > max)
        return -1;
    *out = d;
    return 1;
}

/* One entry into *e. 1: keep it, 0: skip it (no token price), -1: bad (why). */
static int load_entry(const char *name, const json_t *v, struct sl_price *e, char *why,
                      size_t whylen)
{
    static const char *const text_fields[] = { "litellm_provider", "mode", NULL };
    static const char *const token_fields[] = { "max_input_tokens", "max_output_tokens",
                                                "max_tokens", NULL };
    double amount, tokens;
    const json_t *f;
    int priced = 0, got;

    if (!json_is_object(v)) {
        snprintf(why, whylen, "entry \"%.80s\": expected an object, got %s", name,
                 json_type_text(v));
        return -1;
    }
    for (size_t i = 0; i < sizeof(cost_fields) / sizeof(cost_fields[0]); i++) {
        f = json_object_get(v, cost_fields[i].key);
        amount = 0;
        if ((got = get_amount(f, 1.0, &amount)) < 0) {
            snprintf(why, whylen, "entry \"%.80s\": %s: expected a price per token >= 0, got %s",
                     name, cost_fields[i].key, json_is_number(f) ? "a negative or huge number" :
                     json_type_text(f));
            return -1;
        }
        if (cost_fields[i].off != SIZE_MAX)
            *(double *)(void *)((char *)e + cost_fields[i].off) = amount * 1e6;
        priced |= got > 0 && i < 2;
    }
    for (size_t i = 0; i < sizeof(unit_fields) / sizeof(unit_fields[0]); i++) {
        f = json_object_get(v, unit_fields[i].key);
        amount = 0;
        if ((got = get_amount(f, 1e6, &amount)) < 0) {
            snprintf(why, whylen, "entry \"%.80s\": %s: expected a price >= 0, got %s", name,
                     unit_fields[i].key, json_is_number(f) ? "a negative or huge number" : json_type_text(f));
            return -1;
        }
        if (got > 0 && e->unit == SL_UNIT_NONE) {   /* the first one named counts */
            e->per_unit = amount;
            e->unit = unit_fields[i].unit;
            priced = 1;
        }
    }
    for (size_t i = 0; token_fields[i] != NULL; i++)
        if (get_amount(f = json_object_get(v, token_fields[i]), 1e15, &tokens) < 0) {
            snprintf(why, whylen, "entry \"%.80s\": %s: expected a token count >= 0, got %s",
                     name, token_fields[i], json_is_number(f) ? "a negative or huge number" :
                     json_type_text(f));
            return -1;
        }
    for (size_t i = 0; text_fields[i] != NULL; i++)
        if ((f = json_object_get(v, text_fields[i])) != NULL && !json_is_string(f) &&
            !json_is_null(f)) {
            snprintf(why, whylen, "entry \"%.80s\": %s: expected a string, got %s", name,
                     text_fields[i], json_type_text(f));
            return -1;
        }
    e->provider = "*";   /* a name in the operator's file means that model anywhere */
    return priced;
}

/* The whole regular file at path (malloc'd, NUL-terminated). O_NONBLOCK: a
 * FIFO given by mistake must not hang the config load. */
static int read_whole(const char *path, char **out, size_t *len, char *why, size_t whylen)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    ssize_t r = 0;
    int fd, rc = SL_ERR_CONFIG;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        return SL_ERR_CONFIG;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(why, whylen, "not a regular file");
    else if ((size_t)st.st_size > SL_PRICE_MAP_MAX_BYTES)
        snprintf(why, whylen, "larger than %zu MiB", SL_PRICE_MAP_MAX_BYTES >> 20);
    else if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
        rc = SL_ERR_NOMEM;
    else {
        while (got < (size_t)st.st_size &&
               ((r = read(fd, buf + got, (size_t)st.st_size - got)) > 0 || (r < 0 && errno == EINTR)))
            if (r > 0)
                got += (size_t)r;
        if (got < (size_t)st.st_size && r < 0) {
            snprintf(why, whylen, "cannot read: %s", strerror(errno));
        } else {
            buf[got] = '\0';
            *out = buf;
            *len = got;
            buf = NULL;
            rc = SL_OK;
        }
    }
    free(buf);
    close(fd);
    return rc;
}

static int cmp_model(const void *a, const void *b)
{
    return strcmp(((const struct sl_price *)a)->model, ((const struct sl_price *)b)->model);
}

/* Every priced entry of root into map (sized for all of them). */
static int load_entries(const json_t *root, struct sl_price_map *map, char *why, size_t whylen)
{
    const char *name;
    json_t *v;
    int keep;

    json_object_foreach((json_t *)root, name, v) {
        if (strcmp(name, "sample_spec") == 0)
            continue;   /* LiteLLM's documentation of the fields, not a model */
        if (*name == '\0') {
            snprintf(why, whylen, "an entry has an empty model name");
            return SL_ERR_CONFIG;
        }
        memset(&map->e[map->n], 0, sizeof(map->e[0]));
        if ((keep = load_entry(name, v, &map->e[map->n], why, whylen)) < 0)
            return SL_ERR_CONFIG;
        if (keep == 0)
            continue;
        if ((map->e[map->n].model = strdup(name)) == NULL)
            return SL_ERR_NOMEM;
        map->n++;
    }
    return SL_OK;
}

int sl_price_map_load(const char *path, struct sl_price_map **out, char *why, size_t whylen)
{
    struct sl_price_map *map = NULL;
    json_error_t jerr;
    json_t *root = NULL;   /* owned */
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if ((rc = read_whole(path, &text, &len, why, whylen)) != SL_OK)
        goto out;
    rc = SL_ERR_CONFIG;
    if ((root = json_loadb(text, len, 0, &jerr)) == NULL &&
        json_error_code(&jerr) == json_error_out_of_memory)
        rc = SL_ERR_NOMEM;
    else if (root == NULL)
        snprintf(why, whylen, "not JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    else if (!json_is_object(root))
        snprintf(why, whylen, "expected an object keyed by model name, got %s",
                 json_type_text(root));
    else if ((map = calloc(1, sizeof(*map))) == NULL ||
             (map->e = calloc(json_object_size(root) + 1, sizeof(*map->e))) == NULL)
        rc = SL_ERR_NOMEM;
    else if ((rc = load_entries(root, map, why, whylen)) == SL_OK) {
        qsort(map->e, map->n, sizeof(*map->e), cmp_model);
        *out = map;
        map = NULL;
    }
out:
    sl_price_map_free(map);
    json_decref(root);
    free(text);
    return rc;
}

void sl_price_map_free(struct sl_price_map *map)
{
    if (map == NULL)
        return;
    for (size_t i = 0; i < map->n; i++)
        free((char *)map->e[i].model);
    free(map->e);
    free(map);
}

size_t sl_price_map_count(const struct sl_price_map *map)
{
    return map != NULL ? map->n : 0;
}

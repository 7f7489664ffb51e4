/* The built-in price table (prices.h). List prices in USD per million
 * tokens as the providers published them in 2025 (CNY prices converted at
 * about 7.2 CNY to the dollar); prices change, so a deployment's own
 * input_cost_per_token / output_cost_per_token always win, and
 * model_info.base_model names the priced model behind an Azure deployment.
 * Self-hosted providers (Ollama, vLLM, LM Studio) and the mock cost nothing. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "config.h"
#include "prices.h"
#include "provider.h"
#include "request.h"

static const struct sl_price table[] = {
    /* OpenAI (also through Azure, OpenRouter and the like) */
    { "*", "gpt-5", 1.25, 10.00, 0.125, 0 },
    { "*", "gpt-5-mini", 0.25, 2.00, 0.025, 0 },
    { "*", "gpt-5-nano", 0.05, 0.40, 0.005, 0 },
    { "*", "gpt-4.1", 2.00, 8.00, 0.50, 0 },
    { "*", "gpt-4.1-mini", 0.40, 1.60, 0.10, 0 },
    { "*", "gpt-4.1-nano", 0.10, 0.40, 0.025, 0 },
    { "*", "gpt-4o", 2.50, 10.00, 1.25, 0 },
    { "*", "gpt-4o-mini", 0.15, 0.60, 0.075, 0 },
    { "*", "o3", 2.00, 8.00, 0.50, 0 },
    { "*", "o3-mini", 1.10, 4.40, 0.55, 0 },
    { "*", "o4-mini", 1.10, 4.40, 0.275, 0 },
    { "*", "text-embedding-3-small", 0.02, 0, 0, 0 },
    { "*", "text-embedding-3-large", 0.13, 0, 0, 0 },
    /* Anthropic (also on Bedrock and Vertex) */
    { "*", "claude-opus-4-1", 15.00, 75.00, 1.50, 18.75 },
    { "*", "claude-opus-4", 15.00, 75.00, 1.50, 18.75 },
    { "*", "claude-sonnet-4-5", 3.00, 15.00, 0.30, 3.75 },
    { "*", "claude-sonnet-4", 3.00, 15.00, 0.30, 3.75 },
    { "*", "claude-3-7-sonnet", 3.00, 15.00, 0.30, 3.75 },
    { "*", "claude-haiku-4-5", 1.00, 5.00, 0.10, 1.25 },
    { "*", "claude-3-5-haiku", 0.80, 4.00, 0.08, 1.00 },
    { "*", "claude-3-haiku", 0.25, 1.25, 0.03, 0.30 },
    /* Google */
    { "*", "gemini-2.5-pro", 1.25, 10.00, 0.31, 0 },
    { "*", "gemini-2.5-flash", 0.30, 2.50, 0.075, 0 },
    { "*", "gemini-2.5-flash-lite", 0.10, 0.40, 0.025, 0 },
    { "*", "gemini-2.0-flash", 0.10, 0.40, 0.025, 0 },
    /* Amazon (Bedrock) */
    { "bedrock", "nova-pro", 0.80, 3.20, 0.20, 0 },
    { "bedrock", "nova-lite", 0.06, 0.24, 0.015, 0 },
    { "bedrock", "nova-micro", 0.035, 0.14, 0.00875, 0 },
    { "bedrock", "titan-embed-text-v2", 0.02, 0, 0, 0 },
    /* Cohere */
    { "*", "command-a-03-2025", 2.50, 10.00, 0, 0 },
    { "*", "command-r-plus", 2.50, 10.00, 0, 0 },
    { "*", "command-r", 0.15, 0.60, 0, 0 },
    { "*", "embed-v4.0", 0.12, 0, 0, 0 },
    /* Mistral */
    { "mistral", "mistral-large-latest", 2.00, 6.00, 0, 0 },
    { "mistral", "mistral-medium-latest", 0.40, 2.00, 0, 0 },
    { "mistral", "mistral-small-latest", 0.10, 0.30, 0, 0 },
    { "mistral", "codestral-latest", 0.30, 0.90, 0, 0 },
    { "mistral", "mistral-embed", 0.10, 0, 0, 0 },
    /* DeepSeek */
    { "deepseek", "deepseek-chat", 0.28, 0.42, 0.028, 0 },
    { "deepseek", "deepseek-reasoner", 0.28, 0.42, 0.028, 0 },
    /* Groq */
    { "groq", "llama-3.3-70b-versatile", 0.59, 0.79, 0, 0 },
    { "groq", "llama-3.1-8b-instant", 0.05, 0.08, 0, 0 },
    /* xAI */
    { "xai", "grok-4", 3.00, 15.00, 0.75, 0 },
    { "xai", "grok-3-mini", 0.30, 0.50, 0.075, 0 },
    /* Perplexity */
    { "perplexity", "sonar", 1.00, 1.00, 0, 0 },
    { "perplexity", "sonar-pro", 3.00, 15.00, 0, 0 },
    /* Alibaba Qwen (DashScope, international) */
    { "dashscope", "qwen-max", 1.60, 6.40, 0, 0 },
    { "dashscope", "qwen-plus", 0.40, 1.20, 0, 0 },
    { "dashscope", "qwen-turbo", 0.05, 0.20, 0, 0 },
    /* Moonshot Kimi */
    { "moonshot", "kimi-k2-0905-preview", 0.60, 2.50, 0.15, 0 },
    { "moonshot", "kimi-k2-turbo-preview", 1.15, 8.00, 0.15, 0 },
    { "moonshot", "kimi-k2-thinking", 0.60, 2.50, 0.15, 0 },
    /* Zhipu GLM (Z.ai) */
    { "zai", "glm-4.6", 0.60, 2.20, 0.11, 0 },
    { "zai", "glm-4.5", 0.60, 2.20, 0.11, 0 },
    { "zai", "glm-4.5-air", 0.20, 1.10, 0.03, 0 },
    /* Volcengine Ark (Doubao; CNY 0.8 / 8 per million) */
    { "volcengine", "doubao-seed-1-6", 0.11, 1.11, 0, 0 },
    /* SiliconFlow (CNY 2 / 8 per million) */
    { "siliconflow", "deepseek-ai/DeepSeek-V3", 0.28, 1.11, 0, 0 },
    /* MiniMax */
    { "minimax", "MiniMax-M2", 0.30, 1.20, 0.03, 0 },
    { "minimax", "MiniMax-M1", 0.40, 2.20, 0, 0 },
};

/* Providers whose models run on the operator's own hardware. */
static const char *const free_providers[] = {
    "mock", "ollama_chat", "hosted_vllm", "lm_studio", NULL
};

static const struct sl_price *lookup(const char *provider, const char *model, size_t len)
{
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
    const struct sl_price *p;
    const char *m = model, *slash;
    size_t len;

    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1)
            m = strip_prefix(model);
        else if (pass == 2 && (slash = strrchr(model, '/')) != NULL)
            m = slash + 1;           /* "openai/gpt-4o" on OpenRouter */
        else if (pass == 2)
            break;
        len = strlen(m);
        for (int k = 0; k < 3; k++) {   /* e.g. "-20240307" then "-v1:0" */
            if ((p = lookup(provider, m, len)) != NULL)
                return p;
            size_t shorter = strip_suffix(m, len);

            if (shorter == len)
                break;
            len = shorter;
        }
    }
    return NULL;
}

double sl_price_cost(const struct sl_deployment *d, const struct sl_usage *u, int *known)
{
    const char *base = json_string_value(json_object_get(d->model_info, "base_model"));
    const struct sl_price *p;
    long cached = u->cached_tokens, written = u->cache_write_tokens;
    long plain = u->prompt_tokens - cached - written;

    *known = 1;
    if (plain < 0)
        plain = 0;
    if (d->input_cost_per_token > 0 || d->output_cost_per_token > 0)
        return (double)(u->prompt_tokens) * d->input_cost_per_token +
               (double)u->completion_tokens * d->output_cost_per_token;
    for (size_t i = 0; free_providers[i] != NULL; i++)
        if (strcmp(d->provider->name, free_providers[i]) == 0)
            return 0;
    if ((p = sl_price_find(d->provider->name, base ? base : d->upstream_model)) == NULL) {
        *known = 0;
        return 0;
    }
    return ((double)plain * p->input +
            (double)cached * (p->cache_read > 0 ? p->cache_read : p->input) +
            (double)written * (p->cache_write > 0 ? p->cache_write : p->input) +
            (double)u->completion_tokens * p->output) / 1e6;
}

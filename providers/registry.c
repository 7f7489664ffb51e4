/* The one table of provider adapters. Adding a protocol: one file, one line
 * here, one line in Makefile.am. */
#include <stddef.h>
#include <string.h>

#include "log.h"
#include "provider.h"
#include "status.h"

extern const struct sl_provider sl_provider_openai;
extern const struct sl_provider sl_provider_mock;
extern const struct sl_provider sl_provider_anthropic;
extern const struct sl_provider sl_provider_azure;
/* OpenAI-compatible vendors (vendors.c) */
extern const struct sl_provider sl_provider_groq, sl_provider_mistral, sl_provider_deepseek,
    sl_provider_openrouter, sl_provider_together_ai, sl_provider_fireworks_ai, sl_provider_xai,
    sl_provider_perplexity, sl_provider_hosted_vllm, sl_provider_lm_studio, sl_provider_dashscope,
    sl_provider_moonshot, sl_provider_zai, sl_provider_volcengine, sl_provider_siliconflow,
    sl_provider_minimax;
extern const struct sl_provider sl_provider_cohere_chat;
extern const struct sl_provider sl_provider_ollama_chat;
extern const struct sl_provider sl_provider_gemini, sl_provider_vertex_ai;
extern const struct sl_provider sl_provider_bedrock;

static const struct sl_provider *const registry[] = {
    &sl_provider_openai,
    &sl_provider_mock,
    &sl_provider_anthropic,
    &sl_provider_bedrock,
    &sl_provider_azure,
    &sl_provider_groq, &sl_provider_mistral, &sl_provider_deepseek, &sl_provider_openrouter,
    &sl_provider_together_ai, &sl_provider_fireworks_ai, &sl_provider_xai, &sl_provider_perplexity,
    &sl_provider_hosted_vllm, &sl_provider_lm_studio, &sl_provider_dashscope, &sl_provider_moonshot,
    &sl_provider_zai, &sl_provider_volcengine, &sl_provider_siliconflow, &sl_provider_minimax,
    &sl_provider_cohere_chat,
    &sl_provider_ollama_chat,
    &sl_provider_gemini, &sl_provider_vertex_ai,
    NULL
};

/* Second names LiteLLM gives the same protocol. */
static const struct { const char *alias, *name; } aliases[] = {
    { "cohere", "cohere_chat" },   /* LiteLLM sends cohere/ chat models to v2 chat too */
    { "ollama", "ollama_chat" },   /* served through /api/chat as well */
};

const struct sl_provider *sl_provider_find(const char *name)
{
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcmp(aliases[i].alias, name) == 0)
            name = aliases[i].name;
    for (size_t i = 0; registry[i] != NULL; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

int sl_provider_registry_check(void)
{
    for (size_t i = 0; registry[i] != NULL; i++) {
        if (registry[i]->abi != SL_PROVIDER_ABI) {
            sl_log(SL_LOG_ERROR, NULL, "provider %s: ABI %u, expected %u",
                   registry[i]->name, registry[i]->abi, SL_PROVIDER_ABI);
            return SL_ERR_INTERNAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(registry[i]->name, registry[j]->name) == 0) {
                sl_log(SL_LOG_ERROR, NULL, "provider %s registered twice", registry[i]->name);
                return SL_ERR_INTERNAL;
            }
    }
    return SL_OK;
}

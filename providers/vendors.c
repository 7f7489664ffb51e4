/* OpenAI-compatible vendors as data: each is the openai/ adapter with its
 * own default base URL, key variable and quirks (struct sl_vendor). Adding
 * one is an entry here and a line in registry.c; no code.
 *
 * The parameters listed as unsupported are the ones each vendor's API
 * documents as rejected (or as accepted only with one value): with
 * drop_params they are left out, otherwise the request is a 400 that names
 * them, before anything is sent. */
#include <stddef.h>

#include "openai.h"
#include "provider.h"

#define CHAT      SL_EP_BIT(SL_EP_CHAT)
#define CHAT_EMB  (SL_EP_BIT(SL_EP_CHAT) | SL_EP_BIT(SL_EP_EMBEDDINGS))
/* ... and legacy /completions, for the vendors that serve it (the others
 * get legacy completions as chat, completions.c) */
#define CHAT_EMB_TEXT (CHAT_EMB | SL_EP_BIT(SL_EP_COMPLETIONS))
/* ... and /rerank (vLLM's, Together's: Cohere's shape) */
#define CHAT_EMB_TEXT_RERANK (CHAT_EMB_TEXT | SL_EP_BIT(SL_EP_RERANK))

#define VENDOR(nm, env, base, eps, fl, vendor) {                               \
        .name = nm, .abi = SL_PROVIDER_ABI, .flags = SL_PROVIDER_OPENAI_WIRE | (fl), \
        .api_key_env = env, .default_api_base = base, .endpoints = eps,        \
        .build_request = sl_openai_build_request,                             \
        .parse_response = sl_openai_parse_response,                           \
        .parse_stream_event = sl_openai_parse_stream_event,                   \
        .map_error = sl_openai_map_error, .data = vendor }

static const char *const no_logprobs[] = {
    "logit_bias", "logprobs", "top_logprobs", NULL
};

/* Groq: no logprobs or logit_bias, n must be 1. */
static const char *const groq_unsupported[] = {
    "logit_bias", "logprobs", "top_logprobs", "n", "service_tier", "store", NULL
};
static const struct sl_vendor groq = { .unsupported = groq_unsupported };

/* Mistral: max_tokens and random_seed are its names; tool_choice "any". */
static const char *const mistral_unsupported[] = {
    "logit_bias", "logprobs", "top_logprobs", "user", "service_tier", "store", NULL
};
static const struct sl_rename mistral_renames[] = {
    { "max_completion_tokens", "max_tokens" }, { "seed", "random_seed" }, { NULL, NULL }
};
static const struct sl_vendor mistral = {
    .unsupported = mistral_unsupported, .renames = mistral_renames,
    .quirks = SL_VQ_TOOL_CHOICE_ANY,
};

/* DeepSeek: n must be 1; no logit_bias. */
static const char *const deepseek_unsupported[] = { "logit_bias", "n", NULL };
static const struct sl_vendor deepseek = { .unsupported = deepseek_unsupported };

static const struct sl_vendor openrouter = { .unsupported = NULL };
static const struct sl_vendor together = { .unsupported = NULL };

/* Fireworks: bare model names live under accounts/fireworks/models/. */
static const struct sl_vendor fireworks = {
    .unsupported = NULL, .model_prefix = "accounts/fireworks/models/",
};

static const struct sl_vendor xai = { .unsupported = NULL };

/* Perplexity (Sonar): no tools, no n, no logprobs or seed. */
static const char *const perplexity_unsupported[] = {
    "tools", "tool_choice", "parallel_tool_calls", "n", "logit_bias", "logprobs",
    "top_logprobs", "seed", NULL
};
static const struct sl_vendor perplexity = { .unsupported = perplexity_unsupported };

static const struct sl_vendor vllm = { .unsupported = NULL };

/* Alibaba Qwen through DashScope's compatible mode. */
static const struct sl_vendor dashscope = { .unsupported = no_logprobs };

/* Moonshot Kimi: temperature in [0, 1]. */
static const char *const moonshot_unsupported[] = { "logit_bias", "logprobs", "top_logprobs", NULL };
static const struct sl_vendor moonshot = {
    .unsupported = moonshot_unsupported, .quirks = SL_VQ_TEMPERATURE_MAX_1,
};

/* Zhipu GLM (Z.ai): temperature in [0, 1]; no penalties, logprobs or n. */
static const char *const zai_unsupported[] = {
    "logit_bias", "logprobs", "top_logprobs", "n", "frequency_penalty", "presence_penalty", NULL
};
static const struct sl_vendor zai = { .unsupported = zai_unsupported, .quirks = SL_VQ_TEMPERATURE_MAX_1 };

/* Volcengine Ark (Doubao). */
static const struct sl_vendor volcengine = { .unsupported = no_logprobs };

static const struct sl_vendor siliconflow = { .unsupported = no_logprobs };

/* MiniMax: temperature in (0, 1]; n must be 1. */
static const char *const minimax_unsupported[] = { "logit_bias", "logprobs", "top_logprobs", "n", NULL };
static const struct sl_vendor minimax = { .unsupported = minimax_unsupported, .quirks = SL_VQ_TEMPERATURE_MAX_1 };

const struct sl_provider sl_provider_groq =
    VENDOR("groq", "GROQ_API_KEY", "https://api.groq.com/openai/v1", CHAT, 0, &groq);
const struct sl_provider sl_provider_mistral =
    VENDOR("mistral", "MISTRAL_API_KEY", "https://api.mistral.ai/v1", CHAT_EMB, 0, &mistral);
const struct sl_provider sl_provider_deepseek =
    VENDOR("deepseek", "DEEPSEEK_API_KEY", "https://api.deepseek.com/v1", CHAT, 0, &deepseek);
const struct sl_provider sl_provider_openrouter =
    VENDOR("openrouter", "OPENROUTER_API_KEY", "https://openrouter.ai/api/v1", CHAT_EMB_TEXT, 0, &openrouter);
const struct sl_provider sl_provider_together_ai =
    VENDOR("together_ai", "TOGETHERAI_API_KEY", "https://api.together.xyz/v1", CHAT_EMB_TEXT_RERANK, 0, &together);
const struct sl_provider sl_provider_fireworks_ai =
    VENDOR("fireworks_ai", "FIREWORKS_AI_API_KEY", "https://api.fireworks.ai/inference/v1", CHAT_EMB_TEXT, 0,
           &fireworks);
const struct sl_provider sl_provider_xai =
    VENDOR("xai", "XAI_API_KEY", "https://api.x.ai/v1", CHAT, 0, &xai);
const struct sl_provider sl_provider_perplexity =
    VENDOR("perplexity", "PERPLEXITYAI_API_KEY", "https://api.perplexity.ai", CHAT, 0, &perplexity);
const struct sl_provider sl_provider_hosted_vllm = {
    .name = "hosted_vllm", .abi = SL_PROVIDER_ABI,
    .flags = SL_PROVIDER_OPENAI_WIRE | SL_PROVIDER_NEEDS_API_BASE,
    .api_key_env = "HOSTED_VLLM_API_KEY", .api_base_env = "HOSTED_VLLM_API_BASE",
    .endpoints = CHAT_EMB_TEXT_RERANK, .build_request = sl_openai_build_request,
    .parse_response = sl_openai_parse_response, .parse_stream_event = sl_openai_parse_stream_event,
    .map_error = sl_openai_map_error, .data = &vllm,
};
const struct sl_provider sl_provider_lm_studio = {
    .name = "lm_studio", .abi = SL_PROVIDER_ABI, .flags = SL_PROVIDER_OPENAI_WIRE,
    .api_key_env = "LM_STUDIO_API_KEY", .api_base_env = "LM_STUDIO_API_BASE",
    .default_api_base = "http://localhost:1234/v1",
    .endpoints = CHAT_EMB_TEXT, .build_request = sl_openai_build_request,
    .parse_response = sl_openai_parse_response, .parse_stream_event = sl_openai_parse_stream_event,
    .map_error = sl_openai_map_error, .data = &vllm,
};
const struct sl_provider sl_provider_dashscope =
    VENDOR("dashscope", "DASHSCOPE_API_KEY", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
           CHAT_EMB, 0, &dashscope);
const struct sl_provider sl_provider_moonshot =
    VENDOR("moonshot", "MOONSHOT_API_KEY", "https://api.moonshot.ai/v1", CHAT, 0, &moonshot);
const struct sl_provider sl_provider_zai =
    VENDOR("zai", "ZAI_API_KEY", "https://api.z.ai/api/paas/v4", CHAT_EMB, 0, &zai);
const struct sl_provider sl_provider_volcengine =
    VENDOR("volcengine", "VOLCENGINE_API_KEY", "https://ark.cn-beijing.volces.com/api/v3", CHAT_EMB, 0,
           &volcengine);
const struct sl_provider sl_provider_siliconflow =
    VENDOR("siliconflow", "SILICONFLOW_API_KEY", "https://api.siliconflow.cn/v1", CHAT_EMB, 0,
           &siliconflow);
const struct sl_provider sl_provider_minimax =
    VENDOR("minimax", "MINIMAX_API_KEY", "https://api.minimax.io/v1", CHAT, 0, &minimax);

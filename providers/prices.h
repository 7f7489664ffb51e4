/* What a call cost: the built-in price table (providers/prices.c) and the
 * per-deployment overrides LiteLLM users already write
 * (litellm_params.input_cost_per_token / output_cost_per_token). */
#ifndef SL_PROVIDER_PRICES_H
#define SL_PROVIDER_PRICES_H

struct sl_deployment;
struct sl_usage;

/* USD per million tokens. */
struct sl_price {
    const char *provider;     /* registry name, or "*" for any provider */
    const char *model;        /* upstream model name as the provider spells it */
    double input, output;
    double cache_read;        /* cached input tokens; 0: billed as input */
    double cache_write;       /* cache creation (Anthropic); 0: billed as input */
};

/* The table entry for a provider's model: exact name first, then the name
 * without a date or version suffix ("claude-sonnet-4-5-20250929",
 * "gpt-4o-2024-08-06", "...-v1:0"), then without a Bedrock region or vendor
 * prefix ("us.anthropic.claude-..."). NULL if unknown. */
const struct sl_price *sl_price_find(const char *provider, const char *model);

/* The cost of a call in USD: the deployment's own prices when it has them,
 * else the table's. Sets *known to 0 (and returns 0) when neither knows the
 * model. Cached input tokens are part of prompt_tokens (OpenAI's meaning). */
double sl_price_cost(const struct sl_deployment *d, const struct sl_usage *u, int *known);

#endif

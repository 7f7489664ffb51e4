/* What a call cost: the built-in price table (providers/prices.c), an
 * operator's price file in LiteLLM's model_prices_and_context_window.json
 * format (sluice_settings.model_cost_map), and the per-deployment overrides
 * LiteLLM users already write (litellm_params.input_cost_per_token /
 * output_cost_per_token). Precedence: deployment > price file > table. */
#ifndef SL_PROVIDER_PRICES_H
#define SL_PROVIDER_PRICES_H

#include <stddef.h>

struct sl_deployment;
struct sl_usage;

/* What a model is billed in besides tokens (struct sl_usage.units). */
enum sl_price_unit {
    SL_UNIT_NONE = 0,
    SL_UNIT_IMAGE,            /* an image generated (LiteLLM's output_cost_per_image) */
    SL_UNIT_SECOND,           /* a second of audio in (input_cost_per_second) */
    SL_UNIT_CHARACTER,        /* a character of text to speak (input_cost_per_character) */
    SL_UNIT_QUERY             /* a rerank search (input_cost_per_query) */
};

/* USD per million tokens; per_unit in USD per unit. */
struct sl_price {
    const char *provider;     /* registry name, or "*" for any provider */
    const char *model;        /* upstream model name as the provider spells it */
    double input, output;
    double cache_read;        /* cached input tokens; 0: billed as input */
    double cache_write;       /* cache creation (Anthropic); 0: billed as input */
    double per_unit;          /* USD per unit of unit, or 0 */
    enum sl_price_unit unit;
};

/* The entries of one price file, sorted by name for a binary search. */
struct sl_price_map;

/* Largest price file read: LiteLLM's own is about 1.6 MB. */
#define SL_PRICE_MAP_MAX_BYTES ((size_t)32 << 20)

/* Reads path, a JSON object keyed by model name as LiteLLM's
 * model_prices_and_context_window.json ("gpt-4o", "azure/gpt-4o",
 * "bedrock/us.anthropic..."). Entries priced neither per token nor per
 * unit (output_cost_per_image, input_cost_per_second,
 * input_cost_per_character, input_cost_per_query) and "sample_spec" are
 * skipped; unknown fields are ignored. output_cost_per_reasoning_token,
 * max_tokens, max_input_tokens, max_output_tokens, litellm_provider and mode
 * are checked but not kept: usage does not count reasoning tokens apart, and
 * a name in the file prices that model whatever its provider. On SL_OK *out is a new map (free
 * with sl_price_map_free). SL_ERR_CONFIG: the file cannot be read, is not
 * JSON, or an entry has a wrong type or a negative price; why then says which
 * entry and field (never the path, the caller adds it). SL_ERR_NOMEM on OOM. */
int sl_price_map_load(const char *path, struct sl_price_map **out, char *why, size_t whylen);
void sl_price_map_free(struct sl_price_map *map);   /* accepts NULL */
size_t sl_price_map_count(const struct sl_price_map *map);

/* The table entry for a provider's model: exact name first, then the name
 * without a date or version suffix ("claude-sonnet-4-5-20250929",
 * "gpt-4o-2024-08-06", "...-v1:0"), then without a Bedrock region or vendor
 * prefix ("us.anthropic.claude-..."). NULL if unknown. */
const struct sl_price *sl_price_find(const char *provider, const char *model);

/* The same search with map (may be NULL) consulted first: "provider/model"
 * as one key, then at each step above the map's entry before the table's.
 * Borrowed from map or the table. */
const struct sl_price *sl_price_lookup(const struct sl_price_map *map, const char *provider,
                                       const char *model);

/* A deployment's price from map and the table, ignoring its own
 * input/output_cost_per_token: a zero price for self-hosted providers, else
 * model_info.base_model or the upstream model looked up. Called once per
 * deployment at config load (struct sl_deployment.price). Borrowed; NULL if
 * unknown. */
const struct sl_price *sl_price_resolve(const struct sl_price_map *map,
                                        const struct sl_deployment *d);

/* The cost of a call in USD: the deployment's own prices when it has them,
 * else d->price (resolved at config load; a deployment built by hand, with
 * price_resolved 0, is resolved against the table here). Sets *known to 0
 * (and returns 0) when the model has no price. Cached input tokens are part of prompt_tokens (OpenAI's meaning).
 * A model priced per unit adds u->units times its unit price. */
double sl_price_cost(const struct sl_deployment *d, const struct sl_usage *u, int *known);

#endif

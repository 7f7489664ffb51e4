/* The price table and the cost of a call (providers/prices.c). */
#include <string.h>
#include <jansson.h>

#include "config.h"
#include "prices.h"
#include "provider.h"
#include "request.h"
#include "tap.h"

static int near(double a, double b)
{
    double d = a > b ? a - b : b - a;

    return d <= 1e-12 + 1e-9 * (b > 0 ? b : -b);
}

static void finds(const char *provider, const char *model, const char *want)
{
    const struct sl_price *p = sl_price_find(provider, model);
    char name[256];

    snprintf(name, sizeof(name), "%s/%s -> %s", provider, model, want ? want : "(unknown)");
    if (want == NULL)
        ok(p == NULL, name);
    else if (!ok(p != NULL && strcmp(p->model, want) == 0, name))
        printf("#   got %s\n", p ? p->model : "(null)");
}

int main(void)
{
    struct sl_deployment d;
    struct sl_usage u = { .prompt_tokens = 1000, .completion_tokens = 200, .total_tokens = 1200, .seen = 1 };
    int known;
    double c;

    finds("openai", "gpt-4o", "gpt-4o");
    finds("openai", "gpt-4o-mini", "gpt-4o-mini");
    finds("openai", "gpt-4o-2024-08-06", "gpt-4o");
    finds("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5");
    finds("vertex_ai", "claude-3-5-haiku@20241022", "claude-3-5-haiku");
    finds("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku");
    finds("bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4");
    finds("bedrock", "amazon.nova-pro-v1:0", "nova-pro");
    finds("openrouter", "openai/gpt-4.1-mini", "gpt-4.1-mini");
    finds("mistral", "mistral-small-latest", "mistral-small-latest");
    finds("moonshot", "kimi-k2-0905-preview", "kimi-k2-0905-preview");
    finds("groq", "gpt-4o-nonexistent", NULL);
    finds("mistral", "deepseek-chat", NULL);        /* priced for deepseek/ only */
    finds("openai", "my-finetune", NULL);

    memset(&d, 0, sizeof(d));
    d.provider = sl_provider_find("openai");
    d.upstream_model = "gpt-4o-mini";
    d.model_info = json_object();
    c = sl_price_cost(&d, &u, &known);
    ok(known && near(c, (1000 * 0.15 + 200 * 0.60) / 1e6), "gpt-4o-mini: table prices");

    u.cached_tokens = 400;
    c = sl_price_cost(&d, &u, &known);
    ok(known && near(c, (600 * 0.15 + 400 * 0.075 + 200 * 0.60) / 1e6), "cached input at the cache price");
    u.cached_tokens = 0;

    d.provider = sl_provider_find("anthropic");
    d.upstream_model = "claude-haiku-4-5-20251001";
    u.cache_write_tokens = 100;
    u.cached_tokens = 300;
    c = sl_price_cost(&d, &u, &known);
    ok(known && near(c, (600 * 1.0 + 300 * 0.10 + 100 * 1.25 + 200 * 5.0) / 1e6),
       "anthropic: cache reads and writes priced apart");
    u.cache_write_tokens = u.cached_tokens = 0;

    d.input_cost_per_token = 1e-6;
    d.output_cost_per_token = 2e-6;
    c = sl_price_cost(&d, &u, &known);
    ok(known && near(c, 1000 * 1e-6 + 200 * 2e-6), "the deployment's own prices win");
    d.input_cost_per_token = d.output_cost_per_token = 0;

    d.provider = sl_provider_find("azure");
    d.upstream_model = "my-prod-deployment";
    c = sl_price_cost(&d, &u, &known);
    ok(!known && c == 0, "an azure deployment name alone is not priced");
    json_object_set_new(d.model_info, "base_model", json_string("gpt-4o"));
    c = sl_price_cost(&d, &u, &known);
    ok(known && near(c, (1000 * 2.5 + 200 * 10.0) / 1e6), "model_info.base_model prices it");

    d.provider = sl_provider_find("ollama");
    d.upstream_model = "llama3.2";
    c = sl_price_cost(&d, &u, &known);
    ok(known && c == 0, "self-hosted models cost nothing");

    json_decref(d.model_info);
    return tap_done();
}

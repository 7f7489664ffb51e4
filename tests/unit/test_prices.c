/* The price table, the operator's price file (LiteLLM's
 * model_prices_and_context_window.json format: parsing, errors, precedence,
 * sluice_settings.model_cost_map and $SLUICE_MODEL_COST_MAP in a config
 * load) and the cost of a call (providers/prices.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* mkdtemp, setenv */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "buf.h"
#include "config.h"
#include "prices.h"
#include "provider.h"
#include "request.h"
#include "status.h"
#include "tap.h"

static char dir[512];      /* a fresh temp directory for the files below */
static char path_buf[640];

/* Writes text to name in dir; returns the full path (static buffer). */
static const char *put(const char *name, const char *text)
{
    FILE *f;

    snprintf(path_buf, sizeof(path_buf), "%s/%s", dir, name);
    if ((f = fopen(path_buf, "w")) == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        printf("Bail out! cannot write %s\n", path_buf);
        exit(1);
    }
    return path_buf;
}

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

/* Made-up prices, chosen to differ from the built-in table's. */
static const char good_file[] =
    "{\n"
    "  \"sample_spec\": {\"input_cost_per_token\": \"price per input token\",\n"
    "                  \"max_tokens\": \"legacy\", \"mode\": \"one of chat, embedding\"},\n"
    "  \"gpt-4o\": {\"input_cost_per_token\": 5e-06, \"output_cost_per_token\": 2e-05,\n"
    "             \"cache_read_input_token_cost\": 1e-06, \"input_cost_per_token_batches\": 2.5e-06,\n"
    "             \"output_cost_per_reasoning_token\": 2e-05, \"max_tokens\": 16384,\n"
    "             \"max_input_tokens\": 128000, \"max_output_tokens\": 16384,\n"
    "             \"litellm_provider\": \"openai\", \"mode\": \"chat\",\n"
    "             \"supports_vision\": true, \"supported_endpoints\": [\"/v1/chat/completions\"]},\n"
    "  \"azure/gpt-4o\": {\"input_cost_per_token\": 7e-06, \"output_cost_per_token\": 3e-05,\n"
    "                   \"litellm_provider\": \"azure\", \"mode\": \"chat\"},\n"
    "  \"house-model-7b\": {\"input_cost_per_token\": 1e-07, \"output_cost_per_token\": 4e-07,\n"
    "                     \"cache_creation_input_token_cost\": 2e-07, \"mode\": \"chat\"},\n"
    "  \"house-embed\": {\"input_cost_per_token\": 3e-08, \"mode\": \"embedding\", \"litellm_provider\": null},\n"
    "  \"llama3.2\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 1e-06},\n"
    "  \"image-maker\": {\"output_cost_per_image\": 0.04, \"mode\": \"image_generation\"},\n"
    "  \"house-voice\": {\"input_cost_per_character\": 1e-05, \"mode\": \"audio_speech\"},\n"
    "  \"house-ears\": {\"input_cost_per_second\": 0.0002, \"mode\": \"audio_transcription\"},\n"
    "  \"house-rank\": {\"input_cost_per_query\": 0.001, \"mode\": \"rerank\"},\n"
    "  \"video-maker\": {\"output_cost_per_video_per_second\": 0.1}\n"
    "}\n";

static void map_has(const struct sl_price_map *m, const char *provider, const char *model,
                    const char *want, double input)
{
    const struct sl_price *p = sl_price_lookup(m, provider, model);
    char name[256];

    snprintf(name, sizeof(name), "file: %s/%s -> %s at %g", provider, model, want, input);
    if (!ok(p != NULL && strcmp(p->model, want) == 0 && near(p->input, input), name))
        printf("#   got %s at %g\n", p ? p->model : "(null)", p ? p->input : 0.0);
}

static void test_map_parse(void)
{
    struct sl_price_map *m = NULL;
    char why[320] = "";
    int rc = sl_price_map_load(put("good.json", good_file), &m, why, sizeof(why));
    const struct sl_price *p;

    if (!ok(rc == SL_OK && m != NULL, "a LiteLLM-format price file loads"))
        printf("#   %s\n", why);
    is_int(sl_price_map_count(m), 9, "priced entries kept (per token or per unit); sample_spec and others skipped");
    map_has(m, "openai", "gpt-4o", "gpt-4o", 5.0);
    map_has(m, "openai", "gpt-4o-2024-08-06", "gpt-4o", 5.0);   /* the same suffix rules */
    map_has(m, "openrouter", "openai/gpt-4o", "gpt-4o", 5.0);
    map_has(m, "azure", "gpt-4o", "azure/gpt-4o", 7.0);          /* "provider/model" key first */
    map_has(m, "groq", "house-model-7b", "house-model-7b", 0.1); /* any provider */
    map_has(m, "openai", "gpt-4o-mini", "gpt-4o-mini", 0.15);    /* not in the file: the table */
    p = sl_price_lookup(m, "openai", "gpt-4o");
    ok(p && near(p->output, 20.0) && near(p->cache_read, 1.0) && p->cache_write == 0,
       "file: per-token prices become per-million; absent cache price 0");
    p = sl_price_lookup(m, "openai", "house-embed");
    ok(p && near(p->input, 0.03) && p->output == 0, "file: an embedding entry (input price only)");
    p = sl_price_lookup(m, "openai", "image-maker");
    ok(p && p->unit == SL_UNIT_IMAGE && near(p->per_unit, 0.04) && p->input == 0, "file: a price per image");
    p = sl_price_lookup(m, "openai", "house-voice");
    ok(p && p->unit == SL_UNIT_CHARACTER && near(p->per_unit, 1e-5), "file: a price per character");
    p = sl_price_lookup(m, "openai", "house-ears");
    ok(p && p->unit == SL_UNIT_SECOND && near(p->per_unit, 0.0002), "file: a price per second");
    p = sl_price_lookup(m, "cohere", "house-rank");
    ok(p && p->unit == SL_UNIT_QUERY && near(p->per_unit, 0.001), "file: a price per query");
    ok(sl_price_lookup(m, "openai", "video-maker") == NULL, "file: an entry priced in no unit sluice counts is skipped");
    ok(sl_price_lookup(m, "openai", "house-model") == NULL, "file: no prefix match of a name");
    p = sl_price_find("openai", "gpt-4o");
    ok(p && near(p->input, 2.5), "the built-in table itself is unchanged");
    sl_price_map_free(m);
    sl_price_map_free(NULL);
    is_int(sl_price_map_count(NULL), 0, "no map: no entries");
}

/* A bad file: SL_ERR_CONFIG, no map, and why names the entry and field. */
static void map_bad(const char *text, const char *want, const char *name)
{
    struct sl_price_map *m = (struct sl_price_map *)&m;
    char why[320] = "";
    int rc = sl_price_map_load(put("bad.json", text), &m, why, sizeof(why));

    if (!ok(rc == SL_ERR_CONFIG && m == NULL && strstr(why, want) != NULL, name))
        printf("#   rc %d, why \"%s\", want \"%s\"\n", rc, why, want);
}

static void test_map_errors(void)
{
    struct sl_price_map *m = NULL;
    char why[320] = "", missing[700];

    snprintf(missing, sizeof(missing), "%s/no-such-file.json", dir);
    is_int(sl_price_map_load(missing, &m, why, sizeof(why)), SL_ERR_CONFIG, "missing file: error");
    ok(strstr(why, "cannot open") != NULL && m == NULL, "missing file: says so");
    is_int(sl_price_map_load(dir, &m, why, sizeof(why)), SL_ERR_CONFIG, "a directory: error");
    map_bad("{\"gpt-4o\": {\"input_cost_per_token\": 1e-6,}}", "not JSON: line 1", "not JSON");
    map_bad("", "not JSON", "empty file");
    map_bad("[{\"input_cost_per_token\": 1e-6}]", "expected an object keyed by model name, got an array",
            "a list instead of an object");
    map_bad("{\"gpt-4o\": 0.5}", "entry \"gpt-4o\": expected an object, got a number",
            "an entry that is not an object");
    map_bad("{\"ok\": {\"input_cost_per_token\": 1e-6},\n \"m-neg\": {\"input_cost_per_token\": -1e-6}}",
            "entry \"m-neg\": input_cost_per_token: expected a price per token >= 0, got a negative",
            "a negative price");
    map_bad("{\"m-str\": {\"output_cost_per_token\": \"0.00001\"}}",
            "entry \"m-str\": output_cost_per_token: expected a price per token >= 0, got a string",
            "a price as a string");
    map_bad("{\"m-cache\": {\"input_cost_per_token\": 1e-6, \"cache_read_input_token_cost\": -0.1}}",
            "entry \"m-cache\": cache_read_input_token_cost", "a negative cache price");
    map_bad("{\"m-reason\": {\"input_cost_per_token\": 1e-6, \"output_cost_per_reasoning_token\": true}}",
            "entry \"m-reason\": output_cost_per_reasoning_token: expected a price per token >= 0, got a boolean",
            "a reasoning price of the wrong type");
    map_bad("{\"m-max\": {\"input_cost_per_token\": 1e-6, \"max_tokens\": -1}}",
            "entry \"m-max\": max_tokens: expected a token count >= 0", "a negative max_tokens");
    map_bad("{\"m-mode\": {\"input_cost_per_token\": 1e-6, \"mode\": 1}}",
            "entry \"m-mode\": mode: expected a string, got a number", "mode not a string");
    map_bad("{\"m-prov\": {\"input_cost_per_token\": 1e-6, \"litellm_provider\": [\"x\"]}}",
            "entry \"m-prov\": litellm_provider: expected a string, got an array",
            "litellm_provider not a string");
    map_bad("{\"\": {\"input_cost_per_token\": 1e-6}}", "empty model name", "an empty model name");
}

/* Deployment prices > the file's > the table's; self-hosted stays free. */
static void test_precedence(void)
{
    struct sl_price_map *m = NULL;
    struct sl_deployment d;
    struct sl_usage u = { .prompt_tokens = 1000, .completion_tokens = 200, .cached_tokens = 400,
                          .total_tokens = 1200, .seen = 1 };
    char why[320];
    double c;
    int known;

    sl_price_map_load(put("good.json", good_file), &m, why, sizeof(why));
    memset(&d, 0, sizeof(d));
    d.model_info = json_object();
    d.provider = sl_provider_find("openai");
    d.upstream_model = "gpt-4o";
    d.price = sl_price_resolve(m, &d);
    d.price_resolved = 1;
    c = sl_price_cost(&d, &u, &known);
    ok(known && near(c, (600 * 5.0 + 400 * 1.0 + 200 * 20.0) / 1e6), "the file's price beats the table's");

    d.input_cost_per_token = 1e-6;
    d.output_cost_per_token = 2e-6;
    c = sl_price_cost(&d, &u, &known);
    ok(known && near(c, 1000 * 1e-6 + 200 * 2e-6), "the deployment's own prices beat the file's");
    d.input_cost_per_token = d.output_cost_per_token = 0;

    d.upstream_model = "house-model-7b";
    d.price = sl_price_resolve(NULL, &d);
    c = sl_price_cost(&d, &u, &known);
    ok(!known && c == 0, "house-model-7b: unknown without the file");
    d.price = sl_price_resolve(m, &d);
    c = sl_price_cost(&d, &u, &known);
    ok(known && near(c, (1000 * 0.1 + 200 * 0.4) / 1e6), "house-model-7b: priced by the file alone");

    {
        struct sl_usage units = { .units = 3, .seen = 1 };

        d.upstream_model = "image-maker";
        d.price = sl_price_resolve(m, &d);
        c = sl_price_cost(&d, &units, &known);
        ok(known && near(c, 3 * 0.04), "three images at the file's price per image");
        d.upstream_model = "whisper-1";
        d.price = sl_price_resolve(NULL, &d);
        units.units = 61;
        c = sl_price_cost(&d, &units, &known);
        ok(known && near(c, 61 * 0.0001), "61 seconds of whisper-1 from the table");
        d.upstream_model = "tts-1";
        d.price = sl_price_resolve(NULL, &d);
        units.units = 1000;
        c = sl_price_cost(&d, &units, &known);
        ok(known && near(c, 1000 * 0.000015), "1000 characters of tts-1 from the table");
    }

    d.provider = sl_provider_find("azure");
    d.upstream_model = "prod-4o";
    json_object_set_new(d.model_info, "base_model", json_string("gpt-4o"));
    d.price = sl_price_resolve(m, &d);
    u.cached_tokens = 0;
    c = sl_price_cost(&d, &u, &known);
    ok(known && near(c, (1000 * 7.0 + 200 * 30.0) / 1e6),
       "azure + base_model: the file's azure/gpt-4o entry");

    d.provider = sl_provider_find("ollama");
    d.upstream_model = "llama3.2";
    json_object_clear(d.model_info);
    d.price = sl_price_resolve(m, &d);
    c = sl_price_cost(&d, &u, &known);
    ok(known && c == 0, "a self-hosted model stays free even when the file prices its name");

    json_decref(d.model_info);
    sl_price_map_free(m);
}

/* sluice_settings.model_cost_map and $SLUICE_MODEL_COST_MAP in a config. */
static int load_cfg(const char *yaml, struct sl_config **c, struct sl_buf *msgs)
{
    sl_buf_init(msgs, 1u << 16);
    return sl_config_load(put("config.yaml", yaml), c, msgs);
}

static const struct sl_deployment *dep(const struct sl_config *c, const char *name)
{
    for (size_t i = 0; c != NULL && i < c->n_deployments; i++)
        if (strcmp(c->deployments[i].model_name, name) == 0)
            return &c->deployments[i];
    return NULL;
}

static void test_config(void)
{
    static const char models[] =
        "model_list:\n"
        "  - model_name: house\n"
        "    litellm_params: {model: openai/house-model-7b, api_key: sk-x}\n"
        "  - model_name: mini\n"
        "    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-x}\n"
        "  - model_name: own\n"
        "    litellm_params: {model: openai/house-model-7b, api_key: sk-x, input_cost_per_token: 0.5}\n";
    char yaml[2048];
    struct sl_config *c = NULL;
    struct sl_buf msgs;
    const struct sl_deployment *d;
    int rc;

    put("prices.json", good_file);
    unsetenv("SLUICE_MODEL_COST_MAP");
    snprintf(yaml, sizeof(yaml), "sluice_settings:\n  model_cost_map: prices.json\n%s", models);
    rc = load_cfg(yaml, &c, &msgs);
    if (!ok(rc == SL_OK, "config: model_cost_map relative to the config file loads"))
        printf("#   %s\n", msgs.len ? msgs.data : "");
    ok(c && c->model_cost_map && strstr(c->model_cost_map, dir) == c->model_cost_map,
       "config: the path is taken from the config file's directory");
    is_int(sl_price_map_count(c ? c->price_map : NULL), 9, "config: owns the file's prices");
    d = dep(c, "house");
    ok(d && d->price_resolved && d->price && near(d->price->input, 0.1),
       "config: a deployment's price is resolved at load, from the file");
    d = dep(c, "mini");
    ok(d && d->price && near(d->price->input, 0.15), "config: the table for what the file lacks");
    d = dep(c, "own");
    ok(d && d->input_cost_per_token == 0.5 && d->price && near(d->price->input, 0.1),
       "config: own price kept beside the resolved one (it wins in sl_price_cost)");
    sl_config_unref(c);
    sl_buf_free(&msgs);

    rc = load_cfg(models, &c, &msgs);
    d = dep(c, "house");
    ok(rc == SL_OK && c->price_map == NULL && d && d->price_resolved && d->price == NULL,
       "config: no setting, no variable: the table alone");
    sl_config_unref(c);
    sl_buf_free(&msgs);

    snprintf(yaml, sizeof(yaml), "%s/prices.json", dir);
    setenv("SLUICE_MODEL_COST_MAP", yaml, 1);
    rc = load_cfg(models, &c, &msgs);
    d = dep(c, "house");
    ok(rc == SL_OK && d && d->price && near(d->price->input, 0.1),
       "config: $SLUICE_MODEL_COST_MAP when the setting is absent");
    sl_config_unref(c);
    sl_buf_free(&msgs);
    snprintf(yaml, sizeof(yaml), "sluice_settings:\n  model_cost_map: \"\"\n%s", models);
    rc = load_cfg(yaml, &c, &msgs);
    ok(rc == SL_OK && c->price_map == NULL, "config: model_cost_map \"\" turns the variable off");
    sl_config_unref(c);
    sl_buf_free(&msgs);
    setenv("SLUICE_MODEL_COST_MAP", "missing.json", 1);
    rc = load_cfg(models, &c, &msgs);
    ok(rc == SL_ERR_CONFIG && c == NULL && strstr(msgs.data, "$SLUICE_MODEL_COST_MAP: ") &&
       strstr(msgs.data, "missing.json: cannot open"), "config: a bad $SLUICE_MODEL_COST_MAP is an error");
    sl_buf_free(&msgs);
    unsetenv("SLUICE_MODEL_COST_MAP");

    put("bad-prices.json", "{\"house-model-7b\": {\"input_cost_per_token\": -1}}");
    snprintf(yaml, sizeof(yaml), "sluice_settings:\n  model_cost_map: bad-prices.json\n%s", models);
    rc = load_cfg(yaml, &c, &msgs);
    if (!ok(rc == SL_ERR_CONFIG && c == NULL && strstr(msgs.data, "config.yaml:2:19: error: "
            "sluice_settings.model_cost_map: ") && strstr(msgs.data, "bad-prices.json: entry "
            "\"house-model-7b\": input_cost_per_token"), "config: a bad price file fails the load, "
            "naming setting, file and entry"))
        printf("#   %s\n", msgs.len ? msgs.data : "");
    sl_buf_free(&msgs);
    snprintf(yaml, sizeof(yaml), "sluice_settings:\n  model_cost_map: 12\n%s", models);
    rc = load_cfg(yaml, &c, &msgs);
    ok(rc == SL_ERR_CONFIG && strstr(msgs.data, "sluice_settings.model_cost_map: expected a string"),
       "config: model_cost_map must be a string");
    sl_buf_free(&msgs);
}

/* Jansson allocation failures at every point of a load: a failed load with
 * no map (ASan checks nothing leaks), then success. Jansson's parser reports
 * some allocation failures as syntax errors, so SL_ERR_CONFIG is allowed. */
static long alloc_budget = -1;

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

static void test_oom(void)
{
    const char *path = put("good.json", good_file);
    int bad = 0, points = 0, rc = SL_ERR_NOMEM;
    char why[320];

    json_set_alloc_funcs(failing_malloc, free);
    for (long n = 0; n < 10000 && rc != SL_OK; n++, points++) {
        struct sl_price_map *m = (struct sl_price_map *)&m;

        alloc_budget = n;
        rc = sl_price_map_load(path, &m, why, sizeof(why));
        bad += (rc != SL_OK && m != NULL) || (rc != SL_OK && rc != SL_ERR_NOMEM &&
                                             rc != SL_ERR_CONFIG);
        if (rc == SL_OK)
            sl_price_map_free(m);
    }
    alloc_budget = -1;
    json_set_alloc_funcs(malloc, free);
    ok(bad == 0 && rc == SL_OK && points > 10, "OOM in Jansson at every point: a failed load, then OK");
    printf("# %d allocation failure points tried\n", points - 1);
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

    {
        const char *t = getenv("TMPDIR");

        snprintf(dir, sizeof(dir), "%s/sl_prices_XXXXXX", t && *t ? t : "/tmp");
        if (mkdtemp(dir) == NULL) {
            printf("Bail out! mkdtemp\n");
            return 1;
        }
    }
    test_map_parse();
    test_map_errors();
    test_precedence();
    test_config();
    test_oom();
    {
        static const char *const files[] = { "good.json", "bad.json", "prices.json",
                                             "bad-prices.json", "config.yaml", NULL };

        for (size_t i = 0; files[i] != NULL; i++) {
            snprintf(path_buf, sizeof(path_buf), "%s/%s", dir, files[i]);
            unlink(path_buf);
        }
        rmdir(dir);
    }
    return tap_done();
}

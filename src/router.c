/* Model name -> deployment, after the key's own model aliases. The group's
 * deployments come in file order and this version takes the first; weighted shuffle, least-busy, retries,
 * fallbacks and cooldowns (issue: routing) replace that choice here without
 * changing the callers. */
#include "arena.h"
#include "auth.h"
#include "config.h"
#include "keys.h"
#include "request.h"
#include "router.h"
#include "status.h"

/* The model group a key's `aliases` ({"gpt-4": "my-gpt4-group"}) map the
 * requested name to (arena), or NULL. */
static const char *key_alias_target(struct sl_request *req)
{
    const struct sl_key *k = req->principal.key;
    json_t *aliases;
    const char *to = NULL, *v;

    if (k == NULL || k->aliases == NULL || req->model == NULL)
        return NULL;
    aliases = json_loads(k->aliases, 0, NULL);
    if ((v = json_string_value(json_object_get(aliases, req->model))) != NULL && *v != '\0')
        to = sl_arena_strdup(req->arena, v);
    json_decref(aliases);
    return to;
}

int sl_router_pick(struct sl_request *req)
{
    const struct sl_deployment *dep[1];
    const char *group = key_alias_target(req);

    req->stage = "route";
    if (group == NULL)
        group = req->model;
    if (sl_config_find_group(req->cfg, group, dep, 1) == 0) {
        req->err_msg = sl_arena_printf(req->arena,
            "Invalid model name passed in model=%.200s. Call `/v1/models` to view available models for your key.",
            req->model);
        return SL_ERR_UNKNOWN_MODEL;
    }
    /* A key may use its alias when it may use either name (LiteLLM checks
     * the name asked for). */
    if (!sl_auth_may_use_model(req, req->model) &&
        (group == req->model || !sl_auth_may_use_model(req, group)))
        return sl_auth_model_denied(req, req->model);
    req->dep = dep[0];
    req->model_group = group;
    return SL_OK;
}

/* Model name -> deployment. The group's deployments come in file order and
 * this version takes the first; weighted shuffle, least-busy, retries,
 * fallbacks and cooldowns (issue: routing) replace that choice here without
 * changing the callers. */
#include "arena.h"
#include "auth.h"
#include "config.h"
#include "request.h"
#include "router.h"
#include "status.h"

int sl_router_pick(struct sl_request *req)
{
    const struct sl_deployment *dep[1];

    req->stage = "route";
    if (sl_config_find_group(req->cfg, req->model, dep, 1) == 0) {
        req->err_msg = sl_arena_printf(req->arena,
            "Invalid model name passed in model=%.200s. Call `/v1/models` to view available models for your key.",
            req->model);
        return SL_ERR_UNKNOWN_MODEL;
    }
    if (!sl_auth_may_use_model(req, req->model))
        return sl_auth_model_denied(req, req->model);
    req->dep = dep[0];
    return SL_OK;
}

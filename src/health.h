/* GET /health: a cheap real call to each deployment, in parallel, and the
 * list of healthy and unhealthy ones in LiteLLM's shape. The route and who
 * may call it (the master key / proxy admins) are admin.c's business. */
#ifndef SL_HEALTH_H
#define SL_HEALTH_H

#include <jansson.h>

struct sl_request;

/* Probes the deployments of req->cfg (only the model group named model, or
 * the one deployment whose id is model_id, when given and non-empty) and
 * sets *out to {"healthy_endpoints": [...], "unhealthy_endpoints": [...],
 * "healthy_count": n, "unhealthy_count": m} (new reference). Each endpoint
 * is the deployment's litellm_params without secrets, plus model_name and
 * model_id; an unhealthy one also carries "error". Probes make no spend
 * record and do not touch the router's state. Returns within the largest
 * probe time-out plus about a second. SL_ERR_NOT_FOUND (req->err_msg set)
 * when model or model_id matches no deployment, SL_ERR_NOMEM on OOM. */
int sl_health_check(struct sl_request *req, const char *model, const char *model_id,
                    json_t **out);

#endif

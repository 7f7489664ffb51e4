/* Routing: the requested model name -> one deployment of its model group.
 * This first version takes the deployments in file order (weighted shuffle,
 * retries, fallbacks and cooldowns build on it). */
#ifndef SL_ROUTER_H
#define SL_ROUTER_H

struct sl_request;

/* Sets req->dep for req->model. SL_OK, SL_ERR_UNKNOWN_MODEL (req->err_msg set),
 * or SL_ERR_FORBIDDEN if the caller may not use that model. */
int sl_router_pick(struct sl_request *req);

#endif

/* The management API, LiteLLM's /key/... routes: generate, info, list,
 * update, delete, block, unblock, regenerate. Only the master key (role
 * admin) may call them; a virtual key may read /key/info about itself. The
 * rows themselves are keystore.c's business. */
#ifndef SL_ADMIN_H
#define SL_ADMIN_H

struct sl_request;

/* Whether path (no query string, no trailing '/') is a management route. */
int sl_admin_is_route(const char *path);

/* Serves one management request: req->principal is set (sl_auth_check
 * passed) and, for POST, req->body holds the whole body. SL_OK once the
 * answer is sent; else a status with req->err_msg for the error envelope. */
int sl_admin_serve(struct sl_request *req);

#endif

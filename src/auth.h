/* Authentication: who is calling. Reads the key from Authorization: Bearer,
 * x-api-key, api-key or x-litellm-api-key, and checks it against the master key
 * (constant time). Virtual keys plug in behind sl_auth_check as another source
 * of principals; callers only see struct sl_principal. */
#ifndef SL_AUTH_H
#define SL_AUTH_H

struct sl_request;
struct sl_deployment;

enum sl_role {
    SL_ROLE_NONE = 0,    /* not authenticated */
    SL_ROLE_ADMIN,       /* the master key: every model, every route */
    SL_ROLE_KEY          /* a virtual key (later: allowlists, budgets) */
};

struct sl_principal {
    int  role;               /* enum sl_role */
    char key_hash[65];       /* SHA-256 hex of the presented key (LiteLLM's token) */
};

/* Authenticates req from its headers and fills req->principal.
 * SL_OK, or SL_ERR_AUTH with req->err_msg set (never containing the key). */
int sl_auth_check(struct sl_request *req);

/* Whether the principal may use the given model group. */
int sl_auth_may_use_model(const struct sl_request *req, const char *model_name);

/* SHA-256 hex of key into out (65 bytes). */
void sl_auth_hash_key(const char *key, char out[65]);

#endif

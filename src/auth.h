/* Authentication: who is calling. Reads the key from Authorization: Bearer,
 * x-api-key, api-key or x-litellm-api-key, and checks it against the master key
 * (constant time). Virtual keys plug in behind sl_auth_check as another source
 * of principals; callers only see struct sl_principal. */
#ifndef SL_AUTH_H
#define SL_AUTH_H

struct sl_request;
struct sl_deployment;
struct sl_key;

enum sl_role {
    SL_ROLE_NONE = 0,    /* not authenticated */
    SL_ROLE_ADMIN,       /* the master key: every model, every route */
    SL_ROLE_KEY          /* a virtual key (later: allowlists, budgets) */
};

struct sl_principal {
    int  role;               /* enum sl_role */
    char key_hash[65];       /* SHA-256 hex of the presented key (LiteLLM's token) */
    char display[16];        /* "sk-...wxyz": LiteLLM's abbreviation, for messages */
    const struct sl_key *key;   /* SL_ROLE_KEY: the key's snapshot (arena); else NULL */
};

/* Authenticates req from its headers and fills req->principal: the master
 * key (constant-time compare), else, with a database configured, a virtual
 * key (keys.h: cached lookup). SL_OK; SL_ERR_AUTH with req->err_msg (and
 * err_type for an expired key) set, never containing the key; or
 * SL_ERR_DB_UNAVAILABLE when the key cannot be checked (fail closed). */
int sl_auth_check(struct sl_request *req);

/* Whether the principal may use the given model group: the master key any;
 * a virtual key what both its own list and its team's allow (an empty list
 * allows any, as do "all-proxy-models" and "*"; "all-team-models" in the
 * key's list defers to the team's). */
int sl_auth_may_use_model(const struct sl_request *req, const char *model_name);

/* Sets LiteLLM's key_model_access_denied (or, when the key's own list
 * allows the model but its team's does not, team_model_access_denied)
 * error (401, param "model") for model_name on req; returns SL_ERR_AUTH. */
int sl_auth_model_denied(struct sl_request *req, const char *model_name);

/* SHA-256 hex of key into out (65 bytes). */
void sl_auth_hash_key(const char *key, char out[65]);

#endif

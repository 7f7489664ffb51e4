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
    SL_ROLE_KEY,         /* a virtual key: its models and budgets */
    SL_ROLE_USER         /* the web server's user with no key (trust_remote_user) */
};

struct sl_principal {
    int  role;               /* enum sl_role */
    char key_hash[65];       /* SHA-256 hex of the presented key (LiteLLM's token) */
    char display[16];        /* "sk-...wxyz": LiteLLM's abbreviation, for messages */
    const struct sl_key *key;   /* SL_ROLE_KEY: the key's snapshot; SL_ROLE_USER, or
                                 * SL_ROLE_ADMIN for a proxy_admin remote user: the
                                 * user's (== user); else NULL. Arena */
    const struct sl_key *user;  /* the web server's user (remote user), or NULL: its
                                 * models and user budget apply, spend is its (arena) */
};

/* Authenticates req from its headers and fills req->principal: the master
 * key (constant-time compare), else, with a database configured, a virtual
 * key (keys.h: cached lookup). With trust_remote_user, the user the web
 * server authenticated (remoteuser.h) is the principal when no key is
 * presented (SL_ROLE_USER; SL_ROLE_ADMIN when its user_role is
 * proxy_admin), and is added to a virtual key's principal as its user; the
 * master key ignores it. SL_OK; SL_ERR_AUTH with req->err_msg (and err_type
 * for an expired key) set, never containing the key; or
 * SL_ERR_DB_UNAVAILABLE when the key or user cannot be checked (fail
 * closed). */
int sl_auth_check(struct sl_request *req);

/* Whether the principal may use the given model group: the master key any;
 * a virtual key what both its own list and its team's allow (an empty list
 * allows any, as do "all-proxy-models" and "*"; "all-team-models" in the
 * key's list defers to the team's); a remote user likewise with its own
 * list and its team's; a key with a remote user what the key allows and the
 * user's own list too. */
int sl_auth_may_use_model(const struct sl_request *req, const char *model_name);

/* Sets LiteLLM's key_model_access_denied (or, when the key's own list
 * allows the model but its team's does not, team_model_access_denied; or,
 * when the remote user's list refuses it, user_model_access_denied) error
 * (401, param "model") for model_name on req; returns SL_ERR_AUTH. */
int sl_auth_model_denied(struct sl_request *req, const char *model_name);

/* SHA-256 hex of key into out (65 bytes). */
void sl_auth_hash_key(const char *key, char out[65]);

#endif

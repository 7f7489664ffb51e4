/* Virtual keys: what a key may do, looked up by its SHA-256 hash (LiteLLM's
 * "token") in LiteLLM_VerificationToken, cached per process and in
 * memcached so the database is not on the hot path. The management API
 * (admin.c) and sluicectl write keys; after every write they call
 * sl_keys_invalidate so no process serves a stale key for longer than the
 * cache's short TTL. */
#ifndef SL_KEYS_H
#define SL_KEYS_H

#include <stddef.h>

struct sl_request;
struct sl_config;

/* One spend limit a request counts against: the key's, its team's or its
 * user's. */
enum sl_budget_scope { SL_BUDGET_KEY, SL_BUDGET_TEAM, SL_BUDGET_USER, SL_BUDGET_SCOPES };

struct sl_budget {
    double spend;               /* USD, as the database last said */
    double max_budget;          /* < 0: no budget */
    long long reset_at_us;      /* budget_reset_at, Unix µs; 0: never */
    const char *duration;       /* budget_duration ("30d"), NULL: none */
};

/* What auth and enforcement need of one key, its team and its user (one
 * SELECT with joins); a snapshot, owned by the request's arena. */
struct sl_key {
    char token[65];             /* SHA-256 hex of the raw key */
    const char *key_alias;      /* NULL if none */
    const char *user_id;        /* NULL if none */
    const char *team_id;        /* NULL if none */
    const char *const *models;  /* NULL-terminated allowlist; NULL or empty: every model */
    size_t n_models;
    const char *const *team_models;   /* the team's allowlist, likewise (no team: empty) */
    size_t n_team_models;
    int blocked;
    int team_blocked;
    long long expires_us;       /* Unix time in µs; 0: never */
    struct sl_budget budget[SL_BUDGET_SCOPES];   /* no team/user row: max_budget < 0 */
    const char *aliases;              /* the key's model aliases as JSON text ({"gpt-4":
                                       * "my-gpt4-group"}); NULL: none */
    const char *model_max_budget;     /* the key's per-model budgets as JSON text
                                       * ({"gpt-4o": {"budget_limit": 0.5, "time_period":
                                       * "1d"}}); NULL: none */
    const char *model_rpm_limit;      /* the key's metadata.model_rpm_limit as JSON text
                                       * ({"gpt-4o": 10}); NULL: none */
    const char *model_tpm_limit;      /* metadata.model_tpm_limit, likewise */
    const char *guardrails;           /* the key's metadata.guardrails (JSON text), NULL: none */
    const char *team_guardrails;      /* the team's metadata.guardrails, likewise */
    long long tpm_limit, rpm_limit;   /* < 0: none */
    long max_parallel_requests;       /* < 0: none */
    struct sl_rate_limits {           /* the team's and the user's limits (ratelimit.c) */
        long long tpm_limit, rpm_limit;   /* < 0: none */
        long long max_parallel_requests;  /* < 0: none */
    } team_limits, user_limits;
    int remote_admin;                 /* a remote user's snapshot whose user_role is
                                       * proxy_admin (sl_keys_lookup_user) */
};

/* "sk-" + 16 random bytes from OpenSSL's CSPRNG in base64url (22 chars),
 * LiteLLM's form, into out (at least 32 bytes). SL_OK or SL_ERR_INTERNAL. */
int sl_keys_generate(char *out, size_t size);

/* LiteLLM's display name: "sk-..." + the last 4 characters. */
void sl_keys_display_name(const char *raw, char out[16]);

/* Looks the presented key up (req->principal.key_hash is set): process
 * cache, then memcached, then the database. SL_OK with *out filled (arena);
 * SL_ERR_AUTH when there is no such key (req->err_msg set, LiteLLM's words);
 * SL_ERR_DB_UNAVAILABLE when the key is not cached and the database cannot
 * answer (fail closed). */
int sl_keys_lookup(struct sl_request *req, struct sl_key *out);

/* The user the web server authenticated (name: its REMOTE_USER or
 * certificate field, see docs/remote-user.md) as a snapshot shaped like a
 * key's, cached like keys under a hash of "remote-user:" + name: the row of
 * LiteLLM_UserTable whose sso_user_id is name, else the one whose user_id is
 * name and that has no sso_user_id. A user not found is created first
 * (remoteuser.h: litellm_settings.default_internal_user_params). In *out:
 * token "" (no key budget), user_id, team_id (the row's team_id, else its
 * first team), models (the user's), team_models, team_blocked, the user and
 * team budgets, the limits, remote_admin. SL_OK; SL_ERR_AUTH when name
 * cannot be mapped (req->err_msg set); SL_ERR_DB_UNAVAILABLE when the user is
 * not cached and the database cannot answer (fail closed). */
int sl_keys_lookup_user(struct sl_request *req, const char *name, struct sl_key *out);

/* Forgets a key everywhere this process can reach: its own cache and
 * memcached (other processes then re-read it within their TTL). */
void sl_keys_invalidate(const struct sl_config *cfg, const char *token);

#endif

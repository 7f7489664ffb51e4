/* Key rows in LiteLLM_VerificationToken: the one place that reads and writes
 * them for the management API (admin.c) and sluicectl. Requests come in as
 * LiteLLM's JSON bodies (/key/generate, /key/update, ...) and answers go out
 * in LiteLLM's response shapes, so both front-ends share the validation, the
 * SQL and the output. Every statement goes through db.h with parameters;
 * column names come from a constant table here, never from a caller. Each
 * write calls sl_keys_invalidate for the tokens it touched. */
#ifndef SL_KEYSTORE_H
#define SL_KEYSTORE_H

#include <jansson.h>

struct sl_db;
struct sl_config;

/* Why a call failed: status is an sl_status (SL_ERR_BAD_REQUEST with msg
 * naming the field, SL_ERR_NOT_FOUND, SL_ERR_DB_UNAVAILABLE, SL_ERR_DB,
 * SL_ERR_NOMEM, SL_ERR_INTERNAL); msg is for the client (no secrets). */
struct sl_keystore_err {
    int status;
    char msg[512];
};

/* The token (SHA-256 hex) a caller means: a raw key ("sk-...") is hashed,
 * anything else is taken as the token already (LiteLLM's rule). */
void sl_keystore_token_of(const char *key_or_token, char out[65]);

/* "30s", "30m", "1h", "1d", "2w", "1mo": now_us plus that span (months are
 * calendar months, as LiteLLM counts them) into *out_us. SL_OK, or
 * SL_ERR_BAD_REQUEST for anything else. */
int sl_keystore_add_duration(const char *s, long long now_us, long long *out_us);

/* "2026-01-31T12:00:00.123456Z" (the fraction only when not zero) into out. */
void sl_keystore_iso_time(long long us, char out[40]);

/* POST /key/generate: validates body (a JSON object; borrowed), makes a key
 * (body's "key" if given, else sl_keys_generate), inserts the row (hash
 * only) and sets *out (new reference) to LiteLLM's response, with the raw
 * key in "key" (shown this once). actor (may be NULL) goes to created_by. */
int sl_keystore_generate(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                         const char *actor, json_t **out, struct sl_keystore_err *err);

/* The row of token as LiteLLM's key object (new reference in *out, with
 * "token"). SL_ERR_NOT_FOUND when there is none. */
int sl_keystore_get(struct sl_db *db, const char *token, json_t **out,
                    struct sl_keystore_err *err);

/* GET /key/list filters; NULL: any. page from 1, size 1..100. */
struct sl_keystore_filter {
    const char *user_id, *team_id, *key_alias;
    long page, size;
    int full;                     /* return_full_object: key objects, not tokens */
};

/* {keys, total_count, current_page, total_pages} into *out (new reference). */
int sl_keystore_list(struct sl_db *db, const struct sl_keystore_filter *f, json_t **out,
                     struct sl_keystore_err *err);

/* POST /key/update: body.key (raw or token) is required; the fields given
 * change, the others stay. *out: the updated key object plus "key" as given. */
int sl_keystore_update(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                       const char *actor, json_t **out, struct sl_keystore_err *err);

/* POST /key/delete: {"keys":[...]} or {"key_aliases":[...]}; all or none
 * (SL_ERR_NOT_FOUND naming the first missing one). *out:
 * {"deleted_keys":[...]} as given. */
int sl_keystore_delete(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                       json_t **out, struct sl_keystore_err *err);

/* POST /key/block, /key/unblock: *out is the key object after the change. */
int sl_keystore_set_blocked(struct sl_db *db, const struct sl_config *cfg, const char *key,
                            int blocked, json_t **out, struct sl_keystore_err *err);

/* POST /key/regenerate: a new raw key (body.new_key if given) replaces the
 * old one in the same row (spend, limits, alias stay); the fields of
 * /key/update may change at the same time. The old key stops working at
 * once (no grace period). *out: LiteLLM's generate response for the new key. */
int sl_keystore_regenerate(struct sl_db *db, const struct sl_config *cfg, const char *key,
                           const json_t *body, const char *actor, json_t **out,
                           struct sl_keystore_err *err);

#endif

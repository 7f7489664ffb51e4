/* Team and user rows (LiteLLM_TeamTable, LiteLLM_UserTable,
 * LiteLLM_TeamMembership): the one place that reads and writes them for the
 * management API (admin.c: /team/... and /user/...) and sluicectl. Like
 * keystore.h: LiteLLM's JSON bodies in, LiteLLM's response shapes out, every
 * statement through db.h with parameters, column names only from constant
 * tables. Errors use struct sl_keystore_err (status and a message naming the
 * field for a 400). Deleting a team or a user deletes its keys too, as
 * LiteLLM does, and drops them from the key cache. */
#ifndef SL_TEAMSTORE_H
#define SL_TEAMSTORE_H

#include <jansson.h>

#include "keystore.h"

struct sl_db;
struct sl_config;

/* POST /team/new: *out is the team object. team_id is generated (a UUID)
 * when absent; members_with_roles ([{user_id, user_email, role}]) are added
 * as by /team/member_add. */
int sl_teamstore_team_new(struct sl_db *db, const json_t *body, json_t **out,
                          struct sl_keystore_err *err);
/* POST /team/update: team_id required. *out: {"team_id", "data": team}. */
int sl_teamstore_team_update(struct sl_db *db, const json_t *body, json_t **out,
                             struct sl_keystore_err *err);
/* POST /team/delete {"team_ids": [...]}: all or none (404 naming the first
 * missing one); the teams' keys and memberships go too. *out:
 * {"deleted_teams": [...]}. */
int sl_teamstore_team_delete(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                             json_t **out, struct sl_keystore_err *err);
/* GET /team/info: {"team_id", "team_info", "keys", "team_memberships"}. */
int sl_teamstore_team_info(struct sl_db *db, const char *team_id, json_t **out,
                           struct sl_keystore_err *err);
/* GET /team/list: an array of team objects (user_id: only its teams; may be
 * NULL). */
int sl_teamstore_team_list(struct sl_db *db, const char *user_id, json_t **out,
                           struct sl_keystore_err *err);
/* POST /team/member_add {"team_id", "member": {...} or [...]}: users are
 * created when missing. *out: the team object plus "updated_users" and
 * "updated_team_memberships". */
int sl_teamstore_member_add(struct sl_db *db, const json_t *body, json_t **out,
                            struct sl_keystore_err *err);
/* POST /team/member_delete {"team_id", "user_id" or "user_email"}: *out is
 * the team object after. */
int sl_teamstore_member_delete(struct sl_db *db, const json_t *body, json_t **out,
                               struct sl_keystore_err *err);

/* POST /user/new: user_id generated when absent; "teams" adds the user to
 * each (existing) team; a key for the user is made unless auto_create_key
 * is false. *out: the user object plus "key", "token", "key_name",
 * "expires" when a key was made. actor goes to the key's created_by. */
int sl_teamstore_user_new(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                          const char *actor, json_t **out, struct sl_keystore_err *err);
/* POST /user/update: user_id (or user_email) required. *out:
 * {"user_id", "data": user}. */
int sl_teamstore_user_update(struct sl_db *db, const json_t *body, json_t **out,
                             struct sl_keystore_err *err);
/* POST /user/delete {"user_ids": [...]}: all or none; the users' keys and
 * memberships go too. *out: {"deleted_users": [...]}. */
int sl_teamstore_user_delete(struct sl_db *db, const struct sl_config *cfg, const json_t *body,
                             json_t **out, struct sl_keystore_err *err);
/* GET /user/info: {"user_id", "user_info", "keys", "teams"}. */
int sl_teamstore_user_info(struct sl_db *db, const char *user_id, json_t **out,
                           struct sl_keystore_err *err);
/* GET /user/list: {"users", "total", "page", "page_size", "total_pages"};
 * role and team_id filter (NULL: any). */
int sl_teamstore_user_list(struct sl_db *db, const char *role, const char *team_id, long page,
                           long page_size, json_t **out, struct sl_keystore_err *err);

/* /key/generate with a team_id: the team must exist (400 otherwise) and,
 * when the team lists models, the key's models must be among them (400
 * naming the first that is not). SL_OK when body has no team_id. */
int sl_teamstore_check_key_team(struct sl_db *db, const json_t *body,
                                struct sl_keystore_err *err);

#endif

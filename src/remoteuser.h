/* The web server's own authentication (general_settings.trust_remote_user):
 * which user the web server vouches for, and that user's row made on first
 * sight. auth.c turns the user into a principal; keys.c looks it up and
 * caches it like a key. See docs/remote-user.md. */
#ifndef SL_REMOTEUSER_H
#define SL_REMOTEUSER_H

struct sl_request;
struct sl_db;

/* The name the web server authenticated: the FastCGI param
 * general_settings.remote_user_param (REMOTE_USER), when trust_remote_user
 * is on and the param is set and not empty; else NULL. Never a request
 * header: the config refuses HTTP_* names. Borrowed from the connection. */
const char *sl_remoteuser_name(const struct sl_request *req);

/* Creates the user name in one transaction, as LiteLLM creates a user at its
 * first SSO sign-in: user_id = sso_user_id = name, with
 * litellm_settings.default_internal_user_params (user_role, max_budget,
 * budget_duration and budget_reset_at from it, models), and a member of each
 * of its teams that exists (team_id is the first). Nothing happens when
 * another request created it first. SL_OK, or the database's status
 * (logged). */
int sl_remoteuser_create(struct sl_request *req, struct sl_db *db, const char *name);

#endif

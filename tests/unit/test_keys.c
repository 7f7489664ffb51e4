/* Virtual keys without a database: the generated key's form (LiteLLM's
 * "sk-" + token_urlsafe(16)), the display name, the model allowlist rules,
 * and LiteLLM's words for a denied model and an exhausted budget. */
#include <string.h>

#include "arena.h"
#include "auth.h"
#include "budget.h"
#include "config.h"
#include "keys.h"
#include "memconn.h"
#include "remoteuser.h"
#include "request.h"
#include "status.h"
#include "tap.h"

static int urlsafe(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return 0;
    return 1;
}

/* The web server's user (trust_remote_user): alone, its own models, team
 * and budgets; with a key, its model list and user budget on top of the
 * key's. The snapshot has no token, so the key budget scope is skipped. */
static void test_remote_user(void)
{
    const char *mine[] = { "m1", NULL };
    const char *params[] = { "HTTP_REMOTE_USER", "mallory", "REMOTE_USER", "", NULL };
    struct memconn m = { .params = params };
    struct sl_config cfg;
    struct sl_request req;
    struct sl_key u, k;

    memset(&req, 0, sizeof(req));
    memset(&u, 0, sizeof(u));
    memset(&k, 0, sizeof(k));
    memset(&cfg, 0, sizeof(cfg));
    req.arena = sl_arena_create(1u << 16);

    /* whose name: only the configured param, only when trusted */
    cfg.remote_user_param = "REMOTE_USER";
    req.cfg = &cfg;
    req.conn.ops = &memconn_ops;
    req.conn.ctx = &m;
    params[3] = "alice";
    ok(sl_remoteuser_name(&req) == NULL, "trust_remote_user off: nobody, REMOTE_USER or not");
    cfg.trust_remote_user = 1;
    is_str(sl_remoteuser_name(&req), "alice", "trusted: REMOTE_USER");
    params[3] = "";
    ok(sl_remoteuser_name(&req) == NULL, "an empty REMOTE_USER is nobody, whatever the headers say");
    cfg.remote_user_param = "SSL_CLIENT_S_DN_CN";
    params[2] = "SSL_CLIENT_S_DN_CN";
    params[3] = "bob";
    is_str(sl_remoteuser_name(&req), "bob", "remote_user_param names another param");
    req.cfg = NULL;
    for (int i = 0; i < SL_BUDGET_SCOPES; i++)
        u.budget[i].max_budget = k.budget[i].max_budget = -1;
    u.user_id = "alice";
    u.team_id = "t-users";
    u.models = mine;
    u.n_models = 1;
    req.principal.role = SL_ROLE_USER;
    req.principal.key = req.principal.user = &u;
    ok(sl_auth_may_use_model(&req, "m1"), "remote user: a model of its list");
    ok(!sl_auth_may_use_model(&req, "m2"), "remote user: not another");
    sl_auth_model_denied(&req, "m2");
    is_str(req.err_msg, "user not allowed to access model. This user can only access "
           "models=['m1']. Tried to access m2", "remote user denied: the user's list");
    is_str(req.err_type, "user_model_access_denied", "remote user denied: type");

    u.budget[SL_BUDGET_KEY].max_budget = 0;        /* no token: never applied */
    is_int(sl_budget_admit(&req), SL_OK, "remote user: no key budget without a key");
    sl_budget_settle(&req);
    u.budget[SL_BUDGET_USER].spend = 5;
    u.budget[SL_BUDGET_USER].max_budget = 4;
    is_int(sl_budget_admit(&req), SL_ERR_BAD_REQUEST,
           "remote user over its budget: 400, though it has a team");
    is_str(req.err_msg, "ExceededBudget: User=alice over budget. Spend=5.0, Budget=4.0",
           "remote user: LiteLLM's message");

    req.principal.role = SL_ROLE_ADMIN;            /* user_role proxy_admin */
    ok(sl_auth_may_use_model(&req, "m2"), "proxy_admin remote user: every model");
    is_int(sl_budget_admit(&req), SL_ERR_BAD_REQUEST, "... but its own budget still holds");

    memcpy(k.token, "rk1", 4);                     /* a key with a remote user */
    k.user_id = "bob";
    req.principal.role = SL_ROLE_KEY;
    req.principal.key = &k;
    ok(!sl_auth_may_use_model(&req, "m2"), "key + remote user: the user's list applies too");
    sl_auth_model_denied(&req, "m2");
    is_str(req.err_type, "user_model_access_denied", "key + remote user: denied by the user");
    ok(sl_auth_may_use_model(&req, "m1"), "key + remote user: a model both allow");
    req.err_msg = NULL;
    is_int(sl_budget_admit(&req), SL_ERR_BAD_REQUEST, "key + remote user: the user's budget");
    is_str(req.err_msg, "ExceededBudget: User=alice over budget. Spend=5.0, Budget=4.0",
           "key + remote user: the remote user's, not the key owner's");
    u.budget[SL_BUDGET_USER].max_budget = -1;
    is_int(sl_budget_admit(&req), SL_OK, "key + remote user: within both");
    sl_budget_settle(&req);
    sl_arena_free(req.arena);
}

int main(void)
{
    char a[32], b[32], small[10], name[16];
    struct sl_request req;
    struct sl_key key;
    const char *models[] = { "gpt-4o-mini", "claude", NULL };
    const char *any[] = { "all-proxy-models", NULL };
    int rc;

    tap_private_tmpdir();
    /* generate */
    is_int(sl_keys_generate(a, sizeof(a)), SL_OK, "generate");
    is_int(sl_keys_generate(b, sizeof(b)), SL_OK, "generate again");
    is_int((long)strlen(a), 25, "25 characters, as LiteLLM's");
    ok(strncmp(a, "sk-", 3) == 0, "starts with sk-");
    ok(urlsafe(a + 3), "base64url after the prefix");
    ok(strcmp(a, b) != 0, "two keys differ");
    is_int(sl_keys_generate(small, sizeof(small)), SL_ERR_INTERNAL, "a buffer too small is refused");

    /* display name */
    sl_keys_display_name("sk-abcdefghijWXYZ", name);
    is_str(name, "sk-...WXYZ", "display name: sk-... and the last 4");
    sl_keys_display_name("abc", name);
    is_str(name, "sk-...abc", "a short key is shown whole after the prefix");
    sl_keys_display_name(a, name);
    ok(strlen(name) == 10 && strcmp(name + 6, a + 21) == 0, "display name of a generated key");

    /* model access */
    memset(&req, 0, sizeof(req));
    memset(&key, 0, sizeof(key));
    req.arena = sl_arena_create(1u << 16);
    ok(!sl_auth_may_use_model(&req, "gpt-4o-mini"), "no principal: no model");
    req.principal.role = SL_ROLE_ADMIN;
    ok(sl_auth_may_use_model(&req, "anything"), "the master key: every model");
    req.principal.role = SL_ROLE_KEY;
    req.principal.key = &key;
    for (int i = 0; i < SL_BUDGET_SCOPES; i++)
        key.budget[i].max_budget = -1;
    ok(sl_auth_may_use_model(&req, "anything"), "a key without models: every model");
    key.models = models;
    key.n_models = 2;
    ok(sl_auth_may_use_model(&req, "claude"), "a listed model");
    ok(!sl_auth_may_use_model(&req, "gpt-4o"), "an unlisted model");
    rc = sl_auth_model_denied(&req, "gpt-4o");
    is_int(rc, SL_ERR_AUTH, "denied: 401");
    is_str(req.err_msg, "key not allowed to access model. This key can only access "
           "models=['gpt-4o-mini', 'claude']. Tried to access gpt-4o", "denied: LiteLLM's message");
    is_str(req.err_type, "key_model_access_denied", "denied: type");
    is_str(req.err_param, "model", "denied: param");
    key.models = any;
    key.n_models = 1;
    ok(sl_auth_may_use_model(&req, "gpt-4o"), "all-proxy-models: every model");

    /* the team's list */
    {
        const char *team_models[] = { "claude", NULL };
        const char *team_all[] = { "all-team-models", NULL };

        key.models = NULL;
        key.n_models = 0;
        key.team_id = "t1";
        key.team_models = team_models;
        key.n_team_models = 1;
        ok(sl_auth_may_use_model(&req, "claude"), "a key without models: the team's list");
        ok(!sl_auth_may_use_model(&req, "gpt-4o"), "... which does not have gpt-4o");
        sl_auth_model_denied(&req, "gpt-4o");
        is_str(req.err_msg, "team not allowed to access model. This team can only access "
               "models=['claude']. Tried to access gpt-4o", "team denied: LiteLLM's message");
        is_str(req.err_type, "team_model_access_denied", "team denied: type");
        key.models = team_all;
        key.n_models = 1;
        ok(sl_auth_may_use_model(&req, "claude"), "all-team-models: the team's models");
        ok(!sl_auth_may_use_model(&req, "gpt-4o"), "all-team-models: only those");
        key.models = models;
        key.n_models = 2;
        ok(!sl_auth_may_use_model(&req, "gpt-4o-mini"), "key allows, team does not: denied");
        sl_auth_model_denied(&req, "gpt-4o-mini");
        is_str(req.err_type, "team_model_access_denied", "... by the team");
        key.team_models = NULL;
        key.n_team_models = 0;
        key.team_id = NULL;
    }

    /* budgets (no memcached: the process's counters; each case its own key) */
    for (int i = 0; i < SL_BUDGET_SCOPES; i++)
        key.budget[i].max_budget = -1;
    req.err_msg = NULL;
    req.err_type = NULL;
    memcpy(key.token, "a1", 3);
    is_int(sl_budget_admit(&req), SL_OK, "no budget: admitted");
    key.budget[0].spend = 0.1;
    key.budget[0].max_budget = 0.25;
    is_int(sl_budget_admit(&req), SL_OK, "under budget: admitted");
    sl_budget_settle(&req);
    memcpy(key.token, "a2", 3);
    key.budget[0].spend = 26.075;
    is_int(sl_budget_admit(&req), SL_ERR_BAD_REQUEST, "over budget: 400");
    is_str(req.err_msg, "Budget has been exceeded! Current cost: 26.075, Max budget: 0.25",
           "over budget: LiteLLM's message");
    is_str(req.err_type, "budget_exceeded", "over budget: type");
    memcpy(key.token, "a3", 3);
    key.budget[0].spend = 2;
    key.budget[0].max_budget = 2;
    is_int(sl_budget_admit(&req), SL_ERR_BAD_REQUEST, "spend == budget: refused");
    is_str(req.err_msg, "Budget has been exceeded! Current cost: 2.0, Max budget: 2.0",
           "whole numbers as Python prints them");
    memcpy(key.token, "a4", 3);
    key.budget[0].spend = 7.2e-05;
    key.budget[0].max_budget = 2e-07;
    sl_budget_admit(&req);
    is_str(req.err_msg, "Budget has been exceeded! Current cost: 7.2e-05, Max budget: 2e-07",
           "small numbers as Python prints them");
    memcpy(key.token, "a5", 3);
    key.budget[0].spend = 100;
    key.budget[0].max_budget = 0.5;
    sl_budget_admit(&req);
    is_str(req.err_msg, "Budget has been exceeded! Current cost: 100.0, Max budget: 0.5",
           "100 is 100.0, not 1e+02");

    /* a counter that the snapshot no longer justifies keeps counting what
     * this process spent; one that trails the snapshot catches up */
    memcpy(key.token, "a6", 3);
    key.budget[0].spend = 0.5;
    key.budget[0].max_budget = 1;
    is_int(sl_budget_admit(&req), SL_OK, "0.5 of 1: admitted");
    sl_budget_settle(&req);
    key.budget[0].spend = 1.5;
    is_int(sl_budget_admit(&req), SL_ERR_BAD_REQUEST, "the snapshot says 1.5 now: refused");
    is_str(req.err_msg, "Budget has been exceeded! Current cost: 1.5, Max budget: 1.0",
           "the counter caught up with the database");

    /* a real cost settles into the counter */
    memcpy(key.token, "a7", 3);
    key.budget[0].spend = 0;
    key.budget[0].max_budget = 1;
    is_int(sl_budget_admit(&req), SL_OK, "fresh budget: admitted");
    req.cost = 0.75;
    req.cost_known = 1;
    sl_budget_settle(&req);
    req.cost_known = 0;
    is_int(sl_budget_admit(&req), SL_OK, "0.75 spent of 1: admitted");
    sl_budget_settle(&req);
    req.cost = 0.3;
    req.cost_known = 1;
    is_int(sl_budget_admit(&req), SL_OK, "still 0.75: admitted");
    sl_budget_settle(&req);
    req.cost_known = 0;
    is_int(sl_budget_admit(&req), SL_ERR_BAD_REQUEST, "1.05 spent: refused");
    is_str(req.err_msg, "Budget has been exceeded! Current cost: 1.05, Max budget: 1.0",
           "the settled costs add up");
    key.budget[0].spend = 0.2;
    is_int(sl_budget_admit(&req), SL_ERR_BAD_REQUEST, "the live counter (1.05) wins over a "
           "snapshot that is behind (0.2)");

    /* team and user budgets, with LiteLLM's words */
    memcpy(key.token, "a8", 3);
    key.budget[0].max_budget = -1;
    key.team_id = "team-a";
    key.user_id = "user-a";
    key.budget[SL_BUDGET_TEAM].spend = 3;
    key.budget[SL_BUDGET_TEAM].max_budget = 2;
    is_int(sl_budget_admit(&req), SL_ERR_BAD_REQUEST, "team over budget: 400");
    is_str(req.err_msg, "Budget has been exceeded! Team=team-a Current cost: 3.0, Max budget: 2.0",
           "team: LiteLLM's message");
    key.budget[SL_BUDGET_TEAM].max_budget = -1;
    key.budget[SL_BUDGET_USER].spend = 5;
    key.budget[SL_BUDGET_USER].max_budget = 4;
    is_int(sl_budget_admit(&req), SL_OK, "a team key: the user's own budget does not apply "
           "(LiteLLM's rule)");
    sl_budget_settle(&req);
    key.team_id = NULL;
    is_int(sl_budget_admit(&req), SL_ERR_BAD_REQUEST, "user over budget: 400");
    is_str(req.err_msg, "ExceededBudget: User=user-a over budget. Spend=5.0, Budget=4.0",
           "user: LiteLLM's message");

    /* budget periods */
    {
        const long long day = 86400000000LL, t0 = 1767225600000000LL;   /* 2026-01-01 */
        int fresh;

        is_int(sl_budget_period_end(0, "1d", t0, &fresh), 0, "no reset date: one endless period");
        is_int(sl_budget_period_end(t0 + day, "1d", t0, &fresh), t0 + day, "reset ahead: its date");
        ok(!fresh, "... the row's spend counts");
        is_int(sl_budget_period_end(t0, "1d", t0 + 3 * day + 5, &fresh), t0 + 4 * day,
               "3 days overdue: the period boundaries stay aligned");
        ok(fresh, "... and the spend counts as 0");
        is_int(sl_budget_period_end(t0, "1mo", t0 + day, &fresh), 1769904000000000LL,
               "calendar months: 2026-02-01");
        is_int(sl_budget_period_end(t0, NULL, t0 + day, &fresh), t0 + 2 * day,
               "no duration: a day from now");
    }
    sl_arena_free(req.arena);
    test_remote_user();
    return tap_done();
}

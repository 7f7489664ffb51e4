/* Virtual keys without a database: the generated key's form (LiteLLM's
 * "sk-" + token_urlsafe(16)), the display name, the model allowlist rules,
 * and LiteLLM's words for a denied model and an exhausted budget. */
#include <string.h>

#include "arena.h"
#include "auth.h"
#include "keys.h"
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

int main(void)
{
    char a[32], b[32], small[10], name[16];
    struct sl_request req;
    struct sl_key key;
    const char *models[] = { "gpt-4o-mini", "claude", NULL };
    const char *any[] = { "all-proxy-models", NULL };
    int rc;

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
    key.max_budget = -1;
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

    /* budget */
    req.err_msg = NULL;
    req.err_type = NULL;
    is_int(sl_auth_admit(&req), SL_OK, "no budget: admitted");
    key.spend = 0.1;
    key.max_budget = 0.25;
    is_int(sl_auth_admit(&req), SL_OK, "under budget: admitted");
    key.spend = 26.075;
    is_int(sl_auth_admit(&req), SL_ERR_BAD_REQUEST, "over budget: 400");
    is_str(req.err_msg, "Budget has been exceeded! Current cost: 26.075, Max budget: 0.25",
           "over budget: LiteLLM's message");
    is_str(req.err_type, "budget_exceeded", "over budget: type");
    key.spend = 2;
    key.max_budget = 2;
    is_int(sl_auth_admit(&req), SL_ERR_BAD_REQUEST, "spend == budget: refused");
    is_str(req.err_msg, "Budget has been exceeded! Current cost: 2.0, Max budget: 2.0",
           "whole numbers as Python prints them");
    key.spend = 7.2e-05;
    key.max_budget = 2e-07;
    sl_auth_admit(&req);
    is_str(req.err_msg, "Budget has been exceeded! Current cost: 7.2e-05, Max budget: 2e-07",
           "small numbers as Python prints them");
    key.spend = 100;
    key.max_budget = 0.5;
    sl_auth_admit(&req);
    is_str(req.err_msg, "Budget has been exceeded! Current cost: 100.0, Max budget: 0.5",
           "100 is 100.0, not 1e+02");
    sl_arena_free(req.arena);
    return tap_done();
}

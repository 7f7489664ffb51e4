/* Unit tests for ratelimit.c and ctable.c: the fixed windows, the process
 * counters (floor at 0, forgetting), and admission without memcached: the
 * rpm, tpm and parallel limits of a key counted in the process, their 429s
 * and headers, and the slots given back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "ctable.h"
#include "keys.h"
#include "ratelimit.h"
#include "request.h"
#include "respond.h"
#include "status.h"
#include "tap.h"

static struct sl_arena *arena;

static void test_window(void)
{
    long left;

    is_int(sl_ratelimit_window(0, &left), 0, "second 0 is in window 0");
    is_int(left, 60, "which has 60 s left");
    is_int(sl_ratelimit_window(59, &left), 0, "second 59 too");
    is_int(left, 1, "with 1 s left");
    is_int(sl_ratelimit_window(60, &left), 1, "second 60 starts window 1");
    is_int(sl_ratelimit_window(1767225599, &left), 29453759, "windows count from the epoch");
    is_int(left, 1, "and end on the minute");
}

static void test_ctable(void)
{
    static struct sl_ctable t = SL_CTABLE_INIT;
    long long v = -1;

    ok(sl_ctable_add(&t, "a:1", 5, 2, 60, &v) == 0 && v == 7, "a counter starts at its base");
    ok(sl_ctable_add(&t, "a:1", 5, -3, 60, &v) == 0 && v == 4, "and counts from there");
    ok(sl_ctable_add(&t, "a:1", 0, -10, 60, &v) == 0 && v == 0, "it stops at 0");
    ok(sl_ctable_add(&t, "b:1", -5, 1, 60, &v) == 0 && v == 1, "a negative base is 0");
    sl_ctable_forget(&t, "a:");
    ok(sl_ctable_add(&t, "a:1", 0, 0, 60, &v) == 0 && v == 0, "a forgotten counter starts again");
    ok(sl_ctable_add(&t, "b:1", 0, 0, 60, &v) == 0 && v == 1, "others are kept");
    ok(sl_ctable_add(&t, "c:1", 3, 0, 0, &v) == 0 && v == 3, "a counter with no time to live");
    ok(sl_ctable_add(&t, "c:1", 9, 0, 0, &v) == 0 && v == 9, "is new each time");
}

static const char *header(const struct sl_request *req, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < req->n_resp_headers; i++)
        if (strncmp(req->resp_headers[i], name, n) == 0 && req->resp_headers[i][n] == ':')
            return req->resp_headers[i] + n + 2;
    return NULL;
}

static void setup(struct sl_request *req, struct sl_config *cfg, const struct sl_key *k)
{
    sl_arena_reset(arena);
    memset(req, 0, sizeof(*req));
    req->arena = arena;
    req->cfg = cfg;
    req->principal.key = k;
}

static struct sl_key key(const char *token)
{
    struct sl_key k;

    memset(&k, 0, sizeof(k));
    snprintf(k.token, sizeof(k.token), "%s", token);
    k.rpm_limit = k.tpm_limit = -1;
    k.max_parallel_requests = -1;
    k.team_limits.rpm_limit = k.team_limits.tpm_limit = k.team_limits.max_parallel_requests = -1;
    k.user_limits = k.team_limits;
    return k;
}

static void test_rpm(struct sl_config *cfg)
{
    struct sl_key k = key("0000000000000000000000000000000000000000000000000000000000000001");
    struct sl_request req;
    int rc;

    k.rpm_limit = 2;
    for (int i = 0; i < 2; i++) {
        setup(&req, cfg, &k);
        is_int(sl_ratelimit_admit(&req), SL_OK, "a call within rpm_limit is admitted");
        is_str(header(&req, "x-ratelimit-remaining-requests"), i == 0 ? "1" : "0",
               "and told what is left");
        is_str(header(&req, "x-ratelimit-api_key-limit-requests"), "2", "and the limit");
        sl_ratelimit_release(&req);
    }
    setup(&req, cfg, &k);
    rc = sl_ratelimit_admit(&req);
    is_int(rc, SL_ERR_RATE_LIMITED, "the third call in the window is refused");
    is_int(sl_respond_http_status(rc), 429, "with a 429");
    ok(req.err_msg != NULL && strncmp(req.err_msg, "Rate limit exceeded for api_key: 0000", 37) == 0 &&
       strstr(req.err_msg, ". Limit type: requests. Current limit: 2, Remaining: 0. Limit resets at: ") &&
       strstr(req.err_msg, " UTC") != NULL, "in LiteLLM's words");
    ok(header(&req, "retry-after") != NULL && atoi(header(&req, "retry-after")) >= 1 &&
       atoi(header(&req, "retry-after")) <= 60, "retry-after is the rest of the window");
    is_str(header(&req, "rate_limit_type"), "requests", "rate_limit_type names the limit");
    sl_ratelimit_release(&req);
}

static void test_parallel(struct sl_config *cfg)
{
    struct sl_key k = key("0000000000000000000000000000000000000000000000000000000000000002");
    struct sl_request a, b;

    k.max_parallel_requests = 1;
    setup(&a, cfg, &k);
    is_int(sl_ratelimit_admit(&a), SL_OK, "the first call takes the only slot");
    is_str(header(&a, "x-ratelimit-api_key-remaining-max_parallel_requests"), "0", "none left");
    memset(&b, 0, sizeof(b));
    b.arena = arena;
    b.cfg = cfg;
    b.principal.key = &k;
    is_int(sl_ratelimit_admit(&b), SL_ERR_RATE_LIMITED, "a second one at the same time is refused");
    is_str(header(&b, "retry-after"), "1", "retry-after 1");
    ok(strstr(b.err_msg, "Limit type: max_parallel_requests. Current limit: 1,") != NULL, "named");
    sl_ratelimit_release(&b);
    sl_ratelimit_release(&a);
    sl_ratelimit_release(&a);
    setup(&b, cfg, &k);
    is_int(sl_ratelimit_admit(&b), SL_OK, "the slot is free again when the first ends");
    sl_ratelimit_release(&b);
}

static void test_tpm(struct sl_config *cfg)
{
    struct sl_key k = key("0000000000000000000000000000000000000000000000000000000000000003");
    json_t *in = json_pack("{s:i}", "max_tokens", 2);
    struct sl_request req;

    k.tpm_limit = 10;
    setup(&req, cfg, &k);
    req.in = in;
    req.body_len = 8;       /* 3 prompt tokens estimated, and max_tokens 2 */
    is_int(sl_ratelimit_admit(&req), SL_OK, "a call with tokens left is admitted");
    is_str(header(&req, "x-ratelimit-remaining-tokens"), "5", "its estimate (5) is reserved");
    req.llm_called = 1;
    req.usage.prompt_tokens = 4;
    req.usage.completion_tokens = 3;
    sl_ratelimit_release(&req);
    setup(&req, cfg, &k);
    req.in = in;
    req.body_len = 8;
    is_int(sl_ratelimit_admit(&req), SL_OK, "7 of 10 used: admitted");
    is_str(header(&req, "x-ratelimit-remaining-tokens"), "0", "its estimate takes the rest");
    req.llm_called = 1;
    req.usage.total_tokens = 5;
    sl_ratelimit_release(&req);
    setup(&req, cfg, &k);
    req.in = in;
    is_int(sl_ratelimit_admit(&req), SL_ERR_RATE_LIMITED, "12 of 10 used: refused");
    ok(strstr(req.err_msg, "Limit type: tokens. Current limit: 10,") != NULL, "named");
    sl_ratelimit_release(&req);
    setup(&req, cfg, NULL);
    is_int(sl_ratelimit_admit(&req), SL_OK, "the master key has no limits");
    is_int(req.n_resp_headers, 0, "and no headers");

    k.tpm_limit = 100;
    k.token[63] = '6';
    setup(&req, cfg, &k);
    req.in = in;
    req.body_len = 8;
    is_int(sl_ratelimit_admit(&req), SL_OK, "a call whose upstream fails is admitted");
    is_str(header(&req, "x-ratelimit-remaining-tokens"), "95", "with its estimate reserved");
    sl_ratelimit_release(&req);       /* llm_called = 0: no tokens */
    setup(&req, cfg, &k);
    req.in = in;
    req.body_len = 8;
    is_int(sl_ratelimit_admit(&req), SL_OK, "the next one");
    is_str(header(&req, "x-ratelimit-remaining-tokens"), "95", "finds the estimate given back");
    sl_ratelimit_release(&req);
    json_decref(in);
}

/* model_rpm_limit / model_tpm_limit of the key's metadata, per model. */
static void test_model(struct sl_config *cfg)
{
    struct sl_key k = key("0000000000000000000000000000000000000000000000000000000000000007");
    struct sl_request req;

    k.model_rpm_limit = "{\"gpt-4o\": 1, \"other\": \"5\"}";
    setup(&req, cfg, &k);
    req.model = "gpt-4o";
    is_int(sl_ratelimit_admit(&req), SL_OK, "the first call to a model with model_rpm_limit 1");
    is_str(header(&req, "x-ratelimit-model_per_key-remaining-requests"), "0", "none left");
    sl_ratelimit_release(&req);
    setup(&req, cfg, &k);
    req.model = "gpt-4o";
    is_int(sl_ratelimit_admit(&req), SL_ERR_RATE_LIMITED, "the second is refused");
    ok(req.err_msg && strstr(req.err_msg, "for model_per_key: 0000000000000000000000000000000000"
                             "000000000000000000000000000007:gpt-4o. Limit type: requests") != NULL,
       "naming the key and model");
    setup(&req, cfg, &k);
    req.model = "other";
    is_int(sl_ratelimit_admit(&req), SL_OK, "another model has its own limit");
    is_str(header(&req, "x-ratelimit-model_per_key-limit-requests"), "5", "a numeric string");
    sl_ratelimit_release(&req);
    setup(&req, cfg, &k);
    req.model = "unlimited";
    is_int(sl_ratelimit_admit(&req), SL_OK, "a model not in the map is not limited");
    is_int(req.n_resp_headers, 0, "and has no headers");
    k.model_rpm_limit = "not json";
    setup(&req, cfg, &k);
    req.model = "gpt-4o";
    is_int(sl_ratelimit_admit(&req), SL_OK, "a map that is not JSON limits nothing");
}

/* End users (the body's "user") and all calls together, from the config:
 * the master key too. */
static void test_config_limits(struct sl_config *cfg)
{
    struct sl_request a, b;
    json_t *alice = json_pack("{s:s}", "user", "alice"), *bob = json_pack("{s:s}", "user", "bob");

    cfg->end_user_rpm_limit = 1;
    setup(&a, cfg, NULL);
    a.in = alice;
    is_int(sl_ratelimit_admit(&a), SL_OK, "an end user's first call");
    is_str(header(&a, "x-ratelimit-end_user-remaining-requests"), "0", "end_user headers");
    sl_ratelimit_release(&a);
    setup(&a, cfg, NULL);
    a.in = alice;
    is_int(sl_ratelimit_admit(&a), SL_ERR_RATE_LIMITED, "the same end user's second is refused");
    ok(a.err_msg && strstr(a.err_msg, "for end_user: alice.") != NULL, "naming the end user");
    setup(&a, cfg, NULL);
    a.in = bob;
    is_int(sl_ratelimit_admit(&a), SL_OK, "another end user is not");
    sl_ratelimit_release(&a);
    setup(&a, cfg, NULL);
    is_int(sl_ratelimit_admit(&a), SL_OK, "a call with no user is not");
    cfg->end_user_rpm_limit = 0;

    cfg->global_max_parallel_requests = 1;
    setup(&a, cfg, NULL);
    is_int(sl_ratelimit_admit(&a), SL_OK, "global_max_parallel_requests: the first call");
    memset(&b, 0, sizeof(b));
    b.arena = arena;
    b.cfg = cfg;
    is_int(sl_ratelimit_admit(&b), SL_ERR_RATE_LIMITED, "a second at once is refused, master key too");
    ok(b.err_msg && strstr(b.err_msg, "for global: all calls. Limit type: max_parallel_requests") != NULL,
       "named");
    sl_ratelimit_release(&b);
    sl_ratelimit_release(&a);
    setup(&b, cfg, NULL);
    is_int(sl_ratelimit_admit(&b), SL_OK, "and admitted when the first ended");
    sl_ratelimit_release(&b);
    cfg->global_max_parallel_requests = 0;
    json_decref(alice);
    json_decref(bob);
}

static void test_team(struct sl_config *cfg)
{
    struct sl_key a = key("0000000000000000000000000000000000000000000000000000000000000004");
    struct sl_key b = key("0000000000000000000000000000000000000000000000000000000000000005");
    struct sl_request req;

    a.team_id = b.team_id = "team-1";
    a.team_limits.rpm_limit = b.team_limits.rpm_limit = 1;
    b.rpm_limit = 5;
    setup(&req, cfg, &a);
    is_int(sl_ratelimit_admit(&req), SL_OK, "a team key's first call is admitted");
    is_str(header(&req, "x-ratelimit-team-remaining-requests"), "0", "the team has none left");
    sl_ratelimit_release(&req);
    setup(&req, cfg, &b);
    is_int(sl_ratelimit_admit(&req), SL_ERR_RATE_LIMITED, "another key of the team is refused");
    ok(req.err_msg && strstr(req.err_msg, "Rate limit exceeded for team: team-1. Limit type: "
                             "requests. Current limit: 1,") == req.err_msg, "naming the team");
    is_str(header(&req, "x-ratelimit-limit-requests"), "1", "the plain headers: the tightest limit");
    sl_ratelimit_release(&req);
    b.team_limits.rpm_limit = -1;
    setup(&req, cfg, &b);
    is_int(sl_ratelimit_admit(&req), SL_OK, "the refused call took nothing from the key");
    is_str(header(&req, "x-ratelimit-api_key-remaining-requests"), "4", "its first of 5");
    sl_ratelimit_release(&req);

    b.user_id = "user-1";
    b.user_limits.max_parallel_requests = 0;
    setup(&req, cfg, &b);
    is_int(sl_ratelimit_admit(&req), SL_ERR_RATE_LIMITED, "a user with no slots is refused");
    ok(strstr(req.err_msg, "for user: user-1. Limit type: max_parallel_requests") != NULL, "named");
    sl_ratelimit_release(&req);
}

int main(void)
{
    struct sl_config cfg;

    tap_private_tmpdir();
    memset(&cfg, 0, sizeof(cfg));
    arena = sl_arena_create(1u << 20);
    test_window();
    test_ctable();
    test_rpm(&cfg);
    test_parallel(&cfg);
    test_tpm(&cfg);
    test_team(&cfg);
    test_model(&cfg);
    test_config_limits(&cfg);
    sl_arena_free(arena);
    return tap_done();
}

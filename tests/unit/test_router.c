/* The router on real config loads, without a network: group lookup
 * (exact, alias, wildcard), what /v1/models lists, router_settings errors,
 * the weighted shuffle's proportions, priority order, retries that move to
 * another deployment, cooldowns (and none for a lone deployment),
 * fallbacks, and max_parallel_requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "keys.h"
#include "request.h"
#include "router.h"
#include "status.h"
#include "tap.h"

static char path[64];

static struct sl_config *load(const char *yaml, struct sl_buf *msgs)
{
    struct sl_config *c = NULL;
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return NULL;
    fputs(yaml, f);
    fclose(f);
    sl_buf_init(msgs, 1u << 16);
    if (sl_config_load(path, &c, msgs) != SL_OK)
        c = NULL;
    return c;
}

static int has(const struct sl_buf *b, const char *s)
{
    return b->data != NULL && strstr(b->data, s) != NULL;
}

static void fresh(struct sl_request *req, struct sl_config *c, struct sl_arena *a, const char *model)
{
    memset(req, 0, sizeof(*req));
    req->cfg = c;
    req->arena = a;
    req->model = model;
    req->principal.role = SL_ROLE_ADMIN;
}

static void names(void *ctx, const char *name)
{
    struct sl_buf *b = ctx;

    sl_buf_append(b, name, strlen(name));
    sl_buf_append(b, ",", 1);
}

static const char base[] =
    "model_list:\n"
    "  - {model_name: w, litellm_params: {model: mock/echo, weight: 1}, model_info: {id: w1}}\n"
    "  - {model_name: w, litellm_params: {model: mock/echo, weight: 3}, model_info: {id: w3}}\n"
    "  - {model_name: tiers, litellm_params: {model: mock/echo, order: 2}, model_info: {id: t2}}\n"
    "  - {model_name: tiers, litellm_params: {model: mock/echo, order: 1}, model_info: {id: t1}}\n"
    "  - {model_name: lone, litellm_params: {model: mock/echo}, model_info: {id: lone}}\n"
    "  - {model_name: capped, litellm_params: {model: mock/echo, max_parallel_requests: 1},"
    " model_info: {id: cap}}\n"
    "  - {model_name: 'ext/*', litellm_params: {model: 'openai/*', api_key: x}, model_info: {id: wild}}\n"
    "router_settings:\n"
    "  num_retries: 1\n"
    "  allowed_fails: 0\n"
    "  fallbacks: [{tiers: [lone]}]\n"
    "  model_group_alias: {shown: w, hidden-one: {model: w, hidden: true}}\n";

int main(void)
{
    struct sl_arena *a = sl_arena_create(1u << 16);
    struct sl_request req;
    struct sl_config *c;
    struct sl_buf msgs, list;
    long wait;
    int n1 = 0;

    snprintf(path, sizeof(path), "/tmp/test_router-%ld.yaml", (long)getpid());
    c = load(base, &msgs);
    ok(c != NULL, "the config loads");
    if (c == NULL) {
        fprintf(stderr, "%.*s\n", (int)msgs.len, msgs.data ? msgs.data : "");
        return tap_done();
    }
    sl_buf_free(&msgs);

    /* lookup */
    is_str(sl_router_group_of(c, "w"), "w", "an exact name");
    is_str(sl_router_group_of(c, "shown"), "w", "an alias");
    is_str(sl_router_group_of(c, "ext/gpt-4o"), "ext/*", "a wildcard");
    ok(sl_router_group_of(c, "nope") == NULL, "an unknown name");
    sl_buf_init(&list, 1024);
    sl_router_each_name(c, names, &list);
    sl_buf_append(&list, "", 1);
    is_str(list.data, "w,tiers,lone,capped,shown,", "listed: groups and visible aliases, no wildcard");
    sl_buf_free(&list);

    /* weighted shuffle */
    for (int i = 0; i < 20000; i++) {
        fresh(&req, c, a, "w");
        if (sl_router_pick(&req) != SL_OK)
            break;
        n1 += strcmp(req.dep->id, "w1") == 0;
        sl_router_release(&req, 1);
        sl_arena_reset(a);
    }
    ok(n1 > 20000 * 0.23 && n1 < 20000 * 0.27, "weights 1:3 give about 25 %% to the first");

    /* order, then a failure moves on: retry in the group, then fallback */
    fresh(&req, c, a, "tiers");
    is_int(sl_router_pick(&req), SL_OK, "tiers: picked");
    is_str(req.dep->id, "t1", "order 1 first");
    is_int(sl_router_next(&req, SL_FAIL_SERVER, -1, &wait), SL_OK, "a 5xx: retried");
    is_str(req.dep->id, "t2", "on the other deployment");
    is_int(wait, 0, "another deployment: no wait");
    is_int(req.route.retries, 1, "one retry counted");
    is_int(sl_router_next(&req, SL_FAIL_SERVER, -1, &wait), SL_OK, "retries spent: a fallback");
    is_str(req.model_group, "lone", "the fallback group");
    is_int(req.route.fallbacks, 1, "one fallback counted");
    is_int(sl_router_next(&req, SL_FAIL_SERVER, -1, &wait), SL_OK, "the fallback's own retry");
    is_str(req.dep->id, "lone", "the same lone deployment again");
    ok(wait >= 125 && wait <= 250, "after a back-off");
    is_int(sl_router_next(&req, SL_FAIL_SERVER, -1, &wait), SL_ERR_UPSTREAM_STATUS, "then nothing left");
    sl_router_release(&req, 0);
    sl_arena_reset(a);

    /* cooldowns: t1 and t2 each failed with allowed_fails 0, so both cool
     * down and the group's calls go to its fallback; the lone deployment
     * (the only one of its group) never cools down */
    for (int i = 0; i < 3; i++) {
        fresh(&req, c, a, "tiers");
        is_int(sl_router_pick(&req), SL_OK, "tiers cooling down: still served");
        is_str(req.dep->id, "lone", "by the fallback group");
        is_int(req.route.fallbacks, 1, "as a fallback");
        sl_router_release(&req, 1);
        sl_arena_reset(a);
    }
    {
        static const char *const only_tiers[] = { "tiers", NULL };
        struct sl_key k;

        memset(&k, 0, sizeof(k));
        k.models = only_tiers;
        k.n_models = 1;
        for (int i = 0; i < SL_BUDGET_SCOPES; i++)
            k.budget[i].max_budget = -1;
        fresh(&req, c, a, "tiers");
        req.principal.role = SL_ROLE_KEY;
        req.principal.key = &k;
        is_int(sl_router_pick(&req), SL_ERR_NO_DEPLOYMENT,
               "a key without the fallback group's model gets no fallback");
        sl_router_release(&req, 0);
        sl_arena_reset(a);
    }
    fresh(&req, c, a, "lone");
    is_int(sl_router_pick(&req), SL_OK, "a lone deployment never cools down");
    sl_router_release(&req, 0);
    sl_arena_reset(a);

    /* a 400 is final, a 429 waits for its retry-after on the same deployment */
    fresh(&req, c, a, "lone");
    sl_router_pick(&req);
    is_int(sl_router_next(&req, SL_FAIL_BAD_REQUEST, -1, &wait), SL_ERR_UPSTREAM_STATUS, "a 400 is final");
    sl_router_release(&req, 0);
    fresh(&req, c, a, "lone");
    sl_router_pick(&req);
    is_int(sl_router_next(&req, SL_FAIL_RATE_LIMIT, 700, &wait), SL_OK, "a 429 is retried");
    is_int(wait, 700, "after the upstream's retry-after");
    sl_router_release(&req, 0);
    sl_arena_reset(a);

    /* max_parallel_requests */
    {
        struct sl_request second;

        fresh(&req, c, a, "capped");
        is_int(sl_router_pick(&req), SL_OK, "capped: the first call");
        fresh(&second, c, a, "capped");
        is_int(sl_router_pick(&second), SL_ERR_NO_DEPLOYMENT, "the second: no deployment");
        ok(second.err_msg != NULL && strncmp(second.err_msg, "No deployments available for selected "
           "model, Try again in 5 seconds. Passed model=capped", 81) == 0, "LiteLLM's message");
        sl_router_release(&req, 1);
        fresh(&second, c, a, "capped");
        is_int(sl_router_pick(&second), SL_OK, "released: free again");
        sl_router_release(&second, 1);
        sl_arena_reset(a);
    }

    /* wildcard: the '*' part is the upstream model */
    fresh(&req, c, a, "ext/gpt-4o-mini");
    is_int(sl_router_pick(&req), SL_OK, "wildcard: picked");
    is_str(req.dep->upstream_model, "gpt-4o-mini", "upstream model from the name");
    sl_router_release(&req, 1);
    sl_arena_reset(a);
    sl_config_unref(c);

    /* errors */
    c = load("model_list:\n  - {model_name: m, litellm_params: {model: mock/echo}}\n"
             "router_settings:\n  routing_strategy: round-robin\n", &msgs);
    ok(c == NULL && has(&msgs, "routing_strategy: round-robin is not one of"), "unknown strategy");
    sl_buf_free(&msgs);
    c = load("model_list:\n  - {model_name: m, litellm_params: {model: mock/echo}}\n"
             "router_settings:\n  fallbacks: [{m: [nowhere]}]\n", &msgs);
    ok(c == NULL && has(&msgs, "fallbacks of m: nowhere is no model_name of model_list"),
       "a fallback to no group");
    sl_buf_free(&msgs);
    c = load("model_list:\n  - {model_name: m, litellm_params: {model: mock/echo}}\n"
             "router_settings:\n  fallbacks: {m: other}\n", &msgs);
    ok(c == NULL && has(&msgs, "fallbacks: expected a list of {model_name: [fallbacks]}"),
       "fallbacks of the wrong shape");
    sl_buf_free(&msgs);
    c = load("model_list:\n  - {model_name: m, litellm_params: {model: mock/echo}}\n"
             "router_settings:\n  retry_policy: {OftenRetries: 3}\n", &msgs);
    ok(c == NULL && has(&msgs, "retry_policy.OftenRetries: expected one of the *Retries names"),
       "an unknown retry_policy entry");
    sl_buf_free(&msgs);
    c = load("model_list:\n  - {model_name: m, litellm_params: {model: mock/echo}}\n"
             "router_settings:\n  model_group_alias: {a: b}\n", &msgs);
    ok(c == NULL && has(&msgs, "model_group_alias.a: b is no model_name of model_list"),
       "an alias to no group");
    sl_buf_free(&msgs);
    unlink(path);
    sl_arena_free(a);
    return tap_done();
}

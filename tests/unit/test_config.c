/* Unit test of config.c: the fixtures in tests/data/config/ (found through
 * $SL_TEST_DATA, default "tests/data"), the messages with their line and
 * column, reference counting, the current-config pointer and the reload
 * watcher on a temp file. Prints TAP. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/evp.h>

/* By path: the autoconf-generated config.h in the build directory would
 * otherwise win over src/config.h for a file outside src/. */
#include "../../src/config.h"
#include "arena.h"
#include "buf.h"
#include "log.h"
#include "provider.h"
#include "status.h"
#include "tap.h"

static char fixture_path[4096];

static const char *fixture(const char *name)
{
    const char *dir = getenv("SL_TEST_DATA");

    snprintf(fixture_path, sizeof(fixture_path), "%s/config/%s", dir ? dir : "tests/data", name);
    return fixture_path;
}

/* Loads a fixture; msgs is initialised here and freed by the caller. */
static int load(const char *name, struct sl_config **cfg, struct sl_buf *msgs)
{
    sl_buf_init(msgs, 1u << 20);
    return sl_config_load(fixture(name), cfg, msgs);
}

static const char *text(const struct sl_buf *msgs)
{
    return msgs->len > 0 ? msgs->data : "";
}

static int count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* ok() with the messages printed as TAP comments when it fails. */
static void has_msg(const struct sl_buf *msgs, const char *needle, const char *name)
{
    if (!ok(strstr(text(msgs), needle) != NULL, name)) {
        printf("#   wanted: %s\n", needle);
        for (const char *p = text(msgs); *p; ) {
            size_t n = strcspn(p, "\n");

            printf("#   %.*s\n", (int)n, p);
            p += n + (p[n] == '\n');
        }
    }
}

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void expected_id(const char *name, const char *model, const char *base, size_t idx,
                        char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char num[24];
    EVP_MD_CTX *h = EVP_MD_CTX_new();

    snprintf(num, sizeof(num), "%zu", idx);
    EVP_DigestInit_ex(h, EVP_sha256(), NULL);
    EVP_DigestUpdate(h, name, strlen(name) + 1);
    EVP_DigestUpdate(h, model, strlen(model) + 1);
    EVP_DigestUpdate(h, base, strlen(base) + 1);
    EVP_DigestUpdate(h, num, strlen(num));
    EVP_DigestFinal_ex(h, md, &len);
    EVP_MD_CTX_free(h);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void check_full_deployments(const struct sl_config *c)
{
    const struct sl_provider *openai = sl_provider_find("openai"), *mock = sl_provider_find("mock");
    const struct sl_deployment *d = c->deployments;
    char id[33];

    is_int(c->n_deployments, 4, "full: 4 deployments");
    if (c->n_deployments != 4)
        return;
    is_str(d[0].model_name, "gpt-4o", "full[0]: model_name");
    is_str(d[0].model, "openai/gpt-4o", "full[0]: model");
    ok(d[0].provider == openai, "full[0]: provider openai");
    is_str(d[0].upstream_model, "gpt-4o", "full[0]: upstream_model");
    is_str(d[0].api_base, "https://east.example.com/v1", "full[0]: api_base");
    is_str(d[0].api_key, "sk-east-secret-123", "full[0]: api_key from os.environ/");
    is_str(d[0].api_version, NULL, "full[0]: no api_version");
    is_str(d[0].id, "gpt4o-east", "full[0]: model_info.id");
    is_str(d[0].mode, "chat", "full[0]: mode defaults to chat");
    is_int(d[0].timeout_ms, 60000, "full[0]: timeout 60 s");
    is_int(d[0].stream_timeout_ms, 30500, "full[0]: stream_timeout 30.5 s");
    is_int(d[0].max_retries, 2, "full[0]: max_retries");
    ok(d[0].input_cost_per_token == 0 && d[0].output_cost_per_token == 0, "full[0]: no costs");
    is_int(d[0].line, 4, "full[0]: line");
    is_str(jstr(d[0].litellm_params, "api_key"), "sk-east-secret-123", "full[0]: JSON api_key resolved");
    ok(json_real_value(json_object_get(d[0].litellm_params, "temperature")) == 0.2,
       "full[0]: JSON temperature passes through");
    is_int(json_integer_value(json_object_get(d[0].litellm_params, "rpm")), 600, "full[0]: JSON rpm");
    is_str(jstr(json_object_get(d[0].litellm_params, "extra_headers"), "X-Team"), "blue",
           "full[0]: JSON nested mapping");
    is_str(jstr(d[0].model_info, "base_model"), "azure/gpt-4o", "full[0]: model_info JSON");

    is_str(d[1].model_name, "gpt-4o", "full[1]: same group");
    is_str(d[1].api_key, "sk-file-secret-456", "full[1]: environment_variables beat the process env");
    is_str(d[1].api_base, NULL, "full[1]: api_base NULL (provider default)");
    is_int(d[1].timeout_ms, 120000, "full[1]: timeout from request_timeout");
    is_int(d[1].stream_timeout_ms, 120000, "full[1]: stream_timeout from timeout");
    is_int(d[1].max_retries, 0, "full[1]: max_retries 0");
    expected_id("gpt-4o", "openai/gpt-4o", "", 1, id);
    is_str(d[1].id, id, "full[1]: generated id = sha256(name, model, base, index)[:16] hex");
    ok(d[1].model_info != NULL && json_object_size(d[1].model_info) == 0, "full[1]: empty model_info");
    is_int(d[1].line, 19, "full[1]: line");

    is_str(d[2].model, "gpt-4o-mini", "full[2]: bare model kept as written");
    ok(d[2].provider == openai, "full[2]: bare model -> openai");
    is_str(d[2].api_key, "sk-openai-fallback", "full[2]: api_key from the provider's env var");
    ok(d[2].input_cost_per_token == 0.00000015, "full[2]: input cost");
    ok(d[2].output_cost_per_token == 6e-7, "full[2]: output cost (1.2 float syntax)");

    ok(d[3].provider == mock, "full[3]: mock provider");
    is_str(d[3].upstream_model, "echo-1", "full[3]: upstream_model");
    is_str(d[3].api_base, "http://127.0.0.1:9/v1", "full[3]: os.environ/ from environment_variables");
    is_str(d[3].api_version, "2024-10-21", "full[3]: api_version");
    is_str(d[3].mode, "embedding", "full[3]: mode from model_info");
    ok(d[3].input_cost_per_token == 0.5, "full[3]: cost from model_info");
    is_str(json_string_value(json_array_get(json_object_get(d[3].litellm_params, "stop"), 0)),
           "\n", "full[3]: JSON list with an escaped string");
    is_str(jstr(d[3].litellm_params, "mock_response"), "hello", "full[3]: provider param kept");
}

static void test_full(void)
{
    struct sl_config *c = NULL;
    struct sl_buf msgs;
    int rc;

    setenv("SL_TEST_EAST_KEY", "sk-east-secret-123", 1);
    setenv("SL_TEST_FILE_KEY", "wrong-process-value", 1);
    setenv("SL_TEST_MASTER", "sk-master-789", 1);
    setenv("OPENAI_API_KEY", "sk-openai-fallback", 1);
    unsetenv("SL_TEST_MOCK_BASE");
    rc = load("full.yaml", &c, &msgs);
    is_int(rc, SL_OK, "full: loads");
    ok(strstr(text(&msgs), "error:") == NULL, "full: no errors");
    has_msg(&msgs, "full.yaml:41:3: warning: litellm_settings.fallbacks is accepted but not implemented",
            "full: documented LiteLLM key -> mild warning");
    ok(strstr(text(&msgs), "router_settings.routing_strategy") == NULL &&
       strstr(text(&msgs), "router_settings.cooldown_time") == NULL,
       "full: router_settings' routing_strategy and cooldown_time are implemented (no warning)");
    ok(strstr(text(&msgs), "sk-east-secret-123") == NULL && strstr(text(&msgs), "sk-master") == NULL &&
       strstr(text(&msgs), "sk-file-secret") == NULL, "full: no secret in messages");
    if (c == NULL)
        goto out;
    is_str(c->path, fixture("full.yaml"), "full: path");
    is_str(c->master_key, "sk-master-789", "full: master_key from os.environ/");
    is_int(c->max_request_bytes, 8u << 20, "full: max_request_size_mb");
    is_int(c->drop_params, 1, "full: drop_params");
    is_int(c->request_timeout_ms, 120000, "full: request_timeout");
    is_int(c->num_retries, 3, "full: num_retries");
    is_int(c->threads, 8, "full: threads");
    is_int(c->max_threads, 64, "full: max_threads");
    is_int(c->heartbeat_ms, 250, "full: heartbeat_ms");
    is_int(c->body_timeout_ms, 10000, "full: body_timeout_ms");
    is_int(c->shutdown_timeout_ms, 5000, "full: shutdown_timeout_ms");
    is_int(c->queue_timeout_ms, 200, "full: queue_timeout_ms");
    is_int(c->log_level, SL_LOG_DEBUG, "full: log_level");
    is_int(c->refs, 1, "full: one reference");
    check_full_deployments(c);

    sl_config_export_env(c);
    is_str(getenv("SL_TEST_FILE_KEY"), "sk-file-secret-456", "export_env sets environment_variables");
out:
    sl_config_unref(c);
    sl_buf_free(&msgs);
}

static void test_defaults(void)
{
    struct sl_config *c = NULL;
    struct sl_buf msgs;

    unsetenv("LITELLM_MASTER_KEY");
    is_int(load("bare_model.yaml", &c, &msgs), SL_OK, "bare: loads");
    is_int(msgs.len, 0, "bare: no messages");
    if (c != NULL && c->n_deployments == 1) {
        ok(c->deployments[0].provider == sl_provider_find("openai"), "bare: provider openai");
        is_str(c->deployments[0].upstream_model, "gpt-4o-mini", "bare: upstream_model");
        is_str(c->master_key, NULL, "defaults: no master key");
        is_int(c->max_request_bytes, 32u << 20, "defaults: 32 MiB bodies");
        is_int(c->drop_params, 0, "defaults: drop_params 0");
        is_int(c->request_timeout_ms, 600000, "defaults: request_timeout 600 s");
        is_int(c->deployments[0].timeout_ms, 600000, "defaults: deployment timeout");
        is_int(c->num_retries, 0, "defaults: num_retries 0");
        ok(c->threads == 16 && c->max_threads == 256 && c->heartbeat_ms == 500 &&
           c->body_timeout_ms == 30000 && c->shutdown_timeout_ms == 30000 &&
           c->queue_timeout_ms == 1000 && c->log_level == SL_LOG_INFO, "defaults: sluice_settings");
    }
    sl_config_unref(c);
    sl_buf_free(&msgs);

    setenv("LITELLM_MASTER_KEY", "sk-from-env", 1);
    c = NULL;
    is_int(load("bare_model.yaml", &c, &msgs), SL_OK, "master key fallback: loads");
    is_str(c ? c->master_key : NULL, "sk-from-env", "master key falls back to LITELLM_MASTER_KEY");
    sl_config_unref(c);
    sl_buf_free(&msgs);
    unsetenv("LITELLM_MASTER_KEY");
}

/* A fixture that must fail: SL_ERR_CONFIG, *out NULL, and each wanted message. */
static void expect_errors(const char *name, const char *const *wanted)
{
    struct sl_config *c = (struct sl_config *)&c;   /* must be overwritten with NULL */
    struct sl_buf msgs;
    char label[160];
    int rc = load(name, &c, &msgs);

    snprintf(label, sizeof(label), "%s: SL_ERR_CONFIG", name);
    is_int(rc, SL_ERR_CONFIG, label);
    snprintf(label, sizeof(label), "%s: *out is NULL", name);
    ok(c == NULL, label);
    for (; *wanted != NULL; wanted++) {
        snprintf(label, sizeof(label), "%s: %.100s", name, *wanted);
        has_msg(&msgs, *wanted, label);
    }
    sl_buf_free(&msgs);
}

/* sluice_settings.responses_store needs a database; its sizes are bounded. */
static void test_responses_store(void)
{
    static const char *const errors[] = {
        "responses_store_errors.yaml:6:20: error: sluice_settings.responses_store needs a database",
        "responses_store_errors.yaml:7:30: error: sluice_settings.responses_store_max_bytes",
        "responses_store_errors.yaml:8:33: error: sluice_settings.responses_store_max_age_days",
        NULL
    };

    expect_errors("responses_store_errors.yaml", errors);
}

/* general_settings.trust_remote_user / remote_user_param and
 * litellm_settings.default_internal_user_params (docs/remote-user.md). */
static void test_remote_user(void)
{
    static const char *const errors[] = {
        "remote_user_errors.yaml:7:22: error: general_settings.remote_user_param: HTTP_REMOTE_USER "
        "is a request header any client can send",
        "remote_user_errors.yaml:6:22: error: general_settings.trust_remote_user needs a database",
        "remote_user_errors.yaml:10:17: error: litellm_settings.default_internal_user_params."
        "max_budget: expected a number >= 0",
        "remote_user_errors.yaml:11:22: error: litellm_settings.default_internal_user_params."
        "budget_duration: expected a duration",
        "remote_user_errors.yaml:12:13: error: litellm_settings.default_internal_user_params."
        "models: expected a list of strings, got a string",
        "remote_user_errors.yaml:13:16: error: litellm_settings.default_internal_user_params."
        "user_role: expected one of proxy_admin,",
        "remote_user_errors.yaml:15:9: error: litellm_settings.default_internal_user_params."
        "teams[0]: expected a non-empty string (a team_id)",
        "remote_user_errors.yaml:15:10: warning: litellm_settings.default_internal_user_params."
        "teams[0].max_budget_in_team is not implemented by sluice (ignored)",
        "remote_user_errors.yaml:16:5: warning: unknown key litellm_settings."
        "default_internal_user_params.personal_key_budget (ignored)",
        NULL };
    static const char *const param[] = {
        "remote_user_param.yaml:8:22: error: general_settings.remote_user_param: expected the name "
        "of a FastCGI parameter", NULL };
    struct sl_config *c = NULL;
    struct sl_buf msgs;

    is_int(load("bare_model.yaml", &c, &msgs), SL_OK, "remote user defaults: loads");
    if (c != NULL) {
        ok(!c->trust_remote_user, "remote user: off by default");
        is_str(c->remote_user_param, "REMOTE_USER", "remote user: REMOTE_USER by default");
        ok(c->new_user.max_budget < 0 && c->new_user.budget_duration == NULL &&
           c->new_user.n_teams == 0, "new users: no budget, no team by default");
        is_str(c->new_user.models_json, "[]", "new users: every model by default");
        is_str(c->new_user.user_role, "internal_user", "new users: internal_user by default");
    }
    sl_config_unref(c);
    sl_buf_free(&msgs);

    c = NULL;
    is_int(load("remote_user.yaml", &c, &msgs), SL_OK, "remote user: loads");
    has_msg(&msgs, "remote_user.yaml:18:9: warning: litellm_settings.default_internal_user_params."
            "teams[1].max_budget_in_team is not implemented by sluice (ignored)",
            "remote user: max_budget_in_team is a warning");
    if (c != NULL) {
        ok(c->trust_remote_user, "remote user: on");
        is_str(c->remote_user_param, "SSL_CLIENT_S_DN_CN", "remote user: a certificate field");
        ok(c->new_user.max_budget == 10, "new users: max_budget");
        is_str(c->new_user.budget_duration, "30d", "new users: budget_duration");
        is_str(c->new_user.models_json, "[\"m\",\"other\"]", "new users: models as JSON");
        is_str(c->new_user.user_role, "internal_user_viewer", "new users: user_role");
        ok(c->new_user.n_teams == 2 && strcmp(c->new_user.teams[0], "team-a") == 0 &&
           strcmp(c->new_user.teams[1], "team-b") == 0, "new users: teams, as ids or {team_id}");
    }
    sl_config_unref(c);
    sl_buf_free(&msgs);
    expect_errors("remote_user_errors.yaml", errors);
    expect_errors("remote_user_param.yaml", param);
}

static void test_errors(void)
{
    static const char *const provider[] = {
        "unknown_provider.yaml:7:14: error: model_list[1].litellm_params.model: unknown provider 'nosuchvendor'",
        NULL };
    static const char *const timeout[] = {
        "bad_timeout.yaml:5:16: error: model_list[0].litellm_params.timeout: expected a number of seconds > 0 and <= 1000000, got a string",
        "bad_timeout.yaml:6:20: error: model_list[0].litellm_params.max_retries: expected an integer from 0 to 1000",
        "bad_timeout.yaml:7:29: error: model_list[0].litellm_params.input_cost_per_token: expected a number >= 0",
        NULL };
    static const char *const not_list[] = {
        "not_a_list.yaml:4:3: error: model_list: expected a list, got a mapping", NULL };
    static const char *const no_name[] = {
        "no_model_name.yaml:4:5: error: model_list[1]: model_name is required",
        "no_model_name.yaml:6:17: error: model_list[2].model_name: expected a string, got a list",
        "no_model_name.yaml:8:5: error: model_list[3]: litellm_params (with at least model) is required",
        NULL };
    static const char *const dup_key[] = {
        "duplicate_key.yaml:6:7: error: duplicate key 'api_base' (first at line 5, column 7)", NULL };
    static const char *const dup_id[] = {
        "duplicate_id.yaml:7:23: error: model_info.id 'same' is already used at line 4", NULL };
    static const char *const deep[] = { "deep.yaml:5:", "nested deeper than 64 levels", NULL };
    static const char *const tab[] = { "tab_indent.yaml:4:", "error: invalid YAML", NULL };
    static const char *const quote[] = { "unclosed_quote.yaml:", "error: invalid YAML",
                                         "quoted scalar at line 2, column 17", NULL };
    static const char *const laughs[] = { "laughs.yaml:", "too large once its aliases are expanded",
                                          NULL };
    static const char *const docs[] = { "two_docs.yaml:2:1: error: only one YAML document", NULL };
    static const char *const settings[] = {
        "sluice_settings.yaml:6:16: error: sluice_settings.max_threads (16) is below threads (32)",
        "sluice_settings.yaml:7:17: error: sluice_settings.heartbeat_ms: expected an integer from 50",
        "sluice_settings.yaml:8:14: error: sluice_settings.log_level: expected one of error, warn, info, debug",
        NULL };
    static const char *const utf8[] = {
        "bad_utf8_env.yaml:5:16: error: the value of SL_TEST_BAD_UTF8 is not valid UTF-8", NULL };
    static const char *const missing[] = { "no-such-file.yaml:0:0: error: cannot open: No such file",
                                           NULL };

    expect_errors("unknown_provider.yaml", provider);
    expect_errors("bad_timeout.yaml", timeout);
    expect_errors("not_a_list.yaml", not_list);
    expect_errors("no_model_name.yaml", no_name);
    expect_errors("duplicate_key.yaml", dup_key);
    expect_errors("duplicate_id.yaml", dup_id);
    expect_errors("deep.yaml", deep);
    expect_errors("tab_indent.yaml", tab);
    expect_errors("unclosed_quote.yaml", quote);
    expect_errors("laughs.yaml", laughs);
    expect_errors("two_docs.yaml", docs);
    expect_errors("sluice_settings.yaml", settings);
    expect_errors("no-such-file.yaml", missing);
    setenv("SL_TEST_BAD_UTF8", "sk-\xc3\x28", 1);   /* a broken 2-byte sequence */
    expect_errors("bad_utf8_env.yaml", utf8);
    unsetenv("SL_TEST_BAD_UTF8");
}

static void test_warnings(void)
{
    static const char *const wanted[] = {
        "unknown_keys.yaml:8:5: warning: unknown key model_list[0].extra_entry_key (ignored)",
        "unknown_keys.yaml:12:3: warning: unknown key general_settings.mater_key (ignored)",
        "unknown_keys.yaml:14:3: warning: litellm_settings.turn_off_message_logging is accepted but not implemented",
        "unknown_keys.yaml:15:3: warning: unknown key litellm_settings.drop_prams (ignored)",
        "unknown_keys.yaml:17:3: warning: unknown key sluice_settings.thread (ignored)",
        "unknown_keys.yaml:18:1: warning: mcp_servers is accepted but not implemented",
        "unknown_keys.yaml:19:1: warning: unknown key unknown_section (ignored)",
        NULL };
    struct sl_config *c = NULL;
    struct sl_buf msgs;

    is_int(load("unknown_keys.yaml", &c, &msgs), SL_OK, "unknown keys: still loads");
    for (const char *const *w = wanted; *w; w++)
        has_msg(&msgs, *w, *w + strlen("unknown_keys.yaml:"));
    is_int(count(text(&msgs), "\n"), 7, "unknown keys: exactly 7 messages (none for provider params)");
    ok(strstr(text(&msgs), "some_provider_param") == NULL &&
       strstr(text(&msgs), "anything_goes") == NULL, "unknown keys: litellm_params/model_info quiet");
    is_str(c ? c->master_key : NULL, "sk-abc", "unknown keys: known keys still applied");
    sl_config_unref(c);
    sl_buf_free(&msgs);
}

static void test_unset_env(void)
{
    const struct sl_provider *mock = sl_provider_find("mock");
    struct sl_config *c = NULL;
    struct sl_buf msgs;
    const struct sl_deployment *d;

    unsetenv("SL_TEST_UNSET_VAR");
    unsetenv("SL_TEST_UNSET_REGION");
    unsetenv("SL_TEST_UNSET_MASTER");
    setenv("LITELLM_MASTER_KEY", "sk-not-used", 1);
    setenv("SL_TEST_SECRET_BASE", "http://very-secret-value", 1);
    is_int(load("unset_env.yaml", &c, &msgs), SL_OK, "unset env: loads");
    has_msg(&msgs, "unset_env.yaml:5:16: warning: environment variable SL_TEST_UNSET_VAR is not set",
            "unset env: warning with position and name");
    has_msg(&msgs, "unset_env.yaml:7:15: warning: environment variable SL_TEST_UNSET_REGION is not set",
            "unset env: pass-through param warned too");
    has_msg(&msgs, "unset_env.yaml:9:15: warning: environment variable SL_TEST_UNSET_MASTER is not set",
            "unset env: master_key");
    ok(strstr(text(&msgs), "very-secret-value") == NULL, "unset env: values never printed");
    if (c != NULL && c->n_deployments == 1) {
        d = &c->deployments[0];
        is_str(d->api_key, mock->api_key_env ? getenv(mock->api_key_env) : NULL,
               "unset env: api_key absent (provider fallback)");
        is_str(d->api_base, "http://very-secret-value", "unset env: set variable resolved");
        ok(json_object_get(d->litellm_params, "api_key") == NULL &&
           json_object_get(d->litellm_params, "region") == NULL, "unset env: dropped from JSON");
        is_str(c->master_key, NULL, "unset env: master_key NULL (no fallback: it is in the file)");
    }
    sl_config_unref(c);
    sl_buf_free(&msgs);
    unsetenv("LITELLM_MASTER_KEY");
}

static void test_empty(void)
{
    struct sl_config *c = NULL;
    struct sl_buf msgs;

    is_int(load("empty.yaml", &c, &msgs), SL_OK, "empty file: loads");
    has_msg(&msgs, "empty.yaml:1:1: warning: no model_list", "empty file: warning");
    ok(c != NULL && c->n_deployments == 0 && c->deployments == NULL, "empty file: no deployments");
    is_int(sl_config_find_group(c, "x", NULL, 0), 0, "empty file: find_group 0");
    sl_config_unref(c);
    sl_buf_free(&msgs);

    c = NULL;
    is_int(sl_config_load(fixture("bare_model.yaml"), &c, NULL), SL_OK, "msgs may be NULL");
    sl_config_unref(c);
    c = NULL;
    is_int(sl_config_load(fixture("bad_timeout.yaml"), &c, NULL), SL_ERR_CONFIG,
           "msgs NULL: errors still counted");
}

static void test_aliases(void)
{
    struct sl_config *c = NULL;
    struct sl_buf msgs;
    const struct sl_deployment *d;

    is_int(load("aliases.yaml", &c, &msgs), SL_OK, "aliases: load");
    has_msg(&msgs, "aliases.yaml:2:1: warning: unknown key x-defaults", "aliases: anchor holder warned");
    if (c == NULL || c->n_deployments != 3)
        goto out;
    d = c->deployments;
    ok(strcmp(d[0].model, "mock/shared") == 0 && d[0].timeout_ms == 20000 && d[0].max_retries == 1,
       "merge key: own keys win, merged ones fill in");
    ok(json_object_get(d[0].litellm_params, "<<") == NULL &&
       json_integer_value(json_object_get(d[0].litellm_params, "timeout")) == 20,
       "merge key: not in the JSON, override kept");
    ok(strcmp(d[1].model, "mock/shared") == 0 && d[1].timeout_ms == 10000,
       "alias: whole mapping shared");
    ok(strcmp(d[2].model, "mock/own") == 0 && d[2].stream_timeout_ms == 5000 &&
       d[2].timeout_ms == 10000, "merge key: list of mappings");
    is_str(d[2].model_name, "three", "anchor on a scalar");
    is_str(jstr(d[2].model_info, "alias_of"), "three", "alias of a scalar");
out:
    sl_config_unref(c);
    sl_buf_free(&msgs);
}

static void test_scalars(void)
{
    struct sl_config *c = NULL;
    struct sl_buf msgs;
    const json_t *p;

    is_int(load("scalars.yaml", &c, &msgs), SL_OK, "scalars: load");
    if (c == NULL || c->n_deployments != 1)
        goto out;
    p = c->deployments[0].litellm_params;
    ok(json_is_true(json_object_get(p, "a_true")) && json_is_true(json_object_get(p, "a_True")),
       "core schema: true/True are booleans");
    is_str(jstr(p, "a_yes"), "yes", "core schema: yes is a string");
    ok(json_is_null(json_object_get(p, "a_null")) && json_is_null(json_object_get(p, "a_empty")),
       "core schema: ~ and empty are null");
    ok(json_integer_value(json_object_get(p, "an_int")) == 42 &&
       json_integer_value(json_object_get(p, "an_octal")) == 15 &&
       json_integer_value(json_object_get(p, "a_hex")) == 31 &&
       json_integer_value(json_object_get(p, "a_neg")) == -7, "core schema: integers");
    ok(json_is_real(json_object_get(p, "a_float")) &&
       json_real_value(json_object_get(p, "a_float")) == 1500.0, "core schema: 1.5e3 is a float");
    ok(json_is_string(json_object_get(p, "a_quoted_int")) &&
       json_is_string(json_object_get(p, "a_quoted_true")), "quoted scalars are strings");
    is_str(jstr(p, "a_tagged"), "7", "!!str forces a string");
    is_str(jstr(p, "a_version"), "2024-10-21", "a date stays a string");
    is_str(jstr(p, "a_block"), "two\nlines\n", "block scalar");
    is_str(c->deployments[0].id, "123", "!!str id");
    is_int(c->drop_params, 1, "drop_params: yes (YAML 1.1 word) accepted for a boolean");
out:
    sl_config_unref(c);
    sl_buf_free(&msgs);
}

static void test_too_big(void)
{
    char path[] = "/tmp/sl_cfg_big_XXXXXX";
    int fd = mkstemp(path);
    struct sl_config *c = NULL;
    struct sl_buf msgs;
    static char chunk[65536];

    memset(chunk, '#', sizeof(chunk));
    for (int i = 0; fd >= 0 && i < 64; i++)
        if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
            break;
    if (fd >= 0 && write(fd, "\n", 1) == 1)
        close(fd);
    sl_buf_init(&msgs, 1u << 16);
    is_int(sl_config_load(path, &c, &msgs), SL_ERR_CONFIG, "4 MiB + 1 byte: refused");
    has_msg(&msgs, "error: file is larger than 4 MiB", "4 MiB + 1 byte: message");
    sl_buf_free(&msgs);
    unlink(path);
}

static void test_groups_refs(void)
{
    const struct sl_deployment *out[4] = { NULL };
    struct sl_config *c = NULL, *cur;
    struct sl_buf msgs;

    setenv("SL_TEST_EAST_KEY", "sk-east-secret-123", 1);
    if (load("full.yaml", &c, &msgs) != SL_OK || c == NULL) {
        ok(0, "find_group: full.yaml loads");
        sl_buf_free(&msgs);
        return;
    }
    is_int(sl_config_find_group(c, "gpt-4o", out, 4), 2, "find_group: 2 deployments");
    ok(out[0] == &c->deployments[0] && out[1] == &c->deployments[1], "find_group: file order");
    out[1] = NULL;
    is_int(sl_config_find_group(c, "gpt-4o", out, 1), 2, "find_group: total beyond max");
    ok(out[1] == NULL, "find_group: writes at most max");
    is_int(sl_config_find_group(c, "mini", out, 4), 1, "find_group: 1 deployment");
    is_int(sl_config_find_group(c, "nope", out, 4), 0, "find_group: unknown group");

    ok(sl_config_ref(c) == c && c->refs == 2, "ref: count 2");
    sl_config_unref(c);
    is_int(c->refs, 1, "unref: count 1");
    sl_config_unref(NULL);
    ok(sl_config_ref(NULL) == NULL, "ref/unref accept NULL");

    ok(sl_config_acquire() == NULL, "acquire before install: NULL");
    sl_config_install(c);   /* takes our reference */
    cur = sl_config_acquire();
    ok(cur == c && c->refs == 2, "acquire: current config, one more reference");
    sl_config_unref(cur);
    sl_config_install(NULL);   /* drops the last reference: freed (valgrind checks) */
    ok(sl_config_acquire() == NULL, "install(NULL) clears");
    sl_buf_free(&msgs);
}

static int stop_readers;

static void *reader(void *arg)
{
    long n = 0;

    while (!__atomic_load_n(&stop_readers, __ATOMIC_RELAXED)) {
        struct sl_config *c = sl_config_acquire();

        if (c != NULL && c->n_deployments == 1 && c->deployments[0].model_name[0] != 'p')
            n = -1000000;   /* a freed or foreign config */
        sl_config_unref(c);
        n++;
    }
    return (void *)n;
}

/* Readers acquire and drop while the main thread keeps installing new
 * configs: with ASan/valgrind/TSan this shows the swap is safe. */
static void test_concurrent_swap(void)
{
    pthread_t th[4];
    long total = 0;
    int good = 1;

    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, reader, NULL);
    for (int i = 0; i < 40; i++) {
        struct sl_config *c = NULL;

        if (sl_config_load(fixture("bare_model.yaml"), &c, NULL) != SL_OK)
            good = 0;
        sl_config_install(c);
        usleep(1000);
    }
    __atomic_store_n(&stop_readers, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 4; i++) {
        void *r;

        pthread_join(th[i], &r);
        total += (long)r;
    }
    sl_config_install(NULL);
    ok(good && total > 0, "concurrent acquire/unref during 40 installs");
}

static int write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    int rc = f != NULL && fputs(s, f) >= 0;

    if (f != NULL && fclose(f) != 0)
        rc = 0;
    return rc;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Waits up to ms for the current config's first model_name to be name. */
static int current_is(const char *name, long ms)
{
    long long end = now_ms() + ms;
    int found = 0;

    do {
        struct sl_config *c = sl_config_acquire();

        found = c != NULL && c->n_deployments > 0 &&
                strcmp(c->deployments[0].model_name, name) == 0;
        sl_config_unref(c);
        if (!found)
            usleep(20000);
    } while (!found && now_ms() < end);
    return found;
}

#define MODEL(name) "model_list:\n  - model_name: " name "\n    litellm_params: { model: mock/a }\n"

static void test_watcher(void)
{
    char path[] = "/tmp/sl_cfg_watch_XXXXXX", tmp[64];
    struct sl_config *c = NULL;
    long long t0;
    int fd = mkstemp(path);

    if (fd < 0 || close(fd) != 0 || !write_file(path, MODEL("v1")) ||
        sl_config_load(path, &c, NULL) != SL_OK) {
        ok(0, "watcher: set-up");
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    sl_config_install(c);
    is_int(sl_config_watch_start(path, 50), SL_OK, "watcher: starts");
    is_int(sl_config_watch_start(path, 50), SL_ERR_INTERNAL, "watcher: only one at a time");

    write_file(path, MODEL("version2"));
    ok(current_is("version2", 2000), "watcher: edited file picked up within 2 s");

    write_file(path, "model_list:\n  - model_name: [broken\n");
    usleep(400000);   /* eight intervals */
    ok(current_is("version2", 0), "watcher: broken edit keeps the old config");

    write_file(tmp, MODEL("v3-renamed"));
    rename(tmp, path);   /* what editors and config managers do */
    ok(current_is("v3-renamed", 2000), "watcher: rename-over picked up");

    sl_config_watch_stop();
    is_int(sl_config_watch_start(path, 10000), SL_OK, "watcher: restarts after stop");
    t0 = now_ms();
    sl_config_watch_stop();
    ok(now_ms() - t0 < 1000, "watcher: stop does not wait for the 10 s interval");
    sl_config_watch_stop();   /* a second stop is harmless */

    sl_config_install(NULL);
    unlink(path);
}

/* Jansson allocation failures at every point of a full load: always
 * SL_ERR_NOMEM with *out NULL (ASan/valgrind check that nothing leaks). */
static long alloc_budget = -1;

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

static void test_oom(void)
{
    int bad = 0, points = 0, rc = SL_ERR_NOMEM;

    setenv("SL_TEST_EAST_KEY", "sk-east-secret-123", 1);
    json_set_alloc_funcs(failing_malloc, free);
    for (long n = 0; n < 10000 && rc == SL_ERR_NOMEM; n++) {
        struct sl_config *c = (struct sl_config *)&c;

        alloc_budget = n;
        rc = sl_config_load(fixture("full.yaml"), &c, NULL);
        if (rc == SL_ERR_NOMEM && c != NULL)
            bad++;
        if (rc != SL_OK && rc != SL_ERR_NOMEM)
            bad++;
        if (rc == SL_OK)
            sl_config_unref(c);
        points++;
    }
    alloc_budget = -1;
    json_set_alloc_funcs(malloc, free);
    ok(bad == 0 && rc == SL_OK && points > 10, "OOM in Jansson at every point: SL_ERR_NOMEM, then OK");
    printf("# %d allocation failure points tried\n", points - 1);
}

/* The LLM call time-outs: per deployment (litellm_params), the defaults
 * (router_settings, litellm_settings, sluice_settings) and their errors. */
static void test_timeouts(void)
{
    static const char *const errors[] = {
        "timeouts_errors.yaml:5:24: error: model_list[0].litellm_params.connect_timeout: expected a number of seconds > 0 and <= 1000000, got a string",
        "timeouts_errors.yaml:6:27: error: model_list[0].litellm_params.first_byte_timeout: expected a number of seconds > 0",
        "timeouts_errors.yaml:7:28: error: model_list[0].litellm_params.stream_idle_timeout: expected a number of seconds > 0",
        "timeouts_errors.yaml:9:12: error: router_settings.timeout: expected a number of seconds > 0",
        "timeouts_errors.yaml:10:19: error: router_settings.stream_timeout: expected a number of seconds > 0 and <= 1000000",
        "timeouts_errors.yaml:12:20: error: sluice_settings.connect_timeout: expected a number of seconds > 0",
        "timeouts_errors.yaml:13:24: error: sluice_settings.max_request_timeout: expected a number of seconds > 0",
        NULL };
    struct sl_config *c = NULL;
    struct sl_buf msgs;
    const struct sl_deployment *d;

    is_int(load("timeouts.yaml", &c, &msgs), SL_OK, "timeouts: loads");
    is_int(msgs.len, 0, "timeouts: no messages (router_settings.timeout is implemented)");
    if (c != NULL && c->n_deployments == 3) {
        d = c->deployments;
        ok(d[0].timeout_ms == 30000 && d[0].stream_timeout_ms == 5000 &&
           d[0].connect_timeout_ms == 500 && d[0].first_byte_timeout_ms == 2500 &&
           d[0].stream_idle_timeout_ms == 7000, "timeouts[0]: litellm_params win");
        is_int(d[1].timeout_ms, 40000, "timeouts[1]: router_settings.timeout beats request_timeout");
        is_int(d[1].stream_timeout_ms, 8000, "timeouts[1]: router_settings.stream_timeout");
        is_int(d[1].connect_timeout_ms, 3000, "timeouts[1]: sluice_settings.connect_timeout");
        is_int(d[1].first_byte_timeout_ms, 20000, "timeouts[1]: sluice_settings.first_byte_timeout");
        is_int(d[1].stream_idle_timeout_ms, 9250, "timeouts[1]: sluice_settings.stream_idle_timeout 9.25 s");
        ok(d[2].timeout_ms == 12000 && d[2].stream_timeout_ms == 8000,
           "timeouts[2]: own timeout; router_settings.stream_timeout for streams");
        is_int(c->max_request_timeout_ms, 120000, "timeouts: max_request_timeout");
    } else {
        ok(0, "timeouts: 3 deployments");
    }
    sl_config_unref(c);
    sl_buf_free(&msgs);

    c = NULL;
    is_int(load("timeouts_litellm.yaml", &c, &msgs), SL_OK, "timeouts_litellm: loads");
    if (c != NULL && c->n_deployments == 2) {
        d = c->deployments;
        ok(d[0].timeout_ms == 12000 && d[0].stream_timeout_ms == 12000,
           "timeouts_litellm[0]: stream_timeout defaults to the deployment's timeout");
        ok(d[0].connect_timeout_ms == 10000 && d[0].first_byte_timeout_ms == 0 &&
           d[0].stream_idle_timeout_ms == 0, "timeouts_litellm[0]: connect 10 s, no first-byte "
           "limit, idle follows stream_timeout");
        ok(d[1].timeout_ms == 100000 && d[1].stream_timeout_ms == 100000,
           "timeouts_litellm[1]: request_timeout for both");
        is_int(c->max_request_timeout_ms, 100000, "timeouts_litellm: the ceiling defaults to request_timeout");
    } else {
        ok(0, "timeouts_litellm: 2 deployments");
    }
    sl_config_unref(c);
    sl_buf_free(&msgs);

    expect_errors("timeouts_errors.yaml", errors);
}

static const struct sl_sink *sink_named(const struct sl_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_sinks; i++)
        if (strcmp(c->sinks[i].name, name) == 0)
            return &c->sinks[i];
    return NULL;
}

static void test_callbacks(void)
{
    struct sl_config *c = NULL;
    const struct sl_sink *k;
    struct sl_buf msgs;

    unsetenv("LANGFUSE_PUBLIC_KEY");
    unsetenv("LANGFUSE_SECRET_KEY");
    unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    unsetenv("OTEL_ENDPOINT");
    unsetenv("OTEL_SERVICE_NAME");
    is_int(load("callbacks.yaml", &c, &msgs), SL_OK, "callbacks: loads");
    if (c == NULL) {
        sl_buf_free(&msgs);
        return;
    }
    is_int(c->n_sinks, 5, "callbacks: otel, audit, langfuse, audit-ok, audit-fail (prometheus is /metrics)");
    ok(c->tracing, "callbacks: otel turns tracing on");
    k = sink_named(c, "otel");
    ok(k != NULL && k->type == SL_SINK_OTLP && strcmp(k->url, "http://collector:4318/v1/traces") == 0,
       "otel: the base endpoint gets /v1/traces");
    ok(k != NULL && k->n_headers == 2 && strcmp(k->headers[0], "api-key: s=cret") == 0 &&
       strcmp(k->headers[1], "x-b: 2") == 0, "otel: headers name=value, percent-decoded, trimmed");
    ok(k != NULL && strcmp(k->service_name, "sluice") == 0, "otel: service.name defaults to sluice");
    ok(c->trace_parent_based && c->trace_ratio == 0.25, "otel: $OTEL_TRACES_SAMPLER and its argument");
    k = sink_named(c, "audit");
    ok(k != NULL && k->type == SL_SINK_WEBHOOK && k->format == SL_SINK_NDJSON && k->success &&
       k->failure && strcmp(k->url, "https://audit.example/logs") == 0 && k->n_headers == 1 &&
       strcmp(k->headers[0], "Authorization: Bearer hook-secret-1") == 0,
       "a generic_api callback from callback_settings");
    k = sink_named(c, "audit-ok");
    ok(k != NULL && k->success && !k->failure && k->format == SL_SINK_JSON_ARRAY,
       "success_callback (a single name): successes only");
    k = sink_named(c, "audit-fail");
    ok(k != NULL && !k->success && k->failure, "failure_callback: failures only");
    k = sink_named(c, "langfuse");
    ok(k != NULL && k->type == SL_SINK_LANGFUSE &&
       strcmp(k->url, "https://cloud.langfuse.com/api/public/ingestion") == 0 && k->n_headers == 1 &&
       strcmp(k->headers[0], "Authorization: Basic cGstMTpzay0y") == 0,
       "langfuse: the cloud by default, Basic auth of the two keys");
    has_msg(&msgs, "callback 'datadog' is not supported by sluice (ignored)", "an unsupported callback: a warning");
    ok(!c->metrics && !c->metrics_require_auth && c->n_metrics_nets == 3 &&
       c->metrics_nets[1].bits == 8 && c->metrics_nets[2].bits == 128,
       "metrics settings and the allowed networks");
    ok(c->callback_queue_size == 7 && c->callback_batch_size == 3 && c->callback_flush_ms == 250 &&
       c->callback_timeout_ms == 900, "the callback queue's settings");
    ok(strstr(text(&msgs), "hook-secret") == NULL && strstr(text(&msgs), "sk-2") == NULL,
       "no secret in the messages");
    sl_config_unref(c);
    sl_buf_free(&msgs);

    c = NULL;
    is_int(load("bad_callbacks.yaml", &c, &msgs), SL_ERR_CONFIG, "bad callbacks: refused");
    has_msg(&msgs, "callback_settings.hook1.endpoint: expected an http:// or https:// URL", "not http");
    has_msg(&msgs, "callback_settings.hook2.log_format: expected json_array, ndjson or single", "log_format");
    has_msg(&msgs, "callback_settings.hook2.headers.bad header: expected a header name", "a header name");
    has_msg(&msgs, "callback_settings.hook3.event_types: expected llm_api_success and/or llm_api_failure",
            "event_types");
    has_msg(&msgs, "$GENERIC_LOGGER_ENDPOINT: expected an http:// or https:// URL", "generic_api without its variable");
    has_msg(&msgs, "metrics_allowed_ips: expected an IPv4 or IPv6 address", "a bad network");
    has_msg(&msgs, "$OTEL_TRACES_SAMPLER_ARG: expected a number from 0 to 1", "a sampler's bad argument");
    has_msg(&msgs, "$OTEL_TRACES_SAMPLER: expected always_on", "an unknown sampler");
    has_msg(&msgs, "warning: callback langfuse: $LANGFUSE_PUBLIC_KEY and $LANGFUSE_SECRET_KEY are "
            "needed; the callback is off", "langfuse without its keys: off, with a warning");
    is_int(count(text(&msgs), "metrics_allowed_ips"), 3, "every bad entry reported, a number too");
    ok(strstr(text(&msgs), "top-secret-value") == NULL, "a header's value is never quoted");
    sl_config_unref(c);
    sl_buf_free(&msgs);
}

int main(void)
{
    test_full();
    test_callbacks();
    test_timeouts();
    test_defaults();
    test_remote_user();
    test_responses_store();
    test_errors();
    test_warnings();
    test_unset_env();
    test_empty();
    test_aliases();
    test_scalars();
    test_too_big();
    test_groups_refs();
    test_concurrent_swap();
    test_watcher();
    test_oom();
    return tap_done();
}

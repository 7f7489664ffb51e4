/* The response cache's key (cache.c): the same question in another member
 * order or with other transport members gets the same key; anything that
 * changes the answer, the model, the endpoint, the tenant or the namespace
 * gets another. And litellm_settings.cache_params as config.c reads it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "buf.h"
#include "cache.h"
#include "config.h"
#include "status.h"
#include "tap.h"

/* Loads a config made of litellm_settings text; the messages into msgs. */
static int load(const char *litellm, struct sl_config **c, struct sl_buf *msgs)
{
    const char *tmp = getenv("TMPDIR");
    char path[512];
    int fd, rc;
    FILE *f;

    snprintf(path, sizeof(path), "%s/sl-test-cache-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    fd = mkstemp(path);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
        return -1;
    fprintf(f, "model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n"
               "litellm_settings:\n%s", litellm);
    fclose(f);
    sl_buf_init(msgs, 1 << 16);
    *c = NULL;
    rc = sl_config_load(path, c, msgs);
    unlink(path);
    return rc;
}

static void config_tests(void)
{
    struct sl_config *c;
    struct sl_buf msgs;

    is_int(load("  cache: true\n  cache_params:\n    type: memcached\n    ttl: 30\n"
                "    namespace: ns\n    mode: default_off\n    supported_call_types: [aembedding]\n",
                &c, &msgs), SL_OK, "cache_params: loads");
    ok(c && c->cache.enabled && c->cache.ttl_ms == 30000 && c->cache.default_off &&
       !c->cache.chat && c->cache.embeddings && strcmp(c->cache.ns, "ns") == 0,
       "cache_params: every setting read");
    ok(msgs.len == 0, "cache_params: type memcached needs no warning");
    sl_config_unref(c);
    sl_buf_free(&msgs);

    is_int(load("  cache: true\n", &c, &msgs), SL_OK, "cache alone: loads");
    ok(c && c->cache.enabled && c->cache.ttl_ms == 600000 && !c->cache.default_off &&
       c->cache.chat && c->cache.embeddings && c->cache.ns == NULL, "cache alone: the defaults");
    sl_config_unref(c);
    sl_buf_free(&msgs);

    is_int(load("  cache: true\n  cache_params: {type: redis, host: h, port: 1}\n", &c, &msgs),
           SL_OK, "type redis: loads");
    ok(msgs.data && strstr(msgs.data, "warning: litellm_settings.cache_params.type: redis: sluice "
                           "keeps the response cache in memcached") != NULL, "type redis: a warning");
    ok(msgs.data && strstr(msgs.data, "cache_params.host") == NULL, "host, port: no warning of their own");
    sl_config_unref(c);
    sl_buf_free(&msgs);

    is_int(load("  cache: true\n  cache_params: {mode: sometimes}\n", &c, &msgs), SL_ERR_CONFIG,
           "a bad mode is an error");
    ok(msgs.data && strstr(msgs.data, "cache_params.mode: expected default_on or default_off"),
       "a bad mode: the message");
    sl_buf_free(&msgs);
    is_int(load("  cache_params: {ttl: -5}\n", &c, &msgs), SL_ERR_CONFIG, "a negative ttl is an error");
    sl_buf_free(&msgs);
    is_int(load("  cache_params: {supported_call_types: acompletion}\n", &c, &msgs), SL_ERR_CONFIG,
           "supported_call_types must be a list");
    sl_buf_free(&msgs);
}

static const char *key_of(const char *body, const char *model, const char *endpoint,
                          const char *tenant, const char *ns, char hex[65])
{
    json_t *b = json_loads(body, 0, NULL);
    int rc = b ? sl_cache_key(b, model, endpoint, tenant, ns, hex) : SL_ERR_BAD_JSON;

    json_decref(b);
    return rc == SL_OK ? hex : "error";
}

static int same(const char *a, const char *b)
{
    char x[65], y[65];

    return strcmp(key_of(a, "m", "chat", "team:t", NULL, x),
                  key_of(b, "m", "chat", "team:t", NULL, y)) == 0;
}

int main(void)
{
    static const char base[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.5}";
    char a[65], b[65];

    key_of(base, "m", "chat", "team:t", NULL, a);
    ok(strlen(a) == 64 && strspn(a, "0123456789abcdef") == 64, "the key is 64 hex digits");
    ok(same(base, "{\"temperature\":0.5,\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],"
                  "\"model\":\"m\"}"), "member order does not matter, nested either");
    ok(same(base, "{\"model\":\"other\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                  "\"temperature\":0.5,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                  "\"user\":\"u1\",\"metadata\":{\"tags\":[\"x\"]},\"cache\":{\"ttl\":5},"
                  "\"timeout\":30}"),
       "stream, stream_options, user, metadata, cache, timeout and the body's model are left out");
    ok(!same(base, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"ho\"}],"
                   "\"temperature\":0.5}"), "another message: another key");
    ok(!same(base, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                   "\"temperature\":0.7}"), "another temperature: another key");
    ok(!same(base, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                   "\"temperature\":0.5,\"seed\":1}"), "a seed: another key");
    ok(!same(base, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                   "\"temperature\":0.5,\"tools\":[{\"type\":\"function\",\"function\":"
                   "{\"name\":\"f\"}}]}"), "tools: another key");
    ok(!same(base, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                   "\"temperature\":0.5,\"max_tokens\":5}"), "max_tokens: another key");
    ok(strcmp(key_of(base, "m2", "chat", "team:t", NULL, b), a) != 0, "another model asked: another key");
    ok(strcmp(key_of(base, "m", "messages", "team:t", NULL, b), a) != 0, "another endpoint: another key");
    ok(strcmp(key_of(base, "m", "chat", "team:u", NULL, b), a) != 0, "another team: another key");
    ok(strcmp(key_of(base, "m", "chat", "key:t", NULL, b), a) != 0, "a key is not a team of that name");
    ok(strcmp(key_of(base, "m", "chat", "team:t", "ns1", b), a) != 0, "a namespace: another key");
    key_of(base, "m", "chat", "team:t", "ns1", a);
    ok(strcmp(key_of(base, "m", "chat", "team:t", "ns1", b), a) == 0, "the same namespace: the same key");
    config_tests();
    return tap_done();
}

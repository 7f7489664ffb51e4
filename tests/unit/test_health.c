/* GET /health without a web server: the masking of secrets in error texts,
 * which deployments are probed and with what model, and whole requests
 * through sl_request_run (mock deployments, a refused port, a mode that is
 * not probed, ?model= and ?model_id=, the callers it refuses), and more
 * silent deployments than probe threads: queued, then cut by the deadline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <jansson.h>

#include "health.c"     /* the statics: masked, probe_model, probe_endpoint */

#include "buf.h"
#include "memconn.h"
#include "tap.h"

#define KEY "Bearer sk-unit-master"
#define SECRET "sk-unit-SECRET-upstream-key"

static struct sl_arena *arena;
static struct sl_upstream_thread *up;

static void masking(void)
{
    struct sl_deployment d;
    char *s, long_text[1200];

    memset(&d, 0, sizeof(d));
    d.api_key = "sk-abcdef123";
    d.litellm_params = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s}", "model", "openai/x",
                                 "aws_secret_access_key", "AWSSECRET42",
                                 "vertex_credentials", "private_key", "PEMPEMPEM", "client_email", "a@b",
                                 "api_base", "https://example", "ad_token", "abc");
    s = masked(&d, "key sk-abcdef123 and AWSSECRET42 and PEMPEMPEM, base https://example, abc");
    is_str(s, "key *** and *** and ***, base https://example, abc",
           "api_key, an AWS secret and a nested credential are masked; a 3-byte one is not");
    free(s);
    s = masked(&d, "sk-abcdef123sk-abcdef123");
    is_str(s, "******", "back-to-back secrets");
    free(s);
    /* 499 ASCII bytes, then a 2-byte character across the 500-byte cut */
    memset(long_text, 'a', 499);
    strcpy(long_text + 499, "\xc3\xa9 and more text after the cut");
    s = masked(&d, long_text);
    is_int(strlen(s), 499, "cut at 500 bytes, not inside a UTF-8 character");
    free(s);
    json_decref(d.litellm_params);
}

static void choosing(void)
{
    struct sl_provider prov = { .name = "openai" };
    struct sl_deployment d;

    memset(&d, 0, sizeof(d));
    d.provider = &prov;
    d.upstream_model = "gpt-4o";
    d.model_info = json_pack("{s:s}", "health_check_model", "openai/gpt-4o-mini");
    is_str(probe_model(&d), "gpt-4o", "a deployment's own model");
    d.upstream_model = "*";
    is_str(probe_model(&d), "gpt-4o-mini", "a wildcard: health_check_model, provider prefix dropped");
    json_decref(d.model_info);
    d.model_info = json_pack("{s:s}", "health_check_model", "o3");
    is_str(probe_model(&d), "o3", "health_check_model without a prefix");
    json_decref(d.model_info);
    d.model_info = json_object();
    ok(probe_model(&d) == NULL, "a wildcard without health_check_model: not probed");
    json_decref(d.model_info);
    d.mode = NULL;
    is_int(probe_endpoint(&d), SL_EP_CHAT, "no mode: chat");
    d.mode = "completion";
    is_int(probe_endpoint(&d), SL_EP_CHAT, "completion: chat");
    d.mode = "embedding";
    is_int(probe_endpoint(&d), SL_EP_EMBEDDINGS, "embedding");
    d.mode = "image_generation";
    is_int(probe_endpoint(&d), SL_EP_NONE, "image_generation: not probed");
}

struct reply {
    int status;
    const char *body;
    json_t *json;
    struct memconn mc;
};

static void get(struct reply *r, const char *uri, const char *auth)
{
    const char *params[] = { "REQUEST_METHOD", "GET", "REQUEST_URI", uri,
                             auth ? "HTTP_AUTHORIZATION" : NULL, auth, NULL };
    struct sl_conn conn;
    const char *sep;

    json_decref(r->json);
    sl_buf_free(&r->mc.out);
    memset(r, 0, sizeof(*r));
    r->mc.params = params;
    r->mc.body = "";
    sl_buf_init(&r->mc.out, 16u << 20);
    conn.ops = &memconn_ops;
    conn.ctx = &r->mc;
    sl_request_run(conn, arena, up);
    if (r->mc.out.data == NULL || sscanf(r->mc.out.data, "Status: %d", &r->status) != 1 ||
        (sep = strstr(r->mc.out.data, "\r\n\r\n")) == NULL)
        return;
    r->body = sep + 4;
    r->json = json_loads(r->body, 0, NULL);
}

static const json_t *find(const json_t *list, const char *name)
{
    size_t i;
    json_t *e;

    json_array_foreach(list, i, e)
        if (strcmp(json_string_value(json_object_get(e, "model_name")), name) == 0)
            return e;
    return NULL;
}

static void requests(void)
{
    struct reply r;
    const json_t *ok_list, *bad_list, *e;

    memset(&r, 0, sizeof(r));
    get(&r, "/health", KEY);
    is_int(r.status, 200, "GET /health: 200");
    ok_list = json_object_get(r.json, "healthy_endpoints");
    bad_list = json_object_get(r.json, "unhealthy_endpoints");
    is_int(json_array_size(ok_list), 2, "two healthy: the mock chat and embedding deployments");
    is_int(json_integer_value(json_object_get(r.json, "healthy_count")), 2, "healthy_count");
    is_int(json_array_size(bad_list), 1, "one unhealthy: the refused port");
    is_int(json_integer_value(json_object_get(r.json, "unhealthy_count")), 1, "unhealthy_count");
    ok(find(ok_list, "mock-gpt") != NULL && find(ok_list, "mock-embed") != NULL, "the mocks are healthy");
    ok(find(ok_list, "pictures") == NULL && find(bad_list, "pictures") == NULL,
       "an image_generation deployment is not listed");
    e = find(bad_list, "refused");
    ok(e != NULL && strncmp(json_string_value(json_object_get(e, "error")), "Connection error: ", 18) == 0,
       "the refused port: a connection error");
    ok(e != NULL && json_object_get(e, "api_key") == NULL &&
       json_is_string(json_object_get(e, "api_base")) && json_is_string(json_object_get(e, "model_id")),
       "litellm_params without api_key, plus model_id");
    ok(r.body != NULL && strstr(r.body, SECRET) == NULL, "the upstream key is nowhere in the body");

    get(&r, "/health?model=mock-embed", KEY);
    is_int(r.status, 200, "?model=: 200");
    is_int(json_array_size(json_object_get(r.json, "healthy_endpoints")), 1, "?model=: one group");
    is_int(json_array_size(json_object_get(r.json, "unhealthy_endpoints")), 0, "?model=: nothing else");
    get(&r, "/health?model_id=refused-1", KEY);
    is_int(json_array_size(json_object_get(r.json, "unhealthy_endpoints")), 1, "?model_id=: that one");
    is_int(json_array_size(json_object_get(r.json, "healthy_endpoints")), 0, "?model_id=: only it");
    get(&r, "/health?model=pictures", KEY);
    is_int(r.status, 200, "a group of a mode not probed: 200");
    is_int(json_integer_value(json_object_get(r.json, "healthy_count")) +
           json_integer_value(json_object_get(r.json, "unhealthy_count")), 0, "... and empty lists");
    get(&r, "/health?model=nope", KEY);
    is_int(r.status, 404, "an unknown group: 404");
    ok(json_is_string(json_object_get(json_object_get(r.json, "error"), "message")), "... OpenAI-shaped");
    get(&r, "/health", NULL);
    is_int(r.status, 401, "no key: 401");
    get(&r, "/health", "Bearer sk-wrong");
    is_int(r.status, 401, "a wrong key: 401");
    get(&r, "/health/", KEY);
    is_int(r.status, 200, "a trailing slash is the same route");
    json_decref(r.json);
    sl_buf_free(&r.mc.out);
}

/* Loads yaml (NUL-terminated) as the current config; SL_OK or a status. */
static int install(const char *yaml, struct sl_config **out)
{
    char path[] = "/tmp/sluice-test-XXXXXX";
    int fd = mkstemp(path), rc;
    size_t len = strlen(yaml);

    *out = NULL;
    if (fd < 0)
        return SL_ERR_INTERNAL;
    if (write(fd, yaml, len) != (ssize_t)len) {
        close(fd);
        unlink(path);
        return SL_ERR_INTERNAL;
    }
    close(fd);
    rc = sl_config_load(path, out, NULL);
    unlink(path);
    if (rc == SL_OK)
        sl_config_install(*out);
    return rc;
}

/* A socket that listens and never accepts: a connection to it hangs. */
static int silent_socket(int *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

#define N_SILENT 70     /* more than two waves of HEALTH_MAX_THREADS */

/* 70 deployments that never answer, 1 s each: two waves of 32 fit in the
 * deadline (1 s + 1 s of slack), the rest are not probed. */
static void queue_and_deadline(void)
{
    struct sl_buf y;
    struct sl_config *cfg;
    struct reply r;
    const json_t *bad;
    size_t i, timeouts = 0, not_probed = 0;
    long long t0;
    json_t *e;
    int port = 0, fd = silent_socket(&port);

    ok(fd >= 0, "a silent socket");
    if (fd < 0)
        return;
    sl_buf_init(&y, 1u << 20);
    sl_buf_puts(&y, "general_settings: { master_key: sk-unit-master }\n"
                    "sluice_settings: { log_level: error }\nmodel_list:\n");
    for (i = 0; i < N_SILENT; i++)
        sl_buf_printf(&y, "  - model_name: silent\n    litellm_params: { model: openai/gpt-4o, "
                      "api_base: \"http://127.0.0.1:%d/v1\", api_key: sk-unit-x }\n"
                      "    model_info: { health_check_timeout: 1 }\n", port);
    sl_buf_append(&y, "", 1);
    ok(y.data != NULL && install(y.data, &cfg) == SL_OK, "a config of 70 silent deployments");
    sl_buf_free(&y);
    memset(&r, 0, sizeof(r));
    t0 = sl_now_us();
    get(&r, "/health", KEY);
    t0 = sl_now_us() - t0;
    bad = json_object_get(r.json, "unhealthy_endpoints");
    is_int(json_array_size(bad), N_SILENT, "every one is listed, unhealthy");
    json_array_foreach(bad, i, e) {
        const char *m = json_string_value(json_object_get(e, "error"));

        timeouts += m != NULL && strncmp(m, "Timeout: no answer within", 25) == 0;
        not_probed += m != NULL && strncmp(m, "Not probed:", 11) == 0;
    }
    ok(timeouts >= 2 * HEALTH_MAX_THREADS - 2, "two waves of probes timed out");
    ok(not_probed >= 1 && timeouts + not_probed == N_SILENT, "the rest were not probed");
    ok(t0 < 2600000, "the whole check took the deadline, 1 s + 1 s of slack, not 3 s");
    ok(t0 >= 1900000, "... and did wait for two waves");
    json_decref(r.json);
    sl_buf_free(&r.mc.out);
    close(fd);
}

int main(void)
{
    char path[] = "/tmp/sluice-test-XXXXXX";
    int fd = mkstemp(path);
    static const char yaml[] =
        "model_list:\n"
        "  - model_name: mock-gpt\n"
        "    litellm_params: { model: mock/echo }\n"
        "  - model_name: mock-embed\n"
        "    litellm_params: { model: mock/embed }\n"
        "    model_info: { mode: embedding }\n"
        "  - model_name: refused\n"
        "    litellm_params: { model: openai/gpt-4o, api_base: \"http://127.0.0.1:1/v1\", api_key: " SECRET " }\n"
        "    model_info: { id: refused-1 }\n"
        "  - model_name: pictures\n"
        "    litellm_params: { model: openai/dall-e-3, api_key: " SECRET " }\n"
        "    model_info: { mode: image_generation }\n"
        "general_settings:\n"
        "  master_key: sk-unit-master\n"
        "sluice_settings: { log_level: error, health_check_timeout_ms: 2000 }\n";
    struct sl_config *cfg = NULL;

    tap_private_tmpdir();
    masking();
    choosing();
    if (fd < 0 || write(fd, yaml, sizeof(yaml) - 1) != (ssize_t)sizeof(yaml) - 1)
        return 1;
    close(fd);
    ok(sl_config_load(path, &cfg, NULL) == SL_OK, "test config loads");
    unlink(path);
    if (cfg == NULL)
        return tap_done();
    is_int(cfg->health_check_timeout_ms, 2000, "sluice_settings.health_check_timeout_ms is read");
    sl_log_level = SL_LOG_ERROR;
    sl_config_install(cfg);
    sl_upstream_global_init();
    arena = sl_arena_create(64u << 20);
    up = sl_upstream_thread_new();
    requests();
    queue_and_deadline();
    sl_upstream_thread_free(up);
    sl_arena_free(arena);
    sl_config_install(NULL);
    sl_upstream_global_cleanup();
    return tap_done();
}

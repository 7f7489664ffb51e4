/* Unit tests for guard.c on a loaded config: which guardrails a request
 * runs, the prompt masked in req->in, answers (content, reasoning, tool
 * arguments) masked and restored whole and as stream chunks split anywhere,
 * and what a stream still holds released at its finish or its end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "guard.h"
#include "request.h"
#include "status.h"
#include "tap.h"

static struct sl_arena *arena;

static struct sl_config *load(void)
{
    static const char yaml[] =
        "model_list:\n"
        "  - model_name: m\n"
        "    litellm_params: {model: mock/echo}\n"
        "guardrails:\n"
        "  - guardrail_name: mask\n"
        "    litellm_params: {guardrail: sluice_pii, mode: pre_call, output_parse_pii: true}\n"
        "  - guardrail_name: answers\n"
        "    litellm_params: {guardrail: sluice_pii, mode: post_call, detectors: [PHONE]}\n";
    char path[] = "/tmp/sluice-guard-XXXXXX";
    int fd = mkstemp(path);
    struct sl_config *cfg = NULL;
    struct sl_buf msgs = { 0 };

    if (fd < 0 || write(fd, yaml, sizeof(yaml) - 1) != (ssize_t)sizeof(yaml) - 1)
        return NULL;
    close(fd);
    if (sl_config_load(path, &cfg, &msgs) != SL_OK)
        fprintf(stderr, "%.*s\n", (int)msgs.len, msgs.data ? msgs.data : "");
    sl_buf_free(&msgs);
    unlink(path);
    return cfg;
}

static void setup(struct sl_request *req, struct sl_config *cfg, const char *body)
{
    sl_arena_reset(arena);
    memset(req, 0, sizeof(*req));
    req->arena = arena;
    req->cfg = cfg;
    req->endpoint = SL_EP_CHAT;
    req->in = json_loads(body, 0, NULL);
    req->body = sl_arena_strdup(arena, body);
}

static const char *content_of(const json_t *in, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(in, "messages"), i),
                                             "content"));
}

/* Sends text as chunks of n bytes (the delta member key), then a finish;
 * returns what the client would have read (arena). */
static const char *streamed(struct sl_request *req, const char *key, const char *text, size_t n)
{
    struct sl_buf got;
    size_t len = strlen(text);
    const char *out;

    sl_buf_init(&got, 1u << 16);
    for (size_t at = 0; at <= len; at += n) {
        int finish = at + n > len;
        json_t *c = json_pack("{s:[{s:i, s:{s:s%}, s:o}]}", "choices", "index", 0, "delta", key,
                              text + at, at + n > len ? len - at : n, "finish_reason",
                              finish ? json_string("stop") : json_null());
        const char *piece;

        if (c == NULL || sl_guard_chunk(req, c) != SL_OK) {
            json_decref(c);
            sl_buf_free(&got);
            return NULL;
        }
        piece = json_string_value(json_object_get(json_object_get(json_array_get(
                    json_object_get(c, "choices"), 0), "delta"), key));
        if (piece != NULL)
            sl_buf_append(&got, piece, strlen(piece));
        json_decref(c);
    }
    out = sl_arena_strndup(arena, got.data ? got.data : "", got.len);
    sl_buf_free(&got);
    return out;
}

int main(void)
{
    struct sl_config *cfg;
    struct sl_request req;
    json_t *resp;

    tap_private_tmpdir();
    arena = sl_arena_create(4u << 20);
    cfg = load();
    ok(cfg != NULL && cfg->n_guardrails == 2, "two guardrails loaded");
    if (cfg == NULL)
        return tap_done();

    setup(&req, cfg, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    is_int(sl_guard_select(&req), SL_OK, "no guardrail asked, none default_on");
    ok(req.guard == NULL, "nothing runs");
    json_decref(req.in);

    setup(&req, cfg, "{\"model\":\"m\",\"guardrails\":[\"mask\",\"answers\"],\"messages\":["
                     "{\"role\":\"system\",\"content\":\"admin a@example.com\"},"
                     "{\"role\":\"user\",\"content\":\"mail a@example.com or b@example.org\"}]}");
    is_int(sl_guard_select(&req), SL_OK, "two asked");
    is_int(sl_guard_pre(&req), SL_OK, "pre_call ran");
    ok(json_object_get(req.in, "guardrails") == NULL, "the member is gone from the body");
    is_str(content_of(req.in, 0), "admin <EMAIL_1>", "the system message masked");
    is_str(content_of(req.in, 1), "mail <EMAIL_1> or <EMAIL_2>", "the same value, the same placeholder");
    ok(req.body == NULL, "the adapters build the body from req->in");
    ok(sl_guard_on_answer(&req), "the answer goes through the guardrails");

    resp = json_pack("{s:[{s:i, s:{s:s, s:s, s:s, s:[{s:s, s:{s:s, s:s}}]}}]}", "choices", "index", 0,
                     "message", "role", "assistant", "content", "write <EMAIL_2>, call +44 20 7946 0958",
                     "reasoning_content", "they said <EMAIL_1>", "tool_calls", "id", "c1",
                     "function", "name", "f", "arguments", "{\"to\":\"<EMAIL_1>\"}");
    is_int(sl_guard_answer(&req, resp), SL_OK, "a whole answer");
    {
        json_t *msg = json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message");

        is_str(json_string_value(json_object_get(msg, "content")),
               "write b@example.org, call <PHONE_1>", "restored, and the model's phone masked");
        is_str(json_string_value(json_object_get(msg, "reasoning_content")),
               "they said a@example.com", "reasoning restored");
        is_str(json_string_value(json_object_get(json_object_get(json_array_get(
                   json_object_get(msg, "tool_calls"), 0), "function"), "arguments")),
               "{\"to\":\"a@example.com\"}", "tool arguments restored");
    }
    json_decref(resp);

    {
        const char *got = streamed(&req, "reasoning_content", "see <EMAIL_2> or +44 20 7946 0958 now", 3);

        is_str(got, "see b@example.org or <PHONE_1> now", "reasoning in 3-byte chunks: both, across chunks");
    }
    json_decref(req.in);

    for (size_t n = 1; n <= 9; n += 4) {
        char name[96];
        const char *got;

        setup(&req, cfg, "{\"model\":\"m\",\"guardrails\":[\"mask\",\"answers\"],\"messages\":["
                         "{\"role\":\"user\",\"content\":\"x@example.com\"}]}");
        if (sl_guard_select(&req) != SL_OK || sl_guard_pre(&req) != SL_OK)
            break;
        got = streamed(&req, "content", "to <EMAIL_1> (tel +1 415 555 0100)", n);
        snprintf(name, sizeof(name), "content in %zu-byte chunks: restored and masked whole", n);
        is_str(got, "to x@example.com (tel <PHONE_1>)", name);
        json_decref(req.in);
    }
    sl_config_unref(cfg);
    sl_arena_free(arena);
    return tap_done();
}

/* The Anthropic Messages surface (src/messages.c), driven by case folders
 * under tests/data/messages/<case>/:
 *   deployment.json       {"model": "openai/x"}: the routed deployment (its provider matters)
 *   client.json           the Anthropic request the client sent
 *   expected_openai.json  optional: the OpenAI-shaped request it becomes
 *   build_error           optional: the conversion must refuse it with a 400 whose
 *                         message contains this text
 *   completion.json       optional: an OpenAI completion; expected.json is then the
 *                         Anthropic message the client gets
 *   chunks.json           optional: OpenAI chunks of a stream; expected_events.json is
 *                         then [[event name, data], ...] the client gets, end included
 * "id" values in expected files are checked for their "msg_" prefix only. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "arena.h"
#include "config.h"
#include "jsonutil.h"
#include "messages.h"
#include "provider.h"
#include "request.h"
#include "status.h"
#include "tap.h"
#include "cases.h"
#include "memconn.h"

/* Message ids are made from the request id: only their prefix is checked. */
static void scrub_ids(json_t *v)
{
    const char *key;
    json_t *x;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, key, x) {
            if (strcmp(key, "id") == 0 && json_is_string(x) && strncmp(json_string_value(x), "msg_", 4) == 0)
                json_object_set_new(v, "id", json_string("msg_*"));
            else
                scrub_ids(x);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            scrub_ids(x);
    }
}

/* Compares and releases got. */
static void same(const char *name, const char *what, json_t *got, json_t *want)
{
    char label[1024];

    scrub_ids(got);
    snprintf(label, sizeof(label), "%s: %s", name, what);
    if (!ok(json_equal(got, want), label)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY), *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);

        printf("#   got  %s\n#   want %s\n", g ? g : "(null)", w ? w : "(null)");
        free(g);
        free(w);
    }
    json_decref(got);
}

static void run_case(const char *dir, const char *name, struct sl_arena *a)
{
    const char *params[] = { NULL };
    struct memconn mc = { .params = params };
    struct sl_request req;
    struct sl_deployment dep;
    json_t *depj = case_json(dir, "deployment.json"), *want, *v;
    char *build_error = case_line(dir, "build_error"), label[1024], pbuf[64];
    const char *model = json_string_value(json_object_get(depj, "model")), *slash;
    size_t i;
    int rc;

    memset(&req, 0, sizeof(req));
    memset(&dep, 0, sizeof(dep));
    sl_buf_init(&mc.out, 16u << 20);
    req.arena = a;
    req.conn.ops = &memconn_ops;
    req.conn.ctx = &mc;
    strcpy(req.id, "test-request-id");
    req.surface = SL_SURFACE_ANTHROPIC;
    req.endpoint = SL_EP_MESSAGES;
    req.in = case_json(dir, "client.json");
    if (req.in != NULL)
        sl_arena_defer(a, sl_json_decref_cb, req.in);   /* as request.c does */
    if (req.in == NULL || model == NULL) {
        ok(0, name);
        printf("#   case %s lacks client.json or deployment.json\n", dir);
        goto out;
    }
    slash = strchr(model, '/');
    snprintf(pbuf, sizeof(pbuf), "%.*s", slash ? (int)(slash - model) : 6, slash ? model : "openai");
    dep.provider = sl_provider_find(pbuf);
    dep.model = model;
    dep.upstream_model = slash ? slash + 1 : model;
    dep.litellm_params = depj;
    req.dep = &dep;
    req.model = json_string_value(json_object_get(req.in, "model"));
    req.stream = json_is_true(json_object_get(req.in, "stream"));
    if (dep.provider == NULL) {
        ok(0, name);
        goto out;
    }

    rc = sl_messages_validate(&req);
    if (rc == SL_OK)
        rc = sl_messages_to_openai(&req);
    snprintf(label, sizeof(label), "%s: conversion", name);
    if (build_error != NULL) {
        is_int(rc, SL_ERR_BAD_REQUEST, label);
        snprintf(label, sizeof(label), "%s: error message", name);
        if (!ok(req.err_msg && strstr(req.err_msg, build_error), label))
            printf("#   got %s\n", req.err_msg ? req.err_msg : "(null)");
        goto out;
    }
    is_int(rc, SL_OK, label);
    if ((want = case_json(dir, "expected_openai.json")) != NULL) {
        same(name, "OpenAI request", json_deep_copy(req.in), want);
        json_decref(want);
    }
    if ((v = case_json(dir, "completion.json")) != NULL) {
        want = case_json(dir, "expected.json");
        case_usage(&req, json_object_get(v, "usage"));
        rc = sl_messages_send_completion(&req, v);
        snprintf(label, sizeof(label), "%s: completion sent", name);
        is_int(rc, SL_OK, label);
        same(name, "Anthropic message", json_loads(case_body(&mc), 0, NULL), want);
        json_decref(want);
        json_decref(v);
    }
    if ((v = case_json(dir, "chunks.json")) != NULL) {
        json_t *c;

        want = case_json(dir, "expected_events.json");
        rc = SL_OK;
        json_array_foreach(v, i, c) {
            case_usage(&req, json_object_get(c, "usage"));
            if (rc == SL_OK)
                rc = sl_messages_send_chunk(&req, c);
        }
        if (rc == SL_OK)
            rc = sl_messages_finish(&req);
        snprintf(label, sizeof(label), "%s: stream sent", name);
        is_int(rc, SL_OK, label);
        same(name, "Anthropic events", case_events(case_body(&mc)), want);
        json_decref(want);
        json_decref(v);
    }
out:
    free(build_error);
    sl_buf_free(&mc.out);
    json_decref(depj);
    sl_arena_reset(a);   /* both the client's request and the converted one */
}

int main(void)
{
    struct sl_arena *a = sl_arena_create(64u << 20);
    int cases = case_each("messages", run_case, a);

    ok(cases > 0, "messages cases were found");
    sl_arena_free(a);
    return tap_done();
}

/* bench/guard.c — what guardrails add to a request: sl_guard_select and
 * sl_guard_pre on a chat request whose prompt is about 4 KB of ordinary
 * text (a system and a user message, a few PII values among them), with
 * the default detector set masking, and with no guardrail configured (the
 * cost of guardrails off). Prints µs per request (best of 5 runs) beside
 * the 30 µs target, and the scan rate of the default detectors over 4 MB
 * of that text (MB/s, one core) beside the 200 MB/s target. Built and run
 * by bench/guard.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "guard.h"
#include "pii.h"
#include "request.h"
#include "status.h"

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct sl_config *load(const char *dir, const char *name, int guarded)
{
    char path[4096];
    struct sl_config *cfg = NULL;
    struct sl_buf msgs = { 0 };
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.yaml", dir, name);
    if ((f = fopen(path, "w")) == NULL)
        return NULL;
    fprintf(f, "model_list:\n  - model_name: m\n    litellm_params: {model: mock/echo}\n");
    if (guarded)
        fprintf(f, "guardrails:\n  - guardrail_name: pii\n    litellm_params: {guardrail: sluice_pii, "
                   "mode: pre_call, default_on: true, output_parse_pii: true}\n");
    fclose(f);
    if (sl_config_load(path, &cfg, &msgs) != SL_OK) {
        fprintf(stderr, "guard: config: %.*s\n", (int)msgs.len, msgs.data ? msgs.data : "");
        cfg = NULL;
    }
    sl_buf_free(&msgs);
    return cfg;
}

/* About 4 KB of chat text with an e-mail address, a phone number and a
 * card number in it. */
static char *prompt(void)
{
    static const char para[] =
        "Thanks for the update on the quarterly planning. I went through the notes from "
        "Tuesday and I think we agree on the main points: the migration starts in March, the "
        "old cluster stays up until the end of April, and the team reviews the dashboards "
        "every Monday at 10:00. Version 2.4.1 fixed the timeout issue we saw on 2025-11-03. ";
    size_t n = 0, cap = 8192;
    char *p = malloc(cap);

    if (p == NULL)
        return NULL;
    p[0] = '\0';
    while (n < 3700) {
        memcpy(p + n, para, sizeof(para) - 1);
        n += sizeof(para) - 1;
    }
    n += (size_t)snprintf(p + n, cap - n, "Write to maria.garcia@example.com or call "
                          "+44 20 7946 0958; the card on file is 4111 1111 1111 1111.");
    p[n] = '\0';
    return p;
}

static int run(const char *what, struct sl_config *cfg, struct sl_arena *arena, const char *text,
               long iters, double *best_us)
{
    long long best = -1;

    for (int r = 0; r < 5; r++) {
        long long t0 = now_ns(), dt;

        for (long i = 0; i < iters; i++) {
            struct sl_request req;
            int rc;

            memset(&req, 0, sizeof(req));
            req.cfg = cfg;
            req.arena = arena;
            req.endpoint = SL_EP_CHAT;
            req.model = "m";
            req.in = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "model", "m", "messages",
                               "role", "system", "content", "You are a helpful assistant.",
                               "role", "user", "content", text);
            if (req.in == NULL)
                return 1;
            rc = sl_guard_select(&req);
            if (rc == SL_OK)
                rc = sl_guard_pre(&req);
            json_decref(req.in);
            sl_arena_reset(arena);
            if (rc != SL_OK) {
                fprintf(stderr, "guard: %s: %s\n", what, sl_status_name(rc));
                return 1;
            }
        }
        dt = (now_ns() - t0) / iters;
        if (best < 0 || dt < best)
            best = dt;
    }
    *best_us = best / 1000.0;
    return 0;
}

/* MB/s of the default detector set (masking) over about 4 MB of the same
 * text, one core. */
static double scan_rate(const char *text, struct sl_arena *arena)
{
    size_t one = strlen(text), reps = (4u << 20) / one, n = one * reps;
    char *big = malloc(n + 1);
    struct sl_pii_set *set = NULL;
    char err[256];
    double best = 0;

    if (big == NULL || sl_pii_compile(NULL, 0, &set, err, sizeof(err)) != SL_OK) {
        free(big);
        return 0;
    }
    for (size_t i = 0; i < reps; i++)
        memcpy(big + i * one, text, one);
    big[n] = '\0';
    for (int r = 0; r < 5; r++) {
        struct sl_arena *a = sl_arena_create(64u << 20);
        struct sl_pii_map *map = a ? sl_pii_map_new(a) : NULL;
        const char *out;
        size_t out_len;
        long long t0 = now_ns(), dt;

        if (map == NULL || sl_pii_scan(set, map, a, big, n, &out, &out_len, NULL) != SL_OK) {
            sl_arena_free(a);
            break;
        }
        dt = now_ns() - t0;
        if (n / (dt / 1e3) > best)
            best = n / (dt / 1e3);     /* bytes per µs = MB/s */
        sl_arena_free(a);
    }
    (void)arena;
    sl_pii_free(set);
    free(big);
    return best;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "bench/out";
    long iters = argc > 2 ? atol(argv[2]) : 20000;
    struct sl_arena *arena = sl_arena_create(1u << 20);
    struct sl_config *on = load(dir, "guard-on", 1), *off = load(dir, "guard-off", 0);
    char *text = prompt();
    double t_on = 0, t_off = 0, t_base = 0;
    int rc = 1;

    if (on != NULL && off != NULL && text != NULL && arena != NULL &&
        run("off", off, arena, text, iters, &t_off) == 0 &&
        run("on", on, arena, text, iters, &t_on) == 0) {
        t_base = t_off;     /* the JSON the loop builds either way */
        printf("guardrails on a %zu-byte prompt (default detectors, masking and restore on):\n",
               strlen(text));
        printf("  guardrails on   %8.2f us per request (%.2f us over guardrails off; target <= 30 us)\n",
               t_on, t_on - t_base);
        printf("  guardrails off  %8.2f us per request (the request's own JSON; guardrails add nothing)\n",
               t_off);
        printf("  scan rate       %8.0f MB/s (default detectors masking, one core; target >= 200 MB/s)\n",
               scan_rate(text, arena));
        rc = 0;
    }
    free(text);
    sl_config_unref(on);
    sl_config_unref(off);
    sl_arena_free(arena);
    return rc;
}

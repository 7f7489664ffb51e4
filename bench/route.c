/* bench/route.c — what a routing decision costs: sl_router_pick and
 * sl_router_release on a model group of N deployments (default 50), for
 * each routing strategy, on the real router code and a real config load.
 * Prints ns per decision (the best of several runs) beside the 2 µs target.
 * Built and run by bench/route.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "request.h"
#include "router.h"
#include "status.h"

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct sl_config *load(const char *dir, const char *strategy, int n)
{
    char path[4096];
    struct sl_config *cfg = NULL;
    struct sl_buf msgs = { 0 };
    FILE *f;

    snprintf(path, sizeof(path), "%s/route-%s.yaml", dir, strategy);
    if ((f = fopen(path, "w")) == NULL)
        return NULL;
    fprintf(f, "router_settings:\n  routing_strategy: %s\n  num_retries: 2\nmodel_list:\n", strategy);
    for (int i = 0; i < n; i++)
        fprintf(f, "  - model_name: big\n    litellm_params: {model: mock/echo, weight: %d, rpm: %d}\n"
                   "    model_info: {id: big-%d}\n", 1 + i % 5, 100000000 + i, i);
    fclose(f);
    if (sl_config_load(path, &cfg, &msgs) != SL_OK) {
        fprintf(stderr, "route: config: %.*s\n", (int)msgs.len, msgs.data ? msgs.data : "");
        cfg = NULL;
    }
    sl_buf_free(&msgs);
    return cfg;
}

int main(int argc, char **argv)
{
    static const char *const strategies[] = { "simple-shuffle", "least-busy",
                                              "latency-based-routing", "usage-based-routing" };
    const char *dir = argc > 1 ? argv[1] : "bench/out";
    int n = argc > 2 ? atoi(argv[2]) : 50, over = 0;
    long iters = argc > 3 ? atol(argv[3]) : 200000;
    struct sl_arena *arena = sl_arena_create(1u << 16);

    printf("routing decision, a group of %d deployments (target < 2000 ns):\n", n);
    for (size_t s = 0; s < sizeof(strategies) / sizeof(strategies[0]); s++) {
        struct sl_config *cfg = load(dir, strategies[s], n);
        struct sl_request req;
        long long best = -1;

        if (cfg == NULL)
            return 1;
        for (int run = 0; run < 5; run++) {
            long long t0 = now_ns(), dt;

            for (long i = 0; i < iters; i++) {
                memset(&req, 0, sizeof(req));
                req.cfg = cfg;
                req.arena = arena;
                req.model = "big";
                req.principal.role = SL_ROLE_ADMIN;
                req.usage.total_tokens = 20;
                if (sl_router_pick(&req) != SL_OK) {
                    fprintf(stderr, "route: no pick (%s)\n", req.err_msg ? req.err_msg : "?");
                    return 1;
                }
                sl_router_release(&req, 1);
                sl_arena_reset(arena);
            }
            dt = (now_ns() - t0) / iters;
            if (best < 0 || dt < best)
                best = dt;
        }
        printf("  %-24s %6lld ns%s\n", strategies[s], best, best > 2000 ? "   over target" : "");
        over += best > 2000;
        sl_config_unref(cfg);
    }
    sl_arena_free(arena);
    return over ? 3 : 0;
}

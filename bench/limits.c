/* bench/limits.c — what the rate-limit check costs a call: sl_ratelimit_admit
 * and sl_ratelimit_release for a key with rpm_limit, tpm_limit and
 * max_parallel_requests, whose team and user have the same three, on the
 * real code against a real memcached (the address is argv[1]). Two cases:
 *   far:   limits far from reached (leases serve most calls from memory);
 *          the spend writer's upkeep (sl_counter_maintain) runs every
 *          `calls_per_tick` calls, as it would every second at that rate;
 *   near:  every call a round trip per counter, as when limits are nearly
 *          reached.
 * Prints ns per call (best of 5 runs) and the memcached commands per call
 * the program counted from memcached's own stats. Built and run by
 * bench/limits.sh. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "counter.h"
#include "keys.h"
#include "ratelimit.h"
#include "request.h"
#include "status.h"

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* memcached's cmd_get + cmd_set + incr/decr hits and misses + cmd_touch:
 * every command a client sent. -1 on failure. */
static long long mc_commands(int port)
{
    static const char *const names[] = { "cmd_get", "cmd_set", "incr_hits", "incr_misses",
                                         "decr_hits", "decr_misses", "cmd_touch" };
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    char buf[8192];
    size_t n = 0;
    long long total = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, "stats\r\n", 7) != 7) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) {
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "END\r\n") != NULL)
            break;
    }
    close(fd);
    buf[n] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char pat[64], *p;

        snprintf(pat, sizeof(pat), "STAT %s ", names[i]);
        if ((p = strstr(buf, pat)) != NULL)
            total += atoll(p + strlen(pat));
    }
    return total;
}

static struct sl_config *load(const char *dir, int port)
{
    char path[4096];
    struct sl_config *cfg = NULL;
    struct sl_buf msgs = { 0 };
    FILE *f;

    snprintf(path, sizeof(path), "%s/limits.yaml", dir);
    if ((f = fopen(path, "w")) == NULL)
        return NULL;
    fprintf(f, "general_settings:\n  memcached_servers: [\"127.0.0.1:%d\"]\n"
               "model_list:\n  - model_name: m\n    litellm_params: {model: mock/echo}\n", port);
    fclose(f);
    if (sl_config_load(path, &cfg, &msgs) != SL_OK) {
        fprintf(stderr, "limits: config: %.*s\n", (int)msgs.len, msgs.data ? msgs.data : "");
        cfg = NULL;
    }
    sl_buf_free(&msgs);
    return cfg;
}

static int one_call(struct sl_config *cfg, struct sl_arena *arena, const struct sl_key *k)
{
    struct sl_request req;
    int rc;

    memset(&req, 0, sizeof(req));
    req.cfg = cfg;
    req.arena = arena;
    req.model = "m";
    req.principal.key = k;
    req.body_len = 400;
    rc = sl_ratelimit_admit(&req);
    req.llm_called = 1;
    req.usage.total_tokens = 120;
    sl_ratelimit_release(&req);
    sl_arena_reset(arena);
    return rc;
}

/* Best ns per call of 5 runs of iters calls, and the memcached commands
 * per call over them all. */
static int run(const char *what, struct sl_config *cfg, struct sl_arena *arena, struct sl_key *k,
               int port, long iters, long per_tick)
{
    long long best = -1, before = mc_commands(port), after;

    for (int r = 0; r < 5; r++) {
        long long t0 = now_ns(), dt;

        for (long i = 0; i < iters; i++) {
            if (one_call(cfg, arena, k) != SL_OK) {
                fprintf(stderr, "limits: %s: a call was refused\n", what);
                return 1;
            }
            if (per_tick > 0 && i % per_tick == per_tick - 1)
                sl_counter_maintain();
        }
        dt = (now_ns() - t0) / iters;
        if (best < 0 || dt < best)
            best = dt;
    }
    after = mc_commands(port);
    printf("  %-6s %7lld ns per call   %6.3f memcached commands per call\n", what, best,
           before >= 0 && after >= 0 ? (double)(after - before) / (double)(5 * iters) : -1.0);
    return 0;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 11211;
    const char *dir = argc > 2 ? argv[2] : "bench/out";
    long iters = argc > 3 ? atol(argv[3]) : 20000, per_tick = argc > 4 ? atol(argv[4]) : 2000;
    struct sl_arena *arena = sl_arena_create(1u << 16);
    struct sl_config *cfg = load(dir, port);
    struct sl_key k;
    int rc;

    if (cfg == NULL)
        return 1;
    sl_config_install(cfg);         /* upkeep works on the installed config */
    memset(&k, 0, sizeof(k));
    snprintf(k.token, sizeof(k.token), "%064d", 7);
    k.team_id = "bench-team";
    k.user_id = "bench-user";
    printf("rate-limit check, a key with rpm, tpm and parallel limits, its team's and user's too "
           "(9 counters):\n");
    k.rpm_limit = k.team_limits.rpm_limit = k.user_limits.rpm_limit = 1000000000LL;
    k.tpm_limit = k.team_limits.tpm_limit = k.user_limits.tpm_limit = 1000000000000LL;
    k.max_parallel_requests = k.team_limits.max_parallel_requests =
        k.user_limits.max_parallel_requests = 1000000;
    sl_counter_maintain();          /* upkeep runs: leases batch */
    rc = run("far", cfg, arena, &k, port, iters, per_tick);
    /* Near: every call a round trip per counter, as when little room is
     * left (leases of one call): what a call costs when upkeep has not run
     * for a while is exactly that, so wait for that. */
    if (rc == 0) {
        sleep(6);
        rc = run("near", cfg, arena, &k, port, iters / 10, 0);
    }
    sl_config_install(NULL);
    sl_arena_free(arena);
    return rc;
}

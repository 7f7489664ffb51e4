/* memcached through libmemcached, loaded on first use (see mcache.h), and
 * the health of the servers as this process sees it.
 *
 * libmemcached is C++ inside: linking it would map libstdc++ and libm into
 * every process (1.2 MB of RSS) whether memcached is configured or not. So
 * it is loaded the first time a memcached server is configured, and its
 * functions are called through a table typed from its own header. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libmemcached/memcached.h>

#include "config.h"
#include "log.h"
#include "mcache.h"

static struct {
    __typeof__(memcached_create) *create;
    __typeof__(memcached_free) *free;
    __typeof__(memcached_behavior_set) *behavior_set;
    __typeof__(memcached_server_add) *server_add;
    __typeof__(memcached_server_add_unix_socket) *server_add_unix_socket;
    __typeof__(memcached_get) *get;
    __typeof__(memcached_set) *set;
    __typeof__(memcached_add) *add;
    __typeof__(memcached_delete) *del;
    __typeof__(memcached_increment_by_key) *incr;
    __typeof__(memcached_decrement_by_key) *decr;
    __typeof__(memcached_increment_with_initial_by_key) *incr_init;
    __typeof__(memcached_decrement_with_initial_by_key) *decr_init;
    __typeof__(memcached_strerror) *strerror;
    __typeof__(memcached_server_get_last_disconnect) *last_disconnect;
    __typeof__(memcached_server_name) *server_name;
    __typeof__(memcached_server_port) *server_port;
    int ok;
} mcl;
static pthread_once_t mcl_once = PTHREAD_ONCE_INIT;

#define MCL_LIB "libmemcached.so.11"

static void mcl_load(void)
{
    void *h = dlopen(MCL_LIB, RTLD_NOW | RTLD_LOCAL);

    if (h != NULL) {
        *(void **)&mcl.create = dlsym(h, "memcached_create");
        *(void **)&mcl.free = dlsym(h, "memcached_free");
        *(void **)&mcl.behavior_set = dlsym(h, "memcached_behavior_set");
        *(void **)&mcl.server_add = dlsym(h, "memcached_server_add");
        *(void **)&mcl.server_add_unix_socket = dlsym(h, "memcached_server_add_unix_socket");
        *(void **)&mcl.get = dlsym(h, "memcached_get");
        *(void **)&mcl.set = dlsym(h, "memcached_set");
        *(void **)&mcl.add = dlsym(h, "memcached_add");
        *(void **)&mcl.del = dlsym(h, "memcached_delete");
        *(void **)&mcl.incr = dlsym(h, "memcached_increment_by_key");
        *(void **)&mcl.decr = dlsym(h, "memcached_decrement_by_key");
        *(void **)&mcl.incr_init = dlsym(h, "memcached_increment_with_initial_by_key");
        *(void **)&mcl.decr_init = dlsym(h, "memcached_decrement_with_initial_by_key");
        *(void **)&mcl.strerror = dlsym(h, "memcached_strerror");
        *(void **)&mcl.last_disconnect = dlsym(h, "memcached_server_get_last_disconnect");
        *(void **)&mcl.server_name = dlsym(h, "memcached_server_name");
        *(void **)&mcl.server_port = dlsym(h, "memcached_server_port");
        mcl.ok = mcl.create && mcl.free && mcl.behavior_set && mcl.server_add &&
                 mcl.server_add_unix_socket && mcl.get && mcl.set && mcl.add && mcl.del &&
                 mcl.incr && mcl.decr && mcl.incr_init && mcl.decr_init && mcl.strerror &&
                 mcl.last_disconnect && mcl.server_name && mcl.server_port;
    }
    if (!mcl.ok)
        sl_log(SL_LOG_WARN, NULL, "memcached_servers is set but %s cannot be loaded (%s): key "
               "snapshots are cached per process, budgets and limits counted per host only "
               "(install the Debian package libmemcached11)", MCL_LIB, h ? "missing symbols" : dlerror());
}

/* One client per thread (libmemcached handles are not thread-safe, and one
 * shared handle under a mutex made every worker wait for every other's
 * round trip), made on the thread's first use and rebuilt when the server
 * list changes; freed when the thread exits. Short time-outs, and a dead
 * server is skipped for a while. */
struct client {
    memcached_st *mc;
    char *servers;               /* the list mc was built for */
};

static pthread_key_t client_key;
static pthread_once_t client_once = PTHREAD_ONCE_INIT;

static void client_free(void *p)
{
    struct client *c = p;

    if (c == NULL)
        return;
    if (c->mc != NULL)
        mcl.free(c->mc);
    free(c->servers);
    free(c);
}

static void client_key_make(void)
{
    (void)pthread_key_create(&client_key, client_free);
}

int sl_mc_configured(const struct sl_config *cfg)
{
    return cfg != NULL && cfg->n_memcached_servers > 0;
}

/* Whether text is cfg's server list as servers_text writes it. */
static int same_servers(const struct sl_config *cfg, const char *text)
{
    char one[320];

    for (size_t i = 0; i < cfg->n_memcached_servers; i++) {
        int n = snprintf(one, sizeof(one), "%s%s:%u", i ? "," : "", cfg->memcached_servers[i].host,
                         cfg->memcached_servers[i].port);

        if (n < 0 || (size_t)n >= sizeof(one) || strncmp(text, one, (size_t)n) != 0)
            return 0;
        text += n;
    }
    return *text == '\0';
}

static char *servers_text(const struct sl_config *cfg)
{
    size_t size = 1;
    char *s, *p;

    for (size_t i = 0; i < cfg->n_memcached_servers; i++)
        size += strlen(cfg->memcached_servers[i].host) + 16;
    if ((s = malloc(size)) == NULL)
        return NULL;
    p = s;
    *p = '\0';
    for (size_t i = 0; i < cfg->n_memcached_servers; i++)
        p += snprintf(p, size - (size_t)(p - s), "%s%s:%u", i ? "," : "",
                      cfg->memcached_servers[i].host, cfg->memcached_servers[i].port);
    return s;
}

/* A client for the n servers sv (NULL on OOM).
 *
 * - Binary protocol: incr/decr then answer "not found" for a missing key
 *   as in the text protocol (libmemcached sends them with the "do not
 *   create" expiry), so sl_mc_add_to keeps its contract; they can also
 *   create a missing counter with an expiry in the same round trip
 *   (sl_mc_count). The server stops a decrement at 0 and pads a shortened
 *   value with spaces in both protocols (do_add_delta is shared): readers
 *   parse counters with atoll, which stops at the first space.
 * - Consistent hashing (ketama, MD5 as other ketama clients have it), so
 *   one server more or less moves only its share of the keys.
 * - Short time-outs: memcached must never slow a request down much.
 * - A server that refused or timed out a connection is taken out of the
 *   ring (FAIL_LIMIT: at the first such failure) for DEAD_S: its keys go to
 *   the others; when the time is up it is tried again, one connection
 *   attempt per client. (With a limit of 2, its keys failed for RETRY_S
 *   more before moving: tried, 4 s of failed calls with two servers.) With
 *   one server there is nowhere for keys to go: for RETRY_S after a failed
 *   connect, calls fail at once (no connection attempt, no time-out) and
 *   fall back to the host's table. A server that accepts connections but
 *   never answers still costs each call TIMEOUT_MS: libmemcached counts
 *   failed connects only. */
#define TIMEOUT_MS 200
#define RETRY_S 2
#define DEAD_S 5
#define FAIL_LIMIT 1

static memcached_st *client_new(size_t n, const struct sl_memcached_server *sv)
{
    memcached_st *mc = mcl.create(NULL);

    if (mc == NULL)
        return NULL;
    /* protocol and distribution first: they apply to the servers added */
    mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
    mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
    mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, TIMEOUT_MS);
    mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, TIMEOUT_MS);
    mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, TIMEOUT_MS * 1000);
    mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, TIMEOUT_MS * 1000);
    mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, RETRY_S);
    mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, FAIL_LIMIT);
    mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, DEAD_S);
    if (n > 1)
        mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1);
    mcl.behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    for (size_t i = 0; i < n; i++) {
        if (sv[i].port == 0)
            mcl.server_add_unix_socket(mc, sv[i].host);
        else
            mcl.server_add(mc, sv[i].host, (in_port_t)sv[i].port);
    }
    return mc;
}

/* The calling thread's client for cfg, or NULL when none is configured or
 * it cannot be built. */
static memcached_st *take(const struct sl_config *cfg)
{
    struct client *c;

    if (!sl_mc_configured(cfg))
        return NULL;
    pthread_once(&mcl_once, mcl_load);
    pthread_once(&client_once, client_key_make);
    if (!mcl.ok)
        return NULL;
    if ((c = pthread_getspecific(client_key)) == NULL) {
        if ((c = calloc(1, sizeof(*c))) == NULL || pthread_setspecific(client_key, c) != 0) {
            free(c);
            return NULL;
        }
    }
    if (c->mc != NULL && same_servers(cfg, c->servers))
        return c->mc;
    if (c->mc != NULL)
        mcl.free(c->mc);
    free(c->servers);
    c->mc = NULL;
    if ((c->servers = servers_text(cfg)) == NULL || (c->mc = client_new(cfg->n_memcached_servers,
                                                                  cfg->memcached_servers)) == NULL)
        return NULL;
    return c->mc;
}

/* ---- health ----------------------------------------------------------------- */

/* Whether memcached answers, as this process's calls see it. A call that
 * could not reach a server marks memcached as failing; a call answered
 * clears that, but only once no call failed for HOLD_US: with one server
 * of several dead, its keys move to the others and calls succeed, yet the
 * dead one is tried again every DEAD_S (and fails), so memcached stays
 * "failing" (and sluice degraded) until every server answers. The warning
 * is logged at most once a minute, and "answers again" only after a
 * warning was logged. */
#define HOLD_US ((DEAD_S + RETRY_S + 1) * 1000000LL)
#define LOG_EVERY_US 60000000LL

static struct {
    pthread_mutex_t lock;
    int failing;                 /* atomic; read without the lock on the fast path */
    long long fail_us;           /* the last failure (monotonic); under lock */
    long long logged_us;         /* the last warning, 0: none yet */
    int announced;               /* a warning was logged for this outage */
} health = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0 };

static long long mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* 1: the server could not be reached (a failed or refused connection, a
 * time-out, an I/O error, a server out of the ring); 0: it answered (a hit,
 * a miss, "exists", "not stored", too big); -1: neither (a bad key, OOM). */
static int unreachable(memcached_return_t r)
{
    switch (r) {
    case MEMCACHED_HOST_LOOKUP_FAILURE: case MEMCACHED_CONNECTION_FAILURE:
    case MEMCACHED_CONNECTION_BIND_FAILURE: case MEMCACHED_WRITE_FAILURE:
    case MEMCACHED_READ_FAILURE: case MEMCACHED_UNKNOWN_READ_FAILURE:
    case MEMCACHED_PARTIAL_READ: case MEMCACHED_SOME_ERRORS: case MEMCACHED_NO_SERVERS:
    case MEMCACHED_ERRNO: case MEMCACHED_TIMEOUT: case MEMCACHED_SERVER_MARKED_DEAD:
    case MEMCACHED_SERVER_TEMPORARILY_DISABLED: case MEMCACHED_IN_PROGRESS:
    case MEMCACHED_ERROR:        /* also CONNECTION_SOCKET_CREATE_FAILURE */
        return 1;                /* (binary "not a number" for incr also reads as
                                  * UNKNOWN_READ_FAILURE: counters are always made numeric) */
    case MEMCACHED_SUCCESS: case MEMCACHED_NOTFOUND: case MEMCACHED_NOTSTORED:
    case MEMCACHED_DATA_EXISTS: case MEMCACHED_STORED: case MEMCACHED_DELETED:
    case MEMCACHED_END: case MEMCACHED_BUFFERED: case MEMCACHED_E2BIG:
    case MEMCACHED_SERVER_ERROR: case MEMCACHED_CLIENT_ERROR:
        return 0;
    default:
        return -1;
    }
}

/* "host:port" of the server mc last lost, or "" (into buf). */
static const char *lost_server(memcached_st *mc, char *buf, size_t size)
{
    const memcached_instance_st *sv = mc != NULL ? mcl.last_disconnect(mc) : NULL;

    buf[0] = '\0';
    if (sv != NULL)
        snprintf(buf, size, " (%s:%u)", mcl.server_name(sv), (unsigned)mcl.server_port(sv));
    return buf;
}

static void note_failure(memcached_st *mc, memcached_return_t r)
{
    long long now = mono_us();
    char where[300];
    int say;

    pthread_mutex_lock(&health.lock);
    __atomic_store_n(&health.failing, 1, __ATOMIC_RELAXED);
    health.fail_us = now;
    say = health.logged_us == 0 || now - health.logged_us >= LOG_EVERY_US;
    if (say) {
        health.logged_us = now;
        health.announced = 1;
    }
    pthread_mutex_unlock(&health.lock);
    if (say)
        sl_log(SL_LOG_WARN, NULL, "memcached does not answer: %s%s; budgets and limits are counted "
               "per host until it does (said at most once a minute)",
               mc != NULL ? mcl.strerror(mc, r) : "no client", lost_server(mc, where, sizeof(where)));
}

static void note_answer(void)
{
    long long now;
    int said = 0;

    if (!__atomic_load_n(&health.failing, __ATOMIC_RELAXED))
        return;
    now = mono_us();
    pthread_mutex_lock(&health.lock);
    if (health.failing && now - health.fail_us >= HOLD_US) {
        __atomic_store_n(&health.failing, 0, __ATOMIC_RELAXED);
        said = health.announced;
        health.announced = 0;
    }
    pthread_mutex_unlock(&health.lock);
    if (said)
        sl_log(SL_LOG_WARN, NULL, "memcached answers again: budgets and limits are shared "
               "through it again");
}

/* Records the outcome r of a call on mc. */
static void note(memcached_st *mc, memcached_return_t r)
{
    int u = unreachable(r);

    if (u > 0)
        note_failure(mc, r);
    else if (u == 0)
        note_answer();
}

int sl_mc_degraded(const struct sl_config *cfg)
{
    return sl_mc_configured(cfg) && __atomic_load_n(&health.failing, __ATOMIC_RELAXED);
}

/* Asks server sv for a key nobody stores, on a client of its own (the
 * threads' clients may have it out of their rings). 1 when it answered. */
static int probe_one(const struct sl_memcached_server *sv)
{
    memcached_st *mc = client_new(1, sv);
    memcached_return_t r = MEMCACHED_FAILURE;
    uint32_t flags = 0;
    size_t len = 0;
    char *v;

    if (mc == NULL)
        return 1;                /* OOM says nothing about the server */
    v = mcl.get(mc, "sluice:probe", sizeof("sluice:probe") - 1, &len, &flags, &r);
    free(v);
    if (unreachable(r) > 0)
        note_failure(mc, r);
    mcl.free(mc);
    return unreachable(r) <= 0;
}

#define CHECK_EVERY_US 1000000LL

int sl_mc_check(const struct sl_config *cfg, const char **why)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static long long checked_us;
    static int down;             /* the last probe's answer */
    long long now = mono_us(), failed_us;
    int d = 0;

    *why = NULL;
    if (!sl_mc_configured(cfg))
        return 0;
    pthread_once(&mcl_once, mcl_load);
    if (!mcl.ok) {
        *why = "libmemcached cannot be loaded; counting per host";
        return 1;
    }
    pthread_mutex_lock(&health.lock);
    failed_us = health.fail_us;
    pthread_mutex_unlock(&health.lock);
    pthread_mutex_lock(&lock);
    /* the last answer stands for a second, unless a call failed since */
    if (checked_us != 0 && now - checked_us < CHECK_EVERY_US && failed_us < checked_us) {
        d = down;
    } else {
        for (size_t i = 0; i < cfg->n_memcached_servers; i++)
            if (!probe_one(&cfg->memcached_servers[i]))
                d = 1;
        down = d;
        checked_us = mono_us();
    }
    pthread_mutex_unlock(&lock);
    if (d)
        *why = "not answering; counting per host";
    else
        note_answer();
    return d;
}

/* ---- calls ------------------------------------------------------------------- */

char *sl_mc_get(const struct sl_config *cfg, const char *key, size_t *len)
{
    memcached_return_t r = MEMCACHED_FAILURE;
    memcached_st *mc = take(cfg);
    uint32_t flags = 0;
    char *v;

    if (mc == NULL)
        return NULL;
    v = mcl.get(mc, key, strlen(key), len, &flags, &r);
    note(mc, r);
    if (v != NULL && r != MEMCACHED_SUCCESS) {
        free(v);
        v = NULL;
    }
    return v;
}

void sl_mc_set(const struct sl_config *cfg, const char *key, const char *val, size_t len,
               long ttl_s)
{
    memcached_st *mc = take(cfg);

    if (mc == NULL)
        return;
    note(mc, mcl.set(mc, key, strlen(key), val, len, (time_t)ttl_s, 0));
}

void sl_mc_delete(const struct sl_config *cfg, const char *key)
{
    memcached_st *mc = take(cfg);

    if (mc == NULL)
        return;
    note(mc, mcl.del(mc, key, strlen(key), 0));
}

int sl_mc_add(const struct sl_config *cfg, const char *key, const char *val, size_t len,
              long ttl_s)
{
    memcached_st *mc = take(cfg);
    memcached_return_t r;

    if (mc == NULL)
        return -1;
    r = mcl.add(mc, key, strlen(key), val, len, (time_t)ttl_s, 0);
    note(mc, r);
    if (r == MEMCACHED_SUCCESS)
        return 1;
    return r == MEMCACHED_NOTSTORED || r == MEMCACHED_DATA_EXISTS ? 0 : -1;
}

/* -delta as the unsigned offset of a decrement (delta < 0; LLONG_MIN too). */
static uint64_t minus(long long delta)
{
    return (uint64_t)-(delta + 1) + 1;
}

int sl_mc_add_to(const struct sl_config *cfg, const char *key, long long delta, uint64_t *value)
{
    memcached_st *mc = take(cfg);
    memcached_return_t r;
    size_t n = strlen(key);

    if (mc == NULL)
        return -1;
    if (delta >= 0)
        r = mcl.incr(mc, key, n, key, n, (uint64_t)delta, value);
    else
        r = mcl.decr(mc, key, n, key, n, minus(delta), value);
    note(mc, r);
    if (r == MEMCACHED_SUCCESS)
        return 0;
    return r == MEMCACHED_NOTFOUND ? 1 : -1;
}

int sl_mc_count(const struct sl_config *cfg, const char *key, long long delta,
                uint64_t initial, long ttl_s, uint64_t *value)
{
    memcached_st *mc = take(cfg);
    memcached_return_t r;
    size_t n = strlen(key);

    if (mc == NULL)
        return -1;
    if (ttl_s < 0)
        ttl_s = 0;
    /* Two clients creating the same counter at once: the server stores one
     * and answers the other NOT_STORED; that one finds it the second time. */
    for (int tries = 0; tries < 2; tries++) {
        if (delta >= 0)
            r = mcl.incr_init(mc, key, n, key, n, (uint64_t)delta, initial, (time_t)ttl_s, value);
        else
            r = mcl.decr_init(mc, key, n, key, n, minus(delta), initial, (time_t)ttl_s, value);
        if (r != MEMCACHED_NOTSTORED && r != MEMCACHED_DATA_EXISTS)
            break;
    }
    note(mc, r);
    return r == MEMCACHED_SUCCESS ? 0 : -1;
}

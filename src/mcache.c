/* memcached through libmemcached, loaded on first use (see mcache.h).
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
        mcl.ok = mcl.create && mcl.free && mcl.behavior_set && mcl.server_add &&
                 mcl.server_add_unix_socket && mcl.get && mcl.set && mcl.add && mcl.del &&
                 mcl.incr && mcl.decr;
    }
    if (!mcl.ok)
        sl_log(SL_LOG_WARN, NULL, "memcached_servers is set but %s cannot be loaded (%s): keys, "
               "budgets and limits are kept per process only (install the Debian package "
               "libmemcached11)", MCL_LIB, h ? "missing symbols" : dlerror());
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
    if ((c->servers = servers_text(cfg)) == NULL || (c->mc = mcl.create(NULL)) == NULL)
        return NULL;
    mcl.behavior_set(c->mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 200);
    mcl.behavior_set(c->mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 200);
    mcl.behavior_set(c->mc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, 200000);
    mcl.behavior_set(c->mc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, 200000);
    mcl.behavior_set(c->mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 2);
    mcl.behavior_set(c->mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    for (size_t i = 0; i < cfg->n_memcached_servers; i++) {
        const struct sl_memcached_server *sv = &cfg->memcached_servers[i];

        if (sv->port == 0)
            mcl.server_add_unix_socket(c->mc, sv->host);
        else
            mcl.server_add(c->mc, sv->host, (in_port_t)sv->port);
    }
    return c->mc;
}

/* (Nothing to give back: the client is the thread's own.) */
static void put(void)
{
}


char *sl_mc_get(const struct sl_config *cfg, const char *key, size_t *len)
{
    memcached_return_t r = MEMCACHED_FAILURE;
    memcached_st *mc = take(cfg);
    uint32_t flags = 0;
    char *v;

    if (mc == NULL)
        return NULL;
    v = mcl.get(mc, key, strlen(key), len, &flags, &r);
    put();
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
    (void)mcl.set(mc, key, strlen(key), val, len, (time_t)ttl_s, 0);
    put();
}

void sl_mc_delete(const struct sl_config *cfg, const char *key)
{
    memcached_st *mc = take(cfg);

    if (mc == NULL)
        return;
    (void)mcl.del(mc, key, strlen(key), 0);
    put();
}

int sl_mc_add(const struct sl_config *cfg, const char *key, const char *val, size_t len,
              long ttl_s)
{
    memcached_st *mc = take(cfg);
    memcached_return_t r;

    if (mc == NULL)
        return -1;
    r = mcl.add(mc, key, strlen(key), val, len, (time_t)ttl_s, 0);
    put();
    if (r == MEMCACHED_SUCCESS)
        return 1;
    return r == MEMCACHED_NOTSTORED || r == MEMCACHED_DATA_EXISTS ? 0 : -1;
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
        r = mcl.decr(mc, key, n, key, n, (uint64_t)-(delta + 1) + 1, value);
    put();
    if (r == MEMCACHED_SUCCESS)
        return 0;
    return r == MEMCACHED_NOTFOUND ? 1 : -1;
}

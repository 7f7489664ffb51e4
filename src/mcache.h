/* memcached, shared by every module that keeps state across processes and
 * hosts (key snapshots, budget counters, rate limits, cooldowns). One client
 * per thread, built from general_settings.memcached_servers and rebuilt when
 * the list changes, with short time-outs: memcached must never
 * slow a request down much, and any failure reads as a miss. libmemcached is
 * loaded with dlopen the first time a server is configured, so processes
 * without memcached never map it (and the C++ runtime it pulls in).
 * Keys are at most 250 bytes without spaces or control characters: callers
 * build them from hex digests and fixed prefixes. */
#ifndef SL_MCACHE_H
#define SL_MCACHE_H

#include <stddef.h>
#include <stdint.h>

struct sl_config;

/* Whether cfg names memcached servers (whether they answer is another
 * matter). */
int sl_mc_configured(const struct sl_config *cfg);

/* The value of key (malloc'ed, *len its length, NUL-terminated), or NULL
 * when absent or on any failure. */
char *sl_mc_get(const struct sl_config *cfg, const char *key, size_t *len);

/* Stores key unconditionally for ttl_s seconds (0: no expiry). Failures are
 * ignored (a cache). */
void sl_mc_set(const struct sl_config *cfg, const char *key, const char *val, size_t len,
               long ttl_s);

/* Removes key; failures ignored. */
void sl_mc_delete(const struct sl_config *cfg, const char *key);

/* Stores key only if absent: 1 stored, 0 it exists, -1 failure. */
int sl_mc_add(const struct sl_config *cfg, const char *key, const char *val, size_t len,
              long ttl_s);

/* Atomic counters (the value must be a decimal number, e.g. from sl_mc_add).
 * delta may be negative; memcached stops a decrement at 0. 0 with *value
 * the new value; 1 when key is absent; -1 on failure. */
int sl_mc_add_to(const struct sl_config *cfg, const char *key, long long delta, uint64_t *value);

#endif

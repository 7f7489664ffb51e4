/* memcached, shared by every module that keeps state across processes and
 * hosts (key snapshots, budget counters, rate limits, cooldowns). One client
 * per thread, built from general_settings.memcached_servers and rebuilt when
 * the list changes, with short time-outs: memcached must never
 * slow a request down much, and any failure reads as a miss. libmemcached is
 * loaded with dlopen the first time a server is configured, so processes
 * without memcached never map it (and the C++ runtime it pulls in).
 * Several servers share the keys by consistent hashing (ketama); a server
 * that stops answering is taken out of the ring for a few seconds, so its
 * keys go to the others instead of costing each call a time-out.
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
 * delta may be negative; memcached stops a decrement at 0 (and may pad the
 * stored text of a shortened number with spaces: parse what sl_mc_get
 * returns with atoll/strtoll, not as an exact string). 0 with *value the
 * new value; 1 when key is absent; -1 on failure. */
int sl_mc_add_to(const struct sl_config *cfg, const char *key, long long delta, uint64_t *value);

/* sl_mc_add_to in one round trip, creating an absent key: adds delta to
 * key, or when it is absent stores initial (delta is not applied to it) to
 * live ttl_s seconds (0: no expiry). 0 with *value the new value, -1 on
 * failure. */
int sl_mc_count(const struct sl_config *cfg, const char *key, long long delta,
                uint64_t initial, long ttl_s, uint64_t *value);

/* ---- health ---------------------------------------------------------------
 * Every call that cannot reach a server (refused or timed-out connection,
 * I/O error, server out of the ring) marks memcached as failing in this
 * process; a call answered (hit or miss) clears it once no call failed for
 * a few seconds (so one dead server among several keeps it failing). The
 * first failure logs "memcached does not answer ..." (at most once a
 * minute), the recovery "memcached answers again". */

/* Whether memcached is configured and failing now, as this process's calls
 * saw it. No I/O. */
int sl_mc_degraded(const struct sl_config *cfg);

/* For /health/readiness: asks every configured server (one small request
 * each, on a connection of its own, at most once a second per process; a
 * failure counts as one of a call). 1 and *why (static text) when memcached
 * is configured and a server does not answer (or libmemcached is missing);
 * 0 and *why NULL otherwise. Unlike sl_mc_degraded, this is healthy again as
 * soon as every server answers. */
int sl_mc_check(const struct sl_config *cfg, const char **why);

#endif

/* Shared counters with leases, and gauges (see counter.h).
 *
 * Two tables live in this process: the leases it holds on memcached
 * counters (room reserved there, not used yet; what a call used beyond its
 * estimate shows as a negative lease, a debt paid with the next round
 * trip), and its gauges (how much of each gauge it holds, and in which
 * period). The host table (ctable.h) takes over while memcached is away. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "counter.h"
#include "ctable.h"
#include "mcache.h"
#include "request.h"

#define PROBE 64u
#define LEASE_SLOTS 4096u
#define LEASE_CALLS 64              /* a lease covers at most this many calls ... */
#define LEASE_SHARE 16              /* ... and at most this share of what is left */
#define UPKEEP_FRESH_US 5000000LL   /* leases batch only while upkeep runs */
#define GAUGE_SLOTS 1024u

/* The counters kept without memcached: the host's (ctable.h). */
static struct sl_ctable *host(void)
{
    return sl_ctable_host();
}

static unsigned hash_of(const char *name, unsigned n)
{
    unsigned h = 2166136261u;

    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h % n;
}

static long long upkeep_us;         /* when sl_counter_maintain last ran */
static long long upkeep_gap_us;     /* and the time between its last two runs */

/* Whether leases may hold more than one call: only while someone returns
 * what is left of them (upkeep ran within 5 s, or three of its intervals). */
static int batching(void)
{
    long long gap = 3 * __atomic_load_n(&upkeep_gap_us, __ATOMIC_RELAXED);

    return sl_now_us() - __atomic_load_n(&upkeep_us, __ATOMIC_RELAXED) <
           (gap > UPKEEP_FRESH_US ? gap : UPKEEP_FRESH_US);
}

/* Adds delta to memcached counter name, creating it at base + delta
 * (living ttl_s) when absent: one round trip. 0 with *value, or -1. */
static int mc_add(const struct sl_config *cfg, const char *name, long long base, long long delta,
                  long ttl_s, long long *value)
{
    long long init = (base > 0 ? base : 0) + delta;
    uint64_t v = 0;

    if (sl_mc_count(cfg, name, delta, (uint64_t)(init > 0 ? init : 0), ttl_s, &v) != 0)
        return -1;
    *value = (long long)v;
    return 0;
}

/* ---- leases ------------------------------------------------------------------ */

struct lease {
    char name[SL_CTABLE_NAME];   /* "" when free */
    long long v;                 /* room reserved and not used; < 0: owed */
    long long seen;              /* the counter after this process's last round trip */
    long long expires_us;        /* monotonic */
};

static pthread_mutex_t lease_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lease *leases;     /* LEASE_SLOTS, allocated on first use */

/* Under lease_lock: the lease on name, made (empty, expiring with the
 * counter) when create is set. NULL when absent or on OOM. A full
 * neighbourhood gives up the lease expiring first (its room is then lost
 * until its counter expires: never more than the limit allows). */
static struct lease *lease_find(const char *name, int create, long ttl_s)
{
    long long now = sl_now_us();
    unsigned s = hash_of(name, LEASE_SLOTS);
    struct lease *spare = NULL;

    if (leases == NULL && (leases = calloc(LEASE_SLOTS, sizeof(*leases))) == NULL)
        return NULL;
    for (unsigned i = 0; i < PROBE; i++) {
        struct lease *e = &leases[(s + i) % LEASE_SLOTS];

        if (e->name[0] != '\0' && e->expires_us > now && strcmp(e->name, name) == 0)
            return e;
        if (spare == NULL || (spare->name[0] != '\0' && spare->expires_us > now &&
                              (e->name[0] == '\0' || e->expires_us < spare->expires_us)))
            spare = e;
    }
    if (!create)
        return NULL;
    snprintf(spare->name, sizeof(spare->name), "%s", name);
    spare->v = spare->seen = 0;
    spare->expires_us = now + ttl_s * 1000000LL;
    return spare;
}

/* Adds room to the lease on name (made if need be); where there is no
 * table the room goes straight back to memcached. */
static void lease_put(const struct sl_config *cfg, const char *name, long long room, long long seen,
                      long ttl_s)
{
    struct lease *l;
    long long v;

    pthread_mutex_lock(&lease_lock);
    if ((l = lease_find(name, 1, ttl_s)) != NULL) {
        l->v += room;
        if (seen >= 0)
            l->seen = seen;
    }
    pthread_mutex_unlock(&lease_lock);
    if (l == NULL && room != 0 && cfg != NULL)
        (void)mc_add(cfg, name, 0, -room, ttl_s, &v);
}

/* The host table's part of a reservation. */
static int reserve_local(struct sl_counter_hold *h, const struct sl_counter_ask *a,
                         long long *used)
{
    long long v, before;

    h->kind = SL_HOLD_LOCAL;
    if (sl_ctable_add(host(), h->name, a->base, a->est, a->ttl_s, &v) != 0) {
        h->name[0] = '\0';
        return SL_COUNTER_UNCOUNTED;
    }
    before = v - a->est;
    if (before < a->base) {          /* the database knows of more: catch up */
        (void)sl_ctable_add(host(), h->name, a->base, a->base - before, a->ttl_s, &v);
        before = a->base;
    }
    if (before >= a->max) {
        (void)sl_ctable_add(host(), h->name, 0, -a->est, a->ttl_s, &v);
        h->name[0] = '\0';
        *used = before;
        return SL_COUNTER_REFUSED;
    }
    *used = before + a->est;
    return SL_COUNTER_ADMITTED;
}

/* The round trip of a reservation the lease could not cover: takes a new
 * lease (giving back what was left of the old one, had, in the same
 * increment). -1 when memcached failed. */
static int reserve_trip(const struct sl_config *cfg, struct sl_counter_hold *h,
                        const struct sl_counter_ask *a, long long had, long long seen,
                        long long *used)
{
    long long left = a->max - (seen > a->base ? seen : a->base), lease, v, before;

    lease = batching() ? left / LEASE_SHARE : 0;
    if (lease > LEASE_CALLS * a->est)
        lease = LEASE_CALLS * a->est;
    if (lease < a->est)
        lease = a->est;
    if (mc_add(cfg, h->name, a->base, lease - had, a->ttl_s, &v) != 0)
        return -1;
    before = v - lease;
    if (before < a->base) {          /* the database knows of more: catch up */
        (void)mc_add(cfg, h->name, a->base, a->base - before, a->ttl_s, &v);
        before = a->base;
    }
    if (before >= a->max) {
        (void)mc_add(cfg, h->name, 0, -lease, a->ttl_s, &v);
        lease_put(cfg, h->name, 0, before, a->ttl_s);
        h->name[0] = '\0';
        *used = before;
        return SL_COUNTER_REFUSED;
    }
    if (before + lease > a->max && lease > a->est) {
        /* sized on old news: keep no more than what is left */
        long long excess = before + lease - a->max;

        if (excess > lease - a->est)
            excess = lease - a->est;
        if (mc_add(cfg, h->name, 0, -excess, a->ttl_s, &v) == 0)
            lease -= excess;
    }
    lease_put(cfg, h->name, lease - a->est, before + lease, a->ttl_s);
    *used = before + a->est;
    return SL_COUNTER_ADMITTED;
}

int sl_counter_reserve(const struct sl_config *cfg, struct sl_counter_hold *h,
                       const struct sl_counter_ask *a, long long *used)
{
    struct lease *l;
    long long had = 0, seen = 0;
    int rc;

    *used = a->base;
    h->units = a->est;
    if (a->base >= a->max) {         /* the database says so already */
        h->name[0] = '\0';
        return SL_COUNTER_REFUSED;
    }
    if (!sl_mc_configured(cfg))
        return reserve_local(h, a, used);
    h->kind = SL_HOLD_LEASE;
    pthread_mutex_lock(&lease_lock);
    if ((l = lease_find(h->name, 0, a->ttl_s)) != NULL) {
        if (a->est > 0 && l->v >= a->est) {
            l->v -= a->est;
            *used = l->seen - l->v;
            pthread_mutex_unlock(&lease_lock);
            return SL_COUNTER_ADMITTED;
        }
        had = l->v;
        seen = l->seen;
        l->v = 0;
    }
    pthread_mutex_unlock(&lease_lock);
    if ((rc = reserve_trip(cfg, h, a, had, seen, used)) >= 0)
        return rc;
    if (had != 0)                    /* memcached failed: keep it for later */
        lease_put(NULL, h->name, had, -1, a->ttl_s);
    return reserve_local(h, a, used);
}

void sl_counter_settle(struct sl_counter_hold *h, long long actual)
{
    long long v;

    if (h->name[0] == '\0')
        return;
    if (actual != h->units) {
        if (h->kind == SL_HOLD_LEASE)
            lease_put(NULL, h->name, h->units - actual, -1, 3600);
        else
            (void)sl_ctable_add(host(), h->name, 0, actual - h->units, 3600, &v);
    }
    h->name[0] = '\0';
    h->units = 0;
}

/* Gives every lease's room (and debt) back to memcached. */
static void return_leases(const struct sl_config *cfg)
{
    struct back { char name[SL_CTABLE_NAME]; long long v; } *back = NULL;
    size_t n = 0;
    long long v;

    pthread_mutex_lock(&lease_lock);
    for (unsigned i = 0; leases != NULL && i < LEASE_SLOTS; i++)
        n += leases[i].name[0] != '\0' && leases[i].v != 0;
    if (n > 0 && (back = malloc(n * sizeof(*back))) != NULL) {
        n = 0;
        for (unsigned i = 0; i < LEASE_SLOTS; i++) {
            struct lease *l = &leases[i];

            if (l->name[0] == '\0' || l->v == 0)
                continue;
            memcpy(back[n].name, l->name, sizeof(back[n].name));
            back[n++].v = l->v;
            l->v = 0;
        }
    }
    pthread_mutex_unlock(&lease_lock);
    for (size_t i = 0; back != NULL && i < n; i++)
        if (!sl_mc_configured(cfg) || mc_add(cfg, back[i].name, 0, -back[i].v, 3600, &v) != 0)
            break;                   /* memcached is gone: its counters with it */
    free(back);
}

void sl_counter_forget(const struct sl_config *cfg, const char *prefix, const char *name)
{
    size_t n = strlen(prefix);

    sl_ctable_forget(host(), prefix);
    pthread_mutex_lock(&lease_lock);
    for (unsigned i = 0; leases != NULL && i < LEASE_SLOTS; i++)
        if (strncmp(leases[i].name, prefix, n) == 0)
            leases[i].name[0] = '\0';
    pthread_mutex_unlock(&lease_lock);
    if (name != NULL && sl_mc_configured(cfg))
        sl_mc_delete(cfg, name);
}

/* ---- gauges -------------------------------------------------------------------- *
 *
 * A gauge's counter is named <prefix><period>. A process keeps all it
 * holds of a gauge (its requests in progress and the room it leased) in
 * one period's counter; admission counts the current period and the one
 * before, and upkeep moves what a process holds into the current period
 * each tick, so a long request stays counted, and what a dead process
 * held is forgotten one period after the next begins. */

struct gauge {
    pthread_mutex_t m;           /* the fields below; a round trip is made under it */
    char prefix[SL_CTABLE_NAME]; /* "" when free (under gauge_lock) */
    long long period;            /* the counter holding this process's part; 0: none */
    long long part;              /* what this process added to it */
    long long busy;              /* taken by requests in progress (<= part) */
    long long lease;             /* the room the last round trip took */
    long long seen;              /* the gauge's total after the last round trip */
    int local;                   /* part is in the host table */
    long long prev_period;       /* the previous period's counter as last read: */
    long long prev_value;        /* its value, */
    long long prev_read_us;      /* when, */
    int prev_local;              /* and where */
};

static pthread_mutex_t gauge_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gauge gauges[GAUGE_SLOTS];
static pthread_once_t gauge_once = PTHREAD_ONCE_INIT;

static void gauge_init(void)
{
    for (unsigned i = 0; i < GAUGE_SLOTS; i++)
        pthread_mutex_init(&gauges[i].m, NULL);
}

/* The length of a gauge period in cfg, seconds. */
static long period_s(const struct sl_config *cfg)
{
    return cfg != NULL && cfg->parallel_lease_s > 0 ? cfg->parallel_lease_s : SL_GAUGE_PERIOD_S;
}

long long sl_gauge_period(const struct sl_config *cfg, long long now_s)
{
    return now_s / period_s(cfg);
}

static void gauge_name(const struct gauge *g, long long period, char out[SL_CTABLE_NAME])
{
    snprintf(out, SL_CTABLE_NAME, "%.90s%lld", g->prefix, period);
}

/* Adds delta to g's counter of period on its backend (local or not). */
static int gauge_add(const struct sl_config *cfg, const struct gauge *g, int local,
                     long long period, long long delta, long long *value)
{
    char name[SL_CTABLE_NAME];

    gauge_name(g, period, name);
    if (local)
        return sl_ctable_add(host(), name, 0, delta, 3 * period_s(cfg), value);
    return mc_add(cfg, name, 0, delta, 3 * period_s(cfg), value);
}

/* The gauge named prefix (index), made when absent; -1 when the table is
 * full of gauges in use. */
static int gauge_find(const char *prefix)
{
    unsigned s = hash_of(prefix, GAUGE_SLOTS);
    int spare = -1;

    pthread_once(&gauge_once, gauge_init);
    pthread_mutex_lock(&gauge_lock);
    for (unsigned i = 0; i < PROBE; i++) {
        unsigned j = (s + i) % GAUGE_SLOTS;
        struct gauge *g = &gauges[j];

        if (strcmp(g->prefix, prefix) == 0) {
            pthread_mutex_unlock(&gauge_lock);
            return (int)j;
        }
        if (spare < 0 && g->prefix[0] == '\0')
            spare = (int)j;
    }
    for (unsigned i = 0; spare < 0 && i < PROBE; i++) {   /* reuse one not in use */
        struct gauge *g = &gauges[(s + i) % GAUGE_SLOTS];

        pthread_mutex_lock(&g->m);
        if (g->busy == 0 && g->part == 0)
            spare = (int)((s + i) % GAUGE_SLOTS);
        pthread_mutex_unlock(&g->m);
    }
    if (spare >= 0) {
        struct gauge *g = &gauges[spare];

        pthread_mutex_lock(&g->m);
        snprintf(g->prefix, sizeof(g->prefix), "%s", prefix);
        g->period = g->part = g->busy = g->lease = g->seen = 0;
        g->prev_period = g->prev_value = g->prev_read_us = 0;
        g->local = 0;
        pthread_mutex_unlock(&g->m);
    }
    pthread_mutex_unlock(&gauge_lock);
    return spare;
}

/* Under g->m: puts what this process holds of g into period now on
 * backend local (the requests in progress only: room not in use goes
 * back), taking lease more with it. 0 with *total the counter's value
 * after, or -1 when the backend failed. */
static int gauge_move(const struct sl_config *cfg, struct gauge *g, long long now, int local,
                      long long lease, long long *total)
{
    long long v;

    if (g->period == now && g->local == local) {
        if (gauge_add(cfg, g, local, now, lease, total) != 0)
            return -1;
        g->part += lease;
        return 0;
    }
    if (gauge_add(cfg, g, local, now, g->busy + lease, total) != 0)
        return -1;
    if (g->period != 0 && g->part > 0 && g->local == local)
        (void)gauge_add(cfg, g, local, g->period, -g->part, &v);
    /* (A part on the other backend is left to expire with its period.) */
    g->period = now;
    g->part = g->busy + lease;
    g->local = local;
    return 0;
}

/* The value of g's counter of period (0 when absent). */
static long long gauge_read(const struct sl_config *cfg, const struct gauge *g, int local,
                            long long period)
{
    char name[SL_CTABLE_NAME], *s;
    long long v = 0;
    size_t n;

    if (local) {
        gauge_name(g, period, name);
        (void)sl_ctable_add(host(), name, 0, 0, 3 * period_s(cfg), &v);
        return v;
    }
    gauge_name(g, period, name);
    if ((s = sl_mc_get(cfg, name, &n)) != NULL) {
        v = atoll(s);
        free(s);
    }
    return v;
}

/* Under g->m: what the period before now holds, as read at most a second
 * ago (fresh: read now). Once its period is over a counter only shrinks
 * (every process moves its part out within a flush interval), so an older
 * figure counts more, never less: it may refuse, never admit, too much. */
static long long gauge_prev(const struct sl_config *cfg, struct gauge *g, int local,
                            long long now, int fresh)
{
    long long t = sl_now_us();

    if (fresh || g->prev_period != now - 1 || g->prev_local != local ||
        t - g->prev_read_us > 1000000) {
        g->prev_value = gauge_read(cfg, g, local, now - 1);
        g->prev_period = now - 1;
        g->prev_local = local;
        g->prev_read_us = t;
    }
    return g->prev_value;
}

/* Under g->m: the round trip of a take (two while a limit is reached: the
 * previous period is read again before a refusal). */
static int gauge_trip(const struct sl_config *cfg, struct gauge *g, long long max,
                      long long *used)
{
    long long now = sl_gauge_period(cfg, time(NULL)), lease, total, before, v;
    int local = !sl_mc_configured(cfg);

    lease = batching() ? (max - g->seen) / LEASE_SHARE : 1;
    lease = lease > LEASE_CALLS ? LEASE_CALLS : lease < 1 ? 1 : lease;
    if (gauge_move(cfg, g, now, local, lease, &total) != 0) {
        local = 1;
        if (gauge_move(cfg, g, now, local, lease, &total) != 0)
            return SL_COUNTER_UNCOUNTED;
    }
    before = total - lease + gauge_prev(cfg, g, local, now, 0);
    if (before >= max)
        before = total - lease + gauge_prev(cfg, g, local, now, 1);
    if (before >= max) {
        if (gauge_add(cfg, g, local, now, -lease, &v) == 0)
            g->part -= lease;
        g->seen = before;
        g->lease = 0;
        *used = before;
        return SL_COUNTER_REFUSED;
    }
    if (before + lease > max && lease > 1 &&
        gauge_add(cfg, g, local, now, -(before + lease - max), &v) == 0) {
        g->part -= before + lease - max;
        lease = max - before;
    }
    g->busy++;
    g->lease = lease;
    g->seen = before + lease;
    *used = before + 1;
    return SL_COUNTER_ADMITTED;
}

int sl_gauge_take(const struct sl_config *cfg, struct sl_gauge_hold *h, const char *prefix,
                  long long max, long long *used)
{
    long long now = sl_gauge_period(cfg, time(NULL));
    struct gauge *g = NULL;
    int i = -1, rc;

    h->slot = 0;
    *used = 0;
    /* A gauge found idle may be given to another name before it is locked
     * here: then look again. */
    for (int tries = 0; tries < 4 && g == NULL; tries++) {
        if ((i = gauge_find(prefix)) < 0)
            return SL_COUNTER_UNCOUNTED;
        pthread_mutex_lock(&gauges[i].m);
        if (strcmp(gauges[i].prefix, prefix) == 0)
            g = &gauges[i];
        else
            pthread_mutex_unlock(&gauges[i].m);
    }
    if (g == NULL)
        return SL_COUNTER_UNCOUNTED;
    if (g->period == now && g->part > g->busy) {
        g->busy++;
        *used = g->seen - (g->part - g->busy);
        rc = SL_COUNTER_ADMITTED;
    } else
        rc = gauge_trip(cfg, g, max, used);
    pthread_mutex_unlock(&g->m);
    if (rc == SL_COUNTER_ADMITTED)
        h->slot = i + 1;
    return rc;
}

void sl_gauge_give(const struct sl_config *cfg, struct sl_gauge_hold *h)
{
    struct gauge *g;
    long long keep, v;

    if (h->slot == 0)
        return;
    g = &gauges[h->slot - 1];
    h->slot = 0;
    pthread_mutex_lock(&g->m);
    g->busy--;
    /* Room kept for the next requests while it is plentiful and upkeep
     * returns it; else it goes back now, for the other processes. */
    keep = batching() && g->lease > 1 ? g->lease : 0;
    if (g->part - g->busy > keep &&
        gauge_add(cfg, g, g->local, g->period, -(g->part - g->busy - keep), &v) == 0)
        g->part = g->busy + keep;
    pthread_mutex_unlock(&g->m);
}

/* Upkeep of the gauges: each one's part into the current period, without
 * its unused room. */
static void keep_gauges(const struct sl_config *cfg)
{
    long long now = sl_gauge_period(cfg, time(NULL)), v;

    pthread_once(&gauge_once, gauge_init);
    for (unsigned i = 0; i < GAUGE_SLOTS; i++) {
        struct gauge *g = &gauges[i];

        pthread_mutex_lock(&g->m);
        if (g->prefix[0] != '\0' && g->part > 0) {
            if (g->period != now) {
                long long dummy;

                if (g->busy == 0 || gauge_add(cfg, g, g->local, now, g->busy, &dummy) == 0) {
                    (void)gauge_add(cfg, g, g->local, g->period, -g->part, &v);
                    g->period = now;
                    g->part = g->busy;
                }
            } else if (g->part > g->busy &&
                       gauge_add(cfg, g, g->local, g->period, -(g->part - g->busy), &v) == 0)
                g->part = g->busy;
        }
        pthread_mutex_unlock(&g->m);
    }
}

void sl_counter_maintain(void)
{
    struct sl_config *cfg = sl_config_acquire();
    long long now = sl_now_us(), last = __atomic_load_n(&upkeep_us, __ATOMIC_RELAXED);

    if (last > 0)
        __atomic_store_n(&upkeep_gap_us, now - last, __ATOMIC_RELAXED);
    __atomic_store_n(&upkeep_us, now, __ATOMIC_RELAXED);
    return_leases(cfg);
    keep_gauges(cfg);
    sl_config_unref(cfg);
}

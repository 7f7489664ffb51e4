/* Named counters kept in this process: the fallback of budgets and rate
 * limits when memcached is not configured or does not answer. A fixed
 * open-addressed table under a mutex; every counter expires a while after
 * it was created (its name carries the period or window it counts, so an
 * expired counter is one nobody asks for any more), and when the table is
 * full a new counter takes the place of the one expiring first. */
#ifndef SL_CTABLE_H
#define SL_CTABLE_H

#include <pthread.h>

#define SL_CTABLE_SLOTS 4096u
#define SL_CTABLE_NAME 112

struct sl_cslot {
    char name[SL_CTABLE_NAME];   /* "" when free */
    long long v;
    long long expires_us;        /* monotonic */
};

struct sl_ctable {
    pthread_mutex_t lock;
    struct sl_cslot *slots;      /* SL_CTABLE_SLOTS, allocated on first use */
};

#define SL_CTABLE_INIT { PTHREAD_MUTEX_INITIALIZER, NULL }

/* Under t->lock: the live counter called name, else a new one (v = init,
 * expiring ttl_s seconds from now). NULL on OOM. */
struct sl_cslot *sl_ctable_get(struct sl_ctable *t, const char *name, long long init, long ttl_s);

/* Adds delta to the counter name (created at base, or 0 if base < 0),
 * stopping at 0 like memcached. 0 with *value, or -1 on OOM. */
int sl_ctable_add(struct sl_ctable *t, const char *name, long long base, long long delta,
                  long ttl_s, long long *value);

/* Forgets every counter whose name starts with prefix. */
void sl_ctable_forget(struct sl_ctable *t, const char *prefix);

#endif

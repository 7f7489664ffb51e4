/* Named counters kept on this host: the fallback of budgets and rate
 * limits when memcached is not configured or does not answer. A fixed
 * open-addressed table under a mutex; every counter expires a while after
 * it was created (its name carries the period or window it counts, so an
 * expired counter is one nobody asks for any more), and when the table is
 * full a new counter takes the place of the one expiring first.
 *
 * A table is private to its process (SL_CTABLE_INIT), or shared by every
 * sluice process of the host that uses the same spool directory
 * (sl_ctable_host): then the slots and a process-shared, robust mutex live
 * in a file mapped by all of them, and times are CLOCK_MONOTONIC, which all
 * processes of a boot share. */
#ifndef SL_CTABLE_H
#define SL_CTABLE_H

#include <pthread.h>
#include <stddef.h>

#define SL_CTABLE_SLOTS 4096u
#define SL_CTABLE_NAME 112

struct sl_cslot {
    char name[SL_CTABLE_NAME];   /* "" when free */
    long long v;
    long long expires_us;        /* monotonic */
};

struct sl_cshared;               /* the head of a mapped table (ctable.c) */

struct sl_ctable {
    pthread_mutex_t lock;        /* a private table's */
    struct sl_cslot *slots;      /* SL_CTABLE_SLOTS, allocated on first use (private) or in
                                  * the mapping (shared) */
    struct sl_cshared *shared;   /* the mapping; NULL: private. Set once, before use */
};

#define SL_CTABLE_INIT { PTHREAD_MUTEX_INITIALIZER, NULL, NULL }

/* The table shared by the sluice processes of this host: the file
 * counters.shm in the spool directory (sl_spend_spool_dir, as it is when
 * first called: a later change of spend_spool_dir does not move it),
 * mapped on the first call. Where it cannot be mapped (logged once), a
 * table private to this process. Never NULL; lives as long as the process. */
struct sl_ctable *sl_ctable_host(void);

/* Maps the shared table file at path into t (a private table not used
 * yet): creates it, or re-initialises a file of another layout, version,
 * size or boot, under an flock of path.lock so that processes starting
 * together agree. SL_OK; SL_ERR_INTERNAL (t is left private, why says
 * what failed). */
int sl_ctable_map(struct sl_ctable *t, const char *path, char *why, size_t whylen);

/* Takes and releases t's lock (the mapping's for a shared table). A shared
 * lock whose holder died is taken over (its counters may miss that
 * holder's last change). 0, or -1 when the lock cannot be had (a shared
 * lock left unrecoverable): then the caller must not touch t. */
int sl_ctable_lock(struct sl_ctable *t);
void sl_ctable_unlock(struct sl_ctable *t);

/* Under sl_ctable_lock (for a private table, t->lock is the same): the
 * live counter called name, else a new one (v = init, expiring ttl_s
 * seconds from now). NULL on OOM. */
struct sl_cslot *sl_ctable_get(struct sl_ctable *t, const char *name, long long init, long ttl_s);

/* Adds delta to the counter name (created at base, or 0 if base < 0),
 * stopping at 0 like memcached. 0 with *value, or -1 on OOM or when the
 * lock cannot be had. */
int sl_ctable_add(struct sl_ctable *t, const char *name, long long base, long long delta,
                  long ttl_s, long long *value);

/* Forgets every counter whose name starts with prefix. */
void sl_ctable_forget(struct sl_ctable *t, const char *prefix);

#endif

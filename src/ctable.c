/* Named counters of this process or this host (see ctable.h): the table
 * itself, and the file that shares it between the processes of a host.
 * What a counter means (budgets, windows, leases) is counter.c's. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctable.h"
#include "log.h"
#include "request.h"
#include "shmfile.h"
#include "spend.h"
#include "status.h"

#define PROBE 64u

static unsigned slot_of(const char *name)
{
    unsigned h = 2166136261u;

    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h % SL_CTABLE_SLOTS;
}

struct sl_cslot *sl_ctable_get(struct sl_ctable *t, const char *name, long long init, long ttl_s)
{
    long long now = sl_now_us();
    unsigned s = slot_of(name);
    struct sl_cslot *spare = NULL;

    if (t->slots == NULL && (t->slots = calloc(SL_CTABLE_SLOTS, sizeof(*t->slots))) == NULL)
        return NULL;
    for (unsigned i = 0; i < PROBE; i++) {
        struct sl_cslot *e = &t->slots[(s + i) % SL_CTABLE_SLOTS];

        if (e->name[0] != '\0' && e->expires_us > now && strcmp(e->name, name) == 0)
            return e;
        if (spare == NULL || (spare->name[0] != '\0' && spare->expires_us > now &&
                              (e->name[0] == '\0' || e->expires_us < spare->expires_us)))
            spare = e;
    }
    snprintf(spare->name, sizeof(spare->name), "%s", name);
    spare->v = init;
    spare->expires_us = now + ttl_s * 1000000LL;
    return spare;
}

/* ---- the shared file --------------------------------------------------------
 * Layout: this head, then SL_CTABLE_SLOTS slots. A file whose magic,
 * version, sizes or boot differ (another sluice, another machine word, a
 * reboot: CLOCK_MONOTONIC restarts, so old expiry times would mean
 * nothing), or that was never finished (ready unset: its maker died), is
 * replaced by a new one; processes still mapping the old one keep it. */
#define SHM_MAGIC "sluiceCT"
#define SHM_VERSION 1u
#define SHM_NAME_MAX 4096

struct sl_cshared {
    char magic[8];
    uint32_t version;
    uint32_t slots;              /* SL_CTABLE_SLOTS */
    uint32_t slot_size;          /* sizeof(struct sl_cslot) */
    uint32_t mutex_size;         /* sizeof(pthread_mutex_t) */
    char boot_id[40];            /* /proc/sys/kernel/random/boot_id, "" where there is none */
    uint32_t ready;              /* 1 once everything above and the mutex are set */
    pthread_mutex_t lock;        /* PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST */
    long long pad[8];            /* the slots start on their own cache lines */
};

static size_t shm_size(void)
{
    return sizeof(struct sl_cshared) + (size_t)SL_CTABLE_SLOTS * sizeof(struct sl_cslot);
}

static void read_boot_id(char out[40])
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    size_t n = 0;

    out[0] = '\0';
    if (f == NULL)
        return;
    if (fgets(out, 40, f) != NULL)
        n = strcspn(out, "\n");
    out[n] = '\0';
    fclose(f);
}

static int head_valid(const struct sl_cshared *h, const char *boot_id)
{
    return memcmp(h->magic, SHM_MAGIC, sizeof(h->magic)) == 0 && h->version == SHM_VERSION &&
           h->slots == SL_CTABLE_SLOTS && h->slot_size == sizeof(struct sl_cslot) &&
           h->mutex_size == sizeof(pthread_mutex_t) && strcmp(h->boot_id, boot_id) == 0 &&
           __atomic_load_n(&h->ready, __ATOMIC_ACQUIRE) == 1;
}

/* Fills a new (zeroed) mapping's head. 0, or an errno value. */
static int head_init(struct sl_cshared *h, const char *boot_id)
{
    pthread_mutexattr_t a;
    int rc;

    if ((rc = pthread_mutexattr_init(&a)) != 0)
        return rc;
    if ((rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
        (rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0)
        rc = pthread_mutex_init(&h->lock, &a);
    pthread_mutexattr_destroy(&a);
    if (rc != 0)
        return rc;
    memcpy(h->magic, SHM_MAGIC, sizeof(h->magic));
    h->version = SHM_VERSION;
    h->slots = SL_CTABLE_SLOTS;
    h->slot_size = sizeof(struct sl_cslot);
    h->mutex_size = sizeof(pthread_mutex_t);
    snprintf(h->boot_id, sizeof(h->boot_id), "%s", boot_id);
    __atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
    return 0;
}

static int head_ok(const void *p, void *boot_id)
{
    return head_valid(p, boot_id);
}

static int head_make(void *p, void *boot_id)
{
    return head_init(p, boot_id);
}

int sl_ctable_map(struct sl_ctable *t, const char *path, char *why, size_t whylen)
{
    char boot_id[40];
    struct sl_cshared *h;

    read_boot_id(boot_id);
    h = sl_shm_map(path, shm_size(), head_ok, head_make, boot_id, why, whylen);
    if (h == NULL)
        return SL_ERR_INTERNAL;
    t->shared = h;
    t->slots = (struct sl_cslot *)(h + 1);
    return SL_OK;
}

static struct sl_ctable host_table = SL_CTABLE_INIT;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void host_map(void)
{
    char *dir = sl_spend_spool_dir(), why[256] = "out of memory";
    char path[SHM_NAME_MAX];

    if (dir != NULL && snprintf(path, sizeof(path), "%s/counters.shm", dir) < (int)sizeof(path) &&
        sl_ctable_map(&host_table, path, why, sizeof(why)) == SL_OK) {
        free(dir);
        return;
    }
    sl_log(SL_LOG_WARN, NULL, "the host's counter table cannot be mapped (%s): without memcached, "
           "budgets and limits are counted per process", why);
    free(dir);
}

struct sl_ctable *sl_ctable_host(void)
{
    pthread_once(&host_once, host_map);
    return &host_table;
}

/* ---- locking and the counters ----------------------------------------------- */

int sl_ctable_lock(struct sl_ctable *t)
{
    int rc;

    if (t->shared == NULL)
        return pthread_mutex_lock(&t->lock) == 0 ? 0 : -1;
    rc = pthread_mutex_lock(&t->shared->lock);
    if (rc == EOWNERDEAD) {
        /* A process died holding it: at most the slot it was writing is off,
         * perhaps with a name cut short of its NUL. */
        for (unsigned i = 0; i < SL_CTABLE_SLOTS; i++)
            t->slots[i].name[SL_CTABLE_NAME - 1] = '\0';
        rc = pthread_mutex_consistent(&t->shared->lock);
        sl_log(SL_LOG_WARN, NULL, "a sluice process died holding the host's counter table; "
               "taken over");
    }
    return rc == 0 ? 0 : -1;
}

void sl_ctable_unlock(struct sl_ctable *t)
{
    pthread_mutex_unlock(t->shared != NULL ? &t->shared->lock : &t->lock);
}

int sl_ctable_add(struct sl_ctable *t, const char *name, long long base, long long delta,
                  long ttl_s, long long *value)
{
    struct sl_cslot *c;

    if (sl_ctable_lock(t) != 0)
        return -1;
    if ((c = sl_ctable_get(t, name, base > 0 ? base : 0, ttl_s)) != NULL) {
        c->v = c->v + delta > 0 ? c->v + delta : 0;
        *value = c->v;
    }
    sl_ctable_unlock(t);
    return c != NULL ? 0 : -1;
}

void sl_ctable_forget(struct sl_ctable *t, const char *prefix)
{
    size_t n = strlen(prefix);

    if (sl_ctable_lock(t) != 0)
        return;
    for (unsigned i = 0; t->slots != NULL && i < SL_CTABLE_SLOTS; i++)
        if (strncmp(t->slots[i].name, prefix, n) == 0)
            t->slots[i].name[0] = '\0';
    sl_ctable_unlock(t);
}

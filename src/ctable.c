/* Named counters in this process (see ctable.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctable.h"
#include "request.h"

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

int sl_ctable_add(struct sl_ctable *t, const char *name, long long base, long long delta,
                  long ttl_s, long long *value)
{
    struct sl_cslot *c;

    pthread_mutex_lock(&t->lock);
    if ((c = sl_ctable_get(t, name, base > 0 ? base : 0, ttl_s)) != NULL) {
        c->v = c->v + delta > 0 ? c->v + delta : 0;
        *value = c->v;
    }
    pthread_mutex_unlock(&t->lock);
    return c != NULL ? 0 : -1;
}

void sl_ctable_forget(struct sl_ctable *t, const char *prefix)
{
    size_t n = strlen(prefix);

    pthread_mutex_lock(&t->lock);
    for (unsigned i = 0; t->slots != NULL && i < SL_CTABLE_SLOTS; i++)
        if (strncmp(t->slots[i].name, prefix, n) == 0)
            t->slots[i].name[0] = '\0';
    pthread_mutex_unlock(&t->lock);
}

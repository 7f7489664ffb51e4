/* Request arena: a chain of blocks served by bumping a pointer. The first
 * block survives sl_arena_reset() so a steady stream of small requests does
 * not touch malloc at all; larger requests grow the chain and give the extra
 * blocks back at reset. Deferred cleanups live in the arena themselves. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "status.h"

#define ARENA_BLOCK  (16u << 10)  /* fits a typical chat request whole */
#define ARENA_ALIGN  16u

struct block {
    struct block *next;
    size_t size;      /* usable bytes after the header */
    size_t used;
    _Alignas(16) unsigned char mem[];
};

struct defer {
    struct defer *next;
    void (*fn)(void *);
    void *ptr;
};

struct sl_arena {
    struct block *head;    /* current block; the chain ends at the first one */
    struct defer *defers;  /* most recent first */
    size_t cap;            /* bytes of blocks we may hold */
    size_t held;           /* bytes of blocks we hold */
    size_t used;           /* bytes handed out since reset */
};

static struct block *block_new(size_t size)
{
    struct block *b = malloc(sizeof(*b) + size);

    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

struct sl_arena *sl_arena_create(size_t cap)
{
    struct sl_arena *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    a->cap = cap;
    a->head = block_new(ARENA_BLOCK);
    if (a->head == NULL) {
        free(a);
        return NULL;
    }
    a->held = ARENA_BLOCK;
    return a;
}

static void run_defers(struct sl_arena *a)
{
    while (a->defers != NULL) {
        struct defer *d = a->defers;

        a->defers = d->next;
        d->fn(d->ptr);
    }
}

void sl_arena_reset(struct sl_arena *a)
{
    run_defers(a);
    while (a->head->next != NULL) {
        struct block *b = a->head;

        a->head = b->next;
        a->held -= b->size;
        free(b);
    }
    a->head->used = 0;
    a->used = 0;
}

void sl_arena_free(struct sl_arena *a)
{
    if (a == NULL)
        return;
    sl_arena_reset(a);
    free(a->head);
    free(a);
}

void *sl_arena_alloc(struct sl_arena *a, size_t n)
{
    struct block *b = a->head;
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    void *p;

    if (need < n)
        return NULL;   /* overflow */
    if (b->size - b->used < need) {
        size_t size = need > ARENA_BLOCK ? need : ARENA_BLOCK;

        if (size > a->cap || a->held > a->cap - size)
            return NULL;
        b = block_new(size);
        if (b == NULL)
            return NULL;
        b->next = a->head;
        a->head = b;
        a->held += size;
    }
    p = b->mem + b->used;
    b->used += need;
    a->used += need;
    return p;
}

void *sl_arena_calloc(struct sl_arena *a, size_t n, size_t size)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    p = sl_arena_alloc(a, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

char *sl_arena_strndup(struct sl_arena *a, const char *s, size_t n)
{
    char *p = sl_arena_alloc(a, n + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sl_arena_strdup(struct sl_arena *a, const char *s)
{
    return sl_arena_strndup(a, s, strlen(s));
}

char *sl_arena_printf(struct sl_arena *a, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    p = sl_arena_alloc(a, (size_t)n + 1);
    if (p == NULL)
        return NULL;
    if ((size_t)n < sizeof(small)) {
        memcpy(p, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return p;
}

int sl_arena_defer(struct sl_arena *a, void (*fn)(void *), void *ptr)
{
    struct defer *d = sl_arena_alloc(a, sizeof(*d));

    if (d == NULL) {
        fn(ptr);
        return SL_ERR_NOMEM;
    }
    d->fn = fn;
    d->ptr = ptr;
    d->next = a->defers;
    a->defers = d;
    return SL_OK;
}

size_t sl_arena_used(const struct sl_arena *a)
{
    return a->used;
}

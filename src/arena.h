/* Request-lifetime memory. Everything a request allocates comes from its
 * arena and goes away in one sl_arena_reset() when the request ends; non-memory
 * resources (Jansson values, curl lists) are registered with sl_arena_defer()
 * and released, in reverse order, by the same reset. */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stddef.h>

struct sl_arena;

/* A new, empty arena whose total size may not exceed cap bytes; NULL on OOM. */
struct sl_arena *sl_arena_create(size_t cap);
/* Runs the deferred cleanups and frees everything; accepts NULL. */
void sl_arena_free(struct sl_arena *a);
/* Runs the deferred cleanups, keeps the first block for reuse, frees the rest. */
void sl_arena_reset(struct sl_arena *a);

/* n bytes aligned for any type, or NULL when the cap is reached or malloc fails. */
void *sl_arena_alloc(struct sl_arena *a, size_t n);
/* Zeroed n*size bytes; NULL on overflow as well. */
void *sl_arena_calloc(struct sl_arena *a, size_t n, size_t size);
/* Copies of a string / n bytes plus a NUL. */
char *sl_arena_strdup(struct sl_arena *a, const char *s);
char *sl_arena_strndup(struct sl_arena *a, const char *s, size_t n);
/* printf into arena memory; NULL on OOM. */
char *sl_arena_printf(struct sl_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Registers fn(ptr) to run at reset/free. On OOM, fn(ptr) runs at once and
 * SL_ERR_NOMEM is returned, so the resource is never leaked. */
int sl_arena_defer(struct sl_arena *a, void (*fn)(void *), void *ptr);

/* Bytes handed out since the last reset (for tests and metrics). */
size_t sl_arena_used(const struct sl_arena *a);

#endif

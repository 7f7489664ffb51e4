/* Arena: alignment, growth past the first block, the cap, reset keeping
 * memory, deferred cleanups in reverse order and on OOM. */
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "status.h"
#include "tap.h"

static int order[8], norder;

static void record(void *p)
{
    order[norder++] = (int)(intptr_t)p;
}

int main(void)
{
    struct sl_arena *a = sl_arena_create(1u << 20);
    char *s, *big;
    void *p;

    ok(a != NULL, "create");
    p = sl_arena_alloc(a, 3);
    ok(((uintptr_t)p & 15) == 0, "first allocation is 16-byte aligned");
    p = sl_arena_alloc(a, 5);
    ok(((uintptr_t)p & 15) == 0, "second allocation is 16-byte aligned");
    s = sl_arena_strdup(a, "hello");
    is_str(s, "hello", "strdup");
    s = sl_arena_strndup(a, "hello world", 5);
    is_str(s, "hello", "strndup stops at n");
    s = sl_arena_printf(a, "%s-%d", "x", 42);
    is_str(s, "x-42", "printf");
    big = sl_arena_alloc(a, 100000);
    ok(big != NULL, "allocation larger than a block");
    memset(big, 'x', 100000);
    s = sl_arena_printf(a, "%0300d", 7);
    ok(s != NULL && strlen(s) == 300, "printf longer than its stack buffer");
    ok(sl_arena_alloc(a, 2u << 20) == NULL, "allocation over the cap fails");
    ok(sl_arena_alloc(a, SIZE_MAX - 4) == NULL, "overflowing size fails");
    ok(sl_arena_calloc(a, SIZE_MAX / 2, 4) == NULL, "calloc overflow fails");

    sl_arena_defer(a, record, (void *)1);
    sl_arena_defer(a, record, (void *)2);
    sl_arena_defer(a, record, (void *)3);
    sl_arena_reset(a);
    is_int(norder, 3, "three cleanups ran");
    ok(order[0] == 3 && order[1] == 2 && order[2] == 1, "cleanups ran in reverse order");
    is_int(sl_arena_used(a), 0, "reset empties the arena");
    p = sl_arena_calloc(a, 10, 10);
    ok(p != NULL && ((char *)p)[99] == 0, "calloc zeroes");
    sl_arena_free(a);

    /* A cap so small that the defer record cannot be allocated: the cleanup
     * must run at once instead of leaking. */
    a = sl_arena_create(16u << 10);
    while (sl_arena_alloc(a, 16) != NULL)
        ;
    norder = 0;
    is_int(sl_arena_defer(a, record, (void *)9), SL_ERR_NOMEM, "defer on a full arena fails");
    ok(norder == 1 && order[0] == 9, "and runs the cleanup at once");
    sl_arena_free(a);
    sl_arena_free(NULL);
    ok(1, "free(NULL) is fine");
    return tap_done();
}

/* An in-memory struct sl_conn for unit tests: parameters from a NULL-ended
 * name/value list, the body from a string, output collected in a buffer. */
#ifndef SL_TEST_MEMCONN_H
#define SL_TEST_MEMCONN_H

#include <string.h>

#include "buf.h"
#include "conn.h"

struct memconn {
    const char *const *params;   /* name, value, name, value, ..., NULL */
    const char *body;
    size_t body_len, body_pos;
    struct sl_buf out;
    int fail_writes;             /* simulate a client that left */
};

static const char *mc_param(void *ctx, const char *name)
{
    struct memconn *m = ctx;

    for (size_t i = 0; m->params[i] != NULL; i += 2)
        if (strcmp(m->params[i], name) == 0)
            return m->params[i + 1];
    return NULL;
}

static long mc_read(void *ctx, char *buf, size_t n)
{
    struct memconn *m = ctx;
    size_t left = m->body_len - m->body_pos;

    if (n > left)
        n = left;
    if (n > 1000)
        n = 1000;   /* several reads, as from a socket */
    memcpy(buf, m->body + m->body_pos, n);
    m->body_pos += n;
    return (long)n;
}

static int mc_write(void *ctx, const char *p, size_t n)
{
    struct memconn *m = ctx;

    if (m->fail_writes)
        return -1;
    return sl_buf_append(&m->out, p, n) == 0 ? 0 : -1;
}

static int mc_flush(void *ctx)
{
    struct memconn *m = ctx;

    return m->fail_writes ? -1 : 0;
}

static int mc_watch(void *ctx)
{
    (void)ctx;
    return -1;
}

static const struct sl_conn_ops memconn_ops = { mc_param, mc_read, mc_write, mc_flush, mc_watch };

#endif

/* Capped growable buffer (see buf.h). Growth doubles up to the cap; hitting
 * the cap frees the buffer so a caller that ignores the status cannot keep
 * using half-built data. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "status.h"

void sl_buf_init(struct sl_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->size = 0;
    b->cap = cap;
}

void sl_buf_free(struct sl_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->size = 0;
}

void sl_buf_reset(struct sl_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static int grow(struct sl_buf *b, size_t need)
{
    size_t size = b->size ? b->size : 256;
    char *p;

    while (size < need + 1)
        size *= 2;
    if (size > b->cap + 1)
        size = b->cap + 1;
    p = realloc(b->data, size);
    if (p == NULL) {
        sl_buf_free(b);
        return SL_ERR_NOMEM;
    }
    b->data = p;
    b->size = size;
    return SL_OK;
}

int sl_buf_append(struct sl_buf *b, const void *p, size_t n)
{
    int rc;

    if (n > b->cap - b->len) {
        sl_buf_free(b);
        return SL_ERR_TOO_LARGE;
    }
    if (b->len + n + 1 > b->size && (rc = grow(b, b->len + n)) != SL_OK)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return SL_OK;
}

int sl_buf_puts(struct sl_buf *b, const char *s)
{
    return sl_buf_append(b, s, strlen(s));
}

int sl_buf_printf(struct sl_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[512];
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return SL_ERR_INTERNAL;
    if ((size_t)n < sizeof(small))
        return sl_buf_append(b, small, (size_t)n);
    if ((size_t)n > b->cap - b->len) {
        sl_buf_free(b);
        return SL_ERR_TOO_LARGE;
    }
    if ((rc = grow(b, b->len + (size_t)n)) != SL_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SL_OK;
}

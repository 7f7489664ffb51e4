/* A growable byte buffer with a hard cap. Every use names its cap, so no
 * input can make sluice allocate without bound. */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>

struct sl_buf {
    char  *data;  /* owned; NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t size;  /* allocated bytes */
    size_t cap;   /* the most len may ever be */
};

/* Caps, in one place so they can be reviewed together. */
#define SL_MAX_UPSTREAM_BODY  (64u << 20)  /* a whole non-streamed upstream reply */
#define SL_MAX_UPSTREAM_ERROR (64u << 10)  /* an upstream error body we keep */
#define SL_MAX_STREAM_EVENT   (8u << 20)   /* one SSE event (tool arguments can be big) */
#define SL_MAX_LOG_LINE       (16u << 10)

void sl_buf_init(struct sl_buf *b, size_t cap);
/* Appends n bytes. On reaching the cap or OOM the buffer is freed and emptied
 * and SL_ERR_TOO_LARGE / SL_ERR_NOMEM is returned. */
int sl_buf_append(struct sl_buf *b, const void *p, size_t n);
int sl_buf_puts(struct sl_buf *b, const char *s);
int sl_buf_printf(struct sl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sl_buf_reset(struct sl_buf *b);   /* len = 0, memory kept */
void sl_buf_free(struct sl_buf *b);    /* memory released, cap kept */

#endif

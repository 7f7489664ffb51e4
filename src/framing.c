/* SSE and NDJSON framers (see framing.h). Input arrives in arbitrary pieces:
 * a line, even a CRLF pair, may be split anywhere, so the framer keeps only
 * the incomplete tail of a line and the fields of the current event. */
#include <string.h>

#include "framing.h"
#include "status.h"

void sl_framer_init(struct sl_framer *f, enum sl_framing kind)
{
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    sl_buf_init(&f->line, SL_MAX_STREAM_EVENT);
    sl_buf_init(&f->data, SL_MAX_STREAM_EVENT);
    sl_buf_init(&f->event, 256);
    sl_buf_init(&f->id, 256);
}

void sl_framer_free(struct sl_framer *f)
{
    sl_buf_free(&f->line);
    sl_buf_free(&f->data);
    sl_buf_free(&f->event);
    sl_buf_free(&f->id);
}

static int map_append(int rc)
{
    return rc == SL_ERR_TOO_LARGE ? SL_ERR_UPSTREAM_BAD : rc;
}

static int dispatch(struct sl_framer *f, sl_event_fn fn, void *ctx)
{
    struct sl_sse_event ev;
    int rc;

    if (!f->has_data) {
        sl_buf_reset(&f->event);
        return SL_OK;
    }
    if (f->data.len > 0 && f->data.data[f->data.len - 1] == '\n')
        f->data.data[--f->data.len] = '\0';
    ev.event = f->event.len ? f->event.data : NULL;
    ev.data = f->data.len ? f->data.data : "";
    ev.data_len = f->data.len;
    ev.id = f->id.len ? f->id.data : NULL;
    rc = fn(ctx, &ev);
    sl_buf_reset(&f->data);
    sl_buf_reset(&f->event);
    f->has_data = 0;
    return rc;
}

static int set_field(struct sl_buf *b, const char *v, size_t n)
{
    sl_buf_reset(b);
    return n > b->cap ? SL_OK /* an absurd event name is ignored */
                      : map_append(sl_buf_append(b, v, n));
}

static int sse_line(struct sl_framer *f, const char *line, size_t len,
                    sl_event_fn fn, void *ctx)
{
    const char *colon, *value;
    size_t flen, vlen;
    int rc;

    if (len == 0)
        return dispatch(f, fn, ctx);
    if (line[0] == ':')
        return SL_OK;                      /* comment */
    colon = memchr(line, ':', len);
    flen = colon ? (size_t)(colon - line) : len;
    value = colon ? colon + 1 : line + len;
    vlen = len - flen - (colon ? 1 : 0);
    if (vlen > 0 && value[0] == ' ') {
        value++;
        vlen--;
    }
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        if ((rc = sl_buf_append(&f->data, value, vlen)) != SL_OK ||
            (rc = sl_buf_append(&f->data, "\n", 1)) != SL_OK)
            return map_append(rc);
        f->has_data = 1;
        return SL_OK;
    }
    if (flen == 5 && memcmp(line, "event", 5) == 0)
        return set_field(&f->event, value, vlen);
    if (flen == 2 && memcmp(line, "id", 2) == 0)
        return set_field(&f->id, value, vlen);
    return SL_OK;                          /* retry: and unknown fields */
}

static int ndjson_line(struct sl_framer *f, const char *line, size_t len,
                       sl_event_fn fn, void *ctx)
{
    size_t i = 0;
    int rc;

    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return SL_OK;
    sl_buf_reset(&f->data);
    if ((rc = sl_buf_append(&f->data, line, len)) != SL_OK)
        return map_append(rc);
    f->has_data = 1;
    return dispatch(f, fn, ctx);
}

static int one_line(struct sl_framer *f, const char *line, size_t len,
                    sl_event_fn fn, void *ctx)
{
    if (!f->started) {
        f->started = 1;
        if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            len -= 3;
        }
    }
    return f->kind == SL_FRAMING_NDJSON ? ndjson_line(f, line, len, fn, ctx)
                                        : sse_line(f, line, len, fn, ctx);
}

int sl_framer_feed(struct sl_framer *f, const char *p, size_t n,
                   sl_event_fn fn, void *ctx)
{
    size_t i = 0;
    int rc;

    while (i < n) {
        size_t j = i;

        if (f->last_cr) {
            f->last_cr = 0;
            if (p[i] == '\n') {
                i++;
                continue;
            }
        }
        {
            /* memchr is vectorised; a byte loop here was the framer's cost. */
            const char *nl = memchr(p + i, '\n', n - i);
            const char *cr = memchr(p + i, '\r', (size_t)((nl ? nl : p + n) - (p + i)));

            j = (size_t)((cr ? cr : nl ? nl : p + n) - p);
        }
        if (j == n) {                      /* incomplete line: keep it */
            if ((rc = sl_buf_append(&f->line, p + i, n - i)) != SL_OK)
                return map_append(rc);
            break;
        }
        if (f->line.len == 0) {
            rc = one_line(f, p + i, j - i, fn, ctx);
        } else {
            if ((rc = sl_buf_append(&f->line, p + i, j - i)) != SL_OK)
                return map_append(rc);
            rc = one_line(f, f->line.data, f->line.len, fn, ctx);
            sl_buf_reset(&f->line);
        }
        if (rc != SL_OK)
            return rc;
        f->last_cr = p[j] == '\r';
        i = j + 1;
    }
    return SL_OK;
}

int sl_framer_finish(struct sl_framer *f, sl_event_fn fn, void *ctx)
{
    int rc = SL_OK;

    if (f->line.len > 0) {
        rc = one_line(f, f->line.data, f->line.len, fn, ctx);
        sl_buf_reset(&f->line);
    }
    if (rc == SL_OK && f->kind == SL_FRAMING_SSE)
        rc = dispatch(f, fn, ctx);
    return rc;
}

/* SSE, NDJSON and AWS event-stream framers (see framing.h). Input arrives in
 * arbitrary pieces: a line, even a CRLF pair, may be split anywhere, so the
 * framer keeps only the incomplete tail of a line (or of a binary message)
 * and the fields of the current event. */
#include <stdint.h>
#include <string.h>
#include <zlib.h>

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

/* ---- AWS event-stream ----
 * A message is: total length (u32 BE), headers length (u32 BE), CRC32 of
 * those 8 bytes, the headers, the payload, and the CRC32 of everything
 * before it. A header is: name length (u8), name, value type (u8), value.
 * Lengths come from the upstream, so each is checked before it is used. */

#define ES_PRELUDE 12u
#define ES_OVERHEAD 16u     /* prelude + message CRC: the smallest message */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t crc(const unsigned char *p, size_t n)
{
    /* n is at most SL_MAX_STREAM_EVENT, well inside zlib's uInt. */
    return (uint32_t)crc32(0L, p, (uInt)n);
}

/* The prelude at p: the message's total length, or 0 if the prelude is bad
 * (CRC, a length under 16 or over the cap, headers that do not fit). */
static size_t es_prelude(const unsigned char *p)
{
    uint32_t total = be32(p), hlen = be32(p + 4);

    if (crc(p, 8) != be32(p + 8) || total < ES_OVERHEAD || total > SL_MAX_STREAM_EVENT ||
        hlen > total - ES_OVERHEAD)
        return 0;
    return total;
}

/* Bytes of a header value of type t that follow the type byte, not counting
 * a 2-byte length prefix; -1 for an unknown type. */
static long es_fixed_len(unsigned t)
{
    static const signed char len[10] = { 0, 0, 1, 2, 4, 8, -2, -2, 8, 16 };

    return t < 10 ? len[t] : -1;
}

struct es_str {
    const unsigned char *p;
    size_t n;
};

static int es_name_is(const unsigned char *name, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(name, want, n) == 0;
}

/* The string headers a message may carry, read from its header block. */
struct es_headers {
    struct es_str event_type, exception_type, message_type, error_code, error_message;
};

static int es_headers(const unsigned char *p, const unsigned char *end, struct es_headers *h)
{
    while (p < end) {
        size_t nlen = *p++, vlen;
        const unsigned char *name = p;
        long fixed;
        unsigned type;

        if (nlen == 0 || (size_t)(end - p) < nlen + 1)
            return SL_ERR_UPSTREAM_BAD;
        p += nlen;
        type = *p++;
        if ((fixed = es_fixed_len(type)) == -1)
            return SL_ERR_UPSTREAM_BAD;
        if (fixed == -2) {           /* byte array (6) or string (7): u16 length */
            if (end - p < 2)
                return SL_ERR_UPSTREAM_BAD;
            vlen = (size_t)p[0] << 8 | p[1];
            p += 2;
        } else {
            vlen = (size_t)fixed;
        }
        if ((size_t)(end - p) < vlen)
            return SL_ERR_UPSTREAM_BAD;
        if (type == 7) {
            struct es_str v = { p, vlen };

            if (es_name_is(name, nlen, ":event-type"))
                h->event_type = v;
            else if (es_name_is(name, nlen, ":exception-type"))
                h->exception_type = v;
            else if (es_name_is(name, nlen, ":message-type"))
                h->message_type = v;
            else if (es_name_is(name, nlen, ":error-code"))
                h->error_code = v;
            else if (es_name_is(name, nlen, ":error-message"))
                h->error_message = v;
        }
        p += vlen;
    }
    return SL_OK;
}

/* One whole message of total bytes (prelude already checked): the message
 * CRC, the headers, then the event. */
static int es_message(struct sl_framer *f, const unsigned char *m, size_t total,
                      sl_event_fn fn, void *ctx)
{
    size_t hlen = be32(m + 4);
    const unsigned char *payload = m + ES_PRELUDE + hlen;
    size_t plen = total - ES_OVERHEAD - hlen;
    struct es_headers h;
    struct es_str name, data;
    struct sl_sse_event ev;
    int rc;

    memset(&h, 0, sizeof(h));
    if (crc(m, total - 4) != be32(m + total - 4) ||
        (rc = es_headers(m + ES_PRELUDE, payload, &h)) != SL_OK)
        return SL_ERR_UPSTREAM_BAD;
    data = (struct es_str){ payload, plen };
    name = h.event_type;
    if (es_name_is(h.message_type.p, h.message_type.n, "exception")) {
        name = h.exception_type;
    } else if (es_name_is(h.message_type.p, h.message_type.n, "error")) {
        name = h.error_code;
        if (plen == 0)
            data = h.error_message;
    }
    if ((rc = set_field(&f->event, (const char *)name.p, name.n)) != SL_OK ||
        (rc = set_field(&f->id, (const char *)h.message_type.p, h.message_type.n)) != SL_OK)
        return rc;
    sl_buf_reset(&f->data);
    if (data.n > 0 && (rc = map_append(sl_buf_append(&f->data, data.p, data.n))) != SL_OK)
        return rc;
    ev.event = f->event.len ? f->event.data : NULL;
    ev.id = f->id.len ? f->id.data : NULL;
    ev.data = f->data.len ? f->data.data : "";
    ev.data_len = f->data.len;
    rc = fn(ctx, &ev);
    sl_buf_reset(&f->data);
    sl_buf_reset(&f->event);
    sl_buf_reset(&f->id);
    return rc;
}

/* Whole messages are framed where they lie in the input; only a message
 * split across reads is gathered in f->line (bounded: the prelude's length
 * is checked against the cap before anything past it is kept). */
static int es_feed(struct sl_framer *f, const unsigned char *p, size_t n,
                   sl_event_fn fn, void *ctx)
{
    size_t total, take;
    int rc;

    while (n > 0) {
        if (f->line.len == 0 && n >= ES_PRELUDE) {
            if ((total = es_prelude(p)) == 0)
                return SL_ERR_UPSTREAM_BAD;
            if (n >= total) {
                if ((rc = es_message(f, p, total, fn, ctx)) != SL_OK)
                    return rc;
                p += total;
                n -= total;
                continue;
            }
            f->msg_len = total;
        }
        take = (f->msg_len ? f->msg_len : ES_PRELUDE) - f->line.len;
        take = take < n ? take : n;
        if ((rc = map_append(sl_buf_append(&f->line, p, take))) != SL_OK)
            return rc;
        p += take;
        n -= take;
        if (f->msg_len == 0 && f->line.len == ES_PRELUDE &&
            (f->msg_len = es_prelude((const unsigned char *)f->line.data)) == 0)
            return SL_ERR_UPSTREAM_BAD;
        if (f->msg_len != 0 && f->line.len == f->msg_len) {
            rc = es_message(f, (const unsigned char *)f->line.data, f->msg_len, fn, ctx);
            sl_buf_reset(&f->line);
            f->msg_len = 0;
            if (rc != SL_OK)
                return rc;
        }
    }
    return SL_OK;
}

static int text_feed(struct sl_framer *f, const char *p, size_t n,
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

/* After a non-OK status the stream's boundaries are lost: the rest of that
 * input was never looked at, or a line went at the cap while the event it
 * belonged to stayed half-built. Every later call repeats the status and
 * delivers nothing (a finish used to hand out that half-built event). */
int sl_framer_feed(struct sl_framer *f, const char *p, size_t n,
                   sl_event_fn fn, void *ctx)
{
    if (f->failed != SL_OK)
        return f->failed;
    if (f->kind == SL_FRAMING_RAW) {
        struct sl_sse_event ev = { NULL, p, n, NULL };

        f->failed = n > 0 ? fn(ctx, &ev) : SL_OK;
        return f->failed;
    }
    f->failed = f->kind == SL_FRAMING_EVENTSTREAM ? es_feed(f, (const unsigned char *)p, n, fn, ctx)
                                                  : text_feed(f, p, n, fn, ctx);
    return f->failed;
}

int sl_framer_finish(struct sl_framer *f, sl_event_fn fn, void *ctx)
{
    int rc = SL_OK;

    if (f->failed != SL_OK)
        return f->failed;
    if (f->kind == SL_FRAMING_RAW) {
        rc = SL_OK;     /* nothing is ever held back */
    } else if (f->kind == SL_FRAMING_EVENTSTREAM) {
        rc = f->line.len > 0 ? SL_ERR_UPSTREAM_BAD : SL_OK;
    } else {
        if (f->line.len > 0) {
            rc = one_line(f, f->line.data, f->line.len, fn, ctx);
            sl_buf_reset(&f->line);
        }
        if (rc == SL_OK && f->kind == SL_FRAMING_SSE)
            rc = dispatch(f, fn, ctx);
    }
    f->failed = rc;
    return rc;
}

/* Fuzzing a stream framer: the stream is fed once whole and once in chunks
 * whose sizes come from the input (see fuzz.h), so split points are fuzzed
 * too. Checked on every event and every return:
 *   - an event is NUL-terminated, within the cap in force, and its fields
 *     hold no line breaks (SSE, NDJSON);
 *   - statuses are the documented ones, and nothing is delivered once the
 *     callback or the framer said stop: not by a later feed, not by finish;
 *   - the two feedings deliver the same events, unless one stopped early at
 *     a cap (a long line held across reads), and then it saw a prefix. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "framing.h"
#include "fuzz.h"
#include "status.h"

#define FIELD_CAP 256       /* framing.c: the event and id buffers */

struct plan {
    const uint8_t *sizes;   /* chunk sizes, used in turn; k == 0: one feed */
    size_t k;
    int stop_at;            /* the callback fails at this event (1-based); 0: never */
    size_t cap;             /* line and data cap; 0: the framer's own */
    const uint8_t *stream;
    size_t len;
};

struct run {
    enum sl_framing kind;
    const struct plan *plan;
    size_t cap;             /* the data cap in force */
    int n;                  /* events delivered */
    int dead;               /* a non-OK status was returned: no more events */
    uint64_t *hashes;       /* one per event, in order (room for len + 2) */
    int rc;                 /* the first non-OK status, or SL_OK */
};

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static void check_field(const struct run *r, const char *s, const char *what)
{
    size_t n;

    if (s == NULL)
        return;
    /* A field may hold a NUL byte (SSE allows U+0000), so its C string can
     * be shorter than the field, even empty; never longer than the cap. */
    n = strlen(s);
    if (n > FIELD_CAP)
        sl_fuzz_fail(what);
    if (r->kind != SL_FRAMING_EVENTSTREAM && (memchr(s, '\n', n) || memchr(s, '\r', n)))
        sl_fuzz_fail(what);
}

static int on_event(void *ctx, const struct sl_sse_event *ev)
{
    struct run *r = ctx;
    uint64_t h = 14695981039346656037ull;

    if (r->dead)
        sl_fuzz_fail("an event after a non-OK status");
    if (ev->data == NULL || ev->data[ev->data_len] != '\0')
        sl_fuzz_fail("event data not NUL-terminated at data_len");
    if (ev->data_len > r->cap)
        sl_fuzz_fail("event data over the cap");
    if ((size_t)r->n > r->plan->len)
        sl_fuzz_fail("more events than input bytes");
    check_field(r, ev->event, "bad event field");
    check_field(r, ev->id, "bad id field");
    if (r->kind == SL_FRAMING_NDJSON) {
        size_t i = 0;

        if (memchr(ev->data, '\n', ev->data_len) || memchr(ev->data, '\r', ev->data_len))
            sl_fuzz_fail("NDJSON event with a line break");
        while (i < ev->data_len && (ev->data[i] == ' ' || ev->data[i] == '\t'))
            i++;
        if (i == ev->data_len)
            sl_fuzz_fail("blank NDJSON event");
        if (ev->event != NULL || ev->id != NULL)
            sl_fuzz_fail("NDJSON event with fields");
    } else if (r->kind == SL_FRAMING_SSE && memchr(ev->data, '\r', ev->data_len)) {
        sl_fuzz_fail("SSE data with a CR");
    }
    h = fnv(h, ev->event ? ev->event : "\1", ev->event ? strlen(ev->event) + 1 : 1);
    h = fnv(h, ev->id ? ev->id : "\1", ev->id ? strlen(ev->id) + 1 : 1);
    h = fnv(h, ev->data, ev->data_len);
    r->hashes[r->n++] = h;
    if (r->plan->stop_at != 0 && r->n == r->plan->stop_at) {
        r->dead = 1;
        return SL_ERR_CLIENT_GONE;
    }
    return SL_OK;
}

static void check_status(struct run *r, int rc)
{
    if (rc != SL_OK && rc != SL_ERR_UPSTREAM_BAD && rc != SL_ERR_NOMEM && rc != SL_ERR_CLIENT_GONE)
        sl_fuzz_fail("unexpected status from the framer");
    if (rc == SL_ERR_CLIENT_GONE && !r->dead)
        sl_fuzz_fail("CLIENT_GONE that the callback did not return");
    if (rc != SL_OK) {
        r->dead = 1;
        if (r->rc == SL_OK)
            r->rc = rc;
    }
}

/* Feeds the stream whole (chunked == 0) or in the plan's chunks, as
 * upstream.c does: stop at the first non-OK status, finish only after a
 * clean stream. Then, as the contract promises, a finish after an error
 * delivers nothing. */
static void feed(struct run *r, int chunked)
{
    const struct plan *p = r->plan;
    struct sl_framer f;
    size_t off = 0, turn = 0, idle = 0;
    int rc = SL_OK;

    sl_framer_init(&f, r->kind);
    if (p->cap != 0)
        f.line.cap = f.data.cap = p->cap;
    r->cap = f.data.cap;
    while (rc == SL_OK && off < p->len) {
        size_t n = chunked && p->k ? p->sizes[turn++ % p->k] : p->len - off;

        /* zero sizes are legal feeds; a whole round of them feeds the rest */
        idle = n == 0 ? idle + 1 : 0;
        if (idle > p->k)
            n = p->len - off;
        if (n > p->len - off)
            n = p->len - off;
        rc = sl_framer_feed(&f, (const char *)p->stream + off, n, on_event, r);
        check_status(r, rc);
        off += n;
    }
    if (rc == SL_OK) {
        rc = sl_framer_finish(&f, on_event, r);
        check_status(r, rc);
    }
    if (rc != SL_OK) {
        rc = sl_framer_finish(&f, on_event, r);   /* on_event fails if it delivers */
        if (rc == SL_OK)
            sl_fuzz_fail("finish after an error returned SL_OK");
    }
    sl_framer_free(&f);
}

int sl_fuzz_framer(enum sl_framing kind, const uint8_t *data, size_t size)
{
    struct plan p = { 0 };
    struct run whole = { .kind = kind, .plan = &p }, cut = { .kind = kind, .plan = &p };
    size_t i = 1;
    int shorter;

    if (size == 0)
        return 0;
    p.k = data[0] & 7u;
    p.sizes = data + 1;
    i += p.k;
    if ((data[0] & 8u) && i < size)
        p.stop_at = data[i++] + 1;
    if ((data[0] & 16u) && i < size)
        p.cap = 16u * ((size_t)data[i++] + 1);
    if (i > size)
        return 0;
    p.stream = data + i;
    p.len = size - i;
    whole.hashes = malloc((p.len + 2) * sizeof(uint64_t));
    cut.hashes = malloc((p.len + 2) * sizeof(uint64_t));
    if (whole.hashes == NULL || cut.hashes == NULL)
        sl_fuzz_fail("out of memory in the harness");
    feed(&whole, 0);
    feed(&cut, 1);
    /* A cap can stop one feeding earlier than the other: a line held across
     * reads counts against it, one seen whole in a read does not. */
    shorter = whole.n < cut.n ? whole.n : cut.n;
    if (memcmp(whole.hashes, cut.hashes, (size_t)shorter * sizeof(uint64_t)) != 0)
        sl_fuzz_fail("chunked feeding delivered different events");
    if (whole.rc == cut.rc && whole.rc != SL_ERR_UPSTREAM_BAD) {
        if (whole.n != cut.n)
            sl_fuzz_fail("chunked feeding delivered a different number of events");
    } else if (whole.rc != cut.rc || whole.n != cut.n) {
        const struct run *early = whole.n < cut.n ? &whole : &cut;

        if (early->rc != SL_ERR_UPSTREAM_BAD)
            sl_fuzz_fail("chunked feeding ended differently");
    }
    free(whole.hashes);
    free(cut.hashes);
    return 0;
}

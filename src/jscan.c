/* Top-level member scanner (see jscan.h). A single pass with a small stack
 * of open brackets; it never reads outside p[0..len). */
#include <string.h>

#include "jscan.h"
#include "jsonutil.h"

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *p, size_t len, size_t i)
{
    while (i < len && is_ws(p[i]))
        i++;
    return i;
}

/* p[*i] is '"': moves *i past the closing quote. */
static int skip_string(const char *p, size_t len, size_t *i)
{
    size_t k = *i + 1;

    while (k < len) {
        unsigned char c = (unsigned char)p[k];

        if (c == '"') {
            *i = k + 1;
            return 0;
        }
        if (c < 0x20)
            return -1;          /* raw control bytes are not allowed in strings */
        k += c == '\\' ? 2 : 1;
    }
    return -1;
}

/* Moves *i past one value starting at p[*i]. */
static int skip_value(const char *p, size_t len, size_t *i)
{
    char stack[SL_JSON_MAX_DEPTH];
    int depth = 0;
    size_t k = *i;

    if (k >= len)
        return -1;
    if (p[k] == '"')
        return skip_string(p, len, i);
    if (p[k] != '{' && p[k] != '[') {
        while (k < len && !is_ws(p[k]) && p[k] != ',' && p[k] != '}' && p[k] != ']' &&
               p[k] != ':' && p[k] != '"' && p[k] != '{' && p[k] != '[')
            k++;
        if (k == *i)
            return -1;
        *i = k;
        return 0;
    }
    while (k < len) {
        char c = p[k];

        if (c == '"') {
            if (skip_string(p, len, &k) != 0)
                return -1;
            continue;
        }
        if (c == '{' || c == '[') {
            if (depth == SL_JSON_MAX_DEPTH)
                return -1;
            stack[depth++] = c == '{' ? '}' : ']';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[depth - 1] != c)
                return -1;
            if (--depth == 0) {
                *i = k + 1;
                return 0;
            }
        }
        k++;
    }
    return -1;
}

int sl_jscan_object(const char *p, size_t len, sl_jmember_fn fn, void *ctx)
{
    size_t i = skip_ws(p, len, 0);
    int rc;

    if (i >= len || p[i] != '{')
        return -1;
    i = skip_ws(p, len, i + 1);
    if (i < len && p[i] == '}')
        return skip_ws(p, len, i + 1) == len ? 0 : -1;
    for (;;) {
        struct sl_jmember m;

        if (i >= len || p[i] != '"')
            return -1;
        m.start = i;
        m.key = p + i + 1;
        if (skip_string(p, len, &i) != 0)
            return -1;
        m.key_len = (size_t)(p + i - 1 - m.key);
        i = skip_ws(p, len, i);
        if (i >= len || p[i] != ':')
            return -1;
        i = skip_ws(p, len, i + 1);
        m.val = p + i;
        if (skip_value(p, len, &i) != 0)
            return -1;
        m.val_len = (size_t)(p + i - m.val);
        m.end = i;
        if (fn != NULL && (rc = fn(ctx, &m)) != 0)
            return rc;
        i = skip_ws(p, len, i);
        if (i < len && p[i] == ',') {
            i = skip_ws(p, len, i + 1);
            continue;
        }
        if (i < len && p[i] == '}')
            return skip_ws(p, len, i + 1) == len ? 0 : -1;
        return -1;
    }
}

int sl_jscan_key_is(const struct sl_jmember *m, const char *name)
{
    size_t n = strlen(name);

    return m->key_len == n && memcmp(m->key, name, n) == 0;
}

int sl_jscan_is_null(const char *val, size_t len)
{
    return len == 4 && memcmp(val, "null", 4) == 0;
}

const char *sl_jscan_find_key(const char *p, size_t len, const char *key)
{
    size_t n = strlen(key);
    const char *end = p + len, *q = p;

    while (q < end && (q = memchr(q, '"', (size_t)(end - q))) != NULL) {
        const char *after = q + 1 + n;

        if (after < end && (size_t)(end - q - 1) >= n && memcmp(q + 1, key, n) == 0 &&
            *after == '"' && (q == p || q[-1] != '\\')) {
            after++;
            while (after < end && is_ws(*after))
                after++;
            if (after < end && *after == ':') {
                after++;
                while (after < end && is_ws(*after))
                    after++;
                return after < end ? after : NULL;
            }
        }
        q++;
    }
    return NULL;
}

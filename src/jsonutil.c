/* Jansson helpers: a depth-checked parse, arena dumps, message text. */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "status.h"
#include "jsonutil.h"

/* Jansson recurses once per nesting level; a document of 100k '[' would
 * exhaust a worker's small stack. Count brackets outside strings first. */
static int depth_ok(const char *p, size_t len)
{
    int depth = 0, in_str = 0;

    for (size_t i = 0; i < len; i++) {
        char c = p[i];

        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > SL_JSON_MAX_DEPTH)
                return 0;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 1;
}

json_t *sl_json_parse(const char *p, size_t len, const char **why)
{
    json_error_t err;
    json_t *v;

    if (!depth_ok(p, len)) {
        *why = "JSON nested too deeply";
        return NULL;
    }
    /* JSON_ALLOW_NUL would let "\u0000" through into C strings that end early;
     * without it Jansson rejects it, which is what we want. Invalid UTF-8 is
     * rejected by Jansson itself. */
    v = json_loadb(p, len, JSON_REJECT_DUPLICATES, &err);
    if (v == NULL)
        *why = "invalid JSON";
    return v;
}

/* Documents up to this size (chunks, most requests) are dumped once, on
 * the stack, and copied; bigger ones are sized first and dumped into
 * exactly enough arena memory (two passes, but no arena waste). */
#define DUMP_STACK 8192

char *sl_json_dump(struct sl_arena *a, const json_t *v, size_t *len)
{
    char tmp[DUMP_STACK], *p;
    size_t need = json_dumpb(v, tmp, sizeof(tmp), JSON_COMPACT | JSON_ENCODE_ANY);

    if (need == 0)
        return NULL;   /* json_dumpb's error */
    p = sl_arena_alloc(a, need + 1);
    if (p == NULL)
        return NULL;
    if (need <= sizeof(tmp))
        memcpy(p, tmp, need);
    else if (json_dumpb(v, p, need, JSON_COMPACT | JSON_ENCODE_ANY) != need)
        return NULL;
    p[need] = '\0';
    *len = need;
    return p;
}

void sl_json_decref_cb(void *v)
{
    json_decref(v);
}

const char *sl_json_content_text(struct sl_arena *a, const json_t *content)
{
    size_t total = 0, i;
    json_t *part;
    char *out, *w;

    if (json_is_string(content))
        return json_string_value(content);
    if (!json_is_array(content))
        return "";
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");

        if (json_is_string(t))
            total += json_string_length(t);
    }
    out = w = sl_arena_alloc(a, total + 1);
    if (out == NULL)
        return "";
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");

        if (json_is_string(t)) {
            memcpy(w, json_string_value(t), json_string_length(t));
            w += json_string_length(t);
        }
    }
    *w = '\0';
    return out;
}

int sl_json_put_str(struct sl_buf *b, const char *s)
{
    const unsigned char *p;
    char tmp[1024];
    json_t *v;
    size_t n;
    int rc;

    if (s == NULL)
        return sl_buf_append(b, "null", 4);
    for (p = (const unsigned char *)s; *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\'; p++)
        ;
    if (*p == '\0') {
        if ((rc = sl_buf_append(b, "\"", 1)) != SL_OK || (rc = sl_buf_append(b, s, (size_t)(p - (const unsigned char *)s))) != SL_OK)
            return rc;
        return sl_buf_append(b, "\"", 1);
    }
    if ((v = json_string(s)) == NULL)        /* not UTF-8 (or OOM): nothing to say */
        return sl_buf_append(b, "null", 4);
    n = json_dumpb(v, tmp, sizeof(tmp), JSON_ENCODE_ANY);
    if (n > 0 && n <= sizeof(tmp)) {
        rc = sl_buf_append(b, tmp, n);
    } else {
        char *big = json_dumps(v, JSON_ENCODE_ANY);

        rc = big != NULL ? sl_buf_puts(b, big) : SL_ERR_NOMEM;
        free(big);
    }
    json_decref(v);
    return rc;
}

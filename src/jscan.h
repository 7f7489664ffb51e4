/* Byte ranges of the top-level members of a JSON object text.
 *
 * Why not Jansson here: passing an OpenAI-shaped chunk through only needs the
 * "model" value swapped and "usage"/"choices"/"error" looked at. A Jansson
 * parse + dump of a 250-byte chunk costs ~110k instructions; finding the
 * ranges costs a few per byte. Jansson stays the parser for everything that
 * is interpreted: client requests are fully parsed and validated, and values
 * found here (a usage object, an error) are handed to Jansson when needed.
 *
 * The scan checks structure only: strings (escapes, no raw control bytes),
 * matching brackets (at most SL_JSON_MAX_DEPTH deep), colons and commas, and
 * nothing but whitespace after the object. Scalars are not validated. */
#ifndef SL_JSCAN_H
#define SL_JSCAN_H

#include <stddef.h>

struct sl_jmember {
    const char *key;      /* between the quotes, escapes as written */
    size_t      key_len;
    const char *val;      /* the value's exact text */
    size_t      val_len;
    size_t      start;    /* offset of the key's opening quote */
    size_t      end;      /* offset just past the value */
};

/* Called per member in order; a non-zero return stops the scan and is returned. */
typedef int (*sl_jmember_fn)(void *ctx, const struct sl_jmember *m);

/* Scans the object in p[0..len). Returns 0 after calling fn for every member,
 * -1 if the text is not a structurally valid JSON object, or fn's return. */
int sl_jscan_object(const char *p, size_t len, sl_jmember_fn fn, void *ctx);

/* Whether the member's key is exactly name (keys with escapes never match). */
int sl_jscan_key_is(const struct sl_jmember *m, const char *name);

/* Whether a value text is the literal null. */
int sl_jscan_is_null(const char *val, size_t len);

/* Finds "key" (as a key: followed by optional whitespace and a colon)
 * anywhere in p[0..len) and returns the first byte of its value (after
 * whitespace), or NULL. Inside JSON strings quotes are escaped, so an
 * unescaped "key": can only be a key. */
const char *sl_jscan_find_key(const char *p, size_t len, const char *key);

#endif

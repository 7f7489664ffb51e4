/* Small helpers around Jansson shared by the core and the adapters. */
#ifndef SL_JSONUTIL_H
#define SL_JSONUTIL_H

#include <stddef.h>
#include <jansson.h>

struct sl_arena;

/* Maximum nesting accepted in a client or upstream document. Jansson's own
 * parser is recursive; we reject deeper input before it gets there. */
#define SL_JSON_MAX_DEPTH 128

/* Parses a JSON document of len bytes. Returns a new reference, or NULL with
 * a short static reason in *why ("invalid JSON", "nested too deeply", ...). */
json_t *sl_json_parse(const char *p, size_t len, const char **why);

/* Serialises v compactly into arena memory; *len gets its length. NULL on OOM. */
char *sl_json_dump(struct sl_arena *a, const json_t *v, size_t *len);

/* Appends s to b as a JSON string ("null" for NULL): text that needs no
 * escaping (printable ASCII other than '"' and '\\') is copied between the
 * quotes, anything else goes through Jansson's encoder. For JSON built as
 * text off the request path (export.c), where a tree per event would cost
 * more than the event. SL_OK, or the buffer's error. */
struct sl_buf;
int sl_json_put_str(struct sl_buf *b, const char *s);

/* json_decref as a deferred cleanup: sl_arena_defer(a, sl_json_decref_cb, v). */
void sl_json_decref_cb(void *v);

/* The text of an OpenAI message "content": a string, or the concatenated
 * "text" of its parts. Borrowed or arena memory; "" when there is none. */
const char *sl_json_content_text(struct sl_arena *a, const json_t *content);

#endif

/* The response cache (LiteLLM's litellm_settings.cache): exact-match answers
 * of chat completions and embeddings, kept in memcached (or, without
 * memcached, in a small table per process) under the SHA-256 of the
 * normalised request, the caller's team (or key) and the namespace. A hit
 * is answered here, whole or replayed as a stream, without an upstream
 * call; a miss is collected from what proxy.c sends the client and stored
 * when it was a complete, successful answer. See docs/cache.md. */
#ifndef SL_CACHE_H
#define SL_CACHE_H

#include <stddef.h>
#include <jansson.h>

struct sl_request;
struct sl_config;

/* The largest entry stored (memcached's default item size is 1 MiB; the key
 * and the item header must fit too). */
#define SL_CACHE_MAX_ENTRY 1000000u

/* For an authenticated, admitted, routed chat or embeddings request (req->in
 * parsed, the Anthropic body not yet translated): reads and removes the
 * request's "cache" member, decides whether the cache applies, computes the
 * key and looks it up. On a hit the client is answered (whole, or as a
 * stream when it asked for one) and *hit is 1; the request then needs no
 * upstream call. Otherwise *hit is 0 and, when the answer may be stored,
 * req->cache is set so that proxy.c's answer is collected. SL_OK;
 * SL_ERR_BAD_REQUEST (req->err_msg set) for a malformed "cache" member;
 * SL_ERR_NOMEM. */
int sl_cache_begin(struct sl_request *req, int *hit);

/* What proxy.c sent the client, in OpenAI's shape: a whole reply, or one
 * stream chunk (req->stream says which). The text form is up to three
 * pieces (a spliced body). Nothing happens unless req->cache is set;
 * collecting never fails the request (a problem only makes the answer
 * uncacheable). v is borrowed. */
void sl_cache_keep_json(struct sl_request *req, const json_t *v);
void sl_cache_keep_text(struct sl_request *req, const char *a, size_t na, const char *b,
                        size_t nb, const char *c, size_t nc);

/* After the answer went out: stores it when it was complete and
 * successful (no error, client still there, every choice finished) and
 * fits SL_CACHE_MAX_ENTRY. Failures are ignored (a cache). */
void sl_cache_finish(struct sl_request *req);

/* For the spend row: 1 when req was answered from the cache, 0 when it
 * went upstream; key: the 64-hex cache key, or NULL when the cache was not
 * used. */
int sl_cache_was_hit(const struct sl_request *req);
const char *sl_cache_key_of(const struct sl_request *req);

/* The cache key (64 hex digits and a NUL into hex) of a request body
 * (borrowed; members that do not change the answer are left out), the
 * model as the client named it, the endpoint ("chat", "embeddings",
 * "messages"), the tenant ("team:ID", "key:HASH", ...) and a namespace
 * (NULL: none). SL_OK or SL_ERR_NOMEM. Exposed for the unit test. */
int sl_cache_key(const json_t *body, const char *model, const char *endpoint,
                 const char *tenant, const char *ns, char hex[65]);

/* Whether path is one of LiteLLM's cache routes sluice serves
 * (/cache/ping, /cache/delete). */
int sl_cache_is_route(const char *path);

/* Serves an authenticated request on such a route (POST bodies read):
 * GET /cache/ping (any caller) answers LiteLLM's {"status": "healthy",
 * "cache_type", ...}, 503 when the cache is off or memcached fails; POST
 * /cache/delete (admins only) removes the entries {"keys": [hex, ...]} names
 * and answers {"status": "success"}. Returns an sl_status for the error
 * envelope when nothing was sent. */
int sl_cache_serve_route(struct sl_request *req);

#endif

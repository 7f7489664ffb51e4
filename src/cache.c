/* The response cache: exact-match answers of chat completions and
 * embeddings (LiteLLM's litellm_settings.cache). The key is the SHA-256 of
 * the request with the members that do not change the answer left out,
 * dumped with sorted keys, plus the model as asked, the endpoint, the
 * caller's team (or key) and the namespace, so tenants never share answers.
 * An entry is one canonical OpenAI reply (a chat.completion, or an
 * embeddings list) with the time it was stored; a streamed miss is
 * assembled from the chunks the client received, a streamed hit is
 * replayed as chunks made from it. Entries live in memcached (mcache.h)
 * when servers are configured, else in a small table of this process.
 * What the client sees of a hit goes through respond.c (or messages.c for
 * Anthropic's shape); the spend row is request.c's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "arena.h"
#include "buf.h"
#include "cache.h"
#include "config.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "mcache.h"
#include "request.h"
#include "respond.h"
#include "router.h"
#include "status.h"
#include "surface.h"

#define MAX_CHOICES 8            /* "n" beyond this is not cached */
#define MAX_TOOLS 16             /* tool calls per choice */
#define MAX_TTL_S 2592000L       /* 30 days: memcached reads more as a date */
#define MC_PREFIX "sl:rc:"

struct acc_tool {
    const char *id, *type, *name;   /* arena */
    struct sl_buf args;
};

struct acc_choice {
    int seen;
    const char *role;               /* arena */
    int has_content;
    struct sl_buf content, reasoning;
    const char *finish;             /* arena; NULL until the choice finished */
    struct acc_tool tools[MAX_TOOLS];
    size_t n_tools;
};

/* One request's cache state (arena; the buffers and JSON are released by
 * state_free, deferred). */
struct sl_cache_req {
    char key[65];
    int hit;
    int store;                      /* the answer may be stored */
    int bad;                        /* collecting failed: do not store */
    long ttl_s;
    json_t *whole;                  /* owned: a whole reply */
    const char *id;                 /* stream: the first chunk's id (arena) */
    json_int_t created;
    const char *fingerprint;        /* system_fingerprint (arena) */
    json_t *usage;                  /* owned: the last usage seen */
    struct acc_choice ch[MAX_CHOICES];
    size_t n_choices;
    size_t bytes;                   /* text collected */
};

static void state_free(void *p)
{
    struct sl_cache_req *s = p;

    for (size_t i = 0; i < MAX_CHOICES; i++) {
        sl_buf_free(&s->ch[i].content);
        sl_buf_free(&s->ch[i].reasoning);
        for (size_t j = 0; j < MAX_TOOLS; j++)
            sl_buf_free(&s->ch[i].tools[j].args);
    }
    json_decref(s->whole);
    json_decref(s->usage);
}

/* ---- the per-process table (no memcached) -------------------------------------
 * Without memcached an entry can only be shared by this process's threads:
 * a fixed table of slots (a newer entry takes the slot of an older one with
 * the same hash bits) under a byte cap. Process-wide state on purpose, like
 * mcache.c's clients. */

#define LOCAL_SLOTS 256
#define LOCAL_MAX_BYTES (64u << 20)

static struct {
    pthread_mutex_t lock;
    struct local_slot {
        char key[65];
        long long expires;          /* unix seconds */
        char *val;                  /* malloc'ed, NUL-terminated */
        size_t len;
    } slot[LOCAL_SLOTS];
    size_t bytes;
} local = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct local_slot *local_slot_of(const char *hex)
{
    return &local.slot[strtoul((char[9]){ hex[0], hex[1], hex[2], hex[3], hex[4], hex[5],
                                           hex[6], hex[7], 0 }, NULL, 16) % LOCAL_SLOTS];
}

static void local_drop(struct local_slot *s)
{
    local.bytes -= s->len;
    free(s->val);
    memset(s, 0, sizeof(*s));
}

static char *local_get(const char *hex, size_t *len)
{
    struct local_slot *s;
    char *out = NULL;

    pthread_mutex_lock(&local.lock);
    s = local_slot_of(hex);
    if (s->val != NULL && strcmp(s->key, hex) == 0) {
        if (s->expires <= (long long)time(NULL)) {
            local_drop(s);
        } else if ((out = malloc(s->len + 1)) != NULL) {
            memcpy(out, s->val, s->len + 1);
            *len = s->len;
        }
    }
    pthread_mutex_unlock(&local.lock);
    return out;
}

static void local_set(const char *hex, const char *val, size_t len, long ttl_s)
{
    struct local_slot *s;
    char *copy = malloc(len + 1);

    if (copy == NULL)
        return;
    memcpy(copy, val, len);
    copy[len] = '\0';
    pthread_mutex_lock(&local.lock);
    s = local_slot_of(hex);
    if (s->val != NULL)
        local_drop(s);
    if (local.bytes + len <= LOCAL_MAX_BYTES) {
        memcpy(s->key, hex, 65);
        s->val = copy;
        s->len = len;
        s->expires = (long long)time(NULL) + ttl_s;
        local.bytes += len;
        copy = NULL;
    }
    pthread_mutex_unlock(&local.lock);
    free(copy);
}

static void local_delete(const char *hex)
{
    struct local_slot *s;

    pthread_mutex_lock(&local.lock);
    s = local_slot_of(hex);
    if (s->val != NULL && strcmp(s->key, hex) == 0)
        local_drop(s);
    pthread_mutex_unlock(&local.lock);
}

static char *entry_get(const struct sl_config *cfg, const char *hex, size_t *len)
{
    char k[sizeof(MC_PREFIX) + 64];

    if (!sl_mc_configured(cfg))
        return local_get(hex, len);
    snprintf(k, sizeof(k), MC_PREFIX "%s", hex);
    return sl_mc_get(cfg, k, len);
}

static void entry_set(const struct sl_config *cfg, const char *hex, const char *val, size_t len,
                      long ttl_s)
{
    char k[sizeof(MC_PREFIX) + 64];

    if (!sl_mc_configured(cfg)) {
        local_set(hex, val, len, ttl_s);
        return;
    }
    snprintf(k, sizeof(k), MC_PREFIX "%s", hex);
    sl_mc_set(cfg, k, val, len, ttl_s);
}

static int is_hex64(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == 64 && s[i] == '\0';
}

static void entry_delete(const struct sl_config *cfg, const char *hex)
{
    char k[sizeof(MC_PREFIX) + 64];

    if (!sl_mc_configured(cfg)) {
        local_delete(hex);
        return;
    }
    snprintf(k, sizeof(k), MC_PREFIX "%s", hex);
    sl_mc_delete(cfg, k);
}

/* ---- the key ---------------------------------------------------------------- */

/* Members that do not change the answer (transport, accounting, routing,
 * the cache controls themselves). Everything else a client sends is part of
 * the key, so a new parameter can never make two different questions
 * share an answer. */
static const char *const not_in_key[] = {
    "model", "stream", "stream_options", "user", "metadata", "litellm_metadata", "cache",
    "caching", "timeout", "request_timeout", "fallbacks", "context_window_fallbacks",
    "content_policy_fallbacks", "num_retries", "tags", "guardrails", "drop_params",
    "additional_drop_params", "litellm_session_id", "litellm_trace_id", NULL
};

int sl_cache_key(const json_t *body, const char *model, const char *endpoint,
                 const char *tenant, const char *ns, char hex[65])
{
    json_t *req = json_copy((json_t *)body), *k = NULL;   /* shallow: values shared */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *text = NULL;
    int rc = SL_ERR_NOMEM;

    if (req == NULL)
        return SL_ERR_NOMEM;
    for (size_t i = 0; not_in_key[i] != NULL; i++)
        json_object_del(req, not_in_key[i]);
    k = json_pack("{s:i, s:s, s:s, s:s, s:s?, s:o}", "v", 1, "endpoint", endpoint,
                  "model", model, "tenant", tenant, "namespace", ns, "request", req);
    if (k == NULL)
        goto out;
    if ((text = json_dumps(k, JSON_SORT_KEYS | JSON_COMPACT)) == NULL)
        goto out;
    if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        goto out;
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    rc = SL_OK;
out:
    free(text);
    json_decref(k);
    return rc;
}

/* Whose answers these are: the team's when the key has one, else the
 * key's (or the web server's user's); the master key has its own. */
static const char *tenant_of(struct sl_request *req)
{
    const struct sl_key *k = req->principal.key, *u = req->principal.user;

    if (k != NULL && k->team_id != NULL && k->team_id[0] != '\0')
        return sl_arena_printf(req->arena, "team:%s", k->team_id);
    if (req->principal.role == SL_ROLE_KEY)
        return sl_arena_printf(req->arena, "key:%s", req->principal.key_hash);
    if (u != NULL && u->user_id != NULL)
        return sl_arena_printf(req->arena, "user:%s", u->user_id);
    if (k != NULL && k->user_id != NULL)
        return sl_arena_printf(req->arena, "user:%s", k->user_id);
    return "admin";
}

/* ---- the request's controls ---------------------------------------------------- */

struct controls {
    int no_cache, no_store, use_cache;
    long ttl_s;                     /* 0: the config's */
    double s_maxage;                /* < 0: none */
    const char *ns;                 /* arena; NULL: the config's */
};

static int bad_controls(struct sl_request *req, const char *msg)
{
    req->err_msg = (char *)msg;
    req->err_param = "cache";
    return SL_ERR_BAD_REQUEST;
}

/* The body's "cache" member: {"no-cache", "no-store", "use-cache": bool,
 * "ttl", "s-maxage": seconds, "namespace": string}; others are ignored. */
static int read_controls(struct sl_request *req, struct controls *c)
{
    const json_t *o = json_object_get(req->in, "cache"), *v;
    const char *k;

    memset(c, 0, sizeof(*c));
    c->s_maxage = -1;
    if (o == NULL || json_is_null(o))
        return SL_OK;
    if (!json_is_object(o))
        return bad_controls(req, "cache must be an object such as {\"no-cache\": true}.");
    json_object_foreach((json_t *)o, k, v) {
        if (strcmp(k, "no-cache") == 0 || strcmp(k, "no-store") == 0 || strcmp(k, "use-cache") == 0) {
            if (!json_is_boolean(v))
                return bad_controls(req, "cache: no-cache, no-store and use-cache must be booleans.");
            if (strcmp(k, "use-cache") == 0)
                c->use_cache = json_is_true(v);
            else if (strcmp(k, "no-cache") == 0)
                c->no_cache = json_is_true(v);
            else
                c->no_store = json_is_true(v);
        } else if (strcmp(k, "ttl") == 0 || strcmp(k, "s-maxage") == 0) {
            double d = json_number_value(v);

            if (!json_is_number(v) || !(d >= 0) || d > 1e9)
                return bad_controls(req, "cache: ttl and s-maxage must be numbers of seconds >= 0.");
            if (k[0] == 't')
                c->ttl_s = d > MAX_TTL_S ? MAX_TTL_S : d < 1 ? 1 : (long)(d + 0.999);
            else
                c->s_maxage = d;
        } else if (strcmp(k, "namespace") == 0) {
            if (!json_is_string(v))
                return bad_controls(req, "cache: namespace must be a string.");
            if ((c->ns = sl_arena_strdup(req->arena, json_string_value(v))) == NULL)
                return SL_ERR_NOMEM;
        }
    }
    return SL_OK;
}

/* ---- a hit -------------------------------------------------------------------- */

static void take_usage(struct sl_request *req, const json_t *u)
{
    if (!json_is_object(u))
        return;
    req->usage.prompt_tokens = (long)json_integer_value(json_object_get(u, "prompt_tokens"));
    req->usage.completion_tokens = (long)json_integer_value(json_object_get(u, "completion_tokens"));
    req->usage.total_tokens = (long)json_integer_value(json_object_get(u, "total_tokens"));
    req->usage.cached_tokens = (long)json_integer_value(
        json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens"));
    req->usage.seen = 1;
}

/* One chunk of a replayed stream, sent in the client's shape. chunk is
 * stolen. */
static int send_chunk(struct sl_request *req, json_t *chunk)
{
    char *text;
    size_t len;
    int rc;

    if (chunk == NULL)
        return SL_ERR_NOMEM;
    if (req->surface != SL_SURFACE_OPENAI) {
        rc = sl_surface_send_chunk(req, chunk);
    } else {
        text = sl_json_dump(req->arena, chunk, &len);
        rc = text != NULL ? sl_respond_sse_data(req, text, len) : SL_ERR_NOMEM;
    }
    json_decref(chunk);
    return rc;
}

static json_t *chunk_of(const json_t *resp, const char *model, json_t *choices)
{
    json_t *c = json_pack("{s:O?, s:s, s:O?, s:s, s:o}", "id", json_object_get(resp, "id"),
                          "object", "chat.completion.chunk", "created",
                          json_object_get(resp, "created"), "model", model, "choices", choices);

    if (c != NULL && json_is_string(json_object_get(resp, "system_fingerprint")))
        json_object_set(c, "system_fingerprint", json_object_get(resp, "system_fingerprint"));
    return c;
}

/* The deltas that rebuild one choice's message: its text (and reasoning)
 * in one delta, its tool calls in another, then the finish. */
static int replay_choice(struct sl_request *req, const json_t *resp, const json_t *choice)
{
    const json_t *m = json_object_get(choice, "message"), *tools = json_object_get(m, "tool_calls");
    json_int_t index = json_integer_value(json_object_get(choice, "index"));
    json_t *delta = json_pack("{s:s}", "role", "assistant"), *calls, *t;
    int rc;
    size_t i;

    if (delta == NULL)
        return SL_ERR_NOMEM;
    if (json_is_string(json_object_get(m, "content")))
        json_object_set(delta, "content", json_object_get(m, "content"));
    if (json_is_string(json_object_get(m, "reasoning_content")))
        json_object_set(delta, "reasoning_content", json_object_get(m, "reasoning_content"));
    if ((rc = send_chunk(req, chunk_of(resp, req->model, json_pack("[{s:I, s:o, s:n, s:n}]",
                         "index", index, "delta", delta, "logprobs", "finish_reason")))) != SL_OK)
        return rc;
    if (json_is_array(tools) && json_array_size(tools) > 0) {
        if ((calls = json_array()) == NULL)
            return SL_ERR_NOMEM;
        json_array_foreach(tools, i, t)
            json_array_append_new(calls, json_pack("{s:I, s:O?, s:s, s:{s:O?, s:O?}}",
                "index", (json_int_t)i, "id", json_object_get(t, "id"), "type", "function",
                "function", "name", json_object_get(json_object_get(t, "function"), "name"),
                "arguments", json_object_get(json_object_get(t, "function"), "arguments")));
        if ((rc = send_chunk(req, chunk_of(resp, req->model, json_pack("[{s:I, s:{s:o}, s:n, s:n}]",
                             "index", index, "delta", "tool_calls", calls, "logprobs",
                             "finish_reason")))) != SL_OK)
            return rc;
    }
    return send_chunk(req, chunk_of(resp, req->model, json_pack("[{s:I, s:{}, s:n, s:O}]",
                      "index", index, "delta", "logprobs", "finish_reason",
                      json_object_get(choice, "finish_reason"))));
}

/* A stored chat.completion as the stream a fresh answer would have been:
 * the chunks, the usage chunk when the client asked for it, [DONE]. */
static int replay(struct sl_request *req, const json_t *resp)
{
    const json_t *choices = json_object_get(resp, "choices"), *c;
    size_t i;
    int rc = SL_OK;

    json_array_foreach(choices, i, c)
        if ((rc = replay_choice(req, resp, c)) != SL_OK)
            return rc;
    if ((req->include_usage || req->surface != SL_SURFACE_OPENAI) &&
        json_is_object(json_object_get(resp, "usage"))) {
        json_t *u = chunk_of(resp, req->model, json_array());

        if (u == NULL || json_object_set(u, "usage", json_object_get(resp, "usage")) != 0) {
            json_decref(u);
            return SL_ERR_NOMEM;
        }
        if ((rc = send_chunk(req, u)) != SL_OK)
            return rc;
    }
    if (req->surface != SL_SURFACE_OPENAI)
        return sl_surface_finish(req);
    return sl_respond_sse_done(req);
}

/* Answers req from the stored reply resp (borrowed). */
static int serve_hit(struct sl_request *req, json_t *resp)
{
    int rc;

    sl_respond_header(req, "x-litellm-call-id", req->id);
    sl_respond_header(req, "x-litellm-response-cost", "0");
    sl_router_release(req, 0);      /* nothing goes to the deployment */
    take_usage(req, json_object_get(resp, "usage"));
    if (json_object_set_new(resp, "model", json_string(req->model)) != 0)
        return SL_ERR_NOMEM;
    req->stage = "respond";
    if (req->stream)
        rc = replay(req, resp);
    else if (req->surface != SL_SURFACE_OPENAI)
        rc = sl_surface_send_completion(req, resp);
    else
        rc = sl_respond_json(req, 200, resp);
    if (rc == SL_ERR_CLIENT_GONE)
        req->client_gone = 1;
    return rc == SL_ERR_CLIENT_GONE ? SL_OK : rc;
}

/* The stored reply under key, if there is one young enough (s_maxage < 0:
 * any age). A new reference or NULL. */
static json_t *lookup(struct sl_request *req, const char *key, double s_maxage)
{
    size_t len = 0;
    char *text = entry_get(req->cfg, key, &len);
    json_t *e, *resp = NULL;
    const char *why;

    if (text == NULL)
        return NULL;
    e = sl_json_parse(text, len, &why);
    free(text);
    if (e != NULL && json_is_object(json_object_get(e, "response")) &&
        (s_maxage < 0 ||
         (double)time(NULL) - json_number_value(json_object_get(e, "t")) <= s_maxage))
        resp = json_incref(json_object_get(e, "response"));
    json_decref(e);
    return resp;
}

int sl_cache_begin(struct sl_request *req, int *hit)
{
    const struct sl_cache_settings *cs = &req->cfg->cache;
    struct controls c;
    struct sl_cache_req *s;
    const char *endpoint = req->surface == SL_SURFACE_ANTHROPIC ? "messages"
                         : req->surface == SL_SURFACE_RESPONSES ? "responses"
                         : req->endpoint == SL_EP_EMBEDDINGS ? "embeddings" : "chat";
    json_t *resp;
    int rc;

    *hit = 0;
    if ((rc = read_controls(req, &c)) != SL_OK)
        return rc;
    json_object_del(req->in, "cache");     /* never sent upstream */
    /* Chat (in any of its surfaces) and embeddings only: the answers of the
     * other routes (legacy completions, rerank, ...) are not chat
     * completions the replay could rebuild. */
    if (!cs->enabled || (cs->default_off && !c.use_cache) ||
        (req->endpoint != SL_EP_CHAT && req->endpoint != SL_EP_EMBEDDINGS && req->endpoint != SL_EP_MESSAGES &&
         req->endpoint != SL_EP_RESPONSES) ||
        (req->endpoint == SL_EP_EMBEDDINGS ? !cs->embeddings : !cs->chat))
        return SL_OK;
    if ((s = sl_arena_calloc(req->arena, 1, sizeof(*s))) == NULL ||
        sl_arena_defer(req->arena, state_free, s) != SL_OK)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < MAX_CHOICES; i++) {
        sl_buf_init(&s->ch[i].content, SL_CACHE_MAX_ENTRY);
        sl_buf_init(&s->ch[i].reasoning, SL_CACHE_MAX_ENTRY);
        for (size_t j = 0; j < MAX_TOOLS; j++)
            sl_buf_init(&s->ch[i].tools[j].args, SL_CACHE_MAX_ENTRY);
    }
    req->stage = "cache";
    if ((rc = sl_cache_key(req->in, req->model, endpoint, tenant_of(req),
                           c.ns ? c.ns : cs->ns, s->key)) != SL_OK)
        return rc;
    s->ttl_s = c.ttl_s ? c.ttl_s : cs->ttl_ms / 1000 > MAX_TTL_S ? MAX_TTL_S : cs->ttl_ms / 1000;
    if (s->ttl_s < 1)
        s->ttl_s = 1;
    s->store = !c.no_store;
    req->cache = s;
    sl_respond_header(req, "x-litellm-cache-key", s->key);
    resp = c.no_cache ? NULL : lookup(req, s->key, c.s_maxage);
    if (resp == NULL) {
        sl_respond_header(req, "x-sluice-cache", "miss");
        return SL_OK;
    }
    s->hit = 1;
    s->store = 0;
    *hit = 1;
    sl_respond_header(req, "x-sluice-cache", "hit");
    rc = serve_hit(req, resp);
    json_decref(resp);
    return rc;
}

/* ---- collecting a miss -------------------------------------------------------- */

static void append(struct sl_cache_req *s, struct sl_buf *b, const json_t *v)
{
    size_t n = json_string_length(v);

    s->bytes += n;
    if (s->bytes > SL_CACHE_MAX_ENTRY || sl_buf_append(b, json_string_value(v), n) != SL_OK)
        s->bad = 1;
}

static const char *keep_str(struct sl_request *req, const char *old, const json_t *v)
{
    const char *s;

    if (old != NULL || !json_is_string(v))
        return old;
    if ((s = sl_arena_strdup(req->arena, json_string_value(v))) == NULL)
        req->cache->bad = 1;
    return s;
}

static void keep_tool_deltas(struct sl_request *req, struct acc_choice *ch, const json_t *calls)
{
    const json_t *t, *f;
    size_t i;

    json_array_foreach(calls, i, t) {
        json_int_t k = json_is_integer(json_object_get(t, "index"))
                     ? json_integer_value(json_object_get(t, "index")) : (json_int_t)i;
        struct acc_tool *tool;

        if (k < 0 || k >= MAX_TOOLS) {
            req->cache->bad = 1;
            return;
        }
        tool = &ch->tools[k];
        if ((size_t)k >= ch->n_tools)
            ch->n_tools = (size_t)k + 1;
        f = json_object_get(t, "function");
        tool->id = keep_str(req, tool->id, json_object_get(t, "id"));
        tool->type = keep_str(req, tool->type, json_object_get(t, "type"));
        tool->name = keep_str(req, tool->name, json_object_get(f, "name"));
        if (json_is_string(json_object_get(f, "arguments")))
            append(req->cache, &tool->args, json_object_get(f, "arguments"));
    }
}

/* One chunk's deltas into the choices being assembled. */
static void keep_chunk(struct sl_request *req, const json_t *chunk)
{
    struct sl_cache_req *s = req->cache;
    const json_t *c, *d, *u = json_object_get(chunk, "usage");
    size_t i;

    s->id = keep_str(req, s->id, json_object_get(chunk, "id"));
    s->fingerprint = keep_str(req, s->fingerprint, json_object_get(chunk, "system_fingerprint"));
    if (s->created == 0)
        s->created = json_integer_value(json_object_get(chunk, "created"));
    if (json_is_object(u)) {
        json_decref(s->usage);
        s->usage = json_deep_copy(u);
    }
    json_array_foreach(json_object_get(chunk, "choices"), i, c) {
        json_int_t k = json_is_integer(json_object_get(c, "index"))
                     ? json_integer_value(json_object_get(c, "index")) : (json_int_t)i;
        struct acc_choice *ch;

        if (k < 0 || k >= MAX_CHOICES) {
            s->bad = 1;
            return;
        }
        ch = &s->ch[k];
        ch->seen = 1;
        if ((size_t)k >= s->n_choices)
            s->n_choices = (size_t)k + 1;
        d = json_object_get(c, "delta");
        ch->role = keep_str(req, ch->role, json_object_get(d, "role"));
        if (json_is_string(json_object_get(d, "content"))) {
            ch->has_content = 1;
            append(s, &ch->content, json_object_get(d, "content"));
        }
        if (json_is_string(json_object_get(d, "reasoning_content")))
            append(s, &ch->reasoning, json_object_get(d, "reasoning_content"));
        if (json_is_array(json_object_get(d, "tool_calls")))
            keep_tool_deltas(req, ch, json_object_get(d, "tool_calls"));
        ch->finish = keep_str(req, ch->finish, json_object_get(c, "finish_reason"));
    }
}

void sl_cache_keep_json(struct sl_request *req, const json_t *v)
{
    struct sl_cache_req *s = req->cache;

    if (s == NULL || !s->store || s->bad || !json_is_object(v))
        return;
    if (req->stream) {
        keep_chunk(req, v);
    } else {
        json_decref(s->whole);
        s->whole = json_deep_copy(v);
        if (s->whole == NULL)
            s->bad = 1;
    }
}

void sl_cache_keep_text(struct sl_request *req, const char *a, size_t na, const char *b,
                        size_t nb, const char *c, size_t nc)
{
    struct sl_cache_req *s = req->cache;
    const char *why;
    char *text;
    json_t *v;

    if (s == NULL || !s->store || s->bad)
        return;
    if (!req->stream && na + nb + nc > SL_CACHE_MAX_ENTRY) {
        s->bad = 1;              /* too big to keep: no need to parse it */
        return;
    }
    if ((text = malloc(na + nb + nc + 1)) == NULL) {
        s->bad = 1;
        return;
    }
    memcpy(text, a, na);
    if (nb)
        memcpy(text + na, b, nb);
    if (nc)
        memcpy(text + na + nb, c, nc);
    v = sl_json_parse(text, na + nb + nc, &why);
    free(text);
    if (v == NULL)
        s->bad = 1;
    else
        sl_cache_keep_json(req, v);
    json_decref(v);
}

/* The assembled stream as one chat.completion (new reference), or NULL when
 * a choice did not finish. */
static json_t *assembled(struct sl_request *req)
{
    struct sl_cache_req *s = req->cache;
    json_t *choices = json_array(), *out;

    if (choices == NULL || s->n_choices == 0) {
        json_decref(choices);
        return NULL;
    }
    for (size_t i = 0; i < s->n_choices; i++) {
        struct acc_choice *ch = &s->ch[i];
        json_t *msg, *calls = NULL;

        if (!ch->seen || ch->finish == NULL) {
            json_decref(choices);
            return NULL;
        }
        msg = json_pack("{s:s, s:s%}", "role", ch->role ? ch->role : "assistant", "content",
                        ch->content.data ? ch->content.data : "", ch->content.len);
        if (msg != NULL && !ch->has_content)
            json_object_set_new(msg, "content", json_null());
        if (msg != NULL && ch->reasoning.len > 0)
            json_object_set_new(msg, "reasoning_content",
                                json_stringn(ch->reasoning.data, ch->reasoning.len));
        for (size_t j = 0; msg != NULL && j < ch->n_tools; j++) {
            struct acc_tool *t = &ch->tools[j];

            if (calls == NULL && json_object_set_new(msg, "tool_calls", calls = json_array()) != 0)
                break;
            json_array_append_new(calls, json_pack("{s:s?, s:s, s:{s:s?, s:s%}}", "id", t->id,
                "type", t->type ? t->type : "function", "function", "name", t->name,
                "arguments", t->args.data ? t->args.data : "", t->args.len));
        }
        if (json_array_append_new(choices, json_pack("{s:i, s:o, s:n, s:s}", "index", (int)i,
                                  "message", msg, "logprobs", "finish_reason", ch->finish)) != 0) {
            json_decref(choices);
            return NULL;
        }
    }
    out = json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", s->id ? s->id : req->id,
                    "object", "chat.completion", "created",
                    s->created ? s->created : (json_int_t)time(NULL), "model", req->model,
                    "choices", choices);
    if (out != NULL && s->usage != NULL)
        json_object_set(out, "usage", s->usage);
    if (out != NULL && s->fingerprint != NULL)
        json_object_set_new(out, "system_fingerprint", json_string(s->fingerprint));
    return out;
}

/* A whole reply is worth keeping when every choice finished (chat) or it
 * has its vectors (embeddings). */
static int complete(const struct sl_request *req, const json_t *resp)
{
    const json_t *choices = json_object_get(resp, "choices"), *c;
    size_t i;

    if (req->endpoint == SL_EP_EMBEDDINGS)
        return json_is_array(json_object_get(resp, "data"));
    if (!json_is_array(choices) || json_array_size(choices) == 0)
        return 0;
    json_array_foreach(choices, i, c)
        if (!json_is_string(json_object_get(c, "finish_reason")))
            return 0;
    return 1;
}

void sl_cache_finish(struct sl_request *req)
{
    struct sl_cache_req *s = req->cache;
    json_t *resp, *e;
    char *text;
    size_t len;

    if (s == NULL || !s->store || s->bad || req->error != SL_OK || req->client_gone ||
        req->http_status != 200)
        return;
    resp = req->stream ? assembled(req) : json_incref(s->whole);
    if (resp == NULL || !complete(req, resp) ||
        json_object_set_new(resp, "model", json_string(req->model)) != 0) {
        json_decref(resp);
        return;
    }
    e = json_pack("{s:I, s:o}", "t", (json_int_t)time(NULL), "response", resp);
    text = e != NULL ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (text == NULL)
        return;
    len = strlen(text);
    if (len <= SL_CACHE_MAX_ENTRY)
        entry_set(req->cfg, s->key, text, len, s->ttl_s);
    else
        sl_log(SL_LOG_DEBUG, req, "cache: an answer of %zu bytes is too big to keep", len);
    free(text);
}

int sl_cache_was_hit(const struct sl_request *req)
{
    return req->cache != NULL && req->cache->hit;
}

const char *sl_cache_key_of(const struct sl_request *req)
{
    return req->cache != NULL ? req->cache->key : NULL;
}

/* ---- /cache/ping, /cache/delete ----------------------------------------------- */

int sl_cache_is_route(const char *path)
{
    return strcmp(path, "/cache/ping") == 0 || strcmp(path, "/cache/delete") == 0;
}

/* The settings as LiteLLM's ping lists them (a new reference). */
static json_t *params_json(const struct sl_cache_settings *cs)
{
    json_t *types = json_array();

    if (types != NULL && cs->chat)
        json_array_append_new(types, json_string("acompletion"));
    if (types != NULL && cs->embeddings)
        json_array_append_new(types, json_string("aembedding"));
    return json_pack("{s:s, s:I, s:s?, s:s, s:o?}", "type", cs->type ? cs->type : "local",
                     "ttl", (json_int_t)(cs->ttl_ms / 1000), "namespace", cs->ns, "mode",
                     cs->default_off ? "default_off" : "default_on", "supported_call_types", types);
}

static int ping(struct sl_request *req)
{
    const struct sl_cache_settings *cs = &req->cfg->cache;
    const char *why = NULL;
    json_t *out;
    int rc;

    if (sl_mc_configured(req->cfg) && sl_mc_check(req->cfg, &why)) {
        req->err_msg = sl_arena_printf(req->arena, "Service Unhealthy (memcached: %s).", why);
        return SL_ERR_DB_UNAVAILABLE;
    }
    out = json_pack("{s:s, s:s, s:o?}", "status", "healthy", "cache_type",
                    sl_mc_configured(req->cfg) ? "memcached" : "local",
                    "litellm_cache_params", params_json(cs));
    if (out != NULL && sl_mc_configured(req->cfg)) {
        json_object_set_new(out, "ping_response", json_true());
        json_object_set_new(out, "set_cache_response", json_string("success"));
    }
    if (out == NULL)
        return SL_ERR_NOMEM;
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

static int delete_keys(struct sl_request *req)
{
    const json_t *keys, *k;
    json_t *body, *out;
    const char *why;
    size_t i;
    int rc;

    if (req->principal.role != SL_ROLE_ADMIN) {
        req->err_msg = "Admin-only endpoint. Not allowed to access this.";
        return SL_ERR_FORBIDDEN;
    }
    body = req->body_len ? sl_json_parse(req->body, req->body_len, &why) : NULL;
    keys = json_object_get(body, "keys");
    rc = json_is_array(keys) ? SL_OK : SL_ERR_BAD_REQUEST;
    json_array_foreach(keys, i, k)
        if (!json_is_string(k) || !is_hex64(json_string_value(k)))
            rc = SL_ERR_BAD_REQUEST;
    if (rc != SL_OK) {
        json_decref(body);
        req->err_msg = "keys must be a list of cache keys (64 hex digits, from x-litellm-cache-key).";
        req->err_param = "keys";
        return rc;
    }
    json_array_foreach(keys, i, k)
        entry_delete(req->cfg, json_string_value(k));
    json_decref(body);
    if ((out = json_pack("{s:s}", "status", "success")) == NULL)
        return SL_ERR_NOMEM;
    rc = sl_respond_json(req, 200, out);
    json_decref(out);
    return rc;
}

int sl_cache_serve_route(struct sl_request *req)
{
    int del = strcmp(req->path, "/cache/delete") == 0;

    req->stage = "cache";
    if (strcmp(req->method, del ? "POST" : "GET") != 0)
        return SL_ERR_METHOD;
    if (!req->cfg->cache.enabled) {
        req->err_msg = "Cache not initialized. litellm.cache is None";
        return SL_ERR_BUSY;
    }
    return del ? delete_keys(req) : ping(req);
}

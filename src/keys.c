/* Virtual keys: generation, display names, and the lookup behind auth.
 *
 * A lookup goes process cache → memcached → MariaDB:
 * - the process cache is a mutex-protected hash table keyed by token, at
 *   most CACHE_MAX entries; an entry is fresh for user_api_key_cache_ttl
 *   (default 5 s, so a key blocked in the database stops working within that
 *   time), an unknown key is remembered for NEG_TTL_US (1 s: blunts guessing
 *   without hiding a key created a moment ago). A stale entry is kept and used
 *   only when the database cannot answer (up to STALE_MAX_US), so a database
 *   outage does not lock out keys that were in use;
 * - memcached (general_settings.memcached_servers) holds a compact JSON of
 *   the snapshot under "sluice:key:<token>" for the same TTL, shared by every
 *   process; any memcached failure is just a miss;
 * - the database is asked last, with one prepared SELECT by primary key.
 * Snapshots are copied into the request's arena as one block. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "arena.h"
#include "auth.h"
#include "config.h"
#include "db.h"
#include "keys.h"
#include "log.h"
#include "mcache.h"
#include "remoteuser.h"
#include "request.h"
#include "status.h"

int sl_keys_generate(char *out, size_t size)
{
    unsigned char r[16], b64[32];
    int n;

    if (out == NULL || size < 26)
        return SL_ERR_INTERNAL;
    if (RAND_bytes(r, (int)sizeof(r)) != 1) {
        out[0] = '\0';
        return SL_ERR_INTERNAL;
    }
    /* base64url without padding, as Python's secrets.token_urlsafe(16):
     * OpenSSL's base64, then the two URL-safe letters, then no '='. */
    n = EVP_EncodeBlock(b64, r, (int)sizeof(r));
    OPENSSL_cleanse(r, sizeof(r));
    while (n > 0 && b64[n - 1] == '=')
        n--;
    memcpy(out, "sk-", 3);
    for (int i = 0; i < n; i++)
        out[3 + i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    out[3 + n] = '\0';
    return SL_OK;
}

void sl_keys_display_name(const char *raw, char out[16])
{
    size_t n = raw != NULL ? strlen(raw) : 0;
    const char *tail = n > 4 ? raw + n - 4 : (raw != NULL ? raw : "");

    memcpy(out, "sk-...", 6);
    memcpy(out + 6, tail, strlen(tail) + 1);
}


/* ---- snapshots ------------------------------------------------------------ */

/* One allocation holding the struct, its strings and its model list: the
 * process cache owns it with free(), a request with its arena. */
static size_t str_size(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static size_t list_size(const char *const *v, size_t n)
{
    size_t size = (n + 1) * sizeof(char *);

    for (size_t i = 0; i < n; i++)
        size += str_size(v[i]);
    return size;
}

static size_t key_block_size(const struct sl_key *k)
{
    size_t n = sizeof(struct sl_key) + list_size(k->models, k->n_models) +
               list_size(k->team_models, k->n_team_models);

    n += str_size(k->key_alias) + str_size(k->user_id) + str_size(k->team_id) +
         str_size(k->model_max_budget) + str_size(k->aliases) +
         str_size(k->model_rpm_limit) + str_size(k->model_tpm_limit) +
         str_size(k->guardrails) + str_size(k->team_guardrails);
    for (int i = 0; i < SL_BUDGET_SCOPES; i++)
        n += str_size(k->budget[i].duration);
    return n;
}

static const char *put_str(char **p, const char *s)
{
    char *d = *p;
    size_t n;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    memcpy(d, s, n);
    *p += n;
    return d;
}

/* Copies a list of n strings: the pointer array at *ptrs (advanced), the
 * strings at *p (advanced). */
static const char *const *put_list(const char ***ptrs, char **p, const char *const *v, size_t n)
{
    const char **d = *ptrs;

    for (size_t i = 0; i < n; i++)
        d[i] = put_str(p, v[i]);
    d[n] = NULL;
    *ptrs += n + 1;
    return d;
}

/* Lays k out in block (key_block_size(k) bytes, aligned for pointers):
 * the struct, both pointer arrays, then the strings. */
static struct sl_key *key_copy_into(void *block, const struct sl_key *k)
{
    struct sl_key *d = block;
    const char **ptrs = (const char **)(void *)(d + 1);
    char *p = (char *)(ptrs + k->n_models + 1 + k->n_team_models + 1);

    *d = *k;
    d->key_alias = put_str(&p, k->key_alias);
    d->user_id = put_str(&p, k->user_id);
    d->team_id = put_str(&p, k->team_id);
    d->model_max_budget = put_str(&p, k->model_max_budget);
    d->aliases = put_str(&p, k->aliases);
    d->model_rpm_limit = put_str(&p, k->model_rpm_limit);
    d->model_tpm_limit = put_str(&p, k->model_tpm_limit);
    d->guardrails = put_str(&p, k->guardrails);
    d->team_guardrails = put_str(&p, k->team_guardrails);
    for (int i = 0; i < SL_BUDGET_SCOPES; i++)
        d->budget[i].duration = put_str(&p, k->budget[i].duration);
    d->models = put_list(&ptrs, &p, k->models, k->n_models);
    d->team_models = put_list(&ptrs, &p, k->team_models, k->n_team_models);
    return d;
}

static struct sl_key *key_dup_heap(const struct sl_key *k)
{
    void *b = malloc(key_block_size(k));

    return b != NULL ? key_copy_into(b, k) : NULL;
}

static struct sl_key *key_dup_arena(struct sl_arena *a, const struct sl_key *k)
{
    void *b = sl_arena_alloc(a, key_block_size(k));

    return b != NULL ? key_copy_into(b, k) : NULL;
}

/* A JSON array of strings (anything else: empty) as a NULL-terminated
 * list in the arena. */
static int list_from_json(struct sl_arena *a, json_t *arr, const char *const **out, size_t *n_out)
{
    const char **m;
    size_t n = 0, i;
    json_t *v;

    *out = NULL;
    *n_out = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return SL_OK;
    if ((m = sl_arena_calloc(a, json_array_size(arr) + 1, sizeof(*m))) == NULL)
        return SL_ERR_NOMEM;
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v))
            continue;
        if ((m[n] = sl_arena_strdup(a, json_string_value(v))) == NULL)
            return SL_ERR_NOMEM;
        n++;
    }
    m[n] = NULL;
    *out = m;
    *n_out = n;
    return SL_OK;
}

static json_t *list_to_json(const char *const *v, size_t n)
{
    json_t *m = json_array();

    for (size_t i = 0; m != NULL && i < n; i++)
        json_array_append_new(m, json_string(v[i]));
    return m;
}

static long long wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static json_t *limits_to_json(const struct sl_rate_limits *l)
{
    return json_pack("[I, I, I]", (json_int_t)l->tpm_limit, (json_int_t)l->rpm_limit,
                     (json_int_t)l->max_parallel_requests);
}

/* [tpm, rpm, parallel]; anything else (a snapshot without them): none. */
static void limits_from_json(const json_t *a, struct sl_rate_limits *l)
{
    int ok = json_array_size(a) == 3;

    for (size_t i = 0; ok && i < 3; i++)
        ok = json_is_integer(json_array_get(a, i));
    l->tpm_limit = ok ? json_integer_value(json_array_get(a, 0)) : -1;
    l->rpm_limit = ok ? json_integer_value(json_array_get(a, 1)) : -1;
    l->max_parallel_requests = ok ? json_integer_value(json_array_get(a, 2)) : -1;
}

/* A team's or user's limits from columns c..c+2 (present: the row exists). */
static void col_limits(struct sl_db *db, unsigned c, int present, struct sl_rate_limits *l)
{
    l->tpm_limit = present && !sl_db_col_is_null(db, c) ? sl_db_col_int(db, c) : -1;
    l->rpm_limit = present && !sl_db_col_is_null(db, c + 1) ? sl_db_col_int(db, c + 1) : -1;
    l->max_parallel_requests =
        present && !sl_db_col_is_null(db, c + 2) ? sl_db_col_int(db, c + 2) : -1;
}

/* The memcached form: compact JSON, with "f" the wall-clock time the row was
 * read, so a copy taken from memcached late in its life is not cached for a
 * whole TTL again. NULL on OOM (malloc'ed). */
static char *key_to_json(const struct sl_key *k, long long fetched_us)
{
    json_t *b = json_array(), *o;
    char *text;

    for (int i = 0; b != NULL && i < SL_BUDGET_SCOPES; i++) {
        const struct sl_budget *g = &k->budget[i];

        json_array_append_new(b, json_pack("[f, f, I, s?]", g->spend, g->max_budget,
                                           (json_int_t)g->reset_at_us, g->duration));
    }
    o = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:o, s:o, s:b, s:b, s:I, s:o, s:I, s:I, s:I,"
                  " s:I}",
                  "t", k->token, "a", k->key_alias, "u", k->user_id, "tm", k->team_id,
                  "mmb", k->model_max_budget, "al", k->aliases,
                  "m", list_to_json(k->models, k->n_models),
                  "tmm", list_to_json(k->team_models, k->n_team_models),
                  "b", k->blocked, "tb", k->team_blocked, "e", (json_int_t)k->expires_us,
                  "bud", b, "tpm", (json_int_t)k->tpm_limit, "rpm", (json_int_t)k->rpm_limit,
                  "mp", (json_int_t)k->max_parallel_requests, "f", (json_int_t)fetched_us);
    if (o != NULL && k->model_rpm_limit != NULL)
        json_object_set_new(o, "mrl", json_string(k->model_rpm_limit));
    if (o != NULL && k->model_tpm_limit != NULL)
        json_object_set_new(o, "mtl", json_string(k->model_tpm_limit));
    if (o != NULL && k->guardrails != NULL)
        json_object_set_new(o, "gr", json_string(k->guardrails));
    if (o != NULL && k->team_guardrails != NULL)
        json_object_set_new(o, "tgr", json_string(k->team_guardrails));
    if (o != NULL && k->remote_admin)
        json_object_set_new(o, "ra", json_true());
    if (o != NULL) {
        json_object_set_new(o, "tl", limits_to_json(&k->team_limits));
        json_object_set_new(o, "ul", limits_to_json(&k->user_limits));
    }
    if (o == NULL)
        return NULL;
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static const char *jstr(struct sl_arena *a, json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));

    return s != NULL ? sl_arena_strdup(a, s) : NULL;
}

/* Parses the memcached form into *k (arena) and *fetched_us. SL_OK, or
 * SL_ERR_BAD_JSON when it is not a snapshot of token (then it is ignored:
 * also a snapshot an older sluice wrote). */
static int key_from_json(struct sl_arena *a, const char *text, size_t len, const char *token,
                         struct sl_key *k, long long *fetched_us)
{
    json_t *o = json_loadb(text, len, 0, NULL), *bud;
    const char *t;
    int rc = SL_ERR_BAD_JSON;

    memset(k, 0, sizeof(*k));
    if (o == NULL)
        return rc;
    t = json_string_value(json_object_get(o, "t"));
    bud = json_object_get(o, "bud");
    if (t == NULL || strcmp(t, token) != 0 || json_array_size(bud) != SL_BUDGET_SCOPES)
        goto out;
    for (int i = 0; i < SL_BUDGET_SCOPES; i++) {
        json_t *g = json_array_get(bud, (size_t)i);
        const char *dur = json_string_value(json_array_get(g, 3));

        if (!json_is_number(json_array_get(g, 0)) || !json_is_number(json_array_get(g, 1)))
            goto out;
        k->budget[i].spend = json_number_value(json_array_get(g, 0));
        k->budget[i].max_budget = json_number_value(json_array_get(g, 1));
        k->budget[i].reset_at_us = json_integer_value(json_array_get(g, 2));
        k->budget[i].duration = dur != NULL ? sl_arena_strdup(a, dur) : NULL;
    }
    memcpy(k->token, token, 65);
    *fetched_us = json_integer_value(json_object_get(o, "f"));
    k->key_alias = jstr(a, o, "a");
    k->user_id = jstr(a, o, "u");
    k->team_id = jstr(a, o, "tm");
    k->model_max_budget = jstr(a, o, "mmb");
    k->aliases = jstr(a, o, "al");
    k->model_rpm_limit = jstr(a, o, "mrl");
    k->model_tpm_limit = jstr(a, o, "mtl");
    k->guardrails = jstr(a, o, "gr");
    k->team_guardrails = jstr(a, o, "tgr");
    k->blocked = json_is_true(json_object_get(o, "b"));
    k->team_blocked = json_is_true(json_object_get(o, "tb"));
    k->remote_admin = json_is_true(json_object_get(o, "ra"));
    k->expires_us = json_integer_value(json_object_get(o, "e"));
    k->tpm_limit = json_integer_value(json_object_get(o, "tpm"));
    k->rpm_limit = json_integer_value(json_object_get(o, "rpm"));
    k->max_parallel_requests = (long)json_integer_value(json_object_get(o, "mp"));
    limits_from_json(json_object_get(o, "tl"), &k->team_limits);
    limits_from_json(json_object_get(o, "ul"), &k->user_limits);
    if ((rc = list_from_json(a, json_object_get(o, "m"), &k->models, &k->n_models)) == SL_OK)
        rc = list_from_json(a, json_object_get(o, "tmm"), &k->team_models, &k->n_team_models);
out:
    json_decref(o);
    return rc;
}

/* ---- the process cache ---------------------------------------------------- */

#define CACHE_BUCKETS 16384u
#define CACHE_MAX 10000u
#define NEG_TTL_US 1000000LL
#define STALE_MAX_US (300LL * 1000000LL)

struct entry {
    struct entry *next;          /* bucket chain */
    char token[65];
    long long fresh_until_us;    /* monotonic */
    long long stored_us;         /* monotonic */
    struct sl_key *key;          /* owned (one block); NULL: no such key */
};

static struct {
    pthread_mutex_t lock;
    struct entry *buckets[CACHE_BUCKETS];
    size_t n;
    unsigned evict_at;           /* where the next forced eviction looks */
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static unsigned bucket_of(const char *token)
{
    unsigned h = 2166136261u;

    for (int i = 0; i < 16 && token[i]; i++)
        h = (h ^ (unsigned char)token[i]) * 16777619u;
    return h % CACHE_BUCKETS;
}

static void entry_free(struct entry *e)
{
    free(e->key);
    free(e);
}

/* Under the lock: removes entries past any use; if still full, one arbitrary
 * entry (the next non-empty bucket from a rotating cursor). */
static void cache_make_room(long long now)
{
    for (unsigned b = 0; b < CACHE_BUCKETS; b++) {
        struct entry **pp = &cache.buckets[b];

        while (*pp != NULL) {
            struct entry *e = *pp;

            if (e->fresh_until_us < now && (e->key == NULL || now - e->stored_us > STALE_MAX_US)) {
                *pp = e->next;
                entry_free(e);
                cache.n--;
            } else {
                pp = &e->next;
            }
        }
    }
    for (unsigned i = 0; cache.n >= CACHE_MAX && i < CACHE_BUCKETS; i++) {
        unsigned b = (cache.evict_at + i) % CACHE_BUCKETS;
        struct entry *e = cache.buckets[b];

        if (e != NULL) {
            cache.buckets[b] = e->next;
            entry_free(e);
            cache.n--;
            cache.evict_at = b + 1;
        }
    }
}

/* Stores a copy of k (NULL: a negative entry) for ttl_us. */
static void cache_put(const char *token, const struct sl_key *k, long long ttl_us)
{
    long long now = sl_now_us();
    struct entry *e = calloc(1, sizeof(*e)), **pp;
    unsigned b = bucket_of(token);

    if (e == NULL)
        return;
    if (k != NULL && (e->key = key_dup_heap(k)) == NULL) {
        free(e);
        return;
    }
    memcpy(e->token, token, 65);
    e->stored_us = now;
    e->fresh_until_us = now + ttl_us;
    pthread_mutex_lock(&cache.lock);
    for (pp = &cache.buckets[b]; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->token, token) == 0) {
            struct entry *old = *pp;

            e->next = old->next;
            *pp = e;
            entry_free(old);
            pthread_mutex_unlock(&cache.lock);
            return;
        }
    }
    if (cache.n >= CACHE_MAX)
        cache_make_room(now);
    e->next = cache.buckets[b];
    cache.buckets[b] = e;
    cache.n++;
    pthread_mutex_unlock(&cache.lock);
}

enum { MISS, HIT, HIT_NEGATIVE };

/* Looks token up. stale: also accept a positive entry past its TTL (up to
 * STALE_MAX_US). On HIT *out is an arena copy. */
static int cache_get(struct sl_arena *a, const char *token, int stale, struct sl_key **out)
{
    long long now = sl_now_us();
    int r = MISS;

    pthread_mutex_lock(&cache.lock);
    for (struct entry *e = cache.buckets[bucket_of(token)]; e != NULL; e = e->next) {
        if (strcmp(e->token, token) != 0)
            continue;
        if (e->fresh_until_us >= now)
            r = e->key != NULL ? HIT : HIT_NEGATIVE;
        else if (stale && e->key != NULL && now - e->stored_us <= STALE_MAX_US)
            r = HIT;
        if (r == HIT && (*out = key_dup_arena(a, e->key)) == NULL)
            r = MISS;
        break;
    }
    pthread_mutex_unlock(&cache.lock);
    return r;
}

static void cache_remove(const char *token)
{
    pthread_mutex_lock(&cache.lock);
    for (struct entry **pp = &cache.buckets[bucket_of(token)]; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->token, token) == 0) {
            struct entry *e = *pp;

            *pp = e->next;
            entry_free(e);
            cache.n--;
            break;
        }
    }
    pthread_mutex_unlock(&cache.lock);
}

/* ---- memcached -------------------------------------------------------------- */

static void mc_key(const char *token, char out[96])
{
    snprintf(out, 96, "sluice:key:%s", token);
}

static char *mc_fetch(const struct sl_config *cfg, const char *token, size_t *len)
{
    char k[96];

    if (!sl_mc_configured(cfg))
        return NULL;
    mc_key(token, k);
    return sl_mc_get(cfg, k, len);
}

static void mc_store(const struct sl_config *cfg, const struct sl_key *key, long long fetched_us,
                     long ttl_ms)
{
    char k[96], *text;

    if (!sl_mc_configured(cfg) || (text = key_to_json(key, fetched_us)) == NULL)
        return;
    mc_key(key->token, k);
    sl_mc_set(cfg, k, text, strlen(text), (ttl_ms + 999) / 1000);
    free(text);
}

static void mc_delete(const struct sl_config *cfg, const char *token)
{
    char k[96];

    if (!sl_mc_configured(cfg))
        return;
    mc_key(token, k);
    sl_mc_delete(cfg, k);
}

/* ---- the database ----------------------------------------------------------- */

static const char *col_str(struct sl_request *req, struct sl_db *db, unsigned c)
{
    const char *s = sl_db_col_text(db, c, NULL);

    return s != NULL ? sl_arena_strdup(req->arena, s) : NULL;
}

/* Columns c..c+3 (spend, max_budget, budget_reset_at, budget_duration) as a
 * budget; present = 0 (no team or user row) gives no budget. */
static void col_budget(struct sl_request *req, struct sl_db *db, unsigned c, int present,
                       struct sl_budget *b)
{
    b->spend = present ? sl_db_col_double(db, c) : 0;
    b->max_budget = !present || sl_db_col_is_null(db, c + 1) ? -1 : sl_db_col_double(db, c + 1);
    if (!present || !sl_db_col_time_us(db, c + 2, &b->reset_at_us))
        b->reset_at_us = 0;
    b->duration = present ? col_str(req, db, c + 3) : NULL;
}

static int col_list(struct sl_request *req, struct sl_db *db, unsigned c, const char *const **out,
                    size_t *n)
{
    const char *text = sl_db_col_text(db, c, NULL);
    json_t *arr = text != NULL ? json_loads(text, 0, NULL) : NULL;
    int rc = list_from_json(req->arena, arr, out, n);

    json_decref(arr);
    return rc;
}

/* SL_OK with *k filled (arena), SL_ERR_AUTH when there is no such row, or
 * the database's status. One statement: the key, its team and its user. */
static int db_fetch(struct sl_request *req, const char *token, struct sl_key *k)
{
    static const char sql[] =
        "SELECT k.key_alias, k.user_id, k.team_id, k.models, k.blocked, k.expires, "
        "k.tpm_limit, k.rpm_limit, k.max_parallel_requests, "
        "k.spend, k.max_budget, k.budget_reset_at, k.budget_duration, "
        "t.team_id IS NOT NULL, t.models, t.blocked, "
        "t.spend, t.max_budget, t.budget_reset_at, t.budget_duration, "
        "u.user_id IS NOT NULL, u.spend, u.max_budget, u.budget_reset_at, u.budget_duration, "
        "k.model_max_budget, k.aliases, "
        "t.tpm_limit, t.rpm_limit, t.max_parallel_requests, "
        "u.tpm_limit, u.rpm_limit, u.max_parallel_requests, "
        "JSON_EXTRACT(k.metadata, '$.model_rpm_limit'), "
        "JSON_EXTRACT(k.metadata, '$.model_tpm_limit'), "
        "JSON_EXTRACT(k.metadata, '$.guardrails'), JSON_EXTRACT(t.metadata, '$.guardrails') "
        "FROM `LiteLLM_VerificationToken` k "
        "LEFT JOIN `LiteLLM_TeamTable` t ON t.team_id = k.team_id "
        "LEFT JOIN `LiteLLM_UserTable` u ON u.user_id = k.user_id "
        "WHERE k.token = ? LIMIT 1";
    struct sl_db_settings set;
    struct sl_db_param p = sl_db_text(token);
    struct sl_db *db = NULL;
    int rc, row = 0, team, user;

    sl_db_settings_from_config(req->cfg, &set);
    if ((rc = sl_db_thread(&set, &db)) != SL_OK)
        return rc;
    if ((rc = sl_db_query(db, sql, &p, 1)) != SL_OK) {
        sl_log(SL_LOG_WARN, req, "key lookup failed: %s", sl_db_last_error(db)->message);
        return rc;
    }
    if ((rc = sl_db_fetch(db, &row)) != SL_OK)
        goto out;
    if (!row) {
        rc = SL_ERR_AUTH;
        goto out;
    }
    memset(k, 0, sizeof(*k));
    memcpy(k->token, token, 65);
    k->key_alias = col_str(req, db, 0);
    k->user_id = col_str(req, db, 1);
    k->team_id = col_str(req, db, 2);
    k->blocked = sl_db_col_int(db, 4) != 0;
    if (!sl_db_col_time_us(db, 5, &k->expires_us))
        k->expires_us = 0;
    k->tpm_limit = sl_db_col_is_null(db, 6) ? -1 : sl_db_col_int(db, 6);
    k->rpm_limit = sl_db_col_is_null(db, 7) ? -1 : sl_db_col_int(db, 7);
    k->max_parallel_requests = sl_db_col_is_null(db, 8) ? -1 : (long)sl_db_col_int(db, 8);
    col_budget(req, db, 9, 1, &k->budget[SL_BUDGET_KEY]);
    team = sl_db_col_int(db, 13) != 0;
    k->team_blocked = team && sl_db_col_int(db, 15) != 0;
    col_budget(req, db, 16, team, &k->budget[SL_BUDGET_TEAM]);
    user = sl_db_col_int(db, 20) != 0;
    col_budget(req, db, 21, user, &k->budget[SL_BUDGET_USER]);
    col_limits(db, 27, team, &k->team_limits);
    col_limits(db, 30, user, &k->user_limits);
    k->model_max_budget = col_str(req, db, 25);
    if (k->model_max_budget != NULL && strcmp(k->model_max_budget, "{}") == 0)
        k->model_max_budget = NULL;
    k->aliases = col_str(req, db, 26);
    if (k->aliases != NULL && strcmp(k->aliases, "{}") == 0)
        k->aliases = NULL;
    k->model_rpm_limit = col_str(req, db, 33);
    k->model_tpm_limit = col_str(req, db, 34);
    k->guardrails = col_str(req, db, 35);
    k->team_guardrails = team ? col_str(req, db, 36) : NULL;
    if ((rc = col_list(req, db, 3, &k->models, &k->n_models)) == SL_OK && team)
        rc = col_list(req, db, 14, &k->team_models, &k->n_team_models);
out:
    sl_db_query_end(db);
    return rc;
}

/* The row of the web server's user name (see sl_keys_lookup_user) with its
 * team: SL_OK with *k filled (arena; token left for the caller), SL_ERR_AUTH
 * when there is none, or the database's status. */
static int db_fetch_user_row(struct sl_request *req, struct sl_db *db, const char *name,
                             struct sl_key *k)
{
    static const char sql[] =
        "SELECT u.user_id, COALESCE(u.team_id, JSON_VALUE(u.teams, '$[0]')), u.models, "
        "u.user_role = 'proxy_admin', u.tpm_limit, u.rpm_limit, u.max_parallel_requests, "
        "u.spend, u.max_budget, u.budget_reset_at, u.budget_duration, "
        "t.team_id IS NOT NULL, t.models, t.blocked, "
        "t.spend, t.max_budget, t.budget_reset_at, t.budget_duration, "
        "t.tpm_limit, t.rpm_limit, t.max_parallel_requests "
        "FROM `LiteLLM_UserTable` u "
        "LEFT JOIN `LiteLLM_TeamTable` t "
        "ON t.team_id = COALESCE(u.team_id, JSON_VALUE(u.teams, '$[0]')) "
        "WHERE u.sso_user_id = ? OR (u.user_id = ? AND u.sso_user_id IS NULL) "
        "ORDER BY u.sso_user_id IS NULL LIMIT 1";
    struct sl_db_param p[2] = { sl_db_text(name), sl_db_text(name) };
    int rc, row = 0, team;

    if ((rc = sl_db_query(db, sql, p, 2)) != SL_OK) {
        sl_log(SL_LOG_WARN, req, "remote user lookup failed: %s", sl_db_last_error(db)->message);
        return rc;
    }
    if ((rc = sl_db_fetch(db, &row)) != SL_OK)
        goto out;
    if (!row) {
        rc = SL_ERR_AUTH;
        goto out;
    }
    memset(k, 0, sizeof(*k));
    k->user_id = col_str(req, db, 0);
    k->team_id = col_str(req, db, 1);
    k->remote_admin = !sl_db_col_is_null(db, 3) && sl_db_col_int(db, 3) != 0;
    k->tpm_limit = sl_db_col_is_null(db, 4) ? -1 : sl_db_col_int(db, 4);
    k->rpm_limit = sl_db_col_is_null(db, 5) ? -1 : sl_db_col_int(db, 5);
    k->max_parallel_requests = sl_db_col_is_null(db, 6) ? -1 : (long)sl_db_col_int(db, 6);
    k->budget[SL_BUDGET_KEY].max_budget = -1;
    col_budget(req, db, 7, 1, &k->budget[SL_BUDGET_USER]);
    team = sl_db_col_int(db, 11) != 0;
    k->team_blocked = team && sl_db_col_int(db, 13) != 0;
    col_budget(req, db, 14, team, &k->budget[SL_BUDGET_TEAM]);
    col_limits(db, 18, team, &k->team_limits);
    col_limits(db, 4, 1, &k->user_limits);   /* the user's own, also counted as the user's */
    if ((rc = col_list(req, db, 2, &k->models, &k->n_models)) == SL_OK && team)
        rc = col_list(req, db, 12, &k->team_models, &k->n_team_models);
    if (rc == SL_OK && k->user_id == NULL)
        rc = SL_ERR_NOMEM;
out:
    sl_db_query_end(db);
    return rc;
}

/* The user row of a remote user, created on first sight. */
static int db_fetch_user(struct sl_request *req, const char *name, struct sl_key *k)
{
    struct sl_db_settings set;
    struct sl_db *db = NULL;
    int rc;

    sl_db_settings_from_config(req->cfg, &set);
    if ((rc = sl_db_thread(&set, &db)) != SL_OK)
        return rc;
    rc = db_fetch_user_row(req, db, name, k);
    if (rc == SL_ERR_AUTH && (rc = sl_remoteuser_create(req, db, name)) == SL_OK)
        rc = db_fetch_user_row(req, db, name, k);
    return rc;
}

/* ---- lookup ----------------------------------------------------------------- */

/* The cached path shared by keys and remote users: token names the cache
 * entries, what is handed to fetch (the token itself, or a user name). A
 * snapshot fetched is stored with token as its token. */
static int lookup(struct sl_request *req, const char *token, const char *what,
                  int (*fetch)(struct sl_request *, const char *, struct sl_key *),
                  struct sl_key *out)
{
    long long ttl_us = (req->cfg->key_cache_ttl_ms > 0 ? req->cfg->key_cache_ttl_ms : 5000) * 1000LL;
    struct sl_key *hit = NULL, k;
    long long fetched_us = 0, left_us;
    char *text;
    size_t len = 0;
    int r, rc;

    memset(out, 0, sizeof(*out));
    r = cache_get(req->arena, token, 0, &hit);
    if (r == HIT) {
        *out = *hit;
        return SL_OK;
    }
    if (r == HIT_NEGATIVE)
        goto unknown;
    if ((text = mc_fetch(req->cfg, token, &len)) != NULL) {
        rc = key_from_json(req->arena, text, len, token, &k, &fetched_us);
        free(text);
        left_us = fetched_us + ttl_us - wall_us();
        if (rc == SL_OK && left_us > 0) {
            cache_put(token, &k, left_us < ttl_us ? left_us : ttl_us);
            *out = k;
            return SL_OK;
        }
    }
    fetched_us = wall_us();
    rc = fetch(req, what, &k);
    if (rc == SL_OK) {
        memcpy(k.token, token, 65);
        cache_put(token, &k, ttl_us);
        mc_store(req->cfg, &k, fetched_us, req->cfg->key_cache_ttl_ms);
        *out = k;
        return SL_OK;
    }
    if (rc == SL_ERR_AUTH) {
        cache_put(token, NULL, NEG_TTL_US < ttl_us ? NEG_TTL_US : ttl_us);
        goto unknown;
    }
    if (rc == SL_ERR_NOMEM)
        return rc;
    /* The database cannot answer: a key seen recently still works; any other
     * key is refused (fail closed). */
    if (cache_get(req->arena, token, 1, &hit) == HIT) {
        static long long last_warned_us;   /* one warning per 10 s, not one per request */
        long long now = sl_now_us(), last = __atomic_load_n(&last_warned_us, __ATOMIC_RELAXED);

        if (now - last > 10000000LL &&
            __atomic_compare_exchange_n(&last_warned_us, &last, now, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            sl_log(SL_LOG_WARN, req, "database unavailable: serving cached keys past their TTL");
        *out = *hit;
        return SL_OK;
    }
    return SL_ERR_DB_UNAVAILABLE;
unknown:
    if (req->err_msg == NULL)
        req->err_msg = "Authentication Error, Invalid proxy server token passed.";
    return SL_ERR_AUTH;
}

int sl_keys_lookup(struct sl_request *req, struct sl_key *out)
{
    return lookup(req, req->principal.key_hash, req->principal.key_hash, db_fetch, out);
}

int sl_keys_lookup_user(struct sl_request *req, const char *name, struct sl_key *out)
{
    char *tag = sl_arena_printf(req->arena, "remote-user:%s", name), token[65];
    int rc;

    if (tag == NULL)
        return SL_ERR_NOMEM;
    sl_auth_hash_key(tag, token);   /* never a key's token: keys are hashed without a prefix */
    if ((rc = lookup(req, token, name, db_fetch_user, out)) == SL_OK)
        out->token[0] = '\0';       /* no key: the key budget scope is skipped */
    return rc;
}

void sl_keys_invalidate(const struct sl_config *cfg, const char *token)
{
    if (token == NULL)
        return;
    cache_remove(token);
    mc_delete(cfg, token);
}

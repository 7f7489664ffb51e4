/* Service-account OAuth2 for Vertex AI (google_auth.h): key file -> signed
 * JWT -> access token, cached process-wide. The cache is the one piece of
 * mutable shared state an adapter has, so it sits behind one mutex; the
 * network exchange runs outside it, and a per-entry "refreshing" flag with a
 * condition variable keeps it to one exchange at a time per account. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "google_auth.h"
#include "jsonutil.h"
#include "log.h"
#include "request.h"
#include "status.h"
#include "translate.h"
#include "upstream.h"

#define KEY_FILE_MAX (64 * 1024)     /* a key file is ~2.3 KiB */
#define TOKEN_MAX 4096               /* Google's tokens are a few hundred bytes */
#define JWT_LIFETIME_S 3600          /* the most Google accepts */
#define REFRESH_MARGIN_S 300         /* refresh five minutes before expiry */
#define CACHE_MAX 64                 /* accounts; one per configured key in practice */

/* ---- the key file ---- */

static char *read_small_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    size_t n = 0;

    errno = 0;
    if (f == NULL)
        return NULL;
    if ((p = malloc(KEY_FILE_MAX + 1)) != NULL) {
        n = fread(p, 1, KEY_FILE_MAX + 1, f);
        if (ferror(f) || n > KEY_FILE_MAX) {
            free(p);
            p = NULL;
        }
    }
    fclose(f);
    *len = n;
    return p;
}

int sl_google_auth_load(struct sl_request *req, const json_t *src, json_t **out)
{
    const char *s = json_string_value(src), *why;
    char *text = NULL;
    size_t len = 0;
    json_t *v = NULL;

    *out = NULL;
    if (json_is_object(src)) {
        v = json_incref((json_t *)src);
    } else if (s != NULL) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            s++;
        if (*s == '{') {
            v = sl_json_parse(s, strlen(s), &why);
        } else if ((text = read_small_file(s, &len)) != NULL) {
            v = sl_json_parse(text, len, &why);
            free(text);
        } else {
            int e = errno;

            req->err_msg = sl_arena_printf(req->arena, "vertex_ai: the service account key file "
                                           "cannot be read (%s).", e ? strerror(e) : "too large");
            return req->err_msg != NULL ? SL_ERR_AUTH : SL_ERR_NOMEM;
        }
    }
    if (!json_is_object(v) || sl_tr_str(v, "client_email") == NULL || sl_tr_str(v, "private_key") == NULL ||
        (sl_tr_str(v, "type") != NULL && strcmp(sl_tr_str(v, "type"), "service_account") != 0)) {
        json_decref(v);
        req->err_msg = "vertex_ai: the credentials are not a service account key "
                       "(JSON with type service_account, client_email and private_key).";
        return SL_ERR_AUTH;
    }
    *out = v;
    return SL_OK;
}

/* ---- the JWT ---- */

/* base64url without padding (RFC 7515 §2): OpenSSL's base64, then the two
 * characters that differ swapped and the padding cut. */
static char *b64url(struct sl_arena *a, const unsigned char *p, size_t n)
{
    char *out = n <= 1u << 20 ? sl_arena_alloc(a, 4 * ((n + 2) / 3) + 1) : NULL;
    int len;

    if (out == NULL)
        return NULL;
    len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *c = out; *c; c++) {
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
    }
    return out;
}

static char *b64url_json(struct sl_arena *a, json_t *v)
{
    size_t n;
    char *text = v ? sl_json_dump(a, v, &n) : NULL;

    json_decref(v);
    return text ? b64url(a, (const unsigned char *)text, n) : NULL;
}

/* RSA-SHA256 (PKCS#1 v1.5) signature of data, base64url. */
static char *sign_rs256(struct sl_arena *a, const char *pem, const char *data, const char **why)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t siglen = 0;
    char *out = NULL;

    *why = "out of memory";
    if (bio == NULL || md == NULL)
        goto done;
    *why = "the private key is not a PEM private key";
    if (key == NULL)
        goto done;
    *why = "the private key is not an RSA key";
    if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA)
        goto done;
    *why = "signing failed";
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSignUpdate(md, data, strlen(data)) != 1 ||
        EVP_DigestSignFinal(md, NULL, &siglen) != 1 ||
        (sig = sl_arena_alloc(a, siglen)) == NULL ||
        EVP_DigestSignFinal(md, sig, &siglen) != 1)
        goto done;
    if ((out = b64url(a, sig, siglen)) == NULL)
        *why = "out of memory";
done:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return out;
}

char *sl_google_auth_jwt(struct sl_arena *a, const char *pem, const char *kid,
                         const char *iss, const char *scope, const char *aud,
                         long long iat, const char **why)
{
    json_t *header = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
    char *h, *c, *signing_input, *sig;

    if (header != NULL && kid != NULL && json_object_set_new(header, "kid", json_string(kid)) != 0) {
        json_decref(header);
        header = NULL;
    }
    h = b64url_json(a, header);
    c = b64url_json(a, json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", iss, "scope", scope, "aud", aud,
                                 "iat", (json_int_t)iat, "exp", (json_int_t)(iat + JWT_LIFETIME_S)));
    *why = "out of memory";
    if (h == NULL || c == NULL || (signing_input = sl_arena_printf(a, "%s.%s", h, c)) == NULL)
        return NULL;
    if ((sig = sign_rs256(a, pem, signing_input, why)) == NULL)
        return NULL;
    return sl_arena_printf(a, "%s.%s", signing_input, sig);
}

/* ---- the token cache ---- */

struct entry {
    struct entry *next;
    char *email, *token_uri;     /* the key */
    char *token;                 /* NULL until fetched */
    long long fresh_until_us;    /* monotonic: refresh from here on */
    long long expires_us;        /* monotonic: unusable from here on */
    int refreshing;              /* one thread is fetching a token */
    int waiters;                 /* threads waiting for that fetch (they hold this entry) */
    unsigned long gen;           /* completed fetches, for waiters */
    int last_failed;             /* the last completed fetch failed ... */
    char last_error[256];        /* ... with this message (no secrets) */
    pthread_cond_t done;         /* broadcast when a fetch completes */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *cache;      /* guarded by cache_lock; entries live as long as the process */
static size_t cache_n;

static void entry_clear(struct entry *e)
{
    free(e->email);
    free(e->token_uri);
    free(e->token);
    e->email = e->token_uri = e->token = NULL;
    e->fresh_until_us = e->expires_us = 0;
    e->last_failed = 0;
}

/* The entry for (email, uri), made if missing; NULL on OOM. Full cache: the
 * idle entry whose token expires first is reused. Called with the lock. */
static struct entry *entry_get(const char *email, const char *uri)
{
    struct entry *e, *victim = NULL;
    pthread_condattr_t attr;
    char *em, *u;

    for (e = cache; e != NULL; e = e->next)
        if (strcmp(e->email, email) == 0 && strcmp(e->token_uri, uri) == 0)
            return e;
    em = strdup(email);
    u = strdup(uri);
    if (em == NULL || u == NULL)
        goto oom;
    if (cache_n >= CACHE_MAX) {
        /* An entry nobody fetches for or waits on can be reused safely. */
        for (e = cache; e != NULL; e = e->next)
            if (!e->refreshing && e->waiters == 0 &&
                (victim == NULL || e->expires_us < victim->expires_us))
                victim = e;
        if ((e = victim) == NULL)
            goto oom;
        entry_clear(e);
    } else {
        if ((e = calloc(1, sizeof(*e))) == NULL)
            goto oom;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&e->done, &attr);
        pthread_condattr_destroy(&attr);
        e->next = cache;
        cache = e;
        cache_n++;
    }
    e->email = em;
    e->token_uri = u;
    return e;
oom:
    free(em);
    free(u);
    return NULL;
}

static const char *token_uri_of(const json_t *creds)
{
    const char *uri = sl_tr_str(creds, "token_uri");

    return uri != NULL && *uri ? uri : SL_GOOGLE_TOKEN_URI;
}

/* Reads Google's token answer; SL_OK with *token (malloc'd) and *expires_in. */
static int read_token_reply(struct sl_request *req, long status, const struct sl_buf *b,
                            char **token, long *expires_in)
{
    const char *why, *t;
    json_t *v = b->len ? sl_json_parse(b->data, b->len, &why) : NULL, *ex;
    int rc = SL_ERR_AUTH;

    if (status != 200) {
        const char *err = sl_tr_str(v, "error"), *desc = sl_tr_str(v, "error_description");

        req->err_msg = sl_arena_printf(req->arena, "vertex_ai: the OAuth2 token endpoint refused the "
                                       "service account (HTTP %ld%s%.40s%s%.200s).", status,
                                       err ? ": " : "", err ? err : "", desc ? ", " : "", desc ? desc : "");
        goto out;
    }
    t = sl_tr_str(v, "access_token");
    if (t == NULL || *t == '\0' || strlen(t) > TOKEN_MAX || strpbrk(t, " \t\r\n") != NULL) {
        req->err_msg = "vertex_ai: the OAuth2 token endpoint answered without a usable access_token.";
        goto out;
    }
    ex = json_object_get(v, "expires_in");
    *expires_in = json_is_integer(ex) && json_integer_value(ex) > 0 && json_integer_value(ex) < 86400 * 7
                  ? (long)json_integer_value(ex) : 3600;
    rc = (*token = strdup(t)) != NULL ? SL_OK : SL_ERR_NOMEM;
out:
    json_decref(v);
    return rc;
}

/* One exchange: JWT -> token. Runs without the lock. */
static int fetch(struct sl_request *req, const json_t *creds, long timeout_ms,
                 char **token, long *expires_in)
{
    const char *why, *uri = token_uri_of(creds);
    char *jwt, *form;
    struct sl_buf reply;
    long status = 0;
    int rc;

    jwt = sl_google_auth_jwt(req->arena, sl_tr_str(creds, "private_key"), sl_tr_str(creds, "private_key_id"),
                             sl_tr_str(creds, "client_email"), SL_GOOGLE_SCOPE, uri, (long long)time(NULL), &why);
    if (jwt == NULL) {
        req->err_msg = sl_arena_printf(req->arena, "vertex_ai: cannot sign the service account's "
                                       "token request: %s.", why);
        return strcmp(why, "out of memory") == 0 ? SL_ERR_NOMEM : SL_ERR_AUTH;
    }
    /* The JWT's alphabet (base64url and '.') needs no percent-encoding. */
    form = sl_arena_printf(req->arena, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                           "&assertion=%s", jwt);
    if (form == NULL)
        return SL_ERR_NOMEM;
    rc = sl_upstream_post_form(req, uri, form, timeout_ms, &status, &reply);
    if (rc == SL_OK) {
        rc = read_token_reply(req, status, &reply, token, expires_in);
    } else if (rc != SL_ERR_NOMEM && rc != SL_ERR_CLIENT_GONE) {
        req->err_msg = sl_arena_printf(req->arena, "vertex_ai: the OAuth2 token endpoint could not be "
                                       "reached (%s).", sl_status_name(rc));
        rc = SL_ERR_AUTH;
    }
    sl_buf_free(&reply);
    if (rc == SL_ERR_AUTH)   /* the account and endpoint are not secrets; the key and token are */
        sl_log(SL_LOG_WARN, req, "vertex_ai token request for %s at %s failed: %s",
               sl_tr_str(creds, "client_email"), uri, req->err_msg);
    return rc;
}

/* Waits for the refresh under way, with the lock held; 0 on time-out. */
static int wait_refresh(struct entry *e, long long deadline_us)
{
    struct timespec ts = { .tv_sec = deadline_us / 1000000, .tv_nsec = (deadline_us % 1000000) * 1000 };

    return pthread_cond_timedwait(&e->done, &cache_lock, &ts) != ETIMEDOUT;
}

static long long mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int sl_google_auth_token(struct sl_request *req, const json_t *creds, long timeout_ms,
                         const char **token)
{
    const char *email = sl_tr_str(creds, "client_email"), *uri = token_uri_of(creds);
    long long deadline = mono_us() + timeout_ms * 1000LL, now;
    struct entry *e;
    char *fresh = NULL;
    long expires_in = 0;
    unsigned long gen;
    int rc, woken;

    *token = NULL;
    pthread_mutex_lock(&cache_lock);
    if ((e = entry_get(email, uri)) == NULL) {
        pthread_mutex_unlock(&cache_lock);
        return SL_ERR_NOMEM;
    }
    for (;;) {
        now = mono_us();
        if (e->token != NULL && (now < e->fresh_until_us || (e->refreshing && now < e->expires_us))) {
            *token = sl_arena_strdup(req->arena, e->token);
            pthread_mutex_unlock(&cache_lock);
            return *token != NULL ? SL_OK : SL_ERR_NOMEM;
        }
        if (!e->refreshing)
            break;
        gen = e->gen;
        e->waiters++;
        woken = wait_refresh(e, deadline);
        e->waiters--;
        if (!woken && e->refreshing) {
            pthread_mutex_unlock(&cache_lock);
            req->err_msg = "vertex_ai: timed out waiting for the OAuth2 access token.";
            return SL_ERR_AUTH;
        }
        if (e->gen != gen && e->last_failed) {
            /* The exchange we waited for failed: so would ours, now. */
            req->err_msg = sl_arena_strdup(req->arena, e->last_error);
            pthread_mutex_unlock(&cache_lock);
            return SL_ERR_AUTH;
        }
    }
    e->refreshing = 1;
    pthread_mutex_unlock(&cache_lock);

    rc = fetch(req, creds, timeout_ms, &fresh, &expires_in);

    pthread_mutex_lock(&cache_lock);
    e->refreshing = 0;
    e->gen++;
    /* Waiters share a refusal; a client that left or an OOM is ours alone. */
    e->last_failed = rc == SL_ERR_AUTH;
    if (rc == SL_OK) {
        long margin = expires_in > 2 * REFRESH_MARGIN_S ? REFRESH_MARGIN_S : expires_in / 2;

        free(e->token);
        e->token = fresh;
        now = mono_us();
        e->expires_us = now + expires_in * 1000000LL;
        e->fresh_until_us = now + (expires_in - margin) * 1000000LL;
        *token = sl_arena_strdup(req->arena, fresh);
        if (*token == NULL)
            rc = SL_ERR_NOMEM;
    } else if (rc == SL_ERR_AUTH) {
        snprintf(e->last_error, sizeof(e->last_error), "%s",
                 req->err_msg ? req->err_msg : "vertex_ai: the OAuth2 token request failed.");
    }
    pthread_cond_broadcast(&e->done);
    pthread_mutex_unlock(&cache_lock);
    return rc;
}

void sl_google_auth_forget(const json_t *creds, const char *token)
{
    const char *email = sl_tr_str(creds, "client_email"), *uri = token_uri_of(creds);
    struct entry *e;

    if (email == NULL || token == NULL)
        return;
    pthread_mutex_lock(&cache_lock);
    for (e = cache; e != NULL; e = e->next)
        if (strcmp(e->email, email) == 0 && strcmp(e->token_uri, uri) == 0 &&
            e->token != NULL && strcmp(e->token, token) == 0) {
            free(e->token);
            e->token = NULL;
            e->fresh_until_us = e->expires_us = 0;
        }
    pthread_mutex_unlock(&cache_lock);
}

/* Who is calling. The key comes from the headers LiteLLM accepts; it is
 * hashed at once (SHA-256 hex, LiteLLM's token format) and only the hash is
 * kept, compared and logged. The master key is compared hash to hash with
 * CRYPTO_memcmp, so timing says nothing about it. With a database, any other
 * key is a virtual key: keys.c resolves the same hash (cached) to a snapshot,
 * checked here for LiteLLM's rules (sk- prefix, blocked, expired) and, later
 * in the request, for its model list and budget, with LiteLLM's messages.
 * With trust_remote_user, the user the web server authenticated (a FastCGI
 * param, never a header) is a principal too: resolved by keys.c into a
 * snapshot of its user row, like a key. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "arena.h"
#include "auth.h"
#include "config.h"
#include "keys.h"
#include "remoteuser.h"
#include "request.h"
#include "status.h"

/* OpenSSL 3 looks the algorithm up on every EVP_sha256() use ("implicit
 * fetch"), which costs more than hashing a key; fetch it once. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void sl_auth_hash_key(const char *key, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    pthread_once(&sha256_once, fetch_sha256);
    if (sha256 == NULL || !EVP_Digest(key, strlen(key), md, &n, sha256, NULL) || n != 32) {
        memset(out, '0', 64);
        out[64] = '\0';
        return;
    }
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static const char *param(const struct sl_request *req, const char *name)
{
    const char *v = req->conn.ops->param(req->conn.ctx, name);

    return v != NULL && *v != '\0' ? v : NULL;
}

/* The presented key, or NULL. Order follows LiteLLM: Authorization first. */
static const char *presented_key(const struct sl_request *req)
{
    static const char *const others[] = {
        "HTTP_X_API_KEY", "HTTP_API_KEY", "HTTP_X_LITELLM_API_KEY", "HTTP_X_GOOG_API_KEY",
    };
    const char *v = param(req, "HTTP_AUTHORIZATION");

    if (v == NULL)
        v = param(req, "Authorization");   /* mod_fcgid's FcgidPassHeader */
    if (v != NULL) {
        if (strncasecmp(v, "Bearer ", 7) == 0)
            v += 7;
        else if (strncasecmp(v, "Basic ", 6) == 0)
            v = NULL;
        while (v != NULL && *v == ' ')
            v++;
        if (v != NULL && *v != '\0')
            return v;
    }
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        if ((v = param(req, others[i])) != NULL)
            return v;
    return NULL;
}

/* "2026-01-31 12:00:00+00:00", as Python prints an aware datetime. */
static void py_time(long long us, char out[40])
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, 40, "%Y-%m-%d %H:%M:%S+00:00", &tm) == 0)
        snprintf(out, 40, "%lld", us);
}

static long long wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A virtual key: looked up (cached) and checked as LiteLLM does. */
static int check_virtual_key(struct sl_request *req, const char *raw)
{
    struct sl_key *k;
    long long now;
    int rc;

    sl_keys_display_name(raw, req->principal.display);
    if (strncmp(raw, "sk-", 3) != 0) {
        req->err_msg = "Authentication Error, LiteLLM Virtual Key expected. Received=****, "
                       "expected to start with 'sk-'.";
        return SL_ERR_AUTH;
    }
    if ((k = sl_arena_alloc(req->arena, sizeof(*k))) == NULL)
        return SL_ERR_NOMEM;
    if ((rc = sl_keys_lookup(req, k)) != SL_OK) {
        if (rc == SL_ERR_AUTH)
            req->err_msg = sl_arena_printf(req->arena,
                "Authentication Error, Invalid proxy server token passed. Received API Key = %s, "
                "Key Hash (Token) =%s. Unable to find token in cache or "
                "`LiteLLM_VerificationTokenTable`", req->principal.display, req->principal.key_hash);
        else if (rc == SL_ERR_DB_UNAVAILABLE)
            req->err_msg = "Authentication Error: the key could not be checked because the "
                           "gateway's database is unavailable; retry later.";
        return rc;
    }
    if (k->blocked) {
        req->err_msg = "Authentication Error, key is blocked. Update via /key/unblock if "
                       "you're an admin";
        return SL_ERR_AUTH;
    }
    if (k->team_blocked) {
        req->err_msg = sl_arena_printf(req->arena, "Team=%.200s is blocked. Update via "
                                       "/team/unblock if you're an admin.", k->team_id);
        return SL_ERR_AUTH;
    }
    now = wall_us();
    if (k->expires_us != 0 && k->expires_us < now) {
        char exp[40], cur[40];

        py_time(k->expires_us, exp);
        py_time(now, cur);
        req->err_msg = sl_arena_printf(req->arena,
            "Authentication Error - Expired Key. Key Expiry time %s and current time %s", exp, cur);
        req->err_type = "expired_key";
        req->err_param = req->principal.display;
        return SL_ERR_AUTH;
    }
    req->principal.role = SL_ROLE_KEY;
    req->principal.key = k;
    return SL_OK;
}

/* The web server's user, looked up (created on first sight) and added to
 * the principal: alone it is the principal; with a virtual key it is the
 * key's user. */
static int check_remote_user(struct sl_request *req, const char *name)
{
    struct sl_key *u;
    int rc;

    if (strlen(name) > 255) {   /* user_id is VARCHAR(255); bytes >= characters */
        req->err_msg = "Authentication Error, the user name the web server passed is longer "
                       "than 255 bytes.";
        return SL_ERR_AUTH;
    }
    if ((u = sl_arena_alloc(req->arena, sizeof(*u))) == NULL)
        return SL_ERR_NOMEM;
    if ((rc = sl_keys_lookup_user(req, name, u)) != SL_OK) {
        if (rc == SL_ERR_AUTH)
            req->err_msg = sl_arena_printf(req->arena,
                "Authentication Error, the web server authenticated user=%.200s, but no row of "
                "LiteLLM_UserTable has it as sso_user_id and none could be made (its user_id is "
                "taken by a user with another sso_user_id).", name);
        else if (rc == SL_ERR_DB_UNAVAILABLE)
            req->err_msg = "Authentication Error: the web server's user could not be checked "
                           "because the gateway's database is unavailable; retry later.";
        return rc;
    }
    if (u->team_blocked) {
        req->err_msg = sl_arena_printf(req->arena, "Team=%.200s is blocked. Update via "
                                       "/team/unblock if you're an admin.", u->team_id);
        return SL_ERR_AUTH;
    }
    req->principal.user = u;
    if (req->principal.role == SL_ROLE_NONE) {
        req->principal.role = u->remote_admin ? SL_ROLE_ADMIN : SL_ROLE_USER;
        req->principal.key = u;
    }
    return SL_OK;
}

int sl_auth_check(struct sl_request *req)
{
    const char *key = presented_key(req), *remote = sl_remoteuser_name(req);
    int rc;

    req->stage = "auth";
    memset(&req->principal, 0, sizeof(req->principal));
    if (key == NULL && remote == NULL) {
        req->err_msg = "Authentication Error, no api key passed in.";
        return SL_ERR_AUTH;
    }
    if (key != NULL) {
        sl_auth_hash_key(key, req->principal.key_hash);
        if (req->cfg->master_key != NULL &&
            CRYPTO_memcmp(req->cfg->master_key_hash, req->principal.key_hash, 64) == 0) {
            req->principal.role = SL_ROLE_ADMIN;
            return SL_OK;
        }
        if (req->cfg->database_url == NULL) {
            req->err_msg = "Authentication Error, Invalid proxy server token passed.";
            return SL_ERR_AUTH;
        }
        if ((rc = check_virtual_key(req, key)) != SL_OK)
            return rc;
    }
    return remote != NULL ? check_remote_user(req, remote) : SL_OK;
}

/* Whether an allowlist admits model_name: empty admits every model, as do
 * "all-proxy-models" and "*". */
static int list_allows(const char *const *v, size_t n, const char *model_name)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], model_name) == 0 || strcmp(v[i], "all-proxy-models") == 0 ||
            strcmp(v[i], "*") == 0)
            return 1;
    return 0;
}

static int key_allows(const struct sl_key *k, const char *model_name)
{
    for (size_t i = 0; i < k->n_models; i++)
        if (strcmp(k->models[i], "all-team-models") == 0)
            return 1;            /* the team's list decides */
    return list_allows(k->models, k->n_models, model_name);
}

int sl_auth_may_use_model(const struct sl_request *req, const char *model_name)
{
    const struct sl_key *k = req->principal.key, *u = req->principal.user;

    if (req->principal.role == SL_ROLE_ADMIN)
        return 1;
    if ((req->principal.role != SL_ROLE_KEY && req->principal.role != SL_ROLE_USER) ||
        k == NULL || model_name == NULL)
        return 0;
    /* Access groups are not resolved: such an entry only matches a model
     * group of the same name. */
    return key_allows(k, model_name) && list_allows(k->team_models, k->n_team_models, model_name) &&
           (u == NULL || u == k || key_allows(u, model_name));
}

/* Python's repr of a list of strings, in the arena. */
static char *py_list(struct sl_arena *a, const char *const *v, size_t n)
{
    size_t size = 3;
    char *list, *p;

    for (size_t i = 0; i < n; i++)
        size += strlen(v[i]) + 4;
    if ((list = sl_arena_alloc(a, size)) == NULL)
        return NULL;
    p = list;
    *p++ = '[';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s'%s'", i ? ", " : "", v[i]);
    *p++ = ']';
    *p = '\0';
    return list;
}

int sl_auth_model_denied(struct sl_request *req, const char *model_name)
{
    const struct sl_key *k = req->principal.key, *u = req->principal.user;
    const char *m = model_name ? model_name : "", *who = "key";
    char *list;

    if (k != NULL && !key_allows(k, m)) {
        who = k == u ? "user" : "key";
        list = py_list(req->arena, k->models, k->n_models);
    } else if (k != NULL && !list_allows(k->team_models, k->n_team_models, m)) {
        who = "team";
        list = py_list(req->arena, k->team_models, k->n_team_models);
    } else if (u != NULL && !key_allows(u, m)) {
        who = "user";
        list = py_list(req->arena, u->models, u->n_models);
    } else {
        list = py_list(req->arena, k != NULL ? k->models : NULL, k != NULL ? k->n_models : 0);
    }
    if (list == NULL)
        return SL_ERR_NOMEM;
    req->err_msg = sl_arena_printf(req->arena,
        "%s not allowed to access model. This %s can only access models=%s. Tried to access %.200s",
        who, who, list, m);
    req->err_type = sl_arena_printf(req->arena, "%s_model_access_denied", who);
    req->err_param = "model";
    return req->err_type != NULL ? SL_ERR_AUTH : SL_ERR_NOMEM;
}

/* Who is calling. The key comes from the headers LiteLLM accepts; it is
 * hashed at once (SHA-256 hex, LiteLLM's token format) and only the hash is
 * kept, compared and logged. The master key is compared hash to hash with
 * CRYPTO_memcmp, so timing says nothing about it. Virtual keys (MariaDB,
 * cached) will resolve the same hash to a principal with policies. */
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth.h"
#include "config.h"
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

int sl_auth_check(struct sl_request *req)
{
    const char *key = presented_key(req);

    req->stage = "auth";
    memset(&req->principal, 0, sizeof(req->principal));
    if (key == NULL) {
        req->err_msg = "Authentication Error, no api key passed in.";
        return SL_ERR_AUTH;
    }
    sl_auth_hash_key(key, req->principal.key_hash);
    if (req->cfg->master_key != NULL) {
        if (CRYPTO_memcmp(req->cfg->master_key_hash, req->principal.key_hash, 64) == 0) {
            req->principal.role = SL_ROLE_ADMIN;
            return SL_OK;
        }
    }
    req->err_msg = "Authentication Error, Invalid proxy server token passed.";
    return SL_ERR_AUTH;
}

int sl_auth_may_use_model(const struct sl_request *req, const char *model_name)
{
    (void)model_name;
    return req->principal.role == SL_ROLE_ADMIN;
}

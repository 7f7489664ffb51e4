/* Vertex AI's service-account auth (providers/google_auth.c): the RS256 JWT
 * is checked against a key made here (header, claims, and the signature
 * verified with the public key through EVP_DigestVerify), key files are
 * loaded from JSON text, a path and a YAML-style object and refused when
 * they are not service-account keys, and a token request that cannot reach
 * its endpoint fails as a 401 without quoting the key. The exchange itself
 * runs against the fake upstream in tests/integration/gateway-gemini. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "arena.h"
#include "google_auth.h"
#include "log.h"
#include "request.h"
#include "status.h"
#include "tap.h"

static EVP_PKEY *make_key(int bits)
{
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    EVP_PKEY *key = NULL;

    if (kc == NULL || EVP_PKEY_keygen_init(kc) != 1 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(kc, bits) != 1 || EVP_PKEY_keygen(kc, &key) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(kc);
    return key;
}

/* The PKCS#8 PEM text of key (malloc'd). */
static char *pem_of(EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;

    if (b != NULL && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1 &&
        (n = BIO_get_mem_data(b, &data)) > 0 && (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}

/* base64url (no padding) -> bytes; *n gets the length. malloc'd. */
static unsigned char *unb64url(const char *s, size_t len, size_t *n)
{
    size_t padded = (len + 3) / 4 * 4;
    char *t = calloc(1, padded + 1);
    unsigned char *out = calloc(1, padded + 1);
    int got;

    if (t == NULL || out == NULL) {
        free(t);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < padded; i++)
        t[i] = i >= len ? '=' : s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    got = EVP_DecodeBlock(out, (unsigned char *)t, (int)padded);
    free(t);
    if (got < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding's zero bytes too. */
    *n = (size_t)got - (padded - len);
    return out;
}

static json_t *segment_json(const char *s, size_t len)
{
    size_t n;
    unsigned char *raw = unb64url(s, len, &n);
    json_t *v = raw ? json_loadb((const char *)raw, n, 0, NULL) : NULL;

    free(raw);
    return v;
}

static int verify(EVP_PKEY *key, const char *data, size_t len, const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int good = md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
               EVP_DigestVerifyUpdate(md, data, len) == 1 &&
               EVP_DigestVerifyFinal(md, sig, siglen) == 1;

    EVP_MD_CTX_free(md);
    return good;
}

static void test_jwt(struct sl_arena *a)
{
    EVP_PKEY *key = make_key(2048), *other = make_key(2048);
    char *pem = key ? pem_of(key) : NULL;
    const char *why = NULL, *dot1, *dot2;
    char *jwt;
    json_t *h, *c;
    unsigned char *sig;
    size_t siglen = 0;

    ok(key != NULL && other != NULL && pem != NULL, "an RSA key was made");
    if (pem == NULL)
        goto out;
    jwt = sl_google_auth_jwt(a, pem, "kid-123", "svc@proj.iam.gserviceaccount.com", SL_GOOGLE_SCOPE,
                             "http://127.0.0.1:1/token", 1700000000, &why);
    ok(jwt != NULL, "a JWT is signed");
    if (jwt == NULL)
        goto out;
    ok(strspn(jwt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == strlen(jwt),
       "the JWT is base64url without padding");
    dot1 = strchr(jwt, '.');
    dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    ok(dot1 != NULL && dot2 != NULL && strchr(dot2 + 1, '.') == NULL, "three segments");
    if (dot2 == NULL)
        goto out;
    h = segment_json(jwt, (size_t)(dot1 - jwt));
    c = segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    is_str(json_string_value(json_object_get(h, "alg")), "RS256", "header alg");
    is_str(json_string_value(json_object_get(h, "typ")), "JWT", "header typ");
    is_str(json_string_value(json_object_get(h, "kid")), "kid-123", "header kid");
    is_str(json_string_value(json_object_get(c, "iss")), "svc@proj.iam.gserviceaccount.com", "claim iss");
    is_str(json_string_value(json_object_get(c, "scope")), SL_GOOGLE_SCOPE, "claim scope");
    is_str(json_string_value(json_object_get(c, "aud")), "http://127.0.0.1:1/token", "claim aud");
    is_int(json_integer_value(json_object_get(c, "iat")), 1700000000, "claim iat");
    is_int(json_integer_value(json_object_get(c, "exp")), 1700003600, "claim exp = iat + 3600");
    json_decref(h);
    json_decref(c);

    sig = unb64url(dot2 + 1, strlen(dot2 + 1), &siglen);
    is_int(siglen, 256, "a 2048-bit RSA signature");
    ok(sig && verify(key, jwt, (size_t)(dot2 - jwt), sig, siglen), "the signature verifies with the public key");
    ok(sig && !verify(other, jwt, (size_t)(dot2 - jwt), sig, siglen), "and not with another key");
    ok(sig && !verify(key, jwt, (size_t)(dot2 - jwt) - 1, sig, siglen), "and not over other data");
    free(sig);

    jwt = sl_google_auth_jwt(a, pem, NULL, "i", "s", "a", 1, &why);
    dot1 = jwt ? strchr(jwt, '.') : NULL;
    h = dot1 ? segment_json(jwt, (size_t)(dot1 - jwt)) : NULL;
    ok(h != NULL && json_object_get(h, "kid") == NULL, "no kid without a private_key_id");
    json_decref(h);

    why = NULL;
    ok(sl_google_auth_jwt(a, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", "k",
                          "i", "s", "a", 1, &why) == NULL && why != NULL &&
       strstr(why, "not a key") == NULL, "a broken key is refused without being quoted");
out:
    free(pem);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void init_req(struct sl_request *req, struct sl_arena *a)
{
    memset(req, 0, sizeof(*req));
    req->arena = a;
    strcpy(req->id, "test-google-auth");
}

static void test_load(struct sl_arena *a)
{
    struct sl_request req;
    char path[] = "/tmp/sl-gauth-XXXXXX";
    const char *key_json = "{\"type\": \"service_account\", \"project_id\": \"p\", \"private_key_id\": \"x\", "
                           "\"private_key\": \"SECRET-PEM\", \"client_email\": \"a@p.iam.gserviceaccount.com\"}";
    json_t *src, *out = NULL;
    int fd;

    init_req(&req, a);
    src = json_string(key_json);
    is_int(sl_google_auth_load(&req, src, &out), SL_OK, "JSON text loads");
    is_str(json_string_value(json_object_get(out, "project_id")), "p", "its fields are there");
    json_decref(out);
    json_decref(src);

    fd = mkstemp(path);
    ok(fd >= 0 && write(fd, key_json, strlen(key_json)) == (ssize_t)strlen(key_json), "a key file is written");
    if (fd >= 0)
        close(fd);
    src = json_string(path);
    is_int(sl_google_auth_load(&req, src, &out), SL_OK, "a key file loads");
    is_str(json_string_value(json_object_get(out, "client_email")), "a@p.iam.gserviceaccount.com", "from its path");
    json_decref(out);
    json_decref(src);
    unlink(path);

    src = json_loads(key_json, 0, NULL);
    is_int(sl_google_auth_load(&req, src, &out), SL_OK, "an object (YAML mapping) loads");
    ok(out == src, "as itself");
    json_decref(out);
    json_decref(src);

    src = json_string(path);
    req.err_msg = NULL;
    is_int(sl_google_auth_load(&req, src, &out), SL_ERR_AUTH, "a missing file is a 401");
    ok(req.err_msg && strstr(req.err_msg, "cannot be read"), "that says it cannot be read");
    json_decref(src);

    src = json_string("{\"type\": \"authorized_user\", \"client_email\": \"a\", \"private_key\": \"SECRET-PEM\"}");
    req.err_msg = NULL;
    is_int(sl_google_auth_load(&req, src, &out), SL_ERR_AUTH, "another credential type is refused");
    ok(req.err_msg && strstr(req.err_msg, "service_account") && !strstr(req.err_msg, "SECRET"),
       "with a message that does not quote the key");
    json_decref(src);
    sl_arena_reset(a);
}

/* Without curl handles the exchange cannot happen: a 401 that says so. */
static void test_token_unreachable(struct sl_arena *a)
{
    struct sl_request req;
    EVP_PKEY *key = make_key(1024);
    char *pem = key ? pem_of(key) : NULL;
    json_t *creds = json_pack("{s:s, s:s, s:s, s:s}", "type", "service_account", "client_email",
                              "u@p.iam.gserviceaccount.com", "private_key", pem ? pem : "",
                              "token_uri", "http://127.0.0.1:1/token");
    const char *token = "x";

    init_req(&req, a);
    is_int(sl_google_auth_token(&req, creds, 1000, &token), SL_ERR_AUTH, "an unreachable token endpoint is a 401");
    ok(token == NULL, "and no token");
    ok(req.err_msg && strstr(req.err_msg, "could not be reached") && !strstr(req.err_msg, "PRIVATE"),
       "with a clear message that does not quote the key");
    req.err_msg = NULL;
    is_int(sl_google_auth_token(&req, creds, 1000, &token), SL_ERR_AUTH, "a second try fetches again (no token cached)");
    sl_google_auth_forget(creds, "nothing-cached");
    ok(1, "forgetting a token that is not cached is harmless");
    json_decref(creds);
    free(pem);
    EVP_PKEY_free(key);
    sl_arena_reset(a);
}

int main(void)
{
    struct sl_arena *a = sl_arena_create(16u << 20);

    sl_log_level = SL_LOG_ERROR;   /* the expected token failures warn */
    test_jwt(a);
    sl_arena_reset(a);
    test_load(a);
    test_token_unreachable(a);
    sl_arena_free(a);
    return tap_done();
}

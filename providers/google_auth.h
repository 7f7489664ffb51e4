/* Google OAuth2 for service accounts, as Vertex AI needs it: the service
 * account's JSON key signs an RS256 JWT, the JWT is exchanged at the key's
 * token_uri for an access token, and the token is cached process-wide (per
 * client_email and token_uri) until five minutes before it expires. One
 * thread refreshes a token at a time; the others keep using the old token
 * while it is still valid, or wait for the refresh. The exchange is a side
 * request on the calling thread's curl handles (sl_upstream_post_form): this
 * module owns no sockets. Key material and tokens never reach a message or a
 * log line. */
#ifndef SL_PROVIDER_GOOGLE_AUTH_H
#define SL_PROVIDER_GOOGLE_AUTH_H

#include <jansson.h>

struct sl_arena;
struct sl_request;

#define SL_GOOGLE_TOKEN_URI "https://oauth2.googleapis.com/token"
#define SL_GOOGLE_SCOPE "https://www.googleapis.com/auth/cloud-platform"

/* A service account's key: src is a JSON object (the key itself, as YAML
 * can write it in litellm_params), or a string holding the JSON text (it
 * starts with '{') or the path of a file holding it (at most 64 KiB). On
 * SL_OK *out is a new reference to the key object, checked to carry
 * client_email and private_key. Else SL_ERR_AUTH with req->err_msg set (it
 * never quotes src, which may be the key itself) or SL_ERR_NOMEM. */
int sl_google_auth_load(struct sl_request *req, const json_t *src, json_t **out);

/* The RS256-signed JWT assertion for Google's jwt-bearer grant: header
 * {alg: RS256, typ: JWT, kid} (kid left out when NULL), claims {iss, scope,
 * aud, iat, exp = iat + 3600}. pem is the private key in PEM (PKCS#8 or
 * PKCS#1). Returns the compact JWT in arena memory, or NULL with *why set to
 * a static reason (which never quotes the key). */
char *sl_google_auth_jwt(struct sl_arena *a, const char *pem, const char *kid,
                         const char *iss, const char *scope, const char *aud,
                         long long iat, const char **why);

/* The access token for the service account creds (borrowed; from
 * sl_google_auth_load): the cached one, or a new one fetched now within
 * timeout_ms. *token is arena memory. SL_OK; SL_ERR_AUTH (req->err_msg
 * says why: the token endpoint refused the key, was unreachable, or
 * answered garbage); SL_ERR_CLIENT_GONE; SL_ERR_NOMEM. */
int sl_google_auth_token(struct sl_request *req, const json_t *creds, long timeout_ms,
                         const char **token);

/* Drops the cached token of creds if it is still token (the upstream refused
 * it: revoked or expired early), so the next request fetches a new one. */
void sl_google_auth_forget(const json_t *creds, const char *token);

#endif

/* AWS Signature Version 4 (header form), as AWS's SigV4 documentation and
 * test suite define it for every service but S3: canonical request, string
 * to sign, the HMAC-SHA256 key chain and the Authorization header. Pure
 * computation with OpenSSL; the caller owns the clock and the credentials.
 * Checked against AWS's published test vectors (tests/unit/test_sigv4.c). */
#ifndef SL_PROVIDER_SIGV4_H
#define SL_PROVIDER_SIGV4_H

#include <stddef.h>

struct sl_arena;

struct sl_sigv4_header {
    const char *name;     /* any case; duplicates are joined with ',' in order */
    const char *value;    /* trimmed, inner runs of spaces collapsed when signed */
};

struct sl_sigv4_req {
    const char *method;            /* "POST" */
    const char *path;              /* as sent on the wire, percent-encoded, no query */
    const char *query;             /* as sent, without '?'; NULL or "" if none */
    const struct sl_sigv4_header *headers;   /* every header to sign, host included */
    size_t n_headers;
    const void *body;              /* may be NULL when body_len is 0 */
    size_t body_len;
    const char *amz_date;          /* "YYYYMMDDTHHMMSSZ", also the X-Amz-Date header */
    const char *region;            /* "us-east-1" */
    const char *service;           /* "bedrock" */
    const char *access_key_id;
    const char *secret_access_key;
};

/* What signing produced; every string is arena memory. */
struct sl_sigv4_out {
    const char *canonical_request;
    const char *string_to_sign;
    const char *signed_headers;    /* "host;x-amz-date" */
    char signature[65];            /* lowercase hex */
    const char *authorization;     /* the Authorization header's value */
};

/* Signs r. SL_OK; SL_ERR_BAD_REQUEST if r cannot be signed (a missing
 * field, a date that is not 16 characters, more than 32 headers, a header
 * name with characters outside a token); SL_ERR_NOMEM. */
int sl_sigv4_sign(struct sl_arena *a, const struct sl_sigv4_req *r, struct sl_sigv4_out *out);

/* RFC 3986 encoding as AWS wants it: every byte but A-Z a-z 0-9 - _ . ~ as
 * %XX (uppercase hex); '/' too unless keep_slash. Arena memory, NULL on OOM. */
char *sl_sigv4_uri_encode(struct sl_arena *a, const char *s, size_t n, int keep_slash);

/* "YYYYMMDDTHHMMSSZ" for the Unix time t, into buf (at least 17 bytes). */
void sl_sigv4_amz_date(long long t, char buf[17]);

#endif

/* AWS Signature Version 4 (sigv4.h). Built from AWS's description of the
 * algorithm; the quirks that matter:
 * - the canonical URI of every service but S3 is the path normalised (empty,
 *   "." and ".." segments resolved) and URI-encoded once more: the wire path
 *   of a Bedrock model id "a:b" is /model/a%3Ab/..., signed as a%253Ab;
 * - the canonical query is decoded, re-encoded and sorted by key, then value;
 * - header names are lowercased, values trimmed with inner space runs
 *   collapsed, duplicate names joined with ',' in their order.
 * Everything is arena memory; nothing here is secret-aware beyond not
 * keeping the derived key. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "arena.h"
#include "buf.h"
#include "sigv4.h"
#include "status.h"

#define SIGV4_MAX_HEADERS 32
#define SIGV4_ALGO "AWS4-HMAC-SHA256"

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

char *sl_sigv4_uri_encode(struct sl_arena *a, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = n <= ((size_t)-1) / 3 - 1 ? sl_arena_alloc(a, 3 * n + 1) : NULL, *o = out;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (unreserved(c) || (keep_slash && c == '/')) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

void sl_sigv4_amz_date(long long t, char buf[17])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (!EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) || len != 32)
        return SL_ERR_NOMEM;    /* OpenSSL fails here only on allocation */
    to_hex(md, 32, out);
    return SL_OK;
}

static int hmac(const unsigned char *key, size_t klen, const char *msg, size_t mlen,
                unsigned char out[32])
{
    unsigned int len = 0;

    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &len) != NULL &&
           len == 32 ? SL_OK : SL_ERR_NOMEM;
}

/* ---- canonical URI ---- */

/* The path with empty, "." and ".." segments resolved, then encoded again
 * (keeping '/'). "" and "/" both give "/"; a trailing slash is kept. */
static char *canonical_uri(struct sl_arena *a, const char *path)
{
    size_t n = strlen(path), o = 0, i = 0;
    char *norm = sl_arena_alloc(a, n + 2);

    if (norm == NULL)
        return NULL;
    while (i < n) {
        size_t j = i;

        while (j < n && path[j] != '/')
            j++;
        if (j == i || (j - i == 1 && path[i] == '.')) {
            /* nothing */
        } else if (j - i == 2 && path[i] == '.' && path[i + 1] == '.') {
            while (o > 0 && norm[o - 1] != '/')
                o--;
            if (o > 0)
                o--;               /* drop the segment's own slash */
        } else {
            norm[o++] = '/';
            memcpy(norm + o, path + i, j - i);
            o += j - i;
        }
        i = j + 1;
    }
    if (o == 0 || (n > 0 && path[n - 1] == '/'))
        norm[o++] = '/';
    return sl_sigv4_uri_encode(a, norm, o, 1);
}

/* ---- canonical query ---- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes s[0..n) and encodes it the canonical way. A '%' not
 * followed by two hex digits stays a literal '%'. */
static char *requote(struct sl_arena *a, const char *s, size_t n)
{
    char *raw = sl_arena_alloc(a, n + 1);
    size_t o = 0;

    if (raw == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;

        if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            raw[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            raw[o++] = s[i];
        }
    }
    return sl_sigv4_uri_encode(a, raw, o, 0);
}

struct qpair {
    const char *k, *v;
};

static int qpair_less(const struct qpair *x, const struct qpair *y)
{
    int c = strcmp(x->k, y->k);

    return c < 0 || (c == 0 && strcmp(x->v, y->v) < 0);
}

static char *canonical_query(struct sl_arena *a, const char *q)
{
    size_t n = q ? strlen(q) : 0, np = 0, cap = 1, i = 0, len = 0;
    struct qpair *pairs;
    char *out, *o;

    for (size_t k = 0; k < n; k++)
        cap += q[k] == '&';
    if ((pairs = sl_arena_alloc(a, cap * sizeof(*pairs))) == NULL)
        return NULL;
    while (i < n) {
        size_t j = i, eq;

        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            for (eq = i; eq < j && q[eq] != '='; eq++)
                ;
            pairs[np].k = requote(a, q + i, eq - i);
            pairs[np].v = eq < j ? requote(a, q + eq + 1, j - eq - 1) : "";
            if (pairs[np].k == NULL || pairs[np].v == NULL)
                return NULL;
            len += strlen(pairs[np].k) + strlen(pairs[np].v) + 2;
            /* Insertion sort: queries are short. */
            for (size_t m = np; m > 0 && qpair_less(&pairs[m], &pairs[m - 1]); m--) {
                struct qpair t = pairs[m];

                pairs[m] = pairs[m - 1];
                pairs[m - 1] = t;
            }
            np++;
        }
        i = j + 1;
    }
    if ((out = o = sl_arena_alloc(a, len + 1)) == NULL)
        return NULL;
    for (size_t k = 0; k < np; k++)
        o += sprintf(o, "%s%s=%s", k ? "&" : "", pairs[k].k, pairs[k].v);
    *o = '\0';
    return out;
}

/* ---- canonical headers ---- */

struct chdr {
    char *name;           /* lowercased */
    const char *value;    /* as given */
    size_t order;         /* position in the request, for a stable sort */
};

static int header_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == ':' || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* Appends the value trimmed, with every run of spaces or tabs as one space. */
static int append_value(struct sl_buf *b, const char *v)
{
    int space = 0, any = 0, rc = SL_OK;

    for (; *v && rc == SL_OK; v++) {
        if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
            space = any;
            continue;
        }
        if (space)
            rc = sl_buf_append(b, " ", 1);
        if (rc == SL_OK)
            rc = sl_buf_append(b, v, 1);
        space = 0;
        any = 1;
    }
    return rc;
}

/* "name:value\n" per distinct name (sorted), into creq; the names joined by
 * ';' into *signed_headers. */
static int canonical_headers(struct sl_arena *a, const struct sl_sigv4_req *r, struct sl_buf *creq,
                             const char **signed_headers)
{
    struct chdr h[SIGV4_MAX_HEADERS];
    struct sl_buf names;
    size_t n = r->n_headers;
    int rc = SL_OK;

    if (n == 0 || n > SIGV4_MAX_HEADERS)
        return SL_ERR_BAD_REQUEST;
    for (size_t i = 0; i < n; i++) {
        const char *nm = r->headers[i].name;

        if (nm == NULL || r->headers[i].value == NULL || !header_token(nm))
            return SL_ERR_BAD_REQUEST;
        if ((h[i].name = sl_arena_strdup(a, nm)) == NULL)
            return SL_ERR_NOMEM;
        for (char *p = h[i].name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        h[i].value = r->headers[i].value;
        h[i].order = i;
        for (size_t m = i; m > 0 && strcmp(h[m].name, h[m - 1].name) < 0; m--) {
            struct chdr t = h[m];

            h[m] = h[m - 1];
            h[m - 1] = t;
        }
    }
    sl_buf_init(&names, 64 * SIGV4_MAX_HEADERS);
    for (size_t i = 0; i < n && rc == SL_OK; i++) {
        int first = i == 0 || strcmp(h[i].name, h[i - 1].name) != 0;

        if (first && i > 0)
            rc = sl_buf_append(creq, "\n", 1);
        if (rc == SL_OK && first)
            rc = sl_buf_printf(creq, "%s:", h[i].name);
        if (rc == SL_OK && first)
            rc = sl_buf_printf(&names, "%s%s", i ? ";" : "", h[i].name);
        if (rc == SL_OK && !first)
            rc = sl_buf_append(creq, ",", 1);
        if (rc == SL_OK)
            rc = append_value(creq, h[i].value);
    }
    if (rc == SL_OK)
        rc = sl_buf_append(creq, "\n\n", 2);
    if (rc == SL_OK && (*signed_headers = sl_arena_strdup(a, names.data)) == NULL)
        rc = SL_ERR_NOMEM;
    sl_buf_free(&names);
    return rc == SL_ERR_TOO_LARGE ? SL_ERR_BAD_REQUEST : rc;
}

/* ---- signing ---- */

static int signing_key(const struct sl_sigv4_req *r, const char *date, unsigned char key[32])
{
    const char *parts[3] = { r->region, r->service, "aws4_request" };
    size_t slen = strlen(r->secret_access_key);
    unsigned char k0[4 + 256];
    int rc;

    if (slen > 256)
        return SL_ERR_BAD_REQUEST;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, r->secret_access_key, slen);
    rc = hmac(k0, 4 + slen, date, 8, key);
    for (int i = 0; i < 3 && rc == SL_OK; i++)
        rc = hmac(key, 32, parts[i], strlen(parts[i]), key);
    OPENSSL_cleanse(k0, sizeof(k0));
    return rc;
}

int sl_sigv4_sign(struct sl_arena *a, const struct sl_sigv4_req *r, struct sl_sigv4_out *out)
{
    struct sl_buf creq;
    char payload_hash[65], creq_hash[65];
    const char *uri, *query;
    unsigned char key[32], sig[32];
    int rc;

    memset(out, 0, sizeof(*out));
    if (r->method == NULL || r->path == NULL || r->amz_date == NULL || strlen(r->amz_date) != 16 ||
        r->region == NULL || r->service == NULL || r->access_key_id == NULL ||
        r->secret_access_key == NULL || (r->body == NULL && r->body_len > 0))
        return SL_ERR_BAD_REQUEST;
    if ((uri = canonical_uri(a, r->path)) == NULL || (query = canonical_query(a, r->query)) == NULL)
        return SL_ERR_NOMEM;
    if ((rc = sha256_hex(r->body ? r->body : "", r->body_len, payload_hash)) != SL_OK)
        return rc;
    sl_buf_init(&creq, SL_MAX_UPSTREAM_ERROR);
    if ((rc = sl_buf_printf(&creq, "%s\n%s\n%s\n", r->method, uri, query)) != SL_OK ||
        (rc = canonical_headers(a, r, &creq, &out->signed_headers)) != SL_OK ||
        (rc = sl_buf_printf(&creq, "%s\n%s", out->signed_headers, payload_hash)) != SL_OK)
        goto out;
    rc = SL_ERR_NOMEM;
    if ((out->canonical_request = sl_arena_strndup(a, creq.data, creq.len)) == NULL ||
        sha256_hex(creq.data, creq.len, creq_hash) != SL_OK)
        goto out;
    out->string_to_sign = sl_arena_printf(a, SIGV4_ALGO "\n%s\n%.8s/%s/%s/aws4_request\n%s",
                                          r->amz_date, r->amz_date, r->region, r->service, creq_hash);
    if (out->string_to_sign == NULL)
        goto out;
    if ((rc = signing_key(r, r->amz_date, key)) != SL_OK ||
        (rc = hmac(key, 32, out->string_to_sign, strlen(out->string_to_sign), sig)) != SL_OK)
        goto out;
    to_hex(sig, 32, out->signature);
    out->authorization = sl_arena_printf(a, SIGV4_ALGO " Credential=%s/%.8s/%s/%s/aws4_request, "
                                         "SignedHeaders=%s, Signature=%s", r->access_key_id,
                                         r->amz_date, r->region, r->service, out->signed_headers,
                                         out->signature);
    rc = out->authorization != NULL ? SL_OK : SL_ERR_NOMEM;
out:
    OPENSSL_cleanse(key, sizeof(key));
    sl_buf_free(&creq);
    return rc == SL_ERR_TOO_LARGE ? SL_ERR_BAD_REQUEST : rc;
}

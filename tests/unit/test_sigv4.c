/* SigV4 against AWS's published test vectors and Bedrock-shaped requests
 * signed by the official AWS SDK: tests/data/sigv4/<case>/ (see the README
 * there). Each case checks the canonical request, the string to sign and
 * the Authorization header; then a few inputs sigv4 must refuse. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <jansson.h>

#include "arena.h"
#include "sigv4.h"
#include "status.h"
#include "tap.h"

/* A file's text without one trailing newline; NULL if unreadable. */
static char *slurp(const char *dir, const char *name)
{
    char path[4096];
    FILE *f;
    char *p;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)n + 1);
    if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        fclose(f);
        return NULL;
    }
    fclose(f);
    if (n > 0 && p[n - 1] == '\n')
        n--;
    p[n] = '\0';
    return p;
}

static void run_case(const char *dir, const char *name, const json_t *creds, struct sl_arena *a)
{
    char path[4096], label[1024];
    json_t *r;
    struct sl_sigv4_header h[32];
    struct sl_sigv4_req req;
    struct sl_sigv4_out out;
    char *creq = slurp(dir, "canonical_request"), *sts = slurp(dir, "string_to_sign");
    char *authz = slurp(dir, "authorization");
    size_t i, n = 0;
    json_t *pair;
    int rc;

    snprintf(path, sizeof(path), "%s/request.json", dir);
    r = json_load_file(path, 0, NULL);
    memset(&req, 0, sizeof(req));
    if (r == NULL || creq == NULL || sts == NULL || authz == NULL) {
        snprintf(label, sizeof(label), "%s: case files readable", name);
        ok(0, label);
        goto out;
    }
    json_array_foreach(json_object_get(r, "headers"), i, pair) {
        if (n == 32)
            break;
        h[n].name = json_string_value(json_array_get(pair, 0));
        h[n].value = json_string_value(json_array_get(pair, 1));
        if (h[n].name != NULL && strcasecmp(h[n].name, "x-amz-date") == 0)
            req.amz_date = h[n].value;
        n++;
    }
    req.method = json_string_value(json_object_get(r, "method"));
    req.path = json_string_value(json_object_get(r, "path"));
    req.query = json_string_value(json_object_get(r, "query"));
    req.headers = h;
    req.n_headers = n;
    req.body = json_string_value(json_object_get(r, "body"));
    req.body_len = req.body ? strlen(req.body) : 0;
    req.region = json_string_value(json_object_get(r, "region"));
    if (req.region == NULL)
        req.region = json_string_value(json_object_get(creds, "region"));
    req.service = json_string_value(json_object_get(r, "service"));
    if (req.service == NULL)
        req.service = json_string_value(json_object_get(creds, "service"));
    req.access_key_id = json_string_value(json_object_get(creds, "access_key_id"));
    req.secret_access_key = json_string_value(json_object_get(creds, "secret_access_key"));

    rc = sl_sigv4_sign(a, &req, &out);
    snprintf(label, sizeof(label), "%s: signs", name);
    is_int(rc, SL_OK, label);
    snprintf(label, sizeof(label), "%s: canonical request", name);
    is_str(out.canonical_request, creq, label);
    snprintf(label, sizeof(label), "%s: string to sign", name);
    is_str(out.string_to_sign, sts, label);
    snprintf(label, sizeof(label), "%s: authorization", name);
    is_str(out.authorization, authz, label);
out:
    json_decref(r);
    free(creq);
    free(sts);
    free(authz);
    sl_arena_reset(a);
}

static int by_name(const struct dirent **x, const struct dirent **y)
{
    return strcmp((*x)->d_name, (*y)->d_name);
}

static void refusals(struct sl_arena *a)
{
    struct sl_sigv4_header h[33] = { { "Host", "example.amazonaws.com" } };
    struct sl_sigv4_req r = {
        .method = "GET", .path = "/", .headers = h, .n_headers = 1, .amz_date = "20150830T123600Z",
        .region = "us-east-1", .service = "service", .access_key_id = "AKIDEXAMPLE",
        .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    };
    struct sl_sigv4_out out;
    char *enc;

    is_int(sl_sigv4_sign(a, &r, &out), SL_OK, "a minimal request signs");
    r.amz_date = "2015-08-30";
    is_int(sl_sigv4_sign(a, &r, &out), SL_ERR_BAD_REQUEST, "a malformed date is refused");
    r.amz_date = "20150830T123600Z";
    h[0].name = "Bad Name";
    is_int(sl_sigv4_sign(a, &r, &out), SL_ERR_BAD_REQUEST, "a header name with a space is refused");
    h[0].name = "Host";
    for (int i = 1; i < 33; i++)
        h[i] = (struct sl_sigv4_header){ "x-extra", "v" };
    r.n_headers = 33;
    is_int(sl_sigv4_sign(a, &r, &out), SL_ERR_BAD_REQUEST, "more than 32 headers are refused");
    r.n_headers = 0;
    is_int(sl_sigv4_sign(a, &r, &out), SL_ERR_BAD_REQUEST, "no headers (no host) is refused");

    enc = sl_sigv4_uri_encode(a, "a:b/c d~", 8, 0);
    is_str(enc, "a%3Ab%2Fc%20d~", "uri_encode: reserved bytes as %XX, '/' too");
    enc = sl_sigv4_uri_encode(a, "/m/a%3Ab", 8, 1);
    is_str(enc, "/m/a%253Ab", "uri_encode keeping '/': an encoded path is encoded again");
    {
        char d[17];

        sl_sigv4_amz_date(1440938160LL, d);
        is_str(d, "20150830T123600Z", "amz_date formats UTC");
    }
    sl_arena_reset(a);
}

int main(void)
{
    const char *data = getenv("SL_TEST_DATA") ? getenv("SL_TEST_DATA") : "tests/data";
    char root[1024], path[1200];
    struct dirent **cs;
    struct sl_arena *a = sl_arena_create(16u << 20);
    json_t *creds;
    int nc, cases = 0;

    snprintf(root, sizeof(root), "%s/sigv4", data);
    snprintf(path, sizeof(path), "%s/credentials.json", root);
    creds = json_load_file(path, 0, NULL);
    ok(creds != NULL, "credentials.json readable");
    nc = scandir(root, &cs, NULL, by_name);
    for (int k = 0; k < nc; k++) {
        char cdir[2400];

        snprintf(cdir, sizeof(cdir), "%s/%s", root, cs[k]->d_name);
        snprintf(path, sizeof(path), "%s/request.json", cdir);
        if (cs[k]->d_name[0] != '.' && access(path, R_OK) == 0) {
            run_case(cdir, cs[k]->d_name, creds, a);
            cases++;
        }
        free(cs[k]);
    }
    if (nc >= 0)
        free(cs);
    ok(cases >= 25, "the SigV4 cases were found");
    refusals(a);
    json_decref(creds);
    sl_arena_free(a);
    return tap_done();
}

/* multipart/form-data (form.h), RFC 7578 on RFC 2046's framing: parts
 * between "--boundary" lines, each with headers, a blank line and its
 * value, the last delimiter followed by "--". */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "form.h"

int sl_form_boundary(const char *ctype, char out[71])
{
    const char *p, *end;
    size_t n;

    if (ctype == NULL || strncasecmp(ctype, "multipart/form-data", 19) != 0)
        return -1;
    for (p = ctype + 19; (p = strchr(p, ';')) != NULL; ) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary=", 9) != 0)
            continue;
        p += 9;
        if (*p == '"') {
            end = strchr(++p, '"');
            if (end == NULL)
                return -1;
        } else {
            end = p + strcspn(p, "; \t");
        }
        n = (size_t)(end - p);
        if (n == 0 || n > 70)
            return -1;
        memcpy(out, p, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

static const char *find(const char *h, size_t hl, const char *n, size_t nl)
{
    return nl <= hl ? memmem(h, hl, n, nl) : NULL;
}

/* The name="..." of a part's Content-Disposition header, within its
 * headers [h, h + hl). */
static int part_named(const char *h, size_t hl, const char *name)
{
    size_t nl = strlen(name);
    const char *p = h, *end = h + hl;

    while ((p = find(p, (size_t)(end - p), "name=\"", 6)) != NULL) {
        /* not filename="..." */
        if (p > h && (p[-1] == ' ' || p[-1] == ';' || p[-1] == '\t')) {
            p += 6;
            if ((size_t)(end - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '"')
                return 1;
        } else {
            p += 6;
        }
    }
    return 0;
}

int sl_form_find(const char *body, size_t len, const char *boundary, const char *name,
                 size_t *at, size_t *vlen)
{
    char delim[76];
    size_t dl = (size_t)snprintf(delim, sizeof(delim), "--%s", boundary);
    const char *p, *end = body + len, *hdr_end, *next;

    if (dl < 3 || dl >= sizeof(delim) || (p = find(body, len, delim, dl)) == NULL)
        return -1;
    for (;;) {
        p += dl;
        if ((size_t)(end - p) >= 2 && p[0] == '-' && p[1] == '-')
            return 0;                      /* the closing delimiter */
        if ((size_t)(end - p) < 2 || p[0] != '\r' || p[1] != '\n')
            return -1;
        p += 2;
        if ((hdr_end = find(p, (size_t)(end - p), "\r\n\r\n", 4)) == NULL)
            return -1;
        /* The value runs to CRLF + the next delimiter. */
        {
            char cd[80];
            size_t cl = (size_t)snprintf(cd, sizeof(cd), "\r\n%s", delim);

            if ((next = find(hdr_end + 4, (size_t)(end - hdr_end - 4), cd, cl)) == NULL)
                return -1;
            if (part_named(p, (size_t)(hdr_end - p), name)) {
                *at = (size_t)(hdr_end + 4 - body);
                *vlen = (size_t)(next - hdr_end - 4);
                return 1;
            }
            p = next + 2;
        }
    }
}

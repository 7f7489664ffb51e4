/* multipart/form-data, read only as far as the gateway needs: where a
 * field's value lies in the body (audio uploads pass through as they came,
 * with at most their "model" value replaced). */
#ifndef SL_FORM_H
#define SL_FORM_H

#include <stddef.h>

/* The boundary of a multipart/form-data Content-Type (quoted or not), at
 * most 70 characters as RFC 2046 allows, into out (71 bytes). 0 on success,
 * -1 if ctype is not multipart/form-data with a valid boundary. */
int sl_form_boundary(const char *ctype, char out[71]);

/* Finds the part named name in body (len bytes) and sets *at and *vlen to
 * its value's offset and length. 1 if found, 0 if not, -1 if the body is
 * not well-formed multipart with that boundary (no first delimiter, a part
 * without the blank line after its headers, or no closing delimiter). */
int sl_form_find(const char *body, size_t len, const char *boundary, const char *name,
                 size_t *at, size_t *vlen);

#endif

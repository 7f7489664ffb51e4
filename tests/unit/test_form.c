/* multipart/form-data (src/form.c): the boundary of a Content-Type, and
 * where a field's value lies, in well-formed and broken bodies. */
#include <string.h>

#include "form.h"
#include "tap.h"

static const char BODY[] =
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"model.mp3\"\r\n"
    "Content-Type: audio/mpeg\r\n"
    "\r\n"
    "ab\r\n-XyZ\r\n"
    "\r\n--XyZ\r\n"
    "Content-Disposition: form-data; name=\"model\"\r\n"
    "\r\n"
    "whisper-1\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"empty\"\r\n"
    "\r\n"
    "\r\n"
    "--XyZ--\r\n";

int main(void)
{
    char b[71], long_ct[200];
    size_t at = 0, n = 0, len = sizeof(BODY) - 1;

    ok(sl_form_boundary("multipart/form-data; boundary=XyZ", b) == 0 && strcmp(b, "XyZ") == 0, "a plain boundary");
    ok(sl_form_boundary("Multipart/Form-Data;boundary=\"a b;c\"; charset=x", b) == 0 && strcmp(b, "a b;c") == 0,
       "a quoted one, any case, other parameters after it");
    ok(sl_form_boundary("multipart/form-data; charset=utf-8; boundary=q1", b) == 0 && strcmp(b, "q1") == 0,
       "after another parameter");
    is_int(sl_form_boundary("application/json", b), -1, "not multipart");
    is_int(sl_form_boundary("multipart/form-data", b), -1, "no boundary");
    is_int(sl_form_boundary("multipart/form-data; boundary=", b), -1, "an empty boundary");
    is_int(sl_form_boundary("multipart/form-data; boundary=\"open", b), -1, "an unclosed quote");
    is_int(sl_form_boundary(NULL, b), -1, "no Content-Type");
    memcpy(long_ct, "multipart/form-data; boundary=", 30);
    memset(long_ct + 30, 'b', 71);
    long_ct[101] = '\0';
    is_int(sl_form_boundary(long_ct, b), -1, "a boundary over 70 characters");

    is_int(sl_form_find(BODY, len, "XyZ", "model", &at, &n), 1, "the model field is found");
    ok(n == 9 && memcmp(BODY + at, "whisper-1", 9) == 0, "... its value exactly");
    is_int(sl_form_find(BODY, len, "XyZ", "file", &at, &n), 1, "the file part");
    ok(n == 10 && memcmp(BODY + at, "ab\r\n-XyZ\r\n", 10) == 0,
       "... up to CRLF + delimiter, line breaks and delimiter-like text inside kept");
    is_int(sl_form_find(BODY, len, "XyZ", "empty", &at, &n), 1, "an empty field");
    is_int(n, 0, "... of length 0");
    is_int(sl_form_find(BODY, len, "XyZ", "mod", &at, &n), 0, "a prefix of a name is not the name");
    is_int(sl_form_find(BODY, len, "XyZ", "stream", &at, &n), 0, "a missing field");
    is_int(sl_form_find(BODY, len, "other", "model", &at, &n), -1, "another boundary: no first delimiter");
    is_int(sl_form_find("--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\nx", 53, "XyZ", "model", &at, &n),
           -1, "no blank line after the headers");
    is_int(sl_form_find("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue", 55, "XyZ", "a", &at, &n),
           -1, "no closing delimiter");
    is_int(sl_form_find("--XyZjunk", 9, "XyZ", "a", &at, &n), -1, "a delimiter not followed by CRLF");
    is_int(sl_form_find("", 0, "XyZ", "a", &at, &n), -1, "an empty body");
    return tap_done();
}

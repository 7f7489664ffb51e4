/* Capped buffer: growth, the cap freeing the buffer, consume, printf. */
#include <string.h>

#include "buf.h"
#include "status.h"
#include "tap.h"

int main(void)
{
    struct sl_buf b;
    char big[2000];

    sl_buf_init(&b, 1000);
    is_int(sl_buf_puts(&b, "hello"), SL_OK, "append");
    is_str(b.data, "hello", "content is NUL-terminated");
    is_int(sl_buf_printf(&b, " %d", 42), SL_OK, "printf");
    is_str(b.data, "hello 42", "printf appended");
    memset(big, 'a', sizeof(big));
    is_int(sl_buf_append(&b, big, 992), SL_OK, "append up to the cap");
    is_int(b.len, 1000, "exactly at the cap");
    is_int(sl_buf_append(&b, "x", 1), SL_ERR_TOO_LARGE, "one byte over the cap fails");
    ok(b.data == NULL && b.len == 0, "and leaves the buffer freed and empty");
    is_int(sl_buf_append(&b, "ok", 2), SL_OK, "usable again after the failure");
    sl_buf_reset(&b);
    is_int(b.len, 0, "reset");
    is_int(sl_buf_printf(&b, "%0999d", 1), SL_OK, "a long printf up to the cap");
    is_int(sl_buf_printf(&b, "%0999d", 1), SL_ERR_TOO_LARGE, "a long printf over the cap");
    sl_buf_free(&b);
    sl_buf_free(&b);
    ok(1, "double free is harmless");
    return tap_done();
}

/* The connection to the web server, behind a small table of operations so the
 * same request code runs under FastCGI, as plain CGI and in unit tests. Only
 * request.c (reading) and respond.c (writing) use it. */
#ifndef SL_CONN_H
#define SL_CONN_H

#include <stddef.h>

struct sl_conn_ops {
    /* A request parameter (CGI variable) or NULL. The string lives as long as
     * the request. */
    const char *(*param)(void *ctx, const char *name);
    /* Up to n body bytes: >0 bytes read, 0 end of body, -1 error or time-out. */
    long (*read)(void *ctx, char *buf, size_t n);
    /* All n bytes, or -1 (the client is gone). */
    int (*write)(void *ctx, const char *p, size_t n);
    /* Pushes buffered output to the web server now; -1 if the client is gone. */
    int (*flush)(void *ctx);
    /* A descriptor that turns readable when the web server drops the request
     * (client gone), or -1 if there is none to watch. */
    int (*watch_fd)(void *ctx);
};

struct sl_conn {
    const struct sl_conn_ops *ops;  /* borrowed, static */
    void *ctx;                      /* borrowed */
};

#endif

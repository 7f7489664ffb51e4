/* Logging to stderr (the web server's error log under FastCGI; never stdout,
 * which may be the response). One line per event; request lines are JSON.
 * Keys, Authorization headers, prompts and completions are never passed here:
 * log sizes or hashes instead. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <jansson.h>

enum sl_log_level { SL_LOG_ERROR = 0, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG };

extern int sl_log_level;   /* set once at start-up */

/* The request the calling thread serves (request.c sets and clears it): a
 * line logged with no request names this one, so every line a request
 * causes carries its request id, however deep it is written. */
extern __thread const struct sl_request *sl_log_current;

struct sl_request;

#define sl_log(level, req, ...)                                            \
    do {                                                                   \
        if ((level) <= sl_log_level)                                       \
            sl_log_write((level), (req), __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

/* Formats one line: {"time":..,"level":..,"request_id":..,"stage":..,"msg":..}.
 * req may be NULL: then sl_log_current, else a process-level message. */
void sl_log_write(int level, const struct sl_request *req, const char *file,
                  int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Writes one line with msg and every member of fields (a JSON object,
 * stolen; NULL allowed) at the top level. */
void sl_log_json(int level, const struct sl_request *req, const char *msg, json_t *fields);

/* Parses "error", "warn", "info", "debug"; -1 if none of them. */
int sl_log_parse_level(const char *s);

#endif

/* Log lines go to stderr as one JSON object each, written with a single
 * write(2) so lines from different threads and processes never interleave
 * (the web server's error log is shared by every responder). Jansson does
 * the escaping; nothing here ever sees a key or a prompt. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "log.h"
#include "request.h"

int sl_log_level = SL_LOG_INFO;
__thread const struct sl_request *sl_log_current;

#define SL_LOG_LINE_MAX 4096

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int sl_log_parse_level(const char *s)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return (int)i;
    if (strcasecmp(s, "warning") == 0)
        return SL_LOG_WARN;
    return -1;
}

/* msg and fields are stolen. */
static void emit(int level, const struct sl_request *req, json_t *msg,
                 json_t *fields, const char *file, int line)
{
    char ts[40], out[SL_LOG_LINE_MAX];
    struct timespec now;
    struct tm tm;
    json_t *o;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
    o = json_pack("{s:s, s:s}", "time", ts,
                  "level", level_names[level < 0 ? 0 : level > 3 ? 3 : level]);
    if (o == NULL || msg == NULL) {
        json_decref(o);
        json_decref(msg);
        json_decref(fields);
        return;
    }
    if (req == NULL)
        req = sl_log_current;
    if (req != NULL) {
        json_object_set_new(o, "request_id", json_string(req->id));
        if (req->stage != NULL)
            json_object_set_new(o, "stage", json_string(req->stage));
    }
    json_object_set_new(o, "msg", msg);
    if (fields != NULL) {
        json_object_update(o, fields);
        json_decref(fields);
    }
    if (file != NULL && sl_log_level >= SL_LOG_DEBUG) {
        char src[256];

        snprintf(src, sizeof(src), "%s:%d", file, line);
        json_object_set_new(o, "src", json_string(src));
    }
    n = json_dumpb(o, out, sizeof(out) - 1, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (n == 0 || n >= sizeof(out) - 1)
        return;
    out[n++] = '\n';
    if (write(STDERR_FILENO, out, n) < 0) {
        /* Nowhere left to report it. */
    }
}

void sl_log_write(int level, const struct sl_request *req, const char *file,
                  int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    json_t *v;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* vsnprintf may cut a UTF-8 sequence; Jansson then refuses the string,
     * so such a message is made ASCII-safe rather than lost. */
    if ((v = json_string(msg)) == NULL) {
        for (char *c = msg; *c; c++)
            if ((unsigned char)*c >= 0x80)
                *c = '?';
        v = json_string(msg);
    }
    emit(level, req, v, NULL, file, line);
}

void sl_log_json(int level, const struct sl_request *req, const char *msg, json_t *fields)
{
    if (level > sl_log_level) {
        json_decref(fields);
        return;
    }
    emit(level, req, json_string(msg), fields, NULL, 0);
}

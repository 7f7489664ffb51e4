/* What the case-folder tests (test_messages.c, test_responses.c) share:
 * reading a case's files, the client's side of a reply written to a
 * memconn, and the folders in name order. */
#ifndef SL_TEST_CASES_H
#define SL_TEST_CASES_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "arena.h"
#include "memconn.h"
#include "request.h"

/* dir/name parsed as JSON; NULL if absent or not JSON. */
static inline json_t *case_json(const char *dir, const char *name)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return json_load_file(path, 0, NULL);
}

/* The first line of dir/name (malloc'd), NULL if absent. */
static inline char *case_line(const char *dir, const char *name)
{
    char path[4096], line[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "r")) == NULL)
        return NULL;
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    return strdup(line);
}

/* The body after the CGI header block. */
static inline const char *case_body(const struct memconn *mc)
{
    const char *sep = mc->out.data ? strstr(mc->out.data, "\r\n\r\n") : NULL;

    return sep ? sep + 4 : "";
}

/* "event: X\ndata: {...}\n\n"... -> [[X, {...}], ...] */
static inline json_t *case_events(const char *p)
{
    json_t *out = json_array();

    while (p && *p) {
        const char *nl = strchr(p, '\n'), *data, *end;
        char name[96] = "";

        if (strncmp(p, "event: ", 7) == 0 && nl) {
            snprintf(name, sizeof(name), "%.*s", (int)(nl - p - 7), p + 7);
            p = nl + 1;
        }
        if (strncmp(p, "data: ", 6) != 0)
            break;
        data = p + 6;
        end = strstr(data, "\n\n");
        if (end == NULL)
            break;
        json_array_append_new(out, json_pack("[s, o]", name, json_loadb(data, (size_t)(end - data), 0, NULL)));
        p = end + 2;
    }
    return out;
}

/* An OpenAI usage object (borrowed) into req->usage, as the proxy reads it. */
static inline void case_usage(struct sl_request *req, const json_t *u)
{
    if (!json_is_object(u))
        return;
    req->usage.prompt_tokens = (long)json_integer_value(json_object_get(u, "prompt_tokens"));
    req->usage.completion_tokens = (long)json_integer_value(json_object_get(u, "completion_tokens"));
    req->usage.total_tokens = (long)json_integer_value(json_object_get(u, "total_tokens"));
    req->usage.cached_tokens = (long)json_integer_value(
        json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens"));
}

/* scandir's order: the case folders by name. */
static inline int case_by_name(const struct dirent **x, const struct dirent **y)
{
    return strcmp((*x)->d_name, (*y)->d_name);
}

/* Runs run(dir, name, a) for each case folder under $SL_TEST_DATA (else
 * tests/data) / sub, in name order; the number of cases. */
static inline int case_each(const char *sub, void (*run)(const char *dir, const char *name, struct sl_arena *a),
                            struct sl_arena *a)
{
    const char *data = getenv("SL_TEST_DATA") ? getenv("SL_TEST_DATA") : "tests/data";
    char root[1024];
    struct dirent **cs;
    int n, cases = 0;

    snprintf(root, sizeof(root), "%s/%s", data, sub);
    n = scandir(root, &cs, NULL, case_by_name);
    for (int i = 0; i < n; i++) {
        char dir[2048];

        if (cs[i]->d_name[0] != '.') {
            snprintf(dir, sizeof(dir), "%s/%s", root, cs[i]->d_name);
            run(dir, cs[i]->d_name, a);
            cases++;
        }
        free(cs[i]);
    }
    if (n >= 0)
        free(cs);
    return cases;
}

#endif

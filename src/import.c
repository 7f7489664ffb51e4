/* LiteLLM Postgres exports into sluice's tables (see import.h). The tables
 * below mirror schema/001_keys_teams_users.sql column by column, with the
 * type that says how a Postgres value arrives; a column the file has and the
 * table lacks is ignored, a column the table has and the file lacks keeps
 * its default. Reading is a compact RFC 4180 reader (what psql's \copy ...
 * CSV HEADER writes) and Jansson; nothing here knows about sluicectl. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "buf.h"
#include "import.h"
#include "status.h"

/* ---- the tables ---------------------------------------------------------- */

#define KEYCOL(n, len)  { n, SL_IMP_TEXT, len, NULL, 1 }
#define TXT(n, len)     { n, SL_IMP_TEXT, len, NULL, 0 }
#define TXTN(n, len)    { n, SL_IMP_TEXT, len, "''", 0 }
#define ARR(n)          { n, SL_IMP_ARRAY, 0, "'[]'", 0 }
#define JSN(n)          { n, SL_IMP_JSON, 0, NULL, 0 }
#define JSNN(n, d)      { n, SL_IMP_JSON, 0, d, 0 }
#define MONEY(n)        { n, SL_IMP_MONEY, 0, NULL, 0 }
#define MONEYN(n)       { n, SL_IMP_MONEY, 0, "0", 0 }
#define INT(n)          { n, SL_IMP_INT, 0, NULL, 0 }
#define BIG(n)          { n, SL_IMP_BIGINT, 0, NULL, 0 }
#define BOOL(n)         { n, SL_IMP_BOOL, 0, NULL, 0 }
#define BOOLN(n)        { n, SL_IMP_BOOL, 0, "FALSE", 0 }
#define TIME(n)         { n, SL_IMP_TIME, 0, NULL, 0 }
#define TIMEN(n)        { n, SL_IMP_TIME, 0, "CURRENT_TIMESTAMP(6)", 0 }
#define NCOLS(a)        (sizeof(a) / sizeof((a)[0]))

static const struct sl_import_col budget_cols[] = {
    KEYCOL("budget_id", 255), MONEY("max_budget"), MONEY("soft_budget"),
    INT("max_parallel_requests"), BIG("tpm_limit"), BIG("rpm_limit"), JSN("model_max_budget"),
    TXT("budget_duration", 32), TIME("budget_reset_at"), ARR("allowed_models"),
    TIMEN("created_at"), TXTN("created_by", 255), TIMEN("updated_at"), TXTN("updated_by", 255),
};

static const struct sl_import_col team_cols[] = {
    KEYCOL("team_id", 255), TXT("team_alias", 255), TXT("organization_id", 255),
    TXT("object_permission_id", 255), ARR("admins"), ARR("members"),
    JSNN("members_with_roles", "'[]'"), JSNN("metadata", "'{}'"), MONEY("max_budget"),
    MONEY("soft_budget"), MONEYN("spend"), ARR("models"), INT("max_parallel_requests"),
    BIG("tpm_limit"), BIG("rpm_limit"), TXT("budget_duration", 32), TIME("budget_reset_at"),
    BOOLN("blocked"), TIMEN("created_at"), TIMEN("updated_at"), JSNN("model_spend", "'{}'"),
    JSNN("model_max_budget", "'{}'"), JSN("router_settings"), ARR("team_member_permissions"),
    ARR("access_group_ids"), ARR("policies"), ARR("default_team_member_models"),
    JSN("budget_limits"), INT("model_id"), BOOLN("allow_team_guardrail_config"),
};

static const struct sl_import_col user_cols[] = {
    KEYCOL("user_id", 255), TXT("user_alias", 255), TXT("team_id", 255), TXT("sso_user_id", 255),
    TXT("organization_id", 255), TXT("object_permission_id", 255), TXT("password", 255),
    ARR("teams"), TXT("user_role", 64), MONEY("max_budget"), MONEYN("spend"),
    TXT("user_email", 255), ARR("models"), JSNN("metadata", "'{}'"),
    INT("max_parallel_requests"), BIG("tpm_limit"), BIG("rpm_limit"), TXT("budget_duration", 32),
    TIME("budget_reset_at"), ARR("allowed_cache_controls"), ARR("policies"),
    JSNN("model_spend", "'{}'"), JSNN("model_max_budget", "'{}'"), TIME("created_at"),
    TIME("updated_at"),
};

static const struct sl_import_col membership_cols[] = {
    KEYCOL("user_id", 255), KEYCOL("team_id", 255), MONEYN("spend"), TXT("budget_id", 255),
};

static const struct sl_import_col key_cols[] = {
    { "token", SL_IMP_TOKEN, 0, NULL, 1 }, TXT("key_name", 255), TXT("key_alias", 255),
    BOOLN("soft_budget_cooldown"), MONEYN("spend"), TIME("expires"), ARR("models"),
    JSNN("aliases", "'{}'"), JSNN("config", "'{}'"), JSN("router_settings"), TXT("user_id", 255),
    TXT("team_id", 255), TXT("agent_id", 255), TXT("project_id", 255),
    JSNN("permissions", "'{}'"), INT("max_parallel_requests"), JSNN("metadata", "'{}'"),
    BOOL("blocked"), BIG("tpm_limit"), BIG("rpm_limit"), MONEY("max_budget"),
    MONEY("soft_budget"), TXT("budget_duration", 32), TIME("budget_reset_at"),
    ARR("allowed_cache_controls"), ARR("allowed_routes"), ARR("policies"),
    ARR("access_group_ids"), JSNN("model_spend", "'{}'"), JSNN("model_max_budget", "'{}'"),
    TXT("budget_id", 255), TXT("organization_id", 255), TXT("object_permission_id", 255),
    TIME("created_at"), TXT("created_by", 255), TIME("updated_at"), TXT("updated_by", 255),
    TIME("last_active"), INT("rotation_count"), BOOL("auto_rotate"),
    TXT("rotation_interval", 32), TIME("last_rotation_at"), TIME("key_rotation_at"),
    JSN("budget_limits"),
};

static const struct sl_import_table t_budgets = {
    "budgets", "LiteLLM_BudgetTable", budget_cols, NCOLS(budget_cols), NULL, "budget"
};
static const struct sl_import_table t_teams = {
    "teams", "LiteLLM_TeamTable", team_cols, NCOLS(team_cols), "model_id", "team"
};
static const struct sl_import_table t_users = {
    "users", "LiteLLM_UserTable", user_cols, NCOLS(user_cols), "sso_user_id", "user"
};
static const struct sl_import_table t_memberships = {
    "memberships", "LiteLLM_TeamMembership", membership_cols, NCOLS(membership_cols), NULL,
    "membership"
};
static const struct sl_import_table t_keys = {
    "keys", "LiteLLM_VerificationToken", key_cols, NCOLS(key_cols), "key_alias", "key"
};

const struct sl_import_table *const sl_import_tables[] = {
    &t_budgets, &t_teams, &t_users, &t_memberships, &t_keys, NULL
};

const struct sl_import_table *sl_import_table_named(const char *name)
{
    for (size_t i = 0; sl_import_tables[i] != NULL; i++)
        if (strcmp(name, sl_import_tables[i]->name) == 0 ||
            strcmp(name, sl_import_tables[i]->sql_name) == 0)
            return sl_import_tables[i];
    return NULL;
}

static int col_index(const struct sl_import_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets err; returns SL_ERR_BAD_REQUEST. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return SL_ERR_BAD_REQUEST;
}

/* "row 3 (line 4)" into buf; rows of one JSON array have no line of their
 * own (lines[r] == 0): "row 3". */
static const char *row_name(const struct sl_import_doc *d, size_t r, char *buf, size_t size)
{
    if (d->lines[r] > 0)
        snprintf(buf, size, "row %zu (line %lu)", r + 1, d->lines[r]);
    else
        snprintf(buf, size, "row %zu", r + 1);
    return buf;
}

/* ---- CSV ----------------------------------------------------------------- */

struct csv_field {
    size_t off, len;          /* into the doc's text */
    int quoted;               /* "" is an empty string, an unquoted empty field is NULL */
};

struct csv {
    const char *p, *end;
    char *out;                /* the doc's text: unquoted fields, each NUL-terminated */
    size_t n_out;
    unsigned long line;
    struct csv_field *f;
    size_t n, cap;
};

static int csv_push(struct csv *c, size_t off, int quoted)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct csv_field *f = realloc(c->f, cap * sizeof(*f));

        if (f == NULL)
            return SL_ERR_NOMEM;
        c->f = f;
        c->cap = cap;
    }
    c->f[c->n].off = off;
    c->f[c->n].len = c->n_out - off;
    c->f[c->n].quoted = quoted;
    c->n++;
    c->out[c->n_out++] = '\0';
    return SL_OK;
}

/* Reads one field at c->p; *eol is set when it ended its record. */
static int csv_field(struct csv *c, int *eol, char *err, size_t errlen)
{
    size_t off = c->n_out;
    unsigned long start = c->line;
    int quoted = c->p < c->end && *c->p == '"';

    if (quoted) {
        for (c->p++;; c->p++) {
            if (c->p >= c->end)
                return fail(err, errlen, "line %lu: a quoted field is not closed", start);
            if (*c->p == '"' && c->p + 1 < c->end && c->p[1] == '"')
                c->p++;
            else if (*c->p == '"')
                break;
            else if (*c->p == '\n')
                c->line++;
            c->out[c->n_out++] = *c->p;
        }
        c->p++;
    } else {
        for (; c->p < c->end && *c->p != ',' && *c->p != '\n'; c->p++) {
            if (*c->p == '"')
                return fail(err, errlen, "line %lu: a quote inside an unquoted field", c->line);
            if (*c->p == '\r' && (c->p + 1 == c->end || c->p[1] == '\n'))
                continue;
            c->out[c->n_out++] = *c->p;
        }
    }
    if (c->p < c->end && *c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
        c->p++;
    if (c->p < c->end && *c->p != ',' && *c->p != '\n')
        return fail(err, errlen, "line %lu: text after a closing quote", c->line);
    *eol = c->p >= c->end || *c->p == '\n';
    if (c->p < c->end) {
        if (*c->p == '\n')
            c->line++;
        c->p++;
    }
    return csv_push(c, off, quoted);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* The header (the first record) into d->cols. */
static int csv_header(struct csv *c, struct sl_import_doc *d, char *err, size_t errlen)
{
    int eol = 0, rc;

    while (!eol)
        if ((rc = csv_field(c, &eol, err, errlen)) != SL_OK)
            return rc;
    if ((d->cols = calloc(c->n, sizeof(*d->cols))) == NULL)
        return SL_ERR_NOMEM;
    d->n_cols = c->n;
    for (size_t i = 0; i < c->n; i++) {
        if (c->f[i].len == 0)
            return fail(err, errlen, "line 1: column %zu of the header has no name", i + 1);
        if ((d->cols[i] = dup_n(c->out + c->f[i].off, c->f[i].len)) == NULL)
            return SL_ERR_NOMEM;
    }
    c->n = 0;
    return SL_OK;
}

/* The records after the header: fields into c->f, row starts into lines. */
static int csv_rows(struct csv *c, struct sl_import_doc *d, char *err, size_t errlen)
{
    size_t cap = 0;
    int rc;

    while (c->p < c->end) {
        unsigned long line = c->line;
        size_t first = c->n;
        int eol = 0;

        /* An empty line is no row (psql writes none; editors add one at the end). */
        if (*c->p == '\n' || (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')) {
            c->p += *c->p == '\r' ? 2 : 1;
            c->line++;
            continue;
        }
        while (!eol)
            if ((rc = csv_field(c, &eol, err, errlen)) != SL_OK)
                return rc;
        if (c->n - first != d->n_cols)
            return fail(err, errlen, "row %zu (line %lu): %zu fields, the header has %zu",
                        d->n_rows + 1, line, c->n - first, d->n_cols);
        if (d->n_rows == cap) {
            unsigned long *l = realloc(d->lines, (cap = cap ? cap * 2 : 64) * sizeof(*l));

            if (l == NULL)
                return SL_ERR_NOMEM;
            d->lines = l;
        }
        d->lines[d->n_rows++] = line;
    }
    return SL_OK;
}

static int parse_csv(const char *data, size_t len, struct sl_import_doc *d, char *err,
                     size_t errlen)
{
    struct csv c = { data, data + len, NULL, 0, 1, NULL, 0, 0 };
    int rc;

    d->format = SL_IMPORT_CSV;
    /* every field's text plus its NUL fits in the field's bytes plus its separator */
    if ((c.out = d->text = malloc(len + 1)) == NULL)
        return SL_ERR_NOMEM;
    if ((rc = csv_header(&c, d, err, errlen)) != SL_OK ||
        (rc = csv_rows(&c, d, err, errlen)) != SL_OK)
        goto out;
    if (d->n_rows > 0 && (d->cells = calloc(c.n, sizeof(*d->cells))) == NULL) {
        rc = SL_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < c.n && d->n_rows > 0; i++) {
        struct sl_import_cell *cell = &d->cells[i];

        if (c.f[i].len == 0 && !c.f[i].quoted) {
            cell->kind = SL_IMPORT_NULL;
            continue;
        }
        cell->kind = SL_IMPORT_STR;
        cell->s = d->text + c.f[i].off;
        cell->len = c.f[i].len;
    }
out:
    free(c.f);
    return rc;
}

/* ---- JSON ---------------------------------------------------------------- */

/* The line of data[off], counting on from a previous answer (*line at *from). */
static unsigned long line_at(const char *data, size_t off, size_t *from, unsigned long *line)
{
    for (; *from < off; (*from)++)
        *line += data[*from] == '\n';
    return *line;
}

/* Adds the names of o's members that are not columns yet. */
static int json_add_cols(struct sl_import_doc *d, const json_t *o, size_t *cap)
{
    const char *name;
    size_t known = 0;
    json_t *v;

    /* the usual case, every row with the same members: no name compared */
    for (size_t k = 0; k < d->n_cols; k++)
        known += json_object_get(o, d->cols[k]) != NULL;
    if (known == json_object_size(o))
        return SL_OK;
    json_object_foreach((json_t *)o, name, v) {
        size_t i;

        (void)v;
        for (i = 0; i < d->n_cols && strcmp(d->cols[i], name) != 0; i++)
            ;
        if (i < d->n_cols)
            continue;
        if (d->n_cols == *cap) {
            char **cols = realloc(d->cols, (*cap = *cap ? *cap * 2 : 64) * sizeof(*cols));

            if (cols == NULL)
                return SL_ERR_NOMEM;
            d->cols = cols;
        }
        if ((d->cols[d->n_cols] = strdup(name)) == NULL)
            return SL_ERR_NOMEM;
        d->n_cols++;
    }
    return SL_OK;
}

/* The rows of d->json (an array of objects) into cells. */
static int json_cells(struct sl_import_doc *d, char *err, size_t errlen)
{
    char where[64];
    size_t cap = 0, i;
    json_t *row;
    int rc;

    json_array_foreach(d->json, i, row) {
        if (!json_is_object(row))
            return fail(err, errlen, "%s: not a JSON object", row_name(d, i, where, sizeof(where)));
        if ((rc = json_add_cols(d, row, &cap)) != SL_OK)
            return rc;
    }
    d->n_rows = json_array_size(d->json);
    if (d->n_rows > 0 && (d->cells = calloc(d->n_rows * d->n_cols, sizeof(*d->cells))) == NULL)
        return SL_ERR_NOMEM;
    json_array_foreach(d->json, i, row) {
        for (size_t k = 0; k < d->n_cols; k++) {
            struct sl_import_cell *cell = &d->cells[i * d->n_cols + k];
            const json_t *v = json_object_get(row, d->cols[k]);

            if (v == NULL || json_is_null(v)) {
                cell->kind = SL_IMPORT_NULL;
            } else if (json_is_string(v)) {
                cell->kind = SL_IMPORT_STR;
                cell->s = json_string_value(v);
                cell->len = json_string_length(v);
                cell->j = v;    /* a jsonb column may hold a JSON string */
            } else {
                cell->kind = SL_IMPORT_JSON;
                cell->j = v;
            }
        }
    }
    return SL_OK;
}

/* Room for n more row lines. */
static int more_lines(struct sl_import_doc *d, size_t n, size_t *cap)
{
    unsigned long *l;

    if (d->n_rows + n <= *cap)
        return SL_OK;
    *cap = (d->n_rows + n) * 2;
    if ((l = realloc(d->lines, *cap * sizeof(*l))) == NULL)
        return SL_ERR_NOMEM;
    d->lines = l;
    return SL_OK;
}

/* One JSON array of rows, or one JSON value after another (JSON lines). */
static int parse_json(const char *data, size_t len, size_t at, struct sl_import_doc *d,
                      char *err, size_t errlen)
{
    size_t cap = 0, from = 0;
    unsigned long line = 1, here;
    int seen = 0, rc = SL_OK;
    json_error_t e;
    json_t *v = NULL;

    d->format = data[at] == '[' ? SL_IMPORT_JSON_ARRAY : SL_IMPORT_JSON_LINES;
    if ((d->json = json_array()) == NULL)
        return SL_ERR_NOMEM;
    for (; at < len; at += e.position, json_decref(v), v = NULL) {
        size_t n;

        while (at < len && isspace((unsigned char)data[at]))
            at++;
        if (at == len)
            break;
        here = line_at(data, at, &from, &line);
        if (d->format == SL_IMPORT_JSON_ARRAY && seen)
            return fail(err, errlen, "line %lu: text after the JSON array", here);
        v = json_loadb(data + at, len - at, JSON_DISABLE_EOF_CHECK, &e);
        /* JSON lines: the row's own line; an array: where Jansson stopped.
         * Jansson refuses integers beyond 64 bits, which jsonb may hold:
         * rather than round them through a double, ask for CSV (whose
         * jsonb text is passed on as written). */
        if (v == NULL)
            return fail(err, errlen, "line %lu: invalid JSON: %s%s",
                        here + (d->format == SL_IMPORT_JSON_ARRAY && e.line > 0
                                ? (unsigned long)e.line - 1 : 0), e.text,
                        strstr(e.text, "too big integer") != NULL
                        ? " (an integer beyond 64 bits: export this table as CSV)" : "");
        seen = 1;
        n = d->format == SL_IMPORT_JSON_ARRAY ? json_array_size(v) : 1;
        if ((rc = more_lines(d, n, &cap)) != SL_OK)
            break;
        for (size_t i = 0; i < n; i++)   /* the rows of one array: no line of their own */
            d->lines[d->n_rows++] = d->format == SL_IMPORT_JSON_ARRAY ? 0 : here;
        if (d->format == SL_IMPORT_JSON_ARRAY ? json_array_extend(d->json, v)
                                              : json_array_append(d->json, v)) {
            rc = SL_ERR_NOMEM;
            break;
        }
    }
    json_decref(v);
    d->n_rows = 0;
    return rc != SL_OK ? rc : json_cells(d, err, errlen);
}

int sl_import_parse(const char *data, size_t len, struct sl_import_doc *out, char *err,
                    size_t errlen)
{
    size_t at = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    snprintf(err, errlen, "%s", "");
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        data += 3, len -= 3;
    while (at < len && isspace((unsigned char)data[at]))
        at++;
    if (at == len)
        return SL_OK;
    if (data[at] == '[' || data[at] == '{')
        rc = parse_json(data, len, at, out, err, errlen);
    else
        rc = parse_csv(data, len, out, err, errlen);
    if (rc == SL_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}

void sl_import_doc_free(struct sl_import_doc *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n_cols && d->cols != NULL; i++)
        free(d->cols[i]);
    free(d->cols);
    free(d->cells);
    free(d->lines);
    free(d->text);
    json_decref(d->json);
    memset(d, 0, sizeof(*d));
}

/* ---- which table --------------------------------------------------------- */

/* How many of d's columns t has, or -1 when a primary key column is missing. */
static int coverage(const struct sl_import_table *t, const struct sl_import_doc *d)
{
    int n = 0;

    for (size_t i = 0; i < t->n_cols; i++) {
        int found = 0;

        for (size_t k = 0; k < d->n_cols && !found; k++)
            found = strcmp(t->cols[i].name, d->cols[k]) == 0;
        if (t->cols[i].key && !found)
            return -1;
        n += found;
    }
    return n;
}

const struct sl_import_table *sl_import_detect(const struct sl_import_doc *d, char *err,
                                               size_t errlen)
{
    const struct sl_import_table *best = NULL;
    int best_n = 0, tie = 0;

    for (size_t i = 0; sl_import_tables[i] != NULL; i++) {
        int n = coverage(sl_import_tables[i], d);

        if (n > best_n) {
            best = sl_import_tables[i];
            best_n = n;
            tie = 0;
        } else if (n == best_n && n > 0) {
            tie = 1;
        }
    }
    if (best == NULL || tie) {
        fail(err, errlen, "cannot tell which table the columns are from%s: name it with --table",
             tie ? " (more than one fits)" : "");
        return NULL;
    }
    return best;
}

void sl_import_ignored(const struct sl_import_table *t, const struct sl_import_doc *d,
                       char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t k = 0; k < d->n_cols; k++) {
        int n;

        if (col_index(t, d->cols[k]) >= 0)
            continue;
        n = snprintf(out + used, size - used, "%s%s", used ? ", " : "", d->cols[k]);
        if (n < 0 || (size_t)n >= size - used) {
            snprintf(out + (size > 4 ? size - 4 : 0), size > 4 ? 4 : size, "...");
            return;
        }
        used += (size_t)n;
    }
}

/* ---- cells into values --------------------------------------------------- */

/* The number of UTF-8 characters in s, or -1 when s is not UTF-8 (or holds a NUL). */
static long utf8_chars(const unsigned char *s, size_t len)
{
    long n = 0;

    for (size_t i = 0; i < len; n++) {
        unsigned c = s[i], need, min;
        unsigned long cp;

        if (c == 0)
            return -1;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1, min = 0x80, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2, min = 0x800, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, min = 0x10000, cp = c & 0x07;
        else
            return -1;
        if (len - i <= need)
            return -1;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        i += need + 1;
    }
    return n;
}

/* Appends one byte to a growing string. */
static int put(char **b, size_t *n, size_t *cap, char ch)
{
    if (*n + 2 > *cap) {
        char *nb = realloc(*b, *cap = (*cap + 16) * 2);

        if (nb == NULL)
            return SL_ERR_NOMEM;
        *b = nb;
    }
    (*b)[(*n)++] = ch;
    (*b)[*n] = '\0';
    return SL_OK;
}

/* Reads one element of a Postgres array literal at s[*i] into a new Jansson
 * string appended to arr. Quoted: backslash escapes any character; unquoted:
 * trimmed, backslash escapes too, NULL (any case) is a NULL element. */
static int pg_element(const char *s, size_t len, size_t *i, json_t *arr, char *err,
                      size_t errlen)
{
    char *b = NULL;
    size_t n = 0, cap = 0, last = 0;   /* last: length up to the last escaped or non-space */
    int quoted = s[*i] == '"', rc = SL_OK, escaped_any = 0, closed = 0;

    for (*i += quoted; *i < len; (*i)++) {
        char ch = s[*i];
        int esc = 0;

        if (quoted && ch == '"') {
            (*i)++;
            closed = 1;
            break;
        }
        if (!quoted && (ch == ',' || ch == '}'))
            break;
        if (!quoted && (ch == '{' || ch == '"')) {
            rc = fail(err, errlen, "a Postgres array with nested arrays or a stray quote");
            goto out;
        }
        if (ch == '\\') {
            if (++*i >= len)
                break;
            ch = s[*i];
            escaped_any = esc = 1;
        } else if (!quoted && n == 0 && isspace((unsigned char)ch)) {
            continue;
        }
        if ((rc = put(&b, &n, &cap, ch)) != SL_OK)
            goto out;
        if (quoted || esc || !isspace((unsigned char)ch))
            last = n;
    }
    if (quoted && !closed) {
        rc = fail(err, errlen, "a Postgres array with an unterminated quoted element");
        goto out;
    }
    if (!quoted)
        n = last;
    if (!quoted && !escaped_any && n == 4 && strncasecmp(b, "NULL", 4) == 0) {
        rc = fail(err, errlen, "a NULL element in an array");
        goto out;
    }
    if (!quoted && n == 0) {
        rc = fail(err, errlen, "an empty element in a Postgres array (write \"\")");
        goto out;
    }
    if (utf8_chars((const unsigned char *)(b ? b : ""), n) < 0) {
        rc = fail(err, errlen, "not valid UTF-8");
        goto out;
    }
    rc = json_array_append_new(arr, json_stringn(b ? b : "", n)) ? SL_ERR_NOMEM : SL_OK;
out:
    free(b);
    return rc;
}

int sl_import_pg_array(const char *s, size_t len, char **out, char *err, size_t errlen)
{
    json_t *arr = json_array();
    size_t i = 0;
    int rc = SL_OK;

    *out = NULL;
    if (arr == NULL)
        return SL_ERR_NOMEM;
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    while (len > i && isspace((unsigned char)s[len - 1]))
        len--;
    if (len - i < 2 || s[i] != '{' || s[len - 1] != '}') {
        rc = fail(err, errlen, "not a Postgres array ({a,b,...}) or a JSON array");
        goto out;
    }
    i++;
    len--;                               /* s[i..len) is between the braces */
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    while (i < len && rc == SL_OK) {
        while (i < len && isspace((unsigned char)s[i]))
            i++;
        if ((rc = pg_element(s, len, &i, arr, err, errlen)) != SL_OK)
            break;
        while (i < len && isspace((unsigned char)s[i]))
            i++;
        if (i < len && s[i] != ',')
            rc = fail(err, errlen, "a Postgres array element followed by text");
        else if (i < len && ++i == len)
            rc = fail(err, errlen, "a Postgres array ending in a comma");
    }
    if (rc == SL_OK && (*out = json_dumps(arr, JSON_COMPACT)) == NULL)
        rc = SL_ERR_NOMEM;
out:
    json_decref(arr);
    return rc;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    long long era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* n digits at *p into *v; advances *p. */
static int digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int k = 0; k < n; k++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return 0;
        *v = *v * 10 + (**p - '0');
    }
    return 1;
}

/* The offset part: "", "Z", "+HH", "+HH:MM", "+HHMM", "+HH:MM:SS"; seconds east. */
static int parse_offset(const char *p, long *off)
{
    int sign, h = 0, m = 0, s = 0;

    *off = 0;
    if (*p == '\0')
        return 1;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return 1;
    if (*p != '+' && *p != '-')
        return 0;
    sign = *p++ == '-' ? -1 : 1;
    if (!digits(&p, 2, &h))
        return 0;
    if (*p == ':')
        p++;
    if (*p != '\0' && !digits(&p, 2, &m))
        return 0;
    if (*p == ':' && (p++, !digits(&p, 2, &s)))
        return 0;
    if (*p != '\0' || h > 15 || m > 59 || s > 59)
        return 0;
    *off = sign * (h * 3600L + m * 60L + s);
    return 1;
}

int sl_import_time(const char *s, long long *us, char *err, size_t errlen)
{
    static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, scale = 1000000;
    long off;

    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        goto bad;
    if (*p == ' ' || *p == 'T') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            goto bad;
        if (*p == ':' && (p++, !digits(&p, 2, &sec)))
            goto bad;
        if (*p == '.') {
            for (p++; isdigit((unsigned char)*p); p++)
                if (scale > 1)
                    frac += (*p - '0') * (scale /= 10);
            if (scale == 1000000)
                goto bad;
        }
    }
    if (!parse_offset(p, &off))
        goto bad;
    if (y < 1000 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) ||
        h > 23 || mi > 59 || sec > 59)
        goto bad;
    *us = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400LL + h * 3600LL + mi * 60LL +
            sec - off) * 1000000LL) + frac;
    /* DATETIME's range, after the offset moved it */
    if (*us < -30610224000000000LL || *us > 253402300799999999LL)
        goto bad;
    return SL_OK;
bad:
    return fail(err, errlen, "not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]], years "
                "1000 to 9999)");
}

/* ---- one cell ------------------------------------------------------------ */

static int map_text(const struct sl_import_col *c, const struct sl_import_cell *cell,
                    struct sl_db_param *p, char *err, size_t errlen)
{
    long n;

    if (cell->kind != SL_IMPORT_STR)
        return fail(err, errlen, "expected a string");
    if ((n = utf8_chars((const unsigned char *)cell->s, cell->len)) < 0)
        return fail(err, errlen, "not valid UTF-8");
    if (c->maxlen > 0 && (unsigned long)n > c->maxlen)
        return fail(err, errlen, "longer than %u characters", c->maxlen);
    *p = sl_db_textn(cell->s, cell->len);
    return SL_OK;
}

/* LiteLLM stores SHA-256 hex; with hashing off (old versions) the raw key. */
static int map_token(const struct sl_import_cell *cell, struct sl_db_param *p, char **owned,
                     char *err, size_t errlen)
{
    size_t hex = 0;

    if (cell->kind != SL_IMPORT_STR)
        return fail(err, errlen, "expected a string");
    while (hex < cell->len && isxdigit((unsigned char)cell->s[hex]))
        hex++;
    if ((*owned = malloc(65)) == NULL)
        return SL_ERR_NOMEM;
    if (cell->len == 64 && hex == 64) {
        for (size_t i = 0; i < 64; i++)
            (*owned)[i] = (char)tolower((unsigned char)cell->s[i]);
        (*owned)[64] = '\0';
    } else if (cell->len > 3 && strncmp(cell->s, "sk-", 3) == 0 && strlen(cell->s) == cell->len) {
        sl_auth_hash_key(cell->s, *owned);
    } else {
        return fail(err, errlen, "neither a SHA-256 hex digest (64 hex digits) nor a key "
                    "starting with sk-");
    }
    *p = sl_db_textn(*owned, 64);
    return SL_OK;
}

/* A JSON array of strings, as compact text in *owned. */
static int array_of_strings(const json_t *v, char **owned, char *err, size_t errlen)
{
    const json_t *e;
    size_t i;

    if (!json_is_array(v))
        return fail(err, errlen, "not an array");
    json_array_foreach(v, i, e)
        if (!json_is_string(e))
            return fail(err, errlen, "an array element that is not a string");
    return (*owned = json_dumps(v, JSON_COMPACT)) == NULL ? SL_ERR_NOMEM : SL_OK;
}

static int map_array(const struct sl_import_cell *cell, struct sl_db_param *p, char **owned,
                     char *err, size_t errlen)
{
    const char *s = cell->s;
    json_t *v;
    int rc;

    if (cell->kind == SL_IMPORT_JSON) {
        rc = array_of_strings(cell->j, owned, err, errlen);
    } else {
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '[') {   /* already JSON (a hand-made export) */
            if ((v = json_loadb(cell->s, cell->len, 0, NULL)) == NULL)
                return fail(err, errlen, "not a valid JSON array");
            rc = array_of_strings(v, owned, err, errlen);
            json_decref(v);
        } else {
            rc = sl_import_pg_array(cell->s, cell->len, owned, err, errlen);
        }
    }
    if (rc == SL_OK)
        *p = sl_db_text(*owned);
    return rc;
}

/* v as compact JSON text (malloc'ed), its reals with 15 significant digits
 * when the whole text then reads back as the same value (0.1, not Jansson's
 * default 0.10000000000000001), else with 17. NULL on OOM. */
static char *dump_short(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    json_t *back = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    int same = back != NULL && json_equal(back, (json_t *)v);

    json_decref(back);
    if (same || s == NULL)
        return s;
    free(s);
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int map_json(const struct sl_import_cell *cell, struct sl_db_param *p, char **owned,
                    char *err, size_t errlen)
{
    json_error_t e;
    json_t *v;

    if (cell->j != NULL) {   /* from a JSON file: any value, strings included */
        if ((*owned = dump_short(cell->j)) == NULL)
            return SL_ERR_NOMEM;
        *p = sl_db_text(*owned);
        return SL_OK;
    }
    /* CSV: jsonb's own text; checked here, passed on as written (integers
     * beyond 64 bits are valid jsonb: read as reals just for the check) */
    if ((v = json_loadb(cell->s, cell->len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &e)) == NULL)
        return fail(err, errlen, "not valid JSON (%s)", e.text);
    json_decref(v);
    *p = sl_db_textn(cell->s, cell->len);
    return SL_OK;
}

/* A number: a JSON number, or text strtod reads whole. 0 when it is not one. */
static int number_of(const struct sl_import_cell *cell, double *d)
{
    char *end;

    if (cell->kind == SL_IMPORT_JSON) {
        if (!json_is_number(cell->j))
            return 0;
        *d = json_number_value(cell->j);
        return 1;
    }
    if (cell->len == 0 || isspace((unsigned char)cell->s[0]))
        return 0;
    errno = 0;
    *d = strtod(cell->s, &end);
    return *end == '\0' && errno == 0;
}

static int map_money(const struct sl_import_cell *cell, struct sl_db_param *p, char **owned,
                     char *err, size_t errlen)
{
    double d;

    if (!number_of(cell, &d) || !isfinite(d))
        return fail(err, errlen, "not a number");
    if (d >= 1e10 || d <= -1e10)
        return fail(err, errlen, "out of range (at most 10 integer digits)");
    if ((*owned = malloc(40)) == NULL)
        return SL_ERR_NOMEM;
    snprintf(*owned, 40, "%.10f", d);
    *p = sl_db_text(*owned);
    return SL_OK;
}

static int map_int(const struct sl_import_col *c, const struct sl_import_cell *cell,
                   struct sl_db_param *p, char *err, size_t errlen)
{
    long long v, lim = c->type == SL_IMP_INT ? 2147483647LL : 9223372036854775807LL;
    char *end;

    if (cell->kind == SL_IMPORT_JSON && json_is_integer(cell->j)) {
        v = json_integer_value(cell->j);
    } else if (cell->kind == SL_IMPORT_STR && cell->len > 0 &&
               !isspace((unsigned char)cell->s[0])) {
        errno = 0;
        v = strtoll(cell->s, &end, 10);
        if (*end != '\0' || errno != 0)
            return fail(err, errlen, "not an integer");
    } else {
        return fail(err, errlen, "not an integer");
    }
    if (v > lim || v < -lim - 1)
        return fail(err, errlen, "out of range");
    *p = sl_db_int(v);
    return SL_OK;
}

static int map_bool(const struct sl_import_cell *cell, struct sl_db_param *p, char *err,
                    size_t errlen)
{
    static const char *const yes[] = { "t", "true", "1", "y", "yes", "on" };
    static const char *const no[] = { "f", "false", "0", "n", "no", "off" };

    if (cell->kind == SL_IMPORT_JSON && json_is_boolean(cell->j)) {
        *p = sl_db_int(json_is_true(cell->j));
        return SL_OK;
    }
    for (size_t i = 0; cell->kind == SL_IMPORT_STR && i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(cell->s, yes[i]) == 0 || strcasecmp(cell->s, no[i]) == 0) {
            *p = sl_db_int(strcasecmp(cell->s, yes[i]) == 0);
            return SL_OK;
        }
    }
    return fail(err, errlen, "not a boolean (t or f)");
}

int sl_import_map_cell(const struct sl_import_col *c, const struct sl_import_cell *cell,
                       struct sl_db_param *p, char **owned, char *err, size_t errlen)
{
    long long us;
    int rc;

    *owned = NULL;
    if (cell->kind == SL_IMPORT_NULL || (c->key && cell->kind == SL_IMPORT_STR && cell->len == 0)) {
        if (c->key)
            return fail(err, errlen, "empty (it is part of the %s's identity)",
                        c->type == SL_IMP_TOKEN ? "key" : "row");
        *p = sl_db_null();
        return SL_OK;
    }
    switch (c->type) {
    case SL_IMP_TEXT: return map_text(c, cell, p, err, errlen);
    case SL_IMP_TOKEN: rc = map_token(cell, p, owned, err, errlen); break;
    case SL_IMP_ARRAY: rc = map_array(cell, p, owned, err, errlen); break;
    case SL_IMP_JSON: rc = map_json(cell, p, owned, err, errlen); break;
    case SL_IMP_MONEY: rc = map_money(cell, p, owned, err, errlen); break;
    case SL_IMP_INT:
    case SL_IMP_BIGINT: return map_int(c, cell, p, err, errlen);
    case SL_IMP_BOOL: return map_bool(cell, p, err, errlen);
    default:
        if (cell->kind != SL_IMPORT_STR)
            return fail(err, errlen, "expected a timestamp string");
        if ((rc = sl_import_time(cell->s, &us, err, errlen)) == SL_OK)
            *p = sl_db_time_us(us);
        return rc;
    }
    if (rc != SL_OK) {
        free(*owned);
        *owned = NULL;
    }
    return rc;
}

/* ---- writing ------------------------------------------------------------- */

#define SQL_CAP (64u << 10)   /* the statements name at most ~50 columns */

/* What a file's columns become: the statements and, per table column used,
 * the file column it comes from. */
struct plan {
    const struct sl_import_table *t;
    int *from;                /* per used column: the doc column */
    int *col;                 /* per used column: the table column */
    size_t n;
    int unique_at;            /* index into the used columns of t->unique, or -1 */
    struct sl_buf upsert, exists, unique;
};

static int key_where(struct sl_buf *b, const struct plan *pl)
{
    int first = 1, rc = SL_OK;

    for (size_t i = 0; i < pl->n && rc == SL_OK; i++) {
        if (!pl->t->cols[pl->col[i]].key)
            continue;
        rc = sl_buf_printf(b, "%s`%s` = ?", first ? "" : " AND ", pl->t->cols[pl->col[i]].name);
        first = 0;
    }
    return rc;
}

static int build_sql(struct plan *pl)
{
    const struct sl_import_table *t = pl->t;
    int rc, any = 0;

    rc = sl_buf_printf(&pl->upsert, "INSERT INTO `%s` (", t->sql_name);
    for (size_t i = 0; i < pl->n && rc == SL_OK; i++)
        rc = sl_buf_printf(&pl->upsert, "%s`%s`", i ? ", " : "", t->cols[pl->col[i]].name);
    if (rc == SL_OK)
        rc = sl_buf_puts(&pl->upsert, ") VALUES (");
    for (size_t i = 0; i < pl->n && rc == SL_OK; i++) {
        const char *def = t->cols[pl->col[i]].if_null;

        rc = def ? sl_buf_printf(&pl->upsert, "%sCOALESCE(?, %s)", i ? ", " : "", def)
                 : sl_buf_printf(&pl->upsert, "%s?", i ? ", " : "");
    }
    if (rc == SL_OK)
        rc = sl_buf_puts(&pl->upsert, ") ON DUPLICATE KEY UPDATE ");
    for (size_t i = 0; i < pl->n && rc == SL_OK; i++) {
        const char *name = t->cols[pl->col[i]].name;

        if (t->cols[pl->col[i]].key)
            continue;
        rc = sl_buf_printf(&pl->upsert, "%s`%s` = VALUES(`%s`)", any ? ", " : "", name, name);
        any = 1;
    }
    if (rc == SL_OK && !any)   /* only the key columns: nothing to update */
        rc = sl_buf_printf(&pl->upsert, "`%s` = `%s`", t->cols[pl->col[0]].name,
                           t->cols[pl->col[0]].name);
    if (rc == SL_OK)
        rc = sl_buf_printf(&pl->exists, "SELECT 1 FROM `%s` WHERE ", t->sql_name);
    if (rc == SL_OK)
        rc = key_where(&pl->exists, pl);
    if (rc == SL_OK && pl->unique_at >= 0) {
        rc = sl_buf_printf(&pl->unique, "SELECT 1 FROM `%s` WHERE `%s` = ? AND NOT (",
                           t->sql_name, t->unique);
        if (rc == SL_OK)
            rc = key_where(&pl->unique, pl);
        if (rc == SL_OK)
            rc = sl_buf_puts(&pl->unique, ") LIMIT 1");
    }
    return rc;
}

static void plan_free(struct plan *pl)
{
    free(pl->from);
    free(pl->col);
    sl_buf_free(&pl->upsert);
    sl_buf_free(&pl->exists);
    sl_buf_free(&pl->unique);
}

/* Maps d's columns onto t; every key column must be there, none twice. */
static int plan_make(struct plan *pl, const struct sl_import_table *t,
                     const struct sl_import_doc *d, char *err, size_t errlen)
{
    memset(pl, 0, sizeof(*pl));
    pl->t = t;
    pl->unique_at = -1;
    sl_buf_init(&pl->upsert, SQL_CAP);
    sl_buf_init(&pl->exists, SQL_CAP);
    sl_buf_init(&pl->unique, SQL_CAP);
    if ((pl->from = calloc(t->n_cols, sizeof(int))) == NULL ||
        (pl->col = calloc(t->n_cols, sizeof(int))) == NULL)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < t->n_cols; i++) {
        int at = -1;

        for (size_t k = 0; k < d->n_cols; k++) {
            if (strcmp(d->cols[k], t->cols[i].name) != 0)
                continue;
            if (at >= 0)
                return fail(err, errlen, "column %s appears twice", t->cols[i].name);
            at = (int)k;
        }
        if (at < 0 && t->cols[i].key)
            return fail(err, errlen, "the file has no %s column (%s needs it)", t->cols[i].name,
                        t->sql_name);
        if (at < 0)
            continue;
        if (t->unique != NULL && strcmp(t->unique, t->cols[i].name) == 0)
            pl->unique_at = (int)pl->n;
        pl->from[pl->n] = at;
        pl->col[pl->n++] = (int)i;
    }
    return build_sql(pl);
}

/* Fills params (and the key's in kparams, in key_where's order) for row r. */
static int map_row(const struct plan *pl, const struct sl_import_doc *d, size_t r,
                   struct sl_db_param *params, struct sl_db_param *kparams, size_t *nk,
                   char **owned, char *err, size_t errlen)
{
    char why[256], where[64];
    int rc;

    *nk = 0;
    for (size_t i = 0; i < pl->n; i++) {
        const struct sl_import_col *c = &pl->t->cols[pl->col[i]];

        rc = sl_import_map_cell(c, &d->cells[r * d->n_cols + (size_t)pl->from[i]], &params[i],
                                &owned[i], why, sizeof(why));
        if (rc == SL_ERR_NOMEM) {
            snprintf(err, errlen, "out of memory");
            return rc;
        }
        if (rc != SL_OK)
            return fail(err, errlen, "%s, column %s: %s", row_name(d, r, where, sizeof(where)),
                        c->name, why);
        if (c->key)
            kparams[1 + (*nk)++] = params[i];
    }
    return SL_OK;
}

/* Whether the query finds a row: 1, 0, or -1 on a database error. */
static int found(struct sl_db *db, const struct sl_buf *sql, const struct sl_db_param *p,
                 size_t n)
{
    int row = 0;

    if (sl_db_query(db, sql->data, p, n) != SL_OK || sl_db_fetch(db, &row) != SL_OK)
        return -1;
    sl_db_query_end(db);
    return row;
}

static int db_fail(struct sl_db *db, const struct sl_import_doc *d, size_t r, char *err,
                   size_t errlen)
{
    char where[64];

    snprintf(err, errlen, "%s: %s", row_name(d, r, where, sizeof(where)),
             sl_db_last_error(db)->message);
    return sl_db_errkind_status(sl_db_last_error(db)->kind);
}

/* One row: checked, then upserted. */
static int write_row(struct sl_db *db, const struct plan *pl, const struct sl_import_doc *d,
                     size_t r, struct sl_db_param *params, struct sl_import_stats *st,
                     char *err, size_t errlen)
{
    struct sl_db_param *kp = params + pl->n;   /* [unique value, key...] */
    char **owned = (char **)(kp + pl->n + 1), where[64];
    size_t nk = 0;
    int rc, there;

    memset(owned, 0, pl->n * sizeof(*owned));
    if ((rc = map_row(pl, d, r, params, kp, &nk, owned, err, errlen)) != SL_OK)
        goto out;
    if (pl->unique_at >= 0 && params[pl->unique_at].type != SL_DB_T_NULL) {
        kp[0] = params[pl->unique_at];
        if ((there = found(db, &pl->unique, kp, nk + 1)) < 0) {
            rc = db_fail(db, d, r, err, errlen);
            goto out;
        }
        if (there) {
            rc = fail(err, errlen, "%s, column %s: another %s already has this "
                      "%s (rename one of them first)", row_name(d, r, where, sizeof(where)),
                      pl->t->unique,
                      pl->t->what, pl->t->unique);
            goto out;
        }
    }
    if ((there = found(db, &pl->exists, kp + 1, nk)) < 0 ||
        sl_db_exec(db, pl->upsert.data, params, pl->n, NULL) != SL_OK) {
        rc = db_fail(db, d, r, err, errlen);
        goto out;
    }
    st->rows++;
    if (there)
        st->updated++;
    else
        st->inserted++;
out:
    for (size_t i = 0; i < pl->n; i++)
        free(owned[i]);
    return rc;
}

int sl_import_run(struct sl_db *db, const struct sl_import_table *t,
                  const struct sl_import_doc *d, int dry_run, struct sl_import_stats *st,
                  char *err, size_t errlen)
{
    struct sl_db_param *params = NULL;
    struct plan pl;
    int rc, begun = 0;

    memset(st, 0, sizeof(*st));
    snprintf(err, errlen, "%s", "");
    sl_import_ignored(t, d, st->ignored, sizeof(st->ignored));
    if ((rc = plan_make(&pl, t, d, err, errlen)) != SL_OK)
        goto out;
    /* params, then [unique, keys...], then the owned strings of one row */
    params = malloc(pl.n * (2 * sizeof(*params) + sizeof(char *)) + sizeof(*params));
    if (params == NULL) {
        rc = SL_ERR_NOMEM;
        goto out;
    }
    if ((rc = sl_db_begin(db)) != SL_OK) {
        snprintf(err, errlen, "%s", sl_db_last_error(db)->message);
        goto out;
    }
    begun = 1;
    for (size_t r = 0; r < d->n_rows && rc == SL_OK; r++)
        rc = write_row(db, &pl, d, r, params, st, err, errlen);
    if (rc == SL_OK && !dry_run) {
        if ((rc = sl_db_commit(db)) != SL_OK)
            snprintf(err, errlen, "commit: %s", sl_db_last_error(db)->message);
        begun = rc != SL_OK;
    }
out:
    if (begun)
        sl_db_rollback(db);
    if (rc == SL_ERR_NOMEM && err[0] == '\0')
        snprintf(err, errlen, "out of memory");
    free(params);
    plan_free(&pl);
    return rc;
}

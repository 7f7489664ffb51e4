/* import.c without a database: the CSV reader (RFC 4180 quoting, embedded
 * newlines, NULL versus ""), JSON arrays and JSON lines, Postgres array
 * literals, timestamps, booleans, money, tokens (hex lower-cased, raw sk-
 * keys hashed), table detection, and the messages for bad rows (row, line,
 * column; never the value). */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "import.h"
#include "status.h"
#include "tap.h"

static char err[512];

/* The cell at row r, column named col. */
static const struct sl_import_cell *cell(const struct sl_import_doc *d, size_t r, const char *col)
{
    for (size_t k = 0; k < d->n_cols; k++)
        if (strcmp(d->cols[k], col) == 0)
            return &d->cells[r * d->n_cols + k];
    return NULL;
}

static const struct sl_import_col *column(const struct sl_import_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return NULL;
}

static int parse(const char *text, struct sl_import_doc *d)
{
    return sl_import_parse(text, strlen(text), d, err, sizeof(err));
}

/* pg array text → JSON text (static buffer), or "ERR" */
static const char *pgarr(const char *s)
{
    static char out[256];
    char *j = NULL;

    if (sl_import_pg_array(s, strlen(s), &j, err, sizeof(err)) != SL_OK)
        return "ERR";
    snprintf(out, sizeof(out), "%s", j);
    free(j);
    return out;
}

static long long ts(const char *s)
{
    long long us = 0;

    return sl_import_time(s, &us, err, sizeof(err)) == SL_OK ? us : -1;
}

/* Maps a text cell for column name of table t; returns the status, *p set. */
static int map_text(const struct sl_import_table *t, const char *name, const char *text,
                    struct sl_db_param *p, char **owned)
{
    struct sl_import_cell c = { SL_IMPORT_STR, text, strlen(text), NULL };

    return sl_import_map_cell(column(t, name), &c, p, owned, err, sizeof(err));
}

static void test_csv(void)
{
    struct sl_import_doc d;
    const char *csv =
        "\xEF\xBB\xBFtoken,key_alias,models,metadata,blocked,spend\r\n"
        "aa,\"with, comma\",\"{gpt-4o,\"\"a b\"\"}\",\"{\"\"k\"\": \"\"v\"\"}\",t,1.5\r\n"
        "bb,\"two\nlines \"\"quoted\"\"\",{},{},f,\n"
        "cc,\"\",,\"{}\",,0\n"
        "\n";

    is_int(parse(csv, &d), SL_OK, "csv: parses");
    is_int(d.format, SL_IMPORT_CSV, "csv: detected as CSV");
    is_int(d.n_cols, 6, "csv: six columns (BOM stripped)");
    is_str(d.cols[0], "token", "csv: first header name without the BOM");
    is_int(d.n_rows, 3, "csv: three rows, the trailing empty line is none");
    is_str(cell(&d, 0, "key_alias")->s, "with, comma", "csv: a quoted comma");
    is_str(cell(&d, 0, "models")->s, "{gpt-4o,\"a b\"}", "csv: doubled quotes");
    is_str(cell(&d, 1, "key_alias")->s, "two\nlines \"quoted\"", "csv: an embedded newline");
    is_int(d.lines[1], 3, "csv: row 2 starts on line 3");
    is_int(d.lines[2], 5, "csv: row 3 starts on line 5 (after the two-line field)");
    is_int(cell(&d, 1, "spend")->kind, SL_IMPORT_NULL, "csv: an empty field at the end is NULL");
    is_int(cell(&d, 2, "key_alias")->kind, SL_IMPORT_STR, "csv: \"\" is an empty string");
    is_int(cell(&d, 2, "key_alias")->len, 0, "csv: ... of length 0");
    is_int(cell(&d, 2, "models")->kind, SL_IMPORT_NULL, "csv: an unquoted empty field is NULL");
    is_int(cell(&d, 0, "token")->kind, SL_IMPORT_STR, "csv: plain field");
    sl_import_doc_free(&d);

    is_int(parse("a,b\n1,2\n3\n", &d), SL_ERR_BAD_REQUEST, "csv: a short row is refused");
    is_str(err, "row 2 (line 3): 1 fields, the header has 2", "csv: ... naming row and line");
    sl_import_doc_free(&d);
    is_int(parse("a,b\n1,\"open\n", &d), SL_ERR_BAD_REQUEST, "csv: an unclosed quote is refused");
    is_str(err, "line 2: a quoted field is not closed", "csv: ... naming where it opened");
    sl_import_doc_free(&d);
    is_int(parse("a,b\n1,x\"y\n", &d), SL_ERR_BAD_REQUEST, "csv: a stray quote is refused");
    sl_import_doc_free(&d);
    is_int(parse("a,b\n1,\"x\"y\n", &d), SL_ERR_BAD_REQUEST, "csv: text after a closing quote");
    sl_import_doc_free(&d);
    is_int(parse("a,,b\n1,2,3\n", &d), SL_ERR_BAD_REQUEST, "csv: a header column without a name");
    sl_import_doc_free(&d);
    is_int(parse("a,b", &d), SL_OK, "csv: a header alone");
    is_int(d.n_rows, 0, "csv: ... is zero rows");
    sl_import_doc_free(&d);
    is_int(parse("a,b\n1,2", &d), SL_OK, "csv: no newline after the last row");
    is_str(cell(&d, 0, "b")->s, "2", "csv: ... last field read");
    sl_import_doc_free(&d);
    is_int(parse("  \n", &d), SL_OK, "an empty file");
    is_int(d.n_cols + d.n_rows, 0, "... has no columns and no rows");
    sl_import_doc_free(&d);
}

static void test_json(void)
{
    struct sl_import_doc d;
    const char *arr = "[{\"token\":\"aa\",\"models\":[\"a\",\"b\"],\"spend\":1.5,\"blocked\":null,"
                      "\"metadata\":{\"x\":[1]}},\n {\"token\":\"bb\",\"extra\":\"e\"}]\n";
    const char *lines = "{\"user_id\":\"u1\",\"teams\":[]}\n\n{\"user_id\":\"u2\"}\n"
                        "{\"user_id\":\"u3\",\"metadata\":\"just a string\"}\n";

    is_int(parse(arr, &d), SL_OK, "json array: parses");
    is_int(d.format, SL_IMPORT_JSON_ARRAY, "json array: format");
    is_int(d.n_rows, 2, "json array: two rows");
    is_int(d.n_cols, 6, "json array: the union of the members is the columns");
    is_int(cell(&d, 0, "models")->kind, SL_IMPORT_JSON, "json: an array value");
    is_int(cell(&d, 0, "blocked")->kind, SL_IMPORT_NULL, "json: null is NULL");
    is_int(cell(&d, 1, "models")->kind, SL_IMPORT_NULL, "json: a missing member is NULL");
    is_str(cell(&d, 1, "extra")->s, "e", "json: a string value");
    sl_import_doc_free(&d);

    is_int(parse(lines, &d), SL_OK, "json lines: parse");
    is_int(d.format, SL_IMPORT_JSON_LINES, "json lines: format");
    is_int(d.n_rows, 3, "json lines: three rows, the blank line is none");
    is_int(d.lines[2], 4, "json lines: the third row is on line 4");
    sl_import_doc_free(&d);

    is_int(parse("{\"a\":1}\n{\"a\":\n", &d), SL_ERR_BAD_REQUEST, "json lines: a broken line");
    ok(strncmp(err, "line 2: invalid JSON", 20) == 0, "json lines: ... names the line");
    sl_import_doc_free(&d);
    is_int(parse("{\"a\":1}\n[1]\n", &d), SL_ERR_BAD_REQUEST, "json lines: a non-object row");
    is_str(err, "row 2 (line 2): not a JSON object", "json lines: ... names the row");
    sl_import_doc_free(&d);
    is_int(parse("[{\"a\":1},\n 5]", &d), SL_ERR_BAD_REQUEST, "json array: a non-object row");
    is_str(err, "row 2: not a JSON object", "json array: ... named by its row alone");
    sl_import_doc_free(&d);
    is_int(parse("[{\"a\":1}] [{\"a\":2}]", &d), SL_ERR_BAD_REQUEST, "json: two arrays");
    sl_import_doc_free(&d);
    is_int(parse("{\"token\":\"a\",\"metadata\":{\"n\":123456789012345678901}}\n", &d),
           SL_ERR_BAD_REQUEST, "json: an integer beyond 64 bits is refused, not rounded");
    ok(strstr(err, "export this table as CSV") != NULL, "json: ... saying to use CSV");
    sl_import_doc_free(&d);
    is_int(parse("[]", &d), SL_OK, "json: an empty array");
    is_int(d.n_rows, 0, "json: ... has no rows");
    sl_import_doc_free(&d);
}

static void test_pg_arrays(void)
{
    char *j = NULL;

    is_str(pgarr("{}"), "[]", "array: empty");
    is_str(pgarr("{a,b}"), "[\"a\",\"b\"]", "array: two plain elements");
    is_str(pgarr("{ a , b c }"), "[\"a\",\"b c\"]", "array: unquoted elements are trimmed");
    is_str(pgarr("{\"a b\",\"c,d\",\"e\\\"f\",\"g\\\\h\"}"),
           "[\"a b\",\"c,d\",\"e\\\"f\",\"g\\\\h\"]", "array: quotes, commas, escapes");
    is_str(pgarr("{\"\"}"), "[\"\"]", "array: a quoted empty element");
    is_str(pgarr("{\"NULL\"}"), "[\"NULL\"]", "array: a quoted NULL is the string");
    is_str(pgarr("{a\\,b}"), "[\"a,b\"]", "array: an escaped delimiter unquoted");
    is_str(pgarr("{\"caf\xC3\xA9 \xE2\x98\x83\"}"), "[\"caf\xC3\xA9 \xE2\x98\x83\"]",
           "array: UTF-8 kept");
    is_str(pgarr("{NULL}"), "ERR", "array: a NULL element is refused");
    is_str(err, "a NULL element in an array", "array: ... saying so");
    is_str(pgarr("{{a},{b}}"), "ERR", "array: two dimensions are refused");
    is_str(pgarr("{a,}"), "ERR", "array: a trailing comma");
    is_str(pgarr("{a"), "ERR", "array: no closing brace");
    is_str(pgarr("{\"a}"), "ERR", "array: an unterminated quote");
    is_str(pgarr("{\"a\"b}"), "ERR", "array: text after a quoted element");
    is_str(pgarr("[\"a\"]"), "ERR", "array: JSON is not a Postgres literal");
    is_int(sl_import_pg_array("{\"\\\"}", 5, &j, err, sizeof(err)), SL_ERR_BAD_REQUEST,
           "array: an escaped closing quote does not close");
    free(j);
}

static void test_times(void)
{
    is_int(ts("1970-01-01 00:00:00"), 0, "time: the epoch");
    is_int(ts("2026-01-31 12:00:00.123+00"), 1769860800123000LL, "time: psql's timestamptz");
    is_int(ts("2026-01-31 12:00:00.123"), 1769860800123000LL, "time: without zone is UTC");
    is_int(ts("2026-01-31T12:00:00.123456"), 1769860800123456LL, "time: JSON's T, microseconds");
    is_int(ts("2026-01-31T14:30:00+02:30"), 1769860800000000LL, "time: an offset");
    is_int(ts("2026-01-31 07:00:00-0500"), 1769860800000000LL, "time: +HHMM");
    is_int(ts("2026-01-31T12:00:00Z"), 1769860800000000LL, "time: Z");
    is_int(ts("2026-01-31 12:00"), 1769860800000000LL, "time: no seconds");
    is_int(ts("2026-01-31"), 1769817600000000LL, "time: a date alone");
    is_int(ts("2024-02-29 00:00:00"), 1709164800000000LL, "time: a leap day");
    is_int(ts("2023-02-29 00:00:00"), -1, "time: not a leap year");
    is_int(ts("2026-13-01 00:00:00"), -1, "time: month 13");
    is_int(ts("2026-01-31 24:00:00"), -1, "time: hour 24");
    is_int(ts("infinity"), -1, "time: infinity");
    is_int(ts("0099-01-01 00:00:00"), -1, "time: before DATETIME's range");
    is_int(ts("2026-01-31 12:00:00."), -1, "time: a dot without digits");
    is_int(ts("2026-01-31 12:00:00 +00"), -1, "time: a space before the offset");
    is_int(ts("2026-01-31 12:00:00.1234567"), 1769860800123456LL, "time: nanoseconds cut");
}

static void test_cells(void)
{
    const struct sl_import_table *keys = sl_import_table_named("keys");
    const struct sl_import_table *teams = sl_import_table_named("LiteLLM_TeamTable");
    char hash[65], upper[65], *owned = NULL, name[600];
    struct sl_db_param p;
    json_t *j;
    struct sl_import_cell c;

    ok(keys != NULL && teams != NULL && sl_import_table_named("nope") == NULL, "tables by name");

    /* tokens */
    sl_auth_hash_key("sk-raw-key-1234", hash);
    is_int(map_text(keys, "token", hash, &p, &owned), SL_OK, "token: 64 hex digits");
    is_str(p.s, hash, "token: ... unchanged");
    free(owned);
    for (int i = 0; i < 65; i++)
        upper[i] = (char)(hash[i] >= 'a' && hash[i] <= 'f' ? hash[i] - 32 : hash[i]);
    is_int(map_text(keys, "token", upper, &p, &owned), SL_OK, "token: upper-case hex");
    is_str(p.s, hash, "token: ... lower-cased");
    free(owned);
    is_int(map_text(keys, "token", "sk-raw-key-1234", &p, &owned), SL_OK, "token: a raw key");
    is_str(p.s, hash, "token: ... hashed as sluice hashes");
    free(owned);
    is_int(map_text(keys, "token", "not-a-key", &p, &owned), SL_ERR_BAD_REQUEST,
           "token: anything else is refused");
    ok(strstr(err, "not-a-key") == NULL, "token: ... without echoing it");
    is_int(map_text(keys, "token", "", &p, &owned), SL_ERR_BAD_REQUEST, "token: empty");

    /* arrays */
    is_int(map_text(keys, "models", "{gpt-4o,\"x y\"}", &p, &owned), SL_OK, "models: pg literal");
    is_str(p.s, "[\"gpt-4o\",\"x y\"]", "models: ... as a JSON array");
    free(owned);
    is_int(map_text(keys, "models", "[\"a\"]", &p, &owned), SL_OK, "models: a JSON array too");
    is_str(p.s, "[\"a\"]", "models: ... kept");
    free(owned);
    is_int(map_text(keys, "models", "[1]", &p, &owned), SL_ERR_BAD_REQUEST,
           "models: a JSON array of numbers");
    j = json_pack("[ss]", "m1", "m\"2");
    c = (struct sl_import_cell){ SL_IMPORT_JSON, NULL, 0, j };
    is_int(sl_import_map_cell(column(keys, "models"), &c, &p, &owned, err, sizeof(err)), SL_OK,
           "models: from JSON");
    is_str(p.s, "[\"m1\",\"m\\\"2\"]", "models: ... dumped");
    free(owned);
    json_decref(j);

    /* JSON */
    is_int(map_text(keys, "metadata", "{\"a\": [1, \"\\u00e9\"]}", &p, &owned), SL_OK,
           "metadata: jsonb text");
    is_str(p.s, "{\"a\": [1, \"\\u00e9\"]}", "metadata: ... passed on as written");
    ok(owned == NULL, "metadata: ... borrowed");
    is_int(map_text(keys, "metadata", "{\"a\":", &p, &owned), SL_ERR_BAD_REQUEST,
           "metadata: invalid JSON");
    j = json_string("s");
    c = (struct sl_import_cell){ SL_IMPORT_STR, "s", 1, j };
    is_int(sl_import_map_cell(column(keys, "metadata"), &c, &p, &owned, err, sizeof(err)), SL_OK,
           "metadata: a JSON string from a JSON file");
    is_str(p.s, "\"s\"", "metadata: ... stays a JSON string");
    free(owned);
    json_decref(j);

    j = json_pack("{sfsf}", "a", 0.1, "b", 1e-05);
    c = (struct sl_import_cell){ SL_IMPORT_JSON, NULL, 0, j };
    is_int(sl_import_map_cell(column(keys, "metadata"), &c, &p, &owned, err, sizeof(err)), SL_OK,
           "metadata: reals from a JSON file");
    is_str(p.s, "{\"a\":0.1,\"b\":1e-5}", "metadata: ... 15 digits when they read back");
    free(owned);
    json_decref(j);
    j = json_pack("{sf}", "c", 0.1 + 0.2);
    c = (struct sl_import_cell){ SL_IMPORT_JSON, NULL, 0, j };
    is_int(sl_import_map_cell(column(keys, "metadata"), &c, &p, &owned, err, sizeof(err)), SL_OK,
           "metadata: a real that needs 17 digits");
    is_str(p.s, "{\"c\":0.30000000000000004}", "metadata: ... keeps them");
    free(owned);
    json_decref(j);
    is_int(map_text(keys, "metadata", "{\"big\": 123456789012345678901234}", &p, &owned), SL_OK,
           "metadata: jsonb text with an integer beyond 64 bits");
    is_str(p.s, "{\"big\": 123456789012345678901234}", "metadata: ... passed on as written");

    /* money, integers, booleans, times, text */
    is_int(map_text(keys, "spend", "1e-05", &p, &owned), SL_OK, "spend: psql's float8");
    is_str(p.s, "0.0000100000", "spend: ... 10 decimals");
    free(owned);
    is_int(map_text(keys, "spend", "0.30000000000000004", &p, &owned), SL_OK, "spend: float noise");
    is_str(p.s, "0.3000000000", "spend: ... rounded away");
    free(owned);
    is_int(map_text(keys, "spend", "NaN", &p, &owned), SL_ERR_BAD_REQUEST, "spend: NaN");
    is_int(map_text(keys, "spend", "1e10", &p, &owned), SL_ERR_BAD_REQUEST, "spend: too big");
    is_int(map_text(keys, "spend", "12abc", &p, &owned), SL_ERR_BAD_REQUEST, "spend: junk");
    is_str(err, "not a number", "spend: ... says so");
    is_int(map_text(keys, "tpm_limit", "9000000000", &p, &owned), SL_OK, "tpm_limit: BIGINT");
    is_int(p.i, 9000000000LL, "tpm_limit: ... value");
    is_int(map_text(keys, "max_parallel_requests", "9000000000", &p, &owned), SL_ERR_BAD_REQUEST,
           "max_parallel_requests: over INT");
    is_int(map_text(keys, "rpm_limit", "1.5", &p, &owned), SL_ERR_BAD_REQUEST, "rpm_limit: 1.5");
    is_int(map_text(keys, "blocked", "t", &p, &owned), SL_OK, "blocked: t");
    is_int(p.i, 1, "blocked: ... true");
    is_int(map_text(keys, "blocked", "f", &p, &owned), SL_OK, "blocked: f");
    is_int(p.i, 0, "blocked: ... false");
    is_int(map_text(keys, "blocked", "maybe", &p, &owned), SL_ERR_BAD_REQUEST, "blocked: maybe");
    c = (struct sl_import_cell){ SL_IMPORT_JSON, NULL, 0, json_true() };
    is_int(sl_import_map_cell(column(keys, "blocked"), &c, &p, &owned, err, sizeof(err)), SL_OK,
           "blocked: JSON true");
    is_int(p.i, 1, "blocked: ... true");
    is_int(map_text(keys, "expires", "2026-01-31 12:00:00+00", &p, &owned), SL_OK, "expires");
    is_int(p.type, SL_DB_T_TIME, "expires: ... a DATETIME");
    is_int(p.i, 1769860800000000LL, "expires: ... UTC");
    is_int(map_text(keys, "expires", "soon", &p, &owned), SL_ERR_BAD_REQUEST, "expires: junk");
    memset(name, 'x', 256);
    name[256] = '\0';
    is_int(map_text(keys, "key_alias", name, &p, &owned), SL_ERR_BAD_REQUEST,
           "key_alias: 256 characters");
    is_str(err, "longer than 255 characters", "key_alias: ... says so");
    memset(name, 0, sizeof(name));
    for (int i = 0; i < 255; i++)
        memcpy(name + 2 * i, "\xC3\xA9", 2);
    is_int(map_text(keys, "key_alias", name, &p, &owned), SL_OK,
           "key_alias: 255 two-byte characters fit");
    is_int(map_text(keys, "key_alias", "bad \xC3(", &p, &owned), SL_ERR_BAD_REQUEST,
           "key_alias: invalid UTF-8");
    is_int(map_text(teams, "team_id", "", &p, &owned), SL_ERR_BAD_REQUEST, "team_id: empty");
    c = (struct sl_import_cell){ SL_IMPORT_NULL, NULL, 0, NULL };
    is_int(sl_import_map_cell(column(teams, "models"), &c, &p, &owned, err, sizeof(err)), SL_OK,
           "models: NULL");
    is_int(p.type, SL_DB_T_NULL, "models: ... passed as NULL (the statement makes it [])");
    is_str(column(teams, "models")->if_null, "'[]'", "models: ... by COALESCE with '[]'");
}

static void detect(const char *header, const char *want, const char *name)
{
    struct sl_import_doc d;
    const struct sl_import_table *t;

    parse(header, &d);
    t = sl_import_detect(&d, err, sizeof(err));
    is_str(t ? t->name : NULL, want, name);
    sl_import_doc_free(&d);
}

static void test_detect(void)
{
    struct sl_import_doc d;
    char ignored[64];

    detect("token,key_name,spend,max_budget,budget_id\n", "keys", "detect: keys by token");
    detect("team_id,team_alias,models,spend\n", "teams", "detect: teams");
    detect("user_id,user_email,team_id,spend,teams\n", "users", "detect: users");
    detect("user_id,team_id,spend,total_spend,budget_id\n", "memberships", "detect: memberships");
    detect("budget_id,max_budget,soft_budget,tpm_limit\n", "budgets", "detect: budgets");
    detect("foo,bar\n", NULL, "detect: nothing fits");
    ok(strstr(err, "--table") != NULL, "detect: ... the message says --table");
    detect("user_id,team_id\n", NULL, "detect: users or memberships: ambiguous");

    parse("token,spend,new_litellm_column,other\n", &d);
    sl_import_ignored(sl_import_table_named("keys"), &d, ignored, sizeof(ignored));
    is_str(ignored, "new_litellm_column, other", "unknown columns are listed");
    sl_import_doc_free(&d);
}

int main(void)
{
    test_csv();
    test_json();
    test_pg_arrays();
    test_times();
    test_cells();
    test_detect();
    return tap_done();
}

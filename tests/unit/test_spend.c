/* Spend records without a database: string copies (truncation on a UTF-8
 * boundary, api_base without its query), money as exact 1e-10 units and
 * their decimal text, the spool line's JSON round trip, and the writer
 * spooling what it cannot write (no database configured here) with 0600
 * permissions. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spend.h"
#include "tap.h"

static void fill(struct sl_spend_rec *r, const char *id)
{
    memset(r, 0, sizeof(*r));
    sl_spend_copy(r->request_id, sizeof(r->request_id), id, 0);
    sl_spend_copy(r->api_key, sizeof(r->api_key), "ab12", 0);
    sl_spend_copy(r->team_id, sizeof(r->team_id), "team-\xc3\xa9", 0);
    sl_spend_copy(r->model_group, sizeof(r->model_group), "gpt-4o-mini", 0);
    sl_spend_copy(r->call_type, sizeof(r->call_type), "acompletion", 0);
    sl_spend_copy(r->status, sizeof(r->status), "success", 0);
    r->http_status = 200;
    r->prompt_tokens = 10;
    r->completion_tokens = 5;
    r->total_tokens = 15;
    r->spend_units = sl_spend_units(0.0000015);
    r->start_us = 1763784000000000LL;
    r->end_us = r->start_us + 1234;
}

int main(void)
{
    char buf[8], money[32], tmpl[] = "/tmp/sluice-test-spend-XXXXXX", path[512];
    struct sl_spend_rec a, b;
    json_t *o;
    char *dir;

    /* copies */
    sl_spend_copy(buf, sizeof(buf), "abc", 0);
    is_str(buf, "abc", "short string copied");
    sl_spend_copy(buf, sizeof(buf), "abcdefghij", 0);
    is_str(buf, "abcdefg", "long string truncated");
    sl_spend_copy(buf, sizeof(buf), "abcdef\xc3\xa9", 0);
    is_str(buf, "abcdef", "a UTF-8 character is not cut in two");
    sl_spend_copy(buf, sizeof(buf), NULL, 0);
    is_str(buf, "", "NULL copies as empty");
    sl_spend_copy(buf, sizeof(buf), "http://h?key=x", 1);
    is_str(buf, "http://", "api_base loses its query string (and fits)");

    /* money */
    ok(sl_spend_units(0.0000015) == 15000, "1.5e-6 USD is 15000 units");
    ok(sl_spend_units(-1) == 0 && sl_spend_units(0.0 / 0.0) == 0, "negative and NaN are 0");
    ok(sl_spend_units(1e300) > 0, "huge is clamped, not overflowed");
    sl_spend_format(15000, money, sizeof(money));
    is_str(money, "0.0000015000", "units as DECIMAL(20,10) text");
    sl_spend_format(123 * SL_SPEND_UNITS_PER_USD + 1, money, sizeof(money));
    is_str(money, "123.0000000001", "exact to the last digit");
    sl_spend_format(0, money, sizeof(money));
    is_str(money, "0.0000000000", "zero");
    {
        long long sum = 0;

        for (int i = 0; i < 1000; i++)
            sum += sl_spend_units(0.0000001 * (i % 7 + 1));
        sl_spend_format(sum, money, sizeof(money));
        is_str(money, "0.0003997000", "a sum of units is exact");
    }

    /* JSON round trip */
    fill(&a, "req-1");
    o = sl_spend_to_json(&a);
    ok(o != NULL, "to JSON");
    is_int(sl_spend_from_json(o, &b), 0, "from JSON");
    ok(memcmp(&a, &b, sizeof(a)) == 0, "the round trip is exact");
    json_decref(o);
    o = json_pack("{s:s}", "x", "y");
    is_int(sl_spend_from_json(o, &b), -1, "not a record");
    json_decref(o);

    /* the writer spools what it cannot write (no database here) */
    dir = mkdtemp(tmpl);
    ok(dir != NULL, "temp dir");
    setenv("TMPDIR", dir, 1);
    is_int(sl_spend_start(), 0, "writer starts");
    for (int i = 0; i < 250; i++) {
        char id[32];

        snprintf(id, sizeof(id), "req-%d", i);
        fill(&a, id);
        sl_spend_record(&a);
    }
    sl_spend_stop(5000);
    snprintf(path, sizeof(path), "%s/sluice-spend/spend-%ld.jsonl", dir, (long)getpid());
    {
        FILE *f = fopen(path, "r");
        char line[4096];
        int n = 0, parsed = 0;
        struct stat st;

        ok(f != NULL, "the spool file exists");
        ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "the spool file is 0600");
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            json_t *j = json_loads(line, 0, NULL);

            n++;
            parsed += j != NULL && sl_spend_from_json(j, &b) == 0;
            json_decref(j);
        }
        if (f != NULL)
            fclose(f);
        is_int(n, 250, "one line per record, none lost");
        is_int(parsed, 250, "every line is a record");
    }
    /* a record after the stop goes straight to the spool */
    fill(&a, "late");
    sl_spend_record(&a);
    {
        FILE *f = fopen(path, "r");
        char line[4096];
        int n = 0;

        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
            n++;
        if (f != NULL)
            fclose(f);
        is_int(n, 251, "after the stop: spooled, not dropped");
    }
    unlink(path);
    snprintf(path, sizeof(path), "%s/sluice-spend", dir);
    rmdir(path);
    rmdir(dir);
    return tap_done();
}

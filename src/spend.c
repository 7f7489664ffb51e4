/* Spend tracking: a bounded in-memory queue filled by the request threads,
 * drained by one writer thread per process in batches.
 *
 * A batch is one transaction:
 *   1. the LiteLLM_SpendLogs rows, in multi-row INSERT IGNOREs of 256, 128,
 *      ..., 2 and 1 rows (the binary digits of the batch's size: nine
 *      prepared statements cover every size, at most nine a batch).
 *      request_id is the primary key: when the statements report as many
 *      new rows as the batch has, every row is new, which is the normal
 *      case. When fewer (a replay of records a lost COMMIT had written
 *      after all, or a request id seen before), the transaction is rolled
 *      back and written again a row at a time, which tells the new rows
 *      from the old: only new rows may be added to spend;
 *   2. for the new rows only, aggregated per key, team and user within the
 *      batch: UPDATE ... SET spend = spend + ? WHERE ... (atomic, never a
 *      read-modify-write);
 *   3. one sluice_daily_spend upsert per day x key x team x user x model
 *      group x model x provider.
 * So a batch of 512 calls by one key costs 8 statements with BEGIN and
 * COMMIT. Money is an integer count of 1e-10 USD (DECIMAL(20,10)'s last
 * digit) and goes to the server as exact decimal text, so a key's spend is
 * the exact sum of its rows.
 *
 * When the database is down or the transaction fails, the batch is appended
 * to a spool file (one JSON line per record, fsync'ed), and the spool is
 * replayed before anything else on the next flush that reaches the
 * database. A replay is idempotent (step 1 recognises rows already
 * written). Every record is also appended to a journal file as it is
 * queued, so a crash of the process loses only the calls in flight (a power
 * loss, what the kernel had not written yet).
 *
 * The writer also resets budgets whose period ended (every
 * budget_reset_interval_ms): spend = 0 and the next budget_reset_at, on
 * the period boundaries budget.c counts with, guarded by the old
 * budget_reset_at so that of several processes only one resets a row. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "config.h"
#include "counter.h"
#include "db.h"
#include "keys.h"
#include "log.h"
#include "request.h"
#include "spend.h"
#include "status.h"

#define QUEUE_CAP 10000          /* records in memory before spilling to the spool */
#define BATCH_MAX 512            /* records per transaction (and a flush trigger) */
#define DEFAULT_INTERVAL_MS 1000

/* ---- pure helpers (unit-tested) ------------------------------------------- */

void sl_spend_copy(char *dst, size_t size, const char *s, int stop_at_query)
{
    size_t n = 0;

    if (size == 0)
        return;
    if (s != NULL) {
        n = stop_at_query ? strcspn(s, "?") : strlen(s);
        if (n > size - 1) {
            n = size - 1;
            /* do not cut a UTF-8 sequence: back up over continuation bytes */
            while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                n--;
        }
        memcpy(dst, s, n);
    }
    dst[n] = '\0';
}

long long sl_spend_units(double usd)
{
    if (!(usd > 0) || !isfinite(usd))
        return 0;
    if (usd >= 9.0e8)            /* DECIMAL(20,10) holds < 1e10; keep the sums in range */
        return 900000000LL * SL_SPEND_UNITS_PER_USD;
    return (long long)(usd * (double)SL_SPEND_UNITS_PER_USD + 0.5);
}

void sl_spend_format(long long units, char *out, size_t size)
{
    const char *sign = units < 0 ? "-" : "";
    unsigned long long u = units < 0 ? (unsigned long long)-(units + 1) + 1 : (unsigned long long)units;

    snprintf(out, size, "%s%llu.%010llu", sign, u / (unsigned long long)SL_SPEND_UNITS_PER_USD,
             u % (unsigned long long)SL_SPEND_UNITS_PER_USD);
}

json_t *sl_spend_to_json(const struct sl_spend_rec *r)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
                     " s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s}",
        "request_id", r->request_id, "api_key", r->api_key, "key_alias", r->key_alias,
        "team_id", r->team_id, "user_id", r->user_id, "end_user", r->end_user,
        "model_group", r->model_group, "model", r->model, "model_id", r->model_id,
        "provider", r->provider, "api_base", r->api_base, "call_type", r->call_type,
        "status", r->status, "http_status", r->http_status,
        "prompt_tokens", (json_int_t)r->prompt_tokens,
        "completion_tokens", (json_int_t)r->completion_tokens,
        "total_tokens", (json_int_t)r->total_tokens,
        "cached_tokens", (json_int_t)r->cached_tokens,
        "cache_write_tokens", (json_int_t)r->cache_write_tokens,
        "spend_units", (json_int_t)r->spend_units,
        "start_us", (json_int_t)r->start_us, "end_us", (json_int_t)r->end_us,
        "first_token_us", (json_int_t)r->first_token_us,
        "cache_hit", r->cache_hit, "cache_key", r->cache_key);
}

static void get_str(const json_t *o, const char *k, char *dst, size_t size)
{
    sl_spend_copy(dst, size, json_string_value(json_object_get(o, k)), 0);
}

static long long get_int(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

int sl_spend_from_json(const json_t *o, struct sl_spend_rec *r)
{
    memset(r, 0, sizeof(*r));
    if (!json_is_object(o) || !json_is_string(json_object_get(o, "request_id")) ||
        !json_is_integer(json_object_get(o, "start_us")))
        return -1;
    get_str(o, "request_id", r->request_id, sizeof(r->request_id));
    get_str(o, "api_key", r->api_key, sizeof(r->api_key));
    get_str(o, "key_alias", r->key_alias, sizeof(r->key_alias));
    get_str(o, "team_id", r->team_id, sizeof(r->team_id));
    get_str(o, "user_id", r->user_id, sizeof(r->user_id));
    get_str(o, "end_user", r->end_user, sizeof(r->end_user));
    get_str(o, "model_group", r->model_group, sizeof(r->model_group));
    get_str(o, "model", r->model, sizeof(r->model));
    get_str(o, "model_id", r->model_id, sizeof(r->model_id));
    get_str(o, "provider", r->provider, sizeof(r->provider));
    get_str(o, "api_base", r->api_base, sizeof(r->api_base));
    get_str(o, "call_type", r->call_type, sizeof(r->call_type));
    get_str(o, "status", r->status, sizeof(r->status));
    r->http_status = (int)get_int(o, "http_status");
    r->prompt_tokens = get_int(o, "prompt_tokens");
    r->completion_tokens = get_int(o, "completion_tokens");
    r->total_tokens = get_int(o, "total_tokens");
    r->cached_tokens = get_int(o, "cached_tokens");
    r->cache_write_tokens = get_int(o, "cache_write_tokens");
    r->spend_units = get_int(o, "spend_units");
    r->start_us = get_int(o, "start_us");
    r->end_us = get_int(o, "end_us");
    r->first_token_us = get_int(o, "first_token_us");
    get_str(o, "cache_hit", r->cache_hit, sizeof(r->cache_hit));
    get_str(o, "cache_key", r->cache_key, sizeof(r->cache_key));
    return r->request_id[0] ? 0 : -1;
}

/* ---- the queue -------------------------------------------------------------- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;         /* the writer: records or stop */
    pthread_cond_t done_cond;    /* sl_spend_stop: the writer finished */
    struct sl_spend_rec **q;     /* ring of QUEUE_CAP */
    size_t head, n;
    int started, stop, done;
    pthread_t thread;
} W = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
        NULL, 0, 0, 0, 0, 0, 0 };

static pthread_mutex_t spool_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the spool ---------------------------------------------------------------- */

/* The spool directory (malloc'ed): sluice_settings.spend_spool_dir, else
 * $TMPDIR/sluice-spend, else /var/tmp/sluice-spend. Created 0700. */
static char *spool_dir(void)
{
    struct sl_config *cfg = sl_config_acquire();
    const char *tmp = getenv("TMPDIR");
    char *d = NULL;

    if (cfg != NULL && cfg->spend_spool_dir != NULL && cfg->spend_spool_dir[0])
        d = strdup(cfg->spend_spool_dir);
    else if (tmp != NULL && tmp[0] == '/') {
        size_t n = strlen(tmp) + sizeof("/sluice-spend");

        if ((d = malloc(n)) != NULL)
            snprintf(d, n, "%s/sluice-spend", tmp);
    } else
        d = strdup("/var/tmp/sluice-spend");
    sl_config_unref(cfg);
    if (d != NULL && mkdir(d, 0700) != 0 && errno != EEXIST)
        sl_log(SL_LOG_ERROR, NULL, "spend: cannot create the spool directory %s: %s", d,
               strerror(errno));
    return d;
}

char *sl_spend_spool_dir(void)
{
    return spool_dir();
}

/* Opens path for appending and takes its lock; makes sure the file is
 * still the one at path (a replay may have just unlinked it). -1 on error. */
static int spool_open_locked(const char *path)
{
    for (int tries = 0; tries < 10; tries++) {
        struct stat a, b;
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

        if (fd < 0)
            return -1;
        if (flock(fd, LOCK_EX) == 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
            a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_nlink > 0)
            return fd;
        close(fd);
    }
    errno = EAGAIN;
    return -1;
}

/* Appends records to this process's spool file, fsync'ed. 0 or -1 (logged:
 * those records are lost). */
static int spool_append(struct sl_spend_rec *const *recs, size_t n)
{
    char *dir, path[4096];
    int fd = -1, rc = -1;
    size_t i;

    if (n == 0)
        return 0;
    pthread_mutex_lock(&spool_lock);
    if ((dir = spool_dir()) == NULL)
        goto out;
    snprintf(path, sizeof(path), "%s/spend-%ld.jsonl", dir, (long)getpid());
    if ((fd = spool_open_locked(path)) < 0) {
        sl_log(SL_LOG_ERROR, NULL, "spend: cannot open the spool %s: %s", path, strerror(errno));
        goto out;
    }
    for (i = 0; i < n; i++) {
        json_t *o = sl_spend_to_json(recs[i]);
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        size_t len = line ? strlen(line) : 0;
        int bad = line == NULL;

        if (!bad) {
            line[len] = '\n';      /* json_dumps' NUL becomes the newline */
            bad = write(fd, line, len + 1) != (ssize_t)(len + 1);
        }
        free(line);
        json_decref(o);
        if (bad) {
            sl_log(SL_LOG_ERROR, NULL, "spend: writing the spool %s failed: %s", path,
                   strerror(errno));
            goto out;
        }
    }
    if (fsync(fd) != 0) {
        sl_log(SL_LOG_ERROR, NULL, "spend: fsync of the spool %s failed: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
    sl_log(SL_LOG_WARN, NULL, "spend: %zu record(s) spooled to %s", n, path);
out:
    if (rc != 0)
        sl_log(SL_LOG_ERROR, NULL, "spend: %zu record(s) lost", n);
    if (fd >= 0)
        close(fd);
    free(dir);
    pthread_mutex_unlock(&spool_lock);
    return rc;
}

/* ---- writing a batch ---------------------------------------------------------- */

static const char SQL_LOG[] =
    "INSERT IGNORE INTO LiteLLM_SpendLogs (request_id, call_type, api_key, spend, total_tokens,"
    " prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens,"
    " startTime, endTime, request_duration_ms, completionStartTime, model, model_id,"
    " model_group, custom_llm_provider, api_base, `user`, metadata, team_id, end_user, status,"
    " cache_hit, cache_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_KEY[] =
    "UPDATE LiteLLM_VerificationToken SET spend = spend + ? WHERE token = ?";
static const char SQL_TEAM[] =
    "UPDATE LiteLLM_TeamTable SET spend = spend + ? WHERE team_id = ?";
static const char SQL_USER[] =
    "UPDATE LiteLLM_UserTable SET spend = spend + ? WHERE user_id = ?";
static const char SQL_DAILY[] =
    "INSERT INTO sluice_daily_spend (`date`, api_key, team_id, user_id, model_group, model,"
    " custom_llm_provider, prompt_tokens, completion_tokens, cache_read_input_tokens,"
    " cache_creation_input_tokens, spend, api_requests, successful_requests, failed_requests)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON DUPLICATE KEY UPDATE prompt_tokens = prompt_tokens + VALUES(prompt_tokens),"
    " completion_tokens = completion_tokens + VALUES(completion_tokens),"
    " cache_read_input_tokens = cache_read_input_tokens + VALUES(cache_read_input_tokens),"
    " cache_creation_input_tokens = cache_creation_input_tokens + VALUES(cache_creation_input_tokens),"
    " spend = spend + VALUES(spend), api_requests = api_requests + VALUES(api_requests),"
    " successful_requests = successful_requests + VALUES(successful_requests),"
    " failed_requests = failed_requests + VALUES(failed_requests),"
    " updated_at = CURRENT_TIMESTAMP(6)";

static const char *or_null(const char *s)
{
    return s[0] ? s : NULL;
}

static void utc_date(long long us, char out[11])
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

#define LOG_COLS 25

/* The 25 parameters of one LiteLLM_SpendLogs row into p; spend and meta
 * (the metadata JSON, malloc'ed: the caller frees it) must outlive p. */
static void log_params(const struct sl_spend_rec *r, struct sl_db_param *p, char spend[32],
                       char **meta)
{
    json_t *m = json_pack("{s:s?, s:i}", "user_api_key_alias", or_null(r->key_alias),
                          "status_code", r->http_status);

    *meta = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    sl_spend_format(r->spend_units, spend, 32);
    p[0] = sl_db_text(r->request_id);
    p[1] = sl_db_text(r->call_type);
    p[2] = sl_db_text(r->api_key);
    p[3] = sl_db_text(spend);
    p[4] = sl_db_int(r->total_tokens);
    p[5] = sl_db_int(r->prompt_tokens);
    p[6] = sl_db_int(r->completion_tokens);
    p[7] = sl_db_int(r->cached_tokens);
    p[8] = sl_db_int(r->cache_write_tokens);
    p[9] = sl_db_time_us(r->start_us);
    p[10] = sl_db_time_us(r->end_us);
    p[11] = sl_db_int((r->end_us - r->start_us) / 1000);
    p[12] = r->first_token_us ? sl_db_time_us(r->first_token_us) : sl_db_null();
    p[13] = sl_db_text(r->model);
    p[14] = sl_db_text(r->model_id);
    p[15] = sl_db_text(r->model_group);
    p[16] = sl_db_text(r->provider);
    p[17] = sl_db_text(r->api_base);
    p[18] = sl_db_text(r->user_id);
    p[19] = sl_db_text(*meta ? *meta : "{}");
    p[20] = sl_db_text(or_null(r->team_id));
    p[21] = sl_db_text(or_null(r->end_user));
    p[22] = sl_db_text(r->status);
    p[23] = sl_db_text(r->cache_hit);
    p[24] = sl_db_text(r->cache_key);
}

/* The INSERT for `rows` rows, built once per size. */
#define N_CHUNKS 9
static const size_t CHUNK[N_CHUNKS] = { 256, 128, 64, 32, 16, 8, 4, 2, 1 };
static char *chunk_sql[N_CHUNKS];
static pthread_once_t chunk_once = PTHREAD_ONCE_INIT;

static void build_chunk_sql(void)
{
    static const char row[] = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                              " ?, ?)";
    const char *head = SQL_LOG;
    size_t hlen = (size_t)(strstr(head, " VALUES ") - head) + 8;

    for (size_t c = 0; c < N_CHUNKS; c++) {
        size_t size = hlen + CHUNK[c] * (sizeof(row) + 2) + 1;
        char *q = malloc(size), *p;

        if ((chunk_sql[c] = q) == NULL)
            continue;
        memcpy(q, head, hlen);
        p = q + hlen;
        for (size_t i = 0; i < CHUNK[c]; i++)
            p += sprintf(p, "%s%s", i ? ", " : "", row);
    }
}

/* Inserts recs[0..n) with multi-row statements; *fresh gets the rows that
 * were new, *statements is counted up. SL_OK or the database's status. */
static int insert_logs(struct sl_db *db, struct sl_spend_rec *const *recs, size_t n, size_t *fresh,
                       size_t *statements)
{
    struct sl_db_param *p = malloc(CHUNK[0] * LOG_COLS * sizeof(*p));
    char (*spend)[32] = malloc(CHUNK[0] * sizeof(*spend));
    char **meta = calloc(CHUNK[0], sizeof(*meta));
    size_t done = 0;
    int rc = SL_OK;

    pthread_once(&chunk_once, build_chunk_sql);
    *fresh = 0;
    if (p == NULL || spend == NULL || meta == NULL)
        rc = SL_ERR_NOMEM;
    for (size_t c = 0; c < N_CHUNKS; c++)
        if (chunk_sql[c] == NULL)
            rc = SL_ERR_NOMEM;
    while (rc == SL_OK && done < n) {
        size_t c = 0, rows;
        unsigned long long affected = 0;

        while (CHUNK[c] > n - done)
            c++;
        rows = CHUNK[c];
        for (size_t i = 0; i < rows; i++)
            log_params(recs[done + i], p + i * LOG_COLS, spend[i], &meta[i]);
        rc = sl_db_exec(db, chunk_sql[c], p, rows * LOG_COLS, &affected);
        ++*statements;
        for (size_t i = 0; i < rows; i++) {
            free(meta[i]);
            meta[i] = NULL;
        }
        *fresh += (size_t)affected;
        done += rows;
    }
    free(p);
    free(spend);
    free(meta);
    return rc;
}

/* One row, telling whether it was new. */
static int insert_log(struct sl_db *db, const struct sl_spend_rec *r, int *is_new)
{
    struct sl_db_param p[LOG_COLS];
    char spend[32], *meta = NULL;
    unsigned long long affected = 0;
    int rc;

    log_params(r, p, spend, &meta);
    rc = sl_db_exec(db, SQL_LOG, p, LOG_COLS, &affected);
    free(meta);
    *is_new = affected > 0;
    return rc;
}

/* One aggregate of new rows: per key, team, user, or daily group. */
struct agg {
    const struct sl_spend_rec *r;    /* the first record of the group (its names) */
    char date[11];
    long long units, prompt, completion, cached, cache_write, requests, ok, failed;
};

enum { BY_KEY, BY_TEAM, BY_USER, BY_DAY };

static int same_group(int by, const struct agg *a, const struct sl_spend_rec *r, const char *date)
{
    const struct sl_spend_rec *g = a->r;

    switch (by) {
    case BY_KEY: return strcmp(g->api_key, r->api_key) == 0;
    case BY_TEAM: return strcmp(g->team_id, r->team_id) == 0;
    case BY_USER: return strcmp(g->user_id, r->user_id) == 0;
    default:
        return strcmp(a->date, date) == 0 && strcmp(g->api_key, r->api_key) == 0 &&
               strcmp(g->team_id, r->team_id) == 0 && strcmp(g->user_id, r->user_id) == 0 &&
               strcmp(g->model_group, r->model_group) == 0 && strcmp(g->model, r->model) == 0 &&
               strcmp(g->provider, r->provider) == 0;
    }
}

/* Groups are written in a fixed order, so two processes updating the same
 * rows take their locks in the same order (no deadlock between them). */
static int cmp_str(const char *a, const char *b, int *out)
{
    return (*out = strcmp(a, b)) != 0;
}

static int cmp_key(const void *x, const void *y)
{
    return strcmp(((const struct agg *)x)->r->api_key, ((const struct agg *)y)->r->api_key);
}

static int cmp_team(const void *x, const void *y)
{
    return strcmp(((const struct agg *)x)->r->team_id, ((const struct agg *)y)->r->team_id);
}

static int cmp_user(const void *x, const void *y)
{
    return strcmp(((const struct agg *)x)->r->user_id, ((const struct agg *)y)->r->user_id);
}

static int cmp_day(const void *x, const void *y)
{
    const struct agg *a = x, *b = y;
    int c = 0;

    (void)(cmp_str(a->date, b->date, &c) || cmp_str(a->r->api_key, b->r->api_key, &c) ||
           cmp_str(a->r->team_id, b->r->team_id, &c) || cmp_str(a->r->user_id, b->r->user_id, &c) ||
           cmp_str(a->r->model_group, b->r->model_group, &c) ||
           cmp_str(a->r->model, b->r->model, &c) || cmp_str(a->r->provider, b->r->provider, &c));
    return c;
}

static int (*const cmp_by[])(const void *, const void *) = { cmp_key, cmp_team, cmp_user, cmp_day };

/* Groups the new records of recs by `by` into out (room for n); returns
 * how many groups. Records without the dimension (no key, team, user) are
 * left out, except for the daily groups. */
static size_t aggregate(int by, struct sl_spend_rec *const *recs, const int *is_new, size_t n,
                        struct agg *out)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        const struct sl_spend_rec *r = recs[i];
        char date[11] = "";
        size_t j;

        if (!is_new[i] || (by == BY_KEY && !r->api_key[0]) || (by == BY_TEAM && !r->team_id[0]) ||
            (by == BY_USER && !r->user_id[0]))
            continue;
        if (by == BY_DAY)
            utc_date(r->start_us, date);
        for (j = 0; j < k && !same_group(by, &out[j], r, date); j++)
            ;
        if (j == k) {
            memset(&out[k], 0, sizeof(out[k]));
            out[k].r = r;
            memcpy(out[k].date, date, sizeof(date));
            k++;
        }
        out[j].units += r->spend_units;
        out[j].prompt += r->prompt_tokens;
        out[j].completion += r->completion_tokens;
        out[j].cached += r->cached_tokens;
        out[j].cache_write += r->cache_write_tokens;
        out[j].requests++;
        if (strcmp(r->status, "success") == 0)
            out[j].ok++;
        else
            out[j].failed++;
    }
    qsort(out, k, sizeof(*out), cmp_by[by]);
    return k;
}

#define SOME_NOT_NEW (-1)  /* write_batch_as: roll back, write a row at a time */

static int write_batch_as(struct sl_db *db, struct sl_spend_rec *const *recs, size_t n,
                          int row_by_row)
{
    int is_new[BATCH_MAX];
    struct agg groups[BATCH_MAX];
    size_t i, k, fresh = 0, statements = 0;
    char spend[32];
    int rc;

    if ((rc = sl_db_begin(db)) != SL_OK)
        goto fail;
    if (!row_by_row) {
        if ((rc = insert_logs(db, recs, n, &fresh, &statements)) != SL_OK)
            goto fail;
        if (fresh != n) {
            sl_db_rollback(db);
            return SOME_NOT_NEW;
        }
        for (i = 0; i < n; i++)
            is_new[i] = 1;
    }
    for (i = 0; row_by_row && i < n; i++) {
        if ((rc = insert_log(db, recs[i], &is_new[i])) != SL_OK)
            goto fail;
        statements++;
        fresh += is_new[i] != 0;
    }
    for (int by = BY_KEY; by <= BY_USER; by++) {
        static const char *const sql[] = { SQL_KEY, SQL_TEAM, SQL_USER };

        k = aggregate(by, recs, is_new, n, groups);
        for (i = 0; i < k; i++) {
            const struct sl_spend_rec *g = groups[i].r;
            struct sl_db_param p[2];

            if (groups[i].units == 0)
                continue;
            sl_spend_format(groups[i].units, spend, sizeof(spend));
            p[0] = sl_db_text(spend);
            p[1] = sl_db_text(by == BY_KEY ? g->api_key : by == BY_TEAM ? g->team_id : g->user_id);
            if ((rc = sl_db_exec(db, sql[by], p, 2, NULL)) != SL_OK)
                goto fail;
            statements++;
        }
    }
    k = aggregate(BY_DAY, recs, is_new, n, groups);
    for (i = 0; i < k; i++) {
        const struct agg *a = &groups[i];
        const struct sl_spend_rec *g = a->r;
        struct sl_db_param p[15];

        sl_spend_format(a->units, spend, sizeof(spend));
        p[0] = sl_db_text(a->date);
        p[1] = sl_db_text(g->api_key);
        p[2] = sl_db_text(g->team_id);
        p[3] = sl_db_text(g->user_id);
        p[4] = sl_db_text(g->model_group);
        p[5] = sl_db_text(g->model);
        p[6] = sl_db_text(g->provider);
        p[7] = sl_db_int(a->prompt);
        p[8] = sl_db_int(a->completion);
        p[9] = sl_db_int(a->cached);
        p[10] = sl_db_int(a->cache_write);
        p[11] = sl_db_text(spend);
        p[12] = sl_db_int(a->requests);
        p[13] = sl_db_int(a->ok);
        p[14] = sl_db_int(a->failed);
        if ((rc = sl_db_exec(db, SQL_DAILY, p, 15, NULL)) != SL_OK)
            goto fail;
        statements++;
    }
    if ((rc = sl_db_commit(db)) != SL_OK)
        goto fail;
    sl_log(SL_LOG_DEBUG, NULL, "spend: flushed %zu record(s) (%zu new) in %zu statement(s)",
           n, fresh, statements + 2);
    return SL_OK;
fail:
    sl_log(SL_LOG_WARN, NULL, "spend: writing %zu record(s) failed: %s", n,
           sl_db_last_error(db)->message);
    sl_db_rollback(db);
    return rc != SL_OK ? rc : SL_ERR_DB;
}

/* Writes recs (at most BATCH_MAX) in one transaction. SL_OK, or an error
 * after which the transaction was rolled back. */
static int write_batch(struct sl_db *db, struct sl_spend_rec *const *recs, size_t n)
{
    int rc = write_batch_as(db, recs, n, 0);

    return rc == SOME_NOT_NEW ? write_batch_as(db, recs, n, 1) : rc;
}

/* Writes recs in transactions of BATCH_MAX; stops at the first failure.
 * Returns how many records were written. */
static size_t write_all(struct sl_db *db, struct sl_spend_rec *const *recs, size_t n)
{
    size_t done = 0;

    while (done < n) {
        size_t m = n - done < BATCH_MAX ? n - done : BATCH_MAX;

        if (write_batch(db, recs + done, m) != SL_OK)
            break;
        done += m;
    }
    return done;
}

/* ---- replaying the spool -------------------------------------------------------- */

/* Reads fd's JSON lines into *out (malloc'ed records; lines that do not
 * parse, such as a torn last line after a crash, are skipped and logged). */
static int read_spool(int fd, const char *path, struct sl_spend_rec ***out, size_t *n)
{
    struct stat st;
    char *text = NULL, *line, *nl;
    size_t got = 0, cap = 0, bad = 0;
    struct sl_spend_rec **recs = NULL;
    int rc = -1;

    *out = NULL;
    *n = 0;
    if (fstat(fd, &st) != 0 || (text = malloc((size_t)st.st_size + 1)) == NULL)
        goto out;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, text + got, (size_t)st.st_size - got);

        if (r <= 0)
            break;
        got += (size_t)r;
    }
    text[got] = '\0';
    for (line = text; *line; line = nl ? nl + 1 : line + strlen(line)) {
        json_t *o;
        struct sl_spend_rec *r;

        nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (*line == '\0')
            continue;
        o = json_loads(line, 0, NULL);
        if (*n == cap) {
            struct sl_spend_rec **g = realloc(recs, (cap = cap ? cap * 2 : 64) * sizeof(*recs));

            if (g == NULL) {
                json_decref(o);
                goto out;
            }
            recs = g;
        }
        r = o ? malloc(sizeof(*r)) : NULL;
        if (r == NULL || sl_spend_from_json(o, r) != 0) {
            free(r);
            bad++;
        } else {
            recs[(*n)++] = r;
        }
        json_decref(o);
    }
    if (bad > 0)
        sl_log(SL_LOG_WARN, NULL, "spend: %zu unreadable line(s) in the spool %s skipped", bad, path);
    rc = 0;
out:
    free(text);
    *out = recs;
    return rc;
}

static void free_recs(struct sl_spend_rec **recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(recs[i]);
    free(recs);
}

/* Replays every spool file of the directory (any process's, unless that
 * process is writing it right now). 0 when the spool is empty now, -1 when
 * something is left (the database failed again). */
static int replay_spool(struct sl_db *db)
{
    char *dir = spool_dir();
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    int rc = 0;

    if (d == NULL) {
        free(dir);
        return 0;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char path[4096];
        struct sl_spend_rec **recs = NULL;
        size_t n = 0, len = strlen(e->d_name), done;
        struct stat a, b;
        int fd;

        if (strncmp(e->d_name, "spend-", 6) != 0 || len < 7 ||
            strcmp(e->d_name + len - 6, ".jsonl") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &a) != 0 || stat(path, &b) != 0 ||
            a.st_ino != b.st_ino || a.st_nlink == 0) {
            close(fd);           /* someone is appending to it, or it just went */
            continue;
        }
        if (read_spool(fd, path, &recs, &n) == 0) {
            done = write_all(db, recs, n);
            if (done == n) {
                unlink(path);    /* still under the lock: no append is lost */
                sl_log(SL_LOG_INFO, NULL, "spend: replayed %zu spooled record(s) from %s", n, path);
            } else {
                rc = -1;
            }
        } else {
            rc = -1;
        }
        free_recs(recs, n);
        close(fd);
    }
    closedir(d);
    free(dir);
    return rc;
}

/* ---- the journal ------------------------------------------------------------------- */

/* Every record is also appended (no fsync) to this process's journal, so a
 * crash of the process loses no completed call: the kernel keeps what was
 * written, and the file, no longer locked by a live process, is replayed
 * like a spool file by the next writer that looks (request_id makes that
 * idempotent). Two files take turns: records go to the active one; when
 * the writer takes the queue it switches, and once that batch is safe (in
 * the database or the fsync'ed spool) it empties the retired file. Both are
 * locked (flock) for the process's life. Guarded by W.lock. */
static struct {
    int fd[2];
    int active;
} J = { { -1, -1 }, 0 };

/* Opens the journal (W.lock held). A file left by a dead process with the
 * same pid is renamed aside first: it is an orphan spool, replayed later. */
static void journal_open(void)
{
    char *dir = spool_dir(), path[4096], aside[4200];
    struct stat st;

    for (int i = 0; dir != NULL && i < 2; i++) {
        snprintf(path, sizeof(path), "%s/spend-%ld-j%d.jsonl", dir, (long)getpid(), i);
        if (stat(path, &st) == 0 && st.st_size > 0) {
            snprintf(aside, sizeof(aside), "%s/spend-%ld-j%d-%lld.jsonl", dir, (long)getpid(), i,
                     (long long)time(NULL));
            (void)rename(path, aside);
        }
        J.fd[i] = open(path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (J.fd[i] >= 0 && flock(J.fd[i], LOCK_EX | LOCK_NB) != 0) {
            close(J.fd[i]);
            J.fd[i] = -1;
        }
        if (J.fd[i] < 0)
            sl_log(SL_LOG_WARN, NULL, "spend: no journal %s (%s): a crash would lose the "
                   "records still in memory", path, strerror(errno));
    }
    J.active = 0;
    free(dir);
}

/* One record as its spool line (malloc'ed, ending in a newline), or NULL. */
static char *journal_line(const struct sl_spend_rec *r, size_t *len)
{
    json_t *o = sl_spend_to_json(r);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL, *line = NULL;

    json_decref(o);
    if (text != NULL && (line = realloc(text, (*len = strlen(text)) + 2)) != NULL) {
        line[(*len)++] = '\n';
        line[*len] = '\0';
    } else {
        free(text);
    }
    return line;
}

/* Appends a line to the active file (W.lock held). */
static void journal_write(const char *line, size_t len)
{
    int fd = J.fd[J.active];

    if (fd >= 0 && line != NULL && write(fd, line, len) != (ssize_t)len)
        sl_log(SL_LOG_WARN, NULL, "spend: writing the journal failed: %s", strerror(errno));
}

/* Switches files (W.lock held); returns the retired one's index. */
static int journal_switch(void)
{
    int old = J.active;

    J.active = !old;
    return old;
}

/* The retired file's records are safe: empty it. */
static void journal_clear(int i)
{
    if (J.fd[i] >= 0 && ftruncate(J.fd[i], 0) != 0)
        sl_log(SL_LOG_WARN, NULL, "spend: emptying the journal failed: %s", strerror(errno));
}

/* The writer is done and everything is safe: the files go. */
static void journal_close(void)
{
    char *dir = spool_dir(), path[4096];

    for (int i = 0; i < 2; i++) {
        if (J.fd[i] < 0)
            continue;
        if (dir != NULL) {
            snprintf(path, sizeof(path), "%s/spend-%ld-j%d.jsonl", dir, (long)getpid(), i);
            unlink(path);
        }
        close(J.fd[i]);
        J.fd[i] = -1;
    }
    free(dir);
}

/* ---- budget resets ------------------------------------------------------------------ */

#define RESET_ROWS 200      /* rows per table and round; the next round takes the rest */

static const char *const SQL_DUE[SL_BUDGET_SCOPES] = {
    "SELECT token, budget_duration, budget_reset_at FROM `LiteLLM_VerificationToken`"
    " WHERE budget_reset_at <= ? AND budget_duration IS NOT NULL ORDER BY budget_reset_at LIMIT 200",
    "SELECT team_id, budget_duration, budget_reset_at FROM `LiteLLM_TeamTable`"
    " WHERE budget_reset_at <= ? AND budget_duration IS NOT NULL ORDER BY budget_reset_at LIMIT 200",
    "SELECT user_id, budget_duration, budget_reset_at FROM `LiteLLM_UserTable`"
    " WHERE budget_reset_at <= ? AND budget_duration IS NOT NULL ORDER BY budget_reset_at LIMIT 200",
};
static const char *const SQL_RESET[SL_BUDGET_SCOPES] = {
    "UPDATE `LiteLLM_VerificationToken` SET spend = 0, budget_reset_at = ?"
    " WHERE token = ? AND budget_reset_at = ?",
    "UPDATE `LiteLLM_TeamTable` SET spend = 0, budget_reset_at = ?"
    " WHERE team_id = ? AND budget_reset_at = ?",
    "UPDATE `LiteLLM_UserTable` SET spend = 0, budget_reset_at = ?"
    " WHERE user_id = ? AND budget_reset_at = ?",
};

struct due {
    char id[256];
    char duration[33];
    long long reset_at_us;
};

static long long wall_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Resets the budgets of one table whose period ended. Returns how many. */
static size_t reset_scope(struct sl_db *db, const struct sl_config *cfg, int scope, long long now)
{
    struct sl_db_param p[3] = { sl_db_time_us(now) };
    struct due *rows = malloc(RESET_ROWS * sizeof(*rows));
    size_t n = 0, reset = 0;
    int row = 0;

    if (rows == NULL || sl_db_query(db, SQL_DUE[scope], p, 1) != SL_OK) {
        free(rows);
        return 0;
    }
    while (n < RESET_ROWS && sl_db_fetch(db, &row) == SL_OK && row) {
        sl_spend_copy(rows[n].id, sizeof(rows[n].id), sl_db_col_text(db, 0, NULL), 0);
        sl_spend_copy(rows[n].duration, sizeof(rows[n].duration), sl_db_col_text(db, 1, NULL), 0);
        if (sl_db_col_time_us(db, 2, &rows[n].reset_at_us))
            n++;
    }
    sl_db_query_end(db);
    for (size_t i = 0; i < n; i++) {
        int fresh;
        long long next = sl_budget_period_end(rows[i].reset_at_us, rows[i].duration, now, &fresh);
        unsigned long long affected = 0;

        p[0] = sl_db_time_us(next);
        p[1] = sl_db_text(rows[i].id);
        p[2] = sl_db_time_us(rows[i].reset_at_us);
        if (sl_db_exec(db, SQL_RESET[scope], p, 3, &affected) != SL_OK)
            break;
        if (affected > 0) {
            reset++;
            if (scope == SL_BUDGET_KEY)
                sl_keys_invalidate(cfg, rows[i].id);
        }
    }
    free(rows);
    return reset;
}

static void reset_budgets(const struct sl_config *cfg)
{
    struct sl_db_settings s;
    struct sl_db *db = NULL;
    long long now = wall_now_us();
    size_t n[SL_BUDGET_SCOPES] = { 0 };

    sl_db_settings_from_config(cfg, &s);
    if (sl_db_thread(&s, &db) != SL_OK)
        return;
    for (int scope = 0; scope < SL_BUDGET_SCOPES; scope++)
        n[scope] = reset_scope(db, cfg, scope, now);
    if (n[0] + n[1] + n[2] > 0)
        sl_log(SL_LOG_INFO, NULL, "budgets reset: %zu key(s), %zu team(s), %zu user(s)",
               n[0], n[1], n[2]);
}

/* Every budget_reset_interval_ms, from the writer thread. */
static void maybe_reset_budgets(void)
{
    static long long last_us;
    struct sl_config *cfg = sl_config_acquire();
    long long now = sl_now_us();

    if (cfg != NULL && cfg->database_url != NULL &&
        now - last_us >= cfg->budget_reset_interval_ms * 1000LL) {
        last_us = now;
        reset_budgets(cfg);
    }
    sl_config_unref(cfg);
}

/* ---- the writer thread -------------------------------------------------------------- */

static long flush_interval_ms(void)
{
    struct sl_config *cfg = sl_config_acquire();
    long ms = cfg && cfg->spend_flush_interval_ms > 0 ? cfg->spend_flush_interval_ms
                                                      : DEFAULT_INTERVAL_MS;

    sl_config_unref(cfg);
    return ms;
}

/* Writes recs to the database (after the spool), else to the spool. */
static void flush(struct sl_spend_rec **recs, size_t n)
{
    struct sl_config *cfg = sl_config_acquire();
    struct sl_db_settings s;
    struct sl_db *db = NULL;
    size_t done = 0;

    if (cfg != NULL && cfg->database_url != NULL) {
        sl_db_settings_from_config(cfg, &s);
        if (sl_db_thread(&s, &db) == SL_OK && replay_spool(db) == 0)
            done = write_all(db, recs, n);
    }
    if (done < n)
        spool_append(recs + done, n - done);
    sl_config_unref(cfg);
}

/* Whether something waits to be replayed: any spool file but this
 * process's own journal. */
static int spool_exists(void)
{
    char *dir = spool_dir(), own[64];
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    int found = 0;

    snprintf(own, sizeof(own), "spend-%ld-j", (long)getpid());
    while (d != NULL && !found && (e = readdir(d)) != NULL)
        found = strncmp(e->d_name, "spend-", 6) == 0 && strncmp(e->d_name, own, strlen(own)) != 0;
    if (d != NULL)
        closedir(d);
    free(dir);
    return found;
}

static struct timespec deadline_in(long ms)
{
    return sl_deadline(CLOCK_MONOTONIC, ms * 1000LL);
}

/* Takes everything queued (the lock held). */
static size_t take_all(struct sl_spend_rec ***out)
{
    size_t n = W.n;
    struct sl_spend_rec **recs = n ? malloc(n * sizeof(*recs)) : NULL;

    *out = recs;
    if (recs == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        recs[i] = W.q[(W.head + i) % QUEUE_CAP];
    W.head = (W.head + n) % QUEUE_CAP;
    W.n = 0;
    return n;
}

static void *writer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&W.lock);
    for (;;) {
        struct timespec until = deadline_in(flush_interval_ms());
        struct sl_spend_rec **recs = NULL;
        size_t n;
        int last, retired;

        while (!W.stop && W.n < BATCH_MAX)
            if (pthread_cond_timedwait(&W.wake, &W.lock, &until) == ETIMEDOUT)
                break;
        last = W.stop;
        n = take_all(&recs);
        retired = journal_switch();
        pthread_mutex_unlock(&W.lock);
        if (n > 0 || (!last && spool_exists()))
            flush(recs, n);
        journal_clear(retired);
        free_recs(recs, n);
        sl_counter_maintain();
        if (!last)
            maybe_reset_budgets();
        pthread_mutex_lock(&W.lock);
        if (last && W.n == 0)
            break;
    }
    journal_close();
    W.done = 1;
    pthread_cond_broadcast(&W.done_cond);
    pthread_mutex_unlock(&W.lock);
    sl_db_thread_end();
    return NULL;
}

/* Starts the writer (W.lock held). */
static int start_locked(void)
{
    pthread_condattr_t ca;

    if (W.started)
        return SL_OK;
    if (W.q == NULL && (W.q = calloc(QUEUE_CAP, sizeof(*W.q))) == NULL)
        return SL_ERR_NOMEM;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_destroy(&W.wake);
    pthread_cond_init(&W.wake, &ca);
    pthread_cond_destroy(&W.done_cond);
    pthread_cond_init(&W.done_cond, &ca);
    pthread_condattr_destroy(&ca);
    W.stop = W.done = 0;
    journal_open();
    if (pthread_create(&W.thread, NULL, writer, NULL) != 0) {
        sl_log(SL_LOG_ERROR, NULL, "spend: cannot start the writer thread");
        return SL_ERR_INTERNAL;
    }
    W.started = 1;
    return SL_OK;
}

int sl_spend_start(void)
{
    int rc;

    pthread_mutex_lock(&W.lock);
    rc = start_locked();
    pthread_mutex_unlock(&W.lock);
    return rc;
}

void sl_spend_record(const struct sl_spend_rec *r)
{
    struct sl_spend_rec *c = malloc(sizeof(*c));
    size_t len = 0;
    char *line = journal_line(r, &len);
    int spill = 0;

    if (c == NULL) {
        sl_log(SL_LOG_ERROR, NULL, "spend: out of memory: record %s lost", r->request_id);
        free(line);
        return;
    }
    *c = *r;
    pthread_mutex_lock(&W.lock);
    if (W.stop || start_locked() != SL_OK || W.n == QUEUE_CAP) {
        spill = 1;
    } else {
        journal_write(line, len);
        W.q[(W.head + W.n) % QUEUE_CAP] = c;
        if (++W.n >= BATCH_MAX)
            pthread_cond_signal(&W.wake);
    }
    pthread_mutex_unlock(&W.lock);
    free(line);
    if (spill) {
        /* The writer is behind (or gone): the spool, rather than dropping. */
        spool_append(&c, 1);
        free(c);
    }
}

int sl_spend_stop(long wait_ms)
{
    struct timespec until = deadline_in(wait_ms);
    int done;

    pthread_mutex_lock(&W.lock);
    if (!W.started) {
        pthread_mutex_unlock(&W.lock);
        return 0;
    }
    W.stop = 1;
    pthread_cond_signal(&W.wake);
    while (!W.done)
        if (pthread_cond_timedwait(&W.done_cond, &W.lock, &until) == ETIMEDOUT)
            break;
    done = W.done;
    if (!done)
        sl_log(SL_LOG_WARN, NULL, "spend: the writer did not finish within %ld ms: %zu record(s) "
               "still queued are lost", wait_ms, W.n);
    pthread_mutex_unlock(&W.lock);
    if (done) {
        pthread_join(W.thread, NULL);
        pthread_mutex_lock(&W.lock);
        W.started = 0;
        free(W.q);
        W.q = NULL;
        pthread_mutex_unlock(&W.lock);
    }
    return done ? 0 : -1;
}

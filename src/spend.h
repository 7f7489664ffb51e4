/* Spend tracking, off the request thread. After every LLM call request.c
 * hands a small self-contained record to sl_spend_record; a background
 * writer thread (one per process) writes them in batches, each batch one
 * transaction: the LiteLLM_SpendLogs rows (request_id is the primary key),
 * then atomic increments of the key's, team's and user's spend and the
 * sluice_daily_spend upsert, counting only the rows that were new. When the
 * database cannot take a batch it is appended to a spool file and replayed
 * first on the next successful flush (idempotent thanks to request_id).
 * See docs/database.md, "Spend". */
#ifndef SL_SPEND_H
#define SL_SPEND_H

#include <stddef.h>
#include <jansson.h>

/* Money is counted in units of 1e-10 USD (DECIMAL(20,10)'s last digit) so
 * sums are exact integers and a key's spend equals the sum of its rows. */
#define SL_SPEND_UNITS_PER_USD 10000000000LL

/* One LLM call. Strings are copied in (truncated to the column widths),
 * nothing points into a request arena. */
struct sl_spend_rec {
    char request_id[40];
    char api_key[65];            /* the key's token (SHA-256 hex); "" for the master key */
    char key_alias[256];
    char team_id[256];
    char user_id[256];
    char end_user[256];          /* the request's "user" field */
    char model_group[256];       /* the public model name asked for */
    char model[256];             /* the upstream model */
    char model_id[256];          /* the deployment id */
    char provider[64];
    char api_base[1024];         /* without its query string */
    char call_type[16];          /* "acompletion", "aembedding" */
    char status[8];              /* "success", "failure" */
    int  http_status;
    long long prompt_tokens, completion_tokens, total_tokens;
    long long cached_tokens, cache_write_tokens;
    long long spend_units;       /* cost in 1e-10 USD; 0 when unknown */
    long long start_us, end_us;  /* UTC, µs since the epoch */
    long long first_token_us;    /* UTC µs of the first upstream byte; 0: none */
    char cache_hit[8];           /* "True" answered from the response cache, "False" looked
                                  * up; "" the cache was not used (cache.h) */
    char cache_key[65];          /* the response cache key (hex), or "" */
};

/* Copies s into dst (size bytes), truncated on a UTF-8 character boundary,
 * always NUL-terminated; NULL copies "". For api_base, stop_at_query cuts at
 * the first '?'. */
void sl_spend_copy(char *dst, size_t size, const char *s, int stop_at_query);

/* USD → 1e-10 units (rounded to nearest; negative, NaN → 0). */
long long sl_spend_units(double usd);

/* Units as exact decimal text "12.0000001500" into out (at least 32 bytes). */
void sl_spend_format(long long units, char *out, size_t size);

/* A record as one JSON object (the spool line) and back. to_json: a new
 * reference or NULL on OOM. from_json: 0, or -1 when o is not a record. */
json_t *sl_spend_to_json(const struct sl_spend_rec *r);
int sl_spend_from_json(const json_t *o, struct sl_spend_rec *r);

/* Hands r to the writer (copied; never blocks on I/O except when the
 * in-memory queue is full, then r is appended to the spool file). Starts
 * the writer on first use. Does nothing without a database configured. */
void sl_spend_record(const struct sl_spend_rec *r);

/* Starts the writer now (optional: sl_spend_record starts it lazily).
 * An sl_status. */
int sl_spend_start(void);

/* Stops the writer: it flushes what is queued (to the database, else the
 * spool) and exits. Waits up to wait_ms; records still unwritten then are
 * lost (logged). Safe to call when the writer never started. 0 when no
 * writer runs any more; -1 when it is still busy (then the process must not
 * release the database library under it). */
int sl_spend_stop(long wait_ms);

/* The spool directory (sluice_settings.spend_spool_dir, else
 * $TMPDIR/sluice-spend, else /var/tmp/sluice-spend), made (0700) if
 * missing; malloc'ed, NULL on OOM. Other host-wide files live there too
 * (ctable.h's counters.shm). */
char *sl_spend_spool_dir(void);

#endif

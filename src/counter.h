/* Counters that every process and host shares, cheap enough for every
 * request: budgets (budget.c) and rate limits (ratelimit.c) reserve from
 * them at admission and settle when the call ends.
 *
 * A counter lives in memcached (one atomic increment moves it), but a
 * process does not go there for every call: it takes a *lease*, a block of
 * the counter's room reserved in memcached, and serves the next calls from
 * it in memory. Leases are sized from what is left (a sixteenth of it, at
 * most 64 calls' worth), so far from a limit a process makes about one
 * round trip per 64 calls, and near it every call is a round trip of its
 * own and the count is exact: everything admitted was reserved in the
 * shared counter first, so the counter's limit is never passed (by more
 * than the last call's own size for sums, by nothing for counts). What is
 * left of a lease goes back every maintenance tick (sl_counter_maintain).
 *
 * While memcached is not configured or does not answer, counters are kept
 * in a table shared by the processes of this host (ctable.h), so limits
 * hold per host.
 *
 * Besides these sums there are gauges (sl_gauge_*): a number of things in
 * progress (parallel requests), taken at admission and given back at the
 * end, in counters named by short periods so that a process that dies with
 * some taken cannot hold them past the next period. */
#ifndef SL_COUNTER_H
#define SL_COUNTER_H

#include "ctable.h"

struct sl_config;

enum { SL_HOLD_NONE, SL_HOLD_LOCAL, SL_HOLD_LEASE };

/* What a request took from one counter until it ends. */
struct sl_counter_hold {
    char name[SL_CTABLE_NAME];   /* the counter; "" when none is held */
    long long units;             /* reserved */
    int kind;                    /* SL_HOLD_LOCAL: the host table; SL_HOLD_LEASE: this
                                  * process's lease on the memcached counter */
};

/* One reservation. */
struct sl_counter_ask {
    long long base;              /* the counter's value from elsewhere (a budget's spend in
                                  * the database): it never counts less */
    long long max;               /* refused when what is taken before reaches it */
    long long est;               /* this call's size (>= 0) */
    long ttl_s;                  /* a new counter's life */
};

enum { SL_COUNTER_ADMITTED, SL_COUNTER_REFUSED, SL_COUNTER_UNCOUNTED };

/* Reserves ask->est in counter h->name (set by the caller; it names the
 * period or window too). SL_COUNTER_ADMITTED: h holds it; *used is what
 * the counter holds with this call (as far as this process can know: exact
 * after a round trip, the state of its last one while it serves from its
 * lease). SL_COUNTER_REFUSED: what was taken before already reached max
 * (*used is that amount); h is cleared. SL_COUNTER_UNCOUNTED: out of
 * memory; h is cleared and the call goes uncounted. */
int sl_counter_reserve(const struct sl_config *cfg, struct sl_counter_hold *h,
                       const struct sl_counter_ask *ask, long long *used);

/* Replaces what h reserved by actual (what the call really took) and clears
 * h. Safe on a cleared hold. */
void sl_counter_settle(struct sl_counter_hold *h, long long actual);

/* Forgets every counter (its leases, the host table's) whose name starts
 * with prefix, and deletes the memcached counter name (NULL: none). */
void sl_counter_forget(const struct sl_config *cfg, const char *prefix, const char *name);

/* ---- gauges --------------------------------------------------------------- */

/* A thing in progress held by a request. */
struct sl_gauge_hold {
    int slot;                    /* the gauge (+1); 0 when none is held */
};

/* Takes one of gauge prefix's max (prefix names it without its period,
 * e.g. "sluice:lim:pk:<id>:"). SL_COUNTER_ADMITTED with *used the number
 * taken with this one (as far as this process knows), REFUSED with *used
 * the number taken, UNCOUNTED (the gauge table is full). */
int sl_gauge_take(const struct sl_config *cfg, struct sl_gauge_hold *h, const char *prefix,
                  long long max, long long *used);

/* Gives back what h holds (cfg: the one it was taken with). Safe on an
 * empty hold. */
void sl_gauge_give(const struct sl_config *cfg, struct sl_gauge_hold *h);

/* ---- upkeep --------------------------------------------------------------- */

/* Returns what is left of this process's leases, moves the gauges this
 * process holds into the current period, and gives back gauge room it
 * holds unused. The spend writer calls it every flush interval and on the
 * way out; without it, leases are returned at once after each call (no
 * batching). */
void sl_counter_maintain(void);

/* The gauge period containing wall-clock second now_s: periods last
 * sluice_settings.parallel_lease_s, default SL_GAUGE_PERIOD_S. */
long long sl_gauge_period(const struct sl_config *cfg, long long now_s);
#define SL_GAUGE_PERIOD_S 30

#endif

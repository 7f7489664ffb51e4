/* PII and secret detection for the guardrails: a set of detectors compiled
 * once per configuration (built-ins, operator patterns, deny lists, an allow
 * list), one-shot scanning that masks with typed placeholders (<EMAIL_1>),
 * reports blocks and counts, restores placeholders, and streaming variants of
 * both that hold back only what may still turn into a match. Where a guardrail
 * runs (pre_call / post_call), and what a block answers, is the caller's
 * business. docs/guardrails.md explains detectors, limits and the window. */
#ifndef SL_PII_H
#define SL_PII_H

#include <stddef.h>

struct sl_arena;

#define SL_PII_MAX_DETECTORS 64     /* entries of one set (a deny list is one) */
#define SL_PII_MAX_NAME      32     /* detector name incl. NUL: [A-Z0-9_] */
#define SL_PII_STREAM_MAX_HOLD (32u << 10)  /* held stream text is flushed past this */

enum sl_pii_action {
    SL_PII_MASK = 0,   /* replace with <NAME_n>, same value same placeholder per map */
    SL_PII_BLOCK,      /* refuse: the report names the detector, never the value */
    SL_PII_LOG,        /* count only; the text passes unchanged */
};

enum sl_pii_type {
    SL_PII_BUILTIN = 0, /* name: EMAIL, PHONE, ... or a Presidio entity (EMAIL_ADDRESS) */
    SL_PII_PATTERN,     /* name + PCRE2 pattern (UTF mode), bounded by match limits */
    SL_PII_DENY,        /* name + keywords/phrases: case-insensitive, word-bounded */
    SL_PII_ALLOW,       /* values: exact strings exempt from every detector */
};

/* One entry of a configuration. Strings are borrowed for the duration of
 * sl_pii_compile only; the set copies what it keeps. */
struct sl_pii_spec {
    enum sl_pii_type type;
    const char *name;           /* BUILTIN: detector or entity; PATTERN/DENY: the label
                                   used in placeholders and reports (upper-cased, [A-Z0-9_]) */
    enum sl_pii_action action;  /* not used by ALLOW */
    const char *pattern;        /* PATTERN only */
    const char *const *values;  /* DENY: keywords; ALLOW: exempt values */
    size_t nvalues;
    unsigned long match_limit;  /* PATTERN/DENY: PCRE2 match limit, 0 = default (100000) */
};

/* Compiled detectors, immutable after sl_pii_compile: share it across threads. */
struct sl_pii_set;
/* The per-request value <-> placeholder map; lives in the request arena. */
struct sl_pii_map;

/* One detection: bytes [start, end) of the scanned text. */
struct sl_pii_hit {
    size_t start, end;
    unsigned det;               /* detector index, see sl_pii_detector_name */
};

/* What a scan found. Counts are per detector index, hits of every action. */
struct sl_pii_report {
    const char *blocked;        /* name of the BLOCK detector that fired (set-owned), or NULL */
    unsigned total;             /* detections, all actions */
    unsigned masked;            /* of which replaced by placeholders */
    unsigned limit_hits;        /* operator patterns that hit their match limit (skipped) */
    unsigned counts[SL_PII_MAX_DETECTORS];
};

/* Compiles specs into *out (the caller frees it with sl_pii_free). specs ==
 * NULL with n == 0 means the default set: every built-in with SL_PII_MASK.
 * Returns SL_OK, SL_ERR_NOMEM, or SL_ERR_CONFIG with a message in err naming
 * the entry (and, for a pattern, the PCRE2 error and its offset). */
int sl_pii_compile(const struct sl_pii_spec *specs, size_t n, struct sl_pii_set **out,
                   char *err, size_t errlen);
void sl_pii_free(struct sl_pii_set *set);

/* The built-in detector a name stands for: our own names (EMAIL, PHONE,
 * CREDIT_CARD, IBAN, US_SSN, IP_ADDRESS, AWS_ACCESS_KEY, PRIVATE_KEY, API_KEY)
 * or Presidio's entity names (EMAIL_ADDRESS, PHONE_NUMBER, IBAN_CODE, ...).
 * Returns our static name, or NULL when there is no such detector. */
const char *sl_pii_builtin_name(const char *name);

/* Detector count of a set and the label of detector i (set-owned). */
unsigned sl_pii_detector_count(const struct sl_pii_set *set);
const char *sl_pii_detector_name(const struct sl_pii_set *set, unsigned i);

/* A new, empty map in arena memory; NULL on OOM. */
struct sl_pii_map *sl_pii_map_new(struct sl_arena *arena);
/* Values masked so far. */
size_t sl_pii_map_size(const struct sl_pii_map *map);

/* Detections in text (all actions, allow list applied), sorted and
 * non-overlapping, in arena memory. SL_OK or SL_ERR_NOMEM. */
int sl_pii_find(const struct sl_pii_set *set, struct sl_arena *arena, const char *text,
                size_t len, struct sl_pii_hit **hits, size_t *nhits, struct sl_pii_report *rep);

/* Scans text and applies the actions. On SL_OK: when rep->blocked is set,
 * *out is NULL (stop: nothing to send); otherwise *out holds the text to send
 * (arena memory, NUL-terminated, or text itself when nothing was masked) and
 * *out_len its length. Placeholders are recorded in map (which may be NULL
 * when no detector masks). Other returns: SL_ERR_NOMEM. rep may be NULL. */
int sl_pii_scan(const struct sl_pii_set *set, struct sl_pii_map *map, struct sl_arena *arena,
                const char *text, size_t len, const char **out, size_t *out_len,
                struct sl_pii_report *rep);

/* Text with every placeholder of map replaced by its original (arena
 * memory, NUL-terminated; text itself when there is nothing to restore);
 * NULL on OOM. */
const char *sl_pii_restore(const struct sl_pii_map *map, struct sl_arena *arena,
                           const char *text, size_t len, size_t *out_len);

/* Streaming scan: feed chunks as they come; each call hands back the text
 * that is safe to send now (possibly empty) and holds back the rest, which is
 * only what may still become part of a detection: the trailing word (an '@'
 * may follow) and any candidate still open at the end of the chunk. finish
 * flushes it. Output (*out, *out_len) is stream-owned and valid until the
 * next call. Same returns and block rule as sl_pii_scan; rep accumulates over
 * the calls given the same report. Everything lives in the arena. */
struct sl_pii_stream;
struct sl_pii_stream *sl_pii_stream_new(const struct sl_pii_set *set, struct sl_pii_map *map,
                                        struct sl_arena *arena);
int sl_pii_stream_feed(struct sl_pii_stream *st, const char *chunk, size_t len,
                       const char **out, size_t *out_len, struct sl_pii_report *rep);
int sl_pii_stream_finish(struct sl_pii_stream *st, const char **out, size_t *out_len,
                         struct sl_pii_report *rep);

/* Streaming restore: a placeholder split over chunks is held until whole. */
struct sl_pii_unstream;
struct sl_pii_unstream *sl_pii_unstream_new(const struct sl_pii_map *map, struct sl_arena *arena);
int sl_pii_unstream_feed(struct sl_pii_unstream *us, const char *chunk, size_t len,
                         const char **out, size_t *out_len);
int sl_pii_unstream_finish(struct sl_pii_unstream *us, const char **out, size_t *out_len);

#endif

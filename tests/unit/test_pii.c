/* PII engine: the labelled corpus in tests/data/pii (precision and recall per
 * detector, no false positive on the negatives), streaming equal to one-shot
 * at every split point, masking consistency, block and log actions, restore
 * (whole and streamed), deny and allow lists, Presidio names, invalid UTF-8,
 * operator patterns under match limits, compile errors, and OOM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "pii.h"
#include "status.h"
#include "tap.h"

#define MAX_SPANS 16
#define MAX_CHUNKS 16
#define TXT(s) (s), strlen(s)

struct span {
    size_t s, e;
};

struct line {
    char det[32];
    char text[8192];
    size_t len;
    struct span sp[MAX_SPANS];
    size_t nsp;
    size_t cut[MAX_CHUNKS];          /* chunk boundaries ("<|>"), streams.tsv */
    size_t ncut;
};

struct score {
    const char *name;
    unsigned tp, fp, fn, neg_fp;
};

static struct score scores[SL_PII_MAX_DETECTORS];
static struct sl_pii_set *defset;
static struct sl_arena *arena;

/* Parses "DET<TAB>text" with escapes, [[ ]] spans and <|> chunk marks. */
static int parse_line(const char *raw, struct line *ln)
{
    const char *tab = strchr(raw, '\t'), *p;
    size_t o = 0;

    memset(ln, 0, sizeof(*ln));
    if (tab == NULL || (size_t)(tab - raw) >= sizeof(ln->det))
        return -1;
    memcpy(ln->det, raw, (size_t)(tab - raw));
    for (p = tab + 1; *p && *p != '\n' && o + 1 < sizeof(ln->text); p++) {
        if (p[0] == '[' && p[1] == '[') {
            ln->sp[ln->nsp].s = o;
            p++;
        } else if (p[0] == ']' && p[1] == ']' && ln->nsp < MAX_SPANS) {
            ln->sp[ln->nsp++].e = o;
            p++;
        } else if (p[0] == '<' && p[1] == '|' && p[2] == '>' && ln->ncut < MAX_CHUNKS) {
            ln->cut[ln->ncut++] = o;
            p += 2;
        } else if (p[0] == '\\' && p[1] == 'n') {
            ln->text[o++] = '\n';
            p++;
        } else if (p[0] == '\\' && p[1] == 't') {
            ln->text[o++] = '\t';
            p++;
        } else if (p[0] == '\\' && p[1] == '\\') {
            ln->text[o++] = '\\';
            p++;
        } else
            ln->text[o++] = *p;
    }
    ln->text[o] = '\0';
    ln->len = o;
    return 0;
}

static struct score *score_of(const char *name)
{
    for (int i = 0; i < SL_PII_MAX_DETECTORS; i++) {
        if (scores[i].name == NULL)
            scores[i].name = name;
        if (strcmp(scores[i].name, name) == 0)
            return &scores[i];
    }
    return NULL;
}

/* One-shot masked text of a line with a fresh map (arena memory). */
static const char *mask_once(const struct sl_pii_set *set, const char *t, size_t n, size_t *olen)
{
    const char *out = NULL;
    struct sl_pii_map *map = sl_pii_map_new(arena);

    if (map == NULL || sl_pii_scan(set, map, arena, t, n, &out, olen, NULL) != SL_OK)
        return NULL;
    return out;
}

/* The text fed in chunks cut at cuts[0..n) (ascending), joined output. */
static char *mask_stream(const struct sl_pii_set *set, const char *t, size_t len,
                         const size_t *cuts, size_t n, size_t *olen)
{
    struct sl_pii_map *map = sl_pii_map_new(arena);
    struct sl_pii_stream *st = sl_pii_stream_new(set, map, arena);
    char *acc = malloc(len * 4 + 64);
    size_t pos = 0, o = 0;
    const char *out;
    size_t ol;

    if (map == NULL || st == NULL || acc == NULL) {
        free(acc);
        return NULL;
    }
    for (size_t i = 0; i <= n; i++) {
        size_t end = i < n ? cuts[i] : len;

        if (sl_pii_stream_feed(st, t + pos, end - pos, &out, &ol, NULL) != SL_OK || out == NULL)
            goto fail;
        memcpy(acc + o, out, ol);
        o += ol;
        pos = end;
    }
    if (sl_pii_stream_finish(st, &out, &ol, NULL) != SL_OK || out == NULL)
        goto fail;
    memcpy(acc + o, out, ol);
    o += ol;
    acc[o] = '\0';
    *olen = o;
    return acc;
fail:
    free(acc);
    return NULL;
}

/* Scores the detections of one line against its spans. */
static void score_line(const struct line *ln, int negative, char *why, size_t whylen)
{
    struct sl_pii_hit *h;
    size_t n;

    why[0] = '\0';
    if (sl_pii_find(defset, arena, ln->text, ln->len, &h, &n, NULL) != SL_OK) {
        snprintf(why, whylen, "find failed");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *dn = sl_pii_detector_name(defset, h[i].det);
        int matched = 0;

        for (size_t k = 0; k < ln->nsp && !negative; k++)
            if (ln->sp[k].s == h[i].start && ln->sp[k].e == h[i].end && strcmp(dn, ln->det) == 0)
                matched = 1;
        if (matched)
            score_of(dn)->tp++;
        else {
            if (negative)
                score_of(ln->det)->neg_fp++;
            score_of(dn)->fp++;
            snprintf(why + strlen(why), whylen - strlen(why), " extra %s [%zu,%zu) '%.*s'", dn,
                     h[i].start, h[i].end, (int)(h[i].end - h[i].start), ln->text + h[i].start);
        }
    }
    for (size_t k = 0; k < ln->nsp; k++) {
        int found = 0;

        for (size_t i = 0; i < n; i++)
            if (ln->sp[k].s == h[i].start && ln->sp[k].e == h[i].end &&
                strcmp(sl_pii_detector_name(defset, h[i].det), ln->det) == 0)
                found = 1;
        if (!found) {
            score_of(ln->det)->fn++;
            snprintf(why + strlen(why), whylen - strlen(why), " missed [%zu,%zu) '%.*s'",
                     ln->sp[k].s, ln->sp[k].e, (int)(ln->sp[k].e - ln->sp[k].s),
                     ln->text + ln->sp[k].s);
        }
    }
}

/* Streaming equals one-shot: every two-chunk split, and byte by byte. */
static int stream_matches(const struct sl_pii_set *set, const struct line *ln, char *why, size_t whylen)
{
    size_t olen, slen, cut[MAX_CHUNKS * 8];
    const char *once = mask_once(set, ln->text, ln->len, &olen);
    char *got;

    if (once == NULL)
        return 0;
    for (size_t k = 0; k <= ln->len; k++) {
        cut[0] = k;
        got = mask_stream(set, ln->text, ln->len, cut, 1, &slen);
        if (got == NULL || slen != olen || memcmp(got, once, olen) != 0) {
            snprintf(why, whylen, "split at %zu: got '%s' want '%s'", k, got ? got : "(fail)", once);
            free(got);
            return 0;
        }
        free(got);
    }
    if (ln->len < sizeof(cut) / sizeof(cut[0])) {
        for (size_t k = 0; k + 1 < ln->len; k++)
            cut[k] = k + 1;
        got = mask_stream(set, ln->text, ln->len, cut, ln->len > 0 ? ln->len - 1 : 0, &slen);
        if (got == NULL || slen != olen || memcmp(got, once, olen) != 0) {
            snprintf(why, whylen, "byte by byte: got '%s' want '%s'", got ? got : "(fail)", once);
            free(got);
            return 0;
        }
        free(got);
    }
    if (ln->ncut > 0) {
        got = mask_stream(set, ln->text, ln->len, ln->cut, ln->ncut, &slen);
        if (got == NULL || slen != olen || memcmp(got, once, olen) != 0) {
            snprintf(why, whylen, "chunks: got '%s' want '%s'", got ? got : "(fail)", once);
            free(got);
            return 0;
        }
        free(got);
    }
    return 1;
}

static void run_corpus(const char *dir, const char *file, int negative)
{
    char path[1024], raw[16384], why[2048], name[256];
    struct line *ln = malloc(sizeof(*ln));
    unsigned nlines = 0, nstream_bad = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/pii/%s", dir, file);
    f = fopen(path, "r");
    ok(f != NULL && ln != NULL, "corpus file opens");
    if (f == NULL || ln == NULL) {
        free(ln);
        return;
    }
    while (fgets(raw, sizeof(raw), f) != NULL) {
        if (raw[0] == '#' || raw[0] == '\n')
            continue;
        if (parse_line(raw, ln) != 0) {
            ok(0, "corpus line parses");
            continue;
        }
        nlines++;
        score_line(ln, negative, why, sizeof(why));
        if (why[0] != '\0') {
            snprintf(name, sizeof(name), "%s:%u (%s) detections as labelled", file, nlines, ln->det);
            ok(0, name);
            printf("#  %s\n#  text: %s\n", why, ln->text);
        }
        if (!stream_matches(defset, ln, why, sizeof(why))) {
            nstream_bad++;
            snprintf(name, sizeof(name), "%s:%u (%s) streaming equals one-shot", file, nlines, ln->det);
            ok(0, name);
            printf("#  %s\n", why);
        }
        sl_arena_reset(arena);
    }
    fclose(f);
    free(ln);
    snprintf(name, sizeof(name), "%s: %u lines, streaming equal to one-shot at every split", file, nlines);
    ok(nlines > 0 && nstream_bad == 0, name);
}

static void report_scores(void)
{
    char name[200];

    printf("# detector          TP   FP   FN  neg-FP  precision  recall\n");
    for (int i = 0; i < SL_PII_MAX_DETECTORS && scores[i].name != NULL; i++) {
        struct score *s = &scores[i];
        double p = s->tp + s->fp ? (double)s->tp / (s->tp + s->fp) : 1.0;
        double r = s->tp + s->fn ? (double)s->tp / (s->tp + s->fn) : 1.0;

        printf("# %-16s %4u %4u %4u %6u  %9.3f  %6.3f\n", s->name, s->tp, s->fp, s->fn, s->neg_fp, p, r);
        if (strcmp(s->name, "NONE") == 0)
            continue;
        snprintf(name, sizeof(name), "%s: recall %.3f >= 0.99", s->name, r);
        ok(r >= 0.99, name);
        snprintf(name, sizeof(name), "%s: no false positive on the negatives (%u)", s->name, s->neg_fp);
        ok(s->neg_fp == 0, name);
    }
    ok(score_of("NONE")->neg_fp == 0, "plain prose and code: no detection");
}

static struct sl_pii_set *compile1(const struct sl_pii_spec *sp, size_t n)
{
    struct sl_pii_set *set = NULL;
    char err[256];

    if (sl_pii_compile(sp, n, &set, err, sizeof(err)) != SL_OK)
        printf("#  compile: %s\n", err);
    return set;
}

static void test_masking(void)
{
    const char *t = "Mail a@example.com, then b@example.com, then a@example.com; call +49 30 12345678.";
    const char *t2 = "Again: b@example.com and c@example.com";
    struct sl_pii_map *map = sl_pii_map_new(arena);
    struct sl_pii_report rep = { 0 };
    const char *out;
    size_t olen, rlen;
    const char *back;

    ok(sl_pii_scan(defset, map, arena, t, strlen(t), &out, &olen, &rep) == SL_OK, "scan ok");
    is_str(out, "Mail <EMAIL_1>, then <EMAIL_2>, then <EMAIL_1>; call <PHONE_1>.",
           "same value, same placeholder; counters per type");
    is_int(rep.total, 4, "four detections");
    is_int(rep.masked, 4, "all masked");
    ok(rep.blocked == NULL, "nothing blocked");
    ok(sl_pii_scan(defset, map, arena, t2, strlen(t2), &out, &olen, NULL) == SL_OK, "second message");
    is_str(out, "Again: <EMAIL_2> and <EMAIL_3>", "placeholders hold across the messages of a request");
    is_int(sl_pii_map_size(map), 4, "four values in the map");
    back = sl_pii_restore(map, arena, TXT("Reply to <EMAIL_2> and <EMAIL_3>, not <EMAIL_9> or <email_1>."), &rlen);
    is_str(back, "Reply to b@example.com and c@example.com, not <EMAIL_9> or <email_1>.",
           "restore maps known placeholders back, leaves the rest");
    ok(sl_pii_scan(defset, map, arena, "nothing here", 12, &out, &olen, NULL) == SL_OK &&
       strcmp(out, "nothing here") == 0, "clean text passes unchanged");
    back = sl_pii_restore(map, arena, "no placeholders", 15, &rlen);
    is_str(back, "no placeholders", "restore of clean text");
    sl_arena_reset(arena);
}

static void test_block_and_log(void)
{
    struct sl_pii_spec sp[] = {
        { .type = SL_PII_BUILTIN, .name = "EMAIL_ADDRESS", .action = SL_PII_LOG },
        { .type = SL_PII_BUILTIN, .name = "CREDIT_CARD", .action = SL_PII_BLOCK },
    };
    struct sl_pii_set *set = compile1(sp, 2);
    struct sl_pii_map *map = sl_pii_map_new(arena);
    struct sl_pii_report rep = { 0 };
    const char *t = "me@example.com pays with 4111 1111 1111 1111", *out = "x";
    size_t olen;

    ok(set != NULL, "compile with a Presidio entity name");
    ok(sl_pii_scan(set, map, arena, t, strlen(t), &out, &olen, &rep) == SL_OK, "scan ok");
    is_str(rep.blocked, "CREDIT_CARD", "the block names the detector");
    ok(out == NULL, "a blocked scan hands out no text");
    ok(rep.blocked != NULL && strstr(rep.blocked, "4111") == NULL, "the report never holds the value");
    memset(&rep, 0, sizeof(rep));
    ok(sl_pii_scan(set, map, arena, t, 14, &out, &olen, &rep) == SL_OK && out == t,
       "log-only: the text passes unchanged");
    is_int(rep.counts[0], 1, "log-only: counted");
    is_int(rep.masked, 0, "log-only: nothing masked");
    is_int(sl_pii_map_size(map), 0, "log-only: nothing in the map");
    sl_pii_free(set);
    sl_arena_reset(arena);
}

static void test_restore_stream(void)
{
    const char *t = "Ask x@example.com or y@example.org about 4111 1111 1111 1111.";
    struct sl_pii_map *map = sl_pii_map_new(arena);
    const char *masked, *out;
    size_t mlen, ol, bad = 0;

    ok(sl_pii_scan(defset, map, arena, t, strlen(t), &masked, &mlen, NULL) == SL_OK, "mask");
    masked = sl_arena_strndup(arena, masked, mlen);
    for (size_t a = 0; a <= mlen; a++)
        for (size_t b = a; b <= mlen; b += 3) {
            struct sl_pii_unstream *us = sl_pii_unstream_new(map, arena);
            char acc[256];
            size_t o = 0;
            size_t cuts[3] = { a, b, mlen }, pos = 0;

            for (int k = 0; k < 3 && us != NULL; k++) {
                if (sl_pii_unstream_feed(us, masked + pos, cuts[k] - pos, &out, &ol) != SL_OK)
                    break;
                memcpy(acc + o, out, ol);
                o += ol;
                pos = cuts[k];
            }
            if (us == NULL || sl_pii_unstream_finish(us, &out, &ol) != SL_OK) {
                bad++;
                continue;
            }
            memcpy(acc + o, out, ol);
            o += ol;
            if (o != strlen(t) || memcmp(acc, t, o) != 0)
                bad++;
        }
    is_int(bad, 0, "streamed restore equals the original at every pair of split points");
    {
        struct sl_pii_unstream *us = sl_pii_unstream_new(map, arena);

        ok(us != NULL && sl_pii_unstream_feed(us, "a <EMAIL", 8, &out, &ol) == SL_OK &&
           ol == 2 && memcmp(out, "a ", 2) == 0, "a placeholder start is held");
        ok(sl_pii_unstream_finish(us, &out, &ol) == SL_OK && ol == 6 && memcmp(out, "<EMAIL", 6) == 0,
           "and flushed as is at the end");
    }
    sl_arena_reset(arena);
}

static void test_stream_delay(void)
{
    struct sl_pii_map *map = sl_pii_map_new(arena);
    struct sl_pii_stream *st = sl_pii_stream_new(defset, map, arena);
    const char *out;
    size_t ol;

    ok(sl_pii_stream_feed(st, "Hello there, how are ", 21, &out, &ol, NULL) == SL_OK &&
       ol == 21, "prose ending in a space is sent at once");
    ok(sl_pii_stream_feed(st, "you", 3, &out, &ol, NULL) == SL_OK && ol == 0,
       "a trailing word is held (an '@' may follow)");
    ok(sl_pii_stream_feed(st, "? Mail me: bob", 14, &out, &ol, NULL) == SL_OK &&
       ol == 14 && memcmp(out, "you? Mail me: ", 14) == 0, "released when the word ends");
    ok(sl_pii_stream_feed(st, "@example.com", 12, &out, &ol, NULL) == SL_OK && ol == 0,
       "an address at the end of a chunk is held");
    ok(sl_pii_stream_feed(st, " ok", 3, &out, &ol, NULL) == SL_OK && ol == 10 &&
       memcmp(out, "<EMAIL_1> ", 10) == 0, "then sent masked");
    ok(sl_pii_stream_finish(st, &out, &ol, NULL) == SL_OK && ol == 2, "finish flushes the rest");
    sl_arena_reset(arena);
}

static void test_operator_patterns(void)
{
    static const char *const deny[] = { "ignore previous instructions", "Passwort", "機密" };
    static const char *const allow[] = { "support@example.com" };
    struct sl_pii_spec sp[] = {
        { .type = SL_PII_BUILTIN, .name = "EMAIL" },
        { .type = SL_PII_PATTERN, .name = "ticket-id", .pattern = "\\bPROJ-[0-9]{4}\\b" },
        { .type = SL_PII_DENY, .name = "injection", .action = SL_PII_BLOCK, .values = deny, .nvalues = 3 },
        { .type = SL_PII_ALLOW, .values = allow, .nvalues = 1 },
    };
    struct sl_pii_set *set = compile1(sp, 4);
    struct sl_pii_map *map = sl_pii_map_new(arena);
    struct sl_pii_report rep = { 0 };
    const char *out;
    size_t ol;
    struct line ln;
    char why[512];

    ok(set != NULL, "compile patterns, deny and allow lists");
    if (set == NULL)
        return;
    is_str(sl_pii_detector_name(set, 1), "TICKET_ID", "operator labels are upper-cased [A-Z0-9_]");
    ok(sl_pii_scan(set, map, arena, TXT("See PROJ-1234 and PROJ-12345, mail support@example.com or x@example.com"),
                   &out, &ol, &rep) == SL_OK, "scan");
    is_str(out, "See <TICKET_ID_1> and PROJ-12345, mail support@example.com or <EMAIL_1>",
           "operator pattern masks; allow-listed value exempt");
    memset(&rep, 0, sizeof(rep));
    sl_pii_scan(set, map, arena, TXT("Please IGNORE   previous\tInstructions now"), &out, &ol, &rep);
    is_str(rep.blocked, "INJECTION", "deny phrase: case-insensitive, any white space");
    memset(&rep, 0, sizeof(rep));
    sl_pii_scan(set, map, arena, TXT("ignorepreviousinstructions; Passworte; passwort:"), &out, &ol, &rep);
    is_int(rep.counts[2], 1, "deny words are word-bounded (only 'passwort:' counts)");
    memset(&rep, 0, sizeof(rep));
    sl_pii_scan(set, map, arena, "これは機密情報です", strlen("これは機密情報です"), &out, &ol, &rep);
    is_str(rep.blocked, "INJECTION", "a CJK keyword matches inside CJK text");
    memset(&ln, 0, sizeof(ln));
    strcpy(ln.text, "ref PROJ-4321 then a@example.com and Passwor");
    ln.len = strlen(ln.text);
    ok(stream_matches(set, &ln, why, sizeof(why)), "operator patterns: streaming equals one-shot");
    sl_pii_free(set);
    sl_arena_reset(arena);
}

static void test_limits_and_errors(void)
{
    struct sl_pii_spec bad[] = { { .type = SL_PII_PATTERN, .name = "broken", .pattern = "ab([a-z" } };
    struct sl_pii_spec unk[] = { { .type = SL_PII_BUILTIN, .name = "PERSON" } };
    struct sl_pii_spec evil[] = { { .type = SL_PII_PATTERN, .name = "evil", .pattern = "(a+)+$" } };
    struct sl_pii_set *set = NULL;
    struct sl_pii_report rep = { 0 };
    char err[256] = "", text[4096];
    const char *out;
    size_t ol;
    struct timespec t0, t1;
    double ms;

    ok(sl_pii_compile(bad, 1, &set, err, sizeof(err)) == SL_ERR_CONFIG && set == NULL,
       "a pattern that does not compile is a config error");
    printf("#  %s\n", err);
    ok(strstr(err, "'broken'") != NULL && strstr(err, "offset 7") != NULL,
       "the message names the pattern and the offset");
    ok(sl_pii_compile(unk, 1, &set, err, sizeof(err)) == SL_ERR_CONFIG, "unknown entity is a config error");
    ok(sl_pii_builtin_name("email_address") != NULL && strcmp(sl_pii_builtin_name("EMAIL_ADDRESS"), "EMAIL") == 0 &&
       strcmp(sl_pii_builtin_name("PHONE_NUMBER"), "PHONE") == 0 &&
       strcmp(sl_pii_builtin_name("IBAN_CODE"), "IBAN") == 0 &&
       strcmp(sl_pii_builtin_name("US_SSN"), "US_SSN") == 0 &&
       strcmp(sl_pii_builtin_name("IP_ADDRESS"), "IP_ADDRESS") == 0 &&
       strcmp(sl_pii_builtin_name("CREDIT_CARD"), "CREDIT_CARD") == 0 &&
       sl_pii_builtin_name("PERSON") == NULL, "Presidio entity names map onto the detectors");
    set = compile1(evil, 1);
    ok(set != NULL, "a catastrophic pattern compiles");
    memset(text, 'a', sizeof(text) - 2);
    text[sizeof(text) - 2] = 'b';
    text[sizeof(text) - 1] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ok(set != NULL && sl_pii_scan(set, sl_pii_map_new(arena), arena, text, strlen(text), &out, &ol, &rep) == SL_OK,
       "scan returns");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("#  (a+)+$ on 4 KB of 'a' then 'b': %.2f ms\n", ms);
    ok(rep.limit_hits == 1 && ms < 1000, "it stops at its match limit, reported");
    ok(out == text, "and the text passes unchanged");
    sl_pii_free(set);
    sl_arena_reset(arena);
}

static void test_invalid_utf8(void)
{
    static const char *const deny[] = { "geheim" };
    struct sl_pii_spec sp[] = {
        { .type = SL_PII_BUILTIN, .name = "EMAIL" }, { .type = SL_PII_BUILTIN, .name = "PHONE" },
        { .type = SL_PII_PATTERN, .name = "word", .pattern = "\\w+é" },
        { .type = SL_PII_DENY, .name = "deny", .values = deny, .nvalues = 1 },
    };
    struct sl_pii_set *set = compile1(sp, 4);
    const char *t = "\xff\xfe x@example.com \xc3( geheim \xe3\x81 caf\xc3\xa9 \xf0\x9f";
    const char *out;
    size_t ol, bad = 0;
    unsigned seed = 12345;
    char buf[512];
    struct line ln;
    char why[512];

    ok(set != NULL, "compile");
    if (set == NULL)
        return;
    ok(sl_pii_scan(set, sl_pii_map_new(arena), arena, t, strlen(t), &out, &ol, NULL) == SL_OK, "scan of invalid UTF-8");
    is_str(out, "\xff\xfe <EMAIL_1> \xc3( <DENY_1> \xe3\x81 <WORD_1> \xf0\x9f",
           "valid runs are scanned, invalid bytes pass through");
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)(rand_r(&seed) % sizeof(buf));

        for (size_t i = 0; i < n; i++) {
            static const char pool[] = "a@b.c0123456789+-() :.\xc3\xa9\xe3\x81\x82\xff\x80\xf0-----BEGIN sk-AKIA";

            buf[i] = pool[rand_r(&seed) % (sizeof(pool) - 1)];
        }
        if (sl_pii_scan(set, sl_pii_map_new(arena), arena, buf, n, &out, &ol, NULL) != SL_OK ||
            sl_pii_scan(defset, sl_pii_map_new(arena), arena, buf, n, &out, &ol, NULL) != SL_OK)
            bad++;
        if (round % 100 == 0) {
            memset(&ln, 0, sizeof(ln));
            memcpy(ln.text, buf, n);
            ln.len = n;
            if (!stream_matches(set, &ln, why, sizeof(why)) || !stream_matches(defset, &ln, why, sizeof(why)))
                bad++;
        }
        sl_arena_reset(arena);
    }
    is_int(bad, 0, "random bytes: no failure, streaming equals one-shot");
    sl_pii_free(set);
}

static void test_oom(void)
{
    const char *t = "a@example.com b@example.com +49 30 12345678 4111 1111 1111 1111 DE89370400440532013000";
    int nomem = 0, okays = 0, other = 0;

    /* the arena's first block (16 KB) is also its cap: fill all of it but
     * free bytes, so that every allocation of the scan in turn fails */
    for (size_t free_bytes = 0; free_bytes < 6000; free_bytes += 16) {
        struct sl_arena *a = sl_arena_create(16u << 10);
        struct sl_pii_map *map = a && sl_arena_alloc(a, (16u << 10) - free_bytes) ? sl_pii_map_new(a) : NULL;
        const char *out;
        size_t ol;
        int rc;

        if (map == NULL) {
            sl_arena_free(a);
            continue;
        }
        rc = sl_pii_scan(defset, map, a, t, strlen(t), &out, &ol, NULL);
        if (rc == SL_ERR_NOMEM)
            nomem++;
        else if (rc == SL_OK && strstr(out, "<IBAN_1>") != NULL)
            okays++;
        else {
            other++;
            printf("#  %zu bytes free: rc %d out %s\n", free_bytes, rc, rc == SL_OK ? out : "-");
        }
        sl_arena_free(a);
    }
    printf("#  %d runs out of memory, %d complete\n", nomem, okays);
    ok(nomem > 0 && okays > 0 && other == 0, "a full arena: SL_ERR_NOMEM, never a wrong answer");
}

int main(void)
{
    const char *data = getenv("SL_TEST_DATA");
    char err[256];

    if (data == NULL)
        data = "tests/data";
    arena = sl_arena_create(64u << 20);
    ok(sl_pii_compile(NULL, 0, &defset, err, sizeof(err)) == SL_OK, "default set compiles");
    if (defset == NULL || arena == NULL)
        return tap_done();
    is_int(sl_pii_detector_count(defset), 9, "nine built-in detectors");
    run_corpus(data, "positives.tsv", 0);
    run_corpus(data, "streams.tsv", 0);
    run_corpus(data, "negatives.tsv", 1);
    report_scores();
    test_masking();
    test_block_and_log();
    test_restore_stream();
    test_stream_delay();
    test_operator_patterns();
    test_limits_and_errors();
    test_invalid_utf8();
    test_oom();
    sl_pii_free(defset);
    sl_arena_free(arena);
    return tap_done();
}

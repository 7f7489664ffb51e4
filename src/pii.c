/* PII detection engine of the guardrails. One pass over the text looks only
 * at a few trigger bytes ('@', digits and a handful of letters at the start of
 * a word, "-----BEGIN", '+', '(', "::") and runs anchored PCRE2 patterns (or a
 * small C parser) there, then checks what a pattern cannot (Luhn, mod-97, SSN
 * ranges, IBAN lengths). Operator patterns and deny lists are PCRE2 searches
 * over the whole text, under match limits. Masking, restore and the streaming
 * variants are built on one scanner that can tell "no match" from "cannot tell
 * yet" at the end of a chunk. Config wiring and hooks live elsewhere. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "pii.h"
#include "status.h"

#define DEFAULT_MATCH_LIMIT 100000ul
#define DEFAULT_DEPTH_LIMIT 1000u    /* interpreter only: JIT ignores it */
#define DEFAULT_HEAP_LIMIT  1024u    /* KiB, interpreter only */
#define PEM_CAP        (16u << 10)   /* longest PEM block we follow (RSA-8192 is ~6.5 KB) */
#define STREAM_CTX     128u          /* emitted bytes kept for lookbehind and the e-mail back-scan */
#define EMAIL_LOCAL_MAX 64u
#define PLACEHOLDER_MAX 64u          /* longest "<NAME_n>" restore looks at */

/* The built-in detectors, in report order. */
enum builtin {
    B_EMAIL, B_PHONE, B_CREDIT_CARD, B_IBAN, B_US_SSN, B_IP_ADDRESS,
    B_AWS_ACCESS_KEY, B_PRIVATE_KEY, B_API_KEY, B_COUNT
};

static const char *const builtin_names[B_COUNT] = {
    "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS",
    "AWS_ACCESS_KEY", "PRIVATE_KEY", "API_KEY",
};

/* Presidio's entity names (LiteLLM pii_entities_config) -> ours. */
static const struct { const char *entity; enum builtin b; } entity_map[] = {
    { "EMAIL_ADDRESS", B_EMAIL }, { "PHONE_NUMBER", B_PHONE },
    { "CREDIT_CARD", B_CREDIT_CARD }, { "IBAN_CODE", B_IBAN }, { "US_SSN", B_US_SSN },
    { "IP_ADDRESS", B_IP_ADDRESS }, { "AWS_ACCESS_KEY_ID", B_AWS_ACCESS_KEY },
};

/* Anchored patterns (compiled with PCRE2_ANCHORED so JIT serves them), in
 * byte mode: they only ever match ASCII, so any input, valid UTF-8 or not, is
 * safe, and a match never splits a character. */
enum re_id {
    R_EMAIL, R_SSN, R_IPV4, R_PHONE_INTL, R_PHONE_PAREN, R_PHONE_ZERO, R_PHONE_NANP,
    R_IBAN, R_AWS, R_PEM_BEGIN, R_PEM_END, R_SK, R_STRIPE, R_GH, R_GHPAT, R_GLPAT,
    R_XOX, R_HF, R_AIZA, R_BEARER, R_COUNT
};

static const char *const re_src[R_COUNT] = {
    [R_EMAIL] = "(?:[A-Za-z0-9._%+\\-]|[\\xC3-\\xC9][\\x80-\\xBF]){1,64}@"
                "(?:[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?\\.){1,8}[A-Za-z]{2,63}"
                "(?![A-Za-z0-9_\\-]|\\.[A-Za-z0-9])",
    [R_SSN] = "[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9A-Za-z_]|-[0-9])",
    [R_IPV4] = "(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}"
               "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?![0-9A-Za-z_]|\\.[0-9])",
    [R_PHONE_INTL] = "\\+[0-9]{1,3}(?:[ .\\-]?\\([0-9]{1,4}\\))?[ .\\-]?[0-9]{1,5}"
                     "(?:[ .\\-]?[0-9]{2,5}){0,5}(?![0-9A-Za-z_])",
    [R_PHONE_PAREN] = "\\([0-9]{2,5}\\)[ .\\-]?[0-9]{2,5}(?:[ .\\-]?[0-9]{2,5}){0,3}(?![0-9A-Za-z_])",
    [R_PHONE_ZERO] = "0[0-9]{1,4}(?:[ .\\-]| ?/ ?)[0-9]{2,5}(?:[ .\\-]?[0-9]{2,5}){0,4}(?![0-9A-Za-z_])",
    [R_PHONE_NANP] = "(?:1[ .\\-])?[2-9][0-9]{2}([ .\\-])[0-9]{3}\\1[0-9]{4}(?![0-9A-Za-z_]|[.\\-][0-9])",
    [R_IBAN] = "[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9_])",
    [R_AWS] = "(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9_])",
    [R_PEM_BEGIN] = "-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----",
    [R_PEM_END] = "-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----",
    [R_SK] = "sk-[A-Za-z0-9_\\-]{20,250}(?![A-Za-z0-9_\\-])",
    [R_STRIPE] = "[sr]k_(?:live|test)_[A-Za-z0-9]{16,247}(?![A-Za-z0-9_])",
    [R_GH] = "gh[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])",
    [R_GHPAT] = "github_pat_[A-Za-z0-9_]{22,244}(?![A-Za-z0-9_])",
    [R_GLPAT] = "glpat-[A-Za-z0-9_\\-]{20,250}(?![A-Za-z0-9_\\-])",
    [R_XOX] = "xox[abposr]-[A-Za-z0-9\\-]{10,250}(?![A-Za-z0-9_\\-])",
    [R_HF] = "hf_[A-Za-z0-9]{30,250}(?![A-Za-z0-9_])",
    [R_AIZA] = "AIza[0-9A-Za-z_\\-]{35}(?![A-Za-z0-9_\\-])",
    [R_BEARER] = "[Bb]earer[ \\t]+([A-Za-z0-9._~+/\\-]{16,4096}=*)(?![A-Za-z0-9._~+/=\\-])",
};

/* Byte classes. */
#define C_WORD  1u   /* [A-Za-z0-9_] */
#define C_DIGIT 2u
#define C_HEX   4u
#define C_LOCAL 8u   /* e-mail local part, ASCII: [A-Za-z0-9._%+-] */
#define C_B64   16u  /* [A-Za-z0-9+/=] */
#define C_NUMSEP 32u /* ".,:/-": inside "1.2.3", "12:30", "1,000" */

/* Trigger kinds, per first byte of a candidate. */
#define T_EMAIL 1u
#define T_NUM   2u   /* digit at a number start */
#define T_UPPER 4u
#define T_LOWER 8u
#define T_PEM   16u
#define T_PLUS  32u
#define T_PAREN 64u
#define T_COLON 128u

static unsigned char cls[256];

static void init_classes(void)
{
    for (int c = 0; c < 256; c++) {
        unsigned v = 0;

        if (isalnum(c) || c == '_')
            v |= C_WORD;
        if (c >= '0' && c <= '9')
            v |= C_DIGIT;
        if (isxdigit(c))
            v |= C_HEX;
        if (isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-')
            v |= C_LOCAL;
        if (isalnum(c) || c == '+' || c == '/' || c == '=')
            v |= C_B64;
        if (c != 0 && strchr(".,:/-", c) != NULL)
            v |= C_NUMSEP;
        cls[c] = (unsigned char)(c < 128 ? v : 0);
    }
}

struct det {
    char name[SL_PII_MAX_NAME];
    enum sl_pii_action action;
    int builtin;                    /* enum builtin, or -1 for PATTERN / DENY */
    pcre2_code *re;                 /* PATTERN / DENY, UTF mode */
    pcre2_match_context *mctx;      /* its limits */
};

struct allow {
    char *val;
    size_t len;
};

struct sl_pii_set {
    unsigned ndet;
    struct det det[SL_PII_MAX_DETECTORS];
    int bdet[B_COUNT];              /* detector index of each built-in, -1 when off */
    pcre2_code *re[R_COUNT];        /* built-in patterns, byte mode, anchored */
    int jit;                        /* the built-ins are JIT-compiled */
    unsigned char trig[256];        /* T_* of the enabled built-ins */
    unsigned char pair[256][32];    /* bitset: second bytes a letter trigger may take */
    int has_ops;                    /* any PATTERN / DENY */
    struct allow *allow;            /* open addressing, nallow_slots entries */
    size_t nallow_slots;
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}
#define HASH_SEED 14695981039346656037ull

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Length of a valid UTF-8 sequence at p (up to end), 0 when invalid, -1 when
 * it is valid so far but cut by end. */
static int utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], need, min;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 2, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 3, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    for (unsigned k = 1; k <= need; k++) {
        if (p + k >= end)
            return -1;
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return (int)need + 1;
}

/* ---- compiling ----------------------------------------------------------- */

const char *sl_pii_builtin_name(const char *name)
{
    if (name == NULL)
        return NULL;
    for (int b = 0; b < B_COUNT; b++)
        if (strcasecmp(name, builtin_names[b]) == 0)
            return builtin_names[b];
    for (size_t i = 0; i < sizeof(entity_map) / sizeof(entity_map[0]); i++)
        if (strcasecmp(name, entity_map[i].entity) == 0)
            return builtin_names[entity_map[i].b];
    return NULL;
}

static int builtin_index(const char *name)
{
    const char *n = sl_pii_builtin_name(name);

    for (int b = 0; n != NULL && b < B_COUNT; b++)
        if (n == builtin_names[b])
            return b;
    return -1;
}

static int compile_builtins(struct sl_pii_set *set, char *err, size_t errlen)
{
    int ec;
    PCRE2_SIZE off;
    uint32_t jit = 0;

    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    set->jit = jit != 0;
    for (int r = 0; r < R_COUNT; r++) {
        set->re[r] = pcre2_compile((PCRE2_SPTR)re_src[r], PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED, &ec, &off, NULL);
        if (set->re[r] == NULL) {
            /* a bug in the table above, not an operator error */
            set_err(err, errlen, "built-in pattern %s fails at offset %ld", re_src[r], (long)off);
            return ec == PCRE2_ERROR_NOMEMORY ? SL_ERR_NOMEM : SL_ERR_INTERNAL;
        }
        if (set->jit && pcre2_jit_compile(set->re[r], PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD) != 0)
            set->jit = 0;
    }
    return SL_OK;
}

/* Upper-cased label of an operator entry: [A-Z0-9_], 1..31 bytes. */
static int make_label(char *dst, const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;

    if (n == 0 || n >= SL_PII_MAX_NAME)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int c = toupper((unsigned char)name[i]);

        dst[i] = (char)(isalnum(c) && c < 128 ? c : '_');
    }
    dst[n] = '\0';
    return 0;
}

/* Whether the keyword edge starting at p (one code point) is a letter of a
 * script that separates words with spaces: ASCII, Latin, Greek, Cyrillic.
 * Only such edges get a word boundary; CJK keywords match inside text. */
static int edge_is_bounded(const unsigned char *p)
{
    if (p[0] < 0x80)
        return (cls[p[0]] & C_WORD) != 0;
    return p[0] >= 0xC3 && p[0] <= 0xD5;
}

/* Appends s to the growing pattern buffer; -1 on OOM. */
static int pat_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap + n + 1) * 2;
        char *nb = realloc(*buf, nc);

        if (nb == NULL)
            return -1;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* One alternative of a deny list: the keyword, literal, case-insensitive,
 * any run of spaces matching any white space, word-bounded where it makes sense. */
static int deny_alt(char **buf, size_t *len, size_t *cap, const char *w)
{
    const unsigned char *u = (const unsigned char *)w;
    size_t n = strlen(w), last = n;
    int rc = 0;

    while (last > 0 && (u[last - 1] & 0xC0) == 0x80)
        last--;
    if (last > 0)
        last--;
    while (last > 0 && (u[last] & 0xC0) == 0x80)
        last--;
    if (edge_is_bounded(u))
        rc |= pat_add(buf, len, cap, "(?<!\\w)", 7);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char esc[2] = { '\\', (char)u[i] };

        if (u[i] == ' ') {
            while (i + 1 < n && u[i + 1] == ' ')
                i++;
            rc |= pat_add(buf, len, cap, "\\s+", 3);
        } else if (u[i] < 0x80 && !isalnum(u[i]))
            rc |= pat_add(buf, len, cap, esc, 2);
        else
            rc |= pat_add(buf, len, cap, (const char *)u + i, 1);
    }
    if (rc == 0 && edge_is_bounded(u + last))
        rc |= pat_add(buf, len, cap, "(?!\\w)", 6);
    return rc;
}

/* The pattern text of a PATTERN or DENY spec (malloc'd) or NULL. */
static char *op_pattern(const struct sl_pii_spec *sp, char *err, size_t errlen, int *rc)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (sp->type == SL_PII_PATTERN) {
        if (sp->pattern == NULL || sp->pattern[0] == '\0') {
            set_err(err, errlen, "guardrail pattern '%s': empty pattern", sp->name);
            *rc = SL_ERR_CONFIG;
            return NULL;
        }
        buf = strdup(sp->pattern);
        *rc = buf != NULL ? SL_OK : SL_ERR_NOMEM;
        return buf;
    }
    if (sp->nvalues == 0) {
        set_err(err, errlen, "guardrail deny list '%s': no keywords", sp->name);
        *rc = SL_ERR_CONFIG;
        return NULL;
    }
    *rc = SL_OK;
    for (size_t i = 0; i < sp->nvalues && *rc == SL_OK; i++) {
        const char *w = sp->values[i];

        if (w == NULL || w[0] == '\0' || w[0] == ' ') {
            set_err(err, errlen, "guardrail deny list '%s': keyword %zu is empty or starts with a space",
                    sp->name, i + 1);
            *rc = SL_ERR_CONFIG;
        } else if ((i > 0 && pat_add(&buf, &len, &cap, "|", 1) != 0) ||
                   deny_alt(&buf, &len, &cap, w) != 0)
            *rc = SL_ERR_NOMEM;
    }
    if (*rc != SL_OK) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

static int compile_op(struct det *d, const struct sl_pii_spec *sp, char *err, size_t errlen)
{
    uint32_t opts = PCRE2_UTF;   /* PCRE2 checks the pattern's UTF-8 */
    int rc, ec;
    PCRE2_SIZE off;
    char *pat = op_pattern(sp, err, errlen, &rc);

    if (pat == NULL)
        return rc;
    if (sp->type == SL_PII_DENY)
        opts |= PCRE2_CASELESS | PCRE2_UCP;
    d->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
    free(pat);
    if (d->re == NULL) {
        PCRE2_UCHAR msg[160];

        if (ec == PCRE2_ERROR_NOMEMORY)
            return SL_ERR_NOMEM;
        pcre2_get_error_message(ec, msg, sizeof(msg));
        set_err(err, errlen, "guardrail pattern '%s': %s at offset %ld", sp->name,
                (const char *)msg, (long)off);
        return SL_ERR_CONFIG;
    }
    (void)pcre2_jit_compile(d->re, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD); /* else interpreted */
    if ((d->mctx = pcre2_match_context_create(NULL)) == NULL)
        return SL_ERR_NOMEM;
    pcre2_set_match_limit(d->mctx, sp->match_limit ? (uint32_t)sp->match_limit : DEFAULT_MATCH_LIMIT);
    pcre2_set_depth_limit(d->mctx, DEFAULT_DEPTH_LIMIT);
    pcre2_set_heap_limit(d->mctx, DEFAULT_HEAP_LIMIT);
    return SL_OK;
}

static int allow_add(struct sl_pii_set *set, const char *v)
{
    size_t n = strlen(v), i = hash_bytes(HASH_SEED, v, n) & (set->nallow_slots - 1);

    while (set->allow[i].val != NULL) {
        if (set->allow[i].len == n && memcmp(set->allow[i].val, v, n) == 0)
            return SL_OK;
        i = (i + 1) & (set->nallow_slots - 1);
    }
    if ((set->allow[i].val = strdup(v)) == NULL)
        return SL_ERR_NOMEM;
    set->allow[i].len = n;
    return SL_OK;
}

static int compile_allow(struct sl_pii_set *set, const struct sl_pii_spec *specs, size_t n)
{
    size_t total = 0, slots = 16;

    for (size_t i = 0; i < n; i++)
        if (specs[i].type == SL_PII_ALLOW)
            total += specs[i].nvalues;
    if (total == 0)
        return SL_OK;
    while (slots < total * 2)
        slots *= 2;
    if ((set->allow = calloc(slots, sizeof(*set->allow))) == NULL)
        return SL_ERR_NOMEM;
    set->nallow_slots = slots;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; specs[i].type == SL_PII_ALLOW && k < specs[i].nvalues; k++)
            if (specs[i].values[k] != NULL && specs[i].values[k][0] != '\0' &&
                allow_add(set, specs[i].values[k]) != SL_OK)
                return SL_ERR_NOMEM;
    return SL_OK;
}

static const unsigned char builtin_trig[B_COUNT] = {
    [B_EMAIL] = T_EMAIL, [B_PHONE] = T_NUM | T_PLUS | T_PAREN, [B_CREDIT_CARD] = T_NUM,
    [B_IBAN] = T_UPPER, [B_US_SSN] = T_NUM, [B_IP_ADDRESS] = T_NUM | T_UPPER | T_LOWER | T_COLON,
    [B_AWS_ACCESS_KEY] = T_UPPER, [B_PRIVATE_KEY] = T_PEM, [B_API_KEY] = T_UPPER | T_LOWER,
};

static void pair_add(struct sl_pii_set *set, unsigned char a, unsigned char b)
{
    set->pair[a][b >> 3] |= (unsigned char)(1u << (b & 7));
}

/* Which second bytes can follow a letter trigger in some candidate, so that
 * most words ("The", "and", "see") are passed over without a call. */
static void build_pairs(struct sl_pii_set *set)
{
    static const char *const key_pairs[] = { "sk", "rk", "gh", "gi", "gl", "xo", "hf", "be", "Be",
                                             "AI" };

    if (set->bdet[B_API_KEY] >= 0)
        for (size_t i = 0; i < sizeof(key_pairs) / sizeof(key_pairs[0]); i++)
            pair_add(set, (unsigned char)key_pairs[i][0], (unsigned char)key_pairs[i][1]);
    if (set->bdet[B_AWS_ACCESS_KEY] >= 0) {
        pair_add(set, 'A', 'K');
        pair_add(set, 'A', 'S');
    }
    for (int a = 'A'; a <= 'Z' && set->bdet[B_IBAN] >= 0; a++)
        for (int b = 'A'; b <= 'Z'; b++)
            pair_add(set, (unsigned char)a, (unsigned char)b);
    for (int a = 0; a < 256 && set->bdet[B_IP_ADDRESS] >= 0; a++)
        for (int b = 0; b < 256; b++)
            if (isalpha(a) && isxdigit(a) && (isxdigit(b) || b == ':'))
                pair_add(set, (unsigned char)a, (unsigned char)b);
}

static void build_triggers(struct sl_pii_set *set)
{
    unsigned t = 0;

    for (int b = 0; b < B_COUNT; b++)
        if (set->bdet[b] >= 0)
            t |= builtin_trig[b];
    if (t & T_EMAIL)
        set->trig['@'] = T_EMAIL;
    if (t & T_PEM)
        set->trig['-'] = T_PEM;
    if (t & T_PLUS)
        set->trig['+'] = T_PLUS;
    if (t & T_PAREN)
        set->trig['('] = T_PAREN;
    if (t & T_COLON)
        set->trig[':'] = T_COLON;
    for (int c = '0'; c <= '9' && (t & T_NUM); c++)
        set->trig[c] = T_NUM;
    for (int c = 'A'; c <= 'Z' && (t & T_UPPER); c++)
        set->trig[c] = T_UPPER;
    if (t & T_LOWER) {
        static const char lower_ip[] = "abcdef", lower_key[] = "bghrsx";

        for (const char *c = set->bdet[B_IP_ADDRESS] >= 0 ? lower_ip : ""; *c; c++)
            set->trig[(unsigned char)*c] = T_LOWER;
        for (const char *c = set->bdet[B_API_KEY] >= 0 ? lower_key : ""; *c; c++)
            set->trig[(unsigned char)*c] = T_LOWER;
    }
    build_pairs(set);
}

static int add_spec(struct sl_pii_set *set, const struct sl_pii_spec *sp, char *err, size_t errlen)
{
    struct det *d;
    int b;

    if (sp->type == SL_PII_ALLOW)
        return SL_OK;
    if (set->ndet == SL_PII_MAX_DETECTORS) {
        set_err(err, errlen, "guardrail '%s': more than %d detectors", sp->name ? sp->name : "?",
                SL_PII_MAX_DETECTORS);
        return SL_ERR_CONFIG;
    }
    d = &set->det[set->ndet];
    d->action = sp->action;
    d->builtin = -1;
    if (sp->type == SL_PII_BUILTIN) {
        if ((b = builtin_index(sp->name)) < 0) {
            set_err(err, errlen, "guardrail detector '%s': unknown (no built-in detector or entity of that name)",
                    sp->name ? sp->name : "");
            return SL_ERR_CONFIG;
        }
        if (set->bdet[b] >= 0) {
            set_err(err, errlen, "guardrail detector '%s': listed twice", builtin_names[b]);
            return SL_ERR_CONFIG;
        }
        d->builtin = b;
        set->bdet[b] = (int)set->ndet;
        snprintf(d->name, sizeof(d->name), "%s", builtin_names[b]);
        set->ndet++;
        return SL_OK;
    }
    if (make_label(d->name, sp->name) != 0) {
        set_err(err, errlen, "guardrail pattern '%s': the name must be 1 to %d bytes",
                sp->name ? sp->name : "", SL_PII_MAX_NAME - 1);
        return SL_ERR_CONFIG;
    }
    set->ndet++;   /* counted first so sl_pii_free releases a half-built entry */
    set->has_ops = 1;
    return compile_op(d, sp, err, errlen);
}

int sl_pii_compile(const struct sl_pii_spec *specs, size_t n, struct sl_pii_set **out,
                   char *err, size_t errlen)
{
    struct sl_pii_spec defaults[B_COUNT];
    struct sl_pii_set *set;
    int rc;

    *out = NULL;
    if (cls['a'] == 0)
        init_classes();   /* idempotent: concurrent first calls write the same bytes */
    if (specs == NULL && n == 0) {
        memset(defaults, 0, sizeof(defaults));
        for (int b = 0; b < B_COUNT; b++)
            defaults[b].name = builtin_names[b];
        specs = defaults;
        n = B_COUNT;
    }
    if ((set = calloc(1, sizeof(*set))) == NULL)
        return SL_ERR_NOMEM;
    for (int b = 0; b < B_COUNT; b++)
        set->bdet[b] = -1;
    rc = compile_builtins(set, err, errlen);
    for (size_t i = 0; i < n && rc == SL_OK; i++)
        rc = add_spec(set, &specs[i], err, errlen);
    if (rc == SL_OK)
        rc = compile_allow(set, specs, n);
    if (rc != SL_OK) {
        sl_pii_free(set);
        return rc;
    }
    build_triggers(set);
    *out = set;
    return SL_OK;
}

void sl_pii_free(struct sl_pii_set *set)
{
    if (set == NULL)
        return;
    for (int r = 0; r < R_COUNT; r++)
        pcre2_code_free(set->re[r]);
    for (unsigned i = 0; i < set->ndet; i++) {
        pcre2_code_free(set->det[i].re);
        pcre2_match_context_free(set->det[i].mctx);
    }
    for (size_t i = 0; i < set->nallow_slots; i++)
        free(set->allow[i].val);
    free(set->allow);
    free(set);
}

unsigned sl_pii_detector_count(const struct sl_pii_set *set)
{
    return set->ndet;
}

const char *sl_pii_detector_name(const struct sl_pii_set *set, unsigned i)
{
    return i < set->ndet ? set->det[i].name : NULL;
}

/* ---- the per-request map ------------------------------------------------- */

struct pent {
    const char *val, *ph;           /* arena copies */
    size_t vlen, phlen;
    const char *label;              /* arena copy */
};

struct label {
    struct label *next;
    const char *name;
    unsigned used;                  /* placeholders handed out: the next is used + 1 */
};

struct sl_pii_map {
    struct sl_arena *arena;
    struct pent *e;
    size_t n, cap;
    uint32_t *by_val, *by_ph;       /* open addressing, entry index + 1, 0 = free */
    size_t slots;
    struct label *labels;
};

struct sl_pii_map *sl_pii_map_new(struct sl_arena *arena)
{
    struct sl_pii_map *m = sl_arena_calloc(arena, 1, sizeof(*m));

    if (m != NULL)
        m->arena = arena;
    return m;
}

size_t sl_pii_map_size(const struct sl_pii_map *map)
{
    return map != NULL ? map->n : 0;
}

static uint64_t key_hash(const char *label, const char *v, size_t n)
{
    return hash_bytes(hash_bytes(HASH_SEED, label, strlen(label) + 1), v, n);
}

static int map_grow(struct sl_pii_map *m)
{
    size_t slots = m->slots ? m->slots * 2 : 32, cap = slots / 2;
    struct pent *e = sl_arena_calloc(m->arena, cap, sizeof(*e));
    uint32_t *bv = sl_arena_calloc(m->arena, slots, sizeof(*bv));
    uint32_t *bp = sl_arena_calloc(m->arena, slots, sizeof(*bp));

    if (e == NULL || bv == NULL || bp == NULL)
        return SL_ERR_NOMEM;
    if (m->n > 0)
        memcpy(e, m->e, m->n * sizeof(*e));
    for (size_t i = 0; i < m->n; i++) {
        size_t a = key_hash(e[i].label, e[i].val, e[i].vlen) & (slots - 1);
        size_t b = hash_bytes(HASH_SEED, e[i].ph, e[i].phlen) & (slots - 1);

        while (bv[a] != 0)
            a = (a + 1) & (slots - 1);
        bv[a] = (uint32_t)i + 1;
        while (bp[b] != 0)
            b = (b + 1) & (slots - 1);
        bp[b] = (uint32_t)i + 1;
    }
    m->e = e;
    m->by_val = bv;
    m->by_ph = bp;
    m->slots = slots;
    m->cap = cap;
    return SL_OK;
}

static struct label *map_label(struct sl_pii_map *m, const char *name)
{
    struct label *l;

    for (l = m->labels; l != NULL; l = l->next)
        if (strcmp(l->name, name) == 0)
            return l;
    if ((l = sl_arena_calloc(m->arena, 1, sizeof(*l))) == NULL ||
        (l->name = sl_arena_strdup(m->arena, name)) == NULL)
        return NULL;
    l->next = m->labels;
    m->labels = l;
    return l;
}

/* The placeholder of (label, value), made on first sight; NULL on OOM. */
static const struct pent *map_put(struct sl_pii_map *m, const char *label, const char *v, size_t n)
{
    uint64_t h = key_hash(label, v, n);
    size_t i;
    struct pent *e;
    struct label *l;

    if (m->slots > 0) {
        for (i = h & (m->slots - 1); m->by_val[i] != 0; i = (i + 1) & (m->slots - 1)) {
            e = &m->e[m->by_val[i] - 1];
            if (e->vlen == n && memcmp(e->val, v, n) == 0 && strcmp(e->label, label) == 0)
                return e;
        }
    }
    if ((m->n == m->cap && map_grow(m) != SL_OK) || (l = map_label(m, label)) == NULL)
        return NULL;
    e = &m->e[m->n];
    e->label = l->name;
    e->val = sl_arena_strndup(m->arena, v, n);
    e->vlen = n;
    e->ph = sl_arena_printf(m->arena, "<%s_%u>", label, l->used + 1);
    if (e->val == NULL || e->ph == NULL)
        return NULL;
    l->used++;
    e->phlen = strlen(e->ph);
    for (i = h & (m->slots - 1); m->by_val[i] != 0; i = (i + 1) & (m->slots - 1))
        ;
    m->by_val[i] = (uint32_t)m->n + 1;
    for (i = hash_bytes(HASH_SEED, e->ph, e->phlen) & (m->slots - 1); m->by_ph[i] != 0;
         i = (i + 1) & (m->slots - 1))
        ;
    m->by_ph[i] = (uint32_t)m->n + 1;
    m->n++;
    return e;
}

static const struct pent *map_find_ph(const struct sl_pii_map *m, const char *ph, size_t n)
{
    if (m == NULL || m->slots == 0)
        return NULL;
    for (size_t i = hash_bytes(HASH_SEED, ph, n) & (m->slots - 1); m->by_ph[i] != 0;
         i = (i + 1) & (m->slots - 1)) {
        const struct pent *e = &m->e[m->by_ph[i] - 1];

        if (e->phlen == n && memcmp(e->ph, ph, n) == 0)
            return e;
    }
    return NULL;
}

/* ---- the scanner --------------------------------------------------------- */

enum { NO = 0, YES = 1, MORE = 2 };   /* MORE: cannot tell before more text comes */

struct scan {
    const struct sl_pii_set *set;
    const unsigned char *p;
    size_t len;
    size_t base;            /* first byte that may start a hit; before it: context */
    int eof;                /* the text ends at len */
    pcre2_match_data *md;
    size_t last_end;        /* end of the last built-in hit (or base) */
    unsigned limit_hits;
};

struct cand {
    size_t s, e;            /* the span to report */
    int b;                  /* enum builtin */
};

struct hitvec {
    struct sl_arena *arena;
    struct sl_pii_hit *h;
    size_t n, cap;
};

static int hv_push(struct hitvec *v, size_t s, size_t e, unsigned det)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        struct sl_pii_hit *nh = sl_arena_alloc(v->arena, nc * sizeof(*nh));

        if (nh == NULL)
            return SL_ERR_NOMEM;
        if (v->n > 0)
            memcpy(nh, v->h, v->n * sizeof(*nh));
        v->h = nh;
        v->cap = nc;
    }
    v->h[v->n].start = s;
    v->h[v->n].end = e;
    v->h[v->n].det = det;
    v->n++;
    return SL_OK;
}

static int on(const struct scan *sc, int b)
{
    return sc->set->bdet[b] >= 0;
}

/* Anchored built-in pattern r at s: YES with the match end (and group 1) set. */
static int re_at(struct scan *sc, int r, size_t s, size_t *e, size_t *g1s, size_t *g1e)
{
    uint32_t opts = sc->eof ? 0 : PCRE2_PARTIAL_HARD;
    PCRE2_SIZE *ov;
    int rc;

    if (sc->set->jit)
        rc = pcre2_jit_match(sc->set->re[r], sc->p, sc->len, s, opts, sc->md, NULL);
    else
        rc = pcre2_match(sc->set->re[r], sc->p, sc->len, s, opts, sc->md, NULL);
    if (rc == PCRE2_ERROR_PARTIAL)
        return MORE;
    if (rc < 0)
        return NO;
    ov = pcre2_get_ovector_pointer(sc->md);
    *e = ov[1];
    if (g1s != NULL) {
        *g1s = rc > 1 ? ov[2] : s;
        *g1e = rc > 1 ? ov[3] : ov[1];
    }
    return YES;
}

/* Whether the literal lit starts at s. */
static int pfx(const struct scan *sc, size_t s, const char *lit, size_t n)
{
    size_t avail = sc->len - s;

    if (avail >= n)
        return memcmp(sc->p + s, lit, n) == 0 ? YES : NO;
    if (memcmp(sc->p + s, lit, avail) != 0)
        return NO;
    return sc->eof ? NO : MORE;
}

/* Folds one more outcome into a priority-ordered search: the first YES wins
 * unless an earlier, higher-priority candidate could still match. */
static int fold(int acc, int r)
{
    return acc != NO ? acc : r;
}

/* ---- validators ---- */

static int luhn_ok(const unsigned char *d, size_t n)
{
    unsigned sum = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned v = d[n - 1 - i];

        if (i & 1)
            v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        sum += v;
    }
    return sum % 10 == 0;
}

static int card_iin_ok(const unsigned char *d, size_t n)
{
    /* Visa 4, Mastercard 51-55 / 2221-2720, Amex 34 37, Discover 6011 64x 65,
     * JCB 35, Diners 30 36 38 39, UnionPay 62, Maestro 50 56-69: a first digit
     * of 2 to 6 keeps 13-digit epoch milliseconds and 1... order numbers out. */
    return d[0] >= 2 && d[0] <= 6 && !(d[0] == 4 && n != 13 && n != 16 && n != 19);
}

/* A card number: 13-19 digits, single spaces or dashes (one kind) between
 * them, Luhn-valid, cut only at a group end. Pure C, no pattern needed. */
static int m_card(struct scan *sc, size_t s, struct cand *c)
{
    const unsigned char *p = sc->p;
    unsigned char dig[20];
    size_t ends[21] = { 0 }, i = s, nd = 0;
    unsigned char sep = 0;

    while (i < sc->len) {
        unsigned char ch = p[i];

        if (cls[ch] & C_DIGIT) {
            if (nd == 19)
                return NO;          /* 20 digits or more: an id, not a card */
            dig[nd++] = (unsigned char)(ch - '0');
            i++;
        } else if ((ch == ' ' || ch == '-') && (sep == 0 || ch == sep)) {
            if (i + 1 == sc->len)
                return sc->eof ? NO : MORE;
            if (!(cls[p[i + 1]] & C_DIGIT))
                break;
            ends[nd] = i;
            sep = ch;
            i++;
        } else
            break;
    }
    if (i == sc->len && !sc->eof)
        return MORE;
    if (nd < 13)
        return NO;
    if (i < sc->len && (cls[p[i]] & C_WORD))
        return NO;
    ends[nd] = i;
    for (size_t n = nd; n >= 13; n--)
        if (ends[n] != 0 && luhn_ok(dig, n) && card_iin_ok(dig, n)) {
            c->s = s;
            c->e = ends[n];
            c->b = B_CREDIT_CARD;
            return YES;
        }
    return NO;
}

static int ssn_ok(const unsigned char *p)
{
    int area = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    int group = (p[4] - '0') * 10 + (p[5] - '0');
    int serial = memcmp(p + 7, "0000", 4) != 0;

    return area != 0 && area != 666 && area < 900 && group != 0 && serial;
}

/* Digits of a phone candidate, leaving out a "(0)" trunk digit. */
static size_t phone_digits(const unsigned char *p, size_t s, size_t e)
{
    size_t n = 0;

    for (size_t i = s; i < e; i++) {
        if (p[i] == '(' && i + 2 < e && p[i + 1] == '0' && p[i + 2] == ')')
            i += 2;
        else if (cls[p[i]] & C_DIGIT)
            n++;
    }
    return n;
}

/* National numbers with a trunk 0: after the first separator, the others
 * must all be the same byte ("01.02.2024 12" is a date and a time). */
static int seps_consistent(const unsigned char *p, size_t s, size_t e)
{
    size_t i = s;
    unsigned char sep = 0;

    while (i < e && (cls[p[i]] & C_DIGIT))
        i++;
    while (i < e && !(cls[p[i]] & C_DIGIT))
        i++;
    for (; i < e; i++) {
        if (cls[p[i]] & C_DIGIT)
            continue;
        if (sep != 0 && p[i] != sep)
            return 0;
        sep = p[i];
    }
    return 1;
}

static int phone_at(struct scan *sc, int r, size_t s, struct cand *c)
{
    size_t e, nd;
    int rc = re_at(sc, r, s, &e, NULL, NULL);

    if (rc != YES)
        return rc;
    nd = phone_digits(sc->p, s, e);
    if (r == R_PHONE_INTL ? (nd < 8 || nd > 15) : (nd < 9 || nd > 13))
        return NO;
    if (r == R_PHONE_ZERO && !seps_consistent(sc->p, s, e))
        return NO;
    if (e - s == 11 && sc->p[s + 3] == '-' && sc->p[s + 6] == '-')
        return NO;      /* AAA-GG-SSSS is the shape of an SSN (an invalid one here), never a phone */
    c->s = s;
    c->e = e;
    c->b = B_PHONE;
    return YES;
}

/* IBAN lengths by country (ISO 13616 registry). */
static const char iban_len[] =
    "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BI27BR29BY28CH21CR22CY28CZ24DE22DJ27DK18"
    "DO28EE20EG29ES24FI18FK18FO18FR27GB22GE22GI23GL18GR27GT28HN28HR21HU28IE22IL23"
    "IQ23IS26IT27JO30KW30KZ20LB28LC32LI21LT20LU20LV21LY25MC27MD24ME22MK19MN20MR27"
    "MT31MU30NI28NL18NO15OM23PK24PL28PS29PT25QA29RO24RS22RU33SA24SC31SD18SE24SI19"
    "SK24SM27SO23ST25SV28TL23TN24TR26UA29VA22VG24XK20YE30";

static size_t iban_expected(const unsigned char *cc)
{
    for (const char *t = iban_len; *t; t += 4)
        if (t[0] == cc[0] && t[1] == cc[1])
            return (size_t)((t[2] - '0') * 10 + (t[3] - '0'));
    return 0;
}

static int iban_mod97(const unsigned char *a, size_t n)
{
    unsigned rem = 0;

    for (size_t k = 0; k < n; k++) {
        unsigned char ch = a[(k + 4) % n];

        if (ch >= 'A' && ch <= 'Z')
            rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
        else
            rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
    }
    return rem == 1;
}

static int m_iban(struct scan *sc, size_t s, struct cand *c)
{
    unsigned char a[40];
    size_t e, want, n = 0, i;
    int rc = re_at(sc, R_IBAN, s, &e, NULL, NULL);

    if (rc != YES)
        return rc;
    want = iban_expected(sc->p + s);
    for (i = s; i < e && n < sizeof(a); i++) {
        if (sc->p[i] == ' ')
            continue;
        if (want != 0 && n == want)
            break;
        a[n++] = sc->p[i];
    }
    if (want != 0 ? n != want : (n < 15 || n > 34))
        return NO;
    if (i < e && sc->p[i] != ' ')     /* cut inside a group */
        return NO;
    if (!iban_mod97(a, n))
        return NO;
    c->s = s;
    c->e = i;
    c->b = B_IBAN;
    return YES;
}

/* IPv6 in C: 8 groups, or fewer around one "::", an IPv4 tail allowed.
 * Compressed forms need some substance ("fe80::1", "2001:db8::", "::1"), so
 * that slices (x[1::2]) and C++ scopes (a::b) are not addresses. */
static int m_ipv6(struct scan *sc, size_t s, struct cand *c)
{
    const unsigned char *p = sc->p;
    size_t i = s, len = sc->len, groups = 0, first = 0;
    int dbl = 0, digit = 0, v4 = 0;

    if (p[i] == ':') {
        if (i + 1 >= len)
            return sc->eof ? NO : MORE;
        if (p[i + 1] != ':')
            return NO;
        dbl = 1;
        i += 2;
    }
    for (;;) {
        size_t h = 0, e4;

        while (i + h < len && (cls[p[i + h]] & C_HEX) && h < 5)
            h++;
        if (i + h == len && !sc->eof)
            return MORE;
        if (h == 0 || h > 4)
            break;
        if (i + h < len && p[i + h] == '.' && groups <= 6) {
            int r = re_at(sc, R_IPV4, i, &e4, NULL, NULL);

            if (r == MORE)
                return MORE;
            if (r == YES) {
                groups += 2;
                i = e4;
                v4 = digit = 1;
            }
            break;
        }
        for (size_t k = 0; k < h; k++)
            digit |= (cls[p[i + k]] & C_DIGIT) != 0;
        if (groups++ == 0)
            first = h;
        i += h;
        if (i + 1 >= len && !sc->eof)
            return MORE;
        if (i + 1 < len && p[i] == ':' && p[i + 1] == ':' && !dbl) {
            dbl = 1;
            i += 2;
        } else if (i + 1 < len && p[i] == ':' && (cls[p[i + 1]] & C_HEX))
            i++;
        else
            break;
    }
    if (i < len && (cls[p[i]] & C_WORD))
        return NO;
    if (dbl ? groups > 7 : groups != 8)
        return NO;
    if (!digit || (dbl && groups < 3 && !v4 && first < 3 &&
                   !(groups == 1 && p[s] == ':' && i - s == 3 && p[s + 2] == '1')))
        return NO;      /* "::1" is the one short form we take */
    c->s = s;
    c->e = i;
    c->b = B_IP_ADDRESS;
    return YES;
}

/* Whether a digit (or hex letter) at i begins a number: not inside a word,
 * nor the next part of "1.2.3" or "12:30". */
static int number_start(const struct scan *sc, size_t i)
{
    unsigned char prev;

    if (i == 0)
        return 1;
    prev = sc->p[i - 1];
    if (cls[prev] & C_WORD)
        return 0;
    if (i >= 2 && (cls[sc->p[i - 2]] & C_DIGIT) && (cls[prev] & C_NUMSEP))
        return 0;
    return 1;
}

/* A run of hex digits then ':' — the only way an IPv6 address starts with one. */
static int ipv6_shape(const struct scan *sc, size_t s)
{
    size_t h = 0;

    while (s + h < sc->len && (cls[sc->p[s + h]] & C_HEX) && h < 5)
        h++;
    if (s + h == sc->len)
        return sc->eof ? NO : MORE;
    return h >= 1 && h <= 4 && sc->p[s + h] == ':' ? YES : NO;
}

/* Cheap shape test before a pattern runs: 'd' a digit, 's' one of " .-",
 * anything else itself. */
static int shape(const struct scan *sc, size_t s, const char *pat)
{
    for (size_t k = 0; pat[k] != '\0'; k++) {
        unsigned char ch;

        if (s + k >= sc->len)
            return sc->eof ? NO : MORE;
        ch = sc->p[s + k];
        if (pat[k] == 'd' ? !(cls[ch] & C_DIGIT)
                          : pat[k] == 's' ? (ch != ' ' && ch != '.' && ch != '-') : ch != pat[k])
            return NO;
    }
    return YES;
}

/* 1 to 3 digits and a dot: the only way an IPv4 address starts. */
static int v4_shape(const struct scan *sc, size_t s)
{
    size_t k = 0;

    while (k < 4 && s + k < sc->len && (cls[sc->p[s + k]] & C_DIGIT))
        k++;
    if (s + k == sc->len)
        return sc->eof ? NO : MORE;
    return k >= 1 && k <= 3 && sc->p[s + k] == '.' ? YES : NO;
}

static int m_numeric(struct scan *sc, size_t s, struct cand *c)
{
    size_t e;
    int acc = NO, r;

    if (!number_start(sc, s))
        return NO;
    if (on(sc, B_IP_ADDRESS) && (r = ipv6_shape(sc, s)) != NO)
        acc = fold(acc, r == MORE ? MORE : m_ipv6(sc, s, c));
    if (acc == NO && on(sc, B_US_SSN) && (r = shape(sc, s, "ddd-dd-")) != NO &&
        (r == MORE || (r = re_at(sc, R_SSN, s, &e, NULL, NULL)) != NO))
        acc = r == MORE ? MORE : ssn_ok(sc->p + s) ? (c->s = s, c->e = e, c->b = B_US_SSN, YES) : NO;
    if (acc == NO && on(sc, B_IP_ADDRESS) && (r = v4_shape(sc, s)) != NO &&
        (r == MORE || (r = re_at(sc, R_IPV4, s, &e, NULL, NULL)) != NO))
        acc = r == MORE ? MORE : (c->s = s, c->e = e, c->b = B_IP_ADDRESS, YES);
    if (acc == NO && on(sc, B_CREDIT_CARD))
        acc = m_card(sc, s, c);
    if (acc == NO && on(sc, B_PHONE)) {
        if (sc->p[s] == '0')
            r = shape(sc, s, "0d");
        else if ((r = shape(sc, s, "1s")) == NO)
            r = shape(sc, s, "ddds");
        acc = r == YES ? phone_at(sc, sc->p[s] == '0' ? R_PHONE_ZERO : R_PHONE_NANP, s, c) : r;
    }
    return acc;
}

static int key_at(struct scan *sc, int r, size_t s, struct cand *c)
{
    size_t e, gs, ge;
    int rc = re_at(sc, r, s, &e, &gs, &ge), digit = 0, alpha = 0;

    if (rc != YES)
        return rc;
    if (r == R_SK || r == R_XOX || r == R_BEARER) {
        /* these shapes also fit prose ("sk-learn-style-...", "Bearer authentication"):
         * a real token has digits and letters */
        for (size_t i = gs; i < ge; i++) {
            digit |= (cls[sc->p[i]] & C_DIGIT) != 0;
            alpha |= isalpha(sc->p[i]) != 0;
        }
        if (!digit || !alpha)
            return NO;
    }
    c->s = gs;
    c->e = ge;
    c->b = r == R_AWS ? B_AWS_ACCESS_KEY : B_API_KEY;
    return YES;
}

/* Candidates at the start of a word that begins with a letter. */
static int m_letter(struct scan *sc, size_t s, struct cand *c)
{
    const unsigned char *p = sc->p;
    int acc = NO, k = on(sc, B_API_KEY), r;

    switch (p[s]) {
    case 'A':
        if (on(sc, B_AWS_ACCESS_KEY) && ((r = pfx(sc, s, "AKIA", 4)) != NO || (r = pfx(sc, s, "ASIA", 4)) != NO))
            acc = fold(acc, r == MORE ? MORE : key_at(sc, R_AWS, s, c));
        if (acc == NO && k && (r = pfx(sc, s, "AIza", 4)) != NO)
            acc = r == MORE ? MORE : key_at(sc, R_AIZA, s, c);
        break;
    case 'B': case 'b':
        if (k && (r = pfx(sc, s + 1, "earer", 5)) != NO)
            acc = r == MORE ? MORE : key_at(sc, R_BEARER, s, c);
        break;
    case 's': case 'r':
        if (k && p[s] == 's' && (r = pfx(sc, s, "sk-", 3)) != NO)
            acc = r == MORE ? MORE : key_at(sc, R_SK, s, c);
        if (acc == NO && k && (r = pfx(sc, s + 1, "k_", 2)) != NO)
            acc = r == MORE ? MORE : key_at(sc, R_STRIPE, s, c);
        break;
    case 'g':
        if (k && (r = pfx(sc, s, "gh", 2)) != NO)
            acc = r == MORE ? MORE : key_at(sc, R_GH, s, c);
        if (acc == NO && k && (r = pfx(sc, s, "github_pat_", 11)) != NO)
            acc = r == MORE ? MORE : key_at(sc, R_GHPAT, s, c);
        if (acc == NO && k && (r = pfx(sc, s, "glpat-", 6)) != NO)
            acc = r == MORE ? MORE : key_at(sc, R_GLPAT, s, c);
        break;
    case 'x':
        if (k && (r = pfx(sc, s, "xox", 3)) != NO)
            acc = r == MORE ? MORE : key_at(sc, R_XOX, s, c);
        break;
    case 'h':
        if (k && (r = pfx(sc, s, "hf_", 3)) != NO)
            acc = r == MORE ? MORE : key_at(sc, R_HF, s, c);
        break;
    default:
        break;
    }
    if (acc == NO && on(sc, B_IBAN) && p[s] >= 'A' && p[s] <= 'Z') {
        size_t k4 = 1;

        while (k4 < 4 && s + k4 < sc->len &&
               (k4 < 2 ? (p[s + k4] >= 'A' && p[s + k4] <= 'Z') : (cls[p[s + k4]] & C_DIGIT) != 0))
            k4++;
        if (k4 == 4)
            acc = m_iban(sc, s, c);
        else if (s + k4 == sc->len && !sc->eof)
            acc = MORE;
    }
    if (acc == NO && on(sc, B_IP_ADDRESS) && (cls[p[s]] & C_HEX) && number_start(sc, s) &&
        (r = ipv6_shape(sc, s)) != NO)
        acc = r == MORE ? MORE : m_ipv6(sc, s, c);
    return acc;
}

/* Start of the e-mail local part that ends at at (exclusive), or (size_t)-1
 * when there is none or it is longer than 64 bytes. Latin letters in UTF-8
 * (U+00C0..U+027F) belong to it; other scripts end it. */
static size_t local_start(const struct scan *sc, size_t at)
{
    const unsigned char *p = sc->p;
    size_t s = at;

    while (s > 0 && at - s <= EMAIL_LOCAL_MAX) {
        if (cls[p[s - 1]] & C_LOCAL)
            s--;
        else if (s >= 2 && (p[s - 1] & 0xC0) == 0x80 && p[s - 2] >= 0xC3 && p[s - 2] <= 0xC9)
            s -= 2;
        else
            break;
    }
    if (at - s > EMAIL_LOCAL_MAX)
        return (size_t)-1;
    while (s < at && p[s] == '.')
        s++;
    return s;
}

static int m_email(struct scan *sc, size_t at, struct cand *c)
{
    size_t s = local_start(sc, at), e;
    int r;

    if (s == (size_t)-1 || s == at || s < sc->last_end)
        return NO;
    c->s = s;     /* also where a MORE holds from */
    if ((r = re_at(sc, R_EMAIL, s, &e, NULL, NULL)) == YES) {
        c->e = e;
        c->b = B_EMAIL;
    }
    return r;
}

/* A PEM private key: the BEGIN line to its END line. Without an END line
 * within PEM_CAP (a truncated paste), the base64 body after BEGIN. */
static int m_pem(struct scan *sc, size_t s, struct cand *c)
{
    const unsigned char *p = sc->p;
    size_t h, e, lim = sc->len - s > PEM_CAP ? s + PEM_CAP : sc->len;
    int r = pfx(sc, s, "-----BEGIN ", 11);

    if (r != YES)
        return r;
    c->s = s;
    if ((r = re_at(sc, R_PEM_BEGIN, s, &h, NULL, NULL)) != YES)
        return r;
    for (size_t i = h; i + 9 <= lim; i++) {
        const unsigned char *q = memchr(p + i, '-', lim - i);

        if (q == NULL)
            break;
        i = (size_t)(q - p);
        if (i + 9 > lim || memcmp(q, "-----END ", 9) != 0)
            continue;
        if ((r = re_at(sc, R_PEM_END, i, &e, NULL, NULL)) == MORE)
            return MORE;
        if (r == YES) {
            c->e = e;
            c->b = B_PRIVATE_KEY;
            return YES;
        }
    }
    if (!sc->eof && lim == sc->len)
        return MORE;
    for (e = h; e < lim; e++) {
        if (cls[p[e]] & C_B64 || p[e] == '\n' || p[e] == '\r')
            continue;
        if (p[e] == '\\' && e + 1 < lim && (p[e + 1] == 'n' || p[e + 1] == 'r')) {
            e++;
            continue;
        }
        break;
    }
    c->e = e;
    c->b = B_PRIVATE_KEY;
    return YES;
}

static int dispatch(struct scan *sc, size_t i, unsigned t, struct cand *c)
{
    const unsigned char *p = sc->p;

    c->s = i;
    switch (t) {
    case T_EMAIL:
        return m_email(sc, i, c);
    case T_PEM:
        return m_pem(sc, i, c);
    case T_PLUS:
    case T_PAREN:
        if (i > 0 && (cls[p[i - 1]] & C_WORD))
            return NO;
        if (i + 1 == sc->len)
            return sc->eof ? NO : MORE;
        if (!(cls[p[i + 1]] & C_DIGIT))
            return NO;
        return phone_at(sc, t == T_PLUS ? R_PHONE_INTL : R_PHONE_PAREN, i, c);
    case T_COLON:
        if (i > 0 && (cls[p[i - 1]] & (C_HEX | C_WORD) || p[i - 1] == ':'))
            return NO;
        return m_ipv6(sc, i, c);
    case T_NUM:
        return m_numeric(sc, i, c);
    default:
        return m_letter(sc, i, c);
    }
}

/* The built-in pass: walks the words of buf[base, len), tries the detectors
 * whose trigger a word (or punctuation) starts with, and appends hits. On a
 * candidate it cannot decide yet, sets *hold to its start and stops. */
static int scan_builtins(struct scan *sc, struct hitvec *hv, size_t *hold)
{
    const unsigned char *p = sc->p;
    const unsigned char *trig = sc->set->trig;
    size_t i = sc->base, len = sc->len;
    struct cand c;

    while (i < len) {
        unsigned char ch = p[i];
        unsigned t = trig[ch];
        int r = NO;

        if (cls[ch] & C_WORD) {
            if (t != 0 && (i == 0 || !(cls[p[i - 1]] & C_WORD)) &&
                (t == T_NUM || i + 1 == len ||
                 (sc->set->pair[ch][p[i + 1] >> 3] & (1u << (p[i + 1] & 7)))))
                r = dispatch(sc, i, t, &c);
            if (r == NO) {
                for (i++; i < len && (cls[p[i]] & C_WORD); i++)
                    ;
                continue;
            }
        } else if (t != 0)
            r = dispatch(sc, i, t, &c);
        if (r == MORE) {
            *hold = c.s;
            return SL_OK;
        }
        if (r == YES && c.s >= sc->last_end) {
            if (hv_push(hv, c.s, c.e, (unsigned)sc->set->bdet[c.b]) != SL_OK)
                return SL_ERR_NOMEM;
            sc->last_end = c.e;
            i = c.e > i ? c.e : i + 1;
            continue;
        }
        i++;
    }
    return SL_OK;
}

/* One operator detector over the valid UTF-8 run [a, b) of the buffer. */
static int scan_op(struct scan *sc, unsigned d, size_t a, size_t b, int partial,
                   struct hitvec *hv, size_t *hold)
{
    const struct det *dt = &sc->set->det[d];
    size_t off = (sc->base > a ? sc->base : a) - a;
    uint32_t opts = PCRE2_NO_UTF_CHECK | (partial ? PCRE2_PARTIAL_HARD : 0);

    while (off <= b - a) {
        int rc = pcre2_match(dt->re, sc->p + a, b - a, off, opts, sc->md, dt->mctx);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);

        if (rc == PCRE2_ERROR_PARTIAL) {
            if (a + ov[0] < *hold)
                *hold = a + ov[0];
            break;
        }
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {   /* match, depth or heap limit, JIT stack: give up on this text */
            sc->limit_hits++;
            break;
        }
        if (ov[1] > ov[0]) {
            if (hv_push(hv, a + ov[0], a + ov[1], d) != SL_OK)
                return SL_ERR_NOMEM;
            off = ov[1];
        } else {        /* an empty match: step over one character */
            off = ov[1] + 1;
            while (off < b - a && (sc->p[a + off] & 0xC0) == 0x80)
                off++;
        }
    }
    return SL_OK;
}

/* The operator pass: every PATTERN / DENY detector on each valid UTF-8 run
 * (an invalid byte ends a run, so PCRE2 only ever sees checked UTF-8). */
static int scan_ops(struct scan *sc, struct hitvec *hv, size_t *hold)
{
    const unsigned char *p = sc->p;
    size_t a = 0, len = sc->len;

    while (a < len) {
        size_t b = a;
        int k = 1, rc = SL_OK;

        while (b < len && (k = utf8_seq(p + b, p + len)) > 0)
            b += (size_t)k;
        if (b > sc->base) {
            int partial = !sc->eof && (b == len || k < 0);

            for (unsigned d = 0; d < sc->set->ndet && rc == SL_OK; d++)
                if (sc->set->det[d].re != NULL)
                    rc = scan_op(sc, d, a, b, partial, hv, hold);
            if (rc != SL_OK)
                return rc;
        }
        if (k < 0 && !sc->eof) {   /* a character cut by the end of the chunk */
            if (b < *hold)
                *hold = b;
            break;
        }
        a = b + 1;
    }
    return SL_OK;
}

static int allowed(const struct sl_pii_set *set, const unsigned char *v, size_t n)
{
    size_t i;

    if (set->nallow_slots == 0)
        return 0;
    for (i = hash_bytes(HASH_SEED, (const char *)v, n) & (set->nallow_slots - 1);
         set->allow[i].val != NULL; i = (i + 1) & (set->nallow_slots - 1))
        if (set->allow[i].len == n && memcmp(set->allow[i].val, v, n) == 0)
            return 1;
    return 0;
}

static int hit_cmp(const void *x, const void *y)
{
    const struct sl_pii_hit *a = x, *b = y;

    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    if (a->end != b->end)
        return a->end > b->end ? -1 : 1;
    return a->det < b->det ? -1 : a->det > b->det;
}

/* Sorted, allow-listed, non-overlapping (earliest start, then longest,
 * wins) hits that start before hold, in place. */
static void hits_settle(const struct scan *sc, struct hitvec *hv, size_t hold)
{
    size_t n = 0, end = 0;

    if (hv->n > 1)
        qsort(hv->h, hv->n, sizeof(*hv->h), hit_cmp);
    for (size_t i = 0; i < hv->n; i++) {
        struct sl_pii_hit h = hv->h[i];

        if (h.start >= hold || (n > 0 && h.start < end) ||
            allowed(sc->set, sc->p + h.start, h.end - h.start))
            continue;
        hv->h[n++] = h;
        end = h.end;
    }
    hv->n = n;
}

/* Everything found in buf[base, len): hits (arena) and, when !eof, where the
 * undecided tail starts (*hold; len when nothing is pending). */
static int find_core(struct scan *sc, struct hitvec *hv, size_t *hold)
{
    int rc;

    *hold = sc->len;
    sc->last_end = sc->base;
    if ((rc = scan_builtins(sc, hv, hold)) != SL_OK)
        return rc;
    if (!sc->eof) {
        /* never hand out half a character ... */
        size_t t = sc->len, lead = sc->len;

        for (int k = 0; k < 3 && t > sc->base && (sc->p[t - 1] & 0xC0) == 0x80; k++)
            t--;
        if (t > sc->base && sc->p[t - 1] >= 0xC0 && utf8_seq(sc->p + t - 1, sc->p + sc->len) < 0)
            lead = t - 1;
        if (lead < *hold)
            *hold = lead;
        /* ... and hold the trailing word: it may still become the local
         * part of an address (the '@' comes later) */
        if (on(sc, B_EMAIL)) {
            size_t s = local_start(sc, lead);

            if (s != (size_t)-1 && s < *hold && s >= sc->base)
                *hold = s;
        }
    }
    if (sc->set->has_ops && (rc = scan_ops(sc, hv, hold)) != SL_OK)
        return rc;
    hits_settle(sc, hv, *hold);
    return SL_OK;
}

static void report_hits(const struct sl_pii_set *set, const struct sl_pii_hit *h, size_t n,
                        unsigned limit_hits, struct sl_pii_report *rep)
{
    if (rep == NULL)
        return;
    rep->limit_hits += limit_hits;
    for (size_t i = 0; i < n; i++) {
        const struct det *d = &set->det[h[i].det];

        rep->total++;
        rep->counts[h[i].det]++;
        if (d->action == SL_PII_MASK)
            rep->masked++;
        else if (d->action == SL_PII_BLOCK && rep->blocked == NULL)
            rep->blocked = d->name;
    }
}

/* Writes text[from, to) with the MASK hits among h replaced into dst (or
 * only measures when dst is NULL); *nph counts placeholders. NULL ph on OOM. */
static int render(const struct sl_pii_set *set, struct sl_pii_map *map, const char *text,
                  size_t from, size_t to, const struct sl_pii_hit *h, size_t n, char *dst,
                  size_t *out_len, size_t *nph)
{
    size_t pos = from, o = 0;

    *nph = 0;
    for (size_t i = 0; i < n && h[i].start < to; i++) {
        const struct det *d = &set->det[h[i].det];
        const struct pent *e;

        if (d->action != SL_PII_MASK)
            continue;
        if (map == NULL)
            return SL_ERR_INTERNAL;   /* a masking set needs a map */
        if ((e = map_put(map, d->name, text + h[i].start, h[i].end - h[i].start)) == NULL)
            return SL_ERR_NOMEM;
        if (dst != NULL) {
            memcpy(dst + o, text + pos, h[i].start - pos);
            memcpy(dst + o + (h[i].start - pos), e->ph, e->phlen);
        }
        o += h[i].start - pos + e->phlen;
        pos = h[i].end;
        (*nph)++;
    }
    if (dst != NULL) {
        memcpy(dst + o, text + pos, to - pos);
        dst[o + to - pos] = '\0';
    }
    *out_len = o + to - pos;
    return SL_OK;
}

static pcre2_match_data *md_new(void)
{
    return pcre2_match_data_create(3, NULL);
}

static void md_free_cb(void *md)
{
    pcre2_match_data_free(md);
}

int sl_pii_find(const struct sl_pii_set *set, struct sl_arena *arena, const char *text,
                size_t len, struct sl_pii_hit **hits, size_t *nhits, struct sl_pii_report *rep)
{
    struct scan sc = { .set = set, .p = (const unsigned char *)text, .len = len, .eof = 1 };
    struct hitvec hv = { .arena = arena };
    size_t hold;
    int rc;

    *hits = NULL;
    *nhits = 0;
    if ((sc.md = md_new()) == NULL)
        return SL_ERR_NOMEM;
    rc = find_core(&sc, &hv, &hold);
    pcre2_match_data_free(sc.md);
    if (rc != SL_OK)
        return rc;
    report_hits(set, hv.h, hv.n, sc.limit_hits, rep);
    *hits = hv.h;
    *nhits = hv.n;
    return SL_OK;
}

int sl_pii_scan(const struct sl_pii_set *set, struct sl_pii_map *map, struct sl_arena *arena,
                const char *text, size_t len, const char **out, size_t *out_len,
                struct sl_pii_report *rep)
{
    struct sl_pii_report local;
    struct sl_pii_hit *h;
    size_t n, olen, nph;
    char *dst;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (rep == NULL) {
        memset(&local, 0, sizeof(local));
        rep = &local;
    }
    if ((rc = sl_pii_find(set, arena, text, len, &h, &n, rep)) != SL_OK)
        return rc;
    if (rep->blocked != NULL)
        return SL_OK;
    if ((rc = render(set, map, text, 0, len, h, n, NULL, &olen, &nph)) != SL_OK)
        return rc;
    if (nph == 0) {
        *out = text;
        *out_len = len;
        return SL_OK;
    }
    if ((dst = sl_arena_alloc(arena, olen + 1)) == NULL)
        return SL_ERR_NOMEM;
    if ((rc = render(set, map, text, 0, len, h, n, dst, &olen, &nph)) != SL_OK)
        return rc;
    *out = dst;
    *out_len = olen;
    return SL_OK;
}

/* ---- restore --------------------------------------------------------------- */

/* Length of the placeholder-shaped "<[A-Z0-9_]+>" at p, 0 when there is
 * none, -1 when p..end could still become one. */
static long ph_shape(const char *p, const char *end)
{
    const char *q = p + 1;

    while (q < end && q - p < (long)PLACEHOLDER_MAX &&
           ((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_'))
        q++;
    if (q == end)
        return q - p < (long)PLACEHOLDER_MAX ? -1 : 0;
    return *q == '>' && q - p > 1 ? q - p + 1 : 0;
}

/* Restores text[0, len) into dst (or measures); counts replacements. */
static size_t restore_into(const struct sl_pii_map *map, const char *text, size_t len, char *dst,
                           size_t *nrep)
{
    size_t i = 0, o = 0;

    *nrep = 0;
    while (i < len) {
        const char *lt = memchr(text + i, '<', len - i);
        size_t k = lt != NULL ? (size_t)(lt - text) : len;
        const struct pent *e = NULL;
        long n = 0;

        if (dst != NULL)
            memcpy(dst + o, text + i, k - i);
        o += k - i;
        if (k == len)
            break;
        if ((n = ph_shape(text + k, text + len)) > 0)
            e = map_find_ph(map, text + k, (size_t)n);
        if (e != NULL) {
            if (dst != NULL)
                memcpy(dst + o, e->val, e->vlen);
            o += e->vlen;
            i = k + (size_t)n;
            (*nrep)++;
        } else {
            if (dst != NULL)
                dst[o] = '<';
            o++;
            i = k + 1;
        }
    }
    return o;
}

const char *sl_pii_restore(const struct sl_pii_map *map, struct sl_arena *arena,
                           const char *text, size_t len, size_t *out_len)
{
    size_t n, nrep;
    char *dst;

    *out_len = len;
    if (sl_pii_map_size(map) == 0 || memchr(text, '<', len) == NULL)
        return text;
    n = restore_into(map, text, len, NULL, &nrep);
    if (nrep == 0)
        return text;
    if ((dst = sl_arena_alloc(arena, n + 1)) == NULL)
        return NULL;
    restore_into(map, text, len, dst, &nrep);
    dst[n] = '\0';
    *out_len = n;
    return dst;
}

/* ---- streaming --------------------------------------------------------------- */

/* A growable arena buffer: the old block is left to the arena (reset frees
 * it), so a stream costs at most about twice its largest hold or chunk. */
static int grow(struct sl_arena *a, char **buf, size_t *cap, size_t keep, size_t need)
{
    size_t nc = *cap ? *cap : 256;
    char *nb;

    if (need <= *cap)
        return SL_OK;
    while (nc < need)
        nc *= 2;
    if ((nb = sl_arena_alloc(a, nc)) == NULL)
        return SL_ERR_NOMEM;
    if (keep > 0)
        memcpy(nb, *buf, keep);
    *buf = nb;
    *cap = nc;
    return SL_OK;
}

struct sl_pii_stream {
    const struct sl_pii_set *set;   /* borrowed */
    struct sl_pii_map *map;         /* borrowed */
    struct sl_arena *arena;
    pcre2_match_data *md;           /* freed by the arena's reset */
    char *buf;                      /* [0, ctx) sent already (lookbehind), [ctx, len) held */
    size_t ctx, len, cap;
    char *out;
    size_t outcap;
};

struct sl_pii_stream *sl_pii_stream_new(const struct sl_pii_set *set, struct sl_pii_map *map,
                                        struct sl_arena *arena)
{
    struct sl_pii_stream *st = sl_arena_calloc(arena, 1, sizeof(*st));

    if (st == NULL || (st->md = md_new()) == NULL ||
        sl_arena_defer(arena, md_free_cb, st->md) != SL_OK)
        return NULL;
    st->set = set;
    st->map = map;
    st->arena = arena;
    return st;
}

/* Scans what is held, sends what is decided (all of it when eof). */
static int stream_step(struct sl_pii_stream *st, int eof, const char **out, size_t *out_len,
                       struct sl_pii_report *rep)
{
    struct scan sc = { .set = st->set, .p = (const unsigned char *)st->buf, .len = st->len,
                       .base = st->ctx, .eof = eof, .md = st->md };
    struct hitvec hv = { .arena = st->arena };
    size_t hold, cut, olen, nph, keep;
    struct sl_pii_report local;
    int rc;

    if (rep == NULL) {
        memset(&local, 0, sizeof(local));
        rep = &local;
    }
    *out = "";
    *out_len = 0;
    if ((rc = find_core(&sc, &hv, &hold)) != SL_OK)
        return rc;
    if (!eof && st->len - hold > SL_PII_STREAM_MAX_HOLD)
        return stream_step(st, 1, out, out_len, rep);   /* an endless candidate: decide now */
    cut = hold;
    if (hv.n > 0 && hv.h[hv.n - 1].end > cut)
        cut = hv.h[hv.n - 1].end;
    report_hits(st->set, hv.h, hv.n, sc.limit_hits, rep);
    if (rep->blocked != NULL) {
        *out = NULL;
        return SL_OK;
    }
    if ((rc = render(st->set, st->map, st->buf, st->ctx, cut, hv.h, hv.n, NULL, &olen, &nph)) != SL_OK ||
        (rc = grow(st->arena, &st->out, &st->outcap, 0, olen + 1)) != SL_OK ||
        (rc = render(st->set, st->map, st->buf, st->ctx, cut, hv.h, hv.n, st->out, &olen, &nph)) != SL_OK)
        return rc;
    *out = st->out;
    *out_len = olen;
    keep = cut < STREAM_CTX ? cut : STREAM_CTX;
    memmove(st->buf, st->buf + cut - keep, st->len - (cut - keep));
    st->len -= cut - keep;
    st->ctx = keep;
    return SL_OK;
}

int sl_pii_stream_feed(struct sl_pii_stream *st, const char *chunk, size_t len,
                       const char **out, size_t *out_len, struct sl_pii_report *rep)
{
    int rc;

    if ((rc = grow(st->arena, &st->buf, &st->cap, st->len, st->len + len + 1)) != SL_OK)
        return rc;
    memcpy(st->buf + st->len, chunk, len);
    st->len += len;
    return stream_step(st, 0, out, out_len, rep);
}

int sl_pii_stream_finish(struct sl_pii_stream *st, const char **out, size_t *out_len,
                         struct sl_pii_report *rep)
{
    return stream_step(st, 1, out, out_len, rep);
}

struct sl_pii_unstream {
    const struct sl_pii_map *map;   /* borrowed */
    struct sl_arena *arena;
    char *buf;                      /* held: a possible placeholder start */
    size_t len, cap;
    char *out;
    size_t outcap;
};

struct sl_pii_unstream *sl_pii_unstream_new(const struct sl_pii_map *map, struct sl_arena *arena)
{
    struct sl_pii_unstream *us = sl_arena_calloc(arena, 1, sizeof(*us));

    if (us != NULL) {
        us->map = map;
        us->arena = arena;
    }
    return us;
}

static int unstream_step(struct sl_pii_unstream *us, int eof, const char **out, size_t *out_len)
{
    size_t cut = us->len, n, nrep;
    int rc;

    if (!eof) {
        /* hold a trailing "<NAME" that the next chunk may complete */
        for (size_t k = us->len; k > 0 && us->len - k < PLACEHOLDER_MAX; k--)
            if (us->buf[k - 1] == '<') {
                if (ph_shape(us->buf + k - 1, us->buf + us->len) < 0)
                    cut = k - 1;
                break;
            }
    }
    n = restore_into(us->map, us->buf, cut, NULL, &nrep);
    if ((rc = grow(us->arena, &us->out, &us->outcap, 0, n + 1)) != SL_OK)
        return rc;
    restore_into(us->map, us->buf, cut, us->out, &nrep);
    us->out[n] = '\0';
    *out = us->out;
    *out_len = n;
    memmove(us->buf, us->buf + cut, us->len - cut);
    us->len -= cut;
    return SL_OK;
}

int sl_pii_unstream_feed(struct sl_pii_unstream *us, const char *chunk, size_t len,
                         const char **out, size_t *out_len)
{
    int rc = grow(us->arena, &us->buf, &us->cap, us->len, us->len + len + 1);

    if (rc != SL_OK)
        return rc;
    memcpy(us->buf + us->len, chunk, len);
    us->len += len;
    return unstream_step(us, 0, out, out_len);
}

int sl_pii_unstream_finish(struct sl_pii_unstream *us, const char **out, size_t *out_len)
{
    return unstream_step(us, 1, out, out_len);
}

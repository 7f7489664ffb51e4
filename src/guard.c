/* Guardrails on the request path (see guard.h): the config's `guardrails:`
 * compiled into pii.h sets, the choice of those that run for a call, and
 * their application to the prompt (pre_call) and to the answer, whole or
 * streamed (post_call, then the restore of the prompt's placeholders).
 *
 * One map of placeholders per request serves every pre_call guardrail, so a
 * value masked by two of them gets one placeholder; what post_call masks in
 * an answer goes into a map of its own and is never restored (it came from
 * the model, not from the caller). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "guard.h"
#include "keys.h"
#include "metrics.h"
#include "pii.h"
#include "request.h"
#include "respond.h"
#include "status.h"

#define MAX_GUARDRAILS 64           /* a request's set is a 64-bit mask */
#define MAX_CHOICES 8               /* streamed choices scanned (others pass as they are) */
#define MAX_TOOLS 8                 /* streamed tool calls of a choice scanned, likewise */

static const char *const builtins[] = {
    "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS", "AWS_ACCESS_KEY",
    "PRIVATE_KEY", "API_KEY", NULL
};

/* ---- configuration ---------------------------------------------------------- */

static int action_of(const char *s, enum sl_pii_action *a)
{
    if (s == NULL)
        return -1;
    if (strcasecmp(s, "MASK") == 0 || strcasecmp(s, "REDACT") == 0 || strcasecmp(s, "REPLACE") == 0)
        *a = SL_PII_MASK;
    else if (strcasecmp(s, "BLOCK") == 0)
        *a = SL_PII_BLOCK;
    else if (strcasecmp(s, "LOG") == 0 || strcasecmp(s, "LOG_ONLY") == 0)
        *a = SL_PII_LOG;
    else
        return -1;
    return 0;
}

static unsigned mode_bit(const char *s)
{
    if (s == NULL)
        return 0;
    if (strcmp(s, "pre_call") == 0 || strcmp(s, "during_call") == 0)
        return SL_GUARD_PRE;
    if (strcmp(s, "post_call") == 0)
        return SL_GUARD_POST;
    if (strcmp(s, "logging_only") == 0)
        return SL_GUARD_LOG;
    return 0;
}

/* A JSON array of strings as a NULL-free vector in the arena; -1 when v is
 * not one. */
static int strings(struct sl_arena *a, const json_t *v, const char ***out, size_t *n)
{
    size_t i;
    const json_t *s;

    *out = NULL;
    *n = 0;
    if (v == NULL)
        return 0;
    if (!json_is_array(v) || (*out = sl_arena_calloc(a, json_array_size(v) + 1, sizeof(char *))) == NULL)
        return -1;
    json_array_foreach(v, i, s) {
        if (!json_is_string(s))
            return -1;
        (*out)[(*n)++] = json_string_value(s);
    }
    return 0;
}

/* The pii.h specs of one guardrail's litellm_params (strings borrowed from
 * p, arrays in a). 0, or -1 with why. */
static int specs_of(struct sl_arena *a, const json_t *p, const char *kind, struct sl_pii_spec *sp,
                    size_t *n, char *why, size_t whylen)
{
    const json_t *ents = json_object_get(p, "pii_entities_config"), *v, *pats;
    const char *dflt = json_string_value(json_object_get(p, "default_action")), *key;
    enum sl_pii_action act = SL_PII_MASK;
    const char **list;
    size_t cnt, i;

    *n = 0;
    if (dflt != NULL && action_of(dflt, &act) != 0) {
        snprintf(why, whylen, "default_action: expected MASK, BLOCK or LOG, got \"%.40s\"", dflt);
        return -1;
    }
    if (strcmp(kind, "sluice_pii") == 0 || strcmp(kind, "presidio") == 0) {
        if (json_is_object(ents)) {
            json_object_foreach((json_t *)ents, key, v) {
                enum sl_pii_action ea;

                if (action_of(json_string_value(v), &ea) != 0) {
                    snprintf(why, whylen, "pii_entities_config.%.60s: expected MASK or BLOCK", key);
                    return -1;
                }
                if (sl_pii_builtin_name(key) == NULL) {
                    snprintf(why, whylen, "pii_entities_config: no detector for the entity %.60s", key);
                    return -1;
                }
                if (*n >= SL_PII_MAX_DETECTORS - 2)
                    break;
                sp[(*n)++] = (struct sl_pii_spec){ .type = SL_PII_BUILTIN, .name = key, .action = ea };
            }
        } else {
            if (strings(a, json_object_get(p, "detectors"), &list, &cnt) != 0) {
                snprintf(why, whylen, "detectors: expected a list of detector names");
                return -1;
            }
            if (list == NULL)
                list = (const char **)builtins, cnt = sizeof(builtins) / sizeof(builtins[0]) - 1;
            for (i = 0; i < cnt && *n < SL_PII_MAX_DETECTORS - 2; i++) {
                if (sl_pii_builtin_name(list[i]) == NULL) {
                    snprintf(why, whylen, "detectors: no detector called %.60s", list[i]);
                    return -1;
                }
                sp[(*n)++] = (struct sl_pii_spec){ .type = SL_PII_BUILTIN, .name = list[i], .action = act };
            }
        }
    } else if (strcmp(kind, "sluice_regex") != 0) {
        snprintf(why, whylen, "guardrail: \"%.40s\" is not one sluice runs (sluice_pii, presidio, "
                 "sluice_regex)", kind);
        return -1;
    }
    pats = json_object_get(p, "patterns");
    if (pats != NULL && !json_is_array(pats)) {
        snprintf(why, whylen, "patterns: expected a list of {name, pattern, action}");
        return -1;
    }
    json_array_foreach(pats, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *re = json_string_value(json_object_get(v, "pattern"));
        const char *pa = json_string_value(json_object_get(v, "action"));
        enum sl_pii_action ea = SL_PII_BLOCK;

        if (name == NULL || re == NULL || (pa != NULL && action_of(pa, &ea) != 0)) {
            snprintf(why, whylen, "patterns[%zu]: expected {name, pattern, action: MASK|BLOCK|LOG}", i);
            return -1;
        }
        if (*n >= SL_PII_MAX_DETECTORS - 2)
            break;
        sp[(*n)++] = (struct sl_pii_spec){ .type = SL_PII_PATTERN, .name = name, .action = ea,
                                            .pattern = re };
    }
    v = json_object_get(p, "blocked_words");
    if (v == NULL)
        v = json_object_get(p, "deny");
    if (strings(a, v, &list, &cnt) != 0) {
        snprintf(why, whylen, "blocked_words: expected a list of words or phrases");
        return -1;
    }
    if (cnt > 0)
        sp[(*n)++] = (struct sl_pii_spec){ .type = SL_PII_DENY, .name = "BLOCKED_WORD",
                                            .action = SL_PII_BLOCK, .values = list, .nvalues = cnt };
    if (strings(a, json_object_get(p, "allow"), &list, &cnt) != 0) {
        snprintf(why, whylen, "allow: expected a list of values");
        return -1;
    }
    if (cnt > 0)
        sp[(*n)++] = (struct sl_pii_spec){ .type = SL_PII_ALLOW, .name = "ALLOW", .values = list,
                                            .nvalues = cnt };
    if (*n == 0) {
        snprintf(why, whylen, "nothing to detect (sluice_regex needs patterns or blocked_words)");
        return -1;
    }
    return 0;
}

static int modes_of(const json_t *m, unsigned *modes)
{
    size_t i;
    const json_t *s;

    *modes = 0;
    if (m == NULL) {
        *modes = SL_GUARD_PRE;
        return 0;
    }
    if (json_is_string(m))
        return (*modes = mode_bit(json_string_value(m))) != 0 ? 0 : -1;
    if (!json_is_array(m) || json_array_size(m) == 0)
        return -1;
    json_array_foreach(m, i, s) {
        unsigned b = mode_bit(json_string_value(s));

        if (b == 0)
            return -1;
        *modes |= b;
    }
    return 0;
}

static int load_one(struct sl_config *cfg, const json_t *e, size_t idx, struct sl_guardrail *g,
                    char *why, size_t whylen)
{
    const char *name = json_string_value(json_object_get(e, "guardrail_name"));
    const json_t *p = json_object_get(e, "litellm_params");
    const char *kind = json_string_value(json_object_get(p, "guardrail"));
    struct sl_pii_spec sp[SL_PII_MAX_DETECTORS];
    char err[256];
    size_t n;
    int rc;

    if (name == NULL || name[0] == '\0' || !json_is_object(p) || kind == NULL) {
        snprintf(why, whylen, "guardrails[%zu]: expected guardrail_name and litellm_params.guardrail",
                 idx);
        return SL_ERR_CONFIG;
    }
    if ((g->name = sl_arena_strdup(cfg->arena, name)) == NULL)
        return SL_ERR_NOMEM;
    if (modes_of(json_object_get(p, "mode"), &g->modes) != 0) {
        snprintf(why, whylen, "guardrails[%zu] (%.60s): mode: expected pre_call, post_call, "
                 "during_call or logging_only (or a list of them)", idx, name);
        return SL_ERR_CONFIG;
    }
    g->default_on = json_is_true(json_object_get(p, "default_on"));
    g->restore = json_is_true(json_object_get(p, "output_parse_pii"));
    if (specs_of(cfg->arena, p, kind, sp, &n, err, sizeof(err)) != 0) {
        snprintf(why, whylen, "guardrails[%zu] (%.60s): %s", idx, name, err);
        return SL_ERR_CONFIG;
    }
    rc = sl_pii_compile(sp, n, &g->set, err, sizeof(err));
    if (rc != SL_OK && rc != SL_ERR_NOMEM)
        snprintf(why, whylen, "guardrails[%zu] (%.60s): %s", idx, name, err);
    return rc;
}

int sl_guard_load(struct sl_config *cfg, const json_t *list, char *why, size_t whylen)
{
    size_t i, n = json_array_size(list);
    const json_t *e;
    int rc;

    cfg->guardrails = NULL;
    cfg->n_guardrails = 0;
    if (list == NULL || json_is_null(list))
        return SL_OK;
    if (!json_is_array(list)) {
        snprintf(why, whylen, "guardrails: expected a list of {guardrail_name, litellm_params}");
        return SL_ERR_CONFIG;
    }
    if (n > MAX_GUARDRAILS) {
        snprintf(why, whylen, "guardrails: at most %d", MAX_GUARDRAILS);
        return SL_ERR_CONFIG;
    }
    if (n == 0)
        return SL_OK;
    if ((cfg->guardrails = sl_arena_calloc(cfg->arena, n, sizeof(*cfg->guardrails))) == NULL)
        return SL_ERR_NOMEM;
    json_array_foreach(list, i, e) {
        for (size_t j = 0; j < i; j++)
            if (json_is_string(json_object_get(e, "guardrail_name")) &&
                strcmp(cfg->guardrails[j].name,
                       json_string_value(json_object_get(e, "guardrail_name"))) == 0) {
                snprintf(why, whylen, "guardrails[%zu]: a second guardrail called %.60s", i,
                         cfg->guardrails[j].name);
                return SL_ERR_CONFIG;
            }
        rc = load_one(cfg, e, i, &cfg->guardrails[i], why, whylen);
        cfg->n_guardrails = i + 1;     /* so that sl_guard_free frees what was made */
        if (rc != SL_OK)
            return rc;
    }
    return SL_OK;
}

void sl_guard_free(struct sl_config *cfg)
{
    for (size_t i = 0; cfg != NULL && i < cfg->n_guardrails; i++)
        sl_pii_free(cfg->guardrails[i].set);
    if (cfg != NULL)
        cfg->n_guardrails = 0;
}

/* ---- per request ---------------------------------------------------------------- */

/* One streamed text (a choice's content, or one of its tool calls'
 * arguments) on its way through the post_call scanners and the restore. */
struct text_stream {
    struct sl_pii_stream **scan;    /* n_guardrails, NULL where none runs; NULL: not begun */
    struct sl_pii_unstream *un;
    int done;                       /* flushed: the choice finished */
};

struct choice_stream {
    struct text_stream content, reasoning;
    struct text_stream tools[MAX_TOOLS];
};

struct sl_guard_req {
    unsigned long long on;          /* guardrails that run (bit i: cfg->guardrails[i]) */
    unsigned long long post;        /* of which post_call */
    int restore;
    struct sl_pii_map *map;         /* the prompt's placeholders */
    struct sl_pii_map *post_map;    /* what post_call masked in the answer */
    struct choice_stream ch[MAX_CHOICES];
    /* for the metrics (sl_guard_metrics), by hook (0 pre_call or logging_only, 1 post_call) */
    unsigned long long ran[2], hit[2], stopped[2];
    long long us[2][64];            /* time spent, by guardrail */
};

/* Guardrail i ran as hook on a text since t0 (µs) and found rep. */
static void ran(struct sl_request *req, size_t i, int hook, long long t0,
                const struct sl_pii_report *rep)
{
    struct sl_guard_req *s = req->guard;

    if (i >= 64)
        return;
    s->ran[hook] |= 1ULL << i;
    if (rep->total > 0)
        s->hit[hook] |= 1ULL << i;
    if (rep->blocked != NULL)
        s->stopped[hook] |= 1ULL << i;
    s->us[hook][i] += sl_now_us() - t0;
}

void sl_guard_metrics(const struct sl_request *req)
{
    const struct sl_guard_req *s = req->guard;
    const struct sl_config *cfg = req->cfg;

    if (s == NULL)
        return;
    for (int hook = 0; hook < 2; hook++)
        for (size_t i = 0; i < cfg->n_guardrails && i < 64; i++) {
            const struct sl_guardrail *g = &cfg->guardrails[i];

            if (!(s->ran[hook] >> i & 1))
                continue;
            sl_metrics_guardrail(cfg, g->name,
                                 hook ? "post_call" : g->modes & SL_GUARD_PRE ? "pre_call" : "logging_only",
                                 s->stopped[hook] >> i & 1 ? "blocked"
                                 : s->hit[hook] >> i & 1 ? (g->modes & (SL_GUARD_PRE | SL_GUARD_POST)
                                                             ? "masked" : "detected")
                                 : "passed",
                                 s->us[hook][i]);
        }
}

static int find_guardrail(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_guardrails; i++)
        if (strcmp(cfg->guardrails[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Turns on the guardrails a JSON list (or {name: ...} object) names. -1 with
 * req->err_msg for a name not configured. */
static int turn_on(struct sl_request *req, unsigned long long *on, const json_t *v, int strict)
{
    const char *name;
    const json_t *x;
    size_t i;
    int k;

    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, name, x) {
            if ((k = find_guardrail(req->cfg, name)) >= 0)
                *on |= 1ULL << k;
            else if (strict)
                goto unknown;
        }
        return 0;
    }
    json_array_foreach(v, i, x) {
        if ((name = json_string_value(x)) == NULL) {
            if (!strict)
                continue;
            req->err_msg = "guardrails: expected a list of guardrail names.";
            req->err_param = "guardrails";
            return -1;
        }
        if ((k = find_guardrail(req->cfg, name)) >= 0)
            *on |= 1ULL << k;
        else if (strict)
            goto unknown;
    }
    return 0;
unknown:
    req->err_msg = sl_arena_printf(req->arena, "guardrail '%.100s' is not configured on this "
                                   "gateway.", name);
    req->err_param = "guardrails";
    return -1;
}

/* The metadata.guardrails of a key or team, as JSON text (NULL: none). */
static void turn_on_text(struct sl_request *req, unsigned long long *on, const char *text)
{
    json_t *v;

    if (text == NULL || (v = json_loads(text, 0, NULL)) == NULL)
        return;
    (void)turn_on(req, on, v, 0);
    json_decref(v);
}

static int blocked(struct sl_request *req, const struct sl_guardrail *g, const char *det,
                   const char *where)
{
    req->err_msg = sl_arena_printf(req->arena, "Violated guardrail policy: guardrail '%s' "
                                   "found %s in the %s.", g->name, det, where);
    return SL_ERR_GUARDRAIL;
}

/* Runs the pre_call (and logging_only) guardrails on one text; *out is the
 * text to send (text itself when unchanged). */
static int pre_text(struct sl_request *req, const char *text, size_t len, const char **out,
                    size_t *out_len)
{
    struct sl_guard_req *s = req->guard;
    const struct sl_config *cfg = req->cfg;
    struct sl_pii_report rep;
    long long t0;
    int rc;

    *out = text;
    *out_len = len;
    for (size_t i = 0; i < cfg->n_guardrails; i++) {
        const struct sl_guardrail *g = &cfg->guardrails[i];

        if (!(s->on >> i & 1) || !(g->modes & (SL_GUARD_PRE | SL_GUARD_LOG)))
            continue;
        memset(&rep, 0, sizeof(rep));
        t0 = sl_now_us();
        if (!(g->modes & SL_GUARD_PRE)) {          /* logging_only: count */
            struct sl_pii_hit *hits;
            size_t nh;

            if ((rc = sl_pii_find(g->set, req->arena, *out, *out_len, &hits, &nh, &rep)) != SL_OK)
                return rc;
            ran(req, i, 0, t0, &rep);
            continue;
        }
        if ((rc = sl_pii_scan(g->set, s->map, req->arena, *out, *out_len, out, out_len, &rep)) != SL_OK)
            return rc;
        ran(req, i, 0, t0, &rep);
        if (rep.blocked != NULL)
            return blocked(req, g, rep.blocked, "request");
    }
    return SL_OK;
}

typedef int text_fn(struct sl_request *req, const char *text, size_t len, const char **out,
                    size_t *out_len);

/* Replaces the string member key of o by what fn makes of it; *changed set
 * (when not NULL) if that differs. */
static int rewrite_member(struct sl_request *req, json_t *o, const char *key, text_fn *fn,
                          int *changed)
{
    json_t *v = json_object_get(o, key);
    const char *out;
    size_t n;
    int rc;

    if (!json_is_string(v))
        return SL_OK;
    if ((rc = fn(req, json_string_value(v), json_string_length(v), &out, &n)) != SL_OK)
        return rc;
    if (out == json_string_value(v))
        return SL_OK;
    if (changed != NULL)
        *changed = 1;
    return json_object_set_new(o, key, json_stringn(out, n)) == 0 ? SL_OK : SL_ERR_NOMEM;
}

static int guard_member(struct sl_request *req, json_t *o, const char *key, int *changed)
{
    return rewrite_member(req, o, key, pre_text, changed);
}

/* Every text of a chat request: contents (strings and text parts) of every
 * role, and tool call arguments. */
static int pre_chat(struct sl_request *req, int *changed)
{
    json_t *msgs = json_object_get(req->in, "messages"), *m, *part, *call;
    size_t i, j;
    int rc;

    json_array_foreach(msgs, i, m) {
        json_t *content = json_object_get(m, "content");

        /* (a string content is replaced, and freed, by guard_member) */
        if (json_is_string(content)) {
            if ((rc = guard_member(req, m, "content", changed)) != SL_OK)
                return rc;
        } else {
            json_array_foreach(content, j, part)
                if (json_is_object(part) && (rc = guard_member(req, part, "text", changed)) != SL_OK)
                    return rc;
        }
        json_array_foreach(json_object_get(m, "tool_calls"), j, call)
            if ((rc = guard_member(req, json_object_get(call, "function"), "arguments",
                                   changed)) != SL_OK)
                return rc;
    }
    return SL_OK;
}

/* The input of an embeddings request: a string or a list of strings. */
static int pre_embeddings(struct sl_request *req, int *changed)
{
    json_t *in = json_object_get(req->in, "input"), *s;
    const char *out;
    size_t i, n;
    int rc;

    if (json_is_string(in))
        return guard_member(req, req->in, "input", changed);
    json_array_foreach(in, i, s) {
        if (!json_is_string(s))
            continue;
        if ((rc = pre_text(req, json_string_value(s), json_string_length(s), &out, &n)) != SL_OK)
            return rc;
        if (out == json_string_value(s))
            continue;
        *changed = 1;
        if (json_array_set_new(in, i, json_stringn(out, n)) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* x-litellm-applied-guardrails: the names, comma-separated. */
static void applied_header(struct sl_request *req)
{
    const struct sl_config *cfg = req->cfg;
    size_t len = 1, at = 0;
    char *h;

    for (size_t i = 0; i < cfg->n_guardrails; i++)
        if (req->guard->on >> i & 1)
            len += strlen(cfg->guardrails[i].name) + 1;
    if ((h = sl_arena_alloc(req->arena, len)) == NULL)
        return;
    for (size_t i = 0; i < cfg->n_guardrails; i++)
        if (req->guard->on >> i & 1)
            at += (size_t)snprintf(h + at, len - at, "%s%s", at ? "," : "",
                                   cfg->guardrails[i].name);
    (void)sl_respond_header(req, "x-litellm-applied-guardrails", h);
}

int sl_guard_select(struct sl_request *req)
{
    const struct sl_config *cfg = req->cfg;
    const struct sl_key *k = req->principal.key;
    unsigned long long on = 0;
    json_t *asked;

    if (cfg->n_guardrails == 0)
        return SL_OK;               /* (adapters drop a "guardrails" member) */
    for (size_t i = 0; i < cfg->n_guardrails; i++)
        if (cfg->guardrails[i].default_on)
            on |= 1ULL << i;
    if (k != NULL) {
        turn_on_text(req, &on, k->guardrails);
        turn_on_text(req, &on, k->team_guardrails);
    }
    asked = json_object_get(req->in, "guardrails");
    if (asked != NULL && !json_is_array(asked) && !json_is_object(asked)) {
        req->err_msg = "guardrails: expected a list of guardrail names.";
        req->err_param = "guardrails";
        return SL_ERR_BAD_REQUEST;
    }
    if (asked != NULL && turn_on(req, &on, asked, 1) != 0)
        return SL_ERR_BAD_REQUEST;
    json_object_del(req->in, "guardrails");
    if (on == 0)
        return SL_OK;
    if ((req->guard = sl_arena_calloc(req->arena, 1, sizeof(*req->guard))) == NULL ||
        (req->guard->map = sl_pii_map_new(req->arena)) == NULL ||
        (req->guard->post_map = sl_pii_map_new(req->arena)) == NULL)
        return SL_ERR_NOMEM;
    req->guard->on = on;
    for (size_t i = 0; i < cfg->n_guardrails; i++) {
        if (!(on >> i & 1))
            continue;
        if (cfg->guardrails[i].modes & SL_GUARD_POST)
            req->guard->post |= 1ULL << i;
        req->guard->restore |= cfg->guardrails[i].restore && (cfg->guardrails[i].modes & SL_GUARD_PRE);
    }
    applied_header(req);
    return SL_OK;
}

int sl_guard_pre(struct sl_request *req)
{
    int changed = 0, rc;

    if (req->guard == NULL)
        return SL_OK;
    rc = req->endpoint == SL_EP_EMBEDDINGS ? pre_embeddings(req, &changed) : pre_chat(req, &changed);
    if (rc == SL_OK && changed)
        req->body = NULL;           /* the adapters build the body from req->in */
    if (rc == SL_OK && sl_pii_map_size(req->guard->map) == 0)
        req->guard->restore = 0;    /* nothing to put back */
    return rc;
}

/* ---- answers ------------------------------------------------------------------ */

int sl_guard_on_answer(const struct sl_request *req)
{
    return req->guard != NULL && (req->guard->post != 0 || req->guard->restore);
}

/* post_call masking, then the restore, of one answer text. */
static int post_text(struct sl_request *req, const char *text, size_t len, const char **out,
                     size_t *out_len)
{
    struct sl_guard_req *s = req->guard;
    const struct sl_config *cfg = req->cfg;
    struct sl_pii_report rep;
    int rc;

    *out = text;
    *out_len = len;
    for (size_t i = 0; i < cfg->n_guardrails; i++) {
        long long t0;

        if (!(s->post >> i & 1))
            continue;
        t0 = sl_now_us();
        memset(&rep, 0, sizeof(rep));
        if ((rc = sl_pii_scan(cfg->guardrails[i].set, s->post_map, req->arena, *out, *out_len,
                              out, out_len, &rep)) != SL_OK)
            return rc;
        ran(req, i, 1, t0, &rep);
        if (rep.blocked != NULL)
            return blocked(req, &cfg->guardrails[i], rep.blocked, "response");
    }
    if (s->restore && (*out = sl_pii_restore(s->map, req->arena, *out, *out_len, out_len)) == NULL)
        return SL_ERR_NOMEM;
    return SL_OK;
}

static int answer_member(struct sl_request *req, json_t *o, const char *key)
{
    return rewrite_member(req, o, key, post_text, NULL);
}

int sl_guard_answer(struct sl_request *req, json_t *resp)
{
    json_t *c, *msg, *call;
    size_t i, j;
    int rc;

    json_array_foreach(json_object_get(resp, "choices"), i, c) {
        msg = json_object_get(c, "message");
        if ((rc = answer_member(req, msg, "content")) != SL_OK ||
            (rc = answer_member(req, msg, "reasoning_content")) != SL_OK)
            return rc;
        json_array_foreach(json_object_get(msg, "tool_calls"), j, call)
            if ((rc = answer_member(req, json_object_get(call, "function"), "arguments")) != SL_OK)
                return rc;
    }
    return SL_OK;
}

/* Begins ts on first use. SL_OK or SL_ERR_NOMEM. */
static int text_begin(struct sl_request *req, struct text_stream *ts)
{
    struct sl_guard_req *s = req->guard;
    const struct sl_config *cfg = req->cfg;

    if (ts->scan != NULL)
        return SL_OK;
    if ((ts->scan = sl_arena_calloc(req->arena, cfg->n_guardrails, sizeof(*ts->scan))) == NULL)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < cfg->n_guardrails; i++)
        if ((s->post >> i & 1) &&
            (ts->scan[i] = sl_pii_stream_new(cfg->guardrails[i].set, s->post_map, req->arena)) == NULL)
            return SL_ERR_NOMEM;
    if ((ts->un = sl_pii_unstream_new(s->map, req->arena)) == NULL)
        return SL_ERR_NOMEM;
    return SL_OK;
}

/* a (an bytes, arena) followed by b: a new arena string. */
static char *join(struct sl_arena *arena, const char *a, size_t an, const char *b, size_t bn)
{
    char *j = sl_arena_alloc(arena, an + bn + 1);

    if (j == NULL)
        return NULL;
    memcpy(j, a, an);
    memcpy(j + an, b, bn);
    j[an + bn] = '\0';
    return j;
}

/* Passes text through the scanners and the restore of ts (begun; finish:
 * the end of the choice: flush everything held). *out is arena text. */
static int stream_text(struct sl_request *req, struct text_stream *ts, const char *text,
                       size_t len, int finish, const char **out, size_t *out_len)
{
    const struct sl_config *cfg = req->cfg;
    struct sl_pii_report rep;
    const char *t = text, *o;
    size_t n = len, on;
    char *acc;
    int rc;

    for (size_t i = 0; i < cfg->n_guardrails; i++) {
        long long t0;

        if (ts->scan[i] == NULL)
            continue;
        t0 = sl_now_us();
        memset(&rep, 0, sizeof(rep));
        if ((rc = sl_pii_stream_feed(ts->scan[i], t, n, &o, &on, &rep)) != SL_OK)
            return rc;
        ran(req, i, 1, t0, &rep);
        if (rep.blocked != NULL)
            return blocked(req, &cfg->guardrails[i], rep.blocked, "response");
        if (finish) {          /* what it still holds goes after what it just gave */
            const char *tail;
            size_t tn;

            if ((acc = sl_arena_alloc(req->arena, on + 1)) == NULL)
                return SL_ERR_NOMEM;
            memcpy(acc, o, on);
            t0 = sl_now_us();
            memset(&rep, 0, sizeof(rep));
            if ((rc = sl_pii_stream_finish(ts->scan[i], &tail, &tn, &rep)) != SL_OK)
                return rc;
            ran(req, i, 1, t0, &rep);
            if (rep.blocked != NULL)
                return blocked(req, &cfg->guardrails[i], rep.blocked, "response");
            if ((acc = join(req->arena, acc, on, tail, tn)) == NULL)
                return SL_ERR_NOMEM;
            o = acc;
            on += tn;
        } else if ((acc = sl_arena_alloc(req->arena, on + 1)) != NULL) {
            memcpy(acc, o, on);      /* the stream's buffer is reused by its next call */
            o = acc;
        } else
            return SL_ERR_NOMEM;
        t = o;
        n = on;
    }
    if ((rc = sl_pii_unstream_feed(ts->un, t, n, &o, &on)) != SL_OK)
        return rc;
    if ((acc = sl_arena_alloc(req->arena, on + 1)) == NULL)
        return SL_ERR_NOMEM;
    memcpy(acc, o, on);
    if (finish) {
        const char *tail;
        size_t tn;

        if ((rc = sl_pii_unstream_finish(ts->un, &tail, &tn)) != SL_OK)
            return rc;
        if ((acc = join(req->arena, acc, on, tail, tn)) == NULL)
            return SL_ERR_NOMEM;
        on += tn;
        ts->done = 1;
    }
    acc[on] = '\0';
    *out = acc;
    *out_len = on;
    return SL_OK;
}

/* One delta text of ts (the string member key of o, if any), and at the end
 * of the choice (finish) what ts still holds: into o[key]. */
static int delta_text(struct sl_request *req, struct text_stream *ts, json_t *o, const char *key,
                      int finish)
{
    json_t *v = json_object_get(o, key);
    const char *out;
    size_t n;
    int rc;

    if (ts->done || (!json_is_string(v) && (!finish || ts->scan == NULL)))
        return SL_OK;
    if ((rc = text_begin(req, ts)) != SL_OK)
        return rc;
    if ((rc = stream_text(req, ts, json_is_string(v) ? json_string_value(v) : "",
                          json_is_string(v) ? json_string_length(v) : 0, finish, &out, &n)) != SL_OK)
        return rc;
    if (json_is_object(o) && (json_is_string(v) || n > 0) &&
        json_object_set_new(o, key, json_stringn(out, n)) != 0)
        return SL_ERR_NOMEM;
    return SL_OK;
}

/* The tool-call argument deltas of one choice's delta; at its finish, what
 * the scanners still hold of each call goes out as one more delta of it. */
static int delta_tools(struct sl_request *req, struct choice_stream *cs, json_t *delta, int finish)
{
    json_t *calls = json_object_get(delta, "tool_calls"), *tc;
    size_t i;
    int rc;

    json_array_foreach(calls, i, tc) {
        json_int_t t = json_integer_value(json_object_get(tc, "index"));

        if (t >= 0 && t < MAX_TOOLS &&
            (rc = delta_text(req, &cs->tools[t], json_object_get(tc, "function"), "arguments",
                             0)) != SL_OK)
            return rc;
    }
    if (!finish)
        return SL_OK;
    for (size_t t = 0; t < MAX_TOOLS; t++) {
        json_t *fn, *one;

        if (cs->tools[t].scan == NULL || cs->tools[t].done)
            continue;
        if ((fn = json_object()) == NULL || (rc = delta_text(req, &cs->tools[t], fn, "arguments", 1)) != SL_OK) {
            json_decref(fn);
            return fn == NULL ? SL_ERR_NOMEM : rc;
        }
        if (json_object_get(fn, "arguments") == NULL) {
            json_decref(fn);
            continue;
        }
        if (calls == NULL) {
            if (!json_is_object(delta) || (calls = json_array()) == NULL ||
                json_object_set_new(delta, "tool_calls", calls) != 0) {
                json_decref(fn);
                return SL_ERR_NOMEM;
            }
        }
        if ((one = json_pack("{s:I, s:o}", "index", (json_int_t)t, "function", fn)) == NULL ||
            json_array_append_new(calls, one) != 0)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

int sl_guard_chunk(struct sl_request *req, json_t *chunk)
{
    json_t *c, *delta;
    size_t i;
    int rc;

    json_array_foreach(json_object_get(chunk, "choices"), i, c) {
        json_int_t index = json_integer_value(json_object_get(c, "index"));
        int finish = json_is_string(json_object_get(c, "finish_reason"));
        struct choice_stream *cs;

        if (index < 0 || index >= MAX_CHOICES)
            continue;
        cs = &req->guard->ch[index];
        delta = json_object_get(c, "delta");
        if (finish && delta == NULL) {
            if ((delta = json_object()) == NULL || json_object_set_new(c, "delta", delta) != 0)
                return SL_ERR_NOMEM;
        }
        if ((rc = delta_text(req, &cs->content, delta, "content", finish)) != SL_OK ||
            (rc = delta_text(req, &cs->reasoning, delta, "reasoning_content", finish)) != SL_OK ||
            (rc = delta_tools(req, cs, delta, finish)) != SL_OK)
            return rc;
    }
    return SL_OK;
}

json_t *sl_guard_stream_end(struct sl_request *req)
{
    json_t *choices = NULL, *c;

    if (req->guard == NULL || !sl_guard_on_answer(req))
        return NULL;
    for (size_t i = 0; i < MAX_CHOICES; i++) {
        struct choice_stream *cs = &req->guard->ch[i];

        if ((c = json_pack("{s:I, s:{}, s:n}", "index", (json_int_t)i, "delta", "finish_reason")) == NULL)
            break;
        if (delta_text(req, &cs->content, json_object_get(c, "delta"), "content", 1) != SL_OK ||
            delta_text(req, &cs->reasoning, json_object_get(c, "delta"), "reasoning_content", 1) != SL_OK ||
            delta_tools(req, cs, json_object_get(c, "delta"), 1) != SL_OK ||
            json_object_size(json_object_get(c, "delta")) == 0 ||
            (choices == NULL && (choices = json_array()) == NULL)) {
            json_decref(c);
            continue;
        }
        json_array_append_new(choices, c);
    }
    if (choices == NULL)
        return NULL;
    return json_pack("{s:s, s:s, s:o}", "object", "chat.completion.chunk", "model",
                     req->model ? req->model : "", "choices", choices);
}

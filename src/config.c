/* The configuration: LiteLLM's config.yaml -> an immutable, reference-counted
 * struct sl_config. Loading runs in two passes: libyaml's events become a small
 * node tree that keeps the line and column of every value and enforces the
 * size, depth and alias limits; the tree is then checked and converted into
 * typed fields and Jansson values. Also here: the process-wide current config
 * and the reload watcher. What each setting means is up to its users. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* st_mtim, strcasecmp, setenv with any -std */
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <yaml.h>

#include "auth.h"
#include "config.h"   /* src/config.h: quoted includes look beside this file first */
#include "arena.h"
#include "buf.h"
#include "db.h"
#include "guard.h"
#include "keystore.h"
#include "log.h"
#include "prices.h"
#include "provider.h"
#include "request.h"
#include "respond.h"
#include "router.h"
#include "status.h"

/* Limits. No input may crash or exhaust the process: a real config is a few
 * KiB with a handful of levels, so these leave a wide margin. */
#define MAX_FILE_BYTES   (4u << 20)
#define MAX_DEPTH        64            /* nested mappings/lists, aliases included */
#define MAX_NODES        262144        /* values written in the file */
#define MAX_ANCHORS      256           /* keeps alias lookup (a list walk) cheap */
#define MAX_EXPANDED     ((size_t)32 << 20) /* the tree with aliases expanded, see NODE_COST */
#define NODE_COST        32            /* a node's weight in MAX_EXPANDED, beside its text */
#define MAX_MSGS         100           /* then one "too many messages" line */
#define MAX_SECONDS      1e6           /* ~11 days; keeps ms inside a 32-bit long */
#define TREE_ARENA_CAP   ((size_t)64 << 20)
#define CONFIG_ARENA_CAP ((size_t)64 << 20)
#define WATCH_STACK      (256u << 10)
#define WATCH_MSGS_CAP   (64u << 10)
#define DEFAULT_MAX_BODY ((size_t)32 << 20)

#define ENV_PREFIX       "os.environ/"
#define YTAG             "tag:yaml.org,2002:"

/* ---- the node tree ---------------------------------------------------- */

enum kind { K_SCALAR, K_SEQ, K_MAP };
enum stype { T_STR, T_NULL, T_BOOL, T_INT, T_FLOAT };

/* One child of a collection. Items, not nodes, are linked so that an alias
 * can put the same node under several parents. */
struct item {
    struct item *next;
    struct node *key;     /* mappings only: a scalar */
    struct node *val;
};

struct node {
    struct item *items, *tail;   /* collections: children in file order */
    size_t n;                    /* number of items */
    const char *str;             /* scalars: the text; the variable's value once
                                  * os.environ/ is resolved */
    size_t len;
    const char *kept;            /* str copied into the config arena (shared by aliases) */
    long long ival;              /* T_INT, T_BOOL */
    double dval;                 /* T_FLOAT */
    size_t cost;                 /* expanded weight, saturating above MAX_EXPANDED */
    const char *anchor;          /* collections: registered once complete */
    int line, col;               /* 1-based */
    unsigned char kind, type;
    unsigned char height;        /* 0 for scalars, 1 + deepest child otherwise */
    unsigned char plain;         /* written without quotes */
    unsigned char env_done;      /* os.environ/ looked at */
    unsigned char env_unset;     /* ... and its variable is not set: absent */
    unsigned char from_env;      /* str is a variable's value */
    unsigned char reported;      /* an error about it was given: say it once */
};

struct anchor {
    struct anchor *next;
    const char *name;
    struct node *node;
};

struct frame {
    struct node *node;
    struct node *key;             /* mappings: a key waiting for its value */
};

struct ctx;

struct tree {
    struct ctx *cx;
    struct sl_arena *arena;       /* owns nodes, items and text */
    const char *text;             /* the file, for reader error positions */
    struct frame stack[MAX_DEPTH];
    int depth;
    struct node *root;
    struct anchor *anchors;       /* most recent first */
    int n_anchors;
    size_t n_nodes;
    int docs;
};

/* ---- the config and the load context ------------------------------------ */

struct env_pair {
    const char *name;
    const char *value;
};

/* struct sl_config has no room for environment_variables, which
 * sl_config_export_env needs; every config is allocated as this wrapper. */
struct priv {
    struct sl_config pub;         /* first: a struct sl_config * is a struct priv * */
    struct env_pair *env;         /* environment_variables, sorted by name (arena) */
    size_t n_env;
    struct stat prices_st;        /* pub.model_cost_map as it was when read, for the watcher */
    int have_prices_st;
};

struct idref {                    /* an explicit model_info.id, for the duplicate check */
    const char *id;
    int line, col;
};

struct ctx {
    const char *path;
    struct sl_buf *msgs;          /* borrowed, may be NULL */
    int errors, warnings, shown;
    int msgs_off;                 /* msgs failed (cap/OOM): stop writing */
    int nomem;
    struct priv *cfg;             /* being built */
    struct sl_arena *arena;       /* cfg's */
    struct idref *ids;            /* owned (malloc), freed at the end of the load */
    size_t n_ids, cap_ids;
    struct node *callbacks[3];    /* litellm_settings: callbacks, success_callback,
                                   * failure_callback */
};

static void diag(struct ctx *cx, int is_error, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* One "path:line:col: error|warning: text" line. Control characters from the
 * file (a key may hold "\n") become '?' so one message stays one line. */
static void diag(struct ctx *cx, int is_error, int line, int col, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    int n;

    if (is_error)
        cx->errors++;
    else
        cx->warnings++;
    if (cx->msgs == NULL || cx->msgs_off)
        return;
    if (++cx->shown > MAX_MSGS) {
        if (cx->shown == MAX_MSGS + 1 &&
            sl_buf_printf(cx->msgs, "%s:0:0: warning: too many messages; the rest are not shown\n",
                          cx->path) != SL_OK)
            cx->msgs_off = 1;
        return;
    }
    n = snprintf(text, sizeof(text), "%s:%d:%d: %s: ", cx->path, line, col,
                 is_error ? "error" : "warning");
    if (n < 0 || (size_t)n >= sizeof(text))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    va_end(ap);
    for (char *c = text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    if (sl_buf_printf(cx->msgs, "%s\n", text) != SL_OK)
        cx->msgs_off = 1;
}

static const char *type_name(const struct node *n)
{
    static const char *const scalar[] = { "a string", "null", "a boolean", "an integer",
                                          "a number" };

    if (n->kind == K_MAP)
        return "a mapping";
    if (n->kind == K_SEQ)
        return "a list";
    return scalar[n->type];
}

static size_t add_cost(size_t a, size_t b)
{
    /* Saturating: past the limit only "too much" matters. */
    return (a > MAX_EXPANDED || b > MAX_EXPANDED - a) ? MAX_EXPANDED + 1 : a + b;
}

/* ---- scalar typing: the YAML 1.2 core schema ------------------------------ */

static int is_float_text(const char *s)
{
    size_t digits = 0;

    if (*s == '-' || *s == '+')
        s++;
    for (; *s >= '0' && *s <= '9'; s++)
        digits++;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++)
            digits++;
    if (digits == 0)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static int one_of(const char *s, const char *a, const char *b, const char *c)
{
    return strcmp(s, a) == 0 || strcmp(s, b) == 0 || strcmp(s, c) == 0;
}

/* Types the text of a plain scalar (or an os.environ/ value read as a number)
 * into n->type/ival/dval. Returns -1 for an integer beyond 64 bits. strtod
 * assumes the "C" locale, which sluice never changes. */
static int classify(const char *s, struct node *n)
{
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;

    errno = 0;
    n->type = T_INT;
    if (*s == '\0' || one_of(s, "~", "null", "Null") || strcmp(s, "NULL") == 0)
        n->type = T_NULL;
    else if (one_of(s, "true", "True", "TRUE"))
        n->type = T_BOOL, n->ival = 1;
    else if (one_of(s, "false", "False", "FALSE"))
        n->type = T_BOOL, n->ival = 0;
    else if (*d != '\0' && d[strspn(d, "0123456789")] == '\0')
        n->ival = strtoll(s, NULL, 10);
    else if (s[0] == '0' && s[1] == 'o' && s[2] && s[2 + strspn(s + 2, "01234567")] == '\0')
        n->ival = strtoll(s + 2, NULL, 8);
    else if (s[0] == '0' && s[1] == 'x' && s[2] &&
             s[2 + strspn(s + 2, "0123456789abcdefABCDEF")] == '\0')
        n->ival = strtoll(s + 2, NULL, 16);
    else if (one_of(d, ".inf", ".Inf", ".INF"))
        n->type = T_FLOAT, n->dval = *s == '-' ? -INFINITY : INFINITY;
    else if (one_of(s, ".nan", ".NaN", ".NAN"))
        n->type = T_FLOAT, n->dval = NAN;
    else if (is_float_text(s))
        n->type = T_FLOAT, n->dval = strtod(s, NULL);
    else
        n->type = T_STR;
    return (n->type == T_INT && errno == ERANGE) ? -1 : 0;
}

/* ---- building the tree from libyaml events ------------------------------ */

static struct node *new_node(struct tree *t, int kind, const yaml_mark_t *m)
{
    struct node *n;

    if (++t->n_nodes > MAX_NODES) {
        diag(t->cx, 1, (int)m->line + 1, (int)m->column + 1,
             "too many values in one file (more than %d)", MAX_NODES);
        return NULL;
    }
    if ((n = sl_arena_calloc(t->arena, 1, sizeof(*n))) == NULL) {
        t->cx->nomem = 1;
        return NULL;
    }
    n->kind = (unsigned char)kind;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

static int add_anchor(struct tree *t, const char *name, struct node *n)
{
    struct anchor *a;

    if (t->n_anchors >= MAX_ANCHORS) {
        diag(t->cx, 1, n->line, n->col, "too many anchors (more than %d)", MAX_ANCHORS);
        return -1;
    }
    if ((a = sl_arena_alloc(t->arena, sizeof(*a))) == NULL ||
        (a->name = sl_arena_strdup(t->arena, name)) == NULL) {
        t->cx->nomem = 1;
        return -1;
    }
    a->node = n;
    a->next = t->anchors;
    t->anchors = a;
    t->n_anchors++;
    return 0;
}

/* Puts a finished (or, for collections, just started) node under the open
 * collection: as the root, a list item, a mapping key, or the value of the
 * waiting key. */
static int attach(struct tree *t, struct node *n, const yaml_mark_t *m)
{
    struct frame *f;
    struct item *it;

    if (t->depth == 0) {
        t->root = n;
        return 0;
    }
    f = &t->stack[t->depth - 1];
    if (f->node->kind == K_MAP && f->key == NULL) {
        if (n->kind != K_SCALAR) {
            diag(t->cx, 1, (int)m->line + 1, (int)m->column + 1,
                 "a mapping key must be a plain value, not %s", type_name(n));
            return -1;
        }
        f->key = n;
        return 0;
    }
    if ((it = sl_arena_alloc(t->arena, sizeof(*it))) == NULL) {
        t->cx->nomem = 1;
        return -1;
    }
    it->next = NULL;
    it->key = f->key;
    it->val = n;
    f->key = NULL;
    if (f->node->tail != NULL)
        f->node->tail->next = it;
    else
        f->node->items = it;
    f->node->tail = it;
    f->node->n++;
    return 0;
}

/* An explicit tag: !!str forces a string, !!int/!!float/!!bool/!!null must
 * match the text; anything else (custom tags) is refused rather than guessed. */
static int scalar_tag(struct tree *t, struct node *n, const char *tag)
{
    static const char *const names[] = { "str", "null", "bool", "int", "float" };
    int want = -1;

    if (tag == NULL || strcmp(tag, "!") == 0) {
        if (n->plain)
            goto plain;
        n->type = T_STR;
        return 0;
    }
    if (strncmp(tag, YTAG, sizeof(YTAG) - 1) == 0)
        for (int i = 0; i < 5; i++)
            if (strcmp(tag + sizeof(YTAG) - 1, names[i]) == 0)
                want = i;
    if (want < 0) {
        diag(t->cx, 1, n->line, n->col, "unsupported tag %.80s", tag);
        return -1;
    }
    if (want == T_STR) {
        n->type = T_STR;
        return 0;
    }
plain:
    if (classify(n->str, n) != 0) {
        diag(t->cx, 1, n->line, n->col, "integer out of range (64 bits)");
        return -1;
    }
    if (want == T_FLOAT && n->type == T_INT)
        n->type = T_FLOAT, n->dval = (double)n->ival;
    if (want >= 0 && n->type != want) {
        diag(t->cx, 1, n->line, n->col, "value does not match its tag !!%s", names[want]);
        return -1;
    }
    return 0;
}

static int on_scalar(struct tree *t, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    struct node *n = new_node(t, K_SCALAR, &ev->start_mark);

    if (n == NULL)
        return -1;
    if (memchr(v, '\0', len) != NULL) {
        /* C strings everywhere downstream; a NUL would silently cut values. */
        diag(t->cx, 1, n->line, n->col, "NUL characters are not supported");
        return -1;
    }
    if ((n->str = sl_arena_strndup(t->arena, v, len)) == NULL) {
        t->cx->nomem = 1;
        return -1;
    }
    n->len = len;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    n->cost = add_cost(NODE_COST, len);
    if (scalar_tag(t, n, (const char *)ev->data.scalar.tag) != 0)
        return -1;
    if (ev->data.scalar.anchor != NULL &&
        add_anchor(t, (const char *)ev->data.scalar.anchor, n) != 0)
        return -1;
    return attach(t, n, &ev->start_mark);
}

static int on_start(struct tree *t, const yaml_event_t *ev)
{
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    const char *tag = (const char *)(is_map ? ev->data.mapping_start.tag
                                            : ev->data.sequence_start.tag);
    const char *anchor = (const char *)(is_map ? ev->data.mapping_start.anchor
                                               : ev->data.sequence_start.anchor);
    struct node *n;

    if (t->depth >= MAX_DEPTH) {
        diag(t->cx, 1, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
             "nested deeper than %d levels", MAX_DEPTH);
        return -1;
    }
    if ((n = new_node(t, is_map ? K_MAP : K_SEQ, &ev->start_mark)) == NULL)
        return -1;
    if (tag != NULL && strcmp(tag, "!") != 0 &&
        strcmp(tag, is_map ? YTAG "map" : YTAG "seq") != 0) {
        diag(t->cx, 1, n->line, n->col, "unsupported tag %.80s", tag);
        return -1;
    }
    /* The anchor is registered only when the collection is complete, so an
     * alias can never point into an open one: the tree stays acyclic. */
    if (anchor != NULL && (n->anchor = sl_arena_strdup(t->arena, anchor)) == NULL) {
        t->cx->nomem = 1;
        return -1;
    }
    if (attach(t, n, &ev->start_mark) != 0)
        return -1;
    t->stack[t->depth].node = n;
    t->stack[t->depth].key = NULL;
    t->depth++;
    return 0;
}

/* ---- mapping end: duplicate keys and merge keys ---------------------------- */

struct keyref {
    struct node *key, *val;
    unsigned src;          /* 0: written in this mapping; k: the k-th merged mapping */
    size_t pos;            /* position inside its mapping */
};

static int cmp_text(const struct node *a, const struct node *b)
{
    int c = memcmp(a->str, b->str, a->len < b->len ? a->len : b->len);

    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int cmp_order(const void *pa, const void *pb)
{
    const struct keyref *a = pa, *b = pb;

    if (a->src != b->src)
        return a->src < b->src ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int cmp_keyref(const void *pa, const void *pb)
{
    int c = cmp_text(((const struct keyref *)pa)->key, ((const struct keyref *)pb)->key);

    return c != 0 ? c : cmp_order(pa, pb);
}

static int is_merge(const struct item *it)
{
    return it->key->plain && it->key->len == 2 && memcmp(it->key->str, "<<", 2) == 0;
}

/* Counts the keys a mapping will compare (its own, plus those of every
 * mapping merged in) and checks that merge values are mappings. */
static int count_keys(struct tree *t, const struct node *map, size_t *total)
{
    *total = 0;
    for (const struct item *it = map->items; it != NULL; it = it->next) {
        const struct node *v = it->val;

        if (!is_merge(it)) {
            (*total)++;
            continue;
        }
        if (v->kind == K_MAP) {
            *total += v->n;
            continue;
        }
        if (v->kind == K_SEQ) {
            const struct item *s = v->items;

            for (; s != NULL && s->val->kind == K_MAP; s = s->next)
                *total += s->val->n;
            if (s == NULL)
                continue;
            v = s->val;
        }
        diag(t->cx, 1, v->line, v->col,
             "'<<' (merge) needs a mapping or a list of mappings, not %s", type_name(v));
        return -1;
    }
    return 0;
}

static void collect_keys(const struct node *map, struct keyref *refs)
{
    size_t n = 0, pos = 0;
    unsigned src = 0;

    for (const struct item *it = map->items; it != NULL; it = it->next, pos++) {
        if (!is_merge(it)) {
            refs[n++] = (struct keyref){ it->key, it->val, 0, pos };
            continue;
        }
        const struct item *s = it->val->kind == K_MAP ? NULL : it->val->items;
        const struct node *m = it->val->kind == K_MAP ? it->val : (s ? s->val : NULL);

        while (m != NULL) {
            size_t p = 0;

            src++;
            for (const struct item *k = m->items; k != NULL; k = k->next)
                refs[n++] = (struct keyref){ k->key, k->val, src, p++ };
            s = s ? s->next : NULL;
            m = s ? s->val : NULL;
        }
    }
}

/* refs sorted by key text, then origin: reports keys written twice, and
 * moves to the front the merged keys that win (not written here, first
 * merged mapping wins). Returns how many winners, or -1 after duplicates. */
static long pick_keys(struct tree *t, struct keyref *refs, size_t n)
{
    size_t w = 0, i = 0;
    int dup = 0;

    while (i < n) {
        size_t j = i + 1;

        for (; j < n && cmp_text(refs[j].key, refs[i].key) == 0; j++)
            if (refs[j].src == 0) {
                diag(t->cx, 1, refs[j].key->line, refs[j].key->col,
                     "duplicate key '%.80s' (first at line %d, column %d)",
                     refs[j].key->str, refs[i].key->line, refs[i].key->col);
                dup = 1;
            }
        if (refs[i].src != 0)
            refs[w++] = refs[i];
        i = j;
    }
    return dup ? -1 : (long)w;
}

/* Rebuilds the item list: the mapping's own items minus the '<<' ones,
 * then the winning merged keys in merge order. */
static int apply_merges(struct tree *t, struct node *map, struct keyref *win, size_t n)
{
    struct item *it = map->items, *next;

    map->items = map->tail = NULL;
    map->n = 0;
    for (; it != NULL; it = next) {
        next = it->next;
        if (is_merge(it))
            continue;
        it->next = NULL;
        if (map->tail != NULL)
            map->tail->next = it;
        else
            map->items = it;
        map->tail = it;
        map->n++;
    }
    qsort(win, n, sizeof(*win), cmp_order);
    for (size_t i = 0; i < n; i++) {
        if ((it = sl_arena_alloc(t->arena, sizeof(*it))) == NULL) {
            t->cx->nomem = 1;
            return -1;
        }
        *it = (struct item){ NULL, win[i].key, win[i].val };
        if (map->tail != NULL)
            map->tail->next = it;
        else
            map->items = it;
        map->tail = it;
        map->n++;
    }
    return 0;
}

/* Duplicate keys are errors (PyYAML silently keeps the last one, which hides
 * mistakes). Merge keys ("<<: *defaults") are applied as PyYAML does, since
 * LiteLLM configs use them to share litellm_params. Sorting keeps this
 * O(n log n) whatever the file holds. */
static int finish_map(struct tree *t, struct node *map)
{
    struct keyref *refs = NULL;
    size_t total;
    long winners;
    int rc = -1;

    if (map->n == 0)
        return 0;
    if (count_keys(t, map, &total) != 0)
        return -1;
    if ((refs = malloc((total ? total : 1) * sizeof(*refs))) == NULL) {
        t->cx->nomem = 1;
        return -1;
    }
    collect_keys(map, refs);
    qsort(refs, total, sizeof(*refs), cmp_keyref);
    winners = pick_keys(t, refs, total);
    if (winners >= 0)
        rc = total == map->n && winners == 0 ? 0 : apply_merges(t, map, refs, (size_t)winners);
    free(refs);
    return rc;
}

static int on_end(struct tree *t)
{
    struct node *n = t->stack[--t->depth].node;

    if (n->kind == K_MAP && finish_map(t, n) != 0)
        return -1;
    n->cost = NODE_COST;
    n->height = 1;
    for (const struct item *it = n->items; it != NULL; it = it->next) {
        if (it->key != NULL)
            n->cost = add_cost(n->cost, it->key->cost);
        n->cost = add_cost(n->cost, it->val->cost);
        if (it->val->height >= n->height)
            n->height = (unsigned char)(it->val->height + 1);
    }
    if (n->cost > MAX_EXPANDED) {
        /* Only aliases get here ("billion laughs"): the file itself is small. */
        diag(t->cx, 1, n->line, n->col, "this value is too large once its aliases are expanded");
        return -1;
    }
    return n->anchor != NULL ? add_anchor(t, n->anchor, n) : 0;
}

static int on_alias(struct tree *t, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    const struct anchor *a = t->anchors;

    while (a != NULL && strcmp(a->name, name) != 0)
        a = a->next;
    if (a == NULL) {
        diag(t->cx, 1, line, col, "alias *%.80s does not refer to a complete anchor before it",
             name);
        return -1;
    }
    if (t->depth + a->node->height > MAX_DEPTH) {
        diag(t->cx, 1, line, col, "alias *%.80s nests deeper than %d levels", name, MAX_DEPTH);
        return -1;
    }
    return attach(t, a->node, &ev->start_mark);
}

static int on_event(struct tree *t, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (t->docs++ > 0) {
            diag(t->cx, 1, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                 "only one YAML document is supported");
            return -1;
        }
        return 0;
    case YAML_SCALAR_EVENT:
        return on_scalar(t, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(t, ev);
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        return on_start(t, ev);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        return on_end(t);
    default:
        return 0;   /* stream start/end, document end */
    }
}

static void yaml_error(struct tree *t, const yaml_parser_t *yp)
{
    int line = (int)yp->problem_mark.line + 1, col = (int)yp->problem_mark.column + 1;
    const char *problem = yp->problem ? yp->problem : "unknown error";

    if (yp->error == YAML_MEMORY_ERROR) {
        t->cx->nomem = 1;
        return;
    }
    if (yp->error == YAML_READER_ERROR) {
        /* Encoding errors carry a byte offset, not a mark. */
        line = 1, col = 1;
        for (size_t i = 0; i < yp->problem_offset && t->text[i]; i++, col++)
            if (t->text[i] == '\n')
                line++, col = 0;
    }
    if (yp->context != NULL)
        diag(t->cx, 1, line, col, "invalid YAML: %s (%s at line %d, column %d)", problem,
             yp->context, (int)yp->context_mark.line + 1, (int)yp->context_mark.column + 1);
    else
        diag(t->cx, 1, line, col, "invalid YAML: %s", problem);
}

/* text (NUL-terminated) -> *root, NULL for an empty file. 0 or -1 (reported). */
static int parse_tree(struct ctx *cx, struct sl_arena *arena, const char *text, size_t len,
                      struct node **root)
{
    yaml_parser_t yp;
    yaml_event_t ev;
    struct tree *t = sl_arena_calloc(arena, 1, sizeof(*t));
    int rc = 0, done = 0;

    if (t == NULL || !yaml_parser_initialize(&yp)) {
        cx->nomem = 1;
        return -1;
    }
    t->cx = cx;
    t->arena = arena;
    t->text = text;
    yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
    while (!done && rc == 0) {
        if (!yaml_parser_parse(&yp, &ev)) {
            yaml_error(t, &yp);
            rc = -1;
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(t, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&yp);
    *root = t->root;
    return rc;
}

/* ---- reading the file ------------------------------------------------------ */

/* The whole file, NUL-terminated, in *out (malloc). 0 or -1 (reported).
 * O_NONBLOCK: a FIFO given by mistake must not hang the loader. */
static int read_file(struct ctx *cx, char **out, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    ssize_t r = 0;
    int fd, rc = -1;

    if ((fd = open(cx->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
        diag(cx, 1, 0, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        diag(cx, 1, 0, 0, "not a regular file");
        goto out;
    }
    if (st.st_size > (off_t)MAX_FILE_BYTES) {
        diag(cx, 1, 0, 0, "file is larger than %u MiB", MAX_FILE_BYTES >> 20);
        goto out;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        cx->nomem = 1;
        goto out;
    }
    /* A file that grows meanwhile is read up to its old size; the watcher
     * sees the change and loads it again. */
    while (got < (size_t)st.st_size &&
           ((r = read(fd, buf + got, (size_t)st.st_size - got)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0)
            got += (size_t)r;
    if (got < (size_t)st.st_size && r < 0) {
        diag(cx, 1, 0, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

/* ---- values: os.environ/, types ----------------------------------------------- */

static int cmp_env(const void *pa, const void *pb)
{
    return strcmp(((const struct env_pair *)pa)->name, ((const struct env_pair *)pb)->name);
}

/* environment_variables first, then the process environment (borrowed). */
static const char *env_lookup(const struct ctx *cx, const char *name)
{
    struct env_pair key = { name, NULL };
    const struct env_pair *hit = NULL;

    if (cx->cfg->n_env > 0)
        hit = bsearch(&key, cx->cfg->env, cx->cfg->n_env, sizeof(key), cmp_env);
    return hit != NULL ? hit->value : getenv(name);
}

/* Jansson (and HTTP headers) want UTF-8. libyaml checks the file; a
 * variable's value is checked here: shortest forms, no surrogates. */
static int valid_utf8(const unsigned char *s)
{
    while (*s != '\0') {
        unsigned c = *s++, more;
        uint32_t cp, min;

        if (c < 0x80)
            continue;
        if (c >= 0xc2 && c <= 0xdf)
            more = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            more = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            more = 3, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        for (; more > 0; more--, s++) {
            if ((*s & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (*s & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
    }
    return 1;
}

/* Resolves os.environ/NAME once per node (aliases share nodes, so one warning
 * per written reference). Returns 0 when the value is absent: the variable is
 * not set. Never reports a value, only the variable's name. */
static int resolve_env(struct ctx *cx, struct node *n)
{
    const char *name, *v;

    if (n->kind != K_SCALAR || n->type != T_STR || n->env_done)
        return !n->env_unset;
    n->env_done = 1;
    if (strncmp(n->str, ENV_PREFIX, sizeof(ENV_PREFIX) - 1) != 0)
        return 1;
    name = n->str + sizeof(ENV_PREFIX) - 1;
    if (*name == '\0') {
        diag(cx, 1, n->line, n->col, "os.environ/ needs a variable name");
        n->env_unset = 1;
        return 0;
    }
    if ((v = env_lookup(cx, name)) == NULL) {
        diag(cx, 0, n->line, n->col, "environment variable %.80s is not set", name);
        n->env_unset = 1;
        return 0;
    }
    if (!valid_utf8((const unsigned char *)v)) {
        diag(cx, 1, n->line, n->col, "the value of %.80s is not valid UTF-8", name);
        n->env_unset = 1;
        return 0;
    }
    /* Copied at once: the config must not point into environ. */
    if ((n->kept = sl_arena_strdup(cx->arena, v)) == NULL) {
        cx->nomem = 1;
        n->env_unset = 1;
        return 0;
    }
    n->str = n->kept;
    n->len = strlen(v);
    n->from_env = 1;
    return 1;
}

/* Typed getters: 1 = got it, 0 = absent (null, unset variable, or OOM with
 * cx->nomem set), -1 = wrong type (the caller reports it). */
static int has_value(struct ctx *cx, struct node *n)
{
    if (n->kind == K_SCALAR && n->type == T_NULL)
        return 0;
    return resolve_env(cx, n);
}

static int get_str(struct ctx *cx, struct node *n, const char **out)
{
    if (!has_value(cx, n))
        return 0;
    if (n->kind != K_SCALAR || n->type != T_STR)
        return -1;
    if (n->kept == NULL && (n->kept = sl_arena_strndup(cx->arena, n->str, n->len)) == NULL) {
        cx->nomem = 1;
        return 0;
    }
    *out = n->kept;
    return 1;
}

/* Numbers: an int or float, or a string from os.environ/ that reads as one. */
static int get_num(struct ctx *cx, struct node *n, double *out, int *is_int)
{
    struct node tmp;

    if (!has_value(cx, n))
        return 0;
    if (n->kind != K_SCALAR)
        return -1;
    if (n->from_env) {
        tmp = *n;
        if (classify(n->str, &tmp) != 0)
            return -1;
        n = &tmp;
    }
    if (n->type != T_INT && n->type != T_FLOAT)
        return -1;
    *is_int = n->type == T_INT;
    *out = *is_int ? (double)n->ival : n->dval;
    return 1;
}

/* Booleans: true/false, and also the YAML 1.1 words yes/no/on/off, since
 * LiteLLM reads its config with PyYAML (YAML 1.1) and configs use them. */
static int get_bool(struct ctx *cx, struct node *n, int *out)
{
    static const char *const words[] = { "false", "no", "off", "0", "true", "yes", "on", "1" };

    if (!has_value(cx, n))
        return 0;
    if (n->kind != K_SCALAR)
        return -1;
    if (n->type == T_BOOL) {
        *out = (int)n->ival;
        return 1;
    }
    if (n->type == T_STR && (n->plain || n->from_env))
        for (int i = 0; i < 8; i++)
            if (strcasecmp(n->str, words[i]) == 0) {
                *out = i >= 4;
                return 1;
            }
    return -1;
}

/* ---- Jansson copies of litellm_params and model_info ---------------------------- */

static json_t *to_json(struct ctx *cx, struct node *n);

static json_t *scalar_json(struct ctx *cx, struct node *n)
{
    json_t *j;

    switch (n->type) {
    case T_STR:
        j = json_stringn(n->str, n->len);   /* UTF-8 checked already: NULL is OOM */
        break;
    case T_INT:
        j = json_integer((json_int_t)n->ival);
        break;
    case T_FLOAT:
        if (!isfinite(n->dval)) {
            if (!n->reported)
                diag(cx, 1, n->line, n->col, "infinite or NaN numbers cannot be sent upstream");
            n->reported = 1;
            return NULL;
        }
        j = json_real(n->dval);
        break;
    case T_BOOL:
        j = json_boolean(n->ival);
        break;
    default:
        j = json_null();
        break;
    }
    if (j == NULL)
        cx->nomem = 1;
    return j;
}

/* A new reference, with os.environ/ applied; a value whose variable is not
 * set is left out of its container. NULL after a message or on OOM. The
 * recursion is bounded by MAX_DEPTH, aliases included (checked at parse). */
static json_t *to_json(struct ctx *cx, struct node *n)
{
    json_t *c, *v;
    int is_map = n->kind == K_MAP;

    if (n->kind == K_SCALAR)
        return scalar_json(cx, n);
    if ((c = is_map ? json_object() : json_array()) == NULL) {
        cx->nomem = 1;
        return NULL;
    }
    for (struct item *it = n->items; it != NULL; it = it->next) {
        if (!resolve_env(cx, it->val))
            continue;
        v = to_json(cx, it->val);
        /* The _new setters steal v even when they fail. */
        if (v == NULL || (is_map ? json_object_set_new(c, it->key->str, v)
                                 : json_array_append_new(c, v)) != 0) {
            if (v != NULL)
                cx->nomem = 1;
            json_decref(c);
            return NULL;
        }
    }
    return c;
}

/* ---- sections ---------------------------------------------------------------- */

enum fkind {
    F_SKIP,      /* handled by the caller */
    F_STR,       /* const char *, os.environ/ resolved */
    F_BOOL,      /* int */
    F_INT,       /* int in [min, max] */
    F_MS,        /* long, an integer in [min, max] */
    F_SECONDS,   /* long ms, from seconds > 0 and <= max */
    F_MB,        /* size_t bytes, from MiB > 0 and <= max */
    F_COST,      /* double >= 0 */
    F_LIMIT,     /* a number >= 0, only checked (it stays in the JSON) */
    F_LOGLEVEL   /* int, enum sl_log_level */
};

struct field {
    const char *key;
    int kind;            /* enum fkind */
    size_t off;          /* into the struct being filled */
    double min, max;
};

struct section {
    const char *where;              /* "general_settings", "model_list[2].litellm_params" */
    const struct field *fields;     /* ends with a NULL key */
    const char *const *accepted;    /* LiteLLM keys sluice knows but does not act on */
    int quiet;                      /* other keys pass through silently */
};

static void want_text(const struct field *f, char *buf, size_t size)
{
    switch (f->kind) {
    case F_STR: snprintf(buf, size, "a string"); break;
    case F_LOGLEVEL: snprintf(buf, size, "one of error, warn, info, debug"); break;
    case F_BOOL: snprintf(buf, size, "true or false"); break;
    case F_INT:
    case F_MS: snprintf(buf, size, "an integer from %.0f to %.0f", f->min, f->max); break;
    case F_SECONDS: snprintf(buf, size, "a number of seconds > 0 and <= %.0f", f->max); break;
    case F_MB: snprintf(buf, size, "a number of MiB > 0 and <= %.0f", f->max); break;
    default: snprintf(buf, size, "a number >= 0"); break;
    }
}

/* 1 stored, -1 wrong type, -2 out of range. */
static int store_num(const struct field *f, double d, int is_int, char *p)
{
    if ((f->kind == F_INT || f->kind == F_MS) && !is_int)
        return -1;
    if (!isfinite(d) || d < f->min || d > f->max ||
        ((f->kind == F_SECONDS || f->kind == F_MB) && d <= 0))
        return -2;
    switch (f->kind) {
    case F_INT: *(int *)(void *)p = (int)d; break;
    case F_MS: *(long *)(void *)p = (long)d; break;
    case F_SECONDS: {
        long ms = (long)(d * 1000.0 + 0.5);

        *(long *)(void *)p = ms > 0 ? ms : 1;   /* 0.0001 s still means "a timeout" */
        break;
    }
    case F_MB: *(size_t *)(void *)p = (size_t)(d * 1048576.0); break;
    case F_COST: *(double *)(void *)p = d; break;
    default: break;
    }
    return 1;
}

static void apply_field(struct ctx *cx, const struct field *f, const char *name, struct node *v,
                        void *base)
{
    char *p = (char *)base + f->off, want[96];
    const char *s = NULL;
    double d = 0;
    int got, i = 0;

    switch (f->kind) {
    case F_STR:
    case F_LOGLEVEL:
        if ((got = get_str(cx, v, &s)) > 0 && f->kind == F_LOGLEVEL &&
            (i = sl_log_parse_level(s)) < 0)
            got = -2;
        if (got > 0 && f->kind == F_STR)
            *(const char **)(void *)p = s;
        else if (got > 0)
            *(int *)(void *)p = i;
        break;
    case F_BOOL:
        if ((got = get_bool(cx, v, &i)) > 0)
            *(int *)(void *)p = i;
        break;
    default:
        if ((got = get_num(cx, v, &d, &i)) > 0)
            got = store_num(f, d, i, p);
        break;
    }
    if (got >= 0)
        return;
    v->reported = 1;
    want_text(f, want, sizeof(want));
    if (got == -1)
        diag(cx, 1, v->line, v->col, "%s: expected %s, got %s", name, want, type_name(v));
    else
        diag(cx, 1, v->line, v->col, "%s: expected %s", name, want);
}

static int in_list(const char *const *list, const char *s)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* Applies every known key of map to base, records each field's value node in
 * found[] (may be NULL), and warns about the rest unless s->quiet. */
static void walk(struct ctx *cx, const struct section *s, struct node *map, void *base,
                 struct node **found)
{
    char name[192];

    for (struct item *it = map->items; it != NULL; it = it->next) {
        const char *k = it->key->str;
        size_t i = 0;

        while (s->fields[i].key != NULL && strcmp(s->fields[i].key, k) != 0)
            i++;
        snprintf(name, sizeof(name), "%s%s%.80s", s->where, *s->where ? "." : "", k);
        if (s->fields[i].key != NULL) {
            if (found != NULL)
                found[i] = it->val;
            if (s->fields[i].kind != F_SKIP)
                apply_field(cx, &s->fields[i], name, it->val, base);
        } else if (s->quiet) {
            continue;
        } else if (in_list(s->accepted, k)) {
            diag(cx, 0, it->key->line, it->key->col,
                 "%s is accepted but not implemented by sluice yet (ignored)", name);
        } else {
            diag(cx, 0, it->key->line, it->key->col, "unknown key %s (ignored)", name);
        }
    }
}

/* 1: a mapping; 0: absent or null (fine); -1: something else (reported). */
static int is_block(struct ctx *cx, const struct node *n, const char *where)
{
    if (n == NULL || (n->kind == K_SCALAR && n->type == T_NULL))
        return 0;
    if (n->kind == K_MAP)
        return 1;
    diag(cx, 1, n->line, n->col, "%s: expected a mapping, got %s", where, type_name(n));
    return -1;
}

/* The keys LiteLLM documents for each section (reference §3.2-3.4) that sluice
 * does not act on yet: they get a milder warning than a typo would. */
static const char *const general_accepted[] = {
    "database_connection_pool_limit", "database_connection_timeout",
    "store_model_in_db", "supported_db_objects", "disable_spend_logs", "disable_spend_updates",
    "store_prompts_in_spend_logs", "maximum_spend_logs_retention_period",
    "maximum_spend_logs_retention_interval", "proxy_batch_write_at",
    "proxy_budget_rescheduler_min_time", "proxy_budget_rescheduler_max_time",
    "disable_reset_budget", "allow_requests_on_db_unavailable",
    "alerting", "alert_types", "alerting_threshold", "alert_to_webhook_url",
    "max_parallel_requests", "token_rate_limit_type",
    "max_response_size_mb", "background_health_checks", "health_check_interval",
    "health_check_details", "infer_model_from_keys", "custom_auth", "custom_key_generate",
    "enable_jwt_auth", "litellm_jwtauth", "allowed_routes", "admin_only_routes", "public_routes",
    "allowed_ips", "use_x_forwarded_for", "enforce_user_param", "enforced_params",
    "reject_clientside_metadata_tags", "forward_client_headers_to_llm_api",
    "forward_openai_org_id", "litellm_key_header_name", "user_header_name",
    "user_header_mappings", "completion_model", "embedding_model", "image_generation_model",
    "moderation_model", "pass_through_endpoints", "key_management_system",
    "default_team_disabled", "ui_access_mode", "always_include_stream_usage",
    "disable_master_key_return", "disable_adding_master_key_hash_to_db",
    "disable_retry_on_max_parallel_request_limit_error", "disable_responses_id_security",
    NULL
};

static const char *const litellm_accepted[] = {
    "modify_params", "fallbacks", "default_fallbacks", "context_window_fallbacks",
    "content_policy_fallbacks", "service_callbacks", "turn_off_message_logging",
    "redact_user_api_key_info", "max_budget", "budget_duration", "default_key_generate_params",
    "upperbound_key_generate_params", "default_team_settings", "key_generation_settings",
    "json_logs", "set_verbose", "force_ipv4", "model_group_alias",
    "enable_json_schema_validation", "disable_end_user_cost_tracking",
    "include_cost_in_streaming_usage", "prometheus_initialize_budget_metrics",
    "prometheus_metrics_config", "custom_prometheus_metadata_labels",
    "langfuse_default_tags",
    NULL
};

static const char *const router_accepted[] = {
    "routing_strategy", "num_retries", "retry_after", "timeout", "stream_timeout",
    "allowed_fails", "cooldown_time", "disable_cooldowns", "retry_policy",
    "allowed_fails_policy", "fallbacks", "context_window_fallbacks", "content_policy_fallbacks",
    "default_fallbacks", "max_fallbacks", "enable_pre_call_checks", "redis_host", "redis_port",
    "redis_password", "redis_db", "redis_url", "model_group_alias", "default_litellm_params",
    "enable_tag_filtering", "tag_filtering_match_any", "provider_budget_config",
    "optional_pre_call_checks", "routing_strategy_args", "cache_responses", "client_ttl",
    NULL
};

static const char *const top_accepted[] = {
    "mcp_servers", "search_tools", "policies",
    "credential_list", "include",
    NULL
};

#define CFG(f) offsetof(struct sl_config, f)
#define DEP(f) offsetof(struct sl_deployment, f)

static void load_env(struct ctx *cx, struct node *sec)
{
    struct priv *p = cx->cfg;
    size_t n = 0;

    if (is_block(cx, sec, "environment_variables") <= 0)
        return;
    if ((p->env = sl_arena_calloc(cx->arena, sec->n ? sec->n : 1, sizeof(*p->env))) == NULL) {
        cx->nomem = 1;
        return;
    }
    for (const struct item *it = sec->items; it != NULL; it = it->next) {
        const char *name = it->key->str;
        const struct node *v = it->val;

        if (*name == '\0' || strchr(name, '=') != NULL)
            diag(cx, 1, it->key->line, it->key->col,
                 "environment_variables: '%.80s' is not a valid variable name", name);
        else if (v->kind != K_SCALAR)
            diag(cx, 1, v->line, v->col, "environment_variables.%.80s: expected a string, got %s",
                 name, type_name(v));
        else if (v->type == T_NULL)
            diag(cx, 0, v->line, v->col, "environment_variables.%.80s has no value (ignored)",
                 name);
        else if ((p->env[n].name = sl_arena_strdup(cx->arena, name)) == NULL ||
                 (p->env[n].value = sl_arena_strndup(cx->arena, v->str, v->len)) == NULL)
            cx->nomem = 1;
        else
            n++;   /* taken as written: values are not os.environ/-resolved */
    }
    p->n_env = n;
    qsort(p->env, n, sizeof(*p->env), cmp_env);
}

/* database_url (already read into c->database_url when given), else
 * $DATABASE_URL: checked with the parser the connections use, and masked
 * once for logs. A bad URL in the file is an error; one in $DATABASE_URL, a
 * generic name other programs may set (to a postgresql:// URL, say), is a
 * warning and sluice runs with the master key alone. */
static void load_database(struct ctx *cx, const struct node *given, const struct node *sec)
{
    struct sl_config *c = &cx->cfg->pub;
    struct sl_db_url u;
    char why[256];
    const char *v;
    int line = given ? given->line : sec ? sec->line : 1;
    int col = given ? given->col : sec ? sec->col : 1;
    int rc;

    if (c->database_url != NULL && *c->database_url == '\0')
        c->database_url = NULL;   /* "" (or an empty variable): no database */
    if (c->database_url == NULL && (given == NULL || given->env_unset) &&
        (v = env_lookup(cx, "DATABASE_URL")) != NULL && *v != '\0') {
        if ((c->database_url = sl_arena_strdup(cx->arena, v)) == NULL) {
            cx->nomem = 1;
            return;
        }
        given = NULL;
    }
    if (c->database_url == NULL)
        return;
    rc = sl_db_url_parse(c->database_url, &u, why, sizeof(why));
    if (rc == SL_OK && (c->database_url_masked = sl_arena_strdup(cx->arena, u.masked)) == NULL)
        cx->nomem = 1;
    sl_db_url_free(&u);
    if (rc == SL_ERR_NOMEM)
        cx->nomem = 1;
    if (rc != SL_ERR_CONFIG)
        return;
    if (given != NULL)
        diag(cx, 1, line, col, "general_settings.database_url: %s", why);
    else
        diag(cx, 0, line, col, "$DATABASE_URL: %s; ignored, running with the master key alone",
             why);
    c->database_url = NULL;
}

/* "host:port", "host" (port 11211), "[v6::addr]:port" or "/path/to.sock". */
static int parse_mc_server(struct ctx *cx, const char *s, size_t n, struct sl_memcached_server *out,
                           char *why, size_t whylen)
{
    const char *host = s, *port = NULL, *end = s + n;
    size_t hlen = n;
    long p = 11211;

    if (n > 0 && s[0] == '/') {
        out->port = 0;
    } else if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);

        if (rb == NULL || rb == s + 1) {
            snprintf(why, whylen, "'%.*s': a bad [IPv6 address]", (int)(n > 80 ? 80 : n), s);
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(rb - host);
        if (rb + 1 < end && rb[1] == ':')
            port = rb + 2;
        else if (rb + 1 != end) {
            snprintf(why, whylen, "'%.*s': expected [address]:port", (int)(n > 80 ? 80 : n), s);
            return -1;
        }
    } else {
        const char *colon = memchr(s, ':', n);

        if (colon != NULL) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    if (hlen == 0 || hlen > 255 || strcspn(host, " \t/@?#") < hlen * (s[0] != '/')) {
        snprintf(why, whylen, "'%.*s' is not host:port", (int)(n > 80 ? 80 : n), s);
        return -1;
    }
    if (port != NULL) {
        size_t plen = (size_t)(end - port);
        char num[8];

        if (plen == 0 || plen > 5 || strspn(port, "0123456789") < plen) {
            snprintf(why, whylen, "'%.*s': the port must be a number from 1 to 65535",
                     (int)(n > 80 ? 80 : n), s);
            return -1;
        }
        memcpy(num, port, plen);
        num[plen] = '\0';
        p = strtol(num, NULL, 10);
        if (p < 1 || p > 65535) {
            snprintf(why, whylen, "'%.*s': the port must be a number from 1 to 65535",
                     (int)(n > 80 ? 80 : n), s);
            return -1;
        }
    }
    if (s[0] != '/')
        out->port = (unsigned)p;
    if ((out->host = sl_arena_strndup(cx->arena, host, hlen)) == NULL) {
        cx->nomem = 1;
        return -1;
    }
    return 0;
}

/* Splits text at commas and blanks into servers appended to c's list (room
 * for max). 0, or -1 after a message at line:col. */
static int add_mc_list(struct ctx *cx, const char *where, const char *text, size_t max,
                       int line, int col)
{
    struct sl_config *c = &cx->cfg->pub;
    const char *p = text;
    char why[200];

    if (c->memcached_servers == NULL &&
        (c->memcached_servers = sl_arena_calloc(cx->arena, max,
                                                sizeof(*c->memcached_servers))) == NULL) {
        cx->nomem = 1;
        return -1;
    }
    while (*p != '\0') {
        size_t n;

        p += strspn(p, ", \t");
        if ((n = strcspn(p, ", \t")) == 0)
            break;
        if (c->n_memcached_servers >= max) {
            diag(cx, 1, line, col, "%s: more than %zu servers", where, max);
            return -1;
        }
        if (parse_mc_server(cx, p, n, &c->memcached_servers[c->n_memcached_servers], why,
                            sizeof(why)) != 0) {
            if (!cx->nomem)
                diag(cx, 1, line, col, "%s: %s", where, why);
            return -1;
        }
        c->n_memcached_servers++;
        p += n;
    }
    return 0;
}

#define MAX_MC_SERVERS 256

/* memcached_servers: a list of "host:port" (or one string of them, comma
 * separated, so os.environ/ works), else $SLUICE_MEMCACHED_SERVERS. */
static void load_memcached(struct ctx *cx, struct node *given, const struct node *sec)
{
    const char *v = NULL;
    int got;

    if (given != NULL && given->kind == K_SEQ) {
        for (struct item *it = given->items; it != NULL && !cx->nomem; it = it->next) {
            if ((got = get_str(cx, it->val, &v)) < 0)
                diag(cx, 1, it->val->line, it->val->col,
                     "general_settings.memcached_servers: expected \"host:port\" strings, got %s",
                     type_name(it->val));
            else if (got > 0)   /* on to the next item after an error: report them all */
                add_mc_list(cx, "general_settings.memcached_servers", v, MAX_MC_SERVERS,
                            it->val->line, it->val->col);
        }
        return;
    }
    if (given != NULL && (got = get_str(cx, given, &v)) != 0) {
        if (got < 0)
            diag(cx, 1, given->line, given->col,
                 "general_settings.memcached_servers: expected a list of \"host:port\", got %s",
                 type_name(given));
        else
            add_mc_list(cx, "general_settings.memcached_servers", v, MAX_MC_SERVERS, given->line,
                        given->col);
        return;
    }
    if ((v = env_lookup(cx, "SLUICE_MEMCACHED_SERVERS")) != NULL)
        add_mc_list(cx, "$SLUICE_MEMCACHED_SERVERS", v, MAX_MC_SERVERS, sec ? sec->line : 1,
                    sec ? sec->col : 1);
}

/* remote_user_param names a variable the web server sets itself: HTTP_*
 * params are request headers any client can send, so they are refused. A
 * remote user needs a database (its user row). */
static void check_remote_user(struct ctx *cx, const struct node *trust, const struct node *param,
                              const struct node *sec)
{
    struct sl_config *c = &cx->cfg->pub;
    const char *p = c->remote_user_param;

    if (p == NULL || *p == '\0' || strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                            "0123456789_") != strlen(p))
        diag(cx, 1, param ? param->line : 1, param ? param->col : 1,
             "general_settings.remote_user_param: expected the name of a FastCGI parameter "
             "(letters, digits, _), such as REMOTE_USER");
    else if (strncasecmp(p, "HTTP_", 5) == 0)
        diag(cx, 1, param ? param->line : 1, param ? param->col : 1,
             "general_settings.remote_user_param: %.80s is a request header any client can "
             "send, not something the web server authenticated", p);
    if (c->trust_remote_user && c->database_url == NULL)
        diag(cx, 1, trust ? trust->line : sec ? sec->line : 1, trust ? trust->col : 1,
             "general_settings.trust_remote_user needs a database (database_url): remote users "
             "are rows of LiteLLM_UserTable");
}

static void load_general(struct ctx *cx, struct node *sec)
{
    static const struct field fields[] = {
        { "master_key", F_STR, CFG(master_key), 0, 0 },
        { "max_request_size_mb", F_MB, CFG(max_request_bytes), 0, 4095 },
        { "database_url", F_STR, CFG(database_url), 0, 0 },
        { "memcached_servers", F_SKIP, 0, 0, 0 },
        { "user_api_key_cache_ttl", F_SECONDS, CFG(key_cache_ttl_ms), 0, 86400 },
        { "trust_remote_user", F_BOOL, CFG(trust_remote_user), 0, 0 },
        { "remote_user_param", F_STR, CFG(remote_user_param), 0, 0 },
        { "global_max_parallel_requests", F_INT, CFG(global_max_parallel_requests), 0, 100000000 },
        { NULL, 0, 0, 0, 0 }
    };
    static const struct section s = { "general_settings", fields, general_accepted, 0 };
    struct node *found[sizeof(fields) / sizeof(fields[0])] = { NULL };
    struct sl_config *c = &cx->cfg->pub;
    const char *v;

    if (is_block(cx, sec, s.where) > 0)
        walk(cx, &s, sec, c, found);
    /* As LiteLLM: no master_key in the file -> LITELLM_MASTER_KEY. */
    if (found[0] == NULL && (v = env_lookup(cx, "LITELLM_MASTER_KEY")) != NULL &&
        (c->master_key = sl_arena_strdup(cx->arena, v)) == NULL)
        cx->nomem = 1;
    if (c->master_key != NULL && *c->master_key == '\0') {
        /* An empty key would let an empty Bearer token in. */
        diag(cx, 0, found[0] ? found[0]->line : 1, found[0] ? found[0]->col : 1,
             "general_settings.master_key is empty: running without a master key");
        c->master_key = NULL;
    }
    /* Hashed once here so authentication compares hashes without hashing
     * the master key on every request. */
    if (c->master_key != NULL)
        sl_auth_hash_key(c->master_key, c->master_key_hash);
    load_database(cx, found[2], sec);
    load_memcached(cx, found[3], sec);
    check_remote_user(cx, found[5], found[6], sec);
}

/* A list of non-empty strings (n items at most): *out in the arena, or -1
 * after a message. */
static int get_str_list(struct ctx *cx, const char *where, struct node *n, const char ***out,
                        size_t *count)
{
    const char **v;
    size_t i = 0;

    *out = NULL;
    *count = 0;
    if (n == NULL || (n->kind == K_SCALAR && n->type == T_NULL))
        return 0;
    if (n->kind != K_SEQ) {
        diag(cx, 1, n->line, n->col, "%s: expected a list of strings, got %s", where, type_name(n));
        return -1;
    }
    if ((v = sl_arena_calloc(cx->arena, n->n + 1, sizeof(*v))) == NULL) {
        cx->nomem = 1;
        return -1;
    }
    for (struct item *it = n->items; it != NULL; it = it->next) {
        struct node *team_id = NULL;
        struct node *x = it->val;

        if (x->kind == K_MAP) {   /* teams: [{team_id: ...}] as LiteLLM writes them */
            for (struct item *f = x->items; f != NULL; f = f->next)
                if (strcmp(f->key->str, "team_id") == 0)
                    team_id = f->val;
                else
                    diag(cx, 0, f->key->line, f->key->col,
                         "%s[%zu].%.80s is not implemented by sluice (ignored)", where, i,
                         f->key->str);
            x = team_id != NULL ? team_id : x;
        }
        if (get_str(cx, x, &v[i]) <= 0 || *v[i] == '\0') {
            if (!cx->nomem)
                diag(cx, 1, x->line, x->col, "%s[%zu]: expected a non-empty string%s", where, i,
                     strcmp(where + strlen(where) - 5, "teams") == 0 ? " (a team_id)" : "");
            return -1;
        }
        i++;
    }
    *out = v;
    *count = i;
    return 0;
}

/* litellm_settings.default_internal_user_params: what a user created on
 * first sight gets (LiteLLM's names; its SSO sign-in reads the same block). */
static void load_new_user(struct ctx *cx, struct node *sec)
{
    static const char *const roles[] = { "proxy_admin", "proxy_admin_viewer", "org_admin",
                                         "internal_user", "internal_user_viewer", "team",
                                         "customer", NULL };
    static const char where[] = "litellm_settings.default_internal_user_params";
    struct sl_new_user *u = &cx->cfg->pub.new_user;
    char name[128];

    if (is_block(cx, sec, where) <= 0)
        return;
    for (struct item *it = sec->items; it != NULL && !cx->nomem; it = it->next) {
        const char *k = it->key->str, *sv = NULL;
        struct node *v = it->val;
        double d = 0;
        int is_int = 0, got;
        long long ignored;

        snprintf(name, sizeof(name), "%s.%.40s", where, k);
        if (strcmp(k, "max_budget") == 0) {
            if ((got = get_num(cx, v, &d, &is_int)) < 0 || (got > 0 && (!isfinite(d) || d < 0)))
                diag(cx, 1, v->line, v->col, "%s: expected a number >= 0", name);
            else if (got > 0)
                u->max_budget = d;
        } else if (strcmp(k, "budget_duration") == 0 || strcmp(k, "user_role") == 0) {
            if ((got = get_str(cx, v, &sv)) < 0)
                diag(cx, 1, v->line, v->col, "%s: expected a string, got %s", name, type_name(v));
            else if (got > 0 && k[0] == 'b' &&
                     sl_keystore_add_duration(sv, 0, &ignored) != SL_OK)
                diag(cx, 1, v->line, v->col, "%s: expected a duration such as \"30d\", \"1h\", "
                     "\"1mo\"", name);
            else if (got > 0 && k[0] == 'u' && !in_list(roles, sv))
                diag(cx, 1, v->line, v->col, "%s: expected one of proxy_admin, "
                     "proxy_admin_viewer, org_admin, internal_user, internal_user_viewer, team, "
                     "customer", name);
            else if (got > 0 && k[0] == 'b')
                u->budget_duration = sv;
            else if (got > 0)
                u->user_role = sv;
        } else if (strcmp(k, "models") == 0 || strcmp(k, "teams") == 0) {
            const char **list;
            size_t n;

            if (get_str_list(cx, name, v, &list, &n) != 0)
                continue;
            if (k[0] == 't') {
                u->teams = list;
                u->n_teams = n;
            } else {
                json_t *arr = json_array();
                char *text;

                for (size_t i = 0; arr != NULL && i < n; i++)
                    json_array_append_new(arr, json_string(list[i]));
                text = arr != NULL ? json_dumps(arr, JSON_COMPACT) : NULL;
                json_decref(arr);
                if (text == NULL || (u->models_json = sl_arena_strdup(cx->arena, text)) == NULL)
                    cx->nomem = 1;
                free(text);
            }
        } else {
            diag(cx, 0, it->key->line, it->key->col, "unknown key %s (ignored)", name);
        }
    }
}

/* litellm_settings.cache_params: the response cache (cache.c). Every
 * LiteLLM type is accepted; the entries live in memcached
 * (general_settings.memcached_servers) or, without it, in a table per
 * process, and a warning says so for the types that name another store. */
static void load_cache_params(struct ctx *cx, struct node *sec)
{
    static const struct field fields[] = {
        { "type", F_STR, CFG(cache.type), 0, 0 },
        { "ttl", F_SECONDS, CFG(cache.ttl_ms), 0, 2592000 },
        { "namespace", F_STR, CFG(cache.ns), 0, 0 },
        { "mode", F_SKIP, 0, 0, 0 },
        { "supported_call_types", F_SKIP, 0, 0, 0 },
        { "host", F_SKIP, 0, 0, 0 },       /* the type's warning covers these */
        { "port", F_SKIP, 0, 0, 0 },
        { "password", F_SKIP, 0, 0, 0 },
        { NULL, 0, 0, 0, 0 }
    };
    static const char *const accepted[] = {
        "username", "url", "ssl", "db", "default_in_memory_ttl",
        "default_in_redis_ttl", "max_connections", "socket_timeout", "redis_startup_nodes",
        "similarity_threshold", "redis_semantic_cache_embedding_model", "s3_bucket_name",
        "s3_region_name", "s3_api_version", "s3_endpoint_url", "s3_path", "gcs_bucket_name",
        "gcs_path", "disk_cache_dir", "max_size_in_memory", "host_url", NULL
    };
    static const struct section s = { "litellm_settings.cache_params", fields, accepted, 0 };
    struct sl_cache_settings *c = &cx->cfg->pub.cache;
    struct node *found[sizeof(fields) / sizeof(fields[0])] = { NULL };
    const char *mode = NULL, **types;
    size_t n;
    int got;

    if (is_block(cx, sec, s.where) <= 0)
        return;
    walk(cx, &s, sec, &cx->cfg->pub, found);
    if (found[3] != NULL && (got = get_str(cx, found[3], &mode)) != 0) {
        if (got > 0 && strcmp(mode, "default_off") == 0)
            c->default_off = 1;
        else if (got < 0 || strcmp(mode, "default_on") != 0)
            diag(cx, 1, found[3]->line, found[3]->col,
                 "litellm_settings.cache_params.mode: expected default_on or default_off");
    }
    if (found[4] != NULL &&
        get_str_list(cx, "litellm_settings.cache_params.supported_call_types", found[4], &types,
                     &n) == 0 && types != NULL) {
        c->chat = c->embeddings = 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(types[i], "acompletion") == 0 || strcmp(types[i], "completion") == 0)
                c->chat = 1;
            else if (strcmp(types[i], "aembedding") == 0 || strcmp(types[i], "embedding") == 0)
                c->embeddings = 1;
        }
    }
    if (c->type != NULL && strcmp(c->type, "memcached") != 0 && strcmp(c->type, "local") != 0)
        diag(cx, 0, found[0]->line, found[0]->col,
             "litellm_settings.cache_params.type: %.40s: sluice keeps the response cache in "
             "memcached (general_settings.memcached_servers), else in a table per process; "
             "exact matches only", c->type);
}

static void load_litellm(struct ctx *cx, struct node *sec)
{
    static const struct field fields[] = {
        { "drop_params", F_BOOL, CFG(drop_params), 0, 0 },
        { "request_timeout", F_SECONDS, CFG(request_timeout_ms), 0, MAX_SECONDS },
        { "num_retries", F_INT, CFG(num_retries), 0, 1000 },
        { "default_internal_user_params", F_SKIP, 0, 0, 0 },
        { "cache", F_BOOL, CFG(cache.enabled), 0, 0 },
        { "cache_params", F_SKIP, 0, 0, 0 },
        { "require_auth_for_metrics_endpoint", F_BOOL, CFG(metrics_require_auth), 0, 0 },
        { "callbacks", F_SKIP, 0, 0, 0 },
        { "success_callback", F_SKIP, 0, 0, 0 },
        { "failure_callback", F_SKIP, 0, 0, 0 },
        { NULL, 0, 0, 0, 0 }
    };
    static const struct section s = { "litellm_settings", fields, litellm_accepted, 0 };
    struct node *found[sizeof(fields) / sizeof(fields[0])] = { NULL };

    if (is_block(cx, sec, s.where) > 0)
        walk(cx, &s, sec, &cx->cfg->pub, found);
    load_new_user(cx, found[3]);
    load_cache_params(cx, found[5]);
    for (int i = 0; i < 3; i++)
        cx->callbacks[i] = found[7 + i];
}

#define RCFG(f) offsetof(struct sl_config, router.f)

/* router_settings: the scalars here, the lists and maps as JSON that
 * router.c checks (with their lines) when it builds its tables. */
static void load_router(struct ctx *cx, struct node *sec)
{
    static const struct field fields[] = {
        { "routing_strategy", F_STR, RCFG(routing_strategy), 0, 0 },
        { "num_retries", F_INT, RCFG(num_retries), 0, 100 },
        { "retry_after", F_COST, RCFG(retry_after_s), 0, 3600 },
        { "allowed_fails", F_INT, RCFG(allowed_fails), 0, 1000000 },
        { "cooldown_time", F_COST, RCFG(cooldown_s), 0, 86400 },
        { "disable_cooldowns", F_BOOL, RCFG(disable_cooldowns), 0, 0 },
        { "max_fallbacks", F_INT, RCFG(max_fallbacks), 0, 100 },
        { "fallbacks", F_SKIP, 0, 0, 0 },
        { "context_window_fallbacks", F_SKIP, 0, 0, 0 },
        { "content_policy_fallbacks", F_SKIP, 0, 0, 0 },
        { "default_fallbacks", F_SKIP, 0, 0, 0 },
        { "retry_policy", F_SKIP, 0, 0, 0 },
        { "model_group_alias", F_SKIP, 0, 0, 0 },
        { "routing_strategy_args", F_SKIP, 0, 0, 0 },
        { "timeout", F_SECONDS, CFG(router_timeout_ms), 0, MAX_SECONDS },
        { "stream_timeout", F_SECONDS, CFG(router_stream_timeout_ms), 0, MAX_SECONDS },
        { NULL, 0, 0, 0, 0 }
    };
    static const struct section s = { "router_settings", fields, router_accepted, 0 };
    struct node *found[sizeof(fields) / sizeof(fields[0])] = { NULL };
    struct sl_router_settings *r = &cx->cfg->pub.router;
    json_t **json[] = { &r->fallbacks, &r->context_window_fallbacks, &r->content_policy_fallbacks,
                        &r->default_fallbacks, &r->retry_policy, &r->model_group_alias };
    json_t *args;

    if (is_block(cx, sec, s.where) <= 0)
        return;
    walk(cx, &s, sec, &cx->cfg->pub, found);
    for (size_t i = 0; i < sizeof(json) / sizeof(json[0]); i++)
        if (found[7 + i] != NULL && (*json[i] = to_json(cx, found[7 + i])) == NULL && !cx->errors)
            cx->nomem = 1;
    if (found[13] != NULL && (args = to_json(cx, found[13])) != NULL) {
        json_t *b = json_object_get(args, "lowest_latency_buffer");

        if (b != NULL && (!json_is_number(b) || json_number_value(b) < 0))
            diag(cx, 1, found[13]->line, found[13]->col, "router_settings.routing_strategy_args."
                 "lowest_latency_buffer: expected a number >= 0 (0.5: within 50%% of the fastest)");
        else if (b != NULL)
            r->latency_buffer = json_number_value(b);
        json_decref(args);
    }
}

/* One "address" or "address/bits" of metrics_allowed_ips. 0, or -1. */
static int parse_net(const char *s, struct sl_net *n)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    long bits;
    char *end;

    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    memset(n, 0, sizeof(*n));
    if (inet_pton(AF_INET, addr, n->addr) == 1)
        n->family = AF_INET;
    else if (inet_pton(AF_INET6, addr, n->addr) == 1)
        n->family = AF_INET6;
    else
        return -1;
    n->bits = n->family == AF_INET ? 32 : 128;
    if (slash != NULL) {
        if (slash[1] < '0' || slash[1] > '9')
            return -1;
        bits = strtol(slash + 1, &end, 10);
        if (*end != '\0' || bits > n->bits)
            return -1;
        n->bits = (int)bits;
    }
    return 0;
}

/* sluice_settings.metrics_allowed_ips: a list of addresses and networks. */
static void load_nets(struct ctx *cx, struct node *given)
{
    struct sl_config *c = &cx->cfg->pub;
    const char *v;
    int got;

    if (given == NULL)
        return;
    if (given->kind != K_SEQ) {
        diag(cx, 1, given->line, given->col, "sluice_settings.metrics_allowed_ips: expected a "
             "list of addresses or networks (\"10.0.0.0/8\"), got %s", type_name(given));
        return;
    }
    if ((c->metrics_nets = sl_arena_calloc(cx->arena, given->n + 1, sizeof(*c->metrics_nets))) == NULL) {
        cx->nomem = 1;
        return;
    }
    for (struct item *it = given->items; it != NULL; it = it->next) {
        if ((got = get_str(cx, it->val, &v)) == 0)
            continue;                   /* os.environ/ of a variable that is not set */
        if (got < 0 || parse_net(v, &c->metrics_nets[c->n_metrics_nets]) != 0) {
            diag(cx, 1, it->val->line, it->val->col, "sluice_settings.metrics_allowed_ips: "
                 "expected an IPv4 or IPv6 address, or one with /bits (\"10.0.0.0/8\")");
            continue;
        }
        c->n_metrics_nets++;
    }
}

static void load_sluice(struct ctx *cx, struct node *sec)
{
    static const struct field fields[] = {
        { "threads", F_INT, CFG(threads), 1, 65536 },
        { "max_threads", F_INT, CFG(max_threads), 1, 65536 },
        { "reserved_threads", F_INT, CFG(reserved_threads), 0, 65536 },
        { "deployment_max_in_flight", F_INT, CFG(deployment_max_in_flight), 0, 65536 },
        { "heartbeat_ms", F_MS, CFG(heartbeat_ms), 50, 3600000 },
        { "body_timeout_ms", F_MS, CFG(body_timeout_ms), 1, 86400000 },
        { "shutdown_timeout_ms", F_MS, CFG(shutdown_timeout_ms), 0, 86400000 },
        { "queue_timeout_ms", F_MS, CFG(queue_timeout_ms), 0, 86400000 },
        { "log_level", F_LOGLEVEL, CFG(log_level), 0, 0 },
        { "db_connect_timeout_ms", F_MS, CFG(db_connect_timeout_ms), 1, 600000 },
        { "db_read_timeout_ms", F_MS, CFG(db_read_timeout_ms), 1, 600000 },
        { "db_write_timeout_ms", F_MS, CFG(db_write_timeout_ms), 1, 600000 },
        { "spend_spool_dir", F_STR, CFG(spend_spool_dir), 0, 0 },
        { "spend_flush_interval_ms", F_MS, CFG(spend_flush_interval_ms), 10, 3600000 },
        { "model_cost_map", F_STR, CFG(model_cost_map), 0, 0 },   /* see load_prices */
        { "budget_reset_interval_ms", F_MS, CFG(budget_reset_interval_ms), 100, 86400000 },
        { "health_check_timeout_ms", F_MS, CFG(health_check_timeout_ms), 100, 600000 },
        { "connect_timeout", F_SECONDS, CFG(connect_timeout_ms), 0, MAX_SECONDS },
        { "first_byte_timeout", F_SECONDS, CFG(first_byte_timeout_ms), 0, MAX_SECONDS },
        { "stream_idle_timeout", F_SECONDS, CFG(stream_idle_timeout_ms), 0, MAX_SECONDS },
        { "max_request_timeout", F_SECONDS, CFG(max_request_timeout_ms), 0, MAX_SECONDS },
        { "end_user_rpm_limit", F_INT, CFG(end_user_rpm_limit), 0, 2000000000 },
        { "parallel_lease_s", F_INT, CFG(parallel_lease_s), 1, 3600 },
        { "end_user_tpm_limit", F_INT, CFG(end_user_tpm_limit), 0, 2000000000 },
        { "end_user_max_parallel_requests", F_INT, CFG(end_user_max_parallel_requests), 0,
          100000000 },
        { "metrics", F_BOOL, CFG(metrics), 0, 0 },
        { "callback_queue_size", F_INT, CFG(callback_queue_size), 1, 1000000 },
        { "callback_batch_size", F_INT, CFG(callback_batch_size), 1, 10000 },
        { "callback_flush_interval_ms", F_MS, CFG(callback_flush_ms), 10, 600000 },
        { "callback_timeout_ms", F_MS, CFG(callback_timeout_ms), 100, 600000 },
        { "metrics_allowed_ips", F_SKIP, 0, 0, 0 },
        { "responses_store", F_BOOL, CFG(responses_store), 0, 0 },
        { "responses_store_max_bytes", F_INT, CFG(responses_store_max_bytes), 1024, 64 << 20 },
        { "responses_store_max_age_days", F_INT, CFG(responses_store_max_age_days), 1, 3650 },
        { NULL, 0, 0, 0, 0 }
    };
    static const struct section s = { "sluice_settings", fields, NULL, 0 };
    struct node *found[sizeof(fields) / sizeof(fields[0])] = { NULL };
    struct sl_config *c = &cx->cfg->pub;

    /* The ceiling of a request's own timeout defaults to the call's default. */
    c->max_request_timeout_ms = c->router_timeout_ms > 0 ? c->router_timeout_ms
                                                         : c->request_timeout_ms;
    if (is_block(cx, sec, s.where) <= 0)
        return;
    walk(cx, &s, sec, c, found);
    load_nets(cx, found[30]);
    if (c->responses_store && c->database_url == NULL)
        diag(cx, 1, found[31]->line, found[31]->col,
             "sluice_settings.responses_store needs a database (general_settings.database_url): "
             "responses are kept in its sluice_responses table");
    /* "threads: 300" alone raises the ceiling instead of failing. */
    if (found[1] == NULL && c->threads > c->max_threads)
        c->max_threads = c->threads;
    else if (found[1] != NULL && c->max_threads < c->threads)
        diag(cx, 1, found[1]->line, found[1]->col,
             "sluice_settings.max_threads (%d) is below threads (%d)", c->max_threads, c->threads);
}

/* sluice_settings.model_cost_map (already read into c->model_cost_map when
 * given), else $SLUICE_MODEL_COST_MAP: a price file in LiteLLM's
 * model_prices_and_context_window.json format, read now so every deployment
 * gets its price once, at load. A relative path is taken from the config
 * file's directory, wherever the process was started. A bad file is an error
 * like any other in the config (a reload then keeps the running config). */
static void load_prices(struct ctx *cx, const struct node *sec)
{
    struct sl_config *c = &cx->cfg->pub;
    const struct node *given = NULL;
    const char *path = c->model_cost_map, *where = "sluice_settings.model_cost_map", *slash;
    char why[320];
    int rc;

    for (const struct item *it = sec && sec->kind == K_MAP ? sec->items : NULL; it; it = it->next)
        if (strcmp(it->key->str, "model_cost_map") == 0)
            given = it->val;
    if (path == NULL && (given == NULL || given->env_unset)) {
        path = env_lookup(cx, "SLUICE_MODEL_COST_MAP");
        where = "$SLUICE_MODEL_COST_MAP";
    }
    c->model_cost_map = NULL;
    if (path == NULL || *path == '\0')
        return;   /* "" (or an empty variable): the built-in table alone */
    if (*path != '/' && (slash = strrchr(cx->path, '/')) != NULL) {
        size_t dir = (size_t)(slash - cx->path) + 1;
        char *full = sl_arena_alloc(cx->arena, dir + strlen(path) + 1);

        if (full == NULL) {
            cx->nomem = 1;
            return;
        }
        memcpy(full, cx->path, dir);
        strcpy(full + dir, path);
        path = full;
    } else if ((path = sl_arena_strdup(cx->arena, path)) == NULL) {
        cx->nomem = 1;
        return;
    }
    c->model_cost_map = path;
    /* Taken before reading: a write during the load shows up as a change. */
    cx->cfg->have_prices_st = stat(path, &cx->cfg->prices_st) == 0;
    rc = sl_price_map_load(path, &c->price_map, why, sizeof(why));
    if (rc == SL_ERR_NOMEM)
        cx->nomem = 1;
    else if (rc != SL_OK)
        diag(cx, 1, given ? given->line : sec ? sec->line : 1, given ? given->col : 1,
             "%s: %s: %s", where, path, why);
}

/* ---- model_list ------------------------------------------------------------ */

/* model: "provider/name", or a bare name for OpenAI (as LiteLLM). */
static void load_model(struct ctx *cx, const char *where, struct node *params, struct node *m,
                       struct sl_deployment *d)
{
    const char *slash, *prefix = "openai";
    int got = m ? get_str(cx, m, &d->model) : 0;

    if (got < 0) {
        diag(cx, 1, m->line, m->col, "%s.model: expected a string like \"openai/gpt-4o\", got %s",
             where, type_name(m));
        return;
    }
    if (got == 0) {
        m = m ? m : params;
        diag(cx, 1, m->line, m->col, "%s: model is required (\"provider/model\")", where);
        return;
    }
    d->upstream_model = d->model;
    if ((slash = strchr(d->model, '/')) != NULL) {
        if ((prefix = sl_arena_strndup(cx->arena, d->model, (size_t)(slash - d->model))) == NULL) {
            cx->nomem = 1;
            return;
        }
        d->upstream_model = slash + 1;
    }
    if (*prefix == '\0' || *d->upstream_model == '\0') {
        diag(cx, 1, m->line, m->col, "%s.model: '%.80s' is not of the form provider/model",
             where, d->model);
        return;
    }
    if ((d->provider = sl_provider_find(prefix)) == NULL)
        diag(cx, 1, m->line, m->col, "%s.model: unknown provider '%.80s' in '%.80s'", where,
             prefix, d->model);
}

static int load_params(struct ctx *cx, const char *where, struct node *entry,
                       struct node *params, struct sl_deployment *d)
{
    static const struct field fields[] = {
        { "model", F_SKIP, 0, 0, 0 },
        { "api_base", F_STR, DEP(api_base), 0, 0 },
        { "api_key", F_STR, DEP(api_key), 0, 0 },
        { "api_version", F_STR, DEP(api_version), 0, 0 },
        { "timeout", F_SECONDS, DEP(timeout_ms), 0, MAX_SECONDS },
        { "stream_timeout", F_SECONDS, DEP(stream_timeout_ms), 0, MAX_SECONDS },
        { "connect_timeout", F_SECONDS, DEP(connect_timeout_ms), 0, MAX_SECONDS },
        { "first_byte_timeout", F_SECONDS, DEP(first_byte_timeout_ms), 0, MAX_SECONDS },
        { "stream_idle_timeout", F_SECONDS, DEP(stream_idle_timeout_ms), 0, MAX_SECONDS },
        { "max_retries", F_INT, DEP(max_retries), 0, 1000 },
        { "input_cost_per_token", F_COST, DEP(input_cost_per_token), 0, HUGE_VAL },
        { "output_cost_per_token", F_COST, DEP(output_cost_per_token), 0, HUGE_VAL },
        { "rpm", F_COST, DEP(rpm), 0, HUGE_VAL },
        { "tpm", F_COST, DEP(tpm), 0, HUGE_VAL },
        { "weight", F_COST, DEP(weight), 0, HUGE_VAL },
        { "order", F_COST, DEP(order), 0, HUGE_VAL },
        { "max_parallel_requests", F_INT, DEP(max_parallel_requests), 0, 1000000 },
        { NULL, 0, 0, 0, 0 }
    };
    char w[64];
    struct section s = { w, fields, NULL, 1 };   /* any provider param passes through */
    struct node *found[sizeof(fields) / sizeof(fields[0])] = { NULL };
    int before = cx->errors, b;

    snprintf(w, sizeof(w), "%s.litellm_params", where);
    if ((b = is_block(cx, params, w)) <= 0) {
        if (b == 0)
            diag(cx, 1, (params ? params : entry)->line, (params ? params : entry)->col,
                 "%s: litellm_params (with at least model) is required", where);
        return 0;
    }
    walk(cx, &s, params, d, found);
    load_model(cx, w, params, found[0], d);
    if ((d->litellm_params = to_json(cx, params)) == NULL && !cx->nomem && cx->errors == before)
        cx->nomem = 1;
    return cx->errors == before && d->litellm_params != NULL;
}

static int load_info(struct ctx *cx, const char *where, struct node *info,
                     struct sl_deployment *d)
{
    static const struct field fields[] = {
        { "id", F_STR, DEP(id), 0, 0 },
        { "mode", F_STR, DEP(mode), 0, 0 },
        /* LiteLLM also takes custom prices here; litellm_params wins (read later). */
        { "input_cost_per_token", F_COST, DEP(input_cost_per_token), 0, HUGE_VAL },
        { "output_cost_per_token", F_COST, DEP(output_cost_per_token), 0, HUGE_VAL },
        { NULL, 0, 0, 0, 0 }
    };
    char w[64];
    struct section s = { w, fields, NULL, 1 };
    struct node *found[sizeof(fields) / sizeof(fields[0])] = { NULL };
    struct idref *ids;
    int before = cx->errors, b;

    snprintf(w, sizeof(w), "%s.model_info", where);
    if ((b = is_block(cx, info, w)) < 0)
        return 0;
    if (b > 0)
        walk(cx, &s, info, d, found);
    d->model_info = b > 0 ? to_json(cx, info) : json_object();
    if (d->model_info == NULL && cx->errors == before)
        cx->nomem = 1;
    if (d->id != NULL) {
        /* Remember where each explicit id is, for the duplicate check. */
        if (cx->n_ids == cx->cap_ids) {
            size_t cap = cx->cap_ids ? 2 * cx->cap_ids : 16;

            if ((ids = realloc(cx->ids, cap * sizeof(*ids))) == NULL) {
                cx->nomem = 1;
                return 0;
            }
            cx->ids = ids;
            cx->cap_ids = cap;
        }
        cx->ids[cx->n_ids++] = (struct idref){ d->id, found[0]->line, found[0]->col };
    }
    return cx->errors == before && d->model_info != NULL;
}

static int load_name(struct ctx *cx, const char *where, const struct node *entry,
                     struct node *name, struct sl_deployment *d)
{
    int got = name ? get_str(cx, name, &d->model_name) : 0;

    if (got < 0)
        diag(cx, 1, name->line, name->col, "%s.model_name: expected a string, got %s", where,
             type_name(name));
    else if (got == 0 || *d->model_name == '\0')
        diag(cx, 1, (name ? name : entry)->line, (name ? name : entry)->col,
             "%s: model_name is required", where);
    return got > 0 && *d->model_name != '\0';
}

/* model_info.id, else the first 16 bytes of SHA-256 over model_name NUL model
 * NUL api_base-or-"" NUL index (decimal digits), as 32 lowercase hex chars:
 * stable across restarts while the entry stays where it is. */
static const char *make_id(struct ctx *cx, const struct sl_deployment *d, size_t idx)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char num[24], *hex = NULL;
    const char *base = d->api_base ? d->api_base : "";
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    int n = snprintf(num, sizeof(num), "%zu", idx);

    if (h != NULL && EVP_DigestInit_ex(h, EVP_sha256(), NULL) &&
        EVP_DigestUpdate(h, d->model_name, strlen(d->model_name) + 1) &&
        EVP_DigestUpdate(h, d->model, strlen(d->model) + 1) &&
        EVP_DigestUpdate(h, base, strlen(base) + 1) &&
        EVP_DigestUpdate(h, num, (size_t)n) && EVP_DigestFinal_ex(h, md, &mdlen) &&
        mdlen >= 16 && (hex = sl_arena_alloc(cx->arena, 33)) != NULL)
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(h);
    if (hex == NULL)
        cx->nomem = 1;   /* OpenSSL fails only on allocation here */
    return hex;
}

/* A deployment's time-outs not given in litellm_params: the config's
 * defaults (router_settings as LiteLLM's Router takes them, then
 * litellm_settings, then sluice_settings for sluice's own). */
static void finish_timeouts(const struct sl_config *c, struct sl_deployment *d)
{
    if (d->timeout_ms < 0)
        d->timeout_ms = c->router_timeout_ms > 0 ? c->router_timeout_ms : c->request_timeout_ms;
    if (d->stream_timeout_ms < 0)
        d->stream_timeout_ms = c->router_stream_timeout_ms > 0 ? c->router_stream_timeout_ms
                                                               : d->timeout_ms;
    if (d->connect_timeout_ms < 0)
        d->connect_timeout_ms = c->connect_timeout_ms;
    if (d->first_byte_timeout_ms < 0)
        d->first_byte_timeout_ms = c->first_byte_timeout_ms;
    if (d->stream_idle_timeout_ms < 0)
        d->stream_idle_timeout_ms = c->stream_idle_timeout_ms;
}

static void finish_deployment(struct ctx *cx, struct sl_deployment *d, size_t idx)
{
    const char *key;

    finish_timeouts(&cx->cfg->pub, d);
    if (d->mode == NULL)
        d->mode = "chat";
    /* No api_key: the provider's own variable, as LiteLLM does. */
    if (d->api_key == NULL && d->provider->api_key_env != NULL &&
        (key = env_lookup(cx, d->provider->api_key_env)) != NULL &&
        (d->api_key = sl_arena_strdup(cx->arena, key)) == NULL)
        cx->nomem = 1;
    if (d->api_base == NULL && d->provider->api_base_env != NULL &&
        (key = env_lookup(cx, d->provider->api_base_env)) != NULL &&
        (d->api_base = sl_arena_strdup(cx->arena, key)) == NULL)
        cx->nomem = 1;
    if (d->api_base == NULL && (d->provider->flags & SL_PROVIDER_NEEDS_API_BASE))
        diag(cx, 1, d->line, 1, "model_list[%zu] (%s): provider %s needs api_base%s%s", idx,
             d->model_name, d->provider->name, d->provider->api_base_env ? " or the variable " : "",
             d->provider->api_base_env ? d->provider->api_base_env : "");
    if (d->id == NULL)
        d->id = make_id(cx, d, idx);
    {
        const char *b = d->api_base ? d->api_base : d->provider->default_api_base;
        char *shown = b ? sl_arena_alloc(cx->arena, strlen(b) + 1) : NULL;

        if (b != NULL && shown == NULL)
            cx->nomem = 1;
        else if (shown != NULL)
            sl_safe_url(b, shown);
        d->shown_api_base = shown;
    }
    /* Once here, so the cost of a call needs no search (prices.h). */
    d->price = sl_price_resolve(cx->cfg->pub.price_map, d);
    d->price_resolved = 1;
}

static void load_deployment(struct ctx *cx, struct node *entry, size_t idx,
                            struct sl_deployment *d)
{
    static const struct field fields[] = {
        { "model_name", F_SKIP, 0, 0, 0 },
        { "litellm_params", F_SKIP, 0, 0, 0 },
        { "model_info", F_SKIP, 0, 0, 0 },
        { NULL, 0, 0, 0, 0 }
    };
    char where[40];
    struct section s = { where, fields, NULL, 0 };
    struct node *found[sizeof(fields) / sizeof(fields[0])] = { NULL };
    int ok;

    snprintf(where, sizeof(where), "model_list[%zu]", idx);
    d->line = entry->line;
    d->timeout_ms = d->stream_timeout_ms = -1;   /* "not given", until finish_deployment */
    d->connect_timeout_ms = d->first_byte_timeout_ms = d->stream_idle_timeout_ms = -1;
    if (entry->kind != K_MAP) {
        diag(cx, 1, entry->line, entry->col,
             "%s: expected a mapping with model_name and litellm_params, got %s", where,
             type_name(entry));
        return;
    }
    walk(cx, &s, entry, NULL, found);
    ok = load_name(cx, where, entry, found[0], d);
    ok &= load_info(cx, where, found[2], d);
    ok &= load_params(cx, where, entry, found[1], d);
    if (ok && d->provider != NULL && !cx->nomem)
        finish_deployment(cx, d, idx);
}

static int cmp_idref(const void *pa, const void *pb)
{
    const struct idref *a = pa, *b = pb;
    int c = strcmp(a->id, b->id);

    if (c != 0)
        return c;
    return a->line != b->line ? (a->line < b->line ? -1 : 1) : (a->col > b->col) - (a->col < b->col);
}

/* Explicit ids name one deployment each (requests may use them as model). */
static void check_ids(struct ctx *cx)
{
    if (cx->n_ids < 2)
        return;
    qsort(cx->ids, cx->n_ids, sizeof(*cx->ids), cmp_idref);
    for (size_t i = 1; i < cx->n_ids; i++)
        if (strcmp(cx->ids[i].id, cx->ids[i - 1].id) == 0)
            diag(cx, 1, cx->ids[i].line, cx->ids[i].col,
                 "model_info.id '%.80s' is already used at line %d", cx->ids[i].id,
                 cx->ids[i - 1].line);
}

static void load_models(struct ctx *cx, struct node *list)
{
    struct sl_config *c = &cx->cfg->pub;
    size_t i = 0;

    if (list->kind == K_SCALAR && list->type == T_NULL)
        list->n = 0;
    else if (list->kind != K_SEQ) {
        diag(cx, 1, list->line, list->col, "model_list: expected a list, got %s",
             type_name(list));
        return;
    }
    if (list->n == 0) {
        diag(cx, 0, list->line, list->col, "model_list is empty: no model can be called");
        return;
    }
    if ((c->deployments = sl_arena_calloc(cx->arena, list->n, sizeof(*c->deployments))) == NULL) {
        cx->nomem = 1;
        return;
    }
    /* Set first so the free path sees every JSON value made so far. */
    c->n_deployments = list->n;
    for (struct item *it = list->items; it != NULL && !cx->nomem; it = it->next, i++)
        load_deployment(cx, it->val, i, &c->deployments[i]);
    check_ids(cx);
}

/* router.c's groups and the checks of router_settings' lists and maps. */
static void load_routes(struct ctx *cx, const struct node *router)
{
    char why[512];
    int rc;

    if (cx->errors > 0 || cx->nomem)
        return;
    rc = sl_router_build(&cx->cfg->pub, why, sizeof(why));
    if (rc == SL_ERR_NOMEM)
        cx->nomem = 1;
    else if (rc != SL_OK)
        diag(cx, 1, router ? router->line : 1, router ? router->col : 1, "router_settings: %s", why);
}

/* guardrails: compiled once per configuration (guard.c); a pattern that
 * does not compile is an error of the load. */
static void load_guardrails(struct ctx *cx, struct node *sec)
{
    char why[512];
    json_t *list;
    int rc;

    if (sec == NULL)
        return;
    if ((list = to_json(cx, sec)) == NULL) {
        cx->nomem = 1;
        return;
    }
    rc = sl_guard_load(&cx->cfg->pub, list, why, sizeof(why));
    json_decref(list);
    if (rc == SL_ERR_NOMEM)
        cx->nomem = 1;
    else if (rc != SL_OK)
        diag(cx, 1, sec->line, sec->col, "%s", why);
}

/* ---- callbacks ------------------------------------------------------------------ */

#define MAX_SINKS 8
#define MAX_SINK_HEADERS 16

static unsigned long long digest_add(unsigned long long h, const char *s)
{
    for (s = s ? s : ""; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL;
}

static int valid_header(const char *name, size_t nlen, const char *value)
{
    if (nlen == 0 || nlen > 128)
        return 0;
    for (size_t i = 0; i < nlen; i++)
        if (!isalnum((unsigned char)name[i]) && strchr("!#$%&'*+-.^_`|~", name[i]) == NULL)
            return 0;
    return strpbrk(value, "\r\n") == NULL && strlen(value) < 8192;
}

/* Adds "name: value" to k's headers. 0, or -1 (invalid; nothing added). */
static int sink_header(struct ctx *cx, struct sl_sink *k, const char *name, size_t nlen,
                       const char *value)
{
    const char *line;

    if (!valid_header(name, nlen, value) || k->n_headers >= MAX_SINK_HEADERS)
        return -1;
    if ((line = sl_arena_printf(cx->arena, "%.*s: %s", (int)nlen, name, value)) == NULL) {
        cx->nomem = 1;
        return -1;
    }
    k->headers[k->n_headers++] = line;
    return 0;
}

/* "k=v,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS, GENERIC_LOGGER_HEADERS): values
 * percent-decoded, as OpenTelemetry's exporters read them. Never quotes a
 * value in a message. */
static void env_headers(struct ctx *cx, struct sl_sink *k, const char *var, const char *text)
{
    char value[8192];

    while (text != NULL && *text) {
        const char *end = strchr(text, ','), *eq;
        size_t len = end ? (size_t)(end - text) : strlen(text), n = 0;

        eq = memchr(text, '=', len);
        if (eq != NULL) {
            const char *name = text, *ne = eq, *v = eq + 1, *ve = text + len;

            while (*name == ' ')
                name++;
            while (ne > name && ne[-1] == ' ')
                ne--;
            for (; v < ve && n < sizeof(value) - 1; v++) {
                if (*v == '%' && ve - v > 2 && isxdigit((unsigned char)v[1]) && isxdigit((unsigned char)v[2])) {
                    char hx[3] = { v[1], v[2], 0 };

                    value[n++] = (char)strtol(hx, NULL, 16);
                    v += 2;
                } else
                    value[n++] = *v;
            }
            value[n] = '\0';
            while (n > 0 && value[n - 1] == ' ')
                value[--n] = '\0';
            for (v = value; *v == ' '; v++)
                ;
            if (sink_header(cx, k, name, (size_t)(ne - name), v) != 0)
                eq = NULL;
        }
        if (eq == NULL && !cx->nomem)
            diag(cx, 0, 1, 1, "$%s: an entry is not name=value with a valid header name and "
                 "value; left out", var);
        text = end ? end + 1 : NULL;
    }
}

static const char *first_env(struct ctx *cx, const char *const *names)
{
    for (; *names != NULL; names++) {
        const char *v = env_lookup(cx, *names);

        if (v != NULL && v[0] != '\0')
            return v;
    }
    return NULL;
}

static int http_url(const char *u)
{
    return u != NULL && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) &&
           strpbrk(u, " \r\n") == NULL;
}

/* OpenTelemetry's exporter settings, as the SDKs and LiteLLM read them. */
static int sink_otlp(struct ctx *cx, struct sl_sink *k)
{
    static const char *const full[] = { "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_ENDPOINT", NULL };
    static const char *const base[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", NULL };
    static const char *const hdrs[] = { "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                                        "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_HEADERS", NULL };
    static const char *const proto[] = { "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                                         "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER", NULL };
    static const char *const service[] = { "OTEL_SERVICE_NAME", NULL };
    const char *u = first_env(cx, full), *b = first_env(cx, base), *p = first_env(cx, proto);

    k->type = SL_SINK_OTLP;
    if (p != NULL && strstr(p, "grpc") != NULL)
        diag(cx, 0, 1, 1, "callback otel: OTLP over gRPC is not supported; spans go over "
             "HTTP (JSON) to the same endpoint");
    if (u == NULL && b != NULL) {
        size_t n = strlen(b);

        u = sl_arena_printf(cx->arena, "%.*s/v1/traces", (int)(n && b[n - 1] == '/' ? n - 1 : n), b);
    }
    k->url = u ? u : "http://localhost:4318/v1/traces";
    {
        static const char *const sampler[] = { "OTEL_TRACES_SAMPLER", NULL };
        static const char *const arg[] = { "OTEL_TRACES_SAMPLER_ARG", NULL };
        const char *sm = first_env(cx, sampler), *a = first_env(cx, arg);
        char *end = NULL;
        double r = a ? strtod(a, &end) : 1.0;

        if (a != NULL && (end == a || *end != '\0' || !(r >= 0 && r <= 1))) {
            diag(cx, 1, 1, 1, "callback otel: $OTEL_TRACES_SAMPLER_ARG: expected a number "
                 "from 0 to 1");
            r = 1.0;
        }
        cx->cfg->pub.trace_parent_based = 1;
        cx->cfg->pub.trace_ratio = 1.0;
        if (sm == NULL || strcmp(sm, "parentbased_always_on") == 0) {
            /* the default */
        } else if (strcmp(sm, "always_on") == 0) {
            cx->cfg->pub.trace_parent_based = 0;
        } else if (strcmp(sm, "always_off") == 0 || strcmp(sm, "parentbased_always_off") == 0) {
            cx->cfg->pub.trace_parent_based = sm[0] == 'p';
            cx->cfg->pub.trace_ratio = 0;
        } else if (strcmp(sm, "traceidratio") == 0 || strcmp(sm, "parentbased_traceidratio") == 0) {
            cx->cfg->pub.trace_parent_based = sm[0] == 'p';
            cx->cfg->pub.trace_ratio = r;
        } else {
            diag(cx, 1, 1, 1, "callback otel: $OTEL_TRACES_SAMPLER: expected always_on, "
                 "always_off, traceidratio or parentbased_always_on, parentbased_always_off, "
                 "parentbased_traceidratio");
        }
    }
    k->service_name = first_env(cx, service);
    if (k->service_name == NULL)
        k->service_name = "sluice";
    if ((u = first_env(cx, hdrs)) != NULL)
        env_headers(cx, k, "OTEL_EXPORTER_OTLP_HEADERS", u);
    return 0;
}

static int sink_langfuse(struct ctx *cx, struct sl_sink *k)
{
    static const char *const pub[] = { "LANGFUSE_PUBLIC_KEY", NULL };
    static const char *const sec[] = { "LANGFUSE_SECRET_KEY", NULL };
    static const char *const host[] = { "LANGFUSE_HOST", "LANGFUSE_BASE_URL", NULL };
    const char *pk = first_env(cx, pub), *sk = first_env(cx, sec), *h = first_env(cx, host);
    unsigned char cred[1024];
    char b64[1400], *auth;
    int n;

    if (pk == NULL || sk == NULL) {
        diag(cx, 0, 1, 1, "callback langfuse: $LANGFUSE_PUBLIC_KEY and $LANGFUSE_SECRET_KEY "
             "are needed; the callback is off");
        return -1;
    }
    if ((n = snprintf((char *)cred, sizeof(cred), "%s:%s", pk, sk)) < 0 || (size_t)n >= sizeof(cred)) {
        diag(cx, 0, 1, 1, "callback langfuse: the keys are too long; the callback is off");
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)b64, cred, n);
    k->type = SL_SINK_LANGFUSE;
    h = h ? h : "https://cloud.langfuse.com";
    k->url = sl_arena_printf(cx->arena, "%.*s/api/public/ingestion",
                             (int)(strlen(h) && h[strlen(h) - 1] == '/' ? strlen(h) - 1 : strlen(h)), h);
    auth = sl_arena_printf(cx->arena, "Basic %s", b64);
    OPENSSL_cleanse(cred, sizeof(cred));
    if (k->url == NULL || auth == NULL || sink_header(cx, k, "Authorization", 13, auth) != 0) {
        cx->nomem = 1;
        return -1;
    }
    return 0;
}

/* callback_settings.NAME of a generic_api callback, or the environment of
 * LiteLLM's "generic_api". */
static int sink_webhook(struct ctx *cx, struct sl_sink *k, const json_t *set, int line, int col)
{
    static const char *const url[] = { "GENERIC_LOGGER_ENDPOINT", NULL };
    static const char *const hdrs[] = { "GENERIC_LOGGER_HEADERS", NULL };
    const char *fmt = json_string_value(json_object_get(set, "log_format")), *key;
    json_t *h = json_object_get(set, "headers"), *ev = json_object_get(set, "event_types"), *v;
    size_t i;

    k->type = SL_SINK_WEBHOOK;
    k->url = set ? json_string_value(json_object_get(set, "endpoint")) : first_env(cx, url);
    if (k->url != NULL && (k->url = sl_arena_strdup(cx->arena, k->url)) == NULL) {
        cx->nomem = 1;
        return -1;
    }
    if (set == NULL && (key = first_env(cx, hdrs)) != NULL)
        env_headers(cx, k, "GENERIC_LOGGER_HEADERS", key);
    json_object_foreach(h, key, v) {
        if (!json_is_string(v) || sink_header(cx, k, key, strlen(key), json_string_value(v)) != 0)
            diag(cx, 1, line, col, "callback_settings.%s.headers.%.80s: expected a header name "
                 "and a string value on one line", k->name, key);
    }
    if (h != NULL && !json_is_object(h))
        diag(cx, 1, line, col, "callback_settings.%s.headers: expected a mapping", k->name);
    if (fmt == NULL || strcmp(fmt, "json_array") == 0)
        k->format = SL_SINK_JSON_ARRAY;
    else if (strcmp(fmt, "ndjson") == 0)
        k->format = SL_SINK_NDJSON;
    else if (strcmp(fmt, "single") == 0)
        k->format = SL_SINK_SINGLE;
    else
        diag(cx, 1, line, col, "callback_settings.%s.log_format: expected json_array, ndjson or "
             "single", k->name);
    if (json_is_array(ev)) {
        int s = 0, f = 0;

        json_array_foreach(ev, i, v) {
            const char *e = json_string_value(v);

            if (e != NULL && strcmp(e, "llm_api_success") == 0)
                s = 1;
            else if (e != NULL && strcmp(e, "llm_api_failure") == 0)
                f = 1;
            else
                diag(cx, 1, line, col, "callback_settings.%s.event_types: expected "
                     "llm_api_success and/or llm_api_failure", k->name);
        }
        k->success &= s;
        k->failure &= f;
    }
    if (!http_url(k->url)) {
        diag(cx, 1, line, col, set ? "callback_settings.%s.endpoint: expected an http:// or "
             "https:// URL" : "callback %s: $GENERIC_LOGGER_ENDPOINT: expected an http:// or "
             "https:// URL", k->name);
        return -1;
    }
    return 0;
}

/* Which callbacks run on what: the three lists of litellm_settings. */
static void load_callbacks(struct ctx *cx, struct node *settings_node)
{
    static const char *const lists[] = { "callbacks", "success_callback", "failure_callback" };
    struct sl_config *c = &cx->cfg->pub;
    json_t *settings = NULL;

    if (is_block(cx, settings_node, "callback_settings") > 0 &&
        (settings = to_json(cx, settings_node)) == NULL) {
        cx->nomem = 1;
        return;
    }
    for (int l = 0; l < 3; l++) {
        struct node *n = cx->callbacks[l];
        struct item one = { NULL, NULL, n };
        struct item *it = n && n->kind == K_SEQ ? n->items : n && n->kind == K_SCALAR ? &one : NULL;

        if (n != NULL && it == NULL && !(n->kind == K_SCALAR && n->type == T_NULL))
            diag(cx, 1, n->line, n->col, "litellm_settings.%s: expected a list of callback names",
                 lists[l]);
        for (; it != NULL && !cx->nomem; it = it->next) {
            const char *name;
            struct sl_sink *k = NULL;
            const json_t *set;
            int rc = -1, got = get_str(cx, it->val, &name);

            if (got == 0)
                continue;               /* os.environ/ of a variable that is not set */
            if (got < 0) {
                diag(cx, 1, it->val->line, it->val->col, "litellm_settings.%s: expected callback "
                     "names (strings)", lists[l]);
                continue;
            }
            if (strcmp(name, "prometheus") == 0)
                continue;      /* GET /metrics is always there (sluice_settings.metrics) */
            for (size_t i = 0; i < c->n_sinks; i++)
                if (strcmp(c->sinks[i].name, name) == 0)
                    k = &c->sinks[i];
            if (k != NULL) {  /* named in two lists: both kinds of events */
                k->success |= l != 2;
                k->failure |= l != 1;
                continue;
            }
            if (c->sinks == NULL &&
                (c->sinks = sl_arena_calloc(cx->arena, MAX_SINKS, sizeof(*c->sinks))) == NULL) {
                cx->nomem = 1;
                break;
            }
            if (c->n_sinks >= MAX_SINKS) {
                diag(cx, 1, it->val->line, it->val->col, "litellm_settings.%s: at most %d "
                     "callbacks", lists[l], MAX_SINKS);
                continue;
            }
            k = &c->sinks[c->n_sinks];
            memset(k, 0, sizeof(*k));
            k->name = sl_arena_strdup(cx->arena, name);
            k->headers = sl_arena_calloc(cx->arena, MAX_SINK_HEADERS, sizeof(*k->headers));
            if (k->name == NULL || k->headers == NULL) {
                cx->nomem = 1;
                break;
            }
            k->success = l != 2;
            k->failure = l != 1;
            set = json_object_get(settings, name);
            if (json_is_object(set) && json_is_string(json_object_get(set, "callback_type")) &&
                strcmp(json_string_value(json_object_get(set, "callback_type")), "generic_api") == 0)
                rc = sink_webhook(cx, k, set, settings_node->line, settings_node->col);
            else if (strcmp(name, "otel") == 0 || strcmp(name, "opentelemetry") == 0)
                rc = sink_otlp(cx, k);
            else if (strcmp(name, "langfuse") == 0)
                rc = sink_langfuse(cx, k);
            else if (strcmp(name, "generic_api") == 0 || strcmp(name, "generic") == 0)
                rc = sink_webhook(cx, k, NULL, it->val->line, it->val->col);
            else
                diag(cx, 0, it->val->line, it->val->col, "litellm_settings.%s: callback '%.80s' "
                     "is not supported by sluice (ignored); supported: prometheus, otel, "
                     "langfuse, generic_api and callback_settings entries with callback_type: "
                     "generic_api", lists[l], name);
            if (rc != 0)
                continue;
            k->digest = 1469598103934665603ULL;
            k->digest = digest_add(k->digest, k->name);
            k->digest = digest_add(k->digest, k->url);
            k->digest = digest_add(k->digest, k->service_name);
            for (size_t i = 0; i < k->n_headers; i++)
                k->digest = digest_add(k->digest, k->headers[i]);
            k->digest = (k->digest ^ (unsigned)(k->type * 64 + k->format * 4 + k->success * 2 +
                                                 k->failure)) * 1099511628211ULL;
            c->tracing |= k->type == SL_SINK_OTLP;
            c->n_sinks++;
        }
    }
    json_decref(settings);
}

static void load_root(struct ctx *cx, struct node *root)
{
    static const struct field fields[] = {
        { "environment_variables", F_SKIP, 0, 0, 0 },
        { "general_settings", F_SKIP, 0, 0, 0 },
        { "litellm_settings", F_SKIP, 0, 0, 0 },
        { "router_settings", F_SKIP, 0, 0, 0 },
        { "sluice_settings", F_SKIP, 0, 0, 0 },
        { "model_list", F_SKIP, 0, 0, 0 },
        { "guardrails", F_SKIP, 0, 0, 0 },
        { "callback_settings", F_SKIP, 0, 0, 0 },
        { NULL, 0, 0, 0, 0 }
    };
    static const struct section s = { "", fields, top_accepted, 0 };
    struct node *found[sizeof(fields) / sizeof(fields[0])] = { NULL };

    if (root != NULL && !(root->kind == K_SCALAR && root->type == T_NULL)) {
        if (root->kind != K_MAP) {
            diag(cx, 1, root->line, root->col,
                 "the top level must be a mapping (model_list:, general_settings:, ...), got %s",
                 type_name(root));
            return;
        }
        walk(cx, &s, root, NULL, found);
    }
    /* Order matters: variables before anything that may use them, and
     * request_timeout before the deployments that default to it. */
    load_env(cx, found[0]);
    load_general(cx, found[1]);
    load_litellm(cx, found[2]);
    load_router(cx, found[3]);
    load_sluice(cx, found[4]);
    load_callbacks(cx, found[7]);
    load_prices(cx, found[4]);
    if (found[5] != NULL)
        load_models(cx, found[5]);
    else
        diag(cx, 0, 1, 1, "no model_list: only health checks will answer");
    load_routes(cx, found[3]);
    load_guardrails(cx, found[6]);
}

/* ---- load and free ------------------------------------------------------- */

static void config_free(struct priv *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->pub.n_deployments; i++) {
        json_decref(p->pub.deployments[i].litellm_params);
        json_decref(p->pub.deployments[i].model_info);
    }
    sl_price_map_free(p->pub.price_map);
    sl_router_free(p->pub.routes);
    sl_guard_free(&p->pub);
    json_decref(p->pub.router.fallbacks);
    json_decref(p->pub.router.context_window_fallbacks);
    json_decref(p->pub.router.content_policy_fallbacks);
    json_decref(p->pub.router.default_fallbacks);
    json_decref(p->pub.router.retry_policy);
    json_decref(p->pub.router.model_group_alias);
    sl_arena_free(p->pub.arena);   /* p itself lives in it */
}

static int new_config(struct ctx *cx, const char *path)
{
    struct sl_arena *a = sl_arena_create(CONFIG_ARENA_CAP);
    struct priv *p = a ? sl_arena_calloc(a, 1, sizeof(*p)) : NULL;
    struct sl_config *c = p ? &p->pub : NULL;

    if (p == NULL || (c->path = sl_arena_strdup(a, path)) == NULL) {
        sl_arena_free(a);
        return SL_ERR_NOMEM;
    }
    c->arena = a;
    c->refs = 1;
    c->max_request_bytes = DEFAULT_MAX_BODY;
    c->request_timeout_ms = 600000;
    c->threads = 16;
    c->max_threads = 256;
    c->heartbeat_ms = 500;
    c->metrics = 1;
    c->metrics_require_auth = 1;
    c->callback_queue_size = 1000;
    c->responses_store_max_bytes = 1 << 20;
    c->responses_store_max_age_days = 30;
    c->callback_batch_size = 100;
    c->callback_flush_ms = 1000;
    c->callback_timeout_ms = 5000;
    c->body_timeout_ms = 30000;
    c->shutdown_timeout_ms = 30000;
    c->queue_timeout_ms = 1000;
    c->log_level = SL_LOG_INFO;
    c->db_connect_timeout_ms = 2000;
    c->key_cache_ttl_ms = 5000;
    c->remote_user_param = "REMOTE_USER";
    c->new_user.max_budget = -1;
    c->new_user.models_json = "[]";
    c->new_user.user_role = "internal_user";
    c->db_read_timeout_ms = 5000;
    c->db_write_timeout_ms = 5000;
    c->spend_flush_interval_ms = 1000;
    c->budget_reset_interval_ms = 5000;
    c->health_check_timeout_ms = 5000;
    c->connect_timeout_ms = 10000;
    c->reserved_threads = -1;
    c->router.num_retries = -1;
    c->cache.ttl_ms = 600000;
    c->cache.chat = c->cache.embeddings = 1;
    c->router.allowed_fails = 3;
    c->router.cooldown_s = 5;
    c->router.max_fallbacks = 5;
    cx->cfg = p;
    cx->arena = a;
    return SL_OK;
}

int sl_config_load(const char *path, struct sl_config **out, struct sl_buf *msgs)
{
    struct ctx cx = { .path = path, .msgs = msgs };
    struct sl_arena *tree_arena = NULL;
    struct node *root = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (new_config(&cx, path) != SL_OK)
        return SL_ERR_NOMEM;
    if (read_file(&cx, &text, &len) != 0)
        goto out;
    /* The tree lives in its own arena, freed below: only the typed result
     * and the strings it points to stay with the config. */
    if ((tree_arena = sl_arena_create(TREE_ARENA_CAP)) == NULL) {
        cx.nomem = 1;
        goto out;
    }
    if (parse_tree(&cx, tree_arena, text, len, &root) == 0)
        load_root(&cx, root);
out:
    rc = cx.nomem ? SL_ERR_NOMEM : cx.errors ? SL_ERR_CONFIG : SL_OK;
    if (rc == SL_OK)
        *out = &cx.cfg->pub;
    else
        config_free(cx.cfg);
    sl_arena_free(tree_arena);
    free(text);
    free(cx.ids);
    return rc;
}

void sl_config_export_env(const struct sl_config *cfg)
{
    const struct priv *p = (const struct priv *)cfg;   /* see struct priv */

    for (size_t i = 0; p != NULL && i < p->n_env; i++)
        if (setenv(p->env[i].name, p->env[i].value, 1) != 0)
            sl_log(SL_LOG_WARN, NULL, "cannot export %s: %s", p->env[i].name, strerror(errno));
}

/* ---- references and the current config -------------------------------------- */

struct sl_config *sl_config_ref(struct sl_config *cfg)
{
    if (cfg != NULL)
        __atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
    return cfg;
}

void sl_config_unref(struct sl_config *cfg)
{
    /* ACQ_REL: the thread that frees sees every other thread's last use. */
    if (cfg != NULL && __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
        config_free((struct priv *)cfg);
}

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sl_config *current;   /* one reference, guarded by current_lock */

struct sl_config *sl_config_acquire(void)
{
    struct sl_config *cfg;

    pthread_mutex_lock(&current_lock);
    cfg = sl_config_ref(current);
    pthread_mutex_unlock(&current_lock);
    return cfg;
}

void sl_config_install(struct sl_config *cfg)
{
    struct sl_config *old;

    pthread_mutex_lock(&current_lock);
    old = current;
    current = cfg;
    pthread_mutex_unlock(&current_lock);
    sl_config_unref(old);   /* outside the lock: freeing may take a while */
}

/* ---- the reload watcher ---------------------------------------------------- */

enum { W_IDLE, W_RUNNING, W_STOPPING };

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* signalled by stop; CLOCK_MONOTONIC */
    pthread_t thread;
    int state;                /* W_*, guarded by lock */
    int stop;                 /* guarded by lock */
    char *path;               /* owned; fixed while the thread runs */
    long interval_ms;
    struct stat last;         /* what the last load attempt saw (thread only) */
    int have_last, stat_failed, empty_seen;
    struct stat prices;       /* the running config's model_cost_map at the last failed
                                 * load; have_prices 0: as that config read it */
    int have_prices;
} watch = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int same_file(const struct stat *a, const struct stat *b)
{
    /* The inode catches an editor's write-to-temp-and-rename; mtime and size
     * an in-place write; ctime a copy that preserved mtime. */
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void log_lines(int level, const struct sl_buf *msgs)
{
    const char *p = msgs->len > 0 ? msgs->data : "";

    while (*p != '\0') {
        size_t n = strcspn(p, "\n");

        sl_log(level, NULL, "%.*s", (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
}

static int written_just_now(const struct stat *st)
{
    struct timespec now;
    long long age_ms;

    clock_gettime(CLOCK_REALTIME, &now);
    age_ms = (long long)(now.tv_sec - st->st_mtim.tv_sec) * 1000 +
             (now.tv_nsec - st->st_mtim.tv_nsec) / 1000000;
    return age_ms >= 0 && age_ms < 200;
}

/* 1 if the running config's price file (model_cost_map) is not what that
 * config read, nor what the last failed load saw: a new price file is a
 * reason to reload as much as a new config. A file written in the last
 * 200 ms is looked at on a later tick (see watch_check). */
static int prices_changed(void)
{
    struct sl_config *cfg = sl_config_acquire();
    const struct priv *p = (const struct priv *)cfg;   /* see struct priv */
    struct stat st;
    int changed = 0;

    if (p != NULL && cfg->model_cost_map != NULL && stat(cfg->model_cost_map, &st) == 0 &&
        !written_just_now(&st) && (watch.have_prices || p->have_prices_st)) {
        changed = !same_file(&st, watch.have_prices ? &watch.prices : &p->prices_st);
        watch.prices = st;   /* until a load succeeds */
        watch.have_prices = 1;
    }
    sl_config_unref(cfg);
    return changed;
}

static void watch_check(void)
{
    struct sl_config *cfg = NULL;
    struct sl_buf msgs;
    struct stat st;
    int rc, prices;

    if (stat(watch.path, &st) != 0) {
        /* Often a rename in progress; say so once, keep the config. */
        if (!watch.stat_failed)
            sl_log(SL_LOG_WARN, NULL, "config %s: %s; keeping the current config", watch.path,
                   strerror(errno));
        watch.stat_failed = 1;
        return;
    }
    watch.stat_failed = 0;
    prices = prices_changed();
    if (watch.have_last && same_file(&st, &watch.last) && !prices)
        return;
    /* An editor that saves in place truncates, then writes: a file changed
     * in the last 200 ms, or empty, is most likely caught half-written. It is
     * read on a later tick (within the 2 s promised); an empty config is
     * never installed by a reload, since it would drop every model. */
    if (written_just_now(&st))
        return;
    if (st.st_size == 0) {
        if (!watch.empty_seen)
            sl_log(SL_LOG_WARN, NULL, "config %s is empty; keeping the current config", watch.path);
        watch.empty_seen = 1;
        return;
    }
    watch.empty_seen = 0;
    /* Taken before reading: a write during the load shows up next time. */
    watch.last = st;
    watch.have_last = 1;
    sl_buf_init(&msgs, WATCH_MSGS_CAP);
    rc = sl_config_load(watch.path, &cfg, &msgs);
    if (rc == SL_OK) {
        log_lines(SL_LOG_WARN, &msgs);
        watch.have_prices = 0;   /* the new config knows what it read */
        sl_log(SL_LOG_INFO, NULL, "config reloaded from %s (%zu deployments%s)", watch.path,
               cfg->n_deployments, prices ? ", model_cost_map changed" : "");
        sl_config_install(cfg);
    } else {
        log_lines(SL_LOG_ERROR, &msgs);
        sl_log(SL_LOG_ERROR, NULL, "config %s not reloaded (%s); keeping the current config",
               watch.path, rc == SL_ERR_NOMEM ? "out of memory" : "invalid");
    }
    sl_buf_free(&msgs);
}

static void *watch_main(void *arg)
{
    struct timespec deadline;

    pthread_mutex_lock(&watch.lock);
    while (!watch.stop) {
        deadline = sl_deadline(CLOCK_MONOTONIC, watch.interval_ms * 1000LL);
        /* A timed wait, not sleep(): stop wakes us at once. */
        while (!watch.stop &&
               pthread_cond_timedwait(&watch.wake, &watch.lock, &deadline) != ETIMEDOUT)
            ;
        if (watch.stop)
            break;
        pthread_mutex_unlock(&watch.lock);
        watch_check();
        pthread_mutex_lock(&watch.lock);
    }
    pthread_mutex_unlock(&watch.lock);
    return arg;
}

/* Condition variable on CLOCK_MONOTONIC: a wall-clock jump must not stall
 * or rush the polling. */
static int watch_cond_init(void)
{
    pthread_condattr_t ca;
    int ok;

    if (pthread_condattr_init(&ca) != 0)
        return -1;
    ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
         pthread_cond_init(&watch.wake, &ca) == 0;
    pthread_condattr_destroy(&ca);
    return ok ? 0 : -1;
}

int sl_config_watch_start(const char *path, long interval_ms)
{
    pthread_attr_t attr;
    int rc = SL_ERR_INTERNAL, attr_ok = 0, cond_ok = 0;

    pthread_mutex_lock(&watch.lock);
    if (watch.state != W_IDLE || path == NULL || interval_ms <= 0)
        goto out;
    if ((watch.path = strdup(path)) == NULL) {
        rc = SL_ERR_NOMEM;
        goto out;
    }
    watch.interval_ms = interval_ms;
    watch.stop = 0;
    watch.stat_failed = 0;
    watch.have_prices = 0;
    /* The current config was loaded from the file as it is now. */
    watch.have_last = stat(path, &watch.last) == 0;
    if ((cond_ok = watch_cond_init() == 0) && (attr_ok = pthread_attr_init(&attr) == 0) &&
        pthread_attr_setstacksize(&attr, WATCH_STACK) == 0 &&
        pthread_create(&watch.thread, &attr, watch_main, NULL) == 0) {
        watch.state = W_RUNNING;
        rc = SL_OK;
    }
out:
    if (attr_ok)
        pthread_attr_destroy(&attr);
    if (rc != SL_OK && cond_ok)
        pthread_cond_destroy(&watch.wake);
    if (rc != SL_OK && watch.state == W_IDLE) {
        free(watch.path);
        watch.path = NULL;
    }
    pthread_mutex_unlock(&watch.lock);
    return rc;
}

void sl_config_watch_stop(void)
{
    pthread_t th;

    pthread_mutex_lock(&watch.lock);
    if (watch.state != W_RUNNING) {
        pthread_mutex_unlock(&watch.lock);
        return;
    }
    watch.state = W_STOPPING;   /* a second stop or a start now waits its turn */
    watch.stop = 1;
    th = watch.thread;
    pthread_cond_signal(&watch.wake);
    pthread_mutex_unlock(&watch.lock);
    pthread_join(th, NULL);
    pthread_mutex_lock(&watch.lock);
    pthread_cond_destroy(&watch.wake);
    free(watch.path);
    watch.path = NULL;
    watch.state = W_IDLE;
    pthread_mutex_unlock(&watch.lock);
}

/* ---- lookups ------------------------------------------------------------ */

size_t sl_config_find_group(const struct sl_config *cfg, const char *model_name,
                            const struct sl_deployment **out, size_t max)
{
    size_t n = 0;

    if (cfg == NULL || model_name == NULL)
        return 0;
    for (size_t i = 0; i < cfg->n_deployments; i++)
        if (strcmp(cfg->deployments[i].model_name, model_name) == 0) {
            if (out != NULL && n < max)
                out[n] = &cfg->deployments[i];
            n++;
        }
    return n;
}

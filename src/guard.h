/* Guardrails (LiteLLM's `guardrails:` block) on the request path: which run
 * for a call, masking or blocking what pii.h detects in the prompt before it
 * leaves (pre_call), and in the answer before the client sees it
 * (post_call), restoring the prompt's placeholders in the answer where asked
 * (output_parse_pii). See docs/guardrails.md. */
#ifndef SL_GUARD_H
#define SL_GUARD_H

#include <stddef.h>
#include <jansson.h>

struct sl_config;
struct sl_request;
struct sl_pii_set;

enum {
    SL_GUARD_PRE = 1,       /* pre_call (during_call is taken as pre_call) */
    SL_GUARD_POST = 2,      /* post_call */
    SL_GUARD_LOG = 4,       /* logging_only: detect and count, change nothing */
};

/* One configured guardrail. */
struct sl_guardrail {
    const char *name;           /* guardrail_name (config arena) */
    unsigned modes;             /* SL_GUARD_* */
    int default_on;
    int restore;                /* output_parse_pii: placeholders back in answers */
    struct sl_pii_set *set;     /* owned */
};

/* Builds cfg's guardrails from the `guardrails:` list (JSON form of the
 * YAML; names and strings copied into cfg's arena). SL_OK; SL_ERR_CONFIG
 * with why (naming the entry) for a bad entry or a pattern that does not
 * compile; SL_ERR_NOMEM. */
int sl_guard_load(struct sl_config *cfg, const json_t *list, char *why, size_t whylen);

/* Frees what sl_guard_load made. */
void sl_guard_free(struct sl_config *cfg);

/* For a routed chat, embeddings or messages request, on the body as the
 * client sent it: picks the guardrails that run (default_on, the key's and
 * team's metadata.guardrails, the body's "guardrails", which is removed)
 * and says which in x-litellm-applied-guardrails. SL_OK;
 * SL_ERR_BAD_REQUEST for an unknown guardrail name or a malformed
 * "guardrails"; SL_ERR_NOMEM. Costs nothing when no guardrail is
 * configured. */
int sl_guard_select(struct sl_request *req);

/* Then, on the OpenAI form of the body (a messages request translated),
 * before the upstream call: runs the pre_call ones on every message (all
 * roles: text and text parts, tool call arguments) or embedding input:
 * masked text replaces the original in req->in (and the adapters then
 * build the body from req->in). SL_OK; SL_ERR_GUARDRAIL with req->err_msg
 * naming the guardrail and the detector (never the value) when one blocks;
 * SL_ERR_NOMEM. Nothing when sl_guard_select chose none. */
int sl_guard_pre(struct sl_request *req);

/* Counts the guardrails that ran on req in the metrics (metrics.h): each
 * with its hook, its outcome and its time. */
void sl_guard_metrics(const struct sl_request *req);

/* Whether the answer of req must go through sl_guard_answer /
 * sl_guard_chunk (a post_call guardrail runs, or placeholders are to be
 * restored): proxy.c then takes its parsing path. */
int sl_guard_on_answer(const struct sl_request *req);

/* A whole OpenAI answer (chat.completion or embeddings list), rewritten in
 * place: post_call masking, then restore. SL_OK; SL_ERR_GUARDRAIL (blocked,
 * req->err_msg set); SL_ERR_NOMEM. */
int sl_guard_answer(struct sl_request *req, json_t *resp);

/* One OpenAI stream chunk, rewritten in place: the text deltas of each
 * choice go through a streaming scanner that holds back what may still
 * become a detection (see pii.h), and are released (at the latest) with the
 * choice's finish_reason. SL_OK; SL_ERR_GUARDRAIL; SL_ERR_NOMEM. */
int sl_guard_chunk(struct sl_request *req, json_t *chunk);

/* Text still held when a stream ends without a finish_reason, as one more
 * chunk to send (NULL: none). */
json_t *sl_guard_stream_end(struct sl_request *req);

#endif

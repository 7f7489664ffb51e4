/* The one status enum of sluice. Every library error is translated into one of
 * these at the boundary where it happens; respond.c maps each to an HTTP status
 * and an OpenAI-shaped error body. */
#ifndef SL_STATUS_H
#define SL_STATUS_H

enum sl_status {
    SL_OK = 0,
    SL_ERR_NOMEM,            /* 503: allocation failed; the request is shed */
    SL_ERR_BAD_JSON,         /* 400: body is not valid JSON (or not UTF-8) */
    SL_ERR_BAD_REQUEST,      /* 400: JSON ok, fields wrong */
    SL_ERR_UNKNOWN_MODEL,    /* 400: model not in model_list (LiteLLM's status) */
    SL_ERR_TOO_LARGE,        /* 413: body over general_settings.max_request_size_mb */
    SL_ERR_AUTH,             /* 401: missing or invalid key */
    SL_ERR_FORBIDDEN,        /* 403: key may not use this model or route */
    SL_ERR_NOT_FOUND,        /* 404: no such route */
    SL_ERR_METHOD,           /* 405: route exists, method does not */
    SL_ERR_BODY_TIMEOUT,     /* 408: client too slow sending the body */
    SL_ERR_UNSUPPORTED,      /* 400: the deployment's provider cannot serve this endpoint */
    SL_ERR_UPSTREAM_CONNECT, /* 502: could not reach the upstream */
    SL_ERR_UPSTREAM_TIMEOUT, /* 408 (LiteLLM's Timeout): the upstream did not answer in time */
    SL_ERR_UPSTREAM_BAD,     /* 502: the upstream answered something we cannot parse */
    SL_ERR_UPSTREAM_STATUS,  /* the upstream's own 4xx/5xx, passed on faithfully */
    SL_ERR_CLIENT_GONE,      /* the client left; nothing more can be sent */
    SL_ERR_BUSY,             /* 503: no worker free / shutting down */
    SL_ERR_CONFIG,           /* the configuration file is invalid (start-up, reload) */
    SL_ERR_INTERNAL,         /* 500: a bug or an impossible state */
    SL_ERR_DB_UNAVAILABLE,   /* 503: the database cannot be used now (down, denied, no schema) */
    SL_ERR_DB,               /* 500: the database refused a statement (see struct sl_db_error) */
    SL_ERR_NO_DEPLOYMENT,    /* 429: every deployment of the model group is cooling down or full */
    SL_ERR_RATE_LIMITED,     /* 429: a key's, team's or user's rpm/tpm/parallel limit (ratelimit.c) */
    SL_ERR_GUARDRAIL,        /* 400: a guardrail blocked the prompt or the answer (guard.c) */
    SL_STATUS_MAX
};

/* Static, human readable name of a status ("nomem", "bad_json", ...). */
const char *sl_status_name(int status);

#endif

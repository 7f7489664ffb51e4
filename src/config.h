/* The configuration: LiteLLM's proxy config.yaml, read with libyaml into an
 * immutable, typed struct sl_config. Requests hold a reference for their whole
 * life; a hot reload builds a new config and swaps the pointer, so in-flight
 * requests finish on the config they started with.
 *
 * Sections read (everything else, and every unknown key inside them, is
 * reported as a warning with file:line, never silently ignored):
 *   model_list[]:        model_name, litellm_params{model, api_base, api_key,
 *                        api_version, timeout, stream_timeout, connect_timeout,
 *                        first_byte_timeout, stream_idle_timeout, max_retries,
 *                        input_cost_per_token, output_cost_per_token, rpm, tpm,
 *                        weight, order, + any provider param}, model_info{...}
 *   general_settings:    master_key, max_request_size_mb, database_url,
 *                        memcached_servers, ...
 *   litellm_settings:    drop_params, request_timeout, num_retries, cache,
 *                        cache_params{type, ttl, namespace, mode, supported_call_types}, ...
 *   router_settings:     routing (router.c), timeout, stream_timeout
 *   environment_variables: {NAME: value}
 *   sluice_settings:     sluice's own knobs (threads, heartbeat_ms, model_cost_map, ...)
 * Any string "os.environ/NAME" is replaced by the value of NAME, looked up
 * first in environment_variables, then in the process environment. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stddef.h>
#include <jansson.h>

struct sl_buf;
struct sl_arena;
struct sl_provider;
struct sl_price;
struct sl_price_map;
struct sl_dep_state;
struct sl_router;

struct sl_deployment {
    const char *model_name;      /* public name = model group */
    const char *model;           /* litellm_params.model as written: "openai/gpt-4o" */
    const struct sl_provider *provider; /* borrowed from the registry */
    const char *upstream_model;  /* model after the provider prefix: "gpt-4o" */
    const char *api_base;        /* NULL: the provider's default_api_base */
    const char *shown_api_base;  /* api_base, else the provider's default, without what may
                                  * carry a secret (user:password@, query): for logs, metrics,
                                  * spend rows and events; NULL: none */
    const char *api_key;         /* resolved secret, or the provider's api_key_env, or NULL */
    const char *api_version;     /* NULL if not given */
    const char *id;              /* model_info.id, else a stable hex id of the entry */
    const char *mode;            /* model_info.mode, default "chat" */
    long   timeout_ms;           /* litellm_params.timeout (s): a whole non-streamed call, else
                                  * router_settings.timeout, else litellm_settings.request_timeout */
    long   stream_timeout_ms;    /* litellm_params.stream_timeout (s): a stream's wait for its
                                  * first byte (LiteLLM's meaning), else
                                  * router_settings.stream_timeout, else timeout_ms */
    long   connect_timeout_ms;   /* litellm_params.connect_timeout (s), else
                                  * sluice_settings.connect_timeout (10 s) */
    long   first_byte_timeout_ms; /* litellm_params.first_byte_timeout (s), else
                                  * sluice_settings.first_byte_timeout; 0: none */
    long   stream_idle_timeout_ms; /* litellm_params.stream_idle_timeout (s): longest silence
                                  * in a stream once it began, else
                                  * sluice_settings.stream_idle_timeout; 0: stream_timeout */
    int    max_retries;          /* litellm_params.max_retries, else 0 */
    double weight, rpm, tpm;     /* litellm_params: routing weight, per-minute limits; 0: none */
    double order;                /* litellm_params.order: priority tier (lowest first); 0: none */
    int    max_parallel_requests; /* litellm_params.max_parallel_requests; 0: none */
    struct sl_dep_state *state;  /* router.c: this deployment's live state (in flight,
                                  * latency, cooldown), shared across config reloads */
    double input_cost_per_token; /* 0 if not given */
    double output_cost_per_token;
    const struct sl_price *price; /* borrowed (the config's price map or the built-in
                                  * table), set at load by sl_price_resolve; NULL:
                                  * unknown. input/output_cost_per_token win over it */
    int price_resolved;          /* price was set at load; 0 in a deployment built by
                                  * hand (tests), which sl_price_cost resolves per call */
    json_t *litellm_params;      /* owned: the whole block, os.environ/ resolved */
    json_t *model_info;          /* owned: the whole block, or an empty object */
    int line;                    /* line of the entry in the file, for messages */
};

/* One memcached server of general_settings.memcached_servers. */
struct sl_memcached_server {
    const char *host;            /* name or address (IPv6 without brackets), or a socket path */
    unsigned port;               /* 0: host is a unix socket path */
};

struct sl_guardrail;

/* A network in CIDR form (sluice_settings.metrics_allowed_ips). */
struct sl_net {
    int family;                        /* AF_INET, AF_INET6 */
    unsigned char addr[16];
    int bits;
};

/* Where events and spans go (export.c): litellm_settings.callbacks,
 * success_callback and failure_callback, with callback_settings and the
 * environment LiteLLM reads for them. */
enum { SL_SINK_WEBHOOK, SL_SINK_LANGFUSE, SL_SINK_OTLP };
enum { SL_SINK_JSON_ARRAY, SL_SINK_NDJSON, SL_SINK_SINGLE };
struct sl_sink {
    const char *name;                  /* the callback's: "otel", "langfuse", "generic_api", ... */
    int type;                          /* SL_SINK_* */
    const char *url;                   /* where batches are POSTed */
    const char **headers;              /* "Name: value" (secrets: never logged) */
    size_t n_headers;
    int success, failure;              /* events of calls that succeeded, failed */
    int format;                        /* webhooks: SL_SINK_JSON_ARRAY, _NDJSON, _SINGLE */
    const char *service_name;          /* OTLP: the resource's service.name */
    unsigned long long digest;         /* of all the above: a sink whose digest changes
                                        * on reload takes the new settings */
};

struct sl_config {
    const char *path;                  /* the file this came from */
    struct sl_deployment *deployments; /* in file order */
    size_t n_deployments;

    /* general_settings */
    const char *master_key;            /* NULL: no master key (every call is 401) */
    char master_key_hash[65];          /* its SHA-256 hex; "" without one */
    size_t max_request_bytes;          /* max_request_size_mb, default 32 MiB */
    const char *database_url;          /* database_url, else $DATABASE_URL; validated by
                                        * sl_db_url_parse. NULL: no database (master key only) */
    const char *database_url_masked;   /* the same with the password as "***": for logs */
    struct sl_memcached_server *memcached_servers; /* memcached_servers, else
                                        * $SLUICE_MEMCACHED_SERVERS; in the order given */
    size_t n_memcached_servers;        /* 0: no memcached */
    long key_cache_ttl_ms;             /* user_api_key_cache_ttl (s): how long a virtual key
                                        * is cached (process and memcached), default 5 s */
    int trust_remote_user;             /* trust_remote_user: the user the web server
                                        * authenticated is a principal (docs/remote-user.md);
                                        * default 0 */
    const char *remote_user_param;     /* remote_user_param: the FastCGI param that names
                                        * that user, default "REMOTE_USER"; never HTTP_* */
    int global_max_parallel_requests;  /* calls in flight through all processes and hosts
                                        * together; 0 (default): no limit */

    /* litellm_settings */
    int  drop_params;                  /* default 0 */
    int  metrics_require_auth;         /* require_auth_for_metrics_endpoint: GET /metrics
                                        * wants the master key (or an allowed address);
                                        * default 1 (LiteLLM's is 0) */
    long request_timeout_ms;           /* default 600 s */
    int  num_retries;                  /* default 0 */
    struct sl_cache_settings {         /* cache, cache_params (cache.c, docs/cache.md) */
        int enabled;                   /* litellm_settings.cache, default 0 */
        const char *type;              /* cache_params.type as written; NULL: "local". The
                                        * entries live in memcached when servers are
                                        * configured, else in a small table per process */
        long ttl_ms;                   /* cache_params.ttl (s), default 600 s, at most 30 days */
        const char *ns;                /* cache_params.namespace; NULL: none */
        int default_off;               /* cache_params.mode: default_off: only requests with
                                        * cache: {use-cache: true} use it */
        int chat, embeddings;          /* supported_call_types: acompletion, aembedding
                                        * (default both) */
    } cache;

    /* router_settings (router.c builds its tables from these at load) */
    struct sl_router_settings {
        const char *routing_strategy;  /* NULL: simple-shuffle */
        int num_retries;               /* -1: litellm_settings.num_retries */
        double retry_after_s;          /* the least wait before a retry, default 0 */
        int allowed_fails;             /* failures a minute before a cooldown, default 3 */
        double cooldown_s;             /* cooldown_time, default 5 */
        int disable_cooldowns;
        int max_fallbacks;             /* default 5 */
        double latency_buffer;         /* routing_strategy_args.lowest_latency_buffer */
        json_t *fallbacks, *context_window_fallbacks, *content_policy_fallbacks;
        json_t *default_fallbacks, *retry_policy, *model_group_alias;   /* owned; NULL: none */
    } router;
    struct sl_router *routes;          /* owned: router.c's groups, built at load */
    struct sl_new_user {               /* default_internal_user_params: a user created
                                        * on first sight (trust_remote_user) */
        double max_budget;             /* < 0: none (the default) */
        const char *budget_duration;   /* NULL: none */
        const char *models_json;       /* the models column: a JSON array, default "[]" */
        const char *user_role;         /* default "internal_user" */
        const char *const *teams;      /* team ids to join (teams that exist) */
        size_t n_teams;
    } new_user;

    /* sluice_settings */
    int  threads;                      /* worker threads at start, default 16 */
    int  max_threads;                  /* ceiling the pool may grow to, default 256 */
    int  reserved_threads;             /* threads LLM calls may not take (health, admin);
                                        * -1 (default): max_threads / 16, at most 4 */
    int  deployment_max_in_flight;     /* calls in flight to one deployment; 0 (default):
                                        * 3/4 of what LLM calls may take */
    long heartbeat_ms;                 /* SSE ": ping" while upstream is silent, default 500 */
    long body_timeout_ms;              /* max wait for request body bytes, default 30000 */
    long shutdown_timeout_ms;          /* graceful SIGTERM wait for in-flight requests, default 30000 */
    long queue_timeout_ms;             /* wait for a free worker before a 503, default 1000 */
    int  log_level;                    /* enum sl_log_level; sluice_settings.log_level, default info */
    long db_connect_timeout_ms;        /* MariaDB connect, default 2000 (whole seconds, rounded up) */
    long db_read_timeout_ms;           /* MariaDB reads, default 5000 (idem) */
    long db_write_timeout_ms;          /* MariaDB writes, default 5000 (idem) */
    const char *spend_spool_dir;       /* spend records the database could not take; NULL:
                                        * $TMPDIR/sluice-spend, else /var/tmp/sluice-spend */
    long spend_flush_interval_ms;      /* how often the spend writer flushes, default 1000 */
    int  end_user_rpm_limit;           /* limits of each end user (a request's "user"): */
    int  end_user_tpm_limit;           /* requests and tokens a minute, calls in flight; */
    int  end_user_max_parallel_requests;   /* 0 (default): none (docs/limits.md) */
    int  parallel_lease_s;             /* the period parallel slots are counted in, s;
                                        * 0 (default): 30 (counter.h) */
    const char *model_cost_map;        /* model_cost_map, else $SLUICE_MODEL_COST_MAP, relative
                                        * to the config file's directory; NULL: none */
    struct sl_price_map *price_map;    /* owned: that file's prices, read at load */
    long budget_reset_interval_ms;     /* how often it resets budgets whose period ended,
                                        * default 5000 */
    long health_check_timeout_ms;      /* GET /health: each probe's time-out, default 5000
                                        * (model_info.health_check_timeout overrides it) */
    /* LLM call time-outs (docs/configuration.md, "Time-outs"); a deployment's
     * litellm_params win over these defaults. */
    long router_timeout_ms;            /* router_settings.timeout (s); 0: request_timeout */
    long router_stream_timeout_ms;     /* router_settings.stream_timeout (s); 0: the timeout */
    long connect_timeout_ms;           /* sluice_settings.connect_timeout (s), default 10 */
    long first_byte_timeout_ms;        /* sluice_settings.first_byte_timeout (s); 0 (default): none */
    long stream_idle_timeout_ms;       /* sluice_settings.stream_idle_timeout (s); 0 (default):
                                        * a stream's stream_timeout */
    long max_request_timeout_ms;       /* sluice_settings.max_request_timeout (s): the most a
                                        * request's own timeout may ask; default
                                        * router_settings.timeout, else request_timeout */

    struct sl_sink *sinks;             /* callbacks (config arena) */
    size_t n_sinks;
    int  tracing;                      /* an OTLP sink is configured: requests are spans */
    int  trace_parent_based;           /* $OTEL_TRACES_SAMPLER: a client's sampled flag decides
                                        * (parentbased_*, the default) */
    double trace_ratio;                /* the share of traces started here that are sampled
                                        * (always_on 1, always_off 0, traceidratio: the arg) */
    int  callback_queue_size;          /* events waiting per sink and process, default 1000 */
    int  responses_store;              /* keep Responses API answers in MariaDB (respstore.c) */
    int  responses_store_max_bytes;    /* the most one kept response may take, default 1 MiB */
    int  responses_store_max_age_days; /* how long it is kept, default 30 */
    int  callback_batch_size;          /* events per delivery, default 100 */
    long callback_flush_ms;            /* the longest an event waits for its batch, 1000 */
    long callback_timeout_ms;          /* one delivery's time-out, default 5000 */
    int  metrics;                      /* sluice_settings.metrics: count and serve /metrics,
                                        * default 1 */
    struct sl_net *metrics_nets;       /* metrics_allowed_ips: who may read /metrics without
                                        * a key (config arena) */
    size_t n_metrics_nets;

    /* private */
    struct sl_guardrail *guardrails;   /* guardrails: (guard.h), n_guardrails of them */
    size_t n_guardrails;
    struct sl_arena *arena;            /* owns every string above */
    int refs;                          /* atomic; see acquire/release */
};

/* Reads and validates path. On success *out is a new config with one
 * reference and SL_OK is returned. Errors and warnings are appended to msgs
 * (may be NULL), one per line, as "path:line:col: error: text" or
 * "path:line:col: warning: text". Returns SL_ERR_CONFIG if there was any error
 * (then *out is NULL), SL_ERR_NOMEM on OOM. Secrets never appear in msgs.
 * Not thread-safe with respect to setenv: call environment export only at
 * start-up (sl_config_export_env). */
int sl_config_load(const char *path, struct sl_config **out, struct sl_buf *msgs);

/* Exports environment_variables into the process environment. Call once at
 * start-up, before any thread is created. */
void sl_config_export_env(const struct sl_config *cfg);

/* Reference counting, safe from any thread. */
struct sl_config *sl_config_ref(struct sl_config *cfg);
void sl_config_unref(struct sl_config *cfg);   /* accepts NULL; frees at 0 */

/* The process-wide current config. acquire returns it with a new reference
 * (NULL before the first install); install makes cfg current, taking over the
 * caller's reference and dropping the old config's. */
struct sl_config *sl_config_acquire(void);
void sl_config_install(struct sl_config *cfg);

/* Starts a thread that checks path every interval_ms (mtime, size, inode) and,
 * when it changed, loads it; a good config is installed, a broken one is
 * logged (every message) and the old one stays. SL_OK or SL_ERR_NOMEM/INTERNAL. */
int sl_config_watch_start(const char *path, long interval_ms);
void sl_config_watch_stop(void);

/* Deployments of one model group, in file order: fills out[] with up to max
 * borrowed pointers and returns how many there are in all (0: no such group). */
size_t sl_config_find_group(const struct sl_config *cfg, const char *model_name,
                            const struct sl_deployment **out, size_t max);

#endif

-- 002: spend logs (one row per request) and daily spend aggregates.
--
-- Same conventions as 001 (see its header and docs/database.md): LiteLLM's
-- names, JSON text, DECIMAL(20,10) money, DATETIME(6) in UTC, byte-wise ids,
-- re-runnable statements.

-- One row per request, written in batches by the spend writer after the
-- client has its last byte. request_id is the primary key, as in LiteLLM: a
-- replayed spool row is recognised, never counted twice. Cached-token counts
-- are sluice's own columns (LiteLLM buries them in metadata.usage_object).
CREATE TABLE IF NOT EXISTS `LiteLLM_SpendLogs` (
  request_id             VARCHAR(255)   NOT NULL,
  call_type              VARCHAR(64)    NOT NULL DEFAULT '',   -- acompletion, aembedding, ...
  api_key                VARCHAR(255)   NOT NULL DEFAULT '',   -- the key's token (SHA-256 hex)
  spend                  DECIMAL(20,10) NOT NULL DEFAULT 0,
  total_tokens           BIGINT         NOT NULL DEFAULT 0,
  prompt_tokens          BIGINT         NOT NULL DEFAULT 0,
  completion_tokens      BIGINT         NOT NULL DEFAULT 0,
  cache_read_input_tokens BIGINT        NOT NULL DEFAULT 0,
  cache_creation_input_tokens BIGINT    NOT NULL DEFAULT 0,
  startTime              DATETIME(6)    NOT NULL,
  endTime                DATETIME(6)    NOT NULL,
  request_duration_ms    INT            NULL,
  completionStartTime    DATETIME(6)    NULL,      -- first token: time to first token = this - startTime
  model                  VARCHAR(255)   NOT NULL DEFAULT '',   -- the upstream model
  model_id               VARCHAR(255)   NULL DEFAULT '',       -- the deployment (model_info.id)
  model_group            VARCHAR(255)   NULL DEFAULT '',       -- the public model name asked for
  custom_llm_provider    VARCHAR(64)    NULL DEFAULT '',
  api_base               VARCHAR(1024)  NULL DEFAULT '',
  `user`                 VARCHAR(255)   NULL DEFAULT '',       -- the key's user_id
  metadata               LONGTEXT       NULL DEFAULT '{}' CHECK (JSON_VALID(metadata)),
  cache_hit              VARCHAR(16)    NULL DEFAULT '',
  cache_key              VARCHAR(255)   NULL DEFAULT '',
  request_tags           LONGTEXT       NULL DEFAULT '[]' CHECK (JSON_VALID(request_tags)),
  team_id                VARCHAR(255)   NULL,
  organization_id        VARCHAR(255)   NULL,
  end_user               VARCHAR(255)   NULL,      -- the request's "user" field
  requester_ip_address   VARCHAR(64)    NULL,
  messages               LONGTEXT       NULL DEFAULT '{}' CHECK (JSON_VALID(messages)),
  response               LONGTEXT       NULL DEFAULT '{}' CHECK (JSON_VALID(response)),
  session_id             VARCHAR(255)   NULL,
  status                 VARCHAR(16)    NULL,      -- success, failure
  mcp_namespaced_tool_name VARCHAR(255) NULL,
  agent_id               VARCHAR(255)   NULL,
  proxy_server_request   LONGTEXT       NULL DEFAULT '{}' CHECK (JSON_VALID(proxy_server_request)),
  PRIMARY KEY (request_id),
  KEY idx_spendlogs_start (startTime),
  KEY idx_spendlogs_key_start (api_key, startTime),
  KEY idx_spendlogs_team_start (team_id, startTime),
  KEY idx_spendlogs_user_start (`user`, startTime),
  KEY idx_spendlogs_end_user_start (end_user, startTime)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Daily aggregates: one row per day x key x team x user x model group x
-- model x provider, upserted by the spend writer
-- (INSERT ... ON DUPLICATE KEY UPDATE spend = spend + VALUES(spend), ...).
-- One table instead of LiteLLM's LiteLLM_DailyUserSpend and
-- LiteLLM_DailyTeamSpend: each of those is a GROUP BY of this one (by user_id
-- or team_id), and the writer makes one upsert per group, not two. Absent
-- dimensions are '' (not NULL), so they group. The seven dimensions do not
-- fit one InnoDB index, so group_key is their SHA-256 (length-prefixed, so
-- no two tuples share an encoding) and (date, group_key) is unique. MariaDB
-- refuses a generated column in a primary key, hence the surrogate id.
CREATE TABLE IF NOT EXISTS `sluice_daily_spend` (
  id                     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  `date`                 DATE           NOT NULL,  -- UTC day
  api_key                VARCHAR(255)   NOT NULL DEFAULT '',
  team_id                VARCHAR(255)   NOT NULL DEFAULT '',
  user_id                VARCHAR(255)   NOT NULL DEFAULT '',
  model_group            VARCHAR(255)   NOT NULL DEFAULT '',
  model                  VARCHAR(255)   NOT NULL DEFAULT '',
  custom_llm_provider    VARCHAR(64)    NOT NULL DEFAULT '',
  prompt_tokens          BIGINT         NOT NULL DEFAULT 0,
  completion_tokens      BIGINT         NOT NULL DEFAULT 0,
  cache_read_input_tokens BIGINT        NOT NULL DEFAULT 0,
  cache_creation_input_tokens BIGINT    NOT NULL DEFAULT 0,
  spend                  DECIMAL(20,10) NOT NULL DEFAULT 0,
  api_requests           BIGINT         NOT NULL DEFAULT 0,
  successful_requests    BIGINT         NOT NULL DEFAULT 0,
  failed_requests        BIGINT         NOT NULL DEFAULT 0,
  created_at             DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at             DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  group_key              BINARY(32) AS (UNHEX(SHA2(CONCAT_WS(',',
                             CHAR_LENGTH(api_key), CHAR_LENGTH(team_id), CHAR_LENGTH(user_id),
                             CHAR_LENGTH(model_group), CHAR_LENGTH(model),
                             CHAR_LENGTH(custom_llm_provider),
                             api_key, team_id, user_id, model_group, model, custom_llm_provider),
                           256))) PERSISTENT,
  PRIMARY KEY (id),
  UNIQUE KEY uq_daily_group (`date`, group_key),
  KEY idx_daily_key_date (api_key, `date`),
  KEY idx_daily_team_date (team_id, `date`),
  KEY idx_daily_user_date (user_id, `date`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

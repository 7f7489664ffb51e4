-- 003: stored responses of the Responses API (sluice_settings.responses_store),
-- for previous_response_id and GET/DELETE /v1/responses/{id}.
--
-- Same conventions as 001. One row per response sluice answered through chat
-- completions: the conversation as chat messages (JSON text, the answer
-- last) and the Response object the client got. A row belongs to the key
-- that made it (api_key: its token, '' for the master key) and is gone
-- after expires_at; sluice deletes expired rows as it writes new ones.
CREATE TABLE IF NOT EXISTS `sluice_responses` (
  response_id   VARCHAR(64)   NOT NULL,
  api_key       VARCHAR(255)  NOT NULL DEFAULT '',
  model         VARCHAR(255)  NOT NULL DEFAULT '',
  created_at    DATETIME(6)   NOT NULL,
  expires_at    DATETIME(6)   NOT NULL,
  messages      LONGTEXT      NOT NULL,
  response      LONGTEXT      NOT NULL,
  PRIMARY KEY (response_id),
  KEY sluice_responses_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

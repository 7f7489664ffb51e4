-- 001: virtual keys, teams, users, team memberships, shared budgets.
--
-- Tables and columns follow LiteLLM's Postgres schema (schema.prisma), so a
-- LiteLLM database imports as a mapping: text[] and jsonb columns become JSON
-- text (LONGTEXT with a JSON_VALID check; text[] must be a JSON array), Float
-- money becomes DECIMAL(20,10), timestamps are DATETIME(6) in UTC (sluice sets
-- time_zone '+00:00' on every connection). Ids compare byte for byte
-- (utf8mb4_nopad_bin), as Postgres text does. No foreign keys: LiteLLM's
-- tables reference each other loosely, and an import must not depend on the
-- order rows arrive in. See docs/database.md.
--
-- Applied once by `sluicectl migrate`, never edited after release. Every
-- statement can run again on a database where it already ran (IF NOT EXISTS):
-- MariaDB commits DDL statement by statement, so a file that failed half-way
-- is simply applied again once the cause is fixed.

-- Shared budget and limit rows, referenced by budget_id from keys and team
-- memberships.
CREATE TABLE IF NOT EXISTS `LiteLLM_BudgetTable` (
  budget_id              VARCHAR(255)   NOT NULL,
  max_budget             DECIMAL(20,10) NULL,
  soft_budget            DECIMAL(20,10) NULL,
  max_parallel_requests  INT            NULL,
  tpm_limit              BIGINT         NULL,
  rpm_limit              BIGINT         NULL,
  model_max_budget       LONGTEXT       NULL CHECK (JSON_VALID(model_max_budget)),
  budget_duration        VARCHAR(32)    NULL,      -- "30s", "1h", "1d", "30d", "1mo"
  budget_reset_at        DATETIME(6)    NULL,
  allowed_models         LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(allowed_models) AND JSON_TYPE(allowed_models) = 'ARRAY'),
  created_at             DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  created_by             VARCHAR(255)   NOT NULL DEFAULT '',
  updated_at             DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_by             VARCHAR(255)   NOT NULL DEFAULT '',
  PRIMARY KEY (budget_id),
  KEY idx_budget_reset (budget_reset_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS `LiteLLM_TeamTable` (
  team_id                VARCHAR(255)   NOT NULL,
  team_alias             VARCHAR(255)   NULL,
  organization_id        VARCHAR(255)   NULL,
  object_permission_id   VARCHAR(255)   NULL,
  admins                 LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(admins) AND JSON_TYPE(admins) = 'ARRAY'),
  members                LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(members) AND JSON_TYPE(members) = 'ARRAY'),
  members_with_roles     LONGTEXT       NOT NULL DEFAULT '[]' CHECK (JSON_VALID(members_with_roles)),
  metadata               LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(metadata)),
  max_budget             DECIMAL(20,10) NULL,
  soft_budget            DECIMAL(20,10) NULL,
  spend                  DECIMAL(20,10) NOT NULL DEFAULT 0,
  models                 LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(models) AND JSON_TYPE(models) = 'ARRAY'),
  max_parallel_requests  INT            NULL,
  tpm_limit              BIGINT         NULL,
  rpm_limit              BIGINT         NULL,
  budget_duration        VARCHAR(32)    NULL,
  budget_reset_at        DATETIME(6)    NULL,
  blocked                BOOLEAN        NOT NULL DEFAULT FALSE,
  created_at             DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at             DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  model_spend            LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(model_spend)),
  model_max_budget       LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(model_max_budget)),
  router_settings        LONGTEXT       NULL DEFAULT '{}' CHECK (JSON_VALID(router_settings)),
  team_member_permissions LONGTEXT      NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(team_member_permissions) AND JSON_TYPE(team_member_permissions) = 'ARRAY'),
  access_group_ids       LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(access_group_ids) AND JSON_TYPE(access_group_ids) = 'ARRAY'),
  policies               LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(policies) AND JSON_TYPE(policies) = 'ARRAY'),
  default_team_member_models LONGTEXT   NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(default_team_member_models) AND JSON_TYPE(default_team_member_models) = 'ARRAY'),
  budget_limits          LONGTEXT       NULL CHECK (JSON_VALID(budget_limits)),
  model_id               INT            NULL,      -- LiteLLM_ModelTable row: team model aliases
  allow_team_guardrail_config BOOLEAN   NOT NULL DEFAULT FALSE,
  PRIMARY KEY (team_id),
  UNIQUE KEY uq_team_model_id (model_id),
  KEY idx_team_alias (team_alias),
  KEY idx_team_org (organization_id),
  KEY idx_team_budget_reset (budget_reset_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE IF NOT EXISTS `LiteLLM_UserTable` (
  user_id                VARCHAR(255)   NOT NULL,
  user_alias             VARCHAR(255)   NULL,
  team_id                VARCHAR(255)   NULL,
  sso_user_id            VARCHAR(255)   NULL,      -- also the web server's REMOTE_USER mapping
  organization_id        VARCHAR(255)   NULL,
  object_permission_id   VARCHAR(255)   NULL,
  password               VARCHAR(255)   NULL,      -- a hash, never a clear password
  teams                  LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(teams) AND JSON_TYPE(teams) = 'ARRAY'),
  user_role              VARCHAR(64)    NULL,      -- proxy_admin, internal_user, ...
  max_budget             DECIMAL(20,10) NULL,
  spend                  DECIMAL(20,10) NOT NULL DEFAULT 0,
  user_email             VARCHAR(255)   NULL,
  models                 LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(models) AND JSON_TYPE(models) = 'ARRAY'),
  metadata               LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(metadata)),
  max_parallel_requests  INT            NULL,
  tpm_limit              BIGINT         NULL,
  rpm_limit              BIGINT         NULL,
  budget_duration        VARCHAR(32)    NULL,
  budget_reset_at        DATETIME(6)    NULL,
  allowed_cache_controls LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(allowed_cache_controls) AND JSON_TYPE(allowed_cache_controls) = 'ARRAY'),
  policies               LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(policies) AND JSON_TYPE(policies) = 'ARRAY'),
  model_spend            LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(model_spend)),
  model_max_budget       LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(model_max_budget)),
  created_at             DATETIME(6)    NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at             DATETIME(6)    NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (user_id),
  UNIQUE KEY uq_user_sso (sso_user_id),
  KEY idx_user_email (user_email),
  KEY idx_user_team (team_id),
  KEY idx_user_budget_reset (budget_reset_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- A user's spend and budget inside one team (LiteLLM's per-member budgets).
CREATE TABLE IF NOT EXISTS `LiteLLM_TeamMembership` (
  user_id                VARCHAR(255)   NOT NULL,
  team_id                VARCHAR(255)   NOT NULL,
  spend                  DECIMAL(20,10) NOT NULL DEFAULT 0,
  budget_id              VARCHAR(255)   NULL,
  PRIMARY KEY (user_id, team_id),
  KEY idx_membership_team (team_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- Virtual keys. token is the SHA-256 hex of the whole key ("sk-..."), exactly
-- as LiteLLM stores it: the key itself is never stored. key_alias is unique
-- here (LiteLLM checks it in code; a unique index makes it race-free).
-- soft_budget is sluice's own column (LiteLLM keeps a key's soft budget in its
-- LiteLLM_BudgetTable row); model_rpm_limit and model_tpm_limit live in
-- metadata, as in LiteLLM.
CREATE TABLE IF NOT EXISTS `LiteLLM_VerificationToken` (
  token                  VARCHAR(64)    NOT NULL,
  key_name               VARCHAR(255)   NULL,      -- "sk-...WXYZ": the last 4 characters only
  key_alias              VARCHAR(255)   NULL,
  soft_budget_cooldown   BOOLEAN        NOT NULL DEFAULT FALSE,
  spend                  DECIMAL(20,10) NOT NULL DEFAULT 0,
  expires                DATETIME(6)    NULL,
  models                 LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(models) AND JSON_TYPE(models) = 'ARRAY'),
  aliases                LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(aliases)),
  config                 LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(config)),
  router_settings        LONGTEXT       NULL DEFAULT '{}' CHECK (JSON_VALID(router_settings)),
  user_id                VARCHAR(255)   NULL,
  team_id                VARCHAR(255)   NULL,
  agent_id               VARCHAR(255)   NULL,
  project_id             VARCHAR(255)   NULL,
  permissions            LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(permissions)),
  max_parallel_requests  INT            NULL,
  metadata               LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(metadata)),
  blocked                BOOLEAN        NULL,
  tpm_limit              BIGINT         NULL,
  rpm_limit              BIGINT         NULL,
  max_budget             DECIMAL(20,10) NULL,
  soft_budget            DECIMAL(20,10) NULL,
  budget_duration        VARCHAR(32)    NULL,
  budget_reset_at        DATETIME(6)    NULL,
  allowed_cache_controls LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(allowed_cache_controls) AND JSON_TYPE(allowed_cache_controls) = 'ARRAY'),
  allowed_routes         LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(allowed_routes) AND JSON_TYPE(allowed_routes) = 'ARRAY'),
  policies               LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(policies) AND JSON_TYPE(policies) = 'ARRAY'),
  access_group_ids       LONGTEXT       NOT NULL DEFAULT '[]'
                         CHECK (JSON_VALID(access_group_ids) AND JSON_TYPE(access_group_ids) = 'ARRAY'),
  model_spend            LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(model_spend)),
  model_max_budget       LONGTEXT       NOT NULL DEFAULT '{}' CHECK (JSON_VALID(model_max_budget)),
  budget_id              VARCHAR(255)   NULL,
  organization_id        VARCHAR(255)   NULL,
  object_permission_id   VARCHAR(255)   NULL,
  created_at             DATETIME(6)    NULL DEFAULT CURRENT_TIMESTAMP(6),
  created_by             VARCHAR(255)   NULL,
  updated_at             DATETIME(6)    NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_by             VARCHAR(255)   NULL,
  last_active            DATETIME(6)    NULL,
  rotation_count         INT            NULL DEFAULT 0,
  auto_rotate            BOOLEAN        NULL DEFAULT FALSE,
  rotation_interval      VARCHAR(32)    NULL,
  last_rotation_at       DATETIME(6)    NULL,
  key_rotation_at        DATETIME(6)    NULL,
  budget_limits          LONGTEXT       NULL CHECK (JSON_VALID(budget_limits)),
  PRIMARY KEY (token),
  UNIQUE KEY uq_key_alias (key_alias),
  KEY idx_key_user_team (user_id, team_id),
  KEY idx_key_team (team_id),
  KEY idx_key_budget (budget_id),
  KEY idx_key_budget_reset (budget_reset_at, expires)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

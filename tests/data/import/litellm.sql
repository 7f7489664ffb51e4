-- The LiteLLM rows behind the exports in this directory, for PostgreSQL
-- (types as LiteLLM's Prisma schema creates them; budget_reset_at is
-- timestamptz here to have psql print an offset). See README.md.
CREATE TABLE "LiteLLM_VerificationToken" (
  token text PRIMARY KEY, key_name text, key_alias text,
  soft_budget_cooldown boolean NOT NULL DEFAULT false,
  spend double precision NOT NULL DEFAULT 0, expires timestamp(3), models text[],
  aliases jsonb NOT NULL DEFAULT '{}', metadata jsonb NOT NULL DEFAULT '{}', blocked boolean,
  tpm_limit bigint, max_budget double precision, budget_reset_at timestamptz,
  created_at timestamp(3) DEFAULT CURRENT_TIMESTAMP, allowed_routes text[] DEFAULT ARRAY[]::text[],
  future_col integer);
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, spend, expires, models,
  metadata, blocked, tpm_limit, max_budget, budget_reset_at, created_at) VALUES
 (encode(sha256('sk-pg-one'::bytea), 'hex'), 'sk-...-one',
  E'q "uo''te", back\\slash, comma,\nnew line\ttab, ünïcødé ☃ 🚀 (pg)',
  0.1 + 0.2, '2099-12-31 23:59:59.999', ARRAY['gpt-4o-mini', 'a "quoted", model\x', 'NULL', '', ' sp '],
  jsonb_build_object('note', E'x "y" \\ \n z ☃', 'n', 1.5, 'arr', jsonb_build_array(1, null, true)),
  NULL, 9000000000, 1e-05, '2026-01-31 12:00:00.123+05:30', '2026-01-02 03:04:05.678'),
 -- a LiteLLM without key hashing kept the key itself
 ('sk-pg-raw', 'sk-...-raw', NULL, 5, NULL, '{}', '{}', true, NULL, 5, NULL, '2026-01-01 00:00:00'),
 (encode(sha256('sk-pg-three'::bytea), 'hex'), NULL, '', 0, NULL, NULL, '{"tags": ["x"]}', false,
  NULL, NULL, NULL, NULL);
CREATE TABLE "LiteLLM_TeamMembership" (user_id text, team_id text, spend double precision DEFAULT 0,
  total_spend double precision, budget_id text, PRIMARY KEY (user_id, team_id));
INSERT INTO "LiteLLM_TeamMembership" VALUES ('u1', E't,1\n"x"', 1.5, 2.0, NULL);

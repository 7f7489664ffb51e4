// sluicectl import-litellm against a real MariaDB: exports written exactly as
// psql writes them from LiteLLM's Postgres (\copy ... CSV HEADER with text[]
// literals, jsonb text, t/f and timestamps; json_agg arrays and row_to_json
// lines) for budgets, teams, users, memberships and keys, with hostile
// strings (quotes, backslashes, commas, newlines, tabs, unicode). Checks the
// rows byte for byte, that the old raw keys authenticate through the gateway
// with the official openai client (model allowlist, carried-over spend
// against max_budget, expiry, blocking, a raw token from a LiteLLM without
// hashing), that a second import changes nothing, and that a bad file exits
// non-zero naming the row and column with nothing imported. No output ever
// holds a key or a token.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startHarness, sluicectlBin } from './lib/harness.mjs';
import { REPO_ROOT } from './lib/procs.mjs';
import { startMariaDB } from './lib/mariadb.mjs';

const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const rawKey = (what) => `sk-${what}-${crypto.randomBytes(9).toString('base64url')}`;
const hex = (s) => Buffer.from(s, 'utf8').toString('hex').toUpperCase();
const user = [{ role: 'user', content: 'hi' }];
/* Exports PostgreSQL 15's psql wrote (tests/data/import/README.md). */
const PG_DATA = path.join(REPO_ROOT, 'tests', 'data', 'import');
const PG_KEYS = { one: 'sk-pg-one', raw: 'sk-pg-raw', three: 'sk-pg-three' };

/* ---- psql's output formats ---- */

/* A Postgres text[] as array_out writes it. */
function pgArray(a) {
    const el = (s) => (s === '' || /[{},"\\\s]/.test(s) || /^null$/i.test(s)
        ? `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"` : s);
    return `{${a.map(el).join(',')}}`;
}
/* A value as COPY ... CSV writes it: NULL unquoted empty, "" for an empty string. */
function csvField(v) {
    if (v === null || v === undefined) return '';
    let s;
    if (Array.isArray(v) && v.every((e) => typeof e === 'string')) s = pgArray(v);   // text[]
    else if (typeof v === 'object') s = JSON.stringify(v, null, 1).replace(/\n */g, ' ');   // jsonb, spaced
    else if (typeof v === 'boolean') s = v ? 't' : 'f';
    else s = String(v);
    return s === '' || /[",\r\n]/.test(s) || s === '\\.' ? `"${s.replace(/"/g, '""')}"` : s;
}
/* psql -c "\copy (SELECT * FROM t) TO 'f' WITH CSV HEADER" */
function toCSV(cols, rows) {
    return [cols.join(','), ...rows.map((r) => cols.map((c) => csvField(r[c])).join(','))].join('\n') + '\n';
}
/* A CSV timestamp (timestamp(3) without time zone, as Prisma creates them) as JSON writes it. */
const jsonTime = (t) => (t === null || t === undefined ? null : t.replace(' ', 'T').replace(/\+00$/, '+00:00'));
/* psql -At -c "SELECT json_agg(t) FROM t": one array, ", \n " between rows */
const toJSONAgg = (rows) => `[${rows.map((r) => JSON.stringify(r)).join(', \n ')}]\n`;
/* psql -At -c "SELECT row_to_json(t) FROM t": one object per line */
const toJSONLines = (rows) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/* Runs sluicectl to its end: {code, stdout, stderr}. */
function run(args, input) {
    return new Promise((resolve, reject) => {
        const child = spawn(sluicectlBin(), args, {
            env: { ...process.env, SLUICE_SCHEMA_DIR: path.join(REPO_ROOT, 'schema'), DATABASE_URL: '', SLUICE_CONFIG: '' },
            stdio: ['pipe', 'pipe', 'pipe'],
        });
        const out = [];
        const err = [];
        const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
        child.stdout.on('data', (c) => out.push(c));
        child.stderr.on('data', (c) => err.push(c));
        child.on('error', reject);
        child.on('close', (code) => {
            clearTimeout(timer);
            resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
        child.stdin.end(input ?? '');
    });
}

describe('sluicectl import-litellm: a LiteLLM Postgres export, keys keep working', () => {
    let dir;
    let db;
    let h;
    const outputs = [];
    const files = {};
    const secrets = [];

    const HOSTILE = 'q "uo\'te", back\\slash, comma,\nnew line\ttab, ünïcødé ☃ 🚀';
    const TEAM = 'team-"1",\\ü';
    const keys = {
        allowed: rawKey('allowed'),
        broke: rawKey('broke'),
        expired: rawKey('expired'),
        blocked: rawKey('blocked'),
        unhashed: rawKey('unhashed'),
        plain: rawKey('plain'),
        fromjson: rawKey('fromjson'),
        fresh: rawKey('fresh'),
    };

    const ctl = async (args, input) => {
        const r = await run(['--config', h.files.config, ...args], input);
        outputs.push(r.stdout + r.stderr);
        return r;
    };
    const imp = (file, ...opts) => ctl(['import-litellm', ...opts, files[file]]);
    const client = (key) => new OpenAI({ apiKey: key, baseURL: h.baseURL, maxRetries: 0 });
    const chat = (key, model = 'gpt-4o-mini') => client(key).chat.completions.create({ model, messages: user });
    const failure = async (p) => {
        try {
            await p;
        } catch (e) {
            assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
            return e;
        }
        throw new Error('the request succeeded');
    };
    const one = async (q) => (await db.sql(q))[0];
    const count = async (table) => Number((await one(`SELECT COUNT(*) FROM ${table}`))[0]);
    const checksums = async () => db.sql('CHECKSUM TABLE LiteLLM_BudgetTable, LiteLLM_TeamTable, ' +
        'LiteLLM_UserTable, LiteLLM_TeamMembership, LiteLLM_VerificationToken');

    /* LiteLLM_VerificationToken rows as psql's CSV has them (a subset of the
     * columns, in LiteLLM's order, plus one this sluice does not know). */
    const keyCols = ['token', 'key_name', 'key_alias', 'soft_budget_cooldown', 'spend', 'expires', 'models',
        'aliases', 'config', 'user_id', 'team_id', 'permissions', 'max_parallel_requests', 'metadata',
        'blocked', 'tpm_limit', 'rpm_limit', 'max_budget', 'budget_duration', 'budget_reset_at',
        'allowed_cache_controls', 'model_spend', 'model_max_budget', 'budget_id', 'organization_id',
        'created_at', 'created_by', 'updated_at', 'updated_by', 'allowed_routes', 'policies',
        'rotation_count', 'auto_rotate', 'a_column_from_the_future'];
    const keyRow = (name, cols = {}) => ({
        token: sha(keys[name]), key_name: `sk-...${keys[name].slice(-4)}`, key_alias: `alias-${name}`,
        soft_budget_cooldown: false, spend: 0, expires: null, models: [], aliases: {}, config: {},
        user_id: 'u1', team_id: TEAM, permissions: {}, max_parallel_requests: null, metadata: {},
        blocked: null, tpm_limit: null, rpm_limit: null, max_budget: null, budget_duration: null,
        budget_reset_at: null, allowed_cache_controls: [], model_spend: {}, model_max_budget: {},
        budget_id: null, organization_id: null, created_at: '2026-01-02 03:04:05.678',
        created_by: 'default_user_id', updated_at: '2026-01-02 03:04:05.678', updated_by: 'default_user_id',
        allowed_routes: [], policies: [], rotation_count: 0, auto_rotate: false,
        a_column_from_the_future: 'x', ...cols,
    });
    const keyRows = () => [
        keyRow('allowed', {
            key_alias: HOSTILE, models: ['gpt-4o-mini', 'a "quoted", model\\x'], spend: 0.25, max_budget: 10,
            expires: '2099-12-31 23:59:59.999', tpm_limit: 100000, rpm_limit: 1000, budget_duration: '30d',
            metadata: { note: HOSTILE, nested: { list: [1, 2.5, null, true] } },
            model_spend: { 'gpt-4o-mini': 0.25 },
        }),
        keyRow('broke', { spend: 5, max_budget: 5 }),
        keyRow('expired', { expires: '2020-01-01 00:00:00+00' }),
        keyRow('blocked', { blocked: true }),
        // LiteLLM with hashing off kept the key itself in token
        keyRow('unhashed', { token: keys.unhashed, models: ['mock-gpt'] }),
        keyRow('plain', { user_id: null, team_id: null, models: null, metadata: null, spend: null }),
    ];

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-import-'));
        db = await startMariaDB({ dir });
        h = await startHarness({ generalSettings: { database_url: db.url() } });
        const m = await run(['--config', h.files.config, 'migrate']);
        assert.equal(m.code, 0, `migrate failed: ${m.stderr}`);
        for (const k of [...Object.values(keys), ...Object.values(PG_KEYS)]) secrets.push(k, sha(k));

        const write = async (name, text) => {
            files[name] = path.join(dir, name);
            await fsp.writeFile(files[name], text);
        };
        await write('budgets.csv', toCSV(
            ['budget_id', 'max_budget', 'soft_budget', 'max_parallel_requests', 'tpm_limit', 'rpm_limit',
                'model_max_budget', 'budget_duration', 'budget_reset_at', 'allowed_models', 'created_at',
                'created_by', 'updated_at', 'updated_by'],
            [{ budget_id: 'budget-1', max_budget: 100, soft_budget: null, max_parallel_requests: 4,
                tpm_limit: 1000, rpm_limit: null, model_max_budget: null, budget_duration: '1mo',
                budget_reset_at: '2026-02-01 00:00:00', allowed_models: [], created_at: '2026-01-01 10:00:00.5',
                created_by: 'admin', updated_at: '2026-01-01 10:00:00.5', updated_by: 'admin' }]));
        await write('teams.csv', toCSV(
            ['team_id', 'team_alias', 'organization_id', 'admins', 'members', 'members_with_roles',
                'metadata', 'max_budget', 'soft_budget', 'spend', 'models', 'max_parallel_requests',
                'tpm_limit', 'rpm_limit', 'budget_duration', 'budget_reset_at', 'blocked', 'created_at',
                'updated_at', 'model_spend', 'model_max_budget', 'model_id'],
            [{ team_id: TEAM, team_alias: HOSTILE, organization_id: null, admins: ['u1'], members: ['u1', 'NULL', ''],
                members_with_roles: [{ role: 'admin', user_id: 'u1' }], metadata: { note: HOSTILE },
                max_budget: 50, soft_budget: null, spend: 12.5, models: ['gpt-4o-mini', 'mock-gpt'],
                max_parallel_requests: null, tpm_limit: null, rpm_limit: null, budget_duration: null,
                budget_reset_at: null, blocked: false, created_at: '2026-01-01 00:00:00',
                updated_at: '2026-01-01 00:00:00', model_spend: {}, model_max_budget: {}, model_id: null }]));
        await write('users.json', toJSONAgg([
            { user_id: 'u1', user_alias: null, team_id: null, sso_user_id: null, password: null,
                teams: [TEAM], user_role: 'internal_user', max_budget: null, spend: 3.25,
                user_email: 'ü@example.com', models: [], metadata: { note: HOSTILE },
                created_at: jsonTime('2026-01-01 00:00:00.123'), updated_at: jsonTime('2026-01-01 00:00:00.123') },
            { user_id: 'u2', teams: [], user_role: 'proxy_admin', spend: 0, models: ['mock-gpt'], metadata: {},
                created_at: null, updated_at: null },
        ]));
        await write('memberships.jsonl', toJSONLines([
            { user_id: 'u1', team_id: TEAM, spend: 1.5, total_spend: 2.0, budget_id: 'budget-1' },
        ]));
        await write('keys.csv', toCSV(keyCols, keyRows()));
        await write('keys.jsonl', toJSONLines([{
            ...keyRow('fromjson', { models: ['mock-gpt'], spend: 0.1, metadata: { s: HOSTILE } }),
            expires: jsonTime('2099-01-01 00:00:00+00'), created_at: jsonTime('2026-01-02 03:04:05.678'),
            updated_at: jsonTime('2026-01-02 03:04:05.678'),
        }]));
        // Row 3 of 3 is wrong: nothing of the file may land, not even row 1.
        await write('bad-value.csv', toCSV(keyCols, [keyRow('fresh'), keyRow('plain'),
            keyRow('broke', { max_budget: 'lots' })]));
        await write('bad-token.csv', toCSV(keyCols, [keyRow('fresh'), keyRow('plain', { token: 'deadbeef-not-a-key' })]));
        await write('bad-quote.csv', `${toCSV(keyCols, [keyRow('fresh')])}"${sha(keys.fresh)}",unclosed"\n`);
        await write('dup-alias.jsonl', toJSONLines([keyRow('fresh', { key_alias: 'alias-broke' })]));
        await write('fresh.csv', toCSV(keyCols, [keyRow('fresh')]));
    });

    after(async () => {
        if (h) await h.stop();
        if (db) await db.stop();
        if (dir && process.env.SLUICE_KEEP_TMP !== '1') await fsp.rm(dir, { recursive: true, force: true });
    });

    it('imports budgets, teams, users, memberships and keys (table from the columns, or --table)', async () => {
        const want = [
            ['budgets.csv', [], /^budgets\.csv: 1 row into LiteLLM_BudgetTable \(1 new, 0 updated\)$/m],
            ['teams.csv', [], /: 1 row into LiteLLM_TeamTable \(1 new, 0 updated\)$/m],
            ['users.json', [], /: 2 rows into LiteLLM_UserTable \(2 new, 0 updated\)$/m],
            ['memberships.jsonl', ['--table', 'memberships'], /: 1 row into LiteLLM_TeamMembership \(1 new/m],
            ['keys.csv', [], /: 6 rows into LiteLLM_VerificationToken \(6 new, 0 updated\)$/m],
            ['keys.jsonl', ['--table', 'LiteLLM_VerificationToken'], /: 1 row into LiteLLM_VerificationToken/m],
        ];
        for (const [file, opts, re] of want) {
            const r = await imp(file, ...opts);
            assert.equal(r.code, 0, `${file}: ${r.stderr}`);
            assert.match(r.stdout.replace(files[file], path.basename(files[file])), re);
        }
        assert.equal(await count('LiteLLM_VerificationToken'), 7);
        assert.equal(await count('LiteLLM_UserTable'), 2);
    });

    it('reports the columns sluice lacks, once', async () => {
        const r = await imp('memberships.jsonl');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /ignoring columns LiteLLM_TeamMembership does not have: total_spend\n/);
        assert.equal(r.stderr.split('ignoring').length, 2);
        const k = await imp('keys.csv', '--dry-run');
        assert.match(k.stderr, /does not have: a_column_from_the_future\n/);
    });

    it('rows arrive byte for byte: hostile strings, arrays, JSON, money, timestamps in UTC', async () => {
        const [alias, models, metadata, spend, maxb, expires, created, tpm, blocked, modelSpend] = await one(
            'SELECT HEX(key_alias), HEX(models), HEX(metadata), spend, max_budget, expires, created_at, ' +
            `tpm_limit, blocked, HEX(model_spend) FROM LiteLLM_VerificationToken WHERE token = '${sha(keys.allowed)}'`);
        assert.equal(alias, hex(HOSTILE));
        assert.deepEqual(JSON.parse(Buffer.from(models, 'hex').toString()), ['gpt-4o-mini', 'a "quoted", model\\x']);
        assert.deepEqual(JSON.parse(Buffer.from(metadata, 'hex').toString()),
            { note: HOSTILE, nested: { list: [1, 2.5, null, true] } });
        assert.deepEqual(JSON.parse(Buffer.from(modelSpend, 'hex').toString()), { 'gpt-4o-mini': 0.25 });
        assert.equal(spend, '0.2500000000');
        assert.equal(maxb, '10.0000000000');
        assert.equal(expires, '2099-12-31 23:59:59.999000');
        assert.equal(created, '2026-01-02 03:04:05.678000');
        assert.equal(tpm, '100000');
        assert.equal(blocked, 'NULL');

        const plain = await one('SELECT models, metadata, spend, user_id, blocked FROM LiteLLM_VerificationToken ' +
            `WHERE token = '${sha(keys.plain)}'`);
        assert.deepEqual(plain, ['[]', '{}', '0.0000000000', 'NULL', 'NULL'], 'NULLs take the column defaults');
        assert.deepEqual(await one(`SELECT blocked, expires FROM LiteLLM_VerificationToken WHERE token = '${sha(keys.blocked)}'`),
            ['1', 'NULL']);
        assert.deepEqual(await one(`SELECT expires, HEX(metadata) FROM LiteLLM_VerificationToken WHERE token = '${sha(keys.fromjson)}'`),
            ['2099-01-01 00:00:00.000000', hex(JSON.stringify({ s: HOSTILE }))]);
        assert.equal(Number((await one(`SELECT COUNT(*) FROM LiteLLM_VerificationToken WHERE token = '${sha(keys.unhashed)}'`))[0]), 1,
            'a raw token is stored hashed');
        assert.equal(Number((await one(`SELECT COUNT(*) FROM LiteLLM_VerificationToken WHERE token LIKE 'sk-%'`))[0]), 0);

        const [teamId, teamAlias, members, roles, tspend, tmodels] = await one('SELECT HEX(team_id), HEX(team_alias), ' +
            'HEX(members), members_with_roles, spend, models FROM LiteLLM_TeamTable');
        assert.equal(teamId, hex(TEAM));
        assert.equal(teamAlias, hex(HOSTILE));
        assert.deepEqual(JSON.parse(Buffer.from(members, 'hex').toString()), ['u1', 'NULL', '']);
        assert.deepEqual(JSON.parse(roles), [{ role: 'admin', user_id: 'u1' }]);
        assert.equal(tspend, '12.5000000000');
        assert.deepEqual(JSON.parse(tmodels), ['gpt-4o-mini', 'mock-gpt']);

        const [teams, email, uspend, ucreated] = await one(
            "SELECT HEX(teams), HEX(user_email), spend, created_at FROM LiteLLM_UserTable WHERE user_id = 'u1'");
        assert.deepEqual(JSON.parse(Buffer.from(teams, 'hex').toString()), [TEAM]);
        assert.equal(email, hex('ü@example.com'));
        assert.equal(uspend, '3.2500000000');
        assert.equal(ucreated, '2026-01-01 00:00:00.123000');
        assert.deepEqual(await one('SELECT HEX(team_id), spend, budget_id FROM LiteLLM_TeamMembership'),
            [hex(TEAM), '1.5000000000', 'budget-1']);
        assert.deepEqual(await one('SELECT max_budget, tpm_limit, budget_duration, budget_reset_at, created_by, ' +
            'allowed_models FROM LiteLLM_BudgetTable'),
        ['100.0000000000', '1000', '1mo', '2026-02-01 00:00:00.000000', 'admin', '[]']);
    });

    it('importing again changes nothing', async () => {
        const before1 = await checksums();
        for (const [file, opts] of [['budgets.csv', []], ['teams.csv', []], ['users.json', []],
            ['memberships.jsonl', []], ['keys.csv', []], ['keys.jsonl', []]]) {
            const r = await imp(file, ...opts);
            assert.equal(r.code, 0, `${file}: ${r.stderr}`);
            assert.match(r.stdout, /\(0 new, \d+ updated\)/);
        }
        assert.deepEqual(await checksums(), before1);
        assert.equal(await count('LiteLLM_VerificationToken'), 7);
    });

    it('a wrong value: non-zero exit naming the row and the column, nothing imported', async () => {
        const n = await count('LiteLLM_VerificationToken');
        const sums = await checksums();
        let r = await imp('bad-value.csv');
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /row 3 \(line 4\), column max_budget: not a number; nothing imported/);
        assert.equal(r.stdout, '');
        r = await imp('bad-token.csv');
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /row 2 \(line 3\), column token: neither a SHA-256 hex digest/);
        assert.ok(!r.stderr.includes('deadbeef'), 'the bad token is not echoed');
        r = await imp('bad-quote.csv');
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /line 3: a quote inside an unquoted field; nothing imported/);
        r = await imp('dup-alias.jsonl');
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /row 1 \(line 1\), column key_alias: another key already has this key_alias/);
        assert.equal(await count('LiteLLM_VerificationToken'), n);
        assert.deepEqual(await checksums(), sums);
        assert.equal(Number((await one(`SELECT COUNT(*) FROM LiteLLM_VerificationToken WHERE token = '${sha(keys.fresh)}'`))[0]), 0);
    });

    it('the old keys authenticate through the gateway: allowlist, expiry, blocking', async () => {
        assert.ok((await chat(keys.allowed)).choices[0].message.content);
        let e = await failure(chat(keys.allowed, 'mock-gpt'));
        assert.equal(e.status, 401);
        assert.equal(e.type, 'key_model_access_denied');
        assert.ok((await chat(keys.unhashed, 'mock-gpt')).choices.length, 'a raw token from LiteLLM works');
        assert.ok((await chat(keys.fromjson, 'mock-gpt')).choices.length, 'a key from the JSON file works');
        assert.ok((await chat(keys.plain, 'mock-gpt')).choices.length, 'a NULL models list allows every model');
        e = await failure(chat(keys.expired));
        assert.equal(e.status, 401);
        assert.equal(e.type, 'expired_key');
        e = await failure(chat(keys.blocked));
        assert.equal(e.status, 401);
        assert.match(e.error.message, /key is blocked/);
        e = await failure(chat(rawKey('never-imported')));
        assert.equal(e.status, 401);
    });

    it('spend carries over: a key at its max_budget is refused, /key/info shows it', async () => {
        const e = await failure(chat(keys.broke));
        assert.equal(e.status, 400);
        assert.equal(e.type, 'budget_exceeded');
        assert.match(e.error.message, /^Budget has been exceeded! Current cost: 5(\.0)?, Max budget: 5(\.0)?$/);
        const r = await fetch(`${h.rootURL}/key/info?key=${encodeURIComponent(keys.fromjson)}`,
            { headers: { Authorization: `Bearer ${h.masterKey}` } });
        assert.equal(r.status, 200);
        const info = (await r.json()).info;
        assert.equal(info.spend, 0.1);
        assert.deepEqual(info.models, ['mock-gpt']);
    });

    it('usage errors, a missing file, an unknown table, --dry-run, and stdin', async () => {
        let r = await ctl(['import-litellm']);
        assert.equal(r.code, 2);
        r = await ctl(['import-litellm', '--table', 'orgs', files['fresh.csv']]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /--table is one of budgets, teams, users, memberships, keys/);
        r = await ctl(['import-litellm', path.join(dir, 'no-such-file.csv')]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /no-such-file\.csv: No such file or directory/);
        r = await ctl(['import-litellm', '-'], 'user_id,team_id\nu1,t1\n');
        assert.equal(r.code, 2);
        assert.match(r.stderr, /cannot tell which table.*--table/);
        r = await imp('fresh.csv', '--dry-run');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^dry run: .*1 row into LiteLLM_VerificationToken \(1 new, 0 updated\), rolled back$/m);
        assert.equal(Number((await one(`SELECT COUNT(*) FROM LiteLLM_VerificationToken WHERE token = '${sha(keys.fresh)}'`))[0]), 0);
        r = await ctl(['import-litellm', '--table', 'keys', '-'], await fsp.readFile(files['fresh.csv'], 'utf8'));
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^-: 1 row into LiteLLM_VerificationToken \(1 new, 0 updated\)$/m);
        assert.ok((await chat(keys.fresh)).choices.length, 'the key read from stdin works');
        r = await ctl(['import-litellm', '--table', 'keys', '-'], '\n');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /empty, nothing to import/);
    });

    it('real psql exports: CSV, json_agg and row_to_json give the same rows, and the keys work', async () => {
        const tokens = Object.values(PG_KEYS).map(sha).map((t) => `'${t}'`).join(', ');
        const snapshot = () => db.sql('SELECT token, HEX(key_name), HEX(key_alias), soft_budget_cooldown, spend, ' +
            'expires, HEX(JSON_COMPACT(models)), JSON_COMPACT(aliases), HEX(JSON_COMPACT(metadata)), blocked, ' +
            'tpm_limit, max_budget, budget_reset_at, created_at, JSON_COMPACT(allowed_routes) ' +
            `FROM LiteLLM_VerificationToken WHERE token IN (${tokens}) ORDER BY token`);
        let r = await ctl(['import-litellm', path.join(PG_DATA, 'keys.csv')]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /: 3 rows into LiteLLM_VerificationToken \(3 new, 0 updated\)$/m);
        assert.match(r.stderr, /does not have: future_col\n/);
        const fromCSV = await snapshot();
        assert.equal(fromCSV.length, 3, 'every row, the raw token hashed');
        for (const file of ['keys.json', 'keys.jsonl']) {
            r = await ctl(['import-litellm', path.join(PG_DATA, file)]);
            assert.equal(r.code, 0, `${file}: ${r.stderr}`);
            assert.match(r.stdout, /\(0 new, 3 updated\)$/m);
            assert.deepEqual(await snapshot(), fromCSV, `${file} gives what keys.csv gave`);
        }
        const one = fromCSV.find((row) => row[0] === sha(PG_KEYS.one));
        assert.equal(one[2], hex(`${HOSTILE} (pg)`));
        assert.deepEqual(JSON.parse(Buffer.from(one[6], 'hex').toString()),
            ['gpt-4o-mini', 'a "quoted", model\\x', 'NULL', '', ' sp ']);
        assert.deepEqual(JSON.parse(Buffer.from(one[8], 'hex').toString()),
            { n: 1.5, arr: [1, null, true], note: 'x "y" \\ \n z ☃' });
        assert.deepEqual([one[4], one[5], one[10], one[11], one[12], one[13]],
            ['0.3000000000', '2099-12-31 23:59:59.999000', '9000000000', '0.0000100000',
                '2026-01-31 06:30:00.123000', '2026-01-02 03:04:05.678000']);

        r = await ctl(['import-litellm', path.join(PG_DATA, 'memberships.csv')]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await db.sql("SELECT HEX(team_id), spend FROM LiteLLM_TeamMembership WHERE team_id LIKE 't,1%'"),
        [[hex('t,1\n"x"'), '1.5000000000']]);

        assert.ok((await chat(PG_KEYS.one)).choices.length);
        let e = await failure(chat(PG_KEYS.one, 'mock-gpt'));
        assert.equal(e.type, 'key_model_access_denied');
        e = await failure(chat(PG_KEYS.raw, 'mock-gpt'));
        assert.equal(e.status, 401);
        assert.match(e.error.message, /key is blocked/, 'the unhashed key was found, and is blocked');
        assert.ok((await chat(PG_KEYS.three, 'mock-gpt')).choices.length, 'NULL models: every model');
    });

    it('no output ever held a key or a token', () => {
        const all = outputs.join('\n');
        for (const s of secrets) assert.ok(!all.includes(s), 'a key or token was printed');
        assert.ok(!all.includes(db.password));
    });
});

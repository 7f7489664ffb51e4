// The key management API (LiteLLM's /key/* routes) against a real MariaDB:
// generate (response fields; the row holds only the SHA-256 of the key),
// info by key and by token, list, update, block/unblock, regenerate, delete;
// hostile aliases and metadata round-trip exactly through the prepared
// statements; only the master key may manage keys; bad fields get a 400
// naming the field; without a database the routes answer 503 saying so;
// and sluicectl key create/list/info/block/delete on the same database.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startHarness, sluicectlBin, MASTER_KEY } from './lib/harness.mjs';
import { REPO_ROOT, sleep, waitFor } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';

const SCHEMA_DIR = path.join(REPO_ROOT, 'schema');
const sha256 = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');

function runProgram(bin, args, { env = {}, timeoutMs = 30000 } = {}) {
    return new Promise((resolve, reject) => {
        const child = spawn(bin, args, { env: { ...process.env, ...env }, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        const out = [];
        const err = [];
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.stdout.on('data', (c) => out.push(c));
        child.stderr.on('data', (c) => err.push(c));
        child.on('error', reject);
        child.on('close', (code) => {
            clearTimeout(timer);
            resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
    });
}

describe('key management API (/key/*) and sluicectl key, on MariaDB', () => {
    let dir;
    let db;
    let h;

    /* One call: {status, body (parsed JSON or null), text}. */
    const call = async (method, route, { body, key = MASTER_KEY, raw } = {}) => {
        const headers = {};
        if (key) headers.authorization = `Bearer ${key}`;
        if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
        const r = await fetch(`${h.rootURL}${route}`, {
            method, headers, body: raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined,
        });
        const text = await r.text();
        let parsed = null;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        return { status: r.status, body: parsed, text };
    };
    const post = (route, body, o = {}) => call('POST', route, { body, ...o });
    const get = (route, o = {}) => call('GET', route, o);
    const ok = (r, what) => assert.equal(r.status, 200, `${what}: ${r.status} ${r.text}\n${h.errorLog().slice(-3000)}`);
    const rowOf = async (token) => (await db.sql(`SELECT token, key_name, key_alias, blocked, max_budget,
        models, metadata, rotation_count FROM LiteLLM_VerificationToken WHERE token = ${sqlString(token)}`))[0];
    const ctl = (args) => runProgram(sluicectlBin(), ['--config', h.files.config, ...args],
        { env: { SLUICE_SCHEMA_DIR: SCHEMA_DIR, DATABASE_URL: '', SLUICE_CONFIG: '' } });
    /* Whether key authenticates for a model call, polled across the key cache's TTL. */
    const authWithin = async (key, want, ms = 8000) => {
        const t0 = Date.now();
        for (;;) {
            const r = await get('/v1/models', { key });
            if ((r.status === 200) === want) return r;
            if (Date.now() - t0 > ms) assert.fail(`key ${want ? 'still rejected' : 'still accepted'}: ${r.status} ${r.text}`);
            await sleep(200);
        }
    };

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-admin-'));
        db = await startMariaDB({ dir });
        h = await startHarness({ generalSettings: { database_url: db.url() } });
        const m = await ctl(['migrate']);
        assert.equal(m.code, 0, m.stdout + m.stderr);
    });

    after(async () => {
        if (h) await h.stop();
        if (db) await db.stop();
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    it('generate: LiteLLM response fields, the raw key once, only its hash stored', async () => {
        const t0 = Date.now();
        ok(await post('/team/new', { team_id: 't-1' }), 'the team the key names (/key/generate checks it exists)');
        const r = await post('/key/generate', {
            key_alias: 'team-a-key', models: ['gpt-4o-mini', 'mock-gpt'], max_budget: 12.5, soft_budget: 10,
            budget_duration: '30d', duration: '1h', metadata: { owner: 'alice', n: 3 }, user_id: 'u-1',
            team_id: 't-1', tpm_limit: 1000, rpm_limit: 60, max_parallel_requests: 4,
            aliases: { 'gpt-4': 'gpt-4o-mini' }, model_max_budget: { 'gpt-4o-mini': { max_budget: 1 } },
        });
        ok(r, 'generate');
        const k = r.body;
        assert.match(k.key, /^sk-[A-Za-z0-9_-]{22}$/);
        assert.equal(k.key_name, `sk-...${k.key.slice(-4)}`);
        assert.equal(k.token, sha256(k.key));
        assert.equal(k.token_id, k.token);
        assert.equal(k.key_alias, 'team-a-key');
        assert.deepEqual(k.models, ['gpt-4o-mini', 'mock-gpt']);
        assert.equal(k.max_budget, 12.5);
        assert.equal(k.soft_budget, 10);
        assert.equal(k.budget_duration, '30d');
        assert.deepEqual(k.metadata, { owner: 'alice', n: 3 });
        assert.equal(k.user_id, 'u-1');
        assert.equal(k.team_id, 't-1');
        assert.equal(k.tpm_limit, 1000);
        assert.equal(k.rpm_limit, 60);
        assert.equal(k.max_parallel_requests, 4);
        assert.deepEqual(k.aliases, { 'gpt-4': 'gpt-4o-mini' });
        assert.deepEqual(k.model_max_budget, { 'gpt-4o-mini': { max_budget: 1 } });
        assert.equal(k.spend, 0);
        assert.equal(k.blocked, null);
        assert.equal(k.created_by, 'default_user_id');
        for (const f of ['expires', 'created_at', 'updated_at', 'budget_reset_at'])
            assert.match(k[f], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/, f);
        const exp = Date.parse(k.expires);
        assert.ok(exp >= t0 + 3600e3 - 5000 && exp <= Date.now() + 3600e3 + 5000, `expires ${k.expires}`);
        const reset = Date.parse(k.budget_reset_at);
        assert.ok(reset > Date.now() + 29 * 86400e3 && reset < Date.now() + 31 * 86400e3, k.budget_reset_at);

        const rows = await db.sql(`SELECT token, key_name FROM LiteLLM_VerificationToken
            WHERE key_alias = 'team-a-key'`);
        assert.deepEqual(rows, [[sha256(k.key), k.key_name]]);
        const leak = await db.sql(`SELECT COUNT(*) FROM LiteLLM_VerificationToken WHERE
            CONCAT_WS('|', token, key_name, key_alias, metadata, models) LIKE ${sqlString(`%${k.key}%`)}`);
        assert.equal(leak[0][0], '0', 'the raw key is stored nowhere');

        // A caller-chosen key (LiteLLM's "key"), and a second generate with no fields at all.
        const own = await post('/key/generate', { key: 'sk-my-own-key-0001' });
        ok(own, 'own key');
        assert.equal(own.body.key, 'sk-my-own-key-0001');
        assert.equal(own.body.token, sha256('sk-my-own-key-0001'));
        assert.equal(own.body.expires, null);
        assert.deepEqual(own.body.models, []);
        const again = await post('/key/generate', { key: 'sk-my-own-key-0001' });
        assert.equal(again.status, 400, again.text);
        const bare = await post('/key/generate', {});
        ok(bare, 'empty body');
        assert.notEqual(bare.body.key, k.key);
    });

    it('info by raw key and by token; list with filters and pages', async () => {
        const g = await post('/key/generate', { key_alias: 'info-me', models: ['mock-gpt'], max_budget: 2 });
        ok(g, 'generate');
        for (const which of [g.body.key, g.body.token]) {
            const r = await get(`/key/info?key=${encodeURIComponent(which)}`);
            ok(r, 'info');
            assert.equal(r.body.key, which);
            assert.equal(r.body.info.key_alias, 'info-me');
            assert.equal(r.body.info.key_name, g.body.key_name);
            assert.equal(r.body.info.max_budget, 2);
            assert.deepEqual(r.body.info.models, ['mock-gpt']);
            assert.ok(!('token' in r.body.info), 'info leaves the token out, as LiteLLM does');
        }
        const missing = await get(`/key/info?key=${'0'.repeat(64)}`);
        assert.equal(missing.status, 404, missing.text);
        assert.match(missing.body.error.message, /Key not found/);

        const all = await get('/key/list?size=100');
        ok(all, 'list');
        assert.ok(all.body.keys.includes(g.body.token), 'list has the token');
        assert.ok(all.body.keys.every((t) => /^[0-9a-f]{64}$/.test(t)), 'tokens only, never raw keys');
        assert.equal(all.body.total_count, all.body.keys.length);
        assert.equal(all.body.current_page, 1);
        assert.equal(all.body.total_pages, 1);
        const one = await get('/key/list?key_alias=info-me&return_full_object=true');
        ok(one, 'filtered list');
        assert.equal(one.body.total_count, 1);
        assert.equal(one.body.keys[0].token, g.body.token);
        assert.equal(one.body.keys[0].key_alias, 'info-me');
        const paged = await get('/key/list?size=1&page=2');
        ok(paged, 'page 2');
        assert.equal(paged.body.keys.length, 1);
        assert.equal(paged.body.total_pages, paged.body.total_count);
        for (const q of ['size=0', 'size=101', 'page=x', 'return_full_object=maybe']) {
            const bad = await get(`/key/list?${q}`);
            assert.equal(bad.status, 400, `${q}: ${bad.text}`);
            assert.ok(bad.body.error.message.includes(q.split('=')[0]), bad.text);
        }
    });

    it('update changes only the fields given; block and unblock', async () => {
        const g = await post('/key/generate', { key_alias: 'upd', models: ['a'], max_budget: 1, metadata: { keep: true } });
        ok(g, 'generate');
        const u = await post('/key/update', { key: g.body.key, models: ['gpt-4o-mini', 'b'], max_budget: 7.25 });
        ok(u, 'update');
        assert.equal(u.body.key, g.body.key);
        assert.deepEqual(u.body.models, ['gpt-4o-mini', 'b']);
        assert.equal(u.body.max_budget, 7.25);
        assert.equal(u.body.key_alias, 'upd');
        assert.deepEqual(u.body.metadata, { keep: true });
        const row = await rowOf(g.body.token);
        assert.equal(row[4], '7.2500000000');
        assert.deepEqual(JSON.parse(row[5]), ['gpt-4o-mini', 'b']);
        // Update by token, clearing the budget and setting an expiry.
        const u2 = await post('/key/update', { key: g.body.token, max_budget: null, duration: '30s' });
        ok(u2, 'update by token');
        assert.equal(u2.body.max_budget, null);
        assert.ok(Date.parse(u2.body.expires) > Date.now());
        const nf = await post('/key/update', { key: 'sk-no-such-key-at-all', max_budget: 1 });
        assert.equal(nf.status, 404, nf.text);

        const b = await post('/key/block', { key: g.body.key });
        ok(b, 'block');
        assert.equal(b.body.blocked, true);
        assert.equal(b.body.token, g.body.token);
        assert.equal((await rowOf(g.body.token))[3], '1');
        const ub = await post('/key/unblock', { key: g.body.token });
        ok(ub, 'unblock');
        assert.equal(ub.body.blocked, false);
        assert.equal((await rowOf(g.body.token))[3], '0');
        const nb = await post('/key/block', {});
        assert.equal(nb.status, 400);
        assert.match(nb.body.error.message, /key is required/);
    });

    it('a generated key works with the openai client; blocked, regenerated and deleted keys stop working', async () => {
        const g = await post('/key/generate', { key_alias: 'live', models: ['mock-gpt'] });
        ok(g, 'generate');
        const client = new OpenAI({ apiKey: g.body.key, baseURL: h.baseURL, maxRetries: 0 });
        const res = await client.chat.completions.create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(res.choices[0].message.content, 'Echo: hi');

        ok(await post('/key/block', { key: g.body.key }), 'block');
        const blocked = await authWithin(g.body.key, false);
        assert.equal(blocked.status, 401);
        ok(await post('/key/unblock', { key: g.body.key }), 'unblock');
        await authWithin(g.body.key, true);

        const rg = await post('/key/regenerate', { key: g.body.key });
        ok(rg, 'regenerate');
        assert.notEqual(rg.body.key, g.body.key);
        assert.equal(rg.body.token, sha256(rg.body.key));
        assert.equal(rg.body.key_name, `sk-...${rg.body.key.slice(-4)}`);
        assert.equal(rg.body.key_alias, 'live');
        assert.deepEqual(rg.body.models, ['mock-gpt']);
        assert.equal(rg.body.rotation_count, 1);
        assert.equal(await rowOf(g.body.token), undefined, 'the old token is gone');
        assert.equal((await rowOf(rg.body.token))[2], 'live');
        assert.equal((await authWithin(g.body.key, false)).status, 401);
        await authWithin(rg.body.key, true);

        // /key/{key}/regenerate with a chosen new key and a field change.
        const rg2 = await post(`/key/${rg.body.token}/regenerate`, { new_key: 'sk-rotated-by-path-1', max_budget: 3 });
        ok(rg2, 'regenerate by path');
        assert.equal(rg2.body.key, 'sk-rotated-by-path-1');
        assert.equal(rg2.body.max_budget, 3);
        assert.equal(rg2.body.rotation_count, 2);
        const gp = await post('/key/regenerate', { key: 'sk-rotated-by-path-1', grace_period: '1h' });
        assert.equal(gp.status, 400);
        assert.match(gp.body.error.message, /grace_period/);

        const d = await post('/key/delete', { keys: ['sk-rotated-by-path-1'] });
        ok(d, 'delete');
        assert.deepEqual(d.body, { deleted_keys: ['sk-rotated-by-path-1'] });
        assert.equal(await rowOf(sha256('sk-rotated-by-path-1')), undefined);
        assert.equal((await authWithin('sk-rotated-by-path-1', false)).status, 401);
        const log = h.sluiceLog();
        for (const k of [g.body.key, rg.body.key, 'sk-rotated-by-path-1']) assert.ok(!log.includes(k), 'no key in the log');
        assert.match(log, /"path":"\/key\/\{key\}\/regenerate"/);
    });

    it('delete by keys and by key_aliases, all or nothing', async () => {
        const a = (await post('/key/generate', { key_alias: 'del-a' })).body;
        const b = (await post('/key/generate', { key_alias: 'del-b' })).body;
        const c = (await post('/key/generate', { key_alias: 'del-c' })).body;
        const none = await post('/key/delete', { keys: [a.key, '0'.repeat(64)] });
        assert.equal(none.status, 404, none.text);
        assert.ok(await rowOf(a.token), 'nothing deleted when one key is missing');
        const byTok = await post('/key/delete', { keys: [a.key, b.token] });
        ok(byTok, 'delete keys');
        assert.deepEqual(byTok.body.deleted_keys, [a.key, b.token]);
        assert.equal(await rowOf(a.token), undefined);
        assert.equal(await rowOf(b.token), undefined);
        const byAlias = await post('/key/delete', { key_aliases: ['del-c'] });
        ok(byAlias, 'delete by alias');
        assert.deepEqual(byAlias.body, { deleted_keys: ['del-c'] });
        assert.equal(await rowOf(c.token), undefined);
        for (const body of [{}, { keys: [] }, { keys: 'x' }, { keys: [1] }, { key_aliases: {} }]) {
            const r = await post('/key/delete', body);
            assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
            assert.match(r.body.error.message, /keys|key_aliases/);
        }
    });

    it('hostile aliases and metadata round-trip exactly', async () => {
        const aliases = [
            "x'; DROP TABLE LiteLLM_VerificationToken; --",
            'back\\slash \\\' \\" end\\',
            '" OR "1"="1',
            'ünïcödé 日本語 🎉 \u202e',
            '%_ LIKE wildcards %',
            "line\nbreak\ttab\r",
        ];
        const metadata = {
            q: "' OR 1=1 --", bs: '\\\\x\\', dq: '"};{', u: 'ünïcödé 🎉', nested: { a: [1, '"', null, 2.5, true] },
            "key'with\"quotes": 'v', sql: 'SELECT * FROM LiteLLM_VerificationToken',
        };
        for (const alias of aliases) {
            const g = await post('/key/generate', { key_alias: alias, metadata, user_id: alias, models: [alias] });
            ok(g, `generate ${JSON.stringify(alias)}`);
            assert.equal(g.body.key_alias, alias);
            const i = await get(`/key/info?key=${encodeURIComponent(g.body.key)}`);
            ok(i, 'info');
            assert.equal(i.body.info.key_alias, alias);
            assert.equal(i.body.info.user_id, alias);
            assert.deepEqual(i.body.info.models, [alias]);
            assert.deepEqual(i.body.info.metadata, metadata);
            // lighttpd refuses control characters in a URL (url-ctrls-reject), even
            // percent-encoded: such an alias cannot be a query parameter there.
            if (!/[\x00-\x1f\x7f]/.test(alias)) {
                const l = await get(`/key/list?key_alias=${encodeURIComponent(alias)}&return_full_object=true`);
                ok(l, `list by alias ${JSON.stringify(alias)}`);
                assert.equal(l.body.total_count, 1, `exactly one key with alias ${JSON.stringify(alias)}`);
                assert.equal(l.body.keys[0].key_alias, alias);
            }
            const dup = await post('/key/generate', { key_alias: alias });
            assert.equal(dup.status, 400, dup.text);
            assert.ok(dup.body.error.message.includes(`Key with alias '${alias}' already exists`), dup.text);
        }
        const rows = await db.sql('SELECT COUNT(*) FROM LiteLLM_VerificationToken');
        assert.ok(Number(rows[0][0]) >= aliases.length, 'the table is still there');
        const del = await post('/key/delete', { key_aliases: aliases });
        ok(del, 'delete hostile aliases');
    });

    it('bad fields get a 400 naming the field', async () => {
        const cases = [
            [{ max_budget: 'abc' }, 'max_budget'], [{ max_budget: -1 }, 'max_budget'],
            [{ soft_budget: {} }, 'soft_budget'], [{ models: 'gpt-4' }, 'models'], [{ models: [1] }, 'models'],
            [{ duration: 'soon' }, 'duration'], [{ duration: '1y' }, 'duration'], [{ duration: 30 }, 'duration'],
            [{ budget_duration: '1x' }, 'budget_duration'], [{ tpm_limit: -1 }, 'tpm_limit'],
            [{ rpm_limit: 1.5 }, 'rpm_limit'], [{ max_parallel_requests: 'many' }, 'max_parallel_requests'],
            [{ metadata: [] }, 'metadata'], [{ metadata: 'x' }, 'metadata'], [{ aliases: 1 }, 'aliases'],
            [{ key_alias: 123 }, 'key_alias'], [{ key_alias: 'a'.repeat(256) }, 'key_alias'],
            [{ user_id: ['u'] }, 'user_id'], [{ blocked: 'yes' }, 'blocked'], [{ key: 'not-sk' }, 'key'],
            [{ model_max_budget: [] }, 'model_max_budget'], [{ max_parallel_requests: 3e9 }, 'max_parallel_requests'],
        ];
        for (const [body, field] of cases) {
            const r = await post('/key/generate', body);
            assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.status} ${r.text}`);
            assert.equal(r.body.error.type, 'invalid_request_error');
            assert.ok(r.body.error.message.startsWith(field), `${field}: ${r.body.error.message}`);
            const u = await post('/key/update', { key: '0'.repeat(64), ...body });
            assert.ok(u.status === 400 || u.status === 404, `update ${field}: ${u.status}`);
        }
        for (const raw of ['', '{', '[1]', '"x"', '{"max_budget": 1,}']) {
            const r = await call('POST', '/key/generate', { raw });
            assert.equal(r.status, 400, `${JSON.stringify(raw)}: ${r.text}`);
        }
        const up = await post('/key/update', { max_budget: 1 });
        assert.equal(up.status, 400);
        assert.match(up.body.error.message, /^key is required/);
        assert.equal((await get('/key/generate')).status, 405);
        assert.equal((await post('/key/info', {})).status, 405);
        assert.equal((await get('/key/nonsense')).status, 404);
        assert.doesNotMatch(h.sluiceLog(), /"status":\s*500/, 'no 500 for bad input');
    });

    it('only the master key manages keys; a virtual key may read its own info', async () => {
        const g = (await post('/key/generate', { key_alias: 'not-admin', models: ['mock-gpt'] })).body;
        const other = (await post('/key/generate', { key_alias: 'someone-else' })).body;
        const noKey = await post('/key/generate', {}, { key: null });
        assert.equal(noKey.status, 401, noKey.text);
        assert.equal(noKey.body.error.type, 'auth_error');
        const badKey = await post('/key/generate', {}, { key: 'sk-definitely-not-a-key' });
        assert.equal(badKey.status, 401, badKey.text);
        for (const [m, route, body] of [['POST', '/key/generate', {}], ['POST', '/key/update', { key: g.key, max_budget: 100 }],
            ['POST', '/key/delete', { keys: [other.key] }], ['POST', '/key/unblock', { key: g.key }],
            ['POST', '/key/regenerate', { key: g.key }], ['GET', '/key/list'],
            ['GET', `/key/info?key=${other.token}`]]) {
            const r = await call(m, route, { body, key: g.key });
            assert.equal(r.status, 403, `${route}: ${r.status} ${r.text}`);
            assert.match(r.body.error.message, /Admin-only endpoint/);
        }
        assert.ok(await rowOf(other.token), 'nothing was deleted');
        const self = await get(`/key/info?key=${encodeURIComponent(g.key)}`, { key: g.key });
        ok(self, 'own info by key');
        assert.equal(self.body.info.key_alias, 'not-admin');
        ok(await get(`/key/info?key=${g.token}`, { key: g.key }), 'own info by token');
        ok(await get('/key/info', { key: g.key }), 'own info without key=');
    });

    it('sluicectl key create, list, info, block, unblock, delete on the same database', async () => {
        let r = await ctl(['key', 'create', '--alias', "ctl 'key' \\ ü", '--models', 'mock-gpt,gpt-4o-mini',
            '--max-budget', '2.5', '--duration', '1d', '--user', 'u-ctl', '--team', 't-ctl']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const key = r.stdout.match(/^key: (sk-\S+)$/m)[1];
        const token = r.stdout.match(/^token: ([0-9a-f]{64})$/m)[1];
        assert.equal(token, sha256(key));
        assert.match(r.stderr, /shown this once/);
        const info = await get(`/key/info?key=${token}`);
        ok(info, 'the API sees the key sluicectl made');
        assert.equal(info.body.info.key_alias, "ctl 'key' \\ ü");
        assert.deepEqual(info.body.info.models, ['mock-gpt', 'gpt-4o-mini']);
        assert.equal(info.body.info.max_budget, 2.5);
        assert.equal(info.body.info.user_id, 'u-ctl');
        assert.equal(info.body.info.team_id, 't-ctl');
        assert.equal(info.body.info.created_by, 'sluicectl');
        assert.ok(Date.parse(info.body.info.expires) > Date.now() + 23 * 3600e3);

        r = await ctl(['key', 'list']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^token\tkey_name\tkey_alias/);
        assert.ok(r.stdout.split('\n').some((l) => l.startsWith(`${token}\t`) && l.includes("ctl 'key' \\ ü")), r.stdout);
        assert.ok(!r.stdout.includes(key), 'list never shows a raw key');

        for (const which of [key, token]) {
            r = await ctl(['key', 'info', which]);
            assert.equal(r.code, 0, r.stderr);
            assert.equal(JSON.parse(r.stdout).token, token);
        }
        r = await ctl(['key', 'block', key]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), `blocked ${token}`);
        assert.equal((await rowOf(token))[3], '1');
        assert.equal((await authWithin(key, false)).status, 401);
        r = await ctl(['key', 'unblock', token]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await rowOf(token))[3], '0');
        r = await ctl(['key', 'update', key, '--max-budget', '7', '--budget-duration', '30d',
            '--spend', '0.5', '--alias', 'ctl-updated', '--models', 'mock-gpt']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const upd = (await get(`/key/info?key=${token}`)).body.info;
        assert.equal(upd.max_budget, 7);
        assert.equal(upd.spend, 0.5);
        assert.equal(upd.budget_duration, '30d');
        assert.ok(Date.parse(upd.budget_reset_at) > Date.now() + 29 * 86400e3, upd.budget_reset_at);
        assert.equal(upd.key_alias, 'ctl-updated');
        assert.deepEqual(upd.models, ['mock-gpt']);
        r = await ctl(['key', 'update', key, '--spend', '-1']);
        assert.equal(r.code, 2, 'a negative spend is a usage error');
        assert.match(r.stderr, /--spend/);
        r = await ctl(['key', 'update', 'sk-no-such-key', '--max-budget', '1']);
        assert.equal(r.code, 6, r.stdout + r.stderr);
        r = await ctl(['key', 'delete', key]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), `deleted ${token}`);
        assert.equal(await rowOf(token), undefined);

        r = await ctl(['key', 'info', key]);
        assert.equal(r.code, 6, r.stdout + r.stderr);
        assert.match(r.stderr, /Key not found/);
        r = await ctl(['key', 'create', '--max-budget', 'lots']);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /--max-budget/);
        r = await ctl(['key', 'create', '--duration', 'forever']);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /duration/);
        r = await ctl(['key', 'frobnicate']);
        assert.equal(r.code, 2);
    });

    it('sluicectl spend report: spend per day and model, team or key from the daily aggregates', async () => {
        ok(await post('/team/new', { team_id: 't-report' }), 'a team');
        const g = await post('/key/generate', { key_alias: 'reported', team_id: 't-report' });
        ok(g, 'a key');
        const c = h.client({ apiKey: g.body.key });
        for (let i = 0; i < 3; i++) await c.chat.completions.create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'hi' }] });
        const day = new Date().toISOString().slice(0, 10);
        let r;
        await waitFor(async () => {
            r = await ctl(['spend', 'report', '--group-by', 'api_key', '--start', day, '--end', day]);
            return r.code === 0 && r.stdout.split('\n').some((l) => l.startsWith(`${day}\t${g.body.token}\treported\t`));
        }, { timeoutMs: 10000, intervalMs: 300, describe: () => r.stdout + r.stderr });
        const line = r.stdout.split('\n').find((l) => l.includes(g.body.token)).split('\t');
        assert.equal(line[5], '3', 'three requests');
        assert.match(r.stdout, /^day\tapi_key\tkey_alias\tspend\ttotal_tokens\tapi_requests$/m);
        r = await ctl(['spend', 'report', '--group-by', 'team']);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.split('\n').some((l) => l.startsWith(`${day}\tt-report\t`)), r.stdout);
        r = await ctl(['spend', 'report', '--group-by', 'planet']);
        assert.equal(r.code, 2);
        r = await ctl(['spend', 'report', '--start', 'yesterday']);
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.match(r.stderr, /start_date/);
    });

    it('without a database the key routes answer 503 saying so', async () => {
        const h2 = await startHarness();
        try {
            const r = await fetch(`${h2.rootURL}/key/generate`, {
                method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
                body: '{}',
            });
            assert.equal(r.status, 503);
            const b = await r.json();
            assert.match(b.error.message, /^DB not connected/);
            assert.match(b.error.message, /database_url/);
            const l = await fetch(`${h2.rootURL}/key/list`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
            assert.equal(l.status, 503);
        } finally {
            await h2.stop();
        }
    });
});

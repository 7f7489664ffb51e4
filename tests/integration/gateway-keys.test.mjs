// Virtual keys enforced on the data plane, against a real MariaDB and
// memcached: keys are written straight into LiteLLM_VerificationToken with
// SQL (token = SHA-256 hex of the raw key), then used through the official
// openai SDK. Checks LiteLLM's statuses, types and messages for unknown,
// blocked, expired and over-budget keys and for a model outside the key's
// list; /v1/models per key; the cache (a block written behind sluice's back
// takes effect within user_api_key_cache_ttl, the database is not asked per
// request, the snapshot is in memcached); and a database outage (a key in
// use keeps working, an unknown key gets 503: fail closed).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startHarness, migrate } from './lib/harness.mjs';
import { sleep } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';
import { startMemcached } from './lib/memcached.mjs';

const TTL_S = 5;   /* user_api_key_cache_ttl's default in sluice */
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const rawKey = (what) => `sk-${what}-${crypto.randomBytes(9).toString('base64url')}`;
const user = [{ role: 'user', content: 'hi' }];

describe('virtual keys: lookup, cache, allowlists, budgets, expiry, blocking', () => {
    let dir;
    let db;
    let mc;
    let h;
    const keys = {};

    const client = (key) => h.client({ apiKey: key });
    const chat = (key, model = 'gpt-4o-mini') =>
        client(key).chat.completions.create({ model, messages: user });
    const insertKey = async (name, cols = {}) => {
        const raw = rawKey(name);
        const c = { token: sha(raw), key_name: `sk-...${raw.slice(-4)}`, key_alias: name, ...cols };
        const names = Object.keys(c);
        await db.sql(`INSERT INTO LiteLLM_VerificationToken (${names.join(', ')}) VALUES (` +
            `${names.map((n) => (c[n] === null ? 'NULL' : sqlString(String(c[n])))).join(', ')})`);
        keys[name] = raw;
        return raw;
    };
    /* Rejects with an APIError; returns it. */
    const failure = async (p) => {
        try {
            await p;
        } catch (e) {
            assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
            return e;
        }
        throw new Error('the request succeeded');
    };
    const queries = async () => {
        const rows = await db.sql("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Com_stmt_execute')");
        return rows.reduce((n, [, v]) => n + Number(v), 0);
    };

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-keys-'));
        db = await startMariaDB({ dir });
        mc = await startMemcached({ dir });
        /* The spend writer flushes only at 200 records and never resets
         * budgets here: the statement count below is the key lookups'. */
        h = await startHarness({
            generalSettings: { database_url: db.url(), memcached_servers: [mc.server] },
            sluiceSettings: { spend_flush_interval_ms: 600000, budget_reset_interval_ms: 86400000 },
        });
        await migrate(h);
        await insertKey('allowed', { models: JSON.stringify(['gpt-4o-mini']) });
        await insertKey('anymodel', {});
        await insertKey('proxyall', { models: JSON.stringify(['all-proxy-models']) });
        await insertKey('blocked', { blocked: 1 });
        await insertKey('expired', { expires: '2020-01-01 00:00:00' });
        await insertKey('future', { expires: '2099-01-01 00:00:00' });
        await insertKey('broke', { spend: '1.5', max_budget: '1' });
        await insertKey('tobeblocked', {});
        await insertKey('counted', {});
        await insertKey('aliased', { models: JSON.stringify(['fast']), aliases: JSON.stringify({ fast: 'mock-gpt' }) });
    });

    after(async () => {
        if (h) await h.stop();
        if (mc) await mc.stop();
        if (db) await db.stop();
        if (dir && process.env.SLUICE_KEEP_TMP !== '1') await fsp.rm(dir, { recursive: true, force: true });
    });

    it('a key with a models list may call that model', async () => {
        const r = await chat(keys.allowed);
        assert.ok(r.choices[0].message.content);
    });

    it('another model → 401 key_model_access_denied with LiteLLM\'s message', async () => {
        const e = await failure(chat(keys.allowed, 'mock-gpt'));
        assert.equal(e.status, 401);
        assert.equal(e.type, 'key_model_access_denied');
        assert.equal(e.param, 'model');
        assert.equal(e.code, '401');
        assert.equal(e.error.message,
            "key not allowed to access model. This key can only access models=['gpt-4o-mini']. Tried to access mock-gpt");
    });

    it('a key without models, and all-proxy-models, may call every model', async () => {
        assert.ok((await chat(keys.anymodel, 'mock-gpt')).choices.length);
        assert.ok((await chat(keys.anymodel, 'gpt-4o-mini')).choices.length);
        assert.ok((await chat(keys.proxyall, 'mock-gpt')).choices.length);
        assert.ok((await chat(keys.future, 'mock-gpt')).choices.length, 'a key expiring in 2099');
    });

    it('/v1/models lists only what the key may use', async () => {
        const ids = async (k) => (await client(k).models.list()).data.map((m) => m.id).sort();
        assert.deepEqual(await ids(keys.allowed), ['gpt-4o-mini']);
        const all = await ids(h.masterKey);
        assert.ok(all.length > 2 && all.includes('mock-gpt'));
        assert.deepEqual(await ids(keys.anymodel), all);
        const e = await failure(client(keys.allowed).models.retrieve('mock-gpt'));
        assert.equal(e.status, 404);
    });

    it('unknown key → 401 auth_error; a raw key without sk- → 401 "Virtual Key expected"', async () => {
        let e = await failure(chat(rawKey('nosuch')));
        assert.equal(e.status, 401);
        assert.equal(e.type, 'auth_error');
        assert.match(e.error.message, /^Authentication Error, Invalid proxy server token passed\./);
        e = await failure(chat('not-a-litellm-key'));
        assert.equal(e.status, 401);
        assert.equal(e.error.message,
            "Authentication Error, LiteLLM Virtual Key expected. Received=****, expected to start with 'sk-'.");
        assert.ok(!e.error.message.includes('not-a-litellm-key'));
    });

    it('blocked key → 401', async () => {
        const e = await failure(chat(keys.blocked));
        assert.equal(e.status, 401);
        assert.equal(e.type, 'auth_error');
        assert.equal(e.error.message,
            "Authentication Error, key is blocked. Update via /key/unblock if you're an admin");
    });

    it('expired key → 401 expired_key', async () => {
        const e = await failure(chat(keys.expired));
        assert.equal(e.status, 401);
        assert.equal(e.type, 'expired_key');
        assert.equal(e.param, `sk-...${keys.expired.slice(-4)}`);
        assert.match(e.error.message,
            /^Authentication Error - Expired Key\. Key Expiry time 2020-01-01 00:00:00\+00:00 and current time \d{4}-/);
    });

    it('over budget → 400 budget_exceeded', async () => {
        const e = await failure(chat(keys.broke));
        assert.equal(e.status, 400);
        assert.equal(e.type, 'budget_exceeded');
        assert.equal(e.code, '400');
        assert.equal(e.error.message, 'Budget has been exceeded! Current cost: 1.5, Max budget: 1.0');
    });

    it('a key\'s model aliases route its own name to a model group', async () => {
        const r = await chat(keys.aliased, 'fast');
        assert.match(r.choices[0].message.content, /hi/);
        assert.equal(r.model, 'fast', 'the answer names the model asked for');
        const e = await failure(chat(keys.anymodel, 'fast'));
        assert.equal(e.status, 400, 'another key has no such model');
        const d = await failure(chat(keys.aliased, 'gpt-4o-mini'));
        assert.equal(d.status, 401, 'the alias does not widen the key\'s list');
        assert.equal(d.error.type, 'key_model_access_denied');
    });

    it('the master key still works', async () => {
        assert.ok((await chat(h.masterKey, 'mock-gpt')).choices.length);
    });

    it('the snapshot is in memcached under sluice:key:<token>', async () => {
        const v = await mc.command(`get sluice:key:${sha(keys.allowed)}`, { until: /END\r\n$/ });
        assert.match(v, /^VALUE sluice:key:[0-9a-f]{64} /);
        assert.ok(v.includes('"gpt-4o-mini"') && !v.includes(keys.allowed), v);
    });

    it('a key created after a failed try works within a second or two', async () => {
        const raw = rawKey('late');
        assert.equal((await failure(chat(raw))).status, 401);
        await db.sql(`INSERT INTO LiteLLM_VerificationToken (token) VALUES (${sqlString(sha(raw))})`);
        const t0 = Date.now();
        for (;;) {
            try {
                await chat(raw, 'mock-gpt');
                break;
            } catch (e) {
                assert.equal(e.status, 401);
                assert.ok(Date.now() - t0 < 2500, 'the negative cache outlived a second');
                await sleep(100);
            }
        }
    });

    it('a block written behind sluice\'s back takes effect within the cache TTL', async () => {
        assert.ok((await chat(keys.tobeblocked, 'mock-gpt')).choices.length);
        await db.sql(`UPDATE LiteLLM_VerificationToken SET blocked = TRUE WHERE token = ${sqlString(sha(keys.tobeblocked))}`);
        const t0 = Date.now();
        for (;;) {
            try {
                await chat(keys.tobeblocked, 'mock-gpt');
            } catch (e) {
                assert.equal(e.status, 401);
                assert.match(e.error.message, /key is blocked/);
                break;
            }
            assert.ok(Date.now() - t0 < (TTL_S + 1) * 1000, 'still served more than TTL + 1 s after the block');
            await sleep(100);
        }
    });

    it('steady state costs the database (almost) nothing', async () => {
        assert.ok((await chat(keys.counted, 'mock-gpt')).choices.length);   /* warm */
        const before = await queries();
        for (let i = 0; i < 50; i++) await chat(keys.counted, 'mock-gpt');
        const used = (await queries()) - before;
        assert.ok(used <= 5, `${used} statements for 50 requests with one key`);
    });

    it('database frozen (SIGSTOP): a key in use answers at once, an unknown key gets 503 within the time-outs', async () => {
        assert.ok((await chat(keys.anymodel, 'mock-gpt')).choices.length);
        process.kill(db.child.pid, 'SIGSTOP');
        try {
            for (let i = 0; i < 5; i++) {
                const t0 = Date.now();
                assert.ok((await chat(keys.anymodel, 'mock-gpt')).choices.length, 'cached key');
                assert.ok(Date.now() - t0 < 1500, `a cached key does not wait for the database (${Date.now() - t0} ms)`);
            }
            const t0 = Date.now();
            const e = await failure(client(rawKey('frozen')).chat.completions.create(
                { model: 'mock-gpt', messages: user }, { maxRetries: 0, timeout: 30000 }));
            assert.equal(e.status, 503);
            assert.ok(Date.now() - t0 < 12000, `fails closed within the time-outs (${Date.now() - t0} ms)`);
        } finally {
            process.kill(db.child.pid, 'SIGCONT');
        }
        const r = await db.sql('SELECT 1');
        assert.equal(Number(r[0][0]), 1, 'the database is back');
    });

    it('database down: a key in use keeps working, an unknown key gets 503', async () => {
        assert.ok((await chat(keys.anymodel, 'mock-gpt')).choices.length);
        await db.stop();
        assert.ok((await chat(keys.anymodel, 'mock-gpt')).choices.length, 'cached key');
        assert.ok((await chat(h.masterKey, 'mock-gpt')).choices.length, 'master key');
        const e = await failure(chat(rawKey('unknown')));
        assert.equal(e.status, 503);
        /* past the TTL, the key in use is still served from the stale cache */
        await sleep((TTL_S + 1) * 1000);
        assert.ok((await chat(keys.anymodel, 'mock-gpt')).choices.length, 'cached key past its TTL');
        db = null;
    });
});

// Budgets that hold under concurrency, against a real MariaDB and memcached
// shared by TWO gateways (two lighttpd instances, each with its own sluice
// processes). Each call reserves an estimate of its cost in a memcached
// counter at admission and settles it with the real cost, so a burst of
// concurrent calls cannot overspend a key's or a team's budget by more than
// the calls in flight when it ran out. Without the reservation every call of
// the burst would see the same cached spend (0) and all would pass. Also: a
// budget whose period ended admits again at once and the writer's reset job
// writes the next period to the database; /key/update {spend: 0} starts the
// live counter again from the database's figure.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startHarness, MASTER_KEY, migrate } from './lib/harness.mjs';
import { waitFor } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';
import { startMemcached } from './lib/memcached.mjs';

const PRICES = { input_cost_per_token: 0.0000015, output_cost_per_token: 0.000002 };
const MAX_TOKENS = 50;
const user = [{ role: 'user', content: 'count these few words please' }];
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const rawKey = (what) => `sk-${what}-${crypto.randomBytes(9).toString('base64url')}`;
/* What sluice reserves per call, at most: the body (well under 400 bytes,
 * so under 101 prompt tokens) and MAX_TOKENS of output. */
const EST_MAX = 101 * PRICES.input_cost_per_token + MAX_TOKENS * PRICES.output_cost_per_token;
const utc = (ms) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

describe('budgets: reserved at admission, settled with the real cost, across two gateways', () => {
    let dir;
    let db;
    let mc;
    const hs = [];

    const insert = async (table, cols) => {
        const names = Object.keys(cols);
        await db.sql(`INSERT INTO ${table} (${names.join(', ')}) VALUES (` +
            `${names.map((n) => (cols[n] === null ? 'NULL' : sqlString(String(cols[n])))).join(', ')})`);
    };
    const insertKey = async (name, cols = {}) => {
        const raw = rawKey(name);
        await insert('LiteLLM_VerificationToken', { token: sha(raw), key_alias: name, ...cols });
        return raw;
    };
    /* One call on gateway i: 'ok' with its cost, or 'budget' when refused so. */
    const call = async (i, key) => {
        try {
            const r = await hs[i % 2].client({ apiKey: key, maxRetries: 0 }).chat.completions
                .create({ model: 'mock-gpt', messages: user, max_tokens: MAX_TOKENS });
            return { ok: true, cost: r.usage.prompt_tokens * PRICES.input_cost_per_token +
                r.usage.completion_tokens * PRICES.output_cost_per_token };
        } catch (e) {
            assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
            assert.equal(e.status, 400, e.message);
            assert.equal(e.error?.type, 'budget_exceeded', JSON.stringify(e.error));
            return { ok: false, message: e.error.message };
        }
    };
    const burst = (n, keyOf) => Promise.all(Array.from({ length: n }, (_, i) => call(i, keyOf(i))));
    const spendOf = async (table, col, id) =>
        Number((await db.sql(`SELECT spend FROM ${table} WHERE ${col} = ${sqlString(id)}`))[0][0]);
    const rowsFor = async (where) =>
        Number((await db.sql(`SELECT COUNT(*) FROM LiteLLM_SpendLogs WHERE ${where}`))[0][0]);
    const admin = (h, route, body) => fetch(`${h.rootURL}${route}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
    });

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-budgets-'));
        db = await startMariaDB({ dir });
        mc = await startMemcached({ dir });
        const settings = {
            generalSettings: { database_url: db.url(), memcached_servers: [mc.server] },
            modelParams: { 'mock-gpt': PRICES },
            sluiceSettings: { budget_reset_interval_ms: 200, spend_flush_interval_ms: 200 },
        };
        hs.push(await startHarness(settings), await startHarness(settings));
        await migrate(hs[0]);
    });

    after(async () => {
        for (const h of hs) await h.stop();
        if (mc) await mc.stop();
        if (db) await db.stop();
        if (dir && process.env.SLUICE_KEEP_TMP !== '1') await fsp.rm(dir, { recursive: true, force: true });
    });

    it('a burst of 60 concurrent calls on two gateways stays within the key\'s budget + one call', async () => {
        const BUDGET = 0.0005;
        const key = await insertKey('burst', { max_budget: String(BUDGET) });
        const results = await burst(60, () => key);
        const ok = results.filter((r) => r.ok);
        const refused = results.filter((r) => !r.ok);
        const spent = ok.reduce((s, r) => s + r.cost, 0);
        assert.ok(ok.length >= 1, 'some calls were admitted');
        assert.ok(refused.length >= 1, `some calls were refused (admitted ${ok.length}, spent ${spent})`);
        assert.ok(spent <= BUDGET + EST_MAX,
            `spent ${spent} <= budget ${BUDGET} + one call's reservation ${EST_MAX} (admitted ${ok.length})`);
        assert.match(refused[0].message, /^Budget has been exceeded! Current cost: [0-9.e-]+, Max budget: 0\.0005$/);
        await waitFor(async () => (await rowsFor(`api_key = ${sqlString(sha(key))}`)) === ok.length,
            { timeoutMs: 10000, intervalMs: 100, describe: () => `${ok.length} spend log rows` });
        const dbSpend = await spendOf('LiteLLM_VerificationToken', 'token', sha(key));
        assert.ok(Math.abs(dbSpend - spent) < 1e-9, `the database has the same spend: ${dbSpend} vs ${spent}`);
    });

    it('a team budget holds across two keys on two gateways', async () => {
        const BUDGET = 0.0004;
        await insert('LiteLLM_TeamTable', { team_id: 'team-burst', max_budget: String(BUDGET) });
        const a = await insertKey('team-a', { team_id: 'team-burst' });
        const b = await insertKey('team-b', { team_id: 'team-burst' });
        const results = await burst(60, (i) => (i % 4 < 2 ? a : b));
        const ok = results.filter((r) => r.ok);
        const spent = ok.reduce((s, r) => s + r.cost, 0);
        assert.ok(ok.length >= 1 && ok.length < 60, `admitted ${ok.length} of 60`);
        assert.ok(spent <= BUDGET + EST_MAX, `team spent ${spent} <= ${BUDGET} + ${EST_MAX}`);
        const refused = results.find((r) => !r.ok);
        assert.match(refused.message, /^Budget has been exceeded! Team=team-burst Current cost: [0-9.e-]+, Max budget: 0\.0004$/);
        await waitFor(async () => Math.abs(await spendOf('LiteLLM_TeamTable', 'team_id', 'team-burst') - spent) < 1e-9,
            { timeoutMs: 10000, intervalMs: 100, describe: () => `team spend ${spent} in the database` });
    });

    it('with much of the budget left, calls run on leases, which go back to memcached when idle', async () => {
        const key = await insertKey('leased', { max_budget: '10' });
        const results = await burst(60, () => key);
        assert.ok(results.every((r) => r.ok), 'all admitted');
        const spent = results.reduce((s, r) => s + r.cost, 0);
        const name = `sluice:bud:k:${sha(sha(key))}:0`;
        let counter;
        await waitFor(async () => {
            const got = await mc.command(`get ${name}`, { until: /END\r\n$/ });
            /* memcached pads a value that shrank by a decrement with spaces */
            counter = Number((/\r\n(\d+) *\r\n/.exec(got) || [])[1]) / 1e10;
            return Math.abs(counter - spent) < 1e-9;
        }, { timeoutMs: 5000, intervalMs: 100,
            describe: () => `the live counter (${counter}) back to the real spend (${spent})` });
    });

    it('model_max_budget: the key\'s budget for one model, with LiteLLM\'s message', async () => {
        const key = await insertKey('per-model', {
            model_max_budget: JSON.stringify({ 'mock-gpt': { budget_limit: '0.00005', time_period: '1d' } }),
        });
        const first = await call(0, key);
        assert.equal(first.ok, true, first.message);
        let r;
        for (let i = 0; i < 5 && (r = await call(i, key)).ok; i++);
        assert.equal(r.ok, false, 'the model budget ran out');
        assert.equal(r.message, `LiteLLM Virtual Key: ${sha(key)}, key_alias: per-model, exceeded budget for model=mock-gpt`);
        const other = await hs[0].client({ apiKey: key, maxRetries: 0 }).chat.completions
            .create({ model: 'gpt-4o-mini', messages: user });
        assert.ok(other.choices.length, 'another model has no such budget');
    });

    it('a user over budget gets LiteLLM\'s ExceededBudget message', async () => {
        await insert('LiteLLM_UserTable', { user_id: 'user-broke', max_budget: '0.5', spend: '0.75' });
        const key = await insertKey('user-k', { user_id: 'user-broke' });
        const r = await call(0, key);
        assert.equal(r.ok, false);
        assert.equal(r.message, 'ExceededBudget: User=user-broke over budget. Spend=0.75, Budget=0.5');
    });

    it('a budget whose period ended admits again at once; the reset job writes the next period', async () => {
        const resetAt = Date.now() + 2500;
        const key = await insertKey('periodic', {
            max_budget: '0.00001', spend: '1', budget_duration: '3s', budget_reset_at: utc(resetAt),
        });
        assert.equal((await call(0, key)).ok, false, 'over budget in this period');
        await waitFor(async () => Date.now() > resetAt + 50, { timeoutMs: 5000, intervalMs: 50 });
        const first = await call(1, key);
        assert.equal(first.ok, true, `the new period admits: ${first.message}`);
        const second = await call(0, key);
        assert.equal(second.ok, false, 'and its own budget applies: one call already exceeds it');
        let row;
        await waitFor(async () => {
            [row] = await db.sql(`SELECT spend, UNIX_TIMESTAMP(budget_reset_at) FROM LiteLLM_VerificationToken
                WHERE token = ${sqlString(sha(key))}`);
            return Number(row[0]) < 0.001 && Number(row[1]) * 1000 > resetAt;
        }, { timeoutMs: 8000, intervalMs: 100, describe: () => `a reset row: ${JSON.stringify(row)}` });
        assert.equal(Math.round(Number(row[1]) * 1000 - resetAt) % 3000, 0,
            'the next reset is on the period boundary: the old one + k x 3 s');
    });

    it('/key/update spend: 0 starts the live counter again from the database', async () => {
        const key = await insertKey('refill', { max_budget: '0.0001' });
        let r;
        for (let i = 0; i < 20 && (r = await call(i, key)).ok; i++);
        assert.equal(r.ok, false, 'the key ran out');
        await waitFor(async () => (await rowsFor(`api_key = ${sqlString(sha(key))}`)) > 0,
            { timeoutMs: 10000, intervalMs: 100 });
        const u = await admin(hs[0], '/key/update', { key, spend: 0 });
        assert.equal(u.status, 200, await u.text());
        /* The spend writer of either gateway may still add the last calls'
         * spend on top of the 0; what must not happen is the old counter
         * refusing the key regardless. */
        await waitFor(async () => (await call(0, key)).ok, { timeoutMs: 10000, intervalMs: 300,
            describe: () => 'the key works again after its spend was reset' });
    });
});

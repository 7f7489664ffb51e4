// Spend tracking against a real MariaDB: a key from /key/generate makes N
// concurrent calls (mock model with litellm_params prices, so the cost is
// known and exact; streamed and not; embeddings; upstream failures). Within
// a few seconds LiteLLM_SpendLogs holds exactly N rows for the key, the
// key's, team's and user's spend equal the sum of the rows to the last
// DECIMAL digit, and sluice_daily_spend agrees. Then MariaDB stops: M more
// calls still work (the key is cached) and their records go to the spool;
// MariaDB restarts with the same data and the totals become N+M, nothing
// counted twice. Last, a SIGTERM'd sluice flushes what it still held.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHarness, MASTER_KEY, migrate } from './lib/harness.mjs';
import { sleep, waitFor } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';

/* The spool files waiting, without the live processes' journals (and the
 * host's shared tables that live there too: counters.shm, metrics.shm). */
const spooled = async (dir) => (await fsp.readdir(dir).catch(() => []))
    .filter((f) => f.endsWith('.jsonl') && !/^spend-\d+-j[01]\.jsonl$/.test(f));

const IN_UNITS = 15000n;    /* 1.5e-6 USD per prompt token, in 1e-10 USD */
const OUT_UNITS = 20000n;   /* 2e-6 USD per completion token */
const PRICES = { input_cost_per_token: 0.0000015, output_cost_per_token: 0.000002 };
const user = [{ role: 'user', content: 'count these few words please' }];

/* "12.0000001500" -> 120000001500n (1e-10 units) */
const units = (dec) => {
    const [i, f = ''] = String(dec).split('.');
    return BigInt(i) * 10000000000n + BigInt((f + '0000000000').slice(0, 10));
};

describe('spend tracking: logs, exact increments, daily aggregates, spool across a MariaDB restart', () => {
    let dir;
    let db;
    let h;
    let key;
    let token;
    let expectedMock = 0n;   /* units of the mock-gpt calls, from the usage the client saw */
    let sent = 0;

    const settings = (spool, extra = {}) => ({
        generalSettings: { database_url: db.url() },
        modelParams: { 'mock-gpt': PRICES },
        sluiceSettings: { spend_spool_dir: spool, log_level: 'debug', ...extra },
    });
    const one = async (hh, i) => {
        const c = hh.client({ apiKey: key });
        const kind = i % 10;
        if (kind === 8) {
            await c.embeddings.create({ model: 'text-embedding-3-small', input: `text ${i}` });
        } else if (kind === 9) {
            await assert.rejects(c.chat.completions.create({ model: 'fault-500', messages: user }));
        } else if (kind % 2 === 0) {
            const r = await c.chat.completions.create({ model: 'mock-gpt', messages: user, user: `end-${i}` });
            expectedMock += BigInt(r.usage.prompt_tokens) * IN_UNITS + BigInt(r.usage.completion_tokens) * OUT_UNITS;
        } else {
            const s = await c.chat.completions.create({
                model: 'mock-gpt', messages: user, stream: true, stream_options: { include_usage: true },
            });
            let usage = null;
            for await (const ch of s) if (ch.usage) usage = ch.usage;
            assert.ok(usage, 'the stream reported usage');
            expectedMock += BigInt(usage.prompt_tokens) * IN_UNITS + BigInt(usage.completion_tokens) * OUT_UNITS;
        }
        sent++;
    };
    const totals = async () => {
        const [[rows, sum, mock, failed]] = await db.sql(`SELECT COUNT(*), COALESCE(SUM(spend), 0),
            COALESCE(SUM(CASE WHEN model_group = 'mock-gpt' THEN spend END), 0),
            SUM(status = 'failure') FROM LiteLLM_SpendLogs WHERE api_key = ${sqlString(token)}`);
        const [[keySpend]] = await db.sql(`SELECT spend FROM LiteLLM_VerificationToken WHERE token = ${sqlString(token)}`);
        const [[teamSpend]] = await db.sql("SELECT spend FROM LiteLLM_TeamTable WHERE team_id = 't-spend'");
        const [[userSpend]] = await db.sql("SELECT spend FROM LiteLLM_UserTable WHERE user_id = 'u-spend'");
        const [[dReq, dOk, dFail, dSpend]] = await db.sql(`SELECT COALESCE(SUM(api_requests), 0),
            COALESCE(SUM(successful_requests), 0), COALESCE(SUM(failed_requests), 0),
            COALESCE(SUM(spend), 0) FROM sluice_daily_spend WHERE api_key = ${sqlString(token)}`);
        return {
            rows: Number(rows), sum, mock, failed: Number(failed ?? 0), keySpend, teamSpend, userSpend,
            dReq: Number(dReq), dOk: Number(dOk), dFail: Number(dFail), dSpend,
        };
    };
    const settle = async (n) => {
        let t;
        await waitFor(async () => {
            t = await totals();
            return t.rows === n && t.dReq === n && t.keySpend === t.sum;
        }, { timeoutMs: 15000, intervalMs: 200, describe: () => `${n} rows and totals: ${JSON.stringify(t)}\n${h.errorLog().slice(-4000)}` });
        return t;
    };
    const checkExact = (t, n) => {
        assert.equal(t.rows, n, 'exactly one row per call');
        assert.equal(t.keySpend, t.sum, "the key's spend is the sum of its rows, to the last digit");
        assert.equal(t.teamSpend, t.sum, "the team's spend too");
        assert.equal(t.userSpend, t.sum, "the user's spend too");
        assert.equal(t.dSpend, t.sum, 'the daily aggregate too');
        assert.equal(t.dReq, n, 'daily api_requests');
        assert.equal(t.dOk + t.dFail, n, 'daily successes + failures');
        assert.equal(t.dFail, t.failed, 'daily failures = failed rows');
        assert.equal(units(t.mock), expectedMock, 'mock-gpt rows cost exactly their usage x prices');
        assert.ok(expectedMock > 0n);
    };

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-spend-'));
        db = await startMariaDB({ dir });
        h = await startHarness(settings(path.join(dir, 'spool')));
        await migrate(h);
        await db.sql("INSERT INTO LiteLLM_TeamTable (team_id) VALUES ('t-spend');\n" +
            "INSERT INTO LiteLLM_UserTable (user_id) VALUES ('u-spend')");
        const g = await fetch(`${h.rootURL}/key/generate`, {
            method: 'POST',
            headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ team_id: 't-spend', user_id: 'u-spend', key_alias: 'spender' }),
        });
        const body = await g.json();
        assert.equal(g.status, 200, JSON.stringify(body));
        key = body.key;
        token = body.token;
        assert.match(token, /^[0-9a-f]{64}$/);
    });

    after(async () => {
        if (h) await h.stop();
        if (db) await db.stop();
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    const N = 40;
    const M = 10;
    const K = 5;

    it(`N=${N} concurrent calls: N rows, exact increments, daily aggregate`, async () => {
        await Promise.all(Array.from({ length: N }, (_, i) => one(h, i)));
        assert.equal(sent, N);
        const t = await settle(N);
        checkExact(t, N);
        assert.equal(t.failed, 4, 'the upstream failures are rows too');
        const [[callTypes]] = await db.sql(`SELECT GROUP_CONCAT(DISTINCT call_type ORDER BY call_type)
            FROM LiteLLM_SpendLogs WHERE api_key = ${sqlString(token)}`);
        assert.equal(callTypes, 'acompletion,aembedding');
        const [[ends, ttft]] = await db.sql(`SELECT COUNT(DISTINCT end_user),
            SUM(completionStartTime IS NOT NULL) FROM LiteLLM_SpendLogs WHERE api_key = ${sqlString(token)}`);
        assert.ok(Number(ends) >= 16, `end_user recorded (${ends})`);
        assert.ok(Number(ttft) >= 1, 'time to first token recorded');
        assert.match(h.sluiceLog(), /spend: flushed \d+ record\(s\) \(\d+ new\) in \d+ statement\(s\)/);
    });

    it(`MariaDB down: M=${M} calls still served and spooled; after a restart the totals are N+M`, async () => {
        await db.stop();
        for (let i = 0; i < M; i++) await one(h, i % 8);
        const spool = path.join(dir, 'spool');
        await waitFor(async () => (await spooled(spool)).some((f) => f.endsWith('.jsonl')),
            { timeoutMs: 15000, intervalMs: 200, describe: () => `a spool file\n${h.errorLog().slice(-3000)}` });
        for (const f of await fsp.readdir(spool)) {
            const st = await fsp.stat(path.join(spool, f));
            assert.equal(st.mode & 0o777, 0o600, `the spool file ${f} is private`);
        }
        await db.restart();
        const t = await settle(N + M);
        checkExact(t, N + M);
        await waitFor(async () => (await spooled(spool)).length === 0,
            { timeoutMs: 10000, intervalMs: 200, describe: () => 'the spool emptied' });
        await sleep(1500);   /* another flush or two: nothing is counted again */
        checkExact(await totals(), N + M);
    });

    let replayed = 0;
    it('a spool holding a row already written (a COMMIT whose answer was lost) counts only the new row', async () => {
        const [[oldId]] = await db.sql(`SELECT request_id FROM LiteLLM_SpendLogs WHERE api_key = ${sqlString(token)} LIMIT 1`);
        const now = Date.now() * 1000;
        const rec = (id, spendUnits) => JSON.stringify({
            request_id: id, api_key: token, key_alias: 'spender', team_id: 't-spend', user_id: 'u-spend',
            end_user: '', model_group: 'replayed', model: 'replayed', model_id: 'x', provider: 'openai',
            api_base: '', call_type: 'acompletion', status: 'success', http_status: 200,
            prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, cached_tokens: 0, cache_write_tokens: 0,
            spend_units: spendUnits, start_us: now, end_us: now, first_token_us: 0,
        });
        const spool = path.join(dir, 'spool');
        await fsp.mkdir(spool, { recursive: true });
        await fsp.writeFile(path.join(spool, 'spend-999999.jsonl'),
            `${rec(oldId, 123456789)}\n${rec(`replayed-${now}`, 777)}\n`, { mode: 0o600 });
        await one(h, 0);   /* the next flush replays the spool first */
        replayed = 1;
        const t = await settle(N + M + 1 + replayed);
        checkExact(t, N + M + 1 + replayed);
        assert.deepEqual(await spooled(spool), [], 'the spool was replayed');
        assert.match(h.sluiceLog(), /spend: flushed 2 record\(s\) \(1 new\)/, 'the batch fell back to row by row');
    });

    it('SIGTERM flushes what the writer still holds', async () => {
        /* A second sluice with a long flush interval: only the stop writes. */
        const h2 = await startHarness(settings(path.join(dir, 'spool2'), { spend_flush_interval_ms: 600000 }));
        try {
            for (let i = 0; i < K; i++) await one(h2, i % 8);
            await sleep(300);
            const before = N + M + 1 + replayed;
            assert.equal((await totals()).rows, before, 'nothing written before the stop');
            const pids = h2.respondersAlive();
            assert.ok(pids.length > 0);
            for (const pid of pids) process.kill(pid, 'SIGTERM');
            await waitFor(() => h2.respondersAlive().length === 0, { timeoutMs: 10000, intervalMs: 50 });
            const t = await totals();
            checkExact(t, before + K);
        } finally {
            await h2.stop();
        }
    });

    it('SIGKILL: the calls a worker completed are not lost; another process replays its journal', async () => {
        const spool = path.join(dir, 'spool3');
        const h3 = await startHarness(settings(spool, { spend_flush_interval_ms: 600000 }));
        const before = (await totals()).rows;
        try {
            for (let i = 0; i < K; i++) await one(h3, i % 8);
            await sleep(300);
            assert.equal((await totals()).rows, before, 'nothing written before the crash');
            const pids = h3.respondersAlive();
            assert.ok(pids.length > 0);
            for (const pid of pids) process.kill(pid, 'SIGKILL');
            await waitFor(() => h3.respondersAlive().filter((p) => pids.includes(p)).length === 0,
                { timeoutMs: 10000, intervalMs: 50 });
        } finally {
            await h3.stop();
        }
        assert.ok((await fsp.readdir(spool)).some((f) => /^spend-\d+-j[01]\.jsonl$/.test(f)),
            'the dead process left its journal');
        /* Another sluice on the same spool directory: its writer replays it. */
        const h4 = await startHarness(settings(spool, { spend_flush_interval_ms: 200 }));
        try {
            await one(h4, 0);
            checkExact(await settle(before + K + 1), before + K + 1);
        } finally {
            await h4.stop();
        }
    });
});

// Two web servers, each with its own sluice processes (so several spend
// writers), on one MariaDB and one memcached never lose an increment: a few
// hundred concurrent calls with one virtual key (team + user), split across
// both gateways, streamed and not, each with its own prompt (so its own
// cost). Every reply's cost is known exactly from the usage the client saw
// and the prices in litellm_params (and matches x-litellm-response-cost).
// Once the writers have flushed: exactly one LiteLLM_SpendLogs row per
// request (the x-request-ids the clients saw), and the key's, team's and
// user's spend and the daily aggregate equal the exact sum of the
// per-request costs, to the last DECIMAL digit.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHarness, MASTER_KEY, migrate } from './lib/harness.mjs';
import { waitFor } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';
import { startMemcached } from './lib/memcached.mjs';

const IN_UNITS = 15000n;    /* 1.5e-6 USD per prompt token, in 1e-10 USD */
const OUT_UNITS = 20000n;   /* 2e-6 USD per completion token */
const PRICES = { input_cost_per_token: 0.0000015, output_cost_per_token: 0.000002 };
const N = 400;              /* calls, all in flight at once */

/* "12.0000001500" -> 120000001500n (1e-10 units) */
const units = (dec) => {
    const [i, f = ''] = String(dec).split('.');
    return BigInt(i) * 10000000000n + BigInt((f + '0000000000').slice(0, 10));
};
const costUnits = (u) => BigInt(u.prompt_tokens) * IN_UNITS + BigInt(u.completion_tokens) * OUT_UNITS;

describe('spend with two gateways on one database: no increment lost', () => {
    let dir;
    let db;
    let mc;
    const hs = [];
    let key;
    let token;

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-spend-two-'));
        [db, mc] = await Promise.all([startMariaDB({ dir }), startMemcached({ dir })]);
        /* Two web servers with two sluice processes each: four spend writers
         * flushing often, so their transactions on the same key, team, user
         * and daily rows overlap. */
        const opts = (i) => ({
            generalSettings: { database_url: db.url(), memcached_servers: [mc.server] },
            modelParams: { 'mock-gpt': PRICES },
            maxProcs: 2,
            sluiceSettings: {
                spend_spool_dir: path.join(dir, `spool-${i}`), spend_flush_interval_ms: 10, log_level: 'debug',
            },
        });
        hs.push(...await Promise.all([startHarness(opts(0)), startHarness(opts(1))]));
        await migrate(hs[0]);
        await db.sql("INSERT INTO LiteLLM_TeamTable (team_id) VALUES ('t-two');\n" +
            "INSERT INTO LiteLLM_UserTable (user_id) VALUES ('u-two')");
        const g = await fetch(`${hs[0].rootURL}/key/generate`, {
            method: 'POST',
            headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ team_id: 't-two', user_id: 'u-two', key_alias: 'two-gateways', max_budget: 1000 }),
        });
        const body = await g.json();
        assert.equal(g.status, 200, JSON.stringify(body));
        key = body.key;
        token = body.token;
        assert.match(token, /^[0-9a-f]{64}$/);
    });

    after(async () => {
        await Promise.all(hs.map((h) => h.stop()));
        if (mc) await mc.stop();
        if (db) await db.stop();
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    /* One call through gateway i % 2; resolves {id, units} from what the client saw. */
    const one = async (i) => {
        const c = hs[i % 2].client({ apiKey: key });
        const messages = [{ role: 'user', content: `call ${i}: ${'word '.repeat(1 + (i % 23))}` }];
        if (i % 3 === 0) {
            const { data: s, response } = await c.chat.completions.create({
                model: 'mock-gpt', messages, stream: true, stream_options: { include_usage: true },
            }).withResponse();
            let usage = null;
            for await (const ch of s) if (ch.usage) usage = ch.usage;
            assert.ok(usage, `call ${i}: the stream reported usage`);
            return { id: response.headers.get('x-request-id'), units: costUnits(usage) };
        }
        const { data: r, response } = await c.chat.completions.create({ model: 'mock-gpt', messages }).withResponse();
        const u = costUnits(r.usage);
        const header = response.headers.get('x-litellm-response-cost');
        assert.ok(header, `call ${i}: x-litellm-response-cost`);
        assert.equal(BigInt(Math.round(Number(header) * 1e10)), u, `call ${i}: the header's cost is the usage's`);
        return { id: response.headers.get('x-request-id'), units: u };
    };

    const totals = async () => {
        const [[rows, ids, sum]] = await db.sql(`SELECT COUNT(*), COUNT(DISTINCT request_id),
            COALESCE(SUM(spend), 0) FROM LiteLLM_SpendLogs WHERE api_key = ${sqlString(token)}`);
        const [[keySpend]] = await db.sql(`SELECT spend FROM LiteLLM_VerificationToken WHERE token = ${sqlString(token)}`);
        const [[teamSpend]] = await db.sql("SELECT spend FROM LiteLLM_TeamTable WHERE team_id = 't-two'");
        const [[userSpend]] = await db.sql("SELECT spend FROM LiteLLM_UserTable WHERE user_id = 'u-two'");
        const [[dReq, dOk, dSpend]] = await db.sql(`SELECT COALESCE(SUM(api_requests), 0),
            COALESCE(SUM(successful_requests), 0), COALESCE(SUM(spend), 0)
            FROM sluice_daily_spend WHERE api_key = ${sqlString(token)}`);
        return {
            rows: Number(rows), ids: Number(ids), sum, keySpend, teamSpend, userSpend,
            dReq: Number(dReq), dOk: Number(dOk), dSpend,
        };
    };

    it(`${N} concurrent calls across both gateways: one row each, every spend the exact sum`, async () => {
        const results = await Promise.all(Array.from({ length: N }, (_, i) => one(i)));
        const expected = results.reduce((s, r) => s + r.units, 0n);
        const seen = new Set(results.map((r) => r.id));
        assert.equal(seen.size, N, 'every reply carried its own x-request-id');
        assert.ok(!seen.has(null));

        let t;
        await waitFor(async () => {
            t = await totals();
            return t.rows >= N && t.dReq >= N && units(t.keySpend) >= expected &&
                units(t.teamSpend) >= expected && units(t.userSpend) >= expected;
        }, {
            timeoutMs: 15000, intervalMs: 200,
            describe: () => `${N} rows and totals of ${expected} units: ${JSON.stringify(t)}\n` +
                hs.map((h) => h.errorLog().slice(-3000)).join('\n'),
        });
        assert.equal(t.rows, N, 'exactly one LiteLLM_SpendLogs row per request');
        assert.equal(t.ids, N, 'no request_id twice');
        const rowIds = new Set((await db.sql(`SELECT request_id FROM LiteLLM_SpendLogs
            WHERE api_key = ${sqlString(token)}`)).map(([id]) => id));
        assert.deepEqual([...seen].filter((id) => !rowIds.has(id)), [], 'a row for every x-request-id the clients saw');
        assert.equal(units(t.sum), expected, 'the rows add up to the per-request costs');
        assert.equal(units(t.keySpend), expected, "the key's spend is the exact sum of the per-request costs");
        assert.equal(units(t.teamSpend), expected, "the team's spend too");
        assert.equal(units(t.userSpend), expected, "the user's spend too");
        assert.equal(units(t.dSpend), expected, 'the daily aggregate too');
        assert.equal(t.dReq, N, 'daily api_requests');
        assert.equal(t.dOk, N, 'daily successful_requests');

        /* Both web servers and all four processes took part. */
        for (const h of hs) assert.equal(h.respondersAlive().length, 2, h.errorLog().slice(-2000));
        const flushed = hs.map((h) => (h.sluiceLog().match(/spend: flushed \d+ record/g) || []).length);
        assert.ok(flushed.every((n) => n > 0), `both gateways flushed (${flushed})`);

        /* /key/info on either gateway reads the same total. */
        for (const h of hs) {
            const res = await fetch(`${h.rootURL}/key/info?key=${encodeURIComponent(key)}`,
                { headers: { authorization: `Bearer ${MASTER_KEY}` } });
            const info = await res.json();
            assert.equal(res.status, 200, JSON.stringify(info));
            assert.equal(BigInt(Math.round(info.info.spend * 1e10)), expected, '/key/info spend');
        }
    });
});

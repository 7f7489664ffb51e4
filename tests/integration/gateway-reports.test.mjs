// Read-only reports against a real MariaDB: a generated key makes a few
// calls to a mock model with prices in litellm_params; once the spend
// writer has flushed, GET /spend/logs (by key, raw or hashed, and by date)
// returns those rows with their spend, GET /global/spend/report's totals
// match them for every group_by, and GET /model/info lists the models
// without any api_key. Only the master key may read them; bad dates are a
// 400 naming the field.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHarness, MASTER_KEY, FAKE_UPSTREAM_KEY, migrate } from './lib/harness.mjs';
import { waitFor } from './lib/procs.mjs';
import { startMariaDB, sqlString } from './lib/mariadb.mjs';

const PRICES = { input_cost_per_token: 0.0000015, output_cost_per_token: 0.000002 };
const user = [{ role: 'user', content: 'a few words to count' }];
const close = (a, b) => Math.abs(Number(a) - Number(b)) < 1e-9;

describe('reports: /spend/logs, /global/spend/report, /model/info', () => {
    let dir;
    let db;
    let h;
    let key;
    let token;
    let expected = 0;
    const N = 4;
    const today = new Date().toISOString().slice(0, 10);

    const get = async (p, auth = MASTER_KEY) => {
        const r = await fetch(`${h.rootURL}${p}`, { headers: { authorization: `Bearer ${auth}` } });
        return { status: r.status, body: await r.json() };
    };

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-reports-'));
        db = await startMariaDB({ dir });
        h = await startHarness({
            generalSettings: { database_url: db.url() },
            modelParams: { 'mock-gpt': PRICES },
            sluiceSettings: { spend_spool_dir: path.join(dir, 'spool'), spend_flush_interval_ms: 200 },
            extraModels: [{ model_name: 'with-creds', litellm_params: { model: 'openai/gpt-4o',
                api_base: 'https://proxyuser:pr0xy-pa55@gw.example.com:8443/v1?api-key=q-s3cret#x' } }],
        });
        await migrate(h);
        await db.sql("INSERT INTO LiteLLM_TeamTable (team_id, team_alias) VALUES ('t-rep', 'Reporting')");
        const g = await fetch(`${h.rootURL}/key/generate`, {
            method: 'POST',
            headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ team_id: 't-rep', user_id: 'u-rep', key_alias: 'reporter' }),
        });
        const body = await g.json();
        assert.equal(g.status, 200, JSON.stringify(body));
        key = body.key;
        token = body.token;
        const c = h.client({ apiKey: key });
        for (let i = 0; i < N; i++) {
            const x = await c.chat.completions.create({ model: 'mock-gpt', messages: user, user: `cust-${i % 2}` });
            expected += x.usage.prompt_tokens * PRICES.input_cost_per_token +
                x.usage.completion_tokens * PRICES.output_cost_per_token;
        }
        await waitFor(async () => {
            const [[n]] = await db.sql(`SELECT COUNT(*) FROM LiteLLM_SpendLogs WHERE api_key = ${sqlString(token)}`);
            const [[d]] = await db.sql(`SELECT COALESCE(SUM(api_requests), 0) FROM sluice_daily_spend WHERE api_key = ${sqlString(token)}`);
            return Number(n) === N && Number(d) === N;
        }, { timeoutMs: 3000, intervalMs: 100, describe: () => `spend rows\n${h.errorLog().slice(-3000)}` });
    });

    after(async () => {
        if (h) await h.stop();
        if (db) await db.stop();
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    it('/spend/logs by key (raw or token), user, request and date, newest first, bounded', async () => {
        for (const k of [key, token]) {
            const r = await get(`/spend/logs?api_key=${encodeURIComponent(k)}`);
            assert.equal(r.status, 200, JSON.stringify(r.body));
            assert.equal(r.body.length, N);
            assert.ok(r.body.every((x) => x.api_key === token && x.model_group === 'mock-gpt' && x.user === 'u-rep'));
            assert.ok(close(r.body.reduce((s, x) => s + x.spend, 0), expected), 'the rows cost what the calls did');
            for (let i = 1; i < N; i++) assert.ok(r.body[i - 1].startTime >= r.body[i].startTime, 'newest first');
        }
        const byDate = await get(`/spend/logs?start_date=${today}&end_date=${today}`);
        assert.equal(byDate.status, 200);
        assert.equal(byDate.body.filter((x) => x.api_key === token).length, N);
        const byUser = await get('/spend/logs?user_id=u-rep&limit=2');
        assert.equal(byUser.body.length, 2, 'limit');
        const one = await get(`/spend/logs?request_id=${encodeURIComponent(byUser.body[0].request_id)}`);
        assert.equal(one.body.length, 1);
        assert.equal(one.body[0].request_id, byUser.body[0].request_id);
        const old = await get('/spend/logs?start_date=2001-01-01&end_date=2001-01-31');
        assert.deepEqual(old.body, []);
        const big = await get('/spend/logs?limit=1001');
        assert.equal(big.status, 400);
        assert.match(big.body.error.message, /limit/);
    });

    it('/global/spend/report: per day, totals match the logs for every group_by', async () => {
        const team = await get(`/global/spend/report?start_date=${today}&end_date=${today}`);
        assert.equal(team.status, 200, JSON.stringify(team.body));
        assert.equal(team.body.length, 1);
        const day = team.body[0];
        assert.equal(day.group_by_day, today);
        assert.ok(close(day.total_spend, expected), `${day.total_spend} vs ${expected}`);
        assert.equal(day.api_requests, N);
        const t = day.teams.find((x) => x.team_id === 't-rep');
        assert.equal(t.team_name, 'Reporting');
        assert.ok(close(t.total_spend, expected));
        assert.deepEqual(t.metadata.map((m) => m.model), ['mock-gpt']);
        assert.ok(close(t.metadata[0].spend, expected));

        const keys = await get(`/global/spend/report?start_date=${today}&end_date=${today}&group_by=api_key`);
        const k = keys.body[0].api_keys.find((x) => x.api_key === token);
        assert.equal(k.key_alias, 'reporter');
        assert.ok(close(k.total_spend, expected));

        const cust = await get(`/global/spend/report?start_date=${today}&end_date=${today}&group_by=customer`);
        assert.equal(cust.status, 200, JSON.stringify(cust.body));
        const cs = cust.body[0].customers;
        assert.deepEqual(cs.map((c) => c.customer), ['cust-0', 'cust-1']);
        assert.ok(close(cs[0].total_spend + cs[1].total_spend, expected));
        assert.ok(close(cust.body[0].total_spend, expected));

        const models = await get(`/global/spend/report?start_date=${today}&end_date=${today}&group_by=model`);
        const m = models.body[0].models.find((x) => x.model === 'mock-gpt');
        assert.ok(close(m.total_spend, expected));
        assert.equal(m.metadata[0].api_key, token);

        const none = await get('/global/spend/report?start_date=2001-01-01&end_date=2001-01-31');
        assert.deepEqual(none.body, []);
        const bad = await get('/global/spend/report?group_by=planet');
        assert.equal(bad.status, 400);
        assert.match(bad.body.error.message, /group_by/);
    });

    it('bad dates are a 400 naming the field', async () => {
        for (const [p, field] of [
            ['/spend/logs?start_date=2026-13-01', 'start_date'],
            ['/spend/logs?end_date=yesterday', 'end_date'],
            ['/spend/logs?start_date=2026-02-30', 'start_date'],
            ['/global/spend/report?start_date=2026-1-1', 'start_date'],
            ['/global/spend/report?end_date=2026-01-32', 'end_date'],
        ]) {
            const r = await get(p);
            assert.equal(r.status, 400, p);
            assert.match(r.body.error.message, new RegExp(field), p);
        }
        const rev = await get('/global/spend/report?start_date=2026-02-02&end_date=2026-02-01');
        assert.equal(rev.status, 400);
        assert.match(rev.body.error.message, /end_date/);
    });

    it('/model/info lists every model, prices, and no secret', async () => {
        for (const p of ['/model/info', '/v1/model/info']) {
            const r = await get(p);
            assert.equal(r.status, 200, JSON.stringify(r.body));
            const names = r.body.data.map((x) => x.model_name);
            assert.ok(names.includes('mock-gpt') && names.includes('gpt-4o-mini'), names.join());
            const text = JSON.stringify(r.body);
            assert.ok(!text.includes(FAKE_UPSTREAM_KEY), 'no upstream key');
            assert.ok(!text.includes('api_key'), 'no api_key field at all');
            const mock = r.body.data.find((x) => x.model_name === 'mock-gpt');
            assert.equal(mock.litellm_params.model, 'mock/echo');
            assert.equal(mock.model_info.input_cost_per_token, PRICES.input_cost_per_token);
            assert.equal(mock.model_info.output_cost_per_token, PRICES.output_cost_per_token);
            assert.equal(mock.model_info.mode, 'chat');
            assert.ok(mock.model_info.id);
            const emb = r.body.data.find((x) => x.model_name === 'text-embedding-3-small');
            assert.equal(emb.model_info.mode, 'embedding');
            const mini = r.body.data.find((x) => x.model_name === 'gpt-4o-mini');
            assert.ok(mini.model_info.input_cost_per_token > 0, 'the price table fills in');
            const creds = r.body.data.find((x) => x.model_name === 'with-creds');
            assert.equal(creds.litellm_params.api_base, 'https://gw.example.com:8443/v1',
                'an api_base without its user:password@ and query string');
            assert.ok(!text.includes('pr0xy-pa55') && !text.includes('q-s3cret'), 'no secret from the URL');
        }
    });

    it('only the master key may read reports', async () => {
        for (const p of ['/spend/logs', '/global/spend/report', '/model/info']) {
            const r = await get(p, key);
            assert.equal(r.status, 403, `${p}: ${JSON.stringify(r.body)}`);
            const u = await get(p, 'sk-not-a-key');
            assert.equal(u.status, 401, p);
        }
    });

    it('/model/info needs no database; the reports do (503)', async () => {
        const h2 = await startHarness({ modelParams: { 'mock-gpt': PRICES } });
        try {
            const r = await fetch(`${h2.rootURL}/model/info`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
            const body = await r.json();
            assert.equal(r.status, 200, JSON.stringify(body));
            assert.ok(body.data.some((x) => x.model_name === 'mock-gpt'));
            const s = await fetch(`${h2.rootURL}/spend/logs`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
            assert.equal(s.status, 503);
            await s.json();
        } finally {
            await h2.stop();
        }
    });

    it('no sanitizer report', () => {
        assert.doesNotMatch(h.sluiceLog() + h.errorLog(), /Sanitizer|runtime error/);
    });
});

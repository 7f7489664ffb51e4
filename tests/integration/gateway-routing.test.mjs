// Routing and resilience through lighttpd and a real sluice: model groups
// of several deployments (the fake upstream's fault models, and the mock),
// each routing strategy's choices, retries and fallbacks that turn a failing
// deployment into a success, the rules that forbid a retry (a 400, a stream
// already under way), cooldowns (one process's is honoured by another
// through memcached), "No deployments available" when a whole group cools
// down or is full, wildcards and model_group_alias. Which deployment
// answered comes from x-litellm-model-id; what the upstream saw from the
// fake's request log.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHarness, MASTER_KEY } from './lib/harness.mjs';
import { startMemcached } from './lib/memcached.mjs';

const user = [{ role: 'user', content: 'route me' }];

/* A deployment of group `name` on the fake upstream (its model picks the
 * fault) or on the mock. */
const fake = (ctx, name, id, upstream, extra = {}) => ({
    model_name: name,
    litellm_params: { model: `openai/${upstream}`, api_base: ctx.fakeBase, api_key: 'fake-upstream-key',
        timeout: 10, stream_timeout: 10, ...extra },
    model_info: { id },
});
const mock = (name, id, extra = {}) => ({
    model_name: name, litellm_params: { model: 'mock/echo', ...extra }, model_info: { id },
});

const groups = (ctx) => [
    mock('weighted', 'w1', { weight: 1 }), mock('weighted', 'w3', { weight: 3 }),
    mock('by-rpm', 'r100', { rpm: 100 }), mock('by-rpm', 'r300', { rpm: 300 }),
    fake(ctx, 'flaky', 'flaky-bad', 'fault-500'), fake(ctx, 'flaky', 'flaky-good', 'gpt-4o-mini'),
    fake(ctx, 'primary', 'primary-bad', 'fault-500'),
    fake(ctx, 'secondary', 'secondary-good', 'gpt-4o-mini'),
    fake(ctx, 'long-prompts', 'cw-bad', 'context-too-long'),
    fake(ctx, 'big-context', 'cw-good', 'gpt-4o-mini'),
    fake(ctx, 'strict', 'strict-400', 'fault-400'),
    fake(ctx, 'dropper', 'drop', 'drop-mid-stream'),
    fake(ctx, 'busy', 'busy-a', 'slow-first-byte-1500'), fake(ctx, 'busy', 'busy-b', 'slow-first-byte-1500'),
    fake(ctx, 'quick', 'quick-slow', 'slow-first-byte-400'), fake(ctx, 'quick', 'quick-fast', 'gpt-4o-mini'),
    fake(ctx, 'tiers', 'tier1', 'gpt-4o-mini', { order: 1 }), fake(ctx, 'tiers', 'tier2', 'gpt-4o-mini', { order: 2 }),
    fake(ctx, 'tiers-bad', 'tb1', 'fault-500', { order: 1 }), fake(ctx, 'tiers-bad', 'tb2', 'gpt-4o-mini', { order: 2 }),
    fake(ctx, 'limited', 'limited-1', 'gpt-4o-mini'), fake(ctx, 'limited', 'limited-2', 'fault-429'),
    fake(ctx, 'all-429', 'a429-1', 'fault-429'), fake(ctx, 'all-429', 'a429-2', 'fault-429'),
    fake(ctx, 'capped', 'capped-1', 'slow-first-byte-1500', { max_parallel_requests: 1 }),
    fake(ctx, 'fakewild/*', 'wild', '*'),
    { ...fake(ctx, 'refusing', 'refused', 'gpt-4o-mini'),
        litellm_params: { model: 'openai/gpt-4o-mini', api_base: `http://127.0.0.1:${ctx.closedPort}/v1`, api_key: 'x' } },
    fake(ctx, 'refusing', 'accepting', 'gpt-4o-mini'),
    fake(ctx, 'metered', 'metered-1', 'gpt-4o-mini', { rpm: 10 }),
    fake(ctx, 'metered', 'metered-2', 'gpt-4o-mini', { rpm: 0.0001 }),
];

describe('routing: strategies, retries, fallbacks, cooldowns', () => {
    let dir;
    let mc;
    const hs = {};

    const call = async (h, body, { stream = false } = {}) => {
        const r = await fetch(`${h.rootURL}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ messages: user, ...body, ...(stream ? { stream: true } : {}) }),
        });
        const text = await r.text();
        let json = null;
        try { json = JSON.parse(text); } catch { /* a stream */ }
        return {
            status: r.status, text, json, id: r.headers.get('x-litellm-model-id'),
            group: r.headers.get('x-litellm-model-group'),
            retries: r.headers.get('x-litellm-attempted-retries'),
            fallbacks: r.headers.get('x-litellm-attempted-fallbacks'),
            retryAfter: r.headers.get('retry-after'),
            groups: r.headers.get('x-sluice-attempted-model-groups'),
        };
    };
    const many = async (h, n, body, conc = 16) => {
        const out = [];
        for (let i = 0; i < n; i += conc)
            out.push(...await Promise.all(Array.from({ length: Math.min(conc, n - i) }, () => call(h, body))));
        return out;
    };
    const countIds = (rs) => rs.reduce((m, r) => ({ ...m, [r.id]: (m[r.id] || 0) + 1 }), {});
    const upstreamCalls = async (h, model) => (await h.fakeLog()).filter((e) => e.model === model).length;

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-routing-'));
        mc = await startMemcached({ dir });
        const opts = (strategy, extra = {}) => ({
            generalSettings: { memcached_servers: [mc.server] },
            routerSettings: {
                routing_strategy: strategy, num_retries: 2, allowed_fails: 1, cooldown_time: 5,
                fallbacks: [{ primary: ['secondary'] }],
                context_window_fallbacks: [{ 'long-prompts': ['big-context'] }],
                model_group_alias: { 'my-alias': 'secondary', 'quiet-alias': { model: 'secondary', hidden: true } },
                ...extra,
            },
            configure: (cfg, ctx) => { cfg.model_list.push(...groups(ctx)); },
        });
        hs.shuffle = await startHarness(opts('simple-shuffle'));
        hs.shuffle2 = await startHarness(opts('simple-shuffle'));
        hs.busy = await startHarness(opts('least-busy'));
        hs.latency = await startHarness(opts('latency-based-routing'));
        hs.usage = await startHarness(opts('usage-based-routing'));
        hs.usage2 = await startHarness(opts('usage-based-routing'));
        hs.bulk = await startHarness({ ...opts('simple-shuffle'),
            sluiceSettings: { threads: 4, max_threads: 4, reserved_threads: 1, deployment_max_in_flight: 2 } });
    });

    after(async () => {
        for (const h of Object.values(hs)) await h.stop();
        if (mc) await mc.stop();
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    it('simple-shuffle by weight: 1:3 → 25 % / 75 % (± 5 %) over 2000 calls', async () => {
        const rs = await many(hs.shuffle, 2000, { model: 'weighted' }, 32);
        assert.ok(rs.every((r) => r.status === 200));
        const c = countIds(rs);
        assert.ok(Math.abs(c.w1 / 2000 - 0.25) <= 0.05, `w1 ${c.w1}, w3 ${c.w3}`);
        assert.equal(c.w1 + c.w3, 2000);
    });

    it('simple-shuffle by rpm when no weights: 100:300 → 25 % / 75 % (± 5 %)', async () => {
        const c = countIds(await many(hs.shuffle, 1000, { model: 'by-rpm' }, 32));
        assert.ok(Math.abs(c.r100 / 1000 - 0.25) <= 0.05, JSON.stringify(c));
    });

    it('retries turn a failing deployment into a success, and it then cools down', async () => {
        const rs = await many(hs.shuffle, 30, { model: 'flaky' }, 4);
        assert.ok(rs.every((r) => r.status === 200 && r.id === 'flaky-good'), JSON.stringify(countIds(rs)));
        assert.ok(rs.some((r) => r.retries === '1'), 'some calls needed a retry');
        const bad = await upstreamCalls(hs.shuffle, 'fault-500');
        /* allowed_fails 1: the second failure cools it down; calls already
         * past the choice (4 at a time here) may still meet it once each */
        assert.ok(bad >= 1 && bad <= 2 + 4, `the bad deployment was tried, then left alone (${bad} calls)`);
        const more = await many(hs.shuffle, 10, { model: 'flaky' }, 1);
        assert.ok(more.every((r) => r.status === 200 && r.retries === '0'), 'cooling down: not tried');
        assert.equal(await upstreamCalls(hs.shuffle, 'fault-500'), bad);
    });

    it('a refused connection is retried on another deployment', async () => {
        const rs = await many(hs.shuffle2, 12, { model: 'refusing' }, 3);
        assert.ok(rs.every((r) => r.status === 200 && r.id === 'accepting'), JSON.stringify(countIds(rs)));
    });

    it('a group that fails falls back to its fallback group', async () => {
        const r = await call(hs.shuffle, { model: 'primary' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.id, 'secondary-good');
        assert.equal(r.group, 'secondary');
        assert.equal(r.fallbacks, '1');
        assert.equal(r.groups, 'primary,secondary', 'the groups tried, in order');
        const line = hs.shuffle.sluiceLog().split('\n').filter((l) => l.includes('"model":"primary"')).pop();
        assert.match(line, /"deployment":"secondary-good".*"model_group":"secondary".*"fallbacks":1/,
            'the log line says where the call went');
    });

    it('the request\'s own fallbacks, and a bad one is a 400 naming the field', async () => {
        const r = await call(hs.shuffle, { model: 'fault-500', fallbacks: ['gpt-4o-mini'] });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.group, 'gpt-4o-mini');
        const last = (await hs.shuffle.fakeLog()).filter((e) => e.model === 'gpt-4o-mini').pop();
        assert.ok(last.body === undefined || !JSON.stringify(last.body).includes('fallbacks'),
            'fallbacks is not sent upstream');
        const b = await call(hs.shuffle, { model: 'gpt-4o-mini', fallbacks: ['no-such-model'] });
        assert.equal(b.status, 400);
        assert.equal(b.json.error.param, 'fallbacks');
    });

    it('a context-window error falls back to context_window_fallbacks', async () => {
        const r = await call(hs.shuffle, { model: 'long-prompts' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.id, 'cw-good');
        assert.equal(r.retries, '0', 'a context-window error is not retried');
    });

    it('a 400 is never retried', async () => {
        const before = await upstreamCalls(hs.shuffle, 'fault-400');
        const r = await call(hs.shuffle, { model: 'strict' });
        assert.equal(r.status, 400);
        assert.equal(await upstreamCalls(hs.shuffle, 'fault-400'), before + 1);
    });

    it('nothing is retried once the stream began', async () => {
        const before = await upstreamCalls(hs.shuffle, 'drop-mid-stream');
        const r = await call(hs.shuffle, { model: 'dropper' }, { stream: true });
        assert.equal(r.status, 200);
        assert.match(r.text, /"error"/, 'the stream ends with an error event');
        assert.equal(await upstreamCalls(hs.shuffle, 'drop-mid-stream'), before + 1);
    });

    it('priority order: tier 1 takes every call while healthy; its failure moves to tier 2', async () => {
        const c = countIds(await many(hs.shuffle, 40, { model: 'tiers' }, 8));
        assert.deepEqual(c, { tier1: 40 });
        const r = await call(hs.shuffle, { model: 'tiers-bad' });
        assert.equal(r.status, 200);
        assert.equal(r.id, 'tb2');
    });

    it('a 429 cools the deployment down at once, and another process honours it (memcached)', async () => {
        /* Shuffle until a call met the 429 one (then retried on the other). */
        let hit = null;
        for (let i = 0; i < 30 && !hit; i++) {
            const r = await call(hs.shuffle, { model: 'limited' });
            assert.equal(r.status, 200);
            if (r.retries === '1') hit = r;
        }
        assert.ok(hit, 'a call met the 429 deployment');
        const before = await upstreamCalls(hs.shuffle2, 'fault-429');
        const rs = await many(hs.shuffle2, 20, { model: 'limited' }, 4);
        assert.ok(rs.every((r) => r.status === 200 && r.id === 'limited-1'), JSON.stringify(countIds(rs)));
        assert.equal(await upstreamCalls(hs.shuffle2, 'fault-429'), before,
            'the other process never sent a call to the cooling deployment');
    });

    it('a group all cooling down answers at once: 429 "No deployments available"', async () => {
        const first = await call(hs.shuffle2, { model: 'all-429' });
        assert.equal(first.status, 429);
        const t0 = Date.now();
        const r = await call(hs.shuffle2, { model: 'all-429' });
        assert.equal(r.status, 429);
        assert.match(r.json.error.message, /^No deployments available for selected model/);
        assert.ok(r.retryAfter, 'with retry-after');
        assert.ok(Date.now() - t0 < 1000, `fast (${Date.now() - t0} ms)`);
    });

    it('max_parallel_requests: a full deployment takes no more calls (429 at once)', async () => {
        const slow = call(hs.shuffle2, { model: 'capped' });
        await new Promise((r) => setTimeout(r, 300));
        const t0 = Date.now();
        const r = await call(hs.shuffle2, { model: 'capped' });
        assert.equal(r.status, 429, r.text);
        assert.ok(Date.now() - t0 < 1000, 'at once, not after the slow call');
        assert.equal((await slow).status, 200);
    });

    it('bulkheads: a hanging deployment holds at most its share of threads; others still answer', async () => {
        const t0 = Date.now();
        const hung = Array.from({ length: 4 }, () => call(hs.bulk, { model: 'hang' }));
        await new Promise((r) => setTimeout(r, 300));
        const t1 = Date.now();
        const ok = await call(hs.bulk, { model: 'gpt-4o-mini' });
        assert.equal(ok.status, 200, ok.text);
        assert.ok(Date.now() - t1 < 1500, `a healthy deployment answers at once (${Date.now() - t1} ms)`);
        const live = await fetch(`${hs.bulk.rootURL}/health/liveliness`);
        assert.equal(live.status, 200);
        const rs = await Promise.all(hung);
        const statuses = rs.map((r) => r.status).sort();
        assert.deepEqual(statuses.filter((x) => x === 429).length, 2,
            `2 of 4 hanging calls were refused at once: ${statuses}`);
        assert.ok(rs.filter((r) => r.status === 429).every((r) => /No deployments available/.test(r.json.error.message)));
        assert.ok(Date.now() - t0 < 8000);
    });

    it('least-busy sends a call to the deployment with nothing in flight', async () => {
        for (let i = 0; i < 4; i++) {
            const a = call(hs.busy, { model: 'busy' });
            await new Promise((r) => setTimeout(r, 200));
            const b = await call(hs.busy, { model: 'busy' });
            const ra = await a;
            assert.notEqual(ra.id, b.id, `round ${i}: ${ra.id} then ${b.id}`);
        }
    });

    it('latency-based routing moves the traffic to the faster deployment', async () => {
        await many(hs.latency, 6, { model: 'quick' }, 1);   /* both measured */
        const c = countIds(await many(hs.latency, 20, { model: 'quick' }, 1));
        assert.ok((c['quick-fast'] || 0) >= 18, JSON.stringify(c));
    });

    it('usage-based routing keeps to a deployment\'s rpm across processes (memcached)', async () => {
        /* metered-2's rpm is all but 0: metered-1 (rpm 10) takes every call. Not
         * across a minute boundary: the counts are per minute. */
        while (Date.now() % 60000 > 45000) await new Promise((r) => setTimeout(r, 500));
        for (let i = 0; i < 6; i++) {
            const r = await call(hs.usage, { model: 'metered' });
            assert.equal(r.status, 200, r.text);
            assert.equal(r.id, 'metered-1');
            await new Promise((res) => setTimeout(res, 250));   /* each call's use reaches memcached */
        }
        const rs = await many(hs.usage2, 6, { model: 'metered' }, 1);
        assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 429, 429],
            'the other process had 4 of the 10 left');
    });

    it('wildcard groups pass the rest of the name on as the upstream model', async () => {
        const r = await call(hs.shuffle, { model: 'fakewild/gpt-4o-mini' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.id, 'wild');
        assert.equal(r.json.model, 'fakewild/gpt-4o-mini');
        const last = (await hs.shuffle.fakeLog()).pop();
        assert.equal(last.model, 'gpt-4o-mini');
    });

    it('model_group_alias: the alias routes and is listed, a hidden one is not', async () => {
        const r = await call(hs.shuffle, { model: 'my-alias' });
        assert.equal(r.status, 200);
        assert.equal(r.id, 'secondary-good');
        const list = await (await fetch(`${hs.shuffle.rootURL}/v1/models`, {
            headers: { authorization: `Bearer ${MASTER_KEY}` },
        })).json();
        const ids = list.data.map((m) => m.id);
        assert.ok(ids.includes('my-alias') && !ids.includes('quiet-alias'), ids.join(','));
        assert.ok(!ids.some((m) => m.includes('*')), 'wildcards are not listed');
        assert.equal((await call(hs.shuffle, { model: 'quiet-alias' })).status, 200, 'a hidden alias still routes');
    });
});

// Traces, callbacks and what they must never do. An OTLP receiver, webhook
// endpoints and a Langfuse ingestion endpoint run in this process
// (lib/sinks.mjs); sluice runs behind lighttpd as everywhere else.
//   - traces: the client's W3C traceparent is continued (trace id, parent),
//     one SERVER span per request and one CLIENT span per upstream attempt
//     with the GenAI attributes, and the attempt's traceparent reaches the
//     upstream; an unsampled trace is passed on and not exported;
//   - callbacks: every call once, batched, with the configured headers and
//     event types, in LiteLLM's payload and Langfuse's ingestion shape;
//   - a sink that hangs or refuses: requests are not slowed, events are
//     dropped and counted in /metrics, memory stays bounded.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness } from './lib/harness.mjs';
import { startSink } from './lib/sinks.mjs';
import { scrapeSamples, sum } from './lib/metrics.mjs';

const ask = (text) => [{ role: 'user', content: text }];
const hex = (n) => [...crypto.getRandomValues(new Uint8Array(n))].map((b) => b.toString(16).padStart(2, '0')).join('');
const attr = (span, key) => {
    const a = span.attributes.find((x) => x.key === key);
    return a ? (a.value.stringValue ?? a.value.intValue ?? a.value.doubleValue) : undefined;
};
const allSpans = (posts) => posts.flatMap((p) => p.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));

async function chat(h, model, headers = {}, extra = {}) {
    const r = await fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model, messages: ask('hello there'), ...extra }),
    });
    const body = await r.text();
    return { status: r.status, id: r.headers.get('x-request-id'), body };
}

describe('traces over OTLP/HTTP', () => {
    let h;
    let otlp;

    before(async () => {
        otlp = await startSink();
        h = await startHarness({
            litellmSettings: { callbacks: ['otel'] },
            routerSettings: { fallbacks: [{ 'fault-500': ['gpt-4o-mini'] }] },
            sluiceSettings: { callback_flush_interval_ms: 100 },
            configure: (cfg) => {
                cfg.environment_variables = {
                    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SERVICE_NAME: 'sluice-under-test',
                    OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-token=t%20ok,other=2',
                };
            },
        });
    });
    after(async () => {
        if (h) await h.stop();
        if (otlp) await otlp.stop();
    });

    it('continues the client\'s trace: a server span, a client span per attempt, GenAI attributes; the upstream gets the attempt\'s traceparent', async () => {
        const trace = hex(16), parent = hex(8);
        await h.resetFake();
        const r = await chat(h, 'gpt-4o-mini', { traceparent: `00-${trace}-${parent}-01`, tracestate: 'vendor=abc' });
        assert.equal(r.status, 200);
        const spans = await otlp.waitFor((posts) => {
            const s = allSpans(posts).filter((x) => x.traceId === trace);
            return s.length >= 2 ? s : null;
        });
        const post = otlp.posts.find((p) => JSON.stringify(p.body).includes(trace));
        assert.equal(post.path, '/v1/traces');
        assert.match(post.headers['content-type'], /^application\/json/);
        assert.equal(post.headers['x-collector-token'], 't ok');
        const resource = post.body.resourceSpans[0].resource.attributes;
        assert.equal(resource.find((a) => a.key === 'service.name').value.stringValue, 'sluice-under-test');
        const server = spans.find((s) => s.kind === 2);
        const client = spans.find((s) => s.kind === 3);
        assert.equal(server.parentSpanId, parent, 'the request span is a child of the client\'s');
        assert.equal(server.name, 'POST /v1/chat/completions');
        assert.equal(attr(server, 'http.response.status_code'), '200');
        assert.equal(attr(server, 'gen_ai.request.model'), 'gpt-4o-mini');
        assert.equal(attr(server, 'sluice.request_id'), r.id);
        assert.ok(Number(attr(server, 'gen_ai.usage.input_tokens')) > 0);
        assert.ok(Number(attr(server, 'gen_ai.usage.output_tokens')) > 0);
        assert.equal(client.parentSpanId, server.spanId);
        assert.equal(client.name, 'chat gpt-4o-mini');
        assert.equal(attr(client, 'gen_ai.system'), 'openai');
        assert.equal(attr(client, 'gen_ai.operation.name'), 'chat');
        assert.equal(attr(client, 'gen_ai.request.model'), 'gpt-4o-mini');
        assert.ok(BigInt(client.startTimeUnixNano) >= BigInt(server.startTimeUnixNano));
        assert.ok(BigInt(client.endTimeUnixNano) <= BigInt(server.endTimeUnixNano));
        assert.equal(server.status.code, 0);
        const up = (await h.fakeLog()).find((e) => e.model === 'gpt-4o-mini');
        assert.equal(up.headers.traceparent, `00-${trace}-${client.spanId}-01`);
        assert.equal(up.headers.tracestate, 'vendor=abc');
    });

    it('a retry and a fallback are spans of their own, failures marked', async () => {
        const trace = hex(16);
        const r = await chat(h, 'fault-500', { traceparent: `00-${trace}-${hex(8)}-01` });
        assert.equal(r.status, 200);
        const spans = await otlp.waitFor((posts) => {
            const s = allSpans(posts).filter((x) => x.traceId === trace);
            return s.length >= 3 ? s : null;
        });
        const attempts = spans.filter((s) => s.kind === 3);
        assert.equal(attempts.length, 2);
        const failed = attempts.find((s) => s.name === 'chat fault-500');
        assert.equal(failed.status.code, 2);
        assert.equal(attr(failed, 'error.type'), 'InternalServerError');
        assert.equal(attr(failed, 'http.response.status_code'), '500');
        assert.equal(attempts.find((s) => s.name === 'chat gpt-4o-mini').status.code, 0);
    });

    it('no traceparent: a new trace; an unsampled one is passed on, not exported; an invalid one is replaced', async () => {
        await h.resetFake();
        const r = await chat(h, 'gpt-4o-mini');
        const span = await otlp.waitFor((posts) => allSpans(posts).find((s) => attr(s, 'sluice.request_id') === r.id));
        assert.equal(span.parentSpanId ?? '', '');
        assert.match(span.traceId, /^[0-9a-f]{32}$/);
        const trace = hex(16);
        const before = otlp.posts.length;
        await chat(h, 'gpt-4o-mini', { traceparent: `00-${trace}-${hex(8)}-00` });
        await new Promise((res) => setTimeout(res, 600));
        assert.ok(!allSpans(otlp.posts.slice(before)).some((s) => s.traceId === trace), 'an unsampled trace is not exported');
        const ups = (await h.fakeLog()).filter((e) => e.model === 'gpt-4o-mini');
        assert.match(ups[ups.length - 1].headers.traceparent, new RegExp(`^00-${trace}-[0-9a-f]{16}-00$`));
        const bad = await chat(h, 'gpt-4o-mini', { traceparent: `00-${'0'.repeat(32)}-${hex(8)}-01` });
        const fresh = await otlp.waitFor((posts) => allSpans(posts).find((s) => attr(s, 'sluice.request_id') === bad.id));
        assert.notEqual(fresh.traceId, '0'.repeat(32));
    });
});

describe('callbacks: a webhook and Langfuse', () => {
    let h;
    let hook;
    let failHook;
    let langfuse;

    before(async () => {
        hook = await startSink();
        failHook = await startSink();
        langfuse = await startSink({ status: 207, reply: { successes: [], errors: [] } });
        h = await startHarness({
            litellmSettings: { callbacks: ['my-hook', 'langfuse'], failure_callback: ['failures'] },
            sluiceSettings: { callback_flush_interval_ms: 200, callback_batch_size: 4 },
            configure: (cfg) => {
                cfg.callback_settings = {
                    'my-hook': { callback_type: 'generic_api', endpoint: `${hook.url}/logs`,
                                 headers: { Authorization: 'Bearer hook-secret' } },
                    failures: { callback_type: 'generic_api', endpoint: `${failHook.url}/f`, log_format: 'ndjson' },
                };
                cfg.environment_variables = {
                    LANGFUSE_PUBLIC_KEY: 'pk-lf-test', LANGFUSE_SECRET_KEY: 'sk-lf-test', LANGFUSE_HOST: langfuse.url,
                };
            },
        });
    });
    after(async () => {
        if (h) await h.stop();
        for (const s of [hook, failHook, langfuse]) if (s) await s.stop();
    });

    it('each call once, batched, with the headers; failures to the failure callback only', async () => {
        const ids = [];
        for (let i = 0; i < 6; i++) ids.push((await chat(h, 'gpt-4o-mini', {}, { user: 'end-user-7' })).id);
        const bad = await chat(h, 'fault-400');
        assert.equal(bad.status, 400);
        ids.push(bad.id);
        const events = await hook.waitFor((posts) => {
            const e = posts.flatMap((p) => p.body);
            return e.length >= 7 ? e : null;
        });
        assert.equal(events.length, 7);
        assert.deepEqual(events.map((e) => e.id).sort(), [...ids].sort());
        assert.ok(hook.posts.length >= 2, 'batches of at most 4');
        assert.ok(hook.posts.every((p) => p.body.length <= 4 && p.path === '/logs'));
        assert.ok(hook.posts.every((p) => p.headers.authorization === 'Bearer hook-secret'));
        const ok = events.find((e) => e.id === ids[0]);
        assert.equal(ok.status, 'success');
        assert.equal(ok.call_type, 'acompletion');
        assert.equal(ok.model_group, 'gpt-4o-mini');
        assert.equal(ok.end_user, 'end-user-7');
        assert.ok(ok.prompt_tokens > 0 && ok.total_tokens === ok.prompt_tokens + ok.completion_tokens);
        assert.ok(ok.endTime >= ok.startTime);
        assert.ok(!JSON.stringify(events).includes('hello there'), 'no prompt in the events');
        assert.ok(!JSON.stringify(events).includes(h.masterKey), 'no key in the events');
        const failed = events.find((e) => e.id === bad.id);
        assert.equal(failed.status, 'failure');
        assert.deepEqual(failed.error_information, { error_code: '400', error_class: 'BadRequestError' });
        const f = await failHook.waitFor((posts) => (posts.length ? posts : null));
        const lines = f.flatMap((p) => p.raw.trim().split('\n').map((l) => JSON.parse(l)));
        assert.deepEqual(lines.map((e) => e.id), [bad.id], 'failure_callback: failures only, as NDJSON');
        assert.match(f[0].headers['content-type'], /x-ndjson/);
        const m = await scrapeSamples(h);
        assert.equal(sum(m, 'sluice_callback_events_sent_total', { callback_name: 'my-hook' }), 7);
        assert.equal(sum(m, 'sluice_callback_events_dropped_total'), 0);
    });

    it('a reload that moves a callback takes effect without a restart', async () => {
        const moved = await startSink();
        try {
            h.writeConfig(h.configYAML((cfg) => {
                cfg.callback_settings['my-hook'].endpoint = `${moved.url}/moved`;
                cfg.callback_settings['my-hook'].headers = { Authorization: 'Bearer hook-secret-2' };
            }));
            await new Promise((r) => setTimeout(r, 2500));     // reloads within 2 s
            const r = await chat(h, 'gpt-4o-mini');
            const post = await moved.waitFor((posts) => posts.find((p) => p.body.some((e) => e.id === r.id)));
            assert.equal(post.path, '/moved');
            assert.equal(post.headers.authorization, 'Bearer hook-secret-2');
            assert.ok(!hook.posts.some((p) => p.body.some((e) => e.id === r.id)), 'not to the old endpoint');
        } finally {
            h.writeConfig(h.configYAML());
            await moved.stop();
        }
    });

    it('Langfuse: a trace and a generation per call, Basic auth, usage', async () => {
        const r = await chat(h, 'gpt-4o-mini');
        const batch = await langfuse.waitFor((posts) => {
            const b = posts.flatMap((p) => p.body.batch);
            return b.some((e) => e.body.id === r.id) ? b : null;
        });
        const post = langfuse.posts[0];
        assert.equal(post.path, '/api/public/ingestion');
        assert.equal(post.headers.authorization, `Basic ${Buffer.from('pk-lf-test:sk-lf-test').toString('base64')}`);
        const gen = batch.find((e) => e.type === 'generation-create' && e.body.id === r.id);
        const trace = batch.find((e) => e.type === 'trace-create' && e.body.id === gen.body.traceId);
        assert.ok(trace, 'the generation\'s trace is created');
        assert.equal(gen.body.model, 'gpt-4o-mini');
        assert.ok(gen.body.usage.input > 0 && gen.body.usage.output > 0);
        assert.equal(gen.body.usage.total, gen.body.usage.input + gen.body.usage.output);
        assert.ok(Date.parse(gen.body.endTime) >= Date.parse(gen.body.startTime));
        assert.equal(gen.body.level, 'DEFAULT');
    });
});

describe('a sink that is down never slows a request', () => {
    let h;
    let hang;

    before(async () => {
        hang = await startSink({ mode: 'hang' });
        h = await startHarness({
            litellmSettings: { callbacks: ['stuck', 'refused'] },
            sluiceSettings: { callback_flush_interval_ms: 50, callback_batch_size: 2, callback_queue_size: 4,
                              callback_timeout_ms: 3000 },
            configure: (cfg, ctx) => {
                cfg.callback_settings = {
                    stuck: { callback_type: 'generic_api', endpoint: hang.url },
                    refused: { callback_type: 'generic_api', endpoint: `http://127.0.0.1:${ctx.closedPort}/x` },
                };
            },
        });
    });
    after(async () => {
        if (h) await h.stop();
        if (hang) await hang.stop();
    });

    it('40 calls while one sink hangs and one refuses: each quick, events dropped and counted', async () => {
        const times = [];
        for (let i = 0; i < 40; i++) {
            const t0 = performance.now();
            const r = await chat(h, 'gpt-4o-mini');
            times.push(performance.now() - t0);
            assert.equal(r.status, 200);
        }
        times.sort((a, b) => a - b);
        // the hung sink holds each delivery 3 s: a request waiting on it would show
        assert.ok(times[times.length - 1] < 1000, `slowest call ${times[times.length - 1]} ms`);
        const m = await scrapeSamples(h);
        const dropped = sum(m, 'sluice_callback_events_dropped_total', { callback_name: 'stuck' });
        // at most one batch in delivery (2) and a full queue (4) are not dropped yet
        assert.ok(dropped >= 40 - 6, `stuck dropped ${dropped}`);
        assert.equal(sum(m, 'sluice_callback_events_sent_total', { callback_name: 'stuck' }), 0);
        assert.ok(hang.posts.length >= 1, 'the hung sink got its first batch');
        await new Promise((r) => setTimeout(r, 300));
        const m2 = await scrapeSamples(h);
        assert.equal(sum(m2, 'sluice_callback_events_dropped_total', { callback_name: 'refused' }), 40);
        assert.ok(sum(m2, 'litellm_callback_logging_failures_metric_total', { callback_name: 'refused' }) >= 1);
        assert.match(h.sluiceLog(), /callback refused: \d+ event\(s\) to 127\.0\.0\.1:\d+ not delivered/);
    });
});

describe('logs: JSON lines, the request id on every line a request causes', () => {
    let h;

    before(async () => {
        h = await startHarness({
            // memcached configured but not there: the first call that needs
            // it logs so from deep inside the counters
            generalSettings: { memcached_servers: ['127.0.0.1:1'] },
        });
    });
    after(async () => { if (h) await h.stop(); });

    it('warnings and errors written deep inside a request name it; the request line names its trace', async () => {
        const trace = hex(16);
        const down = await chat(h, 'unreachable', { traceparent: `00-${trace}-${hex(8)}-01` });
        assert.equal(down.status, 502);
        const lines = h.sluiceLog().split('\n').filter(Boolean).map((l) => JSON.parse(l));
        const mine = lines.filter((l) => l.request_id === down.id);
        const warns = mine.filter((l) => l.level === 'warn' || l.level === 'error');
        assert.ok(warns.some((l) => /memcached does not answer/.test(l.msg)), JSON.stringify(mine));
        assert.ok(warns.some((l) => /upstream transfer failed/.test(l.msg)), JSON.stringify(mine));
        const reqLine = mine.find((l) => l.msg === 'request');
        assert.equal(reqLine.status, 502);
        assert.equal(reqLine.error, 'upstream_connect');
        assert.equal(reqLine.trace_id, trace);
        for (const l of lines.filter((x) => x.level === 'error' || x.level === 'warn'))
            assert.ok(l.request_id || !/upstream|deployment|guardrail|budget/.test(l.msg), `no request id: ${JSON.stringify(l)}`);
        assert.ok(!h.sluiceLog().includes(h.masterKey), 'no key in the log');
        assert.ok(!h.sluiceLog().includes('hello there'), 'no prompt in the log');
    });
});

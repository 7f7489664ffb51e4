// sluice's log (its stderr, captured by the harness through lighttpd's
// stderr): one JSON object per line; exactly one "msg":"request" line per
// request, keyed by the x-request-id the client got, with the documented
// fields and the right values; and never a key, an Authorization value, a
// prompt or a completion in any line. Run at log_level info (the default) and
// at debug, where a leak would be most likely.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, MASTER_KEY, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { curl } from './lib/http.mjs';
import { waitFor } from './lib/procs.mjs';
import { user } from './lib/chat.mjs';

const WRONG_KEY = 'sk-wrong-VERYSECRET-123';
const CANARY = 'PROMPT-CANARY-7f3a';
const COMPLETION_CANARY = 'COMPLETION-CANARY-91bd';

/* Strings that must appear in no log line, with why. */
const FORBIDDEN = [
    [MASTER_KEY, 'the master key'],
    ['master-1234', 'part of the master key'],
    [WRONG_KEY, 'the wrong key a client sent'],
    ['VERYSECRET', 'part of the wrong key'],
    [FAKE_UPSTREAM_KEY, "the upstream's api_key"],
    [`Bearer ${MASTER_KEY}`, 'an Authorization header value'],
    [`Bearer ${WRONG_KEY}`, 'an Authorization header value'],
    [`Bearer ${FAKE_UPSTREAM_KEY}`, 'the upstream Authorization header value'],
    [CANARY, 'prompt text'],
    [COMPLETION_CANARY, 'completion text'],
    ['Echo: ', 'echoed completion text'],
];

const ridOf = (headers) => (typeof headers?.get === 'function' ? headers.get('x-request-id') : headers?.['x-request-id']);

for (const level of ['info', 'debug']) {
    describe(`request log at log_level ${level}`, () => {
        let h;
        /* What we sent and what the client saw, one entry per request. */
        const made = [];

        before(async () => {
            h = await startHarness({ sluiceSettings: { log_level: level } });
        });

        after(async () => {
            if (h) await h.stop();
        });

        /* Runs fn (which throws an OpenAI.APIError) and records the error reply. */
        async function expectError(entry, fn) {
            try {
                await fn();
            } catch (e) {
                assert.equal(e.status, entry.status, `${entry.name}: ${e.message}`);
                made.push({ ...entry, rid: ridOf(e.headers) });
                return;
            }
            assert.fail(`${entry.name}: expected HTTP ${entry.status}, the call succeeded`);
        }

        it('makes chat, stream, error and embeddings requests carrying secrets and canaries', async () => {
            const client = h.client();

            // 1. A whole chat through the fake upstream.
            {
                const { data, response } = await client.chat.completions
                    .create({ model: 'gpt-4o-mini', messages: user(`${CANARY} whole`) }).withResponse();
                assert.equal(data.choices[0].message.content, `Echo: ${CANARY} whole`);
                made.push({
                    name: 'chat', rid: ridOf(response.headers), path: '/v1/chat/completions', model: 'gpt-4o-mini',
                    status: 200, stream: false, proxied: true, usage: data.usage,
                    deploymentHeader: response.headers.get('x-litellm-model-id'),
                });
            }
            // 2. A streamed chat through the fake upstream, with usage in the last chunk.
            {
                const { data, response } = await client.chat.completions.create({
                    model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true },
                    messages: user(`${CANARY} streamed`),
                }).withResponse();
                let text = '';
                let usage = null;
                let chunks = 0;
                for await (const c of data) {
                    chunks++;
                    text += c.choices[0]?.delta?.content ?? '';
                    if (c.usage) usage = c.usage;
                }
                assert.equal(text, `Echo: ${CANARY} streamed`);
                assert.ok(usage, 'the stream carried usage');
                made.push({
                    name: 'stream', rid: ridOf(response.headers), path: '/v1/chat/completions', model: 'gpt-4o-mini',
                    status: 200, stream: true, proxied: true, usage, chunks,
                    deploymentHeader: response.headers.get('x-litellm-model-id'),
                });
            }
            // 3. The built-in mock, whole, with a distinctive completion.
            {
                const { data, response } = await client.chat.completions.create({
                    model: 'mock-gpt', mock_response: COMPLETION_CANARY, messages: user(`${CANARY} mock`),
                }).withResponse();
                assert.equal(data.choices[0].message.content, COMPLETION_CANARY);
                made.push({
                    name: 'mock chat', rid: ridOf(response.headers), path: '/v1/chat/completions', model: 'mock-gpt',
                    status: 200, stream: false, proxied: false, usage: data.usage,
                    deploymentHeader: response.headers.get('x-litellm-model-id'),
                });
            }
            // 4. The mock, streamed.
            {
                const { data, response } = await client.chat.completions.create({
                    model: 'mock-gpt', stream: true, messages: user(`${CANARY} mock streamed`),
                }).withResponse();
                let text = '';
                for await (const c of data) text += c.choices[0]?.delta?.content ?? '';
                assert.equal(text, `Echo: ${CANARY} mock streamed`);
                made.push({
                    name: 'mock stream', rid: ridOf(response.headers), path: '/v1/chat/completions', model: 'mock-gpt',
                    status: 200, stream: true, proxied: false,
                });
            }
            // 5. A wrong key (the model may be unknown to the log: auth comes first).
            await expectError(
                { name: 'wrong key', path: '/v1/chat/completions', model: 'gpt-4o-mini', modelMayBeNull: true,
                    status: 401, stream: false },
                () => h.client({ apiKey: WRONG_KEY }).chat.completions.create({
                    model: 'gpt-4o-mini', messages: user(`${CANARY} wrong key`),
                }),
            );
            // 6. The same wrong key sent raw, streamed, as x-api-key too.
            {
                const r = await curl(`${h.baseURL}/chat/completions`, {
                    method: 'POST',
                    headers: { authorization: `Bearer ${WRONG_KEY}`, 'x-api-key': WRONG_KEY, 'content-type': 'application/json' },
                    body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: user(`${CANARY} raw`) }),
                });
                assert.equal(r.status, 401, r.text);
                made.push({
                    name: 'wrong key (curl)', rid: r.headers['x-request-id'], path: '/v1/chat/completions',
                    model: 'gpt-4o-mini', modelMayBeNull: true, status: 401, stream: true, streamMayBeFalse: true,
                });
            }
            // 7. An unknown model.
            await expectError(
                { name: 'unknown model', path: '/v1/chat/completions', model: 'no-such-model-x1', status: 400, stream: false },
                () => client.chat.completions.create({ model: 'no-such-model-x1', messages: user(`${CANARY} unknown`) }),
            );
            // 8. An upstream 500.
            await expectError(
                { name: 'upstream 500', path: '/v1/chat/completions', model: 'fault-500', status: 500, stream: false, proxied: true },
                () => client.chat.completions.create({ model: 'fault-500', messages: user(`${CANARY} fault`) }),
            );
            // 9. Embeddings.
            {
                const { data, response } = await client.embeddings.create({
                    model: 'text-embedding-3-small', input: [`${CANARY} embed one`, `${CANARY} two`],
                }).withResponse();
                assert.equal(data.data.length, 2);
                made.push({
                    name: 'embeddings', rid: ridOf(response.headers), path: '/v1/embeddings',
                    model: 'text-embedding-3-small', status: 200, stream: false, proxied: true,
                    usage: { prompt_tokens: data.usage.prompt_tokens, completion_tokens: 0 },
                    deploymentHeader: response.headers.get('x-litellm-model-id'),
                });
            }
            for (const m of made) assert.ok(m.rid, `${m.name}: the response has an x-request-id`);
            assert.equal(new Set(made.map((m) => m.rid)).size, made.length, 'request ids are unique');
        });

        /* Every captured line, parsed; waits until each request's line is in. */
        async function logLines() {
            let lines = [];
            await waitFor(() => {
                lines = h.sluiceLog().split('\n').filter((l) => l !== '');
                const text = lines.join('\n');
                return made.every((m) => text.includes(m.rid));
            }, { timeoutMs: 10000, describe: () => `a request line for each of ${made.map((m) => m.rid)}:\n${h.sluiceLog()}` });
            return lines;
        }

        it('every line is one JSON object', async () => {
            assert.ok(made.length >= 9, 'the requests were made');
            const lines = await logLines();
            assert.ok(lines.length > made.length, `${lines.length} lines`);
            for (const [i, l] of lines.entries()) {
                let o;
                assert.doesNotThrow(() => { o = JSON.parse(l); }, `line ${i + 1} is not JSON: ${l.slice(0, 300)}`);
                assert.ok(o !== null && typeof o === 'object' && !Array.isArray(o), `line ${i + 1} is not an object: ${l}`);
                assert.equal(typeof o.msg, 'string', `line ${i + 1} has a msg: ${l}`);
                assert.equal(typeof o.level, 'string', `line ${i + 1} has a level: ${l}`);
            }
        });

        it('exactly one "request" line per request, with the documented fields and values', async () => {
            assert.ok(made.length >= 9, 'the requests were made');
            const lines = (await logLines()).map((l) => JSON.parse(l));
            for (const m of made) {
                const mine = lines.filter((o) => o.msg === 'request' && o.request_id === m.rid);
                assert.equal(mine.length, 1, `${m.name}: ${mine.length} request lines for ${m.rid}`);
                const o = mine[0];
                const ctx = `${m.name}: ${JSON.stringify(o)}`;
                assert.equal(o.method, 'POST', ctx);
                assert.equal(o.path, m.path, ctx);
                if (m.modelMayBeNull) assert.ok(o.model === null || o.model === m.model, ctx);
                else assert.equal(o.model, m.model, ctx);
                assert.equal(o.status, m.status, ctx);
                if (m.streamMayBeFalse) assert.equal(typeof o.stream, 'boolean', ctx);
                else assert.equal(o.stream, m.stream, ctx);
                assert.ok('deployment' in o, `deployment: ${ctx}`);
                if (m.status === 200) {
                    assert.equal(typeof o.deployment, 'string', ctx);
                    if (m.deploymentHeader) assert.equal(o.deployment, m.deploymentHeader, `deployment = x-litellm-model-id: ${ctx}`);
                }
                if (m.status === 400 || m.status === 401) assert.equal(o.deployment, null, ctx);
                assert.equal(typeof o.latency_ms, 'number', ctx);
                assert.ok(o.latency_ms >= 0, ctx);
                for (const k of ['events', 'prompt_tokens', 'completion_tokens']) {
                    assert.ok(Number.isInteger(o[k]) && o[k] >= 0, `${k}: ${ctx}`);
                }
                if (m.stream && m.status === 200) assert.ok(o.events >= 2, `a stream counts its events: ${ctx}`);
                if (m.proxied) {
                    assert.equal(typeof o.ttfb_ms, 'number', `ttfb_ms on a proxied call: ${ctx}`);
                    assert.ok(o.ttfb_ms >= 0 && o.ttfb_ms <= o.latency_ms + 1, `ttfb_ms within latency: ${ctx}`);
                }
                if (m.usage) {
                    assert.equal(o.prompt_tokens, m.usage.prompt_tokens, `prompt_tokens as the client saw: ${ctx}`);
                    assert.equal(o.completion_tokens, m.usage.completion_tokens, `completion_tokens as the client saw: ${ctx}`);
                }
                assert.equal(o.client_gone ?? false, false, ctx);
                // Errors name their kind, so a 5xx from a dead upstream and one
                // passed on from a live one can be told apart.
                const kinds = { 401: 'auth', 400: 'unknown_model', 500: 'upstream_status' };
                if (m.status === 200) assert.equal(o.error, undefined, ctx);
                else if (kinds[m.status] && !(m.status === 400 && m.model !== 'no-such-model-x1'))
                    assert.equal(o.error, kinds[m.status], ctx);
            }
        });

        it('no line carries a key, an Authorization value, a prompt or a completion', async () => {
            assert.ok(made.length >= 9, 'the requests were made');
            const lines = await logLines();
            const leaks = [];
            for (const l of lines) {
                for (const [s, what] of FORBIDDEN) if (l.includes(s)) leaks.push(`${what} (${s}) in: ${l.slice(0, 400)}`);
                if (/\bbearer\s+\S/i.test(l)) leaks.push(`a Bearer value in: ${l.slice(0, 400)}`);
            }
            assert.deepEqual(leaks, []);
        });
    });
}

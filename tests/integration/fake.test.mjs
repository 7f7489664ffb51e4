// The fake OpenAI upstream is only useful if the official SDK accepts it:
// these tests point the `openai` package straight at the fake (no gateway)
// and check every shape and fault mode the gateway tests rely on.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import OpenAI from 'openai';
import { startFakeProcess, sleep } from './lib/procs.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';
import { user, collect, textOf } from './lib/chat.mjs';

const KEY = 'fake-upstream-key';
let dir;
let fake;
let client;

before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-fake-'));
    fake = await startFakeProcess(dir, { apiKey: KEY });
    client = new OpenAI({ apiKey: KEY, baseURL: fake.baseURL, maxRetries: 0, timeout: 20000 });
});

after(async () => {
    if (fake) await fake.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('fake upstream via the official SDK', () => {
    it('chat: non-stream echo with usage and the requested model', async () => {
        const r = await client.chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [{ role: 'system', content: 'be terse' }, ...user('hello there world')],
        });
        assert.equal(r.object, 'chat.completion');
        assert.equal(r.model, 'gpt-4o-mini');
        assert.match(r.id, /^chatcmpl-/);
        assert.equal(typeof r.created, 'number');
        assert.equal(r.choices.length, 1);
        assert.equal(r.choices[0].message.role, 'assistant');
        assert.equal(r.choices[0].message.content, 'Echo: hello there world');
        assert.equal(r.choices[0].message.refusal, null);
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.equal(r.choices[0].logprobs, null);
        assert.equal(r.usage.completion_tokens, 4);
        assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
        assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);
        assert.equal(r.system_fingerprint, 'fp_fake');
    });

    it('chat: content parts are concatenated', async () => {
        const r = await client.chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [{ role: 'user', content: [{ type: 'text', text: 'one ' }, { type: 'text', text: 'two' }] }],
        });
        assert.equal(r.choices[0].message.content, 'Echo: one two');
    });

    it('chat: n and max_tokens', async () => {
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', n: 2, max_tokens: 2, messages: user('a b c d') });
        assert.equal(r.choices.length, 2);
        assert.equal(r.choices[1].index, 1);
        assert.equal(r.choices[0].message.content, 'Echo: a ');
        assert.equal(r.choices[0].finish_reason, 'length');
    });

    it('chat: stream assembles to the same text, one word per event', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'gpt-4o-mini', stream: true, messages: user('the quick  brown fox'),
        }));
        assert.equal(textOf(chunks), 'Echo: the quick  brown fox');
        assert.equal(chunks[0].choices[0].delta.role, 'assistant');
        assert.equal(chunks[0].object, 'chat.completion.chunk');
        assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
        // role chunk + 5 words + finish chunk
        assert.equal(chunks.length, 7);
        assert.ok(chunks.every((c) => c.model === 'gpt-4o-mini'));
    });

    it('chat: stream with include_usage ends with a usage chunk', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: user('hi'),
        }));
        const last = chunks.at(-1);
        assert.deepEqual(last.choices, []);
        assert.equal(last.usage.completion_tokens, 2);
        assert.equal(textOf(chunks.slice(0, -1)), 'Echo: hi');
    });

    it('chat: tool call, non-stream and stream', async () => {
        const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', tools, messages: user('please call tool now') });
        assert.equal(r.choices[0].finish_reason, 'tool_calls');
        const tc = r.choices[0].message.tool_calls[0];
        assert.equal(tc.type, 'function');
        assert.equal(tc.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(tc.function.arguments), { text: 'please call tool now' });

        const chunks = await collect(await client.chat.completions.create({
            model: 'gpt-4o-mini', tools, stream: true, messages: user('please call tool now'),
        }));
        let name = '';
        let args = '';
        let id = null;
        for (const c of chunks) {
            for (const d of c.choices[0]?.delta?.tool_calls ?? []) {
                assert.equal(d.index, 0);
                if (d.id) id = d.id;
                name += d.function?.name ?? '';
                args += d.function?.arguments ?? '';
            }
        }
        assert.ok(id);
        assert.equal(name, 'get_weather');
        assert.deepEqual(JSON.parse(args), { text: 'please call tool now' });
        assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');

        // The SDK's own stream helper assembles the same call.
        const runner = client.chat.completions.stream({ model: 'gpt-4o-mini', tools, messages: user('call tool') });
        const final = await runner.finalChatCompletion();
        assert.equal(final.choices[0].message.tool_calls[0].function.name, 'get_weather');
    });

    it('embeddings: SDK default base64 decodes to the float encoding', async () => {
        const b = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
        const f = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello', encoding_format: 'float' });
        assert.equal(b.object, 'list');
        assert.equal(b.model, 'text-embedding-3-small');
        assert.equal(b.data[0].object, 'embedding');
        assert.equal(b.data[0].index, 0);
        assert.equal(b.data[0].embedding.length, 8);
        assert.deepEqual(b.data[0].embedding, f.data[0].embedding);
        assert.deepEqual(f.data[0].embedding, fakeEmbedding('hello'));
        assert.ok(b.usage.prompt_tokens > 0);
        assert.equal(b.usage.total_tokens, b.usage.prompt_tokens);
    });

    it('embeddings: arrays of strings and of tokens', async () => {
        const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b', 'c'] });
        assert.deepEqual(r.data.map((d) => d.index), [0, 1, 2]);
        assert.deepEqual(r.data[2].embedding, fakeEmbedding('c'));
        assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
        const t = await client.embeddings.create({ model: 'text-embedding-3-small', input: [[1, 2, 3], [4]] });
        assert.deepEqual(t.data[0].embedding, fakeEmbedding([1, 2, 3]));
        const d = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x', dimensions: 20 });
        assert.equal(d.data[0].embedding.length, 20);
    });

    it('models: list and retrieve', async () => {
        const ids = [];
        for await (const m of client.models.list()) ids.push(m.id);
        assert.ok(ids.includes('gpt-4o-mini'));
        const m = await client.models.retrieve('gpt-4o-mini');
        assert.equal(m.object, 'model');
        assert.equal(m.owned_by, 'fake-upstream');
        await assert.rejects(client.models.retrieve('nope'), (e) => e instanceof OpenAI.NotFoundError);
    });

    it('auth: missing or wrong bearer is a 401 AuthenticationError', async () => {
        const bad = new OpenAI({ apiKey: 'wrong', baseURL: fake.baseURL, maxRetries: 0 });
        await assert.rejects(bad.chat.completions.create({ model: 'gpt-4o-mini', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
            assert.equal(e.status, 401);
            assert.equal(e.code, 'invalid_api_key');
            assert.equal(e.type, 'invalid_request_error');
            return true;
        });
        const res = await fetch(`${fake.baseURL}/models`);
        assert.equal(res.status, 401);
        const body = await res.json();
        assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    });

    it('fault-500 → InternalServerError 500', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'fault-500', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.InternalServerError, String(e));
            assert.equal(e.status, 500);
            assert.equal(e.type, 'server_error');
            return true;
        });
    });

    it('fault-429 → RateLimitError 429 with retry-after 7', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'fault-429', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.RateLimitError, String(e));
            assert.equal(e.status, 429);
            assert.equal(e.headers.get('retry-after'), '7');
            assert.equal(e.type, 'rate_limit_error');
            return true;
        });
    });

    it('fault-400 → BadRequestError 400 with the upstream message', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'fault-400', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.BadRequestError, String(e));
            assert.equal(e.status, 400);
            assert.match(e.message, /fault-400/);
            assert.equal(e.param, 'messages');
            return true;
        });
        // The same faults apply to embeddings.
        await assert.rejects(client.embeddings.create({ model: 'fault-500', input: 'x' }),
            (e) => e instanceof OpenAI.InternalServerError);
    });

    it('bad requests get OpenAI-shaped 400s', async () => {
        await assert.rejects(client.chat.completions.create({ messages: user('x') }),
            (e) => e instanceof OpenAI.BadRequestError && e.param === 'model');
        await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }),
            (e) => e instanceof OpenAI.BadRequestError);
        const res = await fetch(`${fake.baseURL}/chat/completions`, {
            method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: '{"model":',
        });
        assert.equal(res.status, 400);
        assert.equal((await res.json()).error.type, 'invalid_request_error');
    });

    it('slow-first-byte: full text after the delay (number in the name overrides it)', async () => {
        const t0 = Date.now();
        const chunks = await collect(await client.chat.completions.create({
            model: 'slow-first-byte-600', stream: true, messages: user('patience pays'),
        }));
        assert.ok(Date.now() - t0 >= 550, `took ${Date.now() - t0} ms`);
        assert.equal(textOf(chunks), 'Echo: patience pays');
        const t1 = Date.now();
        const r = await client.chat.completions.create({ model: 'slow-first-byte', messages: user('x') });
        assert.ok(Date.now() - t1 >= 1400);
        assert.equal(r.choices[0].message.content, 'Echo: x');
    });

    it('slow-stream: events about 300 ms apart for about 3 s', async () => {
        const t0 = Date.now();
        const times = [];
        const stream = await client.chat.completions.create({ model: 'slow-stream', stream: true, messages: user('tick tock') });
        let text = '';
        for await (const c of stream) {
            times.push(Date.now() - t0);
            text += c.choices[0]?.delta?.content ?? '';
        }
        assert.equal(text, 'Echo: tick tock');
        const total = Date.now() - t0;
        assert.ok(total >= 2500 && total < 8000, `stream took ${total} ms`);
        // Spread out, not sent at once (single gaps are too noisy on a busy machine).
        assert.ok(times.at(-1) - times[0] >= 1500, `events spread over ${times.at(-1) - times[0]} ms`);
    });

    it('drop-mid-stream: the SDK stream fails instead of hanging', async () => {
        const stream = await client.chat.completions.create({ model: 'drop-mid-stream', stream: true, messages: user('a b c d') });
        const got = [];
        await assert.rejects(async () => {
            for await (const c of stream) got.push(c);
        });
        assert.ok(got.length <= 2);
        const log = await fake.log();
        const e = log.filter((x) => x.model === 'drop-mid-stream').at(-1);
        assert.equal(e.completed, false);
    });

    it('hang: never answers; the log records when the client gave up', async () => {
        await fake.reset();
        const t0 = Date.now();
        let tAbort = 0;
        await assert.rejects(
            client.chat.completions.create({ model: 'hang', messages: user('x') }, { timeout: 700 }),
            (e) => {
                tAbort = Date.now();
                return e instanceof OpenAI.APIConnectionTimeoutError;
            });
        assert.ok(tAbort - t0 >= 650);
        let entry;
        for (let i = 0; i < 40 && !(entry && entry.t_close_ms); i++) {
            await sleep(50);
            entry = (await fake.log()).find((x) => x.model === 'hang');
        }
        assert.ok(entry, 'hang request logged');
        assert.equal(entry.completed, false);
        assert.equal(entry.status, null);
        assert.ok(entry.t_close_ms !== null, 'close recorded');
        assert.ok(Math.abs(entry.t_close_ms - tAbort) < 500, `closed ${entry.t_close_ms - tAbort} ms after abort`);
    });

    it('hang: a raw socket close is seen at once', async () => {
        await fake.reset();
        const req = http.request({
            host: '127.0.0.1', port: fake.port, path: '/v1/chat/completions', method: 'POST', agent: false,
            headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        });
        req.on('error', () => {});
        req.end(JSON.stringify({ model: 'hang', stream: true, messages: user('x') }));
        await sleep(300);
        const tAbort = Date.now();
        req.destroy();
        let entry;
        for (let i = 0; i < 40 && !(entry && entry.t_close_ms); i++) {
            await sleep(25);
            entry = (await fake.log()).find((x) => x.model === 'hang');
        }
        assert.ok(entry && entry.t_close_ms, 'close recorded');
        assert.ok(entry.t_close_ms - tAbort < 300, `closed ${entry.t_close_ms - tAbort} ms after abort`);
    });

    it('echo-body: the content is the request body, unknown fields included', async () => {
        const r = await client.chat.completions.create({
            model: 'echo-body', messages: user('x'), foo_bar_param: { x: [1, 2] },
        });
        const seen = JSON.parse(r.choices[0].message.content);
        assert.equal(seen.model, 'echo-body');
        assert.deepEqual(seen.foo_bar_param, { x: [1, 2] });
        assert.deepEqual(seen.messages, user('x'));
    });

    it('control log: masks authorization, counts bytes, reset clears', async () => {
        await fake.reset();
        await client.chat.completions.create({ model: 'gpt-4o-mini', messages: user('logged') });
        const log = await fake.log();
        assert.equal(log.length, 1);
        const e = log[0];
        assert.equal(e.path, '/v1/chat/completions');
        assert.equal(e.model, 'gpt-4o-mini');
        assert.equal(e.had_auth, true);
        assert.equal(e.auth_ok, true);
        assert.equal(e.headers.authorization, undefined);
        assert.ok(!JSON.stringify(log).includes(KEY), 'the key never appears in the log');
        assert.ok(e.body_bytes > 0);
        assert.equal(e.completed, true);
        assert.equal(e.status, 200);
        assert.ok(e.t_close_ms >= e.t_start_ms);
        await fake.reset();
        assert.deepEqual(await fake.log(), []);
    });
});

// The happy paths through lighttpd + sluice, driven by the official SDK:
// health, models, chat (plain and streamed), embeddings, the built-in mock
// provider, pass-through of unknown fields, and the x-request-id header.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startHarness } from './lib/harness.mjs';
import { curl } from './lib/http.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';
import { user, collect, textOf } from './lib/chat.mjs';

let h;
let client;

before(async () => {
    h = await startHarness();
    client = h.client();
});

after(async () => {
    if (h) await h.stop();
});

describe('health (no auth)', () => {
    it('GET /health/liveliness → 200 "I\'m alive!"', async () => {
        const r = await curl(`${h.rootURL}/health/liveliness`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json, "I'm alive!");
        assert.match(r.headers['content-type'] ?? '', /application\/json/);
        assert.ok(r.headers['x-request-id'], 'x-request-id header');
    });

    it('GET /health/readiness → 200 with status "healthy"', async () => {
        const r = await curl(`${h.rootURL}/health/readiness`);
        assert.equal(r.status, 200, r.text);
        assert.equal(typeof r.json, 'object', r.text);
        assert.equal(r.json.status, 'healthy');
        assert.ok(r.headers['x-request-id'], 'x-request-id header');
    });
});

describe('models', () => {
    it('GET /v1/models lists each model_name once, OpenAI shape', async () => {
        const r = await curl(`${h.baseURL}/models`, { headers: { authorization: `Bearer ${h.masterKey}` } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.object, 'list');
        const ids = r.json.data.map((m) => m.id);
        assert.deepEqual([...ids].sort(), [...h.modelNames].sort());
        for (const m of r.json.data) {
            assert.equal(m.object, 'model');
            assert.equal(typeof m.created, 'number');
            assert.equal(typeof m.owned_by, 'string');
        }
        assert.ok(r.headers['x-request-id'], 'x-request-id header');
    });

    it('the SDK lists the same models', async () => {
        const ids = [];
        for await (const m of client.models.list()) ids.push(m.id);
        assert.deepEqual(ids.sort(), [...h.modelNames].sort());
    });

    it('GET /v1/models without a key → 401', async () => {
        const r = await curl(`${h.baseURL}/models`);
        assert.equal(r.status, 401, r.text);
    });
});

describe('chat completions', () => {
    it('non-stream: echo text, the requested model name, usage', async () => {
        const { data: r, response } = await client.chat.completions
            .create({ model: 'gpt-4o-mini', messages: user('hello from the sdk') })
            .withResponse();
        assert.equal(r.choices[0].message.content, 'Echo: hello from the sdk');
        assert.equal(r.choices[0].message.role, 'assistant');
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.equal(r.model, 'gpt-4o-mini');
        assert.equal(r.object, 'chat.completion');
        assert.ok(r.usage, 'usage present');
        assert.equal(r.usage.completion_tokens, 5); // "Echo: hello from the sdk"
        assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
        assert.ok(response.headers.get('x-request-id'), 'x-request-id header');
    });

    it('the upstream got the deployment\'s key, not the client\'s', async () => {
        await h.resetFake();
        await client.chat.completions.create({ model: 'gpt-4o-mini', messages: user('key check') });
        const log = await h.fakeLog();
        assert.equal(log.length, 1, JSON.stringify(log));
        assert.equal(log[0].path, '/v1/chat/completions');
        assert.equal(log[0].model, 'gpt-4o-mini');
        assert.equal(log[0].auth_ok, true, 'Authorization: Bearer fake-upstream-key');
        assert.equal(log[0].completed, true);
    });

    it('stream: deltas assemble to the text; one event per word', async () => {
        const { data: stream, response } = await client.chat.completions
            .create({ model: 'gpt-4o-mini', stream: true, messages: user('stream me  please') })
            .withResponse();
        assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
        assert.ok(response.headers.get('x-request-id'), 'x-request-id header');
        const chunks = await collect(stream);
        assert.equal(textOf(chunks), 'Echo: stream me  please');
        assert.ok(chunks.length >= 5, `got ${chunks.length} chunks`);
        assert.ok(chunks.every((c) => c.model === 'gpt-4o-mini'), 'every chunk names the requested model');
        assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).at(-1).choices[0].finish_reason, 'stop');
    });

    it('stream with include_usage: the last chunk has usage', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: user('count me'),
        }));
        const last = chunks.at(-1);
        assert.ok(last.usage, `last chunk: ${JSON.stringify(last)}`);
        assert.equal(last.usage.completion_tokens, 3);
        assert.equal(textOf(chunks), 'Echo: count me');
    });

    it('raw stream ends with data: [DONE]', async () => {
        const r = await curl(`${h.baseURL}/chat/completions`, {
            method: 'POST', stream: true,
            headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: user('raw') }),
        });
        assert.equal(r.status, 200, r.text);
        const data = r.text.split('\n').filter((l) => l.startsWith('data: '));
        assert.equal(data.at(-1), 'data: [DONE]');
        assert.ok(r.text.endsWith('\n\n'), 'events end with a blank line');
    });

    it('/chat/completions without the /v1 prefix', async () => {
        const c = h.client({ baseURL: h.rootURL });
        const r = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: user('no prefix') });
        assert.equal(r.choices[0].message.content, 'Echo: no prefix');
    });

    it('tool calls pass through (non-stream and stream)', async () => {
        const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', tools, messages: user('call tool x') });
        assert.equal(r.choices[0].finish_reason, 'tool_calls');
        assert.equal(r.choices[0].message.tool_calls[0].function.name, 'lookup');
        const final = await client.chat.completions
            .stream({ model: 'gpt-4o-mini', tools, messages: user('call tool y') })
            .finalChatCompletion();
        const tc = final.choices[0].message.tool_calls[0];
        assert.equal(tc.function.name, 'lookup');
        assert.deepEqual(JSON.parse(tc.function.arguments), { text: 'call tool y' });
    });
});

describe('pass-through', () => {
    it('unknown fields reach the upstream; the model is rewritten there and restored here', async () => {
        const r = await client.chat.completions.create({
            model: 'echo-alias',
            messages: user('pass me through'),
            foo_bar_param: { x: [1, 2] },
            temperature: 0.25,
        });
        let seen;
        assert.doesNotThrow(() => { seen = JSON.parse(r.choices[0].message.content); }, r.choices[0].message.content);
        assert.equal(seen.model, 'echo-body', 'the upstream sees its own model name');
        assert.deepEqual(seen.foo_bar_param, { x: [1, 2] });
        assert.equal(seen.temperature, 0.25);
        assert.deepEqual(seen.messages, user('pass me through'));
        assert.equal(r.model, 'echo-alias', 'the client sees the alias it asked for');
    });
});

describe('embeddings', () => {
    it('SDK default (base64) gives the same floats as encoding_format float', async () => {
        const b = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'embed me' });
        const f = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'embed me', encoding_format: 'float' });
        assert.equal(b.object, 'list');
        assert.equal(b.model, 'text-embedding-3-small');
        assert.deepEqual(b.data[0].embedding, fakeEmbedding('embed me'));
        assert.deepEqual(f.data[0].embedding, fakeEmbedding('embed me'));
        assert.ok(b.usage && b.usage.prompt_tokens > 0, 'usage');
    });

    it('array input keeps order and indexes', async () => {
        const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two', 'three'] });
        assert.deepEqual(r.data.map((d) => d.index), [0, 1, 2]);
        assert.deepEqual(r.data[1].embedding, fakeEmbedding('two'));
    });

    it('/embeddings without the /v1 prefix', async () => {
        const c = h.client({ baseURL: h.rootURL });
        const r = await c.embeddings.create({ model: 'text-embedding-3-small', input: 'x', encoding_format: 'float' });
        assert.deepEqual(r.data[0].embedding, fakeEmbedding('x'));
    });
});

describe('mock provider (mock/echo)', () => {
    it('non-stream: non-empty content containing the user text', async () => {
        const r = await client.chat.completions.create({ model: 'mock-gpt', messages: user('mocking bird') });
        const c = r.choices[0].message.content;
        assert.equal(typeof c, 'string');
        assert.ok(c.length > 0);
        assert.ok(c.includes('mocking bird'), `content: ${JSON.stringify(c)}`);
    });

    it('stream: assembled content contains the user text', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'mock-gpt', stream: true, messages: user('mocking stream'),
        }));
        const text = textOf(chunks);
        assert.ok(text.includes('mocking stream'), `assembled: ${JSON.stringify(text)}`);
    });
});

describe('x-request-id', () => {
    it('is on successes, errors and unknown routes alike', async () => {
        const auth = { authorization: `Bearer ${h.masterKey}` };
        const cases = [
            curl(`${h.rootURL}/health/liveliness`),
            curl(`${h.baseURL}/models`, { headers: auth }),
            curl(`${h.baseURL}/models`),
            curl(`${h.baseURL}/no-such-route`, { headers: auth }),
            curl(`${h.baseURL}/chat/completions`, { method: 'POST', headers: auth, body: '{' }),
        ];
        const ids = new Set();
        for (const r of await Promise.all(cases)) {
            assert.ok(r.headers['x-request-id'], `no x-request-id on ${r.status}: ${r.text.slice(0, 200)}`);
            ids.add(r.headers['x-request-id']);
        }
        assert.equal(ids.size, cases.length, 'ids are unique per request');
    });
});

describe('SDK error class sanity', () => {
    it('an unknown model raises BadRequestError through the SDK', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: user('x') }),
            (e) => e instanceof OpenAI.BadRequestError && e.status === 400);
    });
});

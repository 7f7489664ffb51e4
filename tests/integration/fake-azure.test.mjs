// The fake Azure OpenAI upstream (tests/fakes/providers/azure.mjs) proven
// against the official `openai` package's AzureOpenAI client (deployments
// routes) and plain OpenAI client (the /openai/v1 surface), no gateway.
// The answers themselves come from the OpenAI fake, which fake.test.mjs
// covers in depth; this file checks the Azure layer around them.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { AzureOpenAI } from 'openai';
import { startFakeProcess } from './lib/procs.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';
import { user, collect, textOf } from './lib/chat.mjs';

const KEY = 'fake-azure-key';
const API_VERSION = '2024-10-21';
let dir;
let fake;
let base;
let client;

before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-fake-azure-'));
    fake = await startFakeProcess(dir, { apiKey: KEY, name: 'fake-azure' });
    base = `http://127.0.0.1:${fake.port}`;
    client = new AzureOpenAI({ apiKey: KEY, endpoint: base, apiVersion: API_VERSION, maxRetries: 0, timeout: 20000 });
});

after(async () => {
    if (fake) await fake.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('fake Azure OpenAI via AzureOpenAI', () => {
    it('chat on a deployment: the deployment is the model', async () => {
        await fake.reset();
        const r = await client.chat.completions.create({
            model: 'my-gpt4o', max_tokens: 50, messages: [{ role: 'system', content: 'be terse' }, ...user('hello there world')],
        });
        assert.equal(r.choices[0].message.content, 'Echo: hello there world');
        assert.equal(r.model, 'my-gpt4o');
        assert.equal(r.usage.completion_tokens, 4);
        const [e] = await fake.log();
        assert.equal(e.path, '/openai/deployments/my-gpt4o/chat/completions');
        assert.equal(e.query, `?api-version=${API_VERSION}`);
        assert.equal(e.model, 'my-gpt4o');
        assert.equal(e.auth_ok, true);
        assert.equal(e.body.max_tokens, 50);
        assert.ok(!JSON.stringify(e).includes(KEY), 'the api-key never appears in the log');
    });

    it('chat stream starts with Azure\'s prompt_filter_results chunk', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'my-gpt4o', stream: true, stream_options: { include_usage: true }, messages: user('the quick brown fox'),
        }));
        assert.deepEqual(chunks[0].choices, []);
        assert.equal(chunks[0].id, '');
        assert.equal(chunks[0].prompt_filter_results[0].prompt_index, 0);
        assert.equal(textOf(chunks), 'Echo: the quick brown fox');
        assert.equal(chunks.at(-1).usage.completion_tokens, 5);
        assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
    });

    it('tools, max_tokens and embeddings behave as the OpenAI fake\'s', async () => {
        const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }];
        const t = await client.chat.completions.create({ model: 'my-gpt4o', tools, messages: user('call tool now') });
        assert.equal(t.choices[0].finish_reason, 'tool_calls');
        assert.deepEqual(JSON.parse(t.choices[0].message.tool_calls[0].function.arguments), { text: 'call tool now' });

        const m = await client.chat.completions.create({ model: 'my-gpt4o', max_tokens: 2, messages: user('a b c d') });
        assert.equal(m.choices[0].message.content, 'Echo: a ');
        assert.equal(m.choices[0].finish_reason, 'length');

        const emb = await client.embeddings.create({ model: 'my-embedder', input: 'hello', encoding_format: 'float' });
        assert.equal(emb.model, 'my-embedder');
        assert.deepEqual(emb.data[0].embedding, fakeEmbedding('hello'));
        const log = await fake.log();
        assert.equal(log.at(-1).path, '/openai/deployments/my-embedder/embeddings');
    });

    it('Entra ID bearer token: the fake token works, another is a 401', async () => {
        const ad = new AzureOpenAI({ azureADTokenProvider: async () => 'fake-azure-ad-token', endpoint: base, apiVersion: API_VERSION, maxRetries: 0 });
        const r = await ad.chat.completions.create({ model: 'my-gpt4o', messages: user('via entra') });
        assert.equal(r.choices[0].message.content, 'Echo: via entra');
        const badAd = new AzureOpenAI({ azureADTokenProvider: async () => 'expired-token', endpoint: base, apiVersion: API_VERSION, maxRetries: 0 });
        await assert.rejects(badAd.chat.completions.create({ model: 'my-gpt4o', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
            assert.match(e.message, /Access token is missing, invalid/);
            return true;
        });
    });

    it('api-key failures: wrong key and missing key are Azure 401s', async () => {
        const bad = new AzureOpenAI({ apiKey: 'wrong', endpoint: base, apiVersion: API_VERSION, maxRetries: 0 });
        await assert.rejects(bad.chat.completions.create({ model: 'my-gpt4o', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
            assert.equal(e.status, 401);
            assert.equal(e.code, '401');
            assert.match(e.message, /invalid subscription key/);
            return true;
        });
        const res = await fetch(`${base}/openai/deployments/my-gpt4o/chat/completions?api-version=${API_VERSION}`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: user('x') }),
        });
        assert.equal(res.status, 401);
        assert.match((await res.json()).error.message, /missing subscription key/);
    });

    it('a missing api-version or an unknown path is Azure\'s 404', async () => {
        const post = (p) => fetch(`${base}${p}`, {
            method: 'POST', headers: { 'api-key': KEY, 'content-type': 'application/json' }, body: JSON.stringify({ messages: user('x') }),
        });
        for (const p of ['/openai/deployments/my-gpt4o/chat/completions', `/openai/deployments/my-gpt4o/nope?api-version=${API_VERSION}`]) {
            const res = await post(p);
            assert.equal(res.status, 404, p);
            assert.deepEqual(await res.json(), { error: { code: '404', message: 'Resource not found' } });
        }
    });

    it('the v1 surface: model in the body, api key as bearer or api-key header', async () => {
        const v1 = new OpenAI({ apiKey: KEY, baseURL: `${base}/openai/v1`, maxRetries: 0 });
        const r = await v1.chat.completions.create({ model: 'my-gpt4o', messages: user('v1 hello') });
        assert.equal(r.choices[0].message.content, 'Echo: v1 hello');
        assert.equal(r.model, 'my-gpt4o');
        const viaHeader = new OpenAI({ apiKey: 'unused', baseURL: `${base}/openai/v1`, maxRetries: 0,
            defaultHeaders: { authorization: null, 'api-key': KEY } });
        const e = await viaHeader.embeddings.create({ model: 'my-embedder', input: 'x', encoding_format: 'float' });
        assert.deepEqual(e.data[0].embedding, fakeEmbedding('x'));
        const ids = [];
        for await (const m of v1.models.list()) ids.push(m.id);
        assert.ok(ids.length > 0);
        await assert.rejects(v1.chat.completions.create({ model: 'content-filter', messages: user('x') }),
            (err) => err instanceof OpenAI.BadRequestError && err.code === 'content_filter');
    });

    it('Azure faults: content filter, context length, 429, overload; OpenAI faults pass through', async () => {
        const chat = (model) => client.chat.completions.create({ model, messages: user('x') });
        await assert.rejects(chat('content-filter'), (e) => {
            assert.ok(e instanceof OpenAI.BadRequestError, String(e));
            assert.equal(e.code, 'content_filter');
            assert.equal(e.param, 'prompt');
            assert.equal(e.error.innererror.code, 'ResponsibleAIPolicyViolation');
            assert.equal(e.error.innererror.content_filter_result.violence.filtered, true);
            return true;
        });
        await assert.rejects(chat('context-too-long'),
            (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
        await assert.rejects(chat('fault-429'), (e) => {
            assert.ok(e instanceof OpenAI.RateLimitError, String(e));
            assert.equal(e.headers.get('retry-after'), '7');
            assert.equal(e.code, '429');
            return true;
        });
        await assert.rejects(chat('overloaded'), (e) => e instanceof OpenAI.InternalServerError && e.status === 503);
        await assert.rejects(chat('fault-500'), (e) => e instanceof OpenAI.InternalServerError && e.status === 500);
        await assert.rejects(chat('fault-400'), (e) => e instanceof OpenAI.BadRequestError && /fault-400/.test(e.message));
        await assert.rejects(client.embeddings.create({ model: 'fault-429', input: 'x' }),
            (e) => e instanceof OpenAI.RateLimitError && /Embeddings_Create/.test(e.message));
    });

    it('stream faults raise during iteration', async () => {
        const quiet = new AzureOpenAI({ apiKey: KEY, endpoint: base, apiVersion: API_VERSION, maxRetries: 0, logLevel: 'off' });
        const stream = (model) => quiet.chat.completions.create({ model, stream: true, messages: user('a b c d') });
        // Chunks seen before the failure: the prompt-filter chunk, then the
        // OpenAI fake's own (drop-mid-stream sends two of those).
        for (const [model, check, before] of [
            ['bad-event', (e) => e instanceof SyntaxError, 1],
            ['stream-error', (e) => e instanceof OpenAI.APIError && /stream-error/.test(e.message), 2],
            ['drop-mid-stream', () => true, 3],
        ]) {
            const got = [];
            const s = await stream(model);
            await assert.rejects(async () => {
                for await (const c of s) got.push(c);
            }, check, model);
            assert.equal(got.length, before, model);
            assert.deepEqual(got[0].choices, [], model);
        }
        // Not streaming, bad-event and stream-error are ordinary deployments.
        const r = await client.chat.completions.create({ model: 'bad-event', messages: user('x') });
        assert.equal(r.choices[0].message.content, 'Echo: x');
    });
});

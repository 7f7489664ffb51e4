// The gemini/ and vertex_ai/ adapters end to end: the official openai client
// talks to sluice (behind lighttpd), sluice talks Google's generateContent
// API to the fake (tests/fakes/providers/gemini.mjs): AI Studio with an API
// key, Vertex AI with an OAuth2 token that sluice gets for the fake's
// service account (a signed JWT exchanged at the fake's /token). Checks what
// the client gets and, through the fake's log, what Google was sent.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import OpenAI from 'openai';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';
import { user, collect, textOf, chatFaultTests, streamFaultTests } from './lib/chat.mjs';

let h;
let client;
let root;

const FAULTS = ['overloaded', 'context-too-long', 'content-filter', 'prompt-blocked', 'model-not-found',
    'fault-429', 'fault-500', 'fault-400', 'drop-mid-stream', 'bad-event', 'stream-error'];

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            const base = `http://127.0.0.1:${ctx.fakePort}`;
            const gemini = (name, model, extra = {}) => ({
                model_name: name,
                litellm_params: { model: `gemini/${model}`, api_base: base, api_key: FAKE_UPSTREAM_KEY,
                    timeout: 10, ...extra },
            });
            // The key files are written once the fake is up (sluice reads them per request).
            const vertex = (name, model, keyFile, extra = {}) => ({
                model_name: name,
                litellm_params: { model: `vertex_ai/${model}`, api_base: base, vertex_location: 'europe-west4',
                    vertex_credentials: path.join(ctx.tmpdir, keyFile), timeout: 10, ...extra },
            });
            cfg.model_list.push(
                gemini('gem', 'gemini-2.0-flash'),
                gemini('gem-cached', 'gemini-cached'),
                gemini('gem-v1-base', 'gemini-2.0-flash', { api_base: ctx.fakeBase }),
                gemini('gem-badkey', 'gemini-2.0-flash', { api_key: 'wrong-key' }),
                gemini('gem-embed', 'text-embedding-004'),
                ...FAULTS.map((f) => gemini(`gem-${f}`, f)),
                vertex('vtx', 'gemini-2.5-pro', 'sa.json'),
                vertex('vtx-herd', 'gemini-2.5-pro', 'sa-localhost.json'),
                vertex('vtx-embed', 'text-embedding-005', 'sa.json'),
                vertex('vtx-wrong-project', 'gemini-2.5-pro', 'sa.json', { vertex_project: 'someone-else' }),
                vertex('vtx-nokey', 'gemini-2.5-pro', 'missing.json'),
            );
        },
    });
    client = h.client();
    root = `http://127.0.0.1:${h.fakePort}`;
    const sa = await (await fetch(`${root}/__control/vertex/service-account.json`)).json();
    await fs.writeFile(path.join(h.tmpdir, 'sa.json'), JSON.stringify(sa, null, 2));
    // The same account behind another token_uri: a second cache entry.
    await fs.writeFile(path.join(h.tmpdir, 'sa-localhost.json'),
        JSON.stringify({ ...sa, token_uri: sa.token_uri.replace('127.0.0.1', 'localhost') }));
});

after(async () => {
    if (h) await h.stop();
});

const generateCalls = async () => (await h.fake.log()).filter((e) => e.api === 'gemini' || e.api === 'vertex');
const lastUpstream = async () => (await generateCalls()).at(-1);
const tokens = async () => (await fetch(`${root}/__control/vertex/tokens`)).json();

const weather = {
    type: 'function',
    function: {
        name: 'get_weather',
        description: 'Weather for a city',
        parameters: {
            type: 'object', additionalProperties: false, $schema: 'http://json-schema.org/draft-07/schema#',
            properties: { text: { type: 'string', title: 'Text' } }, required: ['text'],
        },
    },
};

describe('gemini/ through sluice', () => {
    it('chat: system prompt to systemInstruction, answer and usage in OpenAI shape', async () => {
        const r = await client.chat.completions.create({
            model: 'gem',
            messages: [{ role: 'system', content: 'be brief' }, ...user('hello there')],
            temperature: 0.3, top_p: 0.5, seed: 4, stop: ['zzz'],
        });
        assert.equal(r.object, 'chat.completion');
        assert.equal(r.model, 'gem');
        assert.equal(r.choices[0].message.role, 'assistant');
        assert.equal(r.choices[0].message.content, 'Echo: hello there');
        assert.equal(r.choices[0].finish_reason, 'stop');
        // 3 + 2 words for the system prompt, 3 + 2 for the user turn
        assert.equal(r.usage.prompt_tokens, 10);
        assert.equal(r.usage.completion_tokens, 3);
        assert.equal(r.usage.total_tokens, 13);
        assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);

        const up = await lastUpstream();
        assert.equal(up.path, '/v1beta/models/gemini-2.0-flash:generateContent');
        assert.equal(up.auth_ok, true);
        assert.equal(up.auth_via, 'header');
        assert.deepEqual(up.body.systemInstruction, { parts: [{ text: 'be brief' }] });
        assert.deepEqual(up.body.contents, [{ role: 'user', parts: [{ text: 'hello there' }] }]);
        assert.deepEqual(up.body.generationConfig, { temperature: 0.3, topP: 0.5, seed: 4, stopSequences: ['zzz'] });
    });

    it('an api_base with a version path is kept', async () => {
        const r = await client.chat.completions.create({ model: 'gem-v1-base', messages: user('x') });
        assert.equal(r.choices[0].message.content, 'Echo: x');
        assert.equal((await lastUpstream()).path, '/v1/models/gemini-2.0-flash:generateContent');
    });

    it('multi-turn history: assistant turns become role model', async () => {
        const r = await client.chat.completions.create({
            model: 'gem',
            messages: [...user('first'), { role: 'assistant', content: 'Echo: first' }, ...user('second')],
        });
        assert.equal(r.choices[0].message.content, 'Echo: second');
        assert.deepEqual((await lastUpstream()).body.contents.map((c) => c.role), ['user', 'model', 'user']);
    });

    it('stream: deltas join to the text; usage chunk when asked', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'gem', messages: user('one two three four'), stream: true,
            stream_options: { include_usage: true },
        }));
        assert.equal(textOf(chunks), 'Echo: one two three four');
        assert.equal(chunks[0].choices[0].delta.role, 'assistant');
        assert.ok(chunks.every((c) => c.model === 'gem'));
        const fin = chunks.filter((c) => c.choices[0]?.finish_reason);
        assert.equal(fin.length, 1);
        assert.equal(fin[0].choices[0].finish_reason, 'stop');
        const last = chunks.at(-1);
        assert.deepEqual(last.choices, []);
        assert.equal(last.usage.prompt_tokens, 7);
        assert.equal(last.usage.completion_tokens, 5);
        assert.ok(chunks.length >= 7, `got ${chunks.length} chunks`);
        const up = await lastUpstream();
        assert.equal(up.path, '/v1beta/models/gemini-2.0-flash:streamGenerateContent');
        assert.equal(up.query, '?alt=sse');
    });

    it('stream without include_usage has no usage chunk', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'gem', messages: user('a b'), stream: true,
        }));
        assert.equal(textOf(chunks), 'Echo: a b');
        assert.ok(chunks.every((c) => c.choices.length === 1 && !c.usage));
    });

    it('tools: a call, then the tool result, then the answer', async () => {
        const messages = user('please call tool now');
        const r1 = await client.chat.completions.create({ model: 'gem', messages, tools: [weather] });
        assert.equal(r1.choices[0].finish_reason, 'tool_calls');
        const call = r1.choices[0].message.tool_calls[0];
        assert.equal(call.type, 'function');
        assert.equal(call.function.name, 'get_weather');
        assert.match(call.id, /^call_/);
        assert.deepEqual(JSON.parse(call.function.arguments), { text: 'please call tool now' });
        let up = await lastUpstream();
        // JSON-Schema-only keys are gone; the rest is as sent.
        assert.deepEqual(up.body.tools, [{ functionDeclarations: [{ name: 'get_weather',
            description: 'Weather for a city',
            parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } }] }]);

        const r2 = await client.chat.completions.create({
            model: 'gem',
            tools: [weather],
            messages: [...messages, r1.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '18C' }],
        });
        assert.equal(r2.choices[0].message.content, 'Echo: tool result: 18C');
        assert.equal(r2.choices[0].finish_reason, 'stop');
        up = await lastUpstream();
        assert.deepEqual(up.body.contents[1],
            { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { text: 'please call tool now' } } }] });
        assert.deepEqual(up.body.contents[2], { role: 'user', parts: [{ functionResponse: { name: 'get_weather',
            response: { content: '18C' } } }] });
    });

    it('tools while streaming: the SDK assembles the call from the deltas', async () => {
        const stream = client.chat.completions.stream({
            model: 'gem', messages: user('call tool for Paris'), tools: [weather],
            tool_choice: { type: 'function', function: { name: 'get_weather' } },
        });
        const final = await stream.finalChatCompletion();
        const call = final.choices[0].message.tool_calls[0];
        assert.equal(final.choices[0].finish_reason, 'tool_calls');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), { text: 'call tool for Paris' });
        const up = await lastUpstream();
        assert.deepEqual(up.body.toolConfig,
            { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } });
    });

    it('tool_choice none keeps the model from calling', async () => {
        const r = await client.chat.completions.create({
            model: 'gem', messages: user('call tool please'), tools: [weather], tool_choice: 'none',
        });
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.equal(r.choices[0].message.content, 'Echo: call tool please');
    });

    it('images: a data URL becomes inlineData, an http URL fileData', async () => {
        const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
        const r = await client.chat.completions.create({
            model: 'gem',
            messages: [{ role: 'user', content: [
                { type: 'text', text: 'what is this' },
                { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
                { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
            ] }],
        });
        assert.equal(r.choices[0].message.content,
            `Echo: what is this [image image/png ${png.length}] [image-url https://example.com/cat.png]`);
        assert.deepEqual((await lastUpstream()).body.contents[0].parts[2],
            { fileData: { mimeType: 'image/png', fileUri: 'https://example.com/cat.png' } });
    });

    it('JSON mode: responseMimeType application/json', async () => {
        const r = await client.chat.completions.create({
            model: 'gem', messages: user('give me json'), response_format: { type: 'json_object' },
        });
        assert.deepEqual(JSON.parse(r.choices[0].message.content), { echo: 'give me json' });
        assert.equal((await lastUpstream()).body.generationConfig.responseMimeType, 'application/json');
    });

    it('json_schema: the schema goes to responseSchema, cut to what Gemini takes', async () => {
        const r = await client.chat.completions.create({
            model: 'gem', messages: user('structured'),
            response_format: { type: 'json_schema', json_schema: { name: 'E', strict: true, schema: {
                type: 'object', additionalProperties: false,
                properties: { echo: { type: 'string' }, n: { type: ['integer', 'null'] } }, required: ['echo'] } } },
        });
        assert.deepEqual(JSON.parse(r.choices[0].message.content), { echo: 'structured' });
        assert.deepEqual((await lastUpstream()).body.generationConfig.responseSchema, {
            type: 'object', properties: { echo: { type: 'string' }, n: { type: 'integer', nullable: true } },
            required: ['echo'], propertyOrdering: ['echo', 'n'],
        });
    });

    it('n: several candidates become several choices', async () => {
        const r = await client.chat.completions.create({ model: 'gem', messages: user('twice'), n: 2 });
        assert.equal(r.choices.length, 2);
        assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
        assert.ok(r.choices.every((c) => c.message.content === 'Echo: twice'));
        assert.equal((await lastUpstream()).body.generationConfig.candidateCount, 2);
    });

    it('max_tokens cuts the answer: finish_reason length', async () => {
        const r = await client.chat.completions.create({
            model: 'gem', messages: user('one two three four five'), max_tokens: 2,
        });
        assert.equal(r.choices[0].message.content, 'Echo: one ');
        assert.equal(r.choices[0].finish_reason, 'length');
        assert.equal((await lastUpstream()).body.generationConfig.maxOutputTokens, 2);
    });

    it('cached input tokens are reported in prompt_tokens_details', async () => {
        const r = await client.chat.completions.create({ model: 'gem-cached', messages: user('a b c') });
        assert.equal(r.usage.prompt_tokens, 6);
        assert.equal(r.usage.prompt_tokens_details.cached_tokens, 2);
    });

    it('reasoning_effort becomes thinkingConfig', async () => {
        await client.chat.completions.create({ model: 'gem', messages: user('think'), reasoning_effort: 'low' });
        assert.deepEqual((await lastUpstream()).body.generationConfig.thinkingConfig,
            { thinkingBudget: 1024, includeThoughts: true });
    });

    it('an unsupported parameter is a 400 naming it; drop_params drops it', async () => {
        await assert.rejects(
            client.chat.completions.create({ model: 'gem', messages: user('x'), logprobs: true }),
            (e) => e instanceof OpenAI.BadRequestError && /gemini does not support parameters: logprobs/.test(e.message),
        );
        const r = await client.chat.completions.create({ model: 'gem', messages: user('x'), logprobs: true,
            drop_params: true });
        assert.equal(r.choices[0].message.content, 'Echo: x');
        const up = await lastUpstream();
        assert.equal(up.body.logprobs, undefined);
        assert.equal(up.body.drop_params, undefined);
    });

    it('safety stop → finish_reason content_filter', async () => {
        const r = await client.chat.completions.create({ model: 'gem-content-filter', messages: user('x') });
        assert.equal(r.choices[0].finish_reason, 'content_filter');
        assert.equal(r.choices[0].message.content, null);
    });

    it('a blocked prompt while streaming ends as content_filter', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'gem-prompt-blocked', messages: user('x'), stream: true,
        }));
        assert.equal(chunks.at(-1).choices[0].finish_reason, 'content_filter');
    });

    it('embeddings: batchEmbedContents, floats and base64', async () => {
        const r = await client.embeddings.create({ model: 'gem-embed', input: ['alpha beta', 'gamma'], dimensions: 6 });
        assert.equal(r.object, 'list');
        assert.equal(r.data.length, 2);
        assert.deepEqual(r.data[1].embedding, fakeEmbedding('gamma', 6));
        assert.ok(r.usage.prompt_tokens > 0);
        const up = await lastUpstream();
        assert.equal(up.rpc, 'batchEmbedContents');
        assert.deepEqual(up.body.requests[0], { model: 'models/text-embedding-004',
            content: { parts: [{ text: 'alpha beta' }] }, outputDimensionality: 6 });
        // The SDK asks for base64 by default and decodes it back to floats.
        const b = await client.embeddings.create({ model: 'gem-embed', input: 'alpha beta' });
        assert.deepEqual(b.data[0].embedding, fakeEmbedding('alpha beta', 8));
    });
});

describe('gemini/ errors', () => {
    const cases = [
        ['gem-overloaded', 503, OpenAI.InternalServerError, null],
        ['gem-context-too-long', 400, OpenAI.BadRequestError, 'context_length_exceeded'],
        ['gem-fault-429', 429, OpenAI.RateLimitError, null],
        ['gem-fault-500', 500, OpenAI.InternalServerError, null],
        ['gem-fault-400', 400, OpenAI.BadRequestError, null],
        ['gem-model-not-found', 404, OpenAI.NotFoundError, null],
        ['gem-badkey', 401, OpenAI.AuthenticationError, null],
        ['gem-prompt-blocked', 400, OpenAI.BadRequestError, 'content_policy_violation'],
    ];
    chatFaultTests(() => client, cases);

    streamFaultTests(() => client, ['gem-stream-error', 'gem-drop-mid-stream', 'gem-bad-event'], OpenAI.APIError);

    it('the gateway is fine afterwards', async () => {
        const r = await client.chat.completions.create({ model: 'gem', messages: user('still here') });
        assert.equal(r.choices[0].message.content, 'Echo: still here');
    });
});

describe('vertex_ai/ through sluice', () => {
    it('a service-account token is fetched once and reused', async () => {
        const before = (await tokens()).issued;
        const r = await client.chat.completions.create({ model: 'vtx', messages: user('hello vertex') });
        assert.equal(r.choices[0].message.content, 'Echo: hello vertex');
        assert.equal(r.usage.prompt_tokens, 5);
        let up = await lastUpstream();
        assert.equal(up.api, 'vertex');
        assert.equal(up.path, '/v1/projects/fake-project/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent');
        assert.equal(up.auth_ok, true);
        assert.equal((await tokens()).issued, before + 1);

        const chunks = await collect(await client.chat.completions.create({
            model: 'vtx', messages: user('a b c'), stream: true, stream_options: { include_usage: true },
        }));
        assert.equal(textOf(chunks), 'Echo: a b c');
        assert.equal(chunks.at(-1).usage.completion_tokens, 4);
        up = await lastUpstream();
        assert.equal(up.rpc, 'streamGenerateContent');
        await client.chat.completions.create({ model: 'vtx', messages: user('again') });
        assert.equal((await tokens()).issued, before + 1, 'no new token for later requests');

        const log = (await h.fake.log()).filter((e) => e.path === '/token');
        assert.equal(log.at(-1).body.claims.iss, 'sluice-fake@fake-project.iam.gserviceaccount.com');
        assert.equal(log.at(-1).body.jwt_header.alg, 'RS256');
    });

    it('concurrent first requests share one token exchange', async () => {
        const before = (await tokens()).issued;
        const rs = await Promise.all([...Array(6).keys()].map((i) =>
            client.chat.completions.create({ model: 'vtx-herd', messages: user(`herd ${i}`) })));
        rs.forEach((r, i) => assert.equal(r.choices[0].message.content, `Echo: herd ${i}`));
        assert.equal((await tokens()).issued, before + 1);
    });

    it('a revoked token is dropped after the 401 and fetched again', async () => {
        await fetch(`${root}/__control/vertex/revoke`, { method: 'POST' });
        const before = (await tokens()).issued;
        await assert.rejects(client.chat.completions.create({ model: 'vtx', messages: user('x') }),
            (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
        const r = await client.chat.completions.create({ model: 'vtx', messages: user('after revoke') });
        assert.equal(r.choices[0].message.content, 'Echo: after revoke');
        assert.equal((await tokens()).issued, before + 1);
    });

    it('tools round trip on Vertex', async () => {
        const messages = user('call tool on vertex');
        const r1 = await client.chat.completions.create({ model: 'vtx', messages, tools: [weather] });
        const call = r1.choices[0].message.tool_calls[0];
        const r2 = await client.chat.completions.create({
            model: 'vtx', tools: [weather],
            messages: [...messages, r1.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '{"output": "sunny"}' }],
        });
        assert.equal(r2.choices[0].message.content, 'Echo: tool result: {"content":{"output":"sunny"}}');
    });

    it('embeddings: predict', async () => {
        const r = await client.embeddings.create({ model: 'vtx-embed', input: ['one two', 'three'],
            encoding_format: 'float' });
        assert.deepEqual(r.data[0].embedding, fakeEmbedding('one two', 8));
        assert.equal(r.usage.prompt_tokens, 3);
        assert.equal((await lastUpstream()).rpc, 'predict');
    });

    it('a project the account may not use → 403', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'vtx-wrong-project', messages: user('x') }),
            (e) => e instanceof OpenAI.PermissionDeniedError && e.status === 403);
    });

    it('unreadable credentials → 401 with a clear message', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'vtx-nokey', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.AuthenticationError, `${e.status} ${e.message}`);
            assert.match(e.error.message, /vertex_ai: the service account key file cannot be read/);
            return true;
        });
    });

    it('no key material in sluice\'s log', async () => {
        const sa = JSON.parse(await fs.readFile(path.join(h.tmpdir, 'sa.json'), 'utf8'));
        const log = h.sluiceLog();
        assert.ok(!log.includes(sa.private_key.split('\n')[1]), 'private key in the log');
        assert.ok(!/ya29\./.test(log), 'access token in the log');
    });
});

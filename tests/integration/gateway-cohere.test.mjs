// Cohere (cohere_chat/ and cohere/) through lighttpd + sluice, driven by the
// official openai SDK; the upstream is the fake Cohere v2 API
// (tests/fakes/providers/cohere.mjs): chat, streaming, tools round trip,
// images, JSON mode, parameter policy, error mapping, stream faults and
// embeddings.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';
import { collect, textOf } from './lib/chat.mjs';

const FAULTS = ['fault-500', 'fault-429', 'fault-400', 'overloaded', 'context-too-long', 'content-filter',
    'drop-mid-stream', 'bad-event', 'stream-error'];

let h;
let client;
let hostBase;

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            // The fake serves /v2/... at its root; ctx.fakeBase ends in /v1.
            hostBase = ctx.fakeBase.replace(/\/v1$/, '');
            const entry = (name, model, extra = {}) => ({
                model_name: name,
                litellm_params: { model, api_base: hostBase, api_key: FAKE_UPSTREAM_KEY, timeout: 10, stream_timeout: 10, ...extra },
            });
            cfg.model_list.push(
                entry('co-chat', 'cohere_chat/command-a-03-2025'),
                entry('co-alias', 'cohere/command-r-plus'),
                entry('co-cached', 'cohere_chat/command-cached'),
                entry('co-drop', 'cohere_chat/command-a-03-2025', { drop_params: true }),
                entry('co-badkey', 'cohere_chat/command-a-03-2025', { api_key: 'wrong-key' }),
                // A LiteLLM-style api_base carrying the whole chat URL.
                entry('co-fullurl', 'cohere_chat/command-a-03-2025', { api_base: `${hostBase}/v2/chat` }),
                { ...entry('co-embed', 'cohere/embed-v4.0'), model_info: { mode: 'embedding' } },
                ...FAULTS.map((f) => entry(`co-${f}`, `cohere_chat/${f}`)),
            );
        },
    });
    client = h.client();
});

after(async () => {
    if (h) await h.stop();
});

const user = (content) => [{ role: 'user', content }];
const TOOLS = [
    { type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { text: { type: 'string' } } } } },
    { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
];
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/* The body the gateway sent for the last request to upstream model `model`. */
async function sent(model) {
    const log = await h.fakeLog();
    const e = log.filter((x) => x.model === model).at(-1);
    assert.ok(e, `no upstream request for ${model}`);
    return e;
}

describe('cohere chat', () => {
    it('non-stream: system/developer/multi-turn translated, echo, usage, finish_reason', async () => {
        const r = await client.chat.completions.create({
            model: 'co-chat',
            messages: [
                { role: 'system', content: 'Be brief.' },
                { role: 'developer', content: 'Use English.' },
                { role: 'user', content: 'first turn' },
                { role: 'assistant', content: 'ok' },
                { role: 'user', content: 'hello there' },
            ],
            temperature: 0.5, top_p: 0.9, seed: 4, stop: ['\n\n'], max_tokens: 100, user: 'end-user-1',
        });
        assert.equal(r.object, 'chat.completion');
        assert.equal(r.model, 'co-chat');
        assert.equal(r.choices[0].message.role, 'assistant');
        assert.equal(r.choices[0].message.content, 'Echo: hello there');
        assert.equal(r.choices[0].finish_reason, 'stop');
        // The fake counts 3 + words per message: 5 messages, 2+2+2+1+2 words.
        assert.equal(r.usage.prompt_tokens, 5 * 3 + 9);
        assert.equal(r.usage.completion_tokens, 3);
        assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 3);
        assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);

        const e = await sent('command-a-03-2025');
        assert.equal(e.path, '/v2/chat');
        assert.equal(e.auth_ok, true);
        assert.deepEqual(e.body.messages.map((m) => m.role), ['system', 'system', 'user', 'assistant', 'user']);
        assert.equal(e.body.p, 0.9);
        assert.equal(e.body.temperature, 0.5);
        assert.equal(e.body.seed, 4);
        assert.deepEqual(e.body.stop_sequences, ['\n\n']);
        assert.equal(e.body.max_tokens, 100);
        assert.equal(e.body.top_p, undefined);
        assert.equal(e.body.user, undefined);
    });

    it('cohere/ is an alias, and an api_base with the full /v2/chat URL works', async () => {
        const a = await client.chat.completions.create({ model: 'co-alias', messages: user('alias') });
        assert.equal(a.choices[0].message.content, 'Echo: alias');
        assert.equal((await sent('command-r-plus')).path, '/v2/chat');
        const b = await client.chat.completions.create({ model: 'co-fullurl', messages: user('full url') });
        assert.equal(b.choices[0].message.content, 'Echo: full url');
    });

    it('max_tokens cuts the answer: finish_reason length; cached tokens are reported', async () => {
        const r = await client.chat.completions.create({ model: 'co-cached', messages: user('one two three four'), max_tokens: 2 });
        assert.equal(r.choices[0].message.content, 'Echo: one ');
        assert.equal(r.choices[0].finish_reason, 'length');
        assert.equal(r.usage.prompt_tokens_details.cached_tokens, 2);
    });

    it('stream: text joins to the non-stream answer, role first, usage with include_usage', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'co-chat', messages: user('stream me please'), stream: true, stream_options: { include_usage: true },
        }));
        assert.equal(chunks[0].choices[0].delta.role, 'assistant');
        assert.equal(textOf(chunks), 'Echo: stream me please');
        const fin = chunks.filter((c) => c.choices[0]?.finish_reason);
        assert.equal(fin.length, 1);
        assert.equal(fin[0].choices[0].finish_reason, 'stop');
        const last = chunks.at(-1);
        assert.deepEqual(last.choices, []);
        assert.equal(last.usage.prompt_tokens, 3 + 3);
        assert.equal(last.usage.completion_tokens, 4);
        assert.ok(chunks.every((c) => c.model === 'co-chat'));
        assert.ok(chunks.every((c) => c.id === chunks[0].id), 'one id for the whole stream');
        assert.equal((await sent('command-a-03-2025')).body.stream, true);
    });

    it('stream without include_usage: no usage chunk', async () => {
        const chunks = await collect(await client.chat.completions.create({ model: 'co-chat', messages: user('x y'), stream: true }));
        assert.equal(textOf(chunks), 'Echo: x y');
        assert.ok(chunks.every((c) => c.choices.length === 1), 'no choices: [] chunk');
    });
});

describe('cohere tools', () => {
    it('round trip: tool call, then the tool result, then the answer', async () => {
        const first = await client.chat.completions.create({
            model: 'co-chat', messages: user('please call tool now'), tools: TOOLS,
        });
        const msg = first.choices[0].message;
        assert.equal(first.choices[0].finish_reason, 'tool_calls');
        assert.equal(msg.tool_calls.length, 1);
        const call = msg.tool_calls[0];
        assert.equal(call.type, 'function');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), { text: 'please call tool now' });
        assert.ok(call.id);
        assert.deepEqual((await sent('command-a-03-2025')).body.tools, TOOLS);

        const second = await client.chat.completions.create({
            model: 'co-chat', tools: TOOLS,
            messages: [
                ...user('please call tool now'),
                msg,
                { role: 'tool', tool_call_id: call.id, content: 'sunny, 21C' },
            ],
        });
        assert.equal(second.choices[0].message.content, 'Echo: tool result: sunny, 21C');
        assert.equal(second.choices[0].finish_reason, 'stop');
        const body = (await sent('command-a-03-2025')).body;
        assert.equal(body.messages[1].role, 'assistant');
        assert.deepEqual(body.messages[1].tool_calls, [{ id: call.id, type: 'function', function: call.function }]);
        assert.deepEqual(body.messages[2], { role: 'tool', tool_call_id: call.id, content: 'sunny, 21C' });
    });

    it('streamed tool call: the SDK assembles id, name and arguments', async () => {
        const runner = client.chat.completions.stream({
            model: 'co-chat', messages: user('call tool with a long argument text'), tools: TOOLS,
        });
        const done = await runner.finalChatCompletion();
        const call = done.choices[0].message.tool_calls[0];
        assert.equal(done.choices[0].finish_reason, 'tool_calls');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), { text: 'call tool with a long argument text' });
        assert.match(call.id, /get_weather/);
    });

    it('tool_choice: required -> REQUIRED, none -> NONE, a named function -> REQUIRED with only that tool', async () => {
        await client.chat.completions.create({ model: 'co-chat', messages: user('call tool'), tools: TOOLS, tool_choice: 'required' });
        assert.equal((await sent('command-a-03-2025')).body.tool_choice, 'REQUIRED');
        const none = await client.chat.completions.create({ model: 'co-chat', messages: user('call tool'), tools: TOOLS, tool_choice: 'none' });
        assert.equal((await sent('command-a-03-2025')).body.tool_choice, 'NONE');
        assert.equal(none.choices[0].message.content, 'Echo: call tool');
        const named = await client.chat.completions.create({
            model: 'co-chat', messages: user('call tool'), tools: TOOLS,
            tool_choice: { type: 'function', function: { name: 'get_time' } },
        });
        const body = (await sent('command-a-03-2025')).body;
        assert.equal(body.tool_choice, 'REQUIRED');
        assert.deepEqual(body.tools.map((t) => t.function.name), ['get_time']);
        assert.equal(named.choices[0].message.tool_calls[0].function.name, 'get_time');
    });
});

describe('cohere images and JSON', () => {
    it('a data URL image reaches Cohere as an image_url part', async () => {
        const r = await client.chat.completions.create({
            model: 'co-chat',
            messages: user([{ type: 'text', text: 'what is this?' },
                { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }]),
        });
        assert.equal(r.choices[0].message.content, `Echo: what is this? [image image/png ${Buffer.from(PNG, 'base64').length}]`);
    });

    it('response_format json_object -> JSON content; json_schema carries the schema', async () => {
        const r = await client.chat.completions.create({
            model: 'co-chat', messages: user('give json'), response_format: { type: 'json_object' },
        });
        assert.deepEqual(JSON.parse(r.choices[0].message.content), { echo: 'give json' });
        const schema = { type: 'object', properties: { echo: { type: 'string' } }, required: ['echo'] };
        const s = await client.chat.completions.create({
            model: 'co-chat', messages: user('schema json'),
            response_format: { type: 'json_schema', json_schema: { name: 'e', schema } },
        });
        assert.deepEqual(JSON.parse(s.choices[0].message.content), { echo: 'schema json' });
        assert.deepEqual((await sent('command-a-03-2025')).body.response_format, { type: 'json_object', json_schema: schema });
    });
});

describe('cohere parameter policy', () => {
    it('an unsupported parameter is a 400 naming it and the provider', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'co-chat', messages: user('x'), logprobs: true }), (e) => {
            assert.ok(e instanceof OpenAI.BadRequestError, String(e));
            assert.equal(e.status, 400);
            assert.match(e.message, /cohere_chat does not support parameters: logprobs/);
            return true;
        });
        await assert.rejects(client.chat.completions.create({ model: 'co-chat', messages: user('x'), n: 2 }),
            (e) => e instanceof OpenAI.BadRequestError && /\bn\b/.test(e.message));
    });

    it('drop_params (in the request, or the deployment) drops it', async () => {
        const r = await client.chat.completions.create({ model: 'co-chat', messages: user('dropped'), logprobs: true, drop_params: true });
        assert.equal(r.choices[0].message.content, 'Echo: dropped');
        assert.equal((await sent('command-a-03-2025')).body.logprobs, undefined);
        const d = await client.chat.completions.create({ model: 'co-drop', messages: user('dropped too'), logprobs: true });
        assert.equal(d.choices[0].message.content, 'Echo: dropped too');
    });
});

describe('cohere errors', () => {
    const cases = [
        ['co-fault-500', 500, OpenAI.InternalServerError, null],
        ['co-fault-429', 429, OpenAI.RateLimitError, null],
        ['co-fault-400', 400, OpenAI.BadRequestError, null],
        ['co-overloaded', 503, OpenAI.InternalServerError, null],
        ['co-context-too-long', 400, OpenAI.BadRequestError, 'context_length_exceeded'],
        ['co-content-filter', 400, OpenAI.BadRequestError, 'content_policy_violation'],
        ['co-badkey', 401, OpenAI.AuthenticationError, null],
    ];
    for (const [model, status, cls, code] of cases) {
        it(`${model} -> ${status}${code ? ` ${code}` : ''}, OpenAI-shaped`, async () => {
            await assert.rejects(client.chat.completions.create({ model, messages: user('x') }), (e) => {
                assert.ok(e instanceof cls, `${e.constructor.name}: ${e}`);
                assert.equal(e.status, status);
                assert.equal(typeof e.error?.message, 'string');
                assert.ok(e.error.message.length > 0);
                assert.equal(typeof e.type, 'string');
                if (code) assert.equal(e.code, code);
                if (status === 429) assert.equal(e.headers.get('retry-after'), '7');
                return true;
            });
        });
    }

    for (const fault of ['drop-mid-stream', 'bad-event', 'stream-error']) {
        it(`stream ${fault}: the SDK's stream raises, never hangs`, async () => {
            const t0 = Date.now();
            const stream = await client.chat.completions.create({ model: `co-${fault}`, messages: user('a b c d'), stream: true });
            await assert.rejects(collect(stream), (e) => e instanceof OpenAI.APIError);
            assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
        });
    }

    it('a truncated non-stream body is a 502', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'co-bad-event', messages: user('x') }),
            (e) => e instanceof OpenAI.APIError && e.status === 502);
    });
});

describe('cohere embeddings', () => {
    it('floats, input_type default, usage', async () => {
        const r = await client.embeddings.create({ model: 'co-embed', input: ['hello world', 'bye'], encoding_format: 'float' });
        assert.equal(r.object, 'list');
        assert.equal(r.model, 'co-embed');
        assert.equal(r.data.length, 2);
        assert.deepEqual(r.data[0].embedding, fakeEmbedding('hello world', 8));
        assert.deepEqual(r.data[1].embedding, fakeEmbedding('bye', 8));
        assert.equal(r.data[1].index, 1);
        assert.equal(r.usage.prompt_tokens, 3);
        const e = await sent('embed-v4.0');
        assert.equal(e.path, '/v2/embed');
        assert.deepEqual(e.body.texts, ['hello world', 'bye']);
        assert.equal(e.body.input_type, 'search_document');
        assert.deepEqual(e.body.embedding_types, ['float']);
    });

    it('base64 (the SDK default) decodes to the same floats; dimensions -> output_dimension', async () => {
        const r = await client.embeddings.create({ model: 'co-embed', input: 'hello', dimensions: 4 });
        assert.deepEqual(r.data[0].embedding, fakeEmbedding('hello', 4));
        assert.equal((await sent('embed-v4.0')).body.output_dimension, 4);
    });
});

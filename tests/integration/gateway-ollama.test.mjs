// Ollama (ollama_chat/ and ollama/, both through /api/chat) behind lighttpd +
// sluice, driven by the official openai SDK; the upstream is the fake Ollama
// (tests/fakes/providers/ollama.mjs): chat, NDJSON streaming, tools round
// trip, images, JSON mode, thinking, parameter policy, error mapping, stream
// faults and embeddings.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';
import { collect, textOf } from './lib/chat.mjs';

const FAULTS = ['fault-500', 'fault-429', 'fault-400', 'overloaded', 'context-too-long', 'content-filter',
    'drop-mid-stream', 'bad-event', 'stream-error', 'missing-model'];

let h;
let client;

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            // Ollama's API lives at the host root; ctx.fakeBase ends in /v1.
            const host = ctx.fakeBase.replace(/\/v1$/, '');
            const entry = (name, model, extra = {}) => ({
                model_name: name,
                litellm_params: { model, api_base: host, timeout: 10, stream_timeout: 10, ...extra },
            });
            cfg.model_list.push(
                entry('ol-chat', 'ollama_chat/llama3.2'),
                entry('ol-alias', 'ollama/qwen3'),
                entry('ol-keyed', 'ollama_chat/keyed-model', { api_key: FAKE_UPSTREAM_KEY }),
                entry('ol-badkey', 'ollama_chat/llama3.2', { api_key: 'wrong-key' }),
                entry('ol-drop', 'ollama_chat/llama3.2', { drop_params: true }),
                entry('ol-gptoss', 'ollama_chat/gpt-oss:20b'),
                // The OpenAI-compatible base some configs carry: /v1 is cut.
                entry('ol-v1', 'ollama_chat/llama3.2', { api_base: ctx.fakeBase }),
                { ...entry('ol-embed', 'ollama/nomic-embed-text'), model_info: { mode: 'embedding' } },
                ...FAULTS.map((f) => entry(`ol-${f}`, `ollama_chat/${f}`)),
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

/* The fake's log entry for the last request to upstream model `model`. */
async function sent(model) {
    const log = await h.fakeLog();
    const e = log.filter((x) => x.model === model).at(-1);
    assert.ok(e, `no upstream request for ${model}`);
    return e;
}

describe('ollama chat', () => {
    it('non-stream: messages and options translated, stream: false sent, usage', async () => {
        const r = await client.chat.completions.create({
            model: 'ol-chat',
            messages: [
                { role: 'system', content: 'Be brief.' },
                { role: 'developer', content: 'Use English.' },
                { role: 'user', content: [{ type: 'text', text: 'hello ' }, { type: 'text', text: 'there' }] },
            ],
            temperature: 0.1, top_p: 0.5, seed: 9, stop: 'STOP', max_completion_tokens: 50,
            frequency_penalty: 0.2, presence_penalty: 0.3, user: 'u1', num_ctx: 4096,
        });
        assert.equal(r.model, 'ol-chat');
        assert.equal(r.choices[0].message.content, 'Echo: hello there');
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.equal(r.usage.prompt_tokens, 3 + 2 + 3 + 2 + 3 + 2);
        assert.equal(r.usage.completion_tokens, 3);
        assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 3);

        const e = await sent('llama3.2');
        assert.equal(e.path, '/api/chat');
        assert.equal(e.had_auth, false, 'no key configured: no Authorization header');
        assert.equal(e.body.stream, false);
        assert.deepEqual(e.body.messages, [
            { role: 'system', content: 'Be brief.' },
            { role: 'system', content: 'Use English.' },
            { role: 'user', content: 'hello there' },
        ]);
        assert.deepEqual(e.body.options, {
            temperature: 0.1, top_p: 0.5, seed: 9, stop: ['STOP'], num_predict: 50,
            frequency_penalty: 0.2, presence_penalty: 0.3, num_ctx: 4096,
        });
    });

    it('ollama/ goes to /api/chat too; a configured key is sent as a bearer token; /v1 bases work', async () => {
        const a = await client.chat.completions.create({ model: 'ol-alias', messages: user('alias') });
        assert.equal(a.choices[0].message.content, 'Echo: alias');
        assert.equal((await sent('qwen3')).path, '/api/chat');
        const k = await client.chat.completions.create({ model: 'ol-keyed', messages: user('keyed') });
        assert.equal(k.choices[0].message.content, 'Echo: keyed');
        assert.equal((await sent('keyed-model')).auth_ok, true);
        const v = await client.chat.completions.create({ model: 'ol-v1', messages: user('v1 base') });
        assert.equal(v.choices[0].message.content, 'Echo: v1 base');
    });

    it('max_tokens -> num_predict: finish_reason length', async () => {
        const r = await client.chat.completions.create({ model: 'ol-chat', messages: user('one two three four'), max_tokens: 2 });
        assert.equal(r.choices[0].message.content, 'Echo: one ');
        assert.equal(r.choices[0].finish_reason, 'length');
    });

    it('stream: NDJSON lines become chunks; role first, finish, usage with include_usage', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'ol-chat', messages: user('stream me please'), stream: true, stream_options: { include_usage: true },
        }));
        assert.equal(chunks[0].choices[0].delta.role, 'assistant');
        assert.equal(textOf(chunks), 'Echo: stream me please');
        const fin = chunks.filter((c) => c.choices[0]?.finish_reason);
        assert.equal(fin.length, 1);
        assert.equal(fin[0].choices[0].finish_reason, 'stop');
        const last = chunks.at(-1);
        assert.deepEqual(last.choices, []);
        assert.equal(last.usage.prompt_tokens, 6);
        assert.equal(last.usage.completion_tokens, 4);
        assert.ok(chunks.every((c) => c.id === chunks[0].id && c.model === 'ol-chat'));
        assert.equal((await sent('llama3.2')).body.stream, true);
    });

    it('reasoning_effort -> think; thinking comes back as reasoning_content (also streamed)', async () => {
        const r = await client.chat.completions.create({ model: 'ol-chat', messages: user('think'), reasoning_effort: 'low' });
        assert.equal((await sent('llama3.2')).body.think, true);
        assert.match(r.choices[0].message.reasoning_content, /echoed back: think/);
        assert.equal(r.choices[0].message.content, 'Echo: think');
        const chunks = await collect(await client.chat.completions.create({
            model: 'ol-gptoss', messages: user('deep'), reasoning_effort: 'high', stream: true,
        }));
        assert.equal((await sent('gpt-oss:20b')).body.think, 'high');
        const reasoning = chunks.map((c) => c.choices[0]?.delta?.reasoning_content ?? '').join('');
        assert.equal(reasoning, 'The user wants their words echoed back: deep');
        assert.equal(textOf(chunks), 'Echo: deep');
    });
});

describe('ollama tools', () => {
    it('round trip: tool call (arguments object -> JSON string), tool result with tool_name, answer', async () => {
        const first = await client.chat.completions.create({ model: 'ol-chat', messages: user('call tool please'), tools: TOOLS });
        const msg = first.choices[0].message;
        assert.equal(first.choices[0].finish_reason, 'tool_calls');
        assert.equal(msg.tool_calls.length, 1);
        const call = msg.tool_calls[0];
        assert.equal(call.type, 'function');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), { text: 'call tool please' });
        assert.ok(call.id);
        assert.deepEqual((await sent('llama3.2')).body.tools, TOOLS);

        const second = await client.chat.completions.create({
            model: 'ol-chat', tools: TOOLS,
            messages: [...user('call tool please'), msg, { role: 'tool', tool_call_id: call.id, content: 'rainy' }],
        });
        assert.equal(second.choices[0].message.content, 'Echo: tool result: rainy');
        const body = (await sent('llama3.2')).body;
        assert.deepEqual(body.messages[1].tool_calls, [{ function: { name: 'get_weather', arguments: { text: 'call tool please' } } }]);
        assert.deepEqual(body.messages[2], { role: 'tool', content: 'rainy', tool_name: 'get_weather' });
    });

    it('streamed tool call: one complete delta the SDK assembles', async () => {
        const runner = client.chat.completions.stream({ model: 'ol-chat', messages: user('call tool streamed'), tools: TOOLS });
        const done = await runner.finalChatCompletion();
        assert.equal(done.choices[0].finish_reason, 'tool_calls');
        const call = done.choices[0].message.tool_calls[0];
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), { text: 'call tool streamed' });
        assert.ok(call.id);
    });

    it('tool_choice none leaves the tools out; required follows drop_params', async () => {
        const r = await client.chat.completions.create({ model: 'ol-chat', messages: user('call tool'), tools: TOOLS, tool_choice: 'none' });
        assert.equal(r.choices[0].message.content, 'Echo: call tool');
        assert.equal((await sent('llama3.2')).body.tools, undefined);
        await assert.rejects(client.chat.completions.create({ model: 'ol-chat', messages: user('x'), tools: TOOLS, tool_choice: 'required' }),
            (e) => e instanceof OpenAI.BadRequestError && /ollama_chat does not support tool_choice=required/.test(e.message));
        const d = await client.chat.completions.create({ model: 'ol-drop', messages: user('call tool'), tools: TOOLS, tool_choice: 'required' });
        assert.equal(d.choices[0].message.tool_calls[0].function.name, 'get_weather');
    });
});

describe('ollama images and JSON', () => {
    it('a data URL image goes to the message images as bare base64', async () => {
        const r = await client.chat.completions.create({
            model: 'ol-chat',
            messages: user([{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }]),
        });
        assert.equal(r.choices[0].message.content, `Echo: what is this? [image image/png ${Buffer.from(PNG, 'base64').length}]`);
        assert.deepEqual((await sent('llama3.2')).body.messages[0].images, [PNG]);
    });

    it('an http image URL is a 400 (Ollama takes bytes)', async () => {
        await assert.rejects(client.chat.completions.create({
            model: 'ol-chat', messages: user([{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }]),
        }), (e) => e instanceof OpenAI.BadRequestError && /base64 data URLs/.test(e.message));
    });

    it('json_object -> format "json"; json_schema -> format: <schema>', async () => {
        const r = await client.chat.completions.create({ model: 'ol-chat', messages: user('json please'), response_format: { type: 'json_object' } });
        assert.deepEqual(JSON.parse(r.choices[0].message.content), { echo: 'json please' });
        assert.equal((await sent('llama3.2')).body.format, 'json');
        const schema = { type: 'object', properties: { echo: { type: 'string' } } };
        const s = await client.chat.completions.create({
            model: 'ol-chat', messages: user('schema'), response_format: { type: 'json_schema', json_schema: { name: 'x', schema } },
        });
        assert.deepEqual(JSON.parse(s.choices[0].message.content), { echo: 'schema' });
        assert.deepEqual((await sent('llama3.2')).body.format, schema);
    });
});

describe('ollama parameter policy', () => {
    it('unsupported parameter: 400 naming it; dropped with drop_params', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'ol-chat', messages: user('x'), logit_bias: { 1: 1 } }), (e) => {
            assert.ok(e instanceof OpenAI.BadRequestError, String(e));
            assert.match(e.message, /ollama_chat does not support parameters: logit_bias/);
            return true;
        });
        const r = await client.chat.completions.create({ model: 'ol-chat', messages: user('fine'), logit_bias: { 1: 1 }, drop_params: true });
        assert.equal(r.choices[0].message.content, 'Echo: fine');
        assert.equal((await sent('llama3.2')).body.logit_bias, undefined);
    });
});

describe('ollama errors', () => {
    const cases = [
        ['ol-fault-500', 500, OpenAI.InternalServerError, null],
        ['ol-fault-429', 429, OpenAI.RateLimitError, null],
        ['ol-fault-400', 400, OpenAI.BadRequestError, null],
        ['ol-overloaded', 503, OpenAI.InternalServerError, null],
        ['ol-context-too-long', 400, OpenAI.BadRequestError, 'context_length_exceeded'],
        ['ol-missing-model', 404, OpenAI.NotFoundError, null],
        ['ol-badkey', 401, OpenAI.AuthenticationError, null],
    ];
    for (const [model, status, cls, code] of cases) {
        it(`${model} -> ${status}${code ? ` ${code}` : ''}, OpenAI-shaped`, async () => {
            await assert.rejects(client.chat.completions.create({ model, messages: user('x') }), (e) => {
                assert.ok(e instanceof cls, `${e.constructor.name}: ${e}`);
                assert.equal(e.status, status);
                assert.ok(typeof e.error?.message === 'string' && e.error.message.length > 0);
                assert.equal(typeof e.type, 'string');
                if (code) assert.equal(e.code, code);
                if (status === 404) assert.match(e.message, /not found, try pulling it first/);
                if (status === 429) assert.equal(e.headers.get('retry-after'), '7');
                return true;
            });
        });
    }

    it('content-filter: Ollama has none, a refusal comes back as a normal answer', async () => {
        const r = await client.chat.completions.create({ model: 'ol-content-filter', messages: user('x') });
        assert.match(r.choices[0].message.content, /can't help/);
        assert.equal(r.choices[0].finish_reason, 'stop');
    });

    for (const fault of ['drop-mid-stream', 'bad-event', 'stream-error']) {
        it(`stream ${fault}: the SDK's stream raises, never hangs`, async () => {
            const t0 = Date.now();
            const stream = await client.chat.completions.create({ model: `ol-${fault}`, messages: user('a b c d'), stream: true });
            await assert.rejects(collect(stream), (e) => e instanceof OpenAI.APIError);
            assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
        });
    }

    it('a truncated non-stream body is a 502', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'ol-bad-event', messages: user('x') }),
            (e) => e instanceof OpenAI.APIError && e.status === 502);
    });
});

describe('ollama embeddings', () => {
    it('/api/embed: floats and usage', async () => {
        const r = await client.embeddings.create({ model: 'ol-embed', input: ['hello world', 'bye'], encoding_format: 'float' });
        assert.equal(r.model, 'ol-embed');
        assert.deepEqual(r.data.map((d) => d.embedding), [fakeEmbedding('hello world', 8), fakeEmbedding('bye', 8)]);
        assert.equal(r.usage.prompt_tokens, 3);
        const e = await sent('nomic-embed-text');
        assert.equal(e.path, '/api/embed');
        assert.deepEqual(e.body.input, ['hello world', 'bye']);
    });

    it('base64 (the SDK default) and dimensions', async () => {
        const r = await client.embeddings.create({ model: 'ol-embed', input: 'hello', dimensions: 4 });
        assert.deepEqual(r.data[0].embedding, fakeEmbedding('hello', 4));
        assert.equal((await sent('nomic-embed-text')).body.dimensions, 4);
    });
});

// The anthropic/ adapter end to end: the official openai client talks to
// sluice (behind lighttpd), sluice talks Anthropic's Messages API to the
// fake (tests/fakes/providers/anthropic.mjs). Checks what the client gets
// and, through the fake's log, what Anthropic was sent.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { user, collect, textOf, chatFaultTests, streamFaultTests } from './lib/chat.mjs';

let h;
let client;

const FAULTS = ['overloaded', 'context-too-long', 'content-filter', 'fault-429', 'fault-500', 'fault-400',
    'drop-mid-stream', 'bad-event', 'stream-error'];

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            const root = `http://127.0.0.1:${ctx.fakePort}`;
            const claude = (name, model, extra = {}) => ({
                model_name: name,
                litellm_params: { model: `anthropic/${model}`, api_base: root, api_key: FAKE_UPSTREAM_KEY,
                    timeout: 10, ...extra },
            });
            cfg.model_list.push(
                claude('claude', 'claude-test'),
                claude('claude-cached', 'claude-cached'),
                claude('claude-v1-base', 'claude-test', { api_base: `${root}/v1` }),
                claude('claude-badkey', 'claude-test', { api_key: 'wrong-key' }),
                ...FAULTS.map((f) => claude(`claude-${f}`, f)),
            );
        },
    });
    client = h.client();
});

after(async () => {
    if (h) await h.stop();
});

const lastUpstream = async () => (await h.fake.log()).filter((e) => e.path === '/v1/messages').at(-1);

const weather = {
    type: 'function',
    function: {
        name: 'get_weather',
        description: 'Weather for a city',
        parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    },
};

describe('anthropic/ through sluice', () => {
    it('chat: system prompt to the top level, answer and usage in OpenAI shape', async () => {
        const r = await client.chat.completions.create({
            model: 'claude',
            messages: [{ role: 'system', content: 'be brief' }, ...user('hello there')],
            temperature: 0.3,
        });
        assert.equal(r.object, 'chat.completion');
        assert.equal(r.model, 'claude');
        assert.match(r.id, /^msg_/);
        assert.equal(r.choices[0].message.role, 'assistant');
        assert.equal(r.choices[0].message.content, 'Echo: hello there');
        assert.equal(r.choices[0].finish_reason, 'stop');
        // 3 + 2 words for the system prompt, 3 + 2 for the user message
        assert.equal(r.usage.prompt_tokens, 10);
        assert.equal(r.usage.completion_tokens, 3);
        assert.equal(r.usage.total_tokens, 13);
        assert.equal(r.usage.prompt_tokens_details.cached_tokens, 0);

        const up = await lastUpstream();
        assert.equal(up.auth_ok, true);
        assert.equal(up.headers['anthropic-version'], '2023-06-01');
        assert.equal(up.body.model, 'claude-test');
        assert.equal(up.body.max_tokens, 4096);
        assert.deepEqual(up.body.system, [{ type: 'text', text: 'be brief' }]);
        assert.deepEqual(up.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'hello there' }] }]);
        assert.equal(up.body.temperature, 0.3);
    });

    it('an api_base ending in /v1 works as well', async () => {
        const r = await client.chat.completions.create({ model: 'claude-v1-base', messages: user('x') });
        assert.equal(r.choices[0].message.content, 'Echo: x');
    });

    it('stream: deltas join to the text; usage chunk when asked', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'claude', messages: user('one two three four'), stream: true,
            stream_options: { include_usage: true },
        }));
        assert.equal(textOf(chunks), 'Echo: one two three four');
        assert.equal(chunks[0].choices[0].delta.role, 'assistant');
        assert.ok(chunks.every((c) => c.model === 'claude'));
        const fin = chunks.filter((c) => c.choices[0]?.finish_reason);
        assert.equal(fin.length, 1);
        assert.equal(fin[0].choices[0].finish_reason, 'stop');
        const last = chunks.at(-1);
        assert.deepEqual(last.choices, []);
        assert.equal(last.usage.prompt_tokens, 7);
        assert.equal(last.usage.completion_tokens, 5);
        // the events came one by one (the fake writes each ~5 ms apart)
        assert.ok(chunks.length >= 7, `got ${chunks.length} chunks`);
    });

    it('stream without include_usage has no usage chunk', async () => {
        const chunks = await collect(await client.chat.completions.create({
            model: 'claude', messages: user('a b'), stream: true,
        }));
        assert.equal(textOf(chunks), 'Echo: a b');
        assert.ok(chunks.every((c) => c.choices.length === 1 && !c.usage));
    });

    it('tools: a call, then the tool result, then the answer', async () => {
        const messages = user('please call tool now');
        const r1 = await client.chat.completions.create({ model: 'claude', messages, tools: [weather] });
        assert.equal(r1.choices[0].finish_reason, 'tool_calls');
        const call = r1.choices[0].message.tool_calls[0];
        assert.equal(call.type, 'function');
        assert.equal(call.function.name, 'get_weather');
        assert.match(call.id, /^toolu_/);
        assert.deepEqual(JSON.parse(call.function.arguments), { text: 'please call tool now' });
        let up = await lastUpstream();
        assert.deepEqual(up.body.tools, [{ name: 'get_weather', description: 'Weather for a city',
            input_schema: weather.function.parameters }]);

        const r2 = await client.chat.completions.create({
            model: 'claude',
            tools: [weather],
            messages: [...messages, r1.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '18C' }],
        });
        assert.equal(r2.choices[0].message.content, 'Echo: tool result: 18C');
        up = await lastUpstream();
        assert.deepEqual(up.body.messages[1].content[0],
            { type: 'tool_use', id: call.id, name: 'get_weather', input: { text: 'please call tool now' } });
        assert.deepEqual(up.body.messages[2].content, [{ type: 'tool_result', tool_use_id: call.id, content: '18C' }]);
    });

    it('tools while streaming: the SDK assembles the call from the deltas', async () => {
        const stream = client.chat.completions.stream({
            model: 'claude', messages: user('call tool for Paris'), tools: [weather],
            tool_choice: { type: 'function', function: { name: 'get_weather' } },
        });
        const final = await stream.finalChatCompletion();
        const call = final.choices[0].message.tool_calls[0];
        assert.equal(final.choices[0].finish_reason, 'tool_calls');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), { text: 'call tool for Paris' });
        const up = await lastUpstream();
        assert.deepEqual(up.body.tool_choice, { type: 'tool', name: 'get_weather' });
    });

    it('images: a data URL becomes a base64 image block', async () => {
        const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
        const r = await client.chat.completions.create({
            model: 'claude',
            messages: [{ role: 'user', content: [
                { type: 'text', text: 'what is this' },
                { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
            ] }],
        });
        assert.equal(r.choices[0].message.content, `Echo: what is this [image image/png ${png.length}]`);
    });

    it('JSON mode: the forced json tool comes back as the message content', async () => {
        const r = await client.chat.completions.create({
            model: 'claude', messages: user('give me json'), response_format: { type: 'json_object' },
        });
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.equal(r.choices[0].message.tool_calls, undefined);
        assert.deepEqual(JSON.parse(r.choices[0].message.content), { text: 'give me json' });
    });

    it('max_tokens cuts the answer: finish_reason length', async () => {
        const r = await client.chat.completions.create({
            model: 'claude', messages: user('one two three four five'), max_tokens: 2,
        });
        assert.equal(r.choices[0].message.content, 'Echo: one ');
        assert.equal(r.choices[0].finish_reason, 'length');
        assert.equal((await lastUpstream()).body.max_tokens, 2);
    });

    it('cached input tokens are reported in prompt_tokens_details', async () => {
        const r = await client.chat.completions.create({ model: 'claude-cached', messages: user('a b c') });
        assert.equal(r.usage.prompt_tokens, 6);
        assert.equal(r.usage.prompt_tokens_details.cached_tokens, 2);
    });

    it('an unsupported parameter is a 400 naming it; drop_params drops it', async () => {
        await assert.rejects(
            client.chat.completions.create({ model: 'claude', messages: user('x'), seed: 3 }),
            (e) => e instanceof OpenAI.BadRequestError && /anthropic does not support parameters: seed/.test(e.message),
        );
        const r = await client.chat.completions.create({ model: 'claude', messages: user('x'), seed: 3,
            drop_params: true });
        assert.equal(r.choices[0].message.content, 'Echo: x');
        const up = await lastUpstream();
        assert.equal(up.body.seed, undefined);
        assert.equal(up.body.drop_params, undefined);
    });

    it('content refusal → finish_reason content_filter', async () => {
        const r = await client.chat.completions.create({ model: 'claude-content-filter', messages: user('x') });
        assert.equal(r.choices[0].finish_reason, 'content_filter');
        assert.equal(r.choices[0].message.content, null);
    });
});

describe('anthropic/ errors', () => {
    const cases = [
        ['claude-overloaded', 503, OpenAI.InternalServerError, null],
        ['claude-context-too-long', 400, OpenAI.BadRequestError, 'context_length_exceeded'],
        ['claude-fault-429', 429, OpenAI.RateLimitError, null],
        ['claude-fault-500', 500, OpenAI.InternalServerError, null],
        ['claude-fault-400', 400, OpenAI.BadRequestError, null],
        ['claude-badkey', 401, OpenAI.AuthenticationError, null],
    ];
    chatFaultTests(() => new OpenAI({ apiKey: h.masterKey, baseURL: h.baseURL, maxRetries: 0 }), cases);

    streamFaultTests(() => client, ['claude-stream-error', 'claude-drop-mid-stream', 'claude-bad-event'],
        OpenAI.APIError);

    it('the gateway is fine afterwards', async () => {
        const r = await client.chat.completions.create({ model: 'claude', messages: user('still here') });
        assert.equal(r.choices[0].message.content, 'Echo: still here');
    });
});

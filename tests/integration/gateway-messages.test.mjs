// POST /v1/messages: the official Anthropic SDK talks to sluice, and sluice
// serves the call from any configured model: the OpenAI fake (openai/), the
// Anthropic, Gemini and Bedrock fakes, and the built-in mock. Plus
// count_tokens and errors in Anthropic's shape.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { curl } from './lib/http.mjs';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY } from '../fakes/providers/bedrock.mjs';
import { user } from './lib/chat.mjs';

let h;
let client;

before(async () => {
    h = await startHarness({
        configure(cfg, ctx) {
            const root = `http://127.0.0.1:${ctx.fakePort}`;
            cfg.model_list.push(
                { model_name: 'claude', litellm_params: { model: 'anthropic/claude-test', api_base: root,
                    api_key: FAKE_UPSTREAM_KEY } },
                { model_name: 'claude-overloaded', litellm_params: { model: 'anthropic/overloaded', api_base: root,
                    api_key: FAKE_UPSTREAM_KEY } },
                { model_name: 'gemini', litellm_params: { model: 'gemini/gemini-2.0-flash', api_base: root,
                    api_key: FAKE_UPSTREAM_KEY } },
                { model_name: 'bedrock-claude', litellm_params: { model: 'bedrock/anthropic.claude-3-haiku-20240307-v1:0',
                    api_base: root, aws_access_key_id: ACCESS_KEY_ID, aws_secret_access_key: SECRET_ACCESS_KEY,
                    aws_region_name: 'us-east-1' } },
            );
        },
    });
    client = new Anthropic({ apiKey: h.masterKey, baseURL: h.rootURL, maxRetries: 0, timeout: 20000 });
});

after(async () => {
    if (h) await h.stop();
});

const lastUpstream = async (p) => (await h.fake.log()).filter((e) => e.path === p).at(-1);
const textOf = (msg) => msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

const weather = {
    name: 'get_weather',
    description: 'Weather for a city',
    input_schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
};

describe('/v1/messages in front of an OpenAI model', () => {
    it('a message: system, answer, stop_reason and usage in Anthropic\'s shape', async () => {
        const m = await client.messages.create({
            model: 'gpt-4o-mini', max_tokens: 100, system: 'be brief', messages: user('hello there'),
        });
        assert.equal(m.type, 'message');
        assert.equal(m.role, 'assistant');
        assert.equal(m.model, 'gpt-4o-mini');
        assert.match(m.id, /^msg_/);
        assert.equal(textOf(m), 'Echo: hello there');
        assert.equal(m.stop_reason, 'end_turn');
        assert.ok(m.usage.input_tokens > 0);
        assert.equal(m.usage.output_tokens, 3);
        const up = await lastUpstream('/v1/chat/completions');
        assert.deepEqual(up.body.messages, [{ role: 'system', content: 'be brief' },
            { role: 'user', content: [{ type: 'text', text: 'hello there' }] }]);
        assert.equal(up.body.max_tokens, 100);
    });

    it('a stream: the SDK\'s event sequence and final message', async () => {
        const events = [];
        const stream = client.messages.stream({ model: 'gpt-4o-mini', max_tokens: 100, messages: user('one two three') });
        stream.on('streamEvent', (e) => events.push(e.type));
        const text = [];
        stream.on('text', (t) => text.push(t));
        const m = await stream.finalMessage();
        assert.equal(textOf(m), 'Echo: one two three');
        assert.equal(text.join(''), 'Echo: one two three');
        assert.ok(text.length >= 3, 'text arrived in pieces');
        assert.equal(m.stop_reason, 'end_turn');
        assert.equal(m.usage.output_tokens, 4);
        assert.equal(events[0], 'message_start');
        assert.equal(events[1], 'content_block_start');
        assert.equal(events.at(-1), 'message_stop');
        assert.equal(events.at(-2), 'message_delta');
        assert.equal(events.at(-3), 'content_block_stop');
    });

    it('tools: an OpenAI tool call comes back as a tool_use block', async () => {
        const m = await client.messages.create({
            model: 'gpt-4o-mini', max_tokens: 100, tools: [weather], messages: user('call tool please'),
        });
        assert.equal(m.stop_reason, 'tool_use');
        const tu = m.content.find((b) => b.type === 'tool_use');
        assert.equal(tu.name, 'get_weather');
        assert.deepEqual(tu.input, { text: 'call tool please' });
        const up = await lastUpstream('/v1/chat/completions');
        assert.deepEqual(up.body.tools, [{ type: 'function', function: { name: 'get_weather',
            description: 'Weather for a city', parameters: weather.input_schema } }]);
    });

    it('tools while streaming: input_json_delta pieces assemble to the input', async () => {
        const m = await client.messages.stream({
            model: 'gpt-4o-mini', max_tokens: 100, tools: [weather], messages: user('call tool now'),
            tool_choice: { type: 'tool', name: 'get_weather' },
        }).finalMessage();
        const tu = m.content.find((b) => b.type === 'tool_use');
        assert.deepEqual(tu.input, { text: 'call tool now' });
        assert.equal(m.stop_reason, 'tool_use');
        const up = await lastUpstream('/v1/chat/completions');
        assert.deepEqual(up.body.tool_choice, { type: 'function', function: { name: 'get_weather' } });
    });

    it('the mock model answers too', async () => {
        const m = await client.messages.create({ model: 'mock-gpt', max_tokens: 10, messages: user('hi mock') });
        assert.equal(textOf(m), 'Echo: hi mock');
    });
});

describe('/v1/messages in front of an Anthropic model', () => {
    it('a tool round trip: tool_use, tool_result, answer', async () => {
        const messages = user('call tool for Rome');
        const m1 = await client.messages.create({ model: 'claude', max_tokens: 200, tools: [weather], messages });
        const tu = m1.content.find((b) => b.type === 'tool_use');
        assert.ok(tu, JSON.stringify(m1));
        assert.deepEqual(tu.input, { text: 'call tool for Rome' });
        const m2 = await client.messages.create({
            model: 'claude', max_tokens: 200, tools: [weather],
            messages: [...messages, { role: 'assistant', content: m1.content },
                { role: 'user', content: [{ type: 'tool_result', tool_use_id: tu.id, content: '21C' }] }],
        });
        assert.equal(textOf(m2), 'Echo: tool result: 21C');
        const up = await lastUpstream('/v1/messages');
        assert.deepEqual(up.body.messages.at(-1).content, [{ type: 'tool_result', tool_use_id: tu.id, content: '21C' }]);
    });

    it('thinking and top_k pass through to Anthropic; thinking streams back as thinking blocks', async () => {
        const m = await client.messages.stream({
            model: 'claude', max_tokens: 3000, top_k: 5, thinking: { type: 'enabled', budget_tokens: 1024 },
            messages: user('ponder this'),
        }).finalMessage();
        const up = await lastUpstream('/v1/messages');
        assert.deepEqual(up.body.thinking, { type: 'enabled', budget_tokens: 1024 });
        assert.equal(up.body.top_k, 5);
        assert.equal(m.content[0].type, 'thinking');
        assert.match(m.content[0].thinking, /Thinking about: ponder this/);
        assert.equal(textOf(m), 'Echo: ponder this');
    });

    it('images: a base64 image reaches Anthropic as an image block', async () => {
        const png = Buffer.from('89504e470d0a1a0a', 'hex').toString('base64');
        const m = await client.messages.create({
            model: 'claude', max_tokens: 50,
            messages: [{ role: 'user', content: [{ type: 'text', text: 'look' },
                { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }] }],
        });
        assert.equal(textOf(m), 'Echo: look [image image/png 8]');
    });
});

for (const model of ['gemini', 'bedrock-claude']) {
    describe(`/v1/messages in front of ${model}`, () => {
        it('a message and a stream', async () => {
            const m = await client.messages.create({ model, max_tokens: 100, system: 'be brief',
                messages: user('hello from anthropic') });
            assert.equal(textOf(m), 'Echo: hello from anthropic');
            assert.equal(m.stop_reason, 'end_turn');
            assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0, JSON.stringify(m.usage));
            const s = await client.messages.stream({ model, max_tokens: 100, messages: user('a b c') }).finalMessage();
            assert.equal(textOf(s), 'Echo: a b c');
            assert.ok(s.usage.output_tokens > 0);
        });

        it('a tool round trip', async () => {
            const messages = user('call tool in Oslo');
            const m1 = await client.messages.create({ model, max_tokens: 100, tools: [weather], messages });
            assert.equal(m1.stop_reason, 'tool_use', JSON.stringify(m1));
            const tu = m1.content.find((b) => b.type === 'tool_use');
            assert.deepEqual(tu.input, { text: 'call tool in Oslo' });
            const m2 = await client.messages.create({
                model, max_tokens: 100, tools: [weather],
                messages: [...messages, { role: 'assistant', content: m1.content },
                    { role: 'user', content: [{ type: 'tool_result', tool_use_id: tu.id, content: '3C' }] }],
            });
            assert.equal(textOf(m2), 'Echo: tool result: 3C');
        });
    });
}

describe('/v1/messages as Claude Code calls it', () => {
    const post = (body, extra = {}) => curl(`${h.rootURL}/v1/messages?beta=true`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json',
            'anthropic-version': '2023-06-01', ...extra },
        body: JSON.stringify(body),
    });

    it('?beta=true, beta flags and beta fields reach an Anthropic model', async () => {
        const r = await post({ model: 'claude', max_tokens: 32000, messages: user('hi claude code'),
            context_management: { edits: [] }, output_config: { effort: 'high' } },
        { 'anthropic-beta': 'context-management-2025-06-27,interleaved-thinking-2025-05-14' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.content[0].text, 'Echo: hi claude code');
        const up = await lastUpstream('/v1/messages');
        assert.equal(up.headers['anthropic-beta'], 'context-management-2025-06-27,interleaved-thinking-2025-05-14');
        assert.deepEqual(up.body.context_management, { edits: [] });
        assert.deepEqual(up.body.output_config, { effort: 'high' });
    });

    it('output_config json_schema becomes response_format for an OpenAI model', async () => {
        const schema = { type: 'object', properties: { a: { type: 'string' } } };
        const r = await post({ model: 'gpt-4o-mini', max_tokens: 100, messages: user('x'),
            output_config: { format: { type: 'json_schema', schema } }, thinking: { type: 'adaptive' } });
        assert.equal(r.status, 200, r.text);
        const up = await lastUpstream('/v1/chat/completions');
        assert.deepEqual(up.body.response_format, { type: 'json_schema', json_schema: { name: 'output', schema } });
        assert.equal(up.body.reasoning_effort, 'medium');
        assert.equal(up.body.output_config, undefined);
        assert.equal(up.body.thinking, undefined);
    });

    it('a system message inside messages is a 400, as Anthropic answers it', async () => {
        const r = await post({ model: 'gpt-4o-mini', max_tokens: 10,
            messages: [...user('a'), { role: 'system', content: 'late' }] });
        assert.equal(r.status, 400);
        assert.equal(r.json.error.type, 'invalid_request_error');
    });
});

describe('/v1/messages errors and count_tokens', () => {
    it('count_tokens for an Anthropic model asks Anthropic\'s own counter', async () => {
        const r = await client.messages.countTokens({ model: 'claude', system: 'be brief',
            messages: user('count these four words') });
        // the fake counts 3 + words per message, the system prompt as one
        assert.equal(r.input_tokens, (3 + 2) + (3 + 4));
        const up = await lastUpstream('/v1/messages/count_tokens');
        assert.equal(up.body.model, 'claude-test');
        assert.equal(up.body.max_tokens, undefined);
        await assert.rejects(client.messages.countTokens({ model: 'claude-overloaded', messages: user('x') }),
            (e) => e.status === 503 && e.error.error.type === 'overloaded_error');
    });

    it('count_tokens gives an estimate', async () => {
        const r = await client.messages.countTokens({ model: 'gpt-4o-mini', messages: user('a fairly short prompt') });
        assert.equal(typeof r.input_tokens, 'number');
        assert.ok(r.input_tokens > 0 && r.input_tokens < 100, String(r.input_tokens));
    });

    it('an unknown model → 400 invalid_request_error in Anthropic\'s shape', async () => {
        await assert.rejects(client.messages.create({ model: 'nope', max_tokens: 5, messages: user('x') }), (e) => {
            assert.ok(e instanceof Anthropic.BadRequestError, e.message);
            assert.equal(e.error.type, 'error');
            assert.equal(e.error.error.type, 'invalid_request_error');
            return true;
        });
    });

    it('missing max_tokens → 400 naming it', async () => {
        const r = await curl(`${h.rootURL}/v1/messages`, {
            method: 'POST',
            headers: { 'x-api-key': h.masterKey, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
            body: JSON.stringify({ model: 'gpt-4o-mini', messages: user('x') }),
        });
        assert.equal(r.status, 400);
        assert.equal(r.json.type, 'error');
        assert.match(r.json.error.message, /max_tokens/);
    });

    it('a wrong key → 401 authentication_error', async () => {
        const bad = new Anthropic({ apiKey: 'sk-wrong', baseURL: h.rootURL, maxRetries: 0 });
        await assert.rejects(bad.messages.create({ model: 'gpt-4o-mini', max_tokens: 5, messages: user('x') }),
            (e) => e instanceof Anthropic.AuthenticationError && e.error.error.type === 'authentication_error');
    });

    it('an upstream 429 → rate_limit_error; Anthropic overloaded → 503 overloaded_error', async () => {
        await assert.rejects(client.messages.create({ model: 'fault-429', max_tokens: 5, messages: user('x') }),
            (e) => e instanceof Anthropic.RateLimitError && e.error.error.type === 'rate_limit_error');
        await assert.rejects(client.messages.create({ model: 'claude-overloaded', max_tokens: 5, messages: user('x') }),
            (e) => e.status === 503 && e.error.error.type === 'overloaded_error');
    });

    it('a stream that breaks mid-way ends with an error event the SDK raises', async () => {
        const stream = client.messages.stream({ model: 'drop-mid-stream', max_tokens: 50, messages: user('a b c d') });
        await assert.rejects(stream.finalMessage(), (e) => e instanceof Anthropic.APIError, 'error raised');
    });
});

// The fake Anthropic upstream (tests/fakes/providers/anthropic.mjs) is only
// useful if the official SDK accepts it: these tests point @anthropic-ai/sdk
// straight at the fake (no gateway) and check every shape and fault mode the
// gateway tests rely on.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { startFakeProcess, sleep } from './lib/procs.mjs';
import { user } from './lib/chat.mjs';

const KEY = 'fake-anthropic-key';
const MODEL = 'claude-fake-1';
let dir;
let fake;
let client;
let host;   // the SDK's base URL is the bare host; it adds /v1/messages itself

before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-fake-anthropic-'));
    fake = await startFakeProcess(dir, { apiKey: KEY, name: 'fake-anthropic' });
    host = `http://127.0.0.1:${fake.port}`;
    client = new Anthropic({ apiKey: KEY, baseURL: host, maxRetries: 0, timeout: 20000 });
});

after(async () => {
    if (fake) await fake.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const ask = (text, extra = {}) => ({ model: MODEL, max_tokens: 1024, messages: user(text), ...extra });

async function collect(stream) {
    const events = [];
    for await (const e of stream) events.push(e);
    return events;
}

const textDeltas = (events) => events
    .filter((e) => e.type === 'content_block_delta' && e.delta.type === 'text_delta')
    .map((e) => e.delta.text);

/* POST to the fake with plain fetch, for what the SDK hides (headers, framing). */
function post(p, body, headers = {}) {
    return fetch(`${host}${p}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
    });
}

const TOOLS = [
    { name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { text: { type: 'string' } } } },
    { name: 'second_tool', input_schema: { type: 'object', properties: {} } },
];

describe('fake Anthropic upstream via @anthropic-ai/sdk', () => {
    it('messages: non-stream echo with usage, ids and request-id', async () => {
        const { data: r, response } = await client.messages.create({
            model: MODEL, max_tokens: 1024, system: 'be terse', messages: user('hello there world'),
        }).withResponse();
        assert.match(r.id, /^msg_01[0-9A-Za-z]{22}$/);
        assert.equal(r.type, 'message');
        assert.equal(r.role, 'assistant');
        assert.equal(r.model, MODEL);
        assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: hello there world' }]);
        assert.equal(r.stop_reason, 'end_turn');
        assert.equal(r.stop_sequence, null);
        // system (3 + 2) + user (3 + 3)
        assert.equal(r.usage.input_tokens, 11);
        assert.equal(r.usage.output_tokens, 4);
        assert.equal(r.usage.cache_read_input_tokens, 0);
        assert.equal(r.usage.cache_creation_input_tokens, 0);
        assert.match(response.headers.get('request-id'), /^req_/);
        assert.equal(r._request_id, response.headers.get('request-id'));
    });

    it('messages: text blocks joined, multi-turn uses the last user message', async () => {
        const r = await client.messages.create({
            model: MODEL, max_tokens: 100,
            messages: [
                { role: 'user', content: 'first question' },
                { role: 'assistant', content: 'an answer' },
                { role: 'user', content: [{ type: 'text', text: 'one ' }, { type: 'text', text: 'two' }] },
            ],
        });
        assert.equal(r.content[0].text, 'Echo: one two');
        assert.equal(r.usage.input_tokens, 5 + 5 + 5);
    });

    it('stream: events in order, one word per text delta, usage in message_start and message_delta', async () => {
        const events = await collect(await client.messages.create(ask('the quick  brown fox', { stream: true })));
        const types = events.map((e) => e.type);
        assert.deepEqual(types.slice(0, 2), ['message_start', 'content_block_start']);
        assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
        const deltas = textDeltas(events);
        assert.deepEqual(deltas, ['Echo: ', 'the ', 'quick  ', 'brown ', 'fox']);
        const start = events[0].message;
        assert.equal(start.role, 'assistant');
        assert.deepEqual(start.content, []);
        assert.equal(start.stop_reason, null);
        assert.equal(start.usage.input_tokens, 3 + 4);
        const md = events.find((e) => e.type === 'message_delta');
        assert.equal(md.delta.stop_reason, 'end_turn');
        assert.equal(md.delta.stop_sequence, null);
        assert.equal(md.usage.output_tokens, 5);
        assert.deepEqual(events[1].content_block, { type: 'text', text: '' });
    });

    it('stream: the SDK helper assembles the final message', async () => {
        const s = client.messages.stream(ask('stream helper'));
        const texts = [];
        s.on('text', (t) => texts.push(t));
        const m = await s.finalMessage();
        assert.equal(m.content[0].text, 'Echo: stream helper');
        assert.equal(texts.join(''), 'Echo: stream helper');
        assert.equal(m.usage.output_tokens, 3);
        assert.equal(m.usage.input_tokens, 5);
        assert.equal(m.stop_reason, 'end_turn');
    });

    it('stream: raw SSE framing, one write per event, ping, request-id', async () => {
        const res = await post('/v1/messages', ask('raw framing', { stream: true }));
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type'), /^text\/event-stream/);
        assert.match(res.headers.get('request-id'), /^req_/);
        const reader = res.body.getReader();
        const chunks = [];
        const dec = new TextDecoder();
        for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            chunks.push(dec.decode(value));
        }
        const text = chunks.join('');
        const blocks = text.split('\n\n').filter(Boolean);
        for (const b of blocks) {
            const lines = b.split('\n');
            assert.match(lines[0], /^event: [a-z_]+$/);
            assert.match(lines[1], /^data: \{/);
            assert.equal(JSON.parse(lines[1].slice(6)).type, lines[0].slice(7));
        }
        assert.ok(blocks.some((b) => b.startsWith('event: ping\n')));
        // Sent separately (5 ms apart), so the reader sees several chunks.
        assert.ok(chunks.length > 3, `${chunks.length} chunks`);
        assert.ok(!text.includes('[DONE]'));
    });

    it('thinking: a signed thinking block before the text, non-stream and stream', async () => {
        const thinking = { type: 'enabled', budget_tokens: 1024 };
        const r = await client.messages.create(ask('deep thought', { max_tokens: 2048, thinking }));
        assert.equal(r.content.length, 2);
        assert.equal(r.content[0].type, 'thinking');
        assert.equal(r.content[0].thinking, 'Thinking about: deep thought');
        assert.ok(r.content[0].signature.length > 20);
        assert.deepEqual(r.content[1], { type: 'text', text: 'Echo: deep thought' });
        // output = 3 answer words + 4 thinking words
        assert.equal(r.usage.output_tokens, 7);

        const events = await collect(await client.messages.create(ask('deep thought', { max_tokens: 2048, thinking, stream: true })));
        const starts = events.filter((e) => e.type === 'content_block_start');
        assert.deepEqual(starts.map((e) => [e.index, e.content_block.type]), [[0, 'thinking'], [1, 'text']]);
        const thinkDeltas = events.filter((e) => e.type === 'content_block_delta' && e.delta.type === 'thinking_delta');
        assert.equal(thinkDeltas.map((e) => e.delta.thinking).join(''), 'Thinking about: deep thought');
        const sig = events.filter((e) => e.type === 'content_block_delta' && e.delta.type === 'signature_delta');
        assert.equal(sig.length, 1);
        assert.equal(sig[0].index, 0);
        assert.equal(sig[0].delta.signature, r.content[0].signature);
        assert.equal(textDeltas(events).join(''), 'Echo: deep thought');

        const m = await client.messages.stream(ask('deep thought', { max_tokens: 2048, thinking })).finalMessage();
        assert.deepEqual(m.content, r.content);

        // Validation like the real API.
        await assert.rejects(client.messages.create(ask('x', { thinking: { type: 'enabled', budget_tokens: 100 } })),
            (e) => e instanceof Anthropic.BadRequestError && /budget_tokens/.test(e.message));
        await assert.rejects(client.messages.create(ask('x', { max_tokens: 1024, thinking })),
            (e) => e instanceof Anthropic.BadRequestError && /max_tokens/.test(e.message));
    });

    it('tools: a tool_use block, non-stream and stream (input_json_delta fragments)', async () => {
        const r = await client.messages.create(ask('please call tool now', { tools: TOOLS }));
        assert.equal(r.stop_reason, 'tool_use');
        assert.equal(r.content.length, 1);
        const tu = r.content[0];
        assert.equal(tu.type, 'tool_use');
        assert.match(tu.id, /^toolu_01/);
        assert.equal(tu.name, 'get_weather');
        assert.deepEqual(tu.input, { text: 'please call tool now' });
        assert.equal(r.usage.output_tokens, 5);   // '{"text":"please call tool now"}' is 4 words, + 1

        const events = await collect(await client.messages.create(ask('please call tool now', { tools: TOOLS, stream: true })));
        const start = events.find((e) => e.type === 'content_block_start');
        assert.equal(start.content_block.type, 'tool_use');
        assert.equal(start.content_block.name, 'get_weather');
        assert.deepEqual(start.content_block.input, {});
        const frags = events.filter((e) => e.type === 'content_block_delta').map((e) => {
            assert.equal(e.delta.type, 'input_json_delta');
            return e.delta.partial_json;
        });
        assert.ok(frags.filter((f) => f !== '').length >= 2, `fragments: ${JSON.stringify(frags)}`);
        assert.deepEqual(JSON.parse(frags.join('')), { text: 'please call tool now' });
        assert.equal(events.find((e) => e.type === 'message_delta').delta.stop_reason, 'tool_use');

        // The SDK's stream helper parses the input.
        const m = await client.messages.stream(ask('call tool', { tools: TOOLS })).finalMessage();
        assert.deepEqual(m.content[0].input, { text: 'call tool' });

        // tool_choice names a tool; "none" answers text.
        const named = await client.messages.create(ask('Call Tool please', {
            tools: TOOLS, tool_choice: { type: 'tool', name: 'second_tool' },
        }));
        assert.equal(named.content[0].name, 'second_tool');
        const none = await client.messages.create(ask('call tool', { tools: TOOLS, tool_choice: { type: 'none' } }));
        assert.deepEqual(none.content, [{ type: 'text', text: 'Echo: call tool' }]);
        assert.equal(none.stop_reason, 'end_turn');
    });

    it('tools: a tool_result round trip, and unmatched ids are rejected', async () => {
        const first = await client.messages.create(ask('call tool for Paris', { tools: TOOLS }));
        const tu = first.content[0];
        const r = await client.messages.create({
            model: MODEL, max_tokens: 100, tools: TOOLS,
            messages: [
                ...user('call tool for Paris'),
                { role: 'assistant', content: first.content },
                { role: 'user', content: [{ type: 'tool_result', tool_use_id: tu.id, content: 'sunny and 20C' }] },
            ],
        });
        assert.equal(r.content[0].text, 'Echo: tool result: sunny and 20C');
        assert.equal(r.stop_reason, 'end_turn');

        // Content as text blocks works the same.
        const r2 = await client.messages.create({
            model: MODEL, max_tokens: 100, tools: TOOLS,
            messages: [
                ...user('call tool'),
                { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_x', name: 'get_weather', input: {} }] },
                { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x', content: [{ type: 'text', text: 'rainy' }] }] },
            ],
        });
        assert.equal(r2.content[0].text, 'Echo: tool result: rainy');

        await assert.rejects(client.messages.create({
            model: MODEL, max_tokens: 100, tools: TOOLS,
            messages: [
                ...user('call tool'),
                { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: {} }] },
                { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_b', content: 'x' }] },
            ],
        }), (e) => {
            assert.ok(e instanceof Anthropic.BadRequestError, String(e));
            assert.match(e.message, /tool_use/);
            return true;
        });
        await assert.rejects(client.messages.create({
            model: MODEL, max_tokens: 100,
            messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_zz', content: 'x' }] }],
        }), (e) => e instanceof Anthropic.BadRequestError && /unexpected `tool_use_id`/.test(e.message));
    });

    it('images: base64 and URL sources are described in the answer', async () => {
        const png = Buffer.from('\x89PNG\r\n\x1a\nfake image bytes', 'latin1');
        const r = await client.messages.create({
            model: MODEL, max_tokens: 100,
            messages: [{
                role: 'user', content: [
                    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png.toString('base64') } },
                    { type: 'text', text: 'what is this' },
                    { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
                ],
            }],
        });
        assert.equal(r.content[0].text,
            `Echo: what is this [image image/png ${png.length}] [image-url https://example.com/cat.jpg]`);

        // OpenAI-style parts and unknown media types are rejected.
        await assert.rejects(client.messages.create({
            model: MODEL, max_tokens: 100,
            messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } }] }],
        }), (e) => e instanceof Anthropic.BadRequestError && /image_url/.test(e.message));
        await assert.rejects(client.messages.create({
            model: MODEL, max_tokens: 100,
            messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: 'AA==' } }] }],
        }), (e) => e instanceof Anthropic.BadRequestError && /media_type/.test(e.message));
    });

    it('JSON mode: a system prompt asking for JSON, or output_config.format', async () => {
        const r = await client.messages.create(ask('give me data', { system: 'Always respond in JSON.' }));
        assert.deepEqual(JSON.parse(r.content[0].text), { echo: 'give me data' });
        const r2 = await client.messages.create(ask('give me data', {
            output_config: { format: { type: 'json_schema', schema: { type: 'object', properties: { echo: { type: 'string' } } } } },
        }));
        assert.deepEqual(JSON.parse(r2.content[0].text), { echo: 'give me data' });
        const events = await collect(await client.messages.create(ask('give me data', {
            system: [{ type: 'text', text: 'Please respond in json only' }], stream: true,
        })));
        assert.deepEqual(JSON.parse(textDeltas(events).join('')), { echo: 'give me data' });
    });

    it('max_tokens cuts the words; stop_sequences stop before the match', async () => {
        const r = await client.messages.create(ask('a b c d', { max_tokens: 2 }));
        assert.equal(r.content[0].text, 'Echo: a ');
        assert.equal(r.stop_reason, 'max_tokens');
        assert.equal(r.usage.output_tokens, 2);
        const events = await collect(await client.messages.create(ask('a b c d', { max_tokens: 3, stream: true })));
        assert.equal(textDeltas(events).join(''), 'Echo: a b ');
        const md = events.find((e) => e.type === 'message_delta');
        assert.equal(md.delta.stop_reason, 'max_tokens');
        assert.equal(md.usage.output_tokens, 3);

        const s = await client.messages.create(ask('one two STOP three', { stop_sequences: ['END', 'STOP'] }));
        assert.equal(s.content[0].text, 'Echo: one two ');
        assert.equal(s.stop_reason, 'stop_sequence');
        assert.equal(s.stop_sequence, 'STOP');
        const se = await collect(await client.messages.create(ask('one two STOP three', { stop_sequences: ['STOP'], stream: true })));
        assert.equal(textDeltas(se).join(''), 'Echo: one two ');
        assert.equal(se.find((e) => e.type === 'message_delta').delta.stop_sequence, 'STOP');
    });

    it('usage: a "cached" model reports 2 cache-read tokens outside input_tokens', async () => {
        const r = await client.messages.create({ ...ask('hello cache'), model: 'claude-cached-1' });
        assert.equal(r.usage.cache_read_input_tokens, 2);
        assert.equal(r.usage.cache_creation_input_tokens, 0);
        assert.equal(r.usage.input_tokens + r.usage.cache_read_input_tokens, 5);
        const events = await collect(await client.messages.create({ ...ask('hello cache'), model: 'claude-cached-1', stream: true }));
        assert.equal(events[0].message.usage.cache_read_input_tokens, 2);
        assert.equal(events[0].message.usage.input_tokens, 3);
    });

    it('count_tokens: the same input total, no max_tokens needed', async () => {
        const r = await client.messages.countTokens({ model: MODEL, system: 'be terse', messages: user('hello there world') });
        assert.deepEqual(r, { input_tokens: 11 });
        await assert.rejects(client.messages.countTokens({ model: 'fault-500', messages: user('x') }),
            (e) => e instanceof Anthropic.InternalServerError);
    });

    it('validation: real-API 400s with the error envelope and request_id', async () => {
        await assert.rejects(client.messages.create({ model: MODEL, messages: user('x') }), (e) => {
            assert.ok(e instanceof Anthropic.BadRequestError, String(e));
            assert.equal(e.status, 400);
            assert.equal(e.type, 'invalid_request_error');
            assert.equal(e.apiMessage, 'max_tokens: Field required');
            assert.equal(e.error.type, 'error');
            assert.match(e.error.request_id, /^req_/);
            assert.equal(e.requestID, e.error.request_id);
            return true;
        });
        await assert.rejects(client.messages.create({ model: MODEL, max_tokens: 10, messages: [] }),
            (e) => e instanceof Anthropic.BadRequestError && /at least one message/.test(e.message));
        await assert.rejects(client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'tool', content: 'x' }] }),
            (e) => e instanceof Anthropic.BadRequestError && /role/.test(e.message));
        await assert.rejects(client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: '' }] }),
            (e) => e instanceof Anthropic.BadRequestError && /non-empty content/.test(e.message));
        // The SDK sends anthropic-version 2026-10-21, which has no sampling parameters.
        await assert.rejects(client.messages.create(ask('x', { temperature: 0.5 })),
            (e) => e instanceof Anthropic.BadRequestError && e.apiMessage === 'temperature: Extra inputs are not permitted');
        await assert.rejects(client.messages.create(ask('x', { n: 2 })),
            (e) => e instanceof Anthropic.BadRequestError && e.apiMessage === 'n: Extra inputs are not permitted');
        // OpenAI-shaped tools and tool_choice.
        await assert.rejects(client.messages.create(ask('x', {
            tools: [{ type: 'function', function: { name: 'f', parameters: {} } }],
        })), (e) => e instanceof Anthropic.BadRequestError && /tools\.0/.test(e.message));
        await assert.rejects(client.messages.create(ask('x', { tools: TOOLS, tool_choice: 'auto' })),
            (e) => e instanceof Anthropic.BadRequestError && /tool_choice/.test(e.message));

        // 2023-06-01 still takes temperature; without anthropic-version it is a 400.
        const ok = await post('/v1/messages', ask('old version', { temperature: 0.2, top_k: 5 }));
        assert.equal(ok.status, 200);
        assert.equal((await ok.json()).content[0].text, 'Echo: old version');
        const nov = await post('/v1/messages', ask('x'), { 'anthropic-version': '' });
        assert.equal(nov.status, 400);
        const body = await nov.json();
        assert.equal(body.type, 'error');
        assert.equal(body.error.type, 'invalid_request_error');
        assert.match(body.error.message, /anthropic-version/);
        const bad = await post('/v1/messages', '{"model":');
        assert.equal(bad.status, 400);
        assert.equal((await bad.json()).error.type, 'invalid_request_error');
    });

    it('auth: x-api-key or Bearer; wrong or missing is a 401 authentication_error', async () => {
        const wrong = new Anthropic({ apiKey: 'wrong', baseURL: host, maxRetries: 0 });
        await assert.rejects(wrong.messages.create(ask('x')), (e) => {
            assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
            assert.equal(e.status, 401);
            assert.equal(e.type, 'authentication_error');
            assert.equal(e.apiMessage, 'invalid x-api-key');
            return true;
        });
        // The x-api-key form (what gateways send) works too.
        const viaHeader = await post('/v1/messages', ask('header key'));
        assert.equal(viaHeader.status, 200);
        const none = await post('/v1/messages', ask('x'), { 'x-api-key': '' });
        assert.equal(none.status, 401);
        assert.deepEqual(Object.keys(await none.json()).sort(), ['error', 'request_id', 'type']);
        // With both forms, x-api-key is the one that counts.
        const both = await post('/v1/messages', ask('both'), { authorization: 'Bearer nope' });
        assert.equal(both.status, 200);
        const wrongHeader = await post('/v1/messages', ask('x'), { 'x-api-key': 'nope' });
        assert.equal(wrongHeader.status, 401);
        assert.equal((await wrongHeader.json()).error.message, 'invalid x-api-key');
    });

    it('fault-500 / fault-429 / fault-400 / overloaded / context-too-long', async () => {
        const m = (model) => client.messages.create({ ...ask('x'), model });
        await assert.rejects(m('fault-500'), (e) => {
            assert.ok(e instanceof Anthropic.InternalServerError, String(e));
            assert.equal(e.status, 500);
            assert.equal(e.type, 'api_error');
            return true;
        });
        await assert.rejects(m('fault-429'), (e) => {
            assert.ok(e instanceof Anthropic.RateLimitError, String(e));
            assert.equal(e.status, 429);
            assert.equal(e.type, 'rate_limit_error');
            assert.equal(e.headers.get('retry-after'), '7');
            return true;
        });
        await assert.rejects(m('fault-400'), (e) => {
            assert.ok(e instanceof Anthropic.BadRequestError, String(e));
            assert.equal(e.type, 'invalid_request_error');
            assert.match(e.message, /fault-400/);
            return true;
        });
        await assert.rejects(m('overloaded'), (e) => {
            assert.ok(e instanceof Anthropic.OverloadedError, String(e));
            assert.equal(e.status, 529);
            assert.equal(e.type, 'overloaded_error');
            return true;
        });
        await assert.rejects(m('context-too-long'), (e) => {
            assert.ok(e instanceof Anthropic.BadRequestError, String(e));
            assert.equal(e.type, 'invalid_request_error');
            assert.match(e.apiMessage, /^prompt is too long: \d+ tokens > 200000 maximum$/);
            return true;
        });
        // Streaming requests get the same HTTP errors before any event.
        await assert.rejects(client.messages.create({ ...ask('x'), model: 'overloaded', stream: true }),
            (e) => e instanceof Anthropic.OverloadedError);
    });

    it('content-filter: a 200 with stop_reason refusal and no content', async () => {
        const r = await client.messages.create({ ...ask('something bad'), model: 'content-filter' });
        assert.equal(r.stop_reason, 'refusal');
        assert.deepEqual(r.content, []);
        assert.equal(r.stop_details.type, 'refusal');
        assert.equal(r.usage.output_tokens, 0);
        const events = await collect(await client.messages.create({ ...ask('something bad'), model: 'content-filter', stream: true }));
        assert.deepEqual(events.map((e) => e.type), ['message_start', 'message_delta', 'message_stop']);
        assert.equal(events[1].delta.stop_reason, 'refusal');
    });

    it('stream-error: an in-band error event raises an APIError mid-stream', async () => {
        const stream = await client.messages.create({ ...ask('a b c d'), model: 'stream-error', stream: true });
        const got = [];
        await assert.rejects(async () => {
            for await (const e of stream) got.push(e);
        }, (e) => {
            assert.ok(e instanceof Anthropic.APIError, String(e));
            assert.equal(e.type, 'overloaded_error');
            assert.equal(e.status, undefined);
            return true;
        });
        assert.deepEqual(textDeltas(got), ['Echo: ']);
        await assert.rejects(client.messages.create({ ...ask('x'), model: 'stream-error' }),
            (e) => e instanceof Anthropic.OverloadedError);
    });

    it('bad-event: a malformed second event fails the iteration', async () => {
        // A client of its own, so the SDK does not log the parse failure.
        const quiet = new Anthropic({ apiKey: KEY, baseURL: host, maxRetries: 0, logLevel: 'off' });
        const stream = await quiet.messages.create({ ...ask('a b'), model: 'bad-event', stream: true });
        const got = [];
        await assert.rejects(async () => {
            for await (const e of stream) got.push(e);
        }, SyntaxError);
        assert.equal(got.length, 1);
        assert.equal(got[0].type, 'message_start');
        // Without a stream: a 200 whose JSON body is cut short.
        await assert.rejects(quiet.messages.create({ ...ask('a b'), model: 'bad-event' }));
    });

    it('slow-first-byte and echo-body', async () => {
        const t0 = Date.now();
        const events = await collect(await client.messages.create({ ...ask('patience'), model: 'slow-first-byte-300', stream: true }));
        assert.ok(Date.now() - t0 >= 250, `took ${Date.now() - t0} ms`);
        assert.equal(textDeltas(events).join(''), 'Echo: patience');
        const r = await client.messages.create({ ...ask('x'), model: 'echo-body', metadata: { user_id: 'u9' } });
        const seen = JSON.parse(r.content[0].text);
        assert.equal(seen.model, 'echo-body');
        assert.deepEqual(seen.metadata, { user_id: 'u9' });
    });

    it('drop-mid-stream: the SDK stream fails instead of hanging', async () => {
        const stream = await client.messages.create({ ...ask('a b c d'), model: 'drop-mid-stream', stream: true });
        const got = [];
        await assert.rejects(async () => {
            for await (const e of stream) got.push(e);
        });
        assert.ok(got.length <= 2);
        await assert.rejects(client.messages.create({ ...ask('a b c d'), model: 'drop-mid-stream' }));
        const e = (await fake.log()).filter((x) => x.model === 'drop-mid-stream').at(-1);
        assert.equal(e.completed, false);
    });

    it('slow-stream: events about 300 ms apart for about 3 s', async () => {
        const t0 = Date.now();
        const times = [];
        const stream = await client.messages.create({ ...ask('tick tock'), model: 'slow-stream', stream: true });
        const got = [];
        for await (const e of stream) {
            times.push(Date.now() - t0);
            got.push(e);
        }
        assert.equal(textDeltas(got).join(''), 'Echo: tick tock');
        const total = Date.now() - t0;
        assert.ok(total >= 2500 && total < 8000, `stream took ${total} ms`);
        assert.ok(times.at(-1) - times[0] >= 1500, `events spread over ${times.at(-1) - times[0]} ms`);
    });

    it('hang: never answers; the log records when the client gave up', async () => {
        await fake.reset();
        const t0 = Date.now();
        await assert.rejects(client.messages.create({ ...ask('x'), model: 'hang' }, { timeout: 700 }),
            (e) => e instanceof Anthropic.APIConnectionTimeoutError);
        assert.ok(Date.now() - t0 >= 650);
        let entry;
        for (let i = 0; i < 40 && !(entry && entry.t_close_ms); i++) {
            await sleep(50);
            entry = (await fake.log()).find((x) => x.model === 'hang');
        }
        assert.ok(entry && entry.t_close_ms, 'close recorded');
        assert.equal(entry.status, null);
        assert.equal(entry.completed, false);
    });

    it('control log: records the body, model, stream and auth, never the key', async () => {
        await fake.reset();
        await client.messages.create(ask('logged', { stream: false, metadata: { user_id: 'u1' } }));
        await post('/v1/messages', ask('logged via header', { stream: true })).then((r) => r.text());
        await post('/v1/messages', ask('x'), { 'x-api-key': 'nope' }).then((r) => r.text());
        const log = await fake.log();
        assert.equal(log.length, 3);
        const [a, b, c] = log;
        assert.equal(a.path, '/v1/messages');
        assert.equal(a.model, MODEL);
        assert.equal(a.stream, false);
        assert.deepEqual(a.body.metadata, { user_id: 'u1' });
        assert.deepEqual(a.body.messages, user('logged'));
        assert.equal(a.auth_ok, true);
        assert.equal(a.had_auth, true);
        assert.equal(a.headers['anthropic-version'], '2026-10-21');
        assert.equal(a.status, 200);
        assert.equal(a.completed, true);
        assert.equal(b.stream, true);
        assert.equal(b.auth_ok, true);
        assert.equal(b.headers['x-api-key'], undefined);
        assert.equal(c.auth_ok, false);
        assert.equal(c.status, 401);
        assert.ok(!JSON.stringify(log).includes(KEY), 'the key never appears in the log');
    });
});

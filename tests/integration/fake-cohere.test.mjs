// The fake Cohere v2 upstream (tests/fakes/providers/cohere.mjs) proven
// against the official cohere-ai SDK (CohereClientV2), no gateway involved.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CohereClientV2, Cohere, CohereError, CohereTimeoutError } from 'cohere-ai';
import { startFakeProcess, sleep } from './lib/procs.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';

const KEY = 'fake-cohere-key';
let dir;
let fake;
let client;
let base;

before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-fake-cohere-'));
    fake = await startFakeProcess(dir, { apiKey: KEY, name: 'fake-cohere' });
    base = `http://127.0.0.1:${fake.port}`;
    client = new CohereClientV2({ token: KEY, environment: base, maxRetries: 0, timeoutInSeconds: 20 });
});

after(async () => {
    if (fake) await fake.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const user = (content) => [{ role: 'user', content }];
const TOOLS = [{
    type: 'function',
    function: { name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { text: { type: 'string' } } } },
}];

async function collect(stream) {
    const events = [];
    for await (const e of stream) events.push(e);
    return events;
}

const textOf = (events) => events
    .filter((e) => e.type === 'content-delta')
    .map((e) => e.delta.message.content.text)
    .join('');

/* Asserts that promise rejects with SDK error class cls and HTTP status. */
async function rejectsWith(promise, cls, status, messageRe) {
    await assert.rejects(promise, (e) => {
        assert.ok(e instanceof cls, `${e && e.constructor && e.constructor.name}: ${e}`);
        assert.equal(e.statusCode, status);
        assert.equal(typeof e.body.message, 'string');
        if (messageRe) assert.match(e.body.message, messageRe);
        return true;
    });
}

describe('fake Cohere v2 via cohere-ai', () => {
    it('chat: non-stream echo with usage', async () => {
        const r = await client.chat({
            model: 'command-r-plus',
            messages: [{ role: 'system', content: 'be terse' }, ...user('hello there world')],
        });
        assert.match(r.id, /^[0-9a-f-]{36}$/);
        assert.equal(r.finishReason, 'COMPLETE');
        assert.equal(r.message.role, 'assistant');
        assert.deepEqual(r.message.content, [{ type: 'text', text: 'Echo: hello there world' }]);
        // (3 + 2) + (3 + 3) input, 4 words out.
        assert.deepEqual(r.usage.billedUnits, { inputTokens: 11, outputTokens: 4 });
        assert.deepEqual(r.usage.tokens, { inputTokens: 11, outputTokens: 4 });
        assert.equal(r.usage.cachedTokens, 0);
    });

    it('chat: stream is one content-delta per word, ending in message-end with usage', async () => {
        const events = await collect(await client.chatStream({ model: 'command-r', messages: user('the quick  brown fox') }));
        assert.equal(textOf(events), 'Echo: the quick  brown fox');
        assert.deepEqual(events.map((e) => e.type), ['message-start', 'content-start',
            'content-delta', 'content-delta', 'content-delta', 'content-delta', 'content-delta',
            'content-end', 'message-end']);
        assert.equal(events[0].delta.message.role, 'assistant');
        assert.ok(events[0].id);
        const end = events.at(-1);
        assert.equal(end.delta.finishReason, 'COMPLETE');
        assert.deepEqual(end.delta.usage.billedUnits, { inputTokens: 7, outputTokens: 5 });
    });

    it('chat: the raw stream is "event: <type>" + "data: <json>" per event', async () => {
        const res = await fetch(`${base}/v2/chat`, {
            method: 'POST',
            headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'command-r', stream: true, messages: user('hi') }),
        });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type'), /^text\/event-stream/);
        const blocks = (await res.text()).split('\n\n').filter(Boolean);
        for (const b of blocks) {
            const [ev, data] = b.split('\n');
            assert.equal(ev.slice('event: '.length), JSON.parse(data.slice('data: '.length)).type);
        }
        assert.equal(JSON.parse(blocks.at(-1).split('\n')[1].slice(6)).type, 'message-end');
    });

    it('chat: tool call, non-stream and stream', async () => {
        const r = await client.chat({ model: 'command-r', tools: TOOLS, messages: user('please call tool now') });
        assert.equal(r.finishReason, 'TOOL_CALL');
        assert.equal(typeof r.message.toolPlan, 'string');
        const tc = r.message.toolCalls[0];
        assert.equal(tc.type, 'function');
        assert.equal(tc.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(tc.function.arguments), { text: 'please call tool now' });
        // {"text":"please call tool now"} is 4 words, + 1.
        assert.equal(r.usage.billedUnits.outputTokens, 5);

        const events = await collect(await client.chatStream({ model: 'command-r', tools: TOOLS, messages: user('please call tool now') }));
        const start = events.find((e) => e.type === 'tool-call-start');
        assert.equal(start.delta.message.toolCalls.function.name, 'get_weather');
        assert.ok(start.delta.message.toolCalls.id);
        const frags = events.filter((e) => e.type === 'tool-call-delta').map((e) => e.delta.message.toolCalls.function.arguments);
        assert.ok(frags.length >= 2);
        assert.deepEqual(JSON.parse(frags.join('')), { text: 'please call tool now' });
        assert.ok(events.some((e) => e.type === 'tool-plan-delta'));
        assert.ok(events.some((e) => e.type === 'tool-call-end'));
        assert.equal(events.at(-1).delta.finishReason, 'TOOL_CALL');

        // tool_choice NONE turns the tool call off.
        const none = await client.chat({ model: 'command-r', tools: TOOLS, toolChoice: 'NONE', messages: user('call tool') });
        assert.equal(none.finishReason, 'COMPLETE');
    });

    it('chat: tool result round trip', async () => {
        const r = await client.chat({
            model: 'command-r',
            tools: TOOLS,
            messages: [
                ...user('call tool please'),
                {
                    role: 'assistant', toolPlan: 'I will call get_weather.',
                    toolCalls: [{ id: 'get_weather_1', type: 'function', function: { name: 'get_weather', arguments: '{"text":"x"}' } }],
                },
                { role: 'tool', toolCallId: 'get_weather_1', content: [{ type: 'text', text: 'sunny and warm' }] },
            ],
        });
        assert.equal(r.finishReason, 'COMPLETE');
        assert.equal(r.message.content[0].text, 'Echo: tool result: sunny and warm');
    });

    it('chat: images are echoed as markers', async () => {
        const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5, 6]);
        const r = await client.chat({
            model: 'command-a-vision',
            messages: user([
                { type: 'text', text: 'describe these' },
                { type: 'image_url', imageUrl: { url: `data:image/png;base64,${png.toString('base64')}` } },
                { type: 'image_url', imageUrl: { url: 'https://example.com/cat.jpg' } },
            ]),
        });
        assert.equal(r.message.content[0].text,
            'Echo: describe these [image image/png 10] [image-url https://example.com/cat.jpg]');
    });

    it('chat: JSON mode, max_tokens and cached usage', async () => {
        const j = await client.chat({ model: 'command-r', responseFormat: { type: 'json_object' }, messages: user('make json') });
        assert.deepEqual(JSON.parse(j.message.content[0].text), { echo: 'make json' });

        const m = await client.chat({ model: 'command-r', maxTokens: 2, messages: user('a b c d') });
        assert.equal(m.message.content[0].text, 'Echo: a ');
        assert.equal(m.finishReason, 'MAX_TOKENS');
        assert.equal(m.usage.billedUnits.outputTokens, 2);

        const events = await collect(await client.chatStream({ model: 'command-r', maxTokens: 3, messages: user('a b c d') }));
        assert.equal(textOf(events), 'Echo: a b ');
        assert.equal(events.at(-1).delta.finishReason, 'MAX_TOKENS');

        const c = await client.chat({ model: 'command-r-cached', messages: user('x') });
        assert.equal(c.usage.cachedTokens, 2);
    });

    it('embed: float, int8 and base64 embeddings by type', async () => {
        const r = await client.embed({
            model: 'embed-v4.0', texts: ['hello', 'two words'], inputType: 'search_document',
            embeddingTypes: ['float', 'int8', 'base64'],
        });
        assert.equal(r.responseType, 'embeddings_by_type');
        assert.ok(r.id);
        assert.deepEqual(r.texts, ['hello', 'two words']);
        assert.deepEqual(r.embeddings.float, [fakeEmbedding('hello'), fakeEmbedding('two words')]);
        assert.equal(r.embeddings.int8[0].length, 8);
        assert.ok(r.embeddings.int8[0].every((x) => Number.isInteger(x) && x >= -128 && x <= 127));
        const buf = Buffer.from(r.embeddings.base64[1], 'base64');
        assert.deepEqual(Array.from({ length: 8 }, (_, i) => buf.readFloatLE(i * 4)), fakeEmbedding('two words'));
        assert.equal(r.meta.billedUnits.inputTokens, 3);

        const d = await client.embed({ model: 'embed-v4.0', texts: ['x'], inputType: 'search_query', outputDimension: 16 });
        assert.equal(d.embeddings.float[0].length, 16);
        await rejectsWith(client.embed({ model: 'fault-500', texts: ['x'], inputType: 'search_query' }),
            Cohere.InternalServerError, 500);
    });

    it('error faults raise the SDK error classes', async () => {
        const chat = (model) => client.chat({ model, messages: user('x') });
        await rejectsWith(chat('fault-500'), Cohere.InternalServerError, 500);
        await assert.rejects(chat('fault-429'), (e) => {
            assert.ok(e instanceof Cohere.TooManyRequestsError, String(e));
            assert.equal(e.statusCode, 429);
            assert.equal(e.rawResponse.headers.get('retry-after'), '7');
            return true;
        });
        await rejectsWith(chat('fault-400'), Cohere.BadRequestError, 400, /^invalid request: /);
        await rejectsWith(chat('overloaded'), Cohere.ServiceUnavailableError, 503);
        await rejectsWith(chat('context-too-long'), Cohere.BadRequestError, 400, /^too many tokens: /);
        await rejectsWith(chat('content-filter'), Cohere.BadRequestError, 400, /^blocked input: /);
        // The stream call fails the same way, before any event.
        await rejectsWith(client.chatStream({ model: 'fault-429', messages: user('x') }), Cohere.TooManyRequestsError, 429);
        await rejectsWith(client.chat({ model: 'command-r', messages: [] }), Cohere.BadRequestError, 400);
    });

    it('stream faults: drop-mid-stream and bad-event raise during iteration', async () => {
        const got = [];
        const dropped = await client.chatStream({ model: 'drop-mid-stream', messages: user('a b c d') });
        await assert.rejects(async () => {
            for await (const e of dropped) got.push(e);
        });
        assert.equal(got.length, 2);

        const bad = await client.chatStream({ model: 'bad-event', messages: user('a b c d') });
        const seen = [];
        await assert.rejects(async () => {
            for await (const e of bad) seen.push(e);
        }, SyntaxError);
        assert.equal(seen.length, 1);
    });

    it('stream fault: stream-error ends with finish_reason ERROR and an error message', async () => {
        const events = await collect(await client.chatStream({ model: 'stream-error', messages: user('a b c d') }));
        assert.deepEqual(events.map((e) => e.type), ['message-start', 'content-start', 'message-end']);
        assert.equal(events[2].delta.finishReason, 'ERROR');
        assert.match(events[2].delta.error, /stream-error/);
        // Non-stream, the same model is a 500.
        await rejectsWith(client.chat({ model: 'stream-error', messages: user('x') }), Cohere.InternalServerError, 500);
    });

    it('stream fault: slow-stream spreads the events over about 3 s', async () => {
        const t0 = Date.now();
        const times = [];
        let text = '';
        for await (const e of await client.chatStream({ model: 'slow-stream', messages: user('tick tock') })) {
            times.push(Date.now() - t0);
            if (e.type === 'content-delta') text += e.delta.message.content.text;
        }
        assert.equal(text, 'Echo: tick tock');
        assert.equal(times.length, 10);
        assert.ok(times.at(-1) - times[0] >= 2000, `events spread over ${times.at(-1) - times[0]} ms`);
    });

    it('hang: the SDK times out and the log records the close', async () => {
        await fake.reset();
        // On Node 20 the SDK's timeout abort reason ("timeout") reaches it as a
        // plain CohereError rather than a CohereTimeoutError; accept either.
        await assert.rejects(client.chat({ model: 'hang', messages: user('x') }, { timeoutInSeconds: 0.5 }),
            (e) => e instanceof CohereTimeoutError || (e instanceof CohereError && /timeout/i.test(e.message)));
        let entry;
        for (let i = 0; i < 40 && !(entry && entry.t_close_ms); i++) {
            await sleep(25);
            entry = (await fake.log()).find((x) => x.model === 'hang');
        }
        assert.ok(entry && entry.t_close_ms, 'close recorded');
        assert.equal(entry.completed, false);
        assert.equal(entry.status, null);
    });

    it('auth: wrong or missing bearer is a 401 with Cohere\'s messages', async () => {
        const bad = new CohereClientV2({ token: 'wrong', environment: base, maxRetries: 0 });
        await assert.rejects(bad.chat({ model: 'command-r', messages: user('x') }), (e) => {
            assert.ok(e instanceof Cohere.UnauthorizedError, String(e));
            assert.ok(e instanceof CohereError);
            assert.equal(e.statusCode, 401);
            assert.deepEqual(e.body, { message: 'invalid api token' });
            return true;
        });
        const res = await fetch(`${base}/v2/chat`, {
            method: 'POST', headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'command-r', messages: user('x') }),
        });
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), { message: 'no api key supplied' });
    });

    it('control log: records the body, model, stream flag and auth', async () => {
        await fake.reset();
        await collect(await client.chatStream({ model: 'command-r', temperature: 0.5, messages: user('logged') }));
        const [e] = await fake.log();
        assert.equal(e.path, '/v2/chat');
        assert.equal(e.model, 'command-r');
        assert.equal(e.stream, true);
        assert.equal(e.auth_ok, true);
        assert.equal(e.body.temperature, 0.5);
        assert.deepEqual(e.body.messages, user('logged'));
        assert.equal(e.completed, true);
        assert.ok(!JSON.stringify(e).includes(KEY), 'the key never appears in the log');
    });
});

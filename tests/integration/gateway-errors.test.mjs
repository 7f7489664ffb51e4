// Errors the gateway produces or passes on: authentication, request
// validation, upstream faults, unknown routes and methods, and hostile raw
// bodies sent with curl. Every error must be OpenAI-shaped JSON
// {"error":{"message","type","param","code"}} with the right status, and the
// gateway must still answer afterwards.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startHarness } from './lib/harness.mjs';
import { curl, rawSocket, errorShape } from './lib/http.mjs';
import { sleep } from './lib/procs.mjs';
import { user } from './lib/chat.mjs';

let h;
let client;

before(async () => {
    h = await startHarness();
    client = h.client();
});

after(async () => {
    if (h) await h.stop();
});

const chatBody = (extra = {}) => JSON.stringify({ model: 'gpt-4o-mini', messages: user('hi'), ...extra });

function post(path, body, headers = {}, o = {}) {
    return curl(`${h.rootURL}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json', ...headers },
        body,
        ...o,
    });
}

/* Asserts status, OpenAI error shape, JSON content type and x-request-id. */
function expectError(r, status, what) {
    assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status}: ${r.text.slice(0, 300)}`);
    assert.match(r.headers['content-type'] ?? '', /application\/json/, `${what}: content-type`);
    const e = errorShape(r.json);
    assert.ok(r.headers['x-request-id'], `${what}: x-request-id`);
    return e;
}

async function expectAlive(what) {
    const r = await curl(`${h.rootURL}/health/liveliness`, { maxTime: 10 });
    assert.equal(r.status, 200, `gateway not healthy after ${what}: ${r.status} ${r.text.slice(0, 200)}\n${h.errorLog().slice(-3000)}`);
}

describe('authentication', () => {
    it('no key → 401', async () => {
        const r = await curl(`${h.baseURL}/chat/completions`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody(),
        });
        expectError(r, 401, 'no key');
    });

    it('wrong Bearer key → 401 (AuthenticationError in the SDK)', async () => {
        const r = await post('/v1/chat/completions', chatBody(), { authorization: 'Bearer sk-wrong' });
        expectError(r, 401, 'wrong key');
        const bad = h.client({ apiKey: 'sk-wrong' });
        await assert.rejects(bad.chat.completions.create({ model: 'gpt-4o-mini', messages: user('x') }),
            (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    });

    it('x-api-key: wrong → 401, right → 200', async () => {
        const noBearer = { 'content-type': 'application/json' };
        const wrong = await curl(`${h.baseURL}/chat/completions`, {
            method: 'POST', headers: { ...noBearer, 'x-api-key': 'sk-wrong' }, body: chatBody(),
        });
        expectError(wrong, 401, 'wrong x-api-key');
        const right = await curl(`${h.baseURL}/chat/completions`, {
            method: 'POST', headers: { ...noBearer, 'x-api-key': h.masterKey }, body: chatBody(),
        });
        assert.equal(right.status, 200, right.text);
        assert.equal(right.json.choices[0].message.content, 'Echo: hi');
    });

    it('a 401 never echoes the key that was sent', async () => {
        const r = await post('/v1/chat/completions', chatBody(), { authorization: 'Bearer sk-secret-canary-777' });
        expectError(r, 401, 'wrong key');
        assert.ok(!r.text.includes('sk-secret-canary-777'), r.text);
    });
});

describe('request validation → 400', () => {
    const cases = [
        ['malformed JSON', '{"model": "gpt-4o-mini", "messages": ['],
        ['missing model', JSON.stringify({ messages: user('x') })],
        ['unknown model', chatBody({ model: 'no-such-model' })],
        ['model: 123', chatBody({ model: 123 })],
        ['messages: "x"', chatBody({ messages: 'x' })],
        ['stream: "yes"', chatBody({ stream: 'yes' })],
        ['body is a JSON array', '[1,2,3]'],
        ['body is a JSON string', '"hello"'],
        ['body is null', 'null'],
    ];
    for (const [what, body] of cases) {
        it(what, async () => {
            const r = await post('/v1/chat/completions', body);
            expectError(r, 400, what);
        });
    }

    it('unknown model also via the SDK (BadRequestError), and on /v1/embeddings', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'nope-model', messages: user('x') }),
            (e) => e instanceof OpenAI.BadRequestError && e.status === 400);
        const r = await post('/v1/embeddings', JSON.stringify({ model: 'nope-model', input: 'x' }));
        expectError(r, 400, 'unknown embedding model');
    });
});

describe('upstream faults', () => {
    it('fault-500 → 500', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'fault-500', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.InternalServerError, String(e));
            assert.equal(e.status, 500);
            return true;
        });
        expectError(await post('/v1/chat/completions', chatBody({ model: 'fault-500' })), 500, 'fault-500');
    });

    it('fault-500 with stream: true → a plain 500 JSON (the error came before any chunk)', async () => {
        const r = await post('/v1/chat/completions', chatBody({ model: 'fault-500', stream: true }));
        expectError(r, 500, 'fault-500 stream');
    });

    it('fault-429 → 429 with retry-after: 7 preserved', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'fault-429', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.RateLimitError, String(e));
            assert.equal(e.status, 429);
            assert.equal(e.headers.get('retry-after'), '7');
            return true;
        });
        const r = await post('/v1/chat/completions', chatBody({ model: 'fault-429' }));
        expectError(r, 429, 'fault-429');
        assert.equal(r.headers['retry-after'], '7');
    });

    it('fault-400 → 400 carrying the upstream message', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'fault-400', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.BadRequestError, String(e));
            assert.equal(e.status, 400);
            assert.match(e.message, /rejected by the fake upstream \(fault-400\)/);
            return true;
        });
    });

    it('hang (timeout 2 s) → 408 (LiteLLM\'s Timeout), in time', async () => {
        const t0 = Date.now();
        const r = await post('/v1/chat/completions', chatBody({ model: 'hang' }), {}, { maxTime: 20 });
        const ms = Date.now() - t0;
        const e = expectError(r, 408, 'hang');
        assert.match(e.message, /^litellm\.Timeout: /);
        assert.ok(ms >= 1500 && ms < 8000, `408 after ${ms} ms (timeout is 2 s)`);
    });

    it('upstream unreachable → 502', async () => {
        await assert.rejects(client.chat.completions.create({ model: 'unreachable', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.InternalServerError, String(e));
            assert.equal(e.status, 502);
            return true;
        });
        expectError(await post('/v1/chat/completions', chatBody({ model: 'unreachable' })), 502, 'unreachable');
    });

    it('an upstream status with an empty body keeps its status (503), OpenAI-shaped', async () => {
        const r = await post('/v1/chat/completions', chatBody({ model: 'empty-503' }));
        const e = expectError(r, 503, 'empty-503');
        assert.match(e.message, /503/, 'the message names the upstream status');
        const s = await post('/v1/chat/completions', chatBody({ model: 'empty-503', stream: true }));
        expectError(s, 503, 'empty-503 streamed (before any event)');
    });

    it('faults apply to embeddings too (fault-429 → 429)', async () => {
        const r = await post('/v1/embeddings', JSON.stringify({ model: 'fault-429', input: 'x' }));
        expectError(r, 429, 'embeddings fault-429');
    });
});

describe('routes and methods', () => {
    it('unknown route → 404', async () => {
        const auth = { authorization: `Bearer ${h.masterKey}` };
        expectError(await curl(`${h.baseURL}/no-such-route`, { headers: auth }), 404, 'GET unknown');
        expectError(await post('/v1/nope/completions', chatBody()), 404, 'POST unknown');
        expectError(await curl(`${h.rootURL}/`, { headers: auth }), 404, 'GET /');
    });

    it('wrong method → 405', async () => {
        const auth = { authorization: `Bearer ${h.masterKey}` };
        expectError(await curl(`${h.baseURL}/chat/completions`, { headers: auth }), 405, 'GET chat');
        expectError(await curl(`${h.baseURL}/embeddings`, { method: 'DELETE', headers: auth }), 405, 'DELETE embeddings');
        expectError(await post('/v1/models', '{}'), 405, 'POST models');
    });

    it('a query string does not change the route', async () => {
        const r = await post('/v1/chat/completions?foo=bar', chatBody());
        assert.equal(r.status, 200, r.text);
    });
});

describe('hostile raw bodies (curl): clean 4xx, gateway stays up', () => {
    const nested = (depth) => `{"model":"gpt-4o-mini","messages":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const cases = [
        ['empty body', Buffer.alloc(0)],
        ['invalid UTF-8 in a JSON string', Buffer.concat([
            Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"bad '),
            Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
            Buffer.from('"}]}'),
        ])],
        ['a raw NUL byte inside a string', Buffer.concat([
            Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a'),
            Buffer.from([0x00]),
            Buffer.from('b"}]}'),
        ])],
        ['a NUL byte after the JSON', Buffer.concat([Buffer.from(chatBody()), Buffer.from([0x00])])],
        ['10000-deep nested arrays', Buffer.from(nested(10000))],
        ['truncated JSON', Buffer.from(chatBody().slice(0, 30))],
        ['trailing garbage', Buffer.from(`${chatBody()} xyz`)],
    ];
    for (const [what, body] of cases) {
        it(what, async () => {
            const r = await post('/v1/chat/completions', body, {}, { maxTime: 30 });
            assert.ok(r.status >= 400 && r.status < 500, `${what}: expected 4xx, got ${r.status}: ${r.text.slice(0, 300)}`);
            expectError(r, r.status, what);
            assert.ok(r.body.length < 64 * 1024, `${what}: error body is ${r.body.length} bytes`);
            await expectAlive(what);
        });
    }

    it('a 5 MB model name → 400 (unknown model), not echoed whole', async () => {
        const body = JSON.stringify({ model: 'm'.repeat(5 * 1024 * 1024), messages: user('x') });
        const r = await post('/v1/chat/completions', body, {}, { maxTime: 30 });
        expectError(r, 400, '5 MB model');
        assert.ok(r.body.length < 64 * 1024, `error body is ${r.body.length} bytes`);
        await expectAlive('5 MB model name');
    });

    it('a 5 MB message string goes through (200, echoed by the upstream)', async () => {
        const big = 'a'.repeat(5 * 1024 * 1024);
        const r = await post('/v1/chat/completions', chatBody({ messages: user(big) }), {}, { maxTime: 60 });
        assert.equal(r.status, 200, r.text.slice(0, 300));
        assert.equal(r.json.choices[0].message.content.length, big.length + 'Echo: '.length);
        await expectAlive('5 MB message');
    });

    it('content-type text/plain with valid JSON is accepted (as OpenAI does) → 200', async () => {
        const r = await post('/v1/chat/completions', chatBody(), { 'content-type': 'text/plain' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.choices[0].message.content, 'Echo: hi');
    });

    it('no content-type at all with valid JSON → 200', async () => {
        const r = await curl(`${h.baseURL}/chat/completions`, {
            method: 'POST', headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': '' }, body: chatBody(),
        });
        assert.equal(r.status, 200, r.text);
    });

    it('a body shorter than its Content-Length (client gives up): gateway stays up', async () => {
        const body = chatBody();
        const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
            `Authorization: Bearer ${h.masterKey}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${body.length + 100}\r\nConnection: close\r\n\r\n`;
        await rawSocket(h.port, Buffer.from(head + body), { waitMs: 1500 });
        await expectAlive('truncated HTTP body');
        // And a half-closed one: the client says it is done sending.
        await rawSocket(h.port, Buffer.from(head + body), { waitMs: 1500, halfClose: true });
        await expectAlive('truncated, half-closed HTTP body');
    });

    it('all of the above left the responders running', async () => {
        await sleep(100);
        assert.deepEqual(h.respondersAlive(), h.responders,
            `a sluice process died:\n${h.errorLog().slice(-4000)}`);
    });
});

// A harness of its own with general_settings.max_request_size_mb: 1: bodies
// over the limit get an OpenAI-shaped 413 from sluice (lighttpd's own cap is
// set far higher). Then a clean shutdown: stopping lighttpd stops every
// responder without SIGKILL.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness } from './lib/harness.mjs';
import { curl, errorShape } from './lib/http.mjs';
import { isAlive } from './lib/procs.mjs';
import { user } from './lib/chat.mjs';

let h;

before(async () => {
    h = await startHarness({ generalSettings: { max_request_size_mb: 1 }, maxProcs: 2 });
});

after(async () => {
    if (h) await h.stop();
});

function post(body, o = {}) {
    return curl(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json' },
        body,
        maxTime: 30,
        ...o,
    });
}

describe('max_request_size_mb: 1', () => {
    it('a 2 MB body → 413, OpenAI-shaped', async () => {
        const body = JSON.stringify({ model: 'gpt-4o-mini', messages: user('x'.repeat(2 * 1024 * 1024)) });
        const r = await post(body);
        assert.equal(r.status, 413, `expected 413, got ${r.status}: ${r.text.slice(0, 300)}`);
        errorShape(r.json);
        assert.ok(r.headers['x-request-id'], 'x-request-id');
    });

    it('a 2 MB body sent chunked (no Content-Length) → 413', async () => {
        const body = JSON.stringify({ model: 'gpt-4o-mini', messages: user('y'.repeat(2 * 1024 * 1024)) });
        const r = await post(body, { args: ['-H', 'Transfer-Encoding: chunked'] });
        assert.equal(r.status, 413, `expected 413, got ${r.status}: ${r.text.slice(0, 300)}`);
        errorShape(r.json);
    });

    it('a body just under the limit is served', async () => {
        const body = JSON.stringify({ model: 'gpt-4o-mini', messages: user('z'.repeat(900 * 1024)) });
        const r = await post(body);
        assert.equal(r.status, 200, r.text.slice(0, 300));
        assert.equal(r.json.choices[0].message.content.length, 900 * 1024 + 'Echo: '.length);
    });

    it('the gateway answers normally afterwards (both processes)', async () => {
        for (let i = 0; i < 4; i++) {
            const r = await post(JSON.stringify({ model: 'gpt-4o-mini', messages: user(`after ${i}`) }));
            assert.equal(r.status, 200, r.text);
        }
    });
});

describe('shutdown', () => {
    it('stopping lighttpd stops every sluice process without SIGKILL', async () => {
        const responders = [...h.responders];
        assert.equal(responders.length, 2, `expected 2 responders (max-procs 2), saw ${responders}`);
        await h.stop();
        assert.deepEqual(h.leftovers, [], `responders that ignored SIGTERM for 5 s and were killed: ${h.leftovers}`);
        assert.deepEqual(responders.filter(isAlive), []);
    });
});

// Streaming behaviour through lighttpd + sluice: events are forwarded as they
// come (never buffered), heartbeats cover silent upstreams, a dying upstream
// ends the client's stream with an in-band error and [DONE], and a client
// that leaves makes the gateway close its upstream connection within 1 s.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI from 'openai';
import { startHarness } from './lib/harness.mjs';
import { curl, errorShape } from './lib/http.mjs';
import { sleep, waitFor } from './lib/procs.mjs';
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

function streamCurl(model, text, maxTime = 20) {
    return curl(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        stream: true,
        maxTime,
        headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, stream: true, messages: user(text) }),
    });
}

const dataLines = (r) => r.lines.filter(([, l]) => l.startsWith('data: '));

/* Starts a streaming request with node:http so the test controls the socket. */
function openStream(model, text) {
    const got = { status: null, text: '', firstByteAt: null };
    const req = http.request({
        host: '127.0.0.1', port: h.port, method: 'POST', path: '/v1/chat/completions', agent: false,
        headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json' },
    });
    req.on('response', (res) => {
        got.status = res.statusCode;
        res.on('data', (c) => {
            if (got.firstByteAt === null) got.firstByteAt = Date.now();
            got.text += c.toString('utf8');
        });
        res.on('error', () => {});
    });
    req.on('error', () => {});
    req.end(JSON.stringify({ model, stream: true, messages: user(text) }));
    return { req, got };
}

/* The fake's log entry for the one request to `model` since the last reset. */
async function upstreamEntry(model) {
    const log = await h.fakeLog();
    return log.filter((e) => e.model === model).at(-1);
}

describe('streaming', () => {
    it('events are forwarded as they come, not buffered (slow-stream)', async () => {
        const r = await streamCurl('slow-stream', 'one two three');
        assert.equal(r.status, 200, r.text);
        const data = dataLines(r);
        assert.ok(data.length >= 10, `only ${data.length} data lines`);
        const first = data[0][0];
        const last = data.at(-1)[0];
        assert.ok(first < 1500, `first event after ${first} ms`);
        assert.ok(last - first >= 2000, `events spread over ${last - first} ms only: buffered?`);
        assert.equal(data.at(-1)[1], 'data: [DONE]');
        const text = data.slice(0, -1)
            .map(([, l]) => JSON.parse(l.slice(6)))
            .map((c) => c.choices?.[0]?.delta?.content ?? '')
            .join('');
        assert.equal(text, 'Echo: one two three');
    });

    it('slow-first-byte through the SDK yields the full text (pings are ignored)', async () => {
        const t0 = Date.now();
        const stream = await client.chat.completions.create({
            model: 'slow-first-byte', stream: true, messages: user('worth the wait'),
        });
        let text = '';
        for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
        assert.equal(text, 'Echo: worth the wait');
        assert.ok(Date.now() - t0 >= 1400, 'the upstream delay was real');
    });

    it('slow-first-byte raw: ": ping" heartbeats while the upstream is silent', async () => {
        const r = await streamCurl('slow-first-byte', 'ping me');
        assert.equal(r.status, 200, r.text);
        const firstData = r.lines.findIndex(([, l]) => l.startsWith('data: '));
        const pings = r.lines.filter(([, l], i) => l.startsWith(': ping') && (firstData < 0 || i < firstData));
        assert.ok(pings.length >= 2, `expected ": ping" lines before the first event (heartbeat 300 ms, upstream silent 1.5 s); got:\n${r.text.slice(0, 500)}`);
        assert.ok(pings[0][0] < 1200, `first ping after ${pings[0][0]} ms`);
        assert.equal(dataLines(r).at(-1)[1], 'data: [DONE]');
    });

    it('drop-mid-stream: in-band error event, then [DONE], never a hang', async () => {
        const r = await streamCurl('drop-mid-stream', 'a b c d e', 15);
        assert.ok(r.elapsedMs < 10000, `took ${r.elapsedMs} ms`);
        assert.equal(r.exitCode, 0, `curl exit ${r.exitCode} (28 = timed out): ${r.stderr}`);
        assert.equal(r.status, 200, r.text);
        const data = dataLines(r).map(([, l]) => l);
        assert.equal(data.at(-1), 'data: [DONE]', r.text);
        const errLine = data.at(-2) ?? '';
        assert.ok(errLine.startsWith('data: {"error"'), `the event before [DONE] should be an error: ${errLine}`);
        errorShape(JSON.parse(errLine.slice(6)));
    });

    it('drop-mid-stream through the SDK raises an APIError', async () => {
        const stream = await client.chat.completions.create({
            model: 'drop-mid-stream', stream: true, messages: user('a b c'),
        });
        await assert.rejects(async () => {
            for await (const c of stream) void c;
        }, (e) => e instanceof OpenAI.APIError);
    });

    it('8 streams at once (more than the 4 starting threads) all complete', async () => {
        const t0 = Date.now();
        const texts = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
            const s = await client.chat.completions.create({
                model: 'slow-first-byte', stream: true, messages: user(`parallel ${i}`),
            });
            let text = '';
            for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
            return text;
        }));
        texts.forEach((t, i) => assert.equal(t, `Echo: parallel ${i}`));
        const ms = Date.now() - t0;
        assert.ok(ms < 15000, `8 parallel 1.5 s streams took ${ms} ms`);
    });
});

describe('client abort', () => {
    it('slow-stream: the upstream connection is closed within 1 s of the client leaving', async () => {
        await h.resetFake();
        const { req, got } = openStream('slow-stream', 'abort me mid stream');
        await sleep(700);
        assert.equal(got.status, 200, `stream not started after 700 ms: ${got.text.slice(0, 300)}`);
        assert.ok(got.text.includes('data: '), 'some events arrived before the abort');
        const before = await upstreamEntry('slow-stream');
        assert.ok(before, 'the upstream saw the request');
        assert.equal(before.t_close_ms, null, 'the upstream stream was still open before the abort');
        const tAbort = Date.now();
        req.destroy();
        const entry = await waitFor(async () => {
            const e = await upstreamEntry('slow-stream');
            return e && e.t_close_ms !== null ? e : null;
        }, { timeoutMs: 6000, describe: () => 'the fake to see the upstream connection close' });
        const lag = entry.t_close_ms - tAbort;
        assert.equal(entry.completed, false, 'the upstream stream was cut, not finished');
        assert.ok(lag <= 1000, `upstream closed ${lag} ms after the client abort (limit 1000 ms)`);
    });

    it('hang (silent before the first token): the upstream connection is closed within 1 s', async () => {
        await h.resetFake();
        const { req, got } = openStream('hang', 'abort me while silent');
        await waitFor(() => upstreamEntry('hang'), { timeoutMs: 5000, describe: () => 'the hang request upstream' });
        await sleep(700);
        const tAbort = Date.now();
        req.destroy();
        const entry = await waitFor(async () => {
            const e = await upstreamEntry('hang');
            return e && e.t_close_ms !== null ? e : null;
        }, { timeoutMs: 6000, describe: () => 'the fake to see the upstream connection close' });
        const lag = entry.t_close_ms - tAbort;
        assert.ok(lag <= 1000, `upstream closed ${lag} ms after the client abort (limit 1000 ms; ` +
            `hang's own timeout is 2 s). Client had received: ${JSON.stringify(got.text.slice(0, 200))}`);
    });

    it('the gateway serves normally after the aborts', async () => {
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: user('still here') });
        assert.equal(r.choices[0].message.content, 'Echo: still here');
        assert.deepEqual(h.respondersAlive(), h.responders, `a sluice process died:\n${h.errorLog().slice(-4000)}`);
    });
});

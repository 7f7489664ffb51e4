// The worker pool of one sluice process (lighttpd max-procs 1):
// - at max_threads, one more request waits queue_timeout_ms and then gets an
//   OpenAI-shaped 503 (code "503") from sluice itself, never a hang; the
//   next one waits in the listen backlog meanwhile and gets the same; once
//   the long requests end, requests are served again;
// - from threads: 1 the pool grows with the requests in flight, so 6 slow
//   streams run side by side.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness } from './lib/harness.mjs';
import { errorShape } from './lib/http.mjs';
import { sleep } from './lib/procs.mjs';
import { user } from './lib/chat.mjs';

/* Consumes a streamed chat; resolves {text, ms} (ms since the call). */
async function streamText(client, model, text, onFirst) {
    const t0 = Date.now();
    const s = await client.chat.completions.create({ model, stream: true, messages: user(text) });
    let out = '';
    let first = true;
    for await (const c of s) {
        if (first) {
            first = false;
            if (onFirst) onFirst();
        }
        out += c.choices[0]?.delta?.content ?? '';
    }
    return { text: out, ms: Date.now() - t0 };
}

/* A non-streamed chat with fetch: {status, ms, json, rid, text}. */
async function chat(h, text) {
    const t0 = Date.now();
    const res = await fetch(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: user(text) }),
        signal: AbortSignal.timeout(20000),
    });
    const body = await res.text();
    let json;
    try {
        json = JSON.parse(body);
    } catch {
        json = undefined;
    }
    return { status: res.status, ms: Date.now() - t0, json, text: body, rid: res.headers.get('x-request-id') };
}

describe('max_threads 2, queue_timeout_ms 500: the next requests get 503', () => {
    let h;
    const busyIds = [];
    before(async () => {
        h = await startHarness({ maxProcs: 1, sluiceSettings: { threads: 1, max_threads: 2, queue_timeout_ms: 500 } });
    });
    after(async () => {
        if (h) await h.stop();
    });

    it('2 slow streams hold both workers; 2 more chats → OpenAI-shaped 503, the first within 2.5 s', async () => {
        const client = h.client();
        let started = 0;
        const streams = [0, 1].map((i) => streamText(client, 'slow-stream', `hold worker ${i}`, () => { started++; }));
        streams.forEach((p) => p.catch(() => {}));
        const t0 = Date.now();
        while (started < 2 && Date.now() - t0 < 5000) await sleep(20);
        assert.equal(started, 2, 'both streams had started');
        const tExtra = Date.now();
        const extra = await Promise.all([chat(h, 'extra one'), chat(h, 'extra two')]);
        const intoStreams = extra.map((r) => r.ms + (tExtra - t0));
        const first = Math.min(...extra.map((r) => r.ms));
        for (const [i, r] of extra.entries()) {
            assert.equal(r.status, 503, `extra request ${i + 1}: ${r.status} after ${r.ms} ms: ${r.text.slice(0, 300)}\n` +
                `${h.errorLog().slice(-2000)}`);
            const e = errorShape(r.json);
            assert.equal(e.code, '503', JSON.stringify(r.json));
            assert.ok(r.rid, 'the 503 comes from sluice (x-request-id), not from lighttpd');
            busyIds.push(r.rid);
        }
        assert.ok(first <= 2500, `the first 503 came after ${first} ms`);
        assert.ok(first >= 400, `the first 503 came after ${first} ms, before queue_timeout_ms (500)`);
        process.stderr.write(`# 503s after ${extra.map((r) => r.ms).join(' and ')} ms (${intoStreams} ms into the streams)\n`);

        const done = await Promise.all(streams);
        done.forEach((d, i) => assert.equal(d.text, `Echo: hold worker ${i}`, 'the held streams complete'));
    });

    it('after the streams end, chat is served again', async () => {
        const r = await chat(h, 'free again');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.choices[0].message.content, 'Echo: free again');
        assert.deepEqual(h.respondersAlive(), h.responders);
    });

    // "Each request produces one line with msg: request": the rejected ones too.
    it('each 503 has its one "request" log line, with status 503', async () => {
        assert.equal(busyIds.length, 2, 'the 503s were seen');
        const lines = h.sluiceLog().split('\n').filter(Boolean).map((l) => JSON.parse(l));
        for (const rid of busyIds) {
            const all = lines.filter((o) => o.request_id === rid);
            const req = all.filter((o) => o.msg === 'request');
            assert.equal(req.length, 1, `request lines for the 503 ${rid}: ${req.length}; its lines: ${JSON.stringify(all)}`);
            assert.equal(req[0].status, 503, JSON.stringify(req[0]));
            assert.equal(req[0].path, '/v1/chat/completions', JSON.stringify(req[0]));
        }
    });
});

describe('threads 1, max_threads 8: the pool grows', () => {
    let h;
    before(async () => {
        h = await startHarness({ maxProcs: 1, sluiceSettings: { threads: 1, max_threads: 8, queue_timeout_ms: 1000 } });
    });
    after(async () => {
        if (h) await h.stop();
    });

    it('6 concurrent slow streams all complete, side by side (< 9 s in all)', async () => {
        const client = h.client();
        const t0 = Date.now();
        const done = await Promise.all(Array.from({ length: 6 }, (_, i) => streamText(client, 'slow-stream', `grow ${i}`)));
        const total = Date.now() - t0;
        done.forEach((d, i) => assert.equal(d.text, `Echo: grow ${i}`));
        process.stderr.write(`# 6 slow streams: ${total} ms in all (each ${done.map((d) => d.ms).join(', ')} ms)\n`);
        assert.ok(total < 9000, `6 × ~3 s streams took ${total} ms: not in parallel`);
        // And the grown pool serves on.
        const r = await chat(h, 'after growth');
        assert.equal(r.status, 200, r.text);
    });
});

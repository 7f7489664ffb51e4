// The fake Ollama upstream (tests/fakes/providers/ollama.mjs) proven against
// the official `ollama` npm client, no gateway involved.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ollama } from 'ollama';
import { startFakeProcess, sleep } from './lib/procs.mjs';
import { fakeEmbedding } from '../fakes/openai.mjs';

const KEY = 'fake-ollama-key';
let dir;
let fake;
let base;
let client;

before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-fake-ollama-'));
    fake = await startFakeProcess(dir, { apiKey: KEY, name: 'fake-ollama' });
    base = `http://127.0.0.1:${fake.port}`;
    // Ollama needs no key; a local server ignores one, the fake checks it if sent.
    client = new Ollama({ host: base });
});

after(async () => {
    if (fake) await fake.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const user = (content, extra = {}) => [{ role: 'user', content, ...extra }];
const TOOLS = [{
    type: 'function',
    function: { name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { text: { type: 'string' } } } },
}];

async function collect(stream) {
    const parts = [];
    for await (const p of stream) parts.push(p);
    return parts;
}

const textOf = (parts) => parts.map((p) => p.message.content).join('');

/* The client's ResponseError (not exported by the package) with status and message. */
function responseError(status, messageRe) {
    return (e) => {
        assert.equal(e.name, 'ResponseError', String(e));
        assert.equal(e.status_code, status);
        if (messageRe) assert.match(e.error, messageRe);
        return true;
    };
}

describe('fake Ollama via the ollama client', () => {
    it('chat: non-stream echo with counts and durations', async () => {
        const r = await client.chat({
            model: 'llama3.2',
            messages: [{ role: 'system', content: 'be terse' }, ...user('hello there world')],
        });
        assert.equal(r.model, 'llama3.2');
        assert.ok(!Number.isNaN(Date.parse(r.created_at)));
        assert.deepEqual(r.message, { role: 'assistant', content: 'Echo: hello there world' });
        assert.equal(r.done, true);
        assert.equal(r.done_reason, 'stop');
        assert.equal(r.prompt_eval_count, 11);
        assert.equal(r.eval_count, 4);
        for (const k of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration']) {
            assert.ok(Number.isInteger(r[k]) && r[k] > 0, k);
        }
    });

    it('chat: stream is one NDJSON line per word and a done line', async () => {
        const parts = await collect(await client.chat({ model: 'llama3.2', stream: true, messages: user('the quick  brown fox') }));
        assert.equal(parts.length, 6);
        assert.equal(textOf(parts), 'Echo: the quick  brown fox');
        assert.ok(parts.slice(0, -1).every((p) => p.done === false && p.message.role === 'assistant'));
        const last = parts.at(-1);
        assert.equal(last.done, true);
        assert.equal(last.done_reason, 'stop');
        assert.equal(last.prompt_eval_count, 7);
        assert.equal(last.eval_count, 5);
    });

    it('chat: without "stream" the raw answer is NDJSON (Ollama streams by default)', async () => {
        const res = await fetch(`${base}/api/chat`, {
            method: 'POST', body: JSON.stringify({ model: 'llama3.2', messages: user('hi') }),
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
        const lines = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
        assert.deepEqual(lines.map((l) => l.done), [false, false, true]);
        const [entry] = (await fake.log()).filter((e) => e.path === '/api/chat').slice(-1);
        assert.equal(entry.stream, true);
    });

    it('chat: tool call arrives whole, non-stream and stream', async () => {
        const r = await client.chat({ model: 'llama3.2', tools: TOOLS, messages: user('please call tool now') });
        assert.equal(r.done_reason, 'stop');
        assert.equal(r.message.content, '');
        const [tc] = r.message.tool_calls;
        assert.equal(tc.function.name, 'get_weather');
        assert.deepEqual(tc.function.arguments, { text: 'please call tool now' });
        assert.equal(tc.function.index, 0);
        assert.ok(tc.id);
        assert.equal(r.eval_count, 5);

        const parts = await collect(await client.chat({ model: 'llama3.2', stream: true, tools: TOOLS, messages: user('call tool') }));
        const calls = parts.flatMap((p) => p.message.tool_calls ?? []);
        assert.equal(calls.length, 1);
        assert.deepEqual(calls[0].function.arguments, { text: 'call tool' });
        assert.equal(parts.at(-1).done, true);
    });

    it('chat: tool result round trip', async () => {
        const r = await client.chat({
            model: 'llama3.2',
            tools: TOOLS,
            messages: [
                ...user('call tool please'),
                { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { text: 'x' } } }] },
                { role: 'tool', tool_name: 'get_weather', content: 'sunny and warm' },
            ],
        });
        assert.equal(r.message.content, 'Echo: tool result: sunny and warm');
        assert.equal(r.message.tool_calls, undefined);
    });

    it('chat: images are echoed with their sniffed mime type and size', async () => {
        const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2]);
        const r = await client.chat({
            model: 'llava',
            messages: user('what is this', { images: [png, Buffer.from('plain bytes').toString('base64')] }),
        });
        assert.equal(r.message.content, 'Echo: what is this [image image/png 10] [image image/unknown 11]');
        await assert.rejects(client.chat({ model: 'llava', messages: user('x', { images: ['%%%not-base64'] }) }),
            responseError(400, /base64/));
    });

    it('chat: JSON mode, num_predict and think', async () => {
        const j = await client.chat({ model: 'llama3.2', format: 'json', messages: user('make json') });
        assert.deepEqual(JSON.parse(j.message.content), { echo: 'make json' });
        const s = await client.chat({ model: 'llama3.2', format: { type: 'object' }, messages: user('schema') });
        assert.deepEqual(JSON.parse(s.message.content), { echo: 'schema' });

        const m = await client.chat({ model: 'llama3.2', options: { num_predict: 2 }, messages: user('a b c d') });
        assert.equal(m.message.content, 'Echo: a ');
        assert.equal(m.done_reason, 'length');
        assert.equal(m.eval_count, 2);
        const parts = await collect(await client.chat({ model: 'llama3.2', stream: true, options: { num_predict: 3 }, messages: user('a b c d') }));
        assert.equal(textOf(parts), 'Echo: a b ');
        assert.equal(parts.at(-1).done_reason, 'length');

        const t = await client.chat({ model: 'qwen3', think: true, messages: user('hmm') });
        assert.equal(t.message.content, 'Echo: hmm');
        assert.match(t.message.thinking, /hmm$/);
        const tp = await collect(await client.chat({ model: 'qwen3', think: true, stream: true, messages: user('hmm') }));
        assert.equal(tp.map((p) => p.message.thinking ?? '').join(''), t.message.thinking);
        assert.equal(textOf(tp), 'Echo: hmm');
    });

    it('embed, legacy embeddings, tags and version', async () => {
        const e = await client.embed({ model: 'nomic-embed-text', input: ['hello', 'two words'] });
        assert.equal(e.model, 'nomic-embed-text');
        assert.deepEqual(e.embeddings, [fakeEmbedding('hello'), fakeEmbedding('two words')]);
        assert.equal(e.prompt_eval_count, 3);
        assert.ok(e.total_duration > 0);
        const one = await client.embed({ model: 'nomic-embed-text', input: 'x', dimensions: 16 });
        assert.equal(one.embeddings[0].length, 16);
        const legacy = await client.embeddings({ model: 'nomic-embed-text', prompt: 'hello' });
        assert.deepEqual(legacy.embedding, fakeEmbedding('hello'));

        const tags = await client.list();
        assert.ok(tags.models.some((m) => m.name === 'llama3.2:latest'));
        assert.equal(tags.models[0].details.format, 'gguf');
        assert.match((await client.version()).version, /^\d+\.\d+\.\d+$/);
    });

    it('error faults: status and Ollama\'s {"error"} message', async () => {
        const chat = (model) => client.chat({ model, messages: user('x') });
        await assert.rejects(chat('missing-model'), responseError(404, /^model "missing-model" not found, try pulling it first$/));
        await assert.rejects(chat('fault-500'), responseError(500));
        await assert.rejects(chat('fault-429'), responseError(429));
        await assert.rejects(chat('fault-400'), responseError(400));
        await assert.rejects(chat('overloaded'), responseError(503, /^server busy/));
        await assert.rejects(chat('context-too-long'), responseError(400, /^the input length exceeds the context length$/));
        await assert.rejects(client.embed({ model: 'fault-500', input: 'x' }), responseError(500));
        await assert.rejects(client.chat({ model: '', messages: user('x') }), responseError(400, /^model is required$/));
        const res = await fetch(`${base}/api/chat`, { method: 'POST', body: JSON.stringify({ model: 'fault-429', messages: user('x') }) });
        assert.equal(res.headers.get('retry-after'), '7');
        assert.equal(typeof (await res.json()).error, 'string');

        // No content filter in Ollama: a refusal as a normal answer.
        const cf = await chat('content-filter');
        assert.equal(cf.done_reason, 'stop');
        assert.match(cf.message.content, /can't help/);
    });

    it('stream faults: drop-mid-stream and stream-error raise during iteration', async () => {
        const got = [];
        const dropped = await client.chat({ model: 'drop-mid-stream', stream: true, messages: user('a b c d') });
        await assert.rejects(async () => {
            for await (const p of dropped) got.push(p);
        });
        assert.equal(got.length, 2);

        const seen = [];
        const failing = await client.chat({ model: 'stream-error', stream: true, messages: user('a b c d') });
        await assert.rejects(async () => {
            for await (const p of failing) seen.push(p);
        }, /fake upstream stream-error/);
        assert.equal(seen.length, 2);
        await assert.rejects(client.chat({ model: 'stream-error', messages: user('x') }), responseError(500));
    });

    it('stream fault: bad-event (the client only warns and skips the bad line)', async () => {
        const warnings = [];
        const warn = console.warn;
        console.warn = (...args) => warnings.push(args.join(' '));
        let parts;
        try {
            parts = await collect(await client.chat({ model: 'bad-event', stream: true, messages: user('a b c') }));
        } finally {
            console.warn = warn;
        }
        assert.equal(warnings.length, 1);
        assert.match(warnings[0], /invalid json/);
        assert.equal(textOf(parts), 'Echo: b c');
    });

    it('stream fault: slow-stream spreads the lines over about 3 s', async () => {
        const t0 = Date.now();
        const times = [];
        let text = '';
        for await (const p of await client.chat({ model: 'slow-stream', stream: true, messages: user('tick tock') })) {
            times.push(Date.now() - t0);
            text += p.message.content;
        }
        assert.equal(text, 'Echo: tick tock');
        assert.equal(times.length, 10);
        assert.ok(times.at(-1) - times[0] >= 2000, `lines spread over ${times.at(-1) - times[0]} ms`);
    });

    it('hang: an aborted request is logged as closed', async () => {
        await fake.reset();
        // The client offers no timeout; abort the fetch underneath it instead.
        const ctl = new AbortController();
        const hung = new Ollama({ host: base, fetch: (u, o) => fetch(u, { ...o, signal: ctl.signal }) });
        const t = setTimeout(() => ctl.abort(), 300);
        await assert.rejects(hung.chat({ model: 'hang', messages: user('x') }), (e) => e.name === 'AbortError');
        clearTimeout(t);
        let entry;
        for (let i = 0; i < 40 && !(entry && entry.t_close_ms); i++) {
            await sleep(25);
            entry = (await fake.log()).find((x) => x.model === 'hang');
        }
        assert.ok(entry && entry.t_close_ms, 'close recorded');
        assert.equal(entry.completed, false);
        assert.equal(entry.status, null);
    });

    it('auth: no header is fine, a wrong bearer is 401 {"error":"unauthorized"}', async () => {
        const bad = new Ollama({ host: base, headers: { Authorization: 'Bearer wrong' } });
        await assert.rejects(bad.chat({ model: 'llama3.2', messages: user('x') }), responseError(401, /^unauthorized$/));
        const good = new Ollama({ host: base, headers: { Authorization: `Bearer ${KEY}` } });
        assert.equal((await good.chat({ model: 'llama3.2', messages: user('x') })).message.content, 'Echo: x');
    });

    it('control log: records the body, model, stream flag and auth', async () => {
        await fake.reset();
        await client.chat({ model: 'llama3.2', options: { temperature: 0.5 }, messages: user('logged') });
        const [e] = await fake.log();
        assert.equal(e.path, '/api/chat');
        assert.equal(e.model, 'llama3.2');
        assert.equal(e.stream, false);
        assert.equal(e.auth_ok, true);
        assert.equal(e.had_auth, false);
        assert.deepEqual(e.body.options, { temperature: 0.5 });
        assert.deepEqual(e.body.messages, user('logged'));
        assert.equal(e.completed, true);
    });
});

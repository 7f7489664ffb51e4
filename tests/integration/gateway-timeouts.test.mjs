// Time-outs of an LLM call, each made to fire: connect (TCP + TLS), first
// byte, total, a stream's wait for its first byte (stream_timeout) and its
// idle time-out (stream_idle_timeout); the request's own timeout (body field
// "timeout", header x-litellm-timeout) lowering and raising the deployment's
// up to sluice_settings.max_request_timeout; router_settings.timeout as the
// default; x-litellm-timeout on every answer.
//
// Before anything reached the client a time-out is LiteLLM's 408 Timeout
// ("litellm.Timeout: ..."), OpenAI-shaped, naming the limit and the
// deployment but never the api key; once a stream has begun (events or
// heartbeats went out) it is an in-band error event followed by [DONE].
//
// Upstreams: the fake OpenAI server (slow-first-byte-MS, slow-stream-MS,
// hang, echo-body) and two servers made here: one that accepts TCP and never
// answers the TLS handshake, so the connect phase hangs deterministically on
// loopback (a refused port fails at once, and "blackhole" addresses such as
// 10.255.255.1 are not dependable on every machine), and one that sends its
// headers at once and then trickles the body, so only the total time-out can
// stop it. Margins survive a busy 2-core machine: a 1 s limit must fire
// between 0.8 and 4 s.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import OpenAI from 'openai';
import { startHarness, FAKE_UPSTREAM_KEY } from './lib/harness.mjs';
import { curl, errorShape } from './lib/http.mjs';
import { user, collect } from './lib/chat.mjs';

// The servers made here take any key; the fake wants its own.
const CANARY_KEY = 'sk-upstream-canary-key-5150';
const KEYS = [CANARY_KEY, FAKE_UPSTREAM_KEY];

/* A TCP listener that accepts and never says a word. */
async function silentServer() {
    const sockets = new Set();
    const server = net.createServer((s) => {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    return {
        port: server.address().port,
        close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
    };
}

/* An HTTP server that answers 200 with its headers at once, then one space
 * every 200 ms for 8 s, then a chat completion (JSON may lead with spaces). */
async function trickleServer() {
    const sockets = new Set();
    const server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.flushHeaders();
            let n = 0;
            const t = setInterval(() => {
                if (res.destroyed) return clearInterval(t);
                if (++n < 40) return res.write(' ');
                clearInterval(t);
                res.end(JSON.stringify({ id: 'chatcmpl-trickle', object: 'chat.completion', created: 1,
                    model: 'trickle', choices: [{ index: 0, message: { role: 'assistant', content: 'late' },
                        finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
            }, 200);
            res.on('close', () => clearInterval(t));
        });
    });
    server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    return {
        port: server.address().port,
        close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
    };
}

/* The model_list entries of this file, on the fake (ctx.fakeBase) or on the
 * servers above. */
function timeoutModels(ctx, silentPort, tricklePort) {
    const m = (name, upstream, params, base = ctx.fakeBase) => ({
        model_name: name,
        litellm_params: { model: `openai/${upstream}`, api_base: base,
            api_key: base === ctx.fakeBase ? FAKE_UPSTREAM_KEY : CANARY_KEY, ...params },
    });
    return [
        m('to-connect', 'gpt-4o-mini', { connect_timeout: 1, timeout: 10 }, `https://127.0.0.1:${silentPort}/v1`),
        m('to-first-byte', 'slow-first-byte-5000', { first_byte_timeout: 1, timeout: 10, stream_timeout: 10 }),
        m('to-total', 'trickle', { timeout: 2 }, `http://127.0.0.1:${tricklePort}/v1`),
        m('to-stream-wait', 'slow-first-byte-5000', { stream_timeout: 1, timeout: 10 }),
        m('to-stream-idle', 'slow-stream-3000', { stream_timeout: 10, stream_idle_timeout: 1, timeout: 10 }),
        m('to-hang', 'hang', { timeout: 10, stream_timeout: 10 }),
        m('to-raise', 'slow-first-byte-2000', { timeout: 1 }),
        m('to-default', 'hang', {}),
        m('to-echo', 'echo-body', { timeout: 10 }),
    ];
}

async function startStack(servers, sluiceSettings) {
    return startHarness({
        sluiceSettings: { max_request_timeout: 3, ...sluiceSettings },
        routerSettings: { timeout: 1.5, disable_cooldowns: true },
        configure: (cfg, ctx) => cfg.model_list.push(...timeoutModels(ctx, servers.silent.port, servers.trickle.port)),
    });
}

function post(h, body, headers = {}, o = {}) {
    return curl(`${h.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.masterKey}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ messages: user('hello there'), ...body }),
        maxTime: 30,
        ...o,
    });
}

/* A 408 in LiteLLM's words: OpenAI-shaped, the limit named, the deployment
 * named, the key not. */
function expectTimeout(r, limit, model, what) {
    const head = `${what}: ${r.status} ${r.text.slice(0, 400)}`;
    assert.equal(r.status, 408, head);
    assert.match(r.headers['content-type'] ?? '', /application\/json/, head);
    const e = errorShape(r.json);
    assert.equal(e.code, '408', head);
    assert.equal(e.type, 'timeout', head);
    assert.match(e.message, /^litellm\.Timeout: /, head);
    assert.ok(e.message.includes(`(${limit})`), `${head}\nshould name ${limit}`);
    assert.ok(e.message.includes(`model=${model}`), `${head}\nshould name the deployment`);
    for (const k of KEYS) assert.ok(!r.text.includes(k), `${what}: the api key leaked`);
    return e;
}

function within(ms, lo, hi, what) {
    assert.ok(ms >= lo && ms <= hi, `${what}: fired after ${ms} ms, expected ${lo}..${hi} ms`);
}

/* The in-band error of a stream that had begun, and the [DONE] after it. */
function inBandTimeout(r, limit, what) {
    const data = r.lines.filter(([, l]) => l.startsWith('data: ')).map(([t, l]) => [t, l.slice(6)]);
    const errs = data.filter(([, d]) => d.startsWith('{"error"'));
    assert.equal(r.status, 200, `${what}: the 200 went out before the time-out`);
    assert.equal(errs.length, 1, `${what}: one in-band error event: ${r.text.slice(0, 600)}`);
    const e = errorShape(JSON.parse(errs[0][1]));
    assert.equal(e.code, '408', what);
    assert.match(e.message, /^litellm\.Timeout: /, what);
    assert.ok(e.message.includes(`(${limit})`), `${what}: ${e.message} should name ${limit}`);
    assert.equal(data[data.length - 1][1], '[DONE]', `${what}: the stream ends with [DONE]`);
    for (const k of KEYS) assert.ok(!r.text.includes(k), `${what}: the api key leaked`);
    return { at: errs[0][0], data };
}

const servers = {};

before(async () => {
    servers.silent = await silentServer();
    servers.trickle = await trickleServer();
});

after(async () => {
    await servers.silent?.close();
    await servers.trickle?.close();
});

describe('time-outs with heartbeats (heartbeat_ms 300)', () => {
    let h;
    let client;

    before(async () => {
        h = await startStack(servers, {});
        client = h.client();
    });

    after(async () => {
        if (h) await h.stop();
    });

    it('connect_timeout 1 s: a TLS handshake that never ends → 408 naming connect_timeout', async () => {
        const r = await post(h, { model: 'to-connect' });
        expectTimeout(r, 'connect_timeout', 'to-connect', 'connect');
        within(r.elapsedMs, 800, 4000, 'connect_timeout 1 s');
        assert.equal(r.headers['x-litellm-timeout'], '10.0', 'the call\'s time-out (total) is reported');
    });

    it('first_byte_timeout 1 s: no reply byte → 408 naming first_byte_timeout (SDK: APIError 408)', async () => {
        const t0 = Date.now();
        await assert.rejects(client.chat.completions.create({ model: 'to-first-byte', messages: user('x') }), (e) => {
            assert.ok(e instanceof OpenAI.APIError, String(e));
            assert.equal(e.status, 408);
            assert.match(e.error.message, /^litellm\.Timeout: .*\(first_byte_timeout\)/);
            return true;
        });
        within(Date.now() - t0, 800, 4000, 'first_byte_timeout 1 s (SDK)');
        const r = await post(h, { model: 'to-first-byte' });
        expectTimeout(r, 'first_byte_timeout', 'to-first-byte', 'first byte');
        within(r.elapsedMs, 800, 4000, 'first_byte_timeout 1 s');
    });

    it('timeout 2 s (total): headers at once, the body trickles → 408 naming timeout', async () => {
        const r = await post(h, { model: 'to-total' });
        const e = expectTimeout(r, 'timeout', 'to-total', 'total');
        assert.match(e.message, /not complete within 2\.0 s/);
        within(r.elapsedMs, 1600, 5000, 'timeout 2 s');
        assert.equal(r.headers['x-litellm-timeout'], '2.0');
    });

    it('stream_timeout 1 s after heartbeats went out: in-band error event, then [DONE]', async () => {
        const r = await post(h, { model: 'to-stream-wait', stream: true }, {}, { stream: true });
        const { at } = inBandTimeout(r, 'stream_timeout', 'stream wait');
        within(at, 800, 4000, 'stream_timeout 1 s');
        assert.ok(r.lines.some(([, l]) => l === ': ping'), 'heartbeats came first');
        assert.equal(r.headers['x-litellm-timeout'], '1.0');
    });

    it('stream_idle_timeout 1 s: events, then silence → in-band error after them, [DONE]', async () => {
        const r = await post(h, { model: 'to-stream-idle', stream: true }, {}, { stream: true });
        const { at, data } = inBandTimeout(r, 'stream_idle_timeout', 'stream idle');
        const before = data.filter(([t, d]) => t < at && d.startsWith('{"id"'));
        assert.ok(before.length >= 1, `events came before the silence: ${r.text.slice(0, 400)}`);
        within(at - before[before.length - 1][0], 700, 4000, 'stream_idle_timeout 1 s after the last event');
        assert.ok(at < 2900, `the idle time-out (1 s) fired before the next event (3 s): at ${at} ms`);
    });

    it('stream_idle_timeout through the SDK: the stream raises an APIError naming it', async () => {
        const stream = await client.chat.completions.create({ model: 'to-stream-idle', stream: true,
            messages: user('one two') });
        await assert.rejects(collect(stream), (e) => {
            assert.ok(e instanceof OpenAI.APIError, String(e));
            assert.match(String(e.message), /stream_idle_timeout/);
            return true;
        });
    });

    it('body "timeout": 1 lowers the deployment\'s 10 s (SDK) and is reported', async () => {
        const t0 = Date.now();
        await assert.rejects(client.chat.completions.create({ model: 'to-hang', messages: user('x'), timeout: 1 }),
            (e) => e instanceof OpenAI.APIError && e.status === 408 && e.headers.get('x-litellm-timeout') === '1.0');
        within(Date.now() - t0, 800, 4000, 'body timeout 1 s');
        const r = await post(h, { model: 'to-hang', timeout: 1 });
        const e = expectTimeout(r, "timeout (this request's)", 'to-hang', 'body timeout');
        assert.match(e.message, /within 1\.0 s/);
        within(r.elapsedMs, 800, 4000, 'body timeout 1 s');
    });

    it('x-litellm-timeout: 0.5 lowers it, and wins over the body field', async () => {
        const r = await post(h, { model: 'to-hang', timeout: 2.5 }, { 'x-litellm-timeout': '0.5' });
        expectTimeout(r, "timeout (this request's)", 'to-hang', 'header timeout');
        assert.equal(r.headers['x-litellm-timeout'], '0.5');
        within(r.elapsedMs, 350, 3500, 'x-litellm-timeout 0.5 s');
    });

    it('a request\'s timeout applies to a stream\'s wait too', async () => {
        const r = await post(h, { model: 'to-hang', stream: true }, { 'x-litellm-timeout': '1' }, { stream: true });
        const { at } = inBandTimeout(r, "timeout (this request's)", 'stream, header timeout');
        within(at, 800, 4000, 'x-litellm-timeout 1 s on a stream');
    });

    it('a request may raise the deployment\'s timeout: timeout 1 s, the reply takes 2 s, body asks 3 → 200', async () => {
        const low = await post(h, { model: 'to-raise' });
        expectTimeout(low, 'timeout', 'to-raise', 'to-raise at its own 1 s');
        const r = await post(h, { model: 'to-raise', timeout: 3 });
        assert.equal(r.status, 200, r.text.slice(0, 300));
        assert.equal(r.json.choices[0].message.content, 'Echo: hello there');
        assert.equal(r.headers['x-litellm-timeout'], '3.0');
    });

    it('...up to sluice_settings.max_request_timeout (3 s): asking 100 s waits 3 s', async () => {
        const r = await post(h, { model: 'to-hang' }, { 'x-litellm-timeout': '100' });
        expectTimeout(r, "timeout (this request's)", 'to-hang', 'ceiling');
        assert.equal(r.headers['x-litellm-timeout'], '3.0');
        within(r.elapsedMs, 2500, 6500, 'capped at 3 s');
    });

    it('router_settings.timeout (1.5 s) is the default of a deployment without one', async () => {
        const r = await post(h, { model: 'to-default' });
        expectTimeout(r, 'timeout', 'to-default', 'router_settings.timeout');
        assert.equal(r.headers['x-litellm-timeout'], '1.5');
        within(r.elapsedMs, 1200, 4500, 'router_settings.timeout 1.5 s');
    });

    it('Anthropic\'s /v1/messages: a time-out is a 408 timeout_error in Anthropic\'s shape', async () => {
        const r = await curl(`${h.rootURL}/v1/messages`, {
            method: 'POST',
            headers: { 'x-api-key': h.masterKey, 'anthropic-version': '2023-06-01',
                'content-type': 'application/json', 'x-litellm-timeout': '1' },
            body: JSON.stringify({ model: 'to-hang', max_tokens: 10, messages: user('hi') }),
            maxTime: 30,
        });
        assert.equal(r.status, 408, r.text.slice(0, 300));
        assert.equal(r.json?.type, 'error', r.text.slice(0, 300));
        assert.equal(r.json.error.type, 'timeout_error');
        assert.match(r.json.error.message, /^litellm\.Timeout: .*\(timeout \(this request's\)\)/);
        within(r.elapsedMs, 800, 4000, 'x-litellm-timeout 1 s on /v1/messages');
    });

    it('x-litellm-timeout is sent on a success too (the deployment\'s, else the request\'s)', async () => {
        const a = await post(h, { model: 'gpt-4o-mini' });
        assert.equal(a.status, 200, a.text.slice(0, 300));
        assert.equal(a.headers['x-litellm-timeout'], '5.0');
        const b = await post(h, { model: 'gpt-4o-mini', timeout: 2.25 });
        assert.equal(b.headers['x-litellm-timeout'], '2.25');
    });

    it('the body\'s "timeout" is not forwarded upstream', async () => {
        const r = await post(h, { model: 'to-echo', timeout: 7, temperature: 0.5 });
        assert.equal(r.status, 200, r.text.slice(0, 300));
        const sent = JSON.parse(r.json.choices[0].message.content);
        assert.equal(sent.temperature, 0.5, 'other fields are forwarded');
        assert.ok(!('timeout' in sent), `forwarded: ${JSON.stringify(sent)}`);
    });

    const badBodies = [['a string', 'abc'], ['zero', 0], ['negative', -1], ['a boolean', true], ['an object', {}]];
    for (const [what, v] of badBodies) {
        it(`body "timeout" ${what} → 400 naming timeout`, async () => {
            const r = await post(h, { model: 'gpt-4o-mini', timeout: v });
            assert.equal(r.status, 400, r.text.slice(0, 300));
            const e = errorShape(r.json);
            assert.equal(e.param, 'timeout');
            assert.match(e.message, /^timeout must be a number of seconds > 0/);
        });
    }

    for (const v of ['abc', '0', '-2', 'nan', 'inf', '1e999', '5s']) {
        it(`x-litellm-timeout: ${v} → 400 naming the header`, async () => {
            const r = await post(h, { model: 'gpt-4o-mini' }, { 'x-litellm-timeout': v });
            assert.equal(r.status, 400, r.text.slice(0, 300));
            const e = errorShape(r.json);
            assert.equal(e.param, 'x-litellm-timeout');
            assert.match(e.message, /x-litellm-timeout/);
        });
    }

    it('the gateway still answers, and the time-outs were logged without the key', async () => {
        const r = await post(h, { model: 'gpt-4o-mini' });
        assert.equal(r.status, 200, r.text.slice(0, 300));
        const log = h.sluiceLog();
        assert.match(log, /upstream time-out: litellm\.Timeout/);
        for (const k of KEYS) assert.ok(!log.includes(k), 'an api key is in the log');
    });
});

describe('time-outs before any heartbeat (heartbeat_ms 10000)', () => {
    let h;

    before(async () => {
        h = await startStack(servers, { heartbeat_ms: 10000 });
    });

    after(async () => {
        if (h) await h.stop();
    });

    it('stream_timeout 1 s with nothing sent yet → a plain 408 JSON, not a stream', async () => {
        const r = await post(h, { model: 'to-stream-wait', stream: true }, {}, { stream: true });
        expectTimeout(r, 'stream_timeout', 'to-stream-wait', 'stream wait, no heartbeat');
        within(r.elapsedMs, 800, 4000, 'stream_timeout 1 s');
        assert.equal(r.headers['x-litellm-timeout'], '1.0');
    });

    it('stream_idle_timeout still ends a begun stream in-band', async () => {
        const r = await post(h, { model: 'to-stream-idle', stream: true }, {}, { stream: true });
        const { at } = inBandTimeout(r, 'stream_idle_timeout', 'stream idle, no heartbeat');
        within(at, 800, 4000, 'stream_idle_timeout 1 s');
    });
});

// The checks every web server in front of sluice must pass, with the
// shipped httpd-conf/ file for that server (issue 8). A test file per
// server supplies how to start that real server and calls:
//
//   webServerSuite('nginx + standalone sluice', {
//       async start({ dir, config, sluiceBin }) {
//           ...start the server (and sluice if the server does not spawn it)...
//           return { rootURL, reload, stop, log };
//       },
//   });
//
// start() gets a private temp dir, the path of a config.yaml routed to a
// fake upstream (the harness's models, and slow-stream-400) and the
// sluice binary. It returns rootURL (http://127.0.0.1:PORT, where sluice
// answers /v1/...), reload() (a graceful reload of the web server, resolved
// once the server has been told), stop() and log() (the server's and sluice's
// logs, printed when a check fails).
//
// The checks: a chat call through the official SDK; a stream whose events
// arrive one by one, spread over the stream; the Authorization header
// reaching sluice (the master key is let in, a wrong or missing one is
// refused with an OpenAI-shaped 401); a client abort closing the upstream
// connection; a 10 MB request body reaching the upstream whole; and a
// graceful reload of the web server while a stream runs, which the stream
// survives intact, with new requests served after it.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { buildConfig, FAKE_UPSTREAM_KEY, MASTER_KEY, sluiceBin } from './harness.mjs';
import { startFakeProcess, freePort, sleep, waitFor } from './procs.mjs';
import { toYAML } from './yaml.mjs';
import { user } from './chat.mjs';
import { errorShape } from './http.mjs';

const STREAM_EVENTS = 10;      // the fake's slow-stream sends this many pieces
const STREAM_GAP_MS = 300;     // ... this far apart

/* A streamed chat request over node:http: every SSE line is kept with the
 * time it arrived (ms after the request was sent). */
export function timedStream(rootURL, { model = 'slow-stream', text = 'one two three four five', key = MASTER_KEY } = {}) {
    const u = new URL(rootURL);
    const got = { status: null, lines: [], body: '', error: null, t0: Date.now(), endedAt: null };
    let partial = '';
    got.done = new Promise((resolve) => {
        const req = http.request({
            host: u.hostname, port: u.port, method: 'POST', path: '/v1/chat/completions', agent: false,
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        });
        got.req = req;
        req.setTimeout(30000, () => req.destroy(new Error('client time-out (30 s)')));
        req.on('response', (res) => {
            got.status = res.statusCode;
            got.headers = res.headers;
            res.on('data', (c) => {
                const now = Date.now() - got.t0;
                const s = c.toString('utf8');
                got.body += s;
                partial += s;
                const parts = partial.split('\n');
                partial = parts.pop();
                for (const l of parts) got.lines.push([now, l]);
            });
            res.on('end', () => { got.endedAt = Date.now(); resolve(got); });
            res.on('error', (e) => { got.error = e; got.endedAt = Date.now(); resolve(got); });
        });
        req.on('error', (e) => { got.error = e; got.endedAt = Date.now(); resolve(got); });
        req.end(JSON.stringify({ model, stream: true, messages: user(text) }));
    });
    return got;
}

/* The data lines of a timed stream and the text their deltas carry. */
export function sseOf(got) {
    const data = got.lines.filter(([, l]) => l.startsWith('data: ')).map(([t, l]) => [t, l.slice(6)]);
    const text = data.filter(([, d]) => d !== '[DONE]')
        .map(([, d]) => JSON.parse(d))
        .map((c) => c.choices?.[0]?.delta?.content ?? '')
        .join('');
    return { data, text };
}

/* A temp dir with a fake upstream and the harness's config.yaml in it.
 * The dir and its files are open to every user: servers that drop root
 * (Apache, nginx workers) and the responders they spawn must read the config
 * and write the spend spool. */
export async function workdir(configure) {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-ws-'));
    await fsp.chmod(dir, 0o755);
    const w = { dir, fake: null, config: path.join(dir, 'config.yaml') };
    try {
        w.fake = await startFakeProcess(dir, { apiKey: FAKE_UPSTREAM_KEY });
        const ctx = { fakeBase: w.fake.baseURL, fakePort: w.fake.port, closedPort: await freePort(), tmpdir: dir };
        const spool = path.join(dir, 'spool');
        await fsp.mkdir(spool, { mode: 0o777 });
        await fsp.chmod(spool, 0o777);
        await fsp.writeFile(w.config, toYAML(buildConfig(ctx, {
            sluiceSettings: { threads: 4, heartbeat_ms: 300, spend_spool_dir: spool },
            configure: (cfg, c) => {
                const slow = cfg.model_list.find((m) => m.model_name === 'slow-stream');
                cfg.model_list.push({
                    model_name: 'slow-stream-400',
                    litellm_params: { ...slow.litellm_params, model: 'openai/slow-stream-400' },
                });
                if (configure) configure(cfg, c);
            },
        })), { mode: 0o644 });
    } catch (e) {
        if (w.fake) await w.fake.stop();
        await fsp.rm(dir, { recursive: true, force: true });
        throw e;
    }
    w.cleanup = async () => {
        if (w.fake) await w.fake.stop();
        if (process.env.SLUICE_KEEP_TMP === '1') process.stderr.write(`kept ${dir}\n`);
        else await fsp.rm(dir, { recursive: true, force: true });
    };
    return w;
}

/* Runs the checks against the server start() brings up. Options:
 *   abortLimitMs  how soon after a client abort the upstream connection must
 *                 be closed (default 1500: heartbeats every 300 ms make even
 *                 servers that notice a vanished client only when they next
 *                 write to it find out within a few writes)
 *   configure     edits the config object before it is written */
export function webServerSuite(name, { start, abortLimitMs = 1500, configure } = {}) {
    describe(name, () => {
        let w = null;
        let stack = null;
        let client = null;
        const ctx = () => (stack ? `\n${stack.log()}` : '');

        before(async () => {
            w = await workdir(configure);
            try {
                stack = await start({ dir: w.dir, config: w.config, sluiceBin: sluiceBin(), fake: w.fake });
            } catch (e) {
                await w.cleanup();
                w = null;
                throw e;
            }
            client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${stack.rootURL}/v1`, maxRetries: 0, timeout: 30000 });
        });

        after(async () => {
            try {
                if (stack) await stack.stop();
            } finally {
                if (w) await w.cleanup();
            }
        });

        it('a chat call through the official SDK', async () => {
            const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: user('hello server') });
            assert.equal(r.choices[0].message.content, 'Echo: hello server', ctx());
            assert.equal(r.object, 'chat.completion');
            const s = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: user('via sdk') });
            let text = '';
            for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
            assert.equal(text, 'Echo: via sdk');
        });

        it('a stream arrives event by event, spread over its length', async () => {
            const got = timedStream(stack.rootURL, { text: 'alpha beta gamma delta epsilon' });
            await got.done;
            assert.equal(got.error, null, `${got.error}${ctx()}`);
            assert.equal(got.status, 200, got.body + ctx());
            assert.match(String(got.headers['content-type']), /^text\/event-stream/);
            const { data, text } = sseOf(got);
            assert.equal(text, 'Echo: alpha beta gamma delta epsilon');
            assert.equal(data.at(-1)[1], '[DONE]');
            const times = data.slice(0, -1).map(([t]) => t);
            assert.ok(times.length >= STREAM_EVENTS - 2, `${times.length} events`);
            const spread = times.at(-1) - times[0];
            // The upstream sends an event every 300 ms for about 3 s: a server
            // that buffers delivers them all at once at the end.
            assert.ok(spread >= (STREAM_EVENTS - 3) * STREAM_GAP_MS * 0.6,
                `events spread over ${spread} ms only (buffered?): ${times.join(' ')}`);
            const buckets = new Set(times.map((t) => Math.floor(t / 150)));
            assert.ok(buckets.size >= STREAM_EVENTS / 2, `events bunched: arrival ms ${times.join(' ')}`);
            assert.ok(times[0] < 2000, `first event after ${times[0]} ms`);
        });

        it('the Authorization header reaches sluice', async () => {
            const post = (headers) => fetch(`${stack.rootURL}/v1/chat/completions`, {
                method: 'POST',
                headers: { 'content-type': 'application/json', ...headers },
                body: JSON.stringify({ model: 'gpt-4o-mini', messages: user('auth') }),
            });
            const ok = await post({ authorization: `Bearer ${MASTER_KEY}` });
            assert.equal(ok.status, 200, await ok.clone().text() + ctx());
            await ok.arrayBuffer();
            for (const headers of [{ authorization: 'Bearer sk-not-the-key' }, {}]) {
                const r = await post(headers);
                assert.equal(r.status, 401, JSON.stringify(headers));
                const body = await r.json();
                errorShape(body);
                assert.equal(r.headers.get('x-request-id') !== null, true, 'sluice answered, not the server');
            }
            // the x-api-key header (Anthropic's clients) gets through as well
            const xk = await fetch(`${stack.rootURL}/v1/models`, { headers: { 'x-api-key': MASTER_KEY } });
            assert.equal(xk.status, 200, await xk.clone().text());
            await xk.arrayBuffer();
        });

        it(`a client abort closes the upstream connection within ${abortLimitMs} ms`, async () => {
            await w.fake.reset();
            const got = timedStream(stack.rootURL, { model: 'slow-stream', text: 'abort me in the middle please' });
            await waitFor(() => got.lines.some(([, l]) => l.startsWith('data: ')),
                { timeoutMs: 10000, describe: () => `a first event${ctx()}` });
            const entry = async () => (await w.fake.log()).filter((e) => e.model === 'slow-stream').at(-1);
            const before = await entry();
            assert.ok(before, 'the upstream saw the request');
            assert.equal(before.t_close_ms, null, 'the upstream stream was still open');
            const tAbort = Date.now();
            got.req.destroy();
            const closed = await waitFor(async () => {
                const e = await entry();
                return e.t_close_ms !== null ? e : null;
            }, { timeoutMs: abortLimitMs + 8000, intervalMs: 25, describe: () => `the upstream connection to close${ctx()}` });
            const lag = closed.t_close_ms - tAbort;
            process.stderr.write(`${name}: the upstream closed ${lag} ms after the client left\n`);
            assert.equal(closed.completed, false, 'the upstream had not finished its stream');
            assert.ok(lag <= abortLimitMs, `upstream closed ${lag} ms after the client left (limit ${abortLimitMs} ms)`);
        });

        it('a 10 MB request body reaches the upstream whole', async () => {
            await w.fake.reset();
            const big = 'x'.repeat(10 * 1024 * 1024);
            const body = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 5, messages: user(big) });
            const r = await fetch(`${stack.rootURL}/v1/chat/completions`, {
                method: 'POST',
                headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
                body,
            });
            const text = await r.text();
            assert.equal(r.status, 200, text.slice(0, 500) + ctx());
            const answer = JSON.parse(text);
            assert.equal(answer.choices[0].message.content.length, 'Echo: '.length + big.length);
            const log = (await w.fake.log()).filter((e) => e.model === 'gpt-4o-mini');
            assert.equal(log.length, 1);
            assert.ok(log[0].body_bytes >= big.length, `upstream got ${log[0].body_bytes} bytes`);
        });

        it('a graceful reload of the server lets a running stream finish, then serves on', async () => {
            const got = timedStream(stack.rootURL, { model: 'slow-stream-400', text: 'survive the reload of the server' });
            await waitFor(() => got.lines.some(([, l]) => l.startsWith('data: ')),
                { timeoutMs: 10000, describe: () => `a first event${ctx()}` });
            const tReload = Date.now();
            await stack.reload();
            await got.done;
            assert.equal(got.error, null, `the stream broke: ${got.error}${ctx()}`);
            const { data, text } = sseOf(got);
            assert.equal(text, 'Echo: survive the reload of the server', got.body + ctx());
            assert.equal(data.at(-1)[1], '[DONE]');
            assert.ok(got.endedAt > tReload, 'the stream was still running at the reload');
            // New requests are served once the reload is done.
            const r = await waitFor(async () => {
                try {
                    return await client.chat.completions.create({ model: 'gpt-4o-mini', messages: user('after reload') });
                } catch {
                    await sleep(100);
                    return null;
                }
            }, { timeoutMs: 20000, intervalMs: 100, describe: () => `a call after the reload${ctx()}` });
            assert.equal(r.choices[0].message.content, 'Echo: after reload');
        });
    });
}

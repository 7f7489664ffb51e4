// (a) sluice as plain CGI: run directly from node with a CGI environment and
//     the body on stdin (one request per process, the response on stdout),
//     then behind lighttpd's mod_cgi with the OpenAI SDK
//     (tests/integration/lib/lighttpd-cgi.conf; lighttpd gives CGI programs
//     a clean environment, so SLUICE_CONFIG comes from setenv.add-environment).
// (b) a request body that stops arriving: lighttpd streams bodies to sluice
//     (server.stream-request-body = 2) and sluice_settings.body_timeout_ms is
//     1000, so a client that sends 100 of 5000 announced bytes and stalls gets
//     an OpenAI-shaped 408 from sluice, and the gateway serves on.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startHarness, sluiceBin, MASTER_KEY } from './lib/harness.mjs';
import { errorShape, parseResponse } from './lib/http.mjs';
import { toYAML } from './lib/yaml.mjs';
import { startLighttpd, runSluice, parseCGI } from './lib/frontend.mjs';
import { waitFor } from './lib/procs.mjs';
import { user } from './lib/chat.mjs';

function sse(text) {
    const data = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
    const content = data.filter((d) => d !== '[DONE]')
        .map((d) => JSON.parse(d))
        .map((c) => c.choices?.[0]?.delta?.content ?? '')
        .join('');
    return { data, content };
}

describe('plain CGI', () => {
    let dir;
    let config;

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-cgi-'));
        config = path.join(dir, 'config.yaml');
        await fsp.writeFile(config, toYAML({
            model_list: [{ model_name: 'mock-gpt', litellm_params: { model: 'mock/echo' } }],
            general_settings: { master_key: MASTER_KEY },
        }));
    });

    after(async () => {
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    /* One CGI request, with the environment a web server would give (and
     * nothing else of ours). */
    function cgi({ method = 'POST', uri, body, key = MASTER_KEY, extraEnv = {} }) {
        const env = {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            GATEWAY_INTERFACE: 'CGI/1.1',
            SERVER_PROTOCOL: 'HTTP/1.1',
            SERVER_SOFTWARE: 'node-test',
            SERVER_NAME: '127.0.0.1',
            SERVER_PORT: '80',
            REMOTE_ADDR: '127.0.0.1',
            REQUEST_METHOD: method,
            REQUEST_URI: uri,
            SCRIPT_NAME: '/v1',
            PATH_INFO: uri.replace(/^\/v1/, '').replace(/\?.*$/, ''),
            QUERY_STRING: '',
            SLUICE_CONFIG: config,
            ...(key ? { HTTP_AUTHORIZATION: `Bearer ${key}` } : {}),
            ...(body !== undefined ? { CONTENT_LENGTH: String(Buffer.byteLength(body)), CONTENT_TYPE: 'application/json' } : {}),
            ...extraEnv,
        };
        return runSluice([], { env, input: body ?? '', timeoutMs: 15000 });
    }

    function checkRun(r) {
        assert.equal(r.timedOut, false, 'the CGI run ended by itself');
        assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
        const out = parseCGI(r.stdout);
        assert.ok(out.headers, `a CGI header block:\n${r.stdout.toString('utf8').slice(0, 500)}`);
        return out;
    }

    /* The one "request" log line on the CGI run's stderr. */
    function requestLine(r, rid) {
        const lines = r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l));
        const mine = lines.filter((o) => o.msg === 'request');
        assert.equal(mine.length, 1, r.stderr);
        assert.equal(mine[0].request_id, rid);
        return mine[0];
    }

    it('a mock chat: "Status: 200", headers, the JSON body', async () => {
        const body = JSON.stringify({ model: 'mock-gpt', messages: user('hello from cgi') });
        const r = await cgi({ uri: '/v1/chat/completions', body });
        const out = checkRun(r);
        assert.match(r.stdout.toString('latin1'), /^Status: 200\b/, 'the header block starts with Status: 200');
        assert.equal(out.status, 200);
        assert.match(out.headers['content-type'], /^application\/json/);
        assert.ok(out.headers['x-request-id'], 'x-request-id');
        if (out.headers['content-length']) assert.equal(Number(out.headers['content-length']), out.body.length);
        const j = JSON.parse(out.text);
        assert.equal(j.object, 'chat.completion');
        assert.equal(j.model, 'mock-gpt');
        assert.equal(j.choices[0].message.content, 'Echo: hello from cgi');
        const line = requestLine(r, out.headers['x-request-id']);
        assert.equal(line.status, 200);
        assert.equal(line.path, '/v1/chat/completions');
    });

    it('a streamed mock chat: "Status: 200", text/event-stream, every event and [DONE]', async () => {
        const body = JSON.stringify({ model: 'mock-gpt', stream: true, messages: user('stream from cgi') });
        const r = await cgi({ uri: '/v1/chat/completions', body });
        const out = checkRun(r);
        assert.equal(out.status, 200, out.text.slice(0, 300));
        assert.match(out.headers['content-type'], /^text\/event-stream/);
        const { data, content } = sse(out.text);
        assert.equal(content, 'Echo: stream from cgi');
        assert.equal(data.at(-1), '[DONE]');
        const line = requestLine(r, out.headers['x-request-id']);
        assert.equal(line.stream, true);
    });

    it('GET /v1/models', async () => {
        const r = await cgi({ method: 'GET', uri: '/v1/models' });
        const out = checkRun(r);
        assert.equal(out.status, 200, out.text);
        assert.deepEqual(JSON.parse(out.text).data.map((m) => m.id), ['mock-gpt']);
    });

    it('a wrong key: "Status: 401" with an OpenAI-shaped body', async () => {
        const body = JSON.stringify({ model: 'mock-gpt', messages: user('nope') });
        const r = await cgi({ uri: '/v1/chat/completions', body, key: 'sk-not-the-key' });
        const out = checkRun(r);
        assert.equal(out.status, 401, out.text);
        assert.equal(errorShape(JSON.parse(out.text)).code, '401');
    });

    describe('behind lighttpd mod_cgi, with the OpenAI SDK', () => {
        let lt;
        let client;

        before(async () => {
            // mod_cgi runs files by suffix: a link named *.cgi to the binary.
            const cgiDir = path.join(dir, 'cgi-bin');
            await fsp.mkdir(cgiDir);
            const link = path.join(cgiDir, 'sluice.cgi');
            await fsp.symlink(sluiceBin(), link);
            lt = await startLighttpd({
                dir, template: 'lighttpd-cgi.conf', name: 'lighttpd-cgi', vars: { CGI: link, CONFIG: config },
                ready: async (rootURL) => {
                    const res = await fetch(`${rootURL}/v1/models`, {
                        headers: { authorization: `Bearer ${MASTER_KEY}` }, signal: AbortSignal.timeout(5000),
                    });
                    await res.arrayBuffer();
                    return res.status === 200;
                },
            });
            client = new OpenAI({ apiKey: MASTER_KEY, baseURL: lt.baseURL, maxRetries: 0, timeout: 20000 });
        });

        after(async () => {
            if (lt) await lt.stop();
        });

        it('chat', async () => {
            const { data, response } = await client.chat.completions
                .create({ model: 'mock-gpt', messages: user('via mod_cgi') }).withResponse();
            assert.equal(data.choices[0].message.content, 'Echo: via mod_cgi');
            assert.ok(response.headers.get('x-request-id'));
        });

        it('streamed chat', async () => {
            const s = await client.chat.completions.create({ model: 'mock-gpt', stream: true, messages: user('stream via mod_cgi') });
            let text = '';
            for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
            assert.equal(text, 'Echo: stream via mod_cgi');
        });

        it('models, and a wrong key is a 401', async () => {
            const models = await client.models.list();
            assert.deepEqual(models.data.map((m) => m.id), ['mock-gpt']);
            const bad = new OpenAI({ apiKey: 'sk-not-the-key', baseURL: lt.baseURL, maxRetries: 0 });
            await assert.rejects(bad.models.list(), (e) => e.status === 401);
        });
    });
});

/* Sends the headers of a POST announcing contentLength bytes and then only
 * `sent` bytes of body, and waits (at most capMs) for the server to answer
 * and close. Resolves {firstByteMs, closedMs, res (parsed), raw}. */
function stalledBody(port, { contentLength = 5000, sent = 100, capMs = 10000 } = {}) {
    const head = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"';
    const partial = (head + 'x'.repeat(Math.max(0, sent - head.length))).slice(0, sent);
    const req = 'POST /v1/chat/completions HTTP/1.1\r\n' +
        'Host: 127.0.0.1\r\n' +
        `Authorization: Bearer ${MASTER_KEY}\r\n` +
        'Content-Type: application/json\r\n' +
        `Content-Length: ${contentLength}\r\n` +
        '\r\n' + partial;
    return new Promise((resolve) => {
        const t0 = Date.now();
        const chunks = [];
        let firstByteMs = null;
        const s = net.connect(port, '127.0.0.1', () => s.write(req));
        const finish = () => {
            clearTimeout(cap);
            s.destroy();
            const raw = Buffer.concat(chunks);
            resolve({ firstByteMs, closedMs: Date.now() - t0, raw, res: raw.length ? parseResponse(raw) : null });
        };
        const cap = setTimeout(finish, capMs);
        s.on('data', (c) => {
            if (firstByteMs === null) firstByteMs = Date.now() - t0;
            chunks.push(c);
        });
        s.on('error', finish);
        s.on('close', finish);
    });
}

describe('a stalled request body (stream-request-body = 2, body_timeout_ms 1000)', () => {
    let h;

    before(async () => {
        h = await startHarness({ streamRequestBody: 2, sluiceSettings: { body_timeout_ms: 1000 } });
    });

    after(async () => {
        if (h) await h.stop();
    });

    it('100 of 5000 bytes, then silence → OpenAI-shaped 408 within 4 s', async () => {
        const r = await stalledBody(h.port);
        const what = `after ${r.firstByteMs} ms: ${r.raw.toString('utf8').slice(0, 500)}\n${h.errorLog().slice(-2000)}`;
        assert.ok(r.res, `no answer within 10 s (connection closed after ${r.closedMs} ms)\n${h.errorLog().slice(-2000)}`);
        assert.equal(r.res.status, 408, what);
        const e = errorShape(r.res.json);
        assert.equal(e.code, '408', what);
        assert.ok(r.res.headers['x-request-id'], `the 408 comes from sluice: ${what}`);
        assert.ok(r.firstByteMs <= 4000, `the 408 came ${r.firstByteMs} ms after the stall began`);
        assert.ok(r.firstByteMs >= 900, `the 408 came after ${r.firstByteMs} ms, before body_timeout_ms (1000)`);
        process.stderr.write(`# 408 after ${r.firstByteMs} ms; connection closed after ${r.closedMs} ms\n`);

        const rid = r.res.headers['x-request-id'];
        const mine = await waitFor(() => {
            const lines = h.sluiceLog().split('\n').filter(Boolean).map((l) => JSON.parse(l));
            const m = lines.filter((o) => o.msg === 'request' && o.request_id === rid);
            return m.length ? m : null;
        }, { timeoutMs: 5000, describe: () => `the request line of ${rid}:\n${h.sluiceLog()}` });
        assert.equal(mine.length, 1, `request lines for ${rid}`);
        assert.equal(mine[0].status, 408);
    });

    // 6 stalled bodies hold more workers than the 4 sluice starts with: the
    // pool grows, and a chat is not left waiting for the 408s (~1 s).
    it('while 6 bodies stall, other requests are served at once', async () => {
        const stalls = Array.from({ length: 6 }, () => stalledBody(h.port));
        await new Promise((r) => setTimeout(r, 200));
        const client = h.client();
        const t0 = Date.now();
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: user('not starved') });
        const ms = Date.now() - t0;
        assert.equal(r.choices[0].message.content, 'Echo: not starved');
        assert.ok(ms < 500, `a chat took ${ms} ms while bodies stalled (they hold their workers ~800 ms more)`);
        for (const s of await Promise.all(stalls)) assert.equal(s.res?.status, 408, s.raw.toString('utf8').slice(0, 300));
    });

    it('the gateway serves normally afterwards (whole and streamed bodies arrive streamed)', async () => {
        const client = h.client();
        const big = 'y'.repeat(200 * 1024);
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: user(big) });
        assert.equal(r.choices[0].message.content, `Echo: ${big}`);
        const s = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: user('after the stall') });
        let text = '';
        for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
        assert.equal(text, 'Echo: after the stall');
        assert.deepEqual(h.respondersAlive(), h.responders, `a sluice process died:\n${h.errorLog().slice(-3000)}`);
    });
});

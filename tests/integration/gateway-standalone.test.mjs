// sluice standalone: started by the test with --listen (loopback TCP, then a
// unix socket), with lighttpd in front talking FastCGI to it (no bin-path;
// tests/integration/lib/lighttpd-external.conf). Chat and streams through
// it, and systemd socket activation; SIGTERM lets a running stream finish
// and then exits 0, and no new
// request is served meanwhile; and the command line: --listen :PORT is
// refused, --check-config, and no socket + no CGI request → exit 2.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { buildConfig, FAKE_UPSTREAM_KEY, MASTER_KEY, sluiceBin } from './lib/harness.mjs';
import { startFakeProcess, freePort, sleep, withinMs, spawnLogged, stopChild, waitFor, cmdlineOf } from './lib/procs.mjs';
import { execFile } from 'node:child_process';
import { toYAML } from './lib/yaml.mjs';
import { startLighttpd, startStandaloneSluice, runSluice } from './lib/frontend.mjs';
import OpenAI from 'openai';
import { user } from './lib/chat.mjs';

/* A temp dir with a fake upstream and the harness's usual config.yaml, plus
 * slow-stream-700: the fake's slow-stream with 700 ms between events (~7 s). */
async function workdir() {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-sa-'));
    const w = { dir, fake: null, config: path.join(dir, 'config.yaml') };
    try {
        w.fake = await startFakeProcess(dir, { apiKey: FAKE_UPSTREAM_KEY });
        const ctx = { fakeBase: w.fake.baseURL, fakePort: w.fake.port, closedPort: await freePort(), tmpdir: dir };
        await fsp.writeFile(w.config, toYAML(buildConfig(ctx, {
            sluiceSettings: { threads: 4 },
            configure: (cfg) => {
                const slow = cfg.model_list.find((m) => m.model_name === 'slow-stream');
                cfg.model_list.push({
                    model_name: 'slow-stream-700',
                    litellm_params: { ...slow.litellm_params, model: 'openai/slow-stream-700' },
                });
            },
        })));
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

/* lighttpd answering once sluice behind it does (sluice sets x-request-id). */
const sluiceAnswers = async (rootURL) => {
    const res = await fetch(`${rootURL}/health/liveliness`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status === 200 && res.headers.get('x-request-id') !== null;
};

const sdk = (baseURL) => new OpenAI({ apiKey: MASTER_KEY, baseURL, maxRetries: 0, timeout: 20000 });

async function chatAndStream(baseURL, tag) {
    const client = sdk(baseURL);
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: user(`hello ${tag}`) });
    assert.equal(r.choices[0].message.content, `Echo: hello ${tag}`);
    const s = await client.chat.completions.create({ model: 'mock-gpt', stream: true, messages: user(`stream ${tag}`) });
    let text = '';
    for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, `Echo: stream ${tag}`);
    const s2 = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: user(`proxied ${tag}`) });
    text = '';
    for await (const c of s2) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, `Echo: proxied ${tag}`);
}

/* A streamed request over node:http, so the raw SSE (and [DONE]) is kept. */
function rawStream(port, model, text) {
    const got = { status: null, body: '', endedAt: null, error: null };
    got.done = new Promise((resolve) => {
        const req = http.request({
            host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', agent: false,
            headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
        });
        req.setTimeout(20000, () => req.destroy(new Error('client time-out (20 s)')));
        req.on('response', (res) => {
            got.status = res.statusCode;
            res.on('data', (c) => { got.body += c.toString('utf8'); });
            res.on('end', () => { got.endedAt = Date.now(); resolve(got); });
            res.on('error', (e) => { got.error = e; got.endedAt = Date.now(); resolve(got); });
        });
        req.on('error', (e) => { got.error = e; got.endedAt = Date.now(); resolve(got); });
        req.end(JSON.stringify({ model, stream: true, messages: user(text) }));
    });
    return got;
}

/* The content deltas and the data lines of an SSE body. */
function sse(body) {
    const data = body.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
    const text = data.filter((d) => d !== '[DONE]')
        .map((d) => JSON.parse(d))
        .map((c) => c.choices?.[0]?.delta?.content ?? '')
        .join('');
    return { data, text };
}

describe('standalone on 127.0.0.1:PORT behind lighttpd (host/port)', () => {
    let w;
    let sl;
    let lt;

    before(async () => {
        w = await workdir();
        try {
            const port = await freePort();
            sl = await startStandaloneSluice({ dir: w.dir, config: w.config, listen: `127.0.0.1:${port}` });
            lt = await startLighttpd({
                dir: w.dir, template: 'lighttpd-external.conf', ready: sluiceAnswers,
                vars: { TARGET: `"host" => "127.0.0.1", "port" => ${port}` },
            });
        } catch (e) {
            if (sl) await sl.stop();
            await w.cleanup();
            throw e;
        }
    });

    after(async () => {
        if (lt) await lt.stop();
        if (sl) await sl.stop();
        if (w) await w.cleanup();
    });

    it('listens on loopback only', async () => {
        const port = Number(sl.listen.split(':')[1]);
        // Another local address of this host (not 127.0.0.1), if there is one.
        const other = Object.values(os.networkInterfaces()).flat()
            .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
        if (!other) return;
        const ok = await new Promise((resolve) => {
            const s = net.connect({ host: other, port }, () => { s.destroy(); resolve(true); });
            s.on('error', () => resolve(false));
            s.setTimeout(2000, () => { s.destroy(); resolve(false); });
        });
        assert.equal(ok, false, `sluice --listen 127.0.0.1:${port} also accepts on ${other}`);
    });

    it('serves chat and streams through lighttpd', async () => {
        await chatAndStream(lt.baseURL, 'tcp');
    });

    it('SIGTERM during a stream: the stream completes, no new request is served, exit 0 within 2 s', async () => {
        await sigtermDuringStream(sl, lt, 'slow-stream');
    });

    it('after the exit, lighttpd answers at once with an error', async () => {
        const t0 = Date.now();
        const res = await fetch(`${lt.rootURL}/v1/models`, {
            headers: { authorization: `Bearer ${MASTER_KEY}` }, signal: AbortSignal.timeout(10000),
        });
        await res.arrayBuffer();
        assert.ok([500, 502, 503, 504].includes(res.status), `status ${res.status}`);
        assert.ok(Date.now() - t0 < 5000);
    });
});

describe('standalone on 127.0.0.1:PORT: SIGTERM during a long (~7 s) stream', () => {
    let w;
    let sl;
    let lt;

    before(async () => {
        w = await workdir();
        try {
            const port = await freePort();
            sl = await startStandaloneSluice({ dir: w.dir, config: w.config, listen: `127.0.0.1:${port}` });
            lt = await startLighttpd({
                dir: w.dir, template: 'lighttpd-external.conf', ready: sluiceAnswers,
                vars: { TARGET: `"host" => "127.0.0.1", "port" => ${port}` },
            });
        } catch (e) {
            if (sl) await sl.stop();
            await w.cleanup();
            throw e;
        }
    });

    after(async () => {
        if (lt) await lt.stop();
        if (sl) await sl.stop();
        if (w) await w.cleanup();
    });

    // A new request must not wait for the drain: with a stream that outlasts
    // the 5 s limit, a request left in the listen backlog would hang past it.
    it('the stream completes, a new request fails within 5 s while it still runs, exit 0 within 2 s', async () => {
        await sigtermDuringStream(sl, lt, 'slow-stream-700');
    });
});

/* SIGTERM to a standalone sluice while `model` streams through lighttpd:
 * the stream ends complete with [DONE]; a request sent meanwhile is not
 * served and fails within 5 s; sluice exits 0 within 2 s of the stream's end. */
async function sigtermDuringStream(sl, lt, model) {
    const stream = rawStream(lt.port, model, 'finish me after the signal');
    const t0 = Date.now();
    // Wait for the first events: the request is in flight at sluice.
    while (!stream.body.includes('data: ') && Date.now() - t0 < 5000) await sleep(20);
    assert.ok(stream.body.includes('data: '), `the stream had not started after 5 s: ${JSON.stringify(stream)}`);
    await sleep(300);
    const tTerm = Date.now();
    process.kill(sl.pid, 'SIGTERM');

    // A new request while the stream still runs: not served, and no hang.
    await sleep(300);
    const tNew = Date.now();
    let newReq;
    try {
        const r = await sdk(lt.baseURL).chat.completions.create(
            { model: 'gpt-4o-mini', messages: user('too late') }, { timeout: 10000 },
        ).withResponse();
        newReq = { ok: true, status: r.response.status };
    } catch (e) {
        newReq = { ok: false, status: e.status ?? null, message: e.message };
    }
    const newMs = Date.now() - tNew;

    const got = await withinMs(stream.done, 15000, null);
    assert.ok(got, `the stream did not end within 15 s of SIGTERM: ${JSON.stringify(stream).slice(0, 500)}`);
    assert.equal(got.error, null, `the stream broke: ${got.error?.message}\n${got.body}`);
    assert.equal(got.status, 200);
    const { data, text } = sse(got.body);
    assert.equal(text, 'Echo: finish me after the signal', got.body);
    assert.equal(data.at(-1), '[DONE]', got.body);
    assert.ok(got.endedAt - tTerm > 1000, 'the stream really ran on after SIGTERM');

    const ex = await withinMs(sl.exited, got.endedAt + 2000 - Date.now() + 500, null);
    const exitedAt = Date.now();
    assert.ok(ex, `sluice still runs ${exitedAt - got.endedAt} ms after the stream ended\n${sl.log().slice(-2000)}`);
    assert.ok(exitedAt - got.endedAt <= 2500, `sluice exited ${exitedAt - got.endedAt} ms after the stream ended`);
    assert.deepEqual({ code: ex.code, signal: ex.signal }, { code: 0, signal: null }, sl.log().slice(-2000));

    const brief = { ...newReq, message: newReq.message?.replace(/\s+/g, ' ').slice(0, 120) };
    process.stderr.write(`# ${model}: request sent ${tNew - tTerm} ms after SIGTERM: ${JSON.stringify(brief)} ` +
        `after ${newMs} ms; the stream ended ${got.endedAt - tTerm} ms after SIGTERM, sluice exited ` +
        `${exitedAt - got.endedAt} ms after that\n`);
    assert.notEqual(newReq.ok, true, `a request made after SIGTERM was served: ${JSON.stringify(brief)}`);
    assert.ok(newMs < 5000, `a request made after SIGTERM took ${newMs} ms to fail (${JSON.stringify(brief)}); ` +
        `the stream ended ${got.endedAt - tTerm} ms after SIGTERM`);
}

describe('standalone on a unix socket behind lighttpd', () => {
    let w;
    let sl;
    let lt;
    let sock;

    before(async () => {
        w = await workdir();
        try {
            sock = path.join(w.dir, 'sluice.sock');
            sl = await startStandaloneSluice({ dir: w.dir, config: w.config, listen: sock });
            lt = await startLighttpd({
                dir: w.dir, template: 'lighttpd-external.conf', ready: sluiceAnswers,
                vars: { TARGET: `"socket" => "${sock}"` },
            });
        } catch (e) {
            if (sl) await sl.stop();
            await w.cleanup();
            throw e;
        }
    });

    after(async () => {
        if (lt) await lt.stop();
        if (sl) await sl.stop();
        if (w) await w.cleanup();
    });

    it('the socket is a socket with mode 0660 by default', () => {
        const st = fs.statSync(sock);
        assert.ok(st.isSocket(), 'a unix socket');
        assert.equal((st.mode & 0o777).toString(8), '660');
    });

    it('serves chat and streams through lighttpd', async () => {
        await chatAndStream(lt.baseURL, 'unix');
    });

    it('--socket-mode 0600 sets the mode', async () => {
        const other = path.join(w.dir, 'private.sock');
        const s2 = await startStandaloneSluice({
            dir: w.dir, config: w.config, listen: other, args: ['--socket-mode', '0600'], name: 'sluice-0600',
        });
        try {
            assert.equal((fs.statSync(other).mode & 0o777).toString(8), '600');
        } finally {
            await s2.stop();
        }
    });

    it('SIGTERM when idle: exit 0 promptly', async () => {
        const t0 = Date.now();
        process.kill(sl.pid, 'SIGTERM');
        const ex = await withinMs(sl.exited, 5000, null);
        assert.ok(ex, `still running 5 s after SIGTERM\n${sl.log().slice(-2000)}`);
        assert.deepEqual({ code: ex.code, signal: ex.signal }, { code: 0, signal: null });
        assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    });
});

/* systemd's socket activation, as systemd-socket-activate (from the
 * systemd package) does it: it listens, and on the first connection execs
 * sluice in place with the socket on fd 3, $LISTEN_FDS=1, $LISTEN_PID = its pid. */
describe('systemd socket activation ($LISTEN_FDS) behind lighttpd', () => {
    let w;
    let act;
    let lt;
    let sock;
    const activator = '/usr/bin/systemd-socket-activate';

    before(async () => {
        assert.ok(fs.existsSync(activator), `${activator} is missing: apt-get install systemd`);
        w = await workdir();
        try {
            sock = path.join(w.dir, 'activated.sock');
            const logFile = path.join(w.dir, 'activate.log');
            act = spawnLogged(activator, ['-l', sock, sluiceBin(), '--config', w.config], { logFile });
            act.log = () => fs.readFileSync(logFile, 'utf8');
            await waitFor(() => fs.existsSync(sock), { timeoutMs: 10000, describe: () => `the socket ${sock}` });
            lt = await startLighttpd({
                dir: w.dir, template: 'lighttpd-external.conf', ready: sluiceAnswers,
                vars: { TARGET: `"socket" => "${sock}"` },
            });
        } catch (e) {
            if (act) await stopChild(act, 3000);
            await w.cleanup();
            throw e;
        }
    });

    after(async () => {
        if (lt) await lt.stop();
        if (act) await stopChild(act, 5000);
        if (w) await w.cleanup();
    });

    it('sluice serves the socket it was handed (the activator execs it in place)', async () => {
        await chatAndStream(lt.baseURL, 'activated');
        assert.deepEqual(cmdlineOf(act.pid).slice(0, 1), [sluiceBin()], 'sluice runs under the pid of the activator');
        assert.match(act.log(), /sluice .* ready/);
    });

    it('SIGTERM: exit 0', async () => {
        process.kill(act.pid, 'SIGTERM');
        const ex = await withinMs(act.exited, 5000, null);
        assert.ok(ex, `still running 5 s after SIGTERM\n${act.log().slice(-2000)}`);
        assert.deepEqual({ code: ex.code, signal: ex.signal }, { code: 0, signal: null });
    });

    it('$LISTEN_FDS other than 1 is refused: exit 2 and a message', async () => {
        const r = await new Promise((resolve) => {
            execFile('/bin/sh', ['-c', 'LISTEN_PID=$$ LISTEN_FDS=2 exec "$0" --config "$1"', sluiceBin(), w.config],
                { timeout: 10000 }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stderr }));
        });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /socket activation passed 2 sockets/);
    });
});

describe('command line', () => {
    let dir;
    let good;

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sluice-cli-'));
        good = path.join(dir, 'good.yaml');
        await fsp.writeFile(good, toYAML({
            model_list: [{ model_name: 'mock-gpt', litellm_params: { model: 'mock/echo' } }],
            general_settings: { master_key: MASTER_KEY },
        }));
    });

    after(async () => {
        if (dir) await fsp.rm(dir, { recursive: true, force: true });
    });

    /* The environment minus anything that would make sluice think it is CGI. */
    const plainEnv = () => {
        const env = { ...process.env };
        for (const k of Object.keys(env)) {
            if (/^(REQUEST_METHOD|GATEWAY_INTERFACE|SERVER_PROTOCOL|CONTENT_LENGTH|QUERY_STRING|FCGI_.*|SLUICE_.*)$/.test(k)) delete env[k];
        }
        return env;
    };

    it('--listen :PORT is refused with a message, and nothing listens', async () => {
        const port = await freePort();
        const r = await runSluice(['--config', good, '--listen', `:${port}`], { env: plainEnv(), timeoutMs: 10000 });
        assert.equal(r.timedOut, false, 'sluice kept running with --listen :PORT');
        assert.notEqual(r.code, 0, r.stderr);
        assert.ok(r.stderr.trim().length > 0, 'an explanation on stderr');
        assert.match(r.stderr, new RegExp(`:${port}`), r.stderr);
        const listening = await new Promise((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
            s.on('error', () => resolve(false));
        });
        assert.equal(listening, false);
    });

    it('--check-config on a good file exits 0', async () => {
        const r = await runSluice(['--check-config', good], { env: plainEnv() });
        assert.equal(r.code, 0, r.stderr);
        assert.doesNotMatch(r.stderr, /error/i);
    });

    it('--check-config on a semantically bad file: non-zero, "file:line:col: error: ..."', async () => {
        const bad = path.join(dir, 'bad-provider.yaml');
        const text = toYAML({
            model_list: [
                { model_name: 'ok', litellm_params: { model: 'mock/echo' } },
                { model_name: 'bad', litellm_params: { model: 'nosuchvendor/some-model' } },
            ],
        });
        await fsp.writeFile(bad, text);
        const line = text.split('\n').findIndex((l) => l.includes('nosuchvendor')) + 1;
        const r = await runSluice(['--check-config', bad], { env: plainEnv() });
        assert.notEqual(r.code, 0, r.stderr);
        assert.ok(r.stderr.split('\n').some((l) => l.startsWith(`${bad}:${line}:`) && /^[^:]+:\d+:\d+: error: .*nosuchvendor/.test(l)),
            `expected "${bad}:${line}:COL: error: ..." in:\n${r.stderr}`);
    });

    it('--check-config on invalid YAML: non-zero, "file:line:col: error: ..."', async () => {
        const bad = path.join(dir, 'bad-yaml.yaml');
        await fsp.writeFile(bad, 'model_list:\n  - model_name: "unterminated\n    litellm_params: {}\n');
        const r = await runSluice(['--check-config', bad], { env: plainEnv() });
        assert.notEqual(r.code, 0, r.stderr);
        const re = new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: error: `, 'm');
        assert.match(r.stderr, re);
    });

    it('no FastCGI socket, no --listen, no CGI request: exit 2 with usage', async () => {
        // stdin is /dev/null here, then a pipe: neither is a listening socket.
        const r1 = await runSluice(['--config', good], { env: plainEnv(), timeoutMs: 10000 });
        assert.equal(r1.timedOut, false, 'sluice kept running');
        assert.equal(r1.code, 2, r1.stderr);
        assert.match(r1.stderr, /usage/i);
        const r2 = await runSluice(['--config', good], { env: plainEnv(), input: '', timeoutMs: 10000 });
        assert.equal(r2.code, 2, r2.stderr);
        const r3 = await runSluice([], { env: { ...plainEnv(), SLUICE_CONFIG: good }, timeoutMs: 10000 });
        assert.equal(r3.code, 2, r3.stderr);
    });
});

// The README's first command, scripts/run-local, really run: with the
// binary under test (SLUICE_NO_BUILD), on free ports, its private MariaDB
// and memcached under a temp dir. It must print a first virtual key that
// works with the official openai client, whose spend then shows in
// /key/info; Ctrl-C (SIGINT) must stop lighttpd, the responders, MariaDB
// and memcached; a second run keeps the data and shows the same key.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { sluiceBin } from './lib/harness.mjs';
import { REPO_ROOT, freePort, isAlive, waitFor } from './lib/procs.mjs';

const MASTER = 'sk-sluice-change-me';   /* config.example.yaml's */

/* Starts run-local; resolves once it printed its banner. */
async function runLocal(env) {
    const child = spawn(path.join(REPO_ROOT, 'scripts', 'run-local'), [], {
        env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = { text: '' };
    child.stdout.on('data', (c) => { out.text += c; });
    child.stderr.on('data', (c) => { out.text += c; });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    let gone = null;
    exited.then((x) => { gone = x; });
    await waitFor(() => {
        if (gone) throw Object.assign(new Error(`run-local exited ${JSON.stringify(gone)}:\n${out.text}`), { fatal: true });
        return /Ctrl-C stops lighttpd/.test(out.text);
    }, { timeoutMs: 90000, intervalMs: 100, describe: () => `run-local's banner:\n${out.text}` });
    return { child, out, exited };
}

const pidsOf = (text) => {
    const m = /\(pids (\d+) (\d+)\)/.exec(text);
    const l = /lighttpd pid (\d+), responders: ([\d ]+)\)/.exec(text);
    return { mariadb: Number(m[1]), memcached: Number(m[2]), lighttpd: Number(l[1]),
        responders: l[2].trim().split(/\s+/).map(Number) };
};

describe('scripts/run-local: a private MariaDB and memcached, a first key, spend, Ctrl-C', () => {
    let dir;
    let env;
    let run = null;

    before(async () => {
        dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sl-rl-'));
        env = {
            SLUICE_NO_BUILD: '1', SLUICE_BIN: sluiceBin(), SLUICE_STATE_DIR: path.join(dir, 'state'),
            SLUICE_PORT: String(await freePort()), SLUICE_DB_PORT: String(await freePort()),
            SLUICE_MEMCACHED_PORT: String(await freePort()), SLUICE_PROCS: '1',
            DATABASE_URL: '', SLUICE_MEMCACHED_SERVERS: '',
        };
    });

    after(async () => {
        if (run && run.child.exitCode === null) {
            run.child.kill('SIGINT');
            await run.exited;
        }
        if (dir && process.env.SLUICE_KEEP_TMP !== '1') await fsp.rm(dir, { recursive: true, force: true });
    });

    let key;
    let pids;
    it('prints a first virtual key that works, and its spend shows', async () => {
        run = await runLocal(env);
        const m = /Your first virtual key[^\n]*\n\n\s+(sk-\S+)/.exec(run.out.text);
        assert.ok(m, `a key in the banner:\n${run.out.text}`);
        key = m[1];
        assert.equal(fs.readFileSync(path.join(env.SLUICE_STATE_DIR, 'first-key'), 'utf8').trim(), key);
        assert.equal(fs.statSync(path.join(env.SLUICE_STATE_DIR, 'first-key')).mode & 0o777, 0o600);
        pids = pidsOf(run.out.text);
        const base = `http://127.0.0.1:${env.SLUICE_PORT}`;
        const client = new OpenAI({ apiKey: key, baseURL: `${base}/v1`, maxRetries: 0 });
        const r = await client.chat.completions.create({ model: 'mock-gpt', messages: [{ role: 'user', content: 'Hello!' }] });
        assert.match(r.choices[0].message.content, /Hello!/);
        let info;
        await waitFor(async () => {
            info = await (await fetch(`${base}/key/info?key=${key}`, { headers: { authorization: `Bearer ${MASTER}` } })).json();
            return info.info && info.info.spend > 0;
        }, { timeoutMs: 15000, intervalMs: 200, describe: () => `spend in /key/info: ${JSON.stringify(info)}` });
        assert.equal(info.info.key_alias, 'first-key');
        assert.equal(info.info.max_budget, 1);
    });

    it('Ctrl-C stops lighttpd, the responders, MariaDB and memcached', async () => {
        run.child.kill('SIGINT');
        const x = await run.exited;
        assert.equal(x.code, 0, run.out.text.slice(-3000));
        for (const pid of [pids.lighttpd, ...pids.responders, pids.mariadb, pids.memcached])
            assert.ok(!isAlive(pid), `pid ${pid} is gone`);
    });

    it('a second run keeps the data: the same key, its spend still there', async () => {
        run = await runLocal(env);
        const m = /Your first virtual key[^\n]*\n\n\s+(sk-\S+)/.exec(run.out.text);
        assert.equal(m?.[1], key, 'the same first key');
        const base = `http://127.0.0.1:${env.SLUICE_PORT}`;
        const info = await (await fetch(`${base}/key/info?key=${key}`, { headers: { authorization: `Bearer ${MASTER}` } })).json();
        assert.ok(info.info.spend > 0, JSON.stringify(info));
        run.child.kill('SIGINT');
        assert.equal((await run.exited).code, 0);
    });
});

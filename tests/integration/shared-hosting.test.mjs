// docs/shared-hosting.md's recipe for a host where only .htaccess is yours:
// the hoster's Apache with mod_fcgid (its server-wide Fcgid* settings as the
// guide asks for them), a document root holding the guide's .htaccess and
// its sluice.fcgi wrapper script, taken verbatim from the guide with only the
// paths replaced. Through it: chat, a stream event by event, a wrong key
// refused, and the wrapper's environment reaching sluice.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { buildConfig, FAKE_UPSTREAM_KEY, MASTER_KEY, sluiceBin } from './lib/harness.mjs';
import { startApache } from './lib/apache.mjs';
import { sluiceAnswers, pidsOf, sanitizerEnv } from './lib/webservers.mjs';
import { timedStream, sseOf } from './lib/webserver-suite.mjs';
import { REPO_ROOT, startFakeProcess, freePort, stopPids, sleep, isAlive } from './lib/procs.mjs';
import { toYAML } from './lib/yaml.mjs';
import { user } from './lib/chat.mjs';

/* The fenced block of the guide that starts with `first` (its first line). */
function guideBlock(first) {
    const text = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'shared-hosting.md'), 'utf8');
    const blocks = [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]);
    const b = blocks.find((x) => x.startsWith(first));
    assert.ok(b, `docs/shared-hosting.md has a block starting with ${first}`);
    return b;
}

describe('shared hosting: the .htaccess and wrapper of docs/shared-hosting.md under mod_fcgid', () => {
    let dir;
    let fake;
    let ap;
    let client;
    let before0;

    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-sh-'));
        fs.chmodSync(dir, 0o755);
        fake = await startFakeProcess(dir, { apiKey: FAKE_UPSTREAM_KEY });
        const home = path.join(dir, 'home');
        const docroot = path.join(home, 'llm');
        fs.mkdirSync(path.join(home, 'spool'), { recursive: true, mode: 0o777 });
        fs.chmodSync(path.join(home, 'spool'), 0o777);
        fs.mkdirSync(docroot, { recursive: true });
        const config = path.join(home, 'config.yaml');
        fs.writeFileSync(config, toYAML(buildConfig(
            { fakeBase: fake.baseURL, fakePort: fake.port, closedPort: await freePort(), tmpdir: dir },
            { sluiceSettings: { heartbeat_ms: 300, spend_spool_dir: path.join(home, 'spool') } },
        )), { mode: 0o644 });
        fs.writeFileSync(path.join(docroot, '.htaccess'), guideBlock('# .htaccess'));
        // The wrapper as the guide writes it, with this test's paths and no database.
        const wrapper = guideBlock('#!/bin/sh')
            .replace(/^export DATABASE_URL=.*\n/m, '')
            .replace('/home/u123/sluice/bin/sluice', sluiceBin())
            .replace('/home/u123/sluice/etc/sluice/config.yaml', config);
        assert.match(wrapper, /^exec .* --config /m);
        fs.writeFileSync(path.join(docroot, 'sluice.fcgi'), wrapper, { mode: 0o755 });
        const fcgidDir = path.join(dir, 'fcgid');
        fs.mkdirSync(fcgidDir, { mode: 0o777 });
        fs.chmodSync(fcgidDir, 0o777);
        // The hoster's part: the server-wide settings the guide asks for, and
        // a virtual host whose document root is the user's directory.
        const site = path.join(dir, 'hoster.conf');
        fs.writeFileSync(site, [
            `FcgidIPCDir ${fcgidDir}/sock`,
            `FcgidProcessTableFile ${fcgidDir}/shm`,
            ...sanitizerEnv('FcgidInitialEnv'),
            'FcgidOutputBufferSize 0',
            'FcgidMaxRequestLen 67108864',
            'FcgidIOTimeout 600',
            'FcgidBusyTimeout 3600',
            'FcgidMaxProcessesPerClass 8',
            `DocumentRoot ${docroot}`,
            `<Directory ${docroot}>`,
            '    AllowOverride All',
            '    Require all granted',
            '</Directory>',
            '',
        ].join('\n'));
        before0 = new Set(pidsOf(sluiceBin()));
        ap = await startApache({ dir, modules: ['fcgid', 'rewrite'], include: site, ready: sluiceAnswers });
        client = new OpenAI({ apiKey: MASTER_KEY, baseURL: `${ap.rootURL}/v1`, maxRetries: 0, timeout: 20000 });
    });

    after(async () => {
        const spawned = pidsOf(sluiceBin()).filter((p) => !before0?.has(p));
        if (ap) await ap.stop();
        let left = spawned;
        for (let i = 0; i < 100 && left.length; i++) {
            await sleep(100);
            left = left.filter(isAlive);
        }
        await stopPids(left, sluiceBin(), 2000);
        if (fake) await fake.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('serves chat under the original path (/v1/chat/completions) and /v1/models', async () => {
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: user('hosted') });
        assert.equal(r.choices[0].message.content, 'Echo: hosted', ap.log());
        const models = await client.models.list();
        assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));
    });

    it('streams event by event', async () => {
        const got = timedStream(ap.rootURL, { text: 'one two three four five' });
        await got.done;
        assert.equal(got.status, 200, got.body);
        const { data, text } = sseOf(got);
        assert.equal(text, 'Echo: one two three four five');
        const times = data.slice(0, -1).map(([t]) => t);
        assert.ok(times.at(-1) - times[0] >= 1200, `events spread over ${times.at(-1) - times[0]} ms only`);
    });

    it('passes the Authorization header: a wrong key is refused by sluice', async () => {
        const r = await fetch(`${ap.rootURL}/v1/models`, { headers: { authorization: 'Bearer sk-wrong' } });
        assert.equal(r.status, 401);
        assert.ok(r.headers.get('x-request-id'));
        assert.equal((await r.json()).error.code, '401');
    });

    it('the wrapper\'s environment reached sluice (one worker thread per process)', () => {
        const spawned = pidsOf(sluiceBin()).filter((p) => !before0.has(p));
        assert.ok(spawned.length >= 1, 'mod_fcgid runs sluice');
        for (const p of spawned) {
            const env = fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
            assert.ok(env.includes('SLUICE_THREADS=1'), `pid ${p}: SLUICE_THREADS=1`);
            // Under the sanitizer run, the settings that send reports to the
            // run's directory reach these processes too.
            if (process.env.ASAN_OPTIONS) assert.ok(env.includes(`ASAN_OPTIONS=${process.env.ASAN_OPTIONS}`), `pid ${p}: ASAN_OPTIONS`);
        }
    });
});

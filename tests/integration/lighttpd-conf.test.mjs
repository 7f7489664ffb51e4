// httpd-conf/lighttpd.conf is a template: every placeholder is known to the
// harness and to scripts/run-local, and the rendered file passes lighttpd's
// own pre-flight check. Needs lighttpd, not sluice.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './lib/procs.mjs';
import { renderLighttpdConf, lighttpdBin } from './lib/harness.mjs';

const template = fs.readFileSync(path.join(REPO_ROOT, 'httpd-conf', 'lighttpd.conf'), 'utf8');
const PLACEHOLDERS = ['PORT', 'BIND', 'SLUICE', 'CONFIG', 'SOCKET', 'DOCROOT', 'ERRORLOG', 'PIDFILE', 'MAXPROCS'];

it('uses exactly the documented placeholders', () => {
    const used = [...new Set(template.match(/@[A-Z]+@/g))].map((p) => p.slice(1, -1)).sort();
    assert.deepEqual(used, [...PLACEHOLDERS].sort());
    const script = fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'run-local'), 'utf8');
    for (const p of PLACEHOLDERS) assert.ok(script.includes(`@${p}@`), `scripts/run-local fills @${p}@`);
});

it('streams responses and routes every path to sluice', () => {
    assert.match(template, /^server\.stream-response-body\s*=\s*2\s*$/m);
    assert.match(template, /fastcgi\.server\s*=\s*\(\s*"\/"\s*=>/);
    assert.match(template, /"check-local"\s*=>\s*"disable"/);
});

it('renders to a config lighttpd accepts (lighttpd -tt)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-conf-'));
    try {
        fs.mkdirSync(path.join(dir, 'htdocs'));
        const conf = path.join(dir, 'lighttpd.conf');
        fs.writeFileSync(conf, renderLighttpdConf(template, {
            PORT: 18099, BIND: '127.0.0.1', SLUICE: '/bin/true', CONFIG: path.join(dir, 'config.yaml'),
            SOCKET: path.join(dir, 'sluice.sock'), DOCROOT: path.join(dir, 'htdocs'),
            ERRORLOG: path.join(dir, 'error.log'), PIDFILE: path.join(dir, 'lighttpd.pid'), MAXPROCS: 2,
        }));
        const out = execFileSync(lighttpdBin(), ['-tt', '-f', conf], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        assert.doesNotMatch(out, /error/i);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

it('scripts/run-local is valid bash', () => {
    execFileSync('bash', ['-n', path.join(REPO_ROOT, 'scripts', 'run-local')]);
    const st = fs.statSync(path.join(REPO_ROOT, 'scripts', 'run-local'));
    assert.ok(st.mode & 0o100, 'scripts/run-local is executable');
});

// make install and make uninstall, with DESTDIR, in the configured build
// directory of the sluice under test: the responder and sluicectl run, the
// example config (never over an operator's edits), the schema, the man
// pages (rendered without a warning), the web server examples with this
// install's paths filled in, the systemd units (checked by systemd-analyze);
// and uninstall leaves nothing but an edited config behind.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sluiceBin } from './lib/harness.mjs';
import { REPO_ROOT } from './lib/procs.mjs';

const BUILD = path.dirname(sluiceBin());

/* The install directories of BUILD's configuration, as make expands them. */
function installDirs() {
    const names = ['bindir', 'sysconfdir', 'pkgdatadir', 'mandir', 'docdir', 'systemdsystemunitdir'];
    const out = execFileSync('make', ['-s', '-C', BUILD, '-f', 'Makefile', '-f', '-', 'sl-show-dirs'], {
        input: `sl-show-dirs:\n${names.map((n) => `\t@echo ${n}=$(${n})`).join('\n')}\n`,
        encoding: 'utf8',
    });
    const dirs = {};
    for (const l of out.split('\n')) {
        const i = l.indexOf('=');
        if (i > 0 && names.includes(l.slice(0, i))) dirs[l.slice(0, i)] = l.slice(i + 1);
    }
    return dirs;
}

const make = (target, destdir) => execFileSync('make', ['-s', '-C', BUILD, target, `DESTDIR=${destdir}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });

function filesUnder(dir) {
    const out = [];
    const walk = (d) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) walk(p);
            else out.push(p);
        }
    };
    if (fs.existsSync(dir)) walk(dir);
    return out.sort();
}

describe('make install / make uninstall with DESTDIR', () => {
    let dest;
    let dirs;
    const at = (dir, ...rest) => path.join(dest, dir, ...rest);

    before(() => {
        assert.ok(fs.existsSync(path.join(BUILD, 'Makefile')), `${BUILD} is not a configured build directory`);
        dest = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-install-'));
        dirs = installDirs();
        for (const k of ['bindir', 'sysconfdir', 'pkgdatadir', 'mandir', 'docdir', 'systemdsystemunitdir']) {
            assert.ok(dirs[k]?.startsWith('/'), `${k} = ${dirs[k]}`);
        }
        make('install', dest);
    });

    after(() => {
        if (dest) fs.rmSync(dest, { recursive: true, force: true });
    });

    it('installs the responder and sluicectl, which run', () => {
        const v = execFileSync(at(dirs.bindir, 'sluice'), ['--version'], { encoding: 'utf8' });
        assert.match(v, /^sluice \d+\.\d+\.\d+/);
        const h = spawnSync(at(dirs.bindir, 'sluicectl'), ['--help'], { encoding: 'utf8' });
        assert.equal(h.status, 0, h.stderr);
        assert.match(h.stdout, /usage: sluicectl/);
    });

    it('installs the example config, which sluice accepts', () => {
        const conf = at(dirs.sysconfdir, 'sluice', 'config.yaml');
        assert.equal(fs.readFileSync(conf, 'utf8'), fs.readFileSync(path.join(REPO_ROOT, 'config.example.yaml'), 'utf8'));
        const r = spawnSync(at(dirs.bindir, 'sluice'), ['--check-config', conf], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
    });

    it('installs the schema migrations', () => {
        const want = fs.readdirSync(path.join(REPO_ROOT, 'schema')).filter((f) => f.endsWith('.sql')).sort();
        assert.ok(want.length >= 2);
        assert.deepEqual(fs.readdirSync(at(dirs.pkgdatadir, 'schema')).sort(), want);
    });

    it('installs the three man pages, which render without a warning', () => {
        for (const [sec, page] of [['8', 'sluice'], ['1', 'sluicectl'], ['5', 'sluice-config']]) {
            const file = at(dirs.mandir, `man${sec}`, `${page}.${sec}`);
            assert.ok(fs.existsSync(file), file);
            const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', file], { encoding: 'utf8' });
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stderr, '', `${page}(${sec}): ${r.stderr}`);
            assert.match(fs.readFileSync(file, 'utf8'), new RegExp(`^\\.TH ${page.toUpperCase().replace('-', '\\\\-')} ${sec} `, 'm'));
        }
    });

    it('installs every web server example with this install\'s paths filled in', () => {
        const src = fs.readdirSync(path.join(REPO_ROOT, 'httpd-conf')).sort();
        const exdir = at(dirs.docdir, 'examples', 'httpd-conf');
        assert.deepEqual(fs.readdirSync(exdir).sort(), src);
        for (const f of src) {
            const text = fs.readFileSync(path.join(exdir, f), 'utf8');
            // Only the legend at the top (comment lines that start with a
            // placeholder: "#   @SLUICE@  the sluice binary") keeps them.
            const rest = text.split('\n').filter((l) => !/^\s*#\s*@[A-Z]+@/.test(l)).join('\n');
            assert.doesNotMatch(rest, /@[A-Z]+@/, `${f}: a placeholder is left`);
            assert.match(text, /^\s*#\s*@[A-Z]+@/m, `${f}: the legend of the placeholders is gone`);
        }
        const read = (f) => fs.readFileSync(path.join(exdir, f), 'utf8');
        const bin = `${dirs.bindir}/sluice`;
        const conf = `${dirs.sysconfdir}/sluice/config.yaml`;
        assert.ok(read('lighttpd.conf').includes(`"bin-path"     => "${bin} --config ${conf}"`));
        assert.ok(read('apache-fcgid.conf').includes(`FcgidInitialEnv SLUICE_CONFIG ${conf}`));
        assert.ok(read('apache-fcgid.conf').includes(`"${bin}/$1"`));
        assert.ok(read('nginx.conf').includes('fastcgi_pass unix:/run/sluice/sluice.sock;'));
        assert.ok(read('apache-proxy-fcgi.conf').includes('"unix:/run/sluice/sluice.sock|fcgi://localhost/"'));
        assert.ok(read('Caddyfile').includes('reverse_proxy unix//run/sluice/sluice.sock {'));
        assert.ok(read('lighttpd.conf').includes('"/run/lighttpd/sluice.sock-0"'), 'comments are filled in too');
    });

    it('installs the systemd units, with the paths of this install, and systemd accepts them', () => {
        const unitdir = at(dirs.systemdsystemunitdir);
        const service = fs.readFileSync(path.join(unitdir, 'sluice.service'), 'utf8');
        const socket = fs.readFileSync(path.join(unitdir, 'sluice.socket'), 'utf8');
        assert.match(service, new RegExp(`^ExecStart=${dirs.bindir}/sluice --config ${dirs.sysconfdir}/sluice/config\\.yaml$`, 'm'));
        assert.match(socket, /^ListenStream=\/run\/sluice\/sluice\.sock$/m);
        assert.match(socket, /^Accept=no$/m);
        assert.doesNotMatch(service + socket, /@[a-z]+@/);
        // systemd-analyze checks every directive; the binary it names must
        // exist, so the copies it reads point into DESTDIR.
        const check = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-units-'));
        try {
            fs.writeFileSync(path.join(check, 'sluice.service'),
                service.replace(`ExecStart=${dirs.bindir}/sluice`, `ExecStart=${at(dirs.bindir, 'sluice')}`));
            fs.writeFileSync(path.join(check, 'sluice.socket'), socket);
            const r = spawnSync('systemd-analyze', ['verify', '--man=no',
                path.join(check, 'sluice.socket'), path.join(check, 'sluice.service')], { encoding: 'utf8' });
            assert.equal(r.error, undefined, 'systemd-analyze is missing: apt-get install systemd');
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stderr.trim(), '', r.stderr);
        } finally {
            fs.rmSync(check, { recursive: true, force: true });
        }
    });

    it('a second install keeps an edited config; uninstall leaves only that edited config', () => {
        const conf = at(dirs.sysconfdir, 'sluice', 'config.yaml');
        const edited = `${fs.readFileSync(conf, 'utf8')}\n# the operator's edit\n`;
        fs.writeFileSync(conf, edited);
        make('install', dest);
        assert.equal(fs.readFileSync(conf, 'utf8'), edited);
        make('uninstall', dest);
        assert.deepEqual(filesUnder(dest), [conf]);
    });

    it('uninstall after an install with the config untouched leaves no file', () => {
        fs.rmSync(at(dirs.sysconfdir, 'sluice', 'config.yaml'));
        make('install', dest);
        assert.ok(filesUnder(dest).length >= 15);
        make('uninstall', dest);
        assert.deepEqual(filesUnder(dest), []);
    });
});

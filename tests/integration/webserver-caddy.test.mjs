// Caddy with the shipped httpd-conf/Caddyfile in front of a standalone
// sluice on a unix socket. The web server checks of lib/webserver-suite.mjs;
// the graceful reload is `caddy reload --force` through Caddy's admin
// endpoint (on a free loopback port here): the new configuration takes the
// listener, the old server finishes its running requests.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { webServerSuite } from './lib/webserver-suite.mjs';
import { renderLighttpdConf as render } from './lib/harness.mjs';
import { startStandaloneSluice } from './lib/frontend.mjs';
import { REPO_ROOT, spawnLogged, stopChild, waitFor, freePort } from './lib/procs.mjs';

const CADDY = process.env.CADDY_BIN || '/usr/bin/caddy';

webServerSuite('Caddy in front of standalone sluice (httpd-conf/Caddyfile)', {
    // Caddy notices a client that left only when it next writes to it, and
    // only after a few writes (docs/webservers.md: about 4); with events and
    // heartbeats every 300 ms that is about 1.2 s, plus a busy machine.
    abortLimitMs: 2500,
    async start({ dir, config }) {
        const f = (n) => path.join(dir, n);
        const sock = f('sluice.sock');
        const sl = await startStandaloneSluice({ dir, config, listen: sock, args: ['--socket-mode', '0666'] });
        const port = await freePort();
        const admin = `127.0.0.1:${await freePort()}`;
        const template = fs.readFileSync(path.join(REPO_ROOT, 'httpd-conf', 'Caddyfile'), 'utf8');
        const global = [
            '{',
            `\tadmin ${admin}`,
            '\tauto_https off',
            `\tstorage file_system ${f('caddy-data')}`,
            '\tgrace_period 30s',
            '}',
            '',
        ].join('\n');
        fs.writeFileSync(f('Caddyfile'), global + render(template, { BIND: '127.0.0.1', PORT: port, SOCKET: sock }));
        const env = { ...process.env, HOME: dir, XDG_DATA_HOME: f('caddy-data'), XDG_CONFIG_HOME: f('caddy-config') };
        const child = spawnLogged(CADDY, ['run', '--config', f('Caddyfile'), '--adapter', 'caddyfile'],
            { logFile: f('caddy.log'), env });
        const read = (n) => { try { return fs.readFileSync(f(n), 'utf8'); } catch { return ''; } };
        const log = () => `--- caddy ---\n${read('caddy.log').slice(-6000)}--- sluice ---\n${sl.log().slice(-4000)}`;
        const rootURL = `http://127.0.0.1:${port}`;
        let exited = null;
        child.exited.then((x) => { exited = x; });
        const stop = async () => {
            await stopChild(child, 8000);
            await sl.stop();
        };
        try {
            await waitFor(async () => {
                if (exited) throw new Error(`caddy exited: ${JSON.stringify(exited)}\n${log()}`);
                const res = await fetch(`${rootURL}/health/liveliness`, { signal: AbortSignal.timeout(3000) });
                await res.arrayBuffer();
                return res.status === 200 && res.headers.get('x-request-id') !== null;
            }, { timeoutMs: 20000, intervalMs: 100, describe: () => `caddy and sluice at ${rootURL}\n${log()}` });
        } catch (e) {
            await stop();
            throw e;
        }
        return {
            rootURL,
            log,
            stop,
            reload: () => new Promise((resolve, reject) => {
                execFile(CADDY, ['reload', '--force', '--config', f('Caddyfile'), '--adapter', 'caddyfile',
                    '--address', admin], { env, timeout: 20000 }, (err, stdout, stderr) => {
                    if (err) reject(new Error(`caddy reload failed: ${stderr}`));
                    else resolve();
                });
            }),
        };
    },
});

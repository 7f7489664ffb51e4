// lighttpd with the shipped httpd-conf/lighttpd.conf: lighttpd spawns the
// sluice responders itself (mod_fastcgi bin-path). The web server checks of
// lib/webserver-suite.mjs; the graceful reload is lighttpd's SIGUSR1.

import fs from 'node:fs';
import path from 'node:path';
import { webServerSuite } from './lib/webserver-suite.mjs';
import { lighttpdBin, renderLighttpdConf } from './lib/harness.mjs';
import { REPO_ROOT, spawnLogged, stopChild, stopPids, childPids, waitFor, freePort } from './lib/procs.mjs';

webServerSuite('lighttpd spawning sluice (httpd-conf/lighttpd.conf)', {
    async start({ dir, config, sluiceBin }) {
        const f = (n) => path.join(dir, n);
        fs.mkdirSync(f('htdocs'), { recursive: true });
        const port = await freePort();
        const template = fs.readFileSync(path.join(REPO_ROOT, 'httpd-conf', 'lighttpd.conf'), 'utf8');
        fs.writeFileSync(f('lighttpd.conf'), renderLighttpdConf(template, {
            BIND: '127.0.0.1', PORT: port, SLUICE: sluiceBin, CONFIG: config, SOCKET: f('sluice.sock'),
            MAXPROCS: 2, DOCROOT: f('htdocs'), ERRORLOG: f('lighttpd-error.log'), PIDFILE: f('lighttpd.pid'),
        }));
        const child = spawnLogged(lighttpdBin(), ['-D', '-f', f('lighttpd.conf')], { logFile: f('lighttpd-stderr.log') });
        const seen = new Set();
        const read = (n) => { try { return fs.readFileSync(f(n), 'utf8'); } catch { return ''; } };
        const log = () => `--- lighttpd error log ---\n${read('lighttpd-error.log')}--- lighttpd/sluice stderr ---\n${read('lighttpd-stderr.log')}`;
        const rootURL = `http://127.0.0.1:${port}`;
        const stop = async () => {
            for (const p of childPids(child.pid)) seen.add(p);
            await stopChild(child, 8000);
            await stopPids([...seen], sluiceBin, 5000);
        };
        try {
            await waitFor(async () => {
                const res = await fetch(`${rootURL}/health/liveliness`, { signal: AbortSignal.timeout(3000) });
                await res.arrayBuffer();
                return res.status === 200 && res.headers.get('x-request-id') !== null;
            }, { timeoutMs: 20000, intervalMs: 100, describe: () => `lighttpd and sluice at ${rootURL}\n${log()}` });
        } catch (e) {
            await stop();
            throw e;
        }
        for (const p of childPids(child.pid)) seen.add(p);
        return {
            rootURL,
            log,
            stop,
            // Graceful restart: lighttpd stops accepting, lets running
            // requests finish, then reads its config again and restarts.
            reload: async () => {
                for (const p of childPids(child.pid)) seen.add(p);
                process.kill(child.pid, 'SIGUSR1');
            },
        };
    },
});
